//! The command line of chapter 5: chapter 4's (without the `--chroot`
//! demonstration), plus Docker's resource flags, `--cgroup-parent` and `--stats`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ch04_mount_namespace::rootfs;
use clap::{Args, Parser, Subcommand};

use crate::cgroup::DEFAULT_PARENT;
use crate::limits::{Limits, parse_cpus, parse_size};

/// minibox, chapter 5: run a command in its own root filesystem, with resource limits
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

/// The subcommands of chapter 5.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in new namespaces and its own cgroup, with resource limits
    Run(RunArgs),
}

/// `minibox run [OPTIONS] [--] COMMAND [ARGS...]`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Container host name (default: the first 12 digits of the container ID)
    #[arg(long, short = 'h', value_name = "NAME")]
    pub hostname: Option<String>,

    /// The directory to use as the root filesystem (default: the busybox root
    /// that `cargo xtask fixtures` builds)
    #[arg(
        long,
        value_name = "DIR",
        env = "MINIBOX_ROOTFS",
        hide_env_values = true
    )]
    pub rootfs: Option<PathBuf>,

    /// Docker's resource flags.
    #[command(flatten)]
    pub resources: ResourceArgs,

    /// Do not narrate clone, setup, exec and wait on stderr
    #[arg(short, long)]
    pub quiet: bool,

    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// The command to run, then its arguments (options after COMMAND belong to it)
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
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
    /// The limits, checked with Docker's rules (see [`Limits::new`]).
    pub fn limits(&self) -> Result<Limits> {
        Limits::new(
            self.memory,
            self.pids_limit,
            self.cpus,
            self.cpu_shares,
            usable_cpus()?,
        )
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
    /// The checked limits.
    pub limits: Limits,
    /// Where the container's cgroup goes.
    pub cgroup_parent: String,
    /// Whether to print peak memory and CPU time at the end.
    pub stats: bool,
}

impl Cli {
    /// Turns the parsed command line into the chapter's [`Config`], checking the
    /// root filesystem and the limits on the way (bad input is minibox's error:
    /// 125, before anything is created).
    pub fn into_config(self) -> Result<Config> {
        let Command::Run(args) = self.command;
        let limits = args.resources.limits()?;
        Ok(Config {
            rootfs: rootfs::resolve(args.rootfs)?,
            command: args.command,
            quiet: args.quiet,
            hostname: args.hostname,
            limits,
            cgroup_parent: args.resources.cgroup_parent,
            stats: args.resources.stats,
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
