//! The release step through a FIFO instead of the `go` pipe (chapter 14's
//! `runc create` / `runc start` split): the child waits until another party
//! opens the FIFO, then goes on; until then it has not gone on.
//!
//! Its own `main` (`harness = false`), because it forks: see `tests/sync.rs`.

use std::time::Duration;

use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::process::{self, Forked, fork};
use ch02_pid_namespace::sync::{channel_through_fifo, release_fifo};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

fn a_child_waits_on_the_fifo_until_it_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("exec.fifo");
    let (parent, child_end) = channel_through_fifo(&fifo).unwrap();
    match fork().unwrap() {
        Forked::Child => {
            let status = if child_end.wait_for_release().is_ok() {
                7
            } else {
                1
            };
            process::exit_now(status)
        }
        Forked::Parent { child } => {
            drop(child_end);
            // Not released yet: the child is still blocked in open(2).
            std::thread::sleep(Duration::from_millis(200));
            let early = waitpid(child, Some(WaitPidFlag::WNOHANG)).unwrap();
            assert_eq!(early, WaitStatus::StillAlive, "went on before its release");
            // Whoever holds the path releases it: here, the same process.
            release_fifo(&fifo).unwrap();
            assert_eq!(process::wait_for(child).unwrap(), Exit::Code(7));
            drop(parent);
        }
    }
}

fn main() {
    a_child_waits_on_the_fifo_until_it_is_released();
    println!("test a_child_waits_on_the_fifo_until_it_is_released ... ok");
}
