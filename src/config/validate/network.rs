//! `machine.network` checks: host settings, links (bonds, bridges, VLANs, WireGuard), addresses,
//! routes and KubeSpan.

use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine;

use super::syntax::{
    address_has_port, is_ip_or_cidr, is_subnet_or_address, is_valid_dns_name, parse_cidr,
};
use super::Report;
use crate::config::v1alpha1::{
    Bond, ClusterConfig, Device, DeviceWireguardConfig, MachineConfig, NetworkConfig, Route, Vlan,
};

/// Which bond (or bridge) each member link was declared in.
type Members = HashMap<String, String>;

/// A worker may not hold a virtual (shared) IP, on an interface or on a VLAN.
pub(super) fn check_no_vips(m: &MachineConfig, r: &mut Report) {
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
}

/// `machine.network`: host settings, then link membership, then each interface not ignored.
pub(super) fn validate_network(m: &MachineConfig, r: &mut Report) {
    let Some(net) = &m.network else { return };
    check_host_settings(net, r);
    let bonded = check_link_membership(net, r);
    for (i, d) in net.interfaces.iter().enumerate() {
        if d.ignore.unwrap_or(false) {
            continue;
        }
        check_device(d, &format!("machine.network.interfaces[{i}]"), &bonded, r);
    }
}

/// The hostname, nameservers and extra host entries.
fn check_host_settings(net: &NetworkConfig, r: &mut Report) {
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
}

/// Each link belongs to at most one bond or bridge. Returns the bond members.
fn check_link_membership(net: &NetworkConfig, r: &mut Report) -> Members {
    let mut bonded = Members::new();
    let mut bridged = Members::new();
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
    bonded
}

/// One `machine.network.interfaces[]` entry at `path`.
fn check_device(d: &Device, path: &str, bonded: &Members, r: &mut Report) {
    check_device_selection(d, path, r);
    if let Some(b) = &d.bond {
        check_bond(b, &format!("{path}.bond"), r);
    }
    if let Some(w) = &d.wireguard {
        check_wireguard(w, &format!("{path}.wireguard"), r);
    }
    for (i, v) in d.vlans.iter().enumerate() {
        check_vlan(v, &format!("{path}.vlans[{i}]"), r);
    }
    check_device_addressing(d, path, bonded, r);
    for (i, route) in d.routes.iter().enumerate() {
        check_route(route, &format!("{path}.routes[{i}]"), r);
    }
}

/// Exactly one of `interface` and a non-empty `deviceSelector`.
fn check_device_selection(d: &Device, path: &str, r: &mut Report) {
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
}

/// The WireGuard keys, peer endpoints and allowed IPs.
fn check_wireguard(w: &DeviceWireguardConfig, wp: &str, r: &mut Report) {
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

fn check_wg_key(key: &str) -> Result<(), String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|e| e.to_string())?;
    if raw.len() != 32 {
        return Err(format!("wrong key {key:?} length: {}", raw.len()));
    }
    Ok(())
}

/// A VLAN's addresses and id.
fn check_vlan(v: &Vlan, vp: &str, r: &mut Report) {
    if !v.addresses.is_empty() && !v.cidr.is_empty() {
        r.err(vp, "vlan can't have both .cidr and .addresses set");
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

/// An interface's addresses (none on a bond member; `cidr` deprecated) and its VIP.
fn check_device_addressing(d: &Device, path: &str, bonded: &Members, r: &mut Report) {
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
}

/// A static route: network, gateway (one of them at least) and source.
fn check_route(route: &Route, rp: &str, r: &mut Report) {
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
        r.err(rp, "either network or gateway should be set");
    }
    if !route.source.is_empty() && route.source.parse::<IpAddr>().is_err() {
        r.err(
            format!("{rp}.source"),
            format!("{:?}: invalid network address", route.source),
        );
    }
}

/// A bond at `path`: option values, MII monitor delays, and options its mode does not take.
fn check_bond(b: &Bond, path: &str, r: &mut Report) {
    check_bond_values(b, path, r);
    check_bond_delays(b, path, r);
    check_bond_mode_options(b, path, r);
}

/// Each enumerated option is empty or one of the kernel's names.
fn check_bond_values(b: &Bond, path: &str, r: &mut Report) {
    let options: [(&str, &str, &[&str]); 8] = [
        (
            "mode",
            &b.mode,
            &[
                "balance-rr",
                "active-backup",
                "balance-xor",
                "broadcast",
                "802.3ad",
                "balance-tlb",
                "balance-alb",
            ],
        ),
        (
            "xmitHashPolicy",
            &b.xmit_hash_policy,
            &["layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"],
        ),
        ("lacpRate", &b.lacp_rate, &["slow", "fast"]),
        (
            "arpValidate",
            &b.arp_validate,
            &["none", "active", "backup", "all"],
        ),
        ("arpAllTargets", &b.arp_all_targets, &["any", "all"]),
        (
            "primaryReselect",
            &b.primary_reselect,
            &["always", "better", "failure"],
        ),
        (
            "failOverMac",
            &b.fail_over_mac,
            &["none", "active", "follow"],
        ),
        ("adSelect", &b.ad_select, &["stable", "bandwidth", "count"]),
    ];
    for (key, value, allowed) in options {
        if !value.is_empty() && !allowed.contains(&value) {
            r.err(
                format!("{path}.{key}"),
                format!(
                    "invalid value {value:?} (expected one of {})",
                    allowed.join(", ")
                ),
            );
        }
    }
}

/// `upDelay` and `downDelay` need the MII monitor, and are multiples of its interval.
fn check_bond_delays(b: &Bond, path: &str, r: &mut Report) {
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
}

/// Why an option set on a bond is refused.
enum Refusal {
    Unsupported,
    Only8023ad,
    NotInMode,
}

/// Options Talos does not support, and options the bond's mode does not take.
fn check_bond_mode_options(b: &Bond, path: &str, r: &mut Report) {
    use Refusal::{NotInMode, Only8023ad, Unsupported};
    let mode = b.mode.as_str();
    let ad_alb_tlb = matches!(mode, "802.3ad" | "balance-alb" | "balance-tlb");
    let has_primary = matches!(mode, "active-backup" | "balance-alb" | "balance-tlb");
    let checks = [
        ("arpIPTarget", !b.arp_ip_target.is_empty(), Unsupported),
        (
            "lacpRate",
            !b.lacp_rate.is_empty() && mode != "802.3ad",
            Only8023ad,
        ),
        ("adActorSystem", !b.ad_actor_system.is_empty(), Unsupported),
        (
            "arpValidate",
            ad_alb_tlb && !b.arp_validate.is_empty(),
            NotInMode,
        ),
        ("primary", !has_primary && !b.primary.is_empty(), NotInMode),
        ("arpInterval", ad_alb_tlb && b.arp_interval > 0, NotInMode),
        (
            "packetsPerSlave",
            mode != "balance-rr" && b.packets_per_slave > 1,
            NotInMode,
        ),
        (
            "tlbDynamicLb",
            !matches!(mode, "balance-alb" | "balance-tlb") && b.tlb_dynamic_lb > 0,
            NotInMode,
        ),
        (
            "adActorSysPrio",
            mode != "802.3ad" && b.ad_actor_sys_prio > 0,
            Only8023ad,
        ),
        (
            "adUserPortKey",
            mode != "802.3ad" && b.ad_user_port_key > 0,
            Only8023ad,
        ),
    ];
    for (key, refused, why) in checks {
        if !refused {
            continue;
        }
        let message = match why {
            Unsupported => format!("bond.{key} is not supported"),
            Only8023ad => format!("bond.{key} is only available in 802.3ad mode"),
            NotInMode => format!("bond.{key} is not available in {mode} mode"),
        };
        r.err(format!("{path}.{key}"), message);
    }
}

/// KubeSpan, when enabled: cluster discovery with an id and a secret, MTU, endpoint filters.
pub(super) fn check_kubespan(m: &MachineConfig, cluster: Option<&ClusterConfig>, r: &mut Report) {
    let kubespan = m.network.as_ref().and_then(|n| n.kubespan.as_ref());
    if !kubespan.and_then(|k| k.enabled).unwrap_or(false) {
        return;
    }
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
