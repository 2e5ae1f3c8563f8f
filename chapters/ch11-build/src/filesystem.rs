//! Changing an image's files without running anything in it: `COPY`, `ADD`
//! and `WORKDIR`. The image's layers are mounted as chapter 6 mounts a
//! container's root (overlayfs, a fresh upper directory on top), in a child
//! process with a mount namespace of its own, as chapter 4's container had:
//! the change is made there through the merged view, the child exits, and its
//! mounts vanish with it, whatever happened. What the change wrote is then in
//! the upper directory, in overlayfs's form, ready to become a layer, exactly
//! as a `RUN`'s container leaves it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::process::{self, Forked};
use ch04_mount_namespace::mount;
use ch06_rootfs_snapshot::snapshot::{Snapshot, Snapshotter};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

/// A place for one change below the store: the snapshot's directories and
/// the mount points of the images a change reads from. Removed when dropped.
pub struct Workspace {
    /// `MINIBOX_ROOT/build/PID-N`.
    pub dir: PathBuf,
}

static WORKSPACES: AtomicUsize = AtomicUsize::new(0);

impl Workspace {
    /// A new, empty workspace below `root`.
    pub fn new(root: &Path) -> Result<Workspace> {
        let n = WORKSPACES.fetch_add(1, Ordering::Relaxed);
        let dir = root
            .join("build")
            .join(format!("{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir); // left by a dead process with our PID
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Workspace { dir })
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Another image's files that a change reads (`COPY --from`): its layers,
/// mounted read-only at `dir` inside the child.
pub struct ReadOnly {
    /// The image's layer directories, bottom first.
    pub layers: Vec<PathBuf>,
}

// ANCHOR: change
/// Mounts `layers` (bottom first) with a fresh upper directory in
/// `workspace`, and `sources` read-only beside it, in a child with its own
/// mount namespace; runs `change` there with the merged root and the
/// sources' mount points; returns the upper directory, which holds what
/// `change` wrote (and nothing if it wrote nothing).
pub fn change(
    workspace: &Workspace,
    layers: &[PathBuf],
    sources: &[ReadOnly],
    change: impl FnOnce(&Path, &[PathBuf]) -> Result<()>,
) -> Result<PathBuf> {
    let dir = workspace.dir.join("snapshot");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let snapshot = Snapshot::prepare_in(&dir, layers, Snapshotter::Overlay)?;
    let mut points = Vec::new();
    for i in 0..sources.len() {
        let point = workspace.dir.join(format!("from-{i}"));
        fs::create_dir_all(&point).with_context(|| format!("creating {}", point.display()))?;
        points.push(point);
    }
    let (read_end, write_end) = nix::unistd::pipe().context("pipe")?;
    let (mut read_end, mut write_end) = (fs::File::from(read_end), fs::File::from(write_end));
    match process::fork()? {
        Forked::Child => {
            drop(read_end);
            let result = (|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
                mount::make_private()?;
                snapshot.mount()?;
                for (source, point) in sources.iter().zip(&points) {
                    mount_read_only(&source.layers, point)?;
                }
                change(&snapshot.rootfs(), &points)
            })();
            let status = match result {
                Ok(()) => 0,
                Err(error) => {
                    let _ = write_end.write_all(format!("{error:#}").as_bytes());
                    1
                }
            };
            process::exit_now(status)
        }
        Forked::Parent { child } => {
            drop(write_end);
            let mut why = String::new();
            let _ = read_end.read_to_string(&mut why);
            match process::wait_for(child)? {
                Exit::Code(0) => Ok(snapshot.upper()),
                _ if !why.is_empty() => Err(anyhow!(why)),
                exit => bail!("the process changing the image's files ended: {exit}"),
            }
        }
    }
}
// ANCHOR_END: change

/// Mounts `layers` (bottom first) read-only at `point`: overlayfs with lower
/// directories only; one layer is bound as it is, none is an empty root.
fn mount_read_only(layers: &[PathBuf], point: &Path) -> Result<()> {
    let flags = MsFlags::MS_RDONLY;
    match layers {
        [] => Ok(()),
        [only] => {
            let source = only.to_str().context("a layer path that is not UTF-8")?;
            mount::mount(Some(source), point, None, MsFlags::MS_BIND, None)?;
            mount::mount(
                None,
                point,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
                None,
            )
        }
        _ => {
            let lower: Vec<String> = layers
                .iter()
                .rev() // overlayfs lists the top layer first
                .map(|l| l.display().to_string())
                .collect();
            let options = format!("lowerdir={}", lower.join(":"));
            mount::mount(
                Some("overlay"),
                point,
                Some("overlay"),
                flags,
                Some(&options),
            )
        }
    }
}

/// Whether an upper directory holds any change.
pub fn is_empty(upper: &Path) -> Result<bool> {
    Ok(fs::read_dir(upper)
        .with_context(|| format!("reading {}", upper.display()))?
        .next()
        .is_none())
}
