//! Address and name planning: the CIDR, the gateway, and which node gets which IP and name.

use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use super::state::NodeType;
use super::ProvisionError;

/// An IPv4 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address (host bits cleared).
    pub network: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `A.B.C.D/N`; host bits must be zero, and the network must hold at least a gateway
    /// and one node (prefix ≤ 30). IPv6 is not supported by the container provisioner.
    pub fn parse(s: &str) -> Result<Cidr, ProvisionError> {
        let bad = |why: &str| ProvisionError::Invalid(format!("invalid CIDR {s:?}: {why}"));
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 10.5.0.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("only IPv4 networks are supported by the container provisioner"))?;
        let prefix: u8 = len
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| bad("prefix length must be 0..32"))?;
        if prefix > 30 {
            return Err(bad("network too small (prefix must be at most /30)"));
        }
        let mask = Self::mask_of(prefix);
        if u32::from(addr) & !mask != 0 {
            return Err(bad(&format!(
                "host bits set, did you mean {}/{prefix}?",
                Ipv4Addr::from(u32::from(addr) & mask)
            )));
        }
        Ok(Cidr {
            network: addr,
            prefix,
        })
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }

    /// The `n`-th address of the network (0 is the network address).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix);
        // The last address is the broadcast address.
        if u64::from(n) >= size - 1 {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.network) + n))
    }

    /// The gateway, the first host address (`.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        // prefix ≤ 30 guarantees .1 exists.
        Ipv4Addr::from(u32::from(self.network) + 1)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One planned node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNode {
    /// `<cluster>-controlplane-<n>` or `<cluster>-worker-<n>`.
    pub name: String,
    /// Role.
    pub node_type: NodeType,
    /// Address (from `.2` upwards, control planes first).
    pub ip: Ipv4Addr,
}

/// Names and addresses for `controlplanes` control planes then `workers` workers.
pub fn plan_nodes(
    cluster: &str,
    cidr: &Cidr,
    controlplanes: u32,
    workers: u32,
) -> Result<Vec<PlannedNode>, ProvisionError> {
    if controlplanes == 0 {
        return Err(ProvisionError::Invalid(
            "at least one control plane node is required".into(),
        ));
    }
    let mut out = Vec::new();
    let kinds = (1..=controlplanes)
        .map(|i| (NodeType::Controlplane, i))
        .chain((1..=workers).map(|i| (NodeType::Worker, i)));
    for (n, (kind, i)) in kinds.enumerate() {
        let ip = u32::try_from(n)
            .ok()
            .and_then(|n| n.checked_add(2))
            .and_then(|k| cidr.nth(k))
            .ok_or_else(|| {
                ProvisionError::Invalid(format!(
                    "CIDR {cidr} has no room for {} nodes",
                    controlplanes as u64 + workers as u64
                ))
            })?;
        out.push(PlannedNode {
            name: format!("{cluster}-{}-{i}", kind.as_str()),
            node_type: kind,
            ip,
        });
    }
    Ok(out)
}

/// The bridge name for a cluster: `talos` + the first 8 hex digits of sha256(name) (fits IFNAMSIZ).
pub fn bridge_name(cluster: &str) -> String {
    let digest = Sha256::digest(cluster.as_bytes());
    format!("talos{}", &hex::encode(digest)[..8])
}

/// Checks a cluster name: it names directories, a network namespace and host names.
pub fn validate_cluster_name(name: &str) -> Result<(), ProvisionError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ProvisionError::Invalid(format!(
            "invalid cluster name {name:?}: use 1-40 letters, digits and inner dashes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_addresses() {
        let c = Cidr::parse("10.5.0.0/24").unwrap();
        assert_eq!(c.to_string(), "10.5.0.0/24");
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 5, 0, 1));
        assert_eq!(c.nth(2), Some(Ipv4Addr::new(10, 5, 0, 2)));
        assert_eq!(c.nth(254), Some(Ipv4Addr::new(10, 5, 0, 254)));
        assert_eq!(c.nth(255), None);
        for (bad, why) in [
            ("10.5.0.0", "ADDRESS/PREFIX"),
            ("10.5.0.1/24", "did you mean 10.5.0.0/24"),
            ("fd00::/64", "IPv4"),
            ("10.5.0.0/33", "prefix"),
            ("10.5.0.0/31", "too small"),
        ] {
            let e = Cidr::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn nodes_are_control_planes_first_from_dot_two() {
        let c = Cidr::parse("10.5.0.0/24").unwrap();
        let nodes = plan_nodes("talos-default", &c, 1, 2).unwrap();
        let got: Vec<(String, String)> = nodes
            .iter()
            .map(|n| (n.name.clone(), n.ip.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("talos-default-controlplane-1", "10.5.0.2"),
                ("talos-default-worker-1", "10.5.0.3"),
                ("talos-default-worker-2", "10.5.0.4"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(nodes[0].node_type, NodeType::Controlplane);
        let small = Cidr::parse("10.0.0.0/30").unwrap();
        assert!(plan_nodes("x", &small, 1, 0).is_ok());
        let e = plan_nodes("x", &small, 1, 1).unwrap_err().to_string();
        assert!(e.contains("no room for 2 nodes"), "{e}");
        assert!(plan_nodes("x", &c, 0, 1).is_err());
    }

    #[test]
    fn bridge_and_cluster_names() {
        let b = bridge_name("talos-default");
        assert!(b.starts_with("talos") && b.len() == 13, "{b}");
        assert!(validate_cluster_name("talos-default").is_ok());
        for bad in ["", "a/b", "-x", "a b", "x-"] {
            assert!(validate_cluster_name(bad).is_err(), "{bad}");
        }
    }
}
