//! `cluster.*` checks: endpoint, networking and CNI, token, cloud provider, etcd, CAs, inline
//! manifests, discovery and control plane components.

use std::collections::HashSet;

use super::syntax::{
    check_pem, is_bootstrap_token, is_subnet_or_address, is_valid_dns_name, parse_cidr, split_url,
    validate_endpoint_uri,
};
use super::Report;
use crate::config::v1alpha1::ClusterConfig;

/// `cluster`, section by section.
pub(super) fn validate_cluster(cluster: Option<&ClusterConfig>, is_cp: bool, r: &mut Report) {
    let Some(c) = cluster else {
        r.err("cluster", "cluster instructions are required");
        return;
    };
    check_endpoint(c, r);
    check_network(c, r);
    if !c.token.is_empty() && !is_bootstrap_token(&c.token) {
        r.err(
            "cluster.token",
            "bootstrap token must match [a-z0-9]{6}.[a-z0-9]{16}",
        );
    }
    check_external_cloud_provider(c, r);
    check_etcd(c, is_cp, r);
    check_ca(c, is_cp, r);
    if is_cp {
        check_control_plane_keys(c, r);
    }
    check_inline_manifests(c, r);
    check_discovery(c, r);
    check_components(c, r);
}

/// `cluster.controlPlane.endpoint`: required, an https URL.
fn check_endpoint(c: &ClusterConfig, r: &mut Report) {
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
}

/// `cluster.network`: the DNS domain and the pod and service subnets.
fn check_network(c: &ClusterConfig, r: &mut Report) {
    let Some(net) = &c.network else { return };
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

/// `cluster.externalCloudProvider`: manifests only when enabled, each a valid URL.
fn check_external_cloud_provider(c: &ClusterConfig, r: &mut Report) {
    let Some(ecp) = &c.external_cloud_provider else {
        return;
    };
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

/// `cluster.etcd`: control planes only, with its CA and valid subnets.
fn check_etcd(c: &ClusterConfig, is_cp: bool, r: &mut Report) {
    let Some(etcd) = &c.etcd else { return };
    if !is_cp {
        r.err(
            "cluster.etcd",
            "etcd config is only allowed on control plane machines",
        );
        return;
    }
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

/// `cluster.ca`: the certificate always, the key on control planes only.
fn check_ca(c: &ClusterConfig, is_cp: bool, r: &mut Report) {
    let Some(ca) = &c.ca else {
        r.err("cluster.ca", "the Kubernetes CA certificate is required");
        return;
    };
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

/// The service account key and the aggregator CA of a control plane.
fn check_control_plane_keys(c: &ClusterConfig, r: &mut Report) {
    if let Some(sa) = &c.service_account {
        check_pem(&sa.key, "PRIVATE KEY", "cluster.serviceAccount.key", r);
    }
    if let Some(agg) = &c.aggregator_ca {
        check_pem(&agg.crt, "CERTIFICATE", "cluster.aggregatorCA.crt", r);
        check_pem(&agg.key, "PRIVATE KEY", "cluster.aggregatorCA.key", r);
    }
}

/// `cluster.inlineManifests`: named, names unique.
fn check_inline_manifests(c: &ClusterConfig, r: &mut Report) {
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
}

/// `cluster.discovery` with the service registry: its endpoint, and the cluster id and secret.
fn check_discovery(c: &ClusterConfig, r: &mut Report) {
    let Some(d) = &c.discovery else { return };
    if !d.enabled.unwrap_or(false) || d.registries.service.disabled.unwrap_or(false) {
        return;
    }
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

/// The API server's certificate SANs, and the extra volumes of the API server, controller
/// manager and scheduler.
fn check_components(c: &ClusterConfig, r: &mut Report) {
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

/// `cluster.network.cni` of a control plane: a known name, with the fields that name takes.
pub(super) fn validate_cni(cluster: Option<&ClusterConfig>, r: &mut Report) {
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
