//! The command line of chapter 5: chapter 4's (without the `--chroot`
//! demonstration), plus Docker's resource flags, `--cgroup-parent` and `--stats`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ch01_fork_exec::cli::{CommandArgs, Minibox};
use ch03_uts_namespace::cli::HostnameArgs;
use ch04_mount_namespace::cli::RootfsArgs;
use ch04_mount_namespace::rootfs;
use clap::{Args, Subcommand};

use crate::cgroup::{DEFAULT_PARENT, Resources};
use crate::limits::{Limits, Requested, parse_cpus, parse_size};

/// Chapter 5's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 5.
#[derive(Debug, Subcommand)]
#[command(
    about = "minibox, chapter 5: run a command in its own root filesystem, with resource limits"
)]
pub enum Command {
    /// Run a command in new namespaces and its own cgroup, with resource limits
    Run(RunArgs),
}

/// `minibox run [OPTIONS] [--] COMMAND [ARGS...]`
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    mut_arg("quiet", |arg| arg.help("Do not narrate clone, setup, exec and wait on stderr"))
)]
pub struct RunArgs {
    /// `--hostname`, as in chapter 3.
    #[command(flatten)]
    pub hostname: HostnameArgs,

    /// `--rootfs`, as in chapter 4.
    #[command(flatten)]
    pub rootfs: RootfsArgs,

    /// Docker's resource flags.
    #[command(flatten)]
    pub resources: ResourceArgs,

    /// `-q` and the command, as in chapter 1.
    #[command(flatten)]
    pub command: CommandArgs,

    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// Docker's resource flags, as `docker run` spells them. Later chapters take
/// them as they are (`#[command(flatten)]`).
#[derive(Debug, Args)]
pub struct ResourceArgs {
    /// Memory limit (e.g. 32m, 1g; at least 6m)
    #[arg(long, short = 'm', value_name = "BYTES", value_parser = parse_size)]
    pub memory: Option<u64>,

    /// Maximum number of processes (0 or -1: unlimited)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,

    /// Number of CPUs (e.g. 0.5: half of one CPU's time)
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    pub cpus: Option<f64>,

    /// CPU shares (relative weight; default 1024)
    #[arg(long, short = 'c', value_name = "N")]
    pub cpu_shares: Option<u64>,

    /// Parent cgroup: absolute from the hierarchy's root, or relative to minibox's
    /// own cgroup
    #[arg(long, value_name = "PATH", env = "MINIBOX_CGROUP_PARENT", hide_env_values = true, default_value = DEFAULT_PARENT)]
    pub cgroup_parent: String,

    /// Print the container's peak memory and CPU time when it ends
    #[arg(long)]
    pub stats: bool,
}

impl ResourceArgs {
    /// The checked [`Resources`] (bad values are minibox's error: 125, before
    /// anything is created).
    pub fn into_resources(self) -> Result<Resources> {
        Ok(Resources {
            limits: self.limits()?,
            parent: self.cgroup_parent,
            show_stats: self.stats,
        })
    }

    /// The limits, checked with Docker's rules (see [`Limits::new`]).
    pub fn limits(&self) -> Result<Limits> {
        let requested = Requested {
            memory: self.memory,
            pids: self.pids_limit,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
        };
        Limits::new(requested, usable_cpus()?)
    }
}

/// What `minibox run` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The program and its arguments, looked up inside the root filesystem.
    pub command: Vec<OsString>,
    /// Whether to keep quiet.
    pub quiet: bool,
    /// The hostname inside, if given; otherwise the short container ID.
    pub hostname: Option<String>,
    /// The root filesystem: absolute, existing, a directory.
    pub rootfs: PathBuf,
    /// The checked resource flags.
    pub resources: Resources,
}

impl Command {
    /// Turns the parsed command line into the chapter's [`Config`], checking the
    /// root filesystem and the limits on the way (bad input is minibox's error:
    /// 125, before anything is created).
    pub fn into_config(self) -> Result<Config> {
        let Command::Run(args) = self;
        let resources = args.resources.into_resources()?;
        Ok(Config {
            rootfs: rootfs::resolve(args.rootfs.rootfs)?,
            command: args.command.command,
            quiet: args.command.quiet,
            hostname: args.hostname.hostname,
            resources,
        })
    }
}

/// How many CPUs this process may run on, which is what Docker checks `--cpus`
/// against.
pub fn usable_cpus() -> Result<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .context("sched_getaffinity")?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .count())
}
