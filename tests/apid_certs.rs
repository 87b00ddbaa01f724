//! apid on a control plane: with the OS CA key in its PKI directory it issues its own server and
//! forwarding certificates, serves with them, forwards with them, and renews them at half-life.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod common_api;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common_api::{connect, request, start_apid, start_apid_in, start_machined, Apid, TestPki};
use rustls::pki_types::ServerName;
use talos::api::machine::machine_service_client::MachineServiceClient;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

/// A PKI directory with only the OS CA certificate and key.
fn control_plane_dir(pki: &TestPki) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir_all(&pki_dir).expect("pki dir");
    std::fs::write(pki_dir.join("ca.crt"), pki.ca_pem()).expect("ca.crt");
    std::fs::write(pki_dir.join("ca.key"), pki.ca.key.to_pem().expect("key")).expect("ca.key");
    (dir, pki_dir)
}

/// The certificate apid serves (DER), over a fresh mutual-TLS handshake verified with the OS CA.
async fn served_certificate(addr: SocketAddr, pki: &TestPki) -> Vec<u8> {
    let id = pki.client(&["os:reader"]);
    let config = talos::auth::tls::client_mtls(&pki.ca_pem(), &id.crt, &id.key).expect("config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let tls = connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .expect("TLS handshake with the OS CA as the only trust root");
    tls.get_ref().1.peer_certificates().expect("peer certs")[0].to_vec()
}

async fn version_ok(apid: &Apid, pki: &TestPki) {
    let ch = connect(apid.addr, &pki.ca_pem(), &pki.client(&["os:reader"]))
        .await
        .expect("connect");
    MachineServiceClient::new(ch)
        .version(())
        .await
        .expect("Version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_its_own_server_certificate() {
    let pki = TestPki::new();
    let machined = start_machined("metal");
    let (dir, pki_dir) = control_plane_dir(&pki);
    let apid = start_apid_in(
        dir,
        pki_dir.clone(),
        &machined.socket,
        &["--cert-ttl", "2h", "--cert-san", "api.example.org"],
    );
    version_ok(&apid, &pki).await;

    let der = served_certificate(apid.addr, &pki).await;
    let (_, cert) = X509Certificate::from_der(&der).expect("parse");
    let (_, ca) = X509Certificate::from_der(pki.ca.cert.der()).expect("ca");
    assert_eq!(cert.issuer(), ca.subject());
    cert.verify_signature(Some(ca.public_key()))
        .expect("signed by the OS CA");
    let eku = cert.extended_key_usage().expect("eku").expect("eku").value;
    assert!(eku.server_auth && !eku.client_auth, "ServerAuth only");
    let san = cert.subject_alternative_name().expect("san").expect("san");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(
        san.value
            .general_names
            .iter()
            .any(|n| matches!(n, GeneralName::IPAddress(ip) if *ip == [127, 0, 0, 1])),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.contains("api.example.org")),
        "{names:?}"
    );
    let not_after = cert.validity().not_after.to_datetime();
    let expected = OffsetDateTime::now_utc() + time::Duration::hours(2);
    assert!(
        (not_after - expected).abs() < time::Duration::minutes(1),
        "not after {not_after}, expected about {expected}"
    );

    // The files are there, private, and the forwarding identity is an impersonator.
    for name in ["server.crt", "server.key", "client.crt", "client.key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(pki_dir.join(name)).expect(name);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
    }
    let client = talos::secrets::Certificate::from_pem(
        &std::fs::read(pki_dir.join("client.crt")).expect("client.crt"),
    )
    .expect("client cert");
    assert_eq!(client.organizations().expect("O"), ["os:impersonator"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_with_its_own_impersonator_certificate() {
    let pki = TestPki::new();
    let target_machined = start_machined("metal");
    let target = start_apid(&pki, false, &target_machined.socket, &[]);
    let machined = start_machined("container");
    let (dir, pki_dir) = control_plane_dir(&pki);
    let apid = start_apid_in(dir, pki_dir, &machined.socket, &[]);

    let ch = connect(apid.addr, &pki.ca_pem(), &pki.client(&["os:admin"]))
        .await
        .expect("connect");
    let mut client = MachineServiceClient::new(ch);
    let target_addr = target.target();
    let v = client
        .version(request((), &[("nodes", &target_addr)]))
        .await
        .expect("forwarded Version")
        .into_inner();
    assert_eq!(v.messages.len(), 1);
    let md = v.messages[0].metadata.as_ref().expect("metadata");
    assert_eq!(md.hostname, target_addr);
    assert!(md.error.is_empty(), "{}", md.error);
    assert_eq!(
        v.messages[0].platform.as_ref().expect("platform").name,
        "metal",
        "served by the target node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_at_half_life_and_keeps_serving() {
    let pki = TestPki::new();
    let machined = start_machined("metal");
    let (dir, pki_dir) = control_plane_dir(&pki);
    let apid = start_apid_in(
        dir,
        pki_dir,
        &machined.socket,
        &["--cert-ttl", "4s", "--pki-poll-interval", "200ms"],
    );
    // (serial, not before, not after)
    let info = |der: &[u8]| {
        let (_, c) = X509Certificate::from_der(der).expect("parse");
        (
            c.raw_serial().to_vec(),
            c.validity().not_before.to_datetime(),
            c.validity().not_after.to_datetime(),
        )
    };
    let first = info(&served_certificate(apid.addr, &pki).await);
    assert_eq!(first.2 - first.1, time::Duration::seconds(4));
    let ch = connect(apid.addr, &pki.ca_pem(), &pki.client(&["os:reader"]))
        .await
        .expect("connect");
    let mut kept = MachineServiceClient::new(ch);

    let start = Instant::now();
    let renewed = loop {
        kept.version(())
            .await
            .expect("Version on the old connection");
        let now = info(&served_certificate(apid.addr, &pki).await);
        if now.0 != first.0 {
            break now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "certificate not renewed; log:\n{}",
            apid.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Renewed at half-life (2 s), not before (X.509 times have whole seconds).
    let gap = renewed.1 - first.1;
    assert!(
        gap >= time::Duration::seconds(1) && gap <= time::Duration::seconds(4),
        "renewed {gap} after the first certificate"
    );
    // New connections work with the new certificate; the old one still answers.
    version_ok(&apid, &pki).await;
    kept.version(()).await.expect("Version after renewal");
    assert!(apid
        .log()
        .contains("issued new server and client certificates"));
}
