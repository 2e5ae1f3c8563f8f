//! The command line of chapter 11: chapter 10's, plus `build`, `push`,
//! `save` and `load`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use ch01_fork_exec::cli::Minibox;
use ch06_rootfs_snapshot::snapshot::minibox_root;
use ch10_runtime::cli as ch10;
use clap::{Args, Parser, Subcommand};

use crate::build;

/// Chapter 11's command line.
pub type Cli = Minibox<Command>;

/// The subcommands of chapter 11.
#[derive(Debug, Subcommand)]
#[command(about = "minibox, chapter 11: build images from a Dockerfile, push, save and load them")]
pub enum Command {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Save images to a tar archive (an OCI image layout; docker load reads it too)
    Save(SaveArgs),
    /// Load images from a tar archive (an OCI image layout or docker save's)
    Load(LoadArgs),
    /// Chapter 10's commands.
    #[command(flatten)]
    Runtime(ch10::Command),
}

/// `minibox build [OPTIONS] PATH`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (NAME[:TAG]); may be repeated
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: PATH/Dockerfile)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A build-time variable (an ARG's value); NAME alone takes ours
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// Do not use the cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// The build stage to stop at
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The network of RUN's containers: bridge, none or host
    #[arg(long, value_name = "MODE", default_value = "bridge")]
    pub network: String,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
    /// The build context: the directory COPY and ADD read from
    #[arg(value_name = "PATH")]
    pub context: PathBuf,
}

/// `minibox push NAME[:TAG]`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
    /// Print only the digest
    #[arg(short, long)]
    pub quiet: bool,
}

/// `minibox save -o FILE IMAGE...`
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file (a tar archive)
    #[arg(short, long, value_name = "FILE", required = true)]
    pub output: PathBuf,
    /// The images (names or IDs)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `minibox load -i FILE`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this tar archive
    #[arg(short, long, value_name = "FILE", required = true)]
    pub input: PathBuf,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--build-arg`s, each `NAME=VALUE`, or `NAME` for the value of our own
/// environment variable (skipped when it is unset, as Docker does).
pub fn build_args(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for arg in args {
        match arg.split_once('=') {
            Some(("", _)) => {
                bail!("invalid argument \"{arg}\" for \"--build-arg\" flag: the name is empty")
            }
            Some((name, value)) => {
                values.insert(name.to_string(), value.to_string());
            }
            None if arg.is_empty() => {
                bail!("invalid argument \"\" for \"--build-arg\" flag: the name is empty")
            }
            None => {
                if let Ok(value) = std::env::var(arg) {
                    values.insert(arg.clone(), value);
                }
            }
        }
    }
    Ok(values)
}

/// A `RUN` step's container, as a user would ask for it: `run` with no
/// entrypoint (the image's does not apply to `RUN`), the step's network and
/// build arguments, the image by its ID, and the step's command.
pub fn run_step(
    image_id: &str,
    network: &str,
    env: &[String],
    command: &[String],
) -> Result<Box<ch10::RunConfig>> {
    let mut args: Vec<OsString> = ["minibox", "run", "--quiet", "--entrypoint", ""]
        .map(OsString::from)
        .into();
    args.extend(["--network".into(), network.into()]);
    for variable in env {
        args.extend(["-e".into(), variable.into()]);
    }
    args.push(image_id.into());
    args.extend(command.iter().map(OsString::from));
    match ch10::Cli::try_parse_from(args)?.command.into_action()? {
        ch10::Action::Run(config) => Ok(config),
        _ => bail!("a RUN step is a `run`"),
    }
}

/// `SOURCE_DATE_EPOCH`, when set: seconds since 1970, as its specification
/// says (reproducible-builds.org).
pub fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => text
            .parse()
            .map(Some)
            .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={text}: not a number of seconds")),
        _ => Ok(None),
    }
}

impl BuildArgs {
    /// The build's options, checked.
    pub fn options(self) -> Result<build::Options> {
        let dockerfile = self.file.unwrap_or_else(|| self.context.join("Dockerfile"));
        if !["bridge", "none", "host", "default"].contains(&self.network.as_str()) {
            bail!(
                "network mode \"{}\" not supported by buildkit",
                self.network
            );
        }
        let network = match self.network.as_str() {
            "default" => "bridge".to_string(),
            other => other.to_string(),
        };
        Ok(build::Options {
            root: minibox_root(),
            context: self.context,
            dockerfile,
            tags: self.tags,
            build_args: build_args(&self.build_args)?,
            no_cache: self.no_cache,
            target: self.target,
            network,
            quiet: self.quiet,
            epoch: source_date_epoch()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["minibox"].iter().chain(args))
    }

    #[test]
    fn build_takes_docker_s_flags_and_the_runtime_s_commands_stay() {
        let cli = parse(&[
            "build",
            "-t",
            "app",
            "-t",
            "app:1",
            "--build-arg",
            "V=1",
            "--no-cache",
            ".",
        ])
        .unwrap();
        let Command::Build(args) = cli.command else {
            panic!("not a build")
        };
        assert_eq!(args.tags, ["app", "app:1"]);
        let options = args.options().unwrap();
        assert_eq!(options.build_args.get("V").map(String::as_str), Some("1"));
        assert!(options.no_cache);
        assert_eq!(options.dockerfile, PathBuf::from("./Dockerfile"));
        assert!(matches!(
            parse(&["ps", "-a"]).unwrap().command,
            Command::Runtime(_)
        ));
        assert!(parse(&["build"]).is_err());
    }

    #[test]
    fn a_malformed_build_arg_is_refused() {
        let err = build_args(&["=1".into()]).unwrap_err().to_string();
        assert!(err.contains("--build-arg"), "{err}");
    }
}
