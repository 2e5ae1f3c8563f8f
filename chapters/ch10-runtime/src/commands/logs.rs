//! `minibox logs`: the container's json-file log, read by [`crate::log`].

use std::io;
use std::time::Duration;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use time::OffsetDateTime;

use crate::cli::LogsArgs;
use crate::container::{Paths, Spec};
use crate::log::{self, ReadOptions};
use crate::state::{Status, Store};

// ANCHOR: logs
/// Shows a container's output; with `-f`, keeps showing it until the
/// container ends.
pub fn logs(store: &Store, args: &LogsArgs) -> Result<Exit> {
    let container = store.get::<Spec>(&args.container)?;
    let id = container.record.id.clone();
    let options = ReadOptions {
        tail: log::parse_tail(&args.tail)?,
        since: args
            .since
            .as_deref()
            .map(|since| log::parse_since(since, OffsetDateTime::now_utc()))
            .transpose()?,
        timestamps: args.timestamps,
    };
    let path = Paths::of(store, &id).log;
    let (mut stdout, mut stderr) = (io::stdout(), io::stderr());
    if !args.follow {
        log::show(&path, &options, &mut stdout, &mut stderr)?;
        return Ok(Exit::Code(0));
    }
    // Followed until the container no longer runs: its monitor flushes the
    // log before it records the end.
    let mut stopped = || {
        store.state(&id).map_or(true, |state| {
            !matches!(state.status, Status::Running | Status::Paused)
        })
    };
    let interval = Duration::from_millis(100);
    log::follow(
        &path,
        &options,
        &mut stdout,
        &mut stderr,
        interval,
        &mut stopped,
    )?;
    Ok(Exit::Code(0))
}
// ANCHOR_END: logs
