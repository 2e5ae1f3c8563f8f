//! The report: a table per group (the bundle; the engines), each row with
//! its median, spreads and ratio to its group's baseline (crun on the
//! bundle, each engine's default runtime through the engines), then each
//! target with PASS or MISS.

use std::time::Duration;

use crate::bench::measure::{Peer, median_of};
use crate::bench::report::{at_most, ratio, timing_row};

/// Chapter 14's runtime, as its rows and its `Runtime` are named.
pub(super) const MINIBOX_RUNC: &str = "minibox-runc";

/// A set of rows compared with one baseline: the first of `baselines` that
/// was measured (podman's default is crun, and runc where crun cannot run).
pub(super) struct Group {
    /// What the rows do, above the table.
    title: &'static str,
    /// The ratio column's heading.
    against: &'static str,
    baselines: &'static [&'static str],
    /// The rows, in the table's order.
    rows: &'static [&'static str],
    /// minibox-runc's row, whose target is at most 1.0× the baseline.
    minibox: &'static str,
}

/// The bundle's rows: `run`, and create + start + delete, for each runtime.
const BUNDLE_RUN: Group = Group {
    title: "RUNTIME run",
    against: "× crun",
    baselines: &["crun run"],
    rows: &["minibox-runc run", "crun run", "runc run"],
    minibox: "minibox-runc run",
};
const BUNDLE_LIFECYCLE: Group = Group {
    title: "RUNTIME create + start + delete --force",
    against: "× crun",
    baselines: &["crun create+start+delete"],
    rows: &[
        "minibox-runc create+start+delete",
        "crun create+start+delete",
        "runc create+start+delete",
    ],
    minibox: "minibox-runc create+start+delete",
};

/// The rows of runtime `name` (`minibox-runc`, `crun`, `runc`): its `run`,
/// and its create + start + delete.
pub(super) fn bundle_rows(name: &str) -> (&'static str, &'static str) {
    let at = [MINIBOX_RUNC, "crun", "runc"]
        .iter()
        .position(|n| *n == name)
        .expect("a runtime of the bundle's");
    (BUNDLE_RUN.rows[at], BUNDLE_LIFECYCLE.rows[at])
}

/// The engines' rows.
pub(super) const PODMAN_CRUN: &str = "podman run --rm (crun, default)";
pub(super) const PODMAN_RUNC: &str = "podman run --rm --runtime runc";
pub(super) const PODMAN_MINIBOX: &str = "podman run --rm --runtime minibox-runc";
pub(super) const DOCKER_RUNC: &str = "docker run --rm (runc, default)";
pub(super) const DOCKER_MINIBOX: &str = "docker run --rm --runtime minibox";
pub(super) const CTR_RUNC: &str = "ctr run --rm (runc, default)";
pub(super) const CTR_MINIBOX: &str = "ctr run --rm --runc-binary minibox-runc";

const ENGINES: [Group; 3] = [
    Group {
        title: "podman (conmon)",
        against: "× default",
        baselines: &[PODMAN_CRUN, PODMAN_RUNC],
        rows: &[PODMAN_MINIBOX, PODMAN_CRUN, PODMAN_RUNC],
        minibox: PODMAN_MINIBOX,
    },
    Group {
        title: "Docker (dockerd → containerd → containerd-shim-runc-v2)",
        against: "× default",
        baselines: &[DOCKER_RUNC],
        rows: &[DOCKER_MINIBOX, DOCKER_RUNC],
        minibox: DOCKER_MINIBOX,
    },
    Group {
        title: "containerd (ctr → containerd → containerd-shim-runc-v2)",
        against: "× default",
        baselines: &[CTR_RUNC],
        rows: &[CTR_MINIBOX, CTR_RUNC],
        minibox: CTR_MINIBOX,
    },
];

/// Prints the bundle's tables and targets.
pub(super) fn bundle(peers: &[Peer], runs: usize) {
    println!();
    println!(
        "an OCI bundle (busybox, running `true`): median and spread of {runs} runs after a warm-up \
         round, the variants interleaved"
    );
    for group in [&BUNDLE_RUN, &BUNDLE_LIFECYCLE] {
        table(peers, group);
    }
    println!();
    for group in [&BUNDLE_RUN, &BUNDLE_LIFECYCLE] {
        target(peers, group);
    }
}

/// Prints the engines' tables and targets.
pub(super) fn engines(peers: &[Peer], runs: usize) {
    println!();
    println!(
        "`ENGINE run --rm busybox true` (the image in the engine's store, no network): median and \
         spread of {runs} runs after a warm-up round, the variants interleaved"
    );
    for group in &ENGINES {
        table(peers, group);
    }
    println!();
    for group in &ENGINES {
        target(peers, group);
    }
}

/// One group's table: the rows that ran, with the ratio to its baseline.
fn table(peers: &[Peer], group: &Group) {
    let baseline = baseline(peers, group);
    println!();
    println!("{}", group.title);
    println!(
        "{:<42} {:>9} {:>19} {:>19} {:>9}",
        "", "median", "p10 – p90", "min – max", group.against
    );
    for name in group.rows {
        let Some(peer) = peers.iter().find(|p| p.name == *name) else {
            continue;
        };
        let against = baseline.and_then(|(_, b)| ratio(peer.median(), Some(b)));
        println!("{}", timing_row(peer, 42, against, 9));
    }
}

/// A group's target: minibox-runc's median at most 1.0× the baseline's.
fn target(peers: &[Peer], group: &Group) {
    let baseline = baseline(peers, group);
    let name = baseline.map_or(group.baselines[0], |(name, _)| name);
    let r = median_of(peers, group.minibox).and_then(|m| ratio(m, baseline.map(|(_, b)| b)));
    println!("{} ≤ 1.0× {name}: {}", group.minibox, at_most(r, 1.0));
}

/// The group's baseline that was measured, and its median.
fn baseline(peers: &[Peer], group: &Group) -> Option<(&'static str, Duration)> {
    group
        .baselines
        .iter()
        .find_map(|name| median_of(peers, name).map(|median| (*name, median)))
}
