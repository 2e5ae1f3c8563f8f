//! The init, as PID 1 of a PID namespace made for each test, and the sealed
//! copy it runs from.
//!
//! The test helper (`src/bin/ttyinit-helper.rs`) is the program: `pidns`
//! makes the namespace and waits for its PID 1 (exiting with its status),
//! `init` is the init, `exec` runs a command as PID 1 without one (what
//! happens without `--init`), `sealed` re-executes the helper from a sealed
//! memfd copy. The tests look at the processes from the host, through
//! `/proc`, and signal them by PID.
//!
//! Most tests need root (a PID namespace); the subreaper test does not.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ch10_runtime_draft::init::SEALS;
use harness::process::{children, comm};
use nix::fcntl::{FcntlArg, SealFlag};

const HELPER: &str = env!("CARGO_BIN_EXE_ttyinit-helper");
const PATIENCE: Duration = Duration::from_secs(20);

/// A helper running in the background. Dropped while it runs (a failed
/// assertion), its first child (the namespace's PID 1) and then the helper
/// are killed, by PID.
struct Running(Option<Child>);

impl Running {
    fn start(args: &[&str]) -> Running {
        Running::start_program(HELPER, args)
    }

    fn start_program(program: &str, args: &[&str]) -> Running {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Running(Some(command.spawn().expect("start the helper")))
    }

    fn pid(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// The helper's first child: PID 1 of the namespace (the init, or the
    /// command without one), as the host sees it.
    fn pid1(&self) -> i32 {
        wait_for("the helper's child", || {
            children(self.pid()).first().copied()
        })
    }

    /// Whether the helper has ended (it is reaped if so).
    fn ended(&mut self) -> bool {
        let child = self.0.as_mut().expect("running");
        child.try_wait().expect("wait for the helper").is_some()
    }

    /// Waits for the helper's end and returns its exit status.
    fn status(mut self) -> i32 {
        let mut child = self.0.take().expect("running");
        match harness::process::wait_until(&mut child, Instant::now() + PATIENCE) {
            Some(status) => harness::transcript::exit_status(status),
            None => {
                harness::process::stop(&mut child);
                panic!("the helper did not end");
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            harness::process::stop(child);
        }
    }
}

/// Polls `probe` until it says something (`PATIENCE` at most).
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The state letter of process `pid` (`S`, `R`, `Z`...), or None once gone.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory effects. `pid` is a helper's descendant
    // that this test saw alive a moment ago; its parent (the helper, or the
    // init) reaps it, not the test, so the PID could only name another
    // process if it ended and the PID space wrapped around in that moment.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

fn run(args: &[&str]) -> Output {
    let child = Command::new(HELPER)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the helper");
    harness::process::wait_with_deadline(child, &format!("helper {args:?}"), PATIENCE)
}

fn status(output: &Output) -> i32 {
    harness::transcript::exit_status(output.status)
}

/// Two orphans that end after half a second, and a command that outlives
/// them: `(cmd &)` starts `cmd` in a subshell that exits at once, so `cmd`
/// is given to PID 1.
const ORPHANS: &str = "(sleep 0.5 &); (sleep 0.5 &); exec sleep 3";

#[test]
fn without_an_init_orphans_pile_up_as_zombies() {
    if !harness::require_root("ch10 zombies without an init") {
        return;
    }
    let helper = Running::start(&["pidns", "exec", "--", "sh", "-c", ORPHANS]);
    let pid1 = helper.pid1();
    // PID 1 is `sleep 3` now, which never calls wait(2): the orphans it was
    // given stay zombies.
    let zombies = wait_for("two zombies", || {
        let zombies: Vec<i32> = children(pid1 as u32)
            .into_iter()
            .filter(|&pid| state(pid) == Some('Z'))
            .collect();
        (zombies.len() == 2).then_some(zombies)
    });
    assert_eq!(comm(pid1).as_deref(), Some("sleep"));
    assert_eq!(zombies.len(), 2);
    signal(pid1, libc::SIGKILL);
    assert_eq!(helper.status(), 137);
}

/// Waits until `init` has had the command and both orphans as children (at
/// one time or another), and has only the command left; checks that nothing
/// below it is a zombie.
fn assert_orphans_reaped(init: i32) {
    let mut seen = std::collections::BTreeSet::new();
    let left = wait_for("the orphans to come to the init and be reaped", || {
        let now = children(init as u32);
        seen.extend(now.iter().copied());
        (seen.len() >= 3 && now.len() == 1).then_some(now)
    });
    assert_eq!(seen.len(), 3, "the command and two orphans: {seen:?}");
    assert_eq!(comm(left[0]).as_deref(), Some("sleep"));
    assert_ne!(state(left[0]), Some('Z'));
    assert!(children(left[0] as u32).is_empty());
}

#[test]
fn the_init_reaps_orphans() {
    if !harness::require_root("ch10 the init reaps orphans") {
        return;
    }
    let helper = Running::start(&["pidns", "init", "--", "sh", "-c", ORPHANS]);
    assert_orphans_reaped(helper.pid1());
    assert_eq!(helper.status(), 0);
}

#[test]
fn the_init_reaps_orphans_as_a_subreaper_too() {
    // Not PID 1 (no namespace, no root): PR_SET_CHILD_SUBREAPER.
    let helper = Running::start(&["init", "--", "sh", "-c", ORPHANS]);
    assert_orphans_reaped(helper.pid() as i32);
    assert_eq!(helper.status(), 0);
}

#[test]
fn without_an_init_pid_1_ignores_sigterm() {
    if !harness::require_root("ch10 PID 1 ignores SIGTERM") {
        return;
    }
    let mut helper = Running::start(&["pidns", "exec", "--", "sleep", "100"]);
    let pid1 = helper.pid1();
    wait_for("sleep", || {
        (comm(pid1).as_deref() == Some("sleep")).then_some(())
    });
    signal(pid1, libc::SIGTERM);
    // Dropped by the kernel, not queued: nothing will ever deliver it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!helper.ended(), "sleep ended on SIGTERM");
    assert!(matches!(state(pid1), Some('S' | 'R')), "{:?}", state(pid1));
    signal(pid1, libc::SIGKILL); // from the host: the one that always works
    assert_eq!(helper.status(), 137);
}

#[test]
fn sigterm_reaches_the_command_through_the_init() {
    if !harness::require_root("ch10 the init forwards SIGTERM") {
        return;
    }
    let helper = Running::start(&["pidns", "init", "--", "sleep", "100"]);
    let init = helper.pid1();
    let command = wait_for("sleep", || {
        children(init as u32)
            .into_iter()
            .find(|&pid| comm(pid).as_deref() == Some("sleep"))
    });
    signal(init, libc::SIGTERM);
    assert_eq!(helper.status(), 143, "sleep killed by SIGTERM: 128 + 15");
    assert_eq!(state(command), None);
}

#[test]
fn group_forwarding_reaches_the_commands_children() {
    // Not PID 1: without a namespace, what the command leaves behind
    // outlives the init, and shows where the signal went.
    for (flags, reached) in [(&["--group"][..], true), (&[][..], false)] {
        let mut args = vec!["init"];
        args.extend(flags);
        args.extend(["--", "sh", "-c", "sleep 30 & wait"]);
        let helper = Running::start(&args);
        let init = helper.pid() as i32;
        let shell = wait_for("the shell", || children(init as u32).first().copied());
        let sleep = wait_for("sleep", || {
            children(shell as u32)
                .into_iter()
                .find(|&pid| comm(pid).as_deref() == Some("sleep"))
        });
        signal(init, libc::SIGTERM);
        assert_eq!(helper.status(), 143, "{flags:?}");
        if reached {
            wait_for("sleep to end", || {
                state(sleep).is_none_or(|s| s == 'Z').then_some(())
            });
        } else {
            // Only the shell got it; the sleep was orphaned and runs on.
            assert!(matches!(state(sleep), Some('S' | 'R')), "{flags:?}");
            signal(sleep, libc::SIGKILL);
        }
    }
}

#[test]
fn the_init_exits_with_the_commands_status() {
    if !harness::require_root("ch10 the init's exit status") {
        return;
    }
    let cases = [
        ("exit 7", 7),
        ("kill -KILL $$", 137),
        ("kill -TERM $$", 143),
    ];
    for (script, expected) in cases {
        let output = run(&["pidns", "init", "--", "sh", "-c", script]);
        assert_eq!(status(&output), expected, "{script}");
    }
    let output = run(&["pidns", "init", "--", "no-such-command"]);
    assert_eq!(status(&output), 127);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "minibox: exec: \"no-such-command\": executable file not found in $PATH\n"
    );
}

/// Opens `/proc/PID/exe` of a running init the way CVE-2019-5736 did, and
/// returns the descriptor it kept and what reopening it for writing gave.
///
/// Opening it for writing while the init runs fails with ETXTBSY: `execve`
/// denies writes to the file it executes for as long as a process runs it
/// (the kernel's `deny_write_access`), the host's binary and the memfd alike.
/// So the attack kept a read-only descriptor, waited for the process to end
/// (here: SIGTERM, passed on to the command, 143), and reopened it for
/// writing through `/proc/self/fd/N`, which reaches the same file again.
fn reopen_after_exit(
    helper: Running,
    init: i32,
) -> (std::fs::File, std::io::Result<std::fs::File>) {
    let exe = format!("/proc/{init}/exe");
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETXTBSY), "{err}");
    let held = std::fs::File::open(&exe).expect("open /proc/PID/exe read-only");
    signal(init, libc::SIGTERM);
    assert_eq!(helper.status(), 143);
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held));
    let reopened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_APPEND)
        .open(path);
    (held, reopened)
}

#[test]
fn the_init_runs_from_a_sealed_memfd_the_container_cannot_write() {
    if !harness::require_root("ch10 the sealed init") {
        return;
    }
    let helper = Running::start(&["pidns", "sealed", "init", "--", "sleep", "100"]);
    let init = helper.pid1();
    wait_for("sleep under the sealed init", || {
        children(init as u32)
            .into_iter()
            .find(|&pid| comm(pid).as_deref() == Some("sleep"))
    });
    let exe = format!("/proc/{init}/exe");
    let link = std::fs::read_link(&exe).unwrap();
    assert_eq!(
        link,
        Path::new("/memfd:minibox (deleted)"),
        "not the host's binary"
    );
    assert_eq!(comm(init).as_deref(), Some("memfd:minibox"));
    let size = std::fs::metadata(HELPER).unwrap().len();
    assert_eq!(
        std::fs::metadata(&exe).unwrap().len(),
        size,
        "a copy of the helper"
    );

    let (held, reopened) = reopen_after_exit(helper, init);
    let seals = nix::fcntl::fcntl(&held, FcntlArg::F_GET_SEALS).unwrap();
    assert_eq!(SealFlag::from_bits_truncate(seals), SEALS);
    // Opening for writing works once nothing executes the memfd any more;
    // writing does not: F_SEAL_WRITE. The host's binary was never in reach.
    let mut reopened = reopened.expect("reopen for writing");
    let err = std::io::Write::write_all(&mut reopened, b"#!/bin/evil").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    let err = reopened.set_len(0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "truncating: {err}");
}

#[test]
fn an_init_run_from_its_file_hands_the_file_out() {
    // The contrast, on a copy of the helper of this test's own: the same
    // steps reach the binary itself, and can write it. (CVE-2019-5736.)
    if !harness::require_root("ch10 the unsealed init") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ttyinit-helper");
    std::fs::copy(HELPER, &copy).unwrap();
    let copy_str = copy.to_str().unwrap();
    let helper = Running::start_program(copy_str, &["pidns", "init", "--", "sleep", "100"]);
    let init = helper.pid1();
    wait_for("sleep under the init", || {
        children(init as u32)
            .into_iter()
            .find(|&pid| comm(pid).as_deref() == Some("sleep"))
    });
    assert_eq!(
        std::fs::read_link(format!("/proc/{init}/exe")).unwrap(),
        copy
    );
    let (_held, reopened) = reopen_after_exit(helper, init);
    let mut reopened = reopened.expect("reopen the binary for writing");
    std::io::Write::write_all(&mut reopened, b"#!/bin/evil").expect("overwrite the binary");
    let content = std::fs::read(&copy).unwrap();
    assert!(
        content.ends_with(b"#!/bin/evil"),
        "the runtime's binary was changed"
    );
}

/// A root with a static busybox and nothing else: no dynamic loader.
fn busybox_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.path().join("bin/busybox")).unwrap();
    root
}

#[test]
fn the_sealed_copy_runs_only_where_its_loader_is() {
    if !harness::require_root("ch10 the sealed copy and the dynamic loader") {
        return;
    }
    let root = busybox_root();
    let dir = root.path().to_str().unwrap();
    // Copied on the host, executed in the busybox root: the kernel looks for
    // /lib64/ld-linux-x86-64.so.2 there, and it is not there.
    let output = run(&["sealed-in", dir, "init", "--", "/bin/busybox", "true"]);
    assert_eq!(status(&output), 125);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "minibox: executing the sealed copy of minibox (its dynamic loader is not in this \
         root: exec it before pivot_root): ENOENT: No such file or directory\n"
    );
    // Executed first, then into the root: what the chapter does.
    let script = "test -x /bin/busybox && test ! -e /lib64 && exit 3";
    let output = run(&[
        "pidns",
        "sealed",
        "chroot",
        dir,
        "init",
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(
        status(&output),
        3,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
