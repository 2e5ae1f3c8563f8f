//! An image's symbolic links against the runtime's own mounts (needs root).
//! A root filesystem whose `/proc`, `/sys` or `/dev` is a link out of it, by
//! an absolute path or by climbing with `..`, to a directory the test owns
//! on the host: after `enter_root`, in a forked child with a mount namespace
//! of its own, nothing was created in that directory and nothing mounted on
//! it. `/proc` and `/sys` behind a link are refused, as runc refuses them;
//! `/dev` gets its tmpfs where the link leads *inside* the root, as runc's
//! does, and a container started with it finds its devices there.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use ch04_mount_namespace::mount::{self, Isolation};
use common::MINIBOX;
use harness::mount_ns::{in_private_mount_namespace, mount_points_of};

/// A host directory outside the root filesystem, which links will name, and
/// a root filesystem beside it with the mount points a test does not replace.
struct Scene {
    _dir: tempfile::TempDir,
    outside: PathBuf,
    rootfs: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let (outside, rootfs) = (dir.path().join("outside"), dir.path().join("rootfs"));
        for path in [&outside, &rootfs.join("proc"), &rootfs.join("sys")] {
            fs::create_dir_all(path).unwrap();
        }
        Scene {
            _dir: dir,
            outside,
            rootfs,
        }
    }

    /// The two ways out: `/outside`'s absolute path, and `..` enough times
    /// to climb from `rootfs/NAME` to the host's `/` first.
    fn links(&self) -> [String; 2] {
        let path = self.outside.to_str().unwrap();
        [path.to_string(), format!("../../../../../../../..{path}")]
    }

    /// Makes `rootfs/name` a symbolic link to `target`.
    fn link(&self, name: &str, target: &str) {
        let entry = self.rootfs.join(name);
        let _ = fs::remove_dir(&entry);
        let _ = fs::remove_file(&entry);
        symlink(target, entry).unwrap();
    }

    /// Where `outside` is as the root filesystem sees it: the place a link
    /// to it leads when it is resolved inside the root.
    fn outside_inside(&self) -> PathBuf {
        self.rootfs.join(self.outside.strip_prefix("/").unwrap())
    }

    /// Fails if anything exists in `outside` (on the host's side).
    fn assert_outside_untouched(&self) {
        let entries: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(entries.is_empty(), "created outside the root: {entries:?}");
    }
}

/// In the child: nothing mounted on or below `outside`.
fn nothing_mounted_on(outside: &Path, mountinfo: &str) -> Result<()> {
    let outside = outside.to_str().unwrap();
    let on: Vec<_> = mount_points_of(mountinfo)
        .into_iter()
        .filter(|m| m.starts_with(outside))
        .collect();
    ensure!(on.is_empty(), "mounted outside the root: {on:?}");
    Ok(())
}

#[test]
fn a_proc_or_sys_behind_a_symlink_is_refused_and_nothing_leaves_the_root() {
    if !harness::require_root("ch04 /proc and /sys behind a symlink") {
        return;
    }
    for name in ["proc", "sys"] {
        let scene = Scene::new();
        for target in scene.links() {
            scene.link(name, &target);
            in_private_mount_namespace(|| -> Result<()> {
                mount::bind_onto_itself(&scene.rootfs)?;
                let refused = mount::enter_root(&scene.rootfs, Isolation::PivotRoot)
                    .err()
                    .with_context(|| format!("{name} -> {target} was mounted"))?;
                let message = format!("{refused:#}");
                ensure!(
                    message.starts_with(&format!("refusing to mount {name} on ")),
                    "{message}"
                );
                nothing_mounted_on(&scene.outside, &fs::read_to_string("/proc/self/mountinfo")?)
            });
            scene.assert_outside_untouched();
        }
    }
}

#[test]
fn a_dev_behind_a_symlink_gets_its_tmpfs_inside_the_root() {
    if !harness::require_root("ch04 /dev behind a symlink") {
        return;
    }
    let scene = Scene::new();
    for target in scene.links() {
        scene.link("dev", &target);
        // Refused while the link leads nowhere inside the root: runc would
        // create the place; minibox does not guess.
        in_private_mount_namespace(|| -> Result<()> {
            mount::bind_onto_itself(&scene.rootfs)?;
            let refused = mount::enter_root(&scene.rootfs, Isolation::Chroot);
            ensure!(
                refused.is_err(),
                "dev -> {target} (missing inside) was mounted"
            );
            nothing_mounted_on(&scene.outside, &fs::read_to_string("/proc/self/mountinfo")?)
        });
        scene.assert_outside_untouched();

        // Where the root filesystem has that place, the tmpfs goes there.
        fs::create_dir_all(scene.outside_inside()).unwrap();
        in_private_mount_namespace(|| -> Result<()> {
            // Opened before the chroot, this keeps naming mounts from the
            // host's `/` (a seq file keeps the root of its opener).
            let mut mountinfo = fs::File::open("/proc/self/mountinfo")?;
            mount::bind_onto_itself(&scene.rootfs)?;
            mount::enter_root(&scene.rootfs, Isolation::Chroot)?;
            let mut text = String::new();
            mountinfo.read_to_string(&mut text)?;
            nothing_mounted_on(&scene.outside, &text)?;
            let points = mount_points_of(&text);
            let dev = scene.outside_inside();
            for point in [dev.clone(), dev.join("pts"), dev.join("shm")] {
                let point = point.to_str().unwrap().to_string();
                ensure!(points.contains(&point), "nothing on {point}: {points:?}");
            }
            // In the (chrooted) container, /dev leads there.
            let null = fs::metadata("/dev/null")?;
            ensure!(null.file_type().is_char_device(), "/dev/null: {null:?}");
            Ok(())
        });
        scene.assert_outside_untouched();
        fs::remove_dir(scene.outside_inside()).unwrap(); // missing again
    }
}

#[test]
fn a_container_whose_dev_is_a_symlink_finds_its_devices_through_it() {
    if !harness::require_root("ch04 a container with /dev behind a symlink") {
        return;
    }
    // The busybox root filesystem, copied, with `/dev` a link that climbs
    // out to a directory of the host's that the copy has too.
    let scene = Scene::new();
    fs::remove_dir_all(&scene.rootfs).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(harness::fixtures::busybox_rootfs())
        .arg(&scene.rootfs)
        .status()
        .unwrap();
    assert!(copied.success());
    scene.link("dev", &scene.links()[1]);
    fs::create_dir_all(scene.outside_inside()).unwrap();

    let out = Command::new(MINIBOX)
        .args(["run", "--quiet", "--rootfs"])
        .arg(&scene.rootfs)
        .args(["sh", "-c", "echo hi > /dev/null && ls /dev/"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.split_whitespace().any(|name| name == "urandom"),
        "{listing}"
    );
    scene.assert_outside_untouched();
}
