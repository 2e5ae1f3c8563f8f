//! Docker's resource flags, parsed and checked the way Docker does, so that a bad
//! value fails with one line before anything is created.
//!
//! | flag | Docker's rule | cgroup v1 file | cgroup v2 file |
//! |---|---|---|---|
//! | `--memory 32m` | binary units b/k/m/g; at least 6MB; 0 = unlimited | `memory.limit_in_bytes` | `memory.max` |
//! | (swap) | without `--memory-swap`, swap may be as large as memory | `memory.memsw.limit_in_bytes` = 2 × memory | `memory.swap.max` = memory |
//! | `--pids-limit 10` | 0 or -1 = unlimited | `pids.max` | `pids.max` |
//! | `--cpus 0.5` | 0.01 up to the number of CPUs; 0 = unlimited | `cpu.cfs_quota_us` / `cpu.cfs_period_us` | `cpu.max` = "quota period" |
//! | `--cpu-shares 512` | relative weight, 2 to 262144; 0 = default | `cpu.shares` | `cpu.weight` (converted) |

use anyhow::{Result, bail};

/// Docker's smallest memory limit.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The CFS period Docker uses for `--cpus`: 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The kernel's range for cgroup v1 `cpu.shares`.
pub const CPU_SHARES_RANGE: std::ops::RangeInclusive<u64> = 2..=262_144;

/// A CPU bandwidth limit: at most `quota_us` of CPU time every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// CPU time allowed per period, in microseconds (may exceed the period on
    /// several CPUs: 150000 per 100000 is one and a half CPUs).
    pub quota_us: u64,
    /// The period, in microseconds.
    pub period_us: u64,
}

/// The limits of one container, checked, in the units cgroup files use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Maximum number of processes (and threads) in the container.
    pub pids: Option<u64>,
    /// CPU bandwidth limit (`--cpus`).
    pub cpu_quota: Option<CpuQuota>,
    /// Relative CPU weight on the v1 scale (`--cpu-shares`).
    pub cpu_shares: Option<u64>,
}

// ANCHOR: parse_size
/// Parses a size the way Docker's `--memory` does: a number, optionally with a
/// fraction, then an optional unit (`b`, `k`, `m`, `g`, `t`; binary, so `k` is
/// 1024), optionally followed by `i` and `b` (`32m`, `32mb`, `1.5g`, `64MiB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size: '{text}'");
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(invalid()),
    };
    Ok((number * multiplier as f64) as u64)
}
// ANCHOR_END: parse_size

/// Parses `--cpus`: a decimal number of CPUs.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("failed to parse {text} as a rational number"))
}

/// The resource flags' values as the user gave them, before Docker's rules
/// are applied: each `None` when the flag was not given.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Requested {
    /// `--memory`, in bytes (0: no limit).
    pub memory: Option<u64>,
    /// `--pids-limit` (0 or -1: no limit).
    pub pids: Option<i64>,
    /// `--cpus`, a number of CPUs (0: no limit).
    pub cpus: Option<f64>,
    /// `--cpu-shares` (0: the default).
    pub cpu_shares: Option<u64>,
}

impl Limits {
    // ANCHOR: check
    /// Checks the flags' values with Docker's rules and converts them.
    /// `online_cpus` is how many CPUs this process may run on.
    pub fn new(requested: Requested, online_cpus: usize) -> Result<Limits> {
        let Requested {
            memory,
            pids,
            cpus,
            cpu_shares,
        } = requested;
        let memory = memory.filter(|&m| m > 0); // 0 means no limit
        if let Some(bytes) = memory
            && bytes < MIN_MEMORY
        {
            bail!("minimum memory limit allowed is 6MB");
        }
        let cpu_quota = match cpus {
            None => None,
            Some(0.0) => None, // 0 means no limit
            Some(n) if n < 0.01 || n > online_cpus as f64 => bail!(
                "range of CPUs is from 0.01 to {online_cpus}.00, as there are only {online_cpus} CPUs available"
            ),
            Some(n) => Some(CpuQuota {
                quota_us: (n * CPU_PERIOD_US as f64).round() as u64,
                period_us: CPU_PERIOD_US,
            }),
        };
        let cpu_shares = cpu_shares.filter(|&s| s > 0); // 0 means the default
        if let Some(shares) = cpu_shares
            && !CPU_SHARES_RANGE.contains(&shares)
        {
            bail!("--cpu-shares must be between 2 and 262144, or 0 for the default");
        }
        Ok(Limits {
            memory,
            pids: pids.filter(|&p| p > 0).map(|p| p as u64), // 0 and -1: no limit
            cpu_quota,
            cpu_shares,
        })
    }
    // ANCHOR_END: check

    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The limits in a few words, for narration: `memory 32MiB, pids 10, cpus 0.5`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(bytes) = self.memory {
            parts.push(format!("memory {}", format_bytes(bytes)));
        }
        if let Some(pids) = self.pids {
            parts.push(format!("pids {pids}"));
        }
        if let Some(q) = self.cpu_quota {
            parts.push(format!("cpus {}", q.quota_us as f64 / q.period_us as f64));
        }
        if let Some(shares) = self.cpu_shares {
            parts.push(format!("cpu-shares {shares}"));
        }
        if parts.is_empty() {
            "no limits".to_string()
        } else {
            parts.join(", ")
        }
    }
}

// ANCHOR: cpu_weight
/// cgroup v2's `cpu.weight` (1 to 10000, default 100) for a v1 `cpu.shares`
/// value (2 to 262144, default 1024), with the curve runc (1.3.2 on) and crun use:
/// a quadratic in log2(shares) that maps 2 to 1, 1024 to 100 and 262144 to
/// 10000, so that Docker's default shares give v2's default weight.
pub fn cpu_weight(shares: u64) -> u64 {
    let l = (shares.clamp(2, 262_144) as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}
// ANCHOR_END: cpu_weight

/// Bytes for people: `32MiB`, `1.5GiB`, `512KiB`, `100B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    let text = format!("{value:.1}");
    format!("{}{unit}", text.trim_end_matches(".0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_dockers() {
        assert_eq!(parse_size("32m"), Ok(32 << 20));
        assert_eq!(parse_size("32MB"), Ok(32 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("32x"), Err("invalid size: '32x'".into()));
        assert_eq!(parse_size("m"), Err("invalid size: 'm'".into()));
        assert_eq!(parse_size(""), Err("invalid size: ''".into()));
    }

    #[test]
    fn values_are_checked_with_dockers_rules() {
        let err = |r: Result<Limits>| r.unwrap_err().to_string();
        let none = Requested::default();
        let memory = Requested {
            memory: Some(4 << 20),
            ..none
        };
        assert_eq!(
            err(Limits::new(memory, 2)),
            "minimum memory limit allowed is 6MB"
        );
        let cpus = |n| Requested {
            cpus: Some(n),
            ..none
        };
        assert_eq!(
            err(Limits::new(cpus(3.0), 2)),
            "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert!(Limits::new(cpus(0.001), 2).is_err());
        let shares = Requested {
            cpu_shares: Some(1),
            ..none
        };
        assert!(Limits::new(shares, 2).is_err());

        let all = Requested {
            memory: Some(32 << 20),
            pids: Some(10),
            cpus: Some(0.5),
            cpu_shares: Some(512),
        };
        let limits = Limits::new(all, 2).unwrap();
        assert_eq!(limits.memory, Some(32 << 20));
        assert_eq!(limits.pids, Some(10));
        assert_eq!(
            limits.cpu_quota,
            Some(CpuQuota {
                quota_us: 50_000,
                period_us: 100_000
            })
        );
        assert_eq!(
            limits.describe(),
            "memory 32MiB, pids 10, cpus 0.5, cpu-shares 512"
        );
        // Zero (and -1 for pids) means "no limit", as in Docker.
        let zeros = Requested {
            memory: Some(0),
            pids: Some(-1),
            cpus: Some(0.0),
            cpu_shares: Some(0),
        };
        assert!(Limits::new(zeros, 2).unwrap().is_empty());
    }

    #[test]
    fn shares_map_to_weights_like_current_runc() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 100);
        assert_eq!(cpu_weight(512), 59);
        assert_eq!(cpu_weight(262_144), 10_000);
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(format_bytes(32 << 20), "32MiB");
        assert_eq!(format_bytes(3 << 29), "1.5GiB");
        assert_eq!(format_bytes(100), "100B");
    }
}
