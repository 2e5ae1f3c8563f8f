//! Checkers for chapter 6's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch06` (or `cargo xtask exercise ch06 tmpfs`).
//! The book's chapter 6 page describes each exercise; reference solutions are in
//! `book/exercises/ch06-rootfs-snapshot/`.
//!
//! Every checker runs the real binary with the busybox image (the default layer)
//! in the harness's test environment (`harness::env::Env`): a store of its own in
//! a temporary directory, removed at the end with whatever a half-done solution
//! left in it, and a cgroup parent where the chapter's tests put theirs (below
//! this process's own cgroup on these machines), in which no cgroup may be left.
//! After every run the checker requires that no container directory is left in
//! the store.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use harness::env::Env;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch06-rootfs-snapshot");

/// A store (`MINIBOX_ROOT`) and a cgroup parent for one checker: the harness's
/// test environment, which also requires at the end that no cgroup is left.
struct Store {
    env: Env,
}

impl Store {
    fn new(exercise: &str) -> Store {
        // Built on demand, where the chapter's default `--layer` looks for it.
        harness::fixtures::busybox_rootfs();
        Store {
            env: Env::builder(MINIBOX, "ch06", &format!("exercise-{exercise}")).build(),
        }
    }

    /// Runs minibox with this store. Every command below ends in well under a
    /// second; one still running after 60 s has its container's PID 1 killed (by
    /// PID), then minibox itself, and fails the checker.
    fn minibox(&self, args: &[&str]) -> Output {
        let child = self.env.command(args).spawn().expect("run minibox");
        harness::process::wait_with_deadline(
            child,
            &format!("minibox {}", args.join(" ")),
            Duration::from_secs(60),
        )
    }

    /// The container directories in the store.
    fn containers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.env.root().join("containers"))
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    fn assert_empty(&self, what: &str) {
        let left = self.containers();
        assert!(
            left.is_empty(),
            "expected no container directory in the store after `{what}`, but it left {left:?}"
        );
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exercise `read-only`: `minibox run --read-only` gives the container a root
/// filesystem it cannot write, with both snapshotters, like
/// `docker run --read-only`; /dev, /dev/shm and /proc keep working; nothing is
/// written to the image and no container directory is left.
#[test]
#[ignore = "exercise: cargo xtask exercise ch06 read-only"]
fn exercise_read_only() {
    if !harness::require_root("ch06 exercise read-only") {
        return;
    }
    let store = Store::new("read-only");
    let image = harness::fixtures::busybox_rootfs();
    let release = std::fs::read_to_string(image.join("etc/minibox-release")).unwrap();

    for snapshotter in ["overlay", "copy"] {
        let out = store.minibox(&[
            "run",
            "--quiet",
            "--snapshotter",
            snapshotter,
            "--read-only",
            "--",
            "sh",
            "-c",
            "touch /x",
        ]);
        assert!(
            !out.status.success() && text(&out.stderr).contains("Read-only file system"),
            "expected `touch /x` to fail with \"Read-only file system\" with --snapshotter \
             {snapshotter} --read-only, but {}",
            harness::transcript::seen(&out)
        );
        assert!(
            !image.join("x").exists(),
            "expected the image to stay untouched, but the container wrote x into it \
             (--snapshotter {snapshotter} --read-only)"
        );
        store.assert_empty(&format!("--snapshotter {snapshotter} --read-only"));

        // The image is readable, and the mounts on top of the root keep their own
        // flags.
        let script = "cat /etc/minibox-release && echo hi > /dev/null && touch /dev/shm/z \
                      && test -d /proc/1 && echo ok";
        let out = store.minibox(&[
            "run",
            "--quiet",
            "--snapshotter",
            snapshotter,
            "--read-only",
            "--",
            "sh",
            "-c",
            script,
        ]);
        assert!(
            out.status.success() && text(&out.stdout) == format!("{release}ok\n"),
            "expected the image to be readable and /dev/null, /dev/shm and /proc to work with \
             --snapshotter {snapshotter} --read-only (the script prints the release line, then \
             ok), but {}",
            harness::transcript::seen(&out)
        );
        store.assert_empty(&format!("--snapshotter {snapshotter} --read-only"));
    }
}

/// Exercise `tmpfs`: `minibox run --tmpfs PATH` (repeatable) mounts a fresh
/// tmpfs at PATH inside the container, like `docker run --tmpfs`: what is written
/// there never reaches the container's writable layer, so `--diff` shows only a
/// mount point that had to be created; a relative PATH is refused with one line
/// and 125, before anything is created.
#[test]
#[ignore = "exercise: cargo xtask exercise ch06 tmpfs"]
fn exercise_tmpfs() {
    if !harness::require_root("ch06 exercise tmpfs") {
        return;
    }
    let store = Store::new("tmpfs");

    let out = store.minibox(&[
        "run",
        "--quiet",
        "--tmpfs",
        "/scratch",
        "--diff",
        "--",
        "sh",
        "-c",
        "echo x > /scratch/f && cat /scratch/f",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().next() == Some("x"),
        "expected the container to write and read /scratch/f with --tmpfs /scratch, but {}",
        harness::transcript::seen(&out)
    );
    assert!(
        stdout.lines().any(|l| l == "A /scratch"),
        "expected --diff to list the mount point `A /scratch`, created in the writable layer, \
         but {}",
        harness::transcript::seen(&out)
    );
    assert!(
        !stdout.contains("/scratch/f"),
        "expected /scratch/f to stay out of the writable layer (/scratch is a tmpfs), but \
         --diff lists it: {}",
        harness::transcript::seen(&out)
    );
    store.assert_empty("--tmpfs /scratch");

    // Repeatable; each is a tmpfs; over a directory the image has (/tmp), nothing
    // reaches the writable layer at all, not even the mount point.
    let script = "echo y > /tmp/g && \
                  awk '$3 == \"tmpfs\" && ($2 == \"/scratch\" || $2 == \"/tmp\") { print $2 }' \
                  /proc/mounts | sort";
    let out = store.minibox(&[
        "run", "--quiet", "--tmpfs", "/scratch", "--tmpfs", "/tmp", "--diff", "--", "sh", "-c",
        script,
    ]);
    assert!(
        out.status.success() && text(&out.stdout) == "/scratch\n/tmp\nA /scratch\n",
        "expected --tmpfs /scratch --tmpfs /tmp to give two tmpfs mounts, and only \
         `A /scratch` in the diff (/tmp is in the image), but {}",
        harness::transcript::seen(&out)
    );
    store.assert_empty("--tmpfs /scratch --tmpfs /tmp");

    // A relative path: one line, 125, nothing in the store.
    let out = store.minibox(&["run", "--quiet", "--tmpfs", "scratch", "--", "true"]);
    let stderr = text(&out.stderr);
    assert!(
        out.status.code() == Some(125)
            && stderr.starts_with("minibox: ")
            && stderr.lines().count() == 1,
        "expected `minibox run --tmpfs scratch -- true` (a relative path) to be refused with \
         status 125 and one line `minibox: ...`, but {}",
        harness::transcript::seen(&out)
    );
    store.assert_empty("--tmpfs scratch");
}
