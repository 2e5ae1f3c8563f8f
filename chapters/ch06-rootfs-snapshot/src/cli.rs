//! The command line of chapter 6: chapter 5's `run` (with layers instead of a
//! root directory, and the snapshot options), and `diff`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use ch04_mount_namespace::rootfs;
use ch05_cgroups::cli::ResourceArgs;
use ch05_cgroups::limits::Limits;
use clap::{Args, Parser, Subcommand};

use crate::snapshot::{DEFAULT_STORE, Snapshotter};

/// minibox, chapter 6: run containers from an image, each with its own writable layer
#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    bin_name = "minibox",
    version,
    arg_required_else_help = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of chapter 6.
#[derive(Debug, Subcommand)]
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
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Container host name (default: the first 12 digits of the container ID)
    #[arg(long, short = 'h', value_name = "NAME")]
    pub hostname: Option<String>,

    /// An image layer directory; repeat for more, bottom layer first (default:
    /// the busybox root that `cargo xtask fixtures` builds)
    #[arg(long = "layer", value_name = "DIR")]
    pub layers: Vec<PathBuf>,

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

    /// Docker's resource flags, as in chapter 5.
    #[command(flatten)]
    pub resources: ResourceArgs,

    /// Do not narrate the steps on stderr
    #[arg(short, long)]
    pub quiet: bool,

    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// The command to run, then its arguments (options after COMMAND belong to it)
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
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
    /// overlay or copy.
    pub snapshotter: Snapshotter,
    /// Keep the container's directory after it ends.
    pub keep: bool,
    /// Print the container's changes after it ends.
    pub diff: bool,
    /// The checked limits.
    pub limits: Limits,
    /// Where the container's cgroup goes.
    pub cgroup_parent: String,
    /// Whether to print peak memory and CPU time at the end.
    pub stats: bool,
    /// The store: `MINIBOX_ROOT`, default /var/lib/minibox.
    pub store: PathBuf,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// `minibox run`.
    Run(Config),
    /// `minibox diff ID`.
    Diff {
        /// The store to look in.
        store: PathBuf,
        /// The container's ID or its start.
        id: String,
    },
}

/// The store: `$MINIBOX_ROOT`, or /var/lib/minibox.
pub fn store() -> PathBuf {
    std::env::var_os("MINIBOX_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
}

impl Cli {
    /// Turns the parsed command line into an [`Action`], checking values on the
    /// way (bad input is minibox's error: 125, before anything is created).
    pub fn into_action(self) -> Result<Action> {
        let args = match self.command {
            Command::Diff { id } => return Ok(Action::Diff { store: store(), id }),
            Command::Run(args) => args,
        };
        let limits = args.resources.limits()?;
        if args.diff && args.snapshotter == Snapshotter::Copy {
            anyhow::bail!(
                "--diff needs the overlay snapshotter: a copy keeps no record of what changed"
            );
        }
        let layers = if args.layers.is_empty() {
            vec![rootfs::resolve(None)?] // the busybox root, as a one-layer image
        } else {
            args.layers
        };
        Ok(Action::Run(Config {
            command: args.command,
            quiet: args.quiet,
            hostname: args.hostname,
            layers,
            snapshotter: args.snapshotter,
            keep: args.keep,
            diff: args.diff,
            limits,
            cgroup_parent: args.resources.cgroup_parent,
            stats: args.resources.stats,
            store: store(),
        }))
    }
}
