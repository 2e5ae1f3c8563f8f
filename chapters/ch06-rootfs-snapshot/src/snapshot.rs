//! The concept of this chapter: a container's root filesystem is a *snapshot*
//! of an image, made in the store when the container is created and removed
//! with it.
//!
//! The store (`MINIBOX_ROOT`, default /var/lib/minibox) holds one directory per
//! container, `containers/ID/`:
//!
//! | snapshotter | what `prepare` makes | what the child mounts on `rootfs/` |
//! |---|---|---|
//! | overlay | empty `upper/`, `work/`, `rootfs/` | overlayfs: the layers read-only below, `upper/` on top |
//! | copy | `rootfs/`, a full copy of every layer | a bind mount of the copy onto itself |
//!
//! The image's layer directories are only ever read. With overlay, the cost of a
//! new container does not depend on the image's size; with copy, it grows with it.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ch01_fork_exec::narrate;
use ch03_uts_namespace::id;
use ch04_mount_namespace::mount;
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::sys::statfs::{OVERLAYFS_SUPER_MAGIC, statfs};

use crate::changes;

/// minibox's own directory's default place (`MINIBOX_ROOT`), as Docker's is
/// /var/lib/docker. Containers' snapshots are in `containers/` there; chapter
/// 7's image store is in `images/` and `blobs/`.
pub const DEFAULT_ROOT: &str = "/var/lib/minibox";

/// minibox's own directory: `$MINIBOX_ROOT`, or [`DEFAULT_ROOT`].
pub fn minibox_root() -> PathBuf {
    std::env::var_os("MINIBOX_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// How a container's root filesystem is made from the image. (`--snapshotter`
/// on the command line; the help text for each is in `cli.rs`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshotter {
    /// overlayfs: the image's layers read-only, a writable layer of the
    /// container's own on top (copy-on-write).
    Overlay,
    /// A full copy of the image for every container: slow, for comparison.
    Copy,
}

impl Snapshotter {
    /// The name, as `--snapshotter` and the snapshot's metadata spell it.
    pub fn name(self) -> &'static str {
        match self {
            Snapshotter::Overlay => "overlay",
            Snapshotter::Copy => "copy",
        }
    }

    /// The snapshotter called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Snapshotter> {
        [Snapshotter::Overlay, Snapshotter::Copy]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// How a container's snapshot is made and what becomes of it: the snapshot
/// options of `minibox run`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// overlay or copy.
    pub snapshotter: Snapshotter,
    /// Keep the snapshot after the container ends, or remove it.
    pub afterwards: Afterwards,
    /// List the container's changes after it ends (`--diff`).
    pub show_changes: bool,
}

/// What becomes of a container's snapshot once the container has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Afterwards {
    /// Remove it (`--rm`, the default).
    Remove,
    /// Keep it, and say where it is (`--keep`), for `minibox diff`.
    Keep,
}

/// A container's filesystem in the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `STORE/containers/ID`.
    pub dir: PathBuf,
    /// How it was made.
    pub snapshotter: Snapshotter,
    /// The image's layers, bottom first.
    pub layers: Vec<PathBuf>,
}

impl Snapshot {
    /// The directory that becomes the container's `/`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The container's writable layer (overlay only): everything it changed.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    // ANCHOR: prepare
    /// In the parent, before clone: makes the container's directory in `store`
    /// from the image's `layers` (bottom first). Nothing is mounted here; on
    /// failure, nothing is left.
    pub fn prepare(
        root: &Path,
        id: &str,
        layers: &[PathBuf],
        snapshotter: Snapshotter,
    ) -> Result<Snapshot> {
        let containers = root.join("containers");
        fs::create_dir_all(&containers)
            .with_context(|| format!("creating the store {}", containers.display()))?;
        let dir = containers.join(id);
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let snapshot = Snapshot::prepare_in(&dir, layers, snapshotter);
        if snapshot.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        snapshot
    }

    /// [`Snapshot::prepare`] in a directory `dir` that already exists and is
    /// empty: chapter 10's state store makes a container's directory under a
    /// temporary name and renames it when complete. On failure, `dir` may
    /// hold part of the snapshot: its maker removes it.
    pub fn prepare_in(
        dir: &Path,
        layers: &[PathBuf],
        snapshotter: Snapshotter,
    ) -> Result<Snapshot> {
        for layer in layers {
            if !layer.is_dir() {
                bail!(
                    "image layer {:?} is not a directory",
                    layer.display().to_string()
                );
            }
        }
        if snapshotter == Snapshotter::Overlay && on_overlayfs(dir) {
            // `dir` is MINIBOX_ROOT/containers/ID.
            let store = dir.ancestors().nth(2).unwrap_or(dir);
            bail!(
                "the store {} is itself on overlayfs, which cannot hold an overlay's writable layer: use --snapshotter copy, or set MINIBOX_ROOT to a directory on another filesystem",
                store.display()
            );
        }
        let snapshot = Snapshot {
            dir: dir.to_path_buf(),
            snapshotter,
            layers: layers
                .iter()
                .map(|l| l.canonicalize())
                .collect::<Result<_, _>>()?,
        };
        snapshot.fill()?;
        Ok(snapshot)
    }

    fn fill(&self) -> Result<()> {
        let list: Vec<String> = self
            .layers
            .iter()
            .map(|l| l.display().to_string())
            .collect();
        // The metadata `open` reads back: the layers, and how it was made.
        fs::write(self.dir.join("layers"), list.join("\n") + "\n")?;
        fs::write(self.dir.join("snapshotter"), self.snapshotter.name())?;
        fs::create_dir(self.rootfs())?;
        match self.snapshotter {
            Snapshotter::Overlay => {
                fs::create_dir(self.upper())?;
                fs::create_dir(self.dir.join("work"))?;
            }
            Snapshotter::Copy => {
                for layer in &self.layers {
                    copy_layer(layer, &self.rootfs())?; // later layers win
                }
            }
        }
        Ok(())
    }
    // ANCHOR_END: prepare

    // ANCHOR: mount
    /// In the child, in its own mount namespace (made private first): turns
    /// `rootfs/` into the container's view of the image. A mount point, as
    /// pivot_root needs.
    pub fn mount(&self) -> Result<()> {
        let rootfs = self.rootfs();
        match self.snapshotter {
            Snapshotter::Overlay => {
                // overlayfs wants the lower layers top first: the leftmost wins.
                let lower = lower_dirs(&self.layers);
                // In a user namespace, overlayfs keeps its attributes in
                // `user.overlay.*` (see `opaque_xattr`).
                let userxattr = if in_user_namespace() {
                    ",userxattr"
                } else {
                    ""
                };
                let options = |lower: &str| {
                    format!(
                        "lowerdir={lower},upperdir={},workdir={}{userxattr}",
                        self.upper().display(),
                        self.dir.join("work").display()
                    )
                };
                mount_overlay(&rootfs, &lower, options)
            }
            Snapshotter::Copy => mount::bind_onto_itself(&rootfs),
        }
    }
    // ANCHOR_END: mount

    // ANCHOR: remove
    /// Removes the container's directory and everything in it. Nothing is
    /// mounted on the host, so there is nothing to unmount first.
    pub fn remove(&self) -> Result<()> {
        fs::remove_dir_all(&self.dir).with_context(|| format!("removing {}", self.dir.display()))
    }
    // ANCHOR_END: remove

    // ANCHOR: open
    /// A kept container's snapshot, found by its ID or a unique prefix of it.
    pub fn open(root: &Path, id: &str) -> Result<Snapshot> {
        let containers = root.join("containers");
        let matches: Vec<PathBuf> = fs::read_dir(&containers)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(id))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        let dir = match matches.as_slice() {
            [one] => one.clone(),
            [] => bail!("no such container: {id}"),
            _ => bail!("container ID {id} is ambiguous: give more of it"),
        };
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let layers = read("layers")?.lines().map(PathBuf::from).collect();
        let name = read("snapshotter")?;
        let snapshotter = Snapshotter::from_name(name.trim())
            .with_context(|| format!("{}: unknown snapshotter {name:?}", dir.display()))?;
        Ok(Snapshot {
            dir,
            snapshotter,
            layers,
        })
    }
    // ANCHOR_END: open

    // ANCHOR: lifecycle
    /// The rest of the snapshot's life, around its container: runs `container`,
    /// then lists what it changed (`--diff`, as `docker diff`), then keeps the
    /// snapshot or removes it (`--keep`, `--rm`). It is removed on every other path too:
    /// an error, and a panic (the removal runs as the stack unwinds).
    pub fn lifecycle<T>(
        &self,
        options: &SnapshotOptions,
        container: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let guard = RemoveOnDrop(Some(self));
        // The container's own error, if any, is the one to report.
        let result = container().and_then(|value| {
            if options.show_changes {
                changes::print(self)?;
            }
            Ok(value)
        });
        if options.afterwards == Afterwards::Keep && result.is_ok() {
            guard.keep();
            narrate::notice(format_args!(
                "kept container {}: {}",
                id::short(&self.id()),
                self.dir.display()
            ));
            return result;
        }
        let removed = guard.remove();
        let value = result?;
        removed?;
        Ok(value)
    }
    // ANCHOR_END: lifecycle

    /// The container's ID: the name of its directory.
    pub fn id(&self) -> String {
        self.dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A snapshot removed when dropped, unless [`RemoveOnDrop::remove`] did it
/// first (and said whether it worked) or it was forgotten (kept).
struct RemoveOnDrop<'a>(Option<&'a Snapshot>);

impl RemoveOnDrop<'_> {
    fn keep(mut self) {
        self.0 = None;
    }

    fn remove(mut self) -> Result<()> {
        self.0.take().map_or(Ok(()), Snapshot::remove)
    }
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(snapshot) = self.0.take() {
            let _ = snapshot.remove(); // unwinding from a panic: best effort
        }
    }
}

// ANCHOR: on_overlayfs
/// Whether `path` is on an overlayfs, where a new overlay's upper layer cannot go.
pub fn on_overlayfs(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == OVERLAYFS_SUPER_MAGIC)
}
// ANCHOR_END: on_overlayfs

// ANCHOR: copy_layer
/// The copy snapshotter's work: copies one layer over `dest`, keeping modes,
/// owners and symlinks. An overlay whiteout in the layer (a 0/0 character
/// device) deletes the path below it instead, and an opaque directory replaces
/// the one below, so stacked layers read the same as through overlayfs.
pub fn copy_layer(layer: &Path, dest: &Path) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(layer)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        let context = || format!("copying {}", from.display());
        if is_whiteout(&meta) {
            remove_path(&to).with_context(context)?;
            continue;
        }
        if kind.is_dir() {
            if is_opaque(&from) {
                // The layer replaced this directory: drop what lower layers put there.
                remove_path(&to).with_context(context)?;
            }
            if !to.is_dir() {
                remove_path(&to).with_context(context)?;
                fs::create_dir(&to).with_context(context)?;
            }
            copy_layer(&from, &to)?;
        } else {
            remove_path(&to).with_context(context)?;
            if kind.is_symlink() {
                symlink(fs::read_link(&from)?, &to).with_context(context)?;
            } else if kind.is_file() {
                fs::copy(&from, &to).with_context(context)?;
            } else {
                bail!(
                    "{}: only files, directories and symlinks can be copied",
                    from.display()
                );
            }
        }
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &to,
            Some(meta.uid().into()),
            Some(meta.gid().into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .with_context(context)?;
        if !kind.is_symlink() {
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .with_context(context)?;
        }
    }
    Ok(())
}
// ANCHOR_END: copy_layer

// ANCHOR: is_whiteout
/// The extended attribute that makes a directory *opaque* to overlayfs.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The same, for an overlay mounted in a user namespace (chapter 13), where
/// only the host's root may set `trusted.*`: with the `userxattr` option,
/// overlayfs reads its attributes from `user.overlay.*` instead.
pub const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque attribute of overlays this process mounts ([`OPAQUE_XATTR`],
/// or [`USER_OPAQUE_XATTR`] in a user namespace).
pub fn opaque_xattr() -> &'static str {
    if in_user_namespace() {
        USER_OPAQUE_XATTR
    } else {
        OPAQUE_XATTR
    }
}

/// Whether this process runs in a user namespace other than the host's:
/// its `uid_map` is not the identity over every ID. Read once.
pub fn in_user_namespace() -> bool {
    static INSIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSIDE.get_or_init(|| {
        fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
    })
}

/// An overlayfs *opaque* directory: one whose `trusted.overlay.opaque` extended
/// attribute is `y`. It hides everything the layers below have at that path:
/// overlayfs makes one when a container removes a directory and makes it again.
pub fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, opaque_xattr()), Ok(Some(value)) if value == b"y")
}

/// An overlayfs whiteout: a character device with device number 0/0.
pub fn is_whiteout(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_char_device() && meta.rdev() == 0
}
// ANCHOR_END: is_whiteout

/// The overlay's lower directories from an image's `layers` (bottom first):
/// top first, as overlayfs wants them (the leftmost wins), and each directory
/// once. An image may list the same layer twice (a build step that changed
/// nothing, a layer a tool reused); overlayfs refuses a directory that is twice
/// in one stack (ELOOP), and keeping the topmost copy alone changes nothing a
/// container sees: every file of a lower copy is in the topmost one again,
/// above whatever the layers in between did to it.
pub fn lower_dirs(layers: &[PathBuf]) -> Vec<&Path> {
    let mut seen = std::collections::HashSet::new();
    layers
        .iter()
        .rev()
        .filter(|l| seen.insert(l.as_path()))
        .map(PathBuf::as_path)
        .collect()
}

/// The most mount(2) copies of a mount's options: one page.
const PAGE_SIZE: usize = 4096;

/// Mounts an overlay on `rootfs` from `lower` (top first), with the options
/// `options` makes of the `lowerdir` list.
///
/// mount(2) takes at most one page of options, and an image of many layers
/// named by their full paths in the store does not fit (about 40 do). Then
/// each layer is opened and named by its file descriptor, `/proc/self/fd/N`,
/// a short path the kernel follows to the same directory, so that as many
/// layers mount as Docker's overlay2 allows (127). (overlay2 gives each layer
/// a short symlink under `l/`; containerd mounts from the snapshots' directory
/// with short relative names.) The descriptors close once the mount holds the
/// layers.
fn mount_overlay(rootfs: &Path, lower: &[&Path], options: impl Fn(&str) -> String) -> Result<()> {
    let joined = |names: &[String]| options(&names.join(":"));
    let mut data = joined(
        &lower
            .iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>(),
    );
    let _open: Vec<fs::File>;
    if data.len() >= PAGE_SIZE {
        _open = lower
            .iter()
            .map(|l| {
                fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                    .open(l)
                    .with_context(|| format!("opening the layer {}", l.display()))
            })
            .collect::<Result<_>>()?;
        let short: Vec<String> = _open
            .iter()
            .map(|f| format!("/proc/self/fd/{}", f.as_raw_fd()))
            .collect();
        data = joined(&short);
    }
    if data.len() >= PAGE_SIZE {
        bail!(
            "an image of {} layers is more than one overlay mount can stack (Docker's overlay2 allows 127 lower layers)",
            lower.len()
        );
    }
    let mounted = mount::mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    );
    if in_user_namespace() {
        // Chapter 13: only Linux 5.11 on mounts overlayfs in a user namespace.
        return mounted.context("mounting the container's overlay in a user namespace (this needs Linux 5.11 or later; on an older kernel, use --snapshotter copy)");
    }
    mounted.context("mounting the container's overlay (if the store is on overlayfs or another filesystem overlay cannot write to, use --snapshotter copy)")
}

/// Makes `dir` opaque (see [`is_opaque`]): chapter 7 does, for a layer whose
/// archive says so. Setting a `trusted.*` attribute needs CAP_SYS_ADMIN.
pub fn mark_opaque(dir: &Path) -> Result<()> {
    xattr::set(dir, opaque_xattr(), b"y")
        .with_context(|| format!("marking {} opaque", dir.display()))
}

/// Makes a whiteout at `path` (see [`is_whiteout`]), which hides the path in
/// the layers below: chapter 7 does, for a layer whose archive deletes a file.
/// Making a device node needs CAP_MKNOD.
pub fn make_whiteout(path: &Path) -> Result<()> {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        .with_context(|| format!("creating the whiteout {}", path.display()))
}

fn remove_path(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    }
}
