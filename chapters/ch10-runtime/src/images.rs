//! Images as a runtime keeps them: names given (`tag`) and taken away
//! (`rmi`), and what taking the last name away frees.
//!
//! Chapter 7's store maps names to images (`images.json`) and keeps each
//! layer once, unpacked, however many images share it. A name is cheap: `tag`
//! adds one for an image the store has. Removing one is not always removing
//! the image: the image goes only with its last name, and its layers only
//! when no other image has them and no container runs on them (a container's
//! snapshot names its layers as overlay lowerdirs: deleting one under a
//! running container would pull the floor from under it). So `rmi` refuses
//! to take the last name of an image a container was made from, as Docker
//! does, unless `-f`, which then takes the name away and leaves the image's
//! files to the containers.

use std::collections::BTreeSet;
use std::fs;

use anyhow::{Result, bail};
use ch07_image_pull::digest;
use ch07_image_pull::oci::Manifest;
use ch07_image_pull::reference::Reference;
use ch07_image_pull::store::{ImageRecord, Store as ImageStore};

use crate::container::Spec;
use crate::state::Store;

/// An image found by what the user typed: its names in the index (one for
/// a name, every name of the image for an ID) and its record.
#[derive(Debug, Clone)]
pub struct Found {
    /// The index's keys (canonical references) that name it.
    pub names: Vec<String>,
    /// What they name.
    pub record: ImageRecord,
}

// ANCHOR: find
/// The image `wanted` names: a reference (`busybox`, `busybox:1.36`), or an
/// image ID or a prefix of one (`sha256:830f…`, `830f`), with Docker's
/// message when there is none.
pub fn find(images: &ImageStore, wanted: &str) -> Result<Found> {
    let index = images.images()?;
    if let Ok(reference) = Reference::parse(wanted)
        && let Some(record) = index.get(&reference.canonical())
    {
        return Ok(Found {
            names: vec![reference.canonical()],
            record: record.clone(),
        });
    }
    let hex = wanted.strip_prefix("sha256:").unwrap_or(wanted);
    let configs: BTreeSet<&String> = index
        .values()
        .map(|record| &record.config)
        .filter(|config| {
            !hex.is_empty() && digest::hex_part(config).is_ok_and(|h| h.starts_with(hex))
        })
        .collect();
    match configs.into_iter().collect::<Vec<_>>().as_slice() {
        [config] => Ok(Found {
            names: index
                .iter()
                .filter(|(_, record)| &&record.config == config)
                .map(|(name, _)| name.clone())
                .collect(),
            record: index
                .values()
                .find(|r| &&r.config == config)
                .cloned()
                .expect("found above"),
        }),
        [] => bail!("No such image: {wanted}"),
        _ => bail!("multiple images found with provided prefix: {wanted}"),
    }
}
// ANCHOR_END: find

/// `docker tag SOURCE TARGET`: one more name for the image `source` names.
pub fn tag(images: &ImageStore, source: &str, target: &str) -> Result<()> {
    let found = find(images, source)?;
    let target = Reference::parse(target)?;
    images.tag(&target.canonical(), found.record)
}

// ANCHOR: rmi
/// `docker rmi NAME`: takes the name away (every name, for an ID, which
/// needs `force` when it has several), then the image and the layers nothing
/// else uses. Returns Docker's lines: `Untagged: …`, `Deleted: …`.
pub fn rmi(
    images: &ImageStore,
    containers: &Store,
    wanted: &str,
    force: bool,
) -> Result<Vec<String>> {
    let found = find(images, wanted)?;
    let config = &found.record.config;
    let specs: Vec<(String, Spec)> = containers
        .list::<Spec>()?
        .into_iter()
        .map(|c| (c.record.id, c.record.config))
        .collect();
    let user = specs.iter().find(|(_, spec)| &spec.image_id == config);
    // As Docker: a name that is not the image's last can go even while a
    // container uses the image (the image stays, by its other names).
    let by_name = Reference::parse(wanted).is_ok_and(|r| found.names == [r.canonical()]);
    let names = images
        .images()?
        .values()
        .filter(|r| &r.config == config)
        .count();
    let last_name = !by_name || names == 1;
    if let Some((id, _)) = user.filter(|_| !force && last_name) {
        bail!(
            "conflict: unable to remove repository reference \"{wanted}\" (must force) - container {} is using its referenced image {}",
            &id[..12],
            digest::short(config)
        );
    }
    if found.names.len() > 1 && !force && Reference::parse(wanted).is_err() {
        bail!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            digest::short(config)
        );
    }
    let mut lines = Vec::new();
    for name in &found.names {
        if images.untag(name)?.is_some() {
            let shown = Reference::parse(name).map_or(name.clone(), |r| r.to_string());
            lines.push(format!("Untagged: {shown}"));
        }
    }
    let still_named = images.images()?.values().any(|r| &r.config == config);
    if !still_named && user.is_none() {
        lines.extend(delete(images, &found.record, &specs)?);
    }
    Ok(lines)
}
// ANCHOR_END: rmi

/// Deletes an image no name and no container refers to: its config and
/// manifests, and each layer that no other image and no container's
/// snapshot uses.
fn delete(
    images: &ImageStore,
    record: &ImageRecord,
    specs: &[(String, Spec)],
) -> Result<Vec<String>> {
    let index = images.images()?;
    let blobs_in_use: BTreeSet<String> = index.values().flat_map(|r| blobs_of(images, r)).collect();
    for blob in blobs_of(images, record) {
        if !blobs_in_use.contains(&blob) {
            images.remove_blob(&blob)?;
        }
    }
    let mut layers_in_use: BTreeSet<String> = index
        .values()
        .flat_map(|r| r.diff_ids.iter().cloned())
        .collect();
    for (id, _) in specs {
        layers_in_use.extend(snapshot_layers(containers_root(images), id));
    }
    let mut lines = vec![format!("Deleted: {}", record.config)];
    for diff_id in &record.diff_ids {
        if !layers_in_use.contains(digest::hex_part(diff_id)?) {
            images.remove_layer(diff_id)?;
            lines.push(format!("Deleted: {diff_id}"));
        }
    }
    Ok(lines)
}

// ANCHOR: prune
/// `docker image prune`: the store's garbage (layers and blobs that no
/// image names and no container uses: what a newer pull of a tag left
/// behind) and, with `all`, every image no container was made from.
/// Returns the IDs of the images removed and the bytes freed.
// SIMPLIFICATION: a pull writes its blobs and layers before it names the
// image; a prune running at that moment would take them as garbage.
// containerd holds a *lease* on what a pull is making; minibox leaves
// alone what is younger than ten minutes.
pub fn prune(images: &ImageStore, containers: &Store, all: bool) -> Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut freed = 0;
    if all {
        let used: BTreeSet<String> = containers
            .list::<Spec>()?
            .into_iter()
            .map(|c| c.record.config.image_id)
            .collect();
        let configs: BTreeSet<String> = images.images()?.into_values().map(|r| r.config).collect();
        for config in configs.difference(&used) {
            freed += image_size(images, config)?;
            for line in rmi(images, containers, config, true)? {
                if let Some(id) = line.strip_prefix("Deleted: ").filter(|id| id == config) {
                    removed.push(id.to_string());
                }
            }
        }
    }
    freed += collect_garbage(images, containers)?;
    Ok((removed, freed))
}

/// Removes the layers and blobs nothing refers to; returns the bytes freed.
fn collect_garbage(images: &ImageStore, containers: &Store) -> Result<u64> {
    let index = images.images()?;
    let mut layers: BTreeSet<String> = index
        .values()
        .flat_map(|r| {
            r.diff_ids
                .iter()
                .filter_map(|d| digest::hex_part(d).ok().map(str::to_string))
        })
        .collect();
    for container in containers.list::<Spec>()? {
        layers.extend(snapshot_layers(
            containers_root(images),
            &container.record.id,
        ));
    }
    let blobs: BTreeSet<String> = index
        .values()
        .flat_map(|r| blobs_of(images, r))
        .filter_map(|d| digest::hex_part(&d).ok().map(str::to_string))
        .collect();
    let mut freed = 0;
    for (hex, size) in old_entries(&images.root.join("layers/sha256")) {
        if !layers.contains(&hex) {
            images.remove_layer(&format!("sha256:{hex}"))?;
            freed += size;
        }
    }
    for (hex, size) in old_entries(&images.root.join("blobs/sha256")) {
        if !blobs.contains(&hex) {
            images.remove_blob(&format!("sha256:{hex}"))?;
            freed += size;
        }
    }
    Ok(freed)
}

/// The blobs an image is made of: what its name pointed at (an index or a
/// manifest), its manifest, its config, and its layers' compressed blobs
/// (kept since chapter 11, which pushes and saves them as they are).
fn blobs_of(images: &ImageStore, record: &ImageRecord) -> Vec<String> {
    let mut blobs = vec![
        record.digest.clone(),
        record.manifest.clone(),
        record.config.clone(),
    ];
    let manifest = images
        .read_blob(&record.manifest)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<Manifest>(&bytes).ok());
    if let Some(manifest) = manifest {
        blobs.extend(manifest.layers.into_iter().map(|layer| layer.digest));
    }
    blobs
}

/// The entries of `dir` named by 64 hex digits and older than ten minutes,
/// with their sizes (a layer's recorded size, a blob's length).
fn old_entries(dir: &std::path::Path) -> Vec<(String, u64)> {
    let young = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().ok()?;
            let old = meta.modified().is_ok_and(|t| t < young);
            let hex = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            let size = match meta.is_dir() {
                true => fs::read_to_string(entry.path().join("size"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?,
                false => meta.len(),
            };
            (old && hex).then_some((name, size))
        })
        .collect()
}
// ANCHOR_END: prune

/// An image's unpacked size: its layers' (`docker images` SIZE).
pub fn image_size(images: &ImageStore, config: &str) -> Result<u64> {
    Ok(images
        .images()?
        .values()
        .find(|r| r.config == config)
        .map_or(0, |r| r.diff_ids.iter().map(|d| images.layer_size(d)).sum()))
}

/// `MINIBOX_ROOT/containers`, beside the image store.
fn containers_root(images: &ImageStore) -> std::path::PathBuf {
    images.root.join("containers")
}

/// The layers container `id`'s snapshot names (chapter 6's `layers` file:
/// one `…/layers/sha256/HEX/fs` per line), as hex digests.
fn snapshot_layers(containers: std::path::PathBuf, id: &str) -> Vec<String> {
    let text = fs::read_to_string(containers.join(id).join("layers")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let path = std::path::Path::new(line);
            path.parent()?
                .file_name()
                .map(|hex| hex.to_string_lossy().into_owned())
        })
        .collect()
}
