//! The standard gRPC health check (`grpc.health.v1.Health/Check`) over a unix socket: how the
//! supervisor asks containerd whether it is serving, as Talos does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Endpoint, Uri};

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    /// The service asked about; empty for the server as a whole.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// `ServingStatus`: 0 unknown, 1 serving, 2 not serving, 3 service unknown.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `ServingStatus::SERVING`.
pub const SERVING: i32 = 1;

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// Why a health check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The socket did not accept a gRPC connection.
    #[error("connecting to {socket:?}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The call failed.
    #[error("health check")]
    Call(#[from] tonic::Status),
    /// The server answered, but not SERVING.
    #[error("unexpected serving status: {0}")]
    NotServing(i32),
}

/// Asks the gRPC server on `socket` whether it is serving (whole server).
pub async fn check_unix(socket: &Path, timeout: Duration) -> Result<(), HealthError> {
    let path = socket.to_path_buf();
    let channel = Endpoint::from_static("http://health.invalid")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .map_err(|source| HealthError::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("service not ready: {e}")))?;
    let codec: tonic_prost::ProstCodec<HealthCheckRequest, HealthCheckResponse> =
        tonic_prost::ProstCodec::default();
    let response = grpc
        .unary(
            tonic::Request::new(HealthCheckRequest::default()),
            tonic::codegen::http::uri::PathAndQuery::from_static(CHECK_PATH),
            codec,
        )
        .await?
        .into_inner();
    if response.status == SERVING {
        Ok(())
    } else {
        Err(HealthError::NotServing(response.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server speaking just `Health/Check` on a unix socket, answering `status`.
    async fn serve(socket: PathBuf, status: i32) {
        use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
        #[derive(Clone)]
        struct Health(i32);
        impl<B> Service<http::Request<B>> for Health
        where
            B: Body + Send + 'static,
            B::Error: Into<StdError> + Send + 'static,
        {
            type Response = http::Response<tonic::body::Body>;
            type Error = std::convert::Infallible;
            type Future = BoxFuture<Self::Response, Self::Error>;
            fn poll_ready(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn call(&mut self, req: http::Request<B>) -> Self::Future {
                let status = self.0;
                Box::pin(async move {
                    struct Check(i32);
                    impl tonic::server::UnaryService<HealthCheckRequest> for Check {
                        type Response = HealthCheckResponse;
                        type Future =
                            BoxFuture<tonic::Response<HealthCheckResponse>, tonic::Status>;
                        fn call(&mut self, _: tonic::Request<HealthCheckRequest>) -> Self::Future {
                            let status = self.0;
                            Box::pin(async move {
                                Ok(tonic::Response::new(HealthCheckResponse { status }))
                            })
                        }
                    }
                    let codec: tonic_prost::ProstCodec<HealthCheckResponse, HealthCheckRequest> =
                        tonic_prost::ProstCodec::default();
                    let mut grpc = tonic::server::Grpc::new(codec);
                    Ok(grpc.unary(Check(status), req).await)
                })
            }
        }
        impl tonic::server::NamedService for Health {
            const NAME: &'static str = "grpc.health.v1.Health";
        }
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(Health(status))
            .serve_with_incoming(incoming)
            .await;
    }

    #[tokio::test]
    async fn serving_not_serving_and_nobody_home() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = dir.path().join("ok.sock");
        let bad = dir.path().join("bad.sock");
        tokio::spawn(serve(ok.clone(), SERVING));
        tokio::spawn(serve(bad.clone(), 2));
        let timeout = Duration::from_secs(5);
        let mut result = Err(HealthError::NotServing(-1));
        for _ in 0..100 {
            result = check_unix(&ok, timeout).await;
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        result.expect("serving");
        let mut not_serving = None;
        for _ in 0..100 {
            match check_unix(&bad, timeout).await {
                Err(HealthError::NotServing(s)) => {
                    not_serving = Some(s);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        assert_eq!(not_serving, Some(2));
        let missing = check_unix(&dir.path().join("none.sock"), timeout).await;
        assert!(
            matches!(missing, Err(HealthError::Connect { .. })),
            "{missing:?}"
        );
    }
}
