//! The command line of chapter 2. The options are chapter 1's; only the
//! descriptions changed, because `run` now starts the command in a new PID
//! namespace.

use ch01_fork_exec::cli as ch01;
use clap::{Args, Subcommand};

pub use ch01_fork_exec::cli::{CommandArgs, Config, Minibox};

/// Chapter 2's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 2.
#[derive(Debug, Subcommand)]
#[command(about = "minibox, chapter 2: run a command as PID 1 of a new PID namespace")]
pub enum Command {
    /// Run a command as PID 1 of a new PID namespace and exit with its exit status
    Run(RunArgs),
}

/// `minibox run [OPTIONS] [--] COMMAND [ARGS...]`
#[derive(Debug, Args)]
#[command(mut_arg("quiet", |arg| arg.help("Do not narrate clone, exec and wait on stderr")))]
pub struct RunArgs {
    /// `-q` and the command, as in chapter 1.
    #[command(flatten)]
    pub command: CommandArgs,
}

impl Command {
    /// Turns the parsed command line into the [`Config`] of chapter 1, which is
    /// all this chapter needs: the options are chapter 1's.
    pub fn into_config(self) -> Config {
        let Command::Run(args) = self;
        let run = ch01::RunArgs {
            command: args.command,
        };
        ch01::Command::Run(run).into_config()
    }
}
