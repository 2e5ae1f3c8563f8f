//! Checkers for chapter 10's exercises. They are ignored by plain `cargo test`:
//! run them with `cargo xtask exercise ch10` (or `cargo xtask exercise ch10
//! logs-until`). The book's chapter 10 page describes each exercise; reference
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

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch10-runtime");

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

/// The log's records as `logs -t` prints them: each line's time and text.
fn timed_lines(stdout: &str) -> Vec<(time::OffsetDateTime, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let (time, text) = line.split_once(' ')?;
            let time =
                time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                    .ok()?;
            Some((time, text.to_string()))
        })
        .collect()
}

#[test]
#[ignore = "exercise: run with `cargo xtask exercise ch10`"]
fn exercise_logs_until() {
    if !harness::require_root("ch10 exercise logs-until") {
        return;
    }
    let machine = Machine::new("logs-until");
    let script = "echo early; sleep 1; echo late; sleep 1000";
    let id = machine.detached(&["--network", "none", "busybox", "sh", "-c", script]);
    // Both lines in the log, each with the time the monitor wrote it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let out = machine.minibox(&["logs", "-t", &id]);
        let lines = timed_lines(&text(&out.stdout));
        if lines.len() == 2 {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "expected `minibox logs -t` to show two timed lines, early and late, but {}",
            harness::transcript::seen(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let gap: time::Duration = lines[1].0 - lines[0].0;
    let middle: time::OffsetDateTime = lines[0].0 + gap / 2;
    let middle = middle
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time in RFC 3339");
    let logs = |args: &Vec<&str>| {
        let args: Vec<&str> = ["logs"]
            .iter()
            .chain(args)
            .chain(&[id.as_str()])
            .copied()
            .collect();
        let out = machine.minibox(&args);
        assert!(
            out.status.success(),
            "expected `minibox {}` to work, but {}",
            args.join(" "),
            harness::transcript::seen(&out)
        );
        text(&out.stdout)
    };
    for (args, wanted) in [
        (vec!["--until", middle.as_str()], "early\n"),
        (vec!["--since", middle.as_str()], "late\n"),
        (
            vec![
                "--since",
                middle.as_str(),
                "--until",
                "2999-01-01T00:00:00Z",
            ],
            "late\n",
        ),
        (vec!["--until", "42m"], ""),
    ] {
        let seen = logs(&args);
        assert_eq!(
            seen,
            wanted,
            "expected `minibox logs {} CONTAINER` to print {wanted:?} (early was written at {}, \
             late at {}), but it printed {seen:?}",
            args.join(" "),
            lines[0].0,
            lines[1].0
        );
    }
}
