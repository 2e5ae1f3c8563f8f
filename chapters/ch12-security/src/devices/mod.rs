//! Which devices a container may use: the device cgroup.
//!
//! A device node is only a name for three things: a type (block or
//! character) and two numbers, major and minor. `/dev/vda` is "block device
//! 254:0"; whoever may call [`mknod(2)`] can give the same numbers another
//! name, anywhere, with any owner and mode. A container's root keeps
//! `CAP_MKNOD` (it is in Docker's default set), so without more,
//! `mknod /tmp/disk b 254 0` inside the container and a read of `/tmp/disk`
//! would read the host's disk: no namespace covers device numbers, and the
//! node's permissions are whatever its maker chose.
//!
//! The device cgroup is the check that covers them. At every open(2) and
//! mknod(2) of a device node, the kernel asks the process's cgroup whether
//! it may read, write or create *that type and those numbers*, whatever the
//! node is called and whoever owns it. Docker's answer ([`docker_default`]):
//! creating any node is fine, opening one is refused but for a dozen
//! harmless ones (`/dev/null`, `/dev/zero`, the terminals, ...).
//!
//! The two cgroup versions ask differently:
//!
//! - **cgroup v1** has a `devices` controller with three files
//!   ([devices.txt]): a rule written into `devices.allow` or `devices.deny`
//!   changes the cgroup's list, `devices.list` shows it. The kernel reads
//!   the rules one write at a time, with a few surprises that
//!   [`Effective`] spells out.
//! - **cgroup v2** has no such controller and no files: a program of type
//!   `BPF_PROG_TYPE_CGROUP_DEVICE`, attached to the cgroup, answers each
//!   question ([`bpf`]). It is compiled from [`Effective`], the v1 kernel's
//!   reading of the same rules, so that a container gets the same devices on
//!   either version, as runc does.
//!
//! [`mknod(2)`]: https://man7.org/linux/man-pages/man2/mknod.2.html
//! [devices.txt]: https://docs.kernel.org/admin-guide/cgroup-v1/devices.html
//!
//! ## Layout
//!
//! - this file: the rules ([`Rule`]), Docker's list and `--privileged`'s,
//!   what a list comes to ([`Effective`]), and [`apply`], which finds the
//!   cgroup's version and writes the v1 files or attaches the program.
//! - [`bpf`]: the program for cgroup v2, assembled in Rust, loaded and
//!   attached with bpf(2).

pub mod bpf;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ch05_cgroups::cgroup::{self, Cgroup};
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};

/// The type of a block device, as the kernel numbers it in its checks
/// (`DEVCG_DEV_BLOCK`, and `BPF_DEVCG_DEV_BLOCK` for a BPF program).
pub const BLOCK: u32 = 1;
/// The type of a character device (`DEVCG_DEV_CHAR`, `BPF_DEVCG_DEV_CHAR`).
pub const CHAR: u32 = 2;
/// Access: creating a node (`DEVCG_ACC_MKNOD`, `BPF_DEVCG_ACC_MKNOD`).
pub const MKNOD: u32 = 1;
/// Access: opening for reading (`DEVCG_ACC_READ`).
pub const READ: u32 = 2;
/// Access: opening for writing (`DEVCG_ACC_WRITE`).
pub const WRITE: u32 = 4;

/// One rule of a device list, as Docker's (and the OCI spec's) `devices`
/// under `linux.resources`: `c 1:3 rwm` allows (or denies) reading,
/// writing and creating the character device 1:3, `/dev/null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Allow (or deny) what it matches.
    pub allow: bool,
    /// `a` (all), `c` (character) or `b` (block). A rule for `a` sets what
    /// every device gets and forgets the rules before it (see [`Effective`]).
    pub kind: char,
    /// The major number, `None` for every one (`*`). Majors name a driver:
    /// 1 the memory devices, 5 the terminals, 8 SCSI disks, 254 virtio disks.
    pub major: Option<u32>,
    /// The minor number, `None` for every one. Minors name one device of
    /// the driver: 1:3 is `/dev/null`, 1:5 `/dev/zero`.
    pub minor: Option<u32>,
    /// Some of `r`, `w`, `m`: opening for reading, opening for writing,
    /// creating a node (mknod).
    pub access: String,
}

impl Rule {
    /// A rule, from its parts.
    pub fn new(
        allow: bool,
        kind: char,
        major: Option<u32>,
        minor: Option<u32>,
        access: &str,
    ) -> Rule {
        let access = access.to_string();
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    /// The kernel's bits for [`Rule::kind`]: [`BLOCK`], [`CHAR`], or both.
    pub fn type_bits(&self) -> u32 {
        match self.kind {
            'b' => BLOCK,
            'c' => CHAR,
            _ => BLOCK | CHAR,
        }
    }

    /// The kernel's bits for [`Rule::access`]: [`READ`], [`WRITE`], [`MKNOD`].
    pub fn access_bits(&self) -> u32 {
        let bit = |letter| match letter {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => 0,
        };
        self.access.chars().map(bit).fold(0, |bits, b| bits | b)
    }

    /// Fails on what the kernel would refuse: another type than `a`, `b`,
    /// `c`, another access than `r`, `w`, `m`, or none at all.
    pub fn check(&self) -> Result<()> {
        if !matches!(self.kind, 'a' | 'b' | 'c') {
            bail!("invalid device type {:?} in rule {self}", self.kind);
        }
        if self.access.is_empty() || self.access.chars().any(|c| !"rwm".contains(c)) {
            bail!("invalid device access {:?} in rule {self}", self.access);
        }
        // Majors have 12 bits and minors 20: both fit a BPF immediate.
        if self.major.is_some_and(|n| n >= 1 << 12) || self.minor.is_some_and(|n| n >= 1 << 20) {
            bail!("device numbers out of range in rule {self}");
        }
        Ok(())
    }
}

/// The rule as the v1 files take it and `devices.list` shows it:
/// `c 1:3 rwm`, `*` for any number.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let (major, minor) = (number(self.major), number(self.minor));
        write!(f, "{} {major}:{minor} {}", self.kind, self.access)
    }
}

// ANCHOR: docker_default
/// Docker's default list, as the cgroup receives it: Docker's own rules
/// (moby's `oci.DefaultLinuxSpec`), then the ones runc appends to every
/// container's (its `specconv.AllowedDevices`, which nobody can turn off).
/// Everything denied; then opening is allowed for a dozen character devices
/// and creating for any node. `/dev/fuse` (10:229) is denied, and stays so
/// for reading and writing, though runc's `c *:* m` after it lets a
/// container create the node; `/dev/net/tun` (10:200) is allowed.
// SIMPLIFICATION: Docker adds a rule for each `--device` and
// `--device-cgroup-rule`; minibox has neither flag.
pub fn docker_default() -> Vec<Rule> {
    let allow = |kind, major, minor| Rule::new(true, kind, Some(major), minor, "rwm");
    let mut rules = vec![
        // Docker's.
        Rule::new(false, 'a', None, None, "rwm"),
        allow('c', 1, Some(5)),                            // /dev/zero
        allow('c', 1, Some(3)),                            // /dev/null
        allow('c', 1, Some(9)),                            // /dev/urandom
        allow('c', 1, Some(8)),                            // /dev/random
        allow('c', 5, Some(0)),                            // /dev/tty
        allow('c', 5, Some(1)),                            // /dev/console
        Rule::new(false, 'c', Some(10), Some(229), "rwm"), // /dev/fuse
    ];
    rules.extend(runtime_defaults());
    rules
}

/// What runc appends to any container's rules (chapter 14's too): creating
/// any node, and the devices every container gets.
pub fn runtime_defaults() -> Vec<Rule> {
    let allow = |kind, major, minor| Rule::new(true, kind, Some(major), minor, "rwm");
    vec![
        Rule::new(true, 'c', None, None, "m"), // mknod of any node
        Rule::new(true, 'b', None, None, "m"),
        allow('c', 1, Some(3)),    // /dev/null
        allow('c', 1, Some(8)),    // /dev/random
        allow('c', 1, Some(7)),    // /dev/full
        allow('c', 5, Some(0)),    // /dev/tty
        allow('c', 1, Some(5)),    // /dev/zero
        allow('c', 1, Some(9)),    // /dev/urandom
        allow('c', 136, None),     // /dev/pts/*
        allow('c', 5, Some(2)),    // /dev/ptmx
        allow('c', 10, Some(200)), // /dev/net/tun
    ]
}
// ANCHOR_END: docker_default

/// `--privileged`: every device (`a *:* rwm`), as Docker's.
pub fn privileged() -> Vec<Rule> {
    vec![Rule::new(true, 'a', None, None, "rwm")]
}

// ANCHOR: effective
/// What a list of rules comes to: a default, and exceptions to it. This is
/// how the cgroup v1 kernel keeps a device cgroup
/// (`security/device_cgroup.c`), and `devices.list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// What a device that no exception matches gets: allowed (a deny list)
    /// or denied (an allow list, as Docker's).
    pub default_allow: bool,
    /// The exceptions, in the kernel's order; each says the opposite of the
    /// default (`allow == !default_allow`).
    pub exceptions: Vec<Rule>,
}

impl Effective {
    /// Reads `rules` in order, as the v1 kernel reads one write after the
    /// other, starting from everything denied (runc's start too):
    ///
    /// - a rule for `a` sets the default and forgets every exception;
    /// - a rule that says the opposite of the default adds an exception, or
    ///   widens the one for exactly the same type and numbers;
    /// - a rule that says the same as the default narrows the exception for
    ///   exactly the same type and numbers, and nothing else: it cannot punch
    ///   a hole in a wider one. Docker's `c 10:229` deny matches no allowed
    ///   exception, so it changes nothing.
    pub fn of(rules: &[Rule]) -> Effective {
        let mut effective = Effective {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for rule in rules {
            let same = |e: &Rule| (e.kind, e.major, e.minor) == (rule.kind, rule.major, rule.minor);
            let bits = rule.access_bits();
            if rule.kind == 'a' {
                effective.default_allow = rule.allow;
                effective.exceptions.clear();
            } else if rule.allow == effective.default_allow {
                for exception in effective.exceptions.iter_mut().filter(|e| same(e)) {
                    exception.access = access_text(exception.access_bits() & !bits);
                }
                effective.exceptions.retain(|e| !e.access.is_empty());
            } else if let Some(exception) = effective.exceptions.iter_mut().find(|e| same(e)) {
                exception.access = access_text(exception.access_bits() | bits);
            } else {
                let mut exception = rule.clone();
                exception.access = access_text(bits);
                effective.exceptions.push(exception);
            }
        }
        effective
    }

    /// Whether a process may `access` ([`READ`], [`WRITE`], [`MKNOD`], or
    /// several) the device of type `kind` ([`BLOCK`], [`CHAR`]) and numbers
    /// `major:minor`. An allow list needs one exception that allows all of
    /// `access`; a deny list refuses when any exception denies part of it.
    pub fn allows(&self, kind: u32, major: u32, minor: u32, access: u32) -> bool {
        let matches = |e: &&Rule| {
            e.type_bits() & kind != 0
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
        };
        let mut matching = self.exceptions.iter().filter(matches);
        if self.default_allow {
            !matching.any(|e| e.access_bits() & access != 0)
        } else {
            matching.any(|e| e.access_bits() & access == access)
        }
    }

    /// The lines of `devices.list`: the exceptions of an allow list, or
    /// `a *:* rwm` for a deny list (the kernel does not show its exceptions).
    pub fn list(&self) -> Vec<String> {
        match self.default_allow {
            true => vec![privileged()[0].to_string()],
            false => self.exceptions.iter().map(Rule::to_string).collect(),
        }
    }
}
// ANCHOR_END: effective

/// `r`, `w`, `m` for the bits that are set, in the kernel's order.
fn access_text(bits: u32) -> String {
    [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, letter)| letter)
        .collect()
}

// ANCHOR: apply
/// Applies `rules` to `cgroup`, before any process joins it: on cgroup v1,
/// through the `devices` controller's files; on cgroup v2, as a BPF program
/// attached to the cgroup's directory ([`bpf`]).
pub fn apply(cgroup: &dyn Cgroup, rules: &[Rule]) -> Result<()> {
    for rule in rules {
        rule.check()?;
    }
    match target(cgroup) {
        Some(Target::V1(dir)) => apply_v1(&dir, rules),
        Some(Target::V2(dir)) => bpf::attach(&dir, &bpf::Program::compile(&Effective::of(rules))),
        None if Effective::of(rules).default_allow => Ok(()), // nothing to refuse
        None => bail!(
            "this host's cgroup v1 has no devices controller: minibox cannot keep the container from opening the host's devices"
        ),
    }
}

/// On cgroup v1: everything denied first (a new cgroup starts with its
/// parent's list, and the BPF program of v2 starts from nothing), then
/// each rule, one write each, into `devices.allow` or `devices.deny`.
// SIMPLIFICATION: runc compares the wanted list with `devices.list` and
// writes only the difference, so that updating a running container never
// denies for a moment what stays allowed, and checks the list afterwards;
// minibox writes to a new cgroup that nothing runs in yet.
fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    cgroup::write(dir, "devices.deny", "a")?;
    for rule in rules {
        let file = match rule.allow {
            true => "devices.allow",
            false => "devices.deny",
        };
        cgroup::write(dir, file, &rule.to_string())?;
    }
    Ok(())
}
// ANCHOR_END: apply

/// The BPF program cgroup v2 gets for `rules`, as a listing: what the
/// kernel runs at each open and mknod of a device node (see
/// [`bpf::Program::describe`]).
pub fn describe(rules: &[Rule]) -> String {
    bpf::Program::compile(&Effective::of(rules)).describe()
}

/// Where a cgroup's device rules go.
enum Target {
    /// The cgroup's directory in the v1 `devices` hierarchy.
    V1(PathBuf),
    /// The cgroup's directory in the v2 tree.
    V2(PathBuf),
}

/// Finds it among the cgroup's directories: the one with v1's
/// `devices.allow`, or one on a cgroup2 filesystem. Neither: a v1 host that
/// does not mount the devices hierarchy.
fn target(cgroup: &dyn Cgroup) -> Option<Target> {
    let v2 = |dir: &Path| statfs(dir).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
    cgroup.paths().into_iter().find_map(|dir| {
        if dir.join("devices.allow").exists() {
            Some(Target::V1(dir))
        } else if v2(&dir) {
            Some(Target::V2(dir))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        let (allow, text) = match text.strip_prefix('!') {
            Some(rest) => (false, rest),
            None => (true, text),
        };
        let (kind, rest) = text.split_once(' ').unwrap();
        let (numbers, access) = rest.split_once(' ').unwrap();
        let (major, minor) = numbers.split_once(':').unwrap();
        let number = |n: &str| n.parse().ok();
        let kind = kind.chars().next().unwrap();
        Rule::new(allow, kind, number(major), number(minor), access)
    }

    #[test]
    fn rules_are_written_as_the_v1_files_take_them() {
        let lines: Vec<String> = docker_default().iter().map(Rule::to_string).collect();
        assert_eq!(lines[..3], ["a *:* rwm", "c 1:5 rwm", "c 1:3 rwm"]);
        assert!(lines.contains(&"c 136:* rwm".to_string()));
        assert!(lines.contains(&"b *:* m".to_string()));
        assert_eq!(privileged()[0].to_string(), "a *:* rwm");
        assert!(
            describe(&privileged()).ends_with("    ; anything else: allow\n 6: w0 = 1\n 7: exit\n")
        );
        assert_eq!(rule("!c 10:229 rwm").to_string(), "c 10:229 rwm");
        assert!(!rule("!c 10:229 rwm").allow);
    }

    #[test]
    fn dockers_list_comes_to_the_list_docker_containers_show() {
        let effective = Effective::of(&docker_default());
        assert!(!effective.default_allow);
        // What `cat /sys/fs/cgroup/devices/devices.list` says in a Docker
        // container on a v1 host: the fuse deny is gone, runc's repeats merged.
        assert_eq!(
            effective.list(),
            [
                "c 1:5 rwm",
                "c 1:3 rwm",
                "c 1:9 rwm",
                "c 1:8 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c *:* m",
                "b *:* m",
                "c 1:7 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm",
            ]
        );
        let allows = |kind, major, minor, access| effective.allows(kind, major, minor, access);
        assert!(allows(CHAR, 1, 3, READ | WRITE));
        assert!(allows(CHAR, 136, 7, READ | WRITE));
        assert!(allows(BLOCK, 254, 0, MKNOD), "mknod of any node");
        assert!(!allows(BLOCK, 254, 0, READ), "the host's disk");
        assert!(!allows(CHAR, 10, 229, READ), "fuse");
        assert!(
            allows(CHAR, 10, 229, MKNOD),
            "runc's c *:* m comes after the deny"
        );
        assert!(!allows(CHAR, 1, 1, READ), "/dev/mem");
    }

    #[test]
    fn privileged_allows_everything() {
        let effective = Effective::of(&privileged());
        assert!(effective.default_allow);
        assert_eq!(effective.list(), ["a *:* rwm"]);
        assert!(effective.allows(BLOCK, 254, 0, READ | WRITE | MKNOD));
    }

    #[test]
    fn a_rule_changes_only_the_exception_for_exactly_its_device() {
        // An allow list: a deny narrows the identical exception, and cannot
        // punch a hole in a wider one.
        let effective = Effective::of(&[
            rule("!a *:* rwm"),
            rule("c 1:3 rwm"),
            rule("c *:* r"),
            rule("!c 1:3 w"),
            rule("!c 1:5 r"),
        ]);
        assert_eq!(effective.list(), ["c 1:3 rm", "c *:* r"]);
        assert!(
            !effective.allows(CHAR, 1, 3, READ | WRITE),
            "one exception must cover it all"
        );
        assert!(
            effective.allows(CHAR, 1, 5, READ),
            "the wider c *:* r still allows it"
        );
        // A deny list: a device is refused when an exception denies part of
        // what is asked.
        let effective = Effective::of(&[rule("a *:* rwm"), rule("!c 1:3 w")]);
        assert!(effective.allows(CHAR, 1, 3, READ));
        assert!(!effective.allows(CHAR, 1, 3, READ | WRITE));
        assert!(effective.allows(BLOCK, 1, 3, WRITE));
    }

    #[test]
    fn bad_rules_are_refused_before_anything_is_written() {
        assert!(rule("c 1:3 rwx").check().is_err());
        assert!(rule("x 1:3 r").check().is_err());
        assert!(rule("c 4096:0 r").check().is_err());
        assert!(docker_default().iter().all(|r| r.check().is_ok()));
    }
}
