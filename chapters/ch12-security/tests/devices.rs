//! Device rules on this machine's kernel, for real. Its cgroups are hybrid:
//! the v1 `devices` controller is mounted, and the unified v2 tree too,
//! where a BPF device program works as well (it needs no controller). So
//! both ways are tested here: a process in a cgroup with Docker's rules
//! makes a node for one of the host's devices (its disk, where this process
//! may read it; here a loop device) and cannot open it, while `/dev/null`
//! opens; with `--privileged`'s rules the same node opens. Then the same
//! through `minibox run`. The pure v2 host is the v2 suite's (`v2.rs`,
//! `cargo xtask test-v2`).
//!
//! Every cgroup goes below this test's own cgroup (`harness::cgroups`),
//! every node into a temporary directory, and both are removed on every
//! path; the test fails if a cgroup is left.

mod device_probe;

use std::path::{Path, PathBuf};

use ch05_cgroups::cgroup::v2::V2Cgroup;
use ch05_cgroups::cgroup::{self, Cgroup, OwnCgroups};
use ch05_cgroups::limits::Limits;
use ch12_security::devices::bpf::{self, Insn, Program};
use ch12_security::devices::{self, Effective};
use device_probe::{
    DOCKERS_ANSWERS, Step, a_device_to_refuse, dockers_story, here,
    in_a_container_made_but_not_read, in_cgroup,
};
use nix::errno::Errno;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch12-security");

/// A cgroup parent of the test's own, below its own cgroup.
fn parent(test: &str) -> String {
    harness::cgroups::test_parent(&format!("minibox-test-{}-{test}", std::process::id()))
}

/// A cgroup, destroyed when dropped (also when the test fails half way).
struct Destroyed(Box<dyn Cgroup>);

impl Drop for Destroyed {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

/// The cgroup v2 tree, wherever it is mounted (hybrid: `unified`).
fn unified() -> Option<PathBuf> {
    harness::cgroups::hierarchies()
        .into_iter()
        .find(|h| h.fs_type == "cgroup2")
        .map(|h| h.mount)
}

/// The refused device's node opens from the test process itself, which no
/// rule confines: a refusal in the cgroup is the cgroup's, not a missing
/// device or a `nodev` mount.
fn assert_opens_here(dir: &Path) {
    let node = dir.join("here");
    let steps = [
        Step::Mknod(node.clone(), a_device_to_refuse()),
        Step::Read(node),
    ];
    assert_eq!(here(&steps), [Ok(()), Ok(())]);
}

/// Makes a node for the refused device and reads it, in `cgroup`.
fn read_refused(cgroup: &dyn Cgroup, dir: &Path) -> Vec<Result<(), Errno>> {
    let node = dir.join("privileged");
    let steps = [
        Step::Mknod(node.clone(), a_device_to_refuse()),
        Step::Read(node),
    ];
    in_cgroup(cgroup, &steps)
}

#[test]
fn dockers_rules_let_a_process_make_a_hosts_device_but_not_open_it() {
    if !harness::require_root("ch12 device rules") {
        return;
    }
    let p = parent("devices");
    let root = Path::new(cgroup::ROOT);
    let tmp = tempfile::tempdir().unwrap();
    assert_opens_here(tmp.path());
    // Chapter 5's cgroup: v1 on this machine, with a devices directory.
    let cgroup = Destroyed(cgroup::create(root, &p, "c1", &Limits::default()).unwrap());
    devices::apply(&*cgroup.0, &devices::docker_default()).unwrap();
    if let Some(v1) = cgroup
        .0
        .paths()
        .iter()
        .find(|d| d.join("devices.list").exists())
    {
        // The kernel read the rules as `Effective` does, which the BPF
        // program of v2 is compiled from.
        let list = std::fs::read_to_string(v1.join("devices.list")).unwrap();
        let effective = Effective::of(&devices::docker_default());
        assert_eq!(list.lines().collect::<Vec<_>>(), effective.list());
    }
    let answers = dockers_story(&*cgroup.0, tmp.path(), a_device_to_refuse());
    assert_eq!(answers, DOCKERS_ANSWERS);

    // --privileged: the same device opens.
    let privileged = Destroyed(cgroup::create(root, &p, "c2", &Limits::default()).unwrap());
    devices::apply(&*privileged.0, &devices::privileged()).unwrap();
    assert_eq!(read_refused(&*privileged.0, tmp.path()), [Ok(()), Ok(())]);
    drop((cgroup, privileged));
    harness::cgroups::assert_nothing_left(&p);
}

#[test]
fn the_bpf_program_refuses_on_the_v2_tree_too() {
    if !harness::require_root("ch12 device program on cgroup v2") {
        return;
    }
    let Some(unified) = unified() else {
        harness::skip("ch12 device program", "this host has no cgroup v2 mount");
        return;
    };
    // No limits: nothing is handed down, so this works below a cgroup that
    // holds processes too, and on the hybrid tree without controllers.
    let p = format!("minibox-test-{}-devices-v2", std::process::id());
    let own = OwnCgroups::of_this_process().unwrap();
    let create = |id| V2Cgroup::create(&unified, &own, &p, id, &Limits::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    assert_opens_here(tmp.path());

    let cgroup = Destroyed(Box::new(create("c1")));
    devices::apply(&*cgroup.0, &devices::docker_default()).unwrap();
    let answers = dockers_story(&*cgroup.0, tmp.path(), a_device_to_refuse());
    assert_eq!(answers, DOCKERS_ANSWERS);

    let privileged = Destroyed(Box::new(create("c2")));
    devices::apply(&*privileged.0, &devices::privileged()).unwrap();
    assert_eq!(read_refused(&*privileged.0, tmp.path()), [Ok(()), Ok(())]);
    drop((cgroup, privileged));
    harness::cgroups::assert_nothing_left(&p);
}

#[test]
fn a_program_the_verifier_refuses_fails_with_its_log() {
    if !harness::require_root("ch12 device program verifier log") {
        return;
    }
    // `exit` with nothing in r0: no answer. The load fails before the
    // cgroup is opened, so any directory does.
    let program = Program {
        insns: vec![Insn::Exit],
        notes: Vec::new(),
    };
    let error = bpf::attach(Path::new("/nonexistent"), &program).unwrap_err();
    let text = format!("{error:#}");
    assert!(
        text.starts_with("bpf(BPF_PROG_LOAD) of the device program: EACCES"),
        "{text}"
    );
    assert!(text.contains("R0 !read_ok"), "no verifier log in: {text}");
}

#[test]
fn in_a_container_a_hosts_device_can_be_made_but_not_read() {
    if !harness::require_root("ch12 device rules in a container") {
        return;
    }
    let registry = harness::registry::Registry::start();
    registry.push_fixtures().expect("fixtures");
    let env = harness::env::Env::builder(MINIBOX, "ch12", "devices")
        .mirror(&registry)
        .build();
    env.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    in_a_container_made_but_not_read(&env);
}
