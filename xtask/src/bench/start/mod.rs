//! `cargo xtask bench start` (chapter 9): how long a container takes to start
//! and exit, on each network, against the runtimes people compare with.
//!
//! The container is busybox running `true`, its image already in each tool's
//! store (pulled once, untimed, from a registry of our own on 127.0.0.1). The
//! variants, in rounds (one warm-up round, then [`RUNS`] measured ones, each
//! variant once per round, so that a change in background load hits them all
//! alike):
//!
//! - **chapter 8** (`ch08-command-override run --quiet busybox true`): the
//!   same start with no network namespace at all, the reference for what the
//!   network costs.
//! - **chapter 9** with `--network none` (a namespace with only `lo`) and with
//!   `--network bridge` (a veth on the `minibox0` bridge, an address, a
//!   route; the bridge and its NAT rules are made by the warm-up round's run,
//!   as by the first container on a host).
//! - **crun run** and **runc run** on an OCI bundle of the same busybox root
//!   filesystem, with each runtime's default configuration, which includes a
//!   network namespace (see [`oci`]).
//! - **podman run --rm**, with `--network none` and with its default bridge
//!   network (netavark), where podman is installed (see
//!   [`crate::bench::podman`]).
//!
//! Everything runs in a network namespace the benchmark makes (with `lo` up),
//! so the bridges, veths and NAT rules of minibox and podman exist only there
//! and vanish when it is closed, and every variant is started the same way.
//! minibox is a release build, since the runtimes are optimized builds too.
//! Its runtime state (`MINIBOX_RUN`) is on a tmpfs, in `/dev/shm`, as
//! `/run/minibox` is on a real host (this machine's `/run` is on its disk);
//! crun's and runc's state (`--root`) is in the benchmark's directory, and
//! podman has a tmpfs of its own on `/run` and `/var/lib`.
//! Each run must exit 0: a failing variant fails the benchmark (minibox) or is
//! left out with its reason after the warm-up (a peer that cannot run here).
//! - **chapter 12** with `--network none`: chapter 10's start with Docker's
//!   hardening, whose cost is measured against chapter 10's.
//!
//! The targets are ratios to crun's median: `none` ≤ 1.0×, `bridge` ≤ 1.5×;
//! and chapter 12 at most 1.10× chapter 10.
//!
//! ## Layout
//!
//! - [`oci`]: crun and runc on a bundle.
//! - [`report`]: the table, the targets, and `--record`'s JSON.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use ch09_networking::netlink::Netlink;
use ch09_networking::netns;

use super::busybox::Busybox;
use super::cgroups::{self, BenchCgroups, Hugetlb, Parents};
use super::measure::{self, Peer, TmpfsDir, WorkDir, run_measured};
use super::minibox::Minibox;
use super::podman::{Podman, PodmanStorage};
use super::report::load_average;
use super::{build_release, installed};
use crate::{prereqs, shell};

mod oci;
mod report;
mod runtime;

use oci::Runtime;

/// Measured rounds; the median and the spread of these are reported.
const RUNS: usize = 30;

/// A way to start the container: the peer that measures it, and the command
/// it runs, as shown before the table.
struct Variant<'a> {
    peer: Peer<'a>,
    shown: String,
}

/// Runs the benchmark, prints the commands, the table and the targets, and
/// with `record` writes the medians to `book/src/data/bench-start.json`.
pub fn start(root: &Path, record: bool) -> Result<()> {
    ensure!(
        harness::privilege::is_root(),
        "cargo xtask bench start needs root (namespaces, mounts, cgroups): run it with sudo"
    );
    prereqs::ensure()?;
    let ch10 = super::build_release_bin(root, "ch10-runtime", "ch10-runtime")?
        .context("chapter 10 does not exist yet")?;
    let ch12 = super::build_release_bin(root, "ch12-security", "minibox")?
        .context("chapter 12 does not exist yet")?;
    let ch09 = build(root, "ch09-networking")?;
    let ch08 = build(root, "ch08-command-override")?;
    let rootfs = harness::fixtures::busybox_rootfs();
    let load_at_start = load_average()?;
    println!("load average at the start: {load_at_start}");

    // Dropped in the reverse order: podman's storage is reset, the network
    // namespace closed, the cgroups removed, hugetlb unmounted, and the
    // working directory removed last.
    let work = WorkDir::create(root.join("target/bench/start"))?;
    let _hugetlb = Hugetlb::prepare()?;
    let parents = Parents::new(&format!("minibox-bench-start-{}", std::process::id()))?;
    let _cgroups = BenchCgroups::new(&parents)?;
    let netns = netns::create()?;
    Netlink::open_in(netns.as_fd())?.set_up("lo")?;
    let run_dir = TmpfsDir::create(&format!("minibox-bench-start-{}", std::process::id()))?;
    let minibox = Minibox {
        store: work.path.join("store"),
        run: run_dir.0.clone(),
        parent: parents.relative.clone(),
        netns: netns.as_fd(),
    };
    let podman = podman_storage(&work.path)?;
    let podman_image = pull_images(&minibox, &ch09, podman.as_ref().map(|p| &p.0))?;
    let podman_parent = format!("{}/podman", parents.absolute);

    let mut variants = vec![
        minibox.variant("ch08 run (no network namespace)", &ch08, &[])?,
        minibox.variant(report::NONE, &ch09, &["--network", "none"])?,
        minibox.variant(report::BRIDGE, &ch09, &["--network", "bridge"])?,
        minibox.variant(report::CH10_NONE, &ch10, &["--rm", "--network", "none"])?,
        minibox.variant(report::CH10_BRIDGE, &ch10, &["--rm", "--network", "bridge"])?,
        minibox.variant(report::CH12_NONE, &ch12, &["--rm", "--network", "none"])?,
    ];
    let mut runtimes = Vec::new();
    for name in ["crun", "runc"] {
        if let Some(runtime) = oci_runtime(name, &work.path, &rootfs, &parents, netns.as_fd())? {
            runtimes.push(runtime);
        }
    }
    for runtime in &runtimes {
        variants.push(oci_variant(runtime.clone())?);
    }
    if let (Some(podman), Some(image)) = (&podman, &podman_image) {
        variants.extend(podman_variants(
            &podman.0,
            image,
            &podman_parent,
            netns.as_fd(),
        )?);
    }

    println!();
    println!(
        "commands (each started in a network namespace of the benchmark's, with lo up; podman also in a \
         mount namespace of its own with tmpfs on /run and /var/lib; RUN is the run's own directory):"
    );
    let mut peers = Vec::new();
    for variant in variants {
        println!("  {}: {}", variant.peer.name, variant.shown);
        peers.push(variant.peer);
    }
    measure::rounds(&mut peers, &work, RUNS)?;
    let load_at_end = load_average()?;
    report::report(&peers, RUNS);
    println!("load average at the end: {load_at_end}");
    if record {
        let written = report::record(root, &peers, RUNS, &load_at_start, &load_at_end)?;
        println!("recorded the medians in {}", written.display());
    }
    let phases = runtime::runtime(&minibox, &ch10, &work, &runtimes)?;
    if record {
        let what = "start a busybox container running `true` in the foreground, removed at its end";
        let start = runtime::table(what, &peers, report::BASELINE);
        let written = report::record_runtime(root, start, phases, RUNS, &load_at_start)?;
        println!("recorded chapter 10's medians in {}", written.display());
    }
    Ok(())
}

/// Chapter `package`'s binary, built in release mode.
fn build(root: &Path, package: &str) -> Result<PathBuf> {
    build_release(root, package)?.with_context(|| {
        format!("chapter {package} does not exist yet (no chapters/{package}/Cargo.toml)")
    })
}

impl Minibox<'_> {
    /// `BIN run --quiet NETWORK busybox true`.
    fn variant<'a>(
        &'a self,
        name: &'static str,
        bin: &'a Path,
        network: &'a [&str],
    ) -> Result<Variant<'a>> {
        let args = move || [&["run", "--quiet"], network, &["busybox", "true"]].concat();
        let shown = shell::show_with_env(&self.command(bin, &args())?);
        let run = move |dir: &Path| run_measured(&mut self.command(bin, &args())?, dir, "minibox");
        Ok(Variant {
            peer: Peer::new(name, true, Box::new(run)),
            shown,
        })
    }
}

/// crun or runc, ready to run the benchmark's containers, or none (saying
/// why) where it is not installed or cannot make its default configuration.
fn oci_runtime<'a>(
    name: &'static str,
    work: &Path,
    rootfs: &Path,
    parents: &Parents,
    netns: BorrowedFd<'a>,
) -> Result<Option<Runtime<'a>>> {
    if !installed(&[name]) {
        return Ok(None);
    }
    match Runtime::new(name, work, rootfs, &parents.absolute, netns) {
        Ok(runtime) => Ok(Some(runtime)),
        Err(err) => {
            println!("{name}: cannot run here, left out: {err:#}");
            Ok(None)
        }
    }
}

/// `RUNTIME run`'s variant.
fn oci_variant(runtime: Runtime<'_>) -> Result<Variant<'_>> {
    let shown = shell::show(&runtime.command(Path::new("RUN"))?);
    let peer_name = if runtime.name == "crun" {
        report::BASELINE
    } else {
        "runc run"
    };
    let run = move |dir: &Path| runtime.run_once(dir);
    Ok(Variant {
        peer: Peer::new(peer_name, false, Box::new(run)),
        shown,
    })
}

/// Podman with everything below `work/podman`, and what resets its storage
/// when dropped; none where podman is not installed.
fn podman_storage(work: &Path) -> Result<Option<PodmanStorage>> {
    if !installed(&["podman"]) {
        return Ok(None);
    }
    Ok(Some(PodmanStorage::create(&work.join("podman"))?))
}

/// `podman run --rm` with `--network none` and with podman's default bridge
/// network, containers' cgroups below `parent`.
fn podman_variants<'a>(
    podman: &'a Podman,
    image: &'a str,
    parent: &'a str,
    netns: BorrowedFd<'a>,
) -> Result<Vec<Variant<'a>>> {
    let mut variants = Vec::new();
    for (name, network) in [
        (report::PODMAN_NONE, &["--network", "none"][..]),
        (report::PODMAN_DEFAULT, &[][..]),
    ] {
        let command = move || -> Result<Command> {
            let mut command = podman.command(Some(netns))?;
            command
                .args(["run", "--rm", "--cgroup-parent", parent])
                .args(network)
                .args([image, "true"]);
            Ok(command)
        };
        let shown = shell::show_with_env(&command()?);
        // conmon outlives `podman run`: once the container is gone it runs
        // podman's cleanup command, which the next run must not share the
        // machine with. So the run ends, untimed, when conmon's cgroup is
        // empty.
        let conmon = format!("{parent}/conmon");
        let run = move |dir: &Path| {
            let sample = run_measured(&mut command()?, dir, "podman")?;
            cgroups::wait_until_empty(&conmon)?;
            Ok(sample)
        };
        variants.push(Variant {
            peer: Peer::new(name, false, Box::new(run)),
            shown,
        });
    }
    Ok(variants)
}

/// Starts a registry of our own with the busybox fixture image, pulls it
/// into minibox's store (with chapter 9's `pull`) and into podman's, untimed,
/// then stops the registry. Returns podman's name for the image, or none
/// when podman could not pull it (saying why).
fn pull_images(minibox: &Minibox, ch09: &Path, podman: Option<&Podman>) -> Result<Option<String>> {
    let busybox = Busybox::serve()?;
    busybox.pull_minibox(ch09, &minibox.store)?;
    let Some(podman) = podman else {
        return Ok(None);
    };
    let image = format!("{}/library/busybox", busybox.host());
    Ok(busybox.pull_podman(podman, &image).then_some(image))
}
