//! Chapter 13 end to end, for real: minibox run by an unprivileged user that
//! exists only for the test ([`harness::rootless::TestUser`]), with and
//! without a subordinate ID range, against the fixture registry on
//! 127.0.0.1. The test itself is root (it makes the user); minibox is not.
//! Containers run with `--network none` here; the user-mode network has
//! its own tests.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use harness::registry::Registry;
use harness::rootless::TestUser;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch13-rootless");

fn registry() -> Registry {
    let registry = Registry::start();
    // minibox/multi-user among them.
    registry.push_fixtures().expect("fixtures");
    registry
}

/// A user of the test's own, pulling from `registry`.
fn user(registry: &Registry, with_range: bool) -> TestUser {
    let mut user = TestUser::new(Path::new(MINIBOX), with_range);
    user.set_env("MINIBOX_REGISTRY_MIRROR", &registry.host());
    user
}

/// `run --rm --network none ARGS` as `user`, to its end.
fn run(user: &TestUser, args: &[&str]) -> harness::process::Run {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    user.minibox(&all)
}

/// Nothing of `user`'s is left once its pause process is stopped: no
/// process of its IDs, no container.
fn assert_clean(user: &TestUser) {
    let ps = user.minibox(&["ps", "-a", "-q"]).expect(0);
    assert_eq!(ps.stdout, "", "containers left behind");
    user.stop_pause();
    assert_eq!(user.processes(), Vec::<i32>::new(), "processes left behind");
}

/// The whole life of containers, as a user with or without a range.
fn lifecycle(with_range: bool) {
    let registry = registry();
    let user = user(&registry, with_range);
    user.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    assert!(user.store().join("images").exists() || user.store().exists());
    let hello = user.minibox(&["run", "--rm", "--network", "none", "hello-world"]);
    assert!(
        hello.expect(0).stdout.contains("Hello from minibox"),
        "hello-world"
    );
    assert_eq!(
        run(&user, &["busybox", "echo", "hi"]).expect(0).stdout,
        "hi\n"
    );
    let id = run(&user, &["busybox", "id"]).expect(0);
    assert!(
        id.stdout.starts_with("uid=0(root) gid=0(root)"),
        "{}",
        id.stdout
    );

    // A file the container makes in a bind-mounted directory is the user's.
    let shared = user.home().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(user.uid), Some(user.uid)).unwrap();
    let volume = format!("{}:/data", shared.display());
    run(&user, &["-v", &volume, "busybox", "touch", "/data/made"]).expect(0);
    let made = std::fs::metadata(shared.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (user.uid, user.uid));

    // A container in the background, seen and entered from other processes.
    user.minibox(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "sleeper",
        "busybox",
        "sleep",
        "600",
    ])
    .expect(0);
    let ps = user.minibox(&["ps"]).expect(0);
    assert!(ps.stdout.contains("sleeper"), "{}", ps.stdout);
    // Its processes, without a cgroup of its own here: its PID namespace's.
    let top = user.minibox(&["top", "sleeper"]).expect(0);
    assert!(top.stdout.contains("sleep 600"), "{}", top.stdout);
    let exec = user.minibox(&["exec", "sleeper", "id", "-u"]).expect(0);
    assert_eq!(exec.stdout, "0\n");
    user.minibox(&["stop", "-t", "1", "sleeper"]).expect(0);
    let all = user.minibox(&["ps", "-a"]).expect(0);
    assert!(all.stdout.contains("Exited"), "{}", all.stdout);
    user.minibox(&["rm", "sleeper"]).expect(0);
    assert_clean(&user);
}

#[test]
fn a_user_with_a_subordinate_range_runs_containers() {
    lifecycle(true);
}

#[test]
fn a_user_without_a_range_runs_containers() {
    lifecycle(false);
}

/// `stat -c %u:%g:%a` of each path in a container of `image`.
fn owners(user: &TestUser, image: &str, paths: &[&str]) -> Vec<String> {
    let mut args = vec![image, "stat", "-c", "%u:%g:%a"];
    args.extend_from_slice(paths);
    let out = run(user, &args).expect(0);
    out.stdout.lines().map(str::to_owned).collect()
}

const MULTI_USER_PATHS: [&str; 4] = [
    "/home/app",
    "/home/app/notes",
    "/srv/nobody",
    "/usr/local/bin/as-app",
];

#[test]
fn a_range_keeps_every_owner_of_a_multi_user_image() {
    let registry = registry();
    let user = user(&registry, true);
    user.minibox(&["pull", "--quiet", "minibox/multi-user"])
        .expect(0);
    assert_eq!(
        owners(&user, "minibox/multi-user", &MULTI_USER_PATHS),
        [
            "1000:1000:750",
            "1000:1000:640",
            "65534:65534:644",
            "1000:1000:4755"
        ]
    );
    // On the host, the files belong to the user's subordinate IDs.
    let (start, _) = user.range.unwrap();
    let notes = find(&user.store(), "notes").expect("the layer's notes");
    let meta = std::fs::metadata(&notes).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (start + 999, start + 999));
    assert_clean(&user);
}

#[test]
fn a_single_id_keeps_owners_in_an_attribute_and_containers_see_root() {
    let registry = registry();
    let user = user(&registry, false);
    let pull = user.minibox(&["pull", "minibox/multi-user"]).expect(0);
    // Said once, on the progress output, as a pull's other warnings.
    let warned = pull.stdout.matches("user.containers.override_stat").count();
    assert_eq!(warned, 1, "{}", pull.stdout);
    // Unmappable owners read as root inside; the modes are kept (the
    // set-user-ID bit too: a program of "root" here is the user's).
    assert_eq!(
        owners(&user, "minibox/multi-user", &MULTI_USER_PATHS),
        ["0:0:750", "0:0:640", "0:0:644", "0:0:4755"]
    );
    let notes = find(&user.store(), "notes").expect("the layer's notes");
    let meta = std::fs::metadata(&notes).unwrap();
    assert_eq!(meta.uid(), user.uid);
    let recorded = xattr_of(&notes, "user.containers.override_stat");
    assert_eq!(recorded.as_deref(), Some("1000:1000:0640"));
    assert_clean(&user);
}

#[test]
fn a_limit_without_a_delegated_cgroup_is_refused_in_one_line() {
    let registry = registry();
    let user = user(&registry, true);
    user.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    let refused = run(&user, &["--memory", "32m", "busybox", "true"]).expect(125);
    let lines: Vec<&str> = refused.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", refused.stderr);
    assert!(lines[0].contains("cannot have limits"), "{}", lines[0]);
    assert_clean(&user);
}

#[test]
fn mapped_root_has_no_power_over_the_host() {
    let registry = registry();
    let user = user(&registry, true);
    user.minibox(&["pull", "--quiet", "minibox/probe"])
        .expect(0);
    user.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    // Every capability there is in the user namespace, no seccomp filter:
    // what is left is what the user namespace cannot grant.
    let probes = run(
        &user,
        &[
            "--privileged",
            "minibox/probe",
            "probe",
            "mount",
            "bpf",
            "open_by_handle_at",
            "settimeofday",
            "sysctl",
            "mknod-block",
        ],
    )
    .expect(0);
    // Mounting is the namespace's own business; loading BPF, opening files
    // by handle, setting the clock, writing a host sysctl, making a device
    // node are the host's root's.
    assert_eq!(
        probes.stdout,
        "mount: ok\nbpf: EPERM\nopen_by_handle_at: EPERM\nsettimeofday: EPERM\nsysctl: EACCES\nmknod-block: EPERM\n"
    );
    // A root-owned host file, bound in, stays read-only to the container's root.
    let host_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(host_file.path(), "the host's\n").unwrap();
    let bind = format!("{}:/host-file", host_file.path().display());
    let write = run(
        &user,
        &[
            "--privileged",
            "-v",
            &bind,
            "busybox",
            "sh",
            "-c",
            "echo x >> /host-file",
        ],
    );
    assert_ne!(write.status, 0, "the container's root wrote a host file");
    assert_eq!(
        std::fs::read_to_string(host_file.path()).unwrap(),
        "the host's\n"
    );
    // Its hostname is its own UTS namespace's.
    let before = nix_hostname();
    run(
        &user,
        &["--privileged", "busybox", "hostname", "changed-by-rootless"],
    )
    .expect(0);
    assert_eq!(nix_hostname(), before);
    assert_clean(&user);
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
}

/// The first file called `name` below `dir`.
fn find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
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

fn xattr_of(path: &Path, name: &str) -> Option<String> {
    let value = xattr::get(path, name).ok().flatten()?;
    Some(String::from_utf8_lossy(&value).into_owned())
}

#[test]
fn a_user_builds_images_and_shares_the_hosts_network() {
    let registry = registry();
    let user = user(&registry, true);
    user.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    // A RUN step's overlay is mounted in the user namespace (userxattr): a
    // directory removed and made again is opaque there too.
    let context = user.home().join("context");
    std::fs::create_dir(&context).unwrap();
    // /d comes from a layer below the step that replaces it: without the
    // opaque mark, its old file would show through again.
    let dockerfile = "FROM busybox\nRUN mkdir /d && touch /d/old\nRUN rm -rf /d && mkdir /d && touch /d/new\nCMD ls /d\n";
    std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", &format!("{0}:{0}", user.uid)])
        .arg(&context)
        .status()
        .unwrap();
    assert!(chown.success());
    let context = context.display().to_string();
    let build = ["build", "-q", "--network", "none", "-t", "mine", &context];
    user.minibox(&build).expect(0);
    assert_eq!(run(&user, &["mine"]).expect(0).stdout, "new\n");
    // The host's network: no namespace of its own, so no sysfs of its own
    // either; the host's is bound, read-only.
    let host = user.minibox(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        "test -d /sys/class/net && ! touch /sys/x 2>/dev/null && echo ok",
    ]);
    assert_eq!(host.expect(0).stdout, "ok\n");
    user.minibox(&["rmi", "mine"]).expect(0);
    assert_clean(&user);
}

/// A network namespace for the test to play the host in: `lo`, and an
/// uplink with an address and a default route (pasta copies the host's).
fn host_namespace() -> harness::netns::NetNs {
    let netns = harness::netns::NetNs::new().expect("a network namespace");
    // A veth pair with both ends here: this kernel has no dummy links.
    let script = "ip link add up0 type veth peer name up1 && ip addr add 192.0.2.10/24 dev up0 \
                  && ip link set up0 up && ip link set up1 up && ip route add default via 192.0.2.1";
    let mut uplink = std::process::Command::new("sh");
    uplink.args(["-c", script]);
    netns.enter(&mut uplink).unwrap();
    assert!(uplink.status().unwrap().success(), "making the uplink");
    netns
}

/// `redis-cli -p PORT ping` in `netns`, until it answers (10 s at most).
fn ping_redis(netns: &harness::netns::NetNs, port: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut ping = std::process::Command::new("redis-cli");
        ping.args(["-h", "127.0.0.1", "-p", &port.to_string(), "ping"]);
        netns.enter(&mut ping).unwrap();
        let out = ping.output().expect("redis-cli");
        let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if said == "PONG" || std::time::Instant::now() > deadline {
            return said;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn published_ports_reach_redis_through_each_user_mode_stack() {
    let registry = registry();
    for stack in ["pasta", "slirp4netns"] {
        let mut user = user(&registry, true);
        user.set_env("MINIBOX_USERNET", stack);
        user.minibox(&["pull", "--quiet", "redis"]).expect(0);
        let netns = host_namespace();
        user.in_network_namespace(netns.descriptor().unwrap());
        let publish = [
            "run",
            "-d",
            "--name",
            "cache",
            "-p",
            "127.0.0.1:16379:6379",
            "redis",
        ];
        user.minibox(&publish).expect(0);
        assert_eq!(ping_redis(&netns, 16379), "PONG", "redis through {stack}");
        let inspect = user.minibox(&["port", "cache"]).expect(0);
        assert_eq!(inspect.stdout, "6379/tcp -> 127.0.0.1:16379\n", "{stack}");
        // The container's own view: its tap0 and a resolver.
        let resolv = user
            .minibox(&["exec", "cache", "cat", "/etc/resolv.conf"])
            .expect(0);
        assert!(resolv.stdout.contains("nameserver "), "{}", resolv.stdout);
        user.minibox(&["rm", "-f", "cache"]).expect(0);
        // The port is free again: the stack is gone with the container.
        let again = [
            "run",
            "--rm",
            "-p",
            "127.0.0.1:16379:6379",
            "busybox",
            "true",
        ];
        user.minibox(&["pull", "--quiet", "busybox"]);
        let _ = again;
        assert_clean(&user);
    }
}

#[test]
fn bad_input_is_one_line_and_leaves_nothing() {
    let registry = registry();
    let mut user = user(&registry, true);
    user.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    let netns = host_namespace();
    user.in_network_namespace(netns.descriptor().unwrap());
    // A port taken on the host's side, by someone else.
    let mut taken = std::process::Command::new("sh");
    taken
        .args(["-c", "exec busybox nc -l -p 16380"])
        .stdin(std::process::Stdio::null());
    netns.enter(&mut taken).unwrap();
    let mut taken = taken.spawn().expect("a listener");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let cases: [(&[&str], &str); 5] = [
        (&["--network", "bridge"], "a bridge needs root"),
        (&["--network", "nosuch"], "network nosuch not found"),
        (&["--memory", "32m"], "cannot have limits"),
        (&["-p", "127.0.0.1:80:80"], "Permission denied"),
        (&["-p", "127.0.0.1:16380:80"], "port is already allocated"),
    ];
    for (flags, said) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let refused = user.minibox(&args);
        assert_eq!(refused.status, 125, "{flags:?}: {refused:?}");
        let lines: Vec<&str> = refused.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{flags:?}: {}", refused.stderr);
        assert!(lines[0].contains(said), "{flags:?}: {}", lines[0]);
        let ps = user.minibox(&["ps", "-a", "-q"]).expect(0);
        assert_eq!(ps.stdout, "", "{flags:?} left a container");
    }
    // SAFETY: kill(2) on the listener this test started.
    unsafe { libc::kill(taken.id() as i32, libc::SIGKILL) };
    let _ = taken.wait();
    assert_clean(&user);
}
