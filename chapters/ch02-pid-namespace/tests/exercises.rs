//! Checkers for chapter 2's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch02` (or `cargo xtask exercise ch02 init`).
//! The book's chapter 2 page describes each exercise; reference solutions are in
//! `book/exercises/ch02-pid-namespace/`.
//!
//! Every minibox these checkers start runs in its own process group, and every
//! wait is bounded: a checker that finds a container still running kills it (by
//! process group or by PID, never by name) and fails instead of hanging.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch02-pid-namespace");

/// How long any single step may take before the checker gives up.
const LIMIT: Duration = Duration::from_secs(5);

/// A running minibox, its output read line by line on two threads (so neither
/// pipe can fill up and block it), in its own process group so that the checker
/// can end it together with its container if it does not end by itself.
struct Minibox {
    process: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Minibox {
    fn start(args: &[&str]) -> Minibox {
        let mut process = Command::new(MINIBOX)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start minibox");
        let stdout = lines(process.stdout.take().unwrap());
        let stderr = lines(process.stderr.take().unwrap());
        Minibox {
            process,
            stdout,
            stderr,
        }
    }

    /// The host PID of the container's PID 1, from the narration.
    fn host_pid(&self) -> i32 {
        let prefix = "[minibox] the host knows the child as PID ";
        let line = next_line_starting_with(&self.stderr, prefix, "stderr");
        line[prefix.len()..].trim().parse().expect("a PID")
    }

    /// Waits at most `limit` for minibox to end.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for minibox to end, and collects everything it printed.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let status = self.wait(LIMIT).unwrap_or_else(|| {
            panic!("expected minibox to end, but it was still running after {LIMIT:?}")
        });
        let collect = |lines: &Receiver<String>| {
            let mut text = String::new();
            // The readers end when the last copy of the pipe closes; the
            // container is gone with its PID 1, so that is soon.
            while let Ok(line) = lines.recv_timeout(LIMIT) {
                text.push_str(&line);
            }
            text
        };
        (status, collect(&self.stdout), collect(&self.stderr))
    }
}

impl Drop for Minibox {
    fn drop(&mut self) {
        // Still running (a checker failed, or timed out): end minibox and its
        // container. The container is in minibox's process group, and the group
        // cannot be reused while minibox is not reaped.
        if let Ok(None) = self.process.try_wait() {
            // SAFETY: kill(2) has no memory-safety preconditions; the group is
            // the one we created for this minibox, which we have not reaped.
            unsafe { libc::kill(-(self.process.id() as i32), libc::SIGKILL) };
            let _ = self.process.wait();
        }
    }
}

/// Reads `from` line by line on a thread; each line arrives with its newline.
fn lines(from: impl Read + Send + 'static) -> Receiver<String> {
    let (send, receive) = channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    receive
}

fn next_line_starting_with(lines: &Receiver<String>, prefix: &str, name: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(line) => seen.push_str(&line),
            Err(_) => break,
        }
    }
    panic!("expected a line starting with {prefix:?} on minibox's {name}, but it printed {seen:?}");
}

/// Runs minibox to its end (at most [`LIMIT`]): status, stdout, stderr.
fn run(args: &[&str]) -> (ExitStatus, String, String) {
    Minibox::start(args).finish()
}

/// The fields of /proc/PID/stat after the command name: state, ppid, ...
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The host PIDs of the zombie children of `parent`, from the host's /proc.
fn zombie_children_of(parent: i32) -> Vec<i32> {
    host_pids()
        .filter(|&pid| stat_fields(pid).is_some_and(|f| f[0] == "Z" && f[1] == parent.to_string()))
        .collect()
}

/// Every PID in the host's /proc.
fn host_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse().ok())
}

/// The host PID of the process whose environment holds `marker`, if one runs.
fn process_with_marker(marker: &str) -> Option<i32> {
    host_pids().find(|pid| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == marker.as_bytes()))
    })
}

/// Exercise `init`: `minibox run --init` keeps PID 1 as a minimal init that
/// forks the command as PID 2, forwards SIGINT and SIGTERM to it, reaps every
/// child (orphans included), and exits with the command's status.
#[test]
#[ignore = "exercise: cargo xtask exercise ch02 init"]
fn exercise_init() {
    if !harness::require_root("ch02 exercise init") {
        return;
    }
    // The command is PID 2: PID 1 is the init.
    let out = run(&["run", "--quiet", "--init", "sh", "-c", "echo $$"]);
    assert!(
        out.0.code() == Some(0) && out.1 == "2\n",
        "expected `minibox run --init sh -c 'echo $$'` to print 2 (the init is PID 1, the \
         command PID 2), but {}",
        harness::transcript::seen_parts(out.0, &out.1, &out.2)
    );

    // Its exit status passes through the init.
    let out = run(&["run", "--quiet", "--init", "sh", "-c", "exit 3"]);
    assert!(
        out.0.code() == Some(3),
        "expected `minibox run --init sh -c 'exit 3'` to exit with 3, the command's status, \
         but {}",
        harness::transcript::seen_parts(out.0, &out.1, &out.2)
    );

    // PID 2 is an ordinary process: a signal without a handler kills it, and
    // the init reports 128 + 15.
    let out = run(&["run", "--quiet", "--init", "sh", "-c", "kill -TERM $$"]);
    assert!(
        out.0.code() == Some(143),
        "expected `minibox run --init sh -c 'kill -TERM $$'` to exit with 143: SIGTERM kills \
         the command as PID 2 (it would not kill PID 1); but {}",
        harness::transcript::seen_parts(out.0, &out.1, &out.2)
    );

    // SIGTERM sent to the init from the host (as `docker stop` does) reaches the
    // command, which traps it and exits 42.
    let mut minibox = Minibox::start(&[
        "run",
        "--init",
        "sh",
        "-c",
        "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done",
    ]);
    let init = minibox.host_pid();
    next_line_starting_with(&minibox.stdout, "ready", "stdout");
    // SAFETY: kill(2) of our container's PID 1, whose parent (minibox) is alive
    // and has not reaped it, so the PID cannot have been reused.
    unsafe { libc::kill(init, libc::SIGTERM) };
    let status = minibox.wait(LIMIT);
    assert!(
        status.and_then(|s| s.code()) == Some(42),
        "expected SIGTERM sent to the init (PID 1) to reach the command, which traps it and \
         exits 42, but minibox {}",
        status.map_or("was still running 5 s later".to_string(), |s| format!(
            "exited with {}",
            harness::transcript::exit_status(s)
        ))
    );

    // An orphan is re-parented to the init, which must reap it. Its parent, a
    // subshell, exits at once; the orphan carries a marker in its environment
    // so that the checker can find it on the host. Re-parented to the init
    // means its parent on the host is the init: without a PID namespace of its
    // own, it would go to the host's init (or a subreaper) instead, and the
    // zombie check below would prove nothing.
    let marker = format!("MINIBOX_EXERCISE_ORPHAN={}", std::process::id());
    let script = format!("({marker} sleep 1 &); echo ready; sleep 2");
    let minibox = Minibox::start(&["run", "--init", "sh", "-c", &script]);
    let init = minibox.host_pid();
    next_line_starting_with(&minibox.stdout, "ready", "stdout");
    let deadline = Instant::now() + LIMIT;
    // The last parent the orphan was seen with: the subshell at first, then
    // whoever adopted it.
    let mut last_seen = None;
    let orphan = loop {
        match process_with_marker(&marker).map(|pid| (pid, stat_fields(pid))) {
            Some((pid, Some(fields))) if fields[1] == init.to_string() => break pid,
            Some((pid, Some(fields))) => last_seen = Some((pid, fields[1].clone())),
            _ => {}
        }
        if Instant::now() > deadline {
            panic!(
                "expected the orphan `sleep 1` to be re-parented to the init (host PID \
                 {init}), but {}",
                match &last_seen {
                    Some((pid, parent)) => format!(
                        "its parent was host PID {parent}: is the container in a PID \
                         namespace of its own? (orphan: host PID {pid})"
                    ),
                    None => "it was not found running".to_string(),
                }
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The orphan ends after 1 s; the init must reap it at once.
    let deadline = Instant::now() + LIMIT;
    while stat_fields(orphan).is_some_and(|f| f[0] != "Z") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let zombies = zombie_children_of(init);
    assert!(
        zombies.is_empty(),
        "expected the init to reap the orphan once it ended, but host PIDs {zombies:?} are \
         still zombie children of the init (host PID {init})"
    );
    let out = minibox.finish();
    assert!(
        out.0.code() == Some(0),
        "expected the command to exit with 0 after the orphan ended, but {}",
        harness::transcript::seen_parts(out.0, &out.1, &out.2)
    );
}

/// Exercise `die-with-parent`: when minibox is killed with SIGKILL, its
/// container dies too (PR_SET_PDEATHSIG in the child).
#[test]
#[ignore = "exercise: cargo xtask exercise ch02 die-with-parent"]
fn exercise_die_with_parent() {
    if !harness::require_root("ch02 exercise die-with-parent") {
        return;
    }
    let mut minibox = Minibox::start(&["run", "sleep", "30"]);
    let child = minibox.host_pid();

    // Wait until the child runs `sleep`: then the parent has released it, and
    // only the parent-death signal can end it when minibox dies.
    let cmdline = format!("/proc/{child}/cmdline");
    let deadline = Instant::now() + LIMIT;
    while std::fs::read(&cmdline).unwrap_or_default() != b"sleep\x0030\x00" {
        assert!(
            Instant::now() < deadline,
            "expected the container to run `sleep 30`, but it never did"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // SAFETY: kill(2) of minibox, our own child, which we have not reaped.
    unsafe { libc::kill(minibox.process.id() as i32, libc::SIGKILL) };
    assert!(
        minibox.wait(LIMIT).is_some(),
        "expected SIGKILL to end minibox, but it was still running 5 s later"
    );

    // Gone, or a zombie: dead, and waiting for whoever adopted it to reap it.
    let dead = || match std::fs::read_to_string(format!("/proc/{child}/stat")) {
        Err(_) => true,
        Ok(stat) => stat[stat.rfind(')').unwrap() + 1..]
            .trim_start()
            .starts_with('Z'),
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !dead() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = !dead();
    if survived {
        // Clean up: SIGKILL from the host ends PID 1, and with it its namespace.
        // SAFETY: kill(2) of the container we started; it is alive (checked just
        // above), so the PID is still its own.
        unsafe { libc::kill(child, libc::SIGKILL) };
    }
    assert!(
        !survived,
        "expected the container to die with minibox, but minibox was killed with SIGKILL and \
         its container (host PID {child}) was still running 2 s later"
    );
}
