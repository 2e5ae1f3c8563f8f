//! # Chapter 12: security — capabilities, seccomp, masked paths, device rules, and the runtime's own attack surface
//!
//! Until now a container's root is the host's root with every capability.
//! Namespaces hide things; they do not take power away. This chapter takes
//! it away as Docker does, one layer at a time.
//!
//! ## Layout
//!
//! - [`capabilities`]: the capability sets, Docker's default 14, the names,
//!   and how a process keeps only some.
//! - [`seccomp`]: Docker's seccomp profile format, its default profile, and
//!   the profile compiled to a BPF filter.
//! - [`paths`]: masked and read-only paths, a read-only root.
//! - [`devices`]: which devices a container may use: the v1 controller's
//!   rules, or a BPF program on cgroup v2.
//! - [`rlimits`]: the limits of `--ulimit`.
//! - [`confine`]: all of them, at their places in chapter 10's start.

pub mod capabilities;
pub mod cli;
pub mod confine;
pub mod devices;
pub mod paths;
pub mod rlimits;
pub mod run;
pub mod seccomp;
