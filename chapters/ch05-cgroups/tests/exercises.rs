//! Checkers for chapter 5's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch05` (or `cargo xtask exercise ch05 cpuset-cpus`).
//! The book's chapter 5 page describes each exercise; reference solutions are in
//! `book/exercises/ch05-cgroups/`.
//!
//! Like the chapter's own tests, every container's cgroup goes where
//! `harness::cgroups::test_parent` says (below this test process's own cgroup on
//! these machines), and each checker requires that nothing is left there
//! afterwards, in any hierarchy, found from mountinfo by `harness::cgroups` rather
//! than by the code under test: a cgroup that a half-done solution leaves behind
//! fails the checker, and is then removed (its processes killed by PID) so that
//! the next attempt starts clean.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch05-cgroups");

/// A cgroup parent for one checker, where the chapter's tests put theirs
/// (`harness::cgroups::test_parent`: below our own cgroup on these machines).
fn parent(exercise: &str) -> String {
    harness::cgroups::test_parent(&format!(
        "minibox-exercise-{}-{exercise}",
        std::process::id()
    ))
}

/// Runs minibox with the busybox root filesystem and `parent` as the cgroup
/// parent. Every command below ends in a few seconds; one still running after
/// 60 s has its container killed, then minibox (`harness::process`), and fails
/// the checker.
fn minibox(parent: &str, args: &[&str]) -> Output {
    let child = Command::new(MINIBOX)
        .args(args)
        .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
        .env("MINIBOX_CGROUP_PARENT", parent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run minibox");
    harness::process::wait_with_deadline(
        child,
        &format!("minibox {}", args.join(" ")),
        Duration::from_secs(60),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the checker if `parent` is left in any hierarchy (`harness::cgroups`
/// finds them from mountinfo, not with minibox's own code).
fn assert_nothing_left(parent: &str) {
    for dir in harness::cgroups::leftovers(parent) {
        assert!(
            !dir.exists(),
            "expected minibox to remove the container's cgroup, but {} was left behind \
             (the checker removes it now)",
            dir.display()
        );
    }
}

/// Removes, when dropped, whatever is left below `parent` in any hierarchy: kills
/// the processes listed there by PID, then removes the directories, deepest first.
/// It runs after the assertions (which report a leftover), also when one failed.
struct Leftovers(String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        fn remove(dir: &Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.path().is_dir() {
                        remove(&entry.path());
                    }
                }
            }
            for _ in 0..100 {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill(2) with a PID the kernel listed in a cgroup that
                    // this checker's containers were put in.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for dir in harness::cgroups::leftovers(&self.0) {
            remove(&dir);
        }
    }
}

/// The highest CPU number the kernel could ever know on this machine, from
/// /sys/devices/system/cpu/possible (`0-1`, `0-3,8-11`).
fn highest_possible_cpu() -> u32 {
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    possible
        .trim()
        .split([',', '-'])
        .filter_map(|n| n.parse().ok())
        .max()
        .expect("at least CPU 0")
}

/// Exercise `cpuset-cpus`: `minibox run --cpuset-cpus LIST` pins the container to
/// the CPUs in LIST with the cpuset controller (v1: `cpuset.cpus`, with
/// `cpuset.mems` filled in; v2: `cpuset.cpus`), so that the container cannot widen
/// its CPU affinity again; a list that is malformed, or names a CPU the machine
/// does not have, fails with one line and 125 and leaves no cgroup behind.
///
/// On a machine with one CPU, every process may only use CPU 0, so the affinity
/// alone proves nothing there: the checker also requires that the container's
/// cpuset cgroup (`/proc/self/cpuset`, as the container sees it) is one that
/// minibox made, below the checker's cgroup parent.
#[test]
#[ignore = "exercise: cargo xtask exercise ch05 cpuset-cpus"]
fn exercise_cpuset_cpus() {
    if !harness::require_root("ch05 exercise cpuset-cpus") {
        return;
    }
    let p = parent("cpuset");
    let _cleanup = Leftovers(p.clone());

    let script = "cat /proc/self/cpuset; grep Cpus_allowed_list /proc/self/status";
    let out = minibox(
        &p,
        &[
            "run",
            "--quiet",
            "--cpuset-cpus",
            "0",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        out.status.success() && lines.len() == 2,
        "expected `minibox run --cpuset-cpus 0 -- sh -c '{script}'` to run, but {}",
        harness::transcript::seen(&out)
    );
    let name = p.trim_start_matches('/');
    assert!(
        lines[0].split('/').any(|dir| dir == name),
        "expected the container to be in a cpuset cgroup that minibox made (below {p}), \
         but /proc/self/cpuset says {:?}: the cpuset controller was not used",
        lines[0]
    );
    assert!(
        lines[1] == "Cpus_allowed_list:\t0",
        "expected --cpuset-cpus 0 to leave the container only CPU 0, but /proc/self/status \
         says {:?}",
        lines[1]
    );
    assert_nothing_left(&p);

    // A cpuset is a limit, not a suggestion: asking sched_setaffinity(2) for every
    // CPU (taskset) still leaves only CPU 0. An affinity that minibox merely set
    // before exec could be widened like this.
    let script =
        "taskset -p 0xffffffff $$ >/dev/null 2>&1; grep Cpus_allowed_list /proc/self/status";
    let out = minibox(
        &p,
        &[
            "run",
            "--quiet",
            "--cpuset-cpus",
            "0",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert!(
        text(&out.stdout) == "Cpus_allowed_list:\t0\n",
        "expected the container to stay on CPU 0 after `taskset -p 0xffffffff $$` asked for \
         every CPU (a cgroup's limit, not an affinity set before exec), but {}",
        harness::transcript::seen(&out)
    );
    assert_nothing_left(&p);

    // Malformed lists, and a CPU this machine cannot have (which only the kernel
    // refuses, after the cgroup directories exist): one line, 125, nothing left.
    let absent = (highest_possible_cpu() + 1).max(99).to_string();
    for list in ["abc", "0-", "1-0,", absent.as_str()] {
        let out = minibox(&p, &["run", "--cpuset-cpus", list, "--", "true"]);
        let stderr = text(&out.stderr);
        assert!(
            out.status.code() == Some(125)
                && stderr.lines().count() == 1
                && stderr.starts_with("minibox: "),
            "expected `minibox run --cpuset-cpus {list} -- true` to refuse the list with status \
             125 and one line `minibox: ...`, but {}",
            harness::transcript::seen(&out)
        );
        assert_nothing_left(&p);
    }
}

/// The stats line of minibox's stderr, split at ", ".
fn stats_fields(out: &Output) -> Vec<String> {
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("minibox: stats: "))
        .unwrap_or_else(|| {
            panic!(
                "expected a line `minibox: stats: ...` on stderr with --stats, but {}",
                harness::transcript::seen(out)
            )
        });
    line.split(", ").map(str::to_string).collect()
}

/// Exercise `oom-kill-count`: `--stats` also says how many processes the kernel's
/// OOM killer ended in the container's cgroup:
/// `minibox: stats: peak memory X, CPU time Ys, OOM kills N`, always with `--stats`,
/// also when PID 1 survived.
#[test]
#[ignore = "exercise: cargo xtask exercise ch05 oom-kill-count"]
fn exercise_oom_kill_count() {
    if !harness::require_root("ch05 exercise oom-kill-count") {
        return;
    }
    let p = parent("oom-count");
    let _cleanup = Leftovers(p.clone());

    // Each dd asks for a 64 MiB buffer under a 32 MiB limit and is killed; the
    // shell, PID 1, carries on and exits 0.
    let script = "dd if=/dev/zero of=/dev/null bs=64M count=1; \
                  dd if=/dev/zero of=/dev/null bs=64M count=1; true";
    let out = minibox(
        &p,
        &[
            "run", "--quiet", "--memory", "32m", "--stats", "--", "sh", "-c", script,
        ],
    );
    assert!(
        out.status.code() == Some(0),
        "expected the container whose two dd were OOM-killed to exit with 0 (its shell, \
         PID 1, survives), but {}",
        harness::transcript::seen(&out)
    );
    let fields = stats_fields(&out);
    assert!(
        fields.len() == 3
            && fields[0].starts_with("peak memory ")
            && fields[1].starts_with("CPU time ")
            && fields[1].ends_with('s'),
        "expected the stats line to read `peak memory X, CPU time Ys, OOM kills N`, but its \
         fields are {fields:?}"
    );
    assert!(
        fields[2] == "OOM kills 2",
        "expected `OOM kills 2` after two dd were OOM-killed under --memory 32m, but the \
         stats line says {:?}",
        fields[2]
    );
    assert_nothing_left(&p);

    // Under the limit: the count is there, and zero.
    let out = minibox(
        &p,
        &[
            "run",
            "--quiet",
            "--memory",
            "32m",
            "--stats",
            "--",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=1M",
            "count=8",
        ],
    );
    assert!(
        out.status.code() == Some(0),
        "expected `dd bs=1M count=8` to run under --memory 32m, but {}",
        harness::transcript::seen(&out)
    );
    let fields = stats_fields(&out);
    assert!(
        fields.last().map(String::as_str) == Some("OOM kills 0"),
        "expected `OOM kills 0` at the end of the stats line when nothing ran out of memory, \
         but its fields are {fields:?}"
    );
    assert_nothing_left(&p);
}
