//! The recipe of chapter 6: chapter 5's, with the container's root filesystem
//! made from an image: prepared in the store by the parent, mounted by the child,
//! removed (or kept) by the parent at the end.

use std::path::Path;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::Command;
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::mount::{self, Isolation};
use ch05_cgroups::cgroup;

use crate::changes;
use crate::cli::{Action, Config};
use crate::snapshot::Snapshot;

/// Does what the command line asked for.
pub fn act(action: &Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(config),
        Action::Diff { root, id } => {
            changes::print(&Snapshot::open(root, id)?)?;
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
    let hostname = uts::hostname_for(config.hostname.as_deref(), &id);

    // The parent's part: the container's directory in the store, then its cgroup.
    let snapshotter = config.snapshot.snapshotter;
    let snapshot = Snapshot::prepare(&config.root, &id, &config.layers, snapshotter)?;
    narrator.say(format_args!(
        "parent prepared {} from {} layer(s) with the {} snapshotter",
        snapshot.dir.display(),
        snapshot.layers.len(),
        snapshotter.name()
    ));
    let rootfs = snapshot.rootfs();
    // Once the container is gone: its changes (`--diff`), then remove or keep.
    snapshot.lifecycle(&config.snapshot, || {
        let cgroups = Path::new(cgroup::ROOT);
        cgroup::with_cgroup(cgroups, &config.resources, &id, |cgroup| {
            let (parent, child_end) = sync::channel()?;
            namespace::say_clone(&narrator, mount::NAMESPACES);
            let child = namespace::clone_child(mount::NAMESPACES, || {
                let setup = || {
                    uts::set_hostname(&hostname)?;
                    mount::make_private()?; // our mounts, the overlay too, stay ours
                    snapshot.mount()?; // the image, plus a writable layer of our own
                    mount::enter_root(&rootfs, Isolation::PivotRoot)
                };
                child_end.start(setup, |()| narrator.exec(&command))
            })?;
            drop(child_end);
            let program = command.program_name();
            let exit = cgroup::start(cgroup, child, parent, &program, &narrator, || Ok(()))?;
            cgroup::report(cgroup, &config.resources, exit)?;
            Ok(exit)
        })
    })
}
// ANCHOR_END: run
