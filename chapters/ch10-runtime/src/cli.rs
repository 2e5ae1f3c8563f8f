//! The command line of chapter 10: `run` (and `create`) with Docker's
//! runtime flags (`-d`, `--name`, `--rm`, `-i`, `-t`, `-v`, `--tmpfs`,
//! `--init`, `--restart`, `-P`) on top of chapter 9's, and the commands that
//! act on containers that outlive it: `start`, `restart`, `ps`, `logs`,
//! `stop`, `kill`, `rm`, `wait`, `exec`, `attach`, `inspect`, `port`,
//! `rename`, `container prune`; volumes, `tag`, `rmi`, `image prune`,
//! `system df` and `prune`, `info`, `version`, `completion`. `network prune`
//! is chapter 9's; `pull`, `images`, `login`, `logout` and `diff` are
//! chapter 7's.

use std::ffi::OsString;

use anyhow::Result;
use ch01_fork_exec::cli::Minibox;
use ch03_uts_namespace::cli::HostnameArgs;
use ch05_cgroups::cli::ResourceArgs;
use ch06_rootfs_snapshot::cli::SnapshotArgs;
use ch06_rootfs_snapshot::snapshot::Snapshotter;
use ch07_image_pull::cli::{self as ch07, OtherCommand};
use ch07_image_pull::image::PullPolicy;
use ch08_command_override::cli::{self as ch08, CommandArgs, ImageAndCommand};
use ch09_networking::cli::{self as ch09, NetworkArgs, NetworkCommand};
use clap::{Args, Subcommand};

use crate::container::StartFlags;
use crate::restart::Policy;
use crate::terminal::DetachKeys;
use crate::volumes::{self, VolumeSpec};

/// Chapter 10's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 10.
#[derive(Debug, Subcommand)]
#[command(
    about = "minibox, chapter 10: run containers in the background, list, stop and remove them"
)]
pub enum Command {
    /// Create and run a container from an image
    Run(Box<RunArgs>),
    /// Create a container from an image, without starting it
    Create(Box<RunArgs>),
    /// Start one or more created or stopped containers
    Start(StartArgs),
    /// Restart one or more containers
    Restart(RestartArgs),
    /// List containers
    Ps(PsArgs),
    /// Show a container's output
    Logs(LogsArgs),
    /// Stop running containers: the image's stop signal, then SIGKILL
    Stop(StopArgs),
    /// Send a signal to running containers
    Kill(KillArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Wait until containers stop, then print their exit codes
    Wait {
        /// The containers (name, ID or unique ID prefix)
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Display the running processes of a container
    Top {
        /// The container (name, ID or unique ID prefix)
        container: String,
        /// Options for the host's ps (default: -ef)
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ps OPTIONS"
        )]
        ps_options: Vec<String>,
    },
    /// Display a live stream of containers' resource usage statistics
    Stats(StatsArgs),
    /// Show containers' details as JSON
    Inspect {
        /// The containers (name, ID or unique ID prefix)
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// List a container's published ports
    Port {
        /// The container (name, ID or unique ID prefix)
        container: String,
        /// Only this port: PORT[/tcp|udp]
        #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
        port: Option<String>,
    },
    /// Attach your terminal to a running container's input and output
    Attach {
        /// Override the key sequence for detaching a container
        #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
        detach_keys: DetachKeys,
        /// The container (name, ID or unique ID prefix)
        container: String,
    },
    /// Rename a container
    Rename {
        /// The container (name, ID or unique ID prefix)
        container: String,
        /// Its new name
        new_name: String,
    },
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag {
        /// The image (name or ID)
        #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
        source: String,
        /// Its new name
        #[arg(value_name = "TARGET_IMAGE[:TAG]")]
        target: String,
    },
    /// Remove one or more images (refused while a container uses one, unless -f)
    Rmi {
        /// Force removal of the image
        #[arg(short, long)]
        force: bool,
        /// The images (name or ID)
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Show what minibox sees: containers, images, storage, cgroups, network, and what is missing
    Info,
    /// Show minibox's version
    Version,
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// The container's init, as `run --init` starts it (not for people)
    #[command(hide = true)]
    Init(InitArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage minibox: disk usage, pruning
    #[command(subcommand)]
    System(SystemCommand),
    /// Print the shell completion script (e.g. `minibox completion bash > /etc/bash_completion.d/minibox`)
    Completion {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Manage minibox's network (chapter 9's)
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Chapter 7's: pull, images, login, logout, diff.
    #[command(flatten)]
    Other(OtherCommand),
}

/// `minibox volume ...`
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// List volumes
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a volume
    Create {
        /// Its name
        name: String,
    },
    /// Remove one or more volumes (refused while a container uses one)
    Rm {
        /// The volumes
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (with -a, every unused volume)
    Prune {
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation (minibox never asks)
        #[arg(short, long)]
        force: bool,
    },
}

/// `minibox image ...`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Remove what no image names any more, and with -a every image no container uses
    Prune {
        /// Remove all images no container uses, not only the store's garbage
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation (minibox never asks)
        #[arg(short, long)]
        force: bool,
    },
}

/// `minibox system ...`
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage: images, containers, volumes
    Df,
    /// Remove stopped containers, unused images (and with --volumes, unused volumes)
    Prune {
        /// Remove all images no container uses, not only the store's garbage
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation (minibox never asks)
        #[arg(short, long)]
        force: bool,
        /// Prune anonymous volumes too
        #[arg(long)]
        volumes: bool,
    },
}

/// `minibox container ...`
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Remove all stopped containers
    Prune {
        /// Do not ask for confirmation (minibox never asks)
        #[arg(short, long)]
        force: bool,
    },
}

// ANCHOR: run_args
/// `minibox run [OPTIONS] IMAGE [COMMAND] [ARG...]`
///
/// Chapter 5's `--stats` printed what the cgroup saw after the end; the
/// cgroup is now the monitor's, and Docker's `run` has no such flag: it is
/// hidden, and refused.
#[derive(Debug, Args)]
#[command(disable_help_flag = true, mut_arg("stats", |arg| arg.hide(true)))]
pub struct RunArgs {
    /// This chapter's: in the background or not, a name, removal at the end.
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    /// Chapter 9's: the network.
    #[command(flatten)]
    pub network: NetworkArgs,

    /// Chapter 8's: what the container runs, as whom, where.
    #[command(flatten)]
    pub command: CommandArgs,

    /// Chapters 3 to 7's: the host name, the pull, the snapshot, the resources.
    #[command(flatten)]
    pub options: ContainerOptions,

    /// Chapter 8's: `--help`, then IMAGE and the command.
    #[command(flatten)]
    pub image_and_command: ImageAndCommand,
}

/// Docker's flags for a container's life, new in this chapter.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Run the container in the background and print its ID
    #[arg(short, long)]
    pub detach: bool,

    /// Assign a name to the container
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,

    /// Keep STDIN open and pass it to the container
    #[arg(short, long)]
    pub interactive: bool,

    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,

    /// Bind mount a volume: HOST-DIR:CTR-DIR[:ro], NAME:CTR-DIR[:ro] or CTR-DIR
    #[arg(short, long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,

    /// Mount a tmpfs directory: CTR-DIR[:OPTIONS]
    #[arg(long, value_name = "CTR-DIR[:OPTIONS]")]
    pub tmpfs: Vec<String>,

    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,

    /// Restart policy when the container exits: no, on-failure[:max-retries], always, unless-stopped
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,

    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,

    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: DetachKeys,
}
// ANCHOR_END: run_args

/// Chapter 7's `run` options without its `--rm`, `--keep` and `--diff`: a
/// container now stays until `rm` (or `--rm`), and `minibox diff` shows
/// what it changed.
#[derive(Debug, Args)]
pub struct ContainerOptions {
    /// `--hostname`, as in chapter 3.
    #[command(flatten)]
    pub hostname: HostnameArgs,

    /// Pull the image before running: missing, always or never
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,

    /// The platform to pull, if the image has several (e.g. linux/arm64)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// How to make the container's root filesystem from the image
    #[arg(long, value_enum, default_value = "overlay")]
    pub snapshotter: Snapshotter,

    /// Docker's resource flags, as in chapter 5.
    #[command(flatten)]
    pub resources: ResourceArgs,

    /// Suppress the pull output
    #[arg(short, long)]
    pub quiet: bool,
}

impl ContainerOptions {
    /// Chapter 7's options, as chapter 8's `Config` takes them.
    fn into_ch07(self) -> ch07::RunOptions {
        ch07::RunOptions {
            hostname: self.hostname,
            pull: self.pull,
            platform: self.platform,
            snapshot: SnapshotArgs {
                snapshotter: self.snapshotter,
                rm: false,
                keep: false,
                diff: false,
            },
            resources: self.resources,
            quiet: self.quiet,
        }
    }
}

/// `minibox init`: how `run --init` starts the init, from a sealed copy of
/// minibox, before `pivot_root`; the container's environment is its own.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The container's root, to pivot into
    #[arg(long)]
    pub rootfs: std::path::PathBuf,
    /// The user to run as (`USER[:GROUP]`, empty for the image's root)
    #[arg(long, default_value = "")]
    pub user: String,
    /// The working directory
    #[arg(long)]
    pub workdir: std::path::PathBuf,
    /// With -t: the console socket, to send the pty on
    #[arg(long)]
    pub console_fd: Option<i32>,
    /// The flags a later chapter added to `run`, one per use (its hardening)
    #[arg(long, allow_hyphen_values = true)]
    pub confine: Vec<String>,
    /// The command
    #[arg(required = true, last = true)]
    pub command: Vec<OsString>,
}

/// `minibox start [OPTIONS] CONTAINER...`
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach the container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: DetachKeys,
    /// Only if it waits to be restarted (how a restart policy starts it)
    #[arg(long, hide = true)]
    pub restarting: bool,
    /// The containers (name, ID or unique ID prefix)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `minibox restart [OPTIONS] CONTAINER...`
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub time: u64,
    /// The containers (name, ID or unique ID prefix)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `minibox ps [OPTIONS]`
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Filter output based on conditions provided (status=, name=, ancestor=, ...)
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output using a Go-like template: table, json, or {{.ID}} {{.Names}} ...
    #[arg(long, value_name = "STRING")]
    pub format: Option<String>,
}

/// `minibox logs [OPTIONS] CONTAINER`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// The container (name, ID or unique ID prefix)
    pub container: String,
}

/// `minibox stop [OPTIONS] CONTAINER...`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub time: u64,
    /// Signal to send to the container (default: the image's StopSignal, else SIGTERM)
    #[arg(short, long, value_name = "SIGNAL")]
    pub signal: Option<String>,
    /// The containers (name, ID or unique ID prefix)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `minibox kill [OPTIONS] CONTAINER...`
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,
    /// The containers (name, ID or unique ID prefix)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `minibox rm [OPTIONS] CONTAINER...`
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove the anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    /// The containers (name, ID or unique ID prefix)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `minibox stats [OPTIONS] [CONTAINER...]`
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// The containers (name, ID or unique ID prefix); default: every running one
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `minibox exec [OPTIONS] CONTAINER COMMAND [ARG...]`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep STDIN open and pass it to the command
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Detached mode: run the command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching from the command's terminal
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: DetachKeys,
    /// Set an environment variable (KEY alone: the value from minibox's environment)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name or UID, optionally :group
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The container (name, ID or unique ID prefix)
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

// ANCHOR: config
/// What `minibox run` was asked to do: chapter 9's run, with a life of its
/// own.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Chapter 9's: the image, the command, the overrides, the network.
    pub container: ch09::Config,
    /// The image as typed (`busybox`, not `docker.io/library/busybox:latest`),
    /// for `ps`.
    pub image: String,
    /// `-d`: return once it runs, printing its ID.
    pub detach: bool,
    /// `--name`, if given (else a generated one).
    pub name: Option<String>,
    /// `--rm`: removed when it ends.
    pub auto_remove: bool,
    /// `-i`: the container's stdin stays open, fed from ours.
    pub interactive: bool,
    /// `-t`: the container gets a terminal of its own.
    pub tty: bool,
    /// `--detach-keys`.
    pub detach_keys: DetachKeys,
    /// `--init`: a small init as PID 1, the command its child.
    pub init: bool,
    /// `--restart`.
    pub restart: Policy,
    /// `-P`: every port the image exposes, published on a free port.
    pub publish_all: bool,
    /// `-v`, parsed.
    pub volumes: Vec<VolumeSpec>,
    /// The flags every start reads again, as typed.
    pub flags: StartFlags,
}
// ANCHOR_END: config

/// What the command line asks for: [`RunConfig`] for `run`, the parsed
/// arguments of the other commands as they are.
#[derive(Debug)]
pub enum Action {
    /// `minibox run`.
    Run(Box<RunConfig>),
    /// `minibox create`: `run`'s config, not started.
    Create(Box<RunConfig>),
    /// The container's init, in the container (`run --init`).
    Init(InitArgs),
    /// Every other command of this chapter.
    Command(Command),
    /// Chapter 9's `network prune` and chapter 7's commands.
    Earlier(ch09::Action),
}

impl Command {
    /// Turns the parsed command line into an [`Action`], checking `run`'s
    /// values on the way (bad input is minibox's error: 125, before anything
    /// is created).
    pub fn into_action(self) -> Result<Action> {
        match self {
            Command::Create(args) => match Command::Run(args).into_action()? {
                Action::Run(config) => Ok(Action::Create(config)),
                _ => unreachable!("a run is a run"),
            },
            Command::Run(args) => Ok(Action::Run(Box::new(run_config(*args)?))),
            Command::Init(args) => Ok(Action::Init(args)),
            Command::Network(network) => ch09::Command::Network(network)
                .into_action()
                .map(Action::Earlier),
            Command::Other(other) => ch09::Command::Other(other)
                .into_action()
                .map(Action::Earlier),
            command => Ok(Action::Command(command)),
        }
    }
}

/// `run`'s (and `create`'s) flags, checked as Docker's client checks them
/// (bad input is minibox's error: 125, before anything is created).
fn run_config(args: RunArgs) -> Result<RunConfig> {
    let RunArgs {
        runtime,
        network,
        command,
        options,
        image_and_command,
    } = args;
    let restart: Policy = runtime.restart.parse()?;
    if runtime.rm && restart != Policy::No {
        anyhow::bail!("conflicting options: cannot specify both --restart and --rm");
    }
    if options.resources.stats {
        anyhow::bail!(
            "--stats is chapter 5's: from chapter 10 on, `minibox inspect` shows how a container ended"
        );
    }
    let flags = StartFlags {
        network: network.network.clone(),
        publish: network.publish.clone(),
        dns: network.dns.clone(),
        dns_search: network.dns_search.clone(),
        dns_option: network.dns_option.clone(),
        add_host: network.add_host.clone(),
        memory: options.resources.memory,
        pids_limit: options.resources.pids_limit,
        cpus: options.resources.cpus,
        cpu_shares: options.resources.cpu_shares,
        cgroup_parent: options.resources.cgroup_parent.clone(),
        tmpfs: runtime.tmpfs.clone(),
        extra: Vec::new(), // a later chapter's flags
    };
    flags.tmpfs()?; // checked now: every start reads them again
    let network = network.into_config()?;
    let image = image_and_command.words[0].to_string_lossy().into_owned();
    let run = ch08::Config::new(command, options.into_ch07(), image_and_command.words)?;
    if let Some(name) = &runtime.name {
        crate::names::validate(name)?;
    }
    Ok(RunConfig {
        container: ch09::Config { run, network },
        image,
        detach: runtime.detach,
        name: runtime.name,
        auto_remove: runtime.rm,
        interactive: runtime.interactive,
        tty: runtime.tty,
        init: runtime.init,
        restart,
        publish_all: runtime.publish_all,
        detach_keys: runtime.detach_keys,
        flags,
        volumes: runtime
            .volume
            .iter()
            .map(|v| volumes::parse_volume(v))
            .collect::<Result<_>>()?,
    })
}

/// `minibox completion SHELL`: the shell's completion script, written from
/// the same definitions as `--help`.
pub fn completion(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cli = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, "minibox", &mut script);
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Action> {
        use clap::Parser;
        Cli::try_parse_from(["minibox"].iter().chain(args))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .command
            .into_action()
    }

    fn run(args: &[&str]) -> RunConfig {
        match parse(args).unwrap() {
            Action::Run(config) => *config,
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn run_takes_dockers_runtime_flags_before_the_image() {
        let config = run(&[
            "run", "-d", "--name", "web", "--rm", "busybox", "sleep", "-d",
        ]);
        assert!(config.detach && config.auto_remove && !config.interactive);
        assert_eq!(config.name.as_deref(), Some("web"));
        assert_eq!(config.container.run.arguments, ["sleep", "-d"]);
        let config = run(&["run", "-i", "-p", "8080:80", "busybox"]);
        assert!(config.interactive && !config.detach);
        assert_eq!(config.container.network.publish.len(), 1);
    }

    #[test]
    fn bad_tmpfs_and_restart_values_are_refused_before_anything_exists() {
        let error = parse(&["run", "--tmpfs", "relative", "busybox"]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("invalid mount config for type \"tmpfs\""),
            "{error}"
        );
        let error = parse(&["run", "--tmpfs", "/t:bogus", "busybox"]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid tmpfs option \"bogus\""),
            "{error}"
        );
        let error = parse(&["run", "--restart", "always:2", "busybox"]).unwrap_err();
        assert!(
            error.to_string().contains("only be used with 'on-failure'"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_name_is_refused_with_dockers_message() {
        let error = parse(&["run", "--name", "_bad", "busybox"]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("Invalid container name (_bad)"),
            "{error}"
        );
    }

    #[test]
    fn the_other_commands_parse_as_docker_spells_them() {
        for args in [
            &["ps", "-a", "-q", "--filter", "status=exited"][..],
            &["logs", "-f", "--tail", "5", "-t", "web"],
            &["stop", "-t", "3", "web", "db"],
            &["kill", "-s", "HUP", "web"],
            &["rm", "-f", "web"],
            &["exec", "-e", "A=1", "web", "ls", "-l"],
            &["wait", "web"],
            &["inspect", "web"],
            &["container", "prune", "-f"],
        ] {
            assert!(
                matches!(parse(args).unwrap(), Action::Command(_)),
                "{args:?}"
            );
        }
        assert!(matches!(
            parse(&["network", "prune"]).unwrap(),
            Action::Earlier(_)
        ));
        assert!(matches!(parse(&["images"]).unwrap(), Action::Earlier(_)));
    }
}
