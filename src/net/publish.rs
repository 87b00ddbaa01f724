//! Publishing network status resources to machined.
//!
//! A [`Publisher`] is handed the complete set of resources networkd currently reports (typed
//! [`Resource`]s of the one resource model, [`crate::resources`]); it makes the remote side
//! match (create new ones, update changed ones, destroy vanished ones).
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

use crate::api::cosi::resource::state_client::StateClient;
use crate::api::cosi::resource::{
    self as pb, CreateOptions, CreateRequest, DestroyOptions, DestroyRequest, GetRequest,
    UpdateOptions, UpdateRequest,
};
use crate::resources::{wire, Resource, Spec, StateError};

/// Key of a published resource: (namespace, type, id).
pub type ResourceKey = (String, String, String);

fn key(r: &Resource) -> ResourceKey {
    let md = &r.metadata;
    (
        md.namespace.clone(),
        md.resource_type.clone(),
        md.id.clone(),
    )
}

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
        kind: String,
        /// Resource id.
        id: String,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// A spec could not be put in its wire form.
    #[error("cannot encode {kind} {id:?}")]
    Encode {
        /// Resource type.
        kind: String,
        /// Resource id.
        id: String,
        /// Why.
        #[source]
        source: StateError,
    },
}

/// Something that can hold networkd's published resources.
pub trait Publisher: Send {
    /// Makes the published set equal to `resources`.
    fn sync(
        &mut self,
        resources: &[Resource],
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Keeps the resources in memory (tests, `--no-publish`).
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    /// What is currently published.
    pub published: BTreeMap<ResourceKey, Spec>,
    /// How many rounds ran.
    pub rounds: usize,
}

impl Publisher for MemoryPublisher {
    async fn sync(&mut self, resources: &[Resource]) -> Result<(), PublishError> {
        self.published = resources.iter().map(|r| (key(r), r.spec.clone())).collect();
        self.rounds += 1;
        Ok(())
    }
}

/// What to do to one resource to reach the desired state.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// New or changed: create it, or update it if it exists.
    Put(Resource),
    /// Gone: destroy it.
    Destroy(ResourceKey),
}

/// The changes that turn `published` into `desired` (specs compare as typed values).
pub fn diff(published: &BTreeMap<ResourceKey, Spec>, desired: &[Resource]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut wanted = BTreeMap::new();
    for r in desired {
        let k = key(r);
        if published.get(&k) != Some(&r.spec) {
            out.push(Change::Put(r.clone()));
        }
        wanted.insert(k, ());
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
    published: BTreeMap<ResourceKey, Spec>,
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

    /// The wire form of `r` at `version`, owned by this publisher.
    fn resource(&self, r: &Resource, version: &str) -> Result<pb::Resource, PublishError> {
        let mut wire = wire::to_proto(r).map_err(|source| PublishError::Encode {
            kind: r.metadata.resource_type.clone(),
            id: r.metadata.id.clone(),
            source,
        })?;
        if let Some(md) = wire.metadata.as_mut() {
            md.version = version.into();
            md.owner = self.owner.clone();
            md.created = None;
            md.updated = None;
        }
        Ok(wire)
    }

    async fn put(
        &self,
        client: &mut StateClient<Channel>,
        r: &Resource,
    ) -> Result<(), PublishError> {
        let md = &r.metadata;
        let call_err = |call, status| PublishError::Call {
            call,
            kind: md.resource_type.clone(),
            id: md.id.clone(),
            status,
        };
        let current = client
            .get(GetRequest {
                namespace: md.namespace.clone(),
                r#type: md.resource_type.clone(),
                id: md.id.clone(),
                options: None,
            })
            .await;
        match current {
            Err(status) if status.code() == tonic::Code::NotFound => {
                client
                    .create(CreateRequest {
                        resource: Some(self.resource(r, "1")?),
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
                        new_resource: Some(self.resource(r, &version)?),
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
    async fn sync(&mut self, resources: &[Resource]) -> Result<(), PublishError> {
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
                    self.published.insert(key(r), r.spec.clone());
                }),
                Change::Destroy((namespace, kind, id)) => {
                    let res = client
                        .destroy(DestroyRequest {
                            namespace: namespace.clone(),
                            r#type: kind.clone(),
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
                            kind: kind.clone(),
                            id: id.clone(),
                            status,
                        }),
                    }
                    .map(|()| {
                        self.published
                            .remove(&(namespace.clone(), kind.clone(), id.clone()));
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
    use crate::resources::specs::{HostnameStatusSpec, ResolverStatusSpec};
    use crate::resources::ResourceSpec as _;

    fn resolvers(id: &str, servers: &[&str]) -> Resource {
        Resource::from_typed(
            id,
            &ResolverStatusSpec {
                dns_servers: servers.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    fn host(name: &str) -> Resource {
        Resource::from_typed("hostname", &HostnameStatusSpec::from_fqdn(name))
    }

    fn k(kind: &str, id: &str) -> ResourceKey {
        ("network".into(), kind.into(), id.into())
    }

    /// Changes as (what, type, id), for comparing.
    fn summary(changes: &[Change]) -> Vec<(&'static str, String, String)> {
        changes
            .iter()
            .map(|c| match c {
                Change::Put(r) => (
                    "put",
                    r.metadata.resource_type.clone(),
                    r.metadata.id.clone(),
                ),
                Change::Destroy((_, kind, id)) => ("destroy", kind.clone(), id.clone()),
            })
            .collect()
    }

    #[test]
    fn diff_puts_changed_and_destroys_vanished() {
        let r = ResolverStatusSpec::TYPE;
        let mut published = BTreeMap::new();
        published.insert(k(r, "same"), resolvers("same", &["1.1.1.1"]).spec);
        published.insert(k(r, "changed"), resolvers("changed", &["1.1.1.1"]).spec);
        published.insert(k(r, "gone"), resolvers("gone", &["1.1.1.1"]).spec);
        let desired = vec![
            resolvers("same", &["1.1.1.1"]),
            resolvers("changed", &["8.8.8.8"]),
            host("new"),
        ];
        let changes = diff(&published, &desired);
        assert_eq!(
            summary(&changes),
            vec![
                ("put", r.to_string(), "changed".to_string()),
                (
                    "put",
                    HostnameStatusSpec::TYPE.to_string(),
                    "hostname".to_string()
                ),
                ("destroy", r.to_string(), "gone".to_string()),
            ]
        );
        assert_eq!(changes[0], Change::Put(desired[1].clone()));
        assert!(diff(&BTreeMap::new(), &[]).is_empty());
        // A spec that arrived serialized equals the typed one it came from.
        let wire = Spec::new("dnsServers:\n    - 1.1.1.1\n", Vec::new());
        published.insert(k(r, "same"), wire);
        assert!(diff(&published, &desired[..1])
            .iter()
            .all(|c| !matches!(c, Change::Put(_))));
    }

    #[tokio::test]
    async fn memory_publisher_holds_the_last_set() {
        let mut p = MemoryPublisher::default();
        p.sync(&[resolvers("resolvers", &["1.1.1.1"])])
            .await
            .expect("sync");
        p.sync(&[host("node1")]).await.expect("sync");
        assert_eq!(p.rounds, 2);
        assert_eq!(p.published.len(), 1);
        let spec = p
            .published
            .get(&k(HostnameStatusSpec::TYPE, "hostname"))
            .expect("hostname published");
        assert_eq!(
            spec.decode::<HostnameStatusSpec>().expect("typed").hostname,
            "node1"
        );
    }

    #[tokio::test]
    async fn cosi_publisher_reports_a_missing_machined() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = CosiPublisher::new(dir.path().join("machine.sock"), "network.DHCPController");
        let err = p.sync(&[host("node1")]).await.expect_err("no machined");
        assert!(err.to_string().contains("machine.sock"), "{err}");
        // Nothing to do is not an error, even without machined.
        let mut empty = CosiPublisher::new(dir.path().join("machine.sock"), "x");
        empty.sync(&[]).await.expect("nothing to publish");
    }
}
