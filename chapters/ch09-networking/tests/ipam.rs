//! The allocator hands each container its own address, across threads that
//! share nothing but the lease file; an address comes back when its holder
//! dies (even when its PID is reused); a full subnet says so; and a subnet
//! that overlaps a route of the (test's) host is refused.

mod common;

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Command;

use ch09_networking::ipam::{Holder, Ipam, Subnet, check_overlap};
use ch09_networking::netlink::Netlink;
use ch09_networking::netns;

fn ipam(dir: &tempfile::TempDir, subnet: &str) -> Ipam {
    Ipam::new(dir.path(), subnet.parse().unwrap()).unwrap()
}

#[test]
fn addresses_are_unique_and_the_lowest_free_one_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = ipam(&dir, "172.29.0.0/16");
    let me = Holder::current().unwrap();
    let a = ipam.allocate("c1", me).unwrap();
    let b = ipam.allocate("c2", me).unwrap();
    assert_eq!(
        (a, b),
        (Ipv4Addr::new(172, 29, 0, 2), Ipv4Addr::new(172, 29, 0, 3))
    );
    ipam.release(a).unwrap();
    ipam.release(a).unwrap(); // twice is fine: cleanup may run twice
    assert_eq!(ipam.allocate("c3", me).unwrap(), a);
    // The file says who holds what, for a person reading it.
    let text = std::fs::read_to_string(dir.path().join("leases-172.29.0.0-16.json")).unwrap();
    assert!(text.contains("\"owner\": \"c3\""), "{text}");
    assert!(
        text.contains(&format!("\"pid\": {}", std::process::id())),
        "{text}"
    );
}

#[test]
fn concurrent_allocations_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                // Each thread opens its own allocator, as separate minibox
                // processes would: only the lock file is shared.
                let ipam = Ipam::new(&path, "10.77.0.0/24".parse().unwrap()).unwrap();
                (0..5)
                    .map(|j| {
                        ipam.allocate(&format!("t{i}-{j}"), Holder::current().unwrap())
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<Ipv4Addr> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "40 allocations, 40 different addresses");
    assert_eq!(ipam(&dir, "10.77.0.0/24").leases().unwrap().len(), 40);
}

#[test]
fn a_dead_holders_lease_is_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = ipam(&dir, "172.29.0.0/16");
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let holder = Holder::of(child.id() as i32).unwrap().unwrap();
    let first = ipam.allocate("dies", holder).unwrap();
    let second = ipam.allocate("lives", Holder::current().unwrap()).unwrap();
    assert_ne!(first, second, "the holder is alive: its address is taken");
    // SIGKILL, as when minibox is killed: nobody releases the lease.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!holder.is_alive());
    let next = ipam.allocate("next", Holder::current().unwrap()).unwrap();
    assert_eq!(
        next, first,
        "the next run reclaims the dead holder's address"
    );
    let owners: Vec<String> = ipam
        .leases()
        .unwrap()
        .into_iter()
        .map(|l| l.owner)
        .collect();
    assert_eq!(owners, ["lives", "next"]);
}

#[test]
fn a_reused_pid_does_not_keep_a_lease() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = ipam(&dir, "172.29.0.0/16");
    // Our own PID with another start time: what a lease looks like after the
    // PID was recycled for an unrelated process.
    let me = Holder::current().unwrap();
    let impostor = Holder {
        pid: me.pid,
        start_time: me.start_time + 1,
    };
    assert!(!impostor.is_alive());
    let a = ipam.allocate("old", impostor).unwrap();
    assert_eq!(ipam.allocate("new", me).unwrap(), a);
}

#[test]
fn a_full_subnet_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // A /30 has four addresses: network, gateway, one container, broadcast.
    let ipam = ipam(&dir, "10.9.0.0/30");
    let me = Holder::current().unwrap();
    assert_eq!(
        ipam.allocate("only", me).unwrap(),
        Ipv4Addr::new(10, 9, 0, 2)
    );
    let err = ipam.allocate("one too many", me).unwrap_err();
    assert_eq!(format!("{err:#}"), "no free address left in 10.9.0.0/30");
}

#[test]
fn a_subnet_overlapping_a_host_route_is_refused() {
    if !common::require_root("ipam: overlap with the host's routes") {
        return;
    }
    // The test's "host" has a LAN on 10.20.0.0/16 (a bridge with an address,
    // which makes the connected route) and minibox's bridge on 172.29.0.0/16.
    let host = netns::create().unwrap();
    let mut nl = Netlink::open_in(host.as_fd()).unwrap();
    nl.create_bridge("mbxlan0").unwrap();
    nl.add_address("mbxlan0", Ipv4Addr::new(10, 20, 0, 1), 16)
        .unwrap();
    nl.set_up("mbxlan0").unwrap();
    nl.create_bridge("mbxbr0").unwrap();
    nl.add_address("mbxbr0", Ipv4Addr::new(172, 29, 0, 1), 16)
        .unwrap();
    nl.set_up("mbxbr0").unwrap();
    let routes = nl.ipv4_routes().unwrap();
    let own = nl.link_index("mbxbr0").unwrap();

    let clash: Subnet = "10.20.128.0/17".parse().unwrap();
    let err = check_overlap(&clash, &routes, own).unwrap_err();
    assert_eq!(
        err.to_string(),
        "subnet 10.20.128.0/17 overlaps the host's route to 10.20.0.0/16"
    );
    // The bridge's own route is not a clash; the default subnet is free.
    check_overlap(&"172.29.0.0/16".parse().unwrap(), &routes, own).unwrap();
    // Without knowing the bridge is ours, it is.
    assert!(check_overlap(&"172.29.0.0/16".parse().unwrap(), &routes, None).is_err());
    drop(nl);
    drop(host);
    common::assert_host_has_no_link("mbx");
}
