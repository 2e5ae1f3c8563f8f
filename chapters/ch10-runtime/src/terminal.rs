//! A real terminal for the container: `-t`, `-i` and `-it`.
//!
//! Without `-t`, a container's standard streams are pipes, and a program that
//! asks "am I talking to a terminal?" (`isatty(3)`) hears no: the shell prints
//! no prompt, `ls` prints one name per line, `top` refuses to start. With `-t`
//! the container gets a **pseudo-terminal** (`pty(7)`): a pair of connected
//! character devices. The *slave* end (`/dev/pts/N`) behaves like a terminal:
//! it becomes the container's standard input, output and error. The *master*
//! end stays with minibox: what minibox writes to it is "typed" on the
//! terminal, and what the container prints can be read from it. Between the two
//! sits the kernel's line discipline, the code that echoes keys, edits a line
//! until Enter, and turns Ctrl-C into SIGINT for the foreground process group.
//!
//! Five pieces make `docker run -it` feel like a local shell:
//!
//! 1. **A pty from the container's own devpts.** Chapter 4 mounts a fresh
//!    `devpts` instance (`newinstance,ptmxmode=0666`) on the container's
//!    `/dev/pts` and links `/dev/ptmx` to `pts/ptmx`, so the container sees its
//!    own terminals only, numbered from 0, and none of the host's. The pty must
//!    come from *that* instance, or `tty` inside would name a device the
//!    container cannot see. So, as runc does, the container's init opens
//!    `/dev/ptmx` inside ([`open_pty_in`]) and hands the master to the runtime
//!    outside over a unix socket: a file descriptor travels between processes
//!    as `SCM_RIGHTS` ancillary data ([`send_fd`], [`recv_fd`]; runc calls that
//!    socket the *console socket*).
//! 2. **A controlling terminal.** The container's first process starts a new
//!    session and makes the slave its controlling terminal
//!    ([`make_controlling`]), so Ctrl-C, Ctrl-Z and job control work inside.
//! 3. **Raw mode on the user's side.** The user's own terminal has a line
//!    discipline too. Left alone it would edit lines and catch Ctrl-C before the
//!    container ever saw them; two terminals stacked must not both "cook" the
//!    keys. So minibox switches the user's terminal to raw mode
//!    (`cfmakeraw(3)`) while attached, and restores it afterwards, on every
//!    path ([`RawMode`]).
//! 4. **The window size.** Each terminal has its own rows and columns
//!    (`TIOCGWINSZ`, `TIOCSWINSZ`). minibox copies the user's size to the
//!    container's pty at the start and again whenever the user's window changes
//!    (the kernel says so with `SIGWINCH`, noticed through a self-pipe:
//!    [`WindowChanges`]).
//! 5. **The copy loop, and detaching.** The client that copies the user's
//!    keys to the container watches them for Docker's detach sequence,
//!    Ctrl-P Ctrl-Q ([`DetachKeys`], the `--detach-keys` flag): the client
//!    goes, the container goes on. For `run -t` the client talks to the
//!    container's monitor ([`crate::attach`]); for `exec -t` it holds the
//!    pty's master itself and copies with [`copy_until_end`].
//!
//! Between the two terminals sits the monitor ([`crate::monitor`]): it holds
//! the pty's master, writes what the container prints to the log and to the
//! attached client, and writes the client's keys into the master.
//!
//! `-i` without `-t` needs none of this: the container's stdin is a pipe, and
//! the monitor copies into it. `-t` without `-i` is a pty whose output is shown
//! but whose input is not the user's keyboard: no raw mode, so Ctrl-C still
//! reaches minibox (as with `docker run -t`).
//!
//! Kernel interfaces: `pty(7)`, `pts(4)` (`/dev/ptmx`, `TIOCSPTLCK`,
//! `TIOCGPTN`, `TIOCGPTPEER`), `ioctl_tty(2)` (`TIOCSCTTY`, window size),
//! `termios(3)`, `unix(7)` (`SCM_RIGHTS`), `poll(2)`, `signal-safety(7)`.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// The window size of a terminal: rows and columns (and pixels, unused).
pub type WindowSize = libc::winsize;

// ANCHOR: open_pty
/// Opens a new pseudo-terminal in the devpts instance mounted at `devpts`
/// (the container's `/dev/pts`), through its multiplexer `devpts/ptmx`.
/// Returns the master end, and the path of the slave end (`devpts/N`).
///
/// Each open of a `ptmx` creates a new pair, numbered in *that* devpts
/// instance: in a container whose devpts was mounted with `newinstance` the
/// first one is `/dev/pts/0`, whatever the host has. The slave starts locked
/// (so nobody opens it before its master is set up) and is unlocked here.
///
/// Open the slave with [`open_peer`] rather than by the returned path.
pub fn open_pty_in(devpts: &Path) -> Result<(OwnedFd, PathBuf)> {
    let (master, number) = open_ptmx(&devpts.join("ptmx"))?;
    Ok((master, devpts.join(number.to_string())))
}

/// Opens the pty multiplexer at `ptmx` (a devpts instance's `ptmx`, or the
/// classic `/dev/ptmx` device, which since Linux 4.7 creates the pty in the
/// devpts instance mounted at `pts` beside it). Returns the master end,
/// unlocked, and the pty's number in its instance.
pub fn open_ptmx(ptmx: &Path) -> Result<(OwnedFd, u32)> {
    // O_NOCTTY: opening a terminal must not make it *our* controlling one.
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = nix::fcntl::open(ptmx, flags, Mode::empty())
        .with_context(|| format!("opening {}", ptmx.display()))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which points to a
    // live local; `master` is an open pty master.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    Errno::result(rc).context("unlocking the pseudo-terminal (TIOCSPTLCK)")?;
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer, which
    // points to a live local.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) };
    Errno::result(rc).context("asking the pseudo-terminal's number (TIOCGPTN)")?;
    Ok((master, number))
}

/// Opens the slave end of the pty whose master is `master`, without a path
/// (`TIOCGPTPEER`, Linux 4.13).
///
/// Opening `/dev/pts/N` by name looks the name up in a mount namespace the
/// container controls: between the `ptmx` open and the slave's, a process in
/// the container can mount or link something else there, and the runtime would
/// hand that to the container as its terminal. runc's advisory for
/// CVE-2025-52565 ("malicious /dev/pts/$n inode attacks") moved it to this
/// ioctl, which goes from the master straight to its own slave.
pub fn open_peer(master: BorrowedFd) -> Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes its flags by value and returns a new
    // descriptor, which we own from here on.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let fd = Errno::result(fd).context("opening the pseudo-terminal's slave (TIOCGPTPEER)")?;
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
// ANCHOR_END: open_pty

// ANCHOR: console_socket
/// Sends `fd` over the unix socket `socket`, with `name` as the message.
///
/// A descriptor number means nothing in another process; `SCM_RIGHTS` asks
/// the kernel to install a duplicate of the open file in the receiver's table.
/// runc's console socket sends the pty master this way, with the terminal's
/// name as the message. A stream socket carries at least one byte of data with
/// it, so an empty `name` is sent as one NUL byte.
pub fn send_fd(socket: BorrowedFd, fd: BorrowedFd, name: &str) -> Result<()> {
    let data = if name.is_empty() {
        b"\0"
    } else {
        name.as_bytes()
    };
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(data)];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .context("sending a file descriptor (SCM_RIGHTS)")?;
    Ok(())
}

/// Receives a descriptor sent by [`send_fd`] from `socket`, with its message.
/// The descriptor arrives close-on-exec (`MSG_CMSG_CLOEXEC`), so it cannot
/// leak into a program minibox starts later.
pub fn recv_fd(socket: BorrowedFd) -> Result<(OwnedFd, String)> {
    let mut data = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receiving a file descriptor (SCM_RIGHTS)")?;
    let bytes = message.bytes;
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in message.cmsgs().context("reading the ancillary data")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel installed these descriptors in our table for
            // this message; nothing else owns them.
            received.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if bytes == 0 {
        bail!("the console socket was closed before a terminal was sent");
    }
    // Extra descriptors, if a confused sender sent several, are closed here.
    let Some(fd) = received.into_iter().next() else {
        bail!("a message without a file descriptor came on the console socket");
    };
    let name = String::from_utf8_lossy(&data[..bytes]);
    Ok((fd, name.trim_end_matches('\0').to_string()))
}
// ANCHOR_END: console_socket

// ANCHOR: make_controlling
/// Makes `slave` the calling process's controlling terminal and its standard
/// input, output and error. Call it in the container's first process, after
/// fork and before exec.
///
/// A terminal belongs to one *session*; Ctrl-C on it signals the session's
/// foreground process group. `setsid(2)` starts a new session with no
/// terminal (the process must not already lead a process group: a freshly
/// forked child does not), and `TIOCSCTTY` gives it this one.
pub fn make_controlling(slave: OwnedFd) -> Result<()> {
    nix::unistd::setsid().context("setsid: a new session for the container's terminal")?;
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal the terminal
    // from another session); no memory is passed.
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(rc).context("making the pty the controlling terminal (TIOCSCTTY)")?;
    nix::unistd::dup2_stdin(&slave).context("dup2 onto stdin")?;
    nix::unistd::dup2_stdout(&slave).context("dup2 onto stdout")?;
    nix::unistd::dup2_stderr(&slave).context("dup2 onto stderr")?;
    if slave.as_raw_fd() <= libc::STDERR_FILENO {
        // It already was one of 0, 1, 2: keep it open.
        let _ = slave.into_raw_fd();
    }
    Ok(())
}
// ANCHOR_END: make_controlling

// ANCHOR: console
/// In the container's first process, after `pivot_root` (so that `/dev/pts`
/// is its own devpts instance) and before exec: opens its pty, gives it the
/// user's window size, sends the master over the console socket, and makes
/// the slave its controlling terminal and its standard streams.
pub fn open_console(console: BorrowedFd, size: Option<&WindowSize>) -> Result<()> {
    let (master, name) = open_pty_in(Path::new("/dev/pts"))?;
    let slave = open_peer(master.as_fd())?;
    if let Some(size) = size {
        set_window_size(slave.as_fd(), size)?;
    }
    send_fd(console, master.as_fd(), &name.to_string_lossy())?;
    make_controlling(slave)
}
// ANCHOR_END: console

// ANCHOR: raw_mode
/// The user's terminal in raw mode, while this guard lives: no echo, no line
/// editing, no signals from Ctrl-C or Ctrl-Z, no output processing. Every
/// byte goes through as typed, to the container's terminal, whose own line
/// discipline does the cooking.
///
/// Dropping the guard restores the settings it found, so the user gets their
/// terminal back on every path out of the attach: a return, an error (`?`), a
/// panic (destructors run while a panic unwinds). Two paths skip destructors,
/// and the caller must avoid them while attached: `std::process::exit`, and a
/// signal that kills the process (minibox passes SIGTERM and friends on to the
/// container instead, chapter 5's `signals`); after a SIGKILL, `reset` or
/// `stty sane` repairs the terminal.
#[derive(Debug)]
#[must_use = "the terminal goes back to normal when the guard is dropped"]
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    /// Switches the terminal `fd` to raw mode (`cfmakeraw(3)`).
    pub fn enable(fd: BorrowedFd<'fd>) -> Result<Self> {
        let saved = tcgetattr(fd).context("reading the terminal's settings (tcgetattr)")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        // TCSANOW: at once. (TCSADRAIN would wait for pending output first,
        // and a terminal that does not drain would hang us.)
        tcsetattr(fd, SetArg::TCSANOW, &raw).context("setting raw mode (tcsetattr)")?;
        Ok(RawMode { fd, saved })
    }

    /// The settings the terminal had before, which the drop restores.
    pub fn saved(&self) -> &Termios {
        &self.saved
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        // Nothing to do about a failure here: the terminal may be gone.
        let _ = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}
// ANCHOR_END: raw_mode

// ANCHOR: window_size
/// The window size of the terminal `fd` (`TIOCGWINSZ`).
pub fn window_size(fd: BorrowedFd) -> Result<WindowSize> {
    let mut size = WindowSize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer,
    // which points to a live local of that type.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    Errno::result(rc).context("reading the window size (TIOCGWINSZ)")?;
    Ok(size)
}

/// Sets the window size of the terminal `fd` (`TIOCSWINSZ`). On a pty master
/// it changes the pty's size, and the kernel sends `SIGWINCH` to the
/// foreground process group of the slave: the shell or editor inside redraws.
pub fn set_window_size(fd: BorrowedFd, size: &WindowSize) -> Result<()> {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` through the pointer, which
    // points to a live value of that type.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) };
    Errno::result(rc).context("setting the window size (TIOCSWINSZ)")?;
    Ok(())
}

/// Gives the terminal `to` (the container's pty master) the window size of
/// the terminal `from` (the user's).
pub fn copy_window_size(from: BorrowedFd, to: BorrowedFd) -> Result<()> {
    set_window_size(to, &window_size(from)?)
}
// ANCHOR_END: window_size

// ANCHOR: window_changes
/// The write end of the self-pipe while a [`WindowChanges`] lives, or -1.
static WINCH_PIPE: AtomicI32 = AtomicI32::new(-1);

/// The SIGWINCH handler: one byte into the self-pipe. Only async-signal-safe
/// work (`signal-safety(7)`): an atomic load and `write(2)`. errno is saved
/// and restored, so the code the signal interrupted sees its own.
extern "C" fn on_window_change(_: libc::c_int) {
    let fd = WINCH_PIPE.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: __errno_location returns this thread's errno slot, valid for
    // the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: write(2) from one live static byte; `fd` is the pipe's write
    // end, open while WINCH_PIPE holds it. A full pipe (EAGAIN: it is
    // non-blocking) already says "changed", so the result does not matter.
    unsafe { libc::write(fd, [0u8].as_ptr().cast(), 1) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Notices changes of the user's window size (`SIGWINCH`) while it lives, as
/// a descriptor that [`poll(2)`](poll) can wait on beside the others.
///
/// A signal handler may do almost nothing (no locks, no allocation, no
/// ioctl on our behalf in the middle of a write), so it only writes a byte
/// into a pipe, and the copy loop, which polls the pipe's read end, does the
/// work: the *self-pipe trick*. (A `signalfd(2)` would do too, but only with
/// SIGWINCH blocked in every thread of the process, including threads minibox
/// does not own, such as the test harness's.)
///
/// One at a time per process: the handler is process-wide.
#[derive(Debug)]
pub struct WindowChanges {
    read: OwnedFd,
    _write: OwnedFd,
    previous: SigAction,
}

impl WindowChanges {
    /// Installs the SIGWINCH handler and its pipe.
    pub fn watch() -> Result<Self> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
            .context("a pipe for window size changes")?;
        if WINCH_PIPE
            .compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            bail!("window size changes are already being watched in this process");
        }
        let action = SigAction::new(
            SigHandler::Handler(on_window_change),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: `on_window_change` is async-signal-safe (an atomic load and
        // write(2), errno preserved).
        let previous = match unsafe { sigaction(Signal::SIGWINCH, &action) } {
            Ok(previous) => previous,
            Err(errno) => {
                WINCH_PIPE.store(-1, Ordering::SeqCst);
                return Err(errno).context("sigaction(SIGWINCH)");
            }
        };
        Ok(WindowChanges {
            read,
            _write: write,
            previous,
        })
    }

    /// The descriptor to poll: readable once the window size has changed.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Whether the size changed since the last call; empties the pipe.
    pub fn take(&self) -> bool {
        let mut changed = false;
        let mut buf = [0u8; 64];
        while let Ok(n) = nix::unistd::read(&self.read, &mut buf) {
            if n == 0 {
                break;
            }
            changed = true;
        }
        changed
    }
}

impl Drop for WindowChanges {
    fn drop(&mut self) {
        // The previous action first, so no new handler call starts; then the
        // pipe is forgotten, and closed when the fields drop.
        // SAFETY: reinstalling the action that was there before us.
        let _ = unsafe { sigaction(Signal::SIGWINCH, &self.previous) };
        WINCH_PIPE.store(-1, Ordering::SeqCst);
    }
}
// ANCHOR_END: window_changes

// ANCHOR: detach_keys
/// The key sequence that detaches from a container without stopping it:
/// Docker's `--detach-keys`, Ctrl-P Ctrl-Q by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

/// Docker's names for control keys, in the order of their codes: `ctrl-@` is
/// 0, `ctrl-a` is 1, ..., `ctrl-z` is 26, then `ctrl-[` (27, Escape) to
/// `ctrl-_` (31).
const CONTROL_KEYS: &str = "@abcdefghijklmnopqrstuvwxyz[\\]^_";

impl DetachKeys {
    /// Parses Docker's syntax: keys separated by commas, each either one
    /// character (`a`) or `ctrl-` and one of `a`-`z`, `@`, `[`, `\`, `]`, `^`,
    /// `_` (case does not matter): `"ctrl-p,ctrl-q"`, `"ctrl-a,d"`.
    pub fn parse(spec: &str) -> Result<Self> {
        let bytes = spec
            .split(',')
            .map(|key| {
                if key.len() == 1 {
                    return Ok(key.as_bytes()[0]);
                }
                let lower = key.to_ascii_lowercase();
                let code = lower
                    .strip_prefix("ctrl-")
                    .filter(|name| name.len() == 1)
                    .and_then(|name| CONTROL_KEYS.find(name));
                match code {
                    Some(code) => Ok(code as u8),
                    None => bail!("invalid detach keys ({spec}): unknown key '{key}'"),
                }
            })
            .collect::<Result<Vec<u8>>>()?;
        Ok(DetachKeys(bytes))
    }

    /// The bytes the keys send, in order.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Default for DetachKeys {
    /// Ctrl-P Ctrl-Q, Docker's default.
    fn default() -> Self {
        DetachKeys(vec![0x10, 0x11])
    }
}

impl FromStr for DetachKeys {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> Result<Self> {
        DetachKeys::parse(spec)
    }
}

/// Watches the user's keys for the detach sequence, passing every other byte
/// through.
///
/// Bytes that could be the start of the sequence are held back until the next
/// byte decides: Ctrl-P alone goes nowhere yet; Ctrl-P then Ctrl-Q detaches
/// (and neither reaches the container); Ctrl-P then `x` sends both. So a
/// program inside that uses Ctrl-P (a shell's "previous line") still gets it,
/// one key late, as with Docker.
#[derive(Debug)]
pub struct DetachFilter {
    keys: Vec<u8>,
    held: Vec<u8>,
}

impl DetachFilter {
    /// A filter for `keys`.
    pub fn new(keys: &DetachKeys) -> Self {
        DetachFilter {
            keys: keys.0.clone(),
            held: Vec::new(),
        }
    }

    /// Feeds the bytes the user typed; appends to `out` what the container
    /// should get. Returns true when the detach sequence is complete (the bytes
    /// after it are dropped).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &byte in input {
            self.held.push(byte);
            // Release bytes from the front until what is held could still
            // grow into the sequence (a partial match may restart inside it).
            while !self.keys.starts_with(&self.held) {
                out.push(self.held.remove(0));
            }
            if !self.keys.is_empty() && self.held == self.keys {
                self.held.clear();
                return true;
            }
        }
        false
    }

    /// The bytes held back, waiting for the next key.
    pub fn held(&self) -> &[u8] {
        &self.held
    }
}
// ANCHOR_END: detach_keys

/// How the copy loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The user detached: the detach keys, or the user's terminal went away.
    /// The container goes on running.
    Detached,
    /// The container's side of the terminal closed: every process that had it
    /// open (the container) has ended.
    ContainerEnded,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ended::Detached => "detached",
            Ended::ContainerEnded => "container ended",
        })
    }
}

/// What the copy loop connects.
#[derive(Debug, Clone, Copy)]
pub struct Streams<'a> {
    /// Where the user's keys come from (`-i`), or `None` (`-t` alone).
    pub input: Option<BorrowedFd<'a>>,
    /// Where the container's output goes: the user's terminal.
    pub output: BorrowedFd<'a>,
    /// The master end of the container's pty.
    pub master: BorrowedFd<'a>,
}

/// At most this many keys wait for the container to read them; beyond, the
/// loop stops reading the user's input until it has (flow control).
const PENDING_INPUT: usize = 16 * 1024;

// ANCHOR: attach
/// Attaches the user's terminal to the container's pty: raw mode on `input`
/// if it is a terminal, the window size of `output` copied to `master` now and
/// on every change, then [`copy_until_end`]. Everything is undone on return.
pub fn attach(streams: Streams, detach: &DetachKeys) -> Result<Ended> {
    let _raw = match streams.input {
        Some(input) if nix::unistd::isatty(input).unwrap_or(false) => Some(RawMode::enable(input)?),
        _ => None,
    };
    let window = if nix::unistd::isatty(streams.output).unwrap_or(false) {
        let changes = WindowChanges::watch()?; // first, so no change is missed
        copy_window_size(streams.output, streams.master)?;
        Some(changes)
    } else {
        None
    };
    copy_until_end(streams, detach, window.as_ref())
}
// ANCHOR_END: attach

// ANCHOR: copy_loop
/// Copies the user's keys to the container's pty and its output back, until
/// the container's side closes ([`Ended::ContainerEnded`]) or the user types
/// the detach keys ([`Ended::Detached`]). With `window`, copies the size of
/// `streams.output` to the pty whenever it changes.
///
/// `poll(2)` waits for whichever comes first: a key, output, a window change,
/// or room in the pty for keys that did not fit. The master is made
/// non-blocking for the loop (it is minibox's alone); the user's descriptors
/// are not touched, since they are shared with the user's shell, which would
/// not expect `O_NONBLOCK` after minibox has gone.
///
/// The container's side "closes" when no process has the slave open any more:
/// reading the master then fails with EIO. Whoever opened the slave must close
/// their copy once the container has its own, or the loop never sees the end.
pub fn copy_until_end(
    streams: Streams,
    detach: &DetachKeys,
    window: Option<&WindowChanges>,
) -> Result<Ended> {
    let _nonblocking = NonBlocking::set(streams.master)?;
    let mut filter = DetachFilter::new(detach);
    let mut keys: Vec<u8> = Vec::new(); // typed, not yet taken by the pty
    let mut input = streams.input;
    let mut buf = [0u8; 8192];
    loop {
        let waiting = input.filter(|_| keys.len() < PENDING_INPUT);
        let Some((ready, input_at)) = wait(streams.master, !keys.is_empty(), waiting, window)?
        else {
            continue; // a signal (SIGWINCH): look again
        };

        // A size change first, so that keys typed after it find it done. Not
        // only when poll says so: poll may return for keys typed after the
        // resize with the pipe still empty, and run the SIGWINCH handler only
        // on its way out. Whatever the handler wrote is in the pipe by now.
        if let Some(changes) = window
            && changes.take()
        {
            copy_window_size(streams.output, streams.master)?;
        }
        if ready[0]
            && let Some(ended) = copy_output(streams, &mut buf)?
        {
            return Ok(ended);
        }
        if let (Some(i), Some(fd)) = (input_at, input)
            && ready[i]
        {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => input = None, // end of input: keep showing output
                Ok(n) if filter.feed(&buf[..n], &mut keys) => {
                    // SIMPLIFICATION: keys typed in the same read before the
                    // sequence get one try to reach the container.
                    let _ = nix::unistd::write(streams.master, &keys);
                    return Ok(Ended::Detached);
                }
                Ok(_) | Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(Errno::EIO) => return Ok(Ended::Detached), // the terminal hung up
                Err(errno) => return Err(errno).context("reading the user's input"),
            }
        }
        if !keys.is_empty() {
            match nix::unistd::write(streams.master, &keys) {
                Ok(n) => drop(keys.drain(..n)),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(Errno::EIO) => return Ok(Ended::ContainerEnded),
                Err(errno) => return Err(errno).context("writing to the container's terminal"),
            }
        }
    }
}
// ANCHOR_END: copy_loop

/// Waits until the master, the user's `input` or a window change is ready
/// (the master's room too, when keys wait for it). Returns what is ready,
/// by index (0 is the master), and the index of `input`; `None` when a
/// signal came first.
fn wait(
    master: BorrowedFd,
    keys_waiting: bool,
    input: Option<BorrowedFd>,
    window: Option<&WindowChanges>,
) -> Result<Option<(Vec<bool>, Option<usize>)>> {
    let mut events = PollFlags::POLLIN;
    if keys_waiting {
        events |= PollFlags::POLLOUT;
    }
    let mut fds = vec![PollFd::new(master, events)];
    let input_at = input.map(|fd| {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
        fds.len() - 1
    });
    if let Some(changes) = window {
        fds.push(PollFd::new(changes.fd(), PollFlags::POLLIN));
    }
    match poll(&mut fds, PollTimeout::NONE) {
        Err(Errno::EINTR) => return Ok(None),
        result => result.context("poll")?,
    };
    let ready = fds.iter().map(|fd| fd.any().unwrap_or(false)).collect();
    Ok(Some((ready, input_at)))
}

/// What the container's side of the pty has: to the user's terminal.
/// Returns how the loop ends, if it does.
fn copy_output(streams: Streams, buf: &mut [u8]) -> Result<Option<Ended>> {
    match nix::unistd::read(streams.master, buf) {
        Ok(0) | Err(Errno::EIO) => Ok(Some(Ended::ContainerEnded)),
        Ok(n) => match write_all(streams.output, &buf[..n])? {
            true => Ok(None),
            false => Ok(Some(Ended::Detached)), // the user's terminal is gone
        },
        Err(Errno::EAGAIN | Errno::EINTR) => Ok(None),
        Err(errno) => Err(errno).context("reading the container's terminal"),
    }
}

/// Writes all of `bytes` to `fd`, waiting for room if it is non-blocking.
/// Returns false when the other side is gone (EIO, EPIPE).
fn write_all(fd: BorrowedFd, mut bytes: &[u8]) -> Result<bool> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(errno) => return Err(errno).context("poll"),
                }
            }
            Err(Errno::EIO | Errno::EPIPE) => return Ok(false),
            Err(errno) => return Err(io::Error::from(errno)).context("writing to the terminal"),
        }
    }
    Ok(true)
}

/// `O_NONBLOCK` on a descriptor while the guard lives; the flags it found are
/// put back on drop.
struct NonBlocking<'fd> {
    fd: BorrowedFd<'fd>,
    flags: OFlag,
}

impl<'fd> NonBlocking<'fd> {
    fn set(fd: BorrowedFd<'fd>) -> Result<Self> {
        let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).context("F_GETFL")?);
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).context("F_SETFL O_NONBLOCK")?;
        Ok(NonBlocking { fd, flags })
    }
}

impl Drop for NonBlocking<'_> {
    fn drop(&mut self) {
        let _ = fcntl(self.fd, FcntlArg::F_SETFL(self.flags));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(spec: &str) -> Vec<u8> {
        DetachKeys::parse(spec).unwrap().bytes().to_vec()
    }

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(keys("ctrl-p,ctrl-q"), [0x10, 0x11]);
        assert_eq!(DetachKeys::default().bytes(), [0x10, 0x11]);
        assert_eq!(keys("CTRL-A,d"), [0x01, b'd']);
        assert_eq!(
            keys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_"),
            [0, 27, 28, 29, 30, 31]
        );
        for bad in ["", "ctrl-", "ctrl-1", "ctrl-pq", "p,ctrlq", "é"] {
            let err = DetachKeys::parse(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid detach keys ({bad})")),
                "{err}"
            );
        }
    }

    fn filter(spec: &str, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut filter = DetachFilter::new(&DetachKeys::parse(spec).unwrap());
        let mut out = Vec::new();
        for chunk in chunks {
            if filter.feed(chunk, &mut out) {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn the_detach_sequence_is_held_back_then_released_or_taken() {
        // Ctrl-P Ctrl-Q detaches, even split across reads; nothing goes through.
        assert_eq!(
            filter("ctrl-p,ctrl-q", &[b"ls\r\x10", b"\x11rest"]),
            (b"ls\r".to_vec(), true)
        );
        // Ctrl-P then another key: both go through, in order.
        assert_eq!(
            filter("ctrl-p,ctrl-q", &[b"\x10", b"x"]),
            (b"\x10x".to_vec(), false)
        );
        // Ctrl-P Ctrl-P Ctrl-Q: the first Ctrl-P is released, the rest detaches.
        assert_eq!(
            filter("ctrl-p,ctrl-q", &[b"\x10\x10\x11"]),
            (b"\x10".to_vec(), true)
        );
        // A sequence that repeats its first key: a,a,b in "aaab".
        assert_eq!(filter("a,a,b", &[b"aaa", b"b"]), (b"a".to_vec(), true));
        // Configurable: ctrl-a,d; a lone Ctrl-A stays held.
        let mut held = DetachFilter::new(&DetachKeys::parse("ctrl-a,d").unwrap());
        let mut out = Vec::new();
        assert!(!held.feed(b"x\x01", &mut out));
        assert_eq!((out.as_slice(), held.held()), (&b"x"[..], &b"\x01"[..]));
        assert!(held.feed(b"d", &mut out));
    }
}
