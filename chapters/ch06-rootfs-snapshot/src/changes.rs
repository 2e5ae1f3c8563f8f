//! What a container changed, read from its writable layer: the `docker diff`
//! view. Everything the container wrote is in the overlay's upper directory:
//!
//! - a path there that no image layer has was **A**dded;
//! - a path there that an image layer has was **C**hanged (copied up and
//!   written, or a directory that holds a change);
//! - a whiteout there (a 0/0 character device) means the path was **D**eleted;
//! - an *opaque* directory there replaced the image's: everything the image had
//!   in it and the container did not write again was **D**eleted.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ch01_fork_exec::narrate;

use crate::snapshot::{Snapshot, Snapshotter, is_opaque, is_whiteout};

/// What happened to a path, as `docker diff` says it: A, C or D.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `A`: the image did not have it.
    Added,
    /// `C`: the image had it, and the container wrote to it (or below it).
    Changed,
    /// `D`: the image had it, and the container removed it.
    Deleted,
}

/// One line of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Added, changed or deleted.
    pub kind: ChangeKind,
    /// The path as the container sees it.
    pub path: PathBuf,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match self.kind {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        };
        write!(f, "{letter} {}", self.path.display())
    }
}

// ANCHOR: print
/// Prints `docker diff`'s view of a container: one `A|C|D /path` line each.
/// (`minibox run` refuses `--diff` with the copy snapshotter up front.) A
/// reader that stops early (`| head -1`) ends the listing, not minibox.
pub fn print(snapshot: &Snapshot) -> Result<()> {
    if snapshot.snapshotter == Snapshotter::Copy {
        bail!("diff needs the overlay snapshotter: a copy keeps no record of what changed");
    }
    for change in changes(&snapshot.upper(), &snapshot.layers)? {
        narrate::print(change)?;
    }
    Ok(())
}
// ANCHOR_END: print

// ANCHOR: changes
/// Every change in `upper` (a container's writable layer) against the image's
/// `layers`, sorted by path like `docker diff`.
pub fn changes(upper: &Path, layers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut found = Vec::new();
    walk(upper, Path::new("/"), layers, &mut found)?;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn walk(dir: &Path, inside: &Path, layers: &[PathBuf], found: &mut Vec<Change>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = inside.join(entry.file_name());
        let meta = fs::symlink_metadata(entry.path())?;
        let kind = if is_whiteout(&meta) {
            ChangeKind::Deleted
        } else if in_image(&path, layers) {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        found.push(Change {
            kind,
            path: path.clone(),
        });
        if meta.is_dir() {
            if kind == ChangeKind::Changed && is_opaque(&entry.path()) {
                // Replaced: what the image had here and the container did not
                // write again is gone.
                let written: BTreeSet<OsString> = fs::read_dir(entry.path())?
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<_, _>>()?;
                for name in image_entries(&path, layers).difference(&written) {
                    found.push(Change {
                        kind: ChangeKind::Deleted,
                        path: path.join(name),
                    });
                }
            }
            walk(&entry.path(), &path, layers, found)?;
        }
    }
    Ok(())
}

/// What the image has in directory `path`: the layers merged bottom to top, as
/// overlayfs shows them (whiteouts remove, opaque directories start afresh).
fn image_entries(path: &Path, layers: &[PathBuf]) -> BTreeSet<OsString> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let mut names = BTreeSet::new();
    for layer in layers {
        let dir = layer.join(relative);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {
                if is_opaque(&dir) {
                    names.clear();
                }
                for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let whiteout = entry.metadata().is_ok_and(|m| is_whiteout(&m));
                    if whiteout {
                        names.remove(&entry.file_name());
                    } else {
                        names.insert(entry.file_name());
                    }
                }
            }
            Ok(_) => names.clear(), // a file or a whiteout replaced the directory
            Err(_) => {}
        }
    }
    names
}

/// Whether the image has `path`: the topmost layer that mentions it decides
/// (a whiteout there means it was deleted by that layer).
fn in_image(path: &Path, layers: &[PathBuf]) -> bool {
    let relative = path.strip_prefix("/").unwrap_or(path);
    for layer in layers.iter().rev() {
        if let Ok(meta) = fs::symlink_metadata(layer.join(relative)) {
            return !is_whiteout(&meta);
        }
    }
    false
}
// ANCHOR_END: changes
