//! `--init`: a small PID 1 for the container, like tini (which Docker ships as
//! `docker-init`), run from a sealed copy of minibox.
//!
//! Without `--init` the container's command is PID 1 of its PID namespace
//! (chapter 2), and PID 1 has two duties that programs written for an ordinary
//! life do not expect:
//!
//! - **Orphans come to it.** When a process ends, its children are given to
//!   the init of their PID namespace (or to the nearest *child subreaper*,
//!   `PR_SET_CHILD_SUBREAPER`). When one of them ends in turn, it stays a
//!   *zombie* (no memory, but a PID and an entry in the process table, counted
//!   against the cgroup's `pids.max`) until its parent collects its status
//!   with `wait(2)`. A shell collects any child when it waits; most programs
//!   (a server, `sleep`, a script) only wait for the children they started.
//!   So a container whose command runs `sh -c 'worker &'`-style helpers, or
//!   anything that daemonizes, piles up zombies for as long as it runs, and
//!   with `--pids-limit` (chapter 5) `fork` finally fails.
//! - **Signals it has no handler for never arrive.** The kernel protects a
//!   namespace's init from being killed by accident: a signal whose action is
//!   the default is not delivered to it at all, neither from inside the
//!   namespace nor from outside, except SIGKILL and SIGSTOP from an ancestor
//!   namespace (`pid_namespaces(7)`; the kernel's `SIGNAL_UNKILLABLE`).
//!   "SIGTERM terminates" is a default, so it never happens to PID 1. `sleep`
//!   installs no handler: `docker run busybox sleep 100` ignores the SIGTERM of
//!   `docker stop` and dies only by the SIGKILL ten seconds later, and with
//!   `-t`, Ctrl-C (SIGINT from the terminal) does nothing.
//!
//! The init takes both duties ([`run_init`]): it is PID 1, starts the command
//! as its child, passes every signal it gets on to the command, collects every
//! zombie, and when the command ends exits with its status (128 + N if signal
//! N killed it). The kernel then kills whatever is left in the namespace.
//!
//! ## How it waits
//!
//! As tini does: every catchable signal is *blocked*, and taken one at a time
//! with `sigwaitinfo(2)`. No handler ever runs in the middle of something, so
//! nothing needs to be async-signal-safe. And a blocked signal escapes the PID
//! 1 rule above: the kernel queues it, since the process might install a
//! handler before it unblocks it. So SIGTERM, even from the host, reaches the
//! loop, which sends it on.
//!
//! ## The binary the container can see: CVE-2019-5736
//!
//! The init is minibox itself, in its init mode. Every process's
//! `/proc/PID/exe` is a link to the very file it runs, and it can be opened.
//! In 2019 a container overwrote runc's binary on the host through it
//! (CVE-2019-5736): a process in the container opened `/proc/PID/exe` of a
//! runc process that had entered the container (`docker exec`, or an image
//! whose entrypoint made runc execute itself), kept that descriptor, waited
//! for runc to exit, reopened it for writing through `/proc/self/fd/N`, and
//! wrote its own program there; the next `docker run`, of any container, ran
//! it as root on the host. (Opening it for writing *while* runc ran would have
//! failed with ETXTBSY, as for any program being executed; hence the wait.) An
//! init lives as long as its container, so an init running from minibox's
//! file would offer every container that chance for its whole life.
//!
//! So the init never runs from that file. [`exec_sealed_self`] copies
//! `/proc/self/exe` into an anonymous file in memory (`memfd_create(2)`),
//! *seals* it (`fcntl(2)`, `F_ADD_SEALS`: no writes, no shrinking, no growing,
//! no more seal changes) and executes that copy (`fexecve(3)`). The container's
//! `/proc/1/exe` then names `/memfd:minibox (deleted)`, a file in no
//! filesystem, and no path leads from it to the host. The attack's steps now
//! reach the copy: while it runs, opening it for writing fails with ETXTBSY;
//! once it has ended, the reopen succeeds (seals are checked on writes, not
//! opens), and every write fails with EPERM, the seal's answer.
//!
//! ## Where the sealed exec goes: before `pivot_root`
//!
//! minibox is linked dynamically (cargo's default): the kernel starts it by
//! loading its *interpreter*, `/lib64/ld-linux-x86-64.so.2`, found by path in
//! the current root, which then loads libc the same way. Inside a busybox root
//! neither exists, and the exec fails with ENOENT, although the program itself
//! is a descriptor (`tests/init.rs` shows it). So the sealed copy is executed
//! while the root is still the host's, and enters the container's root
//! itself afterwards, as runc does: `runc init` is started from its sealed
//! copy first and sets up the container from inside. A running program keeps
//! the libraries it has loaded, so `pivot_root` does not disturb it after.
//!
//! SIMPLIFICATION: each container with `--init` holds a full copy of minibox in
//! memory (a memfd costs its size). runc 1.2 and later protect their binary with
//! a private, read-only overlayfs mount of it instead (no copy), and fall back
//! to a memfd only when they cannot mount (rootless). Docker's `--init` avoids
//! the question differently: `docker-init` is a separate, static tini, bind
//! mounted read-only into the container.
//!
//! Kernel interfaces: `wait(2)` (`waitpid`), `sigprocmask(2)`,
//! `sigwaitinfo(2)`, `kill(2)`, `setpgid(2)`, `tcsetpgrp(3)`,
//! `prctl(2)` (`PR_SET_CHILD_SUBREAPER`), `memfd_create(2)`, `fcntl(2)` (file
//! seals), `fexecve(3)` (`execveat(2)`), `pid_namespaces(7)`.

use std::convert::Infallible;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use ch01_fork_exec::exit::{Exit, StartError};
use ch01_fork_exec::process::{self, Forked};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signal::{sigaction, sigprocmask};
use nix::unistd::Pid;

/// Where the init sends the signals it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardTo {
    /// To the command only: tini's default, and so Docker's `--init`. A shell
    /// as the command decides what its own children get.
    Child,
    /// To the command's whole process group (tini's `-g`): also reaches the
    /// children of a command that does not pass signals on itself.
    Group,
}

/// The signals the init leaves to the kernel instead of waiting for them.
///
/// A fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT) is the
/// init's own and must end it at once, not wait in a queue. SIGTTIN and
/// SIGTTOU are ignored instead (see [`run_init`]). SIGKILL and SIGSTOP cannot
/// be blocked or caught at all.
pub const NOT_CAUGHT: [Signal; 11] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGKILL,
    Signal::SIGSTOP,
];

/// Every signal the init takes and passes on (or, SIGCHLD, acts on): all of
/// them, real-time signals included, but [`NOT_CAUGHT`].
pub fn caught_signals() -> SigSet {
    let mut set = SigSet::all();
    for signal in NOT_CAUGHT {
        set.remove(signal);
    }
    set
}

// ANCHOR: run_init
/// Runs a command as the init's child (`exec` execs it) and supervises it: passes on every
/// signal the init gets ([`caught_signals`]) to `forward`, reaps every child
/// that ends (the command's and orphans given to the init), and returns the
/// command's end once it has been reaped. Call it as PID 1 of the container,
/// as the process's last act: it leaves the signal mask as it set it.
///
/// Not PID 1 (a test, or a runtime that keeps its own process as PID 1), the
/// init makes itself a child subreaper, so orphans below it still come to it.
pub fn run_init(exec: impl FnOnce() -> StartError, forward: ForwardTo) -> Result<Exit> {
    if nix::unistd::getpid() != Pid::from_raw(1) {
        nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    }
    // A SIGCHLD ignored by whoever started us would make the kernel reap our
    // children itself, and the command's status would be lost.
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL installs no handler.
    unsafe { sigaction(Signal::SIGCHLD, &default) }.context("sigaction(SIGCHLD)")?;

    let caught = caught_signals();
    let mut original = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&caught), Some(&mut original))
        .context("blocking the signals the init waits for")?;
    // The command's group becomes the terminal's foreground (below); the init,
    // then in the background, must not be stopped for touching the terminal.
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no handler.
    let ttin = unsafe { sigaction(Signal::SIGTTIN, &ignore) }.context("ignoring SIGTTIN")?;
    // SAFETY: as above.
    let ttou = unsafe { sigaction(Signal::SIGTTOU, &ignore) }.context("ignoring SIGTTOU")?;

    let child = match process::fork()? {
        Forked::Child => start_command(exec, &original, [ttin, ttou]),
        Forked::Parent { child } => child,
    };
    // Both sides make the group, so that it exists whichever runs first
    // (a signal for the group could come before the child has run at all).
    let _ = nix::unistd::setpgid(child, child);
    supervise(child, forward, &caught)
}
// ANCHOR_END: run_init

/// In the init's child: the command in a process group of its own, in the
/// terminal's foreground if the init has a terminal (so Ctrl-C reaches the
/// command's group directly, as with tini), with the signal mask and the
/// SIGTTIN/SIGTTOU actions the init found; then exec.
fn start_command(
    exec: impl FnOnce() -> StartError,
    mask: &SigSet,
    [ttin, ttou]: [SigAction; 2],
) -> ! {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let stdin = std::io::stdin();
    if nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
        // Allowed from the background because SIGTTOU is still ignored here.
        let _ = nix::unistd::tcsetpgrp(stdin.as_fd(), nix::unistd::getpgrp());
    }
    // SAFETY: reinstalling the actions the init found (default or ignore: no
    // handler of ours survives exec anyway).
    unsafe {
        let _ = sigaction(Signal::SIGTTIN, &ttin);
        let _ = sigaction(Signal::SIGTTOU, &ttou);
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(mask), None);
    let error = exec();
    ch01_fork_exec::narrate::notice(&error);
    process::exit_now(error.status())
}

// ANCHOR: supervise
/// The init's loop: one signal at a time. SIGCHLD means "some child ended":
/// reap them all, and return once the command is among them. Any other signal
/// is passed on.
fn supervise(child: Pid, forward: ForwardTo, caught: &SigSet) -> Result<Exit> {
    loop {
        let signal = next_signal(caught)?;
        if signal == libc::SIGCHLD {
            if let Some(exit) = reap_all(child)? {
                return Ok(exit);
            }
            continue;
        }
        let target = match forward {
            ForwardTo::Child => child.as_raw(),
            ForwardTo::Group => -child.as_raw(),
        };
        // SAFETY: kill(2) with a signal number the kernel just gave us. `child`
        // has not been reaped (we return as soon as it is), so its PID, and the
        // group named after it, are still the command's.
        unsafe { libc::kill(target, signal) };
    }
}

/// Waits for the next of the `caught` signals, all blocked, and returns its
/// number (a real-time signal too, which nix's `Signal` cannot name).
fn next_signal(caught: &SigSet) -> Result<libc::c_int> {
    loop {
        // SAFETY: sigwaitinfo reads the set through a pointer to a live
        // SigSet; with a null info pointer it writes nothing.
        let signal = unsafe { libc::sigwaitinfo(caught.as_ref(), std::ptr::null_mut()) };
        if signal > 0 {
            return Ok(signal);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            errno => return Err(errno).context("sigwaitinfo"),
        }
    }
}

/// Reaps every child that has ended, without waiting for the others: the
/// command, and the orphans that came to the init. Returns the command's end
/// if it was among them.
///
/// One SIGCHLD may stand for many ends (a pending signal is not counted
/// twice), so one wake-up reaps until none is left.
fn reap_all(command: Pid) -> Result<Option<Exit>> {
    let mut ended = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status through a pointer to a live local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => return Ok(ended), // children left, none ended
            -1 => match Errno::last() {
                Errno::ECHILD => return Ok(ended), // no children left at all
                Errno::EINTR => continue,
                errno => return Err(errno).context("waitpid"),
            },
            pid if pid == command.as_raw() => ended = Some(exit_of(status)),
            _ => {} // an orphan, collected: no zombie left behind
        }
    }
}
// ANCHOR_END: supervise

/// A raw wait status as chapter 1's [`Exit`]. A real-time signal, which
/// [`Signal`] cannot name, becomes the status it stands for, 128 + N.
fn exit_of(status: libc::c_int) -> Exit {
    if libc::WIFSIGNALED(status) {
        let number = libc::WTERMSIG(status);
        Signal::try_from(number).map_or(Exit::Code(128 + number), Exit::Signal)
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// The seals on the copy: no more seals, no shrinking, no growing, no writing.
/// `F_SEAL_SEAL` last makes the set final: nobody can take one off, or add
/// `F_SEAL_FUTURE_WRITE` games later.
pub const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// `MFD_EXEC` (Linux 6.3): this memfd may be executed. On a host whose
/// `vm.memfd_noexec` sysctl makes memfds non-executable by default, a memfd
/// created without it cannot be exec'd. Older kernels reject the flag with
/// EINVAL, and every memfd is executable there.
const MFD_EXEC: libc::c_uint = 0x0010;

/// The name the copy shows in `/proc/PID/exe`: `/memfd:minibox (deleted)`.
const MEMFD_NAME: &CStr = c"minibox";

// ANCHOR: sealed_copy
/// Copies the running program (`/proc/self/exe`) into a new memfd and seals
/// it ([`SEALS`]). The descriptor is close-on-exec: it serves `fexecve` and
/// does not leak into the program started.
pub fn sealed_copy_of_self() -> Result<OwnedFd> {
    let mut exe = File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let memfd = match memfd_create(MEMFD_NAME, flags | MFdFlags::from_bits_retain(MFD_EXEC)) {
        Err(Errno::EINVAL) => memfd_create(MEMFD_NAME, flags), // before Linux 6.3
        result => result,
    }
    .context("memfd_create")?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).context("copying /proc/self/exe into a memfd")?;
    fcntl(&copy, FcntlArg::F_ADD_SEALS(SEALS)).context("sealing the copy (F_ADD_SEALS)")?;
    Ok(OwnedFd::from(copy))
}

/// Replaces the calling process with a sealed copy of its own program
/// ([`sealed_copy_of_self`]), run with `args` (`args[0]` first, then what
/// selects the init mode, e.g. `["minibox", "init", "--", "sh"]`) and the
/// environment `env`. On success it never returns; it returns only why it
/// failed.
///
/// It needs `/proc` (for `/proc/self/exe`), and a root in which minibox's
/// dynamic loader is found (see the module's documentation): call it before
/// `pivot_root`.
pub fn exec_sealed_self<S: AsRef<CStr>>(args: &[S], env: &[CString]) -> Result<Infallible> {
    let copy = sealed_copy_of_self()?;
    exec_sealed(copy.as_fd(), args, env)
}

/// Executes `copy` (a [`sealed_copy_of_self`] made earlier, perhaps in another
/// root) with `args` and the environment `env`: the second half of
/// [`exec_sealed_self`]. Returns only why it failed.
pub fn exec_sealed<S: AsRef<CStr>>(
    copy: BorrowedFd,
    args: &[S],
    env: &[CString],
) -> Result<Infallible> {
    // fexecve(3): execveat(fd, "", ..., AT_EMPTY_PATH), the program given by
    // descriptor. Close-on-exec is no obstacle for a binary (a script would
    // need its descriptor open for the interpreter to read).
    let errno = match nix::unistd::fexecve(copy, args, env) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    let hint = if errno == Errno::ENOENT {
        " (its dynamic loader is not in this root: exec it before pivot_root)"
    } else {
        ""
    };
    Err(errno).with_context(|| format!("executing the sealed copy of minibox{hint}"))
}
// ANCHOR_END: sealed_copy

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_waits_for_every_signal_but_faults_and_terminal_stops() {
        let caught = caught_signals();
        for signal in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGCHLD,
            Signal::SIGHUP,
        ] {
            assert!(caught.contains(signal), "{signal}");
        }
        for signal in NOT_CAUGHT {
            assert!(!caught.contains(signal), "{signal}");
        }
    }

    #[test]
    fn a_wait_status_becomes_chapter_1s_exit() {
        // The layout waitpid(2) uses: code << 8 for an exit, N for signal N.
        assert_eq!(exit_of(7 << 8), Exit::Code(7));
        assert_eq!(exit_of(libc::SIGKILL), Exit::Signal(Signal::SIGKILL));
        assert_eq!(exit_of(libc::SIGTERM).status(), 143);
        assert_eq!(
            exit_of(libc::SIGRTMIN() + 1).status() as i32,
            128 + libc::SIGRTMIN() + 1
        );
    }

    #[test]
    fn the_sealed_copy_is_this_program_and_cannot_change() {
        let copy = File::from(sealed_copy_of_self().unwrap());
        let seals = fcntl(&copy, FcntlArg::F_GET_SEALS).unwrap();
        assert_eq!(SealFlag::from_bits_truncate(seals), SEALS);
        let original = std::fs::metadata("/proc/self/exe").unwrap().len();
        assert_eq!(copy.metadata().unwrap().len(), original);
        // Writing, growing, shrinking: all refused with EPERM.
        use std::os::unix::fs::FileExt;
        let err = copy.write_at(b"x", 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        let err = copy.set_len(original + 1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        let err = copy.set_len(1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }
}
