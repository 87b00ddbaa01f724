//! Validation rules, each error naming its key path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use talos::config::{Config, Mode};

fn base() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/config/v1alpha1-everything.yaml");
    std::fs::read_to_string(p).expect("fixture")
}

fn errors_of(text: &str, mode: Mode) -> String {
    let cfg = Config::from_yaml(text.as_bytes(), "t.yaml").unwrap_or_else(|e| panic!("{e}"));
    match cfg.validate(mode, false) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn everything_fixture_is_valid() {
    assert_eq!(errors_of(&base(), Mode::Metal), "");
}

#[test]
fn collects_all_errors_with_paths() {
    let text = base()
        .replace("endpoint: https://1.2.3.4:6443", "endpoint: base:6443")
        .replace("podSubnets: [10.244.0.0/16]", "podSubnets: [10.244.0.0/99]")
        .replace(
            "addresses: [192.168.2.0/24]",
            "addresses: [192.168.2.0/24, nonsense]",
        )
        .replace("gateway: 192.168.2.1", "gateway: 192.168.2.x")
        .replace("type: controlplane", "type: boss")
        .replace("token: inn7ol.u4ehnti8qyls9ymo", "token: short")
        .replace("vlanId: 100", "vlanId: 5000")
        .replace("mode: 802.3ad", "mode: 802.3ab")
        .replace("format: json_lines", "format: xml");
    let e = errors_of(&text, Mode::Metal);
    for needle in [
        "cluster.controlPlane.endpoint",
        "cluster.network.podSubnets[0]",
        "machine.network.interfaces[0].addresses[1]",
        "machine.network.interfaces[0].routes[0].gateway",
        "machine.type: unknown machine type \"boss\"",
        "cluster.token",
        "machine.network.interfaces[0].vlans[0].vlanId",
        "machine.network.interfaces[1].bond.mode",
        "machine.logging.destinations[0].format",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
    assert!(
        e.starts_with("9 errors occurred") || e.contains("errors occurred"),
        "{e}"
    );
}

#[test]
fn install_disk_required_only_in_metal() {
    let text = base().replace("    disk: /dev/sda\n    diskSelector:\n      size: \">= 1TB\"\n      model: WDC*\n      type: ssd\n", "");
    assert!(errors_of(&text, Mode::Metal).contains("machine.install.disk"));
    assert_eq!(errors_of(&text, Mode::Cloud), "");
}

#[test]
fn worker_rules() {
    let text = base().replace("type: controlplane", "type: worker");
    let e = errors_of(&text, Mode::Cloud);
    for needle in [
        "machine.network.interfaces[0].vip",
        "machine.ca.key",
        "cluster.ca.key",
        "cluster.etcd",
        "machine.features.kubernetesTalosAPIAccess.enabled",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
}

#[test]
fn bad_certificates_are_reported() {
    let text = base().replacen("crt: LS0t", "crt: ZZZ*LS0t", 1);
    let e = errors_of(&text, Mode::Cloud);
    assert!(e.contains("machine.ca.crt: not valid base64"), "{e}");
}

#[test]
fn other_documents_are_validated() {
    let text = format!(
        "{}---\napiVersion: v1alpha1\nkind: WatchdogTimerConfig\ndevice: /dev/watchdog0\ntimeout: 5s\n---\napiVersion: v1alpha1\nkind: NetworkRuleConfig\nname: r\nportSelector:\n  ports: [1]\n  protocol: sctp\ningress:\n  - subnet: 1.2.3.0/40\n",
        base()
    );
    let e = errors_of(&text, Mode::Cloud);
    assert!(
        e.contains("document 2 (WatchdogTimerConfig).timeout"),
        "{e}"
    );
    assert!(
        e.contains("document 3 (NetworkRuleConfig).portSelector.protocol"),
        "{e}"
    );
    assert!(
        e.contains("document 3 (NetworkRuleConfig).ingress[0].subnet"),
        "{e}"
    );
}
