//! The client side of a container: the user's terminal connected to the
//! container's monitor, for a foreground `run` and for `minibox attach`.
//!
//! Without `-t` the client copies its stdin (with `-i`) to the monitor and
//! the container's stdout and stderr back to its own ([`monitor::Session::pump`]).
//! With `-t` it is a terminal's client: the user's terminal goes raw (with
//! `-i`), its window size is sent now and on every change, and the keys are
//! watched for the detach sequence. Detaching leaves the container running:
//! only the client goes.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::log::Stream;
use crate::monitor::{Ended, Event, Session};
use crate::terminal::{self, DetachFilter, DetachKeys, RawMode, WindowChanges};

/// The longest path a Unix socket can be bound to (`sun_path`, less its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// `path` for the monitor's attach socket, unless it is too long for a
/// socket address (a `MINIBOX_RUN` deep in a temporary directory): then the
/// container has none, and `attach` says so.
pub fn socket_path(path: PathBuf) -> Option<PathBuf> {
    (path.as_os_str().len() <= SOCKET_PATH_MAX).then_some(path)
}

/// With `-t`: the user's window size, if stdout is a terminal, for the
/// container's terminal's first size.
pub fn window_size(tty: bool) -> Option<terminal::WindowSize> {
    let stdout = io::stdout();
    let is_tty = nix::unistd::isatty(stdout.as_fd()).unwrap_or(false);
    (tty && is_tty)
        .then(|| terminal::window_size(stdout.as_fd()).ok())
        .flatten()
}

/// Docker's `TERM` for a container with a terminal, unless `-e` or the image
/// set one.
pub fn term_variable(env: &mut Vec<String>) {
    if !env.iter().any(|entry| entry.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
}

/// How an attached client's session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The container ended, as the monitor reported.
    Ended(Ended),
    /// The user typed the detach keys: the container runs on.
    Detached,
    /// The monitor went away without a word (it was killed).
    MonitorGone,
}

/// What the client copies.
#[derive(Debug, Clone, Copy)]
pub struct Attach<'a> {
    /// `-i`: the user's keys go to the container.
    pub interactive: bool,
    /// `-t`: the container has a terminal.
    pub tty: bool,
    /// The detach sequence (with `-t`).
    pub keys: &'a DetachKeys,
}

// ANCHOR: attach
/// Connects the user's terminal to the container through `session` until
/// the container ends or the user detaches.
pub fn attach(session: Session, how: Attach) -> Result<Outcome> {
    let stdin = io::stdin();
    let input = how.interactive.then(|| stdin.as_fd());
    if !how.tty {
        let (mut stdout, mut stderr) = (io::stdout(), io::stderr());
        return Ok(match session.pump(input, &mut stdout, &mut stderr)? {
            Some(ended) => Outcome::Ended(ended),
            None => Outcome::MonitorGone,
        });
    }
    let stdout = io::stdout();
    let is_tty = |fd: BorrowedFd| nix::unistd::isatty(fd).unwrap_or(false);
    let _raw = match input {
        Some(fd) if is_tty(fd) => Some(RawMode::enable(fd)?),
        _ => None,
    };
    let window = if is_tty(stdout.as_fd()) {
        Some(WindowChanges::watch()?) // before the first size, so no change is missed
    } else {
        None
    };
    let mut client = Client {
        session,
        input,
        filter: DetachFilter::new(how.keys),
    };
    if window.is_some() {
        client.send_size()?;
    }
    client.copy(window.as_ref())
}
// ANCHOR_END: attach

/// A terminal's client while it runs.
struct Client<'a> {
    session: Session,
    input: Option<BorrowedFd<'a>>,
    filter: DetachFilter,
}

impl Client<'_> {
    /// Sends the user's window size to the container's terminal.
    fn send_size(&mut self) -> Result<()> {
        let size = terminal::window_size(io::stdout().as_fd())?;
        self.session.resize(size.ws_row, size.ws_col)
    }

    /// The copy loop: output to the user's terminal, keys to the container,
    /// window changes to its terminal, until an end.
    fn copy(&mut self, window: Option<&WindowChanges>) -> Result<Outcome> {
        loop {
            let mut fds = vec![PollFd::new(self.session.as_fd(), PollFlags::POLLIN)];
            if let Some(input) = self.input {
                fds.push(PollFd::new(input, PollFlags::POLLIN));
            }
            if let Some(window) = window {
                fds.push(PollFd::new(window.fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(errno).context("poll"),
            }
            let ready: Vec<bool> = fds.iter().map(|fd| fd.any().unwrap_or(false)).collect();
            drop(fds);
            if window.is_some_and(WindowChanges::take) {
                self.send_size()?;
            }
            if ready[0]
                && let Some(outcome) = self.read_monitor()?
            {
                return Ok(outcome);
            }
            if ready.get(1) == Some(&true) && self.input.is_some() && self.read_keys()? {
                return Ok(Outcome::Detached);
            }
        }
    }

    /// What the monitor sent: output to show, or the end.
    fn read_monitor(&mut self) -> Result<Option<Outcome>> {
        let Some(events) = self.session.receive()? else {
            return Ok(Some(Outcome::MonitorGone));
        };
        let mut stdout = io::stdout().lock();
        for event in events {
            match event {
                Event::Output(Stream::Stdout | Stream::Stderr, data) => {
                    // A terminal that went away is no reason to stop.
                    let _ = stdout.write_all(&data).and_then(|()| stdout.flush());
                }
                Event::Exited(ended) => return Ok(Some(Outcome::Ended(ended))),
            }
        }
        Ok(None)
    }

    /// The user's keys, to the container, unless they detach. Returns
    /// whether they did.
    fn read_keys(&mut self) -> Result<bool> {
        let Some(input) = self.input else {
            return Ok(false);
        };
        let mut buffer = [0u8; 4096];
        let mut keys = Vec::new();
        match nix::unistd::read(input, &mut buffer) {
            Ok(0) | Err(Errno::EIO) => {
                self.input = None;
                self.session.close_stdin()?;
                Ok(false)
            }
            Ok(count) => {
                let detached = self.filter.feed(&buffer[..count], &mut keys);
                if !keys.is_empty() {
                    self.session.send_stdin(&keys)?;
                }
                Ok(detached)
            }
            Err(Errno::EINTR | Errno::EAGAIN) => Ok(false),
            Err(errno) => Err(errno).context("read the user's input"),
        }
    }
}
