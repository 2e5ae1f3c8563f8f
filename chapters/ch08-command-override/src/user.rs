//! Who the container's process is: `-u USER[:GROUP]` (or the image's `User`)
//! turned into numbers through the **image's** `/etc/passwd` and
//! `/etc/group`, then applied with `setgroups(2)`, `setgid(2)` and
//! `setuid(2)`.
//!
//! The files are read inside the container, after `pivot_root`: the names
//! belong to the image, and the host's `nobody` or `www-data` may have other
//! numbers, or not exist. The rules are runc's:
//!
//! - USER is a name or a number. A name must be in passwd; a number need not
//!   be (then the group is 0 and the home `/`). Found, the entry gives the
//!   group and the home directory.
//! - GROUP, if given, is a name (which must be in group) or a number (which
//!   need not be), and it replaces the entry's group.
//! - The supplementary groups are the process's group, then (without GROUP)
//!   every group in /etc/group that lists the user's name as a member.
//! - Nothing given means UID 0, with root's entry if passwd has one.

use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

/// The highest ID Docker and runc accept (IDs are signed 32-bit in places).
pub const MAX_ID: u32 = i32::MAX as u32;

/// One line of `/etc/passwd`: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// The login name.
    pub name: String,
    /// The user ID.
    pub uid: u32,
    /// The primary group ID.
    pub gid: u32,
    /// The home directory: the default `HOME`.
    pub home: String,
}

/// One line of `/etc/group`: `name:password:gid:member,member,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// The group's name.
    pub name: String,
    /// The group ID.
    pub gid: u32,
    /// The users for whom it is a supplementary group.
    pub members: Vec<String>,
}

/// The identity the process takes before exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user ID.
    pub uid: u32,
    /// The group ID.
    pub gid: u32,
    /// The supplementary groups: `gid` first, then the memberships.
    pub groups: Vec<u32>,
    /// `HOME`, unless the environment sets it.
    pub home: String,
}

// ANCHOR: parse
/// The entries of a passwd file. Comments, blank lines and lines too short or
/// with IDs that are not numbers are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|fields| {
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).copied().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// The entries of a group file, skipping what [`parse_passwd`] skips.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|fields| {
            Some(GroupEntry {
                name: fields.first()?.to_string(),
                gid: fields.get(2)?.parse().ok()?,
                members: fields
                    .get(3)
                    .map(|list| {
                        list.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').collect())
}
// ANCHOR_END: parse

// ANCHOR: resolve
/// Resolves `spec` (`USER[:GROUP]`, or empty for root) against the contents
/// of a passwd and a group file.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<User> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = parse_passwd(passwd);
    let numeric_uid = user_part.parse::<u32>().ok();
    let entry = passwd.iter().find(|e| match (user_part, numeric_uid) {
        ("", _) => e.uid == 0,
        (_, Some(uid)) => e.uid == uid,
        (name, None) => e.name == name,
    });
    let mut user = match (entry, numeric_uid) {
        (Some(entry), _) => User {
            uid: entry.uid,
            gid: entry.gid,
            groups: Vec::new(),
            home: entry.home.clone(),
        },
        (None, Some(uid)) => User {
            uid,
            gid: 0,
            groups: Vec::new(),
            home: "/".into(),
        },
        (None, None) if user_part.is_empty() => User {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            home: "/".into(),
        },
        (None, None) => {
            bail!("unable to find user {user_part}: no matching entries in passwd file")
        }
    };
    if user.home.is_empty() {
        user.home = "/".into();
    }
    let groups = parse_group(group);
    match group_part {
        Some(wanted) => {
            let numeric_gid = wanted.parse::<u32>().ok();
            let found = groups.iter().find(|g| match numeric_gid {
                Some(gid) => g.gid == gid,
                None => g.name == wanted,
            });
            user.gid = match (found, numeric_gid) {
                (Some(found), _) => found.gid,
                (None, Some(gid)) => gid,
                (None, None) => {
                    bail!("unable to find group {wanted}: no matching entries in group file")
                }
            };
        }
        None => {
            if let Some(entry) = entry {
                user.groups = groups
                    .iter()
                    .filter(|g| g.members.contains(&entry.name))
                    .map(|g| g.gid)
                    .collect();
            }
        }
    }
    // Docker puts the primary group first among the supplementary ones too
    // (since CVE-2022-36109: without it, a file's "everyone but group X"
    // permissions could be bypassed through the supplementary list).
    user.groups.retain(|g| *g != user.gid);
    user.groups.insert(0, user.gid);
    if user.uid > MAX_ID || user.gid > MAX_ID {
        bail!("uids and gids must be in range 0-{MAX_ID}");
    }
    Ok(user)
}
// ANCHOR_END: resolve

/// Resolves `spec` through `ROOT/etc/passwd` and `ROOT/etc/group`. In the
/// container, after `pivot_root`, `root` is `/`: the image's files. A missing
/// file (hello-world has none) is an empty one: numbers still work.
pub fn resolve_in(root: &Path, spec: &str) -> Result<User> {
    // SIMPLIFICATION: only the files, as runc reads them; glibc's NSS (LDAP,
    // systemd-userdb) plays no part, in runc either, since the image's
    // libraries never run before exec.
    let read = |name: &str| -> Result<String> {
        let path = root.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    };
    resolve(spec, &read("etc/passwd")?, &read("etc/group")?)
}

// ANCHOR: switch
/// Becomes `user`: supplementary groups, then the group, then the user — in
/// that order, because changing groups needs CAP_SETGID, which a process
/// loses when it stops being root. Call it last before exec.
pub fn switch_to(user: &User) -> Result<()> {
    // SIMPLIFICATION: Docker adds `--group-add` groups to the supplementary
    // ones, and runc also sets the process's capabilities and
    // no_new_privileges around this switch; we have no capabilities to keep
    // yet (the hardening chapter adds them).
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    match nix::unistd::setgroups(&groups) {
        // In a user namespace that maps a single ID (chapter 13), setgroups
        // is denied for good: the groups stay as they are, as runc leaves them.
        Err(Errno::EPERM) if setgroups_denied() => {}
        set => set.with_context(|| format!("setgroups({:?})", user.groups))?,
    }
    nix::unistd::setgid(Gid::from_raw(user.gid))
        .with_context(|| format!("setgid({})", user.gid))?;
    nix::unistd::setuid(Uid::from_raw(user.uid))
        .with_context(|| format!("setuid({})", user.uid))?;
    Ok(())
}
// ANCHOR_END: switch

/// Whether this process's user namespace denies `setgroups(2)`.
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
# a comment
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:The App:/home/app:/bin/sh
nohome:x:1001:1001::
broken line
bad:x:notanumber:1:::
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";
    const GROUP: &str = "\
root:x:0:
app:x:1000:
staff:x:50:app,other
wheel:x:10: other , app
nogroup:x:65534:
";

    fn user(uid: u32, gid: u32, groups: &[u32], home: &str) -> User {
        User {
            uid,
            gid,
            groups: groups.to_vec(),
            home: home.into(),
        }
    }

    #[test]
    fn passwd_and_group_lines_are_parsed_and_bad_ones_skipped() {
        let passwd = parse_passwd(PASSWD);
        let names: Vec<_> = passwd.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["root", "app", "nohome", "nobody"]);
        assert_eq!(passwd[1].home, "/home/app");
        assert_eq!(passwd[2].home, "");
        let group = parse_group(GROUP);
        assert_eq!(group[2].members, ["app", "other"]);
        assert_eq!(group[3].members, ["other", "app"]);
        assert!(group[0].members.is_empty());
    }

    #[test]
    fn names_and_numbers_resolve_by_runcs_rules() {
        let r = |spec| resolve(spec, PASSWD, GROUP);
        assert_eq!(r("").unwrap(), user(0, 0, &[0], "/root"));
        assert_eq!(
            r("app").unwrap(),
            user(1000, 1000, &[1000, 50, 10], "/home/app")
        );
        assert_eq!(
            r("1000").unwrap(),
            user(1000, 1000, &[1000, 50, 10], "/home/app")
        );
        assert_eq!(r("app:staff").unwrap(), user(1000, 50, &[50], "/home/app"));
        assert_eq!(r("app:77").unwrap(), user(1000, 77, &[77], "/home/app"));
        assert_eq!(
            r("1000:1000").unwrap(),
            user(1000, 1000, &[1000], "/home/app")
        );
        assert_eq!(r("4242").unwrap(), user(4242, 0, &[0], "/"));
        assert_eq!(r("4242:4242").unwrap(), user(4242, 4242, &[4242], "/"));
        assert_eq!(r("nohome").unwrap(), user(1001, 1001, &[1001], "/"));
        assert_eq!(
            r("nobody").unwrap(),
            user(65534, 65534, &[65534], "/nonexistent")
        );
        assert_eq!(
            r("ghost").unwrap_err().to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            r("app:ghosts").unwrap_err().to_string(),
            "unable to find group ghosts: no matching entries in group file"
        );
        assert_eq!(
            r("3000000000").unwrap_err().to_string(),
            "uids and gids must be in range 0-2147483647"
        );
        // No files at all (hello-world): numbers only.
        assert_eq!(resolve("5:6", "", "").unwrap(), user(5, 6, &[6], "/"));
        assert!(resolve("root", "", "").is_err());
    }

    #[test]
    fn resolve_in_reads_the_given_root_not_the_hosts() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "minibox-only:x:4321:4321::/box:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(
            resolve_in(root.path(), "minibox-only").unwrap(),
            user(4321, 4321, &[4321], "/box")
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(
            resolve_in(empty.path(), "root").is_err(),
            "not the host's root"
        );
    }
}
