//! config.json's `mounts`, made inside the root filesystem before
//! `pivot_root`, in the order given (an engine lists `/dev` before
//! `/dev/pts`), each target resolved inside the root with chapter 4's
//! `open_in_root`, so that a symbolic link in the image cannot send a mount
//! onto the host.
//!
//! Options are mount(8)'s words. Most are flags of mount(2) (`ro`, `nosuid`,
//! `nodev`, `noexec`, `relatime`...); `bind` and `rbind` make a bind mount;
//! the propagation words (`private`, `rslave`...) are a second mount(2)
//! call; anything else (`mode=755`, `size=65536k`, `newinstance`) is the
//! filesystem's own data, passed on for the kernel to check.
//!
//! Two kinds need more than one call:
//!
//! - a **bind mount** ignores every flag but `MS_BIND|MS_REC` at first: a
//!   second call, `MS_REMOUNT|MS_BIND` with the flags, makes it read-only
//!   or `nosuid`;
//! - **`cgroup`** is the container's own cgroup, not a filesystem to make:
//!   on cgroup v1, a tmpfs with each hierarchy's directory of the container
//!   bound in; on v2, the container's directory bound on `/sys/fs/cgroup`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ch04_mount_namespace::in_root::{TargetKind, open_in_root};
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

// ANCHOR: options
/// One mount of config.json, its options sorted out.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Where, inside the container.
    pub destination: PathBuf,
    /// The filesystem type (`proc`, `tmpfs`...), `bind`, or `cgroup`.
    pub kind: String,
    /// The source: a host path for a bind mount (relative to the bundle).
    pub source: Option<PathBuf>,
    /// A bind mount (`bind`, `rbind`, or type `bind`).
    pub bind: bool,
    /// mount(2)'s flags.
    pub flags: MsFlags,
    /// The propagation to set afterwards, if any.
    pub propagation: Option<MsFlags>,
    /// The filesystem's own options.
    pub data: String,
}

/// mount(8)'s flag words: (word, flag, whether the word sets or clears it).
const FLAGS: &[(&str, MsFlags, bool)] = &[
    ("ro", MsFlags::MS_RDONLY, true),
    ("rw", MsFlags::MS_RDONLY, false),
    ("nosuid", MsFlags::MS_NOSUID, true),
    ("suid", MsFlags::MS_NOSUID, false),
    ("nodev", MsFlags::MS_NODEV, true),
    ("dev", MsFlags::MS_NODEV, false),
    ("noexec", MsFlags::MS_NOEXEC, true),
    ("exec", MsFlags::MS_NOEXEC, false),
    ("sync", MsFlags::MS_SYNCHRONOUS, true),
    ("async", MsFlags::MS_SYNCHRONOUS, false),
    ("dirsync", MsFlags::MS_DIRSYNC, true),
    ("remount", MsFlags::MS_REMOUNT, true),
    ("mand", MsFlags::MS_MANDLOCK, true),
    ("nomand", MsFlags::MS_MANDLOCK, false),
    ("atime", MsFlags::MS_NOATIME, false),
    ("noatime", MsFlags::MS_NOATIME, true),
    ("diratime", MsFlags::MS_NODIRATIME, false),
    ("nodiratime", MsFlags::MS_NODIRATIME, true),
    ("relatime", MsFlags::MS_RELATIME, true),
    ("norelatime", MsFlags::MS_RELATIME, false),
    ("strictatime", MsFlags::MS_STRICTATIME, true),
    ("nostrictatime", MsFlags::MS_STRICTATIME, false),
];

/// The propagation words.
const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// A propagation word's flags (`rootfsPropagation` uses them too).
pub fn propagation(word: &str) -> Option<MsFlags> {
    PROPAGATION
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, f)| *f)
}

/// Sorts out `mount`'s options; a relative bind source is the bundle's.
pub fn plan(mount: &Mount, bundle: &Path) -> Result<Planned> {
    let kind = mount.typ().clone().unwrap_or_else(|| "bind".into());
    let mut planned = Planned {
        destination: mount.destination().clone(),
        bind: kind == "bind",
        kind,
        source: mount.source().clone(),
        flags: MsFlags::empty(),
        propagation: None,
        data: String::new(),
    };
    let mut data = Vec::new();
    for word in mount.options().iter().flatten() {
        let word = word.as_str();
        if let Some((_, flag, set)) = FLAGS.iter().find(|(w, _, _)| *w == word) {
            planned.flags.set(*flag, *set);
        } else if let Some(flags) = propagation(word) {
            planned.propagation = Some(flags);
        } else if word == "bind" || word == "rbind" {
            planned.bind = true;
            if word == "rbind" {
                planned.flags |= MsFlags::MS_REC;
            }
        } else if ["tmpcopyup", "idmap", "ridmap"].contains(&word) || word.starts_with("X-") {
            bail!(
                "config.json: mounts: option {word:?} of {} is not supported by minibox",
                planned.destination.display()
            );
        } else {
            data.push(word);
        }
    }
    planned.data = data.join(",");
    if planned.bind {
        // A bind mount's relative source is in the bundle.
        planned.source = planned.source.map(|source| bundle.join(source));
    }
    if planned.bind && planned.source.is_none() {
        bail!(
            "config.json: mounts: the bind mount at {} has no source",
            planned.destination.display()
        );
    }
    Ok(planned)
}
// ANCHOR_END: options

// ANCHOR: mount
/// Makes `planned` inside `rootfs`. `cgroups` are the container's cgroup
/// directories, for a `cgroup` mount.
pub fn mount(rootfs: &Path, planned: &Planned, cgroups: &[PathBuf]) -> Result<()> {
    let shown = planned.destination.display();
    if planned.kind == "cgroup" || planned.kind == "cgroup2" {
        return mount_cgroup(rootfs, planned, cgroups).with_context(|| format!("mounting {shown}"));
    }
    if planned.bind {
        return bind(rootfs, planned).with_context(|| format!("bind-mounting onto {shown}"));
    }
    let target = open_in_root(rootfs, &planned.destination, TargetKind::Dir)?;
    let source = planned
        .source
        .as_deref()
        .and_then(Path::to_str)
        .unwrap_or(&planned.kind);
    let data = Some(planned.data.as_str()).filter(|d| !d.is_empty());
    target.mount(Some(source), Some(&planned.kind), planned.flags, data)?;
    set_propagation(rootfs, planned)
}

/// A bind mount, then a remount for its flags, then its propagation.
fn bind(rootfs: &Path, planned: &Planned) -> Result<()> {
    let source = planned.source.as_deref().context("no source")?;
    let kind = match source.is_dir() {
        true => TargetKind::Dir,
        false => TargetKind::File,
    };
    let name = source.to_str().context("a source path that is not UTF-8")?;
    let target = open_in_root(rootfs, &planned.destination, kind)?;
    let rec = planned.flags & MsFlags::MS_REC;
    target.mount(Some(name), None, MsFlags::MS_BIND | rec, None)?;
    let flags = planned.flags - MsFlags::MS_REC;
    if !flags.is_empty() {
        // Opened again: the path now crosses into the new mount.
        let mounted = open_in_root(rootfs, &planned.destination, kind)?;
        mounted.mount(
            None,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None,
        )?;
    }
    set_propagation(rootfs, planned)
}

fn set_propagation(rootfs: &Path, planned: &Planned) -> Result<()> {
    if let Some(flags) = planned.propagation {
        let kind = match planned
            .source
            .as_deref()
            .is_some_and(|s| planned.bind && !s.is_dir())
        {
            true => TargetKind::File,
            false => TargetKind::Dir,
        };
        open_in_root(rootfs, &planned.destination, kind)?.mount(None, None, flags, None)?;
    }
    Ok(())
}
// ANCHOR_END: mount

// ANCHOR: cgroup
/// The container's own cgroup at the destination, read-only as asked: its
/// directory of each v1 hierarchy on a tmpfs (named as on the host:
/// `memory`, `cpu,cpuacct`), or its v2 directory itself.
fn mount_cgroup(rootfs: &Path, planned: &Planned, cgroups: &[PathBuf]) -> Result<()> {
    let bind_flags = planned.flags & MsFlags::MS_RDONLY;
    let v2 = cgroups.len() == 1
        && cgroups[0]
            .strip_prefix(ch05_cgroups::cgroup::ROOT)
            .is_ok_and(|rest| !rest.as_os_str().is_empty() && is_v2_dir(&cgroups[0]));
    if v2 {
        let planned = Planned {
            source: Some(cgroups[0].clone()),
            bind: true,
            flags: bind_flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            ..planned.clone()
        };
        return bind(rootfs, &planned);
    }
    let target = open_in_root(rootfs, &planned.destination, TargetKind::Dir)?;
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    target.mount(Some("tmpfs"), Some("tmpfs"), tmpfs_flags, Some("mode=755"))?;
    for dir in cgroups {
        let Some(hierarchy) = dir
            .strip_prefix(ch05_cgroups::cgroup::ROOT)
            .ok()
            .and_then(|rest| rest.components().next())
        else {
            continue;
        };
        let planned = Planned {
            destination: planned.destination.join(hierarchy.as_os_str()),
            source: Some(dir.clone()),
            bind: true,
            flags: bind_flags | tmpfs_flags,
            propagation: None,
            ..planned.clone()
        };
        bind(rootfs, &planned)?;
    }
    if bind_flags.contains(MsFlags::MS_RDONLY) {
        let target = open_in_root(rootfs, &planned.destination, TargetKind::Dir)?;
        target.mount(
            None,
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

fn is_v2_dir(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists()
}
// ANCHOR_END: cgroup

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(kind: &str, options: &[&str]) -> Mount {
        let json = serde_json::json!({
            "destination": "/x", "type": kind, "source": "src",
            "options": options,
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let planned = plan(
            &mount(
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            Path::new("/b"),
        )
        .unwrap();
        assert_eq!(planned.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(planned.data, "mode=755,size=65536k");
        assert!(!planned.bind);
        let planned = plan(
            &mount("none", &["rbind", "ro", "rprivate"]),
            Path::new("/b"),
        )
        .unwrap();
        assert!(planned.bind);
        assert_eq!(planned.flags, MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert_eq!(
            planned.propagation,
            Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC)
        );
        assert_eq!(planned.source.as_deref(), Some(Path::new("/b/src")));
    }

    #[test]
    fn an_unsupported_option_is_named() {
        let error = plan(&mount("bind", &["idmap"]), Path::new("/b")).unwrap_err();
        assert!(error.to_string().contains("\"idmap\""), "{error}");
    }
}
