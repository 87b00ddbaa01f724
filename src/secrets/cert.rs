//! X.509 certificates shaped the way Talos (Go's crypto/x509 driven by siderolabs/crypto) makes
//! them: random 128-bit serials, Organization-only subjects, KeyUsage / ExtKeyUsage /
//! BasicConstraints / SubjectKeyId (SHA-1 of the key, CAs only) / AuthorityKeyId / SAN, in
//! that order.

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::csr::CertificateRequest;
use super::der;
use super::key::{KeyAlgorithm, PrivateKey, PEM_CERTIFICATE};
use super::params::{CertParams, ExtKeyUsage, KeyUsage};
use super::PkiError;

const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
const OID_SUBJECT_KEY_ID: &[u64] = &[2, 5, 29, 14];
const OID_AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];

/// Validity of every CA Talos generates: 87600 hours (ten years of 365 days).
pub const CA_VALIDITY: time::Duration = time::Duration::hours(87_600);
/// Default validity of talosconfig client certificates: 8760 hours (one year).
pub const CLIENT_CERT_VALIDITY: time::Duration = time::Duration::hours(8_760);

/// SHA-1 over the subjectPublicKey bits, Go's (and RFC 5280 method 1) key identifier.
fn key_identifier(spki: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| PkiError::InvalidKey(format!("bad public key: {e}")))?;
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &info.subject_public_key.data,
    );
    Ok(digest.as_ref().to_vec())
}

fn random_serial() -> Result<Vec<u8>, PkiError> {
    let mut serial = [0u8; 16];
    super::random::fill(&mut serial)?;
    Ok(der::unsigned_integer(&serial))
}

/// The parts of a certificate to be signed; `issuer` is `None` for a self-signed certificate.
struct ToBeSigned<'a> {
    subject: Vec<u8>,
    spki: &'a [u8],
    params: &'a CertParams,
    is_ca: bool,
}

struct Issuer<'a> {
    subject: Vec<u8>,
    key_id: Option<Vec<u8>>,
    key: &'a PrivateKey,
}

fn build(tbs: &ToBeSigned<'_>, issuer: &Issuer<'_>) -> Result<Certificate, PkiError> {
    let p = tbs.params;
    if p.not_after <= p.not_before {
        return Err(PkiError::InvalidValidity);
    }
    let mut exts: Vec<Vec<u8>> = Vec::new();
    let (ku, eku) = if tbs.is_ca {
        (
            KeyUsage::CERT_SIGN.union(KeyUsage::DIGITAL_SIGNATURE),
            vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth],
        )
    } else {
        (p.key_usage, p.ext_key_usage.clone())
    };
    if ku.0 != 0 {
        exts.push(der::extension(OID_KEY_USAGE, true, &ku.encode()));
    }
    if !eku.is_empty() {
        let oids: Vec<u8> = eku.iter().flat_map(|e| der::oid(e.oid())).collect();
        exts.push(der::extension(
            OID_EXT_KEY_USAGE,
            false,
            &der::tlv(der::tag::SEQUENCE, &oids),
        ));
    }
    if tbs.is_ca {
        exts.push(der::extension(
            OID_BASIC_CONSTRAINTS,
            true,
            &der::sequence(&[&der::bool_true()]),
        ));
        exts.push(der::extension(
            OID_SUBJECT_KEY_ID,
            false,
            &der::octet_string(&key_identifier(tbs.spki)?),
        ));
    }
    if issuer.subject != tbs.subject {
        if let Some(id) = &issuer.key_id {
            exts.push(der::extension(
                OID_AUTHORITY_KEY_ID,
                false,
                &der::sequence(&[&der::tlv(0x80, id)]),
            ));
        }
    }
    if !p.dns_names.is_empty() || !p.ip_addresses.is_empty() {
        // Go marks SAN critical when the subject is empty (RFC 5280 4.2.1.6).
        let empty_subject = tbs.subject == [0x30, 0x00];
        exts.push(der::extension(
            der::OID_SUBJECT_ALT_NAME,
            empty_subject,
            &der::subject_alt_name(&p.dns_names, &p.ip_addresses),
        ));
    }

    let sig_alg = issuer.key.signature_algorithm();
    let validity = der::sequence(&[&der::time(p.not_before), &der::time(p.not_after)]);
    let mut fields: Vec<Vec<u8>> = vec![
        der::explicit(0, &der::small_integer(2)),
        random_serial()?,
        sig_alg.clone(),
        issuer.subject.clone(),
        validity,
        tbs.subject.clone(),
        tbs.spki.to_vec(),
    ];
    if !exts.is_empty() {
        fields.push(der::explicit(
            3,
            &der::tlv(der::tag::SEQUENCE, &exts.concat()),
        ));
    }
    let tbs_der = der::tlv(der::tag::SEQUENCE, &fields.concat());
    let signature = issuer.key.sign(&tbs_der)?;
    let cert = der::sequence(&[&tbs_der, &sig_alg, &der::bit_string(&signature)]);
    Certificate::from_der(cert)
}

/// A parsed-once, DER-held X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

impl Certificate {
    /// Wraps DER bytes, checking that they parse as a certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, PkiError> {
        X509Certificate::from_der(&der).map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
        Ok(Self { der })
    }

    /// Parses the first `CERTIFICATE` PEM block.
    pub fn from_pem(pem_bytes: &[u8]) -> Result<Self, PkiError> {
        let block = super::pem_decode(pem_bytes)?;
        if block.tag() != PEM_CERTIFICATE {
            return Err(PkiError::UnexpectedPemType {
                expected: PEM_CERTIFICATE,
                found: block.tag().to_string(),
            });
        }
        Self::from_der(block.into_contents())
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM text as Go's `pem.EncodeToMemory` writes it.
    pub fn to_pem(&self) -> Vec<u8> {
        super::pem_encode(PEM_CERTIFICATE, &self.der)
    }

    /// The parsed view (for reading any field).
    pub fn parsed(&self) -> Result<X509Certificate<'_>, PkiError> {
        X509Certificate::from_der(&self.der)
            .map(|(_, c)| c)
            .map_err(|e| PkiError::InvalidCertificate(e.to_string()))
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn public_key_info(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.parsed()?.tbs_certificate.subject_pki.raw.to_vec())
    }

    /// The DER subject name.
    pub fn subject_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.parsed()?.tbs_certificate.subject.as_raw().to_vec())
    }

    /// The Organization values of the subject.
    pub fn organizations(&self) -> Result<Vec<String>, PkiError> {
        let cert = self.parsed()?;
        Ok(cert
            .subject()
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_string))
            .collect())
    }

    /// The SubjectKeyIdentifier, if present.
    pub fn subject_key_id(&self) -> Result<Option<Vec<u8>>, PkiError> {
        let cert = self.parsed()?;
        for ext in cert.extensions() {
            if let x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) =
                ext.parsed_extension()
            {
                return Ok(Some(id.0.to_vec()));
            }
        }
        Ok(None)
    }

    /// The end of validity.
    pub fn not_after(&self) -> Result<OffsetDateTime, PkiError> {
        Ok(self.parsed()?.validity().not_after.to_datetime())
    }

    /// base64(SHA-256(SubjectPublicKeyInfo)): the SPKI fingerprint talosctl pins with
    /// `--cert-fingerprint`.
    pub fn spki_fingerprint(&self) -> Result<String, PkiError> {
        use base64::Engine;
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.public_key_info()?);
        Ok(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
    }

    /// `sha256:<hex of SHA-256(SubjectPublicKeyInfo)>`, the content of the `.sha256` file
    /// `talosctl gen ca` writes.
    pub fn spki_hash(&self) -> Result<String, PkiError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.public_key_info()?);
        Ok(format!("sha256:{}", hex::encode(digest.as_ref())))
    }
}

/// A certificate authority: its certificate and private key.
#[derive(Debug)]
pub struct CertificateAuthority {
    /// The CA certificate.
    pub cert: Certificate,
    /// The CA private key.
    pub key: PrivateKey,
}

impl CertificateAuthority {
    /// Generates a key of `alg` and a self-signed CA for it, like Talos: Subject holds only the
    /// organizations, KeyUsage CertSign + DigitalSignature (critical), ExtKeyUsage ServerAuth +
    /// ClientAuth, BasicConstraints CA (critical), SubjectKeyId; IP/DNS SANs if given.
    pub fn generate(alg: KeyAlgorithm, params: &CertParams) -> Result<Self, PkiError> {
        Self::self_signed(PrivateKey::generate(alg)?, params)
    }

    /// A self-signed CA for an existing key (see [`CertificateAuthority::generate`]).
    pub fn self_signed(key: PrivateKey, params: &CertParams) -> Result<Self, PkiError> {
        let spki = key.public_key_info()?;
        let subject = der::name(&params.organizations, None);
        let tbs = ToBeSigned {
            subject: subject.clone(),
            spki: &spki,
            params,
            is_ca: true,
        };
        let issuer = Issuer {
            subject,
            key_id: None,
            key: &key,
        };
        let cert = build(&tbs, &issuer)?;
        Ok(Self { cert, key })
    }

    /// Loads a CA from PEM certificate and key, checking that they belong together.
    pub fn from_pem(crt: &[u8], key: &[u8]) -> Result<Self, PkiError> {
        let cert = Certificate::from_pem(crt)?;
        let key = PrivateKey::from_pem(key)?;
        if cert.public_key_info()? != key.public_key_info()? {
            return Err(PkiError::KeyMismatch);
        }
        Ok(Self { cert, key })
    }

    fn issuer(&self) -> Result<Issuer<'_>, PkiError> {
        Ok(Issuer {
            subject: self.cert.subject_der()?,
            key_id: self.cert.subject_key_id()?,
            key: &self.key,
        })
    }

    /// Signs a leaf (non-CA) certificate for the public key `spki` (DER SubjectPublicKeyInfo).
    pub fn sign_public_key(
        &self,
        spki: &[u8],
        params: &CertParams,
    ) -> Result<Certificate, PkiError> {
        let tbs = ToBeSigned {
            subject: der::name(&params.organizations, params.common_name.as_deref()),
            spki,
            params,
            is_ca: false,
        };
        build(&tbs, &self.issuer()?)
    }

    /// Signs a CSR after checking its signature. Subject and SANs come from the CSR unless
    /// `subject` overrides the subject (trustd passes one without organizations); validity and
    /// usages come from `params` (its names are ignored).
    pub fn sign_csr(
        &self,
        csr: &CertificateRequest,
        params: &CertParams,
        subject: Option<(&[String], Option<&str>)>,
    ) -> Result<Certificate, PkiError> {
        csr.verify()?;
        let info = csr.info()?;
        let (orgs, cn) = match subject {
            Some((o, c)) => (o.to_vec(), c.map(str::to_string)),
            None => (info.organizations, info.common_name),
        };
        let params = CertParams {
            common_name: cn,
            organizations: orgs,
            dns_names: info.dns_names,
            ip_addresses: info.ip_addresses,
            ..params.clone()
        };
        self.sign_public_key(&info.public_key_info, &params)
    }

    /// Generates a key of the CA's kind (Ed25519, ECDSA P-256 or RSA-4096) and a leaf certificate
    /// for it signed by this CA, like siderolabs/crypto `NewKeyPair`.
    pub fn issue(&self, params: &CertParams) -> Result<(Certificate, PrivateKey), PkiError> {
        let key = PrivateKey::generate(self.key.algorithm())?;
        let cert = self.sign_public_key(&key.public_key_info()?, params)?;
        Ok((cert, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::ParsedExtension;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2024-04-01 12:00:00 UTC)
    }

    #[test]
    fn ed25519_ca_has_talos_shape() {
        let params = CertParams::new(now(), CA_VALIDITY).organizations(["talos"]);
        let ca = CertificateAuthority::generate(KeyAlgorithm::Ed25519, &params).unwrap();
        let c = ca.cert.parsed().unwrap();
        assert_eq!(c.version().0, 2);
        assert_eq!(
            c.signature_algorithm.algorithm.to_id_string(),
            "1.3.101.112"
        );
        assert_eq!(c.subject().to_string(), "O=talos");
        assert_eq!(c.issuer().to_string(), "O=talos");
        assert_eq!(c.validity().not_before.to_datetime(), now());
        assert_eq!(c.validity().not_after.to_datetime(), now() + CA_VALIDITY);
        assert!(c.is_ca());
        assert!(c.serial.bits() <= 128);
        let kinds: Vec<_> = c
            .extensions()
            .iter()
            .map(|e| e.oid.to_id_string())
            .collect();
        assert_eq!(kinds, ["2.5.29.15", "2.5.29.37", "2.5.29.19", "2.5.29.14"]);
        let ku = c.key_usage().unwrap().unwrap();
        assert!(ku.critical && ku.value.key_cert_sign() && ku.value.digital_signature());
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let ski = ca.cert.subject_key_id().unwrap().unwrap();
        assert_eq!(
            ski,
            key_identifier(&ca.key.public_key_info().unwrap()).unwrap()
        );
        // Self-signature verifies.
        super::super::key::verify(
            c.public_key().raw,
            "1.3.101.112",
            c.tbs_certificate.as_ref(),
            &c.signature_value.data,
        )
        .unwrap();
    }

    #[test]
    fn leaf_from_csr_gets_aki_sans_and_requested_usages() {
        let ca = CertificateAuthority::generate(
            KeyAlgorithm::EcdsaP256,
            &CertParams::new(now(), CA_VALIDITY).organizations(["kubernetes"]),
        )
        .unwrap();
        let key = PrivateKey::generate_ecdsa_p256();
        let csr = CertificateRequest::new(
            &key,
            &CertParams::new(now(), time::Duration::hours(1))
                .organizations(["os:admin"])
                .ip_addresses(["10.5.0.2".parse().unwrap()])
                .dns_names(["node-1"]),
        )
        .unwrap();
        let params = CertParams::new(now(), time::Duration::hours(24))
            .ext_key_usage([ExtKeyUsage::ServerAuth]);
        let crt = ca.sign_csr(&csr, &params, Some((&[], None))).unwrap();
        let c = crt.parsed().unwrap();
        assert_eq!(c.subject().to_string(), "");
        assert_eq!(c.issuer().to_string(), "O=kubernetes");
        assert!(!c.is_ca());
        assert!(c.basic_constraints().unwrap().is_none());
        let mut aki = None;
        let mut san_critical = false;
        for e in c.extensions() {
            match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => aki = a.key_identifier.clone(),
                ParsedExtension::SubjectAlternativeName(_) => san_critical = e.critical,
                ParsedExtension::SubjectKeyIdentifier(_) => panic!("leaf must not carry SKI"),
                _ => {}
            }
        }
        assert_eq!(
            aki.unwrap().0,
            ca.cert.subject_key_id().unwrap().unwrap().as_slice()
        );
        assert!(san_critical, "SAN is critical when the subject is empty");
        let san = c.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(san.general_names.len(), 2);
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        super::super::key::verify(
            ca.cert.public_key_info().unwrap().as_slice(),
            "1.2.840.10045.4.3.2",
            c.tbs_certificate.as_ref(),
            &c.signature_value.data,
        )
        .unwrap();
    }

    #[test]
    fn tampered_csr_is_refused() {
        let ca = CertificateAuthority::generate(
            KeyAlgorithm::Ed25519,
            &CertParams::new(now(), CA_VALIDITY).organizations(["talos"]),
        )
        .unwrap();
        let key = PrivateKey::generate_ed25519().unwrap();
        let csr = CertificateRequest::new(
            &key,
            &CertParams::new(now(), CA_VALIDITY).organizations(["os:reader"]),
        )
        .unwrap();
        let mut der = csr.der().to_vec();
        let n = der.len();
        der[n - 1] ^= 1;
        let bad = CertificateRequest::from_der(der).unwrap();
        let err = ca
            .sign_csr(&bad, &CertParams::new(now(), CA_VALIDITY), None)
            .unwrap_err();
        assert!(matches!(err, PkiError::BadSignature), "{err}");
    }

    #[test]
    fn mismatched_ca_key_is_refused() {
        let p = CertParams::new(now(), CA_VALIDITY).organizations(["talos"]);
        let a = CertificateAuthority::generate(KeyAlgorithm::Ed25519, &p).unwrap();
        let b = CertificateAuthority::generate(KeyAlgorithm::Ed25519, &p).unwrap();
        let err =
            CertificateAuthority::from_pem(&a.cert.to_pem(), &b.key.to_pem().unwrap()).unwrap_err();
        assert!(matches!(err, PkiError::KeyMismatch));
    }

    #[test]
    fn empty_validity_is_refused() {
        let mut p = CertParams::new(now(), CA_VALIDITY);
        p.not_after = p.not_before;
        assert!(matches!(
            CertificateAuthority::generate(KeyAlgorithm::Ed25519, &p),
            Err(PkiError::InvalidValidity)
        ));
    }
}
