//! `--userns auto` for real, as root: a container in a user namespace of its
//! own, whose root is an unprivileged range of host IDs, with an idmapped
//! root filesystem; against the fixture registry on 127.0.0.1, with a store
//! and a cgroup parent of the test's own ([`harness::env::Env`]), and
//! `--network none` (the network is chapter 9's, unchanged).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use harness::env::Env;
use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch13-rootless");

/// An environment with the fixtures (`minibox/multi-user` among them), or
/// `None` when the test cannot run (not root).
fn env(test: &str) -> Option<(Registry, Env)> {
    if !harness::privilege::require_root(test) {
        return None;
    }
    let registry = Registry::start();
    registry.push_fixtures().expect("fixtures");
    let env = Env::builder(MINIBOX, "ch13", test)
        .mirror(&registry)
        .build();
    Some((registry, env))
}

/// `run --rm --network none --userns auto ARGS`, to its end.
fn run_auto(env: &Env, args: &[&str]) -> harness::process::Run {
    let mut all = vec!["run", "--rm", "--network", "none", "--userns", "auto"];
    all.extend_from_slice(args);
    env.minibox(&all)
}

/// The first host ID of container `name`'s range, from `inspect`.
fn range_of(env: &Env, name: &str) -> (u32, u32) {
    let out = env.minibox(&["inspect", name]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let host = &json[0]["HostConfig"];
    assert_eq!(host["UsernsMode"], "auto");
    let first = |key: &str| -> u32 {
        let line = host["IDMappings"][key][0].as_str().unwrap();
        let fields: Vec<u32> = line.split(':').map(|f| f.parse().unwrap()).collect();
        assert_eq!((fields[0], fields[2]), (0, 65536), "{line}");
        fields[1]
    };
    (first("UidMap"), first("GidMap"))
}

/// `Uid:` and `Gid:` of host process `pid`, real IDs.
fn host_ids(pid: &str) -> (u32, u32) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let real = |key: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (real("Uid:"), real("Gid:"))
}

/// The first file called `name` below `dir`.
fn find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            return Some(path);
        }
        if entry.file_type().ok()?.is_dir()
            && let Some(found) = find(&path, name)
        {
            return Some(found);
        }
    }
    None
}

/// No mount of the store is left in the host's mount table.
fn assert_no_mounts(env: &Env) {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = env.root().display().to_string();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
    assert!(left.is_empty(), "mounts left behind: {left:#?}");
}

#[test]
fn root_in_the_container_is_a_range_of_the_host() {
    let Some((_registry, env)) = env("root_in_the_container_is_a_range_of_the_host") else {
        return;
    };
    let id = run_auto(&env, &["busybox", "id"]).expect(0);
    assert!(
        id.stdout.starts_with("uid=0(root) gid=0(root)"),
        "{}",
        id.stdout
    );
    // A container in the background: its range, seen from both sides.
    let started = env.minibox(&[
        "run",
        "-d",
        "--network",
        "none",
        "--userns",
        "auto",
        "--name",
        "ranged",
        "busybox",
        "sleep",
        "300",
    ]);
    started.expect(0);
    let (uid, gid) = range_of(&env, "ranged");
    assert!(uid >= 100000, "a range above the host's users: {uid}");
    let map = env
        .minibox(&[
            "exec",
            "ranged",
            "cat",
            "/proc/self/uid_map",
            "/proc/self/gid_map",
        ])
        .expect(0);
    let lines: Vec<Vec<String>> = map
        .stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        lines,
        [
            ["0".to_string(), uid.to_string(), "65536".to_string()],
            ["0".to_string(), gid.to_string(), "65536".to_string()]
        ]
    );
    // The container's process is the range's first user on the host.
    let inspect = env.minibox(&["inspect", "ranged"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let pid = json[0]["State"]["Pid"].as_i64().unwrap();
    assert_eq!(host_ids(&pid.to_string()), (uid, gid));
    let inside = env.minibox(&["exec", "ranged", "id", "-u"]).expect(0);
    assert_eq!(inside.stdout, "0\n", "exec joins the user namespace");
    let top = env.minibox(&["top", "ranged"]).expect(0);
    assert!(top.stdout.contains("sleep 300"), "{}", top.stdout);

    // A second container gets another range.
    env.minibox(&[
        "run",
        "-d",
        "--network",
        "none",
        "--userns",
        "auto",
        "--name",
        "other",
        "busybox",
        "sleep",
        "300",
    ])
    .expect(0);
    let (other, _) = range_of(&env, "other");
    assert_ne!(other, uid, "two containers share a range");

    env.minibox(&["stop", "-t", "1", "ranged", "other"])
        .expect(0);
    env.minibox(&["rm", "ranged", "other"]).expect(0);
    assert_eq!(env.minibox(&["ps", "-a", "-q"]).expect(0).stdout, "");
    assert!(
        fs::read_dir(env.root().join("containers"))
            .unwrap()
            .next()
            .is_none()
    );
    assert_no_mounts(&env);
}

#[test]
fn the_images_owners_are_kept_inside() {
    let Some((_registry, env)) = env("the_images_owners_are_kept_inside") else {
        return;
    };
    let stat = run_auto(
        &env,
        &[
            "minibox/multi-user",
            "stat",
            "-c",
            "%u:%g:%a",
            "/home/app",
            "/home/app/notes",
            "/srv/nobody",
            "/usr/local/bin/as-app",
            "/bin/busybox",
        ],
    )
    .expect(0);
    assert_eq!(
        stat.stdout,
        "1000:1000:750\n1000:1000:640\n65534:65534:644\n1000:1000:4755\n0:0:755\n"
    );
    // The set-user-ID program still makes its user, and root still reads
    // the files of another user (its capabilities cover the whole range).
    let setuid = run_auto(
        &env,
        &[
            "minibox/multi-user",
            "sh",
            "-c",
            "ln -s /usr/local/bin/as-app /tmp/id && /tmp/id -u && cat /home/app/notes",
        ],
    )
    .expect(0);
    assert_eq!(setuid.stdout, "1000\napp's\n");
    // The layers themselves are untouched: still the host's 1000.
    let notes = find(&env.root().join("layers"), "notes").expect("the layer's notes");
    assert_eq!(fs::metadata(&notes).unwrap().uid(), 1000);
    assert_no_mounts(&env);
}

#[test]
fn volumes_belong_to_the_range_and_the_hosts_root_files_stay_shut() {
    let Some((_registry, env)) =
        env("volumes_belong_to_the_range_and_the_hosts_root_files_stay_shut")
    else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // A directory open to all, and a file of the host's root, writable by
    // its owner only.
    let shared = host.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let secret = host.path().join("secret");
    fs::write(&secret, "root's\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();

    let bind = format!("{}:/data", shared.display());
    let secret_bind = format!("{}:/secret", secret.display());
    let out = run_auto(
        &env,
        &[
            "-v",
            &bind,
            "-v",
            &secret_bind,
            "-v",
            "named:/named",
            "--name",
            "vols",
            "busybox",
            "sh",
            "-c",
            "touch /data/made /named/made && id -u && cat /secret && (echo x >> /secret) 2>&1; echo $?",
        ],
    );
    let out = out.expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(lines[1], "root's", "the host's file is readable");
    assert!(lines[2].contains("Permission denied"), "{}", out.stdout);
    assert_eq!(lines[3], "1", "root in the container cannot write it");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "root's\n");

    // What it made belongs to the range on the host, not to root.
    let made = fs::metadata(shared.join("made")).unwrap();
    assert!(
        made.uid() >= 100000 && made.gid() >= 100000,
        "{}",
        made.uid()
    );
    let named = env.root().join("volumes/named/_data");
    let data = fs::metadata(&named).unwrap();
    assert_eq!(
        data.uid(),
        made.uid(),
        "the new volume is the container's root's"
    );
    assert_eq!(fs::metadata(named.join("made")).unwrap().uid(), made.uid());
    env.minibox(&["volume", "rm", "named"]).expect(0);
    assert_no_mounts(&env);
}

#[test]
fn host_is_the_default_and_bad_values_are_one_line() {
    let Some((_registry, env)) = env("host_is_the_default_and_bad_values_are_one_line") else {
        return;
    };
    for args in [
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "cat",
            "/proc/self/uid_map",
        ][..],
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--userns=host",
            "busybox",
            "cat",
            "/proc/self/uid_map",
        ],
    ] {
        let out = env.minibox(args).expect(0);
        let map: Vec<&str> = out.stdout.split_whitespace().collect();
        assert_eq!(map, ["0", "0", "4294967295"], "the host's namespace");
    }
    let bad = env.minibox(&["run", "--rm", "--userns", "bogus", "busybox", "true"]);
    let bad = bad.expect(125);
    assert_eq!(
        bad.stderr.trim_end(),
        "minibox: invalid --userns \"bogus\": use host or auto"
    );
    assert_eq!(env.minibox(&["ps", "-a", "-q"]).expect(0).stdout, "");
    assert!(
        !env.root().join("containers").exists()
            || fs::read_dir(env.root().join("containers"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn rootless_refuses_auto_in_one_line() {
    if !harness::privilege::require_root("rootless_refuses_auto_in_one_line") {
        return;
    }
    // The test is root; the user it makes is not.
    let user = harness::rootless::TestUser::new(Path::new(MINIBOX), false);
    let refused = user
        .minibox(&["run", "--rm", "--userns", "auto", "busybox", "true"])
        .expect(125);
    assert_eq!(
        refused.stderr.trim_end(),
        "minibox: --userns auto needs root: a rootless container is in your own user namespace already, its root is you on the host; leave --userns out"
    );
    assert!(!user.store().join("containers").exists(), "nothing made");
}
