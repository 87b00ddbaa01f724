//! `talosctl gen ca|key|csr|crt|keypair` and the PKI helpers behind them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use talos::secrets::{
    CertParams, Certificate, CertificateAuthority, CertificateRequest, ExtKeyUsage, KeyAlgorithm,
    PrivateKey, CA_VALIDITY,
};
use x509_parser::prelude::{FromDer, X509Certificate};

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

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

fn fail_with(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure");
    assert!(
        stderr(o).contains(needle),
        "{needle:?} not in {}",
        stderr(o)
    );
}

fn cert(path: &Path) -> Certificate {
    Certificate::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn gen_ca_writes_crt_key_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    ok(&talosctl(
        dir.path(),
        &["gen", "ca", "--organization", "myorg", "--hours", "48"],
    ));
    assert_eq!(
        entries(dir.path()),
        ["myorg.crt", "myorg.key", "myorg.sha256"]
    );
    let c = cert(&dir.path().join("myorg.crt"));
    let hash = std::fs::read_to_string(dir.path().join("myorg.sha256")).unwrap();
    assert_eq!(hash, c.spki_hash().unwrap());
    assert!(hash.starts_with("sha256:") && hash.len() == 7 + 64);
    let (_, x) = X509Certificate::from_der(c.der()).unwrap();
    assert!(x.is_ca());
    assert_eq!(x.subject().to_string(), "O=myorg");
    assert_eq!(
        x.signature_algorithm.algorithm.to_id_string(),
        "1.3.101.112"
    );
    let v = x.validity();
    assert_eq!(
        (v.not_after.timestamp() - v.not_before.timestamp()),
        48 * 3600
    );
    let key = std::fs::read(dir.path().join("myorg.key")).unwrap();
    assert!(key.starts_with(b"-----BEGIN ED25519 PRIVATE KEY-----\n"));
    CertificateAuthority::from_pem(&c.to_pem(), &key).unwrap();
}

#[test]
fn gen_ca_refuses_if_any_output_exists_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("o.sha256"), "old").unwrap();
    fail_with(
        &talosctl(dir.path(), &["gen", "ca", "--organization", "o"]),
        "\"o.sha256\" already exists, use --force to overwrite",
    );
    assert_eq!(entries(dir.path()), ["o.sha256"]);
    ok(&talosctl(
        dir.path(),
        &["gen", "ca", "--organization", "o", "--force"],
    ));
    assert_eq!(entries(dir.path()), ["o.crt", "o.key", "o.sha256"]);
}

#[test]
fn gen_ca_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    fail_with(&talosctl(dir.path(), &["gen", "ca"]), "--organization");
    fail_with(
        &talosctl(
            dir.path(),
            &["gen", "ca", "--organization", "o", "--hours", "0"],
        ),
        "--hours must be positive",
    );
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn rsa_ca_signs_with_sha512_from_a_fixture_key() {
    // `gen ca --rsa` makes a fresh RSA-4096 key; here the same CA code runs on a fixture key.
    let pem =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/secrets/rsa4096.key"))
            .unwrap();
    let key = PrivateKey::from_pem(&pem).unwrap();
    assert_eq!(
        key.to_pem().unwrap(),
        pem,
        "PKCS#1 re-encodes byte for byte"
    );
    let now = time::OffsetDateTime::now_utc();
    let ca = CertificateAuthority::self_signed(
        key,
        &CertParams::new(now, CA_VALIDITY).organizations(["rsa-org"]),
    )
    .unwrap();
    let (_, x) = X509Certificate::from_der(ca.cert.der()).unwrap();
    assert_eq!(
        x.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.13"
    );
    assert!(x.is_ca());
    // A leaf for an Ed25519 key, signed by the RSA CA, carries the CA's key id.
    let leaf_key = PrivateKey::generate_ed25519().unwrap();
    let leaf = ca
        .sign_public_key(
            &leaf_key.public_key_info().unwrap(),
            &CertParams::new(now, time::Duration::hours(1))
                .dns_names(["node.example"])
                .ext_key_usage([ExtKeyUsage::ServerAuth]),
        )
        .unwrap();
    let (_, l) = X509Certificate::from_der(leaf.der()).unwrap();
    assert_eq!(l.issuer().to_string(), "O=rsa-org");
    let san = l.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "empty subject makes SAN critical");
    assert!(ca.cert.spki_fingerprint().unwrap().ends_with('='));
}

#[test]
fn gen_key_writes_an_ed25519_key() {
    let dir = tempfile::tempdir().unwrap();
    ok(&talosctl(dir.path(), &["gen", "key", "--name", "admin"]));
    let pem = std::fs::read(dir.path().join("admin.key")).unwrap();
    assert!(pem.starts_with(b"-----BEGIN ED25519 PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
    assert_eq!(
        PrivateKey::from_pem(&pem).unwrap().algorithm(),
        KeyAlgorithm::Ed25519
    );
    fail_with(
        &talosctl(dir.path(), &["gen", "key", "--name", "admin"]),
        "already exists",
    );
    assert_eq!(std::fs::read(dir.path().join("admin.key")).unwrap(), pem);
    fail_with(&talosctl(dir.path(), &["gen", "key"]), "--name");
}

fn make_key(dir: &Path, name: &str) -> PathBuf {
    ok(&talosctl(dir, &["gen", "key", "--name", name]));
    dir.join(format!("{name}.key"))
}

#[test]
fn gen_csr_carries_roles_and_ip() {
    let dir = tempfile::tempdir().unwrap();
    make_key(dir.path(), "user");
    ok(&talosctl(
        dir.path(),
        &[
            "gen",
            "csr",
            "--key",
            "user.key",
            "--ip",
            "10.5.0.2",
            "--roles",
            "os:reader,os:etcd:backup",
        ],
    ));
    let csr =
        CertificateRequest::from_pem(&std::fs::read(dir.path().join("user.csr")).unwrap()).unwrap();
    csr.verify().unwrap();
    let info = csr.info().unwrap();
    // One multi-valued RDN; DER orders a SET OF by encoding, so the shorter value comes first.
    assert_eq!(info.organizations, ["os:reader", "os:etcd:backup"]);
    assert_eq!(
        info.ip_addresses,
        ["10.5.0.2".parse::<std::net::IpAddr>().unwrap()]
    );

    make_key(dir.path(), "def");
    ok(&talosctl(
        dir.path(),
        &["gen", "csr", "--key", "def.key", "--ip", "fd00::1"],
    ));
    let csr =
        CertificateRequest::from_pem(&std::fs::read(dir.path().join("def.csr")).unwrap()).unwrap();
    assert_eq!(csr.info().unwrap().organizations, ["os:admin"]);
}

#[test]
fn gen_csr_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    make_key(dir.path(), "k");
    fail_with(
        &talosctl(
            dir.path(),
            &[
                "gen",
                "csr",
                "--key",
                "k.key",
                "--ip",
                "10.0.0.1",
                "--roles",
                "os:root,os:admin,os:x",
            ],
        ),
        "unknown roles: os:root, os:x",
    );
    fail_with(
        &talosctl(
            dir.path(),
            &["gen", "csr", "--key", "k.key", "--ip", "300.1.1.1"],
        ),
        "invalid IP: 300.1.1.1",
    );
    fail_with(
        &talosctl(
            dir.path(),
            &["gen", "csr", "--key", "missing.key", "--ip", "10.0.0.1"],
        ),
        "missing.key",
    );
    std::fs::write(dir.path().join("junk.key"), "not pem").unwrap();
    fail_with(
        &talosctl(
            dir.path(),
            &["gen", "csr", "--key", "junk.key", "--ip", "10.0.0.1"],
        ),
        "error parsing key",
    );
    fail_with(
        &talosctl(dir.path(), &["gen", "csr", "--key", "k.key"]),
        "--ip",
    );
    assert_eq!(entries(dir.path()), ["junk.key", "k.key"]);
}

#[test]
fn gen_crt_signs_a_client_cert() {
    let dir = tempfile::tempdir().unwrap();
    ok(&talosctl(
        dir.path(),
        &["gen", "ca", "--organization", "talos"],
    ));
    make_key(dir.path(), "admin");
    ok(&talosctl(
        dir.path(),
        &["gen", "csr", "--key", "admin.key", "--ip", "127.0.0.1"],
    ));
    ok(&talosctl(
        dir.path(),
        &[
            "gen",
            "crt",
            "--ca",
            "talos",
            "--csr",
            "admin.csr",
            "--name",
            "admin",
            "--hours",
            "2",
        ],
    ));
    let c = cert(&dir.path().join("admin.crt"));
    let ca = cert(&dir.path().join("talos.crt"));
    let (_, x) = X509Certificate::from_der(c.der()).unwrap();
    assert_eq!(x.subject().to_string(), "O=os:admin");
    assert_eq!(x.issuer().to_string(), "O=talos");
    assert!(!x.is_ca());
    let eku = x.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    let v = x.validity();
    assert_eq!(v.not_after.timestamp() - v.not_before.timestamp(), 2 * 3600);
    let aki = x
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(Some(aki), ca.subject_key_id().unwrap());
    let key = std::fs::read(dir.path().join("admin.key")).unwrap();
    assert_eq!(
        c.public_key_info().unwrap(),
        PrivateKey::from_pem(&key)
            .unwrap()
            .public_key_info()
            .unwrap()
    );
}

#[test]
fn gen_crt_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    ok(&talosctl(
        dir.path(),
        &["gen", "ca", "--organization", "ca1"],
    ));
    ok(&talosctl(
        dir.path(),
        &["gen", "ca", "--organization", "ca2"],
    ));
    make_key(dir.path(), "u");
    ok(&talosctl(
        dir.path(),
        &["gen", "csr", "--key", "u.key", "--ip", "10.0.0.1"],
    ));
    fail_with(
        &talosctl(
            dir.path(),
            &[
                "gen", "crt", "--ca", "nope", "--csr", "u.csr", "--name", "u",
            ],
        ),
        "nope.crt",
    );
    // A CA certificate with someone else's key.
    std::fs::copy(dir.path().join("ca1.crt"), dir.path().join("mix.crt")).unwrap();
    std::fs::copy(dir.path().join("ca2.key"), dir.path().join("mix.key")).unwrap();
    fail_with(
        &talosctl(
            dir.path(),
            &["gen", "crt", "--ca", "mix", "--csr", "u.csr", "--name", "u"],
        ),
        "does not match",
    );
    // A CSR whose signature no longer verifies.
    let mut der = CertificateRequest::from_pem(&std::fs::read(dir.path().join("u.csr")).unwrap())
        .unwrap()
        .der()
        .to_vec();
    let n = der.len();
    der[n - 3] ^= 0x40;
    let bad = CertificateRequest::from_der(der).unwrap();
    std::fs::write(dir.path().join("bad.csr"), bad.to_pem()).unwrap();
    fail_with(
        &talosctl(
            dir.path(),
            &[
                "gen", "crt", "--ca", "ca1", "--csr", "bad.csr", "--name", "u",
            ],
        ),
        "signature verification failed",
    );
    fail_with(
        &talosctl(
            dir.path(),
            &["gen", "crt", "--ca", "ca1", "--csr", "u.key", "--name", "u"],
        ),
        "expected a CERTIFICATE REQUEST PEM block",
    );
    assert!(!dir.path().join("u.crt").exists());
}

#[test]
fn gen_keypair_makes_a_short_lived_self_signed_pair() {
    let dir = tempfile::tempdir().unwrap();
    ok(&talosctl(
        dir.path(),
        &[
            "gen",
            "keypair",
            "--organization",
            "srv",
            "--ip",
            "192.168.1.10",
        ],
    ));
    let c = cert(&dir.path().join("srv.crt"));
    let (_, x) = X509Certificate::from_der(c.der()).unwrap();
    assert_eq!(x.subject().to_string(), "O=srv");
    let v = x.validity();
    assert_eq!(
        v.not_after.timestamp() - v.not_before.timestamp(),
        24 * 3600
    );
    let san = x.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(san.general_names.len(), 1);
    let key = std::fs::read(dir.path().join("srv.key")).unwrap();
    CertificateAuthority::from_pem(&c.to_pem(), &key).unwrap();

    fail_with(
        &talosctl(dir.path(), &["gen", "keypair", "--organization", "srv"]),
        "already exists",
    );
    fail_with(
        &talosctl(
            dir.path(),
            &["gen", "keypair", "--organization", "x", "--ip", "nope"],
        ),
        "invalid IP: nope",
    );
    fail_with(&talosctl(dir.path(), &["gen", "keypair"]), "--organization");
    assert_eq!(entries(dir.path()), ["srv.crt", "srv.key"]);
}
