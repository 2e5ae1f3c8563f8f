//! A minimal `/dev`. The host's /dev has every disk and device of the machine,
//! which a container must not see. Programs still expect a few: /dev/null for
//! "throw it away", /dev/zero and /dev/urandom for bytes, /dev/tty for the
//! terminal, /dev/pts for pseudo-terminals, /dev/shm for POSIX shared memory, and
//! the /dev/fd and /dev/std* links into /proc. This is the set the OCI runtime
//! specification requires (its "default devices"), as runc and crun create it.

use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, makedev, mknodat};
use nix::unistd::symlinkat;

use crate::in_root::{TargetKind, open_in_root};

/// The character devices: name, major, minor (see the kernel's
/// Documentation/admin-guide/devices.txt).
const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

// ANCHOR: mount_dev
/// Mounts a fresh tmpfs on `rootfs/dev` and fills it with the minimal set.
///
/// `/dev` is found inside the root filesystem ([`open_in_root`]): an image
/// whose `/dev` is a symbolic link gets the tmpfs where the link leads inside
/// its root, as runc does. Everything below is then made relative to the
/// tmpfs itself, which is ours and empty: nothing the image has can redirect it.
pub fn mount_dev(rootfs: &Path) -> Result<()> {
    let place = |path: &str| open_in_root(rootfs, Path::new(path), TargetKind::Dir);
    let nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    place("/dev")?.mount(
        Some("tmpfs"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    // A private devpts instance: the container's pseudo-terminals only.
    place("/dev/pts")?.mount(
        Some("devpts"),
        Some("devpts"),
        nosuid_noexec,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    place("/dev/shm")?.mount(
        Some("shm"),
        Some("tmpfs"),
        nosuid_noexec | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )?;
    default_devices(rootfs)
}

/// Makes the default device nodes and links in `rootfs/dev`, leaving any
/// that exist (chapter 14: an engine may have bound its own there).
pub fn default_devices(rootfs: &Path) -> Result<()> {
    // Opened here, after the mounts: the walk ends in the tmpfs.
    let dev = open_in_root(rootfs, Path::new("/dev"), TargetKind::Dir)?;
    for (name, major, minor) in DEVICES {
        let device = makedev(*major, *minor);
        match mknodat(&dev, *name, SFlag::S_IFCHR, Mode::empty(), device) {
            Err(Errno::EEXIST) => continue,
            // In a user namespace (chapter 13) only the host's root may
            // make a device node: the host's own is bound there instead.
            Err(Errno::EPERM) => {
                bind_host_device(rootfs, name)?;
                continue;
            }
            made => made.with_context(|| format!("mknod /dev/{name}"))?,
        }
        // Set the mode after mknod: the mode mknod gets is reduced by the umask.
        let mode = Mode::from_bits_truncate(0o666);
        fchmodat(&dev, *name, mode, FchmodatFlags::FollowSymlink)
            .with_context(|| format!("chmod /dev/{name}"))?;
    }
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        match symlinkat(target, &dev, link) {
            Err(Errno::EEXIST) => {}
            made => made.with_context(|| format!("symlink /dev/{link}"))?,
        }
    }
    Ok(())
}
// ANCHOR_END: mount_dev

/// Binds the host's `/dev/NAME` onto an empty file at the container's, as
/// runc does in a user namespace: the node is the host's, with the host's
/// permissions.
fn bind_host_device(rootfs: &Path, name: &str) -> Result<()> {
    let host = format!("/dev/{name}");
    open_in_root(rootfs, Path::new(&host), TargetKind::File)?
        .mount(Some(&host), None, MsFlags::MS_BIND, None)
        .with_context(|| format!("binding the host's {host}"))
}
