//! Typed specs of the resources machined and networkd publish, by area. Field names and order
//! follow the `yaml:` tags of Talos 1.7's specs, so `talosctl get … -o yaml` prints the same
//! `spec:`; each type's definition (type, namespace, aliases, sensitivity, columns) is its
//! [`super::ResourceSpec`] impl.
//!
//! | module | resources |
//! |---|---|
//! | [`config`] | `MachineConfigs` (the typed machine config), `MachineTypes` |
//! | [`runtime`] | `MachineStatuses`, `Services`, `KernelParamStatuses`, `MountStatuses`, `TimeStatuses` |
//! | [`network`] | `LinkStatuses`, `AddressStatuses`, `RouteStatuses`, `ResolverStatuses`, `HostnameStatuses` |
//! | [`k8s`] | `Nodenames` |
//! | [`kubelet`] | `KubeletConfigs`, `KubeletSpecs`, `NodeIPConfigs`, `NodeIPs`, `StaticPods`, `StaticPodStatuses`, `StaticPodServerStatuses` |
//! | [`controlplane`] | the control-plane component configs, `Manifests`, `ManifestStatuses`, `ConfigStatuses`, `SecretStatuses` |
//! | [`secrets`] | the Kubernetes root secrets, issued certificates and kubeconfigs, `KubeletSecrets`, `CertSANs`, `EtcdRootSecrets` |
//! | [`cluster`] | `Members` |

pub mod cluster;
pub mod config;
pub mod controlplane;
pub mod k8s;
pub mod kubelet;
pub mod network;
pub mod runtime;
pub mod secrets;

pub use cluster::*;
pub use config::*;
pub use controlplane::*;
pub use k8s::*;
pub use kubelet::*;
pub use network::*;
pub use runtime::*;
pub use secrets::*;
