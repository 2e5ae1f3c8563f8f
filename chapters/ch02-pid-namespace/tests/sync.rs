//! The sync pipe between two real processes: a failed setup and a failed exec in
//! the child reach the parent as errors it can read, and end-of-file means the
//! program is running.
//!
//! This test has its own `main` (`harness = false` in Cargo.toml) because it
//! forks: the standard test harness runs tests on several threads, and a child
//! forked from a multi-threaded process can deadlock on a lock another thread
//! held at that moment (here, the one that guards backtrace capture). The same
//! rule is why minibox itself forks only while it has a single thread.

use anyhow::{Result, anyhow};
use ch01_fork_exec::exit::StartError;
use ch01_fork_exec::process::{self, Forked, fork};
use ch02_pid_namespace::sync::{ChildEnd, channel};
use nix::errno::Errno;

/// Forks a real child that, once released, calls `report` and exits; returns
/// what the parent learned from the sync pipe.
fn child_reports(report: impl FnOnce(&ChildEnd)) -> Result<()> {
    let (mut parent, child_end) = channel().unwrap();
    match fork().unwrap() {
        Forked::Child => {
            if child_end.wait_for_release().is_ok() {
                report(&child_end);
            }
            process::exit_now(0)
        }
        Forked::Parent { child } => {
            drop(child_end);
            parent.release().unwrap();
            let result = parent.wait_for_exec("some-program");
            process::wait_for(child).unwrap();
            result
        }
    }
}

fn a_setup_failure_reaches_the_parent_as_its_message() {
    let err = child_reports(|c| c.setup_failed(&anyhow!("EINVAL").context("mount /proc")));
    assert_eq!(
        format!("{:#}", err.unwrap_err()),
        "container setup failed: mount /proc: EINVAL"
    );
}

fn an_exec_failure_reaches_the_parent_as_a_start_error() {
    let err = child_reports(|c| {
        c.exec_failed(&StartError {
            program: "x".into(),
            errno: Errno::ENOENT,
        })
    })
    .unwrap_err();
    let start = err.downcast_ref::<StartError>().expect("a StartError");
    assert_eq!(start.errno, Errno::ENOENT);
    assert_eq!(start.program, "some-program");
    assert_eq!(start.status(), 127);
}

fn end_of_file_means_the_program_is_running() {
    // A child that exits without writing closes its end, as a successful exec
    // does: the parent reads end-of-file.
    assert!(child_reports(|_| {}).is_ok());
}

fn main() {
    let tests: [(&str, fn()); 3] = [
        (
            "a_setup_failure_reaches_the_parent_as_its_message",
            a_setup_failure_reaches_the_parent_as_its_message,
        ),
        (
            "an_exec_failure_reaches_the_parent_as_a_start_error",
            an_exec_failure_reaches_the_parent_as_a_start_error,
        ),
        (
            "end_of_file_means_the_program_is_running",
            end_of_file_means_the_program_is_running,
        ),
    ];
    for (name, test) in tests {
        test(); // a failed assertion panics: the test binary fails
        println!("test {name} ... ok");
    }
    println!("\ntest result: ok. {} passed; 0 failed", tests.len());
}
