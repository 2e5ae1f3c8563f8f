//! Paths inside the root filesystem, resolved by the kernel as if the root
//! filesystem were `/`.
//!
//! Every mount point this chapter makes (`/proc`, `/sys`, `/dev`) is a path
//! *in the root filesystem*, and the root filesystem is not the runtime's: from
//! chapter 6 on it is an image from the internet. If the image makes `/dev` a
//! symbolic link to `/etc`, or to `../../../../etc`, then `rootfs.join("dev")`
//! handed to the host's kernel leads to the host's `/etc`, and a runtime that
//! creates directories, device nodes or mounts there changes the host. runc
//! fixed this class of bug more than once (CVE-2019-19921, CVE-2021-30465,
//! CVE-2023-27561; chapter 12 tells the story).
//!
//! So a path in the root filesystem is resolved with `openat2(2)` and
//! `RESOLVE_IN_ROOT`: the kernel walks it as if the root filesystem were `/`,
//! so an absolute link starts again at the root filesystem and `..` stops at
//! it. The walk yields a file descriptor, and mount(2) is given the
//! descriptor's `/proc/self/fd/N`: the place checked is the place mounted on.
//! Chapter 9's `/etc` files, chapter 10's volumes and chapter 11's `COPY` go
//! through here too.
// SIMPLIFICATION: openat2 came with Linux 5.6; runc falls back to a careful
// walk in user space (filepath-securejoin) on older kernels, minibox fails.
// And a mount point behind a link to a missing place is refused here; runc
// creates the place the link names, inside the root.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::MsFlags;
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmod, fchmodat, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// What to make when the last component of a path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A directory: mount points of filesystems and of bound directories.
    Dir,
    /// An empty file: the mount point of a bound file (`/etc/hosts`).
    File,
}

/// A place in the root filesystem, opened: an `O_PATH` descriptor, which can
/// be named in `*at` system calls and, through [`Place::proc_path`], in those
/// that take a path.
#[derive(Debug)]
pub struct Place {
    /// The descriptor, `O_PATH`: it names the file without opening it for
    /// reading or writing.
    fd: OwnedFd,
    /// `rootfs/path` as given, for messages: where a person would look.
    shown: PathBuf,
}

// ANCHOR: open_in_root
/// Opens `path` (as the container names it) inside `root`, resolving it as if
/// `root` were `/`: symbolic links and `..` cannot lead out. Missing
/// components are created one at a time, relative to the directory already
/// resolved: directories, and with [`TargetKind::File`] the last one as an
/// empty file. A link to a missing place is refused rather than followed.
pub fn open_in_root(root: &Path, path: &Path, kind: TargetKind) -> Result<Place> {
    let shown = shown(root, path);
    let root = open_root(root)?;
    let mut here = root.try_clone()?; // the directory resolved so far
    let mut so_far = PathBuf::new();
    let parts: Vec<&OsStr> = path.components().filter_map(walked).collect();
    for (i, name) in parts.iter().enumerate() {
        so_far.push(name);
        here = match resolve(&root, &so_far) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let file = kind == TargetKind::File && i + 1 == parts.len();
                // mkdirat and O_CREAT|O_EXCL never follow a link: a dangling
                // one makes them fail with EEXIST.
                create_at(here.as_fd(), name, file).with_context(|| {
                    format!(
                        "creating {} (a symbolic link to a missing place?)",
                        shown.display()
                    )
                })?;
                resolve(&root, &so_far)
                    .with_context(|| format!("opening the new {}", shown.display()))?
            }
            Err(errno) => {
                return Err(errno).with_context(|| format!("resolving {}", shown.display()));
            }
        };
    }
    let place = Place { fd: here, shown };
    match (kind, place.is_dir()?) {
        (TargetKind::Dir, false) => bail!("{}: not a directory", place.shown.display()),
        (TargetKind::File, true) => bail!("{}: is a directory", place.shown.display()),
        _ => Ok(place),
    }
}

/// `openat2(root, path, O_PATH)` with `RESOLVE_IN_ROOT`, and
/// `RESOLVE_NO_MAGICLINKS`, which refuses links such as `/proc/self/root` on
/// the way (they would lead anywhere, root or not).
fn resolve(root: &OwnedFd, path: &Path) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // EAGAIN: a rename or a mount anywhere on the machine during a walk
    // through `..`, which the kernel cannot then prove stayed inside; it
    // asks to walk again.
    let mut tries = 0;
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN) if tries < 64 => tries += 1,
            result => return result,
        }
    }
}
// ANCHOR_END: open_in_root

/// Opens `path` inside `root` as [`open_in_root`] does, if it exists; creates
/// nothing. For reading what an image has at a path (its `/etc/passwd`).
pub fn find_in_root(root: &Path, path: &Path) -> Result<Option<Place>> {
    let shown = shown(root, path);
    let mut relative: PathBuf = path.components().filter_map(walked).collect();
    if relative.as_os_str().is_empty() {
        relative.push("."); // the root itself
    }
    match resolve(&open_root(root)?, &relative) {
        Ok(fd) => Ok(Some(Place { fd, shown })),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(errno).with_context(|| format!("resolving {}", shown.display())),
    }
}

impl Place {
    /// The path through which a system call that takes a path reaches exactly
    /// this file: the descriptor's magic link in `/proc/self/fd`.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// `rootfs/path`, as the caller named it: for messages.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// Whether it is a directory (a link to one was followed to it).
    pub fn is_dir(&self) -> Result<bool> {
        let stat = fstat(&self.fd).with_context(|| format!("stat {}", self.shown.display()))?;
        Ok(SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
    }

    /// What `name` in this directory is (`S_IFDIR`, `S_IFLNK`, ...), a link
    /// itself and not what it leads to; `None` if there is no such entry.
    pub fn entry_kind(&self, name: impl AsRef<Path>) -> Result<Option<SFlag>> {
        let name = name.as_ref();
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(
                SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT,
            )),
            Err(Errno::ENOENT) => Ok(None),
            Err(errno) => {
                Err(errno).with_context(|| format!("stat {}", self.shown.join(name).display()))
            }
        }
    }

    /// Removes the entry `name` of this directory (not a directory itself);
    /// a link goes, never what it leads to.
    pub fn remove(&self, name: impl AsRef<Path>) -> Result<()> {
        let name = name.as_ref();
        unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir)
            .with_context(|| format!("remove {}", self.shown.join(name).display()))
    }

    // ANCHOR: place_mount
    /// mount(2) on this place, through its `/proc/self/fd/N`; messages name
    /// it as `rootfs/path`.
    pub fn mount(
        &self,
        source: Option<&str>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        crate::mount::mount_named(source, &self.proc_path(), &self.shown, fstype, flags, data)
    }
    // ANCHOR_END: place_mount
}

impl AsFd for Place {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The components a walk takes: names and `..` (which the kernel keeps
/// inside the root); `/` and `.` change nothing.
fn walked(component: Component<'_>) -> Option<&OsStr> {
    match component {
        Component::Normal(_) | Component::ParentDir => Some(component.as_os_str()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    }
}

/// `root/path`, for messages.
fn shown(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The root filesystem itself, a directory the caller chose (trusted).
fn open_root(root: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening the root filesystem {}", root.display()))
}

/// Creates `name` in the directory `dir`: a directory, or an empty file,
/// mode 0755 or 0644 whatever the umask (what Docker makes).
fn create_at(dir: BorrowedFd<'_>, name: &OsStr, file: bool) -> Result<()> {
    if file {
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o644);
        fchmod(nix::fcntl::openat(dir, name, flags, mode)?, mode)?;
    } else {
        let mode = Mode::from_bits_truncate(0o755);
        mkdirat(dir, name, mode)?;
        // Following a link is impossible here: `name` is the directory just
        // made, in a root filesystem nothing runs in yet.
        fchmodat(dir, name, mode, FchmodatFlags::FollowSymlink)?;
    }
    Ok(())
}
