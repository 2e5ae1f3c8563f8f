//! Where the container's root filesystem is. It is checked in the parent, before
//! any namespace or mount exists, so that bad input fails with one line and
//! leaves nothing behind.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;

/// The busybox root filesystem that `cargo xtask fixtures` builds in this
/// workspace: the default when neither `--rootfs` nor `MINIBOX_ROOTFS` is given.
pub fn default_rootfs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fixtures/busybox-rootfs")
}

// ANCHOR: resolve
/// The root filesystem to use, as an absolute path without symlinks (the mount
/// calls want one): `given`, or the default busybox root.
pub fn resolve(given: Option<PathBuf>) -> Result<PathBuf> {
    let defaulted = given.is_none();
    let path = given.unwrap_or_else(default_rootfs);
    let shown = if defaulted {
        "the default root filesystem".to_string()
    } else {
        format!("rootfs {:?}", path.display().to_string())
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => path
            .canonicalize()
            .with_context(|| format!("resolving {shown}")),
        Ok(_) => bail!("{shown} is not a directory"),
        Err(_) if defaulted => bail!(
            "{shown} does not exist yet: build it with `cargo xtask fixtures`, or pass --rootfs DIR"
        ),
        Err(err) => {
            let errno = Errno::from_raw(err.raw_os_error().unwrap_or(0));
            bail!("{shown}: {}", errno.desc().to_lowercase())
        }
    }
}
// ANCHOR_END: resolve
