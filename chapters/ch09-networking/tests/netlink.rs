//! The rtnetlink client builds, inside namespaces the test makes, what
//! `docker run` builds for a container on the default bridge: a bridge with
//! the gateway address, a veth pair with one end on the bridge and the other
//! moved into the container's namespace as `eth0`, an address, a default
//! route. Then traffic crosses it, the kernel's errors come back in words,
//! and deleting one veth end leaves nothing behind.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsFd;

use ch09_networking::netlink::Netlink;
use ch09_networking::netns;

const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 29, 0, 1);
const CONTAINER: Ipv4Addr = Ipv4Addr::new(172, 29, 0, 2);

#[test]
fn bridge_veth_address_route_carry_traffic_and_leave_nothing() {
    if !common::require_root("netlink: bridge + veth + address + route") {
        return;
    }
    let host = netns::create().unwrap();
    let ctr = netns::create().unwrap();

    // The "host" side: the bridge with the gateway address, the veth pair.
    let mut nl = Netlink::open_in(host.as_fd()).unwrap();
    nl.create_bridge("mbxt0").unwrap();
    nl.add_address("mbxt0", GATEWAY, 16).unwrap();
    nl.set_up("mbxt0").unwrap();
    nl.create_veth("mbxtveth0", "mbxtpeer0").unwrap();
    nl.set_master("mbxtveth0", "mbxt0").unwrap();
    nl.set_up("mbxtveth0").unwrap();
    nl.move_to_netns("mbxtpeer0", ctr.as_fd()).unwrap();

    // The container side, through a socket opened inside its namespace.
    let mut cnl = Netlink::open_in(ctr.as_fd()).unwrap();
    cnl.rename("mbxtpeer0", "eth0").unwrap();
    cnl.add_address("eth0", CONTAINER, 16).unwrap();
    cnl.set_up("eth0").unwrap();
    cnl.set_up("lo").unwrap();
    cnl.add_default_route(GATEWAY).unwrap();

    // What the kernel now holds, seen through netlink and through `ip`.
    let bridge = nl.link_index("mbxt0").unwrap().unwrap();
    let links = nl.links().unwrap();
    let veth = links.iter().find(|l| l.name == "mbxtveth0").unwrap();
    assert_eq!(
        veth.master,
        Some(bridge),
        "the host end is a port of the bridge"
    );
    assert!(veth.up);
    assert_eq!(common::link_names(ctr.as_fd()), ["eth0", "lo"]);
    let routes = cnl.ipv4_routes().unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r.prefix_len == 0 && r.destination == Ipv4Addr::UNSPECIFIED),
        "default route in the container: {routes:?}"
    );
    let ip_route = netns::command_in(ctr.as_fd(), "ip")
        .unwrap()
        .args(["-4", "route"])
        .output()
        .unwrap();
    let ip_route = String::from_utf8(ip_route.stdout).unwrap();
    assert!(
        ip_route.contains("default via 172.29.0.1 dev eth0"),
        "{ip_route}"
    );

    // Traffic: a TCP server on the gateway address (host side) answers a
    // client in the container, across the veth and the bridge.
    let listener = netns::run_in(host.as_fd(), || Ok(TcpListener::bind((GATEWAY, 0))?)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        conn.write_all(b"hello from the host side").unwrap();
        peer
    });
    let mut client = netns::run_in(ctr.as_fd(), move || {
        Ok(TcpStream::connect((GATEWAY, port))?)
    })
    .unwrap();
    let mut greeting = String::new();
    client.read_to_string(&mut greeting).unwrap();
    assert_eq!(greeting, "hello from the host side");
    assert_eq!(
        server.join().unwrap().ip(),
        CONTAINER,
        "the client spoke from eth0's address"
    );

    // ping, when installed: the gateway answers ICMP from inside.
    if std::path::Path::new("/usr/bin/ping").exists() {
        let ping = netns::command_in(ctr.as_fd(), "ping")
            .unwrap()
            .args(["-c1", "-W2", "172.29.0.1"])
            .output()
            .unwrap();
        assert!(
            ping.status.success(),
            "{}",
            String::from_utf8_lossy(&ping.stdout)
        );
    }

    // The kernel's refusals, in words.
    let err = nl.create_bridge("mbxt0").unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "RTM_NEWLINK mbxt0: File exists (EEXIST)"
    );
    let err = cnl.add_default_route(GATEWAY).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "RTM_NEWROUTE default via 172.29.0.1: File exists (EEXIST)"
    );
    let err = nl.delete_link("mbxtnothere").unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "RTM_DELLINK mbxtnothere: No such device (ENODEV)"
    );

    // Cleanup: deleting the host end takes the container end with it.
    nl.delete_link("mbxtveth0").unwrap();
    assert_eq!(common::link_names(ctr.as_fd()), ["lo"]);
    nl.delete_link("mbxt0").unwrap();
    let left = common::ip_o_link(host.as_fd());
    assert_eq!(left.lines().count(), 1, "only lo is left: {left}");
    assert!(left.contains(": lo:"), "{left}");
    drop((nl, cnl, host, ctr));
    common::assert_host_has_no_link("mbxt");
}

#[test]
fn a_namespace_held_by_a_descriptor_takes_its_links_with_it() {
    if !common::require_root("netlink: namespace teardown") {
        return;
    }
    let host = netns::create().unwrap();
    let ctr = netns::create().unwrap();
    let mut nl = Netlink::open_in(host.as_fd()).unwrap();
    nl.create_veth("mbxuveth0", "mbxupeer0").unwrap();
    nl.move_to_netns("mbxupeer0", ctr.as_fd()).unwrap();
    assert_eq!(common::link_names(host.as_fd()), ["lo", "mbxuveth0"]);
    // Closing the last reference to the container's namespace destroys it,
    // and with it the veth end inside, and so the whole pair: what happens
    // when a container (or minibox) is SIGKILLed.
    drop(ctr);
    let mut gone = false;
    for _ in 0..100 {
        if common::link_names(host.as_fd()) == ["lo"] {
            gone = true;
            break;
        }
        // Namespace teardown runs in a kernel work queue, not synchronously.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        gone,
        "the host end went with the namespace: {:?}",
        common::link_names(host.as_fd())
    );
    drop((nl, host));
    common::assert_host_has_no_link("mbxu");
}

#[test]
fn a_veth_end_can_be_born_inside_the_container_namespace() {
    if !common::require_root("netlink: veth peer created in place") {
        return;
    }
    let host = netns::create().unwrap();
    let ctr = netns::create().unwrap();
    let mut nl = Netlink::open_in(host.as_fd()).unwrap();
    // The peer's name only has to be free where it is born: "eth0" inside.
    nl.create_veth_into("mbxivet0", "eth0", ctr.as_fd())
        .unwrap();
    assert_eq!(common::link_names(host.as_fd()), ["lo", "mbxivet0"]);
    assert_eq!(common::link_names(ctr.as_fd()), ["eth0", "lo"]);
    let err = nl
        .create_veth_into("mbxivet1", "eth0", ctr.as_fd())
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "RTM_NEWLINK mbxivet1 (veth peer eth0): File exists (EEXIST)"
    );
    nl.delete_link("mbxivet0").unwrap();
    assert_eq!(common::link_names(ctr.as_fd()), ["lo"]);
    drop((nl, host, ctr));
    common::assert_host_has_no_link("mbxiv");
}

#[test]
fn racing_starts_share_one_bridge() {
    if !common::require_root("netlink: ensure_bridge from racing starts") {
        return;
    }
    let host = netns::create().unwrap();
    // Four "container starts" at once, each with its own socket, as separate
    // minibox processes would have.
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let host = host.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut nl = Netlink::open_in(host.as_fd()).unwrap();
                nl.ensure_bridge("mbxr0", GATEWAY, 16).unwrap()
            })
        })
        .collect();
    let created: Vec<bool> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        created.iter().filter(|c| **c).count(),
        1,
        "exactly one start made it: {created:?}"
    );
    let mut nl = Netlink::open_in(host.as_fd()).unwrap();
    assert!(
        !nl.ensure_bridge("mbxr0", GATEWAY, 16).unwrap(),
        "later starts reuse it"
    );
    let links = nl.links().unwrap();
    assert!(links.iter().any(|l| l.name == "mbxr0" && l.up));
    let addrs = common::run_in_ns(
        host.as_fd(),
        &["ip", "-o", "-4", "addr", "show", "dev", "mbxr0"],
    );
    assert_eq!(addrs.lines().count(), 1, "one gateway address: {addrs}");
    assert!(addrs.contains("inet 172.29.0.1/16"), "{addrs}");
    // Other refusals are still errors, and the kind can be told apart.
    let err = nl.set_up("mbxnothere").unwrap_err();
    assert!(
        ch09_networking::netlink::is_errno(&err, nix::errno::Errno::ENODEV),
        "{err:#}"
    );
    drop((nl, host));
    common::assert_host_has_no_link("mbxr");
}
