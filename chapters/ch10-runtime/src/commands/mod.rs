//! The commands that act on containers `run` left behind, one module each.
//! Each reads the state on disk ([`crate::state`]) and changes it only
//! through the store's locked, atomic operations, so that any number of them
//! may run at once, beside the containers' monitors.

pub mod attach;
pub mod exec;
pub mod image;
pub mod info;
pub mod inspect;
pub mod logs;
pub mod ps;
pub mod rm;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod top;
pub mod volume;

use anyhow::Result;
use ch01_fork_exec::exit::{Exit, FailsWith};
use ch06_rootfs_snapshot::snapshot;

use crate::cli::{Command, ContainerCommand, ImageCommand, SystemCommand};
use crate::state::{self, Store};

/// Runs one of the commands other than `run`.
pub fn act(command: Command) -> Result<Exit> {
    let store = Store::new(&snapshot::minibox_root(), &state::run_dir());
    // Docker's client exits with 1 when the daemon refuses; so does minibox.
    let refused = |error| FailsWith { status: 1, error }.into();
    match command {
        Command::Start(args) => start::start(&store, &args),
        Command::Restart(args) => start::restart(&store, &args),
        Command::Ps(args) => ps::ps(&store, args).map_err(refused),
        Command::Logs(args) => logs::logs(&store, &args).map_err(refused),
        Command::Stop(args) => stop::stop(&store, &args),
        Command::Kill(args) => stop::kill(&store, &args),
        Command::Rm(args) => rm::rm(&store, &args),
        Command::Wait { containers } => stop::wait(&store, &containers),
        Command::Exec(args) => exec::exec(&store, args),
        Command::Attach {
            detach_keys,
            container,
        } => attach::attach(&store, &container, &detach_keys),
        Command::Top {
            container,
            ps_options,
        } => top::top(&store, &container, &ps_options).map_err(refused),
        Command::Stats(args) => {
            stats::stats(&store, &args.containers, args.no_stream).map_err(refused)
        }
        Command::Inspect { containers } => inspect::inspect(&store, &containers),
        Command::Port { container, port } => {
            inspect::port(&store, &container, port.as_deref()).map_err(refused)
        }
        Command::Rename {
            container,
            new_name,
        } => store
            .rename(&container, &new_name)
            .map(|()| Exit::Code(0))
            .map_err(refused),
        Command::Container(ContainerCommand::Prune { .. }) => rm::prune(&store).map_err(refused),
        Command::Tag { source, target } => image::tag(&source, &target).map_err(refused),
        Command::Rmi { force, images } => image::rmi(&store, &images, force),
        Command::Info => info::info(&store).map_err(refused),
        Command::Version => info::version(),
        Command::Image(ImageCommand::Prune { all, .. }) => {
            system::image_prune(&store, all).map_err(refused)
        }
        Command::System(SystemCommand::Df) => system::df(&store).map_err(refused),
        Command::System(SystemCommand::Prune { all, volumes, .. }) => {
            system::system_prune(&store, all, volumes).map_err(refused)
        }
        Command::Volume(command) => volume::volume(&store, command).map_err(refused),
        Command::Completion { shell } => {
            // Written whole, so that `completion bash | head` is no error.
            let script = crate::cli::completion(shell);
            match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(Exit::Code(0)),
            }
        }
        Command::Run(_)
        | Command::Create(_)
        | Command::Init(_)
        | Command::Network(_)
        | Command::Other(_) => {
            unreachable!("handled by run::act")
        }
    }
}

/// Runs `each` on every container named, as Docker's multi-container
/// commands do: the ones that fail say why, one line each, the others go on,
/// and the command exits with 1 if any failed.
pub fn for_each(containers: &[String], mut each: impl FnMut(&str) -> Result<()>) -> Result<Exit> {
    let mut failed = false;
    for container in containers {
        if let Err(error) = each(container) {
            ch01_fork_exec::narrate::notice(format_args!("{error:#}"));
            failed = true;
        }
    }
    Ok(Exit::Code(if failed { 1 } else { 0 }))
}
