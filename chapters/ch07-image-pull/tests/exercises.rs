//! Checkers for chapter 7's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch07` (or `cargo xtask exercise ch07 rmi`).
//! The book's chapter 7 page describes each exercise; reference solutions are in
//! `book/exercises/ch07-image-pull/`.
//!
//! Every checker starts the real registry with the fixture images
//! (`harness::registry`), serves it as the Docker Hub mirror
//! (`MINIBOX_REGISTRY_MIRROR`), and runs the real binary in the harness's test
//! environment (`harness::env::Env`): a store of its own in a temporary
//! directory, removed at the end with whatever a half-done solution left in it;
//! no credentials file (`MINIBOX_CONFIG` and `DOCKER_CONFIG` point nowhere); and
//! a cgroup parent where the chapter's tests put theirs (below this process's own
//! cgroup on these machines), in which no cgroup may be left at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use harness::env::Env;
use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch07-image-pull");

/// The fixture registry, and the harness's test environment for one checker: a
/// store (`MINIBOX_ROOT`), no credentials, and a cgroup parent in which no
/// cgroup may be left at the end.
struct Store {
    /// Kept to keep the registry running; stopped when the checker ends.
    _registry: Registry,
    env: Env,
}

impl Store {
    fn new(exercise: &str) -> Store {
        let registry = Registry::start();
        registry
            .push_fixtures()
            .expect("pushing the fixture images");
        let env = Env::builder(MINIBOX, "ch07", &format!("exercise-{exercise}"))
            .mirror(&registry)
            .build();
        Store {
            _registry: registry,
            env,
        }
    }

    /// Runs minibox with this store and the registry as Docker Hub's mirror.
    /// Every command below ends in a few seconds; one still running after 60 s
    /// has its container's PID 1 killed (by PID), then minibox itself, and fails
    /// the checker.
    fn minibox(&self, args: &[&str]) -> Output {
        let child = self.env.command(args).spawn().expect("run minibox");
        harness::process::wait_with_deadline(
            child,
            &format!("minibox {}", args.join(" ")),
            Duration::from_secs(60),
        )
    }

    /// `minibox pull IMAGE`, which must work; returns the digest it printed on
    /// its `Digest:` line.
    fn pull(&self, image: &str) -> String {
        let out = self.minibox(&["pull", image]);
        assert!(
            out.status.success(),
            "expected `minibox pull {image}` to work, but {}",
            harness::transcript::seen(&out)
        );
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Digest: "))
            .unwrap_or_else(|| {
                panic!(
                    "expected `minibox pull {image}` to print a `Digest:` line, but {}",
                    harness::transcript::seen(&out)
                )
            })
            .to_string()
    }

    /// The store's index, images.json: canonical reference → record.
    fn index(&self) -> BTreeMap<String, serde_json::Value> {
        let path = self.env.root().join("images.json");
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
        let path = self.env.root().join(dir).join("sha256");
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
        self.env.root().join("layers/sha256").join(hex)
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

/// Fails the checker when clap refused the command line `command`: the
/// exercise's flag or subcommand is not there yet.
fn assert_parsed(out: &Output, command: &str) {
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("unexpected argument") && !stderr.contains("unrecognized subcommand"),
        "expected `{command}` to be accepted, but minibox refused it: {}",
        stderr.trim_end()
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
    assert_parsed(&out, "minibox images --digests");
    assert!(
        out.status.success(),
        "expected `minibox images --digests` to work, but {}",
        harness::transcript::seen(&out)
    );
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header = lines.next().map(cells).unwrap_or_default();
    assert!(
        header == ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"],
        "expected the header of `images --digests` to have a DIGEST column between TAG and \
         IMAGE ID, but it is {header:?}"
    );
    let rows: Vec<Vec<&str>> = lines.map(cells).collect();
    assert!(
        rows.len() == pulled.len(),
        "expected one row per image (busybox, minibox/multi), but `images --digests` \
         printed:\n{stdout}"
    );
    for (repository, digest) in &pulled {
        let row = rows
            .iter()
            .find(|row| row.first() == Some(repository))
            .unwrap_or_else(|| {
                panic!("expected a row for {repository}, but `images --digests` printed:\n{stdout}")
            });
        assert!(
            row.get(2) == Some(&digest.as_str()),
            "expected the DIGEST of {repository} to be {digest}, the one `pull` printed on \
             its Digest: line (for a multi-platform image, the index's), but its row is {row:?}"
        );
        assert!(
            row.len() == 6,
            "expected six cells in the row of {repository}, but it is {row:?}"
        );
    }

    // Without the flag, the table is as before.
    let out = store.minibox(&["images"]);
    assert!(
        out.status.success(),
        "expected `minibox images` to work, but {}",
        harness::transcript::seen(&out)
    );
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header = lines.next().map(cells).unwrap_or_default();
    assert!(
        header == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "expected plain `images` to keep its columns, without DIGEST, but its header is \
         {header:?}"
    );
    assert!(
        !stdout.contains("sha256:") && lines.all(|l| cells(l).len() == 5),
        "expected plain `images` to show no digests, but it printed:\n{stdout}"
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
    assert_parsed(&out, "minibox rmi minibox/layered");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().next() == Some("Untagged: minibox/layered:latest"),
        "expected `minibox rmi minibox/layered` to say first `Untagged: \
         minibox/layered:latest`, as Docker does, but {}",
        harness::transcript::seen(&out)
    );
    let config = layered["config"].as_str().expect("a config digest");
    assert!(
        stdout.lines().any(|l| l == format!("Deleted: {config}")),
        "expected `minibox rmi minibox/layered` to say `Deleted: {config}` (the image's ID, \
         its config's digest), but {}",
        harness::transcript::seen(&out)
    );
    let index = store.index();
    let names: Vec<&String> = index.keys().collect();
    assert!(
        names == ["docker.io/library/busybox:latest"],
        "expected images.json to list busybox alone after `rmi minibox/layered`, but it \
         lists {names:?}"
    );
    assert!(
        store.layer(&busybox_layers[0]).is_dir(),
        "expected the bottom layer to stay, since busybox still uses it, but `rmi \
         minibox/layered` deleted it"
    );
    for diff_id in &layered_layers[1..] {
        assert!(
            !store.layer(diff_id).exists(),
            "expected `rmi minibox/layered` to delete its own layer {diff_id}, but it is still \
             there"
        );
    }
    assert!(
        !store
            .entries("blobs")
            .contains(&config["sha256:".len()..].to_string()),
        "expected `rmi minibox/layered` to delete its config blob {config}, but it is still \
         there"
    );
    let out = store.minibox(&["run", "busybox", "true"]);
    assert!(
        out.status.success() && !text(&out.stderr).contains("Unable to find image"),
        "expected busybox to still run from the store, without a pull, after `rmi \
         minibox/layered`, but {}",
        harness::transcript::seen(&out)
    );

    // The last image goes: nothing is left.
    let out = store.minibox(&["rmi", "busybox"]);
    assert!(
        out.status.success()
            && text(&out.stdout).lines().next() == Some("Untagged: busybox:latest"),
        "expected `minibox rmi busybox` to say first `Untagged: busybox:latest`, but {}",
        harness::transcript::seen(&out)
    );
    let left = store.index();
    assert!(
        left.is_empty(),
        "expected images.json to have no entries after `rmi busybox`, but it has {:?}",
        left.keys().collect::<Vec<_>>()
    );
    for dir in ["layers", "blobs"] {
        let left = store.entries(dir);
        assert!(
            left.is_empty(),
            "expected {dir}/sha256 to be empty after `rmi busybox` (no image uses anything), \
             but it holds {left:?}"
        );
    }

    // An image the store does not have: one line, status 1.
    let out = store.minibox(&["rmi", "hello-world"]);
    let stderr = text(&out.stderr);
    assert!(
        out.status.code() == Some(1)
            && stderr.contains("No such image: hello-world")
            && stderr.lines().count() == 1,
        "expected `minibox rmi hello-world` (not pulled) to fail with status 1 and one line \
         `No such image: hello-world...`, but {}",
        harness::transcript::seen(&out)
    );
}
