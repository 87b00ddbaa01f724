//! The API seams the sequencer implements: [`PowerControl`] (Reboot, Shutdown, Reset) and
//! [`ConfigControl`] (ApplyConfiguration).
//!
//! Apply: the config is parsed and validated for the platform's mode by the node's
//! [`talos::config::ConfigStore`] (an invalid one is refused with `INVALID_ARGUMENT` naming the
//! key, and never persisted), then persisted there and, by mode:
//!
//! | mode | effect |
//! |---|---|
//! | `no-reboot` | becomes the active config at once (the observer is told); refused if it changes what needs a reboot (`machine.type`, `machine.ca`, `machine.token`) |
//! | `reboot` | the Reboot sequence runs; the node boots with it |
//! | `auto` | `no-reboot` when possible, else `reboot` |
//! | `staged` | persisted only; used at the next boot |
//! | `try` | not supported yet (`UNIMPLEMENTED`) |
//!
//! `dry_run` validates and reports what would happen, nothing else.

use std::sync::Arc;

use talos::api::machine::apply_configuration_request::Mode as ApplyMode;
use talos::config::Config;
use talos::errors::chain;

use super::node::Node;
use super::sequences::{self, WipeTarget};
use super::{Phase, Sequence};
use crate::init::acquire::Refusal;
use crate::init::runtime::{
    ApplyOutcome, ApplyRequest, BoxFuture, ConfigControl, ControlError, PowerControl, PowerRequest,
};

/// The sequencer's API face.
#[derive(Clone)]
pub struct Controls {
    node: Arc<Node>,
}

impl Controls {
    /// Controls for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Controls { node }
    }

    /// The node these controls act on.
    #[cfg(test)]
    pub fn node(&self) -> Arc<Node> {
        Arc::clone(&self.node)
    }
}

/// Starts a power sequence in the background (`force`: take over whatever runs, as signals
/// do). Fails at once if the running sequence may not be taken over.
pub fn start_power_sequence(
    node: &Arc<Node>,
    sequence: Sequence,
    phases: Vec<Phase>,
    force: bool,
) -> Result<(), ControlError> {
    node.sequencer
        .check(sequence, force)
        .map_err(|e| ControlError::FailedPrecondition(e.to_string()))?;
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| ControlError::Internal(format!("no async runtime: {e}")))?;
    let node = Arc::clone(node);
    handle.spawn(async move {
        let previous = node.sequencer.running();
        node.set_stage(sequences::stage_of(sequence), false, Vec::new());
        match node.sequencer.run(sequence, phases, force).await {
            Ok(()) => {}
            Err(e) => {
                tracing::error!("{sequence} sequence: {e}");
                if node.final_action_now().is_none() {
                    let reason = e.to_string();
                    let stage = match previous {
                        Some(_) => crate::init::runtime::MachineStage::Booting,
                        None => crate::init::runtime::MachineStage::Running,
                    };
                    node.set_stage(stage, false, vec![(sequence.to_string(), reason)]);
                }
            }
        }
    });
    Ok(())
}

impl PowerControl for Controls {
    fn request(&self, request: PowerRequest) -> Result<String, ControlError> {
        let node = &self.node;
        let (sequence, phases) = match request {
            PowerRequest::Reboot { .. } => (Sequence::Reboot, sequences::reboot(node)),
            PowerRequest::Shutdown { .. } => (Sequence::Shutdown, sequences::shutdown(node)),
            PowerRequest::Reset {
                reboot,
                system_labels,
                ..
            } => {
                let mut targets = Vec::new();
                for label in &system_labels {
                    let target = WipeTarget::from_label(label).ok_or_else(|| {
                        ControlError::InvalidArgument(format!(
                            "unknown system partition label {label:?}: expected STATE or EPHEMERAL"
                        ))
                    })?;
                    targets.push(target);
                }
                (Sequence::Reset, sequences::reset(node, targets, reboot))
            }
        };
        start_power_sequence(node, sequence, phases, false)?;
        let actor = node.events.new_id().to_string();
        tracing::info!(actor, "{sequence} requested through the API");
        Ok(actor)
    }
}

/// Why `new` cannot replace `current` without a reboot (`None`: it can).
pub fn needs_reboot(current: Option<&Config>, new: &Config) -> Option<String> {
    let machine = |c: &Config| c.v1alpha1().and_then(|v| v.machine.clone());
    let current = current.map(machine)?;
    let new = machine(new);
    match (current, new) {
        (Some(a), Some(b)) => {
            if a.machine_type != b.machine_type {
                Some("machine.type changed".into())
            } else if a.ca != b.ca {
                Some("machine.ca changed".into())
            } else if a.token != b.token {
                Some("machine.token changed".into())
            } else {
                None
            }
        }
        (None, None) => None,
        _ => Some("the machine section was added or removed".into()),
    }
}

fn details(mode: ApplyMode) -> &'static str {
    match mode {
        ApplyMode::NoReboot => "Applied configuration without a reboot",
        ApplyMode::Reboot => "Applied configuration with a reboot",
        ApplyMode::Staged => "Staged configuration to be applied after a reboot",
        ApplyMode::Auto | ApplyMode::Try => "",
    }
}

impl ConfigControl for Controls {
    fn apply(&self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyOutcome, ControlError>> {
        Box::pin(async move {
            let node = Arc::clone(&self.node);
            if request.mode == ApplyMode::Try {
                return Err(ControlError::Unimplemented(
                    "apply mode try is not supported by this build yet: use --mode=no-reboot, \
                     reboot, staged or auto"
                        .into(),
                ));
            }
            let mode = node.mode();
            let data = request.data;
            let store = node.config_store();
            let valid = tokio::task::spawn_blocking(move || {
                store.accept(&data, "the applied configuration", mode)
            })
            .await
            .map_err(|e| ControlError::Internal(format!("validation worker failed: {e}")))?
            .map_err(|e| {
                let refusal = Refusal::from(&e);
                tracing::warn!("applied configuration refused: {refusal}");
                ControlError::InvalidArgument(refusal.to_string())
            })?;
            let warnings: Vec<String> = valid.warnings().iter().map(ToString::to_string).collect();

            let current = node.config();
            let blocker = needs_reboot(current.as_deref(), valid.config());
            let resolved = match request.mode {
                ApplyMode::Auto if blocker.is_some() => ApplyMode::Reboot,
                ApplyMode::Auto => ApplyMode::NoReboot,
                ApplyMode::NoReboot => {
                    if let Some(reason) = &blocker {
                        return Err(ControlError::InvalidArgument(format!(
                            "configuration cannot be applied without a reboot: {reason}; use --mode=reboot or --mode=staged"
                        )));
                    }
                    ApplyMode::NoReboot
                }
                other => other,
            };
            if request.dry_run {
                return Ok(ApplyOutcome {
                    mode: resolved,
                    mode_details: format!(
                        "Dry run summary:\nThe configuration is valid; applying it would use mode {}.",
                        resolved.as_str_name().to_ascii_lowercase().replace('_', "-")
                    ),
                    warnings,
                });
            }
            if resolved == ApplyMode::Reboot {
                // Refuse before persisting if the reboot could not start.
                node.sequencer
                    .check(Sequence::Reboot, false)
                    .map_err(|e| ControlError::FailedPrecondition(e.to_string()))?;
            }
            let store = node.config_store();
            let config = Arc::clone(valid.config());
            let stored = tokio::task::spawn_blocking(move || {
                store.persist(&valid).map_err(|e| {
                    format!(
                        "persisting the machine config to {}: {}",
                        store.path().display(),
                        chain(&e)
                    )
                })
            })
            .await
            .map_err(|e| ControlError::Internal(format!("persist worker failed: {e}")))?
            .map_err(ControlError::Internal)?;
            tracing::info!(path = %stored.display(), mode = ?resolved, "applied configuration stored");
            match resolved {
                ApplyMode::NoReboot => node.set_config(config),
                ApplyMode::Reboot => {
                    start_power_sequence(&node, Sequence::Reboot, sequences::reboot(&node), false)?
                }
                _ => {}
            }
            Ok(ApplyOutcome {
                mode: resolved,
                mode_details: details(resolved).to_string(),
                warnings,
            })
        })
    }
}
