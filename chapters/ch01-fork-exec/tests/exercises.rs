//! Checkers for chapter 1's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch01` (or `cargo xtask exercise ch01 rusage`).
//! The book's chapter 1 page describes each exercise; reference solutions are in
//! `book/exercises/ch01-fork-exec/`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch01-fork-exec");

/// Exercise `rusage`: `minibox run --rusage CMD` prints, after the child ends, one
/// line `minibox: rusage: user U ms, system S ms, max RSS M KiB` about the child
/// (even with `--quiet`), from wait4(2) or getrusage(RUSAGE_CHILDREN).
#[test]
#[ignore = "exercise: cargo xtask exercise ch01 rusage"]
fn exercise_rusage() {
    // The child burns CPU in a loop and holds a 20 MB string, so its numbers
    // cannot be mistaken for minibox's own.
    let script = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; \
                  x=$(head -c 20000000 /dev/zero | tr '\\0' a); echo ${#x}";
    let out = Command::new(MINIBOX)
        .args(["run", "--quiet", "--rusage", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("run minibox");
    assert!(out.status.success(), "minibox failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "20000000\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("minibox: rusage: "))
        .unwrap_or_else(|| panic!("no `minibox: rusage:` line in stderr: {stderr:?}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    let [user_ms, _system_ms, max_rss_kib] = numbers[..] else {
        panic!("expected `user U ms, system S ms, max RSS M KiB`, got {line:?}");
    };
    assert!(
        user_ms >= 20,
        "the busy loop used more than {user_ms} ms: {line}"
    );
    assert!(
        max_rss_kib >= 15_000,
        "the child held 20 MB, not {max_rss_kib} KiB: {line}"
    );
}

/// Exercise `forward-signals`: SIGINT and SIGTERM sent to minibox are forwarded to
/// the child instead of killing minibox, which then exits with the child's status.
#[test]
#[ignore = "exercise: cargo xtask exercise ch01 forward-signals"]
fn exercise_forward_signals() {
    for (signal, name) in [(libc::SIGINT, "INT"), (libc::SIGTERM, "TERM")] {
        let script = format!(
            "trap 'echo caught {name}; exit 42' {name}; echo $$; while :; do sleep 0.1; done"
        );
        let mut minibox = Command::new(MINIBOX)
            .args(["run", "--quiet", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run minibox");
        let mut stdout = BufReader::new(minibox.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let child: i32 = line.trim().parse().expect("the child prints its PID");

        // SAFETY: kill(2) on minibox, our own child process, still unreaped.
        unsafe { libc::kill(minibox.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = minibox.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Whatever happened, do not leave the child behind. It is ours: it
        // printed its PID above and we are its grandparent.
        // SAFETY: kill(2) of a PID that is ours or already gone; a stale PID
        // cannot be reused while minibox (its parent) has not reaped it, and if
        // minibox is gone the child was re-parented and is still ours to end.
        unsafe { libc::kill(child, libc::SIGKILL) };
        if status.is_none() {
            let _ = minibox.kill();
            let _ = minibox.wait();
        }
        // Only now, with the child gone, does its stdout reach end-of-file.
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        let status = status.expect("minibox still running 5 s after the signal");
        assert_eq!(
            status.code(),
            Some(42),
            "SIG{name}: minibox should forward it and exit with the child's 42, got {status:?}"
        );
        assert_eq!(rest, format!("caught {name}\n"));
    }
}
