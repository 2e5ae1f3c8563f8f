//! What chapter 10's end-to-end tests share: a network namespace that plays
//! the host (as chapter 9's tests have), with the registry reachable inside
//! it, a store and a runtime directory of the test's own, and the checks that
//! a test left nothing behind.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ch09_networking::netlink::Netlink;
use ch09_networking::netns;
use harness::registry::Registry;
use serde_json::Value;

/// The chapter's binary.
pub const MINIBOX: &str = env!("CARGO_BIN_EXE_ch10-runtime");

/// The bridge's gateway, in the test's host namespace: an address the test
/// made (minibox made it, in a namespace the test made), for `ping`.
pub const GATEWAY: &str = "172.29.0.1";

/// A registry with the fixture images (busybox, hello-world, redis, ...).
pub fn registry() -> Registry {
    let registry = Registry::start();
    registry.push_fixtures().expect("fixtures");
    registry
}

/// A network namespace made by the test to play "the host", with `lo` up, a
/// store of the test's own (`MINIBOX_ROOT`, and `MINIBOX_RUN` inside it), and
/// the registry reachable at its usual address from inside the namespace.
/// minibox runs inside the namespace, so its bridge, veths, leases and
/// published ports exist only there, and vanish with it.
pub struct Host {
    /// The namespace playing the host.
    pub ns: OwnedFd,
    /// The store, the runtime directory, the cgroup parent, the mirror.
    pub env: harness::env::Env,
    relay: Relay,
}

impl Host {
    /// A host for test `test`, its store filled with `images` pulled first.
    pub fn new(test: &str, registry: &Registry, images: &[&str]) -> Host {
        let env = harness::env::Env::builder(MINIBOX, "ch10", test)
            .mirror(registry)
            .build();
        let ns = netns::create().unwrap();
        Netlink::open_in(ns.as_fd()).unwrap().set_up("lo").unwrap();
        let relay = Relay::start(ns.as_fd(), &registry.host());
        let host = Host { ns, env, relay };
        for image in images {
            host.minibox(&["pull", "--quiet", image]).expect(0);
        }
        host
    }

    /// `minibox ARGS` inside the host namespace, not started yet (stdin
    /// /dev/null, stdout and stderr piped).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = self.env.command(args);
        netns::enter_before_exec(&mut command, self.ns.as_fd()).unwrap();
        command
    }

    /// Runs `minibox ARGS` inside the host namespace to the end.
    pub fn minibox(&self, args: &[&str]) -> harness::process::Run {
        let child = self.command(args).spawn().expect("run minibox");
        harness::process::wait(child, args)
    }

    /// `run -d --quiet ARGS`: the new container's full ID.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--quiet"];
        all.extend(args);
        let run = self.minibox(&all).expect(0);
        assert_eq!(run.stderr, "", "{args:?}");
        let id = run.stdout.trim_end().to_string();
        assert!(is_full_id(&id), "not an ID: {:?}", run.stdout);
        id
    }

    /// How many connections to the registry were made from inside the
    /// namespace so far.
    pub fn registry_connections(&self) -> usize {
        self.relay.connections.load(Ordering::Relaxed)
    }

    /// Runs a host program inside the host namespace; returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = netns::command_in(self.ns.as_fd(), args[0])
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

    /// `docker inspect`'s object for one container.
    pub fn inspect(&self, container: &str) -> Value {
        let run = self.minibox(&["inspect", container]).expect(0);
        let all: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(all.as_array().map(Vec::len), Some(1), "{}", run.stdout);
        all[0].clone()
    }

    /// `ps ARGS` as a table: one map per row, header to value.
    pub fn ps(&self, args: &[&str]) -> Vec<BTreeMap<String, String>> {
        let mut all = vec!["ps"];
        all.extend(args);
        let run = self.minibox(&all).expect(0);
        assert_eq!(run.stderr, "");
        table(&run.stdout)
    }

    /// `ps -a -q --no-trunc`: every container's full ID, newest first.
    pub fn ids(&self) -> Vec<String> {
        let run = self.minibox(&["ps", "-a", "-q", "--no-trunc"]).expect(0);
        run.stdout.lines().map(str::to_string).collect()
    }

    /// The runtime directory (`MINIBOX_RUN`).
    pub fn run_dir(&self) -> PathBuf {
        self.env.run_dir()
    }

    /// Container `id`'s `state.json`, as the monitor and the commands wrote
    /// it.
    pub fn state(&self, id: &str) -> Value {
        let path = self.run_dir().join(id).join("state.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// The links of the host namespace, sorted by name.
    pub fn links(&self) -> Vec<String> {
        let mut names: Vec<String> = Netlink::open_in(self.ns.as_fd())
            .unwrap()
            .links()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        names.sort();
        names
    }

    /// The veths on the host side, sorted.
    pub fn veths(&self) -> Vec<String> {
        let mut veths = self.links();
        veths.retain(|l| l.starts_with("veth"));
        veths
    }

    /// The leases minibox holds (`MINIBOX_ROOT/network`).
    pub fn leases(&self) -> Vec<ch09_networking::ipam::Lease> {
        let subnet = ch09_networking::ipam::DEFAULT_SUBNET.parse().unwrap();
        ch09_networking::ipam::Ipam::new(&self.env.root().join("network"), subnet)
            .unwrap()
            .leases()
            .unwrap()
    }

    /// The cgroup directories of this test's containers that exist: the
    /// cgroup parent in every hierarchy, and what is below it.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        harness::cgroups::leftovers(self.env.cgroup_parent())
    }

    /// Whether a TCP connection to `port` on the host namespace's loopback
    /// can be made.
    pub fn connect(&self, port: u16) -> std::io::Result<TcpStream> {
        netns::run_in(self.ns.as_fd(), move || {
            Ok(TcpStream::connect(("127.0.0.1", port))?)
        })
        .map_err(std::io::Error::other)
    }

    /// Asserts that nothing of any container is left: no veth (only `lo`,
    /// the bridge, and links the test made itself, `mbx...`), no lease, no
    /// record, no runtime state, no mount below the store, no cgroup, no
    /// monitor, no half-made pull, and nothing on the real host.
    pub fn assert_clean(&self) {
        // The kernel removes a container's veth pair with its namespace, in
        // the background, moments after the container's end.
        wait_until("the veths to go", Duration::from_secs(10), || {
            self.veths().is_empty()
        });
        let links = self.links();
        assert!(
            links
                .iter()
                .all(|l| l == "lo" || l == "minibox0" || l.starts_with("mbx")),
            "links left: {links:?}"
        );
        assert_eq!(self.leases(), [], "leases left");
        assert_eq!(
            entries(&self.env.root().join("containers")),
            [] as [PathBuf; 0]
        );
        assert_eq!(
            entries(&self.run_dir()),
            [] as [PathBuf; 0],
            "runtime state left"
        );
        assert_eq!(
            mounts_below(self.env.root()),
            [] as [String; 0],
            "mounts left"
        );
        assert_eq!(self.cgroups(), [] as [PathBuf; 0], "cgroups left");
        // A monitor exits moments after it has told its client the end.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.monitors().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<(i32, Option<String>)> = self
            .monitors()
            .into_iter()
            .map(|pid| (pid, harness::process::comm(pid)))
            .collect();
        assert_eq!(left, [], "processes of this store left");
        assert_eq!(self.env.leftovers(), [] as [PathBuf; 0], "temp files left");
        let host_links: Vec<String> = Netlink::open()
            .unwrap()
            .links()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n == "minibox0")
            .collect();
        assert_eq!(host_links, [] as [String; 0], "a bridge on the real host");
    }

    /// The processes that run with this test's store in their environment:
    /// minibox commands and the containers' monitors (a container's own
    /// process has the image's environment, not ours).
    pub fn monitors(&self) -> Vec<i32> {
        let wanted = format!("MINIBOX_ROOT={}", self.env.root().display());
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if environ
                .split(|b| *b == 0)
                .any(|var| var == wanted.as_bytes())
            {
                found.push(pid);
            }
        }
        found
    }
}

impl Drop for Host {
    /// A test that failed half way leaves containers behind: they are
    /// removed here, so that nothing of the test outlives it (a test that
    /// passed has none left, as its `assert_clean` said). Best effort, and
    /// never a panic: the test may be unwinding from one already.
    fn drop(&mut self) {
        let listed = self.command(&["ps", "-a", "-q", "--no-trunc"]).output();
        let ids: Vec<String> = listed
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let mut rm = vec!["rm", "-f"];
            rm.extend(ids.iter().map(String::as_str));
            let _ = self.command(&rm).output();
        }
        // What `rm` could not reach: processes in this test's cgroups and
        // monitors with this test's store, all started by this test, killed
        // by PID; then the cgroups, deepest first.
        let mut dirs: Vec<PathBuf> = Vec::new();
        for parent in self.cgroups() {
            collect_dirs(&parent, &mut dirs);
        }
        for pid in dirs
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|procs| {
                procs
                    .lines()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .chain(self.monitors())
        {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            for _ in 0..100 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// `dir` and every directory below it.
fn collect_dirs(dir: &Path, into: &mut Vec<PathBuf>) {
    into.push(dir.to_path_buf());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&entry.path(), into);
        }
    }
}

/// The code in a `ps` STATUS of `Exited (N) … ago`; `None` for any other
/// status.
pub fn exit_code(status: &str) -> Option<i32> {
    let (code, rest) = status.strip_prefix("Exited (")?.split_once(") ")?;
    rest.ends_with(" ago").then(|| code.parse().ok())?
}

/// Whether `s` is a full container ID: 64 lowercase hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The entries of `dir` (none if it does not exist), sorted.
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// The mount points at or below `dir` in this process's mount namespace.
pub fn mounts_below(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

/// A table as `ps` prints it, one map per row from header to value. The
/// values are cut where the headers start (tabwriter aligns each column
/// under its header), so an empty PORTS is an empty string.
pub fn table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let header: Vec<char> = header.chars().collect();
    // A column starts where a header word follows at least two spaces.
    let mut starts = vec![0];
    for i in 2..header.len() {
        if header[i] != ' ' && header[i - 1] == ' ' && header[i - 2] == ' ' {
            starts.push(i);
        }
    }
    let cut = |chars: &[char], i: usize| -> String {
        let from = starts[i].min(chars.len());
        let to = starts
            .get(i + 1)
            .map_or(chars.len(), |&e| e.min(chars.len()));
        chars[from..to]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|i| cut(&header, i)).collect();
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), cut(&chars, i)))
                .collect()
        })
        .collect()
}

/// Waits (at most `limit`) until `done`; fails naming `what` otherwise.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "waited {} s for {what}",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (10 s at most) until process `pid` is gone (reaped by whoever is
/// its parent now).
pub fn wait_until_gone(pid: i32) {
    wait_until(
        &format!("PID {pid} to end"),
        Duration::from_secs(10),
        || !Path::new(&format!("/proc/{pid}")).exists(),
    );
}

/// Carries TCP connections made to `address` (`127.0.0.1:PORT`) inside a
/// network namespace to the same address in the test's own namespace, where
/// the registry listens: minibox pulls from inside the namespace as it would
/// on a real host. Nothing else is reachable through it.
struct Relay {
    /// How many connections it has carried.
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(netns: std::os::fd::BorrowedFd<'_>, address: &str) -> Relay {
        let inside = address.to_string();
        let listener = netns::run_in(netns, move || Ok(TcpListener::bind(&inside)?)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = address.to_string();
        let stopping = stop.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let counting = connections.clone();
        let accepting = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        counting.fetch_add(1, Ordering::Relaxed);
                        client.set_nonblocking(false).unwrap();
                        if let Ok(server) = TcpStream::connect(&upstream) {
                            pipe_both_ways(client, server);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("relay accept: {e}"),
                }
            }
        });
        Relay {
            connections,
            stop,
            accepting: Some(accepting),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

/// Copies `a` to `b` and `b` to `a` on two threads, each passing the end of
/// its direction on.
fn pipe_both_ways(a: TcpStream, b: TcpStream) {
    let one = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let mut buffer = [0u8; 64 * 1024];
            loop {
                match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    one(a.try_clone().unwrap(), b.try_clone().unwrap());
    one(b, a);
}
