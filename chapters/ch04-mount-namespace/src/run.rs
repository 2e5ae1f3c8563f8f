//! The recipe of chapter 4: chapter 3's, with a new mount namespace that the
//! child rearranges, in the gap between the parent's go and exec, until the root
//! filesystem is its `/`.

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};

use crate::cli::Config;
use crate::mount::{self, Isolation};

// ANCHOR: run
/// Runs `config.command` in new PID, UTS, IPC and mount namespaces with
/// `config.rootfs` as its root filesystem; returns how it ended.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;
    let id = id::new_id()?;
    let hostname = uts::hostname_for(config.hostname.as_deref(), &id);
    let rootfs = &config.rootfs;
    let (parent, child_end) = sync::channel()?;

    uts::say_clone(&narrator, mount::NAMESPACES, &id);
    let child = namespace::clone_child(mount::NAMESPACES, || {
        let setup = || {
            uts::set_hostname(&hostname)?;
            mount::make_private()?; // nothing below may reach the host
            mount::bind_onto_itself(rootfs)?; // pivot_root needs a mount point
            mount::enter_root(rootfs, config.isolation) // /proc, /sys, /dev, pivot_root
        };
        child_end.start(setup, |()| {
            let entered = match config.isolation {
                Isolation::PivotRoot => "pivot_root",
                Isolation::Chroot => "chroot",
            };
            let done = format_args!("is in {} ({entered})", rootfs.display());
            narrator.say_exec_after(done, &command);
            process::exec(&command)
        })
    })?;
    drop(child_end);
    narrator.say(format_args!("the host knows the child as PID {child}"));
    // All the mounts live in the child's mount namespace, which dies with it:
    // there is nothing to unmount afterwards.
    parent.start(child, &command.program_name(), &narrator)
}
// ANCHOR_END: run
