//! Certificates machined issues for Kubernetes from the cluster's CAs: the API server's
//! serving certificate, its kubelet and etcd client certificates, the front-proxy client, and
//! client certificates for kubeconfigs (Talos's `secrets.KubernetesDynamicCertsController`,
//! `pkg/kubeconfig`).

use std::net::IpAddr;

use time::OffsetDateTime;

use super::{CertParams, CertificateAuthority, ExtKeyUsage, KeyUsage, PkiError};

/// A freshly issued certificate and key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedPem {
    /// Certificate.
    pub crt: Vec<u8>,
    /// Private key.
    pub key: Vec<u8>,
}

/// Client certificates of kubeconfigs start this long before now (clock skew).
pub const ALLOWED_TIME_SKEW: time::Duration = time::Duration::seconds(10);

/// What a leaf certificate says about its subject.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    /// CommonName.
    pub common_name: &'a str,
    /// Organization (none when empty).
    pub organization: &'a str,
    /// DNS names.
    pub dns_names: Vec<String>,
    /// Addresses.
    pub ips: Vec<IpAddr>,
}

/// Issues a leaf for `subject` from the CA `(ca_crt, ca_key)` (PEM), valid from `not_before`
/// for `lifetime`, KeyUsage DigitalSignature|KeyEncipherment and the one extended usage.
pub fn issue(
    ca_crt: &[u8],
    ca_key: &[u8],
    subject: &Subject<'_>,
    usage: ExtKeyUsage,
    not_before: OffsetDateTime,
    lifetime: std::time::Duration,
) -> Result<IssuedPem, PkiError> {
    let ca = CertificateAuthority::from_pem(ca_crt, ca_key)?;
    let ttl = time::Duration::try_from(lifetime).map_err(|_| PkiError::InvalidValidity)?;
    let mut params = CertParams::new(not_before, ttl)
        .dns_names(subject.dns_names.clone())
        .ip_addresses(subject.ips.clone())
        .key_usage(KeyUsage::DIGITAL_SIGNATURE.union(KeyUsage::KEY_ENCIPHERMENT))
        .ext_key_usage([usage]);
    params.common_name = Some(subject.common_name.to_string());
    if !subject.organization.is_empty() {
        params = params.organizations([subject.organization]);
    }
    let (cert, key) = ca.issue(&params)?;
    Ok(IssuedPem {
        crt: cert.to_pem(),
        key: key.to_pem()?,
    })
}

/// The public half of a private key as PEM (`PUBLIC KEY`, PKIX), e.g. the service-account
/// verification key.
pub fn public_key_pem(key_pem: &[u8]) -> Result<Vec<u8>, PkiError> {
    let key = super::PrivateKey::from_pem(key_pem)?;
    Ok(super::pem_encode("PUBLIC KEY", &key.public_key_info()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::KeyAlgorithm;

    #[test]
    fn issues_from_an_ecdsa_ca() {
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate(
            KeyAlgorithm::EcdsaP256,
            &CertParams::new(now, time::Duration::days(1)),
        )
        .unwrap();
        let issued = issue(
            &ca.cert.to_pem(),
            &ca.key.to_pem().unwrap(),
            &Subject {
                common_name: "kube-apiserver",
                organization: "kube-master",
                dns_names: vec!["localhost".into()],
                ips: vec!["10.96.0.1".parse().unwrap()],
            },
            ExtKeyUsage::ServerAuth,
            now,
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
        let cert = crate::secrets::Certificate::from_pem(&issued.crt).unwrap();
        let parsed = cert.parsed().unwrap();
        assert_eq!(
            parsed.subject().to_string(),
            "O=kube-master, CN=kube-apiserver"
        );
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        assert!(String::from_utf8_lossy(&issued.key).contains("EC PRIVATE KEY"));
        let public = public_key_pem(&issued.key).unwrap();
        assert!(String::from_utf8_lossy(&public).starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
