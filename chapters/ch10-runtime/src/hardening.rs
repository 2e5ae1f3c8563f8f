//! Where a later chapter hardens the containers chapter 10 starts.
//!
//! Chapter 10's containers run with every power the host's root has:
//! namespaces hide things, they take no power away. Chapter 12 takes it
//! away (capabilities, seccomp, masked paths, device rules) at four places
//! of chapter 10's start and `exec`, which this module names
//! ([`Confinement`]). Chapter 10 confines nothing ([`Unconfined`]).
//!
//! Every command that starts a container reaches those places: `run`,
//! `create` then `start`, `restart`, a restart policy, `exec`, chapter 11's
//! `RUN` steps. So the later chapter does not pass its hardening through
//! each of them: its `main` installs it once ([`install`]), before any
//! command runs, and each start asks for the container's ([`confinement`]),
//! from the flags that chapter added to `run` (kept as typed in the
//! container's record, [`crate::container::StartFlags::extra`]).
//!
//! A later chapter may also give a container a user namespace of its own
//! ([`Confinement::user_namespace`], chapter 13's `--userns auto`): its root
//! is then root inside only, and an unprivileged range of IDs on the host.
//! The start asks the [`UserNamespace`] at the three places where that
//! changes what it does.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Result;
use ch05_cgroups::cgroup::Cgroup;
use ch06_rootfs_snapshot::snapshot::Snapshot;
use ch08_command_override::exec::{AroundSwitch, Unhardened};
use ch08_command_override::user::User;
use nix::unistd::Pid;

use crate::volumes::Mount;

// ANCHOR: confinement
/// One container's hardening, at the places of a start where it belongs.
pub trait Confinement: AroundSwitch + Send + Sync {
    /// In the monitor, on the container's new cgroup, before the container
    /// joins it: the device rules.
    fn on_cgroup(&self, cgroup: &dyn Cgroup) -> Result<()>;
    /// In the container, in its own root (after `pivot_root`), before its
    /// process enters: masked and read-only paths, a read-only root.
    fn in_root(&self) -> Result<()>;
    /// In `exec`'s joining process, before it enters the container's
    /// namespaces: nothing of minibox's may be reachable from inside.
    fn before_join(&self) -> Result<()>;
    /// The container's own user namespace, if a later chapter gives it one;
    /// `None` (the default): it shares the host's, and its root is the
    /// host's root.
    fn user_namespace(&self) -> Option<&dyn UserNamespace> {
        None
    }
}
// ANCHOR_END: confinement

// ANCHOR: user_namespace
/// A container's own user namespace, at the places of a start where it
/// changes something. The clone adds `CLONE_NEWUSER`; the child then waits
/// until the monitor has written its maps, and the monitor, not the child,
/// moves it into its cgroup (a process in a new user namespace has no power
/// over the host's cgroup files).
pub trait UserNamespace: Send + Sync {
    /// In the monitor, before the clone: the container's root filesystem
    /// from `snapshot`, mounted where no path reaches it yet (a detached
    /// mount, which the child inherits), shifted so that the image's files
    /// keep their owners inside; and its volumes `mounts` given to the
    /// namespace's root.
    fn prepare(&self, snapshot: &Snapshot, mounts: &[Mount]) -> Result<OwnedFd>;
    /// In the monitor, once the container's first process `child` exists
    /// and waits: its `uid_map` and `gid_map`.
    fn write_maps(&self, child: Pid) -> Result<()>;
    /// In the container's first process, once its maps are written: becomes
    /// the namespace's root (until now it kept the host's IDs, unmapped).
    fn become_root(&self) -> Result<()>;
    /// In the container's first process, in its private mount namespace:
    /// puts `prepare`'s root filesystem `root` on `rootfs`.
    fn mount_root(&self, root: &OwnedFd, rootfs: &Path) -> Result<()>;
    /// How `inspect` names it (Docker's `HostConfig.UsernsMode`).
    fn mode(&self) -> String;
    /// Its maps, `uid_map`'s then `gid_map`'s lines (`0 100000 65536`), for
    /// `inspect`.
    fn maps(&self) -> (Vec<String>, Vec<String>);
}
// ANCHOR_END: user_namespace

/// Makes a container's confinement from the flags a later chapter added to
/// its `run`, as typed; fails on a flag it cannot take.
pub type Confiner = fn(extra: &[String]) -> Result<Box<dyn Confinement>>;

static CONFINER: OnceLock<Confiner> = OnceLock::new();

/// Installs a later chapter's confiner, for every container this process
/// starts or joins. Called once, by that chapter's `main`.
pub fn install(confiner: Confiner) {
    let _ = CONFINER.set(confiner);
}

/// The confinement of a container whose `run` had the later flags `extra`:
/// the installed confiner's, or none at all (chapter 10's).
pub fn confinement(extra: &[String]) -> Result<Box<dyn Confinement>> {
    match CONFINER.get() {
        Some(confiner) => confiner(extra),
        None if extra.is_empty() => Ok(Box::new(Unconfined)),
        None => anyhow::bail!(
            "the container was created with flags this minibox does not know: {}",
            extra.join(" ")
        ),
    }
}

/// Chapter 10's containers: nothing is taken away.
pub struct Unconfined;

impl AroundSwitch for Unconfined {
    fn before_switch(&self, user: &User) -> Result<()> {
        Unhardened.before_switch(user)
    }
    fn after_switch(&self, user: &User) -> Result<()> {
        Unhardened.after_switch(user)
    }
}

impl Confinement for Unconfined {
    fn on_cgroup(&self, _: &dyn Cgroup) -> Result<()> {
        Ok(())
    }
    fn in_root(&self) -> Result<()> {
        Ok(())
    }
    fn before_join(&self) -> Result<()> {
        Ok(())
    }
}
