//! Unpacking a layer: a tar archive becomes one directory, ready to be an
//! overlayfs lower layer (chapter 6).
//!
//! Two things make this more than `tar -x`:
//!
//! - **Whiteouts.** A layer records deletions as marker files, because a tar
//!   archive cannot hold the absence of a file: `.wh.NAME` deletes `NAME` from
//!   the layers below, and `DIR/.wh..wh..opq` says `DIR` replaces the lower
//!   layers' `DIR` instead of merging with it. overlayfs has its own markers for
//!   the same two things, so we translate: `.wh.NAME` becomes a character device
//!   0/0 called `NAME`, and the opaque marker becomes the extended attribute
//!   `trusted.overlay.opaque=y` on `DIR`.
//! - **Hostile archives.** A layer is input from the network. An entry named
//!   `../../etc/cron.d/x` or `/etc/passwd`, a symlink `escape -> /` followed by
//!   `escape/etc/passwd`, or a hard link to `/etc/shadow` would write outside
//!   the layer's directory, as root. Every path is taken apart component by
//!   component: `..` and absolute paths are refused, and no component may be a
//!   symlink. The layer is rejected whole; the caller removes the partial
//!   directory.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

/// The OCI whiteout prefix: `.wh.NAME` deletes `NAME`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque marker: `DIR/.wh..wh..opq`.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

// ANCHOR: unpack
/// Unpacks the tar archive `reader` into the directory `dest` (which exists and
/// is empty). Returns the total size of the regular files, which is what
/// `minibox images` shows as the layer's size.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<u64> {
    let mut archive = tar::Archive::new(reader);
    let mut size = 0;
    // Directory times are set last: creating a child changes its parent's.
    let mut dir_times = BTreeMap::new();
    for entry in archive
        .entries()
        .context("reading the layer's tar archive")?
    {
        let mut entry = entry.context("reading the layer's tar archive")?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let inside = relative_path(&raw).with_context(|| format!("layer entry {shown:?}"))?;
        size += unpack_entry(&mut entry, dest, &inside, &mut dir_times)
            .with_context(|| format!("layer entry {shown:?}"))?;
    }
    for (path, mtime) in dir_times.iter().rev() {
        set_mtime(path, *mtime)?;
    }
    Ok(size)
}
// ANCHOR_END: unpack

// ANCHOR: relative_path
/// An entry's path as plain components below the layer's root: `./` and `.`
/// dropped, `..` and absolute paths refused.
pub fn relative_path(raw: &[u8]) -> Result<PathBuf> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::CurDir => {}
            Component::ParentDir => bail!("refused: a \"..\" path leads outside the layer"),
            Component::RootDir | Component::Prefix(_) => {
                bail!("refused: an absolute path leads outside the layer")
            }
        }
    }
    Ok(clean)
}

/// Makes sure every directory above `dest/inside` exists and is a real
/// directory of this layer, never a symlink: a symlink could lead anywhere,
/// and following one is how an archive writes outside its directory.
fn safe_parent(dest: &Path, inside: &Path) -> Result<PathBuf> {
    let mut at = dest.to_path_buf();
    let Some(parent) = inside.parent() else {
        return Ok(at);
    };
    for name in parent.components() {
        at.push(name);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => bail!(
                "refused: the path goes through the symlink {:?}, which could lead outside the layer",
                at.strip_prefix(dest).unwrap_or(&at).display().to_string()
            ),
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!("{} is not a directory", at.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A parent the archive has not listed (yet): its own entry, if
                // one comes, sets its mode and owner.
                fs::create_dir(&at).with_context(|| format!("creating {}", at.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", at.display())),
        }
    }
    Ok(at)
}
// ANCHOR_END: relative_path

// ANCHOR: unpack_entry
fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<R>,
    dest: &Path,
    inside: &Path,
    dir_times: &mut BTreeMap<PathBuf, u64>,
) -> Result<u64> {
    let header = entry.header().clone();
    let kind = header.entry_type();
    let Some(name) = inside.file_name() else {
        // The archive's root (`./`): the layer's directory itself.
        if kind.is_dir() {
            apply_metadata(entry, &header, dest)?;
        }
        return Ok(0);
    };
    let parent = safe_parent(dest, inside)?;
    let name = name.as_bytes();

    // Whiteouts: OCI's marker files become overlayfs's markers.
    if name == OPAQUE_MARKER.as_bytes() {
        xattr::set(&parent, "trusted.overlay.opaque", b"y")
            .with_context(|| format!("marking {} opaque", parent.display()))?;
        return Ok(0);
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Ok(0); // other `.wh..wh.` names are aufs's bookkeeping
        }
        let target = parent.join(OsStr::from_bytes(hidden));
        remove_existing(&target)?;
        mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .with_context(|| format!("creating the whiteout {}", target.display()))?;
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
            let target = entry
                .link_name_bytes()
                .context("a hard link without a target")?;
            let target = relative_path(&target).context("its hard link target")?;
            if target.as_os_str().is_empty() {
                bail!("refused: a hard link to the layer's root");
            }
            let source = safe_parent(dest, &target)?.join(target.file_name().expect("a name"));
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
            mknod(
                &path,
                kind_flag,
                Mode::from_bits_truncate(0o600),
                makedev(major.into(), minor.into()),
            )
            .with_context(|| format!("creating the device {}", path.display()))?;
        }
        other => bail!("unsupported tar entry type {other:?}"),
    }
    apply_metadata(entry, &header, &path)?;
    Ok(size)
}
// ANCHOR_END: unpack_entry

/// Owner, mode, extended attributes and modification time, as the archive
/// says. The owner first: chown(2) clears the set-user-ID bits that the mode
/// may set.
fn apply_metadata<R: Read>(
    entry: &mut tar::Entry<R>,
    header: &tar::Header,
    path: &Path,
) -> Result<()> {
    let context = || format!("setting the metadata of {}", path.display());
    // An empty numeric field reads as 0, as Go's archive/tar (which wrote most
    // of the world's layers) reads it.
    let uid = header.uid().unwrap_or(0) as u32;
    let gid = header.gid().unwrap_or(0) as u32;
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(context)?;
    let is_symlink = header.entry_type() == tar::EntryType::Symlink;
    if !is_symlink {
        let mode = header.mode().unwrap_or(0) & 0o7777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).with_context(context)?;
    }
    // Extended attributes travel as PAX records `SCHILY.xattr.NAME`: file
    // capabilities (`security.capability`, which ping needs) among them.
    if let Some(extensions) = entry.pax_extensions().with_context(context)? {
        for extension in extensions {
            let extension = extension.with_context(context)?;
            if let Some(name) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                xattr::set(path, OsStr::from_bytes(name), extension.value_bytes()).with_context(
                    || {
                        format!(
                            "setting the extended attribute {} of {}",
                            String::from_utf8_lossy(name),
                            path.display()
                        )
                    },
                )?;
            }
        }
    }
    if header.entry_type() != tar::EntryType::Directory {
        set_mtime(path, header.mtime().unwrap_or(0))?;
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
    fn paths_stay_below_the_layer() {
        assert_eq!(relative_path(b"./bin/sh").unwrap(), Path::new("bin/sh"));
        assert_eq!(relative_path(b"bin/./sh").unwrap(), Path::new("bin/sh"));
        assert_eq!(relative_path(b"./").unwrap(), Path::new(""));
        for bad in [&b"../x"[..], b"a/../../x", b"/etc/passwd", b"a/.."] {
            assert!(
                relative_path(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
