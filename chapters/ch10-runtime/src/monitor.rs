//! The monitor: the process that stays behind as a container's parent once
//! `minibox run -d` has printed the container's ID and returned.
//!
//! Until chapter 9, minibox itself was the container's parent: it waited for
//! the container's end, said how it ended, and cleaned up. `run -d` must return
//! at once, yet *someone* must still hold the container's output, wait for its
//! end, record its exit status and clean up. Docker's daemon hands that job to
//! a small process per container, `containerd-shim`; podman and CRI-O to
//! `conmon`. Both are separate programs, started once per container, that
//! outlive the command which started them. This module is minibox's: a forked
//! copy of minibox that becomes the container's parent.
//!
//! # How a process leaves its caller behind
//!
//! [`spawn_detached`] is the old Unix recipe for a daemon, step by step:
//!
//! 1. **fork**: minibox (the caller) forks a first child and will wait only
//!    for that one, which ends at once.
//! 2. **setsid** (`setsid(2)`): the first child starts a new *session*, with
//!    itself as the leader of a new process group. A session is what a
//!    terminal belongs to: Ctrl-C and hang-ups go to the processes of the
//!    terminal's session. In a session of its own, with no controlling
//!    terminal, the monitor is out of reach of the terminal `run -d` was typed
//!    in, which may close a second later.
//! 3. **fork again** (the *double fork*): the first child forks the monitor and
//!    exits. The monitor is thus nobody's child any more: its parent is gone,
//!    so the kernel hands it to the nearest *subreaper* above it, or to PID 1,
//!    and minibox (which reaped the first child) owes it no `waitpid`. And the
//!    monitor is not a session leader, so it can never gain a controlling
//!    terminal by opening one (only a session leader can).
//! 4. **subreaper** (`prctl(2)`, `PR_SET_CHILD_SUBREAPER`): when a process
//!    dies, its children are re-parented, normally to PID 1. A subreaper gets
//!    them instead when it is their nearest living ancestor. The monitor is
//!    one, so a process the container leaves behind (a daemon that
//!    double-forked inside the container, say) becomes the *monitor's* child,
//!    which reaps it, instead of the host's init.
//! 5. **its own stdio**: the monitor's standard input is `/dev/null`, its
//!    standard output and error go to a monitor log (or `/dev/null`), and
//!    every other descriptor it inherited from minibox is let go (a lock file
//!    minibox held must not stay held by the monitor). Its working directory
//!    is `/`, so it keeps no filesystem busy.
//! 6. **ready**: the monitor starts the container (the chapter's closure: a
//!    clone into namespaces, as in chapters 2 to 9), then tells the caller,
//!    through a pipe, the container's PID, or why it could not start it, with
//!    the child's own message, as chapter 2's sync pipe does. minibox prints
//!    the ID and exits; the container runs on.
//!
//! ```text
//!   minibox run -d ──fork──▶ first child ──setsid, fork──▶ monitor ──clone──▶ container
//!        │   ▲                    │ exits at once              (subreaper)
//!        │   └──── ready pipe: {"Running":{…}} ───────────────────┘
//!        └ prints the ID, exits
//! ```
//!
//! # What the monitor does while the container runs
//!
//! It holds the container's standard streams: stdout and stderr are pipes it
//! reads, stdin a pipe it writes when the container was started with `-i`
//! (kept open even when nobody is attached, so the container does not read
//! end-of-file) and `/dev/null` otherwise; with `-t`, a pseudo-terminal whose
//! master side it holds. Everything the container writes goes to its log, one
//! JSON record per line ([`crate::log`]), and to every attached client.
//! Then it waits: when the container ends, the monitor records how (exit code,
//! or 128 + the signal's number) and when, through the chapter's `on_exit`
//! closure (the state on disk is [`crate::state`]'s business), runs the
//! chapter's `cleanup` closure (`--rm`, detaching the network), tells the
//! attached clients, and exits. Orphans it inherits as a subreaper are reaped
//! as they end, all along.
//!
//! # Attached: the foreground `run` uses the same monitor
//!
//! Docker's `docker run` without `-d` is a client too: the daemon owns the
//! container, and the client *attaches* to its streams through the daemon.
//! minibox does the same without a daemon: [`spawn_attached`] starts the very
//! same detached monitor, connected to the caller by a socket pair made before
//! the fork, so not a byte of output is missed. The monitor streams the
//! container's output to it and takes its input from it ([`Session`]); the
//! caller copies them to and from the user's terminal and exits with the
//! status the monitor sends at the end, after its cleanup (so a foreground
//! `run --rm` returns once the container is removed, as Docker's does). A
//! later `minibox attach` connects to the monitor's attach socket
//! ([`Options::attach_socket`]) and speaks the same protocol.
//!
//! The alternative was for the foreground `run` to *be* the monitor, just not
//! detaching. That is simpler (no socket, no protocol, one process fewer, one
//! copy less per byte), but then the container is in the terminal's session
//! (a hang-up reaches it), a `kill -9` of minibox leaves it with nobody to
//! record its end, and `attach` and Ctrl-P Ctrl-Q (detaching from a
//! foreground container and leaving it running) are impossible; and a
//! foreground container would be a different kind of process tree than a
//! detached one, which `ps`, `stop` and `logs` would have to tell apart.
//! With one kind of monitor, `logs` works for every container, and a
//! foreground container is a detached one with a client attached. The price:
//! signals typed at the terminal reach the client, not the container (which
//! is in the monitor's session), so the client forwards them itself (`docker
//! run --sig-proxy`), and Ctrl-P Ctrl-Q is looked for by the client.
//!
//! # Signals
//!
//! `minibox stop` and `kill` signal the container's PID directly (it is in
//! the state on disk with its start time, so a reused PID is never signalled).
//! The monitor must survive that and record the end. A SIGTERM, SIGINT,
//! SIGHUP or SIGQUIT sent to the *monitor* is passed on to the container, as
//! chapter 5's minibox did, and the monitor stays to record the end: killing
//! the monitor politely stops the container, it does not orphan it. Unlike
//! chapter 5's handler, which called `kill(2)` itself, the monitor's handler
//! only writes the signal's number into a pipe (the *self-pipe trick*), and
//! the monitor's event loop, which waits on that pipe beside the container's
//! output, forwards it or, for SIGCHLD, reaps: a handler installed before the
//! container exists, and one loop for everything. Handlers (unlike ignored
//! signals) are reset by `execve(2)`, so the container starts with the
//! default actions.
//!
//! SIGKILL cannot be caught. A `kill -9` of the monitor leaves the container
//! running, re-parented (it lost its parent) to the nearest subreaper or
//! PID 1; its output pipes have no reader any more, so its next write to them
//! gets SIGPIPE (which ends it, unless it ignores the signal), and nobody
//! records its end. That is why the state records the
//! monitor's PID *and start time* ([`Started::monitor`], a [`Holder`]): `ps`
//! checks [`Holder::is_alive`] and shows a container whose monitor is gone as
//! dead, and `rm -f` stops it. (containerd watches its shims: when one dies,
//! it has the runtime delete the container and reports it exited with 137.
//! minibox has no daemon to watch, so the next command that looks finds out.)
// SIMPLIFICATION: conmon and containerd-shim are separate, small programs
// started with exec (conmon is C, the shim Go); a forked copy of minibox
// carries minibox's whole memory along. They also handle OOM notifications
// from the cgroup, `--restart` policies (the shim through containerd),
// `exec` sessions (their output and exit codes), log rotation and
// several log drivers, checkpoint/restore, and in conmon's case a timeout
// for the container's start. The monitor here starts one container process,
// once, and writes one json-file log.

use std::collections::HashSet;
use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use ch01_fork_exec::exit::{Exit, MINIBOX_FAILED, StartError};
use ch01_fork_exec::process::{self, Forked};
pub use ch09_networking::ipam::Holder;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::log::{self, Stream};

// ANCHOR: options
/// What the monitor needs to know besides the chapter's three closures.
#[derive(Debug)]
pub struct Options {
    /// The container's json-file log ([`crate::log`]), created if missing,
    /// appended to otherwise. An absolute path: the monitor runs in `/`.
    pub log: PathBuf,
    /// Where the monitor's own standard output and error go (its complaints:
    /// a failed cleanup, say): a file in the container's runtime directory,
    /// or `/dev/null` when `None`.
    pub monitor_log: Option<PathBuf>,
    /// `-i`: the container's stdin is a pipe the monitor keeps open, written
    /// with what attached clients send. Without it, stdin is `/dev/null`.
    pub interactive: bool,
    /// `-t`: a pseudo-terminal for the container instead of pipes (both ends;
    /// the container gets the slave as stdin, stdout and stderr, the monitor
    /// keeps the master). Its output is all "stdout", as with Docker.
    pub terminal: Option<Terminal>,
    /// `-t` with the pty made by the container itself, in its own devpts
    /// instance, as runc does: the container's process opens it after its
    /// `pivot_root` and sends the master back over a socket pair (runc's
    /// *console socket*, [`ContainerStdio::console`]); the monitor then
    /// holds it as it holds [`Options::terminal`]'s.
    pub console: bool,
    /// A Unix socket to listen on for later clients (`minibox attach`), made
    /// before the container starts and removed when the monitor exits. Its
    /// path must fit in a socket address (107 bytes).
    pub attach_socket: Option<PathBuf>,
    /// Descriptors the closures use in the monitor (a published port's
    /// listening socket for the port proxy, say): every other descriptor the
    /// monitor inherited from minibox is let go (see [`spawn_detached`]),
    /// as conmon keeps only its `--preserve-fds`.
    pub keep_fds: Vec<RawFd>,
}

/// The two ends of a pseudo-terminal (`openpty(3)`), for `-t`.
#[derive(Debug)]
pub struct Terminal {
    /// The side the monitor reads and writes.
    pub master: OwnedFd,
    /// The side the container gets as its stdin, stdout and stderr.
    pub slave: OwnedFd,
}

impl Options {
    /// Options for a container whose log is `log`: no monitor log, no stdin,
    /// no terminal, no attach socket, no descriptors kept.
    pub fn new(log: impl Into<PathBuf>) -> Options {
        Options {
            log: log.into(),
            monitor_log: None,
            interactive: false,
            terminal: None,
            console: false,
            attach_socket: None,
            keep_fds: Vec::new(),
        }
    }
}
// ANCHOR_END: options

// ANCHOR: container_stdio
/// The container's ends of its standard streams, handed to the chapter's
/// start closure. In the container's process, before exec, [`install`]
/// makes them its descriptors 0, 1 and 2. The monitor closes its copies
/// once the start closure returns.
///
/// [`install`]: ContainerStdio::install
#[derive(Debug)]
pub struct ContainerStdio {
    /// The read end of the stdin pipe, the terminal's slave, or `/dev/null`.
    pub stdin: OwnedFd,
    /// The write end of the stdout pipe, or the terminal's slave.
    pub stdout: OwnedFd,
    /// The write end of the stderr pipe, or the terminal's slave.
    pub stderr: OwnedFd,
    /// With [`Options::console`]: the container's end of the console socket,
    /// on which it sends its pty's master (the three streams are then
    /// `/dev/null` until the pty replaces them).
    pub console: Option<OwnedFd>,
}

impl ContainerStdio {
    /// In the container's process (after fork or clone, before exec): puts
    /// the three streams on descriptors 0, 1 and 2. `dup2(2)` clears
    /// close-on-exec on the copies, so exec keeps them; the originals are
    /// close-on-exec and vanish at exec.
    pub fn install(&self) -> Result<()> {
        for (fd, target) in [(&self.stdin, 0), (&self.stdout, 1), (&self.stderr, 2)] {
            // SAFETY: dup2(2) onto 0, 1 or 2 in the container's process,
            // which is about to exec: no Rust value there owns those numbers
            // for longer than the exec.
            let result = unsafe { libc::dup2(fd.as_raw_fd(), target) };
            Errno::result(result).with_context(|| format!("dup2 onto descriptor {target}"))?;
        }
        Ok(())
    }
}
// ANCHOR_END: container_stdio

// ANCHOR: ended
/// How and when the container ended, as the monitor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Its exit code, or the signal that killed it.
    pub exit: Exit,
    /// When the monitor reaped it.
    pub finished_at: OffsetDateTime,
}

impl Ended {
    /// Docker's `ExitCode`: the code, or 128 + the signal's number.
    pub fn status(&self) -> u8 {
        self.exit.status()
    }

    /// Docker's `FinishedAt`: RFC 3339 in UTC with nanoseconds.
    pub fn finished_at_rfc3339(&self) -> String {
        log::rfc3339_nano(self.finished_at)
    }
}

/// A started container, as the caller of [`spawn_detached`] learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The monitor: its PID and start time, for the state on disk, so that
    /// `ps` can tell whether it still runs ([`Holder::is_alive`]) after a
    /// `kill -9`, even once its PID has been reused.
    pub monitor: Holder,
    /// The container's process (its PID 1, as the host numbers it).
    pub container: Pid,
}
// ANCHOR_END: ended

/// What the monitor tells the caller through the ready pipe: one JSON line.
#[derive(Debug, Serialize, Deserialize)]
enum Ready {
    /// The container runs.
    Running { monitor: Holder, container: i32 },
    /// It could not be started: the error's chain, and when it was exec that
    /// failed, what `StartError` needs (so 126 and 127 survive the trip).
    Failed {
        message: String,
        exec: Option<(String, i32)>,
    },
}

impl Ready {
    fn failed(error: &anyhow::Error) -> Ready {
        let exec = error
            .downcast_ref::<StartError>()
            .map(|start| (start.program.clone(), start.errno as i32));
        Ready::Failed {
            message: format!("{error:#}"),
            exec,
        }
    }
}

// ANCHOR: spawn_detached
/// `run -d`: starts a monitor that starts the container (`start`), and
/// returns as soon as the container runs, or with the error that kept it
/// from starting.
///
/// The closures run in the monitor, not in the caller:
///
/// - `start` starts the container with the given stdio and returns its
///   PID, once its program is exec'd (chapter 2's sync pipe). It is also
///   the place to record the container as running, with
///   [`Holder::current`] as its monitor: that record is then always written
///   before `on_exit`'s. If it fails, neither of the others runs: the error
///   travels to the caller, which undoes what it prepared.
/// - `on_exit` records how the container ended, after its last output is
///   in the log.
/// - `cleanup` runs after `on_exit`: `--rm`, the network's detach.
///
/// Call it from a single-threaded process (it forks). Every descriptor the
/// closures use must be in [`Options::keep_fds`] (or be made by them): the
/// monitor points every other descriptor it inherited at `/dev/null`.
pub fn spawn_detached<S, E, C>(
    options: Options,
    start: S,
    on_exit: E,
    cleanup: C,
) -> Result<Started>
where
    S: FnOnce(ContainerStdio) -> Result<Pid>,
    E: FnOnce(&Ended) -> Result<()>,
    C: FnOnce() -> Result<()>,
{
    let (started, _) = spawn(
        options,
        false,
        Closures {
            start,
            on_exit,
            cleanup,
        },
    )?;
    Ok(started)
}

/// `run` in the foreground: [`spawn_detached`], with the caller attached to
/// the monitor from the start through a socket pair, so that it sees every
/// byte of output and the exit status ([`Session::pump`]).
pub fn spawn_attached<S, E, C>(
    options: Options,
    start: S,
    on_exit: E,
    cleanup: C,
) -> Result<(Started, Session)>
where
    S: FnOnce(ContainerStdio) -> Result<Pid>,
    E: FnOnce(&Ended) -> Result<()>,
    C: FnOnce() -> Result<()>,
{
    let (started, session) = spawn(
        options,
        true,
        Closures {
            start,
            on_exit,
            cleanup,
        },
    )?;
    let session = session.ok_or_else(|| anyhow!("the monitor's session is missing"))?;
    Ok((started, session))
}
// ANCHOR_END: spawn_detached

/// The chapter's three closures, carried into the monitor together.
struct Closures<S, E, C> {
    start: S,
    on_exit: E,
    cleanup: C,
}

// ANCHOR: spawn
fn spawn<S, E, C>(
    options: Options,
    attached: bool,
    closures: Closures<S, E, C>,
) -> Result<(Started, Option<Session>)>
where
    S: FnOnce(ContainerStdio) -> Result<Pid>,
    E: FnOnce(&Ended) -> Result<()>,
    C: FnOnce() -> Result<()>,
{
    // Close-on-exec, though nothing here execs: the container's program
    // must not inherit the pipe's write end from the monitor.
    let (ready_read, ready_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    let pair = match attached {
        true => Some(UnixStream::pair().context("socketpair for the attached client")?),
        false => None,
    };
    match process::fork()? {
        Forked::Parent { child } => {
            drop(ready_write);
            let client = pair.map(|(client, _monitor_end)| client);
            // The first child only forks the monitor, then exits.
            process::wait_for(child)?;
            let started = read_ready(ready_read, options.monitor_log.as_deref())?;
            Ok((started, client.map(Session::new)))
        }
        Forked::Child => {
            drop(ready_read);
            let monitor_end = pair.map(|(_client, monitor_end)| monitor_end);
            // Whatever happens from here, this process must never return into
            // the caller's code (which would go on as a second minibox).
            let _ = catch_unwind(AssertUnwindSafe(|| -> () {
                first_child(File::from(ready_write), monitor_end, options, closures)
            }));
            process::exit_now(MINIBOX_FAILED)
        }
    }
}
// ANCHOR_END: spawn

/// In the caller: reads the monitor's one line. End-of-file without it means
/// the monitor died before it could say anything.
fn read_ready(ready: OwnedFd, monitor_log: Option<&Path>) -> Result<Started> {
    let mut line = String::new();
    BufReader::new(File::from(ready))
        .read_line(&mut line)
        .context("read the monitor's report")?;
    if line.trim().is_empty() {
        let hint = monitor_log.map_or(String::new(), |log| format!(" (see {})", log.display()));
        bail!("the monitor exited before it started the container{hint}");
    }
    let ready: Ready = serde_json::from_str(&line)
        .with_context(|| format!("a malformed report from the monitor: {line:?}"))?;
    match ready {
        Ready::Running { monitor, container } => Ok(Started {
            monitor,
            container: Pid::from_raw(container),
        }),
        Ready::Failed {
            exec: Some((program, errno)),
            ..
        } => Err(StartError {
            program,
            errno: Errno::from_raw(errno),
        }
        .into()),
        Ready::Failed { message, .. } => Err(anyhow!(message)),
    }
}

/// Sends the caller the monitor's one line. If the caller is gone there is
/// no one to tell: that is not the monitor's failure.
fn send_ready(ready: &File, report: &Ready) {
    let mut line = serde_json::to_string(report).unwrap_or_else(|e| {
        format!(r#"{{"Failed":{{"message":"encode the report: {e}","exec":null}}}}"#)
    });
    line.push('\n');
    let _ = (&*ready).write_all(line.as_bytes());
}

// ANCHOR: first_child
/// The first child: a new session, then the monitor's fork, then exit.
fn first_child<S, E, C>(
    ready: File,
    client: Option<UnixStream>,
    options: Options,
    closures: Closures<S, E, C>,
) -> !
where
    S: FnOnce(ContainerStdio) -> Result<Pid>,
    E: FnOnce(&Ended) -> Result<()>,
    C: FnOnce() -> Result<()>,
{
    // A new session, with no controlling terminal: the terminal that typed
    // `run -d` can hang up without a SIGHUP reaching the monitor.
    if let Err(errno) = nix::unistd::setsid() {
        send_ready(&ready, &Ready::failed(&anyhow!("setsid: {errno}")));
        process::exit_now(MINIBOX_FAILED);
    }
    match process::fork() {
        // The monitor's parent exits at once: the monitor is re-parented,
        // and it is not a session leader, so it can never get a terminal.
        Ok(Forked::Parent { .. }) => process::exit_now(0),
        Ok(Forked::Child) => {
            let status = match monitor(ready, client, options, closures) {
                Ok(()) => 0,
                Err(error) => {
                    note(format_args!("{error:#}"));
                    1
                }
            };
            process::exit_now(status)
        }
        Err(error) => {
            send_ready(&ready, &Ready::failed(&error));
            process::exit_now(MINIBOX_FAILED)
        }
    }
}
// ANCHOR_END: first_child

// ANCHOR: monitor
/// The monitor's life: become a monitor, start the container, report, copy
/// its output until it ends, record, clean up, tell the clients.
fn monitor<S, E, C>(
    ready: File,
    client: Option<UnixStream>,
    mut options: Options,
    closures: Closures<S, E, C>,
) -> Result<()>
where
    S: FnOnce(ContainerStdio) -> Result<Pid>,
    E: FnOnce(&Ended) -> Result<()>,
    C: FnOnce() -> Result<()>,
{
    let prepared = become_monitor(&ready, client, &mut options)
        .and_then(|(events, stdio)| Ok((events, stdio, Holder::current()?)));
    let (mut events, stdio, monitor) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            send_ready(&ready, &Ready::failed(&error));
            return Ok(());
        }
    };
    let container = match (closures.start)(stdio) {
        Ok(container) => container,
        Err(error) => {
            send_ready(&ready, &Ready::failed(&error));
            remove_attach_socket(&options);
            return Ok(());
        }
    };
    // The container sent its pty before its exec, which `start` waited for.
    if let Err(error) = events.receive_console(options.interactive) {
        note(format_args!("{error:#}: the container is killed"));
        let _ = kill(container, Signal::SIGKILL);
    }
    send_ready(
        &ready,
        &Ready::Running {
            monitor,
            container: container.as_raw(),
        },
    );
    drop(ready);

    let ended = events.run(container)?;
    remove_attach_socket(&options);
    if let Err(error) = (closures.on_exit)(&ended) {
        note(format_args!("recording the container's end: {error:#}"));
    }
    if let Err(error) = (closures.cleanup)() {
        note(format_args!("cleaning up after the container: {error:#}"));
    }
    events.tell_clients(&ended);
    reap_orphans(None);
    Ok(())
}
// ANCHOR_END: monitor

/// Removes the attach socket the monitor made, so that no client connects
/// to a monitor that is going away.
fn remove_attach_socket(options: &Options) {
    if let Some(socket) = &options.attach_socket {
        let _ = std::fs::remove_file(socket);
    }
}

// ANCHOR: become_monitor
/// Turns the freshly forked process into a monitor: subreaper, its own
/// stdio, `/` as working directory, nothing inherited but what it needs, its
/// signal handlers; then makes the container's stdio and the event loop.
fn become_monitor(
    ready: &File,
    client: Option<UnixStream>,
    options: &mut Options,
) -> Result<(EventLoop, ContainerStdio)> {
    nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    // The name `ps` shows (at most 15 bytes); purely for people.
    let _ = nix::sys::prctl::set_name(MONITOR_NAME);
    redirect_own_stdio(options.monitor_log.as_deref())?;

    let mut keep: HashSet<RawFd> = options.keep_fds.iter().copied().collect();
    keep.insert(ready.as_raw_fd());
    keep.extend(client.as_ref().map(|c| c.as_raw_fd()));
    if let Some(terminal) = &options.terminal {
        keep.extend([terminal.master.as_raw_fd(), terminal.slave.as_raw_fd()]);
    }
    let_go_of_inherited_fds(&keep)?;

    let signals = install_signal_handlers()?;
    let log = log::Writer::open(&options.log)?;
    let (stdio, outputs, input, terminal, console) = container_stdio(options)?;
    // Last, so that nothing fails once the socket exists: the monitor removes
    // it when it exits, and an earlier failure would leave it behind.
    let listener = match &options.attach_socket {
        Some(path) => Some(
            UnixListener::bind(path).with_context(|| format!("listen on {}", path.display()))?,
        ),
        None => None,
    };
    nix::unistd::chdir("/").context("chdir /")?;
    let clients = client.into_iter().map(Client::new).collect();
    let events = EventLoop {
        log,
        outputs,
        input,
        terminal,
        console,
        clients,
        listener,
        signals,
        ended: None,
        log_failed: false,
    };
    Ok((events, stdio))
}

/// The monitor's own fds 0, 1 and 2: `/dev/null` in, the monitor log (or
/// `/dev/null`) out, so that nothing it writes reaches the caller's
/// terminal, and a closed terminal cannot hurt it.
fn redirect_own_stdio(monitor_log: Option<&Path>) -> Result<()> {
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    let out = match monitor_log {
        Some(path) => OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .with_context(|| format!("open the monitor log {}", path.display()))?,
        None => null.try_clone().context("dup /dev/null")?,
    };
    for (fd, target) in [(&null, 0), (&out, 1), (&out, 2)] {
        // SAFETY: dup2(2) onto the standard descriptors, which the monitor's
        // Rust code only uses through std's stdin/stdout/stderr handles
        // (themselves mere descriptor numbers).
        let result = unsafe { libc::dup2(fd.as_raw_fd(), target) };
        Errno::result(result).with_context(|| format!("dup2 onto descriptor {target}"))?;
    }
    Ok(())
}

/// Lets go of every descriptor the monitor inherited from minibox, except
/// `keep` and 0, 1, 2. conmon and the shim are exec'd programs, so
/// close-on-exec does this for them; a forked monitor inherits all of
/// minibox's open files, a held lock file among them. They are not closed
/// but pointed at `/dev/null` (`dup3(2)`): the file each was open on is let
/// go (a lock is released, a pipe's end closed), while the number stays
/// taken, so that a Rust value that owns it and is dropped later closes
/// `/dev/null` rather than some newer file that got the number.
fn let_go_of_inherited_fds(keep: &HashSet<RawFd>) -> Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .context("list /proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let null = File::open("/dev/null").context("open /dev/null")?;
    for fd in fds {
        // SAFETY: F_GETFD only asks whether `fd` is open (read_dir's own
        // descriptor, listed, is closed by now).
        let still_open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
        if fd <= 2 || keep.contains(&fd) || fd == null.as_raw_fd() || !still_open {
            continue;
        }
        // SAFETY: dup3 replaces what `fd` refers to with /dev/null (close-on-
        // exec, so the container never sees it); the number stays open, so
        // whoever owns it still owns an open descriptor.
        let result = unsafe { libc::dup3(null.as_raw_fd(), fd, libc::O_CLOEXEC) };
        Errno::result(result).with_context(|| format!("dup3 onto descriptor {fd}"))?;
    }
    Ok(())
}
// ANCHOR_END: become_monitor

/// What the event loop reads the container's output from and writes its
/// input to, and what the start closure gets.
type Streams = (
    ContainerStdio,
    Vec<Output>,
    Option<Input>,
    Option<OwnedFd>,
    Option<UnixStream>,
);

// ANCHOR: container_stdio_made
/// Makes the container's stdio: pipes (stdin only with `-i`), or the
/// terminal of `-t`. The monitor's ends are non-blocking, so that it can
/// drain them without hanging once the container has ended; the
/// container's ends stay blocking, as programs expect.
fn container_stdio(options: &mut Options) -> Result<Streams> {
    if options.console {
        let (ours, theirs) = UnixStream::pair().context("socketpair for the console")?;
        let null = || -> Result<OwnedFd> {
            let file = File::options()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open("/dev/null")
                .context("open /dev/null")?;
            Ok(OwnedFd::from(file))
        };
        let stdio = ContainerStdio {
            stdin: null()?,
            stdout: null()?,
            stderr: null()?,
            console: Some(OwnedFd::from(theirs)),
        };
        return Ok((stdio, Vec::new(), None, None, Some(ours)));
    }
    if let Some(Terminal { master, slave }) = options.terminal.take() {
        set_cloexec(&master)?;
        set_cloexec(&slave)?;
        set_nonblocking(&master)?;
        let output = Output::new(
            master.try_clone().context("dup the terminal")?,
            Stream::Stdout,
        );
        let input = options
            .interactive
            .then(|| master.try_clone().map(Input::new))
            .transpose()
            .context("dup the terminal")?;
        let stdio = ContainerStdio {
            stdin: slave.try_clone().context("dup the terminal")?,
            stdout: slave.try_clone().context("dup the terminal")?,
            stderr: slave,
            console: None,
        };
        return Ok((stdio, vec![output], input, Some(master), None));
    }
    let (stdout_read, stdout) = pipe()?;
    let (stderr_read, stderr) = pipe()?;
    let (stdin, input) = if options.interactive {
        let (stdin, stdin_write) = pipe()?;
        set_nonblocking(&stdin_write)?;
        (stdin, Some(Input::new(stdin_write)))
    } else {
        let null = File::options()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/null")
            .context("open /dev/null")?;
        (OwnedFd::from(null), None)
    };
    set_nonblocking(&stdout_read)?;
    set_nonblocking(&stderr_read)?;
    let outputs = vec![
        Output::new(stdout_read, Stream::Stdout),
        Output::new(stderr_read, Stream::Stderr),
    ];
    let stdio = ContainerStdio {
        stdin,
        stdout,
        stderr,
        console: None,
    };
    Ok((stdio, outputs, input, None, None))
}
// ANCHOR_END: container_stdio_made

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2(O_CLOEXEC)")
}

fn set_nonblocking(fd: &impl AsFd) -> Result<()> {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).context("fcntl(F_GETFL)")?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags)).context("fcntl(F_SETFL, O_NONBLOCK)")?;
    Ok(())
}

/// Marks `fd` close-on-exec: `openpty(3)` does not, and the container must
/// not inherit the terminal's master.
fn set_cloexec(fd: &impl AsFd) -> Result<()> {
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .context("fcntl(F_SETFD, FD_CLOEXEC)")?;
    Ok(())
}

/// Writes a line to the monitor's stderr (its log): straight to descriptor
/// 2, past std's lock, which a thread of minibox may have held when it
/// forked.
fn note(message: std::fmt::Arguments) {
    let line = format!("minibox-monitor: {message}\n");
    let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
}

// ANCHOR: signals
/// The write end of the self-pipe, for the handler.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
/// The monitor's PID: a child it forks runs the handler too until it execs,
/// and must not speak for the monitor.
static MONITOR_PID: AtomicI32 = AtomicI32::new(0);

/// The signals the monitor passes on to the container.
const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The handler: writes the signal's number into the self-pipe, and nothing
/// else (`write(2)` is async-signal-safe; the loop does the rest).
extern "C" fn on_signal(signal: libc::c_int) {
    let saved = Errno::last_raw();
    // SAFETY: getpid(2) and write(2) are async-signal-safe; the pipe's write
    // end is non-blocking, so a full pipe (signals the loop has not read
    // yet, which already say the same) drops the byte instead of hanging.
    unsafe {
        if libc::getpid() == MONITOR_PID.load(Ordering::Relaxed) {
            let byte = signal as u8;
            let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
            libc::write(fd, (&raw const byte).cast(), 1);
        }
    }
    Errno::set_raw(saved); // the interrupted code may be about to read errno
}

/// Installs the handler for SIGCHLD and the forwarded signals; returns the
/// self-pipe's read end.
fn install_signal_handlers() -> Result<File> {
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).context("pipe2 for signals")?;
    MONITOR_PID.store(std::process::id() as i32, Ordering::Relaxed);
    // The write end lives as long as the monitor: the handler may run at
    // any time until it exits.
    SIGNAL_PIPE.store(
        std::os::fd::IntoRawFd::into_raw_fd(write),
        Ordering::Relaxed,
    );
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    for signal in FORWARDED.into_iter().chain([Signal::SIGCHLD]) {
        // SAFETY: `on_signal` only calls async-signal-safe functions.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("sigaction({signal})"))?;
    }
    // A client that hung up must be an EPIPE for the monitor, not its death.
    // (Rust programs start with SIGPIPE ignored already; this says so. The
    // container gets it back from chapter 1's `exec`, which restores it.)
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no code.
    unsafe { sigaction(Signal::SIGPIPE, &ignore) }.context("sigaction(SIGPIPE)")?;
    Ok(File::from(read))
}

/// Reaps every child that has ended, without waiting. Returns how
/// `container` ended, if it is among them; the others are orphans the
/// monitor inherited as a subreaper, or its own helpers.
fn reap_orphans(container: Option<Pid>) -> Option<Exit> {
    let mut found = None;
    loop {
        let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, Exit::Signal(signal)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return found,
            Err(Errno::EINTR) | Ok(_) => continue,
            Err(errno) => {
                note(format_args!("waitpid: {errno}"));
                return found;
            }
        };
        if Some(pid) == container {
            found = Some(exit);
        }
    }
}
// ANCHOR_END: signals

/// One of the container's output streams, as the monitor reads it.
struct Output {
    file: File,
    stream: Stream,
    open: bool,
}

impl Output {
    fn new(fd: OwnedFd, stream: Stream) -> Output {
        Output {
            file: File::from(fd),
            stream,
            open: true,
        }
    }
}

/// The container's stdin, as the monitor writes it: what clients sent and
/// the container has not read yet, and whether a client asked to close it.
struct Input {
    file: File,
    pending: Vec<u8>,
    close: bool,
}

impl Input {
    fn new(fd: OwnedFd) -> Input {
        Input {
            file: File::from(fd),
            pending: Vec::new(),
            close: false,
        }
    }
}

/// The size of one read from the container's output.
const CHUNK: usize = 32 * 1024;

/// How many reads of each stream, at most, once the container has ended:
/// a full pipe of the largest default size (1 MiB) takes 32.
const DRAIN_READS: usize = 64;

/// What poll(2) watches, by index.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Signals,
    Output(usize),
    Input,
    Client(usize),
    Listener,
}

// ANCHOR: event_loop
/// The monitor's state while the container runs.
struct EventLoop {
    log: log::Writer,
    outputs: Vec<Output>,
    input: Option<Input>,
    /// The terminal's master, for window size changes.
    terminal: Option<OwnedFd>,
    /// With [`Options::console`], until the container has sent its pty.
    console: Option<UnixStream>,
    clients: Vec<Client>,
    listener: Option<UnixListener>,
    signals: File,
    /// The container's end, once reaped.
    ended: Option<Ended>,
    /// Whether writing the log has failed (said once).
    log_failed: bool,
}

impl EventLoop {
    /// With a console socket: takes the pty master the container sent, and
    /// from then on holds it as the terminal of [`Options::terminal`].
    fn receive_console(&mut self, interactive: bool) -> Result<()> {
        let Some(console) = self.console.take() else {
            return Ok(());
        };
        let (master, _name) = crate::terminal::recv_fd(console.as_fd())?;
        set_nonblocking(&master)?;
        let output = master.try_clone().context("dup the terminal")?;
        self.outputs.push(Output::new(output, Stream::Stdout));
        if interactive {
            self.input = Some(Input::new(master.try_clone().context("dup the terminal")?));
        }
        self.terminal = Some(master);
        Ok(())
    }

    /// Copies, forwards and reaps until the container has ended, then takes
    /// what is left in its pipes and finishes the log.
    fn run(&mut self, container: Pid) -> Result<Ended> {
        // A container that ended before the handler could tell us (or whose
        // SIGCHLD came before the loop) is found here.
        self.reap(container);
        while self.ended.is_none() {
            self.once(container)?;
        }
        // What the container wrote before it ended is in the pipes now. A
        // process it left behind may still hold them and write on: take what
        // is there, a bounded amount, and stop.
        for index in 0..self.outputs.len() {
            let mut reads = DRAIN_READS;
            while reads > 0 && self.outputs[index].open && self.read_output(index)? {
                reads -= 1;
            }
        }
        for index in 0..self.outputs.len() {
            let finished = self.log.finish(self.outputs[index].stream);
            self.log_result(finished);
        }
        self.ended
            .ok_or_else(|| anyhow!("the container's end was lost"))
    }

    /// One poll(2) and what it found.
    fn once(&mut self, container: Pid) -> Result<()> {
        let ready = self.poll()?;
        for (slot, events) in ready {
            match slot {
                Slot::Signals => self.on_signals(container),
                Slot::Output(index) => {
                    self.read_output(index)?;
                }
                Slot::Input => self.write_input(),
                Slot::Client(index) => self.read_client(index, events),
                Slot::Listener => self.accept(),
            }
        }
        self.clients.retain(|client| !client.gone);
        Ok(())
    }

    /// Waits until something is ready; returns what, and how.
    fn poll(&self) -> Result<Vec<(Slot, PollFlags)>> {
        let readable = PollFlags::POLLIN;
        let mut slots = vec![(Slot::Signals, self.signals.as_fd(), readable)];
        for (index, output) in self.outputs.iter().enumerate() {
            if output.open {
                slots.push((Slot::Output(index), output.file.as_fd(), readable));
            }
        }
        let input_blocked = self.input.as_ref().is_some_and(|i| !i.pending.is_empty());
        if let Some(input) = self.input.as_ref().filter(|_| input_blocked) {
            slots.push((Slot::Input, input.file.as_fd(), PollFlags::POLLOUT));
        }
        // While the container has not taken what clients sent, take no
        // more from them: their writes block, and so the typing slows down.
        for (index, client) in self.clients.iter().enumerate() {
            if !input_blocked {
                slots.push((Slot::Client(index), client.stream.as_fd(), readable));
            }
        }
        if let Some(listener) = &self.listener {
            slots.push((Slot::Listener, listener.as_fd(), readable));
        }
        let mut fds: Vec<PollFd> = slots
            .iter()
            .map(|(_, fd, flags)| PollFd::new(*fd, *flags))
            .collect();
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Vec::new()), // a signal: its byte is in the pipe
            Err(errno) => return Err(errno).context("poll"),
        }
        Ok(slots
            .iter()
            .zip(&fds)
            .filter_map(|((slot, _, _), fd)| {
                let events = fd.revents().unwrap_or(PollFlags::empty());
                (!events.is_empty()).then_some((*slot, events))
            })
            .collect())
    }

    /// Reads the self-pipe: reaps on SIGCHLD, forwards the rest to the
    /// container while it has not been reaped (after that, its PID may
    /// belong to another process).
    fn on_signals(&mut self, container: Pid) {
        let mut bytes = [0u8; 64];
        let count = (&self.signals).read(&mut bytes).unwrap_or(0);
        for &byte in &bytes[..count] {
            match Signal::try_from(i32::from(byte)) {
                Ok(Signal::SIGCHLD) => self.reap(container),
                Ok(signal) if self.ended.is_none() => {
                    let _ = kill(container, signal);
                }
                _ => {}
            }
        }
    }

    fn reap(&mut self, container: Pid) {
        if let Some(exit) = reap_orphans(Some(container)) {
            self.ended = Some(Ended {
                exit,
                finished_at: OffsetDateTime::now_utc(),
            });
        }
    }

    /// Reads once from output `index` into the log and the clients. False
    /// when there was nothing to read (now) or the stream has ended.
    fn read_output(&mut self, index: usize) -> Result<bool> {
        let mut buffer = [0u8; CHUNK];
        let output = &mut self.outputs[index];
        match output.file.read(&mut buffer) {
            Ok(0) => {}
            Ok(count) => {
                let (data, stream) = (&buffer[..count], output.stream);
                let logged = self.log.write(stream, data);
                self.log_result(logged);
                let frame = encode_frame(output_kind(stream), data);
                for client in &mut self.clients {
                    client.send(&frame);
                }
                return Ok(true);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(true),
            // EIO: a terminal whose every slave descriptor is closed.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {}
            Err(e) => note(format_args!(
                "read the container's {}: {e}",
                output.stream.name()
            )),
        }
        output.open = false;
        let finished = self.log.finish(output.stream);
        self.log_result(finished);
        Ok(false)
    }

    /// A log that cannot be written (a full disk) costs the log, not the
    /// container nor the record of its end: the monitor says so once, in its
    /// own log, and goes on.
    fn log_result(&mut self, result: Result<()>) {
        if let Err(error) = result
            && !self.log_failed
        {
            note(format_args!(
                "{error:#}; output may be missing from the log"
            ));
            self.log_failed = true;
        }
    }

    /// Writes what clients sent to the container's stdin, as far as it
    /// takes it now; closes stdin when a client asked and all is written.
    fn write_input(&mut self) {
        let Some(input) = &mut self.input else { return };
        match (&input.file).write(&input.pending) {
            Ok(written) => {
                input.pending.drain(..written);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EPIPE and the rest: the container closed its stdin.
            Err(_) => input.pending.clear(),
        }
        if input.pending.is_empty() && input.close {
            self.input = None;
        }
    }

    /// Reads what a client sent: input, a request to close stdin, a new
    /// window size. A client that hung up is forgotten.
    fn read_client(&mut self, index: usize, events: PollFlags) {
        let client = &mut self.clients[index];
        let frames = if events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            client.receive()
        } else {
            client.gone = true;
            Vec::new()
        };
        for (kind, payload) in frames {
            match (kind, &mut self.input) {
                (FRAME_STDIN, Some(input)) => input.pending.extend_from_slice(&payload),
                (FRAME_CLOSE_STDIN, Some(input)) => input.close = true,
                (FRAME_RESIZE, _) => self.resize(&payload),
                _ => {}
            }
        }
        if let Some(input) = &self.input
            && input.close
            && input.pending.is_empty()
        {
            self.input = None;
        }
    }

    /// Applies a client's window size to the terminal (TIOCSWINSZ); the
    /// kernel sends the container's foreground process group SIGWINCH.
    fn resize(&self, payload: &[u8]) {
        let (Some(master), [r0, r1, c0, c1]) = (&self.terminal, payload) else {
            return;
        };
        let size = libc::winsize {
            ws_row: u16::from_be_bytes([*r0, *r1]),
            ws_col: u16::from_be_bytes([*c0, *c1]),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives
        // across the call.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &raw const size) };
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        if let Ok((stream, _)) = listener.accept() {
            self.clients.push(Client::new(stream));
        }
    }

    /// Sends every client the container's end; they read end-of-file next.
    fn tell_clients(&mut self, ended: &Ended) {
        let frame = encode_frame(FRAME_EXIT, &encode_ended(ended));
        for client in &mut self.clients {
            client.send(&frame);
        }
        self.clients.clear();
    }
}
// ANCHOR_END: event_loop

/// A client attached to the monitor, as the monitor sees it.
struct Client {
    stream: UnixStream,
    /// Bytes received that do not make a whole frame yet.
    inbox: Vec<u8>,
    gone: bool,
}

impl Client {
    fn new(stream: UnixStream) -> Client {
        Client {
            stream,
            inbox: Vec::new(),
            gone: false,
        }
    }

    /// Sends one frame. A client that cannot take it (it hung up) is gone.
    /// The write blocks while the client's socket is full: like a terminal,
    /// a slow client slows the container's output down (Docker's attach
    /// does the same).
    fn send(&mut self, frame: &[u8]) {
        if !self.gone && self.stream.write_all(frame).is_err() {
            self.gone = true;
        }
    }

    /// Reads what is there (poll said something is) and returns the whole
    /// frames received.
    fn receive(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut buffer = [0u8; CHUNK];
        match self.stream.read(&mut buffer) {
            Ok(0) | Err(_) => {
                self.gone = true;
                return Vec::new();
            }
            Ok(count) => self.inbox.extend_from_slice(&buffer[..count]),
        }
        let mut frames = Vec::new();
        loop {
            match decode_frame(&self.inbox) {
                Ok(Some((kind, payload, used))) => {
                    frames.push((kind, payload.to_vec()));
                    self.inbox.drain(..used);
                }
                Ok(None) => return frames,
                Err(_) => {
                    self.gone = true;
                    return frames;
                }
            }
        }
    }
}

// ANCHOR: protocol
// The attach protocol, over a Unix stream socket: frames of one kind byte,
// the payload's length (4 bytes, big-endian) and the payload.
/// Monitor to client: the container wrote this to stdout.
const FRAME_STDOUT: u8 = b'1';
/// Monitor to client: the container wrote this to stderr.
const FRAME_STDERR: u8 = b'2';
/// Monitor to client: the container ended (see `encode_ended`).
const FRAME_EXIT: u8 = b'x';
/// Client to monitor: for the container's stdin.
const FRAME_STDIN: u8 = b'0';
/// Client to monitor: close the container's stdin (the client's ended).
const FRAME_CLOSE_STDIN: u8 = b'c';
/// Client to monitor: the terminal's new size, rows then columns (u16 each).
const FRAME_RESIZE: u8 = b'r';
/// The largest payload a frame may announce: a bound on what a confused
/// peer can make the other side buffer.
const MAX_FRAME: usize = 1024 * 1024;

fn output_kind(stream: Stream) -> u8 {
    match stream {
        Stream::Stdout => FRAME_STDOUT,
        Stream::Stderr => FRAME_STDERR,
    }
}

fn encode_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The first whole frame in `bytes`: its kind, its payload and how many
/// bytes it took; None if it is not all there yet.
fn decode_frame(bytes: &[u8]) -> Result<Option<(u8, &[u8], usize)>> {
    let Some((&kind, rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let Some(length) = rest.get(..4) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes(length.try_into()?) as usize;
    if length > MAX_FRAME {
        bail!("an attach frame of {length} bytes");
    }
    Ok(rest
        .get(4..4 + length)
        .map(|payload| (kind, payload, 5 + length)))
}

/// An exit frame's payload: `C` and the code, or `S` and the signal's number
/// (4 bytes, big-endian), then the finish time as RFC 3339.
fn encode_ended(ended: &Ended) -> Vec<u8> {
    let (tag, number) = match ended.exit {
        Exit::Code(code) => (b'C', code),
        Exit::Signal(signal) => (b'S', signal as i32),
    };
    let mut payload = vec![tag];
    payload.extend_from_slice(&number.to_be_bytes());
    payload.extend_from_slice(ended.finished_at_rfc3339().as_bytes());
    payload
}

fn decode_ended(payload: &[u8]) -> Result<Ended> {
    let malformed = || anyhow!("a malformed exit report from the monitor");
    let (&tag, rest) = payload.split_first().ok_or_else(malformed)?;
    let number = i32::from_be_bytes(rest.get(..4).ok_or_else(malformed)?.try_into()?);
    let exit = match tag {
        b'C' => Exit::Code(number),
        b'S' => Exit::Signal(Signal::try_from(number)?),
        _ => return Err(malformed()),
    };
    let time = std::str::from_utf8(&rest[4..])?;
    let finished_at = log::parse_time(time).ok_or_else(malformed)?;
    Ok(Ended { exit, finished_at })
}
// ANCHOR_END: protocol

// ANCHOR: session
/// What an attached client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The container wrote this.
    Output(Stream, Vec<u8>),
    /// The container ended; the monitor closes the connection next.
    Exited(Ended),
}

/// A client's connection to a monitor: the foreground `run`
/// ([`spawn_attached`]) and `minibox attach` ([`Session::connect`]).
#[derive(Debug)]
pub struct Session {
    stream: UnixStream,
    inbox: Vec<u8>,
}

impl Session {
    fn new(stream: UnixStream) -> Session {
        Session {
            stream,
            inbox: Vec::new(),
        }
    }

    /// Attaches to the monitor listening on `socket`
    /// ([`Options::attach_socket`]). Output from then on is received; what
    /// came before is in the log.
    pub fn connect(socket: &Path) -> Result<Session> {
        let stream = UnixStream::connect(socket)
            .with_context(|| format!("connect to the monitor at {}", socket.display()))?;
        Ok(Session::new(stream))
    }

    /// Waits for the next output or the end. `None`: the monitor hung up
    /// without saying how the container ended (it was killed).
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        loop {
            if let Some((kind, payload, used)) = decode_frame(&self.inbox)? {
                let event = match kind {
                    FRAME_STDOUT => Event::Output(Stream::Stdout, payload.to_vec()),
                    FRAME_STDERR => Event::Output(Stream::Stderr, payload.to_vec()),
                    FRAME_EXIT => Event::Exited(decode_ended(payload)?),
                    other => bail!("an attach frame of unknown kind {other}"),
                };
                self.inbox.drain(..used);
                return Ok(Some(event));
            }
            let mut buffer = [0u8; CHUNK];
            match self.stream.read(&mut buffer) {
                Ok(0) => return Ok(None),
                Ok(count) => self.inbox.extend_from_slice(&buffer[..count]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("read from the monitor"),
            }
        }
    }

    /// Reads once from the monitor (blocking until something comes) and
    /// returns every whole event received so far; `None` when the monitor
    /// hung up. For a client's own poll(2) loop: call it when the
    /// connection is readable.
    pub fn receive(&mut self) -> Result<Option<Vec<Event>>> {
        let mut buffer = [0u8; CHUNK];
        let count = loop {
            match self.stream.read(&mut buffer) {
                Ok(count) => break count,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("read from the monitor"),
            }
        };
        if count == 0 {
            return Ok(None);
        }
        self.inbox.extend_from_slice(&buffer[..count]);
        let mut events = Vec::new();
        while let Some((kind, payload, used)) = decode_frame(&self.inbox)? {
            events.push(match kind {
                FRAME_STDOUT => Event::Output(Stream::Stdout, payload.to_vec()),
                FRAME_STDERR => Event::Output(Stream::Stderr, payload.to_vec()),
                FRAME_EXIT => Event::Exited(decode_ended(payload)?),
                other => bail!("an attach frame of unknown kind {other}"),
            });
            self.inbox.drain(..used);
        }
        Ok(Some(events))
    }

    /// Sends `data` to the container's stdin (ignored unless it was started
    /// with `-i`).
    pub fn send_stdin(&mut self, data: &[u8]) -> Result<()> {
        self.send(FRAME_STDIN, data)
    }

    /// Asks the monitor to close the container's stdin once everything sent
    /// is written: the client's own input has ended (`echo hi | minibox run
    /// -i busybox cat` ends when cat reads end-of-file).
    pub fn close_stdin(&mut self) -> Result<()> {
        self.send(FRAME_CLOSE_STDIN, &[])
    }

    /// Tells the monitor the user's terminal is now `rows` by `cols` (on
    /// SIGWINCH), for the container's terminal (`-t`).
    pub fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        let mut size = rows.to_be_bytes().to_vec();
        size.extend_from_slice(&cols.to_be_bytes());
        self.send(FRAME_RESIZE, &size)
    }

    fn send(&mut self, kind: u8, payload: &[u8]) -> Result<()> {
        self.stream
            .write_all(&encode_frame(kind, payload))
            .context("write to the monitor")
    }

    /// The foreground `run` without a terminal: copies `stdin` (if given,
    /// for `-i`) to the container, and the container's output to `stdout`
    /// and `stderr`, until it ends. Returns how it ended, or `None` if the
    /// monitor went away without saying (`kill -9`).
    pub fn pump(
        mut self,
        stdin: Option<BorrowedFd>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<Option<Ended>> {
        let mut stdin = stdin;
        loop {
            let mut fds = vec![PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
            fds.extend(stdin.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(errno).context("poll"),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|e| !e.is_empty());
            let (monitor_ready, stdin_ready) = (ready(&fds[0]), fds.get(1).is_some_and(ready));
            drop(fds);
            if stdin_ready && let Some(fd) = stdin {
                let mut buffer = [0u8; CHUNK];
                // A monitor that went away is noticed below, by its hang-up.
                let _ = match nix::unistd::read(fd, &mut buffer) {
                    Ok(0) | Err(_) => {
                        stdin = None;
                        self.close_stdin()
                    }
                    Ok(count) => self.send_stdin(&buffer[..count]),
                };
            }
            if !monitor_ready {
                continue;
            }
            match self.next_event()? {
                Some(Event::Output(Stream::Stdout, data)) => write_out(stdout, &data)?,
                Some(Event::Output(Stream::Stderr, data)) => write_out(stderr, &data)?,
                Some(Event::Exited(ended)) => return Ok(Some(ended)),
                None => return Ok(None),
            }
        }
    }
}

impl AsFd for Session {
    /// The connection, for a client's own poll(2) loop (a terminal's).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}
// ANCHOR_END: session

/// Writes the container's output out; a closed output (`run ... | head`) is
/// no reason to stop the container, so it is ignored.
fn write_out(out: &mut dyn Write, data: &[u8]) -> Result<()> {
    match out.write_all(data).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("write the container's output"),
    }
}

/// The name the monitor gives itself, as `ps` and `/proc/PID/comm` show it.
pub const MONITOR_NAME: &CStr = c"minibox-monitor";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_their_whole_payload() {
        let frame = encode_frame(FRAME_STDOUT, b"hello");
        assert_eq!(&frame[..5], &[b'1', 0, 0, 0, 5]);
        assert_eq!(decode_frame(&frame[..7]).unwrap(), None);
        let (kind, payload, used) = decode_frame(&frame).unwrap().unwrap();
        assert_eq!((kind, payload, used), (FRAME_STDOUT, &b"hello"[..], 10));
        let huge = [b'0', 0xff, 0xff, 0xff, 0xff];
        assert!(decode_frame(&huge).is_err());
    }

    #[test]
    fn an_end_round_trips_with_its_time() {
        let finished_at = log::parse_time("2026-12-05T19:20:23.123456789Z").unwrap();
        for exit in [Exit::Code(3), Exit::Signal(Signal::SIGKILL)] {
            let ended = Ended { exit, finished_at };
            assert_eq!(decode_ended(&encode_ended(&ended)).unwrap(), ended);
        }
        assert_eq!(
            Ended {
                exit: Exit::Signal(Signal::SIGTERM),
                finished_at
            }
            .status(),
            143
        );
    }

    #[test]
    fn a_failed_exec_keeps_its_kind_across_the_ready_pipe() {
        let error: anyhow::Error = StartError {
            program: "nope".into(),
            errno: Errno::ENOENT,
        }
        .into();
        let line = serde_json::to_string(&Ready::failed(&error)).unwrap();
        let (read, write) = nix::unistd::pipe().unwrap();
        File::from(write)
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        let error = read_ready(read, None).unwrap_err();
        let start = error.downcast_ref::<StartError>().expect("a StartError");
        assert_eq!(start.status(), 127);
        assert_eq!(
            error.to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
    }
}
