//! The engines, each in a sandbox of the test harness's
//! (`harness::engines`: its own directories in the temp dir, network
//! namespace, private mount namespace with a tmpfs on `/run` and
//! `/var/lib`, and a registry mirror inside, from which busybox was pulled
//! before anything is measured), started with minibox-runc as their runtime
//! *unlogged*: the engine is given the runtime itself, not the tests'
//! logging wrapper, whose shell would be timed too.
//!
//! Each engine runs busybox with its default runtime and with minibox-runc,
//! in the same sandbox:
//!
//! - podman: `--runtime crun` (podman's default), `--runtime runc`, and
//!   `--runtime PATH`, a global flag per command ([`Podman::podman_with`]).
//!   conmon outlives `podman run --rm`: once the container is gone it runs
//!   podman's cleanup command, which the next run must not share the
//!   machine with; so a run ends, untimed, when conmon's cgroup
//!   (`PARENT/conmon`) is empty, as in `bench start`.
//! - Docker: `docker run --runtime runc` (dockerd's default: `runc` on
//!   `PATH`, through containerd's runc shim) and `--runtime minibox` (added
//!   with `--add-runtime minibox=PATH` when the sandbox started).
//! - containerd: `ctr run` (the shim's default, `runc` on `PATH`) and
//!   `ctr run --runc-binary PATH`.
//!
//! Docker's and containerd's shim exits a moment after the container is
//! deleted; a run ends, untimed, when no shim is left in the sandbox.
//!
//! The containers' cgroups go below the benchmark's absolute cgroup parent
//! (below our own cgroup in every hierarchy; see
//! [`crate::bench::cgroups::Parents`]), one directory per engine: crun
//! reads a relative `cgroupsPath` from each hierarchy's root, not from its
//! own cgroup as runc does, so the harness's relative parent would put
//! crun's containers beside our cgroup.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use harness::engines::{self, Containerd, Docker, Engine, Logging, Podman};

use super::report;
use crate::bench::cgroups;
use crate::bench::measure::{Peer, Sample, run_measured};
use crate::shell;

/// The engines that are installed and started here.
pub(super) struct Engines {
    podman: Option<Podman>,
    docker: Option<Docker>,
    containerd: Option<Containerd>,
}

impl Engines {
    /// Starts each installed engine in a sandbox of its own with
    /// `minibox_runc`, unlogged; one that cannot start is left out, saying
    /// why.
    pub(super) fn start(minibox_runc: &Path) -> Engines {
        eprintln!("xtask: starting the engines (podman, Docker, containerd) in their sandboxes");
        Engines {
            podman: started("podman", engines::podman::installed(), || {
                Podman::start_with(minibox_runc, Logging::Off)
            }),
            docker: started("docker", engines::docker::installed(), || {
                Docker::start_with(minibox_runc, Logging::Off)
            }),
            containerd: started("containerd", engines::containerd::installed(), || {
                Containerd::start_with(minibox_runc, Logging::Off)
            }),
        }
    }

    /// Every engine's variants, containers' cgroups below `parent`
    /// (absolute); prints their commands.
    pub(super) fn variants<'a>(
        &'a self,
        parent: &str,
        minibox_runc: &'a Path,
    ) -> Result<Vec<Peer<'a>>> {
        println!();
        println!(
            "the engines' commands (each in its sandbox's network and mount namespaces; ID is the \
             run's own):"
        );
        let mut peers = Vec::new();
        if let Some(podman) = &self.podman {
            peers.extend(podman_variants(
                podman,
                &format!("{parent}/podman"),
                minibox_runc,
            )?);
        }
        if let Some(docker) = &self.docker {
            peers.extend(docker_variants(docker, &format!("{parent}/docker")));
        }
        if let Some(containerd) = &self.containerd {
            peers.extend(ctr_variants(
                containerd,
                &format!("{parent}/ctr"),
                minibox_runc,
            ));
        }
        Ok(peers)
    }

    /// Stops each engine (by PID) and says what it left, if anything (the
    /// sandbox removes it anyway).
    pub(super) fn shutdown(self) {
        let boxed: [Option<Box<dyn Engine>>; 3] = [
            self.podman.map(|e| Box::new(e) as _),
            self.docker.map(|e| Box::new(e) as _),
            self.containerd.map(|e| Box::new(e) as _),
        ];
        for engine in boxed.into_iter().flatten() {
            let name = engine.name();
            match engine.shutdown() {
                Ok(()) => eprintln!("xtask: {name} stopped, nothing left"),
                Err(err) => println!("{name}: {err}"),
            }
        }
    }
}

/// The engine `started` made, or none when it is not installed or could
/// not start (saying why).
fn started<E>(
    name: &str,
    installed: bool,
    started: impl FnOnce() -> Result<E, String>,
) -> Option<E> {
    if !installed {
        println!("{name}: not installed, left out");
        return None;
    }
    started()
        .map_err(|err| println!("{name}: cannot run here, left out: {err}"))
        .ok()
}

/// A peer that runs `command` (made afresh for each run, from the run's
/// directory), then waits, untimed, with `settle`; prints the command.
fn variant<'a>(
    name: &'static str,
    required: bool,
    command: impl Fn(&Path) -> Command + 'a,
    settle: impl Fn() -> Result<()> + 'a,
) -> Peer<'a> {
    println!("  {name}: {}", shell::show(&command(Path::new("ID"))));
    let run = move |dir: &Path| -> Result<Sample> {
        let sample = run_measured(&mut command(dir), dir, name);
        settle()?;
        sample
    };
    Peer::new(name, required, Box::new(run))
}

/// podman with its default runtime (crun), runc, and minibox-runc.
fn podman_variants<'a>(
    podman: &'a Podman,
    parent: &str,
    minibox_runc: &'a Path,
) -> Result<Vec<Peer<'a>>> {
    let conmon = format!("{parent}/conmon");
    let mut peers = Vec::new();
    for (name, runtime) in [
        (report::PODMAN_CRUN, OsStr::new("crun")),
        (report::PODMAN_RUNC, OsStr::new("runc")),
        (report::PODMAN_MINIBOX, minibox_runc.as_os_str()),
    ] {
        let parent = parent.to_string();
        let command = move |_: &Path| {
            let mut command = podman.podman_with(runtime);
            command
                .args(["run", "--rm", "--pull", "never", "--network", "none"])
                .args(["--cgroup-parent", &parent])
                .arg(podman.sandbox().busybox())
                .arg("true");
            command
        };
        let conmon = conmon.clone();
        let required = name == report::PODMAN_MINIBOX;
        peers.push(variant(name, required, command, move || {
            cgroups::wait_until_empty(&conmon)
        }));
    }
    Ok(peers)
}

/// `docker run --runtime runc` (the default) and `--runtime minibox`.
fn docker_variants<'a>(docker: &'a Docker, parent: &str) -> Vec<Peer<'a>> {
    let mut peers = Vec::new();
    for (name, runtime) in [
        (report::DOCKER_RUNC, "runc"),
        (report::DOCKER_MINIBOX, engines::docker::RUNTIME_NAME),
    ] {
        let parent = parent.to_string();
        let command = move |_: &Path| {
            let mut command = docker.docker();
            command
                .args(["run", "--rm", "--network", "none", "--runtime", runtime])
                .args(["--cgroup-parent", &parent])
                .arg(docker.sandbox().busybox())
                .arg("true");
            command
        };
        let required = name == report::DOCKER_MINIBOX;
        peers.push(variant(name, required, command, || no_shim_left(docker)));
    }
    peers
}

/// `ctr run` (the shim's default runtime, runc) and `ctr run --runc-binary
/// PATH`.
fn ctr_variants<'a>(ctr: &'a Containerd, parent: &str, minibox_runc: &'a Path) -> Vec<Peer<'a>> {
    let mut peers = Vec::new();
    for (name, runc_binary) in [
        (report::CTR_RUNC, None),
        (report::CTR_MINIBOX, Some(minibox_runc)),
    ] {
        let parent = parent.to_string();
        let command = move |dir: &Path| {
            let id = format!(
                "bench-{}",
                dir.file_name().unwrap_or_default().to_string_lossy()
            );
            let mut command = ctr.ctr();
            command.args(["run", "--rm", "--snapshotter", "overlayfs"]);
            if let Some(path) = runc_binary {
                command.arg("--runc-binary").arg(path);
            }
            command
                .arg("--cgroup")
                .arg(format!("{parent}/{id}"))
                .arg(ctr.sandbox().busybox())
                .args([id.as_str(), "true"]);
            command
        };
        let required = runc_binary.is_some();
        peers.push(variant(name, required, command, || no_shim_left(ctr)));
    }
    peers
}

/// Waits until no containerd shim is left in the engine's sandbox (5 s at
/// most).
fn no_shim_left(engine: &dyn Engine) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let shims = engine.sandbox().processes().into_iter().filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.starts_with("containerd-shim"))
        });
        if shims.count() == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{}: a containerd shim still runs 5 s after its container",
                engine.name()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
