//! Checkers for chapter 4's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch04` (or `cargo xtask exercise ch04 volume`).
//! The book's chapter 4 page describes each exercise; reference solutions are in
//! `book/exercises/ch04-mount-namespace/`.
//!
//! Both run the real binary against the busybox root filesystem fixture, which is a
//! directory on the host: whatever a checker (or a half-done solution) leaves in it
//! is removed again, so that the other tests keep seeing the fixture as built.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch04-mount-namespace");

/// Runs minibox with the busybox root filesystem. Every command below ends in
/// well under a second; one still running after 30 s has its container killed,
/// then minibox (`harness::process`), and fails the checker.
fn minibox(args: &[&str]) -> Output {
    let child = Command::new(MINIBOX)
        .args(args)
        .env("MINIBOX_ROOTFS", harness::fixtures::busybox_rootfs())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run minibox");
    harness::process::wait_with_deadline(
        child,
        &format!("minibox {}", args.join(" ")),
        Duration::from_secs(30),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Removes a path that a checker may have caused to exist in the fixture, when
/// dropped, so that it also happens when an assertion fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// The lines of the host's mount table that mention one of `paths`. Only those:
/// other programs on the machine may mount things while the checker runs, but a
/// mount that leaked out of the container would name the rootfs or the volume.
fn host_mounts_of(paths: &[&Path]) -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .filter(|line| {
            paths
                .iter()
                .any(|p| line.contains(p.to_str().expect("a UTF-8 path")))
        })
        .map(str::to_string)
        .collect()
}

/// Exercise `read-only`: `minibox run --read-only` mounts the root filesystem
/// read-only inside, like `docker run --read-only`, while /dev, /dev/shm and /proc
/// keep working; nothing the container tries to write reaches the host's directory.
#[test]
#[ignore = "exercise: cargo xtask exercise ch04 read-only"]
fn exercise_read_only() {
    if !harness::require_root("ch04 exercise read-only") {
        return;
    }
    let stray = harness::fixtures::busybox_rootfs().join("x");
    let _ = std::fs::remove_file(&stray); // left by an earlier attempt
    let _cleanup = RemoveOnDrop(stray.clone());

    let out = minibox(&["run", "--quiet", "--read-only", "sh", "-c", "touch /x"]);
    let written = stray.exists();
    assert!(
        !out.status.success() && text(&out.stderr).contains("Read-only file system"),
        "expected `touch /x` to fail with \"Read-only file system\" in a container run with \
         --read-only, but {}",
        harness::transcript::seen(&out)
    );
    assert!(
        !written,
        "expected the root filesystem to stay untouched with --read-only, but the container \
         created x in it (the checker removes it)"
    );

    // The mounts on top of the root filesystem are not part of it.
    let script = "echo hi > /dev/null && touch /dev/shm/z && test -d /proc/1 && echo ok";
    let out = minibox(&["run", "--quiet", "--read-only", "sh", "-c", script]);
    assert!(
        text(&out.stdout) == "ok\n",
        "expected /dev/null, /dev/shm and /proc to keep working with --read-only (the script \
         prints ok), but {}",
        harness::transcript::seen(&out)
    );
}

/// Exercise `volume`: `minibox run -v HOST_DIR:CONTAINER_DIR[:ro]` (or `--volume`)
/// bind-mounts a host directory into the container, read-only with `:ro`; a missing
/// host directory or a relative container path is refused with one line and 125
/// before anything is created; no mount is left on the host.
#[test]
#[ignore = "exercise: cargo xtask exercise ch04 volume"]
fn exercise_volume() {
    if !harness::require_root("ch04 exercise volume") {
        return;
    }
    let rootfs = harness::fixtures::busybox_rootfs();
    // The fixture has /home but not /home/data: the solution creates the mount
    // point, and the checker removes it again (only if it was not there before).
    let mount_point = rootfs.join("home/data");
    let _cleanup = (!mount_point.exists()).then(|| RemoveOnDrop(mount_point.clone()));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "hello from the host\n").unwrap();
    let host = dir.path().to_str().unwrap();
    let watched = [rootfs.as_path(), dir.path()];
    let before = host_mounts_of(&watched);

    // Bad input: one line, 125, and nothing created, neither on the host nor in
    // the root filesystem.
    let missing = dir.path().join("missing");
    let existed = mount_point.exists();
    for spec in [
        format!("{}:/home/data", missing.display()),
        format!("{host}:home/data"),
    ] {
        let out = minibox(&["run", "--quiet", "-v", &spec, "true"]);
        let stderr = text(&out.stderr);
        assert!(
            out.status.code() == Some(125)
                && stderr.starts_with("minibox: ")
                && stderr.lines().count() == 1,
            "expected `minibox run -v {spec} true` to be refused with status 125 and one line \
             `minibox: ...`, but {}",
            harness::transcript::seen(&out)
        );
        assert!(
            !missing.exists(),
            "expected `-v {spec}` to be refused, but it created the host directory"
        );
        assert!(
            mount_point.exists() == existed,
            "expected `-v {spec}` to be refused before anything is created, but it created the \
             mount point /home/data"
        );
    }

    // The host's file, seen from inside.
    let volume = format!("{host}:/home/data");
    let out = minibox(&["run", "--quiet", "-v", &volume, "cat", "/home/data/file"]);
    assert!(
        out.status.success() && text(&out.stdout) == "hello from the host\n",
        "expected `minibox run -v {volume} cat /home/data/file` to print the host's file, \
         \"hello from the host\", but {}",
        harness::transcript::seen(&out)
    );

    // Not a copy: what the container writes is on the host afterwards.
    let script = "echo written inside > /home/data/new";
    let out = minibox(&["run", "--quiet", "--volume", &volume, "sh", "-c", script]);
    assert!(
        out.status.success(),
        "expected the container to write /home/data/new with --volume {volume}, but {}",
        harness::transcript::seen(&out)
    );
    assert!(
        std::fs::read_to_string(dir.path().join("new"))
            .ok()
            .as_deref()
            == Some("written inside\n"),
        "expected what the container wrote to /home/data to be in {host} on the host (a bind \
         mount is not a copy), but it is not"
    );

    // Read-only with `:ro`: reading works, writing fails.
    let read_only = format!("{volume}:ro");
    let script = "cat /home/data/file && touch /home/data/y";
    let out = minibox(&["run", "--quiet", "-v", &read_only, "sh", "-c", script]);
    assert!(
        text(&out.stdout) == "hello from the host\n"
            && !out.status.success()
            && text(&out.stderr).contains("Read-only file system"),
        "expected a `:ro` volume to be readable, and `touch` in it to fail with \"Read-only \
         file system\", but {}",
        harness::transcript::seen(&out)
    );
    assert!(
        !dir.path().join("y").exists(),
        "expected the `:ro` volume to stay unwritten, but the container created y in it"
    );

    let after = host_mounts_of(&watched);
    assert!(
        after == before,
        "expected no mount of the volume or the root filesystem to be left on the host, but \
         the host's mount table now has {:?}",
        after
            .iter()
            .filter(|l| !before.contains(l))
            .collect::<Vec<_>>()
    );
}
