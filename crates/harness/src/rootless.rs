//! An unprivileged user for chapter 13's tests and demos, made without
//! changing the host's users: an unused UID, whose `/etc/passwd`, `/etc/group`,
//! `/etc/subuid` and `/etc/subgid` entries exist only in a private mount
//! namespace that each of its commands starts in (the test's own copies,
//! bind-mounted over the host's), before the command drops to that UID.
//!
//! Everything the user makes is the test's: its home (where rootless
//! minibox keeps images and containers, `~/.local/share/minibox`), its
//! runtime directory, and the pause process minibox starts there, which
//! [`TestUser`]'s drop ends by PID before it removes the directories.

use std::ffi::CString;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::process::{Run, wait};

/// The TUN device's node (see [`TestUser::make_tun`]).
const TUN: &str = "/dev/net/tun";

/// How many test users this process made: each gets its own IDs.
static MADE: AtomicU32 = AtomicU32::new(0);

/// A user that does not exist outside its own commands.
pub struct TestUser {
    /// Its UID (and GID).
    pub uid: u32,
    /// Its subordinate range (`start`, `count`), if it has one.
    pub range: Option<(u32, u32)>,
    /// Its name in its passwd file.
    pub name: String,
    home: tempfile::TempDir,
    etc: tempfile::TempDir,
    bin: PathBuf,
    env: Vec<(String, String)>,
    cgroup: Option<PathBuf>,
    netns: Option<std::os::fd::OwnedFd>,
}

impl TestUser {
    /// A user for `bin` (copied where the user can run it), with a range of
    /// 65536 subordinate IDs or without.
    pub fn new(bin: &Path, with_range: bool) -> TestUser {
        let index = (std::process::id() % 4096) * 16 + MADE.fetch_add(1, Ordering::Relaxed) % 16;
        let uid = 400_000 + index;
        let range = with_range.then_some((1_000_000_000 + (index % 40_000) * 65536, 65536));
        let home = tempfile::Builder::new()
            .prefix("minibox-rootless-")
            .tempdir()
            .expect("a home");
        TestUser::make(bin, format!("mbx{index}"), uid, range, home)
    }

    /// A user called `name`, with the IDs given, for output that must read
    /// the same on every run (the demos' [`DEMO_USER`]), unlike
    /// [`TestUser::new`]'s, which parallel tests need. Panics when the
    /// machine has a user or group of that name or ID already: their
    /// entries would clash, and the drop, which ends every process of the
    /// user's IDs, would end theirs. Its home is a temporary directory
    /// named as tempfile names its own, which the filter table redacts.
    ///
    /// [`DEMO_USER`]: crate::chapters::DEMO_USER
    pub fn with_ids(bin: &Path, name: &str, uid: u32, range: Option<(u32, u32)>) -> TestUser {
        if let Some(clash) = clash(name, uid, range) {
            panic!("{clash}");
        }
        let home = tempfile::tempdir().expect("a home");
        TestUser::make(bin, name.to_string(), uid, range, home)
    }

    /// The user, its files written and its home made.
    fn make(
        bin: &Path,
        name: String,
        uid: u32,
        range: Option<(u32, u32)>,
        home: tempfile::TempDir,
    ) -> TestUser {
        let etc = tempfile::tempdir().expect("a private /etc");
        let user = TestUser {
            uid,
            range,
            name,
            bin: home.path().join("minibox"),
            home,
            etc,
            env: Vec::new(),
            cgroup: None,
            netns: None,
        };
        user.write_etc();
        user.make_tun();
        user.make_home(bin);
        user
    }

    /// The user's home.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Its runtime directory (`XDG_RUNTIME_DIR`).
    pub fn runtime_dir(&self) -> PathBuf {
        self.home().join("run")
    }

    /// Its minibox store, where rootless minibox puts it by default.
    pub fn store(&self) -> PathBuf {
        self.home().join(".local/share/minibox")
    }

    /// Starts every command in the cgroup directory `dir` (a cgroup v2
    /// subtree delegated to the user, as a login would).
    pub fn start_in_cgroup(&mut self, dir: &Path) {
        self.cgroup = Some(dir.to_path_buf());
    }

    /// Starts every command in `netns` (a network namespace the test made),
    /// joined while still root, before the switch to the user.
    /// (`netns`: a descriptor of it, e.g. [`crate::netns::NetNs::descriptor`].)
    pub fn in_network_namespace(&mut self, netns: std::os::fd::OwnedFd) {
        self.netns = Some(netns);
    }

    /// Adds `KEY=VALUE` to every command's environment.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// A node of the TUN device, mode 0666 as distributions make it, for
    /// [`TUN`] in the user's commands: the user-mode network stacks open
    /// it, and some machines (this project's CI among them) make theirs
    /// 0600, root's only. The host's own node is left as it is.
    fn make_tun(&self) {
        if !Path::new(TUN).exists() {
            return;
        }
        let node =
            CString::new(self.etc.path().join("tun").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mknod(2) and chmod(2) on a path of the test's own directory.
        let made = unsafe {
            libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(10, 200)) == 0
                && libc::chmod(node.as_ptr(), 0o666) == 0
        };
        assert!(
            made,
            "making a TUN node: {}",
            std::io::Error::last_os_error()
        );
    }

    fn write_etc(&self) {
        let host = |file: &str| std::fs::read_to_string(format!("/etc/{file}")).unwrap_or_default();
        let (uid, name, home) = (self.uid, &self.name, self.home().display());
        let passwd = format!("{}{name}:x:{uid}:{uid}::{home}:/bin/sh\n", host("passwd"));
        let group = format!("{}{name}:x:{uid}:\n", host("group"));
        let sub = self
            .range
            .map(|(start, count)| format!("{name}:{start}:{count}\n"))
            .unwrap_or_default();
        for (file, text) in [
            ("passwd", passwd),
            ("group", group),
            ("subuid", sub.clone()),
            ("subgid", sub),
        ] {
            std::fs::write(self.etc.path().join(file), text).expect("write the private /etc");
        }
    }

    fn make_home(&self, bin: &Path) {
        std::fs::copy(bin, &self.bin).expect("copy minibox for the test user");
        for dir in [self.home().to_path_buf(), self.runtime_dir()] {
            std::fs::create_dir_all(&dir).expect("make the home");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        for path in [
            self.home().to_path_buf(),
            self.runtime_dir(),
            self.bin.clone(),
        ] {
            chown(&path, Some(self.uid), Some(self.uid)).expect("give the home to the user");
        }
    }

    /// `minibox ARGS` as this user, not started yet: stdin is /dev/null,
    /// stdout and stderr are piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", self.home())
            .env("USER", &self.name)
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(netns) = &self.netns {
            crate::netns::enter(netns.try_clone().expect("dup"), &mut command);
        }
        self.become_user(&mut command);
        command
    }

    /// Runs `minibox ARGS` as this user to the end (60 s at most).
    pub fn minibox(&self, args: &[&str]) -> Run {
        wait(self.spawn(&mut self.command(args)), args)
    }

    /// Spawns `command`, trying again while the copy of minibox is "busy":
    /// another test thread forked while this one was writing the copy,
    /// and its child holds the written descriptor until it execs.
    pub fn spawn(&self, command: &mut Command) -> std::process::Child {
        for _ in 0..100 {
            match command.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                spawned => return spawned.expect("run minibox as the test user"),
            }
        }
        panic!("the copy of minibox stayed busy")
    }

    /// Makes `command` start in a private mount namespace with this user's
    /// files over the host's, as this user.
    pub fn become_user(&self, command: &mut Command) {
        let c = |path: &Path| CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // Over the host's files that exist (a minimal VM may have none).
        let mut binds: Vec<(CString, CString)> = ["passwd", "group", "subuid", "subgid"]
            .into_iter()
            .filter(|file| Path::new("/etc").join(file).exists())
            .map(|file| {
                (
                    c(&self.etc.path().join(file)),
                    c(&Path::new("/etc").join(file)),
                )
            })
            .collect();
        let tun = self.etc.path().join("tun");
        if tun.exists() {
            binds.push((c(&tun), c(Path::new(TUN))));
        }
        let cgroup_procs = self.cgroup.as_ref().map(|dir| c(&dir.join("cgroup.procs")));
        let uid = self.uid;
        // SAFETY: between fork and exec the closure makes system calls only,
        // on strings made before the fork.
        unsafe {
            command.pre_exec(move || {
                let check = |result: libc::c_int| match result {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                };
                check(libc::unshare(libc::CLONE_NEWNS))?;
                let root = c"/";
                let flags = libc::MS_REC | libc::MS_PRIVATE;
                check(libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                ))?;
                for (from, to) in &binds {
                    let (from, to) = (from.as_ptr(), to.as_ptr());
                    check(libc::mount(
                        from,
                        to,
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))?;
                }
                if let Some(procs) = &cgroup_procs {
                    // Into the user's cgroup, as a login puts a user's shell.
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    check(if fd < 0 { -1 } else { 0 })?;
                    let written = libc::write(fd, c"0".as_ptr().cast(), 1);
                    libc::close(fd);
                    check(if written == 1 { 0 } else { -1 })?;
                }
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setresgid(uid, uid, uid))?;
                check(libc::setresuid(uid, uid, uid))
            });
        }
    }

    /// The user's pause process, if one runs.
    pub fn pause_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.runtime_dir().join("minibox/pause.pid")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// The processes that run as this user, or as one of its subordinate
    /// IDs, as `/proc` shows them.
    pub fn processes(&self) -> Vec<i32> {
        let ours = |uid: u32| {
            uid == self.uid
                || self
                    .range
                    .is_some_and(|(start, count)| (start..start + count).contains(&uid))
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse().ok());
            if uid.is_some_and(ours) {
                found.push(pid);
            }
        }
        found
    }

    /// Ends the pause process (by the PID minibox wrote), as a user ends
    /// theirs, and waits until it is gone.
    pub fn stop_pause(&self) {
        if let Some(pid) = self.pause_pid() {
            // SAFETY: kill(2) on the PID of the pause process this user's
            // minibox started and named; nothing else.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            for _ in 0..500 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// What on this machine a user `name` with `uid` and the subordinate
/// `range` would clash with, if anything: a user or group of that name or
/// ID in `/etc/passwd` or `/etc/group`, or a subordinate range of the
/// machine's in `/etc/subuid` or `/etc/subgid` that overlaps `range` (a
/// real user's rootless containers run as those IDs, and [`TestUser`]'s
/// drop ends every process of its IDs).
pub fn clash(name: &str, uid: u32, range: Option<(u32, u32)>) -> Option<String> {
    clash_in(Path::new("/etc"), name, uid, range)
}

/// [`clash`], with the files in `etc`.
fn clash_in(etc: &Path, name: &str, uid: u32, range: Option<(u32, u32)>) -> Option<String> {
    let read = |file: &str| std::fs::read_to_string(etc.join(file)).unwrap_or_default();
    let id = uid.to_string();
    for file in ["passwd", "group"] {
        let text = read(file);
        let found = text.lines().find(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            fields.first() == Some(&name) || fields.get(2) == Some(&id.as_str())
        });
        if let Some(line) = found {
            return Some(format!(
                "user {name} ({uid}) would clash with /etc/{file}'s {line:?}"
            ));
        }
    }
    let (start, count) = range?;
    for file in ["subuid", "subgid"] {
        let text = read(file);
        let found = text.lines().find(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let number = |i: usize| fields.get(i).and_then(|f| f.trim().parse::<u64>().ok());
            let (Some(from), Some(n)) = (number(1), number(2)) else {
                return false;
            };
            from < u64::from(start) + u64::from(count) && u64::from(start) < from + n
        });
        if let Some(line) = found {
            return Some(format!(
                "{name}'s subordinate IDs {start}-{} overlap /etc/{file}'s {line:?}",
                u64::from(start) + u64::from(count) - 1
            ));
        }
    }
    None
}

impl Drop for TestUser {
    fn drop(&mut self) {
        self.stop_pause();
        // A failed test may leave a container: its processes are the
        // user's (or its subordinate IDs'), which only this test has.
        for pid in self.processes() {
            // SAFETY: kill(2) on a process of this test's own user.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_user_clashes_with_the_machines_users_and_ranges() {
        let etc = tempfile::tempdir().unwrap();
        let write = |file: &str, text: &str| std::fs::write(etc.path().join(file), text).unwrap();
        write(
            "passwd",
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        );
        write("group", "root:x:0:\nalice:x:1000:\n");
        write("subuid", "alice:100000:65536\n");
        let clash = |name, uid, range| clash_in(etc.path(), name, uid, range);
        assert_eq!(clash("learner", 1001, Some((200_000, 65536))), None);
        assert!(clash("learner", 1000, None).is_some_and(|c| c.contains("passwd")));
        assert!(clash("alice", 1001, None).is_some_and(|c| c.contains("alice")));
        let overlap = clash("learner", 1001, Some((165_535, 10))).unwrap();
        assert!(overlap.contains("/etc/subuid"), "{overlap}");
        // Right after alice's range ends: no overlap.
        assert_eq!(clash("learner", 1001, Some((165_536, 10))), None);
    }
}
