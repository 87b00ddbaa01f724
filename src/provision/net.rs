//! The cluster network: a named network namespace holding a bridge with the gateway address,
//! and per node a veth pair whose bridge end stays in that namespace while the other end becomes
//! the node's `eth0` (address, default route via the gateway). Every netlink request goes
//! through [`crate::net::rtnl`].
//!
//! Netlink sockets belong to the network namespace of the thread that opens them, so every
//! operation runs on a short-lived thread that first enters the namespace it acts on
//! ([`crate::sys::ns::in_netns`]) and drives a current-thread tokio runtime there.

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::state::NetworkState;
use super::ProvisionError;
use crate::net::rtnl::Netlink;
use crate::sys::ns;

/// Runs `f` with a netlink connection opened inside the network namespace at `netns` (or the
/// current one when `None`).
pub fn with_netlink<T, F, Fut>(netns: Option<&Path>, f: F) -> Result<T, ProvisionError>
where
    T: Send + 'static,
    F: FnOnce(Netlink) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ProvisionError>>,
{
    let body = move || -> Result<T, ProvisionError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ProvisionError::io("starting a netlink runtime"))?;
        // The connection is a task of this runtime: it ends with it.
        rt.block_on(async move { f(Netlink::connect()?).await })
    };
    match netns {
        Some(path) => ns::in_netns(path, body)?,
        None => std::thread::spawn(body)
            .join()
            .unwrap_or_else(|_| Err(ProvisionError::Invalid("netlink thread panicked".into()))),
    }
}

async fn require_link(nl: &Netlink, name: &str) -> Result<u32, ProvisionError> {
    nl.link_index(name)
        .await?
        .ok_or_else(|| ProvisionError::NoSuchLink(name.to_string()))
}

/// The path of the cluster network namespace.
pub fn netns_path(net: &NetworkState) -> PathBuf {
    ns::netns_path(&net.netns)
}

/// Creates the cluster network: the named namespace, `lo` up, and the bridge with the gateway
/// address. On failure nothing is left behind.
pub fn create_network(net: &NetworkState) -> Result<(), ProvisionError> {
    let path = ns::create_named_netns(&net.netns)?;
    let (bridge, mtu, gw, prefix) = (net.bridge.clone(), net.mtu, net.gateway, net.prefix);
    let res = with_netlink(Some(&path), move |nl| async move {
        let lo = require_link(&nl, "lo").await?;
        nl.set_up(lo).await?;
        nl.add_bridge(&bridge, mtu).await?;
        let idx = require_link(&nl, &bridge).await?;
        nl.add_address(idx, gw, prefix, None).await?;
        Ok(())
    });
    if res.is_err() {
        let _ = ns::delete_named_netns(&net.netns);
    }
    res
}

/// Removes the cluster network: the bridge-side veths `veths` and the bridge are deleted
/// explicitly (so they go even if some stray process still holds the namespace), then the
/// namespace is unmounted and its file removed. Missing pieces are fine.
pub fn destroy_network(net: &NetworkState, veths: &[String]) -> Result<(), ProvisionError> {
    let path = netns_path(net);
    if path.exists() {
        let mut names: Vec<String> = veths.to_vec();
        names.push(net.bridge.clone());
        with_netlink(Some(&path), move |nl| async move {
            for name in names {
                // A link gone meanwhile is fine (a veth dies with its peer's namespace).
                if let Some(idx) = nl.link_index(&name).await? {
                    nl.del_link(idx).await?;
                }
            }
            Ok(())
        })?;
    }
    Ok(ns::delete_named_netns(&net.netns)?)
}

/// The name of a node's link to the cluster bridge.
pub const NODE_LINK: &str = "eth0";

/// How one node is wired.
#[derive(Debug, Clone)]
pub struct NodeLink {
    /// Bridge-side veth name (in the cluster namespace).
    pub veth: String,
    /// Node address.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Ipv4Addr,
    /// MTU.
    pub mtu: u32,
}

/// Connects the process `pid` (in its own network namespace) to the cluster bridge: a veth pair
/// is created in the cluster namespace, one end enslaved to the bridge, the other moved into the
/// node's namespace, renamed `eth0`, addressed, and given the default route. `lo` is set up too.
pub fn attach_node(net: &NetworkState, link: &NodeLink, pid: i32) -> Result<(), ProvisionError> {
    let cluster_ns = netns_path(net);
    let bridge = net.bridge.clone();
    let l = link.clone();
    let peer = format!("{}p", link.veth);
    let peer2 = peer.clone();
    with_netlink(Some(&cluster_ns), move |nl| async move {
        let br = require_link(&nl, &bridge).await?;
        // A node restarted quickly: the old pair may still be on its way out.
        for attempt in 0..20 {
            for name in [&l.veth, &peer2] {
                if let Some(old) = nl.link_index(name).await? {
                    let _ = nl.del_link(old).await;
                }
            }
            match nl.add_veth(&l.veth, &peer2, l.mtu, br).await {
                Ok(()) => break,
                Err(e) if attempt < 19 => {
                    tracing::debug!("{e}, retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let p = require_link(&nl, &peer2).await?;
        nl.move_to_netns_of(p, pid as u32).await?;
        Ok(())
    })?;
    let node_ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let l = link.clone();
    with_netlink(Some(&node_ns), move |nl| async move {
        let lo = require_link(&nl, "lo").await?;
        nl.set_up(lo).await?;
        let idx = require_link(&nl, &peer).await?;
        nl.rename(idx, NODE_LINK).await?;
        nl.set_mtu(idx, l.mtu).await?;
        nl.set_up(idx).await?;
        nl.add_address(idx, l.ip, l.prefix, None).await?;
        nl.add_default_route(l.gateway, idx).await?;
        Ok(())
    })
}

/// Names of all links in the network namespace at `netns` (or the current one).
pub fn link_names(netns: Option<&Path>) -> Result<Vec<String>, ProvisionError> {
    with_netlink(netns, |nl| async move {
        Ok(nl.links().await?.into_iter().map(|l| l.name).collect())
    })
}
