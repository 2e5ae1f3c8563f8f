//! The concept of this chapter: a process makes a copy of itself with `fork(2)`,
//! the copy replaces its program with `execvp(3)`, and the original waits for the
//! copy's end with `waitpid(2)`.
//!
//! Why three calls and not one "spawn"? Because the moment between fork and exec
//! runs *our* code inside the new process, with the new process's identity. Shells
//! use it to set up redirections; container runtimes use it for everything that
//! makes a container (chapters 2 to 5 all add a step there).

use std::ffi::{CStr, CString, OsString};
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use crate::exit::{Exit, StartError};

// ANCHOR: command
/// A command ready for `execvp(3)`: the program name and the full argument vector
/// (`argv[0]` is the program name again, by convention), as C strings.
///
/// They are converted *before* fork, so the child has nothing left to allocate
/// or to fail at except the exec itself.
#[derive(Debug, Clone)]
pub struct Command {
    argv: Vec<CString>,
}

impl Command {
    /// Builds a command from the user's words. Fails when there is none, or when
    /// one contains a NUL byte (a C string cannot hold it).
    pub fn new(words: &[OsString]) -> Result<Self> {
        if words.is_empty() {
            bail!("no command given");
        }
        let argv = words
            .iter()
            .map(|word| {
                CString::new(word.as_bytes())
                    .with_context(|| format!("argument {word:?} contains a NUL byte"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Command { argv })
    }

    /// The program to run: `argv[0]`.
    pub fn program(&self) -> &CStr {
        &self.argv[0]
    }

    /// The argument vector, program name first.
    pub fn argv(&self) -> &[CString] {
        &self.argv
    }

    /// The program name for messages.
    pub fn program_name(&self) -> String {
        self.program().to_string_lossy().into_owned()
    }

    /// The argument vector for messages: `["sh", "-c", "exit 3"]`.
    pub fn argv_for_display(&self) -> String {
        let words: Vec<_> = self.argv.iter().map(|a| a.to_string_lossy()).collect();
        format!("{words:?}")
    }
}
// ANCHOR_END: command

/// Which side of a fork we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The original process; `child` is the new process's PID.
    Parent {
        /// The PID of the child, as the parent sees it.
        child: Pid,
    },
    /// The copy.
    Child,
}

// ANCHOR: fork
/// Makes a copy of the calling process. Both copies return from this call: the
/// parent with the child's PID, the child with [`Forked::Child`].
///
/// Call it only while the process has a single thread: the child gets a copy of
/// memory but only the calling thread, so a lock another thread held (inside
/// `malloc`, say) would stay locked forever in the child.
pub fn fork() -> Result<Forked> {
    assert_single_threaded();
    // SAFETY: minibox has no thread but this one when it forks (clap parses on
    // the main thread, nothing spawns one, and debug builds check it just
    // above), so the child's copy of memory has no lock held by a thread that
    // does not exist in the child. The child then only writes to stderr, calls
    // execvp and `_exit`s.
    let result = unsafe { nix::unistd::fork() }.context("fork")?;
    Ok(match result {
        ForkResult::Parent { child } => Forked::Parent { child },
        ForkResult::Child => Forked::Child,
    })
}
// ANCHOR_END: fork

/// Checks, in debug builds, what every `fork(2)` and `clone(2)` in minibox
/// relies on: the process has one thread. Chapter 7 starts threads (layers
/// download in parallel) and joins them before any container starts; a thread
/// left running would make the child's copy of memory unsafe to use (a lock it
/// held stays locked forever there). Reads `Threads:` in `/proc/self/status`.
pub fn assert_single_threaded() {
    if cfg!(debug_assertions) {
        let threads = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse::<u32>().ok())
        };
        // A thread that was just joined may still be counted for a moment: it
        // has woken its joiner on its way out of the kernel, which removes it
        // from the count a little later. So wait briefly for the count to drop.
        let mut count = threads();
        for _ in 0..200 {
            if count.is_none_or(|n| n == 1) {
                return; // one thread (or no /proc to ask)
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            count = threads();
        }
        panic!("fork/clone with {count:?} threads: every other thread must be joined first");
    }
}

/// Gives SIGPIPE its default action back, for the program about to be exec'd.
/// Rust programs ignore SIGPIPE (so a closed pipe is an error, not death), and
/// an ignored signal stays ignored across exec: without this, `minibox run yes
/// | head` would never end `yes` the usual way. Every exec in minibox calls it.
pub fn restore_sigpipe() {
    // SAFETY: SIG_DFL installs no handler; nothing else to uphold.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

// ANCHOR: exec
/// Replaces the calling process's program with `command`, searching `$PATH` for
/// it like a shell does. The PID, open files and environment stay; the memory, the
/// code and the signal handlers are the new program's.
///
/// On success this never returns: there is no caller left to return to. So it
/// returns only the reason it failed.
pub fn exec(command: &Command) -> StartError {
    restore_sigpipe(); // ignored by Rust, it would stay ignored in the command
    let errno = match nix::unistd::execvp(command.program(), command.argv()) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    StartError {
        program: command.program_name(),
        errno,
    }
}
// ANCHOR_END: exec

/// Ends the calling process at once with `status`, without running exit handlers
/// or flushing buffers: in a forked child those belong to the parent, and running
/// them twice would, for example, print the parent's buffered output twice.
pub fn exit_now(status: u8) -> ! {
    // SAFETY: _exit(2) ends the process at once; it has no preconditions.
    unsafe { libc::_exit(i32::from(status)) }
}

// ANCHOR: wait
/// Waits until `child` ends and says how. Until then the child is the parent's to
/// reap: an ended child stays a *zombie* (an entry holding its exit status) until
/// its parent collects it here.
pub fn wait_for(child: Pid) -> Result<Exit> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Exit::Code(code)),
            Ok(WaitStatus::Signaled(_, signal, _core_dumped)) => return Ok(Exit::Signal(signal)),
            // Stops and continues are only reported when asked for (WUNTRACED,
            // WCONTINUED); anything else is not an end, so keep waiting.
            Ok(_) => continue,
            // A signal handler ran while we waited: wait again.
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).with_context(|| format!("waitpid({child})")),
        }
    }
}
// ANCHOR_END: wait

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_keeps_argv0_and_rejects_nul_bytes() {
        let cmd = Command::new(&["sh".into(), "-c".into(), "exit 3".into()]).unwrap();
        assert_eq!(cmd.program().to_bytes(), b"sh");
        assert_eq!(cmd.argv().len(), 3);
        assert_eq!(cmd.argv_for_display(), r#"["sh", "-c", "exit 3"]"#);

        let err = Command::new(&["a\0b".into()]).unwrap_err();
        assert!(err.to_string().contains("NUL byte"), "{err}");
        assert!(Command::new(&[]).is_err());
    }
}
