//! The concept of this chapter: a container's cgroup, behind one small interface
//! ([`Cgroup`]) with a cgroup v1 and a cgroup v2 implementation, chosen at run time
//! from the host's layout ([`detect`]).
//!
//! Everything that touches the cgroup filesystem takes its root (normally
//! `/sys/fs/cgroup`) as a parameter, so the tests can run it against a fake tree
//! in a temporary directory where this machine cannot run it for real.

pub mod v1;
pub mod v2;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::{self, Narrator};
use ch02_pid_namespace::namespace::denied;
use ch02_pid_namespace::sync::ParentEnd;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, TMPFS_MAGIC, statfs};
use nix::unistd::Pid;

use crate::limits::{Limits, format_bytes};
use crate::signals::{self, Interrupts};

/// Where the cgroup filesystems are mounted on every distribution.
pub const ROOT: &str = "/sys/fs/cgroup";

/// The default parent of containers' cgroups, below the hierarchy root (Docker's
/// cgroupfs driver uses `docker/`).
pub const DEFAULT_PARENT: &str = "/minibox";

/// How a host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v2 only: one tree at the root (Ubuntu 22.04+, Fedora, Debian 12).
    Unified,
    /// cgroup v1 only: a tmpfs with one hierarchy per controller.
    Legacy,
    /// v1 controllers, plus an (empty) v2 tree at `unified/` (systemd's hybrid mode).
    Hybrid,
}

// ANCHOR: detect
/// Tells the layout from the filesystem type of `root`: a cgroup2 filesystem is
/// the unified tree; a tmpfs holds v1 hierarchies, and an extra cgroup2 mount at
/// `root/unified` makes it hybrid.
pub fn detect(root: &Path) -> Result<Layout> {
    let fs_type = |path: &Path| statfs(path).map(|s| s.filesystem_type());
    let root_type = fs_type(root).with_context(|| format!("statfs {}", root.display()))?;
    if root_type == CGROUP2_SUPER_MAGIC {
        return Ok(Layout::Unified);
    }
    if root_type == TMPFS_MAGIC {
        let unified = fs_type(&root.join("unified"));
        return Ok(match unified {
            Ok(t) if t == CGROUP2_SUPER_MAGIC => Layout::Hybrid,
            _ => Layout::Legacy,
        });
    }
    bail!(
        "{} is neither a cgroup2 filesystem nor a tmpfs of cgroup v1 hierarchies",
        root.display()
    )
}
// ANCHOR_END: detect

/// What a container used, read from its cgroup before it is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// The most memory the container's processes used at once, when the kernel
    /// keeps that number (v1 always; v2 from Linux 5.19, `memory.peak`).
    pub peak_memory: Option<u64>,
    /// CPU time, user and system, of all its processes.
    pub cpu_time: Duration,
}

// ANCHOR: interface
/// A container's cgroup, whichever cgroup version the host has.
pub trait Cgroup {
    /// Moves a process (and, from then on, its children) into the cgroup.
    fn join(&self, pid: Pid) -> Result<()>;
    /// Moves the calling process, which must have a single thread, into the
    /// cgroup from inside: the cheaper way ([`join_self`]), which chapter
    /// 10's containers take.
    fn join_self(&self) -> Result<()>;
    /// How many processes the kernel's OOM killer has killed in the cgroup.
    fn oom_kills(&self) -> Result<u64>;
    /// Peak memory and CPU time so far.
    fn stats(&self) -> Result<Stats>;
    /// Writes new limits into the cgroup of a running container (chapter
    /// 14's `update`).
    fn set_limits(&self, limits: &Limits) -> Result<()>;
    /// Kills every process still in the cgroup, waits until it is empty, and
    /// removes it (and the parent directories it created, if they are empty).
    fn destroy(&self) -> Result<()>;
    /// The cgroup's directories, for narration (one per v1 hierarchy).
    fn paths(&self) -> Vec<PathBuf>;
    /// The directories its creation made, parents included, so that
    /// another process can remove them later (chapter 10's `rm` of a
    /// container whose monitor died), and only them.
    fn created(&self) -> Vec<PathBuf>;
}
// ANCHOR_END: interface

// ANCHOR: create
/// Creates the cgroup of container `id` below `parent`, with `limits` written,
/// in whichever version the host at `root` has. On hybrid hosts the controllers
/// are on v1, so v1 it is. Fails without leaving a directory behind.
pub fn create(root: &Path, parent: &str, id: &str, limits: &Limits) -> Result<Box<dyn Cgroup>> {
    let own = OwnCgroups::of_this_process()?;
    Ok(match detect(root)? {
        Layout::Unified => Box::new(v2::V2Cgroup::create(root, &own, parent, id, limits)?),
        Layout::Legacy | Layout::Hybrid => {
            let hierarchies = v1::Hierarchies::discover(root)?;
            Box::new(v1::V1Cgroup::create(
                &hierarchies,
                &own,
                parent,
                id,
                limits,
            )?)
        }
    })
}
// ANCHOR_END: create

/// Reopens the cgroup of a running container `id` from any minibox process
/// (chapter 10's `ps`, `stats` and `exec` need it): the directories [`create`]
/// made for the same `parent` and `id`, found again, nothing created. Its
/// [`Cgroup::destroy`] removes the container's own directory, not the parents.
///
/// SIMPLIFICATION: a relative `parent` is relative to *this* process's cgroup,
/// which is only the creator's when both run in the same cgroup; chapter 10
/// records the paths in the container's state instead.
pub fn open(root: &Path, parent: &str, id: &str) -> Result<Box<dyn Cgroup>> {
    let own = OwnCgroups::of_this_process()?;
    Ok(match detect(root)? {
        Layout::Unified => Box::new(v2::V2Cgroup::open(root, &own, parent, id)?),
        Layout::Legacy | Layout::Hybrid => {
            let hierarchies = v1::Hierarchies::discover(root)?;
            Box::new(v1::V1Cgroup::open(&hierarchies, &own, parent, id)?)
        }
    })
}

/// What a container asks of its cgroup: Docker's resource flags, checked.
#[derive(Debug, Clone)]
pub struct Resources {
    /// The limits, in the units cgroup files use.
    pub limits: Limits,
    /// Where the container's cgroup goes (`--cgroup-parent`).
    pub parent: String,
    /// Whether to print peak memory and CPU time at the end (`--stats`).
    pub show_stats: bool,
}

// ANCHOR: with_cgroup
/// The cgroup's lifecycle around a container: creates it below `root` (see
/// [`create`]), runs `container` with it, and destroys it on every path:
/// success, an error, and a panic too (the destroy runs as the stack unwinds).
/// A failed destroy is reported unless the container's own error comes first.
pub fn with_cgroup<T>(
    root: &Path,
    resources: &Resources,
    id: &str,
    container: impl FnOnce(&dyn Cgroup) -> Result<T>,
) -> Result<T> {
    let created = create(root, &resources.parent, id, &resources.limits)?;
    let cgroup = DestroyOnDrop(Some(created));
    let result = container(cgroup.get());
    let destroyed = cgroup.destroy();
    let value = result?;
    destroyed?;
    Ok(value)
}

/// A cgroup destroyed when dropped, unless [`DestroyOnDrop::destroy`] did it
/// first (and said whether it worked).
struct DestroyOnDrop(Option<Box<dyn Cgroup>>);

impl DestroyOnDrop {
    fn get(&self) -> &dyn Cgroup {
        self.0.as_deref().expect("not destroyed yet")
    }

    fn destroy(mut self) -> Result<()> {
        self.0.take().map_or(Ok(()), |cgroup| cgroup.destroy())
    }
}

impl Drop for DestroyOnDrop {
    fn drop(&mut self) {
        if let Some(cgroup) = self.0.take() {
            let _ = cgroup.destroy(); // unwinding from a panic: best effort
        }
    }
}
// ANCHOR_END: with_cgroup

// ANCHOR: start
/// The parent's side of a container's start, from this chapter on, between
/// clone and the container's end: forwards signals to the child, moves it into
/// `cgroup` while it waits, then calls `joined` (the place for the rest of
/// the parent's setup, and for narration), releases it, learns whether its
/// exec worked, and waits for its end (chapter 2's [`ParentEnd::start`]).
///
/// The child joins *before* it is released, so that not one instruction of the
/// container's program runs outside its limits. If joining or `joined` fails,
/// the child is never released: it reads end-of-file, gives up, and is reaped.
pub fn start(
    cgroup: &dyn Cgroup,
    child: Pid,
    parent: ParentEnd,
    program: &str,
    narrator: &Narrator,
    joined: impl FnOnce() -> Result<()>,
) -> Result<Exit> {
    // From here, minibox must outlive the container to clean up after it.
    let _forwarding = signals::forward_to(child, Interrupts::KillOnThird)?;
    if let Err(error) = cgroup.join(child).and_then(|()| joined()) {
        drop(parent); // the child reads end-of-file and gives up
        ch01_fork_exec::process::wait_for(child)?;
        return Err(error);
    }
    parent.start(child, program, narrator)
}
// ANCHOR_END: start

// ANCHOR: report
/// Says what the cgroup saw: an OOM kill (one line, always), and with
/// `show_stats` the peak memory and CPU time. Read before the cgroup is removed.
pub fn report(cgroup: &dyn Cgroup, resources: &Resources, exit: Exit) -> Result<()> {
    if exit == Exit::Signal(Signal::SIGKILL) && cgroup.oom_kills()? > 0 {
        let limit = resources.limits.memory.map(format_bytes);
        narrate::notice(format_args!(
            "killed: out of memory (limit {})",
            limit.as_deref().unwrap_or("none")
        ));
    }
    if resources.show_stats {
        let stats = cgroup.stats()?;
        let peak = stats.peak_memory.map(format_bytes);
        narrate::notice(format_args!(
            "stats: peak memory {}, CPU time {:.2}s",
            peak.as_deref().unwrap_or("unknown"),
            stats.cpu_time.as_secs_f64()
        ));
    }
    Ok(())
}
// ANCHOR_END: report

/// The cgroups this process is in, from `/proc/self/cgroup`: one line per v1
/// hierarchy (`4:memory:/some/path`) and one for v2 (`0::/some/path`).
#[derive(Debug, Clone, Default)]
pub struct OwnCgroups {
    /// `(controllers, path)` per line; v2's line has no controllers.
    pub lines: Vec<(Vec<String>, String)>,
}

impl OwnCgroups {
    /// Reads `/proc/self/cgroup`.
    pub fn of_this_process() -> Result<Self> {
        let text = fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
        Ok(Self::parse(&text))
    }

    /// Parses the format of `/proc/PID/cgroup`.
    pub fn parse(text: &str) -> Self {
        let lines = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                let controllers = controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                Some((controllers, path.to_string()))
            })
            .collect();
        OwnCgroups { lines }
    }

    /// This process's cgroup in the v1 hierarchy of `controller`, or in the v2
    /// tree for `None`. Missing means the root.
    pub fn path(&self, controller: Option<&str>) -> &str {
        self.lines
            .iter()
            .find(|(controllers, _)| match controller {
                Some(c) => controllers.iter().any(|x| x == c),
                None => controllers.is_empty(),
            })
            .map(|(_, path)| path.as_str())
            .unwrap_or("/")
    }
}

// ANCHOR: placement
/// The container's cgroup directory in a hierarchy mounted at `mount`, where this
/// process is in cgroup `own`. An absolute `parent` starts at the hierarchy's root
/// (`/minibox` → `mount/minibox/ID`, like Docker's `--cgroup-parent`); a relative
/// one starts at minibox's own cgroup, so a delegated subtree (or a test) can keep
/// every container below itself.
pub fn cgroup_dir(mount: &Path, own: &str, parent: &str, id: &str) -> PathBuf {
    cgroup_base(mount, own, parent)
        .join(parent.trim_start_matches('/'))
        .join(id)
}

/// Where the parent path starts: the hierarchy's root, or minibox's own cgroup.
pub fn cgroup_base(mount: &Path, own: &str, parent: &str) -> PathBuf {
    if parent.starts_with('/') {
        mount.to_path_buf()
    } else {
        mount.join(own.trim_start_matches('/'))
    }
}
// ANCHOR_END: placement

/// What creating a cgroup needs, for its EPERM (and EACCES) message.
pub const NEEDS_WRITE_ACCESS: &str = "this needs write access to the cgroup tree: run minibox as root or with sudo, or give --cgroup-parent a cgroup delegated to you";

/// Creates `dir` and any missing parents below `base`; returns every directory
/// from below `base` down to `dir`, top first: the container's cgroup and its
/// parent path, which [`remove_dirs`] removes again once they are empty, whoever
/// made them (a parent shared by two containers is removed by the last one out).
/// Another container may remove an empty shared parent at the same moment: then
/// try again.
pub fn create_dirs(base: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let chain: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| *a != base && a.starts_with(base))
        .map(Path::to_path_buf)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut attempt = 0;
    loop {
        match try_create_dirs(dir).map(|_| chain.clone()) {
            Err(e) if attempt < 5 && e.root_cause().downcast_ref() == Some(&Errno::ENOENT) => {
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn try_create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_path_buf());
        at = at.parent().context("a cgroup directory has a parent")?;
    }
    missing.reverse();
    for path in &missing {
        match fs::create_dir(path) {
            Ok(()) => {}
            // Another minibox made the shared parent a moment ago: fine.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path != dir => {}
            Err(e) => {
                let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
                let errno = if errno == Errno::EACCES {
                    Errno::EPERM
                } else {
                    errno
                };
                return Err(denied(
                    errno,
                    format!("creating cgroup {}", path.display()),
                    NEEDS_WRITE_ACCESS,
                ));
            }
        }
    }
    Ok(missing)
}

/// SIGKILLs every process in the cgroup directories `dirs` until they stay
/// empty: v1 has no "kill the whole cgroup" file, and a process may fork
/// while we kill. For a cgroup known by its directories only, in a process
/// that did not create it (chapter 14's `delete`), too.
pub fn kill_all(dirs: &[PathBuf]) {
    for _ in 0..200 {
        let mut pids: Vec<i32> = dirs.iter().flat_map(|d| procs(d)).collect();
        pids.sort_unstable();
        pids.dedup();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes the (empty) cgroup directories `dirs`, each with the parents in
/// `created` that contain it, as [`Cgroup::created`] recorded them: for a
/// process that did not create the cgroup (chapter 10's `rm` after a monitor
/// died, chapter 14's `delete`).
pub fn remove_all(dirs: &[PathBuf], created: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        let made: Vec<PathBuf> = created
            .iter()
            .filter(|c| dir.starts_with(c))
            .cloned()
            .collect();
        remove_dirs(dir, &made)?;
    }
    Ok(())
}

/// Removes `dir`, then the parents in `created` (deepest first) that are empty
/// now. A parent another container still uses is left alone (EBUSY/ENOTEMPTY),
/// for that container to remove.
pub fn remove_dirs(dir: &Path, created: &[PathBuf]) -> Result<()> {
    // The kernel may still be tearing down the last process: retry briefly.
    let mut attempts = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) if attempts < 100 => {
                let _ = e;
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).with_context(|| format!("removing cgroup {}", dir.display())),
        }
    }
    for parent in created.iter().rev().filter(|p| p.as_path() != dir) {
        if fs::remove_dir(parent).is_err() {
            break; // still in use by another container
        }
    }
    Ok(())
}

/// Writes one cgroup file, with a message that names the file and the value.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    fs::write(&path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

// ANCHOR: join_self
/// Moves the calling process, which must have a single thread (one just
/// cloned or forked), into the cgroup at `dir`.
///
/// Moving a whole process (a PID into `cgroup.procs`) takes a kernel-wide
/// lock that holds up every fork and exit while it is held, and the first
/// taking after a quiet spell waits for an RCU grace period: 5 to 20 ms
/// measured on these machines, for a container that starts in 5. On cgroup
/// v1, `0` ("the caller's thread") written into `tasks` moves only the
/// caller's thread, which the kernel does without that lock; with one thread,
/// that is the whole process. cgroup v2 moves threads alone only in threaded
/// subtrees, so there the process moves itself through `cgroup.procs`.
pub fn join_self(dir: &Path) -> Result<()> {
    let v1_tasks = dir.join("tasks");
    let file = if v1_tasks.exists() {
        "tasks"
    } else {
        "cgroup.procs"
    };
    write(dir, file, "0")
}
// ANCHOR_END: join_self

/// Reads a `key value` line from a flat-keyed cgroup file such as memory.events
/// or cpu.stat; missing file or key reads as `None`.
pub fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Reads a file holding one number.
pub fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The PIDs listed in a `cgroup.procs` file.
pub fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroups_are_read_per_hierarchy() {
        let own = OwnCgroups::parse("5:memory:/tooling/abc\n3:cpu,cpuacct:/\n0::/user.slice\n");
        assert_eq!(own.path(Some("memory")), "/tooling/abc");
        assert_eq!(own.path(Some("cpuacct")), "/");
        assert_eq!(own.path(Some("pids")), "/");
        assert_eq!(own.path(None), "/user.slice");
    }

    #[test]
    fn absolute_parents_start_at_the_root_relative_ones_at_our_own_cgroup() {
        let mount = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            cgroup_dir(mount, "/tooling/abc", "/minibox", "c1"),
            Path::new("/sys/fs/cgroup/memory/minibox/c1")
        );
        assert_eq!(
            cgroup_dir(mount, "/tooling/abc", "tests", "c1"),
            Path::new("/sys/fs/cgroup/memory/tooling/abc/tests/c1")
        );
    }
}
