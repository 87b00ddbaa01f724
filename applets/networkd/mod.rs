//! The `networkd` applet: default networking of a node.
//!
//! ```text
//! talos networkd [--machined-socket PATH] [--resolv-conf PATH] [--interface NAME]...
//!                [--interface-ignore NAME]... [--hostname NAME] [--route-metric N] [--no-publish]
//! ```
//!
//! Brings loopback up, then runs a DHCPv4 client on every physical link (one backed by a device
//! in `/sys/class/net/NAME/device`; loopback, veth, bridges and other virtual links are skipped)
//! unless `--interface` names the links explicitly. Leases are applied as Talos does: the address
//! with the lease's lifetime, the routes (option 121 when present, else a default route through
//! the router) with metric 1024, the DNS servers written to `--resolv-conf` (1.1.1.1 and 8.8.8.8
//! while no lease names any), and the lease's host name when none is configured. Leases are
//! renewed at T1, rebound at T2 and dropped on expiry or NAK.
//!
//! The link, address, route, resolver and hostname statuses are published to machined over its
//! unix socket with the COSI State API (`network` namespace); machined not answering is logged
//! and retried, never fatal. SIGTERM/SIGINT end networkd cleanly, leaving the addresses in place
//! (as Talos does).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use talos::constants::{MACHINE_SOCKET_PATH, POD_RESOLV_CONF_PATH};
use talos::errors::chain;
use talos::net::client::{Client, ClientConfig, LeaseEvent};
use talos::net::dhcp::{ClientId, Lease};
use talos::net::publish::{CosiPublisher, MemoryPublisher, Publisher};
use talos::net::rtnl::{Link, Netlink};
use talos::net::{apply, status, DEFAULT_ROUTE_METRIC};
use talos::resources::specs::HostnameStatusSpec;
use talos::resources::Resource;
use tokio::sync::mpsc;

/// Owner of the published resources.
const OWNER: &str = "network.DHCPController";

/// How often the statuses are re-read and published.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(5);

/// networkd: links, addresses, routes, DHCP.
#[derive(Debug, Parser)]
#[command(name = "networkd", version = talos::version::TALOS_VERSION)]
pub struct Cli {
    /// machined's API socket, where status resources are published.
    #[arg(long, value_name = "PATH", default_value = MACHINE_SOCKET_PATH)]
    pub machined_socket: PathBuf,

    /// Where to write the resolvers.
    #[arg(long, value_name = "PATH", default_value = POD_RESOLV_CONF_PATH)]
    pub resolv_conf: PathBuf,

    /// Run DHCP on exactly these links (any kind, virtual ones too) instead of every physical
    /// link.
    #[arg(long = "interface", value_name = "NAME")]
    pub interfaces: Vec<String>,

    /// Never touch this link.
    #[arg(long = "interface-ignore", value_name = "NAME")]
    pub ignore: Vec<String>,

    /// The configured host name: sent to DHCP servers and never replaced by a lease's.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Metric of the routes from DHCP.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ROUTE_METRIC)]
    pub route_metric: u32,

    /// Do not publish status resources to machined.
    #[arg(long)]
    pub no_publish: bool,
}

/// Entry point of the `networkd` applet.
pub fn main(args: Vec<OsString>) -> ExitCode {
    crate::edge::main(
        args,
        crate::edge::Errors::Named("networkd"),
        crate::edge::stderr_logging,
        |cli: Cli| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(async {
                if cli.no_publish {
                    run(cli, MemoryPublisher::default()).await
                } else {
                    let p = CosiPublisher::new(cli.machined_socket.clone(), OWNER);
                    run(cli, p).await
                }
            })
        },
    )
}

/// Which links get a DHCP client: the named ones, or every physical non-loopback link; never
/// an ignored one.
pub fn select_links<'a>(links: &'a [Link], named: &[String], ignore: &[String]) -> Vec<&'a Link> {
    links
        .iter()
        .filter(|l| !ignore.contains(&l.name))
        .filter(|l| {
            if named.is_empty() {
                l.physical && !l.is_loopback() && l.kind.is_empty()
            } else {
                named.contains(&l.name)
            }
        })
        .collect()
}

/// A link networkd runs DHCP on.
struct Managed {
    index: u32,
    lease: Option<Lease>,
}

/// networkd's state.
struct Networkd<P> {
    nl: Netlink,
    cli: Cli,
    links: BTreeMap<String, Managed>,
    publisher: P,
    last_publish_error: Option<String>,
    /// Where the clients' events go.
    tx: mpsc::Sender<(String, LeaseEvent)>,
    /// The clients and their event forwarders.
    tasks: tokio::task::JoinSet<()>,
    /// Host name sent in DHCP requests (option 12).
    send_hostname: Option<String>,
}

impl<P: Publisher> Networkd<P> {
    /// DNS servers and search domains of all leases (links in name order).
    fn resolvers(&self) -> (Vec<Ipv4Addr>, Vec<String>) {
        apply::merge_resolvers(self.links.values().filter_map(|m| m.lease.as_ref()))
    }

    fn write_resolvers(&self) {
        let (servers, search) = self.resolvers();
        let text = apply::resolv_conf(&servers, &search);
        match apply::write_resolv_conf(&self.cli.resolv_conf, &text) {
            Ok(true) => tracing::info!(
                "resolvers {} written to {}",
                servers
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.cli.resolv_conf.display()
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot write resolvers: {}", chain(&e)),
        }
    }

    /// The host name in effect: the configured one, else the first lease's (its domain name
    /// option overriding the name's own domain, as Talos does), else the kernel's.
    fn hostname(&self) -> HostnameStatusSpec {
        if let Some(h) = &self.cli.hostname {
            return HostnameStatusSpec::from_fqdn(h);
        }
        if let Some(lease) = self
            .links
            .values()
            .filter_map(|m| m.lease.as_ref())
            .find(|l| l.hostname.is_some())
        {
            let mut spec = HostnameStatusSpec::from_fqdn(lease.hostname.as_deref().unwrap_or(""));
            if let Some(d) = &lease.domain {
                spec.domainname = d.clone();
            }
            return spec;
        }
        let kernel = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        HostnameStatusSpec::from_fqdn(&kernel)
    }

    fn apply_lease_hostname(&self, lease: &Lease) {
        if self.cli.hostname.is_some() {
            return;
        }
        let Some(name) = &lease.hostname else {
            return;
        };
        let short = name.split('.').next().unwrap_or(name);
        let current = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        if current == short {
            return;
        }
        match nix::unistd::sethostname(short) {
            Ok(()) => tracing::info!("hostname set to {short} from the DHCP lease"),
            Err(e) => tracing::warn!("cannot set hostname {short}: {e}"),
        }
    }

    /// Starts a DHCP client on each selected link of `links` that has none yet.
    async fn start_clients(&mut self, links: &[Link]) {
        let selected: Vec<Link> = select_links(links, &self.cli.interfaces, &self.cli.ignore)
            .into_iter()
            .filter(|l| !self.links.contains_key(&l.name))
            .cloned()
            .collect();
        for link in selected {
            if !link.is_up() {
                if let Err(e) = self.nl.set_up(link.index).await {
                    tracing::warn!("cannot bring {} up: {}", link.name, chain(&e));
                    continue;
                }
            }
            let cfg = ClientConfig::new(
                link.name.clone(),
                ClientId {
                    mac: link.mac.clone(),
                    hostname: self.send_hostname.clone(),
                },
            );
            let (ltx, mut lrx) = mpsc::channel(4);
            let client = match Client::new(cfg, ltx) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("{} (will retry)", chain(&e));
                    continue;
                }
            };
            tracing::info!("DHCP client started on {}", link.name);
            self.links.insert(
                link.name.clone(),
                Managed {
                    index: link.index,
                    lease: None,
                },
            );
            let name = link.name.clone();
            self.tasks.spawn(async move {
                if let Err(e) = client.run().await {
                    tracing::error!("DHCP client on {name} stopped: {}", chain(&e));
                }
            });
            let tx = self.tx.clone();
            let name = link.name.clone();
            self.tasks.spawn(async move {
                while let Some(ev) = lrx.recv().await {
                    if tx.send((name.clone(), ev)).await.is_err() {
                        break;
                    }
                }
            });
        }
    }

    async fn on_event(&mut self, link: &str, ev: LeaseEvent) {
        let metric = self.cli.route_metric;
        let Some(index) = self.links.get(link).map(|m| m.index) else {
            return;
        };
        match ev {
            LeaseEvent::Bound { lease, renewed } => {
                let gw = lease
                    .gateway()
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "none".into());
                tracing::info!(
                    "DHCP ACK on {link}: {}/{} gw {gw}{}",
                    lease.address,
                    lease.prefix_len,
                    if renewed { " (renewed)" } else { "" }
                );
                if let Err(e) = apply::apply_lease(&self.nl, index, &lease, metric).await {
                    tracing::warn!("applying the lease on {link}: {}", chain(&e));
                }
                self.apply_lease_hostname(&lease);
                if let Some(m) = self.links.get_mut(link) {
                    m.lease = Some(lease);
                }
            }
            LeaseEvent::Lost { lease, reason } => {
                tracing::warn!(
                    "DHCP lease {}/{} on {link} lost: {reason}",
                    lease.address,
                    lease.prefix_len
                );
                if let Err(e) = apply::remove_lease(&self.nl, index, &lease, metric).await {
                    tracing::warn!("removing the lease on {link}: {}", chain(&e));
                }
                if let Some(m) = self.links.get_mut(link) {
                    m.lease = None;
                }
            }
        }
        self.write_resolvers();
        self.publish().await;
    }

    async fn statuses(&self) -> anyhow::Result<Vec<Resource>> {
        let mut out = Vec::new();
        for link in self.nl.links().await? {
            out.push(status::link_status(&link));
        }
        for addr in self.nl.addresses().await? {
            out.push(status::address_status(&addr));
        }
        for route in self.nl.routes().await? {
            out.push(status::route_status(&route));
        }
        out.push(status::resolver_status(&self.resolvers().0));
        out.push(status::hostname_status_spec(&self.hostname()));
        // Two kernel routes can map to one Talos id; keep the first.
        let mut seen = std::collections::HashSet::new();
        out.retain(|r| {
            let md = &r.metadata;
            seen.insert((md.resource_type.clone(), md.id.clone()))
        });
        Ok(out)
    }

    async fn publish(&mut self) {
        let res = match self.statuses().await {
            Ok(list) => self
                .publisher
                .sync(&list)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.context("reading network status")),
        };
        match res {
            Ok(()) => {
                if self.last_publish_error.take().is_some() {
                    tracing::info!("publishing network status to machined works again");
                }
            }
            Err(e) => {
                let msg = chain(e.as_ref()).to_string();
                if self.last_publish_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!("publishing network status: {msg} (will retry)");
                }
                self.last_publish_error = Some(msg);
            }
        }
    }
}

async fn run<P: Publisher>(cli: Cli, publisher: P) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    let nl = Netlink::connect().context("opening rtnetlink")?;
    let links = nl.links().await.context("listing links")?;
    for name in &cli.interfaces {
        if !links.iter().any(|l| &l.name == name) {
            anyhow::bail!("--interface {name}: no such link");
        }
    }
    for lo in links.iter().filter(|l| l.is_loopback() && !l.is_up()) {
        nl.set_up(lo.index)
            .await
            .with_context(|| format!("bringing {} up", lo.name))?;
        tracing::info!("link {} is up", lo.name);
    }
    let (tx, mut rx) = mpsc::channel::<(String, LeaseEvent)>(16);
    let send_hostname = cli
        .hostname
        .clone()
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned())
        })
        .filter(|h| !h.is_empty() && h != "localhost" && h != "(none)");
    let mut state = Networkd {
        nl,
        links: BTreeMap::new(),
        publisher,
        last_publish_error: None,
        cli,
        tx,
        tasks: tokio::task::JoinSet::new(),
        send_hostname,
    };
    state.write_resolvers();
    state.start_clients(&links).await;
    if state.links.is_empty() {
        tracing::warn!("no links to run DHCP on yet");
    }

    let mut tick = tokio::time::interval(PUBLISH_INTERVAL);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping (addresses stay)"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping (addresses stay)"); break; }
            Some((link, ev)) = rx.recv() => state.on_event(&link, ev).await,
            _ = tick.tick() => {
                // Links that appeared (or failed to start) since the last round get a client.
                match state.nl.links().await {
                    Ok(links) => state.start_clients(&links).await,
                    Err(e) => tracing::warn!("{}", chain(&e)),
                }
                state.publish().await;
            }
        }
    }
    state.tasks.abort_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, kind: &str, physical: bool, flags: u32) -> Link {
        Link {
            index: 1,
            name: name.into(),
            kind: kind.into(),
            slave_kind: String::new(),
            link_type: if flags & 0x8 != 0 { 772 } else { 1 },
            flags,
            mac: vec![0; 6],
            permanent_mac: vec![],
            broadcast: vec![],
            mtu: 1500,
            qdisc: String::new(),
            master_index: 0,
            link_index: 0,
            operstate: 0,
            carrier: None,
            physical,
            driver: String::new(),
        }
    }

    #[test]
    fn default_selection_is_physical_links_only() {
        let links = vec![
            link("lo", "", false, 0x8 | 0x1),
            link("eth0", "", true, 0),
            link("eth1", "", true, 0),
            link("veth0", "veth", false, 0),
            link("br0", "bridge", false, 0),
        ];
        let names = |v: Vec<&Link>| v.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(select_links(&links, &[], &[])), vec!["eth0", "eth1"]);
        assert_eq!(
            names(select_links(&links, &[], &["eth1".into()])),
            vec!["eth0"]
        );
        assert_eq!(
            names(select_links(&links, &["veth0".into()], &[])),
            vec!["veth0"]
        );
        assert!(select_links(&links, &["veth0".into()], &["veth0".into()]).is_empty());
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "networkd",
            "--interface",
            "veth1",
            "--interface-ignore",
            "eth9",
            "--no-publish",
            "--resolv-conf",
            "/tmp/r",
        ])
        .expect("parse");
        assert_eq!(cli.interfaces, vec!["veth1"]);
        assert_eq!(cli.ignore, vec!["eth9"]);
        assert!(cli.no_publish);
        assert_eq!(cli.route_metric, 1024);
        assert_eq!(cli.machined_socket, PathBuf::from(MACHINE_SOCKET_PATH));
    }
}
