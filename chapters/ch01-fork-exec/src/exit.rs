//! How a child's end becomes minibox's exit status.
//!
//! `docker run` exits with the container's own status, so scripts can treat a
//! container like any other command. When the program never ran, Docker uses three
//! codes borrowed from the shell:
//!
//! | code | meaning |
//! |---|---|
//! | 125 | minibox itself failed (bad flags, a system call that failed) |
//! | 126 | the command was found but cannot be invoked (not executable, a directory) |
//! | 127 | the command was not found |
//!
//! A child killed by signal N gives 128 + N, the shell's convention: SIGKILL (9)
//! gives 137, which is also what an out-of-memory kill looks like in chapter 5.

use std::fmt;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// Exit status when minibox itself failed before or around the container.
pub const MINIBOX_FAILED: u8 = 125;
/// Exit status when the command exists but cannot be invoked.
pub const CANNOT_INVOKE: u8 = 126;
/// Exit status when the command was not found.
pub const NOT_FOUND: u8 = 127;

// ANCHOR: exit
/// How a child process ended, as `waitpid(2)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The program called `exit(code)` or returned `code` from `main`.
    Code(i32),
    /// The kernel ended the program with a signal it did not handle.
    Signal(Signal),
}

impl Exit {
    /// The status minibox exits with: the child's own code, or 128 + the signal
    /// number (so SIGKILL gives 137, as with `docker run` and the shell).
    pub fn status(self) -> u8 {
        match self {
            // Only the low 8 bits of an exit code survive waitpid(2).
            Exit::Code(code) => (code & 0xff) as u8,
            Exit::Signal(signal) => 128u8.wrapping_add(signal as u8),
        }
    }
}
// ANCHOR_END: exit

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with code {code}"),
            Exit::Signal(signal) => {
                write!(f, "was killed by {signal} (signal {})", *signal as i32)
            }
        }
    }
}

// ANCHOR: start_error
/// Why the command could not be started: `execvp(3)` failed with `errno`. The
/// child reports it on stderr and exits with [`StartError::status`], so the
/// parent's exit status says which it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// The command as the user typed it.
    pub program: String,
    /// What execvp(3) returned.
    pub errno: Errno,
}

impl StartError {
    /// 127 when there is no such command, 126 when it cannot be invoked.
    pub fn status(&self) -> u8 {
        match self.errno {
            Errno::ENOENT => NOT_FOUND,
            _ => CANNOT_INVOKE,
        }
    }
}

/// Docker's wording: `exec: "ls": executable file not found in $PATH`.
impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = &self.program;
        match self.errno {
            // execvp searches $PATH only for names without a slash, so the
            // message says where we looked.
            Errno::ENOENT if !program.contains('/') => {
                write!(f, "exec: \"{program}\": executable file not found in $PATH")
            }
            errno => write!(f, "exec: \"{program}\": {}", errno.desc().to_lowercase()),
        }
    }
}

impl std::error::Error for StartError {}
// ANCHOR_END: start_error

/// An error that makes minibox exit with `status` instead of 125: like
/// Docker's, the commands other than `run` (`pull`, `images`, `login`...) exit
/// with 1 when they fail.
#[derive(Debug)]
pub struct FailsWith {
    /// The exit status.
    pub status: u8,
    /// What went wrong.
    pub error: anyhow::Error,
}

impl fmt::Display for FailsWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for FailsWith {}

// ANCHOR: finish
/// Turns the recipe's result into minibox's exit status: the one place every
/// chapter's `minibox` exits through. An error is printed as one line, its
/// causes joined with `: `, and exits with 125 unless it says otherwise
/// ([`StartError`], [`FailsWith`]).
pub fn finish(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(exit) => ExitCode::from(exit.status()),
        Err(err) => {
            // Not eprintln!, which panics when stderr is closed.
            crate::narrate::notice(format_args!("{err:#}"));
            let status = if let Some(start) = err.downcast_ref::<StartError>() {
                start.status()
            } else if let Some(failed) = err.downcast_ref::<FailsWith>() {
                failed.status
            } else {
                MINIBOX_FAILED
            };
            ExitCode::from(status)
        }
    }
}
// ANCHOR_END: finish

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_pass_through_and_signals_add_128() {
        assert_eq!(Exit::Code(0).status(), 0);
        assert_eq!(Exit::Code(3).status(), 3);
        assert_eq!(Exit::Code(256 + 7).status(), 7);
        assert_eq!(Exit::Signal(Signal::SIGKILL).status(), 137);
        assert_eq!(Exit::Signal(Signal::SIGTERM).status(), 143);
    }

    fn start_error(program: &str, errno: Errno) -> StartError {
        StartError {
            program: program.into(),
            errno,
        }
    }

    #[test]
    fn exec_errors_map_to_docker_codes() {
        assert_eq!(start_error("nope", Errno::ENOENT).status(), 127);
        assert_eq!(start_error("/nope", Errno::ENOENT).status(), 127);
        assert_eq!(start_error("/etc", Errno::EACCES).status(), 126);
        assert_eq!(start_error("x", Errno::ENOEXEC).status(), 126);
        assert_eq!(
            start_error("nope", Errno::ENOENT).to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(
            start_error("/etc/passwd", Errno::EACCES).to_string(),
            "exec: \"/etc/passwd\": permission denied"
        );
        assert_eq!(
            start_error("/nope", Errno::ENOENT).to_string(),
            "exec: \"/nope\": no such file or directory"
        );
    }
}
