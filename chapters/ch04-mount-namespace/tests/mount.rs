//! Chapter 4 against the real kernel (needs root): inside, `ps` sees only the
//! container; the host's mount table is the same before, during and after a run,
//! even when the container is SIGKILLed and even when the host's mounts are
//! shared; the host's files are out of reach after pivot_root (but not after
//! chroot); /dev and /sys are what they should be; bad input fails with one line.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use common::MINIBOX;

/// Runs minibox with the busybox root filesystem (built if missing).
fn minibox(args: &[&str]) -> Output {
    Command::new(MINIBOX)
        .args(args)
        .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
        .stdin(Stdio::null())
        .output()
        .expect("run minibox")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// Starts a container that prints `ready` and then waits for stdin to close.
fn start_waiting(extra: &[&str]) -> Child {
    let mut child = Command::new(MINIBOX)
        .args(["run"])
        .args(extra)
        .args(["sh", "-c", "echo ready; read _ || true"])
        .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    child
}

#[test]
fn ps_inside_lists_only_the_containers_processes() {
    if !harness::require_root("ch04 ps sees only the container") {
        return;
    }
    let out = minibox(&[
        "run",
        "--quiet",
        "--hostname",
        "box",
        "sh",
        "-c",
        "hostname; ps -o pid,comm; true",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "box");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    let processes: Vec<Vec<&str>> = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        processes.len(),
        2,
        "ps saw more than sh and itself:\n{text}"
    );
    assert_eq!(processes[0], ["1", "sh"]);
    assert_eq!(processes[1][1], "ps");
}

#[test]
fn the_root_is_the_busybox_root_with_a_minimal_dev_and_a_read_only_sys() {
    if !harness::require_root("ch04 root, /dev and /sys") {
        return;
    }
    let out = minibox(&["run", "--quiet", "cat", "/etc/minibox-release"]);
    assert_eq!(stdout(&out), "minibox busybox root filesystem\n");

    let out = minibox(&["run", "--quiet", "ls", "/dev"]);
    let entries: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        entries,
        [
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
            "tty", "urandom", "zero"
        ]
    );
    let script = "echo hi > /dev/null && head -c 4 /dev/zero | wc -c && touch /sys/x";
    let out = minibox(&["run", "--quiet", "sh", "-c", script]);
    assert_eq!(stdout(&out), "4\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{out:?}"
    );
}

#[test]
fn the_host_mount_table_is_the_same_before_during_and_after() {
    if !harness::require_root("ch04 host mount table unchanged") {
        return;
    }
    let before = mountinfo();
    let mut child = start_waiting(&["--quiet"]);
    assert_eq!(
        mountinfo(),
        before,
        "the container's mounts are visible on the host"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(mountinfo(), before);
}

#[test]
fn nothing_stays_mounted_when_the_container_is_killed() {
    if !harness::require_root("ch04 nothing mounted after SIGKILL") {
        return;
    }
    let before = mountinfo();
    let mut child = start_waiting(&[]);
    // The narration names the container's PID on the host.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let host_pid: i32 = stderr
        .lines()
        .map(Result::unwrap)
        .find_map(|l| {
            l.strip_prefix("[minibox] the host knows the child as PID ")
                .map(str::to_string)
        })
        .expect("narration names the host PID")
        .parse()
        .unwrap();
    // SAFETY: kill(2) of our container's PID 1, not yet reaped by minibox.
    assert_eq!(unsafe { libc::kill(host_pid, libc::SIGKILL) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(137));
    assert_eq!(mountinfo(), before);
}

#[test]
fn mounts_do_not_leak_even_when_the_hosts_mounts_are_shared() {
    if !harness::require_root("ch04 private propagation") {
        return;
    }
    // Play a systemd host, where `/` is shared: a new mount namespace (ours, for
    // this test only) with every mount shared. Without MS_PRIVATE first, the
    // container's bind mount, /proc, /dev and /sys would appear in it.
    let rootfs = harness::fixtures::busybox_rootfs();
    let script = format!(
        "a=$(cat /proc/self/mountinfo); {MINIBOX} run --quiet true || echo \"minibox failed: $?\"; b=$(cat /proc/self/mountinfo); \
         [ \"$a\" = \"$b\" ] && echo unchanged || {{ echo leaked; echo \"$b\"; }}"
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "shared", "sh", "-c", &script])
        .env("MINIBOX_ROOTFS", &rootfs)
        .stdin(Stdio::null())
        .output()
        .expect("unshare (util-linux)");
    assert_eq!(
        stdout(&out),
        "unchanged\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_host_is_out_of_reach_after_pivot_root_but_not_after_chroot() {
    if !harness::require_root("ch04 pivot_root vs chroot") {
        return;
    }
    // A marker on the host, outside the root filesystem.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("host-marker");
    std::fs::write(&marker, "the host's marker\n").unwrap();
    let marker = marker.to_str().unwrap();

    let out = minibox(&["run", "--quiet", "cat", marker]);
    assert_eq!(out.status.code(), Some(1), "the marker is visible inside");

    // The classic escape: useless after pivot_root ...
    let out = minibox(&["run", "--quiet", "chroot-escape", "cat", marker]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("still in the same root"));

    // ... but a chroot does not hold a root process.
    let out = minibox(&["run", "--quiet", "--chroot", "chroot-escape", "cat", marker]);
    assert_eq!(stdout(&out), "the host's marker\n", "{out:?}");
}

#[test]
fn bad_input_fails_with_one_line_and_mounts_nothing() {
    if !harness::require_root("ch04 bad input") {
        return;
    }
    let before = mountinfo();
    let file = tempfile::NamedTempFile::new().unwrap();
    let file = file.path().to_str().unwrap().to_string();
    let cases: [(&[&str], i32, String); 3] = [
        (
            &["run", "--rootfs", "/no/such/rootfs", "sh"],
            125,
            "minibox: rootfs \"/no/such/rootfs\": no such file or directory\n".into(),
        ),
        (
            &["run", "--rootfs", &file, "sh"],
            125,
            format!("minibox: rootfs \"{file}\" is not a directory\n"),
        ),
        (
            &["run", "--quiet", "bash"],
            127,
            "minibox: exec: \"bash\": executable file not found in $PATH\n".into(),
        ),
    ];
    for (args, code, message) in cases {
        let out = minibox(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), message, "{args:?}");
        assert_eq!(mountinfo(), before, "{args:?} left a mount behind");
    }
}

#[test]
fn orphans_become_zombies_of_pid_1_until_it_reaps_them() {
    if !harness::require_root("ch04 zombies") {
        return;
    }
    // PID 1 becomes `sleep`, which never calls wait: its finished child stays a
    // zombie (Z), visible now that /proc is the container's own.
    let script = "sleep 0.1 & (sleep 0.5; ps -o pid,ppid,stat,comm) & exec sleep 1";
    let out = minibox(&["run", "--quiet", "sh", "-c", script]);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["2", "1", "Z", "sleep"]),
        "no zombie in:\n{text}"
    );
}
