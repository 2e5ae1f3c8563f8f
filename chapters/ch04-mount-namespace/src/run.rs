//! The recipe of chapter 4: chapter 3's, with a new mount namespace that the
//! child rearranges, in the gap between the parent's go and exec, until the root
//! filesystem is its `/`.

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use nix::sched::CloneFlags;
use nix::unistd::getpid;

use crate::cli::{Config, Isolation};
use crate::{dev, mount};

// ANCHOR: run
/// Runs `config.command` in new PID, UTS, IPC and mount namespaces with
/// `config.rootfs` as its root filesystem; returns how it ended.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;
    let id = id::new_id()?;
    let hostname = match &config.hostname {
        Some(name) => name.clone(),
        None => id::short(&id).to_string(),
    };
    let rootfs = &config.rootfs;
    let (mut parent, child_end) = sync::channel()?;

    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNS;
    narrator.say(format_args!(
        "parent (PID {}) calls clone({}) for container {}",
        getpid(),
        namespace::flag_names(flags),
        id::short(&id)
    ));
    let child = namespace::clone_child(flags, || {
        let setup = || -> Result<()> {
            child_end.wait_for_release()?;
            uts::set_hostname(&hostname)?;
            mount::make_private()?; // nothing below may reach the host
            mount::bind_onto_itself(rootfs)?; // pivot_root needs a mount point
            mount::mount_proc(rootfs)?; // a /proc for our PID namespace
            mount::mount_sys_readonly(rootfs)?;
            dev::mount_dev(rootfs)?;
            match config.isolation {
                Isolation::PivotRoot => mount::pivot_root(rootfs)?, // the host is gone
                Isolation::Chroot => mount::chroot(rootfs)?,        // the host is hidden
            }
            Ok(())
        };
        if let Err(error) = setup() {
            child_end.setup_failed(&error);
        }
        narrator.say(format_args!(
            "child (PID {}) is in {} ({}), calls execvp({:?}, {})",
            getpid(),
            rootfs.display(),
            match config.isolation {
                Isolation::PivotRoot => "pivot_root",
                Isolation::Chroot => "chroot",
            },
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
    // All the mounts lived in the child's mount namespace, which died with it:
    // there is nothing to unmount.
    Ok(exit)
}
// ANCHOR_END: run
