//! Chapter 10's features beyond the story of `run.rs`, end to end and for
//! real: a terminal the test owns (a pty pair) driving `run -it`, the detach
//! keys and `attach`; `--init`; bind mounts, volumes and tmpfs; `create`,
//! `start` and `restart`; `--restart` policies; and the image commands
//! (`tag`, `rmi`), `info`, `version` and `completion`. As in `run.rs`, each
//! test makes a network namespace to play the host, with a store and a
//! runtime directory of its own, runs `minibox` inside it one process per
//! command, and ends by checking that nothing is left.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Host, exit_code, registry, wait_until};
use nix::errno::Errno;
use nix::pty::Winsize;

/// busybox's `sh` in a container whose terminal is a pty the test owns:
/// the container's own devpts gives it `/dev/pts/0`, the size is the test's
/// terminal's and follows it, `TERM` is Docker's. Ctrl-P Ctrl-Q detaches
/// (`run` exits 0, the shell runs on); `attach` from a second terminal
/// gives the shell that terminal's size and its keys, and exits with the
/// shell's status. With `-t` and no `-i`, a program's output comes through
/// the terminal's line discipline: `\r\n`, stderr and stdout together.
#[test]
fn a_terminal_drives_run_it_detaches_and_attaches_again() {
    if !harness::require_root("ch10 terminal") {
        return;
    }
    let registry = registry();
    let host = Host::new("terminal", &registry, &["busybox"]);

    // A terminal held open first, so that the test's own are not the host's
    // /dev/pts/0: what the container sees must be its own devpts.
    let _decoy = nix::pty::openpty(None, None).unwrap();
    let (mut first, mut run) = Terminal::spawn(
        &host,
        &["run", "-it", "--name", "tt", "busybox", "sh"],
        33,
        101,
    );
    assert_ne!(first.host_name, "/dev/pts/0");
    first.expect("# ");
    // Its devpts holds its one terminal and the multiplexer, nothing of
    // the host's.
    first.type_keys(b"tty; stty size; echo $TERM; ls /dev/pts | wc -l\r");
    first.expect("\r\n/dev/pts/0\r\n33 101\r\nxterm\r\n2\r\n");

    // A new size: on the test's terminal, then SIGWINCH to minibox (the
    // kernel sends one too, to the terminal's foreground group).
    first.resize(40, 120);
    harness::process::signal_delivered(run.id(), libc::SIGWINCH);
    first.type_keys(b"stty size\r");
    first.expect("\r\n40 120\r\n");

    // Ctrl-P Ctrl-Q: minibox goes, the shell stays.
    first.type_keys(b"\x10\x11");
    assert_eq!(exited(&mut run), 0, "{}", first.text());
    let rows = host.ps(&[]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["NAMES"], "tt");
    assert!(rows[0]["STATUS"].starts_with("Up "), "{rows:?}");
    assert_eq!(host.inspect("tt")["State"]["Status"], "running");

    // A second terminal, of another size, attached to the same shell.
    let (mut second, mut attach) = Terminal::spawn(&host, &["attach", "tt"], 20, 70);
    second.type_keys(b"stty size\r");
    second.expect("\r\n20 70\r\n");
    second.type_keys(b"exit 5\r");
    assert_eq!(exited(&mut attach), 5, "{}", second.text());
    let rows = host.ps(&["-a"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(exit_code(&rows[0]["STATUS"]), Some(5), "{rows:?}");
    assert_eq!(host.inspect("tt")["State"]["ExitCode"], 5);

    // -t without -i: the terminal's \r\n, both streams on it, and in the log.
    let script = "echo out; echo err >&2";
    let tonly = sh(&host, &["-t", "--name", "tonly"], script).expect(0);
    assert_eq!(
        (tonly.stdout.as_str(), tonly.stderr.as_str()),
        ("out\r\nerr\r\n", "")
    );
    let logs = host.minibox(&["logs", "tonly"]).expect(0);
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("out\r\nerr\r\n", "")
    );
    let plain = sh(&host, &["--rm"], script).expect(0);
    assert_eq!(
        (plain.stdout.as_str(), plain.stderr.as_str()),
        ("out\n", "err\n")
    );

    host.minibox(&["rm", "tt", "tonly"]).expect(0);
    host.assert_clean();
}

/// `--init`: PID 1 is a sealed in-memory copy of minibox, which the
/// container cannot write to, and which reaps the orphans a `sleep` as PID 1
/// leaves as zombies, and passes `stop`'s SIGTERM on to the command (which,
/// not being PID 1, dies of it at once: 143). Without it, `sleep` as PID 1
/// ignores SIGTERM and is killed after `-t` (137). A command that cannot be
/// found is the container's own failure: 127, the message on its stderr, in
/// its log.
#[test]
fn init_is_a_sealed_pid_1_that_reaps_and_forwards() {
    if !harness::require_root("ch10 --init") {
        return;
    }
    let registry = registry();
    let host = Host::new("init", &registry, &["busybox"]);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend(args);
        host.minibox(&all).expect(0).stdout
    };
    assert_eq!(
        run(&["--init", "busybox", "readlink", "/proc/1/exe"]),
        "/memfd:minibox (deleted)\n"
    );
    assert_eq!(
        run(&["busybox", "readlink", "/proc/1/exe"]),
        "/bin/busybox\n"
    );
    // The kernel names a program executed from a descriptor after the file
    // (Linux 6.14 on: the memfd's name), or after the descriptor's number.
    let comm = run(&["--init", "busybox", "cat", "/proc/1/comm"]);
    let init_comm = comm.trim_end().to_string();
    assert!(
        init_comm == "memfd:minibox"
            || (!init_comm.is_empty() && init_comm.bytes().all(|b| b.is_ascii_digit())),
        "{comm:?}"
    );
    assert_eq!(run(&["busybox", "cat", "/proc/1/comm"]), "cat\n");
    let write = sh(&host, &["--rm", "--init"], "echo x > /proc/1/exe").expect(1);
    assert_eq!(
        write.stderr,
        "sh: can't create /proc/1/exe: Text file busy\n"
    );

    // Orphans: the inner shell's background `sleep 0.1` is given to PID 1.
    let orphan = "sh -c 'sleep 0.1 &'; exec sleep 100";
    host.run_d(&["--name", "plain", "busybox", "sh", "-c", orphan]);
    let inited = host.run_d(&["--name", "inited", "--init", "busybox", "sh", "-c", orphan]);
    let stat = |name: &str| {
        host.minibox(&["exec", name, "ps", "-o", "stat,comm"])
            .expect(0)
            .stdout
    };
    wait_until(
        "a zombie under sleep as PID 1",
        Duration::from_secs(10),
        || stat("plain").lines().any(|l| l.starts_with('Z')),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        stat("plain"),
        "STAT COMMAND\nS    sleep\nZ    sleep\nR    ps\n",
        "never reaped"
    );
    wait_until(
        "the orphan under --init to go",
        Duration::from_secs(10),
        || {
            stat("inited")
                .lines()
                .filter(|l| l.ends_with("sleep"))
                .count()
                == 1
        },
    );
    assert_eq!(
        stat("inited"),
        format!("STAT COMMAND\nS    {init_comm}\nS    sleep\nR    ps\n")
    );

    // The copy is sealed: seen from the host, through the init's exe link.
    let pid = host.inspect(&inited)["State"]["Pid"].as_i64().unwrap();
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    let seals = nix::fcntl::fcntl(&exe, nix::fcntl::FcntlArg::F_GET_SEALS).unwrap();
    assert_eq!(
        nix::fcntl::SealFlag::from_bits_truncate(seals),
        ch10_runtime::init::SEALS
    );
    drop(exe);
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETXTBSY), "{err}");

    // stop: the init passes SIGTERM on; sleep as PID 1 would ignore it.
    let stopping = Instant::now();
    host.minibox(&["stop", "inited"]).expect(0);
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "stop with --init took {took:?}"
    );
    assert_eq!(host.inspect("inited")["State"]["ExitCode"], 143);
    let stopping = Instant::now();
    host.minibox(&["stop", "-t", "1", "plain"]).expect(0);
    let took = stopping.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "stop without --init took {took:?}"
    );
    assert_eq!(host.inspect("plain")["State"]["ExitCode"], 137);
    let statuses: Vec<(String, Option<i32>)> = host
        .ps(&["-a"])
        .into_iter()
        .map(|r| (r["NAMES"].clone(), exit_code(&r["STATUS"])))
        .collect();
    assert_eq!(
        statuses,
        [
            ("inited".to_string(), Some(143)),
            ("plain".to_string(), Some(137))
        ]
    );

    // A missing command: the init's child says so, on the container's stderr.
    let missing = "minibox: exec: \"nope\": executable file not found in $PATH\n";
    let nope = host
        .minibox(&["run", "--init", "--name", "nope", "busybox", "nope"])
        .expect(127);
    assert_eq!((nope.stdout.as_str(), nope.stderr.as_str()), ("", missing));
    let logs = host.minibox(&["logs", "nope"]).expect(0);
    assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("", missing));
    assert_eq!(host.inspect("nope")["State"]["ExitCode"], 127);

    host.minibox(&["rm", "plain", "inited", "nope"]).expect(0);
    host.assert_clean();
}

/// `-v` in its three forms and `--tmpfs`: a host directory both sides
/// write to, read-only when asked; a named volume seeded from the image,
/// outliving its container; anonymous volumes removed by `rm -v` and by
/// `--rm`; a tmpfs of the size asked. `volume ls`, `volume rm` (refused
/// while a container uses the volume) and `volume prune`, in Docker's words.
#[test]
fn volumes_binds_and_tmpfs_mounts() {
    if !harness::require_root("ch10 volumes") {
        return;
    }
    let registry = registry();
    let host = Host::new("volumes", &registry, &["busybox"]);
    let volumes = || host.minibox(&["volume", "ls", "-q"]).expect(0).stdout;

    // A host directory: what the container writes is on the host at once.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("from-host"), "host\n").unwrap();
    let bind = format!("{}:/data", dir.path().display());
    let both = sh(
        &host,
        &["--rm", "-v", &bind],
        "cat /data/from-host; echo inside > /data/f",
    )
    .expect(0);
    assert_eq!(both.stdout, "host\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f")).unwrap(),
        "inside\n"
    );
    let read_only = format!("{bind}:ro");
    let refused = sh(
        &host,
        &["--rm", "-v", &read_only],
        "cat /data/f; echo x > /data/g",
    )
    .expect(1);
    assert_eq!(refused.stdout, "inside\n");
    assert_eq!(
        refused.stderr,
        "sh: can't create /data/g: Read-only file system\n"
    );
    assert!(!dir.path().join("g").exists());
    assert_eq!(volumes(), "", "a bind mount is no volume");

    // A named volume, seeded from the image's /etc, with the container's own
    // network files on top of it; it outlives the container.
    let first = host.run_d(&["--name", "v1", "-v", "etc:/etc", "busybox", "sleep", "100"]);
    let cat = |name: &str, path: &str| host.minibox(&["exec", name, "cat", path]).expect(0).stdout;
    assert_eq!(
        cat("v1", "/etc/passwd"),
        std::fs::read_to_string(harness::fixtures::busybox_rootfs().join("etc/passwd")).unwrap()
    );
    assert_eq!(cat("v1", "/etc/hostname"), format!("{}\n", &first[..12]));
    host.minibox(&["exec", "v1", "sh", "-c", "echo kept > /etc/kept"])
        .expect(0);
    assert_eq!(volumes(), "etc\n");
    let ls = host.minibox(&["volume", "ls"]).expect(0);
    assert_eq!(ls.stdout, "DRIVER    VOLUME NAME\nlocal     etc\n");
    let in_use = host.minibox(&["volume", "rm", "etc"]).expect(1);
    assert_eq!(
        in_use.stderr,
        format!("minibox: remove etc: volume is in use - [{first}]\n")
    );
    assert_eq!(volumes(), "etc\n");
    host.minibox(&["rm", "-f", "v1"]).expect(0);
    let second = sh(
        &host,
        &["--rm", "-v", "etc:/etc"],
        "cat /etc/kept; hostname; cat /etc/hostname",
    )
    .expect(0);
    let lines: Vec<&str> = second.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", second.stdout);
    assert_eq!(lines[0], "kept");
    assert_eq!(lines[2], lines[1], "the second container's own hostname");
    assert_ne!(lines[1], &first[..12]);
    assert_eq!(
        host.minibox(&["volume", "rm", "etc"]).expect(0).stdout,
        "etc\n"
    );
    assert_eq!(volumes(), "");

    // Anonymous volumes: `rm -v` and `--rm` take them along.
    sh(
        &host,
        &["--name", "anon", "-v", "/anon"],
        "echo x > /anon/f",
    )
    .expect(0);
    let anonymous = volumes();
    let name = anonymous.trim_end();
    assert!(common::is_full_id(name), "{anonymous:?}");
    assert_eq!(
        host.minibox(&["rm", "-v", "anon"]).expect(0).stdout,
        "anon\n"
    );
    assert_eq!(volumes(), "");
    sh(&host, &["--rm", "-v", "/anon"], "echo x > /anon/f").expect(0);
    assert_eq!(volumes(), "", "--rm removed its anonymous volume");

    // --tmpfs: a tmpfs of its own, of the size asked, and noexec.
    let tmpfs = sh(
        &host,
        &["--rm", "--tmpfs", "/scratch:size=1m"],
        "mount | grep ' /scratch '; df -k /scratch | tail -1",
    )
    .expect(0);
    let lines: Vec<&str> = tmpfs.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", tmpfs.stdout);
    assert!(
        lines[0].starts_with("tmpfs on /scratch type tmpfs (rw,nosuid,nodev,noexec,"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(",size=1024k)"), "{}", lines[0]);
    assert_eq!(
        lines[1].split_whitespace().nth(1),
        Some("1024"),
        "{}",
        lines[1]
    );

    // prune: unused anonymous volumes; with -a, every unused one.
    sh(
        &host,
        &["--name", "left", "-v", "/left"],
        "echo hello > /left/f",
    )
    .expect(0);
    host.minibox(&["rm", "left"]).expect(0);
    let left = volumes().trim_end().to_string();
    assert!(common::is_full_id(&left), "{left:?}");
    assert_eq!(
        host.minibox(&["volume", "create", "named"])
            .expect(0)
            .stdout,
        "named\n"
    );
    let prune = host.minibox(&["volume", "prune"]).expect(0);
    assert_eq!(
        prune.stdout,
        format!("Deleted Volumes:\n{left}\n\nTotal reclaimed space: 6B\n")
    );
    assert_eq!(volumes(), "named\n");
    let prune = host.minibox(&["volume", "prune", "-a"]).expect(0);
    assert_eq!(
        prune.stdout,
        "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(volumes(), "");
    assert_eq!(
        host.minibox(&["volume", "prune"]).expect(0).stdout,
        "Total reclaimed space: 0B\n"
    );
    host.assert_clean();
}

/// An image whose `/abs` is a symbolic link to a host directory by its
/// absolute path, and `/rel` one that climbs out with `..`: a mount at either
/// lands where the link leads *inside* the container's root (the image has
/// those directories too), never on the host's.
#[test]
fn a_symlink_in_the_image_never_leads_a_mount_out_of_the_root() {
    if !harness::require_root("ch10 mount through a symlink") {
        return;
    }
    let registry = registry();
    // Two host directories, each with a file, that the links name.
    let outside = tempfile::tempdir().unwrap();
    let (abs_target, rel_target) = (outside.path().join("abs"), outside.path().join("rel"));
    for dir in [&abs_target, &rel_target] {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("host-file"), "the host's\n").unwrap();
    }
    let inside = |path: &Path| path.to_str().unwrap().trim_start_matches('/').to_string();
    let mut layer = harness::images::LayerBuilder::default();
    let mut so_far = String::new();
    for part in inside(&rel_target).split('/') {
        so_far.push_str(part);
        so_far.push('/');
        layer = layer.dir(&so_far);
    }
    let abs_dir = format!("{}/", inside(&abs_target));
    let layer = layer
        .dir(&abs_dir)
        .file(&format!("{abs_dir}image-file"), "the image's\n")
        .file(
            &format!("{}/image-file", inside(&rel_target)),
            "the image's\n",
        )
        .symlink("abs", abs_target.to_str().unwrap())
        .symlink(
            "rel",
            &format!("../../../../../../../../{}", inside(&rel_target)),
        )
        .build();
    let mut layers = harness::images::busybox().unwrap().layers;
    layers.push(layer);
    registry.push(
        "minibox/links",
        "latest",
        &harness::images::image(layers, &["sh"]),
    );
    let host = Host::new("links", &registry, &["minibox/links"]);

    let bound = tempfile::tempdir().unwrap();
    std::fs::write(bound.path().join("bound-file"), "bound\n").unwrap();
    let bind = format!("{}:/rel", bound.path().display());
    let script = "ls -A /abs; echo --; ls -A /rel; echo x > /abs/written; echo y > /rel/written";
    let run = host
        .minibox(&[
            "run",
            "--rm",
            "--tmpfs",
            "/abs",
            "-v",
            &bind,
            "minibox/links",
            "sh",
            "-c",
            script,
        ])
        .expect(0);
    assert_eq!(
        run.stdout, "--\nbound-file\n",
        "the tmpfs at /abs, the bind at /rel"
    );
    assert_eq!(run.stderr, "");
    let listing = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        listing(&abs_target),
        ["host-file"],
        "nothing reached the host's directory"
    );
    assert_eq!(
        listing(&rel_target),
        ["host-file"],
        "nothing reached the host's directory"
    );
    assert_eq!(listing(bound.path()), ["bound-file", "written"]);
    host.assert_clean();
}

/// `create` makes a container that does not run; `start` runs it, detached
/// or (`-a`) attached, each time on the same writable layer; `restart`
/// starts a running one anew. A start that fails leaves the container as it
/// was, with the reason in `inspect`.
#[test]
fn create_start_and_restart() {
    if !harness::require_root("ch10 create and start") {
        return;
    }
    let registry = registry();
    let host = Host::new("start", &registry, &["busybox"]);
    let created = host
        .minibox(&[
            "create",
            "--name",
            "cc",
            "busybox",
            "sh",
            "-c",
            "echo x >> /f; wc -l < /f",
        ])
        .expect(0);
    let id = created.stdout.trim_end().to_string();
    assert!(common::is_full_id(&id), "{created:?}");
    let status = |name: &str| -> String {
        let rows = host.ps(&["-a", "--filter", &format!("name=^{name}$")]);
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0]["STATUS"].clone()
    };
    assert_eq!(status("cc"), "Created");
    assert_eq!(host.ps(&[]), []);
    assert_eq!(host.veths(), [] as [String; 0], "nothing runs yet");

    assert_eq!(host.minibox(&["start", "cc"]).expect(0).stdout, "cc\n");
    assert_eq!(host.minibox(&["wait", "cc"]).expect(0).stdout, "0\n");
    assert_eq!(host.minibox(&["logs", "cc"]).expect(0).stdout, "1\n");
    let attached = host.minibox(&["start", "-a", "cc"]).expect(0);
    assert_eq!(
        (attached.stdout.as_str(), attached.stderr.as_str()),
        ("2\n", "")
    );
    assert_eq!(host.minibox(&["logs", "cc"]).expect(0).stdout, "1\n2\n");
    assert_eq!(exit_code(&status("cc")), Some(0));

    // restart: a new process, a new start time.
    host.run_d(&["--name", "rr", "busybox", "sleep", "100"]);
    let before = host.inspect("rr");
    assert_eq!(
        host.minibox(&["restart", "-t", "0", "rr"]).expect(0).stdout,
        "rr\n"
    );
    let after = host.inspect("rr");
    assert_eq!(after["State"]["Status"], "running");
    let time = |c: &serde_json::Value| {
        let text = c["State"]["StartedAt"].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert!(time(&after) > time(&before), "{before}\n{after}");
    assert_ne!(after["State"]["Pid"], before["State"]["Pid"]);
    assert!(status("rr").starts_with("Up "));

    // A start that fails: the container stays created, and says why.
    host.minibox(&["create", "--name", "bad", "busybox", "nope"])
        .expect(0);
    let failed = host.minibox(&["start", "bad"]).expect(1);
    assert_eq!(failed.stdout, "");
    assert!(
        failed
            .stderr
            .contains("exec: \"nope\": executable file not found in $PATH"),
        "{}",
        failed.stderr
    );
    assert_eq!(status("bad"), "Created");
    let state = &host.inspect("bad")["State"];
    assert_eq!(state["Status"], "created");
    assert_eq!(
        state["Error"],
        "exec: \"nope\": executable file not found in $PATH"
    );
    assert_eq!(state["ExitCode"], 127);
    assert_eq!(state["Pid"], 0);

    host.minibox(&["rm", "-f", "cc", "rr", "bad"]).expect(0);
    host.assert_clean();
}

/// A published port is bound anew at each start: after `restart`, `port`
/// names the new binding, and redis answers through it.
#[test]
fn restart_binds_the_published_port_again() {
    if !harness::require_root("ch10 restart with a port") {
        return;
    }
    let registry = registry();
    let host = Host::new("restart-port", &registry, &["redis"]);
    host.run_d(&["--name", "cache", "-p", "127.0.0.1::6379", "redis"]);
    let port = || -> u16 {
        let port = host.minibox(&["port", "cache", "6379"]).expect(0).stdout;
        port.strip_prefix("127.0.0.1:")
            .and_then(|p| p.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("{port:?}"))
            .parse()
            .unwrap()
    };
    let first = port();
    ping(&host, first);
    let started = host.inspect("cache")["State"]["StartedAt"].clone();
    assert_eq!(
        host.minibox(&["restart", "cache"]).expect(0).stdout,
        "cache\n"
    );
    assert_ne!(host.inspect("cache")["State"]["StartedAt"], started);
    let second = port();
    ping(&host, second);
    let rows = host.ps(&[]);
    assert_eq!(rows[0]["PORTS"], format!("127.0.0.1:{second}->6379/tcp"));
    if second != first {
        assert!(host.connect(first).is_err(), "port {first} still open");
    }
    host.minibox(&["rm", "-f", "cache"]).expect(0);
    assert!(host.connect(second).is_err(), "port {second} still open");
    host.assert_clean();
}

/// `--restart`: `on-failure:2` runs a failing command three times in all;
/// `always` starts one that ends well again, until `stop`; Docker's messages
/// for `--restart` with `--rm` and for a policy it does not know, before
/// anything is made.
#[test]
fn restart_policies() {
    if !harness::require_root("ch10 --restart") {
        return;
    }
    let registry = registry();
    let host = Host::new("policies", &registry, &["busybox"]);
    host.run_d(&[
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo ran; exit 3",
    ]);
    wait_until("flaky to give up", Duration::from_secs(15), || {
        let flaky = host.inspect("flaky");
        flaky["State"]["Status"] == "exited" && flaky["RestartCount"] == 2
    });
    // Longer than the next back-off (400 ms) would be: no fourth run.
    std::thread::sleep(Duration::from_millis(700));
    let flaky = host.inspect("flaky");
    assert_eq!(flaky["State"]["Status"], "exited");
    assert_eq!(flaky["State"]["ExitCode"], 3);
    assert_eq!(flaky["RestartCount"], 2);
    assert_eq!(
        flaky["HostConfig"]["RestartPolicy"],
        serde_json::json!({ "Name": "on-failure", "MaximumRetryCount": 2 })
    );
    assert_eq!(
        host.minibox(&["logs", "flaky"]).expect(0).stdout,
        "ran\nran\nran\n"
    );
    let rows = host.ps(&["-a"]);
    assert_eq!(exit_code(&rows[0]["STATUS"]), Some(3), "{rows:?}");

    host.run_d(&[
        "--name",
        "again",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "0.2",
    ]);
    let count = || host.inspect("again")["RestartCount"].as_u64().unwrap();
    wait_until("two restarts", Duration::from_secs(15), || count() >= 2);
    assert_eq!(
        host.minibox(&["stop", "-t", "1", "again"]).expect(0).stdout,
        "again\n"
    );
    let stopped = count();
    std::thread::sleep(Duration::from_secs(1));
    let again = host.inspect("again");
    assert_eq!(again["RestartCount"], stopped, "restarted after stop");
    assert_eq!(again["State"]["Status"], "exited");
    assert_eq!(host.ps(&[]), [], "nothing runs");

    let before = host.ids();
    let conflict = host
        .minibox(&["run", "--restart", "always", "--rm", "busybox"])
        .expect(125);
    assert_eq!(
        conflict.stderr,
        "minibox: conflicting options: cannot specify both --restart and --rm\n"
    );
    let unknown = host
        .minibox(&["run", "--restart", "sometimes", "busybox"])
        .expect(125);
    assert_eq!(
        unknown.stderr,
        "minibox: invalid restart policy: unknown policy 'sometimes'; use one of 'no', \
         'always', 'on-failure', or 'unless-stopped'\n"
    );
    assert_eq!(host.ids(), before, "nothing was created");
    assert_eq!(
        common::entries(&host.env.root().join("containers")).len(),
        2
    );

    host.minibox(&["rm", "flaky", "again"]).expect(0);
    host.assert_clean();
}

/// Names for images: `tag` adds one, `images` lists it; `rmi` refuses the
/// last name of an image a container uses, takes away a name that is not
/// the last, and deletes the image and its layers with its last name.
/// `info` counts containers and images as Docker does; `version`;
/// `completion bash` is a script bash accepts.
#[test]
fn tag_rmi_info_version_and_completion() {
    if !harness::require_root("ch10 images") {
        return;
    }
    let registry = registry();
    let host = Host::new("images", &registry, &["busybox", "hello-world"]);
    let up = host.run_d(&["--name", "up", "busybox", "sleep", "100"]);
    host.minibox(&["run", "--name", "down", "hello-world"])
        .expect(0);
    let busybox = host.inspect("up")["Image"].as_str().unwrap().to_string();
    let hello = host.inspect("down")["Image"].as_str().unwrap().to_string();
    let short = |id: &str| id["sha256:".len()..][..12].to_string();
    let counts = || -> Vec<String> {
        host.minibox(&["info"])
            .expect(0)
            .stdout
            .lines()
            .take(5)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        counts(),
        [
            "Containers: 2",
            " Running: 1",
            " Paused: 0",
            " Stopped: 1",
            "Images: 2"
        ]
    );

    let conflict = host.minibox(&["rmi", "busybox"]).expect(1);
    assert_eq!(
        conflict.stderr,
        format!(
            "minibox: conflict: unable to remove repository reference \"busybox\" (must force) \
             - container {} is using its referenced image {}\n",
            &up[..12],
            short(&busybox)
        )
    );
    assert_eq!(
        host.minibox(&["tag", "busybox", "mine:v1"])
            .expect(0)
            .stdout,
        ""
    );
    let images = |host: &Host| -> Vec<(String, String, String)> {
        common::table(&host.minibox(&["images"]).expect(0).stdout)
            .into_iter()
            .map(|r| {
                (
                    r["REPOSITORY"].clone(),
                    r["TAG"].clone(),
                    r["IMAGE ID"].clone(),
                )
            })
            .collect()
    };
    let row = |repository: &str, tag: &str, id: &str| {
        (repository.to_string(), tag.to_string(), short(id))
    };
    assert_eq!(
        images(&host),
        [
            row("busybox", "latest", &busybox),
            row("hello-world", "latest", &hello),
            row("mine", "v1", &busybox)
        ]
    );
    assert_eq!(counts()[4], "Images: 2", "two names, one image");
    // Not the last name: only the name goes, the container keeps its image.
    let untag = host.minibox(&["rmi", "busybox"]).expect(0);
    assert_eq!(untag.stdout, "Untagged: busybox:latest\n");
    host.minibox(&["tag", "mine:v1", "busybox"]).expect(0);

    host.minibox(&["rm", "-f", "up", "down"]).expect(0);
    // Each image's one layer, as the store's index names it.
    let index = std::fs::read(host.env.root().join("images.json")).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let layer = |name: &str| -> String {
        let diff_ids = &index[format!("docker.io/library/{name}:latest")]["diff_ids"];
        assert_eq!(diff_ids.as_array().map(Vec::len), Some(1), "{index}");
        diff_ids[0].as_str().unwrap().to_string()
    };
    let (busybox_layer, hello_layer) = (layer("busybox"), layer("hello-world"));
    assert_eq!(host.env.layers().len(), 2);
    let removed = host
        .minibox(&["rmi", "mine:v1", "busybox", "hello-world"])
        .expect(0);
    assert_eq!(
        removed.stdout,
        format!(
            "Untagged: mine:v1\nUntagged: busybox:latest\nDeleted: {busybox}\n\
             Deleted: {busybox_layer}\nUntagged: hello-world:latest\nDeleted: {hello}\n\
             Deleted: {hello_layer}\n"
        )
    );
    assert_eq!(host.env.layers(), [] as [std::path::PathBuf; 0]);
    assert_eq!(images(&host), []);
    assert_eq!(
        counts(),
        [
            "Containers: 0",
            " Running: 0",
            " Paused: 0",
            " Stopped: 0",
            "Images: 0"
        ]
    );

    let version = host.minibox(&["version"]).expect(0);
    assert_eq!(
        version.stdout.lines().next(),
        Some(format!("minibox version {} (chapter 10)", env!("CARGO_PKG_VERSION")).as_str())
    );
    // More than a pipe holds: read while it writes (`Host::minibox` reads
    // after the end).
    let completion = host.command(&["completion", "bash"]).output().unwrap();
    assert!(completion.status.success(), "{completion:?}");
    assert_eq!(String::from_utf8_lossy(&completion.stderr), "");
    let completion = String::from_utf8(completion.stdout).unwrap();
    assert!(
        completion.starts_with("_minibox() {\n"),
        "no _minibox function"
    );
    assert!(
        completion.contains("complete -F _minibox"),
        "not registered"
    );
    for word in ["restart", "volume", "attach", "--detach-keys"] {
        assert!(completion.contains(word), "{word} missing");
    }
    let mut bash = std::process::Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    bash.stdin
        .take()
        .unwrap()
        .write_all(completion.as_bytes())
        .unwrap();
    assert!(bash.wait().unwrap().success(), "bash -n refused the script");
    host.assert_clean();
}

/// `minibox run FLAGS busybox sh -c SCRIPT`, to the end.
fn sh(host: &Host, flags: &[&str], script: &str) -> harness::process::Run {
    let mut args = vec!["run"];
    args.extend(flags);
    args.extend(["busybox", "sh", "-c", script]);
    host.minibox(&args)
}

/// Sends PING to redis on the host namespace's `port` until it answers
/// (30 s at most), and checks the answer.
fn ping(host: &Host, port: u16) {
    let once = || -> std::io::Result<String> {
        let mut conn = host.connect(port)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(b"PING\r\n")?;
        let mut answer = [0u8; 7];
        conn.read_exact(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match once() {
            Ok(answer) => {
                assert_eq!(answer, "+PONG\r\n");
                return;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "redis never answered on {port}: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (20 s at most) for a minibox the test started to end; its status.
fn exited(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    match harness::process::wait_until(child, deadline) {
        Some(status) => harness::transcript::exit_status(status),
        None => {
            harness::process::stop(child);
            panic!("minibox {} did not end", child.id());
        }
    }
}

/// A terminal the test owns: a pty pair whose slave is a minibox's stdin,
/// stdout, stderr and controlling terminal, and whose master the test types
/// on and reads the screen from.
struct Terminal {
    master: OwnedFd,
    /// The slave's name on the host (`/dev/pts/N` of the host's devpts).
    host_name: String,
    /// Everything read from the master so far.
    screen: Vec<u8>,
    /// How much of `screen` earlier expectations have consumed.
    seen: usize,
}

impl Terminal {
    /// Starts `minibox ARGS` on a new pty of `rows` by `cols`, in a session
    /// of its own whose controlling terminal is the pty.
    fn spawn(host: &Host, args: &[&str], rows: u16, cols: u16) -> (Terminal, Child) {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(&size, None).unwrap();
        nix::fcntl::fcntl(
            &pty.master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut command = host.command(args);
        let slave = || Stdio::from(pty.slave.try_clone().unwrap());
        command.stdin(slave()).stdout(slave()).stderr(slave());
        let controlling = || -> std::io::Result<()> {
            nix::unistd::setsid()?;
            // SAFETY: TIOCSCTTY takes an int by value; stdin is the pty's
            // slave, and the new session has no terminal yet.
            let rc = unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
            Errno::result(rc)?;
            Ok(())
        };
        // SAFETY: between fork and exec the closure makes only
        // async-signal-safe system calls (setsid(2), ioctl(2)).
        unsafe { command.pre_exec(controlling) };
        let child = command.spawn().unwrap();
        drop(command); // its copies of the slave
        let link = format!("/proc/self/fd/{}", pty.slave.as_raw_fd());
        let host_name = std::fs::read_link(link).unwrap();
        let terminal = Terminal {
            master: pty.master,
            host_name: host_name.to_string_lossy().into_owned(),
            screen: Vec::new(),
            seen: 0,
        };
        (terminal, child)
    }

    /// Types `keys`.
    fn type_keys(&self, keys: &[u8]) {
        let mut file = std::fs::File::from(self.master.try_clone().unwrap());
        file.write_all(keys).unwrap();
    }

    /// Reads the screen until what follows the last expectation contains
    /// `wanted` (10 s at most).
    fn expect(&mut self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let fresh = String::from_utf8_lossy(&self.screen[self.seen..]).into_owned();
            if let Some(at) = fresh.find(wanted) {
                self.seen += fresh[..at + wanted.len()].len();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited 10 s for {wanted:?}; the terminal shows {fresh:?}"
            );
            let mut buffer = [0u8; 4096];
            match nix::unistd::read(self.master.as_fd(), &mut buffer) {
                Ok(n) if n > 0 => self.screen.extend_from_slice(&buffer[..n]),
                // EAGAIN: nothing yet; EIO: nobody has the slave open.
                Ok(_) | Err(Errno::EAGAIN | Errno::EIO) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(errno) => panic!("reading the terminal: {errno}"),
            }
        }
    }

    /// Everything the terminal showed, for messages.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen).into_owned()
    }

    /// Gives the terminal a new size (the kernel sends SIGWINCH to its
    /// foreground process group).
    fn resize(&self, rows: u16, cols: u16) {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which
        // points to a live local; the descriptor is the pty's master.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        Errno::result(rc).unwrap();
    }
}
