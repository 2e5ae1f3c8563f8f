//! Measuring, for every benchmark that runs commands: rounds of runs (each
//! peer once per round, in a fresh directory, so that a change in background
//! load hits them all alike), each run timed from spawn to exit with its peak
//! RSS and checked to have exited 0; what the samples add up to (median and
//! percentiles); the working directory, which leaves nothing behind (no
//! files, no mounts); and a directory on a tmpfs for minibox's runtime state.

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::shell;

/// One measured run of one tool.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    /// From starting the first command to the last one's exit.
    pub(super) time: Duration,
    /// The largest peak RSS of the commands, when they ran as child processes.
    pub(super) rss: Option<u64>,
}

/// Two runs' times added up, and the larger peak RSS: one sample of a
/// sequence of commands.
pub(super) fn sum(a: Sample, b: Sample) -> Sample {
    Sample {
        time: a.time + b.time,
        rss: a.rss.max(b.rss),
    }
}

/// Runs the tool once, with the directory given (fresh and empty) for
/// everything the run writes.
pub(super) type RunOnce<'a> = Box<dyn Fn(&Path) -> Result<Sample> + 'a>;

/// A tool being measured: how to run it once in a fresh directory, and what it
/// measured so far.
pub(super) struct Peer<'a> {
    pub(super) name: &'static str,
    pub(super) run: RunOnce<'a>,
    /// Whether a failure is a finding (minibox) or only means this peer cannot
    /// run on this machine (podman, say), in which case it is left out.
    pub(super) required: bool,
    pub(super) samples: Vec<Sample>,
}

impl Peer<'_> {
    /// A peer with no samples yet.
    pub(super) fn new<'a>(name: &'static str, required: bool, run: RunOnce<'a>) -> Peer<'a> {
        Peer {
            name,
            run,
            required,
            samples: Vec::new(),
        }
    }

    /// The median of the measured times (the upper one of an even count).
    pub(super) fn median(&self) -> Duration {
        self.percentile(50)
    }

    /// The `p`th percentile of the measured times, by nearest rank: 0 is the
    /// fastest run, 100 the slowest.
    pub(super) fn percentile(&self, p: usize) -> Duration {
        let mut times: Vec<Duration> = self.samples.iter().map(|s| s.time).collect();
        times.sort();
        let last = times.len().saturating_sub(1);
        times
            .get((last * p).div_ceil(100).min(last))
            .copied()
            .unwrap_or_default()
    }
}

/// The median of the peer called `name` among `peers`, if it ran.
pub(super) fn median_of(peers: &[Peer], name: &str) -> Option<Duration> {
    peers.iter().find(|p| p.name == name).map(Peer::median)
}

/// The warm-up round and `runs` measured ones: each peer once per round, each
/// in a fresh directory below `work`, in an order shuffled each round (see
/// [`order`]). Peers that cannot run here are dropped after the warm-up,
/// saying why.
pub(super) fn rounds(peers: &mut Vec<Peer>, work: &WorkDir, runs: usize) -> Result<()> {
    for round in 0..=runs {
        let warm_up = round == 0;
        eprintln!(
            "xtask: {}",
            if warm_up {
                "warm-up round".to_string()
            } else {
                format!("round {round} of {runs}")
            }
        );
        let mut failed = Vec::new();
        for index in order(peers.len(), round) {
            let peer = &mut peers[index];
            let dir = work.path.join(format!("{index}-{round}"));
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let result = (peer.run)(&dir);
            work.remove(&dir)?;
            // What the run wrote and what removing it freed (blocks to discard,
            // on a filesystem mounted with `discard`) goes to disk now, untimed,
            // so the next tool does not pay for this one's leftovers.
            sync_filesystem(&work.path)?;
            match result {
                Ok(sample) if !warm_up => peer.samples.push(sample),
                Ok(_) => {}
                // A peer that cannot run here at all says why once and is left
                // out; one that worked before and fails now is a real failure.
                Err(err) if warm_up && !peer.required => {
                    println!("{}: cannot run here, left out: {err:#}", peer.name);
                    failed.push(index);
                }
                Err(err) => return Err(err.context(format!("{} failed", peer.name))),
            }
        }
        failed.sort();
        for index in failed.into_iter().rev() {
            peers.remove(index);
        }
    }
    Ok(())
}

/// The order of `count` peers in round `round`, shuffled: what a run leaves
/// the machine busy with after it exits (the kernel tearing down its
/// namespaces and mounts, a helper process finishing) falls on whichever peer
/// runs next, so no peer may always run right after the same one. A
/// Fisher–Yates shuffle driven by xorshift from a fixed seed: the same orders
/// every time the benchmark runs.
fn order(count: usize, round: usize) -> Vec<usize> {
    let mut state =
        0x9E37_79B9_7F4A_7C15_u64 ^ (round as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut order: Vec<usize> = (0..count).collect();
    for i in (1..count).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// syncfs(2) on the filesystem that holds `dir`.
fn sync_filesystem(dir: &Path) -> Result<()> {
    let handle = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&handle)) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("syncing the filesystem of {}", dir.display()));
    }
    Ok(())
}

/// Runs `command` to completion with stdin from /dev/null and its output in
/// files in `dir`; returns the time from spawn to exit and the peak RSS
/// (`ru_maxrss` of the rusage wait4(2) reports for the child). Fails, showing
/// the output, unless it exits 0.
///
/// std starts children with posix_spawn(3), whose child shares this process's
/// memory until it execs; at exec the kernel records this process's peak RSS as
/// the child's starting peak. So our own peak is first reset to what we use now
/// (small: the image is on disk, not in memory), and the benchmark reports that
/// inherited amount, measured with `true`, beside the table.
pub(super) fn run_measured(command: &mut Command, dir: &Path, name: &str) -> Result<Sample> {
    fs::write("/proc/self/clear_refs", "5").context("resetting our own peak RSS")?;
    let stdout_path = dir.join(format!("{name}.stdout"));
    let stderr_path = dir.join(format!("{name}.stderr"));
    let stdout = File::create(&stdout_path).context("creating the stdout file")?;
    let stderr = File::create(&stderr_path).context("creating the stderr file")?;
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let shown = shell::show(command);
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut raw_status = 0;
    // SAFETY: rusage is a plain C struct of integers, for which all zeroes is a
    // valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types, and `pid`
        // is our own child, which nothing else waits for (std's Child does not
        // wait on drop).
        let ret = unsafe { libc::wait4(pid, &mut raw_status, 0, &mut usage) };
        if ret == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("waiting for `{shown}`"));
        }
    }
    let time = start.elapsed();
    let status = ExitStatus::from_raw(raw_status);
    if !status.success() {
        let out = fs::read_to_string(&stdout_path).unwrap_or_default();
        let err = fs::read_to_string(&stderr_path).unwrap_or_default();
        bail!("`{shown}` failed ({status})\n--- stdout\n{out}--- stderr\n{err}");
    }
    // Linux reports ru_maxrss in KiB.
    let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    Ok(Sample {
        time,
        rss: Some(rss),
    })
}

/// The benchmark's working directory, emptied when created and removed when
/// dropped, whatever happened in between.
pub(super) struct WorkDir {
    pub(super) path: PathBuf,
}

impl WorkDir {
    pub(super) fn create(path: PathBuf) -> Result<WorkDir> {
        let work = WorkDir { path };
        work.remove(&work.path)?;
        fs::create_dir_all(&work.path)
            .with_context(|| format!("creating {}", work.path.display()))?;
        Ok(work)
    }

    /// Removes `dir` (inside the working directory), unmounting first whatever
    /// is mounted below it: only mounts a tool we started made there (podman's
    /// overlay driver may leave its storage directory bind-mounted), never any
    /// other.
    fn remove(&self, dir: &Path) -> Result<()> {
        assert!(dir.starts_with(&self.path), "only our own directories");
        for mount in mounts_below(dir)? {
            let path = std::ffi::CString::new(mount.as_os_str().as_encoded_bytes())
                .context("a mount point with a NUL byte")?;
            // SAFETY: `path` is a valid NUL-terminated string for the call's
            // duration. MNT_DETACH, because a busy mount must still go.
            if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("unmounting {}", mount.display()));
            }
        }
        match fs::remove_dir_all(dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing {}", dir.display()))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(err) = self.remove(&self.path) {
            eprintln!("xtask: cleaning up: {err:#}");
        }
    }
}

/// A directory of the benchmark's in `/dev/shm`, the tmpfs every Linux host
/// has, removed with everything in it when this is dropped. minibox keeps its
/// runtime state (`MINIBOX_RUN`) there in the benchmarks, as `/run/minibox` is
/// on a tmpfs on the hosts minibox is made for (this machine's `/run` is on
/// its disk).
pub(super) struct TmpfsDir(pub(super) PathBuf);

impl TmpfsDir {
    pub(super) fn create(name: &str) -> Result<TmpfsDir> {
        let dir = Path::new("/dev/shm").join(name);
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TmpfsDir(dir))
    }
}

impl Drop for TmpfsDir {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.0) {
            eprintln!("xtask: could not remove {}: {err}", self.0.display());
        }
    }
}

/// The mount points at or below `dir`, deepest first (the order to unmount
/// them in), from /proc/self/mountinfo.
fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let info = fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount| mount.starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    Ok(mounts)
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::order;

    #[test]
    fn each_round_runs_every_peer_once_and_no_peer_always_follows_the_same_one() {
        for round in 0..=30 {
            let mut seen = order(7, round);
            seen.sort();
            assert_eq!(seen, (0..7).collect::<Vec<_>>(), "round {round}");
        }
        let mut before_first: Vec<usize> = (1..=30)
            .filter_map(|round| {
                let order = order(7, round);
                let at = order.iter().position(|&peer| peer == 0)?;
                Some(order[at.checked_sub(1)?])
            })
            .collect();
        before_first.sort();
        before_first.dedup();
        assert!(before_first.len() >= 4, "{before_first:?}");
        assert_eq!(order(1, 5), [0]);
        assert_eq!(order(0, 5), Vec::<usize>::new());
    }
}
