//! Config patching: Talos 1.7's multi-document patch cases through the library, and
//! `talosctl machineconfig patch` through the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;
use talos::config::patch::{self, PatchError};

mod common;

/// Our own fixtures under `testdata/patch`.
fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/patch")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).unwrap()
}

fn at(name: &str) -> String {
    at_path(&testdata(name))
}

/// A `--patch` argument reading the file at `path`.
fn at_path(path: &Path) -> String {
    format!("@{}", path.display())
}

/// Talos's multi-document patch case, read in place from the conformance data.
struct Multidoc {
    config: PathBuf,
    strategic1: PathBuf,
    strategic2: PathBuf,
    jsonpatch: PathBuf,
    expected: PathBuf,
}

/// The multidoc conformance files, or `None` (after the skip notice for `test`).
fn multidoc(test: &str) -> Option<Multidoc> {
    let [config, strategic1, strategic2, jsonpatch, expected] = common::conformance_files(
        test,
        [
            "multidoc-config.yaml",
            "multidoc-strategic1.yaml",
            "multidoc-strategic2.yaml",
            "multidoc-jsonpatch.yaml",
            "multidoc-expected.yaml",
        ],
    )?;
    Some(Multidoc {
        config,
        strategic1,
        strategic2,
        jsonpatch,
        expected,
    })
}

/// Drops the zero-valued keys only Talos's typed encoder writes (`type: ""`, `certSANs: []`,
/// `cluster: null`), so value trees can be compared with Talos's output.
fn strip_zero(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            m.retain(|_, v| {
                !(v.is_null()
                    || v.as_str() == Some("")
                    || v.as_sequence().is_some_and(|s| s.is_empty()))
            });
            m.iter_mut().for_each(|(_, v)| strip_zero(v));
        }
        Value::Sequence(s) => s.iter_mut().for_each(strip_zero),
        _ => {}
    }
}

fn normalized(mut docs: Vec<Value>) -> Vec<Value> {
    docs.iter_mut().for_each(strip_zero);
    docs
}

fn talosctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_talos"))
        .arg("talosctl")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn multidoc_strategic_matches_talos() {
    let Some(m) = multidoc("multidoc_strategic_matches_talos") else {
        return;
    };
    let patches = patch::load_patches(&[at_path(&m.strategic1), at_path(&m.strategic2)]).unwrap();
    let docs = patch::parse_documents(&common::read_to_string(&m.config)).unwrap();
    let out = patch::apply(docs, &patches).unwrap();
    let expected = patch::parse_documents(&common::read_to_string(&m.expected)).unwrap();
    assert_eq!(normalized(out), normalized(expected));
}

#[test]
fn multidoc_json6902_is_refused() {
    let Some(m) = multidoc("multidoc_json6902_is_refused") else {
        return;
    };
    let patches = patch::load_patches(&[at_path(&m.jsonpatch), at_path(&m.strategic1)]).unwrap();
    let docs = patch::parse_documents(&common::read_to_string(&m.config)).unwrap();
    let err = patch::apply(docs, &patches).unwrap_err();
    assert!(matches!(err, PatchError::Json6902MultiDoc));
    assert_eq!(
        err.to_string(),
        "JSON6902 patches are not supported for multi-document machine configuration"
    );
}

#[test]
fn cli_patch_to_file_and_stdout() {
    let Some(m) = multidoc("cli_patch_to_file_and_stdout") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("sub/out.yaml");
    let cfg = &m.config;
    let o = talosctl(&[
        "machineconfig",
        "patch",
        cfg.to_str().unwrap(),
        "-p",
        &at_path(&m.strategic1),
        "--patch",
        &at_path(&m.strategic2),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty());
    let got = patch::parse_documents(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let expected = patch::parse_documents(&common::read_to_string(&m.expected)).unwrap();
    assert_eq!(normalized(got), normalized(expected.clone()));

    // The `mc` alias, output on stdout.
    let o = talosctl(&[
        "mc",
        "patch",
        cfg.to_str().unwrap(),
        "-p",
        &at_path(&m.strategic1),
        "-p",
        &common::read_to_string(&m.strategic2),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = patch::parse_documents(&String::from_utf8(o.stdout).unwrap()).unwrap();
    assert_eq!(normalized(got), normalized(expected));
}

#[test]
fn cli_stability_patch_appends_extra_mount() {
    let Some([mount_patch]) = common::conformance_files(
        "cli_stability_patch_appends_extra_mount",
        ["stability-patch.yaml"],
    ) else {
        return;
    };
    let cfg = testdata("base-worker.yaml");
    let o = talosctl(&[
        "mc",
        "patch",
        cfg.to_str().unwrap(),
        "-p",
        &at_path(&mount_patch),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = patch::parse_documents(&String::from_utf8(o.stdout).unwrap()).unwrap();
    let mounts = got[0]["machine"]["kubelet"]["extraMounts"]
        .as_sequence()
        .unwrap();
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[1]["source"], Value::from("/var/opt"));
    assert_eq!(mounts[1]["options"][0], Value::from("rshared"));
    assert_eq!(
        got[0]["machine"]["kubelet"]["image"],
        Value::from("ghcr.io/siderolabs/kubelet:v1.30.0")
    );
}

#[test]
fn cli_json_patch_inline() {
    let cfg = testdata("base-worker.yaml");
    let o = talosctl(&[
        "mc",
        "patch",
        cfg.to_str().unwrap(),
        "-p",
        r#"[{"op": "replace", "path": "/cluster/network/podSubnets", "value": ["10.0.0.0/8"]}]"#,
        "-p",
        "- op: remove\n  path: /machine/install\n",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = patch::parse_documents(&String::from_utf8(o.stdout).unwrap()).unwrap();
    assert_eq!(
        got[0]["cluster"]["network"]["podSubnets"][0],
        Value::from("10.0.0.0/8")
    );
    assert!(got[0]["machine"].get("install").is_none());
}

#[test]
fn cli_errors_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.yaml");
    // Our own two-document config and JSON patch (this test needs no conformance data).
    let cfg = dir.path().join("multidoc.yaml");
    std::fs::write(
        &cfg,
        "version: v1alpha1\nmachine:\n  network:\n    interfaces:\n      - interface: eth0\n        \
         dhcp: true\n---\napiVersion: v1alpha1\nkind: SideroLinkConfig\napiUrl: https://example.test/join\n",
    )
    .unwrap();
    let json_patch = dir.path().join("jsonpatch.yaml");
    std::fs::write(
        &json_patch,
        "- op: add\n  path: /machine/network/interfaces/0/mtu\n  value: 1400\n",
    )
    .unwrap();
    let missing = dir.path().join("nope.yaml");

    // Unreadable @file: the error names the file.
    let o = talosctl(&[
        "mc",
        "patch",
        cfg.to_str().unwrap(),
        "-p",
        &format!("@{}", missing.display()),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(!out_path.exists());

    // `$patch: delete` is not in Talos 1.7: unknown key.
    let o = talosctl(&[
        "mc",
        "patch",
        cfg.to_str().unwrap(),
        "-p",
        &at("dollar-patch.yaml"),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("unknown keys found during decoding") && stderr.contains("$patch"),
        "{stderr}"
    );
    assert!(!out_path.exists());

    // JSON patch on a multi-document config.
    let o = talosctl(&[
        "mc",
        "patch",
        cfg.to_str().unwrap(),
        "-p",
        &at_path(&json_patch),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(
            "JSON6902 patches are not supported for multi-document machine configuration"
        ),
        "{stderr}"
    );
    assert!(!out_path.exists());

    // Missing config file.
    let o = talosctl(&[
        "mc",
        "patch",
        missing.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.yaml"));
    assert!(!out_path.exists());
}

#[test]
fn cli_no_patch_copies_input() {
    let cfg = testdata("base-worker.yaml");
    let o = talosctl(&["mc", "patch", cfg.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!("{}\n", read("base-worker.yaml"))
    );
}

/// Strategic, JSON (two, merged into one) and strategic patches in a row, keyed lists at two
/// levels (interfaces by name, VLANs by id): the same sequence as Talos's `TestApply`, on our
/// own fixture. The result, written through the typed model, is checked byte for byte.
#[test]
fn keyed_sequence_merges_like_talos() {
    let patches = patch::load_patches(&[
        at("keyed-strategic1.yaml"),
        at("keyed-jsonpatch1.yaml"),
        at("keyed-jsonpatch2.yaml"),
        at("keyed-strategic2.yaml"),
        at("keyed-strategic3.yaml"),
    ])
    .unwrap();
    assert_eq!(patches.len(), 4, "the two JSON patches merge into one");
    let docs = patch::parse_documents(&read("keyed-config.yaml")).unwrap();
    let out = patch::apply(docs, &patches).unwrap();
    let typed = talos::config::Config::from_values(out, "keyed-config.yaml").unwrap();
    assert_eq!(typed.to_yaml().unwrap(), read("keyed-expected.yaml"));
}

/// Through the CLI and the typed model: Talos's multi-document case gives Talos's exact bytes.
#[test]
fn cli_multidoc_output_is_talos_bytes() {
    let shared = common::conformance_dir();
    if !shared.join("multidoc-expected.yaml").exists() {
        common::skip("cli_multidoc_output_is_talos_bytes");
        return;
    }
    let f = |n: &str| shared.join(n).display().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.yaml");
    let p1 = format!("@{}", f("multidoc-strategic1.yaml"));
    let p2 = format!("@{}", f("multidoc-strategic2.yaml"));
    let o = talosctl(&[
        "mc",
        "patch",
        &f("multidoc-config.yaml"),
        "-p",
        &p1,
        "-p",
        &p2,
        "-o",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(&out).expect("output"),
        std::fs::read_to_string(shared.join("multidoc-expected.yaml")).expect("expected")
    );
}
