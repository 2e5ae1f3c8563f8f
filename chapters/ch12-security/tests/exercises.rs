//! Checkers for chapter 12's exercises. They are ignored by plain `cargo test`:
//! run them with `cargo xtask exercise ch12` (or `cargo xtask exercise ch12
//! systempaths`). The book's chapter 12 page describes each exercise; reference
//! solutions are in `book/exercises/ch12-security/`.
//!
//! Every checker starts the real registry with busybox and runs containers
//! (`--network none`) from a store of its own (`harness::env::Env`).

use std::process::Output;

use ch12_security::seccomp::{Action, Arch, Profile, Target, running_kernel};
use harness::env::Env;
use harness::images;
use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch12-security");

/// A store and a registry of one checker's own, with busybox pulled.
struct Machine {
    env: Env,
    _registry: Registry,
}

impl Machine {
    fn new(exercise: &str) -> Machine {
        let registry = Registry::start();
        let busybox = images::busybox().expect("the busybox image");
        registry.push("library/busybox", "latest", &busybox);
        let env = Env::builder(MINIBOX, "ch12", &format!("exercise-{exercise}"))
            .mirror(&registry)
            .build();
        let machine = Machine {
            env,
            _registry: registry,
        };
        machine.ok(&["pull", "--quiet", "busybox"]);
        machine
    }

    /// `minibox run --rm --network none ARGS`, to its end.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(args);
        self.env.command(&all).output().expect("minibox runs")
    }

    /// `minibox ARGS`, which must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.env.command(args).output().expect("minibox runs");
        assert!(
            out.status.success(),
            "expected `minibox {}` to work, but {}",
            args.join(" "),
            harness::transcript::seen(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The mount points of a container's `/proc/self/mountinfo` under /proc
/// and /sys, with their options (`/proc/sys ro,nosuid,...`).
fn system_mounts(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = *fields.get(4)?;
            let options = *fields.get(5)?;
            let under = |dir: &str| point.starts_with(&format!("{dir}/"));
            (under("/proc") || under("/sys")).then(|| format!("{point} {options}"))
        })
        .collect()
}

#[test]
#[ignore = "exercise: run with `cargo xtask exercise ch12 systempaths`"]
fn exercise_systempaths() {
    if !harness::require_root("ch12 exercise systempaths") {
        return;
    }
    let machine = Machine::new("systempaths");
    let mountinfo = ["busybox", "cat", "/proc/self/mountinfo"];
    let default = system_mounts(&machine.run(&mountinfo));
    assert!(
        default.iter().any(|m| m.starts_with("/proc/keys "))
            && default.iter().any(|m| m.starts_with("/proc/sys ro")),
        "expected a default container to keep its masked and read-only paths, but its mounts under /proc and /sys are {default:?}"
    );
    let mut args = vec!["--security-opt", "systempaths=unconfined"];
    args.extend(mountinfo);
    let out = machine.run(&args);
    assert!(
        out.status.success(),
        "expected `run --security-opt systempaths=unconfined` to work, but {}",
        harness::transcript::seen(&out)
    );
    let unconfined = system_mounts(&out);
    assert!(
        unconfined.is_empty(),
        "expected nothing mounted over /proc or /sys with systempaths=unconfined (nothing masked, nothing read-only), but found {unconfined:?}"
    );
    let wrong = machine.run(&["--security-opt", "systempaths=open", "busybox", "true"]);
    assert_eq!(
        wrong.status.code(),
        Some(125),
        "expected `--security-opt systempaths=open` to be refused (125), but {}",
        harness::transcript::seen(&wrong)
    );
}

/// The profile the `no-chmod` exercise writes.
fn no_chmod_profile() -> std::path::PathBuf {
    harness::transcript::workspace_root().join("chapters/ch12-security/examples/no-chmod.json")
}

/// What `profile` answers for the call `name` on this machine, for a
/// container without capabilities: the first rule naming it, unconditionally,
/// or the default action.
fn verdict(profile: &Profile, name: &str) -> Option<Action> {
    let caps = std::collections::BTreeSet::new();
    let target = Target {
        arch: Arch::this_machine().unwrap(),
        kernel: running_kernel().unwrap(),
        caps: &caps,
    };
    profile
        .rules_for(&target)
        .find(|rule| rule.args.is_empty() && rule.names.iter().any(|n| n == name))
        .map(|rule| rule.action)
        .or(profile.default_action)
}

#[test]
#[ignore = "exercise: run with `cargo xtask exercise ch12 no-chmod`"]
fn exercise_no_chmod() {
    if !harness::require_root("ch12 exercise no-chmod") {
        return;
    }
    let path = no_chmod_profile();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("expected a profile at {}, but: {e}", path.display()));
    let profile = Profile::parse(&text)
        .unwrap_or_else(|e| panic!("expected a profile in Docker's format, but: {e:#}"));
    // Changing a mode has four system calls; a profile must refuse them all.
    for name in ["chmod", "fchmod", "fchmodat", "fchmodat2"] {
        assert_eq!(
            verdict(&profile, name),
            Some(Action::Errno(libc::EPERM as u32)),
            "expected {name} to fail with EPERM (errnoRet 1), but the profile answers {:?}",
            verdict(&profile, name)
        );
    }
    for name in ["chown", "openat", "write", "execve", "unshare"] {
        assert_eq!(
            verdict(&profile, name),
            Some(Action::Allow),
            "expected every other call to be allowed, {name} too, but the profile answers {:?}",
            verdict(&profile, name)
        );
    }
    let machine = Machine::new("no-chmod");
    let option = format!("seccomp={}", path.display());
    let script = "touch /tmp/f && chown 1 /tmp/f && echo chown works; chmod 600 /tmp/f";
    let out = machine.run(&["--security-opt", &option, "busybox", "sh", "-c", script]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("chown works") && stderr.contains("Operation not permitted"),
        "expected chown to work and chmod to fail with EPERM in the container, but {}",
        harness::transcript::seen(&out)
    );
}
