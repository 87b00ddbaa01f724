//! The generated tonic client and server talk to each other over real HTTP/2 on loopback:
//! a unary call, a server stream, a client stream, and an RPC the server leaves unimplemented.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::net::SocketAddr;

use talos::api::{common, machine};
use tonic::codegen::tokio_stream::{self, StreamExt as _};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use machine::machine_service_client::MachineServiceClient;
use machine::machine_service_server::{MachineService, MachineServiceServer};

/// Answers Version, Logs and EtcdRecover; everything else keeps the UNIMPLEMENTED default.
struct FakeMachined;

fn meta() -> Option<common::Metadata> {
    Some(common::Metadata {
        hostname: "fake".into(),
        ..Default::default()
    })
}

#[tonic::async_trait]
impl MachineService for FakeMachined {
    async fn version(&self, _: Request<()>) -> Result<Response<machine::VersionResponse>, Status> {
        Ok(Response::new(machine::VersionResponse {
            messages: vec![machine::Version {
                metadata: meta(),
                version: Some(machine::VersionInfo {
                    tag: "v1.7.0".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
        }))
    }

    async fn logs(
        &self,
        request: Request<machine::LogsRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<common::Data>>, Status> {
        let id = request.into_inner().id;
        let lines = ["first\n", "second\n"].map(|l| {
            Ok(common::Data {
                metadata: meta(),
                bytes: format!("{id}: {l}").into_bytes(),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(lines))))
    }

    async fn etcd_recover(
        &self,
        request: Request<tonic::Streaming<common::Data>>,
    ) -> Result<Response<machine::EtcdRecoverResponse>, Status> {
        let mut stream = request.into_inner();
        let mut total = 0;
        while let Some(chunk) = stream.next().await {
            total += chunk?.bytes.len();
        }
        Ok(Response::new(machine::EtcdRecoverResponse {
            messages: vec![machine::EtcdRecover {
                metadata: Some(common::Metadata {
                    hostname: format!("{total} bytes"),
                    ..Default::default()
                }),
            }],
        }))
    }
}

async fn serve() -> SocketAddr {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let addr = incoming.local_addr().expect("local address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MachineServiceServer::new(FakeMachined))
            .serve_with_incoming(incoming),
    );
    addr
}

#[tokio::test]
async fn client_and_server_interoperate() {
    let addr = serve().await;
    let mut client = MachineServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");

    let version = client.version(()).await.expect("Version").into_inner();
    assert_eq!(version.messages.len(), 1);
    assert_eq!(
        version.messages[0].version.as_ref().expect("info").tag,
        "v1.7.0"
    );

    let request = machine::LogsRequest {
        id: "apid".into(),
        ..Default::default()
    };
    let mut logs = client.logs(request).await.expect("Logs").into_inner();
    let mut text = String::new();
    while let Some(chunk) = logs.message().await.expect("chunk") {
        text.push_str(&String::from_utf8_lossy(&chunk.bytes));
    }
    assert_eq!(text, "apid: first\napid: second\n");

    let chunks = (0..3).map(|_| common::Data {
        metadata: None,
        bytes: vec![0; 1000],
    });
    let recovered = client
        .etcd_recover(tokio_stream::iter(chunks))
        .await
        .expect("EtcdRecover")
        .into_inner();
    assert_eq!(
        recovered.messages[0]
            .metadata
            .as_ref()
            .expect("metadata")
            .hostname,
        "3000 bytes"
    );

    let status = client.hostname(()).await.expect_err("not implemented");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}
