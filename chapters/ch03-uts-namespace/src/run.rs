//! The recipe of chapter 3: chapter 2's, with two more namespaces and a hostname
//! set in the child before exec.

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};
use nix::sched::CloneFlags;
use nix::unistd::getpid;

use crate::cli::Config;
use crate::{id, uts};

// ANCHOR: run
/// Runs `config.command` in new PID, UTS and IPC namespaces with its own
/// hostname; returns how it ended.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;
    let id = id::new_id()?;
    let hostname = match &config.hostname {
        Some(name) => name.clone(),
        None => id::short(&id).to_string(), // Docker's default
    };
    let (mut parent, child_end) = sync::channel()?;

    let flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    narrator.say(format_args!(
        "parent (PID {}) calls clone({}) for container {}",
        getpid(),
        namespace::flag_names(flags),
        id::short(&id)
    ));
    let child = namespace::clone_child(flags, || {
        // The child: wait for the parent's go, then set up what only it can.
        let setup = || -> Result<()> {
            child_end.wait_for_release()?;
            uts::set_hostname(&hostname)?; // only this namespace's hostname
            Ok(())
        };
        if let Err(error) = setup() {
            child_end.setup_failed(&error); // tell the parent why, and exit
        }
        narrator.say(format_args!(
            "child (PID {}) set its hostname to {hostname:?}, calls execvp({:?}, {})",
            getpid(),
            command.program_name(),
            command.argv_for_display()
        ));
        let error = process::exec(&command);
        child_end.exec_failed(&error)
    })?;
    drop(child_end);
    narrator.say(format_args!("the host knows the child as PID {child}"));

    parent.release()?;
    if let Err(error) = parent.wait_for_exec(&command.program_name()) {
        process::wait_for(child)?;
        return Err(error);
    }
    let exit = process::wait_for(child)?;
    narrator.say(format_args!(
        "child (host PID {child}) {exit}; minibox exits with {}",
        exit.status()
    ));
    Ok(exit)
}
// ANCHOR_END: run
