//! Device rules on a pure cgroup v2 host, for real: there is no `devices`
//! controller, so the rules are a BPF program attached to the container's
//! cgroup. This machine's cgroups are hybrid, so these tests mean something
//! only under a pure cgroup v2 kernel: they are chapter 12's v2 suite,
//! which `cargo xtask test-v2` runs inside a small VM (`v2vm`, see
//! ../shared/tools), all of them (`--include-ignored`), counting that each
//! one ran and passed. Plain `cargo test` lists them as ignored. Run by hand
//! on a host that is not pure v2, they skip through `harness::skip`, which
//! fails instead under `MINIBOX_REQUIRE_PRIVILEGED=1` (set by `cargo xtask
//! test-v2` in the VM).
//!
//! The VM has no network: `cargo xtask test-v2` pulls busybox from the
//! fixture registry into a store on the host and copies it into the VM,
//! where `MINIBOX_V2_STORE` names it; the container test copies it into a
//! store of its own. Every test ends with no cgroup left below its parent.

mod device_probe;

use std::path::Path;

use ch05_cgroups::cgroup::{self, Cgroup};
use ch05_cgroups::limits::Limits;
use ch12_security::devices;
use device_probe::{
    DOCKERS_ANSWERS, Step, a_device_to_refuse, dockers_story, in_a_container_made_but_not_read,
    in_cgroup,
};

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch12-security");

use harness::cgroups::{on_v2, on_v2_with_store};

/// A cgroup, destroyed when dropped (also when the test fails half way).
struct Destroyed(Box<dyn Cgroup>);

impl Drop for Destroyed {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_dockers_rules_are_a_bpf_program_that_refuses_the_device() {
    if !on_v2("ch12 v2 device program") {
        return;
    }
    let p = harness::cgroups::test_parent(&format!("minibox-test-{}-v2", std::process::id()));
    let root = Path::new(cgroup::ROOT);
    let create = |id| Destroyed(cgroup::create(root, &p, id, &Limits::default()).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let refused = a_device_to_refuse();

    // Chapter 5's cgroup, v2 here: one directory, no devices files.
    let cgroup = create("c1");
    assert!(!cgroup.0.paths()[0].join("devices.allow").exists());
    devices::apply(&*cgroup.0, &devices::docker_default()).unwrap();
    assert_eq!(
        dockers_story(&*cgroup.0, tmp.path(), refused),
        DOCKERS_ANSWERS
    );

    // --privileged: the same device opens.
    let privileged = create("c2");
    devices::apply(&*privileged.0, &devices::privileged()).unwrap();
    let node = tmp.path().join("privileged");
    let steps = [Step::Mknod(node.clone(), refused), Step::Read(node)];
    assert_eq!(in_cgroup(&*privileged.0, &steps), [Ok(()), Ok(())]);
    drop((cgroup, privileged));
    harness::cgroups::assert_nothing_left(&p);
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_in_a_container_the_device_can_be_made_but_not_read() {
    let Some(store) = on_v2_with_store("ch12 v2 device rules in a container") else {
        return;
    };
    let env = harness::env::Env::builder(MINIBOX, "ch12", "v2-devices").build();
    env.copy_store_from(&store);
    in_a_container_made_but_not_read(&env);
    // The rest of the hardening holds on v2 as on v1.
    let status = env
        .minibox(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "grep",
            "-E",
            "^(CapEff|Seccomp):",
            "/proc/self/status",
        ])
        .expect(0);
    assert_eq!(status.stdout, "CapEff:\t00000000a80425fb\nSeccomp:\t2\n");
}
