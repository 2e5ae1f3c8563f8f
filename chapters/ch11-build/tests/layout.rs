//! `save` and `load`, checked against the tools the archives are for: an
//! image that skopeo copied out of the real registry loads, saves back as an
//! OCI layout that skopeo and umoci read (and that loads again as the same
//! image); Docker's format loads whether skopeo or an old `docker save`
//! wrote it; a corrupted blob fails in one line and leaves the store as it
//! was; and a pulled image, whose compressed layers chapter 7 did not keep,
//! cannot be saved, and `save` says why.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ch07_image_pull::reference::Reference;
use ch07_image_pull::store::Store;
use ch07_image_pull::{digest, platform, progress::Output, pull, registry::Client};
use ch11_build::layout::{self, IMAGE_NAME, REF_NAME};
use common::{entries, names, tree};
use harness::images::{self, Blob, Image};
use harness::registry::Registry;

/// skopeo, with a signature policy of the test's own, its temporary files in
/// `dir`, and its blob-info cache (which it keeps in /var/lib/containers as
/// root) on a tmpfs of a mount namespace of its own: nothing outside the
/// test's directory is written.
fn skopeo(dir: &Path, args: &[&str]) -> String {
    installed("skopeo");
    let policy = dir.join("policy.json");
    fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    common::run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-euc"])
            .arg(r#"mount -t tmpfs tmpfs /var/lib && exec skopeo --policy "$0" "$@""#)
            .arg(&policy)
            .args(args)
            .env("TMPDIR", dir),
    )
}

/// Fails the test, saying what to do, when the host lacks a tool the test
/// checks our archives with. (Never a skip: `cargo xtask test` installs them.)
fn installed(tool: &str) {
    let path = Path::new("/usr/bin").join(tool);
    assert!(
        path.is_file(),
        "{} is missing: install {tool} (cargo xtask test does)",
        path.display()
    );
}

/// A registry serving `layered` (busybox, then a layer with a whiteout and
/// an opaque directory): three layers.
fn registry_with_layered() -> (Registry, Image) {
    let registry = Registry::start();
    let image = images::layered_on_busybox().unwrap();
    registry.push("library/layered", "latest", &image);
    (registry, image)
}

fn load(store: &Store, archive: &Path) -> Vec<String> {
    layout::load(store, fs::File::open(archive).unwrap()).unwrap()
}

fn save(store: &Store, names: &[&str]) -> Vec<u8> {
    let references: Vec<Reference> = names.iter().map(|n| Reference::parse(n).unwrap()).collect();
    let mut out = Vec::new();
    layout::save(store, &references, &mut out).unwrap();
    out
}

/// What a path of a tar holds.
fn member(archive: &[u8], name: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if *entry.path_bytes() == *name.as_bytes() {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("no {name} in the archive")
}

/// Every file and directory of the store: what a failed load must not change.
fn store_contents(store: &Store) -> BTreeMap<PathBuf, Vec<u8>> {
    tree(&store.root)
        .into_iter()
        .filter(|(path, _)| !path.starts_with("lock"))
        .map(|(path, node)| (path, node.content))
        .collect()
}

/// The image's layers in `store`, each as a tree. A whiteout's own time is
/// when it was unpacked, not part of the image: it is left out.
fn layer_trees(store: &Store, name: &str) -> Vec<BTreeMap<PathBuf, common::Node>> {
    let record = store.image(name).unwrap().unwrap();
    let dirs = ch07_image_pull::image::layer_dirs(store, &record).unwrap();
    let mut trees: Vec<_> = dirs.iter().map(|d| tree(d)).collect();
    for node in trees.iter_mut().flat_map(|t| t.values_mut()) {
        if node.kind == "char" && node.content == b"0" {
            node.mtime = 0;
        }
    }
    trees
}

/// Fails with the first path where two trees differ (a whole tree in a
/// message is thousands of lines).
fn assert_same_tree<N: PartialEq + std::fmt::Debug>(
    a: &BTreeMap<PathBuf, N>,
    b: &BTreeMap<PathBuf, N>,
) {
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
    for key in keys {
        assert_eq!(a.get(key), b.get(key), "at {}", key.display());
    }
}

/// An image skopeo copied from the registry into an OCI archive loads; saved
/// again it is an OCI layout with Docker's manifest.json, every blob its
/// digest, the registry's own manifest kept byte for byte, the same bytes
/// every time; skopeo reads it both ways, umoci unpacks it to the image's
/// files, and it loads into another store as the same image.
#[test]
fn an_image_saves_as_a_layout_that_oci_and_docker_tools_read() {
    if !harness::require_root("ch11 save and load") {
        return;
    }
    let (registry, image) = registry_with_layered();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source = format!("docker://{}/library/layered:latest", registry.host());
    let from_skopeo = format!(
        "oci-archive:{}:layered:latest",
        d.join("from-skopeo.tar").display()
    );
    skopeo(
        d,
        &["copy", "--src-tls-verify=false", &source, &from_skopeo],
    );

    let first = Store::open(&d.join("first")).unwrap();
    assert_eq!(load(&first, &d.join("from-skopeo.tar")), ["layered:latest"]);
    let name = "docker.io/library/layered:latest";
    let record = first.image(name).unwrap().expect("tagged");
    assert_eq!(record.config, image.config.digest, "the same image ID");
    assert_eq!(
        record.manifest, image.manifest.digest,
        "the registry's manifest"
    );
    let diff_ids: Vec<&String> = image.layers.iter().map(|l| &l.diff_id).collect();
    assert_eq!(record.diff_ids.iter().collect::<Vec<_>>(), diff_ids);

    let saved = save(&first, &["layered"]);
    assert_eq!(
        save(&first, &["layered:latest"]),
        saved,
        "the same bytes again"
    );
    let found = entries(&saved);
    let mut blobs: Vec<String> = image.layers.iter().map(|l| l.blob.digest.clone()).collect();
    blobs.extend([image.config.digest.clone(), image.manifest.digest.clone()]);
    blobs.sort();
    let mut expected = vec!["blobs/".to_string(), "blobs/sha256/".to_string()];
    expected.extend(blobs.iter().map(|b| format!("blobs/sha256/{}", &b[7..])));
    expected.extend(["index.json", "manifest.json", "oci-layout"].map(String::from));
    assert_eq!(names(&found), expected);
    for blob in &blobs {
        let bytes = member(&saved, &format!("blobs/sha256/{}", &blob[7..]));
        assert_eq!(&digest::sha256(&bytes), blob, "a blob is its digest");
    }
    assert_eq!(
        member(
            &saved,
            &format!("blobs/sha256/{}", &image.manifest.digest[7..])
        ),
        image.manifest.bytes
    );
    let index: serde_json::Value = serde_json::from_slice(&member(&saved, "index.json")).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(entry["digest"], image.manifest.digest.as_str());
    assert_eq!(entry["annotations"][IMAGE_NAME], name);
    assert_eq!(entry["annotations"][REF_NAME], "latest");
    let docker: serde_json::Value =
        serde_json::from_slice(&member(&saved, "manifest.json")).unwrap();
    let layers: Vec<String> = image
        .layers
        .iter()
        .map(|l| format!("blobs/sha256/{}", &l.blob.digest[7..]))
        .collect();
    assert_eq!(
        docker,
        serde_json::json!([{
            "Config": format!("blobs/sha256/{}", &image.config.digest[7..]),
            "RepoTags": ["layered:latest"],
            "Layers": layers,
        }])
    );
    assert_eq!(
        member(&saved, "oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );

    // skopeo reads the OCI layout by its tag, and Docker's manifest.json.
    let saved_file = d.join("saved.tar");
    fs::write(&saved_file, &saved).unwrap();
    let raw = skopeo(
        d,
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}:latest", saved_file.display()),
        ],
    );
    assert_eq!(raw.as_bytes(), image.manifest.bytes);
    let as_docker = format!("docker-archive:{}", saved_file.display());
    let copied = format!("oci:{}:copied", d.join("via-docker-archive").display());
    skopeo(d, &["copy", &as_docker, &copied]);

    // umoci unpacks the layout to the image's files.
    let layout_dir = d.join("layout");
    tar::Archive::new(&saved[..]).unpack(&layout_dir).unwrap();
    let bundle = d.join("bundle");
    installed("umoci");
    common::run(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:latest", layout_dir.display()))
            .arg(&bundle),
    );
    let merged = d.join("merged");
    fs::create_dir(&merged).unwrap();
    for layer in ch07_image_pull::image::layer_dirs(&first, &record).unwrap() {
        ch06_rootfs_snapshot::snapshot::copy_layer(&layer, &merged).unwrap();
    }
    let without_times = |t: BTreeMap<PathBuf, common::Node>| -> BTreeMap<_, _> {
        t.into_iter()
            .map(|(p, n)| (p, (n.kind, n.mode, n.uid, n.content)))
            .collect()
    };
    let unpacked_by_umoci = without_times(tree(&bundle.join("rootfs")));
    assert!(unpacked_by_umoci.contains_key(Path::new("opaque/new")));
    assert!(!unpacked_by_umoci.contains_key(Path::new("etc/deleted")));
    assert_same_tree(&unpacked_by_umoci, &without_times(tree(&merged)));

    let second = Store::open(&d.join("second")).unwrap();
    assert_eq!(load(&second, &saved_file), ["layered:latest"]);
    assert_eq!(
        second.image(name).unwrap().unwrap(),
        record,
        "the same record"
    );
    let (a, b) = (layer_trees(&first, name), layer_trees(&second, name));
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_same_tree(a, b);
    }
}

/// Appends a file to a hand-made archive.
fn add(archive: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    archive.append_data(&mut header, path, bytes).unwrap();
}

/// An old `docker save`'s archive of `images` with their tags: each layer an
/// uncompressed `ID/layer.tar` (the IDs are per image, as Docker's v1 IDs
/// were), a layer a second image shares a symlink to the first's, and the
/// layer whose diff_id is `corrupt` (if any) with one byte changed.
fn old_docker_archive(images: &[(&Image, &str)], corrupt: Option<&str>) -> Vec<u8> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut written: BTreeMap<&str, String> = BTreeMap::new();
    let mut manifest = Vec::new();
    for (i, (image, tag)) in images.iter().enumerate() {
        let mut layers = Vec::new();
        for (j, layer) in image.layers.iter().enumerate() {
            let id = format!("{i}{j}{}", &layer.diff_id[7..19]);
            let path = format!("{id}/layer.tar");
            if let Some(first) = written.get(layer.diff_id.as_str()) {
                let mut header = tar::Header::new_ustar();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                archive
                    .append_link(&mut header, &path, format!("../{first}"))
                    .unwrap();
            } else {
                let mut tar = Vec::new();
                let mut gunzip = flate2::read::GzDecoder::new(&layer.blob.bytes[..]);
                std::io::copy(&mut gunzip, &mut tar).unwrap();
                if corrupt == Some(layer.diff_id.as_str()) {
                    let middle = tar.len() / 2;
                    tar[middle] ^= 0xff;
                }
                add(&mut archive, &path, &tar);
                add(&mut archive, &format!("{id}/VERSION"), b"1.0");
                written.insert(&layer.diff_id, path.clone());
            }
            layers.push(path);
        }
        let config = format!("{}.json", &image.config.digest[7..]);
        add(&mut archive, &config, &image.config.bytes);
        manifest.push(serde_json::json!({"Config": config, "RepoTags": [tag], "Layers": layers}));
    }
    add(
        &mut archive,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    add(&mut archive, "repositories", b"{}");
    archive.into_inner().unwrap()
}

/// Docker's format loads whether skopeo wrote it (uncompressed layers named
/// by digest, a config beside them) or an old `docker save` did (each layer
/// an `ID/layer.tar`, a shared one linked): the same image IDs, layers
/// unpacked once, and such an image saves again.
#[test]
fn docker_archives_load_whether_skopeo_or_an_old_docker_wrote_them() {
    if !harness::require_root("ch11 load docker-archive") {
        return;
    }
    let (registry, image) = registry_with_layered();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source = format!("docker://{}/library/layered:latest", registry.host());
    let archive = d.join("skopeo-docker.tar");
    let target = format!("docker-archive:{}:layered:v2", archive.display());
    skopeo(d, &["copy", "--src-tls-verify=false", &source, &target]);
    let store = Store::open(&d.join("store")).unwrap();
    assert_eq!(load(&store, &archive), ["layered:v2"]);
    let record = store
        .image("docker.io/library/layered:v2")
        .unwrap()
        .unwrap();
    assert_eq!(record.config, image.config.digest);

    let busybox = images::busybox().unwrap();
    let old = old_docker_archive(
        &[(&image, "old/layered:1"), (&busybox, "old/busybox:1")],
        None,
    );
    let store = Store::open(&d.join("old-store")).unwrap();
    let loaded = layout::load(&store, &old[..]).unwrap();
    assert_eq!(loaded, ["old/layered:1", "old/busybox:1"]);
    let busybox_record = store.image("docker.io/old/busybox:1").unwrap().unwrap();
    assert_eq!(busybox_record.config, busybox.config.digest);
    assert_eq!(
        busybox_record.diff_ids[0], image.layers[0].diff_id,
        "shared"
    );
    let layers = fs::read_dir(store.root.join("layers/sha256"))
        .unwrap()
        .count();
    assert_eq!(layers, 3, "the shared layer once");
    let saved = save(&store, &["old/busybox:1"]);
    let again = Store::open(&d.join("again")).unwrap();
    let mut gzipped = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzipped, &saved).unwrap();
    let gzipped = gzipped.finish().unwrap(); // `minibox save busybox | gzip`
    assert_eq!(
        layout::load(&again, &gzipped[..]).unwrap(),
        ["old/busybox:1"]
    );
    assert_eq!(
        again
            .image("docker.io/old/busybox:1")
            .unwrap()
            .unwrap()
            .config,
        busybox.config.digest
    );
}

/// The blobs of `image`: layers, config, manifest.
fn blobs_of(image: &Image) -> Vec<&Blob> {
    let layers = image.layers.iter().map(|l| &l.blob);
    layers.chain([&image.config, &image.manifest]).collect()
}

/// An OCI archive, as containerd's export writes one: `blobs`, and an
/// `index.json` naming `top` (a manifest, or an index of platforms) `name`.
/// The bytes of the blob `corrupt` (if any) are changed.
fn oci_archive(blobs: &[&Blob], top: &Blob, name: &str, corrupt: Option<&str>) -> Vec<u8> {
    let mut archive = tar::Builder::new(Vec::new());
    for blob in blobs {
        let mut bytes = blob.bytes.clone();
        if corrupt == Some(blob.digest.as_str()) {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff; // the same length: only the digest tells
        }
        add(
            &mut archive,
            &format!("blobs/sha256/{}", &blob.digest[7..]),
            &bytes,
        );
    }
    let mut descriptor = top.descriptor();
    descriptor["annotations"] = serde_json::json!({ IMAGE_NAME: name });
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [descriptor]});
    add(
        &mut archive,
        "index.json",
        &serde_json::to_vec(&index).unwrap(),
    );
    add(
        &mut archive,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    archive.into_inner().unwrap()
}

/// An archive whose image is an index of platforms loads this machine's, as
/// a pull would choose it, and records the index as what the name points at.
#[test]
fn an_index_of_platforms_loads_this_machines_image() {
    if !harness::require_root("ch11 load multi-platform") {
        return;
    }
    let (index, images) = images::multi_platform();
    let mut blobs: Vec<&Blob> = images.iter().flat_map(blobs_of).collect();
    blobs.push(&index);
    let archive = oci_archive(&blobs, &index, "docker.io/library/multi:latest", None);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        layout::load(&store, &archive[..]).unwrap(),
        ["multi:latest"]
    );
    let record = store
        .image("docker.io/library/multi:latest")
        .unwrap()
        .unwrap();
    let host = &images[0];
    assert_eq!(record.digest, index.digest);
    assert_eq!(record.manifest, host.manifest.digest);
    assert_eq!(record.config, host.config.digest);
    assert_eq!(
        record.platform,
        format!("linux/{}", images::host_architecture())
    );
    let layer = store.layer_dir(&record.diff_ids[0]).unwrap();
    let platform = fs::read_to_string(layer.join("platform")).unwrap();
    assert_eq!(platform, format!("linux/{}\n", images::host_architecture()));
    let other = &images[1].layers[0].diff_id;
    assert!(
        !store.has_layer(other).unwrap(),
        "the other platform's layer is not unpacked"
    );
}

/// A blob whose bytes are not its digest, or a layer whose tar is not its
/// diff_id, fails the load with one line naming it; the store keeps exactly
/// what it had: no blob, layer, name or temporary file of the failed load.
#[test]
fn a_corrupted_blob_fails_the_load_in_one_line_and_stores_nothing() {
    if !harness::require_root("ch11 load corrupted") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let layered = images::layered();
    let good = oci_archive(
        &blobs_of(&layered),
        &layered.manifest,
        "docker.io/library/kept:latest",
        None,
    );
    assert_eq!(layout::load(&store, &good[..]).unwrap(), ["kept:latest"]);
    let before = store_contents(&store);

    let busybox = images::busybox().unwrap();
    let layer = &busybox.layers[0].blob.digest;
    let name = "docker.io/library/busybox:latest";
    let bad = oci_archive(&blobs_of(&busybox), &busybox.manifest, name, Some(layer));
    let error = format!("{:#}", layout::load(&store, &bad[..]).unwrap_err());
    assert!(!error.contains('\n'), "{error}");
    assert!(
        error.contains("digest mismatch") && error.contains(layer.as_str()),
        "{error}"
    );
    assert_eq!(store_contents(&store), before);

    // An uncompressed layer.tar whose bytes were changed: its diff_id says so.
    let diff_id = busybox.layers[0].diff_id.as_str();
    let old = old_docker_archive(&[(&busybox, "busybox:old")], Some(diff_id));
    let error = format!("{:#}", layout::load(&store, &old[..]).unwrap_err());
    assert!(!error.contains('\n'), "{error}");
    assert!(
        error.contains("diff_id") && error.contains(&busybox.layers[0].diff_id),
        "{error}"
    );
    assert_eq!(store_contents(&store), before);
}

/// A pulled image saves, with its layer's compressed blob as the registry
/// sent it; one pulled before chapter 7 kept those blobs (the blob removed
/// here) is refused in one line that says which blob is missing, and
/// nothing is written.
#[test]
fn saving_a_pulled_image_says_which_blob_the_store_lacks() {
    if !harness::require_root("ch11 save pulled image") {
        return;
    }
    let registry = Registry::start();
    let image = images::busybox().unwrap();
    registry.push("library/busybox", "latest", &image);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reference = Reference::parse(&format!("{}/library/busybox", registry.host())).unwrap();
    let wanted = platform::wanted(None).unwrap();
    pull::pull(
        &store,
        &Client::new(None),
        &reference,
        &wanted,
        Output::Quiet,
    )
    .unwrap();
    let mut saved = Vec::new();
    layout::save(&store, std::slice::from_ref(&reference), &mut saved).unwrap();
    assert!(!saved.is_empty());
    std::fs::remove_file(store.blob_path(&image.layers[0].blob.digest).unwrap()).unwrap();
    let mut out = Vec::new();
    let error = format!(
        "{:#}",
        layout::save(&store, &[reference], &mut out).unwrap_err()
    );
    assert!(!error.contains('\n'), "{error}");
    assert!(
        error.starts_with("cannot save") && error.contains(&image.layers[0].blob.digest),
        "{error}"
    );
    assert!(out.is_empty(), "nothing written");
}
