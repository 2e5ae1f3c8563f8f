//! Containers on disk: what a container was created with, what it is doing
//! now, and how separate `minibox` processes share that knowledge safely.
//!
//! Chapter 9's `minibox run` kept everything about a container in its own
//! memory, so nothing else could see the container. From this chapter on a
//! container outlives the command that started it: `minibox ps` in a second
//! terminal lists it, `stop` and `rm` act on it. There is no daemon holding
//! the truth in memory, as Docker has; the truth is two directories, and
//! every `minibox` command reads and changes them:
//!
//! ```text
//! MINIBOX_ROOT/ (/var/lib/minibox, on disk: survives a reboot)
//!   names.lock                 flock(2)ed while the set of names changes
//!   containers/ID/config.json  the record: ID, name, created time, and the
//!                              chapter's config (image, command, ports, ...)
//! RUN/ (/run/minibox, a tmpfs: emptied by a reboot)
//!   ID/state.json              the state: created|running|paused|exited|dead,
//!                              PIDs and their start times, exit code, times
//!   ID/lock                    flock(2)ed while state.json changes
//! ```
//!
//! The record is written once (a rename changes the name in it); the state
//! changes all the time. The state lives in a tmpfs because it describes
//! processes, which a reboot ends anyway, as Docker splits `/var/lib/docker`
//! and `/run/docker`.
//!
//! Four ideas keep many concurrent `minibox` processes from ever seeing or
//! making a mess:
//!
//! - **Atomic rename.** A file is never written in place: the new contents go
//!   to a temporary file beside it, which `rename(2)` then puts in its place.
//!   `rename` within one file system is atomic: any reader opens either the
//!   old file or the new one, never half of either, without taking any lock.
//!   A new container is built the same way, as a `.tmp-` directory renamed to
//!   its ID when complete, and a removed one is first renamed aside to `.rm-`,
//!   so `ps` sees a whole container or none. A record's data is also
//!   flushed with `fsync(2)` before the rename: otherwise a power cut can
//!   leave the new name pointing at an empty file, since the kernel writes
//!   file data and directory entries back to the disk in its own order. A
//!   state is not: it describes processes, which a power cut ends anyway.
//! - **A lock file, not the data file.** Read-modify-write (change a state,
//!   reserve a name) needs mutual exclusion: an exclusive `flock(2)`. It is
//!   taken on a separate file that is never replaced, because the data file
//!   *is* replaced by every write: a lock on the old file's inode would not
//!   stop a process that opened the new one. A flock belongs to an open file
//!   description, so two threads that each open the lock file exclude each
//!   other just as two processes do, and the kernel drops the lock when the
//!   holder dies, even by SIGKILL: no stale lock to clean up.
//! - **Liveness by start time.** A state saying `running` is only a claim by a
//!   process that may since have died without a word (SIGKILL, OOM, a crash).
//!   Each read checks the claim: the PID must exist and have the same start
//!   time (`/proc/PID/stat`, field 22), because PIDs are reused, and a
//!   stranger with the old PID must not pass for the container. Chapter 9's
//!   [`Holder`] does exactly this check for address leases.
//! - **Names are reserved under a lock.** "Is the name free? Then take it" is
//!   two steps; without a lock, two `run --name web` could both see it free.
//!   Every change to the set of names (create, rename, remove) happens under
//!   `names.lock`.
// SIMPLIFICATION: Docker keeps every container in the daemon's memory (an
// in-memory database) and writes config.v2.json per container, state
// included, so the state survives a reboot; podman keeps its containers in a
// database (BoltDB, now SQLite) and asks the OCI runtime for the live state.
// minibox has no daemon: every command reads the directories again, which
// costs a few milliseconds with a hundred containers. After a reboot the
// state is gone with the tmpfs, and a container that was running reads as
// exited with code 255, minibox's code for an exit it never saw.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use ch03_uts_namespace::id;
use ch07_image_pull::store::write_atomically;
use ch09_networking::ipam::Holder;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::names::{self, RandomSource, SplitMix64};

/// The runtime state directory's default place, a tmpfs, as Docker's is
/// `/run/docker`. (The persistent root's is chapter 6's
/// `snapshot::DEFAULT_ROOT`, `/var/lib/minibox`.)
pub const DEFAULT_RUN_DIR: &str = "/run/minibox";

/// The runtime state directory: `$MINIBOX_RUN`, or [`DEFAULT_RUN_DIR`] (the
/// tests give each run a directory of its own, as they do `MINIBOX_ROOT`).
pub fn run_dir() -> PathBuf {
    std::env::var_os("MINIBOX_RUN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
}

/// The exit code a container gets when its exit was never recorded (its
/// process and monitor died together, or the machine restarted).
pub const UNKNOWN_EXIT_CODE: i32 = 255;

/// What a container is doing, in Docker's words (`State.Status` in `docker
/// inspect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made (record, snapshot) but never started.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Its processes are frozen (the cgroup freezer).
    Paused,
    /// Its process ended; the exit code is recorded.
    Exited,
    /// Ended, and about to be started again by its `--restart` policy.
    Restarting,
    /// Broken beyond starting again: only removing it makes sense. minibox
    /// says so when a container's monitor died without recording its exit.
    Dead,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
            Status::Restarting => "restarting",
            Status::Dead => "dead",
        })
    }
}

/// A container's record, `containers/ID/config.json`: what it was created
/// with. `C` is the chapter's own config (image, command, network settings,
/// ...); this module only stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record<C> {
    /// 64 hex digits, from chapter 3's [`id::new_id`].
    pub id: String,
    /// The name, without Docker's leading `/` (`docker ps` shows it so).
    pub name: String,
    /// When it was created, RFC 3339 with nanoseconds in the file.
    #[serde(with = "timestamp::required")]
    pub created: OffsetDateTime,
    /// Everything else it was created with, as the chapter defines it.
    pub config: C,
}

impl<C> Record<C> {
    /// The ID's first 12 digits, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        id::short(&self.id)
    }
}

/// A container's runtime state, `RUN/ID/state.json`. Written by whoever
/// changes it (the monitor, `stop`, `rm`) through [`Store::update`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// What the container is doing (as last written, or as [`observe`]
    /// corrected it).
    pub status: Status,
    /// The container's process (its PID 1 as the host sees it) and that
    /// process's start time, while it runs.
    pub process: Option<Holder>,
    /// The monitor that is the container's parent and records its exit:
    /// while it runs, and after its end too, while that monitor cleans up.
    pub monitor: Option<Holder>,
    /// The exit code once exited (128 + signal when killed by one).
    pub exit_code: i32,
    /// When it last started.
    #[serde(with = "timestamp::optional")]
    pub started_at: Option<OffsetDateTime>,
    /// When it last exited.
    #[serde(with = "timestamp::optional")]
    pub finished_at: Option<OffsetDateTime>,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// Why it failed to start, or why its state was corrected: empty if all is
    /// well.
    pub error: String,
    /// Its cgroup's directories, one per hierarchy (chapter 5's
    /// `Cgroup::paths`), while it runs: `exec` joins them.
    pub cgroups: Vec<PathBuf>,
    /// The cgroup directories its start made, parents included (chapter
    /// 5's `Cgroup::created`): what `rm` removes when the monitor died
    /// before it could, and nothing else.
    pub cgroups_created: Vec<PathBuf>,
    /// Its address on the bridge, while it runs.
    pub ip_address: Option<std::net::Ipv4Addr>,
    /// Its published ports as bound by this start (`docker port`), while it
    /// runs.
    pub published: Vec<crate::container::Published>,
    /// How many times its `--restart` policy started it again since its
    /// last manual start.
    pub restart_count: u32,
    /// Whether `stop`, `kill` or `rm -f` ended it: its restart policy then
    /// waits for a manual `start`.
    pub manually_stopped: bool,
}

/// A container as `ps` and `inspect` show it: its record and its state, the
/// state already checked against the living processes.
#[derive(Debug, Clone, PartialEq)]
pub struct Container<C> {
    /// What it was created with.
    pub record: Record<C>,
    /// What it is doing, as [`observe`] sees it.
    pub state: State,
}

/// What [`Store::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// This call removed the container.
    Removed,
    /// It was already gone: another removal got there first (or is finishing
    /// right now; the container is invisible either way).
    AlreadyGone,
}

/// The errors a caller may want to tell apart, with Docker's messages. They
/// come wrapped in `anyhow::Error`: `err.downcast_ref::<StoreError>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// An empty container reference.
    EmptyReference,
    /// No container has this ID, ID prefix or name.
    NoSuchContainer(String),
    /// Several IDs start with this prefix.
    AmbiguousPrefix(String),
    /// The name belongs to another container.
    NameInUse {
        /// The name, without the leading `/`.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// `rename` to the name the container already has.
    SameName,
    /// `rename` with an empty old or new name.
    EmptyRename,
}

// Docker's messages are kept word for word, capitals and periods included,
// because its users know them; this is the one place where minibox's rule
// (lowercase, no trailing period) gives way.
impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::EmptyReference => {
                f.write_str("invalid container name or ID: value is empty")
            }
            StoreError::NoSuchContainer(r) => write!(f, "No such container: {r}"),
            StoreError::AmbiguousPrefix(p) => {
                write!(f, "multiple IDs found with provided prefix: {p}")
            }
            StoreError::NameInUse { name, id } => write!(
                f,
                "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". \
                 You have to remove (or rename) that container to be able to reuse that name."
            ),
            StoreError::SameName => {
                f.write_str("Renaming a container with the same name as its current name")
            }
            StoreError::EmptyRename => f.write_str("Neither old nor new names may be empty"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The two directories, and every operation on containers in them.
#[derive(Debug, Clone)]
pub struct Store {
    /// `MINIBOX_ROOT`: the records, on disk.
    root: PathBuf,
    /// The runtime state directory, a tmpfs.
    run: PathBuf,
}

/// The record's part that lookups need: serde skips the rest of the file
/// (the chapter's config) without building it.
#[derive(Deserialize)]
struct Header {
    id: String,
    name: String,
}

impl Store {
    /// The store with its records under `root` (`MINIBOX_ROOT`) and its
    /// runtime state under `run` (`/run/minibox`). Nothing is touched until a
    /// method needs it; a store that does not exist yet is simply empty.
    pub fn new(root: &Path, run: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            run: run.to_path_buf(),
        }
    }

    /// `ROOT/containers/ID`: the record, and whatever the chapter keeps with
    /// it on disk (the snapshot, the log).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }

    /// `RUN/ID`: the state, and whatever the chapter keeps with it in the
    /// tmpfs (sockets, the monitor's files).
    pub fn runtime_dir(&self, id: &str) -> PathBuf {
        self.run.join(id)
    }

    fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    fn config_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("config.json")
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.runtime_dir(id).join("state.json")
    }

    /// Creates a container: a new ID, the name `name` (or a generated one),
    /// and `config`, with the state `created`. The name must be free: the
    /// error is Docker's conflict message ([`StoreError::NameInUse`]).
    pub fn create<C: Serialize>(&self, name: Option<&str>, config: C) -> Result<Record<C>> {
        let mut rng = SplitMix64::from_urandom()?;
        let id = id::new_id()?;
        self.create_with(&id, name, config, Keep::UntilRemoved, &mut rng, |_| Ok(()))
    }

    // ANCHOR: create
    /// [`Store::create`], with the ID (chapter 3's [`id::new_id`]), how long
    /// the record must last ([`Keep`]) and the name generator's random source
    /// given, and
    /// `fill` run on the container's directory before it appears (for files
    /// the container must have from its first moment, such as its snapshot).
    /// `fill` gets the temporary directory: it must not store that path.
    pub fn create_with<C: Serialize>(
        &self,
        id: &str,
        name: Option<&str>,
        config: C,
        keep: Keep,
        rng: &mut impl RandomSource,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Record<C>> {
        let wanted = name.map(names::validate).transpose()?.map(str::to_owned);
        check_id(id)?;
        let id = id.to_string();
        let mut record = Record {
            name: wanted.clone().unwrap_or_else(|| names::random_name(rng, 0)),
            id: id.clone(),
            created: OffsetDateTime::now_utc(),
            config,
        };
        // Everything is made under temporary names first, outside the lock:
        // a failure anywhere removes it all (`Leftovers`), and until the
        // final rename no other process can see the container.
        let mut leftovers = Leftovers::default();
        self.make_runtime_dir(&id, &State::default(), &mut leftovers)?;
        fs::create_dir_all(self.containers())
            .with_context(|| format!("create {}", self.containers().display()))?;
        let staged = self
            .containers()
            .join(format!(".tmp-{}-{id}", std::process::id()));
        make_private_dir(&staged, &mut leftovers)?;
        fill(&staged)?;
        write_record(&staged, &record, keep)?;
        {
            let _names = self.lock_names()?;
            let in_use = self.names_in_use()?;
            if let Some(holder) = in_use.get(&record.name) {
                if wanted.is_some() {
                    return Err(name_in_use(&record.name, holder));
                }
                record.name = names::generate(rng, &id, |n| in_use.contains_key(n));
                if let Some(holder) = in_use.get(&record.name) {
                    return Err(name_in_use(&record.name, holder));
                }
                write_record(&staged, &record, keep)?;
            }
            let dir = self.container_dir(&id);
            fs::rename(&staged, &dir)
                .with_context(|| format!("rename {} to {}", staged.display(), dir.display()))?;
        }
        leftovers.keep();
        Ok(record)
    }
    // ANCHOR_END: create

    /// Makes `RUN/ID` with `state` and the lock file, via a temporary
    /// directory, so that it too appears whole.
    fn make_runtime_dir(&self, id: &str, state: &State, leftovers: &mut Leftovers) -> Result<()> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.run)
            .with_context(|| format!("create {}", self.run.display()))?;
        let staged = self.run.join(format!(".tmp-{}-{id}", std::process::id()));
        make_private_dir(&staged, leftovers)?;
        File::create(staged.join("lock"))
            .with_context(|| format!("create {}", staged.join("lock").display()))?;
        write_state(&staged.join("state.json"), state)?;
        let dir = self.runtime_dir(id);
        fs::rename(&staged, &dir)
            .with_context(|| format!("rename {} to {}", staged.display(), dir.display()))?;
        leftovers.replace(&staged, dir);
        Ok(())
    }

    /// Takes `names.lock`: held while the set of names changes.
    fn lock_names(&self) -> Result<Flock<File>> {
        fs::create_dir_all(self.containers())
            .with_context(|| format!("create {}", self.containers().display()))?;
        let path = self.root.join("names.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        lock(file).with_context(|| format!("flock {}", path.display()))
    }

    /// Every committed container's ID and name (not those being made or
    /// removed, whose directories start with a dot).
    fn headers(&self) -> Result<Vec<Header>> {
        let mut headers = Vec::new();
        for id in self.ids()? {
            // `None`: removed since the directory was listed.
            if let Some(header) = read_record::<Header>(&self.config_path(&id))? {
                headers.push(header);
            }
        }
        Ok(headers)
    }

    /// Name → ID of every container.
    fn names_in_use(&self) -> Result<HashMap<String, String>> {
        Ok(self
            .headers()?
            .into_iter()
            .map(|h| (h.name, h.id))
            .collect())
    }

    /// The IDs of the containers' directories, unordered.
    fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(self.containers()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("read {}", self.containers().display()));
            }
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("read {}", self.containers().display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_full_id(&name) {
                ids.push(name);
            }
        }
        Ok(ids)
    }

    // ANCHOR: resolve
    /// The ID of the container `reference` names, in Docker's order: a full
    /// ID, then a name (with or without its `/`), then a unique ID prefix.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        if reference.is_empty() {
            return Err(StoreError::EmptyReference.into());
        }
        if is_full_id(reference) && self.config_path(reference).exists() {
            return Ok(reference.to_string());
        }
        let headers = self.headers()?;
        let name = reference.strip_prefix('/').unwrap_or(reference);
        if let Some(h) = headers.iter().find(|h| h.name == name) {
            return Ok(h.id.clone());
        }
        let mut matches = headers.iter().filter(|h| h.id.starts_with(reference));
        match (matches.next(), matches.next()) {
            (Some(h), None) => Ok(h.id.clone()),
            (None, _) => Err(StoreError::NoSuchContainer(reference.to_string()).into()),
            (Some(_), Some(_)) => Err(StoreError::AmbiguousPrefix(reference.to_string()).into()),
        }
    }
    // ANCHOR_END: resolve

    /// The container `reference` names (see [`Store::resolve`]), its state
    /// checked against the living processes.
    pub fn get<C: DeserializeOwned>(&self, reference: &str) -> Result<Container<C>> {
        let id = self.resolve(reference)?;
        self.load(&id)?
            .ok_or_else(|| StoreError::NoSuchContainer(reference.to_string()).into())
    }

    /// Every container, newest first, as `docker ps -a` lists them.
    pub fn list<C: DeserializeOwned>(&self) -> Result<Vec<Container<C>>> {
        let mut containers = Vec::new();
        for id in self.ids()? {
            if let Some(container) = self.load(&id)? {
                containers.push(container);
            }
        }
        containers.sort_by(|a, b| {
            (b.record.created, &b.record.id).cmp(&(a.record.created, &a.record.id))
        });
        Ok(containers)
    }

    /// The container `id`, or `None` if it is gone (removed meanwhile).
    fn load<C: DeserializeOwned>(&self, id: &str) -> Result<Option<Container<C>>> {
        let Some(record) = read_record::<Record<C>>(&self.config_path(id))? else {
            return Ok(None);
        };
        Ok(self
            .observed_state(id)?
            .map(|state| Container { record, state }))
    }

    /// The record of container `id` alone (no state, no liveness check).
    pub fn record<C: DeserializeOwned>(&self, id: &str) -> Result<Record<C>> {
        check_id(id)?;
        read_record(&self.config_path(id))?
            .ok_or_else(|| StoreError::NoSuchContainer(id.to_string()).into())
    }

    /// The state of container `id`, checked against the living processes
    /// ([`observe`]). Takes no lock: the state file is replaced atomically.
    pub fn state(&self, id: &str) -> Result<State> {
        check_id(id)?;
        self.observed_state(id)?
            .ok_or_else(|| StoreError::NoSuchContainer(id.to_string()).into())
    }

    /// The observed state, or `None` when the container is gone.
    fn observed_state(&self, id: &str) -> Result<Option<State>> {
        if let Some(state) = read_json::<State>(&self.state_path(id))? {
            return Ok(Some(observe(state)));
        }
        // No state. A removal deletes the record first and the state after
        // it, and a creation makes them in the other order: with the record
        // still there, the state was not removed but lost (a reboot emptied
        // the tmpfs). Without it, the container is simply gone.
        if !self.config_path(id).exists() {
            return Ok(None);
        }
        Ok(Some(lost_state(&self.run)))
    }

    // ANCHOR: update
    /// Changes container `id`'s state: `change` runs on the stored state (as
    /// written, not corrected by [`observe`]) under the container's lock, and
    /// the result replaces the file atomically. Returns what `change` returns;
    /// if it fails, nothing is written.
    pub fn update<T>(&self, id: &str, change: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        check_id(id)?;
        let _lock = self.lock_container(id)?;
        // The lock may have waited for a removal that has since deleted the
        // directory (a lock on a deleted file is still granted): read again.
        let path = self.state_path(id);
        let mut state: State =
            read_json(&path)?.ok_or_else(|| StoreError::NoSuchContainer(id.to_string()))?;
        let out = change(&mut state)?;
        write_state(&path, &state)?;
        Ok(out)
    }
    // ANCHOR_END: update

    /// Takes container `id`'s lock. If its runtime directory is missing while
    /// its record exists (the tmpfs was emptied by a reboot), makes it again,
    /// with the lost state, under the names lock so a removal cannot slip in.
    fn lock_container(&self, id: &str) -> Result<Flock<File>> {
        let path = self.runtime_dir(id).join("lock");
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let _names = self.lock_names()?;
                if !self.config_path(id).exists() {
                    return Err(StoreError::NoSuchContainer(id.to_string()).into());
                }
                if !self.runtime_dir(id).exists() {
                    let mut leftovers = Leftovers::default();
                    self.make_runtime_dir(id, &lost_state(&self.run), &mut leftovers)?;
                    leftovers.keep();
                }
                File::open(&path).with_context(|| format!("open {}", path.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
        };
        lock(file).with_context(|| format!("flock {}", path.display()))
    }

    // ANCHOR: remove
    /// Removes container `id`: its record and its runtime directory, and all
    /// the chapter keeps in them. It does not look at the state: stopping a
    /// running container first is the caller's business.
    ///
    /// The record goes aside first (`containers/.rm-ID`, one rename under the
    /// names lock): from that instant no lookup or `ps` finds the container,
    /// and its name is free. Then the runtime directory goes aside, under the
    /// container's lock so no update is half done, and both are deleted. Of
    /// two concurrent removals, one gets [`Removal::Removed`] and the other,
    /// whose rename finds nothing, [`Removal::AlreadyGone`].
    ///
    /// It refuses, changing nothing, while a mount (in this mount namespace)
    /// is below the container's directory: deleting through a bind mount
    /// would delete the host's files.
    pub fn remove(&self, id: &str) -> Result<Removal> {
        check_id(id)?;
        let dir = self.container_dir(id);
        refuse_mounts_below(&dir)?;
        let aside = self.containers().join(format!(".rm-{id}"));
        {
            let _names = self.lock_names()?;
            match fs::rename(&dir, &aside) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Removal::AlreadyGone),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("rename {} to {}", dir.display(), aside.display())
                    });
                }
            }
        }
        self.remove_runtime_dir(id)?;
        remove_tree(&aside)?;
        Ok(Removal::Removed)
    }
    // ANCHOR_END: remove

    /// Moves `RUN/ID` aside under the container's lock, then deletes it.
    fn remove_runtime_dir(&self, id: &str) -> Result<()> {
        let dir = self.runtime_dir(id);
        let _lock = match File::open(dir.join("lock")) {
            Ok(file) => Some(lock(file).with_context(|| format!("flock {}/lock", dir.display()))?),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("open {}/lock", dir.display())),
        };
        let aside = self.run.join(format!(".rm-{id}"));
        match fs::rename(&dir, &aside) {
            Ok(()) => remove_tree(&aside),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => {
                Err(e).with_context(|| format!("rename {} to {}", dir.display(), aside.display()))
            }
        }
    }

    /// Renames the container `reference` names to `new_name`, under the names
    /// lock, with Docker's messages: the name must be valid, different from
    /// the current one, and free.
    pub fn rename(&self, reference: &str, new_name: &str) -> Result<()> {
        if reference.is_empty() || new_name.is_empty() {
            return Err(StoreError::EmptyRename.into());
        }
        let new_name = names::validate(new_name)?;
        let _names = self.lock_names()?;
        let id = self.resolve(reference)?;
        // The chapter's config is carried through as it is, whatever it holds.
        let mut record: Record<serde_json::Value> = self.record(&id)?;
        if record.name == new_name {
            return Err(StoreError::SameName.into());
        }
        if let Some(holder) = self.names_in_use()?.get(new_name) {
            return Err(name_in_use(new_name, holder).context("Error when allocating new name"));
        }
        record.name = new_name.to_string();
        write_json(&self.config_path(&id), &record)
    }

    /// Deletes what creations and removals that died half way left behind:
    /// `.rm-` directories (always: nobody needs them, and a removal still at
    /// work does not mind help) and `.tmp-PID-` directories whose process is
    /// gone; and removes the containers whose record a power cut
    /// [`cut_short`] ([`Keep::WhileRunning`]). For `container prune` and
    /// `system prune`.
    pub fn sweep(&self) -> Result<()> {
        for id in self.ids()? {
            let record = fs::read(self.config_path(&id));
            if record.is_ok_and(|bytes| cut_short(&bytes)) {
                self.remove(&id)?;
            }
        }
        for base in [self.containers(), self.run.clone()] {
            let Ok(entries) = fs::read_dir(&base) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let abandoned = name.starts_with(".rm-")
                    || name
                        .strip_prefix(".tmp-")
                        .and_then(|rest| rest.split_once('-'))
                        .and_then(|(pid, _)| pid.parse::<i32>().ok())
                        .is_some_and(|pid| matches!(Holder::of(pid), Ok(None)));
                if abandoned {
                    remove_tree(&entry.path())?;
                }
            }
        }
        Ok(())
    }
}

// ANCHOR: observe
/// Checks a stored state against the living processes. A state that says
/// running or paused is a claim made by processes that may have died without
/// a word; it stands only while the container's process runs (same PID, same
/// start time) and so does its monitor, if it has one. Otherwise the status
/// becomes exited or dead, and `error` says why:
///
/// | process | monitor | result |
/// |---|---|---|
/// | alive | alive or none | as stored |
/// | alive | gone | dead: nothing will record its exit |
/// | gone | alive | exited (255): the monitor is about to record the real code |
/// | gone | gone | dead: neither recorded its exit (the monitor was killed?) |
/// | gone | none | exited (255): nothing recorded its exit |
pub fn observe(mut state: State) -> State {
    if !matches!(state.status, Status::Running | Status::Paused) {
        return state;
    }
    let Some(process) = state.process else {
        return corrected(
            state,
            Status::Dead,
            "the state says running but names no process".into(),
        );
    };
    let process_alive = process.is_alive();
    let monitor = state.monitor.map(|m| (m.pid, m.is_alive()));
    let p = process.pid;
    let (status, why) = match (process_alive, monitor) {
        (true, None) | (true, Some((_, true))) => return state,
        (true, Some((m, false))) => (
            Status::Dead,
            format!(
                "monitor PID {m} is gone while the container's process PID {p} still runs: nothing will record its exit"
            ),
        ),
        (false, Some((m, true))) => (
            Status::Exited,
            format!(
                "the container's process PID {p} has ended; monitor PID {m} has not recorded its exit status yet"
            ),
        ),
        (false, Some((m, false))) => (
            Status::Dead,
            format!(
                "the container's process PID {p} and its monitor PID {m} are gone without recording an exit status (was the monitor killed?)"
            ),
        ),
        (false, None) => (
            Status::Exited,
            format!("the container's process PID {p} has ended without recording an exit status"),
        ),
    };
    if !process_alive {
        state.exit_code = UNKNOWN_EXIT_CODE;
    }
    corrected(state, status, why)
}
// ANCHOR_END: observe

/// `state` with `status`, and `why` as its error.
fn corrected(mut state: State, status: Status, why: String) -> State {
    state.status = status;
    state.error = why;
    state
}

/// The state of a container whose record exists but whose runtime state is
/// gone: the machine restarted (the tmpfs was emptied) since it was made.
fn lost_state(run: &Path) -> State {
    State {
        status: Status::Exited,
        exit_code: UNKNOWN_EXIT_CODE,
        error: format!(
            "no runtime state in {} (the machine restarted since the container was created?)",
            run.display()
        ),
        ..State::default()
    }
}

/// Whether `s` looks like a full container ID (64 lowercase hex digits).
fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Refuses anything but a full ID where a path is made from it, so that no
/// caller can make `../` part of one.
fn check_id(id: &str) -> Result<()> {
    if is_full_id(id) {
        Ok(())
    } else {
        Err(StoreError::NoSuchContainer(id.to_string()).into())
    }
}

/// Docker's conflict error for `name`, held by container `id`.
fn name_in_use(name: &str, id: &str) -> anyhow::Error {
    StoreError::NameInUse {
        name: name.to_string(),
        id: id.to_string(),
    }
    .into()
}

/// An exclusive flock(2) on `file`, waiting as long as it takes (and again
/// when a signal interrupts the wait). Released when the result is dropped.
fn lock(mut file: File) -> Result<Flock<File>> {
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(locked) => return Ok(locked),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(errno.into()),
        }
    }
}

// ANCHOR: keep
/// How long a container's record must last, which decides whether its
/// creation waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Until `rm`: the record is flushed (`fsync(2)`) before the container
    /// appears, so that a power cut leaves it whole or not at all.
    UntilRemoved,
    /// While it runs (`--rm`): not flushed, which takes 1 to 2 ms off every
    /// start. A power cut ends the container, which was to be removed then
    /// anyway (Docker removes such containers when its daemon starts again),
    /// and may leave its record empty: such a record reads as no container
    /// ([`cut_short`]), and [`Store::sweep`] removes what is left of it.
    WhileRunning,
}
// ANCHOR_END: keep

/// Writes `record` to `dir/config.json`, a directory not yet visible under
/// its final name. Kept until removed, its data reaches the disk (fsync)
/// before the directory gets its final name, so a power cut can never leave
/// a container whose record is empty: it leaves the container whole, or a
/// `.tmp-` directory for [`Store::sweep`].
// SIMPLIFICATION: the directories are not flushed after the renames, as
// Docker's atomic writer does not flush them either, so a power cut just
// after `run -d` can forget the container (whose process died with the
// machine anyway). Flushing them would make a creation durable; on the
// development machines it triples the cost of a creation (about 10 ms instead
// of 4, against a whole `crun run` of 10 ms).
fn write_record<C: Serialize>(dir: &Path, record: &Record<C>, keep: Keep) -> Result<()> {
    let path = dir.join("config.json");
    match keep {
        Keep::UntilRemoved => write_json(&path, record),
        Keep::WhileRunning => {
            let bytes = serde_json::to_vec_pretty(record)
                .with_context(|| format!("serialize {}", path.display()))?;
            fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))
        }
    }
}

/// Reads a container's record, or `None` if there is none: it does not
/// exist (removed meanwhile), or it was [`cut_short`].
fn read_record<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) if cut_short(&bytes) => Ok(None),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("parse {}", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Whether a record is what a power cut leaves of one that was not flushed
/// ([`Keep::WhileRunning`]): empty, or zeros where the data never reached
/// the disk. No record is ever written so: a visible record is complete
/// until the machine stops.
pub fn cut_short(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Writes `value` as pretty JSON to `path`, atomically (chapter 7's
/// temporary file, fsync and rename).
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .with_context(|| format!("serialize {}", path.display()))?;
    bytes.push(b'\n');
    write_atomically(path, &bytes)
}

/// Replaces the state file `path` with `state`, atomically (a temporary
/// file renamed over it) but without `fsync(2)`: the state describes
/// processes, which a power cut ends too, and a state lost with them reads
/// as exited ([`lost_state`]). On a tmpfs the flush would cost nothing; on a
/// disk (a `/run` that is not a tmpfs, as in some containers) it costs
/// milliseconds, on every start, before the container is released.
fn write_state(path: &Path, state: &State) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(state)
        .with_context(|| format!("serialize {}", path.display()))?;
    bytes.push(b'\n');
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&temp, &bytes)
        .and_then(|()| fs::rename(&temp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&temp);
            anyhow!("writing {}: {e}", path.display())
        })
}

/// Reads the JSON file `path`, or `None` if it does not exist.
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("parse {}", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Makes `dir`, readable by its owner only (root): records name images and
/// commands, and the runtime directory will hold sockets.
fn make_private_dir(dir: &Path, leftovers: &mut Leftovers) -> Result<()> {
    DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    leftovers.paths.push(dir.to_path_buf());
    Ok(())
}

/// Directories a creation made so far, removed if it fails half way.
#[derive(Default)]
struct Leftovers {
    paths: Vec<PathBuf>,
}

impl Leftovers {
    /// `from` was renamed to `to`: remove `to` instead on failure.
    fn replace(&mut self, from: &Path, to: PathBuf) {
        self.paths.retain(|p| p != from);
        self.paths.push(to);
    }

    /// Success: keep everything.
    fn keep(mut self) {
        self.paths.clear();
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for path in self.paths.drain(..).rev() {
            let _ = remove_tree(&path);
        }
    }
}

/// Refuses when something is mounted at or below `dir` in this mount
/// namespace (`/proc/self/mountinfo`, field 5, with `\040`-style escapes).
fn refuse_mounts_below(dir: &Path) -> Result<()> {
    let dir = match dir.canonicalize() {
        Ok(dir) => dir,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("resolve {}", dir.display())),
    };
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let below: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount_point| mount_point.starts_with(&dir))
        .collect();
    match below.first() {
        None => Ok(()),
        Some(mount_point) => Err(anyhow!(
            "cannot remove {}: {} is still mounted there (unmount it first)",
            dir.display(),
            mount_point.display()
        )),
    }
}

/// Undoes the octal escapes mountinfo uses for space, tab, newline and `\`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Deletes `path` and everything below it, never leaving its file system (a
/// mount point found below is an error, not a directory to empty). Entries
/// that vanish meanwhile are fine: another removal may be deleting the same
/// tree.
fn remove_tree(path: &Path) -> Result<()> {
    let dev = match fs::symlink_metadata(path) {
        Ok(meta) => meta.dev(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
    };
    remove_below(path, dev).with_context(|| format!("remove {}", path.display()))
}

fn remove_below(path: &Path, dev: u64) -> std::io::Result<()> {
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return gone(fs::remove_file(path));
    }
    if meta.dev() != dev {
        return Err(std::io::Error::other(format!(
            "{} is another file system (a mount point): not removed",
            path.display()
        )));
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        match entry {
            Ok(entry) => remove_below(&entry.path(), dev)?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    gone(fs::remove_dir(path))
}

/// Times as Docker writes them (Go's RFC 3339 with nanoseconds): UTC, `Z`,
/// and only as many fractional digits as needed, such as
/// `2024-05-01T12:34:56.123456789Z`. A time never set is written
/// `0001-01-01T00:00:00Z`, Go's zero time, as `docker inspect` shows it.
pub mod timestamp {
    use anyhow::{Context, Result};
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, UtcOffset};

    /// Go's zero time, Docker's "never".
    pub const NEVER: &str = "0001-01-01T00:00:00Z";

    /// `t` in UTC, RFC 3339 with nanoseconds, trailing zeros trimmed.
    /// RFC 3339 has only the years 0 to 9999: a time outside them (from a
    /// hand-edited file) is an error.
    pub fn format(t: OffsetDateTime) -> Result<String> {
        t.to_offset(UtcOffset::UTC)
            .format(&Rfc3339)
            .with_context(|| format!("format time {t} as RFC 3339"))
    }

    /// Parses an RFC 3339 time.
    pub fn parse(s: &str) -> Result<OffsetDateTime> {
        OffsetDateTime::parse(s, &Rfc3339).with_context(|| format!("parse time {s:?}"))
    }

    /// `#[serde(with)]` for a time that is always set.
    pub(super) mod required {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
            let text =
                super::format(*t).map_err(|e| serde::ser::Error::custom(format!("{e:#}")))?;
            s.serialize_str(&text)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
            let text = String::deserialize(d)?;
            super::parse(&text).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
        }
    }

    /// `#[serde(with)]` for a time that may never have been set.
    pub(super) mod optional {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::required::serialize(t, s),
                None => s.serialize_str(super::NEVER),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let text = String::deserialize(d)?;
            if text == super::NEVER {
                return Ok(None);
            }
            super::parse(&text)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("{e:#}")))
        }
    }
}

#[cfg(test)]
mod tests {
    //! What needs no files: messages, times, mountinfo's escapes.

    use super::*;

    #[test]
    fn times_are_written_as_docker_writes_them() {
        let t = timestamp::parse("2024-05-01T12:34:56.123456789Z").unwrap();
        assert_eq!(
            timestamp::format(t).unwrap(),
            "2024-05-01T12:34:56.123456789Z"
        );
        let t = timestamp::parse("2024-05-01T14:34:56.5+02:00").unwrap();
        assert_eq!(timestamp::format(t).unwrap(), "2024-05-01T12:34:56.5Z");
        let state = State::default();
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["started_at"], timestamp::NEVER);
        assert_eq!(json["status"], "created");
        let back: State = serde_json::from_value(json).unwrap();
        assert_eq!(back, state);
        // Fields a later version adds or drops do not break reading.
        let old: State = serde_json::from_str(r#"{"status":"exited","exit_code":3}"#).unwrap();
        assert_eq!((old.status, old.exit_code), (Status::Exited, 3));
    }

    #[test]
    fn messages_are_dockers() {
        let id = "a".repeat(64);
        let conflict = name_in_use("web", &id).to_string();
        assert_eq!(
            conflict,
            format!(
                "Conflict. The container name \"/web\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
            )
        );
        assert_eq!(
            StoreError::AmbiguousPrefix("ab".into()).to_string(),
            "multiple IDs found with provided prefix: ab"
        );
        assert_eq!(
            StoreError::NoSuchContainer("x".into()).to_string(),
            "No such container: x"
        );
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape_mountinfo(r"/plain\09"), r"/plain\09");
    }

    #[test]
    fn only_full_ids_make_paths() {
        assert!(check_id(&"0".repeat(64)).is_ok());
        for bad in ["", "..", &"A".repeat(64), &format!("../{}", "0".repeat(61))] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
