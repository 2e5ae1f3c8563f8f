//! Checkers for chapter 13's exercises. They are ignored by plain `cargo test`:
//! run them with `cargo xtask exercise ch13` (or `cargo xtask exercise ch13
//! unshare`). The book's chapter 13 page describes each exercise; reference
//! solutions are in `book/exercises/ch13-rootless/`.
//!
//! Every checker runs minibox as a user made for it (`harness::rootless`),
//! with a registry of its own.

use std::path::Path;

use harness::images;
use harness::netns::NetNs;
use harness::process::Run;
use harness::registry::Registry;
use harness::rootless::TestUser;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch13-rootless");

/// A user with a subordinate range, and a registry with busybox.
struct Machine {
    user: TestUser,
    _registry: Registry,
}

impl Machine {
    fn new() -> Machine {
        let registry = Registry::start();
        let busybox = images::busybox().expect("the busybox image");
        registry.push("library/busybox", "latest", &busybox);
        let mut user = TestUser::new(Path::new(MINIBOX), true);
        user.set_env("MINIBOX_REGISTRY_MIRROR", &registry.host());
        Machine {
            user,
            _registry: registry,
        }
    }

    /// `minibox ARGS` as the user, to its end.
    fn minibox(&self, args: &[&str]) -> Run {
        self.user.minibox(args)
    }
}

/// What a run printed, for a checker's message.
fn seen(run: &Run) -> String {
    format!(
        "exit {}, stdout {:?}, stderr {:?}",
        run.status, run.stdout, run.stderr
    )
}

#[test]
#[ignore = "an exercise: cargo xtask exercise ch13 unshare"]
fn exercise_unshare() {
    let machine = Machine::new();
    let id = machine.minibox(&["unshare", "id", "-u"]);
    assert!(
        id.status == 0 && id.stdout == "0\n",
        "expected `minibox unshare id -u` to print 0 (root, in the user's namespace), but saw {}",
        seen(&id)
    );
    let map = machine.minibox(&["unshare", "cat", "/proc/self/uid_map"]);
    let (start, count) = machine.user.range.unwrap();
    let lines: Vec<Vec<String>> = map
        .stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let expected = [
        ["0", &machine.user.uid.to_string(), "1"]
            .map(str::to_owned)
            .to_vec(),
        ["1", &start.to_string(), &count.to_string()]
            .map(str::to_owned)
            .to_vec(),
    ];
    assert_eq!(
        lines,
        expected,
        "expected the namespace's uid_map (your ID as 0, your range from 1), but saw {}",
        seen(&map)
    );
    let status = machine.minibox(&["unshare", "sh", "-c", "exit 3"]);
    assert_eq!(
        status.status,
        3,
        "expected the command's exit status, 3, but saw {}",
        seen(&status)
    );
    // The same namespace as the containers': a file a container's user
    // 1000 made can be removed there, and not by the user outside.
    machine.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    let volume = machine.user.home().join("shared");
    std::fs::create_dir(&volume).unwrap();
    std::os::unix::fs::chown(&volume, Some(machine.user.uid), Some(machine.user.uid)).unwrap();
    let everyone = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(&volume, everyone).unwrap();
    let bind = format!("{}:/shared", volume.display());
    let made = [
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1000",
        "-v",
        &bind,
    ];
    let make = [
        "busybox",
        "sh",
        "-c",
        "mkdir /shared/app && touch /shared/app/file",
    ];
    machine.minibox(&[&made[..], &make[..]].concat()).expect(0);
    let app = volume.join("app").display().to_string();
    let removed = machine.minibox(&["unshare", "rm", "-rf", &app]);
    assert!(
        removed.status == 0 && !volume.join("app").exists(),
        "expected `minibox unshare rm -rf` to remove what a container's user 1000 made, but saw {}",
        seen(&removed)
    );
    machine.user.stop_pause();
}

#[test]
#[ignore = "an exercise: cargo xtask exercise ch13 privileged-port"]
fn exercise_privileged_port() {
    let mut machine = Machine::new();
    // A namespace where unprivileged ports start at 2000, not 1024.
    let netns = NetNs::new().expect("a network namespace");
    let mut sysctl = std::process::Command::new("sh");
    sysctl.args([
        "-c",
        "echo 2000 > /proc/sys/net/ipv4/ip_unprivileged_port_start",
    ]);
    netns.enter(&mut sysctl).unwrap();
    assert!(sysctl.status().unwrap().success(), "setting the sysctl");
    // Pulled from the registry on the test's own 127.0.0.1 first.
    machine.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    machine
        .user
        .in_network_namespace(netns.descriptor().unwrap());
    let refused = machine.minibox(&["run", "--rm", "-p", "127.0.0.1:1500:80", "busybox", "true"]);
    let expected = "minibox: cannot expose privileged port 1500, you can add 'net.ipv4.ip_unprivileged_port_start=1500' to /etc/sysctl.conf (currently 2000), or choose a larger port number (>= 2000)\n";
    assert!(
        refused.status == 125 && refused.stderr == expected,
        "expected exit 125 and the one line\n{expected}but saw {}",
        seen(&refused)
    );
    let left = machine.minibox(&["ps", "-a", "-q"]).expect(0);
    assert_eq!(left.stdout, "", "expected no container left behind");
    let above = machine.minibox(&["run", "--rm", "-p", "127.0.0.1:2500:80", "busybox", "true"]);
    assert_eq!(
        above.status,
        0,
        "expected a port above the start to work, but saw {}",
        seen(&above)
    );
    machine.user.stop_pause();
}
