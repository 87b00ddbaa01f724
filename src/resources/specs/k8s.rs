//! The `k8s` namespace: the Kubernetes node name.

use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::resources::proto;
use crate::resources::{col, Column, ResourceSpec};

/// `Nodenames.kubernetes.talos.dev` (`nodename`): the Kubernetes node name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodenameSpec {
    /// Node name.
    pub nodename: String,
    /// Version of the hostname status it was derived from.
    #[serde(rename = "hostnameVersion")]
    pub hostname_version: String,
    /// `machine.kubelet.skipNodeRegistration`.
    #[serde(rename = "skipNodeRegistration")]
    pub skip_node_registration: bool,
}

impl ResourceSpec for NodenameSpec {
    const TYPE: &'static str = "Nodenames.kubernetes.talos.dev";
    const NAMESPACE: &'static str = "k8s";
    const COLUMNS: &'static [Column] = &[col("Nodename", "{.nodename}")];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        proto::Nodename {
            nodename: self.nodename.clone(),
            hostname_version: self.hostname_version.clone(),
            skip_node_registration: self.skip_node_registration,
        }
        .encode_to_vec()
    }
}

/// Id of the node name.
pub const NODENAME_ID: &str = "nodename";
