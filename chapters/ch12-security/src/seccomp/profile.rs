//! Docker's seccomp profile format, read and checked.
//!
//! A profile is JSON: a default action, and rules that give named system
//! calls another action, some only for certain arguments, some only for
//! containers with certain capabilities or on certain architectures:
//!
//! ```json
//! { "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
//!   "syscalls": [
//!     { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" },
//!     { "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
//!       "excludes": { "caps": ["CAP_SYS_ADMIN"] } } ] }
//! ```
//!
//! The reading is Docker's (moby's `profiles/seccomp`): unknown fields are
//! ignored, `name` is the old spelling of `names`, and a profile with neither
//! a default action nor rules means no filter. The actions and operators are
//! checked here, so a bad profile is refused when the container is created,
//! not when it starts.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::syscalls::Arch;

/// A seccomp profile in Docker's JSON format, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// What a system call no rule matches gets; `None` for a profile with
    /// neither `defaultAction` nor rules, which Docker reads as "no filter".
    pub default_action: Option<Action>,
    /// The rules, in the profile's order: where several match one call, the
    /// first decides.
    pub rules: Vec<Rule>,
}

/// What the filter answers for a system call (`SCMP_ACT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `SCMP_ACT_ALLOW`: the call runs.
    Allow,
    /// `SCMP_ACT_ERRNO`: the call does not run and fails with this errno
    /// (`errnoRet`, EPERM when absent).
    Errno(u32),
    /// `SCMP_ACT_KILL` or `SCMP_ACT_KILL_THREAD`: the thread dies of SIGSYS.
    KillThread,
    /// `SCMP_ACT_KILL_PROCESS`: the whole process dies of SIGSYS.
    KillProcess,
    /// `SCMP_ACT_TRAP`: the thread gets a SIGSYS it may handle.
    Trap,
    /// `SCMP_ACT_LOG`: the call runs and the kernel logs it.
    Log,
}

/// One entry of `syscalls`: some system calls, an action, and when it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The system calls, by name; names this architecture lacks are skipped.
    pub names: Vec<String>,
    /// What a matching call gets.
    pub action: Action,
    /// Conditions on the call's arguments (`args`); all must hold.
    pub args: Vec<Arg>,
    /// The rule counts only where all of these hold (`includes`).
    pub includes: When,
    /// The rule counts only where none of these holds (`excludes`).
    pub excludes: When,
}

/// A condition on one argument of a call (`{index, value, valueTwo, op}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    /// Which argument, 0 to 5.
    pub index: u8,
    /// The value compared with; for `MaskedEq`, the mask.
    pub value: u64,
    /// For `MaskedEq`, the value the masked argument must equal.
    pub value_two: u64,
    /// The comparison (`SCMP_CMP_*`).
    pub op: Op,
}

/// The comparisons `SCMP_CMP_*`, of the argument with `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `SCMP_CMP_EQ`
    Eq,
    /// `SCMP_CMP_NE`
    Ne,
    /// `SCMP_CMP_LT`
    Lt,
    /// `SCMP_CMP_LE`
    Le,
    /// `SCMP_CMP_GT`
    Gt,
    /// `SCMP_CMP_GE`
    Ge,
    /// `SCMP_CMP_MASKED_EQ`: `argument & value == value_two`.
    MaskedEq,
}

/// `includes` or `excludes`: facts about the container and the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct When {
    /// Capabilities (`CAP_SYS_ADMIN`) of the container.
    pub caps: Vec<String>,
    /// Architectures, by Docker's (Go's) names: `amd64`, `arm64`.
    pub arches: Vec<String>,
    /// A kernel version, `(4, 8)` for "4.8": the host's is at least that.
    pub min_kernel: Option<(u64, u64)>,
}

/// The host and container a profile is compiled for.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The architecture of the container's system calls.
    pub arch: Arch,
    /// The host's kernel version, major and minor (`uname -r`).
    pub kernel: (u64, u64),
    /// The container's capabilities, by name.
    pub caps: &'a BTreeSet<String>,
}

impl Profile {
    /// Parses a profile in Docker's JSON format. Errors are one line:
    /// the JSON's own, or the field that is wrong.
    pub fn parse(json: &str) -> Result<Profile> {
        let raw: RawProfile = serde_json::from_str(json)?;
        raw.check()
    }

    /// minibox's default profile, with the same effect as Docker's: an
    /// allowlist (see `default.json`).
    pub fn docker_default() -> Profile {
        Profile::parse(include_str!("default.json")).expect("default.json is a valid profile")
    }

    /// The rules that count for `target`, Docker's `includes`/`excludes`
    /// decided (moby's `setupSeccomp`).
    pub fn rules_for<'p>(&'p self, target: &Target) -> impl Iterator<Item = &'p Rule> {
        let target = target.clone();
        self.rules.iter().filter(move |rule| {
            let excluded = rule.excludes.caps.iter().any(|c| target.caps.contains(c))
                || rule
                    .excludes
                    .arches
                    .iter()
                    .any(|a| a == target.arch.docker_name())
                || rule.excludes.min_kernel.is_some_and(|v| target.kernel >= v);
            let included = rule.includes.caps.iter().all(|c| target.caps.contains(c))
                && (rule.includes.arches.is_empty()
                    || rule
                        .includes
                        .arches
                        .iter()
                        .any(|a| a == target.arch.docker_name()))
                && rule.includes.min_kernel.is_none_or(|v| target.kernel >= v);
            included && !excluded
        })
    }
}

/// The JSON as written: every field Docker reads, and only those.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    default_action: Option<String>,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<RawArch>>,
    syscalls: Option<Vec<RawRule>>,
}

/// SIMPLIFICATION: the architectures a profile lists (`SCMP_ARCH_X86`,
/// `SCMP_ARCH_X32` beside `SCMP_ARCH_X86_64`) get the same rules in
/// libseccomp's filter, so a 32-bit program runs in a Docker container.
/// minibox's filter knows only the machine's own calling convention: it
/// kills a process that makes a 32-bit call (see the filter's first lines).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // read for its shape: only the native architecture counts
struct RawArch {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    names: Option<Vec<String>>,
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<RawArg>>,
    includes: Option<RawWhen>,
    excludes: Option<RawWhen>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawWhen {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

impl RawProfile {
    fn check(self) -> Result<Profile> {
        if self.architectures.as_ref().is_some_and(|a| !a.is_empty())
            && self.arch_map.as_ref().is_some_and(|a| !a.is_empty())
        {
            bail!(
                "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
            );
        }
        let raw_rules = self.syscalls.unwrap_or_default();
        let default_action = match self.default_action.as_deref() {
            None | Some("") if raw_rules.is_empty() => None, // Docker: no filter at all
            None | Some("") => bail!("the seccomp profile has rules but no defaultAction"),
            Some(action) => Some(action_named(action, self.default_errno_ret)?),
        };
        let rules = raw_rules
            .into_iter()
            .map(RawRule::check)
            .collect::<Result<_>>()?;
        Ok(Profile {
            default_action,
            rules,
        })
    }
}

impl RawRule {
    fn check(self) -> Result<Rule> {
        let names = match (self.name, self.names) {
            (Some(_), Some(names)) if !names.is_empty() => bail!(
                "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"
            ),
            (Some(name), _) if !name.is_empty() => vec![name],
            (_, names) => names.unwrap_or_default(),
        };
        let action = action_named(&self.action, self.errno_ret)
            .with_context(|| format!("in the rule for {names:?}"))?;
        let args = self.args.unwrap_or_default().into_iter();
        Ok(Rule {
            args: args
                .map(RawArg::check)
                .collect::<Result<_>>()
                .with_context(|| format!("in the rule for {names:?}"))?,
            names,
            action,
            includes: RawWhen::check(self.includes)?,
            excludes: RawWhen::check(self.excludes)?,
        })
    }
}

impl RawArg {
    fn check(self) -> Result<Arg> {
        if self.index > 5 {
            bail!(
                "argument index {} is out of range: a system call has 6 arguments, 0 to 5",
                self.index
            );
        }
        let op = match self.op.as_str() {
            "SCMP_CMP_EQ" => Op::Eq,
            "SCMP_CMP_NE" => Op::Ne,
            "SCMP_CMP_LT" => Op::Lt,
            "SCMP_CMP_LE" => Op::Le,
            "SCMP_CMP_GT" => Op::Gt,
            "SCMP_CMP_GE" => Op::Ge,
            "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
            other => bail!("unknown seccomp comparison {other:?}"),
        };
        Ok(Arg {
            index: self.index as u8,
            value: self.value,
            value_two: self.value_two,
            op,
        })
    }
}

impl RawWhen {
    fn check(when: Option<RawWhen>) -> Result<When> {
        let Some(when) = when else {
            return Ok(When::default());
        };
        let min_kernel = match when.min_kernel.as_deref() {
            None | Some("") => None,
            Some(version) => Some(kernel_version(version).with_context(|| {
                format!("invalid kernel version: {version:?}, expected \"<kernel>.<major>\"")
            })?),
        };
        Ok(When {
            caps: when.caps.unwrap_or_default(),
            arches: when.arches.unwrap_or_default(),
            min_kernel,
        })
    }
}

// ANCHOR: actions
/// An action by its name in the profile. `errno` is the rule's `errnoRet`
/// (or the profile's `defaultErrnoRet`); runc makes it EPERM when absent.
fn action_named(name: &str, errno: Option<u32>) -> Result<Action> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(libc::EPERM as u32)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        // SIMPLIFICATION: runc supports both; minibox has no tracer to
        // attach and no listener to hand notifications to.
        "SCMP_ACT_TRACE" => {
            bail!("seccomp action SCMP_ACT_TRACE is not supported: minibox attaches no tracer")
        }
        "SCMP_ACT_NOTIFY" => {
            bail!("seccomp action SCMP_ACT_NOTIFY is not supported: minibox has no listener")
        }
        other => bail!("unknown seccomp action {other:?}"),
    })
}
// ANCHOR_END: actions

/// "4.8" → (4, 8). Docker takes exactly two numbers, and not "0.0".
fn kernel_version(text: &str) -> Result<(u64, u64)> {
    let Some((major, minor)) = text.split_once('.') else {
        bail!("no minor version");
    };
    let version = (major.parse()?, minor.parse()?);
    if version == (0, 0) {
        bail!("version cannot be 0.0");
    }
    Ok(version)
}

/// The running kernel's version: "6.18.4-arch1" → (6, 18).
pub fn running_kernel() -> Result<(u64, u64)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .context("reading /proc/sys/kernel/osrelease")?;
    let number = |part: Option<&str>| -> Option<u64> {
        let digits: String = part?.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let mut parts = release.trim().split('.');
    match (number(parts.next()), number(parts.next())) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => bail!("cannot read the kernel's version in {:?}", release.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        format!("{:#}", Profile::parse(json).unwrap_err())
    }

    #[test]
    fn dockers_format_is_read_with_its_arch_map_conditions_and_arguments() {
        let profile = Profile::parse(
            r#"{
                "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "archMap": [{ "architecture": "SCMP_ARCH_X86_64", "subArchitectures": null }],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"], "unknownField": { "ignored": true },
                "syscalls": [
                    { "names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "ignored" },
                    { "name": "kill", "action": "SCMP_ACT_KILL_PROCESS" },
                    { "names": ["clone"], "action": "SCMP_ACT_ERRNO",
                      "args": [{ "index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" },
                               { "index": 2, "value": 7, "op": "SCMP_CMP_GE" }],
                      "includes": { "caps": ["CAP_SYS_ADMIN"], "arches": ["amd64"], "minKernel": "4.8" },
                      "excludes": { "caps": ["CAP_BPF"] } } ] }"#,
        )
        .unwrap();
        assert_eq!(profile.default_action, Some(Action::Errno(1)));
        assert_eq!(profile.rules[0].names, ["read"]);
        assert_eq!(profile.rules[1].names, ["kill"], "the old spelling, name");
        assert_eq!(profile.rules[1].action, Action::KillProcess);
        let clone = &profile.rules[2];
        assert_eq!(
            clone.action,
            Action::Errno(1),
            "EPERM when errnoRet is absent"
        );
        let mask = Arg {
            index: 0,
            value: 0x7E02_0000,
            value_two: 0,
            op: Op::MaskedEq,
        };
        let ge = Arg {
            index: 2,
            value: 7,
            value_two: 0,
            op: Op::Ge,
        };
        assert_eq!(clone.args, [mask, ge]);
        assert_eq!(clone.includes.caps, ["CAP_SYS_ADMIN"]);
        assert_eq!(clone.includes.arches, ["amd64"]);
        assert_eq!(clone.includes.min_kernel, Some((4, 8)));
        assert_eq!(clone.excludes.caps, ["CAP_BPF"]);
    }

    #[test]
    fn every_operator_and_action_has_its_name() {
        let ops = ["EQ", "NE", "LT", "LE", "GT", "GE", "MASKED_EQ"];
        let expected = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::MaskedEq];
        for (name, op) in ops.iter().zip(expected) {
            let json = format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["read"],
                    "action": "SCMP_ACT_LOG", "args": [{{"index": 5, "value": 1, "op": "SCMP_CMP_{name}"}}]}}]}}"#
            );
            assert_eq!(Profile::parse(&json).unwrap().rules[0].args[0].op, op);
        }
        for (name, action) in [
            ("ALLOW", Action::Allow),
            ("ERRNO", Action::Errno(1)),
            ("KILL", Action::KillThread),
            ("KILL_THREAD", Action::KillThread),
            ("KILL_PROCESS", Action::KillProcess),
            ("TRAP", Action::Trap),
            ("LOG", Action::Log),
        ] {
            let json = format!(r#"{{"defaultAction": "SCMP_ACT_{name}"}}"#);
            assert_eq!(Profile::parse(&json).unwrap().default_action, Some(action));
        }
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}"#;
        assert_eq!(
            Profile::parse(json).unwrap().default_action,
            Some(Action::Errno(38))
        );
    }

    #[test]
    fn a_malformed_profile_is_refused_in_one_line() {
        let cases = [
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW","#,
                "EOF while parsing a value at line 1 column 35",
            ),
            (
                r#"{"syscalls": [{"names": "read"}]}"#,
                "invalid type: string \"read\", expected a sequence",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_FOO"}"#,
                "unknown seccomp action \"SCMP_ACT_FOO\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_TRACE"}]}"#,
                "in the rule for [\"ptrace\"]: seccomp action SCMP_ACT_TRACE is not supported: minibox attaches no tracer",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
                "argument index 6 is out of range",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_ABOUT"}]}]}"#,
                "unknown seccomp comparison \"SCMP_CMP_ABOUT\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "name": "write", "action": "SCMP_ACT_ALLOW"}]}"#,
                "both 'name' and 'names' are specified",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
                "both 'architectures' and 'archMap' are specified",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8.1"}}]}"#,
                "invalid kernel version: \"4.8.1\", expected \"<kernel>.<major>\"",
            ),
            (
                r#"{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "has rules but no defaultAction",
            ),
        ];
        for (json, expected) in cases {
            let message = error(json);
            assert!(message.contains(expected), "{json}\n  gave: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn a_profile_with_no_default_and_no_rules_asks_for_no_filter() {
        assert_eq!(Profile::parse("{}").unwrap().default_action, None);
    }

    #[test]
    fn includes_and_excludes_are_decided_by_capability_architecture_and_kernel() {
        let profile = Profile::docker_default();
        let allowed = |arch, kernel, caps: &[&str]| -> BTreeSet<String> {
            let caps = caps.iter().map(|c| c.to_string()).collect();
            let target = Target {
                arch,
                kernel,
                caps: &caps,
            };
            let rules = profile
                .rules_for(&target)
                .filter(|r| r.action == Action::Allow);
            rules.flat_map(|r| r.names.clone()).collect()
        };
        let plain = allowed(Arch::X86_64, (6, 18), &[]);
        assert!(plain.contains("read") && plain.contains("ptrace") && plain.contains("arch_prctl"));
        assert!(!plain.contains("mount") && !plain.contains("open_by_handle_at"));
        assert!(
            !allowed(Arch::X86_64, (4, 4), &[]).contains("ptrace"),
            "minKernel 4.8"
        );
        assert!(
            !allowed(Arch::Aarch64, (6, 18), &[]).contains("arch_prctl"),
            "amd64 only"
        );
        let admin = allowed(Arch::X86_64, (6, 18), &["CAP_SYS_ADMIN"]);
        assert!(admin.contains("mount") && admin.contains("unshare") && admin.contains("clone3"));
        let dac = allowed(Arch::X86_64, (6, 18), &["CAP_DAC_READ_SEARCH"]);
        assert!(dac.contains("open_by_handle_at"));
    }

    #[test]
    fn kernel_versions_are_read_as_docker_reads_them() {
        assert_eq!(kernel_version("4.8").unwrap(), (4, 8));
        assert!(kernel_version("4").is_err() && kernel_version("0.0").is_err());
        let (major, _) = running_kernel().unwrap();
        assert!(major >= 3, "{major}");
    }
}
