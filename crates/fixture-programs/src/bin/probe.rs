//! What may this process do? The program of the `minibox/probe` fixture image
//! (chapter 12): it attempts privileged operations one by one, each by a direct
//! system call where it is one, and prints one line per attempt, in a fixed
//! order:
//!
//! ```text
//! mount: ok
//! reboot: EPERM
//! kcore: empty
//! ```
//!
//! `ok` when the call succeeded; otherwise the symbolic name of its errno
//! (`EPERM`, `EACCES`, `ENOSYS`, ...; `errno-N` for one this program does not
//! name). A few probes have a word of their own, said where they are. `caps`
//! is no attempt: it prints the lines of `/proc/self/status` that explain the
//! others (`CapEff: 00000000a80425fb`, `NoNewPrivs: 1`, `Seccomp: 2`).
//!
//! Usage: `probe [NAME...]`: the probes named (all of them without a name),
//! always in the order of [`PROBES`]; exit status 0, or 2 for an unknown name.
//!
//! ## Reading the answers
//!
//! The question each probe asks is "was I stopped?". A seccomp filter that
//! refuses a call makes it fail with EPERM before the kernel looks at the
//! arguments; a missing capability fails with EPERM (a few calls: EACCES) at
//! the call's permission check. Anything else — `ok`, or EINVAL for an
//! argument the kernel rejected *after* the permission check — means the call
//! got through. ENOSYS means the kernel has no such call (built without
//! modules or kexec, say), or a filter that answers ENOSYS instead of EPERM.
//!
//! ## Harmless when allowed
//!
//! In a `--privileged` container, or on the host as root, most of these calls
//! are allowed, so every argument is chosen so that an allowed call changes
//! nothing outside this process: invalid values the kernel rejects only after
//! its permission check (a reboot with a wrong magic number, a module of zero
//! bytes, a BPF program of no instructions), calls on things the probe made
//! itself (a tmpfs on its own new directory, a child it forked), reads, or a
//! write of the value just read. Each probe's comment says why it is harmless.
//! Nothing here restarts, loads, sets the clock or writes to a device.

use std::ffi::{CString, c_void};
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::ptr;

use libc::{c_int, c_long, c_ulong};

/// Every probe, in the order they run and print.
const PROBES: &[(&str, Attempt)] = &[
    ("mount", Attempt::Call(mount)),
    ("umount", Attempt::Call(umount)),
    ("unshare-mnt", Attempt::Unshare(libc::CLONE_NEWNS)),
    ("unshare-uts", Attempt::Unshare(libc::CLONE_NEWUTS)),
    ("unshare-ipc", Attempt::Unshare(libc::CLONE_NEWIPC)),
    ("unshare-net", Attempt::Unshare(libc::CLONE_NEWNET)),
    ("unshare-pid", Attempt::Unshare(libc::CLONE_NEWPID)),
    ("unshare-user", Attempt::Unshare(libc::CLONE_NEWUSER)),
    ("unshare-cgroup", Attempt::Unshare(libc::CLONE_NEWCGROUP)),
    ("unshare-time", Attempt::Unshare(libc::CLONE_NEWTIME)),
    ("keyctl", Attempt::Call(keyctl)),
    ("add_key", Attempt::Call(add_key)),
    ("reboot", Attempt::Call(reboot)),
    ("kexec_load", Attempt::Call(kexec_load)),
    ("init_module", Attempt::Call(init_module)),
    ("bpf", Attempt::Call(bpf)),
    ("perf_event_open", Attempt::Call(perf_event_open)),
    ("userfaultfd", Attempt::Call(userfaultfd)),
    ("open_by_handle_at", Attempt::Call(open_by_handle_at)),
    ("clock_settime", Attempt::Call(clock_settime)),
    ("settimeofday", Attempt::Call(settimeofday)),
    ("kcore", Attempt::Call(kcore)),
    ("sysctl", Attempt::Call(sysctl)),
    ("sysrq", Attempt::Call(sysrq)),
    ("mknod-block", Attempt::Call(mknod_block)),
    ("ptrace", Attempt::Call(ptrace)),
    ("caps", Attempt::Status),
];

/// How a probe makes its attempt.
enum Attempt {
    /// A call in this process.
    Call(fn() -> Outcome),
    /// `unshare(2)` of this namespace kind, in a child process.
    Unshare(c_int),
    /// No attempt: the lines of `/proc/self/status` that explain the others.
    Status,
}

/// What an attempt came to: the word printed after the probe's name when the
/// call succeeded (`ok`, or a probe's own word), or the errno it failed with.
type Outcome = Result<&'static str, Errno>;

fn main() -> ExitCode {
    let names: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = names
        .iter()
        .find(|name| !PROBES.iter().any(|(known, _)| known == name))
    {
        let known: Vec<&str> = PROBES.iter().map(|(name, _)| *name).collect();
        eprintln!(
            "probe: unknown probe {unknown:?}; usage: probe [NAME...], NAME one of: {}",
            known.join(" ")
        );
        return ExitCode::from(2);
    }
    let chosen = PROBES
        .iter()
        .filter(|(name, _)| names.is_empty() || names.iter().any(|n| n == name));
    for (name, attempt) in chosen {
        match attempt {
            Attempt::Call(probe) => report(name, probe()),
            Attempt::Unshare(flag) => report(name, unshare(*flag)),
            Attempt::Status => status(),
        }
    }
    ExitCode::SUCCESS
}

/// Prints `NAME: WORD`.
fn report(name: &str, outcome: Outcome) {
    match outcome {
        Ok(word) => say(&format!("{name}: {word}")),
        Err(errno) => say(&format!("{name}: {errno}")),
    }
}

/// Prints one line, flushed at once (a child forked later must not inherit
/// it). When stdout is gone (`probe | head -1`) there is no one left to tell:
/// stop quietly. Every probe has cleaned up by the time its line is printed.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

// --- Mounts -----------------------------------------------------------------

/// `mount(2)` of a tmpfs on a new directory of the probe's own, unmounted
/// again at once. Harmless when allowed: the directory did not exist a moment
/// before, the tmpfs is empty, and both are gone when the probe returns.
fn mount() -> Outcome {
    let dir = Scratch::new("mount")?;
    mount_tmpfs(&dir.path)?;
    // Detached, so nothing can keep it busy; the directory goes with `dir`.
    let _ = umount2(&dir.path, libc::MNT_DETACH);
    Ok("ok")
}

/// `umount2(2)` of a tmpfs the probe mounted itself, on a new directory of
/// its own. When the mount was refused, of that directory, which is no mount
/// point: the kernel checks the privilege first (EPERM), then the target
/// (EINVAL), so the answer still tells. It never names any other path.
fn umount() -> Outcome {
    let dir = Scratch::new("umount")?;
    let mounted = mount_tmpfs(&dir.path).is_ok();
    let unmounted = umount2(&dir.path, 0);
    if mounted && unmounted.is_err() {
        // A filter that lets mount(2) through and not umount2(2): try once
        // more, detached. If that is refused too, the empty tmpfs stays on
        // our directory, in the mount namespace of a container that let us
        // mount and refused the unmount.
        let _ = umount2(&dir.path, libc::MNT_DETACH);
    }
    unmounted.map(|()| "ok")
}

/// Mounts an empty tmpfs of 4 KiB at most on `dir`, without devices, set-user-ID
/// programs or execution.
fn mount_tmpfs(dir: &Path) -> Result<(), Errno> {
    let target = c_path(dir);
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    sys(unsafe {
        libc::syscall(
            libc::SYS_mount,
            c"minibox-probe".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            flags as c_ulong,
            c"size=4k,mode=0700".as_ptr(),
        )
    })
    .map(drop)
}

/// `umount2(2)` of `dir`.
fn umount2(dir: &Path, flags: c_int) -> Result<(), Errno> {
    let target = c_path(dir);
    // SAFETY: the pointer is a NUL-terminated string that outlives the call.
    sys(unsafe { libc::syscall(libc::SYS_umount2, target.as_ptr(), flags as c_long) }).map(drop)
}

/// A new, empty directory of one probe's own, for its mounts and files:
/// below `/tmp`, or `/dev/shm` when `/tmp` cannot be written (a read-only
/// root). Removed when dropped, with `rmdir`: never recursively, and not
/// while something is still mounted on it.
struct Scratch {
    /// The directory.
    path: PathBuf,
}

impl Scratch {
    /// Creates `BASE/minibox-probe-PID-PROBE-N`, the first N that is free.
    fn new(probe: &str) -> Result<Scratch, Errno> {
        let mut error = Errno(libc::ENOENT);
        for base in ["/tmp", "/dev/shm"] {
            for n in 0..100 {
                let pid = std::process::id();
                let path = PathBuf::from(format!("{base}/minibox-probe-{pid}-{probe}-{n}"));
                match fs::create_dir(&path) {
                    Ok(()) => return Ok(Scratch { path }),
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(err) => {
                        error = err.into();
                        break;
                    }
                }
            }
        }
        Err(error)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

// --- Namespaces and processes -------------------------------------------------

/// `unshare(2)` of one namespace kind, in a child process: the new namespace
/// is the child's alone and ends with it, and this process keeps its own, so
/// that the probes after this one run where they started (a new user
/// namespace, in particular, would change every answer after it).
fn unshare(flag: c_int) -> Outcome {
    in_child(|| {
        // SAFETY: unshare takes a flag word and no pointer.
        unsafe { libc::syscall(libc::SYS_unshare, flag as c_long) }
    })
}

/// Makes the system call `call` in a forked child, which exits with 0 or with
/// the call's errno; returns that. A child killed instead (a seccomp filter
/// whose action is to kill) is reported with the signal's name: `SIGSYS`.
fn in_child(call: impl FnOnce() -> c_long) -> Outcome {
    // SAFETY: this program has one thread, so the child is a full copy; it
    // makes one system call and leaves with _exit (no destructors run, no
    // output is flushed twice).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = if call() == -1 { Errno::last().0 } else { 0 };
        // SAFETY: _exit ends the child at once; it takes no pointer.
        unsafe { libc::_exit(code) }
    }
    sys(pid.into())?;
    match wait(pid)? {
        Ok(0) => Ok("ok"),
        Ok(errno) => Err(Errno(errno)),
        Err(libc::SIGSYS) => Ok("SIGSYS"),
        Err(_) => Ok("killed"),
    }
}

/// Waits for our child `pid` to end: `Ok(exit status)` or `Err(signal)`. A
/// traced child that stops (on a signal) is let go on, with its signal.
fn wait(pid: libc::pid_t) -> Result<Result<c_int, c_int>, Errno> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid place for waitpid to write to.
        sys(unsafe { libc::waitpid(pid, &mut status, 0) }.into())?;
        if libc::WIFEXITED(status) {
            return Ok(Ok(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Err(libc::WTERMSIG(status)));
        }
        if libc::WIFSTOPPED(status) {
            let signal = libc::WSTOPSIG(status) as c_long;
            // SAFETY: integer arguments; pid is our own stopped tracee.
            unsafe {
                libc::syscall(
                    libc::SYS_ptrace,
                    libc::PTRACE_CONT,
                    pid,
                    0 as c_long,
                    signal,
                )
            };
        }
    }
}

/// `ptrace(2)` PTRACE_SEIZE of a child of the probe's own that waits on a
/// pipe. Harmless when allowed: the only process traced is our own child;
/// SEIZE, unlike ATTACH, does not even stop it; it exits when the pipe closes,
/// and the trace ends with it.
fn ptrace() -> Outcome {
    let (reader, writer) = io::pipe()?;
    // SAFETY: one thread; the child only closes a descriptor, reads one byte
    // and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut byte = 0u8;
        // SAFETY: our own descriptors, and a one-byte buffer on our stack.
        unsafe {
            libc::close(writer.as_raw_fd());
            libc::read(reader.as_raw_fd(), (&raw mut byte).cast(), 1);
            libc::_exit(0)
        }
    }
    drop(reader);
    let seized = sys(pid.into()).and_then(|pid| {
        // SAFETY: integer arguments; pid is our own child.
        sys(unsafe {
            libc::syscall(
                libc::SYS_ptrace,
                libc::PTRACE_SEIZE,
                pid,
                0 as c_long,
                0 as c_long,
            )
        })
    });
    drop(writer); // the child reads end-of-file and exits
    if pid > 0 {
        let _ = wait(pid);
    }
    seized.map(|_| "ok")
}

// --- Keys ---------------------------------------------------------------------

/// `keyctl(2)` command and special keyring ID (linux/keyctl.h); the libc crate
/// does not have them.
const KEYCTL_GET_KEYRING_ID: c_long = 0;
/// The calling process's session keyring.
const KEY_SPEC_SESSION_KEYRING: c_long = -3;

/// `keyctl(2)` KEYCTL_GET_KEYRING_ID of the session keyring, without asking
/// for one to be created: a read. (The kernel may give this process the
/// user's session keyring, or create the user's keyrings, on first use: what
/// any process that looks does.) Docker's seccomp profile refuses the whole
/// key management API: the kernel's keyrings are not namespaced.
fn keyctl() -> Outcome {
    // SAFETY: integer arguments only.
    sys(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0 as c_long,
        )
    })?;
    Ok("ok")
}

/// `add_key(2)` of a key of a type that does not exist, to keyring 0, which
/// is no keyring: EINVAL when allowed (no capability guards it: only a filter
/// answers EPERM). Nothing can be created: the keyring is checked first, and
/// the type after it would fail too (ENODEV).
fn add_key() -> Outcome {
    // SAFETY: NUL-terminated strings that outlive the call; no payload.
    sys(unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"minibox-probe-no-such-type".as_ptr(),
            c"minibox-probe".as_ptr(),
            ptr::null::<c_void>(),
            0 as libc::size_t,
            0 as c_long,
        )
    })?;
    Ok("ok")
}

// --- The kernel itself --------------------------------------------------------

/// `reboot(2)` with a wrong second magic number: the kernel checks
/// CAP_SYS_BOOT first (EPERM), then the magic numbers (EINVAL), "for safety",
/// before it looks at the command. So an allowed call is EINVAL and does
/// nothing at all; the command, LINUX_REBOOT_CMD_CAD_OFF (Ctrl-Alt-Del sends
/// SIGINT to init), would never restart anything even with the right magic,
/// and inside a PID namespace is refused (EINVAL) anyway.
fn reboot() -> Outcome {
    let wrong_magic2: c_long = 0;
    // SAFETY: integer arguments and a null pointer the command does not read.
    sys(unsafe {
        libc::syscall(
            libc::SYS_reboot,
            libc::LINUX_REBOOT_MAGIC1 as c_long,
            wrong_magic2,
            libc::LINUX_REBOOT_CMD_CAD_OFF as c_long,
            ptr::null::<c_void>(),
        )
    })?;
    Ok("ok")
}

/// `kexec_load(2)` flags: bit 15 is no flag (the known ones are bits 0–3) and
/// 0xfffe, in the high half, no architecture.
const KEXEC_BOGUS_FLAGS: c_ulong = 0xfffe_8000;
/// One segment more than the kernel accepts (KEXEC_SEGMENT_MAX is 16).
const KEXEC_TOO_MANY_SEGMENTS: c_ulong = 17;

/// `kexec_load(2)` that the kernel rejects after its permission check: unknown
/// flags and too many segments (EINVAL), and no segment list (EFAULT, were it
/// ever read). Not zero segments: `kexec_load` with none *unloads* the loaded
/// kernel (a crash kernel, with KEXEC_ON_CRASH), which is a change.
fn kexec_load() -> Outcome {
    // SAFETY: integers and a null segment list, which the kernel rejects
    // before reading it.
    sys(unsafe {
        libc::syscall(
            libc::SYS_kexec_load,
            0 as c_ulong,
            KEXEC_TOO_MANY_SEGMENTS,
            ptr::null::<c_void>(),
            KEXEC_BOGUS_FLAGS,
        )
    })?;
    Ok("ok")
}

/// `init_module(2)` of a module of zero bytes: the kernel checks
/// CAP_SYS_MODULE first (EPERM), then finds no ELF header (ENOEXEC). Nothing
/// can be loaded from nothing.
fn init_module() -> Outcome {
    let image: [u8; 0] = [];
    // SAFETY: an empty buffer with its length, 0, and an empty parameter string.
    sys(unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            0 as c_ulong,
            c"".as_ptr(),
        )
    })?;
    Ok("ok")
}

/// `bpf(2)`'s command BPF_PROG_LOAD (linux/bpf.h).
const BPF_PROG_LOAD: c_long = 5;
/// A socket filter: the one program type an unprivileged user may load.
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// The head of `union bpf_attr` as BPF_PROG_LOAD reads it (linux/bpf.h); the
/// kernel takes a shorter attribute than its own, the rest zero.
#[repr(C)]
#[derive(Default)]
struct BpfProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// `bpf(2)` BPF_PROG_LOAD of a program of no instructions. Refused: EPERM (a
/// filter, or no CAP_BPF while unprivileged BPF is off); let through: E2BIG,
/// the kernel's answer to zero instructions. Nothing is loaded.
fn bpf() -> Outcome {
    let attr = BpfProgLoad {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        ..BpfProgLoad::default()
    };
    // SAFETY: attr is a valid, initialised bpf_attr head of the size given.
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &raw const attr,
            size_of::<BpfProgLoad>() as c_ulong,
        )
    })?;
    close(fd); // never reached by a kernel that knows better than to load nothing
    Ok("ok")
}

// --- Observing others ---------------------------------------------------------

/// `perf_event_attr`, as large as its first version (PERF_ATTR_SIZE_VER0,
/// 64 bytes; linux/perf_event.h), which every kernel still takes.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// A bit field: `disabled` is bit 0, `exclude_kernel` bit 5,
    /// `exclude_hv` bit 6 (on little-endian machines, as x86_64 and aarch64).
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// `perf_event_open(2)` of the software event that counts nothing
/// (PERF_COUNT_SW_DUMMY), on this process only, user space only, created
/// disabled, then closed. Refused: EACCES (the kernel's perf_event_paranoid
/// setting) or EPERM (a filter). Harmless: a counter that is never enabled, on
/// ourselves.
fn perf_event_open() -> Outcome {
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_COUNT_SW_DUMMY: u64 = 9;
    const DISABLED_USER_ONLY: u64 = 1 | 1 << 5 | 1 << 6;
    const PERF_FLAG_FD_CLOEXEC: c_ulong = 1 << 3;
    let attr = PerfEventAttr {
        kind: PERF_TYPE_SOFTWARE,
        size: size_of::<PerfEventAttr>() as u32,
        config: PERF_COUNT_SW_DUMMY,
        flags: DISABLED_USER_ONLY,
        ..PerfEventAttr::default()
    };
    let (this_process, any_cpu, no_group): (c_long, c_long, c_long) = (0, -1, -1);
    // SAFETY: attr is a valid, initialised perf_event_attr of the size it says.
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &raw const attr,
            this_process,
            any_cpu,
            no_group,
            PERF_FLAG_FD_CLOEXEC,
        )
    })?;
    close(fd);
    Ok("ok")
}

/// `userfaultfd(2)`: a descriptor that would let this process handle page
/// faults of its own memory (the tool of many kernel exploits, to stop the
/// kernel mid-copy); closed at once, no range ever registered. Refused: EPERM
/// (a filter, or vm.unprivileged_userfaultfd off without CAP_SYS_PTRACE).
fn userfaultfd() -> Outcome {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: a flag word, no pointer.
    let fd = sys(unsafe { libc::syscall(libc::SYS_userfaultfd, flags as c_long) })?;
    close(fd);
    Ok("ok")
}

/// The largest file handle the kernel makes (MAX_HANDLE_SZ, linux/fcntl.h).
const MAX_HANDLE_SZ: usize = 128;

/// `struct file_handle` with room for the largest handle (linux/fcntl.h).
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: c_int,
    f_handle: [u8; MAX_HANDLE_SZ],
}

/// `open_by_handle_at(2)`, the call of the "shocker" escape (2014): with
/// CAP_DAC_READ_SEARCH a file handle opens any file of a filesystem, and
/// shocker guessed the handles of the host's files from inside a container.
/// The handle here is one of a file the probe can name anyway (see
/// [`own_handle`]), opened O_PATH: no read, no device opened. Refused: EPERM
/// (the capability, or a filter); allowed: ok.
///
/// Where no such file gives a handle (filesystems without file handles), a
/// handle of zero bytes, which opens nothing: EPERM from a filter, or EINVAL
/// (recent kernels, 6.18 for one, check the handle before the capability, so
/// this fallback tells only about filters).
fn open_by_handle_at() -> Outcome {
    let (mount, handle) = own_handle().unwrap_or_else(|| {
        let empty = FileHandle {
            handle_bytes: 0,
            handle_type: 0,
            f_handle: [0; MAX_HANDLE_SZ],
        };
        (None, empty)
    });
    let mount_fd = mount.as_ref().map_or(libc::AT_FDCWD, AsRawFd::as_raw_fd);
    let flags = libc::O_PATH | libc::O_CLOEXEC;
    // SAFETY: handle is a valid file_handle; mount_fd is open (or AT_FDCWD).
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_fd as c_long,
            &raw const handle,
            flags as c_long,
        )
    })?;
    close(fd);
    Ok("ok")
}

/// `name_to_handle_at(2)` of `/dev/null` or `/` (the first whose filesystem
/// makes handles: a tmpfs `/dev` does, an overlay root usually does not),
/// with that file opened read-only: a descriptor on its mount, which
/// `open_by_handle_at` decodes the handle in (an O_PATH one would not do:
/// EBADF). Opening the null device or a directory reads nothing.
fn own_handle() -> Option<(Option<fs::File>, FileHandle)> {
    ["/dev/null", "/"].into_iter().find_map(|path| {
        let mount = fs::File::open(path).ok()?;
        let mut handle = FileHandle {
            handle_bytes: MAX_HANDLE_SZ as u32,
            handle_type: 0,
            f_handle: [0; MAX_HANDLE_SZ],
        };
        let mut mount_id: c_int = 0;
        // SAFETY: handle has room for the handle_bytes it says, mount_id is
        // an int; the file is an open descriptor with an empty name
        // (AT_EMPTY_PATH).
        sys(unsafe {
            libc::syscall(
                libc::SYS_name_to_handle_at,
                mount.as_raw_fd() as c_long,
                c"".as_ptr(),
                &raw mut handle,
                &raw mut mount_id,
                libc::AT_EMPTY_PATH as c_long,
            )
        })
        .ok()?;
        Some((Some(mount), handle))
    })
}

// --- The clock ----------------------------------------------------------------

/// `struct __kernel_timespec`: what `clock_settime(2)` takes on 64-bit machines.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `clock_settime(2)` of CLOCK_REALTIME to now with one nanosecond too many
/// (1 000 000 000): invalid, so refused even when allowed (EINVAL). Not "now,
/// read just before": setting the clock to any value steps it (backwards, by
/// the time between the two calls), marks it unsynchronised for NTP and wakes
/// every timer that watches for clock changes — a change to the host.
///
/// The kernel checks the value *before* CAP_SYS_TIME, so this tells only
/// whether a filter refuses the call (EPERM); [`settimeofday`] asks about the
/// capability.
fn clock_settime() -> Outcome {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let invalid = KernelTimespec {
        tv_sec: i64::try_from(now).unwrap_or(i64::MAX),
        tv_nsec: 1_000_000_000,
    };
    // SAFETY: invalid is a valid timespec in memory (its value is what is wrong).
    sys(unsafe {
        libc::syscall(
            libc::SYS_clock_settime,
            libc::CLOCK_REALTIME as c_long,
            &raw const invalid,
        )
    })?;
    Ok("ok")
}

/// `struct timezone` (sys/time.h).
#[repr(C)]
struct Timezone {
    minuteswest: c_int,
    dsttime: c_int,
}

/// `settimeofday(2)` with no time and a time zone 24 hours west of Greenwich:
/// the kernel checks CAP_SYS_TIME first (EPERM), then that the zone is within
/// 15 hours (EINVAL, since Linux 4.6). Nothing is set.
fn settimeofday() -> Outcome {
    let out_of_range = Timezone {
        minuteswest: 24 * 60,
        dsttime: 0,
    };
    // SAFETY: no time (null), and a valid timezone in memory.
    sys(unsafe {
        libc::syscall(
            libc::SYS_settimeofday,
            ptr::null::<c_void>(),
            &raw const out_of_range,
        )
    })?;
    Ok("ok")
}

// --- /proc and devices --------------------------------------------------------

/// Opens `/proc/kcore` (the kernel's memory, as an ELF core file) and reads
/// its first byte: a read. `empty` when the read finds nothing: the path is
/// masked (Docker binds `/dev/null` over it).
fn kcore() -> Outcome {
    read_start(Path::new("/proc/kcore"), 1)
}

/// Opens `path` read-only and reads up to `len` bytes from its start: `ok`,
/// or `empty` when there was nothing to read.
fn read_start(path: &Path, len: usize) -> Outcome {
    let mut file = fs::File::open(path)?;
    let mut buffer = vec![0u8; len];
    match file.read(&mut buffer)? {
        0 => Ok("empty"),
        _ => Ok("ok"),
    }
}

/// Writes the hostname back to `/proc/sys/kernel/hostname`, the value just
/// read from it. Refused: EROFS (`/proc/sys` mounted read-only, as Docker
/// does) or EACCES. Harmless: the hostname belongs to the UTS namespace, and
/// is written unchanged.
fn sysctl() -> Outcome {
    let path = "/proc/sys/kernel/hostname";
    let hostname = fs::read(path)?;
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(&hostname)?;
    Ok("ok")
}

/// Opens `/proc/sysrq-trigger` for writing, and closes it without writing a
/// byte (one byte there can crash or restart the machine). Refused: EROFS (a
/// read-only path, as Docker makes it), EACCES or ENOENT (masked or absent).
fn sysrq() -> Outcome {
    let trigger = fs::OpenOptions::new()
        .write(true)
        .open("/proc/sysrq-trigger")?;
    drop(trigger);
    Ok("ok")
}

/// Makes a block device node in a new directory of the probe's own, with the
/// numbers of the disk (see [`block_device`]), opens it read-only and reads
/// 512 bytes; removes it. The first step that fails gives the answer: EPERM
/// from `mknod` (no CAP_MKNOD) or from `open` (the device rules of the
/// container's cgroup), ENXIO for a device that is not there. Harmless: a
/// read; the node is removed.
fn mknod_block() -> Outcome {
    let dir = Scratch::new("mknod-block")?;
    let node = dir.path.join("disk");
    let (major, minor) = block_device();
    let result = mknod(&node, major, minor).and_then(|()| read_start(&node, 512));
    let _ = fs::remove_file(&node);
    result
}

/// `mknod(2)` (as `mknodat`, which every architecture has) of a block device
/// node, readable and writable by its owner only.
fn mknod(node: &Path, major: u32, minor: u32) -> Result<(), Errno> {
    let path = c_path(node);
    let mode = libc::S_IFBLK | 0o600;
    let device = libc::makedev(major, minor);
    // SAFETY: a NUL-terminated path that outlives the call, and integers.
    sys(unsafe {
        libc::syscall(
            libc::SYS_mknodat,
            libc::AT_FDCWD as c_long,
            path.as_ptr(),
            mode as c_long,
            device as c_ulong,
        )
    })
    .map(drop)
}

/// The block device to try: the one `/` is on (`/proc/self/mountinfo`); else,
/// when `/` has none (an overlay, as in a container), the first disk in
/// `/proc/partitions`, which is not namespaced; else loop0 (7:0).
fn block_device() -> (u32, u32) {
    root_device().or_else(first_disk).unwrap_or((LOOP_MAJOR, 0))
}

/// The major number of loop devices.
const LOOP_MAJOR: u32 = 7;
/// The major number of RAM disks.
const RAM_MAJOR: u32 = 1;

/// The device numbers of the filesystem mounted on `/` (the last such mount:
/// the one on top), unless they are anonymous (major 0).
fn root_device() -> Option<(u32, u32)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    // ID PARENT MAJOR:MINOR ROOT MOUNT-POINT ...
    let root = mountinfo
        .lines()
        .map(|line| line.split(' ').collect::<Vec<_>>())
        .rfind(|fields| fields.get(4) == Some(&"/"))?;
    let (major, minor) = root.get(2)?.split_once(':')?;
    let device = (major.parse().ok()?, minor.parse().ok()?);
    (device.0 != 0).then_some(device)
}

/// The first entry of `/proc/partitions` that is not a loop device or a RAM
/// disk.
fn first_disk() -> Option<(u32, u32)> {
    let partitions = fs::read_to_string("/proc/partitions").ok()?;
    // major minor #blocks name
    partitions.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let major: u32 = fields.next()?.parse().ok()?;
        let minor: u32 = fields.next()?.parse().ok()?;
        (major != LOOP_MAJOR && major != RAM_MAJOR).then_some((major, minor))
    })
}

// --- Status -------------------------------------------------------------------

/// The lines of `/proc/self/status` that explain the answers: the capability
/// sets (inheritable, permitted, effective, bounding, ambient; hexadecimal
/// masks, bit N for capability N), no_new_privs, and the seccomp mode (0
/// none, 2 a filter).
const STATUS_KEYS: [&str; 7] = [
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
];

/// Prints [`STATUS_KEYS`] from `/proc/self/status` as `KEY: VALUE`, or
/// `caps: ERRNO` when it cannot be read (no `/proc`).
fn status() {
    let status = match fs::read_to_string("/proc/self/status") {
        Ok(status) => status,
        Err(err) => return report("caps", Err(err.into())),
    };
    for key in STATUS_KEYS {
        let value = status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'));
        if let Some(value) = value {
            say(&format!("{key}: {}", value.trim()));
        }
    }
}

// --- Errors -------------------------------------------------------------------

/// An errno value, shown as its symbolic name.
#[derive(Debug, Clone, Copy)]
struct Errno(c_int);

impl Errno {
    /// This thread's errno, right after a call that failed.
    fn last() -> Errno {
        Errno(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

impl From<io::Error> for Errno {
    fn from(err: io::Error) -> Errno {
        Errno(err.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// A system call's return value, or its errno when it returned -1.
fn sys(ret: c_long) -> Result<c_long, Errno> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Closes a descriptor a probe opened.
fn close(fd: c_long) {
    // SAFETY: fd is a descriptor this process just opened and owns alone.
    unsafe { libc::close(fd as c_int) };
}

/// A path as the NUL-terminated string a system call takes.
fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("the probe's own paths have no NUL")
}

/// `errno_name(N)`: the symbolic name of errno N, for those listed.
macro_rules! errno_names {
    ($($name:ident),* $(,)?) => {
        fn errno_name(errno: c_int) -> Option<&'static str> {
            match errno {
                $(libc::$name => Some(stringify!($name)),)*
                _ => None,
            }
        }
    };
}

// The errnos these probes can meet, and their neighbours. Aliases
// (EWOULDBLOCK, ENOTSUP, EDEADLOCK) are left out: they are the same numbers.
errno_names!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    ENOTBLK,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    ETXTBSY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    ERANGE,
    ENAMETOOLONG,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENODATA,
    EOVERFLOW,
    EBADMSG,
    EOPNOTSUPP,
    ESTALE,
    ECANCELED,
    ENOMEDIUM,
    ENOKEY,
    EKEYEXPIRED,
    EKEYREVOKED,
    EKEYREJECTED,
);

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match errno_name(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "errno-{}", self.0),
        }
    }
}
