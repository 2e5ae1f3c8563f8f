//! The recipe of chapter 6: chapter 5's, with the container's root filesystem
//! made from an image: prepared in the store by the parent, mounted by the child,
//! removed (or kept) by the parent at the end.

use std::path::Path;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::{dev, mount};
use ch05_cgroups::cgroup::{self, Cgroup};
use ch05_cgroups::run::report;
use ch05_cgroups::signals;
use nix::sched::CloneFlags;
use nix::unistd::getpid;

use crate::changes;
use crate::cli::{Action, Config};
use crate::snapshot::{Snapshot, Snapshotter};

/// Does what the command line asked for.
pub fn act(action: &Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(config),
        Action::Diff { store, id } => {
            print_changes(&Snapshot::open(store, id)?)?;
            Ok(Exit::Code(0))
        }
    }
}

// ANCHOR: run
/// Runs `config.command` in a new container made from the image's layers;
/// returns how it ended. The container's directory and cgroup are removed on
/// every path, unless `--keep` asks to keep the directory.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;
    let id = id::new_id()?;

    // The parent's part: the container's directory in the store, then its cgroup.
    let snapshot = Snapshot::prepare(&config.store, &id, &config.layers, config.snapshotter)?;
    narrator.say(format_args!(
        "parent prepared {} from {} layer(s) with the {} snapshotter",
        snapshot.dir.display(),
        snapshot.layers.len(),
        match config.snapshotter {
            Snapshotter::Overlay => "overlay",
            Snapshotter::Copy => "copy",
        }
    ));
    let result = cgroup::create(
        Path::new(cgroup::ROOT),
        &config.cgroup_parent,
        &id,
        &config.limits,
    )
    .and_then(|cgroup| {
        let result = run_in(config, &narrator, &command, &id, &snapshot, cgroup.as_ref());
        let destroyed = cgroup.destroy();
        result.and_then(|exit| destroyed.map(|()| exit))
    });

    // The container is gone: show what it changed, then remove or keep its files.
    // The container's own error, if any, is the one to report.
    let result = result.and_then(|exit| {
        if config.diff {
            print_changes(&snapshot)?;
        }
        Ok(exit)
    });
    if config.keep && result.is_ok() {
        eprintln!(
            "minibox: kept container {}: {}",
            id::short(&id),
            snapshot.dir.display()
        );
        return result;
    }
    let removed = snapshot.remove();
    let exit = result?;
    removed?;
    Ok(exit)
}
// ANCHOR_END: run

// ANCHOR: run_in
/// Chapter 5's recipe, where the child mounts the snapshot as its root.
fn run_in(
    config: &Config,
    narrator: &Narrator,
    command: &Command,
    id: &str,
    snapshot: &Snapshot,
    cgroup: &dyn Cgroup,
) -> Result<Exit> {
    let hostname = config
        .hostname
        .clone()
        .unwrap_or_else(|| id::short(id).to_string());
    let rootfs = snapshot.rootfs();
    let (mut parent, child_end) = sync::channel()?;
    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNS;
    narrator.say(format_args!(
        "parent (PID {}) calls clone({})",
        getpid(),
        namespace::flag_names(flags)
    ));
    let child = namespace::clone_child(flags, || {
        let setup = || -> Result<()> {
            child_end.wait_for_release()?;
            uts::set_hostname(&hostname)?;
            mount::make_private()?; // our mounts, the overlay too, stay ours
            snapshot.mount()?; // the image, plus a writable layer of our own
            mount::mount_proc(&rootfs)?;
            mount::mount_sys_readonly(&rootfs)?;
            dev::mount_dev(&rootfs)?;
            mount::pivot_root(&rootfs)?;
            Ok(())
        };
        if let Err(error) = setup() {
            child_end.setup_failed(&error);
        }
        narrator.say(format_args!(
            "child (PID {}) calls execvp({:?}, {})",
            getpid(),
            command.program_name(),
            command.argv_for_display()
        ));
        let error = process::exec(command);
        child_end.exec_failed(&error)
    })?;
    drop(child_end);
    signals::forward_to(child)?; // stay alive to clean up

    if let Err(error) = cgroup.join(child) {
        drop(parent);
        process::wait_for(child)?;
        return Err(error);
    }
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
    report(&config.limits, config.stats, cgroup, exit)?;
    Ok(exit)
}
// ANCHOR_END: run_in

// ANCHOR: print_changes
/// Prints `docker diff`'s view of a container: one `A|C|D /path` line each.
/// (`minibox run` refuses `--diff` with the copy snapshotter up front.)
pub fn print_changes(snapshot: &Snapshot) -> Result<()> {
    if snapshot.snapshotter == Snapshotter::Copy {
        anyhow::bail!("diff needs the overlay snapshotter: a copy keeps no record of what changed");
    }
    for change in changes::changes(&snapshot.upper(), &snapshot.layers)? {
        println!("{change}");
    }
    Ok(())
}
// ANCHOR_END: print_changes
