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
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ch01_fork_exec::exit::{Exit, MINIBOX_FAILED, StartError};
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::Pid;

/// The parent's ends: it writes `go` (unless a FIFO releases the child) and
/// reads `report`.
#[derive(Debug)]
pub struct ParentEnd {
    go: Option<File>,
    report: File,
}

/// The child's ends: it waits on `go` and writes `report`.
#[derive(Debug)]
pub struct ChildEnd {
    go: Go,
    report: File,
    /// The parent's descriptors, which the child inherits with its copy of the
    /// file table and closes first thing (see [`ChildEnd::wait_for_release`]).
    parent_fds: Vec<RawFd>,
}

/// What the child waits on before it goes on to exec.
#[derive(Debug)]
enum Go {
    /// The read end of the `go` pipe: minibox itself releases the child.
    Pipe(File),
    /// A FIFO in the filesystem, so that *another* process can release the
    /// child later: chapter 14's `runc create` / `runc start` split (runc's
    /// `exec.fifo`). The child opens it for writing, which blocks until the
    /// releaser opens it for reading ([`release_fifo`]).
    Fifo(PathBuf),
}

/// What a child writes into `report` before it exits: one line with a tag.
const EXEC_FAILED: &str = "exec ";
const SETUP_FAILED: &str = "setup ";

// ANCHOR: channel
/// Creates the two pipes. Call before `clone`, so both processes have them.
pub fn channel() -> Result<(ParentEnd, ChildEnd)> {
    let (go_read, go_write) = pipe()?;
    let (report_read, report_write) = pipe()?;
    let parent_fds = vec![go_write.as_raw_fd(), report_read.as_raw_fd()];
    let parent = ParentEnd {
        go: Some(go_write.into()),
        report: report_read.into(),
    };
    let child = ChildEnd {
        go: Go::Pipe(go_read.into()),
        report: report_write.into(),
        parent_fds,
    };
    Ok((parent, child))
}
// ANCHOR_END: channel

/// Like [`channel`], but the child waits on the FIFO `fifo` (made here, mode
/// 0600) instead of a pipe, and whoever calls [`release_fifo`] on it releases
/// the child: minibox, or another process altogether. The report pipe is the
/// same.
pub fn channel_through_fifo(fifo: &Path) -> Result<(ParentEnd, ChildEnd)> {
    nix::unistd::mkfifo(
        fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .with_context(|| format!("mkfifo {}", fifo.display()))?;
    let (report_read, report_write) = pipe()?;
    let parent_fds = vec![report_read.as_raw_fd()];
    let parent = ParentEnd {
        go: None,
        report: report_read.into(),
    };
    let child = ChildEnd {
        go: Go::Fifo(fifo.to_path_buf()),
        report: report_write.into(),
        parent_fds,
    };
    Ok((parent, child))
}

/// Releases a child that waits on the FIFO `fifo` ([`channel_through_fifo`]):
/// opens it for reading, which lets the child's open for writing return, and
/// reads the child's one byte.
pub fn release_fifo(fifo: &Path) -> Result<()> {
    let mut byte = Vec::new();
    File::open(fifo)
        .and_then(|mut file| file.read_to_end(&mut byte))
        .with_context(|| format!("releasing the child through {}", fifo.display()))?;
    Ok(())
}

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
    /// With a FIFO ([`channel_through_fifo`]), releasing is [`release_fifo`]'s
    /// work, and this does nothing.
    pub fn release(&mut self) -> Result<()> {
        let Some(go) = &mut self.go else {
            return Ok(());
        };
        match go.write_all(b"G") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            result => result.context("releasing the child through the sync pipe"),
        }
    }

    // ANCHOR: start
    /// The parent's side of a start, once its part of the setup is done:
    /// releases `child`, learns whether its exec worked (reaping it if not, so
    /// that no zombie is left), then waits for its end and says how it ended.
    pub fn start(mut self, child: Pid, program: &str, narrator: &Narrator) -> Result<Exit> {
        self.release()?;
        if let Err(error) = self.wait_for_exec(program) {
            process::wait_for(child)?; // reap the child that could not start
            return Err(error);
        }
        let exit = process::wait_for(child)?;
        narrator.say(format_args!(
            "child (host PID {child}) {exit}; minibox exits with {}",
            exit.status()
        ));
        Ok(exit)
    }
    // ANCHOR_END: start

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
        for &fd in &self.parent_fds {
            // The parent's ends came along in our copy of the file table. Close
            // them, or the child would hold the `go` write end open itself and
            // never see end-of-file if the parent died. They are only closed,
            // never used: the child never returns to the code that owns them.
            let _ = nix::unistd::close(fd);
        }
        let go = match &self.go {
            Go::Pipe(go) => go,
            Go::Fifo(fifo) => {
                // Blocks until the releaser opens the FIFO for reading.
                return File::options()
                    .write(true)
                    .open(fifo)
                    .and_then(|mut fifo| fifo.write_all(b"0"))
                    .with_context(|| format!("waiting on {}", fifo.display()));
            }
        };
        let mut byte = [0u8; 1];
        match (&*go).read(&mut byte) {
            Ok(1) => Ok(()),
            Ok(_) => bail!("the parent exited before releasing the child"),
            Err(e) => Err(e).context("reading the sync pipe"),
        }
    }
    // ANCHOR_END: wait_for_release

    // ANCHOR: child_start
    /// The child's side of a start: waits for the parent's go, runs `setup`
    /// (what only the child can do: hostname, mounts...), then `exec`, which
    /// returns only if the program could not start. A failure of either travels
    /// to the parent as a report, and the child exits. Never returns.
    pub fn start<T>(
        &self,
        setup: impl FnOnce() -> Result<T>,
        exec: impl FnOnce(T) -> StartError,
    ) -> ! {
        match self.wait_for_release().and_then(|()| setup()) {
            Ok(ready) => self.exec_failed(&exec(ready)),
            Err(error) => self.setup_failed(&error),
        }
    }
    // ANCHOR_END: child_start

    /// [`ChildEnd::start`], with `early` first: the part of the setup that
    /// needs nothing from the parent runs before the wait, at the same time
    /// as the parent's part, instead of after it (chapter 10: the container
    /// mounts its root while its monitor attaches the network).
    pub fn start_early<T>(
        &self,
        early: impl FnOnce() -> Result<()>,
        setup: impl FnOnce() -> Result<T>,
        exec: impl FnOnce(T) -> StartError,
    ) -> ! {
        match early()
            .and_then(|()| self.wait_for_release())
            .and_then(|()| setup())
        {
            Ok(ready) => self.exec_failed(&exec(ready)),
            Err(error) => self.setup_failed(&error),
        }
    }

    /// In the child: tells the parent its setup is done without an exec,
    /// by closing the report pipe as an exec would. Chapter 14's `create`
    /// returns then, while the container waits on its exec FIFO; nothing can
    /// be reported through this channel any more.
    pub fn report_ready(self) {
        drop(self.report);
    }

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
