//! `minibox exec`: a command in a running container, by [`crate::exec`].

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::Result;
use ch01_fork_exec::exit::{Exit, FailsWith};
use ch01_fork_exec::process::Command;
use ch08_command_override::env;
use ch08_command_override::exec::Process;

use crate::attach;
use crate::cli::ExecArgs;
use crate::container::Spec;
use crate::exec::{self, ExecError, Stdio, Target};
use crate::state::{Status, Store};
use crate::terminal;

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
        extra: spec.flags.extra.clone(),
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
    let mut process = Process {
        command: Command::new(&args.command)?,
        env: env::merge(&spec.env, &given, &spec.hostname),
        user: args.user.clone().unwrap_or_else(|| spec.user.clone()),
        workdir: PathBuf::from(args.workdir.as_deref().unwrap_or(&spec.workdir)),
    };
    if args.tty {
        attach::term_variable(&mut process.env);
    }
    match run(&target, &process, &args) {
        Ok(exit) => Ok(exit),
        Err(error) => Err(FailsWith {
            status: error.status(),
            error: error.into(),
        }
        .into()),
    }
}
// ANCHOR_END: exec

// ANCHOR: exec_stdio
/// Runs the process with the streams `-i`, `-t` and `-d` ask for: without
/// `-i` its stdin is `/dev/null`, as Docker's is; with `-t` a pty from the
/// container's devpts, whose master comes back over a console socket and is
/// copied to and from the user's terminal; with `-d` nothing of ours, and
/// no waiting.
fn run(target: &Target, process: &Process, args: &ExecArgs) -> Result<Exit, ExecError> {
    let null = File::options().read(true).write(true).open("/dev/null");
    let null = null.map_err(|e| ExecError::Other(e.into()))?;
    let mut stdio = Stdio::default();
    if !args.interactive || args.detach {
        stdio.stdin = Some(null.as_fd());
    }
    if args.detach {
        (stdio.stdout, stdio.stderr) = (Some(null.as_fd()), Some(null.as_fd()));
    }
    if !args.tty {
        return exec::exec_then(target, process, stdio, || Ok(!args.detach));
    }
    let (ours, theirs) = UnixStream::pair().map_err(|e| ExecError::Other(e.into()))?;
    stdio.console = Some(theirs.as_fd());
    exec::exec_then(target, process, stdio, || {
        let (master, _name) = terminal::recv_fd(ours.as_fd())?;
        if args.detach {
            return Ok(false);
        }
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let streams = terminal::Streams {
            input: args.interactive.then(|| stdin.as_fd()),
            output: stdout.as_fd(),
            master: master.as_fd(),
        };
        terminal::attach(streams, &args.detach_keys)?;
        Ok(true)
    })
}
// ANCHOR_END: exec_stdio
