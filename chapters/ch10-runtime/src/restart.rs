//! `--restart`: what a container's monitor does when the container ends, by
//! Docker's policies.
//!
//! - `no` (the default): nothing.
//! - `always`: start it again, whatever its exit status, unless someone
//!   stopped it (`stop`, `kill`, `rm -f`): a manual stop wins until the next
//!   manual `start`.
//! - `unless-stopped`: the same here. (Docker tells the two apart when its
//!   daemon restarts: `always` containers come back, `unless-stopped` ones
//!   that were stopped do not. minibox has no daemon to restart.)
//! - `on-failure[:N]`: only after a non-zero exit status, at most N times.
//!
//! The monitor decides once the container's end is recorded and its network
//! and cgroup are taken apart, so the next start finds its ports free. It
//! does not start the container itself: it schedules a detached `minibox
//! start` after a delay that doubles with each restart (100 ms, 200 ms,
//! 400 ms, ... at most a minute, Docker's back-off), so a container that
//! fails at once does not spin the machine. Meanwhile `ps` says
//! `Restarting (N) ... ago`.

use std::ffi::CString;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ch01_fork_exec::process::{self, Forked};
use serde::{Deserialize, Serialize};

/// A restart policy, checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    /// `no`.
    #[default]
    No,
    /// `always`.
    Always,
    /// `unless-stopped`.
    UnlessStopped,
    /// `on-failure[:N]`; 0 means no limit.
    OnFailure {
        /// At most this many restarts (0: no limit).
        max_retries: u32,
    },
}

// ANCHOR: parse
impl FromStr for Policy {
    type Err = anyhow::Error;

    /// Docker's grammar, `NAME[:COUNT]`, with its messages.
    fn from_str(text: &str) -> Result<Policy> {
        let (name, count) = match text.split_once(':') {
            Some(("", _)) => {
                bail!("invalid restart policy format: no policy provided before colon")
            }
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        let count = match count.filter(|c| !c.is_empty()) {
            Some(count) => Some(count.parse::<i64>().map_err(|_| {
                anyhow::anyhow!(
                    "invalid restart policy format: maximum retry count must be an integer"
                )
            })?),
            None => None,
        };
        let policy = match name {
            "no" | "" => Policy::No,
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            "on-failure" => match count {
                Some(n) if n < 0 => {
                    bail!("invalid restart policy: maximum retry count cannot be negative")
                }
                n => Policy::OnFailure {
                    max_retries: u32::try_from(n.unwrap_or(0)).unwrap_or(u32::MAX),
                },
            },
            other => bail!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ),
        };
        if count.is_some_and(|n| n != 0) && !matches!(policy, Policy::OnFailure { .. }) {
            bail!("invalid restart policy: maximum retry count can only be used with 'on-failure'");
        }
        Ok(policy)
    }
}
// ANCHOR_END: parse

impl fmt::Display for Policy {
    /// Docker's name, as `inspect` shows it in `RestartPolicy.Name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::No => "no",
            Policy::Always => "always",
            Policy::UnlessStopped => "unless-stopped",
            Policy::OnFailure { .. } => "on-failure",
        })
    }
}

// ANCHOR: decide
impl Policy {
    /// Whether a container that ended with `exit_code`, restarted `count`
    /// times so far, is started again; never after a manual stop.
    pub fn restarts(self, exit_code: i32, count: u32, manually_stopped: bool) -> bool {
        if manually_stopped {
            return false;
        }
        match self {
            Policy::No => false,
            Policy::Always | Policy::UnlessStopped => true,
            Policy::OnFailure { max_retries } => {
                exit_code != 0 && (max_retries == 0 || count < max_retries)
            }
        }
    }
}

/// How long to wait before restart number `count` (from 1): 100 ms,
/// doubled each time, at most a minute.
pub fn delay(count: u32) -> Duration {
    let doublings = count.saturating_sub(1).min(10);
    Duration::from_millis(100 << doublings).min(Duration::from_secs(60))
}
// ANCHOR_END: decide

// ANCHOR: schedule
/// Starts, detached (its own session, nobody's child), a process that waits
/// `delay`, then runs `minibox start --restarting ID`, which starts the
/// container only if it still waits to be restarted (a `stop` or `rm`
/// meanwhile wins). Called by the monitor, which is minibox.
pub fn schedule(id: &str, delay: Duration) -> Result<()> {
    let exe = std::fs::read_link("/proc/self/exe").context("finding minibox's binary")?;
    match process::fork()? {
        Forked::Parent { child } => {
            process::wait_for(child)?; // the first child forks and exits
            Ok(())
        }
        Forked::Child => {
            let _ = nix::unistd::setsid();
            if let Ok(Forked::Child) = process::fork() {
                std::thread::sleep(delay);
                let exe = CString::new(exe.into_os_string().into_encoded_bytes());
                let id = CString::new(id);
                if let (Ok(exe), Ok(id)) = (exe, id) {
                    let args = [c"minibox", c"start", c"--restarting", id.as_c_str()];
                    let _ = nix::unistd::execv(&exe, &args);
                }
                process::exit_now(1)
            }
            process::exit_now(0)
        }
    }
}
// ANCHOR_END: schedule

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        text.parse::<Policy>().unwrap_err().to_string()
    }

    #[test]
    fn policies_parse_with_dockers_messages() {
        assert_eq!("no".parse::<Policy>().unwrap(), Policy::No);
        assert_eq!("always".parse::<Policy>().unwrap(), Policy::Always);
        assert_eq!(
            "unless-stopped".parse::<Policy>().unwrap(),
            Policy::UnlessStopped
        );
        assert_eq!(
            "on-failure:3".parse::<Policy>().unwrap(),
            Policy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            "on-failure".parse::<Policy>().unwrap(),
            Policy::OnFailure { max_retries: 0 }
        );
        assert!(
            error("sometimes").starts_with("invalid restart policy: unknown policy 'sometimes'")
        );
        assert_eq!(
            error("always:3"),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        assert_eq!(
            error("on-failure:x"),
            "invalid restart policy format: maximum retry count must be an integer"
        );
        assert_eq!(
            error("on-failure:-1"),
            "invalid restart policy: maximum retry count cannot be negative"
        );
        assert_eq!(
            error(":3"),
            "invalid restart policy format: no policy provided before colon"
        );
    }

    #[test]
    fn who_restarts_and_when() {
        let on_failure = Policy::OnFailure { max_retries: 2 };
        assert!(on_failure.restarts(1, 0, false));
        assert!(on_failure.restarts(1, 1, false));
        assert!(!on_failure.restarts(1, 2, false), "at most 2 restarts");
        assert!(
            !on_failure.restarts(0, 0, false),
            "success is not a failure"
        );
        assert!(Policy::Always.restarts(0, 100, false));
        assert!(!Policy::Always.restarts(0, 0, true), "a manual stop wins");
        assert!(!Policy::No.restarts(1, 0, false));
        assert_eq!(delay(1), Duration::from_millis(100));
        assert_eq!(delay(4), Duration::from_millis(800));
        assert_eq!(delay(30), Duration::from_secs(60));
    }
}
