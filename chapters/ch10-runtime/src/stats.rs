//! A container's resource usage, read from its cgroup: what `docker stats`
//! shows.
//!
//! Chapter 5 wrote limits into a container's cgroup; the same directories
//! count what the container uses, all its processes together, whoever
//! started them: memory in bytes, processes, CPU time. Memory and processes
//! are levels, read once. CPU time is a counter that only grows, so a CPU %
//! takes two readings: how much it grew, over the time between them.
//!
//! v1 and v2 count the same things in files of other names, and v1 keeps
//! each controller's files in its own hierarchy: [`read`] looks for each file
//! in every directory of the container's cgroup.
//!
//! Network bytes are not the cgroup's but the network namespace's:
//! `/proc/PID/net/dev` lists the interfaces of process PID's namespace.
//!
//! On cgroup v2 a counter exists only where the container's cgroup was
//! handed its controller: chapter 5 hands memory, pids and cpu down to every
//! container, limit or not, as Docker does. A parent that holds processes (a
//! relative `--cgroup-parent` below minibox's own cgroup on a pure v2 host)
//! can hand none down: there memory and PIDs read as 0.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use ch05_cgroups::cgroup::{read_key, read_number};

/// One reading of a container's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The CPU time its processes used so far, user and system.
    pub cpu: Duration,
    /// The memory it uses, less the file cache the kernel can drop at will:
    /// Docker's MEM USAGE.
    pub memory: u64,
    /// Its memory limit; without one, the host's memory, as Docker shows it.
    pub limit: u64,
    /// How many tasks (processes and threads) it has.
    pub pids: u64,
    /// Bytes received and sent through its network interfaces, `lo` aside.
    pub net: (u64, u64),
}

impl Usage {
    /// MEM %: the memory it uses, over its limit.
    pub fn memory_percent(&self) -> f64 {
        if self.limit == 0 {
            return 0.0;
        }
        self.memory as f64 / self.limit as f64 * 100.0
    }
}

// ANCHOR: read
/// Reads the counters of a running container: its cgroup's directories
/// (its state's `cgroups`, one per v1 hierarchy, or v2's one) and, when it
/// has a network namespace of its own, that of its process `pid`.
/// `host_memory` stands for "no limit".
pub fn read(cgroups: &[PathBuf], pid: Option<i32>, host_memory: u64) -> Usage {
    let file = |name: &str| cgroups.iter().map(|d| d.join(name)).find(|p| p.exists());
    let number = |name: &str| file(name).and_then(|path| read_number(&path));
    let key = |name: &str, key: &str| file(name).and_then(|path| read_key(&path, key));
    let (usage, cache, limit, cpu) = match number("memory.usage_in_bytes") {
        // v1. No limit reads as a huge number: LONG_MAX, rounded to a page.
        Some(usage) => (
            usage,
            key("memory.stat", "total_inactive_file"),
            number("memory.limit_in_bytes"),
            number("cpuacct.usage").map(Duration::from_nanos),
        ),
        // v2. No limit is the word `max`, which reads as no number.
        None => (
            number("memory.current").unwrap_or(0),
            key("memory.stat", "inactive_file"),
            number("memory.max"),
            key("cpu.stat", "usage_usec").map(Duration::from_micros),
        ),
    };
    Usage {
        cpu: cpu.unwrap_or_default(),
        memory: usage.saturating_sub(cache.unwrap_or(0)),
        limit: limit.map_or(host_memory, |limit| limit.min(host_memory)),
        pids: number("pids.current").unwrap_or(0),
        net: pid.map(network_bytes).unwrap_or_default(),
    }
}
// ANCHOR_END: read

// ANCHOR: cpu_percent
/// CPU % between two readings `elapsed` apart: the CPU time used in
/// between, over the time that passed. One CPU busy all along is 100%; two
/// are 200%.
// SIMPLIFICATION: Docker divides by the growth of the host's CPU time (the
// first line of /proc/stat, all CPUs together) and multiplies by the number
// of CPUs, which comes to the same.
pub fn cpu_percent(before: &Usage, after: &Usage, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    after.cpu.saturating_sub(before.cpu).as_secs_f64() / elapsed.as_secs_f64() * 100.0
}
// ANCHOR_END: cpu_percent

/// The host's memory (`MemTotal` in /proc/meminfo, in KiB).
pub fn host_memory() -> Result<u64> {
    let text = fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let kib = text
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .context("no MemTotal in /proc/meminfo")?;
    Ok(kib * 1024)
}

/// Bytes received and sent by the interfaces of process `pid`'s network
/// namespace but `lo`: in /proc/PID/net/dev, after two lines of headers,
/// `eth0: RX-BYTES PACKETS ... TX-BYTES ...`, the first and ninth numbers.
fn network_bytes(pid: i32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    let mut total = (0, 0);
    for line in text.lines().skip(2) {
        let Some((name, numbers)) = line.split_once(':') else {
            continue;
        };
        let numbers: Vec<u64> = numbers
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        if name.trim() != "lo" && numbers.len() > 8 {
            total.0 += numbers[0];
            total.1 += numbers[8];
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake v1 container: a directory per hierarchy, as the state lists them.
    #[test]
    fn v1_files_are_found_in_their_hierarchy_and_no_limit_is_the_hosts_memory() {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = ["memory", "pids", "cpu", "cpuacct"]
            .iter()
            .map(|c| root.path().join(c))
            .collect();
        for dir in &dirs {
            fs::create_dir(dir).unwrap();
        }
        let write = |dir: usize, file: &str, text: &str| fs::write(dirs[dir].join(file), text);
        write(0, "memory.usage_in_bytes", "3000000\n").unwrap();
        write(0, "memory.stat", "cache 5\ntotal_inactive_file 1000000\n").unwrap();
        write(0, "memory.limit_in_bytes", "9223372036854771712\n").unwrap();
        write(1, "pids.current", "3\n").unwrap();
        write(3, "cpuacct.usage", "2500000000\n").unwrap();
        let usage = read(&dirs, None, 8 << 30);
        assert_eq!(usage.memory, 2_000_000);
        assert_eq!(usage.limit, 8 << 30);
        assert_eq!(usage.pids, 3);
        assert_eq!(usage.cpu, Duration::from_millis(2500));
        write(0, "memory.limit_in_bytes", "4000000\n").unwrap();
        assert_eq!(read(&dirs, None, 8 << 30).memory_percent(), 50.0);
    }

    #[test]
    fn v2_files_are_in_one_directory() {
        let dir = tempfile::tempdir().unwrap();
        let write = |file: &str, text: &str| fs::write(dir.path().join(file), text).unwrap();
        write("memory.current", "3000000\n");
        write("memory.stat", "anon 5\ninactive_file 1000000\n");
        write("memory.max", "max\n");
        write("pids.current", "2\n");
        write("cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n");
        let usage = read(&[dir.path().to_path_buf()], None, 8 << 30);
        assert_eq!(
            (usage.memory, usage.limit, usage.pids),
            (2_000_000, 8 << 30, 2)
        );
        let before = Usage::default();
        let percent = cpu_percent(&before, &usage, Duration::from_secs(3));
        assert!((percent - 50.0).abs() < 1e-9, "{percent}");
    }
}
