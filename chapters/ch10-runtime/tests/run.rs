//! Chapter 10 end to end, for real: root, the real kernel, a real registry.
//! Each test makes a network namespace to play the host, with a store and a
//! runtime directory of its own, and runs `minibox` inside it, one process
//! per command, as a user typing in two terminals would: `run -d` returns,
//! and `ps`, `logs`, `exec`, `stop` and `rm` find the container from the
//! state on disk. Bridges, veths, leases and published ports exist only in
//! the test's namespace; traffic goes only to 127.0.0.1 and to addresses in
//! namespaces the test made. Every test ends by checking that nothing is
//! left: no record, no runtime state, no mount, no cgroup, no veth, no
//! lease, no monitor.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ch09_networking::netns;
use common::{GATEWAY, Host, exit_code, registry, wait_until};

/// The story of the seed material's first minutes: `run hello-world` pulls
/// the image the first time and not the second; `run busybox echo hi`
/// overrides the command; `run busybox ls` lists the image's root, not the
/// host's. Every foreground run leaves an exited container behind, which
/// `container prune` removes.
#[test]
fn hello_world_is_pulled_once_and_busybox_runs_what_it_is_given() {
    if !harness::require_root("ch10 hello-world and busybox") {
        return;
    }
    let registry = registry();
    let host = Host::new("hello", &registry, &[]);

    let first = host.minibox(&["run", "hello-world"]).expect(0);
    assert!(
        first
            .stderr
            .starts_with("Unable to find image 'hello-world:latest' locally\n"),
        "{}",
        first.stderr
    );
    assert!(
        first
            .stderr
            .ends_with("Status: Downloaded newer image for hello-world:latest\n"),
        "{}",
        first.stderr
    );
    assert!(
        first.stdout.starts_with("Hello from minibox!\n"),
        "{}",
        first.stdout
    );
    let asked = host.registry_connections();
    assert!(asked > 0, "the first run asked the registry nothing");

    let second = host.minibox(&["run", "hello-world"]).expect(0);
    assert_eq!(second.stderr, "", "the second run pulls nothing");
    assert_eq!(second.stdout, first.stdout);
    assert_eq!(
        host.registry_connections(),
        asked,
        "the second run asked the registry"
    );

    let hi = host.minibox(&["run", "busybox", "echo", "hi"]).expect(0);
    assert_eq!(hi.stdout, "hi\n");
    assert!(
        hi.stderr
            .starts_with("Unable to find image 'busybox:latest' locally\n"),
        "{}",
        hi.stderr
    );
    let ls = host.minibox(&["run", "busybox", "ls"]).expect(0);
    assert_eq!(ls.stderr, "");
    assert_eq!(
        ls.stdout.lines().collect::<Vec<_>>(),
        [
            "bin", "dev", "etc", "home", "linuxrc", "proc", "root", "run", "sbin", "sys", "tmp",
            "usr", "var"
        ],
        "the image's root, not the host's"
    );

    // Four foreground runs, four exited containers, newest first.
    let all = host.ps(&["-a"]);
    let rows: Vec<(&str, &str, Option<i32>)> = all
        .iter()
        .map(|r| {
            (
                r["IMAGE"].as_str(),
                r["COMMAND"].as_str(),
                exit_code(&r["STATUS"]),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("busybox", "\"ls\"", Some(0)),
            ("busybox", "\"echo hi\"", Some(0)),
            ("hello-world", "\"/hello\"", Some(0)),
            ("hello-world", "\"/hello\"", Some(0)),
        ]
    );
    assert_eq!(host.ps(&[]), [], "nothing runs");
    let ids = host.ids();
    let prune = host.minibox(&["container", "prune"]).expect(0);
    let mut expected = String::from("Deleted Containers:\n");
    for id in &ids {
        expected.push_str(id);
        expected.push('\n');
    }
    expected.push_str("\nTotal reclaimed space: 0B\n");
    assert_eq!(prune.stdout, expected);
    host.assert_clean();
}

/// `run -d` returns at once with the ID; `ps`, `logs`, `stop` and `rm`, each
/// its own process, find the container from the state on disk. busybox's
/// `ping` as PID 1 has no SIGTERM handler, and the kernel ignores a signal
/// without a handler sent to a namespace's init: `stop` waits `-t` seconds,
/// then kills it (137). It does handle SIGINT (it prints its statistics and
/// exits 0), so `stop -s INT` ends it at once.
#[test]
fn a_detached_container_is_listed_logged_stopped_and_removed() {
    if !harness::require_root("ch10 detached lifecycle") {
        return;
    }
    let registry = registry();
    let host = Host::new("detached", &registry, &["busybox"]);

    let started = Instant::now();
    let id = host.run_d(&["busybox", "ping", GATEWAY]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "run -d took {:?}",
        started.elapsed()
    );
    let name = host.inspect(&id)["Name"].as_str().unwrap()[1..].to_string();
    let row = |rows: Vec<std::collections::BTreeMap<String, String>>| {
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows.into_iter().next().unwrap()
    };
    let running = row(host.ps(&[]));
    assert_eq!(running["CONTAINER ID"], id[..12]);
    assert_eq!(running["IMAGE"], "busybox");
    assert_eq!(running["COMMAND"], format!("\"ping {GATEWAY}\""));
    assert!(running["STATUS"].starts_with("Up "), "{running:?}");
    assert_eq!(running["PORTS"], "");
    assert_eq!(running["NAMES"], name);
    let (adjective, person) = name.split_once('_').expect("adjective_person");
    assert!(
        !adjective.is_empty() && person.chars().all(|c| c.is_ascii_lowercase()),
        "{name}"
    );

    // Its output is in the log, while it runs.
    wait_until("two pings in the log", Duration::from_secs(10), || {
        host.minibox(&["logs", &name])
            .expect(0)
            .stdout
            .lines()
            .count()
            >= 3
    });
    let logs = host.minibox(&["logs", &id[..12]]).expect(0);
    let lines: Vec<&str> = logs.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("PING {GATEWAY} ({GATEWAY}): 56 data bytes")
    );
    assert!(
        lines[1].starts_with(&format!("64 bytes from {GATEWAY}: seq=0 ttl=64 time=")),
        "{}",
        logs.stdout
    );
    let state = host.state(&id);
    assert_eq!(state["status"], "running");
    let cgroups = state["cgroups"].as_array().unwrap().clone();
    assert!(!cgroups.is_empty());
    for dir in &cgroups {
        let dir = std::path::Path::new(dir.as_str().unwrap());
        assert!(dir.ends_with(&id), "{}", dir.display());
        assert!(dir.is_dir(), "{}", dir.display());
    }
    assert_eq!(host.veths().len(), 1, "{:?}", host.links());
    assert_eq!(host.leases().len(), 1);

    // SIGTERM is ignored by ping as PID 1: -t 1, then SIGKILL.
    let stopping = Instant::now();
    let stop = host.minibox(&["stop", "-t", "1", &name]).expect(0);
    let took = stopping.elapsed();
    assert_eq!(stop.stdout, format!("{name}\n"));
    assert!(took >= Duration::from_secs(1), "stop took {took:?}");
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    assert_eq!(exit_code(&row(host.ps(&["-a"]))["STATUS"]), Some(137));
    assert_eq!(host.ps(&[]), [], "ps without -a lists only running ones");
    let inspected = host.inspect(&id);
    assert_eq!(inspected["State"]["Status"], "exited");
    assert_eq!(inspected["State"]["ExitCode"], 137);
    // The end is recorded and cleaned up by the time `stop` returns.
    for dir in &cgroups {
        assert!(
            !std::path::Path::new(dir.as_str().unwrap()).exists(),
            "{dir}"
        );
    }
    assert_eq!(host.leases(), []);

    // SIGINT is ping's to handle: statistics, then exit 0.
    let second = host.run_d(&["--name", "pinger", "busybox", "ping", GATEWAY]);
    wait_until("a ping in the log", Duration::from_secs(10), || {
        host.minibox(&["logs", "pinger"])
            .expect(0)
            .stdout
            .lines()
            .count()
            >= 2
    });
    let stopping = Instant::now();
    host.minibox(&["stop", "-s", "INT", "pinger"]).expect(0);
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let logs = host.minibox(&["logs", "--tail", "3", "pinger"]).expect(0);
    let lines: Vec<&str> = logs.stdout.lines().collect();
    assert_eq!(lines[0], format!("--- {GATEWAY} ping statistics ---"));
    assert!(
        lines[1].ends_with(" packets received, 0% packet loss"),
        "{}",
        logs.stdout
    );
    assert_eq!(host.inspect("pinger")["State"]["ExitCode"], 0);

    // `sleep` as PID 1 ignores SIGTERM too.
    let sleeper = host.run_d(&["--name", "sleeper", "busybox", "sleep", "1000"]);
    host.minibox(&["stop", "-t", "1", "sleeper"]).expect(0);
    let statuses: Vec<(String, Option<i32>)> = host
        .ps(&["-a"])
        .into_iter()
        .map(|r| (r["NAMES"].clone(), exit_code(&r["STATUS"])))
        .collect();
    assert_eq!(
        statuses,
        [
            ("sleeper".to_string(), Some(137)),
            ("pinger".to_string(), Some(0)),
            (name.clone(), Some(137)),
        ]
    );

    let rm = host
        .minibox(&["rm", &name, &second[..5], &sleeper])
        .expect(0);
    assert_eq!(rm.stdout, format!("{name}\n{}\n{sleeper}\n", &second[..5]));
    assert_eq!(host.ps(&["-a"]), []);
    host.assert_clean();
}

/// `exec` runs a second process in the container: its hostname, its PID
/// namespace (PID 1 is the container's command, the new process's number
/// is small), its root (a file only the image has), its network and its
/// cgroups; its stdin with `-i`, `-e` and `-w`; its exit status passes
/// through. Docker's errors for a missing program and a stopped container.
#[test]
fn exec_joins_the_running_container() {
    if !harness::require_root("ch10 exec") {
        return;
    }
    let registry = registry();
    let host = Host::new("exec", &registry, &["busybox"]);
    let id = host.run_d(&["--name", "box", "busybox", "sleep", "1000"]);
    let exec = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend(args);
        host.minibox(&all)
    };
    assert_eq!(
        exec(&["box", "hostname"]).expect(0).stdout,
        format!("{}\n", &id[..12])
    );
    assert_eq!(
        exec(&["box", "cat", "/proc/1/cmdline"]).expect(0).stdout,
        "sleep\x001000\x00"
    );
    let pid: i32 = exec(&["box", "sh", "-c", "echo $$"])
        .expect(0)
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!(
        (2..20).contains(&pid),
        "the exec'd shell is PID {pid} inside"
    );
    assert!(!std::path::Path::new("/etc/minibox-release").exists());
    assert_eq!(
        exec(&["box", "cat", "/etc/minibox-release"])
            .expect(0)
            .stdout,
        "minibox busybox root filesystem\n"
    );
    let inspected = host.inspect("box");
    let address = inspected["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(address.starts_with("172.29."), "{inspected}");
    let addr = exec(&["box", "ip", "-o", "-4", "addr", "show", "eth0"]).expect(0);
    assert!(
        addr.stdout.contains(&format!("inet {address}/16")),
        "{}",
        addr.stdout
    );
    // The cgroups: the same as the container's PID 1's (seen from the host),
    // which are not the test's own.
    let init = inspected["State"]["Pid"].as_i64().unwrap();
    let container_cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert_ne!(
        container_cgroups,
        std::fs::read_to_string("/proc/self/cgroup").unwrap()
    );
    assert!(container_cgroups.contains(&id), "{container_cgroups}");
    assert_eq!(
        exec(&["box", "cat", "/proc/self/cgroup"]).expect(0).stdout,
        container_cgroups
    );

    // -e, -w, -i, and the exit status.
    let env = exec(&[
        "-e",
        "GREETING=hey",
        "-w",
        "/tmp",
        "box",
        "sh",
        "-c",
        "echo $GREETING; pwd",
    ])
    .expect(0);
    assert_eq!(env.stdout, "hey\n/tmp\n");
    let mut cat = host.command(&["exec", "-i", "box", "cat"]);
    cat.stdin(Stdio::piped());
    let mut cat = cat.spawn().unwrap();
    cat.stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let cat = harness::process::wait(cat, &["exec", "-i"]).expect(0);
    assert_eq!(cat.stdout, "through stdin\n");
    let seven = exec(&["box", "sh", "-c", "exit 7"]).expect(7);
    assert_eq!((seven.stdout.as_str(), seven.stderr.as_str()), ("", ""));
    let missing = exec(&["box", "nosuch"]).expect(127);
    assert_eq!(
        missing.stderr,
        "minibox: OCI runtime exec failed: exec failed: unable to start container process: \
         exec: \"nosuch\": executable file not found in $PATH: unknown\n"
    );

    host.minibox(&["kill", "box"]).expect(0);
    host.minibox(&["wait", "box"]).expect(0);
    let stopped = exec(&["box", "true"]).expect(1);
    assert_eq!(
        stopped.stderr,
        format!("minibox: Container {id} is not running\n")
    );
    assert_eq!(stopped.stdout, "");
    host.minibox(&["rm", "box"]).expect(0);
    host.assert_clean();
}

/// Sixteen `run -d` at once, from sixteen processes: sixteen IDs, names and
/// addresses, all listed; then `rm -f` of them all.
#[test]
fn sixteen_concurrent_runs_get_their_own_ids_names_and_addresses() {
    if !harness::require_root("ch10 sixteen at once") {
        return;
    }
    let registry = registry();
    let host = Host::new("sixteen", &registry, &["busybox"]);
    let ids: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| host.run_d(&["busybox", "sleep", "1000"])))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let distinct = |values: Vec<String>| values.iter().collect::<BTreeSet<_>>().len();
    assert_eq!(distinct(ids.clone()), 16, "{ids:?}");
    let listed = host.minibox(&["ps", "-q"]).expect(0).stdout;
    assert_eq!(listed.lines().count(), 16, "{listed}");
    let listed: BTreeSet<&str> = listed.lines().collect();
    let short: BTreeSet<&str> = ids.iter().map(|id| &id[..12]).collect();
    assert_eq!(listed, short);
    let inspected: Vec<serde_json::Value> = ids.iter().map(|id| host.inspect(id)).collect();
    let names: Vec<String> = inspected.iter().map(|c| c["Name"].to_string()).collect();
    let addresses: Vec<String> = inspected
        .iter()
        .map(|c| {
            c["NetworkSettings"]["IPAddress"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(distinct(names.clone()), 16, "{names:?}");
    assert_eq!(distinct(addresses.clone()), 16, "{addresses:?}");
    assert!(
        addresses.iter().all(|a| a.starts_with("172.29.0.")),
        "{addresses:?}"
    );
    assert_eq!(host.leases().len(), 16);
    assert_eq!(host.veths().len(), 16);

    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    let removed = host.minibox(&rm).expect(0);
    assert_eq!(removed.stdout.lines().count(), 16, "{}", removed.stdout);
    assert_eq!(host.ps(&["-a"]), []);
    host.assert_clean();
}

/// Two hundred `run --rm`, one after the other, leave nothing behind: each
/// removes itself before `run` returns.
#[test]
fn two_hundred_runs_with_rm_leave_nothing() {
    if !harness::require_root("ch10 two hundred --rm") {
        return;
    }
    let registry = registry();
    let host = Host::new("endurance", &registry, &["busybox"]);
    let started = Instant::now();
    for i in 0..200 {
        let run = host.minibox(&["run", "--rm", "busybox", "true"]);
        assert_eq!((run.status, run.stderr.as_str()), (0, ""), "run {i}");
        if i % 50 == 0 {
            assert_eq!(host.ids(), [] as [String; 0], "after run {i}");
        }
    }
    eprintln!("200 runs with --rm: {:?}", started.elapsed());
    assert_eq!(host.ids(), [] as [String; 0]);
    host.assert_clean();
}

/// A monitor killed with SIGKILL cannot record anything: the next command
/// that looks sees a container whose process runs with nobody above it, and
/// says so (`Dead`, and why in `inspect`). `container prune` ends the
/// process and removes everything of it.
#[test]
fn a_killed_monitor_is_noticed_and_prune_cleans_up() {
    if !harness::require_root("ch10 killed monitor") {
        return;
    }
    let registry = registry();
    let host = Host::new("dead", &registry, &["busybox"]);
    let id = host.run_d(&["--name", "orphan", "busybox", "sleep", "1000"]);
    let state = host.state(&id);
    let monitor = state["monitor"]["pid"].as_i64().unwrap() as i32;
    let init = state["process"]["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        harness::process::comm(monitor).as_deref(),
        Some("minibox-monitor")
    );
    assert_eq!(harness::process::comm(init).as_deref(), Some("sleep"));
    // The monitor this test's `run -d` started, by its PID.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    common::wait_until_gone(monitor);

    let rows = host.ps(&["-a"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["STATUS"], "Dead");
    assert_eq!(host.ps(&[]), [], "a dead container is not running");
    let inspected = host.inspect("orphan");
    assert_eq!(inspected["State"]["Status"], "dead");
    assert_eq!(inspected["State"]["Dead"], true);
    let error = inspected["State"]["Error"].as_str().unwrap();
    assert!(
        error.contains(&format!("monitor PID {monitor} is gone")),
        "{error}"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{init}")).exists(),
        "still runs"
    );

    let prune = host.minibox(&["container", "prune"]).expect(0);
    assert!(
        prune
            .stdout
            .starts_with(&format!("Deleted Containers:\n{id}\n")),
        "{}",
        prune.stdout
    );
    common::wait_until_gone(init);
    assert_eq!(host.ps(&["-a"]), []);
    assert_eq!(host.cgroups(), [] as [std::path::PathBuf; 0]);
    assert_eq!(
        common::entries(&host.env.root().join("containers")),
        [] as [std::path::PathBuf; 0]
    );
    assert_eq!(
        common::entries(&host.run_dir()),
        [] as [std::path::PathBuf; 0]
    );
    // Nobody gave its address back, but its holder (the container's PID 1)
    // is dead: chapter 9's allocator reclaims it for the next container.
    let leases = host.leases();
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(
        (leases[0].owner.as_str(), leases[0].holder.pid),
        (id.as_str(), init)
    );
    assert!(!leases[0].holder.is_alive());
    let next = host
        .minibox(&[
            "run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
        ])
        .expect(0);
    assert!(
        next.stdout
            .contains(&format!("inet {}/16", leases[0].address)),
        "{}",
        next.stdout
    );
    host.assert_clean();
}

/// Two `rm -f` of the same running container at once: both succeed, and
/// the container is gone. Each prints the reference if it found the
/// container, and nothing if the other had removed it already: `rm -f` of a
/// container that is not there is no error, as in Docker's CLI. By full ID,
/// by prefix and by name, twice each.
#[test]
fn two_forced_removals_at_once_both_succeed() {
    if !harness::require_root("ch10 two rm -f") {
        return;
    }
    let registry = registry();
    let host = Host::new("two-rm", &registry, &["busybox"]);
    for round in 0..6 {
        let id = host.run_d(&["--name", "twice", "busybox", "sleep", "1000"]);
        let reference = match round % 3 {
            0 => &id[..],
            1 => &id[..12],
            _ => "twice",
        };
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| host.minibox(&["rm", "-f", reference]));
            let b = scope.spawn(|| host.minibox(&["rm", "-f", reference]));
            (a.join().unwrap(), b.join().unwrap())
        });
        let printed = format!("{reference}\n");
        let (a, b) = (a.expect(0), b.expect(0));
        for run in [&a, &b] {
            assert_eq!(run.stderr, "", "round {round}");
            assert!(
                run.stdout == printed || run.stdout.is_empty(),
                "round {round}: {:?}",
                run.stdout
            );
        }
        assert!(
            a.stdout == printed || b.stdout == printed,
            "round {round}: neither removed it"
        );
        assert_eq!(host.ids(), [] as [String; 0], "round {round}");
        host.assert_clean();
    }
}

/// Bad input: one line on stderr each, Docker's words, Docker's exit code,
/// and nothing changed.
#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    if !harness::require_root("ch10 bad input") {
        return;
    }
    let registry = registry();
    let host = Host::new("bad", &registry, &["busybox"]);
    let containers = || {
        let format = "{{.ID}} {{.Names}} {{.State}}";
        let ps = host.minibox(&["ps", "-a", "--no-trunc", "--format", format]);
        ps.expect(0).stdout
    };
    let fails = |args: &[&str], status: i32, message: &str| {
        let before = containers();
        let run = host.minibox(args).expect(status);
        assert_eq!(run.stderr, format!("minibox: {message}\n"), "{args:?}");
        assert_eq!(containers(), before, "{args:?} changed the containers");
        run
    };

    for args in [
        &["stop", "nope"][..],
        &["kill", "nope"],
        &["rm", "nope"],
        &["logs", "nope"],
        &["wait", "nope"],
        &["exec", "nope", "true"],
        &["port", "nope"],
        &["rename", "nope", "other"],
    ] {
        let run = fails(args, 1, "No such container: nope");
        assert_eq!(run.stdout, "", "{args:?}");
    }

    // `rm -f` of what is not there is no error, and says nothing.
    let before = containers();
    let forced = host.minibox(&["rm", "-f", "nope"]).expect(0);
    assert_eq!((forced.stdout.as_str(), forced.stderr.as_str()), ("", ""));
    assert_eq!(containers(), before);

    // A name in use: Docker's conflict, 125, and no second container.
    let web = host.run_d(&["--name", "web", "busybox", "sleep", "1000"]);
    let leases = host.leases();
    fails(
        &["run", "-d", "--name", "web", "busybox", "sleep", "1000"],
        125,
        &format!(
            "Conflict. The container name \"/web\" is already in use by container \"{web}\". \
             You have to remove (or rename) that container to be able to reuse that name."
        ),
    );
    assert_eq!(host.ids(), std::slice::from_ref(&web));
    assert_eq!(host.leases(), leases);
    assert_eq!(
        common::entries(&host.env.root().join("containers")).len(),
        1
    );
    assert_eq!(common::entries(&host.run_dir()).len(), 1);

    // A running container is not removed without -f.
    fails(
        &["rm", "web"],
        1,
        "cannot remove container \"/web\": container is running: \
         stop the container before removing or force remove",
    );
    assert_eq!(host.inspect("web")["State"]["Status"], "running");

    // An ambiguous prefix: containers until two IDs share a first digit.
    let mut ids = vec![web.clone()];
    let prefix = loop {
        let id = host.run_d(&["--network", "none", "busybox", "sleep", "1000"]);
        if let Some(twin) = ids.iter().find(|other| other[..1] == id[..1]) {
            break twin[..1].to_string();
        }
        ids.push(id);
        assert!(ids.len() <= 17, "seventeen IDs with different first digits");
    };
    for args in [
        &["stop", &prefix][..],
        &["rm", "-f", &prefix],
        &["inspect", &prefix],
    ] {
        fails(
            args,
            1,
            &format!("multiple IDs found with provided prefix: {prefix}"),
        );
    }

    // exec into a stopped container.
    host.minibox(&["stop", "-t", "0", "web"]).expect(0);
    fails(
        &["exec", "web", "true"],
        1,
        &format!("Container {web} is not running"),
    );

    let mut rm = vec!["rm".to_string(), "-f".to_string()];
    rm.extend(host.ids());
    let rm: Vec<&str> = rm.iter().map(String::as_str).collect();
    host.minibox(&rm).expect(0);
    host.assert_clean();
}

/// A foreground `run` is a detached one with the terminal attached: its
/// output goes to the log too, on the right stream, `--rm` removes it
/// before `run` returns, and `-i` passes stdin to it.
#[test]
fn a_foreground_run_logs_removes_and_passes_stdin() {
    if !harness::require_root("ch10 foreground") {
        return;
    }
    let registry = registry();
    let host = Host::new("foreground", &registry, &["busybox"]);
    let fg = host
        .minibox(&["run", "--name", "fg", "busybox", "echo", "hi"])
        .expect(0);
    assert_eq!((fg.stdout.as_str(), fg.stderr.as_str()), ("hi\n", ""));
    let logs = host.minibox(&["logs", "fg"]).expect(0);
    assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("hi\n", ""));

    let both = host
        .minibox(&[
            "run",
            "--name",
            "both",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .expect(3);
    assert_eq!(
        (both.stdout.as_str(), both.stderr.as_str()),
        ("out\n", "err\n")
    );
    let logs = host.minibox(&["logs", "both"]).expect(0);
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(host.inspect("both")["State"]["ExitCode"], 3);

    let gone = host
        .minibox(&["run", "--rm", "--name", "gone", "busybox", "echo", "bye"])
        .expect(0);
    assert_eq!(gone.stdout, "bye\n");
    let names: Vec<String> = host
        .ps(&["-a"])
        .into_iter()
        .map(|r| r["NAMES"].clone())
        .collect();
    assert_eq!(names, ["both", "fg"], "--rm removed its container");

    let mut cat = host.command(&["run", "-i", "--rm", "busybox", "cat"]);
    cat.stdin(Stdio::piped());
    let mut cat = cat.spawn().unwrap();
    cat.stdin.take().unwrap().write_all(b"hello\n").unwrap(); // dropped: end of input
    let cat = harness::process::wait(cat, &["run", "-i", "busybox", "cat"]).expect(0);
    assert_eq!((cat.stdout.as_str(), cat.stderr.as_str()), ("hello\n", ""));

    host.minibox(&["rm", "fg", "both"]).expect(0);
    host.assert_clean();
}

/// `-p` with `-d`: the port the kernel chose is in `port` and `ps`, redis
/// answers PING through it, and `stop` frees the port and the address.
#[test]
fn a_published_port_answers_until_stop() {
    if !harness::require_root("ch10 published port") {
        return;
    }
    let registry = registry();
    let host = Host::new("redis", &registry, &["redis"]);
    host.run_d(&["--name", "cache", "-p", "127.0.0.1::6379", "redis"]);
    let port = host.minibox(&["port", "cache"]).expect(0).stdout;
    let published: u16 = port
        .strip_prefix("6379/tcp -> 127.0.0.1:")
        .and_then(|p| p.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{port:?}"))
        .parse()
        .unwrap();
    assert_eq!(
        host.minibox(&["port", "cache", "6379"]).expect(0).stdout,
        format!("127.0.0.1:{published}\n")
    );
    let rows = host.ps(&[]);
    assert_eq!(rows[0]["PORTS"], format!("127.0.0.1:{published}->6379/tcp"));

    // The proxy listens from the start; redis answers once it is up.
    let ping = || -> std::io::Result<String> {
        let mut conn = host.connect(published)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(b"PING\r\n")?;
        let mut answer = [0u8; 7];
        conn.read_exact(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ping() {
            Ok(answer) => {
                assert_eq!(answer, "+PONG\r\n");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "redis never answered: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(host.leases().len(), 1);

    host.minibox(&["stop", "cache"]).expect(0);
    assert_eq!(
        host.inspect("cache")["State"]["ExitCode"],
        0,
        "redis ends on SIGTERM"
    );
    let freed = netns::run_in(host.ns.as_fd(), move || {
        Ok(TcpListener::bind(("127.0.0.1", published))?)
    });
    assert!(freed.is_ok(), "port {published} still taken: {freed:?}");
    drop(freed);
    assert_eq!(host.leases(), []);
    assert!(host.connect(published).is_err(), "nobody listens any more");
    host.minibox(&["rm", "cache"]).expect(0);
    host.assert_clean();
}
