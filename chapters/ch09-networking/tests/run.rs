//! Chapter 9 for real: each test makes a network namespace to play the host
//! and runs minibox inside it, so the bridge, the veths, the addresses and
//! the NAT rules exist only there. Traffic goes to addresses the test created
//! in namespaces it created, never anywhere else. Every test needs root.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsFd;
use std::time::Duration;

use ch09_networking::netlink::Netlink;
use ch09_networking::netns;
use common::Host;
use harness::registry::Registry;

fn registry() -> Registry {
    let registry = Registry::start();
    registry.push_fixtures().expect("fixtures");
    registry
}

/// `--network none`: a namespace with only `lo`, up; nothing reaches out.
/// `--network bridge` (the default): `eth0` with the first address of the
/// subnet, a default route through the gateway, and the gateway answers.
#[test]
fn none_has_only_lo_and_bridge_has_eth0_a_route_and_a_gateway() {
    if !harness::require_root("ch09 none and bridge") {
        return;
    }
    let registry = registry();
    let host = Host::new("modes", &registry, &["busybox"]);
    let none = host
        .minibox(&[
            "run",
            "--quiet",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .expect(0);
    let names: Vec<&str> = none
        .stdout
        .lines()
        .map(|l| l.split(": ").nth(1).unwrap())
        .collect();
    assert_eq!(names, ["lo"], "{}", none.stdout);
    assert!(none.stdout.contains("UP"), "lo is up: {}", none.stdout);
    assert!(
        host.links().iter().all(|l| l != "minibox0"),
        "none made no bridge"
    );

    let script = "ip -o -4 addr show eth0; ip route; cat /sys/class/net/eth0/address; ping -c 1 -W 5 172.29.0.1 >/dev/null && echo gateway answers";
    let bridge = host
        .minibox(&["run", "--quiet", "busybox", "sh", "-c", script])
        .expect(0);
    let lines: Vec<&str> = bridge.stdout.lines().collect();
    assert!(lines[0].contains("inet 172.29.0.2/16"), "{}", bridge.stdout);
    assert!(
        bridge.stdout.contains("default via 172.29.0.1 dev eth0"),
        "{}",
        bridge.stdout
    );
    assert_eq!(lines.last(), Some(&"gateway answers"), "{}", bridge.stdout);
    // The MAC address is made from the IP address, as Docker does: a lease
    // that passes to a new container keeps the host's ARP cache right.
    assert!(
        bridge.stdout.contains("\n02:42:ac:1d:00:02\n"),
        "{}",
        bridge.stdout
    );
    // The bridge stays for the next container, with the gateway's address.
    let bridge_addr = host.run(&["ip", "-o", "-4", "addr", "show", "minibox0"]);
    assert!(bridge_addr.contains("inet 172.29.0.1/16"), "{bridge_addr}");
    host.assert_clean();
}

/// `--network host`: no namespace of its own; the host's links (here, the
/// test's namespace's) and the host's name.
#[test]
fn host_mode_shares_the_hosts_links() {
    if !harness::require_root("ch09 host") {
        return;
    }
    let registry = registry();
    let host = Host::new("host-mode", &registry, &["busybox"]);
    let mut nl = Netlink::open_in(host.ns.as_fd()).unwrap();
    nl.create_bridge("mbxhostonly").unwrap();
    let run = host
        .minibox(&[
            "run",
            "--quiet",
            "--network",
            "host",
            "busybox",
            "sh",
            "-c",
            "ip -o link; hostname",
        ])
        .expect(0);
    assert!(run.stdout.contains("mbxhostonly"), "{}", run.stdout);
    let own = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        run.stdout.lines().last(),
        Some(own.trim()),
        "the host's name"
    );
    // The host's resolver file as it is: with the host's lo, even a
    // loopback name server works, where the bridge drops it. minibox runs in
    // a private mount namespace whose /etc/resolv.conf names only one.
    let stub = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(stub.path(), "nameserver 127.0.0.53\noptions edns0\n").unwrap();
    let with_stub = |network: &str| {
        let args = [
            "run",
            "--quiet",
            "--network",
            network,
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ];
        let mut command = host.command(&args);
        over_resolv_conf(&mut command, stub.path());
        harness::process::wait(command.spawn().unwrap(), &args)
            .expect(0)
            .stdout
    };
    assert_eq!(with_stub("host"), "nameserver 127.0.0.53\noptions edns0\n");
    let bridged = with_stub("bridge");
    assert!(
        !bridged.contains("127.0.0.53"),
        "the bridge drops a loopback server: {bridged}"
    );
    assert!(
        bridged.contains("nameserver 8.8.8.8"),
        "Docker's fallback: {bridged}"
    );
    host.assert_clean();
}

/// Two containers at once get different addresses and talk to each other.
#[test]
fn two_containers_get_different_addresses_and_reach_each_other() {
    if !harness::require_root("ch09 two containers") {
        return;
    }
    let registry = registry();
    let host = Host::new("two", &registry, &["busybox"]);
    let server = "ip -o -4 addr show eth0; echo hello-from-a | nc -l -p 7000";
    let mut a = host
        .command(&["run", "--quiet", "busybox", "sh", "-c", server])
        .spawn()
        .unwrap();
    let mut out = BufReader::new(a.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let a_addr = address_in(&first);
    assert_eq!(a_addr, Ipv4Addr::new(172, 29, 0, 2), "{first}");
    // nc -l is listening once its address is known only if we give it a
    // moment; retry the client until it connects.
    let client = format!(
        "ip -o -4 addr show eth0 >&2; for i in $(seq 50); do nc {a_addr} 7000 && exit 0; sleep 0.1; done; exit 1"
    );
    let b = host
        .minibox(&["run", "--quiet", "busybox", "sh", "-c", &client])
        .expect(0);
    assert_eq!(b.stdout, "hello-from-a\n");
    assert_eq!(
        address_in(&b.stderr),
        Ipv4Addr::new(172, 29, 0, 3),
        "{}",
        b.stderr
    );
    let a = harness::process::wait_with_deadline(a, "container a", Duration::from_secs(30));
    assert!(a.status.success(), "{a:?}");
    drop(out);
    host.assert_clean();
}

/// The address in an `ip -o -4 addr` line.
fn address_in(line: &str) -> Ipv4Addr {
    let word = line
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .expect(line);
    word.split('/').next().unwrap().parse().unwrap()
}

/// NAT: a namespace made by the test plays "the internet" (a TCP server on an
/// address routed only between the test's namespaces). The container reaches
/// it, and the server sees the host's address, not the container's.
#[test]
fn outbound_traffic_leaves_with_the_hosts_address() {
    if !harness::require_root("ch09 nat") {
        return;
    }
    let registry = registry();
    let host = Host::new("nat", &registry, &["busybox"]);
    let internet = netns::create().unwrap();
    let mut nl = Netlink::open_in(host.ns.as_fd()).unwrap();
    nl.create_veth_into("mbxup", "eth0", internet.as_fd())
        .unwrap();
    nl.add_address("mbxup", Ipv4Addr::new(198, 51, 100, 1), 24)
        .unwrap();
    nl.set_up("mbxup").unwrap();
    let mut inl = Netlink::open_in(internet.as_fd()).unwrap();
    inl.add_address("eth0", Ipv4Addr::new(198, 51, 100, 2), 24)
        .unwrap();
    inl.set_up("eth0").unwrap();
    inl.set_up("lo").unwrap();
    // The server answers each client with the source address it saw.
    let listener = netns::run_in(internet.as_fd(), || {
        Ok(TcpListener::bind("198.51.100.2:9000")?)
    })
    .unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        writeln!(conn, "you are {}", peer.ip()).unwrap();
    });
    let run = host
        .minibox(&["run", "--quiet", "busybox", "nc", "198.51.100.2", "9000"])
        .expect(0);
    server.join().unwrap();
    assert_eq!(
        run.stdout, "you are 198.51.100.1\n",
        "masqueraded to the host's address"
    );
    let rules = host.run(&["iptables", "-t", "nat", "-S", "MINIBOX-POSTROUTING"]);
    assert!(
        rules.contains("-s 172.29.0.0/16 ! -o minibox0 -j MASQUERADE"),
        "{rules}"
    );
    assert_eq!(host.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]), "1\n");
    // `network prune` takes the bridge and the chains away.
    let prune = host.minibox(&["network", "prune"]).expect(0);
    assert!(prune.stdout.contains("minibox0"), "{}", prune.stdout);
    assert!(!host.links().contains(&"minibox0".to_string()));
    let nat = host.run(&["iptables", "-t", "nat", "-S"]);
    assert!(!nat.contains("MINIBOX"), "{nat}");
    host.assert_clean();
}

/// Docker's bad inputs: one line each, exit 125, nothing made.
#[test]
fn bad_network_input_fails_with_one_line_and_leaves_nothing() {
    if !harness::require_root("ch09 bad input") {
        return;
    }
    let registry = registry();
    let host = Host::new("bad", &registry, &["busybox"]);
    let taken = netns::run_in(host.ns.as_fd(), || Ok(TcpListener::bind("0.0.0.0:18080")?)).unwrap();
    let mut nl = Netlink::open_in(host.ns.as_fd()).unwrap();
    nl.create_bridge("mbxlan").unwrap();
    nl.add_address("mbxlan", Ipv4Addr::new(10, 77, 3, 1), 24)
        .unwrap();
    nl.set_up("mbxlan").unwrap();
    // (flags, environment, the line minibox must print)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (&["-p", "80:abc"], &[], "invalid containerPort: abc"),
        (
            &["-p", "18080:80"],
            &[],
            "Bind for 0.0.0.0:18080 failed: port is already allocated",
        ),
        (&["--network", "nope"], &[], "network nope not found"),
        (
            &[],
            &[("MINIBOX_BRIDGE_SUBNET", "10.77.0.0/16")],
            "subnet 10.77.0.0/16 overlaps the host's route to 10.77.3.0/24",
        ),
        (
            &["--dns", "8.8"],
            &[],
            "invalid argument \"8.8\" for \"--dns\" flag: 8.8 is not an ip address",
        ),
        // No iptables to set up NAT with: the new bridge is removed again.
        (
            &[],
            &[("PATH", "/nonexistent")],
            "run iptables (Debian package iptables)",
        ),
    ];
    for (flags, vars, message) in cases {
        let mut args = vec!["run", "--quiet"];
        args.extend(flags);
        args.extend(["busybox", "true"]);
        let mut command = host.command(&args);
        command.envs(vars.iter().copied());
        let run = harness::process::wait(command.spawn().unwrap(), &args);
        let run = run.expect(125);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        let links = host.links();
        assert_eq!(links, ["lo", "mbxlan"], "{args:?} left links");
        host.assert_clean();
    }
    drop(taken);
}

/// SIGKILL of minibox and its container: the veth goes with the namespace,
/// and the next run takes the dead container's address back.
#[test]
fn a_killed_containers_address_is_reclaimed_by_the_next_run() {
    if !harness::require_root("ch09 lease reclaim") {
        return;
    }
    let registry = registry();
    let host = Host::new("reclaim", &registry, &["busybox"]);
    let mut minibox = host
        .command(&["run", "--quiet", "busybox", "sleep", "600"])
        .spawn()
        .unwrap();
    let init = harness::process::wait_for_init(&mut minibox, "sleep");
    let leases = host.leases();
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(
        leases[0].holder.pid, init,
        "the lease is held by the container's PID 1"
    );
    // minibox dies first, then its container, as a machine's OOM killer or
    // an impatient user might do it: no cleanup code runs.
    minibox.kill().unwrap();
    minibox.wait().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), nix::sys::signal::SIGKILL).unwrap();
    wait_until_gone(init);
    // The kernel takes the veth pair away with the container's namespace.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while host.links().iter().any(|l| l.starts_with("veth")) {
        assert!(
            std::time::Instant::now() < deadline,
            "veth left: {:?}",
            host.links()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        host.leases().len(),
        1,
        "the dead lease is still in the file"
    );
    let next = host
        .minibox(&[
            "run", "--quiet", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
        ])
        .expect(0);
    assert_eq!(
        address_in(&next.stdout),
        Ipv4Addr::new(172, 29, 0, 2),
        "reclaimed"
    );
    // What only chapter 10 cleans up after a killed minibox: its container's
    // directory and cgroups. The test removes them itself.
    remove_killed_container(&host);
    host.assert_clean();
}

/// Waits until process `pid` has been reaped (by init: it is not our child).
fn wait_until_gone(pid: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "PID {pid} still there"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes what a SIGKILLed minibox left: the container's directory (its
/// overlay was mounted in the container's own mount namespace, gone with it)
/// and its empty cgroups below the test's parent.
fn remove_killed_container(host: &Host) {
    let containers = host.env.root().join("containers");
    for entry in std::fs::read_dir(&containers).unwrap().flatten() {
        std::fs::remove_dir_all(entry.path()).unwrap();
    }
    for hierarchy in harness::cgroups::hierarchies() {
        let parent = hierarchy.parent_dir(host.env.cgroup_parent());
        for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                std::fs::remove_dir(entry.path()).unwrap();
            }
        }
        let _ = std::fs::remove_dir(&parent); // minibox removes it when it empties it
    }
}

/// The seed's story: `run -p 16379:6379 redis` in the background; on the
/// host side the real `redis-cli` gets PONG and a SET/GET round trip through
/// the published port; SIGTERM to minibox ends redis cleanly and frees the
/// port.
#[test]
fn redis_answers_through_a_published_port() {
    if !harness::require_root("ch09 redis") {
        return;
    }
    let registry = registry();
    let host = Host::new("redis", &registry, &["redis"]);
    let mut minibox = host
        .command(&["run", "--quiet", "-p", "16379:6379", "redis"])
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| -> std::process::Output {
        let mut command = netns::command_in(host.ns.as_fd(), "redis-cli").unwrap();
        command.args(["-p", "16379"]).args(args).output().unwrap()
    };
    // The proxy listens from the start; redis answers once it has started.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = cli(&["ping"]);
        if String::from_utf8_lossy(&out.stdout) == "PONG\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && minibox.try_wait().unwrap().is_none(),
            "redis never answered PONG: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        String::from_utf8_lossy(&cli(&["set", "greeting", "hello"]).stdout),
        "OK\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&cli(&["get", "greeting"]).stdout),
        "hello\n"
    );
    // The client the container saw was the proxy, on the gateway's address.
    let clients = String::from_utf8_lossy(&cli(&["client", "list"]).stdout).into_owned();
    assert!(clients.contains("addr=172.29.0.1:"), "{clients}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(minibox.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let run = harness::process::wait(minibox, &["run", "redis"]);
    assert_eq!(run.status, 0, "redis ends cleanly on SIGTERM: {run:?}");
    let freed = netns::run_in(host.ns.as_fd(), || Ok(TcpListener::bind("0.0.0.0:16379")?));
    assert!(freed.is_ok(), "port 16379 still taken: {freed:?}");
    drop(freed);
    host.assert_clean();
}

/// Makes `command` run in a private mount namespace of its own where `file`
/// is bind-mounted over /etc/resolv.conf: a host resolver file for one run,
/// without touching the machine's.
fn over_resolv_conf(command: &mut std::process::Command, file: &std::path::Path) {
    use std::os::unix::process::CommandExt;
    let source = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: the closure runs in the child between fork and exec and calls
    // only unshare(2) and mount(2), which are async-signal-safe, on C strings
    // made before the fork.
    unsafe {
        command.pre_exec(move || {
            let check = |r: libc::c_int| {
                if r == -1 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                source.as_ptr(),
                c"/etc/resolv.conf".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))
        });
    }
}
