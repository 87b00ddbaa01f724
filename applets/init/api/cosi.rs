//! `cosi.resource.State`: the resource store over the API (`talosctl get`).
//!
//! Access follows Talos's resource policy, with one addition for local writers:
//! - every call needs a registered resource type and namespace (else `PermissionDenied`
//!   "resource type … is not supported" / "namespace … is not supported");
//! - callers that come through apid carry `talos-role` metadata: they may read, sensitive types
//!   (machine config, secrets, …) only with `os:admin`, and may never write ("write access is
//!   not allowed", as Talos);
//! - callers without `talos-role` are local processes on machined's socket (mode 0600, root
//!   only; apid always sets the metadata, and refuses callers without roles before forwarding):
//!   they may read everything and write registered types, e.g. networkd publishing its status
//!   resources under its own owner.

use std::sync::Arc;

use talos::api::cosi::resource::{self as pb, state_server::State as StateService};
use talos::auth::role::{Role, RoleSet, METADATA_KEY};
use talos::errors::chain;
use talos::resources::registry::{self, Definition};
use talos::resources::{wire, EventKind, State, StateError};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::{called, shutting_down, stream_channel, Machined};

/// The State service implementation.
pub struct CosiApi {
    machined: Arc<Machined>,
}

impl CosiApi {
    /// Handlers over machined's resource store.
    pub fn new(machined: Arc<Machined>) -> Self {
        CosiApi { machined }
    }

    fn state(&self) -> &State {
        &self.machined.resources
    }
}

/// A state with the meta namespace, Talos's namespaces and every Talos 1.7 resource
/// definition registered.
pub fn new_state() -> State {
    let state = State::new();
    // The registered data is constant and covered by the library's tests.
    if let Err(e) = registry::register_defaults(&state) {
        tracing::error!("registering resource definitions: {}", chain(&e));
    }
    state
}

/// The caller's roles; `None` for a local caller (no `talos-role` metadata).
fn caller_roles<T>(request: &Request<T>) -> Option<RoleSet> {
    let values: Vec<String> = request
        .metadata()
        .get_all(METADATA_KEY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(RoleSet::parse(values))
    }
}

/// Maps a store error to the status COSI answers with.
pub fn state_status(e: StateError) -> Status {
    let message = e.to_string();
    match e {
        StateError::NotFound(_) => Status::not_found(message),
        StateError::AlreadyExists(_) => Status::already_exists(message),
        StateError::OwnerConflict { .. } => Status::permission_denied(message),
        StateError::PhaseConflict { .. } | StateError::Spec(_) => Status::invalid_argument(message),
        StateError::VersionConflict { .. } | StateError::PendingFinalizers { .. } => {
            Status::failed_precondition(message)
        }
    }
}

fn check_type(state: &State, namespace: &str, resource_type: &str) -> Result<Definition, Status> {
    let def = registry::lookup(state, resource_type).ok_or_else(|| {
        Status::permission_denied(format!("resource type {resource_type:?} is not supported"))
    })?;
    if !registry::namespace_exists(state, namespace) {
        return Err(Status::permission_denied(format!(
            "namespace {namespace:?} is not supported"
        )));
    }
    Ok(def)
}

/// Read access: registered type and namespace; sensitive types need `os:admin`.
fn check_read(
    state: &State,
    roles: Option<&RoleSet>,
    namespace: &str,
    resource_type: &str,
) -> Result<(), Status> {
    let def = check_type(state, namespace, resource_type)?;
    if let Some(roles) = roles {
        if def.is_sensitive() && !roles.includes(&Role::Admin) {
            return Err(Status::permission_denied(format!(
                "not authorized: resource type {resource_type:?} is sensitive and needs the os:admin role"
            )));
        }
    }
    Ok(())
}

/// Write access: local callers only, registered type and namespace.
fn check_write(
    state: &State,
    roles: Option<&RoleSet>,
    namespace: &str,
    resource_type: &str,
) -> Result<(), Status> {
    if roles.is_some() {
        return Err(Status::permission_denied("write access is not allowed"));
    }
    check_type(state, namespace, resource_type).map(|_| ())
}

fn wire_resource(r: &pb::Resource) -> Result<talos::resources::Resource, Status> {
    wire::from_proto(r).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The wire form of a stored resource (a typed spec is serialized here).
fn to_wire(r: &talos::resources::Resource) -> Result<pb::Resource, Status> {
    wire::to_proto(r).map_err(|e| Status::internal(format!("{}: {e}", r.metadata)))
}

#[tonic::async_trait]
impl StateService for CosiApi {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        called(&request, "cosi.Get");
        let roles = caller_roles(&request);
        let req = request.into_inner();
        check_read(self.state(), roles.as_ref(), &req.namespace, &req.r#type)?;
        let r = self
            .state()
            .get(&req.namespace, &req.r#type, &req.id)
            .map_err(state_status)?;
        Ok(Response::new(pb::GetResponse {
            resource: Some(to_wire(&r)?),
        }))
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<BoxStream<pb::ListResponse>>, Status> {
        called(&request, "cosi.List");
        let roles = caller_roles(&request);
        let req = request.into_inner();
        check_read(self.state(), roles.as_ref(), &req.namespace, &req.r#type)?;
        let id_filter = match req.options.as_ref().and_then(|o| o.id_query.as_ref()) {
            Some(q) if !q.regexp.is_empty() => Some(
                regex::Regex::new(&q.regexp)
                    .map_err(|e| Status::invalid_argument(format!("invalid id query: {e}")))?,
            ),
            _ => None,
        };
        let items: Vec<pb::ListResponse> = self
            .state()
            .list(&req.namespace, &req.r#type)
            .iter()
            .filter(|r| {
                id_filter
                    .as_ref()
                    .is_none_or(|re| re.is_match(&r.metadata.id))
            })
            .map(|r| {
                Ok(pb::ListResponse {
                    resource: Some(to_wire(r)?),
                })
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(Box::pin(tokio_stream::iter(
            items.into_iter().map(Ok),
        ))))
    }

    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        called(&request, "cosi.Create");
        let roles = caller_roles(&request);
        let req = request.into_inner();
        let r = wire_resource(&req.resource.unwrap_or_default())?;
        check_write(
            self.state(),
            roles.as_ref(),
            &r.metadata.namespace,
            &r.metadata.resource_type,
        )?;
        let owner = req.options.map(|o| o.owner).unwrap_or_default();
        let stored = self.state().create(r, &owner).map_err(state_status)?;
        Ok(Response::new(pb::CreateResponse {
            resource: Some(to_wire(&stored)?),
        }))
    }

    async fn update(
        &self,
        request: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        called(&request, "cosi.Update");
        let roles = caller_roles(&request);
        let req = request.into_inner();
        let r = wire_resource(&req.new_resource.unwrap_or_default())?;
        check_write(
            self.state(),
            roles.as_ref(),
            &r.metadata.namespace,
            &r.metadata.resource_type,
        )?;
        let options = req.options.unwrap_or_default();
        let expected_phase = match options.expected_phase.as_deref() {
            None => None,
            Some(p) => Some(talos::resources::Phase::parse(p).ok_or_else(|| {
                Status::invalid_argument(format!("invalid expected phase {p:?}"))
            })?),
        };
        let stored = self
            .state()
            .update(r, &options.owner, expected_phase)
            .map_err(state_status)?;
        Ok(Response::new(pb::UpdateResponse {
            resource: Some(to_wire(&stored)?),
        }))
    }

    async fn destroy(
        &self,
        request: Request<pb::DestroyRequest>,
    ) -> Result<Response<pb::DestroyResponse>, Status> {
        called(&request, "cosi.Destroy");
        let roles = caller_roles(&request);
        let req = request.into_inner();
        check_write(self.state(), roles.as_ref(), &req.namespace, &req.r#type)?;
        let owner = req.options.map(|o| o.owner).unwrap_or_default();
        self.state()
            .destroy(&req.namespace, &req.r#type, &req.id, &owner)
            .map_err(state_status)?;
        Ok(Response::new(pb::DestroyResponse {}))
    }

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<BoxStream<pb::WatchResponse>>, Status> {
        called(&request, "cosi.Watch");
        let roles = caller_roles(&request);
        let req = request.into_inner();
        check_read(self.state(), roles.as_ref(), &req.namespace, &req.r#type)?;
        let options = req.options.unwrap_or_default();
        let tail = usize::try_from(options.tail_events.max(0)).unwrap_or(0);
        let mut watch = match &req.id {
            Some(id) => {
                if options.bootstrap_contents {
                    return Err(Status::unimplemented(
                        "bootstrap contents is not implemented for resource watch",
                    ));
                }
                if !options.label_query.is_empty() {
                    return Err(Status::unimplemented(
                        "label query is not implemented for resource watch",
                    ));
                }
                self.state().watch(&req.namespace, &req.r#type, id)
            }
            None => self.state().watch_kind(
                &req.namespace,
                &req.r#type,
                options.bootstrap_contents,
                tail,
            ),
        };
        // Clients older than watch API version 1 do not know these event types.
        let legacy = req.api_version < 1;
        let (tx, stream) = stream_channel();
        let shutdown = self.machined.shutdown.clone();
        tokio::spawn(async move {
            // An empty response first tells the client the watch is established.
            if tx.send(Ok(pb::WatchResponse::default())).await.is_err() {
                return;
            }
            let down = shutting_down(shutdown);
            tokio::pin!(down);
            loop {
                let event = tokio::select! {
                    e = watch.next() => e,
                    _ = &mut down => None,
                    _ = tx.closed() => None,
                };
                let Some(event) = event else { break };
                if legacy && matches!(event.kind, EventKind::Bootstrapped | EventKind::Errored) {
                    continue;
                }
                let msg = match wire::event_to_proto(&event) {
                    Ok(e) => Ok(pb::WatchResponse { event: vec![e] }),
                    Err(e) => Err(Status::internal(format!("encoding a watch event: {e}"))),
                };
                let failed = msg.is_err();
                if tx.send(msg).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<T>(msg: T, roles: Option<&str>) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(roles) = roles {
            r.metadata_mut()
                .insert(METADATA_KEY, roles.parse().expect("metadata"));
        }
        r
    }

    #[test]
    fn access_policy() {
        let st = new_state();
        let reader = Some(RoleSet::parse(["os:reader"]));
        let admin = Some(RoleSet::parse(["os:admin"]));
        let mc = "MachineConfigs.config.talos.dev";
        let e = check_read(&st, reader.as_ref(), "config", mc).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().starts_with("not authorized"), "{}", e.message());
        check_read(&st, admin.as_ref(), "config", mc).unwrap();
        check_read(&st, None, "config", mc).unwrap();
        check_read(
            &st,
            reader.as_ref(),
            "runtime",
            "MachineStatuses.runtime.talos.dev",
        )
        .unwrap();
        let e = check_read(&st, admin.as_ref(), "runtime", "Nope.x.dev").unwrap_err();
        assert_eq!(e.message(), "resource type \"Nope.x.dev\" is not supported");
        let e = check_read(
            &st,
            admin.as_ref(),
            "nope",
            "MachineStatuses.runtime.talos.dev",
        )
        .unwrap_err();
        assert_eq!(e.message(), "namespace \"nope\" is not supported");
        let e =
            check_write(&st, admin.as_ref(), "network", "LinkStatuses.net.talos.dev").unwrap_err();
        assert_eq!(e.message(), "write access is not allowed");
        check_write(&st, None, "network", "LinkStatuses.net.talos.dev").unwrap();
    }

    #[test]
    fn roles_from_metadata() {
        assert_eq!(caller_roles(&req((), None)), None);
        let roles = caller_roles(&req((), Some("os:reader,os:admin"))).unwrap();
        assert!(roles.includes(&Role::Admin) && roles.includes(&Role::Reader));
    }
}
