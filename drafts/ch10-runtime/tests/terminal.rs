//! The terminal module, driven through real pseudo-terminals.
//!
//! Each attach test plays the user: it makes a pty with `openpty(3)` to be
//! "the user's terminal", types into its master and reads the screen from it.
//! On the slave side runs the test helper (`src/bin/ttyinit-helper.rs`) in
//! `attach` mode, as minibox would run in a terminal: that pty is its
//! controlling terminal, so a resize sends it SIGWINCH. The helper starts a
//! command on a second pty, the container's, and attaches the two.
//!
//! The devpts test needs root (a mount namespace and a mount); the others run
//! as any user.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError, channel};
use std::time::{Duration, Instant};

use ch10_runtime_draft::terminal::{self, RawMode, WindowSize};
use harness::process::Background;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{LocalFlags, OutputFlags, Termios, tcgetattr};

const HELPER: &str = env!("CARGO_BIN_EXE_ttyinit-helper");
const PATIENCE: Duration = Duration::from_secs(20);

/// The user's terminal: a pty the test owns. It types into the master and
/// reads what the terminal would show from it.
struct UserTerminal {
    master: OwnedFd,
    slave: OwnedFd,
    screen: Vec<u8>,
}

impl UserTerminal {
    fn new(rows: u16, cols: u16) -> Self {
        let size = WindowSize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(&size, None).expect("openpty");
        UserTerminal {
            master: pty.master,
            slave: pty.slave,
            screen: Vec::new(),
        }
    }

    fn settings(&self) -> Termios {
        tcgetattr(&self.slave).expect("tcgetattr")
    }

    fn type_keys(&self, keys: &[u8]) {
        let mut keys = keys;
        while !keys.is_empty() {
            keys = &keys[nix::unistd::write(&self.master, keys).expect("typing")..];
        }
    }

    /// Reads the screen until `text` shows up after what earlier calls
    /// consumed; returns everything up to and including it.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(at) = find(&self.screen, text.as_bytes()) {
                let shown: Vec<u8> = self.screen.drain(..at + text.len()).collect();
                return String::from_utf8_lossy(&shown).into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{text:?} never showed on the screen; it shows {:?}",
                String::from_utf8_lossy(&self.screen)
            );
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                result => result.expect("poll"),
            };
            let mut buf = [0u8; 4096];
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(n) => self.screen.extend_from_slice(&buf[..n]),
                Err(Errno::EIO) => std::thread::sleep(Duration::from_millis(10)),
                Err(errno) => panic!("reading the screen: {errno}"),
            }
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        let size = WindowSize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        terminal::set_window_size(self.master.as_fd(), &size).expect("resize");
    }
}

/// The parent of process `pid`, from `/proc/PID/stat`.
fn parent(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields = stat.rsplit_once(") ").unwrap().1;
    fields.split(' ').nth(1).unwrap().parse().unwrap()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The helper attached to `user`, and the lines it prints on stderr.
struct Attached {
    helper: Background,
    lines: Receiver<String>,
    /// The command's PID (the container's first process).
    command: i32,
}

impl Attached {
    fn start(user: &UserTerminal, args: &[&str]) -> Attached {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let tty = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
        let mut command = Command::new(HELPER);
        command
            .arg("attach")
            .args(args)
            .stdin(tty(&user.slave))
            .stdout(tty(&user.slave))
            .stderr(writer)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PS1", "$ ");
        // SAFETY: between fork and exec only setsid(2) and ioctl(2), both
        // async-signal-safe, and no allocation.
        unsafe {
            command.pre_exec(|| {
                // The helper leads a session whose terminal is the user's,
                // like minibox started from a shell: resizes signal it.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let helper = Background::spawn(&mut command).expect("start the helper");
        drop(command); // its copies of the pipe's write end and the tty
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut attached = Attached {
            helper,
            lines,
            command: 0,
        };
        let started = attached.line();
        attached.command = started
            .strip_prefix("started ")
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("the helper said {started:?}"));
        attached
    }

    fn line(&self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("the helper said nothing for a while"),
            Err(RecvTimeoutError::Disconnected) => panic!("the helper ended without a word"),
        }
    }

    /// The helper's PID: the command's parent, and this test's child.
    fn helper_pid(&self) -> i32 {
        let helper = parent(self.command);
        assert_eq!(
            parent(helper),
            std::process::id() as i32,
            "the helper is ours"
        );
        helper
    }

    fn finish(mut self, expected: i32) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.helper.ended() {
                assert_eq!(status.code(), Some(expected), "the helper's exit status");
                return;
            }
            assert!(Instant::now() < deadline, "the helper did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The flags raw mode changes, to compare settings by.
fn cooked(settings: &Termios) -> (bool, bool, bool, bool) {
    (
        settings.local_flags.contains(LocalFlags::ICANON),
        settings.local_flags.contains(LocalFlags::ECHO),
        settings.local_flags.contains(LocalFlags::ISIG),
        settings.output_flags.contains(OutputFlags::OPOST),
    )
}

/// Every setting that matters, for before-and-after comparisons.
fn all(settings: &Termios) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        settings.input_flags,
        settings.output_flags,
        settings.control_flags,
        settings.local_flags,
        settings.control_chars
    )
}

#[test]
fn typing_echo_hi_reads_hi_back_and_the_terminal_is_restored() {
    let mut user = UserTerminal::new(24, 80);
    let before = user.settings();
    let helper = Attached::start(&user, &["--", "sh"]);
    user.expect("$ ");
    assert_eq!(
        cooked(&user.settings()),
        (false, false, false, false),
        "raw mode"
    );
    // Enter sends "\r" in raw mode; the container's terminal turns it into "\n".
    user.type_keys(b"echo hi\r");
    user.expect("echo hi\r\nhi\r\n$ ");
    user.type_keys(b"exit\r");
    assert_eq!(helper.line(), "container ended");
    assert_eq!(helper.line(), "exit 0");
    helper.finish(0);
    assert_eq!(all(&user.settings()), all(&before), "settings restored");
}

#[test]
fn the_container_follows_the_users_window_size() {
    let mut user = UserTerminal::new(24, 80);
    let helper = Attached::start(&user, &["--", "sh"]);
    user.expect("$ ");
    user.type_keys(b"stty size\r");
    user.expect("\r\n24 80\r\n$ ");
    // The kernel sends SIGWINCH to the helper, which copies the new size.
    user.resize(40, 100);
    user.type_keys(b"stty size\r");
    user.expect("\r\n40 100\r\n$ ");
    user.type_keys(b"exit\r");
    assert_eq!(helper.line(), "container ended");
    helper.finish(0);
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_the_container_goes_on() {
    let mut user = UserTerminal::new(24, 80);
    let before = user.settings();
    let helper = Attached::start(&user, &["--", "sh"]);
    user.expect("$ ");
    user.type_keys(b"\x10\x11");
    assert_eq!(helper.line(), "detached");
    assert_eq!(all(&user.settings()), all(&before), "settings restored");
    // The shell is still there, still the helper's child, not a zombie.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", helper.command)).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert!(["R", "S"].contains(&fields[0]), "the shell's state: {stat}");
    assert_eq!(fields[1], helper.helper_pid().to_string(), "its parent");
    // SAFETY: kill(2) of the shell this test's helper started; the helper
    // has not reaped it (it is waiting for it).
    assert_eq!(unsafe { libc::kill(helper.command, libc::SIGKILL) }, 0);
    assert_eq!(helper.line(), "exit 137");
    helper.finish(137);
}

#[test]
fn ctrl_p_then_another_key_passes_both_through() {
    let mut user = UserTerminal::new(24, 80);
    let script = r#"read line; printf %s "$line" | od -An -tx1"#;
    let helper = Attached::start(&user, &["--", "sh", "-c", script]);
    user.type_keys(b"\x10");
    user.type_keys(b"x\r");
    user.expect(" 10 78\r\n");
    assert_eq!(helper.line(), "container ended");
    helper.finish(0);
}

#[test]
fn detach_keys_are_configurable() {
    let mut user = UserTerminal::new(24, 80);
    let helper = Attached::start(&user, &["--detach-keys", "ctrl-a,d", "--", "sh"]);
    user.expect("$ ");
    // Ctrl-P Ctrl-Q is nothing special now: it reaches the shell (an odd
    // command line, which fails), and the attach goes on.
    user.type_keys(b"\x10\x11\r");
    // (Typed ahead, its echo may come before the shell's error: look for
    // output that the echo cannot contain.)
    user.type_keys(b"echo $((6*7))\r");
    user.expect("42\r\n");
    assert_eq!(helper.lines.try_recv(), Err(TryRecvError::Empty));
    user.type_keys(b"\x01d");
    assert_eq!(helper.line(), "detached");
    // SAFETY: kill(2) of the shell this test's helper started, not reaped.
    assert_eq!(unsafe { libc::kill(helper.command, libc::SIGKILL) }, 0);
    assert_eq!(helper.line(), "exit 137");
    helper.finish(137);
}

#[test]
fn raw_mode_is_restored_when_the_guard_drops_even_in_a_panic() {
    let user = UserTerminal::new(24, 80);
    let before = user.settings();
    assert_eq!(
        cooked(&before),
        (true, true, true, true),
        "a new pty is cooked"
    );
    {
        let guard = RawMode::enable(user.slave.as_fd()).unwrap();
        assert_eq!(cooked(&user.settings()), (false, false, false, false));
        assert_eq!(all(guard.saved()), all(&before));
    }
    assert_eq!(all(&user.settings()), all(&before));

    let slave = user.slave.as_fd();
    let result = std::panic::catch_unwind(|| {
        let _guard = RawMode::enable(slave).unwrap();
        panic!("something went wrong while attached");
    });
    assert!(result.is_err());
    assert_eq!(
        all(&user.settings()),
        all(&before),
        "restored while unwinding"
    );
}

#[test]
fn a_window_change_shows_up_on_the_self_pipe() {
    // The only test in this binary that touches SIGWINCH's action.
    let changes = terminal::WindowChanges::watch().unwrap();
    changes.take(); // (a real resize of the terminal running the tests)
    let err = terminal::WindowChanges::watch().unwrap_err();
    assert_eq!(
        err.to_string(),
        "window size changes are already being watched in this process"
    );
    // SAFETY: raise(3) sends SIGWINCH to this thread, whose handler is the
    // async-signal-safe one `watch` installed.
    assert_eq!(unsafe { libc::raise(libc::SIGWINCH) }, 0);
    let mut fds = [PollFd::new(changes.fd(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 1, "readable");
    assert!(changes.take());
    assert!(!changes.take(), "taken");
    drop(changes);
    // The previous action (the default: ignore) is back, and another may watch.
    let previous = terminal::WindowChanges::watch().unwrap();
    drop(previous);
}

/// The number of the pty whose master is `master` (TIOCGPTN).
fn pty_number(master: BorrowedFd) -> u32 {
    let mut number: libc::c_uint = u32::MAX;
    // SAFETY: TIOCGPTN writes one unsigned int to a live local.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) };
    assert_eq!(rc, 0, "TIOCGPTN: {}", Errno::last());
    number
}

#[test]
fn a_pty_master_travels_over_a_unix_socket() {
    let (master, number) = terminal::open_ptmx(std::path::Path::new("/dev/ptmx")).unwrap();
    let slave = terminal::open_peer(master.as_fd()).unwrap();
    let (runtime, container) = UnixStream::pair().unwrap();
    let name = format!("/dev/pts/{number}");
    terminal::send_fd(container.as_fd(), master.as_fd(), &name).unwrap();
    drop(master); // the sender's copy; the runtime's is another descriptor
    let (received, said) = terminal::recv_fd(runtime.as_fd()).unwrap();
    assert_eq!(said, name);
    assert_eq!(pty_number(received.as_fd()), number, "the same pty");
    // The received descriptor is close-on-exec.
    let flags = nix::fcntl::fcntl(&received, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert_ne!(flags & libc::FD_CLOEXEC, 0);
    // Keys written to it arrive at the slave: it is the pty's master.
    nix::unistd::write(&received, b"ping\n").unwrap();
    let mut line = [0u8; 16];
    let n = nix::unistd::read(&slave, &mut line).unwrap();
    assert_eq!(&line[..n], b"ping\n");

    // A socket closed without a terminal is one clear error.
    drop(container);
    let err = terminal::recv_fd(runtime.as_fd()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the console socket was closed before a terminal was sent"
    );
}

#[test]
fn the_pty_comes_from_the_containers_own_devpts_instance() {
    if !harness::require_root("ch10 a pty from a private devpts instance") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (runtime, container) = UnixStream::pair().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    let mut command = Command::new(HELPER);
    command.arg("console").arg(dir.path()).stderr(writer);
    let socket = container.as_raw_fd();
    // SAFETY: only dup2(2) between fork and exec: async-signal-safe. It puts
    // the socket on fd 3 without close-on-exec, for the helper.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(socket, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let helper = command.spawn().expect("start the helper");
    drop(command);
    drop(container);
    let (master, name) = terminal::recv_fd(runtime.as_fd()).expect("the master");
    // A fresh instance numbers from 0, whatever the host's /dev/pts holds.
    assert_eq!(name, dir.path().join("0").display().to_string());
    assert_eq!(pty_number(master.as_fd()), 0);
    nix::unistd::write(&master, b"ping\n").unwrap();
    let status = harness::process::wait_with_deadline(helper, "the helper", PATIENCE);
    let mut said = String::new();
    BufReader::new(reader).read_to_string(&mut said).unwrap();
    assert!(status.status.success(), "{said}");
    assert_eq!(said, format!("slave {name}\nread ping\n"));
    // The devpts was mounted in the helper's mount namespace only.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.path().display().to_string()),
        "{mounts}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
