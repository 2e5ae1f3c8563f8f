//! Does rootless work here: the checks `minibox info` prints, told as one story
//! per requirement. Each starts from a fake machine where everything is in
//! place (a tree in a temp dir: subuid files, sysctls, setuid programs, a
//! delegated cgroup v2 subtree), breaks one thing, and sees that check, and
//! only it, fail with its fix. Then the real machine, and the cargo runner that
//! lets chapter 13 and later run without sudo.
//!
//! Ownership is part of the story (setuid root, a cgroup chowned to the user),
//! so the trees that need it are made as root; without root those tests SKIP.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;

use ch05_cgroups::cgroup::{self, Layout};
use ch13_rootless::checks::{
    Check, Facts, ProbeFailure, delegated_cgroup, probe_user_namespace, rootless, rootless_in,
};
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

/// The user of the fake machine.
const UID: u32 = 1000;

/// Where this process runs in the fake cgroup tree: a terminal below the
/// user's service manager, as on a desktop.
const OWN: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/term.scope";

/// The cgroup systemd delegates to the user (`Delegate=yes` on user@.service).
const SERVICE: &str = "user.slice/user-1000.slice/user@1000.service";

/// The checks' names, in their order.
const NAMES: [&str; 8] = [
    "user namespaces",
    "subordinate user IDs",
    "subordinate group IDs",
    "newuidmap",
    "newgidmap",
    "user-mode network",
    "overlayfs in a user namespace",
    "cgroup v2 delegation",
];

/// A fake machine below a temp dir, where rootless has everything.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let tree = Tree {
            dir: tempfile::tempdir().unwrap(),
        };
        tree.write("etc/subuid", "bob:100000:65536\nalice:165536:65536\n");
        tree.write("etc/subgid", "bob:100000:65536\nalice:165536:65536\n");
        tree.write("proc/sys/user/max_user_namespaces", "63000\n");
        tree.write("proc/sys/kernel/unprivileged_userns_clone", "1\n");
        tree.write(
            "proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "0\n",
        );
        tree.write("proc/sys/kernel/osrelease", "6.8.0-31-generic\n");
        tree.write("proc/self/cgroup", &format!("0::{OWN}\n"));
        tree.program("usr/bin/newuidmap", 0o4755);
        tree.program("usr/bin/newgidmap", 0o4755);
        tree.program("usr/bin/pasta", 0o755);
        // The TUN device, as most distributions make it (a file stands in).
        tree.program("dev/net/tun", 0o666);
        let mut dir = PathBuf::from("sys/fs/cgroup");
        for level in std::iter::once("").chain(OWN.split('/').filter(|s| !s.is_empty())) {
            dir.push(level);
            for file in ["cgroup.procs", "cgroup.subtree_control"] {
                tree.write(dir.join(file), "");
            }
            tree.write(dir.join("cgroup.controllers"), "cpu io memory pids\n");
        }
        tree.chown_cgroup(SERVICE, &["", "cgroup.procs", "cgroup.subtree_control"]);
        for below in ["app.slice", "app.slice/term.scope"] {
            let files = ["", "cgroup.procs", "cgroup.subtree_control"];
            tree.chown_cgroup(&format!("{SERVICE}/{below}"), &files);
        }
        tree
    }

    fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(path)
    }

    fn write(&self, path: impl AsRef<Path>, text: &str) {
        let path = self.path(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn remove(&self, path: &str) {
        fs::remove_file(self.path(path)).unwrap();
    }

    /// An executable file with `mode` (04755: setuid, when made by root).
    fn program(&self, path: &str, mode: u32) {
        self.write(path, "#!/bin/sh\n");
        fs::set_permissions(self.path(path), fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Gives `files` of cgroup `dir` ("" for the directory) to the user.
    /// Only root can; the tests that depend on it require root.
    fn chown_cgroup(&self, dir: &str, files: &[&str]) {
        for file in files {
            let path = self.path(Path::new("sys/fs/cgroup").join(dir).join(file));
            let _ = chown(path, Some(UID), Some(UID));
        }
    }

    /// Gives `files` of cgroup `dir` back to root.
    fn unchown_cgroup(&self, dir: &str, files: &[&str]) {
        for file in files {
            let path = self.path(Path::new("sys/fs/cgroup").join(dir).join(file));
            chown(path, Some(0), Some(0)).unwrap();
        }
    }

    fn cgroup_mount(&self) -> PathBuf {
        self.path("sys/fs/cgroup")
    }

    /// Every check, for alice (uid 1000) with the facts `facts` makes.
    fn checks_with(&self, facts: impl FnOnce(&mut Facts)) -> Vec<Check> {
        let mut assumed = Facts::assumed(Uid::from_raw(UID), Some("alice"));
        facts(&mut assumed);
        rootless_in(self.dir.path(), &assumed)
    }

    fn checks(&self) -> Vec<Check> {
        self.checks_with(|_| {})
    }

    /// The one check called `name`.
    fn check(&self, name: &str) -> Check {
        find(&self.checks(), name)
    }
}

fn find(checks: &[Check], name: &str) -> Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
        .clone()
}

/// Every check passes but `failing`, which fails with a fix.
fn only_fails(checks: &[Check], failing: &str) -> Check {
    for check in checks.iter().filter(|c| c.name != failing) {
        assert!(check.ok && check.fix.is_none(), "{check:#?}");
    }
    let check = find(checks, failing);
    assert!(!check.ok && check.fix.is_some(), "{check:#?}");
    check
}

fn fix(check: &Check) -> &str {
    check.fix.as_deref().unwrap_or_default()
}

#[test]
fn everything_in_place_passes_every_check_in_order() {
    if !harness::require_root("ch13 checks: a complete machine (setuid, chown)") {
        return;
    }
    let checks = Tree::new().checks();
    let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
    assert_eq!(names, NAMES);
    for check in &checks {
        assert!(check.ok && check.fix.is_none(), "{check:#?}");
    }
    let delegation = find(&checks, "cgroup v2 delegation");
    assert_eq!(
        delegation.detail,
        format!("/sys/fs/cgroup/{SERVICE} is yours, with: cpu io memory pids")
    );
    assert_eq!(
        find(&checks, "newuidmap").detail,
        "/usr/bin/newuidmap, setuid root"
    );
    assert_eq!(
        find(&checks, "subordinate user IDs").detail,
        "alice has 65536: 165536-231071"
    );
}

#[test]
fn user_namespaces_forbidden_by_a_sysctl_say_which_and_how_to_allow_them() {
    let tree = Tree::new();
    tree.write("proc/sys/user/max_user_namespaces", "0\n");
    let check = tree.check("user namespaces");
    assert!(!check.ok);
    assert_eq!(check.detail, "user.max_user_namespaces is 0");
    assert!(fix(&check).starts_with("sudo sysctl -w user.max_user_namespaces=15000\n"));

    let tree = Tree::new();
    tree.write("proc/sys/kernel/unprivileged_userns_clone", "0\n");
    let check = tree.check("user namespaces");
    assert!(!check.ok);
    assert!(
        check
            .detail
            .contains("kernel.unprivileged_userns_clone is 0"),
        "{check:#?}"
    );
    assert!(fix(&check).starts_with("sudo sysctl -w kernel.unprivileged_userns_clone=1\n"));
    assert!(fix(&check).contains(
        "echo kernel.unprivileged_userns_clone=1 | sudo tee /etc/sysctl.d/90-minibox-kernel.unprivileged_userns_clone.conf"
    ));

    // A kernel without Debian's patch has no such file: nothing forbids.
    tree.remove("proc/sys/kernel/unprivileged_userns_clone");
    assert!(tree.check("user namespaces").ok);
}

#[test]
fn the_apparmor_restriction_is_lifted_for_minibox_alone_or_for_all() {
    let tree = Tree::new();
    tree.write(
        "proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1\n",
    );
    let check = tree.check("user namespaces");
    assert!(!check.ok);
    assert!(check.detail.contains("AppArmor"), "{check:#?}");
    let fix = fix(&check);
    assert!(
        fix.contains("profile minibox /usr/local/bin/minibox flags=(unconfined) {\\n  userns,\\n}"),
        "{fix}"
    );
    assert!(
        fix.contains("sudo apparmor_parser -r /etc/apparmor.d/minibox\n"),
        "{fix}"
    );
    assert!(fix.contains("sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0\n"));
}

#[test]
fn the_probe_is_the_truth_and_the_sysctls_the_explanation() {
    let tree = Tree::new();
    let failure = ProbeFailure {
        step: "unshare(CLONE_NEWUSER)",
        errno: Errno::EPERM,
    };
    tree.write("proc/sys/kernel/unprivileged_userns_clone", "0\n");
    let check = find(
        &tree.checks_with(|f| f.userns = Some(Err(failure))),
        "user namespaces",
    );
    assert!(!check.ok);
    assert_eq!(
        check.detail,
        "unshare(CLONE_NEWUSER) failed: EPERM: Operation not permitted: \
         kernel.unprivileged_userns_clone is 0 (Debian's switch)"
    );
    assert!(fix(&check).starts_with("sudo sysctl -w kernel.unprivileged_userns_clone=1"));

    // A probe that worked wins over a sysctl that seems to forbid it.
    let check = find(
        &tree.checks_with(|f| f.userns = Some(Ok(()))),
        "user namespaces",
    );
    assert!(check.ok && check.fix.is_none(), "{check:#?}");

    // A refusal no sysctl explains: a security module, found in the kernel's log.
    let tree = Tree::new();
    let check = find(
        &tree.checks_with(|f| f.userns = Some(Err(failure))),
        "user namespaces",
    );
    assert!(!check.ok);
    assert!(
        fix(&check).contains("sudo dmesg | grep -i -e apparmor"),
        "{check:#?}"
    );
}

#[test]
fn without_a_subordinate_range_only_root_is_mapped_and_a_free_range_is_granted() {
    let tree = Tree::new();
    tree.write("etc/subuid", "bob:100000:65536\ncarol:165536:65536\n");
    let check = tree.check("subordinate user IDs");
    assert!(!check.ok);
    assert!(
        check
            .detail
            .starts_with("no range for alice in /etc/subuid: only your own ID")
    );
    // The grant starts after every range of both files, overlapping nobody's.
    assert_eq!(
        fix(&check),
        "sudo usermod --add-subuids 231072-296607 alice"
    );
    assert!(tree.check("subordinate group IDs").ok);

    tree.write("etc/subgid", "");
    let check = tree.check("subordinate group IDs");
    assert!(!check.ok);
    assert_eq!(
        fix(&check),
        "sudo usermod --add-subgids 231072-296607 alice"
    );

    // A missing file is no grant either.
    tree.remove("etc/subgid");
    assert!(!tree.check("subordinate group IDs").ok);
}

#[test]
fn a_small_range_works_but_says_what_it_cannot_do() {
    let tree = Tree::new();
    tree.write("etc/subuid", "alice:100000:1000\nalice:300000:24\n");
    let check = tree.check("subordinate user IDs");
    assert!(check.ok, "{check:#?}");
    assert_eq!(
        check.detail,
        "alice has 1024: 100000-100999, 300000-300023; 65536 are recommended: \
         an image with files of IDs above 1024 cannot be unpacked"
    );
    assert_eq!(
        fix(&check),
        "sudo usermod --add-subuids 300024-365559 alice"
    );
}

#[test]
fn a_range_may_be_granted_by_number_and_a_user_without_a_name_gets_one_that_way() {
    let tree = Tree::new();
    tree.write("etc/subuid", "1000:200000:65536\n");
    let check = tree.check("subordinate user IDs");
    assert!(check.ok && check.fix.is_none(), "{check:#?}");
    assert_eq!(check.detail, "alice has 65536: 200000-265535");

    tree.write("etc/subuid", "alice:200000:65536\n");
    let checks = tree.checks_with(|f| f.name = None);
    let check = find(&checks, "subordinate user IDs");
    assert!(!check.ok);
    assert!(
        check.detail.starts_with("no range for uid 1000"),
        "{check:#?}"
    );
    assert_eq!(
        fix(&check),
        "echo 1000:265536:65536 | sudo tee -a /etc/subuid"
    );
}

#[test]
fn newuidmap_missing_or_without_privilege_is_named_with_its_fix() {
    if !harness::require_root("ch13 checks: setuid and file capabilities") {
        return;
    }
    let tree = Tree::new();
    tree.remove("usr/bin/newuidmap");
    let check = only_fails(&tree.checks(), "newuidmap");
    assert!(
        check.detail.starts_with("not on PATH: only your own ID"),
        "{check:#?}"
    );
    assert!(fix(&check).starts_with("sudo apt-get install uidmap"));

    // Found on a later PATH directory: found.
    tree.program("bin/newuidmap", 0o4755);
    assert!(tree.check("newuidmap").ok);

    // Neither setuid nor a capability: it could map only what we can ourselves.
    tree.program("bin/newuidmap", 0o755);
    let check = only_fails(&tree.checks(), "newuidmap");
    assert_eq!(
        fix(&check),
        "sudo chown root /bin/newuidmap && sudo chmod u+s /bin/newuidmap"
    );

    // The file capability Fedora gives it instead of setuid, but the wrong one...
    set_capability(&tree.path("bin/newuidmap"), 6);
    assert!(!tree.check("newuidmap").ok);
    // ...and the right one.
    set_capability(&tree.path("bin/newuidmap"), 7);
    let check = tree.check("newuidmap");
    assert!(check.ok, "{check:#?}");
    assert_eq!(
        check.detail,
        "/bin/newuidmap, with file capability cap_setuid"
    );

    // Setuid, but owned by the user: that is only the user's own privilege.
    tree.program("usr/bin/newgidmap", 0o4755);
    chown(tree.path("usr/bin/newgidmap"), Some(UID), None).unwrap();
    fs::set_permissions(
        tree.path("usr/bin/newgidmap"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    assert!(!tree.check("newgidmap").ok);
}

/// Gives `path` the file capability `cap` (permitted and effective), as
/// `setcap cap_setuid+ep` does: a `vfs_cap_data` of revision 2.
fn set_capability(path: &Path, cap: u32) {
    let mut value = Vec::new();
    value.extend(0x0200_0001u32.to_le_bytes()); // revision 2, effective
    value.extend((1u32 << cap).to_le_bytes()); // permitted, low word
    value.extend([0u8; 12]); // inheritable low, permitted and inheritable high
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: C strings and a buffer of the length given.
    let result = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(result, 0, "setxattr: {}", Errno::last());
}

#[test]
fn a_tun_device_only_root_may_open_is_named_with_its_fix() {
    let tree = Tree::new();
    tree.program("dev/net/tun", 0o600);
    let check = only_fails(&tree.checks(), "user-mode network");
    assert!(check.detail.contains("/dev/net/tun"), "{check:#?}");
    assert!(
        fix(&check).contains("chmod 0666 /dev/net/tun"),
        "{check:#?}"
    );
}

#[test]
fn without_pasta_or_slirp4netns_only_none_and_host_networks_remain() {
    let tree = Tree::new();
    tree.remove("usr/bin/pasta");
    let check = tree.check("user-mode network");
    assert!(!check.ok);
    assert!(
        check
            .detail
            .contains("only --network none and --network host")
    );
    assert!(fix(&check).starts_with("sudo apt-get install passt"));

    tree.program("bin/slirp4netns", 0o755);
    let check = tree.check("user-mode network");
    assert!(check.ok);
    assert_eq!(check.detail, "/bin/slirp4netns");

    // Not executable is not there.
    tree.program("bin/slirp4netns", 0o644);
    assert!(!tree.check("user-mode network").ok);
}

#[test]
fn overlayfs_in_a_user_namespace_needs_linux_5_11_else_the_copy_snapshotter() {
    let tree = Tree::new();
    tree.write("proc/sys/kernel/osrelease", "5.10.0-28-amd64\n");
    let check = tree.check("overlayfs in a user namespace");
    assert!(!check.ok);
    assert!(
        check
            .detail
            .starts_with("kernel 5.10.0-28-amd64: overlayfs needs 5.11")
    );
    assert!(check.detail.contains("copy snapshotter"));
    assert!(fix(&check).contains("minibox run --snapshotter copy IMAGE"));

    tree.write("proc/sys/kernel/osrelease", "5.11.0\n");
    assert!(tree.check("overlayfs in a user namespace").ok);
}

#[test]
fn cgroup_v1_or_hybrid_cannot_be_delegated_so_boot_with_v2() {
    let tree = Tree::new();
    for layout in [Layout::Legacy, Layout::Hybrid] {
        let checks = tree.checks_with(|f| f.cgroup_layout = Some(layout));
        let check = find(&checks, "cgroup v2 delegation");
        assert!(!check.ok);
        assert!(check.detail.contains("containers get no resource limits"));
        assert!(
            fix(&check).contains("systemd.unified_cgroup_hierarchy=1"),
            "{check:#?}"
        );
    }
}

#[test]
fn the_delegated_cgroup_is_the_top_most_one_the_user_owns_around_this_process() {
    if !harness::require_root("ch13 checks: delegation (chown)") {
        return;
    }
    let tree = Tree::new();
    let uid = Uid::from_raw(UID);
    let found = delegated_cgroup(&tree.cgroup_mount(), OWN, uid);
    let controllers = ["cpu", "io", "memory", "pids"].map(String::from).to_vec();
    assert_eq!(
        found,
        Some((tree.cgroup_mount().join(SERVICE), controllers))
    );

    // Another user owns nothing here; root owns the top.
    assert_eq!(
        delegated_cgroup(&tree.cgroup_mount(), OWN, Uid::from_raw(1001)),
        None
    );
    let root = delegated_cgroup(&tree.cgroup_mount(), OWN, Uid::from_raw(0));
    assert_eq!(root.unwrap().0, tree.cgroup_mount());
}

#[test]
fn a_partly_owned_cgroup_is_not_delegated() {
    if !harness::require_root("ch13 checks: delegation (chown)") {
        return;
    }
    let tree = Tree::new();
    let uid = Uid::from_raw(UID);
    // The service's subtree_control is root's: the user cannot enable
    // controllers there, so the delegation starts one level lower.
    tree.unchown_cgroup(SERVICE, &["cgroup.subtree_control"]);
    let (dir, _) = delegated_cgroup(&tree.cgroup_mount(), OWN, uid).unwrap();
    assert_eq!(dir, tree.cgroup_mount().join(SERVICE).join("app.slice"));

    // Lower down, only the directories are the user's: nothing is delegated.
    for below in ["app.slice", "app.slice/term.scope"] {
        tree.unchown_cgroup(&format!("{SERVICE}/{below}"), &["cgroup.procs"]);
    }
    assert_eq!(delegated_cgroup(&tree.cgroup_mount(), OWN, uid), None);
    let check = only_fails(&tree.checks(), "cgroup v2 delegation");
    assert!(
        check
            .detail
            .starts_with(&format!("no cgroup around this process ({OWN})"))
    );
    assert!(fix(&check).contains(
        "printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf\nsudo systemctl daemon-reload\n"
    ));
}

#[test]
fn a_delegation_without_memory_or_pids_cannot_limit_them() {
    if !harness::require_root("ch13 checks: delegation (chown)") {
        return;
    }
    let tree = Tree::new();
    tree.write(
        Path::new("sys/fs/cgroup")
            .join(SERVICE)
            .join("cgroup.controllers"),
        "cpu pids\n",
    );
    let check = only_fails(&tree.checks(), "cgroup v2 delegation");
    assert!(
        check
            .detail
            .ends_with("with: cpu pids; without memory, its limits cannot be set")
    );
    assert!(fix(&check).contains("Delegate=cpu cpuset io memory pids"));
}

#[test]
fn a_process_outside_the_delegated_service_is_told_to_start_in_a_scope_there() {
    if !harness::require_root("ch13 checks: delegation (chown)") {
        return;
    }
    let tree = Tree::new();
    // An ssh login: the shell's cgroup is a session scope, root's.
    let session = "/user.slice/user-1000.slice/session-3.scope";
    tree.write("proc/self/cgroup", &format!("0::{session}\n"));
    tree.write(
        Path::new("sys/fs/cgroup")
            .join(&session[1..])
            .join("cgroup.procs"),
        "",
    );
    let check = only_fails(&tree.checks(), "cgroup v2 delegation");
    assert_eq!(
        check.detail,
        format!("/{SERVICE} is yours, but this process runs outside it, in {session}")
    );
    assert!(fix(&check).contains("systemd-run --user --scope --quiet -p Delegate=yes -- minibox"));
}

/// The user the real-machine tests check for: an unprivileged one. As root we
/// check for uid 65533 (no passwd entry), whom the probe becomes.
fn real_user() -> Uid {
    if harness::privilege::is_root() {
        Uid::from_raw(65533)
    } else {
        Uid::effective()
    }
}

#[test]
fn this_machine_lets_an_unprivileged_user_make_user_namespaces() {
    let uid = real_user();
    let checks = rootless(uid);
    let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
    assert_eq!(names, NAMES);
    let userns = find(&checks, "user namespaces");
    assert!(userns.ok, "{userns:#?}");
    assert!(
        userns.detail.starts_with(&format!("uid {uid} made one")),
        "{userns:#?}"
    );
    for check in &checks {
        assert!(
            check.ok || check.fix.is_some(),
            "a failure without a fix: {check:#?}"
        );
        eprintln!(
            "{}: {} — {}",
            check.name,
            if check.ok { "ok" } else { "MISSING" },
            check.detail
        );
    }
    // The cgroup verdict follows the machine's layout: a hybrid one (this
    // machine) is told to boot with v2.
    let delegation = find(&checks, "cgroup v2 delegation");
    if cgroup::detect(Path::new(cgroup::ROOT)).ok() != Some(Layout::Unified) {
        assert!(!delegation.ok);
        assert!(fix(&delegation).contains("systemd.unified_cgroup_hierarchy=1"));
    }
}

#[test]
fn the_probe_really_makes_a_namespace_and_reports_a_refusal_by_its_step() {
    let gid = if harness::privilege::is_root() {
        Gid::from_raw(65533)
    } else {
        Gid::effective()
    };
    assert_eq!(probe_user_namespace(real_user(), gid), Ok(()));
    if !harness::require_root("ch13 checks: the probe as another user") {
        return;
    }
    // uid -1 is no user: the kernel refuses to become it, and the child
    // reports the step and the errno back through its pipe.
    let refused = probe_user_namespace(Uid::from_raw(u32::MAX), Gid::from_raw(65533));
    let expected = ProbeFailure {
        step: "becoming the user",
        errno: Errno::EINVAL,
    };
    assert_eq!(refused, Err(expected));
}

/// Runs the cargo runner as an unprivileged user (uid 65533, through
/// setpriv, when the test is root) for a binary of `package`, with `env`, a
/// fake `sudo` first on PATH; returns whether it went through sudo.
fn runner_used_sudo(package: &str, env: &[(&str, &str)]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let log = dir.path().join("sudo.log");
    let ran = dir.path().join("ran");
    let sudo = dir.path().join("sudo");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> {}\nshift 2\nexec \"$@\"\n",
        log.display()
    );
    fs::write(&sudo, script).unwrap();
    fs::set_permissions(&sudo, fs::Permissions::from_mode(0o755)).unwrap();
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cargo/privileged-runner");
    let mut command = if harness::privilege::is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "65533",
            "--regid",
            "65533",
            "--clear-groups",
            "--",
        ]);
        c.arg(&runner);
        c
    } else {
        Command::new(&runner)
    };
    let status = command
        .args(["/bin/sh", "-c", "id -u > \"$0\""])
        .arg(&ran)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .env("CARGO_PKG_NAME", package)
        .envs(env.iter().copied())
        .status()
        .unwrap();
    assert!(status.success(), "the runner failed: {status}");
    let ran_as = fs::read_to_string(&ran).expect("the binary did not run");
    assert_ne!(
        ran_as.trim(),
        "0",
        "the runner ran as root: the test proves nothing"
    );
    fs::read_to_string(&log).is_ok_and(|log| log.starts_with("-E -- /bin/sh"))
}

#[test]
fn the_runner_lets_chapter_13_and_later_run_rootless_and_elevates_the_rest() {
    let rootless = [("MINIBOX_ROOTLESS", "1")];
    assert!(!runner_used_sudo("ch13-rootless", &rootless));
    assert!(!runner_used_sudo("ch14-oci-runtime", &rootless));
    assert!(!runner_used_sudo("ch105-future", &rootless));
    // Without the variable (or with it off) chapter 13 is elevated as before...
    assert!(runner_used_sudo("ch13-rootless", &[]));
    assert!(runner_used_sudo(
        "ch13-rootless",
        &[("MINIBOX_ROOTLESS", "0")]
    ));
    // ...and earlier chapters always are: they need real root.
    assert!(runner_used_sudo("ch12-security", &[]));
    assert!(runner_used_sudo("ch12-security", &rootless));
    assert!(runner_used_sudo("ch09-networking", &rootless));
    // Chapter 1 never was.
    assert!(!runner_used_sudo("ch01-fork-exec", &[]));
}
