//! # Chapter 13: rootless — user namespaces, so a learner without sudo runs every container
//!
//! Every chapter so far needs root. In a user namespace an ordinary user is
//! root over the namespaces it creates, and over nothing else. This chapter
//! runs chapter 12's `minibox` for an unprivileged user, as rootless podman
//! does, and says where and why it must do less.
//!
//! ## Layout
//!
//! - [`checks`]: does rootless work here, and what is missing, each with its
//!   fix (what `minibox info` prints).
//! - [`usernet`]: a user-mode network stack (pasta or slirp4netns) between
//!   a container's network namespace and the host's, with `-p` through it.

pub mod checks;
pub mod usernet;
