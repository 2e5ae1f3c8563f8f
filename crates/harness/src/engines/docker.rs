//! Docker: `dockerd` on a containerd of the test's (see
//! [`super::containerd`]), driven with Debian's `docker` client.
//!
//! `dockerd` with:
//!
//! - `--data-root`, `--exec-root`, `--pidfile`, `-H unix://SOCKET` in the
//!   sandbox's directory (by default /var/lib/docker, /var/run/docker,
//!   /var/run/docker.pid, /var/run/docker.sock), and `--config-file` an
//!   empty `daemon.json` of ours, so the host's /etc/docker/daemon.json is
//!   not read;
//! - `--containerd SOCKET`: the test's own containerd, configured as the
//!   containerd engine's is (otherwise dockerd starts one whose
//!   configuration it writes itself, and which makes /opt/containerd); the
//!   the shim calls the runtime with `--root EXEC_ROOT/runtime-runc/moby`
//!   (dockerd names that directory so whatever the runtime is called);
//! - `--bridge=none --iptables=false --ip6tables=false`: no docker0
//!   bridge, no NAT rules (the containers run with `--network none`);
//! - `--exec-opt native.cgroupdriver=cgroupfs`: there is no systemd;
//! - `--add-runtime minibox=PATH`: the runtime under test, chosen per
//!   container with `docker run --runtime minibox`.
//!
//! The client is `/usr/bin/docker` (the one that comes with this dockerd),
//! with `DOCKER_CONFIG` in the sandbox: a client keeps a `config.json` in
//! `~/.docker` otherwise.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Engine, Logging, Run, RuntimeLog, Sandbox, output};

/// Where the binaries are (Debian's `docker.io` package).
pub const BINARIES: [&str; 2] = ["/usr/sbin/dockerd", "/usr/bin/docker"];

/// The name dockerd knows the runtime under test by.
pub const RUNTIME_NAME: &str = "minibox";

/// dockerd and its containerd, in a sandbox, with a runtime under test.
pub struct Docker {
    /// Dropped before the sandbox, whose directory holds its log.
    runtime: RuntimeLog,
    sandbox: Sandbox,
    dockerd: Option<Child>,
    containerd: Option<Child>,
}

/// Whether dockerd, the client and containerd are installed.
pub fn installed() -> bool {
    BINARIES.iter().all(|b| Path::new(b).exists()) && super::containerd::installed()
}

impl Docker {
    /// Starts containerd and dockerd in a new sandbox, with `runtime`
    /// (wrapped in a [`RuntimeLog`]) added as runtime `minibox`, and pulls
    /// busybox.
    pub fn start(runtime: &Path) -> Result<Docker, String> {
        Self::start_with(runtime, Logging::On)
    }

    /// [`Docker::start`], with the runtime logged or not (see [`Logging`]).
    pub fn start_with(runtime: &Path, logging: Logging) -> Result<Docker, String> {
        let sandbox = Sandbox::new("docker")?;
        let runtime = logging.runtime(&sandbox, runtime)?;
        let containerd = super::containerd::start_daemon(&sandbox)?;
        let mut engine = Docker {
            sandbox,
            runtime,
            dockerd: None,
            containerd: Some(containerd),
        };
        engine.dockerd = Some(engine.start_dockerd()?);
        output(
            engine
                .docker()
                .arg("pull")
                .arg(engine.sandbox.busybox())
                .stdout(Stdio::null()),
            "docker pull",
        )?;
        Ok(engine)
    }

    fn start_dockerd(&self) -> Result<Child, String> {
        let dir = self.sandbox.path("docker");
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        std::fs::write(dir.join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
        let mut dockerd = self.sandbox.command("dockerd");
        dockerd
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .arg("--containerd")
            .arg(super::containerd::socket(&self.sandbox))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .arg("--add-runtime")
            .arg(format!("{RUNTIME_NAME}={}", self.runtime.path().display()))
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let mut child = dockerd
            .spawn()
            .map_err(|e| format!("starting dockerd: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.pings() {
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "dockerd did not start: {}",
                    std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(child)
    }

    /// Whether dockerd answers `GET /_ping` on its socket.
    fn pings(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) =
            std::os::unix::net::UnixStream::connect(self.sandbox.path("docker/docker.sock"))
        else {
            return false;
        };
        let mut answer = String::new();
        stream
            .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.ends_with("OK")
    }

    /// `docker -H unix://SOCKET`, in the sandbox.
    pub fn docker(&self) -> Command {
        let mut docker = self.sandbox.command(BINARIES[1]);
        docker
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.sandbox.path("docker/docker.sock").display()
            ))
            .env("DOCKER_CONFIG", self.sandbox.path("docker/client"));
        docker
    }

    fn inspect(&self, name: &str, format: &str) -> Result<String, String> {
        output(
            self.docker().args(["inspect", "-f", format, name]),
            "docker inspect",
        )
        .map(|s| s.trim().to_string())
    }
}

impl Engine for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    fn runtime(&self) -> &RuntimeLog {
        &self.runtime
    }

    fn run(&self, run: &Run) -> Command {
        let mut docker = self.docker();
        docker
            .args(["run", "--runtime", RUNTIME_NAME, "--network", "none"])
            .args(["--cgroup-parent", self.sandbox.cgroup_parent()])
            .args(["--name", run.name]);
        if run.remove {
            docker.arg("--rm");
        }
        if run.detach {
            docker.arg("-d");
        }
        if run.tty {
            docker.arg("-it");
        }
        if let Some(bytes) = run.memory {
            docker.arg("--memory").arg(bytes.to_string());
        }
        docker.arg(self.sandbox.busybox()).args(run.args);
        docker
    }

    fn exec(&self, name: &str, args: &[&str]) -> Command {
        let mut docker = self.docker();
        docker.args(["exec", name]).args(args);
        docker
    }

    fn kill(&self, name: &str) -> Result<(), String> {
        output(self.docker().args(["kill", name]), "docker kill").map(drop)
    }

    fn stop(&self, name: &str) -> Result<(), String> {
        output(self.docker().args(["stop", "-t", "1", name]), "docker stop").map(drop)
    }

    fn remove(&self, name: &str) -> Result<(), String> {
        output(self.docker().args(["rm", name]), "docker rm").map(drop)
    }

    fn remove_force(&self, name: &str) {
        let _ = output(self.docker().args(["rm", "-f", name]), "docker rm -f");
    }

    fn ps(&self) -> Result<Vec<String>, String> {
        let listed = output(
            self.docker().args(["ps", "--format", "{{.Names}}"]),
            "docker ps",
        )?;
        Ok(listed.lines().map(str::to_string).collect())
    }

    fn pid(&self, name: &str) -> Result<i32, String> {
        let pid = self.inspect(name, "{{.State.Pid}}")?;
        pid.parse()
            .map_err(|_| format!("docker inspect: pid {pid}"))
    }

    fn monitor_pid(&self, name: &str) -> Result<i32, String> {
        super::shim_of(&self.sandbox, &self.id(name)?)
    }

    fn id(&self, name: &str) -> Result<String, String> {
        self.inspect(name, "{{.Id}}")
    }

    fn shutdown(mut self: Box<Self>) -> Result<(), String> {
        let dockerd = self.dockerd.as_mut().expect("a running dockerd");
        let mut forced = super::terminate(dockerd, Duration::from_secs(20));
        self.dockerd = None;
        let containerd = self.containerd.as_mut().expect("a running containerd");
        forced |= super::terminate(containerd, Duration::from_secs(10));
        self.containerd = None;
        super::check_left(&mut self.sandbox, forced, "docker")
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for daemon in [self.dockerd.take(), self.containerd.take()]
            .into_iter()
            .flatten()
        {
            let mut daemon = daemon;
            super::terminate(&mut daemon, Duration::from_secs(10));
        }
    }
}
