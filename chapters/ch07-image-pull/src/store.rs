//! The image store: content-addressed, verified, written atomically, shared.
//!
//! Under `MINIBOX_ROOT` (default /var/lib/minibox), beside chapter 6's
//! `containers/`:
//!
//! ```text
//! blobs/sha256/HEX             manifests, indexes and configs, by digest
//! layers/sha256/DIFF_ID/fs/    each layer, unpacked once: an overlay lowerdir
//! layers/sha256/DIFF_ID/size   its unpacked size
//! layers/.partial-PID-N/       a layer being unpacked (never trusted)
//! images.json                  reference → what it was pulled as
//! lock                         flock(2)ed while images.json changes
//! ```
//!
//! Two rules keep it trustworthy. Nothing gets a final name before it is
//! verified: a blob's bytes must hash to its digest, a layer's uncompressed tar
//! to the image config's `diff_id`. And a final name appears in one step,
//! `rename(2)`, so minibox dying at any moment (a crash, a SIGKILL) leaves
//! either the old state or the new one, plus a `.partial` directory or a
//! `.tmp` file that no lookup ever returns.
//!
//! SIMPLIFICATION: that holds while the kernel survives. Against a power cut,
//! an unpacked layer's files and the directories a rename changed would also
//! have to be flushed (fsync) before the rename is trusted; containerd syncs
//! what it writes, minibox syncs only the index and blobs. Layers are keyed by their *uncompressed* digest, so two
//! images that share a layer share its directory, however each was compressed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::digest::{self, hex_part};

/// One pulled image, as the index records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// The digest of what the reference named: an index for a multi-platform
    /// image, else the manifest. `docker pull` prints this one as `Digest:`.
    pub digest: String,
    /// The manifest for this machine's (or `--platform`'s) platform.
    pub manifest: String,
    /// Its config: the image's ID.
    pub config: String,
    /// The layers' uncompressed digests, bottom first.
    pub diff_ids: Vec<String>,
    /// `os/arch[/variant]` of the manifest.
    pub platform: String,
}

/// The store at a root directory.
#[derive(Debug, Clone)]
pub struct Store {
    /// `MINIBOX_ROOT`.
    pub root: PathBuf,
}

static PARTIALS: AtomicUsize = AtomicUsize::new(0);

impl Store {
    /// The store at `root`, with its directories created.
    pub fn open(root: &Path) -> Result<Store> {
        for dir in ["blobs/sha256", "layers/sha256"] {
            let dir = root.join(dir);
            fs::create_dir_all(&dir)
                .with_context(|| format!("creating the store {}", dir.display()))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// The store at `root`, for reading only: nothing is created, and a store
    /// that does not exist yet is simply empty (`minibox images` on a fresh
    /// machine, without root).
    pub fn existing(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    // ANCHOR: blobs
    /// Where the blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blob_dir().join(hex_part(digest)?))
    }

    /// The directory of the blobs: where a blob written as a stream (chapter
    /// 11's layers) has its temporary file, so that its final name is one
    /// rename(2) away.
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// The blob `digest`, if the store has it.
    pub fn read_blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.blob_path(digest)?) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("reading the store"),
        }
    }

    /// Stores `bytes` as the blob `digest`, after checking that they are.
    pub fn write_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        digest::verify(&format!("blob {digest}"), digest, &digest::sha256(bytes))?;
        write_atomically(&self.blob_path(digest)?, bytes)
    }
    // ANCHOR_END: blobs

    // ANCHOR: layers
    /// The unpacked layer whose uncompressed digest is `diff_id`: the
    /// directory an overlay uses as a lowerdir.
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.layer_home(diff_id)?.join("fs"))
    }

    fn layer_home(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers/sha256").join(hex_part(diff_id)?))
    }

    /// Whether the layer is unpacked (only complete layers have their name).
    pub fn has_layer(&self, diff_id: &str) -> Result<bool> {
        Ok(self.layer_home(diff_id)?.is_dir())
    }

    /// A fresh directory to unpack a layer into, named after this process so
    /// that a later pull can tell an abandoned one from one in progress.
    pub fn begin_layer(&self) -> Result<PathBuf> {
        let n = PARTIALS.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .root
            .join(format!("layers/.partial-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir); // left by a dead process with our PID
        fs::create_dir_all(dir.join("fs"))
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// Gives a verified layer its final name. If another pull got there
    /// first, theirs is as good as ours (same content, same digest): ours goes.
    pub fn commit_layer(&self, partial: &Path, diff_id: &str, size: u64) -> Result<()> {
        fs::write(partial.join("size"), size.to_string())?;
        let home = self.layer_home(diff_id)?;
        match fs::rename(partial, &home) {
            Ok(()) => Ok(()),
            Err(_) if home.is_dir() => fs::remove_dir_all(partial)
                .with_context(|| format!("removing {}", partial.display())),
            Err(e) => Err(e)
                .with_context(|| format!("renaming {} to {}", partial.display(), home.display())),
        }
    }

    /// A layer's unpacked size in bytes.
    pub fn layer_size(&self, diff_id: &str) -> u64 {
        self.layer_home(diff_id)
            .ok()
            .and_then(|home| fs::read_to_string(home.join("size")).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Removes what pulls that died (a crash, SIGKILL) left half done:
    /// `.partial` directories and `.tmp` files of processes that no longer
    /// exist. Those of a pull still running are left alone.
    pub fn clean_abandoned(&self) {
        for dir in [self.root.join("layers"), self.root.join("blobs/sha256")] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix(".partial-")
                    .or_else(|| name.rsplit_once(".tmp-").map(|(_, pid)| pid))
                    .and_then(|rest| rest.split('-').next())
                    .and_then(|pid| pid.parse::<i32>().ok());
                if let Some(pid) = pid
                    && !process_exists(pid)
                {
                    let path = entry.path();
                    let _ = if path.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                }
            }
        }
    }
    // ANCHOR_END: layers

    // ANCHOR: index
    /// Every image the store knows, by canonical reference.
    pub fn images(&self) -> Result<BTreeMap<String, ImageRecord>> {
        let path = self.root.join("images.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The image `reference` (canonical) names, if it was pulled.
    pub fn image(&self, reference: &str) -> Result<Option<ImageRecord>> {
        Ok(self.images()?.remove(reference))
    }

    /// Records `reference` → `record`. Two pulls may finish at once: the
    /// read-modify-write of the index happens under an exclusive flock(2), and
    /// the new index replaces the old in one rename.
    pub fn tag(&self, reference: &str, record: ImageRecord) -> Result<()> {
        let _lock = self.lock()?;
        let mut images = self.images()?;
        images.insert(reference.to_string(), record);
        write_atomically(
            &self.root.join("images.json"),
            &serde_json::to_vec_pretty(&images)?,
        )
    }

    fn lock(&self) -> Result<Flock<fs::File>> {
        let path = self.root.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("locking {}", path.display()))
    }
    // ANCHOR_END: index
}

/// Taking images away again: chapter 10's `rmi`.
impl Store {
    /// Removes the name `reference` from the index, under the lock; returns
    /// what it named, if anything.
    pub fn untag(&self, reference: &str) -> Result<Option<ImageRecord>> {
        let _lock = self.lock()?;
        let mut images = self.images()?;
        let removed = images.remove(reference);
        if removed.is_some() {
            write_atomically(
                &self.root.join("images.json"),
                &serde_json::to_vec_pretty(&images)?,
            )?;
        }
        Ok(removed)
    }

    /// Removes the blob `digest`, if it is there.
    pub fn remove_blob(&self, digest: &str) -> Result<()> {
        match fs::remove_file(self.blob_path(digest)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing the blob {digest}"))
            }
            _ => Ok(()),
        }
    }

    /// Removes the unpacked layer `diff_id`: renamed aside first, so that no
    /// lookup finds half of it, then deleted.
    pub fn remove_layer(&self, diff_id: &str) -> Result<()> {
        let home = self.layer_home(diff_id)?;
        let n = PARTIALS.fetch_add(1, Ordering::Relaxed);
        let aside = self
            .root
            .join(format!("layers/.partial-{}-{n}", std::process::id()));
        match fs::rename(&home, &aside) {
            Ok(()) => {
                fs::remove_dir_all(&aside).with_context(|| format!("removing {}", aside.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", home.display())),
        }
    }
}

/// Writes `bytes` to `path` in one step: a temp file beside it, flushed, then
/// renamed over it. Readers see the old file or the new one, never half.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static TEMPS: AtomicUsize = AtomicUsize::new(0);
    let n = TEMPS.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().expect("a file name").to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        anyhow::anyhow!("writing {}: {e}", path.display())
    })
}

/// Whether a process with this PID exists (kill with signal 0 sends nothing).
fn process_exists(pid: i32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(errno) => errno != nix::errno::Errno::ESRCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_and_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = digest::sha256(b"{}");
        assert!(
            store.write_blob(&digest, b"{ }").is_err(),
            "wrong bytes are refused"
        );
        assert_eq!(
            store.read_blob(&digest).unwrap(),
            None,
            "and nothing is stored"
        );
        store.write_blob(&digest, b"{}").unwrap();
        assert_eq!(
            store.read_blob(&digest).unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file stays behind");
    }

    #[test]
    fn abandoned_partials_are_cleaned_but_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let live = store.begin_layer().unwrap();
        // PIDs above the kernel's maximum (4194304) never exist.
        let dead = dir.path().join("layers/.partial-99999999-0");
        fs::create_dir_all(&dead).unwrap();
        store.clean_abandoned();
        assert!(live.is_dir());
        assert!(!dead.exists());
    }

    #[test]
    fn a_layer_committed_twice_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let diff_id = digest::sha256(b"layer");
        for content in ["first", "second"] {
            let partial = store.begin_layer().unwrap();
            fs::write(partial.join("fs/file"), content).unwrap();
            store.commit_layer(&partial, &diff_id, 5).unwrap();
            assert!(!partial.exists());
        }
        let dir = store.layer_dir(&diff_id).unwrap();
        assert_eq!(fs::read_to_string(dir.join("file")).unwrap(), "first");
        assert_eq!(store.layer_size(&diff_id), 5);
    }
}
