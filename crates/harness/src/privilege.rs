//! The privilege probe, and the one way a test skips. Namespaces, mounts and
//! cgroups need root; a test that needs it calls [`require_root`] first:
//!
//! ```ignore
//! if !harness::require_root("ch04 pivot_root hides the host") { return; }
//! ```
//!
//! Without root the test prints one `SKIP` line and passes, so `cargo test` works
//! for a learner without sudo. With `MINIBOX_REQUIRE_PRIVILEGED=1` (set by `.ci/run`
//! and `cargo xtask ci`) it fails instead, so CI can never pass by skipping.
//!
//! Every other reason to skip (a host without some kernel feature) goes through
//! [`skip`] too, so the same variable forbids it. A test that only makes sense on
//! one cgroup layout does not skip on the others: it belongs to the suite that
//! runs on that layout (`cargo xtask test-v2` for pure cgroup v2).
//!
//! The `SKIP` line goes straight to the process's standard error, past the test
//! harness's output capture: `cargo test` shows it although the test passed, and
//! `.ci/run` fails when its output holds one.

use std::io::Write;

/// The environment variable that turns a skip into a failure.
pub const REQUIRE_PRIVILEGED: &str = "MINIBOX_REQUIRE_PRIVILEGED";

/// What a test that cannot always run (root only, or a kernel feature) should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It can run here (root, the feature is there): run it.
    Run,
    /// It cannot, and skipping is allowed: print SKIP and pass.
    Skip,
    /// It cannot, and skipping is forbidden: fail.
    Fail,
}

/// Decides from the two facts that matter (whether the test can run here, and
/// whether skipping is forbidden), so the rule itself can be tested.
pub fn decide(can_run: bool, skipping_forbidden: bool) -> Decision {
    match (can_run, skipping_forbidden) {
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

/// Returns true when the test may go on. Without root, [`skip`]s it (prints
/// `SKIP <test>` and returns false, or panics when skipping is forbidden).
pub fn require_root(test: &str) -> bool {
    require(
        is_root(),
        test,
        "needs root (run as root, or through sudo: see README)",
    )
}

/// Returns true when `can_run`; otherwise [`skip`]s `test` for `reason` and
/// returns false (or panics, when skipping is forbidden).
pub fn require(can_run: bool, test: &str, reason: &str) -> bool {
    match decide(can_run, skipping_forbidden()) {
        Decision::Run => true,
        Decision::Skip => {
            skip(test, reason);
            false
        }
        Decision::Fail => forbidden(test, reason),
    }
}

/// Skips `test`: prints `SKIP <test>: <reason>` on the real standard error (not
/// captured by the test harness, so it shows in `cargo test`'s output), or
/// panics when [`REQUIRE_PRIVILEGED`] forbids skipping. The caller returns
/// right after.
pub fn skip(test: &str, reason: &str) {
    if skipping_forbidden() {
        forbidden(test, reason);
    }
    // `eprintln!` would be captured with the test's output and shown only if
    // it failed; a skip must be seen.
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {reason}");
}

fn forbidden(test: &str, reason: &str) -> ! {
    panic!("{test} cannot run here: {reason}; {REQUIRE_PRIVILEGED}=1 forbids skipping it")
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
