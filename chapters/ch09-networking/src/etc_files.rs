//! `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for a container, as
//! Docker generates them.
//!
//! A process finds its own name, the names of other hosts and its DNS servers
//! in three files. The image's copies know nothing about this container (its
//! address, its hostname) nor about this host's DNS, so Docker writes three
//! files per container in its own state directory and bind-mounts each over
//! the image's: the image is never edited, and the files go away with the
//! container. This module builds the contents and writes them to a directory
//! the recipe chooses; the bind mounts are chapter 4's.
//!
//! - `/etc/hostname`: the hostname and a newline.
//! - `/etc/hosts`: the loopback and IPv6 lines every Docker container has,
//!   then one line per `--add-host`, then the container's own address and
//!   hostname (when it has an address: not with `--network none`).
//! - `/etc/resolv.conf`: the host's, because the container should resolve
//!   names as the host does, except for what cannot work from inside: a
//!   nameserver on a loopback address (127.0.0.53 of systemd-resolved, a
//!   local dnsmasq) listens on the *host's* loopback, and the container's
//!   `lo` is another one. Such lines are dropped; when no nameserver is left,
//!   Docker's fallback (Google's public DNS) is used. `--dns`, `--dns-search`
//!   and `--dns-option` replace the corresponding lines.
// SIMPLIFICATION: since version 25 Docker also writes a header comment naming
// the host file and the overrides, and on user-defined networks points the
// container at its embedded DNS server (127.0.0.11) instead. We follow the
// default bridge's classic behaviour and drop IPv6 nameservers, as Docker does
// when the network has no IPv6.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The name servers a container falls back to when the host has only
/// loopback ones, as Docker does.
pub const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The lines every Docker container's `/etc/hosts` starts with.
const DEFAULT_HOSTS: &[(&str, &str)] = &[
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
];

/// One `--add-host NAME:IP` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    /// The host name.
    pub name: String,
    /// Its address.
    pub ip: IpAddr,
}

/// Parses an `--add-host` value: `NAME:IP` or `NAME=IP`, the IPv6 address
/// optionally in brackets, with Docker's error messages.
// SIMPLIFICATION: Docker also accepts the word `host-gateway`, replaced by the
// bridge's gateway address; the recipe can do that before calling this.
pub fn parse_add_host(value: &str) -> Result<ExtraHost> {
    let (name, ip) = match value.split_once('=') {
        Some(parts) => parts,
        None => match value.split_once(':') {
            Some(parts) => parts,
            None => bail!("bad format for add-host: {value:?}"),
        },
    };
    if name.is_empty() || ip.is_empty() {
        bail!("bad format for add-host: {value:?}");
    }
    let bare = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    match bare.parse() {
        Ok(ip) => Ok(ExtraHost {
            name: name.to_owned(),
            ip,
        }),
        Err(_) => bail!("invalid IP address in add-host: {ip:?}"),
    }
}

/// What the container's DNS configuration overrides, from `docker run`'s
/// flags. Empty vectors keep the host's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsOverrides {
    /// `--dns`: name servers replacing the host's.
    pub nameservers: Vec<IpAddr>,
    /// `--dns-search`: search domains replacing the host's (`.` alone means
    /// "no search line").
    pub search: Vec<String>,
    /// `--dns-option`: resolver options replacing the host's.
    pub options: Vec<String>,
}

/// The contents of `/etc/hostname`.
pub fn hostname(name: &str) -> String {
    format!("{name}\n")
}

/// The contents of `/etc/hosts`: Docker's default lines, the `--add-host`
/// entries, then the container's own `ADDRESS<TAB>HOSTNAME` line when it has
/// an address.
pub fn hosts(own: Option<(IpAddr, &str)>, extra: &[ExtraHost]) -> String {
    let mut out = String::new();
    for (ip, names) in DEFAULT_HOSTS {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    for host in extra {
        out.push_str(&format!("{}\t{}\n", host.ip, host.name));
    }
    if let Some((ip, name)) = own {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// Which file holds the host's real resolver configuration.
///
/// On a host running systemd-resolved, `/etc/resolv.conf` names only the
/// stub resolver `127.0.0.53`, useless from inside a container; the list of
/// upstream servers is in `/run/systemd/resolve/resolv.conf`, and Docker
/// reads that one instead. Both paths are parameters so tests can use files
/// of their own.
pub fn host_resolv_conf(etc_resolv: &Path, systemd_resolv: &Path) -> Result<(PathBuf, String)> {
    let content =
        fs::read_to_string(etc_resolv).with_context(|| format!("read {}", etc_resolv.display()))?;
    let servers: Vec<&str> = nameservers(&content).collect();
    if servers == ["127.0.0.53"]
        && let Ok(upstream) = fs::read_to_string(systemd_resolv)
    {
        return Ok((systemd_resolv.to_owned(), upstream));
    }
    Ok((etc_resolv.to_owned(), content))
}

/// The contents of the container's `/etc/resolv.conf`, from the host's
/// `host` contents and the overrides.
pub fn resolv_conf(host: &str, overrides: &DnsOverrides) -> String {
    let mut out = String::new();
    let mut kept_servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        let keyword = words.next().unwrap_or("");
        let replaced = match keyword {
            "nameserver" => {
                let usable = words
                    .next()
                    .and_then(|w| w.parse::<IpAddr>().ok())
                    .is_some_and(|ip| {
                        // Loopback cannot be reached from the container's own lo;
                        // IPv6 cannot be reached without IPv6 on the bridge.
                        !ip.is_loopback() && ip.is_ipv4()
                    });
                if usable && overrides.nameservers.is_empty() {
                    kept_servers += 1;
                }
                !usable || !overrides.nameservers.is_empty()
            }
            "search" | "domain" => !overrides.search.is_empty(),
            "options" => !overrides.options.is_empty(),
            _ => false,
        };
        if !replaced {
            out.push_str(line);
            out.push('\n');
        }
    }
    for server in &overrides.nameservers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if overrides.nameservers.is_empty() && kept_servers == 0 {
        for server in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {server}\n"));
        }
    }
    if !overrides.search.is_empty() && overrides.search != ["."] {
        out.push_str(&format!("search {}\n", overrides.search.join(" ")));
    }
    if !overrides.options.is_empty() {
        out.push_str(&format!("options {}\n", overrides.options.join(" ")));
    }
    out
}

/// The name server addresses a resolv.conf names, in order.
fn nameservers(content: &str) -> impl Iterator<Item = &str> {
    content.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
    })
}

/// The three files of one container, ready to be bind-mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    /// `/etc/hostname`.
    pub hostname: String,
    /// `/etc/hosts`.
    pub hosts: String,
    /// `/etc/resolv.conf`.
    pub resolv_conf: String,
}

impl EtcFiles {
    /// Writes `hostname`, `hosts` and `resolv.conf` into `dir` (the
    /// container's state directory, created if missing) and returns the
    /// pairs (file, path inside the container) for the recipe's bind mounts.
    pub fn write(&self, dir: &Path) -> Result<Vec<(PathBuf, &'static str)>> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let files = [
            ("hostname", &self.hostname, "/etc/hostname"),
            ("hosts", &self.hosts, "/etc/hosts"),
            ("resolv.conf", &self.resolv_conf, "/etc/resolv.conf"),
        ];
        let mut mounts = Vec::new();
        for (name, content, target) in files {
            let path = dir.join(name);
            fs::write(&path, content).with_context(|| format!("write {}", path.display()))?;
            mounts.push((path, target));
        }
        Ok(mounts)
    }
}

#[cfg(test)]
mod tests {
    //! The three files as Docker writes them, for the cases a reader meets.

    use super::*;

    #[test]
    fn hosts_lists_defaults_then_extra_hosts_then_the_container() {
        let extra = [
            parse_add_host("db:10.0.0.5").unwrap(),
            parse_add_host("v6=[::1]").unwrap(),
        ];
        let text = hosts(
            Some(("172.29.0.2".parse().unwrap(), "3f2a9c1b0d4e")),
            &extra,
        );
        assert_eq!(
            text,
            "127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             ff00::0\tip6-mcastprefix\n\
             ff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n\
             10.0.0.5\tdb\n\
             ::1\tv6\n\
             172.29.0.2\t3f2a9c1b0d4e\n"
        );
        // --network none: no address, no own line.
        assert!(!hosts(None, &[]).contains("172.29"));
        assert_eq!(hostname("box"), "box\n");
    }

    #[test]
    fn add_host_errors_read_like_dockers() {
        assert_eq!(
            parse_add_host("db").unwrap_err().to_string(),
            "bad format for add-host: \"db\""
        );
        assert_eq!(
            parse_add_host(":1.2.3.4").unwrap_err().to_string(),
            "bad format for add-host: \":1.2.3.4\""
        );
        assert_eq!(
            parse_add_host("db:nope").unwrap_err().to_string(),
            "invalid IP address in add-host: \"nope\""
        );
        assert_eq!(
            parse_add_host("db:fe80::1").unwrap().ip,
            "fe80::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn loopback_nameservers_are_dropped_and_the_fallback_used() {
        let host = "# local resolver\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        assert_eq!(
            resolv_conf(host, &DnsOverrides::default()),
            "# local resolver\noptions edns0 trust-ad\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        // A real upstream server is kept, and then no fallback is added.
        let host = "nameserver 127.0.0.1\nnameserver 192.168.1.1\nnameserver ::1\nnameserver 2001:db8::1\n";
        assert_eq!(
            resolv_conf(host, &DnsOverrides::default()),
            "nameserver 192.168.1.1\n"
        );
    }

    #[test]
    fn dns_flags_replace_the_hosts_lines() {
        let host = "nameserver 192.168.1.1\nsearch lan\noptions ndots:2\n";
        let overrides = DnsOverrides {
            nameservers: vec!["1.1.1.1".parse().unwrap()],
            search: vec!["example.com".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(host, &overrides),
            "nameserver 1.1.1.1\nsearch example.com\noptions ndots:5\n"
        );
        let no_search = DnsOverrides {
            search: vec![".".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(host, &no_search),
            "nameserver 192.168.1.1\noptions ndots:2\n"
        );
    }

    #[test]
    fn systemd_resolved_hosts_are_read_through_the_upstream_file() {
        let dir = tempfile::tempdir().unwrap();
        let (etc, systemd) = (dir.path().join("etc"), dir.path().join("systemd"));
        fs::write(&etc, "nameserver 127.0.0.53\noptions edns0\n").unwrap();
        // Without the upstream file, the stub file is all there is.
        assert_eq!(host_resolv_conf(&etc, &systemd).unwrap().0, etc);
        fs::write(&systemd, "nameserver 10.1.1.1\n").unwrap();
        let (path, content) = host_resolv_conf(&etc, &systemd).unwrap();
        assert_eq!(
            (path, content.as_str()),
            (systemd.clone(), "nameserver 10.1.1.1\n")
        );
        fs::write(&etc, "nameserver 10.2.2.2\n").unwrap();
        assert_eq!(host_resolv_conf(&etc, &systemd).unwrap().0, etc);
    }

    #[test]
    fn files_are_written_for_the_bind_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let files = EtcFiles {
            hostname: hostname("box"),
            hosts: hosts(None, &[]),
            resolv_conf: resolv_conf("", &DnsOverrides::default()),
        };
        let mounts = files.write(&dir.path().join("c1")).unwrap();
        let targets: Vec<&str> = mounts.iter().map(|(_, t)| *t).collect();
        assert_eq!(targets, ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]);
        assert_eq!(fs::read_to_string(&mounts[0].0).unwrap(), "box\n");
        assert_eq!(
            fs::read_to_string(&mounts[2].0).unwrap(),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
