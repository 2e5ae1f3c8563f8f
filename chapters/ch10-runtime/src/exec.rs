//! `exec`: running one more process inside a container that already runs,
//! as `docker exec` does.
//!
//! A container is not a thing the kernel knows; it is a process (its PID 1)
//! and what that process is in: a set of namespaces and a cgroup. So "run a
//! command in that container" means: make a process that is in the *same*
//! namespaces and the same cgroup, and exec the command there. Chapters 2 to
//! 9 made namespaces with `clone(2)` flags; here a process joins existing
//! ones with `setns(2)`.
//!
//! # Joining a namespace: `setns(2)`
//!
//! Every namespace a process is in shows as a file in `/proc/PID/ns/`
//! (`namespaces(7)`): `ipc`, `uts`, `net`, `pid`, `mnt`, `cgroup`, `user`.
//! Opening one gives a descriptor that holds the namespace alive, and
//! `setns(fd, 0)` moves the calling thread into it. [`exec`] does it in this
//! order, which is not arbitrary:
//!
//! 1. **Open them all first, before any `setns`.** The paths are read through
//!    the host's `/proc`, in the host's mount namespace. Once the process has
//!    entered the container's mount namespace, `/proc` is whatever the
//!    container mounted there (its own proc, for its own PID namespace, in
//!    which the host's PID of its init means nothing). Descriptors opened
//!    before stay valid wherever the process goes. They also pin the
//!    container: if it ends while we work, the namespaces live on until we
//!    close them, so nothing half-joined happens. The liveness check (by PID
//!    *and* start time, [`Holder::is_alive`]) is made again after the opens,
//!    so a PID reused in between is never taken for the container.
//! 2. **The cgroup, before any namespace**: the child moves itself into
//!    each of the container's cgroup directories by its host path, which
//!    exists only in the host's mount namespace (chapter 5's `join_self`, as
//!    the container's own first process does). From then on everything it forks is the container's
//!    (counted against its `pids.max` and memory limit).
//! 3. **`user` first**, when the container has its own: the container's other
//!    namespaces are owned by it, and joining them needs `CAP_SYS_ADMIN` in
//!    that owner; entering the user namespace gives the process a full set of
//!    capabilities there.
//! 4. **`ipc`, `uts`, `net`, `cgroup`, `pid`**: independent of each other.
//!    `setns` into a PID namespace does *not* move the caller (its PID cannot
//!    change); it decides where the caller's *next children* are born.
//! 5. **`mnt` last**: it replaces the process's root and working directory
//!    with the namespace's root, so after it no host path means what it did.
//!    Nothing after it may need one.
//!
//! A namespace the container shares with us (no user namespace, say) is
//! skipped: `setns` into one's own user namespace fails with `EINVAL`.
//!
//! # Why two forks
//!
//! - **The first fork makes a single-threaded process.** The kernel refuses
//!   `setns` into a user namespace (`EINVAL`) and into a mount namespace for a
//!   process whose threads share their filesystem context (`CLONE_FS`), i.e.
//!   any multithreaded process. minibox starts threads in places (chapter 7's
//!   parallel downloads, a test harness), so the joining is done in a freshly
//!   forked child, which has exactly one thread. runc meets the same rule
//!   differently: Go starts threads before `main`, so runc's `nsexec` does the
//!   joining in C, in a constructor that runs before the Go runtime starts.
//! - **The second fork enters the PID namespace.** After `setns` into the PID
//!   namespace, the first child is still in the host's; only its children are
//!   born in the container's. So it forks again: the grandchild is in the
//!   container's PID namespace (its PID there is not 1, which the container's
//!   init holds) and inherits everything else. It becomes the user, enters the
//!   working directory and execs the command. The first child waits for it and
//!   exits with its status (128 + N for signal N), which [`exec`] returns.
//!
//! ```text
//!  minibox exec ──fork──▶ joiner ──fork──▶ command (in the container's PID ns)
//!    │  opens /proc/PID/ns/*   │ joins cgroups, setns × N     │ chdir /, workdir, user, execve
//!    │◀── error pipe (CLOEXEC: closes at exec) ────────────────┘
//!    └ waits for the joiner, which waits for the command and exits with its status
//! ```
//!
//! # What `docker exec` does
//!
//! The Docker client asks the daemon to create an *exec instance* (the
//! command, `-e`, `-w`, `-u`, `-t`) and then to start it. The daemon checks
//! that the container runs (else `Container ID is not running`, a conflict),
//! merges the container's environment with `-e`, and asks containerd, which
//! asks the container's shim, which runs `runc exec` with the process as JSON.
//! runc's `nsexec` joins the namespaces as above, and runc's Go side puts the
//! process in the cgroup, applies the user, capabilities, seccomp and
//! AppArmor, and execs. The shim reports the exit status, which becomes the
//! client's. minibox has no daemon: the caller reads the container's state
//! ([`crate::state`]), builds the [`Process`] (the container's environment
//! with `-e` over it, `-u`, `-w`) and calls [`exec`].
//!
//! Kernel interfaces: `setns(2)`, `namespaces(7)`, `pid_namespaces(7)`,
//! `fork(2)`, `pipe2(2)` (`O_CLOEXEC`), `cgroups(7)` (`cgroup.procs`),
//! `chdir(2)`, `execve(2)`, `waitpid(2)`.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::{Result, anyhow};
use ch01_fork_exec::exit::{CANNOT_INVOKE, Exit, MINIBOX_FAILED};
use ch01_fork_exec::process;
use ch05_cgroups::cgroup;
use ch08_command_override::exec::Process;

use crate::hardening::{self, Confinement};
use ch09_networking::ipam::Holder;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};

/// The container to run a process in: what its state on disk says.
#[derive(Debug, Clone)]
pub struct Target {
    /// The container's ID, for the messages (Docker names the full ID).
    pub id: String,
    /// Its PID 1 as the host sees it, with its start time; `None` when the
    /// state says it is not running.
    pub process: Option<Holder>,
    /// Its cgroup directories, one per hierarchy (chapter 5's
    /// `Cgroup::paths`): the process joins each from inside (chapter 5's
    /// `join_self`). Paths rather than a `&dyn Cgroup`, because the joining
    /// is done by the forked child, with nothing but a write.
    pub cgroups: Vec<PathBuf>,
    /// The flags a later chapter added to its `run`: the process is
    /// hardened as the container's was ([`crate::hardening`]).
    pub extra: Vec<String>,
}

/// Where the process's standard streams go: a descriptor for each of stdin,
/// stdout and stderr, or `None` to inherit the caller's. A terminal for `-t`
/// ([`crate::terminal`]) is passed here too.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stdio<'a> {
    /// Standard input.
    pub stdin: Option<BorrowedFd<'a>>,
    /// Standard output.
    pub stdout: Option<BorrowedFd<'a>>,
    /// Standard error.
    pub stderr: Option<BorrowedFd<'a>>,
    /// `-t`: a console socket. The process opens a pty in the container's
    /// own devpts, sends its master here, and takes the slave as its
    /// controlling terminal and its standard streams (as `run -t` does).
    pub console: Option<BorrowedFd<'a>>,
}

/// Why `exec` ran nothing, in Docker's words, with the status `docker exec`
/// exits with. A caller prints it and exits with [`ExecError::status`].
#[derive(Debug)]
pub enum ExecError {
    /// The container is not running (or its process is gone): nothing ran.
    NotRunning(String),
    /// The process could not be started inside the container: a namespace
    /// could not be joined, the user or working directory failed, or the
    /// program could not be executed (chapter 8's messages).
    Start {
        /// What went wrong, as the child saw it.
        message: String,
        /// 127 for a program not found, 126 otherwise.
        status: u8,
    },
    /// Something failed on minibox's side, before anything was forked.
    Other(anyhow::Error),
}

impl ExecError {
    /// The exit status: Docker's client exits 1 for a daemon's refusal (the
    /// container is not running), 126 or 127 for a runtime that could not
    /// start the process (as chapter 1 for `run`), and minibox 125 for its own
    /// failures.
    pub fn status(&self) -> u8 {
        match self {
            ExecError::NotRunning(_) => 1,
            ExecError::Start { status, .. } => *status,
            ExecError::Other(_) => MINIBOX_FAILED,
        }
    }
}

// Docker's messages are kept word for word, capitals included (see
// `state::StoreError`): moby's `errNotRunning` is `errdefs.Conflict("Container
// %s is not running")`, and runc's start errors come back through containerd
// wrapped as below.
impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::NotRunning(id) => write!(f, "Container {id} is not running"),
            ExecError::Start { message, .. } => write!(
                f,
                "OCI runtime exec failed: exec failed: unable to start container process: {message}: unknown"
            ),
            ExecError::Other(error) => write!(f, "{error:#}"),
        }
    }
}

impl std::error::Error for ExecError {}

/// The namespaces joined, in the order they are joined (see the module's
/// documentation): `user` first, `mnt` last.
// SIMPLIFICATION: no `time` namespace (Linux 5.6): minibox never makes one.
// runc joins every namespace listed in the container's config, `time` included.
pub const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// What the joining child enters, and how it is hardened.
struct Joining<'a> {
    cgroups: &'a [PathBuf],
    namespaces: &'a [Namespace],
    confinement: &'a dyn Confinement,
}

/// One of the container's namespaces, opened from the host's `/proc`.
struct Namespace {
    name: &'static str,
    flag: CloneFlags,
    file: File,
}

// ANCHOR: exec
/// Runs `process` inside the running container `target`: in all of its
/// namespaces and its cgroups, as the user and in the working directory
/// `process` names, with `stdio`. Returns how the process ended (its status
/// is `docker exec`'s), or why nothing ran.
///
/// Callable from a multithreaded process: the joining happens in a forked
/// child (see the module's documentation).
pub fn exec(target: &Target, process: &Process, stdio: Stdio) -> Result<Exit, ExecError> {
    exec_then(target, process, stdio, || Ok(true))
}

/// [`exec`], with `running` called once the process runs (the place to copy
/// its terminal, `-t`); it returns whether to wait for the process's end
/// (`exec -d` does not: the process runs on, and `Exit::Code(0)` comes back).
pub fn exec_then(
    target: &Target,
    process: &Process,
    stdio: Stdio,
    running: impl FnOnce() -> anyhow::Result<bool>,
) -> Result<Exit, ExecError> {
    let confinement = hardening::confinement(&target.extra).map_err(ExecError::Other)?;
    let program = || match process.enter_with(confinement.as_ref()) {
        Ok(entered) => {
            let error = process.exec(&entered);
            (error.status(), error.to_string())
        }
        Err(e) => (CANNOT_INVOKE, format!("{e:#}")),
    };
    let ran = run_program(
        target,
        confinement.as_ref(),
        &program,
        stdio,
        false,
        running,
    )?;
    match ran {
        Ran::Ended(exit) => Ok(exit),
        Ran::Left(_) => Ok(Exit::Code(0)),
    }
}

/// How [`run_program`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// The program ran and ended (or, detached, runs on under the joining
    /// child): its exit.
    Ended(Exit),
    /// The joining child left as soon as the program ran: the program, host
    /// PID here, is an orphan that the caller's subreaper collects.
    Left(Pid),
}

/// The general form of [`exec_then`], for a later chapter: `confinement` is
/// given, `program` runs in the grandchild once it is inside (after its
/// stdio, the root and the console) and returns only why it could not exec,
/// with the status. With `leave`, the joining child exits as soon as the
/// program runs (chapter 14's `exec --detach`: containerd's shim and conmon
/// must reap the program themselves, as its subreaper).
pub fn run_program(
    target: &Target,
    confinement: &dyn Confinement,
    program: &dyn Fn() -> (u8, String),
    stdio: Stdio,
    leave: bool,
    running: impl FnOnce() -> anyhow::Result<bool>,
) -> Result<Ran, ExecError> {
    let namespaces = container_namespaces(target)?;
    let pipe = || {
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ExecError::Other(anyhow!("pipe2: {e}")))
    };
    let ((report_read, report_write), (pid_read, pid_write)) = (pipe()?, pipe()?);

    // SAFETY: the caller may have other threads. The child has one (fork
    // copies only the calling thread) and uses no lock that another thread
    // could have held at the fork: it makes system calls, allocates (glibc
    // takes its allocator's locks around fork, so they are consistent in the
    // child), writes to its pipe, and never touches Rust's stdout or the
    // environment lock. It ends in `_exit` or `execve`.
    let joiner = match unsafe { nix::unistd::fork() } {
        Err(errno) => return Err(ExecError::Other(anyhow!("fork: {errno}"))),
        Ok(ForkResult::Child) => {
            drop(report_read);
            drop(pid_read);
            let joining = Joining {
                cgroups: &target.cgroups,
                namespaces: &namespaces,
                confinement,
            };
            let leaving = leave.then_some(pid_write);
            join_and_run(&joining, program, stdio, report_write, leaving)
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop(report_write);
    drop(pid_write);
    drop(namespaces);
    // End of file when the command has been exec'd (the pipe is
    // close-on-exec) or when both children have ended.
    let mut report = Vec::new();
    let read = File::from(report_read).read_to_end(&mut report);
    if report.is_empty() && read.is_ok() {
        if leave {
            let _ = process::wait_for(joiner);
            return left_pid(pid_read).map(Ran::Left);
        }
        match running() {
            Ok(true) => {}
            Ok(false) => return Ok(Ran::Ended(Exit::Code(0))), // detached: the joiner waits on
            Err(error) => {
                let _ = process::wait_for(joiner);
                return Err(ExecError::Other(error));
            }
        }
    }
    let end = process::wait_for(joiner).map_err(ExecError::Other)?;
    read.map_err(|e| ExecError::Other(anyhow!("reading the child's report: {e}")))?;
    match report.split_first() {
        None => Ok(Ran::Ended(end)),
        Some((&status, message)) => Err(ExecError::Start {
            message: String::from_utf8_lossy(message).into_owned(),
            status,
        }),
    }
}
// ANCHOR_END: exec

/// The PID the joining child wrote before it left.
fn left_pid(pid_read: OwnedFd) -> Result<Pid, ExecError> {
    let mut pid = String::new();
    let _ = File::from(pid_read).read_to_string(&mut pid);
    let pid = pid.parse().map_err(|_| {
        ExecError::Other(anyhow!("the joining child did not say the process's PID"))
    })?;
    Ok(Pid::from_raw(pid))
}

/// The namespaces of `target`'s PID 1 that are not ours, opened, or why
/// not: it does not run (any more).
fn container_namespaces(target: &Target) -> Result<Vec<Namespace>, ExecError> {
    let not_running = || ExecError::NotRunning(target.id.clone());
    let holder = target
        .process
        .filter(Holder::is_alive)
        .ok_or_else(not_running)?;
    let namespaces = match open_namespaces(holder.pid) {
        Ok(namespaces) => namespaces,
        Err(errno) if errno == Errno::ENOENT || errno == Errno::ESRCH => return Err(not_running()),
        Err(errno) => {
            return Err(ExecError::Other(anyhow!(
                "opening /proc/{}/ns: {errno}",
                holder.pid
            )));
        }
    };
    // The descriptors now hold the namespaces; make sure they are the
    // container's and not those of a process that reused its PID.
    if !holder.is_alive() {
        return Err(not_running());
    }
    Ok(namespaces)
}

/// Opens the namespaces of process `pid` that are not ours, in [`NAMESPACES`]
/// order. `ENOENT` means the process is gone (or a zombie, which has no
/// namespaces left).
fn open_namespaces(pid: i32) -> Result<Vec<Namespace>, Errno> {
    let mut opened = Vec::new();
    for (name, flag) in NAMESPACES {
        let file = File::open(format!("/proc/{pid}/ns/{name}")).map_err(errno_of)?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).map_err(errno_of)?;
        let theirs = file.metadata().map_err(errno_of)?;
        if (ours.dev(), ours.ino()) != (theirs.dev(), theirs.ino()) {
            opened.push(Namespace { name, flag, file });
        }
    }
    Ok(opened)
}

fn errno_of(error: std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

// ANCHOR: join
/// In the first child: joins the cgroups, then each namespace, forks the
/// command into the PID namespace, waits for it and exits with its status
/// (with `leaving`, says its PID there and exits at once). Any failure goes
/// to `report` and ends the child with its status.
fn join_and_run(
    joining: &Joining,
    program: &dyn Fn() -> (u8, String),
    stdio: Stdio,
    report: OwnedFd,
    leaving: Option<OwnedFd>,
) -> ! {
    if let Err(error) = joining.confinement.before_join() {
        fail(&report, CANNOT_INVOKE, format!("{error:#}"));
    }
    for dir in joining.cgroups {
        if let Err(error) = cgroup::join_self(dir) {
            fail(
                &report,
                CANNOT_INVOKE,
                format!("joining the cgroup: {error:#}"),
            );
        }
    }
    for ns in joining.namespaces {
        if let Err(errno) = nix::sched::setns(ns.file.as_fd(), ns.flag) {
            fail(
                &report,
                CANNOT_INVOKE,
                format!("setns {}: {}", ns.name, errno.desc()),
            );
        }
    }
    // SAFETY: this process has a single thread (it was just forked), so the
    // grandchild's copy of memory holds no lock a missing thread held.
    let command = match unsafe { nix::unistd::fork() } {
        Err(errno) => fail(&report, CANNOT_INVOKE, format!("fork: {}", errno.desc())),
        Ok(ForkResult::Child) => start(program, stdio, &report),
        Ok(ForkResult::Parent { child }) => child,
    };
    // Only the command keeps the pipe open, until its exec closes it.
    drop(report);
    if let Some(pid) = leaving {
        let _ = nix::unistd::write(&pid, command.as_raw().to_string().as_bytes());
        process::exit_now(0);
    }
    // SIMPLIFICATION: runc's `exec` (through the shim) passes the signals
    // sent to it on to the process; this waiting child passes none.
    match process::wait_for(command) {
        Ok(end) => process::exit_now(end.status()),
        Err(_) => process::exit_now(MINIBOX_FAILED),
    }
}
// ANCHOR_END: join

// ANCHOR: start
/// In the grandchild, inside the container's PID namespace: the standard
/// streams, the root, the user and the working directory, then exec.
fn start(program: &dyn Fn() -> (u8, String), stdio: Stdio, report: &OwnedFd) -> ! {
    for (fd, target) in [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] {
        if let Some(fd) = fd {
            // SAFETY: dup2(2) on a descriptor the caller lent us for the call;
            // the target numbers are the standard streams, which we replace.
            if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
                fail(
                    report,
                    CANNOT_INVOKE,
                    format!("dup2: {}", Errno::last().desc()),
                );
            }
        }
    }
    // After setns(mnt) the working directory is the namespace's root, but
    // the path the process had is no longer meaningful; start from "/".
    // SIMPLIFICATION: a container whose init chroot()ed (instead of
    // pivot_root, as runc and minibox do) would need its root too:
    // nsenter(1) opens /proc/PID/root with the namespaces and chroot()s to it.
    if let Err(errno) = nix::unistd::chdir(c"/") {
        fail(report, CANNOT_INVOKE, format!("chdir /: {}", errno.desc()));
    }
    if let Some(console) = stdio.console
        && let Err(error) = crate::terminal::open_console(console, None)
    {
        fail(report, CANNOT_INVOKE, format!("{error:#}"));
    }
    // The container's capabilities, no_new_privs and seccomp filter, as
    // runc applies them to an exec'd process (chapter 12's; none before).
    // SIMPLIFICATION: `docker exec --privileged` widens them; minibox's
    // `exec` has no such flag. No exec FIFO either: runc's `exec` waits on
    // none (only `create`/`start` do).
    let (status, message) = program();
    fail(report, status, message)
}
// ANCHOR_END: start

/// In either child: sends why it failed (`status`, then the message) through
/// `report`, and ends with `status`.
fn fail(report: &OwnedFd, status: u8, message: String) -> ! {
    let mut bytes = vec![status];
    bytes.extend_from_slice(message.as_bytes());
    let _ = nix::unistd::write(report, &bytes);
    process::exit_now(status)
}

/// The file naming namespace `name` of process `pid`, as `readlink` shows
/// it: `net:[4026531840]`. Two processes are in the same namespace when
/// these are equal.
pub fn namespace_id(pid: i32, name: &str) -> std::io::Result<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{name}"))?;
    Ok(link.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_errors_read_like_dockers() {
        let id = "0123456789ab".repeat(5) + "cdef";
        let not_running = ExecError::NotRunning(id.clone());
        assert_eq!(
            not_running.to_string(),
            format!("Container {id} is not running")
        );
        assert_eq!(not_running.status(), 1);
        let missing = ExecError::Start {
            message: "exec: \"nosuch\": executable file not found in $PATH".into(),
            status: 127,
        };
        assert_eq!(
            missing.to_string(),
            "OCI runtime exec failed: exec failed: unable to start container process: \
             exec: \"nosuch\": executable file not found in $PATH: unknown"
        );
        assert_eq!(missing.status(), 127);
    }

    #[test]
    fn user_comes_first_and_mnt_last() {
        assert_eq!(NAMESPACES.first().unwrap().0, "user");
        assert_eq!(NAMESPACES.last().unwrap().0, "mnt");
        let pid = NAMESPACES.iter().position(|(n, _)| *n == "pid").unwrap();
        assert!(pid < NAMESPACES.len() - 1);
    }

    #[test]
    fn our_own_namespaces_are_not_joined_again() {
        let ours = open_namespaces(std::process::id() as i32).unwrap();
        assert!(
            ours.is_empty(),
            "{:?}",
            ours.iter().map(|n| n.name).collect::<Vec<_>>()
        );
    }
}
