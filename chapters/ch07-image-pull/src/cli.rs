//! The command line of chapter 7: `run` takes an image reference instead of
//! layer directories; `pull`, `images`, `login` and `logout` are new; chapter
//! 6's `diff` stays.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use ch01_fork_exec::cli::Minibox;
use ch03_uts_namespace::cli::HostnameArgs;
use ch05_cgroups::cgroup::Resources;
use ch05_cgroups::cli::ResourceArgs;
use ch06_rootfs_snapshot::cli::SnapshotArgs;
use ch06_rootfs_snapshot::snapshot::{SnapshotOptions, minibox_root};
use clap::builder::PossibleValue;
use clap::{Args, Subcommand, ValueEnum};

use crate::image::PullPolicy;
use crate::platform::{self, WantedPlatform};
use crate::reference::Reference;

/// Chapter 7's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 7.
#[derive(Debug, Subcommand)]
#[command(about = "minibox, chapter 7: pull images from a registry and run containers from them")]
pub enum Command {
    /// Run a command in a new container made from an image (pulled if missing)
    Run(RunArgs),
    /// The others.
    #[command(flatten)]
    Other(OtherCommand),
}

/// The subcommands other than `run`. Chapter 8 takes them as they are
/// (`#[command(flatten)]`).
#[derive(Debug, Subcommand)]
pub enum OtherCommand {
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

/// `--pull`'s values and their help: the command line's view of
/// [`PullPolicy`], which knows nothing of clap.
impl ValueEnum for PullPolicy {
    fn value_variants<'a>() -> &'a [Self] {
        &[PullPolicy::Missing, PullPolicy::Always, PullPolicy::Never]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            PullPolicy::Missing => PossibleValue::new("missing")
                .help("Pull only when the store does not have the image"),
            PullPolicy::Always => PossibleValue::new("always")
                .help("Pull every time (layers the store has are not downloaded again)"),
            PullPolicy::Never => PossibleValue::new("never")
                .help("Never pull: fail when the store does not have the image"),
        })
    }
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
    /// `--hostname`, as in chapter 3.
    #[command(flatten)]
    pub hostname: HostnameArgs,

    /// Pull the image before running: missing, always or never
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,

    /// The platform to pull, if the image has several (e.g. linux/arm64)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// The snapshot options, as in chapter 6.
    #[command(flatten)]
    pub snapshot: SnapshotArgs,

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

/// What `minibox run` was asked to do but the command: the image and the
/// container's options, checked. Chapter 8 takes it as it is.
#[derive(Debug, Clone)]
pub struct Options {
    /// The image, parsed.
    pub image: Reference,
    /// When to pull it.
    pub pull: PullPolicy,
    /// The platform to pull.
    pub platform: WantedPlatform,
    /// Whether to keep quiet.
    pub quiet: bool,
    /// The hostname inside, if given; otherwise the short container ID.
    pub hostname: Option<String>,
    /// The checked snapshot options, as in chapter 6.
    pub snapshot: SnapshotOptions,
    /// The checked resource flags, as in chapter 5.
    pub resources: Resources,
    /// minibox's directory (`MINIBOX_ROOT`, default /var/lib/minibox): the
    /// image store and the containers.
    pub root: PathBuf,
}

/// What `minibox run` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The image and the container's options.
    pub options: Options,
    /// The program and its arguments, looked up inside the container.
    pub command: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// `minibox run` (boxed: it is much larger than the others).
    Run(Box<Config>),
    /// `minibox pull`.
    Pull {
        /// minibox's directory, with the image store.
        root: PathBuf,
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
        /// minibox's directory, with the image store.
        root: PathBuf,
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
        /// minibox's directory, with the containers.
        root: PathBuf,
        /// The container's ID or its start.
        id: String,
    },
}

impl Command {
    /// Turns the parsed command line into an [`Action`], checking values on the
    /// way (bad input is minibox's error: 125, before anything is created).
    pub fn into_action(self) -> Result<Action> {
        match self {
            Command::Run(args) => {
                let mut words = args.image_and_command.into_iter();
                let image = words.next().expect("clap requires IMAGE");
                let options = args.options.into_options(&image)?;
                let command = words.collect();
                Ok(Action::Run(Box::new(Config { options, command })))
            }
            Command::Other(other) => Ok(other.into_action()),
        }
    }
}

impl OtherCommand {
    /// The [`Action`] for a command other than `run`.
    pub fn into_action(self) -> Action {
        let root = minibox_root();
        match self {
            OtherCommand::Pull(args) => Action::Pull {
                image: args.image,
                platform: args.platform,
                quiet: args.quiet,
                root,
            },
            OtherCommand::Images(args) => Action::Images {
                root,
                quiet: args.quiet,
                filter: args.filter,
            },
            OtherCommand::Login(args) => Action::Login {
                registry: registry_name(args.server.as_deref()),
                username: args.username,
                password: args.password,
                password_stdin: args.password_stdin,
            },
            OtherCommand::Logout { server } => Action::Logout {
                registry: registry_name(server.as_deref()),
            },
            OtherCommand::Diff { id } => Action::Diff { root, id },
        }
    }
}

impl RunOptions {
    /// The checked [`Options`] for running `image` (bad input is minibox's
    /// error: 125, before anything is created).
    pub fn into_options(self, image: &std::ffi::OsStr) -> Result<Options> {
        let resources = self.resources.into_resources()?;
        let snapshot = self.snapshot.into_options()?;
        let image = image
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("invalid reference format"))?;
        Ok(Options {
            image: Reference::parse(image)?,
            pull: self.pull,
            platform: platform::wanted(self.platform.as_deref())?,
            quiet: self.quiet,
            hostname: self.hostname.hostname,
            snapshot,
            resources,
            root: minibox_root(),
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
