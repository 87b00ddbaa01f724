//! Logs: `Dmesg` (the kernel log), `Logs` (a service's log buffer) and `LogsContainers`.

use talos::api::common;
use talos::api::machine as pb;
use talos::errors::chain;
use talos::sys::kmsg;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::SERVICE;
use crate::init::api::{
    called, shutting_down, stream_channel, sys_status, unimplemented, Machined,
};

/// Largest chunk of log text sent in one message.
const LOG_CHUNK: usize = 64 * 1024;

/// `Dmesg`.
pub async fn dmesg(
    state: &Machined,
    request: Request<pb::DmesgRequest>,
) -> Result<Response<BoxStream<common::Data>>, Status> {
    called(&request, "Dmesg");
    let req = request.into_inner();
    let boot = kmsg::boot_time(&state.proc_root).map_err(sys_status)?;
    let mut reader =
        kmsg::KmsgReader::open(&state.kmsg_path, req.follow, req.tail).map_err(|e| {
            let hint = " (reading the kernel log needs root or CAP_SYSLOG)";
            let status = sys_status(e);
            Status::new(status.code(), format!("{}{hint}", status.message()))
        })?;
    let (tx, stream) = stream_channel();
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let record = tokio::select! {
                r = reader.next() => r,
                () = tx.closed() => break,
                () = shutting_down(shutdown.clone()) => break,
            };
            let data = match record {
                None => break,
                Some(Ok(r)) => common::Data {
                    metadata: None,
                    bytes: r.format(boot).into_bytes(),
                },
                Some(Err(e)) => common::Data {
                    metadata: Some(common::Metadata {
                        error: chain(&e).to_string(),
                        ..Default::default()
                    }),
                    bytes: Vec::new(),
                },
            };
            if tx.send(Ok(data)).await.is_err() {
                break;
            }
        }
    });
    Ok(Response::new(stream))
}

/// `Logs`.
pub async fn logs(
    state: &Machined,
    request: Request<pb::LogsRequest>,
) -> Result<Response<BoxStream<common::Data>>, Status> {
    called(&request, "Logs");
    let req = request.into_inner();
    if req.namespace == "k8s.io" || req.driver == common::ContainerDriver::Cri as i32 {
        return Err(unimplemented(SERVICE, "Logs (Kubernetes containers)"));
    }
    let buffer = state
        .logs
        .get(&req.id)
        .ok_or_else(|| Status::not_found(format!("log {:?} was not registered", req.id)))?;
    let tail = usize::try_from(req.tail_lines).ok();
    let (tx, stream) = stream_channel();
    if !req.follow {
        let lines = buffer.tail(tail);
        tokio::spawn(async move {
            let mut chunk = Vec::new();
            for line in lines {
                if chunk.len() + line.len() > LOG_CHUNK && !chunk.is_empty() {
                    let data = common::Data {
                        metadata: None,
                        bytes: std::mem::take(&mut chunk),
                    };
                    if tx.send(Ok(data)).await.is_err() {
                        return;
                    }
                }
                chunk.extend_from_slice(&line);
            }
            if !chunk.is_empty() {
                let _ = tx
                    .send(Ok(common::Data {
                        metadata: None,
                        bytes: chunk,
                    }))
                    .await;
            }
        });
        return Ok(Response::new(stream));
    }
    let mut follower = buffer.follow(tail);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let mut bytes = tokio::select! {
                line = follower.next() => line,
                () = tx.closed() => break,
                () = shutting_down(shutdown.clone()) => break,
            };
            // Batch whatever else is already there.
            while bytes.len() < LOG_CHUNK {
                match follower.try_next() {
                    Some(line) => bytes.extend_from_slice(&line),
                    None => break,
                }
            }
            if tx
                .send(Ok(common::Data {
                    metadata: None,
                    bytes,
                }))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Ok(Response::new(stream))
}

/// `LogsContainers`.
pub async fn logs_containers(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::LogsContainersResponse>, Status> {
    called(&request, "LogsContainers");
    Ok(Response::new(pb::LogsContainersResponse {
        messages: vec![pb::LogsContainer {
            metadata: None,
            ids: state.logs.ids(),
        }],
    }))
}
