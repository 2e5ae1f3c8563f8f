//! Checkers for chapter 9's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch09` (or `cargo xtask exercise ch09 fixed-ip`).
//! The book's chapter 9 page describes each exercise; reference solutions are in
//! `book/exercises/ch09-networking/`.
//!
//! Every checker starts the real registry, pushes the images it needs, and pulls
//! them in the real network namespace (the registry listens on the real
//! 127.0.0.1), into the harness's test environment (`harness::env::Env`: a store
//! of its own, no credentials, a cgroup parent in which no cgroup may be left).
//! Then it makes a network namespace to play "the host" and runs the real binary
//! inside it, as the chapter's tests do: the bridge, the veths, the addresses,
//! the NAT rules and the published ports exist only there, and vanish with it.
//! Traffic goes to 127.0.0.1 and to addresses inside that namespace, nowhere
//! else. The helpers are written here, not taken from `tests/common`, so that
//! the chapter's tests can change without breaking the exercises.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Output};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use ch09_networking::ipam::{DEFAULT_SUBNET, Ipam, Lease};
use ch09_networking::netlink::Netlink;
use ch09_networking::netns;
use harness::env::Env;
use harness::images;
use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch09-networking");

/// The image `minibox/exposed`'s own command: a server that greets the first
/// client on port 8080, then ends (and with it, the container).
const GREETER: &str = "echo hello | nc -l -p 8080";

/// A network namespace that plays the host, with `lo` up, and the store and
/// registry of one checker.
struct Host {
    /// The namespace playing the host; minibox runs inside it.
    ns: OwnedFd,
    /// The store, the credentials (none), the cgroup parent.
    env: Env,
    /// The fixture registry, Docker Hub's mirror for this checker.
    registry: Registry,
}

impl Host {
    /// A host for exercise `exercise`, with an empty store and registry.
    fn new(exercise: &str) -> Host {
        let registry = Registry::start();
        let env = Env::builder(MINIBOX, "ch09", &format!("exercise-{exercise}"))
            .mirror(&registry)
            .build();
        let ns = netns::create().expect("a network namespace to play the host");
        Netlink::open_in(ns.as_fd())
            .and_then(|mut nl| nl.set_up("lo"))
            .expect("lo up in the host namespace");
        Host { ns, env, registry }
    }

    /// `minibox pull -q IMAGE` in the real namespace, where the registry
    /// listens, which must work.
    fn pull(&self, image: &str) {
        let child = self
            .env
            .command(&["pull", "-q", image])
            .spawn()
            .expect("run minibox");
        let out = harness::process::wait_with_deadline(
            child,
            &format!("minibox pull {image}"),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "expected `minibox pull {image}` to work, but {}",
            harness::transcript::seen(&out)
        );
    }

    /// Starts `minibox ARGS` inside the host namespace.
    fn start(&self, args: &[&str]) -> Running {
        let mut command = self.env.command(args);
        netns::enter_before_exec(&mut command, self.ns.as_fd()).expect("setns before exec");
        Running::new(command.spawn().expect("run minibox"), args)
    }

    /// Runs `minibox ARGS` inside the host namespace to its end (60 s at
    /// most: then its container's PID 1, and minibox, are stopped by PID).
    fn minibox(&self, args: &[&str]) -> Output {
        let mut command = self.env.command(args);
        netns::enter_before_exec(&mut command, self.ns.as_fd()).expect("setns before exec");
        let child = command.spawn().expect("run minibox");
        harness::process::wait_with_deadline(
            child,
            &format!("minibox {}", args.join(" ")),
            Duration::from_secs(60),
        )
    }

    /// The links of the host namespace, sorted by name.
    fn links(&self) -> Vec<String> {
        let mut names: Vec<String> = Netlink::open_in(self.ns.as_fd())
            .and_then(|mut nl| nl.links())
            .expect("list the host namespace's links")
            .into_iter()
            .map(|l| l.name)
            .collect();
        names.sort();
        names
    }

    /// The leases in minibox's lease file, dead holders' included.
    fn leases(&self) -> Vec<Lease> {
        let subnet = DEFAULT_SUBNET.parse().expect("the default subnet");
        Ipam::new(&self.env.root().join("network"), subnet)
            .and_then(|ipam| ipam.leases())
            .expect("read the lease file")
    }

    /// Asserts that `what` left nothing behind: no link but `lo` and the
    /// bridge (kept for the next container), no lease, no container
    /// directory, and no bridge in the real host's namespace.
    fn assert_clean(&self, what: &str) {
        // The kernel removes a container's veth pair with its namespace, in
        // the background, moments after the container's end.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.links().iter().any(|l| l.starts_with("veth"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let links = self.links();
        assert!(
            links.iter().all(|l| l == "lo" || l == "minibox0"),
            "expected nothing left after {what}, but the host's links are {links:?} (a veth \
             left behind?)"
        );
        let leases = self.leases();
        assert!(
            leases.is_empty(),
            "expected no address leased after {what}, but the lease file holds {leases:?}"
        );
        let containers: Vec<_> = std::fs::read_dir(self.env.root().join("containers"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            containers.is_empty(),
            "expected no container directory left after {what}, but there is {containers:?}"
        );
        let real: Vec<String> = Netlink::open()
            .and_then(|mut nl| nl.links())
            .expect("list the real host's links")
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n == "minibox0")
            .collect();
        assert!(
            real.is_empty(),
            "expected minibox to make its bridge in the checker's namespace only, but the real \
             host has {real:?}"
        );
    }
}

/// A minibox running in the background, its stdout and stderr read line by
/// line on threads, so that a checker can wait for a line with a deadline.
/// Dropped while minibox still runs (a checker failed half-way), it stops it:
/// the container's PID 1 first, so minibox still cleans up.
struct Running {
    /// minibox, in the host namespace.
    child: Child,
    /// Its command line, for messages.
    what: String,
    /// When it started, for messages.
    started: Instant,
    /// Each line it prints, as the reader threads read it.
    lines: Receiver<(Stream, String)>,
    /// What it printed so far on stdout, as received from `lines`.
    stdout: String,
    /// What it printed so far on stderr, as received from `lines`.
    stderr: String,
    /// The reader threads, one per pipe; they end when minibox does.
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Which of minibox's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

impl Running {
    fn new(mut child: Child, args: &[&str]) -> Running {
        let (sender, lines) = mpsc::channel();
        let mut readers = Vec::new();
        let out = child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>);
        for (stream, pipe) in [(Stream::Stdout, out), (Stream::Stderr, err)] {
            let (sender, pipe) = (sender.clone(), pipe.expect("piped"));
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    if sender.send((stream, line)).is_err() {
                        return;
                    }
                }
            }));
        }
        Running {
            child,
            what: format!("minibox {}", args.join(" ")),
            started: Instant::now(),
            lines,
            stdout: String::new(),
            stderr: String::new(),
            readers,
        }
    }

    /// Waits (`limit` at most) for a line holding `needle`, on stdout or
    /// stderr; `None` when minibox ended or the time ran out first.
    fn line_with(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (from, line) = self.lines.recv_timeout(left).ok()?;
            self.keep(from, &line);
            if line.contains(needle) {
                return Some(line);
            }
        }
    }

    fn keep(&mut self, stream: Stream, line: &str) {
        let text = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        text.push_str(line);
        text.push('\n');
    }

    /// Waits for minibox's end (30 s at most) and says what it printed, as
    /// `harness::transcript::seen` does; returns its status too.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for minibox") {
                break status;
            }
            if Instant::now() > deadline {
                harness::process::stop(&mut self.child);
                panic!(
                    "expected {} to end, but it was still running after 30 s",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        while let Ok((stream, line)) = self.lines.try_recv() {
            self.keep(stream, &line);
        }
        let seen = harness::transcript::seen_parts(status, &self.stdout, &self.stderr);
        (harness::transcript::exit_status(status), seen)
    }

    /// What it printed so far and whether it ended, for a message.
    fn seen(&mut self) -> String {
        // Both pipes closed (the channel too) means minibox is ending: give
        // it a moment to be gone.
        let closed = loop {
            match self.lines.try_recv() {
                Ok((stream, line)) => self.keep(stream, &line),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut ended = self.child.try_wait().expect("wait for minibox");
        while closed && ended.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            ended = self.child.try_wait().expect("wait for minibox");
        }
        match ended {
            Some(status) => harness::transcript::seen_parts(status, &self.stdout, &self.stderr),
            None => format!(
                "{} s after its start it was still running, and had printed {:?} on stdout and \
                 {:?} on stderr",
                self.started.elapsed().as_secs(),
                self.stdout,
                self.stderr
            ),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            harness::process::stop(&mut self.child);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the checker when clap refused the command line `command`: the
/// exercise's flag is not there yet.
fn assert_parsed(stderr: &str, command: &str) {
    assert!(
        !stderr.contains("unexpected argument") && !stderr.contains("unrecognized subcommand"),
        "expected `{command}` to be accepted, but minibox refused it: {}",
        stderr.trim_end()
    );
}

/// The host port in a `docker port` line, `8080/tcp -> 0.0.0.0:32768`
/// (minibox may put `minibox: ` before it), with the address it names.
fn published_on(line: &str) -> Option<(String, u16)> {
    let (_, address) = line.split_once(" -> ")?;
    let (ip, port) = address.trim().rsplit_once(':')?;
    Some((ip.to_string(), port.parse().ok()?))
}

/// Connects to 127.0.0.1:`port` from inside the host namespace and returns
/// the first line the other end sends. The server in the container may not
/// listen yet when the port is published: the proxy then closes the
/// connection without a word, and this tries again (10 s at most).
fn greeting(host: &Host, port: u16) -> Result<String, String> {
    netns::run_in(host.ns.as_fd(), move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let why = match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                    let mut line = String::new();
                    match BufReader::new(stream).read_line(&mut line) {
                        Ok(n) if n > 0 => return Ok(Ok(line.trim_end().to_string())),
                        Ok(_) => "the connection was closed without a word".to_string(),
                        Err(e) => format!("reading from it failed: {e}"),
                    }
                }
                Err(e) => format!("the connection failed: {e}"),
            };
            if Instant::now() > deadline {
                return Ok(Err(why));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .expect("a thread in the host namespace")
}

/// Exercise `publish-all`: `minibox run -P IMAGE` publishes every port of the
/// image config's `ExposedPorts` on a free host port the kernel chooses, and
/// prints one `docker port` line for each (`8080/tcp -> 0.0.0.0:32768`). A
/// `-p` for the same container port wins over `-P`. Without `-P`, nothing is
/// published.
#[test]
#[ignore = "exercise: cargo xtask exercise ch09 publish-all"]
fn exercise_publish_all() {
    if !harness::require_root("ch09 exercise publish-all") {
        return;
    }
    let host = Host::new("publish-all");
    let busybox = images::busybox().expect("the busybox image");
    let image = images::with_config(
        busybox,
        serde_json::json!({
            "ExposedPorts": {"8080/tcp": {}, "9999/udp": {}},
            "Cmd": ["sh", "-c", GREETER],
        }),
    );
    host.registry.push("minibox/exposed", "latest", &image);
    host.pull("minibox/exposed");
    // Port 8080 of the host is taken: "a free port" cannot mean "the same
    // number as in the container".
    let _taken = netns::run_in(host.ns.as_fd(), || Ok(TcpListener::bind("0.0.0.0:8080")?))
        .expect("hold port 8080 in the host namespace");

    // Without -P: the image's ports are documentation, nothing is published.
    let args = ["run", "--quiet", "minibox/exposed", "true"];
    let out = host.minibox(&args);
    let printed = text(&out.stdout) + &text(&out.stderr);
    assert!(
        out.status.success() && !printed.contains(" -> "),
        "expected `minibox {}` (no -P) to publish nothing and say nothing, but {}",
        args.join(" "),
        harness::transcript::seen(&out)
    );
    host.assert_clean("a run without -P");

    // -P: each exposed port on a free host port, one line each.
    let args = ["run", "--quiet", "-P", "minibox/exposed"];
    let mut run = host.start(&args);
    let line = run.line_with("8080/tcp -> ", Duration::from_secs(20));
    assert_parsed(&run.stderr, "minibox run -P ...");
    let Some(line) = line else {
        panic!(
            "expected `minibox {}` to print `8080/tcp -> 0.0.0.0:PORT` for the image's exposed \
             port 8080/tcp (host port 8080 is taken, so PORT is a free one the kernel chose), \
             but {}",
            args.join(" "),
            run.seen()
        );
    };
    let Some((ip, port)) = published_on(&line) else {
        panic!("expected a line like `8080/tcp -> 0.0.0.0:32768`, but the line is {line:?}");
    };
    assert!(
        ip == "0.0.0.0" && port != 8080 && port != 0,
        "expected 8080/tcp on a free port of every address (`0.0.0.0:PORT`), but the line is \
         {line:?}"
    );
    let udp = run.line_with("9999/udp -> ", Duration::from_secs(5));
    assert!(
        udp.as_deref().and_then(published_on).is_some(),
        "expected `-P` to publish the image's other exposed port too, with a line \
         `9999/udp -> 0.0.0.0:PORT` (UDP, as its key `9999/udp` says), but {}",
        run.seen()
    );
    let said = greeting(&host, port);
    assert!(
        said.as_deref() == Ok("hello"),
        "expected a connection to 127.0.0.1:{port} (the port minibox printed for 8080/tcp) to \
         reach the server in the container, which says hello, but {}",
        said.map_or_else(|why| why, |line| format!("it said {line:?}"))
    );
    let (status, seen) = run.finish();
    assert!(
        status == 0,
        "expected the container to end once it had greeted its client, and minibox with \
         status 0, but {seen}"
    );
    host.assert_clean("a run with -P");

    // -P with -p for the same container port: the explicit -p wins, as in
    // Docker; -P publishes the rest.
    let args = [
        "run",
        "--quiet",
        "-P",
        "-p",
        "18080:8080",
        "minibox/exposed",
    ];
    let mut run = host.start(&args);
    let udp = run.line_with("9999/udp -> ", Duration::from_secs(20));
    assert!(
        udp.is_some(),
        "expected `minibox {}` to print `9999/udp -> 0.0.0.0:PORT` (-P publishes the exposed \
         port no -p names), but {}",
        args.join(" "),
        run.seen()
    );
    let said = greeting(&host, 18080);
    assert!(
        said.as_deref() == Ok("hello"),
        "expected `-p 18080:8080` to hold with -P too (127.0.0.1:18080 reaching the server in \
         the container), but {}",
        said.map_or_else(|why| why, |line| format!("it said {line:?}"))
    );
    let (status, seen) = run.finish();
    assert!(
        status == 0 && !seen.contains("8080/tcp -> "),
        "expected `-p 18080:8080` to win over -P for 8080/tcp, as in Docker (one binding, no \
         second one on a free port, so no `8080/tcp -> ...` line), and status 0, but {seen}"
    );
    host.assert_clean("a run with -P and -p");
}

/// The address in an `ip -o -4 addr show eth0` line, if it has one.
fn address_in(text: &str) -> Option<Ipv4Addr> {
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    word.split('/').next()?.parse().ok()
}

/// Exercise `fixed-ip`: `minibox run --ip ADDRESS` gives the container exactly
/// that address on `eth0`. An address outside the bridge's subnet, the
/// subnet's network address, the gateway, the broadcast address, or one
/// leased to a running container is one line on stderr naming it and status
/// 125, with nothing left behind; so is `--ip` without the bridge.
#[test]
#[ignore = "exercise: cargo xtask exercise ch09 fixed-ip"]
fn exercise_fixed_ip() {
    if !harness::require_root("ch09 exercise fixed-ip") {
        return;
    }
    let host = Host::new("fixed-ip");
    let busybox = images::busybox().expect("the busybox image");
    host.registry.push("library/busybox", "latest", &busybox);
    host.pull("busybox");

    // An address of our choice (the allocator's would be 172.29.0.2).
    let args = [
        "run",
        "--quiet",
        "--ip",
        "172.29.0.77",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ];
    let out = host.minibox(&args);
    assert_parsed(&text(&out.stderr), "minibox run --ip 172.29.0.77 ...");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && address_in(&stdout) == Some(Ipv4Addr::new(172, 29, 0, 77)),
        "expected `--ip 172.29.0.77` to give the container exactly that address on eth0, but {}",
        harness::transcript::seen(&out)
    );
    assert!(
        stdout.contains("inet 172.29.0.77/16"),
        "expected 172.29.0.77 with the bridge's prefix, /16, but `ip -o -4 addr show eth0` \
         printed {stdout:?}"
    );
    host.assert_clean("a run with --ip");

    // Addresses a container cannot have.
    let refused = [
        ("10.1.2.3", "outside the bridge's subnet 172.29.0.0/16"),
        ("172.29.0.0", "the subnet's network address"),
        ("172.29.0.1", "the gateway, on the bridge"),
        ("172.29.255.255", "the subnet's broadcast address"),
    ];
    for (address, why) in refused {
        let args = ["run", "--quiet", "--ip", address, "busybox", "echo", "ran"];
        let out = host.minibox(&args);
        let stderr = text(&out.stderr);
        assert!(
            out.status.code() == Some(125)
                && stderr.lines().count() == 1
                && stderr.contains(address)
                && !text(&out.stdout).contains("ran"),
            "expected `--ip {address}` ({why}) to be refused before the container runs, with \
             status 125 and one line on stderr naming {address}, but {}",
            harness::transcript::seen(&out)
        );
        host.assert_clean(&format!("the refused `--ip {address}`"));
    }

    // Without the bridge there is no subnet to take an address from.
    let args = [
        "run",
        "--quiet",
        "--network",
        "none",
        "--ip",
        "172.29.0.77",
        "busybox",
        "echo",
        "ran",
    ];
    let out = host.minibox(&args);
    assert!(
        out.status.code() == Some(125)
            && text(&out.stderr).lines().count() == 1
            && !text(&out.stdout).contains("ran"),
        "expected `--network none --ip 172.29.0.77` to be refused (no bridge, no subnet), with \
         status 125 and one line on stderr, but {}",
        harness::transcript::seen(&out)
    );
    host.assert_clean("the refused `--network none --ip`");

    // An address in use: a container holds 172.29.0.2 with --ip ...
    let mut holder = host.start(&[
        "run",
        "--quiet",
        "--ip",
        "172.29.0.2",
        "busybox",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; exec sleep 600",
    ]);
    let line = holder.line_with("inet ", Duration::from_secs(20));
    assert!(
        line.as_deref().and_then(address_in) == Some(Ipv4Addr::new(172, 29, 0, 2)),
        "expected a container started with `--ip 172.29.0.2` to get it, but {}",
        holder.seen()
    );
    let (links, leases) = (host.links(), host.leases());
    // ... so a second container cannot have it ...
    let args = [
        "run",
        "--quiet",
        "--ip",
        "172.29.0.2",
        "busybox",
        "echo",
        "ran",
    ];
    let out = host.minibox(&args);
    let stderr = text(&out.stderr);
    assert!(
        out.status.code() == Some(125)
            && stderr.lines().count() == 1
            && stderr.contains("172.29.0.2")
            && !text(&out.stdout).contains("ran"),
        "expected `--ip 172.29.0.2`, while another container has that address, to be refused \
         with status 125 and one line on stderr naming 172.29.0.2, but {}",
        harness::transcript::seen(&out)
    );
    assert!(
        host.links() == links && host.leases() == leases,
        "expected the refused `--ip 172.29.0.2` to leave nothing behind, but the host's links \
         went from {links:?} to {:?} and the leases from {leases:?} to {:?}",
        host.links(),
        host.leases()
    );
    // ... and the allocator does not hand it out either.
    let args = [
        "run", "--quiet", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
    ];
    let out = host.minibox(&args);
    let got = address_in(&text(&out.stdout));
    assert!(
        out.status.success() && got == Some(Ipv4Addr::new(172, 29, 0, 3)),
        "expected a container without --ip, while another one holds 172.29.0.2 by --ip, to get \
         the next free address, 172.29.0.3 (a fixed address is leased like any other), but {}",
        harness::transcript::seen(&out)
    );
    drop(holder); // its PID 1 is killed by PID; minibox cleans up
    host.assert_clean("the container that held 172.29.0.2");
}
