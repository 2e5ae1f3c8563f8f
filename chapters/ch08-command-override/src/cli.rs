//! The command line of chapter 8: `run [OPTIONS] IMAGE [COMMAND] [ARG...]`,
//! the command now optional (the image has one), with Docker's
//! `--entrypoint`, `-e/--env`, `--env-file`, `-w/--workdir` and `-u/--user`.
//! `pull`, `images`, `login`, `logout` and `diff` are chapter 7's, handed to it
//! unchanged.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use ch01_fork_exec::cli::Minibox;
use ch07_image_pull::cli::{self as ch07, OtherCommand};
use clap::{Args, Subcommand};

use crate::env;

/// Chapter 8's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 8 (all but `run` are chapter 7's).
#[derive(Debug, Subcommand)]
#[command(about = "minibox, chapter 8: run an image's own startup command, or override it")]
pub enum Command {
    /// Run a container from an image: its own command, or the one given
    Run(Box<RunArgs>),
    /// Chapter 7's: pull, images, login, logout, diff.
    #[command(flatten)]
    Other(OtherCommand),
}

// ANCHOR: run_args
/// `minibox run [OPTIONS] IMAGE [COMMAND] [ARG...]`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// This chapter's: what the container runs, as whom, where, with which
    /// variables.
    #[command(flatten)]
    pub command: CommandArgs,

    /// Chapter 7's options: the pull, the snapshot, the resources.
    #[command(flatten)]
    pub options: ch07::RunOptions,

    /// `--help`, then IMAGE and the command.
    #[command(flatten)]
    pub image_and_command: ImageAndCommand,
}

/// The end of `run`'s command line, from this chapter on: `--help`, then the
/// image and, optionally, the command that replaces the image's.
#[derive(Debug, Args)]
pub struct ImageAndCommand {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// The image (e.g. busybox, hello-world, localhost:5000/team/app:v1), then
    /// optionally a command to run instead of the image's and its arguments
    /// (options after IMAGE belong to the command)
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        value_names = ["IMAGE", "COMMAND"]
    )]
    pub words: Vec<OsString>,
}

/// The flags that override what the image says to run: Docker's
/// `--entrypoint`, `-e`, `--env-file`, `-w` and `-u`.
#[derive(Debug, Args)]
pub struct CommandArgs {
    /// Overwrite the image's default ENTRYPOINT (and drop its CMD)
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,

    /// Set an environment variable (KEY alone: the value from minibox's environment)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Read environment variables from a file (KEY=VALUE lines, # comments)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Working directory inside the container (created if missing)
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// User to run as: name or UID, optionally :group (name or GID), from the image's files
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
}
// ANCHOR_END: run_args

// ANCHOR: config
/// What `minibox run` was asked to do: chapter 7's run, plus this chapter's
/// overrides of what the image says.
#[derive(Debug, Clone)]
pub struct Config {
    /// Chapter 7's: the image, the pull policy, the limits, minibox's
    /// directory...
    pub options: ch07::Options,
    /// The words after IMAGE, possibly none: the *arguments*, which
    /// [`crate::command::effective`] combines with the image's entrypoint.
    pub arguments: Vec<OsString>,
    /// `--entrypoint`, if given (`Some("")` clears the image's).
    pub entrypoint: Option<String>,
    /// The `--env-file` entries, then the `-e` ones, as Docker's client
    /// resolves them: `KEY=VALUE`, or `KEY` alone to unset.
    pub env: Vec<String>,
    /// `-w`, if given: absolute.
    pub workdir: Option<String>,
    /// `-u`, if given.
    pub user: Option<String>,
}
// ANCHOR_END: config

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// `minibox run` (boxed: it is much larger than the others).
    Run(Box<Config>),
    /// Anything else: chapter 7's.
    Other(ch07::Action),
}

impl Command {
    /// Turns the parsed command line into an [`Action`], checking values on the
    /// way (bad input is minibox's error: 125, before anything is created).
    pub fn into_action(self) -> Result<Action> {
        match self {
            Command::Run(args) => Ok(Action::Run(Box::new(run_config(*args)?))),
            Command::Other(other) => Ok(Action::Other(other.into_action())),
        }
    }
}

fn run_config(args: RunArgs) -> Result<Config> {
    Config::new(args.command, args.options, args.image_and_command.words)
}

impl Config {
    /// Resolves the command line's overrides, chapter 7's options and the
    /// words from IMAGE on into a [`Config`] (bad input fails here, before
    /// anything is created). Later chapters call it with their own flags
    /// beside.
    pub fn new(
        command: CommandArgs,
        options: ch07::RunOptions,
        image_and_command: Vec<OsString>,
    ) -> Result<Config> {
        if let Some(dir) = &command.workdir
            && !dir.starts_with('/')
        {
            bail!("the working directory '{dir}' is invalid, it needs to be an absolute path");
        }
        // Docker's client reads the files first, then the flags: a flag wins.
        let lookup = |name: &str| std::env::var(name).ok();
        let mut environment = Vec::new();
        for file in &command.env_file {
            environment.extend(env::read_env_file(file, lookup)?);
        }
        for flag in &command.env {
            environment.push(env::from_flag(flag, lookup)?);
        }
        let mut words = image_and_command.into_iter();
        let image = words.next().expect("clap requires IMAGE");
        Ok(Config {
            options: options.into_options(&image)?,
            arguments: words.collect(),
            entrypoint: command.entrypoint,
            env: environment,
            workdir: command.workdir,
            user: command.user,
        })
    }
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

    fn run(args: &[&str]) -> Config {
        match parse(args).unwrap() {
            Action::Run(config) => *config,
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn the_command_is_optional_and_flags_after_the_image_are_its() {
        let config = run(&["run", "busybox"]);
        assert!(config.arguments.is_empty());
        let config = run(&["run", "-u", "1000", "busybox", "ls", "-l", "-u"]);
        assert_eq!(config.arguments, ["ls", "-l", "-u"]);
        assert_eq!(config.user.as_deref(), Some("1000"));
        assert!(parse(&["run"]).is_err());
    }

    #[test]
    fn env_flags_are_resolved_and_workdirs_must_be_absolute() {
        let config = run(&["run", "-e", "A=1", "--env", "B=2", "busybox"]);
        assert_eq!(config.env, ["A=1", "B=2"]);
        let error = parse(&["run", "-w", "tmp", "busybox"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the working directory 'tmp' is invalid, it needs to be an absolute path"
        );
        assert_eq!(
            parse(&["run", "-e", "=x", "busybox"])
                .unwrap_err()
                .to_string(),
            "invalid environment variable: =x"
        );
    }

    #[test]
    fn other_commands_are_chapter_sevens() {
        assert!(matches!(
            parse(&["images", "-q"]).unwrap(),
            Action::Other(ch07::Action::Images { quiet: true, .. })
        ));
        assert!(matches!(
            parse(&["logout"]).unwrap(),
            Action::Other(ch07::Action::Logout { .. })
        ));
    }
}
