//! The service table machined reports (`talosctl services`).
//!
//! The API reads services through [`ServiceSource`], so the real supervisor (a later issue)
//! plugs in without touching the API code. In `--api-only` mode the only service is machined
//! itself, running and healthy.

use std::time::SystemTime;

use talos::api::machine;

/// Where the API gets the service table from.
pub trait ServiceSource: Send + Sync + 'static {
    /// Every service with its state, recent events and health, in display order.
    fn list(&self) -> Vec<machine::ServiceInfo>;
}

/// The service table of `--api-only` mode: machined alone.
#[derive(Debug, Clone)]
pub struct ApiOnlyServices {
    started: SystemTime,
}

impl ApiOnlyServices {
    /// Machined, started now.
    pub fn new() -> Self {
        ApiOnlyServices {
            started: SystemTime::now(),
        }
    }
}

impl Default for ApiOnlyServices {
    fn default() -> Self {
        Self::new()
    }
}

/// A protobuf timestamp for `t`.
pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

impl ServiceSource for ApiOnlyServices {
    fn list(&self) -> Vec<machine::ServiceInfo> {
        let ts = Some(timestamp(self.started));
        vec![machine::ServiceInfo {
            id: "machined".into(),
            state: "Running".into(),
            events: Some(machine::ServiceEvents {
                events: vec![machine::ServiceEvent {
                    msg: "API server started".into(),
                    state: "Running".into(),
                    ts,
                }],
            }),
            health: Some(machine::ServiceHealth {
                unknown: false,
                healthy: true,
                last_message: String::new(),
                last_change: ts,
            }),
        }]
    }
}
