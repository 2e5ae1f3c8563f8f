//! A network namespace for a networking chapter's demos to play "the host"
//! in (DESIGN.md, *Networking rules for tests*): whatever the demos make there
//! (minibox's bridge and veths, its NAT rules, its published ports) exists
//! only inside, and the kernel tears it all down when the last reference to
//! the namespace goes. Nothing touches the machine's own network.
//!
//! Chapter 9's `netns` module is the taught version of this; the harness
//! depends on no chapter, so it has its own few lines, with the one difference
//! a session needs: `lo` is up from the start, as on a real host.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// A network namespace made by this process and held by a descriptor (no
/// name under `/run/netns`, no process inside): dropping it drops the
/// namespace, unless a process still runs in it.
#[derive(Debug)]
pub struct NetNs(OwnedFd);

impl NetNs {
    /// Makes a new network namespace, with `lo` up.
    pub fn new() -> io::Result<NetNs> {
        // unshare(2) moves only the calling thread into the new namespace: a
        // thread of its own does it, opens its namespace and ends, so the rest
        // of the process (the registry's clients among it) stays where it was.
        let made = std::thread::spawn(|| -> io::Result<OwnedFd> {
            // SAFETY: unshare(2) with CLONE_NEWNET changes only this
            // short-lived thread's namespace; it reads no memory of ours.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(File::open("/proc/thread-self/ns/net")?.into())
        });
        let fd = made
            .join()
            .map_err(|_| io::Error::other("the namespace thread panicked"))??;
        let netns = NetNs(fd);
        let mut lo_up = Command::new("ip");
        lo_up.args(["link", "set", "lo", "up"]).stdin(Stdio::null());
        netns.enter(&mut lo_up)?;
        let status = lo_up.status()?;
        if !status.success() {
            return Err(io::Error::other(format!("ip link set lo up: {status}")));
        }
        Ok(netns)
    }

    /// Waits (10 s at most) until no veth is left in the namespace but those
    /// named in `running` (the containers still running): the kernel
    /// removes a finished container's veth pair with the container's own
    /// namespace, in the background, moments after the container's end, and
    /// the next demo should find the host as a reader's would, a while later.
    pub fn settle(&self, running: &[String]) -> io::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut links = Command::new("ip");
            links.args(["-o", "link"]).stdin(Stdio::null());
            self.enter(&mut links)?;
            let out = links.output()?;
            let listed = String::from_utf8_lossy(&out.stdout);
            // `3: veth1234567@if2: <...>`: the name, before its peer's index.
            let stale = |line: &str| {
                line.split(": ")
                    .nth(1)
                    .map(|name| name.split('@').next().unwrap_or(name))
                    .is_some_and(|name| {
                        name.starts_with("veth") && !running.iter().any(|r| r == name)
                    })
            };
            if !listed.lines().any(stale) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "a veth is still there after 10 s:\n{listed}"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Makes `command`'s child join this namespace between fork and exec
    /// (what `ip netns exec` and `nsenter --net` do).
    pub fn enter(&self, command: &mut Command) -> io::Result<()> {
        enter(self.0.try_clone()?, command);
        Ok(())
    }

    /// A descriptor of the namespace of its own, for [`enter`].
    pub fn descriptor(&self) -> io::Result<OwnedFd> {
        self.0.try_clone()
    }
}

/// Makes `command`'s child join the network namespace `fd` between fork and
/// exec. The closure keeps the descriptor (close-on-exec), so the command
/// may outlive whatever held the namespace.
pub fn enter(fd: OwnedFd, command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec, and only
    // calls setns(2), which is async-signal-safe and allocates nothing;
    // `fd` is open until the closure is dropped.
    unsafe {
        command.pre_exec(
            move || match libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) {
                -1 => Err(io::Error::last_os_error()),
                _ => Ok(()),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session's namespace has `lo` up and nothing else, and what runs in
    /// it sees no link of the machine's.
    #[test]
    fn a_new_namespace_has_only_lo_and_it_is_up() {
        if !crate::require_root("harness netns") {
            return;
        }
        let netns = NetNs::new().unwrap();
        let mut ip = Command::new("ip");
        ip.args(["-o", "link"]);
        netns.enter(&mut ip).unwrap();
        let out = ip.output().unwrap();
        let links = String::from_utf8(out.stdout).unwrap();
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(
            links.starts_with("1: lo: <LOOPBACK,UP,LOWER_UP>"),
            "{links}"
        );
    }
}
