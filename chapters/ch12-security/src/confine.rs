//! A container's confinement: every layer of this chapter, at its place in
//! chapter 10's start (its `hardening` module names the places).
//!
//! In the monitor, on the new cgroup: the device rules. In the container,
//! after `pivot_root`: the masked and read-only paths, a read-only root.
//! Around the switch of user: the limits and the bounding set while still
//! root, then the permitted and effective sets, no_new_privs and the seccomp
//! filter, the last step before exec.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use ch05_cgroups::cgroup::Cgroup;
use ch08_command_override::exec::AroundSwitch;
use ch08_command_override::user::User;
use ch10_runtime::hardening::{self, Confinement};

use crate::capabilities::{self, CapSet};
use crate::cli::SecurityArgs;
use crate::devices::{self, Rule};
use crate::paths;
use crate::rlimits::{self, Ulimit};
use crate::seccomp::{Filter, Profile};

/// Makes this chapter's confinement the one every start and `exec` of this
/// process applies.
pub fn install() {
    hardening::install(|extra| {
        let args = SecurityArgs::from_words(extra)?;
        Ok(Box::new(Hardened::new(&args)?))
    });
}

// ANCHOR: options
/// `--security-opt`, understood.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecurityOptions {
    /// `no-new-privileges`.
    pub no_new_privs: bool,
    /// The seccomp profile: Docker's default (`None`), none at all
    /// (`seccomp=unconfined`), or one given as a file, kept as its text.
    pub seccomp: Option<Seccomp>,
}

/// `seccomp=...`.
#[derive(Debug, Clone, PartialEq)]
pub enum Seccomp {
    /// `seccomp=unconfined`.
    Unconfined,
    /// A profile in Docker's format, its text.
    Profile(String),
}

impl SecurityOptions {
    /// Parses the `--security-opt` values, as Docker does: `KEY=VALUE` (or
    /// the old `KEY:VALUE`), `no-new-privileges[=true|false]`.
    pub fn parse(options: &[String]) -> Result<SecurityOptions> {
        let mut parsed = SecurityOptions::default();
        for option in options {
            if option == "no-new-privileges" {
                parsed.no_new_privs = true;
                continue;
            }
            let Some((key, value)) = option.split_once('=').or_else(|| option.split_once(':'))
            else {
                bail!("Invalid --security-opt: {option:?}");
            };
            match key {
                "no-new-privileges" => {
                    parsed.no_new_privs = value
                        .parse()
                        .map_err(|_| anyhow::anyhow!("invalid --security-opt 2: {option:?}"))?
                }
                "seccomp" if value == "unconfined" => parsed.seccomp = Some(Seccomp::Unconfined),
                "seccomp" => parsed.seccomp = Some(Seccomp::Profile(value.to_string())),
                "apparmor" => refuse_lsm("AppArmor", apparmor_enabled(), value, "unconfined")?,
                "label" => refuse_lsm("SELinux", selinux_enabled(), value, "disable")?,
                _ => bail!("invalid --security-opt 2: {option:?}"),
            }
        }
        Ok(parsed)
    }
}
// ANCHOR_END: options

/// An AppArmor profile or SELinux label: refused by name where the host has
/// no such security module. minibox applies neither.
// SIMPLIFICATION: Docker loads its own AppArmor profile (`docker-default`)
// and labels processes for SELinux where the host has them; minibox applies
// no LSM at all, and says so when asked for one.
fn refuse_lsm(module: &str, enabled: bool, value: &str, off: &str) -> Result<()> {
    if value == off {
        return Ok(()); // nothing to apply anyway
    }
    match enabled {
        false => bail!("{module} is not enabled on this host: cannot apply {value:?}"),
        true => {
            bail!("{module} is enabled on this host, but minibox does not apply {module} profiles")
        }
    }
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|text| text.trim() == "Y")
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

// ANCHOR: checked
/// `run`'s and `create`'s security flags checked, before anything is made
/// (Docker's errors, 125), and a seccomp profile given as a file read in:
/// the record keeps its text, as Docker's client sends the profile and not
/// its path, so a later `start` does not depend on the file.
pub fn checked(args: &SecurityArgs) -> Result<SecurityArgs> {
    let mut args = args.clone();
    for option in &mut args.security_opt {
        let Some(path) = option.strip_prefix("seccomp=") else {
            continue;
        };
        if path == "unconfined" || path.trim_start().starts_with('{') {
            continue;
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("opening seccomp profile ({path}) failed: {e}"))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("compacting json for seccomp profile ({path}) failed: {e}")
        })?;
        *option = format!("seccomp={value}");
    }
    Hardened::new(&args)?; // every check of a start, now
    Ok(args)
}
// ANCHOR_END: checked

// ANCHOR: hardened
/// What one container is confined with, decided before it is cloned.
pub struct Hardened {
    /// Its capabilities: bounding, permitted and effective for root.
    pub caps: CapSet,
    /// `no-new-privileges`.
    pub no_new_privs: bool,
    /// Its seccomp filter, compiled; `None` when unconfined.
    pub seccomp: Option<Filter>,
    /// `--privileged`: no masked paths, /sys writable.
    pub privileged: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// Its device rules.
    pub devices: Vec<Rule>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
}

impl Hardened {
    /// Decides everything from the flags (the defaults are Docker's).
    pub fn new(args: &SecurityArgs) -> Result<Hardened> {
        let options = SecurityOptions::parse(&args.security_opt)?;
        let caps = match args.privileged {
            true => CapSet::all(),
            false => capabilities::tweak(&args.cap_add, &args.cap_drop)?,
        };
        let profile = match (&options.seccomp, args.privileged) {
            (Some(Seccomp::Unconfined), _) | (None, true) => None,
            (Some(Seccomp::Profile(text)), _) => {
                Some(Profile::parse(text).context("Decoding seccomp profile failed")?)
            }
            (None, false) => Some(Profile::docker_default()),
        };
        let seccomp = profile
            .map(|profile| compiled(&profile, caps))
            .transpose()?;
        Ok(Hardened {
            caps,
            no_new_privs: options.no_new_privs,
            seccomp,
            privileged: args.privileged,
            read_only: args.read_only,
            devices: match args.privileged {
                true => devices::privileged(),
                false => devices::docker_default(),
            },
            ulimits: args
                .ulimit
                .iter()
                .map(|u| rlimits::parse(u))
                .collect::<Result<_>>()?,
        })
    }
}
// ANCHOR_END: hardened

/// `profile` compiled for a container with `caps`, once per process: `run`
/// checks its flags (which compiles the filter) and then starts the
/// container with the same ones.
fn compiled(profile: &Profile, caps: CapSet) -> Result<Filter> {
    static LAST: Mutex<Option<(Profile, CapSet, Filter)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((p, c, filter)) = last.as_ref()
        && (p, *c) == (profile, caps)
    {
        return Ok(filter.clone());
    }
    let filter = Filter::compile(profile, &caps.names())?;
    *last = Some((profile.clone(), caps, filter.clone()));
    Ok(filter)
}

// ANCHOR: in_root
impl Confinement for Hardened {
    fn on_cgroup(&self, cgroup: &dyn Cgroup) -> Result<()> {
        devices::apply(cgroup, &self.devices)
    }

    fn in_root(&self) -> Result<()> {
        if self.privileged {
            // Writable /sys, and nothing masked, as Docker's --privileged.
            paths::writable_sys()?;
        } else {
            for path in paths::MASKED {
                paths::mask(path).with_context(|| format!("masking {path}"))?;
            }
            for path in paths::READ_ONLY {
                paths::make_read_only(path).with_context(|| format!("making {path} read-only"))?;
            }
        }
        if self.read_only {
            paths::remount(Path::new("/"), true).context("making the root read-only")?;
        }
        Ok(())
    }

    fn before_join(&self) -> Result<()> {
        // Nothing in the container may open this process's files (its
        // /proc/PID/exe is minibox) while it joins: a process that is not
        // dumpable is off limits to anyone without CAP_SYS_PTRACE.
        nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")?;
        Ok(())
    }
}
// ANCHOR_END: in_root

// ANCHOR: around_switch
impl AroundSwitch for Hardened {
    fn before_switch(&self, _user: &User) -> Result<()> {
        for ulimit in &self.ulimits {
            rlimits::apply(ulimit)?;
        }
        if !self.no_new_privs
            && let Some(filter) = &self.seccomp
        {
            // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN,
            // which is about to go: now, then (runc's order).
            filter.install()?;
        }
        capabilities::limit_bounding(self.caps)
    }

    fn after_switch(&self, user: &User) -> Result<()> {
        // Root keeps the set; any other user keeps none (the switch cleared
        // its permitted and effective sets; this clears inheritable too).
        let set = if user.uid == 0 { self.caps } else { CapSet(0) };
        capabilities::set(set)?;
        check_working_directory()?;
        close_on_exec_from(3)?;
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")?;
            if let Some(filter) = &self.seccomp {
                filter.install()?; // the last step before exec
            }
        }
        Ok(())
    }
}
// ANCHOR_END: around_switch

// ANCHOR: leaks
/// The working directory must be inside the container's root. runc once
/// leaked a descriptor of the host's cgroupfs, and `-w /proc/self/fd/7`
/// started the container in the host's filesystem (CVE-2024-21626); the
/// kernel then shows the directory as unreachable.
fn check_working_directory() -> Result<()> {
    let cwd = nix::unistd::getcwd().context("getcwd")?;
    if !cwd.starts_with("/") {
        bail!(
            "current working directory is outside of container mount namespace root -- possible container breakout detected"
        );
    }
    Ok(())
}

/// Marks every descriptor from `first` on close-on-exec, so that none of
/// minibox's reaches the container's program, whatever opened it (chapter
/// 14's `--preserve-fds` keeps a few below `first`).
pub fn close_on_exec_from(first: u32) -> Result<()> {
    // SAFETY: close_range(2) with integer arguments; with CLOSE_RANGE_CLOEXEC
    // it closes nothing now, it only sets the flag.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if done != 0 {
        bail!("close_range: {}", std::io::Error::last_os_error());
    }
    Ok(())
}
// ANCHOR_END: leaks
