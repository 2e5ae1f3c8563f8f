//! Chapter 3 against the real kernel (needs root): the hostname inside is the one
//! given (or the short container ID), the host's hostname never changes, a bad
//! hostname fails in the child and is reported by the parent, and System V IPC
//! objects made inside are invisible outside.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use common::MINIBOX;

fn minibox(args: &[&str]) -> Output {
    Command::new(MINIBOX)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run minibox")
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
}

#[test]
fn the_hostname_inside_is_the_one_given_and_the_host_keeps_its_own() {
    if !harness::require_root("ch03 hostname") {
        return;
    }
    let before = host_hostname();
    // The container sets it, then holds on while we look at the host's.
    let mut child = Command::new(MINIBOX)
        .args([
            "run",
            "--quiet",
            "--hostname",
            "box",
            "sh",
            "-c",
            "hostname; read _ || true",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "box\n");
    assert_eq!(host_hostname(), before, "the host was renamed");
    drop(child.stdin.take()); // `read` sees end-of-file: the container ends
    assert!(child.wait().unwrap().success());
    assert_eq!(host_hostname(), before);
}

#[test]
fn the_default_hostname_is_a_new_short_container_id() {
    if !harness::require_root("ch03 default hostname") {
        return;
    }
    let name = |out: Output| String::from_utf8(out.stdout).unwrap().trim().to_string();
    let a = name(minibox(&["run", "--quiet", "hostname"]));
    let b = name(minibox(&["run", "--quiet", "hostname"]));
    for n in [&a, &b] {
        assert_eq!(n.len(), 12, "{n:?}");
        assert!(n.chars().all(|c| c.is_ascii_hexdigit()), "{n:?}");
    }
    assert_ne!(a, b, "two containers got the same ID");
}

#[test]
fn a_failed_sethostname_is_reported_by_the_parent() {
    if !harness::require_root("ch03 bad hostname") {
        return;
    }
    let long = "a".repeat(65);
    let before = host_hostname();
    let out = minibox(&["run", "--quiet", "--hostname", &long, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "minibox: container setup failed: sethostname(\"{long}\"): EINVAL: Invalid argument\n"
        )
    );
    assert_eq!(host_hostname(), before);
}

#[test]
fn ipc_objects_made_inside_are_invisible_outside() {
    if !harness::require_root("ch03 IPC namespace") {
        return;
    }
    // The container makes a message queue, lists the queues it sees, then
    // waits while we look from the host. ipcmk picks a random key.
    let script = "ipcmk -Q >/dev/null; tail -n +2 /proc/sysvipc/msg; echo END; read _ || true";
    let mut child = Command::new(MINIBOX)
        .args(["run", "--quiet", "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let inside: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .take_while(|l| l != "END")
        .collect();
    assert_eq!(
        inside.len(),
        1,
        "the container sees exactly its own queue: {inside:?}"
    );
    let key = inside[0].split_whitespace().next().unwrap().to_string();

    // /proc/sysvipc/msg lists the reader's IPC namespace: the host's, for us.
    let host_queues = std::fs::read_to_string("/proc/sysvipc/msg").unwrap();
    assert!(
        !host_queues
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(key.as_str())),
        "the host sees the container's queue {key}:\n{host_queues}"
    );
    // A second container does not see it either.
    let out = minibox(&[
        "run",
        "--quiet",
        "sh",
        "-c",
        "tail -n +2 /proc/sysvipc/msg | wc -l",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}
