//! Running part of a test in a forked child with a private mount namespace of
//! its own: what it mounts never reaches the test's (or the host's) mount
//! table, and is gone when the child exits, whatever happened in it. And the
//! mount points a test compares, read from mountinfo.

use std::ffi::CStr;
use std::fmt::Display;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

/// Runs `f` in a forked child that first unshares its mount namespace and
/// makes every mount in it private (recursively), so nothing it mounts
/// reaches the test and everything is unmounted when it exits. The child's
/// error (shown with `{:#}`, anyhow's chain) or panic travels back through a
/// pipe and fails the test. Needs root.
pub fn in_private_mount_namespace<E: Display>(f: impl FnOnce() -> Result<(), E>) {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two descriptors into the array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the kernel just returned these descriptors; each is owned once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child only runs `f` (which uses the allocator, as forked
    // children of Rust tests commonly do; glibc's malloc is fork-safe) and
    // leaves with _exit, never returning into the test harness.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            drop(read);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                private_mount_namespace()?;
                f().map_err(|e| format!("{e:#}"))
            }));
            let message = match result {
                Ok(Ok(())) => String::new(),
                Ok(Err(message)) => message,
                Err(_) => "the child panicked".to_string(),
            };
            let _ = File::from(write).write_all(message.as_bytes());
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or destructors twice.
            unsafe { libc::_exit(i32::from(!message.is_empty())) }
        }
        child => {
            drop(write);
            let mut message = String::new();
            File::from(read).read_to_string(&mut message).unwrap();
            let mut status = 0;
            // SAFETY: waits for the child forked above, ours to reap.
            assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            assert!(message.is_empty(), "in the child: {message}");
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "the child ended with status {status:#x}"
            );
        }
    }
}

/// unshare(CLONE_NEWNS), then every mount private, recursively.
fn private_mount_namespace() -> Result<(), String> {
    let error = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: unshare(2) with a flag, no pointers.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(error("unshare(CLONE_NEWNS)"));
    }
    let root: &CStr = c"/";
    // SAFETY: a NUL-terminated path and null pointers where mount(2) allows
    // them (no source, type or data for a propagation change).
    let made = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if made != 0 {
        return Err(error("making every mount private"));
    }
    Ok(())
}

/// The mount points of this process's mount namespace, in mountinfo's order.
pub fn mount_points() -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    mount_points_of(&mountinfo)
}

/// The mount points (the fifth field) of a `mountinfo` text, as the kernel
/// escapes them (a space is `\040`).
pub fn mount_points_of(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(str::to_string)
        .collect()
}
