//! Applying a DHCP lease to the kernel (address, MTU, routes) and writing `resolv.conf`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::dhcp::Lease;
use super::rtnl::{Netlink, NetlinkError, RouteSpec};
use crate::fsutil::{self, WriteError, WriteOptions};

/// The kernel routes for a lease on link `index` with metric `metric`: on-link routes first,
/// so that gateways outside the subnet are reachable when the routes through them are added.
pub fn route_specs(lease: &Lease, index: u32, metric: u32) -> Vec<RouteSpec> {
    let mut specs: Vec<RouteSpec> = lease
        .routes()
        .into_iter()
        .map(|r| RouteSpec {
            destination: r.destination,
            prefix_len: r.prefix_len,
            gateway: r.gateway,
            source: Some(lease.address),
            out_index: index,
            metric,
            link_scope: r.link_scope || r.gateway.is_none(),
        })
        .collect();
    specs.sort_by_key(|s| !s.link_scope);
    specs
}

/// Puts a lease into effect on link `index`: the address (with the lease's lifetime, replaced
/// so a renewal refreshes it), the MTU if the lease sets one, and the routes.
pub async fn apply_lease(
    nl: &Netlink,
    index: u32,
    lease: &Lease,
    metric: u32,
) -> Result<(), NetlinkError> {
    nl.add_address(
        index,
        lease.address,
        lease.prefix_len,
        lease.address_lifetime(),
    )
    .await?;
    if let Some(mtu) = lease.mtu {
        nl.set_mtu(index, u32::from(mtu)).await?;
    }
    for spec in route_specs(lease, index, metric) {
        nl.replace_route(&spec).await?;
    }
    Ok(())
}

/// Takes a lost lease out of effect: its routes, then its address.
pub async fn remove_lease(
    nl: &Netlink,
    index: u32,
    lease: &Lease,
    metric: u32,
) -> Result<(), NetlinkError> {
    let mut specs = route_specs(lease, index, metric);
    specs.reverse();
    for spec in specs {
        nl.del_route(&spec).await?;
    }
    nl.del_address(index, IpAddr::V4(lease.address), lease.prefix_len)
        .await
}

/// The DNS servers and search domains of several leases, without duplicates, in order; the
/// default resolvers (1.1.1.1, 8.8.8.8) when no lease names a server. A lease's search list
/// (option 119) wins over its domain name (option 15).
pub fn merge_resolvers<'a>(
    leases: impl IntoIterator<Item = &'a Lease>,
) -> (Vec<Ipv4Addr>, Vec<String>) {
    let mut servers = Vec::new();
    let mut search: Vec<String> = Vec::new();
    for lease in leases {
        for s in &lease.dns {
            if !servers.contains(s) {
                servers.push(*s);
            }
        }
        let domains: Vec<String> = if lease.search.is_empty() {
            lease.domain.iter().cloned().collect()
        } else {
            lease.search.clone()
        };
        for d in domains {
            if !search.contains(&d) {
                search.push(d);
            }
        }
    }
    if servers.is_empty() {
        servers = super::DEFAULT_RESOLVERS.to_vec();
    }
    (servers, search)
}

/// The text of a resolv.conf naming `servers` (at most three, as the resolver reads no more)
/// and the search domains.
pub fn resolv_conf(servers: &[Ipv4Addr], search: &[String]) -> String {
    let mut out = String::new();
    for s in servers.iter().take(3) {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("\nsearch {}\n", search.join(" ")));
    }
    out
}

/// Writes `content` to `path` atomically (mode 0644) unless the file already holds exactly
/// that. Returns whether the file was written.
pub fn write_resolv_conf(path: &Path, content: &str) -> Result<bool, WriteError> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
        return Ok(false);
    }
    // On a fresh node `/system/resolved` does not exist yet.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // An error here resurfaces, with the path, from the write below.
        let _ = std::fs::create_dir_all(parent);
    }
    fsutil::write_atomic(
        path,
        content.as_bytes(),
        WriteOptions::mode(0o644).overwrite(true),
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::dhcp::LeaseRoute;
    use std::time::Duration;

    fn lease() -> Lease {
        Lease {
            address: Ipv4Addr::new(10, 0, 2, 15),
            prefix_len: 24,
            server: Ipv4Addr::new(10, 0, 2, 2),
            routers: vec![Ipv4Addr::new(10, 0, 2, 2)],
            classless_routes: vec![],
            dns: vec![],
            domain: None,
            search: vec![],
            hostname: None,
            ntp: vec![],
            mtu: None,
            broadcast: None,
            lease_time: Some(Duration::from_secs(3600)),
            renew_time: None,
            rebind_time: None,
        }
    }

    #[test]
    fn default_route_with_metric_and_source() {
        let specs = route_specs(&lease(), 2, 1024);
        assert_eq!(
            specs,
            vec![RouteSpec {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
                source: Some(Ipv4Addr::new(10, 0, 2, 15)),
                out_index: 2,
                metric: 1024,
                link_scope: false,
            }]
        );
    }

    #[test]
    fn onlink_routes_come_first() {
        let mut l = lease();
        l.classless_routes = vec![
            LeaseRoute {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                gateway: Some(Ipv4Addr::new(192, 168, 9, 1)),
                link_scope: false,
            },
            LeaseRoute {
                destination: Ipv4Addr::new(192, 168, 9, 1),
                prefix_len: 32,
                gateway: None,
                link_scope: false,
            },
        ];
        let specs = route_specs(&l, 3, 10);
        assert_eq!(specs.len(), 2);
        assert!(specs[0].link_scope);
        assert_eq!(specs[0].destination, Ipv4Addr::new(192, 168, 9, 1));
        assert!(!specs[1].link_scope);
    }

    #[test]
    fn resolvers_merge_in_order_with_defaults() {
        assert_eq!(
            merge_resolvers([]),
            (
                vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 8, 8)],
                vec![]
            )
        );
        let mut a = lease();
        a.dns = vec![Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(10, 0, 0, 54)];
        a.domain = Some("a.example".into());
        let mut b = lease();
        b.dns = vec![Ipv4Addr::new(10, 0, 0, 54), Ipv4Addr::new(10, 1, 0, 53)];
        b.domain = Some("ignored.example".into());
        b.search = vec!["b.example".into(), "a.example".into()];
        let (servers, search) = merge_resolvers([&a, &b]);
        assert_eq!(
            servers,
            vec![
                Ipv4Addr::new(10, 0, 0, 53),
                Ipv4Addr::new(10, 0, 0, 54),
                Ipv4Addr::new(10, 1, 0, 53)
            ]
        );
        assert_eq!(search, vec!["a.example", "b.example"]);
    }

    #[test]
    fn resolv_conf_text_and_atomic_write() {
        let text = resolv_conf(
            &[
                Ipv4Addr::new(10, 0, 2, 3),
                Ipv4Addr::new(1, 1, 1, 1),
                Ipv4Addr::new(8, 8, 8, 8),
                Ipv4Addr::new(9, 9, 9, 9),
            ],
            &["example.org".into()],
        );
        assert_eq!(
            text,
            "nameserver 10.0.2.3\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n\nsearch example.org\n"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("resolv.conf");
        assert!(write_resolv_conf(&path, &text).expect("write"));
        assert!(!write_resolv_conf(&path, &text).expect("unchanged"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        assert!(write_resolv_conf(&path, "nameserver 1.1.1.1\n").expect("rewrite"));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "temporary files left behind: {names:?}");
    }
}
