//! What a pull must have extracted: the image's regular files and their bytes,
//! counted from the layers themselves and from what a tool left on disk, so
//! that a no-op cannot look fast.

use std::fs::{self, File};
use std::path::Path;

use anyhow::{Context, Result, ensure};

use super::LayerFile;

/// How many regular files an image or a directory tree holds, and their bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Contents {
    pub(super) files: u64,
    pub(super) bytes: u64,
}

impl Contents {
    /// The regular files in `dir` and below, symlinks not followed.
    pub(super) fn on_disk(dir: &Path) -> Result<Contents> {
        let mut total = Contents::default();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries =
                fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
                let kind = entry.file_type().context("file type")?;
                if kind.is_dir() {
                    dirs.push(entry.path());
                } else if kind.is_file() {
                    total.files += 1;
                    total.bytes += entry.metadata().context("metadata")?.len();
                }
            }
        }
        Ok(total)
    }

    /// Fails unless `found` has at least these files and bytes. At least, not
    /// exactly: a store may keep files of its own beside the layers' (markers,
    /// metadata), but a pull that did not extract everything has fewer.
    pub(super) fn check(&self, found: &Contents, what: &str) -> Result<()> {
        // Said once per place checked, not once per run.
        static NOTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut noted = NOTED.lock().unwrap_or_else(|e| e.into_inner());
        if (found.files != self.files || found.bytes != self.bytes)
            && !noted.iter().any(|w| w == what)
        {
            noted.push(what.to_string());
            eprintln!(
                "xtask: note: {what} holds {} regular files of {} bytes, the image {} of {}",
                found.files, found.bytes, self.files, self.bytes
            );
        }
        ensure!(
            found.files >= self.files && found.bytes >= self.bytes,
            "{what} holds {} regular files of {} bytes, the image {} of {} bytes: \
             the pull did not extract the image",
            found.files,
            found.bytes,
            self.files,
            self.bytes
        );
        Ok(())
    }
}

/// The regular files the image's layers hold, read from the layers themselves.
pub(super) fn contents(layers: &[LayerFile]) -> Result<Contents> {
    let mut total = Contents::default();
    for layer in layers {
        let file =
            File::open(&layer.path).with_context(|| format!("opening {}", layer.path.display()))?;
        let mut tar = tar::Archive::new(flate2::bufread::GzDecoder::new(std::io::BufReader::new(
            file,
        )));
        for entry in tar.entries().context("reading a layer")? {
            let entry = entry.context("reading a layer entry")?;
            if entry.header().entry_type().is_file() {
                total.files += 1;
                total.bytes += entry.size();
            }
        }
    }
    Ok(total)
}
