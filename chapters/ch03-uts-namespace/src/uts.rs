//! The concept of this chapter: a hostname of the container's own.
//!
//! `sethostname(2)` changes the hostname of the caller's UTS namespace. Called by
//! the child after `clone(CLONE_NEWUTS)`, it changes only the child's copy; the
//! host keeps its name. Called without a new UTS namespace, it would rename the
//! host itself: that is why the call happens in the child, never in minibox.

use anyhow::{Context, Result};

// ANCHOR: set_hostname
/// Sets the hostname of the calling process's UTS namespace. The kernel rejects
/// names longer than 64 bytes (`HOST_NAME_MAX`) with EINVAL.
pub fn set_hostname(name: &str) -> Result<()> {
    nix::unistd::sethostname(name).with_context(|| format!("sethostname({name:?})"))
}
// ANCHOR_END: set_hostname
