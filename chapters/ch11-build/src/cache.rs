//! The build cache. A step's **key** is a digest of its parent's key and of
//! everything that decides what the step makes: the instruction as it will
//! run (variables expanded), the build arguments a `RUN` sees, and for `COPY`
//! and `ADD` the fingerprint of the files they bring in. Two steps with the
//! same key make the same image, so the second can reuse the first's: its
//! config and its layers. A changed file changes its `COPY`'s key, and so the
//! key of every later step, which chains from it.
//!
//! The cache is one JSON file in the store (`build-cache.json`), key → the
//! step's image. An entry is only used while everything it names is still in
//! the store: `image prune` may have removed its layers.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ch07_image_pull::digest;
use ch07_image_pull::store::{Store, write_atomically};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::image::Layer;

/// What a step made: its image's config and layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The config blob's digest: the step's image ID.
    pub config: String,
    /// Its layers, bottom first.
    pub layers: Vec<Layer>,
}

/// The cache of a store.
pub struct Cache {
    path: PathBuf,
    lock: PathBuf,
}

// ANCHOR: key
/// The key of a step: its parent's key, then what it does.
pub fn key(parent: &str, step: &str) -> String {
    digest::sha256(format!("{parent}\n{step}").as_bytes())
}
// ANCHOR_END: key

impl Cache {
    /// The cache kept in `store`.
    pub fn of(store: &Store) -> Cache {
        Cache {
            path: store.root.join("build-cache.json"),
            lock: store.root.join("build-cache.lock"),
        }
    }

    /// The entry for `key`, if there is one and everything it names is in
    /// `store`.
    pub fn get(&self, store: &Store, key: &str) -> Result<Option<Entry>> {
        let Some(entry) = self.entries()?.remove(key) else {
            return Ok(None);
        };
        let config = store.blob_path(&entry.config)?.is_file();
        // Unpacked layers are what a build needs; their compressed blobs
        // only a push or a save, which say so if one is missing.
        let layers = entry
            .layers
            .iter()
            .all(|layer| store.has_layer(&layer.diff_id).unwrap_or(false));
        Ok((config && layers).then_some(entry))
    }

    /// Records what the step with `key` made. Two builds may finish at once:
    /// the read-modify-write happens under an exclusive `flock`, and the new
    /// file replaces the old in one rename.
    pub fn put(&self, key: &str, entry: Entry) -> Result<()> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .with_context(|| format!("opening {}", self.lock.display()))?;
        let _lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("locking {}", self.lock.display()))?;
        let mut entries = self.entries()?;
        entries.insert(key.to_string(), entry);
        write_atomically(&self.path, &serde_json::to_vec_pretty(&entries)?)
    }

    /// The layers' diff_ids every entry names: what `image prune` must keep
    /// for the cache to stay useful.
    pub fn entries(&self) -> Result<BTreeMap<String, Entry>> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_and_entries_need_their_blobs() {
        let a = key("sha256:base", "RUN make");
        assert_eq!(a, key("sha256:base", "RUN make"));
        assert_ne!(a, key("sha256:other", "RUN make"));
        assert_ne!(
            key(&a, "COPY x"),
            key(&key("sha256:base", "RUN make "), "COPY x")
        );

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = Cache::of(&store);
        let config = digest::sha256(b"{}");
        let entry = Entry {
            config: config.clone(),
            layers: Vec::new(),
        };
        cache.put(&a, entry.clone()).unwrap();
        // The config blob is not in the store: no hit.
        assert_eq!(cache.get(&store, &a).unwrap(), None);
        store.write_blob(&config, b"{}").unwrap();
        assert_eq!(cache.get(&store, &a).unwrap(), Some(entry));
        assert_eq!(cache.get(&store, &key(&a, "x")).unwrap(), None);
    }
}
