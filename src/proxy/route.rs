//! Where a call goes: Talos's director rules over the `proxyfrom`, `nodes` and `node` metadata,
//! and the metadata a forwarded call carries.

use std::collections::HashSet;
use std::net::IpAddr;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::Status;

use crate::auth::role::{RoleSet, METADATA_KEY as ROLE_KEY};

/// Metadata key of the one-to-many target list.
pub const NODES_KEY: &str = "nodes";
/// Metadata key of the one-to-one target.
pub const NODE_KEY: &str = "node";
/// Metadata key marking a call another apid forwarded (it is served locally, never forwarded).
pub const PROXY_FROM_KEY: &str = "proxyfrom";

/// The decision for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Served by this node's machined.
    Local,
    /// Passed through, unchanged, to one other node's apid.
    One(String),
    /// Sent to every target; the replies are merged with per-node metadata.
    Many(Vec<String>),
}

/// The addresses and names that mean "this node".
#[derive(Debug, Clone, Default)]
pub struct LocalAddresses {
    ips: HashSet<IpAddr>,
    names: HashSet<String>,
    /// The port apid listens on: `host:port` is local only with this port.
    port: u16,
}

impl LocalAddresses {
    /// This node is `addresses` (IP addresses or host names) with apid on `port`.
    pub fn new<S: AsRef<str>>(addresses: impl IntoIterator<Item = S>, port: u16) -> Self {
        let mut me = LocalAddresses {
            port,
            ..Default::default()
        };
        for a in addresses {
            me.add(a.as_ref());
        }
        me
    }

    /// Adds one address or host name.
    pub fn add(&mut self, address: &str) {
        let host = address.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                self.ips.insert(ip);
            }
            Err(_) => {
                self.names.insert(host.to_ascii_lowercase());
            }
        }
    }

    /// Whether `target` (`host` or `host:port`) is this node.
    pub fn is_local(&self, target: &str) -> bool {
        let Some((host, port)) = split_target(target) else {
            return false;
        };
        if port.is_some_and(|p| p != self.port) {
            return false;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => self.ips.contains(&ip),
            Err(_) => self.names.contains(&host.to_ascii_lowercase()),
        }
    }
}

/// Splits a target into host and optional port: `10.5.0.2`, `10.5.0.2:50000`, `node-1`,
/// `node-1:50000`, `fd00::1`, `[fd00::1]`, `[fd00::1]:50000`. `None` for an empty host or a
/// port that is not a number.
pub fn split_target(target: &str) -> Option<(&str, Option<u16>)> {
    let target = target.trim();
    if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return (!host.is_empty()).then_some((host, port));
    }
    // A bare IPv6 address has several colons and no port.
    if target.matches(':').count() > 1 {
        return Some((target, None));
    }
    match target.split_once(':') {
        Some((host, port)) => {
            let port = port.parse().ok()?;
            (!host.is_empty()).then_some((host, Some(port)))
        }
        None => (!target.is_empty()).then_some((target, None)),
    }
}

/// All values of `key`, each also split at commas, trimmed, empty ones dropped. `None` if the
/// key is absent.
fn values(md: &MetadataMap, key: &str) -> Option<Vec<String>> {
    let raw: Vec<&str> = md
        .get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if raw.is_empty() && md.get(key).is_none() {
        return None;
    }
    Some(
        raw.iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// Decides where the call to `method` with request metadata `md` goes.
///
/// - `proxyfrom` present: local (another apid already forwarded it).
/// - `nodes`: one-to-many (refused for COSI methods); a single local target on a node that
///   cannot forward is served locally.
/// - `node`: must have one value; local if it names this node, else one-to-one.
/// - neither: local.
///
/// Without `forwarding` (a worker: no client certificate) any remote target is refused with
/// `PermissionDenied` "no request forwarding".
pub fn route(
    method: &str,
    md: &MetadataMap,
    forwarding: bool,
    local: &LocalAddresses,
) -> Result<Route, Status> {
    if md.get(PROXY_FROM_KEY).is_some() {
        return Ok(Route::Local);
    }
    let node_count = md.get_all(NODE_KEY).iter().count();
    if node_count > 1 {
        return Err(Status::invalid_argument(
            "node metadata must be single-valued",
        ));
    }
    if let Some(nodes) = values(md, NODES_KEY) {
        if nodes.is_empty() {
            return Err(Status::internal("invalid target \"\""));
        }
        if method.starts_with("/cosi.") {
            return Err(Status::invalid_argument(
                "one-2-many proxying is not supported for COSI methods",
            ));
        }
        if nodes.len() == 1 && !forwarding && local.is_local(&nodes[0]) {
            return Ok(Route::Local);
        }
        if !forwarding && nodes.iter().any(|n| !local.is_local(n)) {
            return Err(no_forwarding());
        }
        return Ok(Route::Many(nodes));
    }
    if node_count == 1 {
        let node = md
            .get(NODE_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .unwrap_or_default();
        if node.is_empty() || split_target(node).is_none() {
            return Err(Status::internal(format!("invalid target {node:?}")));
        }
        if local.is_local(node) {
            return Ok(Route::Local);
        }
        if !forwarding {
            return Err(no_forwarding());
        }
        return Ok(Route::One(node.to_owned()));
    }
    Ok(Route::Local)
}

fn no_forwarding() -> Status {
    Status::permission_denied("no request forwarding")
}

/// Replaces the `talos-role` values with `roles`, one value per role (as Talos sends them).
pub fn set_roles(md: &mut MetadataMap, roles: &RoleSet) {
    md.remove(ROLE_KEY);
    for role in roles.strings() {
        if let Ok(v) = MetadataValue::try_from(role.as_str()) {
            md.append(ROLE_KEY, v);
        }
    }
}

/// Metadata for machined: the caller's metadata with `talos-role` set to the caller's roles
/// (whatever `talos-role` the caller sent is replaced: machined trusts it).
pub fn local_metadata(incoming: &MetadataMap, roles: &RoleSet) -> MetadataMap {
    let mut md = incoming.clone();
    set_roles(&mut md, roles);
    md
}

/// Metadata for another node's apid: the caller's metadata without the routing keys, with
/// `proxyfrom` set to the authority the caller dialled (`unknown` if none) and `talos-role` to
/// the caller's roles.
pub fn forward_metadata(
    incoming: &MetadataMap,
    roles: &RoleSet,
    authority: Option<&str>,
) -> MetadataMap {
    let mut md = incoming.clone();
    md.remove(NODES_KEY);
    md.remove(NODE_KEY);
    let from = authority.filter(|a| !a.is_empty()).unwrap_or("unknown");
    let from =
        MetadataValue::try_from(from).unwrap_or_else(|_| MetadataValue::from_static("unknown"));
    md.insert(PROXY_FROM_KEY, from);
    set_roles(&mut md, roles);
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::role::Role;

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut md = MetadataMap::new();
        for (k, v) in pairs {
            md.append(*k, v.parse().unwrap());
        }
        md
    }

    fn local() -> LocalAddresses {
        LocalAddresses::new(["10.5.0.2", "node-1", "fd00::2"], 50000)
    }

    const VERSION: &str = "/machine.MachineService/Version";

    #[test]
    fn targets() {
        assert_eq!(split_target("10.5.0.2"), Some(("10.5.0.2", None)));
        assert_eq!(split_target("10.5.0.2:123"), Some(("10.5.0.2", Some(123))));
        assert_eq!(split_target("fd00::1"), Some(("fd00::1", None)));
        assert_eq!(split_target("[fd00::1]"), Some(("fd00::1", None)));
        assert_eq!(split_target("[fd00::1]:5"), Some(("fd00::1", Some(5))));
        assert_eq!(split_target("host:x"), None);
        assert_eq!(split_target(""), None);
        assert_eq!(split_target(":5"), None);
        assert_eq!(split_target("[fd00::1]x"), None);
    }

    #[test]
    fn local_addresses() {
        let l = local();
        assert!(l.is_local("10.5.0.2"));
        assert!(l.is_local("10.5.0.2:50000"));
        assert!(!l.is_local("10.5.0.2:50001"));
        assert!(l.is_local("NODE-1"));
        assert!(l.is_local("[fd00::2]:50000"));
        assert!(l.is_local("fd00:0::2"));
        assert!(!l.is_local("10.5.0.3"));
        assert!(!l.is_local(""));
    }

    #[test]
    fn default_and_proxyfrom_are_local() {
        let l = local();
        assert_eq!(route(VERSION, &md(&[]), true, &l).unwrap(), Route::Local);
        let m = md(&[("proxyfrom", "x"), ("nodes", "10.5.0.3"), ("node", "a")]);
        assert_eq!(route(VERSION, &m, true, &l).unwrap(), Route::Local);
        assert_eq!(route(VERSION, &m, false, &l).unwrap(), Route::Local);
    }

    #[test]
    fn nodes_fan_out() {
        let l = local();
        let m = md(&[("nodes", "10.5.0.3"), ("nodes", "10.5.0.4, 10.5.0.5")]);
        assert_eq!(
            route(VERSION, &m, true, &l).unwrap(),
            Route::Many(vec![
                "10.5.0.3".into(),
                "10.5.0.4".into(),
                "10.5.0.5".into()
            ])
        );
        // Even one target is one-to-many (the reply gets the hostname).
        let m = md(&[("nodes", "10.5.0.3")]);
        assert_eq!(
            route(VERSION, &m, true, &l).unwrap(),
            Route::Many(vec!["10.5.0.3".into()])
        );
        let err = route("/cosi.resource.State/Get", &m, true, &l).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            err.message(),
            "one-2-many proxying is not supported for COSI methods"
        );
        let err = route(VERSION, &md(&[("nodes", " , ")]), true, &l).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
    }

    #[test]
    fn worker_cannot_forward() {
        let l = local();
        let m = md(&[("nodes", "10.5.0.3")]);
        let err = route(VERSION, &m, false, &l).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert_eq!(err.message(), "no request forwarding");
        let err = route(VERSION, &md(&[("node", "10.5.0.3")]), false, &l).unwrap_err();
        assert_eq!(err.message(), "no request forwarding");
        // Its own address is fine.
        assert_eq!(
            route(VERSION, &md(&[("nodes", "10.5.0.2")]), false, &l).unwrap(),
            Route::Local
        );
        assert_eq!(
            route(VERSION, &md(&[("node", "node-1")]), false, &l).unwrap(),
            Route::Local
        );
        // Several local names: still served here, each tagged.
        assert_eq!(
            route(VERSION, &md(&[("nodes", "10.5.0.2,node-1")]), false, &l).unwrap(),
            Route::Many(vec!["10.5.0.2".into(), "node-1".into()])
        );
    }

    #[test]
    fn node_one_to_one() {
        let l = local();
        assert_eq!(
            route(VERSION, &md(&[("node", "10.5.0.3")]), true, &l).unwrap(),
            Route::One("10.5.0.3".into())
        );
        assert_eq!(
            route(VERSION, &md(&[("node", "10.5.0.2")]), true, &l).unwrap(),
            Route::Local
        );
        let err = route(VERSION, &md(&[("node", "a"), ("node", "b")]), true, &l).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), "node metadata must be single-valued");
        // COSI one-to-one is fine.
        assert_eq!(
            route("/cosi.resource.State/Get", &md(&[("node", "x")]), true, &l).unwrap(),
            Route::One("x".into())
        );
        // nodes wins over node.
        assert_eq!(
            route(VERSION, &md(&[("node", "x"), ("nodes", "y")]), true, &l).unwrap(),
            Route::Many(vec!["y".into()])
        );
    }

    #[test]
    fn metadata_for_backends() {
        let roles = RoleSet::from([Role::Admin, Role::Reader]);
        let incoming = md(&[
            ("nodes", "a"),
            ("nodes", "b"),
            ("node", "c"),
            ("talos-role", "os:impersonator"),
            ("x-custom", "kept"),
        ]);
        let local = local_metadata(&incoming, &roles);
        let got: Vec<_> = local.get_all("talos-role").iter().collect();
        assert_eq!(got, ["os:admin", "os:reader"]);
        assert_eq!(local.get("x-custom").unwrap(), "kept");

        let fwd = forward_metadata(&incoming, &roles, Some("10.5.0.2:50000"));
        assert!(fwd.get("nodes").is_none());
        assert!(fwd.get("node").is_none());
        assert_eq!(fwd.get("proxyfrom").unwrap(), "10.5.0.2:50000");
        assert_eq!(fwd.get_all("talos-role").iter().count(), 2);
        assert_eq!(fwd.get("x-custom").unwrap(), "kept");
        let fwd = forward_metadata(&MetadataMap::new(), &roles, None);
        assert_eq!(fwd.get("proxyfrom").unwrap(), "unknown");
    }
}
