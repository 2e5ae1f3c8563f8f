//! The recipe of chapter 2: chapter 1's fork/exec/wait, with `clone` and a new
//! PID namespace instead of fork, and a sync pipe between parent and child.

use anyhow::Result;
use ch01_fork_exec::cli::Config;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use nix::sched::CloneFlags;
use nix::unistd::getpid;

use crate::namespace;
use crate::sync;

// ANCHOR: run
/// Runs `config.command` as PID 1 of a new PID namespace; returns how it ended.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;
    let (parent, child_end) = sync::channel()?;

    namespace::say_clone(&narrator, CloneFlags::CLONE_NEWPID);
    let child = namespace::clone_child(CloneFlags::CLONE_NEWPID, || {
        // The child: PID 1 of a new PID namespace. Wait for the parent's go,
        // then exec; a failure goes back to the parent through the pipe.
        child_end.start(
            || Ok(()), // nothing to set up yet: chapter 3 sets a hostname here
            |()| {
                narrator.say(format_args!(
                    "child (PID {} in its new namespace) calls execvp({:?}, {})",
                    getpid(),
                    command.program_name(),
                    command.argv_for_display()
                ));
                process::exec(&command)
            },
        )
    })?;
    drop(child_end); // the parent's copies of the child's ends
    narrator.say(format_args!("the host knows the child as PID {child}"));

    // The parent's part of the setup will go here (cgroups in chapter 5).
    parent.start(child, &command.program_name(), &narrator)
}
// ANCHOR_END: run
