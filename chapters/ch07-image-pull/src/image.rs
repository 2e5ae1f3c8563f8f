//! Finding the image a container is made from: in the store, or pulled from its
//! registry first, as `docker run` does (`Unable to find image 'busybox:latest'
//! locally`). Chapter 8 finds its images the same way.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ch01_fork_exec::narrate::Narrator;

use crate::platform::{self, WantedPlatform};
use crate::progress::Output;
use crate::pull;
use crate::reference::Reference;
use crate::registry::Client;
use crate::store::{ImageRecord, Store};

/// When `run` pulls the image, as Docker's `--pull` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull only when the store does not have the image.
    Missing,
    /// Pull every time (layers the store has are not downloaded again).
    Always,
    /// Never pull: fail when the store does not have the image.
    Never,
}

// ANCHOR: find_or_pull
/// The image `reference`, from the store when it has it (and `policy`
/// allows), else pulled, with Docker's line first: `Unable to find image
/// 'busybox:latest' locally`.
pub fn find_or_pull(
    store: &Store,
    reference: &Reference,
    policy: PullPolicy,
    wanted: &WantedPlatform,
    output: Output,
) -> Result<ImageRecord> {
    let local = store
        .image(&reference.canonical())?
        .filter(|record| complete(store, record))
        .filter(|record| !wanted.named || platform_matches(&wanted.platform, record));
    let pull = |store: &Store| -> Result<ImageRecord> {
        let store = open_for_pull(&store.root)?;
        let client = Client::new(None);
        let (record, _) = pull::pull(&store, &client, reference, wanted, output)?;
        Ok(record)
    };
    match (policy, local) {
        (PullPolicy::Never, None) => bail!("No such image: {reference}"),
        (PullPolicy::Always, _) => pull(store),
        (_, Some(record)) => Ok(record),
        (PullPolicy::Missing, None) => {
            let _ = writeln!(
                std::io::stderr(),
                "Unable to find image '{reference}' locally"
            );
            pull(store)
        }
    }
}
// ANCHOR_END: find_or_pull

/// An image found in the store (or pulled into it), ready to run.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its record in the store's index: config digest (the image ID), layers.
    pub record: ImageRecord,
    /// The directories of its unpacked layers, bottom first: chapter 6's layers.
    pub layers: Vec<PathBuf>,
}

/// [`find_or_pull`], then the image's layer directories, and a narration line
/// that says what was found.
pub fn find_layers(
    store: &Store,
    reference: &Reference,
    policy: PullPolicy,
    wanted: &WantedPlatform,
    narrator: &Narrator,
    output: Output,
) -> Result<Found> {
    let record = find_or_pull(store, reference, policy, wanted, output)?;
    let layers = layer_dirs(store, &record)?;
    narrator.say(format_args!(
        "image {reference} (ID {}) is {} layer(s) in {}",
        crate::digest::short(&record.config),
        layers.len(),
        store.root.display()
    ));
    Ok(Found { record, layers })
}

/// The directories of the image's unpacked layers in the store, bottom first:
/// chapter 6's layers.
pub fn layer_dirs(store: &Store, record: &ImageRecord) -> Result<Vec<PathBuf>> {
    record
        .diff_ids
        .iter()
        .map(|diff_id| store.layer_dir(diff_id))
        .collect()
}

/// Whether every layer of the image is unpacked in the store.
fn complete(store: &Store, record: &ImageRecord) -> bool {
    record
        .diff_ids
        .iter()
        .all(|d| store.has_layer(d).unwrap_or(false))
}

fn platform_matches(wanted: &crate::oci::Platform, record: &ImageRecord) -> bool {
    platform::parse(&record.platform).is_ok_and(|stored| platform::matches(wanted, &stored))
}

/// The store, for a pull: which needs root, because unpacking a layer sets
/// owners, creates device nodes and writes `trusted.overlay.*` attributes.
pub fn open_for_pull(root: &Path) -> Result<Store> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "pulling an image needs root: unpacking layers sets file owners, creates whiteouts (device nodes) and trusted.overlay attributes (run minibox as root, or through sudo)"
        );
    }
    Store::open(root)
}
