//! Node paths, sockets, ports, user ids and file names: the one place each is written down.
//!
//! Names follow Talos's `pkg/machinery/constants` where Talos has the same thing, so a reader
//! coming from Talos finds `MACHINE_SOCKET_PATH` where Talos has `MachineSocketPath`. Paths are
//! absolute node paths; code that works below another root (tests, the provisioner's node
//! root) joins them onto that root with [`below`].
//!
//! The machine config file is not here: the config store in `config` is the only code that
//! knows its name.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

/// The Talos API port: apid, and maintenance mode before a config is applied.
pub const APID_PORT: u16 = 50000;
/// trustd's port (workers ask it for apid's certificate).
pub const TRUSTD_PORT: u16 = 50001;
/// Where apid (and maintenance mode) listen on a node: every address, [`APID_PORT`].
pub const APID_LISTEN_ADDRESS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, APID_PORT));
/// Where trustd listens on a node: every address, [`TRUSTD_PORT`].
pub const TRUSTD_LISTEN_ADDRESS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, TRUSTD_PORT));

/// apid's user and group id.
pub const APID_USER_ID: u32 = 50;
/// trustd's user and group id.
pub const TRUSTD_USER_ID: u32 = 51;
/// etcd's user id.
pub const ETCD_USER_ID: u32 = 60;

/// Runtime system files (a tmpfs on a node).
pub const SYSTEM_PATH: &str = "/system";
/// Per-service runtime directories and sockets.
pub const SYSTEM_RUN_PATH: &str = "/system/run";
/// System data that lives as long as the boot.
pub const SYSTEM_VAR_PATH: &str = "/system/var";
/// Files machined renders for the system (`hostname`, …).
pub const SYSTEM_ETC_PATH: &str = "/system/etc";
/// Secrets handed to services, one 0700 directory per service.
pub const SYSTEM_SECRETS_PATH: &str = "/system/secrets";
/// Where the STATE partition is mounted (machine config, node identity).
pub const STATE_MOUNT_POINT: &str = "/system/state";
/// Where the EPHEMERAL partition is mounted.
pub const EPHEMERAL_MOUNT_POINT: &str = "/var";

/// machined's runtime directory (its socket lives here).
pub const MACHINED_RUN_PATH: &str = "/system/run/machined";
/// machined's API socket (apid and networkd talk to machined through it).
pub const MACHINE_SOCKET_PATH: &str = "/system/run/machined/machine.sock";

/// apid's PKI directory (see [`crate::secrets::pki_dir::PkiDir`] for its files).
pub const APID_SECRETS_PATH: &str = "/system/secrets/apid";
/// trustd's PKI directory.
pub const TRUSTD_SECRETS_PATH: &str = "/system/secrets/trustd";

/// The system containerd's socket.
pub const SYSTEM_CONTAINERD_ADDRESS: &str = "/system/run/containerd/containerd.sock";
/// The system containerd's state directory (`--state`).
pub const SYSTEM_CONTAINERD_STATE_PATH: &str = "/system/run/containerd";
/// The system containerd's root directory (`--root`).
pub const SYSTEM_CONTAINERD_ROOT_PATH: &str = "/system/var/lib/containerd";

/// The node's host name as machined last set it.
pub const HOSTNAME_PATH: &str = "/system/etc/hostname";
/// The resolver configuration networkd writes for the node and its pods.
pub const POD_RESOLV_CONF_PATH: &str = "/system/resolved/resolv.conf";

/// Kernel module trees, one per kernel release.
pub const KERNEL_MODULES_PATH: &str = "/lib/modules";
/// The unified cgroup v2 hierarchy.
pub const CGROUP_MOUNT_PATH: &str = "/sys/fs/cgroup";
/// Where a pod finds the Talos service-account credentials (`talosconfig`).
pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/talos.dev";

// --- Kubernetes (Talos's pkg/machinery/constants) ---

/// Default Kubernetes API server port on a control plane (`cluster.controlPlane.localAPIServerPort`).
pub const KUBE_APISERVER_PORT: u16 = 6443;
/// etcd's client port (the API server's `--etcd-servers`).
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// Rendered secrets of the control-plane static pods (one directory per component).
pub const KUBERNETES_STATIC_SECRETS_DIR: &str = "/system/secrets/kubernetes";
/// Rendered configs of the control-plane static pods (one directory per component).
pub const KUBERNETES_STATIC_CONFIG_DIR: &str = "/system/config/kubernetes";
/// kube-apiserver's secrets.
pub const KUBE_APISERVER_SECRETS_DIR: &str = "/system/secrets/kubernetes/kube-apiserver";
/// kube-apiserver's configs (admission control, audit policy).
pub const KUBE_APISERVER_CONFIG_DIR: &str = "/system/config/kubernetes/kube-apiserver";
/// kube-controller-manager's secrets.
pub const KUBE_CONTROLLER_MANAGER_SECRETS_DIR: &str =
    "/system/secrets/kubernetes/kube-controller-manager";
/// kube-scheduler's secrets.
pub const KUBE_SCHEDULER_SECRETS_DIR: &str = "/system/secrets/kubernetes/kube-scheduler";
/// kube-scheduler's config.
pub const KUBE_SCHEDULER_CONFIG_DIR: &str = "/system/config/kubernetes/kube-scheduler";
/// kube-apiserver's audit log directory.
pub const KUBERNETES_AUDIT_LOG_DIR: &str = "/var/log/audit/kube";
/// The user and group kube-apiserver runs as.
pub const KUBE_APISERVER_RUN_USER: u32 = 65534;
/// The user and group kube-controller-manager runs as.
pub const KUBE_CONTROLLER_MANAGER_RUN_USER: u32 = 65535;
/// The user and group kube-scheduler runs as.
pub const KUBE_SCHEDULER_RUN_USER: u32 = 65536;
/// The kubelet's configuration directory.
pub const KUBERNETES_CONFIG_DIR: &str = "/etc/kubernetes";
/// The kubelet's configuration file.
pub const KUBELET_CONFIG_PATH: &str = "/etc/kubernetes/kubelet.yaml";
/// The kubelet's bootstrap kubeconfig.
pub const KUBELET_BOOTSTRAP_KUBECONFIG: &str = "/etc/kubernetes/bootstrap-kubeconfig";
/// The kubeconfig the kubelet writes once its client certificate is issued.
pub const KUBELET_KUBECONFIG: &str = "/etc/kubernetes/kubeconfig-kubelet";
/// The Kubernetes CA the kubelet trusts for client certificates.
pub const KUBERNETES_CA_CERT: &str = "/etc/kubernetes/pki/ca.crt";
/// The static pod manifests directory (when `machine.kubelet.disableManifestsDirectory` is off).
pub const KUBERNETES_MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
/// Where the kubelet keeps its issued certificates.
pub const KUBELET_PKI_DIR: &str = "/var/lib/kubelet/pki";
/// The kubelet's credential provider configuration.
pub const KUBELET_CREDENTIAL_PROVIDER_CONFIG: &str =
    "/etc/kubernetes/kubelet-credentialproviderconfig.yaml";
/// Where kubelet credential provider binaries live.
pub const KUBELET_CREDENTIAL_PROVIDER_BIN_DIR: &str = "/usr/local/lib/kubelet/credentialproviders";
/// The kubelet's secure port.
pub const KUBELET_PORT: u16 = 10250;
/// The kubelet's healthz endpoint (its service health check).
pub const KUBELET_HEALTHZ_ADDRESS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 10248));
/// The CRI containerd socket (namespace `k8s.io`).
pub const CRI_CONTAINERD_ADDRESS: &str = "/run/containerd/containerd.sock";

/// The `/system` directories machined creates first thing at boot, with their modes.
pub const SYSTEM_DIRECTORIES: &[(&str, u32)] = &[
    (SYSTEM_ETC_PATH, 0o700),
    (SYSTEM_VAR_PATH, 0o700),
    (STATE_MOUNT_POINT, 0o700),
    // Traversable but not listable: apid (uid 50) and trustd (uid 51) reach their own 0700
    // directories below it.
    (SYSTEM_SECRETS_PATH, 0o711),
    (SYSTEM_RUN_PATH, 0o751),
    (MACHINED_RUN_PATH, 0o700),
];

/// The `/var` directories created once EPHEMERAL is mounted, with their modes.
pub const VAR_DIRECTORIES: &[(&str, u32)] = &[
    ("/var/lib", 0o700),
    ("/var/log", 0o755),
    ("/var/log/audit", 0o700),
    ("/var/log/audit/kube", 0o700),
    ("/var/log/containers", 0o700),
    ("/var/log/pods", 0o700),
    ("/var/lib/kubelet", 0o700),
    ("/var/lib/kubelet/seccomp/profiles", 0o700),
];

/// The node path `absolute` below `root` (`/` gives the path itself).
pub fn below(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_nests_as_talos_does() {
        let under = |child: &str, parent: &str| {
            assert!(
                Path::new(child).starts_with(parent) && child != parent,
                "{child} is not below {parent}"
            );
        };
        for dir in [
            SYSTEM_RUN_PATH,
            SYSTEM_VAR_PATH,
            SYSTEM_ETC_PATH,
            SYSTEM_SECRETS_PATH,
            STATE_MOUNT_POINT,
        ] {
            under(dir, SYSTEM_PATH);
        }
        under(MACHINED_RUN_PATH, SYSTEM_RUN_PATH);
        under(MACHINE_SOCKET_PATH, MACHINED_RUN_PATH);
        under(APID_SECRETS_PATH, SYSTEM_SECRETS_PATH);
        under(TRUSTD_SECRETS_PATH, SYSTEM_SECRETS_PATH);
        under(SYSTEM_CONTAINERD_ADDRESS, SYSTEM_CONTAINERD_STATE_PATH);
        under(SYSTEM_CONTAINERD_STATE_PATH, SYSTEM_RUN_PATH);
        under(SYSTEM_CONTAINERD_ROOT_PATH, SYSTEM_VAR_PATH);
        under(HOSTNAME_PATH, SYSTEM_ETC_PATH);
        for (dir, _) in VAR_DIRECTORIES {
            under(dir, EPHEMERAL_MOUNT_POINT);
        }
        // Parents come before their children, so creating them in order works.
        for table in [SYSTEM_DIRECTORIES, VAR_DIRECTORIES] {
            for (i, (dir, _)) in table.iter().enumerate() {
                let parent = Path::new(dir).parent().expect("absolute");
                let listed_later = table[i + 1..].iter().any(|(d, _)| Path::new(d) == parent);
                assert!(!listed_later, "{dir} is listed before its parent");
            }
        }
    }

    #[test]
    fn paths_below_a_root() {
        assert_eq!(
            below(Path::new("/tmp/node"), MACHINE_SOCKET_PATH),
            Path::new("/tmp/node/system/run/machined/machine.sock")
        );
        assert_eq!(
            below(Path::new("/"), STATE_MOUNT_POINT),
            Path::new(STATE_MOUNT_POINT)
        );
    }
}
