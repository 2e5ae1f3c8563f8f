//! cgroup v1: one hierarchy per controller, each a tree of its own. A container's
//! cgroup is one directory in *each* hierarchy it uses, with the same relative
//! path: `memory/minibox/ID`, `pids/minibox/ID`, `cpu/minibox/ID`, ...
//! Hierarchies may be mounted together (`cpu,cpuacct`), so they are found in
//! /proc/self/mountinfo rather than guessed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::unistd::Pid;

use super::{
    Cgroup, OwnCgroups, Stats, cgroup_base, cgroup_dir, create_dirs, kill_all, read_key,
    read_number, remove_dirs, write,
};
use crate::limits::Limits;

/// The controllers minibox uses, with the files it writes and reads in each.
pub const CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];

/// Controllers a container joins where the host mounts them, and goes
/// without where it does not: `devices`, whose rules (which device numbers
/// the container may open) chapter 12 writes, and `freezer`, which chapter
/// 14's `pause` uses. This chapter writes nothing there; a new directory
/// starts with its parent's rules, and thawed.
pub const OPTIONAL: [&str; 2] = ["devices", "freezer"];

/// Where each controller's hierarchy is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    /// `(controller, mount point)` for each of [`CONTROLLERS`], and each of
    /// [`OPTIONAL`] the host has.
    pub mounts: Vec<(&'static str, PathBuf)>,
}

impl Hierarchies {
    /// Finds the v1 hierarchies mounted below `root`, from /proc/self/mountinfo:
    /// every one of [`CONTROLLERS`], and those of [`OPTIONAL`] that are there.
    pub fn discover(root: &Path) -> Result<Self> {
        let text = fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
        Self::from_mountinfo(&text, root)
    }

    /// Parses mountinfo lines such as
    /// `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory`:
    /// the mount point is the fifth field; after ` - ` come the filesystem type,
    /// the source and the options, which name the controllers.
    pub fn from_mountinfo(text: &str, root: &Path) -> Result<Self> {
        let mut mounts = Vec::new();
        for controller in CONTROLLERS.into_iter().chain(OPTIONAL) {
            let mount = text.lines().find_map(|line| {
                let (before, after) = line.split_once(" - ")?;
                let mut after = after.split_whitespace();
                let (fs_type, _source, options) = (after.next()?, after.next()?, after.next()?);
                let point = Path::new(before.split_whitespace().nth(4)?);
                let has = options.split(',').any(|o| o == controller);
                (fs_type == "cgroup" && has && point.starts_with(root)).then(|| point.to_path_buf())
            });
            match mount {
                Some(point) => mounts.push((controller, point)),
                None if OPTIONAL.contains(&controller) => {} // this host goes without
                None => bail!(
                    "the cgroup v1 {controller} controller is not mounted below {}",
                    root.display()
                ),
            }
        }
        Ok(Hierarchies { mounts })
    }

    /// A fake layout for tests: `root/memory`, `root/pids`, ... (without the
    /// optional ones, like a host that does not mount them).
    pub fn under(root: &Path) -> Self {
        let mounts = CONTROLLERS.iter().map(|c| (*c, root.join(c))).collect();
        Hierarchies { mounts }
    }
}

/// One directory of the container's cgroup, in one hierarchy.
#[derive(Debug)]
struct Dir {
    controller: &'static str,
    path: PathBuf,
    /// The directories `create` made for it (parents included), to remove later.
    created: Vec<PathBuf>,
}

/// A container's cgroup on a v1 host: a directory per hierarchy.
#[derive(Debug, Default)]
pub struct V1Cgroup {
    dirs: Vec<Dir>,
}

impl V1Cgroup {
    // ANCHOR: v1_create
    /// Creates the directories and writes the limits. On any failure, removes what
    /// it created and fails.
    pub fn create(
        hierarchies: &Hierarchies,
        own: &OwnCgroups,
        parent: &str,
        id: &str,
        limits: &Limits,
    ) -> Result<Self> {
        let mut cgroup = V1Cgroup::default();
        let result = (|| {
            for (controller, mount) in &hierarchies.mounts {
                let path = cgroup_dir(mount, own.path(Some(controller)), parent, id);
                if cgroup.dirs.iter().any(|d| d.path == path) {
                    // Co-mounted with a controller we already have (`cpu,cpuacct`):
                    // the same directory, already made.
                    cgroup.dirs.push(Dir {
                        controller,
                        path,
                        created: Vec::new(),
                    });
                    continue;
                }
                let base = cgroup_base(mount, own.path(Some(controller)), parent);
                let created = create_dirs(&base, &path)?;
                cgroup.dirs.push(Dir {
                    controller,
                    path,
                    created,
                });
            }
            cgroup.write_limits(limits)
        })();
        if let Err(error) = result {
            let _ = cgroup.destroy();
            return Err(error);
        }
        Ok(cgroup)
    }

    /// The cgroup [`V1Cgroup::create`] made for `parent` and `id`, found again
    /// (see [`super::open`]). Fails if it is not there.
    pub fn open(
        hierarchies: &Hierarchies,
        own: &OwnCgroups,
        parent: &str,
        id: &str,
    ) -> Result<Self> {
        let mut dirs = Vec::new();
        for (controller, mount) in &hierarchies.mounts {
            let path = cgroup_dir(mount, own.path(Some(controller)), parent, id);
            if !path.is_dir() {
                bail!("container {id} has no cgroup at {}", path.display());
            }
            dirs.push(Dir {
                controller,
                path,
                created: Vec::new(),
            });
        }
        Ok(V1Cgroup { dirs })
    }

    fn write_limits(&self, limits: &Limits) -> Result<()> {
        let memory = self.dir("memory");
        if let Some(bytes) = limits.memory {
            write(memory, "memory.limit_in_bytes", &bytes.to_string())?;
            // Docker's default swap: as much as the memory limit, i.e. memory +
            // swap = twice the limit. The file exists only with swap accounting.
            if memory.join("memory.memsw.limit_in_bytes").exists() {
                write(
                    memory,
                    "memory.memsw.limit_in_bytes",
                    &(2 * bytes).to_string(),
                )?;
            }
        }
        if let Some(pids) = limits.pids {
            write(self.dir("pids"), "pids.max", &pids.to_string())?;
        }
        let cpu = self.dir("cpu");
        if let Some(quota) = limits.cpu_quota {
            write(cpu, "cpu.cfs_period_us", &quota.period_us.to_string())?;
            write(cpu, "cpu.cfs_quota_us", &quota.quota_us.to_string())?;
        }
        if let Some(shares) = limits.cpu_shares {
            write(cpu, "cpu.shares", &shares.to_string())?;
        }
        Ok(())
    }
    // ANCHOR_END: v1_create

    /// The directory in the hierarchy of `controller` (shared when co-mounted).
    fn dir(&self, controller: &str) -> &Path {
        self.dirs
            .iter()
            .find(|d| d.controller == controller)
            .map(|d| d.path.as_path())
            .expect("create made a directory for every controller")
    }
}

impl Cgroup for V1Cgroup {
    // ANCHOR: v1_observe
    fn join(&self, pid: Pid) -> Result<()> {
        for dir in &self.dirs {
            write(&dir.path, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn oom_kills(&self) -> Result<u64> {
        // memory.oom_control: "oom_kill_disable 0\nunder_oom 0\noom_kill 1"
        let path = self.dir("memory").join("memory.oom_control");
        Ok(read_key(&path, "oom_kill").unwrap_or(0))
    }

    fn set_limits(&self, limits: &Limits) -> Result<()> {
        self.write_limits(limits)
    }

    fn stats(&self) -> Result<Stats> {
        let peak = read_number(&self.dir("memory").join("memory.max_usage_in_bytes"));
        let cpu_ns = read_number(&self.dir("cpuacct").join("cpuacct.usage")).unwrap_or(0);
        Ok(Stats {
            peak_memory: peak,
            cpu_time: Duration::from_nanos(cpu_ns),
        })
    }
    // ANCHOR_END: v1_observe

    fn join_self(&self) -> Result<()> {
        for dir in &self.dirs {
            write(&dir.path, "tasks", "0")?; // see `join_self`: no global lock
        }
        Ok(())
    }

    // ANCHOR: v1_destroy
    fn destroy(&self) -> Result<()> {
        let paths: Vec<PathBuf> = self.dirs.iter().map(|d| d.path.clone()).collect();
        kill_all(&paths);
        for dir in &self.dirs {
            remove_dirs(&dir.path, &dir.created)?;
        }
        Ok(())
    }
    // ANCHOR_END: v1_destroy

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    fn created(&self) -> Vec<PathBuf> {
        self.dirs.iter().flat_map(|d| d.created.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::CpuQuota;

    #[test]
    fn hierarchies_are_found_in_mountinfo_also_when_co_mounted() {
        let mountinfo = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
            39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let h = Hierarchies::from_mountinfo(mountinfo, Path::new("/sys/fs/cgroup")).unwrap();
        let at = |c: &str| h.mounts.iter().find(|(n, _)| *n == c).unwrap().1.clone();
        assert_eq!(at("memory"), Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(at("cpu"), Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(at("cpuacct"), Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        let no_pids = mountinfo.replace("rw,pids", "rw,devices");
        let err = Hierarchies::from_mountinfo(&no_pids, Path::new("/sys/fs/cgroup")).unwrap_err();
        assert!(
            err.to_string().contains("pids controller is not mounted"),
            "{err}"
        );
    }

    #[test]
    fn the_devices_hierarchy_is_joined_where_it_is_mounted_and_only_there() {
        // Every required controller in a hierarchy of its own, devices not.
        let mountinfo: String = CONTROLLERS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i} 1 0:{i} / /sys/fs/cgroup/{c} rw - cgroup cgroup rw,{c}\n"))
            .collect();
        let root = Path::new("/sys/fs/cgroup");
        let without = Hierarchies::from_mountinfo(&mountinfo, root).unwrap();
        assert_eq!(without.mounts.len(), CONTROLLERS.len(), "{without:?}");
        let with_devices = format!(
            "{mountinfo}36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n"
        );
        let with = Hierarchies::from_mountinfo(&with_devices, root).unwrap();
        assert_eq!(
            with.mounts.last(),
            Some(&("devices", Path::new("/sys/fs/cgroup/devices").to_path_buf()))
        );
    }

    #[test]
    fn co_mounted_controllers_share_one_directory() {
        let root = tempfile::tempdir().unwrap();
        let both = root.path().join("cpu,cpuacct");
        let mut hierarchies = Hierarchies::under(root.path());
        for (controller, mount) in &mut hierarchies.mounts {
            if *controller == "cpu" || *controller == "cpuacct" {
                *mount = both.clone();
            }
        }
        let limits = Limits {
            cpu_shares: Some(512),
            ..Limits::default()
        };
        let cgroup =
            V1Cgroup::create(&hierarchies, &OwnCgroups::default(), "/m", "c1", &limits).unwrap();
        // The CPU time is read from cpuacct's file, in the shared directory.
        fs::write(both.join("m/c1/cpuacct.usage"), "420000000").unwrap();
        assert_eq!(cgroup.stats().unwrap().cpu_time, Duration::from_millis(420));
        assert_eq!(
            fs::read_to_string(both.join("m/c1/cpu.shares")).unwrap(),
            "512"
        );
    }

    #[test]
    fn limits_go_into_the_v1_files_and_destroy_removes_every_directory() {
        let root = tempfile::tempdir().unwrap();
        let hierarchies = Hierarchies::under(root.path());
        // Swap accounting is on: the kernel would have made this file.
        let memsw = root
            .path()
            .join("memory/minibox/c1/memory.memsw.limit_in_bytes");
        fs::create_dir_all(memsw.parent().unwrap()).unwrap();
        fs::write(&memsw, "").unwrap();
        let limits = Limits {
            memory: Some(32 << 20),
            pids: Some(10),
            cpu_quota: Some(CpuQuota {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            cpu_shares: Some(512),
        };
        let own = OwnCgroups::default();
        let cgroup = V1Cgroup::create(&hierarchies, &own, "/minibox", "c1", &limits).unwrap();
        let read = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read("memory/minibox/c1/memory.limit_in_bytes"), "33554432");
        assert_eq!(
            read("memory/minibox/c1/memory.memsw.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(read("pids/minibox/c1/pids.max"), "10");
        assert_eq!(read("cpu/minibox/c1/cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu/minibox/c1/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu/minibox/c1/cpu.shares"), "512");
        assert_eq!(cgroup.paths().len(), 4);

        // A fake tree holds regular files, which rmdir will not remove: empty the
        // directories as the kernel would, then destroy.
        for (_, mount) in &hierarchies.mounts {
            for entry in fs::read_dir(mount.join("minibox/c1")).unwrap() {
                fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        cgroup.destroy().unwrap();
        for (controller, mount) in &hierarchies.mounts {
            assert!(
                !mount.join("minibox/c1").exists(),
                "{controller}: c1 left behind"
            );
            // The parent path goes too once empty, also where it was there before.
            assert!(
                !mount.join("minibox").exists(),
                "{controller}: parent left behind"
            );
        }
    }
}
