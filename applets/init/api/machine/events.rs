//! `Events`: the runtime event stream, and the service state events machined publishes.

use prost::Message as _;
use talos::api::machine as pb;
use talos::events::{runtime_type_url, Tail, WatchOptions};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::init::api::{called, shutting_down, stream_channel, Machined};

/// `Events` options from the request, with Talos's rule that `tail_seconds` excludes the others.
pub fn watch_options(req: &pb::EventsRequest) -> Result<WatchOptions, Status> {
    if req.tail_seconds != 0 && (req.tail_events != 0 || !req.tail_id.is_empty()) {
        return Err(Status::invalid_argument(
            "tail_seconds can't be combined with tail_events or tail_id",
        ));
    }
    let tail = if req.tail_events != 0 {
        Tail::Count(req.tail_events)
    } else if !req.tail_id.is_empty() {
        let id = req
            .tail_id
            .parse()
            .map_err(|e| Status::invalid_argument(format!("error parsing tail_id: {e}")))?;
        Tail::Since(id)
    } else if req.tail_seconds > 0 {
        Tail::Duration(std::time::Duration::from_secs(req.tail_seconds as u64))
    } else {
        Tail::None
    };
    Ok(WatchOptions {
        tail,
        actor_id: Some(req.with_actor_id.clone()).filter(|a| !a.is_empty()),
    })
}

/// Publishes the ServiceStateEvent Talos emits when a service reaches a state.
pub fn publish_service_state(
    events: &talos::events::EventBus,
    service: &str,
    action: pb::service_state_event::Action,
    message: &str,
    healthy: bool,
) {
    let event = pb::ServiceStateEvent {
        service: service.into(),
        action: action as i32,
        message: message.into(),
        health: Some(pb::ServiceHealth {
            unknown: false,
            healthy,
            last_message: String::new(),
            last_change: Some(crate::init::services::timestamp(
                std::time::SystemTime::now(),
            )),
        }),
    };
    events.publish(
        &runtime_type_url("machine.ServiceStateEvent"),
        event.encode_to_vec(),
        "",
    );
}

/// `Events`.
pub async fn events(
    state: &Machined,
    request: Request<pb::EventsRequest>,
) -> Result<Response<BoxStream<pb::Event>>, Status> {
    called(&request, "Events");
    let req = request.into_inner();
    let options = watch_options(&req)?;
    let mut subscription = state.events.subscribe(options);
    let hello = pb::Event {
        metadata: None,
        data: Some(prost_types::Any {
            type_url: String::new(),
            value: Vec::new(),
        }),
        id: state.events.new_id().to_string(),
        actor_id: req.with_actor_id.clone(),
    };
    let (tx, stream) = stream_channel();
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        // Tells the client the stream is established before any event exists.
        if tx.send(Ok(hello)).await.is_err() {
            return;
        }
        loop {
            let event = tokio::select! {
                e = subscription.next() => e,
                () = tx.closed() => break,
                () = shutting_down(shutdown.clone()) => break,
            };
            let Some(event) = event else { break };
            let msg = pb::Event {
                metadata: None,
                data: Some(prost_types::Any {
                    type_url: event.type_url,
                    value: event.payload,
                }),
                id: event.id.to_string(),
                actor_id: event.actor_id,
            };
            if tx.send(Ok(msg)).await.is_err() {
                break;
            }
        }
    });
    Ok(Response::new(stream))
}
