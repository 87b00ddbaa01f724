//! Building a secrets bundle from existing material: a kubeadm-style Kubernetes PKI directory
//! (`gen secrets --from-kubernetes-pki`) or a controlplane machine config
//! (`gen secrets --from-controlplane-config`).

use std::path::Path;

use serde::Deserialize;
use time::OffsetDateTime;

use super::bundle::{read_file, Seed};
use super::{
    random, Bundle, BundleError, CertAndKey, Certs, ClusterInfo, KeyOnly, PrivateKey, Secrets,
    TrustdInfo, VersionContract,
};

impl Bundle {
    /// Builds a bundle from a kubeadm-style PKI directory (`ca.crt`/`ca.key`, `etcd/ca.*`,
    /// `front-proxy-ca.*`, `sa.key`); the OS CA, tokens and cluster identity are generated.
    /// `bootstrap_token`, when given, must have the `[a-z0-9]{6}.[a-z0-9]{16}` shape.
    pub fn from_kubernetes_pki(
        dir: &Path,
        bootstrap_token: Option<&str>,
        contract: VersionContract,
        now: OffsetDateTime,
    ) -> Result<Self, BundleError> {
        let pki_err = |m: String| BundleError::KubernetesPki(m);
        let meta = std::fs::metadata(dir).map_err(|source| BundleError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(pki_err(format!("{} is not a directory", dir.display())));
        }
        if let Some(t) = bootstrap_token {
            if !random::is_token(t) {
                return Err(BundleError::BadToken(t.to_string()));
            }
        }
        let k8s = read_ca_pair(&dir.join("ca.crt"), &dir.join("ca.key"))?;
        let etcd = read_ca_pair(&dir.join("etcd/ca.crt"), &dir.join("etcd/ca.key"))?;
        let aggregator_crt = dir.join("front-proxy-ca.crt");
        let aggregator = if contract.supports_aggregator_ca() {
            Some(read_ca_pair(
                &aggregator_crt,
                &dir.join("front-proxy-ca.key"),
            )?)
        } else if aggregator_crt.exists() {
            return Err(pki_err(format!(
                "{} found, but the aggregator CA is not supported by version contract {contract}",
                aggregator_crt.display()
            )));
        } else {
            None
        };
        let sa_path = dir.join("sa.key");
        let service_account = if contract.supports_service_account() {
            let key = read_file(&sa_path)?;
            PrivateKey::from_pem(&key).map_err(|source| BundleError::Pki {
                source_name: sa_path.display().to_string(),
                key: "private key".to_string(),
                source,
            })?;
            Some(KeyOnly { key })
        } else if sa_path.exists() {
            return Err(pki_err(format!(
                "{} found, but the service account key is not supported by version contract {contract}",
                sa_path.display()
            )));
        } else {
            None
        };
        let seed = Seed {
            etcd: Some(etcd),
            k8s: Some(k8s),
            aggregator,
            service_account,
            bootstrap_token: bootstrap_token.map(str::to_string),
        };
        Self::populate(seed, contract, now)
    }

    /// Extracts the bundle from a controlplane machine config (YAML text, possibly multi-document;
    /// the `v1alpha1` document is used). `source_name` names the input in errors.
    pub fn from_controlplane_config(text: &str, source_name: &str) -> Result<Self, BundleError> {
        let schema = |key: &str, message: String| BundleError::Schema {
            source_name: source_name.to_string(),
            key: key.to_string(),
            message,
        };
        let mut doc = None;
        for d in serde_yaml::Deserializer::from_str(text) {
            let v = serde_yaml::Value::deserialize(d)
                .map_err(|e| schema("(document)", e.to_string()))?;
            let is_v1alpha1 = v.get("version").and_then(|x| x.as_str()) == Some("v1alpha1");
            if is_v1alpha1 || (v.get("machine").is_some() && v.get("kind").is_none()) {
                doc = Some(v);
                break;
            }
        }
        let doc = doc.ok_or_else(|| {
            schema(
                "version",
                "no v1alpha1 machine config document found".to_string(),
            )
        })?;
        let get_str = |path: &str| -> Result<String, BundleError> {
            lookup(&doc, path)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    schema(
                        path,
                        "missing or empty (is this a controlplane config?)".to_string(),
                    )
                })
        };
        let opt_str = |path: &str| {
            lookup(&doc, path)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let decode = |path: &str| -> Result<Vec<u8>, BundleError> {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(get_str(path)?)
                .map_err(|e| schema(path, format!("not base64: {e}")))
        };
        let pair = |path: &str| -> Result<CertAndKey, BundleError> {
            Ok(CertAndKey {
                crt: decode(&format!("{path}.crt"))?,
                key: decode(&format!("{path}.key"))?,
            })
        };
        let bundle = Self {
            cluster: ClusterInfo {
                id: get_str("cluster.id")?,
                secret: get_str("cluster.secret")?,
            },
            secrets: Secrets {
                bootstraptoken: get_str("cluster.token")?,
                aescbcencryptionsecret: opt_str("cluster.aescbcEncryptionSecret"),
                secretboxencryptionsecret: opt_str("cluster.secretboxEncryptionSecret"),
            },
            trustdinfo: TrustdInfo {
                token: get_str("machine.token")?,
            },
            certs: Certs {
                etcd: pair("cluster.etcd.ca")?,
                k8s: pair("cluster.ca")?,
                k8saggregator: match lookup(&doc, "cluster.aggregatorCA") {
                    Some(_) => Some(pair("cluster.aggregatorCA")?),
                    None => None,
                },
                k8sserviceaccount: match lookup(&doc, "cluster.serviceAccount") {
                    Some(_) => Some(KeyOnly {
                        key: decode("cluster.serviceAccount.key")?,
                    }),
                    None => None,
                },
                os: pair("machine.ca")?,
            },
            header_comment: String::new(),
        };
        bundle.validate(source_name)?;
        Ok(bundle)
    }
}

fn lookup<'a>(doc: &'a serde_yaml::Value, path: &str) -> Option<&'a serde_yaml::Value> {
    path.split('.')
        .try_fold(doc, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

fn read_ca_pair(crt: &Path, key: &Path) -> Result<CertAndKey, BundleError> {
    let pair = CertAndKey {
        crt: read_file(crt)?,
        key: read_file(key)?,
    };
    pair.to_ca().map_err(|source| BundleError::Pki {
        source_name: crt.display().to_string(),
        key: "certificate and key".to_string(),
        source,
    })?;
    Ok(pair)
}
