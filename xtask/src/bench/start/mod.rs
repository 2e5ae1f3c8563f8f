//! `cargo xtask bench start` (chapter 9 on): how long a container takes to
//! start and exit, on each network, as root and as an ordinary user, against
//! the runtimes people compare with.
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
//! - **chapter 10** (`run --rm`, under a monitor, the container kept on disk
//!   until `--rm` removes it) with `--network none` and `--network bridge`.
//! - **chapter 12** with `--network none`: chapter 10's start with Docker's
//!   hardening, whose cost is measured against chapter 10's.
//! - **chapter 13** with `--network none`, as root (chapter 12's start,
//!   nothing added) and as an ordinary user (`ch13 rootless`: a user of the
//!   benchmark's own, with a subordinate range, in the user namespace its
//!   pause process holds; see [`rootless`]).
//! - **crun run** and **runc run** on an OCI bundle of the same busybox root
//!   filesystem, with each runtime's default configuration, which includes a
//!   network namespace (see [`oci`]).
//! - **podman run --rm**, with `--network none` and with its default bridge
//!   network (netavark), where podman is installed (see
//!   [`crate::bench::podman`]); and **rootless podman** with `--network none`,
//!   run by the same user as rootless minibox.
//!
//! Everything runs in a network namespace the benchmark makes (with `lo` up),
//! so the bridges, veths and NAT rules of minibox and podman exist only there
//! and vanish when it is closed, and every variant is started the same way.
//! minibox is a release build, since the runtimes are optimized builds too.
//! Its runtime state (`MINIBOX_RUN`) is on a tmpfs, in `/dev/shm`, as
//! `/run/minibox` is on a real host (this machine's `/run` is on its disk),
//! and so is the rootless user's runtime directory; crun's and runc's state
//! (`--root`) is in the benchmark's directory, and podman has a tmpfs of its
//! own on `/run` and `/var/lib`.
//! Each run must exit 0: a failing variant fails the benchmark (minibox) or is
//! left out with its reason after the warm-up (a peer that cannot run here).
//!
//! The targets are ratios to crun's median: `none` ≤ 1.0×, `bridge` ≤ 1.5×
//! (chapters 9, 10 and 12); and ratios between our own variants: chapter 12
//! at most 1.10× chapter 10 (the cost of the hardening), and chapter 13
//! rootless at most 1.5× chapter 13 as root (the cost of running without
//! root).
//!
//! ## Layout
//!
//! - [`oci`]: crun and runc on a bundle.
//! - [`rootless`]: the ordinary user, its minibox and its podman.
//! - [`runtime`]: chapter 10's other operations, measured after the starts.
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

pub(super) mod oci;
mod report;
mod rootless;
mod runtime;

use oci::Runtime;
use rootless::RootlessUser;

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
        "cargo xtask bench start needs root (namespaces, mounts, cgroups, a user of its own): run it with sudo"
    );
    prereqs::ensure()?;
    let bins = Binaries::build(root)?;
    let load_at_start = load_average()?;
    println!("load average at the start: {load_at_start}");

    // Dropped in the reverse order: the rootless user's processes are ended
    // and its directories removed, podman's storage is reset, the network
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
    // No measured run may pull: the registry stops before the first.
    let busybox = Busybox::serve()?;
    let podman_image = pull_images(&busybox, &minibox, &bins.ch09, podman.as_ref())?;
    let rootless = RootlessUser::prepare(&bins.ch13, &busybox, netns.as_fd())?;
    let rootless_podman = rootless.podman(podman_image.as_deref())?;
    drop(busybox);
    let podman_parent = format!("{}/podman", parents.absolute);

    let mut variants = minibox_variants(&minibox, &bins)?;
    variants.push(rootless.minibox_variant());
    variants.push(rootless.minibox_default_variant());
    let runtimes = oci_runtimes(&work.path, &parents, netns.as_fd())?;
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
    if let (Some(podman), Some(image)) = (&rootless_podman, &podman_image) {
        variants.push(rootless.podman_variant(podman, image, netns.as_fd())?);
    }
    let peers = measure_variants(variants, &work)?;
    let load_at_end = load_average()?;
    report::report(&peers, RUNS);
    println!("load average at the end: {load_at_end}");
    if record {
        let written = report::record(root, &peers, RUNS, &load_at_start, &load_at_end)?;
        println!("recorded the medians in {}", written.display());
    }
    let phases = runtime::runtime(&minibox, &bins.ch10, &work, &runtimes)?;
    if record {
        let what = "start a busybox container running `true` in the foreground, removed at its end";
        let start = runtime::table(what, &peers, report::BASELINE);
        let written = report::record_runtime(root, start, phases, RUNS, &load_at_start)?;
        println!("recorded chapter 10's medians in {}", written.display());
    }
    Ok(())
}

/// The chapters' binaries the benchmark runs, release builds.
struct Binaries {
    ch08: PathBuf,
    ch09: PathBuf,
    ch10: PathBuf,
    ch12: PathBuf,
    ch13: PathBuf,
}

impl Binaries {
    /// Builds them; fails while a chapter does not exist yet.
    fn build(root: &Path) -> Result<Binaries> {
        let ch13 = build(root, "ch13-rootless")?;
        Ok(Binaries {
            ch13,
            ch12: build(root, "ch12-security")?,
            ch10: build(root, "ch10-runtime")?,
            ch09: build(root, "ch09-networking")?,
            ch08: build(root, "ch08-command-override")?,
        })
    }
}

/// root's minibox rows: chapters 8 to 13.
fn minibox_variants<'a>(minibox: &'a Minibox, bins: &'a Binaries) -> Result<Vec<Variant<'a>>> {
    let rm_none = &["--rm", "--network", "none"][..];
    Ok(vec![
        minibox.variant("ch08 run (no network namespace)", &bins.ch08, &[])?,
        minibox.variant(report::NONE, &bins.ch09, &["--network", "none"])?,
        minibox.variant(report::BRIDGE, &bins.ch09, &["--network", "bridge"])?,
        minibox.variant(report::CH10_NONE, &bins.ch10, rm_none)?,
        minibox.variant(
            report::CH10_BRIDGE,
            &bins.ch10,
            &["--rm", "--network", "bridge"],
        )?,
        minibox.variant(report::CH12_NONE, &bins.ch12, rm_none)?,
        minibox.variant(report::CH13_NONE, &bins.ch13, rm_none)?,
    ])
}

/// Prints each variant's command, then measures them in rounds.
fn measure_variants<'a>(variants: Vec<Variant<'a>>, work: &WorkDir) -> Result<Vec<Peer<'a>>> {
    println!();
    println!(
        "commands (each started in a network namespace of the benchmark's, with lo up; root's podman also \
         in a mount namespace of its own with tmpfs on /run and /var/lib; RUN is the run's own \
         directory):"
    );
    let mut peers = Vec::new();
    for variant in variants {
        println!("  {}: {}", variant.peer.name, variant.shown);
        peers.push(variant.peer);
    }
    measure::rounds(&mut peers, work, RUNS)?;
    Ok(peers)
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

/// crun and runc, ready to run the benchmark's containers, but those that
/// are not installed or cannot make their default configuration (saying
/// why).
fn oci_runtimes<'a>(
    work: &Path,
    parents: &Parents,
    netns: BorrowedFd<'a>,
) -> Result<Vec<Runtime<'a>>> {
    let rootfs = harness::fixtures::busybox_rootfs();
    let mut runtimes = Vec::new();
    for name in ["crun", "runc"] {
        if !installed(&[name]) {
            continue;
        }
        match Runtime::new(
            name,
            Path::new(name),
            work,
            &rootfs,
            &parents.absolute,
            netns,
        ) {
            Ok(runtime) => runtimes.push(runtime),
            Err(err) => println!("{name}: cannot run here, left out: {err:#}"),
        }
    }
    Ok(runtimes)
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

/// Pulls busybox from `busybox` into minibox's store (with chapter 9's
/// `pull`) and into podman's, untimed. Returns podman's name for the image,
/// or none when podman could not pull it (saying why).
fn pull_images(
    busybox: &Busybox,
    minibox: &Minibox,
    ch09: &Path,
    podman: Option<&PodmanStorage>,
) -> Result<Option<String>> {
    busybox.pull_minibox(ch09, &minibox.store)?;
    let Some(podman) = podman else {
        return Ok(None);
    };
    let image = format!("{}/library/busybox", busybox.host());
    Ok(busybox.pull_podman(&podman.0, &image).then_some(image))
}
