//! Test plumbing for the draft (the workspace's `harness` crate takes this
//! role once the chapter is wired in): the root gate and the checks that a
//! test left nothing behind.

#![allow(dead_code)]

use std::os::fd::BorrowedFd;

use ch09_networking_draft::netlink::Netlink;

/// Returns true when the test may go on. Without root it prints `SKIP` and
/// returns false, or panics when `MINIBOX_REQUIRE_PRIVILEGED=1` forbids
/// skipping (the workspace harness's rule).
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(test, "needs root");
    false
}

/// Prints `SKIP test: reason`, or panics when `MINIBOX_REQUIRE_PRIVILEGED=1`
/// forbids skipping.
pub fn skip(test: &str, reason: &str) {
    let forbidden =
        std::env::var("MINIBOX_REQUIRE_PRIVILEGED").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !forbidden,
        "{test}: {reason}, and MINIBOX_REQUIRE_PRIVILEGED forbids skipping"
    );
    eprintln!("SKIP {test}: {reason}");
}

/// The names of the links in namespace `netns`, sorted.
pub fn link_names(netns: BorrowedFd<'_>) -> Vec<String> {
    let mut names: Vec<String> = Netlink::open_in(netns)
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    names
}

/// `ip -o link` run inside `netns`, one line per link: the independent view
/// of what is left.
pub fn ip_o_link(netns: BorrowedFd<'_>) -> String {
    let out = ch09_networking_draft::netns::command_in(netns, "ip")
        .unwrap()
        .args(["-o", "link"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip -o link: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that the real host's namespace (the one the test process runs in)
/// has no link whose name starts with `prefix`: the test's links never
/// escaped the namespaces it made. Reading the host's links is read-only.
pub fn assert_host_has_no_link(prefix: &str) {
    let leaked: Vec<String> = Netlink::open()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert!(leaked.is_empty(), "links on the real host: {leaked:?}");
}

/// A "host" namespace and a "container" namespace wired as `docker run`
/// wires a container on the default bridge: bridge `BRIDGE` with
/// 172.29.0.1/16, veth `VETH` on it, the peer as `eth0` with 172.29.0.2/16
/// and a default route via the gateway; `lo` up on both sides.
pub struct Topology {
    /// The namespace playing the host.
    pub host: std::os::fd::OwnedFd,
    /// The namespace playing the container.
    pub ctr: std::os::fd::OwnedFd,
}

/// The gateway address, on the bridge.
pub const GATEWAY: std::net::Ipv4Addr = std::net::Ipv4Addr::new(172, 29, 0, 1);
/// The container's address, on its `eth0`.
pub const CONTAINER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(172, 29, 0, 2);

/// Builds a [`Topology`] with link names starting with `prefix` (at most 8
/// bytes, so the names fit IFNAMSIZ).
pub fn topology(prefix: &str) -> Topology {
    use std::os::fd::AsFd;
    let host = ch09_networking_draft::netns::create().unwrap();
    let ctr = ch09_networking_draft::netns::create().unwrap();
    let (bridge, veth, peer) = (
        format!("{prefix}br"),
        format!("{prefix}v"),
        format!("{prefix}p"),
    );
    let mut nl = Netlink::open_in(host.as_fd()).unwrap();
    nl.set_up("lo").unwrap();
    nl.create_bridge(&bridge).unwrap();
    nl.add_address(&bridge, GATEWAY, 16).unwrap();
    nl.set_up(&bridge).unwrap();
    nl.create_veth(&veth, &peer).unwrap();
    nl.set_master(&veth, &bridge).unwrap();
    nl.set_up(&veth).unwrap();
    nl.move_to_netns(&peer, ctr.as_fd()).unwrap();
    let mut cnl = Netlink::open_in(ctr.as_fd()).unwrap();
    cnl.rename(&peer, "eth0").unwrap();
    cnl.add_address("eth0", CONTAINER, 16).unwrap();
    cnl.set_up("eth0").unwrap();
    cnl.set_up("lo").unwrap();
    cnl.add_default_route(GATEWAY).unwrap();
    Topology { host, ctr }
}

/// Runs `args` in `netns` and returns its standard output; panics when it
/// fails.
pub fn run_in_ns(netns: BorrowedFd<'_>, args: &[&str]) -> String {
    let out = ch09_networking_draft::netns::command_in(netns, args[0])
        .unwrap()
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
