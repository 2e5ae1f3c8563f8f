//! podman, as root, with conmon as each container's monitor. There is no
//! daemon: each `podman` command runs in the sandbox's namespaces, and a
//! container's conmon stays there after the command that started it.
//!
//! - `--root DIR/podman/root` (images, layers, containers' bundles:
//!   `overlay-containers/ID/userdata/config.json`) and `--runroot
//!   /run/podman` (locks, PID files, the containers' runtime files). podman
//!   refuses a runroot longer than 50 characters, which a temp dir may be;
//!   `/run` is the sandbox's own tmpfs, so the short path is private too.
//! - `--runtime PATH`: conmon calls PATH. podman gives it no `--root`, so
//!   the runtime keeps its state in its default root (`/run/runc` for
//!   runc), again in the sandbox's `/run`.
//! - `--cgroup-manager cgroupfs` and `--events-backend file`: no systemd,
//!   no journald. `--storage-driver overlay`.
//! - `containers.conf` ([`MACHINE_CONF`] and file locks), `storage.conf`
//!   and `registries.conf` of the sandbox's, through `CONTAINERS_CONF`,
//!   `CONTAINERS_STORAGE_CONF` and `CONTAINERS_REGISTRIES_CONF`; `HOME`
//!   there too. `image_copy_tmp_dir` and `TMPDIR` keep a pull's temporary
//!   files out of the host's /var/tmp; `network_config_dir` keeps podman's
//!   network files out of /etc/containers.
//! - Each container: `--network none`, `--cgroup-parent PARENT` (relative:
//!   below the test's cgroup) and `--cgroups no-conmon`. With cgroupfs,
//!   podman would move conmon into `PARENT/conmon` read from the root of
//!   each hierarchy, beside the test's cgroup rather than below it; with
//!   `no-conmon` conmon stays in the test's cgroup, the container alone
//!   gets one (`PARENT/libpod-ID`).

use std::path::Path;
use std::process::{Command, Stdio};

use super::{Engine, Logging, Run, RuntimeLog, Sandbox, output};

/// What podman needs in its `containers.conf` to run containers on this
/// machine at all, root or rootless: cgroupfs (there is no systemd), events
/// in a file (no journald), and `default_ulimits` within the hard limits
/// (podman's default asks for more than this machine allows). It ends in the
/// `[engine]` table, so more of that table's keys may follow.
pub const MACHINE_CONF: &str = "[containers]\n\
    default_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n\
    [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n";

/// Where the binaries are (Debian's `podman` and `conmon` packages).
pub const BINARIES: [&str; 2] = ["/usr/bin/podman", "/usr/bin/conmon"];

/// podman's runroot, in the sandbox's `/run`.
const RUNROOT: &str = "/run/podman";

/// podman in a sandbox, with a runtime under test.
pub struct Podman {
    /// Dropped before the sandbox, whose directory holds its log.
    runtime: RuntimeLog,
    sandbox: Sandbox,
}

/// Whether podman and conmon are installed.
pub fn installed() -> bool {
    BINARIES.iter().all(|b| Path::new(b).exists())
}

impl Podman {
    /// Writes podman's configuration into a new sandbox, with `runtime`
    /// (wrapped in a [`RuntimeLog`]) as its OCI runtime, and pulls busybox.
    pub fn start(runtime: &Path) -> Result<Podman, String> {
        Self::start_with(runtime, Logging::On)
    }

    /// [`Podman::start`], with the runtime logged or not (see [`Logging`]).
    pub fn start_with(runtime: &Path, logging: Logging) -> Result<Podman, String> {
        let sandbox = Sandbox::new("podman")?;
        let runtime = logging.runtime(&sandbox, runtime)?;
        let dir = sandbox.path("podman");
        for sub in ["root", "copy", "networks"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("podman dirs: {e}"))?;
        }
        let d = dir.display();
        let files = [
            (
                "containers.conf",
                format!(
                    "{MACHINE_CONF}lock_type = \"file\"\nimage_copy_tmp_dir = \"{d}/copy\"\n\
                     [network]\nnetwork_config_dir = \"{d}/networks\"\n"
                ),
            ),
            (
                "storage.conf",
                format!(
                    "[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/root\"\n\
                     runroot = \"{RUNROOT}\"\n"
                ),
            ),
            (
                "registries.conf",
                format!(
                    "unqualified-search-registries = []\n\
                     [[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                    super::sandbox::MIRROR
                ),
            ),
            (
                "policy.json",
                r#"{"default":[{"type":"insecureAcceptAnything"}]}"#.to_string(),
            ),
        ];
        for (file, text) in files {
            std::fs::write(dir.join(file), text).map_err(|e| format!("writing {file}: {e}"))?;
        }
        let engine = Podman { sandbox, runtime };
        output(
            engine
                .podman()
                .args(["pull", "-q", "--signature-policy"])
                .arg(dir.join("policy.json"))
                .arg(engine.sandbox.busybox())
                .stdout(Stdio::null()),
            "podman pull",
        )?;
        Ok(engine)
    }

    /// `podman` with its global flags and configuration, in the sandbox.
    pub fn podman(&self) -> Command {
        self.podman_with(self.runtime.path().as_os_str())
    }

    /// [`Podman::podman`] with another `--runtime`: a path, or a name
    /// podman knows (`crun`, `runc`). A benchmark compares the runtime it
    /// was started with against podman's default this way, in one sandbox.
    pub fn podman_with(&self, runtime: &std::ffi::OsStr) -> Command {
        let dir = self.sandbox.path("podman");
        let mut podman = self.sandbox.command(BINARIES[0]);
        podman
            .arg("--root")
            .arg(dir.join("root"))
            .args(["--runroot", RUNROOT, "--storage-driver", "overlay"])
            .arg("--runtime")
            .arg(runtime)
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
            .env("TMPDIR", dir.join("copy"))
            .env("HOME", &dir)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_RUNTIME_DIR");
        podman
    }

    fn inspect(&self, name: &str, format: &str) -> Result<String, String> {
        output(
            self.podman().args(["inspect", "-f", format, name]),
            "podman inspect",
        )
        .map(|s| s.trim().to_string())
    }
}

impl Engine for Podman {
    fn name(&self) -> &'static str {
        "podman"
    }

    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    fn runtime(&self) -> &RuntimeLog {
        &self.runtime
    }

    fn run(&self, run: &Run) -> Command {
        let mut podman = self.podman();
        podman
            .args(["run", "--pull", "never", "--network", "none"])
            .args(["--cgroups", "no-conmon"])
            .args(["--cgroup-parent", self.sandbox.cgroup_parent()])
            .args(["--name", run.name]);
        if run.remove {
            podman.arg("--rm");
        }
        if run.detach {
            podman.arg("-d");
        }
        if run.tty {
            podman.arg("-it");
        }
        if let Some(bytes) = run.memory {
            podman.arg("--memory").arg(bytes.to_string());
        }
        podman.arg(self.sandbox.busybox()).args(run.args);
        podman
    }

    fn exec(&self, name: &str, args: &[&str]) -> Command {
        let mut podman = self.podman();
        podman.args(["exec", name]).args(args);
        podman
    }

    fn kill(&self, name: &str) -> Result<(), String> {
        output(self.podman().args(["kill", name]), "podman kill").map(drop)
    }

    fn stop(&self, name: &str) -> Result<(), String> {
        output(self.podman().args(["stop", "-t", "1", name]), "podman stop").map(drop)
    }

    fn remove(&self, name: &str) -> Result<(), String> {
        output(self.podman().args(["rm", name]), "podman rm").map(drop)
    }

    fn remove_force(&self, name: &str) {
        let _ = output(
            self.podman().args(["rm", "-f", "-t", "0", name]),
            "podman rm -f",
        );
    }

    fn ps(&self) -> Result<Vec<String>, String> {
        let listed = output(
            self.podman().args(["ps", "--format", "{{.Names}}"]),
            "podman ps",
        )?;
        Ok(listed.lines().map(str::to_string).collect())
    }

    fn pid(&self, name: &str) -> Result<i32, String> {
        let pid = self.inspect(name, "{{.State.Pid}}")?;
        pid.parse()
            .map_err(|_| format!("podman inspect: pid {pid}"))
    }

    fn monitor_pid(&self, name: &str) -> Result<i32, String> {
        let pid = self.inspect(name, "{{.State.ConmonPid}}")?;
        pid.parse()
            .map_err(|_| format!("podman inspect: conmon pid {pid}"))
    }

    fn id(&self, name: &str) -> Result<String, String> {
        self.inspect(name, "{{.Id}}")
    }

    fn shutdown(mut self: Box<Self>) -> Result<(), String> {
        // No daemon to stop: conmon ends with its container.
        super::check_left(&mut self.sandbox, false, "podman")
    }
}
