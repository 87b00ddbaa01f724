//! X.509 certificates shaped the way Talos (Go's crypto/x509 driven by siderolabs/crypto) makes
//! them: random 128-bit serials, Organization-only subjects, KeyUsage / ExtKeyUsage /
//! BasicConstraints / SubjectKeyId (SHA-1 of the key, CAs only) / AuthorityKeyId / SAN, in
//! that order.

use std::net::IpAddr;

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::csr::CertificateRequest;
use super::der;
use super::key::{KeyAlgorithm, PrivateKey, PEM_CERTIFICATE};
use super::PkiError;

const OID_ORGANIZATION: &[u64] = &[2, 5, 4, 10];
const OID_COMMON_NAME: &[u64] = &[2, 5, 4, 3];
const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
const OID_SUBJECT_KEY_ID: &[u64] = &[2, 5, 29, 14];
const OID_AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
pub(crate) const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];

/// Validity of every CA Talos generates: 87600 hours (ten years of 365 days).
pub const CA_VALIDITY: time::Duration = time::Duration::hours(87_600);
/// Default validity of talosconfig client certificates: 8760 hours (one year).
pub const CLIENT_CERT_VALIDITY: time::Duration = time::Duration::hours(8_760);

/// X.509 KeyUsage bits, numbered as Go's `x509.KeyUsage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyUsage(pub u16);

impl KeyUsage {
    /// digitalSignature.
    pub const DIGITAL_SIGNATURE: Self = Self(1 << 0);
    /// keyEncipherment.
    pub const KEY_ENCIPHERMENT: Self = Self(1 << 2);
    /// keyCertSign.
    pub const CERT_SIGN: Self = Self(1 << 5);
    /// cRLSign.
    pub const CRL_SIGN: Self = Self(1 << 6);

    /// Both sets of bits.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The BIT STRING as Go writes it: bits in ASN.1 order, trailing zero bits dropped.
    fn encode(self) -> Vec<u8> {
        let a = [
            (self.0 as u8).reverse_bits(),
            ((self.0 >> 8) as u8).reverse_bits(),
        ];
        let bytes: &[u8] = if a[1] != 0 { &a } else { &a[..1] };
        let last = bytes[bytes.len() - 1];
        let unused = if last == 0 {
            0
        } else {
            last.trailing_zeros() as u8
        };
        let mut body = vec![unused];
        body.extend_from_slice(bytes);
        der::tlv(der::tag::BIT_STRING, &body)
    }
}

/// X.509 extended key usages Talos uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtKeyUsage {
    /// id-kp-serverAuth.
    ServerAuth,
    /// id-kp-clientAuth.
    ClientAuth,
}

impl ExtKeyUsage {
    fn oid(self) -> &'static [u64] {
        match self {
            Self::ServerAuth => &[1, 3, 6, 1, 5, 5, 7, 3, 1],
            Self::ClientAuth => &[1, 3, 6, 1, 5, 5, 7, 3, 2],
        }
    }
}

/// What goes into a certificate besides the key: names, validity and usages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertParams {
    /// Subject CommonName (CSRs and leaf certificates only; Talos never sets it on CAs).
    pub common_name: Option<String>,
    /// Subject Organization values (for client certificates: the roles).
    pub organizations: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// KeyUsage bits of a leaf certificate (CAs always get CertSign + DigitalSignature).
    pub key_usage: KeyUsage,
    /// Extended key usages of a leaf certificate (CAs always get ServerAuth + ClientAuth).
    pub ext_key_usage: Vec<ExtKeyUsage>,
}

impl CertParams {
    /// Talos's defaults: valid from `not_before` for `ttl`, DigitalSignature, ServerAuth + ClientAuth.
    pub fn new(not_before: OffsetDateTime, ttl: time::Duration) -> Self {
        Self {
            common_name: None,
            organizations: Vec::new(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            not_before,
            not_after: not_before + ttl,
            key_usage: KeyUsage::DIGITAL_SIGNATURE,
            ext_key_usage: vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth],
        }
    }

    /// Sets the organizations.
    #[must_use]
    pub fn organizations<S: Into<String>>(mut self, orgs: impl IntoIterator<Item = S>) -> Self {
        self.organizations = orgs.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the IP addresses.
    #[must_use]
    pub fn ip_addresses(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.ip_addresses = ips.into_iter().collect();
        self
    }

    /// Sets the DNS names.
    #[must_use]
    pub fn dns_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.dns_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the key usage bits.
    #[must_use]
    pub fn key_usage(mut self, ku: KeyUsage) -> Self {
        self.key_usage = ku;
        self
    }

    /// Sets the extended key usages.
    #[must_use]
    pub fn ext_key_usage(mut self, eku: impl IntoIterator<Item = ExtKeyUsage>) -> Self {
        self.ext_key_usage = eku.into_iter().collect();
        self
    }
}

/// Encodes a distinguished name the way Go's `pkix.Name` does for O and CN: all organizations in
/// one multi-valued RDN, then the common name.
pub(crate) fn encode_name(organizations: &[String], common_name: Option<&str>) -> Vec<u8> {
    let mut rdns: Vec<Vec<u8>> = Vec::new();
    let atv = |oid: &[u64], v: &str| der::sequence(&[&der::oid(oid), &der::directory_string(v)]);
    if !organizations.is_empty() {
        rdns.push(der::set_of(
            organizations
                .iter()
                .map(|o| atv(OID_ORGANIZATION, o))
                .collect(),
        ));
    }
    if let Some(cn) = common_name.filter(|c| !c.is_empty()) {
        rdns.push(der::set_of(vec![atv(OID_COMMON_NAME, cn)]));
    }
    der::tlv(der::tag::SEQUENCE, &rdns.concat())
}

pub(crate) fn encode_san(dns_names: &[String], ips: &[IpAddr]) -> Vec<u8> {
    let mut names = Vec::new();
    for d in dns_names {
        names.extend(der::tlv(0x82, d.as_bytes()));
    }
    for ip in ips {
        match ip {
            IpAddr::V4(v4) => names.extend(der::tlv(0x87, &v4.octets())),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => names.extend(der::tlv(0x87, &v4.octets())),
                None => names.extend(der::tlv(0x87, &v6.octets())),
            },
        }
    }
    der::tlv(der::tag::SEQUENCE, &names)
}

pub(crate) fn extension(oid: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        der::sequence(&[&der::oid(oid), &der::bool_true(), &der::octet_string(value)])
    } else {
        der::sequence(&[&der::oid(oid), &der::octet_string(value)])
    }
}

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
        exts.push(extension(OID_KEY_USAGE, true, &ku.encode()));
    }
    if !eku.is_empty() {
        let oids: Vec<u8> = eku.iter().flat_map(|e| der::oid(e.oid())).collect();
        exts.push(extension(
            OID_EXT_KEY_USAGE,
            false,
            &der::tlv(der::tag::SEQUENCE, &oids),
        ));
    }
    if tbs.is_ca {
        exts.push(extension(
            OID_BASIC_CONSTRAINTS,
            true,
            &der::sequence(&[&der::bool_true()]),
        ));
        exts.push(extension(
            OID_SUBJECT_KEY_ID,
            false,
            &der::octet_string(&key_identifier(tbs.spki)?),
        ));
    }
    if issuer.subject != tbs.subject {
        if let Some(id) = &issuer.key_id {
            exts.push(extension(
                OID_AUTHORITY_KEY_ID,
                false,
                &der::sequence(&[&der::tlv(0x80, id)]),
            ));
        }
    }
    if !p.dns_names.is_empty() || !p.ip_addresses.is_empty() {
        // Go marks SAN critical when the subject is empty (RFC 5280 4.2.1.6).
        let empty_subject = tbs.subject == [0x30, 0x00];
        exts.push(extension(
            OID_SUBJECT_ALT_NAME,
            empty_subject,
            &encode_san(&p.dns_names, &p.ip_addresses),
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
        let subject = encode_name(&params.organizations, None);
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
            subject: encode_name(&params.organizations, params.common_name.as_deref()),
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
    fn key_usage_bits_encode_like_go() {
        let ca = KeyUsage::CERT_SIGN.union(KeyUsage::DIGITAL_SIGNATURE);
        assert_eq!(ca.encode(), vec![0x03, 0x02, 0x02, 0x84]);
        assert_eq!(
            KeyUsage::DIGITAL_SIGNATURE.encode(),
            vec![0x03, 0x02, 0x07, 0x80]
        );
    }

    #[test]
    fn names_group_organizations_in_one_rdn() {
        let n = encode_name(&["os:reader".into(), "os:admin".into()], None);
        let (_, parsed) = x509_parser::x509::X509Name::from_der(&n).unwrap();
        assert_eq!(parsed.iter_rdn().count(), 1);
        assert_eq!(parsed.iter_organization().count(), 2);
        assert_eq!(encode_name(&[], None), vec![0x30, 0x00]);
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
