//! The bootstrap manifests (Talos's `ManifestController`, `ExtraManifestController`) and
//! their application to the API server (`ManifestApplyController`).

use std::collections::BTreeSet;
use std::time::Duration;

use talos::k8s::apply::{ApplyError, Client};
use talos::k8s::manifests;
use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    BootstrapManifestsConfigSpec, ExtraManifest, ExtraManifestsConfigSpec, KubernetesCertsSpec,
    KubernetesRootSpec, ManifestSpec, ManifestStatusSpec, ServiceSpec, EXTRA_MANIFESTS_ID,
    KUBERNETES_CERTS_ID, KUBERNETES_ROOT_ID, MANIFESTS_ID,
};
use talos::resources::{Resource, ResourceSpec};

use super::static_pod_server::CONTROLLER_RUNTIME;

/// How long one manifest download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the applier tries again while the API server does not answer.
const APPLY_RETRY: Duration = Duration::from_secs(10);

fn other(e: impl std::fmt::Display) -> ControllerError {
    ControllerError::Other(e.to_string())
}

fn put_manifest(
    ctx: &Context,
    id: &str,
    items: Vec<serde_json::Value>,
) -> Result<(), ControllerError> {
    ctx.put(Resource::from_typed(id, &ManifestSpec { items }))?;
    Ok(())
}

/// Renders Talos's built-in manifests.
#[derive(Default)]
pub struct ManifestController;

impl Controller for ManifestController {
    fn name(&self) -> &'static str {
        "k8s.ManifestController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<BootstrapManifestsConfigSpec>(MANIFESTS_ID),
            Input::one::<KubernetesRootSpec>(KUBERNETES_ROOT_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![ManifestSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        let (Ok(cfg), Ok(root)) = (
            st.get_typed::<BootstrapManifestsConfigSpec>(MANIFESTS_ID),
            st.get_typed::<KubernetesRootSpec>(KUBERNETES_ROOT_ID),
        ) else {
            ctx.retain(ManifestSpec::NAMESPACE, ManifestSpec::TYPE, |_| false)?;
            return Ok(Action::AwaitChange);
        };
        let rendered = manifests::render(&cfg, &root).map_err(other)?;
        for m in &rendered {
            put_manifest(ctx, &m.id, m.objects.clone())?;
        }
        ctx.retain(ManifestSpec::NAMESPACE, ManifestSpec::TYPE, |id| {
            rendered.iter().any(|m| m.id == id)
        })?;
        Ok(Action::AwaitChange)
    }
}

/// Fetches the CNI, cloud-provider and extra manifests and parses the inline ones.
#[derive(Default)]
pub struct ExtraManifestController;

async fn fetch(manifest: &ExtraManifest) -> Result<Vec<serde_json::Value>, ControllerError> {
    let text = if manifest.inline_manifest.is_empty() {
        let headers: Vec<(String, String)> = manifest
            .extra_headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let bytes =
            talos::platform::http::get_with_headers(&manifest.url, &headers, DOWNLOAD_TIMEOUT)
                .await
                .map_err(|e| other(format!("error downloading {:?}: {e}", manifest.url)))?;
        tracing::info!(
            target: CONTROLLER_RUNTIME, component = CONTROLLER_RUNTIME,
            controller = "k8s.ExtraManifestController", "downloaded manifest {:?}", manifest.url
        );
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        manifest.inline_manifest.clone()
    };
    manifests::parse(&text).map_err(other)
}

impl Controller for ExtraManifestController {
    fn name(&self) -> &'static str {
        "k8s.ExtraManifestController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::one::<ExtraManifestsConfigSpec>(EXTRA_MANIFESTS_ID)]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![ManifestSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let Ok(cfg) = ctx
            .state()
            .get_typed::<ExtraManifestsConfigSpec>(EXTRA_MANIFESTS_ID)
        else {
            ctx.retain(ManifestSpec::NAMESPACE, ManifestSpec::TYPE, |_| false)?;
            return Ok(Action::AwaitChange);
        };
        let mut present = BTreeSet::new();
        let mut errors = Vec::new();
        for m in &cfg.extra_manifests {
            let id = format!("{}-{}", m.priority, m.name);
            match fetch(m).await {
                Ok(items) => put_manifest(ctx, &id, items)?,
                Err(e) => errors.push(e.to_string()),
            }
            present.insert(id);
        }
        if !errors.is_empty() {
            return Err(other(errors.join("; ")));
        }
        ctx.retain(ManifestSpec::NAMESPACE, ManifestSpec::TYPE, |id| {
            present.contains(id)
        })?;
        Ok(Action::AwaitChange)
    }
}

/// Creates the manifests' objects through the API server once etcd is healthy (the admin
/// kubeconfig's local endpoint); while no API server answers it says so and retries.
#[derive(Default)]
pub struct ManifestApplyController {
    reported_unreachable: bool,
}

impl Controller for ManifestApplyController {
    fn name(&self) -> &'static str {
        "k8s.ManifestApplyController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<KubernetesCertsSpec>(KUBERNETES_CERTS_ID),
            Input::of::<ManifestSpec>(),
            Input::one::<ServiceSpec>("etcd"),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![ManifestStatusSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        let Ok(certs) = st.get_typed::<KubernetesCertsSpec>(KUBERNETES_CERTS_ID) else {
            return Ok(Action::AwaitChange);
        };
        if !st.get_typed::<ServiceSpec>("etcd").is_ok_and(|e| e.healthy) {
            return Ok(Action::AwaitChange);
        }
        let list = st.list(ManifestSpec::NAMESPACE, ManifestSpec::TYPE);
        let ids: Vec<String> = list.iter().map(|r| r.metadata.id.clone()).collect();
        if !list.is_empty() {
            let mut objects = Vec::new();
            for r in &list {
                objects.extend(r.typed::<ManifestSpec>()?.items);
            }
            let mut client =
                Client::from_kubeconfig(&certs.localhost_admin_kubeconfig).map_err(other)?;
            match client.apply(&objects).await {
                Ok(created) => {
                    for name in created {
                        tracing::info!(target: CONTROLLER_RUNTIME, component = CONTROLLER_RUNTIME,
                            controller = self.name(), "created {name}");
                    }
                    self.reported_unreachable = false;
                }
                Err(e @ ApplyError::Unreachable { .. }) => {
                    if !self.reported_unreachable {
                        tracing::warn!(target: CONTROLLER_RUNTIME, component = CONTROLLER_RUNTIME,
                            controller = self.name(),
                            "manifests not applied, retrying every {APPLY_RETRY:?}: {e}");
                        self.reported_unreachable = true;
                    }
                    // Nothing is applied while no API server answers.
                    if st.get_typed::<ManifestStatusSpec>(MANIFESTS_ID).is_err() {
                        ctx.put_typed(MANIFESTS_ID, &ManifestStatusSpec::default())?;
                    }
                    return Ok(Action::Requeue(APPLY_RETRY));
                }
                Err(e) => return Err(other(e)),
            }
        }
        ctx.put_typed(
            MANIFESTS_ID,
            &ManifestStatusSpec {
                manifests_applied: ids,
            },
        )?;
        Ok(Action::AwaitChange)
    }
}
