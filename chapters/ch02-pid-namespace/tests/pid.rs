//! Chapter 2 against the real kernel (needs root): the command runs as PID 1 of a
//! new PID namespace, the host sees it under another PID, statuses pass through,
//! a failed start is reported through the sync pipe, and nothing started inside
//! outlives PID 1.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use common::MINIBOX;

fn minibox(args: &[&str]) -> Output {
    Command::new(MINIBOX)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run minibox")
}

/// Starts minibox with narration and returns it with the child's host PID, read
/// from the narration line "the host knows the child as PID N".
fn start_with_host_pid(args: &[&str]) -> (Child, i32) {
    let mut child = Command::new(MINIBOX)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(pid) = line.strip_prefix("[minibox] the host knows the child as PID ") {
            return (child, pid.parse().unwrap());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no host PID in the narration");
}

#[test]
fn the_command_is_pid_1() {
    if !harness::require_root("ch02 the command is PID 1") {
        return;
    }
    let out = minibox(&["run", "--quiet", "sh", "-c", "echo $$; echo $PPID"]);
    assert!(out.status.success(), "{out:?}");
    // PID 1, and its parent (minibox) is outside the namespace: PPID 0.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n0\n");
}

#[test]
fn the_host_sees_another_pid_in_another_namespace() {
    if !harness::require_root("ch02 the host sees another PID") {
        return;
    }
    let (mut child, host_pid) = start_with_host_pid(&["run", "sh", "-c", "sleep 1"]);
    // /proc/PID/status lists the PID in every namespace it is in, outermost first.
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    let pids: Vec<&str> = nspid.split_whitespace().skip(1).collect();
    assert_eq!(pids.last(), Some(&"1"), "{nspid}");
    assert_eq!(pids.first().unwrap().parse::<i32>().unwrap(), host_pid);
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(ns(&host_pid.to_string()), ns("self"));
    assert!(child.wait().unwrap().success());
}

#[test]
fn exit_statuses_pass_through() {
    if !harness::require_root("ch02 exit statuses pass through") {
        return;
    }
    let out = minibox(&["run", "--quiet", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));

    // SIGKILL from the host (the parent namespace) does kill PID 1: 137.
    let (mut child, host_pid) = start_with_host_pid(&["run", "sleep", "30"]);
    // SAFETY: kill(2) of our own container's PID 1, which minibox has not reaped.
    assert_eq!(unsafe { libc::kill(host_pid, libc::SIGKILL) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(137));
}

#[test]
fn pid_1_ignores_signals_it_has_no_handler_for() {
    if !harness::require_root("ch02 PID 1 ignores signals") {
        return;
    }
    // From inside its namespace, even SIGKILL cannot kill PID 1.
    let out = minibox(&[
        "run",
        "--quiet",
        "sh",
        "-c",
        "kill -TERM $$; kill -KILL $$; echo alive",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alive\n");
}

#[test]
fn orphans_are_reparented_to_pid_1() {
    if !harness::require_root("ch02 orphans go to PID 1") {
        return;
    }
    // The shell says its own PID, then an orphan (its parent, a subshell, is
    // gone) says who its parent is now. Both must be 1: the shell is the
    // namespace's init, and the orphan went to it. Without a PID namespace the
    // shell has a host PID and the orphan goes to the host's init (or a
    // subreaper), never to the shell: "1" alone would not tell them apart.
    let script = "echo $$; ( (sleep 0.1; exec sh -c 'echo $PPID') & ); sleep 1";
    let out = minibox(&["run", "--quiet", "sh", "-c", script]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["1", "1"],
        "[the shell's PID, the orphan's parent]: the orphan must go to the shell, PID 1"
    );
}

#[test]
fn a_failed_exec_is_reported_through_the_sync_pipe() {
    if !harness::require_root("ch02 a failed exec is reported") {
        return;
    }
    let out = minibox(&["run", "--quiet", "no-such-command-minibox"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "minibox: exec: \"no-such-command-minibox\": executable file not found in $PATH\n"
    );
    let out = minibox(&["run", "--quiet", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "minibox: exec: \"/etc/passwd\": permission denied\n"
    );
    // A program that exits 127 by itself is not a failed start: no message.
    let out = minibox(&["run", "--quiet", "sh", "-c", "exit 127"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn nothing_outlives_pid_1() {
    if !harness::require_root("ch02 nothing outlives PID 1") {
        return;
    }
    // A background sleep with a unique argument; PID 1 exits at once. The kernel
    // kills every other process of a PID namespace when its PID 1 exits.
    let marker = format!("31.{}", std::process::id());
    let out = minibox(&[
        "run",
        "--quiet",
        "sh",
        "-c",
        &format!("sleep {marker} & exit 0"),
    ]);
    assert!(out.status.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&marker),
            "`sleep {marker}` survived its namespace as {:?}",
            entry.path()
        );
    }
}

#[test]
fn without_root_the_error_says_what_is_missing() {
    if !harness::privilege::is_root() {
        // Without root we can check this directly.
        let out = minibox(&["run", "true"]);
        assert_eq!(out.status.code(), Some(125));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("this needs root (CAP_SYS_ADMIN)"),
            "{stderr}"
        );
        return;
    }
    // As root, drop to nobody for the child of a helper shell: setpriv is in
    // util-linux, present wherever the tests run.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            MINIBOX,
            "run",
            "--quiet",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "minibox: clone(CLONE_NEWPID): operation not permitted: this needs root (CAP_SYS_ADMIN); run minibox as root or with sudo\n"
    );
}
