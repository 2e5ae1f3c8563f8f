//! The commands of runc's command line, dispatched; errors become one line
//! on stderr and in `--log`, and exit status 1, as runc's.

use anyhow::{Result, bail};
use ch01_fork_exec::exit::Exit;

use crate::cli::{Cli, Command};
use crate::state::Store;
use crate::{create, exec, features, lifecycle, log};

// ANCHOR: act
/// Runs one command; the exit status for the process.
pub fn act(cli: Cli) -> Result<Exit> {
    log::configure(cli.log.clone(), cli.log_format, cli.debug);
    if cli.systemd_cgroup {
        refuse_systemd_cgroup()?;
    }
    let store = || Store::open(&cli.root);
    match cli.command {
        Command::Create(args) => create::create(&store()?, &args).map(|_| Exit::Code(0)),
        Command::Start(id) => lifecycle::start(&store()?, &id.id).map(|()| Exit::Code(0)),
        Command::Run(args) => run(&store()?, &args),
        Command::State(id) => lifecycle::state(&store()?, &id.id).map(|()| Exit::Code(0)),
        Command::Kill(args) => {
            lifecycle::kill(&store()?, &args.id, &args.signal, args.all).map(|()| Exit::Code(0))
        }
        Command::Delete(args) => {
            lifecycle::delete(&store()?, &args.id, args.force).map(|()| Exit::Code(0))
        }
        Command::Exec(args) => exec::exec(&store()?, &args),
        Command::Ps(args) => {
            lifecycle::ps(&store()?, &args.id, &args.format, &args.ps_args).map(|()| Exit::Code(0))
        }
        Command::List(args) => {
            lifecycle::list(&store()?, &args.format, args.quiet).map(|()| Exit::Code(0))
        }
        Command::Pause(id) => {
            lifecycle::set_frozen(&store()?, &id.id, true).map(|()| Exit::Code(0))
        }
        Command::Resume(id) => {
            lifecycle::set_frozen(&store()?, &id.id, false).map(|()| Exit::Code(0))
        }
        Command::Update(args) => lifecycle::update(&store()?, &args).map(|()| Exit::Code(0)),
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&features::features())?);
            Ok(Exit::Code(0))
        }
        Command::Spec(args) => {
            let dir = args.bundle.unwrap_or_else(|| ".".into());
            features::spec(&dir, args.rootless).map(|()| Exit::Code(0))
        }
    }
}
// ANCHOR_END: act

// ANCHOR: systemd
/// `--systemd-cgroup`: runc asks systemd (over D-Bus) for a transient
/// scope unit per container, and systemd makes its cgroup. minibox-runc
/// never talks to systemd, so it refuses the flag, in words that fit the
/// host: where systemd runs, the engine can be told to use cgroupfs.
fn refuse_systemd_cgroup() -> Result<()> {
    // systemd's own test for "systemd is the init here" (sd_booted(3)).
    if !std::path::Path::new("/run/systemd/system").is_dir() {
        bail!(
            "--systemd-cgroup: this host does not run systemd (no /run/systemd/system): leave the flag out, and cgroups go through cgroupfs"
        );
    }
    bail!(
        "--systemd-cgroup: minibox-runc places cgroups through cgroupfs only and does not ask systemd for transient scopes: set the engine's cgroup driver to cgroupfs (Docker: native.cgroupdriver=cgroupfs; containerd: SystemdCgroup = false)"
    )
}
// ANCHOR_END: systemd

// ANCHOR: run
/// `run`: `create`, `start`, and unless `--detach`, wait for the init and
/// `delete`. The init is this process's child (`create` cloned it from
/// here), so it waits for it directly.
fn run(store: &Store, args: &crate::cli::RunArgs) -> Result<Exit> {
    // And, as conmon and the shim are, a subreaper: a container that shares
    // our PID namespace (no `pid` in linux.namespaces) leaves its orphans to
    // us, not to the host's init.
    nix::sys::prctl::set_child_subreaper(true)?;
    let record = create::create(store, &args.create)?;
    lifecycle::start(store, &record.id)?;
    if args.detach {
        return Ok(Exit::Code(0));
    }
    let exit = ch01_fork_exec::process::wait_for(nix::unistd::Pid::from_raw(record.init.pid))?;
    if !args.keep {
        lifecycle::delete(store, &record.id, true)?;
    }
    Ok(exit)
}
// ANCHOR_END: run
