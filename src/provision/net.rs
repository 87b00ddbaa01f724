//! The cluster network, over rtnetlink: a named network namespace holding a bridge with the
//! gateway address, and per node a veth pair whose bridge end stays in that namespace while the
//! other end becomes the node's `eth0` (address, default route via the gateway).
//!
//! Netlink sockets belong to the network namespace of the thread that opens them, so every
//! operation runs on a short-lived thread that first enters the namespace it acts on
//! ([`crate::sys::ns::in_netns`]) and drives a current-thread tokio runtime there.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::state::NetworkState;
use super::ProvisionError;
use crate::sys::ns;

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> ProvisionError {
    let what = what.into();
    move |e| ProvisionError::Netlink {
        what,
        detail: e.to_string(),
    }
}

/// Runs `f` with a netlink handle opened inside the network namespace at `netns` (or the current
/// one when `None`).
pub fn with_netlink<T, F, Fut>(netns: Option<&Path>, f: F) -> Result<T, ProvisionError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ProvisionError>>,
{
    let body = move || -> Result<T, ProvisionError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ProvisionError::io("starting a netlink runtime"))?;
        rt.block_on(async move {
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(ProvisionError::io("opening netlink"))?;
            let task = tokio::spawn(conn);
            let out = f(handle).await;
            task.abort();
            out
        })
    };
    match netns {
        Some(path) => ns::in_netns(path, body)?,
        None => std::thread::spawn(body)
            .join()
            .unwrap_or_else(|_| Err(ProvisionError::Invalid("netlink thread panicked".into()))),
    }
}

/// The index of the link `name`, if it exists.
pub async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, ProvisionError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        // "No such device" comes back as an error for a name filter.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -nix::libc::ENODEV => Ok(None),
        Err(e) => Err(nl(format!("looking up link {name}"))(e)),
    }
}

async fn require_link(handle: &Handle, name: &str) -> Result<u32, ProvisionError> {
    link_index(handle, name)
        .await?
        .ok_or_else(|| ProvisionError::Netlink {
            what: format!("looking up link {name}"),
            detail: "no such link".into(),
        })
}

async fn set_up(handle: &Handle, index: u32, what: &str) -> Result<(), ProvisionError> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("setting {what} up")))
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
    let res = with_netlink(Some(&path), move |h| async move {
        let lo = require_link(&h, "lo").await?;
        set_up(&h, lo, "lo").await?;
        h.link()
            .add(LinkBridge::new(&bridge).mtu(mtu).up().build())
            .execute()
            .await
            .map_err(nl(format!("creating bridge {bridge}")))?;
        let idx = require_link(&h, &bridge).await?;
        h.address()
            .add(idx, IpAddr::V4(gw), prefix)
            .execute()
            .await
            .map_err(nl(format!("adding {gw}/{prefix} to {bridge}")))?;
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
        with_netlink(Some(&path), move |h| async move {
            for name in names {
                if let Some(idx) = link_index(&h, &name).await? {
                    match h.link().del(idx).execute().await {
                        Ok(()) => {}
                        // Gone meanwhile (a veth dies with its peer's namespace).
                        Err(rtnetlink::Error::NetlinkError(e))
                            if e.raw_code() == -nix::libc::ENODEV => {}
                        Err(e) => return Err(nl(format!("deleting link {name}"))(e)),
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(ns::delete_named_netns(&net.netns)?)
}

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
    with_netlink(Some(&cluster_ns), move |h| async move {
        let br = require_link(&h, &bridge).await?;
        // A node restarted quickly: the old pair may still be on its way out.
        for attempt in 0..20 {
            for name in [&l.veth, &peer2] {
                if let Some(old) = link_index(&h, name).await? {
                    let _ = h.link().del(old).execute().await;
                }
            }
            let res = h
                .link()
                .add(
                    LinkVeth::new(&l.veth, &peer2)
                        .mtu(l.mtu)
                        .controller(br)
                        .up()
                        .build(),
                )
                .execute()
                .await;
            match res {
                Ok(()) => break,
                Err(e) if attempt < 19 => {
                    tracing::debug!("creating veth {}: {e}, retrying", l.veth);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(nl(format!("creating veth {}", l.veth))(e)),
            }
        }
        let p = require_link(&h, &peer2).await?;
        h.link()
            .set(
                LinkUnspec::new_with_index(p)
                    .setns_by_pid(pid as u32)
                    .build(),
            )
            .execute()
            .await
            .map_err(nl(format!(
                "moving {peer2} into the namespace of pid {pid}"
            )))?;
        Ok(())
    })?;
    let node_ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let l = link.clone();
    with_netlink(Some(&node_ns), move |h| async move {
        let lo = require_link(&h, "lo").await?;
        set_up(&h, lo, "lo").await?;
        let idx = require_link(&h, &peer).await?;
        h.link()
            .set(
                LinkUnspec::new_with_index(idx)
                    .name("eth0".to_string())
                    .mtu(l.mtu)
                    .build(),
            )
            .execute()
            .await
            .map_err(nl("renaming the node link to eth0"))?;
        set_up(&h, idx, "eth0").await?;
        h.address()
            .add(idx, IpAddr::V4(l.ip), l.prefix)
            .execute()
            .await
            .map_err(nl(format!("adding {}/{} to eth0", l.ip, l.prefix)))?;
        h.route()
            .add(
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(l.gateway)
                    .output_interface(idx)
                    .build(),
            )
            .execute()
            .await
            .map_err(nl(format!("adding the default route via {}", l.gateway)))?;
        Ok(())
    })
}

/// Names of all links in the network namespace at `netns` (or the current one).
pub fn link_names(netns: Option<&Path>) -> Result<Vec<String>, ProvisionError> {
    with_netlink(netns, |h| async move {
        let mut out = Vec::new();
        let mut links = h.link().get().execute();
        while let Some(msg) = links.try_next().await.map_err(nl("listing links"))? {
            for attr in msg.attributes {
                if let rtnetlink::packet_route::link::LinkAttribute::IfName(n) = attr {
                    out.push(n);
                }
            }
        }
        Ok(out)
    })
}
