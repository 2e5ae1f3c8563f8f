//! The command line of chapter 13: chapter 12's, with one flag more on
//! `run` and `create`, `--userns` ([`UsernsArgs`]). Rootless is not a
//! flag: minibox is rootless when an ordinary user runs it.
//!
//! One thing is checked here, where clap still knows it: whether `--network`
//! was given or left at its default, because a rootless container's default
//! network is a user-mode stack, while a bridge asked for by name needs root
//! ([`Command::network_given`]).

use ch01_fork_exec::cli::Minibox;
use ch12_security::cli as ch12;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches, Subcommand};

/// Chapter 13's command line.
pub type Cli = Minibox<Command>;

// ANCHOR: userns_args
/// The flag this chapter adds to `run` and `create`.
#[derive(Debug, Clone, Default, Args, PartialEq)]
pub struct UsernsArgs {
    /// User namespace to use: host (the default), or auto (as root: a namespace of the container's own, its root an unprivileged range of 65536 host IDs)
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
}
// ANCHOR_END: userns_args

/// The subcommands that take [`UsernsArgs`].
const REMAPPED: [&str; 2] = ["run", "create"];

// ANCHOR: command
/// Chapter 13's subcommands: chapter 12's, with `--userns` on `run` and
/// `create` (this chapter adds no command of its own; its first exercise
/// does).
#[derive(Debug)]
pub enum Command {
    /// A command of chapter 12's.
    Earlier {
        /// The command, as chapter 12 parses it.
        command: ch12::Command,
        /// `run` or `create` had `--network` on the command line (not its
        /// default).
        network_given: bool,
        /// `run`'s and `create`'s `--userns` (empty otherwise).
        userns: UsernsArgs,
    },
}

impl Subcommand for Command {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        let mut command = ch12::Command::augment_subcommands(command).about(
            "minibox, chapter 13: Docker's containers, daemonless, hardened, with or without root",
        );
        // clap's derive would make UsernsArgs' doc comment the about of the
        // command it joins: `run` and `create` keep their own.
        for name in REMAPPED {
            command = command.mut_subcommand(name, |sub| {
                let about = sub.get_about().cloned().unwrap_or_default();
                UsernsArgs::augment_args(sub).about(about)
            });
        }
        command
    }
    fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
        Self::augment_subcommands(command)
    }
    fn has_subcommand(name: &str) -> bool {
        ch12::Command::has_subcommand(name)
    }
}

impl FromArgMatches for Command {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let (network_given, userns) = match matches.subcommand() {
            Some((name, sub)) if REMAPPED.contains(&name) => (
                sub.value_source("network") == Some(ValueSource::CommandLine),
                UsernsArgs::from_arg_matches(sub)?,
            ),
            _ => (false, UsernsArgs::default()),
        };
        Ok(Command::Earlier {
            command: ch12::Command::from_arg_matches(matches)?,
            network_given,
            userns,
        })
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}
// ANCHOR_END: command

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("minibox").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn a_network_named_is_told_from_the_default() {
        let given = |args: &[&str]| match parse(args).command {
            Command::Earlier { network_given, .. } => network_given,
        };
        assert!(!given(&["run", "busybox"]));
        assert!(given(&["run", "--network", "bridge", "busybox"]));
        assert!(given(&["create", "--network=none", "busybox"]));
        assert!(!given(&["ps", "-a"]));
    }

    #[test]
    fn run_and_create_take_userns_in_both_spellings() {
        let userns = |args: &[&str]| match parse(args).command {
            Command::Earlier { userns, .. } => userns.userns,
        };
        assert_eq!(userns(&["run", "busybox"]), None);
        assert_eq!(
            userns(&["run", "--userns", "auto", "busybox"]).unwrap(),
            "auto"
        );
        assert_eq!(
            userns(&["create", "--userns=host", "busybox"]).unwrap(),
            "host"
        );
        let ps = Cli::try_parse_from(["minibox", "ps", "--userns", "auto"]);
        assert!(ps.is_err(), "only run and create take it");
    }
}
