//! The user-mode network stacks, end to end, each test inside a network
//! namespace it makes to play the host (lo, and an uplink with an address
//! and a default route, which pasta copies), with another machine on the
//! far end of the uplink. A `sleep` in a network namespace of its own plays
//! the container; pasta or slirp4netns connects it. A TCP port published on
//! the host's 127.0.0.1 reaches a server in the container, both ways, and so
//! does a UDP port published on all addresses, from the other machine; the
//! container's tap0 has the stack's address and a default route; a taken
//! port is refused in Docker's words with nothing left running; and a stack
//! ends when it is stopped, and when its monitor dies.
//!
//! UDP is tested from the other machine because, with the options minibox
//! gives them, neither stack here always answers a UDP client on the host's
//! own loopback (see the notes in `slirp.rs` and `pasta.rs`).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ch09_networking::netlink::Netlink;
use ch09_networking::netns;
use ch13_rootless::usernet::{Forward, Stack, UserNet};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// The uplink of the namespace playing the host, its address, and its
/// gateway (an address on no interface: nothing is ever sent to it).
const UPLINK: &str = "uplink";
const UPLINK_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const UPLINK_GW: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The other machine's address, on the far end of the uplink.
const REMOTE_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// What the container should see with each stack.
struct Expected {
    /// Its address on tap0 (always a /24 here).
    address: Ipv4Addr,
    /// Its default gateway.
    gateway: Ipv4Addr,
    /// Its nameserver.
    nameserver: IpAddr,
    /// Where a TCP connection from the host's 127.0.0.1 seems to come from.
    peer: IpAddr,
    /// The start of [`UserNet::summary`].
    summary: &'static str,
}

fn expected(stack: Stack) -> Expected {
    match stack {
        // NAT: the container on 10.0.2.0/24, the host behind 10.0.2.2.
        Stack::Slirp4netns => Expected {
            address: Ipv4Addr::new(10, 0, 2, 100),
            gateway: Ipv4Addr::new(10, 0, 2, 2),
            nameserver: IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3)),
            peer: IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)),
            summary: "tap0 10.0.2.100/24 via slirp4netns",
        },
        // The host's own address and gateway, copied; loopback spliced.
        Stack::Pasta => Expected {
            address: UPLINK_ADDR,
            gateway: UPLINK_GW,
            nameserver: IpAddr::V4(Ipv4Addr::new(169, 254, 1, 1)),
            peer: LOCALHOST,
            summary: "tap0 192.0.2.10 (the host's) via pasta",
        },
    }
}

fn tcp(host_port: u16, container_port: u16) -> Forward {
    Forward {
        udp: false,
        host_ip: LOCALHOST,
        host_port,
        container_port,
    }
}

fn udp(host_port: u16, container_port: u16) -> Forward {
    Forward {
        udp: true,
        host_ip: ANY,
        host_port,
        container_port,
    }
}

/// The stack's program, or `None` after a skip (no root, not installed).
fn program(stack: Stack, test: &str) -> Option<PathBuf> {
    if !harness::require_root(test) {
        return None;
    }
    let found = stack.on_path();
    let reason = format!("{stack} is not installed");
    harness::require(found.is_some(), test, &reason)
        .then_some(found)
        .flatten()
}

/// The namespace playing the host, seen from inside it.
struct Host {
    /// Its `/proc/PID/ns/net` link, `net:[4026532243]`.
    id: PathBuf,
    /// The other machine's namespace.
    remote: OwnedFd,
}

impl Host {
    /// Every process in this namespace (threads aside): a stack running for
    /// the test, or left behind. The test process itself runs elsewhere.
    fn processes(&self) -> Vec<i32> {
        let entries = std::fs::read_dir("/proc").unwrap();
        let pids = entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok());
        pids.filter(|pid: &i32| {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|id| id == self.id)
        })
        .collect()
    }
}

/// Runs `body` on a thread inside a new network namespace playing the host:
/// lo up, and a veth `uplink` with 192.0.2.10/24 and a default route via
/// 192.0.2.1, as a host has; the veth's other end is `eth0` of another
/// machine, 192.0.2.20/24. Everything `body` binds, and every process it
/// starts, is in the host's namespace.
fn as_host(body: impl FnOnce(Host) + Send + 'static) {
    let host = netns::create().unwrap();
    let remote = netns::create().unwrap();
    let mut link = Netlink::open_in(host.as_fd()).unwrap();
    link.set_up("lo").unwrap();
    link.create_veth_into(UPLINK, "eth0", remote.as_fd())
        .unwrap();
    link.add_address(UPLINK, UPLINK_ADDR, 24).unwrap();
    link.set_up(UPLINK).unwrap();
    link.add_default_route(UPLINK_GW).unwrap();
    let mut far = Netlink::open_in(remote.as_fd()).unwrap();
    far.add_address("eth0", REMOTE_ADDR, 24).unwrap();
    far.set_up("eth0").unwrap();
    netns::run_in(host.as_fd(), move || {
        let id = std::fs::read_link("/proc/thread-self/ns/net")?;
        body(Host { id, remote });
        Ok(())
    })
    .unwrap();
}

/// Whether process `pid` has ended: gone, or a zombie (ended, not yet
/// reaped by whoever inherited it).
fn ended(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // `PID (comm) STATE ...`: the state follows the last parenthesis.
    let state = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.starts_with('Z'));
    state.unwrap_or(true)
}

/// A process in a network namespace of its own (only lo, down): the
/// container. Killed, by PID, when dropped.
struct Container(Child);

impl Container {
    fn start() -> Container {
        let mut sleep = Command::new("sleep");
        sleep.arg("60");
        // SAFETY: between fork and exec, unshare(2) only: async-signal-safe,
        // no allocation.
        unsafe {
            sleep.pre_exec(|| match libc::unshare(libc::CLONE_NEWNET) {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            });
        }
        Container(sleep.spawn().unwrap())
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.id() as i32)
    }

    fn netns(&self) -> OwnedFd {
        netns::of_process(self.pid().as_raw()).unwrap()
    }

    /// `ip -j ARGS` inside the container's namespace, parsed.
    fn ip(&self, args: &[&str]) -> Value {
        let mut ip = netns::command_in(self.netns().as_fd(), "ip").unwrap();
        let out = ip.arg("-j").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A TCP server on the container's port `port`, for one connection:
    /// it reads a line and answers it with where the client seemed to be.
    fn serve_tcp(&self, port: u16) -> JoinHandle<()> {
        let bind = move || Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?);
        let listener = netns::run_in(self.netns().as_fd(), bind).unwrap();
        std::thread::spawn(move || {
            let (conn, peer) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).unwrap();
            let reply = format!("{} from {}\n", line.trim_end(), peer.ip());
            (&conn).write_all(reply.as_bytes()).unwrap();
        })
    }

    /// The same over UDP, for one datagram.
    fn serve_udp(&self, port: u16) -> JoinHandle<()> {
        let bind = move || Ok(UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?);
        let socket = netns::run_in(self.netns().as_fd(), bind).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let (n, peer) = socket.recv_from(&mut buf).unwrap();
            let text = String::from_utf8_lossy(&buf[..n]);
            let reply = format!("{text} from {}", peer.ip());
            socket.send_to(reply.as_bytes(), peer).unwrap();
        })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `line` to the host's 127.0.0.1:`port` and returns the answer.
fn tcp_round_trip(port: u16, line: &str) -> String {
    let conn = TcpStream::connect((LOCALHOST, port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (&conn).write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(&conn).read_line(&mut answer).unwrap();
    answer.trim_end().to_string()
}

/// Sends `text` from the other machine to the host's 192.0.2.10:`port`
/// over UDP and returns the answer.
fn udp_round_trip(host: &Host, port: u16, text: &str) -> String {
    let bind = || Ok(UdpSocket::bind((REMOTE_ADDR, 0))?);
    let socket = netns::run_in(host.remote.as_fd(), bind).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
        .send_to(text.as_bytes(), (UPLINK_ADDR, port))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The container's tap0 (up, with the stack's address), its default route
/// and its lo (up), as `ip` shows them inside.
fn assert_configured(ctr: &Container, want: &Expected) {
    let tap = &ctr.ip(&["addr", "show", "dev", "tap0"])[0];
    let flags = tap["flags"].as_array().unwrap();
    assert!(flags.contains(&Value::from("UP")), "{tap}");
    let inet: Vec<(&str, u64)> = tap["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|info| info["family"] == "inet")
        .map(|info| {
            (
                info["local"].as_str().unwrap(),
                info["prefixlen"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(inet, [(want.address.to_string().as_str(), 24)], "{tap}");
    let routes = ctr.ip(&["route", "show", "default"]);
    assert_eq!(routes[0]["gateway"], want.gateway.to_string(), "{routes}");
    assert_eq!(routes[0]["dev"], "tap0", "{routes}");
    let lo = &ctr.ip(&["link", "show", "lo"])[0];
    assert!(
        lo["flags"].as_array().unwrap().contains(&Value::from("UP")),
        "{lo}"
    );
}

/// A stack publishes a TCP and a UDP port into the container and
/// configures it; stopped, it is gone and its ports are free.
fn publishes_and_configures(stack: Stack) {
    let test = format!("usernet: {stack} publishes ports and configures the container");
    let Some(program) = program(stack, &test) else {
        return;
    };
    as_host(move |host| {
        let ctr = Container::start();
        let servers = [ctr.serve_tcp(8080), ctr.serve_udp(5353)];
        let forwards = [tcp(18080, 8080), udp(15353, 5353)];
        let started = Instant::now();
        let net = UserNet::start(stack, &program, ctr.pid(), &forwards).unwrap();
        let start_time = started.elapsed();

        let want = expected(stack);
        assert_eq!(net.address(), want.address);
        assert_eq!(net.nameservers(), [want.nameserver]);
        assert_eq!(
            tcp_round_trip(18080, "ping"),
            format!("ping from {}", want.peer)
        );
        // Both stacks show the container a remote client as it is.
        let reply = udp_round_trip(&host, 15353, "dig");
        assert_eq!(reply, format!("dig from {REMOTE_ADDR}"));
        for server in servers {
            server.join().unwrap();
        }
        assert_configured(&ctr, &want);
        let ports = "8080/tcp from 127.0.0.1:18080, 5353/udp from 0.0.0.0:15353";
        assert_eq!(net.summary(), format!("{}, {ports}", want.summary));

        // The stack is the one process in the host's namespace, until stop.
        let pid = net.pid().as_raw();
        assert_eq!(host.processes(), [pid]);
        let stopping = Instant::now();
        net.stop().unwrap();
        eprintln!(
            "{stack}: ready in {start_time:?}, stopped in {:?}",
            stopping.elapsed()
        );
        assert_eq!(
            host.processes(),
            [0; 0],
            "nothing left in the host's namespace"
        );
        assert!(ended(pid), "{stack} {pid} has ended");
        TcpListener::bind((LOCALHOST, 18080)).expect("the TCP port is free again");
        UdpSocket::bind((ANY, 15353)).expect("the UDP port is free again");
    });
}

#[test]
fn pasta_publishes_ports_and_configures_the_container() {
    publishes_and_configures(Stack::Pasta);
}

#[test]
fn slirp4netns_publishes_ports_and_configures_the_container() {
    publishes_and_configures(Stack::Slirp4netns);
}

/// A host port already taken fails the start in Docker's words, naming the
/// port, and no stack is left running, nor the port published before it.
fn refuses_a_taken_port(stack: Stack) {
    let test = format!("usernet: {stack} refuses a taken port");
    let Some(program) = program(stack, &test) else {
        return;
    };
    as_host(move |host| {
        let ctr = Container::start();
        let _taken = TcpListener::bind((LOCALHOST, 18080)).unwrap();
        let forwards = [tcp(18081, 8081), tcp(18080, 8080)];
        let err = UserNet::start(stack, &program, ctr.pid(), &forwards).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "Bind for 127.0.0.1:18080 failed: port is already allocated"
        );
        assert_eq!(host.processes(), [0; 0], "no stack left behind");
        TcpListener::bind((LOCALHOST, 18081)).expect("the other port is free");
    });
}

#[test]
fn pasta_refuses_a_taken_port() {
    refuses_a_taken_port(Stack::Pasta);
}

#[test]
fn slirp4netns_refuses_a_taken_port() {
    refuses_a_taken_port(Stack::Slirp4netns);
}

/// The variable that makes [`monitor_that_dies`] run: `STACK PID`.
const MONITOR: &str = "MINIBOX_TEST_USERNET_MONITOR";

/// Not a test: the monitor that dies, in a process of its own, started by
/// [`ends_with_its_monitor`]. It starts the stack for the container it is
/// given, says the stack's PID, and kills itself without stopping it.
#[test]
#[ignore = "a helper, run by the *_ends_with_its_monitor tests"]
fn monitor_that_dies() {
    let Ok(spec) = std::env::var(MONITOR) else {
        return;
    };
    let (name, pid) = spec.split_once(' ').unwrap();
    let stack = Stack::ALL.into_iter().find(|s| s.name() == name).unwrap();
    let pid = Pid::from_raw(pid.parse().unwrap());
    let program = stack.on_path().unwrap();
    let net = UserNet::start(stack, &program, pid, &[tcp(18080, 8080)]).unwrap();
    println!("stack {}", net.pid());
    std::io::stdout().flush().unwrap();
    nix::sys::signal::raise(Signal::SIGKILL).unwrap();
}

/// A monitor killed without a word takes its stack along: slirp4netns sees
/// its exit pipe close, pasta gets its parent-death signal.
fn ends_with_its_monitor(stack: Stack) {
    let test = format!("usernet: {stack} ends with its monitor");
    let Some(_) = program(stack, &test) else {
        return;
    };
    as_host(move |host| {
        let ctr = Container::start();
        let monitor = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "monitor_that_dies", "--ignored", "--nocapture"])
            .env(MONITOR, format!("{stack} {}", ctr.pid()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let monitor_pid = monitor.id();
        let out = monitor.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
        let line = stdout.lines().find_map(|line| line.strip_prefix("stack "));
        let pid: i32 = line
            .expect("the monitor said the stack's PID")
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ended(pid) || !host.processes().is_empty() {
            if Instant::now() > deadline {
                // The test started it: the test ends it, by its PID.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                panic!("{stack} {pid} outlived its monitor");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        TcpListener::bind((LOCALHOST, 18080)).expect("its port is free");
        // Nor is anything left on disk: the stack's directory went as soon
        // as it had started.
        let prefix = format!("minibox-usernet-{monitor_pid}-");
        let left = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.starts_with(&prefix).then_some(name)
            });
        assert_eq!(left.collect::<Vec<_>>(), [""; 0], "left by the monitor");
    });
}

#[test]
fn pasta_ends_with_its_monitor() {
    ends_with_its_monitor(Stack::Pasta);
}

#[test]
fn slirp4netns_ends_with_its_monitor() {
    ends_with_its_monitor(Stack::Slirp4netns);
}

/// Gives the calling thread a mount namespace of its own in which
/// `/etc/resolv.conf` says `text`: the stacks read the host's resolvers
/// there, and what this thread starts sees this one.
fn resolv_conf(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    unshare(CloneFlags::CLONE_NEWNS).unwrap();
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).unwrap();
    mount(
        Some(file.path()),
        "/etc/resolv.conf",
        none,
        MsFlags::MS_BIND,
        none,
    )
    .unwrap();
    file
}

/// The nameserver a stack gives the container answers: a query sent there
/// reaches the host's resolver, here one on the host's 127.0.0.1 (as
/// systemd-resolved's 127.0.0.53 is), and its answer comes back.
fn forwards_dns(stack: Stack) {
    let test = format!("usernet: {stack} forwards DNS to the host's resolver");
    let Some(program) = program(stack, &test) else {
        return;
    };
    as_host(move |_host| {
        let _resolv_conf = resolv_conf("nameserver 127.0.0.1\n");
        let resolver = UdpSocket::bind((LOCALHOST, 53)).unwrap();
        let ctr = Container::start();
        let net = UserNet::start(stack, &program, ctr.pid(), &[]).unwrap();
        let nameserver = net.nameservers()[0];
        let ask = move || {
            let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            socket.set_read_timeout(Some(Duration::from_secs(5)))?;
            socket.send_to(b"query", (nameserver, 53))?;
            let mut buf = [0u8; 16];
            let (n, from) = socket.recv_from(&mut buf)?;
            Ok((buf[..n].to_vec(), from))
        };
        let asking = std::thread::spawn({
            let netns = ctr.netns();
            move || netns::run_in(netns.as_fd(), ask).unwrap()
        });
        resolver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, client) = resolver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"query");
        resolver.send_to(b"answer", client).unwrap();
        let (answer, from) = asking.join().unwrap();
        assert_eq!(answer, b"answer");
        assert_eq!(
            from.ip(),
            nameserver,
            "the answer comes from the nameserver"
        );
        net.stop().unwrap();
    });
}

#[test]
fn pasta_forwards_dns_to_the_hosts_resolver() {
    forwards_dns(Stack::Pasta);
}

#[test]
fn slirp4netns_forwards_dns_to_the_hosts_resolver() {
    forwards_dns(Stack::Slirp4netns);
}

/// A stack that is not where it was said to be: one line, naming it.
#[test]
fn a_missing_stack_is_one_line() {
    for stack in Stack::ALL {
        let program = PathBuf::from(format!("/nonexistent/{stack}"));
        let err = UserNet::start(stack, &program, Pid::this(), &[]).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!("start /nonexistent/{stack}: No such file or directory (os error 2)")
        );
    }
}
