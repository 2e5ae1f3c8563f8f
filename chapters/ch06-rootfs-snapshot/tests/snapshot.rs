//! Chapter 6 against the real kernel (needs root): containers made from one image
//! do not see each other's writes and never change the image; deletions are
//! whiteouts in the container's own layer; layers stack in order; nothing is
//! mounted on the host, and no container directory is left, after `--rm`, after
//! SIGKILL, after a failed start; `--keep` and `minibox diff`; the copy
//! snapshotter; a store on overlayfs is refused with advice. Each test has a
//! store and a cgroup parent of its own (`harness::env::Env`), and no cgroup
//! may be left in any hierarchy at its end.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::MINIBOX;
use harness::env::Env;

/// A store and a cgroup parent of this test's own (the harness's `Env`, which
/// checks at the end that no cgroup is left), and a small two-layer image: the
/// busybox root below, and a layer with `/data/file` and `/etc/layer` on top.
struct Setup {
    env: Env,
    image: tempfile::TempDir,
}

impl Setup {
    fn new(test: &str) -> Setup {
        let image = tempfile::tempdir().unwrap();
        let top = image.path().join("top");
        fs::create_dir_all(top.join("data")).unwrap();
        fs::create_dir_all(top.join("etc")).unwrap();
        fs::write(top.join("data/file"), "from the image\n").unwrap();
        fs::write(top.join("etc/layer"), "top\n").unwrap();
        Setup {
            env: Env::builder(MINIBOX, "ch06", test).build(),
            image,
        }
    }

    fn layers(&self) -> Vec<PathBuf> {
        vec![
            harness::fixtures::busybox_rootfs(),
            self.image.path().join("top"),
        ]
    }

    /// `minibox run --layer ... ARGS` with this store.
    fn command(&self, args: &[&str]) -> Command {
        self.command_with_layers(&self.layers(), args)
    }

    /// `minibox run` with `layers` (bottom first) and this store.
    fn command_with_layers(&self, layers: &[PathBuf], args: &[&str]) -> Command {
        let mut command = self.env.command(&["run"]);
        for layer in layers {
            command.arg("--layer").arg(layer);
        }
        command.args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run minibox")
    }

    /// `minibox ARGS` (not `run`) with this store.
    fn minibox(&self, args: &[&str]) -> Output {
        self.env.command(args).output().expect("run minibox")
    }

    fn containers(&self) -> Vec<PathBuf> {
        fs::read_dir(self.env.root().join("containers"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// Every path below `dir` with its kind, size, mode and content: changes if
/// anything in the tree does.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, Vec<u8>)> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            let content = if meta.is_file() {
                fs::read(entry.path()).unwrap()
            } else {
                Vec::new()
            };
            found.insert(entry.path(), (meta.mode(), meta.len(), content));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    found
}

fn mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn containers_from_one_image_do_not_see_each_others_writes() {
    if !harness::require_root("ch06 isolation between containers") {
        return;
    }
    let setup = Setup::new("isolation");
    let before: Vec<_> = setup.layers().iter().map(|l| tree(l)).collect();

    let a = setup.run(&[
        "--quiet",
        "--keep",
        "sh",
        "-c",
        "echo a > /data/a && cat /data/file",
    ]);
    assert!(a.status.success(), "{a:?}");
    assert_eq!(stdout(&a), "from the image\n", "{a:?}");
    let b = setup.run(&[
        "--quiet",
        "--keep",
        "sh",
        "-c",
        "echo b > /data/b && ls /data",
    ]);
    assert!(b.status.success(), "{b:?}");
    assert_eq!(stdout(&b), "b\nfile\n", "B saw A's file: {b:?}");

    // Each kept container has its own write, and only its own, in its upper layer.
    let mut uppers: Vec<Vec<String>> = setup
        .containers()
        .iter()
        .map(|c| {
            fs::read_dir(c.join("upper/data"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .collect();
    uppers.sort();
    assert_eq!(uppers, [["a"], ["b"]]);

    let after: Vec<_> = setup.layers().iter().map(|l| tree(l)).collect();
    assert!(before == after, "an image layer changed");
}

#[test]
fn a_deleted_image_file_is_a_whiteout_in_the_containers_layer() {
    if !harness::require_root("ch06 whiteouts") {
        return;
    }
    let setup = Setup::new("whiteout");
    let out = setup.run(&[
        "--quiet",
        "--keep",
        "--diff",
        "sh",
        "-c",
        "rm /data/file && echo new > /data/new",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "C /data\nD /data/file\nA /data/new\n");
    let container = &setup.containers()[0];
    let whiteout = fs::symlink_metadata(container.join("upper/data/file")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    // The image's own file is untouched.
    let lower = setup.image.path().join("top/data/file");
    assert_eq!(fs::read_to_string(lower).unwrap(), "from the image\n");
}

#[test]
fn a_directory_removed_and_made_again_is_opaque_and_its_old_files_are_deleted() {
    if !harness::require_root("ch06 opaque directories") {
        return;
    }
    let setup = Setup::new("opaque-dir");
    let out = setup.run(&[
        "--quiet",
        "--keep",
        "--diff",
        "sh",
        "-c",
        "rm -r /data && mkdir /data && echo n > /data/n && ls /data",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "n\nC /data\nD /data/file\nA /data/n\n");
    let upper = setup.containers()[0].join("upper/data");
    assert!(
        ch06_rootfs_snapshot::snapshot::is_opaque(&upper),
        "overlayfs made no opaque directory"
    );
    // The copy snapshotter keeps no record, so --diff with it is refused up front.
    let out = setup.run(&["--quiet", "--snapshotter", "copy", "--diff", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "minibox: --diff needs the overlay snapshotter: a copy keeps no record of what changed\n"
    );
}

#[test]
fn an_opaque_directory_in_a_layer_replaces_the_one_below_with_either_snapshotter() {
    if !harness::require_root("ch06 opaque layers") {
        return;
    }
    let setup = Setup::new("opaque-layer");
    // A third layer whose /data is opaque: the top layer's /data/file is hidden.
    let replacing = setup.image.path().join("replacing");
    fs::create_dir_all(replacing.join("data")).unwrap();
    fs::write(replacing.join("data/only"), "only me\n").unwrap();
    // Marked with chapter 6's own function: the overlay snapshotter's kernel
    // is the judge of the format, so a wrong xattr fails the overlay case.
    ch06_rootfs_snapshot::snapshot::mark_opaque(&replacing.join("data")).unwrap();
    for snapshotter in ["overlay", "copy"] {
        let layers: Vec<PathBuf> = setup
            .layers()
            .into_iter()
            .chain([replacing.clone()])
            .collect();
        let out = setup
            .command_with_layers(
                &layers,
                &["--quiet", "--snapshotter", snapshotter, "ls", "/data"],
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{snapshotter}: {out:?}");
        assert_eq!(stdout(&out), "only\n", "{snapshotter}: {out:?}");
    }
}

#[test]
fn layers_stack_in_order_and_the_top_one_wins() {
    if !harness::require_root("ch06 layer order") {
        return;
    }
    let setup = Setup::new("order");
    // The busybox layer has no /etc/layer; give a third layer below the top one
    // that has it too, with other content.
    let middle = setup.image.path().join("middle/etc");
    fs::create_dir_all(&middle).unwrap();
    fs::write(middle.join("layer"), "middle\n").unwrap();
    fs::write(middle.join("only-in-middle"), "still visible\n").unwrap();
    let layers = [
        harness::fixtures::busybox_rootfs(),
        setup.image.path().join("middle"),
        setup.image.path().join("top"),
    ];
    let out = setup
        .command_with_layers(
            &layers,
            &[
                "--quiet",
                "cat",
                "/etc/layer",
                "/etc/only-in-middle",
                "/etc/minibox-release",
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        "top\nstill visible\nminibox busybox root filesystem\n",
        "{out:?}"
    );
}

#[test]
fn nothing_is_left_after_rm_sigkill_or_a_failed_start() {
    if !harness::require_root("ch06 cleanup") {
        return;
    }
    let setup = Setup::new("cleanup");
    let before = mountinfo();

    let out = setup.run(&["--quiet", "sh", "-c", "echo x > /x"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        setup.containers().is_empty(),
        "--rm left {:?}",
        setup.containers()
    );

    // A failed start: the command is not in the image.
    let out = setup.run(&["--quiet", "bash"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(setup.containers().is_empty());

    // SIGKILL of the container from outside.
    let mut child = setup
        .command(&["sh", "-c", "echo ready; sleep 30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    assert_eq!(mountinfo(), before, "the overlay is visible on the host");
    // The container's PID 1 is minibox's only child.
    let minibox_pid = child.id();
    let children =
        fs::read_to_string(format!("/proc/{minibox_pid}/task/{minibox_pid}/children")).unwrap();
    let pid1: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: kill(2) of our container's PID 1, a child minibox has not reaped.
    assert_eq!(unsafe { libc::kill(pid1, libc::SIGKILL) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(137));
    assert!(setup.containers().is_empty());
    assert_eq!(mountinfo(), before);

    // A bad layer: checked before anything is made.
    let out = setup.minibox(&["run", "--layer", "/no/such/layer", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "minibox: image layer \"/no/such/layer\" is not a directory\n"
    );
    assert!(setup.containers().is_empty());
}

#[test]
fn a_kept_container_can_be_diffed_later() {
    if !harness::require_root("ch06 keep and diff") {
        return;
    }
    let setup = Setup::new("keep");
    let out = setup.run(&[
        "--quiet",
        "--keep",
        "sh",
        "-c",
        "echo changed >> /etc/layer",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let id = stderr
        .strip_prefix("minibox: kept container ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no kept line: {stderr:?}"))
        .to_string();
    assert_eq!(id.len(), 12);
    let out = setup.minibox(&["diff", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "C /etc\nC /etc/layer\n");
    let out = setup.minibox(&["diff", "nosuchid"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "minibox: no such container: nosuchid\n"
    );
}

#[test]
fn the_copy_snapshotter_gives_the_same_view_and_leaves_the_image_alone() {
    if !harness::require_root("ch06 copy snapshotter") {
        return;
    }
    let setup = Setup::new("copy");
    let before = tree(&setup.image.path().join("top"));
    let out = setup.run(&[
        "--quiet",
        "--snapshotter",
        "copy",
        "sh",
        "-c",
        "cat /etc/layer && echo x > /data/file && ls -l /bin/sh",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.starts_with("top\n"), "{text}");
    assert!(
        text.contains("/bin/sh -> /bin/busybox"),
        "symlinks are copied as symlinks: {text}"
    );
    assert_eq!(before, tree(&setup.image.path().join("top")));
    assert!(setup.containers().is_empty());
}

#[test]
fn a_store_on_overlayfs_is_refused_with_advice() {
    if !harness::require_root("ch06 store on overlayfs") {
        return;
    }
    let setup = Setup::new("overlay-store");
    // An overlayfs of our own, in a mount namespace of our own (unshare), as the
    // store: as when minibox itself runs in a container.
    let base = tempfile::tempdir().unwrap();
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir(base.path().join(d)).unwrap();
    }
    let p = |d: &str| base.path().join(d).display().to_string();
    let script = format!(
        "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {} && MINIBOX_ROOT={} {MINIBOX} run --quiet --layer {} true",
        p("lower"),
        p("upper"),
        p("work"),
        p("merged"),
        p("merged"),
        harness::fixtures::busybox_rootfs().display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("MINIBOX_CGROUP_PARENT", setup.env.cgroup_parent())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("use --snapshotter copy"), "{stderr}");
    let _ = setup;
}
