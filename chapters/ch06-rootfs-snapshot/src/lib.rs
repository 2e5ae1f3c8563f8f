//! # Chapter 6: rootfs snapshots — one image, many containers, copy-on-write
//!
//! Until now every container used the busybox directory itself as its root:
//! a file one container wrote, the next one saw, and the "image" changed with
//! every run. Docker's picture is different: an **image** is a read-only stack of
//! filesystem layers, and each **container** gets its own thin writable layer on
//! top. Any number of containers start from one image; none sees another's
//! writes; the image never changes.
//!
//! The kernel does the stacking: **overlayfs** mounts a view made of read-only
//! `lowerdir`s (the image's layers) and one writable `upperdir` (the container's
//! own). Reading finds a file in the topmost layer that has it; writing copies it
//! up into the upper layer first; deleting leaves a *whiteout* there that hides
//! the lower file. Creating the container costs a `mkdir` and a `mount`, however
//! big the image, which is why `docker run` starts as fast on a 1 GB image as on a
//! 1 MB one. A second snapshotter, **copy**, copies the whole image instead:
//! slow on purpose, to measure what overlay saves.
//!
//! What changes over chapter 5: the parent prepares the container's directory in
//! the store (`MINIBOX_ROOT`, default /var/lib/minibox) before clone; the child
//! mounts the overlay inside its own mount namespace (so nothing is ever mounted on
//! the host) and pivots into it; after the container ends, the parent removes the
//! directory (`--rm`, the default here) or keeps it (`--keep`), and can show what
//! the container changed, as `docker diff` does.
//!
//! Kernel interfaces: overlayfs (the kernel's Documentation/filesystems/overlayfs.rst),
//! `mount(2)`, `statfs(2)`, `getxattr(2)` for `trusted.overlay.opaque`.
//!
//! ## Layout
//!
//! - [`cli`]: the command line: `--layer`, `--snapshotter`, `--keep`, `--diff`, and
//!   `minibox diff ID`.
//! - [`snapshot`]: the concept: a container's root as a snapshot of an image,
//!   with the overlay and copy snapshotters.
//! - [`changes`]: what a container added, changed and deleted, read from its
//!   writable layer.
//! - [`run`]: the recipe.

pub mod changes;
pub mod cli;
pub mod run;
pub mod snapshot;
