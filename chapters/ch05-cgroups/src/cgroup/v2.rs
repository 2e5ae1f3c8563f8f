//! cgroup v2: one unified tree. A container's cgroup is a single directory; the
//! controllers it needs must be handed down to it by every ancestor, by writing
//! `+memory +pids +cpu` into each ancestor's `cgroup.subtree_control`. The
//! files are named after what they hold: `memory.max`, `pids.max`, `cpu.max`,
//! `cpu.weight`; and `cgroup.kill` (Linux 5.14) kills everything inside at once.
//!
//! One rule bites: a cgroup with processes of its own cannot hand controllers
//! down (the "no internal processes" rule; the root is exempt). That is why the
//! default parent is `/minibox` at the root, not below minibox's own cgroup.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{
    Cgroup, OwnCgroups, Stats, cgroup_base, cgroup_dir, create_dirs, procs, read_key, read_number,
    remove_dirs, write,
};
use crate::limits::{Limits, cpu_weight};

// ANCHOR: v2_hand_down
/// The controllers every container's cgroup gets, limit or not: with them the
/// cgroup counts what the container uses (`memory.current`, `memory.peak`,
/// `pids.current`), as Docker's do (runc hands down every controller it can).
/// On v1 a container has a directory in each of their hierarchies anyway.
pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// Writes `line` (`+cpu +memory +pids`) into `level`'s `cgroup.subtree_control`.
/// If the kernel refuses it, tries each controller of `wanted` alone: only a
/// controller in `needed` (a limit's) must work. A cgroup that holds processes
/// hands none down.
fn hand_down(
    level: &Path,
    line: &str,
    wanted: &BTreeSet<&str>,
    needed: &BTreeSet<&str>,
) -> Result<()> {
    const FILE: &str = "cgroup.subtree_control";
    if write(level, FILE, line).is_ok() {
        return Ok(());
    }
    for controller in wanted {
        let written = write(level, FILE, &format!("+{controller}"));
        if needed.contains(controller) {
            written.context(
                "a v2 cgroup that has processes cannot hand controllers down: use an absolute --cgroup-parent",
            )?;
        }
    }
    Ok(())
}
// ANCHOR_END: v2_hand_down

/// A container's cgroup on a v2 host.
#[derive(Debug)]
pub struct V2Cgroup {
    dir: PathBuf,
    /// The directories `create` made (parents included), to remove later.
    created: Vec<PathBuf>,
}

impl V2Cgroup {
    // ANCHOR: v2_create
    /// Creates the cgroup below `parent` in the tree mounted at `root`, hands the
    /// needed controllers down to it, and writes the limits. On any failure,
    /// removes what it created and fails.
    pub fn create(
        root: &Path,
        own: &OwnCgroups,
        parent: &str,
        id: &str,
        limits: &Limits,
    ) -> Result<Self> {
        let dir = cgroup_dir(root, own.path(None), parent, id);
        let base = cgroup_base(root, own.path(None), parent);
        let cgroup = V2Cgroup {
            created: create_dirs(&base, &dir)?,
            dir,
        };
        let result = cgroup
            .enable_controllers(&base, limits)
            .and_then(|()| cgroup.write_limits(limits));
        if let Err(error) = result {
            let _ = cgroup.destroy();
            return Err(error);
        }
        Ok(cgroup)
    }

    /// Writes `+controller ...` into `cgroup.subtree_control` of `base` and every
    /// directory between it and the container's cgroup: the limits' controllers,
    /// which must be handed down, and [`CONTROLLERS`] (see [`hand_down`]).
    fn enable_controllers(&self, base: &Path, limits: &Limits) -> Result<()> {
        let available = fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        let available: BTreeSet<&str> = available.split_whitespace().collect();
        let mut wanted = BTreeSet::new();
        for (needed, controller) in [
            (limits.memory.is_some(), "memory"),
            (limits.pids.is_some(), "pids"),
            (
                limits.cpu_quota.is_some() || limits.cpu_shares.is_some(),
                "cpu",
            ),
        ] {
            if needed && !available.contains(controller) {
                bail!(
                    "the cgroup v2 {controller} controller is not available in {}",
                    base.join("cgroup.controllers").display()
                );
            }
            if needed {
                wanted.insert(controller);
            }
        }
        // Those the limits need, and every one of CONTROLLERS there is, limit
        // or not, so that the cgroup counts what the container uses.
        let needed = wanted.clone();
        wanted.extend(CONTROLLERS.into_iter().filter(|c| available.contains(c)));
        if wanted.is_empty() {
            return Ok(());
        }
        let line: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
        let line = line.join(" ");
        let mut level = base.to_path_buf();
        let below = self
            .dir
            .strip_prefix(base)
            .context("the cgroup is below its base")?;
        for component in below
            .parent()
            .into_iter()
            .flat_map(Path::components)
            .map(Some)
            .chain([None])
        {
            hand_down(&level, &line, &wanted, &needed)?;
            match component {
                Some(c) => level.push(c),
                None => break,
            }
        }
        Ok(())
    }

    fn write_limits(&self, limits: &Limits) -> Result<()> {
        if let Some(bytes) = limits.memory {
            write(&self.dir, "memory.max", &bytes.to_string())?;
            // Docker's default: swap up to the memory limit. The file exists only
            // where the kernel accounts swap.
            if self.dir.join("memory.swap.max").exists() {
                write(&self.dir, "memory.swap.max", &bytes.to_string())?;
            }
        }
        if let Some(pids) = limits.pids {
            write(&self.dir, "pids.max", &pids.to_string())?;
        }
        if let Some(quota) = limits.cpu_quota {
            let value = format!("{} {}", quota.quota_us, quota.period_us);
            write(&self.dir, "cpu.max", &value)?;
        }
        if let Some(shares) = limits.cpu_shares {
            write(&self.dir, "cpu.weight", &cpu_weight(shares).to_string())?;
        }
        Ok(())
    }
    // ANCHOR_END: v2_create

    /// The cgroup [`V2Cgroup::create`] made for `parent` and `id`, found again
    /// (see [`super::open`]). Fails if it is not there.
    pub fn open(root: &Path, own: &OwnCgroups, parent: &str, id: &str) -> Result<Self> {
        let dir = cgroup_dir(root, own.path(None), parent, id);
        if !dir.is_dir() {
            bail!("container {id} has no cgroup at {}", dir.display());
        }
        Ok(V2Cgroup::at(dir))
    }

    /// A cgroup at `dir` that this process did not create and will not remove
    /// parents of: for tests on the real unified tree.
    pub fn at(dir: PathBuf) -> Self {
        V2Cgroup {
            dir,
            created: Vec::new(),
        }
    }

    /// Whether the kernel says processes are left in the cgroup (or its children).
    pub fn populated(&self) -> bool {
        read_key(&self.dir.join("cgroup.events"), "populated").is_some_and(|n| n > 0)
    }
}

impl Cgroup for V2Cgroup {
    // ANCHOR: v2_observe
    fn join(&self, pid: Pid) -> Result<()> {
        write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn oom_kills(&self) -> Result<u64> {
        Ok(read_key(&self.dir.join("memory.events"), "oom_kill").unwrap_or(0))
    }

    fn set_limits(&self, limits: &Limits) -> Result<()> {
        self.write_limits(limits)
    }

    fn stats(&self) -> Result<Stats> {
        let usage_us = read_key(&self.dir.join("cpu.stat"), "usage_usec").unwrap_or(0);
        Ok(Stats {
            peak_memory: read_number(&self.dir.join("memory.peak")),
            cpu_time: Duration::from_micros(usage_us),
        })
    }
    // ANCHOR_END: v2_observe

    fn join_self(&self) -> Result<()> {
        write(&self.dir, "cgroup.procs", "0")
    }

    // ANCHOR: v2_destroy
    fn destroy(&self) -> Result<()> {
        if self.dir.join("cgroup.kill").exists() {
            // One write kills every process in the cgroup and below, atomically:
            // nothing can fork its way out.
            write(&self.dir, "cgroup.kill", "1")?;
        } else {
            for pid in procs(&self.dir) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        // Wait until the kernel reports the cgroup empty, then remove it.
        let deadline = Instant::now() + Duration::from_secs(2);
        while (self.populated() || !procs(&self.dir).is_empty()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        remove_dirs(&self.dir, &self.created)
    }
    // ANCHOR_END: v2_destroy

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn created(&self) -> Vec<PathBuf> {
        self.created.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::CpuQuota;

    /// A fake v2 root: the files the kernel has at the top of the tree.
    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
        fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        root
    }

    #[test]
    fn controllers_are_handed_down_and_limits_written_to_the_v2_files() {
        let root = fake_root("cpuset cpu io memory hugetlb pids rdma misc");
        // The kernel would create these in a new cgroup where swap is accounted.
        let dir = root.path().join("minibox/c1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("memory.swap.max"), "").unwrap();
        let limits = Limits {
            memory: Some(32 << 20),
            pids: Some(10),
            cpu_quota: Some(CpuQuota {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            cpu_shares: Some(512),
        };
        let own = OwnCgroups::parse("0::/user.slice/session-1.scope\n");
        let cgroup = V2Cgroup::create(root.path(), &own, "/minibox", "c1", &limits).unwrap();
        let read = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+cpu +memory +pids");
        assert_eq!(read("minibox/cgroup.subtree_control"), "+cpu +memory +pids");
        assert_eq!(read("minibox/c1/memory.max"), "33554432");
        assert_eq!(read("minibox/c1/memory.swap.max"), "33554432");
        assert_eq!(read("minibox/c1/pids.max"), "10");
        assert_eq!(read("minibox/c1/cpu.max"), "50000 100000");
        assert_eq!(read("minibox/c1/cpu.weight"), "59");
        assert!(
            !root
                .path()
                .join("minibox/c1/cgroup.subtree_control")
                .exists()
        );
        assert_eq!(cgroup.paths(), [dir]);
    }

    #[test]
    fn without_limits_the_controllers_are_handed_down_where_the_kernel_lets_them() {
        let root = fake_root("cpuset cpu io memory pids");
        let own = OwnCgroups::default();
        let none = Limits::default();
        V2Cgroup::create(root.path(), &own, "/minibox", "c1", &none).unwrap();
        let read = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+cpu +memory +pids");
        assert_eq!(read("minibox/cgroup.subtree_control"), "+cpu +memory +pids");
        // A parent that refuses every controller (here: its file cannot be
        // written), as one that holds processes does.
        let refusing = || {
            let root = fake_root("cpu memory pids");
            let file = root.path().join("cgroup.subtree_control");
            fs::remove_file(&file).unwrap();
            fs::create_dir(&file).unwrap();
            root
        };
        let refused = refusing();
        let cgroup = V2Cgroup::create(refused.path(), &own, "/minibox", "c1", &none).unwrap();
        assert_eq!(cgroup.paths(), [refused.path().join("minibox/c1")]);
        // ... unless a limit needs one.
        let refusing = refusing();
        let limits = Limits {
            pids: Some(10),
            ..Limits::default()
        };
        let err = V2Cgroup::create(refusing.path(), &own, "/minibox", "c1", &limits).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("a v2 cgroup that has processes cannot hand controllers down: use an absolute --cgroup-parent: writing \"+pids\""),
            "{err:#}"
        );
        assert!(!refusing.path().join("minibox").exists());
    }

    #[test]
    fn a_missing_controller_is_one_clear_error_and_leaves_nothing() {
        let root = fake_root("cpu io");
        let limits = Limits {
            memory: Some(32 << 20),
            ..Limits::default()
        };
        let own = OwnCgroups::default();
        let err = V2Cgroup::create(root.path(), &own, "/minibox", "c1", &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the cgroup v2 memory controller is not available in {}/cgroup.controllers",
                root.path().display()
            )
        );
        assert!(
            !root.path().join("minibox").exists(),
            "a directory was left behind"
        );
    }
}
