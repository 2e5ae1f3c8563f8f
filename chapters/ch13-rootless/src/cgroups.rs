//! A rootless container's cgroup: in the subtree the host delegated to the
//! user, or none at all.
//!
//! A cgroup is a directory, and whoever may write it may limit (and move)
//! the processes in it. On cgroup v2 an administrator, or systemd for
//! `user@UID.service`, *delegates* a subtree: its directory and its
//! `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads` files
//! belong to the user. Below it the user makes cgroups as root makes them
//! anywhere: chapter 5's code, with the subtree as its root. The kernel's
//! rule for moving a process (write access to `cgroup.procs` of the common
//! ancestor of where it is and where it goes) keeps the user inside.
//!
//! Without a delegated subtree (cgroup v1, where nothing is delegated, or a
//! v2 host that delegated nothing) a container has no cgroup of its own
//! ([`NoCgroup`]): it runs, but a limit cannot be kept, so a limit flag
//! fails with one line that says why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use ch05_cgroups::cgroup::{self, Cgroup, Resources, Stats};
use ch05_cgroups::limits::Limits;
use nix::unistd::Pid;

/// Where rootless containers get their cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Below this directory of the cgroup v2 tree, delegated to the user.
    Delegated(PathBuf),
    /// Nowhere: the reason, as the refusal of a limit says it.
    Undelegated(String),
}

// ANCHOR: rootless_cgroup
/// Container `id`'s cgroup, placed as `placement` allows.
pub fn create(placement: &Placement, resources: &Resources, id: &str) -> Result<Box<dyn Cgroup>> {
    match placement {
        // Chapter 5's cgroup, with the delegated directory as its root.
        Placement::Delegated(dir) => cgroup::create(dir, &resources.parent, id, &resources.limits),
        Placement::Undelegated(why) if !resources.limits.is_empty() => bail!(
            "rootless containers cannot have limits here ({}): {why}",
            resources.limits.describe()
        ),
        Placement::Undelegated(_) => Ok(Box::new(NoCgroup)),
    }
}
// ANCHOR_END: rootless_cgroup

/// A container without a cgroup of its own: it stays in minibox's.
///
/// What chapter 10 uses a cgroup for is found another way: the container's
/// processes are those of its PID namespace, which the kernel ends with its
/// first process, so [`Cgroup::destroy`] has nothing left to kill.
pub struct NoCgroup;

impl Cgroup for NoCgroup {
    fn join(&self, _: Pid) -> Result<()> {
        Ok(())
    }
    fn join_self(&self) -> Result<()> {
        Ok(())
    }
    fn oom_kills(&self) -> Result<u64> {
        Ok(0)
    }
    fn stats(&self) -> Result<Stats> {
        Ok(Stats {
            peak_memory: None,
            cpu_time: Duration::ZERO,
        })
    }
    fn set_limits(&self, limits: &Limits) -> Result<()> {
        match limits.is_empty() {
            true => Ok(()),
            false => bail!("this container has no cgroup to limit"),
        }
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
    fn paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn created(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// Whether `root` (normally `/sys/fs/cgroup`) is a cgroup v2 tree.
pub fn is_unified(root: &Path) -> bool {
    matches!(cgroup::detect(root), Ok(cgroup::Layout::Unified))
}
