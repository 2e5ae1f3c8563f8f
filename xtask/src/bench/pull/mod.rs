//! `cargo xtask bench pull` (chapter 7): how fast minibox pulls an image into an
//! empty store, against what other tools take for the same image in the same run.
//!
//! The image is [`image::generate`]'s: about 100 MiB in five gzip
//! layers of realistic content, generated once and cached under
//! `target/bench/`. It is pushed to a registry of our own on 127.0.0.1, and then,
//! in rounds (one warm-up round, then [`RUNS`] measured ones, each tool once per
//! round so that a change in background load hits them all alike), into a fresh,
//! empty store each time:
//!
//! - **minibox**: `ch07-image-pull pull REFERENCE` (a release build, since the
//!   peers are optimized builds too), with its peak RSS from wait4(2).
//! - **minibox, store on tmpfs**: the same pull with `MINIBOX_ROOT` below
//!   /dev/shm: what the client itself costs apart from the disk, which is the
//!   fair comparison with the floor (it writes nothing either). On these VMs the
//!   disk's writeback, not the client, is most of a pull's time.
//! - **skopeo copy + umoci unpack**: download the blobs into an OCI layout, then
//!   unpack it into a runtime bundle; the two commands are timed together.
//! - **podman pull**, with storage, state and configuration of its own.
//! - **the floor**: what any client must do at least with the same bytes, in this
//!   process with the crates chapter 7 uses: sha256 of each compressed layer,
//!   gunzip it, sha256 of the result, in one streaming pass over the layer files
//!   (in the page cache by then). It writes nothing, so it is the floor of the
//!   CPU work on one thread; a client that gunzips two layers at once on two
//!   cores could beat it, and every real pull also pays for creating the files.
//! - for reference: `gzip -dc | sha256sum` (the floor with the usual tools), and
//!   `tar -xzf` of each layer (what creating the files costs here, no digests).
//!
//! Each pull is checked afterwards (not timed): minibox's store, umoci's bundle
//! and tar's directory must hold the image's regular files and bytes, so a no-op
//! cannot look fast. A failed pull fails the benchmark; the targets (minibox ≤
//! 0.5× podman, ≤ 1.5× the floor, peak RSS < 64 MiB) are only reported.
//!
//! Page caches are not dropped between runs (that needs a privilege these
//! machines do not give); every tool reads a registry whose blobs are warm after
//! the warm-up round, which is consistent, if kinder than a cold network. What a
//! run wrote is removed and synced to disk (untimed) before the next run starts.
//!
//! ## Layout
//!
//! - [`image`]: the benchmark image, generated (deterministically) and cached.
//! - [`peers`]: each tool's pull, and the floor, each checked afterwards.
//! - [`contents`]: the image's files and bytes, to check each pull against.
//! - [`report`]: the table and the targets.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::{prereqs, shell};

mod contents;
mod image;
mod peers;
mod report;

use super::measure::{self, Peer, WorkDir};
use super::{build_release, installed, target_dir};

/// Measured rounds; the median is reported.
const RUNS: usize = 5;

/// The repository and tag the image is pushed as.
const REPOSITORY: &str = "bench/app";
const TAG: &str = "latest";

/// A layer blob in the image cache, and the digests it must match.
struct LayerFile {
    path: PathBuf,
    /// Of the compressed bytes.
    digest: String,
    /// Of the uncompressed tar.
    diff_id: String,
}

/// Runs the benchmark and prints the table.
pub fn pull(root: &Path) -> Result<()> {
    // The floor is measured in this very process, and a debug build of flate2
    // and sha2 is many times slower than an optimized one: it would make every
    // tool look close to the floor. So the benchmark runs in an optimized xtask
    // (generating the image is faster there too).
    if cfg!(debug_assertions) {
        shell::cargo(root, &["build", "--release", "--quiet", "-p", "xtask"])?;
        let xtask = target_dir().join("release/xtask");
        return shell::run(Command::new(xtask).args(["bench", "pull"]));
    }
    prereqs::ensure()?;
    let bench = root.join("target/bench");
    let minibox = build_release(root, "ch07-image-pull")?;

    let cache = bench.join(image::CACHE);
    let image = image::cached(&cache)?;
    let registry = harness::registry::Registry::start();
    registry.push(REPOSITORY, TAG, &image);
    let reference = format!("{}/{REPOSITORY}:{TAG}", registry.host());
    // From here on the layers are read from their files: this process must stay
    // small for the children's peak RSS to be their own (see `run_measured`).
    let layers: Vec<LayerFile> = image
        .layers
        .iter()
        .map(|l| LayerFile {
            path: cache.join(image::blob_file(&l.blob)),
            digest: l.blob.digest.clone(),
            diff_id: l.diff_id.clone(),
        })
        .collect();
    drop(image);
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let contents = contents::contents(&layers)?;
    let compressed = layers
        .iter()
        .map(|l| fs::metadata(&l.path).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()
        .context("reading the layers' sizes")?;
    let summary = format!(
        "{} gzip layers, {} compressed, {} in {} files",
        layers.len(),
        report::mib(compressed),
        report::mib(contents.bytes),
        contents.files
    );
    eprintln!("xtask: pushed {reference}: {summary}");

    let work = WorkDir::create(bench.join("pull-run"))?;
    let inherited = measure::run_measured(&mut Command::new("true"), &work.path, "true")?.rss;
    let mut peers = Vec::new();
    match &minibox {
        Some(bin) => {
            peers.push(Peer::new(
                "minibox",
                true,
                Box::new(|dir| peers::pull_minibox(bin, &reference, &contents, dir)),
            ));
            // The same pull with the store in memory: what the client itself
            // costs, apart from the disk (the floor writes nothing either).
            if Path::new(peers::TMPFS).is_dir() {
                peers.push(Peer::new(
                    peers::TMPFS_PEER,
                    false,
                    Box::new(|dir| peers::pull_minibox_tmpfs(bin, &reference, &contents, dir)),
                ));
            }
        }
        None => println!(
            "minibox: skipped, chapter 7 does not exist yet (no chapters/ch07-image-pull/Cargo.toml)"
        ),
    }
    if installed(&["skopeo", "umoci"]) {
        peers.push(Peer::new(
            "skopeo copy + umoci unpack",
            false,
            Box::new(|dir| peers::pull_skopeo_umoci(&reference, &contents, dir)),
        ));
    }
    if installed(&["podman"]) {
        peers.push(Peer::new(
            "podman pull",
            false,
            Box::new(|dir| peers::pull_podman(&reference, dir)),
        ));
    }
    peers.push(Peer::new(
        "floor: sha256 + gunzip + sha256",
        true,
        Box::new(|_| peers::floor(&layers)),
    ));
    if installed(&["bash", "gzip", "sha256sum"]) {
        peers.push(Peer::new(
            "gzip -dc | sha256sum",
            false,
            Box::new(|dir| peers::shell_floor(&layers, dir)),
        ));
    }
    if installed(&["tar", "gzip"]) {
        peers.push(Peer::new(
            "tar -xzf (no digests)",
            false,
            Box::new(|dir| peers::tar_extract(&layers, &contents, dir)),
        ));
    }

    measure::rounds(&mut peers, &work, RUNS)?;
    drop(registry);
    drop(work);

    report::report(&reference, &summary, &peers, inherited);
    Ok(())
}
