//! Chapter 1 against the real kernel: `minibox run` forks a child, the child execs
//! the command with the same PID, the parent waits, and minibox exits with the
//! child's status or Docker's 125/126/127. No root needed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use common::MINIBOX;

fn minibox(args: &[&str]) -> Output {
    Command::new(MINIBOX)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run minibox")
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn exit_code_of_the_child_is_passed_through() {
    for code in [0, 1, 3, 42, 255] {
        let out = minibox(&["run", "--quiet", "sh", "-c", &format!("exit {code}")]);
        assert_eq!(out.status.code(), Some(code), "exit {code}");
        assert!(out.stderr.is_empty(), "quiet run printed {:?}", out.stderr);
    }
}

#[test]
fn the_child_is_a_new_process_that_keeps_its_pid_across_exec() {
    // `echo $$` prints the shell's own PID: the PID the child had before it exec'd
    // sh, if exec really replaced the program in the same process.
    let child = Command::new(MINIBOX)
        .args(["run", "sh", "-c", "echo $$"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let minibox_pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let shell_pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();

    let narration = stderr_lines(&out);
    assert_eq!(narration.len(), 3, "{narration:#?}");
    assert_eq!(
        narration[0],
        format!("[minibox] parent (PID {minibox_pid}) calls fork()")
    );
    assert_eq!(
        narration[1],
        format!(r#"[minibox] child (PID {shell_pid}) calls execvp("sh", ["sh", "-c", "echo $$"])"#)
    );
    assert_eq!(
        narration[2],
        format!("[minibox] child (PID {shell_pid}) exited with code 0; minibox exits with 0")
    );
    assert_ne!(
        shell_pid, minibox_pid,
        "the command ran in minibox's own process"
    );
}

#[test]
fn killed_by_sigkill_gives_137() {
    // The child prints its PID, then sleeps; we SIGKILL it from outside.
    let mut child = Command::new(MINIBOX)
        .args(["run", "--quiet", "sh", "-c", "echo $$; exec sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    // SAFETY: kill(2) on the PID our own child just printed: minibox's child,
    // which cannot be reaped (and its PID reused) before minibox waits for it.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
}

#[test]
fn killed_by_sigterm_gives_143_and_is_narrated() {
    let out = minibox(&["run", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(143));
    let last = stderr_lines(&out).pop().unwrap();
    assert!(
        last.ends_with("was killed by SIGTERM (signal 15); minibox exits with 143"),
        "{last}"
    );
}

#[test]
fn command_not_found_is_127_with_one_line() {
    let out = minibox(&["run", "--quiet", "no-such-command-minibox"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        stderr_lines(&out),
        [r#"minibox: exec: "no-such-command-minibox": executable file not found in $PATH"#]
    );

    let out = minibox(&["run", "--quiet", "/no/such/file"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        stderr_lines(&out),
        [r#"minibox: exec: "/no/such/file": no such file or directory"#]
    );
}

#[test]
fn not_executable_is_126_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script");
    std::fs::write(&file, "#!/bin/sh\necho should not run\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = file.to_str().unwrap();

    for target in [path, dir.path().to_str().unwrap()] {
        let out = minibox(&["run", "--quiet", target]);
        assert_eq!(out.status.code(), Some(126), "{target}");
        assert_eq!(
            stderr_lines(&out),
            [format!(r#"minibox: exec: "{target}": permission denied"#)]
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn bad_usage_is_125_with_one_line() {
    for args in [
        &["run"][..],
        &["run", "--bogus", "echo"],
        &["--bogus"],
        &["frobnicate"],
    ] {
        let out = minibox(args);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 1, "{args:?}: {lines:#?}");
        assert!(lines[0].starts_with("minibox: "), "{}", lines[0]);
    }
}

#[test]
fn options_after_the_command_belong_to_the_command() {
    let out = minibox(&["run", "--quiet", "echo", "--quiet", "-n", "x"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--quiet -n x\n");
}

#[test]
fn the_child_inherits_stdin_stdout_and_environment() {
    let mut child = Command::new(MINIBOX)
        .args([
            "run",
            "--quiet",
            "sh",
            "-c",
            "read line; echo \"$line $MINIBOX_TEST_VAR\"",
        ])
        .env("MINIBOX_TEST_VAR", "inherited")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "typed inherited\n");
}

#[test]
fn the_command_gets_sigpipe_back() {
    // `yes` is killed by SIGPIPE when `head` stops reading, if SIGPIPE has its
    // default action; Rust ignores SIGPIPE, and ignored signals survive exec.
    let out = minibox(&[
        "run",
        "--quiet",
        "sh",
        "-c",
        "yes | head -n 1 >/dev/null; echo done",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    assert!(
        out.stderr.is_empty(),
        "yes complained instead of dying: {out:?}"
    );
}
