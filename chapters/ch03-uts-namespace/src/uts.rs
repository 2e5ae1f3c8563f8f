//! The concept of this chapter: a hostname of the container's own.
//!
//! `sethostname(2)` changes the hostname of the caller's UTS namespace. Called by
//! the child after `clone(CLONE_NEWUTS)`, it changes only the child's copy; the
//! host keeps its name. Called without a new UTS namespace, it would rename the
//! host itself: that is why the call happens in the child, never in minibox.

use anyhow::{Context, Result};
use ch01_fork_exec::narrate::Narrator;
use ch02_pid_namespace::namespace;
use nix::sched::CloneFlags;

use crate::id;

/// The namespaces a container gets from this chapter on: its own process
/// numbers (chapter 2), hostname and System V IPC. Later chapters add theirs.
pub const NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC);

/// Says that the parent calls `clone(2)` with `flags` for the container `id`.
pub fn say_clone(narrator: &Narrator, flags: CloneFlags, id: &str) {
    narrator.say(format_args!(
        "parent (PID {}) calls clone({}) for container {}",
        nix::unistd::getpid(),
        namespace::flag_names(flags),
        id::short(id)
    ));
}

/// The container's hostname: the one given, or Docker's default, the short
/// form of the container's ID.
pub fn hostname_for(given: Option<&str>, id: &str) -> String {
    given.unwrap_or(id::short(id)).to_string()
}

// ANCHOR: set_hostname
/// Sets the hostname of the calling process's UTS namespace. The kernel rejects
/// names longer than 64 bytes (`HOST_NAME_MAX`) with EINVAL.
pub fn set_hostname(name: &str) -> Result<()> {
    nix::unistd::sethostname(name).with_context(|| format!("sethostname({name:?})"))
}
// ANCHOR_END: set_hostname
