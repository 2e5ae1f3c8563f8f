//! The command line of chapter 3: chapter 2's, plus `--hostname`.

use std::ffi::OsString;

use ch01_fork_exec::cli::{CommandArgs, Minibox};
use clap::{Args, Subcommand};

/// Chapter 3's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 3.
#[derive(Debug, Subcommand)]
#[command(about = "minibox, chapter 3: run a command with its own PID numbers, hostname and IPC")]
pub enum Command {
    /// Run a command in new PID, UTS and IPC namespaces and exit with its exit status
    Run(RunArgs),
}

/// `--hostname`, as `docker run` spells it. Later chapters take it as it is
/// (`#[command(flatten)]`).
#[derive(Debug, Args)]
pub struct HostnameArgs {
    /// Container host name (default: the first 12 digits of the container ID)
    #[arg(long, short = 'h', value_name = "NAME")]
    pub hostname: Option<String>,
}

/// `minibox run [OPTIONS] [--] COMMAND [ARGS...]`
///
/// `-h` means `--hostname` here, as in `docker run`, so help is `--help` only.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    mut_arg("quiet", |arg| arg.help("Do not narrate clone, setup, exec and wait on stderr"))
)]
pub struct RunArgs {
    /// `--hostname`.
    #[command(flatten)]
    pub hostname: HostnameArgs,

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
    /// The program and its arguments.
    pub command: Vec<OsString>,
    /// Whether to keep quiet.
    pub quiet: bool,
    /// The hostname inside, if given; otherwise the short container ID.
    pub hostname: Option<String>,
}

impl Command {
    /// Turns the parsed command line into the chapter's [`Config`].
    pub fn into_config(self) -> Config {
        let Command::Run(args) = self;
        Config {
            command: args.command.command,
            quiet: args.command.quiet,
            hostname: args.hostname.hostname,
        }
    }
}
