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
//! left there afterwards.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ch05_cgroups::cgroup::v1::Hierarchies;
use ch05_cgroups::cgroup::v2::V2Cgroup;
use ch05_cgroups::cgroup::{self, Cgroup, Layout, OwnCgroups};
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

/// The directories `parent` stands for, in every hierarchy.
fn parent_dirs(parent: &str) -> Vec<PathBuf> {
    // The same rule as minibox's: absolute from the root, relative from our own.
    let root = Path::new(cgroup::ROOT);
    let own = OwnCgroups::of_this_process().unwrap();
    let dir = |mount: &Path, own: &str| {
        let container = cgroup::cgroup_dir(mount, own, parent, "x");
        container.parent().unwrap().to_path_buf()
    };
    match cgroup::detect(root).unwrap() {
        Layout::Unified => vec![dir(root, own.path(None))],
        _ => Hierarchies::discover(root)
            .unwrap()
            .mounts
            .iter()
            .map(|(c, mount)| dir(mount, own.path(Some(c))))
            .collect(),
    }
}

fn assert_nothing_left(parent: &str) {
    for dir in parent_dirs(parent) {
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
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
fn the_limits_are_in_the_cgroup_files_while_the_container_runs() {
    if !harness::require_root("ch05 limit files") {
        return;
    }
    if cgroup::detect(Path::new(cgroup::ROOT)).unwrap() == Layout::Unified {
        eprintln!("SKIP the v1 file names: this host is cgroup v2 (see the v2 unit tests)");
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
    let read = |controller: &str, file: &str| -> String {
        let dir = parent_dirs(&p)
            .into_iter()
            .find(|d| d.to_string_lossy().contains(&format!("/{controller}")))
            .unwrap();
        let container = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .find(|e| e.path().is_dir())
            .unwrap();
        std::fs::read_to_string(container.path().join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    let checks = [
        (read("memory", "memory.limit_in_bytes"), "33554432"),
        (read("pids", "pids.max"), "10"),
        (read("cpu", "cpu.cfs_quota_us"), "50000"),
        (read("cpu", "cpu.cfs_period_us"), "100000"),
        (read("cpu", "cpu.shares"), "512"),
    ];
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
    let root = Path::new(cgroup::ROOT);
    let unified = match cgroup::detect(root).unwrap() {
        Layout::Unified => root.to_path_buf(),
        Layout::Hybrid => root.join("unified"),
        Layout::Legacy => {
            eprintln!("SKIP v2 on the unified tree: this host has no cgroup v2 mount");
            return;
        }
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

    cgroup.destroy().unwrap(); // cgroup.kill, wait for populated 0, rmdir
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(!dir.exists());
    assert!(
        !unified
            .join(own.path(None).trim_start_matches('/'))
            .join(&p)
            .exists()
    );
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

    // A PID 1 without handlers ignores SIGINT: the third one kills it.
    let mut child = start_ready(&p, "echo ready; exec sleep 30");
    for _ in 0..3 {
        // SAFETY: as above.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(child.wait().unwrap().code(), Some(137));
    assert_nothing_left(&p);
}
