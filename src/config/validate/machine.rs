//! `machine.*` checks, except the network and install sections.

use std::collections::HashSet;

use super::syntax::{
    check_label_key, check_label_value, check_pem, check_tcp_udp_url, is_subnet_or_address,
    split_url,
};
use super::{Mode, Report};
use crate::config::v1alpha1::MachineConfig;

/// `machine.type`: `Some(true)` for a control plane, `Some(false)` for a worker, `None` for an
/// unknown type. The deprecated names `init` and `join` are warned about.
pub(super) fn machine_type(m: &MachineConfig, r: &mut Report) -> Option<bool> {
    let machine_type = match m.machine_type.as_str() {
        "controlplane" | "init" => Some(true),
        "worker" | "join" => Some(false),
        _ => None,
    };
    match m.machine_type.as_str() {
        "init" => r.warn(
            "machine.type",
            "use \"controlplane\" instead of \"init\" for machine type",
        ),
        "join" => r.warn(
            "machine.type",
            "use \"worker\" instead of \"join\" for machine type",
        ),
        _ => {}
    }
    machine_type
}

/// The error for a `machine.type` that is neither a control plane nor a worker.
pub(super) fn unknown_type(m: &MachineConfig, r: &mut Report) {
    r.err(
        "machine.type",
        format!(
            "unknown machine type {:?} (expected \"controlplane\" or \"worker\")",
            m.machine_type
        ),
    );
}

/// In a container, Talos needs its host DNS forwarding kube-dns to the host.
pub(super) fn check_container_features(m: &MachineConfig, mode: Mode, r: &mut Report) {
    if mode != Mode::Container {
        return;
    }
    let hd = m.features.as_ref().and_then(|f| f.host_dns.as_ref());
    if !hd.and_then(|h| h.enabled).unwrap_or(false) {
        r.err(
            "machine.features.hostDNS.enabled",
            "feature HostDNS should be enabled in container mode",
        );
    }
    if !hd.and_then(|h| h.forward_kube_dns_to_host).unwrap_or(false) {
        r.err(
            "machine.features.hostDNS.forwardKubeDNSToHost",
            "feature HostDNS should forward kube-dns to host in container mode",
        );
    }
}

/// A worker may not hold the Talos API CA key.
pub(super) fn check_no_ca_key(m: &MachineConfig, r: &mut Report) {
    if m.ca.as_ref().is_some_and(|ca| !ca.key.is_empty()) {
        r.err(
            "machine.ca.key",
            "issuing Talos API CA key is not allowed on non-controlplane nodes",
        );
    }
}

/// `machine.token`, `machine.ca` and `machine.acceptedCAs`.
pub(super) fn validate_machine_secrets(m: &MachineConfig, is_cp: bool, r: &mut Report) {
    if m.token.is_empty() {
        r.err("machine.token", "machine token is required");
    }
    match &m.ca {
        None => r.err("machine.ca", "the Talos API CA certificate is required"),
        Some(ca) => {
            check_pem(&ca.crt, "CERTIFICATE", "machine.ca.crt", r);
            if is_cp {
                if ca.key.is_empty() {
                    r.err(
                        "machine.ca.key",
                        "the Talos API CA key is required on control plane nodes",
                    );
                } else {
                    check_pem(&ca.key, "PRIVATE KEY", "machine.ca.key", r);
                }
            }
        }
    }
    for (i, ca) in m.accepted_cas.iter().enumerate() {
        check_pem(
            &ca.crt,
            "CERTIFICATE",
            &format!("machine.acceptedCAs[{i}].crt"),
            r,
        );
    }
}

/// `machine.kubelet`: node IP subnets, and the extra config fields Talos manages itself.
pub(super) fn check_kubelet(m: &MachineConfig, r: &mut Report) {
    let Some(k) = &m.kubelet else { return };
    for (i, cidr) in k
        .node_ip
        .iter()
        .flat_map(|n| n.valid_subnets.iter())
        .enumerate()
    {
        if !is_subnet_or_address(cidr.trim_start_matches('!')) {
            r.err(
                format!("machine.kubelet.nodeIP.validSubnets[{i}]"),
                format!("kubelet nodeIP subnet is not valid: {cidr:?}"),
            );
        }
    }
    if let Some(map) = k.extra_config.as_mapping() {
        for field in [
            "authentication",
            "authorization",
            "cgroupDriver",
            "cgroupRoot",
            "rotateCertificates",
            "staticPodPath",
            "staticPodURL",
        ] {
            if map.contains_key(field) {
                r.err(
                    "machine.kubelet.extraConfig",
                    format!("kubelet configuration field {field:?} can't be overridden"),
                );
            }
        }
    }
}

/// `machine.systemDiskEncryption`: keys, key slots and the provider of each partition.
pub(super) fn check_disk_encryption(m: &MachineConfig, r: &mut Report) {
    let Some(enc) = &m.system_disk_encryption else {
        return;
    };
    for (label, cfg) in [("ephemeral", &enc.ephemeral), ("state", &enc.state)] {
        let Some(cfg) = cfg else { continue };
        let path = format!("machine.systemDiskEncryption.{label}");
        if cfg.keys.is_empty() {
            r.err(
                format!("{path}.keys"),
                format!("partition {label:?}: no encryption keys provided"),
            );
        }
        let mut slots = HashSet::new();
        for (i, key) in cfg.keys.iter().enumerate() {
            if !slots.insert(key.slot) {
                r.err(
                    format!("{path}.keys[{i}].slot"),
                    format!(
                        "partition {label:?}: encryption key slot {} is already in use",
                        key.slot
                    ),
                );
            }
            if key.node_id.is_none()
                && key.r#static.is_none()
                && key.kms.is_none()
                && key.tpm.is_none()
            {
                r.err(
                    format!("{path}.keys[{i}]"),
                    format!("partition {label:?}: encryption key at slot {} doesn't have the configuration parameters", key.slot),
                );
            }
        }
        if !cfg.provider.is_empty() && cfg.provider != "luks2" {
            r.err(
                format!("{path}.provider"),
                format!(
                    "unsupported encryption provider {:?} (expected \"luks2\")",
                    cfg.provider
                ),
            );
        }
    }
}

/// `machine.logging.destinations`: a tcp:// or udp:// endpoint with a port, in JSON lines.
pub(super) fn check_logging(m: &MachineConfig, r: &mut Report) {
    let Some(l) = &m.logging else { return };
    for (i, d) in l.destinations.iter().enumerate() {
        let path = format!("machine.logging.destinations[{i}]");
        match d.endpoint.as_deref().map(split_url) {
            None | Some(None) => r.err(
                format!("{path}.endpoint"),
                "endpoint is required and must be a tcp:// or udp:// URL",
            ),
            Some(Some(u)) => check_tcp_udp_url(&u, &format!("{path}.endpoint"), r),
        }
        if d.format != "json_lines" {
            r.err(
                format!("{path}.format"),
                format!("unknown format {:?} (expected \"json_lines\")", d.format),
            );
        }
    }
}

/// `machine.nodeLabels`: Kubernetes label keys and values.
pub(super) fn check_node_labels(m: &MachineConfig, r: &mut Report) {
    for (k, v) in &m.node_labels {
        if let Err(e) = check_label_key(k) {
            r.err(
                format!("machine.nodeLabels.{k}"),
                format!("invalid machine node label key: {e}"),
            );
        }
        if let Err(e) = check_label_value(v) {
            r.err(
                format!("machine.nodeLabels.{k}"),
                format!("invalid machine node label value: {e}"),
            );
        }
    }
}

/// `machine.nodeTaints`: label-shaped keys, and `[value:]effect` values.
pub(super) fn check_node_taints(m: &MachineConfig, r: &mut Report) {
    for (k, v) in &m.node_taints {
        if let Err(e) = check_label_key(k) {
            r.err(
                format!("machine.nodeTaints.{k}"),
                format!("invalid machine node taint key: {e}"),
            );
        }
        let (value, effect) = v.split_once(':').unwrap_or(("", v.as_str()));
        if let Err(e) = check_label_value(value) {
            r.err(
                format!("machine.nodeTaints.{k}"),
                format!("invalid machine node taint value: {e}"),
            );
        }
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            r.err(
                format!("machine.nodeTaints.{k}"),
                format!("invalid taint effect {effect:?}"),
            );
        }
    }
}

/// `machine.features.kubernetesTalosAPIAccess`: needs RBAC, a control plane, and known roles.
pub(super) fn check_talos_api_access(m: &MachineConfig, is_cp: bool, r: &mut Report) {
    let Some(access) = m
        .features
        .as_ref()
        .and_then(|f| f.kubernetes_talos_api_access.as_ref())
    else {
        return;
    };
    if !access.enabled.unwrap_or(false) {
        return;
    }
    if !m.features.as_ref().and_then(|f| f.rbac).unwrap_or(false) {
        r.err("machine.features.rbac", "feature API RBAC should be enabled when Kubernetes Talos API Access feature is enabled");
    }
    if !is_cp {
        r.err(
            "machine.features.kubernetesTalosAPIAccess.enabled",
            "feature Kubernetes Talos API Access can only be enabled on control plane machines",
        );
    }
    for (i, role) in access.allowed_roles.iter().enumerate() {
        if !matches!(
            role.as_str(),
            "os:admin" | "os:operator" | "os:reader" | "os:etcd:backup" | "os:impersonator"
        ) {
            r.err(
                format!("machine.features.kubernetesTalosAPIAccess.allowedRoles[{i}]"),
                format!("invalid role {role:?} in allowed roles for Kubernetes Talos API Access"),
            );
        }
    }
}

/// `machine.files`: a known operation on an absolute path.
pub(super) fn check_files(m: &MachineConfig, r: &mut Report) {
    for (i, f) in m.files.iter().enumerate() {
        if !matches!(f.op.as_str(), "create" | "append" | "overwrite") {
            r.err(
                format!("machine.files[{i}].op"),
                format!(
                    "unknown file operation {:?} (expected create, append or overwrite)",
                    f.op
                ),
            );
        }
        if !f.path.starts_with('/') {
            r.err(
                format!("machine.files[{i}].path"),
                format!("file path {:?} must be absolute", f.path),
            );
        }
    }
}
