//! Host networking for the `networkd` applet: links, addresses and routes over rtnetlink, a
//! DHCPv4 client, and the network status networkd publishes to machined (as typed resources of
//! [`crate::resources::specs::network`]).
//!
//! | module | what |
//! |---|---|
//! | [`rtnl`] | rtnetlink wrappers: list links/addresses/routes, set a link up, add/remove addresses, replace routes |
//! | [`dhcp`] | DHCPv4 messages (built and parsed with `dhcproto`), leases, lease timers and back-off |
//! | [`client`] | the DHCPv4 client state machine on a UDP socket bound to one link |
//! | [`apply`] | applying a lease to the kernel and writing `resolv.conf` |
//! | [`status`] | the `LinkStatus`, `AddressStatus`, `RouteStatus`, `ResolverStatus` and `HostnameStatus` resources of what rtnetlink reports, with Talos 1.7's ids and enumeration names |
//! | [`publish`] | the [`publish::Publisher`] trait and its COSI State API implementation |
//!
//! Defaults follow Talos: the DHCP route metric is [`DEFAULT_ROUTE_METRIC`] and, when no lease
//! brings DNS servers, the resolvers are [`DEFAULT_RESOLVERS`].

pub mod apply;
pub mod client;
pub mod dhcp;
pub mod publish;
pub mod rtnl;
pub mod status;

use std::net::Ipv4Addr;

/// Route metric of DHCP routes when nothing else is configured (Talos `DefaultRouteMetric`).
pub const DEFAULT_ROUTE_METRIC: u32 = 1024;

/// Resolvers used when no lease names any DNS server.
pub const DEFAULT_RESOLVERS: [Ipv4Addr; 2] = [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 8, 8)];
