//! `minibox stop`, `kill` and `wait`: signals to a container's process and
//! waiting for its end, by pidfd ([`crate::lifecycle`]), from a process that
//! is not its parent.

use std::time::Duration;

use anyhow::{Result, anyhow};
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate;
use nix::sys::signal::Signal;

use crate::cli::{KillArgs, StopArgs};
use crate::commands::for_each;
use crate::container::Spec;
use crate::lifecycle::{self, Process};
use crate::state::{Container, Status, Store};

/// How long `stop` and `wait` give a monitor to record the end once the
/// container's process has ended.
const RECORDING: Duration = Duration::from_secs(10);

// ANCHOR: stop
/// `docker stop`: for each container, its stop signal, `-t` seconds, then
/// SIGKILL; prints each name as given once it has stopped. A container that
/// is not running is already stopped: that is no error.
pub fn stop(store: &Store, args: &StopArgs) -> Result<Exit> {
    let signal = args
        .signal
        .as_deref()
        .map(lifecycle::parse_signal)
        .transpose()?;
    let grace = Duration::from_secs(args.time);
    for_each(&args.containers, |reference| {
        let container = store.get::<Spec>(reference)?;
        stopped_by_hand(store, &container.record.id)?;
        if let Some((process, monitor)) = open(&container)? {
            let signal = match (signal, &container.record.config.stop_signal) {
                (Some(signal), _) => signal,
                (None, Some(image)) => lifecycle::parse_signal(image)?,
                (None, None) => Signal::SIGTERM,
            };
            lifecycle::stop(&process, signal, grace)?;
            // Returns once the monitor has recorded the end, so that `ps`
            // right after shows the container exited.
            if let Some(monitor) = monitor {
                monitor.wait(Some(RECORDING))?;
            }
        }
        narrate::print(reference)?;
        Ok(())
    })
}
// ANCHOR_END: stop

/// `docker kill`: sends `-s` (SIGKILL by default) to each running container.
pub fn kill(store: &Store, args: &KillArgs) -> Result<Exit> {
    let signal = lifecycle::parse_signal(&args.signal)?;
    for_each(&args.containers, |reference| {
        let container = store.get::<Spec>(reference)?;
        stopped_by_hand(store, &container.record.id)?;
        let Some((process, _)) = open(&container)? else {
            return Err(anyhow!(
                "Cannot kill container: {reference}: Container {} is not running",
                container.record.id
            ));
        };
        process.signal(signal)?;
        narrate::print(reference)?;
        Ok(())
    })
}

/// `docker wait`: blocks until each container has stopped, then prints its
/// exit code.
pub fn wait(store: &Store, containers: &[String]) -> Result<Exit> {
    for_each(containers, |reference| {
        let container = store.get::<Spec>(reference)?;
        let id = container.record.id.clone();
        if let Some((process, monitor)) = open(&container)? {
            process.wait(None)?;
            if let Some(monitor) = monitor {
                monitor.wait(Some(RECORDING))?;
            }
        }
        let state = store.state(&id)?;
        narrate::print(state.exit_code)?;
        Ok(())
    })
}

/// Notes that a person, not the container, ended it: its restart policy
/// waits for a manual `start`, and one waiting to restart stays exited.
pub fn stopped_by_hand(store: &Store, id: &str) -> Result<()> {
    store.update(id, |state| {
        state.manually_stopped = true;
        if state.status == Status::Restarting {
            state.status = Status::Exited;
        }
        Ok(())
    })
}

/// The running container's process and its monitor, held by pidfds; `None`
/// when it does not run.
///
/// A container that has just ended may still have its monitor at work,
/// recording the end and taking its cgroup and network apart: that is
/// waited for here, so that `None` means "ended, and done with" (`wait`
/// reads the real exit code, `start` finds the old cgroup gone).
pub fn open(container: &Container<Spec>) -> Result<Option<(Process, Option<Process>)>> {
    let state = &container.state;
    let monitor = state
        .monitor
        .as_ref()
        .map(Process::open)
        .transpose()?
        .flatten();
    let process = match state.status {
        Status::Running | Status::Paused => state
            .process
            .as_ref()
            .map(Process::open)
            .transpose()?
            .flatten(),
        _ => None,
    };
    let Some(process) = process else {
        if let Some(monitor) = monitor {
            monitor.wait(Some(RECORDING))?;
        }
        return Ok(None);
    };
    Ok(Some((process, monitor)))
}
