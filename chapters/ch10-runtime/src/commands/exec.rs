//! `minibox exec`: a command in a running container, by [`crate::exec`].

use std::path::PathBuf;

use anyhow::Result;
use ch01_fork_exec::exit::{Exit, FailsWith};
use ch01_fork_exec::process::Command;
use ch08_command_override::env;
use ch08_command_override::exec::Process;

use crate::cli::ExecArgs;
use crate::container::Spec;
use crate::exec::{self, Stdio, Target};
use crate::state::{Status, Store};

// ANCHOR: exec
/// Runs the command in the container's namespaces and cgroup, with the
/// container's environment (plus `-e`), user and working directory unless
/// `-u` and `-w` say otherwise; exits with the command's status.
pub fn exec(store: &Store, args: ExecArgs) -> Result<Exit> {
    let refused = |error| -> anyhow::Error { FailsWith { status: 1, error }.into() };
    let container = store.get::<Spec>(&args.container).map_err(refused)?;
    let (record, state) = (&container.record, &container.state);
    let spec = &record.config;
    let running = matches!(state.status, Status::Running);
    let target = Target {
        id: record.id.clone(),
        process: state.process.filter(|_| running),
        cgroups: state.cgroups.clone(),
    };
    if let Some(dir) = &args.workdir
        && !dir.starts_with('/')
    {
        anyhow::bail!("the working directory '{dir}' is invalid, it needs to be an absolute path");
    }
    let lookup = |name: &str| std::env::var(name).ok();
    let given = args
        .env
        .iter()
        .map(|flag| env::from_flag(flag, lookup))
        .collect::<Result<Vec<_>>>()?;
    let process = Process {
        command: Command::new(&args.command)?,
        env: env::merge(&spec.env, &given, &spec.hostname),
        user: args.user.unwrap_or_else(|| spec.user.clone()),
        workdir: PathBuf::from(args.workdir.as_deref().unwrap_or(&spec.workdir)),
    };
    // Without -i the command's stdin is /dev/null, as Docker's is.
    let null = std::fs::File::open("/dev/null")?;
    let stdin = if args.interactive {
        None
    } else {
        Some(std::os::fd::AsFd::as_fd(&null))
    };
    let stdio = Stdio {
        stdin,
        stdout: None,
        stderr: None,
    };
    match exec::exec(&target, &process, stdio) {
        Ok(exit) => Ok(exit),
        Err(error) => Err(FailsWith {
            status: error.status(),
            error: error.into(),
        }
        .into()),
    }
}
// ANCHOR_END: exec
