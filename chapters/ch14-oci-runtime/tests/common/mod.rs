//! What chapter 14's tests share: a bundle of the test's own (a busybox
//! root filesystem from the host's static busybox, a `config.json` written
//! as JSON), a `--root` and a `--log` in the test's temporary directory, a
//! cgroup parent below the test's own cgroup, `minibox-runc` run with its
//! output in files, and the checks that a test left nothing behind: no state
//! directory, no cgroup, no process, no mount.
//!
//! Why files and not pipes for the runtime's output: `create` leaves the
//! container's init running with `create`'s stdout and stderr, so a pipe
//! would not reach end-of-file before the container ends.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test.
pub const RUNC: &str = env!("CARGO_BIN_EXE_minibox-runc");

/// How long one command of the runtime may take before the test fails.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(20);

/// The host's static busybox (Debian's busybox-static).
pub const BUSYBOX: &str = harness::fixtures::HOST_BUSYBOX;

/// What one run of `minibox-runc` did.
#[derive(Debug)]
pub struct Ran {
    /// The command line, for messages.
    pub args: Vec<String>,
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Ran {
    /// Fails the test unless the command exited 0; returns it.
    pub fn ok(self) -> Ran {
        assert_eq!(
            self.code,
            Some(0),
            "expected `minibox-runc {}` to succeed, but it exited {:?} with stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stderr
        );
        self
    }

    /// Fails the test unless the command failed as runc fails: exit code 1
    /// and exactly one line on stderr. Returns that line.
    pub fn one_line_failure(&self) -> String {
        assert_eq!(
            self.code,
            Some(1),
            "expected `minibox-runc {}` to fail with exit code 1, but it exited {:?} (stdout {:?}, stderr {:?})",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr from `minibox-runc {}`, but got {}: {:?}",
            self.args.join(" "),
            lines.len(),
            self.stderr
        );
        lines[0].to_string()
    }
}

/// One test's world: a temporary directory with the bundle, `--root`,
/// `--log` and a directory shared with the container (bound at `/shared`),
/// and a cgroup parent of its own. Dropped, it force-deletes whatever
/// containers are still under its `--root` and removes its cgroups, so a
/// failing test leaves nothing either.
pub struct Sandbox {
    /// The temporary directory holding everything.
    pub dir: tempfile::TempDir,
    /// The bundle (`config.json` and `rootfs`).
    pub bundle: PathBuf,
    /// `--root`.
    pub root: PathBuf,
    /// `--log` (JSON lines).
    pub log: PathBuf,
    /// A host directory bound read-write at `/shared` in the container.
    pub shared: PathBuf,
    /// The cgroup parent (relative: below the test's own cgroup), unique to
    /// the test.
    pub cgroup_parent: String,
    /// The PIDs the test learned (inits, exec'd processes): none may be
    /// alive at the end.
    pids: std::cell::RefCell<Vec<i32>>,
    outputs: std::cell::Cell<u32>,
}

impl Sandbox {
    /// A sandbox for test `name` (unique within the test binary).
    pub fn new(name: &str) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix(&format!("minibox-ch14-{name}-"))
            .tempdir()
            .expect("create a temporary directory");
        let bundle = dir.path().join("bundle");
        let shared = dir.path().join("shared");
        fs::create_dir_all(&shared).expect("create the shared directory");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).expect("chmod shared");
        make_rootfs(&bundle.join("rootfs"));
        let cgroup_parent =
            harness::cgroups::test_parent(&format!("minibox-test-{name}-{}", std::process::id()));
        Sandbox {
            bundle,
            root: dir.path().join("root"),
            log: dir.path().join("runc.log"),
            shared,
            cgroup_parent,
            dir,
            pids: Default::default(),
            outputs: Default::default(),
        }
    }

    /// `linux.cgroupsPath` for container `id`: below this test's parent.
    pub fn cgroups_path(&self, id: &str) -> String {
        format!("{}/{id}", self.cgroup_parent)
    }

    /// A config.json for container `id` running `args`: the namespaces of a
    /// container (pid, ipc, uts, mount, network), `/proc`, a `/dev` tmpfs
    /// with its own devpts, the shared directory at `/shared`, a writable
    /// root, no terminal.
    pub fn config(&self, id: &str, args: &[&str]) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"],
                "cwd": "/"
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "box",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/shared", "type": "bind", "source": self.shared,
                 "options": ["rbind", "rw"]}
            ],
            "linux": {
                "namespaces": [
                    {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                    {"type": "mount"}, {"type": "network"}
                ],
                "cgroupsPath": self.cgroups_path(id)
            }
        })
    }

    /// Writes `config` as the bundle's config.json.
    pub fn write_config(&self, config: &Value) {
        fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(config).expect("serialize the config"),
        )
        .expect("write config.json");
    }

    /// `minibox-runc --root R --log L --log-format json ARGS`, ready to adjust.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(RUNC);
        command
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs `command` (from [`Sandbox::command`]) with its output in files of
    /// the sandbox, and waits for it ([`COMMAND_LIMIT`] at most).
    pub fn run_command(&self, mut command: Command) -> Ran {
        let n = self.outputs.get() + 1;
        self.outputs.set(n);
        let out_path = self.dir.path().join(format!("out.{n}"));
        let err_path = self.dir.path().join(format!("err.{n}"));
        let out = fs::File::create(&out_path).expect("create the stdout file");
        let err = fs::File::create(&err_path).expect("create the stderr file");
        command.stdout(out).stderr(err);
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .skip(6) // --root R --log L --log-format json
            .collect();
        let mut child = command.spawn().expect("start minibox-runc");
        let status = harness::process::wait_until(&mut child, Instant::now() + COMMAND_LIMIT);
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "expected `minibox-runc {}` to end within {} s, but it still ran",
                args.join(" "),
                COMMAND_LIMIT.as_secs()
            );
        };
        Ran {
            args,
            code: status.code(),
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// `minibox-runc ARGS`, waited for.
    pub fn runc(&self, args: &[&str]) -> Ran {
        self.run_command(self.command(args))
    }

    /// `create --bundle B ID`, which must succeed; returns the init's PID
    /// (from `--pid-file`), remembered for [`Sandbox::assert_clean`].
    pub fn create(&self, id: &str) -> i32 {
        let pid_file = self.dir.path().join(format!("{id}.pid"));
        let bundle = self.bundle.to_str().expect("UTF-8 path");
        let pid_arg = pid_file.to_str().expect("UTF-8 path");
        self.runc(&["create", "--bundle", bundle, "--pid-file", pid_arg, id])
            .ok();
        let pid = read_pid(&pid_file);
        self.remember(pid);
        pid
    }

    /// `create` then `start`: a running container; returns its init's PID.
    pub fn create_and_start(&self, id: &str) -> i32 {
        let pid = self.create(id);
        self.runc(&["start", id]).ok();
        pid
    }

    /// Remembers a PID that must not be alive at the end.
    pub fn remember(&self, pid: i32) {
        self.pids.borrow_mut().push(pid);
    }

    /// `state ID`'s JSON (the command must succeed).
    pub fn state(&self, id: &str) -> Value {
        let ran = self.runc(&["state", id]).ok();
        serde_json::from_str(&ran.stdout).unwrap_or_else(|e| {
            panic!(
                "expected `state {id}` to print JSON, but parsing failed ({e}): {:?}",
                ran.stdout
            )
        })
    }

    /// `state ID`'s status.
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .expect("state has a status string")
            .to_string()
    }

    /// Waits (5 s at most) until container `id` is stopped.
    pub fn wait_stopped(&self, id: &str) {
        let mut last = String::new();
        let stopped = wait_for(Duration::from_secs(5), || {
            last = self.status(id);
            last == "stopped"
        });
        assert!(
            stopped,
            "expected container {id} to stop within 5 s, but its status is still {last:?}"
        );
    }

    /// The container's cgroup directory in the first v1 hierarchy with a
    /// `pids` or `memory` controller, or the v2 tree.
    pub fn cgroup_dir(&self, id: &str) -> PathBuf {
        let hierarchies = harness::cgroups::hierarchies();
        let chosen = hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "pids" || c == "memory"))
            .or_else(|| hierarchies.iter().find(|h| h.fs_type == "cgroup2"))
            .expect("a cgroup hierarchy with pids or memory, or cgroup v2");
        chosen.parent_dir(&self.cgroup_parent).join(id)
    }

    /// Waits (at most 5 s) until container `id`'s cgroup holds `count`
    /// processes (a shell and what it started), remembers them for
    /// [`Sandbox::assert_clean`], and returns them.
    pub fn wait_for_procs(&self, id: &str, count: usize) -> Vec<i32> {
        let mut procs = Vec::new();
        assert!(
            wait_for(Duration::from_secs(5), || {
                procs = self.cgroup_procs(id);
                procs.len() == count
            }),
            "expected {count} processes in the cgroup of {id}, but it holds {procs:?}"
        );
        for &pid in &procs {
            self.remember(pid);
        }
        procs
    }

    /// The PIDs in container `id`'s cgroup (host PIDs).
    pub fn cgroup_procs(&self, id: &str) -> Vec<i32> {
        let path = self.cgroup_dir(id).join("cgroup.procs");
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("expected to read {}, but: {e}", path.display()));
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// The entries under `--root` (none, or no `--root` at all, when clean).
    pub fn root_entries(&self) -> Vec<String> {
        match fs::read_dir(&self.root) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Fails the test if anything is left: a state directory under
    /// `--root`, a cgroup of the test's parent in any hierarchy, a process
    /// the test learned of (waited for up to 5 s: an orphan is reaped by
    /// whoever adopted it), a mount that names the sandbox.
    pub fn assert_clean(&self) {
        let entries = self.root_entries();
        assert!(
            entries.is_empty(),
            "expected nothing under --root {}, but found {entries:?}",
            self.root.display()
        );
        harness::cgroups::assert_nothing_left(&self.cgroup_parent);
        for &pid in self.pids.borrow().iter() {
            let gone = wait_for(Duration::from_secs(5), || !alive(pid));
            assert!(
                gone,
                "expected process {pid} to be gone, but it is still alive: {:?}",
                fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default()
            );
        }
        let mounts = self.mounts();
        assert!(
            mounts.is_empty(),
            "expected no mount referencing {}, but found {mounts:?}",
            self.dir.path().display()
        );
    }

    /// The lines of /proc/self/mountinfo that name the sandbox's directory.
    pub fn mounts(&self) -> Vec<String> {
        let dir = self.dir.path().to_string_lossy().into_owned();
        fs::read_to_string("/proc/self/mountinfo")
            .expect("read /proc/self/mountinfo")
            .lines()
            .filter(|line| line.contains(&dir))
            .map(str::to_string)
            .collect()
    }

    /// The last line of `--log`, parsed: the error entry of a failed command.
    pub fn last_log_entry(&self) -> Value {
        let text = fs::read_to_string(&self.log)
            .unwrap_or_else(|e| panic!("expected a log file at {}, but: {e}", self.log.display()));
        let line = text.lines().last().unwrap_or_else(|| {
            panic!("expected a line in {}, but it is empty", self.log.display())
        });
        serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("expected the log's last line to be JSON, but ({e}): {line:?}")
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for id in self.root_entries() {
            let mut command = Command::new(RUNC);
            command
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = command.spawn()
                && harness::process::wait_until(&mut child, Instant::now() + COMMAND_LIMIT)
                    .is_none()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        harness::cgroups::remove_leftovers(&self.cgroup_parent);
    }
}

/// A busybox root filesystem at `rootfs`: the host's static busybox, a link
/// per applet in `/bin`, and the directories a container mounts on.
pub fn make_rootfs(rootfs: &Path) {
    assert!(
        harness::fixtures::is_static(Path::new(BUSYBOX)).unwrap_or(false),
        "expected a static busybox at {BUSYBOX} (install busybox-static), but there is none"
    );
    for dir in ["bin", "proc", "dev", "sys", "tmp", "root", "shared", "etc"] {
        fs::create_dir_all(rootfs.join(dir)).expect("create a rootfs directory");
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .expect("chmod /tmp");
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
}

/// Reads a PID file: digits only, no newline.
pub fn read_pid(path: &Path) -> i32 {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("expected a PID file at {}, but: {e}", path.display()));
    assert!(
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
        "expected the PID file {} to hold digits only, but it holds {text:?}",
        path.display()
    );
    text.parse().expect("digits are a number")
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `PID (COMM) STATE ...`: COMM may hold spaces and parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `condition` every 10 ms until it holds (true) or `limit` passes
/// (false).
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
