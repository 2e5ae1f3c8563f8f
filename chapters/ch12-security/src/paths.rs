//! Masked and read-only paths: the parts of `/proc` and `/sys` that show or
//! change the host, covered in the container.
//!
//! A container's `/proc` is its own PID namespace's, but much of procfs is
//! not about processes: `/proc/kcore` is the host's memory, `/proc/keys` the
//! kernel's keyrings, `/proc/sys` the host's kernel settings,
//! `/proc/sysrq-trigger` a way to reboot it. Docker hides some of these
//! (masked: `/dev/null` bound over a file, an empty read-only tmpfs over a
//! directory) and makes the others read-only. This runs in the container,
//! after `pivot_root`, so every path is the container's.

use std::path::Path;

use anyhow::{Context, Result};
use ch04_mount_namespace::mount::mount;
use ch06_rootfs_snapshot::snapshot;
use nix::mount::MsFlags;
use nix::sys::statvfs::{FsFlags, statvfs};

// ANCHOR: lists
/// Docker's masked paths.
pub const MASKED: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
// ANCHOR_END: lists

// ANCHOR: mask
/// Hides `path`: a file behind `/dev/null`, a directory behind an empty,
/// read-only tmpfs. A path this kernel does not have is left alone.
pub fn mask(path: &str) -> Result<()> {
    let target = Path::new(path);
    let Ok(metadata) = std::fs::metadata(target) else {
        return Ok(()); // nothing to hide
    };
    if metadata.is_dir() {
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(Some("tmpfs"), target, Some("tmpfs"), flags, None)
    } else {
        mount(Some("/dev/null"), target, None, MsFlags::MS_BIND, None)
    }
}
// ANCHOR_END: mask

// ANCHOR: read_only
/// Makes `path` read-only: bound onto itself, so it is a mount of its own,
/// then that mount remounted read-only (its other flags kept).
pub fn make_read_only(path: &str) -> Result<()> {
    let target = Path::new(path);
    if !target.exists() {
        return Ok(());
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(path), target, None, bind, None)?;
    remount(target, true)
}
// ANCHOR_END: read_only

/// Remounts the mount at `target` read-only (or writable), keeping its
/// `nosuid`, `nodev` and `noexec`: a bind remount changes only this mount,
/// never the filesystem underneath, which others may share.
pub fn remount(target: &Path, read_only: bool) -> Result<()> {
    let now = statvfs(target).with_context(|| format!("statvfs {}", target.display()))?;
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    for (has, flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if now.flags().contains(has) {
            flags |= flag;
        }
    }
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None, target, None, flags, None)
}

/// `--privileged`: a writable `/sys`. Chapter 4 mounted a sysfs read-only,
/// and in a new network namespace that made a new, read-only superblock:
/// remounting only the mount would leave the superblock refusing writes. So
/// it is replaced by a sysfs mounted writable (in the host's network
/// namespace, the host's own sysfs, which is writable already).
pub fn writable_sys() -> Result<()> {
    let sys = Path::new("/sys");
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if snapshot::in_user_namespace() {
        // SIMPLIFICATION: in a user namespace (chapter 13) the kernel
        // refuses both ways: a new sysfs once none is visible, and making
        // the read-only one writable. /sys stays read-only there.
        return Ok(());
    }
    nix::mount::umount2(sys, nix::mount::MntFlags::MNT_DETACH).context("umount /sys")?;
    mount(Some("sysfs"), sys, Some("sysfs"), flags, None)
}
