//! The command line of chapter 6: chapter 5's `run` (with layers instead of a
//! root directory, and the snapshot options), and `diff`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use ch01_fork_exec::cli::{CommandArgs, Minibox};
use ch03_uts_namespace::cli::HostnameArgs;
use ch04_mount_namespace::rootfs;
use ch05_cgroups::cgroup::Resources;
use ch05_cgroups::cli::ResourceArgs;
use clap::builder::PossibleValue;
use clap::{Args, Subcommand, ValueEnum};

use crate::snapshot::{Afterwards, SnapshotOptions, Snapshotter, minibox_root};

/// Chapter 6's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 6.
#[derive(Debug, Subcommand)]
#[command(
    about = "minibox, chapter 6: run containers from an image, each with its own writable layer"
)]
pub enum Command {
    /// Run a command in a new container made from an image's layers
    Run(RunArgs),
    /// Show what a kept container added (A), changed (C) and deleted (D)
    Diff {
        /// The container's ID (or the start of it), as `--keep` printed it
        id: String,
    },
}

/// `minibox run [OPTIONS] [--] COMMAND [ARGS...]`
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    mut_arg("quiet", |arg| arg.help("Do not narrate the steps on stderr"))
)]
pub struct RunArgs {
    /// `--hostname`, as in chapter 3.
    #[command(flatten)]
    pub hostname: HostnameArgs,

    /// An image layer directory; repeat for more, bottom layer first (default:
    /// the busybox root that `cargo xtask fixtures` builds)
    #[arg(long = "layer", value_name = "DIR")]
    pub layers: Vec<PathBuf>,

    /// The snapshot options.
    #[command(flatten)]
    pub snapshot: SnapshotArgs,

    /// Docker's resource flags, as in chapter 5.
    #[command(flatten)]
    pub resources: ResourceArgs,

    /// `-q` and the command, as in chapter 1.
    #[command(flatten)]
    pub command: CommandArgs,

    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// How a container's root filesystem is made, and what becomes of it. Chapter
/// 7 takes them as they are (`#[command(flatten)]`).
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// How to make the container's root filesystem from the image
    #[arg(long, value_enum, default_value = "overlay")]
    pub snapshotter: Snapshotter,

    /// Remove the container's filesystem when it ends (the default)
    #[arg(long, conflicts_with = "keep")]
    pub rm: bool,

    /// Keep the container's filesystem when it ends, and print where it is
    #[arg(long)]
    pub keep: bool,

    /// When the container ends, list what it added (A), changed (C) and deleted (D)
    #[arg(long)]
    pub diff: bool,
}

impl SnapshotArgs {
    /// The checked [`SnapshotOptions`]: `--diff` needs a record of what
    /// changed, which a copy does not keep.
    pub fn into_options(self) -> Result<SnapshotOptions> {
        if self.diff && self.snapshotter == Snapshotter::Copy {
            anyhow::bail!(
                "--diff needs the overlay snapshotter: a copy keeps no record of what changed"
            );
        }
        Ok(SnapshotOptions {
            snapshotter: self.snapshotter,
            afterwards: if self.keep {
                Afterwards::Keep
            } else {
                Afterwards::Remove
            },
            show_changes: self.diff,
        })
    }
}

/// `--snapshotter`'s values and their help: the command line's view of the
/// concept's [`Snapshotter`], which knows nothing of clap.
impl ValueEnum for Snapshotter {
    fn value_variants<'a>() -> &'a [Self] {
        &[Snapshotter::Overlay, Snapshotter::Copy]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(match self {
            Snapshotter::Overlay => {
                "overlayfs: the image's layers read-only, a writable layer of the container's own on top (copy-on-write)"
            }
            Snapshotter::Copy => "A full copy of the image for every container: slow, for comparison",
        }))
    }
}

/// What `minibox run` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The program and its arguments, looked up inside the container.
    pub command: Vec<OsString>,
    /// Whether to keep quiet.
    pub quiet: bool,
    /// The hostname inside, if given; otherwise the short container ID.
    pub hostname: Option<String>,
    /// The image: layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// The checked snapshot options.
    pub snapshot: SnapshotOptions,
    /// The checked resource flags, as in chapter 5.
    pub resources: Resources,
    /// minibox's directory: `MINIBOX_ROOT`, default /var/lib/minibox.
    pub root: PathBuf,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// `minibox run`.
    Run(Config),
    /// `minibox diff ID`.
    Diff {
        /// minibox's directory, where the containers are.
        root: PathBuf,
        /// The container's ID or its start.
        id: String,
    },
}

impl Command {
    /// Turns the parsed command line into an [`Action`], checking values on the
    /// way (bad input is minibox's error: 125, before anything is created).
    pub fn into_action(self) -> Result<Action> {
        let args = match self {
            Command::Diff { id } => {
                let root = minibox_root();
                return Ok(Action::Diff { root, id });
            }
            Command::Run(args) => args,
        };
        let resources = args.resources.into_resources()?;
        let snapshot = args.snapshot.into_options()?;
        let layers = if args.layers.is_empty() {
            vec![rootfs::resolve(None)?] // the busybox root, as a one-layer image
        } else {
            args.layers
        };
        Ok(Action::Run(Config {
            command: args.command.command,
            quiet: args.command.quiet,
            hostname: args.hostname.hostname,
            layers,
            snapshot,
            resources,
            root: minibox_root(),
        }))
    }
}
