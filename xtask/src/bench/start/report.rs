//! The report: a table of medians, spreads and ratios to crun's median, then
//! each target with PASS or MISS; and, with `--record`, the medians as JSON in
//! `book/src/data/bench-start.json`, in the shape of the other benchmarks'
//! data there (`rows` of medians in milliseconds, the ratios left to whoever
//! reads them: `cargo xtask codegen` computes them for the book's tables).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::bench::measure::{Peer, median_of};
use crate::bench::report::{at_most, ratio, timing_row, verdict};

/// The variant every ratio is taken against.
pub(super) const BASELINE: &str = "crun run";
/// Chapter 9's variants, which the targets are about.
pub(super) const NONE: &str = "ch09 run --network none";
pub(super) const BRIDGE: &str = "ch09 run --network bridge";
/// Chapter 10's, the same start under a monitor, the container kept on disk
/// until `--rm` removes it.
pub(super) const CH10_NONE: &str = "ch10 run --rm --network none";
pub(super) const CH10_BRIDGE: &str = "ch10 run --rm --network bridge";
/// Chapter 12's, chapter 10's start with Docker's hardening (capabilities,
/// seccomp, masked paths, device rules), which crun's default has too.
pub(super) const CH12_NONE: &str = "ch12 run --rm --network none";
/// What the hardening may cost: chapter 12's median at most this many times
/// chapter 10's.
const HARDENING_TIMES: f64 = 1.10;
/// Chapter 13's, as root (chapter 12's start, nothing added) and as an
/// ordinary user (in the user's namespace, held by its pause process).
pub(super) const CH13_NONE: &str = "ch13 run --rm --network none";
pub(super) const ROOTLESS_NONE: &str = "ch13 rootless run --rm --network none";
/// Rootless on its default network, a user-mode stack: beside the root
/// bridge's row, for information (no target).
pub(super) const ROOTLESS_DEFAULT: &str = "ch13 rootless run --rm (user-mode net)";
/// What running without root may cost: the rootless median at most this
/// many times root's.
const ROOTLESS_TIMES: f64 = 1.5;

/// Podman's variant with no network, and how many times faster than podman
/// chapter 10's must be.
pub(super) const PODMAN_NONE: &str = "podman run --rm --network none";
/// Podman's variant with its default network, a bridge.
pub(super) const PODMAN_DEFAULT: &str = "podman run --rm (default bridge)";
const PODMAN_TIMES: f64 = 20.0;
/// Rootless podman's, the same start by the same user as
/// [`ROOTLESS_NONE`].
pub(super) const PODMAN_ROOTLESS_NONE: &str = "rootless podman run --rm --network none";

/// The targets: each variant's median at most this many times crun's.
const TARGETS: [(&str, f64); 5] = [
    (NONE, 1.0),
    (BRIDGE, 1.5),
    (CH10_NONE, 1.0),
    (CH10_BRIDGE, 1.5),
    (CH12_NONE, 1.0),
];

/// Where `--record` writes, in the workspace.
const RECORD: &str = "book/src/data/bench-start.json";

/// Prints the table and the targets.
pub(super) fn report(peers: &[Peer], runs: usize) {
    let baseline = median_of(peers, BASELINE);
    println!();
    println!(
        "start a busybox container running `true`, the image in the store: median and spread of \
         {runs} runs after a warm-up round, the variants interleaved"
    );
    println!(
        "{:<40} {:>9} {:>19} {:>19} {:>7}",
        "", "median", "p10 – p90", "min – max", "× crun"
    );
    for peer in peers {
        println!(
            "{}",
            timing_row(peer, 40, ratio(peer.median(), baseline), 7)
        );
    }
    println!();
    for (name, target) in TARGETS {
        let r = median_of(peers, name).and_then(|median| ratio(median, baseline));
        println!("{name} ≤ {target:.1}× crun: {}", at_most(r, target));
    }
    relative_targets(peers);
    // Chapter 10 beside podman, which does the same with a daemonless engine:
    // how many times faster, on the same network mode, both ways.
    for (ours, theirs) in [(CH10_NONE, PODMAN_NONE), (CH10_BRIDGE, PODMAN_DEFAULT)] {
        let times = median_of(peers, ours)
            .and_then(|median| ratio_inverse(median, median_of(peers, theirs)));
        let value = times.map(|t| format!("{t:.1}×")).unwrap_or_default();
        let met = times.map(|t| t >= PODMAN_TIMES);
        println!(
            "{ours} ≥ {PODMAN_TIMES:.0}× faster than {theirs}: {}",
            verdict(met, &value)
        );
    }
    // What bounds the first: crun itself, beside the same podman.
    if let Some(crun) = baseline
        && let Some(times) = ratio_inverse(crun, median_of(peers, PODMAN_NONE))
    {
        println!("(for reference: {BASELINE} is {times:.1}× faster than {PODMAN_NONE})");
    }
}

/// The targets that are ratios to another of our own variants, not to
/// crun: what the hardening costs, and what running without root costs
/// (with rootless podman's cost beside it, for reference).
fn relative_targets(peers: &[Peer]) {
    let times = |a, b| median_of(peers, a).and_then(|m| ratio(m, median_of(peers, b)));
    for (ours, theirs, target, cost) in [
        (CH12_NONE, CH10_NONE, HARDENING_TIMES, "the hardening"),
        (
            ROOTLESS_NONE,
            CH13_NONE,
            ROOTLESS_TIMES,
            "running without root",
        ),
    ] {
        println!(
            "{ours} ≤ {target:.2}× {theirs} (the cost of {cost}): {}",
            at_most(times(ours, theirs), target)
        );
    }
    if let Some(r) = times(ROOTLESS_DEFAULT, CH10_BRIDGE) {
        println!("(for reference: {ROOTLESS_DEFAULT} is {r:.2}× {CH10_BRIDGE})");
    }
    if let Some(r) = times(PODMAN_ROOTLESS_NONE, PODMAN_NONE) {
        println!("(for reference: {PODMAN_ROOTLESS_NONE} is {r:.2}× {PODMAN_NONE})");
    }
}

/// How many times faster `a` is than `b`, when `b` was measured.
fn ratio_inverse(a: Duration, b: Option<Duration>) -> Option<f64> {
    ratio(a, b).map(|r| 1.0 / r)
}

/// Writes the medians (and the 10th and 90th percentiles) to
/// [`RECORD`] in `root`; returns the file's path.
pub(super) fn record(
    root: &Path,
    peers: &[Peer],
    runs: usize,
    load_at_start: &str,
    load_at_end: &str,
) -> Result<PathBuf> {
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let millis = |time: Duration| {
        let ms = (time.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        serde_json::Value::from(ms).to_string()
    };
    let rows: Vec<String> = peers
        .iter()
        .map(|peer| {
            format!(
                "    {{ \"variant\": {}, \"median_ms\": {}, \"p10_ms\": {}, \"p90_ms\": {} }}",
                quote(peer.name),
                millis(peer.median()),
                millis(peer.percentile(10)),
                millis(peer.percentile(90)),
            )
        })
        .collect();
    let targets: Vec<String> = TARGETS
        .iter()
        .map(|(name, at_most)| {
            format!(
                "    {{ \"variant\": {}, \"at_most\": {at_most:.1} }}",
                quote(name)
            )
        })
        .collect();
    let text = format!(
        "{{\n  \"about\": {},\n  \"machine\": {},\n  \"runs\": {runs},\n  \"baseline\": {},\n  \
         \"targets\": [\n{}\n  ],\n  \"rows\": [\n{}\n  ]\n}}\n",
        quote(
            "cargo xtask bench start --record: the medians (and 10th and 90th percentiles) of its run; \
             ratios are computed by whoever reads them, against the baseline's median"
        ),
        quote(&machine(load_at_start, load_at_end)),
        quote(BASELINE),
        targets.join(",\n"),
        rows.join(",\n"),
    );
    serde_json::from_str::<serde_json::Value>(&text).context("the record is not valid JSON")?;
    let path = root.join(RECORD);
    let temporary = path.with_extension("json.tmp");
    fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Where `--record` writes chapter 10's phases, in the workspace.
const RECORD_RUNTIME: &str = "book/src/data/bench-runtime.json";

/// Writes chapter 10's phases (the start's table first) to
/// [`RECORD_RUNTIME`] in `root`; returns the file's path.
pub(super) fn record_runtime(
    root: &Path,
    start: serde_json::Value,
    phases: Vec<serde_json::Value>,
    runs: usize,
    load_at_start: &str,
) -> Result<PathBuf> {
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let data = serde_json::json!({
        "about": "cargo xtask bench start --record: chapter 10's medians (and 10th and 90th \
                  percentiles), one table per phase; ratios are computed by whoever reads them, \
                  against each phase's baseline",
        "machine": machine(load_at_start, &load.join(" ")),
        "runs": runs,
        "phases": std::iter::once(start).chain(phases).collect::<Vec<_>>(),
    });
    let path = root.join(RECORD_RUNTIME);
    let text = serde_json::to_string_pretty(&data).context("encoding the record")? + "\n";
    let temporary = path.with_extension("json.tmp");
    fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// This machine and the day, as the record says where it was measured:
/// kernel, CPUs, the date (UTC) and the load averages around the run.
fn machine(load_at_start: &str, load_at_end: &str) -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "Linux {}, {cpus} CPUs, {} (UTC); load average {load_at_start} at the start, {load_at_end} at the end",
        kernel.trim(),
        today()
    )
}

/// Today's date in UTC, `YYYY-MM-DD`.
fn today() -> String {
    // SAFETY: time(2) with a null pointer only returns the time.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: tm is a plain C struct of integers (and a pointer gmtime_r
    // sets), for which all zeroes is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals of the right types.
    if unsafe { libc::gmtime_r(&now, &mut tm) }.is_null() {
        return "an unknown date".to_string();
    }
    format!(
        "{}-{:02}-{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday
    )
}
