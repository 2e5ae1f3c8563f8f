//! A small synchronous rtnetlink client: links, addresses and routes.
//!
//! `ip link`, `ip addr` and `ip route` are front ends to one kernel interface:
//! *rtnetlink* (`rtnetlink(7)`), messages on an `AF_NETLINK` socket of protocol
//! `NETLINK_ROUTE`. Each request is a `struct nlmsghdr` (length, type, flags,
//! sequence number) followed by a fixed header for its family
//! (`struct ifinfomsg` for links, `ifaddrmsg` for addresses, `rtmsg` for
//! routes) and a list of attributes (`IFLA_*`, `IFA_*`, `RTA_*`). We ask the
//! kernel to acknowledge every request (`NLM_F_ACK`); the answer is an
//! `NLMSG_ERROR` message whose error code is 0 for success or a negative
//! errno, which [`Netlink`] turns into words:
//! `RTM_NEWLINK minibox0: File exists (EEXIST)`.
//!
//! The crate `netlink-packet-route` encodes and decodes the messages; the flow
//! (which message, which flags, waiting for the ACK) is written out here.
//!
//! | method | message | `ip` equivalent |
//! |---|---|---|
//! | [`Netlink::ensure_bridge`] | the three below, `EEXIST` accepted | `ip link add ... type bridge; ip addr add ...; ip link set ... up` |
//! | [`Netlink::create_bridge`] | `RTM_NEWLINK` + `IFLA_INFO_KIND "bridge"` | `ip link add NAME type bridge` |
//! | [`Netlink::create_veth`] | `RTM_NEWLINK` + `IFLA_INFO_KIND "veth"` + `VETH_INFO_PEER` | `ip link add NAME type veth peer name PEER` |
//! | [`Netlink::create_veth_into`] | the same, the peer carrying `IFLA_NET_NS_FD` | `ip link add NAME type veth peer name PEER netns NS` |
//! | [`Netlink::set_master`] | `RTM_NEWLINK` + `IFLA_MASTER` | `ip link set NAME master BRIDGE` |
//! | [`Netlink::move_to_netns`] | `RTM_NEWLINK` + `IFLA_NET_NS_FD` | `ip link set NAME netns NS` |
//! | [`Netlink::rename`] | `RTM_NEWLINK` (by index) + `IFLA_IFNAME` | `ip link set OLD name NEW` |
//! | [`Netlink::set_up`] | `RTM_NEWLINK` with `IFF_UP` in flags and change mask | `ip link set NAME up` |
//! | [`Netlink::add_address`] | `RTM_NEWADDR` + `IFA_LOCAL`, `IFA_ADDRESS` | `ip addr add ADDR/LEN dev NAME` |
//! | [`Netlink::add_default_route`] | `RTM_NEWROUTE` + `RTA_GATEWAY` | `ip route add default via GW` |
//! | [`Netlink::links`], [`Netlink::link_index`] | `RTM_GETLINK` (dump) | `ip -o link` |
//! | [`Netlink::ipv4_routes`] | `RTM_GETROUTE` (dump) | `ip -4 route show table main` |
//! | [`Netlink::delete_link`] | `RTM_DELLINK` | `ip link del NAME` |
//!
//! # Which namespace a request changes
//!
//! A netlink socket talks to the network namespace it was *created* in, for
//! its whole life. To configure the inside of a container (`eth0`'s address,
//! its default route, `lo`), [`Netlink::open_in`] creates the socket on a
//! short-lived thread that has joined the container's namespace with
//! `setns(2)` (see [`crate::netns::run_in`]). We chose a thread over a forked
//! child because the socket can then be used from the calling thread with
//! ordinary `Result`s, errors need no pipe back to a parent, and a thread
//! costs a few microseconds where a fork of a large process costs far more.
//! The thread never runs anything but the `socket(2)` call, so the usual
//! hazard of per-thread namespaces (other code running on a thread that is
//! unexpectedly in the wrong namespace) cannot arise.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::{Context, Result, bail};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::errno::Errno;

/// A link as a dump reports it: enough to find, check and clean up links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The kernel's interface index (`ifindex`), stable for the link's life.
    pub index: u32,
    /// The interface name (`IFLA_IFNAME`), at most 15 bytes.
    pub name: String,
    /// The index of the bridge the link is attached to (`IFLA_MASTER`).
    pub master: Option<u32>,
    /// Whether the administrative `IFF_UP` flag is set.
    pub up: bool,
}

/// An IPv4 route of the main table, as the subnet-overlap check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (`0.0.0.0` for the default route).
    pub destination: Ipv4Addr,
    /// Destination prefix length (0 for the default route).
    pub prefix_len: u8,
    /// Output interface index (`RTA_OIF`), when the route names one.
    pub oif: Option<u32>,
}

/// A synchronous rtnetlink socket bound to one network namespace.
///
/// Each request carries a new sequence number and waits for its own answer
/// before returning, so there is never more than one request in flight.
pub struct Netlink {
    /// The `NETLINK_ROUTE` socket, connected to the kernel (port 0).
    socket: Socket,
    /// The sequence number of the last request; the kernel echoes it in the
    /// answer, which is how an answer is matched to its request.
    seq: u32,
}

impl std::os::fd::AsRawFd for Netlink {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}

impl Netlink {
    /// Opens an rtnetlink socket in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).context("socket(AF_NETLINK, NETLINK_ROUTE)")?;
        socket.bind_auto().context("bind netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("connect netlink socket to the kernel")?;
        Ok(Self { socket, seq: 0 })
    }

    /// Opens an rtnetlink socket inside the network namespace `netns` (a
    /// descriptor of `/proc/PID/ns/net`), without moving the calling thread.
    ///
    /// See the module docs for why a thread and not a fork.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Self> {
        crate::netns::run_in(netns, Self::open)
    }

    /// Creates a bridge named `name` (`ip link add NAME type bridge`).
    ///
    /// `NLM_F_EXCL` makes an existing link of that name an error (`EEXIST`)
    /// instead of a silent success, so the caller knows whether it made the
    /// bridge (and therefore whether to configure it).
    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            "RTM_NEWLINK",
            name,
        )
    }

    /// Makes sure the bridge `name` exists, carries `gateway/prefix_len` and
    /// is up; returns whether this call created it.
    ///
    /// This is the bridge's "created on first use, then reused": every
    /// container start calls it, and two starts racing each other both
    /// succeed, because an `EEXIST` answer to the creation or to the address
    /// means another start got there first, which is all we wanted.
    pub fn ensure_bridge(&mut self, name: &str, gateway: Ipv4Addr, prefix_len: u8) -> Result<bool> {
        let created = match self.create_bridge(name) {
            Ok(()) => true,
            Err(e) if is_errno(&e, Errno::EEXIST) => false,
            Err(e) => return Err(e),
        };
        match self.add_address(name, gateway, prefix_len) {
            Ok(()) => {}
            Err(e) if is_errno(&e, Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        self.set_up(name)?;
        Ok(created)
    }

    /// Creates a veth pair `name` <-> `peer`
    /// (`ip link add NAME type veth peer name PEER`).
    ///
    /// A veth pair is a virtual cable: a frame sent into one end comes out of
    /// the other. Both ends start in this socket's namespace, down; the
    /// container's end is then moved with [`Netlink::move_to_netns`] and
    /// renamed with [`Netlink::rename`].
    pub fn create_veth(&mut self, name: &str, peer: &str) -> Result<()> {
        self.new_veth(name, (peer, None), None, None)
    }

    /// Creates a veth pair whose `peer` end is born inside the network
    /// namespace `peer_netns`, already with its final name
    /// (`ip link add NAME type veth peer name eth0 netns NS`).
    ///
    /// This is what netavark and runc's libnetwork do. It saves the move,
    /// which is by far the slowest step: moving a link out of a namespace
    /// waits for an RCU grace period (`synchronize_net()` in the kernel's
    /// `dev_change_net_namespace`), tens of milliseconds on a busy machine,
    /// while creating the end in place waits for nothing.
    pub fn create_veth_into(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
    ) -> Result<()> {
        self.new_veth(name, (peer, None), Some(peer_netns), None)
    }

    /// [`Netlink::create_veth_into`], with this end attached to `bridge` by
    /// the same message (`IFLA_MASTER`), and the peer's MAC address derived
    /// from the address it will have (`IFLA_ADDRESS`): one request for the
    /// whole cable (`ip link add NAME master BRIDGE type veth peer name eth0
    /// address 02:42:ac:1d:00:02 netns NS`).
    ///
    /// The MAC address follows from the IP address, as Docker makes them
    /// (`02:42` and the four bytes of the IPv4 address), so that when an
    /// address is leased again to a new container, the host's neighbour
    /// (ARP) cache, which still maps it to the old container's MAC address
    /// for a while, is already right.
    pub fn create_veth_on_bridge(
        &mut self,
        name: &str,
        bridge: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        peer_ip: Ipv4Addr,
    ) -> Result<()> {
        let master = self.require_index(bridge)?;
        let [a, b, c, d] = peer_ip.octets();
        let mac = vec![0x02, 0x42, a, b, c, d];
        self.new_veth(name, (peer, Some(mac)), Some(peer_netns), Some(master))
    }

    // ANCHOR: new_veth
    /// Sends the `RTM_NEWLINK` of kind veth; the peer is described by a whole
    /// nested link message (`VETH_INFO_PEER`), which may carry its own
    /// `IFLA_NET_NS_FD` and `IFLA_ADDRESS`; this end may carry `IFLA_MASTER`,
    /// its bridge.
    fn new_veth(
        &mut self,
        name: &str,
        (peer, peer_mac): (&str, Option<Vec<u8>>),
        peer_netns: Option<BorrowedFd<'_>>,
        master: Option<u32>,
    ) -> Result<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_owned()));
        if let Some(mac) = peer_mac {
            peer_msg.attributes.push(LinkAttribute::Address(mac));
        }
        if let Some(netns) = peer_netns {
            peer_msg
                .attributes
                .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        if let Some(master) = master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            "RTM_NEWLINK",
            &format!("{name} (veth peer {peer})"),
        )
    }
    // ANCHOR_END: new_veth

    /// Attaches link `name` to the bridge `bridge`
    /// (`ip link set NAME master BRIDGE`).
    pub fn set_master(&mut self, name: &str, bridge: &str) -> Result<()> {
        let master = self.require_index(bridge)?;
        self.set_link(name, vec![LinkAttribute::Controller(master)])
    }

    /// Moves link `name` into the network namespace `netns`
    /// (`ip link set NAME netns NS`).
    ///
    /// The link disappears from this namespace; in the target it keeps its
    /// name (which must be free there) and is down. Addresses do not follow.
    pub fn move_to_netns(&mut self, name: &str, netns: BorrowedFd<'_>) -> Result<()> {
        self.set_link(name, vec![LinkAttribute::NetNsFd(netns.as_raw_fd())])
    }

    /// Renames link `old` to `new` (`ip link set OLD name NEW`). The link must
    /// be down: the kernel refuses to rename a running interface (`EBUSY`).
    pub fn rename(&mut self, old: &str, new: &str) -> Result<()> {
        let index = self.require_index(old)?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::IfName(new.to_owned()));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            0,
            "RTM_NEWLINK",
            &format!("{old} -> {new}"),
        )
    }

    /// Sets link `name` administratively up (`ip link set NAME up`).
    pub fn set_up(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.request(RouteNetlinkMessage::NewLink(msg), 0, "RTM_NEWLINK", name)
    }

    /// Adds the address `addr/prefix_len` to link `name`
    /// (`ip addr add ADDR/LEN dev NAME`).
    ///
    /// The kernel also adds the connected route for the subnet (the
    /// "proto kernel scope link" line of `ip route`), which is what makes the
    /// other addresses of the subnet reachable through this link.
    pub fn add_address(&mut self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let index = self.require_index(name)?;
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr.into()));
        msg.attributes.push(AddressAttribute::Address(addr.into()));
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            "RTM_NEWADDR",
            &format!("{addr}/{prefix_len} dev {name}"),
        )
    }

    /// Adds a default route through `gateway` to the main table
    /// (`ip route add default via GW`). The gateway must be reachable through
    /// a connected route, i.e. an address in its subnet must be configured
    /// and the link up, or the kernel answers `ENETUNREACH`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = 0;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            "RTM_NEWROUTE",
            &format!("default via {gateway}"),
        )
    }

    /// Deletes link `name` (`ip link del NAME`). Deleting one end of a veth
    /// pair deletes both, wherever the other end is.
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.request(RouteNetlinkMessage::DelLink(msg), 0, "RTM_DELLINK", name)
    }

    /// Lists every link of the namespace (`ip -o link`), by an
    /// `RTM_GETLINK` dump.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.dump(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            "RTM_GETLINK",
        )?;
        let mut links = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewLink(msg) = reply else {
                continue;
            };
            let mut link = Link {
                index: msg.header.index,
                name: String::new(),
                master: None,
                up: msg.header.flags.contains(LinkFlags::Up),
            };
            for attr in msg.attributes {
                match attr {
                    LinkAttribute::IfName(name) => link.name = name,
                    LinkAttribute::Controller(master) => link.master = Some(master),
                    _ => {}
                }
            }
            links.push(link);
        }
        Ok(links)
    }

    /// Returns the index of link `name`, or `None` when there is no such
    /// link.
    // SIMPLIFICATION: this dumps every link; `ip` sends an RTM_GETLINK for the
    // one name instead. A namespace holds a handful of links, so the dump is
    // simpler and as fast.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        Ok(self
            .links()?
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.index))
    }

    /// Lists the IPv4 routes of the main table (`ip -4 route show`), for the
    /// subnet-overlap check of [`crate::ipam`].
    pub fn ipv4_routes(&mut self) -> Result<Vec<Route>> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        let replies = self.dump(RouteNetlinkMessage::GetRoute(query), "RTM_GETROUTE")?;
        let mut routes = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewRoute(msg) = reply else {
                continue;
            };
            let mut table = u32::from(msg.header.table);
            let mut route = Route {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix_len: msg.header.destination_prefix_length,
                oif: None,
            };
            for attr in msg.attributes {
                match attr {
                    RouteAttribute::Destination(RouteAddress::Inet(dst)) => route.destination = dst,
                    RouteAttribute::Oif(oif) => route.oif = Some(oif),
                    RouteAttribute::Table(t) => table = t,
                    _ => {}
                }
            }
            // The dump also returns the local table (one host route per local
            // address, broadcast routes); only the main table says which
            // networks the host reaches.
            if table == u32::from(RouteHeader::RT_TABLE_MAIN) {
                routes.push(route);
            }
        }
        Ok(routes)
    }

    /// Sends an `RTM_NEWLINK` that changes the existing link `name` (found by
    /// its `IFLA_IFNAME`): what `ip link set` sends.
    fn set_link(&mut self, name: &str, attributes: Vec<LinkAttribute>) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes.extend(attributes);
        self.request(RouteNetlinkMessage::NewLink(msg), 0, "RTM_NEWLINK", name)
    }

    /// The index of link `name`, or an error in the kernel's words.
    fn require_index(&mut self, name: &str) -> Result<u32> {
        match self.link_index(name)? {
            Some(index) => Ok(index),
            None => bail!("link {name}: No such device (ENODEV)"),
        }
    }

    // ANCHOR: request
    /// Sends `payload` with `NLM_F_REQUEST | NLM_F_ACK | extra_flags` and
    /// waits for the kernel's acknowledgement; `op` and `subject` name the
    /// request in the error.
    fn request(
        &mut self,
        payload: RouteNetlinkMessage,
        extra_flags: u16,
        op: &str,
        subject: &str,
    ) -> Result<()> {
        let seq = self.send(payload, NLM_F_REQUEST | NLM_F_ACK | extra_flags)?;
        loop {
            for msg in self.receive()? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(err) => match err.code {
                        None => return Ok(()),
                        Some(code) => {
                            return Err(KernelError {
                                op: op.to_owned(),
                                subject: subject.to_owned(),
                                errno: Errno::from_raw(code.get().abs()),
                            }
                            .into());
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(()),
                    _ => {}
                }
            }
        }
    }
    // ANCHOR_END: request

    /// Sends a dump request and collects the answers until `NLMSG_DONE`.
    fn dump(&mut self, payload: RouteNetlinkMessage, op: &str) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(payload, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut out = Vec::new();
        loop {
            for msg in self.receive()? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(err) => match err.code {
                        None => return Ok(out),
                        Some(code) => bail!("{op} dump: {}", errno_words(code.get())),
                    },
                    _ => {}
                }
            }
        }
    }

    /// Serializes and sends one message; returns its sequence number.
    fn send(&mut self, payload: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).context("send netlink request")?;
        Ok(self.seq)
    }

    /// Reads one datagram, which may hold several netlink messages.
    fn receive(&mut self) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        let (buf, _) = self
            .socket
            .recv_from_full()
            .context("receive netlink answer")?;
        let mut messages = Vec::new();
        let mut offset = 0;
        while offset < buf.len() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
                .context("decode netlink answer")?;
            let len = msg.header.length as usize;
            messages.push(msg);
            if len == 0 {
                break;
            }
            // Messages are aligned to 4 bytes (NLMSG_ALIGN).
            offset += (len + 3) & !3;
        }
        Ok(messages)
    }
}

/// Turns a netlink error code (a negative errno) into
/// `File exists (EEXIST)`.
pub fn errno_words(code: i32) -> String {
    let errno = Errno::from_raw(code.abs());
    format!("{} ({errno:?})", errno.desc())
}

/// The kernel refused a request: which one, about what, and its errno.
///
/// It travels inside `anyhow::Error` like every other error, and reads as
/// `RTM_NEWLINK minibox0: File exists (EEXIST)`; a caller that must tell one
/// refusal from another (an existing bridge is fine, see
/// [`Netlink::ensure_bridge`]) gets it back with
/// `err.downcast_ref::<KernelError>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The message type, e.g. `RTM_NEWLINK`.
    pub op: String,
    /// What it was about, e.g. the link name.
    pub subject: String,
    /// The errno the kernel answered with.
    pub errno: Errno,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.op,
            self.subject,
            errno_words(self.errno as i32)
        )
    }
}

impl std::error::Error for KernelError {}

/// Whether `err` is the kernel answering `errno`.
pub fn is_errno(err: &anyhow::Error, errno: Errno) -> bool {
    err.downcast_ref::<KernelError>()
        .is_some_and(|k| k.errno == errno)
}
