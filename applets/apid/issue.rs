//! Self-issued certificates on control-plane nodes.
//!
//! When the PKI directory holds `ca.key` (the OS CA key, present only on control planes), apid
//! signs its own certificates with the OS CA (the first certificate in `ca.crt`):
//!
//! | file | subject | usage |
//! |---|---|---|
//! | `server.crt`, `server.key` | CN = hostname; SANs = the node's addresses, hostname, `--cert-san` | ServerAuth |
//! | `client.crt`, `client.key` | CN = hostname, O = `os:impersonator` | ClientAuth |
//!
//! Both are valid for `--cert-ttl` (24 h by default) and are issued again once the server
//! certificate has less than half of its validity left. They are written atomically (0600), key
//! first, so the PKI poll in [`super::pki`] reloads them like certificates written by machined.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use talos::auth::pki_dir::{
    PkiDir, CA_CRT, CA_KEY, CLIENT_CRT, CLIENT_KEY, SERVER_CRT, SERVER_KEY,
};
use talos::fsutil::{write_atomic, WriteOptions};
use talos::secrets::{CertParams, Certificate, CertificateAuthority, ExtKeyUsage, KeyUsage};
use time::OffsetDateTime;

/// Organization (role) of the forwarding certificate.
pub const IMPERSONATOR: &str = "os:impersonator";

/// Issues apid's certificates from the OS CA when its key is in the PKI directory.
#[derive(Debug, Clone)]
pub struct SelfIssuer {
    dir: PkiDir,
    ttl: Duration,
    extra_sans: Vec<String>,
}

/// The names a server certificate carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sans {
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// DNS SANs.
    pub dns: Vec<String>,
}

impl Sans {
    /// Sorts `names` (IP addresses or host names, optionally in brackets) into IP and DNS SANs,
    /// without duplicates and empty entries.
    pub fn from_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let mut sans = Sans::default();
        for name in names {
            let host = name
                .as_ref()
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']');
            if host.is_empty() {
                continue;
            }
            match host.parse::<IpAddr>() {
                Ok(ip) if !sans.ips.contains(&ip) => sans.ips.push(ip),
                Ok(_) => {}
                Err(_) => {
                    let host = host.to_ascii_lowercase();
                    if !sans.dns.contains(&host) {
                        sans.dns.push(host);
                    }
                }
            }
        }
        sans
    }
}

impl SelfIssuer {
    /// Issues into `dir`, certificates valid for `ttl`, with `extra_sans` besides the node's names.
    pub fn new(dir: PkiDir, ttl: Duration, extra_sans: Vec<String>) -> Self {
        SelfIssuer {
            dir,
            ttl,
            extra_sans,
        }
    }

    /// Whether this node may issue (the directory holds the OS CA key).
    pub fn enabled(&self) -> bool {
        self.dir.ca_key().exists()
    }

    /// Issues new certificates when `ca.key` is present and the server certificate is missing,
    /// unreadable or past half of its validity. `node_names` are the node's addresses and
    /// hostname; `hostname` becomes the CommonName. Returns whether it issued.
    pub fn refresh(&self, node_names: &[String], hostname: Option<&str>) -> anyhow::Result<bool> {
        if !self.enabled() || !self.needs_refresh(OffsetDateTime::now_utc()) {
            return Ok(false);
        }
        self.issue(node_names, hostname)?;
        Ok(true)
    }

    fn needs_refresh(&self, now: OffsetDateTime) -> bool {
        let fresh = |crt: &str, key: &str| -> Option<bool> {
            if !self.dir.file(key).exists() {
                return None;
            }
            let cert = Certificate::from_pem(&std::fs::read(self.dir.file(crt)).ok()?).ok()?;
            let parsed = cert.parsed().ok()?;
            let not_before = parsed.validity().not_before.to_datetime();
            let not_after = parsed.validity().not_after.to_datetime();
            let half = not_before + (not_after - not_before) / 2;
            Some(now < half)
        };
        fresh(SERVER_CRT, SERVER_KEY) != Some(true) || fresh(CLIENT_CRT, CLIENT_KEY) != Some(true)
    }

    fn issue(&self, node_names: &[String], hostname: Option<&str>) -> anyhow::Result<()> {
        let read = |path: std::path::PathBuf| {
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        let ca =
            CertificateAuthority::from_pem(&read(self.dir.ca_crt())?, &read(self.dir.ca_key())?)
                .with_context(|| {
                    format!(
                        "loading the OS CA from {CA_CRT} (first certificate) and {CA_KEY} in {}",
                        self.dir.root().display()
                    )
                })?;
        let ttl = time::Duration::try_from(self.ttl).context("--cert-ttl is too long")?;
        let base = CertParams {
            common_name: hostname.filter(|h| !h.is_empty()).map(str::to_owned),
            ..CertParams::new(OffsetDateTime::now_utc(), ttl)
        }
        .key_usage(KeyUsage::DIGITAL_SIGNATURE);

        let sans = Sans::from_names(node_names.iter().chain(&self.extra_sans));
        let server = base
            .clone()
            .ip_addresses(sans.ips)
            .dns_names(sans.dns)
            .ext_key_usage([ExtKeyUsage::ServerAuth]);
        let client = base
            .organizations([IMPERSONATOR])
            .ext_key_usage([ExtKeyUsage::ClientAuth]);

        let (server_crt, server_key) = ca
            .issue(&server)
            .context("issuing the server certificate")?;
        let (client_crt, client_key) = ca
            .issue(&client)
            .context("issuing the client certificate")?;
        let server_key = server_key.to_pem().context("encoding the server key")?;
        let client_key = client_key.to_pem().context("encoding the client key")?;
        // Keys first: a poll between two writes sees a mismatched pair, fails to load it and
        // keeps the old certificates until the next change.
        self.write(SERVER_KEY, &server_key)?;
        self.write(SERVER_CRT, &server_crt.to_pem())?;
        self.write(CLIENT_KEY, &client_key)?;
        self.write(CLIENT_CRT, &client_crt.to_pem())?;
        Ok(())
    }

    fn write(&self, name: &str, data: &[u8]) -> anyhow::Result<()> {
        let path = self.dir.file(name);
        write_atomic(&path, data, WriteOptions::PRIVATE.overwrite(true))
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use talos::secrets::KeyAlgorithm;

    fn read(dir: &Path, name: &str) -> Vec<u8> {
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn sans_are_sorted_and_deduplicated() {
        let sans = Sans::from_names([
            "127.0.0.1",
            "Node-1",
            "[fd00::1]",
            "",
            "node-1",
            "127.0.0.1",
        ]);
        assert_eq!(
            sans.ips,
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
        assert_eq!(sans.dns, ["node-1"]);
    }

    #[test]
    fn issues_only_with_ca_key_and_when_half_expired() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate(
            KeyAlgorithm::Ed25519,
            &CertParams::new(now, time::Duration::days(1)).organizations(["talos"]),
        )
        .unwrap();
        std::fs::write(dir.path().join(CA_CRT), ca.cert.to_pem()).unwrap();
        let issuer = SelfIssuer::new(
            PkiDir::new(dir.path()),
            Duration::from_secs(3600),
            vec!["extra.example".into(), "10.9.9.9".into()],
        );
        let names = vec!["127.0.0.1".to_owned(), "node-1".to_owned()];
        // No CA key: nothing happens.
        assert!(!issuer.refresh(&names, Some("node-1")).unwrap());
        assert!(!dir.path().join(SERVER_CRT).exists());

        std::fs::write(dir.path().join(CA_KEY), ca.key.to_pem().unwrap()).unwrap();
        assert!(issuer.refresh(&names, Some("node-1")).unwrap());
        // Fresh: not issued again.
        assert!(!issuer.refresh(&names, Some("node-1")).unwrap());
        assert!(!issuer.needs_refresh(now + time::Duration::minutes(29)));
        assert!(issuer.needs_refresh(now + time::Duration::minutes(31)));

        let server = Certificate::from_pem(&read(dir.path(), SERVER_CRT)).unwrap();
        let parsed = server.parsed().unwrap();
        let san = parsed.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let client = Certificate::from_pem(&read(dir.path(), CLIENT_CRT)).unwrap();
        assert_eq!(client.organizations().unwrap(), [IMPERSONATOR]);
        let parsed = client.parsed().unwrap();
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        for name in [SERVER_KEY, CLIENT_KEY] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
}
