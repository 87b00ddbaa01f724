//! A minimal Kubernetes API client for the manifest applier: it maps each object's
//! `apiVersion`/`kind` to its REST resource through API discovery, and creates the objects
//! that do not exist yet (Talos's `ManifestApplyController` semantics: never updates, field
//! manager `talos`). It speaks HTTP/1.1 over rustls with the admin kubeconfig's client
//! certificate; no API server is faked anywhere: when none answers, the caller is told so.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Why objects could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The kubeconfig lacks a server, CA or client credentials.
    #[error("invalid kubeconfig: {0}")]
    Kubeconfig(String),
    /// The API server cannot be reached (the caller retries).
    #[error("kubernetes API server {server} is not reachable: {reason}")]
    Unreachable {
        /// Server URL.
        server: String,
        /// Why.
        reason: String,
    },
    /// The API server answered with an unexpected status.
    #[error("{what}: unexpected status {status}: {body}")]
    Status {
        /// The request.
        what: String,
        /// HTTP status.
        status: u16,
        /// Response body (trimmed).
        body: String,
    },
    /// Some objects are malformed (the others were created).
    #[error("{}", .0.join("; "))]
    Objects(Vec<String>),
}

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one API server.
pub struct Client {
    server: String,
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    /// `apiVersion` → (kind → (resource, namespaced)).
    discovery: HashMap<String, HashMap<String, (String, bool)>>,
}

fn decode_field(value: &serde_yaml::Value, key: &str) -> Result<Vec<u8>, ApplyError> {
    let text = value
        .get(key)
        .and_then(serde_yaml::Value::as_str)
        .ok_or_else(|| ApplyError::Kubeconfig(format!("{key} missing")))?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| ApplyError::Kubeconfig(format!("{key}: {e}")))
}

impl Client {
    /// A client from a kubeconfig's first cluster and user (certificate data inline).
    pub fn from_kubeconfig(text: &str) -> Result<Client, ApplyError> {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| ApplyError::Kubeconfig(e.to_string()))?;
        let cluster = &doc["clusters"][0]["cluster"];
        let user = &doc["users"][0]["user"];
        let server = cluster["server"]
            .as_str()
            .ok_or_else(|| ApplyError::Kubeconfig("server missing".into()))?
            .to_string();
        let ca = decode_field(cluster, "certificate-authority-data")?;
        let crt = decode_field(user, "client-certificate-data")?;
        let key = decode_field(user, "client-key-data")?;
        let mut tls = crate::auth::tls::client_mtls(&ca, &crt, &key)
            .map_err(|e| ApplyError::Kubeconfig(e.to_string()))?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let host = crate::config::kubernetes::url_host(&server);
        let port = server
            .rsplit_once(':')
            .and_then(|(_, p)| p.trim_end_matches('/').parse().ok())
            .unwrap_or(443);
        Ok(Client {
            server,
            host,
            port,
            tls: Arc::new(tls),
            discovery: HashMap::new(),
        })
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> ApplyError {
        ApplyError::Unreachable {
            server: self.server.clone(),
            reason: reason.to_string(),
        }
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ApplyError> {
        let fut = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| self.unreachable(e))?;
            let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| self.unreachable(e))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(|e| self.unreachable(e))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| self.unreachable(e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("host", &self.host)
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .header("user-agent", "talos")
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| self.unreachable(e))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| self.unreachable(e))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| self.unreachable(e))?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| self.unreachable("timed out"))?
    }

    async fn discover(&mut self, api_version: &str) -> Result<(), ApplyError> {
        if self.discovery.contains_key(api_version) {
            return Ok(());
        }
        let path = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let (status, body) = self.request(Method::GET, &path, None).await?;
        let mut kinds = HashMap::new();
        if status == StatusCode::OK {
            let list: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            for r in list["resources"].as_array().into_iter().flatten() {
                let name = r["name"].as_str().unwrap_or_default();
                if name.contains('/') {
                    continue;
                }
                if let Some(kind) = r["kind"].as_str() {
                    kinds.insert(
                        kind.to_string(),
                        (name.to_string(), r["namespaced"].as_bool().unwrap_or(false)),
                    );
                }
            }
        } else if status != StatusCode::NOT_FOUND {
            return Err(status_error(&path, status, &body));
        }
        self.discovery.insert(api_version.to_string(), kinds);
        Ok(())
    }

    /// Creates every object that does not exist yet, namespaces first, then CRDs. Returns the
    /// names of the objects created (`group/version/Kind/name`); malformed objects are
    /// reported together at the end, after the others were applied.
    pub async fn apply(&mut self, objects: &[Value]) -> Result<Vec<String>, ApplyError> {
        let mut sorted: Vec<&Value> = objects.iter().collect();
        sorted.sort_by_key(|o| order(o));
        let mut created = Vec::new();
        let mut errors = Vec::new();
        for obj in sorted {
            match self.apply_one(obj).await {
                Ok(Some(name)) => created.push(name),
                Ok(None) => {}
                Err(ApplyError::Objects(mut e)) => errors.append(&mut e),
                Err(e) => return Err(e),
            }
        }
        if errors.is_empty() {
            Ok(created)
        } else {
            Err(ApplyError::Objects(errors))
        }
    }

    async fn apply_one(&mut self, obj: &Value) -> Result<Option<String>, ApplyError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
        let obj_name = format!("{group}/{version}/{kind}/{name}");
        self.discover(&api_version).await?;
        let Some((resource, namespaced)) = self
            .discovery
            .get(&api_version)
            .and_then(|k| k.get(&kind))
            .cloned()
        else {
            return Err(ApplyError::Objects(vec![format!(
                "error creating mapping for object {obj_name}: no matches for kind {kind:?} in version {api_version:?}"
            )]));
        };
        let prefix = if group.is_empty() {
            format!("/api/{api_version}")
        } else {
            format!("/apis/{api_version}")
        };
        let collection = if namespaced {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
            format!("{prefix}/namespaces/{ns}/{resource}")
        } else {
            format!("{prefix}/{resource}")
        };
        let (status, body) = self
            .request(Method::GET, &format!("{collection}/{name}"), None)
            .await?;
        if status == StatusCode::OK {
            return Ok(None);
        }
        if status != StatusCode::NOT_FOUND {
            return Err(status_error(
                "error checking resource existence",
                status,
                &body,
            ));
        }
        let mut object = obj.clone();
        if namespaced && object["metadata"]["namespace"].is_null() {
            object["metadata"]["namespace"] = Value::String("default".into());
        }
        let payload = serde_json::to_vec(&object).unwrap_or_default();
        let (status, body) = self
            .request(
                Method::POST,
                &format!("{collection}?fieldManager=talos"),
                Some(payload),
            )
            .await?;
        match status.as_u16() {
            200..=299 => Ok(Some(obj_name)),
            409 => Ok(None),
            400 | 405 | 422 => Err(ApplyError::Objects(vec![format!(
                "error creating {obj_name}: {}",
                trimmed(&body)
            )])),
            _ => Err(status_error(
                &format!("error creating {obj_name}"),
                status,
                &body,
            )),
        }
    }
}

/// Namespaces first, then CRDs, then everything else (stable).
fn order(obj: &Value) -> u8 {
    match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
        (Some("v1"), Some("Namespace")) => 0,
        (Some(v), Some("CustomResourceDefinition")) if v.starts_with("apiextensions.k8s.io/") => 1,
        _ => 2,
    }
}

fn trimmed(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(300).collect()
}

fn status_error(what: &str, status: StatusCode, body: &[u8]) -> ApplyError {
    ApplyError::Status {
        what: what.to_string(),
        status: status.as_u16(),
        body: trimmed(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_then_crds_then_the_rest() {
        let objs = [
            serde_json::json!({"apiVersion": "v1", "kind": "Service"}),
            serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}),
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace"}),
        ];
        let mut sorted: Vec<&Value> = objs.iter().collect();
        sorted.sort_by_key(|o| order(o));
        let kinds: Vec<&str> = sorted.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Namespace", "CustomResourceDefinition", "Service"]);
    }

    #[tokio::test]
    async fn an_absent_api_server_is_reported_unreachable() {
        let ca = crate::secrets::CertificateAuthority::generate(
            crate::secrets::KeyAlgorithm::EcdsaP256,
            &crate::secrets::CertParams::new(
                time::OffsetDateTime::now_utc(),
                time::Duration::days(1),
            ),
        )
        .unwrap();
        let (ca_crt, ca_key) = (ca.cert.to_pem(), ca.key.to_pem().unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let kubeconfig = super::super::kubeconfig::generate(
            &super::super::kubeconfig::KubeconfigInput {
                cluster_name: "c",
                ca_crt: &ca_crt,
                ca_key: &ca_key,
                server_cas: &ca_crt,
                lifetime: Duration::from_secs(3600),
                common_name: "talos:admin",
                organization: "system:masters",
                endpoint: &format!("https://127.0.0.1:{port}"),
                username: "admin",
                context_name: "admin",
            },
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let mut client = Client::from_kubeconfig(&kubeconfig).unwrap();
        let err = client
            .apply(&[serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})])
            .await
            .unwrap_err();
        assert!(matches!(err, ApplyError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("is not reachable"), "{err}");
    }
}
