//! The userspace proxy behind a published port, as Docker's `docker-proxy`.
//!
//! `-p 6379:6379` means: whoever connects to port 6379 of the host reaches
//! port 6379 of the container. The container's address (`172.29.0.2`) is only
//! reachable from the host, through the bridge; so something on the host
//! listens on `0.0.0.0:6379`, and for each connection it accepts, opens a
//! connection of its own to `172.29.0.2:6379` and copies bytes both ways until
//! either side closes. That is all a userspace proxy is. It needs no firewall
//! rule per container, works for `localhost` (which packet rewriting cannot
//! reach without `route_localnet`), and is gone when the process ends.
//!
//! The price is that the container sees the proxy's address (the gateway,
//! `172.29.0.1`) as its client instead of the real one, and every byte is
//! copied through user space.
//!
//! For UDP there are no connections: the proxy remembers each client address
//! it hears from and gives it its own socket towards the container, so that a
//! reply can be sent back to the right client.
//!
//! # Namespaces
//!
//! The listening socket belongs to the namespace it was bound in (see
//! [`crate::netns`]). The proxy's threads, which open the sockets towards the
//! container, are started by [`Proxy::start_tcp`] / [`Proxy::start_udp`] and
//! inherit the network namespace of the thread that calls them: minibox calls
//! them on the host; a test calls them inside [`crate::netns::run_in`] on the
//! namespace that plays the host.
//!
//! There is no `ip` equivalent; `socat TCP-LISTEN:6379,fork
//! TCP:172.29.0.2:6379` is the one-line shell version of the TCP half.
// SIMPLIFICATION: Docker programs iptables DNAT rules for published ports and
// uses docker-proxy only where DNAT cannot reach (localhost, hairpin); it runs
// one docker-proxy process per port. We use the proxy for everything, as
// threads of the process that watches the container. docker-proxy also
// expires idle UDP clients after 90 s; we keep them until the proxy stops.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::publish::Protocol;

/// Binds the host side of a published TCP port: the first free port of
/// `ports` (inclusive; `None` lets the kernel pick any free port) on `ip`
/// (`None`: every address).
///
/// A port that is taken gives Docker's message:
/// `Bind for 0.0.0.0:6379 failed: port is already allocated`.
pub fn bind_tcp(ip: Option<IpAddr>, ports: Option<(u16, u16)>) -> Result<TcpListener> {
    bind_first(ip, ports, Protocol::Tcp, TcpListener::bind)
}

/// Binds the host side of a published UDP port, as [`bind_tcp`].
pub fn bind_udp(ip: Option<IpAddr>, ports: Option<(u16, u16)>) -> Result<UdpSocket> {
    bind_first(ip, ports, Protocol::Udp, UdpSocket::bind)
}

/// Tries each port of the range in turn; `EADDRINUSE` on all of them is
/// "port is already allocated", anything else is reported as it is.
fn bind_first<S>(
    ip: Option<IpAddr>,
    ports: Option<(u16, u16)>,
    protocol: Protocol,
    bind: impl Fn(SocketAddr) -> std::io::Result<S>,
) -> Result<S> {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let (first, last) = ports.unwrap_or((0, 0));
    for port in first..=last {
        match bind(SocketAddr::new(ip, port)) {
            Ok(socket) => return Ok(socket),
            Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("bind {protocol} {}", SocketAddr::new(ip, port)));
            }
        }
    }
    let ports = if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    };
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    bail!("Bind for {host}:{ports} failed: port is already allocated")
}

/// A running proxy for one published port. Dropping it stops it.
pub struct Proxy {
    /// The address the proxy listens on (with the port the kernel chose,
    /// when the spec gave none: that is the port to print).
    local_addr: SocketAddr,
    /// The write end of the stop pipe. Closing it wakes the proxy's thread
    /// (its `poll` sees `POLLHUP` on the read end), which is how `stop`
    /// interrupts a blocking wait without signals.
    stop: Option<OwnedFd>,
    /// The proxy's main thread; it joins its own helpers before it ends.
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding TCP connections accepted on `listener` to `target`
    /// (the container's address and port).
    pub fn start_tcp(listener: TcpListener, target: SocketAddr) -> Result<Self> {
        let local_addr = listener.local_addr().context("listener address")?;
        let (stop_rx, stop_tx) = nix::unistd::pipe().context("pipe for the proxy's stop signal")?;
        let thread = std::thread::Builder::new()
            .name(format!("proxy-tcp-{}", local_addr.port()))
            .spawn(move || tcp_accept_loop(listener, target, stop_rx))
            .context("spawn proxy thread")?;
        Ok(Self {
            local_addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Starts relaying UDP datagrams received on `socket` to `target`, and
    /// the container's replies back to each client.
    pub fn start_udp(socket: UdpSocket, target: SocketAddr) -> Result<Self> {
        let local_addr = socket.local_addr().context("socket address")?;
        let (stop_rx, stop_tx) = nix::unistd::pipe().context("pipe for the proxy's stop signal")?;
        let thread = std::thread::Builder::new()
            .name(format!("proxy-udp-{}", local_addr.port()))
            .spawn(move || udp_relay_loop(socket, target, stop_rx))
            .context("spawn proxy thread")?;
        Ok(Self {
            local_addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The host address and port the proxy listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every open connection, waits for every thread
    /// of the proxy to end, and frees the port.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    /// Closes the stop pipe and joins the main thread.
    fn shutdown(&mut self) -> Result<()> {
        drop(self.stop.take());
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| anyhow!("proxy thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Waits until `fd` is readable or the stop pipe closes; true means "stop".
fn wait_or_stop(fd: impl AsFd, stop: &OwnedFd) -> bool {
    let mut fds = [
        PollFd::new(fd.as_fd(), PollFlags::POLLIN),
        PollFd::new(stop.as_fd(), PollFlags::POLLIN),
    ];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) => fds[1].revents().is_some_and(|r| !r.is_empty()),
        Err(nix::errno::Errno::EINTR) => false,
        Err(_) => true,
    }
}

/// The TCP proxy's main thread: accept, connect to the target, copy.
fn tcp_accept_loop(listener: TcpListener, target: SocketAddr, stop: OwnedFd) {
    // Every open connection's two sockets, so that stopping can shut them
    // down and wake the copy threads blocked in read(2).
    let open: Arc<Mutex<HashMap<u64, (TcpStream, TcpStream)>>> = Arc::default();
    let next_id = AtomicU64::new(0);
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !wait_or_stop(&listener, &stop) {
        let Ok((client, _)) = listener.accept() else {
            continue;
        };
        // SIMPLIFICATION: a container that does not answer is given 5 s
        // before the client is dropped; docker-proxy waits as long as the
        // kernel's connect does.
        let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
            continue; // the client sees its connection closed, as with docker-proxy
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        if let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) {
            open.lock().unwrap().insert(id, (c, u));
        }
        let open = Arc::clone(&open);
        workers.retain(|w| !w.is_finished());
        workers.push(std::thread::spawn(move || {
            copy_both_ways(client, upstream);
            open.lock().unwrap().remove(&id);
        }));
    }
    for (client, upstream) in open.lock().unwrap().values() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    }
    for worker in workers {
        let _ = worker.join();
    }
}

// ANCHOR: copy_both_ways
/// Copies `a` -> `b` on a helper thread and `b` -> `a` here. When one side
/// finishes sending, the other is told so with a half-close
/// (`shutdown(SHUT_WR)`), which is how a request/response protocol learns
/// that the request is complete.
fn copy_both_ways(a: TcpStream, b: TcpStream) {
    let (Ok(mut a_read), Ok(mut b_write)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(Shutdown::Write);
    });
    let (mut b_read, mut a_write) = (b, a);
    let _ = std::io::copy(&mut b_read, &mut a_write);
    let _ = a_write.shutdown(Shutdown::Write);
    let _ = forward.join();
}
// ANCHOR_END: copy_both_ways

/// The UDP proxy's main thread: a socket towards the target per client, and
/// a thread per client carrying the replies back.
fn udp_relay_loop(socket: UdpSocket, target: SocketAddr, stop: OwnedFd) {
    let stopping = Arc::new(AtomicBool::new(false));
    let mut clients: HashMap<SocketAddr, UdpSocket> = HashMap::new();
    let mut repliers: Vec<JoinHandle<()>> = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !wait_or_stop(&socket, &stop) {
        let Ok((len, client)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let upstream = match clients.entry(client) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => {
                let Ok(upstream) = udp_upstream(target) else {
                    continue;
                };
                let (Ok(reply_from), Ok(reply_to)) = (upstream.try_clone(), socket.try_clone())
                else {
                    continue;
                };
                let stopping = Arc::clone(&stopping);
                repliers.push(std::thread::spawn(move || {
                    relay_replies(reply_from, reply_to, client, &stopping)
                }));
                new.insert(upstream)
            }
        };
        let _ = upstream.send(&buf[..len]);
    }
    stopping.store(true, Ordering::Relaxed);
    for replier in repliers {
        let _ = replier.join();
    }
}

/// Carries the container's replies arriving on `from` back to `client`
/// through the proxy's own socket `to`, until the proxy stops.
fn relay_replies(from: UdpSocket, to: UdpSocket, client: SocketAddr, stopping: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    while !stopping.load(Ordering::Relaxed) {
        match from.recv(&mut buf) {
            Ok(n) => {
                let _ = to.send_to(&buf[..n], client);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

/// A UDP socket connected to `target`, with a short read timeout so its reply
/// thread notices a stop.
fn udp_upstream(target: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let upstream = UdpSocket::bind(any)?;
    upstream.connect(target)?;
    upstream.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(upstream)
}
