//! Secrets bundle and PKI.
//!
//! - [`Bundle`]: the `secrets.yaml` document (`talosctl gen secrets`), its generation per
//!   [`VersionContract`], import from a Kubernetes PKI directory or a controlplane config, and the
//!   talosconfig admin client certificate.
//! - PKI building blocks shared by apid, trustd and `gen config`: [`PrivateKey`],
//!   [`CertificateAuthority`], [`Certificate`], [`CertificateRequest`], fingerprints.
//!
//! Certificates are encoded here (see `der`) so that they have exactly the structure Talos's Go
//! code gives them.

mod bundle;
mod cert;
mod contract;
mod csr;
mod der;
mod import;
mod key;
pub mod kubernetes;
mod params;
pub mod random;

pub use bundle::{
    Bundle, BundleError, CertAndKey, Certs, ClusterInfo, KeyOnly, Secrets, TrustdInfo,
    DEFAULT_ADMIN_ROLE,
};
pub use cert::{Certificate, CertificateAuthority, CA_VALIDITY, CLIENT_CERT_VALIDITY};
pub use contract::{ContractParseError, VersionContract};
pub use csr::{CertificateRequest, CsrInfo};
pub use key::{
    KeyAlgorithm, PrivateKey, PEM_CERTIFICATE, PEM_CERTIFICATE_REQUEST, PEM_EC_PRIVATE,
    PEM_ED25519_PRIVATE, PEM_RSA_PRIVATE, RSA_BITS,
};
pub use params::{CertParams, ExtKeyUsage, KeyUsage};

/// Errors of the PKI primitives.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The OS random source failed.
    #[error("cannot read random bytes: {0}")]
    Random(String),
    /// Key generation failed.
    #[error("cannot generate key: {0}")]
    KeyGeneration(String),
    /// Input is not PEM.
    #[error("not a PEM block: {0}")]
    Pem(String),
    /// A PEM block of an unsupported key type.
    #[error("unsupported key type {0:?} (expected ED25519, EC or RSA PRIVATE KEY)")]
    UnsupportedPemType(String),
    /// A PEM block of another kind than expected.
    #[error("expected a {expected} PEM block, found {found:?}")]
    UnexpectedPemType {
        /// The expected label.
        expected: &'static str,
        /// The label found.
        found: String,
    },
    /// A private key that does not parse.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// A certificate that does not parse.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// A CSR that does not parse.
    #[error("invalid certificate request: {0}")]
    InvalidCsr(String),
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Signing(String),
    /// A signature algorithm we cannot verify.
    #[error("unsupported signature algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// A signature that does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// A CA certificate and key that do not belong together.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// not_after is not after not_before.
    #[error("certificate validity ends before it starts")]
    InvalidValidity,
}

/// Encodes one PEM block the way Go's `pem.EncodeToMemory` does (64-column lines, LF).
pub fn pem_encode(label: &str, der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// Decodes the first PEM block in `bytes`.
pub fn pem_decode(bytes: &[u8]) -> Result<pem::Pem, PkiError> {
    pem::parse(bytes).map_err(|e| PkiError::Pem(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_wraps_at_64() {
        let der = vec![7u8; 100];
        let text = pem_encode("CERTIFICATE", &der);
        let s = String::from_utf8(text.clone()).unwrap();
        assert!(s.lines().all(|l| l.len() <= 64));
        assert!(s.ends_with("-----END CERTIFICATE-----\n"));
        let back = pem_decode(&text).unwrap();
        assert_eq!(back.tag(), "CERTIFICATE");
        assert_eq!(back.contents(), der.as_slice());
        assert!(pem_decode(b"garbage").is_err());
    }
}
