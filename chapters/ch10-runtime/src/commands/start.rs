//! `minibox start` and `restart`: a container that exists on disk started
//! again, by [`crate::start::launch`], with its writable layer as it was.

use std::time::Duration;

use anyhow::{Result, bail};
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate;
use ch06_rootfs_snapshot::snapshot;
use nix::sys::signal::Signal;

use crate::attach::Attach;
use crate::cli::{RestartArgs, StartArgs};
use crate::commands::{for_each, stop};
use crate::container::Spec;
use crate::lifecycle;
use crate::start::{self, Follow};
use crate::state::{Status, Store};

// ANCHOR: start
/// `docker start`: each container not running is started, detached; with
/// `-a`, one container, attached, and minibox exits with its status.
pub fn start(store: &Store, args: &StartArgs) -> Result<Exit> {
    let root = snapshot::minibox_root();
    if args.attach || args.interactive {
        let [reference] = args.containers.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let container = store.get::<Spec>(reference)?;
        started_by_hand(store, &container.record.id)?;
        let spec = &container.record.config;
        let how = Attach {
            interactive: args.interactive && spec.interactive,
            tty: spec.tty,
            keys: &args.detach_keys,
        };
        let exit = start::launch(store, &root, &container.record, Follow::Attached(how))?;
        return Ok(exit.unwrap_or(Exit::Code(0)));
    }
    for_each(&args.containers, |reference| {
        let container = store.get::<Spec>(reference)?;
        if args.restarting && container.state.status != Status::Restarting {
            return Ok(()); // stopped or removed meanwhile: the person wins
        }
        // Already running: nothing to do, as Docker.
        if stop::open(&container)?.is_none() {
            if !args.restarting {
                started_by_hand(store, &container.record.id)?;
            }
            start::launch(store, &root, &container.record, Follow::Detached)?;
        }
        narrate::print(reference)?;
        Ok(())
    })
}
// ANCHOR_END: start

/// A manual start: the restart policy counts from zero again.
fn started_by_hand(store: &Store, id: &str) -> Result<()> {
    store.update(id, |state| {
        state.manually_stopped = false;
        state.restart_count = 0;
        Ok(())
    })
}

/// `docker restart`: `stop` (the stop signal, `-t` seconds, SIGKILL), then
/// `start`.
pub fn restart(store: &Store, args: &RestartArgs) -> Result<Exit> {
    let root = snapshot::minibox_root();
    for_each(&args.containers, |reference| {
        let container = store.get::<Spec>(reference)?;
        if let Some((process, monitor)) = stop::open(&container)? {
            let signal = match &container.record.config.stop_signal {
                Some(name) => lifecycle::parse_signal(name)?,
                None => Signal::SIGTERM,
            };
            lifecycle::stop(&process, signal, Duration::from_secs(args.time))?;
            if let Some(monitor) = monitor {
                monitor.wait(Some(Duration::from_secs(10)))?;
            }
        }
        // Read again: the monitor has recorded the end.
        let container = store.get::<Spec>(reference)?;
        started_by_hand(store, &container.record.id)?;
        start::launch(store, &root, &container.record, Follow::Detached)?;
        narrate::print(reference)?;
        Ok(())
    })
}
