//! A container created on disk from an image: chapter 8's process (with
//! chapter 9's host name), the volumes, then the record and the snapshot in
//! the store ([`crate::state`]). `run` and `create` find the image by its
//! name first ([`crate::run::create`]); chapter 11's build gives it the image
//! it is making, which no name finds.

use anyhow::Result;
use ch01_fork_exec::process::Command;
use ch03_uts_namespace::id;
use ch06_rootfs_snapshot::snapshot::Snapshot;
use ch07_image_pull::image;
use ch08_command_override::exec::Process;
use ch08_command_override::{command, config};
use ch09_networking::network::{self, Mode};

use crate::attach;
use crate::cli::RunConfig;
use crate::container::Spec;
use crate::names::SplitMix64;
use crate::state::{Keep, Record, Store};
use crate::volumes::{self, Volumes};

// ANCHOR: from_image
/// Creates a container from `image` (found, pulled if need be, by `run`
/// and `create`; still being made, by chapter 11's build) with its config
/// `defaults`: the process, the volumes, then the container on disk, with
/// its snapshot, under its name, in the state `created`. Nothing runs yet.
pub fn from_image(
    store: &Store,
    config: &RunConfig,
    image: &image::Found,
    defaults: &config::RunConfig,
) -> Result<Record<Spec>> {
    let options = &config.container.run.options;
    // Chapter 8: the command and the process.
    let id = id::new_id()?;
    let (process, hostname) = process(config, defaults, &id)?;
    // New: its volumes, then its record and snapshot.
    let volumes = Volumes::new(&options.root);
    let mounts = volumes.prepare_all(&config.volumes)?;
    let spec = spec(
        config,
        &image.record.config,
        defaults,
        &process,
        &hostname,
        &mounts,
    )?;
    let snapshotter = options.snapshot.snapshotter;
    let mut rng = SplitMix64::from_urandom()?;
    // New: a `--rm` container's record need not outlive a power cut.
    let keep = match config.auto_remove {
        true => Keep::WhileRunning,
        false => Keep::UntilRemoved,
    };
    store
        .create_with(&id, config.name.as_deref(), spec, keep, &mut rng, |dir| {
            Snapshot::prepare_in(dir, &image.layers, snapshotter).map(drop)
        })
        .inspect_err(|_| volumes.forget_anonymous(&mounts))
}
// ANCHOR_END: from_image

/// Chapter 8's process, with chapter 9's host name, and with `-t` Docker's
/// `TERM`.
fn process(
    config: &RunConfig,
    defaults: &config::RunConfig,
    id: &str,
) -> Result<(Process, String)> {
    let (run, network) = (&config.container.run, &config.container.network);
    let words = command::effective(defaults, run.entrypoint.as_deref(), &run.arguments)?;
    let command = Command::new(&words)?;
    let hostname = network::hostname(network.mode, run.options.hostname.as_deref(), id)?;
    let (user, workdir) = (run.user.as_deref(), run.workdir.as_deref());
    let mut process = Process::new(command, defaults, &run.env, user, workdir, &hostname);
    if config.tty {
        attach::term_variable(&mut process.env);
    }
    Ok((process, hostname))
}

/// The record's part of what `run` was asked: what `ps`, `inspect`, `stop`
/// and `exec` need to know later.
fn spec(
    config: &RunConfig,
    image_id: &str,
    defaults: &config::RunConfig,
    process: &Process,
    hostname: &str,
    mounts: &[volumes::Mount],
) -> Result<Spec> {
    let network = &config.container.network;
    let exposed: Vec<String> = defaults.exposed_ports.keys().cloned().collect();
    let mut flags = config.flags.clone();
    if config.publish_all {
        flags.publish_all(&exposed)?;
    }
    Ok(Spec {
        image: config.image.clone(),
        image_id: image_id.to_string(),
        command: process
            .command
            .argv()
            .iter()
            .map(|word| word.to_string_lossy().into_owned())
            .collect(),
        hostname: hostname.to_string(),
        network: mode_name(network.mode).to_string(),
        exposed,
        auto_remove: config.auto_remove,
        stop_signal: defaults.stop_signal.clone(),
        snapshotter: config
            .container
            .run
            .options
            .snapshot
            .snapshotter
            .name()
            .to_string(),
        env: process.env.clone(),
        user: process.user.clone(),
        workdir: process.workdir.display().to_string(),
        interactive: config.interactive,
        tty: config.tty,
        init: config.init,
        restart: config.restart,
        mounts: mounts.to_vec(),
        flags,
    })
}

/// Docker's name for a network mode.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Bridge => "bridge",
        Mode::None => "none",
        Mode::Host => "host",
    }
}
