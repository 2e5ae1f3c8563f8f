//! The concept of this chapter: `clone(2)` starts a child in new namespaces.
//!
//! `clone` is the system call underneath `fork`: fork is clone with no flags.
//! Each `CLONE_NEW*` flag gives the child a new namespace of one kind, a fresh copy
//! of one global resource that only it and its descendants see. `CLONE_NEWPID`
//! gives it a new set of process numbers, in which it is PID 1.
//!
//! Why clone and not `unshare(2)` + fork? `unshare(CLONE_NEWPID)` does not move
//! the caller into the new PID namespace: a process's PID never changes, so only
//! the *next* child it forks lands there (as PID 1). `clone` says the same thing
//! in one call: the new namespace is for the new process. The caller, minibox,
//! stays where it was, which is what we want: it has to keep seeing the host.

use anyhow::{Result, anyhow};
use ch01_fork_exec::narrate::Narrator;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// The child's stack size. The child only runs a little setup code on it before
/// exec replaces the whole memory, so 1 MiB is plenty.
pub const STACK_SIZE: usize = 1024 * 1024;

// ANCHOR: clone_child
/// Starts `child` in a new process with new namespaces for `flags` and returns its
/// PID as the caller sees it. Like fork, the new process gets a copy of the
/// caller's memory; unlike fork, it starts by calling `child`, on a stack we hand
/// it, and never returns from `clone_child`.
///
/// Call it only from a single-threaded process (see chapter 1's `fork`).
pub fn clone_child(flags: CloneFlags, child: impl FnMut() -> isize) -> Result<Pid> {
    let mut stack = vec![0u8; STACK_SIZE];
    ch01_fork_exec::process::assert_single_threaded();
    // SAFETY: as for fork (chapter 1), minibox is single-threaded here (debug
    // builds check it just above; chapter 7's download threads are joined). Without
    // CLONE_VM the child runs on its own copy of `stack`, which stays allocated in
    // that copy until exec or _exit; the setup code `child` runs needs far less
    // than STACK_SIZE. SIGCHLD as the exit signal makes the child reapable by a
    // plain waitpid, like a forked one.
    let pid = unsafe {
        nix::sched::clone(
            Box::new(child),
            &mut stack,
            flags,
            Some(Signal::SIGCHLD as i32),
        )
    }
    .map_err(|errno| privileged(errno, format!("clone({})", flag_names(flags))))?;
    Ok(pid)
}
// ANCHOR_END: clone_child

/// Says that the parent, minibox, now calls `clone(2)` with `flags`.
pub fn say_clone(narrator: &Narrator, flags: CloneFlags) {
    narrator.say(format_args!(
        "parent (PID {}) calls clone({})",
        nix::unistd::getpid(),
        flag_names(flags)
    ));
}

/// The flags as the man page spells them: `CLONE_NEWPID|CLONE_NEWUTS`.
pub fn flag_names(flags: CloneFlags) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    names.join("|")
}

// ANCHOR: privileged
/// What namespaces, mounts and pivot_root need, said once: the advice for their
/// EPERM. (Chapter 13, rootless, gets them inside a user namespace instead.)
pub const NEEDS_ROOT: &str = "this needs root (CAP_SYS_ADMIN); run minibox as root or with sudo";

/// Turns an errno from an operation that needs privileges into one clear line:
/// EPERM says what is missing and how to get it ([`NEEDS_ROOT`]), instead of a
/// bare "operation not permitted". Every chapter from here on uses it for
/// namespaces and mounts; an operation that needs something else says so
/// with [`denied`].
pub fn privileged(errno: Errno, operation: String) -> anyhow::Error {
    denied(errno, operation, NEEDS_ROOT)
}

/// Like [`privileged`], with the advice of the operation that failed: what it
/// needs, and how to get it.
pub fn denied(errno: Errno, operation: String, needs: &str) -> anyhow::Error {
    if errno == Errno::EPERM {
        anyhow!("{operation}: operation not permitted: {needs}")
    } else {
        anyhow::Error::new(errno).context(operation)
    }
}
// ANCHOR_END: privileged

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_becomes_advice_and_other_errors_stay_as_they_are() {
        let eperm = privileged(Errno::EPERM, "clone(CLONE_NEWPID)".into());
        assert_eq!(
            eperm.to_string(),
            "clone(CLONE_NEWPID): operation not permitted: this needs root (CAP_SYS_ADMIN); run minibox as root or with sudo"
        );
        let einval = privileged(Errno::EINVAL, "clone(CLONE_NEWPID)".into());
        assert_eq!(
            format!("{einval:#}"),
            "clone(CLONE_NEWPID): EINVAL: Invalid argument"
        );
        assert_eq!(
            flag_names(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS),
            "CLONE_NEWUTS|CLONE_NEWPID"
        );
    }
}
