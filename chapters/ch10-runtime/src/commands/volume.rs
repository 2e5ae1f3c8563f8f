//! `minibox volume ls|create|rm|prune`, by [`crate::volumes`]; a volume is
//! in use while any container's record mounts it.

use std::io;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate;
use ch06_rootfs_snapshot::snapshot;

use crate::cli::VolumeCommand;
use crate::commands::for_each;
use crate::container;
use crate::state::Store;
use crate::volumes::{self, Volumes};

/// Runs a `volume` command.
pub fn volume(store: &Store, command: VolumeCommand) -> Result<Exit> {
    let volumes = Volumes::new(&snapshot::minibox_root());
    let users = |name: &str| container::volume_users(store, name);
    match command {
        VolumeCommand::Ls { quiet } => {
            let list = volumes.list()?;
            if quiet {
                for volume in list {
                    narrate::print(volume.name)?;
                }
            } else {
                volumes::print_ls(&list, io::stdout().lock())?;
            }
            Ok(Exit::Code(0))
        }
        VolumeCommand::Create { name } => {
            narrate::print(volumes.create(&name)?.name)?;
            Ok(Exit::Code(0))
        }
        VolumeCommand::Rm { names } => for_each(&names, |name| {
            volumes.remove(name, users)?;
            narrate::print(name)?;
            Ok(())
        }),
        VolumeCommand::Prune { all, .. } => {
            print!("{}", volumes.prune(all, users)?.report());
            Ok(Exit::Code(0))
        }
    }
}
