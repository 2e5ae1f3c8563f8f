//! Hooks: programs config.json names, which the runtime runs at fixed points
//! of the lifecycle with the container's state as JSON on their stdin.
//! Engines use them to do what must happen between two of the runtime's
//! steps: Docker's `libnetwork-setkey` hook joins the new network namespace
//! to its network before the user's program runs; NVIDIA's toolkit mounts the
//! GPU's devices and libraries.
//!
//! | kind | when | in which namespaces |
//! |---|---|---|
//! | `prestart` (deprecated), `createRuntime` | during `create`, once the namespaces exist, before `pivot_root` | the runtime's |
//! | `createContainer` | right after, before `pivot_root` | the container's |
//! | `startContainer` | during `start`, before the user's program | the container's |
//! | `poststart` | after `start` has released the program | the runtime's |
//! | `poststop` | during `delete` | the runtime's |
//!
//! A failing hook before the program runs fails the operation (and the
//! container is taken apart); a failing `poststart` or `poststop` hook is
//! only logged, as the specification says.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::Hook;

// ANCHOR: run
/// Runs `hooks` (of `kind`, for the messages) in order, each with `state`
/// (the container's state JSON) on its stdin; fails at the first hook that
/// fails or outlives its timeout.
pub fn run(kind: &str, hooks: &Option<Vec<Hook>>, state: &[u8]) -> Result<()> {
    for hook in hooks.iter().flatten() {
        run_one(hook, state).with_context(|| format!("{kind} hook {}", hook.path().display()))?;
    }
    Ok(())
}

fn run_one(hook: &Hook, state: &[u8]) -> Result<()> {
    let mut command = Command::new(hook.path());
    // args[0] is the program's own name, as in execve(2).
    if let Some((first, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        use std::os::unix::process::CommandExt;
        command.arg0(first).args(rest);
    }
    command.env_clear();
    for pair in hook.env().iter().flatten() {
        if let Some((key, value)) = pair.split_once('=') {
            command.env(key, value);
        }
    }
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = command.spawn().context("starting it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes it: not an error.
        let _ = stdin.write_all(state);
    }
    let timeout = hook.timeout().map(|s| Duration::from_secs(s.max(1) as u64));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for it")? {
            break status;
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", timeout.unwrap_or_default().as_secs());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if !status.success() {
        bail!("it failed: {status}");
    }
    Ok(())
}
// ANCHOR_END: run
