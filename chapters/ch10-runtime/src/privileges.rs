//! What a start asks of the host's root, in one place a later chapter can
//! replace: the container's cgroup and its network.
//!
//! As root, chapter 10 makes both itself: a cgroup in the host's tree
//! (chapter 5) and a veth on the host's bridge (chapter 9). A user without
//! root can do neither; chapter 13 gets them another way (a cgroup subtree
//! delegated to the user, a network stack in user space). So chapter 10's
//! start does not call chapters 5 and 9 for them directly: it asks the
//! installed [`Privileges`] ([`install`], as [`crate::hardening`] does for
//! confinement), which is chapter 10's own ([`Root`]) unless a later
//! chapter's `main` installs another.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Result;
use ch05_cgroups::cgroup::{self, Cgroup, Resources};
use ch09_networking::network::{self, Attached, Mode, NetworkConfig, Prepared};
use ch09_networking::publish::PortMapping;
use nix::errno::Errno;
use nix::unistd::Pid;

// ANCHOR: privileges
/// How a start gets what needs the host's root.
pub trait Privileges: Send + Sync {
    /// In the monitor, before the clone: container `id`'s cgroup, with
    /// `resources`' limits written.
    fn cgroup(&self, resources: &Resources, id: &str) -> Result<Box<dyn Cgroup>>;
    /// Before the monitor starts: the container's network, as far as it
    /// goes without the container (its published ports bound).
    fn network(&self, config: &NetworkConfig, root: &Path) -> Result<Box<dyn PreparedNetwork>>;
}

/// A network prepared before the clone (chapter 9's [`Prepared`]).
pub trait PreparedNetwork {
    /// The published ports, as they are bound on the host.
    fn published(&self) -> Result<Vec<(PortMapping, SocketAddr)>>;
    /// The descriptors the monitor must keep open (bound ports).
    fn descriptors(&self) -> Vec<RawFd>;
    /// In the monitor, once container `id`'s first process `child` exists:
    /// connects its network namespace and writes its `/etc` files into
    /// `dir` (chapter 9's `attach`).
    fn attach(
        self: Box<Self>,
        child: Pid,
        id: &str,
        hostname: &str,
        dir: &Path,
    ) -> Result<Box<dyn AttachedNetwork>>;
}

/// A container's network while it runs (chapter 9's [`Attached`]).
pub trait AttachedNetwork {
    /// Its address, if it has one of its own.
    fn address(&self) -> Option<Ipv4Addr>;
    /// Takes it apart again.
    fn detach(self: Box<Self>) -> Result<()>;
}
// ANCHOR_END: privileges

static INSTALLED: OnceLock<Box<dyn Privileges>> = OnceLock::new();

/// Installs a later chapter's way, for every container this process
/// starts. Called once, by that chapter's `main`, before any command runs.
pub fn install(privileges: Box<dyn Privileges>) {
    let _ = INSTALLED.set(privileges);
}

/// The installed way, or chapter 10's own.
pub fn privileges() -> &'static dyn Privileges {
    INSTALLED
        .get()
        .map_or(&Root, |installed| installed.as_ref())
}

/// Chapter 10's way, as root: chapters 5 and 9 as they are.
pub struct Root;

impl Privileges for Root {
    fn cgroup(&self, resources: &Resources, id: &str) -> Result<Box<dyn Cgroup>> {
        let root = Path::new(cgroup::ROOT);
        cgroup::create(root, &resources.parent, id, &resources.limits)
    }
    fn network(&self, config: &NetworkConfig, root: &Path) -> Result<Box<dyn PreparedNetwork>> {
        let prepared = network::prepare(config, root)?;
        Ok(Box::new(HostNetwork {
            prepared,
            mode: config.mode,
        }))
    }
}

/// Chapter 9's network, prepared.
struct HostNetwork {
    prepared: Prepared,
    mode: Mode,
}

impl PreparedNetwork for HostNetwork {
    fn published(&self) -> Result<Vec<(PortMapping, SocketAddr)>> {
        self.prepared.published()
    }
    fn descriptors(&self) -> Vec<RawFd> {
        self.prepared.descriptors()
    }
    fn attach(
        self: Box<Self>,
        child: Pid,
        id: &str,
        hostname: &str,
        dir: &Path,
    ) -> Result<Box<dyn AttachedNetwork>> {
        if self.mode == Mode::Bridge {
            remove_stale_veth(id)?; // new: a restart reuses its name
        }
        let attached = self.prepared.attach(child, id, hostname, dir)?;
        Ok(Box::new(attached))
    }
}

impl AttachedNetwork for Attached {
    fn address(&self) -> Option<Ipv4Addr> {
        Attached::address(self)
    }
    fn detach(self: Box<Self>) -> Result<()> {
        Attached::detach(*self)
    }
}

/// Deletes container `id`'s end of the bridge left by its previous start,
/// if it is still there.
///
/// The kernel deletes a veth pair with the container's network namespace,
/// but in the background, moments after the container's last process has
/// gone. A `restart` (or a restart policy) starts the same container again at
/// once, and chapter 9 names the veth after the container's ID
/// ([`network::veth_name`]): the new pair would find
/// the name still taken (EEXIST). Deleting it at every end would make every
/// `run --rm` wait for the kernel (chapter 9 measured 15 to 25 ms); only a
/// start that finds it pays.
fn remove_stale_veth(id: &str) -> Result<()> {
    use ch09_networking::netlink::{self, Netlink};
    let mut links = Netlink::open()?;
    let veth = network::veth_name(id);
    if links.link_index(&veth)?.is_none() {
        return Ok(());
    }
    match links.delete_link(&veth) {
        Err(error) if netlink::is_errno(&error, Errno::ENODEV) => Ok(()), // gone meanwhile
        result => result,
    }
}
