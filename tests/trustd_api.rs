//! The real `talos trustd` on 127.0.0.1, driven by the worker-side client
//! (`talos::client::trustd`) and by raw SecurityService calls.
//!
//! The OS CA and the token come from testdata/secrets/bundle.yaml; trustd's own TLS certificate
//! is issued from that CA at test time (Ed25519, fast).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod common_api;

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use talos::api::securityapi::CertificateRequest as CertificateRequestPb;
use talos::client::trustd::{self, CertificateSubject, TrustdError};
use talos::secrets::{
    Bundle, CertParams, Certificate, CertificateAuthority, CertificateRequest, PrivateKey,
};

const BUNDLE: &str = "testdata/secrets/bundle.yaml";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn bundle() -> Bundle {
    Bundle::load(Path::new(BUNDLE)).expect("load the test secrets bundle")
}

fn os_ca(bundle: &Bundle) -> CertificateAuthority {
    bundle.os_ca().expect("OS CA")
}

/// A running trustd; killed on drop.
struct Trustd {
    child: Option<Child>,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    dir: tempfile::TempDir,
}

impl Drop for Trustd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes ca.crt/ca.key (the bundle's OS CA) and server.crt/server.key (issued for 127.0.0.1).
fn write_pki(dir: &Path, bundle: &Bundle) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.crt"), &bundle.certs.os.crt).unwrap();
    std::fs::write(dir.join("ca.key"), &bundle.certs.os.key).unwrap();
    let ca = os_ca(bundle);
    let params = CertParams::new(
        time::OffsetDateTime::now_utc() - time::Duration::minutes(5),
        time::Duration::hours(24),
    )
    .ip_addresses([LOCALHOST])
    .ext_key_usage([talos::secrets::ExtKeyUsage::ServerAuth]);
    let (crt, key) = ca.issue(&params).unwrap();
    std::fs::write(dir.join("server.crt"), crt.to_pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.to_pem().unwrap()).unwrap();
}

impl Trustd {
    fn start() -> Trustd {
        let bundle = bundle();
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        write_pki(&pki, &bundle);
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{}\n", bundle.trustdinfo.token)).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_talos"))
            .args(["trustd", "--listen", "127.0.0.1:0", "--pki-dir"])
            .arg(&pki)
            .arg("--token-file")
            .arg(&token)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn talos trustd");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut t = Trustd {
            child: Some(child),
            addr: SocketAddr::from((LOCALHOST, 0)),
            lines,
            dir,
        };
        let line = t.wait_for("trustd: listening on ");
        t.addr = line
            .trim_start_matches("trustd: listening on ")
            .parse()
            .expect("bound address");
        t
    }

    /// Waits for a stderr line containing `needle` and returns it.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no stderr line with {needle:?}; saw:\n{}", seen.join("\n"));
    }

    fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn subject() -> CertificateSubject {
    CertificateSubject {
        common_name: Some("worker-1.example.org".into()),
        ips: vec![
            "10.5.0.3".parse().unwrap(),
            "fd00::3".parse().unwrap(),
            LOCALHOST,
        ],
        dns_names: vec!["worker-1".into(), "worker-1.example.org".into()],
    }
}

/// Checks with webpki that `crt` chains to the OS CA and is a valid server certificate for `ip`.
fn verify_server_cert(ca_pem: &[u8], crt: &Certificate, ip: IpAddr) {
    let mut roots = rustls::RootCertStore::empty();
    for c in talos::auth::tls::certs_from_pem("ca", ca_pem).unwrap() {
        roots.add(c).unwrap();
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    verifier
        .verify_server_cert(
            &CertificateDer::from(crt.der().to_vec()),
            &[],
            &ServerName::IpAddress(ip.into()),
            &[],
            UnixTime::now(),
        )
        .expect("certificate chains to the OS CA and is valid for the address");
}

#[test]
fn signs_a_server_certificate_for_the_right_token() {
    let t = Trustd::start();
    let bundle = bundle();
    let issued = runtime()
        .block_on(trustd::request_certificate(
            &[t.endpoint()],
            &bundle.trustdinfo.token,
            &bundle.certs.os.crt,
            &subject(),
        ))
        .expect("signed");
    assert_eq!(issued.endpoint, t.endpoint());

    // The CA answer is the accepted CAs: here just the OS CA.
    let ca = Certificate::from_pem(&issued.ca_pem).unwrap();
    assert_eq!(ca.der(), os_ca(&bundle).cert.der());

    let crt = Certificate::from_pem(&issued.crt_pem).unwrap();
    verify_server_cert(&bundle.certs.os.crt, &crt, "10.5.0.3".parse().unwrap());
    verify_server_cert(&bundle.certs.os.crt, &crt, "fd00::3".parse().unwrap());

    // The key belongs to the certificate.
    let key = PrivateKey::from_pem(&issued.key_pem).unwrap();
    assert_eq!(
        key.public_key_info().unwrap(),
        crt.public_key_info().unwrap()
    );

    let parsed = crt.parsed().unwrap();
    let eku = parsed.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth, "ServerAuth");
    assert!(
        !eku.client_auth && !eku.any && eku.other.is_empty(),
        "only ServerAuth"
    );
    assert!(crt.organizations().unwrap().is_empty());
    assert!(!parsed.is_ca());

    // SANs as requested.
    let san = parsed.subject_alternative_name().unwrap().unwrap().value;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.general_names {
        match name {
            x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
            x509_parser::extensions::GeneralName::IPAddress(b) => ips.push(match b.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                _ => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
            }),
            _ => panic!("unexpected SAN {name:?}"),
        }
    }
    assert_eq!(dns, subject().dns_names);
    assert_eq!(ips, subject().ips);

    // Validity like Talos: 24 hours from now.
    let v = parsed.validity();
    assert_eq!(
        v.not_after.timestamp() - v.not_before.timestamp(),
        24 * 3600
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((v.not_before.timestamp() - now).abs() < 120);

    t.wait_for("received a CSR signing request");
}

/// A CSR from a client that asks for roles gets a certificate without them.
#[test]
fn organization_is_stripped() {
    let t = Trustd::start();
    let bundle = bundle();
    let key = PrivateKey::generate_ed25519().unwrap();
    let mut params = CertParams::new(time::OffsetDateTime::now_utc(), time::Duration::hours(1))
        .organizations(["os:admin"])
        .ip_addresses([LOCALHOST]);
    params.common_name = Some("sneaky".into());
    let csr = CertificateRequest::new(&key, &params).unwrap();
    let crt = runtime().block_on(async {
        let mut client = trustd::connect(&t.endpoint(), &bundle.certs.os.crt)
            .await
            .unwrap();
        let mut req = tonic::Request::new(CertificateRequestPb { csr: csr.to_pem() });
        req.metadata_mut()
            .insert("token", bundle.trustdinfo.token.parse().unwrap());
        client
            .certificate(req)
            .await
            .expect("signed")
            .into_inner()
            .crt
    });
    let crt = Certificate::from_pem(&crt).unwrap();
    assert!(crt.organizations().unwrap().is_empty(), "no Organization");
    let parsed = crt.parsed().unwrap();
    let cn: Vec<_> = parsed
        .subject()
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .collect();
    assert_eq!(cn, ["sneaky"], "the CommonName stays");
    let eku = parsed.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    verify_server_cert(&bundle.certs.os.crt, &crt, LOCALHOST);
    t.wait_for("removing the Organization");
}

fn raw_call(t: &Trustd, token: Option<&str>, csr_pem: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let bundle = bundle();
    runtime().block_on(async {
        let mut client = trustd::connect(&t.endpoint(), &bundle.certs.os.crt)
            .await
            .unwrap();
        let mut req = tonic::Request::new(CertificateRequestPb { csr: csr_pem });
        if let Some(token) = token {
            req.metadata_mut().insert("token", token.parse().unwrap());
        }
        client.certificate(req).await.map(|r| r.into_inner().crt)
    })
}

fn good_csr() -> Vec<u8> {
    let key = PrivateKey::generate_ed25519().unwrap();
    let params = CertParams::new(time::OffsetDateTime::now_utc(), time::Duration::hours(1))
        .ip_addresses([LOCALHOST]);
    CertificateRequest::new(&key, &params).unwrap().to_pem()
}

#[test]
fn wrong_or_missing_token_is_refused() {
    let t = Trustd::start();
    for token in [None, Some("k2mis1.wrongwrongwrong1"), Some("")] {
        let status = raw_call(&t, token, good_csr()).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{token:?}");
        assert_eq!(status.message(), "Unauthenticated");
    }

    // Through the client: a clear error naming the endpoint.
    let bundle = bundle();
    let err = runtime()
        .block_on(trustd::request_certificate(
            &[t.endpoint()],
            "k2mis1.wrongwrongwrong1",
            &bundle.certs.os.crt,
            &subject(),
        ))
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TrustdError::AllFailed(_)));
    assert!(text.contains(&t.endpoint()), "{text}");
    assert!(text.contains("Unauthenticated"), "{text}");
    t.wait_for("missing or wrong token");
}

#[test]
fn bad_csr_signature_is_refused() {
    let t = Trustd::start();
    let bundle = bundle();
    let key = PrivateKey::generate_ed25519().unwrap();
    let params = CertParams::new(time::OffsetDateTime::now_utc(), time::Duration::hours(1))
        .ip_addresses([LOCALHOST]);
    let csr = CertificateRequest::new(&key, &params).unwrap();
    let mut der = csr.der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x55; // inside the signature BIT STRING
    let tampered = talos::secrets::pem_encode("CERTIFICATE REQUEST", &der);
    let status = raw_call(&t, Some(&bundle.trustdinfo.token), tampered).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(
        status.message().starts_with("failed to sign CSR:"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("signature"),
        "{}",
        status.message()
    );

    let status = raw_call(&t, Some(&bundle.trustdinfo.token), b"garbage".to_vec()).unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "failed to decode CSR");
}

#[test]
fn other_services_are_unimplemented() {
    let t = Trustd::start();
    let bundle = bundle();
    let status = runtime().block_on(async {
        // Reuse the verified TLS channel for another service's client.
        let tls = Arc::new(talos::auth::tls::client_tls(&bundle.certs.os.crt).unwrap());
        let channel = common_api::connect_tls(t.addr, tls).await.unwrap();
        let mut client =
            talos::api::machine::machine_service_client::MachineServiceClient::new(channel);
        client.version(()).await.unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

#[test]
fn failover_to_the_next_endpoint() {
    let t = Trustd::start();
    let bundle = bundle();
    // A port nothing listens on: bind, note it, close.
    let dead = std::net::TcpListener::bind((LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoints = vec![dead.to_string(), t.endpoint()];
    let issued = runtime()
        .block_on(trustd::request_certificate(
            &endpoints,
            &bundle.trustdinfo.token,
            &bundle.certs.os.crt,
            &subject(),
        ))
        .expect("second endpoint signs");
    assert_eq!(issued.endpoint, t.endpoint());

    // All dead: both listed in the error.
    let err = runtime()
        .block_on(trustd::request_certificate(
            &[dead.to_string(), dead.to_string()],
            &bundle.trustdinfo.token,
            &bundle.certs.os.crt,
            &subject(),
        ))
        .unwrap_err();
    match err {
        TrustdError::AllFailed(f) => {
            assert_eq!(f.len(), 2);
            assert!(f[0].reason.contains("cannot connect"), "{}", f[0].reason);
        }
        other => panic!("unexpected {other}"),
    }
}

/// A trustd whose certificate does not chain to the CA the worker holds is not trusted.
#[test]
fn untrusted_server_is_refused() {
    let t = Trustd::start();
    let bundle = bundle();
    let other = CertificateAuthority::generate(
        talos::secrets::KeyAlgorithm::Ed25519,
        &CertParams::new(time::OffsetDateTime::now_utc(), time::Duration::hours(1))
            .organizations(["talos"]),
    )
    .unwrap();
    let err = runtime()
        .block_on(trustd::request_certificate(
            &[t.endpoint()],
            &bundle.trustdinfo.token,
            &other.cert.to_pem(),
            &subject(),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

#[test]
fn token_file_changes_are_picked_up() {
    let t = Trustd::start();
    let bundle = bundle();
    let new_token = "abcdef.0123456789abcdef";
    // Make sure the modification time differs even on coarse-grained file systems.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(t.token_file(), new_token).unwrap();
    t.wait_for("reloaded PKI and token");
    assert!(raw_call(&t, Some(new_token), good_csr()).is_ok());
    let status = raw_call(&t, Some(&bundle.trustdinfo.token), good_csr()).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // A broken update keeps the previous material.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(t.token_file(), "").unwrap();
    t.wait_for("keeping the previous PKI and token");
    assert!(raw_call(&t, Some(new_token), good_csr()).is_ok());
}

#[test]
fn token_is_never_a_plain_argument() {
    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["trustd", "--pki-dir", "/nonexistent", "--token", "secret"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args([
            "trustd",
            "--listen",
            "127.0.0.1:0",
            "--pki-dir",
            "/nonexistent",
        ])
        .env_remove("TRUSTD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--token-file") && stderr.contains("TRUSTD_TOKEN"),
        "{stderr}"
    );

    // With the token in the environment, a missing PKI file is named.
    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args([
            "trustd",
            "--listen",
            "127.0.0.1:0",
            "--pki-dir",
            "/nonexistent",
        ])
        .env("TRUSTD_TOKEN", "abcdef.0123456789abcdef")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/ca.crt"), "{stderr}");
}

/// The leaf certificate trustd presents to a new connection.
fn served_leaf(t: &Trustd) -> Vec<u8> {
    let bundle = bundle();
    runtime().block_on(async {
        let tls = Arc::new(talos::auth::tls::client_tls(&bundle.certs.os.crt).unwrap());
        let tcp = tokio::net::TcpStream::connect(t.addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(ServerName::IpAddress(t.addr.ip().into()), tcp)
            .await
            .unwrap();
        stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    })
}

#[test]
fn server_certificate_changes_are_picked_up() {
    let t = Trustd::start();
    let before = served_leaf(&t);
    std::thread::sleep(Duration::from_millis(20));
    write_pki(&t.dir.path().join("pki"), &bundle());
    t.wait_for("reloaded PKI and token");
    let after = served_leaf(&t);
    assert_ne!(before, after, "new connections get the new certificate");
    let on_disk = std::fs::read(t.dir.path().join("pki/server.crt")).unwrap();
    assert_eq!(Certificate::from_pem(&on_disk).unwrap().der(), &after[..]);
}
