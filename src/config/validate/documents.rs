//! Checks of the typed documents (every kind besides v1alpha1). Paths read
//! `document <n> (<kind>).<key>`.

use super::syntax::{address_has_port, check_tcp_udp_url, parse_cidr, split_url};
use super::Report;
use crate::config::{
    Document, EventSinkConfig, ExtensionServiceConfig, KmsgLogConfig, NetworkDefaultActionConfig,
    NetworkRuleConfig, SideroLinkConfig, WatchdogTimerConfig,
};

/// The key path of a field in the document being checked.
type Path<'a> = &'a dyn Fn(&str) -> String;

/// The document at 1-based position `index` in the stream.
pub(super) fn validate_document(doc: &Document, index: usize, r: &mut Report) {
    let p = |key: &str| format!("document {index} ({}).{key}", doc.kind());
    match doc {
        Document::V1Alpha1(_) => {}
        Document::SideroLink(d) => check_siderolink(d, &p, r),
        Document::ExtensionService(d) => check_extension_service(d, &p, r),
        Document::WatchdogTimer(d) => check_watchdog_timer(d, &p, r),
        Document::KmsgLog(d) => check_kmsg_log(d, &p, r),
        Document::EventSink(d) => check_event_sink(d, &p, r),
        Document::NetworkDefaultAction(d) => check_network_default_action(d, &p, r),
        Document::NetworkRule(d) => check_network_rule(d, &p, r),
    }
}

/// `SideroLinkConfig`: an https, http or grpc API URL.
fn check_siderolink(d: &SideroLinkConfig, p: Path<'_>, r: &mut Report) {
    match split_url(&d.api_url) {
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
    }
}

/// `ExtensionServiceConfig`: a name, absolute config file paths, `KEY=VALUE` environment.
fn check_extension_service(d: &ExtensionServiceConfig, p: Path<'_>, r: &mut Report) {
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

/// `WatchdogTimerConfig`: a device, and a timeout of at least 10s when set.
fn check_watchdog_timer(d: &WatchdogTimerConfig, p: Path<'_>, r: &mut Report) {
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

/// `KmsgLogConfig`: a name and a tcp:// or udp:// URL with a port.
fn check_kmsg_log(d: &KmsgLogConfig, p: Path<'_>, r: &mut Report) {
    if d.name.is_empty() {
        r.err(p("name"), "name is required");
    }
    match split_url(&d.url) {
        None => r.err(p("url"), format!("invalid URL {:?}", d.url)),
        Some(u) => check_tcp_udp_url(&u, &p("url"), r),
    }
}

/// `EventSinkConfig`: a `host:port` endpoint.
fn check_event_sink(d: &EventSinkConfig, p: Path<'_>, r: &mut Report) {
    if !address_has_port(&d.endpoint) {
        r.err(
            p("endpoint"),
            format!("endpoint {:?} must be host:port", d.endpoint),
        );
    }
}

/// `NetworkDefaultActionConfig`: accept or block.
fn check_network_default_action(d: &NetworkDefaultActionConfig, p: Path<'_>, r: &mut Report) {
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

/// `NetworkRuleConfig`: a name, ports and a protocol, and ingress subnets.
fn check_network_rule(d: &NetworkRuleConfig, p: Path<'_>, r: &mut Report) {
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
