//! # Chapter 10: the runtime — containers that outlive the command
//!
//! Until now `minibox run` was the container's whole life: it made the
//! container, waited for its end, cleaned up and exited, and nothing else
//! could see the container meanwhile. Docker works differently: `docker run
//! -d` returns at once, `docker ps` in a second terminal lists what runs,
//! `docker logs`, `stop` and `rm` act on it later. This chapter makes minibox
//! do the same without a daemon:
//!
//! - **state on disk**: each container is a record under `MINIBOX_ROOT`
//!   (`/var/lib/minibox/containers/ID`: its config, its snapshot, its log)
//!   and a state in a tmpfs (`/run/minibox/ID`: PIDs, a lock), changed only
//!   under a lock and by atomic renames, so that any number of `minibox`
//!   commands may run at once ([`state`], [`names`]);
//! - **a monitor per container** ([`monitor`]): the part conmon or
//!   containerd-shim plays, a detached process that is the container's
//!   parent, holds its output, writes its log ([`log`]), records its end,
//!   and cleans up (`--rm`); a foreground `run` is the same monitor with the
//!   terminal attached;
//! - **commands that read and change that state**: `ps` ([`ps`],
//!   [`human`]), `logs`, `stop`, `kill`, `rm`, `wait`, `inspect`, `rename`,
//!   `container prune`, and `exec`, which joins a running container's
//!   namespaces and cgroup ([`exec`]).
//!
//! The recipe of chapter 9 is unchanged in what it does to the kernel; what
//! changes is *who* does it: the monitor, in a session of its own, with the
//! container's start split from its end.
//!
//! Kernel interfaces: `setsid(2)`, `PR_SET_CHILD_SUBREAPER` (`prctl(2)`),
//! `flock(2)`, `rename(2)`, `setns(2)`, `pidfd_open(2)`, `poll(2)`,
//! `unix(7)` sockets, `proc(5)` (`/proc/PID/stat`'s start time,
//! `/proc/PID/ns`).
//!
//! ## Layout
//!
//! - [`cli`]: the command line: `run` with `-d`, `--name`, `--rm`, `-i`, and
//!   the commands that act on containers.
//! - [`state`]: containers on disk: records, states, locks, liveness, lookup.
//! - [`names`]: Docker-style generated names.
//! - [`container`]: what a container is created with, and how `ps` and
//!   `inspect` see it.
//! - [`create`]: a container made on disk from an image.
//! - [`monitor`]: the per-container monitor process.
//! - [`log`]: the json-file log, written and read.
//! - [`human`]: Docker's words for durations and states.
//! - [`ps`]: the `ps` table, `--format` and `--filter`.
//! - [`exec`]: a process joining a running container.
//! - [`stats`]: a container's usage, read from its cgroup.
//! - [`images`]: `tag` and `rmi`, and what removing an image frees.
//! - [`volumes`]: `-v` bind mounts and named volumes, `--tmpfs`.
//! - [`terminal`], [`attach`]: `-t`'s pty, raw mode, window size, detaching.
//! - [`lifecycle`]: waiting for a container's end, stopping and killing it.
//! - [`restart`]: `--restart` policies, carried out by the monitor.
//! - [`run`]: the recipe: a container created, started under its monitor.
//! - [`commands`]: the other commands, one module each.

pub mod attach;
pub mod cli;
pub mod commands;
pub mod container;
pub mod create;
pub mod exec;
pub mod hardening;
pub mod human;
pub mod images;
pub mod init;
pub mod lifecycle;
pub mod log;
pub mod monitor;
pub mod names;
pub mod privileges;
pub mod ps;
pub mod restart;
pub mod run;
pub mod start;
pub mod state;
pub mod stats;
pub mod terminal;
pub mod volumes;
