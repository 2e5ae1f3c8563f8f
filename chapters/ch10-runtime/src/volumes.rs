//! Volumes: `-v HOST:CTR` bind mounts, named and anonymous volumes, and
//! `--tmpfs`, as `docker run` takes them, and the `volume` commands.
//!
//! A container's writable layer (chapter 6) goes away with the container.
//! Three kinds of mount let data live elsewhere:
//!
//! - **A bind mount** (`-v /srv/site:/usr/share/nginx/html`) shows a host
//!   directory at a second place. Nothing is copied: the container and the
//!   host see the same inodes, so what one writes the other reads at once.
//!   The host decides where the data is; the image has no say.
//! - **A volume** (`-v pgdata:/var/lib/postgresql/data`) is a bind mount of a
//!   directory that minibox owns, `ROOT/volumes/NAME/_data`, as Docker's
//!   `/var/lib/docker/volumes/NAME/_data`. It is created on first use, outlives
//!   every container that mounts it, and is listed, removed and pruned by
//!   name. `-v /data` alone makes an *anonymous* volume, named by 64 random
//!   hex digits, which `volume prune` removes once no container uses it.
//! - **A tmpfs** (`--tmpfs /run`) is memory: fast, private to the container,
//!   and gone when it stops. Docker mounts it `noexec,nosuid,nodev`.
//!
//! **Why Docker seeds a volume.** An image often has files where a volume
//! goes: a default configuration in `/etc/nginx`, an empty database directory
//! owned by the `postgres` user. Mounting an empty volume there would hide
//! them, and the program would start without its configuration, or without
//! permission to write to its own directory. So when a volume is empty at the
//! moment it is mounted, Docker first copies into it what the image has at
//! that path, owners and modes included ([`seed`]). A bind mount is never
//! seeded: the host's directory is the user's, and hides the image's files.
//!
//! **Where the mounts happen.** In the container's mount namespace, after
//! chapter 4's `make_private` and before `pivot_root`, while the host's paths
//! can still be named. Chapter 4's reminders hold: because every mount in the
//! namespace is private by then, these mounts do not propagate back to the
//! host, and they disappear with the namespace when the container's last
//! process exits.
//!
//! **Where the mount point is.** The mount target is a path *inside the
//! image*, and the image is not to be trusted: a layer can make `/data` a
//! symbolic link to `/etc`, and a runtime that simply joined
//! `rootfs/data` and handed it to mount(2) would mount the volume over the
//! host's `/etc` (runc's CVE-2021-30465 was a race of this kind). So the
//! target is resolved as chapter 4 resolves `/proc`, `/sys` and `/dev`
//! (its `in_root`): by `openat2(2)` with `RESOLVE_IN_ROOT`, which walks the
//! path as if the rootfs were `/`, so `/etc` in a link means the rootfs's
//! `/etc`, and `..` stops at the rootfs. The walk yields a file descriptor,
//! and the mount goes through `/proc/self/fd/N`, so the place checked is the
//! place mounted on, whatever is renamed in between (runc's way).
//!
//! Parsing happens in the parent, before anything exists ([`parse_volume`],
//! [`parse_tmpfs`]); [`Volumes::prepare`] turns a parsed `-v` into a [`Mount`]
//! with a host directory (creating the volume or the missing host directory);
//! the child calls [`mount_volume`] and [`mount_tmpfs`].
// SIMPLIFICATION: Docker has volume drivers (plugins that keep the data on
// NFS, in the cloud, ...) and `--mount type=...,source=...` syntax beside
// `-v`; minibox has the `local` driver's directories only, and `-v`. The
// mode list of `-v` also takes `z`/`Z` (SELinux relabelling) and propagation
// modes (`shared`, `rslave`, ...): minibox refuses them with a message
// rather than ignore them; every mount here is `rprivate`, Docker's default.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ch03_uts_namespace::id;
use ch04_mount_namespace::in_root::{TargetKind, open_in_root};
use ch07_image_pull::images::human_size;
use ch07_image_pull::store::write_atomically;
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::statvfs::FsFlags;
use serde::{Deserialize, Serialize};
use tabwriter::TabWriter;

/// The only volume driver minibox has, by Docker's name for it.
pub const LOCAL_DRIVER: &str = "local";

/// What Docker allows in a volume name, as its error message spells it.
const NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

// ANCHOR: spec
/// One `-v`, parsed and checked, before anything exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Where the data comes from: the form of the part before the first `:`.
    pub source: Source,
    /// Where it appears in the container: absolute, cleaned (no `.`, `..` or
    /// doubled `/`, as Go's `filepath.Clean`), never `/` itself.
    pub target: PathBuf,
    /// `:ro`: the container may only read. Enforced by the kernel with a
    /// second mount(2), see [`mount_volume`].
    pub read_only: bool,
    /// `:nocopy`: do not seed an empty volume from the image.
    pub no_copy: bool,
}

/// The three forms of `-v`, told apart as Docker does: an absolute path is a
/// host directory, anything else a volume name, and nothing an anonymous
/// volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-v /host/dir:/ctr`: a bind mount of a host path. Created as a
    /// directory if missing, as `docker run -v` does (a legacy behaviour:
    /// `--mount type=bind` refuses a missing source instead).
    Host(PathBuf),
    /// `-v name:/ctr`: the named volume, created on first use.
    Named(String),
    /// `-v /ctr`: a new volume with a random name, for this container.
    Anonymous,
}
// ANCHOR_END: spec

// ANCHOR: parse_volume
/// Parses one `-v` as Docker's Linux parser does, with its messages:
/// `HOST:CTR[:MODE]`, `NAME:CTR[:MODE]` or `CTR`. MODE is a comma-separated
/// list of `ro`/`rw` and `nocopy`.
pub fn parse_volume(raw: &str) -> Result<VolumeSpec> {
    let invalid = || anyhow!("invalid volume specification: '{raw}'");
    let parts: Vec<&str> = raw.split(':').collect();
    if parts.len() > 3 || parts[0].is_empty() {
        return Err(invalid());
    }
    let (source, target, mode) = match parts[..] {
        [target] => (None, target, ""),
        // `/ctr:ro` is a destination with a mode and no source: Docker
        // refuses it rather than guess.
        [_, mode] if parse_mode(mode).is_ok() => return Err(invalid()),
        [source, target] => (Some(source), target, ""),
        [source, target, mode] => (Some(source), target, mode),
        _ => return Err(invalid()),
    };
    let mode = parse_mode(mode)?;
    let source = match source {
        None => Source::Anonymous,
        Some(path) if path.starts_with('/') => Source::Host(PathBuf::from(clean(path))),
        Some(name) => Source::Named(name.to_string()),
    };
    let kind = if matches!(source, Source::Host(_)) {
        "bind"
    } else {
        "volume"
    };
    let target = check_target(target).map_err(|e| {
        anyhow!(
            "{}: invalid mount config for type \"{kind}\": {e}",
            invalid()
        )
    })?;
    if let Source::Named(name) = &source {
        check_name(name)?;
    }
    Ok(VolumeSpec {
        source,
        target,
        read_only: mode.read_only,
        no_copy: mode.no_copy,
    })
}
// ANCHOR_END: parse_volume

/// What the mode part of `-v` asked for.
#[derive(Debug, Default)]
struct VolumeMode {
    read_only: bool,
    no_copy: bool,
}

/// Docker's `-v` modes: at most one of `ro`/`rw`, optionally `nocopy`.
fn parse_mode(mode: &str) -> Result<VolumeMode> {
    let mut parsed = VolumeMode::default();
    if mode.is_empty() {
        return Ok(parsed);
    }
    let mut access = 0;
    for word in mode.split(',') {
        match word {
            "ro" | "rw" => {
                access += 1;
                parsed.read_only = word == "ro";
            }
            "nocopy" => parsed.no_copy = true,
            "z" | "Z" => bail!("invalid mode: {mode}: minibox does not relabel for SELinux"),
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bail!("invalid mode: {mode}: minibox mounts every volume rprivate")
            }
            _ => bail!("invalid mode: {mode}"),
        }
    }
    if access > 1 {
        bail!("invalid mode: {mode}");
    }
    Ok(parsed)
}

/// The checks Docker makes of a container path, with its words: absolute,
/// and not `/` once cleaned.
fn check_target(target: &str) -> Result<PathBuf, String> {
    if target.is_empty() {
        return Err("field Target must not be empty".into());
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ));
    }
    let cleaned = clean(target);
    if cleaned == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(PathBuf::from(cleaned))
}

/// Checks a volume name against Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with
/// its message (which hints at the usual mistake: a relative host path).
pub fn check_name(name: &str) -> Result<()> {
    if !crate::names::is_valid(name) {
        bail!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, \
             only \"{NAME_CHARS}\" are allowed. If you intended to pass a host directory, \
             use absolute path"
        );
    }
    Ok(())
}

/// A `/`-separated path cleaned lexically, as Go's `filepath.Clean`: empty
/// and `.` elements dropped, `..` taking away the element before it (never
/// above `/`; kept at the front of a relative path), `.` for nothing left.
/// Docker cleans every path it is given so: the targets of `-v` here, the
/// paths of a Dockerfile and a `.dockerignore` in chapter 11. The kernel's
/// resolution inside the rootfs stays the real defence (chapter 4's
/// `open_in_root`).
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|&p| p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            part => parts.push(part),
        }
    }
    match (rooted, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".to_string(),
        (false, false) => parts.join("/"),
    }
}

// ANCHOR: tmpfs
/// One `--tmpfs CTR[:OPTIONS]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    /// Where it appears in the container, checked as a `-v` target.
    pub target: PathBuf,
    /// The mount(2) flags: Docker's defaults `noexec,nosuid,nodev`, changed by
    /// `exec`, `suid`, `dev` and `ro`.
    pub flags: MsFlags,
    /// What tmpfs itself reads (`size=64m,mode=1777`), passed as mount(2)'s
    /// data: the kernel checks the values.
    pub data: String,
}

/// Parses `--tmpfs CTR[:OPTIONS]`, merging OPTIONS over Docker's defaults
/// `rw,noexec,nosuid,nodev` (a later word wins: `exec` undoes `noexec`).
pub fn parse_tmpfs(raw: &str) -> Result<Tmpfs> {
    let (target, options) = raw.split_once(':').unwrap_or((raw, ""));
    let target = check_target(target)
        .map_err(|e| anyhow!("invalid mount config for type \"tmpfs\": {e}"))?;
    let mut flags = MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let mut data: BTreeMap<&str, &str> = BTreeMap::new();
    for word in options.split(',').filter(|w| !w.is_empty()) {
        let (set, flag) = match word {
            "rw" => (false, MsFlags::MS_RDONLY),
            "ro" => (true, MsFlags::MS_RDONLY),
            "exec" => (false, MsFlags::MS_NOEXEC),
            "noexec" => (true, MsFlags::MS_NOEXEC),
            "suid" => (false, MsFlags::MS_NOSUID),
            "nosuid" => (true, MsFlags::MS_NOSUID),
            "dev" => (false, MsFlags::MS_NODEV),
            "nodev" => (true, MsFlags::MS_NODEV),
            _ => {
                let (key, value) = word.split_once('=').unwrap_or((word, ""));
                // SIMPLIFICATION: Docker passes any word it does not know to
                // the kernel; minibox takes tmpfs's own options only, so a
                // typo is an error here rather than a mount(2) EINVAL.
                if !["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"].contains(&key)
                    || value.is_empty()
                {
                    bail!("invalid tmpfs option \"{word}\" for {}", target.display());
                }
                if key == "mode" && u32::from_str_radix(value, 8).is_err() {
                    bail!("invalid tmpfs mode \"{value}\": expected octal, like 1777");
                }
                data.insert(key, value);
                continue;
            }
        };
        flags.set(flag, set);
    }
    let data = data
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(Tmpfs {
        target,
        flags,
        data,
    })
}
// ANCHOR_END: tmpfs

/// A volume's record, `ROOT/volumes/NAME/volume.json`, beside its `_data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The name: given, or 64 hex digits for an anonymous volume.
    pub name: String,
    /// Always [`LOCAL_DRIVER`]; kept because `volume ls` shows it.
    pub driver: String,
    /// When it was created, RFC 3339 as `docker volume inspect` shows it.
    pub created_at: String,
    /// `--label`s; none yet, kept for `inspect`.
    pub labels: BTreeMap<String, String>,
    /// Made by `-v /ctr`: what a plain `volume prune` removes.
    pub anonymous: bool,
}

// ANCHOR: mount
/// A `-v` made ready to mount: the host directory that appears at `target`.
/// The container's record keeps it (`inspect`, `volume rm`, `rm -v`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The host directory (or file) to bind: the user's, or a volume's `_data`.
    pub source: PathBuf,
    /// Where, inside the rootfs.
    pub target: PathBuf,
    /// `:ro`.
    pub read_only: bool,
    /// The volume's name, for a volume (a container record keeps it, so that
    /// `volume rm` knows who uses what); `None` for a bind mount.
    pub volume: Option<String>,
    /// Copy the image's files at `target` into `source` if `source` is empty:
    /// volumes without `nocopy`.
    pub seed: bool,
}
// ANCHOR_END: mount

/// The volumes of a minibox root: `ROOT/volumes/NAME/{volume.json,_data}`.
#[derive(Debug, Clone)]
pub struct Volumes {
    /// `ROOT/volumes`.
    dir: PathBuf,
}

/// What `volume prune` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pruned {
    /// The names removed, in name order.
    pub removed: Vec<String>,
    /// The bytes their files held (the sum of file sizes, as Docker counts).
    pub reclaimed: u64,
}

impl Pruned {
    /// Docker's report: the names under `Deleted Volumes:`, then the space.
    pub fn report(&self) -> String {
        let mut text = String::new();
        if !self.removed.is_empty() {
            text.push_str("Deleted Volumes:\n");
            for name in &self.removed {
                text.push_str(name);
                text.push('\n');
            }
            text.push('\n');
        }
        text.push_str(&format!(
            "Total reclaimed space: {}\n",
            human_size(self.reclaimed)
        ));
        text
    }
}

impl Volumes {
    /// The volumes under `root` (`MINIBOX_ROOT`); nothing is created yet.
    pub fn new(root: &Path) -> Volumes {
        Volumes {
            dir: root.join("volumes"),
        }
    }

    /// Where a volume's files are: `ROOT/volumes/NAME/_data`.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// `volume create NAME`: creates the volume, or returns the existing one
    /// (as Docker, creating twice is not an error).
    pub fn create(&self, name: &str) -> Result<Volume> {
        check_name(name)?;
        self.create_volume(name, false)
    }

    /// Builds the volume as `.tmp-` directory renamed into place, so that a
    /// concurrent `ls` sees all of it or nothing, and two concurrent creators
    /// of one name both end with the same volume.
    fn create_volume(&self, name: &str, anonymous: bool) -> Result<Volume> {
        if let Ok(volume) = self.get(name) {
            return Ok(volume);
        }
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let temp = self.dir.join(format!(".tmp-{name}-{}", std::process::id()));
        let volume = Volume {
            name: name.to_string(),
            driver: LOCAL_DRIVER.to_string(),
            created_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .context("formatting the creation time")?,
            labels: BTreeMap::new(),
            anonymous,
        };
        let build = || -> Result<()> {
            // Docker's `_data` is 0755 root: a new, empty volume lets the
            // container's users read it, and seeding copies the image's mode.
            fs::create_dir_all(temp.join("_data"))?;
            write_atomically(&temp.join("volume.json"), &serde_json::to_vec(&volume)?)?;
            Ok(())
        };
        build().with_context(|| format!("create {name}"))?;
        match fs::rename(&temp, self.dir.join(name)) {
            Ok(()) => Ok(volume),
            // Someone else created it meanwhile: theirs is the volume.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                let _ = fs::remove_dir_all(&temp);
                self.get(name)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&temp);
                Err(e).with_context(|| format!("create {name}"))
            }
        }
    }

    /// A volume by name, with Docker's message when there is none.
    pub fn get(&self, name: &str) -> Result<Volume> {
        let path = self.dir.join(name).join("volume.json");
        if name.starts_with('.') || name.contains('/') {
            bail!("get {name}: no such volume");
        }
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == ErrorKind::NotFound => bail!("get {name}: no such volume"),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Every volume, by name (the order `docker volume ls` prints).
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", self.dir.display())),
        };
        let mut volumes = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // being created or removed
            }
            match self.get(&name) {
                Ok(volume) => volumes.push(volume),
                Err(_) => continue, // removed meanwhile
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// `volume rm NAME`. `users` gives the IDs of the containers whose
    /// records name the volume (container state lives in `state`, not here);
    /// a volume with users is refused, with Docker's message. Returns the
    /// bytes its files held, for `prune`'s report.
    // SIMPLIFICATION: between the check and the removal a `run` could start
    // using the volume; Docker's daemon holds a per-volume lock for both.
    pub fn remove(&self, name: &str, users: impl Fn(&str) -> Result<Vec<String>>) -> Result<u64> {
        self.get(name)?;
        let using = users(name)?;
        if !using.is_empty() {
            bail!("remove {name}: volume is in use - [{}]", using.join(", "));
        }
        let aside = self.dir.join(format!(".rm-{name}-{}", std::process::id()));
        fs::rename(self.dir.join(name), &aside).with_context(|| format!("remove {name}"))?;
        let size = disk_usage(&aside.join("_data"));
        fs::remove_dir_all(&aside).with_context(|| format!("remove {name}"))?;
        Ok(size)
    }

    /// `volume prune`: removes the unused anonymous volumes, or with `all`
    /// (`--all`) every unused volume, as Docker since 23.0.
    pub fn prune(&self, all: bool, users: impl Fn(&str) -> Result<Vec<String>>) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        for volume in self.list()? {
            if !(all || volume.anonymous) || !users(&volume.name)?.is_empty() {
                continue;
            }
            pruned.reclaimed += self.remove(&volume.name, &users)?;
            pruned.removed.push(volume.name);
        }
        Ok(pruned)
    }

    /// Turns a parsed `-v` into a [`Mount`], in the parent before the
    /// container starts: creates a named volume on first use, a new anonymous
    /// one, or a missing host directory (as `docker run -v` does).
    pub fn prepare(&self, spec: &VolumeSpec) -> Result<Mount> {
        let (source, volume) = match &spec.source {
            Source::Host(path) => {
                if !path.exists() {
                    fs::create_dir_all(path).with_context(|| {
                        format!(
                            "error while creating mount source path '{}'",
                            path.display()
                        )
                    })?;
                }
                (path.clone(), None)
            }
            Source::Named(name) => {
                self.create_volume(name, false)?;
                (self.data_dir(name), Some(name.clone()))
            }
            Source::Anonymous => {
                let name = id::new_id()?;
                self.create_volume(&name, true)?;
                (self.data_dir(&name), Some(name))
            }
        };
        Ok(Mount {
            source,
            target: spec.target.clone(),
            read_only: spec.read_only,
            seed: volume.is_some() && !spec.no_copy,
            volume,
        })
    }
}

impl Volumes {
    /// [`Volumes::prepare`] for every `-v` of a `run`; if one fails, the
    /// anonymous volumes made for the others are removed again.
    pub fn prepare_all(&self, specs: &[VolumeSpec]) -> Result<Vec<Mount>> {
        let mut mounts = Vec::new();
        for spec in specs {
            match self.prepare(spec) {
                Ok(mount) => mounts.push(mount),
                Err(error) => {
                    self.forget_anonymous(&mounts);
                    return Err(error);
                }
            }
        }
        Ok(mounts)
    }

    /// Removes the anonymous volumes among `mounts`: a container that was
    /// never made, or `rm -v`. Named volumes and bind mounts stay.
    pub fn forget_anonymous(&self, mounts: &[Mount]) {
        for name in mounts.iter().filter_map(|m| m.volume.as_deref()) {
            if self.get(name).is_ok_and(|volume| volume.anonymous) {
                let _ = self.remove(name, |_| Ok(Vec::new()));
            }
        }
    }
}

/// `volume ls`: Docker's table, `DRIVER` and `VOLUME NAME`.
pub fn print_ls(volumes: &[Volume], out: impl Write) -> Result<()> {
    // Docker's table writer: Go's tabwriter, minwidth 10, padding 3.
    let mut table = TabWriter::new(out).minwidth(10 - 3).padding(3);
    writeln!(table, "DRIVER\tVOLUME NAME")?;
    for volume in volumes {
        writeln!(table, "{}\t{}", volume.driver, volume.name)?;
    }
    table.flush().context("writing the table")
}

/// The bytes in the regular files below `dir`, each inode once (Docker's
/// `directory.Size`). Errors count as nothing: it is a report.
fn disk_usage(dir: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

// ANCHOR: seed
/// Copies what the image has at a volume's mount point (`image_dir`) into
/// the volume's `data` directory if `data` is empty, keeping owners, modes
/// and the kinds of file; `data` itself takes `image_dir`'s owner and mode.
/// Returns whether it copied. As Docker, the test is "empty", not "new": a
/// volume emptied by hand is seeded again at its next mount.
// SIMPLIFICATION: Docker's copy also keeps hard links, extended attributes
// and times; this keeps owners, modes, symlinks and device nodes.
pub fn seed(image_dir: &Path, data: &Path) -> Result<bool> {
    // Followed if a link: mount_volume passes `/proc/self/fd/N` of a target
    // already resolved inside the rootfs, a magic link to it.
    let image = match fs::metadata(image_dir) {
        Ok(meta) if meta.is_dir() => meta,
        _ => return Ok(false), // nothing in the image there
    };
    if fs::read_dir(data)?.next().is_some() {
        return Ok(false);
    }
    let copy = || -> Result<()> {
        copy_tree(image_dir, data)?;
        std::os::unix::fs::lchown(data, Some(image.uid()), Some(image.gid()))?;
        fs::set_permissions(data, fs::Permissions::from_mode(image.mode() & 0o7777))?;
        Ok(())
    };
    copy().with_context(|| format!("seeding the volume {} from the image", data.display()))?;
    Ok(true)
}
// ANCHOR_END: seed

/// Copies the entries of `from` into the existing directory `to`, never
/// following a symbolic link: a link is copied as a link.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            let node = if kind.is_fifo() {
                SFlag::S_IFIFO
            } else if kind.is_char_device() {
                SFlag::S_IFCHR
            } else if kind.is_block_device() {
                SFlag::S_IFBLK
            } else {
                continue; // a socket: meaningless without its listener
            };
            nix::sys::stat::mknod(&dst, node, Mode::empty(), meta.rdev())?;
        }
        // Owner first: chown(2) clears the set-user-ID and set-group-ID bits,
        // which the mode then sets again.
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !kind.is_symlink() {
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

// ANCHOR: mount_volume
/// In the child, in its private mount namespace, before pivot_root: seeds an
/// empty volume from the image, then bind-mounts `mount.source` at
/// `mount.target` inside `rootfs`, read-only for `:ro`. The target is found
/// inside the rootfs by chapter 4's [`open_in_root`].
pub fn mount_volume(rootfs: &Path, mount_spec: &Mount) -> Result<()> {
    let kind = if mount_spec.source.is_dir() {
        TargetKind::Dir
    } else {
        TargetKind::File
    };
    let target = open_in_root(rootfs, &mount_spec.target, kind)?;
    if mount_spec.seed {
        seed(&target.proc_path(), &mount_spec.source)?;
    }
    let source = mount_spec
        .source
        .to_str()
        .context("the volume's host path is not UTF-8")?;
    // MS_REC: mounts below the host directory come along, as Docker's
    // `rbind`; without it the container would see the empty directories
    // they are mounted on.
    target.mount(Some(source), None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    if mount_spec.read_only {
        remount_read_only(rootfs, &mount_spec.target, kind)?;
    }
    Ok(())
}

/// Makes the bind mount just made at `target` read-only.
///
/// mount(2) ignores MS_RDONLY when it makes a bind mount: a new bind mount
/// always starts with the flags of the mount it copies, so read-only takes
/// a second call, `MS_REMOUNT|MS_BIND|MS_RDONLY`, which changes the flags of
/// the new mount only (not the host's mount of the same files, which stays
/// writable). The remount must repeat the flags that are already there
/// (nosuid, nodev, noexec, ...): the remount sets all of them, and dropping
/// one is refused with EPERM where it is locked (in a user namespace).
// SIMPLIFICATION: only the top mount becomes read-only, not the mounts
// MS_REC brought along below it; Docker 25+ asks mount_setattr(2) with
// AT_RECURSIVE (Linux 5.12) to make them all read-only.
fn remount_read_only(rootfs: &Path, target: &Path, kind: TargetKind) -> Result<()> {
    // Opened again: the descriptor used to mount names the file under the
    // new mount; the path now crosses into the new mount.
    let mounted = open_in_root(rootfs, target, kind)?;
    let existing = nix::sys::statvfs::fstatvfs(&mounted)
        .with_context(|| format!("reading the flags of the mount at {}", target.display()))?
        .flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (have, keep) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if existing.contains(have) {
            flags |= keep;
        }
    }
    mounted.mount(None, None, flags, None)
}
// ANCHOR_END: mount_volume

// ANCHOR: mount_tmpfs
/// In the child, before pivot_root: mounts a new tmpfs at `tmpfs.target`
/// inside `rootfs`, with its flags and options.
pub fn mount_tmpfs(rootfs: &Path, tmpfs: &Tmpfs) -> Result<()> {
    let target = open_in_root(rootfs, &tmpfs.target, TargetKind::Dir)?;
    let data = Some(tmpfs.data.as_str()).filter(|d| !d.is_empty());
    target
        .mount(Some("tmpfs"), Some("tmpfs"), tmpfs.flags, data)
        .with_context(|| format!("--tmpfs {}", tmpfs.target.display()))
}
// ANCHOR_END: mount_tmpfs

#[cfg(test)]
mod tests {
    use super::*;

    fn err(raw: &str) -> String {
        parse_volume(raw).unwrap_err().to_string()
    }

    #[test]
    fn the_three_forms_of_v() {
        let bind = parse_volume("/srv/site:/usr/share/html:ro").unwrap();
        assert_eq!(bind.source, Source::Host("/srv/site".into()));
        assert_eq!(bind.target, Path::new("/usr/share/html"));
        assert!(bind.read_only);
        assert!(!parse_volume("/srv:/data:rw").unwrap().read_only);
        assert!(!parse_volume("/srv:/data").unwrap().read_only);

        let named = parse_volume("pgdata:/var/lib/pg:ro,nocopy").unwrap();
        assert_eq!(named.source, Source::Named("pgdata".into()));
        assert!(named.read_only && named.no_copy);

        let anonymous = parse_volume("/data").unwrap();
        assert_eq!(anonymous.source, Source::Anonymous);
        assert_eq!(anonymous.target, Path::new("/data"));
    }

    #[test]
    fn paths_are_cleaned_as_go_cleans_them() {
        let spec = parse_volume("/srv//a/./b/:/x/../data/").unwrap();
        assert_eq!(spec.source, Source::Host("/srv/a/b".into()));
        assert_eq!(spec.target, Path::new("/data"));
        assert_eq!(clean("/../../etc"), "/etc");
    }

    #[test]
    fn dockers_messages_for_bad_specifications() {
        assert_eq!(err(""), "invalid volume specification: ''");
        assert_eq!(err(":/data"), "invalid volume specification: ':/data'");
        assert_eq!(
            err("/a:/b:ro:x"),
            "invalid volume specification: '/a:/b:ro:x'"
        );
        assert_eq!(err("/data:ro"), "invalid volume specification: '/data:ro'");
        assert_eq!(err("/a:/b:rx"), "invalid mode: rx");
        assert_eq!(err("/a:/b:ro,rw"), "invalid mode: ro,rw");
        assert!(err("/a:/b:z").starts_with("invalid mode: z: "));
        assert!(err("/a:/b:rshared").starts_with("invalid mode: rshared: "));
        assert_eq!(
            err("/a:data"),
            "invalid volume specification: '/a:data': invalid mount config for type \
             \"bind\": invalid mount path: 'data' mount path must be absolute"
        );
        assert_eq!(
            err("vol:data"),
            "invalid volume specification: 'vol:data': invalid mount config for type \
             \"volume\": invalid mount path: 'data' mount path must be absolute"
        );
        assert_eq!(
            err("/a:/"),
            "invalid volume specification: '/a:/': invalid mount config for type \
             \"bind\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            err("/a:/x/.."),
            "invalid volume specification: '/a:/x/..': invalid mount config for type \
             \"bind\": invalid specification: destination can't be '/'"
        );
        // An empty destination is an empty mode, and `/a` then a destination
        // with a mode: Docker's parser says so, without details.
        assert_eq!(err("/a:"), "invalid volume specification: '/a:'");
        assert_eq!(
            err("./data:/data"),
            "create ./data: \"./data\" includes invalid characters for a local volume \
             name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass \
             a host directory, use absolute path"
        );
        assert!(err("relative").contains("mount path must be absolute"));
    }

    #[test]
    fn volume_names_follow_dockers_pattern() {
        for good in ["ab", "pg-data", "a.b_c", "0x"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["a", "-ab", ".ab", "_ab", "a b", "a/b", "ä1", ""] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_defaults_and_options() {
        let plain = parse_tmpfs("/run").unwrap();
        assert_eq!(plain.target, Path::new("/run"));
        assert_eq!(
            plain.flags,
            MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV
        );
        assert_eq!(plain.data, "");

        let sized = parse_tmpfs("/cache:size=64m,mode=1770,exec,ro").unwrap();
        assert_eq!(
            sized.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RDONLY
        );
        assert_eq!(sized.data, "mode=1770,size=64m");
        // A later word wins over an earlier one.
        assert!(
            parse_tmpfs("/x:exec,noexec")
                .unwrap()
                .flags
                .contains(MsFlags::MS_NOEXEC)
        );
    }

    #[test]
    fn tmpfs_errors() {
        let e = |raw: &str| parse_tmpfs(raw).unwrap_err().to_string();
        assert_eq!(
            e("run"),
            "invalid mount config for type \"tmpfs\": invalid mount path: 'run' mount path \
             must be absolute"
        );
        assert_eq!(
            e("/"),
            "invalid mount config for type \"tmpfs\": invalid specification: destination \
             can't be '/'"
        );
        assert_eq!(e("/run:bogus"), "invalid tmpfs option \"bogus\" for /run");
        assert_eq!(e("/run:size="), "invalid tmpfs option \"size=\" for /run");
        assert_eq!(
            e("/run:mode=rwx"),
            "invalid tmpfs mode \"rwx\": expected octal, like 1777"
        );
    }

    #[test]
    fn the_prune_report_reads_as_dockers() {
        let pruned = Pruned {
            removed: vec!["a1".into(), "b2".into()],
            reclaimed: 1234,
        };
        assert_eq!(
            pruned.report(),
            "Deleted Volumes:\na1\nb2\n\nTotal reclaimed space: 1.23kB\n"
        );
        assert_eq!(Pruned::default().report(), "Total reclaimed space: 0B\n");
    }
}
