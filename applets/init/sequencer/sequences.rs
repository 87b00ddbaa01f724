//! The contents of machined's sequences, as Talos 1.7 runs them where they make sense here.
//!
//! | sequence | phases (tasks) |
//! |---|---|
//! | Initialize | systemRequirements (setupSystemDirectory, mountPseudoFilesystems) → machined (startMachined) → config (loadConfig) |
//! | Boot | var (setupVarDirectory) → etc (writeEtcFiles, loadKernelModules) → pki (writeAPIPKI) → startEverything (startAllServices) |
//! | Reboot | stopEverything (stopAllServices) → reboot (reboot) |
//! | Shutdown | stopEverything (stopAllServices) → shutdown (shutdown) |
//! | Reset | stopEverything (stopAllServices) → reset (resetSystemDisk) → reboot or shutdown |
//!
//! The last task of Reboot, Shutdown and Reset does not end the process itself: it records the
//! [`FinalAction`] (an exit code on the container platform, a `reboot(2)` command on metal),
//! which PID 1 performs once the API server has stopped.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use talos::api::machine as pb;
use talos::auth::PkiDir;
use talos::config::{Config, Mode};
use talos::constants;
use talos::errors::chain;
use talos::sys::power::PowerAction;

use super::node::{FinalAction, Node, EXIT_POWER_OFF, EXIT_REBOOT};
use super::{Phase, Sequence, Task};
use crate::init::acquire::Acquire;
use crate::init::pki::{self, NodeIdentity};
use crate::init::runtime::MachineStage;

fn mkdirs(node: &Node, dirs: &[(&str, u32)]) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    for (dir, mode) in dirs {
        let path = node.path(dir);
        let existed = path.is_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(*mode)
            .create(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        if !existed {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                .with_context(|| format!("setting the mode of {}", path.display()))?;
        }
    }
    Ok(())
}

fn task(
    node: &Arc<Node>,
    name: &str,
    f: fn(Arc<Node>) -> super::BoxFuture<'static, anyhow::Result<()>>,
) -> Task {
    let node = Arc::clone(node);
    Task::new(name, move || f(node))
}

/// Initialize.
pub fn initialize(node: &Arc<Node>) -> Vec<Phase> {
    let mut requirements = vec![task(node, "setupSystemDirectory", |n| {
        Box::pin(async move { mkdirs(&n, constants::SYSTEM_DIRECTORIES) })
    })];
    if node.options.mount_pseudo {
        requirements.push(task(node, "mountPseudoFilesystems", |n| {
            Box::pin(async move {
                let table: Vec<_> = talos::sys::mount::PSEUDO_FILESYSTEMS
                    .iter()
                    .copied()
                    .filter(|m| !m.early)
                    .collect();
                for (target, outcome) in talos::sys::mount::mount_table(&n.options.root, &table)? {
                    tracing::info!("{target}: {outcome:?}");
                }
                Ok(())
            })
        }));
    }
    vec![
        Phase::new("systemRequirements", requirements),
        Phase::new(
            "machined",
            vec![task(node, "startMachined", |n| {
                Box::pin(async move {
                    crate::init::api::machine::publish_service_state(
                        &n.events,
                        "machined",
                        pb::service_state_event::Action::Running,
                        "Service started as goroutine",
                        true,
                    );
                    Ok(())
                })
            })],
        ),
        Phase::new(
            "config",
            vec![task(node, "loadConfig", |n| Box::pin(load_config(n)))],
        ),
    ]
}

async fn load_config(node: Arc<Node>) -> anyhow::Result<()> {
    let acquire = Acquire {
        store: node.config_store(),
        mode: node.mode(),
        platform: node.platform.as_ref(),
        maintenance_listen: node.options.maintenance_listen,
        maintenance: Arc::clone(&node.options.maintenance),
        observer: Arc::clone(&node.observer),
        events: Arc::clone(&node.events),
        platform_grace: crate::init::acquire::PLATFORM_GRACE,
    };
    let acquired = acquire
        .run()
        .await?
        .context("maintenance mode ended before a config was applied")?;
    for warning in &acquired.warnings {
        tracing::warn!("config warning: {warning}");
    }
    tracing::info!(source = ?acquired.source, "machine config loaded");
    node.set_config(acquired.config);
    Ok(())
}

/// Boot.
pub fn boot(node: &Arc<Node>) -> Vec<Phase> {
    vec![
        Phase::new(
            "var",
            vec![task(node, "setupVarDirectory", |n| {
                Box::pin(async move { mkdirs(&n, constants::VAR_DIRECTORIES) })
            })],
        ),
        Phase::new(
            "etc",
            vec![
                task(node, "writeEtcFiles", |n| Box::pin(write_etc_files(n))),
                task(node, "loadKernelModules", |n| {
                    Box::pin(load_kernel_modules(n))
                }),
            ],
        ),
        Phase::new(
            "pki",
            vec![task(node, "writeAPIPKI", |n| Box::pin(write_api_pki(n)))],
        ),
        Phase::new(
            "startEverything",
            vec![task(node, "startAllServices", |n| {
                Box::pin(start_all_services(n))
            })],
        ),
    ]
}

/// `machine.kernel.modules`: each module name and its parameters joined by spaces.
pub fn configured_modules(config: &Config) -> Vec<(String, String)> {
    config
        .v1alpha1()
        .and_then(|c| c.machine.as_ref())
        .and_then(|m| m.kernel.as_ref())
        .map(|k| {
            k.modules
                .iter()
                .filter(|m| !m.name.is_empty())
                .map(|m| (m.name.clone(), m.parameters.join(" ")))
                .collect()
        })
        .unwrap_or_default()
}

/// Loads `machine.kernel.modules` (with their dependencies, parameters to the named module)
/// from `/lib/modules/<release>`. A module that cannot be loaded is logged and does not stop
/// the boot, as Talos's kernel module controller reports and goes on. The container platform
/// shares the host's kernel: nothing is loaded there.
async fn load_kernel_modules(node: Arc<Node>) -> anyhow::Result<()> {
    let config = node.config().context("no machine config loaded")?;
    let modules = configured_modules(&config);
    if modules.is_empty() {
        return Ok(());
    }
    if node.mode() == Mode::Container {
        tracing::info!(
            "machine.kernel.modules: {} module(s) not loaded: the container platform shares the host's kernel",
            modules.len()
        );
        return Ok(());
    }
    let modules_root = node.path(constants::KERNEL_MODULES_PATH);
    let Some(dir) = talos::sys::kmod::running_release_dir(&modules_root) else {
        tracing::warn!(
            "machine.kernel.modules: no modules for this kernel under {}: {} module(s) not loaded",
            modules_root.display(),
            modules.len()
        );
        return Ok(());
    };
    tokio::task::spawn_blocking(move || {
        let tree = match talos::sys::kmod::ModuleTree::open(&dir) {
            Ok(tree) => tree,
            Err(e) => {
                tracing::warn!("machine.kernel.modules: {}", chain(&e));
                return;
            }
        };
        for (name, parameters) in &modules {
            match tree.load_with_parameters(name, parameters) {
                Ok(loaded) => tracing::info!("kernel module {name}: {loaded:?}"),
                Err(e) => tracing::warn!("kernel module {name}: {}", chain(&e)),
            }
        }
    })
    .await
    .context("kernel module loader thread")?;
    Ok(())
}

async fn write_etc_files(node: Arc<Node>) -> anyhow::Result<()> {
    let config = node.config().context("no machine config loaded")?;
    let wanted = config
        .v1alpha1()
        .and_then(|c| c.machine.as_ref())
        .and_then(|m| m.network.as_ref())
        .map(|n| n.hostname.clone())
        .filter(|h| !h.is_empty());
    let current = talos::sys::fs::hostname().unwrap_or_default();
    let hostname = match wanted {
        Some(h) if h != current && node.options.set_hostname => {
            nix::unistd::sethostname(&h).with_context(|| format!("setting the hostname to {h}"))?;
            tracing::info!("hostname set to {h}");
            h
        }
        Some(h) => h,
        None => current,
    };
    let path = node.path(constants::HOSTNAME_PATH);
    talos::fsutil::write_atomic(
        &path,
        format!("{hostname}\n").as_bytes(),
        talos::fsutil::WriteOptions::mode(0o644).overwrite(true),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

async fn write_api_pki(node: Arc<Node>) -> anyhow::Result<()> {
    let config = node.config().context("no machine config loaded")?;
    let identity = NodeIdentity::current();
    let apid_dir = PkiDir::new(node.path(constants::APID_SECRETS_PATH));
    if node.is_control_plane() {
        let trustd_dir = PkiDir::new(node.path(constants::TRUSTD_SECRETS_PATH));
        let owners = node
            .options
            .chown_pki
            .then_some((pki::APID_OWNER, pki::TRUSTD_OWNER));
        tokio::task::spawn_blocking(move || {
            pki::write_control_plane(&config, &apid_dir, &trustd_dir, &identity, owners)
        })
        .await
        .context("PKI worker thread")?
    } else {
        let owner = node.options.chown_pki.then_some(pki::APID_OWNER);
        pki::write_worker(
            &config,
            &apid_dir,
            &identity,
            node.options.trustd_endpoints.clone(),
            node.options.worker_retry,
            owner,
        )
        .await
    }
}

/// The services Boot starts.
pub fn boot_services(control_plane: bool) -> Vec<String> {
    let mut ids = vec!["apid".to_string()];
    if control_plane {
        ids.push("trustd".to_string());
    }
    ids
}

/// Services Boot starts but does not wait for: etcd on control planes stays in its pre step
/// until `talosctl bootstrap` (Talos's boot waits for it; here the node reports running and
/// etcd shows Preparing), and it exists only where the extension layer provides it.
pub fn background_services(control_plane: bool) -> Vec<String> {
    if control_plane {
        vec!["etcd".to_string()]
    } else {
        Vec::new()
    }
}

async fn start_all_services(node: Arc<Node>) -> anyhow::Result<()> {
    let ids = boot_services(node.is_control_plane());
    for id in &ids {
        let message = node
            .services
            .start(id)
            .await
            .with_context(|| format!("starting service {id}"))?;
        tracing::info!("{message}");
    }
    for id in background_services(node.is_control_plane()) {
        match node.services.start(&id).await {
            Ok(message) => tracing::info!("{message}"),
            Err(e) => tracing::info!("not starting {id}: {e}"),
        }
    }
    node.services
        .wait_up(&ids, node.options.service_timeout)
        .await
        .with_context(|| format!("waiting for services {}", ids.join(", ")))?;
    tracing::info!("all services up: {}", ids.join(", "));
    Ok(())
}

fn stop_everything(node: &Arc<Node>) -> Phase {
    Phase::new(
        "stopEverything",
        vec![task(node, "stopAllServices", |n| {
            Box::pin(async move {
                n.services.stop_all().await;
                Ok(())
            })
        })],
    )
}

fn reboot_phase(node: &Arc<Node>) -> Phase {
    Phase::new(
        "reboot",
        vec![task(node, "reboot", |n| {
            Box::pin(async move {
                n.finish(match n.mode() {
                    Mode::Container => FinalAction::Exit(EXIT_REBOOT),
                    _ => FinalAction::Power(PowerAction::Restart),
                });
                Ok(())
            })
        })],
    )
}

fn shutdown_phase(node: &Arc<Node>) -> Phase {
    Phase::new(
        "shutdown",
        vec![task(node, "shutdown", |n| {
            Box::pin(async move {
                n.finish(match n.mode() {
                    Mode::Container => FinalAction::Exit(EXIT_POWER_OFF),
                    _ => FinalAction::Power(n.options.shutdown_action),
                });
                Ok(())
            })
        })],
    )
}

/// Reboot.
pub fn reboot(node: &Arc<Node>) -> Vec<Phase> {
    vec![stop_everything(node), reboot_phase(node)]
}

/// Shutdown.
pub fn shutdown(node: &Arc<Node>) -> Vec<Phase> {
    vec![stop_everything(node), shutdown_phase(node)]
}

/// What Reset wipes: the partition labels Talos uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WipeTarget {
    /// `STATE`: `/system/state`.
    State,
    /// `EPHEMERAL`: `/var`.
    Ephemeral,
}

impl WipeTarget {
    /// Parses a partition label.
    pub fn from_label(label: &str) -> Option<WipeTarget> {
        match label {
            "STATE" => Some(WipeTarget::State),
            "EPHEMERAL" => Some(WipeTarget::Ephemeral),
            _ => None,
        }
    }

    fn path(self) -> &'static str {
        match self {
            WipeTarget::State => constants::STATE_MOUNT_POINT,
            WipeTarget::Ephemeral => constants::EPHEMERAL_MOUNT_POINT,
        }
    }
}

/// Removes everything inside `dir` (which stays, as it may be a mount point).
pub fn wipe_contents(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let result = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        result.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Reset: wipes `targets` (both when empty), then reboots or powers off.
pub fn reset(node: &Arc<Node>, targets: Vec<WipeTarget>, reboot: bool) -> Vec<Phase> {
    let targets = if targets.is_empty() {
        vec![WipeTarget::State, WipeTarget::Ephemeral]
    } else {
        targets
    };
    let wipe_node = Arc::clone(node);
    let wipe = Task::new("resetSystemDisk", move || async move {
        for target in targets {
            let dir = wipe_node.path(target.path());
            tracing::info!("wiping {}", dir.display());
            tokio::task::spawn_blocking(move || wipe_contents(&dir))
                .await
                .context("wipe worker thread")??;
        }
        Ok(())
    });
    vec![
        stop_everything(node),
        Phase::new("reset", vec![wipe]),
        if reboot {
            reboot_phase(node)
        } else {
            shutdown_phase(node)
        },
    ]
}

/// The stage a sequence puts the machine in while it runs.
pub fn stage_of(sequence: Sequence) -> MachineStage {
    match sequence {
        Sequence::Initialize | Sequence::Boot => MachineStage::Booting,
        Sequence::Reboot => MachineStage::Rebooting,
        Sequence::Shutdown => MachineStage::ShuttingDown,
        Sequence::Reset => MachineStage::Resetting,
    }
}
