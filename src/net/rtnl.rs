//! rtnetlink wrappers, the only netlink code: read links, addresses and routes into plain
//! structs, and make the changes networkd needs (link up, MTU, addresses with lifetimes, route
//! replace/delete) and the container provisioner needs (bridge and veth links, moving a link
//! into another network namespace, renaming, a default route).
//!
//! [`Netlink::connect`] must be called inside a tokio runtime: the netlink connection runs as a
//! task of that runtime. Netlink sockets act on the network namespace of the thread that opens
//! them.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use futures_util::TryStreamExt as _;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, CacheInfo};
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage, State};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// errno values treated specially.
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

/// A network interface as rtnetlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFLA_INFO_KIND` (`veth`, `bridge`, …), empty for plain devices.
    pub kind: String,
    /// `IFLA_INFO_SLAVE_KIND` when enslaved.
    pub slave_kind: String,
    /// ARPHRD_* link layer type.
    pub link_type: u16,
    /// IFF_* flags.
    pub flags: u32,
    /// MAC address.
    pub mac: Vec<u8>,
    /// Permanent MAC address (empty when the kernel reports none).
    pub permanent_mac: Vec<u8>,
    /// Link-layer broadcast address.
    pub broadcast: Vec<u8>,
    /// MTU.
    pub mtu: u32,
    /// Queueing discipline.
    pub qdisc: String,
    /// Master (bridge/bond) index, 0 when none.
    pub master_index: u32,
    /// IFLA_LINK (the peer or lower device), 0 when none.
    pub link_index: u32,
    /// RFC 2863 operational state (IF_OPER_*).
    pub operstate: u8,
    /// Carrier, when reported.
    pub carrier: Option<bool>,
    /// Whether the link is backed by a device (`/sys/class/net/NAME/device` exists).
    pub physical: bool,
    /// Driver name from sysfs, when known.
    pub driver: String,
}

impl Link {
    /// IFF_LOOPBACK.
    pub fn is_loopback(&self) -> bool {
        self.flags & 0x8 != 0 || self.link_type == 772
    }

    /// IFF_UP.
    pub fn is_up(&self) -> bool {
        self.flags & 0x1 != 0
    }
}

/// An address as rtnetlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// Interface name (looked up from the index).
    pub link_name: String,
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u8,
    /// Prefix length.
    pub prefix_len: u8,
    /// IFA_ADDRESS (or IFA_LOCAL when that is all there is).
    pub address: IpAddr,
    /// IFA_LOCAL.
    pub local: Option<IpAddr>,
    /// IFA_BROADCAST.
    pub broadcast: Option<Ipv4Addr>,
    /// IFA_ANYCAST.
    pub anycast: Option<IpAddr>,
    /// IFA_MULTICAST.
    pub multicast: Option<IpAddr>,
    /// RT_SCOPE_*.
    pub scope: u8,
    /// IFA_F_* flags (IFA_FLAGS when present, else the header's).
    pub flags: u32,
    /// Valid lifetime in seconds (`None`: forever).
    pub valid_lifetime: Option<u32>,
    /// Preferred lifetime in seconds (`None`: forever).
    pub preferred_lifetime: Option<u32>,
}

/// A route as rtnetlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u8,
    /// Destination; `None` for a default route.
    pub destination: Option<IpAddr>,
    /// Destination prefix length.
    pub destination_len: u8,
    /// Preferred source address.
    pub source: Option<IpAddr>,
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub out_index: Option<u32>,
    /// Output interface name (looked up from the index).
    pub out_link_name: String,
    /// Routing table.
    pub table: u32,
    /// Metric.
    pub priority: u32,
    /// RT_SCOPE_*.
    pub scope: u8,
    /// RTN_* type.
    pub kind: u8,
    /// RTM_F_* flags.
    pub flags: u32,
    /// RTPROT_*.
    pub protocol: u8,
    /// RTAX_MTU, when set.
    pub mtu: Option<u32>,
}

/// An IPv4 route networkd installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination network (`0.0.0.0/0` for the default route).
    pub destination: Ipv4Addr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Next hop, `None` for an on-link route.
    pub gateway: Option<Ipv4Addr>,
    /// Preferred source address.
    pub source: Option<Ipv4Addr>,
    /// Output interface index.
    pub out_index: u32,
    /// Metric.
    pub metric: u32,
    /// Link scope (an on-link route) instead of global.
    pub link_scope: bool,
}

/// Errors of netlink operations; each says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened.
    #[error("cannot open a netlink socket")]
    Socket(#[source] io::Error),
    /// A request failed.
    #[error("{what}")]
    Request {
        /// The operation, e.g. `add address 10.0.2.15/24 to eth0`.
        what: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
}

impl NetlinkError {
    fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let what = what.into();
        move |source| Self::Request { what, source }
    }

    /// The errno the kernel answered with, if this is a kernel error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Request {
                source: rtnetlink::Error::NetlinkError(e),
                ..
            } => Some(e.raw_code().abs()),
            _ => None,
        }
    }
}

/// A handle on the kernel's routing netlink.
#[derive(Clone)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Netlink")
    }
}

impl Netlink {
    /// Opens a netlink connection (its I/O runs as a task on the current tokio runtime).
    pub fn connect() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Every link, in index order.
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(NetlinkError::request("list links"))?;
        let mut links: Vec<Link> = msgs.iter().map(link_from_message).collect();
        links.sort_by_key(|l| l.index);
        Ok(links)
    }

    /// The link called `name`, if there is one.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut replies = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match replies.try_next().await {
            Ok(reply) => Ok(reply.as_ref().map(link_from_message)),
            // A name the kernel does not know comes back as "no such device".
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == ENODEV => Ok(None),
            Err(e) => Err(NetlinkError::request(format!("look up link {name}"))(e)),
        }
    }

    /// The index of the link called `name`, if there is one.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.link_by_name(name).await?.map(|l| l.index))
    }

    /// Creates a bridge `name` with `mtu`, administratively up.
    pub async fn add_bridge(&self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(LinkBridge::new(name).mtu(mtu).up().build())
            .execute()
            .await
            .map_err(NetlinkError::request(format!("create bridge {name}")))
    }

    /// Creates a veth pair `name`/`peer` with `mtu`, `name` enslaved to the bridge with index
    /// `bridge`, both up.
    pub async fn add_veth(
        &self,
        name: &str,
        peer: &str,
        mtu: u32,
        bridge: u32,
    ) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(
                LinkVeth::new(name, peer)
                    .mtu(mtu)
                    .controller(bridge)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "create veth {name} (peer {peer})"
            )))
    }

    /// Deletes a link; one that is already gone is not an error.
    pub async fn del_link(&self, index: u32) -> Result<(), NetlinkError> {
        let res = self
            .handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(NetlinkError::request(format!("delete link {index}")));
        match res {
            Err(e) if e.errno() == Some(ENODEV) => Ok(()),
            other => other,
        }
    }

    /// Moves a link into the network namespace of process `pid`.
    pub async fn move_to_netns_of(&self, index: u32, pid: u32) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(index).setns_by_pid(pid).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "move link {index} into the network namespace of pid {pid}"
            )))
    }

    /// Renames a (down) link.
    pub async fn rename(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(index)
            .name(name.to_string())
            .build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "rename link {index} to {name}"
            )))
    }

    /// Sets a link administratively up.
    pub async fn set_up(&self, index: u32) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(NetlinkError::request(format!("set link {index} up")))
    }

    /// Sets a link's MTU.
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "set MTU {mtu} on link {index}"
            )))
    }

    /// Every address (IPv4 and IPv6) with its link name filled in.
    pub async fn addresses(&self) -> Result<Vec<Address>, NetlinkError> {
        let names = self.link_names().await?;
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(NetlinkError::request("list addresses"))?;
        Ok(msgs
            .iter()
            .filter_map(|m| address_from_message(m, &names))
            .collect())
    }

    /// Adds (or replaces) an IPv4 address on a link. `lifetime` is the valid and preferred
    /// lifetime in seconds (`None`: permanent).
    pub async fn add_address(
        &self,
        index: u32,
        address: Ipv4Addr,
        prefix_len: u8,
        lifetime: Option<u32>,
    ) -> Result<(), NetlinkError> {
        let mut req = self
            .handle
            .address()
            .add(index, IpAddr::V4(address), prefix_len)
            .replace();
        if let Some(secs) = lifetime {
            let mut info = CacheInfo::default();
            info.ifa_preferred = secs;
            info.ifa_valid = secs;
            req.message_mut()
                .attributes
                .push(AddressAttribute::CacheInfo(info));
        }
        req.execute().await.map_err(NetlinkError::request(format!(
            "add address {address}/{prefix_len} to link {index}"
        )))
    }

    /// Removes an address from a link; an address that is already gone is not an error.
    pub async fn del_address(
        &self,
        index: u32,
        address: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = prefix_len;
        msg.header.family = match address {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.attributes.push(AddressAttribute::Local(address));
        msg.attributes.push(AddressAttribute::Address(address));
        let res = self
            .handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "remove address {address}/{prefix_len} from link {index}"
            )));
        ignore_missing(res)
    }

    fn route_message(spec: &RouteSpec) -> RouteMessage {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(spec.destination, spec.prefix_len)
            .output_interface(spec.out_index)
            .priority(spec.metric)
            .protocol(RouteProtocol::Boot)
            .scope(if spec.link_scope {
                RouteScope::Link
            } else {
                RouteScope::Universe
            });
        if let Some(gw) = spec.gateway {
            b = b.gateway(gw);
        }
        if let Some(src) = spec.source {
            b = b.pref_source(src);
        }
        b.build()
    }

    /// Adds a route, replacing one with the same destination and metric.
    pub async fn replace_route(&self, spec: &RouteSpec) -> Result<(), NetlinkError> {
        self.handle
            .route()
            .add(Self::route_message(spec))
            .replace()
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "add route {}/{} via {:?} metric {}",
                spec.destination, spec.prefix_len, spec.gateway, spec.metric
            )))
    }

    /// Adds the IPv4 default route via `gateway` out of link `index` (a static route in the
    /// main table, as a provisioner sets it up for its nodes).
    pub async fn add_default_route(
        &self,
        gateway: Ipv4Addr,
        index: u32,
    ) -> Result<(), NetlinkError> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "add the default route via {gateway} on link {index}"
            )))
    }

    /// Removes a route; one that is already gone is not an error.
    pub async fn del_route(&self, spec: &RouteSpec) -> Result<(), NetlinkError> {
        let res = self
            .handle
            .route()
            .del(Self::route_message(spec))
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "remove route {}/{} metric {}",
                spec.destination, spec.prefix_len, spec.metric
            )));
        ignore_missing(res)
    }

    /// Every route of every table (IPv4 and IPv6), with output link names filled in.
    pub async fn routes(&self) -> Result<Vec<Route>, NetlinkError> {
        let names = self.link_names().await?;
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut q = RouteMessageBuilder::<IpAddr>::new().build();
            q.header.address_family = family;
            let msgs: Vec<RouteMessage> = self
                .handle
                .route()
                .get(q)
                .execute()
                .try_collect()
                .await
                .map_err(NetlinkError::request("list routes"))?;
            out.extend(msgs.iter().map(|m| route_from_message(m, &names)));
        }
        Ok(out)
    }

    async fn link_names(&self) -> Result<HashMap<u32, String>, NetlinkError> {
        Ok(self
            .links()
            .await?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect())
    }
}

fn ignore_missing(res: Result<(), NetlinkError>) -> Result<(), NetlinkError> {
    match res {
        Err(e) if matches!(e.errno(), Some(ENOENT | ESRCH | EADDRNOTAVAIL)) => Ok(()),
        other => other,
    }
}

/// Whether `/sys/class/net/NAME/device` exists, and the driver it names.
fn sysfs_device(name: &str) -> (bool, String) {
    let dir = Path::new("/sys/class/net").join(name);
    let physical = dir.join("device").exists();
    let driver = std::fs::read_link(dir.join("device/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    (physical, driver)
}

fn operstate(state: &State) -> u8 {
    match state {
        State::Unknown => 0,
        State::NotPresent => 1,
        State::Down => 2,
        State::LowerLayerDown => 3,
        State::Testing => 4,
        State::Dormant => 5,
        State::Up => 6,
        State::Other(v) => *v,
        _ => 0,
    }
}

fn kind_name(kind: &InfoKind) -> String {
    kind.to_string()
}

fn link_from_message(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        kind: String::new(),
        slave_kind: String::new(),
        link_type: u16::from(m.header.link_layer_type),
        flags: m.header.flags.bits(),
        mac: Vec::new(),
        permanent_mac: Vec::new(),
        broadcast: Vec::new(),
        mtu: 0,
        qdisc: String::new(),
        master_index: 0,
        link_index: 0,
        operstate: 0,
        carrier: None,
        physical: false,
        driver: String::new(),
    };
    for attr in &m.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) => link.mac = a.clone(),
            LinkAttribute::PermAddress(a) => link.permanent_mac = a.clone(),
            LinkAttribute::Broadcast(a) => link.broadcast = a.clone(),
            LinkAttribute::Mtu(v) => link.mtu = *v,
            LinkAttribute::Qdisc(q) => link.qdisc = q.clone(),
            LinkAttribute::Controller(i) => link.master_index = *i,
            LinkAttribute::Link(i) => link.link_index = *i,
            LinkAttribute::OperState(s) => link.operstate = operstate(s),
            LinkAttribute::Carrier(c) => link.carrier = Some(*c != 0),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => link.kind = kind_name(k),
                        LinkInfo::PortKind(k) => link.slave_kind = k.to_string(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let (physical, driver) = sysfs_device(&link.name);
    link.physical = physical;
    link.driver = driver;
    link
}

fn address_from_message(m: &AddressMessage, names: &HashMap<u32, String>) -> Option<Address> {
    let mut address = None;
    let mut local = None;
    let mut broadcast = None;
    let mut anycast = None;
    let mut multicast = None;
    let mut flags = u32::from(m.header.flags.bits());
    let mut valid = None;
    let mut preferred = None;
    for attr in &m.attributes {
        match attr {
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Broadcast(a) => broadcast = Some(*a),
            AddressAttribute::Anycast(a) => anycast = Some(IpAddr::V6(*a)),
            AddressAttribute::Multicast(a) => multicast = Some(IpAddr::V6(*a)),
            AddressAttribute::Flags(f) => flags = f.bits(),
            AddressAttribute::CacheInfo(ci) => {
                valid = (ci.ifa_valid != u32::MAX).then_some(ci.ifa_valid);
                preferred = (ci.ifa_preferred != u32::MAX).then_some(ci.ifa_preferred);
            }
            _ => {}
        }
    }
    let address = address.or(local)?;
    let family = match address {
        IpAddr::V4(_) => 2,
        IpAddr::V6(_) => 10,
    };
    Some(Address {
        index: m.header.index,
        link_name: names.get(&m.header.index).cloned().unwrap_or_default(),
        family,
        prefix_len: m.header.prefix_len,
        address,
        local,
        broadcast,
        anycast,
        multicast,
        scope: u8::from(m.header.scope),
        flags,
        valid_lifetime: valid,
        preferred_lifetime: preferred,
    })
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_from_message(m: &RouteMessage, names: &HashMap<u32, String>) -> Route {
    let family = match m.header.address_family {
        AddressFamily::Inet6 => 10,
        _ => 2,
    };
    let mut route = Route {
        family,
        destination: None,
        destination_len: m.header.destination_prefix_length,
        source: None,
        gateway: None,
        out_index: None,
        out_link_name: String::new(),
        table: u32::from(m.header.table),
        priority: 0,
        scope: u8::from(m.header.scope),
        kind: u8::from(m.header.kind),
        flags: m.header.flags.bits(),
        protocol: u8::from(m.header.protocol),
        mtu: None,
    };
    for attr in &m.attributes {
        match attr {
            RouteAttribute::Destination(a) => route.destination = route_addr(a),
            RouteAttribute::PrefSource(a) => route.source = route_addr(a),
            RouteAttribute::Gateway(a) => route.gateway = route_addr(a),
            RouteAttribute::Oif(i) => route.out_index = Some(*i),
            RouteAttribute::Priority(p) => route.priority = *p,
            RouteAttribute::Table(t) => route.table = *t,
            RouteAttribute::Metrics(ms) => {
                for metric in ms {
                    if let rtnetlink::packet_route::route::RouteMetric::Mtu(v) = metric {
                        route.mtu = Some(*v);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(i) = route.out_index {
        route.out_link_name = names.get(&i).cloned().unwrap_or_default();
    }
    route
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::ns;

    /// A named network namespace, deleted on drop.
    struct TestNetns(String);

    impl Drop for TestNetns {
        fn drop(&mut self) {
            let _ = ns::delete_named_netns(&self.0);
        }
    }

    #[test]
    fn links_addresses_and_routes_in_a_private_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: creating a network namespace needs root");
            return;
        }
        let netns = TestNetns(format!("talos-rtnl-{}", std::process::id()));
        let path = ns::create_named_netns(&netns.0).expect("netns");
        let result = ns::in_netns(&path, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let nl = Netlink::connect().expect("netlink");
                assert_eq!(nl.link_index("br-t").await.expect("lookup"), None);
                nl.add_bridge("br-t", 1400).await.expect("bridge");
                let br = nl
                    .link_index("br-t")
                    .await
                    .expect("lookup")
                    .expect("bridge");
                nl.add_veth("vt0", "vt0p", 1400, br).await.expect("veth");
                let veth = nl.link_by_name("vt0").await.expect("lookup").expect("vt0");
                assert_eq!((veth.kind.as_str(), veth.master_index), ("veth", br));
                let peer = nl.link_index("vt0p").await.expect("lookup").expect("peer");
                nl.rename(peer, "eth9").await.expect("rename");
                nl.set_mtu(peer, 1300).await.expect("mtu");
                nl.set_up(peer).await.expect("up");
                let eth9 = nl
                    .link_by_name("eth9")
                    .await
                    .expect("lookup")
                    .expect("eth9");
                assert_eq!((eth9.index, eth9.mtu, eth9.is_up()), (peer, 1300, true));
                nl.add_address(peer, Ipv4Addr::new(10, 9, 0, 2), 24, None)
                    .await
                    .expect("address");
                nl.add_default_route(Ipv4Addr::new(10, 9, 0, 1), peer)
                    .await
                    .expect("route");
                let routes = nl.routes().await.expect("routes");
                assert!(
                    routes.iter().any(|r| r.destination.is_none()
                        && r.gateway == Some(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)))
                        && r.out_link_name == "eth9"),
                    "{routes:?}"
                );
                let names: Vec<String> = nl
                    .links()
                    .await
                    .expect("links")
                    .into_iter()
                    .map(|l| l.name)
                    .collect();
                assert!(names.contains(&"eth9".to_string()), "{names:?}");
                nl.del_link(br).await.expect("delete");
                nl.del_link(br).await.expect("deleting twice is fine");
                assert_eq!(nl.link_index("br-t").await.expect("lookup"), None);
            })
        });
        result.expect("in the namespace");
    }
}
