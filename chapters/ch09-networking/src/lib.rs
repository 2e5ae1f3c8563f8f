//! # Chapter 9: networking — a namespace, a veth pair, a bridge, NAT, ports
//!
//! Until now a container shared the host's network: its `ps` was its own, its
//! files were its own, but `ip addr` showed the host's interfaces and a
//! server inside listened on the host's ports. This chapter gives it a network
//! stack of its own, wired the way Docker's default bridge wires one:
//!
//! - a **network namespace** (`CLONE_NEWNET`): its own links, addresses,
//!   routes, firewall and port numbers, with only `lo` at first;
//! - a **veth pair**, a virtual cable, with one end in the container as
//!   `eth0` and the other plugged into the host's **bridge** `minibox0`, a
//!   virtual switch that carries the gateway address `172.29.0.1`;
//! - an **address** from the bridge's subnet, leased so that no two
//!   containers get the same one, and a default route through the gateway;
//! - **NAT**: forwarding and one MASQUERADE rule, so that the container
//!   reaches the outside world with the host's address;
//! - **published ports** (`-p 6379:6379`): a proxy on the host that forwards
//!   each connection to the container's address, as docker-proxy does;
//! - its own `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
//!
//! What changes over chapter 8: `run` takes `--network bridge|none|host`,
//! `-p`, `--dns`, `--dns-search`, `--dns-option` and `--add-host`, and
//! `network prune` is new. The recipe adds the network namespace to the clone,
//! gives the container its network between clone and release, mounts the
//! `/etc` files in the child, and takes the network apart after the end.
//!
//! Kernel interfaces: `network_namespaces(7)`, `setns(2)`, `rtnetlink(7)`
//! (`netlink(7)`), `veth(4)`, `flock(2)`, `proc(5)` (`/proc/PID/stat`, the
//! `ip_forward` sysctl), and `iptables(8)` for NAT.
//!
//! ## Layout
//!
//! - [`cli`]: the command line: chapter 8's `run` and the network flags.
//! - [`network`]: the concept: a container's network from flags to links,
//!   in three stages (prepare, attach, detach).
//! - [`netns`]: network namespaces held by a descriptor; running code in one.
//! - [`netlink`]: a synchronous rtnetlink client (links, addresses, routes).
//! - [`ipam`]: the subnet's address allocator, with leases in a locked file.
//! - [`publish`]: Docker's `-p` grammar.
//! - [`proxy`]: the userspace TCP/UDP proxy behind a published port.
//! - [`etc_files`]: `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
//! - [`nat`]: IP forwarding and outbound MASQUERADE in minibox's own chains.
//! - [`run`]: the recipe.

pub mod cli;
pub mod etc_files;
pub mod ipam;
pub mod nat;
pub mod netlink;
pub mod netns;
pub mod network;
pub mod proxy;
pub mod publish;
pub mod run;
