//! Checkers for chapter 3's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch03` (or `cargo xtask exercise ch03 domainname`).
//! The book's chapter 3 page describes each exercise; reference solutions are in
//! `book/exercises/ch03-uts-namespace/`.
//!
//! A wrong solution here can change the *host*: call sethostname or
//! setdomainname outside a new UTS namespace and the machine is renamed. So every
//! checker remembers the host's names first and puts them back when it ends,
//! whether it passed or not, and fails if it had to.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch03-uts-namespace");

/// Runs minibox with stdin closed and returns what it printed. The commands
/// below finish at once; one still running after 10 s has its container killed,
/// then minibox (`harness::process`), and fails the checker.
fn minibox(args: &[&str]) -> Output {
    let child = Command::new(MINIBOX)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run minibox");
    harness::process::wait_with_deadline(
        child,
        &format!("minibox {}", args.join(" ")),
        Duration::from_secs(10),
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The namespace of `kind` (`uts`, `ipc`) this process is in: the link in
/// /proc/self/ns, such as `uts:[4026531838]`. Two processes share a namespace
/// exactly when their links are equal.
fn own_namespace(kind: &str) -> String {
    let link = format!("/proc/self/ns/{kind}");
    std::fs::read_link(&link)
        .unwrap_or_else(|e| panic!("reading {link}: {e}"))
        .to_string_lossy()
        .into_owned()
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
        assert!(
            now == self.before,
            "expected the host's {} to stay {:?} {after}, but it is now {now:?}: the name \
             must change only inside the container (the checker put it back)",
            self.path,
            self.before
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

    let args = [
        "run",
        "--quiet",
        "--domainname",
        "example.org",
        "cat",
        "/proc/sys/kernel/domainname",
    ];
    let out = minibox(&args);
    assert!(
        out.status.success() && stdout(&out) == "example.org\n",
        "expected `minibox {}` to print example.org, the container's domain name, but {}",
        args.join(" "),
        harness::transcript::seen(&out)
    );
    host.assert_unchanged("after `run --domainname example.org`");
}

/// Exercise `share-host-namespaces`: `--uts host` and `--ipc host` (values
/// `private`, the default, or `host`) keep the container in the host's UTS or IPC
/// namespace instead of creating one; `--uts host` sets no hostname, and together
/// with `--hostname` it is refused before anything is created.
///
/// What decides is the namespace itself: the container's `/proc/self/ns/uts`
/// (and `ipc`) must be the host's, the link this checker sees. Equal hostnames
/// would not prove it: a solution that still creates a UTS namespace, and only
/// skips `sethostname`, shows the host's name too.
#[test]
#[ignore = "exercise: cargo xtask exercise ch03 share-host-namespaces"]
fn exercise_share_host_namespaces() {
    if !harness::require_root("ch03 exercise share-host-namespaces") {
        return;
    }
    let host = HostUtsName::hostname();
    let (host_uts, host_ipc) = (own_namespace("uts"), own_namespace("ipc"));

    // --uts host: the host's UTS namespace, its name, and nothing renames it.
    let args = [
        "run",
        "--quiet",
        "--uts",
        "host",
        "readlink",
        "/proc/self/ns/uts",
    ];
    let out = minibox(&args);
    assert!(
        out.status.success() && stdout(&out).trim_end() == host_uts,
        "expected `minibox {}` to print the host's UTS namespace {host_uts}: no new namespace \
         with --uts host; but {}",
        args.join(" "),
        harness::transcript::seen(&out)
    );
    let out = minibox(&["run", "--quiet", "--uts", "host", "hostname"]);
    assert!(
        out.status.success() && stdout(&out).trim_end() == host.before,
        "expected `minibox run --uts host hostname` to print the host's hostname {:?}, but {}",
        host.before,
        harness::transcript::seen(&out)
    );
    host.assert_unchanged("after `run --uts host`");

    // --uts private is the default, spelled out: a namespace of its own.
    let script = "hostname; readlink /proc/self/ns/uts";
    let args = [
        "run",
        "--quiet",
        "--uts",
        "private",
        "--hostname",
        "box",
        "sh",
        "-c",
        script,
    ];
    let out = minibox(&args);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        out.status.success() && lines.len() == 2 && lines[0] == "box" && lines[1] != host_uts,
        "expected `minibox {}` to print box, then a UTS namespace other than the host's \
         {host_uts}; but {}",
        args.join(" "),
        harness::transcript::seen(&out)
    );
    host.assert_unchanged("after `run --uts private --hostname box`");

    // --uts host with --hostname: one line, 125, and nothing started (no
    // narration: the error comes before clone).
    let out = minibox(&["run", "--uts", "host", "--hostname", "box", "true"]);
    assert!(
        out.status.code() == Some(125)
            && out.stderr == b"minibox: --hostname cannot be used with --uts host\n",
        "expected `minibox run --uts host --hostname box true` to refuse with status 125 and \
         the one line `minibox: --hostname cannot be used with --uts host`, before anything \
         starts; but {}",
        harness::transcript::seen(&out)
    );
    host.assert_unchanged("after `run --uts host --hostname box`");

    // --ipc host: the host's IPC namespace, and so its queues, one of them ours.
    let queue = HostQueue::create();
    let before = host_queue_count();
    let script = format!("readlink /proc/self/ns/ipc; {COUNT_QUEUES}");
    let args = ["run", "--quiet", "--ipc", "host", "sh", "-c", &script];
    let out = minibox(&args);
    let after = host_queue_count();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(
        out.status.success()
            && lines.len() == 2
            && lines[0] == host_ipc
            && (lines[1] == before.to_string() || lines[1] == after.to_string()),
        "expected `minibox run --ipc host` to run in the host's IPC namespace {host_ipc} and \
         see the host's {before} message queue(s); but {}",
        harness::transcript::seen(&out)
    );
    // --ipc private (the default) still starts empty while the host has one.
    let args = ["run", "--quiet", "--ipc", "private", "sh", "-c", &script];
    let out = minibox(&args);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(
        out.status.success() && lines.len() == 2 && lines[0] != host_ipc && lines[1] == "0",
        "expected `minibox run --ipc private` to run in an IPC namespace of its own, which \
         starts with no message queues; but {}",
        harness::transcript::seen(&out)
    );
    drop(queue);
}
