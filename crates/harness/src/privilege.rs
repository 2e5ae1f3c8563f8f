//! The privilege probe. Namespaces, mounts and cgroups need root; a test that needs
//! it calls [`require_root`] first:
//!
//! ```ignore
//! if !harness::require_root("ch04 pivot_root hides the host") { return; }
//! ```
//!
//! Without root the test prints one `SKIP` line and passes, so `cargo test` works
//! for a learner without sudo. With `MINIBOX_REQUIRE_PRIVILEGED=1` (set by `.ci/run`
//! and `cargo xtask ci`) it fails instead, so CI can never pass by skipping.

/// The environment variable that turns a skip into a failure.
pub const REQUIRE_PRIVILEGED: &str = "MINIBOX_REQUIRE_PRIVILEGED";

/// What a root-only test should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// We are root: run the test.
    Run,
    /// Not root and skipping is allowed: print SKIP and pass.
    Skip,
    /// Not root and skipping is forbidden: fail.
    Fail,
}

/// Decides from the two facts that matter, so the rule itself can be tested.
pub fn decide(is_root: bool, skipping_forbidden: bool) -> Decision {
    match (is_root, skipping_forbidden) {
        (true, _) => Decision::Run,
        (false, false) => Decision::Skip,
        (false, true) => Decision::Fail,
    }
}

/// Whether this process runs with root's user ID.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `MINIBOX_REQUIRE_PRIVILEGED` is set to something other than `0` or empty.
pub fn skipping_forbidden() -> bool {
    std::env::var(REQUIRE_PRIVILEGED).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Returns true when the test may go on. Prints `SKIP <test>` and returns false
/// without root; panics instead when skipping is forbidden.
pub fn require_root(test: &str) -> bool {
    match decide(is_root(), skipping_forbidden()) {
        Decision::Run => true,
        Decision::Skip => {
            eprintln!("SKIP {test}: needs root (run as root, or through sudo: see README)");
            false
        }
        Decision::Fail => panic!(
            "{test} needs root, and {REQUIRE_PRIVILEGED}=1 forbids skipping it: run the tests as root"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_runs_others_skip_unless_forbidden() {
        assert_eq!(decide(true, false), Decision::Run);
        assert_eq!(decide(true, true), Decision::Run);
        assert_eq!(decide(false, false), Decision::Skip);
        assert_eq!(decide(false, true), Decision::Fail);
    }
}
