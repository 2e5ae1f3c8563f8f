//! The peers: each tool's pull into a fresh directory, checked afterwards
//! (untimed) to hold the image's files, and the floor, measured in this
//! process with chapter 7's own hashing reader and zlib backend.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use ch07_image_pull::digest::HashingReader;

use super::contents::Contents;
use super::{LayerFile, TAG};
use crate::bench::measure::{Sample, run_measured};
use crate::bench::podman::Podman;

/// `ch07-image-pull pull REFERENCE` into an empty store, then a check that the
/// store holds the image's files.
pub(super) fn pull_minibox(
    bin: &Path,
    reference: &str,
    contents: &Contents,
    dir: &Path,
) -> Result<Sample> {
    let store = dir.join("store");
    let sample = run_measured(
        Command::new(bin)
            .args(["pull", reference])
            .env("MINIBOX_ROOT", &store),
        dir,
        "minibox",
    )?;
    let found = Contents::on_disk(&store.join("layers"))?;
    contents.check(&found, "minibox's store (MINIBOX_ROOT/layers)")?;
    Ok(sample)
}

/// Where the tmpfs variant keeps its store.
pub(super) const TMPFS: &str = "/dev/shm";
/// Its name in the table.
pub(super) const TMPFS_PEER: &str = "minibox, store on tmpfs";

/// [`pull_minibox`] with `MINIBOX_ROOT` on a tmpfs of our own name below
/// /dev/shm, removed after the check (untimed).
pub(super) fn pull_minibox_tmpfs(
    bin: &Path,
    reference: &str,
    contents: &Contents,
    dir: &Path,
) -> Result<Sample> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let store = Path::new(TMPFS).join(format!("minibox-bench-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&store);
    let sample = run_measured(
        Command::new(bin)
            .args(["pull", reference])
            .env("MINIBOX_ROOT", &store),
        dir,
        TMPFS_PEER,
    );
    let found = sample
        .as_ref()
        .ok()
        .map(|_| Contents::on_disk(&store.join("layers")));
    let removed = fs::remove_dir_all(&store);
    let sample = sample?;
    contents.check(&found.expect("measured")?, "minibox's store on tmpfs")?;
    removed.with_context(|| format!("removing {}", store.display()))?;
    Ok(sample)
}

/// `skopeo copy` into an OCI layout, then `umoci unpack` into a bundle, then a
/// check that the bundle's root holds the image's files.
pub(super) fn pull_skopeo_umoci(
    reference: &str,
    contents: &Contents,
    dir: &Path,
) -> Result<Sample> {
    // Our own policy, so the run does not depend on the host's policy.json.
    let policy = dir.join("policy.json");
    fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .context("writing the signature policy")?;
    let layout = dir.join("oci");
    let bundle = dir.join("bundle");
    let copy = run_measured(
        Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{}:{TAG}", layout.display()))
            .env("TMPDIR", dir),
        dir,
        "skopeo",
    )?;
    let unpack = run_measured(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{TAG}", layout.display()))
            .arg(&bundle)
            .env("TMPDIR", dir),
        dir,
        "umoci",
    )?;
    let found = Contents::on_disk(&bundle.join("rootfs"))?;
    contents.check(&found, "umoci's bundle")?;
    Ok(Sample {
        time: copy.time + unpack.time,
        rss: copy.rss.max(unpack.rss),
    })
}

/// `podman pull` with storage, state and configuration of its own in `dir`.
/// Pulling needs no cgroups, so the hybrid layout does not matter, and no
/// container runs, so neither do the ulimits.
pub(super) fn pull_podman(reference: &str, dir: &Path) -> Result<Sample> {
    let podman = Podman::configure(dir)?;
    run_measured(&mut podman.pull(reference)?, dir, "podman")
}

/// The floor: for each layer, sha256 of the compressed bytes, gunzip, sha256 of
/// the tar, both checked against the image's digests, on one thread, in one
/// pass over the bytes as a streaming client does. The blobs are read from
/// their files, which are in the page cache by then, much as a client reads
/// them from a socket.
pub(super) fn floor(layers: &[LayerFile]) -> Result<Sample> {
    let start = Instant::now();
    let mut buffer = vec![0; 256 << 10];
    for layer in layers {
        let file =
            File::open(&layer.path).with_context(|| format!("opening {}", layer.path.display()))?;
        // Chapter 7's reader, as its pull uses it: the blob hashed as it is
        // read, then the tar hashed as it is inflated.
        let blob = std::io::BufReader::with_capacity(256 << 10, HashingReader::new(file));
        let mut tar = HashingReader::new(flate2::bufread::GzDecoder::new(blob));
        while tar.read(&mut buffer).context("gunzip")? > 0 {}
        let diff_id = tar.digest();
        // Whatever follows the gzip stream is part of the blob, and its digest.
        let mut blob = tar.into_inner().into_inner();
        std::io::copy(&mut blob, &mut std::io::sink()).context("reading the layer")?;
        let digest = blob.into_inner().digest();
        ensure!(
            digest == layer.digest,
            "{}: digest mismatch",
            layer.path.display()
        );
        ensure!(
            diff_id == layer.diff_id,
            "{}: diff_id mismatch",
            layer.path.display()
        );
    }
    Ok(Sample {
        time: start.elapsed(),
        rss: None,
    })
}

/// The same work with the usual command-line tools, for reference.
pub(super) fn shell_floor(layers: &[LayerFile], dir: &Path) -> Result<Sample> {
    run_measured(
        Command::new("bash")
            .args([
                "-o",
                "pipefail",
                "-ec",
                r#"for f in "$@"; do sha256sum "$f"; gzip -dc "$f" | sha256sum; done >/dev/null"#,
                "floor",
            ])
            .args(layers.iter().map(|l| &l.path)),
        dir,
        "shell",
    )
}

/// Extracting the layers with tar(1), for reference: what creating the image's
/// files costs on this machine, which the floor leaves out (and no digests).
pub(super) fn tar_extract(layers: &[LayerFile], contents: &Contents, dir: &Path) -> Result<Sample> {
    let rootfs = dir.join("rootfs");
    fs::create_dir(&rootfs).context("creating the rootfs")?;
    let sample = run_measured(
        Command::new("bash")
            .args([
                "-ec",
                r#"cd "$1"; shift; for f in "$@"; do tar -xzf "$f"; done"#,
                "extract",
            ])
            .arg(&rootfs)
            .args(layers.iter().map(|l| &l.path)),
        dir,
        "tar",
    )?;
    contents.check(&Contents::on_disk(&rootfs)?, "tar's rootfs")?;
    Ok(sample)
}
