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
use std::path::{Path, PathBuf};

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
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let in_root = own.lines().any(|l| l == "0::/");
    pure_v2() && !in_root
}

/// Whether the host is pure cgroup v2: /sys/fs/cgroup itself is a cgroup2
/// filesystem (`statfs(2)`), as on the v2 VM; not on hybrid or v1 hosts.
pub fn pure_v2() -> bool {
    let path = CString::new("/sys/fs/cgroup").expect("no NUL byte");
    // SAFETY: statfs(2) writes into the zeroed struct we pass; the path is a
    // valid C string.
    unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut buf) == 0 && buf.f_type as i64 == CGROUP2_SUPER_MAGIC
    }
}

/// Whether a test of a chapter's cgroup v2 suite runs: as root, on a pure
/// cgroup v2 host (`cargo xtask test-v2`'s VM). Elsewhere it skips, or
/// fails where skipping is forbidden ([`crate::privilege`]).
pub fn on_v2(test: &str) -> bool {
    crate::require_root(test)
        && crate::require(
            pure_v2(),
            test,
            "needs a pure cgroup v2 host: run `cargo xtask test-v2`",
        )
}

/// The variable that names, in the v2 VM, the store `cargo xtask test-v2`
/// prepared on the host (busybox pulled into it: the VM has no network).
pub const V2_STORE: &str = "MINIBOX_V2_STORE";

/// [`on_v2`], for a test that needs the prepared store too: its path.
pub fn on_v2_with_store(test: &str) -> Option<std::path::PathBuf> {
    let store = std::env::var_os(V2_STORE);
    let runs = on_v2(test)
        && crate::require(
            store.is_some(),
            test,
            "needs MINIBOX_V2_STORE, a store with busybox: run `cargo xtask test-v2`",
        );
    runs.then(|| store.unwrap_or_default().into())
}

/// One mounted cgroup hierarchy, as the kernel lists it in
/// /proc/self/mountinfo, and this process's cgroup in it (from
/// /proc/self/cgroup). Read here without any chapter's code, so a leak check
/// does not trust the code it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mount: PathBuf,
    /// `cgroup2`, or `cgroup` (v1).
    pub fs_type: String,
    /// Its controllers (v1: from the mount options, `name=systemd` included;
    /// empty for v2).
    pub controllers: Vec<String>,
    /// This process's cgroup in it, as /proc/self/cgroup says (`/` when that
    /// names none of its controllers).
    pub own: String,
}

impl Hierarchy {
    /// The directory of cgroup `path` (absolute within the hierarchy).
    pub fn dir(&self, path: &str) -> PathBuf {
        self.mount.join(path.trim_start_matches('/'))
    }

    /// Where a container's cgroup parent `parent` lands in this hierarchy:
    /// absolute from its root, relative from this process's own cgroup (the
    /// rule `MINIBOX_CGROUP_PARENT` documents).
    pub fn parent_dir(&self, parent: &str) -> PathBuf {
        if parent.starts_with('/') {
            self.dir(parent)
        } else {
            self.dir(&self.own).join(parent)
        }
    }
}

/// Every cgroup hierarchy mounted in this mount namespace (each once, however
/// often it is mounted), from `mountinfo` and `cgroup` (the texts of
/// /proc/self/mountinfo and /proc/self/cgroup).
pub fn hierarchies_in(mountinfo: &str, cgroup: &str) -> Vec<Hierarchy> {
    // /proc/self/cgroup: `ID:CONTROLLERS:PATH`, CONTROLLERS empty for v2.
    let own: Vec<(Vec<&str>, &str)> = cgroup
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let controllers = controllers.split(',').filter(|c| !c.is_empty()).collect();
            Some((controllers, path))
        })
        .collect();
    let mut found: Vec<Hierarchy> = Vec::new();
    let mut devices: Vec<&str> = Vec::new();
    for line in mountinfo.lines() {
        // `ID PARENT MAJOR:MINOR ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS`
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let before: Vec<&str> = before.split_whitespace().collect();
        let after: Vec<&str> = after.split_whitespace().collect();
        let ([_, _, device, root, point, ..], [fs_type, _, options, ..]) =
            (before.as_slice(), after.as_slice())
        else {
            continue;
        };
        if !matches!(*fs_type, "cgroup" | "cgroup2") || devices.contains(device) {
            continue;
        }
        devices.push(device);
        let (controllers, own_path) = if *fs_type == "cgroup2" {
            let path = own.iter().find(|(c, _)| c.is_empty()).map(|(_, p)| *p);
            (Vec::new(), path)
        } else {
            // The line of /proc/self/cgroup whose controllers (`cpu,cpuacct`,
            // `name=systemd`) are all among this mount's options.
            let options: Vec<&str> = options.split(',').collect();
            let line = own
                .iter()
                .find(|(c, _)| !c.is_empty() && c.iter().all(|c| options.contains(c)));
            let controllers = line
                .map(|(c, _)| c.iter().map(|c| c.to_string()).collect())
                .unwrap_or_default();
            (controllers, line.map(|(_, p)| *p))
        };
        // A hierarchy mounted from below its root (ROOT is not `/`) shows
        // paths relative to that root.
        let own_path = own_path.unwrap_or("/");
        let own_path = match root.trim_start_matches('/') {
            "" => own_path.to_string(),
            r => match own_path.trim_start_matches('/').strip_prefix(r) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_string(),
                _ => own_path.to_string(),
            },
        };
        found.push(Hierarchy {
            mount: PathBuf::from(point),
            fs_type: fs_type.to_string(),
            controllers,
            own: if own_path.is_empty() {
                "/".into()
            } else {
                own_path
            },
        });
    }
    found
}

/// [`hierarchies_in`] this process's own /proc/self/mountinfo and /proc/self/cgroup.
pub fn hierarchies() -> Vec<Hierarchy> {
    let read = |path: &str| {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    };
    hierarchies_in(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup"))
}

/// The directories that cgroup parent `parent` stands for, in every mounted
/// hierarchy, that exist.
pub fn leftovers(parent: &str) -> Vec<PathBuf> {
    hierarchies()
        .iter()
        .map(|h| h.parent_dir(parent))
        .filter(|dir| dir.exists())
        .collect()
}

/// After a failed test: removes what is left of cgroup parent `parent` (the
/// test's own, named after it and its PID) in every hierarchy, deepest
/// first, killing any process still in it (a container of the test's).
pub fn remove_leftovers(parent: &str) {
    for dir in leftovers(parent) {
        remove_tree(&dir);
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    for _ in 0..50 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) of a process in the test's own cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Fails the test if cgroup parent `parent` (where a test's containers went)
/// still exists in any mounted hierarchy.
pub fn assert_nothing_left(parent: &str) {
    let left = leftovers(parent);
    assert!(
        left.is_empty(),
        "cgroups left behind: {}",
        left.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// This project's machines: v1 controllers (cpu and cpuacct apart), v2 at
    /// `unified`; the test's memory cgroup is not the root.
    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 35 0:32 / /mnt/memory-again rw,relatime - cgroup cgroup rw,memory
";
    const HYBRID_OWN: &str =
        "9:name=systemd:/\n4:memory:/tooling/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn every_hierarchy_once_with_our_cgroup_in_it() {
        let found = hierarchies_in(HYBRID, HYBRID_OWN);
        let summary: Vec<(&str, &str, String)> = found
            .iter()
            .map(|h| {
                (
                    h.mount.to_str().unwrap(),
                    h.own.as_str(),
                    h.controllers.join(","),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("/sys/fs/cgroup/cpu", "/", "cpu".to_string()),
                ("/sys/fs/cgroup/cpuacct", "/", "cpuacct".to_string()),
                (
                    "/sys/fs/cgroup/memory",
                    "/tooling/abc",
                    "memory".to_string()
                ),
                ("/sys/fs/cgroup/systemd", "/", "name=systemd".to_string()),
                ("/sys/fs/cgroup/unified", "/", String::new()),
            ]
        );
        let memory = &found[2];
        assert_eq!(
            memory.parent_dir("minibox-test-1"),
            Path::new("/sys/fs/cgroup/memory/tooling/abc/minibox-test-1")
        );
        assert_eq!(
            memory.parent_dir("/minibox"),
            Path::new("/sys/fs/cgroup/memory/minibox")
        );
    }

    #[test]
    fn co_mounted_controllers_and_a_mount_from_below_the_root() {
        let mountinfo = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
41 23 0:38 /session /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
";
        let found = hierarchies_in(mountinfo, "2:cpu,cpuacct:/a\n0::/session/test\n");
        assert_eq!(found[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(found[0].own, "/a");
        assert_eq!(found[1].own, "/test");
    }

    #[test]
    fn this_process_sees_at_least_one_hierarchy() {
        assert!(!hierarchies().is_empty(), "no cgroup hierarchy is mounted");
    }
}
