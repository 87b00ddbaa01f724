//! PKCS#10 certificate signing requests, as siderolabs/crypto `NewCertificateSigningRequest`
//! makes them (subject O + CN, SANs in an extensionRequest attribute).

use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use super::der;
use super::key::{PrivateKey, PEM_CERTIFICATE_REQUEST};
use super::params::CertParams;
use super::PkiError;

const OID_EXTENSION_REQUEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 14];

/// A DER-held certificate signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    der: Vec<u8>,
}

/// The fields of a CSR that signing uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    /// Subject Organization values.
    pub organizations: Vec<String>,
    /// Subject CommonName.
    pub common_name: Option<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// DER SubjectPublicKeyInfo.
    pub public_key_info: Vec<u8>,
}

impl CertificateRequest {
    /// Creates a CSR signed by `key` with the names in `params` (validity and usages are ignored).
    pub fn new(key: &PrivateKey, params: &CertParams) -> Result<Self, PkiError> {
        let subject = der::name(&params.organizations, params.common_name.as_deref());
        let attributes = if params.dns_names.is_empty() && params.ip_addresses.is_empty() {
            Vec::new()
        } else {
            let san = der::extension(
                der::OID_SUBJECT_ALT_NAME,
                false,
                &der::subject_alt_name(&params.dns_names, &params.ip_addresses),
            );
            let exts = der::sequence(&[&san]);
            der::sequence(&[&der::oid(OID_EXTENSION_REQUEST), &der::set_of(vec![exts])])
        };
        let info = der::sequence(&[
            &der::small_integer(0),
            &subject,
            &key.public_key_info()?,
            &der::tlv(0xa0, &attributes),
        ]);
        let sig = key.sign(&info)?;
        let csr = der::sequence(&[&info, &key.signature_algorithm(), &der::bit_string(&sig)]);
        Self::from_der(csr)
    }

    /// Wraps DER bytes, checking that they parse.
    pub fn from_der(der: Vec<u8>) -> Result<Self, PkiError> {
        X509CertificationRequest::from_der(&der)
            .map_err(|e| PkiError::InvalidCsr(e.to_string()))?;
        Ok(Self { der })
    }

    /// Parses the first `CERTIFICATE REQUEST` PEM block.
    pub fn from_pem(pem_bytes: &[u8]) -> Result<Self, PkiError> {
        let block = super::pem_decode(pem_bytes)?;
        if block.tag() != PEM_CERTIFICATE_REQUEST {
            return Err(PkiError::UnexpectedPemType {
                expected: PEM_CERTIFICATE_REQUEST,
                found: block.tag().to_string(),
            });
        }
        Self::from_der(block.into_contents())
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM text.
    pub fn to_pem(&self) -> Vec<u8> {
        super::pem_encode(PEM_CERTIFICATE_REQUEST, &self.der)
    }

    fn parsed(&self) -> Result<X509CertificationRequest<'_>, PkiError> {
        X509CertificationRequest::from_der(&self.der)
            .map(|(_, c)| c)
            .map_err(|e| PkiError::InvalidCsr(e.to_string()))
    }

    /// Checks the CSR's self-signature.
    pub fn verify(&self) -> Result<(), PkiError> {
        let csr = self.parsed()?;
        let info = &csr.certification_request_info;
        super::key::verify(
            info.subject_pki.raw,
            &csr.signature_algorithm.algorithm.to_id_string(),
            info.raw,
            &csr.signature_value.data,
        )
    }

    /// Subject, SANs and public key.
    pub fn info(&self) -> Result<CsrInfo, PkiError> {
        use x509_parser::extensions::{GeneralName, ParsedExtension};
        let csr = self.parsed()?;
        let info = &csr.certification_request_info;
        let text =
            |a: &x509_parser::x509::AttributeTypeAndValue<'_>| a.as_str().ok().map(str::to_string);
        let organizations = info.subject.iter_organization().filter_map(text).collect();
        let common_name = info.subject.iter_common_name().find_map(text);
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if let Some(exts) = csr.requested_extensions() {
            for ext in exts {
                if let ParsedExtension::SubjectAlternativeName(san) = ext {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
                            GeneralName::IPAddress(b) => {
                                if let Ok(a) = <[u8; 4]>::try_from(*b) {
                                    ip_addresses.push(IpAddr::from(a));
                                } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                                    ip_addresses.push(IpAddr::from(a));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(CsrInfo {
            organizations,
            common_name,
            dns_names,
            ip_addresses,
            public_key_info: info.subject_pki.raw.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_round_trips_names_and_verifies() {
        let key = PrivateKey::generate_ed25519().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let params = CertParams::new(now, time::Duration::hours(1))
            .organizations(["os:admin"])
            .ip_addresses(["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()]);
        let csr = CertificateRequest::new(&key, &params).unwrap();
        csr.verify().unwrap();
        let back = CertificateRequest::from_pem(&csr.to_pem()).unwrap();
        let info = back.info().unwrap();
        assert_eq!(info.organizations, ["os:admin"]);
        assert_eq!(info.ip_addresses, params.ip_addresses);
        assert_eq!(info.public_key_info, key.public_key_info().unwrap());
    }

    #[test]
    fn csr_without_sans_has_empty_attributes() {
        let key = PrivateKey::generate_ecdsa_p256();
        let csr = CertificateRequest::new(
            &key,
            &CertParams::new(time::OffsetDateTime::now_utc(), time::Duration::hours(1)),
        )
        .unwrap();
        csr.verify().unwrap();
        assert!(csr.info().unwrap().dns_names.is_empty());
    }
}
