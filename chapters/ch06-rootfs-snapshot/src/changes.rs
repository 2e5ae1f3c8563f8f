//! What a container changed, read from its writable layer: the `docker diff`
//! view. Everything the container wrote is in the overlay's upper directory:
//!
//! - a path there that no image layer has was **A**dded;
//! - a path there that an image layer has was **C**hanged (copied up and
//!   written, or a directory that holds a change);
//! - a whiteout there (a 0/0 character device) means the path was **D**eleted.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::snapshot::is_whiteout;

/// One line of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// A, C or D.
    pub kind: char,
    /// The path as the container sees it.
    pub path: PathBuf,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.path.display())
    }
}

// ANCHOR: changes
/// Every change in `upper` (a container's writable layer) against the image's
/// `layers`, sorted by path like `docker diff`.
pub fn changes(upper: &Path, layers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut found = Vec::new();
    walk(upper, Path::new("/"), layers, &mut found)?;
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
            'D'
        } else if in_image(&path, layers) {
            'C'
        } else {
            'A'
        };
        found.push(Change {
            kind,
            path: path.clone(),
        });
        if meta.is_dir() {
            walk(&entry.path(), &path, layers, found)?;
        }
    }
    Ok(())
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
