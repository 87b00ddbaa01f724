//! `time.TimeService`: the node clock. machined has no NTP client yet, so `Time` reports the
//! node's own time only (no server, no remote time) and `TimeCheck` is not implemented.

use std::sync::Arc;
use std::time::SystemTime;

use talos::api::time::{self as pb, time_service_server::TimeService};
use tonic::{Request, Response, Status};

use super::{called, Machined};
use crate::init::services::timestamp;

/// The TimeService implementation.
pub struct TimeApi {
    _state: Arc<Machined>,
}

impl TimeApi {
    /// Handlers over `state`.
    pub fn new(state: Arc<Machined>) -> Self {
        TimeApi { _state: state }
    }
}

#[tonic::async_trait]
impl TimeService for TimeApi {
    async fn time(&self, request: Request<()>) -> Result<Response<pb::TimeResponse>, Status> {
        called(&request, "Time");
        Ok(Response::new(pb::TimeResponse {
            messages: vec![pb::Time {
                metadata: None,
                server: String::new(),
                localtime: Some(timestamp(SystemTime::now())),
                remotetime: None,
            }],
        }))
    }

    async fn time_check(
        &self,
        request: Request<pb::TimeRequest>,
    ) -> Result<Response<pb::TimeResponse>, Status> {
        called(&request, "TimeCheck");
        Err(Status::unimplemented(
            "time.TimeService/TimeCheck is not implemented by machined: it has no NTP client yet",
        ))
    }
}
