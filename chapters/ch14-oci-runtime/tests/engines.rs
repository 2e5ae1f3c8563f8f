//! The story of chapter 14, told by the engines themselves: podman (through
//! conmon), Docker (through containerd and its shim) and containerd alone
//! (`ctr`) run busybox with an OCI runtime of the test's choosing, and
//! everything a user sees works: output, exit status, signals, `exec`, a
//! terminal, a memory limit, `ps`, and clean-up, also after the monitor
//! itself was killed.
//!
//! The runtime is `MINIBOX_TEST_OCI_RUNTIME` when set (`/usr/sbin/runc`
//! proves the tests themselves), else this chapter's `minibox-runc`. Each
//! test starts its engine in a sandbox of its own (crates/harness,
//! `engines`), checks that the engine really called that runtime, and
//! stops the engine, checking that nothing was left.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::engines::{self, Containerd, Docker, Engine, Podman, Run};
use nix::errno::Errno;

/// The runtime the engines are given.
fn runtime() -> PathBuf {
    std::env::var_os("MINIBOX_TEST_OCI_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_minibox-runc").into())
}

/// Which engine a test runs.
#[derive(Clone, Copy)]
enum Kind {
    Podman,
    Docker,
    Containerd,
}

/// Starts engine `kind` with the runtime under test, or skips `test`
/// (without root, or without the engine installed).
fn start(kind: Kind, test: &str) -> Option<Box<dyn Engine>> {
    if !harness::require_root(test) {
        return None;
    }
    let (installed, package) = match kind {
        Kind::Podman => (engines::podman::installed(), "podman and conmon"),
        Kind::Docker => (engines::docker::installed(), "docker.io and containerd"),
        Kind::Containerd => (engines::containerd::installed(), "containerd"),
    };
    let reason = format!("needs {package} (cargo xtask test installs them)");
    if !harness::require(installed, test, &reason) {
        return None;
    }
    let runtime = runtime();
    let engine: Result<Box<dyn Engine>, String> = match kind {
        Kind::Podman => Podman::start(&runtime).map(|e| Box::new(e) as _),
        Kind::Docker => Docker::start(&runtime).map(|e| Box::new(e) as _),
        Kind::Containerd => Containerd::start(&runtime).map(|e| Box::new(e) as _),
    };
    Some(engine.unwrap_or_else(|e| panic!("{test}: starting the engine: {e}")))
}

/// One test per engine for each scenario below, named `SCENARIO::ENGINE`.
macro_rules! for_each_engine {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn podman() {
                super::scenario(super::Kind::Podman, stringify!($scenario), super::$scenario);
            }
            #[test]
            fn docker() {
                super::scenario(super::Kind::Docker, stringify!($scenario), super::$scenario);
            }
            #[test]
            fn containerd() {
                super::scenario(super::Kind::Containerd, stringify!($scenario), super::$scenario);
            }
        }
    )*};
}

for_each_engine!(
    echo,
    exit_status,
    killed,
    detached,
    terminal,
    memory,
    monitor_killed
);

/// Runs `body` with a fresh engine, then stops the engine and checks that it
/// left nothing behind.
fn scenario(kind: Kind, name: &str, body: fn(&dyn Engine)) {
    let Some(engine) = start(kind, &format!("{name}::{}", engine_name(kind))) else {
        return;
    };
    body(engine.as_ref());
    engine.shutdown().unwrap();
}

fn engine_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Podman => "podman",
        Kind::Docker => "docker",
        Kind::Containerd => "containerd",
    }
}

/// The engine's output of `command`, or a failure naming the engine.
fn ok(engine: &dyn Engine, command: &mut Command, what: &str) -> String {
    engines::output(command, what).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nruntime calls:\n{}",
            engine.name(),
            engine.runtime().text()
        )
    })
}

/// The engine created container `name` with the runtime under test (not
/// with a default runtime of its own).
fn assert_our_runtime_created(engine: &dyn Engine, id: &str) {
    assert!(
        !engine.runtime().calls_of("create", id).is_empty(),
        "{}: the runtime under test never created {id}; it was called so:\n{}",
        engine.name(),
        engine.runtime().text()
    );
}

/// `run --rm busybox echo hi` prints `hi`.
fn echo(engine: &dyn Engine) {
    let run = Run {
        name: "echo",
        remove: true,
        args: &["echo", "hi"],
        ..Run::default()
    };
    let out = ok(engine, &mut engine.run(&run), "run echo hi");
    assert_eq!(out, "hi\n", "{}", engine.name());
    // The one container so far was created by the runtime under test.
    let created = engine
        .runtime()
        .calls()
        .iter()
        .any(|c| c.contains(&"create".to_string()));
    assert!(created, "{}: {}", engine.name(), engine.runtime().text());
}

/// The container's exit status is the engine's: `exit 3` gives 3.
fn exit_status(engine: &dyn Engine) {
    let run = Run {
        name: "three",
        remove: true,
        args: &["sh", "-c", "exit 3"],
        ..Run::default()
    };
    let out = engines::finish(&mut engine.run(&run), "run exit 3").unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        engines::describe(engine.name(), &out)
    );
}

/// A container SIGKILLed from the host, by its PID, ends with 137 (128 +
/// 9); so does one killed through the engine.
fn killed(engine: &dyn Engine) {
    for (name, through_engine) in [("by-pid", false), ("by-engine", true)] {
        let run = Run {
            name,
            remove: true,
            args: &["sleep", "1000"],
            ..Run::default()
        };
        let mut attached = engine.run(&run);
        let child = attached
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Running, not only created (ctr lists a created task with its PID).
        let pid = wait_for(
            || {
                let running = engine.ps().ok()?.iter().any(|n| n == name);
                engine.pid(name).ok().filter(|pid| running && *pid > 0)
            },
            "the container to run",
        );
        assert_our_runtime_created(engine, &engine.id(name).unwrap_or(name.into()));
        if through_engine {
            engine.kill(name).unwrap();
        } else {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
                .unwrap();
        }
        let out = harness::process::wait_with_deadline(child, "run sleep", Duration::from_secs(30));
        assert_eq!(
            out.status.code(),
            Some(137),
            "{name}: {}",
            engines::describe(engine.name(), &out)
        );
    }
}

/// `run -d`, then `ps` lists it, `exec` runs in it, `stop` and `rm` end it;
/// then no process, cgroup or mount of it is left.
fn detached(engine: &dyn Engine) {
    let mounts_before = engine.sandbox().mount_points();
    let run = Run {
        name: "sleeper",
        detach: true,
        args: &["sleep", "1000"],
        ..Run::default()
    };
    ok(engine, &mut engine.run(&run), "run -d");
    let id = engine.id("sleeper").unwrap();
    assert_our_runtime_created(engine, &id);
    let pid = engine.pid("sleeper").unwrap();
    let started = start_time(pid).expect("the container runs");
    assert!(
        engine.ps().unwrap().contains(&"sleeper".to_string()),
        "{}: ps does not list it: {:?}",
        engine.name(),
        engine.ps()
    );
    let out = ok(
        engine,
        // The pause after the output: ctr (1.6) cancels the copy of an exec's
        // output as soon as the process has exited, and loses what was not
        // copied yet; podman and docker do not need it.
        &mut engine.exec(
            "sleeper",
            &["sh", "-c", "echo in $(hostname) $$; sleep 0.5"],
        ),
        "exec",
    );
    assert!(
        out.starts_with("in "),
        "{}: exec printed {out:?}",
        engine.name()
    );
    assert!(
        !engine.runtime().calls_of("exec", &id).is_empty(),
        "{}: exec did not go through the runtime:\n{}",
        engine.name(),
        engine.runtime().text()
    );
    engine.stop("sleeper").unwrap();
    assert!(!engine.ps().unwrap().contains(&"sleeper".to_string()));
    engine.remove("sleeper").unwrap();
    assert_gone(engine, pid, started);
    let mounts_after = wait_for(
        || {
            let now = engine.sandbox().mount_points();
            (now == mounts_before).then_some(now)
        },
        "the container's mounts to go",
    );
    assert_eq!(mounts_after, mounts_before);
}

/// `run -it busybox sh` on a terminal the test drives: what is typed
/// reaches the shell, and what it prints comes back.
fn terminal(engine: &dyn Engine) {
    let run = Run {
        name: "term",
        remove: true,
        tty: true,
        args: &["sh"],
        ..Run::default()
    };
    let (master, mut child) = on_a_terminal(engine.run(&run));
    let mut screen = Screen::new(master);
    screen.type_keys(b"echo $((6*7))\n");
    screen.expect("42", engine);
    screen.type_keys(b"exit\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = harness::process::wait_until(&mut child, deadline);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", engine.name());
}

/// `--memory 32m`: the container's memory cgroup, read from the host, has
/// the limit, and a shell that holds 64 MB in a variable is OOM-killed: 137.
fn memory(engine: &dyn Engine) {
    let limit = 32 * 1024 * 1024;
    let run = Run {
        name: "limited",
        detach: true,
        memory: Some(limit),
        args: &["sleep", "1000"],
        ..Run::default()
    };
    ok(engine, &mut engine.run(&run), "run -d --memory");
    let pid = engine.pid("limited").unwrap();
    assert_eq!(memory_limit(pid), limit.to_string(), "{}", engine.name());
    engine.stop("limited").unwrap();
    engine.remove("limited").unwrap();
    let run = Run {
        name: "hungry",
        remove: true,
        memory: Some(limit),
        args: &[
            "sh",
            "-c",
            "x=$(head -c 67108864 /dev/zero | tr '\\0' x); echo survived",
        ],
        ..Run::default()
    };
    let out = engines::finish(&mut engine.run(&run), "run --memory hungry").unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        engines::describe(engine.name(), &out)
    );
}

/// The memory limit of process `pid`'s cgroup, from the host's cgroup
/// filesystem: v1's `memory.limit_in_bytes`, or v2's `memory.max`.
fn memory_limit(pid: i32) -> String {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let hierarchies = harness::cgroups::hierarchies();
    let (mount, path, file) = own
        .lines()
        .find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            if controllers.split(',').any(|c| c == "memory") {
                let h = hierarchies
                    .iter()
                    .find(|h| h.controllers.iter().any(|c| c == "memory"))?;
                Some((h.mount.clone(), path.to_string(), "memory.limit_in_bytes"))
            } else if controllers.is_empty() && harness::cgroups::pure_v2() {
                Some(("/sys/fs/cgroup".into(), path.to_string(), "memory.max"))
            } else {
                None
            }
        })
        .unwrap_or_else(|| panic!("no memory cgroup in {own}"));
    let file = mount.join(path.trim_start_matches('/')).join(file);
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
        .trim()
        .to_string()
}

/// The container's monitor (conmon, the shim) is SIGKILLed; then the
/// runtime's own `delete --force`, called as the engine calls it (same
/// global flags: the same state root), ends the container and removes its
/// cgroup.
fn monitor_killed(engine: &dyn Engine) {
    let run = Run {
        name: "orphan",
        detach: true,
        args: &["sleep", "1000"],
        ..Run::default()
    };
    ok(engine, &mut engine.run(&run), "run -d");
    let id = engine.id("orphan").unwrap();
    let pid = engine.pid("orphan").unwrap();
    let started = start_time(pid).expect("the container runs");
    let monitor = engine.monitor_pid("orphan").unwrap();
    let flags = engine
        .runtime()
        .global_flags(&id)
        .unwrap_or_else(|| panic!("no create of {id}:\n{}", engine.runtime().text()));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    wait_for(
        || start_time(monitor).is_none().then_some(()),
        "the monitor to die",
    );
    let mut delete = engine.sandbox().command(engine.runtime().path());
    delete.args(&flags).args(["delete", "--force", &id]);
    let out = engines::finish(&mut delete, "runtime delete --force").unwrap();
    // containerd notices its shim died and has the shim binary clean up with
    // the same runtime's `delete --force`; ours may come second, and find
    // nothing to delete.
    let us = std::fs::read_to_string("/proc/self/comm").unwrap();
    let engine_deleted = engine
        .runtime()
        .calls_of("delete", &id)
        .iter()
        .any(|call| call[0] != us.trim());
    assert!(
        out.status.success() || engine_deleted,
        "{}",
        engines::describe(engine.name(), &out)
    );
    assert_gone(engine, pid, started);
    engine.remove_force("orphan");
}

/// The container's first process (`pid`, started at `started`) is gone, and
/// no cgroup is left below the engine's cgroup parent.
fn assert_gone(engine: &dyn Engine, pid: i32, started: u64) {
    wait_for(
        || (start_time(pid) != Some(started)).then_some(()),
        "the container's process to end",
    );
    let left = wait_for(
        || {
            let left = engine.sandbox().cgroups_left();
            left.is_empty().then_some(left)
        },
        "the container's cgroups to go",
    );
    assert!(left.is_empty());
}

/// The start time of process `pid` (field 22 of /proc/PID/stat), to tell it
/// from a later process with the same PID; `None` once it is gone (a zombie
/// counts as gone).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Polls `check` until it gives something (20 s at most).
fn wait_for<T>(mut check: impl FnMut() -> Option<T>, what: &str) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `command` on a new pty, in a session of its own whose controlling
/// terminal is the pty; returns the pty's master.
fn on_a_terminal(mut command: Command) -> (OwnedFd, Child) {
    let pty = nix::pty::openpty(None, None).unwrap();
    nix::fcntl::fcntl(
        &pty.master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let slave = || Stdio::from(pty.slave.try_clone().unwrap());
    command.stdin(slave()).stdout(slave()).stderr(slave());
    let controlling = || -> std::io::Result<()> {
        nix::unistd::setsid()?;
        // SAFETY: TIOCSCTTY takes an int by value; stdin is the pty's
        // slave, and the new session has no terminal yet.
        Errno::result(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })?;
        Ok(())
    };
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // system calls (setsid(2), ioctl(2)).
    unsafe { command.pre_exec(controlling) };
    let child = command.spawn().unwrap();
    drop(command);
    (pty.master, child)
}

/// What the terminal has shown.
struct Screen {
    master: OwnedFd,
    shown: Vec<u8>,
}

impl Screen {
    fn new(master: OwnedFd) -> Screen {
        Screen {
            master,
            shown: Vec::new(),
        }
    }

    fn type_keys(&self, keys: &[u8]) {
        let mut file = std::fs::File::from(self.master.try_clone().unwrap());
        file.write_all(keys).unwrap();
    }

    /// Reads until a line of the screen is `wanted` (30 s at most): the
    /// typed command echoes as `echo $((6*7))`, its output is a line of
    /// its own.
    fn expect(&mut self, wanted: &str, engine: &dyn Engine) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = String::from_utf8_lossy(&self.shown).into_owned();
            if text
                .lines()
                .any(|line| line.trim_end_matches('\r') == wanted)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: waited 30 s for {wanted:?}; the terminal shows {text:?}",
                engine.name()
            );
            let mut buffer = [0u8; 4096];
            match nix::unistd::read(self.master.as_fd(), &mut buffer) {
                Ok(n) if n > 0 => self.shown.extend_from_slice(&buffer[..n]),
                Ok(_) | Err(Errno::EAGAIN | Errno::EIO) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(errno) => panic!("reading the terminal: {errno}"),
            }
        }
    }
}
