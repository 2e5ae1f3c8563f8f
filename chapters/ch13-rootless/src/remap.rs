//! `--userns auto`: a container started by the host's root, in a user
//! namespace of its own, whose root is an unprivileged range of host IDs
//! (Docker's `userns-remap`, podman's `--userns=auto`).
//!
//! Rootless minibox (the rest of this chapter) is an ordinary user who is
//! root in a namespace. Here it is the other way round: minibox is the
//! host's root, and it gives the *container* a namespace in which its root
//! stands for host UID 100000 (say), a user who owns nothing on the host. A
//! process that escapes the container's other namespaces is still nobody.
//!
//! Three things make that work, each at its place of chapter 10's start
//! ([`ch10_runtime::hardening::UserNamespace`]):
//!
//! 1. **A range per container** ([`allocate`]): 65536 IDs, from the ranges
//!    `/etc/subuid` and `/etc/subgid` grant a user named `minibox` if there
//!    is one, else from a fixed pool ([`POOL_BASE`], at most [`POOL_SIZE`]
//!    ranges) that skips every range those files grant anyone. No two
//!    containers of one store share a range; the container's record keeps
//!    its own ([`Remap::word`]).
//! 2. **Maps written by the monitor** ([`Remap`]'s `write_maps`): root may
//!    write any map for its child, no `newuidmap` needed.
//! 3. **An idmapped root filesystem** ([`idmapped_root`]): the image's files
//!    are owned by host 0, 1000, ...; through a mount with
//!    `MOUNT_ATTR_IDMAP` (`mount_setattr(2)`, Linux 5.12) they show as
//!    100000, 101000, ..., so root in the container sees its files as its
//!    own. overlayfs stacks idmapped layers since Linux 5.19.
//!
//! Kernel interfaces: `user_namespaces(7)`, `open_tree(2)`,
//! `mount_setattr(2)`, `fsopen(2)`, `fsconfig(2)`, `fsmount(2)`,
//! `move_mount(2)`.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ch01_fork_exec::exit::FailsWith;
use ch02_pid_namespace::namespace;
use ch05_cgroups::cgroup::Cgroup;
use ch06_rootfs_snapshot::snapshot::{self, Snapshot, Snapshotter};
use ch08_command_override::exec::AroundSwitch;
use ch08_command_override::user::User;
use ch09_networking::ipam::Holder;
use ch10_runtime::container::Spec;
use ch10_runtime::hardening::{self, Confinement, UserNamespace};
use ch10_runtime::state::{self, Store};
use ch10_runtime::volumes::Mount;
use ch12_security::cli::SecurityArgs;
use ch12_security::confine::Hardened;
use nix::fcntl::{Flock, FlockArg};
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid};

use crate::userns::{self, Range};

/// How many IDs a container's namespace maps: 0 to 65535, as Docker's
/// and podman's (every ID an image's `/etc/passwd` may name).
pub const SIZE: u32 = 65536;

/// The fixed pool's first host ID, without a `minibox` user: Docker's
/// `dockremap` range starts there too.
pub const POOL_BASE: u32 = 100_000;

/// How many ranges the fixed pool has: at most this many containers of one
/// store run with `--userns auto` (host IDs up to 100000 + 1024 × 65536,
/// about 67 million, well below 2³²).
pub const POOL_SIZE: u32 = 1024;

/// The user whose `/etc/subuid` and `/etc/subgid` ranges `--userns auto`
/// takes, when there is one (Docker's is `dockremap`, podman's
/// `containers`).
pub const RANGES_USER: &str = "minibox";

// ANCHOR: mode
/// `--userns`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `host` (or `""`, or no flag): the host's user namespace, as before.
    Host,
    /// `auto`: a namespace of the container's own, with a range of its own.
    Auto,
}

impl Mode {
    /// Reads `--userns`'s value; anything else is one line, exit 125.
    pub fn parse(value: Option<&str>) -> Result<Mode> {
        match value {
            None | Some("" | "host") => Ok(Mode::Host),
            Some("auto") => Ok(Mode::Auto),
            Some(other) => Err(FailsWith {
                status: 125,
                error: anyhow!("invalid --userns {other:?}: use host or auto"),
            }
            .into()),
        }
    }
}
// ANCHOR_END: mode

// ANCHOR: remap
/// One container's namespace: its range of host user and group IDs, from
/// container ID 0 on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remap {
    /// The `uid_map` line.
    pub uids: Range,
    /// The `gid_map` line.
    pub gids: Range,
}

/// How the container's record keeps it, among chapter 12's flags (chapter
/// 10's `StartFlags::extra`): `--userns=auto:uidmapping=0:100000:65536,...`,
/// podman's spelling.
const WORD: &str = "--userns=auto:";

impl Remap {
    /// The range number `k` of `pool`'s.
    fn of(uid: u32, gid: u32) -> Remap {
        let range = |outside| Range {
            inside: 0,
            outside,
            count: SIZE,
        };
        Remap {
            uids: range(uid),
            gids: range(gid),
        }
    }

    /// The record's word for it.
    pub fn word(&self) -> String {
        let one = |r: &Range| format!("{}:{}:{}", r.inside, r.outside, r.count);
        format!(
            "{WORD}uidmapping={},gidmapping={}",
            one(&self.uids),
            one(&self.gids)
        )
    }

    /// Reads [`Remap::word`]'s word again; `None` for another word.
    pub fn from_word(word: &str) -> Option<Result<Remap>> {
        let rest = word.strip_prefix(WORD)?;
        let range = |key: &str| -> Result<Range> {
            let value = rest
                .split(',')
                .find_map(|part| part.strip_prefix(key))
                .with_context(|| format!("{word:?} has no {key}"))?;
            let numbers: Vec<u32> = value
                .split(':')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .with_context(|| format!("{word:?}: a bad {key}"))?;
            let [inside, outside, count] = numbers[..] else {
                bail!("{word:?}: a bad {key}");
            };
            Ok(Range {
                inside,
                outside,
                count,
            })
        };
        Some(range("uidmapping=").and_then(|uids| {
            Ok(Remap {
                uids,
                gids: range("gidmapping=")?,
            })
        }))
    }

    /// The host's user and group that root in the container stands for.
    pub fn root(&self) -> (Uid, Gid) {
        (
            Uid::from_raw(self.uids.outside),
            Gid::from_raw(self.gids.outside),
        )
    }
}
// ANCHOR_END: remap

// ANCHOR: allocate
/// The ranges `--userns auto` chooses from: the `minibox` user's
/// subordinate ranges, cut into ranges of [`SIZE`], uid and gid ranges
/// paired in order; without such a user, the fixed pool, less every range
/// `/etc/subuid` or `/etc/subgid` grants (those IDs are someone's).
pub fn pool(etc: &Path) -> Result<Vec<Remap>> {
    let granted = |file: &str| -> Result<Vec<(u32, u32)>> {
        let uid = nix::unistd::User::from_name(RANGES_USER)?
            .map_or(Uid::from_raw(u32::MAX), |user| user.uid);
        userns::subordinate(&etc.join(file), RANGES_USER, uid)
    };
    let cut = |ranges: Vec<(u32, u32)>| -> Vec<u32> {
        ranges
            .into_iter()
            .flat_map(|(start, count)| (0..count / SIZE).map(move |k| start + k * SIZE))
            .collect()
    };
    let (uids, gids) = (cut(granted("subuid")?), cut(granted("subgid")?));
    if !uids.is_empty() && !gids.is_empty() {
        return Ok(uids
            .into_iter()
            .zip(gids)
            .map(|(u, g)| Remap::of(u, g))
            .collect());
    }
    let mut taken = Vec::new();
    for file in ["subuid", "subgid"] {
        if let Ok(text) = fs::read_to_string(etc.join(file)) {
            taken.extend(text.lines().filter_map(any_range));
        }
    }
    Ok((0..POOL_SIZE)
        .map(|k| POOL_BASE + k * SIZE)
        .filter(|&base| {
            let end = u64::from(base) + u64::from(SIZE);
            !taken.iter().any(|&(start, count)| {
                u64::from(start) < end && u64::from(base) < start as u64 + count as u64
            })
        })
        .map(|base| Remap::of(base, base))
        .collect())
}

/// The range of a line `NAME:START:COUNT`, whoever's it is.
fn any_range(line: &str) -> Option<(u32, u32)> {
    let mut fields = line.trim().split(':').skip(1);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// A range taken for a container that `run` or `create` is making: until
/// its record names it, a file under `ROOT/userns/` names it, with the
/// process that took it. Dropped once the record exists (or the creation
/// failed).
pub struct Reservation {
    /// The range.
    pub remap: Remap,
    file: PathBuf,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

/// Takes the first range of [`pool`] that no container of the store at
/// `root` has, and no other minibox is taking: under an exclusive lock,
/// every record's range ([`Remap::from_word`]) and every reservation of a
/// process still alive count as taken.
// SIMPLIFICATION: ranges are unique within one store, as podman's
// `--userns=auto` within its storage; two stores on one host draw from the
// same pool. Docker's `userns-remap` gives every container the same range.
pub fn allocate(root: &Path) -> Result<Reservation> {
    let dir = root.join("userns");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join("lock"))
        .context("opening the userns lock")?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow!("locking the userns lock: {errno}"))?;
    let store = Store::new(root, &state::run_dir());
    let mut taken: Vec<u32> = store
        .list::<Spec>()?
        .iter()
        .flat_map(|c| c.record.config.flags.extra.clone())
        .filter_map(|word| Remap::from_word(&word)?.ok())
        .map(|remap| remap.uids.outside)
        .collect();
    for entry in fs::read_dir(&dir)?.flatten() {
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        let mut fields = text.split_whitespace();
        let holder = (|| {
            Some(Holder {
                pid: fields.next()?.parse().ok()?,
                start_time: fields.next()?.parse().ok()?,
            })
        })();
        match (holder, entry.file_name().to_string_lossy().parse()) {
            (Some(holder), Ok(base)) if holder.is_alive() => taken.push(base),
            _ => {}
        }
    }
    let pool = pool(Path::new("/etc"))?;
    let remap = pool
        .iter()
        .find(|r| !taken.contains(&r.uids.outside))
        .copied()
        .with_context(|| {
            format!(
                "--userns auto: every range of IDs is taken ({} of {SIZE} IDs each); remove containers, or grant the user {RANGES_USER} more in /etc/subuid and /etc/subgid",
                pool.len()
            )
        })?;
    let me = Holder::of(std::process::id() as i32)?.context("reading this process's start time")?;
    let file = dir.join(remap.uids.outside.to_string());
    fs::write(&file, format!("{} {}\n", me.pid, me.start_time))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(Reservation { remap, file })
}
// ANCHOR_END: allocate

// ANCHOR: namespace
impl UserNamespace for Remap {
    fn prepare(&self, snapshot: &Snapshot, mounts: &[Mount]) -> Result<OwnedFd> {
        let (uid, gid) = self.root();
        reachable(&snapshot.dir, uid)?;
        for mount in mounts.iter().filter(|m| m.volume.is_some()) {
            give_volume(&mount.source, uid, gid)?;
        }
        idmapped_root(snapshot, self)
    }

    fn write_maps(&self, child: Pid) -> Result<()> {
        let maps = userns::IdMaps {
            uids: vec![self.uids],
            gids: vec![self.gids],
            writer: userns::Writer::Root,
        };
        userns::write_maps(child, &maps).context("the container's maps")
    }

    fn become_root(&self) -> Result<()> {
        // Until now the child kept the host's root's IDs, which mean nothing
        // in its namespace (they show as 65534). From here on, whatever it
        // makes is owned by the range's first IDs on the host.
        nix::unistd::setgroups(&[]).context("setgroups in the user namespace")?;
        let root = (Gid::from_raw(0), Uid::from_raw(0));
        nix::unistd::setresgid(root.0, root.0, root.0)
            .context("setresgid(0) in the user namespace")?;
        nix::unistd::setresuid(root.1, root.1, root.1).context("setresuid(0) in the user namespace")
    }

    fn mount_root(&self, root: &OwnedFd, rootfs: &Path) -> Result<()> {
        let target = c_path(rootfs)?;
        // SAFETY: move_mount(2) with a descriptor we own and two C strings
        // that outlive the call.
        let moved = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                root.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if moved != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| {
                format!("move_mount of the idmapped root onto {}", rootfs.display())
            });
        }
        Ok(())
    }

    fn mode(&self) -> String {
        "auto".into()
    }

    fn maps(&self) -> (Vec<String>, Vec<String>) {
        let line = |r: Range| userns::map_text(&[r]).trim_end().to_string();
        (vec![line(self.uids)], vec![line(self.gids)])
    }
}
// ANCHOR_END: namespace

/// The container's root (host `uid`) must pass through every directory
/// down to its snapshot `dir`, whose `rootfs/` it mounts on and enters, and
/// whose `/etc` files it binds: minibox's own directories (the store's
/// root, `containers/`) get search permission for others, as Docker makes
/// `/var/lib/docker` 0711 when it remaps; one above them that refuses is
/// the administrator's to open.
fn reachable(dir: &Path, uid: Uid) -> Result<()> {
    let containers = dir.parent().context("a snapshot has a parent")?;
    let root = containers.parent().context("a store has a root")?;
    for ours in [root, containers, dir] {
        let mode = fs::metadata(ours)?.permissions().mode();
        if mode & 0o001 == 0 {
            fs::set_permissions(ours, fs::Permissions::from_mode(mode | 0o001))
                .with_context(|| format!("chmod o+x {}", ours.display()))?;
        }
    }
    for above in root.ancestors().skip(1) {
        let meta = fs::metadata(above)?;
        if meta.permissions().mode() & 0o001 == 0 {
            bail!(
                "{} is not searchable by others, and the container's root (host UID {uid}) must pass through it to reach the store {}: chmod o+x {}, or set MINIBOX_ROOT elsewhere",
                above.display(),
                root.display(),
                above.display()
            );
        }
    }
    Ok(())
}

// SIMPLIFICATION: the container's `/etc/hostname`, `hosts` and
// `resolv.conf` (chapter 9's, written by the monitor) stay the host root's:
// the container's root reads them but cannot change them. Docker gives them
// to the remapped root.

/// A volume's `_data` (`ROOT/volumes/NAME/_data`), as minibox made it (the
/// host's root's, empty) becomes the container's root's, and reachable, as
/// Docker's volumes are the remapped root's. One that has files already
/// (a volume another container filled) is left as it is.
fn give_volume(data: &Path, uid: Uid, gid: Gid) -> Result<()> {
    let meta = fs::metadata(data).with_context(|| format!("reading {}", data.display()))?;
    if !meta.is_dir() {
        return Ok(());
    }
    if let Some(volume) = data.parent() {
        for dir in [volume.parent().unwrap_or(volume), volume] {
            let mode = fs::metadata(dir)?.permissions().mode();
            fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o001))?;
        }
    }
    let empty = fs::read_dir(data)?.next().is_none();
    if meta.uid() == 0 && empty {
        nix::unistd::chown(data, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", data.display()))?;
    }
    Ok(())
}

// ANCHOR: idmapped_root
/// The container's root filesystem, mounted for `remap` and not attached
/// anywhere yet (the child moves it into place, [`UserNamespace::mount_root`]).
///
/// Each image layer is cloned as a detached mount (`open_tree(2)` with
/// `OPEN_TREE_CLONE`) and idmapped with the container's maps
/// (`mount_setattr(2)`, `MOUNT_ATTR_IDMAP`, which takes them from a user
/// namespace: [`maps_namespace`]). Then an overlay over them is made with
/// the new mount API (`fsopen`, `fsconfig`, `fsmount`), by the host's root:
/// overlayfs reads its `trusted.overlay.*` attributes (the image's opaque
/// directories) with its mounter's rights, which root in the container
/// lacks. Its writable layer is not idmapped: what the container writes
/// there is owned by the range on the host. The copy snapshotter's copy is
/// idmapped whole.
pub fn idmapped_root(snapshot: &Snapshot, remap: &Remap) -> Result<OwnedFd> {
    let userns = maps_namespace(remap)?;
    match snapshot.snapshotter {
        Snapshotter::Copy => idmapped_clone(&snapshot.rootfs(), &userns),
        Snapshotter::Overlay => {
            let layers: Vec<OwnedFd> = snapshot::lower_dirs(&snapshot.layers)
                .into_iter()
                .map(|layer| idmapped_clone(layer, &userns))
                .collect::<Result<_>>()?;
            let lower: Vec<String> = layers
                .iter()
                .map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .collect();
            // The overlay's root directory is the writable layer's own: the
            // image's root, owned by the container's root.
            let upper = snapshot.upper();
            let (uid, gid) = remap.root();
            nix::unistd::chown(&upper, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", upper.display()))?;
            let options = [
                ("lowerdir", lower.join(":")),
                ("upperdir", upper.display().to_string()),
                ("workdir", snapshot.dir.join("work").display().to_string()),
            ];
            new_mount("overlay", &options).context("mounting the overlay over the idmapped layers (overlayfs accepts idmapped layers from Linux 5.19)")
        }
    }
}
// ANCHOR_END: idmapped_root

// ANCHOR: maps_namespace
/// A user namespace with `remap`'s maps, for `mount_setattr(2)` to copy
/// them from: a child is cloned into a new one, its maps written, the
/// namespace opened, and the child ended. The mount keeps the maps, not the
/// namespace, so the container's own (made later, with the same maps) and
/// this one are interchangeable.
fn maps_namespace(remap: &Remap) -> Result<File> {
    let child = namespace::clone_child(CloneFlags::CLONE_NEWUSER, || {
        loop {
            nix::unistd::pause(); // until the parent kills it
        }
    })?;
    let opened = remap.write_maps(child).and_then(|()| {
        File::open(format!("/proc/{child}/ns/user")).context("opening the namespace")
    });
    let _ = kill(child, Signal::SIGKILL);
    ch01_fork_exec::process::wait_for(child)?;
    opened.context("making a user namespace with the container's maps")
}
// ANCHOR_END: maps_namespace

/// `path`'s tree, cloned as a detached mount and idmapped with the maps of
/// `userns`.
fn idmapped_clone(path: &Path, userns: &File) -> Result<OwnedFd> {
    let c = c_path(path)?;
    // SAFETY: open_tree(2) with a C string that outlives the call; it
    // returns a new descriptor, which we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("open_tree {}", path.display()));
    }
    // SAFETY: the descriptor is new and ours alone.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr(2) on our descriptor, with an attribute struct
    // of the size we pass, both alive for the call.
    let set = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if set != 0 {
        let error = std::io::Error::last_os_error();
        return Err(anyhow!(
            "idmapping {}: {error} (idmapped mounts need Linux 5.12 or later, and a filesystem that supports them)",
            path.display()
        ));
    }
    Ok(tree)
}

/// A new, detached mount of filesystem `fstype` with `options`
/// (`fsopen`, `fsconfig`, `fsmount`).
fn new_mount(fstype: &str, options: &[(&str, String)]) -> Result<OwnedFd> {
    let last = || std::io::Error::last_os_error();
    let fstype = CString::new(fstype)?;
    // SAFETY: fsopen(2) with a C string alive for the call; a new descriptor.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(last()).context("fsopen");
    }
    // SAFETY: the descriptor is new and ours alone.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    for (key, value) in options {
        let (key_c, value_c) = (CString::new(*key)?, CString::new(value.as_str())?);
        // SAFETY: fsconfig(2) on our descriptor with C strings alive for the call.
        let set = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                key_c.as_ptr(),
                value_c.as_ptr(),
                0,
            )
        };
        if set != 0 {
            return Err(last()).with_context(|| format!("fsconfig {key}={value}"));
        }
    }
    // SAFETY: fsconfig(2) and fsmount(2) on our descriptor, no pointers.
    let created = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if created != 0 {
        return Err(last()).context("fsconfig(FSCONFIG_CMD_CREATE)");
    }
    // SAFETY: as above.
    let mount =
        unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), libc::FSMOUNT_CLOEXEC, 0) };
    if mount < 0 {
        return Err(last()).context("fsmount");
    }
    // SAFETY: the descriptor is new and ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(mount as i32) })
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .with_context(|| format!("{} has a NUL byte", path.display()))
}

// ANCHOR: remapped
/// Chapter 12's confinement, with the container's own user namespace when
/// its record has one.
pub struct Remapped {
    /// Chapter 12's.
    pub hardened: Box<dyn Confinement>,
    /// `--userns auto`'s range, or `None` for the host's namespace.
    pub remap: Option<Remap>,
}

/// Makes chapter 12's confinement, with `--userns auto`'s namespace, the
/// one every start and `exec` of this (root) process applies.
pub fn install() {
    hardening::install(|extra| {
        let (remap, security): (Vec<&String>, Vec<&String>) =
            extra.iter().partition(|word| word.starts_with(WORD));
        let remap = match remap.as_slice() {
            [] => None,
            [word] => Some(Remap::from_word(word).context("a userns word")??),
            _ => bail!("the container's record names two user namespaces"),
        };
        let security: Vec<String> = security.into_iter().cloned().collect();
        let hardened = Hardened::new(&SecurityArgs::from_words(&security)?)?;
        Ok(Box::new(Remapped {
            hardened: Box::new(hardened),
            remap,
        }))
    });
}

impl AroundSwitch for Remapped {
    fn before_switch(&self, user: &User) -> Result<()> {
        self.hardened.before_switch(user)
    }
    fn after_switch(&self, user: &User) -> Result<()> {
        self.hardened.after_switch(user)
    }
}

impl Confinement for Remapped {
    fn on_cgroup(&self, cgroup: &dyn Cgroup) -> Result<()> {
        self.hardened.on_cgroup(cgroup)
    }
    fn in_root(&self) -> Result<()> {
        self.hardened.in_root()
    }
    fn before_join(&self) -> Result<()> {
        self.hardened.before_join()
    }
    fn user_namespace(&self) -> Option<&dyn UserNamespace> {
        self.remap.as_ref().map(|remap| remap as &dyn UserNamespace)
    }
}
// ANCHOR_END: remapped

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_is_host_or_auto_and_nothing_else() {
        assert_eq!(Mode::parse(None).unwrap(), Mode::Host);
        assert_eq!(Mode::parse(Some("")).unwrap(), Mode::Host);
        assert_eq!(Mode::parse(Some("host")).unwrap(), Mode::Host);
        assert_eq!(Mode::parse(Some("auto")).unwrap(), Mode::Auto);
        let bogus = Mode::parse(Some("bogus")).unwrap_err();
        assert_eq!(
            bogus.to_string(),
            "invalid --userns \"bogus\": use host or auto"
        );
    }

    #[test]
    fn the_record_word_reads_back() {
        let remap = Remap::of(165536, 231072);
        let word = remap.word();
        assert_eq!(
            word,
            "--userns=auto:uidmapping=0:165536:65536,gidmapping=0:231072:65536"
        );
        assert_eq!(Remap::from_word(&word).unwrap().unwrap(), remap);
        assert!(Remap::from_word("--cap-add=NET_ADMIN").is_none());
        assert!(
            Remap::from_word("--userns=auto:uidmapping=0:1")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn the_pool_is_the_minibox_users_ranges_or_skips_everyones() {
        let etc = tempfile::tempdir().unwrap();
        let write = |file: &str, text: &str| fs::write(etc.path().join(file), text).unwrap();
        // Without a `minibox` user: the fixed pool, less alice's range.
        write("subuid", "alice:165536:65536\n");
        write("subgid", "alice:165536:65536\n");
        let pool = pool(etc.path()).unwrap();
        assert_eq!(pool[0], Remap::of(100000, 100000));
        assert_eq!(
            pool[1],
            Remap::of(231072, 231072),
            "alice's range is skipped"
        );
        assert_eq!(pool.len() as u32, POOL_SIZE - 1);
        // With one: its ranges, cut in ranges of 65536 (a rest is dropped).
        write("subuid", "alice:165536:65536\nminibox:1000000:140000\n");
        write("subgid", "minibox:2000000:65536\nminibox:3000000:65536\n");
        let pool = super::pool(etc.path()).unwrap();
        assert_eq!(
            pool,
            [Remap::of(1000000, 2000000), Remap::of(1065536, 3000000)]
        );
    }
}
