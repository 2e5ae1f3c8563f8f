//! The recipe of chapter 8: chapter 7's, with the command taken from the
//! image's config and the overrides, and the process's environment, user and
//! working directory set in the child, inside the container, just before
//! `execve`. The other commands are chapter 7's.

use std::path::Path;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
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
use nix::unistd::getpid;

use crate::cli::{Action, Config};
use crate::exec::Process;
use crate::{command, config};

/// Does what the command line asked for: `run` here, the rest in chapter 7.
pub fn act(action: &Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(config),
        Action::Other(action) => ch07_image_pull::run::act(action),
    }
}

// ANCHOR: run
/// Runs a container from the image `options.image` (pulled first if the
/// store lacks it), starting the command Docker's rules give.
pub fn run(config: &Config) -> Result<Exit> {
    let options = &config.options;
    let narrator = Narrator::new(options.quiet);

    // Chapter 7: the image's layers come from the store, pulled if missing.
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

    // New in this chapter: the image's config says what to run, as whom,
    // where, with which variables; the command line overrides it.
    // SIMPLIFICATION: StopSignal and ExposedPorts are read but not used yet:
    // `stop` is chapter 10's, publishing ports chapter 9's.
    let defaults = config::load(&store, &image.record)?;
    let words = command::effective(&defaults, config.entrypoint.as_deref(), &config.arguments)?;
    let command = Command::new(&words)?;
    narrator.say(format_args!(
        "image {reference} says Entrypoint {:?}, Cmd {:?}: the container runs {}",
        defaults.entrypoint,
        defaults.cmd,
        command.argv_for_display()
    ));
    let id = id::new_id()?;
    let hostname = uts::hostname_for(options.hostname.as_deref(), &id);
    let user = config.user.as_deref();
    let workdir = config.workdir.as_deref();
    let process = Process::new(command, &defaults, &config.env, user, workdir, &hostname);

    // From here on, chapter 7's recipe: a snapshot of the layers, a cgroup,
    // the container, whose child now enters the process's user, directory
    // and environment before it execs.
    let snapshotter = options.snapshot.snapshotter;
    let snapshot = Snapshot::prepare(&options.root, &id, &image.layers, snapshotter)?;
    let rootfs = snapshot.rootfs();
    snapshot.lifecycle(&options.snapshot, || {
        let cgroups = Path::new(cgroup::ROOT);
        cgroup::with_cgroup(cgroups, &options.resources, &id, |cgroup| {
            let (parent, child_end) = sync::channel()?;
            namespace::say_clone(&narrator, mount::NAMESPACES);
            let child = namespace::clone_child(mount::NAMESPACES, || {
                let setup = || {
                    uts::set_hostname(&hostname)?;
                    mount::make_private()?;
                    snapshot.mount()?;
                    mount::enter_root(&rootfs, Isolation::PivotRoot)?;
                    process.enter() // new: the image's user, directory, environment
                };
                child_end.start(setup, |entered| {
                    narrate_exec(&narrator, &process, &entered);
                    process.exec(&entered)
                })
            })?;
            drop(child_end);
            let program = process.command.program_name();
            let exit = cgroup::start(cgroup, child, parent, &program, &narrator, || Ok(()))?;
            cgroup::report(cgroup, &options.resources, exit)?;
            Ok(exit)
        })
    })
}
// ANCHOR_END: run

/// In the child: says who it now is, where, and how the program is found.
fn narrate_exec(narrator: &Narrator, process: &Process, entered: &crate::exec::Entered) {
    let program = process.command.program_name();
    let found = if program.contains('/') {
        "a path, used as it is"
    } else {
        "a name, looked up on the container's PATH"
    };
    narrator.say(format_args!(
        "child (PID {}) is uid {} gid {} in {}, calls execve for {program:?} ({found}) with argv {} and {} variables",
        getpid(),
        entered.user.uid,
        entered.user.gid,
        process.workdir.display(),
        process.command.argv_for_display(),
        entered.env.len()
    ));
}
