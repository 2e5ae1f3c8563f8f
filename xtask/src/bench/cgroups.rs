//! The benchmarks' cgroups (`start`, `build` and `oci`): where each tool puts its
//! containers' cgroups (below this process's own cgroup, never beside it),
//! removing every directory the benchmark made at the end; and the hugetlb
//! hierarchy crun needs on this machine's hybrid layout, mounted only when
//! missing and unmounted only when the benchmark mounted it.
//!
//! Two ways of naming a cgroup parent meet here. minibox's
//! `MINIBOX_CGROUP_PARENT` (like runc's `cgroupsPath`) is relative to the
//! process's own cgroup in each hierarchy. crun's `cgroupsPath` and podman's
//! `--cgroup-parent` are absolute, from each hierarchy's root, the same path
//! in every hierarchy, while this process's own cgroup is not the same in
//! every hierarchy (on these machines, deep in `memory`, the root in the
//! others). The absolute parent is therefore placed below the deepest of our
//! own cgroups, which is below all of them; in the other hierarchies that
//! creates the directories leading to it, which [`BenchCgroups`] notes
//! before the first run and removes at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use harness::cgroups::{Hierarchy, hierarchies};

/// The cgroup parents of one run of the benchmark, named after its PID.
pub(super) struct Parents {
    /// For minibox's `MINIBOX_CGROUP_PARENT`: relative to our own cgroup.
    pub(super) relative: String,
    /// For crun's `cgroupsPath` and podman's `--cgroup-parent`: from each
    /// hierarchy's root, below our own cgroup in every hierarchy.
    pub(super) absolute: String,
}

impl Parents {
    /// The parents for a benchmark run called `name`.
    pub(super) fn new(name: &str) -> Result<Parents> {
        let owns: Vec<String> = hierarchies().into_iter().map(|h| h.own).collect();
        let deepest = owns
            .iter()
            .max_by_key(|own| own.len())
            .context("no cgroup hierarchy is mounted")?;
        ensure!(
            owns.iter().all(|own| Path::new(deepest).starts_with(own)),
            "this process's cgroups ({}) are not on one path from the root: no absolute cgroup parent is below all of them",
            owns.join(", ")
        );
        Ok(Parents {
            relative: harness::cgroups::test_parent(name),
            absolute: format!("{}/{name}", deepest.trim_end_matches('/')),
        })
    }
}

/// The topmost cgroup directories that the benchmark's tools will create in
/// each hierarchy (none exists yet), removed with everything below them when
/// this is dropped.
pub(super) struct BenchCgroups {
    tops: Vec<PathBuf>,
}

impl BenchCgroups {
    /// Notes, in every hierarchy mounted now, the first directory on the way
    /// to each parent that does not exist yet. Fails if a parent exists
    /// already: it would not be ours to remove.
    pub(super) fn new(parents: &Parents) -> Result<BenchCgroups> {
        let mut tops: Vec<PathBuf> = Vec::new();
        for hierarchy in hierarchies() {
            for dir in [
                hierarchy.parent_dir(&parents.relative),
                hierarchy.dir(&parents.absolute),
            ] {
                let top = first_missing(&hierarchy, &dir)?;
                if !tops.contains(&top) {
                    tops.push(top);
                }
            }
        }
        Ok(BenchCgroups { tops })
    }
}

/// The directory closest to the hierarchy's root on the way to `dir` that
/// does not exist.
fn first_missing(hierarchy: &Hierarchy, dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        bail!(
            "{} exists already: the benchmark's cgroup parent must be new",
            dir.display()
        );
    }
    let top = dir
        .ancestors()
        .take_while(|a| a.starts_with(&hierarchy.mount) && !a.exists())
        .last()
        .unwrap_or(dir);
    Ok(top.to_path_buf())
}

impl Drop for BenchCgroups {
    fn drop(&mut self) {
        for top in &self.tops {
            if let Err(err) = remove_tree(top) {
                eprintln!("xtask: cleaning up: {err:#}");
            }
        }
    }
}

/// Waits until no process is left in the cgroup `absolute` (from each
/// hierarchy's root), as seen in the first hierarchy that has it; a cgroup
/// that does not exist has none. Fails after a few seconds.
pub(super) fn wait_until_empty(absolute: &str) -> Result<()> {
    let Some(procs) = hierarchies()
        .iter()
        .map(|h| h.dir(absolute).join("cgroup.procs"))
        .find(|procs| procs.exists())
    else {
        return Ok(());
    };
    let empty = || fs::read_to_string(&procs).is_ok_and(|pids| pids.trim().is_empty());
    ensure!(
        eventually(empty),
        "processes still in {} after 5 s",
        procs.display()
    );
    Ok(())
}

/// Removes the cgroup `dir` and every cgroup below it, deepest first. A cgroup
/// is removed with rmdir(2) (its files go with it) once no process is left in
/// it: a process that has just exited (conmon, after the container) may still
/// be counted for a moment, so each directory gets a few seconds.
fn remove_tree(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().context("file type")?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => {
                return Err(err).with_context(|| format!("removing cgroup {}", dir.display()));
            }
        }
    }
}

/// Where the hybrid layout has its v2 hierarchy, and where v1's hugetlb goes.
const UNIFIED: &str = "/sys/fs/cgroup/unified";
const HUGETLB: &str = "/sys/fs/cgroup/hugetlb";

/// The hugetlb hierarchy, as this benchmark found or made it.
///
/// crun refuses a hybrid layout whose v2 hierarchy holds any controller
/// ("cgroups in hybrid mode not supported, drop all controllers from
/// cgroupv2"). On these machines the one controller left on v2 is hugetlb,
/// because no v1 hierarchy was mounted for it; a controller moves to v1 when a
/// v1 hierarchy of it is mounted. So the benchmark mounts one, and says so.
pub(super) struct Hugetlb {
    /// Whether the benchmark mounted it (and so unmounts it), and whether it
    /// also made the mount point.
    mounted: Option<MountPoint>,
}

/// What the benchmark made for the mount.
struct MountPoint {
    made_directory: bool,
}

impl Hugetlb {
    /// Mounts the hugetlb hierarchy when v2 holds hugetlb and nothing else;
    /// otherwise leaves the layout alone, saying why crun will refuse it when
    /// it will.
    pub(super) fn prepare() -> Result<Hugetlb> {
        let unmounted = Hugetlb { mounted: None };
        let Ok(controllers) = fs::read_to_string(Path::new(UNIFIED).join("cgroup.controllers"))
        else {
            return Ok(unmounted); // not a hybrid layout
        };
        let controllers: Vec<&str> = controllers.split_whitespace().collect();
        match controllers.as_slice() {
            [] => return Ok(unmounted),
            ["hugetlb"] => {}
            other => {
                println!(
                    "cgroup v2 at {UNIFIED} holds the controllers {}: crun (and podman with it) will refuse this hybrid layout",
                    other.join(" ")
                );
                return Ok(unmounted);
            }
        }
        let made_directory = !Path::new(HUGETLB).exists();
        if made_directory {
            fs::create_dir(HUGETLB).with_context(|| format!("creating {HUGETLB}"))?;
        }
        if let Err(err) = mount_hugetlb() {
            if made_directory {
                let _ = fs::remove_dir(HUGETLB);
            }
            println!(
                "could not mount the hugetlb hierarchy at {HUGETLB} ({err:#}): crun (and podman with it) will refuse this hybrid layout"
            );
            return Ok(unmounted);
        }
        println!(
            "mounted the cgroup v1 hugetlb hierarchy at {HUGETLB}: a new mount, made by this benchmark (crun refuses a hybrid layout whose cgroup v2 holds a controller); it is unmounted at the end"
        );
        Ok(Hugetlb {
            mounted: Some(MountPoint { made_directory }),
        })
    }
}

/// `mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb`.
fn mount_hugetlb() -> Result<()> {
    let source = std::ffi::CString::new("cgroup")?;
    let target = std::ffi::CString::new(HUGETLB)?;
    let options = std::ffi::CString::new("hugetlb")?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: every pointer is to a NUL-terminated string that lives for the
    // duration of the call.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            flags,
            options.as_ptr().cast(),
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("mount -t cgroup -o hugetlb");
    }
    Ok(())
}

impl Drop for Hugetlb {
    /// Unmounts the hierarchy the benchmark mounted, so that hugetlb goes
    /// back to cgroup v2 as it was. The kernel only dissolves a v1 hierarchy
    /// at unmount when its root has no child cgroup left, and a removed
    /// cgroup stays a child until the kernel has released it, a moment after
    /// its rmdir(2): unmounted too early, the hierarchy would live on,
    /// mounted nowhere, holding the controller. So the unmount waits until
    /// /proc/cgroups counts only the root, and then for the controller to be
    /// back on v2.
    fn drop(&mut self) {
        let Some(mount_point) = &self.mounted else {
            return;
        };
        if !eventually(|| hugetlb_in_proc_cgroups().is_some_and(|(_, cgroups)| cgroups == 1)) {
            let others = hugetlb_in_proc_cgroups().map_or(0, |(_, cgroups)| cgroups - 1);
            println!(
                "left the hugetlb hierarchy mounted at {HUGETLB}: it still holds {others} cgroups \
                 (someone else's, or not yet released by the kernel); unmount it when it has none"
            );
            return;
        }
        let target = std::ffi::CString::new(HUGETLB).expect("no NUL byte");
        // SAFETY: `target` is a NUL-terminated string that lives for the call.
        if unsafe { libc::umount2(target.as_ptr(), 0) } != 0 {
            let err = std::io::Error::last_os_error();
            eprintln!("xtask: cleaning up: unmounting {HUGETLB}: {err}");
            return;
        }
        if mount_point.made_directory {
            let _ = fs::remove_dir(HUGETLB);
        }
        if eventually(|| hugetlb_in_proc_cgroups().is_some_and(|(hierarchy, _)| hierarchy == 0)) {
            println!(
                "unmounted the hugetlb hierarchy the benchmark mounted at {HUGETLB}; hugetlb is back on cgroup v2"
            );
        } else {
            println!(
                "unmounted the hugetlb hierarchy the benchmark mounted at {HUGETLB}, but the kernel keeps it \
                 (see /proc/cgroups): mount it again, remove its child cgroups, and unmount it"
            );
        }
    }
}

/// The hugetlb line of /proc/cgroups: the hierarchy it is bound to (0 is
/// v2) and how many cgroups that hierarchy has.
fn hugetlb_in_proc_cgroups() -> Option<(u32, u32)> {
    let text = fs::read_to_string("/proc/cgroups").ok()?;
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("hugetlb"))?;
    let fields: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    Some((*fields.first()?, *fields.get(1)?))
}

/// Whether `condition` holds within a few seconds.
fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
