//! The command line of chapter 4: chapter 3's, plus `--rootfs` and `--chroot`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::rootfs;

/// minibox, chapter 4: run a command in its own root filesystem
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

/// The subcommands of chapter 4.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in new namespaces with DIR as its root filesystem
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

    /// Enter the root filesystem with chroot(2) instead of pivot_root(2). Insecure:
    /// for the demonstration of why runtimes do not
    #[arg(long)]
    pub chroot: bool,

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

/// How the child enters its root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// `pivot_root(2)`, then unmount the old root: the host's tree is gone.
    PivotRoot,
    /// `chroot(2)`: only path lookups change; the host's tree is still mounted.
    Chroot,
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

impl Cli {
    /// Turns the parsed command line into the chapter's [`Config`], checking the
    /// root filesystem on the way (a bad one is minibox's error: 125).
    pub fn into_config(self) -> Result<Config> {
        let Command::Run(args) = self.command;
        Ok(Config {
            rootfs: rootfs::resolve(args.rootfs)?,
            command: args.command,
            quiet: args.quiet,
            hostname: args.hostname,
            isolation: if args.chroot {
                Isolation::Chroot
            } else {
                Isolation::PivotRoot
            },
        })
    }
}
