//! Config acquisition, in Talos's order:
//!
//! 1. the config persisted in the [`ConfigStore`], if it parses and validates;
//! 2. the platform's source (`USERDATA` on the container platform, the `talos.config=` URL on
//!    metal); a valid config is persisted (atomically, 0600) before it is used;
//! 3. otherwise maintenance mode ([`super::maintenance::run`]) until a valid config is applied.
//!    A platform that is still trying after [`PLATFORM_GRACE`] (a config server that is down,
//!    answers 404 or serves an invalid config) goes on trying with back-off while maintenance
//!    mode is open; the first valid config from either side is used.
//!
//! Every source goes through the store's parse and validation once, and the typed config is
//! what comes out (maintenance mode hands over the config it validated; nothing is read back).
//! An invalid config is never persisted: the reason is logged, published as a
//! `machine.ConfigLoadErrorEvent` / `machine.ConfigValidationErrorEvent`, reported to the
//! [`NodeObserver`] as an unmet condition, and the node waits in maintenance mode.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use talos::api::machine as pb;
use talos::config::{Config, ConfigStore, ConfigStoreError, Mode, ValidConfig};
use talos::errors::chain;
use talos::events::{runtime_type_url, EventBus};
use talos::logbuf::LogBuffers;
use talos::platform::Platform;

use super::maintenance::{self, Applied};
use super::runtime::{BoxFuture, MachineStage, NodeObserver};

/// Where the config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The persisted config.
    State,
    /// The platform (its name).
    Platform(String),
    /// Applied in maintenance mode.
    Maintenance,
}

/// A valid config and where it came from.
#[derive(Debug, Clone)]
pub struct Acquired {
    /// The parsed config.
    pub config: Arc<Config>,
    /// Its source.
    pub source: ConfigSource,
    /// Validation warnings.
    pub warnings: Vec<String>,
}

impl Acquired {
    fn new(valid: &ValidConfig, source: ConfigSource) -> Acquired {
        Acquired {
            config: Arc::clone(valid.config()),
            source,
            warnings: valid.warnings().iter().map(ToString::to_string).collect(),
        }
    }
}

/// Runs maintenance mode until a config is applied (`Some`) or a signal ends it (`None`).
pub type MaintenanceFn = Arc<
    dyn Fn(maintenance::Options) -> BoxFuture<'static, anyhow::Result<Option<Applied>>>
        + Send
        + Sync,
>;

/// The real maintenance mode, logging into `logs`.
pub fn real_maintenance(
    logs: Arc<LogBuffers>,
    resources: Option<talos::resources::State>,
) -> MaintenanceFn {
    Arc::new(move |opts| {
        let logs = Arc::clone(&logs);
        let resources = resources.clone();
        Box::pin(async move { maintenance::run_with(opts, logs, resources).await })
    })
}

/// What acquisition needs.
pub struct Acquire<'a> {
    /// Where the config is persisted.
    pub store: ConfigStore,
    /// Validation mode.
    pub mode: Mode,
    /// The platform (its source).
    pub platform: &'a dyn Platform,
    /// Where maintenance mode listens.
    pub maintenance_listen: SocketAddr,
    /// Maintenance mode itself.
    pub maintenance: MaintenanceFn,
    /// Reports stage and unmet conditions.
    pub observer: Arc<dyn NodeObserver>,
    /// Error events.
    pub events: Arc<EventBus>,
    /// How long the platform may try before maintenance mode opens beside it.
    pub platform_grace: Duration,
}

/// How long the platform may try alone before maintenance mode opens beside it (DHCP and
/// the first download attempts fit in it on a healthy network).
pub const PLATFORM_GRACE: Duration = Duration::from_secs(5);
/// First wait before an invalid platform config is fetched again.
const REFETCH_INITIAL: Duration = Duration::from_secs(1);
/// Longest wait between fetches of an invalid platform config.
const REFETCH_MAX: Duration = Duration::from_secs(30);

/// Why a config was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It does not parse.
    Load(String),
    /// It parses but does not validate.
    Validation(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Load(m) => write!(f, "failed to load config: {m}"),
            Refusal::Validation(m) => write!(f, "config validation failed: {m}"),
        }
    }
}

impl From<&ConfigStoreError> for Refusal {
    fn from(e: &ConfigStoreError) -> Refusal {
        match e {
            ConfigStoreError::Invalid(errors) => Refusal::Validation(errors.to_string()),
            // Parse errors name the source, document and key themselves.
            other => Refusal::Load(chain(other).to_string()),
        }
    }
}

impl Acquire<'_> {
    fn refused(&self, source: &str, refusal: &Refusal) {
        tracing::error!("config from {source} refused: {refusal}");
        let (type_name, payload) = match refusal {
            Refusal::Load(m) => (
                "machine.ConfigLoadErrorEvent",
                pb::ConfigLoadErrorEvent {
                    error: format!("{source}: {m}"),
                }
                .encode_to_vec(),
            ),
            Refusal::Validation(m) => (
                "machine.ConfigValidationErrorEvent",
                pb::ConfigValidationErrorEvent {
                    error: format!("{source}: {m}"),
                }
                .encode_to_vec(),
            ),
        };
        self.events
            .publish(&runtime_type_url(type_name), payload, "");
        self.observer
            .ready(false, vec![format!("config: {source}: {refusal}")]);
    }

    /// Finds a valid config; `None` when a signal ended maintenance mode.
    pub async fn run(&self) -> anyhow::Result<Option<Acquired>> {
        let what = self.store.path().display().to_string();
        match self.store.load(self.mode) {
            Ok(Some(valid)) => {
                tracing::info!("loaded machine config from {what}");
                return Ok(Some(Acquired::new(&valid, ConfigSource::State)));
            }
            Ok(None) => tracing::info!("no persisted machine config at {what}"),
            Err(ConfigStoreError::Read { path, source }) => {
                tracing::error!("reading {}: {source}", path.display())
            }
            // Reported, and left in place: a valid config from elsewhere replaces it.
            Err(e) => self.refused(&what, &Refusal::from(&e)),
        }

        // The platform gets a head start; if it has not delivered a valid config by then,
        // maintenance mode opens while the platform keeps trying (a config server that is
        // down or wrong must not leave the node unreachable). Whichever delivers first wins.
        let platform_config = self.platform_config();
        tokio::pin!(platform_config);
        tokio::select! {
            got = &mut platform_config => {
                return match got {
                    Some(valid) => self.keep(&valid),
                    None => self.run_maintenance(None).await,
                };
            }
            () = tokio::time::sleep(self.platform_grace) => {}
        }
        tracing::warn!(
            "no valid machine config from platform {} after {:?}: entering maintenance mode, \
             the platform keeps trying",
            self.platform.name(),
            self.platform_grace
        );
        let cancel = Arc::new(tokio::sync::Notify::new());
        let maintenance = self.run_maintenance(Some(Arc::clone(&cancel)));
        tokio::pin!(maintenance);
        let mut platform_done = false;
        loop {
            tokio::select! {
                got = &mut platform_config, if !platform_done => match got {
                    Some(valid) => {
                        cancel.notify_one();
                        // Wait for the maintenance server to close (its port is apid's next).
                        if let Err(e) = maintenance.await {
                            tracing::warn!("closing maintenance mode: {}", chain(e.as_ref()));
                        }
                        self.observer.stage(MachineStage::Booting);
                        return self.keep(&valid);
                    }
                    None => platform_done = true,
                },
                result = &mut maintenance => return result,
            }
        }
    }

    /// Persists a config that came from the platform.
    fn keep(&self, valid: &ValidConfig) -> anyhow::Result<Option<Acquired>> {
        let name = self.platform.name().to_string();
        let stored = self.store.persist(valid).with_context(|| {
            format!(
                "persisting the machine config to {}",
                self.store.path().display()
            )
        })?;
        tracing::info!(
            "machine config from platform {name} is valid; stored in {}",
            stored.display()
        );
        Ok(Some(Acquired::new(valid, ConfigSource::Platform(name))))
    }

    /// A valid config from the platform; `None` when the platform has none or gave up.
    /// Invalid configs are fetched again with back-off where that can help.
    async fn platform_config(&self) -> Option<ValidConfig> {
        let source = format!("platform {}", self.platform.name());
        let mut delay = REFETCH_INITIAL;
        loop {
            match self.platform.configuration().await {
                Ok(Some(bytes)) => match self.store.accept(&bytes, &source, self.mode) {
                    Ok(valid) => return Some(valid),
                    Err(e) => self.refused(&source, &Refusal::from(&e)),
                },
                Ok(None) => {
                    tracing::info!("{source} provides no machine config");
                    return None;
                }
                Err(e) => {
                    self.refused(&source, &Refusal::Load(e.to_string()));
                    return None;
                }
            }
            if !self.platform.config_may_change() {
                return None;
            }
            tracing::warn!("fetching the machine config from {source} again in {delay:?}");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(REFETCH_MAX);
        }
    }

    /// Maintenance mode until a config is applied (`None`: it ended without one).
    async fn run_maintenance(
        &self,
        cancel: Option<Arc<tokio::sync::Notify>>,
    ) -> anyhow::Result<Option<Acquired>> {
        self.observer.stage(MachineStage::Maintenance);
        tracing::info!(
            listen = %self.maintenance_listen,
            "entering maintenance mode: waiting for a machine config (talosctl apply-config --insecure)"
        );
        let opts = maintenance::Options {
            listen: self.maintenance_listen,
            store: self.store.clone(),
            mode: self.mode,
            cancel,
        };
        let Some(applied) = (self.maintenance)(opts).await? else {
            tracing::info!("maintenance mode ended without a config");
            return Ok(None);
        };
        // Validated and persisted by maintenance mode: used as it is.
        tracing::info!("machine config applied in maintenance mode");
        self.observer.stage(MachineStage::Booting);
        Ok(Some(Acquired::new(
            &applied.config,
            ConfigSource::Maintenance,
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;

    use base64::Engine as _;
    use talos::platform::container::Container;

    use super::*;

    #[derive(Default)]
    pub(crate) struct Recorder {
        pub stages: Mutex<Vec<MachineStage>>,
        pub unmet: Mutex<Vec<String>>,
    }

    impl NodeObserver for Recorder {
        fn config_loaded(&self, _config: Arc<Config>) {}
        fn stage(&self, stage: MachineStage) {
            self.stages.lock().expect("stages").push(stage);
        }
        fn ready(&self, _ready: bool, unmet: Vec<String>) {
            self.unmet.lock().expect("unmet").extend(unmet);
        }
    }

    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/pid1/controlplane.yaml"
        ))
        .expect("fixture config")
    }

    /// A maintenance mode that "receives" `config` at once (or ends without one).
    fn fake_maintenance(config: Option<Vec<u8>>, calls: Arc<Mutex<u32>>) -> MaintenanceFn {
        Arc::new(move |opts: maintenance::Options| {
            let config = config.clone();
            let calls = Arc::clone(&calls);
            Box::pin(async move {
                *calls.lock().expect("calls") += 1;
                let Some(bytes) = config else {
                    return Ok(None);
                };
                let mode = opts.mode;
                let config = opts
                    .store
                    .accept(&bytes, "the applied configuration", mode)?;
                let path = opts.store.persist(&config)?;
                Ok(Some(Applied {
                    config,
                    path,
                    mode: pb::apply_configuration_request::Mode::Auto,
                }))
            })
        })
    }

    fn acquire<'a>(
        dir: &Path,
        platform: &'a dyn Platform,
        maintenance: MaintenanceFn,
        observer: Arc<Recorder>,
    ) -> Acquire<'a> {
        Acquire {
            store: ConfigStore::in_dir(dir),
            mode: platform.mode(),
            platform,
            maintenance_listen: "127.0.0.1:0".parse().expect("addr"),
            maintenance,
            observer,
            events: Arc::new(EventBus::new(100, 0)),
            platform_grace: PLATFORM_GRACE,
        }
    }

    /// A config server as the platform sees it: each fetch takes `latency` and returns the
    /// next of `answers` (the last one repeats).
    struct Server {
        answers: Vec<Vec<u8>>,
        latency: Duration,
        fetches: Mutex<usize>,
    }

    impl Server {
        fn new(answers: Vec<Vec<u8>>, latency: Duration) -> Self {
            Server {
                answers,
                latency,
                fetches: Mutex::new(0),
            }
        }

        fn fetches(&self) -> usize {
            *self.fetches.lock().expect("fetches")
        }
    }

    impl Platform for Server {
        fn name(&self) -> &str {
            "metal"
        }
        fn mode(&self) -> talos::config::Mode {
            talos::config::Mode::Metal
        }
        fn configuration(
            &self,
        ) -> talos::platform::BoxFuture<'_, Result<Option<Vec<u8>>, talos::platform::PlatformError>>
        {
            Box::pin(async move {
                tokio::time::sleep(self.latency).await;
                let mut n = self.fetches.lock().expect("fetches");
                *n += 1;
                let i = (*n - 1).min(self.answers.len() - 1);
                Ok(Some(self.answers[i].clone()))
            })
        }
        fn config_may_change(&self) -> bool {
            true
        }
    }

    /// A maintenance mode that never gets a config: it waits until cancelled (counted).
    fn idle_maintenance(opened: Arc<Mutex<u32>>, cancelled: Arc<Mutex<u32>>) -> MaintenanceFn {
        Arc::new(move |opts: maintenance::Options| {
            let opened = Arc::clone(&opened);
            let cancelled = Arc::clone(&cancelled);
            Box::pin(async move {
                *opened.lock().expect("opened") += 1;
                if let Some(cancel) = opts.cancel {
                    cancel.notified().await;
                    *cancelled.lock().expect("cancelled") += 1;
                }
                Ok(None)
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_platform_config_never_opens_maintenance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::new(vec![fixture()], Duration::from_millis(300));
        let (opened, cancelled) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
        let a = acquire(
            dir.path(),
            &server,
            idle_maintenance(Arc::clone(&opened), Arc::clone(&cancelled)),
            Arc::default(),
        );
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::Platform("metal".into()));
        assert_eq!(*opened.lock().expect("opened"), 0);
        assert!(ConfigStore::in_dir(dir.path()).path().exists());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_server_gets_maintenance_opened_beside_it_and_then_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::new(vec![fixture()], PLATFORM_GRACE * 3);
        let (opened, cancelled) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
        let observer = Arc::new(Recorder::default());
        let a = acquire(
            dir.path(),
            &server,
            idle_maintenance(Arc::clone(&opened), Arc::clone(&cancelled)),
            Arc::clone(&observer),
        );
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::Platform("metal".into()));
        assert_eq!(*opened.lock().expect("opened"), 1, "maintenance opened");
        assert_eq!(*cancelled.lock().expect("cancelled"), 1, "and closed");
        assert_eq!(
            observer.stages.lock().expect("stages").last(),
            Some(&MachineStage::Booting)
        );
        assert_eq!(
            std::fs::read(ConfigStore::in_dir(dir.path()).path()).expect("persisted"),
            fixture()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_served_config_is_fetched_again_until_it_is_fixed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::new(
            vec![
                b"not: [valid".to_vec(),
                b"version: v1alpha1\n".to_vec(),
                fixture(),
            ],
            Duration::from_millis(10),
        );
        let (opened, cancelled) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
        let observer = Arc::new(Recorder::default());
        let a = acquire(
            dir.path(),
            &server,
            idle_maintenance(Arc::clone(&opened), Arc::clone(&cancelled)),
            Arc::clone(&observer),
        );
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::Platform("metal".into()));
        assert_eq!(server.fetches(), 3);
        let unmet = observer.unmet.lock().expect("unmet").clone();
        assert_eq!(unmet.len(), 2, "{unmet:?}");
        assert!(unmet[0].contains("failed to load config"), "{unmet:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn maintenance_wins_over_a_server_that_keeps_serving_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::new(vec![b"not: [valid".to_vec()], Duration::from_millis(10));
        let calls = Arc::new(Mutex::new(0));
        let maintenance: MaintenanceFn = {
            let inner = fake_maintenance(Some(fixture()), Arc::clone(&calls));
            // Applied a minute after maintenance opened.
            Arc::new(move |opts| {
                let inner = Arc::clone(&inner);
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    inner(opts).await
                })
            })
        };
        let a = acquire(dir.path(), &server, maintenance, Arc::default());
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::Maintenance);
        let fetches = server.fetches();
        // 1 s, 2 s, 4 s, ... 30 s between fetches: a handful in 65 s, not a busy loop.
        assert!((4..=8).contains(&fetches), "{fetches} fetches");
    }

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    #[tokio::test]
    async fn persisted_config_beats_the_platform() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::in_dir(dir.path());
        let valid = store
            .accept(&fixture(), "fixture", Mode::Container)
            .expect("valid");
        store.persist(&valid).expect("persist");
        // The platform offers garbage: it must not even be looked at.
        let platform = Container::new(Some(b64(b"not: [valid")));
        let calls = Arc::new(Mutex::new(0));
        let a = acquire(
            dir.path(),
            &platform,
            fake_maintenance(None, Arc::clone(&calls)),
            Arc::default(),
        );
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::State);
        assert_eq!(*calls.lock().expect("calls"), 0);
    }

    #[tokio::test]
    async fn valid_userdata_is_persisted_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let platform = Container::new(Some(b64(&fixture())));
        let a = acquire(
            dir.path(),
            &platform,
            fake_maintenance(None, Arc::default()),
            Arc::default(),
        );
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::Platform("container".into()));
        let path = ConfigStore::in_dir(dir.path()).path();
        assert_eq!(std::fs::read(&path).expect("stored"), fixture());
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn invalid_userdata_goes_to_maintenance_and_is_never_persisted() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Parses, but the machine type is wrong.
        let text = String::from_utf8(fixture())
            .expect("utf8")
            .replace("type: controlplane", "type: bogus");
        let platform = Container::new(Some(b64(text.as_bytes())));
        let observer = Arc::new(Recorder::default());
        let calls = Arc::new(Mutex::new(0));
        let a = acquire(
            dir.path(),
            &platform,
            fake_maintenance(None, Arc::clone(&calls)),
            Arc::clone(&observer),
        );
        let got = a.run().await.expect("ok");
        assert!(got.is_none(), "maintenance ended without a config");
        assert_eq!(*calls.lock().expect("calls"), 1);
        assert!(
            !ConfigStore::in_dir(dir.path()).path().exists(),
            "nothing persisted"
        );
        assert_eq!(
            *observer.stages.lock().expect("stages"),
            vec![MachineStage::Maintenance]
        );
        let unmet = observer.unmet.lock().expect("unmet").join("\n");
        assert!(unmet.contains("machine.type"), "{unmet}");
    }

    #[tokio::test]
    async fn undecodable_userdata_goes_to_maintenance_which_supplies_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let platform = Container::new(Some("%%%".into()));
        let observer = Arc::new(Recorder::default());
        let a = acquire(
            dir.path(),
            &platform,
            fake_maintenance(Some(fixture()), Arc::default()),
            Arc::clone(&observer),
        );
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::Maintenance);
        assert_eq!(
            *observer.stages.lock().expect("stages"),
            vec![MachineStage::Maintenance, MachineStage::Booting]
        );
        assert!(observer
            .unmet
            .lock()
            .expect("unmet")
            .join("")
            .contains("USERDATA"));
    }

    #[tokio::test]
    async fn invalid_persisted_config_falls_through_to_the_platform() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::in_dir(dir.path());
        std::fs::write(store.path(), b"version: v1alpha1\nmachine: 7\n").expect("corrupt");
        let platform = Container::new(Some(b64(&fixture())));
        let a = acquire(
            dir.path(),
            &platform,
            fake_maintenance(None, Arc::default()),
            Arc::default(),
        );
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::Platform("container".into()));
        assert_eq!(std::fs::read(store.path()).expect("stored"), fixture());
    }

    #[tokio::test]
    async fn maintenance_hands_over_the_config_it_validated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let platform = Container::new(None);
        let handed = Arc::new(Mutex::new(None));
        let maintenance: MaintenanceFn = {
            let handed = Arc::clone(&handed);
            Arc::new(move |opts: maintenance::Options| {
                let handed = Arc::clone(&handed);
                Box::pin(async move {
                    let config = opts.store.accept(
                        &fixture(),
                        "the applied configuration",
                        Mode::Container,
                    )?;
                    let path = opts.store.persist(&config)?;
                    *handed.lock().expect("handed") = Some(Arc::clone(config.config()));
                    // Acquisition must not read the file back: make reading it fail.
                    std::fs::write(&path, b"not: [valid").expect("clobber");
                    Ok(Some(Applied {
                        config,
                        path,
                        mode: pb::apply_configuration_request::Mode::Auto,
                    }))
                })
            })
        };
        let a = acquire(dir.path(), &platform, maintenance, Arc::default());
        let got = a.run().await.expect("ok").expect("config");
        assert_eq!(got.source, ConfigSource::Maintenance);
        let handed = handed.lock().expect("handed").clone().expect("handed over");
        assert!(Arc::ptr_eq(&got.config, &handed), "the same typed config");
    }
}
