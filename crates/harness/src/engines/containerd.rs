//! containerd alone, driven with `ctr`, as Kubernetes' CRI would drive it
//! (without the CRI: `ctr run` makes the container and its task directly).
//!
//! `containerd -c CONFIG`, with a configuration of the test's
//! ([`write_config`]):
//!
//! - `root` (content store, snapshots, metadata) and `state` (bundles,
//!   under `state/io.containerd.runtime.v2.task/NAMESPACE/ID`) in the
//!   sandbox's directory; the gRPC and ttrpc sockets too;
//! - the `opt` plugin's directory too (by default it makes
//!   `/opt/containerd` on the host);
//! - the CRI plugin off: nothing here speaks CRI, and it would start a CNI
//!   setup and take seconds.
//!
//! `ctr run --runc-binary PATH` asks containerd for a task whose shim,
//! `containerd-shim-runc-v2`, calls PATH instead of `runc`. The shim keeps
//! the runtime's state in `--root /run/containerd/runc/NAMESPACE` (its
//! default; the sandbox's `/run` is a tmpfs of its own) and calls it with
//! `--log BUNDLE/log.json --log-format json`. `ctr run --cgroup PARENT/ID`
//! sets the spec's `linux.cgroupsPath` (relative: below the test's cgroup),
//! and `--snapshotter overlayfs` is the default, said out loud. Docker
//! ([`super::Docker`]) uses a containerd started the same way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Engine, Logging, Run, RuntimeLog, Sandbox, output};

/// The containerd namespace the tests' containers live in (Docker's is
/// `moby`).
pub const NAMESPACE: &str = "minibox";

/// Where the binaries are (Debian's `containerd` package).
pub const BINARIES: [&str; 3] = [
    "/usr/bin/containerd",
    "/usr/bin/ctr",
    "/usr/bin/containerd-shim-runc-v2",
];

/// containerd with `ctr`, in a sandbox, with a runtime under test.
pub struct Containerd {
    /// Dropped before the sandbox, whose directory holds its log.
    runtime: RuntimeLog,
    sandbox: Sandbox,
    daemon: Option<Child>,
}

/// Whether containerd and ctr are installed.
pub fn installed() -> bool {
    BINARIES.iter().all(|b| Path::new(b).exists())
}

impl Containerd {
    /// Starts containerd in a new sandbox, with `runtime` (wrapped in a
    /// [`RuntimeLog`]) as the runtime of the containers `run` makes, and
    /// pulls busybox.
    pub fn start(runtime: &Path) -> Result<Containerd, String> {
        Self::start_with(runtime, Logging::On)
    }

    /// [`Containerd::start`], with the runtime logged or not (see [`Logging`]).
    pub fn start_with(runtime: &Path, logging: Logging) -> Result<Containerd, String> {
        let sandbox = Sandbox::new("containerd")?;
        let runtime = logging.runtime(&sandbox, runtime)?;
        let daemon = start_daemon(&sandbox)?;
        let engine = Containerd {
            sandbox,
            runtime,
            daemon: Some(daemon),
        };
        output(
            engine
                .ctr()
                .args([
                    "image",
                    "pull",
                    "--plain-http",
                    "--snapshotter",
                    "overlayfs",
                ])
                .arg(engine.sandbox.busybox())
                .stdout(Stdio::null()),
            "ctr image pull",
        )?;
        Ok(engine)
    }

    /// `ctr -a SOCKET -n NAMESPACE`, in the sandbox.
    pub fn ctr(&self) -> Command {
        let mut ctr = self.sandbox.command("ctr");
        ctr.arg("-a")
            .arg(socket(&self.sandbox))
            .args(["-n", NAMESPACE]);
        ctr
    }

    /// Waits until task `name` is no longer running (10 s at most).
    fn wait_stopped(&self, name: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ps()?.iter().any(|n| n == name) {
            if Instant::now() > deadline {
                return Err(format!("task {name} still runs after 10 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// `ctr task ls`: (name, PID, status) of every task.
    fn tasks(&self) -> Result<Vec<(String, i32, String)>, String> {
        let listed = output(self.ctr().args(["task", "ls"]), "ctr task ls")?;
        Ok(listed
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let name = fields.next()?.to_string();
                let pid = fields.next()?.parse().ok()?;
                Some((name, pid, fields.next()?.to_string()))
            })
            .collect())
    }
}

/// containerd's gRPC socket in `sandbox`.
pub(crate) fn socket(sandbox: &Sandbox) -> PathBuf {
    sandbox.path("containerd/containerd.sock")
}

/// Writes containerd's configuration below `sandbox` (see the module's
/// documentation) and returns its path.
fn write_config(sandbox: &Sandbox) -> Result<PathBuf, String> {
    let dir = sandbox.path("containerd");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let d = dir.display();
    let config = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         [grpc]\n  address = \"{d}/containerd.sock\"\n\
         [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
         [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// Starts containerd in `sandbox` and waits until it answers (10 s at
/// most). Its log is `containerd/containerd.log`.
pub(crate) fn start_daemon(sandbox: &Sandbox) -> Result<Child, String> {
    let config = write_config(sandbox)?;
    let log_path = sandbox.path("containerd/containerd.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut daemon = sandbox
        .command("containerd")
        .arg("-c")
        .arg(&config)
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting containerd: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut version = sandbox.command("ctr");
        version.arg("-a").arg(socket(sandbox)).arg("version");
        if socket(sandbox).exists() && output(&mut version, "ctr version").is_ok() {
            return Ok(daemon);
        }
        if Instant::now() > deadline || daemon.try_wait().ok().flatten().is_some() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            return Err(format!(
                "containerd did not start: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Engine for Containerd {
    fn name(&self) -> &'static str {
        "containerd"
    }

    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    fn runtime(&self) -> &RuntimeLog {
        &self.runtime
    }

    fn run(&self, run: &Run) -> Command {
        let mut ctr = self.ctr();
        ctr.arg("run").arg("--runc-binary").arg(self.runtime.path());
        ctr.arg("--cgroup")
            .arg(format!("{}/{}", self.sandbox.cgroup_parent(), run.name));
        ctr.args(["--snapshotter", "overlayfs"]);
        if run.remove {
            ctr.arg("--rm");
        }
        if run.detach {
            // Nobody would read the task's output once ctr has gone.
            ctr.args(["-d", "--null-io"]);
        }
        if run.tty {
            ctr.arg("-t");
        }
        if let Some(bytes) = run.memory {
            ctr.arg("--memory-limit").arg(bytes.to_string());
        }
        ctr.arg(self.sandbox.busybox()).arg(run.name).args(run.args);
        ctr
    }

    fn exec(&self, name: &str, args: &[&str]) -> Command {
        let mut ctr = self.ctr();
        let exec_id = format!("exec-{}", std::process::id());
        ctr.args(["task", "exec", "--exec-id", &exec_id, name])
            .args(args);
        ctr
    }

    fn kill(&self, name: &str) -> Result<(), String> {
        output(
            self.ctr().args(["task", "kill", "-s", "SIGKILL", name]),
            "ctr task kill",
        )
        .map(drop)
    }

    fn stop(&self, name: &str) -> Result<(), String> {
        // ctr has no `stop`: SIGTERM, a second's grace, then SIGKILL.
        output(self.ctr().args(["task", "kill", name]), "ctr task kill")?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline && self.ps()?.iter().any(|n| n == name) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.ps()?.iter().any(|n| n == name) {
            self.kill(name)?;
        }
        self.wait_stopped(name)
    }

    fn remove(&self, name: &str) -> Result<(), String> {
        output(self.ctr().args(["task", "rm", name]), "ctr task rm")?;
        output(
            self.ctr().args(["container", "rm", name]),
            "ctr container rm",
        )
        .map(drop)
    }

    fn remove_force(&self, name: &str) {
        let _ = output(self.ctr().args(["task", "rm", "-f", name]), "ctr task rm");
        let _ = output(
            self.ctr().args(["container", "rm", name]),
            "ctr container rm",
        );
    }

    fn ps(&self) -> Result<Vec<String>, String> {
        Ok(self
            .tasks()?
            .into_iter()
            .filter(|(_, _, status)| status == "RUNNING")
            .map(|(name, _, _)| name)
            .collect())
    }

    fn pid(&self, name: &str) -> Result<i32, String> {
        self.tasks()?
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, pid, _)| pid)
            .ok_or_else(|| format!("no task {name}"))
    }

    fn monitor_pid(&self, name: &str) -> Result<i32, String> {
        super::shim_of(&self.sandbox, name)
    }

    fn id(&self, name: &str) -> Result<String, String> {
        Ok(name.to_string())
    }

    fn shutdown(mut self: Box<Self>) -> Result<(), String> {
        let daemon = self.daemon.as_mut().expect("a running containerd");
        let forced = super::terminate(daemon, Duration::from_secs(10));
        self.daemon = None;
        super::check_left(&mut self.sandbox, forced, "containerd")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            super::terminate(&mut daemon, Duration::from_secs(10));
        }
    }
}
