//! The service table: `ServiceList`, `ServiceStart`, `ServiceStop`, `ServiceRestart`.

use std::sync::Arc;

use talos::api::machine as pb;
use tonic::{Request, Response, Status};

use crate::init::api::{called, Machined};
use crate::init::runtime::ServiceControl;

/// The service control, or why there is none.
fn service_control(state: &Machined) -> Result<&Arc<dyn ServiceControl>, Status> {
    state.service_control.as_ref().ok_or_else(|| {
        Status::unimplemented(
            "services cannot be started or stopped: machined runs without a supervisor (--api-only)",
        )
    })
}

/// `ServiceList`.
pub async fn service_list(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::ServiceListResponse>, Status> {
    called(&request, "ServiceList");
    Ok(Response::new(pb::ServiceListResponse {
        messages: vec![pb::ServiceList {
            metadata: None,
            services: state.services.list(),
        }],
    }))
}

/// `ServiceStart`.
pub async fn service_start(
    state: &Machined,
    request: Request<pb::ServiceStartRequest>,
) -> Result<Response<pb::ServiceStartResponse>, Status> {
    called(&request, "ServiceStart");
    let id = request.into_inner().id;
    let resp = service_control(state)?.start(&id).await?;
    Ok(Response::new(pb::ServiceStartResponse {
        messages: vec![pb::ServiceStart {
            metadata: None,
            resp,
        }],
    }))
}

/// `ServiceStop`.
pub async fn service_stop(
    state: &Machined,
    request: Request<pb::ServiceStopRequest>,
) -> Result<Response<pb::ServiceStopResponse>, Status> {
    called(&request, "ServiceStop");
    let id = request.into_inner().id;
    let resp = service_control(state)?.stop(&id).await?;
    Ok(Response::new(pb::ServiceStopResponse {
        messages: vec![pb::ServiceStop {
            metadata: None,
            resp,
        }],
    }))
}

/// `ServiceRestart`.
pub async fn service_restart(
    state: &Machined,
    request: Request<pb::ServiceRestartRequest>,
) -> Result<Response<pb::ServiceRestartResponse>, Status> {
    called(&request, "ServiceRestart");
    let id = request.into_inner().id;
    let resp = service_control(state)?.restart(&id).await?;
    Ok(Response::new(pb::ServiceRestartResponse {
        messages: vec![pb::ServiceRestart {
            metadata: None,
            resp,
        }],
    }))
}
