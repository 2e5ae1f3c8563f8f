//! `exec` into a container the test makes itself: `unshare(1)` puts a shell
//! in new PID, mount, UTS, IPC and network namespaces, where it names the
//! host `exec-test`, mounts a tmpfs (visible only in its mount namespace) with
//! a marker file on it, and becomes `sleep` as PID 1. The tests run commands
//! in it through [`exec`] and look at what those commands see: the container's
//! hostname, namespaces, mounts and a cgroup made for the test, the command's
//! exit status, and Docker's errors. Each container is killed by its PID at
//! the end.
//!
//! All but the last need root (to make the namespaces and to join them).

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio as StdStdio};

use ch01_fork_exec::exit::Exit;
use ch08_command_override::exec::Process;
use ch09_networking::ipam::Holder;
use ch10_runtime::exec::{ExecError, Stdio, Target, exec, namespace_id};
use nix::fcntl::OFlag;

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The shell that becomes the container's PID 1, with the tmpfs's mount
/// point as `$1`.
const SCRIPT: &str = r#"hostname exec-test && mount -t tmpfs exec-test "$1" && echo inside > "$1/marker" && echo ready && exec sleep 1000"#;

/// A container made by `unshare`, with its PID 1 as the host sees it.
/// Dropped, PID 1 is killed by its PID (its namespace, and the tmpfs, die
/// with it) and `unshare` is reaped.
struct Container {
    unshare: Child,
    pid1: i32,
    /// The tmpfs's mount point: an empty directory on the host.
    mount_point: tempfile::TempDir,
}

impl Container {
    fn start() -> Container {
        let mount_point = tempfile::tempdir().unwrap();
        let mut unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--mount", "--propagation", "private"])
            .args(["--uts", "--ipc", "--net", "sh", "-c", SCRIPT, "sh"])
            .arg(mount_point.path())
            .stdin(StdStdio::null())
            .stdout(StdStdio::piped())
            // Read only when the start fails: unshare(1) also complains here
            // when its child dies by SIGKILL (it cannot unblock that signal
            // to die the same way).
            .stderr(StdStdio::piped())
            .spawn()
            .expect("start unshare");
        let mut line = String::new();
        BufReader::new(unshare.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid1 = harness::process::children(unshare.id()).first().copied();
        let mut container = Container {
            pid1: pid1.unwrap_or(0),
            unshare,
            mount_point,
        };
        if line != "ready\n" {
            container.stop();
            let mut why = String::new();
            let _ = container
                .unshare
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut why);
            panic!("the container did not start: {why}");
        }
        assert_ne!(container.pid1, 0, "no PID 1 below unshare");
        container
    }

    fn holder(&self) -> Holder {
        Holder::of(self.pid1).unwrap().expect("PID 1 runs")
    }

    fn target(&self, cgroups: Vec<PathBuf>) -> Target {
        Target {
            id: "e".repeat(64),
            process: Some(self.holder()),
            cgroups,
            extra: Vec::new(),
        }
    }

    /// Kills PID 1 and waits for `unshare`, which ends with it.
    fn stop(&mut self) {
        if self.pid1 > 0 {
            // SAFETY: kill(2) of the PID 1 this test started, not yet reaped
            // (unshare, its parent, is still waiting for it).
            unsafe { libc::kill(self.pid1, libc::SIGKILL) };
            self.pid1 = 0;
        }
        let _ = self.unshare.wait();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The process `words` as root, in `workdir`, with a PATH.
fn process(words: &[&str], workdir: &str) -> Process {
    let words: Vec<OsString> = words.iter().map(OsString::from).collect();
    Process {
        command: ch01_fork_exec::process::Command::new(&words).unwrap(),
        env: vec![PATH.to_string()],
        user: String::new(),
        workdir: PathBuf::from(workdir),
    }
}

/// Runs `words` in `target` and returns how it ended and its standard output.
fn run(target: &Target, words: &[&str], workdir: &str) -> (Result<Exit, ExecError>, String) {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let stdio = Stdio {
        stdout: Some(write.as_fd()),
        ..Stdio::default()
    };
    let end = exec(target, &process(words, workdir), stdio);
    drop(write);
    let mut output = String::new();
    File::from(read).read_to_string(&mut output).unwrap();
    (end, output)
}

fn lines(output: &str) -> Vec<&str> {
    output.lines().collect()
}

#[test]
fn exec_sees_the_containers_hostname_namespaces_and_mounts() {
    if !harness::privilege::require_root("exec_sees_the_containers_hostname_namespaces_and_mounts")
    {
        return;
    }
    let container = Container::start();
    let target = container.target(Vec::new());

    let (end, output) = run(&target, &["hostname"], "/");
    assert_eq!(end.unwrap(), Exit::Code(0));
    assert_eq!(output, "exec-test\n");

    let names = ["pid", "net", "uts", "mnt", "ipc"];
    let links: Vec<String> = names.iter().map(|n| format!("/proc/self/ns/{n}")).collect();
    let mut words = vec!["readlink"];
    words.extend(links.iter().map(String::as_str));
    let (end, output) = run(&target, &words, "/");
    assert_eq!(end.unwrap(), Exit::Code(0));
    let own = std::process::id() as i32;
    assert_eq!(lines(&output).len(), names.len(), "{output}");
    for (name, seen) in names.iter().zip(lines(&output)) {
        assert_eq!(seen, namespace_id(container.pid1, name).unwrap(), "{name}");
        assert_ne!(
            seen,
            namespace_id(own, name).unwrap(),
            "{name}: the test's own"
        );
    }

    // In the container's PID namespace, not as its PID 1: NSpid lists the
    // process's PID in each namespace, the host's first.
    let (_, output) = run(&target, &["grep", "^NSpid:", "/proc/self/status"], "/");
    let pids: Vec<&str> = output.split_whitespace().skip(1).collect();
    assert_eq!(pids.len(), 2, "{output}");
    assert_ne!(pids[1], "1", "{output}");

    // The working directory is entered in the container's mounts: the tmpfs
    // with the marker, which the host's directory does not have.
    let dir = container.mount_point.path().to_str().unwrap();
    let (end, output) = run(&target, &["cat", "marker"], dir);
    assert_eq!(end.unwrap(), Exit::Code(0));
    assert_eq!(output, "inside\n");
    assert!(!container.mount_point.path().join("marker").exists());
}

/// A cgroup below the test's own in one hierarchy (the unified one on a
/// pure v2 host, else v1's `pids`), removed on drop.
struct TestCgroup {
    dir: PathBuf,
    parent: PathBuf,
    /// The line `/proc/PID/cgroup` shows for a member: `…:/path`.
    path: String,
}

impl TestCgroup {
    fn create() -> TestCgroup {
        let v2 = harness::cgroups::pure_v2();
        let hierarchy = harness::cgroups::hierarchies()
            .into_iter()
            .find(|h| {
                if v2 {
                    h.fs_type == "cgroup2"
                } else {
                    h.controllers.iter().any(|c| c == "pids")
                }
            })
            .expect("a cgroup hierarchy");
        let name = format!("minibox-exec-test-{}", std::process::id());
        let parent = hierarchy.parent_dir(&harness::cgroups::test_parent(&name));
        let dir = parent.join("exec");
        std::fs::create_dir_all(&dir).unwrap();
        let path = format!("/{}", dir.strip_prefix(&hierarchy.mount).unwrap().display());
        TestCgroup { dir, parent, path }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_dir(&self.parent);
    }
}

#[test]
fn exec_joins_the_cgroup_it_is_given() {
    if !harness::privilege::require_root("exec_joins_the_cgroup_it_is_given") {
        return;
    }
    let container = Container::start();
    let cgroup = TestCgroup::create();
    let target = container.target(vec![cgroup.dir.clone()]);
    let (end, output) = run(&target, &["cat", "/proc/self/cgroup"], "/");
    assert_eq!(end.unwrap(), Exit::Code(0));
    let member = format!(":{}", cgroup.path);
    assert!(
        output.lines().any(|line| line.ends_with(&member)),
        "{member} not in:\n{output}"
    );
    // Both children have ended and been reaped: the cgroup is empty again
    // and can go.
    let procs = std::fs::read_to_string(cgroup.dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs, "");
    let (dir, parent) = (cgroup.dir.clone(), cgroup.parent.clone());
    drop(cgroup);
    assert!(!dir.exists() && !parent.exists(), "cgroup left behind");
}

#[test]
fn the_commands_status_is_execs_and_a_missing_program_is_127() {
    if !harness::privilege::require_root(
        "the_commands_status_is_execs_and_a_missing_program_is_127",
    ) {
        return;
    }
    let container = Container::start();
    let target = container.target(Vec::new());

    let (end, _) = run(&target, &["sh", "-c", "exit 7"], "/");
    assert_eq!(end.unwrap().status(), 7);
    let (end, _) = run(&target, &["sh", "-c", "kill -TERM $$"], "/");
    assert_eq!(end.unwrap().status(), 128 + 15);

    let (end, output) = run(&target, &["nosuch"], "/");
    let error = end.unwrap_err();
    assert_eq!(
        error.to_string(),
        "OCI runtime exec failed: exec failed: unable to start container process: \
         exec: \"nosuch\": executable file not found in $PATH: unknown"
    );
    assert_eq!(error.status(), 127);
    assert_eq!(output, "");
}

#[test]
fn a_stopped_container_runs_nothing() {
    if !harness::privilege::require_root("a_stopped_container_runs_nothing") {
        return;
    }
    let mut container = Container::start();
    let target = container.target(Vec::new());
    container.stop();
    let witness = tempfile::tempdir().unwrap();
    let file = witness.path().join("ran");
    let file_str = file.to_str().unwrap();

    let (end, _) = run(&target, &["touch", file_str], "/");
    let error = end.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("Container {} is not running", "e".repeat(64))
    );
    assert_eq!(error.status(), 1);
    // The state says so itself: no process.
    let stopped = Target {
        process: None,
        ..target
    };
    let (end, _) = run(&stopped, &["touch", file_str], "/");
    assert!(matches!(end, Err(ExecError::NotRunning(_))), "{end:?}");
    assert!(!file.exists(), "the command ran");
}

#[test]
fn a_reused_pid_is_not_the_container() {
    // The test's own process stands for a process that took the container's
    // PID: the right PID, another start time.
    let mut me = Holder::current().unwrap();
    me.start_time += 1;
    let target = Target {
        id: "f".repeat(64),
        process: Some(me),
        cgroups: Vec::new(),
        extra: Vec::new(),
    };
    let (end, _) = run(&target, &["true"], "/");
    assert!(matches!(end, Err(ExecError::NotRunning(_))), "{end:?}");
}
