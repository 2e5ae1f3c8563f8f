//! What chapter 9's tests share: namespaces that play the host and the
//! container, wired by hand, and the checks that a test left nothing behind.

#![allow(dead_code, unused_imports)]

use std::os::fd::BorrowedFd;

use ch09_networking::netlink::Netlink;

pub use harness::{require_root, skip};

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
    let out = ch09_networking::netns::command_in(netns, "ip")
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
    let host = ch09_networking::netns::create().unwrap();
    let ctr = ch09_networking::netns::create().unwrap();
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
    let out = ch09_networking::netns::command_in(netns, args[0])
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

/// The chapter's binary.
pub const MINIBOX: &str = env!("CARGO_BIN_EXE_ch09-networking");

/// A network namespace made by the test to play "the host", with `lo` up,
/// and a store of the test's own: minibox runs inside the namespace, so its
/// bridge, veths, addresses, NAT rules and published ports exist only there,
/// and vanish with it.
pub struct Host {
    /// The namespace playing the host.
    pub ns: std::os::fd::OwnedFd,
    /// The store, the cgroup parent, the registry mirror.
    pub env: harness::env::Env,
}

impl Host {
    /// A host for test `test`, its store filled with `images` pulled (in the
    /// real host's namespace, where the registry listens on 127.0.0.1).
    pub fn new(test: &str, registry: &harness::registry::Registry, images: &[&str]) -> Host {
        use std::os::fd::AsFd;
        let env = harness::env::Env::builder(MINIBOX, "ch09", test)
            .mirror(registry)
            .build();
        for image in images {
            env.minibox(&["pull", "--quiet", image]).expect(0);
        }
        let ns = ch09_networking::netns::create().unwrap();
        Netlink::open_in(ns.as_fd()).unwrap().set_up("lo").unwrap();
        Host { ns, env }
    }

    /// `minibox ARGS` inside the host namespace, not started yet.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        use std::os::fd::AsFd;
        let mut command = self.env.command(args);
        ch09_networking::netns::enter_before_exec(&mut command, self.ns.as_fd()).unwrap();
        command
    }

    /// Runs `minibox ARGS` inside the host namespace to the end.
    pub fn minibox(&self, args: &[&str]) -> harness::process::Run {
        let child = self.command(args).spawn().expect("run minibox");
        harness::process::wait(child, args)
    }

    /// Runs a host program inside the host namespace; returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        use std::os::fd::AsFd;
        run_in_ns(self.ns.as_fd(), args)
    }

    /// The links of the host namespace, sorted by name.
    pub fn links(&self) -> Vec<String> {
        use std::os::fd::AsFd;
        link_names(self.ns.as_fd())
    }

    /// The leases minibox holds (`MINIBOX_ROOT/network`).
    pub fn leases(&self) -> Vec<ch09_networking::ipam::Lease> {
        let subnet = ch09_networking::ipam::DEFAULT_SUBNET.parse().unwrap();
        ch09_networking::ipam::Ipam::new(&self.env.root().join("network"), subnet)
            .unwrap()
            .leases()
            .unwrap()
    }

    /// Asserts what every test ends with: no veth left (only `lo` and the
    /// bridge, which is kept for the next container), no lease, no container
    /// directory, and nothing on the real host.
    pub fn assert_clean(&self) {
        // The kernel removes a container's veth pair with its namespace, in
        // the background, moments after the container's end.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.links().iter().any(|l| l.starts_with("veth"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let links = self.links();
        assert!(
            links
                .iter()
                .all(|l| l == "lo" || l == "minibox0" || l.starts_with("mbx")),
            "links left: {links:?}\n{}",
            {
                use std::os::fd::AsFd;
                ip_o_link(self.ns.as_fd())
            }
        );
        assert_eq!(self.leases(), [], "leases left");
        assert_eq!(
            self.env.leftovers(),
            Vec::<std::path::PathBuf>::new(),
            "temp files left"
        );
        let containers: Vec<_> = std::fs::read_dir(self.env.root().join("containers"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert_eq!(
            containers,
            Vec::<std::path::PathBuf>::new(),
            "containers left"
        );
        assert_host_has_no_link("minibox0");
    }
}
