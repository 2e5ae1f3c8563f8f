//! The recipe of chapter 9: chapter 8's, with the container in a network
//! namespace of its own (unless `--network host`), given its network by the
//! parent while it waits to be released, and its `/etc` files mounted by the
//! child. The other commands are chapter 7's, and `network prune`.

use std::path::Path;

use anyhow::Result;
use ch01_fork_exec::exit::{Exit, FailsWith};
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::Command;
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::mount::{self, Isolation};
use ch05_cgroups::cgroup;
use ch06_rootfs_snapshot::snapshot::Snapshot;
use ch07_image_pull::image;
use ch07_image_pull::progress::Output;
use ch07_image_pull::store::Store;
use ch08_command_override::exec::Process;
use ch08_command_override::{command, config};

use crate::cli::{Action, Config};
use crate::network::{self, Attached};

/// Does what the command line asked for: `run` and `network prune` here, the
/// rest in chapter 7.
pub fn act(action: &Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(config),
        Action::NetworkPrune { root } => {
            prune(root).map_err(|error| FailsWith { status: 1, error }.into())
        }
        Action::Other(action) => ch07_image_pull::run::act(action),
    }
}

// ANCHOR: run
/// Runs a container from the image `run.options.image` on the network
/// `network`: chapter 8's container, reachable.
pub fn run(Config { run, network }: &Config) -> Result<Exit> {
    let options = &run.options;
    let narrator = Narrator::new(options.quiet);

    // Chapters 7 and 8: the image's layers, its config, the command.
    let store = Store::open(&options.root)?;
    let (reference, output) = (&options.image, Output::narration(options.quiet));
    let image = image::find_layers(
        &store,
        reference,
        options.pull,
        &options.platform,
        &narrator,
        output,
    )?;
    let defaults = config::load(&store, &image.record)?;
    let words = command::effective(&defaults, run.entrypoint.as_deref(), &run.arguments)?;
    let command = Command::new(&words)?;
    let id = id::new_id()?;
    let hostname = network::hostname(network.mode, options.hostname.as_deref(), &id)?;
    let (user, workdir) = (run.user.as_deref(), run.workdir.as_deref());
    let process = Process::new(command, &defaults, &run.env, user, workdir, &hostname);

    // New in this chapter: the ports are bound and the bridge is ready
    // before anything of the container exists; a bad -p leaves nothing.
    let prepared = network::prepare(network, &options.root)?;
    let namespaces = mount::NAMESPACES | network.mode.namespaces();

    let snapshotter = options.snapshot.snapshotter;
    let snapshot = Snapshot::prepare(&options.root, &id, &image.layers, snapshotter)?;
    let rootfs = snapshot.rootfs();
    snapshot.lifecycle(&options.snapshot, || {
        let cgroups = Path::new(cgroup::ROOT);
        cgroup::with_cgroup(cgroups, &options.resources, &id, |cgroup| {
            let (parent, child_end) = sync::channel()?;
            namespace::say_clone(&narrator, namespaces);
            let child = namespace::clone_child(namespaces, || {
                let setup = || {
                    uts::set_hostname(&hostname)?;
                    mount::make_private()?;
                    snapshot.mount()?;
                    network::mount_etc_files(&snapshot.dir, &rootfs)?; // new
                    mount::enter_root(&rootfs, Isolation::PivotRoot)?;
                    process.enter()
                };
                child_end.start(setup, |entered| process.exec(&entered))
            })?;
            drop(child_end);
            // New: while the child waits in its cgroup, the parent gives it
            // its network; after its end, takes the network apart.
            let mut attached = None;
            let program = process.command.program_name();
            let exit = cgroup::start(cgroup, child, parent, &program, &narrator, || {
                let network = prepared.attach(child, &id, &hostname, &snapshot.dir)?;
                narrator.say(format_args!(
                    "parent gave the child (host PID {child}) its network: {network}"
                ));
                attached = Some(network);
                Ok(())
            })?;
            cgroup::report(cgroup, &options.resources, exit)?;
            attached.map_or(Ok(()), Attached::detach)?;
            Ok(exit)
        })
    })
}
// ANCHOR_END: run

/// `minibox network prune`: says what it removed, as `docker network prune`.
fn prune(root: &Path) -> Result<Exit> {
    let removed = network::prune(root)?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for name in removed {
            println!("{name}");
        }
    }
    Ok(Exit::Code(0))
}
