//! Power: `Reboot`, `Shutdown` and `Reset`, handed to the sequencer.

use std::sync::Arc;

use talos::api::machine as pb;
use tonic::{Request, Response, Status};

use crate::init::api::{called, Machined};
use crate::init::runtime::{PowerControl, PowerRequest};

/// The sequencer's power control, or why there is none.
fn power(state: &Machined) -> Result<&Arc<dyn PowerControl>, Status> {
    state.power.as_ref().ok_or_else(|| {
        Status::unimplemented(
            "machine.MachineService/Reboot, Shutdown and Reset are not available: machined runs without a sequencer (--api-only)",
        )
    })
}

/// `Reboot`.
pub async fn reboot(
    state: &Machined,
    request: Request<pb::RebootRequest>,
) -> Result<Response<pb::RebootResponse>, Status> {
    called(&request, "Reboot");
    let powercycle = request.into_inner().mode() == pb::reboot_request::Mode::Powercycle;
    let actor_id = power(state)?.request(PowerRequest::Reboot { powercycle })?;
    Ok(Response::new(pb::RebootResponse {
        messages: vec![pb::Reboot {
            metadata: None,
            actor_id,
        }],
    }))
}

/// `Shutdown`.
pub async fn shutdown(
    state: &Machined,
    request: Request<pb::ShutdownRequest>,
) -> Result<Response<pb::ShutdownResponse>, Status> {
    called(&request, "Shutdown");
    let force = request.into_inner().force;
    let actor_id = power(state)?.request(PowerRequest::Shutdown { force })?;
    Ok(Response::new(pb::ShutdownResponse {
        messages: vec![pb::Shutdown {
            metadata: None,
            actor_id,
        }],
    }))
}

/// `Reset`.
pub async fn reset(
    state: &Machined,
    request: Request<pb::ResetRequest>,
) -> Result<Response<pb::ResetResponse>, Status> {
    called(&request, "Reset");
    let req = request.into_inner();
    let system_labels = req
        .system_partitions_to_wipe
        .iter()
        .map(|p| p.label.clone())
        .collect();
    let actor_id = power(state)?.request(PowerRequest::Reset {
        graceful: req.graceful,
        reboot: req.reboot,
        system_labels,
    })?;
    Ok(Response::new(pb::ResetResponse {
        messages: vec![pb::Reset {
            metadata: None,
            actor_id,
        }],
    }))
}
