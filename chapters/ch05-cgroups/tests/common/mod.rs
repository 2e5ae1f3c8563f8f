//! What the host suite (`cgroups.rs`) and the v2 suite (`v2.rs`) share: the
//! programs that push against each limit, and reading the container's answer.

#![allow(dead_code)] // each suite uses its own part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The chapter's binary.
pub const MINIBOX: &str = env!("CARGO_BIN_EXE_ch05-cgroups");

/// dd allocates one 64 MiB buffer: twice a 32m limit.
pub const DD_64M: [&str; 5] = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];

/// Forks 20 sleeps in a child shell (which dies at the first failed fork), and
/// says the container lives on.
pub const FORK_20: &str =
    "sh -c 'for i in $(seq 20); do sleep 1 & done' 2>&1 | tail -n 1; echo still running";

/// A busy loop for 2 s of wall time, not as PID 1 (PID 1 would ignore
/// timeout's SIGTERM).
pub const BUSY_2S: &str = "timeout 2 sh -c 'while :; do :; done'; true";

/// Every limit at once, with the values the limit-file tests expect.
pub const ALL_LIMITS: [&str; 8] = [
    "--memory",
    "32m",
    "--pids-limit",
    "10",
    "--cpus",
    "0.5",
    "--cpu-shares",
    "512",
];

/// A container script that says `ready` once running, then waits for stdin
/// to close.
pub const WAIT_FOR_STDIN: &str = "echo ready; read _ || true";

/// Spawns `command` with stdout piped and waits for the container's `ready`.
pub fn spawn_ready(command: &mut Command) -> Child {
    let mut child = command.stdout(Stdio::piped()).spawn().expect("run minibox");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    child
}

/// The CPU time in `--stats`' line on stderr, in seconds.
pub fn cpu_seconds(stderr: &str) -> f64 {
    stderr
        .split("CPU time ")
        .nth(1)
        .and_then(|rest| rest.trim().strip_suffix('s'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no CPU time in {stderr:?}"))
}

/// The peak memory in `--stats`' line on stderr, in bytes (`12.5MiB`).
pub fn peak_memory_bytes(stderr: &str) -> u64 {
    let text = stderr
        .split("peak memory ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no peak memory in {stderr:?}"));
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("peak memory {text:?}"));
    let scale = match unit {
        "B" => 1u64,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => panic!("peak memory unit in {text:?}"),
    };
    (number * scale as f64) as u64
}

/// Runs dd with one `mib` MiB buffer: the container touches that much memory.
pub fn dd_buffer(mib: u32) -> [String; 5] {
    [
        "dd".into(),
        "if=/dev/zero".into(),
        "of=/dev/null".into(),
        format!("bs={mib}M"),
        "count=1".into(),
    ]
}
