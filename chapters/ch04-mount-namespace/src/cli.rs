//! The command line of chapter 4: chapter 3's, plus `--rootfs` and `--chroot`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use ch01_fork_exec::cli::{CommandArgs, Minibox};
use ch03_uts_namespace::cli::HostnameArgs;
use clap::{Args, Subcommand};

use crate::mount::Isolation;
use crate::rootfs;

/// Chapter 4's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 4.
#[derive(Debug, Subcommand)]
#[command(about = "minibox, chapter 4: run a command in its own root filesystem")]
pub enum Command {
    /// Run a command in new namespaces with DIR as its root filesystem
    Run(RunArgs),
}

/// `--rootfs`. Chapter 5 takes it as it is (`#[command(flatten)]`).
#[derive(Debug, Args)]
pub struct RootfsArgs {
    /// The directory to use as the root filesystem (default: the busybox root
    /// that `cargo xtask fixtures` builds)
    #[arg(
        long,
        value_name = "DIR",
        env = "MINIBOX_ROOTFS",
        hide_env_values = true
    )]
    pub rootfs: Option<PathBuf>,
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

    /// `--rootfs`.
    #[command(flatten)]
    pub rootfs: RootfsArgs,

    /// Enter the root filesystem with chroot(2) instead of pivot_root(2). Insecure:
    /// for the demonstration of why runtimes do not
    #[arg(long)]
    pub chroot: bool,

    /// `-q` and the command, as in chapter 1.
    #[command(flatten)]
    pub command: CommandArgs,

    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
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
    /// pivot_root or chroot.
    pub isolation: Isolation,
}

impl Command {
    /// Turns the parsed command line into the chapter's [`Config`], checking the
    /// root filesystem on the way (a bad one is minibox's error: 125).
    pub fn into_config(self) -> Result<Config> {
        let Command::Run(args) = self;
        Ok(Config {
            rootfs: rootfs::resolve(args.rootfs.rootfs)?,
            command: args.command.command,
            quiet: args.command.quiet,
            hostname: args.hostname.hostname,
            isolation: if args.chroot {
                Isolation::Chroot
            } else {
                Isolation::PivotRoot
            },
        })
    }
}
