//! Load client for `ci/bench-api` (not a test): calls `MachineService/Version` through apid over
//! mutual TLS and prints latency percentiles and throughput. Loopback only, bounded in count
//! and time.
//!
//! ```text
//! api_load gen-pki DIR
//!     writes DIR/apid/{ca.crt,server.crt,server.key,client.crt,client.key} (server cert for
//!     127.0.0.1, impersonator client) and DIR/admin.{crt,key} (os:admin), all Ed25519
//! api_load run --addr 127.0.0.1:PORT --pki DIR [--concurrency N] [--requests N]
//!     [--max-seconds S] [--nodes a,b,...]
//!     prints: requests=.. errors=.. seconds=.. rps=.. p50_ms=.. p99_ms=..
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use talos::api::machine::machine_service_client::MachineServiceClient;
use talos::secrets::{CertParams, CertificateAuthority, ExtKeyUsage, KeyAlgorithm};
use time::OffsetDateTime;
use tonic::transport::{Channel, Endpoint, Uri};

/// Upper bounds whatever the arguments say.
const MAX_REQUESTS: usize = 1_000_000;
const MAX_SECONDS: u64 = 120;
const MAX_CONCURRENCY: usize = 256;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen-pki") => {
            let dir = args.get(1).context("usage: api_load gen-pki DIR")?;
            gen_pki(Path::new(dir))
        }
        Some("run") => run(&args[1..]),
        _ => bail!("usage: api_load gen-pki DIR | api_load run --addr ADDR --pki DIR [...]"),
    }
}

fn write(path: PathBuf, data: &[u8]) -> anyhow::Result<()> {
    std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))
}

fn gen_pki(dir: &Path) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let ca = CertificateAuthority::generate(
        KeyAlgorithm::Ed25519,
        &CertParams::new(now, time::Duration::days(3650)).organizations(["talos"]),
    )?;
    let leaf = |params: CertParams| -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let (crt, key) = ca.issue(&params)?;
        Ok((crt.to_pem(), key.to_pem()?))
    };
    let apid = dir.join("apid");
    std::fs::create_dir_all(&apid).with_context(|| format!("creating {}", apid.display()))?;
    let (crt, key) = leaf(
        CertParams::new(now, time::Duration::days(1))
            .ip_addresses([std::net::Ipv4Addr::LOCALHOST.into()])
            .ext_key_usage([ExtKeyUsage::ServerAuth]),
    )?;
    write(apid.join("ca.crt"), &ca.cert.to_pem())?;
    write(apid.join("server.crt"), &crt)?;
    write(apid.join("server.key"), &key)?;
    let client = |roles: &str| {
        leaf(
            CertParams::new(now, time::Duration::days(1))
                .organizations([roles])
                .ext_key_usage([ExtKeyUsage::ClientAuth]),
        )
    };
    let (crt, key) = client("os:impersonator")?;
    write(apid.join("client.crt"), &crt)?;
    write(apid.join("client.key"), &key)?;
    let (crt, key) = client("os:admin")?;
    write(dir.join("admin.crt"), &crt)?;
    write(dir.join("admin.key"), &key)?;
    Ok(())
}

struct Options {
    addr: SocketAddr,
    pki: PathBuf,
    concurrency: usize,
    requests: usize,
    max_seconds: u64,
    nodes: Option<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 50000)),
        pki: PathBuf::new(),
        concurrency: 1,
        requests: 1000,
        max_seconds: 30,
        nodes: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => o.addr = value.parse().context("--addr")?,
            "--pki" => o.pki = PathBuf::from(value),
            "--concurrency" => o.concurrency = value.parse().context("--concurrency")?,
            "--requests" => o.requests = value.parse().context("--requests")?,
            "--max-seconds" => o.max_seconds = value.parse().context("--max-seconds")?,
            "--nodes" => o.nodes = Some(value.clone()),
            other => bail!("unknown flag {other}"),
        }
    }
    if !o.addr.ip().is_loopback() {
        bail!("--addr must be a loopback address");
    }
    if let Some(nodes) = &o.nodes {
        for n in nodes.split(',') {
            let ip = n.rsplit_once(':').map_or(n, |(h, _)| h);
            if !ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            {
                bail!("--nodes must be loopback addresses, got {n}");
            }
        }
    }
    o.concurrency = o.concurrency.clamp(1, MAX_CONCURRENCY);
    o.requests = o.requests.clamp(1, MAX_REQUESTS);
    o.max_seconds = o.max_seconds.clamp(1, MAX_SECONDS);
    Ok(o)
}

async fn connect(o: &Options) -> anyhow::Result<Channel> {
    let read = |name: &str| {
        let p = o.pki.join(name);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    };
    let config = talos::auth::tls::client_mtls(
        &read("apid/ca.crt")?,
        &read("admin.crt")?,
        &read("admin.key")?,
    )?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = o.addr;
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let tls = connector
                    .connect(ServerName::IpAddress(addr.ip().into()), tcp)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await?)
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(load(o))
}

async fn load(o: Options) -> anyhow::Result<()> {
    let expected = o.nodes.as_ref().map_or(1, |n| n.split(',').count());
    let deadline = Instant::now() + Duration::from_secs(o.max_seconds);
    let issued = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    // One connection per client, like independent talosctl processes.
    let mut clients = Vec::with_capacity(o.concurrency);
    for _ in 0..o.concurrency {
        clients.push(MachineServiceClient::new(connect(&o).await?));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut client in clients {
        let issued = Arc::clone(&issued);
        let errors = Arc::clone(&errors);
        let nodes = o.nodes.clone();
        let total = o.requests;
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while issued.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
                let mut req = tonic::Request::new(());
                if let Some(nodes) = &nodes {
                    if let Ok(v) = nodes.parse() {
                        req.metadata_mut().insert("nodes", v);
                    }
                }
                let t = Instant::now();
                let ok = match client.version(req).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        r.messages.len() == expected
                            && r.messages
                                .iter()
                                .all(|m| m.metadata.as_ref().is_none_or(|md| md.error.is_empty()))
                    }
                    Err(_) => false,
                };
                latencies.push(t.elapsed());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done?);
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i].as_secs_f64() * 1000.0
    };
    println!(
        "requests={} errors={} seconds={:.2} rps={:.0} p50_ms={:.3} p99_ms={:.3}",
        all.len(),
        errors.load(Ordering::Relaxed),
        seconds,
        all.len() as f64 / seconds,
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}
