//! The recipe of chapter 10: chapter 9's container, created on disk first,
//! then started by a monitor that outlives `minibox run`. The other
//! commands are in [`crate::commands`].
//!
//! What moves where, compared with chapter 9:
//!
//! | step | chapter 9 | chapter 10 |
//! |---|---|---|
//! | image, command, volumes | `minibox run` | `minibox run` or `create` ([`create`]) |
//! | record and snapshot | a directory `run` removes | the store: `containers/ID`, kept |
//! | ports bound, bridge | `minibox run` | every start ([`start::launch`]) |
//! | cgroup, clone, network, release | `minibox run` | the monitor ([`crate::start`]) |
//! | waiting for the end | `minibox run` | the monitor |
//! | cleanup | `minibox run` | the monitor: the end recorded, then network, cgroup, `--rm`, `--restart` |
//! | output | inherited: the terminal | pipes or a pty to the monitor: the log, and `run`'s terminal when attached |

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::Command;
use ch03_uts_namespace::id;
use ch06_rootfs_snapshot::snapshot::Snapshot;
use ch07_image_pull::image;
use ch07_image_pull::progress::Output;
use ch07_image_pull::store::Store as ImageStore;
use ch08_command_override::exec::Process;
use ch08_command_override::{command, config};
use ch09_networking::network::{self, Mode};

use crate::attach::{self, Attach};
use crate::cli::{Action, RunConfig};
use crate::container::Spec;
use crate::names::SplitMix64;
use crate::start::{self, Follow};
use crate::state::{self, Keep, Record, Status, Store};
use crate::volumes::{self, Volumes};

/// Does what the command line asked for.
pub fn act(action: Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(&config),
        Action::Create(config) => {
            let store = Store::new(&config.container.run.options.root, &state::run_dir());
            ch01_fork_exec::narrate::print(create(&store, &config)?.id)?;
            Ok(Exit::Code(0))
        }
        Action::Init(args) => start::init(&args),
        Action::Command(command) => crate::commands::act(command),
        Action::Earlier(action) => ch09_networking::run::act(&action),
    }
}

// ANCHOR: run
/// `minibox run`: creates the container ([`create`]), then starts it
/// ([`start::launch`]) and either prints its ID (`-d`) or stays attached to
/// it until it ends. A container that never ran is removed again: nothing of
/// it stays, as with a bad flag.
pub fn run(config: &RunConfig) -> Result<Exit> {
    let root = &config.container.run.options.root;
    let store = Store::new(root, &state::run_dir());
    let record = create(&store, config)?;
    let follow = match config.detach {
        true => Follow::Detached,
        false => Follow::Attached(Attach {
            interactive: config.interactive,
            tty: config.tty,
            keys: &config.detach_keys,
        }),
    };
    match start::launch(&store, root, &record, follow) {
        Ok(Some(exit)) => Ok(exit),
        Ok(None) => {
            ch01_fork_exec::narrate::print(&record.id)?;
            Ok(Exit::Code(0))
        }
        Err(error) => {
            if store
                .state(&record.id)
                .is_ok_and(|s| s.status == Status::Created)
            {
                let _ = store.remove(&record.id);
                Volumes::new(root).forget_anonymous(&record.config.mounts);
            }
            Err(error)
        }
    }
}
// ANCHOR_END: run

// ANCHOR: create
/// `minibox create`, and `run`'s first half: the image (pulled if needed),
/// the process, the volumes, then the container on disk, with its snapshot,
/// under its name, in the state `created`. Nothing runs yet.
pub fn create(store: &Store, config: &RunConfig) -> Result<Record<Spec>> {
    // Chapters 7 and 8: the image and its config, then the rest.
    let (image, defaults) = find_image(&config.container.run.options)?;
    create_from(store, config, &image, &defaults)
}

/// [`create`] from an image already found, with its config: chapter 11's
/// build runs each `RUN` in an image it is still making, which no name
/// finds.
pub fn create_from(
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
// ANCHOR_END: create

/// Chapter 7's image, pulled if needed, and chapter 8's reading of its config.
fn find_image(
    options: &ch07_image_pull::cli::Options,
) -> Result<(image::Found, config::RunConfig)> {
    let images = ImageStore::open(&options.root)?;
    let output = Output::narration(options.quiet);
    let quiet = Narrator::new(true); // the monitor narrates, into its log
    let (reference, policy, platform) = (&options.image, options.pull, &options.platform);
    let image = image::find_layers(&images, reference, policy, platform, &quiet, output)?;
    let defaults = config::load(&images, &image.record)?;
    Ok((image, defaults))
}

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
