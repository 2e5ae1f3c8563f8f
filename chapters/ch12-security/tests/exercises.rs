//! Checkers for chapter 12's exercises. They are ignored by plain `cargo test`:
//! run them with `cargo xtask exercise ch12` (or `cargo xtask exercise ch12
//! systempaths`). The book's chapter 12 page describes each exercise; reference
//! solutions are in `book/exercises/ch12-security/`.
//!
//! Every checker starts the real registry with busybox and runs containers
//! (`--network none`) from a store of its own (`harness::env::Env`).

use std::process::Output;

use harness::env::Env;
use harness::images;
use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_minibox");

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
