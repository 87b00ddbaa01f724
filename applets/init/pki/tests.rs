use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;

use talos::secrets::Certificate;

use super::*;

fn fixture(name: &str) -> Config {
    let path = format!("{}/testdata/secrets/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).expect("fixture");
    Config::from_yaml(&bytes, &path).expect("config")
}

fn node() -> NodeIdentity {
    NodeIdentity {
        hostname: "talos-cp-1".into(),
        addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 5, 0, 2))],
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

fn sans(pem: &[u8]) -> (Vec<String>, Vec<IpAddr>) {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let cert = Certificate::from_pem(pem).expect("cert");
    let parsed = cert.parsed().expect("parse");
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for ext in parsed.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => dns.push(d.to_string()),
                    GeneralName::IPAddress(b) if b.len() == 4 => {
                        ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).expect("v4")))
                    }
                    _ => {}
                }
            }
        }
    }
    (dns, ips)
}

#[test]
fn control_plane_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = fixture("controlplane.yaml");
    let (apid, trustd) = (dir.path().join("apid"), dir.path().join("trustd"));
    write_control_plane(
        &config,
        &PkiDir::new(&apid),
        &PkiDir::new(&trustd),
        &node(),
        None,
    )
    .expect("written");

    let machine = config
        .v1alpha1()
        .and_then(|c| c.machine.as_ref())
        .expect("m");
    let ca = machine.ca.as_ref().expect("ca");
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("b64")
    };
    assert_eq!(
        std::fs::read(apid.join("ca.crt")).expect("ca"),
        b64(&ca.crt)
    );
    assert_eq!(
        std::fs::read(apid.join("ca.key")).expect("key"),
        b64(&ca.key)
    );
    assert_eq!(mode(&apid.join("ca.key")), 0o600);
    assert_eq!(mode(&apid), 0o700);
    assert_eq!(
        std::fs::read_to_string(PkiDir::new(&trustd).token()).expect("token"),
        machine.token
    );
    assert_eq!(mode(&PkiDir::new(&trustd).token()), 0o600);
    assert_eq!(mode(&trustd.join("server.key")), 0o600);

    // trustd's certificate is signed by the OS CA and names the node and the endpoint host.
    let server = std::fs::read(trustd.join("server.crt")).expect("server.crt");
    let authority =
        CertificateAuthority::from_pem(&b64(&ca.crt), &b64(&ca.key)).expect("authority");
    let cert = Certificate::from_pem(&server).expect("cert");
    let parsed = cert.parsed().expect("parsed");
    assert_eq!(
        parsed.issuer().to_string(),
        authority.cert.parsed().expect("ca").subject().to_string()
    );
    let (dns, ips) = sans(&server);
    assert!(dns.contains(&"talos-cp-1".to_string()), "{dns:?}");
    assert!(dns.contains(&"base".to_string()), "endpoint host: {dns:?}");
    assert!(
        ips.contains(&IpAddr::V4(Ipv4Addr::new(10, 5, 0, 2))),
        "{ips:?}"
    );
    assert!(ips.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{ips:?}");
}

#[test]
fn accepted_cas_follow_the_os_ca() {
    let mut config = fixture("controlplane.yaml");
    let extra = fixture("controlplane.yaml")
        .v1alpha1()
        .and_then(|c| c.machine.as_ref())
        .and_then(|m| m.ca.as_ref())
        .map(|ca| ca.crt.clone())
        .expect("crt");
    let machine = config
        .v1alpha1_mut()
        .and_then(|c| c.machine.as_mut())
        .expect("machine");
    machine
        .accepted_cas
        .push(talos::config::PemEncodedCertificate { crt: extra });
    let bundle = ca_bundle(machine).expect("bundle");
    let text = String::from_utf8(bundle).expect("utf8");
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2);
}

#[test]
fn worker_config_cannot_write_control_plane_pki() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = write_control_plane(
        &fixture("worker.yaml"),
        &PkiDir::new(dir.path().join("a")),
        &PkiDir::new(dir.path().join("t")),
        &node(),
        None,
    )
    .expect_err("no CA key");
    assert!(format!("{err:#}").contains("machine.ca.key"), "{err:#}");
}

#[test]
fn trustd_endpoint_from_the_control_plane_endpoint() {
    let config = fixture("worker.yaml");
    assert_eq!(trustd_endpoint(&config).expect("endpoint"), "base:50001");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn worker_gets_its_certificate_from_a_real_trustd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp_apid, cp_trustd) = (dir.path().join("cp-apid"), dir.path().join("cp-trustd"));
    write_control_plane(
        &fixture("controlplane.yaml"),
        &PkiDir::new(&cp_apid),
        &PkiDir::new(&cp_trustd),
        &node(),
        None,
    )
    .expect("control plane pki");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let endpoint = listen.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let worker_apid = dir.path().join("worker-apid");
    let config = fixture("worker.yaml");
    let worker = NodeIdentity {
        hostname: "talos-worker-1".into(),
        addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 5, 0, 3))],
    };
    // trustd comes up only after the first attempts failed: the worker keeps retrying.
    let trustd_dir = cp_trustd.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let args: Vec<std::ffi::OsString> = vec![
            "trustd".into(),
            "--listen".into(),
            listen.into(),
            "--pki-dir".into(),
            trustd_dir.clone().into_os_string(),
            "--token-file".into(),
            PkiDir::new(&trustd_dir).token().into_os_string(),
        ];
        crate::trustd::main(args)
    });
    let retry = WorkerRetry {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        total: Duration::from_secs(30),
    };
    rt.block_on(write_worker(
        &config,
        &PkiDir::new(&worker_apid),
        &worker,
        Some(vec![endpoint]),
        retry,
        None,
    ))
    .expect("worker pki");
    let crt = std::fs::read(worker_apid.join("server.crt")).expect("server.crt");
    let (dns, ips) = sans(&crt);
    assert!(dns.contains(&"talos-worker-1".to_string()), "{dns:?}");
    assert!(
        ips.contains(&IpAddr::V4(Ipv4Addr::new(10, 5, 0, 3))),
        "{ips:?}"
    );
    assert_eq!(mode(&worker_apid.join("server.key")), 0o600);
    assert!(!worker_apid.join("ca.key").exists());
    let ca = std::fs::read_to_string(worker_apid.join("ca.crt")).expect("ca.crt");
    assert!(ca.contains("BEGIN CERTIFICATE"));

    // A wrong token is refused and reported once the time is up.
    let mut bad = fixture("worker.yaml");
    bad.v1alpha1_mut()
        .and_then(|c| c.machine.as_mut())
        .expect("machine")
        .token = "wrong.token".into();
    let quick = WorkerRetry {
        total: Duration::from_millis(300),
        ..retry
    };
    let err = rt
        .block_on(write_worker(
            &bad,
            &PkiDir::new(dir.path().join("bad")),
            &worker,
            Some(vec![format!("127.0.0.1:{port}")]),
            quick,
            None,
        ))
        .expect_err("refused");
    assert!(format!("{err:#}").contains("trustd"), "{err:#}");
    let _: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
}
