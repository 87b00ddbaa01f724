//! Publishing network status resources to machined.
//!
//! A [`Publisher`] is handed the complete set of resources networkd currently reports; it makes
//! the remote side match (create new ones, update changed ones, destroy vanished ones).
//! [`CosiPublisher`] does this over machined's unix socket with the COSI State API
//! (`cosi.resource.State`); [`MemoryPublisher`] keeps them in memory for tests and
//! `--no-publish`. Failures are returned to the caller, which logs them and tries again on the
//! next round: nothing is lost, since each round sends the whole desired state.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::resources::{NetResource, NAMESPACE};
use crate::api::cosi::resource::state_client::StateClient;
use crate::api::cosi::resource::{
    CreateOptions, CreateRequest, DestroyOptions, DestroyRequest, GetRequest, Metadata, Resource,
    Spec, UpdateOptions, UpdateRequest,
};

/// Key of a published resource: (type, id).
pub type ResourceKey = (&'static str, String);

/// Errors while publishing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// machined's socket could not be reached.
    #[error("cannot connect to machined at {socket:?}")]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// What went wrong.
        #[source]
        source: tonic::transport::Error,
    },
    /// machined refused a call.
    #[error("{call} {kind} {id:?} failed: {status}")]
    Call {
        /// `create`, `update`, `destroy`, `get`.
        call: &'static str,
        /// Resource type.
        kind: &'static str,
        /// Resource id.
        id: String,
        /// The gRPC status.
        status: tonic::Status,
    },
}

/// Something that can hold networkd's published resources.
pub trait Publisher: Send {
    /// Makes the published set equal to `resources`.
    fn sync(
        &mut self,
        resources: &[NetResource],
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Keeps the resources in memory (tests, `--no-publish`).
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    /// What is currently published.
    pub published: BTreeMap<ResourceKey, String>,
    /// How many rounds ran.
    pub rounds: usize,
}

impl Publisher for MemoryPublisher {
    async fn sync(&mut self, resources: &[NetResource]) -> Result<(), PublishError> {
        self.published = resources
            .iter()
            .map(|r| ((r.kind, r.id.clone()), r.yaml.clone()))
            .collect();
        self.rounds += 1;
        Ok(())
    }
}

/// What to do to one resource to reach the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// New or changed: create it, or update it if it exists.
    Put(NetResource),
    /// Gone: destroy it.
    Destroy(ResourceKey),
}

/// The changes that turn `published` into `desired`.
pub fn diff(published: &BTreeMap<ResourceKey, String>, desired: &[NetResource]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut wanted = BTreeMap::new();
    for r in desired {
        wanted.insert((r.kind, r.id.clone()), ());
        if published.get(&(r.kind, r.id.clone())) != Some(&r.yaml) {
            out.push(Change::Put(r.clone()));
        }
    }
    for key in published.keys() {
        if !wanted.contains_key(key) {
            out.push(Change::Destroy(key.clone()));
        }
    }
    out
}

/// Publishes to machined over its unix socket with `cosi.resource.State`.
#[derive(Debug)]
pub struct CosiPublisher {
    socket: PathBuf,
    owner: String,
    client: Option<StateClient<Channel>>,
    published: BTreeMap<ResourceKey, String>,
}

/// How long connecting to machined may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl CosiPublisher {
    /// A publisher to machined's socket at `socket`, owning its resources as `owner`.
    pub fn new(socket: impl Into<PathBuf>, owner: impl Into<String>) -> Self {
        Self {
            socket: socket.into(),
            owner: owner.into(),
            client: None,
            published: BTreeMap::new(),
        }
    }

    async fn client(&mut self) -> Result<StateClient<Channel>, PublishError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let socket = self.socket.clone();
        let endpoint = Endpoint::from_static("http://machined.invalid")
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CONNECT_TIMEOUT);
        let channel = endpoint
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(socket).await?,
                    ))
                }
            }))
            .await
            .map_err(|source| PublishError::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        let client = StateClient::new(channel);
        self.client = Some(client.clone());
        Ok(client)
    }

    fn resource(&self, r: &NetResource, version: &str) -> Resource {
        Resource {
            metadata: Some(Metadata {
                namespace: NAMESPACE.into(),
                r#type: r.kind.into(),
                id: r.id.clone(),
                version: version.into(),
                owner: self.owner.clone(),
                phase: "running".into(),
                ..Default::default()
            }),
            spec: Some(Spec {
                proto_spec: Vec::new(),
                yaml_spec: r.yaml.clone(),
            }),
        }
    }

    async fn put(
        &self,
        client: &mut StateClient<Channel>,
        r: &NetResource,
    ) -> Result<(), PublishError> {
        let call_err = |call, status| PublishError::Call {
            call,
            kind: r.kind,
            id: r.id.clone(),
            status,
        };
        let current = client
            .get(GetRequest {
                namespace: NAMESPACE.into(),
                r#type: r.kind.into(),
                id: r.id.clone(),
                options: None,
            })
            .await;
        match current {
            Err(status) if status.code() == tonic::Code::NotFound => {
                client
                    .create(CreateRequest {
                        resource: Some(self.resource(r, "1")),
                        options: Some(CreateOptions {
                            owner: self.owner.clone(),
                        }),
                    })
                    .await
                    .map_err(|s| call_err("create", s))?;
            }
            Err(status) => return Err(call_err("get", status)),
            Ok(resp) => {
                let version = resp
                    .into_inner()
                    .resource
                    .and_then(|r| r.metadata)
                    .map(|m| m.version)
                    .unwrap_or_else(|| "1".into());
                client
                    .update(UpdateRequest {
                        new_resource: Some(self.resource(r, &version)),
                        options: Some(UpdateOptions {
                            owner: self.owner.clone(),
                            expected_phase: None,
                        }),
                    })
                    .await
                    .map_err(|s| call_err("update", s))?;
            }
        }
        Ok(())
    }
}

impl Publisher for CosiPublisher {
    async fn sync(&mut self, resources: &[NetResource]) -> Result<(), PublishError> {
        let changes = diff(&self.published, resources);
        if changes.is_empty() {
            return Ok(());
        }
        let mut client = match self.client().await {
            Ok(c) => c,
            Err(e) => return Err(e),
        };
        let mut first_err = None;
        for change in changes {
            let res = match &change {
                Change::Put(r) => self.put(&mut client, r).await.map(|()| {
                    self.published
                        .insert((r.kind, r.id.clone()), r.yaml.clone());
                }),
                Change::Destroy((kind, id)) => {
                    let res = client
                        .destroy(DestroyRequest {
                            namespace: NAMESPACE.into(),
                            r#type: (*kind).into(),
                            id: id.clone(),
                            options: Some(DestroyOptions {
                                owner: self.owner.clone(),
                            }),
                        })
                        .await;
                    match res {
                        Ok(_) => Ok(()),
                        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
                        Err(status) => Err(PublishError::Call {
                            call: "destroy",
                            kind,
                            id: id.clone(),
                            status,
                        }),
                    }
                    .map(|()| {
                        self.published.remove(&(*kind, id.clone()));
                    })
                }
            };
            if let Err(e) = res {
                if matches!(&e, PublishError::Call { status, .. } if status.code() == tonic::Code::Unavailable)
                {
                    // The connection is gone: reconnect next round.
                    self.client = None;
                }
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: &'static str, id: &str, yaml: &str) -> NetResource {
        NetResource {
            kind,
            id: id.into(),
            yaml: yaml.into(),
        }
    }

    #[test]
    fn diff_puts_changed_and_destroys_vanished() {
        let mut published = BTreeMap::new();
        published.insert(("A", "same".to_string()), "x: 1\n".to_string());
        published.insert(("A", "changed".to_string()), "x: 1\n".to_string());
        published.insert(("A", "gone".to_string()), "x: 1\n".to_string());
        let desired = vec![
            r("A", "same", "x: 1\n"),
            r("A", "changed", "x: 2\n"),
            r("B", "new", "y: 1\n"),
        ];
        let changes = diff(&published, &desired);
        assert_eq!(
            changes,
            vec![
                Change::Put(r("A", "changed", "x: 2\n")),
                Change::Put(r("B", "new", "y: 1\n")),
                Change::Destroy(("A", "gone".into())),
            ]
        );
        assert!(diff(&BTreeMap::new(), &[]).is_empty());
    }

    #[tokio::test]
    async fn memory_publisher_holds_the_last_set() {
        let mut p = MemoryPublisher::default();
        p.sync(&[r("A", "1", "a\n")]).await.expect("sync");
        p.sync(&[r("B", "2", "b\n")]).await.expect("sync");
        assert_eq!(p.rounds, 2);
        assert_eq!(p.published.len(), 1);
        assert_eq!(
            p.published.get(&("B", "2".into())).map(String::as_str),
            Some("b\n")
        );
    }

    #[tokio::test]
    async fn cosi_publisher_reports_a_missing_machined() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = CosiPublisher::new(dir.path().join("machine.sock"), "network.DHCPController");
        let err = p
            .sync(&[r("A", "1", "a\n")])
            .await
            .expect_err("no machined");
        assert!(err.to_string().contains("machine.sock"), "{err}");
        // Nothing to do is not an error, even without machined.
        let mut empty = CosiPublisher::new(dir.path().join("machine.sock"), "x");
        empty.sync(&[]).await.expect("nothing to publish");
    }
}
