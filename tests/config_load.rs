//! Loading, strict decoding errors and round trips of machine configs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::path::Path;

use talos::config::{Config, ConfigError, Document, Mode};

mod common;

fn fixture_path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/config")
        .join(name)
        .display()
        .to_string()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture exists")
}

/// Talos's own v1.7 configs (read in place from the conformance data).
const TALOS_CONFIGS: [&str; 4] = [
    "stability-v1.7-base-controlplane.yaml",
    "stability-v1.7-base-worker.yaml",
    "multidoc-config.yaml",
    "multidoc-expected.yaml",
];

/// Our own fixtures under `testdata/config`.
const OWN_CONFIGS: [&str; 2] = ["kinds-all.yaml", "v1alpha1-everything.yaml"];

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn typed_model_reproduces_talos_output_byte_for_byte() {
    let names = [
        "stability-v1.7-base-controlplane.yaml",
        "stability-v1.7-base-worker.yaml",
        "multidoc-expected.yaml",
    ];
    let Some(paths) =
        common::conformance_files("typed_model_reproduces_talos_output_byte_for_byte", names)
    else {
        return;
    };
    for (name, path) in names.iter().zip(&paths) {
        let bytes = read(path);
        let cfg = Config::from_yaml(&bytes, name).expect("loads");
        let out = cfg.to_yaml().expect("encodes");
        assert_eq!(out, String::from_utf8(bytes).expect("utf8"), "{name}");
    }
}

fn assert_round_trips(name: &str, bytes: &[u8]) {
    let cfg = Config::from_yaml(bytes, name).unwrap_or_else(|e| panic!("{e}"));
    let text = cfg.to_yaml().expect("encodes");
    let again = Config::from_yaml(text.as_bytes(), "round-trip")
        .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    assert_eq!(cfg, again, "{name}");
    assert_eq!(
        again.to_yaml().expect("encodes"),
        text,
        "{name}: output is stable"
    );
}

#[test]
fn own_configs_round_trip() {
    for name in OWN_CONFIGS {
        assert_round_trips(name, &fixture(name));
    }
}

#[test]
fn talos_configs_round_trip() {
    let Some(paths) = common::conformance_files("talos_configs_round_trip", TALOS_CONFIGS) else {
        return;
    };
    for (name, path) in TALOS_CONFIGS.iter().zip(&paths) {
        assert_round_trips(name, &read(path));
    }
}

#[test]
fn stability_configs_validate() {
    let names = [
        "stability-v1.7-base-controlplane.yaml",
        "stability-v1.7-base-worker.yaml",
    ];
    let Some(paths) = common::conformance_files("stability_configs_validate", names) else {
        return;
    };
    for (name, path) in names.iter().zip(&paths) {
        let cfg = Config::from_yaml(&read(path), name).expect("loads");
        let warnings = cfg
            .validate(Mode::Cloud, true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(warnings.is_empty());
        // Metal mode needs an install disk, which the generated base configs lack (as in Talos).
        let err = cfg
            .validate(Mode::Metal, false)
            .expect_err("metal needs install disk");
        assert!(err.to_string().contains("machine.install.disk"), "{err}");
    }
}

#[test]
fn accessors() {
    let Some([path]) = common::conformance_files("accessors", ["multidoc-config.yaml"]) else {
        return;
    };
    let cfg = Config::from_yaml(&read(&path), "multidoc").expect("loads");
    assert_eq!(cfg.documents().len(), 2);
    let v1 = cfg.v1alpha1().expect("has v1alpha1");
    let net = v1
        .machine
        .as_ref()
        .and_then(|m| m.network.as_ref())
        .expect("network");
    assert_eq!(net.hostname, "hostname1");
    assert_eq!(net.interfaces[0].dhcp, Some(true));
    match &cfg.documents()[1] {
        Document::SideroLink(s) => assert!(s.api_url.contains("jointoken=secret")),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn from_values_loads_patch_output() {
    let values: Vec<serde_yaml::Value> = vec![
        serde_yaml::from_str("version: v1alpha1\nmachine:\n  type: worker\n").expect("yaml"),
        serde_yaml::from_str(
            "apiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: 1.2.3.4:8080\n",
        )
        .expect("yaml"),
    ];
    let cfg = Config::from_values(values, "patched").expect("loads");
    assert_eq!(cfg.documents()[1].kind(), "EventSinkConfig");
}

fn decode_err(yaml: &str) -> ConfigError {
    Config::from_yaml(yaml.as_bytes(), "my.yaml").expect_err("must fail")
}

#[test]
fn unknown_key_names_file_document_and_path() {
    let e = decode_err("version: v1alpha1\nmachine:\n  network:\n    interfaces:\n      - interface: eth0\n        dhcpp: true\n");
    let msg = e.to_string();
    assert!(msg.contains("my.yaml"), "{msg}");
    assert!(msg.contains("document 1 (v1alpha1)"), "{msg}");
    assert!(msg.contains("machine.network.interfaces[0].dhcpp"), "{msg}");
    assert!(msg.contains("expected one of"), "{msg}");
    match e {
        ConfigError::Decode { path, .. } => assert_eq!(path, "machine.network.interfaces[0].dhcpp"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unknown_key_in_second_document() {
    let msg = decode_err(
        "version: v1alpha1\n---\napiVersion: v1alpha1\nkind: SideroLinkConfig\napiURL: x\n",
    )
    .to_string();
    assert!(msg.contains("document 2 (SideroLinkConfig)"), "{msg}");
    assert!(msg.contains("apiURL"), "{msg}");
}

#[test]
fn wrong_type_names_path_and_expectation() {
    let msg = decode_err("version: v1alpha1\nmachine:\n  certSANs: notalist\n").to_string();
    assert!(msg.contains("machine.certSANs"), "{msg}");
    assert!(msg.contains("expected a sequence"), "{msg}");
    let msg =
        decode_err("version: v1alpha1\nmachine:\n  features:\n    kubePrism:\n      port: abc\n")
            .to_string();
    assert!(msg.contains("machine.features.kubePrism.port"), "{msg}");
}

#[test]
fn invalid_yaml_names_file_and_location() {
    let msg = decode_err("version: v1alpha1\nmachine: [\n").to_string();
    assert!(msg.starts_with("my.yaml: invalid YAML"), "{msg}");
    assert!(msg.contains("line"), "{msg}");
}

#[test]
fn unknown_kind_and_missing_kind() {
    let msg = decode_err("apiVersion: v1alpha1\nkind: FooConfig\n").to_string();
    assert!(msg.contains("unknown document kind \"FooConfig\""), "{msg}");
    let msg = decode_err("foo: bar\n").to_string();
    assert!(msg.contains("missing kind"), "{msg}");
    let msg = decode_err("- a\n").to_string();
    assert!(msg.contains("expected a mapping"), "{msg}");
}

#[test]
fn duplicates_are_rejected() {
    let msg = decode_err("version: v1alpha1\n---\nversion: v1alpha1\n").to_string();
    assert!(msg.contains("duplicate document: v1alpha1"), "{msg}");
    let doc = "apiVersion: v1alpha1\nkind: KmsgLogConfig\nname: a\nurl: tcp://1.2.3.4:5/\n";
    let msg = decode_err(&format!("{doc}---\n{doc}")).to_string();
    assert!(msg.contains("KmsgLogConfig \"a\""), "{msg}");
}

#[test]
fn typed_values_encode_like_talos() {
    let cfg = Config::from_yaml(&fixture("v1alpha1-everything.yaml"), "everything").expect("loads");
    let out = cfg.to_yaml().expect("encodes");
    assert!(out.contains("permissions: 0o644\n"), "{out}");
    assert!(out.contains("bootTimeout: 2m0s\n"), "{out}");
    assert!(out.contains("size: 100 GB\n"), "{out}");
    // Go map order for string maps.
    let a = out.find("a.example/label").expect("label a");
    let z = out.find("z.example/label").expect("label z");
    assert!(a < z);
}

#[test]
fn truncated_and_mutated_inputs_never_panic() {
    // A cheap stand-in for the fuzz target: every prefix and a set of byte mutations of a real
    // config either load or fail with an error.
    let bytes = fixture("v1alpha1-everything.yaml");
    for end in (0..bytes.len()).step_by(7) {
        let _ = Config::from_yaml(&bytes[..end], "prefix");
    }
    for (i, b) in [
        b':', b'-', b'\n', b' ', b'[', b'{', b'"', b'!', b'&', b'*', 0xff,
    ]
    .iter()
    .cycle()
    .take(600)
    .enumerate()
    {
        let mut m = bytes.clone();
        let pos = (i * 131) % m.len();
        m[pos] = *b;
        if let Ok(cfg) = Config::from_yaml(&m, "mutated") {
            let _ = cfg.validate(Mode::Metal, true);
            let _ = cfg.to_yaml();
        }
    }
}
