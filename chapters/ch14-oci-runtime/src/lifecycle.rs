//! The commands after `create`, each a separate process that reads the
//! container's state from `--root` and its status from the kernel.
//!
//! The specification's rules of state (its "Lifecycle" and "Operations"
//! sections): `start` needs `created`; `kill` needs `created` or `running`;
//! `delete` needs `stopped`, unless `--force` kills first. Anything else is
//! an error that changes nothing.
//!
//! ```text
//!            create            start              (init exits)
//!   (none) ─────────▶ created ───────▶ running ─────────────▶ stopped ──delete──▶ (none)
//!                        │  kill           ▲ │ pause                ▲
//!                        └─────────────────┼─┼──────────────────────┘
//!                                   resume │ ▼
//!                                        paused
//! ```

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use ch02_pid_namespace::sync;
use ch05_cgroups::cgroup;
use ch10_runtime::lifecycle::{self as ch10_lifecycle, parse_signal};
use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

use crate::hooks;
use crate::state::{EXEC_FIFO, Record, Status, Store};

// ANCHOR: start
/// `start`: releases a created container's init through its exec FIFO,
/// then runs the poststart hooks.
pub fn start(store: &Store, id: &str) -> Result<()> {
    let (record, dir) = store.load(id)?;
    let status = record.status(&dir);
    if status != Status::Created {
        bail!("cannot start a container that has {status}");
    }
    let fifo = dir.join(EXEC_FIFO);
    sync::release_fifo(&fifo)?;
    std::fs::remove_file(&fifo).context("removing exec.fifo")?;
    let spec = spec_of(&dir)?;
    let state = serde_json::to_vec(&record.oci_state(Status::Running))?;
    if let Some(hooks) = spec.hooks() {
        // A failing poststart hook is logged, not fatal (the specification).
        if let Err(error) = hooks::run("poststart", hooks.poststart(), &state) {
            crate::log::warn(&format!("{error:#}"));
        }
    }
    Ok(())
}
// ANCHOR_END: start

/// The config `create` kept.
pub fn spec_of(dir: &Path) -> Result<Spec> {
    let text = std::fs::read(dir.join("config.json")).context("reading the kept config")?;
    Ok(serde_json::from_slice(&text)?)
}

/// `state`: the specification's JSON, on stdout.
pub fn state(store: &Store, id: &str) -> Result<()> {
    let (record, dir) = store.load(id)?;
    let state = record.oci_state(record.status(&dir));
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &state)?;
    writeln!(out)?;
    Ok(())
}

// ANCHOR: kill
/// `kill`: `signal` to the init, or with `all` to every process in the
/// container's cgroup.
pub fn kill(store: &Store, id: &str, signal: &str, all: bool) -> Result<()> {
    let signal = parse_signal(signal)?;
    let (record, dir) = store.load(id)?;
    let status = record.status(&dir);
    if all {
        // Every process of the cgroup, stopped ones included: a frozen
        // container gets its signals when thawed.
        for dir in &record.cgroups {
            for pid in cgroup::procs(dir) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
        }
        return Ok(());
    }
    if status == Status::Stopped {
        bail!("container not running");
    }
    match ch10_lifecycle::Process::open(&record.init)? {
        Some(process) => process.signal(signal),
        None => bail!("container not running"),
    }
}
// ANCHOR_END: kill

// ANCHOR: delete
/// `delete`: removes a stopped container: its cgroup, its state, then the
/// poststop hooks. `force` kills a live one first (SIGKILL, to the whole
/// cgroup) and waits for it.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let (record, dir) = match store.load(id) {
        Ok(found) => found,
        // `delete --force` of a container that is gone succeeds (runc's).
        Err(_) if force && store.dir(id).is_ok_and(|d| !d.join("state.json").exists()) => {
            if let Ok(dir) = store.dir(id) {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Ok(());
        }
        Err(error) => return Err(error),
    };
    let status = record.status(&dir);
    if status != Status::Stopped && !force {
        bail!("cannot delete container {id} that is not stopped: {status}");
    }
    if status != Status::Stopped
        && let Some(process) = ch10_lifecycle::Process::open(&record.init)?
    {
        process.signal(Signal::SIGKILL)?;
        // A frozen process dies only once thawed.
        thaw(&record)?;
        process.wait(Some(std::time::Duration::from_secs(10)))?;
    }
    destroy_cgroup(&record)?;
    let spec = spec_of(&dir);
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    if let Ok(spec) = spec
        && let Some(hooks) = spec.hooks()
    {
        let state = serde_json::to_vec(&record.oci_state(Status::Stopped))?;
        if let Err(error) = hooks::run("poststop", hooks.poststop(), &state) {
            crate::log::warn(&format!("{error:#}"));
        }
    }
    Ok(())
}
// ANCHOR_END: delete

/// Kills whatever is left in the container's cgroup and removes the
/// directories its `create` made (chapter 5's).
fn destroy_cgroup(record: &Record) -> Result<()> {
    thaw(record)?;
    cgroup::kill_all(&record.cgroups);
    cgroup::remove_all(&record.cgroups, &record.cgroups_created)
}

// ANCHOR: freeze
/// `pause` and `resume`: the cgroup freezer, v1's `freezer.state` or v2's
/// `cgroup.freeze`. The kernel stops every process of the cgroup where it
/// is, without a signal the processes could see.
pub fn set_frozen(store: &Store, id: &str, frozen: bool) -> Result<()> {
    let (record, dir) = store.load(id)?;
    let status = record.status(&dir);
    match (frozen, status) {
        (true, Status::Running) | (false, Status::Paused) => {}
        (true, _) => bail!("container not running"),
        (false, _) => bail!("container not paused"),
    }
    freeze(&record, frozen)
}

fn freeze(record: &Record, frozen: bool) -> Result<()> {
    let mut done = false;
    for dir in &record.cgroups {
        if dir.join("freezer.state").exists() {
            let value = if frozen { "FROZEN" } else { "THAWED" };
            cgroup::write(dir, "freezer.state", value)?;
            done = true;
        } else if dir.join("cgroup.freeze").exists() {
            cgroup::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
            done = true;
        }
    }
    if !done {
        bail!("the container's cgroup has no freezer");
    }
    Ok(())
}
// ANCHOR_END: freeze

fn thaw(record: &Record) -> Result<()> {
    if record.frozen() {
        freeze(record, false)?;
    }
    Ok(())
}

/// `ps`: the container's processes, as their host PIDs: JSON, or ps(1)'s
/// table of them.
pub fn ps(store: &Store, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let (record, _) = store.load(id)?;
    let mut pids: Vec<i32> = record
        .cgroups
        .iter()
        .flat_map(|d| cgroup::procs(d))
        .collect();
    pids.sort();
    pids.dedup();
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(())
        }
        "table" => {
            let pids = pids.into_iter().collect();
            ch10_runtime::commands::top::print_processes(&pids, ps_args)
        }
        other => bail!("invalid format option: {other}"),
    }
}

/// `list`: every container under `--root`.
pub fn list(store: &Store, format: &str, quiet: bool) -> Result<()> {
    let mut states = Vec::new();
    for id in store.ids()? {
        if let Ok((record, dir)) = store.load(&id) {
            let status = record.status(&dir);
            states.push(record.oci_state(status));
        }
    }
    if quiet {
        for id in store.ids()? {
            println!("{id}");
        }
        return Ok(());
    }
    match format {
        "json" => println!("{}", serde_json::to_string(&states)?),
        "table" => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<30} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for state in &states {
                let value = serde_json::to_value(state)?;
                let field = |k: &str| value[k].to_string().trim_matches('"').to_string();
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<30} {}",
                    field("id"),
                    field("pid"),
                    field("status"),
                    field("bundle"),
                    field("created"),
                    field("owner")
                );
            }
        }
        other => bail!("invalid format option: {other}"),
    }
    Ok(())
}

// ANCHOR: update
/// `update`: new limits for a running container, from the specification's
/// `linux.resources` JSON (or single flags), written into its cgroup with
/// chapter 5's files.
pub fn update(store: &Store, args: &crate::cli::UpdateArgs) -> Result<()> {
    let (record, dir) = store.load(&args.id)?;
    if record.status(&dir) == Status::Stopped {
        bail!("container not running");
    }
    let mut resources: oci_spec::runtime::LinuxResources = match &args.resources {
        None => Default::default(),
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).context("parsing the resources")?;
            let wrapped = serde_json::json!({"linux": {"resources": value}});
            crate::bundle::check_keys(&wrapped)?;
            serde_json::from_value(value).context("parsing the resources")?
        }
    };
    let mut value = serde_json::to_value(&resources)?;
    if let Some(memory) = args.memory {
        value["memory"]["limit"] = memory.into();
    }
    if let Some(pids) = args.pids_limit {
        value["pids"]["limit"] = pids.into();
    }
    if let Some(quota) = args.cpu_quota {
        value["cpu"]["quota"] = quota.into();
    }
    if let Some(period) = args.cpu_period {
        value["cpu"]["period"] = period.into();
    }
    if let Some(shares) = args.cpu_share {
        value["cpu"]["shares"] = shares.into();
    }
    resources = serde_json::from_value(value)?;
    let (limits, _) = crate::container::resources_of(&resources)?;
    if resources.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        bail!("update: device rules cannot be changed by minibox");
    }
    let spec = spec_of(&dir)?;
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let (parent, name) = crate::container::cgroup_of(&args.id, cgroups_path.as_deref())?;
    let cgroup = cgroup::open(Path::new(cgroup::ROOT), &parent, &name)?;
    cgroup.set_limits(&limits)
}
// ANCHOR_END: update
