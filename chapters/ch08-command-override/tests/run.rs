//! Chapter 8 against the real registry: the images' own startup commands,
//! Docker's override rules, the environment, the working directory and the
//! user, and the PATH lookup inside the container with Docker's errors. Every
//! test needs root (pulling unpacks layers; running needs namespaces).

mod common;

use std::collections::BTreeSet;

use common::registry;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The seed's story: `run busybox` runs the image's `sh` (stdin is
/// /dev/null, so it reads end-of-file and exits 0), `run busybox echo hi`
/// overrides it, and `ls /` lists the image's root, not the host's.
#[test]
fn busybox_runs_its_own_command_or_the_one_given() {
    if !harness::require_root("ch08 busybox default and override") {
        return;
    }
    let registry = registry();
    let env = common::env("busybox", &registry);
    let default = env.minibox(&["run", "--quiet", "busybox"]).expect(0);
    assert_eq!(default.stdout, "");
    assert_eq!(
        default.stderr, "Unable to find image 'busybox:latest' locally\n",
        "sh ran quietly"
    );
    let hi = env
        .minibox(&["run", "--quiet", "busybox", "echo", "hi"])
        .expect(0);
    assert_eq!((hi.stdout.as_str(), hi.stderr.as_str()), ("hi\n", ""));
    let ls = env
        .minibox(&["run", "--quiet", "busybox", "ls", "/"])
        .expect(0);
    // `/` is the image's: exactly its top-level entries, and none of those
    // that only the host's root has (whatever this host's are).
    let entries: BTreeSet<String> = ls.stdout.lines().map(str::to_string).collect();
    let names = |dir: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect()
    };
    let image = names(&harness::fixtures::busybox_rootfs());
    assert_eq!(entries, image, "`ls /` in busybox");
    let host_only: Vec<String> = names(std::path::Path::new("/"))
        .difference(&image)
        .cloned()
        .collect();
    assert!(
        !host_only.is_empty(),
        "this host's root has the image's entries only: the check cannot tell them apart"
    );
    for name in &host_only {
        assert!(
            !entries.contains(name),
            "the host's /{name} is in the container's root"
        );
    }
    // The default command is really the image's: a shell that runs stdin.
    let mut child = env.command(&["run", "--quiet", "busybox"]);
    child.stdin(std::process::Stdio::piped());
    let mut child = child.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"echo from the default sh; exit 3\n")
            .unwrap();
    }
    let piped = common::wait(child, &["run", "busybox"]).expect(3);
    assert_eq!(piped.stdout, "from the default sh\n");
}

/// hello-world's Cmd is `["/hello"]`: it runs with no arguments; `ls` is not
/// in the image, and the error is Docker's, with status 127.
#[test]
fn hello_world_greets_and_has_no_ls() {
    if !harness::require_root("ch08 hello-world") {
        return;
    }
    let registry = registry();
    let env = common::env("hello", &registry);
    let hello = env.minibox(&["run", "--quiet", "hello-world"]).expect(0);
    assert!(
        hello.stdout.starts_with("Hello from minibox!\n"),
        "{}",
        hello.stdout
    );
    assert!(
        hello
            .stdout
            .contains("ran the image's startup command, /hello")
    );
    let ls = env
        .minibox(&["run", "--quiet", "hello-world", "ls"])
        .expect(127);
    assert_eq!(
        ls.stderr,
        "minibox: exec: \"ls\": executable file not found in $PATH\n"
    );
}

/// The rules table, row by row, against a real image whose config has
/// Entrypoint `["echo","hello"]` and Cmd `["world"]`.
#[test]
fn entrypoint_and_cmd_follow_dockers_rules() {
    if !harness::require_root("ch08 entrypoint and cmd") {
        return;
    }
    let registry = registry();
    let env = common::env("rules", &registry);
    env.minibox(&["pull", "-q", "minibox/echo"]).expect(0);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--quiet"];
        all.extend(args);
        env.minibox(&all)
    };
    assert_eq!(run(&["minibox/echo"]).expect(0).stdout, "hello world\n");
    assert_eq!(
        run(&["minibox/echo", "there"]).expect(0).stdout,
        "hello there\n"
    );
    // --entrypoint replaces the entrypoint and drops Cmd ("world").
    assert_eq!(
        run(&["--entrypoint", "echo", "minibox/echo"])
            .expect(0)
            .stdout,
        "\n"
    );
    assert_eq!(
        run(&["--entrypoint", "echo", "minibox/echo", "a", "b"])
            .expect(0)
            .stdout,
        "a b\n"
    );
    let ls = run(&["--entrypoint", "ls", "minibox/echo", "/etc/minibox-release"]).expect(0);
    assert_eq!(ls.stdout, "/etc/minibox-release\n");
    // An empty --entrypoint clears it: with Cmd dropped, nothing is left.
    let nothing = run(&["--entrypoint", "", "minibox/echo"]).expect(125);
    assert_eq!(nothing.stderr, "minibox: no command specified\n");
    // An image with neither: Docker's error, and no container left behind.
    env.minibox(&["pull", "-q", "minibox/nocmd"]).expect(0);
    let none = run(&["minibox/nocmd"]).expect(125);
    assert_eq!(none.stderr, "minibox: no command specified\n");
    let containers = env.root().join("containers");
    assert!(
        std::fs::read_dir(&containers).map_or(true, |mut d| d.next().is_none()),
        "no container directory is left"
    );
    assert_eq!(
        run(&["minibox/nocmd", "echo", "ok"]).expect(0).stdout,
        "ok\n"
    );
}

/// The environment: the image's PATH, HOSTNAME, the env file's entries, the
/// flags' (a flag beats the file), `-e KEY` taking minibox's own value, HOME
/// from passwd; and nothing else of minibox's environment.
#[test]
fn env_flags_and_files_make_the_containers_environment() {
    if !harness::require_root("ch08 environment") {
        return;
    }
    let registry = registry();
    let env = common::env("env", &registry);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(
        &file,
        "# settings\n\nFILE_VAR=from the file\nSHARED=file\n  SPACES= kept \nFROM_CALLER\nNOT_SET\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let mut command = env.command(&[
        "run",
        "--quiet",
        "-h",
        "box",
        "--env-file",
        file,
        "-e",
        "SHARED=flag",
        "-e",
        "FROM_CALLER",
        "-e",
        "GONE",
        "busybox",
        "env",
    ]);
    command
        .env("FROM_CALLER", "the caller's")
        .env("HOST_SECRET", "must not leak");
    let run = common::wait(command.spawn().unwrap(), &["run", "env"]).expect(0);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            DEFAULT_PATH,
            "HOSTNAME=box",
            "FILE_VAR=from the file",
            "SHARED=flag",
            "SPACES= kept ",
            "FROM_CALLER=the caller's",
            "HOME=/root",
        ]
    );
    // -u: HOME comes from the user's entry; -e HOME wins over it.
    let users = env
        .minibox(&[
            "run",
            "--quiet",
            "-u",
            "minibox-app",
            "minibox/users",
            "env",
        ])
        .expect(0);
    lines = users.stdout.lines().collect();
    assert!(lines.contains(&"HOME=/home/minibox-app"), "{lines:?}");
    let home = env
        .minibox(&[
            "run",
            "--quiet",
            "-e",
            "HOME=/mine",
            "busybox",
            "sh",
            "-c",
            "echo $HOME",
        ])
        .expect(0);
    assert_eq!(home.stdout, "/mine\n");
    // The PATH lookup uses the container's PATH: without /bin on it, no ls.
    let no_path = env
        .minibox(&["run", "--quiet", "-e", "PATH=/nowhere", "busybox", "ls"])
        .expect(127);
    assert_eq!(
        no_path.stderr,
        "minibox: exec: \"ls\": executable file not found in $PATH\n"
    );
    let bad = env
        .minibox(&[
            "run",
            "--quiet",
            "--env-file",
            "/nonexistent.env",
            "busybox",
        ])
        .expect(125);
    assert!(
        bad.stderr
            .starts_with("minibox: reading the env file /nonexistent.env: "),
        "{}",
        bad.stderr
    );
}

/// `-w` enters the directory, creating it owned by root with mode 0755 when
/// the image lacks it; a relative one is refused as Docker refuses it.
#[test]
fn workdir_is_entered_and_created_when_missing() {
    if !harness::require_root("ch08 workdir") {
        return;
    }
    let registry = registry();
    let env = common::env("workdir", &registry);
    let run = env
        .minibox(&[
            "run",
            "--quiet",
            "-w",
            "/etc",
            "busybox",
            "sh",
            "-c",
            "pwd; ls passwd",
        ])
        .expect(0);
    assert_eq!(run.stdout, "/etc\npasswd\n");
    let made = env
        .minibox(&[
            "run",
            "--quiet",
            "-u",
            "1000:1000",
            "-w",
            "/new/work dir",
            "busybox",
            "sh",
            "-c",
            "pwd; stat -c '%u %g %a' . ..; id -u",
        ])
        .expect(0);
    assert_eq!(made.stdout, "/new/work dir\n0 0 755\n0 0 755\n1000\n");
    let relative = env
        .minibox(&["run", "--quiet", "-w", "tmp", "busybox", "pwd"])
        .expect(125);
    assert_eq!(
        relative.stderr,
        "minibox: the working directory 'tmp' is invalid, it needs to be an absolute path\n"
    );
}

/// `-u` takes numbers the image's passwd need not have, and names only from
/// the image's passwd and group files: a user the host lacks works, and the
/// image's `nobody` (4000 here) is not the host's (65534).
#[test]
fn users_are_resolved_through_the_images_files() {
    if !harness::require_root("ch08 users") {
        return;
    }
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    assert!(
        !host_passwd.contains("minibox-app"),
        "the host must not have the image's user"
    );
    let registry = registry();
    let env = common::env("users", &registry);
    let ids = "id -u; id -g; id -G; echo $HOME";
    let numeric = env
        .minibox(&[
            "run",
            "--quiet",
            "-u",
            "1000:1000",
            "busybox",
            "sh",
            "-c",
            ids,
        ])
        .expect(0);
    assert_eq!(numeric.stdout, "1000\n1000\n1000\n/\n");
    let named = env
        .minibox(&[
            "run",
            "--quiet",
            "-u",
            "minibox-app",
            "minibox/users",
            "sh",
            "-c",
            ids,
        ])
        .expect(0);
    assert_eq!(named.stdout, "4321\n4321\n4321 5555\n/home/minibox-app\n");
    let nobody = env
        .minibox(&[
            "run",
            "--quiet",
            "-u",
            "nobody",
            "minibox/users",
            "sh",
            "-c",
            ids,
        ])
        .expect(0);
    assert_eq!(nobody.stdout, "4000\n4000\n4000\n/nonexistent\n");
    let group = env
        .minibox(&[
            "run",
            "--quiet",
            "-u",
            "minibox-app:root",
            "minibox/users",
            "sh",
            "-c",
            ids,
        ])
        .expect(0);
    assert_eq!(group.stdout, "4321\n0\n0\n/home/minibox-app\n");
    // The kernel's view of the supplementary groups: the primary group first,
    // then the image's memberships; none of root's are left.
    for (spec, expected) in [
        ("minibox-app", vec!["Groups:", "4321", "5555"]),
        ("1000:1000", vec!["Groups:", "1000"]),
    ] {
        let status = env
            .minibox(&[
                "run",
                "--quiet",
                "-u",
                spec,
                "minibox/users",
                "grep",
                "^Groups:",
                "/proc/self/status",
            ])
            .expect(0);
        assert_eq!(
            status.stdout.split_whitespace().collect::<Vec<_>>(),
            expected,
            "{spec}"
        );
    }
    // The dropped user really cannot do root's things.
    env.minibox(&[
        "run",
        "--quiet",
        "-u",
        "nobody",
        "minibox/users",
        "touch",
        "/etc/x",
    ])
    .expect(1);
    let ghost = env
        .minibox(&["run", "--quiet", "-u", "ghost", "busybox", "true"])
        .expect(125);
    assert_eq!(
        ghost.stderr,
        "minibox: container setup failed: unable to find user ghost: no matching entries in passwd file\n"
    );
    let containers = env.root().join("containers");
    assert!(
        std::fs::read_dir(&containers).map_or(true, |mut d| d.next().is_none()),
        "a user that cannot be found leaves no container behind"
    );
}

/// A file that is not executable, or a directory, cannot be invoked: 126, in
/// Docker's words; a path that does not exist is 127.
#[test]
fn programs_that_cannot_be_invoked_give_126() {
    if !harness::require_root("ch08 126 and 127") {
        return;
    }
    let registry = registry();
    let env = common::env("126", &registry);
    env.minibox(&["pull", "-q", "minibox/users"]).expect(0);
    let notes = env
        .minibox(&["run", "--quiet", "minibox/users", "/data/notes.txt"])
        .expect(126);
    assert_eq!(
        notes.stderr,
        "minibox: exec: \"/data/notes.txt\": permission denied\n"
    );
    let passwd = env
        .minibox(&[
            "run",
            "--quiet",
            "--entrypoint",
            "/etc/passwd",
            "minibox/users",
        ])
        .expect(126);
    assert_eq!(
        passwd.stderr,
        "minibox: exec: \"/etc/passwd\": permission denied\n"
    );
    let dir = env
        .minibox(&["run", "--quiet", "minibox/users", "/etc"])
        .expect(126);
    assert_eq!(dir.stderr, "minibox: exec: \"/etc\": is a directory\n");
    let missing = env
        .minibox(&["run", "--quiet", "minibox/users", "/no/such"])
        .expect(127);
    assert_eq!(
        missing.stderr,
        "minibox: exec: \"/no/such\": no such file or directory\n"
    );
}
