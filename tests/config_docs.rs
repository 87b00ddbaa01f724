//! Tests of the config field documentation table (`talos::config::docs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::collections::HashSet;

use talos::config::docs::{all, lookup};

/// Key paths of the Talos 1.7 JSON schema, in schema order (see the header of the file).
fn schema_paths() -> Vec<String> {
    let text = include_str!("../testdata/config/schema-paths.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(schema_to_doc_path)
        .collect()
}

/// The schema describes `acceptedCAs` as a plain object, but the config holds a list of
/// certificates there; the docs table uses the list path.
fn schema_to_doc_path(path: &str) -> String {
    match path {
        "machine.acceptedCAs.crt" => "machine.acceptedCAs[].crt".to_string(),
        "cluster.acceptedCAs.crt" => "cluster.acceptedCAs[].crt".to_string(),
        other => other.to_string(),
    }
}

#[test]
fn paths_are_unique() {
    let mut seen = HashSet::new();
    for doc in all() {
        assert!(seen.insert(doc.path), "duplicate path {}", doc.path);
    }
}

#[test]
fn every_schema_path_is_documented() {
    let missing: Vec<String> = schema_paths()
        .into_iter()
        .filter(|p| lookup(p).is_none())
        .collect();
    assert!(missing.is_empty(), "undocumented schema paths: {missing:?}");
}

#[test]
fn schema_list_is_not_trivially_small() {
    // Guards against a truncated or empty testdata file making the coverage test vacuous.
    assert!(schema_paths().len() > 400);
}

#[test]
fn table_follows_schema_order() {
    let order: Vec<String> = schema_paths();
    let table: Vec<&str> = all()
        .iter()
        .map(|d| d.path)
        .filter(|p| order.iter().any(|o| o == p))
        .collect();
    assert_eq!(table, order, "table order differs from schema order");
}

#[test]
fn extra_entries_are_known_go_only_fields() {
    let schema: HashSet<String> = schema_paths().into_iter().collect();
    let extra: Vec<&str> = all()
        .iter()
        .map(|d| d.path)
        .filter(|p| !schema.contains(*p))
        .collect();
    assert_eq!(
        extra,
        [
            "persist",
            "machine.network.interfaces[].cidr",
            "machine.network.interfaces[].vlans[].cidr",
            "machine.install.bootloader",
            "cluster.apiServer.resources.requests",
            "cluster.apiServer.resources.limits",
            "cluster.controllerManager.resources.requests",
            "cluster.controllerManager.resources.limits",
            "cluster.scheduler.resources.requests",
            "cluster.scheduler.resources.limits",
            "cluster.etcd.subnet",
            "cluster.allowSchedulingOnMasters",
        ]
    );
}

#[test]
fn descriptions_are_single_short_sentences() {
    for doc in all() {
        let d = doc.description;
        assert!(!d.is_empty(), "{}: empty description", doc.path);
        assert!(!d.contains('\n'), "{}: multi-line description", doc.path);
        assert_eq!(d, d.trim(), "{}: stray whitespace", doc.path);
        assert!(
            d.chars().count() < 120,
            "{}: description too long",
            doc.path
        );
        assert!(
            d.ends_with('.') && !d.ends_with(".."),
            "{}: description must end with one period",
            doc.path
        );
        assert!(!d.contains("  "), "{}: double space", doc.path);
    }
}

#[test]
fn examples_parse_as_yaml() {
    for doc in all() {
        for example in doc.examples {
            assert!(!example.trim().is_empty(), "{}: empty example", doc.path);
            let parsed: Result<serde_yaml::Value, _> = serde_yaml::from_str(example);
            assert!(
                parsed.is_ok(),
                "{}: example does not parse: {:?}\n{example}",
                doc.path,
                parsed.err()
            );
            assert!(
                !example.contains('\t'),
                "{}: example contains a tab",
                doc.path
            );
        }
    }
}

#[test]
fn example_kinds_match_field_shapes() {
    // List fields get list examples, map/object fields get mappings.
    let list = |p: &str| {
        let doc = lookup(p).unwrap_or_else(|| panic!("{p} missing"));
        assert!(!doc.examples.is_empty(), "{p}: no example");
        for ex in doc.examples {
            let v: serde_yaml::Value = serde_yaml::from_str(ex).unwrap();
            assert!(v.is_sequence(), "{p}: example is not a list: {ex}");
        }
    };
    let map = |p: &str| {
        let doc = lookup(p).unwrap_or_else(|| panic!("{p} missing"));
        assert!(!doc.examples.is_empty(), "{p}: no example");
        for ex in doc.examples {
            let v: serde_yaml::Value = serde_yaml::from_str(ex).unwrap();
            assert!(v.is_mapping(), "{p}: example is not a mapping: {ex}");
        }
    };
    for p in [
        "machine.certSANs",
        "machine.kubelet.extraMounts",
        "machine.pods",
        "machine.network.interfaces",
        "machine.network.nameservers",
        "machine.network.extraHostEntries",
        "machine.disks",
        "machine.files",
        "machine.seccompProfiles",
        "machine.install.extraKernelArgs",
        "machine.install.extensions",
        "cluster.network.podSubnets",
        "cluster.network.serviceSubnets",
        "cluster.apiServer.certSANs",
        "cluster.apiServer.admissionControl",
        "cluster.etcd.advertisedSubnets",
        "cluster.extraManifests",
        "cluster.inlineManifests",
        "NetworkRuleConfig.portSelector.ports",
    ] {
        list(p);
    }
    for p in [
        "machine",
        "machine.controlPlane",
        "machine.kubelet",
        "machine.kubelet.extraArgs",
        "machine.kubelet.extraConfig",
        "machine.kubelet.nodeIP",
        "machine.network",
        "machine.network.kubespan",
        "machine.install",
        "machine.install.diskSelector",
        "machine.env",
        "machine.time",
        "machine.sysctls",
        "machine.sysfs",
        "machine.registries",
        "machine.registries.mirrors",
        "machine.registries.config",
        "machine.systemDiskEncryption",
        "machine.udev",
        "machine.logging",
        "machine.kernel",
        "machine.nodeLabels",
        "machine.nodeTaints",
        "machine.features.kubernetesTalosAPIAccess",
        "cluster",
        "cluster.controlPlane",
        "cluster.network",
        "cluster.network.cni",
        "cluster.apiServer",
        "cluster.apiServer.extraArgs",
        "cluster.apiServer.auditPolicy",
        "cluster.apiServer.resources",
        "cluster.controllerManager",
        "cluster.proxy",
        "cluster.scheduler",
        "cluster.discovery",
        "cluster.etcd",
        "cluster.etcd.extraArgs",
        "cluster.coreDNS",
        "cluster.externalCloudProvider",
        "cluster.extraManifestHeaders",
        "cluster.adminKubeconfig",
        "SideroLinkConfig",
        "ExtensionServiceConfig",
        "WatchdogTimerConfig",
        "KmsgLogConfig",
        "EventSinkConfig",
        "NetworkDefaultActionConfig",
        "NetworkRuleConfig",
    ] {
        map(p);
    }
}

#[test]
fn document_examples_carry_their_kind() {
    for kind in [
        "SideroLinkConfig",
        "ExtensionServiceConfig",
        "WatchdogTimerConfig",
        "KmsgLogConfig",
        "EventSinkConfig",
        "NetworkDefaultActionConfig",
        "NetworkRuleConfig",
    ] {
        let doc = lookup(kind).unwrap_or_else(|| panic!("{kind} missing"));
        let v: serde_yaml::Value = serde_yaml::from_str(doc.examples[0]).unwrap();
        assert_eq!(v["kind"].as_str(), Some(kind));
        assert_eq!(v["apiVersion"].as_str(), Some("v1alpha1"));
    }
}

#[test]
fn lookup_finds_entries_and_rejects_unknown_paths() {
    let dhcp = lookup("machine.network.interfaces[].dhcp").expect("dhcp documented");
    assert_eq!(dhcp.path, "machine.network.interfaces[].dhcp");
    assert_eq!(dhcp.examples, ["true"]);

    let endpoints = lookup("machine.registries.mirrors{}.endpoints").expect("mirror endpoints");
    assert!(endpoints.description.contains("/v2"));

    let disk = lookup("machine.install.disk").expect("install disk");
    assert_eq!(disk.examples, ["/dev/sda", "/dev/nvme0"]);

    assert!(lookup("SideroLinkConfig.apiUrl").is_some());
    assert!(lookup("machine.nope").is_none());
    assert!(lookup("").is_none());
    assert!(lookup("machine.network.interfaces.dhcp").is_none());

    // lookup returns the very entry stored in the table.
    let first = &all()[0];
    assert!(std::ptr::eq(lookup(first.path).unwrap(), first));
}

#[test]
fn example_values_of_note() {
    let image = lookup("machine.kubelet.image").unwrap();
    assert_eq!(image.examples, ["ghcr.io/siderolabs/kubelet:v1.30.0"]);
    let filters = lookup("machine.network.kubespan.filters.endpoints").unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(filters.examples[0]).unwrap();
    let items: Vec<&str> = v
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(items, ["0.0.0.0/0", "!192.168.0.0/16", "::/0"]);
    let perms = lookup("machine.files").unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(perms.examples[0]).unwrap();
    assert_eq!(v[0]["path"].as_str(), Some("/tmp/file.txt"));
}
