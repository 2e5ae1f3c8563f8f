//! `COPY` and `ADD` inside the image's root: files, directories and
//! symlinks copied with their modes (or `--chmod`), owned by root (or
//! `--chown`), and local tar archives unpacked by `ADD`.
//!
//! The root is the merged view of a build step's overlay ([`crate::filesystem`]),
//! seen from the host's side, so an image's absolute symlink (`/app -> /etc`)
//! must not lead a copy to the host's `/etc`: every destination is resolved
//! inside the root, as if the root were `/` ([`resolve_in_root`]).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

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

// ANCHOR: resolve_in_root
/// `path` (absolute, as the image sees it) inside `root`, every symlink on
/// the way resolved as the image would resolve it, with `root` as `/`: an
/// absolute target starts again at `root`, `..` stops at it. The last
/// component is not followed if it is a symlink (it is what a copy replaces).
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf> {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<PathBuf> = path.components().map(|c| c.as_os_str().into()).collect();
    pending.reverse();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match Path::new(&part).components().next() {
            None | Some(Component::RootDir | Component::CurDir) => continue,
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        let last = pending.is_empty();
        let target = match fs::symlink_metadata(root.join(&candidate)) {
            Ok(meta) if meta.file_type().is_symlink() && !last => {
                fs::read_link(root.join(&candidate))?
            }
            _ => {
                resolved = candidate;
                continue;
            }
        };
        links += 1;
        if links > 40 {
            bail!("too many levels of symbolic links in {}", path.display());
        }
        if target.is_absolute() {
            resolved = PathBuf::new();
        }
        pending.extend(target.components().rev().map(|c| c.as_os_str().into()));
    }
    Ok(root.join(resolved))
}
// ANCHOR_END: resolve_in_root

/// Makes the directory `path` (inside `root`, as the image sees it) and its
/// missing parents, root-owned 0755 as Docker makes them; returns where it is.
pub fn make_dirs(root: &Path, path: &Path) -> Result<PathBuf> {
    let mut sofar = PathBuf::from("/");
    for part in path.components().skip_while(|c| *c == Component::RootDir) {
        sofar.push(part);
        let here = resolve_in_root(root, &sofar)?;
        match fs::symlink_metadata(&here) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                // A symlink to a directory: go through it.
                let through = resolve_in_root(root, &sofar.join("."))?;
                if !through.is_dir() {
                    fs::create_dir_all(&through)
                        .with_context(|| format!("creating {}", sofar.display()))?;
                }
            }
            Ok(_) => bail!("{}: not a directory", sofar.display()),
            Err(_) => {
                fs::create_dir(&here).with_context(|| format!("creating {}", sofar.display()))?;
                fs::set_permissions(&here, fs::Permissions::from_mode(0o755))?;
            }
        }
    }
    resolve_in_root(root, &sofar.join("."))
}

// ANCHOR: copy
/// Copies one entry, `source` (a file, a symlink, or a directory without
/// its contents), to `dest`, a path in the image resolved inside `root`.
/// Modes and times come along; owners become `attributes`'s.
pub fn copy_entry(source: &Path, root: &Path, dest: &Path, attributes: Attributes) -> Result<()> {
    let meta =
        fs::symlink_metadata(source).with_context(|| format!("reading {}", source.display()))?;
    if meta.is_dir() {
        let target = make_dirs(root, dest)?;
        return apply(&target, &meta, attributes);
    }
    if let Some(parent) = dest.parent() {
        make_dirs(root, parent)?;
    }
    let target = resolve_in_root(root, dest)?;
    if let Ok(existing) = fs::symlink_metadata(&target) {
        if existing.is_dir() {
            bail!(
                "cannot copy {} over the directory {}",
                source.display(),
                dest.display()
            );
        }
        fs::remove_file(&target).with_context(|| format!("replacing {}", dest.display()))?;
    }
    if meta.file_type().is_symlink() {
        symlink(fs::read_link(source)?, &target)
            .with_context(|| format!("creating the symlink {}", dest.display()))?;
    } else if meta.is_file() {
        fs::copy(source, &target).with_context(|| format!("copying to {}", dest.display()))?;
    } else {
        bail!("{}: not a file, a directory or a symlink", source.display());
    }
    apply(&target, &meta, attributes)
}
// ANCHOR_END: copy

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
// ANCHOR_END: copy

/// Owner, mode and modification time of a copied entry.
fn apply(target: &Path, source: &fs::Metadata, attributes: Attributes) -> Result<()> {
    std::os::unix::fs::lchown(target, Some(attributes.uid), Some(attributes.gid))
        .with_context(|| format!("chown {}", target.display()))?;
    if !source.file_type().is_symlink() {
        let mode = attributes.mode.unwrap_or(source.mode() & 0o7777);
        fs::set_permissions(target, fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", target.display()))?;
    }
    let mtime = TimeSpec::new(source.mtime(), source.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        target,
        &mtime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("setting the times of {}", target.display()))
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
    let target = make_dirs(root, dest)?;
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
        .unpack(&target)
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
    let passwd =
        fs::read_to_string(resolve_in_root(root, Path::new("/etc/passwd"))?).unwrap_or_default();
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
                let groups = fs::read_to_string(resolve_in_root(root, Path::new("/etc/group"))?)
                    .unwrap_or_default();
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
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("real/dir")).unwrap();
        symlink("/real", r.join("abs")).unwrap();
        symlink("../../real", r.join("real/dir/up")).unwrap();
        symlink("/etc", r.join("escape")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/abs/dir")).unwrap(),
            r.join("real/dir")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/real/dir/up/dir")).unwrap(),
            r.join("real/dir")
        );
        // The host's /etc is never reached: the link is the image's /etc.
        assert_eq!(
            resolve_in_root(r, Path::new("/escape/passwd")).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/../../x")).unwrap(),
            r.join("x")
        );
        // The last component is not followed.
        assert_eq!(
            resolve_in_root(r, Path::new("/escape")).unwrap(),
            r.join("escape")
        );
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
