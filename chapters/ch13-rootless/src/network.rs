//! A rootless container's default network: its own network namespace, as
//! with chapter 9's bridge, but connected to the host's by a user-mode
//! stack ([`crate::usernet`]) instead of a veth on a bridge, which only the
//! host's root may make. `-p` goes through the stack too: it listens on the
//! host's side, as the user, and forwards into the container.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use ch09_networking::etc_files::{self, EtcFiles};
use ch09_networking::network::NetworkConfig;
use ch09_networking::proxy;
use ch09_networking::publish::{PortMapping, Protocol};
use ch10_runtime::privileges::{AttachedNetwork, PreparedNetwork};
use nix::unistd::Pid;

use crate::usernet::{Forward, Stack, UserNet};

// ANCHOR: prepare
/// Before the clone: finds the stack, and the host port of each `-p` (a
/// port taken already fails here, with chapter 9's message).
pub fn prepare(config: &NetworkConfig) -> Result<Box<dyn PreparedNetwork>> {
    let (stack, program) = Stack::find().ok_or_else(|| {
        anyhow!(
            "rootless containers need a user-mode network stack for their own network: install passt (pasta) or slirp4netns, or use --network none or host"
        )
    })?;
    // Both stacks open the TUN device for the container's tap0: say so
    // here, rather than let the stack fail with its own words.
    let tun = Path::new("/dev/net/tun");
    if nix::unistd::access(
        tun,
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    )
    .is_err()
    {
        anyhow::bail!(
            "rootless containers reach the network through /dev/net/tun, which is not yours to open here: `sudo chmod 0666 /dev/net/tun` (its usual mode), or use --network none or host"
        );
    }
    let published = config
        .publish
        .iter()
        .map(|mapping| Ok((*mapping, free_port(mapping)?)))
        .collect::<Result<_>>()?;
    Ok(Box::new(Prepared {
        stack,
        program,
        config: config.clone(),
        published,
    }))
}
// ANCHOR_END: prepare

/// The host address and port `mapping` will be published on: chapter 9
/// binds it, to learn that it is free (or which port the kernel chose),
/// then lets it go for the stack to bind.
fn free_port(mapping: &PortMapping) -> Result<SocketAddr> {
    let bound = match mapping.protocol {
        Protocol::Tcp => proxy::bind_tcp(mapping.host_ip, mapping.host_ports)?.local_addr(),
        Protocol::Udp => proxy::bind_udp(mapping.host_ip, mapping.host_ports)?.local_addr(),
    };
    bound.context("the published port's address")
}

/// The stack found, and the ports it will publish.
struct Prepared {
    stack: Stack,
    program: PathBuf,
    config: NetworkConfig,
    published: Vec<(PortMapping, SocketAddr)>,
}

impl PreparedNetwork for Prepared {
    fn published(&self) -> Result<Vec<(PortMapping, SocketAddr)>> {
        Ok(self.published.clone())
    }
    fn descriptors(&self) -> Vec<RawFd> {
        Vec::new()
    }
    // ANCHOR: attach
    fn attach(
        self: Box<Self>,
        child: Pid,
        _id: &str,
        hostname: &str,
        dir: &Path,
    ) -> Result<Box<dyn AttachedNetwork>> {
        let forwards: Vec<Forward> = self
            .published
            .iter()
            .map(|(mapping, bound)| Forward {
                udp: mapping.protocol == Protocol::Udp,
                host_ip: bound.ip(),
                host_port: bound.port(),
                container_port: mapping.container_port,
            })
            .collect();
        let net = UserNet::start(self.stack, &self.program, child, &forwards)?;
        let files = etc(&self.config, &net, hostname).and_then(|files| files.write(dir));
        if let Err(error) = files {
            let _ = net.stop();
            return Err(error);
        }
        Ok(Box::new(Attached(net)))
    }
    // ANCHOR_END: attach
}

/// The container's `/etc` files: its own address in `hosts`, and the
/// stack's name servers in `resolv.conf` (unless `--dns` says otherwise).
fn etc(config: &NetworkConfig, net: &UserNet, hostname: &str) -> Result<EtcFiles> {
    let (_, host_resolv) = etc_files::host_resolv_conf(
        Path::new("/etc/resolv.conf"),
        Path::new("/run/systemd/resolve/resolv.conf"),
    )?;
    let mut dns = config.dns.clone();
    if dns.nameservers.is_empty() {
        dns.nameservers = net.nameservers();
    }
    let own = (IpAddr::V4(net.address()), hostname);
    Ok(EtcFiles {
        hostname: etc_files::hostname(hostname),
        hosts: etc_files::hosts(Some(own), &config.extra_hosts),
        resolv_conf: etc_files::resolv_conf(&host_resolv, &dns),
    })
}

/// A running stack.
struct Attached(UserNet);

impl AttachedNetwork for Attached {
    fn address(&self) -> Option<Ipv4Addr> {
        Some(self.0.address())
    }
    fn detach(self: Box<Self>) -> Result<()> {
        self.0.stop()
    }
}
