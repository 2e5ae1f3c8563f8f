//! Rootless mode, put together: when minibox runs as an ordinary user, it
//! enters the user's namespace before any command runs ([`enter`]), and
//! every container then gets its cgroup and network the rootless way
//! ([`Rootless`], installed as chapter 10's [`Privileges`]).

use std::path::Path;

use anyhow::{Context, Result};
use ch05_cgroups::cgroup::{self, Cgroup, OwnCgroups, Resources};
use ch08_command_override::exec::AroundSwitch;
use ch08_command_override::user::User;
use ch09_networking::network::{Mode, NetworkConfig};
use ch10_runtime::hardening::{self, Confinement};
use ch10_runtime::privileges::{self, PreparedNetwork, Privileges, Root};
use ch12_security::cli::SecurityArgs;
use ch12_security::confine::Hardened;
use nix::unistd::{Gid, Uid};

use crate::cgroups::{self, Placement};
use crate::checks;
use crate::storage::Storage;
use crate::userns::{self, IdMaps};

/// Whether minibox runs without root: as a user other than root.
pub fn is_rootless() -> bool {
    !Uid::effective().is_root()
}

// ANCHOR: enter
/// Before any command runs, while minibox has a single thread: the user's
/// own directories, then the user's namespace (made on first use), then
/// the rootless ways of chapter 10's start. `namespace` is false for the
/// commands that only read (`info`), which must work where user
/// namespaces do not.
pub fn enter(namespace: bool) -> Result<Storage> {
    let (uid, gid) = (Uid::current(), Gid::current());
    let storage = Storage::of_user(uid)?;
    // SAFETY: minibox has a single thread here (nothing has started one),
    // so nothing reads the environment while it changes.
    unsafe {
        std::env::set_var("MINIBOX_ROOT", &storage.root);
        std::env::set_var("MINIBOX_RUN", &storage.run);
    }
    if !namespace {
        return Ok(storage);
    }
    // Seen from the host, where the subtree's owner is this user.
    let placement = placement(Path::new(cgroup::ROOT), uid);
    let maps = IdMaps::for_user(uid, gid)?;
    userns::enter(&storage.run, &maps).context("entering the rootless user namespace")?;
    privileges::install(Box::new(Rootless { placement }));
    hardening::install(|extra| {
        let hardened = Hardened::new(&SecurityArgs::from_words(extra)?)?;
        Ok(Box::new(InUserNamespace(Box::new(hardened))))
    });
    Ok(storage)
}
// ANCHOR_END: enter

/// Where this user's containers get cgroups: below the subtree delegated
/// to `uid` that holds this process, if there is one.
pub fn placement(root: &Path, uid: Uid) -> Placement {
    if !cgroups::is_unified(root) {
        return Placement::Undelegated(
            "this host's controllers are on cgroup v1 (a hybrid or v1 layout), which delegates nothing to users; boot with systemd.unified_cgroup_hierarchy=1".into(),
        );
    }
    let own = OwnCgroups::of_this_process().unwrap_or_default();
    match checks::delegated_cgroup(root, own.path(None), uid) {
        Some((dir, _controllers)) => Placement::Delegated(dir),
        None => Placement::Undelegated(format!(
            "no cgroup above this process's ({}) is delegated to you; with systemd, set Delegate=yes for user@.service",
            own.path(None)
        )),
    }
}

/// Chapter 10's start, rootless.
pub struct Rootless {
    placement: Placement,
}

impl Privileges for Rootless {
    fn cgroup(&self, resources: &Resources, id: &str) -> Result<Box<dyn Cgroup>> {
        cgroups::create(&self.placement, resources, id)
    }
    fn network(&self, config: &NetworkConfig, root: &Path) -> Result<Box<dyn PreparedNetwork>> {
        match config.mode {
            // Nothing of the host's is touched: chapter 9's as it is.
            Mode::None | Mode::Host => Root.network(config, root),
            Mode::Bridge => crate::network::prepare(config),
        }
    }
}

// ANCHOR: in_user_namespace
/// Chapter 12's hardening, in a user namespace: all of it but the device
/// rules. The kernel refuses `mknod(2)` of a device to anyone without
/// `CAP_MKNOD` in the host's user namespace, so a rootless container has
/// only the device nodes minibox binds from the host, whose own permissions
/// still apply; and loading the cgroup v2 device program needs the host's
/// `CAP_SYS_ADMIN`, which the user does not have.
pub struct InUserNamespace(pub Box<dyn Confinement>);

impl AroundSwitch for InUserNamespace {
    fn before_switch(&self, user: &User) -> Result<()> {
        self.0.before_switch(user)
    }
    fn after_switch(&self, user: &User) -> Result<()> {
        self.0.after_switch(user)
    }
}

impl Confinement for InUserNamespace {
    fn on_cgroup(&self, _: &dyn Cgroup) -> Result<()> {
        Ok(())
    }
    fn in_root(&self) -> Result<()> {
        self.0.in_root()
    }
    fn before_join(&self) -> Result<()> {
        self.0.before_join()
    }
}
// ANCHOR_END: in_user_namespace
