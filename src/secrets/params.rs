//! What goes into a certificate or a CSR besides the key: names, validity and usages.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::der;

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
    pub(super) fn encode(self) -> Vec<u8> {
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
    pub(super) fn oid(self) -> &'static [u64] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_bits_encode_like_go() {
        let ca = KeyUsage::CERT_SIGN.union(KeyUsage::DIGITAL_SIGNATURE);
        assert_eq!(ca.encode(), vec![0x03, 0x02, 0x02, 0x84]);
        assert_eq!(
            KeyUsage::DIGITAL_SIGNATURE.encode(),
            vec![0x03, 0x02, 0x07, 0x80]
        );
    }
}
