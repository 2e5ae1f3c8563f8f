//! Checkers for chapter 10's exercises. They are ignored by plain `cargo test`:
//! run them with `cargo xtask exercise ch10` (or `cargo xtask exercise ch10
//! top`). The book's chapter 10 page describes each exercise; reference
//! solutions are in `book/exercises/ch10-runtime/`.
//!
//! Every checker starts the real registry, pushes busybox, pulls it into the
//! harness's test environment (`harness::env::Env`: a store of its own, no
//! credentials, a cgroup parent in which no cgroup may be left), and gives
//! minibox a runtime directory of its own (`MINIBOX_RUN`). Its containers run
//! with `--network none` or `--network host`, so nothing is made in the
//! machine's network. Whatever a checker started is removed with `rm -f`
//! when it ends, failed or not. The helpers are written here, not shared with
//! the chapter's tests, so that those can change without breaking the
//! exercises.

use std::collections::BTreeSet;
use std::process::Output;
use std::time::{Duration, Instant};

use harness::env::Env;
use harness::images;
use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_minibox");

/// A store, a runtime directory and a registry of one checker's own.
struct Machine {
    /// The store, the credentials (none), the cgroup parent.
    env: Env,
    /// `MINIBOX_RUN`.
    run: tempfile::TempDir,
    /// The fixture registry, Docker Hub's mirror for this checker.
    _registry: Registry,
}

impl Machine {
    /// A machine for exercise `exercise`, with busybox pulled.
    fn new(exercise: &str) -> Machine {
        let registry = Registry::start();
        let busybox = images::busybox().expect("the busybox image");
        registry.push("library/busybox", "latest", &busybox);
        let env = Env::builder(MINIBOX, "ch10", &format!("exercise-{exercise}"))
            .mirror(&registry)
            .build();
        let machine = Machine {
            env,
            run: tempfile::tempdir().expect("a runtime directory"),
            _registry: registry,
        };
        let out = machine.minibox(&["pull", "-q", "busybox"]);
        assert!(
            out.status.success(),
            "expected `minibox pull busybox` to work, but {}",
            harness::transcript::seen(&out)
        );
        machine
    }

    /// Runs `minibox ARGS` to its end (60 s at most).
    fn minibox(&self, args: &[&str]) -> Output {
        let mut command = self.env.command(args);
        command.env("MINIBOX_RUN", self.run.path());
        let child = command.spawn().expect("run minibox");
        harness::process::wait_with_deadline(
            child,
            &format!("minibox {}", args.join(" ")),
            Duration::from_secs(60),
        )
    }

    /// `minibox run -d ARGS`, which must work: the container's full ID.
    fn detached(&self, args: &[&str]) -> String {
        let args: Vec<&str> = ["run", "-d", "--quiet"]
            .iter()
            .chain(args)
            .copied()
            .collect();
        let out = self.minibox(&args);
        let id = text(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && id.len() == 64,
            "expected `minibox {}` to start a container and print its ID, but {}",
            args.join(" "),
            harness::transcript::seen(&out)
        );
        id
    }

    /// The IDs `minibox ps ARGS -q --no-trunc` lists, which must work.
    fn ps(&self, args: &[&str]) -> BTreeSet<String> {
        let args: Vec<&str> = ["ps"]
            .iter()
            .chain(args)
            .chain(&["-q", "--no-trunc"])
            .copied()
            .collect();
        let out = self.minibox(&args);
        assert!(
            out.status.success(),
            "expected `minibox {}` to list containers, but {}",
            args.join(" "),
            harness::transcript::seen(&out)
        );
        text(&out.stdout).lines().map(str::to_string).collect()
    }

    /// The container's PID 1, as the host numbers it (`inspect`'s
    /// `State.Pid`), once it runs `program`.
    fn init(&self, id: &str, program: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.minibox(&["inspect", id]);
            let inspected: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or_default();
            let pid = inspected[0]["State"]["Pid"].as_i64().unwrap_or(0) as i32;
            if pid > 0 && harness::process::comm(pid).as_deref() == Some(program) {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "the container {id} never ran {program} as its PID 1: {}",
                harness::transcript::seen(&out)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Machine {
    /// Removes every container the checker made, before the environment
    /// checks that no cgroup is left.
    fn drop(&mut self) {
        let out = self.minibox(&["ps", "-a", "-q", "--no-trunc"]);
        let ids: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        if !ids.is_empty() {
            let args: Vec<&str> = ["rm", "-f"]
                .into_iter()
                .chain(ids.iter().map(String::as_str))
                .collect();
            let _ = self.minibox(&args);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A set of IDs, shortened, for messages.
fn short(ids: &BTreeSet<String>) -> Vec<&str> {
    ids.iter().map(|id| &id[..12.min(id.len())]).collect()
}

#[test]
#[ignore = "exercise: run with `cargo xtask exercise ch10`"]
fn exercise_network_filter() {
    if !harness::require_root("ch10 exercise network-filter") {
        return;
    }
    let machine = Machine::new("network-filter");
    let none = machine.detached(&["--network", "none", "busybox", "sleep", "1000"]);
    let host = machine.detached(&["--network", "host", "busybox", "sleep", "1000"]);
    let only = |id: &String| BTreeSet::from([id.clone()]);

    for (network, wanted) in [("none", only(&none)), ("host", only(&host))] {
        let filter = format!("network={network}");
        let listed = machine.ps(&["--filter", &filter]);
        assert_eq!(
            listed,
            wanted,
            "expected `minibox ps --filter {filter}` to list only the container on network \
             {network} ({:?}), but it listed {:?}",
            short(&wanted),
            short(&listed)
        );
    }
    let listed = machine.ps(&["--filter", "network=bridge"]);
    assert!(
        listed.is_empty(),
        "expected `minibox ps --filter network=bridge` to list nothing (no container is on the \
         bridge), but it listed {:?}",
        short(&listed)
    );
    // Values of one key are alternatives; different keys must all hold.
    let both = BTreeSet::from([none.clone(), host.clone()]);
    let listed = machine.ps(&["--filter", "network=none", "--filter", "network=host"]);
    assert_eq!(
        listed,
        both,
        "expected `--filter network=none --filter network=host` to list both containers, but it \
         listed {:?}",
        short(&listed)
    );
    let listed = machine.ps(&[
        "-a",
        "--filter",
        "network=host",
        "--filter",
        "status=exited",
    ]);
    assert!(
        listed.is_empty(),
        "expected `--filter network=host --filter status=exited` to list nothing (the container \
         on host runs), but it listed {:?}",
        short(&listed)
    );
}

/// The parent of process `pid`, from `/proc/PID/stat` (the field after the
/// state, which follows the command's closing parenthesis).
fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// One row of `minibox top`: PID, PPID, CMD.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    pid: i32,
    ppid: i32,
    cmd: String,
}

/// The rows of `top`'s output, after its header; a line that does not start
/// with two numbers is not a row.
fn rows(stdout: &str) -> Vec<Row> {
    stdout
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let pid = words.next()?.parse().ok()?;
            let ppid = words.next()?.parse().ok()?;
            let cmd = words.collect::<Vec<_>>().join(" ");
            Some(Row { pid, ppid, cmd })
        })
        .collect()
}

#[test]
#[ignore = "exercise: run with `cargo xtask exercise ch10`"]
fn exercise_top() {
    if !harness::require_root("ch10 exercise top") {
        return;
    }
    let machine = Machine::new("top");
    let id = machine.detached(&[
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & exec sleep 1001",
    ]);
    let init = machine.init(&id, "sleep");
    let child = harness::process::children(init as u32)
        .first()
        .copied()
        .expect("the container's PID 1 has its child, sleep 1000");

    let out = machine.minibox(&["top", &id[..12]]);
    let stdout = text(&out.stdout);
    let header = stdout.lines().next().unwrap_or_default();
    assert!(
        out.status.success() && header.contains("PID") && header.contains("CMD"),
        "expected `minibox top` to print a header with PID, PPID and CMD, then one line per \
         process, but {}",
        harness::transcript::seen(&out)
    );
    let mut found = rows(&stdout);
    found.sort_by_key(|row| row.pid);
    let mut expected = vec![
        Row {
            pid: init,
            ppid: ppid(init),
            cmd: "sleep 1001".into(),
        },
        Row {
            pid: child,
            ppid: init,
            cmd: "sleep 1000".into(),
        },
    ];
    expected.sort_by_key(|row| row.pid);
    assert_eq!(
        found, expected,
        "expected `minibox top` to list the container's two processes by their host PIDs: \
         {init} (sleep 1001, the container's PID 1, whose parent is its monitor) and {child} \
         (sleep 1000, its child), but it printed:\n{stdout}"
    );

    let out = machine.minibox(&["stop", "-t", "0", &id]);
    assert!(
        out.status.success(),
        "expected `minibox stop` to work, but {}",
        harness::transcript::seen(&out)
    );
    let out = machine.minibox(&["top", &id]);
    let stderr = text(&out.stderr);
    assert!(
        out.status.code() == Some(1) && stderr.contains(&format!("Container {id} is not running")),
        "expected `minibox top` of a stopped container to fail with Docker's `Container ID is \
         not running` and status 1, but {}",
        harness::transcript::seen(&out)
    );
}
