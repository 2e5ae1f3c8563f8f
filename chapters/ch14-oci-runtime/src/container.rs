//! config.json as a plan: everything a container's creation needs, checked
//! and converted *before* anything is made, so that a bad bundle fails with
//! one line and leaves nothing behind. [`crate::create`] follows the plan.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ch05_cgroups::limits::{CpuQuota, Limits};
use ch12_security::devices::Rule;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{Hooks, LinuxDevice, LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::mounts::{self, Planned};
use crate::process;

// ANCHOR: blueprint
/// A container, planned from its bundle.
pub struct Blueprint {
    /// The bundle's absolute path.
    pub bundle: PathBuf,
    /// The root filesystem's absolute path.
    pub rootfs: PathBuf,
    /// `root.readonly`.
    pub readonly_root: bool,
    /// The mounts, in order.
    pub mounts: Vec<Planned>,
    /// The namespaces to make (`clone(2)` flags).
    pub new_namespaces: CloneFlags,
    /// The namespaces to join (by `path`), opened now: all but `pid`.
    pub joined: Vec<(CloneFlags, File)>,
    /// A PID namespace to join: the creating process enters it, so the
    /// container's init is born there.
    pub pid_namespace: Option<File>,
    /// `uidMappings` and `gidMappings` (with a new user namespace).
    pub uid_maps: Vec<LinuxIdMapping>,
    /// `gidMappings`.
    pub gid_maps: Vec<LinuxIdMapping>,
    /// `hostname`, `domainname`.
    pub hostname: Option<String>,
    /// `domainname`.
    pub domainname: Option<String>,
    /// `linux.devices`: nodes to make in `/dev`.
    pub devices: Vec<LinuxDevice>,
    /// `linux.sysctl`.
    pub sysctl: Vec<(String, String)>,
    /// `linux.maskedPaths`.
    pub masked: Vec<String>,
    /// `linux.readonlyPaths`.
    pub readonly_paths: Vec<String>,
    /// `linux.rootfsPropagation`.
    pub propagation: Option<MsFlags>,
    /// The process.
    pub process: process::Plan,
    /// The hooks.
    pub hooks: Hooks,
    /// The cgroup: its parent and name (chapter 5's terms).
    pub cgroup: (String, String),
    /// Its limits.
    pub limits: Limits,
    /// Its device rules.
    pub device_rules: Vec<Rule>,
}
// ANCHOR_END: blueprint

/// The parent of containers' cgroups when config.json names no
/// `cgroupsPath`.
pub const DEFAULT_CGROUP_PARENT: &str = "/minibox-runc";

/// Namespace types as clone(2) flags.
fn flag_of(kind: LinuxNamespaceType) -> Result<CloneFlags> {
    Ok(match kind {
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        other => bail!(
            "config.json: linux.namespaces: type {} is not supported by minibox",
            format!("{other:?}").to_lowercase()
        ),
    })
}

impl Blueprint {
    // ANCHOR: of
    /// Plans container `id` from `spec`, read from `bundle`.
    pub fn of(id: &str, bundle: &Path, spec: &Spec) -> Result<Blueprint> {
        let root = spec.root().as_ref().context("config.json: root")?;
        let rootfs = bundle.join(root.path());
        if !rootfs.is_dir() {
            bail!(
                "config.json: root.path {} is not a directory",
                rootfs.display()
            );
        }
        let linux = spec.linux().clone().unwrap_or_default();
        let (new_namespaces, joined, pid_namespace) = namespaces_of(&linux)?;
        let uid_maps = linux.uid_mappings().clone().unwrap_or_default();
        let gid_maps = linux.gid_mappings().clone().unwrap_or_default();
        if new_namespaces.contains(CloneFlags::CLONE_NEWUSER) == uid_maps.is_empty() {
            bail!(
                "config.json: linux.uidMappings are needed with a new user namespace, and only then"
            );
        }
        let mounts = spec
            .mounts()
            .iter()
            .flatten()
            .map(|mount| mounts::plan(mount, bundle))
            .collect::<Result<Vec<_>>>()?;
        let process = spec
            .process()
            .as_ref()
            .context("config.json: process is missing")?;
        let process = process::Plan::of(process, linux.seccomp().as_ref())?;
        let resources = linux.resources().clone().unwrap_or_default();
        let (limits, device_rules) = resources_of(&resources)?;
        let cgroup = cgroup_of(id, linux.cgroups_path().as_deref())?;
        let propagation = propagation_of(linux.rootfs_propagation().as_deref())?;
        Ok(Blueprint {
            bundle: bundle.to_path_buf(),
            rootfs,
            readonly_root: root.readonly().unwrap_or(false),
            mounts,
            new_namespaces,
            joined,
            pid_namespace,
            uid_maps,
            gid_maps,
            hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
            domainname: spec.domainname().clone().filter(|d| !d.is_empty()),
            devices: linux.devices().clone().unwrap_or_default(),
            sysctl: linux
                .sysctl()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            masked: linux.masked_paths().clone().unwrap_or_default(),
            readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
            propagation,
            process,
            hooks: spec.hooks().clone().unwrap_or_default(),
            cgroup,
            limits,
            device_rules,
        })
    }
    // ANCHOR_END: of
}

/// `linux.rootfsPropagation`, as mount(2) flags.
fn propagation_of(word: Option<&str>) -> Result<Option<MsFlags>> {
    match word {
        None | Some("") => Ok(None),
        Some(word) => mounts::propagation(word).map(Some).with_context(|| {
            format!("config.json: linux.rootfsPropagation {word:?} is not a propagation")
        }),
    }
}

/// `linux.namespaces`: the ones to make, the ones to join (opened now), and
/// a PID namespace to join.
#[allow(clippy::type_complexity)]
fn namespaces_of(
    linux: &oci_spec::runtime::Linux,
) -> Result<(CloneFlags, Vec<(CloneFlags, File)>, Option<File>)> {
    let mut new_namespaces = CloneFlags::empty();
    let mut joined = Vec::new();
    let mut pid_namespace = None;
    for namespace in linux.namespaces().iter().flatten() {
        let flag = flag_of(namespace.typ())?;
        let Some(path) = namespace.path() else {
            new_namespaces |= flag;
            continue;
        };
        let file = File::open(path).with_context(|| {
            format!("config.json: linux.namespaces: opening {}", path.display())
        })?;
        match flag {
            CloneFlags::CLONE_NEWPID => pid_namespace = Some(file),
            CloneFlags::CLONE_NEWUSER => bail!(
                "config.json: linux.namespaces: joining a user namespace by path is not supported by minibox"
            ),
            _ => joined.push((flag, file)),
        }
    }
    if !new_namespaces.contains(CloneFlags::CLONE_NEWNS) {
        bail!("config.json: linux.namespaces: a container needs a new mount namespace");
    }
    Ok((new_namespaces, joined, pid_namespace))
}

// ANCHOR: cgroups_path
/// `linux.cgroupsPath` in chapter 5's terms: `/docker/ID` is parent
/// `/docker`, name `ID`. A relative path is below the runtime's own cgroup,
/// as chapter 5 reads relative parents. Without one: [`DEFAULT_CGROUP_PARENT`]
/// and the container's ID.
pub fn cgroup_of(id: &str, path: Option<&Path>) -> Result<(String, String)> {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok((DEFAULT_CGROUP_PARENT.to_string(), id.to_string()));
    };
    let text = path.to_str().context("linux.cgroupsPath is not UTF-8")?;
    if text.contains(':') {
        bail!(
            "config.json: linux.cgroupsPath {text:?} is in systemd's slice:prefix:name form; minibox places cgroups through cgroupfs only"
        );
    }
    let (parent, name) = match text.trim_end_matches('/').rsplit_once('/') {
        Some(("", name)) => ("/".to_string(), name),
        Some((parent, name)) => (parent.to_string(), name),
        None => (String::new(), text),
    };
    if name.is_empty() || name == ".." || parent.split('/').any(|part| part == "..") {
        bail!("config.json: linux.cgroupsPath {text:?} is not a cgroup path");
    }
    Ok((parent, name.to_string()))
}
// ANCHOR_END: cgroups_path

// ANCHOR: resources
/// `linux.resources` as chapter 5's limits and chapter 12's device rules.
pub fn resources_of(resources: &oci_spec::runtime::LinuxResources) -> Result<(Limits, Vec<Rule>)> {
    let mut limits = Limits::default();
    if let Some(memory) = resources.memory() {
        limits.memory = memory.limit().filter(|&l| l > 0).map(|l| l as u64);
        if let Some(swap) = memory.swap().filter(|&s| s != 0)
            && let Some(limit) = limits.memory
            && swap != -1
            && swap as u64 != 2 * limit
        {
            // chapter 5 writes Docker's default: swap as large as memory.
            bail!(
                "config.json: linux.resources.memory.swap {swap} is not supported by minibox (only -1 or twice the limit)"
            );
        }
    }
    if let Some(pids) = resources.pids() {
        limits.pids = Some(pids.limit()).filter(|&p| p > 0).map(|p| p as u64);
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(quota) = cpu.quota().filter(|&q| q > 0) {
            limits.cpu_quota = Some(CpuQuota {
                quota_us: quota as u64,
                period_us: cpu.period().filter(|&p| p > 0).unwrap_or(100_000),
            });
        }
        limits.cpu_shares = cpu.shares().filter(|&s| s > 0);
    }
    let mut rules = Vec::new();
    for device in resources.devices().iter().flatten() {
        let kind = match device.typ().map(|t| t.as_str().to_string()).as_deref() {
            None | Some("a") => 'a',
            Some("c") => 'c',
            Some("b") => 'b',
            Some(other) => bail!("config.json: linux.resources.devices: type {other:?}"),
        };
        let access = device.access().clone().unwrap_or_else(|| "rwm".into());
        let rule = Rule::new(
            device.allow(),
            kind,
            device.major().map(|m| m as u32),
            device.minor().map(|m| m as u32),
            &access,
        );
        rule.check()
            .context("config.json: linux.resources.devices")?;
        rules.push(rule);
    }
    // As runc, after any list, none included: the devices every container
    // has stay usable (without them a cgroup that starts by denying all
    // would refuse even /dev/null).
    rules.extend(ch12_security::devices::runtime_defaults());
    Ok((limits, rules))
}
// ANCHOR_END: resources

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_paths_split_into_parent_and_name() {
        let split = |p: &str| cgroup_of("id", Some(Path::new(p))).unwrap();
        assert_eq!(split("/docker/abc"), ("/docker".into(), "abc".into()));
        assert_eq!(split("/abc"), ("/".into(), "abc".into()));
        assert_eq!(split("a/b"), ("a".into(), "b".into()));
        assert_eq!(split("abc"), ("".into(), "abc".into()));
        assert_eq!(
            cgroup_of("id", None).unwrap(),
            (DEFAULT_CGROUP_PARENT.into(), "id".into())
        );
        assert!(cgroup_of("id", Some(Path::new("system.slice:docker:abc"))).is_err());
        assert!(cgroup_of("id", Some(Path::new("/a/../b"))).is_err());
    }
}
