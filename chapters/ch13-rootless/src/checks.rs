//! Does rootless work on this machine, and what is missing: the checks that
//! `minibox info` prints, each failing one with the commands that fix it.
//!
//! What each requirement is for:
//!
//! - **User namespaces** make an ordinary user root over namespaces of its
//!   own. Distributions can forbid them for unprivileged users
//!   (`user.max_user_namespaces`, Debian's `kernel.unprivileged_userns_clone`,
//!   Ubuntu 24.04's AppArmor restriction). The sysctls say why; the ground
//!   truth is trying it, in a child process ([`probe_user_namespace`]).
//! - **Subordinate IDs** (`/etc/subuid`, `/etc/subgid`) are the
//!   administrator's grant: the ranges of host IDs a user may map into its
//!   namespaces besides its own. Without one, the container has one ID: root
//!   (your own ID), and every file of another owner shows as `nobody`.
//! - **newuidmap and newgidmap** write those maps. Writing a `uid_map` with
//!   more than your own ID needs `CAP_SETUID` in the parent namespace (see
//!   `user_namespaces(7)`), which a user lacks: these small programs are setuid
//!   root (or have the file capability), and they map only what subuid grants.
//! - **A user-mode network stack** (pasta or slirp4netns): a user cannot make
//!   veth pairs in the host's network namespace, so a process of its own
//!   carries the container's packets through ordinary sockets.
//! - **overlayfs in a user namespace**: Linux 5.11 lets the root of a user
//!   namespace mount it; before, each container gets a full copy of its image.
//! - **cgroup v2 delegation**: a user may manage a cgroup subtree that systemd
//!   gave it (its directory, `cgroup.procs` and `cgroup.subtree_control`
//!   chowned to the user); limits need the memory and pids controllers there.
//!   cgroup v1 cannot be delegated safely.
//!
//! Every check reads files below a root directory (`/` on the real machine, a
//! fake tree in the tests); what cannot be read from a file (the probe, the
//! cgroup filesystem's type, `PATH`) comes in [`Facts`], which tests set by
//! hand. Nothing is changed: the probe's namespace dies with its child.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use ch05_cgroups::cgroup::{self, Layout, OwnCgroups};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, User};

/// One thing rootless needs, and whether this machine has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What is checked, short: `minibox info` lines them up.
    pub name: &'static str,
    /// Whether rootless containers get this here.
    pub ok: bool,
    /// What was found, and when it is missing what that costs.
    pub detail: String,
    /// Commands to paste (a `#` line explains): always set when `ok` is
    /// false, and set on a passing check that could be better (a small
    /// subordinate range).
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: String) -> Check {
        Check {
            name,
            ok: true,
            detail,
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: String, fix: String) -> Check {
        Check {
            name,
            ok: false,
            detail,
            fix: Some(fix),
        }
    }
}

/// What the checks need besides the files below the root: the facts a test
/// sets by hand and [`Facts::of_this_host`] finds out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The user the checks are for.
    pub uid: Uid,
    /// Their name in the passwd database: subuid lines may use either.
    pub name: Option<String>,
    /// `PATH`, to find newuidmap, pasta and slirp4netns as a runtime would.
    pub search_path: OsString,
    /// The layout of /sys/fs/cgroup (`statfs(2)`); `None` when unreadable.
    pub cgroup_layout: Option<Layout>,
    /// How the probe went; `None` when it was not tried (fake trees, or
    /// another user's checks run without root).
    pub userns: Option<Result<(), ProbeFailure>>,
    /// This program, for an AppArmor profile that allows it user namespaces.
    pub program: PathBuf,
}

/// `PATH` when the environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Facts {
    /// The facts of this machine for `uid`: the passwd entry, `PATH`, the
    /// cgroup layout, and the probe run as that user (when we are that user,
    /// or root and can become it).
    pub fn of_this_host(uid: Uid) -> Facts {
        let user = User::from_uid(uid).ok().flatten();
        let euid = Uid::effective();
        // Root becomes the user with their passwd group; the user probes
        // with the group it has (`newgrp` may have changed it).
        let gid = match &user {
            _ if euid == uid => Gid::effective(),
            Some(user) => user.gid,
            None => Gid::from_raw(uid.as_raw()),
        };
        let userns = (euid == uid || euid.is_root()).then(|| probe_user_namespace(uid, gid));
        Facts {
            uid,
            name: user.map(|u| u.name),
            search_path: std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            cgroup_layout: cgroup::detect(Path::new(cgroup::ROOT)).ok(),
            userns,
            program: std::env::current_exe().unwrap_or_else(|_| "/usr/local/bin/minibox".into()),
        }
    }

    /// Facts for a fake tree: pure cgroup v2, no probe, `PATH=/usr/bin:/bin`.
    pub fn assumed(uid: Uid, name: Option<&str>) -> Facts {
        Facts {
            uid,
            name: name.map(str::to_string),
            search_path: "/usr/bin:/bin".into(),
            cgroup_layout: Some(Layout::Unified),
            userns: None,
            program: "/usr/local/bin/minibox".into(),
        }
    }
}

/// The checks for user `uid` (name from the passwd database), in order. Pure
/// reads: nothing is changed.
pub fn rootless(uid: Uid) -> Vec<Check> {
    rootless_in(Path::new("/"), &Facts::of_this_host(uid))
}

// ANCHOR: checks
/// The checks, reading `root/etc/subuid`, `root/proc/sys/...`,
/// `root/sys/fs/cgroup/...` and the programs on `PATH` below `root`.
pub fn rootless_in(root: &Path, facts: &Facts) -> Vec<Check> {
    vec![
        user_namespaces(root, facts),
        subordinate_ids(root, facts, SubIds::User),
        subordinate_ids(root, facts, SubIds::Group),
        id_mapper(root, facts, "newuidmap", CAP_SETUID),
        id_mapper(root, facts, "newgidmap", CAP_SETGID),
        user_mode_network(root, facts),
        overlay_in_user_namespace(root),
        cgroup_delegation(root, facts),
    ]
}
// ANCHOR_END: checks

/// `abs`, an absolute path on the host, below `root`.
fn under(root: &Path, abs: impl AsRef<Path>) -> PathBuf {
    root.join(abs.as_ref().strip_prefix("/").unwrap_or(abs.as_ref()))
}

/// `path`, below `root`, as the host spells it (for messages).
fn shown(root: &Path, path: &Path) -> String {
    Path::new("/")
        .join(path.strip_prefix(root).unwrap_or(path))
        .display()
        .to_string()
}

/// A sysctl's number, when its file exists (some are distribution patches).
fn sysctl(root: &Path, file: &str) -> Option<i64> {
    let text = fs::read_to_string(under(root, file)).ok()?;
    text.trim().parse().ok()
}

/// A sysctl setting that forbids unprivileged user namespaces: why, and the fix.
struct Restriction {
    why: String,
    fix: String,
}

/// How to set sysctl `key` to `value` now and after a reboot.
fn set_sysctl(key: &str, value: &str) -> String {
    format!(
        "sudo sysctl -w {key}={value}\n\
         echo {key}={value} | sudo tee /etc/sysctl.d/90-minibox-{key}.conf"
    )
}

/// The sysctls that forbid what the probe tries, those present on this kernel.
fn restrictions(root: &Path, facts: &Facts) -> Vec<Restriction> {
    let mut found = Vec::new();
    if sysctl(root, "/proc/sys/user/max_user_namespaces") == Some(0) {
        found.push(Restriction {
            why: "user.max_user_namespaces is 0".into(),
            fix: set_sysctl("user.max_user_namespaces", "15000"),
        });
    }
    if sysctl(root, "/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        found.push(Restriction {
            why: "kernel.unprivileged_userns_clone is 0 (Debian's switch)".into(),
            fix: set_sysctl("kernel.unprivileged_userns_clone", "1"),
        });
    }
    if sysctl(
        root,
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    ) == Some(1)
    {
        let program = facts.program.display();
        found.push(Restriction {
            why: "AppArmor restricts unprivileged user namespaces \
                  (kernel.apparmor_restrict_unprivileged_userns is 1, Ubuntu 24.04's default)"
                .into(),
            fix: format!(
                "# either allow them to minibox alone, with an AppArmor profile:\n\
                 printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile minibox {program} flags=(unconfined) {{\\n  userns,\\n}}\\n' | sudo tee /etc/apparmor.d/minibox\n\
                 sudo apparmor_parser -r /etc/apparmor.d/minibox\n\
                 # or lift the restriction for every program:\n{}",
                set_sysctl("kernel.apparmor_restrict_unprivileged_userns", "0")
            ),
        });
    }
    found
}

/// User namespaces: the probe is the truth, the sysctls the explanation.
fn user_namespaces(root: &Path, facts: &Facts) -> Check {
    const NAME: &str = "user namespaces";
    let found = restrictions(root, facts);
    let why = found
        .iter()
        .map(|r| r.why.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let fix = found
        .iter()
        .map(|r| r.fix.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    match (&facts.userns, found.is_empty()) {
        (Some(Ok(())), _) => Check::pass(
            NAME,
            format!(
                "uid {} made one, mapped itself to root in it and made a mount namespace there",
                facts.uid
            ),
        ),
        (Some(Err(failure)), _) => {
            let because = if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            };
            let fix = if fix.is_empty() {
                "# no sysctl forbids it: look for the security module that refused\n\
                 sudo dmesg | grep -i -e apparmor -e selinux -e userns"
                    .to_string()
            } else {
                fix
            };
            Check::fail(NAME, format!("{failure}{because}"), fix)
        }
        (None, true) => Check::pass(NAME, "no sysctl forbids them (not tried)".into()),
        (None, false) => Check::fail(NAME, why, fix),
    }
}

/// Why the probe failed: the step, and the kernel's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeFailure {
    /// The step that failed, e.g. `unshare(CLONE_NEWUSER)`.
    pub step: &'static str,
    /// Its errno.
    pub errno: Errno,
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.step, self.errno)
    }
}

/// The probe's steps in order; the child reports the index of the one that failed.
const PROBE_STEPS: [&str; 6] = [
    "becoming the user",
    "unshare(CLONE_NEWUSER)",
    "writing /proc/self/setgroups",
    "writing /proc/self/uid_map",
    "writing /proc/self/gid_map",
    "unshare(CLONE_NEWNS) in the new namespace",
];

/// What the probe's child writes, prepared before the fork (the child must
/// not allocate).
struct ProbePlan {
    uid: Uid,
    gid: Gid,
    files: [(CString, CString); 3],
}

// ANCHOR: probe
/// Tries what a rootless container starts with, as user `uid` (a root caller
/// becomes that user first): a child process makes a user namespace, maps
/// the user to root in it (the single-ID map needs no newuidmap) and, as that
/// root, makes a mount namespace. The child then exits and its namespaces go.
/// `gid` is the group mapped, and the one a root caller becomes.
pub fn probe_user_namespace(uid: Uid, gid: Gid) -> Result<(), ProbeFailure> {
    let fail = |step, errno| ProbeFailure { step, errno };
    let line = |id: u32| CString::new(format!("0 {id} 1\n")).expect("no NUL");
    let path = |name: &str| CString::new(format!("/proc/self/{name}")).expect("no NUL");
    let plan = ProbePlan {
        uid,
        gid,
        files: [
            (path("setgroups"), c"deny".to_owned()),
            (path("uid_map"), line(uid.as_raw())),
            (path("gid_map"), line(gid.as_raw())),
        ],
    };
    let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail("pipe2", e))?;
    // SAFETY: the caller may have other threads (the test harness does), so
    // the child may only make async-signal-safe calls: `probe_child` makes
    // raw system calls on memory prepared above, allocates nothing, and the
    // child leaves with `_exit`, never returning into the caller's code.
    let child = match unsafe { nix::unistd::fork() }.map_err(|e| fail("fork", e))? {
        ForkResult::Child => {
            drop(reader);
            let report = probe_child(&plan).map_or([0; 5], |(step, errno)| {
                let [a, b, c, d] = (errno as i32).to_le_bytes();
                [step as u8 + 1, a, b, c, d]
            });
            // SAFETY: `report` is a live buffer of its length; _exit has no
            // preconditions.
            unsafe {
                libc::write(writer.as_raw_fd(), report.as_ptr().cast(), report.len());
                libc::_exit(0)
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop(writer);
    let mut report = Vec::new();
    let read = fs::File::from(reader).read_to_end(&mut report);
    let status = waitpid(child, None).map_err(|e| fail("waitpid", e))?;
    match (read, status, report.as_slice()) {
        (Ok(5), WaitStatus::Exited(_, 0), [0, ..]) => Ok(()),
        (Ok(5), WaitStatus::Exited(_, 0), [step, errno @ ..]) => Err(fail(
            PROBE_STEPS[usize::from(*step - 1)],
            Errno::from_raw(i32::from_le_bytes(errno.try_into().expect("4 bytes"))),
        )),
        _ => Err(fail("the probe's child", Errno::EIO)),
    }
}
// ANCHOR_END: probe

/// The probe's steps, in the forked child: `None` when all went well, else the
/// index of the failed step and its errno. Only raw system calls, on memory
/// prepared before the fork.
fn probe_child(plan: &ProbePlan) -> Option<(usize, Errno)> {
    let check = |step: usize, result: libc::c_int| (result == -1).then(|| (step, Errno::last()));
    if Uid::effective().is_root() && !plan.uid.is_root() {
        // SAFETY: system calls on integers; none allocates or takes a lock.
        let become_user = unsafe {
            if libc::setgroups(0, std::ptr::null()) == -1
                || libc::setgid(plan.gid.as_raw()) == -1
                || libc::setuid(plan.uid.as_raw()) == -1
            {
                -1
            } else {
                // Changing credentials made the process undumpable, which
                // makes its /proc files root's: the maps could not be written.
                libc::prctl(libc::PR_SET_DUMPABLE, 1)
            }
        };
        if let Some(failed) = check(0, become_user) {
            return Some(failed);
        }
    }
    // SAFETY: unshare(2) takes flags only.
    if let Some(failed) = check(1, unsafe { libc::unshare(libc::CLONE_NEWUSER) }) {
        return Some(failed);
    }
    for (step, (path, content)) in (2..).zip(&plan.files) {
        if let Some(failed) = check(step, write_file(path, content)) {
            return Some(failed);
        }
    }
    // SAFETY: unshare(2) takes flags only.
    check(5, unsafe { libc::unshare(libc::CLONE_NEWNS) })
}

/// Writes `content` to the file at `path` with raw system calls: 0, or -1
/// with errno set.
fn write_file(path: &CStr, content: &CStr) -> libc::c_int {
    // SAFETY: both C strings are valid for the calls; the descriptor is ours.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd == -1 {
            return -1;
        }
        let bytes = content.to_bytes();
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if written == -1 { -1 } else { 0 }
    }
}

/// Which of the two subordinate ID files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubIds {
    /// `/etc/subuid`, read by newuidmap.
    User,
    /// `/etc/subgid`, read by newgidmap.
    Group,
}

impl SubIds {
    /// Where the file is on the host.
    pub fn file(self) -> &'static str {
        match self {
            SubIds::User => "/etc/subuid",
            SubIds::Group => "/etc/subgid",
        }
    }
}

/// The IDs a subordinate range grants, from `start`, `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// The first host ID.
    pub start: u32,
    /// How many.
    pub count: u32,
}

/// How many subordinate IDs a user should have: every ID an image may use
/// up to 65535 (`nobody` is 65534), as `useradd` grants by default.
pub const RECOMMENDED_IDS: u32 = 65536;

/// Every line of a subuid or subgid file: `(owner, range)`, the owner being a
/// user name or a numeric uid. Comments, blank and malformed lines are skipped.
pub fn parse_subordinate(text: &str) -> Vec<(String, IdRange)> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            let range = IdRange {
                start: start.parse().ok()?,
                count: count.parse().ok()?,
            };
            (!owner.is_empty() && range.count > 0 && fields.next().is_none())
                .then(|| (owner.to_string(), range))
        })
        .collect()
}

/// The ranges granted to the user `uid`, called `name`, in the file's order.
/// A line may name the user or give the number, as newuidmap accepts both.
pub fn ranges_of(text: &str, uid: Uid, name: Option<&str>) -> Vec<IdRange> {
    let number = uid.as_raw().to_string();
    parse_subordinate(text)
        .into_iter()
        .filter(|(owner, _)| *owner == number || Some(owner.as_str()) == name)
        .map(|(_, range)| range)
        .collect()
}

/// The first ID after every range of both files (and at least 100000, where
/// `useradd` starts): a new grant there overlaps nobody's.
fn free_start(root: &Path) -> u64 {
    [SubIds::User, SubIds::Group]
        .iter()
        .flat_map(|ids| {
            parse_subordinate(&fs::read_to_string(under(root, ids.file())).unwrap_or_default())
        })
        .map(|(_, r)| u64::from(r.start) + u64::from(r.count))
        .fold(100_000, u64::max)
}

/// The command that grants the user a range of `RECOMMENDED_IDS` more.
fn grant(root: &Path, facts: &Facts, ids: SubIds) -> String {
    let start = free_start(root);
    let end = start + u64::from(RECOMMENDED_IDS) - 1;
    let option = match ids {
        SubIds::User => "--add-subuids",
        SubIds::Group => "--add-subgids",
    };
    match &facts.name {
        Some(name) => format!("sudo usermod {option} {start}-{end} {name}"),
        None => format!(
            "echo {}:{start}:{RECOMMENDED_IDS} | sudo tee -a {}",
            facts.uid,
            ids.file()
        ),
    }
}

/// A range of subordinate IDs in the file for the user, large enough.
fn subordinate_ids(root: &Path, facts: &Facts, ids: SubIds) -> Check {
    let name = match ids {
        SubIds::User => "subordinate user IDs",
        SubIds::Group => "subordinate group IDs",
    };
    let who = facts
        .name
        .clone()
        .unwrap_or_else(|| format!("uid {}", facts.uid));
    let text = fs::read_to_string(under(root, ids.file())).unwrap_or_default();
    let ranges = ranges_of(&text, facts.uid, facts.name.as_deref());
    if ranges.is_empty() {
        let detail = format!(
            "no range for {who} in {}: only your own ID can be mapped, as root in the \
             container; files of other owners belong to root there (their owners are kept in an attribute), and USER other than root fails",
            ids.file()
        );
        return Check::fail(name, detail, grant(root, facts, ids));
    }
    let total: u64 = ranges.iter().map(|r| u64::from(r.count)).sum();
    let listed: Vec<String> = ranges
        .iter()
        .map(|r| {
            format!(
                "{}-{}",
                r.start,
                u64::from(r.start) + u64::from(r.count) - 1
            )
        })
        .collect();
    let mut check = Check::pass(name, format!("{who} has {total}: {}", listed.join(", ")));
    if total < u64::from(RECOMMENDED_IDS) {
        check.detail += &format!(
            "; {RECOMMENDED_IDS} are recommended: an image with files of IDs above {total} \
             cannot be unpacked"
        );
        check.fix = Some(grant(root, facts, ids));
    }
    check
}

/// The capability bits newuidmap and newgidmap need (`capabilities(7)`).
const CAP_SETUID: u32 = 7;
const CAP_SETGID: u32 = 6;

/// The first executable file called `program` in the directories of `PATH`,
/// below `root`.
pub fn find_program(root: &Path, search_path: &OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| under(root, dir).join(program))
        .find(|path| {
            fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether the `security.capability` attribute of `path` (a `vfs_cap_data`:
/// a magic word, then the low 32 permitted bits first, in every revision)
/// permits capability `cap`.
fn file_capability_permits(path: &Path, cap: u32) -> bool {
    let value = xattr::get(path, "security.capability").ok().flatten();
    value.is_some_and(|value| {
        value.len() >= 8
            && u32::from_le_bytes(value[4..8].try_into().expect("4 bytes")) & (1 << cap) != 0
    })
}

/// newuidmap (or newgidmap) on `PATH`, and able to write maps: setuid root,
/// or with capability `cap`.
fn id_mapper(root: &Path, facts: &Facts, program: &'static str, cap: u32) -> Check {
    let Some(path) = find_program(root, &facts.search_path, program) else {
        return Check::fail(
            program,
            "not on PATH: only your own ID can be mapped, as root in the container".into(),
            "sudo apt-get install uidmap    # Fedora: sudo dnf install shadow-utils".into(),
        );
    };
    let host_path = shown(root, &path);
    let meta = fs::metadata(&path);
    if meta.is_ok_and(|m| m.mode() & 0o4000 != 0 && m.uid() == 0) {
        return Check::pass(program, format!("{host_path}, setuid root"));
    }
    let cap_name = if cap == CAP_SETUID {
        "cap_setuid"
    } else {
        "cap_setgid"
    };
    if file_capability_permits(&path, cap) {
        return Check::pass(
            program,
            format!("{host_path}, with file capability {cap_name}"),
        );
    }
    Check::fail(
        program,
        format!(
            "{host_path} is neither setuid root nor has {cap_name}: it cannot map more than your own ID"
        ),
        format!("sudo chown root {host_path} && sudo chmod u+s {host_path}"),
    )
}

/// pasta or slirp4netns on `PATH`.
fn user_mode_network(root: &Path, facts: &Facts) -> Check {
    const NAME: &str = "user-mode network";
    let found: Vec<String> = ["pasta", "slirp4netns"]
        .into_iter()
        .filter_map(|p| find_program(root, &facts.search_path, p))
        .map(|path| shown(root, &path))
        .collect();
    if found.is_empty() {
        return Check::fail(
            NAME,
            "neither pasta nor slirp4netns on PATH: only --network none and --network host".into(),
            "sudo apt-get install passt    # or: sudo apt-get install slirp4netns".into(),
        );
    }
    // Both stacks open the TUN device to give the container its tap0.
    let tun = under(root, Path::new("/dev/net/tun"));
    let usable = fs::metadata(&tun).is_ok_and(|m| {
        let mode = m.permissions().mode();
        mode & 0o006 == 0o006 || (m.uid() == facts.uid.as_raw() && mode & 0o600 == 0o600)
    });
    if !usable {
        return Check::fail(
            NAME,
            format!(
                "{}, but /dev/net/tun is not yours to open (it is mode 0666 on most distributions)",
                found.join(", ")
            ),
            "sudo chmod 0666 /dev/net/tun    # and in a udev rule: KERNEL==\"tun\", MODE=\"0666\""
                .into(),
        );
    }
    Check::pass(NAME, found.join(", "))
}

/// The major and minor version of a kernel release (`uname -r`, as in
/// `/proc/sys/kernel/osrelease`): `6.8.0-31-generic` is (6, 8).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?;
    let digits = minor
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(minor.len());
    Some((major, minor[..digits].parse().ok()?))
}

/// Linux 5.11 or later, where the root of a user namespace may mount overlayfs.
// SIMPLIFICATION: only the version is read. Ubuntu's kernels allowed it much
// earlier with a patch of their own; podman tries a mount instead.
fn overlay_in_user_namespace(root: &Path) -> Check {
    const NAME: &str = "overlayfs in a user namespace";
    let release = fs::read_to_string(under(root, "/proc/sys/kernel/osrelease")).unwrap_or_default();
    let release = release.trim();
    match kernel_version(release) {
        Some(version) if version >= (5, 11) => Check::pass(
            NAME,
            format!("kernel {release} mounts it in a user namespace"),
        ),
        found => Check::fail(
            NAME,
            format!(
                "kernel {}: overlayfs needs 5.11 in a user namespace, so every container \
                 gets a full copy of its image (the copy snapshotter; podman uses fuse-overlayfs)",
                if found.is_some() {
                    release
                } else {
                    "version unknown"
                }
            ),
            "# a 5.11 or later kernel; until then, say so when you run:\n\
             minibox run --snapshotter copy IMAGE"
                .into(),
        ),
    }
}

/// The systemd drop-in that delegates the controllers to every user's manager.
fn delegate_fix(uid: Uid) -> String {
    format!(
        "sudo mkdir -p /etc/systemd/system/user@.service.d\n\
         printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf\n\
         sudo systemctl daemon-reload\n\
         # then log out and in again, or: sudo systemctl restart user@{uid}.service"
    )
}

/// Booting with cgroup v2 only, from GRUB.
const UNIFIED_FIX: &str = "# boot with cgroup v2 only (systemd's unified hierarchy):\n\
    sudo sed -i 's/^GRUB_CMDLINE_LINUX=\"/&systemd.unified_cgroup_hierarchy=1 /' /etc/default/grub\n\
    sudo update-grub\n\
    sudo reboot";

/// The controllers a rootless container's limits need: `--memory` and `--pids-limit`.
const NEEDED_CONTROLLERS: [&str; 2] = ["memory", "pids"];

/// A cgroup v2 subtree delegated to the user, around this process, with the
/// memory and pids controllers.
fn cgroup_delegation(root: &Path, facts: &Facts) -> Check {
    const NAME: &str = "cgroup v2 delegation";
    let mount = under(root, cgroup::ROOT);
    match facts.cgroup_layout {
        Some(Layout::Unified) => {}
        layout => {
            let what = match layout {
                Some(Layout::Hybrid) => "hybrid: controllers on cgroup v1, none on v2",
                Some(_) => "cgroup v1",
                None => "no cgroup filesystem",
            };
            let detail = format!(
                "{what} at {}: a user can be given only a v2 subtree, so containers get no resource limits",
                cgroup::ROOT
            );
            return Check::fail(NAME, detail, UNIFIED_FIX.into());
        }
    }
    let text = fs::read_to_string(under(root, "/proc/self/cgroup")).unwrap_or_default();
    let own = OwnCgroups::parse(&text).path(None).to_string();
    let Some((dir, controllers)) = delegated_cgroup(&mount, &own, facts.uid) else {
        return not_delegated(&mount, &own, facts);
    };
    let detail = format!(
        "{} is yours, with: {}",
        shown(root, &dir),
        controllers.join(" ")
    );
    let missing: Vec<&str> = NEEDED_CONTROLLERS
        .into_iter()
        .filter(|c| !controllers.iter().any(|x| x == c))
        .collect();
    if missing.is_empty() {
        return Check::pass(NAME, detail);
    }
    let detail = format!(
        "{detail}; without {}, its limits cannot be set",
        missing.join(" and ")
    );
    Check::fail(NAME, detail, delegate_fix(facts.uid))
}

/// No delegated cgroup above this process's: say whether systemd delegated
/// the user's service manager, which this process then runs outside of.
fn not_delegated(mount: &Path, own: &str, facts: &Facts) -> Check {
    const NAME: &str = "cgroup v2 delegation";
    let uid = facts.uid;
    let service = format!("user.slice/user-{uid}.slice/user@{uid}.service");
    if delegated_to(&mount.join(&service), uid) {
        return Check::fail(
            NAME,
            format!("/{service} is yours, but this process runs outside it, in {own}"),
            "# start minibox in a delegated scope of your service manager:\n\
             systemd-run --user --scope --quiet -p Delegate=yes -- minibox run IMAGE"
                .into(),
        );
    }
    Check::fail(
        NAME,
        format!(
            "no cgroup around this process ({own}) is yours (the directory, cgroup.procs and \
             cgroup.subtree_control owned by uid {uid}): containers get no resource limits"
        ),
        delegate_fix(uid),
    )
}

// ANCHOR: delegation
/// The cgroup delegated to `uid` that holds this process (in cgroup `own` of
/// the v2 tree mounted at `root`), and the controllers it offers. Delegated
/// means what systemd's `Delegate=` does: the directory, its `cgroup.procs`
/// and its `cgroup.subtree_control` belong to the user, who may then make
/// child cgroups, move its processes between them and enable controllers.
/// The top-most such ancestor is the one: the whole subtree is the user's.
pub fn delegated_cgroup(root: &Path, own: &str, uid: Uid) -> Option<(PathBuf, Vec<String>)> {
    let mut dir = root.to_path_buf();
    let mut levels = vec![dir.clone()];
    for component in Path::new(own).components() {
        if let Component::Normal(name) = component {
            dir.push(name);
            levels.push(dir.clone());
        }
    }
    let dir = levels.into_iter().find(|dir| delegated_to(dir, uid))?;
    let controllers = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let controllers = controllers.split_whitespace().map(str::to_string).collect();
    Some((dir, controllers))
}

/// Whether the cgroup at `dir`, its `cgroup.procs` and its
/// `cgroup.subtree_control` all belong to `uid`.
fn delegated_to(dir: &Path, uid: Uid) -> bool {
    let owned = |path: PathBuf| fs::metadata(path).is_ok_and(|m| m.uid() == uid.as_raw());
    owned(dir.to_path_buf())
        && owned(dir.join("cgroup.procs"))
        && owned(dir.join("cgroup.subtree_control"))
}
// ANCHOR_END: delegation

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_lines_by_name_or_number_and_malformed_ones_skipped() {
        let text = "# grants\nalice:100000:65536\n1001:165536:1000\nbob:x:5\nalice:300000:0\n\n\
                    alice:231072:10\ncarol:1:2:3\n";
        let alice = ranges_of(text, Uid::from_raw(1000), Some("alice"));
        assert_eq!(
            alice,
            [
                IdRange {
                    start: 100_000,
                    count: 65536
                },
                IdRange {
                    start: 231_072,
                    count: 10
                }
            ]
        );
        let numbered = ranges_of(text, Uid::from_raw(1001), Some("dave"));
        assert_eq!(
            numbered,
            [IdRange {
                start: 165_536,
                count: 1000
            }]
        );
        assert!(ranges_of(text, Uid::from_raw(1002), None).is_empty());
    }

    #[test]
    fn kernel_versions_are_read_from_releases() {
        assert_eq!(kernel_version("6.8.0-31-generic\n"), Some((6, 8)));
        assert_eq!(kernel_version("5.11-rc1"), Some((5, 11)));
        assert_eq!(kernel_version("6.18.44-fc-v1252"), Some((6, 18)));
        assert_eq!(kernel_version("nonsense"), None);
    }

    #[test]
    fn a_failed_probe_says_the_step_and_the_errno() {
        let failure = ProbeFailure {
            step: PROBE_STEPS[1],
            errno: Errno::EPERM,
        };
        assert_eq!(
            failure.to_string(),
            "unshare(CLONE_NEWUSER) failed: EPERM: Operation not permitted"
        );
    }
}
