//! The user namespace a rootless minibox runs in, and its ID maps.
//!
//! A process in a new user namespace is root there, with every capability,
//! over the namespaces that user namespace owns, and over nothing else. Which
//! host IDs it stands for is written once, from outside, into
//! `/proc/PID/uid_map` and `gid_map`: a line `INSIDE OUTSIDE COUNT` maps
//! `COUNT` IDs from `INSIDE` onto the host's from `OUTSIDE`.
//!
//! An ordinary user may map one ID: their own, onto root ([`IdMaps::single`]).
//! More takes `CAP_SETUID` in the parent namespace, which the setuid helpers
//! `newuidmap` and `newgidmap` have: they write a map only from the ranges
//! the administrator granted the user in `/etc/subuid` and `/etc/subgid`.
//!
//! Like rootless podman, every minibox of one user joins the *same* user
//! namespace ([`enter`]): a small pause process holds it, made by the first
//! minibox that finds none. Then a container made by one `minibox run` is
//! owned by the namespace the next `minibox exec` is root in, and the files
//! of one `pull` have the owners the next `run` expects.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use ch02_pid_namespace::{namespace, sync};
use ch09_networking::ipam::Holder;
use nix::fcntl::{Flock, FlockArg};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Gid, Pid, Uid, User};

use crate::checks;

/// `COUNT` IDs from `inside` (in the namespace) map onto the host's from
/// `outside`: one line of a `uid_map` or `gid_map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first ID in the namespace.
    pub inside: u32,
    /// The host's ID it stands for.
    pub outside: u32,
    /// How many consecutive IDs.
    pub count: u32,
}

/// Where the maps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// minibox writes them itself: the user's own ID, nothing more.
    Minibox,
    /// `newuidmap` and `newgidmap` write them, from `/etc/subuid` and
    /// `/etc/subgid`.
    Helpers,
    /// The host's root writes them, for a container of its own (`--userns
    /// auto`, chapter 14's `linux.uidMappings`): any ranges, and setgroups
    /// stays allowed.
    Root,
}

/// A user namespace's two maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    /// `uid_map`.
    pub uids: Vec<Range>,
    /// `gid_map`.
    pub gids: Vec<Range>,
    /// Who writes them.
    pub writer: Writer,
}

// ANCHOR: maps
impl IdMaps {
    /// The maps for user `uid` (group `gid`): their own IDs as root (0), and
    /// their subordinate ranges from 1 on, when the administrator granted
    /// them ranges and the helpers are installed; otherwise only root.
    pub fn for_user(uid: Uid, gid: Gid) -> Result<IdMaps> {
        let name = User::from_uid(uid)?
            .map(|user| user.name)
            .unwrap_or_default();
        let subuids = subordinate(Path::new("/etc/subuid"), &name, uid)?;
        let subgids = subordinate(Path::new("/etc/subgid"), &name, uid)?;
        let helpers = find_program("newuidmap").is_some() && find_program("newgidmap").is_some();
        if subuids.is_empty() || subgids.is_empty() || !helpers {
            return Ok(IdMaps::single(uid, gid));
        }
        Ok(IdMaps {
            uids: with_root(uid.as_raw(), &subuids),
            gids: with_root(gid.as_raw(), &subgids),
            writer: Writer::Helpers,
        })
    }

    /// Only the user's own IDs, as root: what any user may write.
    pub fn single(uid: Uid, gid: Gid) -> IdMaps {
        let root = |outside| {
            vec![Range {
                inside: 0,
                outside,
                count: 1,
            }]
        };
        IdMaps {
            uids: root(uid.as_raw()),
            gids: root(gid.as_raw()),
            writer: Writer::Minibox,
        }
    }
}

/// `own` as root, then `ranges` from ID 1 on.
fn with_root(own: u32, ranges: &[(u32, u32)]) -> Vec<Range> {
    let mut map = vec![Range {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut inside = 1;
    for &(outside, count) in ranges {
        map.push(Range {
            inside,
            outside,
            count,
        });
        inside += count;
    }
    map
}
// ANCHOR_END: maps

/// The ranges `START:COUNT` granted to user `uid` (called `name`) in a
/// file of `/etc/subuid`'s format ([`checks::ranges_of`]). A missing file
/// grants nothing.
pub fn subordinate(file: &Path, name: &str, uid: Uid) -> Result<Vec<(u32, u32)>> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let name = (!name.is_empty()).then_some(name);
    let ranges = checks::ranges_of(&text, uid, name);
    Ok(ranges.into_iter().map(|r| (r.start, r.count)).collect())
}

/// `program`'s path, from `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    checks::find_program(Path::new("/"), &path, program)
}

// ANCHOR: write_maps
/// Writes `maps` for process `pid`, which has just made its user namespace
/// and waits: through the setuid helpers, or, for the user's own IDs alone,
/// by minibox itself, which must first deny `setgroups(2)` there; as the
/// host's root, directly.
pub fn write_maps(pid: Pid, maps: &IdMaps) -> Result<()> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    match maps.writer {
        Writer::Helpers => {
            helper("newuidmap", pid, &maps.uids)?;
            helper("newgidmap", pid, &maps.gids)
        }
        Writer::Minibox => {
            // Otherwise root in the namespace could drop a supplementary
            // group the host uses to deny it something (`chmod g-r` on a
            // file of group `staff`): the kernel refuses an unprivileged
            // gid_map until setgroups is denied.
            fs::write(proc.join("setgroups"), "deny").context("denying setgroups")?;
            write_both(&proc, maps)
        }
        Writer::Root => write_both(&proc, maps),
    }
}

/// `uid_map`, then `gid_map`, of the process at `proc`.
fn write_both(proc: &Path, maps: &IdMaps) -> Result<()> {
    fs::write(proc.join("uid_map"), map_text(&maps.uids)).context("writing uid_map")?;
    fs::write(proc.join("gid_map"), map_text(&maps.gids)).context("writing gid_map")
}
// ANCHOR_END: write_maps

/// A map as the kernel reads it: `INSIDE OUTSIDE COUNT` per line.
pub fn map_text(ranges: &[Range]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

/// Runs `newuidmap PID INSIDE OUTSIDE COUNT...` (or `newgidmap`).
fn helper(program: &str, pid: Pid, ranges: &[Range]) -> Result<()> {
    let mut command = Command::new(program);
    command.arg(pid.to_string());
    for r in ranges {
        command.args([r.inside, r.outside, r.count].map(|n| n.to_string()));
    }
    let output = command
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr);
        bail!(
            "{program} failed ({}): {}",
            output.status,
            message.trim().lines().last().unwrap_or("no message")
        );
    }
    Ok(())
}

/// The file that names the pause process, under the user's runtime
/// directory.
const PAUSE_FILE: &str = "pause.pid";

// ANCHOR: enter
/// Joins the user's rootless namespaces (user, then mount), those of the
/// pause process named in `run_dir`; makes that process first, with `maps`,
/// when there is none. Afterwards this process is root in the namespace,
/// with every capability there. Call while it has a single thread.
pub fn enter(run_dir: &Path, maps: &IdMaps) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(run_dir)
        .with_context(|| format!("creating {}", run_dir.display()))?;
    // Two first mininboxes at once must make one pause process, not two:
    // an exclusive flock(2) on a file beside it.
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(run_dir.join("pause.lock"))
        .context("opening the pause lock")?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow!("locking the pause lock: {errno}"))?;
    let pid = match pause_process(run_dir) {
        Some(holder) => holder.pid,
        None => {
            let pid = start_pause(maps)?;
            let holder = Holder::of(pid.as_raw())?.context("the pause process ended at once")?;
            let text = format!("{} {}\n", holder.pid, holder.start_time);
            fs::write(run_dir.join(PAUSE_FILE), text).context("writing pause.pid")?;
            pid.as_raw()
        }
    };
    join(pid)
}
// ANCHOR_END: enter

/// The pause process named in `run_dir`, if it still runs.
pub fn pause_process(run_dir: &Path) -> Option<Holder> {
    let text = fs::read_to_string(run_dir.join(PAUSE_FILE)).ok()?;
    let mut fields = text.split_whitespace();
    let holder = Holder {
        pid: fields.next()?.parse().ok()?,
        start_time: fields.next()?.parse().ok()?,
    };
    holder.is_alive().then_some(holder)
}

/// Enters the user and mount namespaces of process `pid`.
fn join(pid: i32) -> Result<()> {
    for (kind, flag) in [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let path = format!("/proc/{pid}/ns/{kind}");
        let file = File::open(&path).with_context(|| format!("opening {path}"))?;
        setns(file, flag).with_context(|| format!("joining the rootless {kind} namespace"))?;
    }
    Ok(())
}

// ANCHOR: start_pause
/// Makes the pause process: a child in new user and mount namespaces
/// waits (chapter 2's sync pipe) until its maps are written, then forks
/// the pause process proper, which holds the namespaces for every later
/// minibox, and exits. Returns the pause process's PID.
fn start_pause(maps: &IdMaps) -> Result<Pid> {
    let (mut parent, child_end) = sync::channel()?;
    let (pid_read, pid_write) = nix::unistd::pipe().context("pipe")?;
    let flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
    let child = namespace::clone_child(flags, || {
        let result = child_end.wait_for_release().and_then(|()| fork_pause());
        let code = match result {
            Ok(pause) => {
                let _ = nix::unistd::write(&pid_write, pause.as_bytes());
                0
            }
            Err(_) => 1,
        };
        ch01_fork_exec::process::exit_now(code)
    })?;
    drop((child_end, pid_write));
    if let Err(error) = write_maps(child, maps) {
        let _ = kill(child, Signal::SIGKILL);
        let _ = ch01_fork_exec::process::wait_for(child);
        return Err(error.context("mapping the IDs of the rootless user namespace"));
    }
    parent.release()?;
    let mut pause = String::new();
    File::from(pid_read)
        .read_to_string(&mut pause)
        .context("reading the pause PID")?;
    ch01_fork_exec::process::wait_for(child)?;
    pause
        .trim()
        .parse()
        .map(Pid::from_raw)
        .map_err(|_| anyhow!("the rootless user namespace could not be made"))
}
// ANCHOR_END: start_pause

/// In the namespaces' first process: forks the pause process, which leaves
/// minibox's session and descriptors and sleeps until it is killed.
/// Returns its PID, as text.
fn fork_pause() -> Result<String> {
    // SAFETY: the process has a single thread (it is a clone of minibox's
    // single-threaded one), and the child only makes system calls.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child.to_string()),
        ForkResult::Child => {
            let _ = nix::unistd::setsid();
            let _ = std::env::set_current_dir("/");
            if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
                for fd in 0..3 {
                    // SAFETY: dup2 onto the standard descriptors of this
                    // process, which nothing else here uses.
                    unsafe { libc::dup2(null.as_raw_fd(), fd) };
                }
            }
            // SAFETY: closes every descriptor above 2; nothing here holds one.
            unsafe { libc::syscall(libc::SYS_close_range, 3, u32::MAX, 0) };
            set_name(OsStr::new("minibox-pause"));
            loop {
                nix::unistd::pause();
            }
        }
    }
}

/// Names this process (its `comm`, as `ps` shows it).
fn set_name(name: &OsStr) {
    use std::os::unix::ffi::OsStrExt;
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of up to 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, bytes.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_own_id_is_root_and_the_ranges_follow() {
        let map = with_root(1000, &[(100000, 65536), (300000, 10)]);
        assert_eq!(
            map_text(&map),
            "0 1000 1\n1 100000 65536\n65537 300000 10\n"
        );
        let single = IdMaps::single(Uid::from_raw(1000), Gid::from_raw(1000));
        assert_eq!(map_text(&single.gids), "0 1000 1\n");
    }
}
