//! `cargo xtask bench`: measurements that print ratios against what they are
//! compared with in the same run, never a pass/fail on absolute times.
//!
//! - `snapshot` (chapter 6): create, start and remove a container from a ~1 MB
//!   and a ~500 MB image, with each snapshotter. Overlay's cost should not depend
//!   on the image's size (target: 500 MB / 1 MB ≤ 1.2); the copy snapshotter's
//!   grows with it.
//! - `pull` (chapter 7): pull a generated ~100 MiB, five-layer image from a local
//!   registry into an empty store, beside `skopeo copy` + `umoci unpack`,
//!   `podman pull`, and the floor (gunzip + sha256 of the same layers in
//!   process). Targets: minibox ≤ 0.5× podman, ≤ 1.5× the floor, and a peak RSS
//!   under 64 MiB. See [`pull`].
//! - `start` (chapter 9): start a busybox container that runs `true`, with
//!   `--network none` and `--network bridge`, beside chapter 8 (no network
//!   namespace at all), `crun run`, `runc run` and podman, interleaved, 30
//!   runs each, and chapter 10's `run` under its monitor. Targets: none ≤
//!   1.0× crun, bridge ≤ 1.5× crun. Then chapter 10's operations: `run -d` +
//!   `rm -f` beside crun's, `exec` beside `runc exec`, and `ps -a` with 100
//!   containers. With `--record`, the medians go to
//!   `book/src/data/bench-start.json`. See [`start`].
//! - `build` (chapter 11): build chapter 11's example Dockerfile (two
//!   stages, `RUN`, `COPY`, `COPY --from`) cold (`--no-cache`) and fully
//!   cached, beside `podman build` doing the same, interleaved, 10 runs
//!   each. Targets: cold ≤ 0.5× podman's cold build, and a fully cached
//!   rebuild under 100 ms. See [`build`].
//! - `oci` (chapter 14): minibox-runc beside crun and runc on an OCI bundle
//!   (`run`, and `create` + `start` + `delete`), 30 runs each, and through
//!   the engines (`podman run --rm`, `docker run --rm`, `ctr run --rm` of
//!   busybox running `true`), with each engine's default runtime and with
//!   minibox-runc, 20 runs each. Targets: minibox-runc ≤ 1.0× crun on the
//!   bundle, and through each engine ≤ 1.0× its default runtime. See
//!   [`oci`].
//!
//! The pieces the benchmarks share: [`measure`] (rounds of runs, timed and
//! checked, in a working directory that leaves nothing behind), [`report`]
//! (milliseconds, ratios, verdicts, the load average), [`podman`] (podman with
//! everything of its own), and, for the benchmarks that run containers,
//! [`minibox`] (its store, runtime state and cgroup parent, in the
//! benchmark's network namespace), [`busybox`] (the image, pulled untimed
//! into each tool's store) and [`cgroups`] (cgroup parents below our own cgroup, the hugetlb hierarchy
//! crun needs here).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{fixtures, shell};

mod build;
mod busybox;
mod cgroups;
mod measure;
mod minibox;
mod oci;
mod podman;
mod pull;
mod report;
mod start;

/// Runs the named benchmark; `record` writes its medians into the book's data
/// (only `start` records itself; the others' are copied there by hand).
pub fn bench(root: &Path, which: &str, record: bool) -> Result<()> {
    if record && which != "start" {
        bail!(
            "--record is only for `start` (the medians of {which:?} are copied into book/src/data by hand)"
        );
    }
    match which {
        "snapshot" => snapshot(root),
        "pull" => pull::pull(root),
        "start" => start::start(root, record),
        "build" => build::build(root),
        "oci" => oci::oci(root),
        other => {
            bail!("no benchmark called {other:?} (there are: snapshot, pull, start, build, oci)")
        }
    }
}

fn snapshot(root: &Path) -> Result<()> {
    fixtures::prepare(root)?;
    shell::cargo(
        root,
        &[
            "build",
            "--quiet",
            "-p",
            "ch06-rootfs-snapshot",
            "--bin",
            "ch06-rootfs-snapshot",
        ],
    )?;
    let bin = harness::transcript::bin_dir().join("ch06-rootfs-snapshot");
    let dir = root.join("target/bench");
    let small = generated_layer(&dir.join("layer-1mb"), 16, 64 << 10)?;
    let large = generated_layer(&dir.join("layer-500mb"), 500, 1 << 20)?;
    let store = dir.join("store");
    let busybox = harness::fixtures::busybox_rootfs();

    let measure = |snapshotter: &str, layer: &Path, runs: usize| -> Result<Duration> {
        let mut times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let status = Command::new(&bin)
                .args(["run", "--quiet", "--snapshotter", snapshotter, "--layer"])
                .arg(&busybox)
                .arg("--layer")
                .arg(layer)
                .args(["--", "true"])
                .env("MINIBOX_ROOT", &store)
                .env("MINIBOX_CGROUP_PARENT", "minibox-bench")
                .stdin(Stdio::null())
                .status()
                .context("running minibox")?;
            times.push(start.elapsed());
            if !status.success() {
                bail!("minibox run --snapshotter {snapshotter} failed: {status}");
            }
        }
        times.sort();
        Ok(times[times.len() / 2])
    };

    println!(
        "create + start + remove a container running `true` (median; busybox + a generated layer)"
    );
    println!(
        "{:<12} {:>12} {:>14} {:>16}",
        "snapshotter", "~1 MB image", "~500 MB image", "500 MB / 1 MB"
    );
    for (snapshotter, runs_small, runs_large) in [("overlay", 15, 15), ("copy", 9, 3)] {
        let a = measure(snapshotter, &small, runs_small)?;
        let b = measure(snapshotter, &large, runs_large)?;
        let ratio = b.as_secs_f64() / a.as_secs_f64();
        let verdict = match snapshotter {
            "overlay" if ratio <= 1.2 => "  (target ≤ 1.2: met)",
            "overlay" => "  (target ≤ 1.2: MISSED)",
            _ => "",
        };
        println!(
            "{snapshotter:<12} {:>9.1} ms {:>11.1} ms {ratio:>16.2}{verdict}",
            a.as_secs_f64() * 1000.0,
            b.as_secs_f64() * 1000.0
        );
    }
    let _ = fs::remove_dir_all(&store);
    Ok(())
}

/// A layer of `files` files of `size` bytes each (made once, then reused).
fn generated_layer(dir: &Path, files: usize, size: usize) -> Result<PathBuf> {
    let stamp = dir.join(".complete");
    if stamp.exists() {
        return Ok(dir.to_path_buf());
    }
    let _ = fs::remove_dir_all(dir);
    eprintln!(
        "xtask: generating {} ({} files of {} KiB)",
        dir.display(),
        files,
        size >> 10
    );
    let content: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
    for i in 0..files {
        let sub = dir.join(format!("data/{:02}", i % 20));
        fs::create_dir_all(&sub)?;
        fs::write(sub.join(format!("file-{i:04}.bin")), &content)?;
    }
    fs::write(&stamp, "")?;
    Ok(dir.to_path_buf())
}

/// Builds chapter `package`'s binary in release mode (the peers are optimized
/// builds too); `None` while the chapter does not exist yet.
fn build_release(root: &Path, package: &str) -> Result<Option<PathBuf>> {
    build_release_bin(root, package, package)
}

/// [`build_release`] for a package whose binary has a name of its own
/// (chapter 10's is `minibox`).
fn build_release_bin(root: &Path, package: &str, bin: &str) -> Result<Option<PathBuf>> {
    if !root
        .join("chapters")
        .join(package)
        .join("Cargo.toml")
        .exists()
    {
        return Ok(None);
    }
    shell::cargo(
        root,
        &["build", "--release", "--quiet", "-p", package, "--bin", bin],
    )?;
    Ok(Some(target_dir().join("release").join(bin)))
}

/// The target directory this xtask was built in (and builds into): the parent
/// of `debug/` or `release/`.
fn target_dir() -> PathBuf {
    let bin = harness::transcript::bin_dir();
    bin.parent().map(Path::to_path_buf).unwrap_or(bin)
}

/// Whether every program is on `PATH`; says which is not, if one is not.
fn installed(programs: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all = true;
    for program in programs {
        if !std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
            println!("{program}: not installed");
            all = false;
        }
    }
    all
}
