//! # Chapter 4: the mount namespace — a root filesystem of its own
//!
//! Until now the child saw the host's files, and so the host's `/proc`: `ps`
//! listed every process on the machine. Here it gets its own **mount namespace**
//! (`CLONE_NEWNS`, the first namespace Linux had, hence the generic name): its own
//! copy of the mount table, which it rearranges until the host's files are gone
//! and a busybox directory is its `/`.
//!
//! The steps, all in the child, in this order:
//!
//! 1. make every mount recursively **private**, so that nothing we mount or
//!    unmount propagates back to the host (the bug most tutorials ship);
//! 2. **bind-mount** the root filesystem onto itself, because `pivot_root(2)` needs
//!    a mount point;
//! 3. mount a new **/proc** (for the new PID namespace: now `ps` only sees the
//!    container), a minimal **/dev** and a read-only **/sys** inside it, each
//!    mount point resolved *inside* the root filesystem, so that a symbolic
//!    link in it cannot lead a mount out to the host;
//! 4. **pivot_root** into it and detach the old root: the host's tree is no
//!    longer reachable at all, unlike with `chroot(2)`.
//!
//! Kernel interfaces: `mount_namespaces(7)`, `mount(2)` (`MS_BIND`,
//! `MS_PRIVATE`, `MS_REC`), `pivot_root(2)`, `umount2(2)` (`MNT_DETACH`),
//! `chroot(2)`, `openat2(2)` (`RESOLVE_IN_ROOT`), `proc(5)`, `sysfs(5)`,
//! `mknod(2)`, `devpts` and `tmpfs(5)`.
//!
//! ## Layout
//!
//! - [`cli`]: the command line, with `--rootfs` and `--chroot`.
//! - [`rootfs`]: where the root filesystem is, checked before anything is made.
//! - [`mount`]: the concept: propagation, bind mounts, /proc and /sys, pivot_root.
//! - [`in_root`]: a path inside the root filesystem, resolved by the kernel as
//!   if the root filesystem were `/`, and mounted on through a descriptor.
//! - [`dev`]: the minimal /dev a program expects.
//! - [`run`]: the recipe.

pub mod cli;
pub mod dev;
pub mod in_root;
pub mod mount;
pub mod rootfs;
pub mod run;
