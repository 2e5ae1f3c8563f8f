//! Chapter 5 against the real kernel (needs root). On this project's machines
//! cgroups are hybrid, so the limits are enforced by the v1 controllers: a
//! process past `--memory` is OOM-killed and reported, forks past `--pids-limit`
//! fail while the container lives on, `--cpus 0.2` holds a busy loop near 20 %.
//! The v2 code runs for real on the unified tree where this machine allows it
//! (joining, `cgroup.kill`, `cgroup.events`), and its limit files are checked
//! against a fake tree in the unit tests; `tests/v2.rs` proves enforcement under
//! a pure v2 kernel.
//!
//! Every container's cgroup goes below this test process's own cgroup
//! (a relative `MINIBOX_CGROUP_PARENT`), and each test checks that nothing is
//! left there afterwards, in every hierarchy mounted (read from mountinfo by
//! the harness, not by the code under test).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use ch05_cgroups::cgroup::v2::V2Cgroup;
use ch05_cgroups::cgroup::{Cgroup, OwnCgroups};
use ch05_cgroups::limits::Limits;

use common::{ALL_LIMITS, BUSY_2S, DD_64M, FORK_20, MINIBOX, WAIT_FOR_STDIN};

/// A cgroup parent for one test: below our own cgroup where the host allows
/// (see `harness::cgroups`).
fn parent(test: &str) -> String {
    harness::cgroups::test_parent(&format!("minibox-test-{}-{test}", std::process::id()))
}

fn minibox(parent: &str, args: &[&str]) -> Output {
    Command::new(MINIBOX)
        .args(args)
        .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
        .env("MINIBOX_CGROUP_PARENT", parent)
        .stdin(Stdio::null())
        .output()
        .expect("run minibox")
}

/// Fails if `parent` is left in any mounted cgroup hierarchy. The hierarchies
/// come from /proc/self/mountinfo, read by the harness: not by the code under
/// test.
fn assert_nothing_left(parent: &str) {
    harness::cgroups::assert_nothing_left(parent);
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn past_the_memory_limit_the_container_is_oom_killed_and_told() {
    if !harness::require_root("ch05 OOM kill") {
        return;
    }
    let p = parent("oom");
    let out = minibox(
        &p,
        &[&["run", "--quiet", "--memory", "32m"][..], &DD_64M].concat(),
    );
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert_eq!(
        stderr(&out),
        "minibox: killed: out of memory (limit 32MiB)\n"
    );
    assert_nothing_left(&p);

    // Under the limit, the same program runs.
    let out = minibox(
        &p,
        &[
            "run",
            "--quiet",
            "--memory",
            "32m",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=1M",
            "count=64",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_nothing_left(&p);
}

#[test]
fn past_the_pids_limit_fork_fails_but_the_container_lives_on() {
    if !harness::require_root("ch05 pids limit") {
        return;
    }
    let p = parent("pids");
    let out = minibox(
        &p,
        &["run", "--quiet", "--pids-limit", "10", "sh", "-c", FORK_20],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sh: can't fork: Resource temporarily unavailable\nstill running\n"
    );
    // Without the limit, the same script forks all 20.
    let out = minibox(&p, &["run", "--quiet", "sh", "-c", FORK_20]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still running\n");
    assert_nothing_left(&p);
}

#[test]
fn cpus_hold_a_busy_loop_near_its_share() {
    if !harness::require_root("ch05 cpu quota") {
        return;
    }
    let p = parent("cpus");
    // --stats reads the cgroup's CPU time.
    let args = [
        "run", "--quiet", "--cpus", "0.2", "--stats", "sh", "-c", BUSY_2S,
    ];
    let out = minibox(&p, &args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let cpu = common::cpu_seconds(&stderr(&out));
    let share = cpu / 2.0;
    assert!(
        (0.1..=0.32).contains(&share),
        "--cpus 0.2 let a busy loop use {:.0} % of a CPU ({cpu} s in 2 s)",
        share * 100.0
    );
    assert_nothing_left(&p);
}

#[test]
fn stats_report_the_containers_peak_memory() {
    if !harness::require_root("ch05 peak memory") {
        return;
    }
    let p = parent("peak");
    // A 24 MiB buffer under a 64m limit: the peak is at least the buffer and
    // at most the limit. `true` alone peaks far lower: the number is the
    // container's, not a constant.
    let peak = |program: &[String]| {
        let mut args = vec!["run", "--quiet", "--memory", "64m", "--stats"];
        args.extend(program.iter().map(String::as_str));
        let out = minibox(&p, &args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        common::peak_memory_bytes(&stderr(&out))
    };
    let big = peak(&common::dd_buffer(24));
    assert!(
        (24 << 20..=64 << 20).contains(&big),
        "peak memory {big} bytes for a 24 MiB buffer under a 64m limit"
    );
    let small = peak(&["true".to_string()]);
    assert!(small < 8 << 20, "peak memory {small} bytes for `true`");
    assert_nothing_left(&p);
}

#[test]
fn the_limits_are_in_the_cgroup_files_while_the_container_runs() {
    if !harness::require_root("ch05 limit files") {
        return;
    }
    let p = parent("files");
    let mut child = common::spawn_ready(
        Command::new(MINIBOX)
            .args(["run", "--quiet"])
            .args(ALL_LIMITS)
            .args(["sh", "-c", WAIT_FOR_STDIN])
            .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
            .env("MINIBOX_CGROUP_PARENT", &p)
            .stdin(Stdio::piped()),
    );
    // The container's cgroup is the one directory below the parent, in the
    // hierarchy that has `controller` (v2: the one hierarchy).
    let hierarchies = harness::cgroups::hierarchies();
    let read = |controller: &str, file: &str| -> String {
        let hierarchy = hierarchies
            .iter()
            .find(|h| {
                h.controllers.iter().any(|c| c == controller)
                    || (h.fs_type == "cgroup2" && harness::cgroups::pure_v2())
            })
            .unwrap_or_else(|| panic!("no hierarchy with {controller}"));
        let container = std::fs::read_dir(hierarchy.parent_dir(&p))
            .unwrap()
            .flatten()
            .find(|e| e.path().is_dir())
            .unwrap();
        std::fs::read_to_string(container.path().join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    // The same limits in each layout's own files: v1 on this project's
    // machines, v2 on a pure v2 host (and in `tests/v2.rs`, in the VM).
    let checks = if harness::cgroups::pure_v2() {
        vec![
            (read("memory", "memory.max"), "33554432"),
            (read("pids", "pids.max"), "10"),
            (read("cpu", "cpu.max"), "50000 100000"),
            (read("cpu", "cpu.weight"), "59"),
        ]
    } else {
        vec![
            (read("memory", "memory.limit_in_bytes"), "33554432"),
            (read("pids", "pids.max"), "10"),
            (read("cpu", "cpu.cfs_quota_us"), "50000"),
            (read("cpu", "cpu.cfs_period_us"), "100000"),
            (read("cpu", "cpu.shares"), "512"),
        ]
    };
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    for (actual, expected) in checks {
        assert_eq!(actual, expected);
    }
    assert_nothing_left(&p);
}

#[test]
fn a_killed_container_leaves_no_cgroup() {
    if !harness::require_root("ch05 cleanup after SIGKILL") {
        return;
    }
    let p = parent("killed");
    let mut child = Command::new(MINIBOX)
        .args(["run", "--memory", "32m", "sh", "-c", "sleep 30 & sleep 30"])
        .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
        .env("MINIBOX_CGROUP_PARENT", &p)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let host_pid: i32 = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .find_map(|l| {
            l.strip_prefix("[minibox] parent moved the child (host PID ")
                .and_then(|r| r.split(')').next())
                .map(str::to_string)
        })
        .expect("narration names the host PID")
        .parse()
        .unwrap();
    // SAFETY: kill(2) of our container's PID 1, not yet reaped by minibox.
    assert_eq!(unsafe { libc::kill(host_pid, libc::SIGKILL) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(137));
    assert_nothing_left(&p);
}

#[test]
fn bad_values_fail_with_one_line_and_create_nothing() {
    if !harness::require_root("ch05 bad values") {
        return;
    }
    let p = parent("bad");
    let cases: [(&[&str], &str); 5] = [
        (&["--memory", "4m"], "minimum memory limit allowed is 6MB"),
        (&["--memory", "32x"], "invalid size: '32x'"),
        (&["--cpus", "1000"], "range of CPUs is from 0.01 to"),
        (
            &["--cpus", "abc"],
            "failed to parse abc as a rational number",
        ),
        (
            &["--cpu-shares", "1"],
            "--cpu-shares must be between 2 and 262144",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["run"];
        args.extend(flags);
        args.push("true");
        let out = minibox(&p, &args);
        assert_eq!(out.status.code(), Some(125), "{flags:?}");
        let text = stderr(&out);
        assert_eq!(text.lines().count(), 1, "{flags:?}: {text}");
        assert!(
            text.starts_with("minibox: ") && text.contains(message),
            "{flags:?}: {text}"
        );
        assert_nothing_left(&p);
    }
}

#[test]
fn v2_join_kill_and_events_work_on_the_real_unified_tree() {
    if !harness::require_root("ch05 v2 on the unified tree") {
        return;
    }
    // The cgroup v2 hierarchy, wherever it is mounted (hybrid: `unified`).
    let Some(unified) = harness::cgroups::hierarchies()
        .into_iter()
        .find(|h| h.fs_type == "cgroup2")
        .map(|h| h.mount)
    else {
        harness::skip(
            "ch05 v2 on the unified tree",
            "this host has no cgroup v2 mount",
        );
        return;
    };
    let own = OwnCgroups::of_this_process().unwrap();
    // Relative: without limits nothing is handed down, so this works below a
    // cgroup that holds processes too.
    let p = format!("minibox-test-{}-v2", std::process::id());
    // No limits: the hybrid tree has no controllers, but membership, kill and
    // events are core cgroup v2 and work.
    let cgroup = V2Cgroup::create(&unified, &own, &p, "c1", &Limits::default()).unwrap();
    let dir = cgroup.paths()[0].clone();
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    cgroup
        .join(nix::unistd::Pid::from_raw(sleeper.id() as i32))
        .unwrap();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), sleeper.id().to_string());
    assert!(cgroup.populated(), "cgroup.events does not say populated 1");
    // A process can also move itself (through `cgroup.procs`: v2 has no `tasks`).
    let mut joiner = sleep_joined(vec![dir.clone()]);
    assert_eq!(ch05_cgroups::cgroup::procs(&dir).len(), 2);
    assert!(ch05_cgroups::cgroup::procs(&dir).contains(&(joiner.id() as i32)));

    cgroup.destroy().unwrap(); // cgroup.kill, wait for populated 0, rmdir
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(joiner.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(!dir.exists());
    assert_nothing_left(&p);
}

/// `sleep 30`, which moved itself into `dirs` before its exec, with
/// [`join_self`](ch05_cgroups::cgroup::join_self), while it had one thread.
fn sleep_joined(dirs: Vec<std::path::PathBuf>) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut sleep = Command::new("sleep");
    sleep.arg("30");
    // SAFETY: the closure runs in the forked child, which has one thread;
    // it only writes files (allocating, which a test may afford).
    unsafe {
        sleep.pre_exec(move || {
            for dir in &dirs {
                ch05_cgroups::cgroup::join_self(dir).map_err(std::io::Error::other)?;
            }
            Ok(())
        });
    }
    sleep.spawn().expect("sleep, joined to its cgroup")
}

#[test]
fn a_process_with_one_thread_moves_itself_into_every_hierarchy() {
    if !harness::require_root("ch05 join_self") {
        return;
    }
    let p = parent("join-self");
    let root = std::path::Path::new(ch05_cgroups::cgroup::ROOT);
    let cgroup = ch05_cgroups::cgroup::create(root, &p, "c1", &Limits::default()).unwrap();
    let mut joiner = sleep_joined(cgroup.paths());
    let pid = joiner.id() as i32;
    for dir in cgroup.paths() {
        assert_eq!(
            ch05_cgroups::cgroup::procs(&dir),
            vec![pid],
            "{}",
            dir.display()
        );
    }
    // The kernel's own view: every hierarchy of the cgroup names it.
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let inside = own.lines().filter(|l| l.ends_with("/c1")).count();
    assert_eq!(inside, cgroup.paths().len(), "{own}");
    cgroup.destroy().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(joiner.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_nothing_left(&p);
}

/// Starts a container that prints `ready` once running, and returns minibox.
fn start_ready(p: &str, script: &str) -> std::process::Child {
    common::spawn_ready(
        Command::new(MINIBOX)
            .args(["run", "--quiet", "--memory", "32m", "sh", "-c", script])
            .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
            .env("MINIBOX_CGROUP_PARENT", p)
            .stdin(Stdio::null()),
    )
}

#[test]
fn signals_to_minibox_go_to_the_container_and_minibox_cleans_up() {
    if !harness::require_root("ch05 signal forwarding") {
        return;
    }
    let p = parent("signals");
    // A container that handles SIGTERM: minibox passes it on, then exits with
    // the container's status, after removing the cgroup.
    let script = "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done";
    let mut child = start_ready(&p, script);
    // SAFETY: kill(2) of our own child process, minibox, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(42));
    assert_nothing_left(&p);

    // A PID 1 without handlers ignores SIGINT: the third one kills it. The
    // shell that says "ready" handles SIGINT itself: wait until PID 1 is
    // `sleep`, which has no handler.
    let mut child = start_ready(&p, "echo ready; exec sleep 30");
    let init = harness::process::wait_for_init(&mut child, "sleep");
    // Each SIGINT is sent once minibox has taken the one before: two pending
    // at once would merge into one, and minibox would count one.
    for _ in 0..2 {
        harness::process::signal_delivered(child.id(), libc::SIGINT);
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "minibox ended after two SIGINTs"
    );
    assert_eq!(
        harness::process::comm(init).as_deref(),
        Some("sleep"),
        "the container's PID 1 did not outlive two SIGINTs"
    );
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(137));
    assert_nothing_left(&p);
}
