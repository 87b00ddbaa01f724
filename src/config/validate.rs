//! Validation of a machine config for a platform mode, following Talos 1.7's rules (as run by
//! `talosctl validate`, i.e. without probing local disks). All problems are collected; each names
//! the key path it is about. With `strict`, warnings are reported as errors.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use base64::Engine;

use super::v1alpha1::{Bond, ClusterConfig, Device, MachineConfig, V1Alpha1Config};
use super::{Config, Document};

/// The runtime mode a config is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bare metal (and QEMU): an install target is required.
    Metal,
    /// Cloud platforms: the image is pre-installed.
    Cloud,
    /// Talos in a container (docker provisioner).
    Container,
}

impl Mode {
    /// Parses `metal`, `cloud` or `container` (case-insensitive).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "metal" => Some(Mode::Metal),
            "cloud" => Some(Mode::Cloud),
            "container" => Some(Mode::Container),
            _ => None,
        }
    }

    fn requires_install(self) -> bool {
        self == Mode::Metal
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Metal => "metal",
            Mode::Cloud => "cloud",
            Mode::Container => "container",
        })
    }
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Key path the problem is about (`machine.install.disk`), or empty for the whole config.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A non-fatal finding (same shape as an error).
pub type Warning = ValidationError;

/// All errors found, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} {} occurred:",
            if n == 1 { "error" } else { "errors" }
        )?;
        for e in &self.0 {
            writeln!(f, "\t* {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

#[derive(Default)]
struct Report {
    errors: Vec<ValidationError>,
    warnings: Vec<Warning>,
}

impl Report {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Validates the config for `mode`. Returns the warnings, or every error found.
    pub fn validate(&self, mode: Mode, strict: bool) -> Result<Vec<Warning>, ValidationErrors> {
        let mut r = Report::default();
        match self.v1alpha1() {
            Some(v) => validate_v1alpha1(v, mode, &mut r),
            None => r.err(
                "",
                "the config has no v1alpha1 document (machine instructions are required)",
            ),
        }
        for (i, doc) in self.documents().iter().enumerate() {
            validate_document(doc, i + 1, &mut r);
        }
        if strict {
            for w in r.warnings.drain(..) {
                r.errors.push(ValidationError {
                    path: w.path,
                    message: format!("warning: {}", w.message),
                });
            }
        }
        if r.errors.is_empty() {
            Ok(r.warnings)
        } else {
            Err(ValidationErrors(r.errors))
        }
    }
}

fn validate_v1alpha1(c: &V1Alpha1Config, mode: Mode, r: &mut Report) {
    if c.version != "v1alpha1" {
        r.err(
            "version",
            format!(
                "invalid config version {:?} (expected \"v1alpha1\")",
                c.version
            ),
        );
    }
    let Some(m) = &c.machine else {
        r.err("machine", "machine instructions are required");
        return;
    };
    let machine_type = match m.machine_type.as_str() {
        "controlplane" | "init" => Some(true),
        "worker" | "join" => Some(false),
        _ => None,
    };
    let is_cp = machine_type == Some(true);
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

    validate_cluster(c.cluster.as_ref(), is_cp, r);

    if mode.requires_install() {
        match &m.install {
            None => r.err(
                "machine.install",
                format!(
                    "install instructions are required in {mode:?} mode",
                    mode = mode.to_string()
                ),
            ),
            Some(i) => {
                if i.disk.is_empty()
                    && i.disk_selector
                        .as_ref()
                        .is_none_or(|s| *s == Default::default())
                {
                    r.err(
                        "machine.install.disk",
                        "either install disk or diskSelector should be defined",
                    );
                }
            }
        }
    }
    if mode == Mode::Container {
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

    match machine_type {
        Some(true) => validate_cni(c.cluster.as_ref(), r),
        Some(false) => {
            for (i, d) in m
                .network
                .iter()
                .flat_map(|n| n.interfaces.iter())
                .enumerate()
            {
                if d.vip.is_some() {
                    r.err(
                        format!("machine.network.interfaces[{i}].vip"),
                        "virtual (shared) IP is not allowed on non-controlplane nodes",
                    );
                }
                for (j, v) in d.vlans.iter().enumerate() {
                    if v.vip.is_some() {
                        r.err(
                            format!("machine.network.interfaces[{i}].vlans[{j}].vip"),
                            "virtual (shared) IP is not allowed on non-controlplane nodes",
                        );
                    }
                }
            }
            if m.ca.as_ref().is_some_and(|ca| !ca.key.is_empty()) {
                r.err(
                    "machine.ca.key",
                    "issuing Talos API CA key is not allowed on non-controlplane nodes",
                );
            }
        }
        None => r.err(
            "machine.type",
            format!(
                "unknown machine type {:?} (expected \"controlplane\" or \"worker\")",
                m.machine_type
            ),
        ),
    }

    validate_machine_secrets(m, is_cp, r);
    validate_network(m, r);

    for (di, disk) in m.disks.iter().enumerate() {
        let n = disk.partitions.len();
        for (pi, p) in disk.partitions.iter().enumerate() {
            if p.size.is_zero() && pi + 1 != n {
                r.err(
                    format!("machine.disks[{di}].partitions[{pi}].size"),
                    format!("partition for disk {:?} is set to occupy full disk, but it's not the last partition in the list", disk.device),
                );
            }
        }
    }

    if let Some(k) = &m.kubelet {
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

    if let Some(enc) = &m.system_disk_encryption {
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

    let kubespan = m.network.as_ref().and_then(|n| n.kubespan.as_ref());
    if kubespan.and_then(|k| k.enabled).unwrap_or(false) {
        let cluster = c.cluster.as_ref();
        let discovery_enabled = cluster
            .and_then(|c| c.discovery.as_ref())
            .and_then(|d| d.enabled)
            .unwrap_or(false);
        if !discovery_enabled {
            r.err(
                "cluster.discovery.enabled",
                "cluster discovery should be enabled when machine.network.kubespan is enabled",
            );
        }
        if cluster.is_none_or(|c| c.id.is_empty()) {
            r.err(
                "cluster.id",
                "cluster.id should be set when machine.network.kubespan is enabled",
            );
        }
        if cluster.is_none_or(|c| c.secret.is_empty()) {
            r.err(
                "cluster.secret",
                "cluster.secret should be set when machine.network.kubespan is enabled",
            );
        }
        if let Some(mtu) = kubespan.and_then(|k| k.mtu) {
            if mtu < 1280 {
                r.err(
                    "machine.network.kubespan.mtu",
                    "kubespan link MTU must be at least 1280",
                );
            }
        }
        for (i, cidr) in kubespan
            .and_then(|k| k.filters.as_ref())
            .iter()
            .flat_map(|f| f.endpoints.iter())
            .enumerate()
        {
            if !is_subnet_or_address(cidr.trim_start_matches('!')) {
                r.err(
                    format!("machine.network.kubespan.filters.endpoints[{i}]"),
                    format!("KubeSpan endpoint filter is not valid: {cidr:?}"),
                );
            }
        }
    }

    if let Some(l) = &m.logging {
        for (i, d) in l.destinations.iter().enumerate() {
            let path = format!("machine.logging.destinations[{i}]");
            match d.endpoint.as_deref().map(split_url) {
                None | Some(None) => r.err(
                    format!("{path}.endpoint"),
                    "endpoint is required and must be a tcp:// or udp:// URL",
                ),
                Some(Some(u)) => {
                    if u.scheme != "tcp" && u.scheme != "udp" {
                        r.err(
                            format!("{path}.endpoint"),
                            format!("unsupported scheme {:?} (expected tcp or udp)", u.scheme),
                        );
                    }
                    if u.port.is_none() {
                        r.err(format!("{path}.endpoint"), "port is required");
                    }
                    if !u.path.is_empty() && u.path != "/" {
                        r.err(format!("{path}.endpoint"), "path must be empty");
                    }
                }
            }
            if d.format != "json_lines" {
                r.err(
                    format!("{path}.format"),
                    format!("unknown format {:?} (expected \"json_lines\")", d.format),
                );
            }
        }
    }

    if let Some(i) = &m.install {
        let mut seen = HashSet::new();
        for (n, ext) in i.extensions.iter().enumerate() {
            if !seen.insert(ext.image.as_str()) {
                r.err(
                    format!("machine.install.extensions[{n}].image"),
                    format!("duplicate system extension {:?}", ext.image),
                );
            }
        }
        if !i.extensions.is_empty() {
            r.warn("machine.install.extensions", "machine.install.extensions is deprecated, please see https://www.talos.dev/latest/talos-guides/install/boot-assets/");
        }
    }

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

    if let Some(access) = m
        .features
        .as_ref()
        .and_then(|f| f.kubernetes_talos_api_access.as_ref())
    {
        if access.enabled.unwrap_or(false) {
            if !m.features.as_ref().and_then(|f| f.rbac).unwrap_or(false) {
                r.err("machine.features.rbac", "feature API RBAC should be enabled when Kubernetes Talos API Access feature is enabled");
            }
            if !is_cp {
                r.err("machine.features.kubernetesTalosAPIAccess.enabled", "feature Kubernetes Talos API Access can only be enabled on control plane machines");
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
    }

    if c.persist == Some(false) {
        r.err("persist", "persist should be enabled");
    }

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

fn validate_machine_secrets(m: &MachineConfig, is_cp: bool, r: &mut Report) {
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

/// Checks that `b64` is base64 of a PEM block whose label contains `label`.
fn check_pem(b64: &str, label: &str, path: &str, r: &mut Report) {
    let raw = match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
        Ok(raw) => raw,
        Err(e) => {
            r.err(path, format!("not valid base64: {e}"));
            return;
        }
    };
    match pem::parse_many(&raw) {
        Ok(blocks) if !blocks.is_empty() => {
            if !blocks.iter().all(|b| b.tag().contains(label)) {
                r.err(
                    path,
                    format!("expected a PEM {label} block, found {:?}", blocks[0].tag()),
                );
            }
        }
        Ok(_) => r.err(path, "no PEM block found"),
        Err(e) => r.err(path, format!("not valid PEM: {e}")),
    }
}

fn validate_cluster(cluster: Option<&ClusterConfig>, is_cp: bool, r: &mut Report) {
    let Some(c) = cluster else {
        r.err("cluster", "cluster instructions are required");
        return;
    };
    match c
        .control_plane
        .as_ref()
        .and_then(|cp| cp.endpoint.as_deref())
    {
        None | Some("") => r.err(
            "cluster.controlPlane.endpoint",
            "cluster controlplane endpoint is required",
        ),
        Some(ep) => {
            if let Err(e) = validate_endpoint_uri(ep) {
                r.err(
                    "cluster.controlPlane.endpoint",
                    format!("invalid controlplane endpoint {ep:?}: {e}"),
                );
            } else if split_url(ep).is_some_and(|u| u.scheme != "https") {
                r.err(
                    "cluster.controlPlane.endpoint",
                    format!("controlplane endpoint {ep:?} must be an https URL"),
                );
            }
        }
    }
    if let Some(net) = &c.network {
        if !net.dns_domain.is_empty() && !is_valid_dns_name(&net.dns_domain) {
            r.err(
                "cluster.network.dnsDomain",
                format!("{:?} is not a valid DNS name", net.dns_domain),
            );
        }
        for (key, list) in [
            ("podSubnets", &net.pod_subnets),
            ("serviceSubnets", &net.service_subnets),
        ] {
            for (i, cidr) in list.iter().enumerate() {
                if parse_cidr(cidr).is_none() {
                    r.err(
                        format!("cluster.network.{key}[{i}]"),
                        format!("invalid CIDR {cidr:?}"),
                    );
                }
            }
        }
    }
    if !c.token.is_empty() && !is_bootstrap_token(&c.token) {
        r.err(
            "cluster.token",
            "bootstrap token must match [a-z0-9]{6}.[a-z0-9]{16}",
        );
    }
    if let Some(ecp) = &c.external_cloud_provider {
        if !ecp.enabled.unwrap_or(false) && !ecp.manifests.is_empty() {
            r.err(
                "cluster.externalCloudProvider.manifests",
                "external cloud provider is disabled, but manifests are provided",
            );
        }
        for (i, u) in ecp.manifests.iter().enumerate() {
            if let Err(e) = validate_endpoint_uri(u) {
                r.err(
                    format!("cluster.externalCloudProvider.manifests[{i}]"),
                    format!("invalid external cloud provider manifest url {u:?}: {e}"),
                );
            }
        }
    }
    if let Some(etcd) = &c.etcd {
        if !is_cp {
            r.err(
                "cluster.etcd",
                "etcd config is only allowed on control plane machines",
            );
        } else {
            match &etcd.ca {
                None => r.err(
                    "cluster.etcd.ca",
                    "key/cert combination should not be empty",
                ),
                Some(ca) => {
                    check_pem(&ca.crt, "CERTIFICATE", "cluster.etcd.ca.crt", r);
                    check_pem(&ca.key, "PRIVATE KEY", "cluster.etcd.ca.key", r);
                }
            }
            if !etcd.subnet.is_empty() && !etcd.advertised_subnets.is_empty() {
                r.err(
                    "cluster.etcd.subnet",
                    "etcd subnet can't be set when advertised subnets are set",
                );
            }
            for (key, list) in [
                ("advertisedSubnets", &etcd.advertised_subnets),
                ("listenSubnets", &etcd.listen_subnets),
            ] {
                for (i, cidr) in list.iter().enumerate() {
                    if !is_subnet_or_address(cidr.trim_start_matches('!')) {
                        r.err(
                            format!("cluster.etcd.{key}[{i}]"),
                            format!("etcd subnet is not valid: {cidr:?}"),
                        );
                    }
                }
            }
        }
    }
    match &c.ca {
        Some(ca) => {
            check_pem(&ca.crt, "CERTIFICATE", "cluster.ca.crt", r);
            if !ca.key.is_empty() {
                if !is_cp {
                    r.err(
                        "cluster.ca.key",
                        "cluster CA key is not allowed on non-controlplane nodes",
                    );
                } else {
                    check_pem(&ca.key, "PRIVATE KEY", "cluster.ca.key", r);
                }
            } else if is_cp {
                r.err(
                    "cluster.ca.key",
                    "the Kubernetes CA key is required on control plane nodes",
                );
            }
        }
        None => r.err("cluster.ca", "the Kubernetes CA certificate is required"),
    }
    if is_cp {
        if let Some(sa) = &c.service_account {
            check_pem(&sa.key, "PRIVATE KEY", "cluster.serviceAccount.key", r);
        }
        if let Some(agg) = &c.aggregator_ca {
            check_pem(&agg.crt, "CERTIFICATE", "cluster.aggregatorCA.crt", r);
            check_pem(&agg.key, "PRIVATE KEY", "cluster.aggregatorCA.key", r);
        }
    }
    let mut names = HashSet::new();
    for (i, m) in c.inline_manifests.iter().enumerate() {
        if m.name.trim().is_empty() {
            r.err(
                format!("cluster.inlineManifests[{i}].name"),
                "inline manifest name can't be empty",
            );
        }
        if !names.insert(m.name.as_str()) {
            r.err(
                format!("cluster.inlineManifests[{i}].name"),
                format!("inline manifest name {:?} is duplicate", m.name),
            );
        }
    }
    if let Some(d) = &c.discovery {
        if d.enabled.unwrap_or(false) && !d.registries.service.disabled.unwrap_or(false) {
            let ep = if d.registries.service.endpoint.is_empty() {
                "https://discovery.talos.dev/"
            } else {
                d.registries.service.endpoint.as_str()
            };
            match split_url(ep) {
                None => r.err(
                    "cluster.discovery.registries.service.endpoint",
                    format!("cluster discovery service registry endpoint {ep:?} is invalid"),
                ),
                Some(u) => {
                    if !u.path.is_empty() && u.path != "/" {
                        r.err(
                            "cluster.discovery.registries.service.endpoint",
                            "cluster discovery service path should be empty",
                        );
                    }
                }
            }
            if c.id.is_empty() {
                r.err(
                    "cluster.id",
                    "cluster discovery service requires cluster.id",
                );
            }
            if c.secret.is_empty() {
                r.err(
                    "cluster.secret",
                    "cluster discovery service requires cluster.secret",
                );
            }
        }
    }
    if let Some(api) = &c.api_server {
        for (i, san) in api.cert_sans.iter().enumerate() {
            if san.is_empty() {
                r.err(
                    format!("cluster.apiServer.certSANs[{i}]"),
                    "certificate SAN can't be empty",
                );
            }
        }
        for (i, v) in api.extra_volumes.iter().enumerate() {
            check_volume(
                &format!("cluster.apiServer.extraVolumes[{i}]"),
                &v.host_path,
                &v.mount_path,
                r,
            );
        }
    }
    if let Some(cm) = &c.controller_manager {
        for (i, v) in cm.extra_volumes.iter().enumerate() {
            check_volume(
                &format!("cluster.controllerManager.extraVolumes[{i}]"),
                &v.host_path,
                &v.mount_path,
                r,
            );
        }
    }
    if let Some(s) = &c.scheduler {
        for (i, v) in s.extra_volumes.iter().enumerate() {
            check_volume(
                &format!("cluster.scheduler.extraVolumes[{i}]"),
                &v.host_path,
                &v.mount_path,
                r,
            );
        }
    }
}

fn check_volume(path: &str, host: &str, mount: &str, r: &mut Report) {
    if !host.starts_with('/') {
        r.err(
            format!("{path}.hostPath"),
            format!("host path {host:?} must be absolute"),
        );
    }
    if !mount.starts_with('/') {
        r.err(
            format!("{path}.mountPath"),
            format!("mount path {mount:?} must be absolute"),
        );
    }
}

fn validate_cni(cluster: Option<&ClusterConfig>, r: &mut Report) {
    let cni = cluster
        .and_then(|c| c.network.as_ref())
        .and_then(|n| n.cni.as_ref());
    let name = cni
        .map(|c| c.name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("flannel");
    let urls = cni.map(|c| c.urls.as_slice()).unwrap_or_default();
    let flannel_args = cni
        .and_then(|c| c.flannel.as_ref())
        .map(|f| f.extra_args.len())
        .unwrap_or(0);
    let path = "cluster.network.cni";
    match name {
        "flannel" => {
            if !urls.is_empty() {
                r.err(
                    format!("{path}.urls"),
                    "\"urls\" field should be empty for \"flannel\" CNI",
                );
            }
        }
        "none" => {
            if !urls.is_empty() {
                r.err(
                    format!("{path}.urls"),
                    "\"urls\" field should be empty for \"none\" CNI",
                );
            }
            if flannel_args != 0 {
                r.err(
                    format!("{path}.flannel.extraArgs"),
                    "\"flanneldExtraArgs\" field should be empty for \"none\" CNI",
                );
            }
        }
        "custom" => {
            if urls.is_empty() {
                r.warn(
                    format!("{path}.urls"),
                    "\"urls\" field should not be empty for \"custom\" CNI",
                );
            }
            if flannel_args != 0 {
                r.err(
                    format!("{path}.flannel.extraArgs"),
                    "\"flanneldExtraArgs\" field should be empty for \"custom\" CNI",
                );
            }
            for (i, u) in urls.iter().enumerate() {
                if let Err(e) = validate_endpoint_uri(u) {
                    r.err(format!("{path}.urls[{i}]"), format!("{u:?}: {e}"));
                }
            }
        }
        _ => r.err(
            format!("{path}.name"),
            "cni name should be one of [\"flannel\", \"custom\", \"none\"]",
        ),
    }
}

fn validate_network(m: &MachineConfig, r: &mut Report) {
    let Some(net) = &m.network else { return };
    if !net.hostname.is_empty() && !is_valid_dns_name(&net.hostname) {
        r.err(
            "machine.network.hostname",
            format!("{:?} is not a valid hostname", net.hostname),
        );
    }
    for (i, ns) in net.nameservers.iter().enumerate() {
        if ns.parse::<IpAddr>().is_err() {
            r.err(
                format!("machine.network.nameservers[{i}]"),
                format!("invalid nameserver IP address {ns:?}"),
            );
        }
    }
    for (i, h) in net.extra_host_entries.iter().enumerate() {
        if h.ip.parse::<IpAddr>().is_err() {
            r.err(
                format!("machine.network.extraHostEntries[{i}].ip"),
                format!("invalid IP address {:?}", h.ip),
            );
        }
    }
    let mut bonded: HashMap<String, String> = HashMap::new();
    let mut bridged: HashMap<String, String> = HashMap::new();
    for (i, d) in net.interfaces.iter().enumerate() {
        let path = format!("machine.network.interfaces[{i}]");
        if d.bond.is_some() && d.bridge.is_some() {
            r.err(&path, format!("interface {:?} has both bridge and bond sections set: config sections are mutually exclusive", d.interface));
        }
        if let Some(b) = &d.bond {
            for iface in &b.interfaces {
                if let Some(other) = bonded.get(iface) {
                    if *other != d.interface {
                        r.err(format!("{path}.bond.interfaces"), format!("interface {iface:?} is declared as part of two bonds: {other:?} and {:?}", d.interface));
                    }
                }
                if let Some(br) = bridged.get(iface) {
                    r.err(format!("{path}.bond.interfaces"), format!("interface {iface:?} is declared as part of an interface and a bond: {br:?} and {:?}", d.interface));
                }
                bonded.insert(iface.clone(), d.interface.clone());
            }
            if !b.interfaces.is_empty() && !b.device_selectors.is_empty() {
                r.err(format!("{path}.bond"), format!("interface {:?} has both interfaces and selectors set: config sections are mutually exclusive", d.interface));
            }
        }
        if let Some(b) = &d.bridge {
            for iface in &b.interfaces {
                if let Some(other) = bridged.get(iface) {
                    if *other != d.interface {
                        r.err(format!("{path}.bridge.interfaces"), format!("interface {iface:?} is declared as part of two bridges: {other:?} and {:?}", d.interface));
                    }
                }
                if let Some(bo) = bonded.get(iface) {
                    r.err(format!("{path}.bridge.interfaces"), format!("interface {iface:?} is declared as part of an interface and a bond: {bo:?} and {:?}", d.interface));
                }
                bridged.insert(iface.clone(), d.interface.clone());
            }
        }
    }
    for (i, d) in net.interfaces.iter().enumerate() {
        if d.ignore.unwrap_or(false) {
            continue;
        }
        check_device(d, &format!("machine.network.interfaces[{i}]"), &bonded, r);
    }
}

fn check_device(d: &Device, path: &str, bonded: &HashMap<String, String>, r: &mut Report) {
    match (d.interface.is_empty(), d.device_selector.is_some()) {
        (true, false) => r.err(path, "either interface or deviceSelector should be set"),
        (false, true) => r.err(path, "interface and deviceSelector are mutually exclusive"),
        _ => {}
    }
    if d.device_selector
        .as_ref()
        .is_some_and(|s| *s == Default::default())
    {
        r.err(
            format!("{path}.deviceSelector"),
            "config section should contain at least one field",
        );
    }
    if let Some(b) = &d.bond {
        check_bond(b, &format!("{path}.bond"), r);
    }
    if let Some(w) = &d.wireguard {
        let wp = format!("{path}.wireguard");
        if let Err(e) = check_wg_key(&w.private_key) {
            r.err(
                format!("{wp}.privateKey"),
                format!("private key is invalid: {e}"),
            );
        }
        for (i, p) in w.peers.iter().enumerate() {
            let pp = format!("{wp}.peers[{i}]");
            if let Err(e) = check_wg_key(&p.public_key) {
                r.err(
                    format!("{pp}.publicKey"),
                    format!("public key invalid: {e}"),
                );
            }
            if !p.endpoint.is_empty() && !address_has_port(&p.endpoint) {
                r.err(
                    format!("{pp}.endpoint"),
                    format!("peer endpoint {:?} is invalid", p.endpoint),
                );
            }
            for (j, ip) in p.allowed_ips.iter().enumerate() {
                if parse_cidr(ip).is_none() {
                    r.err(
                        format!("{pp}.allowedIPs[{j}]"),
                        format!("peer allowed IP {ip:?} is invalid"),
                    );
                }
            }
        }
    }
    for (i, v) in d.vlans.iter().enumerate() {
        let vp = format!("{path}.vlans[{i}]");
        if !v.addresses.is_empty() && !v.cidr.is_empty() {
            r.err(&vp, "vlan can't have both .cidr and .addresses set");
        }
        if !v.cidr.is_empty() && !is_ip_or_cidr(&v.cidr) {
            r.err(
                format!("{vp}.cidr"),
                format!("invalid address {:?}", v.cidr),
            );
        }
        for (j, a) in v.addresses.iter().enumerate() {
            if !is_ip_or_cidr(a) {
                r.err(
                    format!("{vp}.addresses[{j}]"),
                    format!("invalid address {a:?}"),
                );
            }
        }
        if v.vlan_id == 0 || v.vlan_id > 4094 {
            r.err(
                format!("{vp}.vlanId"),
                format!("invalid VLAN id {} (expected 1-4094)", v.vlan_id),
            );
        }
    }
    if bonded.contains_key(&d.interface)
        && (d.dhcp.unwrap_or(false)
            || !d.cidr.is_empty()
            || !d.addresses.is_empty()
            || d.vip.is_some())
    {
        r.err(
            path,
            "bonded interface shouldn't have any addressing methods configured",
        );
    }
    if !d.addresses.is_empty() && !d.cidr.is_empty() {
        r.err(path, "interface can't have both .cidr and .addresses set");
    }
    if !d.cidr.is_empty() {
        if !is_ip_or_cidr(&d.cidr) {
            r.err(
                format!("{path}.cidr"),
                format!("invalid address {:?}", d.cidr),
            );
        }
        r.warn(format!("{path}.cidr"), format!("{:?}: machine.network.interface.cidr is deprecated, please use machine.network.interface.addresses", d.interface));
    }
    for (j, a) in d.addresses.iter().enumerate() {
        if !is_ip_or_cidr(a) {
            r.err(
                format!("{path}.addresses[{j}]"),
                format!("invalid address {a:?}"),
            );
        }
    }
    if let Some(vip) = &d.vip {
        if vip.ip.parse::<IpAddr>().is_err() {
            r.err(
                format!("{path}.vip.ip"),
                format!("failed to parse {:?} as IP address", vip.ip),
            );
        }
    }
    for (i, route) in d.routes.iter().enumerate() {
        let rp = format!("{path}.routes[{i}]");
        if !route.network.is_empty() && parse_cidr(&route.network).is_none() {
            r.err(
                format!("{rp}.network"),
                format!("{:?}: invalid network address", route.network),
            );
        }
        if !route.gateway.is_empty() && route.gateway.parse::<IpAddr>().is_err() {
            r.err(
                format!("{rp}.gateway"),
                format!("{:?}: invalid network address", route.gateway),
            );
        }
        if route.gateway.is_empty() && route.network.is_empty() {
            r.err(&rp, "either network or gateway should be set");
        }
        if !route.source.is_empty() && route.source.parse::<IpAddr>().is_err() {
            r.err(
                format!("{rp}.source"),
                format!("{:?}: invalid network address", route.source),
            );
        }
    }
}

fn check_bond(b: &Bond, path: &str, r: &mut Report) {
    let one_of = |r: &mut Report, key: &str, value: &str, allowed: &[&str]| {
        if !value.is_empty() && !allowed.contains(&value) {
            r.err(
                format!("{path}.{key}"),
                format!(
                    "invalid value {value:?} (expected one of {})",
                    allowed.join(", ")
                ),
            );
        }
    };
    let mode = b.mode.as_str();
    one_of(
        r,
        "mode",
        mode,
        &[
            "balance-rr",
            "active-backup",
            "balance-xor",
            "broadcast",
            "802.3ad",
            "balance-tlb",
            "balance-alb",
        ],
    );
    one_of(
        r,
        "xmitHashPolicy",
        &b.xmit_hash_policy,
        &["layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"],
    );
    one_of(r, "lacpRate", &b.lacp_rate, &["slow", "fast"]);
    one_of(
        r,
        "arpValidate",
        &b.arp_validate,
        &["none", "active", "backup", "all"],
    );
    one_of(r, "arpAllTargets", &b.arp_all_targets, &["any", "all"]);
    one_of(
        r,
        "primaryReselect",
        &b.primary_reselect,
        &["always", "better", "failure"],
    );
    one_of(
        r,
        "failOverMac",
        &b.fail_over_mac,
        &["none", "active", "follow"],
    );
    one_of(
        r,
        "adSelect",
        &b.ad_select,
        &["stable", "bandwidth", "count"],
    );
    if b.miimon == 0 {
        if b.updelay != 0 {
            r.err(
                format!("{path}.updelay"),
                "bond.upDelay can't be set if miiMon is zero",
            );
        }
        if b.downdelay != 0 {
            r.err(
                format!("{path}.downdelay"),
                "bond.downDelay can't be set if miiMon is zero",
            );
        }
    } else {
        if b.updelay % b.miimon != 0 {
            r.err(
                format!("{path}.updelay"),
                "bond.upDelay should be a multiple of miiMon",
            );
        }
        if b.downdelay % b.miimon != 0 {
            r.err(
                format!("{path}.downdelay"),
                "bond.downDelay should be a multiple of miiMon",
            );
        }
    }
    if !b.arp_ip_target.is_empty() {
        r.err(
            format!("{path}.arpIPTarget"),
            "bond.arpIPTarget is not supported",
        );
    }
    if !b.lacp_rate.is_empty() && mode != "802.3ad" {
        r.err(
            format!("{path}.lacpRate"),
            "bond.lacpRate is only available in 802.3ad mode",
        );
    }
    if !b.ad_actor_system.is_empty() {
        r.err(
            format!("{path}.adActorSystem"),
            "bond.adActorSystem is not supported",
        );
    }
    let ad_alb_tlb = matches!(mode, "802.3ad" | "balance-alb" | "balance-tlb");
    if ad_alb_tlb && !b.arp_validate.is_empty() {
        r.err(
            format!("{path}.arpValidate"),
            format!("bond.arpValidate is not available in {mode} mode"),
        );
    }
    if !matches!(mode, "active-backup" | "balance-alb" | "balance-tlb") && !b.primary.is_empty() {
        r.err(
            format!("{path}.primary"),
            format!("bond.primary is not available in {mode} mode"),
        );
    }
    if ad_alb_tlb && b.arp_interval > 0 {
        r.err(
            format!("{path}.arpInterval"),
            format!("bond.arpInterval is not available in {mode} mode"),
        );
    }
    if mode != "balance-rr" && b.packets_per_slave > 1 {
        r.err(
            format!("{path}.packetsPerSlave"),
            format!("bond.packetsPerSlave is not available in {mode} mode"),
        );
    }
    if !matches!(mode, "balance-alb" | "balance-tlb") && b.tlb_dynamic_lb > 0 {
        r.err(
            format!("{path}.tlbDynamicLb"),
            format!("bond.tlbDynamicLb is not available in {mode} mode"),
        );
    }
    if mode != "802.3ad" && b.ad_actor_sys_prio > 0 {
        r.err(
            format!("{path}.adActorSysPrio"),
            "bond.adActorSysPrio is only available in 802.3ad mode",
        );
    }
    if mode != "802.3ad" && b.ad_user_port_key > 0 {
        r.err(
            format!("{path}.adUserPortKey"),
            "bond.adUserPortKey is only available in 802.3ad mode",
        );
    }
}

fn check_wg_key(key: &str) -> Result<(), String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|e| e.to_string())?;
    if raw.len() != 32 {
        return Err(format!("wrong key {key:?} length: {}", raw.len()));
    }
    Ok(())
}

fn validate_document(doc: &Document, index: usize, r: &mut Report) {
    let p = |key: &str| format!("document {index} ({}).{key}", doc.kind());
    match doc {
        Document::V1Alpha1(_) => {}
        Document::SideroLink(d) => match split_url(&d.api_url) {
            None => r.err(
                p("apiUrl"),
                format!("invalid SideroLink API URL {:?}", d.api_url),
            ),
            Some(u) => {
                if !matches!(u.scheme.as_str(), "https" | "grpc" | "http") {
                    r.err(
                        p("apiUrl"),
                        format!(
                            "unsupported scheme {:?} (expected https, http or grpc)",
                            u.scheme
                        ),
                    );
                }
            }
        },
        Document::ExtensionService(d) => {
            if d.name.is_empty() {
                r.err(p("name"), "name is required");
            }
            for (i, f) in d.config_files.iter().enumerate() {
                if !f.mount_path.starts_with('/') {
                    r.err(
                        p(&format!("configFiles[{i}].mountPath")),
                        format!("mount path {:?} must be absolute", f.mount_path),
                    );
                }
            }
            for (i, e) in d.environment.iter().enumerate() {
                if !e.contains('=') || e.starts_with('=') {
                    r.err(
                        p(&format!("environment[{i}]")),
                        format!("environment variable {e:?} should be in KEY=VALUE form"),
                    );
                }
            }
        }
        Document::WatchdogTimer(d) => {
            if d.device.is_empty() {
                r.err(p("device"), "watchdog device is required");
            }
            if !d.timeout.is_zero() && d.timeout.0 < std::time::Duration::from_secs(10) {
                r.err(
                    p("timeout"),
                    format!(
                        "watchdog timeout {} is too small, minimum is 10s",
                        d.timeout
                    ),
                );
            }
        }
        Document::KmsgLog(d) => {
            if d.name.is_empty() {
                r.err(p("name"), "name is required");
            }
            match split_url(&d.url) {
                None => r.err(p("url"), format!("invalid URL {:?}", d.url)),
                Some(u) => {
                    if u.scheme != "tcp" && u.scheme != "udp" {
                        r.err(
                            p("url"),
                            format!("unsupported scheme {:?} (expected tcp or udp)", u.scheme),
                        );
                    }
                    if u.port.is_none() {
                        r.err(p("url"), "port is required");
                    }
                    if !u.path.is_empty() && u.path != "/" {
                        r.err(p("url"), "path must be empty");
                    }
                }
            }
        }
        Document::EventSink(d) => {
            if !address_has_port(&d.endpoint) {
                r.err(
                    p("endpoint"),
                    format!("endpoint {:?} must be host:port", d.endpoint),
                );
            }
        }
        Document::NetworkDefaultAction(d) => {
            if !matches!(d.ingress.as_str(), "accept" | "block") {
                r.err(
                    p("ingress"),
                    format!(
                        "invalid default action {:?} (expected accept or block)",
                        d.ingress
                    ),
                );
            }
        }
        Document::NetworkRule(d) => {
            if d.name.is_empty() {
                r.err(p("name"), "name is required");
            }
            if d.port_selector.ports.is_empty() {
                r.err(
                    p("portSelector.ports"),
                    "at least one port or port range is required",
                );
            }
            if !matches!(
                d.port_selector.protocol.as_str(),
                "tcp" | "udp" | "icmp" | "icmpv6"
            ) {
                r.err(
                    p("portSelector.protocol"),
                    format!(
                        "invalid protocol {:?} (expected tcp, udp, icmp or icmpv6)",
                        d.port_selector.protocol
                    ),
                );
            }
            for (i, rule) in d.ingress.iter().enumerate() {
                if parse_cidr(&rule.subnet).is_none() {
                    r.err(
                        p(&format!("ingress[{i}].subnet")),
                        format!("invalid subnet {:?}", rule.subnet),
                    );
                }
                if !rule.except.is_empty() && parse_cidr(&rule.except).is_none() {
                    r.err(
                        p(&format!("ingress[{i}].except")),
                        format!("invalid subnet {:?}", rule.except),
                    );
                }
            }
        }
    }
}

// ---- small parsers ---------------------------------------------------------------------------

/// A CIDR (`10.0.0.1/24`, `fd00::/8`): address and prefix length.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn is_ip_or_cidr(s: &str) -> bool {
    if s.contains('/') {
        parse_cidr(s).is_some()
    } else {
        s.parse::<IpAddr>().is_ok()
    }
}

fn is_subnet_or_address(s: &str) -> bool {
    is_ip_or_cidr(s)
}

fn is_bootstrap_token(t: &str) -> bool {
    let ok = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    t.split_once('.')
        .is_some_and(|(a, b)| ok(a, 6) && ok(b, 16))
}

fn is_valid_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() - name.matches('.').count() > 255 {
        return false;
    }
    let trimmed = name
        .strip_suffix('.')
        .or_else(|| name.strip_suffix('_'))
        .unwrap_or(name);
    if trimmed.is_empty() {
        return false;
    }
    trimmed.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
    })
}

fn address_has_port(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some(x) => x,
        None => return false,
    };
    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
}

fn check_label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 || !is_valid_dns_name(p) {
            return Err(format!("prefix {p:?} must be a DNS subdomain"));
        }
    }
    if name.is_empty() {
        return Err(format!("name part of {k:?} must not be empty"));
    }
    check_label_value(name).map_err(|_| {
        format!("name part of {k:?} must be 63 characters or less, alphanumeric, '-', '_' or '.'")
    })
}

fn check_label_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let b = v.as_bytes();
    let ok = b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!("{v:?} must be 63 characters or less, start and end with an alphanumeric character, and contain only alphanumerics, '-', '_' or '.'"))
    }
}

/// The parts of a `scheme://host[:port][/path]` URL that validation needs.
pub(crate) struct UrlParts {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

pub(crate) fn split_url(s: &str) -> Option<UrlParts> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let path = tail.split(['?', '#']).next().unwrap_or("").to_string();
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => {
                if h.contains(':') {
                    return None;
                }
                (h.to_string(), Some(p.parse::<u16>().ok()?))
            }
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(UrlParts {
        scheme: scheme.to_ascii_lowercase(),
        host,
        port,
        path,
    })
}

/// Talos's endpoint check: a parseable URL with a host, IPv6 in brackets, and a port in range.
fn validate_endpoint_uri(ep: &str) -> Result<(), String> {
    let Some((_, rest)) = ep.split_once("://") else {
        return Err("hostname must not be blank".to_string());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.matches(':').count() > 2 && !(authority.contains('[') && authority.contains(']')) {
        return Err("IPv6 addresses MUST be enclosed by square brackets".to_string());
    }
    match split_url(ep) {
        None => Err("not a valid URL (expected scheme://host[:port])".to_string()),
        Some(u) => {
            if u.port == Some(0) {
                return Err("port number must be between 1 and 65535".to_string());
            }
            if u.host.is_empty() {
                return Err("hostname must not be blank".to_string());
            }
            Ok(())
        }
    }
}
