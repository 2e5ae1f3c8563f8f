//! The report: a table of medians, ranges, ratios and peak RSS, then each
//! target met or missed. Ratios, never absolute pass/fail times.

use std::time::Duration;

use super::RUNS;
use super::measure::Peer;
use super::peers::TMPFS_PEER;

/// The peak-RSS target for minibox, in bytes.
const RSS_TARGET: u64 = 64 << 20;

/// Prints the table and the targets.
pub(super) fn report(reference: &str, summary: &str, peers: &[Peer], inherited: Option<u64>) {
    let median = |peer: &Peer| -> Duration {
        let mut times: Vec<Duration> = peer.samples.iter().map(|s| s.time).collect();
        times.sort();
        times[times.len() / 2]
    };
    let find = |prefix: &str| {
        peers
            .iter()
            .find(|p| p.name.starts_with(prefix))
            .map(median)
    };
    let (podman, floor) = (find("podman"), find("floor"));
    println!();
    println!("pull {reference} into an empty store: {summary}");
    println!(
        "median of {RUNS} runs after a warm-up round; peak RSS is the largest of the runs, \
         and no less than the {} a child inherits here",
        inherited.map(mib).unwrap_or_default()
    );
    println!(
        "{:<32} {:>10} {:>19} {:>9} {:>8} {:>10}",
        "", "median", "min – max", "× podman", "× floor", "peak RSS"
    );
    let ratio = |a: Duration, b: Option<Duration>| match b {
        Some(b) => format!("{:.2}", a.as_secs_f64() / b.as_secs_f64()),
        None => "-".to_string(),
    };
    for peer in peers {
        let time = median(peer);
        let min = peer
            .samples
            .iter()
            .map(|s| s.time)
            .min()
            .unwrap_or_default();
        let max = peer
            .samples
            .iter()
            .map(|s| s.time)
            .max()
            .unwrap_or_default();
        let rss = peer
            .samples
            .iter()
            .filter_map(|s| s.rss)
            .max()
            .map(mib)
            .unwrap_or_else(|| "-".to_string());
        println!(
            "{:<32} {:>10} {:>19} {:>9} {:>8} {:>10}",
            peer.name,
            ms(time),
            format!("{} – {}", ms(min), ms(max)),
            ratio(time, podman),
            ratio(time, floor),
            rss
        );
    }
    println!();
    let minibox = peers.iter().find(|p| p.name == "minibox");
    let verdict = |met: Option<bool>, value: String| match met {
        Some(true) => format!("met ({value})"),
        Some(false) => format!("MISSED ({value})"),
        None => "not measured".to_string(),
    };
    let time = minibox.map(median);
    let vs = |other: Option<Duration>, target: f64| {
        let r = time
            .zip(other)
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64());
        verdict(r.map(|r| r <= target), format!("{:.2}×", r.unwrap_or(0.0)))
    };
    println!("minibox ≤ 0.5× podman: {}", vs(podman, 0.5));
    println!("minibox ≤ 1.5× floor: {}", vs(floor, 1.5));
    if let Some(tmpfs) = peers.iter().find(|p| p.name == TMPFS_PEER)
        && !tmpfs.samples.is_empty()
    {
        let r = floor.map(|f| median(tmpfs).as_secs_f64() / f.as_secs_f64());
        println!(
            "minibox, store on tmpfs, ≤ 1.5× floor: {}",
            verdict(r.map(|r| r <= 1.5), format!("{:.2}×", r.unwrap_or(0.0)))
        );
    }
    let rss = minibox.and_then(|p| p.samples.iter().filter_map(|s| s.rss).max());
    println!(
        "peak RSS < 64 MiB: {}",
        verdict(
            rss.map(|r| r < RSS_TARGET),
            rss.map(mib).unwrap_or_default()
        )
    );
}

fn ms(time: Duration) -> String {
    format!("{:.0} ms", time.as_secs_f64() * 1000.0)
}

pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}
