//! What chapter 11's tests share: a tree described entry by entry (to compare
//! two directories whole), a layer read back entry by entry, and the tools
//! that check our archives from outside.

#![allow(dead_code)] // each test file uses its own part of this

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One path of a tree, everything a container could tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `dir`, `file`, `symlink`, `char`, `block`, `fifo`, `socket`.
    pub kind: &'static str,
    /// Permission bits and setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Whole seconds (a tar keeps no more).
    pub mtime: i64,
    /// A file's bytes, a symlink's target, a device's number.
    pub content: Vec<u8>,
    /// Extended attributes but overlayfs's own, which overlayfs hides from a
    /// merged view anyway.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Every path below `root` (not `root` itself), with what it is.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut found = BTreeMap::new();
    walk(root, Path::new(""), &mut found);
    found
}

fn walk(root: &Path, rel: &Path, found: &mut BTreeMap<PathBuf, Node>) {
    for entry in fs::read_dir(root.join(rel)).unwrap() {
        let rel = rel.join(entry.unwrap().file_name());
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let (name, content) = if kind.is_dir() {
            ("dir", Vec::new())
        } else if kind.is_file() {
            ("file", fs::read(&path).unwrap())
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).unwrap();
            ("symlink", target.as_os_str().as_bytes().to_vec())
        } else if kind.is_char_device() {
            ("char", meta.rdev().to_string().into_bytes())
        } else if kind.is_block_device() {
            ("block", meta.rdev().to_string().into_bytes())
        } else if kind.is_fifo() {
            ("fifo", Vec::new())
        } else {
            ("socket", Vec::new())
        };
        let xattrs = xattr::list(&path)
            .unwrap()
            .filter(|n| !n.to_string_lossy().contains(".overlay."))
            .map(|n| {
                let value = xattr::get(&path, &n).unwrap().unwrap_or_default();
                (n.to_string_lossy().into_owned(), value)
            })
            .collect();
        found.insert(
            rel.clone(),
            Node {
                kind: name,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: meta.mtime(),
                content,
                xattrs,
            },
        );
        if kind.is_dir() {
            walk(root, &rel, found);
        }
    }
}

/// One entry of a layer as a reader sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link: Option<String>,
    pub uname: Vec<u8>,
    /// The PAX records of the entry, by key.
    pub pax: BTreeMap<String, Vec<u8>>,
}

/// The entries of a tar (gzip-compressed or not), in order.
pub fn entries(archive: &[u8]) -> Vec<Entry> {
    let reader: Box<dyn Read + '_> = if archive.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(archive))
    } else {
        Box::new(archive)
    };
    let mut archive = tar::Archive::new(reader);
    let mut found = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let pax = entry
            .pax_extensions()
            .unwrap()
            .map(|records| {
                records
                    .map(|r| {
                        let r = r.unwrap();
                        (r.key().unwrap().to_string(), r.value_bytes().to_vec())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let header = entry.header();
        found.push(Entry {
            name: String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
            kind: header.entry_type(),
            mode: header.mode().unwrap(),
            uid: header.uid().unwrap(),
            mtime: header.mtime().unwrap(),
            size: header.size().unwrap(),
            link: entry
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            uname: header.username_bytes().unwrap_or_default().to_vec(),
            pax,
        });
    }
    found
}

/// The entry called `name`.
pub fn entry<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no entry {name} in {:?}", names(entries)))
}

/// The names of `entries`, in order.
pub fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

/// Sets the modification (and access) time of `path`, not following a symlink.
pub fn set_mtime(path: &Path, seconds: i64) {
    let time = nix::sys::time::TimeSpec::new(seconds, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// Runs `command`, fails the test with its output unless it succeeds, and
/// returns its standard output.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A shell script run as root in a mount namespace of its own (made private
/// first), so that whatever it mounts disappears with it, even when the test
/// fails half way.
pub fn in_mount_namespace(script: &str) -> String {
    run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-euc"])
        .arg(script))
}
