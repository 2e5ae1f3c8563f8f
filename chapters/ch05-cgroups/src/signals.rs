//! Staying alive to clean up. From chapter 5 on, minibox has something to undo
//! when the container ends (its cgroup; from chapter 6, its files), so it must
//! not die first. While the container runs, signals that would end minibox are
//! passed on to the container instead, as `docker run` does (`--sig-proxy`), and
//! minibox waits for the container's end as usual.
//!
//! Two details:
//!
//! - Ctrl-C in a terminal already reaches the container: the kernel sends SIGINT
//!   to the whole foreground process group, minibox and container alike. Only
//!   signals a *process* sent to minibox (`kill`, `timeout`, a supervisor) are
//!   forwarded, or the container would get them twice. `si_code` tells which.
//! - A PID 1 without a handler ignores SIGINT and SIGTERM (chapter 2), so
//!   `minibox run sleep 30` would never stop. The third SIGINT, from anywhere,
//!   sends SIGKILL instead.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

use anyhow::{Context, Result};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::Pid;

/// The container's PID 1 (host PID), or 0 before there is one.
static CONTAINER: AtomicI32 = AtomicI32::new(0);
/// How many SIGINTs minibox has had.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);
/// Whether the [`INTERRUPTS_BEFORE_KILL`]th SIGINT sends SIGKILL.
static KILL_ON_THIRD: AtomicBool = AtomicBool::new(false);

/// After this many SIGINTs, minibox sends SIGKILL.
pub const INTERRUPTS_BEFORE_KILL: u32 = 3;

/// The signals that would otherwise end minibox.
pub const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

// ANCHOR: forward
/// The handler. Only async-signal-safe work: atomics and kill(2).
extern "C" fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let container = CONTAINER.load(Ordering::Relaxed);
    if container <= 0 {
        return;
    }
    let third_interrupt = signal == libc::SIGINT
        && INTERRUPTS.fetch_add(1, Ordering::Relaxed) + 1 >= INTERRUPTS_BEFORE_KILL
        && KILL_ON_THIRD.load(Ordering::Relaxed);
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let from_a_process = unsafe { (*info).si_code } <= 0; // SI_USER, SI_QUEUE, ...
    let send = if third_interrupt {
        libc::SIGKILL
    } else if from_a_process {
        signal
    } else {
        return; // from the terminal: the container got it too
    };
    // SAFETY: kill(2) is async-signal-safe; `container` is minibox's own child,
    // and the guard stops forwarding as soon as it is reaped, so its PID has
    // not been reused.
    unsafe { libc::kill(container, send) };
}

/// What the third SIGINT does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupts {
    /// Docker's `docker run` rule: the third SIGINT, from anywhere, sends
    /// SIGKILL (a PID 1 without a handler ignores SIGINT).
    KillOnThird,
    /// Every SIGINT is forwarded (or, from the terminal, left to the
    /// container): for a caller with its own way to stop the container.
    Forward,
}

/// Signal forwarding, while it lasts: dropping it (once the container has been
/// reaped) stops it. The handlers stay, and ignore the signals from then on, so
/// that minibox still finishes its cleanup.
#[derive(Debug)]
#[must_use = "forwarding stops when the guard is dropped"]
pub struct Forwarding(());

impl Drop for Forwarding {
    fn drop(&mut self) {
        CONTAINER.store(0, Ordering::Relaxed);
        INTERRUPTS.store(0, Ordering::Relaxed);
    }
}

/// From now on, until the guard is dropped, the [`FORWARDED`] signals sent to
/// minibox go to `container`.
pub fn forward_to(container: Pid, interrupts: Interrupts) -> Result<Forwarding> {
    KILL_ON_THIRD.store(interrupts == Interrupts::KillOnThird, Ordering::Relaxed);
    CONTAINER.store(container.as_raw(), Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::SigAction(forward),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in FORWARDED {
        // SAFETY: `forward` only touches atomics and calls kill(2).
        unsafe { sigaction(signal, &action) }.with_context(|| format!("sigaction({signal})"))?;
    }
    Ok(Forwarding(()))
}
// ANCHOR_END: forward
