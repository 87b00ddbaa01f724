//! The `network` namespace: the status resources networkd publishes (links, addresses, routes,
//! resolvers) and the host name, with Talos 1.7's types, ids and YAML field names
//! (`pkg/machinery/resources/network`). Enumerations hold the text Talos's `nethelpers` marshal
//! (`inet4`, `global`, `main`, `UP,BROADCAST,RUNNING`, …); `crate::net::status` builds them from
//! what rtnetlink reports.

use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::resources::proto;
use crate::resources::{col, Column, ResourceSpec};

/// Namespace of the network resources.
pub const NETWORK_NAMESPACE: &str = "network";

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// `LinkStatuses.net.talos.dev` (id: the link name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatusSpec {
    /// Interface index.
    pub index: u32,
    /// Link layer type (`ether`, `loopback`, …).
    #[serde(rename = "type")]
    pub link_type: String,
    /// Index of the link this one is stacked on (IFLA_LINK), 0 when none.
    pub link_index: u32,
    /// Interface flags (`UP,BROADCAST,RUNNING,MULTICAST,LOWER_UP`).
    pub flags: String,
    /// MAC address.
    pub hardware_addr: String,
    /// Permanent MAC address.
    pub permanent_addr: String,
    /// Link-layer broadcast address.
    pub broadcast_addr: String,
    /// MTU.
    pub mtu: u32,
    /// Queueing discipline.
    pub queue_disc: String,
    /// Index of the master (bridge, bond) when enslaved.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub master_index: u32,
    /// RFC 2863 operational state (`up`, `down`, `unknown`, …).
    pub operational_state: String,
    /// Link kind (`veth`, `bridge`, … ; empty for physical devices).
    pub kind: String,
    /// Kind of the master when enslaved.
    pub slave_kind: String,
    /// Driver name, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Whether the link has carrier.
    pub link_state: bool,
    /// Port type (ethtool); `Other` when unknown.
    pub port: String,
    /// Duplex (ethtool); `Unknown` when unknown.
    pub duplex: String,
}

impl ResourceSpec for LinkStatusSpec {
    const TYPE: &'static str = "LinkStatuses.net.talos.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
    const ALIASES: &'static [&'static str] = &["link", "links"];
    const COLUMNS: &'static [Column] = &[
        col("Type", "{.type}"),
        col("Kind", "{.kind}"),
        col("Hw Addr", "{.hardwareAddr}"),
        col("Oper State", "{.operationalState}"),
        col("Link State", "{.linkState}"),
    ];
    crate::serde_yaml_spec!();
}

/// `AddressStatuses.net.talos.dev` (id: `LINK/ADDRESS/PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressStatusSpec {
    /// Address with prefix length (`10.0.2.15/24`).
    pub address: String,
    /// Local address (IFA_LOCAL), when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// Broadcast address, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<String>,
    /// Anycast address, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anycast: Option<String>,
    /// Multicast address, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multicast: Option<String>,
    /// Interface index.
    pub link_index: u32,
    /// Interface name.
    pub link_name: String,
    /// `inet4` or `inet6`.
    pub family: String,
    /// `global`, `link`, `host`, …
    pub scope: String,
    /// Address flags (`permanent`, …).
    pub flags: String,
}

impl ResourceSpec for AddressStatusSpec {
    const TYPE: &'static str = "AddressStatuses.net.talos.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
    const ALIASES: &'static [&'static str] = &["address", "addresses"];
    const COLUMNS: &'static [Column] = &[col("Address", "{.address}"), col("Link", "{.linkName}")];
    crate::serde_yaml_spec!();
}

/// `RouteStatuses.net.talos.dev` (id: `[TABLE/]FAMILY/GATEWAY/DESTINATION/PRIORITY`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatusSpec {
    /// `inet4` or `inet6`.
    pub family: String,
    /// Destination prefix; empty for the default route.
    pub dst: String,
    /// Preferred source address; empty when none.
    pub src: String,
    /// Gateway; empty when none.
    pub gateway: String,
    /// Output interface index.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub out_link_index: u32,
    /// Output interface name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub out_link_name: String,
    /// Routing table (`main`, `local`, …).
    pub table: String,
    /// Metric.
    pub priority: u32,
    /// Route scope.
    pub scope: String,
    /// Route type (`unicast`, `local`, …).
    #[serde(rename = "type")]
    pub route_type: String,
    /// Route flags.
    pub flags: String,
    /// Who installed the route (`boot`, `kernel`, `static`, `dhcp`, …).
    pub protocol: String,
    /// Route MTU, when set.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
}

impl ResourceSpec for RouteStatusSpec {
    const TYPE: &'static str = "RouteStatuses.net.talos.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
    const ALIASES: &'static [&'static str] = &["route", "routes"];
    const COLUMNS: &'static [Column] = &[
        col("Destination", "{.dst}"),
        col("Gateway", "{.gateway}"),
        col("Link", "{.outLinkName}"),
        col("Metric", "{.priority}"),
    ];
    crate::serde_yaml_spec!();
}

/// `ResolverStatuses.net.talos.dev` (id [`RESOLVER_ID`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolverStatusSpec {
    /// DNS servers in use, in order.
    pub dns_servers: Vec<String>,
}

impl ResourceSpec for ResolverStatusSpec {
    const TYPE: &'static str = "ResolverStatuses.net.talos.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
    const ALIASES: &'static [&'static str] = &["resolvers"];
    const COLUMNS: &'static [Column] = &[col("Resolvers", "{.dnsServers}")];
    crate::serde_yaml_spec!();
}

/// The single id of the resolver status.
pub const RESOLVER_ID: &str = "resolvers";

/// `HostnameStatuses.net.talos.dev` (id [`HOSTNAME_ID`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostnameStatusSpec {
    /// Short host name.
    pub hostname: String,
    /// Domain name (may be empty).
    pub domainname: String,
}

impl HostnameStatusSpec {
    /// Splits a (possibly fully qualified) name at its first dot.
    pub fn from_fqdn(name: &str) -> Self {
        match name.split_once('.') {
            Some((host, domain)) => Self {
                hostname: host.to_string(),
                domainname: domain.to_string(),
            },
            None => Self {
                hostname: name.to_string(),
                domainname: String::new(),
            },
        }
    }

    /// `hostname.domainname`, or just the hostname.
    pub fn fqdn(&self) -> String {
        if self.domainname.is_empty() {
            self.hostname.clone()
        } else {
            format!("{}.{}", self.hostname, self.domainname)
        }
    }
}

impl ResourceSpec for HostnameStatusSpec {
    const TYPE: &'static str = "HostnameStatuses.net.talos.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
    const ALIASES: &'static [&'static str] = &["hostname"];
    const COLUMNS: &'static [Column] = &[
        col("Hostname", "{.hostname}"),
        col("Domainname", "{.domainname}"),
    ];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        proto::HostnameStatus {
            hostname: self.hostname.clone(),
            domainname: self.domainname.clone(),
        }
        .encode_to_vec()
    }
}

/// The single id of the hostname status (and spec).
pub const HOSTNAME_ID: &str = "hostname";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_splits_and_joins() {
        let h = HostnameStatusSpec::from_fqdn("node1.example.org");
        assert_eq!(
            (h.hostname.as_str(), h.domainname.as_str()),
            ("node1", "example.org")
        );
        assert_eq!(h.fqdn(), "node1.example.org");
        let solo = HostnameStatusSpec::from_fqdn("solo");
        assert_eq!(solo.domainname, "");
        assert_eq!(solo.fqdn(), "solo");
        assert_eq!(
            h.to_yaml().unwrap(),
            "hostname: node1\ndomainname: example.org\n"
        );
    }

    #[test]
    fn resolver_yaml() {
        let r = ResolverStatusSpec {
            dns_servers: vec!["1.1.1.1".into()],
        };
        assert_eq!(r.to_yaml().unwrap(), "dnsServers:\n    - 1.1.1.1\n");
        assert_eq!(
            ResolverStatusSpec::from_yaml(&r.to_yaml().unwrap()).unwrap(),
            r
        );
    }
}
