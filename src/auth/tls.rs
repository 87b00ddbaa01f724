//! rustls configurations for the Talos API, matching Talos 1.7's TLS settings.
//!
//! - [`server_mtls`]: apid on :50000. A client certificate is required and must chain to one of
//!   the accepted CAs (the OS CA plus `machine.acceptedCAs`); optionally its extended key usage
//!   must be exactly `ClientAuth` (`machine.features.apidCheckExtKeyUsage`).
//! - [`server_tls_only`]: trustd on :50001 and the maintenance API (no client certificate).
//! - [`client_mtls`] / [`client_tls`]: talosctl and apid-to-apid forwarding / workers calling trustd.
//! - [`client_insecure`]: `talosctl --insecure`, optionally pinning the server's SPKI fingerprint.
//!
//! All configurations use the *ring* provider, TLS 1.3 and TLS 1.2 (TLS 1.2 restricted to the
//! one suite Talos offers, ECDHE-ECDSA-AES256-GCM-SHA384), X25519 key exchange, and ALPN `h2`.
//! Ed25519 and ECDSA certificates work with both versions; RSA server keys only with TLS 1.3.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring as ring_provider, CryptoProvider};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    ServerName, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::role::RoleSet;

/// Protocol versions offered by every configuration here, newest first. There is no TLS 1.1 or
/// older: Talos's minimum is TLS 1.2, and rustls cannot speak anything older anyway.
pub static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The ALPN protocol gRPC runs over.
pub const ALPN_H2: &[u8] = b"h2";

/// Common name of the maintenance server certificate (as in Talos).
pub const MAINTENANCE_COMMON_NAME: &str = "maintenance-service.talos.dev";

/// Errors building TLS configurations or certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Input that should be PEM is not.
    #[error("{what}: not valid PEM")]
    Pem {
        /// Which input (e.g. "client certificate").
        what: &'static str,
        /// The PEM parser's error.
        #[source]
        source: pem::PemError,
    },
    /// PEM without a `CERTIFICATE` block.
    #[error("{what}: no PEM block of type CERTIFICATE found")]
    NoCertificate {
        /// Which input.
        what: &'static str,
    },
    /// PEM without a supported private key block.
    #[error(
        "{what}: no private key found (expected a PEM block of type PRIVATE KEY, \
         ED25519 PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)"
    )]
    NoPrivateKey {
        /// Which input.
        what: &'static str,
    },
    /// DER that is not an X.509 certificate.
    #[error("{what}: not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// Which input.
        what: &'static str,
        /// What the parser reported.
        reason: String,
    },
    /// A CA certificate rustls cannot use as a trust anchor.
    #[error("CA certificate cannot be used as a trust anchor")]
    BadCa(#[source] rustls::Error),
    /// No CA certificate was given where at least one is needed.
    #[error("no CA certificate given: the accepted CAs must contain at least the OS (machine.ca) certificate")]
    NoCa,
    /// The certificate and key do not form a usable pair.
    #[error("{what}: certificate and key rejected (is the key the one of the certificate, and of a supported type: Ed25519, ECDSA P-256/P-384, RSA?)")]
    CertKey {
        /// Which pair.
        what: &'static str,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the protocol/cipher configuration (a bug, not an input problem).
    #[error("TLS configuration rejected")]
    Config(#[source] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier cannot be built")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// A `--cert-fingerprint` value that is not base64.
    #[error("invalid certificate fingerprint {0:?}: expected the base64 SHA-256 of the server's public key, as the node's console prints it")]
    BadFingerprint(String),
    /// Certificate generation failed.
    #[error("cannot generate the maintenance certificate")]
    Generate(#[source] rcgen::Error),
}

/// The crypto provider for every configuration: *ring*, Talos's cipher suites and X25519.
fn provider() -> Arc<CryptoProvider> {
    use ring_provider::cipher_suite as cs;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![ring_provider::kx_group::X25519],
        ..ring_provider::default_provider()
    })
}

fn parse_pem(what: &'static str, data: &[u8]) -> Result<Vec<pem::Pem>, TlsError> {
    pem::parse_many(data).map_err(|source| TlsError::Pem { what, source })
}

/// All `CERTIFICATE` blocks of a PEM input (a chain or a CA bundle); at least one.
pub fn certs_from_pem(
    what: &'static str,
    data: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = parse_pem(what, data)?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certs)
}

/// The first private key of a PEM input. Besides the standard labels this accepts Talos's
/// `ED25519 PRIVATE KEY` (PKCS#8 inside).
pub fn key_from_pem(what: &'static str, data: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    parse_pem(what, data)?
        .into_iter()
        .find_map(|p| match p.tag() {
            "PRIVATE KEY" | "ED25519 PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(
                PrivatePkcs8KeyDer::from(p.into_contents()),
            )),
            "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(
                p.into_contents(),
            ))),
            "RSA PRIVATE KEY" => Some(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(
                p.into_contents(),
            ))),
            _ => None,
        })
        .ok_or(TlsError::NoPrivateKey { what })
}

fn root_store(ca_pems: &[&[u8]]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for pem in ca_pems {
        for cert in certs_from_pem("CA certificate", pem)? {
            roots.add(cert).map_err(TlsError::BadCa)?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoCa);
    }
    Ok(roots)
}

fn finish_server(
    builder: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<ServerConfig, TlsError> {
    let chain = certs_from_pem("server certificate", cert_pem)?;
    let key = key_from_pem("server key", key_pem)?;
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::CertKey {
            what: "server certificate",
            source,
        })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    // Like Talos: no session resumption, every connection is fully authenticated.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// apid's server configuration: a client certificate is required and must chain to one of
/// `ca_pems` (each a PEM bundle: the OS CA, then any accepted CAs). Expired or not-yet-valid
/// certificates, and certificates whose extended key usage excludes ClientAuth, are refused.
/// With `check_ext_key_usage`, the extended key usage must be exactly `[ClientAuth]`.
pub fn server_mtls(
    ca_pems: &[&[u8]],
    server_cert_pem: &[u8],
    server_key_pem: &[u8],
    check_ext_key_usage: bool,
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let roots = Arc::new(root_store(ca_pems)?);
    let webpki = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(TlsError::Verifier)?;
    let verifier: Arc<dyn ClientCertVerifier> = if check_ext_key_usage {
        Arc::new(ClientAuthOnly(webpki))
    } else {
        webpki
    };
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier);
    finish_server(builder, server_cert_pem, server_key_pem)
}

/// Server configuration without client certificates (trustd, maintenance API).
pub fn server_tls_only(
    server_cert_pem: &[u8],
    server_key_pem: &[u8],
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Config)?
        .with_no_client_auth();
    finish_server(builder, server_cert_pem, server_key_pem)
}

fn client_builder(
    ca_pem: &[u8],
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, TlsError> {
    let roots = root_store(&[ca_pem])?;
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Config)?
        .with_root_certificates(roots))
}

fn finish_client(mut config: ClientConfig) -> ClientConfig {
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config
}

/// Client configuration presenting a certificate (talosctl with a talosconfig context, apid
/// forwarding to another node). The server certificate must chain to `ca_pem` and be valid for
/// the name or IP address dialled.
pub fn client_mtls(
    ca_pem: &[u8],
    crt_pem: &[u8],
    key_pem: &[u8],
) -> Result<ClientConfig, TlsError> {
    let chain = certs_from_pem("client certificate", crt_pem)?;
    let key = key_from_pem("client key", key_pem)?;
    let config = client_builder(ca_pem)?
        .with_client_auth_cert(chain, key)
        .map_err(|source| TlsError::CertKey {
            what: "client certificate",
            source,
        })?;
    Ok(finish_client(config))
}

/// Client configuration without a client certificate, verifying the server against `ca_pem`
/// (a worker calling trustd).
pub fn client_tls(ca_pem: &[u8]) -> Result<ClientConfig, TlsError> {
    Ok(finish_client(client_builder(ca_pem)?.with_no_client_auth()))
}

/// `talosctl --insecure`: the server's certificate chain is not verified (the maintenance
/// certificate is self-signed per boot), but the handshake signature is. When `fingerprints`
/// is given (each base64 SHA-256 of a SubjectPublicKeyInfo, as `--cert-fingerprint` takes
/// them), the server's leaf certificate must match one of them.
pub fn client_insecure(fingerprints: Option<Vec<String>>) -> Result<ClientConfig, TlsError> {
    let pinned = fingerprints
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|_| TlsError::BadFingerprint(s))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let provider = provider();
    let verifier = Arc::new(PinnedOrAny {
        pinned,
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(finish_client(config))
}

fn parse_cert<'a>(what: &'static str, der: &'a [u8]) -> Result<X509Certificate<'a>, TlsError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| TlsError::BadCertificate {
            what,
            reason: e.to_string(),
        })
}

/// The Organization attributes of a certificate's subject, in order (empty ones included).
pub fn peer_cert_organizations(der: &[u8]) -> Result<Vec<String>, TlsError> {
    let cert = parse_cert("client certificate", der)?;
    Ok(cert
        .subject()
        .iter_organization()
        .filter_map(|attr| attr.as_str().ok())
        .map(str::to_owned)
        .collect())
}

/// The roles of a client: the Organization attributes of its certificate's subject.
/// (For the impersonation rule use [`peer_cert_organizations`] with
/// [`super::rules::inject_roles`].)
pub fn roles_from_peer_cert(der: &[u8]) -> Result<RoleSet, TlsError> {
    Ok(RoleSet::parse(peer_cert_organizations(der)?))
}

/// The roles of the client on an accepted server connection; empty without a client
/// certificate (trustd, maintenance) or if it cannot be parsed.
pub fn peer_roles(conn: &rustls::ServerConnection) -> RoleSet {
    conn.peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| roles_from_peer_cert(leaf).ok())
        .unwrap_or_default()
}

/// Talos's certificate fingerprint: base64 (standard, padded) of the SHA-256 of the
/// certificate's DER SubjectPublicKeyInfo.
pub fn spki_fingerprint(der: &[u8]) -> Result<String, TlsError> {
    let cert = parse_cert("certificate", der)?;
    Ok(fingerprint_of_spki(cert.public_key().raw))
}

fn fingerprint_of_spki(spki: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki))
}

fn cert_error(msg: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(MessageError(
        msg,
    )))))
}

/// A plain message as an error, carried inside rustls's `OtherError`.
#[derive(Debug)]
struct MessageError(String);

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MessageError {}

/// True if the certificate's extended key usage is present and is exactly `[ClientAuth]`.
/// (Stricter than Go in one corner: an extra unrecognised usage OID is refused too.)
fn has_only_client_auth(cert: &X509Certificate<'_>) -> bool {
    match cert.extended_key_usage() {
        Ok(Some(ext)) => {
            let eku = ext.value;
            eku.client_auth
                && !eku.any
                && !eku.server_auth
                && !eku.code_signing
                && !eku.email_protection
                && !eku.time_stamping
                && !eku.ocsp_signing
                && eku.other.is_empty()
        }
        _ => false,
    }
}

/// Client verifier that also demands an extended key usage of exactly `[ClientAuth]`.
#[derive(Debug)]
struct ClientAuthOnly(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for ClientAuthOnly {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        let cert = X509Certificate::from_der(end_entity)
            .map(|(_, c)| c)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if !has_only_client_auth(&cert) {
            return Err(cert_error(format!(
                "client certificate {:?} must have exactly the client auth extended key usage",
                cert.subject().to_string()
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Server verifier for `--insecure`: any chain, optionally pinned by SPKI fingerprint;
/// handshake signatures are still checked.
#[derive(Debug)]
struct PinnedOrAny {
    pinned: Vec<Vec<u8>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedOrAny {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pinned.is_empty() {
            return Ok(ServerCertVerified::assertion());
        }
        let cert = X509Certificate::from_der(end_entity)
            .map(|(_, c)| c)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let got = Sha256::digest(cert.public_key().raw);
        if self.pinned.iter().any(|p| p[..] == got[..]) {
            return Ok(ServerCertVerified::assertion());
        }
        let pinned: Vec<String> = self
            .pinned
            .iter()
            .map(|p| base64::engine::general_purpose::STANDARD.encode(p))
            .collect();
        Err(cert_error(format!(
            "server certificate fingerprint {} matches none of the given fingerprints {pinned:?}",
            fingerprint_of_spki(cert.public_key().raw)
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The per-boot maintenance PKI: a self-signed CA and the server certificate it signed.
#[derive(Clone)]
pub struct MaintenanceCerts {
    /// PEM of the self-signed "maintenance root" CA.
    pub ca_pem: String,
    /// PEM of the server certificate.
    pub cert_pem: String,
    /// PEM (PKCS#8) of the server key.
    pub key_pem: String,
    /// [`spki_fingerprint`] of the server certificate, for `--cert-fingerprint`.
    pub fingerprint: String,
}

impl fmt::Debug for MaintenanceCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaintenanceCerts")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Validity of the maintenance CA and server certificate.
pub const MAINTENANCE_VALIDITY: time::Duration = time::Duration::hours(24);

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    rcgen::SerialNumber::from_slice(&bytes)
}

/// Generates the maintenance PKI like Talos does at boot: an Ed25519 self-signed CA valid for
/// 24 h, and an Ed25519 server certificate (CN `maintenance-service.talos.dev`, ServerAuth,
/// 24 h) for the given IP addresses and DNS names. Talos passes the node's addresses plus
/// `127.0.0.1` and `::1`, and the hostname's DNS names; it renews the server certificate every
/// 12 h (the CA stays for the boot; the client does not verify the chain anyway).
pub fn generate_self_signed_maintenance(
    ips: &[IpAddr],
    dns_names: &[String],
) -> Result<MaintenanceCerts, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_ED25519,
    };

    let now = time::OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate_for(&PKCS_ED25519).map_err(TlsError::Generate)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.serial_number = Some(random_serial());
    ca.not_before = now;
    ca.not_after = now + MAINTENANCE_VALIDITY;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(TlsError::Generate)?;

    let key = KeyPair::generate_for(&PKCS_ED25519).map_err(TlsError::Generate)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, MAINTENANCE_COMMON_NAME);
    params.serial_number = Some(random_serial());
    params.not_before = now;
    params.not_after = now + MAINTENANCE_VALIDITY;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    for name in dns_names {
        let dns = name.clone().try_into().map_err(TlsError::Generate)?;
        params.subject_alt_names.push(SanType::DnsName(dns));
    }
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .map_err(TlsError::Generate)?;

    Ok(MaintenanceCerts {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        fingerprint: spki_fingerprint(cert.der())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_certs() {
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let certs = generate_self_signed_maintenance(&ips, &["talos-abc".into()]).unwrap();
        let der = certs_from_pem("t", certs.cert_pem.as_bytes()).unwrap();
        let (_, cert) = X509Certificate::from_der(&der[0]).unwrap();
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(cn, vec![MAINTENANCE_COMMON_NAME]);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let validity =
            cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert_eq!(validity, 24 * 3600);
        assert_eq!(spki_fingerprint(&der[0]).unwrap(), certs.fingerprint);
        assert_eq!(certs.fingerprint.len(), 44);
        // The server config accepts the generated pair.
        server_tls_only(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap();
        let ca = certs_from_pem("t", certs.ca_pem.as_bytes()).unwrap();
        let (_, ca) = X509Certificate::from_der(&ca[0]).unwrap();
        assert!(ca.is_ca());
    }

    #[test]
    fn key_labels() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let talos_style = key
            .serialize_pem()
            .replace("PRIVATE KEY", "ED25519 PRIVATE KEY");
        assert!(matches!(
            key_from_pem("k", talos_style.as_bytes()).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
        let err = key_from_pem("server key", b"").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("server key: no private key found"));
        let err = certs_from_pem("CA certificate", b"garbage").unwrap_err();
        assert!(err.to_string().starts_with("CA certificate:"), "{err}");
    }

    #[test]
    fn bad_inputs() {
        assert!(matches!(
            client_insecure(Some(vec!["not base64!".into()])),
            Err(TlsError::BadFingerprint(_))
        ));
        assert!(matches!(root_store(&[]), Err(TlsError::NoCa)));
        assert!(spki_fingerprint(b"\x30\x03\x02\x01\x00").is_err());
    }
}
