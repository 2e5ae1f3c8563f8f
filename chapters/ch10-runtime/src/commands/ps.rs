//! `minibox ps`: every container on disk, checked against the living
//! processes, chosen and printed by [`crate::ps`].

use std::io;
use std::time::SystemTime;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch06_rootfs_snapshot::snapshot;
use ch07_image_pull::reference::Reference;
use ch07_image_pull::store::Store as ImageStore;

use crate::cli::PsArgs;
use crate::container;
use crate::ps::{self, Ps};
use crate::state::Store;

// ANCHOR: ps
/// Lists the containers as `docker ps` does.
pub fn ps(store: &Store, args: PsArgs) -> Result<Exit> {
    let options = ps::Options {
        all: args.all,
        quiet: args.quiet,
        last: args.last,
        latest: args.latest,
        no_trunc: args.no_trunc,
        size: args.size,
        filters: args.filter,
        format: args.format,
    };
    let ps = Ps::new(&options)?;
    if let Some(warning) = ps.warning() {
        ch01_fork_exec::narrate::notice(warning);
    }
    let mut rows = container::rows(store)?;
    if ps.wants_size() {
        for row in &mut rows {
            row.size = Some(size(store, &row.id));
        }
    }
    let images = ImageStore::existing(&snapshot::minibox_root());
    let chosen = ps.select(rows, |name| image_ids(&images, name));
    match ps.write(&chosen, SystemTime::now(), io::stdout().lock()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        result => result?,
    }
    Ok(Exit::Code(0))
}
// ANCHOR_END: ps

/// What a container wrote (its writable layer), for `-s`.
// SIMPLIFICATION: Docker also shows the "virtual" size, the image's layers
// included; minibox shows the writable layer only.
fn size(store: &Store, id: &str) -> ps::Size {
    ps::Size {
        rw: container::writable_size(store, id),
        root_fs: 0,
    }
}

/// The image IDs an `ancestor=` value means: the image it names, or every
/// image whose ID starts with it.
fn image_ids(images: &ImageStore, name: &str) -> Vec<String> {
    let Ok(all) = images.images() else {
        return Vec::new();
    };
    if let Ok(reference) = Reference::parse(name)
        && let Some(record) = all.get(&reference.canonical())
    {
        return vec![record.config.clone()];
    }
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    let mut ids: Vec<String> = all
        .values()
        .filter(|record| {
            !hex.is_empty() && record.config.trim_start_matches("sha256:").starts_with(hex)
        })
        .map(|record| record.config.clone())
        .collect();
    ids.dedup();
    ids
}
