//! The parent↔child sync pipe: how the two halves of `minibox run` coordinate
//! across `clone`.
//!
//! Two pipes, both close-on-exec:
//!
//! - **go** (parent → child): the child blocks on it until the parent has done
//!   its part of the setup: nothing yet in this chapter; a cgroup in chapter 5,
//!   network devices in chapter 9. The parent writes one byte to release it. If the
//!   parent dies first, the child reads end-of-file and gives up instead of running
//!   a half-configured container.
//! - **report** (child → parent): if the child's setup or its exec fails, it writes
//!   why, then exits. If exec succeeds, the kernel closes the child's write end
//!   (close-on-exec) and the parent reads end-of-file: the program is running.
//!
//! This replaces chapter 1's guesswork: there, exit status 127 could mean "not
//! found" or "the program exited 127". Rust's `std::process::Command`, runc and
//! crun all use the same close-on-exec trick.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result, anyhow, bail};
use ch01_fork_exec::exit::{MINIBOX_FAILED, StartError};
use ch01_fork_exec::process;
use nix::errno::Errno;
use nix::fcntl::OFlag;

/// The parent's ends: it writes `go` and reads `report`.
#[derive(Debug)]
pub struct ParentEnd {
    go: File,
    report: File,
}

/// The child's ends: it reads `go` and writes `report`.
#[derive(Debug)]
pub struct ChildEnd {
    go: File,
    report: File,
    /// The parent's descriptors, which the child inherits with its copy of the
    /// file table and closes first thing (see [`ChildEnd::wait_for_release`]).
    parent_fds: [RawFd; 2],
}

/// What a child writes into `report` before it exits: one line with a tag.
const EXEC_FAILED: &str = "exec ";
const SETUP_FAILED: &str = "setup ";

// ANCHOR: channel
/// Creates the two pipes. Call before `clone`, so both processes have them.
pub fn channel() -> Result<(ParentEnd, ChildEnd)> {
    let (go_read, go_write) = pipe()?;
    let (report_read, report_write) = pipe()?;
    let parent_fds = [go_write.as_raw_fd(), report_read.as_raw_fd()];
    let parent = ParentEnd {
        go: go_write.into(),
        report: report_read.into(),
    };
    let child = ChildEnd {
        go: go_read.into(),
        report: report_write.into(),
        parent_fds,
    };
    Ok((parent, child))
}
// ANCHOR_END: channel

// ANCHOR: pipe
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    // O_CLOEXEC: the container's program must not inherit our pipes, and the
    // report pipe's write end closing at exec is the success signal.
    nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2(O_CLOEXEC)")
}
// ANCHOR_END: pipe

impl ParentEnd {
    /// Lets the child go on to exec: the parent's part of the setup is done.
    /// If the child has died already (killed from outside, say), there is no one
    /// to release: that is not minibox's failure, and the child's exit status,
    /// which the caller reaps next, says what happened.
    pub fn release(&mut self) -> Result<()> {
        match self.go.write_all(b"G") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            result => result.context("releasing the child through the sync pipe"),
        }
    }

    // ANCHOR: wait_for_exec
    /// Blocks until the child has exec'd its program (Ok) or reported why it
    /// could not (Err, with the child's own message).
    pub fn wait_for_exec(self, program: &str) -> Result<()> {
        let mut report = String::new();
        // Read until end-of-file: the child's write end closes on exec or exit.
        (&self.report)
            .read_to_string(&mut report)
            .context("reading the sync pipe")?;
        if report.is_empty() {
            return Ok(()); // closed by exec: the program is running
        }
        if let Some(errno) = report.strip_prefix(EXEC_FAILED) {
            let errno = errno.trim().parse().context("a malformed exec report")?;
            return Err(StartError {
                program: program.to_string(),
                errno: Errno::from_raw(errno),
            }
            .into());
        }
        match report.strip_prefix(SETUP_FAILED) {
            Some(message) => bail!("container setup failed: {}", message.trim_end()),
            None => Err(anyhow!("the child sent a malformed report: {report:?}")),
        }
    }
    // ANCHOR_END: wait_for_exec
}

impl ChildEnd {
    // ANCHOR: wait_for_release
    /// In the child: closes the parent's ends, then blocks until the parent
    /// releases it. Fails if the parent went away without releasing it.
    pub fn wait_for_release(&self) -> Result<()> {
        for fd in self.parent_fds {
            // The parent's ends came along in our copy of the file table. Close
            // them, or the child would hold the `go` write end open itself and
            // never see end-of-file if the parent died. They are only closed,
            // never used: the child never returns to the code that owns them.
            let _ = nix::unistd::close(fd);
        }
        let mut byte = [0u8; 1];
        match (&self.go).read(&mut byte) {
            Ok(1) => Ok(()),
            Ok(_) => bail!("the parent exited before releasing the child"),
            Err(e) => Err(e).context("reading the sync pipe"),
        }
    }
    // ANCHOR_END: wait_for_release

    // ANCHOR: report
    /// In the child: reports a failed exec to the parent and exits with 127 or
    /// 126. Never returns.
    pub fn exec_failed(&self, error: &StartError) -> ! {
        let _ = (&self.report).write_all(format!("{EXEC_FAILED}{}", error.errno as i32).as_bytes());
        process::exit_now(error.status())
    }

    /// In the child: reports a failed setup step to the parent, one line with
    /// every cause, and exits with 125. Never returns.
    pub fn setup_failed(&self, error: &anyhow::Error) -> ! {
        let _ = (&self.report).write_all(format!("{SETUP_FAILED}{error:#}").as_bytes());
        process::exit_now(MINIBOX_FAILED)
    }
    // ANCHOR_END: report
}
