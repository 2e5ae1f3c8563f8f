//! The command line of chapter 2. The options are chapter 1's; only the
//! description changed, because `run` now starts the command in a new PID
//! namespace.

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};

pub use ch01_fork_exec::cli::Config;

/// minibox, chapter 2: run a command as PID 1 of a new PID namespace
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

/// The subcommands of chapter 2.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command as PID 1 of a new PID namespace and exit with its exit status
    Run(RunArgs),
}

/// `minibox run [OPTIONS] [--] COMMAND [ARGS...]`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Do not narrate clone, exec and wait on stderr
    #[arg(short, long)]
    pub quiet: bool,

    /// The command to run, then its arguments (options after COMMAND belong to it)
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl Cli {
    /// Turns the parsed command line into the [`Config`] of chapter 1, which is
    /// all this chapter needs.
    pub fn into_config(self) -> Config {
        match self.command {
            Command::Run(args) => Config {
                command: args.command,
                quiet: args.quiet,
            },
        }
    }
}
