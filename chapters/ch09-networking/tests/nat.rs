//! Outbound NAT, inside namespaces the test makes: a third namespace plays
//! "the internet" (a TCP server on 198.51.100.2, a documentation address
//! routed only between the test's namespaces). A container reaches it, and the
//! server sees the host's address as the source, not the container's; without
//! minibox's rules the same connection fails. Teardown removes every rule and
//! chain with one call, and the real host's forwarding switch never changes.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use ch09_networking::ipam::Subnet;
use ch09_networking::netlink::Netlink;
use ch09_networking::{nat, netns};

const HOST_UPLINK: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const INTERNET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// Connects from the container to the "internet" server and returns the
/// source address the server reports, or `None` when the connection fails.
fn seen_source(ctr: std::os::fd::BorrowedFd<'_>) -> Option<String> {
    let mut conn = netns::run_in(ctr, || {
        Ok(TcpStream::connect_timeout(
            &SocketAddr::from((INTERNET, 7007)),
            Duration::from_millis(700),
        )?)
    })
    .ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut seen = String::new();
    conn.read_to_string(&mut seen).ok()?;
    Some(seen)
}

#[test]
fn masquerade_gives_the_container_the_hosts_address_outside() {
    if !common::require_root("nat: masquerade to a test-made internet") {
        return;
    }
    if !std::path::Path::new("/usr/sbin/iptables").exists() {
        common::skip(
            "nat: masquerade",
            "iptables is not installed (Debian package iptables)",
        );
        return;
    }
    let real_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let topo = common::topology("mbxn");
    let internet = netns::create().unwrap();

    // The host's uplink: a veth whose other end is "the internet".
    let mut nl = Netlink::open_in(topo.host.as_fd()).unwrap();
    nl.create_veth_into("mbxnup", "eth0", internet.as_fd())
        .unwrap();
    nl.add_address("mbxnup", HOST_UPLINK, 24).unwrap();
    nl.set_up("mbxnup").unwrap();
    let mut inl = Netlink::open_in(internet.as_fd()).unwrap();
    inl.add_address("eth0", INTERNET, 24).unwrap();
    inl.set_up("eth0").unwrap();
    // The server answers each connection with the client address it sees.
    let server = netns::run_in(internet.as_fd(), || {
        Ok(TcpListener::bind((INTERNET, 7007))?)
    })
    .unwrap();
    std::thread::spawn(move || {
        for conn in server.incoming() {
            let Ok(mut conn) = conn else { break };
            let peer = conn.peer_addr().unwrap().ip().to_string();
            let _ = conn.write_all(peer.as_bytes());
        }
    });

    // Forwarding on, but no NAT: the SYN gets out with source 172.29.0.2, and
    // "the internet" has no route back to it.
    let was_on = netns::run_in(topo.host.as_fd(), nat::enable_ip_forward).unwrap();
    assert_eq!(
        was_on,
        new_namespaces_forward(),
        "a new namespace starts with the forwarding the kernel gives it"
    );
    assert_eq!(seen_source(topo.ctr.as_fd()), None);

    // minibox's rules: twice, to show that setup is idempotent.
    let subnet: Subnet = "172.29.0.0/16".parse().unwrap();
    for _ in 0..2 {
        netns::run_in(topo.host.as_fd(), move || nat::setup(&subnet, "mbxnbr")).unwrap();
    }
    let rules = common::run_in_ns(topo.host.as_fd(), &["iptables", "-t", "nat", "-S"]);
    assert_eq!(
        rules
            .lines()
            .filter(|l| l.contains("MASQUERADE"))
            .collect::<Vec<_>>(),
        ["-A MINIBOX-POSTROUTING -s 172.29.0.0/16 ! -o mbxnbr -j MASQUERADE"]
    );
    assert_eq!(
        rules.matches("-j MINIBOX-POSTROUTING").count(),
        1,
        "{rules}"
    );
    assert_eq!(
        seen_source(topo.ctr.as_fd()).as_deref(),
        Some("198.51.100.1")
    );

    // One call removes it all.
    netns::run_in(topo.host.as_fd(), nat::teardown).unwrap();
    netns::run_in(topo.host.as_fd(), nat::teardown).unwrap();
    let nat_rules = common::run_in_ns(topo.host.as_fd(), &["iptables", "-t", "nat", "-S"]);
    let filter_rules = common::run_in_ns(topo.host.as_fd(), &["iptables", "-t", "filter", "-S"]);
    assert!(
        !nat_rules.contains("MINIBOX") && !filter_rules.contains("MINIBOX"),
        "{nat_rules}{filter_rules}"
    );
    assert_eq!(
        seen_source(topo.ctr.as_fd()),
        None,
        "without the rule the container is cut off again"
    );

    let forward_now = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    assert_eq!(
        forward_now, real_forward,
        "the real host's ip_forward is untouched"
    );
    drop((nl, inl, topo, internet));
    common::assert_host_has_no_link("mbxn");
}

/// Whether a new network namespace starts with IPv4 forwarding on: the
/// kernel copies the initial namespace's setting into it unless
/// `net.core.devconf_inherit_init_net` is 2 or 3 (defaults: off). A host
/// that forwards (one running Docker, say) gives every new namespace
/// forwarding on.
fn new_namespaces_forward() -> bool {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let inherits = matches!(
        read("/proc/sys/net/core/devconf_inherit_init_net").trim(),
        "" | "0" | "1"
    );
    inherits && read("/proc/sys/net/ipv4/ip_forward").trim() == "1"
}
