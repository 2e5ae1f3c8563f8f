//! config.json's `process` (and `exec --process`'s JSON, the same format):
//! what the container's program runs as, turned into chapter 8's and
//! chapter 12's pieces before anything is cloned, so a bad value fails
//! `create` at once, and applied in the last steps before `execve`.
//!
//! | config.json | what applies it |
//! |---|---|
//! | `args`, `env`, `cwd` | chapter 8: `look_path` on the env's `PATH`, `execve` |
//! | `user.uid`, `gid`, `additionalGids` | chapter 8's `switch_to`, with exactly these groups |
//! | `user.umask` | `umask(2)` |
//! | `capabilities` (five sets) | chapter 12: bounding first, then effective, permitted, inheritable, ambient |
//! | `rlimits` | chapter 12's `setrlimit` |
//! | `noNewPrivileges` | `prctl(PR_SET_NO_NEW_PRIVS)` |
//! | `oomScoreAdj` | `/proc/self/oom_score_adj` |
//! | linux `seccomp` | chapter 12's compiler: the format is the one Docker's profiles took from the specification |
//! | `terminal`, `consoleSize` | chapter 10's console socket |

use std::collections::BTreeSet;
use std::ffi::{CString, OsString};

use anyhow::{Context, Result, bail};
use ch01_fork_exec::exit::StartError;
use ch01_fork_exec::process::Command;
use ch08_command_override::exec;
use ch08_command_override::user::{self, User};
use ch12_security::capabilities::{self, CapSet};
use ch12_security::rlimits::{self, Ulimit};
use ch12_security::seccomp::{Filter, Profile};
use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp, Process};

/// The five capability sets of config.json.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capabilities {
    /// What the process and its children can ever have.
    pub bounding: CapSet,
    /// What the kernel checks.
    pub effective: CapSet,
    /// What the process may make effective.
    pub permitted: CapSet,
    /// What an exec may pass on to a program with file capabilities.
    pub inheritable: CapSet,
    /// What an exec passes on to any program.
    pub ambient: CapSet,
}

// ANCHOR: plan
/// A container's process, checked and converted.
pub struct Plan {
    /// The command (chapter 1's), `args[0]` looked up on the env's PATH.
    pub command: Command,
    /// The whole environment.
    pub env: Vec<CString>,
    /// The working directory inside the container.
    pub cwd: String,
    /// The user, with exactly config.json's groups.
    pub user: User,
    /// The umask, if config.json sets one.
    pub umask: Option<u32>,
    /// The capability sets.
    pub caps: Capabilities,
    /// The resource limits.
    pub rlimits: Vec<Ulimit>,
    /// `noNewPrivileges`.
    pub no_new_privs: bool,
    /// The seccomp filter, compiled.
    pub seccomp: Option<Filter>,
    /// `oomScoreAdj`.
    pub oom_score_adj: Option<i32>,
    /// Whether the process gets a terminal (the console socket).
    pub terminal: bool,
    /// Its first window size: rows, columns.
    pub console_size: Option<(u16, u16)>,
}
// ANCHOR_END: plan

impl Plan {
    /// Converts `process` (and the container's `seccomp`), failing with the
    /// field's name on a value minibox cannot apply.
    pub fn of(process: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<Plan> {
        let args: Vec<OsString> = process
            .args()
            .iter()
            .flatten()
            .map(OsString::from)
            .collect();
        let command = Command::new(&args).context("process.args")?;
        let env: Vec<String> = process.env().clone().unwrap_or_default();
        let spec_user = process.user();
        let mut groups = vec![spec_user.gid()];
        groups.extend(spec_user.additional_gids().iter().flatten());
        groups.dedup();
        let user = User {
            uid: spec_user.uid(),
            gid: spec_user.gid(),
            groups,
            home: String::new(),
        };
        let caps = process
            .capabilities()
            .as_ref()
            .map(capabilities_of)
            .transpose()?
            .unwrap_or_default();
        let mut ulimits = Vec::new();
        for rlimit in process.rlimits().iter().flatten() {
            let name = rlimit.typ().to_string().to_ascii_lowercase();
            let name = name.trim_start_matches("rlimit_");
            let text = format!("{name}={}:{}", rlimit.soft(), rlimit.hard());
            ulimits
                .push(rlimits::parse(&text).with_context(|| format!("process.rlimits: {text}"))?);
        }
        let seccomp = match seccomp {
            None => None,
            Some(seccomp) => Some(compile_seccomp(seccomp, caps.effective)?),
        };
        let console_size = process
            .console_size()
            .as_ref()
            .map(|size| (size.height() as u16, size.width() as u16));
        Ok(Plan {
            command,
            env: exec::c_env(&env)?,
            cwd: process.cwd().display().to_string(),
            user,
            umask: spec_user.umask(),
            caps,
            rlimits: ulimits,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            seccomp,
            oom_score_adj: process.oom_score_adj(),
            terminal: process.terminal().unwrap_or(false),
            console_size,
        })
    }

    /// Whether the program can be found, looked up now (after
    /// `pivot_root`) on the environment's PATH, as runc does before `create`
    /// returns: `docker run busybox nosuch` fails at create, not later.
    pub fn check_program(&self) -> Result<()> {
        exec::program_file(&self.command, &self.env)?;
        Ok(())
    }

    // ANCHOR: enter
    /// In the container, after `pivot_root`, as root: the last steps, in
    /// runc's order, then `execve`. Returns only why it failed. The limits
    /// and the bounding set go first, while still root; the user switch
    /// keeps the permitted set (`PR_SET_KEEPCAPS`) so that config.json
    /// decides it, not the kernel's rule for leaving root; the filter goes
    /// last, so that nothing minibox does after it needs a call it forbids.
    pub fn enter_and_exec(&self) -> anyhow::Error {
        match self.enter() {
            Ok(()) => StartError::into(exec::exec(&self.command, &self.env)),
            Err(error) => error,
        }
    }

    fn enter(&self) -> Result<()> {
        if let Some(score) = self.oom_score_adj {
            std::fs::write("/proc/self/oom_score_adj", score.to_string())
                .context("writing oom_score_adj")?;
        }
        for ulimit in &self.rlimits {
            rlimits::apply(ulimit)?;
        }
        exec::enter_workdir(std::path::Path::new(&self.cwd))?;
        if let Some(mask) = self.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        if !self.no_new_privs
            && let Some(filter) = &self.seccomp
        {
            // Without no_new_privs, a filter needs CAP_SYS_ADMIN: now.
            filter.install()?;
        }
        capabilities::limit_bounding(self.caps.bounding)?;
        nix::sys::prctl::set_keepcaps(true).context("prctl(PR_SET_KEEPCAPS)")?;
        user::switch_to(&self.user)?;
        let caps = &self.caps;
        capabilities::set_each(caps.effective, caps.permitted, caps.inheritable)?;
        capabilities::raise_ambient(caps.ambient)?;
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")?;
            if let Some(filter) = &self.seccomp {
                filter.install()?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: enter
}

/// The five sets, by capability names (`CAP_CHOWN`).
fn capabilities_of(caps: &LinuxCapabilities) -> Result<Capabilities> {
    let set = |field: &str, names: Option<BTreeSet<String>>| -> Result<CapSet> {
        let mut set = CapSet(0);
        for name in names.iter().flatten() {
            let Some(n) = capabilities::number(name) else {
                bail!("process.capabilities.{field}: unknown capability {name:?}");
            };
            set = set.with(n);
        }
        Ok(set)
    };
    let names = |caps: &Option<oci_spec::runtime::Capabilities>| {
        caps.as_ref().map(|set| {
            set.iter()
                .map(|c| format!("CAP_{c}"))
                .collect::<BTreeSet<_>>()
        })
    };
    let mut sets = Capabilities {
        bounding: set("bounding", names(caps.bounding()))?,
        effective: set("effective", names(caps.effective()))?,
        permitted: set("permitted", names(caps.permitted()))?,
        inheritable: set("inheritable", names(caps.inheritable()))?,
        ambient: set("ambient", names(caps.ambient()))?,
    };
    // The kernel raises an ambient capability only if it is permitted and
    // inheritable. runc's and crun's own default specs list ambient ones
    // with no inheritable set; both go on without them, warning. So does
    // minibox-runc, warning here, at create, not in the container's output.
    let raisable = CapSet(sets.ambient.0 & sets.inheritable.0 & sets.permitted.0);
    let dropped = CapSet(sets.ambient.0 & !raisable.0);
    if dropped != CapSet(0) {
        let names: Vec<String> = dropped.names().into_iter().collect();
        crate::log::warn(&format!(
            "process.capabilities.ambient: {} left out: an ambient capability must be permitted and inheritable",
            names.join(", ")
        ));
        sets.ambient = raisable;
    }
    // A process can only give what it has: a capability minibox-runc
    // lacks (this machine's root has no CAP_SYS_RESOURCE) makes capset(2)
    // fail with EPERM in the container, as runc's "unable to apply caps".
    // Said here, by name, before anything is made.
    let own = CapSet::all();
    for (field, wanted) in [
        ("effective", sets.effective),
        ("permitted", sets.permitted),
        ("inheritable", sets.inheritable),
        ("ambient", sets.ambient),
    ] {
        let missing = CapSet(wanted.0 & !own.0);
        if missing != CapSet(0) {
            let names: Vec<String> = missing.names().into_iter().collect();
            bail!(
                "process.capabilities.{field}: {} not in minibox-runc's own bounding set, so it cannot give them",
                names.join(", ")
            );
        }
    }
    Ok(sets)
}

// ANCHOR: seccomp
/// config.json's `linux.seccomp`, compiled with chapter 12's compiler: the
/// specification's format is the one Docker's profiles are written in, so
/// the JSON goes through chapter 12's reader as it is.
fn compile_seccomp(seccomp: &LinuxSeccomp, effective: CapSet) -> Result<Filter> {
    let json = serde_json::to_string(seccomp)?;
    let profile = Profile::parse(&json).context("linux.seccomp")?;
    Filter::compile(&profile, &effective.names()).context("linux.seccomp")
}
// ANCHOR_END: seccomp
