//! Chapter 12 end to end, for real: root, the real kernel, the fixture
//! registry on 127.0.0.1. Every container runs with `--network none`, in the
//! machine's namespace, so nothing here touches the host's network.

use std::collections::BTreeMap;

use harness::env::Env;
use harness::registry::Registry;

/// The chapter's binary, the product.
const MINIBOX: &str = env!("CARGO_BIN_EXE_ch12-security");

/// Docker's default capability set, as `/proc/PID/status` shows it.
const DOCKER_CAPS: &str = "00000000a80425fb";

fn registry() -> Registry {
    let registry = Registry::start();
    registry.push_fixtures().expect("fixtures");
    registry
}

/// A store of the test's own, with busybox pulled.
fn env(test: &str, registry: &Registry) -> Env {
    let env = Env::builder(MINIBOX, "ch12", test).mirror(registry).build();
    env.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    env
}

/// `minibox run --rm --network none ARGS`, to its end.
fn run(env: &Env, args: &[&str]) -> harness::process::Run {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    env.minibox(&all)
}

/// The `Cap*`, `NoNewPrivs` and `Seccomp` fields of the status of a
/// container's process started with `flags`.
fn status(env: &Env, flags: &[&str]) -> BTreeMap<String, String> {
    let mut args = flags.to_vec();
    args.extend(["busybox", "cat", "/proc/self/status"]);
    let out = run(env, &args).expect(0);
    out.stdout
        .lines()
        .filter_map(|line| line.split_once(":\t"))
        .filter(|(key, _)| key.starts_with("Cap") || *key == "NoNewPrivs" || *key == "Seccomp")
        .map(|(key, value)| (key.to_string(), value.trim().to_string()))
        .collect()
}

/// Nothing a container may leave: no container, no mount, no cgroup.
fn assert_clean(env: &Env) {
    let ps = env.minibox(&["ps", "-a", "-q"]).expect(0);
    assert_eq!(ps.stdout, "", "containers left behind");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

/// Every capability minibox may give (`--privileged`): the test's own
/// bounding set, as a status line shows it.
fn all_caps() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    line["CapBnd:".len()..].trim().to_string()
}

#[test]
fn a_default_container_has_dockers_capabilities_and_a_filter() {
    if !harness::require_root("ch12 status") {
        return;
    }
    let registry = registry();
    let env = env("status", &registry);
    let default = status(&env, &[]);
    for (key, value) in [
        ("CapInh", "0000000000000000"),
        ("CapPrm", DOCKER_CAPS),
        ("CapEff", DOCKER_CAPS),
        ("CapBnd", DOCKER_CAPS),
        ("CapAmb", "0000000000000000"),
        ("NoNewPrivs", "0"),
        ("Seccomp", "2"),
    ] {
        assert_eq!(default[key], value, "{key}: {default:?}");
    }
    // With --init, the init and the command under it: the same.
    assert_eq!(status(&env, &["--init"]), default, "--init");
    // Any other user: the same bounding set, nothing to use.
    let user = status(&env, &["-u", "1000"]);
    assert_eq!(user["CapBnd"], DOCKER_CAPS, "{user:?}");
    assert_eq!(user["CapPrm"], "0000000000000000", "{user:?}");
    assert_eq!(user["CapEff"], "0000000000000000", "{user:?}");
    let nnp = status(&env, &["--security-opt", "no-new-privileges"]);
    assert_eq!(
        (nnp["NoNewPrivs"].as_str(), nnp["Seccomp"].as_str()),
        ("1", "2")
    );
    let unconfined = status(&env, &["--security-opt", "seccomp=unconfined"]);
    assert_eq!(unconfined["Seccomp"], "0");
    let only = status(&env, &["--cap-drop", "ALL", "--cap-add", "net_admin"]);
    assert_eq!(only["CapEff"], "0000000000001000", "{only:?}");
    assert_eq!(only["CapBnd"], "0000000000001000", "{only:?}");
    let privileged = status(&env, &["--privileged"]);
    assert_eq!(privileged["CapEff"], all_caps(), "{privileged:?}");
    assert_eq!(privileged["CapBnd"], all_caps(), "{privileged:?}");
    assert_eq!(privileged["Seccomp"], "0", "{privileged:?}");
    assert_clean(&env);
}

#[test]
fn masked_and_read_only_paths_cover_the_hosts_proc() {
    if !harness::require_root("ch12 paths") {
        return;
    }
    let registry = registry();
    let env = env("paths", &registry);
    // Each masked path this kernel has: a file reads empty (/dev/null), a
    // directory lists nothing (an empty tmpfs).
    let script = "for p in /proc/keys /proc/timer_list /proc/kcore /proc/acpi /sys/firmware; do \
                  if [ -d $p ]; then echo \"$p $(ls -A $p | wc -l)\"; \
                  elif [ -e $p ]; then echo \"$p $(head -c 64 $p | wc -c)\"; fi; done";
    let masked = run(&env, &["busybox", "sh", "-c", script]).expect(0);
    let mut seen = 0;
    for line in masked.stdout.lines() {
        assert!(
            line.ends_with(" 0"),
            "not masked: {line}\n{}",
            masked.stdout
        );
        seen += 1;
    }
    assert!(seen >= 2, "no masked path checked: {}", masked.stdout);
    // The mounts are there to see.
    let mounts = run(&env, &["busybox", "cat", "/proc/self/mountinfo"]).expect(0);
    assert!(mounts.stdout.contains(" /proc/keys "), "{}", mounts.stdout);
    assert!(
        mounts.stdout.contains(" /proc/sys ro,"),
        "{}",
        mounts.stdout
    );
    // /proc/sys is read-only: even a namespaced setting cannot be written.
    let write = run(
        &env,
        &[
            "busybox",
            "sh",
            "-c",
            "echo box > /proc/sys/kernel/hostname",
        ],
    );
    assert_eq!(write.status, 1, "{write:?}");
    assert!(
        write.stderr.contains("Read-only file system"),
        "{}",
        write.stderr
    );
    // --privileged: nothing masked, /sys writable.
    let privileged = run(
        &env,
        &["--privileged", "busybox", "cat", "/proc/self/mountinfo"],
    )
    .expect(0);
    assert!(
        !privileged.stdout.contains(" /proc/keys "),
        "{}",
        privileged.stdout
    );
    assert!(
        privileged.stdout.lines().any(|l| l.contains(" /sys rw,")),
        "{}",
        privileged.stdout
    );
    assert_clean(&env);
}

#[test]
fn read_only_root_and_ulimits() {
    if !harness::require_root("ch12 read-only") {
        return;
    }
    let registry = registry();
    let env = env("read-only", &registry);
    let out = run(
        &env,
        &[
            "--read-only",
            "--tmpfs",
            "/tmp",
            "busybox",
            "sh",
            "-c",
            "touch /etc/x; echo $?; touch /tmp/x && echo tmp",
        ],
    )
    .expect(0);
    assert_eq!(out.stdout, "1\ntmp\n", "{out:?}");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    // A command that must write fails as the command, not as minibox.
    let fails = run(&env, &["--read-only", "busybox", "mkdir", "/new"]);
    assert_eq!(fails.status, 1, "{fails:?}");
    let limits = run(
        &env,
        &[
            "--ulimit",
            "nofile=64:128",
            "--ulimit",
            "nproc=50",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; ulimit -u",
        ],
    )
    .expect(0);
    assert_eq!(limits.stdout, "64\n128\n50\n");
    assert_clean(&env);
}

#[test]
fn no_descriptor_of_minibox_reaches_the_container() {
    if !harness::require_root("ch12 fds") {
        return;
    }
    let registry = registry();
    let env = env("fds", &registry);
    // `ls` opens one itself (the directory it lists): 0, 1, 2 and that one.
    let fds = run(&env, &["busybox", "ls", "/proc/self/fd"]).expect(0);
    assert_eq!(fds.stdout, "0\n1\n2\n3\n", "{fds:?}");
    // -w through a descriptor (CVE-2024-21626's shape): never a host directory.
    for fd in 3..8 {
        let dir = format!("/proc/self/fd/{fd}");
        let out = run(&env, &["-w", &dir, "busybox", "pwd"]);
        assert!(
            out.status != 0 || out.stdout.trim_end() == dir || out.stdout.starts_with("/proc"),
            "-w {dir}: {out:?}"
        );
        assert!(!out.stdout.contains("unreachable"), "-w {dir}: {out:?}");
    }
    assert_clean(&env);
}

#[test]
fn exec_is_confined_as_the_container_and_minibox_is_out_of_reach() {
    if !harness::require_root("ch12 exec") {
        return;
    }
    let registry = registry();
    let env = env("exec", &registry);
    // A container that tries, all the time, to open every other process's
    // executable for writing: minibox's, while it joins, would be a
    // CVE-2019-5736. `: >>` opens without writing a byte.
    let watcher = "while true; do for f in /proc/[0-9]*/exe; do \
                   case $f in /proc/1/exe|/proc/$$/exe) continue;; esac; \
                   (: >> $f) 2>/dev/null && echo OPENED $(readlink $f); done; done";
    let run_d = env
        .minibox(&[
            "run",
            "-d",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            watcher,
        ])
        .expect(0);
    let id = run_d.stdout.trim().to_string();
    for _ in 0..20 {
        let exec = env.minibox(&[
            "exec",
            &id,
            "grep",
            "-E",
            "^(CapEff|Seccomp:)",
            "/proc/self/status",
        ]);
        let exec = exec.expect(0);
        assert_eq!(
            exec.stdout,
            format!("CapEff:\t{DOCKER_CAPS}\nSeccomp:\t2\n")
        );
    }
    let logs = env.minibox(&["logs", &id]).expect(0);
    assert!(!logs.stdout.contains("OPENED"), "{}", logs.stdout);
    env.minibox(&["rm", "-f", &id]).expect(0);
    assert_clean(&env);
}

#[test]
fn bad_input_gets_one_line_and_leaves_nothing() {
    if !harness::require_root("ch12 bad input") {
        return;
    }
    let registry = registry();
    let env = env("bad", &registry);
    let dir = tempfile::tempdir().unwrap();
    let malformed = dir.path().join("bad.json");
    std::fs::write(&malformed, "{ not json").unwrap();
    let missing = dir.path().join("missing.json");
    let seccomp = |path: &std::path::Path| format!("seccomp={}", path.display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--cap-add".into(), "FOO".into()],
            "invalid CapAdd: unknown capability: \"CAP_FOO\"",
        ),
        (
            vec!["--cap-drop".into(), "cap_nope".into()],
            "invalid CapDrop: unknown capability: \"CAP_NOPE\"",
        ),
        (
            vec!["--security-opt".into(), seccomp(&missing)],
            "opening seccomp profile",
        ),
        (
            vec!["--security-opt".into(), seccomp(&malformed)],
            "seccomp profile",
        ),
        (
            vec!["--security-opt".into(), "foo".into()],
            "Invalid --security-opt: \"foo\"",
        ),
        (
            vec!["--security-opt".into(), "apparmor=my-profile".into()],
            "AppArmor",
        ),
        (
            vec!["--ulimit".into(), "nofiles=1".into()],
            "invalid ulimit type: nofiles",
        ),
    ];
    for (flags, message) in cases {
        for command in ["run", "create"] {
            let mut args: Vec<&str> = vec![command, "--network", "none"];
            args.extend(flags.iter().map(String::as_str));
            args.extend(["busybox", "true"]);
            let out = env.minibox(&args);
            assert_eq!(out.status, 125, "{args:?}: {out:?}");
            assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
            assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
            assert_clean(&env);
        }
    }
}

/// The same fields in a podman container (crun, its default configuration),
/// where podman is installed: the differences are the ones the page
/// explains, and only those.
#[test]
fn podman_differs_only_where_the_page_says() {
    if !harness::require_root("ch12 beside podman") {
        return;
    }
    if !harness::podman::installed() {
        harness::privilege::skip("ch12 beside podman", "podman is not installed");
        return;
    }
    let registry = registry();
    let env = env("podman", &registry);
    let ours = status(&env, &[]);
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/library/busybox", registry.host());
    let out = harness::podman::run(dir.path(), &image, &[], &["cat", "/proc/self/status"]);
    assert!(
        out.status.success(),
        "podman: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once(":\t"))
        .filter(|(key, _)| ours.contains_key(*key))
        .map(|(key, value)| (key.to_string(), value.trim().to_string()))
        .collect();
    // podman keeps 11 of Docker's 14: not AUDIT_WRITE, MKNOD, NET_RAW.
    let docker_only: u64 = (1 << 29) | (1 << 27) | (1 << 13);
    for (key, value) in &ours {
        let expected = match key.as_str() {
            "CapPrm" | "CapEff" | "CapBnd" => {
                let mask = u64::from_str_radix(value, 16).unwrap() & !docker_only;
                format!("{mask:016x}")
            }
            _ => value.clone(),
        };
        assert_eq!(
            theirs.get(key),
            Some(&expected),
            "{key}: ours {ours:?}, podman's {theirs:?}"
        );
    }
}

/// The probe's answers (`NAME: ANSWER`), by name.
fn answers(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| !name.starts_with("Cap") && *name != "NoNewPrivs" && *name != "Seccomp")
        .map(|(name, answer)| (name.to_string(), answer.to_string()))
        .collect()
}

/// What Docker refuses a default container, as the probe names it.
const REFUSED: [&str; 23] = [
    "mount",
    "umount",
    "unshare-mnt",
    "unshare-uts",
    "unshare-ipc",
    "unshare-net",
    "unshare-pid",
    "unshare-user",
    "unshare-cgroup",
    "keyctl",
    "add_key",
    "reboot",
    "kexec_load",
    "init_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "clock_settime",
    "settimeofday",
    "sysctl",
    "mknod-block",
    "unshare-time",
];

#[test]
fn the_attacks_fail_in_a_default_container_and_work_where_docker_allows_them() {
    if !harness::require_root("ch12 attacks") {
        return;
    }
    let registry = registry();
    let env = env("attacks", &registry);
    env.minibox(&["pull", "--quiet", "minibox/probe"]).expect(0);
    let default = answers(&run(&env, &["minibox/probe"]).expect(0).stdout);
    for name in REFUSED {
        let answer = default.get(name).map(String::as_str);
        let refused = match name {
            // /proc/sys is read-only before any capability is asked for.
            "sysctl" => answer == Some("EROFS"),
            _ => answer == Some("EPERM"),
        };
        assert!(
            refused,
            "{name}: {answer:?} in a default container: {default:?}"
        );
    }
    // The host's memory and the magic SysRq key are out of reach (or this
    // kernel has neither file).
    assert!(
        matches!(default["kcore"].as_str(), "empty" | "ENOENT"),
        "{default:?}"
    );
    assert!(
        matches!(default["sysrq"].as_str(), "EROFS" | "ENOENT"),
        "{default:?}"
    );
    // ptrace of its own child Docker allows (kernels from 4.8 on).
    assert_eq!(default["ptrace"], "ok", "{default:?}");

    // --privileged: each answer is the host's root's, where the probe runs
    // with everything minibox has.
    let host = answers(&probe_on_host());
    let privileged = answers(
        &run(&env, &["--privileged", "minibox/probe"])
            .expect(0)
            .stdout,
    );
    for name in REFUSED.iter().filter(|name| **name != "sysctl") {
        assert_eq!(
            privileged.get(*name),
            host.get(*name),
            "{name}: privileged {privileged:?}, host {host:?}"
        );
    }
    // One capability, and seccomp's rule for it, give back one thing.
    let admin = answers(
        &run(
            &env,
            &[
                "--cap-add",
                "SYS_ADMIN",
                "minibox/probe",
                "probe",
                "mount",
                "unshare-mnt",
                "reboot",
            ],
        )
        .expect(0)
        .stdout,
    );
    assert_eq!(admin["mount"], "ok", "{admin:?}");
    assert_eq!(admin["unshare-mnt"], "ok", "{admin:?}");
    assert_eq!(admin["reboot"], "EPERM", "{admin:?}");
    let boot = answers(
        &run(
            &env,
            &["--cap-add", "SYS_BOOT", "minibox/probe", "probe", "reboot"],
        )
        .expect(0)
        .stdout,
    );
    assert_eq!(boot.get("reboot"), host.get("reboot"), "{boot:?}");
    // seccomp=unconfined alone: the capability checks still refuse.
    let unconfined = answers(
        &run(
            &env,
            &[
                "--security-opt",
                "seccomp=unconfined",
                "minibox/probe",
                "probe",
                "mount",
                "keyctl",
            ],
        )
        .expect(0)
        .stdout,
    );
    assert_eq!(unconfined["mount"], "EPERM", "{unconfined:?}");
    assert_eq!(
        unconfined.get("keyctl"),
        host.get("keyctl"),
        "{unconfined:?}"
    );
    assert_clean(&env);
}

/// The probe run on the host, as root, by the harness's build of it.
fn probe_on_host() -> String {
    let program = harness::fixtures::static_program("probe").expect("the probe program");
    let out = std::process::Command::new(program).output().unwrap();
    assert!(out.status.success(), "probe on the host: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_images_symlinks_never_move_a_mount_out_of_the_root() {
    if !harness::require_root("ch12 evil symlinks") {
        return;
    }
    let registry = registry();
    let env = env("symlinks", &registry);
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for image in ["minibox/evil-symlinks-abs", "minibox/evil-symlinks-rel"] {
        env.minibox(&["pull", "--quiet", image]).expect(0);
        let out = run(&env, &[image, "true"]);
        assert_ne!(out.status, 0, "{image}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{image}: {}", out.stderr);
        for (name, target) in harness::images::EVIL_SYMLINKS {
            if target != "/" {
                assert!(
                    !std::path::Path::new(target).exists(),
                    "{image}: {name} made {target}"
                );
            }
        }
        assert_clean(&env);
    }
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts_after.contains("minibox-escape"), "{mounts_after}");
    assert_eq!(
        mounts_before.lines().count(),
        mounts_after.lines().count(),
        "the host's mount table changed"
    );
}

/// A test that fails half way, with a container running, leaves nothing:
/// its `Env` removes the container and the cgroups on the way out.
#[test]
fn a_failed_test_leaves_no_container_and_no_cgroup() {
    if !harness::require_root("ch12 failed test cleanup") {
        return;
    }
    let registry = registry();
    let parent = std::sync::Mutex::new(String::new());
    let pid = std::sync::Mutex::new(0);
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let env = env("failed", &registry);
        *parent.lock().unwrap() = env.cgroup_parent().to_string();
        let id = env
            .minibox(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"])
            .expect(0);
        let inspect = env.minibox(&["inspect", id.stdout.trim()]).expect(0);
        let inspect: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        *pid.lock().unwrap() = inspect[0]["State"]["Pid"].as_i64().unwrap_or(0) as i32;
        panic!("the test fails with the container running");
    }));
    assert!(failed.is_err());
    let pid = *pid.lock().unwrap();
    assert!(pid > 0, "the container's PID was not found");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the container's process {pid} outlived the test"
    );
    let left = harness::cgroups::leftovers(&parent.lock().unwrap());
    assert!(left.is_empty(), "cgroups left: {left:?}");
}
