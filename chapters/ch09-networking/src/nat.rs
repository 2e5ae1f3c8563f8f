//! Outbound traffic: IP forwarding and one MASQUERADE rule, in chains of
//! minibox's own.
//!
//! A packet from the container to the outside world leaves `eth0`, crosses
//! the veth into the bridge, and reaches the host's IP stack addressed to a
//! foreign address. Two things must then happen:
//!
//! 1. The host must *forward* it (route it out of another interface) rather
//!    than drop it: `net.ipv4.ip_forward = 1` ([`enable_ip_forward`]).
//! 2. Its source, `172.29.0.2`, means nothing outside this host: replies would
//!    never find their way back. *Source NAT* rewrites the source to the
//!    address of the interface the packet leaves by, and conntrack rewrites
//!    the replies back. `MASQUERADE` is source NAT that picks that address at
//!    send time, in the `nat` table's `POSTROUTING` hook, after routing chose
//!    the way out.
//!
//! minibox keeps its rules in chains it owns (`MINIBOX-POSTROUTING` in `nat`,
//! `MINIBOX-FORWARD` in `filter`), each reached by one jump from the built-in
//! chain, as Docker does with `DOCKER-*` chains. Creating them is idempotent
//! ([`setup`] can run before every container); [`teardown`] removes them all
//! with one call, and leaves nobody else's rules changed.
//!
//! The commands, as [`setup`] runs them (via `iptables`, which on Debian 12
//! speaks nf_tables to the kernel):
//!
//! ```text
//! iptables -t nat -N MINIBOX-POSTROUTING
//! iptables -t nat -I POSTROUTING -j MINIBOX-POSTROUTING
//! iptables -t nat -A MINIBOX-POSTROUTING -s 172.29.0.0/16 ! -o minibox0 -j MASQUERADE
//! iptables -t filter -N MINIBOX-FORWARD
//! iptables -t filter -I FORWARD -j MINIBOX-FORWARD
//! iptables -t filter -A MINIBOX-FORWARD -i minibox0 -j ACCEPT
//! iptables -t filter -A MINIBOX-FORWARD -o minibox0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//! ```
//!
//! `! -o minibox0`: traffic between two containers on the bridge keeps its
//! real source. The FORWARD rules matter on hosts whose FORWARD policy is
//! DROP (Docker sets that); elsewhere they are harmless.
//!
//! Everything here acts on the network namespace of the calling thread: the
//! `iptables` child inherits it, as does the `/proc/sys/net` file opened by
//! [`enable_ip_forward`]. Tests call these inside
//! [`crate::netns::run_in`] on the namespace that plays the host.
// SIMPLIFICATION: Docker also adds DNAT rules per published port (we use the
// proxy), isolation chains between networks, and ip6tables rules; it talks to
// iptables through a library and to firewalld when present. netavark speaks
// nftables directly. We run the `iptables` command, the interface readers
// already know.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::ipam::Subnet;

/// minibox's chain in the `nat` table.
pub const NAT_CHAIN: &str = "MINIBOX-POSTROUTING";
/// minibox's chain in the `filter` table.
pub const FILTER_CHAIN: &str = "MINIBOX-FORWARD";

// ANCHOR: ip_forward
/// Sets `net.ipv4.ip_forward` to 1 in the calling thread's network namespace
/// and returns the previous value (`true` if it was already on).
pub fn enable_ip_forward() -> Result<bool> {
    // /proc/sys/net is looked up in the network namespace of the thread
    // that opens it (the kernel's sysctl code asks `current`), so on a
    // thread inside another namespace this is that namespace's switch.
    let path = "/proc/sys/net/ipv4/ip_forward";
    let before = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
    if before.trim() != "1" {
        std::fs::write(path, "1\n").with_context(|| format!("write 1 to {path}"))?;
    }
    Ok(before.trim() == "1")
}
// ANCHOR_END: ip_forward

/// Creates minibox's chains and rules for `subnet` behind `bridge`, unless
/// they exist already.
pub fn setup(subnet: &Subnet, bridge: &str) -> Result<()> {
    let subnet = subnet.to_string();
    ensure_chain("nat", NAT_CHAIN, "POSTROUTING")?;
    ensure_rule(
        "nat",
        NAT_CHAIN,
        &["-s", &subnet, "!", "-o", bridge, "-j", "MASQUERADE"],
    )?;
    ensure_chain("filter", FILTER_CHAIN, "FORWARD")?;
    ensure_rule("filter", FILTER_CHAIN, &["-i", bridge, "-j", "ACCEPT"])?;
    ensure_rule(
        "filter",
        FILTER_CHAIN,
        &[
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-j",
            "ACCEPT",
        ],
    )?;
    Ok(())
}

/// Removes every rule and chain [`setup`] made: the jumps from the built-in
/// chains, then minibox's chains themselves, and says whether there was
/// anything to remove. Running it when nothing is set up is not an error.
pub fn teardown() -> Result<bool> {
    let mut removed = false;
    for (table, chain, from) in [
        ("nat", NAT_CHAIN, "POSTROUTING"),
        ("filter", FILTER_CHAIN, "FORWARD"),
    ] {
        // The jump may have been added more than once by hand; remove all.
        while iptables(&["-t", table, "-C", from, "-j", chain])?.success {
            run(&["-t", table, "-D", from, "-j", chain])?;
            removed = true;
        }
        if iptables(&["-t", table, "-S", chain])?.success {
            run(&["-t", table, "-F", chain])?;
            run(&["-t", table, "-X", chain])?;
            removed = true;
        }
    }
    Ok(removed)
}

/// Creates `chain` in `table` and the jump to it from `from`, each only if
/// missing.
fn ensure_chain(table: &str, chain: &str, from: &str) -> Result<()> {
    if !iptables(&["-t", table, "-S", chain])?.success {
        run(&["-t", table, "-N", chain])?;
    }
    if !iptables(&["-t", table, "-C", from, "-j", chain])?.success {
        run(&["-t", table, "-I", from, "-j", chain])?;
    }
    Ok(())
}

/// Appends `rule` to `chain` unless an identical rule is there (`-C`).
fn ensure_rule(table: &str, chain: &str, rule: &[&str]) -> Result<()> {
    let mut check = vec!["-t", table, "-C", chain];
    check.extend_from_slice(rule);
    if iptables(&check)?.success {
        return Ok(());
    }
    let mut append = vec!["-t", table, "-A", chain];
    append.extend_from_slice(rule);
    run(&append)
}

/// What an `iptables` run said.
struct Outcome {
    /// Exit status 0.
    success: bool,
    /// Its standard error, for the error message.
    stderr: String,
}

/// Runs `iptables ARGS` (with `-w`: wait for the xtables lock rather than
/// fail when another iptables runs).
fn iptables(args: &[&str]) -> Result<Outcome> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .context("run iptables (Debian package iptables)")?;
    Ok(Outcome {
        success: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Runs `iptables ARGS` and turns a failure into an error naming the command.
fn run(args: &[&str]) -> Result<()> {
    let out = iptables(args)?;
    if !out.success {
        bail!("iptables {}: {}", args.join(" "), out.stderr);
    }
    Ok(())
}
