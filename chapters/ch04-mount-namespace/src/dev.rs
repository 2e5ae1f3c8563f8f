//! A minimal `/dev`. The host's /dev has every disk and device of the machine,
//! which a container must not see. Programs still expect a few: /dev/null for
//! "throw it away", /dev/zero and /dev/urandom for bytes, /dev/tty for the
//! terminal, /dev/pts for pseudo-terminals, /dev/shm for POSIX shared memory, and
//! the /dev/fd and /dev/std* links into /proc. This is the set the OCI runtime
//! specification requires (its "default devices"), as runc and crun create it.

use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag, fchmodat, makedev, mknod};

use crate::mount::{mount, mount_point};

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
pub fn mount_dev(rootfs: &Path) -> Result<()> {
    let dev = mount_point(rootfs, "dev")?;
    let nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(*major, *minor),
        )
        .with_context(|| format!("mknod {}", path.display()))?;
        // Set the mode after mknod: the mode mknod gets is reduced by the umask.
        let mode = Mode::from_bits_truncate(0o666);
        fchmodat(
            nix::fcntl::AT_FDCWD,
            &path,
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .with_context(|| format!("chmod {}", path.display()))?;
    }
    // A private devpts instance: the container's pseudo-terminals only.
    mount(
        Some("devpts"),
        &mount_point(&dev, "pts")?,
        Some("devpts"),
        nosuid_noexec,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mount(
        Some("shm"),
        &mount_point(&dev, "shm")?,
        Some("tmpfs"),
        nosuid_noexec | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).with_context(|| format!("symlink /dev/{link}"))?;
    }
    Ok(())
}
// ANCHOR_END: mount_dev
