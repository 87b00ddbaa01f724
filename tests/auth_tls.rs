//! TLS behaviour of the Talos API security layer, over real loopback connections.
//!
//! Certificates are made here with rcgen (Ed25519, one ECDSA case); no RSA.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose as Eku,
    IsCa, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
    PKCS_ED25519,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use talos::auth::role::{Role, RoleSet};
use talos::auth::tls::{self, TlsError};
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(org: &str) -> Ca {
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf certificate; returns (cert PEM, key PEM).
    fn leaf(&self, spec: Leaf) -> (String, String) {
        let key = KeyPair::generate_for(spec.alg).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        for org in spec.orgs {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *org);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = spec.eku;
        params.subject_alt_names = spec.ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
        let now = OffsetDateTime::now_utc();
        params.not_before = now + spec.from;
        params.not_after = now + spec.until;
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server(&self) -> (String, String) {
        self.leaf(Leaf {
            eku: vec![Eku::ServerAuth],
            ips: &[LOCALHOST],
            ..Leaf::default()
        })
    }

    fn client(&self, orgs: &'static [&'static str]) -> (String, String) {
        self.leaf(Leaf {
            orgs,
            ..Leaf::default()
        })
    }
}

struct Leaf {
    orgs: &'static [&'static str],
    eku: Vec<Eku>,
    ips: &'static [IpAddr],
    from: Duration,
    until: Duration,
    alg: &'static SignatureAlgorithm,
}

impl Default for Leaf {
    fn default() -> Self {
        Leaf {
            orgs: &[],
            eku: vec![Eku::ClientAuth],
            ips: &[],
            from: -Duration::hours(1),
            until: Duration::days(365),
            alg: &PKCS_ED25519,
        }
    }
}

/// What the server saw of one connection: the client's roles, or why the handshake failed.
type Outcome = Result<RoleSet, String>;

/// A TLS echo server on 127.0.0.1:0: for each accepted client it reports the outcome and, on
/// success, answers one line with the client's roles and the negotiated protocol version.
async fn echo_server(config: ServerConfig) -> (SocketAddr, mpsc::UnboundedReceiver<Outcome>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut stream = match acceptor.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let (_, conn) = stream.get_ref();
                let roles = tls::peer_roles(conn);
                let version = format!("{:?}", conn.protocol_version().unwrap());
                let mut line = [0u8; 5];
                if stream.read_exact(&mut line).await.is_err() {
                    let _ = tx.send(Err("client went away".into()));
                    return;
                }
                let _ = tx.send(Ok(roles.clone()));
                let reply = format!("{roles} {version}\n");
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, rx)
}

/// Connects, sends a line and returns the server's reply, or the client-side error.
async fn exchange(addr: SocketAddr, config: ClientConfig) -> Result<String, String> {
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut stream = connector
        .connect(ServerName::IpAddress(LOCALHOST.into()), tcp)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    stream
        .write_all(b"ping\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    if reply.is_empty() {
        return Err("connection closed without a reply".into());
    }
    Ok(reply)
}

struct Apid {
    os_ca: Ca,
    addr: SocketAddr,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
}

impl Apid {
    /// apid with a fresh OS CA, plus `accepted` CA PEMs.
    async fn start(check_ext_key_usage: bool, accepted: &[String]) -> Apid {
        let os_ca = Ca::new("talos");
        let (crt, key) = os_ca.server();
        let os_pem = os_ca.pem();
        let mut cas: Vec<&[u8]> = vec![os_pem.as_bytes()];
        cas.extend(accepted.iter().map(|p| p.as_bytes()));
        let config =
            tls::server_mtls(&cas, crt.as_bytes(), key.as_bytes(), check_ext_key_usage).unwrap();
        let (addr, outcomes) = echo_server(config).await;
        Apid {
            os_ca,
            addr,
            outcomes,
        }
    }

    /// Runs one client with the given certificate and returns (client result, server outcome).
    async fn call(&mut self, crt: &str, key: &str) -> (Result<String, String>, Outcome) {
        let client =
            tls::client_mtls(self.os_ca.pem().as_bytes(), crt.as_bytes(), key.as_bytes()).unwrap();
        let result = exchange(self.addr, client).await;
        let outcome = self.outcomes.recv().await.unwrap();
        (result, outcome)
    }
}

#[tokio::test]
async fn mtls_admin_client_is_accepted_with_roles() {
    let mut apid = Apid::start(true, &[]).await;
    let (crt, key) = apid.os_ca.client(&["os:admin"]);
    let (reply, outcome) = apid.call(&crt, &key).await;
    assert_eq!(outcome, Ok(RoleSet::from([Role::Admin])));
    assert!(reply.unwrap().starts_with("os:admin TLSv1_3"));
}

#[tokio::test]
async fn mtls_certificate_with_several_organizations() {
    // Fixture (see testdata/auth/README.md): three O values in one RDN, one of them unknown.
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/testdata/auth/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let mut apid = Apid::start(true, &[fixture("ca.crt")]).await;
    let (reply, outcome) = apid
        .call(&fixture("multi-org.crt"), &fixture("multi-org.key"))
        .await;
    let roles = outcome.unwrap();
    assert_eq!(
        roles.strings(),
        ["os:etcd:backup", "os:future", "os:reader"]
    );
    assert_eq!(roles.unknown(), ["os:future"]);
    assert_eq!(
        reply.unwrap(),
        "os:etcd:backup,os:future,os:reader TLSv1_3\n"
    );
}

#[tokio::test]
async fn mtls_ecdsa_client_and_accepted_ca() {
    let other = Ca::new("other");
    let mut apid = Apid::start(true, &[other.pem()]).await;
    let (crt, key) = apid.os_ca.leaf(Leaf {
        orgs: &["os:operator"],
        alg: &PKCS_ECDSA_P256_SHA256,
        ..Leaf::default()
    });
    let (_, outcome) = apid.call(&crt, &key).await;
    assert_eq!(outcome, Ok(RoleSet::from([Role::Operator])));

    // A certificate from a CA listed in the accepted CAs.
    let (crt, key) = other.client(&["os:reader"]);
    let (_, outcome) = apid.call(&crt, &key).await;
    assert_eq!(outcome, Ok(RoleSet::from([Role::Reader])));
}

#[tokio::test]
async fn mtls_refuses_unknown_ca() {
    let mut apid = Apid::start(false, &[]).await;
    // Another cluster's CA has the same subject (O=talos): the issuer is found by name and its
    // signature does not verify. A CA with another subject is not found at all.
    for (org, reason) in [("talos", "BadSignature"), ("other", "UnknownIssuer")] {
        let stranger = Ca::new(org);
        let (crt, key) = stranger.client(&["os:admin"]);
        let (reply, outcome) = apid.call(&crt, &key).await;
        assert!(reply.is_err(), "{reply:?}");
        let err = outcome.unwrap_err();
        assert!(err.contains(reason), "{err}");
    }
}

#[tokio::test]
async fn mtls_refuses_expired_and_not_yet_valid() {
    let mut apid = Apid::start(false, &[]).await;
    let (crt, key) = apid.os_ca.leaf(Leaf {
        orgs: &["os:admin"],
        from: -Duration::hours(48),
        until: -Duration::hours(24),
        ..Leaf::default()
    });
    let (reply, outcome) = apid.call(&crt, &key).await;
    assert!(reply.is_err());
    let err = outcome.unwrap_err();
    assert!(err.contains("certificate expired"), "{err}");

    let (crt, key) = apid.os_ca.leaf(Leaf {
        orgs: &["os:admin"],
        from: Duration::hours(24),
        until: Duration::hours(48),
        ..Leaf::default()
    });
    let (reply, outcome) = apid.call(&crt, &key).await;
    assert!(reply.is_err());
    let err = outcome.unwrap_err();
    assert!(err.contains("not valid yet"), "{err}");
}

#[tokio::test]
async fn mtls_refuses_server_auth_only_certificate() {
    // Refused with the check (our message) and without it (no ClientAuth at all).
    for check in [true, false] {
        let mut apid = Apid::start(check, &[]).await;
        let (crt, key) = apid.os_ca.leaf(Leaf {
            orgs: &["os:admin"],
            eku: vec![Eku::ServerAuth],
            ..Leaf::default()
        });
        let (reply, outcome) = apid.call(&crt, &key).await;
        assert!(reply.is_err());
        assert!(outcome.is_err());
    }
}

#[tokio::test]
async fn mtls_ext_key_usage_check_wants_exactly_client_auth() {
    let both = Leaf {
        orgs: &["os:admin"],
        eku: vec![Eku::ServerAuth, Eku::ClientAuth],
        ..Leaf::default()
    };
    let none = Leaf {
        orgs: &["os:admin"],
        eku: vec![],
        ..Leaf::default()
    };

    let mut strict = Apid::start(true, &[]).await;
    for leaf in [both, none] {
        let (crt, key) = strict.os_ca.leaf(leaf);
        let (reply, outcome) = strict.call(&crt, &key).await;
        assert!(reply.is_err());
        let err = outcome.unwrap_err();
        assert!(
            err.contains("must have exactly the client auth extended key usage"),
            "{err}"
        );
    }

    // Without the check, Talos (Go) accepts both: ClientAuth among others, or no EKU at all.
    let mut lax = Apid::start(false, &[]).await;
    for eku in [vec![Eku::ServerAuth, Eku::ClientAuth], vec![]] {
        let (crt, key) = lax.os_ca.leaf(Leaf {
            orgs: &["os:admin"],
            eku,
            ..Leaf::default()
        });
        let (reply, outcome) = lax.call(&crt, &key).await;
        assert!(reply.is_ok(), "{reply:?}");
        assert_eq!(outcome, Ok(RoleSet::from([Role::Admin])));
    }
}

#[tokio::test]
async fn mtls_refuses_client_without_certificate() {
    let mut apid = Apid::start(true, &[]).await;
    let client = tls::client_tls(apid.os_ca.pem().as_bytes()).unwrap();
    let reply = exchange(apid.addr, client).await;
    assert!(reply.is_err());
    let err = apid.outcomes.recv().await.unwrap().unwrap_err();
    assert!(err.contains("peer sent no certificates"), "{err}");
}

#[tokio::test]
async fn client_refuses_server_from_other_ca() {
    let apid = Apid::start(false, &[]).await;
    let other = Ca::new("other");
    let (crt, key) = other.client(&["os:admin"]);
    let client = tls::client_mtls(other.pem().as_bytes(), crt.as_bytes(), key.as_bytes()).unwrap();
    let err = exchange(apid.addr, client).await.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn tls12_with_ed25519_uses_talos_cipher_suite() {
    let mut apid = Apid::start(true, &[]).await;
    let (crt, key) = apid.os_ca.client(&["os:admin"]);
    // A client limited to TLS 1.2 (like an old Go client).
    let mut roots = rustls::RootCertStore::empty();
    for c in tls::certs_from_pem("ca", apid.os_ca.pem().as_bytes()).unwrap() {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            tls::certs_from_pem("crt", crt.as_bytes()).unwrap(),
            tls::key_from_pem("key", key.as_bytes()).unwrap(),
        )
        .unwrap();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let reply = exchange(apid.addr, client).await.unwrap();
    assert_eq!(reply, "os:admin TLSv1_2\n");
    assert_eq!(
        apid.outcomes.recv().await.unwrap(),
        Ok(RoleSet::from([Role::Admin]))
    );
}

#[test]
fn only_tls12_and_tls13_are_configured() {
    let versions: Vec<_> = tls::PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
    assert_eq!(
        versions,
        [
            rustls::ProtocolVersion::TLSv1_3,
            rustls::ProtocolVersion::TLSv1_2
        ]
    );
}

/// A TLS 1.1 ClientHello that has everything else a server could want (a shared cipher suite,
/// signature algorithms, X25519), so that only its version can make the server refuse it.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2c]); // ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x08, 0x07, 0x04, 0x03, // signature_algorithms
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d, // supported_groups: x25519
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
    ];
    body.extend_from_slice(&[0x00, extensions.len() as u8]);
    body.extend_from_slice(extensions);
    let mut handshake = vec![0x01, 0x00, 0x00, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn tls11_client_hello_gets_protocol_version_alert() {
    let mut apid = Apid::start(true, &[]).await;
    let mut tcp = TcpStream::connect(apid.addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply).await;
    // One alert record: type 21, level fatal (2), description protocol_version (70).
    assert!(reply.len() >= 7, "{reply:?}");
    assert_eq!(reply[0], 21);
    assert_eq!(&reply[5..7], &[2, 70]);
    let err = apid.outcomes.recv().await.unwrap().unwrap_err();
    assert!(err.contains("Tls12NotOffered"), "{err}");
}

async fn maintenance_server() -> (SocketAddr, tls::MaintenanceCerts) {
    let certs =
        tls::generate_self_signed_maintenance(&[LOCALHOST], &["talos-test".into()]).unwrap();
    let config = tls::server_tls_only(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap();
    let (addr, _outcomes) = echo_server(config).await;
    (addr, certs)
}

#[tokio::test]
async fn insecure_client_with_and_without_pinned_fingerprint() {
    let (addr, certs) = maintenance_server().await;

    // No pin: any certificate; the peer has no client certificate, hence no roles.
    let reply = exchange(addr, tls::client_insecure(None).unwrap()).await;
    assert_eq!(reply.unwrap(), " TLSv1_3\n");

    // The right pin among others.
    let other = tls::generate_self_signed_maintenance(&[LOCALHOST], &[]).unwrap();
    let pins = vec![other.fingerprint.clone(), certs.fingerprint.clone()];
    let reply = exchange(addr, tls::client_insecure(Some(pins)).unwrap()).await;
    assert!(reply.is_ok(), "{reply:?}");

    // A wrong pin.
    let err = exchange(
        addr,
        tls::client_insecure(Some(vec![other.fingerprint.clone()])).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains(&certs.fingerprint) && err.contains("matches none"),
        "{err}"
    );
}

#[tokio::test]
async fn verifying_client_refuses_maintenance_certificate() {
    let (addr, certs) = maintenance_server().await;
    // A client verifying against the cluster CA refuses the maintenance certificate.
    let ca = Ca::new("talos");
    let err = exchange(addr, tls::client_tls(ca.pem().as_bytes()).unwrap())
        .await
        .unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // With the maintenance CA itself, verification succeeds (127.0.0.1 is a SAN).
    let reply = exchange(addr, tls::client_tls(certs.ca_pem.as_bytes()).unwrap()).await;
    assert!(reply.is_ok(), "{reply:?}");
}

#[test]
fn fingerprint_is_base64_sha256_of_spki() {
    // SHA-256 over the DER SubjectPublicKeyInfo, base64: recompute independently.
    use base64::Engine as _;
    use sha2::Digest as _;
    let ca = Ca::new("talos");
    let (crt, _) = ca.server();
    let der = tls::certs_from_pem("crt", crt.as_bytes())
        .unwrap()
        .remove(0);
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    let expected = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(parsed.public_key().raw));
    assert_eq!(tls::spki_fingerprint(&der).unwrap(), expected);
}

#[test]
fn config_errors_name_the_input() {
    let ca = Ca::new("talos");
    let (crt, _) = ca.server();
    let (_, other_key) = ca.server();
    let err = tls::server_mtls(
        &[ca.pem().as_bytes()],
        crt.as_bytes(),
        other_key.as_bytes(),
        true,
    )
    .err()
    .unwrap();
    assert!(matches!(err, TlsError::CertKey { .. }), "{err}");
    let err = tls::server_mtls(&[], crt.as_bytes(), other_key.as_bytes(), true)
        .err()
        .unwrap();
    assert!(matches!(err, TlsError::NoCa), "{err}");
    let err = tls::server_tls_only(b"", b"").err().unwrap();
    assert_eq!(
        err.to_string(),
        "server certificate: no PEM block of type CERTIFICATE found"
    );
}
