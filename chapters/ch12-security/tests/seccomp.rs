//! seccomp for real: a forked child installs a compiled filter, makes one
//! system call straight through `syscall(2)`, and reports what the kernel
//! answered. Each call is chosen so that, without the filter, the kernel
//! would answer something else (EFAULT, EINVAL, EBADF, success) and harm
//! nothing: a test fails if the filter does not decide.

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;

use ch12_security::capabilities::CapSet;
use ch12_security::seccomp::{Arch, Filter, Profile};
use libc::c_long;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe};

/// What one system call, made under a filter, came to.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// It returned this (not -1).
    Returned(i64),
    /// It failed with this errno.
    Failed(i32),
    /// The filter killed the child.
    Killed(Signal),
    /// The filter could not be installed.
    NotInstalled,
}

use Outcome::*;

/// What the child does before it installs the filter.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Before {
    /// Sets no_new_privs, which lets any process install a filter.
    NoNewPrivs,
    /// Nothing: root installs with CAP_SYS_ADMIN.
    Nothing,
    /// Becomes nobody, which clears its capabilities.
    BecomeNobody,
}

use Before::*;

/// Forks; the child does `before`, installs `filter` and makes `call`, and
/// the result comes back through a pipe. The test process may have other
/// threads: the child only makes system calls and leaves with `_exit`
/// (`install` allocates nothing unless it fails).
fn under(filter: &Filter, before: Before, call: impl Fn() -> c_long) -> Outcome {
    let (read, write) = pipe().unwrap();
    // SAFETY: the child makes only async-signal-safe calls (prctl, setresuid,
    // seccomp, the call, write) and leaves with _exit.
    let ForkResult::Parent { child } = (unsafe { fork() }).unwrap() else {
        match before {
            NoNewPrivs => _ = sys(libc::SYS_prctl, &[libc::PR_SET_NO_NEW_PRIVS.into(), 1]),
            Nothing => {}
            BecomeNobody => _ = sys(libc::SYS_setresuid, &[65534, 65534, 65534]),
        }
        if filter.install().is_err() {
            // SAFETY: _exit(2) leaves without running anything of the parent's.
            unsafe { libc::_exit(2) };
        }
        let returned = call();
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let mut report = [0u8; 12];
        report[..8].copy_from_slice(&returned.to_ne_bytes());
        report[8..].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: write(2) from a buffer of that length; then _exit.
        unsafe {
            libc::write(write.as_raw_fd(), report.as_ptr().cast(), report.len());
            libc::_exit(0);
        }
    };
    drop(write);
    let status = waitpid(child, None).unwrap();
    let mut report = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(read), &mut report).unwrap();
    match status {
        WaitStatus::Exited(_, 0) if report.len() == 12 => {
            let returned = i64::from_ne_bytes(report[..8].try_into().unwrap());
            let errno = i32::from_ne_bytes(report[8..].try_into().unwrap());
            if returned == -1 {
                Failed(errno)
            } else {
                Returned(returned)
            }
        }
        WaitStatus::Exited(_, 2) => NotInstalled,
        WaitStatus::Signaled(_, signal, _) => Killed(signal),
        other => panic!("the child ended unexpectedly: {other:?}"),
    }
}

/// `syscall(2)`, for the calls of these tests.
fn sys(number: c_long, args: &[c_long]) -> c_long {
    let mut all = [0; 5];
    all[..args.len()].copy_from_slice(args);
    let [a, b, c, d, e] = all;
    // SAFETY: the tests pass integers, null, or an address nothing is
    // mapped at (1): the kernel reads from none and writes to none.
    unsafe { libc::syscall(number, a, b, c, d, e) }
}

/// `clone(2)` as `fork` calls it, with `flags` added; the new process, if
/// any, leaves at once.
fn fork_like(flags: c_long) -> c_long {
    let pid = sys(libc::SYS_clone, &[flags | c_long::from(libc::SIGCHLD)]);
    if pid == 0 {
        // SAFETY: the new process (a copy, as after fork) only leaves.
        unsafe { libc::_exit(0) };
    }
    pid
}

/// Docker's default profile for a container with Docker's default
/// capabilities, and `extra`.
fn default_filter(extra: &[&str]) -> Filter {
    let mut caps = CapSet::docker_default().names();
    caps.extend(extra.iter().map(|c| c.to_string()));
    Filter::compile(&Profile::docker_default(), &caps).unwrap()
}

/// An address nothing is mapped at: EFAULT if the call ran.
const BAD: c_long = 1;

// ANCHOR: refused
/// Calls a default container is refused, each with arguments the kernel
/// would reject harmlessly if it ran them.
const REFUSED: [(&str, c_long, &[c_long]); 20] = [
    ("mount", libc::SYS_mount, &[0, 0, 0, 0, 0]),
    ("umount2", libc::SYS_umount2, &[BAD, 0]),
    ("unshare", libc::SYS_unshare, &[libc::CLONE_NEWNS as c_long]),
    (
        "unshare user",
        libc::SYS_unshare,
        &[libc::CLONE_NEWUSER as c_long],
    ),
    ("setns", libc::SYS_setns, &[-1, 0]),
    ("pivot_root", libc::SYS_pivot_root, &[BAD, BAD]),
    ("keyctl", libc::SYS_keyctl, &[0, -3]), // the session keyring's ID
    ("add_key", libc::SYS_add_key, &[BAD, BAD, 0, 0, -3]),
    ("request_key", libc::SYS_request_key, &[BAD, BAD, 0, 0]),
    ("reboot", libc::SYS_reboot, &[0, 0, 0, 0]), // no magic
    ("kexec_load", libc::SYS_kexec_load, &[0, 1000, 0, 0x8000]),
    ("init_module", libc::SYS_init_module, &[0, 0, 0]),
    ("finit_module", libc::SYS_finit_module, &[-1, BAD, 0]),
    ("bpf", libc::SYS_bpf, &[-1, 0, 0]),
    (
        "perf_event_open",
        libc::SYS_perf_event_open,
        &[0, 0, -1, -1, 0],
    ),
    ("userfaultfd", libc::SYS_userfaultfd, &[0xffff]),
    (
        "open_by_handle_at",
        libc::SYS_open_by_handle_at,
        &[-1, BAD, 0],
    ),
    ("clock_settime", libc::SYS_clock_settime, &[0, 0]),
    ("swapon", libc::SYS_swapon, &[BAD, 0]),
    ("acct", libc::SYS_acct, &[BAD]),
];

#[test]
fn a_default_container_is_refused_what_dockers_is_with_eperm() {
    // As root, so that the kernel itself would not answer EPERM.
    if !harness::privilege::require_root("seccomp: the default refuses what Docker's refuses") {
        return;
    }
    let filter = default_filter(&[]);
    for (name, number, args) in REFUSED {
        let call = || sys(number, args);
        assert_eq!(under(&filter, Nothing, call), Failed(libc::EPERM), "{name}");
    }
    let new_namespace = || fork_like(libc::CLONE_NEWNET.into());
    assert_eq!(under(&filter, Nothing, new_namespace), Failed(libc::EPERM));
}
// ANCHOR_END: refused

#[test]
fn clone3_and_calls_newer_than_the_profile_get_enosys() {
    let filter = default_filter(&[]);
    // Without the filter: EINVAL (no arguments), and libc would not fall back.
    let clone3 = || sys(libc::SYS_clone3, &[0, 0]);
    assert_eq!(under(&filter, NoNewPrivs, clone3), Failed(libc::ENOSYS));
    // The profile's highest is removexattrat (466 on both architectures):
    // from 467 on (open_tree_attr, Linux 6.15) the kernel's calls are newer.
    let arch = Arch::this_machine().unwrap();
    let highest = arch.number("removexattrat").unwrap() as c_long;
    for number in [highest + 1, highest + 2, 1000] {
        let call = || sys(number, &[-1, 0, 0, 0, 0]);
        assert_eq!(
            under(&filter, NoNewPrivs, call),
            Failed(libc::ENOSYS),
            "{number}"
        );
    }
    // Below the highest, a call the profile leaves out is refused: EPERM.
    let kexec_file_load = || sys(libc::SYS_kexec_file_load, &[-1, -1, 0, 0, 0x8000]);
    assert_eq!(
        under(&filter, NoNewPrivs, kexec_file_load),
        Failed(libc::EPERM)
    );
}

#[test]
fn ordinary_calls_run() {
    let filter = default_filter(&[]);
    let getpid = || sys(libc::SYS_getpid, &[]);
    assert!(matches!(under(&filter, NoNewPrivs, getpid), Returned(pid) if pid > 1));
    let query = || sys(libc::SYS_personality, &[0xffff_ffff]);
    assert_eq!(
        under(&filter, NoNewPrivs, query),
        Returned(0),
        "personality, the query"
    );
    let chroot = || sys(libc::SYS_chroot, &[0]);
    let expected = Failed(libc::EFAULT);
    assert_eq!(
        under(&filter, NoNewPrivs, chroot),
        expected,
        "CAP_SYS_CHROOT is a default"
    );
    let fork = || fork_like(0);
    assert!(matches!(under(&filter, NoNewPrivs, fork), Returned(pid) if pid > 0));
}

#[test]
fn with_cap_sys_admin_the_filter_lets_unshare_and_clone3_through() {
    if !harness::privilege::require_root("seccomp: CAP_SYS_ADMIN opens unshare") {
        return;
    }
    let filter = default_filter(&["CAP_SYS_ADMIN"]);
    let unshare = || sys(libc::SYS_unshare, &[libc::CLONE_NEWNS.into()]);
    assert_eq!(
        under(&filter, Nothing, unshare),
        Returned(0),
        "the kernel's answer, as root"
    );
    let clone3 = || sys(libc::SYS_clone3, &[0, 0]);
    assert_eq!(
        under(&filter, Nothing, clone3),
        Failed(libc::EINVAL),
        "the kernel's answer"
    );
}

#[test]
fn install_leaves_no_new_privs_to_the_caller() {
    if !harness::privilege::require_root("seccomp: install does not set no_new_privs") {
        return;
    }
    let filter = default_filter(&[]);
    let no_new_privs = || sys(libc::SYS_prctl, &[libc::PR_GET_NO_NEW_PRIVS.into()]);
    assert_eq!(
        under(&filter, Nothing, no_new_privs),
        Returned(0),
        "installed as root: unset"
    );
    assert_eq!(under(&filter, NoNewPrivs, no_new_privs), Returned(1));
}

#[test]
fn without_no_new_privs_a_process_without_cap_sys_admin_cannot_install_a_filter() {
    let filter = default_filter(&[]);
    let getpid = || sys(libc::SYS_getpid, &[]);
    assert_eq!(under(&filter, BecomeNobody, getpid), NotInstalled);
}

/// A profile that allows everything but `getppid`, which gets `action`
/// (with EACCES for an errno).
fn all_but_getppid(action: &str) -> Filter {
    let json = format!(
        r#"{{"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{{"names": ["getppid"], "action": "{action}", "errnoRet": 13}}]}}"#
    );
    Filter::compile(&Profile::parse(&json).unwrap(), &BTreeSet::new()).unwrap()
}

#[test]
fn a_profile_that_allows_by_default_refuses_only_its_rule() {
    let filter = all_but_getppid("SCMP_ACT_ERRNO");
    let getppid = || sys(libc::SYS_getppid, &[]);
    assert_eq!(under(&filter, NoNewPrivs, getppid), Failed(libc::EACCES));
    let getpid = || sys(libc::SYS_getpid, &[]);
    assert!(matches!(under(&filter, NoNewPrivs, getpid), Returned(pid) if pid > 1));
    let unknown = || sys(1000, &[]);
    assert_eq!(
        under(&filter, NoNewPrivs, unknown),
        Failed(libc::ENOSYS),
        "the kernel's"
    );
}

#[test]
fn kill_process_kills_with_sigsys() {
    let filter = all_but_getppid("SCMP_ACT_KILL_PROCESS");
    let getppid = || sys(libc::SYS_getppid, &[]);
    assert_eq!(under(&filter, NoNewPrivs, getppid), Killed(Signal::SIGSYS));
}
