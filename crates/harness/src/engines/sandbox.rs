//! Where an engine runs in a test: a directory, a network namespace and a
//! mount namespace of the test's own, a registry reachable inside, and a
//! cgroup parent below the test's own cgroup.
//!
//! - **The network namespace** ([`NetNs`]) keeps the engine's networking
//!   (and whatever it would do to it) off the machine's. Its `lo` is the only
//!   link; the containers run with networking off anyway.
//! - **The mount namespace** (made private, then a tmpfs on `/run`,
//!   `/var/lib` and, where Docker is installed, `/etc/docker`) takes what
//!   the engines put where root's files go whatever their flags say:
//!   containerd's shim sockets (`/run/containerd/s`) and its shim's runtime
//!   root (`/run/containerd/runc/<namespace>`), the runtime's default root
//!   (`/run/runc`, which podman uses), podman's `/run/libpod` and
//!   `/var/lib/containers/cache`, dockerd's `/etc/docker/key.json`; and every
//!   overlay mount the engines make. It is held by a descriptor, not by a
//!   process: when the last process in it and the descriptor are gone, the
//!   kernel unmounts everything in it.
//! - **The registry** inside the namespace: a registry on the host's
//!   127.0.0.1 cannot be reached from a new network namespace (its `lo` is
//!   another one). So the fixture registry (on the host's 127.0.0.1, where
//!   the harness pushes) gets a second server inside, `127.0.0.1:5000`
//!   there, serving the same storage directory read-only in effect. Pulls
//!   go through the real registry protocol, from the fixture images.
//! - **The cgroup parent** is relative: runc (and a runc-compatible runtime)
//!   reads a relative `cgroupsPath` as relative to its own cgroup, which is
//!   the test's (the engines and their monitors inherit it). So every
//!   container lands below the test's own cgroup, in every hierarchy.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::NetNs;
use crate::registry::Registry;

/// The registry's address inside the sandbox's network namespace.
pub const MIRROR: &str = "127.0.0.1:5000";

/// An engine's private world: see the module's documentation.
pub struct Sandbox {
    /// Everything of the engine's on disk (root, state, sockets, logs).
    dir: tempfile::TempDir,
    netns: NetNs,
    /// The mount namespace, held by a descriptor.
    mnt: OwnedFd,
    /// The registry server inside the network namespace.
    mirror: Option<Child>,
    /// The fixture registry on the host, whose storage the mirror serves;
    /// stopped after the mirror.
    registry: Option<Registry>,
    cgroup_parent: String,
}

impl Sandbox {
    /// Makes the sandbox of an engine named `name` (a directory prefix and
    /// the cgroup parent's name): a registry with busybox, its mirror in a
    /// new network namespace, a private mount namespace.
    pub fn new(name: &str) -> Result<Sandbox, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("minibox-{name}-"))
            .tempdir()
            .map_err(|e| format!("a temp dir: {e}"))?;
        let netns = NetNs::new().map_err(|e| format!("a network namespace: {e}"))?;
        let mnt = private_mount_namespace()?;
        let cgroup_parent =
            crate::cgroups::test_parent(&format!("minibox-{name}-{}", std::process::id()));
        let mut sandbox = Sandbox {
            dir,
            netns,
            mnt,
            mirror: None,
            registry: None,
            cgroup_parent,
        };
        let registry = Registry::start();
        let busybox = crate::images::busybox().map_err(|e| format!("busybox image: {e}"))?;
        registry.push("library/busybox", "latest", &busybox);
        sandbox.mirror = Some(sandbox.serve_inside(&registry)?);
        sandbox.registry = Some(registry);
        Ok(sandbox)
    }

    /// The sandbox's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path below the sandbox's directory.
    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The cgroup parent of the engine's containers (relative: below the
    /// test's own cgroup).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The busybox image as the engines inside see it.
    pub fn busybox(&self) -> String {
        format!("{MIRROR}/library/busybox:latest")
    }

    /// `program`, to run in the sandbox's network and mount namespaces
    /// (joined between fork and exec; setns(2) into a mount namespace also
    /// makes `/` of that namespace the working directory).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        self.netns
            .enter(&mut command)
            .expect("a descriptor of the netns");
        let mnt = self.mnt.try_clone().expect("a descriptor of the mount ns");
        // SAFETY: the closure runs in the child between fork and exec; the
        // child is single-threaded, as setns(CLONE_NEWNS) requires, and the
        // closure only calls setns(2), which allocates nothing.
        unsafe {
            command.pre_exec(
                move || match libc::setns(mnt.as_raw_fd(), libc::CLONE_NEWNS) {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                },
            );
        }
        command.stdin(Stdio::null());
        command
    }

    /// The mount points in the sandbox's mount namespace (what `cat
    /// /proc/self/mountinfo` run there sees).
    pub fn mount_points(&self) -> Vec<String> {
        let out = self
            .command("cat")
            .arg("/proc/self/mountinfo")
            .output()
            .expect("cat mountinfo in the sandbox");
        crate::mount_ns::mount_points_of(&String::from_utf8_lossy(&out.stdout))
    }

    /// The cgroups below the engine's cgroup parent, in every hierarchy:
    /// the containers' that are still there.
    pub fn cgroups_left(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for parent in crate::cgroups::leftovers(&self.cgroup_parent) {
            collect_dirs(&parent, &mut found);
        }
        found
    }

    /// The processes in the sandbox's namespaces (the engine, its monitors,
    /// the mirror, commands still running), by PID. Containers are not among
    /// them: each has namespaces of its own; they are found by their cgroups.
    pub fn processes(&self) -> Vec<i32> {
        let net = self.netns.descriptor().ok();
        let ours = [inode(&self.mnt), net.as_ref().and_then(inode)];
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let inside = ["mnt", "net"].iter().any(|ns| {
                std::fs::metadata(format!("/proc/{pid}/ns/{ns}"))
                    .is_ok_and(|m| ours.contains(&Some(m.ino())))
            });
            if inside {
                pids.push(pid);
            }
        }
        pids
    }

    /// Starts a registry server in the network namespace, on [`MIRROR`],
    /// serving `registry`'s storage, and waits until it answers.
    fn serve_inside(&self, registry: &Registry) -> Result<Child, String> {
        let config = self.path("mirror.yml");
        let text = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {MIRROR}\n  secret: minibox-tests\n",
            registry.storage().display()
        );
        std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = File::create(self.path("mirror.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new(crate::registry::SERVER);
        command
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        self.netns.enter(&mut command).map_err(|e| e.to_string())?;
        let mut server = command
            .spawn()
            .map_err(|e| format!("starting the registry mirror: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers(MIRROR, "/v2/", "200 OK") {
            if Instant::now() > deadline || server.try_wait().ok().flatten().is_some() {
                let _ = server.kill();
                let _ = server.wait();
                return Err(format!(
                    "the registry mirror did not answer: {}",
                    std::fs::read_to_string(self.path("mirror.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// Whether `GET path` of the HTTP server at `address` inside the
    /// network namespace answers with a status line containing `status`.
    /// A socket belongs to the namespace of the thread that made it: a
    /// thread of its own joins the namespace and connects.
    pub fn answers(&self, address: &str, path: &str, status: &str) -> bool {
        let fd = self.netns.descriptor().expect("a descriptor of the netns");
        let (address, request) = (
            address.to_string(),
            format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n"),
        );
        let status = status.to_string();
        std::thread::spawn(move || {
            // SAFETY: setns(2) on a descriptor we own, for this thread only.
            if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
                return false;
            }
            let Ok(mut stream) = std::net::TcpStream::connect(&address) else {
                return false;
            };
            let mut answer = String::new();
            stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.lines().next().is_some_and(|l| l.contains(&status))
        })
        .join()
        .unwrap_or(false)
    }

    /// Ends every process left in the sandbox's namespaces (by PID, SIGKILL)
    /// and every container left below its cgroup parent, and removes that
    /// parent: after a test that failed half-way. Returns what it had to
    /// kill or remove (nothing, after a clean shutdown).
    pub fn sweep(&mut self) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(mut mirror) = self.mirror.take() {
            // SAFETY: kill(2) of our own child, not yet reaped.
            unsafe { libc::kill(mirror.id() as i32, libc::SIGKILL) };
            let _ = mirror.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.processes();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                let command = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ");
                found.push(format!("process {pid} ({})", command.trim()));
                // SAFETY: kill(2) of a process in namespaces this sandbox
                // made: one the test started, or one of theirs.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        found.extend(
            self.cgroups_left()
                .iter()
                .map(|dir| format!("cgroup {}", dir.display())),
        );
        crate::cgroups::remove_leftovers(&self.cgroup_parent);
        found
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let left = self.sweep();
        if !left.is_empty() {
            eprintln!("engine sandbox: cleaned up {}", left.join(", "));
        }
        drop(self.registry.take());
        // The namespaces go with their descriptors, the files with `dir`.
    }
}

/// Makes a mount namespace with every mount private (nothing mounted in it
/// reaches the host's) and a tmpfs on `/run`, `/var/lib` and (if it exists)
/// `/etc/docker`, and returns a descriptor that holds it. A short-lived
/// `cat` makes it between fork and exec; the descriptor is opened while cat
/// waits for its standard input, which is then closed.
fn private_mount_namespace() -> Result<OwnedFd, String> {
    let targets: Vec<std::ffi::CString> = ["/run", "/var/lib", "/etc/docker"]
        .iter()
        .filter(|t| Path::new(t).is_dir())
        .map(|t| std::ffi::CString::new(*t).expect("no NUL"))
        .collect();
    let (root, tmpfs, options) = (c"/", c"tmpfs", c"mode=0755");
    let mut command = Command::new("cat");
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    // SAFETY: between fork and exec the closure makes only system calls
    // (unshare(2), mount(2)) on strings allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            let checked = |ret: libc::c_int| match ret {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            };
            checked(libc::unshare(libc::CLONE_NEWNS))?;
            checked(libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for target in &targets {
                checked(libc::mount(
                    tmpfs.as_ptr(),
                    target.as_ptr(),
                    tmpfs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    options.as_ptr().cast(),
                ))?;
            }
            Ok(())
        });
    }
    let mut holder = command
        .spawn()
        .map_err(|e| format!("making a mount namespace: {e}"))?;
    let fd = File::open(format!("/proc/{}/ns/mnt", holder.id()))
        .map(OwnedFd::from)
        .map_err(|e| format!("opening the mount namespace: {e}"));
    drop(holder.stdin.take());
    let _ = holder.wait();
    fd
}

/// The inode of a namespace descriptor (what `/proc/PID/ns/*` of the
/// processes inside show).
fn inode(fd: &OwnedFd) -> Option<u64> {
    let file = File::from(fd.try_clone().ok()?);
    file.metadata().ok().map(|m| m.ino())
}

fn collect_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.push(entry.path());
            collect_dirs(&entry.path(), found);
        }
    }
}
