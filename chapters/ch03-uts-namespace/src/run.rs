//! The recipe of chapter 3: chapter 2's, with two more namespaces and a hostname
//! set in the child before exec.

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};

use crate::cli::Config;
use crate::{id, uts};

// ANCHOR: run
/// Runs `config.command` in new PID, UTS and IPC namespaces with its own
/// hostname; returns how it ended.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;
    let id = id::new_id()?;
    let hostname = uts::hostname_for(config.hostname.as_deref(), &id);
    let (parent, child_end) = sync::channel()?;

    uts::say_clone(&narrator, uts::NAMESPACES, &id);
    let child = namespace::clone_child(uts::NAMESPACES, || {
        // The child: wait for the parent's go, then set up what only it can.
        child_end.start(
            || uts::set_hostname(&hostname), // only this namespace's hostname
            |()| {
                let done = format_args!("set its hostname to {hostname:?}");
                narrator.say_exec_after(done, &command);
                process::exec(&command)
            },
        )
    })?;
    drop(child_end);
    narrator.say(format_args!("the host knows the child as PID {child}"));
    parent.start(child, &command.program_name(), &narrator)
}
// ANCHOR_END: run
