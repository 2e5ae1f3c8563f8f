//! Capabilities: root's power, cut into 41 pieces.
//!
//! The kernel does not ask "is this root?" before a privileged operation: it
//! asks whether the process holds the capability for it (`CAP_SYS_ADMIN` to
//! mount, `CAP_SYS_MODULE` to load a module, `CAP_NET_ADMIN` to change the
//! network). Root holds all of them, so a container's root can do all of
//! that, namespaces or not. Docker keeps 14, enough for what programs in
//! images do as root (change owners, bind port 80, switch users), and takes
//! the rest away.
//!
//! A process has five sets (capabilities(7)): **bounding** (the most it can
//! ever have, even by executing a setuid or file-capability program),
//! **permitted** (what it may use), **effective** (what the kernel checks),
//! **inheritable** and **ambient** (what passes through an exec to a
//! program that is not root). Docker puts its set in bounding, permitted and
//! effective, and leaves inheritable and ambient empty: runc once filled
//! inheritable too, and a program with inheritable file capabilities then
//! gained them in a container (CVE-2022-29162).

use std::collections::BTreeSet;
use std::fmt;

use anyhow::{Context, Result, bail};

// ANCHOR: names
/// Every capability the kernel knows (5.9 and later), by number.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default set: what a container's root keeps.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];
// ANCHOR_END: names

/// A set of capabilities, as the kernel keeps it: bit N is capability N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Every capability minibox itself may give: those of its own bounding
    /// set (every one the kernel has, for a root with nothing taken away;
    /// fewer where minibox runs with less, as in this project's VMs, which
    /// lack `CAP_SYS_RESOURCE`). Docker's `--privileged` means the same.
    pub fn all() -> CapSet {
        own_bounding().unwrap_or_else(|_| {
            let last = last_cap().unwrap_or(NAMES.len() as u32 - 1);
            CapSet(if last >= 63 {
                u64::MAX
            } else {
                (1 << (last + 1)) - 1
            })
        })
    }

    /// Docker's default set.
    pub fn docker_default() -> CapSet {
        DOCKER_DEFAULT
            .iter()
            .map(|name| number(name).expect("a known name"))
            .fold(CapSet(0), |set, n| set.with(n))
    }

    /// This set with capability `n`.
    pub fn with(self, n: u32) -> CapSet {
        CapSet(self.0 | (1 << n))
    }

    /// This set without capability `n`.
    pub fn without(self, n: u32) -> CapSet {
        CapSet(self.0 & !(1 << n))
    }

    /// Whether capability `n` is in the set.
    pub fn has(self, n: u32) -> bool {
        n < 64 && self.0 & (1 << n) != 0
    }

    /// The names in the set (Docker's, `CAP_CHOWN`), for seccomp's rules
    /// that depend on a capability.
    pub fn names(self) -> BTreeSet<String> {
        (0..NAMES.len() as u32)
            .filter(|&n| self.has(n))
            .map(|n| NAMES[n as usize].to_string())
            .collect()
    }
}

/// As `/proc/PID/status` shows a set: 16 hexadecimal digits.
impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The number of capability `name`, Docker's spelling: any case, with or
/// without `CAP_`.
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = match upper.starts_with("CAP_") {
        true => upper,
        false => format!("CAP_{upper}"),
    };
    NAMES.iter().position(|n| *n == full).map(|n| n as u32)
}

// ANCHOR: tweak
/// The set a container gets from `--cap-add` and `--cap-drop` over Docker's
/// default, by Docker's rules: `ALL` in `--cap-add` starts from every
/// capability (then drops), `ALL` in `--cap-drop` from none (then adds);
/// otherwise the drops, then the adds, so a capability in both is kept.
/// An unknown name is Docker's error.
pub fn tweak(add: &[String], drop: &[String]) -> Result<CapSet> {
    let add = parse_list(add).context("invalid CapAdd")?;
    let drop = parse_list(drop).context("invalid CapDrop")?;
    let all = CapSet::all();
    let mut set = match (add.all, drop.all) {
        (true, _) => all,
        (false, true) => CapSet(0),
        (false, false) => CapSet::docker_default(),
    };
    if !add.all {
        for &n in &drop.caps {
            set = set.without(n);
        }
    }
    for &n in &add.caps {
        set = set.with(n);
    }
    if add.all {
        for &n in &drop.caps {
            set = set.without(n);
        }
    }
    Ok(CapSet(set.0 & all.0))
}
// ANCHOR_END: tweak

/// A `--cap-add` or `--cap-drop` list: `ALL`, and the numbers of the others.
struct List {
    all: bool,
    caps: Vec<u32>,
}

fn parse_list(names: &[String]) -> Result<List> {
    let mut list = List {
        all: false,
        caps: Vec::new(),
    };
    for name in names {
        if name.eq_ignore_ascii_case("ALL") {
            list.all = true;
            continue;
        }
        match number(name) {
            Some(n) => list.caps.push(n),
            None => {
                let upper = name.to_ascii_uppercase();
                let shown = match upper.starts_with("CAP_") {
                    true => upper,
                    false => format!("CAP_{upper}"),
                };
                bail!("unknown capability: {shown:?}")
            }
        }
    }
    Ok(list)
}

/// This process's bounding set, from `/proc/self/status`.
fn own_bounding() -> Result<CapSet> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapBnd:"))
        .context("no CapBnd in /proc/self/status")?;
    Ok(CapSet(u64::from_str_radix(hex.trim(), 16)?))
}

/// The highest capability this kernel knows.
fn last_cap() -> Result<u32> {
    let text = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?;
    Ok(text.trim().parse()?)
}

// ANCHOR: drop_bounding
/// Takes every capability not in `keep` out of the bounding set, for good:
/// nothing this process or its children execute can get it back. Needs
/// `CAP_SETPCAP`, so it comes first, while the process is still root.
pub fn limit_bounding(keep: CapSet) -> Result<()> {
    let last = last_cap()?;
    for n in 0..=last {
        if keep.has(n) {
            continue;
        }
        // SAFETY: prctl(2) with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) } != 0 {
            let errno = std::io::Error::last_os_error();
            bail!("dropping {} from the bounding set: {errno}", name_of(n));
        }
    }
    // And the ambient set, which an exec would pass on, emptied.
    // SAFETY: prctl(2) with integer arguments only.
    let cleared = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if cleared != 0 {
        bail!(
            "clearing the ambient capabilities: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
// ANCHOR_END: drop_bounding

// ANCHOR: set
/// Sets the permitted and effective sets to `set`, and the inheritable set
/// to nothing, with `capset(2)` (a process may only ever shrink them).
pub fn set(set: CapSet) -> Result<()> {
    set_each(set, set, CapSet(0))
}

/// Sets the effective, permitted and inheritable sets one by one: chapter
/// 14's config.json names each (runc's order: this, then the ambient set).
pub fn set_each(effective: CapSet, permitted: CapSet, inheritable: CapSet) -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522; // 64-bit sets, as two halves
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| Data {
        effective: (effective.0 >> shift) as u32,
        permitted: (permitted.0 >> shift) as u32,
        inheritable: (inheritable.0 >> shift) as u32,
    };
    let data = [half(0), half(32)];
    // SAFETY: capset(2) reads the header and two data structures of the
    // layout _LINUX_CAPABILITY_VERSION_3 defines, both alive for the call.
    let done = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if done != 0 {
        bail!("capset: {}", std::io::Error::last_os_error());
    }
    Ok(())
}
// ANCHOR_END: set

/// Raises each capability of `ambient` into the ambient set, which an exec
/// keeps for a program without file capabilities, even a non-root one. Each
/// must be permitted and inheritable already.
pub fn raise_ambient(ambient: CapSet) -> Result<()> {
    for n in 0..64 {
        if !ambient.has(n) {
            continue;
        }
        // SAFETY: prctl(2) with integer arguments only.
        let raised = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                n as libc::c_ulong,
                0,
                0,
            )
        };
        if raised != 0 {
            let errno = std::io::Error::last_os_error();
            bail!("raising {} into the ambient set: {errno}", name_of(n));
        }
    }
    Ok(())
}

/// The name of capability `n`.
fn name_of(n: u32) -> String {
    NAMES
        .get(n as usize)
        .map_or_else(|| format!("capability {n}"), |name| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dockers_default_is_the_mask_docker_shows() {
        // `docker run busybox grep CapBnd /proc/self/status`
        assert_eq!(CapSet::docker_default().to_string(), "00000000a80425fb");
    }

    #[test]
    fn names_are_dockers_with_or_without_cap_() {
        assert_eq!(number("net_admin"), Some(12));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("Sys_Boot"), Some(22));
        assert_eq!(number("NOPE"), None);
    }

    #[test]
    fn add_and_drop_follow_dockers_rules() {
        let default = CapSet::docker_default();
        let set = tweak(&words(&["NET_ADMIN"]), &words(&["chown"])).unwrap();
        assert!(set.has(12) && !set.has(0));
        assert_eq!(tweak(&[], &words(&["ALL"])).unwrap(), CapSet(0));
        let only = tweak(&words(&["KILL"]), &words(&["ALL"])).unwrap();
        assert_eq!(only, CapSet(0).with(5));
        let all = tweak(&words(&["ALL"]), &words(&["SYS_ADMIN"])).unwrap();
        assert!(!all.has(21) && all.has(22));
        // In both lists: kept, as in Docker.
        assert_eq!(
            tweak(&words(&["KILL"]), &words(&["KILL"])).unwrap(),
            default
        );
    }

    #[test]
    fn an_unknown_name_is_dockers_error() {
        let error = tweak(&words(&["foo"]), &[]).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        let error = tweak(&[], &words(&["CAP_BAR"])).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "invalid CapDrop: unknown capability: \"CAP_BAR\""
        );
    }
}
