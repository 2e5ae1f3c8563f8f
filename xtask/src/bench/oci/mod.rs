//! `cargo xtask bench oci` (chapter 14): minibox as an OCI runtime
//! (`minibox-runc`, runc's command line) beside the runtimes it stands in
//! for, on a bundle and through the engines that call them.
//!
//! Two groups, each measured in rounds (a warm-up round, then every variant
//! once per round, in an order shuffled each round, so that a change in
//! background load hits them all alike; see [`measure::rounds`]):
//!
//! - **The bundle** ([`BUNDLE_RUNS`] rounds): minibox-runc, crun and runc on
//!   the same OCI bundle, the busybox root filesystem running `true` with
//!   crun's default configuration (`crun spec`, which includes a network
//!   namespace), each
//!   run's own cgroup of the benchmark's, and a state
//!   directory of the benchmark's per runtime: `RUNTIME run`, and `RUNTIME create` + `start` + `delete
//!   --force` timed together as one sample (see
//!   [`crate::bench::start::oci`]). Started in a network namespace of the
//!   benchmark's, with `lo` up.
//! - **The engines** ([`ENGINE_RUNS`] rounds, since each run takes 100 to
//!   350 ms): `podman run --rm`, `docker run --rm` and `ctr run --rm` of
//!   busybox running `true`, each with its default runtime and with
//!   minibox-runc, through the test harness's engines (`harness::engines`:
//!   each engine in a sandbox of its own, with its own directories, network
//!   namespace, mount namespace and registry mirror; see [`engines`]).
//!
//! minibox-runc is a release build (the workspace's release profile), as
//! the runtimes it is compared with are optimized builds. A failing
//! minibox-runc run fails the benchmark; a peer that cannot run here is left
//! out after the warm-up, saying why.
//!
//! The targets are ratios: minibox-runc at most 1.0× crun on the bundle
//! (both `run` and create + start + delete), and, through each engine, at
//! most 1.0× that engine's default runtime.
//!
//! Everything the benchmark makes goes at the end: the working directory
//! (`target/bench/oci`), the engines' sandboxes (their daemons stopped by
//! PID, their directories in the temp dir removed), the network namespace,
//! the cgroups (below our own, see [`crate::bench::cgroups`]), and the
//! hugetlb hierarchy if the benchmark mounted it.
//!
//! ## Layout
//!
//! - [`engines`]: the engines' sandboxes and their variants.
//! - [`report`]: the tables, the ratios and the targets.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use ch09_networking::netlink::Netlink;
use ch09_networking::netns;

use super::cgroups::{BenchCgroups, Hugetlb, Parents};
use super::measure::{self, Peer, WorkDir};
use super::report::load_average;
use super::start::oci::Runtime;
use super::{build_release_bin, installed};
use crate::{prereqs, shell};

mod engines;
mod report;

/// Measured rounds of the bundle's variants.
const BUNDLE_RUNS: usize = 30;
/// Measured rounds of the engines' variants (each run is 100 to 350 ms).
const ENGINE_RUNS: usize = 20;

/// Runs the benchmark and prints the commands, the tables and the targets.
pub fn oci(root: &Path) -> Result<()> {
    ensure!(
        harness::privilege::is_root(),
        "cargo xtask bench oci needs root (namespaces, mounts, cgroups, the engines' daemons): run it with sudo"
    );
    prereqs::ensure()?;
    let minibox_runc = build_release_bin(root, "ch14-oci-runtime", "minibox-runc")?
        .context("chapter 14 does not exist yet (no chapters/ch14-oci-runtime/Cargo.toml)")?;
    let load_at_start = load_average()?;
    println!("load average at the start: {load_at_start}");
    versions();

    // Dropped in the reverse order: the network namespace closed, the
    // cgroups removed, hugetlb unmounted, the working directory removed.
    let work = WorkDir::create(root.join("target/bench/oci"))?;
    let _hugetlb = Hugetlb::prepare()?;
    let parents = Parents::new(&format!("minibox-bench-oci-{}", std::process::id()))?;
    let _cgroups = BenchCgroups::new(&parents)?;
    let netns = netns::create()?;
    Netlink::open_in(netns.as_fd())?.set_up("lo")?;

    let runtimes = runtimes(&minibox_runc, &work.path, &parents, netns.as_fd())?;
    let mut bundle = bundle_variants(&runtimes)?;
    measure::rounds(&mut bundle, &work, BUNDLE_RUNS)?;

    // The engines start after the bundle's rounds, so that their idle
    // daemons are not running beside them.
    let sandboxes = engines::Engines::start(&minibox_runc);
    let mut through_engines = sandboxes.variants(&parents.absolute, &minibox_runc)?;
    measure::rounds(&mut through_engines, &work, ENGINE_RUNS)?;
    let load_at_end = load_average()?;

    report::bundle(&bundle, BUNDLE_RUNS);
    report::engines(&through_engines, ENGINE_RUNS);
    println!();
    println!("load average at the end: {load_at_end}");
    drop(through_engines);
    sandboxes.shutdown();
    Ok(())
}

/// Prints the peers' versions (the first line of `PROGRAM --version`), for
/// whoever compares the numbers with another machine's.
fn versions() {
    println!("versions:");
    for program in ["crun", "runc", "podman", "dockerd", "containerd"] {
        let Ok(out) = Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        if let Some(line) = String::from_utf8_lossy(&out.stdout).lines().next() {
            println!("  {line}");
        }
    }
}

/// minibox-runc, crun and runc, ready to run the bundle's containers, but
/// the peers that are not installed or cannot make their default
/// configuration (saying why). minibox-runc must work.
fn runtimes<'a>(
    minibox_runc: &Path,
    work: &Path,
    parents: &Parents,
    netns: BorrowedFd<'a>,
) -> Result<Vec<Runtime<'a>>> {
    let rootfs = harness::fixtures::busybox_rootfs();
    let new =
        |name, program: &Path| Runtime::new(name, program, work, &rootfs, &parents.absolute, netns);
    let mut runtimes = vec![new(report::MINIBOX_RUNC, minibox_runc)?];
    for name in ["crun", "runc"] {
        if !installed(&[name]) {
            continue;
        }
        match new(name, Path::new(name)) {
            Ok(runtime) => runtimes.push(runtime),
            Err(err) => println!("{name}: cannot run here, left out: {err:#}"),
        }
    }
    // One bundle for all: crun's default configuration, the baseline's
    // (minibox-runc's where crun is not here). Its ambient capabilities,
    // without inheritable ones, cannot be raised: crun, runc and
    // minibox-runc all start the process without them, warning.
    let config = runtimes
        .iter()
        .find(|runtime| runtime.name == "crun")
        .unwrap_or(&runtimes[0])
        .config()
        .clone();
    Ok(runtimes
        .into_iter()
        .map(|runtime| runtime.with_config(config.clone()))
        .collect())
}

/// Each runtime's `run`, and its `create` + `start` + `delete --force`;
/// prints their commands.
fn bundle_variants<'a>(runtimes: &'a [Runtime<'a>]) -> Result<Vec<Peer<'a>>> {
    println!();
    println!(
        "the bundle's commands (in a network namespace of the benchmark's, with lo up; RUN is the \
         run's own directory, the bundle, with crun's default config.json, less its ambient capabilities, running `true`):"
    );
    let mut peers = Vec::new();
    for runtime in runtimes {
        let required = runtime.name == report::MINIBOX_RUNC;
        let (run, lifecycle) = report::bundle_rows(runtime.name);
        let dir = Path::new("RUN");
        println!("  {run}: {}", shell::show(&runtime.command(dir)?));
        println!(
            "  {lifecycle}: {}; {} start ID; {} delete --force ID",
            shell::show(&runtime.command_for(dir, &["create"])?),
            shell::show(&runtime.state_command()),
            shell::show(&runtime.state_command()),
        );
        peers.push(Peer::new(
            run,
            required,
            Box::new(move |dir: &Path| runtime.run_once(dir)),
        ));
        peers.push(Peer::new(
            lifecycle,
            required,
            Box::new(move |dir: &Path| runtime.lifecycle_once(dir)),
        ));
    }
    Ok(peers)
}
