//! `minibox rm` and `container prune`: a container's record, state,
//! snapshot and log removed, by [`Store::remove`], after whatever of it
//! still runs.

use std::time::Duration;

use anyhow::{Result, anyhow};
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate;
use ch05_cgroups::cgroup;
use ch07_image_pull::images::human_size;
use nix::sys::signal::Signal;

use crate::cli::RmArgs;
use crate::commands::{for_each, stop};
use crate::container::{self, Spec};
use crate::lifecycle::Process;
use crate::state::{Container, Removal, Status, Store, StoreError};
use crate::volumes::Volumes;

/// How long a removal waits for a killed container's monitor to finish its
/// cleanup before it goes on.
const CLEANUP: Duration = Duration::from_secs(10);

// ANCHOR: rm
/// `docker rm`: refuses a running container unless `-f`, which kills it
/// first (SIGKILL, no grace).
pub fn rm(store: &Store, args: &RmArgs) -> Result<Exit> {
    for_each(&args.containers, |reference| {
        let container = match store.get::<Spec>(reference) {
            // `rm -f` of a container that is not there is no error, as with
            // rm(1): whoever asked wants it gone, and it is (another `rm`
            // may have removed it a moment ago). Docker's CLI says nothing
            // either (docker/cli 9a071a993a, ee4c249cc2).
            Err(error) if args.force && is_no_such_container(&error) => return Ok(()),
            result => result?,
        };
        // Of two `rm` of the same container at once, the second may find it
        // gone meanwhile, at any step: both end cleanly, as the container is
        // gone either way.
        match remove(store, &container, args.force) {
            Err(error) if args.force && is_no_such_container(&error) => return Ok(()),
            result => result?,
        };
        if args.volumes {
            // `-v`: its anonymous volumes go with it; named ones stay.
            let volumes = Volumes::new(&ch06_rootfs_snapshot::snapshot::minibox_root());
            volumes.forget_anonymous(&container.record.config.mounts);
        }
        narrate::print(reference)?;
        Ok(())
    })
}

/// Whether `error` is the store's "No such container".
fn is_no_such_container(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<StoreError>(),
        Some(StoreError::NoSuchContainer(_))
    )
}

/// Removes `container`: its process first (only with `force` if it runs),
/// then, once its monitor has cleaned up, what a dead monitor left (its
/// cgroup), then its directories.
fn remove(store: &Store, container: &Container<Spec>, force: bool) -> Result<Removal> {
    let (record, state) = (&container.record, &container.state);
    let running = matches!(state.status, Status::Running | Status::Paused);
    if running && !force {
        return Err(anyhow!(
            "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
            record.name
        ));
    }
    if force {
        stop::stopped_by_hand(store, &record.id)?;
    }
    // A dead container's process may run still, with no monitor above it.
    if let Some(process) = state
        .process
        .as_ref()
        .map(Process::open)
        .transpose()?
        .flatten()
    {
        process.signal(Signal::SIGKILL)?;
        process.wait(None)?;
    }
    if let Some(monitor) = state
        .monitor
        .as_ref()
        .map(Process::open)
        .transpose()?
        .flatten()
    {
        monitor.wait(Some(CLEANUP))?;
    }
    // A monitor that died without cleaning up left the cgroup; its process
    // is gone (a PID namespace ends with its PID 1), so it is empty. The
    // state is gone if another removal got there first meanwhile.
    let state = match store.state(&record.id) {
        Ok(state) => state,
        Err(error) if is_no_such_container(&error) => return Ok(Removal::AlreadyGone),
        Err(error) => return Err(error),
    };
    // With the parents its start made, once empty (chapter 5's
    // `remove_dirs`); a parent that was there before stays.
    cgroup::remove_all(&state.cgroups, &state.cgroups_created)?;
    store.remove(&record.id)
}
// ANCHOR_END: rm

/// `docker container prune`: removes every container that does not run,
/// says which, and what their writable layers took.
pub fn prune(store: &Store) -> Result<Exit> {
    let (removed, reclaimed) = prune_containers(store)?;
    if !removed.is_empty() {
        narrate::print("Deleted Containers:")?;
        for id in &removed {
            narrate::print(id)?;
        }
        narrate::print("")?;
    }
    narrate::print(format_args!(
        "Total reclaimed space: {}",
        human_size(reclaimed)
    ))?;
    Ok(Exit::Code(0))
}

/// Removes every container that neither runs nor waits to be restarted;
/// returns their IDs and what their writable layers took.
pub fn prune_containers(store: &Store) -> Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for container in store.list::<Spec>()? {
        let status = container.state.status;
        if matches!(
            status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            continue;
        }
        let size = container::writable_size(store, &container.record.id);
        if remove(store, &container, false)? == Removal::Removed {
            removed.push(container.record.id);
            reclaimed += size;
        }
    }
    store.sweep()?;
    Ok((removed, reclaimed))
}
