//! `ApplyConfiguration`: a new machine config, validated and applied by the sequencer.

use talos::api::machine as pb;
use tonic::{Request, Response, Status};

use crate::init::api::{called, Machined};
use crate::init::runtime::ApplyRequest;

/// `ApplyConfiguration`.
pub async fn apply_configuration(
    state: &Machined,
    request: Request<pb::ApplyConfigurationRequest>,
) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
    called(&request, "ApplyConfiguration");
    let req = request.into_inner();
    let mode = req.mode();
    let control = state.config_control.as_ref().ok_or_else(|| {
        Status::unimplemented(
            "ApplyConfiguration is not available: machined runs without a sequencer (--api-only)",
        )
    })?;
    let outcome = control
        .apply(ApplyRequest {
            data: req.data,
            mode,
            dry_run: req.dry_run,
        })
        .await?;
    Ok(Response::new(pb::ApplyConfigurationResponse {
        messages: vec![pb::ApplyConfiguration {
            metadata: None,
            warnings: outcome.warnings,
            mode: outcome.mode as i32,
            mode_details: outcome.mode_details,
        }],
    }))
}
