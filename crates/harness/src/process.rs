//! Waiting for a chapter's binary that a test started: with a deadline, and a
//! stop that lets minibox clean up. A run that hangs has its container's PID 1
//! killed first (minibox's only child), so minibox still removes the cgroup
//! and the container's directory; only if minibox itself does not end then is
//! it killed too. Everything is killed by PID, and only processes this test
//! started. A minibox left in the background ([`Background`]) is stopped the
//! same way if the test ends early.

use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// Waits for `child` (started with piped stdout and stderr) and returns its
/// output. Still running after `limit`, it is stopped (see [`stop`]) and the
/// test fails, naming `what`.
pub fn wait_with_deadline(mut child: Child, what: &str, limit: Duration) -> Output {
    if wait_until(&mut child, Instant::now() + limit).is_none() {
        stop(&mut child);
        panic!("{what} was still running after {} s", limit.as_secs());
    }
    child.wait_with_output().expect("read minibox's output")
}

/// Waits for `child` to end until `deadline`: its status, or `None` if it
/// still runs then (it is left running).
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("wait for minibox") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A minibox running in the background while a test or a demo does
/// something else (talks to its container's published port). Dropped while
/// it still runs (a panic, a deadline), it is [`stop`]ped, container first:
/// nothing is left behind on any path.
#[derive(Debug)]
pub struct Background(Option<Child>);

impl Background {
    /// Starts `command` in the background.
    pub fn spawn(command: &mut Command) -> std::io::Result<Background> {
        command.spawn().map(|child| Background(Some(child)))
    }

    /// Its exit status if it has ended, without waiting. Once it has been
    /// reaped so, its PID is no longer ours to signal: nothing is sent to it
    /// again, and the next call says `None`.
    pub fn ended(&mut self) -> Option<ExitStatus> {
        let status = self.0.as_mut()?.try_wait().expect("wait for minibox")?;
        self.0 = None;
        Some(status)
    }

    /// Sends it SIGTERM, by its PID, and waits for it (`limit` at most):
    /// returns its exit status (128 + N for signal N), or an error if it was
    /// still running then (it is stopped first).
    pub fn terminate(mut self, limit: Duration) -> Result<i32, String> {
        let mut child = self.0.take().expect("a running minibox");
        // SAFETY: kill(2) of the minibox this test started; it has not been
        // reaped (we hold its `Child` and have not waited for it to the end).
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        match wait_until(&mut child, Instant::now() + limit) {
            Some(status) => Ok(crate::transcript::exit_status(status)),
            None => {
                stop(&mut child);
                Err(format!(
                    "minibox was still running {} s after SIGTERM",
                    limit.as_secs()
                ))
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            stop(&mut child);
        }
    }
}

/// Stops a hung minibox: its children (the container's PID 1) first, then
/// minibox itself if it has not ended 10 s later.
pub fn stop(child: &mut Child) {
    for pid1 in children(child.id()) {
        // SAFETY: kill(2) of a child of the minibox this test started, listed
        // by the kernel a moment ago; minibox has not reaped it (it is still
        // running, waiting for it).
        unsafe { libc::kill(pid1, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The children of process `pid` (for minibox: the container's PID 1), as
/// the kernel lists them.
pub fn children(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// What process `pid` is running, by its `comm` (the name it was exec'd as,
/// `sleep` for busybox's applet too), or `None` once it is gone.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

/// Waits (10 s at most) until minibox's child, the container's PID 1, runs
/// `program`, and returns its host PID. A container that printed "ready" may
/// still be the shell that printed it, before its `exec`: a test that is about
/// what the program does (e.g. how PID 1 takes a signal) waits for this.
pub fn wait_for_init(minibox: &mut Child, program: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let init = children(minibox.id()).first().copied();
        if let Some(pid) = init
            && comm(pid).as_deref() == Some(program)
        {
            return pid;
        }
        if let Some(status) = minibox.try_wait().expect("wait for minibox") {
            panic!("minibox ended ({status}) before its container ran {program}");
        }
        if Instant::now() > deadline {
            let now = init.and_then(comm);
            stop(minibox);
            panic!("the container's PID 1 never ran {program} (it ran {now:?})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `signal` to process `pid` (a minibox this test started) and waits
/// (5 s at most) until the process has taken it: the signal is no longer
/// pending, process-wide or for its main thread, in `/proc/PID/status`. Two
/// signals of one kind sent before the first is delivered merge into one, so
/// a test that counts deliveries (Docker's "the third SIGINT kills") sends the
/// next one only after this returns. A fixed sleep instead fails on a busy
/// machine.
pub fn signal_delivered(pid: u32, signal: i32) {
    // SAFETY: kill(2) of a process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0, "kill({pid})");
    let bit = 1u64 << (signal - 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let pending = status
            .lines()
            .filter(|line| line.starts_with("ShdPnd:") || line.starts_with("SigPnd:"))
            .filter_map(|line| u64::from_str_radix(line[7..].trim(), 16).ok())
            .any(|mask| mask & bit != 0);
        if !pending {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} did not take signal {signal} within 5 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What a finished minibox printed, and its status, as text.
#[derive(Debug)]
pub struct Run {
    /// Exit status (128 + N for signal N).
    pub status: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Run {
    /// Panics with everything printed unless the status is `expected`.
    pub fn expect(self, expected: i32) -> Run {
        assert_eq!(
            self.status, expected,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Waits for minibox started with `args` (60 s at most, as
/// [`wait_with_deadline`]) and returns what it printed.
pub fn wait(child: Child, args: &[&str]) -> Run {
    let output = wait_with_deadline(child, &format!("minibox {args:?}"), Duration::from_secs(60));
    Run {
        status: crate::transcript::exit_status(output.status),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
