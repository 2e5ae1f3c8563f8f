//! `minibox stats`: the containers' usage, read by [`crate::stats`] twice,
//! a second apart, and shown as `docker stats` shows it.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use tabwriter::TabWriter;

use crate::container::Spec;
use crate::human;
use crate::state::{Container, Status, Store};
use crate::stats::{self, Usage};

/// The time between two readings: Docker's daemon samples every second.
const INTERVAL: Duration = Duration::from_secs(1);

/// The containers' counters at one moment.
struct Sample {
    when: Instant,
    rows: Vec<(Container<Spec>, Usage)>,
}

// ANCHOR: stats
/// `docker stats [--no-stream] [CONTAINER...]`: the named containers, or
/// every running one, every second until interrupted; once with
/// `--no-stream`.
pub fn stats(store: &Store, containers: &[String], no_stream: bool) -> Result<Exit> {
    let host_memory = stats::host_memory()?;
    let mut before = sample(store, containers, host_memory)?;
    loop {
        std::thread::sleep(INTERVAL);
        let after = sample(store, containers, host_memory)?;
        let mut table = Vec::new();
        write_table(&before, &after, &mut table)?;
        // Streaming, each table replaces the last: clear the screen, go home.
        let clear: &[u8] = if no_stream { b"" } else { b"\x1b[2J\x1b[H" };
        let mut out = io::stdout().lock();
        match out.write_all(clear).and_then(|()| out.write_all(&table)) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Exit::Code(0)),
            result => result?,
        }
        out.flush()?;
        if no_stream {
            return Ok(Exit::Code(0));
        }
        before = after;
    }
}
// ANCHOR_END: stats

/// Reads the named containers, or every running one.
fn sample(store: &Store, names: &[String], host_memory: u64) -> Result<Sample> {
    let containers: Vec<Container<Spec>> = if names.is_empty() {
        let mut all = store.list::<Spec>()?;
        all.retain(|c| c.state.status == Status::Running);
        all
    } else {
        names
            .iter()
            .map(|name| store.get(name))
            .collect::<Result<_>>()?
    };
    let when = Instant::now();
    let rows = containers
        .into_iter()
        .map(|container| {
            let usage = usage(&container, host_memory);
            (container, usage)
        })
        .collect();
    Ok(Sample { when, rows })
}

/// A running container's counters; a stopped one has none, as in Docker.
fn usage(container: &Container<Spec>, host_memory: u64) -> Usage {
    let state = &container.state;
    if state.status != Status::Running {
        return Usage::default();
    }
    // With the host's network, the interfaces are the host's, not its own.
    let own_network = container.record.config.network != "host";
    let pid = state.process.filter(|_| own_network).map(|p| p.pid);
    stats::read(&state.cgroups, pid, host_memory)
}

/// Docker's `stats` table (Go's tabwriter, minwidth 10, padding 3): CPU %
/// from both samples, the rest from the second.
// SIMPLIFICATION: Docker reads BLOCK I/O from the blkio (v1) or io (v2)
// controller; minibox's cgroups have none (chapter 5 makes memory, pids and
// cpu ones), so the column says `--`, as Docker's does for what it cannot read.
fn write_table(before: &Sample, after: &Sample, out: impl Write) -> io::Result<()> {
    let elapsed = after.when.duration_since(before.when);
    let mut table = TabWriter::new(out).minwidth(10 - 3).padding(3);
    let header = "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS";
    writeln!(table, "{header}")?;
    for (container, usage) in &after.rows {
        let record = &container.record;
        let earlier = before
            .rows
            .iter()
            .find(|(c, _)| c.record.id == record.id)
            .map_or(usage, |(_, u)| u);
        writeln!(
            table,
            "{}\t{}\t{:.2}%\t{} / {}\t{:.2}%\t{} / {}\t--\t{}",
            record.short_id(),
            record.name,
            stats::cpu_percent(earlier, usage, elapsed),
            human::binary_size(usage.memory),
            human::binary_size(usage.limit),
            usage.memory_percent(),
            human::size(usage.net.0),
            human::size(usage.net.1),
            usage.pids
        )?;
    }
    table.flush()
}
