//! The concept of this chapter: a container's network, from the command line's
//! `--network`, `-p`, `--dns` and `--add-host` to the links, the address, the
//! proxies and the three `/etc` files, in the order a start needs them.
//!
//! A start goes through three stages, one per place in the recipe:
//!
//! 1. [`prepare`], in the parent before clone: everything that can fail on bad
//!    input fails here, before anything exists to clean up. The published
//!    ports are bound (a taken port is Docker's "port is already allocated"),
//!    the subnet is checked against the host's routes, and the bridge and its
//!    NAT rules are made if this is the first container to need them.
//! 2. [`Prepared::attach`], in the parent once the child is cloned into its new
//!    network namespace and waits to be released: an address is leased, a
//!    veth pair is created with its container end born inside the namespace as
//!    `eth0`, the inside is configured, the `/etc` files are written and the
//!    proxies start.
//! 3. [`Attached::detach`], when the container has ended: the proxies stop,
//!    the host end of the veth is deleted (which deletes both), the lease is
//!    given back. Dropping an [`Attached`] does the same, so an error or a
//!    panic in between leaves nothing either.
//!
//! In the child, [`mount_etc_files`] bind-mounts the files over the image's
//! before `pivot_root`.
// SIMPLIFICATION: Docker's daemon keeps networks as objects (`docker network
// create`), with a driver per network and an embedded DNS server on
// user-defined ones; one default bridge is what `docker run` uses out of the
// box and all this chapter builds.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use ch01_fork_exec::narrate;
use ch04_mount_namespace::in_root::{self, TargetKind};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::stat::SFlag;
use nix::unistd::Pid;

use crate::etc_files::{self, DnsOverrides, EtcFiles, ExtraHost};
use crate::ipam::{self, Holder, Ipam, Subnet};
use crate::netlink::Netlink;
use crate::proxy::{self, Proxy};
use crate::publish::{PortMapping, Protocol};
use crate::{nat, netns};

/// The bridge every container of the default network is plugged into, as
/// Docker's is `docker0`.
pub const BRIDGE: &str = "minibox0";

/// The environment variable that chooses the bridge's subnet.
pub const SUBNET_VARIABLE: &str = "MINIBOX_BRIDGE_SUBNET";

/// Which network a container gets (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Its own namespace, plugged into [`BRIDGE`] (Docker's default).
    Bridge,
    /// Its own namespace with only `lo`: no way in or out.
    None,
    /// No namespace of its own: the host's links, addresses and ports.
    Host,
}

impl FromStr for Mode {
    type Err = anyhow::Error;

    /// Docker's names; anything else is, as Docker puts it, a network that
    /// does not exist.
    fn from_str(name: &str) -> Result<Mode> {
        match name {
            "bridge" | "default" => Ok(Mode::Bridge),
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            other => bail!("network {other} not found"),
        }
    }
}

impl Mode {
    /// The namespaces this mode adds to the chapters before: a new network
    /// namespace, except with `host`.
    pub fn namespaces(self) -> CloneFlags {
        match self {
            Mode::Host => CloneFlags::empty(),
            Mode::Bridge | Mode::None => CloneFlags::CLONE_NEWNET,
        }
    }
}

/// What the command line says about the container's network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// `--network`.
    pub mode: Mode,
    /// `-p`, one mapping per container port.
    pub publish: Vec<PortMapping>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: DnsOverrides,
    /// `--add-host`.
    pub extra_hosts: Vec<ExtraHost>,
}

// ANCHOR: prepare
/// Stage 1, before clone: binds the published ports, checks the subnet, and
/// makes sure the bridge and the NAT rules exist. `state` is where leases
/// are kept. Fails with nothing left behind.
pub fn prepare(config: &NetworkConfig, state: &Path) -> Result<Prepared> {
    let mut prepared = Prepared {
        config: config.clone(),
        bridge: None,
        listeners: Vec::new(),
    };
    if config.mode != Mode::Bridge {
        if !config.publish.is_empty() {
            let mode = if config.mode == Mode::Host {
                "host"
            } else {
                "none"
            };
            narrate::notice(format_args!(
                "WARNING: Published ports are discarded when using {mode} network mode"
            ));
        }
        return Ok(prepared);
    }
    for mapping in &config.publish {
        let listener = Listener::bind(mapping)?; // a taken port fails here
        prepared.listeners.push((*mapping, listener));
    }
    let subnet = configured_subnet()?;
    let mut host = Netlink::open()?;
    // The routes first, then the bridge: another minibox may be making the
    // bridge right now, and its route must not pass for someone else's.
    // Read in this order, a route through the bridge means the bridge is
    // found too.
    let routes = host.ipv4_routes()?;
    let bridge_index = host.link_index(BRIDGE)?;
    ipam::check_overlap(&subnet, &routes, bridge_index)?;
    if host.ensure_bridge(BRIDGE, subnet.gateway(), subnet.prefix_len)? {
        // First use: outbound traffic needs source NAT. Without it, the bridge
        // goes again, so that the next start tries again rather than reuse a
        // bridge that leads nowhere.
        if let Err(error) = nat::setup(&subnet, BRIDGE) {
            let _ = host.delete_link(BRIDGE);
            return Err(error);
        }
    }
    nat::enable_ip_forward()?;
    prepared.bridge = Some((Ipam::new(&state.join("network"), subnet)?, host));
    Ok(prepared)
}
// ANCHOR_END: prepare

/// The bridge's subnet: [`SUBNET_VARIABLE`], or [`ipam::DEFAULT_SUBNET`].
pub fn configured_subnet() -> Result<Subnet> {
    let value = std::env::var(SUBNET_VARIABLE).unwrap_or_else(|_| ipam::DEFAULT_SUBNET.into());
    value
        .parse()
        .with_context(|| format!("{SUBNET_VARIABLE}={value}"))
}

/// A network made ready before clone, waiting for the container to attach to.
pub struct Prepared {
    /// The command line's choices.
    config: NetworkConfig,
    /// With `bridge`: the allocator, and a netlink socket in the host's
    /// namespace.
    bridge: Option<(Ipam, Netlink)>,
    /// With `bridge`: the host side of each published port, bound.
    listeners: Vec<(PortMapping, Listener)>,
}

/// The host side of one published port.
enum Listener {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

impl Listener {
    /// The address it is bound to (with the port the kernel chose, when the
    /// spec gave none).
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr(),
            Listener::Udp(socket) => socket.local_addr(),
        }
    }

    fn bind(mapping: &PortMapping) -> Result<Listener> {
        let (ip, ports) = (mapping.host_ip, mapping.host_ports);
        Ok(match mapping.protocol {
            Protocol::Tcp => Listener::Tcp(proxy::bind_tcp(ip, ports)?),
            Protocol::Udp => Listener::Udp(proxy::bind_udp(ip, ports)?),
        })
    }

    fn start(self, target: SocketAddr) -> Result<Proxy> {
        match self {
            Listener::Tcp(listener) => Proxy::start_tcp(listener, target),
            Listener::Udp(socket) => Proxy::start_udp(socket, target),
        }
    }
}

/// The host's end of container `id`'s veth pair: `veth` and the ID's first
/// seven digits, short enough for a link name (15 bytes).
pub fn veth_name(id: &str) -> String {
    format!("veth{}", &id[..7])
}

/// The files [`Prepared::attach`] writes into the container's directory,
/// which [`mount_etc_files`] mounts over the image's files of the same name
/// in `/etc`.
const ETC_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

impl Prepared {
    /// Each published port with the host address it is bound to: what
    /// `docker port` prints (chapter 10 records it).
    pub fn published(&self) -> Result<Vec<(PortMapping, SocketAddr)>> {
        self.listeners
            .iter()
            .map(|(mapping, listener)| Ok((*mapping, listener.local_addr()?)))
            .collect()
    }

    /// The descriptors it holds (bound ports, the netlink socket): chapter
    /// 10 attaches the network from another process, which must keep them.
    pub fn descriptors(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let mut fds: Vec<_> = self
            .listeners
            .iter()
            .map(|(_, listener)| match listener {
                Listener::Tcp(listener) => listener.as_raw_fd(),
                Listener::Udp(socket) => socket.as_raw_fd(),
            })
            .collect();
        fds.extend(self.bridge.as_ref().map(|(_, host)| host.as_raw_fd()));
        fds
    }

    // ANCHOR: attach
    /// Stage 2, after clone, while the child waits: gives the container
    /// `child` (its PID 1, on the host) its network, and writes its `/etc`
    /// files into `dir`.
    pub fn attach(mut self, child: Pid, id: &str, hostname: &str, dir: &Path) -> Result<Attached> {
        let mut attached = Attached::default();
        let mut own_address = None;
        if self.config.mode != Mode::Host {
            let container = netns::of_process(child.as_raw())?;
            let mut inside = Netlink::open_in(container.as_fd())?;
            if let Some((ipam, host)) = &mut self.bridge {
                // The lease is held by the container's PID 1: when it is gone,
                // so is the namespace with the veth, and the address is free.
                let address = ipam.allocate(
                    id,
                    Holder::of(child.as_raw())?
                        .context("the container's process ended before it had a network")?,
                )?;
                attached.lease = Some((ipam.clone(), address));
                let veth = veth_name(id);
                host.create_veth_on_bridge(&veth, BRIDGE, "eth0", container.as_fd(), address)?;
                host.set_up(&veth)?;
                let subnet = ipam.subnet();
                inside.add_address("eth0", address, subnet.prefix_len)?;
                inside.set_up("eth0")?;
                inside.set_up("lo")?;
                inside.add_default_route(subnet.gateway())?;
                own_address = Some(address);
                attached.summary = format!(
                    "eth0 {address}/{} via {veth} on {BRIDGE}, default route via {}",
                    subnet.prefix_len,
                    subnet.gateway()
                );
            } else {
                inside.set_up("lo")?;
                attached.summary = "only lo".into();
            }
        } else {
            attached.summary = "the host's own".into();
        }
        self.etc_files(own_address, hostname)?.write(dir)?;
        for (mapping, listener) in self.listeners {
            let address = own_address.expect("ports are only bound with a bridge");
            let target = SocketAddr::new(IpAddr::V4(address), mapping.container_port);
            let proxy = listener.start(target)?;
            if mapping.host_ports.is_none() {
                // The kernel chose the port: say which, as `docker port` does.
                narrate::notice(format_args!(
                    "{}/{} -> {}",
                    mapping.container_port,
                    mapping.protocol,
                    proxy.local_addr()
                ));
            }
            attached.proxies.push(proxy);
        }
        Ok(attached)
    }
    // ANCHOR_END: attach

    /// The container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`.
    /// With `host` networking the host's own `/etc/hosts` and
    /// `/etc/resolv.conf` are used as they are, as Docker does: the
    /// container's `lo` is the host's, so even a loopback name server works;
    /// only `--dns` and its kin change the resolver file.
    fn etc_files(&self, address: Option<Ipv4Addr>, hostname: &str) -> Result<EtcFiles> {
        let dns = &self.config.dns;
        let overridden =
            !(dns.nameservers.is_empty() && dns.search.is_empty() && dns.options.is_empty());
        let (hosts, resolv_conf) = if self.config.mode == Mode::Host {
            let resolv = read_host_file(Path::new("/etc/resolv.conf"))?;
            let resolv = if overridden {
                etc_files::resolv_conf(&resolv, dns)
            } else {
                resolv
            };
            (read_host_file(Path::new("/etc/hosts"))?, resolv)
        } else {
            let (_, host_resolv) = etc_files::host_resolv_conf(
                Path::new("/etc/resolv.conf"),
                Path::new("/run/systemd/resolve/resolv.conf"),
            )?;
            let own = address.map(|a| (IpAddr::V4(a), hostname));
            (
                etc_files::hosts(own, &self.config.extra_hosts),
                etc_files::resolv_conf(&host_resolv, dns),
            )
        };
        Ok(EtcFiles {
            hostname: etc_files::hostname(hostname),
            hosts,
            resolv_conf,
        })
    }
}

/// A file of the host's, or, when it has none, an empty one for
/// `resolv.conf` and the default lines for `hosts`.
fn read_host_file(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(content) => Ok(content),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.ends_with("hosts") => {
            Ok(etc_files::hosts(None, &[]))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// A container's network while it runs: what [`Attached::detach`] undoes.
///
/// The veth pair is not on the list: it belongs to the container's network
/// namespace, and the kernel removes both ends when the namespace dies with
/// the container's last process. Deleting it ourselves would only make minibox
/// wait: `RTM_DELLINK` of a veth blocks for RCU grace periods, 15 to 25 ms on
/// this book's machines, more than the whole rest of a start.
// SIMPLIFICATION: a process that entered the namespace from outside (`nsenter
// -n -t PID`, still running after the container's end) keeps it, and so its
// veth, alive until it exits; Docker's daemon deletes the veth itself.
#[derive(Default)]
pub struct Attached {
    /// The leased address and its allocator.
    lease: Option<(Ipam, Ipv4Addr)>,
    /// One proxy per published port.
    proxies: Vec<Proxy>,
    /// What the container got, in words, for the narration.
    summary: String,
}

impl std::fmt::Display for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

impl Attached {
    /// The container's address on the bridge, if it has one.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.lease.as_ref().map(|(_, address)| *address)
    }

    // ANCHOR: detach
    /// Stage 3, after the container's end: stops the proxies (freeing the
    /// host's ports) and gives the address back; the veth pair goes with the
    /// container's namespace. Each step runs even if the one before it failed;
    /// the first failure is returned.
    pub fn detach(mut self) -> Result<()> {
        self.undo()
    }
    // ANCHOR_END: detach

    fn undo(&mut self) -> Result<()> {
        let mut first_error = None;
        let mut keep = |result: Result<()>| {
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        };
        for proxy in self.proxies.drain(..) {
            keep(proxy.stop());
        }
        if let Some((ipam, address)) = self.lease.take() {
            keep(ipam.release(address));
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.undo(); // an error or a panic on the way: best effort
    }
}

// ANCHOR: mount_etc_files
/// In the child, before `pivot_root`: bind-mounts the files
/// [`Prepared::attach`] wrote into `dir` over the image's `/etc/hostname`,
/// `/etc/hosts` and `/etc/resolv.conf` in `rootfs`. Each is found inside the
/// root filesystem (chapter 4's `open_in_root`), so a link in the image (an
/// `/etc` that leads to the host's) cannot lead the mount out. A target that
/// is a symlink, which a bind mount would follow, is removed first, and a
/// missing one becomes an empty file, in the container's writable layer: the
/// image is never changed.
pub fn mount_etc_files(dir: &Path, rootfs: &Path) -> Result<()> {
    let etc = in_root::open_in_root(rootfs, Path::new("/etc"), TargetKind::Dir)?;
    for name in ETC_FILES {
        // A link would be followed by the bind mount: it goes (relative to
        // `/etc`'s descriptor, so never the place it leads to).
        if etc.entry_kind(name)? == Some(SFlag::S_IFLNK) {
            etc.remove(name)?;
        }
        let target = Path::new("/etc").join(name);
        let target = in_root::open_in_root(rootfs, &target, TargetKind::File)?;
        let source = dir.join(name);
        let source = source
            .to_str()
            .context("a container directory that is not UTF-8")?;
        target.mount(Some(source), None, MsFlags::MS_BIND, None)?;
    }
    Ok(())
}
// ANCHOR_END: mount_etc_files

// ANCHOR: prune
/// `minibox network prune`: removes the bridge and minibox's NAT chains when
/// no container holds an address any more. Returns what it removed.
pub fn prune(state: &Path) -> Result<Vec<String>> {
    let subnet = configured_subnet()?;
    let ipam = Ipam::new(&state.join("network"), subnet)?;
    let living: Vec<_> = ipam
        .leases()?
        .into_iter()
        .filter(|l| l.holder.is_alive())
        .collect();
    if let Some(lease) = living.first() {
        bail!(
            "{BRIDGE} is in use by {} container(s), e.g. {} ({})",
            living.len(),
            ch03_uts_namespace::id::short(&lease.owner),
            lease.address
        );
    }
    let mut removed = Vec::new();
    let mut host = Netlink::open()?;
    if host.link_index(BRIDGE)?.is_some() {
        host.delete_link(BRIDGE)?;
        removed.push(BRIDGE.to_string());
    }
    if nat::teardown()? {
        removed.push(format!(
            "iptables chains {} and {}",
            nat::NAT_CHAIN,
            nat::FILTER_CHAIN
        ));
    }
    Ok(removed)
}
// ANCHOR_END: prune

/// The container's hostname: `--hostname` if given; else, with `host`
/// networking, the host's own name (as Docker does: the container shares the
/// host's addresses, so it answers to its name); else chapter 3's short ID.
pub fn hostname(mode: Mode, requested: Option<&str>, id: &str) -> Result<String> {
    if mode == Mode::Host && requested.is_none() {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("read /proc/sys/kernel/hostname")?;
        return Ok(name.trim_end().to_string());
    }
    Ok(ch03_uts_namespace::uts::hostname_for(requested, id))
}
