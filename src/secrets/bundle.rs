//! The secrets bundle (`secrets.yaml`): everything cluster-wide that machine configs are generated
//! from. Keys and layout match Talos's `secrets.Bundle` YAML; certificates and keys are base64 of PEM.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::cert::{CertificateAuthority, CA_VALIDITY};
use super::contract::VersionContract;
use super::key::{KeyAlgorithm, PrivateKey};
use super::params::{CertParams, ExtKeyUsage, KeyUsage};
use super::{random, Certificate, PkiError};
use crate::fsutil::{self, WriteError, WriteOptions};

/// Size in bytes of the cluster id and cluster secret.
const CLUSTER_ID_SIZE: usize = 32;
/// Size in bytes of the secretbox / AES-CBC encryption secret.
const ENCRYPTION_SECRET_SIZE: usize = 32;
/// The role Talos puts in talosconfig client certificates by default.
pub const DEFAULT_ADMIN_ROLE: &str = "os:admin";

/// Errors of loading, generating and saving a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file could not be read.
    #[error("cannot read {path:?}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not match the bundle schema (unknown or missing key, wrong type).
    #[error("{source_name}: {key}: {message}")]
    Schema {
        /// Where the text came from.
        source_name: String,
        /// Dotted path of the offending key.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// A certificate or key in the bundle or input is invalid.
    #[error("{source_name}: {key}")]
    Pki {
        /// Where the text came from.
        source_name: String,
        /// Dotted path of the offending key, or file name.
        key: String,
        /// The cause.
        #[source]
        source: PkiError,
    },
    /// A PKI operation failed while generating.
    #[error("cannot generate secrets")]
    Generate(#[from] PkiError),
    /// Encoding the bundle failed.
    #[error("cannot encode the secrets bundle")]
    Encode(#[source] crate::yaml::YamlError),
    /// The Kubernetes PKI directory is unusable.
    #[error("{0}")]
    KubernetesPki(String),
    /// A bootstrap token of the wrong shape.
    #[error("invalid bootstrap token {0:?}: expected [a-z0-9]{{6}}.[a-z0-9]{{16}}")]
    BadToken(String),
    /// The version contract is older than this build can generate for.
    #[error("version contract {0} is not supported: secrets can be generated for v0.13 and newer")]
    ContractTooOld(VersionContract),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A certificate and its private key, both PEM (base64 of PEM in YAML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertAndKey {
    /// PEM certificate.
    #[serde(with = "b64")]
    pub crt: Vec<u8>,
    /// PEM private key.
    #[serde(with = "b64")]
    pub key: Vec<u8>,
}

impl CertAndKey {
    fn from_ca(ca: &CertificateAuthority) -> Result<Self, PkiError> {
        Ok(Self {
            crt: ca.cert.to_pem(),
            key: ca.key.to_pem()?,
        })
    }

    /// Parses the pair as a CA (certificate + matching key).
    pub fn to_ca(&self) -> Result<CertificateAuthority, PkiError> {
        CertificateAuthority::from_pem(&self.crt, &self.key)
    }
}

/// A private key alone, PEM (base64 of PEM in YAML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyOnly {
    /// PEM private key.
    #[serde(with = "b64")]
    pub key: Vec<u8>,
}

/// Cluster identity shared by every node (`cluster.id`, `cluster.secret` in the machine config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterInfo {
    /// base64url (padded) of 32 random bytes.
    pub id: String,
    /// base64 of 32 random bytes.
    pub secret: String,
}

/// Kubernetes secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Kubernetes bootstrap token `[0-9a-z]{6}.[0-9a-z]{16}`.
    pub bootstraptoken: String,
    /// AES-CBC encryption secret (contracts up to v1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aescbcencryptionsecret: Option<String>,
    /// Secretbox encryption secret (contracts after v1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secretboxencryptionsecret: Option<String>,
}

/// trustd credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustdInfo {
    /// The token workers present to trustd (`machine.token`).
    pub token: String,
}

/// The CAs and keys of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certs {
    /// etcd CA.
    pub etcd: CertAndKey,
    /// Kubernetes CA.
    pub k8s: CertAndKey,
    /// Kubernetes aggregator (front-proxy) CA.
    #[serde(default)]
    pub k8saggregator: Option<CertAndKey>,
    /// Kubernetes service-account signing key.
    #[serde(default)]
    pub k8sserviceaccount: Option<KeyOnly>,
    /// Talos API (OS) CA.
    pub os: CertAndKey,
}

/// The secrets bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Cluster identity.
    pub cluster: ClusterInfo,
    /// Kubernetes secrets.
    pub secrets: Secrets,
    /// trustd credentials.
    pub trustdinfo: TrustdInfo,
    /// CAs and keys.
    pub certs: Certs,
    /// Comment lines that preceded the document when it was loaded; written back on save.
    #[serde(skip)]
    pub header_comment: String,
}

/// Pieces supplied by the caller; whatever is `None` gets generated.
#[derive(Default)]
pub(super) struct Seed {
    pub(super) etcd: Option<CertAndKey>,
    pub(super) k8s: Option<CertAndKey>,
    pub(super) aggregator: Option<CertAndKey>,
    pub(super) service_account: Option<KeyOnly>,
    pub(super) bootstrap_token: Option<String>,
}

fn generate_ca(
    alg: KeyAlgorithm,
    orgs: &[&str],
    now: OffsetDateTime,
) -> Result<CertAndKey, PkiError> {
    let params = CertParams::new(now, CA_VALIDITY).organizations(orgs.iter().copied());
    CertAndKey::from_ca(&CertificateAuthority::generate(alg, &params)?)
}

fn b64_random(n: usize, url: bool) -> Result<String, PkiError> {
    use base64::Engine;
    let bytes = random::bytes(n)?;
    Ok(if url {
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    } else {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    })
}

impl Bundle {
    /// Generates a new bundle for `contract`, valid from now.
    pub fn generate(contract: VersionContract) -> Result<Self, BundleError> {
        Self::generate_at(contract, OffsetDateTime::now_utc())
    }

    /// Generates a new bundle for `contract` with CAs valid from `now` for 87600 h:
    /// etcd CA ECDSA P-256 O=etcd, Kubernetes CA ECDSA P-256 O=kubernetes, aggregator CA ECDSA
    /// P-256 with an empty subject, OS CA Ed25519 O=talos, service-account key RSA-4096 (contract
    /// > v1.6) or ECDSA P-256, tokens, cluster id (base64url) and secret (base64).
    pub fn generate_at(
        contract: VersionContract,
        now: OffsetDateTime,
    ) -> Result<Self, BundleError> {
        Self::populate(Seed::default(), contract, now)
    }

    pub(super) fn populate(
        seed: Seed,
        contract: VersionContract,
        now: OffsetDateTime,
    ) -> Result<Self, BundleError> {
        // ECDSA CAs signed with SHA-512 (contracts up to v0.12) and RSA CAs (v0.8) are not made here.
        if !contract.supports_ecdsa_sha256() {
            return Err(BundleError::ContractTooOld(contract));
        }
        let etcd = match seed.etcd {
            Some(c) => c,
            None => generate_ca(KeyAlgorithm::EcdsaP256, &["etcd"], now)?,
        };
        let k8s = match seed.k8s {
            Some(c) => c,
            None => generate_ca(KeyAlgorithm::EcdsaP256, &["kubernetes"], now)?,
        };
        // Talos asks for CommonName "front-proxy" here, but its CA template only carries the
        // organization, so the subject ends up empty; keep that.
        let k8saggregator = match seed.aggregator {
            Some(c) => Some(c),
            None => Some(generate_ca(KeyAlgorithm::EcdsaP256, &[], now)?),
        };
        let k8sserviceaccount = match seed.service_account {
            Some(k) => Some(k),
            None => {
                let key = if contract.use_rsa_service_account_key() {
                    PrivateKey::generate(KeyAlgorithm::Rsa)?
                } else {
                    PrivateKey::generate_ecdsa_p256()
                };
                Some(KeyOnly { key: key.to_pem()? })
            }
        };
        let os = generate_ca(KeyAlgorithm::Ed25519, &["talos"], now)?;
        let bootstraptoken = match seed.bootstrap_token {
            Some(t) => t,
            None => random::token()?,
        };
        let encryption = b64_random(ENCRYPTION_SECRET_SIZE, false)?;
        let (aescbc, secretbox) = if contract.secretbox_encryption_supported() {
            (None, Some(encryption))
        } else {
            (Some(encryption), None)
        };
        Ok(Self {
            cluster: ClusterInfo {
                id: b64_random(CLUSTER_ID_SIZE, true)?,
                secret: b64_random(CLUSTER_ID_SIZE, false)?,
            },
            secrets: Secrets {
                bootstraptoken,
                aescbcencryptionsecret: aescbc,
                secretboxencryptionsecret: secretbox,
            },
            trustdinfo: TrustdInfo {
                token: random::token()?,
            },
            certs: Certs {
                etcd,
                k8s,
                k8saggregator,
                k8sserviceaccount,
                os,
            },
            header_comment: String::new(),
        })
    }

    /// Parses bundle YAML strictly: unknown keys, missing keys and invalid PEM are errors naming
    /// the key. Leading comment lines are kept for [`Bundle::to_yaml`].
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Self, BundleError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let mut bundle: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let mut message = e.into_inner().to_string();
            // serde_yaml prefixes the path of the enclosing map; the full path is printed instead.
            let segments: Vec<&str> = path.split('.').collect();
            for n in (1..=segments.len()).rev() {
                let prefix = format!("{}: ", segments[..n].join("."));
                if let Some(rest) = message.strip_prefix(&prefix) {
                    message = rest.to_string();
                    break;
                }
            }
            BundleError::Schema {
                source_name: source_name.to_string(),
                key: if path == "." {
                    "(document)".to_string()
                } else {
                    path
                },
                message,
            }
        })?;
        bundle.header_comment = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        bundle.validate(source_name)?;
        Ok(bundle)
    }

    /// Loads a bundle file (see [`Bundle::from_yaml`]).
    pub fn load(path: &Path) -> Result<Self, BundleError> {
        let bytes = read_file(path)?;
        let text = String::from_utf8(bytes).map_err(|e| BundleError::Schema {
            source_name: path.display().to_string(),
            key: "(document)".to_string(),
            message: format!("not UTF-8: {e}"),
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Checks every certificate and key parses (and each CA key matches its certificate).
    pub fn validate(&self, source_name: &str) -> Result<(), BundleError> {
        let err = |key: &str, source| BundleError::Pki {
            source_name: source_name.to_string(),
            key: key.to_string(),
            source,
        };
        let check_pair = |name: &str, p: &CertAndKey| -> Result<(), BundleError> {
            Certificate::from_pem(&p.crt).map_err(|e| err(&format!("certs.{name}.crt"), e))?;
            PrivateKey::from_pem(&p.key).map_err(|e| err(&format!("certs.{name}.key"), e))?;
            p.to_ca().map_err(|e| err(&format!("certs.{name}"), e))?;
            Ok(())
        };
        check_pair("etcd", &self.certs.etcd)?;
        check_pair("k8s", &self.certs.k8s)?;
        if let Some(a) = &self.certs.k8saggregator {
            check_pair("k8saggregator", a)?;
        }
        if let Some(sa) = &self.certs.k8sserviceaccount {
            PrivateKey::from_pem(&sa.key).map_err(|e| err("certs.k8sserviceaccount.key", e))?;
        }
        check_pair("os", &self.certs.os)?;
        Ok(())
    }

    /// The bundle as YAML in Talos's layout, preceded by any loaded header comment.
    pub fn to_yaml(&self) -> Result<String, BundleError> {
        let body = crate::yaml::to_string(self).map_err(BundleError::Encode)?;
        Ok(format!("{}{body}", self.header_comment))
    }

    /// Writes the bundle atomically with mode 0600; an existing file is an error unless `overwrite`.
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<(), BundleError> {
        let text = self.to_yaml()?;
        fsutil::write_atomic(
            path,
            text.as_bytes(),
            WriteOptions::PRIVATE.overwrite(overwrite),
        )?;
        Ok(())
    }

    /// The Talos API (OS) CA.
    pub fn os_ca(&self) -> Result<CertificateAuthority, PkiError> {
        self.certs.os.to_ca()
    }

    /// A talosconfig client certificate and key (PEM), valid from now for `ttl`.
    /// See [`Bundle::admin_client_cert_at`].
    pub fn admin_client_cert(
        &self,
        roles: &[&str],
        ttl: time::Duration,
    ) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
        self.admin_client_cert_at(roles, ttl, OffsetDateTime::now_utc())
    }

    /// A talosconfig client certificate: a new key of the OS CA's kind (Ed25519), signed by the OS
    /// CA, Subject O = each role (sorted, duplicates and blanks removed; `os:admin` if none),
    /// KeyUsage DigitalSignature, ExtKeyUsage ClientAuth only. Returns PEM (certificate, key).
    pub fn admin_client_cert_at(
        &self,
        roles: &[&str],
        ttl: time::Duration,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
        let mut orgs: Vec<String> = roles
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        if orgs.is_empty() {
            orgs.push(DEFAULT_ADMIN_ROLE.to_string());
        }
        orgs.sort();
        orgs.dedup();
        let params = CertParams::new(now, ttl)
            .organizations(orgs)
            .key_usage(KeyUsage::DIGITAL_SIGNATURE)
            .ext_key_usage([ExtKeyUsage::ClientAuth]);
        let (cert, key) = self.os_ca()?.issue(&params)?;
        Ok((cert.to_pem(), key.to_pem()?))
    }
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, BundleError> {
    std::fs::read(path).map_err(|source| BundleError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// serde helpers: bytes as standard padded base64 strings.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2024-04-18 09:30:00 UTC)
    }

    fn v(s: &str) -> VersionContract {
        VersionContract::parse(s).unwrap()
    }

    fn check_ca(pair: &CertAndKey, sig_oid: &str, subject: &str, key_label: &str) {
        let cert = Certificate::from_pem(&pair.crt).unwrap();
        let (_, c) = X509Certificate::from_der(cert.der()).unwrap();
        assert_eq!(c.signature_algorithm.algorithm.to_id_string(), sig_oid);
        assert_eq!(c.subject().to_string(), subject);
        assert_eq!(c.issuer().to_string(), subject);
        assert!(c.is_ca());
        assert!(c.basic_constraints().unwrap().unwrap().critical);
        assert_eq!(c.validity().not_before.to_datetime(), now());
        assert_eq!(
            c.validity().not_after.to_datetime(),
            now() + time::Duration::hours(87600)
        );
        let ku = c.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.digital_signature() && !ku.key_encipherment());
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth && !eku.any);
        let pem = String::from_utf8(pair.key.clone()).unwrap();
        assert!(
            pem.starts_with(&format!("-----BEGIN {key_label}-----\n")),
            "{pem}"
        );
        pair.to_ca().unwrap();
    }

    #[test]
    fn generated_bundle_has_talos_algorithms_and_formats() {
        // v1.6 keeps the service-account key ECDSA, so no RSA key is generated in this test.
        let b = Bundle::generate_at(v("v1.6"), now()).unwrap();
        let std = base64::engine::general_purpose::STANDARD;
        let url = base64::engine::general_purpose::URL_SAFE;
        assert_eq!(url.decode(&b.cluster.id).unwrap().len(), 32);
        assert!(b.cluster.id.ends_with('=') && b.cluster.id.len() == 44);
        assert!(!b.cluster.id.contains('+') && !b.cluster.id.contains('/'));
        assert_eq!(std.decode(&b.cluster.secret).unwrap().len(), 32);
        assert!(random::is_token(&b.secrets.bootstraptoken));
        assert!(random::is_token(&b.trustdinfo.token));
        assert_ne!(b.secrets.bootstraptoken, b.trustdinfo.token);
        let sb = b.secrets.secretboxencryptionsecret.as_deref().unwrap();
        assert_eq!(std.decode(sb).unwrap().len(), 32);
        assert!(b.secrets.aescbcencryptionsecret.is_none());

        let ecdsa = "1.2.840.10045.4.3.2";
        check_ca(&b.certs.etcd, ecdsa, "O=etcd", "EC PRIVATE KEY");
        check_ca(&b.certs.k8s, ecdsa, "O=kubernetes", "EC PRIVATE KEY");
        check_ca(
            b.certs.k8saggregator.as_ref().unwrap(),
            ecdsa,
            "",
            "EC PRIVATE KEY",
        );
        check_ca(&b.certs.os, "1.3.101.112", "O=talos", "ED25519 PRIVATE KEY");
        let sa = &b.certs.k8sserviceaccount.as_ref().unwrap().key;
        assert!(sa.starts_with(b"-----BEGIN EC PRIVATE KEY-----\n"));
        b.validate("generated").unwrap();
    }

    #[test]
    fn old_contracts_use_aescbc_and_very_old_ones_are_refused() {
        let b = Bundle::generate_at(v("v1.2"), now()).unwrap();
        assert!(b.secrets.secretboxencryptionsecret.is_none());
        assert!(b.secrets.aescbcencryptionsecret.is_some());
        let yaml = serde_yaml::to_string(&b).unwrap();
        assert!(yaml.contains("aescbcencryptionsecret:"));
        assert!(!yaml.contains("secretboxencryptionsecret"));
        let err = Bundle::generate_at(v("v0.12"), now()).unwrap_err();
        assert!(err.to_string().contains("v0.12"), "{err}");
    }

    #[test]
    fn admin_client_cert_is_an_ed25519_client_only_cert() {
        let b = Bundle::generate_at(v("v1.6"), now()).unwrap();
        let (crt, key) = b
            .admin_client_cert_at(
                &["os:reader", " ", "os:admin", "os:reader"],
                time::Duration::hours(8760),
                now(),
            )
            .unwrap();
        assert!(key.starts_with(b"-----BEGIN ED25519 PRIVATE KEY-----\n"));
        let cert = Certificate::from_pem(&crt).unwrap();
        let (_, c) = X509Certificate::from_der(cert.der()).unwrap();
        assert_eq!(
            c.signature_algorithm.algorithm.to_id_string(),
            "1.3.101.112"
        );
        assert_eq!(cert.organizations().unwrap(), ["os:admin", "os:reader"]);
        assert_eq!(c.issuer().to_string(), "O=talos");
        assert!(!c.is_ca());
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let ku = c.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        assert_eq!(
            c.validity().not_after.to_datetime(),
            now() + time::Duration::hours(8760)
        );
        assert_eq!(
            cert.public_key_info().unwrap(),
            PrivateKey::from_pem(&key)
                .unwrap()
                .public_key_info()
                .unwrap()
        );
        let (crt, _) = b
            .admin_client_cert_at(&[], time::Duration::hours(1), now())
            .unwrap();
        assert_eq!(
            Certificate::from_pem(&crt)
                .unwrap()
                .organizations()
                .unwrap(),
            ["os:admin"]
        );
    }

    #[test]
    fn strict_loading_names_the_key() {
        let b = Bundle::generate_at(v("v1.6"), now()).unwrap();
        let good = serde_yaml::to_string(&b).unwrap();

        let unknown = good.replacen("trustdinfo:\n", "trustdinfo:\n  extra: 1\n", 1);
        let err = Bundle::from_yaml(&unknown, "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.yaml: trustdinfo.extra: unknown field `extra`"),
            "{err}"
        );

        let missing = good.replacen("  token:", "  tokn:", 1);
        let err = Bundle::from_yaml(&missing, "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.yaml: trustdinfo.tokn: unknown field `tokn`"),
            "{err}"
        );
        let err = Bundle::from_yaml("cluster: {id: a, secret: b}\n", "s.yaml").unwrap_err();
        assert!(err.to_string().contains("missing field `secrets`"), "{err}");

        let bad_b64 = good.replacen(
            &format!(
                "crt: {}",
                base64::engine::general_purpose::STANDARD.encode(&b.certs.etcd.crt)
            ),
            "crt: '***'",
            1,
        );
        let err = Bundle::from_yaml(&bad_b64, "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("certs.etcd.crt") && err.contains("base64"),
            "{err}"
        );

        let mut swapped = b.clone();
        swapped.certs.k8s.key = b.certs.etcd.key.clone();
        let text = serde_yaml::to_string(&swapped).unwrap();
        let err = Bundle::from_yaml(&text, "s.yaml").unwrap_err();
        assert_eq!(err.to_string(), "s.yaml: certs.k8s");
        assert!(matches!(
            err,
            BundleError::Pki {
                source: PkiError::KeyMismatch,
                ..
            }
        ));
    }
}
