//! The command line of chapter 9: chapter 8's `run`, plus Docker's network
//! flags (`--network`, `-p/--publish`, `--dns`, `--dns-search`,
//! `--dns-option`, `--add-host`), and `network prune` to remove the bridge and
//! the NAT rules. `pull`, `images`, `login`, `logout` and `diff` are chapter
//! 7's, handed to it unchanged.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use ch01_fork_exec::cli::Minibox;
use ch06_rootfs_snapshot::snapshot;
use ch07_image_pull::cli::{self as ch07, OtherCommand};
use ch08_command_override::cli::{self as ch08, CommandArgs, ImageAndCommand};
use clap::{Args, Subcommand};

use crate::etc_files::{self, DnsOverrides};
use crate::network::{Mode, NetworkConfig};
use crate::publish;

/// Chapter 9's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 9 (`network` is new; all but `run` and
/// `network` are chapter 7's).
#[derive(Debug, Subcommand)]
#[command(about = "minibox, chapter 9: give a container a network, publish its ports")]
pub enum Command {
    /// Run a container from an image, on a network
    Run(Box<RunArgs>),
    /// Manage minibox's network
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Chapter 7's: pull, images, login, logout, diff.
    #[command(flatten)]
    Other(OtherCommand),
}

/// `minibox network ...`
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Remove the minibox0 bridge and minibox's iptables chains, when no container uses them
    Prune,
}

// ANCHOR: run_args
/// `minibox run [OPTIONS] IMAGE [COMMAND] [ARG...]`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// This chapter's: the network.
    #[command(flatten)]
    pub network: NetworkArgs,

    /// Chapter 8's: what the container runs, as whom, where.
    #[command(flatten)]
    pub command: CommandArgs,

    /// Chapter 7's options: the pull, the snapshot, the resources.
    #[command(flatten)]
    pub options: ch07::RunOptions,

    /// Chapter 8's: `--help`, then IMAGE and the command.
    #[command(flatten)]
    pub image_and_command: ImageAndCommand,
}

/// Docker's network flags of `docker run`.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Connect the container to a network: bridge (its own namespace on the
    /// minibox0 bridge), none (only lo), host (the host's network)
    #[arg(
        long = "network",
        alias = "net",
        value_name = "NETWORK",
        default_value = "bridge"
    )]
    pub network: String,

    /// Publish a container's port to the host: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,

    /// Set a DNS server for the container
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,

    /// Set a DNS search domain
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,

    /// Set a DNS resolver option
    #[arg(long, value_name = "OPTION")]
    pub dns_option: Vec<String>,

    /// Add a line to /etc/hosts (NAME:IP)
    #[arg(long, value_name = "NAME:IP")]
    pub add_host: Vec<String>,
}
// ANCHOR_END: run_args

// ANCHOR: config
/// What `minibox run` was asked to do: chapter 8's run, on a network.
#[derive(Debug, Clone)]
pub struct Config {
    /// Chapter 8's: the image, the command, the overrides, the options.
    pub run: ch08::Config,
    /// The network: mode, published ports, DNS, extra hosts.
    pub network: NetworkConfig,
}
// ANCHOR_END: config

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// `minibox run` (boxed: it is much larger than the others).
    Run(Box<Config>),
    /// `minibox network prune`, with minibox's directory (leases live there).
    NetworkPrune {
        /// `MINIBOX_ROOT`.
        root: PathBuf,
    },
    /// Anything else: chapter 7's.
    Other(ch07::Action),
}

impl Command {
    /// Turns the parsed command line into an [`Action`], checking values on the
    /// way (bad input is minibox's error: 125, before anything is created).
    pub fn into_action(self) -> Result<Action> {
        match self {
            Command::Run(args) => {
                let args = *args;
                let network = args.network.into_config()?;
                let run =
                    ch08::Config::new(args.command, args.options, args.image_and_command.words)?;
                Ok(Action::Run(Box::new(Config { run, network })))
            }
            Command::Network(NetworkCommand::Prune) => Ok(Action::NetworkPrune {
                root: snapshot::minibox_root(),
            }),
            Command::Other(other) => Ok(Action::Other(other.into_action())),
        }
    }
}

impl NetworkArgs {
    /// Checks every value as Docker's client does, with its messages.
    pub fn into_config(self) -> Result<NetworkConfig> {
        let mode = self.network.parse::<Mode>()?;
        let mut mappings = Vec::new();
        for spec in &self.publish {
            mappings.extend(publish::parse(spec)?);
        }
        let mut nameservers = Vec::new();
        for dns in &self.dns {
            match dns.parse::<IpAddr>() {
                Ok(ip) => nameservers.push(ip),
                Err(_) => bail!(
                    "invalid argument \"{dns}\" for \"--dns\" flag: {dns} is not an ip address"
                ),
            }
        }
        let extra_hosts = self
            .add_host
            .iter()
            .map(|value| etc_files::parse_add_host(value))
            .collect::<Result<_>>()?;
        Ok(NetworkConfig {
            mode,
            publish: mappings,
            dns: DnsOverrides {
                nameservers,
                search: self.dns_search,
                options: self.dns_option,
            },
            extra_hosts,
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

    fn network(args: &[&str]) -> NetworkConfig {
        match parse(args).unwrap() {
            Action::Run(config) => config.network,
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn bridge_is_the_default_and_unknown_networks_are_refused_as_docker_does() {
        assert_eq!(network(&["run", "busybox"]).mode, Mode::Bridge);
        assert_eq!(
            network(&["run", "--network", "none", "busybox"]).mode,
            Mode::None
        );
        assert_eq!(network(&["run", "--net=host", "busybox"]).mode, Mode::Host);
        let error = parse(&["run", "--network", "nope", "busybox"]).unwrap_err();
        assert_eq!(error.to_string(), "network nope not found");
    }

    #[test]
    fn publish_dns_and_hosts_are_parsed_with_dockers_messages() {
        let config = network(&[
            "run",
            "-p",
            "8080:80",
            "-p",
            "53:53/udp",
            "--dns",
            "9.9.9.9",
            "--add-host",
            "db:10.0.0.5",
            "busybox",
            "-p",
            "ignored",
        ]);
        assert_eq!(config.publish.len(), 2);
        assert_eq!(config.publish[1].to_string(), "53/udp -> 0.0.0.0:53");
        assert_eq!(
            config.dns.nameservers,
            ["9.9.9.9".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(config.extra_hosts[0].name, "db");
        let error = parse(&["run", "-p", "80:abc", "busybox"]).unwrap_err();
        assert_eq!(error.to_string(), "invalid containerPort: abc");
        let error = parse(&["run", "--dns", "1.2.3", "busybox"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid argument \"1.2.3\" for \"--dns\" flag: 1.2.3 is not an ip address"
        );
    }

    #[test]
    fn chapter_eights_overrides_still_apply() {
        match parse(&["run", "-u", "1000", "-w", "/tmp", "busybox", "id"]).unwrap() {
            Action::Run(config) => {
                assert_eq!(config.run.user.as_deref(), Some("1000"));
                assert_eq!(config.run.arguments, ["id"]);
            }
            other => panic!("not a run: {other:?}"),
        }
        assert!(matches!(
            parse(&["network", "prune"]).unwrap(),
            Action::NetworkPrune { .. }
        ));
    }
}
