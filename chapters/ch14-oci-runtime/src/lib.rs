//! # Chapter 14: the OCI runtime interface — podman, Docker and containerd drive minibox
//!
//! Docker, podman and containerd never create a container themselves: they
//! write a *bundle* (a root filesystem and a `config.json` in the OCI runtime
//! specification's format) and call a runtime binary with runc's command
//! line. This chapter makes minibox one of those runtimes (`minibox-runc`),
//! from the concepts of chapters 1 to 13: no second implementation of
//! namespaces, mounts, cgroups, capabilities or seccomp.
//!
//! ## Layout
//!
//! - [`cli`]: runc's command line.
//! - [`bundle`]: config.json read, and every key checked against what
//!   minibox implements.
//! - [`container`]: config.json as a plan, checked before anything is made.
//! - [`process`]: config.json's process: user, capabilities, limits, seccomp.
//! - [`mounts`]: config.json's mounts.
//! - [`create`]: the container made, its init waiting on the exec FIFO.
//! - [`lifecycle`]: start, state, kill, delete, pause, resume, ps, list, update.
//! - [`exec`]: one more process in a running container.
//! - [`hooks`]: the programs config.json runs at points of the lifecycle.
//! - [`state`]: the runtime's state directory, and the specification's state.
//! - [`features`]: `features` and `spec`.
//! - [`log`]: `--log` and `--log-format json`, where engines read errors.
//! - [`runtime`]: the commands, dispatched.

pub mod bundle;
pub mod cli;
pub mod container;
pub mod create;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod lifecycle;
pub mod log;
pub mod mounts;
pub mod process;
pub mod runtime;
pub mod state;
