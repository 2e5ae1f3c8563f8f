//! The narration: lines on stderr that say what minibox is doing, step by step,
//! so a learner sees fork, exec and wait happen. `--quiet` turns it off.
//!
//! Narration starts with `[minibox]`; errors start with `minibox:`. Host PIDs
//! always appear as `PID n`, so tests can redact them and nothing else.

use std::fmt::Display;
use std::io::{self, Write};

use crate::process::Command;

/// Prints narration lines unless told to keep quiet.
#[derive(Debug, Clone, Copy)]
pub struct Narrator {
    quiet: bool,
}

impl Narrator {
    /// A narrator that speaks unless `quiet` is set.
    pub fn new(quiet: bool) -> Self {
        Narrator { quiet }
    }

    /// Prints one narration line. Writes to stderr, which is unbuffered, so lines
    /// from the parent and the child appear in the order they were written. A
    /// closed stderr (say, `2>&1 | head -1`) must not stop minibox, so write errors
    /// are ignored (`eprintln!` would panic).
    pub fn say(&self, line: impl Display) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "[minibox] {line}");
        }
    }

    /// Says that this process, the child, now calls `execvp(3)` for `command`.
    pub fn say_exec(&self, command: &Command) {
        self.say(format_args!(
            "child (PID {}) calls execvp({:?}, {})",
            nix::unistd::getpid(),
            command.program_name(),
            command.argv_for_display()
        ));
    }

    /// Says that the child execs `command`, then does: chapter 1's
    /// [`process::exec`](crate::process::exec), narrated. Returns only why
    /// the program could not start.
    pub fn exec(&self, command: &Command) -> crate::exit::StartError {
        self.say_exec(command);
        crate::process::exec(command)
    }

    /// Says what the child has `done` to set itself up, and that it now calls
    /// `execvp(3)` for `command`: `child (PID 1) DONE, calls execvp(...)`.
    pub fn say_exec_after(&self, done: impl Display, command: &Command) {
        self.say(format_args!(
            "child (PID {}) {done}, calls execvp({:?}, {})",
            nix::unistd::getpid(),
            command.program_name(),
            command.argv_for_display()
        ));
    }
}

/// Prints one line that minibox itself has to say, whatever `--quiet` says: an
/// error, an OOM kill, a kept container (`minibox: LINE` on stderr). Safe in a
/// forked child (no lock is taken that another thread could hold: there is
/// none) and with a closed stderr, where `eprintln!` would panic.
pub fn notice(line: impl Display) {
    let _ = writeln!(io::stderr(), "minibox: {line}");
}

/// Prints one line of a command's output (`minibox diff`, `minibox pull`) on
/// stdout. A reader that went away (`minibox diff ID | head -1`) is not an
/// error worth a panic, as `println!` would make it: the line is dropped, and
/// minibox goes on to clean up and exit as it would have.
pub fn print(line: impl Display) -> io::Result<()> {
    match writeln!(io::stdout().lock(), "{line}") {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}
