//! The control-plane static pods (Talos's `ControlPlaneStaticPodController`): once etcd is
//! healthy and the secret and config files are rendered, `StaticPods` `kube-apiserver`,
//! `kube-controller-manager` and `kube-scheduler` are rendered from their config resources;
//! they are torn down when etcd goes away.

use talos::k8s::pods::{self, Versions};
use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    ApiServerConfigSpec, ConfigStatusSpec, ControllerManagerConfigSpec, SchedulerConfigSpec,
    SecretsStatusSpec, ServiceSpec, StaticPodSpec, APISERVER_ID, CONTROLLER_MANAGER_ID,
    SCHEDULER_ID, STATIC_PODS_ID,
};
use talos::resources::{Resource, ResourceSpec};

/// Renders the static pods.
#[derive(Default)]
pub struct ControlPlaneStaticPodController;

fn teardown(ctx: &Context) -> Result<Action, ControllerError> {
    ctx.retain(StaticPodSpec::NAMESPACE, StaticPodSpec::TYPE, |_| false)?;
    Ok(Action::AwaitChange)
}

fn failed(kind: &str, e: impl std::fmt::Display) -> ControllerError {
    ControllerError::Other(format!("error updating static pod for {kind:?}: {e}"))
}

fn put(
    ctx: &Context,
    id: &str,
    pod: &k8s_openapi::api::core::v1::Pod,
) -> Result<(), ControllerError> {
    ctx.put(Resource::from_typed(
        id,
        &StaticPodSpec {
            pod: pods::to_resource_json(pod),
        },
    ))?;
    Ok(())
}

impl Controller for ControlPlaneStaticPodController {
    fn name(&self) -> &'static str {
        "k8s.ControlPlaneStaticPodController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::of::<ApiServerConfigSpec>(),
            Input::of::<ControllerManagerConfigSpec>(),
            Input::of::<SchedulerConfigSpec>(),
            Input::one::<SecretsStatusSpec>(STATIC_PODS_ID),
            Input::one::<ConfigStatusSpec>(STATIC_PODS_ID),
            Input::one::<ServiceSpec>("etcd"),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![StaticPodSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        // kube-apiserver talks to the local etcd: nothing is rendered until it is healthy.
        let Ok(etcd) = st.get_typed::<ServiceSpec>("etcd") else {
            return teardown(ctx);
        };
        if !etcd.healthy {
            return Ok(Action::AwaitChange);
        }
        let (Ok(secrets), Ok(configs)) = (
            st.get_typed::<SecretsStatusSpec>(STATIC_PODS_ID),
            st.get_typed::<ConfigStatusSpec>(STATIC_PODS_ID),
        ) else {
            return teardown(ctx);
        };
        let mut touched = Vec::new();
        let get = |ty: &str, id: &str| st.get(ApiServerConfigSpec::NAMESPACE, ty, id).ok();
        if let Some(r) = get(ApiServerConfigSpec::TYPE, APISERVER_ID) {
            let versions = Versions {
                secrets: secrets.version.clone(),
                config_files: configs.version.clone(),
                config: r.metadata.version.to_string(),
            };
            let pod = pods::api_server(&r.typed()?, &versions)
                .map_err(|e| failed(ApiServerConfigSpec::TYPE, e))?;
            put(ctx, APISERVER_ID, &pod)?;
            touched.push(APISERVER_ID);
        }
        if let Some(r) = get(ControllerManagerConfigSpec::TYPE, CONTROLLER_MANAGER_ID) {
            let versions = Versions {
                secrets: secrets.version.clone(),
                config_files: String::new(),
                config: r.metadata.version.to_string(),
            };
            if let Some(pod) = pods::controller_manager(&r.typed()?, &versions)
                .map_err(|e| failed(ControllerManagerConfigSpec::TYPE, e))?
            {
                put(ctx, CONTROLLER_MANAGER_ID, &pod)?;
                touched.push(CONTROLLER_MANAGER_ID);
            }
        }
        if let Some(r) = get(SchedulerConfigSpec::TYPE, SCHEDULER_ID) {
            let versions = Versions {
                secrets: secrets.version.clone(),
                config_files: String::new(),
                config: r.metadata.version.to_string(),
            };
            if let Some(pod) = pods::scheduler(&r.typed()?, &versions)
                .map_err(|e| failed(SchedulerConfigSpec::TYPE, e))?
            {
                put(ctx, SCHEDULER_ID, &pod)?;
                touched.push(SCHEDULER_ID);
            }
        }
        ctx.retain(StaticPodSpec::NAMESPACE, StaticPodSpec::TYPE, |id| {
            touched.contains(&id)
        })?;
        Ok(Action::AwaitChange)
    }
}
