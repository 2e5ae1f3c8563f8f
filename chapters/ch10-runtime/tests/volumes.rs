//! Volumes on real files and a real kernel: named volumes created, seeded
//! from a fake image once, listed, refused removal while in use, pruned, all
//! in a temporary root; then, as root and in a private mount namespace of a
//! forked child, bind mounts that are read-only or writable as asked, a tmpfs
//! with its size and noexec, and mount targets that try to leave the rootfs
//! through a symbolic link.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};
use ch10_runtime::volumes::{
    self, Mount, Source, Volumes, mount_tmpfs, mount_volume, parse_tmpfs, parse_volume, seed,
};
use harness::mount_ns::{in_private_mount_namespace, mount_points};
use nix::sys::statvfs::{FsFlags, statvfs};

/// No container uses any volume.
fn nobody(_: &str) -> Result<Vec<String>> {
    Ok(Vec::new())
}

#[test]
fn a_named_volume_is_a_directory_with_a_record_created_once() {
    let root = tempfile::tempdir().unwrap();
    let store = Volumes::new(root.path());
    let first = store.create("pgdata").unwrap();
    assert_eq!(first.driver, "local");
    assert!(!first.anonymous);
    assert!(root.path().join("volumes/pgdata/_data").is_dir());
    assert!(root.path().join("volumes/pgdata/volume.json").is_file());
    fs::write(store.data_dir("pgdata").join("kept"), "x").unwrap();
    // Creating again is no error, and changes nothing.
    assert_eq!(store.create("pgdata").unwrap(), first);
    assert!(store.data_dir("pgdata").join("kept").exists());
    let bad = store.create("-bad").unwrap_err().to_string();
    assert!(
        bad.starts_with("create -bad: \"-bad\" includes invalid characters"),
        "{bad}"
    );
}

#[test]
fn prepare_creates_what_each_form_of_v_needs() {
    let root = tempfile::tempdir().unwrap();
    let store = Volumes::new(root.path());

    // `docker run -v` creates a missing host directory (unlike --mount).
    let host = root.path().join("host/site");
    let spec = parse_volume(&format!("{}:/site:ro", host.display())).unwrap();
    let bind = store.prepare(&spec).unwrap();
    assert!(host.is_dir());
    assert_eq!(bind.source, host);
    assert!(bind.read_only && !bind.seed && bind.volume.is_none());

    let named = store
        .prepare(&parse_volume("cache:/cache").unwrap())
        .unwrap();
    assert_eq!(named.source, store.data_dir("cache"));
    assert_eq!(named.volume.as_deref(), Some("cache"));
    assert!(named.seed);
    let nocopy = store
        .prepare(&parse_volume("cache:/cache:nocopy").unwrap())
        .unwrap();
    assert!(!nocopy.seed);

    let anonymous = store.prepare(&parse_volume("/data").unwrap()).unwrap();
    let name = anonymous.volume.unwrap();
    assert_eq!(name.len(), 64);
    assert!(name.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(store.get(&name).unwrap().anonymous);
}

#[test]
fn ls_prints_dockers_table_in_name_order() {
    let root = tempfile::tempdir().unwrap();
    let store = Volumes::new(root.path());
    assert!(store.list().unwrap().is_empty());
    for name in ["web", "db"] {
        store.create(name).unwrap();
    }
    let mut out = Vec::new();
    volumes::print_ls(&store.list().unwrap(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "DRIVER    VOLUME NAME\nlocal     db\nlocal     web\n"
    );
}

#[test]
fn rm_refuses_a_volume_in_use_and_removes_an_unused_one() {
    let root = tempfile::tempdir().unwrap();
    let store = Volumes::new(root.path());
    store.create("data").unwrap();
    let users = |name: &str| -> Result<Vec<String>> {
        Ok(if name == "data" {
            vec!["3f2a".repeat(16)]
        } else {
            Vec::new()
        })
    };
    let refused = store.remove("data", users).unwrap_err().to_string();
    assert_eq!(
        refused,
        format!("remove data: volume is in use - [{}]", "3f2a".repeat(16))
    );
    assert!(store.data_dir("data").is_dir());

    store.remove("data", nobody).unwrap();
    assert!(!root.path().join("volumes/data").exists());
    assert_eq!(
        store.remove("data", nobody).unwrap_err().to_string(),
        "get data: no such volume"
    );
    assert!(store.get("../etc").is_err());
}

#[test]
fn prune_removes_unused_anonymous_volumes_or_all_unused_and_counts_the_space() {
    let root = tempfile::tempdir().unwrap();
    let store = Volumes::new(root.path());
    let anonymous = store
        .prepare(&parse_volume("/scratch").unwrap())
        .unwrap()
        .volume
        .unwrap();
    let used = store
        .prepare(&parse_volume("/used").unwrap())
        .unwrap()
        .volume
        .unwrap();
    store.create("named").unwrap();
    fs::write(store.data_dir(&anonymous).join("a"), vec![0; 1200]).unwrap();
    fs::create_dir(store.data_dir("named").join("sub")).unwrap();
    fs::write(store.data_dir("named").join("sub/b"), vec![0; 34]).unwrap();
    let users = |name: &str| -> Result<Vec<String>> {
        Ok(if name == used {
            vec!["c0ffee".into()]
        } else {
            Vec::new()
        })
    };

    let pruned = store.prune(false, users).unwrap();
    assert_eq!(pruned.removed, vec![anonymous.clone()]);
    assert_eq!(pruned.reclaimed, 1200);
    assert_eq!(
        pruned.report(),
        format!("Deleted Volumes:\n{anonymous}\n\nTotal reclaimed space: 1.2kB\n")
    );

    let pruned = store.prune(true, users).unwrap();
    assert_eq!(pruned.removed, vec!["named".to_string()]);
    assert_eq!(pruned.reclaimed, 34);
    let left: Vec<String> = store.list().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(left, vec![used]);
}

#[test]
fn a_volume_is_seeded_from_the_image_once_with_modes_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image/etc/app");
    fs::create_dir_all(image.join("conf.d")).unwrap();
    fs::write(image.join("app.conf"), "port 80\n").unwrap();
    fs::write(image.join("conf.d/extra.conf"), "debug\n").unwrap();
    fs::set_permissions(image.join("app.conf"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(image.join("conf.d"), fs::Permissions::from_mode(0o750)).unwrap();
    symlink("/etc/passwd", image.join("passwd")).unwrap();
    let data = dir.path().join("_data");
    fs::create_dir(&data).unwrap();

    assert!(seed(&image, &data).unwrap());
    assert_eq!(
        fs::read_to_string(data.join("app.conf")).unwrap(),
        "port 80\n"
    );
    assert_eq!(mode(&data.join("app.conf")), 0o640);
    assert_eq!(mode(&data.join("conf.d")), 0o750);
    assert_eq!(
        fs::read_to_string(data.join("conf.d/extra.conf")).unwrap(),
        "debug\n"
    );
    // A link is copied as a link, never followed.
    assert_eq!(
        fs::read_link(data.join("passwd")).unwrap(),
        Path::new("/etc/passwd")
    );

    // Not seeded again: the volume is not empty, and its changes stay.
    fs::write(data.join("app.conf"), "port 8080\n").unwrap();
    fs::remove_file(data.join("passwd")).unwrap();
    assert!(!seed(&image, &data).unwrap());
    assert_eq!(
        fs::read_to_string(data.join("app.conf")).unwrap(),
        "port 8080\n"
    );
    assert!(!data.join("passwd").exists());

    // Nothing in the image at that path: nothing to seed.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(!seed(&dir.path().join("image/nothing"), &empty).unwrap());
}

#[test]
fn seeding_keeps_owners_and_the_set_user_id_bit() {
    if !harness::require_root("ch10 volumes: seeding keeps owners") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image/var/lib/pg");
    fs::create_dir_all(image.join("base")).unwrap();
    fs::write(image.join("base/tool"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&image, Some(70), Some(70)).unwrap();
    std::os::unix::fs::chown(image.join("base"), Some(70), Some(71)).unwrap();
    std::os::unix::fs::chown(image.join("base/tool"), Some(1234), Some(5678)).unwrap();
    fs::set_permissions(&image, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(image.join("base/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    let data = dir.path().join("_data");
    fs::create_dir(&data).unwrap();

    assert!(seed(&image, &data).unwrap());
    let owner = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    // The volume's own directory takes the image directory's owner and mode:
    // postgres (uid 70) can write to its data directory.
    assert_eq!(owner(&data), (70, 70));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(owner(&data.join("base")), (70, 71));
    assert_eq!(owner(&data.join("base/tool")), (1234, 5678));
    assert_eq!(mode(&data.join("base/tool")), 0o4755);
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn bind(source: &Path, target: &str, read_only: bool) -> Mount {
    Mount {
        source: source.to_path_buf(),
        target: PathBuf::from(target),
        read_only,
        volume: None,
        seed: false,
    }
}

#[test]
fn bind_mounts_are_read_only_or_writable_as_asked() {
    if !harness::require_root("ch10 volumes: bind mounts ro and rw") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let host = dir.path().join("host");
    fs::create_dir_all(&rootfs).unwrap();
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("index.html"), "hello\n").unwrap();
    let file = dir.path().join("hosts");
    fs::write(&file, "127.0.0.1 localhost\n").unwrap();

    in_private_mount_namespace(|| {
        mount_volume(&rootfs, &bind(&host, "/site/ro", true))?;
        mount_volume(&rootfs, &bind(&host, "/site/rw", false))?;
        mount_volume(&rootfs, &bind(&file, "/etc/hosts", true))?;
        let ro = rootfs.join("site/ro");
        ensure!(fs::read_to_string(ro.join("index.html"))? == "hello\n");
        let denied = fs::write(ro.join("new"), "x").unwrap_err();
        ensure!(
            denied.raw_os_error() == Some(libc::EROFS),
            "writing to the :ro mount: {denied}"
        );
        fs::write(
            rootfs.join("site/rw/written-inside"),
            "from the container\n",
        )?;
        let hosts = rootfs.join("etc/hosts");
        ensure!(fs::read_to_string(&hosts)? == "127.0.0.1 localhost\n");
        ensure!(fs::write(&hosts, "").unwrap_err().raw_os_error() == Some(libc::EROFS));
        Ok(())
    });
    // The rw mount wrote through to the host; the :ro one wrote nothing.
    assert_eq!(
        fs::read_to_string(host.join("written-inside")).unwrap(),
        "from the container\n"
    );
    assert!(!host.join("new").exists());
    // The host directory itself stays writable: read-only was the mount's.
    fs::write(host.join("still-writable"), "").unwrap();
    assert!(
        !mount_points()
            .iter()
            .any(|m| m.starts_with(&*dir.path().to_string_lossy()))
    );
}

#[test]
fn a_named_volume_mounted_where_the_image_has_files_is_seeded_first() {
    if !harness::require_root("ch10 volumes: a volume is seeded, then mounted") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc/nginx")).unwrap();
    fs::write(rootfs.join("etc/nginx/nginx.conf"), "worker_processes 1;\n").unwrap();
    let store = Volumes::new(&dir.path().join("root"));
    let mount = store
        .prepare(&parse_volume("conf:/etc/nginx").unwrap())
        .unwrap();
    in_private_mount_namespace(|| {
        mount_volume(&rootfs, &mount)?;
        // Seen through the mount: the volume, holding the image's file.
        fs::write(rootfs.join("etc/nginx/added"), "")?;
        ensure!(
            fs::read_to_string(rootfs.join("etc/nginx/nginx.conf"))? == "worker_processes 1;\n"
        );
        Ok(())
    });
    let data = store.data_dir("conf");
    assert!(data.join("nginx.conf").is_file());
    assert!(data.join("added").is_file());
    // The image's directory is unchanged underneath.
    assert!(!rootfs.join("etc/nginx/added").exists());
}

#[test]
fn a_tmpfs_has_its_size_and_runs_nothing() {
    if !harness::require_root("ch10 volumes: tmpfs size and noexec") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    in_private_mount_namespace(|| {
        mount_tmpfs(&rootfs, &parse_tmpfs("/run:size=2m,mode=1770")?)?;
        mount_tmpfs(&rootfs, &parse_tmpfs("/exec:exec")?)?;
        let run = rootfs.join("run");
        let stat = statvfs(&run)?;
        let bytes = stat.blocks() * stat.fragment_size();
        ensure!(bytes == 2 * 1024 * 1024, "the tmpfs holds {bytes} bytes");
        ensure!(
            stat.flags()
                .contains(FsFlags::ST_NOEXEC | FsFlags::ST_NOSUID | FsFlags::ST_NODEV)
        );
        ensure!(mode(&run) == 0o1770, "mode {:o}", mode(&run));
        // noexec for real: a program copied there does not run; elsewhere it does.
        for (place, runs) in [("run", false), ("exec", true)] {
            let program = rootfs.join(place).join("true");
            fs::copy("/bin/true", &program)?;
            fs::set_permissions(&program, fs::Permissions::from_mode(0o755))?;
            let result = std::process::Command::new(&program).status();
            match (runs, result) {
                (true, Ok(status)) => ensure!(status.success()),
                (false, Err(e)) => ensure!(e.raw_os_error() == Some(libc::EACCES), "{e}"),
                (runs, result) => anyhow::bail!("{place}: expected runs={runs}, got {result:?}"),
            }
        }
        Ok(())
    });
}

#[test]
fn a_symlink_out_of_the_rootfs_never_leads_a_mount_to_the_host() {
    if !harness::require_root("ch10 volumes: symlinks cannot lead a mount out") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    // An image's tricks: an absolute link, and a relative one that climbs.
    symlink("/etc", rootfs.join("data")).unwrap();
    symlink("../../../../../../../../etc", rootfs.join("climb")).unwrap();
    let host_etc_mounts = || mount_points().iter().filter(|m| *m == "/etc").count();
    let before = host_etc_mounts();

    in_private_mount_namespace(|| {
        let table = mount_points();
        // The rootfs has no /etc: inside the root, both links lead nowhere,
        // and the mount is refused rather than made on the host's /etc.
        for target in ["/data", "/climb", "/data/sub"] {
            let refused = mount_tmpfs(&rootfs, &parse_tmpfs(target)?);
            ensure!(refused.is_err(), "{target} was mounted");
        }
        ensure!(mount_points() == table, "something was mounted");
        ensure!(!Path::new("/etc/sub").exists());

        // With an /etc in the rootfs, the links resolve to it, inside.
        fs::create_dir(rootfs.join("etc"))?;
        mount_tmpfs(&rootfs, &parse_tmpfs("/data")?)?;
        mount_tmpfs(&rootfs, &parse_tmpfs("/climb/app")?)?;
        let now = mount_points();
        let inside = rootfs.join("etc").to_string_lossy().into_owned();
        ensure!(now.contains(&inside), "not mounted on {inside}: {now:?}");
        ensure!(now.contains(&format!("{inside}/app")), "{now:?}");
        ensure!(now.iter().filter(|m| *m == "/etc").count() == before);
        Ok(())
    });
    assert_eq!(host_etc_mounts(), before);
    assert!(!Path::new("/etc/app").exists());
}

#[test]
fn a_volume_through_a_symlink_out_lands_inside_the_root_or_nowhere() {
    if !harness::require_root("ch10 volumes: a bind through a symlink out") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rootfs, outside) = (dir.path().join("rootfs"), dir.path().join("outside"));
    fs::create_dir_all(&rootfs).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let host = dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    let file = dir.path().join("hosts");
    fs::write(&file, "127.0.0.1 localhost\n").unwrap();
    // The image's links to a directory of the host's: by its absolute path,
    // and climbing there with `..`.
    let path = outside.to_str().unwrap();
    symlink(path, rootfs.join("abs")).unwrap();
    symlink(format!("../../../../../../../..{path}"), rootfs.join("rel")).unwrap();
    let inside = rootfs.join(outside.strip_prefix("/").unwrap());
    let targets = ["/abs/site", "/rel/site", "/abs/hosts", "/rel/deep/hosts"];
    let source = |target: &str| {
        if target.ends_with("hosts") {
            &file
        } else {
            &host
        }
    };

    in_private_mount_namespace(|| -> Result<()> {
        let table = mount_points();
        // Not in the root: refused, directories and files alike.
        for target in targets {
            let refused = mount_volume(&rootfs, &bind(source(target), target, true));
            ensure!(refused.is_err(), "{target} was mounted");
        }
        ensure!(mount_points() == table, "something was mounted");
        // In the root: created and mounted there.
        fs::create_dir_all(&inside)?;
        for target in targets {
            mount_volume(&rootfs, &bind(source(target), target, false))?;
        }
        let now = mount_points();
        for made in ["site", "hosts", "deep/hosts"] {
            let made = inside.join(made).to_string_lossy().into_owned();
            ensure!(now.contains(&made), "not mounted on {made}: {now:?}");
        }
        ensure!(fs::read_to_string(inside.join("deep/hosts"))? == "127.0.0.1 localhost\n");
        ensure!(!now.iter().any(|m| m.starts_with(path)), "{now:?}");
        Ok(())
    });
    let left: Vec<_> = fs::read_dir(&outside).unwrap().collect();
    assert!(left.is_empty(), "created on the host: {left:?}");
}

#[test]
fn parse_volume_tells_the_forms_apart() {
    // The unit tests check every message; this is the public view.
    assert_eq!(
        parse_volume("/srv:/srv").unwrap().source,
        Source::Host("/srv".into())
    );
    assert!(parse_volume("name:/x:ro").unwrap().read_only);
}
