//! Chapter 10's concept modules, as a draft outside the workspace.
//!
//! Chapter 10 turns minibox into a runtime: containers that outlive the
//! command that started them, state on disk that a second terminal reads, a
//! monitor per container, logs, a real terminal, and an init. This crate holds
//! the concepts, each callable with everything it needs passed in; the chapter
//! crate, its CLI and its commands wire them in later.
//!
//! # Layout
//!
//! - [`state`]: containers on disk, locked and atomic; liveness; lookup.
//! - [`names`]: Docker-style generated names.
//! - [`human`]: Docker's words for durations, sizes and states.
//! - [`ps`]: the `ps` table, `--format` and `--filter`.
//! - [`monitor`]: the per-container monitor process.
//! - [`log`]: the json-file log, written and read.
//! - [`terminal`]: pseudo-terminals, raw mode, resizing, detaching.
//! - [`init`]: `--init`, a PID 1 run from a sealed copy.
//! - [`exec`]: `exec`, a process joining a running container's namespaces and cgroup.
//! - [`volumes`]: `-v` bind mounts, named volumes seeded from the image, `--tmpfs`.

pub mod exec;
pub mod human;
pub mod init;
pub mod log;
pub mod monitor;
pub mod names;
pub mod ps;
pub mod state;
pub mod terminal;
pub mod volumes;
