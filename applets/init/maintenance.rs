//! Maintenance mode: the insecure API a node without a machine config serves until it gets one.
//!
//! ```text
//! talos machined --maintenance [--listen ADDR] --state-dir DIR [--platform container|metal]
//! ```
//!
//! - TLS with a per-boot self-signed certificate (Ed25519, 24 h) for the node's addresses, and
//!   no client certificate. The certificate's SPKI fingerprint and the `talosctl apply-config
//!   --insecure` hint are printed on stderr (the console), like Talos does.
//! - Every caller is `os:reader` (SideroLink peers are `os:admin`); what is served follows
//!   [`talos::auth::rules::maintenance_allowed`]: ApplyConfiguration, storage Disks (machined's
//!   handler), COSI reads of non-sensitive resources; Version, Upgrade, Reset, MetaWrite and
//!   MetaDelete for admins only; everything else is refused with Talos's messages.
//! - ApplyConfiguration (modes AUTO, REBOOT, TRY) parses and validates the config for the
//!   platform through the [`ConfigStore`]; a valid one is persisted there (0600, atomically),
//!   the reply is sent, the server shuts down gracefully and [`run`] returns the [`Applied`]
//!   config, typed, so the caller (`main`, which exits 0; the boot sequence, which boots with
//!   it) carries on without reading or parsing it again.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use talos::api::cosi::resource::state_server::StateServer;
use talos::api::machine::{
    self as pb, apply_configuration_request::Mode as ApplyMode, machine_config::MachineType,
    machine_service_server::MachineService, machine_service_server::MachineServiceServer,
};
use talos::api::storage::storage_service_server::StorageServiceServer;
use talos::auth::role::{Role, RoleSet, METADATA_KEY};
use talos::auth::rules::{inject_roles, maintenance_allowed, InjectMode, Peer};
use talos::auth::serve::TlsConnectInfo;
use talos::config::{ConfigStore, ConfigStoreError, Mode, ValidConfig};
use talos::errors::chain;
use talos::logbuf::LogBuffers;
use tokio::sync::{oneshot, watch};
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use super::api::{self, Machined, Platform};

/// How long the server may take to finish in-flight calls once the config is applied.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What maintenance mode needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on (port 0 binds any free port; the bound address is printed).
    pub listen: SocketAddr,
    /// Where the applied config is persisted.
    pub store: ConfigStore,
    /// The validation mode, also what Version reports as the platform.
    pub mode: Mode,
    /// Ends maintenance mode without a config when notified (the platform delivered one
    /// while maintenance mode was open).
    pub cancel: Option<Arc<tokio::sync::Notify>>,
}

/// A configuration accepted in maintenance mode.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The config, parsed and validated.
    pub config: ValidConfig,
    /// Where it was persisted.
    pub path: PathBuf,
    /// The apply mode the client asked for (the boot flow decides what it means).
    pub mode: ApplyMode,
}

/// Runs `talos machined --maintenance` until a config has been applied (or SIGTERM/SIGINT).
pub fn main(cli: &super::Cli, logs: Arc<LogBuffers>) -> anyhow::Result<()> {
    let opts = options(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run(opts, logs));
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Some(applied) = result? {
        eprintln!(
            "maintenance: configuration stored in {} (mode {}); leaving maintenance mode",
            applied.path.display(),
            mode_name(applied.mode as i32)
        );
    }
    Ok(())
}

fn options(cli: &super::Cli) -> anyhow::Result<Options> {
    let listen = cli.listen.parse().with_context(|| {
        format!(
            "invalid --listen {:?}: expected IP:PORT such as {}",
            cli.listen,
            talos::constants::APID_LISTEN_ADDRESS
        )
    })?;
    let state_dir = cli
        .state_dir
        .clone()
        .context("maintenance mode needs --state-dir DIR (where the applied config is stored)")?;
    super::prepare_state_dir(&state_dir)?;
    Ok(Options {
        listen,
        store: ConfigStore::in_dir(state_dir),
        mode: cli.platform,
        cancel: None,
    })
}

/// Serves the maintenance API until a configuration is applied (returns it) or a signal
/// arrives (returns `None`).
pub async fn run(opts: Options, logs: Arc<LogBuffers>) -> anyhow::Result<Option<Applied>> {
    run_with(opts, logs, None).await
}

/// [`run`], serving COSI reads from `resources` (the node's store: links, addresses, … that
/// networkd publishes) instead of an empty store of its own.
pub async fn run_with(
    opts: Options,
    logs: Arc<LogBuffers>,
    resources: Option<talos::resources::State>,
) -> anyhow::Result<Option<Applied>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mode = opts.mode;

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;

    let reachable = reachable_addresses(bound.ip());
    let mut cert_ips = reachable.clone();
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        if !cert_ips.contains(&ip) {
            cert_ips.push(ip);
        }
    }
    let dns_names: Vec<String> = talos::sys::fs::hostname()
        .ok()
        .filter(|h| !h.is_empty() && h.parse::<IpAddr>().is_err())
        .into_iter()
        .collect();
    let certs = talos::auth::tls::generate_self_signed_maintenance(&cert_ips, &dns_names)
        .context("generating the maintenance certificate")?;
    let tls = Arc::new(
        talos::auth::tls::server_tls_only(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes())
            .context("building the maintenance TLS configuration")?,
    );
    tracing::info!(address = %bound, "maintenance API listening");
    tracing::info!(fingerprint = certs.fingerprint, "server certificate issued");
    print_banner(bound, &reachable, &certs.fingerprint);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (applied_tx, applied_rx) = oneshot::channel();
    let platform = Platform {
        name: mode.to_string(),
        mode: mode.to_string(),
    };
    let mut machined = Machined::new(
        logs,
        Arc::new(talos::events::EventBus::default()),
        Arc::new(super::services::ApiOnlyServices::new()),
        platform,
        shutdown_rx.clone(),
    );
    if let Some(resources) = resources {
        machined.resources = resources;
    }
    let machined = Arc::new(machined);
    let maintenance = Maintenance {
        machined: Arc::clone(&machined),
        store: opts.store.clone(),
        mode,
        applied: Mutex::new(Some(applied_tx)),
    };
    let router = tonic::transport::Server::builder()
        .add_service(Guarded(
            MachineServiceServer::new(maintenance)
                .max_decoding_message_size(api::MAX_MESSAGE_SIZE)
                .max_encoding_message_size(api::MAX_MESSAGE_SIZE),
        ))
        .add_service(Guarded(StorageServiceServer::new(
            api::storage::StorageApi::new(Arc::clone(&machined)),
        )))
        .add_service(Guarded(StateServer::new(api::cosi::CosiApi::new(machined))));
    let incoming = talos::auth::serve::incoming(listener, move || Arc::clone(&tls));
    let server = tokio::spawn(
        router.serve_with_incoming_shutdown(incoming, api::shutting_down(shutdown_rx)),
    );

    let cancel = opts.cancel.clone();
    let cancelled = async move {
        match cancel {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        applied = applied_rx => applied.ok(),
        () = cancelled => { tracing::info!("a machine config arrived from the platform, closing maintenance mode"); None }
        _ = sigterm.recv() => { tracing::info!("SIGTERM received, shutting down"); None }
        _ = sigint.recv() => { tracing::info!("SIGINT received, shutting down"); None }
    };
    if let Some(applied) = &outcome {
        tracing::info!(path = %applied.path.display(), "configuration applied, leaving maintenance mode");
    }
    let _ = shutdown_tx.send(true);
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(result)) => result.context("serving the maintenance API")?,
        Ok(Err(e)) => anyhow::bail!("maintenance API server task failed: {e}"),
        Err(_) => tracing::warn!("maintenance API did not stop within {SHUTDOWN_GRACE:?}"),
    }
    Ok(outcome)
}

/// The console text Talos prints in maintenance mode, plus the bound address.
fn print_banner(bound: SocketAddr, reachable: &[IpAddr], fingerprint: &str) {
    let first = reachable
        .first()
        .copied()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut text = format!("maintenance: listening on {bound}\n");
    text.push_str("maintenance: this machine is reachable at:\n");
    for ip in reachable {
        text.push_str(&format!("maintenance: \t{ip}\n"));
    }
    text.push_str(&format!(
        "maintenance: server certificate fingerprint: {fingerprint}\n\
         maintenance: upload configuration using talosctl:\n\
         maintenance: \ttalosctl apply-config --insecure --nodes {first} --file <config.yaml>\n\
         maintenance: optionally with node fingerprint check:\n\
         maintenance: \ttalosctl apply-config --insecure --nodes {first} --cert-fingerprint '{fingerprint}' --file <config.yaml>\n"
    ));
    eprint!("{text}");
}

/// The addresses clients can reach the server at: the listen address if it is a specific
/// one, else the host's global addresses (IPv4 first), else loopback.
pub(crate) fn reachable_addresses(listen: IpAddr) -> Vec<IpAddr> {
    if !listen.is_unspecified() {
        return vec![listen];
    }
    let mut out: Vec<IpAddr> = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/fib_trie") {
        out.extend(parse_fib_trie_local(&text));
    }
    if listen.is_ipv6() {
        if let Ok(text) = std::fs::read_to_string("/proc/net/if_inet6") {
            out.extend(parse_if_inet6_global(&text));
        }
    }
    let mut seen = Vec::new();
    out.retain(|ip| {
        let new = !seen.contains(ip);
        seen.push(*ip);
        new
    });
    if out.is_empty() {
        out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    out
}

/// The local (host) IPv4 addresses in `/proc/net/fib_trie`, loopback excluded.
fn parse_fib_trie_local(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start_matches([' ', '|', '+', '-', '`']).trim();
        if let Ok(ip) = t.parse::<Ipv4Addr>() {
            last = Some(ip);
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(ip) = last.filter(|ip| !ip.is_loopback()) {
                if !out.contains(&IpAddr::V4(ip)) {
                    out.push(IpAddr::V4(ip));
                }
            }
        }
    }
    out
}

/// The global-scope IPv6 addresses in `/proc/net/if_inet6`.
fn parse_if_inet6_global(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (hex, scope) = (fields.first()?, fields.get(3)?);
            if *scope != "00" || hex.len() != 32 {
                return None;
            }
            let bits = u128::from_str_radix(hex, 16).ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(bits)))
        })
        .collect()
}

/// Wraps a gRPC service with the maintenance policy: assigns the caller's roles (replacing any
/// `talos-role` metadata the client sent) and refuses what maintenance mode does not serve.
#[derive(Clone)]
struct Guarded<S>(S);

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

type HttpRequest = http::Request<tonic::body::Body>;
type HttpResponse = http::Response<tonic::body::Body>;

impl<S> Service<HttpRequest> for Guarded<S>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<HttpResponse, Infallible>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: HttpRequest) -> Self::Future {
        let method = req.uri().path().to_string();
        let addr = req
            .extensions()
            .get::<TlsConnectInfo>()
            .map(|i| i.remote_addr.ip());
        let roles = inject_roles(
            InjectMode::ReadOnlyWithAdminOnSideroLink,
            &Peer {
                addr,
                ..Peer::default()
            },
        );
        let headers = req.headers_mut();
        headers.remove(METADATA_KEY);
        for role in roles.strings() {
            if let Ok(value) = http::HeaderValue::from_str(&role) {
                headers.append(METADATA_KEY, value);
            }
        }
        if let Err(denied) = maintenance_allowed(&method).check(&roles) {
            tracing::info!(method, peer = ?addr, "refused in maintenance mode: {denied}");
            let status = Status::new(tonic::Code::from(denied.grpc_code()), denied.to_string());
            return Box::pin(async move { Ok(status.into_http()) });
        }
        req.extensions_mut().insert(roles);
        // The clone is ready: tonic's generated services always are.
        let mut inner = self.0.clone();
        Box::pin(async move { inner.call(req).await })
    }
}

/// The roles the maintenance policy gave the caller.
fn roles_of<T>(request: &Request<T>) -> RoleSet {
    request
        .extensions()
        .get::<RoleSet>()
        .cloned()
        .unwrap_or_default()
}

/// MachineService in maintenance mode.
struct Maintenance {
    machined: Arc<Machined>,
    store: ConfigStore,
    mode: Mode,
    /// Taken by the first successful apply.
    applied: Mutex<Option<oneshot::Sender<Applied>>>,
}

/// Talos's spelling of an apply mode in messages: `no-reboot`, `staged`, ...
fn mode_name(mode: i32) -> String {
    match ApplyMode::try_from(mode) {
        Ok(m) => m.as_str_name().to_ascii_lowercase().replace('_', "-"),
        Err(_) => mode.to_string(),
    }
}

impl Maintenance {
    fn store(&self, config: ValidConfig, mode: ApplyMode) -> Result<Applied, Status> {
        let mut slot = self
            .applied
            .lock()
            .map_err(|_| Status::internal("maintenance state is poisoned"))?;
        let Some(tx) = slot.take() else {
            return Err(Status::failed_precondition(
                "a configuration was already applied; the node is leaving maintenance mode",
            ));
        };
        let path = match self.store.persist(&config) {
            Ok(path) => path,
            Err(e) => {
                *slot = Some(tx);
                return Err(Status::internal(format!(
                    "failed to store the configuration: {}",
                    chain(&e)
                )));
            }
        };
        let applied = Applied { config, path, mode };
        // The receiver only goes away when the server is already stopping.
        let _ = tx.send(applied.clone());
        Ok(applied)
    }
}

fn admin_only<T>(request: &Request<T>) -> Result<(), Status> {
    if roles_of(request).includes(&Role::Admin) {
        Ok(())
    } else {
        Err(Status::unimplemented(
            "API is not implemented in maintenance mode",
        ))
    }
}

#[tonic::async_trait]
impl MachineService for Maintenance {
    async fn apply_configuration(
        &self,
        request: Request<pb::ApplyConfigurationRequest>,
    ) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
        api::called(&request, "ApplyConfiguration");
        let req = request.into_inner();
        let mode = match ApplyMode::try_from(req.mode) {
            Ok(m @ (ApplyMode::Try | ApplyMode::Reboot | ApplyMode::Auto)) => m,
            _ => {
                return Err(Status::unimplemented(format!(
                    "apply configuration --mode='{}' is not supported in maintenance mode",
                    mode_name(req.mode)
                )))
            }
        };
        let data = req.data;
        let (store, platform) = (self.store.clone(), self.mode);
        // Parsing and validation can be slow for big configs: off the async threads.
        let accepted = api::blocking(move || {
            store
                .accept(&data, "the applied configuration", platform)
                .map_err(|e| match e {
                    ConfigStoreError::Parse(e) => {
                        Status::unknown(format!("failed to parse config: {e}"))
                    }
                    ConfigStoreError::Invalid(errors) => Status::invalid_argument(format!(
                        "configuration validation failed: {errors}"
                    )),
                    other => Status::internal(chain(&other).to_string()),
                })
        })
        .await;
        let config = match accepted {
            Ok(config) => config,
            Err(status) => {
                tracing::warn!("configuration refused: {}", status.message());
                return Err(status);
            }
        };
        let warnings: Vec<String> = config.warnings().iter().map(ToString::to_string).collect();
        let mut reply = pb::ApplyConfiguration {
            metadata: None,
            warnings,
            mode: mode as i32,
            mode_details: String::new(),
        };
        if req.dry_run {
            reply.mode_details = "Dry run summary:\n\
                Node is running in maintenance mode and does not have a config yet."
                .to_string();
        } else {
            let applied = self.store(config, mode)?;
            tracing::info!(path = %applied.path.display(), mode = mode_name(mode as i32), "configuration stored");
            reply.mode_details = format!(
                "Applied configuration in maintenance mode (stored in {}); the node leaves \
                 maintenance mode and continues booting.",
                applied.path.display()
            );
        }
        Ok(Response::new(pb::ApplyConfigurationResponse {
            messages: vec![reply],
        }))
    }

    async fn generate_configuration(
        &self,
        request: Request<pb::GenerateConfigurationRequest>,
    ) -> Result<Response<pb::GenerateConfigurationResponse>, Status> {
        api::called(&request, "GenerateConfiguration");
        let Some(machine) = request.get_ref().machine_config.as_ref() else {
            return Err(Status::unknown("invalid generate request"));
        };
        if machine.r#type == MachineType::TypeWorker as i32 {
            return Err(Status::unknown(
                "join config can't be generated in the maintenance mode",
            ));
        }
        Err(Status::unimplemented(
            "GenerateConfiguration is not implemented in this build yet",
        ))
    }

    async fn generate_client_configuration(
        &self,
        request: Request<pb::GenerateClientConfigurationRequest>,
    ) -> Result<Response<pb::GenerateClientConfigurationResponse>, Status> {
        api::called(&request, "GenerateClientConfiguration");
        Err(Status::unimplemented(
            "client configuration (talosconfig) can't be generated in the maintenance mode",
        ))
    }

    async fn version(&self, request: Request<()>) -> Result<Response<pb::VersionResponse>, Status> {
        admin_only(&request)?;
        api::machine::MachineApi::new(Arc::clone(&self.machined))
            .version(request)
            .await
    }

    async fn upgrade(
        &self,
        request: Request<pb::UpgradeRequest>,
    ) -> Result<Response<pb::UpgradeResponse>, Status> {
        admin_only(&request)?;
        Err(Status::failed_precondition("Talos is not installed"))
    }

    async fn reset(
        &self,
        request: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::ResetResponse>, Status> {
        admin_only(&request)?;
        if !request.get_ref().system_partitions_to_wipe.is_empty() {
            return Err(Status::unknown(
                "system partitions to wipe params is not supported in the maintenance mode",
            ));
        }
        Err(Status::unknown("reset failed: Talos is not installed"))
    }

    async fn meta_write(
        &self,
        request: Request<pb::MetaWriteRequest>,
    ) -> Result<Response<pb::MetaWriteResponse>, Status> {
        admin_only(&request)?;
        if u8::try_from(request.get_ref().key).is_err() {
            return Err(Status::invalid_argument("key must be a uint8"));
        }
        Err(Status::unimplemented(
            "META is not available in this build yet",
        ))
    }

    async fn meta_delete(
        &self,
        request: Request<pb::MetaDeleteRequest>,
    ) -> Result<Response<pb::MetaDeleteResponse>, Status> {
        admin_only(&request)?;
        if u8::try_from(request.get_ref().key).is_err() {
            return Err(Status::invalid_argument("key must be a uint8"));
        }
        Err(Status::unimplemented(
            "META is not available in this build yet",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_closes_maintenance_mode_and_frees_its_port() {
        let dir = tempfile::tempdir().expect("tempdir");
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        let listen = probe.local_addr().expect("addr");
        drop(probe);
        let cancel = Arc::new(tokio::sync::Notify::new());
        let opts = Options {
            listen,
            store: ConfigStore::in_dir(dir.path()),
            mode: Mode::Container,
            cancel: Some(Arc::clone(&cancel)),
        };
        let server = tokio::spawn(run(opts, Arc::new(LogBuffers::default())));
        // Wait until it listens, then cancel.
        let mut up = false;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(listen).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(up, "maintenance API never listened on {listen}");
        cancel.notify_one();
        let outcome = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("maintenance mode ends")
            .expect("task")
            .expect("no error");
        assert!(outcome.is_none());
        // apid binds the same port next.
        std::net::TcpListener::bind(listen).expect("port free again");
    }

    #[test]
    fn fib_trie_local_addresses() {
        let text = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
                    \x20    +-- 10.0.2.0/24 2 0 2\n        |-- 10.0.2.15\n           /32 host LOCAL\n\
                    \x20    |-- 127.0.0.1\n           /32 host LOCAL\n\
                    Local:\n        |-- 10.0.2.15\n           /32 host LOCAL\n\
                    \x20       |-- 172.17.0.1\n           /32 host LOCAL\n";
        assert_eq!(
            parse_fib_trie_local(text),
            vec![IpAddr::from([10, 0, 2, 15]), IpAddr::from([172, 17, 0, 1])]
        );
    }

    #[test]
    fn if_inet6_global_addresses() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    fe800000000000000000000000000001 02 40 20 80     eth0\n\
                    fd000000000000000000000000000005 02 40 00 80     eth0\n";
        assert_eq!(
            parse_if_inet6_global(text),
            vec!["fd00::5".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn specific_listen_address_is_the_reachable_one() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(reachable_addresses(ip), vec![ip]);
        assert!(!reachable_addresses(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).is_empty());
    }

    #[test]
    fn mode_names_like_talos() {
        assert_eq!(mode_name(ApplyMode::NoReboot as i32), "no-reboot");
        assert_eq!(mode_name(ApplyMode::Staged as i32), "staged");
        assert_eq!(mode_name(42), "42");
    }
}
