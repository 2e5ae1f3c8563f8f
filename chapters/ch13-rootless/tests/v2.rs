//! Rootless limits on a pure cgroup v2 host, for real: a subtree delegated to
//! the test's user (its directory and its `cgroup.procs`,
//! `cgroup.subtree_control` and `cgroup.threads` files given to the user, as
//! systemd delegates `user@UID.service`), the user's commands started in a
//! leaf of it, and `--memory` enforced there without root. Without the
//! delegation, the limit is refused in one line.
//!
//! This machine's cgroups are hybrid, so these tests mean something only
//! under a pure cgroup v2 kernel: they are chapter 13's v2 suite, which
//! `cargo xtask test-v2` runs inside a small VM. Plain `cargo test` lists
//! them as ignored. The VM has no network: `cargo xtask test-v2` pulls
//! busybox into a store on the host and copies it in (`MINIBOX_V2_STORE`);
//! each test gives its user a copy, owned by the user.

use std::fs;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

use harness::cgroups::on_v2_with_store;
use harness::rootless::TestUser;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch13-rootless");

const DD_64M: [&str; 5] = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];

/// A user without a subordinate range (the VM has no `newuidmap`) with a
/// copy of the prepared store as its own.
fn user(prepared: &Path) -> TestUser {
    let user = TestUser::new(Path::new(MINIBOX), false);
    let store = user.store();
    fs::create_dir_all(store.parent().unwrap()).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(prepared)
        .arg(&store)
        .status()
        .unwrap();
    assert!(copied.success(), "copying the store");
    let owned = std::process::Command::new("chown")
        .args(["-R", &format!("{0}:{0}", user.uid)])
        .arg(user.home())
        .status()
        .unwrap();
    assert!(owned.success(), "giving the store to the user");
    user
}

/// A subtree of the cgroup root, delegated to `uid` as systemd delegates
/// one, with a leaf for the user's processes; removed when dropped.
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    fn to(uid: u32, name: &str) -> Delegated {
        let dir = Path::new("/sys/fs/cgroup").join(name);
        fs::create_dir(&dir).unwrap();
        let delegated = Delegated { dir };
        for file in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            chown(delegated.dir.join(file), Some(uid), Some(uid)).unwrap();
        }
        let leaf = delegated.leaf();
        fs::create_dir(&leaf).unwrap();
        for file in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            chown(leaf.join(file), Some(uid), Some(uid)).unwrap();
        }
        delegated
    }

    /// Where the user's commands start (its "login shell's" cgroup).
    fn leaf(&self) -> PathBuf {
        self.dir.join("session")
    }

    /// The cgroups below the subtree, but for the leaf.
    fn containers(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.path() != self.leaf() {
                    found.push(entry.path());
                    stack.push(entry.path());
                }
            }
        }
        found
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let mut dirs = self.containers();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs.iter().chain([&self.leaf(), &self.dir]) {
            let _ = fs::remove_dir(dir);
        }
    }
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_a_delegated_subtree_enforces_a_memory_limit_rootless() {
    let Some(store) = on_v2_with_store("ch13 v2 delegated memory limit") else {
        return;
    };
    let mut user = user(&store);
    let delegated = Delegated::to(
        user.uid,
        &format!("minibox-test-{}-deleg", std::process::id()),
    );
    user.start_in_cgroup(&delegated.leaf());
    let run = |args: &[&str]| {
        let mut all = vec![
            "run",
            "--rm",
            "--quiet",
            "--network",
            "none",
            "--memory",
            "32m",
        ];
        all.extend_from_slice(args);
        user.minibox(&all)
    };
    // The container's cgroup is below the delegated directory, with the limit.
    let detached = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "capped",
        "--memory",
        "32m",
    ];
    user.minibox(&[&detached[..], &["busybox", "sleep", "600"]].concat())
        .expect(0);
    let limits: Vec<String> = delegated
        .containers()
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("memory.max")).ok())
        .collect();
    assert!(limits.iter().any(|l| l.trim() == "33554432"), "{limits:?}");
    user.minibox(&["rm", "-f", "capped"]).expect(0);
    // Within the limit, dd works; beyond it, the OOM killer ends it: 137.
    let within = [
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=8M",
        "count=1",
    ];
    run(&within).expect(0);
    let mut beyond = vec!["busybox"];
    beyond.extend(DD_64M);
    assert_eq!(run(&beyond).status, 137);
    // Everything the containers made below the subtree is gone again.
    assert_eq!(delegated.containers(), Vec::<PathBuf>::new());
    user.stop_pause();
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_without_delegation_a_limit_is_refused_and_a_run_without_works() {
    let Some(store) = on_v2_with_store("ch13 v2 no delegation") else {
        return;
    };
    let user = user(&store);
    let refused = user.minibox(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "32m",
        "busybox",
        "true",
    ]);
    let refused = refused.expect(125);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("delegated"), "{}", refused.stderr);
    let works = user.minibox(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(works.expect(0).stdout, "hi\n");
    user.stop_pause();
}
