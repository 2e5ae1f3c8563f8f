//! Output to a closed pipe is not an error worth a panic: `minibox run --diff
//! ... | head -1` with a diff larger than a pipe holds used to panic in
//! `println!` (exit status 101) and leave the container's directory behind.
//! Now the listing stops, minibox exits with the container's status, and the
//! directory is removed as after any run.

mod common;

use std::io::{BufRead, BufReader};

use common::MINIBOX;
use harness::env::Env;

#[test]
fn a_diff_into_a_closed_pipe_ends_quietly_and_leaves_nothing() {
    if !harness::require_root("ch06 diff into a closed pipe") {
        return;
    }
    // A store and a cgroup parent of the test's own; no cgroup may be left.
    let env = Env::builder(MINIBOX, "ch06", "closed-pipe").build();
    // 5000 added files: about 90 KB of `A /many/file1234` lines, more than a
    // pipe's 64 KiB, so minibox is still writing when the reader goes away.
    let mut child = env
        .command(&["run", "--quiet", "--diff", "--", "sh", "-c"])
        .arg("mkdir /many && cd /many && i=0; while [ $i -lt 5000 ]; do : > file$i; i=$((i+1)); done")
        .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
        .spawn()
        .expect("start minibox");
    // `head -1`: read one line, then close the pipe.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "A /many\n");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "minibox panicked:\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let left: Vec<_> = std::fs::read_dir(env.root().join("containers"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}
