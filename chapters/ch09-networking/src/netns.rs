//! Network namespaces held by a file descriptor, and running code inside one.
//!
//! A network namespace (`network_namespaces(7)`) is the kernel's copy of a
//! whole network stack: its own links, addresses, routes, firewall rules and
//! port numbers. A namespace lives as long as something refers to it: a
//! process in it, a bind mount of its `/proc/PID/ns/net` file (what
//! `ip netns add NAME` makes under `/run/netns`), or an open file descriptor.
//! minibox holds namespaces by file descriptor, so a namespace cannot outlive
//! the program that made it: when the descriptor closes, the kernel tears the
//! stack down, veths and all.
//!
//! Two kernel facts make [`run_in`] work:
//!
//! - `setns(fd, CLONE_NEWNET)` moves only the *calling thread* into the
//!   namespace (each thread has its own `nsproxy`). A short-lived thread can
//!   enter a namespace, do its work and exit, and the rest of the process
//!   never moves.
//! - A socket belongs to the namespace its creator was in at `socket(2)` time,
//!   for its whole life. A netlink socket opened inside a container's
//!   namespace keeps configuring that namespace after the thread that opened
//!   it is gone; a TCP listener bound there keeps listening there.
//!
//! The `ip` equivalents: `ip netns add NAME` ([`create`], minus the name),
//! `ip netns exec NAME CMD` ([`run_in`] for a closure, [`command_in`] for a
//! program).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context, Result, anyhow};
use nix::sched::{CloneFlags, setns, unshare};

/// Creates a new, empty network namespace (only a `lo`, down) and returns a
/// descriptor that keeps it alive.
///
/// The namespace is made by a helper thread that calls `unshare(CLONE_NEWNET)`
/// and opens `/proc/thread-self/ns/net`; the thread then exits, so the calling
/// thread stays where it was. Tests use this to make the namespace that plays
/// "the host".
pub fn create() -> Result<OwnedFd> {
    on_thread(|| {
        unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
        let file =
            File::open("/proc/thread-self/ns/net").context("open /proc/thread-self/ns/net")?;
        Ok(OwnedFd::from(file))
    })
}

/// Opens the network namespace of process `pid` (`/proc/PID/ns/net`): how a
/// recipe gets hold of the namespace its container was cloned into.
pub fn of_process(pid: i32) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/net");
    let file = File::open(&path).with_context(|| format!("open {path}"))?;
    Ok(OwnedFd::from(file))
}

// ANCHOR: run_in
/// Runs `f` on a new thread that has first joined the network namespace
/// `netns`, and returns what `f` returned.
///
/// Sockets that `f` creates stay in that namespace when they are returned
/// (see the module docs), which is how [`crate::netlink::Netlink::open_in`]
/// and the proxy's listeners reach into another namespace without moving the
/// calling thread.
pub fn run_in<T, F>(netns: BorrowedFd<'_>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    // The thread needs its own descriptor: the borrowed one may not live as
    // long as a 'static closure requires.
    let fd = netns
        .try_clone_to_owned()
        .context("dup network namespace fd")?;
    on_thread(move || {
        setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
            .context("setns(CLONE_NEWNET) into the network namespace")?;
        f()
    })
}
// ANCHOR_END: run_in

/// Builds a [`Command`] that runs in the network namespace `netns` (what
/// `ip netns exec` does): the child joins it between fork and exec.
///
/// Used by tests to run `ip` and `ping` where the test's links are.
pub fn command_in(netns: BorrowedFd<'_>, program: &str) -> Result<Command> {
    let mut cmd = Command::new(program);
    enter_before_exec(&mut cmd, netns)?;
    Ok(cmd)
}

/// Makes `cmd`'s child join the network namespace `netns` between fork and
/// exec: how tests run minibox itself in the namespace that plays the host.
pub fn enter_before_exec(cmd: &mut Command, netns: BorrowedFd<'_>) -> Result<()> {
    let fd = netns
        .try_clone_to_owned()
        .context("dup network namespace fd")?;
    // SAFETY: the closure runs in the child between fork and exec; it calls
    // only setns(2), which is async-signal-safe, and touches no locks or
    // allocations. `fd` is moved into the closure and stays open until exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Runs `f` on a fresh thread and turns a panic into an error.
fn on_thread<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    std::thread::spawn(f)
        .join()
        .map_err(|_| anyhow!("the network namespace thread panicked"))?
}
