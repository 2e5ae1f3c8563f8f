//! The command line of chapter 13: chapter 12's, whole. Rootless is not a
//! flag: minibox is rootless when an ordinary user runs it.
//!
//! One thing is checked here, where clap still knows it: whether `--network`
//! was given or left at its default, because a rootless container's default
//! network is a user-mode stack, while a bridge asked for by name needs root
//! ([`Command::network_given`]).

use ch01_fork_exec::cli::Minibox;
use ch12_security::cli as ch12;
use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches, Subcommand};

/// Chapter 13's command line.
pub type Cli = Minibox<Command>;

// ANCHOR: command
/// Chapter 13's subcommands: chapter 12's (this chapter adds none of its
/// own; its first exercise does).
#[derive(Debug)]
pub enum Command {
    /// A command of chapter 12's.
    Earlier {
        /// The command, as chapter 12 parses it.
        command: ch12::Command,
        /// `run` or `create` had `--network` on the command line (not its
        /// default).
        network_given: bool,
    },
}

impl Subcommand for Command {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        ch12::Command::augment_subcommands(command).about(
            "minibox, chapter 13: Docker's containers, daemonless, hardened, with or without root",
        )
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
        let network_given = match matches.subcommand() {
            Some(("run" | "create", sub)) => {
                sub.value_source("network") == Some(ValueSource::CommandLine)
            }
            _ => false,
        };
        Ok(Command::Earlier {
            command: ch12::Command::from_arg_matches(matches)?,
            network_given,
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
}
