//! The `cluster` namespace: members of the cluster.

use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::resources::proto::{self, machine_type_number, net_ip};
use crate::resources::{col, Column, ResourceSpec};

/// Control-plane details of a member.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ControlPlane {
    /// kube-apiserver port.
    pub port: i64,
}

/// `Members.cluster.talos.dev` (id = node id).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberSpec {
    /// Node id.
    #[serde(rename = "nodeId")]
    pub node_id: String,
    /// Node addresses.
    pub addresses: Vec<String>,
    /// Host name.
    pub hostname: String,
    /// `controlplane`, `worker`, …
    #[serde(rename = "machineType")]
    pub machine_type: String,
    /// E.g. `Talos (v1.7.0)`.
    #[serde(rename = "operatingSystem")]
    pub operating_system: String,
    /// Set on control-plane nodes.
    #[serde(
        rename = "controlPlane",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub control_plane: Option<ControlPlane>,
}

impl ResourceSpec for MemberSpec {
    const TYPE: &'static str = "Members.cluster.talos.dev";
    const NAMESPACE: &'static str = "cluster";
    const COLUMNS: &'static [Column] = &[
        col("Hostname", "{.hostname}"),
        col("Machine Type", "{.machineType}"),
        col("OS", "{.operatingSystem}"),
        col("Addresses", "{.addresses}"),
    ];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        proto::Member {
            node_id: self.node_id.clone(),
            addresses: self.addresses.iter().filter_map(|a| net_ip(a)).collect(),
            hostname: self.hostname.clone(),
            machine_type: machine_type_number(&self.machine_type),
            operating_system: self.operating_system.clone(),
            control_plane: self.control_plane.as_ref().map(|c| proto::ControlPlane {
                api_server_port: c.port,
            }),
        }
        .encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> MemberSpec {
        MemberSpec {
            node_id: "abc".into(),
            addresses: vec!["10.5.0.2".into()],
            hostname: "cp-1".into(),
            machine_type: "controlplane".into(),
            operating_system: "Talos (v1.7.0)".into(),
            control_plane: Some(ControlPlane { port: 6443 }),
        }
    }

    #[test]
    fn yaml_matches_talos_layout_and_round_trips() {
        let m = member();
        assert_eq!(
            m.to_yaml().unwrap(),
            "nodeId: abc\naddresses:\n    - 10.5.0.2\nhostname: cp-1\nmachineType: controlplane\noperatingSystem: Talos (v1.7.0)\ncontrolPlane:\n    port: 6443\n"
        );
        let back: MemberSpec = MemberSpec::from_yaml(&m.to_yaml().unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn proto_matches_talos_field_numbers() {
        let m = MemberSpec {
            machine_type: "worker".into(),
            control_plane: None,
            ..member()
        };
        let decoded = <proto::Member as prost::Message>::decode(&m.to_proto()[..]).unwrap();
        assert_eq!(decoded.addresses[0].ip, [10, 5, 0, 2]);
        assert_eq!(decoded.machine_type, 3);
    }
}
