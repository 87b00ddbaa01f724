//! `talosctl gen config`: Talos's stability output, flags, patches, comments, and bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::path::Path;
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml::Value;
use talos::config::{Config, Mode};

mod common;

/// Our own secrets bundle fixture (no key generation in these tests).
const SECRETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/secrets/bundle.yaml");

fn talosctl(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talos"))
        .arg("talosctl")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run talos")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn parse_all(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("valid yaml"))
        .collect()
}

/// Talos's stability test: its secrets, cluster `base`, endpoint `https://base:6443`,
/// Kubernetes 1.28.0, contract v1.7, no install options, comments off → byte-identical output.
#[test]
fn stability_output_is_byte_identical_to_talos() {
    let Some([secrets, cp, worker]) = common::conformance_files(
        "stability_output_is_byte_identical_to_talos",
        [
            "stability-secrets.yaml",
            "stability-v1.7-base-controlplane.yaml",
            "stability-v1.7-base-worker.yaml",
        ],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = secrets.display().to_string();
    let out = talosctl(
        &[
            "gen",
            "config",
            "base",
            "https://base:6443",
            "--with-secrets",
            &secrets,
            "--kubernetes-version",
            "1.28.0",
            "--talos-version",
            "v1.7",
            "--install-disk",
            "",
            "--install-image",
            "",
            "--with-docs=false",
            "--with-examples=false",
            "-o",
            "out",
        ],
        dir.path(),
    );
    ok(&out);
    let ours_cp = std::fs::read_to_string(dir.path().join("out/controlplane.yaml")).expect("cp");
    let ours_w = std::fs::read_to_string(dir.path().join("out/worker.yaml")).expect("worker");
    assert_eq!(ours_cp, std::fs::read_to_string(cp).expect("talos cp"));
    assert_eq!(
        ours_w,
        std::fs::read_to_string(worker).expect("talos worker")
    );
}

#[test]
fn default_outputs_load_validate_and_carry_the_right_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = talosctl(
        &[
            "gen",
            "config",
            "demo",
            "https://10.5.0.2:6443",
            "--with-secrets",
            SECRETS,
        ],
        dir.path(),
    );
    ok(&out);
    assert_eq!(
        files_in(dir.path()),
        vec!["controlplane.yaml", "talosconfig", "worker.yaml"]
    );
    for (file, kind) in [
        ("controlplane.yaml", "controlplane"),
        ("worker.yaml", "worker"),
    ] {
        let text = std::fs::read(dir.path().join(file)).expect("read");
        let cfg = Config::from_yaml(&text, file).expect("loads strictly");
        cfg.validate(Mode::Cloud, false).expect("valid for cloud");
        let v1 = cfg.v1alpha1().expect("v1alpha1 doc");
        let machine = v1.machine.as_ref().expect("machine");
        let cluster = v1.cluster.as_ref().expect("cluster");
        assert_eq!(machine.machine_type, kind);
        let install = machine.install.as_ref().expect("install");
        assert_eq!(install.disk, "/dev/sda");
        assert_eq!(install.image, "ghcr.io/siderolabs/installer:v1.7.0");
        assert_eq!(
            machine.kubelet.as_ref().map(|k| k.image.as_str()),
            Some("ghcr.io/siderolabs/kubelet:v1.30.0")
        );
        let os_ca = machine.ca.as_ref().expect("machine.ca");
        let k8s_ca = cluster.ca.as_ref().expect("cluster.ca");
        assert!(!os_ca.crt.is_empty() && !k8s_ca.crt.is_empty());
        if kind == "worker" {
            // Workers carry the CA certificates without their keys, and no control-plane PKI.
            assert!(os_ca.key.is_empty() && k8s_ca.key.is_empty());
            assert!(cluster.aggregator_ca.is_none() && cluster.service_account.is_none());
            assert!(cluster.etcd.is_none() && cluster.api_server.is_none());
        } else {
            assert!(!os_ca.key.is_empty() && !k8s_ca.key.is_empty());
            assert!(cluster.service_account.is_some() && cluster.etcd.is_some());
            let sans = &cluster.api_server.as_ref().expect("apiServer").cert_sans;
            assert_eq!(sans, &vec!["10.5.0.2".to_string()]);
        }
    }
}

#[test]
fn talosconfig_has_an_admin_client_certificate() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    ok(&talosctl(
        &[
            "gen",
            "config",
            "demo",
            "https://10.5.0.2:6443",
            "--with-secrets",
            SECRETS,
            "-t",
            "talosconfig",
            "-o",
            "tc",
        ],
        dir.path(),
    ));
    let text = std::fs::read_to_string(dir.path().join("tc")).expect("talosconfig");
    let v: Value = serde_yaml::from_str(&text).expect("yaml");
    assert_eq!(v["context"], Value::from("demo"));
    let ctx = &v["contexts"]["demo"];
    assert_eq!(ctx["endpoints"], Value::Sequence(vec![]));
    let crt = base64::engine::general_purpose::STANDARD
        .decode(ctx["crt"].as_str().expect("crt"))
        .expect("base64");
    let pem = pem::parse(crt).expect("pem");
    let (_, cert) = x509_parser::parse_x509_certificate(pem.contents()).expect("x509");
    let orgs: Vec<_> = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .collect();
    assert_eq!(orgs, vec!["os:admin"]);
    let eku = cert
        .extended_key_usage()
        .expect("eku ext")
        .expect("eku present")
        .value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_eq!(
        cert.public_key().algorithm.algorithm.to_id_string(),
        "1.3.101.112",
        "Ed25519"
    );
    // Signed by the OS CA of the bundle.
    let bundle = talos::secrets::Bundle::load(Path::new(SECRETS)).expect("bundle");
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&bundle.certs.os.crt);
    assert_eq!(ctx["ca"].as_str(), Some(ca_b64.as_str()));
}

#[test]
fn comments_change_nothing_but_comments() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, extra) in [
        ("plain", vec!["--with-docs=false", "--with-examples=false"]),
        ("docs", vec![]),
    ] {
        let mut args = vec![
            "gen",
            "config",
            "demo",
            "https://10.5.0.2:6443",
            "--with-secrets",
            SECRETS,
            "-t",
            "controlplane,worker",
            "-o",
            name,
        ];
        args.extend(extra);
        ok(&talosctl(&args, dir.path()));
    }
    for f in ["controlplane.yaml", "worker.yaml"] {
        let plain = std::fs::read_to_string(dir.path().join("plain").join(f)).expect("plain");
        let docs = std::fs::read_to_string(dir.path().join("docs").join(f)).expect("docs");
        assert!(docs.contains(" # ") && !plain.contains('#'));
        assert_eq!(parse_all(&plain), parse_all(&docs), "{f}");
    }
}

#[test]
fn patches_apply_per_machine_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("all.yaml"),
        "machine:\n  network:\n    hostname: node-a\n",
    )
    .expect("write patch");
    ok(&talosctl(
        &[
            "gen",
            "config",
            "demo",
            "https://10.5.0.2:6443",
            "--with-secrets",
            SECRETS,
            "--config-patch",
            "@all.yaml",
            "--config-patch-control-plane",
            "cluster:\n  allowSchedulingOnControlPlanes: true\n",
            "--config-patch-worker",
            r#"[{"op":"add","path":"/machine/install/wipe","value":true}]"#,
            "-t",
            "controlplane,worker",
            "-o",
            "out",
            "--with-docs=false",
            "--with-examples=false",
        ],
        dir.path(),
    ));
    let load = |f: &str| {
        let text = std::fs::read(dir.path().join("out").join(f)).expect("read");
        Config::from_yaml(&text, f).expect("loads")
    };
    let cp = load("controlplane.yaml");
    let w = load("worker.yaml");
    for cfg in [&cp, &w] {
        let net = cfg
            .v1alpha1()
            .and_then(|v| v.machine.as_ref())
            .and_then(|m| m.network.as_ref());
        assert_eq!(net.map(|n| n.hostname.as_str()), Some("node-a"));
    }
    let cp_v = cp.v1alpha1().expect("doc");
    assert_eq!(
        cp_v.cluster
            .as_ref()
            .and_then(|c| c.allow_scheduling_on_control_planes),
        Some(true)
    );
    let w_v = w.v1alpha1().expect("doc");
    assert_eq!(
        w_v.cluster
            .as_ref()
            .and_then(|c| c.allow_scheduling_on_control_planes),
        None
    );
    assert_eq!(
        w_v.machine
            .as_ref()
            .and_then(|m| m.install.as_ref())
            .and_then(|i| i.wipe),
        Some(true)
    );
    assert_eq!(
        cp_v.machine
            .as_ref()
            .and_then(|m| m.install.as_ref())
            .and_then(|i| i.wipe),
        Some(false)
    );
}

#[test]
fn flags_shape_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(&talosctl(
        &[
            "gen",
            "config",
            "demo",
            "https://10.5.0.2:6443",
            "--with-secrets",
            SECRETS,
            "--kubernetes-version",
            "v1.29.1",
            "--install-disk",
            "/dev/vda",
            "--additional-sans",
            "a.example,10.0.0.9",
            "--dns-domain",
            "corp.local",
            "--registry-mirror",
            "docker.io=http://10.5.0.1:5000",
            "--with-kubespan",
            "--with-cluster-discovery=false",
            "--persist=false",
            "-t",
            "controlplane",
            "-o",
            "cp.yaml",
        ],
        dir.path(),
    ));
    let text = std::fs::read(dir.path().join("cp.yaml")).expect("read");
    let cfg = Config::from_yaml(&text, "cp.yaml").expect("loads");
    let v = cfg.v1alpha1().expect("doc");
    let m = v.machine.as_ref().expect("machine");
    let c = v.cluster.as_ref().expect("cluster");
    assert_eq!(v.persist, Some(false));
    assert_eq!(
        m.install.as_ref().map(|i| i.disk.as_str()),
        Some("/dev/vda")
    );
    assert_eq!(
        m.cert_sans,
        vec!["a.example".to_string(), "10.0.0.9".to_string()]
    );
    assert_eq!(
        m.registries
            .mirrors
            .get("docker.io")
            .map(|r| r.endpoints.clone()),
        Some(vec!["http://10.5.0.1:5000".to_string()])
    );
    assert_eq!(
        m.network
            .as_ref()
            .and_then(|n| n.kubespan.as_ref())
            .and_then(|k| k.enabled),
        Some(true)
    );
    assert_eq!(c.discovery.as_ref().and_then(|d| d.enabled), Some(false));
    assert_eq!(
        c.network.as_ref().map(|n| n.dns_domain.as_str()),
        Some("corp.local")
    );
    let api = c.api_server.as_ref().expect("apiServer");
    assert_eq!(api.image, "registry.k8s.io/kube-apiserver:v1.29.1");
    assert_eq!(api.cert_sans, vec!["10.5.0.2", "a.example", "10.0.0.9"]);
}

#[test]
fn older_contract_drops_newer_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = talosctl(
        &[
            "gen",
            "config",
            "demo",
            "https://10.5.0.2:6443",
            "--with-secrets",
            SECRETS,
            "--talos-version",
            "v1.5",
            "-t",
            "controlplane",
            "-o",
            "-",
            "--with-docs=false",
            "--with-examples=false",
        ],
        dir.path(),
    );
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hostDNS"), "hostDNS is a 1.7 default");
    assert!(!text.contains("kubePrism"), "kubePrism came after 1.5");
    assert!(text.contains("diskQuotaSupport: true"));
    assert!(
        files_in(dir.path()).is_empty(),
        "stdout output writes no file"
    );
}

#[test]
fn bad_input_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["gen", "config", "c", "10.5.0.2"],
            "no scheme and port specified",
        ),
        (
            vec!["gen", "config", "c", "10.5.0.2:6443"],
            "no scheme specified",
        ),
        (
            vec!["gen", "config", "c", "http://10.5.0.2:6443"],
            "should have scheme https://",
        ),
        (
            vec![
                "gen",
                "config",
                "c",
                "https://h:6443",
                "--config-patch",
                "@missing.yaml",
            ],
            "missing.yaml",
        ),
        (
            vec![
                "gen",
                "config",
                "c",
                "https://h:6443",
                "--config-patch",
                "machine: [unclosed",
            ],
            "patch",
        ),
        (
            vec![
                "gen",
                "config",
                "c",
                "https://h:6443",
                "--config-patch",
                "machine:\n  nosuchkey: 1\n",
            ],
            "nosuchkey",
        ),
        (
            vec!["gen", "config", "c", "https://h:6443", "-t", "bogus"],
            "invalid output type: \"bogus\"",
        ),
        (
            vec!["gen", "config", "c", "https://h:6443", "-o", "-"],
            "can't use multiple output types with stdout",
        ),
        (
            vec!["gen", "config", "c", "https://h:6443", "--version", "v2"],
            "unknown config version",
        ),
        (
            vec![
                "gen",
                "config",
                "c",
                "https://h:6443",
                "--talos-version",
                "banana",
            ],
            "invalid talos-version",
        ),
        (
            vec![
                "gen",
                "config",
                "c",
                "https://h:6443",
                "--registry-mirror",
                "nope",
            ],
            "invalid registry mirror",
        ),
        (
            vec![
                "gen",
                "config",
                "c",
                "https://h:6443",
                "--with-secrets",
                "nosuch.yaml",
            ],
            "secrets",
        ),
    ];
    for (mut args, want) in cases {
        if !args.contains(&"--with-secrets") {
            args.extend(["--with-secrets", SECRETS]);
        }
        let out = talosctl(&args, dir.path());
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert!(
            files_in(dir.path()).is_empty(),
            "{args:?} wrote {:?}",
            files_in(dir.path())
        );
    }
}

#[test]
fn existing_output_needs_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("worker.yaml"), "keep me\n").expect("write");
    let args = [
        "gen",
        "config",
        "c",
        "https://h:6443",
        "--with-secrets",
        SECRETS,
    ];
    let out = talosctl(&args, dir.path());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already exists, use --force to overwrite"),
        "{}",
        stderr(&out)
    );
    // Nothing was written: not even the outputs that did not exist.
    assert_eq!(files_in(dir.path()), vec!["worker.yaml"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("worker.yaml")).expect("read"),
        "keep me\n"
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    ok(&talosctl(&forced, dir.path()));
    assert_eq!(
        files_in(dir.path()),
        vec!["controlplane.yaml", "talosconfig", "worker.yaml"]
    );
}

/// The one test here that generates fresh secrets (RSA-4096 service-account key).
#[test]
fn slow_fresh_secrets_generate_a_complete_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(&talosctl(
        &[
            "gen",
            "config",
            "fresh",
            "https://10.5.0.2:6443",
            "-t",
            "controlplane",
            "-o",
            "cp.yaml",
        ],
        dir.path(),
    ));
    let text = std::fs::read(dir.path().join("cp.yaml")).expect("read");
    let cfg = Config::from_yaml(&text, "cp.yaml").expect("loads");
    let sa = cfg
        .v1alpha1()
        .and_then(|v| v.cluster.as_ref())
        .and_then(|c| c.service_account.as_ref())
        .expect("service account key");
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(&sa.key)
        .expect("base64");
    assert!(String::from_utf8_lossy(&pem).starts_with("-----BEGIN RSA PRIVATE KEY-----"));
}
