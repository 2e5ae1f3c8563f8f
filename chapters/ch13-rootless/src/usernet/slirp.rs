//! slirp4netns (`slirp4netns(1)`), attached to a container's network
//! namespace.
//!
//! The container is `10.0.2.100/24` on `tap0`, its gateway `10.0.2.2` and its
//! DNS `10.0.2.3`: both addresses are slirp4netns itself, which answers DNS
//! with the host's resolvers. Published ports are added once it runs,
//! through its JSON API on a unix socket (`add_hostfwd`).
//!
//! A known limit (podman issue 4586): with `--disable-host-loopback`, libslirp
//! drops a container's UDP answer to a client on the host's own loopback;
//! clients elsewhere are answered. Podman publishes ports with a forwarder
//! of its own (rootlessport) rather than `add_hostfwd`, which avoids it.

use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Shutdown};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, anyhow};
use nix::fcntl::OFlag;
use nix::unistd::{Pid, pipe2};
use serde_json::{Value, json};

use super::{Forward, PrivateDir, Process, Stack, TAP, unpublished};

/// The container's address: the 100th of slirp4netns's default
/// `10.0.2.0/24`.
const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);

/// The prefix length of slirp4netns's network.
pub(super) const PREFIX_LEN: u8 = 24;

/// slirp4netns's DNS forwarder.
const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

// ANCHOR: slirp4netns
/// Starts slirp4netns for the network namespace of `pid`, publishes
/// `forwards` through its API, and returns it with the container's address
/// and nameservers.
pub(super) fn start(
    program: &Path,
    pid: Pid,
    forwards: &[Forward],
    dir: &PrivateDir,
) -> Result<(Process, Ipv4Addr, Vec<IpAddr>)> {
    // It writes to --ready-fd once tap0 is configured, and exits when
    // --exit-fd reads end of file: when we close the write end, or the
    // kernel does because the monitor died.
    let (ready, ready_w) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    let (exit_r, exit_w) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    let api = dir.join("api.sock");
    let mut api_option = OsString::from("--api-socket=");
    api_option.push(&api);
    let mut command = Command::new(program);
    command
        // Address tap0, route through it, bring it and lo up.
        .args(["--configure", "--mtu=65520"])
        // 10.0.2.2 is not a way to the host's 127.0.0.1.
        .arg("--disable-host-loopback")
        // Its own mount namespace and a seccomp filter, as podman asks.
        .args(["--enable-sandbox", "--enable-seccomp"])
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
        .arg(format!("--exit-fd={}", exit_r.as_raw_fd()))
        .arg(api_option)
        .arg(pid.to_string())
        .arg(TAP);
    let pass = [ready_w.as_fd(), exit_r.as_fd()];
    let log = dir.join("log");
    let mut process = Process::spawn(Stack::Slirp4netns, command, log, &pass, None)?;
    process.exit_fd = Some(exit_w);
    drop((ready_w, exit_r));
    process.wait_ready(ready)?;
    for forward in forwards {
        if let Err(error) = add_hostfwd(&api, forward) {
            process.end()?;
            return Err(unpublished(std::slice::from_ref(forward), error));
        }
    }
    Ok((process, ADDRESS, vec![IpAddr::V4(DNS)]))
}
// ANCHOR_END: slirp4netns

/// Publishes one port through slirp4netns's API: one JSON request per
/// connection, one JSON reply, `{"return": {"id": N}}` or
/// `{"error": {"desc": "..."}}`.
fn add_hostfwd(api: &Path, forward: &Forward) -> Result<()> {
    let request = json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": forward.protocol(),
            "host_addr": forward.host_ip.to_string(),
            "host_port": forward.host_port,
            "guest_port": forward.container_port,
        }
    });
    let mut socket = UnixStream::connect(api)
        .with_context(|| format!("connect to slirp4netns's API at {}", api.display()))?;
    socket.write_all(request.to_string().as_bytes())?;
    socket.shutdown(Shutdown::Write)?;
    let reply: Value = serde_json::from_reader(&socket).context("read slirp4netns's reply")?;
    match reply.get("error") {
        None => Ok(()),
        Some(error) => {
            let desc = error["desc"].as_str().unwrap_or("no description");
            Err(anyhow!("slirp4netns cannot publish {forward}: {desc}"))
        }
    }
}
