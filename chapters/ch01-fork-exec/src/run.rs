//! The recipe of chapter 1: run a command the way `docker run` will, start to
//! finish. Each later chapter writes its own recipe; the differences between them
//! are the lessons.

use anyhow::Result;
use nix::unistd::getpid;

use crate::cli::Config;
use crate::exit::Exit;
use crate::narrate::{self, Narrator};
use crate::process::{self, Command, Forked};

// ANCHOR: run
/// Runs `config.command` in a child process and returns how it ended.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    // Convert the words to C strings now: after fork the child should only exec.
    let command = Command::new(&config.command)?;

    narrator.say(format_args!("parent (PID {}) calls fork()", getpid()));
    match process::fork()? {
        Forked::Child => {
            // We are the copy. Become the command; on success nothing below runs.
            narrator.say_exec(&command);
            let error = process::exec(&command);
            // Still here, so exec failed. Report it in one line and end the child
            // with 127 or 126: the parent reads which from the exit status.
            narrate::notice(&error);
            process::exit_now(error.status())
        }
        Forked::Parent { child } => {
            // We are the original. Block until the child ends, then reap it.
            let exit = process::wait_for(child)?;
            narrator.say(format_args!(
                "child (PID {child}) {exit}; minibox exits with {}",
                exit.status()
            ));
            Ok(exit)
        }
    }
}
// ANCHOR_END: run
