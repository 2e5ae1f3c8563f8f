//! A user-mode network stack: how a rootless container reaches the network,
//! and how `-p 6379:6379` reaches it, without touching the host's network.
//!
//! ## Why a rootless container needs one
//!
//! Chapter 9 wired a container with a veth pair: one end in the container as
//! `eth0`, the other on the bridge `minibox0` in the host's network
//! namespace, plus a MASQUERADE rule. Creating that end, plugging it into a
//! bridge and adding the rule are changes to the *host's* namespace, and the
//! kernel allows them only with CAP_NET_ADMIN in the user namespace that owns
//! it: the initial one, where only real root has it (`network_namespaces(7)`,
//! `user_namespaces(7)`). A rootless minibox is root in a user namespace of
//! its own: it may do anything in the container's network namespace, which
//! that user namespace owns, and nothing in the host's.
//!
//! What any user may do in the host's namespace is open sockets. A user-mode
//! network stack is a process that does that on the container's behalf. It
//! gives the container a **tap device** (`tap0`), a network interface whose
//! wire is a file descriptor: every frame the container's kernel sends
//! through `tap0` is `read(2)` by the stack, and every frame the stack
//! `write(2)`s arrives in the container as if received. Between the two
//! sides sits a TCP/IP stack written in user space, which turns the
//! container's packets into ordinary sockets of the user who runs minibox.
//!
//! ## The path of a packet
//!
//! `wget http://example.com` in the container:
//!
//! 1. The container's kernel routes the SYN by its default route: out of
//!    `tap0`, towards the gateway.
//! 2. The stack reads the frame from the tap's descriptor and parses it:
//!    Ethernet, IPv4, TCP, a new connection to example.com port 80.
//! 3. It opens a socket of its own in the host's namespace and `connect(2)`s
//!    it to example.com: from the host's address, through the host's routes,
//!    as the user, like any program of theirs.
//! 4. What comes back on that socket it wraps in TCP segments and writes to
//!    the tap: the container's kernel sees example.com answer.
//!
//! A published port is the same in reverse: the stack listens on the host's
//! `127.0.0.1:6379`, and each connection it accepts becomes a connection
//! into the container's port 6379.
//!
//! ## pasta and slirp4netns
//!
//! **slirp4netns** (2018, rootless podman's first stack) runs libslirp,
//! QEMU's user-mode network: a NAT. The container lives on a private
//! network, `10.0.2.0/24`, as `10.0.2.100`; `10.0.2.2` (the gateway) and
//! `10.0.2.3` (a DNS forwarder) are the stack itself. libslirp is a whole
//! TCP/IP stack: it ends the container's TCP connections itself and opens
//! new ones to where they were going, buffering the bytes in between (a
//! kernel's NAT only rewrites the addresses of packets). Ports are
//! published after it starts, through a JSON API on a unix socket.
//!
//! **pasta** (2022, podman's default since 5.0) maps instead of translating:
//! it copies the host's address, netmask and default route into the
//! container, so the container has the same address inside as the host
//! outside, and it keeps no TCP buffers: it reflects each side's window and
//! acknowledgements to the other. Traffic between the host's loopback and
//! the container skips the tap: pasta opens a socket in each namespace and
//! `splice(2)`s between them, so a connection to a port published on
//! `127.0.0.1` arrives in the container from `127.0.0.1`. Ports are given
//! on its command line, and bound before it says it is ready.
//!
//! ## Life cycle
//!
//! The container's monitor starts the stack once the container's process
//! exists (its network namespace is what the stack attaches to) and before
//! the container's program runs, and waits until the stack says it is
//! ready: slirp4netns writes to a pipe (`--ready-fd`), pasta writes its PID
//! to a file (`--pid`), which minibox makes a pipe too. It stops the stack,
//! by PID, after the container ends. The stack must not outlive the
//! monitor: slirp4netns exits when another pipe from the monitor closes
//! (`--exit-fd`), which the kernel does when the monitor dies; pasta gets
//! a signal when the monitor's thread that started it ends
//! (`PR_SET_PDEATHSIG`, `prctl(2)`).
//!
//! ## Layout
//!
//! - `mod.rs`: which stack ([`Stack`]), the published ports ([`Forward`]),
//!   the running stack ([`UserNet`]) and what both stacks share: starting
//!   the process, waiting until it is ready, stopping it.
//! - `pasta.rs`: pasta's command line, and asking the container which
//!   address pasta gave it.
//! - `slirp.rs`: slirp4netns's command line, and its API for the ports.
//!
//! SIMPLIFICATION: IPv4 only (pasta `--ipv4-only`, slirp4netns without
//! `--enable-ipv6`), and a published port needs its host port. Podman also
//! gives the container IPv6, publishes on `[::]` too, and lets the kernel
//! pick a host port; it runs pasta in the background and lets it quit when
//! the namespace's bind mount is deleted, where minibox keeps it as a child.

mod pasta;
mod slirp;

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, DirBuilder, File};
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use ch09_networking::proxy;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The environment variable that chooses the stack: `pasta` or
/// `slirp4netns`. Unset, minibox takes pasta if it is installed, as podman
/// 5 does, and slirp4netns otherwise.
pub const ENV: &str = "MINIBOX_USERNET";

/// The name of the tap device in the container, with either stack: `tap0`,
/// as podman names slirp4netns's. (pasta would otherwise name it after the
/// host's interface, `eth0` or `ens3`.)
pub const TAP: &str = "tap0";

/// How long a stack may take to say it is ready (both take milliseconds).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stack may take to end once asked, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Which user-mode network stack connects the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// pasta, of the passt project: maps the host's addresses into the
    /// container.
    Pasta,
    /// slirp4netns: libslirp's NAT, the container on `10.0.2.0/24`.
    Slirp4netns,
}

impl Stack {
    /// Both stacks, in the order minibox prefers them.
    pub const ALL: [Stack; 2] = [Stack::Pasta, Stack::Slirp4netns];

    /// The stack to use and its program: the one [`ENV`] names, else pasta
    /// if it is on `PATH`, else slirp4netns; `None` if that is not
    /// installed (or [`ENV`] names neither).
    ///
    /// Unasked, pasta is passed over on a host without a default route:
    /// it copies the host's uplink into the container, and refuses to
    /// start without one ("External interface not usable").
    pub fn find() -> Option<(Stack, PathBuf)> {
        let wanted = std::env::var(ENV).ok();
        let path = std::env::var_os("PATH");
        let found = choose(wanted.as_deref(), path.as_deref());
        match found {
            Some((Stack::Pasta, _)) if wanted.is_none() && !has_default_route() => {
                choose(Some(Stack::Slirp4netns.name()), path.as_deref()).or(found)
            }
            found => found,
        }
    }

    /// This stack's program on `PATH`, if it is installed.
    pub fn on_path(self) -> Option<PathBuf> {
        search(self.name(), std::env::var_os("PATH").as_deref())
    }

    /// Its name, which is also its program's name and [`ENV`]'s value.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Pasta => "pasta",
            Stack::Slirp4netns => "slirp4netns",
        }
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// [`Stack::find`] with its two inputs as arguments: `wanted` is [`ENV`]'s
/// value, `path` is `PATH`.
fn choose(wanted: Option<&str>, path: Option<&OsStr>) -> Option<(Stack, PathBuf)> {
    let wanted = wanted.filter(|name| !name.is_empty());
    Stack::ALL
        .into_iter()
        .filter(|stack| wanted.is_none_or(|name| name == stack.name()))
        .find_map(|stack| search(stack.name(), path).map(|program| (stack, program)))
}

/// The first executable file named `program` in the directories of `path`
/// (what a shell does with `PATH`).
fn search(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    crate::checks::find_program(Path::new("/"), path?, program)
}

/// Whether this network namespace has an IPv4 default route (a line of
/// `/proc/net/route` whose destination and mask are 0).
fn has_default_route() -> bool {
    fs::read_to_string("/proc/net/route").is_ok_and(|table| {
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"00000000") && fields.get(7) == Some(&"00000000")
        })
    })
}

/// One published port (`-p 127.0.0.1:6379:6379`): connections to
/// `host_ip:host_port` in the caller's network namespace reach
/// `container_port` in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// UDP instead of TCP (`-p 53:53/udp`).
    pub udp: bool,
    /// The host address to listen on: `0.0.0.0` for all of them, or one,
    /// often `127.0.0.1` so that only the host's own programs reach it.
    pub host_ip: IpAddr,
    /// The port on the host. It must be given (not 0): see the module's
    /// SIMPLIFICATION.
    pub host_port: u16,
    /// The port the container's program listens on.
    pub container_port: u16,
}

impl Forward {
    /// `tcp` or `udp`, as both stacks and Docker spell it.
    fn protocol(&self) -> &'static str {
        if self.udp { "udp" } else { "tcp" }
    }
}

impl fmt::Display for Forward {
    /// `6379/tcp from 127.0.0.1:6379`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (port, protocol) = (self.container_port, self.protocol());
        write!(
            f,
            "{port}/{protocol} from {}:{}",
            self.host_ip, self.host_port
        )
    }
}

/// A running user-mode network stack, attached to one container's network
/// namespace. [`UserNet::stop`] ends it; dropped without that, it is ended
/// all the same, so that no error path leaves a stack behind.
#[derive(Debug)]
pub struct UserNet {
    /// The stack's process, our child.
    process: Process,
    /// The container's address on `tap0`: fixed for slirp4netns, the host's
    /// for pasta, as the container's kernel reported it.
    address: Ipv4Addr,
    /// What the container's `resolv.conf` should list: where the stack
    /// answers DNS queries.
    nameservers: Vec<IpAddr>,
    /// The published ports, for [`UserNet::summary`].
    forwards: Vec<Forward>,
}

impl UserNet {
    /// Connects the network namespace of process `pid` (the container) to
    /// the caller's: the stack configures `tap0` in it (address, default
    /// route, `lo` up) and publishes `forwards` in the caller's namespace.
    /// Returns once traffic flows and the forwards listen.
    ///
    /// Call it from the thread that will outlive the stack (the monitor's
    /// main thread): pasta's parent-death signal fires when *that thread*
    /// ends. Fails with one line (a taken port in Docker's words, a stack
    /// that is missing or refuses) and then leaves no process behind.
    pub fn start(stack: Stack, program: &Path, pid: Pid, forwards: &[Forward]) -> Result<UserNet> {
        for forward in forwards {
            if !forward.host_ip.is_ipv4() || forward.host_port == 0 {
                bail!(
                    "cannot publish {forward} with {stack}: an IPv4 address and a host port are needed"
                );
            }
        }
        // The directory is needed only while the stack starts (its log, to
        // say why it failed; slirp4netns's API socket, to publish the
        // ports): it goes at the end of this function, so that a monitor
        // that dies later leaves nothing on disk.
        let dir = PrivateDir::create()?;
        let (process, address, nameservers) = match stack {
            Stack::Pasta => pasta::start(program, pid, forwards, &dir)?,
            Stack::Slirp4netns => slirp::start(program, pid, forwards, &dir)?,
        };
        let forwards = forwards.to_vec();
        Ok(UserNet {
            process,
            address,
            nameservers,
            forwards,
        })
    }

    /// The container's address on `tap0`: `10.0.2.100` with slirp4netns;
    /// with pasta, the host's own address (of its interface with the
    /// default route).
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// What the container's `/etc/resolv.conf` should list: slirp4netns's
    /// DNS forwarder `10.0.2.3`; with pasta, `169.254.1.1`, which pasta
    /// forwards to the host's first nameserver (podman's choice of address).
    pub fn nameservers(&self) -> Vec<IpAddr> {
        self.nameservers.clone()
    }

    /// Which stack this is.
    pub fn stack(&self) -> Stack {
        self.process.stack
    }

    /// The stack's process ID, in the caller's PID namespace.
    pub fn pid(&self) -> Pid {
        self.process.pid()
    }

    /// One line for the narration:
    /// `tap0 10.0.2.100/24 via slirp4netns, 6379/tcp from 127.0.0.1:6379`.
    pub fn summary(&self) -> String {
        let address = match self.process.stack {
            Stack::Slirp4netns => format!("{}/{}", self.address, slirp::PREFIX_LEN),
            Stack::Pasta => format!("{} (the host's)", self.address),
        };
        let mut line = format!("{TAP} {address} via {}", self.process.stack);
        for forward in &self.forwards {
            line.push_str(&format!(", {forward}"));
        }
        line
    }

    /// Stops the stack, by its PID, and waits for it to end. Its published
    /// ports are free again after.
    pub fn stop(mut self) -> Result<()> {
        self.process.end()
    }
}

/// Why a forward could not be published, in words a user can act on. The
/// stacks do not say why a bind failed (slirp4netns answers
/// "slirp_add_hostfwd failed"), so minibox binds each port itself, once the
/// stack is gone, with chapter 9's proxy: a taken port gives Docker's
/// `Bind for 127.0.0.1:6379 failed: port is already allocated`. If every
/// port binds, the stack's own message stands.
fn unpublished(forwards: &[Forward], stack_error: anyhow::Error) -> anyhow::Error {
    for forward in forwards {
        let ports = Some((forward.host_port, forward.host_port));
        let bound = if forward.udp {
            proxy::bind_udp(Some(forward.host_ip), ports).map(drop)
        } else {
            proxy::bind_tcp(Some(forward.host_ip), ports).map(drop)
        };
        if let Err(why) = bound {
            return why;
        }
    }
    stack_error
}

/// The stack's process, our child. Dropped before [`Process::end`], it is
/// ended then.
#[derive(Debug)]
struct Process {
    /// Which stack runs.
    stack: Stack,
    /// The process itself. Being its parent is what makes its PID safe to
    /// signal: until we reap it, the kernel cannot give the PID to another.
    child: Child,
    /// slirp4netns's end of the pipe whose closing stops it (`--exit-fd`):
    /// closed when we stop it, and by the kernel if the monitor dies.
    exit_fd: Option<OwnedFd>,
    /// Where its standard error goes (in the private directory, while it
    /// starts).
    log: PathBuf,
    /// Whether [`Process::end`] has run.
    ended: bool,
}

impl Process {
    // ANCHOR: spawn
    /// Starts `command` as the stack: no input, no output, its standard
    /// error in `log`; the descriptors of `pass` stay open across exec
    /// (everything else is close-on-exec, so nothing else reaches it).
    /// With `death_signal`, the kernel sends it that signal when the calling
    /// thread ends.
    fn spawn(
        stack: Stack,
        mut command: Command,
        log: PathBuf,
        pass: &[BorrowedFd<'_>],
        death_signal: Option<Signal>,
    ) -> Result<Process> {
        let stderr = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let pass: Vec<RawFd> = pass.iter().map(AsRawFd::as_raw_fd).collect();
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and calls only
        // fcntl(2), prctl(2) and getppid(2), which are async-signal-safe; it
        // allocates nothing (`pass` was built before the fork).
        unsafe {
            command.pre_exec(move || {
                for &fd in &pass {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(signal) = death_signal {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent may have died before prctl: then no signal
                    // will ever come, and the stack must not start.
                    if libc::getppid() as u32 != parent {
                        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                    }
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {}", command.get_program().display()))?;
        Ok(Process {
            stack,
            child,
            exit_fd: None,
            log,
            ended: false,
        })
    }
    // ANCHOR_END: spawn

    /// The stack's PID.
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits until the stack writes to its end of the `ready` pipe (both
    /// stacks write once everything is set up). End of file instead means
    /// it died: the error is its last line of log.
    fn wait_ready(&mut self, ready: OwnedFd) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut poll = libc::pollfd {
            fd: ready.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{} was not ready after {} s",
                    self.stack,
                    READY_TIMEOUT.as_secs()
                );
            }
            let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            // SAFETY: `poll` is one valid pollfd, and `ready` stays open
            // for the whole call.
            let n = unsafe { libc::poll(&mut poll, 1, millis) };
            if n > 0 {
                break;
            }
            let error = std::io::Error::last_os_error();
            if n == -1 && error.kind() != ErrorKind::Interrupted {
                return Err(error).context("poll");
            }
        }
        let mut byte = [0u8; 1];
        if let Ok(1) = File::from(ready).read(&mut byte) {
            return Ok(());
        }
        // Every copy of the write end is closed: the stack has exited, or
        // is about to.
        self.end()?;
        let status = self.child.try_wait().ok().flatten();
        let status = status.map_or("not reaped".to_string(), |status| status.to_string());
        Err(anyhow!(
            "{} failed ({status}): {}",
            self.stack,
            self.last_words()
        ))
    }

    /// The last line the stack wrote to its log: why it failed.
    fn last_words(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let last = log.lines().rev().find(|line| !line.trim().is_empty());
        last.unwrap_or("no message").trim().to_string()
    }

    /// Asks the stack to end (slirp4netns: its exit pipe closes; pasta:
    /// SIGTERM by PID), waits [`STOP_GRACE`], then SIGKILLs it, and reaps
    /// it.
    fn end(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.ended, true) {
            return Ok(());
        }
        let pid = self.pid();
        let exit_fd = self.exit_fd.take();
        let running = self
            .child
            .try_wait()
            .context("wait for the stack")?
            .is_none();
        if exit_fd.is_none() && running {
            kill(pid, Signal::SIGTERM).with_context(|| format!("kill -TERM {pid}"))?;
        }
        drop(exit_fd);
        let deadline = Instant::now() + STOP_GRACE;
        while self
            .child
            .try_wait()
            .context("wait for the stack")?
            .is_none()
        {
            if Instant::now() > deadline {
                // Not reaped yet, so the PID is still this stack's.
                kill(pid, Signal::SIGKILL).with_context(|| format!("kill -KILL {pid}"))?;
                self.child.wait().context("wait for the stack")?;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // An error path (or a panic) dropped a running stack: end it.
        let _ = self.end();
    }
}

/// A directory only its owner may enter (mode 0700) under the temporary
/// directory, for the stack's log and slirp4netns's API socket while the
/// stack starts; removed with its contents when dropped.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Creates `$TMPDIR/minibox-usernet-PID-N`.
    fn create() -> Result<PrivateDir> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("minibox-usernet-{}-{n}", std::process::id());
            let path = std::env::temp_dir().join(name);
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir(path)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
            }
        }
    }

    /// A file of this directory.
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A directory with executables named as both stacks, or only one.
    fn fake_path(programs: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for program in programs {
            let path = dir.path().join(program);
            fs::write(&path, "").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn pasta_first_unless_the_variable_says_otherwise() {
        let both = fake_path(&["pasta", "slirp4netns"]);
        let path = Some(both.path().as_os_str());
        assert_eq!(choose(None, path).unwrap().0, Stack::Pasta);
        assert_eq!(choose(Some(""), path).unwrap().0, Stack::Pasta);
        let chosen = choose(Some("slirp4netns"), path).unwrap();
        assert_eq!(
            chosen,
            (Stack::Slirp4netns, both.path().join("slirp4netns"))
        );
        assert_eq!(choose(Some("slirp"), path), None, "only the two names");
    }

    #[test]
    fn a_stack_that_is_not_installed_is_not_chosen() {
        let only_slirp = fake_path(&["slirp4netns"]);
        let path = Some(only_slirp.path().as_os_str());
        assert_eq!(choose(None, path).unwrap().0, Stack::Slirp4netns);
        assert_eq!(choose(Some("pasta"), path), None);
        let not_executable = fake_path(&[]);
        fs::write(not_executable.path().join("pasta"), "").unwrap();
        assert_eq!(choose(None, Some(not_executable.path().as_os_str())), None);
    }
}
