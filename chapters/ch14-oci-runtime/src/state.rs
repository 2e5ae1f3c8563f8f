//! The runtime's state: one directory per container under `--root`, which
//! every command of the lifecycle reads, since each is a separate process.
//!
//! ```text
//! ROOT/ID/state.json    what create recorded (Record)
//! ROOT/ID/config.json   the bundle's config, as create read it (for exec, delete's hooks)
//! ROOT/ID/exec.fifo     present from create until start (the init waits on it)
//! ```
//!
//! The status is never stored: it is read from the kernel each time
//! ([`Record::status`]), as runc does. A stored "running" would be wrong the
//! moment the process exited, and nobody would be there to correct it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ch09_networking::ipam::Holder;
use serde::{Deserialize, Serialize};

/// The exec FIFO's name in a container's state directory.
pub const EXEC_FIFO: &str = "exec.fifo";

// ANCHOR: record
/// What `create` records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Its ID.
    pub id: String,
    /// Its init, by PID and start time (a reused PID is not it).
    pub init: Holder,
    /// The bundle's absolute path.
    pub bundle: PathBuf,
    /// The root filesystem's absolute path.
    pub rootfs: PathBuf,
    /// When it was created (RFC 3339).
    pub created: String,
    /// config.json's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its cgroup's directories, one per hierarchy.
    pub cgroups: Vec<PathBuf>,
    /// The directories its creation made (removed by `delete`).
    pub cgroups_created: Vec<PathBuf>,
    /// The user who created it.
    pub owner: u32,
}
// ANCHOR_END: record

/// The statuses of the specification, and runc's `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is still at work.
    Creating,
    /// The init waits on the exec FIFO.
    Created,
    /// The user's program runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init has ended.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(word)
    }
}

// ANCHOR: oci_state
/// `state`'s output: the specification's fields, and runc's extras
/// (`rootfs`, `created`, `owner`), which podman reads.
#[derive(Debug, Serialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    oci_version: &'static str,
    id: String,
    pid: i32,
    status: Status,
    bundle: PathBuf,
    rootfs: PathBuf,
    created: String,
    owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}
// ANCHOR_END: oci_state

/// The specification's version minibox implements.
pub const OCI_VERSION: &str = "1.2.0";

/// The version `spec` writes into a new config.json: the oldest that has
/// every field it uses, so that other runtimes accept the bundle too (crun
/// 1.8 refuses a config.json newer than it knows).
pub const SPEC_VERSION: &str = "1.0.2";

impl Record {
    // ANCHOR: status
    /// The container's status now: stopped once its init has ended (a
    /// zombie counts as ended); created while the exec FIFO exists; paused
    /// while its cgroup is frozen; else running.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.init.is_alive() {
            return Status::Stopped;
        }
        if dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.frozen() {
            return Status::Paused;
        }
        Status::Running
    }
    // ANCHOR_END: status

    /// Whether the cgroup freezer holds the container (v1 `freezer.state`,
    /// v2 `cgroup.freeze`).
    pub fn frozen(&self) -> bool {
        self.cgroups.iter().any(|dir| {
            let v1 = fs::read_to_string(dir.join("freezer.state"));
            let v2 = fs::read_to_string(dir.join("cgroup.freeze"));
            v1.is_ok_and(|s| s.trim() == "FROZEN") || v2.is_ok_and(|s| s.trim() == "1")
        })
    }

    /// The state as `state` prints it and hooks read it on stdin.
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION,
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.init.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

/// The containers' state directories under `--root`.
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store at `root`, made (0700) if missing.
    pub fn open(root: &Path) -> Result<Store> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("creating the state root {}", root.display()))?;
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// The directory of container `id`, after checking the ID: it names a
    /// directory, so it must not be a path.
    pub fn dir(&self, id: &str) -> Result<PathBuf> {
        let valid = !id.is_empty()
            && id.len() <= 1024
            && id != "."
            && id != ".."
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
        if !valid {
            bail!("invalid container id format: {id:?}");
        }
        Ok(self.root.join(id))
    }

    /// Makes container `id`'s directory; fails if the ID is taken.
    pub fn make(&self, id: &str) -> Result<PathBuf> {
        let dir = self.dir(id)?;
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id exists: {id}")
            }
            Err(e) => Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }

    /// Container `id`'s record and directory.
    pub fn load(&self, id: &str) -> Result<(Record, PathBuf)> {
        let dir = self.dir(id)?;
        let text = match fs::read_to_string(dir.join("state.json")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container does not exist: {id}")
            }
            Err(e) => return Err(e).with_context(|| format!("reading {id}'s state")),
        };
        let record =
            serde_json::from_str(&text).with_context(|| format!("parsing {id}'s state"))?;
        Ok((record, dir))
    }

    /// Writes `record` into `dir` atomically (a temporary file renamed).
    pub fn save(&self, dir: &Path, record: &Record) -> Result<()> {
        let json = serde_json::to_vec(record)?;
        ch07_image_pull::store::write_atomically(&dir.join("state.json"), &json)
    }

    /// Every container's ID, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.root).context("reading the state root")? {
            let entry = entry?;
            if entry.path().join("state.json").exists() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_paths_are_refused() {
        let store = Store {
            root: PathBuf::from("/nonexistent"),
        };
        for bad in ["", "..", "a/b", "../x", "a b"] {
            assert!(store.dir(bad).is_err(), "{bad:?}");
        }
        assert!(store.dir("abc-123_x.y+z").is_ok());
    }
}
