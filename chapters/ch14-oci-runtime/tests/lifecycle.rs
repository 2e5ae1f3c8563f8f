//! The OCI runtime's lifecycle, on the real kernel: `create` leaves the
//! init waiting, `start` lets the program run, `state` tells which step a
//! container is at, and every operation asked at the wrong step fails with
//! one line and changes nothing. Then what engines rely on around it: the
//! PID file, hooks in their order with the state on stdin, `exec`, `kill
//! --all`, `delete --force`, `run`, the console socket and `--preserve-fds`.
//! Every test ends by checking that nothing is left: no state directory, no
//! cgroup, no process, no mount.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Sandbox, alive, read_pid, wait_for};
use serde_json::{Value, json};

/// The state's status and PID, and the ids under `--root`: what a refused
/// operation must leave as it was.
fn snapshot(sandbox: &Sandbox, id: &str) -> (Value, Value, Vec<String>) {
    let state = sandbox.state(id);
    let mut entries = sandbox.root_entries();
    entries.sort();
    (state["status"].clone(), state["pid"].clone(), entries)
}

/// Runs `args`, which must fail with one line, and checks that container
/// `id`'s status, PID and the state root did not change. Returns the line.
fn refused(sandbox: &Sandbox, id: &str, args: &[&str]) -> String {
    let before = snapshot(sandbox, id);
    let line = sandbox.runc(args).one_line_failure();
    let after = snapshot(sandbox, id);
    assert_eq!(
        before,
        after,
        "expected `{}` to change nothing, but (status, pid, --root) went from {before:?} to {after:?}",
        args.join(" ")
    );
    line
}

#[test]
fn operations_in_the_wrong_state_fail_and_change_nothing() {
    if !harness::require_root("operations_in_the_wrong_state_fail_and_change_nothing") {
        return;
    }
    let sandbox = Sandbox::new("wrong-state");
    let id = "c1";
    sandbox.write_config(&sandbox.config(id, &["sleep", "1000"]));

    let unknown = sandbox.runc(&["state", "nosuch"]).one_line_failure();
    assert!(
        unknown.contains("nosuch"),
        "expected `state nosuch` to name the ID, but it said {unknown:?}"
    );

    let pid = sandbox.create(id);
    assert_eq!(sandbox.status(id), "created");
    let bundle = sandbox.bundle.to_str().unwrap();
    let line = refused(&sandbox, id, &["create", "--bundle", bundle, id]);
    assert!(
        line.contains("exists"),
        "expected `create` of a taken ID to say it exists, but it said {line:?}"
    );
    refused(&sandbox, id, &["pause", id]);
    refused(&sandbox, id, &["resume", id]);

    sandbox.runc(&["start", id]).ok();
    assert_eq!(sandbox.status(id), "running");
    refused(&sandbox, id, &["start", id]);
    refused(&sandbox, id, &["resume", id]);
    let line = refused(&sandbox, id, &["delete", id]);
    assert!(
        line.contains("not stopped"),
        "expected `delete` of a running container to say it is not stopped, but it said {line:?}"
    );
    assert!(
        alive(pid),
        "expected the init {pid} to survive a refused delete, but it is gone"
    );

    sandbox.runc(&["kill", id, "KILL"]).ok();
    sandbox.wait_stopped(id);
    refused(&sandbox, id, &["kill", id, "KILL"]);
    refused(&sandbox, id, &["exec", id, "true"]);
    refused(&sandbox, id, &["start", id]);
    refused(&sandbox, id, &["pause", id]);

    sandbox.runc(&["delete", id]).ok();
    let gone = sandbox.runc(&["state", id]).one_line_failure();
    assert!(
        gone.contains(id),
        "expected `state` of a deleted container to name it, but it said {gone:?}"
    );
    sandbox.assert_clean();
}

#[test]
fn state_follows_created_running_paused_stopped() {
    if !harness::require_root("state_follows_created_running_paused_stopped") {
        return;
    }
    let sandbox = Sandbox::new("state");
    let id = "st";
    let mut config = sandbox.config(id, &["sleep", "1000"]);
    config["annotations"] = json!({"org.example.test": "yes", "second": "2"});
    sandbox.write_config(&config);

    let pid = sandbox.create(id);
    let state = sandbox.state(id);
    assert_eq!(state["ociVersion"], "1.2.0", "ociVersion in {state}");
    assert_eq!(state["id"], id, "id in {state}");
    assert_eq!(state["status"], "created", "status in {state}");
    assert_eq!(
        state["pid"], pid,
        "pid in {state} (the PID file says {pid})"
    );
    let bundle = fs::canonicalize(&sandbox.bundle).unwrap();
    let reported = fs::canonicalize(state["bundle"].as_str().unwrap_or_default());
    assert_eq!(
        reported.ok(),
        Some(bundle.clone()),
        "expected the bundle {}, but state says {}",
        bundle.display(),
        state["bundle"]
    );
    assert_eq!(
        state["annotations"],
        json!({"org.example.test": "yes", "second": "2"}),
        "annotations in {state}"
    );

    sandbox.runc(&["start", id]).ok();
    let state = sandbox.state(id);
    assert_eq!(state["status"], "running", "status in {state}");
    assert_eq!(state["pid"], pid, "pid in {state}");

    sandbox.runc(&["pause", id]).ok();
    assert_eq!(sandbox.status(id), "paused");
    sandbox.runc(&["resume", id]).ok();
    assert_eq!(sandbox.status(id), "running");

    sandbox.runc(&["kill", id, "SIGKILL"]).ok();
    sandbox.wait_stopped(id);
    sandbox.runc(&["delete", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn the_program_runs_only_after_start() {
    if !harness::require_root("the_program_runs_only_after_start") {
        return;
    }
    let sandbox = Sandbox::new("after-start");
    let id = "wait";
    sandbox.write_config(&sandbox.config(id, &["sh", "-c", "touch /shared/ran /tmp/ran"]));
    let ran = sandbox.shared.join("ran");

    sandbox.create(id);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !ran.exists(),
        "expected the program not to run before `start`, but {} exists after `create`",
        ran.display()
    );
    assert!(
        !sandbox.bundle.join("rootfs/tmp/ran").exists(),
        "expected no /tmp/ran in the writable root before `start`, but it is there"
    );
    sandbox.runc(&["start", id]).ok();
    assert!(
        wait_for(Duration::from_secs(5), || ran.exists()),
        "expected the program to run after `start`, but {} did not appear within 5 s",
        ran.display()
    );
    assert!(
        sandbox.bundle.join("rootfs/tmp/ran").exists(),
        "expected /tmp/ran in the writable root after `start`, but it is not there"
    );
    sandbox.wait_stopped(id);
    sandbox.runc(&["delete", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn the_pid_file_holds_the_init_pid() {
    if !harness::require_root("the_pid_file_holds_the_init_pid") {
        return;
    }
    let sandbox = Sandbox::new("pid-file");
    let id = "pidfile";
    sandbox.write_config(&sandbox.config(id, &["sleep", "1000"]));

    // A relative --pid-file is the caller's working directory's.
    let work = sandbox.dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let mut create = sandbox.command(&[
        "create",
        "--bundle",
        sandbox.bundle.to_str().unwrap(),
        "--pid-file",
        "init.pid",
        id,
    ]);
    create.current_dir(&work);
    sandbox.run_command(create).ok();
    let pid = read_pid(&work.join("init.pid"));
    sandbox.remember(pid);
    let state = sandbox.state(id);
    assert_eq!(
        state["pid"], pid,
        "expected state's pid to equal the PID file's {pid}, but state is {state}"
    );
    assert!(
        alive(pid),
        "expected the init {pid} to be alive after create"
    );
    let leftovers: Vec<_> = fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers,
        ["init.pid"],
        "expected only init.pid in the working directory (no temporary file), but found {leftovers:?}"
    );

    sandbox.runc(&["delete", "--force", id]).ok();
    sandbox.assert_clean();
}

/// A hook that saves its stdin as `KIND.json` and appends its kind to
/// `order`, both in `dir`, with `sh` at `sh`; `before` runs first (a pause
/// that makes a race show).
fn recording_hook(sh: &str, dir: &Path, kind: &str, before: &str) -> Value {
    let dir = dir.display();
    json!({
        "path": sh,
        "args": ["sh", "-c", format!("{before} cat > {dir}/{kind}.json && echo {kind} >> {dir}/order")],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
        "timeout": 10
    })
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    if !harness::require_root("hooks_run_in_order_with_the_state_on_stdin") {
        return;
    }
    let sandbox = Sandbox::new("hooks");
    let id = "hooked";
    let mut config = sandbox.config(id, &["sh", "-c", "exit 0"]);
    let host = sandbox.shared.as_path();
    // startContainer runs in the container, after pivot_root: its sh is
    // busybox's, and it writes into the shared directory's inside path.
    config["hooks"] = json!({
        "prestart": [recording_hook("/bin/sh", host, "prestart", "")],
        "createRuntime": [recording_hook("/bin/sh", host, "createRuntime", "")],
        "createContainer": [recording_hook("/bin/sh", host, "createContainer", "")],
        // It takes its time: poststart must still come after it, since
        // `start` returns only once the program runs.
        "startContainer": [recording_hook("/bin/sh", Path::new("/shared"), "startContainer", "sleep 0.5;")],
        "poststart": [recording_hook("/bin/sh", host, "poststart", "")],
        "poststop": [recording_hook("/bin/sh", host, "poststop", "")]
    });
    sandbox.write_config(&config);

    let pid = sandbox.create(id);
    sandbox.runc(&["start", id]).ok();
    sandbox.wait_stopped(id);
    sandbox.runc(&["delete", id]).ok();

    let order = fs::read_to_string(host.join("order")).unwrap_or_default();
    let order: Vec<&str> = order.lines().collect();
    assert_eq!(
        order,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "expected the hooks to run in the specification's order, but they ran as {order:?}"
    );
    for (kind, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let path = host.join(format!("{kind}.json"));
        let text = fs::read_to_string(&path).unwrap_or_default();
        let state: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("expected the {kind} hook to get the state as JSON, but ({e}) it got {text:?}")
        });
        assert_eq!(state["id"], id, "id in {kind}'s state {state}");
        assert_eq!(state["status"], status, "status in {kind}'s state {state}");
        assert_eq!(
            state["ociVersion"], "1.2.0",
            "ociVersion in {kind}'s state {state}"
        );
        if kind != "poststop" {
            assert_eq!(state["pid"], pid, "pid in {kind}'s state {state}");
        }
    }
    sandbox.assert_clean();
}

#[test]
fn a_failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    if !harness::require_root("a_failing_create_runtime_hook_fails_create_and_leaves_nothing") {
        return;
    }
    let sandbox = Sandbox::new("failing-hook");
    let id = "badhook";
    let mut config = sandbox.config(id, &["sleep", "1000"]);
    config["hooks"] = json!({
        // prestart runs first and records the init's PID, to check it is gone.
        "prestart": [recording_hook("/bin/sh", &sandbox.shared, "prestart", "")],
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]
    });
    sandbox.write_config(&config);

    let bundle = sandbox.bundle.to_str().unwrap();
    let line = sandbox
        .runc(&["create", "--bundle", bundle, id])
        .one_line_failure();
    assert!(
        line.contains("createRuntime"),
        "expected the error to name the createRuntime hook, but it said {line:?}"
    );
    let prestart = fs::read_to_string(sandbox.shared.join("prestart.json")).unwrap_or_default();
    let state: Value = serde_json::from_str(&prestart).unwrap_or_else(|e| {
        panic!("expected the prestart hook to record the state, but ({e}) it has {prestart:?}")
    });
    let pid = state["pid"].as_i64().expect("a pid in the state") as i32;
    sandbox.remember(pid);
    sandbox.assert_clean();
}

#[test]
fn exec_returns_the_exit_status() {
    if !harness::require_root("exec_returns_the_exit_status") {
        return;
    }
    let sandbox = Sandbox::new("exec-status");
    let id = "ex";
    sandbox.write_config(&sandbox.config(id, &["sleep", "1000"]));
    sandbox.create_and_start(id);

    let ran = sandbox.runc(&["exec", id, "sh", "-c", "exit 3"]);
    assert_eq!(
        ran.code,
        Some(3),
        "expected `exec sh -c 'exit 3'` to exit 3, but it exited {:?} (stderr {:?})",
        ran.code,
        ran.stderr
    );
    let ran = sandbox.runc(&["exec", id, "hostname"]).ok();
    assert_eq!(
        ran.stdout, "box\n",
        "expected exec's hostname to be the container's, but it printed {:?}",
        ran.stdout
    );
    sandbox.runc(&["delete", "--force", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn exec_detached_joins_the_pid_namespace_and_the_cgroup() {
    if !harness::require_root("exec_detached_joins_the_pid_namespace_and_the_cgroup") {
        return;
    }
    let sandbox = Sandbox::new("exec-detached");
    let id = "exd";
    sandbox.write_config(&sandbox.config(id, &["sleep", "1000"]));
    let init = sandbox.create_and_start(id);

    let process = sandbox.dir.path().join("process.json");
    fs::write(
        &process,
        json!({
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sleep", "999"],
            "env": ["PATH=/bin"],
            "cwd": "/"
        })
        .to_string(),
    )
    .unwrap();
    let pid_file = sandbox.dir.path().join("exec.pid");
    let started = Instant::now();
    sandbox
        .runc(&[
            "exec",
            "--process",
            process.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            id,
        ])
        .ok();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "expected a detached exec to return at once, but it took {:?}",
        started.elapsed()
    );
    let pid = read_pid(&pid_file);
    sandbox.remember(pid);
    assert!(alive(pid), "expected the exec'd process {pid} to run");
    let namespace = |p: i32| fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(
        namespace(pid),
        namespace(init),
        "expected the exec'd process in the init's PID namespace"
    );
    let cgroups = |p: i32| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
    assert_eq!(
        cgroups(pid),
        cgroups(init),
        "expected the exec'd process {pid} in the init's cgroups, in every hierarchy"
    );
    let procs = sandbox.cgroup_procs(id);
    assert!(
        procs.contains(&pid) && procs.contains(&init),
        "expected the init {init} and the exec'd process {pid} in the container's cgroup, but it holds {procs:?}"
    );
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert_eq!(
        cmdline, "sleep\0999\0",
        "expected the PID file to name the exec'd process, but it runs {cmdline:?}"
    );

    sandbox.runc(&["delete", "--force", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn kill_all_signals_every_process_of_the_cgroup() {
    if !harness::require_root("kill_all_signals_every_process_of_the_cgroup") {
        return;
    }
    let sandbox = Sandbox::new("kill-all");
    let id = "many";
    // No PID namespace of its own: the init's death would not take the
    // other processes with it, so only a signal to each of them kills them.
    let mut config = sandbox.config(id, &["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    sandbox.write_config(&config);
    let init = sandbox.create_and_start(id);
    let procs = sandbox.wait_for_procs(id, 3);
    sandbox.runc(&["kill", "--all", id, "KILL"]).ok();
    for &pid in &procs {
        assert!(
            wait_for(Duration::from_secs(5), || !alive(pid)),
            "expected `kill --all` to kill {pid} (init {init}), but it is alive"
        );
    }
    sandbox.wait_stopped(id);
    sandbox.runc(&["delete", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn delete_force_kills_a_running_container() {
    if !harness::require_root("delete_force_kills_a_running_container") {
        return;
    }
    let sandbox = Sandbox::new("delete-force");
    let id = "doomed";
    sandbox.write_config(&sandbox.config(id, &["sleep", "1000"]));
    let init = sandbox.create_and_start(id);
    assert!(alive(init), "expected the init {init} to run");
    sandbox.runc(&["delete", "--force", id]).ok();
    assert!(
        !alive(init),
        "expected `delete --force` to have killed the init {init} when it returns"
    );
    sandbox.assert_clean();
}

#[test]
fn run_returns_the_exit_status_and_deletes() {
    if !harness::require_root("run_returns_the_exit_status_and_deletes") {
        return;
    }
    let sandbox = Sandbox::new("run");
    let id = "runner";
    sandbox.write_config(&sandbox.config(id, &["sh", "-c", "echo out; exit 7"]));
    let mut run = sandbox.command(&["run", "--bundle", sandbox.bundle.to_str().unwrap(), id]);
    run.current_dir(sandbox.dir.path());
    let ran = sandbox.run_command(run);
    assert_eq!(
        ran.code,
        Some(7),
        "expected `run` to exit with the container's 7, but it exited {:?} (stderr {:?})",
        ran.code,
        ran.stderr
    );
    assert_eq!(
        ran.stdout, "out\n",
        "expected the container's output on run's stdout"
    );
    sandbox.assert_clean();
}

/// Reads from `fd` (non-blocking) until `want` appears in what was read or
/// `limit` passes; returns everything read.
fn read_until(file: &mut fs::File, want: &str, limit: Duration) -> String {
    let mut seen = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline && !String::from_utf8_lossy(&seen).contains(want) {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break, // EIO once the slave side has closed
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn the_console_socket_receives_the_pty_master() {
    if !harness::require_root("the_console_socket_receives_the_pty_master") {
        return;
    }
    let sandbox = Sandbox::new("console");
    let id = "tty";
    let mut config = sandbox.config(id, &["sh"]);
    config["process"]["terminal"] = json!(true);
    sandbox.write_config(&config);
    let socket = sandbox.dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();

    let pid_file = sandbox.dir.path().join("tty.pid");
    let mut create = sandbox.command(&[
        "create",
        "--bundle",
        sandbox.bundle.to_str().unwrap(),
        "--console-socket",
        socket.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        id,
    ]);
    let err = sandbox.dir.path().join("create.err");
    create
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&err).unwrap());
    let mut child = create.spawn().unwrap();
    // create waits for the init, which sends the master during its setup:
    // accept while create runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "expected create to connect to the console socket within 10 s, but it did not (stderr {:?})",
                        fs::read_to_string(&err).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept on the console socket: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let (master, _name) = ch10_runtime::terminal::recv_fd(stream.as_fd())
        .unwrap_or_else(|e| panic!("expected the pty master on the console socket, but: {e:#}"));
    let status = harness::process::wait_until(&mut child, Instant::now() + Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "expected create with a console socket to succeed, but it ended {status:?}: {:?}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    sandbox.remember(read_pid(&pid_file));

    let mut master = fs::File::from(master);
    // SAFETY: fcntl(2) on a descriptor this test owns.
    unsafe {
        let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    sandbox.runc(&["start", id]).ok();
    master.write_all(b"echo $((6*7))\n").unwrap();
    let seen = read_until(&mut master, "42", Duration::from_secs(5));
    assert!(
        seen.lines().any(|l| l.trim() == "42"),
        "expected the shell on the pty to answer 42, but the master read {seen:?}"
    );
    master.write_all(b"tty\n").unwrap();
    let seen = read_until(&mut master, "/dev/pts/0", Duration::from_secs(5));
    assert!(
        seen.lines().any(|l| l.trim() == "/dev/pts/0"),
        "expected `tty` to print /dev/pts/0, but the master read {seen:?}"
    );

    sandbox.runc(&["delete", "--force", id]).ok();
    drop(master);
    sandbox.assert_clean();
}

#[test]
fn a_terminal_without_a_console_socket_fails_create() {
    if !harness::require_root("a_terminal_without_a_console_socket_fails_create") {
        return;
    }
    let sandbox = Sandbox::new("no-console");
    let id = "notty";
    let mut config = sandbox.config(id, &["sh"]);
    config["process"]["terminal"] = json!(true);
    sandbox.write_config(&config);
    let line = sandbox
        .runc(&["create", "--bundle", sandbox.bundle.to_str().unwrap(), id])
        .one_line_failure();
    assert!(
        line.contains("console socket"),
        "expected the error to name the missing console socket, but it said {line:?}"
    );
    sandbox.assert_clean();
}

#[test]
fn preserve_fds_passes_descriptor_3_to_the_program() {
    if !harness::require_root("preserve_fds_passes_descriptor_3_to_the_program") {
        return;
    }
    let sandbox = Sandbox::new("preserve-fds");
    let id = "fds";
    sandbox.write_config(&sandbox.config(
        id,
        &["sh", "-c", "cat <&3 > /shared/got; cat <&4 > /shared/got4"],
    ));
    let passed = sandbox.dir.path().join("passed");
    fs::write(&passed, "through fd 3\n").unwrap();
    let file = fs::File::open(&passed).unwrap();
    let also = fs::File::open(&passed).unwrap();
    let (fd, also_fd) = (file.as_raw_fd(), also.as_raw_fd());

    let pid_file = sandbox.dir.path().join("fds.pid");
    let mut create = sandbox.command(&[
        "create",
        "--bundle",
        sandbox.bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--preserve-fds",
        "1",
        id,
    ]);
    // SAFETY: between fork and exec, fcntl(2) and dup2(2) only:
    // async-signal-safe. Each file is first copied above 10, so that dup2
    // makes a new descriptor (without FD_CLOEXEC) even when the file's own
    // number is 3 or 4. Fd 3 is the file, fd 4 another open file that
    // --preserve-fds 1 must not pass.
    unsafe {
        create.pre_exec(move || {
            let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            let also_high = libc::fcntl(also_fd, libc::F_DUPFD_CLOEXEC, 10);
            if high < 0 || also_high < 0 || libc::dup2(high, 3) < 0 || libc::dup2(also_high, 4) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    sandbox.run_command(create).ok();
    sandbox.remember(read_pid(&pid_file));
    sandbox.runc(&["start", id]).ok();
    sandbox.wait_stopped(id);
    let got = fs::read_to_string(sandbox.shared.join("got")).unwrap_or_default();
    assert_eq!(
        got, "through fd 3\n",
        "expected the program to read the passed file on fd 3, but it read {got:?}"
    );
    let got4 = fs::read_to_string(sandbox.shared.join("got4")).unwrap_or_default();
    assert_eq!(
        got4, "",
        "expected fd 4 closed in the program (only one descriptor preserved), but it read {got4:?}"
    );
    sandbox.runc(&["delete", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn the_default_devices_are_usable_and_no_others() {
    if !harness::require_root("the_default_devices_are_usable_and_no_others") {
        return;
    }
    // The config names no linux.resources.devices: the container still gets
    // the devices every container has, and only those.
    let sandbox = Sandbox::new("devices");
    let id = "dev";
    sandbox.write_config(&sandbox.config(id, &["sleep", "1000"]));
    sandbox.create_and_start(id);

    let ran = sandbox.runc(&[
        "exec",
        id,
        "sh",
        "-c",
        "echo x > /dev/null && head -c 3 /dev/zero | wc -c && head -c 3 /dev/urandom | wc -c",
    ]);
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (Some(0), "3\n3\n"),
        "expected /dev/null, /dev/zero and /dev/urandom usable in the container, but exec exited {:?} with stdout {:?} and stderr {:?}",
        ran.code,
        ran.stdout,
        ran.stderr
    );
    // A disk's node can be made (mknod is allowed, as runc allows it) but
    // not opened: the devices cgroup refuses before any driver is asked.
    let ran = sandbox.runc(&[
        "exec",
        id,
        "sh",
        "-c",
        "mknod /tmp/disk b 8 0 && head -c 1 /tmp/disk",
    ]);
    assert!(
        ran.code != Some(0) && ran.stderr.contains("Operation not permitted"),
        "expected opening block device 8:0 to be refused with EPERM, but exec exited {:?} with stderr {:?}",
        ran.code,
        ran.stderr
    );
    sandbox.runc(&["delete", "--force", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn ps_and_list_report_json() {
    if !harness::require_root("ps_and_list_report_json") {
        return;
    }
    let sandbox = Sandbox::new("ps-list");
    let id = "listed";
    sandbox.write_config(&sandbox.config(id, &["sleep", "1000"]));
    let init = sandbox.create_and_start(id);

    let ran = sandbox.runc(&["ps", "--format", "json", id]).ok();
    let pids: Vec<i32> = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| {
        panic!(
            "expected `ps --format json` to print a JSON list of PIDs, but ({e}) it printed {:?}",
            ran.stdout
        )
    });
    assert_eq!(pids, [init], "expected `ps` to list the init {init} only");
    let ran = sandbox.runc(&["list", "--format", "json"]).ok();
    let list: Value = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| {
        panic!(
            "expected `list --format json` to print JSON, but ({e}) it printed {:?}",
            ran.stdout
        )
    });
    let entries = list.as_array().cloned().unwrap_or_default();
    assert!(
        entries.len() == 1 && entries[0]["id"] == id && entries[0]["status"] == "running",
        "expected `list` to show {id} running, and nothing else, but it printed {list}"
    );
    sandbox.runc(&["delete", "--force", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn a_console_socket_nobody_listens_on_fails_create_and_leaves_nothing() {
    if !harness::require_root("a_console_socket_nobody_listens_on_fails_create_and_leaves_nothing")
    {
        return;
    }
    // The failure comes after the state directory and the cgroup are made:
    // create must take them apart.
    let sandbox = Sandbox::new("dead-console");
    let id = "deadtty";
    let mut config = sandbox.config(id, &["sh"]);
    config["process"]["terminal"] = json!(true);
    sandbox.write_config(&config);
    let socket = sandbox.dir.path().join("nobody.sock");
    let line = sandbox
        .runc(&[
            "create",
            "--bundle",
            sandbox.bundle.to_str().unwrap(),
            "--console-socket",
            socket.to_str().unwrap(),
            id,
        ])
        .one_line_failure();
    assert!(
        line.contains("console socket"),
        "expected the error to name the console socket, but it said {line:?}"
    );
    sandbox.assert_clean();
}
