//! The concept of this chapter: a mount namespace rearranged until a directory
//! is the container's `/` and the host's tree is gone.
//!
//! After `clone(CLONE_NEWNS)` the child has a *copy* of the host's mount table.
//! A copy, but not necessarily a separate one: with *shared* propagation (the
//! default on systemd hosts, where `/` is mounted `shared`), a mount made in the
//! copy appears in the host too, and an unmount there unmounts the host's. So the
//! first step is always to make every mount private ([`make_private`]).
//!
//! Every function here runs in the child, in the new mount namespace.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ch02_pid_namespace::namespace::privileged;
use ch03_uts_namespace::uts;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, umount2};
use nix::sched::CloneFlags;

use crate::dev;
use crate::in_root::{self, Place, TargetKind};

/// The namespaces a container gets from this chapter on: chapter 3's, and a
/// mount namespace of its own.
pub const NAMESPACES: CloneFlags = uts::NAMESPACES.union(CloneFlags::CLONE_NEWNS);

/// How the child enters its root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// `pivot_root(2)`, then unmount the old root: the host's tree is gone.
    PivotRoot,
    /// `chroot(2)`: only path lookups change; the host's tree is still mounted.
    /// For the demonstration of why runtimes do not use it.
    Chroot,
}

// ANCHOR: enter_root
/// The last steps of every container's mount setup, from this chapter on, once
/// `rootfs` is a mount point in a private mount namespace: the kernel's
/// filesystems inside it (a /proc for the new PID namespace, a read-only /sys,
/// a minimal /dev), then `pivot_root` into it (or, for the demonstration,
/// `chroot`). After this the container's `/` is `rootfs`.
pub fn enter_root(rootfs: &Path, isolation: Isolation) -> Result<()> {
    mount_proc(rootfs)?; // a /proc for our PID namespace
    mount_sys_readonly(rootfs)?;
    dev::mount_dev(rootfs)?;
    match isolation {
        Isolation::PivotRoot => pivot_root(rootfs), // the host is gone
        Isolation::Chroot => chroot(rootfs),        // the host is hidden
    }
}
// ANCHOR_END: enter_root

/// `mount(2)` with a message naming what was mounted where, and the EPERM advice.
pub fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount_named(source, target, target, fstype, flags, data)
}

/// [`mount`] on `target`, with `shown` in the message: the `/proc/self/fd/N`
/// of a [`Place`] means nothing to a reader.
pub(crate) fn mount_named(
    source: Option<&str>,
    target: &Path,
    shown: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    nix::mount::mount(source, target, fstype, flags, data).map_err(|errno| {
        privileged(
            errno,
            format!(
                "mount {} on {}",
                fstype.or(source).unwrap_or("(flags)"),
                shown.display()
            ),
        )
    })
}

// ANCHOR: make_private
/// Makes every mount in this namespace private, recursively: from now on,
/// mounts and unmounts here do not propagate to the host, nor the host's to us.
///
/// Without this step, on a host where `/` is shared (every systemd host), the
/// bind mount, /proc, /dev and /sys mounted below appear in the host's mount
/// table too, and stay there after the container is gone; and pivot_root fails
/// with EINVAL, because it refuses to move mounts with shared propagation.
pub fn make_private() -> Result<()> {
    mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
}
// ANCHOR_END: make_private

// ANCHOR: bind_onto_itself
/// Bind-mounts `rootfs` onto itself. `pivot_root(2)` requires the new root to be
/// a mount point, and a plain directory is not one until we make it so.
pub fn bind_onto_itself(rootfs: &Path) -> Result<()> {
    let source = rootfs.to_str().context("the rootfs path is not UTF-8")?;
    mount(
        Some(source),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
}
// ANCHOR_END: bind_onto_itself

// ANCHOR: kernel_filesystems
/// Mounts a new procfs on `rootfs/proc`. A procfs shows the PID namespace of the
/// process that mounted it, and we are PID 1 of the container's: from now on
/// `ps` inside sees the container's processes only.
pub fn mount_proc(rootfs: &Path) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_point(rootfs, "proc")?.mount(Some("proc"), Some("proc"), flags, None)
}

/// Mounts sysfs read-only on `rootfs/sys`: programs read it (to count CPUs, for
/// example), but the container has no business changing the host's devices.
pub fn mount_sys_readonly(rootfs: &Path) -> Result<()> {
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let sys = mount_point(rootfs, "sys")?;
    match nix::mount::mount(
        Some("sysfs"),
        &sys.proc_path(),
        Some("sysfs"),
        flags,
        None::<&str>,
    ) {
        // A sysfs belongs to a network namespace: in a user namespace
        // (chapter 13) sharing the host's network, only the host's root may
        // mount one. The host's is bound instead, read-only, as runc does.
        Err(Errno::EPERM) => {
            sys.mount(Some("/sys"), None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
            // Opened again: the bind mount is on top now.
            let bound = mount_point(rootfs, "sys")?;
            bound.mount(
                None,
                None,
                flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None,
            )
        }
        mounted => mounted.map_err(|errno| {
            privileged(errno, format!("mount sysfs on {}", sys.shown().display()))
        }),
    }
}
// ANCHOR_END: kernel_filesystems

// ANCHOR: mount_point
/// `rootfs/name` (`proc`, `sys`), opened inside the root filesystem, and
/// created there if the image lacks it.
///
/// It must be an ordinary directory: an image whose `/proc` is a symbolic
/// link is refused, as runc refuses it. Following the link, even inside the
/// root, would put the kernel's files somewhere else and leave the image's
/// `/proc` path to the image; every later check of a path under `/proc`
/// (chapter 12 covers some) would look at the wrong thing.
pub fn mount_point(rootfs: &Path, name: &str) -> Result<Place> {
    // `rootfs` is ours and `name` one component: lstat sees the image's entry.
    let path = rootfs.join(name);
    if path.symlink_metadata().is_ok_and(|meta| !meta.is_dir()) {
        bail!(
            "refusing to mount {name} on {}: a symbolic link or a file, not an ordinary directory",
            path.display()
        );
    }
    in_root::open_in_root(rootfs, Path::new(name), TargetKind::Dir)
}
// ANCHOR_END: mount_point

// ANCHOR: pivot_root
/// Makes `rootfs` the root of this mount namespace and detaches the old root, so
/// that no path leads back to the host's files.
///
/// `pivot_root(new, old)` moves the current root to `old` (which must be under
/// `new`) and makes `new` the root. Passing "." for both is a trick runc uses: with
/// `new` as the working directory, the old root is stacked on top of the new one at
/// "/", and unmounting "." removes it, with no directory to create in the rootfs.
pub fn pivot_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(|errno| privileged(errno, format!("pivot_root into {}", rootfs.display())))?;
    // MNT_DETACH: the old root is busy (we are using it), so detach it now and
    // let the kernel finish the unmount when nothing uses it any more.
    umount2(".", MntFlags::MNT_DETACH).context("unmounting the old root")?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}
// ANCHOR_END: pivot_root

// ANCHOR: chroot
/// The insecure alternative, for the demonstration: `chroot(2)` only changes
/// where path lookups start for this process. The host's tree stays mounted in
/// the namespace, one `chroot-escape` away (see the chapter's page).
pub fn chroot(rootfs: &Path) -> Result<()> {
    nix::unistd::chroot(rootfs)
        .map_err(|errno| privileged(errno, format!("chroot {}", rootfs.display())))?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}
// ANCHOR_END: chroot
