//! What every benchmark's report is made of: times in milliseconds, ratios
//! against what a peer measured in the same run, a target's verdict, and the
//! machine's load while it ran. Targets are ratios; no benchmark passes or
//! fails on an absolute time, but where the target itself is one (a fully
//! cached build under 100 ms).

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};

/// A time in milliseconds, with a decimal below 100 ms (container starts)
/// and none above (pulls).
pub(super) fn ms(time: Duration) -> String {
    let ms = time.as_secs_f64() * 1000.0;
    if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// One row of a table of runs: the peer's name in `name_width` columns, its
/// median, its spreads (p10 – p90, min – max) and `ratio` to the baseline in
/// `ratio_width`.
pub(super) fn timing_row(
    peer: &crate::bench::measure::Peer,
    name_width: usize,
    ratio: Option<f64>,
    ratio_width: usize,
) -> String {
    let spread = |low, high| {
        format!(
            "{} – {}",
            ms(peer.percentile(low)),
            ms(peer.percentile(high))
        )
    };
    format!(
        "{:<name_width$} {:>9} {:>19} {:>19} {:>ratio_width$}",
        peer.name,
        ms(peer.median()),
        spread(10, 90),
        spread(0, 100),
        ratio_cell(ratio)
    )
}

/// `a / b`, when `b` was measured.
pub(super) fn ratio(a: Duration, b: Option<Duration>) -> Option<f64> {
    b.map(|b| a.as_secs_f64() / b.as_secs_f64())
}

/// A ratio for a table's column: two decimals, or `-` when there is none.
pub(super) fn ratio_cell(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_string(), |r| format!("{r:.2}"))
}

/// A target's line: `PASS (value)`, `MISS (value)`, or `not measured` when
/// one side of it could not run.
pub(super) fn verdict(met: Option<bool>, value: &str) -> String {
    match met {
        Some(true) => format!("PASS ({value})"),
        Some(false) => format!("MISS ({value})"),
        None => "not measured".to_string(),
    }
}

/// The verdict on `ratio ≤ target`, the ratio shown as `1.23×`.
pub(super) fn at_most(ratio: Option<f64>, target: f64) -> String {
    let value = ratio.map(|r| format!("{r:.2}×")).unwrap_or_default();
    verdict(ratio.map(|r| r <= target), &value)
}

/// The 1, 5 and 15 minute load averages, from /proc/loadavg: printed at the
/// start and the end of a run, since another job on the machine slows every
/// peer down (not always alike).
pub(super) fn load_average() -> Result<String> {
    let text = fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    Ok(text
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" "))
}
