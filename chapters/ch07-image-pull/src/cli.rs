//! The command line of chapter 7: `run` takes an image reference instead of
//! layer directories; `pull`, `images`, `login` and `logout` are new; chapter
//! 6's `diff` stays.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use ch05_cgroups::cli::ResourceArgs;
use ch05_cgroups::limits::Limits;
use ch06_rootfs_snapshot::snapshot::Snapshotter;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::oci::Platform;
use crate::platform;
use crate::reference::Reference;

/// minibox, chapter 7: pull images from a registry and run containers from them
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

/// The subcommands of chapter 7.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container made from an image (pulled if missing)
    Run(RunArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// List the images in the store
    Images(ImagesArgs),
    /// Log in to a registry (credentials are kept in ~/.minibox/config.json)
    Login(LoginArgs),
    /// Log out from a registry
    Logout {
        /// The registry (default: Docker Hub)
        server: Option<String>,
    },
    /// Show what a kept container added (A), changed (C) and deleted (D)
    Diff {
        /// The container's ID (or the start of it), as `--keep` printed it
        id: String,
    },
}

/// When `run` pulls the image, as Docker's `--pull` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull only when the store does not have the image
    Missing,
    /// Pull every time (layers the store has are not downloaded again)
    Always,
    /// Never pull: fail when the store does not have the image
    Never,
}

/// `minibox run [OPTIONS] IMAGE COMMAND [ARGS...]`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// The options of a container made from an image.
    #[command(flatten)]
    pub options: RunOptions,

    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// The image (e.g. busybox, busybox:1.36, localhost:5000/team/app:v1), then
    /// the command to run in it and its arguments (options after IMAGE belong to
    /// the command)
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        value_names = ["IMAGE", "COMMAND"]
    )]
    pub image_and_command: Vec<OsString>,
}

/// `run`'s options for a container made from an image: the pull, the
/// snapshot, the resources. Later chapters take them as they are
/// (`#[command(flatten)]`) and add their own.
#[derive(Debug, Args)]
pub struct RunOptions {
    /// Container host name (default: the first 12 digits of the container ID)
    #[arg(long, short = 'h', value_name = "NAME")]
    pub hostname: Option<String>,

    /// Pull the image before running: missing, always or never
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,

    /// The platform to pull, if the image has several (e.g. linux/arm64)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

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
}

/// `minibox pull [OPTIONS] NAME[:TAG|@DIGEST]`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The platform to pull, if the image has several (e.g. linux/arm64)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Print only the image's name when done
    #[arg(short, long)]
    pub quiet: bool,

    /// The image: NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

/// `minibox images [OPTIONS] [REPOSITORY[:TAG]]`
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,

    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub filter: Option<String>,
}

/// `minibox login [OPTIONS] [SERVER]`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name
    #[arg(short, long)]
    pub username: Option<String>,

    /// Password (visible to other users in the process list: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,

    /// Read the password from standard input
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,

    /// The registry (default: Docker Hub)
    pub server: Option<String>,
}

/// What `minibox run` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The image, parsed.
    pub image: Reference,
    /// When to pull it.
    pub pull: PullPolicy,
    /// The platform to pull, and whether the user chose it.
    pub platform: (Platform, bool),
    /// The program and its arguments, looked up inside the container.
    pub command: Vec<OsString>,
    /// Whether to keep quiet.
    pub quiet: bool,
    /// The hostname inside, if given; otherwise the short container ID.
    pub hostname: Option<String>,
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
    /// `minibox run` (boxed: it is much larger than the others).
    Run(Box<Config>),
    /// `minibox pull`.
    Pull {
        /// The store.
        store: PathBuf,
        /// The image, as typed (parsed by `pull` itself: a bad one is a failed
        /// pull, exit status 1, as with `docker pull`).
        image: String,
        /// `--platform`, as typed.
        platform: Option<String>,
        /// Print only the name.
        quiet: bool,
    },
    /// `minibox images`.
    Images {
        /// The store.
        store: PathBuf,
        /// IDs only.
        quiet: bool,
        /// `REPOSITORY[:TAG]` to show.
        filter: Option<String>,
    },
    /// `minibox login`.
    Login {
        /// The registry, as a reference's registry part.
        registry: String,
        /// User name, if given.
        username: Option<String>,
        /// Password, if given.
        password: Option<String>,
        /// Read the password from stdin.
        password_stdin: bool,
    },
    /// `minibox logout`.
    Logout {
        /// The registry.
        registry: String,
    },
    /// `minibox diff ID`.
    Diff {
        /// The store.
        store: PathBuf,
        /// The container's ID or its start.
        id: String,
    },
}

impl Cli {
    /// Turns the parsed command line into an [`Action`], checking values on the
    /// way (bad input is minibox's error: 125, before anything is created).
    pub fn into_action(self) -> Result<Action> {
        let store = ch06_rootfs_snapshot::cli::store();
        Ok(match self.command {
            Command::Run(args) => Action::Run(Box::new(run_config(args, store)?)),
            Command::Pull(args) => Action::Pull {
                image: args.image,
                platform: args.platform,
                quiet: args.quiet,
                store,
            },
            Command::Images(args) => Action::Images {
                store,
                quiet: args.quiet,
                filter: args.filter,
            },
            Command::Login(args) => Action::Login {
                registry: registry_name(args.server.as_deref()),
                username: args.username,
                password: args.password,
                password_stdin: args.password_stdin,
            },
            Command::Logout { server } => Action::Logout {
                registry: registry_name(server.as_deref()),
            },
            Command::Diff { id } => Action::Diff { store, id },
        })
    }
}

fn run_config(args: RunArgs, store: PathBuf) -> Result<Config> {
    let mut words = args.image_and_command.into_iter();
    let image = words.next().expect("clap requires IMAGE");
    args.options.into_config(&image, words.collect(), store)
}

impl RunOptions {
    /// The checked [`Config`] for running `image` with `command` (bad input is
    /// minibox's error: 125, before anything is created).
    pub fn into_config(
        self,
        image: &std::ffi::OsStr,
        command: Vec<OsString>,
        store: PathBuf,
    ) -> Result<Config> {
        let limits = self.resources.limits()?;
        if self.diff && self.snapshotter == Snapshotter::Copy {
            bail!("--diff needs the overlay snapshotter: a copy keeps no record of what changed");
        }
        let image = image
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("invalid reference format"))?;
        Ok(Config {
            image: Reference::parse(image)?,
            pull: self.pull,
            platform: chosen_platform(self.platform.as_deref())?,
            command,
            quiet: self.quiet,
            hostname: self.hostname,
            snapshotter: self.snapshotter,
            keep: self.keep,
            diff: self.diff,
            limits,
            cgroup_parent: self.resources.cgroup_parent,
            stats: self.resources.stats,
            store,
        })
    }
}

/// Whether `typed` names a tag or a digest; if not, Docker says "Using
/// default tag: latest".
pub fn names_tag(typed: &str) -> bool {
    typed.contains('@')
        || typed
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

/// `--platform`, or this machine's.
pub fn chosen_platform(text: Option<&str>) -> Result<(Platform, bool)> {
    Ok(match text {
        Some(text) => (platform::parse(text)?, true),
        None => (platform::host(), false),
    })
}

/// A `login`/`logout` server argument as a registry name: `docker.io` when
/// absent or one of Docker Hub's names, else the host (a URL's scheme and path
/// dropped).
fn registry_name(server: Option<&str>) -> String {
    let Some(server) = server else {
        return crate::reference::DOCKER_HUB.to_string();
    };
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => {
            crate::reference::DOCKER_HUB.to_string()
        }
        other => other.to_string(),
    }
}
