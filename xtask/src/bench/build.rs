//! `cargo xtask bench build` (chapter 11): how long `minibox build` takes,
//! cold and fully cached, beside `podman build` (buildah) building the same
//! Dockerfile and context in the same run.
//!
//! The Dockerfile and context are chapter 11's example,
//! `chapters/ch11-build/examples/greet`: two stages, two `RUN`s, a `COPY`
//! from the context and a `COPY --from` the first stage, and steps that only
//! change the config. Both stages start `FROM busybox`, already in each
//! tool's store: pulled once, untimed, from a registry of our own on
//! 127.0.0.1 that both tools know as Docker Hub's mirror (minibox through
//! `MINIBOX_REGISTRY_MIRROR`, podman through its registries.conf), and
//! stopped before anything is measured (see [`super::busybox`]). The
//! variants, in rounds (one warm-up round, then [`RUNS`] measured ones, each
//! variant once per round in a shuffled order, so that a change in background
//! load hits them all alike):
//!
//! - **minibox build --no-cache**: cold, every step runs;
//! - **minibox build**: fully cached, after one untimed build of the same
//!   context;
//! - **podman build --no-cache** and **podman build**, the same two with
//!   podman's own storage, state and configuration (see
//!   [`super::podman`]), `--pull=never`.
//!
//! Each of the four has a store of its own, so that what a cold build leaves
//! is never what a cached build finds. Every run must exit 0, and what it
//! printed is checked afterwards: a cold build must have run every step and
//! a cached one must have taken every step from the cache (see
//! [`check_steps`]), so that neither can pass for the other. `RUN`'s
//! containers have no network (`--network none`) and their cgroups below the
//! benchmark's own; everything runs in a network namespace the benchmark
//! makes, with `lo` up. podman runs `RUN` with crun (`--isolation oci`, its
//! default as root); `--isolation chroot` refuses `--network none`.
//!
//! The targets: a cold build at most half of podman's, and a fully cached
//! rebuild under 100 ms. The second is absolute, because it is about a
//! person: an unchanged project's rebuild should feel instant, whatever
//! podman takes (over half a second here).

use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use ch09_networking::netlink::Netlink;
use ch09_networking::netns;
use regex::Regex;

use super::busybox::Busybox;
use super::cgroups::{BenchCgroups, Hugetlb, Parents};
use super::measure::{self, Peer, TmpfsDir, WorkDir, run_measured};
use super::minibox::Minibox;
use super::podman::{Podman, PodmanStorage};
use super::report::{at_most, load_average, ms, ratio, ratio_cell, verdict};
use super::{build_release_bin, installed};
use crate::{prereqs, shell};

/// Measured rounds. Fewer than `start`'s thirty: a build lasts long against
/// what disturbs it (a timer tick, another process woken), so its time
/// varies less, for its length, than a 10 ms container start's; and podman's
/// builds take one to five seconds each (five while another job keeps the
/// two cores busy), so ten rounds keep the benchmark within two minutes.
const RUNS: usize = 10;

/// The example built, in the workspace.
const CONTEXT: &str = "chapters/ch11-build/examples/greet";

/// The name every build gives its image.
const TAG: &str = "bench";

/// The variants' names; the targets are about the first two.
const MINIBOX_COLD: &str = "minibox build --no-cache";
const MINIBOX_CACHED: &str = "minibox build (all cached)";
const PODMAN_COLD: &str = "podman build --no-cache";
const PODMAN_CACHED: &str = "podman build (all cached)";

/// The targets: minibox's cold build at most this many times podman's, and
/// its fully cached build under this.
const COLD_TARGET: f64 = 0.5;
const CACHED_UNDER: Duration = Duration::from_millis(100);

/// Runs the benchmark and prints the commands, the table and the targets.
pub fn build(root: &Path) -> Result<()> {
    ensure!(
        harness::privilege::is_root(),
        "cargo xtask bench build needs root (namespaces, mounts, cgroups): run it with sudo"
    );
    prereqs::ensure()?;
    // The product's `minibox`, which builds as chapter 11's does.
    let bin = build_release_bin(root, harness::chapters::PRODUCT, "minibox")?
        .context("chapter 11 does not exist yet")?;
    let context = root.join(CONTEXT);
    let load_at_start = load_average()?;
    println!("load average at the start: {load_at_start}");

    // Dropped in the reverse order: podman's storages are reset, the network
    // namespace closed, the cgroups removed, hugetlb unmounted, and the
    // working directory (minibox's stores with it) removed last.
    let work = WorkDir::create(root.join("target/bench/build"))?;
    let _hugetlb = Hugetlb::prepare()?;
    let name = format!("minibox-bench-build-{}", std::process::id());
    let parents = Parents::new(&name)?;
    let _cgroups = BenchCgroups::new(&parents)?;
    let netns = netns::create()?;
    Netlink::open_in(netns.as_fd())?.set_up("lo")?;
    let run_dir = TmpfsDir::create(&name)?;
    let minibox = |kind: &str| -> Result<Minibox> {
        let run = run_dir.0.join(kind);
        fs::create_dir(&run).with_context(|| format!("creating {}", run.display()))?;
        Ok(Minibox {
            store: work.path.join(format!("minibox-{kind}")),
            run,
            parent: format!("{}/{kind}", parents.relative),
            netns: netns.as_fd(),
        })
    };
    let (cold, cached) = (minibox("cold")?, minibox("cached")?);
    let podman = if installed(&["podman"]) {
        vec![
            PodmanStorage::create(&work.path.join("podman-cold"))?,
            PodmanStorage::create(&work.path.join("podman-cached"))?,
        ]
    } else {
        Vec::new()
    };
    let podman_pulled = pull_busybox(&bin, &[&cold, &cached], &podman)?;

    let builds = Builds {
        bin: &bin,
        context: &context,
    };
    let podman_builds = PodmanBuilds {
        builds: &builds,
        netns: netns.as_fd(),
    };
    let mut peers = vec![
        builds.minibox(MINIBOX_COLD, &cold, false)?,
        builds.minibox(MINIBOX_CACHED, &cached, true)?,
    ];
    if let [podman_cold, podman_cached] = &podman[..]
        && podman_pulled
    {
        let parent = |kind: &str| format!("{}/podman-{kind}", parents.absolute);
        peers.extend(podman_builds.peers(
            (&podman_cold.0, parent("cold")),
            (&podman_cached.0, parent("cached")),
        )?);
    }
    measure::rounds(&mut peers, &work, RUNS)?;
    let load_at_end = load_average()?;
    report(&peers);
    println!("load average at the end: {load_at_end}");
    Ok(())
}

/// Pulls busybox, untimed, into each of minibox's stores and podman's, from
/// a registry of our own that is stopped when this returns. Whether podman
/// has it: podman that cannot pull here is left out, saying why.
fn pull_busybox(bin: &Path, minibox: &[&Minibox], podman: &[PodmanStorage]) -> Result<bool> {
    let busybox = Busybox::serve()?;
    for minibox in minibox {
        busybox.pull_minibox(bin, &minibox.store)?;
    }
    for podman in podman {
        podman.0.mirror_docker_hub(&busybox.host())?;
        if !busybox.pull_podman(&podman.0, "docker.io/library/busybox:latest") {
            return Ok(false);
        }
    }
    Ok(!podman.is_empty())
}

/// What every build builds.
struct Builds<'a> {
    bin: &'a Path,
    context: &'a Path,
}

impl Builds<'_> {
    /// `minibox build [--no-cache] --network none -t bench CONTEXT` in
    /// `minibox`'s store: its peer, after one untimed build when `cached`.
    fn minibox<'a>(
        &'a self,
        name: &'static str,
        minibox: &'a Minibox<'a>,
        cached: bool,
    ) -> Result<Peer<'a>> {
        let command = move || {
            let context = self.context.to_str().context("a context path in UTF-8")?;
            let cache: &[&str] = if cached { &[] } else { &["--no-cache"] };
            let args = [
                &["build"],
                cache,
                &["--network", "none", "-t", TAG, context],
            ]
            .concat();
            minibox.command(self.bin, &args)
        };
        announce(name, &command()?);
        if cached {
            shell::run(command()?.stdout(std::io::stderr()))?;
        }
        let run = move |dir: &Path| checked(&mut command()?, dir, "minibox", cached);
        Ok(Peer::new(name, true, Box::new(run)))
    }
}

/// podman's builds, in the benchmark's network namespace.
struct PodmanBuilds<'a> {
    builds: &'a Builds<'a>,
    netns: BorrowedFd<'a>,
}

impl<'a> PodmanBuilds<'a> {
    /// The cold and the cached build's peers, each with its podman and the
    /// cgroup parent (absolute) of its `RUN`s; none when podman cannot build
    /// here (saying why).
    fn peers(
        &'a self,
        cold: (&'a Podman, String),
        cached: (&'a Podman, String),
    ) -> Result<Vec<Peer<'a>>> {
        let mut peers = Vec::new();
        for (name, (podman, parent), cached) in
            [(PODMAN_COLD, cold, false), (PODMAN_CACHED, cached, true)]
        {
            let command = move || self.command(podman, &parent, cached);
            announce(name, &command()?);
            if cached && let Err(err) = shell::run(command()?.stdout(std::io::stderr())) {
                println!("podman: cannot build here, left out: {err:#}");
                return Ok(Vec::new());
            }
            let run = move |dir: &Path| checked(&mut command()?, dir, "podman", cached);
            peers.push(Peer::new(name, false, Box::new(run)));
        }
        Ok(peers)
    }

    /// `podman build --isolation oci [--no-cache] --network none
    /// --pull=never --cgroup-parent PARENT -t bench CONTEXT`.
    fn command(&self, podman: &Podman, parent: &str, cached: bool) -> Result<Command> {
        let mut command = podman.command(Some(self.netns))?;
        command.args(["build", "--isolation", "oci"]);
        if !cached {
            command.arg("--no-cache");
        }
        command
            .args([
                "--network",
                "none",
                "--pull=never",
                "--cgroup-parent",
                parent,
            ])
            .args(["-t", TAG])
            .arg(self.builds.context);
        Ok(command)
    }
}

/// Prints a variant's command, with its environment, before the rounds
/// begin.
fn announce(name: &str, command: &Command) {
    println!("  {name}: {}", shell::show_with_env(command));
}

/// One measured build, checked afterwards (untimed) to have been as cold or
/// as cached as it says.
fn checked(command: &mut Command, dir: &Path, tool: &str, cached: bool) -> Result<measure::Sample> {
    let sample = run_measured(command, dir, tool)?;
    let stdout = dir.join(format!("{tool}.stdout"));
    let output =
        fs::read_to_string(&stdout).with_context(|| format!("reading {}", stdout.display()))?;
    check_steps(&output, cached)?;
    Ok(sample)
}

/// Fails unless a build's output shows every step taken from the cache
/// (`cached`) or none. Both tools print a line per step (minibox `Step 3/15 :
/// COPY greet.sh ./`, Docker's classic builder's; podman `[1/2] STEP 3/4:
/// COPY greet.sh ./`) and `Using cache` below a step the cache supplied. A
/// `FROM` names an image and is never cached.
fn check_steps(output: &str, cached: bool) -> Result<()> {
    let step = Regex::new(r"^(?:\[\d+/\d+\] )?(?:Step|STEP) \d+/\d+ ?: (\S+)").expect("a regex");
    // Each step's instruction, and whether the lines below it, up to the
    // next step, say it came from the cache.
    let mut steps: Vec<(String, bool)> = Vec::new();
    for line in output.lines() {
        if let Some(found) = step.captures(line) {
            steps.push((found[1].to_uppercase(), false));
        } else if let Some(last) = steps.last_mut() {
            last.1 |= line.contains("Using cache");
        }
    }
    ensure!(
        !steps.is_empty(),
        "no `Step N/M` line in the build's output:\n{output}"
    );
    let wrong: Vec<usize> = (1..=steps.len())
        .filter(|&n| {
            let (instruction, from_cache) = &steps[n - 1];
            instruction != "FROM" && *from_cache != cached
        })
        .collect();
    if !wrong.is_empty() {
        let (were, expected) = if cached {
            ("were not", "fully cached")
        } else {
            ("were", "cold")
        };
        bail!(
            "steps {wrong:?} {were} taken from the cache: the build was not {expected}:\n{output}"
        );
    }
    Ok(())
}

/// The table (median, spread, and the ratio to podman's build of the same
/// kind) and the targets.
fn report(peers: &[Peer]) {
    let median_of = |name: &str| peers.iter().find(|p| p.name == name).map(Peer::median);
    let (podman_cold, podman_cached) = (median_of(PODMAN_COLD), median_of(PODMAN_CACHED));
    println!();
    println!(
        "build {CONTEXT}, busybox in the store: median and spread of {RUNS} runs after a \
         warm-up round, the variants interleaved; × podman is against podman's build of the \
         same kind (cold against cold, cached against cached)"
    );
    println!(
        "{:<28} {:>9} {:>19} {:>19} {:>9}",
        "", "median", "p10 – p90", "min – max", "× podman"
    );
    for peer in peers {
        let spread = |low, high| {
            let (low, high) = (peer.percentile(low), peer.percentile(high));
            format!("{} – {}", ms(low), ms(high))
        };
        let podman = if peer.name.contains("cached") {
            podman_cached
        } else {
            podman_cold
        };
        println!(
            "{:<28} {:>9} {:>19} {:>19} {:>9}",
            peer.name,
            ms(peer.median()),
            spread(10, 90),
            spread(0, 100),
            ratio_cell(ratio(peer.median(), podman))
        );
    }
    println!();
    let cold = median_of(MINIBOX_COLD).and_then(|median| ratio(median, podman_cold));
    println!(
        "minibox cold ≤ {COLD_TARGET}× podman cold: {}",
        at_most(cold, COLD_TARGET)
    );
    let cached = median_of(MINIBOX_CACHED);
    println!(
        "minibox cached < {}: {}",
        ms(CACHED_UNDER),
        verdict(
            cached.map(|c| c < CACHED_UNDER),
            &cached.map(ms).unwrap_or_default()
        )
    );
}

#[cfg(test)]
mod tests {
    use super::check_steps;

    const MINIBOX_COLD: &str = "Step 1/4 : FROM ${BASE} AS build\n ---> 2cfa2640e11d\n\
        Step 2/4 : WORKDIR /src\n ---> de06a3840d5a\n\
        Step 3/4 : RUN sed x > /greet\n ---> Running in 851420e793f9\n ---> b37ddd05f06f\n\
        Step 4/4 : CMD [\"world\"]\n ---> 98f500121866\nSuccessfully built 98f500121866\n";
    const MINIBOX_CACHED: &str = "Step 1/4 : FROM ${BASE} AS build\n ---> 2cfa2640e11d\n\
        Step 2/4 : WORKDIR /src\n ---> Using cache\n ---> de06a3840d5a\n\
        Step 3/4 : RUN sed x > /greet\n ---> Using cache\n ---> b37ddd05f06f\n\
        Step 4/4 : CMD [\"world\"]\n ---> Using cache\n ---> 98f500121866\n";
    const PODMAN_CACHED: &str = "[1/2] STEP 1/2: FROM busybox AS build\n\
        [1/2] STEP 2/2: WORKDIR /src\n--> Using cache b922e2a477de\n--> b922e2a477d\n\
        [2/2] STEP 1/2: FROM busybox\n\
        [2/2] STEP 2/2: CMD [\"world\"]\n--> Using cache f71476c4cbcc\n[2/2] COMMIT bench\n";

    #[test]
    fn a_cold_build_runs_every_step_and_a_cached_one_none() {
        check_steps(MINIBOX_COLD, false).unwrap();
        check_steps(MINIBOX_CACHED, true).unwrap();
        check_steps(PODMAN_CACHED, true).unwrap();
        check_steps(&PODMAN_CACHED.replace("Using cache", "Running"), false).unwrap();
        let err = check_steps(MINIBOX_COLD, true).unwrap_err().to_string();
        assert!(err.contains("steps [2, 3, 4] were not taken"), "{err}");
        // One step run again is enough to fail a "cached" build.
        let partly = MINIBOX_CACHED.replacen(" ---> Using cache\n ---> b37", " ---> b37", 1);
        let err = check_steps(&partly, true).unwrap_err().to_string();
        assert!(err.contains("steps [3]"), "{err}");
        assert!(check_steps(MINIBOX_CACHED, false).is_err());
        assert!(check_steps("Successfully built 98f500121866\n", false).is_err());
    }
}
