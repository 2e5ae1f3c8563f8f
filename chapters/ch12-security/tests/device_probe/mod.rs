//! What the host suite (`devices.rs`) and the v2 suite (`v2.rs`) share: a
//! child process that joins a cgroup, as a container's first process does,
//! then makes device nodes and opens them, and reports each result.

#![allow(dead_code)] // each suite uses its own part

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ch05_cgroups::cgroup::Cgroup;

/// A device, by type and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    /// `libc::S_IFBLK` or `libc::S_IFCHR`.
    pub kind: libc::mode_t,
    /// Its major number.
    pub major: u32,
    /// Its minor number.
    pub minor: u32,
}

/// `/dev/null`: every list allows it.
pub const NULL: Device = Device {
    kind: libc::S_IFCHR,
    major: 1,
    minor: 3,
};

/// `/dev/fuse`, which Docker's list denies by name.
pub const FUSE: Device = Device {
    kind: libc::S_IFCHR,
    major: 10,
    minor: 229,
};

/// A device Docker's list refuses to open, and which this process can
/// open, so that a process in the cgroup could too without the rules: the
/// block device the root filesystem is on (from /proc/self/mountinfo), the
/// host's own disk; where the root is not on a disk this process may read
/// (the v2 VM's root is a tmpfs; some sandboxes refuse their disk), the
/// first loop device; or else /dev/kmsg (1:11), the kernel's log.
pub fn a_device_to_refuse() -> Device {
    let block = |major, minor| Device {
        kind: libc::S_IFBLK,
        major,
        minor,
    };
    let mut candidates: Vec<(Device, PathBuf)> = Vec::new();
    if let Some((major, minor)) = root_device() {
        let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"));
        let name = uevent.ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("DEVNAME="))?;
            Some(line["DEVNAME=".len()..].to_string())
        });
        if let Some(name) = name {
            candidates.push((block(major, minor), Path::new("/dev").join(name)));
        }
    }
    candidates.push((block(7, 0), "/dev/loop0".into()));
    let kmsg = Device {
        kind: libc::S_IFCHR,
        major: 1,
        minor: 11,
    };
    candidates.push((kmsg, "/dev/kmsg".into()));
    candidates
        .into_iter()
        .find(|(_, path)| std::fs::File::open(path).is_ok())
        .map(|(device, _)| device)
        .expect("no device to refuse opens here")
}

/// The numbers of the device the root filesystem is mounted from.
fn root_device() -> Option<(u32, u32)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = mountinfo
        .lines()
        .find(|line| line.split_whitespace().nth(4) == Some("/"))?;
    let (major, minor) = line.split_whitespace().nth(2)?.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// One thing the child tries.
#[derive(Debug, Clone)]
pub enum Step {
    /// mknod(2) of `device` at the path, mode 0600.
    Mknod(PathBuf, Device),
    /// open(2) of the path for reading.
    Read(PathBuf),
    /// open(2) of the path for reading and writing.
    ReadWrite(PathBuf),
}

/// What a step came to: `Ok`, or the errno it failed with.
pub type Outcome = Result<(), nix::errno::Errno>;

/// Forks a child that joins `cgroup` from inside ([`Cgroup::join_self`],
/// as chapter 10's containers do), then takes `steps` in order, and
/// returns what each came to. The child ends before this returns.
pub fn in_cgroup(cgroup: &dyn Cgroup, steps: &[Step]) -> Vec<Outcome> {
    let paths: Vec<CString> = steps.iter().map(c_path).collect();
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors of the array we pass.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [read_end, write_end] = fds;
    // SAFETY: the child only joins the cgroup (file writes; glibc's fork
    // leaves malloc usable in the child) and makes system calls, then
    // leaves with _exit, never returning into the test harness.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
    if child == 0 {
        let codes: Vec<i32> = match cgroup.join_self() {
            Ok(()) => steps.iter().zip(&paths).map(|(s, p)| take(s, p)).collect(),
            Err(_) => vec![-1; steps.len()],
        };
        // SAFETY: writes the codes' bytes, from memory we own, and ends the
        // child without running the parent's destructors.
        unsafe {
            libc::write(write_end, codes.as_ptr().cast(), codes.len() * 4);
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's copy of the write end is ours to close.
    unsafe { libc::close(write_end) };
    let mut bytes = vec![0u8; steps.len() * 4];
    // SAFETY: reads into our buffer, at most its length.
    let got = unsafe { libc::read(read_end, bytes.as_mut_ptr().cast(), bytes.len()) };
    let mut status = 0;
    // SAFETY: waits for our own child; closes our own read end.
    unsafe {
        libc::waitpid(child, &mut status, 0);
        libc::close(read_end);
    }
    assert_eq!(got as usize, bytes.len(), "the child reported nothing");
    let codes = bytes
        .chunks(4)
        .map(|c| i32::from_ne_bytes(c.try_into().unwrap()));
    codes
        .map(|code| match code {
            0 => Ok(()),
            -1 => panic!("the child could not join the cgroup"),
            errno => Err(nix::errno::Errno::from_raw(errno)),
        })
        .collect()
}

/// Takes `steps` in this process, which no device rule confines (the
/// test's own cgroup): what they come to without the cgroup.
pub fn here(steps: &[Step]) -> Vec<Outcome> {
    steps
        .iter()
        .map(|step| match take(step, &c_path(step)) {
            0 => Ok(()),
            errno => Err(nix::errno::Errno::from_raw(errno)),
        })
        .collect()
}

fn c_path(step: &Step) -> CString {
    let (Step::Mknod(path, _) | Step::Read(path) | Step::ReadWrite(path)) = step;
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// One step: 0 or the errno.
fn take(step: &Step, path: &CString) -> i32 {
    // SAFETY: system calls on a valid C string; a descriptor opened is
    // closed at once.
    let result = unsafe {
        match step {
            Step::Mknod(_, device) => {
                let dev = libc::makedev(device.major, device.minor);
                libc::mknod(path.as_ptr(), device.kind | 0o600, dev)
            }
            Step::Read(_) | Step::ReadWrite(_) => {
                let flags = match step {
                    Step::Read(_) => libc::O_RDONLY,
                    _ => libc::O_RDWR,
                };
                let fd = libc::open(path.as_ptr(), flags | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::close(fd);
                }
                fd.min(0)
            }
        }
    };
    match result {
        0 => 0,
        _ => std::io::Error::last_os_error().raw_os_error().unwrap_or(-2),
    }
}

/// Docker's story in `dir`, by a process in `cgroup`: make a node for
/// `refused` and try to read it, read and write /dev/null, make a node for
/// /dev/null and read it, make /dev/fuse and read it. The outcomes, in that
/// order.
pub fn dockers_story(cgroup: &dyn Cgroup, dir: &Path, refused: Device) -> Vec<Outcome> {
    let (device, null, fuse) = (dir.join("device"), dir.join("null"), dir.join("fuse"));
    in_cgroup(
        cgroup,
        &[
            Step::Mknod(device.clone(), refused),
            Step::Read(device),
            Step::ReadWrite("/dev/null".into()),
            Step::Mknod(null.clone(), NULL),
            Step::ReadWrite(null),
            Step::Mknod(fuse.clone(), FUSE),
            Step::Read(fuse),
        ],
    )
}

/// What [`dockers_story`] comes to under Docker's default list: every
/// node can be made; the refused device and fuse cannot be opened.
pub const DOCKERS_ANSWERS: [Outcome; 7] = [
    Ok(()),
    Err(nix::errno::Errno::EPERM),
    Ok(()),
    Ok(()),
    Ok(()),
    Ok(()),
    Err(nix::errno::Errno::EPERM),
];

/// In a container of `env`'s (busybox in its store, default hardening):
/// a node for [`a_device_to_refuse`] can be made (Docker allows `mknod` of
/// anything), but not read (its device rules refuse it).
pub fn in_a_container_made_but_not_read(env: &harness::env::Env) {
    let device = a_device_to_refuse();
    let kind = if device.kind == libc::S_IFBLK {
        "b"
    } else {
        "c"
    };
    let script = format!(
        "mknod /device {kind} {} {} && echo made && head -c 1 /device >/dev/null && echo read",
        device.major, device.minor
    );
    let run = env
        .minibox(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            &script,
        ])
        .expect(1);
    assert_eq!(run.stdout, "made\n");
    assert_eq!(run.stderr, "head: /device: Operation not permitted\n");
}
