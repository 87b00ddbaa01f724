//! The Talos-style emitter reproduces Talos's own output byte for byte.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod common;

/// The text of conformance file `name`, or `None` (after the skip notice for `test`).
fn conformance(test: &str, name: &str) -> Option<String> {
    let [path] = common::conformance_files(test, [name])?;
    Some(common::read_to_string(&path))
}

fn reemit_documents(text: &str) -> String {
    let docs: Vec<&str> = text.split("---\n").collect();
    docs.iter()
        .map(|doc| {
            let value: serde_yaml::Value = serde_yaml::from_str(doc).expect("fixture parses");
            talos::yaml::emit(&value)
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn controlplane_is_byte_identical() {
    let Some(text) = conformance(
        "controlplane_is_byte_identical",
        "stability-v1.7-base-controlplane.yaml",
    ) else {
        return;
    };
    assert_eq!(reemit_documents(&text), text);
}

#[test]
fn worker_is_byte_identical() {
    let Some(text) = conformance(
        "worker_is_byte_identical",
        "stability-v1.7-base-worker.yaml",
    ) else {
        return;
    };
    assert_eq!(reemit_documents(&text), text);
}

#[test]
fn multidoc_expected_is_byte_identical() {
    let Some(text) = conformance(
        "multidoc_expected_is_byte_identical",
        "multidoc-expected.yaml",
    ) else {
        return;
    };
    assert_eq!(reemit_documents(&text), text);
}

#[test]
fn secrets_bundle_layout() {
    // The secrets bundle is written by the same encoder (its comment line aside).
    let Some(text) = conformance("secrets_bundle_layout", "stability-secrets.yaml") else {
        return;
    };
    let body = text
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    assert_eq!(reemit_documents(body), body);
}

#[test]
fn to_string_serializes_structs_in_field_order() {
    #[derive(serde::Serialize)]
    struct Inner {
        z: Vec<String>,
        a: Option<u32>,
    }
    #[derive(serde::Serialize)]
    struct Outer {
        name: String,
        inner: Inner,
        empty: Vec<u8>,
    }
    let v = Outer {
        name: "".into(),
        inner: Inner {
            z: vec!["1".into(), "x".into()],
            a: None,
        },
        empty: vec![],
    };
    let got = talos::yaml::to_string(&v).expect("encodes");
    assert_eq!(
        got,
        "name: \"\"\ninner:\n    z:\n        - \"1\"\n        - x\n    a: null\nempty: []\n"
    );
}
