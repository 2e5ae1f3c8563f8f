//! The command line of chapter 12: chapter 11's, with Docker's security
//! flags added to `run` and `create`: `--cap-add`, `--cap-drop`,
//! `--privileged`, `--read-only`, `--security-opt`, `--ulimit`.
//!
//! Chapter 11's commands are taken whole; the flags are added to its `run`
//! and `create` with clap's builder ([`Command`] wraps chapter 11's), so no
//! command is written twice.

use anyhow::Result;
use ch01_fork_exec::cli::Minibox;
use ch11_build::cli as ch11;
use clap::{ArgMatches, Args, FromArgMatches, Subcommand};

/// Chapter 12's command line.
pub type Cli = Minibox<Command>;

// ANCHOR: security_args
/// The flags this chapter adds to `run` and `create`.
#[derive(Debug, Clone, Default, Args, PartialEq)]
pub struct SecurityArgs {
    /// Add Linux capabilities (ALL for every one)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities (ALL for every one)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container: every capability, no seccomp, every device, no masked paths
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Security options: no-new-privileges, seccomp=unconfined|PROFILE.json, apparmor=, label=
    #[arg(long = "security-opt", value_name = "OPTION")]
    pub security_opt: Vec<String>,
    /// Ulimit options: TYPE=SOFT[:HARD] (nofile, nproc, core, ...)
    #[arg(long, value_name = "ULIMIT")]
    pub ulimit: Vec<String>,
}
// ANCHOR_END: security_args

impl SecurityArgs {
    /// The flags as words, the way a container's record keeps them (chapter
    /// 10's `StartFlags::extra`), read again by [`SecurityArgs::from_words`].
    pub fn to_words(&self) -> Vec<String> {
        let mut words = Vec::new();
        let mut each = |flag: &str, values: &[String]| {
            words.extend(values.iter().map(|value| format!("--{flag}={value}")));
        };
        each("cap-add", &self.cap_add);
        each("cap-drop", &self.cap_drop);
        each("security-opt", &self.security_opt);
        each("ulimit", &self.ulimit);
        if self.privileged {
            words.push("--privileged".into());
        }
        if self.read_only {
            words.push("--read-only".into());
        }
        words
    }

    /// Reads [`SecurityArgs::to_words`]'s words again.
    pub fn from_words(words: &[String]) -> Result<SecurityArgs> {
        #[derive(clap::Parser)]
        struct Words {
            #[command(flatten)]
            security: SecurityArgs,
        }
        let argv = std::iter::once("security").chain(words.iter().map(String::as_str));
        let parsed = <Words as clap::Parser>::try_parse_from(argv)?;
        Ok(parsed.security)
    }
}

// ANCHOR: command
/// Chapter 11's subcommands, with [`SecurityArgs`] on `run` and `create`.
#[derive(Debug)]
pub struct Command {
    /// The command, as chapter 11 parses it.
    pub earlier: ch11::Command,
    /// This chapter's flags, for `run` and `create` (empty otherwise).
    pub security: SecurityArgs,
}

/// The subcommands that take [`SecurityArgs`].
const HARDENED: [&str; 2] = ["run", "create"];

impl Subcommand for Command {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        let mut command = ch11::Command::augment_subcommands(command)
            .about("minibox, chapter 12: containers hardened as Docker's: capabilities, seccomp, masked paths, device rules");
        for name in HARDENED {
            // clap's derive would make SecurityArgs' doc comment the about
            // of the command it joins: `run` and `create` keep their own.
            command = command.mut_subcommand(name, |sub| {
                let about = sub.get_about().cloned().unwrap_or_default();
                SecurityArgs::augment_args(sub).about(about)
            });
        }
        command
    }
    fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
        Self::augment_subcommands(command)
    }
    fn has_subcommand(name: &str) -> bool {
        ch11::Command::has_subcommand(name)
    }
}

impl FromArgMatches for Command {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let earlier = ch11::Command::from_arg_matches(matches)?;
        let security = match matches.subcommand() {
            Some((name, sub)) if HARDENED.contains(&name) => SecurityArgs::from_arg_matches(sub)?,
            _ => SecurityArgs::default(),
        };
        Ok(Command { earlier, security })
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

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("minibox").chain(args.iter().copied()))
    }

    #[test]
    fn run_and_create_take_the_security_flags() {
        let cli = parse(&[
            "run",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop=ALL",
            "--read-only",
            "--security-opt",
            "no-new-privileges",
            "--ulimit",
            "nofile=10:20",
            "busybox",
            "true",
        ])
        .unwrap();
        let security = &cli.command.security;
        assert_eq!(security.cap_add, ["NET_ADMIN"]);
        assert_eq!(security.cap_drop, ["ALL"]);
        assert!(security.read_only && !security.privileged);
        assert_eq!(
            SecurityArgs::from_words(&security.to_words()).unwrap(),
            *security
        );
        assert!(
            parse(&["create", "--privileged", "busybox"])
                .unwrap()
                .command
                .security
                .privileged
        );
    }

    #[test]
    fn the_other_commands_do_not() {
        assert!(parse(&["ps", "-a"]).is_ok());
        assert!(parse(&["ps", "--privileged"]).is_err());
        assert!(parse(&["build", "--cap-add", "X", "."]).is_err());
    }
}
