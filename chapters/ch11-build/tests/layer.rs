//! A directory of changes becomes a layer, and the layer becomes the same
//! directory again: every kind of entry survives the round trip through
//! chapter 7's extractor; whiteouts and opaque directories that overlayfs
//! itself made come out as OCI's markers and unpack to the view the
//! container saw; and the same tree, built twice, is the same blob.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::Path;
use std::process::Command;

use ch07_image_pull::{digest, extract, store::Store};
use ch11_build::layer::{self, LayerOptions, OverlayXattrs};
use common::{entries, entry, names, set_mtime, tree};

/// `cap_net_raw+ep` as setcap(8) writes it (revision 2).
const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

/// A directory name too long for a ustar header's name field.
fn long() -> String {
    "d".repeat(120)
}

/// One of each: directories, files (one executable, one setuid, one owned
/// by 1000), a symlink, a hard link pair, a FIFO, a character device, a
/// socket, extended attributes, and a path too long for a ustar header.
fn every_kind(root: &Path, mtime: i64) {
    let write = |path: &str, content: &str, mode: u32| {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    write("etc/hosts", "127.0.0.1 localhost\n", 0o644);
    write("bin/tool", "#!/bin/sh\necho tool\n", 0o755);
    write("bin/su", "setuid\n", 0o4755);
    write("home/user/notes", "mine\n", 0o600);
    lchown(root.join("home/user/notes"), Some(1000), Some(1000)).unwrap();
    lchown(root.join("home/user"), Some(1000), Some(1000)).unwrap();
    symlink("tool", root.join("bin/sh")).unwrap();
    fs::hard_link(root.join("bin/tool"), root.join("bin/tool-again")).unwrap();
    fs::create_dir(root.join("run")).unwrap();
    nix::unistd::mkfifo(
        &root.join("run/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    nix::sys::stat::mknod(
        &root.join("run/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let socket = std::os::unix::net::UnixListener::bind(root.join("run/socket")).unwrap();
    drop(socket); // the socket file stays
    xattr::set(root.join("bin/tool"), "security.capability", &CAP_NET_RAW).unwrap();
    xattr::set(root.join("etc/hosts"), "user.comment", b"kept").unwrap();
    write(&format!("{}/file", long()), "deep\n", 0o644);
    for path in tree(root).keys() {
        set_mtime(&root.join(path), mtime);
    }
}

/// Every kind of entry is written as Docker writes it, and chapter 7's
/// extractor turns the layer back into the same tree (the socket aside,
/// which a layer leaves out).
#[test]
fn every_kind_of_entry_survives_the_round_trip() {
    if !harness::require_root("ch11 layer round trip") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    fs::create_dir(&source).unwrap();
    every_kind(&source, 1_600_000_000);
    let mut blob = Vec::new();
    let digests = layer::write_layer(&source, &LayerOptions::default(), &mut blob).unwrap();
    assert_eq!(digests.digest, digest::sha256(&blob));
    assert_eq!(digests.size, blob.len() as u64);
    let mut tar = Vec::new();
    std::io::copy(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar).unwrap();
    assert_eq!(digests.diff_id, digest::sha256(&tar));

    let found = entries(&blob);
    let long = long();
    assert_eq!(
        names(&found),
        [
            "bin/",
            "bin/sh",
            "bin/su",
            "bin/tool",
            "bin/tool-again",
            &format!("{long}/"),
            &format!("{long}/file"),
            "etc/",
            "etc/hosts",
            "home/",
            "home/user/",
            "home/user/notes",
            "run/",
            "run/fifo",
            "run/null",
        ],
        "relative names, directories first and with a slash, no socket"
    );
    let tool = entry(&found, "bin/tool");
    assert_eq!((tool.mode, tool.mtime, tool.uid), (0o755, 1_600_000_000, 0));
    assert!(tool.uname.is_empty(), "no user names");
    assert_eq!(
        tool.pax
            .get("SCHILY.xattr.security.capability")
            .map(Vec::as_slice),
        Some(&CAP_NET_RAW[..])
    );
    let again = entry(&found, "bin/tool-again");
    assert_eq!(again.kind, tar::EntryType::Link);
    assert_eq!((again.link.as_deref(), again.size), (Some("bin/tool"), 0));
    assert_eq!(entry(&found, "bin/su").mode, 0o4755);
    assert_eq!(entry(&found, "home/user/notes").uid, 1000);
    assert_eq!(entry(&found, "run/fifo").kind, tar::EntryType::Fifo);
    assert_eq!(entry(&found, "run/null").kind, tar::EntryType::Char);
    assert_eq!(entry(&found, "bin/sh").link.as_deref(), Some("tool"));
    assert_eq!(
        entry(&found, "etc/hosts")
            .pax
            .get("SCHILY.xattr.user.comment"),
        Some(&b"kept".to_vec())
    );
    // 121 bytes, which no ustar field holds: a PAX record. 125 bytes split at
    // the slash fit the ustar prefix and name fields: none.
    assert!(entry(&found, &format!("{long}/")).pax.contains_key("path"));
    assert!(
        !entry(&found, &format!("{long}/file"))
            .pax
            .contains_key("path")
    );
    for e in &found {
        let only = e
            .pax
            .keys()
            .all(|k| k == "path" || k.starts_with("SCHILY.xattr."));
        assert!(only, "{}: no other PAX records: {:?}", e.name, e.pax.keys());
    }

    // GNU tar reads the names the same, the long one included.
    let layer_file = dir.path().join("layer.tar.gz");
    fs::write(&layer_file, &blob).unwrap();
    let listed = common::run(Command::new("tar").arg("-tzf").arg(&layer_file));
    assert_eq!(listed.lines().collect::<Vec<_>>(), names(&found));

    let unpacked = dir.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    extract::unpack(&tar[..], &unpacked).unwrap();
    let mut expected = tree(&source);
    expected.retain(|_, node| node.kind != "socket");
    let got = tree(&unpacked);
    assert_eq!(got, expected);
    let inode =
        |p: &str| std::os::unix::fs::MetadataExt::ino(&fs::metadata(unpacked.join(p)).unwrap());
    assert_eq!(inode("bin/tool"), inode("bin/tool-again"), "still one file");
}

/// The same files, made at different times in different directories: with
/// `SOURCE_DATE_EPOCH` the two layers are the same bytes, and times before
/// the epoch stay as they were; without it, each keeps its own times.
#[test]
fn source_date_epoch_makes_two_builds_the_same_blob() {
    if !harness::require_root("ch11 reproducible layers") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    for (tree_dir, mtime) in [(&first, 1_800_000_000), (&second, 1_800_000_777)] {
        fs::create_dir(tree_dir).unwrap();
        every_kind(tree_dir, mtime);
        set_mtime(&tree_dir.join("etc/hosts"), 1_000_000_000); // older than the epoch
    }
    let write = |tree_dir: &Path, epoch: Option<u64>| {
        let options = LayerOptions {
            source_date_epoch: epoch,
            ..LayerOptions::default()
        };
        let mut blob = Vec::new();
        let digests = layer::write_layer(tree_dir, &options, &mut blob).unwrap();
        (digests, blob)
    };
    let epoch = Some(1_700_000_000);
    let (a, blob_a) = write(&first, epoch);
    let (b, blob_b) = write(&second, epoch);
    assert_eq!(a, b, "same digests");
    assert_eq!(blob_a, blob_b, "byte for byte");
    let found = entries(&blob_a);
    assert_eq!(entry(&found, "bin/tool").mtime, 1_700_000_000, "clamped");
    assert_eq!(entry(&found, "etc/hosts").mtime, 1_000_000_000, "kept");

    let (kept_a, blob_kept) = write(&first, None);
    let (kept_b, _) = write(&second, None);
    assert_ne!(kept_a.diff_id, kept_b.diff_id);
    assert_eq!(entry(&entries(&blob_kept), "bin/tool").mtime, 1_800_000_000);
    assert_eq!(
        write(&first, None).0,
        kept_a,
        "and still the same twice over"
    );
}

/// A real overlay: the lower layer has files, the container (a shell in a
/// mount namespace of its own) deletes two of them and replaces a
/// directory's contents. The upper directory becomes a layer with OCI's
/// markers and none of overlayfs's attributes; unpacked by chapter 7 and
/// stacked on the same lower layer, it shows exactly what the container saw.
#[test]
fn an_overlay_upper_directory_unpacks_to_the_merged_view() {
    if !harness::require_root("ch11 overlay upper directory") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["lower/etc", "lower/app/old", "upper", "work", "merged"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    for (file, content) in [
        ("etc/kept", "kept\n"),
        ("etc/capable", "a program\n"),
        ("etc/deleted", "deleted\n"),
        ("etc/also-deleted", "deleted\n"),
        ("app/old/config", "old\n"),
        ("app/readme", "old\n"),
    ] {
        fs::write(d.join("lower").join(file), content).unwrap();
    }
    // Writing to a file drops its capabilities (the kernel's killpriv); a
    // chmod copies it up with them.
    xattr::set(
        d.join("lower/etc/capable"),
        "security.capability",
        &CAP_NET_RAW,
    )
    .unwrap();
    common::in_mount_namespace(&format!(
        "cd {}
         mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work merged
         rm merged/etc/deleted merged/etc/also-deleted
         echo changed > merged/etc/kept
         chmod 700 merged/etc/capable
         rm -r merged/app && mkdir merged/app && echo new > merged/app/readme
         mkdir merged/added && ln -s ../etc/kept merged/added/link
         cp -a merged view",
        d.display()
    ));
    let upper_whiteout = fs::symlink_metadata(d.join("upper/etc/deleted")).unwrap();
    assert!(ch06_rootfs_snapshot::snapshot::is_whiteout(&upper_whiteout));
    assert!(ch06_rootfs_snapshot::snapshot::is_opaque(
        &d.join("upper/app")
    ));

    let mut blob = Vec::new();
    layer::write_layer(&d.join("upper"), &LayerOptions::default(), &mut blob).unwrap();
    let found = entries(&blob);
    assert_eq!(
        names(&found),
        [
            "added/",
            "added/link",
            "app/",
            "app/.wh..wh..opq",
            "app/readme",
            "etc/",
            "etc/.wh.also-deleted",
            "etc/capable",
            "etc/.wh.deleted",
            "etc/kept",
        ]
    );
    for name in [
        "etc/.wh.deleted",
        "etc/.wh.also-deleted",
        "app/.wh..wh..opq",
    ] {
        let marker = entry(&found, name);
        // overlayfs links every whiteout to one inode: still no hard links.
        assert_eq!(
            (marker.kind, marker.size),
            (tar::EntryType::Regular, 0),
            "{name}"
        );
    }
    for e in &found {
        assert!(
            e.pax.keys().all(|k| !k.contains("overlay")),
            "{}: {:?}",
            e.name,
            e.pax.keys()
        );
    }
    assert!(
        entry(&found, "etc/capable")
            .pax
            .contains_key("SCHILY.xattr.security.capability"),
        "copied up with the file, and kept"
    );

    // Chapter 7 unpacks the layer; overlayfs stacks it on the lower layer.
    let mut tar = Vec::new();
    std::io::copy(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar).unwrap();
    fs::create_dir(d.join("unpacked")).unwrap();
    extract::unpack(&tar[..], &d.join("unpacked")).unwrap();
    common::in_mount_namespace(&format!(
        "cd {}
         mkdir stacked
         mount -t overlay overlay -o ro,lowerdir=unpacked:lower stacked
         cp -a stacked again",
        d.display()
    ));
    let (seen, again) = (tree(&d.join("view")), tree(&d.join("again")));
    assert!(!seen.contains_key(Path::new("etc/deleted")));
    assert!(!seen.contains_key(Path::new("app/old")));
    assert_eq!(again, seen);
}

/// The convenience that writes into the store: the blob is named by its
/// digest, and nothing else is left in the blob directory, after a layer
/// or after a failure.
#[test]
fn a_layer_blob_lands_in_the_store_or_not_at_all() {
    if !harness::require_root("ch11 layer blob in the store") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let changes = dir.path().join("changes");
    fs::create_dir(&changes).unwrap();
    fs::write(changes.join("file"), "content\n").unwrap();
    let digests = layer::write_layer_blob(&store, &changes, &LayerOptions::default()).unwrap();
    let blob = fs::read(store.blob_path(&digests.digest).unwrap()).unwrap();
    assert_eq!(digest::sha256(&blob), digests.digest);
    let listing = || -> Vec<_> {
        fs::read_dir(store.blob_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect()
    };
    assert_eq!(listing().len(), 1);

    // A name a layer cannot hold fails the layer half way: no blob, no temp.
    fs::write(changes.join(".wh.sneaky"), "").unwrap();
    let error = layer::write_layer_blob(&store, &changes, &LayerOptions::default())
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("refused: \".wh.sneaky\""), "{error}");
    assert_eq!(listing().len(), 1, "{:?}", listing());
}

/// overlayfs's markers are read in the namespace of the mount that made the
/// upper directory, and dropped in both; an upper directory of a `metacopy`
/// overlay, whose files may have no data of their own, is refused.
#[test]
fn overlay_markers_come_from_the_mounts_namespace() {
    if !harness::require_root("ch11 overlay attribute namespaces") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let changes = dir.path();
    fs::create_dir(changes.join("opaque")).unwrap();
    xattr::set(changes.join("opaque"), "user.overlay.opaque", b"y").unwrap();
    fs::write(changes.join("gone"), "").unwrap();
    xattr::set(changes.join("gone"), "user.overlay.whiteout", b"").unwrap();
    let names_with = |overlay_xattrs| {
        let options = LayerOptions {
            overlay_xattrs,
            ..LayerOptions::default()
        };
        let mut blob = Vec::new();
        layer::write_layer(changes, &options, &mut blob).unwrap();
        let found = entries(&blob);
        assert!(found.iter().all(|e| e.pax.is_empty()), "dropped: {found:?}");
        names(&found)
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names_with(OverlayXattrs::Trusted), ["gone", "opaque/"]);
    assert_eq!(
        names_with(OverlayXattrs::User),
        [".wh.gone", "opaque/", "opaque/.wh..wh..opq"]
    );

    xattr::set(changes.join("opaque"), "trusted.overlay.metacopy", b"").unwrap();
    let error = layer::write_layer(changes, &LayerOptions::default(), std::io::sink())
        .unwrap_err()
        .to_string();
    assert!(error.contains("metacopy"), "{error}");
}
