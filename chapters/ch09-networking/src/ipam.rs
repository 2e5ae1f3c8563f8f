//! IP address management: which address of the bridge's subnet each
//! container gets.
//!
//! The subnet (default `172.29.0.0/16`) has its network address (`.0`), the
//! gateway (`.1`, on the bridge) and its broadcast address reserved; every
//! other address can be leased to one container. Leases live in a JSON file in
//! a state directory, one file per subnet, so that separate `minibox run`
//! processes, which share no memory, never hand out the same address:
//!
//! - every read-modify-write of the file happens under an exclusive `flock(2)`
//!   on a lock file beside it, and the new file replaces the old one by
//!   `rename(2)`, so a reader never sees half a file;
//! - each lease names its holder: the PID of the process that keeps the
//!   container's network alive and that process's start time (field 22 of
//!   `/proc/PID/stat`, in clock ticks since boot). A PID alone is not enough:
//!   PIDs are reused, and a new process with an old PID must not keep a dead
//!   container's address. When a holder is gone (no such PID, or a different
//!   start time, or a zombie) its lease is reclaimed by the next allocation,
//!   which is how an address comes back after `kill -9` of minibox.
//!
//! A subnet must not overlap a network the host already routes to (its LAN,
//! a VPN): the host would no longer know which way to send those packets.
//! [`check_overlap`] compares the subnet with the main routing table.
//!
//! There is no `ip` equivalent: address management is bookkeeping in user
//! space. The kernel only learns the result (`ip addr add` in
//! [`crate::netlink`]).
// SIMPLIFICATION: Docker's IPAM keeps its state in the daemon's memory and its
// bolt database, and netavark in a boltdb file guarded by a lock; both also
// manage IPv6 and user-defined networks. One JSON file per subnet is enough
// for one default bridge.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::netlink::Route;

/// The subnet of minibox's bridge when none is configured, as Docker's is
/// `172.17.0.0/16`. 172.29 keeps clear of Docker's pools on the same host.
pub const DEFAULT_SUBNET: &str = "172.29.0.0/16";

/// An IPv4 subnet: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits all zero).
    pub network: Ipv4Addr,
    /// The prefix length, 0..=30 (a /31 or /32 has no room for a container).
    pub prefix_len: u8,
}

impl FromStr for Subnet {
    type Err = anyhow::Error;

    /// Parses `A.B.C.D/LEN`, refusing host bits (`172.29.0.1/16`) as Docker
    /// does, so that a typo is not silently "corrected".
    fn from_str(s: &str) -> Result<Self> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| anyhow!("invalid subnet {s}: expected ADDRESS/PREFIX"))?;
        let network: Ipv4Addr = addr
            .parse()
            .map_err(|_| anyhow!("invalid subnet {s}: bad address {addr}"))?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 30)
            .ok_or_else(|| anyhow!("invalid subnet {s}: prefix length must be 0 to 30"))?;
        let subnet = Subnet {
            network,
            prefix_len,
        };
        if u32::from(network) & !subnet.mask() != 0 {
            bail!(
                "invalid subnet {s}: host bits set (the network is {}/{prefix_len})",
                subnet.network_of(network)
            );
        }
        Ok(subnet)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl Subnet {
    /// The netmask as a number (`/16` -> `0xffff0000`).
    fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len)
        }
    }

    /// `addr` with its host bits cleared.
    fn network_of(&self, addr: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(addr) & self.mask())
    }

    /// The gateway: the first address after the network address, which the
    /// bridge carries.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The broadcast address (host bits all one).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// Whether `addr` lies in the subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.network_of(addr) == self.network
    }

    /// Whether two networks share an address: one contains the other's
    /// network address under the shorter of the two prefixes.
    pub fn overlaps(&self, network: Ipv4Addr, prefix_len: u8) -> bool {
        let shorter = Subnet {
            network: self.network,
            prefix_len: self.prefix_len.min(prefix_len),
        };
        shorter.network_of(self.network) == shorter.network_of(network)
    }

    /// The addresses a container may get: after the gateway, before the
    /// broadcast address.
    fn leasable(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        (u32::from(self.network) + 2..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }
}

/// Refuses `subnet` when it overlaps a route of the host's main table.
///
/// The default route (`0.0.0.0/0`) overlaps everything and is ignored, as are
/// routes through `own_bridge` (the connected route the bridge's own address
/// made on a previous run). `routes` comes from
/// [`crate::netlink::Netlink::ipv4_routes`] in the namespace that plays the
/// host (`ip -4 route show`).
pub fn check_overlap(subnet: &Subnet, routes: &[Route], own_bridge: Option<u32>) -> Result<()> {
    for route in routes {
        if route.prefix_len == 0 || (own_bridge.is_some() && route.oif == own_bridge) {
            continue;
        }
        if subnet.overlaps(route.destination, route.prefix_len) {
            bail!(
                "subnet {subnet} overlaps the host's route to {}/{}",
                route.destination,
                route.prefix_len
            );
        }
    }
    Ok(())
}

/// The process that holds a lease: while it lives, the address is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's PID.
    pub pid: i32,
    /// The holder's start time in clock ticks since boot (`/proc/PID/stat`
    /// field 22), which tells a reused PID from the original process.
    pub start_time: u64,
}

impl Holder {
    /// The calling process.
    pub fn current() -> Result<Self> {
        let pid = std::process::id() as i32;
        Self::of(pid)?.ok_or_else(|| anyhow!("read /proc/{pid}/stat: no such process"))
    }

    /// Process `pid`, or `None` when there is no such process (or only its
    /// zombie, which holds nothing any more).
    pub fn of(pid: i32) -> Result<Option<Self>> {
        let path = format!("/proc/{pid}/stat");
        let stat = match fs::read_to_string(&path) {
            Ok(stat) => stat,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("read {path}")),
        };
        // The command name (field 2) is in parentheses and may itself hold
        // spaces and parentheses: the fields after it start after the last ')'.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| anyhow!("parse {path}: no ')'"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state); field 22 (starttime) is index 19.
        let state = fields.first().copied().unwrap_or("");
        if state == "Z" || state == "X" {
            return Ok(None);
        }
        let start_time = fields
            .get(19)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow!("parse {path}: no start time in field 22"))?;
        Ok(Some(Holder { pid, start_time }))
    }

    // ANCHOR: is_alive
    /// Whether this exact process still runs (same PID, same start time).
    pub fn is_alive(&self) -> bool {
        matches!(Holder::of(self.pid), Ok(Some(now)) if now == *self)
    }
    // ANCHOR_END: is_alive
}

/// One leased address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The address.
    pub address: Ipv4Addr,
    /// Who uses it (a container id), for people reading the file.
    pub owner: String,
    /// The process whose life the lease lasts.
    pub holder: Holder,
}

/// The lease file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LeaseFile {
    /// The subnet the leases belong to (also in the file's name).
    subnet: String,
    /// Current leases, in allocation order.
    leases: Vec<Lease>,
}

/// The allocator for one subnet, with its leases under `state_dir`.
#[derive(Debug, Clone)]
pub struct Ipam {
    /// The subnet addresses come from.
    subnet: Subnet,
    /// `STATE_DIR/leases-172.29.0.0-16.json`.
    file: PathBuf,
    /// `STATE_DIR/leases-172.29.0.0-16.lock`, the file `flock` is taken on.
    lock: PathBuf,
}

impl Ipam {
    /// An allocator for `subnet` keeping its leases in `state_dir` (created
    /// if missing; a recipe passes the runtime state directory, e.g.
    /// `/run/minibox/ipam`).
    pub fn new(state_dir: &Path, subnet: Subnet) -> Result<Self> {
        fs::create_dir_all(state_dir).with_context(|| format!("create {}", state_dir.display()))?;
        let stem = format!("leases-{}-{}", subnet.network, subnet.prefix_len);
        Ok(Self {
            subnet,
            file: state_dir.join(format!("{stem}.json")),
            lock: state_dir.join(format!("{stem}.lock")),
        })
    }

    /// The subnet this allocator hands out.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    // ANCHOR: allocate
    /// Leases the lowest free address to `owner`, held while `holder` lives.
    /// Leases whose holder died are reclaimed first.
    pub fn allocate(&self, owner: &str, holder: Holder) -> Result<Ipv4Addr> {
        self.update(|file| {
            file.leases.retain(|l| l.holder.is_alive());
            let used: std::collections::HashSet<Ipv4Addr> =
                file.leases.iter().map(|l| l.address).collect();
            let address = self
                .subnet
                .leasable()
                .find(|a| !used.contains(a))
                .ok_or_else(|| anyhow!("no free address left in {}", self.subnet))?;
            file.leases.push(Lease {
                address,
                owner: owner.to_owned(),
                holder,
            });
            Ok(address)
        })
    }
    // ANCHOR_END: allocate

    /// Gives `address` back. Releasing an address that is not leased is not
    /// an error, so cleanup can run twice.
    pub fn release(&self, address: Ipv4Addr) -> Result<()> {
        self.update(|file| {
            file.leases.retain(|l| l.address != address);
            Ok(())
        })
    }

    /// The current leases, dead holders included (for inspection and tests).
    pub fn leases(&self) -> Result<Vec<Lease>> {
        self.update(|file| Ok(file.leases.clone()))
    }

    /// Runs `change` on the lease file under the lock, then writes the file
    /// back atomically.
    fn update<T>(&self, change: impl FnOnce(&mut LeaseFile) -> Result<T>) -> Result<T> {
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .with_context(|| format!("open {}", self.lock.display()))?;
        // The lock is released when `_lock` is dropped (the descriptor
        // closes), on every path out of this function.
        let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .with_context(|| format!("flock {}", self.lock.display()))?;
        let mut file = match fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("parse {}", self.file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LeaseFile::default(),
            Err(e) => return Err(e).with_context(|| format!("read {}", self.file.display())),
        };
        file.subnet = self.subnet.to_string();
        let out = change(&mut file)?;
        let mut bytes = serde_json::to_vec_pretty(&file).context("serialize leases")?;
        bytes.push(b'\n');
        // One write, and no fsync: the rename makes the change atomic for
        // every other minibox, which is what matters. After a crash of the
        // machine every holder is dead and every lease is free anyway, so a
        // write lost with the page cache loses nothing (and an fsync costs
        // milliseconds per start on a busy disk).
        let tmp = self.file.with_extension("json.tmp");
        fs::write(&tmp, &bytes).with_context(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, &self.file)
            .with_context(|| format!("rename {} to {}", tmp.display(), self.file.display()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! The subnet arithmetic and the overlap rule, without the kernel.

    use super::*;

    fn route(dst: &str, len: u8, oif: u32) -> Route {
        Route {
            destination: dst.parse().unwrap(),
            prefix_len: len,
            oif: Some(oif),
        }
    }

    #[test]
    fn subnet_parses_and_knows_its_addresses() {
        let s: Subnet = DEFAULT_SUBNET.parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 29, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(172, 29, 255, 255));
        assert!(s.contains(Ipv4Addr::new(172, 29, 3, 4)));
        assert!(!s.contains(Ipv4Addr::new(172, 30, 0, 1)));
        assert_eq!(s.leasable().next(), Some(Ipv4Addr::new(172, 29, 0, 2)));
        assert_eq!(s.leasable().count(), 65536 - 3);
        let err = "172.29.0.1/16".parse::<Subnet>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid subnet 172.29.0.1/16: host bits set (the network is 172.29.0.0/16)"
        );
        assert!("172.29.0.0/31".parse::<Subnet>().is_err());
        assert!("172.29.0.0".parse::<Subnet>().is_err());
    }

    #[test]
    fn overlap_with_a_host_route_is_refused() {
        let s: Subnet = "10.20.0.0/16".parse().unwrap();
        let routes = [
            route("0.0.0.0", 0, 2),      // the default route: ignored
            route("192.168.1.0", 24, 2), // the LAN: no overlap
        ];
        check_overlap(&s, &routes, None).unwrap();
        let wider = [route("10.0.0.0", 8, 3)];
        assert_eq!(
            check_overlap(&s, &wider, None).unwrap_err().to_string(),
            "subnet 10.20.0.0/16 overlaps the host's route to 10.0.0.0/8"
        );
        let narrower = [route("10.20.5.0", 24, 3)];
        assert!(check_overlap(&s, &narrower, None).is_err());
        // The bridge's own connected route, from an earlier run, is ours.
        let own = [route("10.20.0.0", 16, 7)];
        check_overlap(&s, &own, Some(7)).unwrap();
        assert!(check_overlap(&s, &own, Some(8)).is_err());
    }
}
