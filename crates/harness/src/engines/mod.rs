//! The three container engines that drive an OCI runtime, run by a test
//! with the runtime of its choice (chapter 14): podman (through conmon),
//! Docker (dockerd → containerd → containerd-shim-runc-v2) and containerd
//! alone (`ctr run`, through the same shim).
//!
//! Each engine runs in a [`Sandbox`]: every directory of its own (root,
//! state, exec root, sockets, configuration, temporary files) below the
//! test's temp dir; a network namespace and a private mount namespace of the
//! test's; busybox from the fixture registry, through a registry server
//! inside the network namespace; its containers' cgroups below the test's
//! own cgroup. The engine is told to use the runtime through a
//! [`RuntimeLog`] wrapper, so a test can check that the runtime it meant
//! was really called, and how.
//!
//! What the engines have in common for a test is the [`Engine`] trait: the
//! docker-like verbs (`run`, `exec`, `stop`, `rm`, `ps`, `kill`) and the
//! facts a leak check needs (the container's PID, its monitor's PID, the ID
//! the runtime knows it by). Each engine is stopped by PID at the end
//! ([`Engine::shutdown`]), and whatever it left is found and removed.
//!
//! ## Layout
//!
//! - [`sandbox`]: the directory, the namespaces, the registry inside, the
//!   cgroup parent, and the sweep that removes what is left.
//! - [`runtime_log`]: the wrapper runtime that logs its command lines and
//!   the bundles' `config.json`.
//! - [`podman`], [`docker`], [`containerd`]: each engine, and why each of
//!   its flags is there.
//! - [`demo`]: chapter 14's demo through podman, for the tour and the book.

pub mod containerd;
pub mod demo;
pub mod docker;
pub mod podman;
pub mod runtime_log;
pub mod sandbox;

use std::process::{Command, Output};
use std::time::Duration;

pub use containerd::Containerd;
pub use docker::Docker;
pub use podman::Podman;
pub use runtime_log::RuntimeLog;
pub use sandbox::Sandbox;

/// Whether an engine is given its runtime through a [`RuntimeLog`] wrapper
/// (tests, which check how it was called) or directly (benchmarks, which
/// time it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logging {
    /// Through the wrapper, every call logged.
    On,
    /// The runtime itself; [`RuntimeLog::calls`] stays empty.
    Off,
}

impl Logging {
    /// The runtime as an engine in `sandbox` is given it.
    pub(crate) fn runtime(
        self,
        sandbox: &Sandbox,
        runtime: &std::path::Path,
    ) -> Result<RuntimeLog, String> {
        match self {
            Logging::On => RuntimeLog::new(&sandbox.path("runtime"), runtime)
                .map_err(|e| format!("writing the runtime wrapper: {e}")),
            Logging::Off => Ok(RuntimeLog::unlogged(&sandbox.path("runtime"), runtime)),
        }
    }
}

/// What a test asks an engine to run: the flags of `docker run` that the
/// engine tests use.
#[derive(Debug, Clone, Default)]
pub struct Run<'a> {
    /// The container's name (ctr: its ID).
    pub name: &'a str,
    /// `--rm`: removed when it exits.
    pub remove: bool,
    /// `-d`: in the background.
    pub detach: bool,
    /// `-it`: a terminal, and standard input kept open.
    pub tty: bool,
    /// `--memory`, in bytes.
    pub memory: Option<u64>,
    /// The command, in the busybox image.
    pub args: &'a [&'a str],
}

/// A container engine running in a [`Sandbox`], with the runtime under test.
pub trait Engine {
    /// `podman`, `docker` or `containerd`.
    fn name(&self) -> &'static str;
    /// Where it runs.
    fn sandbox(&self) -> &Sandbox;
    /// The runtime it was given, and how it called it.
    fn runtime(&self) -> &RuntimeLog;
    /// `run` of busybox, not started yet (a test may give it a terminal).
    fn run(&self, run: &Run) -> Command;
    /// `exec` of `args` in running container `name`, not started yet.
    fn exec(&self, name: &str, args: &[&str]) -> Command;
    /// SIGKILL to container `name`, through the engine.
    fn kill(&self, name: &str) -> Result<(), String>;
    /// Stops container `name`: SIGTERM, then SIGKILL after a second.
    fn stop(&self, name: &str) -> Result<(), String>;
    /// Removes stopped container `name`.
    fn remove(&self, name: &str) -> Result<(), String>;
    /// Removes container `name` whatever state it (or its monitor) is in;
    /// for clean-up, so errors are not reported.
    fn remove_force(&self, name: &str);
    /// The names of the running containers, as the engine's `ps` lists them.
    fn ps(&self) -> Result<Vec<String>, String>;
    /// The host PID of container `name`'s first process.
    fn pid(&self, name: &str) -> Result<i32, String>;
    /// The PID of container `name`'s monitor (conmon, or the shim).
    fn monitor_pid(&self, name: &str) -> Result<i32, String>;
    /// The ID the runtime knows container `name` by.
    fn id(&self, name: &str) -> Result<String, String>;
    /// Stops the engine (by PID) and checks it left nothing: no process in
    /// its namespaces, no cgroup below its parent. What it left is removed
    /// anyway, and named in the error.
    fn shutdown(self: Box<Self>) -> Result<(), String>;
}

/// How long an engine's command may take before a test gives up on it.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Runs `command` to its end (at most [`COMMAND_LIMIT`]): its standard
/// output if it succeeded, else an error with both outputs.
pub fn output(command: &mut Command, what: &str) -> Result<String, String> {
    let out = finish(command, what)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(describe(what, &out))
    }
}

/// Runs `command` to its end (at most [`COMMAND_LIMIT`]), whatever its
/// status.
pub fn finish(command: &mut Command, what: &str) -> Result<Output, String> {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(crate::process::wait_with_deadline(
        child,
        what,
        COMMAND_LIMIT,
    ))
}

/// `what` failed: its status and outputs.
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stops a daemon we started, by PID: SIGTERM, then SIGKILL after `limit`.
/// Says whether it had to be killed.
pub(crate) fn terminate(child: &mut std::process::Child, limit: Duration) -> bool {
    // SAFETY: kill(2) of our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + limit;
    if crate::process::wait_until(child, deadline).is_some() {
        return false;
    }
    let _ = child.kill();
    let _ = child.wait();
    true
}

/// The PID of the containerd shim of container `id` among the sandbox's
/// processes: `containerd-shim-runc-v2 -namespace NS -id ID -address SOCK`.
pub(crate) fn shim_of(sandbox: &Sandbox, id: &str) -> Result<i32, String> {
    sandbox
        .processes()
        .into_iter()
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.first()
                .is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"))
                && args
                    .windows(2)
                    .any(|w| w[0] == b"-id" && w[1] == id.as_bytes())
        })
        .ok_or_else(|| format!("no shim for container {id}"))
}

/// What an engine's [`Engine::shutdown`] checks after the engine has
/// stopped: the sandbox's sweep found nothing, and no mount of the test's
/// own mount namespace lies below the sandbox's directory.
pub(crate) fn check_left(sandbox: &mut Sandbox, forced: bool, what: &str) -> Result<(), String> {
    // The monitors of removed containers exit on their own, a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !sandbox.processes().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut left = sandbox.sweep();
    let dir = sandbox.dir().display().to_string();
    left.extend(
        crate::mount_ns::mount_points()
            .into_iter()
            .filter(|point| point.starts_with(&dir))
            .map(|point| format!("mount {point}")),
    );
    if forced {
        left.push(format!("{what} had to be killed"));
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("{what} left: {}", left.join(", ")))
    }
}
