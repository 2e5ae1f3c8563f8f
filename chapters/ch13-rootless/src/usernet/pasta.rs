//! pasta (`pasta(1)`, of the passt project), attached to a container's
//! network namespace.
//!
//! The container gets the host's own address, netmask and default gateway,
//! copied from the host's interface with the default route: pasta refuses
//! to start on a host without one ("External interface not usable"). Its
//! DNS is `169.254.1.1`, which pasta forwards to the host's first
//! nameserver, even one on the host's loopback (systemd-resolved's
//! `127.0.0.53`), which the container could not reach itself.
//!
//! Written against Debian 12's pasta (2023-03-09); every flag below is in
//! its `pasta --help`. Two limits of that version, seen in the tests'
//! namespaces: a UDP answer to a client on the host's loopback is lost when
//! the host port differs from the container's (`-u 15353:5353`; equal ports
//! work), and, with `--no-map-gw`, so is one to a host program that used the
//! host's own address, which pasta shows the container as the gateway's.
//! Clients on other machines are answered.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use ch09_networking::netns;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getegid, geteuid, pipe2};

use super::{Forward, PrivateDir, Process, Stack, TAP, unpublished};

/// The address the container sends DNS queries to; pasta forwards UDP to
/// port 53 there to the host's first nameserver (`--dns-forward`). A
/// link-local address, as podman uses: it belongs to no real network, and
/// the container's default route takes it to pasta.
const DNS_FORWARD: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// tap0's MAC address: locally administered (`02:`), and the same for
/// every container, since each tap0 is a link of its own with pasta alone
/// at the other end.
const TAP_MAC: &str = "02:00:00:00:00:01";

// ANCHOR: pasta
/// Starts pasta for the network namespace of `pid`, with `forwards`, and
/// returns it with the container's address and nameservers.
pub(super) fn start(
    program: &Path,
    pid: Pid,
    forwards: &[Forward],
    dir: &PrivateDir,
) -> Result<(Process, Ipv4Addr, Vec<IpAddr>)> {
    // pasta drops every capability it can before it opens the namespace,
    // and the kernel lets a process open another's /proc/PID/ns/net only
    // if it holds all of that process's capabilities, or CAP_SYS_PTRACE
    // (ptrace(2), "Ptrace access mode checking"): `--netns /proc/PID/ns/net`
    // fails, as root and rootless alike. The monitor holds them: it opens
    // the namespace and passes the descriptor, which pasta opens as
    // /proc/self/fd/N, its own.
    let path = format!("/proc/{pid}/ns/net");
    let netns = File::open(&path).with_context(|| format!("open {path}"))?;
    // pasta writes its PID to the --pid file once it is set up: given the
    // write end of a pipe as that file, it tells us when it is ready.
    let (ready, ready_w) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    let mut command = Command::new(program);
    command
        // Our child, to wait for and to signal; errors only, to a file of
        // ours rather than the system log.
        .args(["--foreground", "--quiet", "--log-file"])
        .arg(dir.join("pasta.log"))
        // Started by root, it would become `nobody`, who may not enter the
        // namespace: it stays who we are (in a rootless minibox, root of the
        // user namespace, where this changes nothing).
        .arg("--runas")
        .arg(format!("{}:{}", geteuid(), getegid()))
        // tap0 with the host's address and routes, IPv4 only.
        .args(["--config-net", "--ns-ifname", TAP, "--ipv4-only"])
        // A MAC address it knows from the start: left to the tap driver,
        // this pasta learns it from the container's first frame, and
        // until then what it sends the container is lost.
        .args(["--ns-mac-addr", TAP_MAC])
        // The gateway's address is not a way to the host's 127.0.0.1.
        .arg("--no-map-gw")
        .args(["--dns-forward", &DNS_FORWARD.to_string()])
        .args(port_options(forwards))
        // No ports of the host's published into the container.
        .args(["-T", "none", "-U", "none"])
        .arg("--pid")
        .arg(format!("/proc/self/fd/{}", ready_w.as_raw_fd()))
        .arg("--netns")
        .arg(format!("/proc/self/fd/{}", netns.as_raw_fd()))
        // It would watch the namespace's file to quit when it is deleted;
        // /proc has no such events, and we stop it ourselves.
        .arg("--no-netns-quit");
    let pass = [ready_w.as_fd(), netns.as_fd()];
    let death = Some(Signal::SIGKILL);
    let mut process = Process::spawn(Stack::Pasta, command, dir.join("log"), &pass, death)?;
    drop((ready_w, netns));
    if let Err(error) = process.wait_ready(ready) {
        process.end()?;
        return Err(unpublished(forwards, error));
    }
    let address = address_in(pid)?;
    Ok((process, address, vec![IpAddr::V4(DNS_FORWARD)]))
}
// ANCHOR_END: pasta

/// pasta's options for the published ports: one `-t`/`-u` each, as
/// `127.0.0.1/6379:6379` (address, host port, container port). Left out,
/// they would default to `auto` (forward whatever the container listens
/// on), and a TCP port would bring the same UDP port along: so `none`
/// when there is no port of that protocol.
fn port_options(forwards: &[Forward]) -> Vec<String> {
    let mut options = Vec::new();
    for udp in [false, true] {
        let option = if udp { "-u" } else { "-t" };
        let specs: Vec<String> = forwards
            .iter()
            .filter(|forward| forward.udp == udp)
            .map(|f| format!("{}/{}:{}", f.host_ip, f.host_port, f.container_port))
            .collect();
        if specs.is_empty() {
            options.extend([option.to_string(), "none".to_string()]);
        }
        for spec in specs {
            options.extend([option.to_string(), spec]);
        }
    }
    options
}

/// The address pasta gave the container, as the container's kernel says:
/// a UDP socket in its namespace is connected to the DNS address, which
/// sends nothing but chooses the route, and with it the source address.
fn address_in(pid: Pid) -> Result<Ipv4Addr> {
    let container = netns::of_process(pid.as_raw())?;
    let local = netns::run_in(container.as_fd(), || {
        let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).context("bind a UDP socket")?;
        probe
            .connect((DNS_FORWARD, 53))
            .context("the container has no route out")?;
        Ok(probe.local_addr()?)
    })?;
    match local {
        SocketAddr::V4(local) => Ok(*local.ip()),
        SocketAddr::V6(local) => bail!("pasta gave the container {local}, not IPv4"),
    }
}
