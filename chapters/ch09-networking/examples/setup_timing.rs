//! How long giving one container a network takes: the same twelve steps
//! (bridge, its address, up; veth pair, master, up, move; then inside the
//! container rename to eth0, address, up, lo up, default route) sent as
//! rtnetlink messages by minibox's client, and run as twelve `ip` commands.
//!
//! Both are also timed the way netavark does it: the container's end is
//! created inside its namespace as `eth0` (`create_veth_into`,
//! `ip link add ... peer name eth0 netns NS`), skipping the move and the
//! rename, which wait for the kernel (an RCU grace period per move).
//!
//! Each run starts from two fresh namespaces made for it (one plays the host,
//! one the container), so nothing outside them is touched; making them is not
//! timed. The two ways alternate, so that a busy machine slows both alike.
//!
//! ```text
//! sudo cargo run --release --example setup_timing [RUNS]
//! ```

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ch09_networking::netlink::Netlink;
use ch09_networking::netns;

fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(30);
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..runs {
        times[0].push(timed(with_netlink)?);
        times[1].push(timed(with_ip)?);
        times[2].push(timed(with_netlink_direct)?);
        times[3].push(timed(with_ip_direct)?);
    }
    let [nl, ip, nl_direct, ip_direct] = &mut times;
    println!("create + move + rename (12 steps):");
    let (a, b) = (summary("netlink", nl), summary("ip", ip));
    println!(
        "{:>12}  ip / netlink = {:.1}x",
        "",
        b.as_secs_f64() / a.as_secs_f64()
    );
    println!("peer made in the container's namespace (10 steps):");
    let (c, d) = (summary("netlink", nl_direct), summary("ip", ip_direct));
    println!(
        "{:>12}  ip / netlink = {:.1}x",
        "",
        d.as_secs_f64() / c.as_secs_f64()
    );
    Ok(())
}

/// Runs `setup` on two fresh namespaces and returns how long it took.
fn timed(setup: fn(BorrowedFd<'_>, BorrowedFd<'_>) -> Result<()>) -> Result<Duration> {
    let host = netns::create()?;
    let ctr = netns::create()?;
    let start = Instant::now();
    setup(host.as_fd(), ctr.as_fd())?;
    Ok(start.elapsed())
}

/// The twelve steps as netlink messages (plus opening the two sockets).
fn with_netlink(host: BorrowedFd<'_>, ctr: BorrowedFd<'_>) -> Result<()> {
    let gateway = "172.29.0.1".parse()?;
    let mut nl = Netlink::open_in(host)?;
    nl.create_bridge("minibox0")?;
    nl.add_address("minibox0", gateway, 16)?;
    nl.set_up("minibox0")?;
    nl.create_veth("veth0a1b2c", "veth0a1b2cp")?;
    nl.set_master("veth0a1b2c", "minibox0")?;
    nl.set_up("veth0a1b2c")?;
    nl.move_to_netns("veth0a1b2cp", ctr)?;
    let mut cnl = Netlink::open_in(ctr)?;
    cnl.rename("veth0a1b2cp", "eth0")?;
    cnl.add_address("eth0", "172.29.0.2".parse()?, 16)?;
    cnl.set_up("eth0")?;
    cnl.set_up("lo")?;
    cnl.add_default_route(gateway)
}

/// Ten steps: the container's end is created inside its namespace as
/// `eth0` (netavark's way), so there is no move and no rename.
fn with_netlink_direct(host: BorrowedFd<'_>, ctr: BorrowedFd<'_>) -> Result<()> {
    let gateway = "172.29.0.1".parse()?;
    let mut nl = Netlink::open_in(host)?;
    nl.create_bridge("minibox0")?;
    nl.add_address("minibox0", gateway, 16)?;
    nl.set_up("minibox0")?;
    nl.create_veth_into("veth0a1b2c", "eth0", ctr)?;
    nl.set_master("veth0a1b2c", "minibox0")?;
    nl.set_up("veth0a1b2c")?;
    let mut cnl = Netlink::open_in(ctr)?;
    cnl.add_address("eth0", "172.29.0.2".parse()?, 16)?;
    cnl.set_up("eth0")?;
    cnl.set_up("lo")?;
    cnl.add_default_route(gateway)
}

/// The same twelve steps as `ip` commands.
fn with_ip(host: BorrowedFd<'_>, ctr: BorrowedFd<'_>) -> Result<()> {
    let ctr_path = format!("/proc/{}/fd/{}", std::process::id(), ctr.as_raw_fd());
    let host_steps: [&[&str]; 7] = [
        &["link", "add", "minibox0", "type", "bridge"],
        &["addr", "add", "172.29.0.1/16", "dev", "minibox0"],
        &["link", "set", "minibox0", "up"],
        &[
            "link",
            "add",
            "veth0a1b2c",
            "type",
            "veth",
            "peer",
            "name",
            "veth0a1b2cp",
        ],
        &["link", "set", "veth0a1b2c", "master", "minibox0"],
        &["link", "set", "veth0a1b2c", "up"],
        &["link", "set", "veth0a1b2cp", "netns", &ctr_path],
    ];
    for args in host_steps {
        ip_in(host, args)?;
    }
    let ctr_steps: [&[&str]; 5] = [
        &["link", "set", "veth0a1b2cp", "name", "eth0"],
        &["addr", "add", "172.29.0.2/16", "dev", "eth0"],
        &["link", "set", "eth0", "up"],
        &["link", "set", "lo", "up"],
        &["route", "add", "default", "via", "172.29.0.1"],
    ];
    for args in ctr_steps {
        ip_in(ctr, args)?;
    }
    Ok(())
}

/// The ten steps of [`with_netlink_direct`] as `ip` commands.
fn with_ip_direct(host: BorrowedFd<'_>, ctr: BorrowedFd<'_>) -> Result<()> {
    let ctr_path = format!("/proc/{}/fd/{}", std::process::id(), ctr.as_raw_fd());
    let host_steps: [&[&str]; 6] = [
        &["link", "add", "minibox0", "type", "bridge"],
        &["addr", "add", "172.29.0.1/16", "dev", "minibox0"],
        &["link", "set", "minibox0", "up"],
        &[
            "link",
            "add",
            "veth0a1b2c",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ctr_path,
        ],
        &["link", "set", "veth0a1b2c", "master", "minibox0"],
        &["link", "set", "veth0a1b2c", "up"],
    ];
    for args in host_steps {
        ip_in(host, args)?;
    }
    let ctr_steps: [&[&str]; 4] = [
        &["addr", "add", "172.29.0.2/16", "dev", "eth0"],
        &["link", "set", "eth0", "up"],
        &["link", "set", "lo", "up"],
        &["route", "add", "default", "via", "172.29.0.1"],
    ];
    for args in ctr_steps {
        ip_in(ctr, args)?;
    }
    Ok(())
}

/// Runs `ip ARGS` inside `netns`.
fn ip_in(netns: BorrowedFd<'_>, args: &[&str]) -> Result<()> {
    let out = netns::command_in(netns, "ip")?
        .args(args)
        .output()
        .context("run ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Prints median, min and max; returns the median.
fn summary(name: &str, times: &mut [Duration]) -> Duration {
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{name:>12}: median {:>8.3} ms  min {:>8.3} ms  max {:>8.3} ms  ({} runs)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
    median
}
