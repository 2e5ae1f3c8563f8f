//! # Chapter 13: rootless — user namespaces, so a learner without sudo runs every container
//!
//! Every chapter so far needs root. In a user namespace an ordinary user is
//! root over the namespaces it creates, and over nothing else. This chapter
//! runs chapter 12's `minibox` for an unprivileged user, as rootless podman
//! does, and says where and why it must do less.
//!
//! ## Layout
//!
//! - [`userns`]: the user namespace, its ID maps (`newuidmap`, or the
//!   user's own ID), and the pause process that holds it for every minibox
//!   of the user.
//! - [`storage`]: the user's own directories (XDG).
//! - [`cgroups`]: a cgroup in a delegated subtree, or none.
//! - [`usernet`]: a user-mode network stack (pasta or slirp4netns) between
//!   a container's network namespace and the host's, with `-p` through it.
//! - [`network`]: that stack as a container's default network.
//! - [`checks`]: whether rootless works here, and what is missing, each
//!   with its fix (`minibox info`).
//! - [`rootless`]: all of them, around chapter 12's `minibox`.
//! - [`remap`]: the other way round, for the host's root: `--userns auto`
//!   gives a container a user namespace of its own, whose root is an
//!   unprivileged range of host IDs (Docker's `userns-remap`), with an
//!   idmapped root filesystem.

pub mod cgroups;
pub mod checks;
pub mod cli;
pub mod network;
pub mod remap;
pub mod rootless;
pub mod run;
pub mod storage;
pub mod usernet;
pub mod userns;
