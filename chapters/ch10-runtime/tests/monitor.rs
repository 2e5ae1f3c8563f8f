//! The monitor, for real: a detached monitor over a real program, its place
//! in the process tree (not our child, a session of its own, no terminal,
//! the container's parent and a subreaper), the log and the exit record it
//! writes, a failed start reaching the caller, SIGTERM and SIGKILL of the
//! monitor, and clients attached through the socket pair, the attach socket
//! and a terminal.
//!
//! None of this needs root: fork, setsid, prctl and pipes are everyone's.
//!
//! minibox is single-threaded when it starts a container, and the monitor
//! forks, which is only safe then; the test harness runs every test on a
//! thread of its own. So each test forks a *caller* first ([`as_caller`]):
//! a single-threaded child of the test that plays `minibox run -d` and
//! reports back what it saw. The tests take turns ([`serial`]) so that no
//! other test thread is busy while one forks.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use ch01_fork_exec::exit::StartError;
use ch01_fork_exec::process::{self, Command, Forked};
use ch02_pid_namespace::sync;
use ch10_runtime::log::{self, ReadOptions, Stream};
use ch10_runtime::monitor::{
    self, ContainerStdio, Ended, Event, Holder, Options, Started, Terminal,
};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

static SERIAL: Mutex<()> = Mutex::new(());

/// One monitor test at a time (see the module's docs).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `caller` in a forked, single-threaded child of the test, as
/// minibox is when it starts a container, and returns what it returned.
fn as_caller(caller: impl FnOnce() -> Value) -> Value {
    let (read, write) = nix::unistd::pipe().unwrap();
    // SAFETY: the other test threads are idle (waiting on SERIAL or for
    // their test's end), so the child does not inherit a lock held in the
    // middle of an operation; glibc's malloc is fork-safe. The child never
    // returns into the test harness: it _exits.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(read);
            let report = catch_unwind(AssertUnwindSafe(caller))
                .unwrap_or_else(|_| json!({"panic": "the caller panicked"}));
            let _ = fs::File::from(write).write_all(report.to_string().as_bytes());
            process::exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write);
            let mut text = String::new();
            fs::File::from(read).read_to_string(&mut text).unwrap();
            process::wait_for(child).unwrap();
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("the caller said {text:?}"))
        }
    }
}

/// What the caller reports about a start.
fn report(result: anyhow::Result<Started>, began: Instant) -> Value {
    match result {
        Ok(started) => json!({
            "monitor": started.monitor.pid,
            "monitor_start": started.monitor.start_time,
            "container": started.container.as_raw(),
            "container_start": Holder::of(started.container.as_raw()).unwrap().map(|h| h.start_time),
            "elapsed_ms": began.elapsed().as_millis() as u64,
        }),
        Err(error) => json!({
            "error": format!("{error:#}"),
            "status": error.downcast_ref::<StartError>().map(StartError::status),
        }),
    }
}

/// The start closure the chapter would give, without namespaces: fork, put
/// the stdio in place, exec `words`; chapter 2's sync pipe says whether the
/// exec worked.
fn program(words: &[&str]) -> impl FnOnce(ContainerStdio) -> anyhow::Result<Pid> + use<> {
    let words: Vec<OsString> = words.iter().map(OsString::from).collect();
    move |stdio| {
        let command = Command::new(&words)?;
        let (mut parent, child_end) = sync::channel()?;
        match process::fork()? {
            Forked::Child => child_end.start(|| stdio.install(), |()| process::exec(&command)),
            Forked::Parent { child } => {
                drop(child_end);
                parent.release()?;
                if let Err(error) = parent.wait_for_exec(&command.program_name()) {
                    process::wait_for(child)?;
                    return Err(error);
                }
                Ok(child)
            }
        }
    }
}

/// An `on_exit` that writes "STATUS FINISHED_AT" to `file`, and a `cleanup`
/// that appends a line to `file`: what the chapter records, made visible.
fn recorders(
    dir: &Path,
) -> (
    impl FnOnce(&Ended) -> anyhow::Result<()> + use<>,
    impl FnOnce() -> anyhow::Result<()> + use<>,
) {
    let (exit_file, cleanup_file) = (dir.join("exit"), dir.join("cleanups"));
    let on_exit = move |ended: &Ended| {
        let record = format!("{} {}", ended.status(), ended.finished_at_rfc3339());
        fs::write(&exit_file, record)?;
        Ok(())
    };
    let cleanup = move || {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cleanup_file)?;
        file.write_all(b"cleanup\n")?;
        Ok(())
    };
    (on_exit, cleanup)
}

/// Fields 3 and on of /proc/PID/stat (state, ppid, pgrp, session, tty_nr...).
fn stat(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().map(String::from).collect())
}

fn ppid(pid: i32) -> i32 {
    stat(pid).map_or(0, |fields| fields[1].parse().unwrap())
}

fn session(pid: i32) -> i32 {
    stat(pid).map_or(0, |fields| fields[3].parse().unwrap())
}

/// Waits up to `limit` for `done`, or fails naming `what`.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Processes this test started, killed by PID if still the same process
/// when the test ends (also when it fails half-way).
struct Reap(Vec<Holder>);

impl Drop for Reap {
    fn drop(&mut self) {
        for holder in &self.0 {
            if holder.is_alive() {
                let _ = kill(Pid::from_raw(holder.pid), Signal::SIGKILL);
            }
        }
    }
}

fn holders(started: &Value) -> Reap {
    let holder = |pid: &str, start: &str| {
        Some(Holder {
            pid: started[pid].as_i64()? as i32,
            start_time: started[start].as_u64()?,
        })
    };
    Reap(
        [
            holder("container", "container_start"),
            holder("monitor", "monitor_start"),
        ]
        .into_iter()
        .flatten()
        .collect(),
    )
}

fn monitor_of(started: &Value) -> Holder {
    Holder {
        pid: started["monitor"].as_i64().unwrap() as i32,
        start_time: started["monitor_start"].as_u64().unwrap(),
    }
}

fn show_log(path: &Path) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    log::show(path, &ReadOptions::default(), &mut out, &mut err).unwrap();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("container-json.log");
    (dir, log)
}

#[test]
fn run_d_returns_at_once_and_the_detached_monitor_records_the_end() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let (on_exit, cleanup) = recorders(dir.path());
    let began_at = time::OffsetDateTime::now_utc();
    let started = as_caller(|| {
        let began = Instant::now();
        let start = program(&["sh", "-c", "sleep 2; echo out; echo err >&2; exit 3"]);
        let result = monitor::spawn_detached(Options::new(&log_path), start, on_exit, cleanup);
        let mut report = report(result, began);
        // While the caller still lives: the monitor is not its child either
        // (with a single fork it would be, until the caller exits).
        let monitor = report["monitor"].as_i64().unwrap_or(0) as i32;
        report["monitor_parent_is_caller"] = json!(ppid(monitor) == std::process::id() as i32);
        report
    });
    let _reap = holders(&started);
    let (monitor, container) = (
        monitor_of(&started),
        started["container"].as_i64().unwrap() as i32,
    );

    assert_eq!(started["monitor_parent_is_caller"], false, "{started}");
    // The caller was back while the program still slept.
    assert!(started["elapsed_ms"].as_u64().unwrap() < 1800, "{started}");
    assert!(
        started["container_start"].is_u64(),
        "the container ran: {started}"
    );
    assert!(monitor.is_alive());

    // The monitor: not a child (nor grandchild...) of ours; its own session,
    // which it does not lead; no controlling terminal; its name.
    let me = std::process::id() as i32;
    let mut ancestor = ppid(monitor.pid);
    while ancestor > 1 {
        assert_ne!(ancestor, me, "the monitor descends from the test");
        ancestor = ppid(ancestor);
    }
    assert_ne!(session(monitor.pid), session(me));
    assert_ne!(
        session(monitor.pid),
        monitor.pid,
        "a session leader could get a terminal"
    );
    assert_eq!(
        stat(monitor.pid).unwrap()[4],
        "0",
        "tty_nr: no controlling terminal"
    );
    let comm = fs::read_to_string(format!("/proc/{}/comm", monitor.pid)).unwrap();
    assert_eq!(comm.trim_end(), "minibox-monitor");
    // The container's parent is the monitor.
    assert_eq!(ppid(container), monitor.pid);

    // The end: recorded once the program exits, cleanup once, then the
    // monitor is gone.
    let exit_file = dir.path().join("exit");
    wait_until("the exit record", Duration::from_secs(10), || {
        exit_file.exists()
    });
    wait_until("the monitor's exit", Duration::from_secs(5), || {
        !monitor.is_alive()
    });
    let record = fs::read_to_string(&exit_file).unwrap();
    let (status, finished_at) = record.split_once(' ').unwrap();
    assert_eq!(status, "3");
    let finished_at = log::parse_time(finished_at).unwrap();
    assert!(finished_at > began_at + Duration::from_secs(2), "{record}");
    assert_eq!(
        fs::read_to_string(dir.path().join("cleanups")).unwrap(),
        "cleanup\n"
    );

    // The log: both lines, with their streams and times.
    assert_eq!(show_log(&log_path), ("out\n".into(), "err\n".into()));
    let text = fs::read_to_string(&log_path).unwrap();
    for line in text.lines() {
        let record = log::decode(line.as_bytes()).unwrap();
        assert!(
            began_at < record.time && record.time <= finished_at,
            "{line}"
        );
    }
    assert!(
        text.contains(r#""log":"out\n","stream":"stdout""#),
        "{text}"
    );
    assert!(
        text.contains(r#""log":"err\n","stream":"stderr""#),
        "{text}"
    );
}

#[test]
fn orphans_of_the_container_become_the_monitors_children_and_are_reaped() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let (on_exit, cleanup) = recorders(dir.path());
    let orphan_file = dir.path().join("orphan");
    // The subshell starts a sleep and exits at once: the sleep is orphaned
    // while the container still runs.
    let script = format!("(sleep 30 & echo $! > {}); sleep 3", orphan_file.display());
    let started = as_caller(|| {
        let start = program(&["sh", "-c", &script]);
        let result = monitor::spawn_detached(Options::new(&log_path), start, on_exit, cleanup);
        report(result, Instant::now())
    });
    let mut reap = holders(&started);
    let monitor = monitor_of(&started);
    wait_until("the orphan's PID", Duration::from_secs(5), || {
        fs::read_to_string(&orphan_file).is_ok_and(|pid| pid.ends_with('\n'))
    });
    let orphan: i32 = fs::read_to_string(&orphan_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    reap.0.extend(Holder::of(orphan).unwrap());
    // Without the subreaper, the host's init (or a subreaper above us) would
    // have it.
    wait_until("the orphan's new parent", Duration::from_secs(5), || {
        ppid(orphan) == monitor.pid
    });
    kill(Pid::from_raw(orphan), Signal::SIGKILL).unwrap();
    wait_until(
        "the monitor to reap the orphan",
        Duration::from_secs(5),
        || stat(orphan).is_none_or(|fields| fields[1] != monitor.pid.to_string()),
    );
    assert!(
        monitor.is_alive(),
        "the monitor still waits for the container"
    );
    wait_until("the exit record", Duration::from_secs(10), || {
        dir.path().join("exit").exists()
    });
    assert!(
        fs::read_to_string(dir.path().join("exit"))
            .unwrap()
            .starts_with("0 ")
    );
}

#[test]
fn a_failed_start_reaches_the_caller_as_an_error_and_leaves_no_monitor() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let socket = dir.path().join("attach.sock");
    let cases: [(&str, &[&str], &str, Option<u8>); 3] = [
        (
            "not found",
            &["/nonexistent/minibox-test"],
            "exec: \"/nonexistent/minibox-test\": no such file or directory",
            Some(127),
        ),
        (
            "not executable",
            &["/"],
            "exec: \"/\": permission denied",
            Some(126),
        ),
        ("no command", &[], "no command given", None),
    ];
    for (case, words, message, status) in cases {
        let (on_exit, cleanup) = recorders(dir.path());
        let pid_file = dir.path().join("monitor-pid");
        let start = program(words);
        let pid_file_in_monitor = pid_file.clone();
        let failed = as_caller(|| {
            let start = move |stdio| {
                fs::write(&pid_file_in_monitor, std::process::id().to_string())?;
                start(stdio)
            };
            let options = Options {
                attach_socket: Some(socket.clone()),
                ..Options::new(&log_path)
            };
            let result = monitor::spawn_detached(options, start, on_exit, cleanup);
            report(result, Instant::now())
        });
        let _reap = holders(&failed);
        assert_eq!(failed["error"], message, "{case}: {failed}");
        assert_eq!(failed["status"].as_u64(), status.map(u64::from), "{case}");
        let monitor: i32 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        wait_until("the monitor's exit", Duration::from_secs(5), || {
            Holder::of(monitor).unwrap().is_none()
        });
        assert!(
            !dir.path().join("exit").exists(),
            "{case}: no end to record"
        );
        assert!(
            !dir.path().join("cleanups").exists(),
            "{case}: the caller cleans up"
        );
        assert!(!socket.exists(), "{case}: the attach socket is removed");
    }
    // A start closure's own error comes back as it was said.
    let setup = as_caller(|| {
        let (on_exit, cleanup) = recorders(dir.path());
        let start = |_: ContainerStdio| -> anyhow::Result<Pid> {
            Err(anyhow!(
                "container setup failed: mount /proc: no such device"
            ))
        };
        report(
            monitor::spawn_detached(Options::new(&log_path), start, on_exit, cleanup),
            Instant::now(),
        )
    });
    assert_eq!(
        setup["error"],
        "container setup failed: mount /proc: no such device"
    );
}

#[test]
fn the_monitor_lets_go_of_what_minibox_had_open_but_what_it_is_told_to_keep() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let seen = as_caller(|| {
        let (on_exit, cleanup) = recorders(dir.path());
        // A pipe minibox happens to have open (a lock file would do too),
        // and one the start closure uses in the monitor.
        let (other_read, other_write) = nix::unistd::pipe().unwrap();
        let (kept_read, kept_write) = nix::unistd::pipe().unwrap();
        let options = Options {
            keep_fds: vec![kept_write.as_raw_fd()],
            ..Options::new(&log_path)
        };
        let container = program(&["sleep", "2"]);
        let start = move |stdio| {
            fs::File::from(kept_write).write_all(b"kept\n")?;
            container(stdio)
        };
        let result = monitor::spawn_detached(options, start, on_exit, cleanup);
        let report = report(result, Instant::now());
        drop(other_write);
        // End-of-file at once: nobody else holds the write end, although
        // the monitor (a copy of this process) runs on.
        let mut other = [PollFd::new(other_read.as_fd(), PollFlags::POLLIN)];
        let hung_up = poll(&mut other, PollTimeout::from(500u16)).unwrap() == 1
            && nix::unistd::read(&other_read, &mut [0u8; 8]).unwrap() == 0;
        let mut kept = String::new();
        fs::File::from(kept_read).read_to_string(&mut kept).unwrap();
        json!({"started": report, "hung_up": hung_up, "kept": kept})
    });
    let _reap = holders(&seen["started"]);
    assert!(monitor_of(&seen["started"]).is_alive(), "{seen}");
    assert_eq!(seen["hung_up"], true, "{seen}");
    assert_eq!(seen["kept"], "kept\n");
}

#[test]
fn sigkill_of_the_monitor_leaves_the_container_running_as_an_orphan() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let (on_exit, cleanup) = recorders(dir.path());
    let started = as_caller(|| {
        let start = program(&["sleep", "30"]);
        let result = monitor::spawn_detached(Options::new(&log_path), start, on_exit, cleanup);
        report(result, Instant::now())
    });
    let _reap = holders(&started);
    let monitor = monitor_of(&started);
    let container = Holder {
        pid: started["container"].as_i64().unwrap() as i32,
        start_time: started["container_start"].as_u64().unwrap(),
    };
    assert_eq!(ppid(container.pid), monitor.pid);

    kill(Pid::from_raw(monitor.pid), Signal::SIGKILL).unwrap();
    wait_until("the monitor's death", Duration::from_secs(5), || {
        !monitor.is_alive()
    });
    // What `ps` checks: the monitor is dead, the container is not.
    assert!(container.is_alive(), "the container survives its monitor");
    wait_until("the container's new parent", Duration::from_secs(5), || {
        ppid(container.pid) != monitor.pid
    });
    assert!(!dir.path().join("exit").exists(), "nobody recorded an end");

    kill(Pid::from_raw(container.pid), Signal::SIGKILL).unwrap();
    wait_until("the container's end", Duration::from_secs(5), || {
        !container.is_alive()
    });
}

#[test]
fn sigterm_to_the_monitor_stops_the_container_and_the_end_is_recorded() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let (on_exit, cleanup) = recorders(dir.path());
    let started = as_caller(|| {
        let start = program(&["sleep", "30"]);
        let result = monitor::spawn_detached(Options::new(&log_path), start, on_exit, cleanup);
        report(result, Instant::now())
    });
    let _reap = holders(&started);
    let monitor = monitor_of(&started);
    kill(Pid::from_raw(monitor.pid), Signal::SIGTERM).unwrap();
    wait_until("the exit record", Duration::from_secs(5), || {
        dir.path().join("exit").exists()
    });
    let record = fs::read_to_string(dir.path().join("exit")).unwrap();
    assert!(record.starts_with("143 "), "SIGTERM is 128 + 15: {record}");
    wait_until("the monitor's exit", Duration::from_secs(5), || {
        !monitor.is_alive()
    });
    assert_eq!(
        fs::read_to_string(dir.path().join("cleanups")).unwrap(),
        "cleanup\n"
    );
}

#[test]
fn a_foreground_run_is_a_client_attached_from_the_start() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let attached = as_caller(|| {
        let (on_exit, cleanup) = recorders(dir.path());
        let start = program(&["sh", "-c", "echo out; echo err >&2; printf tail; exit 5"]);
        let (_, session) =
            monitor::spawn_attached(Options::new(&log_path), start, on_exit, cleanup).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ended = session.pump(None, &mut out, &mut err).unwrap();
        json!({
            "status": ended.map(|e| e.status()),
            "out": String::from_utf8_lossy(&out),
            "err": String::from_utf8_lossy(&err),
        })
    });
    assert_eq!(
        attached,
        json!({"status": 5, "out": "out\ntail", "err": "err\n"})
    );
    // The same output is in the log, so `logs` works for foreground runs;
    // the unfinished last line is there as it was written.
    assert_eq!(show_log(&log_path), ("out\ntail".into(), "err\n".into()));
    assert!(
        fs::read_to_string(dir.path().join("exit"))
            .unwrap()
            .starts_with("5 ")
    );

    // -i: the client's stdin goes to the container, and its end too.
    let interactive = as_caller(|| {
        let (on_exit, cleanup) = recorders(dir.path());
        let options = Options {
            interactive: true,
            ..Options::new(dir.path().join("cat.log"))
        };
        let (_, session) =
            monitor::spawn_attached(options, program(&["cat"]), on_exit, cleanup).unwrap();
        let (read, write) = nix::unistd::pipe().unwrap();
        fs::File::from(write).write_all(b"hello\nworld\n").unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ended = session
            .pump(Some(read.as_fd()), &mut out, &mut err)
            .unwrap();
        json!({"status": ended.map(|e| e.status()), "out": String::from_utf8_lossy(&out)})
    });
    assert_eq!(interactive, json!({"status": 0, "out": "hello\nworld\n"}));

    // Without -i, stdin is /dev/null: cat reads end-of-file at once.
    let without_stdin = as_caller(|| {
        let (on_exit, cleanup) = recorders(dir.path());
        let options = Options::new(dir.path().join("null.log"));
        let (_, session) =
            monitor::spawn_attached(options, program(&["cat"]), on_exit, cleanup).unwrap();
        let ended = session
            .pump(None, &mut Vec::new(), &mut Vec::new())
            .unwrap();
        json!({"status": ended.map(|e| e.status())})
    });
    assert_eq!(without_stdin, json!({"status": 0}));
}

#[test]
fn attach_connects_to_a_running_containers_monitor() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let socket = dir.path().join("attach.sock");
    let options = Options {
        interactive: true,
        attach_socket: Some(socket.clone()),
        ..Options::new(&log_path)
    };
    let started = as_caller(|| {
        let (on_exit, cleanup) = recorders(dir.path());
        let result = monitor::spawn_detached(options, program(&["cat"]), on_exit, cleanup);
        report(result, Instant::now())
    });
    let _reap = holders(&started);
    // Detached with -i, cat waits on a stdin that stays open.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        monitor_of(&started).is_alive(),
        "cat did not read end-of-file"
    );

    let mut session = monitor::Session::connect(&socket).unwrap();
    session.send_stdin(b"ping\n").unwrap();
    assert_eq!(
        session.next_event().unwrap(),
        Some(Event::Output(Stream::Stdout, b"ping\n".to_vec()))
    );
    session.close_stdin().unwrap();
    match session.next_event().unwrap() {
        Some(Event::Exited(ended)) => assert_eq!(ended.status(), 0),
        other => panic!("expected the end, got {other:?}"),
    }
    assert_eq!(
        session.next_event().unwrap(),
        None,
        "then the monitor hangs up"
    );
    assert!(!socket.exists(), "the socket is removed");
    assert_eq!(show_log(&log_path).0, "ping\n");
}

#[test]
fn with_a_terminal_the_container_sees_a_tty_of_the_clients_size() {
    let _turn = serial();
    let (dir, log_path) = temp();
    let attached = as_caller(|| {
        let pty = nix::pty::openpty(None, None).unwrap();
        let options = Options {
            terminal: Some(Terminal {
                master: pty.master,
                slave: pty.slave,
            }),
            ..Options::new(&log_path)
        };
        let (on_exit, cleanup) = recorders(dir.path());
        let script = "test -t 0 && test -t 1 && echo tty; sleep 0.5; stty size";
        let (_, mut session) =
            monitor::spawn_attached(options, program(&["sh", "-c", script]), on_exit, cleanup)
                .unwrap();
        session.resize(40, 100).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ended = session.pump(None, &mut out, &mut err).unwrap();
        json!({
            "status": ended.map(|e| e.status()),
            "out": String::from_utf8_lossy(&out),
            "err": String::from_utf8_lossy(&err),
        })
    });
    // A terminal turns \n into \r\n, and has one stream.
    assert_eq!(
        attached,
        json!({"status": 0, "out": "tty\r\n40 100\r\n", "err": ""})
    );
    assert_eq!(
        show_log(&log_path),
        ("tty\r\n40 100\r\n".into(), String::new())
    );
}
