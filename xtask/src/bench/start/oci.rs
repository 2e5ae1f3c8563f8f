//! crun and runc (and, in `bench oci`, chapter 14's minibox-runc), the OCI
//! runtimes, started as `RUNTIME run` on a bundle: the runtime's own default
//! configuration (`RUNTIME spec`, which includes a
//! network namespace) running `true` in the busybox root filesystem, with a
//! cgroup of the benchmark's, a container ID of its own per run and a state
//! directory of the benchmark's (`--root`).

use std::fs;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde_json::json;

use crate::bench::measure::{Sample, run_measured, sum};
use crate::shell;

/// An OCI runtime, ready to run the benchmark's container.
#[derive(Clone)]
pub(in crate::bench) struct Runtime<'a> {
    /// `crun`, `runc` or `minibox-runc`.
    pub(in crate::bench) name: &'static str,
    /// The program: its name, found on `PATH`, or a path (minibox-runc's
    /// release build).
    program: PathBuf,
    /// Its state directory (`--root`).
    state: PathBuf,
    /// Its default `config.json`, with our process, root and no terminal.
    config: serde_json::Value,
    /// The cgroup parent (absolute) of its containers' cgroups.
    cgroups: String,
    /// The network namespace it is started in.
    netns: BorrowedFd<'a>,
}

impl<'a> Runtime<'a> {
    /// Asks runtime `name` (the program `program`) for its default
    /// configuration (in a directory of its own below `work`), and makes it
    /// run `true` in `rootfs` without a terminal; containers get cgroups
    /// below `cgroups`.
    pub(in crate::bench) fn new(
        name: &'static str,
        program: &Path,
        work: &Path,
        rootfs: &Path,
        cgroups: &str,
        netns: BorrowedFd<'a>,
    ) -> Result<Runtime<'a>> {
        let spec = work.join(format!("{name}-spec"));
        let state = work.join(format!("{name}-state"));
        for dir in [&spec, &state] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        shell::run(
            Command::new(program)
                .arg("spec")
                .current_dir(&spec)
                .stdin(Stdio::null()),
        )?;
        let path = spec.join("config.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        fs::remove_dir_all(&spec).with_context(|| format!("removing {}", spec.display()))?;
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["true"]);
        config["root"]["path"] = json!(rootfs);
        Ok(Runtime {
            name,
            program: program.to_path_buf(),
            state,
            config,
            cgroups: cgroups.to_string(),
            netns,
        })
    }

    /// The configuration its containers run with.
    pub(in crate::bench) fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// This runtime with `config` instead of its own default, so that
    /// every runtime runs the same bundle.
    pub(in crate::bench) fn with_config(self, config: serde_json::Value) -> Runtime<'a> {
        Runtime { config, ..self }
    }

    /// The container ID of the run whose directory is `dir` (the directory's
    /// name is unique per run).
    pub(in crate::bench) fn id(&self, dir: &Path) -> String {
        let run = dir.file_name().unwrap_or_default().to_string_lossy();
        format!("minibox-bench-{}-{run}", std::process::id())
    }

    /// `RUNTIME --root STATE run --bundle DIR ID`, started in the
    /// benchmark's network namespace.
    pub(in crate::bench) fn command(&self, dir: &Path) -> Result<Command> {
        self.command_for(dir, &["run"])
    }

    /// `RUNTIME --root STATE SUBCOMMAND --bundle DIR ID` (`run`, `run -d`),
    /// started in the benchmark's network namespace.
    pub(in crate::bench) fn command_for(&self, dir: &Path, subcommand: &[&str]) -> Result<Command> {
        let mut command = self.state_command();
        ch09_networking::netns::enter_before_exec(&mut command, self.netns)?;
        command
            .args(subcommand)
            .arg("--bundle")
            .arg(dir)
            .arg(self.id(dir));
        Ok(command)
    }

    /// The runtime's state directory (`--root`).
    pub(in crate::bench) fn state_dir(&self) -> &Path {
        &self.state
    }

    /// Writes `dir/config.json`: the default configuration running `args`,
    /// with container `id`'s own cgroup.
    pub(in crate::bench) fn write_config(&self, dir: &Path, id: &str, args: &[&str]) -> Result<()> {
        let mut config = self.config.clone();
        config["process"]["args"] = json!(args);
        config["linux"]["cgroupsPath"] = json!(format!("{}/{}-{id}", self.cgroups, self.name));
        let text = serde_json::to_string_pretty(&config).context("encoding config.json")?;
        fs::write(dir.join("config.json"), text).context("writing config.json")
    }

    /// One run in `dir`, which becomes the bundle: its `config.json` (with the
    /// run's own cgroup) is written first, untimed. `RUNTIME run` deletes the
    /// container when it exits; should a container be left (a failed run),
    /// it is deleted by force, also untimed.
    pub(in crate::bench) fn run_once(&self, dir: &Path) -> Result<Sample> {
        let id = self.id(dir);
        self.write_config(dir, &id, &["true"])?;
        let sample = run_measured(&mut self.command(dir)?, dir, self.name);
        if self.state.join(&id).exists() {
            self.delete(&id)?;
        }
        sample
    }

    /// One `RUNTIME create` + `start` + `delete --force` of a container
    /// running `true`, in `dir` (the bundle), timed together: the three
    /// commands' times added up, the config written first, untimed.
    /// `delete` is forced because `true` may not have exited yet when
    /// `start` returns (a plain `delete` of a running container fails):
    /// the same for every runtime. A container left by a failed step is
    /// deleted, untimed.
    pub(in crate::bench) fn lifecycle_once(&self, dir: &Path) -> Result<Sample> {
        let id = self.id(dir);
        self.write_config(dir, &id, &["true"])?;
        let mut start = self.state_command();
        start.args(["start", &id]);
        let mut delete = self.state_command();
        delete.args(["delete", "--force", &id]);
        let sample = run_measured(&mut self.command_for(dir, &["create"])?, dir, "create")
            .and_then(|created| Ok(sum(created, run_measured(&mut start, dir, "start")?)))
            .and_then(|started| Ok(sum(started, run_measured(&mut delete, dir, "delete")?)));
        if sample.is_err() && self.state.join(&id).exists() {
            self.delete(&id)?;
        }
        sample
    }

    /// `RUNTIME delete --force ID`.
    pub(in crate::bench) fn delete(&self, id: &str) -> Result<()> {
        let mut delete = self.state_command();
        delete.args(["delete", "--force", id]).stdin(Stdio::null());
        shell::run(&mut delete)
    }

    /// `RUNTIME --root STATE`.
    pub(in crate::bench) fn state_command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.arg("--root").arg(&self.state);
        command
    }
}
