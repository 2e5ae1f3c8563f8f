//! Checkers for chapter 3's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch03` (or `cargo xtask exercise ch03 domainname`).
//! The book's chapter 3 page describes each exercise; reference solutions are in
//! `book/exercises/ch03-uts-namespace/`.
//!
//! A wrong solution here can change the *host*: call sethostname or
//! setdomainname outside a new UTS namespace and the machine is renamed. So every
//! checker remembers the host's names first and puts them back when it ends,
//! whether it passed or not, and fails if it had to.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch03-uts-namespace");

/// How long any one `minibox run` may take. The commands below finish at once.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs minibox with stdin closed and returns what it printed, never waiting
/// longer than [`TIMEOUT`]: a minibox that hangs is killed and the test fails.
fn minibox(args: &[&str]) -> Output {
    let mut child = Command::new(MINIBOX)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run minibox");
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // Still our unreaped child: kill() cannot hit another process.
            let _ = child.kill();
            let _ = child.wait();
            panic!("minibox {args:?} still running after {TIMEOUT:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let collect = |pipe: Receiver<Vec<u8>>| {
        pipe.recv_timeout(TIMEOUT)
            .expect("minibox exited but something still holds its output open")
    };
    Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

/// Reads a pipe to its end on a thread of its own, so that a stuck writer cannot
/// block the test.
fn drain(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One of the host's UTS names, as `/proc/sys/kernel/{hostname,domainname}` shows
/// it to us (we are in the host's UTS namespace). Remembered when created; put
/// back on drop if a broken solution changed it.
struct HostUtsName {
    path: &'static str,
    before: String,
}

impl HostUtsName {
    fn hostname() -> Self {
        Self::remember("/proc/sys/kernel/hostname")
    }

    fn domainname() -> Self {
        Self::remember("/proc/sys/kernel/domainname")
    }

    fn remember(path: &'static str) -> Self {
        Self {
            path,
            before: Self::read(path),
        }
    }

    fn read(path: &str) -> String {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {path}: {e}"))
            .trim_end_matches('\n')
            .to_string()
    }

    /// Fails the test if the host's name is no longer what it was.
    fn assert_unchanged(&self, after: &str) {
        let now = Self::read(self.path);
        assert_eq!(
            now, self.before,
            "the host's {} changed {after}: it must only change inside the container",
            self.path
        );
    }
}

impl Drop for HostUtsName {
    fn drop(&mut self) {
        if Self::read(self.path) != self.before {
            // Writing the sysctl is sethostname/setdomainname for our namespace.
            let _ = std::fs::write(self.path, &self.before);
        }
    }
}

/// A System V message queue made on the host with `ipcmk -Q`, removed with
/// `ipcrm -q ID` on drop, so that the checker leaves no queue behind.
struct HostQueue {
    id: String,
}

impl HostQueue {
    fn create() -> Self {
        let out = Command::new("ipcmk")
            .arg("-Q")
            .stdin(Stdio::null())
            .output()
            .expect("run ipcmk");
        assert!(out.status.success(), "ipcmk -Q failed: {out:?}");
        // ipcmk prints "Message queue id: 3".
        let text = stdout(&out);
        let id = text
            .trim()
            .rsplit(' ')
            .next()
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no queue id in ipcmk's output {text:?}"))
            .to_string();
        Self { id }
    }
}

impl Drop for HostQueue {
    fn drop(&mut self) {
        let _ = Command::new("ipcrm")
            .args(["-q", &self.id])
            .stdin(Stdio::null())
            .output();
    }
}

/// How many System V message queues the host's IPC namespace holds.
fn host_queue_count() -> usize {
    let table = std::fs::read_to_string("/proc/sysvipc/msg").expect("read /proc/sysvipc/msg");
    table.lines().skip(1).count()
}

/// The shell command the containers use to count the queues they see.
const COUNT_QUEUES: &str = "tail -n +2 /proc/sysvipc/msg | wc -l";

/// Exercise `domainname`: `minibox run --domainname NAME` sets the NIS domain name
/// of the container's UTS namespace with setdomainname(2), in the child; the
/// host's domain name does not change.
#[test]
#[ignore = "exercise: cargo xtask exercise ch03 domainname"]
fn exercise_domainname() {
    if !harness::require_root("ch03 exercise domainname") {
        return;
    }
    let host = HostUtsName::domainname();
    assert_ne!(host.before, "example.org", "pick another name for the test");

    let out = minibox(&[
        "run",
        "--quiet",
        "--domainname",
        "example.org",
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert!(out.status.success(), "minibox failed: {out:?}");
    assert_eq!(
        stdout(&out),
        "example.org\n",
        "the container should see the domain name it was given"
    );
    host.assert_unchanged("after `run --domainname example.org`");
}

/// Exercise `share-host-namespaces`: `--uts host` and `--ipc host` (values
/// `private`, the default, or `host`) keep the container in the host's UTS or IPC
/// namespace instead of creating one; `--uts host` sets no hostname, and together
/// with `--hostname` it is refused before anything is created.
#[test]
#[ignore = "exercise: cargo xtask exercise ch03 share-host-namespaces"]
fn exercise_share_host_namespaces() {
    if !harness::require_root("ch03 exercise share-host-namespaces") {
        return;
    }
    let host = HostUtsName::hostname();

    // --uts host: the container sees the host's name, and nothing renames it.
    let out = minibox(&["run", "--quiet", "--uts", "host", "hostname"]);
    assert!(out.status.success(), "`--uts host` failed: {out:?}");
    assert_eq!(
        stdout(&out).trim_end(),
        host.before,
        "with --uts host the container should see the host's hostname"
    );
    host.assert_unchanged("after `run --uts host`");

    // --uts private is the default, spelled out.
    let out = minibox(&[
        "run",
        "--quiet",
        "--uts",
        "private",
        "--hostname",
        "box",
        "hostname",
    ]);
    assert!(out.status.success(), "`--uts private` failed: {out:?}");
    assert_eq!(stdout(&out), "box\n");
    host.assert_unchanged("after `run --uts private --hostname box`");

    // --uts host with --hostname: one line, 125, and nothing started (no
    // narration: the error comes before clone).
    let out = minibox(&["run", "--uts", "host", "--hostname", "box", "true"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "minibox: --hostname cannot be used with --uts host\n",
        "the conflict should be one line, before anything happens"
    );
    assert_eq!(out.status.code(), Some(125));
    host.assert_unchanged("after `run --uts host --hostname box`");

    // --ipc host: the container sees the host's queues, one of them ours.
    let queue = HostQueue::create();
    let before = host_queue_count();
    let out = minibox(&["run", "--quiet", "--ipc", "host", "sh", "-c", COUNT_QUEUES]);
    let after = host_queue_count();
    assert!(out.status.success(), "`--ipc host` failed: {out:?}");
    let inside = stdout(&out).trim().to_string();
    assert!(
        inside == before.to_string() || inside == after.to_string(),
        "with --ipc host the container should see the host's {before} queue(s), saw {inside}"
    );
    // --ipc private (the default) still starts empty while the host has one.
    let out = minibox(&[
        "run",
        "--quiet",
        "--ipc",
        "private",
        "sh",
        "-c",
        COUNT_QUEUES,
    ]);
    assert!(out.status.success(), "`--ipc private` failed: {out:?}");
    assert_eq!(
        stdout(&out).trim(),
        "0",
        "a private IPC namespace starts empty"
    );
    drop(queue);
}
