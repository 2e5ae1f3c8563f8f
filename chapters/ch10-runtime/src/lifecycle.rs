//! Acting on a container's process from another process: signalling it,
//! waiting for its end, stopping it as `docker stop` does.
//!
//! `minibox stop` is not the container's parent (its monitor is), so it
//! cannot `waitpid(2)` for it. And the PID in the state may, by the time
//! `stop` acts, belong to a stranger: the container ended, and the kernel
//! gave its number to a new process. A *pidfd* (`pidfd_open(2)`, Linux 5.3)
//! settles both: it is a descriptor that refers to one process for as long
//! as it is open, whatever its number becomes; `pidfd_send_signal(2)`
//! signals exactly that process, and `poll(2)` on it says when it has ended,
//! for any process, not only a child. The one race left is at the opening:
//! the PID might have been reused *before* `pidfd_open`. So the process's
//! start time is checked after the opening ([`Holder::is_alive`]): if it
//! matches, the descriptor holds the right process.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::str::FromStr;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ch09_networking::ipam::Holder;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

// ANCHOR: pidfd
/// A process held by a pidfd: signalled and waited for by identity, not by
/// number.
#[derive(Debug)]
pub struct Process {
    pidfd: OwnedFd,
}

impl Process {
    /// Opens the process `holder` names, or `None` if it has ended (or its
    /// PID now belongs to another process).
    pub fn open(holder: &Holder) -> Result<Option<Process>> {
        // SAFETY: pidfd_open(2) takes a PID and flags and returns a new
        // descriptor, which is owned here from now on.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, holder.pid, 0) };
        if fd < 0 {
            return match Errno::last() {
                Errno::ESRCH => Ok(None),
                errno => Err(errno).with_context(|| format!("pidfd_open({})", holder.pid)),
            };
        }
        // SAFETY: `fd` is a descriptor pidfd_open just made for us.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // Opened by number: check it is still the process the state means.
        Ok(holder.is_alive().then_some(Process { pidfd }))
    }

    /// Sends `signal`. A process that has ended meanwhile is not an error:
    /// there is nothing left to signal.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        match send(self.pidfd.as_raw_fd(), signal as i32) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(errno) => Err(errno).with_context(|| format!("pidfd_send_signal({signal})")),
        }
    }

    /// Waits until the process has ended, at most `timeout` (`None`: as long
    /// as it takes). Returns whether it has.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, left) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno).context("poll on a pidfd"),
            }
        }
    }
}

/// `pidfd_send_signal(2)`, async-signal-safe (for the foreground `run`'s
/// handler).
fn send(pidfd: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal(2) with a null siginfo and no flags.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<u8>(),
            0,
        )
    };
    if result < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
// ANCHOR_END: pidfd

// ANCHOR: stop
/// `docker stop`: sends `signal` (the image's `StopSignal`, else SIGTERM),
/// waits `grace` for the process to end, then sends SIGKILL and waits for
/// its end. Returns once the process has ended; its monitor records how.
pub fn stop(process: &Process, signal: Signal, grace: Duration) -> Result<()> {
    process.signal(signal)?;
    if !process.wait(Some(grace))? {
        process.signal(Signal::SIGKILL)?;
        process.wait(None)?;
    }
    Ok(())
}
// ANCHOR_END: stop

/// Reads a signal as Docker's `--signal` and `StopSignal` take one: a name
/// with or without `SIG` in any case (`TERM`, `sigkill`), or a number.
pub fn parse_signal(value: &str) -> Result<Signal> {
    if let Ok(number) = value.parse::<i32>() {
        return Signal::try_from(number)
            .ok()
            .filter(|_| number > 0)
            .with_context(|| format!("invalid signal: {value}"));
    }
    let upper = value.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    match Signal::from_str(&name) {
        Ok(signal) => Ok(signal),
        Err(_) => bail!("invalid signal: {value}"),
    }
}

// ANCHOR: forward
/// The monitor of the container a foreground `run` is attached to (0: none).
static MONITOR: AtomicI32 = AtomicI32::new(-1);
/// A pidfd on that container's process (-1: none), for the third Ctrl-C.
static CONTAINER_PIDFD: AtomicI32 = AtomicI32::new(-1);
/// How many SIGINTs the foreground `run` has had.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// The signals a foreground `run` passes on, as `docker run --sig-proxy`.
const PROXIED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The handler: passes the signal to the monitor, which passes it to the
/// container (the monitor is the container's parent: its PID cannot be
/// reused while the container lives). The third SIGINT kills the container
/// through its pidfd, as chapter 5's minibox did, since a PID 1 without a
/// handler ignores SIGINT.
extern "C" fn proxy(signal: libc::c_int) {
    let monitor = MONITOR.load(Ordering::Relaxed);
    if monitor <= 0 {
        return;
    }
    let pidfd = CONTAINER_PIDFD.load(Ordering::Relaxed);
    if signal == libc::SIGINT && INTERRUPTS.fetch_add(1, Ordering::Relaxed) + 1 >= 3 && pidfd >= 0 {
        let _ = send(pidfd, libc::SIGKILL);
        return;
    }
    // SAFETY: kill(2) is async-signal-safe.
    unsafe { libc::kill(monitor, signal) };
}

/// Signal proxying while a foreground `run` is attached; dropping it stops
/// it (the handlers stay, and do nothing).
#[derive(Debug)]
#[must_use = "proxying stops when the guard is dropped"]
pub struct Proxying {
    _container: Option<Process>,
}

impl Drop for Proxying {
    fn drop(&mut self) {
        MONITOR.store(-1, Ordering::Relaxed);
        CONTAINER_PIDFD.store(-1, Ordering::Relaxed);
        INTERRUPTS.store(0, Ordering::Relaxed);
    }
}

/// From now on, until the guard is dropped, SIGINT, SIGTERM, SIGHUP and
/// SIGQUIT sent to minibox (Ctrl-C at the terminal among them: the
/// container is in the monitor's session, not the terminal's) go to the
/// container through `monitor`.
pub fn proxy_signals(monitor: Holder, container: Option<Process>) -> Result<Proxying> {
    let pidfd = container.as_ref().map_or(-1, |c| c.pidfd.as_raw_fd());
    CONTAINER_PIDFD.store(pidfd, Ordering::Relaxed);
    MONITOR.store(monitor.pid, Ordering::Relaxed);
    // SA_RESTART: the client's poll(2) and writes carry on after a signal.
    let action = SigAction::new(
        SigHandler::Handler(proxy),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in PROXIED {
        // SAFETY: `proxy` only touches atomics and makes async-signal-safe
        // system calls.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("sigaction({signal})"))?;
    }
    Ok(Proxying {
        _container: container,
    })
}
// ANCHOR_END: forward

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_read_as_docker_reads_them() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(
            parse_signal("NOPE").unwrap_err().to_string(),
            "invalid signal: NOPE"
        );
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn a_pidfd_waits_for_and_signals_exactly_its_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let holder = Holder::of(child.id() as i32).unwrap().unwrap();
        let process = Process::open(&holder).unwrap().expect("sleep runs");
        assert!(!process.wait(Some(Duration::from_millis(50))).unwrap());
        process.signal(Signal::SIGTERM).unwrap();
        assert!(process.wait(Some(Duration::from_secs(10))).unwrap());
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
        // Ended and reaped: opening it again finds nothing.
        assert!(Process::open(&holder).unwrap().is_none());
    }
}
