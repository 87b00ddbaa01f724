//! Private keys in the three algorithms Talos uses, with the PEM encodings Talos writes:
//! `ED25519 PRIVATE KEY` (PKCS#8 v1 inside), `EC PRIVATE KEY` (SEC1, P-256) and
//! `RSA PRIVATE KEY` (PKCS#1).

use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};

use super::der;
use super::PkiError;

/// PEM label of an Ed25519 private key as Talos writes it.
pub const PEM_ED25519_PRIVATE: &str = "ED25519 PRIVATE KEY";
/// PEM label of a SEC1 ECDSA private key.
pub const PEM_EC_PRIVATE: &str = "EC PRIVATE KEY";
/// PEM label of a PKCS#1 RSA private key.
pub const PEM_RSA_PRIVATE: &str = "RSA PRIVATE KEY";
/// PEM label of a generic PKCS#8 private key (accepted on input only).
pub const PEM_PKCS8_PRIVATE: &str = "PRIVATE KEY";
/// PEM label of a certificate.
pub const PEM_CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a certificate signing request.
pub const PEM_CERTIFICATE_REQUEST: &str = "CERTIFICATE REQUEST";

/// The RSA modulus size Talos uses for every RSA key it generates.
pub const RSA_BITS: usize = 4096;

const OID_ED25519: &[u64] = &[1, 3, 101, 112];
const OID_EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
const OID_P256: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
const OID_RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
const OID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
const OID_RSA_SHA512: &[u64] = &[1, 2, 840, 113549, 1, 1, 13];

/// DER prefix of an Ed25519 PKCS#8 v1 key: everything before the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519 (signature PureEd25519). Talos's default, used for the OS CA and client certs.
    Ed25519,
    /// ECDSA on NIST P-256 (signature ECDSA with SHA-256).
    EcdsaP256,
    /// RSA (signature PKCS#1 v1.5 with SHA-512, as Talos signs with RSA keys).
    Rsa,
}

/// A private key of one of the supported algorithms.
pub enum PrivateKey {
    /// Ed25519 seed and the public key derived from it.
    Ed25519 {
        /// The 32-byte private seed.
        seed: [u8; 32],
        /// The 32-byte public key.
        public: [u8; 32],
    },
    /// ECDSA P-256 secret scalar.
    EcdsaP256(p256::SecretKey),
    /// RSA key kept as PKCS#1 `RSAPrivateKey` DER.
    Rsa {
        /// PKCS#1 private key DER.
        pkcs1: Vec<u8>,
        /// PKCS#1 public key DER.
        public_pkcs1: Vec<u8>,
    },
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "PrivateKey({:?})", self.algorithm())
    }
}

impl PrivateKey {
    /// Generates a fresh key. RSA keys are [`RSA_BITS`] bits.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, PkiError> {
        match alg {
            KeyAlgorithm::Ed25519 => Self::generate_ed25519(),
            KeyAlgorithm::EcdsaP256 => Ok(Self::generate_ecdsa_p256()),
            KeyAlgorithm::Rsa => Self::generate_rsa(RSA_BITS),
        }
    }

    /// Generates an Ed25519 key.
    pub fn generate_ed25519() -> Result<Self, PkiError> {
        let mut seed = [0u8; 32];
        super::random::fill(&mut seed)?;
        Self::ed25519_from_seed(seed)
    }

    /// Generates an ECDSA P-256 key.
    pub fn generate_ecdsa_p256() -> Self {
        Self::EcdsaP256(p256::SecretKey::random(&mut rand::rngs::OsRng))
    }

    /// Generates an RSA key of `bits` bits (Talos always uses 4096).
    pub fn generate_rsa(bits: usize) -> Result<Self, PkiError> {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
            .map_err(|e| PkiError::KeyGeneration(e.to_string()))?;
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &rsa::RsaPrivateKey) -> Result<Self, PkiError> {
        let pkcs1 = key
            .to_pkcs1_der()
            .map_err(|e| PkiError::KeyGeneration(e.to_string()))?
            .as_bytes()
            .to_vec();
        let public_pkcs1 = key
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| PkiError::KeyGeneration(e.to_string()))?
            .as_bytes()
            .to_vec();
        Ok(Self::Rsa {
            pkcs1,
            public_pkcs1,
        })
    }

    fn ed25519_from_seed(seed: [u8; 32]) -> Result<Self, PkiError> {
        use ring::signature::KeyPair;
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| PkiError::InvalidKey(format!("Ed25519 seed rejected: {e}")))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(Self::Ed25519 { seed, public })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Ed25519 { .. } => KeyAlgorithm::Ed25519,
            Self::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            Self::Rsa { .. } => KeyAlgorithm::Rsa,
        }
    }

    /// Parses a PEM private key: `ED25519 PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`,
    /// or a generic PKCS#8 `PRIVATE KEY` of one of those algorithms.
    pub fn from_pem(pem_bytes: &[u8]) -> Result<Self, PkiError> {
        let block = super::pem_decode(pem_bytes)?;
        match block.tag() {
            PEM_ED25519_PRIVATE => Self::ed25519_from_pkcs8(block.contents()),
            PEM_EC_PRIVATE => p256::SecretKey::from_sec1_der(block.contents())
                .map(Self::EcdsaP256)
                .map_err(|e| PkiError::InvalidKey(format!("bad SEC1 P-256 key: {e}"))),
            PEM_RSA_PRIVATE => {
                let key = rsa::RsaPrivateKey::from_pkcs1_der(block.contents())
                    .map_err(|e| PkiError::InvalidKey(format!("bad PKCS#1 RSA key: {e}")))?;
                Self::from_rsa(&key)
            }
            PEM_PKCS8_PRIVATE => Self::from_pkcs8(block.contents()),
            other => Err(PkiError::UnsupportedPemType(other.to_string())),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, PkiError> {
        if let Ok(k) = Self::ed25519_from_pkcs8(der) {
            return Ok(k);
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(Self::EcdsaP256(k));
        }
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            return Self::from_rsa(&k);
        }
        Err(PkiError::InvalidKey(
            "PKCS#8 key is not Ed25519, ECDSA P-256 or RSA".to_string(),
        ))
    }

    fn ed25519_from_pkcs8(der: &[u8]) -> Result<Self, PkiError> {
        // ring checks the whole structure (v1 or v2); the seed sits at the same offset in both.
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| PkiError::InvalidKey(format!("bad PKCS#8 Ed25519 key: {e}")))?;
        let seed: [u8; 32] = match der.get(12..48) {
            Some(s) if s[..4] == ED25519_PKCS8_PREFIX[12..] => {
                let mut seed = [0u8; 32];
                seed.copy_from_slice(&s[4..]);
                seed
            }
            _ => {
                return Err(PkiError::InvalidKey(
                    "unexpected PKCS#8 Ed25519 layout".to_string(),
                ))
            }
        };
        Self::ed25519_from_seed(seed)
    }

    /// The DER body of the key in Talos's encoding (PKCS#8 v1, SEC1, PKCS#1).
    pub fn to_der(&self) -> Result<Vec<u8>, PkiError> {
        match self {
            Self::Ed25519 { seed, .. } => {
                let mut out = ED25519_PKCS8_PREFIX.to_vec();
                out.extend_from_slice(seed);
                Ok(out)
            }
            Self::EcdsaP256(k) => {
                // SEC1 ECPrivateKey with the curve parameters and the public key, as Go writes it
                // (p256's own encoder leaves the parameters out).
                let point = p256::EncodedPoint::from(k.public_key());
                Ok(der::sequence(&[
                    &der::small_integer(1),
                    &der::octet_string(&k.to_bytes()),
                    &der::explicit(0, &der::oid(OID_P256)),
                    &der::explicit(1, &der::bit_string(point.as_bytes())),
                ]))
            }
            Self::Rsa { pkcs1, .. } => Ok(pkcs1.clone()),
        }
    }

    /// The PEM label Talos uses for this key type.
    pub fn pem_label(&self) -> &'static str {
        match self {
            Self::Ed25519 { .. } => PEM_ED25519_PRIVATE,
            Self::EcdsaP256(_) => PEM_EC_PRIVATE,
            Self::Rsa { .. } => PEM_RSA_PRIVATE,
        }
    }

    /// The key as PEM, exactly as Talos writes it.
    pub fn to_pem(&self) -> Result<Vec<u8>, PkiError> {
        Ok(super::pem_encode(self.pem_label(), &self.to_der()?))
    }

    /// The DER `SubjectPublicKeyInfo` of the public half.
    pub fn public_key_info(&self) -> Result<Vec<u8>, PkiError> {
        Ok(match self {
            Self::Ed25519 { public, .. } => der::sequence(&[
                &der::sequence(&[&der::oid(OID_ED25519)]),
                &der::bit_string(public),
            ]),
            Self::EcdsaP256(k) => {
                let point = p256::EncodedPoint::from(k.public_key());
                der::sequence(&[
                    &der::sequence(&[&der::oid(OID_EC_PUBLIC_KEY), &der::oid(OID_P256)]),
                    &der::bit_string(point.as_bytes()),
                ])
            }
            Self::Rsa { public_pkcs1, .. } => der::sequence(&[
                &der::sequence(&[&der::oid(OID_RSA_ENCRYPTION), &der::null()]),
                &der::bit_string(public_pkcs1),
            ]),
        })
    }

    /// The DER `AlgorithmIdentifier` of the signatures this key makes.
    pub fn signature_algorithm(&self) -> Vec<u8> {
        match self {
            Self::Ed25519 { .. } => der::sequence(&[&der::oid(OID_ED25519)]),
            Self::EcdsaP256(_) => der::sequence(&[&der::oid(OID_ECDSA_SHA256)]),
            Self::Rsa { .. } => der::sequence(&[&der::oid(OID_RSA_SHA512), &der::null()]),
        }
    }

    /// Signs `msg` (Ed25519, ECDSA-SHA256 with a DER signature, or RSA PKCS#1 v1.5 SHA-512).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        match self {
            Self::Ed25519 { seed, .. } => {
                let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
                    .map_err(|e| PkiError::Signing(e.to_string()))?;
                Ok(pair.sign(msg).as_ref().to_vec())
            }
            Self::EcdsaP256(k) => {
                let signer = p256::ecdsa::SigningKey::from(k);
                let sig: p256::ecdsa::Signature = signer.sign(msg);
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Self::Rsa { pkcs1, .. } => {
                let pair = ring::signature::RsaKeyPair::from_der(pkcs1)
                    .map_err(|e| PkiError::Signing(format!("RSA key rejected: {e}")))?;
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &ring::signature::RSA_PKCS1_SHA512,
                    &ring::rand::SystemRandom::new(),
                    msg,
                    &mut sig,
                )
                .map_err(|e| PkiError::Signing(e.to_string()))?;
                Ok(sig)
            }
        }
    }
}

/// Verifies `sig` over `msg` made by the key in the DER `SubjectPublicKeyInfo` `spki`, with the
/// signature algorithm identified by `alg_oid` (dotted form, as x509-parser reports it).
pub(crate) fn verify(spki: &[u8], alg_oid: &str, msg: &[u8], sig: &[u8]) -> Result<(), PkiError> {
    use ring::signature as rs;
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| PkiError::InvalidKey(format!("bad public key: {e}")))?;
    let key_bits: &[u8] = &info.subject_public_key.data;
    let algorithm: &dyn rs::VerificationAlgorithm = match alg_oid {
        "1.3.101.112" => &rs::ED25519,
        "1.2.840.10045.4.3.2" => &rs::ECDSA_P256_SHA256_ASN1,
        "1.2.840.10045.4.3.3" => &rs::ECDSA_P256_SHA384_ASN1,
        "1.2.840.113549.1.1.11" => &rs::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.113549.1.1.12" => &rs::RSA_PKCS1_2048_8192_SHA384,
        "1.2.840.113549.1.1.13" => &rs::RSA_PKCS1_2048_8192_SHA512,
        other => return Err(PkiError::UnsupportedAlgorithm(other.to_string())),
    };
    rs::UnparsedPublicKey::new(algorithm, key_bits)
        .verify(msg, sig)
        .map_err(|_| PkiError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_pem_matches_talos_layout() {
        let k = PrivateKey::generate_ed25519().unwrap();
        let pem = String::from_utf8(k.to_pem().unwrap()).unwrap();
        assert!(pem.starts_with("-----BEGIN ED25519 PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw"));
        let back = PrivateKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(back.to_pem().unwrap(), pem.as_bytes());
        assert_eq!(k.public_key_info().unwrap().len(), 44);
    }

    #[test]
    fn ecdsa_pem_is_sec1_with_public_key() {
        let k = PrivateKey::generate_ecdsa_p256();
        let der = k.to_der().unwrap();
        assert_eq!(der.len(), 121, "SEC1 with parameters and public key");
        let pem = String::from_utf8(k.to_pem().unwrap()).unwrap();
        assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE"));
        assert_eq!(
            PrivateKey::from_pem(pem.as_bytes())
                .unwrap()
                .to_der()
                .unwrap(),
            der
        );
    }

    #[test]
    fn signatures_verify() {
        for k in [
            PrivateKey::generate_ed25519().unwrap(),
            PrivateKey::generate_ecdsa_p256(),
        ] {
            let sig = k.sign(b"hello").unwrap();
            let oid = match k.algorithm() {
                KeyAlgorithm::Ed25519 => "1.3.101.112",
                _ => "1.2.840.10045.4.3.2",
            };
            verify(&k.public_key_info().unwrap(), oid, b"hello", &sig).unwrap();
            assert!(verify(&k.public_key_info().unwrap(), oid, b"other", &sig).is_err());
        }
    }

    #[test]
    fn unknown_pem_type_is_rejected() {
        let pem = super::super::pem_encode("DSA PRIVATE KEY", b"xx");
        let err = PrivateKey::from_pem(&pem).unwrap_err();
        assert!(err.to_string().contains("DSA PRIVATE KEY"), "{err}");
    }
}
