//! Unpacking a layer: a tar archive becomes one directory, ready to be an
//! overlayfs lower layer (chapter 6).
//!
//! Three things make this more than `tar -x`:
//!
//! - **Whiteouts.** A layer records deletions as marker files, because a tar
//!   archive cannot hold the absence of a file: `.wh.NAME` deletes `NAME` from
//!   the layers below, and `DIR/.wh..wh..opq` says `DIR` replaces the lower
//!   layers' `DIR` instead of merging with it. overlayfs has its own markers for
//!   the same two things, so we translate: `.wh.NAME` becomes a character device
//!   0/0 called `NAME`, and the opaque marker becomes the extended attribute
//!   `trusted.overlay.opaque=y` on `DIR`.
//! - **Hostile archives.** A layer is input from the network. An entry named
//!   `../../etc/cron.d/x`, a symlink `escape -> /` followed by
//!   `escape/etc/passwd`, or a hard link to `/etc/shadow` would write outside
//!   the layer's directory, as root, if the names were handed to the kernel
//!   as they are. Every path is taken apart component by component and
//!   resolved *inside the layer's directory*, the way the container will see
//!   it: a leading `/` means the layer's root (Kaniko, Bazel and Nix write
//!   `/usr/bin/x`; Docker and containerd accept it), a symlink met on the way
//!   is followed as if the layer's directory were `/`, and `..` is refused. A symlink that
//!   leads nowhere in this layer (`escape -> /tmp`, when the layer has no
//!   /tmp) is refused too, rather than followed onto the host. The layer is
//!   rejected whole; the caller removes the partial directory.
//! - **What other tools write.** PAX global headers (`git archive` writes
//!   one) carry nothing for us and are skipped; an extended attribute the
//!   filesystem refuses (a macOS `com.apple.*` name, `security.*` where the
//!   kernel says EPERM) is skipped with a warning, as Docker does.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use ch06_rootfs_snapshot::snapshot;
use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

/// The OCI whiteout prefix: `.wh.NAME` deletes `NAME`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque marker: `DIR/.wh..wh..opq`.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What unpacking a layer produced, besides the files.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// The total size of the regular files, which is what `minibox images`
    /// shows as the layer's size.
    pub size: u64,
    /// Extended attributes the filesystem refused, one line each: the pull
    /// shows them as warnings and goes on, as Docker does.
    pub warnings: Vec<String>,
}

// ANCHOR: unpack
/// Unpacks the tar archive `reader` into the directory `dest` (which exists and
/// is empty).
pub fn unpack(reader: impl Read, dest: &Path) -> Result<Unpacked> {
    let mut archive = tar::Archive::new(reader);
    let mut unpacked = Unpacked::default();
    // Directory times are set last: creating a child changes its parent's.
    let mut dir_times = BTreeMap::new();
    for entry in archive
        .entries()
        .context("reading the layer's tar archive")?
    {
        let mut entry = entry.context("reading the layer's tar archive")?;
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            // Defaults for the whole archive (`git archive` records its commit
            // there); nothing a layer's files need. Docker skips them too.
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let inside = relative_path(&raw).with_context(|| format!("layer entry {shown:?}"))?;
        unpacked.size += unpack_entry(
            &mut entry,
            dest,
            &inside,
            &mut dir_times,
            &mut unpacked.warnings,
        )
        .with_context(|| format!("layer entry {shown:?}"))?;
    }
    for (path, mtime) in dir_times.iter().rev() {
        set_mtime(path, *mtime)?;
    }
    Ok(unpacked)
}
// ANCHOR_END: unpack

// ANCHOR: relative_path
/// An entry's path, or a hard link's target, as plain components below the
/// layer's root: `./`, `.` and a leading `/` dropped (Kaniko, Bazel and Nix
/// write `/usr/bin/x`, and Docker and containerd read it as a path below the
/// layer's root), `..` refused.
pub fn relative_path(raw: &[u8]) -> Result<PathBuf> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => bail!("refused: a \"..\" path leads outside the layer"),
        }
    }
    Ok(clean)
}

/// How many symlinks one path may go through before we give up, as the
/// kernel's ELOOP does (its limit is 40).
const MAX_SYMLINKS: usize = 40;

/// Finds the real directory `dir` (a path below the layer's root) names, as
/// the container will see it: every symlink on the way is followed *inside*
/// `dest` (an absolute target starts again at the layer's root, `..` stops at
/// it), so the result is a directory below `dest` reached through real
/// directories only. Directories the entry's own path names but the archive
/// has not listed (yet) are created when `create` is set; a symlink's target
/// must already be a directory of this layer, or the entry is refused.
fn resolve_dir(dest: &Path, dir: &Path, create: bool) -> Result<PathBuf> {
    // What is left to walk: each name, and the symlink it came from, if any.
    let mut todo: VecDeque<(OsString, Option<PathBuf>)> = dir
        .components()
        .map(|c| (c.as_os_str().to_os_string(), None))
        .collect();
    let mut at = PathBuf::new(); // below `dest`, through real directories only
    let mut followed = 0;
    while let Some((name, via)) = todo.pop_front() {
        if name == ".." {
            at.pop(); // never above the layer's root
            continue;
        }
        if name == "." || name.is_empty() {
            continue;
        }
        let next = at.join(&name);
        let full = dest.join(&next);
        let refuse_via = |link: &Path| {
            anyhow::anyhow!(
                "refused: the path goes through the symlink {:?}, which leads to {:?}, not a directory of this layer",
                link.display().to_string(),
                next.display().to_string()
            )
        };
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    bail!(
                        "refused: too many levels of symlinks below {:?}",
                        dir.display().to_string()
                    );
                }
                let target = fs::read_link(&full)
                    .with_context(|| format!("reading the symlink {}", full.display()))?;
                if target.is_absolute() {
                    at = PathBuf::new();
                }
                for component in target.components().rev() {
                    if let Component::Normal(_) | Component::ParentDir = component {
                        todo.push_front((component.as_os_str().to_os_string(), Some(next.clone())));
                    }
                }
            }
            Ok(meta) if meta.is_dir() => at = next,
            Ok(_) => match via {
                Some(link) => return Err(refuse_via(&link)),
                None => bail!("{} is not a directory", full.display()),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => match via {
                Some(link) => return Err(refuse_via(&link)),
                None if create => {
                    // A parent the archive has not listed (yet): its own
                    // entry, if one comes, sets its mode and owner.
                    fs::create_dir(&full)
                        .with_context(|| format!("creating {}", full.display()))?;
                    at = next;
                }
                None => bail!(
                    "refused: {:?} is not in the layer",
                    dir.display().to_string()
                ),
            },
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", full.display())),
        }
    }
    Ok(dest.join(at))
}

/// The real directory an entry goes into: its parent, resolved inside the
/// layer ([`resolve_dir`]), created as needed.
fn safe_parent(dest: &Path, inside: &Path) -> Result<PathBuf> {
    match inside.parent() {
        Some(parent) => resolve_dir(dest, parent, true),
        None => Ok(dest.to_path_buf()),
    }
}
// ANCHOR_END: relative_path

// ANCHOR: unpack_entry
fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<R>,
    dest: &Path,
    inside: &Path,
    dir_times: &mut BTreeMap<PathBuf, u64>,
    warnings: &mut Vec<String>,
) -> Result<u64> {
    let header = entry.header().clone();
    let kind = header.entry_type();
    let Some(name) = inside.file_name() else {
        // The archive's root (`./`): the layer's directory itself.
        if kind.is_dir() {
            apply_metadata(entry, &header, dest, warnings)?;
        }
        return Ok(0);
    };
    let parent = safe_parent(dest, inside)?;
    let name = name.as_bytes();

    // Whiteouts: OCI's marker files become overlayfs's markers.
    if name == OPAQUE_MARKER.as_bytes() {
        snapshot::mark_opaque(&parent)?;
        return Ok(0);
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Ok(0); // other `.wh..wh.` names are aufs's bookkeeping
        }
        let target = parent.join(OsStr::from_bytes(hidden));
        remove_existing(&target)?;
        snapshot::make_whiteout(&target)?;
        return Ok(0);
    }

    let path = parent.join(OsStr::from_bytes(name));
    let existing = fs::symlink_metadata(&path).ok();
    if !(kind.is_dir() && existing.as_ref().is_some_and(|m| m.is_dir())) {
        remove_existing(&path)?; // a later entry for the same path wins
    }
    let mut size = 0;
    match kind {
        tar::EntryType::Directory => {
            if !path.is_dir() {
                fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
            }
            dir_times.insert(path.clone(), header.mtime().unwrap_or(0));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true) // never through an existing file or symlink
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            size = io::copy(entry, &mut file)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        tar::EntryType::Symlink => {
            // A symlink may point anywhere (`/bin/sh -> busybox`, `/etc/mtab ->
            // /proc/mounts`): it is only followed inside the container, whose
            // root it cannot leave. We never follow it here.
            let target = entry
                .link_name_bytes()
                .context("a symlink without a target")?;
            symlink(OsStr::from_bytes(&target), &path)
                .with_context(|| format!("creating the symlink {}", path.display()))?;
        }
        tar::EntryType::Link => {
            // The target is another entry of this layer, named as entries
            // are (Kaniko writes `/usr/bin/x`): resolved the same way, inside
            // the layer, and it must be there already.
            let target = entry
                .link_name_bytes()
                .context("a hard link without a target")?;
            let shown = String::from_utf8_lossy(&target).into_owned();
            let target = relative_path(&target).context("its hard link target")?;
            let Some(file_name) = target.file_name() else {
                bail!("refused: a hard link to the layer's root");
            };
            let source = match target.parent() {
                Some(parent) => resolve_dir(dest, parent, false),
                None => Ok(dest.to_path_buf()),
            }
            .with_context(|| format!("the hard link target {shown:?}"))?
            .join(file_name);
            if fs::symlink_metadata(&source).is_err() {
                bail!("refused: the hard link target {shown:?} is not in the layer");
            }
            fs::hard_link(&source, &path)
                .with_context(|| format!("linking {} to {}", path.display(), source.display()))?;
            return Ok(0); // the linked file has its metadata already
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let kind_flag = match kind {
                tar::EntryType::Char => SFlag::S_IFCHR,
                tar::EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            // Empty fields read as 0 here too (a FIFO's usually are).
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let made = mknod(
                &path,
                kind_flag,
                Mode::from_bits_truncate(0o600),
                makedev(major.into(), minor.into()),
            );
            if made == Err(Errno::EPERM) && kind_flag != SFlag::S_IFIFO {
                // Only the host's root may make a device node (chapter 13):
                // a container could not open it anyway.
                warnings.push(format!(
                    "skipping the device {}: {}",
                    path.display(),
                    Errno::EPERM
                ));
                return Ok(0);
            }
            made.with_context(|| format!("creating the device {}", path.display()))?;
        }
        other => bail!("unsupported tar entry type {other:?}"),
    }
    apply_metadata(entry, &header, &path, warnings)?;
    Ok(size)
}
// ANCHOR_END: unpack_entry

/// The attribute rootless podman's storage and fuse-overlayfs keep an
/// owner in when the user namespace cannot map it: `UID:GID:MODE`.
pub const OVERRIDE_STAT_XATTR: &str = "user.containers.override_stat";

/// Records the owner a file should have had ([`OVERRIDE_STAT_XATTR`], with
/// setxattr(2)); one
/// warning per layer says that it happened.
fn record_owner(
    path: &Path,
    uid: u32,
    gid: u32,
    mode: u32,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let value = format!("{uid}:{gid}:0{mode:o}");
    xattr::set(path, OVERRIDE_STAT_XATTR, value.as_bytes())
        .with_context(|| format!("recording the owner of {}", path.display()))?;
    const UNMAPPED: &str = "owners this user namespace cannot map";
    if !warnings.iter().any(|w| w.contains(UNMAPPED)) {
        warnings.push(format!(
            "this layer has files with {UNMAPPED} (the first owned by {uid}:{gid}): they belong to root in containers, and their owners are kept in {OVERRIDE_STAT_XATTR}"
        ));
    }
    Ok(())
}

/// Owner, mode, extended attributes and modification time, as the archive
/// says. The owner first: chown(2) clears the set-user-ID bits that the mode
/// may set.
fn apply_metadata<R: Read>(
    entry: &mut tar::Entry<R>,
    header: &tar::Header,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let context = || format!("setting the metadata of {}", path.display());
    // An empty numeric field reads as 0, as Go's archive/tar (which wrote most
    // of the world's layers) reads it.
    let uid = header.uid().unwrap_or(0) as u32;
    let gid = header.gid().unwrap_or(0) as u32;
    let owned = nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    let is_symlink = header.entry_type() == tar::EntryType::Symlink;
    match owned {
        // In a user namespace that does not map this owner (chapter 13,
        // with the user's own ID alone): the file stays the namespace's
        // root's, and its owner is written down rather than lost.
        Err(Errno::EINVAL) if !is_symlink => {
            let mode = header.mode().unwrap_or(0) & 0o7777;
            let shown = header.path().map(|p| p.display().to_string());
            record_owner(path, uid, gid, mode, warnings)
                .with_context(|| format!("/{}", shown.unwrap_or_default()))?;
        }
        Err(Errno::EINVAL) => {} // a symbolic link's owner matters to no one
        result => result.with_context(context)?,
    }
    if !is_symlink {
        let mode = header.mode().unwrap_or(0) & 0o7777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).with_context(context)?;
    }
    apply_xattrs(entry, path, warnings)?;
    if header.entry_type() != tar::EntryType::Directory {
        set_mtime(path, header.mtime().unwrap_or(0))?;
    }
    Ok(())
}

/// The entry's extended attributes, set on `path`; one the filesystem
/// refuses is a warning, not an error.
fn apply_xattrs<R: Read>(
    entry: &mut tar::Entry<R>,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let context = || format!("setting the metadata of {}", path.display());
    // Extended attributes travel as PAX records `SCHILY.xattr.NAME`: file
    // capabilities (`security.capability`, which ping needs) among them.
    if let Some(extensions) = entry.pax_extensions().with_context(context)? {
        for extension in extensions {
            let extension = extension.with_context(context)?;
            let Some(name) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                continue;
            };
            let shown = String::from_utf8_lossy(name);
            match xattr::set(path, OsStr::from_bytes(name), extension.value_bytes()) {
                Ok(()) => {}
                // The filesystem does not have this namespace (a macOS
                // `com.apple.*` attribute, `trusted.*` in a user namespace) or
                // will not let us set it: the file is still worth having.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP)) => {
                    warnings.push(format!(
                        "ignoring the extended attribute {shown} of {}: {e}",
                        path.display()
                    ));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "setting the extended attribute {shown} of {}",
                            path.display()
                        )
                    });
                }
            }
        }
    }
    Ok(())
}

fn set_mtime(path: &Path, mtime: u64) -> Result<()> {
    let time = TimeSpec::new(mtime as i64, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("setting the time of {}", path.display()))
}

fn remove_existing(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    result.with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_on_the_way_are_followed_inside_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path();
        fs::create_dir_all(dest.join("usr/lib")).unwrap();
        symlink("usr/lib", dest.join("lib")).unwrap();
        symlink("/usr/lib", dest.join("abs")).unwrap();
        symlink("../../../..", dest.join("up")).unwrap();
        symlink("loop2", dest.join("loop1")).unwrap();
        symlink("loop1", dest.join("loop2")).unwrap();
        symlink("/etc", dest.join("out")).unwrap();
        let resolve = |p: &str| resolve_dir(dest, Path::new(p), true);
        assert_eq!(resolve("lib").unwrap(), dest.join("usr/lib"));
        assert_eq!(resolve("abs/new").unwrap(), dest.join("usr/lib/new"));
        assert!(
            dest.join("usr/lib/new").is_dir(),
            "created below the target"
        );
        assert_eq!(
            resolve("up").unwrap(),
            dest,
            "`..` stops at the layer's root"
        );
        let error = resolve("loop1").unwrap_err().to_string();
        assert!(error.contains("too many levels of symlinks"), "{error}");
        let error = resolve("out/cron.d").unwrap_err().to_string();
        assert!(error.starts_with("refused: "), "{error}");
        assert!(
            !dest.join("etc").exists(),
            "nothing made for a symlink's target"
        );
    }

    #[test]
    fn paths_stay_below_the_layer() {
        assert_eq!(relative_path(b"./bin/sh").unwrap(), Path::new("bin/sh"));
        assert_eq!(relative_path(b"bin/./sh").unwrap(), Path::new("bin/sh"));
        assert_eq!(relative_path(b"./").unwrap(), Path::new(""));
        assert_eq!(
            relative_path(b"/usr/bin/x").unwrap(),
            Path::new("usr/bin/x")
        );
        assert_eq!(relative_path(b"/").unwrap(), Path::new(""));
        for bad in [&b"../x"[..], b"a/../../x", b"/../etc/passwd", b"a/.."] {
            assert!(
                relative_path(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
