//! Hands the static pods to the kubelet (Talos's `StaticPodServerController`): a `PodList` of
//! every `StaticPods` resource served over HTTP on `127.0.0.1:<random port>`, whose URL is the
//! `StaticPodServerStatuses` resource (the kubelet's `staticPodURL`). Logs "rendered new
//! static pod" / "rendered updated static pod" / "removed static pod" on the controller
//! runtime's log, as Talos does.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    StaticPodServerStatusSpec, StaticPodSpec, STATIC_POD_SERVER_STATUS_ID,
};
use talos::resources::ResourceSpec;

pub use talos::log::CONTROLLER_RUNTIME;

/// Serves the pod list.
#[derive(Default)]
pub struct StaticPodServerController {
    pod_list: Arc<Mutex<Option<Vec<u8>>>>,
    versions: BTreeMap<String, u64>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for StaticPodServerController {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The pod list as the kubelet reads it: each pod as `k8s-openapi` serializes it (without the
/// `creationTimestamp: null` and `status: {}` Go's encoder adds to the resource).
pub fn pod_list(pods: &[serde_json::Value]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = pods.iter().map(talos::k8s::pods::served).collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "PodList", "items": items});
    let value = serde_yaml::to_value(&list).unwrap_or(serde_yaml::Value::Null);
    talos::yaml::emit_kubernetes(&talos::yaml::sort_maps(&value)).into_bytes()
}

async fn serve(listener: tokio::net::TcpListener, list: Arc<Mutex<Option<Vec<u8>>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let list = Arc::clone(&list);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let body = list.lock().map(|l| l.clone()).unwrap_or(None);
                    async move {
                        let resp = match body {
                            Some(b) => Response::new(Full::new(Bytes::from(b))),
                            None => {
                                let mut r = Response::new(Full::new(Bytes::from_static(
                                    b"Internal Server Error\n",
                                )));
                                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                                r
                            }
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl StaticPodServerController {
    async fn start_server(&mut self, ctx: &Context) -> Result<(), ControllerError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| {
                ControllerError::Other(format!(
                    "failed to create listener for serving static pod manifests: {e}"
                ))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| ControllerError::Other(e.to_string()))?;
        self.server = Some(tokio::spawn(serve(listener, Arc::clone(&self.pod_list))));
        ctx.put_typed(
            STATIC_POD_SERVER_STATUS_ID,
            &StaticPodServerStatusSpec {
                url: format!("http://{addr}"),
            },
        )?;
        Ok(())
    }

    fn log_changes(&mut self, pods: &[(String, u64)]) {
        let controller = self.name();
        for (id, version) in pods {
            match self.versions.insert(id.clone(), *version) {
                None => tracing::info!(
                    target: CONTROLLER_RUNTIME, component = CONTROLLER_RUNTIME, controller, id = %id,
                    "rendered new static pod"
                ),
                Some(old) if old != *version => tracing::info!(
                    target: CONTROLLER_RUNTIME, component = CONTROLLER_RUNTIME, controller, id = %id,
                    old_version = old, new_version = *version, "rendered updated static pod"
                ),
                Some(_) => {}
            }
        }
        let gone: Vec<String> = self
            .versions
            .keys()
            .filter(|id| !pods.iter().any(|(p, _)| p == *id))
            .cloned()
            .collect();
        for id in gone {
            self.versions.remove(&id);
            tracing::info!(
                target: CONTROLLER_RUNTIME, component = CONTROLLER_RUNTIME, controller, id = %id,
                "removed static pod"
            );
        }
    }
}

impl Controller for StaticPodServerController {
    fn name(&self) -> &'static str {
        "k8s.StaticPodServerController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::of::<StaticPodSpec>()]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![StaticPodServerStatusSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        if self.server.is_none() {
            self.start_server(ctx).await?;
        }
        let resources = ctx
            .state()
            .list(StaticPodSpec::NAMESPACE, StaticPodSpec::TYPE);
        let mut pods = Vec::new();
        let mut versions = Vec::new();
        for r in &resources {
            pods.push(r.typed::<StaticPodSpec>()?.pod);
            versions.push((r.metadata.id.clone(), r.metadata.version));
        }
        self.log_changes(&versions);
        if let Ok(mut list) = self.pod_list.lock() {
            *list = Some(pod_list(&pods));
        }
        Ok(Action::AwaitChange)
    }
}
