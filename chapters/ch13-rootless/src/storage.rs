//! Where a rootless minibox keeps its files: the user's own directories,
//! as the XDG base directory specification names them, instead of
//! `/var/lib/minibox` and `/run/minibox`, which only root may write.
//!
//! - images and containers (on disk, kept across reboots):
//!   `$XDG_DATA_HOME/minibox`, by default `~/.local/share/minibox`;
//! - runtime state (gone at reboot, or at logout): `$XDG_RUNTIME_DIR/minibox`
//!   (`/run/user/UID`, made by the login manager). Without one, as in a `su`
//!   shell or a container, a directory of the user's own under `/tmp`,
//!   checked as rootless podman checks its `/tmp/podman-run-UID`.
//!
//! Setting `MINIBOX_ROOT` or `MINIBOX_RUN` still overrides either.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::unistd::Uid;

/// The two directories of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `MINIBOX_ROOT`: images, layers, containers, volumes.
    pub root: PathBuf,
    /// `MINIBOX_RUN`: the runtime state, the pause process's PID.
    pub run: PathBuf,
}

// ANCHOR: storage
impl Storage {
    /// The directories of user `uid`, from the environment.
    pub fn of_user(uid: Uid) -> Result<Storage> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = match (var("MINIBOX_ROOT"), var("XDG_DATA_HOME"), var("HOME")) {
            (Some(root), _, _) => root,
            (None, Some(data), _) => data.join("minibox"),
            (None, None, Some(home)) => home.join(".local/share/minibox"),
            (None, None, None) => bail!(
                "rootless minibox needs HOME (or XDG_DATA_HOME, or MINIBOX_ROOT) to keep its images"
            ),
        };
        let run = match (var("MINIBOX_RUN"), var("XDG_RUNTIME_DIR")) {
            (Some(run), _) => run,
            (None, Some(runtime)) if owned_by(&runtime, uid) => runtime.join("minibox"),
            _ => fallback_run_dir(uid)?,
        };
        Ok(Storage { root, run })
    }
}
// ANCHOR_END: storage

/// Whether `dir` exists and belongs to `uid`.
fn owned_by(dir: &Path, uid: Uid) -> bool {
    fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == uid.as_raw())
}

/// `/tmp/minibox-run-UID`, made with mode 0700; refused when someone else
/// made it first (another user could otherwise plant the pause file).
fn fallback_run_dir(uid: Uid) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("minibox-run-{uid}"));
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => return Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let meta = fs::symlink_metadata(&dir).with_context(|| format!("checking {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid.as_raw() || meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is not a private directory of yours: set XDG_RUNTIME_DIR (or MINIBOX_RUN) to one",
            dir.display()
        );
    }
    Ok(dir)
}
