//! `TimeStatuses` (`node`): whether the clock is synchronized.
//!
//! machined has no NTP client yet. On the container platform the host owns the clock, so time
//! sync is disabled and the clock counts as synced (what Talos reports in Docker); the same
//! holds with `machine.time.disabled: true`. Elsewhere the clock is reported not synced.

use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    MachineConfigSpec, TimeStatusSpec, MACHINE_CONFIG_ID, TIME_STATUS_ID,
};
use talos::resources::ResourceSpec;

use super::{current_config, Env};

/// Publishes the time status.
pub struct TimeStatusController {
    env: Env,
}

impl TimeStatusController {
    /// A controller for `env`'s platform.
    pub fn new(env: Env) -> Self {
        TimeStatusController { env }
    }
}

impl Controller for TimeStatusController {
    fn name(&self) -> &'static str {
        "time.SyncController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::one::<MachineConfigSpec>(MACHINE_CONFIG_ID)]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![TimeStatusSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let disabled_by_config = current_config(ctx.state())
            .and_then(|c| {
                c.v1alpha1()
                    .and_then(|v| v.machine.as_ref())
                    .and_then(|m| m.time.as_ref())
                    .and_then(|t| t.disabled)
            })
            .unwrap_or(false);
        let disabled = self.env.is_container() || disabled_by_config;
        ctx.put_typed(
            TIME_STATUS_ID,
            &TimeStatusSpec {
                synced: disabled,
                epoch: 0,
                sync_disabled: disabled,
            },
        )?;
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use talos::config::Mode;
    use talos::resources::State;

    #[tokio::test]
    async fn container_sync_is_disabled() {
        for (mode, synced) in [(Mode::Container, true), (Mode::Metal, false)] {
            let st = State::new();
            let ctx = Context::new(
                st.clone(),
                "time.SyncController",
                vec![TimeStatusSpec::TYPE],
            );
            let mut c = TimeStatusController::new(Env::new(mode));
            c.reconcile(&ctx).await.unwrap();
            let t: TimeStatusSpec = st.get_typed(TIME_STATUS_ID).unwrap();
            assert_eq!((t.synced, t.sync_disabled), (synced, synced), "{mode}");
        }
    }
}
