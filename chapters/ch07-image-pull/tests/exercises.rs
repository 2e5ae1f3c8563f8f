//! Checkers for chapter 7's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch07` (or `cargo xtask exercise ch07 rmi`).
//! The book's chapter 7 page describes each exercise; reference solutions are in
//! `book/exercises/ch07-image-pull/`.
//!
//! Every checker starts the real registry with the fixture images
//! (`harness::registry`), serves it as the Docker Hub mirror
//! (`MINIBOX_REGISTRY_MIRROR`), and runs the real binary with a store of its own
//! in a temporary directory, removed at the end with whatever a half-done
//! solution left in it. No credentials file is read (`MINIBOX_CONFIG` and
//! `DOCKER_CONFIG` point nowhere). Containers' cgroups go where the chapter's
//! tests put theirs (`harness::cgroups::test_parent`: below this process's own
//! cgroup on these machines).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch07-image-pull");

/// The fixture registry, a store (`MINIBOX_ROOT`) and a cgroup parent for one
/// checker.
struct Store {
    registry: Registry,
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Store {
    fn new(exercise: &str) -> Store {
        let registry = Registry::start();
        registry
            .push_fixtures()
            .expect("pushing the fixture images");
        Store {
            registry,
            dir: tempfile::tempdir().expect("a temporary store"),
            cgroup_parent: harness::cgroups::test_parent(&format!(
                "minibox-exercise-{}-{exercise}",
                std::process::id()
            )),
        }
    }

    /// Runs minibox with this store and the registry as Docker Hub's mirror.
    /// Every command below ends in a few seconds; one still running after 60 s
    /// has its container's PID 1 killed (by PID), then minibox itself, and fails
    /// the checker.
    fn minibox(&self, args: &[&str]) -> Output {
        let child = Command::new(MINIBOX)
            .args(args)
            .env("MINIBOX_ROOT", self.dir.path())
            .env("MINIBOX_REGISTRY_MIRROR", self.registry.host())
            .env("MINIBOX_CGROUP_PARENT", &self.cgroup_parent)
            .env("MINIBOX_CONFIG", "/nonexistent")
            .env("DOCKER_CONFIG", "/nonexistent")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run minibox");
        harness::process::wait_with_deadline(
            child,
            &format!("minibox {args:?}"),
            Duration::from_secs(60),
        )
    }

    /// `minibox pull IMAGE`, which must work; returns the digest it printed on
    /// its `Digest:` line.
    fn pull(&self, image: &str) -> String {
        let out = self.minibox(&["pull", image]);
        assert!(out.status.success(), "minibox pull {image}: {out:?}");
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Digest: "))
            .unwrap_or_else(|| panic!("minibox pull {image} printed no `Digest:` line: {out:?}"))
            .to_string()
    }

    /// The store's index, images.json: canonical reference → record.
    fn index(&self) -> BTreeMap<String, serde_json::Value> {
        let path = self.dir.path().join("images.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{} is not an index: {e}", path.display())),
            Err(_) => BTreeMap::new(),
        }
    }

    /// The record of `reference` (canonical) in the index.
    fn record(&self, reference: &str) -> serde_json::Value {
        self.index()
            .remove(reference)
            .unwrap_or_else(|| panic!("the store's index has no {reference}: {:?}", self.index()))
    }

    /// The names in one of the store's `sha256` directories (`blobs`, `layers`).
    fn entries(&self, dir: &str) -> Vec<String> {
        let path = self.dir.path().join(dir).join("sha256");
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Where the store unpacks the layer `diff_id` (`sha256:HEX`).
    fn layer(&self, diff_id: &str) -> PathBuf {
        let hex = diff_id.strip_prefix("sha256:").expect("a sha256 diff_id");
        self.dir.path().join("layers/sha256").join(hex)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The cells of one line of Docker's table: columns are at least three spaces
/// apart, and no cell holds two spaces in a row (`IMAGE ID`, `3 weeks ago`).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect()
}

/// Fails the checker with `missing` when clap refused the command line: the
/// exercise's flag or subcommand is not there yet.
fn assert_parsed(out: &Output, missing: &str) {
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("unexpected argument") && !stderr.contains("unrecognized subcommand"),
        "{missing}: {stderr}"
    );
}

/// Exercise `images-digests`: `minibox images --digests` adds a DIGEST column
/// between TAG and IMAGE ID, as `docker images --digests` does: the digest each
/// image was pulled by, the one `pull` printed on its `Digest:` line (for a
/// multi-platform image, the index's, not this platform's manifest's). Plain
/// `images` keeps its five columns.
#[test]
#[ignore = "exercise: cargo xtask exercise ch07 images-digests"]
fn exercise_images_digests() {
    if !harness::require_root("ch07 exercise images-digests") {
        return;
    }
    let store = Store::new("images-digests");
    let pulled = [
        ("busybox", store.pull("busybox")),
        ("minibox/multi", store.pull("minibox/multi")),
    ];
    let multi = store.record("docker.io/minibox/multi:latest");
    assert_ne!(
        multi["digest"], multi["manifest"],
        "the multi-platform fixture should be an index: {multi}"
    );

    let out = store.minibox(&["images", "--digests"]);
    assert_parsed(&out, "`minibox images` has no --digests flag yet");
    assert!(out.status.success(), "minibox images --digests: {out:?}");
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().map(cells),
        Some(vec![
            "REPOSITORY",
            "TAG",
            "DIGEST",
            "IMAGE ID",
            "CREATED",
            "SIZE"
        ]),
        "images --digests: the DIGEST column goes between TAG and IMAGE ID:\n{stdout}"
    );
    let rows: Vec<Vec<&str>> = lines.map(cells).collect();
    assert_eq!(rows.len(), pulled.len(), "one row per image:\n{stdout}");
    for (repository, digest) in &pulled {
        let row = rows
            .iter()
            .find(|row| row.first() == Some(repository))
            .unwrap_or_else(|| panic!("images --digests has no row for {repository}:\n{stdout}"));
        assert_eq!(
            row.get(2),
            Some(&digest.as_str()),
            "the DIGEST of {repository} should be the one `pull` printed on its Digest: line \
             (for a multi-platform image, the index's):\n{stdout}"
        );
        assert_eq!(row.len(), 6, "{repository}: six cells:\n{stdout}");
    }

    // Without the flag, the table is as before.
    let out = store.minibox(&["images"]);
    assert!(out.status.success(), "minibox images: {out:?}");
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().map(cells),
        Some(vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]),
        "plain `images` should keep its columns, without DIGEST:\n{stdout}"
    );
    assert!(
        !stdout.contains("sha256:") && lines.all(|l| cells(l).len() == 5),
        "plain `images` should show no digests:\n{stdout}"
    );
}

/// Exercise `rmi`: `minibox rmi IMAGE...` removes each reference from the
/// store's index, then deletes what no remaining image uses (its blobs, and its
/// unpacked layers), printing Docker's `Untagged:` and `Deleted:` lines. A layer
/// another image shares stays, and that image still runs without a pull. An
/// unknown image is one line of error and exit status 1.
#[test]
#[ignore = "exercise: cargo xtask exercise ch07 rmi"]
fn exercise_rmi() {
    if !harness::require_root("ch07 exercise rmi") {
        return;
    }
    let store = Store::new("rmi");
    store.pull("busybox");
    store.pull("minibox/layered");
    let busybox = store.record("docker.io/library/busybox:latest");
    let layered = store.record("docker.io/minibox/layered:latest");
    let diff_ids = |record: &serde_json::Value| -> Vec<String> {
        serde_json::from_value(record["diff_ids"].clone()).expect("diff_ids")
    };
    let (busybox_layers, layered_layers) = (diff_ids(&busybox), diff_ids(&layered));
    assert_eq!(
        layered_layers.first(),
        busybox_layers.first(),
        "the layered fixture should share busybox's bottom layer"
    );

    // The image that shares a layer goes first: the shared layer stays.
    let out = store.minibox(&["rmi", "minibox/layered"]);
    assert_parsed(&out, "`minibox rmi` is not a subcommand yet");
    assert!(out.status.success(), "minibox rmi minibox/layered: {out:?}");
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().next(),
        Some("Untagged: minibox/layered:latest"),
        "rmi should say what it untagged first, as Docker does: {out:?}"
    );
    let config = layered["config"].as_str().expect("a config digest");
    assert!(
        stdout.lines().any(|l| l == format!("Deleted: {config}")),
        "rmi should say `Deleted: {config}` (the image's ID, its config): {out:?}"
    );
    let index = store.index();
    assert_eq!(
        index.keys().collect::<Vec<_>>(),
        ["docker.io/library/busybox:latest"],
        "after rmi minibox/layered, images.json should list busybox alone"
    );
    assert!(
        store.layer(&busybox_layers[0]).is_dir(),
        "rmi minibox/layered deleted the bottom layer, which busybox still uses"
    );
    for diff_id in &layered_layers[1..] {
        assert!(
            !store.layer(diff_id).exists(),
            "rmi minibox/layered left its own layer {diff_id}"
        );
    }
    assert!(
        !store
            .entries("blobs")
            .contains(&config["sha256:".len()..].to_string()),
        "rmi minibox/layered left its config blob {config}"
    );
    let out = store.minibox(&["run", "busybox", "true"]);
    assert!(
        out.status.success() && !text(&out.stderr).contains("Unable to find image"),
        "after rmi minibox/layered, busybox should still run from the store, without a pull: {out:?}"
    );

    // The last image goes: nothing is left.
    let out = store.minibox(&["rmi", "busybox"]);
    assert!(out.status.success(), "minibox rmi busybox: {out:?}");
    assert_eq!(
        text(&out.stdout).lines().next(),
        Some("Untagged: busybox:latest"),
        "{out:?}"
    );
    assert_eq!(
        store.index(),
        BTreeMap::new(),
        "after rmi busybox, images.json should have no entries"
    );
    assert_eq!(
        store.entries("layers"),
        Vec::<String>::new(),
        "after rmi busybox, no image uses any layer: layers/sha256 should be empty"
    );
    assert_eq!(
        store.entries("blobs"),
        Vec::<String>::new(),
        "after rmi busybox, no image uses any blob: blobs/sha256 should be empty"
    );

    // An image the store does not have: one line, status 1.
    let out = store.minibox(&["rmi", "hello-world"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rmi hello-world (not pulled): {out:?}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("No such image: hello-world") && stderr.lines().count() == 1,
        "rmi hello-world (not pulled): expected one line `No such image: hello-world...`, \
         got {stderr:?}"
    );
}
