//! The command line of chapter 1, and the turn from clap's types into a plain
//! [`Config`] that the rest of the chapter uses.
//!
//! Every chapter's command is called `minibox`, so help texts and transcripts only
//! differ where the program really changed.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};

use crate::exit::{self, Exit, MINIBOX_FAILED};

// The `minibox` command line of every chapter: the chapter's subcommands `C`
// under one name, so help texts and transcripts only differ where the program
// really changed. No `///` comment on purpose: clap would print it as the
// help's first line. Each chapter's `Command` enum says what its `minibox` is,
// with `#[command(about = ...)]`.
#[allow(missing_docs)]
#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    bin_name = "minibox",
    version,
    arg_required_else_help = true
)]
pub struct Minibox<C: Subcommand> {
    /// What to do.
    #[command(subcommand)]
    pub command: C,
}

/// Chapter 1's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 1.
#[derive(Debug, Subcommand)]
#[command(about = "minibox, chapter 1: run a command as a child process (fork, exec, wait)")]
pub enum Command {
    /// Run a command in a child process and exit with its exit status
    Run(RunArgs),
}

/// `minibox run [OPTIONS] [--] COMMAND [ARGS...]`
#[derive(Debug, Args)]
#[command(mut_arg("quiet", |arg| arg.help("Do not narrate fork, exec and wait on stderr")))]
pub struct RunArgs {
    /// `-q` and the command.
    #[command(flatten)]
    pub command: CommandArgs,
}

/// The end of every chapter's `minibox run`: `-q` and the command to run, then
/// its arguments. Later chapters flatten it into their own `run` options
/// (`#[command(flatten)]`) and say in `mut_arg` what `-q` keeps quiet about.
#[derive(Debug, Args)]
pub struct CommandArgs {
    /// Do not narrate the steps on stderr
    #[arg(short, long)]
    pub quiet: bool,

    /// The command to run, then its arguments (options after COMMAND belong to it)
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// What `minibox run` was asked to do, free of clap's types.
#[derive(Debug, Clone)]
pub struct Config {
    /// The program to run (`command[0]`, looked up on `$PATH`) and its arguments.
    pub command: Vec<OsString>,
    /// Whether to keep quiet about fork, exec and wait.
    pub quiet: bool,
}

impl Command {
    /// Turns the parsed command line into the chapter's [`Config`].
    pub fn into_config(self) -> Config {
        let Command::Run(args) = self;
        Config {
            command: args.command.command,
            quiet: args.command.quiet,
        }
    }
}

/// Every chapter's `main`: parses the command line, gives the chapter's
/// subcommand to `run` (which resolves it into a plain config and runs it),
/// and exits through [`exit::finish`], the one way out. Help and usage errors
/// end before `run`, with their own status (see [`parse`]).
pub fn main<C: Subcommand>(run: impl FnOnce(C) -> anyhow::Result<Exit>) -> ExitCode {
    match parse::<Minibox<C>>() {
        Ok(cli) => exit::finish(run(cli.command)),
        Err(status) => status,
    }
}

// ANCHOR: parse
/// Parses the command line of any chapter, or says why not and with which exit
/// status to end. Help and version go to stdout with status 0; a usage error
/// becomes one line on stderr and status 125 (clap would exit 2 and print a
/// page, but 2 could be the container's own status).
pub fn parse<T: Parser>() -> Result<T, ExitCode> {
    let err = match T::try_parse() {
        Ok(parsed) => return Ok(parsed),
        Err(err) => err,
    };
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Help asked for, or `minibox` alone: print it and succeed, like `docker`.
            let _ = err.print();
            Err(ExitCode::SUCCESS)
        }
        _ => {
            crate::narrate::notice(format_args!("{} (see 'minibox --help')", one_line(&err)));
            Err(ExitCode::from(MINIBOX_FAILED))
        }
    }
}
// ANCHOR_END: parse

/// Clap's message without its `error:` prefix, its usage block and its tips,
/// folded onto one line.
fn one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let message = rendered.split("\n\n").next().unwrap_or_default();
    let folded: Vec<&str> = message.lines().map(str::trim).collect();
    folded
        .join(" ")
        .trim_start_matches("error: ")
        .trim()
        .to_string()
}
