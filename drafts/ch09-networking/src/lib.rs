//! Chapter 9's concept modules, as a draft outside the workspace.
//!
//! Chapter 9 gives a container a network: its own network namespace, a veth
//! pair whose host end sits on the bridge `minibox0`, an address from the
//! bridge's subnet, a default route through the bridge, outbound NAT, and
//! published ports through a userspace proxy. This crate holds the concepts,
//! each callable from a recipe with everything it needs passed in (namespace
//! descriptors, names, subnets, state directories); the chapter crate, its CLI
//! and its recipe wire them in later.
//!
//! Kernel interfaces: `network_namespaces(7)`, `setns(2)`, `rtnetlink(7)`
//! (`netlink(7)`), `veth(4)`, `flock(2)`, `proc(5)` (`/proc/PID/stat`),
//! `iptables(8)`.
//!
//! # Layout
//!
//! - [`netns`]: network namespaces held by a descriptor; running code in one.
//! - [`netlink`]: a synchronous rtnetlink client (links, addresses, routes).
//! - [`ipam`]: the subnet's address allocator, with leases in a locked file.
//! - [`publish`]: Docker's `-p` grammar.
//! - [`proxy`]: the userspace TCP/UDP proxy behind a published port.
//! - [`etc_files`]: `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
//! - [`nat`]: IP forwarding and outbound MASQUERADE in minibox's own chains.

pub mod etc_files;
pub mod ipam;
pub mod nat;
pub mod netlink;
pub mod netns;
pub mod proxy;
pub mod publish;
