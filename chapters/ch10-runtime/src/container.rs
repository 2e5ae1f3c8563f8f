//! What a container is created with, as its record keeps it on disk
//! (`containers/ID/config.json`, through [`crate::state`]), and how the
//! commands that read it see it: a `ps` row, `inspect`'s JSON.
//!
//! The record is written once, when the container is created. What changes
//! while it lives (its PIDs, its exit code, its address) is the state's.
// SIMPLIFICATION: Docker's record (`config.v2.json` and `hostconfig.json`)
// holds every flag of `docker run` as parsed structures; minibox keeps what
// its commands read, and the flags a start needs as they were typed
// ([`StartFlags`]), parsed again by the same code at every start.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Result;
use ch09_networking::publish::Protocol;
use serde::{Deserialize, Serialize};

use ch05_cgroups::cgroup::Resources;
use ch05_cgroups::cli::ResourceArgs;
use ch09_networking::cli::NetworkArgs;
use ch09_networking::network::NetworkConfig;
use ch09_networking::publish;

use crate::ps;
use crate::restart::Policy;
use crate::state::{Container, Status, Store};
use crate::volumes;

/// The chapter's part of a container's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// The image as the user named it (`busybox`, `redis:7`).
    pub image: String,
    /// The image's ID, its config's digest (`sha256:…`).
    pub image_id: String,
    /// The command, as the container's process receives it.
    pub command: Vec<String>,
    /// The container's host name.
    pub hostname: String,
    /// `bridge`, `none` or `host`.
    pub network: String,
    /// The ports the image exposes (`6379/tcp`), from its config.
    pub exposed: Vec<String>,
    /// `--rm`: the monitor removes the container when it ends.
    pub auto_remove: bool,
    /// The image's `StopSignal`, which `stop` sends first (SIGTERM without it).
    pub stop_signal: Option<String>,
    /// The snapshotter that made its root filesystem.
    pub snapshotter: String,
    /// The process's environment (the image's, then `-e`'s): `exec` starts
    /// with it too.
    pub env: Vec<String>,
    /// The user it runs as (`USER[:GROUP]`, empty for root): `exec`'s default.
    pub user: String,
    /// Its working directory: `exec`'s default.
    pub workdir: String,
    /// `-i`: its stdin is kept open for clients (`attach` sends its keys).
    pub interactive: bool,
    /// `-t`: it has a terminal (`attach` makes the user's raw).
    pub tty: bool,
    /// `--init`: its PID 1 is minibox's init, the command its child.
    pub init: bool,
    /// Its `-v` mounts, as prepared: `volume rm` refuses a volume a
    /// container names here, and `rm -v` removes its anonymous ones.
    pub mounts: Vec<volumes::Mount>,
    /// The flags every start reads again ([`StartFlags`]).
    pub flags: StartFlags,
    /// `--restart`.
    pub restart: Policy,
}

// ANCHOR: start_flags
/// The flags of `run` (or `create`) that every start of the container needs
/// again, kept as they were typed and read again by the same parsers, so a
/// `start` a week later means what the `run` meant: the network's (ports
/// are bound anew at each start, the kernel's choice of a free one
/// included), the limits, `--tmpfs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartFlags {
    /// `--network`.
    pub network: String,
    /// `-p`.
    pub publish: Vec<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_option: Vec<String>,
    /// `--add-host`.
    pub add_host: Vec<String>,
    /// `-m`, in bytes.
    pub memory: Option<u64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--cgroup-parent` (or `MINIBOX_CGROUP_PARENT`) when it was created.
    pub cgroup_parent: String,
    /// `--tmpfs`.
    pub tmpfs: Vec<String>,
    /// The flags a later chapter added to `run`, as typed, which its
    /// hardening reads again at every start and `exec` (chapter 12's
    /// `--cap-add`, `--read-only`, ...; see [`crate::hardening`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

impl StartFlags {
    /// Chapter 9's network configuration.
    pub fn network(&self) -> Result<NetworkConfig> {
        NetworkArgs {
            network: self.network.clone(),
            publish: self.publish.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_option: self.dns_option.clone(),
            add_host: self.add_host.clone(),
        }
        .into_config()
    }

    /// Chapter 5's resources.
    pub fn resources(&self) -> Result<Resources> {
        ResourceArgs {
            memory: self.memory,
            pids_limit: self.pids_limit,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cgroup_parent: self.cgroup_parent.clone(),
            stats: false,
        }
        .into_resources()
    }

    /// `-P`: publishes each of the image's `exposed` ports (`6379/tcp`) on a
    /// port the kernel chooses, at every start, unless a `-p` publishes that
    /// port and protocol already (an explicit `-p` wins, as in Docker).
    pub fn publish_all(&mut self, exposed: &[String]) -> Result<()> {
        let mut explicit = Vec::new();
        for spec in &self.publish {
            explicit.extend(publish::parse(spec)?);
        }
        for key in exposed {
            let Some(port) = exposed_port(key) else {
                continue;
            };
            let taken = explicit
                .iter()
                .any(|m| (m.container_port, m.protocol) == (port.container_port, port.protocol));
            if !taken {
                self.publish
                    .push(format!("{}/{}", port.container_port, port.protocol));
            }
        }
        Ok(())
    }

    /// The `--tmpfs` mounts.
    pub fn tmpfs(&self) -> Result<Vec<volumes::Tmpfs>> {
        self.tmpfs.iter().map(|t| volumes::parse_tmpfs(t)).collect()
    }
}
// ANCHOR_END: start_flags

/// One published port: `docker port`'s line `6379/tcp -> 0.0.0.0:6379`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The port inside the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub udp: bool,
    /// The host address it is bound to.
    pub host_ip: IpAddr,
    /// The host port.
    pub host_port: u16,
}

impl Published {
    /// The protocol, as chapter 9 names it.
    pub fn protocol(&self) -> Protocol {
        if self.udp {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }
}

/// The files of container `id` besides its record and state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `containers/ID/ID-json.log`: its output, as Docker names the file.
    pub log: PathBuf,
    /// `RUN/ID/monitor.log`: what its monitor had to say (errors in cleanup).
    pub monitor_log: PathBuf,
    /// `RUN/ID/attach.sock`: where its monitor listens for `attach`.
    pub attach_socket: PathBuf,
}

impl Paths {
    /// Where container `id`'s files are in `store`.
    pub fn of(store: &Store, id: &str) -> Paths {
        Paths {
            log: store.container_dir(id).join(format!("{id}-json.log")),
            monitor_log: store.runtime_dir(id).join("monitor.log"),
            attach_socket: store.runtime_dir(id).join("attach.sock"),
        }
    }
}

// ANCHOR: row
/// A container as `ps` sees it: its record and its observed state.
pub fn row(container: &Container<Spec>) -> ps::Row {
    let (record, state) = (&container.record, &container.state);
    let spec = &record.config;
    let time = |t: Option<time::OffsetDateTime>| t.map_or(SystemTime::UNIX_EPOCH, SystemTime::from);
    let state = match state.status {
        Status::Created => ps::State::Created,
        Status::Running => ps::State::Running {
            started: time(state.started_at),
        },
        Status::Paused => ps::State::Paused {
            started: time(state.started_at),
        },
        Status::Exited => ps::State::Exited {
            exit_code: state.exit_code,
            finished: time(state.finished_at),
        },
        Status::Restarting => ps::State::Restarting {
            exit_code: state.exit_code,
            finished: time(state.finished_at),
        },
        Status::Dead => ps::State::Dead,
    };
    let mut ports: Vec<ps::Port> = container
        .state
        .published
        .iter()
        .map(|p| ps::Port {
            container_port: p.container_port,
            protocol: p.protocol(),
            host: Some((p.host_ip, p.host_port)),
        })
        .collect();
    for exposed in &spec.exposed {
        if let Some(port) = exposed_port(exposed)
            && !ports
                .iter()
                .any(|p| (p.container_port, p.protocol) == (port.container_port, port.protocol))
        {
            ports.push(port);
        }
    }
    ps::Row {
        id: record.id.clone(),
        name: record.name.clone(),
        image: spec.image.clone(),
        image_id: spec.image_id.clone(),
        command: spec.command.clone(),
        created: SystemTime::from(record.created),
        state,
        ports,
        networks: vec![spec.network.clone()],
        mounts: spec
            .mounts
            .iter()
            .map(|m| ps::Mount {
                volume: m.volume.clone(),
                source: m.source.display().to_string(),
            })
            .collect(),
        size: None,
    }
}
// ANCHOR_END: row

/// An image's `ExposedPorts` key (`6379/tcp`, `53/udp`, `80`) as a port
/// that is exposed but not published.
fn exposed_port(key: &str) -> Option<ps::Port> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match protocol {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some(ps::Port {
        container_port: port.parse().ok()?,
        protocol,
        host: None,
    })
}

/// What container `id` wrote: the bytes of the regular files in its
/// writable layer (`upper/`; a copy snapshot has none to tell apart).
pub fn writable_size(store: &Store, id: &str) -> u64 {
    disk_usage(&store.container_dir(id).join("upper"))
}

/// The bytes of the regular files below `dir`, not following symlinks.
fn disk_usage(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_usage(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// The IDs of the containers whose records mount volume `name` (running or
/// not: Docker refuses to remove a volume any container names).
pub fn volume_users(store: &Store, name: &str) -> Result<Vec<String>> {
    Ok(store
        .list::<Spec>()?
        .into_iter()
        .filter(|c| {
            c.record
                .config
                .mounts
                .iter()
                .any(|m| m.volume.as_deref() == Some(name))
        })
        .map(|c| c.record.id)
        .collect())
}

/// Every container in `store`, as `ps` rows.
pub fn rows(store: &Store) -> Result<Vec<ps::Row>> {
    Ok(store.list::<Spec>()?.iter().map(row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_ports_read_as_docker_writes_them() {
        let port = exposed_port("6379/tcp").unwrap();
        assert_eq!((port.container_port, port.protocol), (6379, Protocol::Tcp));
        assert_eq!(exposed_port("53/udp").unwrap().protocol, Protocol::Udp);
        assert_eq!(exposed_port("80").unwrap().container_port, 80);
        assert!(exposed_port("80/sctp").is_none());
        assert!(exposed_port("http/tcp").is_none());
    }
}
