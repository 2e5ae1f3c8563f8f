//! Docker's `-p` / `--publish` grammar: which host address and port forward to
//! which container port.
//!
//! ```text
//! [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]
//!
//! 6379                  container port 6379/tcp, any free host port
//! 8080:80               host port 8080 on every address -> 80/tcp
//! 127.0.0.1:8080:80     only on 127.0.0.1
//! 127.0.0.1::80         only on 127.0.0.1, any free host port
//! [::1]:8080:80         an IPv6 host address goes in brackets
//! 53:53/udp             UDP
//! 8000-8001:80-81       ranges of equal length, pairwise
//! 8000-8010:80          one container port, the first free host port of a range
//! ```
//!
//! The spec is split on `:` from the right (so an IPv6 address may hold
//! colons), the protocol is cut off the container part at `/`, and ranges
//! are `START-END`. The error messages are those of Docker's parser (the `nat`
//! package of `docker/go-connections`), which `docker run` prints as they are:
//! `invalid containerPort: abc`, `invalid hostPort: 8o8o`,
//! `no port specified: 8080:<empty>`, `invalid proto: icmp`,
//! `invalid IP address: localhost`,
//! `invalid ranges specified for container and host Ports: 80-81 and 8000-8002`.
//!
//! Nothing here touches the kernel: the parse is kept apart so that a bad spec
//! is refused before anything (namespace, veth, lease) has been made.

use std::fmt;
use std::net::IpAddr;

use anyhow::{Result, anyhow, bail};

/// The transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP, the default when a spec names none.
    Tcp,
    /// UDP (`/udp`).
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One container port published on the host: what the proxy is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// The host address to listen on; `None` means every address
    /// (`0.0.0.0`), Docker's default.
    pub host_ip: Option<IpAddr>,
    /// The host ports to choose from, inclusive. `None` means any free port
    /// (the spec gave none); `(p, p)` means exactly `p`; a longer range means
    /// the first free port of the range (only with a single container port).
    pub host_ports: Option<(u16, u16)>,
    /// The port inside the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    /// Formats as `docker port` does: `80/tcp -> 0.0.0.0:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = match self.host_ip {
            None => "0.0.0.0".to_owned(),
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            Some(ip) => ip.to_string(),
        };
        let ports = match self.host_ports {
            None => "0".to_owned(),
            Some((a, b)) if a == b => a.to_string(),
            Some((a, b)) => format!("{a}-{b}"),
        };
        write!(
            f,
            "{}/{} -> {ip}:{ports}",
            self.container_port, self.protocol
        )
    }
}

/// Parses one `-p` value into one mapping per container port.
pub fn parse(spec: &str) -> Result<Vec<PortMapping>> {
    let (ip, host_part, container_part) = split_parts(spec);
    let (container_ports, proto) = match container_part.split_once('/') {
        Some((ports, proto)) => (ports, proto),
        None => (container_part, ""),
    };
    if container_ports.is_empty() {
        bail!("no port specified: {spec}<empty>");
    }
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "" | "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        // SIMPLIFICATION: Docker also accepts sctp; the proxy here speaks
        // only TCP and UDP, so sctp is refused with Docker's own wording.
        other => bail!("invalid proto: {other}"),
    };
    let host_ip = parse_ip(ip)?;
    let (start, end) = port_range(container_ports)
        .ok_or_else(|| anyhow!("invalid containerPort: {container_ports}"))?;
    let host_range = if host_part.is_empty() {
        None
    } else {
        let range =
            port_range(host_part).ok_or_else(|| anyhow!("invalid hostPort: {host_part}"))?;
        // Ranges must be the same length, unless the container side is a
        // single port: then the host range is a pool to pick one port from.
        if range.1 - range.0 != end - start && start != end {
            bail!(
                "invalid ranges specified for container and host Ports: \
                 {container_ports} and {host_part}"
            );
        }
        Some(range)
    };
    Ok((start..=end)
        .enumerate()
        .map(|(i, container_port)| PortMapping {
            host_ip,
            host_ports: host_range.map(|(a, b)| {
                if start == end {
                    (a, b)
                } else {
                    (a + i as u16, a + i as u16)
                }
            }),
            container_port,
            protocol,
        })
        .collect())
}

/// Splits `IP:HOST:CONTAINER` from the right: the last part is the container
/// port, the one before it the host port, everything before that the address
/// (which may hold colons: IPv6).
fn split_parts(spec: &str) -> (&str, &str, &str) {
    let mut parts = spec.rsplitn(3, ':');
    let container = parts.next().unwrap_or("");
    match (parts.next(), parts.next()) {
        (None, _) => ("", "", container),
        (Some(host), None) => ("", host, container),
        (Some(host), Some(ip)) => (ip, host, container),
    }
}

/// Parses the host address part: empty, a dotted IPv4 address, or an IPv6
/// address with or without brackets.
fn parse_ip(ip: &str) -> Result<Option<IpAddr>> {
    if ip.is_empty() {
        return Ok(None);
    }
    let bare = match ip.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or_else(|| anyhow!("invalid IP address {ip}: missing ']' in address"))?,
        None => ip,
    };
    bare.parse::<IpAddr>()
        .map(Some)
        .map_err(|_| anyhow!("invalid IP address: {bare}"))
}

/// Parses `PORT` or `START-END` (decimal, 0..=65535, END >= START).
// SIMPLIFICATION: Docker's parser ignores anything after a second `-`
// (`1-2-3` reads as `1-2`); we refuse it.
fn port_range(s: &str) -> Option<(u16, u16)> {
    let number = |p: &str| -> Option<u16> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    match s.split_once('-') {
        None => number(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            (b >= a).then_some((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every form of the grammar, and every one of Docker's error messages.

    use super::*;

    fn one(spec: &str) -> PortMapping {
        let mut all = parse(spec).unwrap();
        assert_eq!(all.len(), 1, "{spec}");
        all.remove(0)
    }

    fn err(spec: &str) -> String {
        format!("{:#}", parse(spec).unwrap_err())
    }

    #[test]
    fn every_form_docker_accepts() {
        assert_eq!(one("6379").to_string(), "6379/tcp -> 0.0.0.0:0");
        assert_eq!(one("8080:80").to_string(), "80/tcp -> 0.0.0.0:8080");
        assert_eq!(
            one("127.0.0.1:8080:80").to_string(),
            "80/tcp -> 127.0.0.1:8080"
        );
        assert_eq!(one("127.0.0.1::80").to_string(), "80/tcp -> 127.0.0.1:0");
        assert_eq!(one("[::1]:8080:80").to_string(), "80/tcp -> [::1]:8080");
        assert_eq!(one("::1:8080:80").host_ip, Some("::1".parse().unwrap()));
        assert_eq!(one("53:53/udp").protocol, Protocol::Udp);
        assert_eq!(one("53:53/UDP").protocol, Protocol::Udp);
        assert_eq!(one("80/tcp").protocol, Protocol::Tcp);
        let m = one("8000-8010:80");
        assert_eq!((m.host_ports, m.container_port), (Some((8000, 8010)), 80));
    }

    #[test]
    fn ranges_pair_up_port_by_port() {
        let all: Vec<String> = parse("8000-8001:80-81/udp")
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(all, ["80/udp -> 0.0.0.0:8000", "81/udp -> 0.0.0.0:8001"]);
        let all = parse("80-82").unwrap();
        assert_eq!(
            all.iter().map(|m| m.container_port).collect::<Vec<_>>(),
            [80, 81, 82]
        );
        assert!(all.iter().all(|m| m.host_ports.is_none()));
    }

    #[test]
    fn malformed_specs_get_dockers_messages() {
        assert_eq!(err(""), "no port specified: <empty>");
        assert_eq!(err("8080:"), "no port specified: 8080:<empty>");
        assert_eq!(err("8080:/udp"), "no port specified: 8080:/udp<empty>");
        assert_eq!(err("8080:80/icmp"), "invalid proto: icmp");
        assert_eq!(err("localhost:8080:80"), "invalid IP address: localhost");
        assert_eq!(err("abc"), "invalid containerPort: abc");
        assert_eq!(err("8080:70000"), "invalid containerPort: 70000");
        assert_eq!(err("8080:-80"), "invalid containerPort: -80");
        assert_eq!(err("81-80"), "invalid containerPort: 81-80");
        assert_eq!(err("8o8o:80"), "invalid hostPort: 8o8o");
        assert_eq!(
            err("8000-8002:80-81"),
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
        );
    }
}
