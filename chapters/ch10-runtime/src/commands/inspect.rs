//! `minibox inspect` and `port`: a container's record and state, shown.

use std::io::Write;

use anyhow::{Result, anyhow};
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate;
use serde_json::{Value, json};

use crate::commands::for_each;
use crate::container::{Paths, Spec};
use crate::hardening;
use crate::log::rfc3339_nano;
use crate::state::{Container, Status, Store, timestamp};

// ANCHOR: inspect
/// `docker inspect`: a JSON array, one object per container, with the
/// fields of Docker's that minibox has, under Docker's names.
pub fn inspect(store: &Store, containers: &[String]) -> Result<Exit> {
    let mut found = Vec::new();
    let exit = for_each(containers, |reference| {
        let container = store.get::<Spec>(reference)?;
        found.push(to_json(store, &container));
        Ok(())
    })?;
    let text = serde_json::to_string_pretty(&Value::Array(found))?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        result => result?,
    }
    Ok(exit)
}
// ANCHOR_END: inspect

/// One container as Docker's `inspect` writes it (a subset).
fn to_json(store: &Store, container: &Container<Spec>) -> Value {
    let (record, state) = (&container.record, &container.state);
    let spec = &record.config;
    let time = |t: Option<time::OffsetDateTime>| {
        t.map_or_else(|| timestamp::NEVER.to_string(), rfc3339_nano)
    };
    let running = matches!(state.status, Status::Running | Status::Paused);
    let ports: serde_json::Map<String, Value> = state
        .published
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.protocol()),
                json!([{ "HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string() }]),
            )
        })
        .collect();
    let userns = user_namespace(spec);
    let ip = state
        .ip_address
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    json!({
        "Id": record.id,
        "Created": rfc3339_nano(record.created),
        "Path": spec.command.first().cloned().unwrap_or_default(),
        "Args": spec.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": state.status.to_string(),
            "Running": state.status == Status::Running,
            "Paused": state.status == Status::Paused,
            "Restarting": state.status == Status::Restarting,
            "OOMKilled": state.oom_killed,
            "Dead": state.status == Status::Dead,
            "Pid": state.process.filter(|_| running).map_or(0, |p| p.pid),
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": time(state.started_at),
            "FinishedAt": time(state.finished_at),
        },
        "Image": spec.image_id,
        "RestartCount": state.restart_count,
        "LogPath": Paths::of(store, &record.id).log,
        "Name": format!("/{}", record.name),
        "Driver": spec.snapshotter,
        "HostConfig": {
            "NetworkMode": spec.network,
            "AutoRemove": spec.auto_remove,
            "Init": spec.init,
            "RestartPolicy": restart_policy(spec.restart),
            "UsernsMode": userns.0,
            "IDMappings": userns.1,
        },
        "Config": {
            "Hostname": spec.hostname,
            "User": spec.user,
            "Env": spec.env,
            "Cmd": spec.command,
            "Image": spec.image,
            "WorkingDir": spec.workdir,
            "StopSignal": spec.stop_signal,
        },
        "NetworkSettings": {
            "Ports": ports,
            "IPAddress": ip,
        },
    })
}

/// Docker's `HostConfig.UsernsMode` ("" for the host's user namespace),
/// and the maps of the container's own, if a later chapter gave it one
/// ([`hardening::UserNamespace`]), as `CONTAINER:HOST:SIZE` (podman's
/// `IDMappings`); `null` without.
fn user_namespace(spec: &Spec) -> (String, Value) {
    let Ok(confinement) = hardening::confinement(&spec.flags.extra) else {
        return (String::new(), Value::Null); // flags this minibox does not know
    };
    let Some(userns) = confinement.user_namespace() else {
        return (String::new(), Value::Null);
    };
    let colons = |lines: Vec<String>| -> Vec<String> {
        lines
            .iter()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(":"))
            .collect()
    };
    let (uids, gids) = userns.maps();
    let maps = json!({ "UidMap": colons(uids), "GidMap": colons(gids) });
    (userns.mode(), maps)
}

/// Docker's `HostConfig.RestartPolicy`.
fn restart_policy(policy: crate::restart::Policy) -> Value {
    let retries = match policy {
        crate::restart::Policy::OnFailure { max_retries } => max_retries,
        _ => 0,
    };
    json!({ "Name": policy.to_string(), "MaximumRetryCount": retries })
}

// ANCHOR: port
/// `docker port`: the container's published ports, `6379/tcp ->
/// 0.0.0.0:6379`, or the host side of one (`port web 6379`).
pub fn port(store: &Store, reference: &str, wanted: Option<&str>) -> Result<Exit> {
    let container = store.get::<Spec>(reference)?;
    let mut published = container.state.published.clone();
    published.sort_by_key(|p| (p.container_port, p.udp));
    let Some(wanted) = wanted else {
        for p in &published {
            narrate::print(format_args!(
                "{}/{} -> {}:{}",
                p.container_port,
                p.protocol(),
                p.host_ip,
                p.host_port
            ))?;
        }
        return Ok(Exit::Code(0));
    };
    let (port, protocol) = wanted.split_once('/').unwrap_or((wanted, "tcp"));
    let matching: Vec<_> = published
        .iter()
        .filter(|p| p.container_port.to_string() == port && p.protocol().to_string() == protocol)
        .collect();
    if matching.is_empty() {
        return Err(anyhow!(
            "No public port '{port}/{protocol}' published for {reference}"
        ));
    }
    for p in matching {
        narrate::print(format_args!("{}:{}", p.host_ip, p.host_port))?;
    }
    Ok(Exit::Code(0))
}
// ANCHOR_END: port
