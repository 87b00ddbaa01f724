//! `Kubeconfig`: a fresh admin kubeconfig (client certificate `admin`/`system:masters` from the
//! Kubernetes CA, valid for `cluster.adminKubeconfig.certLifetime`), wrapped in a `.tar.gz`
//! holding one file `kubeconfig` (0600), as Talos streams it. Control planes only.

use std::sync::Arc;

use talos::api::common;
use talos::config::kubernetes::KubernetesView;
use talos::k8s::kubeconfig::{generate, KubeconfigInput};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::init::api::{called, Machined};
use crate::init::controllers::current_config;

fn pem(b64: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap_or_default()
}

/// The admin kubeconfig of `view` (Talos's `GenerateAdmin`).
pub fn admin_kubeconfig(view: &KubernetesView<'_>) -> Result<String, Status> {
    let ca = view
        .cluster
        .ca
        .as_ref()
        .filter(|ca| !ca.key.trim().is_empty())
        .ok_or_else(|| {
            Status::failed_precondition("cluster.ca has no key: cannot issue the admin certificate")
        })?;
    let (crt, key) = (pem(&ca.crt), pem(&ca.key));
    let mut server_cas: Vec<u8> = view
        .cluster
        .accepted_cas
        .iter()
        .flat_map(|c| pem(&c.crt))
        .collect();
    server_cas.extend_from_slice(&crt);
    generate(
        &KubeconfigInput {
            cluster_name: view.cluster_name(),
            ca_crt: &crt,
            ca_key: &key,
            server_cas: &server_cas,
            lifetime: view.admin_cert_lifetime(),
            common_name: "admin",
            organization: "system:masters",
            endpoint: view.endpoint(),
            username: "admin",
            context_name: "admin",
        },
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| {
        Status::internal(format!(
            "error generating Kubernetes client certificate: {e}"
        ))
    })
}

/// `kubeconfig` alone in a tar.gz.
pub fn tar_gz(kubeconfig: &[u8]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(kubeconfig.len() as u64);
    header.set_mode(0o600);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    header.set_mtime(now);
    builder.append_data(&mut header, "kubeconfig", kubeconfig)?;
    builder.into_inner()?.finish()
}

pub async fn kubeconfig(
    state: &Arc<Machined>,
    request: Request<()>,
) -> Result<Response<BoxStream<common::Data>>, Status> {
    called(&request, "Kubeconfig");
    let config = current_config(&state.resources)
        .ok_or_else(|| Status::failed_precondition("the node has no machine config"))?;
    let view = config
        .v1alpha1()
        .and_then(KubernetesView::of)
        .filter(KubernetesView::is_control_plane)
        .ok_or_else(|| {
            Status::unimplemented("kubeconfig is only available on control plane nodes")
        })?;
    let text = admin_kubeconfig(&view)?;
    let bytes = tar_gz(text.as_bytes()).map_err(|e| Status::internal(e.to_string()))?;
    let message = common::Data {
        metadata: None,
        bytes,
    };
    let stream = tokio_stream::once(Ok(message));
    Ok(Response::new(Box::pin(stream)))
}
