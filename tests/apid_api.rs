//! The real `talos apid` in front of the real `talos machined --api-only`, on 127.0.0.1:
//! calls pass through, RBAC and TLS refuse what they must, limits hold, PKI changes apply,
//! SIGTERM stops it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod common_api;

use std::time::Duration;

use common_api::{collect, connect, request, start_apid, start_machined, TestPki};
use talos::api::machine::{self as pb, machine_service_client::MachineServiceClient};
use talos::secrets::{CertParams, ExtKeyUsage};
use time::OffsetDateTime;
use tonic::Code;

type Client = MachineServiceClient<tonic::transport::Channel>;

async fn client(apid: &common_api::Apid, pki: &TestPki, roles: &[&str]) -> Client {
    let ch = connect(apid.addr, &pki.ca_pem(), &pki.client(roles))
        .await
        .expect("connect");
    MachineServiceClient::new(ch)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

fn data(chunks: Vec<talos::api::common::Data>) -> Vec<u8> {
    chunks.into_iter().flat_map(|d| d.bytes).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_pass_through_to_machined() {
    let pki = TestPki::new();
    let machined = start_machined("metal");
    let apid = start_apid(&pki, true, &machined.socket, &[]);
    let mut admin = client(&apid, &pki, &["os:admin"]).await;

    let v = admin.version(()).await.expect("Version").into_inner();
    assert_eq!(v.messages.len(), 1);
    assert_eq!(
        v.messages[0].version.as_ref().expect("version").tag,
        "v1.7.0"
    );
    assert_eq!(
        v.messages[0].platform.as_ref().expect("platform").name,
        "metal"
    );
    // A local call is relayed unchanged: no hostname added.
    assert!(v.messages[0].metadata.is_none());

    let h = admin.hostname(()).await.expect("Hostname").into_inner();
    assert!(!h.messages[0].hostname.is_empty());
    let m = admin.memory(()).await.expect("Memory").into_inner();
    assert!(m.messages[0].meminfo.as_ref().expect("meminfo").memtotal > 0);

    // Streaming: Read of a file, Logs of machined.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).expect("write");
    let read = admin
        .read(pb::ReadRequest {
            path: file.to_string_lossy().into_owned(),
        })
        .await
        .expect("Read")
        .into_inner();
    assert_eq!(data(collect(read).await.expect("read stream")), content);

    let logs = admin
        .logs(pb::LogsRequest {
            namespace: "system".into(),
            id: "machined".into(),
            tail_lines: -1,
            ..Default::default()
        })
        .await
        .expect("Logs")
        .into_inner();
    let logs = String::from_utf8_lossy(&data(collect(logs).await.expect("logs"))).into_owned();
    // machined saw the caller's roles in talos-role.
    assert!(
        logs.contains("method=\"Version\" roles=\"os:admin\""),
        "{logs}"
    );

    // Errors from machined come back unchanged (code and message).
    let err = admin
        .logs(pb::LogsRequest {
            id: "kubelet".into(),
            ..Default::default()
        })
        .await
        .expect_err("unregistered log");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("kubelet"), "{}", err.message());

    // Dmesg goes through (machined may lack the right to read the kernel log: then its
    // error comes back, not one from apid).
    match admin
        .dmesg(pb::DmesgRequest {
            follow: false,
            tail: false,
        })
        .await
    {
        Ok(stream) => {
            let _ = collect(stream.into_inner()).await;
        }
        Err(e) => assert!(
            e.message().contains("kernel log") || e.message().contains("kmsg"),
            "{e:?}"
        ),
    }

    // A role passed in metadata by a normal client does not reach machined.
    let mut reader = client(&apid, &pki, &["os:reader"]).await;
    reader
        .version(request((), &[("talos-role", "os:admin")]))
        .await
        .expect("Version as reader");
    let logs = admin
        .logs(pb::LogsRequest {
            namespace: "system".into(),
            id: "machined".into(),
            tail_lines: 3,
            ..Default::default()
        })
        .await
        .expect("Logs")
        .into_inner();
    let logs = String::from_utf8_lossy(&data(collect(logs).await.expect("logs"))).into_owned();
    assert!(
        logs.contains("method=\"Version\" roles=\"os:reader\""),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac() {
    let pki = TestPki::new();
    let machined = start_machined("container");
    let apid = start_apid(&pki, true, &machined.socket, &[]);
    let mut reader = client(&apid, &pki, &["os:reader"]).await;

    reader.version(()).await.expect("reader may call Version");
    let denied = |r: Result<(), tonic::Status>| {
        let e = r.expect_err("refused");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert_eq!(e.message(), "not authorized");
    };
    denied(
        reader
            .apply_configuration(pb::ApplyConfigurationRequest::default())
            .await
            .map(|_| ()),
    );
    denied(
        reader
            .reboot(pb::RebootRequest::default())
            .await
            .map(|_| ()),
    );
    denied(
        reader
            .read(pb::ReadRequest {
                path: "/etc/hostname".into(),
            })
            .await
            .map(|_| ()),
    );
    // Passing a role in metadata does not help without the impersonator role.
    denied(
        reader
            .read(request(
                pb::ReadRequest {
                    path: "/etc/hostname".into(),
                },
                &[("talos-role", "os:admin")],
            ))
            .await
            .map(|_| ()),
    );

    // An impersonator (another apid) passes the caller's roles.
    let mut imp = client(&apid, &pki, &["os:impersonator"]).await;
    denied(imp.version(()).await.map(|_| ()));
    imp.version(request((), &[("talos-role", "os:reader")]))
        .await
        .expect("impersonating a reader");
    denied(
        imp.read(request(
            pb::ReadRequest {
                path: "/etc/hostname".into(),
            },
            &[("talos-role", "os:reader")],
        ))
        .await
        .map(|_| ()),
    );

    // Unknown methods are for admins only; an admin reaches machined, which does not know it.
    let ch = connect(apid.addr, &pki.ca_pem(), &pki.client(&["os:reader"]))
        .await
        .expect("connect");
    let mut raw = tonic::client::Grpc::new(ch);
    raw.ready().await.expect("ready");
    let e = raw
        .unary::<(), (), _>(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/machine.MachineService/Future"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("admin only");
    assert_eq!(e.code(), Code::PermissionDenied);

    // Writes through COSI are refused even for admins.
    let ch = connect(apid.addr, &pki.ca_pem(), &pki.client(&["os:admin"]))
        .await
        .expect("connect");
    let mut raw = tonic::client::Grpc::new(ch);
    raw.ready().await.expect("ready");
    let e = raw
        .unary::<(), (), _>(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/cosi.resource.State/Create"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("no writes");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.message(), "write access is not allowed");

    // --rbac=false: everybody is everything.
    let open = start_apid(&pki, true, &machined.socket, &["--rbac=false"]);
    let mut reader = client(&open, &pki, &["os:reader"]).await;
    let read = reader
        .read(pb::ReadRequest {
            path: open.pki_dir.join("ca.crt").to_string_lossy().into_owned(),
        })
        .await
        .expect("Read without RBAC")
        .into_inner();
    assert_eq!(data(collect(read).await.expect("read")), pki.ca_pem());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refusals() {
    let pki = TestPki::new();
    let machined = start_machined("container");
    let apid = start_apid(&pki, true, &machined.socket, &[]);
    let now = OffsetDateTime::now_utc();

    async fn refused(apid: &common_api::Apid, ca: &[u8], id: &common_api::Identity) -> bool {
        let Ok(ch) = connect(apid.addr, ca, id).await else {
            return true;
        };
        MachineServiceClient::new(ch).version(()).await.is_err()
    }

    // Unknown CA.
    let other = TestPki::new();
    assert!(refused(&apid, &pki.ca_pem(), &other.client(&["os:admin"])).await);
    // Expired.
    let expired = pki.issue(
        &CertParams::new(now - time::Duration::days(10), time::Duration::days(1))
            .organizations(["os:admin"])
            .ext_key_usage([ExtKeyUsage::ClientAuth]),
    );
    assert!(refused(&apid, &pki.ca_pem(), &expired).await);
    // Not yet valid.
    let future = pki.issue(
        &CertParams::new(now + time::Duration::days(1), time::Duration::days(1))
            .organizations(["os:admin"])
            .ext_key_usage([ExtKeyUsage::ClientAuth]),
    );
    assert!(refused(&apid, &pki.ca_pem(), &future).await);
    // Without ClientAuth.
    let server_only = pki.issue(
        &CertParams::new(now - time::Duration::hours(1), time::Duration::days(1))
            .organizations(["os:admin"])
            .ext_key_usage([ExtKeyUsage::ServerAuth]),
    );
    assert!(refused(&apid, &pki.ca_pem(), &server_only).await);
    // ServerAuth + ClientAuth: refused with the strict check (the default), fine without.
    let both = pki.issue(
        &CertParams::new(now - time::Duration::hours(1), time::Duration::days(1))
            .organizations(["os:admin"])
            .ext_key_usage([ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth]),
    );
    assert!(refused(&apid, &pki.ca_pem(), &both).await);
    let lax = start_apid(
        &pki,
        true,
        &machined.socket,
        &["--check-ext-key-usage=false"],
    );
    assert!(!refused(&lax, &pki.ca_pem(), &both).await);

    // A good client still works, and apid logged the refusals.
    assert!(!refused(&apid, &pki.ca_pem(), &pki.client(&["os:reader"])).await);
    let log = apid.log();
    assert!(log.contains("TLS handshake failed"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_is_refused_and_apid_keeps_serving() {
    let pki = TestPki::new();
    let machined = start_machined("container");
    let apid = start_apid(&pki, true, &machined.socket, &[]);
    let mut admin = client(&apid, &pki, &["os:admin"]).await;

    let big = pb::ApplyConfigurationRequest {
        data: vec![b'#'; 33 << 20],
        ..Default::default()
    };
    let e = admin
        .apply_configuration(big)
        .await
        .expect_err("33 MiB refused");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .starts_with("grpc: received message larger than max ("),
        "{e:?}"
    );

    // Same connection and a new one both still work.
    admin.version(()).await.expect("Version after the refusal");
    let mut again = client(&apid, &pki, &["os:admin"]).await;
    again
        .version(())
        .await
        .expect("Version on a new connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_does_not_forward() {
    let pki = TestPki::new();
    let machined = start_machined("container");
    let worker = start_apid(&pki, false, &machined.socket, &[]);
    let mut admin = client(&worker, &pki, &["os:admin"]).await;

    let e = admin
        .version(request((), &[("nodes", "127.0.0.2:50000")]))
        .await
        .expect_err("no forwarding");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.message(), "no request forwarding");
    let e = admin
        .version(request((), &[("node", "127.0.0.2")]))
        .await
        .expect_err("no forwarding");
    assert_eq!(e.message(), "no request forwarding");

    // Its own address is served locally.
    let own = worker.target();
    let v = admin
        .version(request((), &[("nodes", own.as_str())]))
        .await
        .expect("own address")
        .into_inner();
    assert_eq!(v.messages.len(), 1);
    admin
        .version(request((), &[("node", own.as_str())]))
        .await
        .expect("own address, one-to-one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_changes_apply_to_new_connections() {
    let pki = TestPki::new();
    let machined = start_machined("container");
    let apid = start_apid(
        &pki,
        true,
        &machined.socket,
        &["--pki-poll-interval", "200ms"],
    );
    let mut old = client(&apid, &pki, &["os:admin"]).await;
    old.version(()).await.expect("before");

    // A half-written directory (key missing) is ignored: the old certificates stay.
    let next = TestPki::new();
    let server = next.server();
    std::fs::write(apid.pki_dir.join("server.crt"), &server.crt).expect("write");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut still = client(&apid, &pki, &["os:admin"]).await;
    still.version(()).await.expect("old certificates kept");
    assert!(apid.log().contains("cannot be loaded"), "{}", apid.log());

    // The complete new set: new connections use it.
    std::fs::write(apid.pki_dir.join("server.key"), &server.key).expect("write");
    std::fs::write(apid.pki_dir.join("ca.crt"), next.ca_pem()).expect("write");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(ch) = connect(apid.addr, &next.ca_pem(), &next.client(&["os:admin"])).await {
            if MachineServiceClient::new(ch).version(()).await.is_ok() {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "{}", apid.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        connect(apid.addr, &pki.ca_pem(), &pki.client(&["os:admin"]))
            .await
            .is_err()
    );
    // The connection made before the change still works.
    old.version(()).await.expect("old connection");
    assert!(apid.log().contains("certificates reloaded"));
}

#[test]
fn sigterm_stops_apid() {
    let pki = TestPki::new();
    let machined = start_machined("container");
    let mut apid = start_apid(&pki, true, &machined.socket, &[]);
    let status = apid
        .proc
        .terminate(Duration::from_secs(10))
        .expect("apid exits after SIGTERM");
    assert!(status.success(), "{status:?}; log:\n{}", apid.log());
    assert!(apid.log().contains("SIGTERM received"));
    assert!(std::net::TcpStream::connect(apid.addr).is_err());
}

#[test]
fn bad_pki_dir_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["apid", "--listen", "127.0.0.1:0", "--pki-dir"])
        .arg(dir.path())
        .output()
        .expect("run apid");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.crt"), "{err}");

    // Half a forwarding identity.
    let pki = TestPki::new();
    pki.write_apid_dir(dir.path(), false);
    std::fs::write(dir.path().join("client.crt"), pki.impersonator().crt).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["apid", "--listen", "127.0.0.1:0", "--pki-dir"])
        .arg(dir.path())
        .output()
        .expect("run apid");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("client.key"), "{err}");
}
