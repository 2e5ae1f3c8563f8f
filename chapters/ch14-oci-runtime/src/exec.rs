//! `exec`: one more process in a running container, as the engines ask for
//! `docker exec`, `podman exec` and Kubernetes' exec probes.
//!
//! The joining is chapter 10's (`ch10::exec::run_program`: the cgroup, the
//! namespaces in order, a second fork into the PID namespace); what runs
//! inside is config.json's process format ([`crate::process`]), given as a
//! file (`--process`, what every engine sends) or built from the container's
//! own process with the flags over it. With `--detach` the joining child
//! leaves as soon as the process runs: the process, whose PID goes into
//! `--pid-file`, is then an orphan, and the engine's conmon or shim, a
//! subreaper, collects its exit status.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use anyhow::{Context, Result, anyhow, bail};
use ch01_fork_exec::exit::Exit;
use ch08_command_override::exec::AroundSwitch;
use ch08_command_override::user::User;
use ch10_runtime::exec::{self as ch10_exec, Ran, Stdio, Target};
use ch10_runtime::hardening::Confinement;
use oci_spec::runtime::Process;

use crate::cli::ExecArgs;
use crate::lifecycle::spec_of;
use crate::process::Plan;
use crate::state::{Status, Store};

// ANCHOR: exec
/// `exec`: runs the process in container `args.id`; returns its exit (or,
/// detached, 0 once it runs).
pub fn exec(store: &Store, args: &ExecArgs) -> Result<Exit> {
    let (record, dir) = store.load(&args.id)?;
    if record.status(&dir) != Status::Running {
        bail!("cannot exec in a stopped or paused container");
    }
    let spec = spec_of(&dir)?;
    let process = process_of(args, &spec)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let plan = Plan::of(&process, linux.seccomp().as_ref())?;
    let console = match (&args.console_socket, plan.terminal) {
        (Some(path), true) => Some(
            UnixStream::connect(path)
                .with_context(|| format!("connecting to the console socket {}", path.display()))?,
        ),
        (None, true) => {
            bail!("cannot allocate tty if runc will detach without setting console socket")
        }
        _ => None,
    };
    let target = Target {
        id: record.id.clone(),
        process: Some(record.init),
        cgroups: record.cgroups.clone(),
        extra: Vec::new(),
    };
    let stdio = Stdio {
        console: console.as_ref().map(|c| c.as_fd()),
        ..Stdio::default()
    };
    let program = || {
        let error = plan.enter_and_exec();
        let status = error
            .downcast_ref::<ch01_fork_exec::exit::StartError>()
            .map_or(ch01_fork_exec::exit::CANNOT_INVOKE, |e| e.status());
        (status, format!("{error:#}"))
    };
    let ran = ch10_exec::run_program(&target, &Joining, &program, stdio, args.detach, || Ok(true))
        .map_err(|error| anyhow!("{error}"))?;
    match ran {
        Ran::Left(pid) => {
            if let Some(path) = &args.pid_file {
                let path = std::path::absolute(path)?;
                ch07_image_pull::store::write_atomically(
                    &path,
                    pid.as_raw().to_string().as_bytes(),
                )?;
            }
            Ok(Exit::Code(0))
        }
        Ran::Ended(exit) => Ok(exit),
    }
}
// ANCHOR_END: exec

/// The process to run: `--process`'s JSON, or the container's own process
/// with the command and flags over it.
fn process_of(args: &ExecArgs, spec: &oci_spec::runtime::Spec) -> Result<Process> {
    if let Some(path) = &args.process {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the process {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).context("parsing the process")?;
        crate::bundle::check_keys(&serde_json::json!({ "process": value }))?;
        return serde_json::from_value(value).context("parsing the process");
    }
    if args.command.is_empty() {
        bail!("exec: give a command, or --process");
    }
    let mut value =
        serde_json::to_value(spec.process().clone().context("config.json: no process")?)?;
    value["args"] = serde_json::to_value(&args.command)?;
    value["terminal"] = args.tty.into();
    if let Some(cwd) = &args.cwd {
        value["cwd"] = cwd.clone().into();
    }
    if let Some(env) = value["env"].as_array_mut() {
        env.extend(args.env.iter().map(|e| serde_json::Value::from(e.clone())));
    }
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        value["user"]["uid"] = uid.parse::<u32>().context("--user: not a UID")?.into();
        value["user"]["gid"] = gid.parse::<u32>().context("--user: not a GID")?.into();
    }
    if !args.additional_gids.is_empty() {
        value["user"]["additionalGids"] = serde_json::to_value(&args.additional_gids)?;
    }
    if args.no_new_privs {
        value["noNewPrivileges"] = true.into();
    }
    Ok(serde_json::from_value(value)?)
}

/// What chapter 10's joining needs of a confinement here: only that the
/// joining process is not dumpable, so nothing in the container can open
/// its `/proc/PID/exe` (minibox-runc) while it joins. The process's own
/// hardening is its [`Plan`]'s.
struct Joining;

impl AroundSwitch for Joining {
    fn before_switch(&self, _: &User) -> Result<()> {
        Ok(())
    }
    fn after_switch(&self, _: &User) -> Result<()> {
        Ok(())
    }
}

impl Confinement for Joining {
    fn on_cgroup(&self, _: &dyn ch05_cgroups::cgroup::Cgroup) -> Result<()> {
        Ok(())
    }
    fn in_root(&self) -> Result<()> {
        Ok(())
    }
    fn before_join(&self) -> Result<()> {
        nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")
    }
}
