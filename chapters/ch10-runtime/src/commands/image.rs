//! `minibox tag` and `rmi`, by [`crate::images`].

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate;
use ch06_rootfs_snapshot::snapshot;
use ch07_image_pull::store::Store as ImageStore;

use crate::commands::for_each;
use crate::images;
use crate::state::Store;

/// `docker tag`: prints nothing, as Docker.
pub fn tag(source: &str, target: &str) -> Result<Exit> {
    images::tag(
        &ImageStore::existing(&snapshot::minibox_root()),
        source,
        target,
    )?;
    Ok(Exit::Code(0))
}

/// `docker rmi`: each image's lines, or its error, one by one.
pub fn rmi(store: &Store, names: &[String], force: bool) -> Result<Exit> {
    let images = ImageStore::existing(&snapshot::minibox_root());
    for_each(names, |name| {
        for line in images::rmi(&images, store, name, force)? {
            narrate::print(line)?;
        }
        Ok(())
    })
}
