//! The command line of chapter 3: chapter 2's, plus `--hostname`.

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};

/// minibox, chapter 3: run a command with its own PID numbers, hostname and IPC
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

/// The subcommands of chapter 3.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in new PID, UTS and IPC namespaces and exit with its exit status
    Run(RunArgs),
}

/// `minibox run [OPTIONS] [--] COMMAND [ARGS...]`
///
/// `-h` means `--hostname` here, as in `docker run`, so help is `--help` only.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Container host name (default: the first 12 digits of the container ID)
    #[arg(long, short = 'h', value_name = "NAME")]
    pub hostname: Option<String>,

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

impl Cli {
    /// Turns the parsed command line into the chapter's [`Config`].
    pub fn into_config(self) -> Config {
        match self.command {
            Command::Run(args) => Config {
                command: args.command,
                quiet: args.quiet,
                hostname: args.hostname,
            },
        }
    }
}
