//! The report: a table of medians, ranges, ratios and peak RSS, then each
//! target met or missed. Ratios, never absolute pass/fail times.

use super::RUNS;
use super::peers::TMPFS_PEER;
use crate::bench::measure::Peer;
use crate::bench::report::{at_most, ms, ratio, ratio_cell, verdict};

/// The peak-RSS target for minibox, in bytes.
const RSS_TARGET: u64 = 64 << 20;

/// Prints the table and the targets.
pub(super) fn report(reference: &str, summary: &str, peers: &[Peer], inherited: Option<u64>) {
    let find = |prefix: &str| {
        peers
            .iter()
            .find(|p| p.name.starts_with(prefix))
            .map(Peer::median)
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
    for peer in peers {
        let time = peer.median();
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
            format!("{} – {}", ms(peer.percentile(0)), ms(peer.percentile(100))),
            ratio_cell(ratio(time, podman)),
            ratio_cell(ratio(time, floor)),
            rss
        );
    }
    println!();
    let minibox = peers.iter().find(|p| p.name == "minibox");
    let time = minibox.map(Peer::median);
    let vs = |other, target| at_most(time.and_then(|t| ratio(t, other)), target);
    println!("minibox ≤ 0.5× podman: {}", vs(podman, 0.5));
    println!("minibox ≤ 1.5× floor: {}", vs(floor, 1.5));
    if let Some(tmpfs) = peers.iter().find(|p| p.name == TMPFS_PEER)
        && !tmpfs.samples.is_empty()
    {
        println!(
            "minibox, store on tmpfs, ≤ 1.5× floor: {}",
            at_most(ratio(tmpfs.median(), floor), 1.5)
        );
    }
    let rss = minibox.and_then(|p| p.samples.iter().filter_map(|s| s.rss).max());
    println!(
        "peak RSS < 64 MiB: {}",
        verdict(
            rss.map(|r| r < RSS_TARGET),
            &rss.map(mib).unwrap_or_default()
        )
    );
}

pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}
