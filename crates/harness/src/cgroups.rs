//! Where tests put their containers' cgroups.
//!
//! The rule on this project's machines and in CI: below the test process's own
//! cgroup, never beside it. A *relative* `MINIBOX_CGROUP_PARENT` says exactly
//! that. It works on cgroup v1 and hybrid hosts (these machines), and on v2 when
//! the test runs in the root cgroup (the v2vm). On a pure v2 host where the test's
//! own cgroup holds other processes (a learner's login session), v2's "no internal
//! processes" rule forbids handing controllers down below it; there the tests use
//! an absolute parent of their own at the root instead, which is what minibox does
//! for real users anyway.

use std::ffi::CString;

/// `statfs(2)`'s magic number for a cgroup v2 filesystem.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The cgroup parent for containers that tests start, named `name`.
pub fn test_parent(name: &str) -> String {
    if unified_and_not_root() {
        format!("/{name}")
    } else {
        name.to_string()
    }
}

/// Whether /sys/fs/cgroup is cgroup v2 and this process is not in its root.
fn unified_and_not_root() -> bool {
    let path = CString::new("/sys/fs/cgroup").expect("no NUL byte");
    // SAFETY: statfs(2) writes into the zeroed struct we pass; the path is a
    // valid C string.
    let is_v2 = unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut buf) == 0 && buf.f_type as i64 == CGROUP2_SUPER_MAGIC
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let in_root = own.lines().any(|l| l == "0::/");
    is_v2 && !in_root
}
