//! The network status networkd publishes, built from what rtnetlink reports: typed
//! [`crate::resources::specs::network`] specs (`LinkStatuses`, `AddressStatuses`,
//! `RouteStatuses`, `ResolverStatuses`, `HostnameStatuses`) as resources with Talos 1.7's ids.
//!
//! Enumerations are written the way Talos's `nethelpers` marshal them as text: `inet4`,
//! `global`, `main`, `unicast`, `boot`, `UP,BROADCAST,RUNNING`, `permanent`, `ether`, `up`, …

use std::net::{IpAddr, Ipv4Addr};

use super::rtnl::{Address, Link, Route};
use crate::resources::specs::{
    AddressStatusSpec, HostnameStatusSpec, LinkStatusSpec, ResolverStatusSpec, RouteStatusSpec,
    HOSTNAME_ID, RESOLVER_ID,
};
use crate::resources::Resource;

/// Talos `AddressID`: `LINK/ADDRESS/PREFIXLEN`.
pub fn address_id(link_name: &str, addr: IpAddr, prefix_len: u8) -> String {
    format!("{link_name}/{addr}/{prefix_len}")
}

/// Talos `RouteID`: `[TABLE/]FAMILY/GATEWAY/DESTINATION/PRIORITY` (the table only when it is
/// not `main`; for IPv6 the output link name follows the table).
pub fn route_id(
    table: u32,
    family: u8,
    destination: Option<(IpAddr, u8)>,
    gateway: Option<IpAddr>,
    priority: u32,
    out_link_name: &str,
) -> String {
    let mut prefix = String::new();
    if table != TABLE_MAIN {
        prefix.push_str(&table_name(table));
        prefix.push('/');
    }
    if family == FAMILY_INET6 {
        prefix.push_str(out_link_name);
        prefix.push('/');
    }
    let dst = destination
        .map(|(a, l)| format!("{a}/{l}"))
        .unwrap_or_default();
    let gw = gateway.map(|g| g.to_string()).unwrap_or_default();
    format!("{prefix}{}/{gw}/{dst}/{priority}", family_name(family))
}

const FAMILY_INET4: u8 = 2;
const FAMILY_INET6: u8 = 10;
const TABLE_MAIN: u32 = 254;

/// `inet4` / `inet6` (Talos `nethelpers.Family`).
pub fn family_name(family: u8) -> String {
    match family {
        FAMILY_INET4 => "inet4".into(),
        FAMILY_INET6 => "inet6".into(),
        other => format!("Family({other})"),
    }
}

/// Scope names (Talos `nethelpers.Scope`).
pub fn scope_name(scope: u8) -> String {
    match scope {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        other => format!("Scope({other})"),
    }
}

/// Routing table names (Talos `nethelpers.RoutingTable`).
pub fn table_name(table: u32) -> String {
    match table {
        0 => "unspec".into(),
        253 => "default".into(),
        254 => "main".into(),
        255 => "local".into(),
        other => format!("RoutingTable({other})"),
    }
}

/// Route protocol names (Talos `nethelpers.RouteProtocol`).
pub fn protocol_name(protocol: u8) -> String {
    let name = match protocol {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "mrtd",
        18 => "keepalived",
        42 => "babel",
        99 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        other => return format!("RouteProtocol({other})"),
    };
    name.into()
}

/// Route type names (Talos `nethelpers.RouteType`).
pub fn route_type_name(kind: u8) -> String {
    const NAMES: [&str; 12] = [
        "unspec",
        "unicast",
        "local",
        "broadcast",
        "anycast",
        "multicast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
        "nat",
        "xresolve",
    ];
    NAMES
        .get(usize::from(kind))
        .map(|s| (*s).to_string())
        .unwrap_or_else(|| format!("RouteType({kind})"))
}

/// Operational state names (Talos `nethelpers.OperationalState`).
pub fn operstate_name(state: u8) -> String {
    const NAMES: [&str; 7] = [
        "unknown",
        "notPresent",
        "down",
        "lowerLayerDown",
        "testing",
        "dormant",
        "up",
    ];
    NAMES
        .get(usize::from(state))
        .map(|s| (*s).to_string())
        .unwrap_or_else(|| format!("OperationalState({state})"))
}

/// Link layer type names (Talos `nethelpers.LinkType`, the common ones).
pub fn link_type_name(link_type: u16) -> String {
    let name = match link_type {
        0 => "netrom",
        1 => "ether",
        32 => "infiniband",
        512 => "ppp",
        768 => "ipip",
        769 => "tunnel6",
        772 => "loopback",
        776 => "sit",
        778 => "gre",
        823 => "ip6gre",
        65534 => "nohdr",
        65535 => "void",
        other => return format!("LinkType({other})"),
    };
    name.into()
}

fn flag_names(flags: u32, names: &[(u32, &str)]) -> String {
    names
        .iter()
        .filter(|(bit, _)| flags & bit == *bit)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

/// Interface flags as Talos writes them (`UP,BROADCAST,RUNNING,MULTICAST,LOWER_UP`).
pub fn link_flags(flags: u32) -> String {
    const NAMES: [&str; 19] = [
        "UP",
        "BROADCAST",
        "DEBUG",
        "LOOPBACK",
        "POINTTOPOINT",
        "NOTRAILERS",
        "RUNNING",
        "NOARP",
        "PROMISC",
        "ALLMULTI",
        "MASTER",
        "SLAVE",
        "MULTICAST",
        "PORTSEL",
        "AUTOMEDIA",
        "DYNAMIC",
        "LOWER_UP",
        "DORMANT",
        "ECHO",
    ];
    let table: Vec<(u32, &str)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (1u32 << i, *n))
        .collect();
    flag_names(flags, &table)
}

/// Address flags as Talos writes them (`permanent`, `noprefixroute`, …).
pub fn address_flags(flags: u32) -> String {
    const NAMES: [&str; 12] = [
        "temporary",
        "nodad",
        "optimistic",
        "dadfailed",
        "homeaddress",
        "deprecated",
        "tentative",
        "permanent",
        "mngmtmpaddr",
        "noprefixroute",
        "mcautojoin",
        "stableprivacy",
    ];
    let table: Vec<(u32, &str)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (1u32 << i, *n))
        .collect();
    flag_names(flags, &table)
}

/// Route flags as Talos writes them (`notify`, `cloned`, …).
pub fn route_flags(flags: u32) -> String {
    const NAMES: [&str; 8] = [
        "notify",
        "cloned",
        "equalize",
        "prefix",
        "lookup_table",
        "fib_match",
        "offload",
        "trap",
    ];
    let table: Vec<(u32, &str)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (0x100u32 << i, *n))
        .collect();
    flag_names(flags, &table)
}

/// A MAC address as `aa:bb:cc:dd:ee:ff` (empty when there is none).
pub fn hardware_addr(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The LinkStatus of one link.
pub fn link_status(link: &Link) -> Resource {
    const IFF_RUNNING: u32 = 0x40;
    let spec = LinkStatusSpec {
        index: link.index,
        link_type: link_type_name(link.link_type),
        link_index: link.link_index,
        flags: link_flags(link.flags),
        hardware_addr: hardware_addr(&link.mac),
        permanent_addr: hardware_addr(&link.permanent_mac),
        broadcast_addr: hardware_addr(&link.broadcast),
        mtu: link.mtu,
        queue_disc: link.qdisc.clone(),
        master_index: link.master_index,
        operational_state: operstate_name(link.operstate),
        kind: link.kind.clone(),
        slave_kind: link.slave_kind.clone(),
        driver: link.driver.clone(),
        link_state: link.carrier.unwrap_or(link.flags & IFF_RUNNING != 0),
        port: "Other".into(),
        duplex: "Unknown".into(),
    };
    Resource::from_typed(&link.name, &spec)
}

/// The AddressStatus of one address.
pub fn address_status(addr: &Address) -> Resource {
    let spec = AddressStatusSpec {
        address: format!("{}/{}", addr.address, addr.prefix_len),
        local: addr.local.map(|a| a.to_string()),
        broadcast: addr.broadcast.map(|a| a.to_string()),
        anycast: addr.anycast.map(|a| a.to_string()),
        multicast: addr.multicast.map(|a| a.to_string()),
        link_index: addr.index,
        link_name: addr.link_name.clone(),
        family: family_name(addr.family),
        scope: scope_name(addr.scope),
        flags: address_flags(addr.flags),
    };
    let id = address_id(&addr.link_name, addr.address, addr.prefix_len);
    Resource::from_typed(&id, &spec)
}

/// The RouteStatus of one route.
pub fn route_status(route: &Route) -> Resource {
    let dst = route.destination.map(|d| (d, route.destination_len));
    let spec = RouteStatusSpec {
        family: family_name(route.family),
        dst: dst.map(|(a, l)| format!("{a}/{l}")).unwrap_or_default(),
        src: route.source.map(|a| a.to_string()).unwrap_or_default(),
        gateway: route.gateway.map(|a| a.to_string()).unwrap_or_default(),
        out_link_index: route.out_index.unwrap_or(0),
        out_link_name: route.out_link_name.clone(),
        table: table_name(route.table),
        priority: route.priority,
        scope: scope_name(route.scope),
        route_type: route_type_name(route.kind),
        flags: route_flags(route.flags),
        protocol: protocol_name(route.protocol),
        mtu: route.mtu.unwrap_or(0),
    };
    let id = route_id(
        route.table,
        route.family,
        dst,
        route.gateway,
        route.priority,
        &route.out_link_name,
    );
    Resource::from_typed(&id, &spec)
}

/// The ResolverStatus for the servers in use.
pub fn resolver_status(servers: &[Ipv4Addr]) -> Resource {
    let spec = ResolverStatusSpec {
        dns_servers: servers.iter().map(|s| s.to_string()).collect(),
    };
    Resource::from_typed(RESOLVER_ID, &spec)
}

/// The HostnameStatus for a (possibly fully qualified) host name.
pub fn hostname_status(fqdn: &str) -> Resource {
    hostname_status_spec(&HostnameStatusSpec::from_fqdn(fqdn))
}

/// The HostnameStatus for a host name already split into name and domain.
pub fn hostname_status_spec(spec: &HostnameStatusSpec) -> Resource {
    Resource::from_typed(HOSTNAME_ID, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceSpec as _;
    use std::net::Ipv6Addr;

    fn eth0() -> Link {
        Link {
            index: 2,
            name: "eth0".into(),
            kind: String::new(),
            slave_kind: String::new(),
            link_type: 1,
            flags: 0x1 | 0x2 | 0x40 | 0x1000 | 0x10000,
            mac: vec![0x52, 0x54, 0, 0x12, 0x34, 0x56],
            permanent_mac: vec![],
            broadcast: vec![0xff; 6],
            mtu: 1500,
            qdisc: "pfifo_fast".into(),
            master_index: 0,
            link_index: 0,
            operstate: 6,
            carrier: Some(true),
            physical: true,
            driver: String::new(),
        }
    }

    #[test]
    fn ids_follow_talos() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(address_id("eth0", a, 24), "eth0/10.0.2.15/24");
        let gw = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(
            route_id(254, 2, None, Some(gw), 1024, "eth0"),
            "inet4/10.0.2.2//1024"
        );
        let net = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 0));
        assert_eq!(
            route_id(255, 2, Some((net, 24)), None, 0, "eth0"),
            "local/inet4//10.0.2.0/24/0"
        );
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0));
        assert_eq!(
            route_id(254, 10, Some((v6, 64)), None, 256, "eth0"),
            "eth0/inet6//fe80::/64/256"
        );
    }

    #[test]
    fn names_of_enums_and_flags() {
        assert_eq!(
            link_flags(0x1 | 0x2 | 0x40 | 0x1000 | 0x10000),
            "UP,BROADCAST,RUNNING,MULTICAST,LOWER_UP"
        );
        assert_eq!(
            link_flags(0x1 | 0x8 | 0x40 | 0x10000),
            "UP,LOOPBACK,RUNNING,LOWER_UP"
        );
        assert_eq!(address_flags(0x80), "permanent");
        assert_eq!(address_flags(0x80 | 0x200), "permanent,noprefixroute");
        assert_eq!(address_flags(0), "");
        assert_eq!(route_flags(0), "");
        assert_eq!(route_flags(0x200), "cloned");
        assert_eq!(scope_name(0), "global");
        assert_eq!(scope_name(253), "link");
        assert_eq!(table_name(254), "main");
        assert_eq!(table_name(100), "RoutingTable(100)");
        assert_eq!(protocol_name(3), "boot");
        assert_eq!(protocol_name(16), "dhcp");
        assert_eq!(route_type_name(1), "unicast");
        assert_eq!(operstate_name(6), "up");
        assert_eq!(operstate_name(0), "unknown");
        assert_eq!(link_type_name(772), "loopback");
        assert_eq!(link_type_name(1), "ether");
        assert_eq!(
            hardware_addr(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            "52:54:00:12:34:56"
        );
    }

    #[test]
    fn link_status_yaml() {
        let r = link_status(&eth0());
        assert_eq!(r.metadata.resource_type, LinkStatusSpec::TYPE);
        assert_eq!(r.metadata.namespace, "network");
        assert_eq!(r.metadata.id, "eth0");
        let yaml = r.spec.yaml().expect("yaml");
        let v: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
        assert_eq!(v["index"], serde_yaml::Value::from(2));
        assert_eq!(v["type"], serde_yaml::Value::from("ether"));
        assert_eq!(
            v["hardwareAddr"],
            serde_yaml::Value::from("52:54:00:12:34:56")
        );
        assert_eq!(
            v["broadcastAddr"],
            serde_yaml::Value::from("ff:ff:ff:ff:ff:ff")
        );
        assert_eq!(v["operationalState"], serde_yaml::Value::from("up"));
        assert_eq!(
            v["flags"],
            serde_yaml::Value::from("UP,BROADCAST,RUNNING,MULTICAST,LOWER_UP")
        );
        assert_eq!(v["linkState"], serde_yaml::Value::from(true));
        assert_eq!(v["kind"], serde_yaml::Value::from(""));
        assert!(v.get("masterIndex").is_none());
        let back: LinkStatusSpec = serde_yaml::from_str(yaml).expect("round trip");
        assert_eq!(r.typed::<LinkStatusSpec>().expect("typed"), back);
        assert_eq!(back.mtu, 1500);
    }

    #[test]
    fn address_status_yaml() {
        let addr = Address {
            index: 2,
            link_name: "eth0".into(),
            family: 2,
            prefix_len: 24,
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15)),
            local: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15))),
            broadcast: Some(Ipv4Addr::new(10, 0, 2, 255)),
            anycast: None,
            multicast: None,
            scope: 0,
            flags: 0,
            valid_lifetime: Some(86400),
            preferred_lifetime: Some(86400),
        };
        let r = address_status(&addr);
        assert_eq!(r.metadata.id, "eth0/10.0.2.15/24");
        let yaml = r.spec.yaml().expect("yaml");
        let spec: AddressStatusSpec = serde_yaml::from_str(yaml).expect("yaml");
        assert_eq!(spec.address, "10.0.2.15/24");
        assert_eq!(spec.local.as_deref(), Some("10.0.2.15"));
        assert_eq!(spec.broadcast.as_deref(), Some("10.0.2.255"));
        assert_eq!(spec.family, "inet4");
        assert_eq!(spec.scope, "global");
        assert_eq!(spec.link_name, "eth0");
        assert!(!yaml.contains("anycast"));
        assert!(yaml.contains("linkIndex: 2"));
    }

    #[test]
    fn route_status_yaml() {
        let route = Route {
            family: 2,
            destination: None,
            destination_len: 0,
            source: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15))),
            gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2))),
            out_index: Some(2),
            out_link_name: "eth0".into(),
            table: 254,
            priority: 1024,
            scope: 0,
            kind: 1,
            flags: 0,
            protocol: 3,
            mtu: None,
        };
        let r = route_status(&route);
        assert_eq!(r.metadata.id, "inet4/10.0.2.2//1024");
        let yaml = r.spec.yaml().expect("yaml");
        let spec: RouteStatusSpec = serde_yaml::from_str(yaml).expect("yaml");
        assert_eq!(spec.dst, "");
        assert_eq!(spec.gateway, "10.0.2.2");
        assert_eq!(spec.src, "10.0.2.15");
        assert_eq!(spec.table, "main");
        assert_eq!(spec.route_type, "unicast");
        assert_eq!(spec.protocol, "boot");
        assert_eq!(spec.out_link_name, "eth0");
        assert_eq!(spec.priority, 1024);
        assert!(yaml.contains("type: unicast"));
    }

    #[test]
    fn resolver_and_hostname_yaml() {
        let r = resolver_status(&[Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 8, 8)]);
        assert_eq!(r.metadata.id, "resolvers");
        let yaml = r.spec.yaml().expect("yaml");
        let spec: ResolverStatusSpec = serde_yaml::from_str(yaml).expect("yaml");
        assert_eq!(spec.dns_servers, vec!["1.1.1.1", "8.8.8.8"]);
        assert!(yaml.contains("dnsServers:"));

        let h = hostname_status("node1.example.org");
        assert_eq!(h.metadata.id, "hostname");
        let spec: HostnameStatusSpec =
            serde_yaml::from_str(h.spec.yaml().expect("yaml")).expect("yaml");
        assert_eq!(spec.hostname, "node1");
        assert_eq!(spec.domainname, "example.org");
        assert_eq!(HostnameStatusSpec::from_fqdn("solo").domainname, "");
    }
}
