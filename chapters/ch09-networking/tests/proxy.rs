//! A published port, end to end: a server in the "container" namespace is
//! reached through the proxy on the "host" namespace's 127.0.0.1, as
//! `redis-cli -p 6379` reaches redis after `docker run -p 6379:6379 redis`.
//! A taken port is refused in Docker's words, and stopping the proxy closes
//! its connections and frees the port.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

use ch09_networking::netns;
use ch09_networking::proxy::{self, Proxy};
use common::{CONTAINER, GATEWAY};

const LOCALHOST: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));

/// A line-echo server on the container's address; each reply says which
/// client address the server saw.
fn container_echo_server(ctr: std::os::fd::BorrowedFd<'_>, port: u16) {
    let listener = netns::run_in(ctr, move || Ok(TcpListener::bind((CONTAINER, port))?)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            std::thread::spawn(move || {
                let peer = conn.peer_addr().unwrap();
                let mut writer = conn.try_clone().unwrap();
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { break };
                    if writeln!(writer, "{line} (from {})", peer.ip()).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

#[test]
fn tcp_published_port_reaches_the_container_and_stops_cleanly() {
    if !common::require_root("proxy: tcp published port") {
        return;
    }
    let topo = common::topology("mbxp");
    container_echo_server(topo.ctr.as_fd(), 6379);

    // -p 127.0.0.1:16379:6379, in the host namespace.
    let target = SocketAddr::from((CONTAINER, 6379));
    let proxy = netns::run_in(topo.host.as_fd(), move || {
        let listener = proxy::bind_tcp(LOCALHOST, Some((16379, 16379)))?;
        Proxy::start_tcp(listener, target)
    })
    .unwrap();
    assert_eq!(proxy.local_addr(), "127.0.0.1:16379".parse().unwrap());

    let client = netns::run_in(topo.host.as_fd(), || {
        Ok(TcpStream::connect("127.0.0.1:16379")?)
    })
    .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut writer = client;
    writeln!(writer, "PING").unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // The container sees the proxy, i.e. the host's address on the bridge.
    assert_eq!(line, format!("PING (from {GATEWAY})\n"));

    // The port is taken now: a second container asking for it is refused.
    let err = netns::run_in(topo.host.as_fd(), || {
        proxy::bind_tcp(LOCALHOST, Some((16379, 16379)))
    })
    .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "Bind for 127.0.0.1:16379 failed: port is already allocated"
    );
    // A range with room picks the next free port.
    let other = netns::run_in(topo.host.as_fd(), || {
        proxy::bind_tcp(LOCALHOST, Some((16379, 16380)))
    })
    .unwrap();
    assert_eq!(other.local_addr().unwrap().port(), 16380);
    drop(other);

    // Stop: the open connection is closed, and the port is free again.
    proxy.stop().unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        reader.read_to_end(&mut rest).unwrap(),
        0,
        "the connection was closed"
    );
    let again = netns::run_in(topo.host.as_fd(), || {
        proxy::bind_tcp(LOCALHOST, Some((16379, 16379)))
    });
    assert!(
        again.is_ok(),
        "the port is free after stop: {:?}",
        again.err()
    );
    drop(again);
    drop(topo);
    common::assert_host_has_no_link("mbxp");
}

#[test]
fn a_port_left_to_the_kernel_is_reported() {
    if !common::require_root("proxy: dynamic host port") {
        return;
    }
    let topo = common::topology("mbxq");
    container_echo_server(topo.ctr.as_fd(), 80);
    let target = SocketAddr::from((CONTAINER, 80));
    // -p 127.0.0.1::80
    let proxy = netns::run_in(topo.host.as_fd(), move || {
        Proxy::start_tcp(proxy::bind_tcp(LOCALHOST, None)?, target)
    })
    .unwrap();
    let port = proxy.local_addr().port();
    assert_ne!(port, 0, "the chosen port is known, to be printed");
    let mut client = netns::run_in(topo.host.as_fd(), move || {
        Ok(TcpStream::connect(("127.0.0.1", port))?)
    })
    .unwrap();
    client.write_all(b"hi\n").unwrap();
    // Half-close: the server sees EOF after the request, answers, and closes.
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, format!("hi (from {GATEWAY})\n"));
    drop(proxy);
    drop(topo);
    common::assert_host_has_no_link("mbxq");
}

#[test]
fn udp_published_port_relays_both_ways() {
    if !common::require_root("proxy: udp published port") {
        return;
    }
    let topo = common::topology("mbxw");
    // A UDP echo server in the container.
    let server =
        netns::run_in(topo.ctr.as_fd(), || Ok(UdpSocket::bind((CONTAINER, 5353))?)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            let reply = format!(
                "{} (from {})",
                String::from_utf8_lossy(&buf[..n]),
                from.ip()
            );
            let _ = server.send_to(reply.as_bytes(), from);
        }
    });
    let target = SocketAddr::from((CONTAINER, 5353));
    let proxy = netns::run_in(topo.host.as_fd(), move || {
        Proxy::start_udp(proxy::bind_udp(LOCALHOST, Some((15353, 15353)))?, target)
    })
    .unwrap();
    let client = netns::run_in(topo.host.as_fd(), || {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.connect("127.0.0.1:15353")?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(s)
    })
    .unwrap();
    let mut buf = [0u8; 1500];
    for word in ["one", "two"] {
        client.send(word.as_bytes()).unwrap();
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!("{word} (from {GATEWAY})")
        );
    }
    let err = netns::run_in(topo.host.as_fd(), || {
        proxy::bind_udp(LOCALHOST, Some((15353, 15353)))
    })
    .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "Bind for 127.0.0.1:15353 failed: port is already allocated"
    );
    proxy.stop().unwrap();
    assert!(
        netns::run_in(topo.host.as_fd(), || proxy::bind_udp(
            LOCALHOST,
            Some((15353, 15353))
        ))
        .is_ok()
    );
    drop(topo);
    common::assert_host_has_no_link("mbxw");
}
