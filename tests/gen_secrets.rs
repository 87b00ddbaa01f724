//! The secrets bundle: loading/saving round trips, imports, and `talosctl gen secrets`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use talos::secrets::{Bundle, Certificate, PrivateKey, VersionContract};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/secrets")
        .join(name)
}

mod common;

/// Whether `talos::yaml` already emits Talos's layout (4-space indentation); until the config
/// branch lands it is a placeholder, and text comparisons ignore indentation width.
fn talos_style_emitter() -> bool {
    let v: serde_yaml::Value = serde_yaml::from_str("a:\n    b: c\n").unwrap();
    talos::yaml::emit(&v) == "a:\n    b: c\n"
}

/// Lines with their nesting depth (indent / smallest indent) and content.
fn shape(text: &str) -> Vec<(usize, String)> {
    let unit = text
        .lines()
        .map(|l| l.len() - l.trim_start().len())
        .filter(|n| *n > 0)
        .min()
        .unwrap_or(1);
    text.lines()
        .map(|l| {
            let n = l.len() - l.trim_start().len();
            (n / unit, l.trim_start().to_string())
        })
        .collect()
}

fn assert_same_document(expected: &str, actual: &str) {
    if talos_style_emitter() {
        assert_eq!(actual, expected);
    } else {
        assert_eq!(shape(actual), shape(expected));
    }
}

fn check_round_trip(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let bundle = Bundle::load(path).unwrap();
    assert_same_document(&text, &bundle.to_yaml().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("secrets.yaml");
    bundle.save(&out, false).unwrap();
    assert_eq!(Bundle::load(&out).unwrap(), bundle);
}

#[test]
fn fixture_bundle_round_trips_exactly() {
    check_round_trip(&testdata("bundle.yaml"));
}

#[test]
fn talos_stability_bundle_round_trips_exactly() {
    // The stability bundle from Talos 1.7, read in place (never copied into the repo).
    let Some([path]) = common::conformance_files(
        "talos_stability_bundle_round_trips_exactly",
        ["stability-secrets.yaml"],
    ) else {
        return;
    };
    check_round_trip(&path);
    // Keys and certificates written by Go re-encode to the same bytes here.
    let b = Bundle::load(&path).unwrap();
    let pairs = [
        &b.certs.etcd,
        &b.certs.k8s,
        b.certs.k8saggregator.as_ref().unwrap(),
        &b.certs.os,
    ];
    for p in pairs {
        assert_eq!(
            PrivateKey::from_pem(&p.key).unwrap().to_pem().unwrap(),
            p.key
        );
        assert_eq!(Certificate::from_pem(&p.crt).unwrap().to_pem(), p.crt);
    }
    let sa = &b.certs.k8sserviceaccount.as_ref().unwrap().key;
    assert_eq!(&PrivateKey::from_pem(sa).unwrap().to_pem().unwrap(), sa);
}

#[test]
fn controlplane_config_yields_the_same_bundle() {
    let text = std::fs::read_to_string(testdata("controlplane.yaml")).unwrap();
    let from_cfg = Bundle::from_controlplane_config(&text, "controlplane.yaml").unwrap();
    let mut fixture = Bundle::load(&testdata("bundle.yaml")).unwrap();
    fixture.header_comment.clear();
    assert_eq!(from_cfg, fixture);
}

#[test]
fn worker_config_is_refused_with_the_key_name() {
    let text = std::fs::read_to_string(testdata("worker.yaml")).unwrap();
    let err = Bundle::from_controlplane_config(&text, "worker.yaml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker.yaml: machine.ca.key: missing or empty (is this a controlplane config?)"
    );
}

#[test]
fn kubernetes_pki_is_imported_verbatim() {
    let dir = testdata("kubernetes-pki");
    let now = time::OffsetDateTime::now_utc();
    let token = "abcdef.0123456789abcdef";
    let b = Bundle::from_kubernetes_pki(&dir, Some(token), VersionContract::CURRENT, now).unwrap();
    assert_eq!(b.certs.k8s.crt, std::fs::read(dir.join("ca.crt")).unwrap());
    assert_eq!(b.certs.k8s.key, std::fs::read(dir.join("ca.key")).unwrap());
    assert_eq!(
        b.certs.etcd.crt,
        std::fs::read(dir.join("etcd/ca.crt")).unwrap()
    );
    let agg = b.certs.k8saggregator.as_ref().unwrap();
    assert_eq!(
        agg.crt,
        std::fs::read(dir.join("front-proxy-ca.crt")).unwrap()
    );
    let sa = b.certs.k8sserviceaccount.as_ref().unwrap();
    assert_eq!(sa.key, std::fs::read(dir.join("sa.key")).unwrap());
    assert_eq!(b.secrets.bootstraptoken, token);
    assert!(b.os_ca().is_ok());
    b.validate("imported").unwrap();
}

#[test]
fn kubernetes_pki_errors_name_the_problem() {
    let now = time::OffsetDateTime::now_utc();
    let c = VersionContract::CURRENT;
    let err =
        Bundle::from_kubernetes_pki(&testdata("kubernetes-pki"), Some("nope"), c, now).unwrap_err();
    assert!(
        err.to_string().contains("invalid bootstrap token \"nope\""),
        "{err}"
    );
    let err =
        Bundle::from_kubernetes_pki(&testdata("kubernetes-pki/ca.crt"), None, c, now).unwrap_err();
    assert!(
        err.to_string().ends_with("ca.crt is not a directory"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let err = Bundle::from_kubernetes_pki(empty.path(), None, c, now).unwrap_err();
    assert!(err.to_string().contains("ca.crt"), "{err}");
}

// ---- CLI ----

fn talosctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talos"))
        .arg("talosctl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run talos")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn slow_gen_secrets_default_makes_an_rsa_service_account_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = talosctl(dir.path(), &["gen", "secrets"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.path().join("secrets.yaml");
    let b = Bundle::load(&path).unwrap();
    let sa = PrivateKey::from_pem(&b.certs.k8sserviceaccount.unwrap().key).unwrap();
    assert_eq!(sa.algorithm(), talos::secrets::KeyAlgorithm::Rsa);
    let der = sa.to_der().unwrap();
    assert!(
        der.len() > 2300,
        "RSA-4096 PKCS#1 is about 2.3 KiB, got {}",
        der.len()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn gen_secrets_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, "keep me\n").unwrap();
    let out = talosctl(
        dir.path(),
        &["gen", "secrets", "-o", "s.yaml", "--talos-version", "v1.6"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("\"s.yaml\" already exists, use --force to overwrite"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me\n");

    let out = talosctl(
        dir.path(),
        &[
            "gen",
            "secrets",
            "-o",
            "s.yaml",
            "--talos-version",
            "1.6",
            "--force",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let b = Bundle::load(&path).unwrap();
    assert!(b
        .certs
        .k8sserviceaccount
        .unwrap()
        .key
        .starts_with(b"-----BEGIN EC PRIVATE KEY-----"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );
}

#[test]
fn gen_secrets_rejects_a_bad_talos_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = talosctl(dir.path(), &["gen", "secrets", "--talos-version", "latest"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid talos-version"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("secrets.yaml").exists());
}

#[test]
fn gen_secrets_from_kubernetes_pki() {
    let dir = tempfile::tempdir().unwrap();
    let pki = testdata("kubernetes-pki");
    let out = talosctl(
        dir.path(),
        &[
            "gen",
            "secrets",
            "-p",
            pki.to_str().unwrap(),
            "-t",
            "abcdef.0123456789abcdef",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let b = Bundle::load(&dir.path().join("secrets.yaml")).unwrap();
    assert_eq!(b.secrets.bootstraptoken, "abcdef.0123456789abcdef");
    assert_eq!(b.certs.k8s.crt, std::fs::read(pki.join("ca.crt")).unwrap());

    let out = talosctl(
        dir.path(),
        &["gen", "secrets", "-o", "x.yaml", "-p", "/nonexistent/pki"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/pki"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("x.yaml").exists());
}

#[test]
fn gen_secrets_from_controlplane_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = testdata("controlplane.yaml");
    let out = talosctl(
        dir.path(),
        &[
            "gen",
            "secrets",
            "--from-controlplane-config",
            cfg.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let b = Bundle::load(&dir.path().join("secrets.yaml")).unwrap();
    let mut fixture = Bundle::load(&testdata("bundle.yaml")).unwrap();
    fixture.header_comment.clear();
    assert_eq!(b, fixture);

    let worker = testdata("worker.yaml");
    let out = talosctl(
        dir.path(),
        &[
            "gen",
            "secrets",
            "-o",
            "w.yaml",
            "--from-controlplane-config",
            worker.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("machine.ca.key"), "{}", stderr(&out));
    assert!(!dir.path().join("w.yaml").exists());
}
