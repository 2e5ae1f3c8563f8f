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

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use anyhow::{Context, Result};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::Pid;

/// The container's PID 1 (host PID), or 0 before there is one.
static CONTAINER: AtomicI32 = AtomicI32::new(0);
/// How many SIGINTs minibox has had.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

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
        && INTERRUPTS.fetch_add(1, Ordering::Relaxed) + 1 >= INTERRUPTS_BEFORE_KILL;
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
    // not yet reaped, so its PID cannot have been reused.
    unsafe { libc::kill(container, send) };
}

/// From now on, the [`FORWARDED`] signals sent to minibox go to `container`.
pub fn forward_to(container: Pid) -> Result<()> {
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
    Ok(())
}
// ANCHOR_END: forward
