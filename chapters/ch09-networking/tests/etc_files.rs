//! The container's `/etc` files against an image whose `/etc` is a symbolic
//! link out of its root, to a directory the test owns on the host (needs
//! root; the mounts happen in a forked child with a private mount
//! namespace). The files are bound where the link leads *inside* the root,
//! or nowhere; the host's directory is never written or mounted on.

use std::fs;
use std::os::unix::fs::symlink;

use anyhow::{Result, ensure};
use ch09_networking::network::mount_etc_files;
use harness::mount_ns::{in_private_mount_namespace, mount_points};

#[test]
fn an_etc_behind_a_symlink_out_gets_its_files_inside_the_root_or_nowhere() {
    if !harness::require_root("ch09 /etc files through a symlink out") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rootfs, outside) = (dir.path().join("rootfs"), dir.path().join("outside"));
    let container = dir.path().join("container");
    for path in [&rootfs, &outside, &container] {
        fs::create_dir_all(path).unwrap();
    }
    fs::write(outside.join("hosts"), "the host's\n").unwrap();
    for name in ["hostname", "hosts", "resolv.conf"] {
        fs::write(container.join(name), format!("the container's {name}\n")).unwrap();
    }
    let path = outside.to_str().unwrap();
    let inside = rootfs.join(outside.strip_prefix("/").unwrap());
    for link in [path.to_string(), format!("../../../../../../../..{path}")] {
        let _ = fs::remove_file(rootfs.join("etc"));
        symlink(&link, rootfs.join("etc")).unwrap();
        let _ = fs::remove_dir_all(rootfs.join(path.split('/').nth(1).unwrap()));

        in_private_mount_namespace(|| -> Result<()> {
            let table = mount_points();
            // The root has no such place: refused.
            ensure!(
                mount_etc_files(&container, &rootfs).is_err(),
                "etc -> {link}"
            );
            ensure!(mount_points() == table, "something was mounted");

            // It has: the files land there, over an image's symlink too.
            fs::create_dir_all(&inside)?;
            symlink(outside.join("hosts"), inside.join("hosts"))?;
            mount_etc_files(&container, &rootfs)?;
            let now = mount_points();
            for name in ["hostname", "hosts", "resolv.conf"] {
                let file = inside.join(name);
                let shown = file.to_string_lossy().into_owned();
                ensure!(now.contains(&shown), "not mounted on {shown}: {now:?}");
                let text = fs::read_to_string(&file)?;
                ensure!(
                    text == format!("the container's {name}\n"),
                    "{shown}: {text}"
                );
            }
            ensure!(!now.iter().any(|m| m.starts_with(path)), "{now:?}");
            Ok(())
        });
        let left: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["hosts"], "created on the host");
        assert_eq!(
            fs::read_to_string(outside.join("hosts")).unwrap(),
            "the host's\n"
        );
    }
}
