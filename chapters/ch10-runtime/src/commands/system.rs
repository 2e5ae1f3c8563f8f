//! `minibox image prune`, `system df` and `system prune`: what the store
//! holds, what is in use, and what can go.

use std::io::Write;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate;
use ch06_rootfs_snapshot::snapshot;
use ch07_image_pull::images::human_size;
use ch07_image_pull::store::Store as ImageStore;
use tabwriter::TabWriter;

use crate::commands::rm;
use crate::container::{self, Spec};
use crate::images;
use crate::state::{Status, Store};
use crate::volumes::Volumes;

/// `docker image prune [-a]`.
pub fn image_prune(store: &Store, all: bool) -> Result<Exit> {
    let images = ImageStore::existing(&snapshot::minibox_root());
    let (removed, freed) = images::prune(&images, store, all)?;
    if !removed.is_empty() {
        narrate::print("Deleted Images:")?;
        for id in &removed {
            narrate::print(format_args!("deleted: {id}"))?;
        }
        narrate::print("")?;
    }
    narrate::print(format_args!("Total reclaimed space: {}", human_size(freed)))?;
    Ok(Exit::Code(0))
}

/// `docker system prune [-a] [--volumes]`: stopped containers, then unused
/// volumes (with `--volumes`), then images (dangling, or with `-a` unused).
pub fn system_prune(store: &Store, all: bool, with_volumes: bool) -> Result<Exit> {
    let (containers, mut freed) = rm::prune_containers(store)?;
    section("Deleted Containers:", &containers)?;
    if with_volumes {
        let users = |name: &str| container::volume_users(store, name);
        let pruned = Volumes::new(&snapshot::minibox_root()).prune(false, users)?;
        section("Deleted Volumes:", &pruned.removed)?;
        freed += pruned.reclaimed;
    }
    let images = ImageStore::existing(&snapshot::minibox_root());
    let (removed, image_bytes) = images::prune(&images, store, all)?;
    let deleted: Vec<String> = removed.iter().map(|id| format!("deleted: {id}")).collect();
    section("Deleted Images:", &deleted)?;
    narrate::print(format_args!(
        "Total reclaimed space: {}",
        human_size(freed + image_bytes)
    ))?;
    Ok(Exit::Code(0))
}

/// A heading and its lines, then a blank line; nothing when there are none.
fn section(heading: &str, lines: &[String]) -> Result<()> {
    if !lines.is_empty() {
        narrate::print(heading)?;
        for line in lines {
            narrate::print(line)?;
        }
        narrate::print("")?;
    }
    Ok(())
}

// ANCHOR: df
/// `docker system df`: images, containers and volumes, how many are in use,
/// their size, and what a prune would free.
pub fn df(store: &Store) -> Result<Exit> {
    let root = snapshot::minibox_root();
    let images = ImageStore::existing(&root);
    let containers = store.list::<Spec>()?;
    let used: std::collections::BTreeSet<&str> = containers
        .iter()
        .map(|c| c.record.config.image_id.as_str())
        .collect();
    let configs: std::collections::BTreeSet<String> =
        images.images()?.into_values().map(|r| r.config).collect();
    let size = |config: &String| images::image_size(&images, config).unwrap_or(0);
    let image_total: u64 = configs.iter().map(size).sum();
    let image_unused: u64 = configs
        .iter()
        .filter(|c| !used.contains(c.as_str()))
        .map(size)
        .sum();
    let running = |c: &&crate::state::Container<Spec>| c.state.status == Status::Running;
    let written = |c: &crate::state::Container<Spec>| container::writable_size(store, &c.record.id);
    let container_total: u64 = containers.iter().map(written).sum();
    let container_stopped: u64 = containers.iter().filter(|c| !running(c)).map(written).sum();
    let volumes = Volumes::new(&root).list()?;
    let volume_used = volumes
        .iter()
        .filter(|v| container::volume_users(store, &v.name).is_ok_and(|u| !u.is_empty()))
        .count();
    let rows = [
        (
            "Images",
            configs.len(),
            used.len().min(configs.len()),
            image_total,
            image_unused,
        ),
        (
            "Containers",
            containers.len(),
            containers.iter().filter(running).count(),
            container_total,
            container_stopped,
        ),
        ("Local Volumes", volumes.len(), volume_used, 0, 0),
    ];
    let mut table = TabWriter::new(std::io::stdout().lock())
        .minwidth(10 - 3)
        .padding(3);
    writeln!(table, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")?;
    for (kind, total, active, bytes, reclaimable) in rows {
        let percent = (reclaimable * 100).checked_div(bytes).unwrap_or(0);
        writeln!(
            table,
            "{kind}\t{total}\t{active}\t{}\t{} ({percent}%)",
            human_size(bytes),
            human_size(reclaimable)
        )?;
    }
    table.flush()?;
    Ok(Exit::Code(0))
}
// ANCHOR_END: df
