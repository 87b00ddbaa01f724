//! The cluster state file (`~/.talos/clusters/NAME/state.yaml`): what `cluster create` built, so
//! `cluster show` and `cluster destroy` (even after a crash) know what to look at and tear down.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ProvisionError;
use crate::fsutil::{write_atomic, WriteOptions};

/// File name of the state file inside the cluster state directory.
pub const STATE_FILE: &str = "state.yaml";

/// The role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    /// A control-plane node.
    Controlplane,
    /// A worker node.
    Worker,
}

impl NodeType {
    /// The name Talos prints (`controlplane`, `worker`).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Controlplane => "controlplane",
            NodeType::Worker => "worker",
        }
    }
}

/// The cluster's private network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkState {
    /// Network name (the cluster name, as Talos's docker provisioner).
    pub name: String,
    /// The network namespace holding the bridge, bind-mounted at `/run/netns/<netns>`.
    pub netns: String,
    /// The bridge inside that namespace.
    pub bridge: String,
    /// The network, e.g. `10.5.0.0/24`.
    pub cidr: String,
    /// The gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// Prefix length of `cidr`.
    pub prefix: u8,
    /// Link MTU.
    pub mtu: u32,
}

/// Host ports published for a control-plane node on 127.0.0.1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedPorts {
    /// Port forwarded to the node's apid (50000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apid: Option<u16>,
    /// Port forwarded to the node's Kubernetes API server (6443).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<u16>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeState {
    /// Node name (also its host name).
    pub name: String,
    /// Role.
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// Address on the cluster network.
    pub ip: Ipv4Addr,
    /// CPU share (e.g. 2.0).
    pub cpus: f64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Name of the bridge-side veth in the cluster namespace.
    pub veth: String,
    /// The node's machine config file (in the state directory).
    pub config: PathBuf,
    /// The node's persistent directory (holds `state/` and `var/`).
    pub dir: PathBuf,
    /// cgroup directories made for the node, one per hierarchy.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// Host pid of the node's init while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Published ports (control planes).
    #[serde(default)]
    pub ports: PublishedPorts,
    /// How the node's last run ended (`exit code N`, `signal N`), if it has stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

/// The whole cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    /// Cluster name.
    pub name: String,
    /// Always `container` in this build.
    pub provisioner: String,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The materialized node root (shared read-only by all nodes).
    pub rootfs: PathBuf,
    /// The `talos` binary bind-mounted as the nodes' `/sbin/init`.
    pub init_binary: PathBuf,
    /// In-cluster Kubernetes endpoint.
    pub kubernetes_endpoint: String,
    /// The network.
    pub network: NetworkState,
    /// Pid of the launcher process while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launcher_pid: Option<i32>,
    /// Nodes, control planes first.
    pub nodes: Vec<NodeState>,
    /// Test seam: a command run in the nodes instead of `/sbin/init` (argv, inside the root).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_command: Vec<String>,
}

/// `~/.talos/clusters` (Talos's default `--state`).
pub fn default_state_root() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".talos").join("clusters")
}

impl ClusterState {
    /// Path of the state file in `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Reads the state file of the cluster in `dir`.
    pub fn load(dir: &Path) -> Result<ClusterState, ProvisionError> {
        let path = Self::path_in(dir);
        let text = std::fs::read_to_string(&path).map_err(|source| ProvisionError::Io {
            what: format!("reading cluster state {}", path.display()),
            source,
        })?;
        serde_yaml::from_str(&text).map_err(|e| ProvisionError::State {
            path,
            what: e.to_string(),
        })
    }

    /// Writes the state file atomically (0600), replacing the previous one.
    pub fn save(&self) -> Result<(), ProvisionError> {
        let path = Self::path_in(&self.state_dir);
        let text = crate::yaml::to_string(self).map_err(|e| ProvisionError::State {
            path: path.clone(),
            what: e.to_string(),
        })?;
        write_atomic(
            &path,
            text.as_bytes(),
            WriteOptions::PRIVATE.overwrite(true),
        )
        .map_err(|e| ProvisionError::State {
            path,
            what: crate::errors::chain(&e).to_string(),
        })
    }

    /// The node named `name`.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(dir: &Path) -> ClusterState {
        ClusterState {
            name: "talos-default".into(),
            provisioner: "container".into(),
            state_dir: dir.to_path_buf(),
            rootfs: dir.join("rootfs"),
            init_binary: "/usr/bin/talos".into(),
            kubernetes_endpoint: "https://10.5.0.2:6443".into(),
            network: NetworkState {
                name: "talos-default".into(),
                netns: "talos-default".into(),
                bridge: "talos1234".into(),
                cidr: "10.5.0.0/24".into(),
                gateway: Ipv4Addr::new(10, 5, 0, 1),
                prefix: 24,
                mtu: 1500,
            },
            launcher_pid: Some(42),
            nodes: vec![NodeState {
                name: "talos-default-controlplane-1".into(),
                node_type: NodeType::Controlplane,
                ip: Ipv4Addr::new(10, 5, 0, 2),
                cpus: 2.0,
                memory_mib: 2048,
                veth: "veth0".into(),
                config: dir.join("controlplane.yaml"),
                dir: dir.join("talos-default-controlplane-1"),
                cgroups: vec!["/sys/fs/cgroup/unified/x".into()],
                pid: Some(7),
                ports: PublishedPorts {
                    apid: Some(40000),
                    kubernetes: None,
                },
                last_exit: None,
            }],
            node_command: vec![],
        }
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let st = sample(tmp.path());
        st.save().unwrap();
        let text = std::fs::read_to_string(tmp.path().join(STATE_FILE)).unwrap();
        assert!(text.contains("type: controlplane"), "{text}");
        assert_eq!(ClusterState::load(tmp.path()).unwrap(), st);
        let e = ClusterState::load(&tmp.path().join("nope")).unwrap_err();
        assert!(e.to_string().contains("state.yaml"), "{e}");
    }
}
