//! `COPY` and `ADD` inside the image's root: files, directories and
//! symlinks copied with their modes (or `--chmod`), owned by root (or
//! `--chown`), and local tar archives unpacked by `ADD`.
//!
//! The root is the merged view of a build step's overlay ([`crate::filesystem`]),
//! seen from the host's side, so an image's absolute symlink (`/app -> /etc`)
//! must not lead a copy to the host's `/etc`: every destination is resolved
//! inside the root, as if the root were `/`, by chapter 4's `open_in_root`,
//! as chapter 4 resolves its mount points.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ch04_mount_namespace::in_root::{self, Place, TargetKind};
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmodat, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat, symlinkat};

/// Who copied files belong to, and their mode if `--chmod` says.
#[derive(Debug, Clone, Copy)]
pub struct Attributes {
    /// Owner: root (0:0) unless `--chown`.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `--chmod`: the permission bits of every copied file and directory.
    pub mode: Option<u32>,
}

// ANCHOR: copy
/// Copies one entry, `source` (a file, a symlink, or a directory without
/// its contents), to `dest`, a path in the image resolved inside `root` by
/// chapter 4's `open_in_root`: missing directories on the way are made, root
/// owned and 0755 as Docker makes them. A file or a link is made relative to
/// the descriptor of the directory it goes in, never through a path the
/// image could redirect. Modes and times come along; owners become
/// `attributes`'s.
pub fn copy_entry(source: &Path, root: &Path, dest: &Path, attributes: Attributes) -> Result<()> {
    let meta =
        fs::symlink_metadata(source).with_context(|| format!("reading {}", source.display()))?;
    if meta.is_dir() {
        let dir = in_root::open_in_root(root, dest, TargetKind::Dir)?;
        return apply((AT_FDCWD, &dir.proc_path()), dest, &meta, attributes);
    }
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        bail!("cannot copy {} to {}", source.display(), dest.display());
    };
    let dir = in_root::open_in_root(root, parent, TargetKind::Dir)?;
    match dir.entry_kind(name)? {
        Some(SFlag::S_IFDIR) => bail!(
            "cannot copy {} over the directory {}",
            source.display(),
            dest.display()
        ),
        Some(_) => dir.remove(name)?,
        None => {}
    }
    if meta.file_type().is_symlink() {
        symlinkat(&fs::read_link(source)?, &dir, name)
            .with_context(|| format!("creating the symlink {}", dest.display()))?;
    } else if meta.is_file() {
        copy_file(source, &dir, name).with_context(|| format!("copying to {}", dest.display()))?;
    } else {
        bail!("{}: not a file, a directory or a symlink", source.display());
    }
    apply((dir.as_fd(), Path::new(name)), dest, &meta, attributes)
}
// ANCHOR_END: copy

/// Copies the bytes of `source` into a new file `name` in `dir`, made with
/// `O_CREAT|O_EXCL|O_NOFOLLOW`: never through a link.
fn copy_file(source: &Path, dir: &Place, name: &OsStr) -> Result<()> {
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY;
    let to = openat(
        dir,
        name,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    std::io::copy(&mut File::open(source)?, &mut File::from(to))?;
    Ok(())
}

/// [`copy_entry`], and for a directory everything below it: `COPY --from`,
/// whose source is another image's files.
pub fn copy(source: &Path, root: &Path, dest: &Path, attributes: Attributes) -> Result<()> {
    copy_entry(source, root, dest, attributes)?;
    if fs::symlink_metadata(source)?.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(source)
            .with_context(|| format!("reading {}", source.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            copy(
                &entry.path(),
                root,
                &dest.join(entry.file_name()),
                attributes,
            )?;
        }
    }
    Ok(())
}

/// Owner, mode and modification time of a copied entry: `name` in `dir`
/// (for a directory, its `/proc/self/fd/N`), `dest` in messages. A link
/// itself is changed, not what it points to; a file or a directory is the
/// one the copy just made.
fn apply(
    (dir, name): (BorrowedFd<'_>, &Path),
    dest: &Path,
    source: &fs::Metadata,
    attributes: Attributes,
) -> Result<()> {
    let link = source.file_type().is_symlink();
    let (uid, gid) = (Uid::from_raw(attributes.uid), Gid::from_raw(attributes.gid));
    let (at, times) = match link {
        true => (
            AtFlags::AT_SYMLINK_NOFOLLOW,
            UtimensatFlags::NoFollowSymlink,
        ),
        false => (AtFlags::empty(), UtimensatFlags::FollowSymlink),
    };
    fchownat(dir, name, Some(uid), Some(gid), at)
        .with_context(|| format!("chown {}", dest.display()))?;
    if !link {
        // After the owner: chown(2) clears the set-user-ID bit the mode may set.
        let mode = Mode::from_bits_truncate(attributes.mode.unwrap_or(source.mode() & 0o7777));
        fchmodat(dir, name, mode, FchmodatFlags::FollowSymlink)
            .with_context(|| format!("chmod {}", dest.display()))?;
    }
    let mtime = TimeSpec::new(source.mtime(), source.mtime_nsec());
    utimensat(dir, name, &mtime, &mtime, times)
        .with_context(|| format!("setting the times of {}", dest.display()))
}

/// Whether `path` inside `root` is a directory, a link to one followed
/// inside the root: a copy there goes into it, as Docker's.
pub fn is_dir_in_root(root: &Path, path: &Path) -> Result<bool> {
    match in_root::find_in_root(root, path)? {
        Some(place) => place.is_dir(),
        None => Ok(false),
    }
}

/// Where `path` inside `root` (another image's files, for `COPY --from`) is
/// on the host, resolved inside `root` but for its last component, which is
/// copied as it is (a link as a link). `None` if it does not exist. The
/// kernel names the directory (`/proc/self/fd/N` read as a link), so no link
/// of the image's is left in the path.
pub fn source_in_root(root: &Path, path: &Path) -> Result<Option<PathBuf>> {
    let Some(name) = path.file_name() else {
        return Ok(Some(root.to_path_buf()));
    };
    let Some(dir) = in_root::find_in_root(root, path.parent().unwrap_or(Path::new("/")))? else {
        return Ok(None);
    };
    if dir.entry_kind(name)?.is_none() {
        return Ok(None);
    }
    let host = fs::read_link(dir.proc_path())
        .with_context(|| format!("locating {}", dir.shown().display()))?;
    Ok(Some(host.join(name)))
}

/// Whether `path` is a tar archive, plain or gzip-compressed, told by its
/// first bytes as Docker tells it (not by its name).
pub fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let n = file.read(&mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

/// `ADD`: unpacks the archive at `path` into `dest` (inside `root`), with
/// the owners and modes it records, as Docker does.
pub fn unpack(path: &Path, root: &Path, dest: &Path) -> Result<()> {
    // Kept open while tar works: tar reaches the directory through its
    // `/proc/self/fd/N` (and names it by the path that leads to).
    let target = in_root::open_in_root(root, dest, TargetKind::Dir)?;
    let mut file = BufReader::new(File::open(path)?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = match gzip {
        true => Box::new(flate2::read::GzDecoder::new(file)),
        false => Box::new(file),
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    // `unpack` refuses entries that would land outside `target` (`..`,
    // absolute names), and links out of it.
    archive
        .unpack(target.proc_path())
        .with_context(|| format!("unpacking {} into {}", path.display(), dest.display()))
}

/// `--chown=USER[:GROUP]`: numbers as they are, names looked up in the
/// image's `/etc/passwd` and `/etc/group`; without a group, the user's own
/// primary group, as Docker does.
pub fn owner(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = read_in_root(root, "/etc/passwd")?;
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => (uid, uid),
        Err(_) => lookup(&passwd, user).with_context(|| {
            format!("unable to find user {user}: no matching entries in passwd file")
        })?,
    };
    let gid = match group {
        None => primary,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = read_in_root(root, "/etc/group")?;
                lookup(&groups, group)
                    .map(|(gid, _)| gid)
                    .with_context(|| {
                        format!("unable to find group {group}: no matching entries in group file")
                    })?
            }
        },
    };
    Ok((uid, gid))
}

/// The image's file at `path`, resolved inside `root`; empty if missing or
/// unreadable (then no name is found in it).
fn read_in_root(root: &Path, path: &str) -> Result<String> {
    let place = in_root::find_in_root(root, Path::new(path))?;
    Ok(place
        .and_then(|place| fs::read_to_string(place.proc_path()).ok())
        .unwrap_or_default())
}

/// `name:x:ID:GID:...` lines: the ID and the fourth field (for passwd, the
/// primary group).
fn lookup(file: &str, name: &str) -> Option<(u32, u32)> {
    file.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name) && fields.len() >= 3).then(|| {
            let id = fields[2].parse().ok()?;
            let gid = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            Some((id, gid))
        })?
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use tempfile::tempdir;

    use super::*;

    #[test]
    fn copies_follow_the_image_s_links_inside_the_root_only() {
        let [src, root, outside] = [(); 3].map(|()| tempdir().unwrap());
        let r = root.path();
        fs::create_dir_all(r.join("real/dir")).unwrap();
        symlink("/real", r.join("abs")).unwrap();
        symlink("../../real", r.join("real/dir/up")).unwrap();
        // A link to a directory of the host's, which the root lacks.
        let host = outside.path().to_str().unwrap();
        symlink(host, r.join("escape")).unwrap();
        fs::write(src.path().join("f"), "f").unwrap();
        let attributes = Attributes {
            uid: 0,
            gid: 0,
            mode: None,
        };
        let copy_to =
            |dest: &str| copy_entry(&src.path().join("f"), r, Path::new(dest), attributes);
        copy_to("/abs/dir/a").unwrap();
        assert!(r.join("real/dir/a").is_file());
        copy_to("/real/dir/up/dir/b").unwrap();
        assert!(r.join("real/dir/b").is_file());
        // The host's directory is never reached: the link is the image's,
        // and leads nowhere in the root ...
        assert!(copy_to("/escape/c").is_err());
        // ... or to the root's own directory of that name.
        let inside = r.join(outside.path().strip_prefix("/").unwrap());
        fs::create_dir_all(&inside).unwrap();
        copy_to("/escape/c").unwrap();
        assert!(inside.join("c").is_file());
        assert!(is_dir_in_root(r, Path::new("/escape")).unwrap());
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
        // The last component is not followed: a link there is replaced.
        copy_to("/escape").unwrap();
        assert!(fs::symlink_metadata(r.join("escape")).unwrap().is_file());
        assert_eq!(
            source_in_root(r, Path::new("/abs")).unwrap(),
            Some(r.canonicalize().unwrap().join("abs"))
        );
        assert_eq!(source_in_root(r, Path::new("/nothing")).unwrap(), None);
    }

    #[test]
    fn a_directory_s_contents_are_copied_with_modes_and_new_owners() {
        let (src, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::create_dir_all(src.path().join("d/sub")).unwrap();
        fs::write(src.path().join("d/run.sh"), "echo hi").unwrap();
        fs::set_permissions(
            src.path().join("d/run.sh"),
            fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        symlink("run.sh", src.path().join("d/link")).unwrap();
        fs::write(src.path().join("d/sub/f"), "f").unwrap();
        let attributes = Attributes {
            uid: 0,
            gid: 0,
            mode: None,
        };
        copy(
            &src.path().join("d"),
            root.path(),
            Path::new("/app"),
            attributes,
        )
        .unwrap();
        let app = root.path().join("app");
        assert_eq!(fs::read_to_string(app.join("run.sh")).unwrap(), "echo hi");
        assert_eq!(
            fs::metadata(app.join("run.sh")).unwrap().mode() & 0o777,
            0o750
        );
        assert_eq!(
            fs::read_link(app.join("link")).unwrap(),
            Path::new("run.sh")
        );
        assert_eq!(fs::read_to_string(app.join("sub/f")).unwrap(), "f");
        let chmod = Attributes {
            mode: Some(0o700),
            ..attributes
        };
        copy(
            &src.path().join("d/sub/f"),
            root.path(),
            Path::new("/x/y/f2"),
            chmod,
        )
        .unwrap();
        assert_eq!(
            fs::metadata(root.path().join("x/y/f2")).unwrap().mode() & 0o777,
            0o700
        );
        assert_eq!(
            fs::metadata(root.path().join("x/y")).unwrap().mode() & 0o777,
            0o755
        );
    }

    #[test]
    fn add_unpacks_where_the_destination_leads_inside_the_root() {
        let [work, root] = [(); 2].map(|()| tempdir().unwrap());
        fs::create_dir(root.path().join("real")).unwrap();
        symlink("/real", root.path().join("opt")).unwrap();
        let archive = work.path().join("bundle.tar");
        let mut builder = tar::Builder::new(File::create(&archive).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, "sub/inside.txt", &b"inside"[..])
            .unwrap();
        builder.finish().unwrap();
        drop(builder);
        assert!(is_archive(&archive));
        unpack(&archive, root.path(), Path::new("/opt")).unwrap();
        let unpacked = root.path().join("real/sub/inside.txt");
        assert_eq!(fs::read_to_string(unpacked).unwrap(), "inside");
    }

    #[test]
    fn owners_are_looked_up_in_the_image_s_files() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(owner(root.path(), "app").unwrap(), (1000, 1001));
        assert_eq!(owner(root.path(), "app:staff").unwrap(), (1000, 50));
        assert_eq!(owner(root.path(), "7:8").unwrap(), (7, 8));
        let err = owner(root.path(), "nobody").unwrap_err().to_string();
        assert!(err.contains("unable to find user nobody"), "{err}");
    }
}
