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
use ch07_image_pull::image;
use ch07_image_pull::progress::Output;
use ch07_image_pull::store::Store as ImageStore;
use ch08_command_override::config;

use crate::attach::Attach;
use crate::cli::{Action, RunConfig};
use crate::container::Spec;
use crate::create;
use crate::start::{self, Follow};
use crate::state::{self, Record, Status, Store};
use crate::volumes::Volumes;

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
    create::from_image(store, config, &image, &defaults)
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
