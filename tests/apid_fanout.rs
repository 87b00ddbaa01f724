//! One-to-many and one-to-one proxying between real `talos apid` processes on 127.0.0.1.
//!
//! 20 apids: the first ten in front of a machined that reports platform `container`, the last
//! ten in front of one that reports `metal`, so a reply shows which node served it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod common_api;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common_api::{collect, connect, request, start_apid, start_machined, Apid, TestPki};
use talos::api::machine::{self as pb, machine_service_client::MachineServiceClient};
use tonic::Code;

const NODES: usize = 20;

fn hostname(md: &Option<talos::api::common::Metadata>) -> String {
    md.as_ref().map(|m| m.hostname.clone()).unwrap_or_default()
}

fn platform(v: &pb::Version) -> &str {
    v.platform.as_ref().map(|p| p.name.as_str()).unwrap_or("")
}

/// A port nothing listens on.
fn dead_target() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_across_twenty_apids() {
    let pki = TestPki::new();
    let container = start_machined("container");
    let metal = start_machined("metal");
    let mut apids: Vec<Apid> = (0..NODES)
        .map(|i| {
            let socket = if i < NODES / 2 {
                &container.socket
            } else {
                &metal.socket
            };
            start_apid(&pki, true, socket, &["--node-timeout", "3s"])
        })
        .collect();
    let targets: Vec<String> = apids.iter().map(Apid::target).collect();
    let all = targets.join(",");

    let ch = connect(apids[0].addr, &pki.ca_pem(), &pki.client(&["os:reader"]))
        .await
        .expect("connect");
    let mut c = MachineServiceClient::new(ch);

    // Every node answers once, tagged with its target.
    let v = c
        .version(request((), &[("nodes", all.as_str())]))
        .await
        .expect("Version on 20 nodes")
        .into_inner();
    assert_eq!(v.messages.len(), NODES);
    for (m, target) in v.messages.iter().zip(&targets) {
        assert_eq!(&hostname(&m.metadata), target, "replies in target order");
        assert!(m.metadata.as_ref().expect("metadata").error.is_empty());
    }
    let platforms: Vec<&str> = v.messages.iter().map(platform).collect();
    assert_eq!(platforms[..NODES / 2], ["container"; NODES / 2]);
    assert_eq!(platforms[NODES / 2..], ["metal"; NODES / 2]);

    // Multi-valued `nodes` works the same as the comma-separated form.
    let mut req = request((), &[]);
    for t in &targets[..3] {
        req.metadata_mut()
            .append("nodes", t.parse().expect("value"));
    }
    let v = c.version(req).await.expect("multi-valued").into_inner();
    let hosts: Vec<String> = v.messages.iter().map(|m| hostname(&m.metadata)).collect();
    assert_eq!(hosts, targets[..3]);

    // A node goes down: 19 replies and one error entry, quickly.
    let last = NODES - 1;
    apids[last].proc.kill();
    let started = Instant::now();
    let v = c
        .version(request((), &[("nodes", all.as_str())]))
        .await
        .expect("Version with a node down")
        .into_inner();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(v.messages.len(), NODES);
    let ok = v
        .messages
        .iter()
        .filter(|m| m.metadata.as_ref().expect("md").error.is_empty())
        .count();
    assert_eq!(ok, NODES - 1);
    let failed = &v.messages[last];
    let md = failed.metadata.as_ref().expect("metadata");
    assert_eq!(md.hostname, targets[last]);
    assert!(md.error.starts_with("rpc error: code = "), "{}", md.error);
    assert_ne!(md.status.as_ref().expect("status").code, 0);
    assert!(failed.version.is_none());

    // A node that accepts but never answers: the per-node timeout, not a hang.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole = blackhole.local_addr().expect("addr").to_string();
    let started = Instant::now();
    let nodes = format!("{},{hole}", targets[1]);
    let v = c
        .version(request((), &[("nodes", nodes.as_str())]))
        .await
        .expect("Version with a stuck node")
        .into_inner();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(v.messages.len(), 2);
    assert_eq!(platform(&v.messages[0]), "container");
    let md = v.messages[1].metadata.as_ref().expect("metadata");
    assert_eq!(md.hostname, hole);
    assert_eq!(
        md.status.as_ref().expect("status").code,
        Code::DeadlineExceeded as i32
    );
    drop(blackhole);

    // Streaming fan-out: each node's log lines tagged; the dead node sends one error message.
    let nodes = format!("{},{},{}", targets[0], targets[15], targets[last]);
    let logs = c
        .logs(request(
            pb::LogsRequest {
                namespace: "system".into(),
                id: "machined".into(),
                tail_lines: 5,
                ..Default::default()
            },
            &[("nodes", nodes.as_str())],
        ))
        .await
        .expect("Logs on 3 nodes")
        .into_inner();
    let chunks = collect(logs).await.expect("merged stream");
    let hosts: BTreeSet<String> = chunks.iter().map(|d| hostname(&d.metadata)).collect();
    let expected: BTreeSet<String> = [&targets[0], &targets[15], &targets[last]]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(hosts, expected);
    let errors: Vec<_> = chunks
        .iter()
        .filter(|d| !d.metadata.as_ref().expect("md").error.is_empty())
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(hostname(&errors[0].metadata), targets[last]);
    assert!(chunks
        .iter()
        .filter(|d| hostname(&d.metadata) == targets[15])
        .any(|d| !d.bytes.is_empty()));

    // One-to-one: relayed unchanged (no hostname), served by the named node.
    let v = c
        .version(request((), &[("node", targets[15].as_str())]))
        .await
        .expect("node")
        .into_inner();
    assert_eq!(v.messages.len(), 1);
    assert_eq!(platform(&v.messages[0]), "metal");
    assert!(v.messages[0].metadata.is_none());
    let e = c
        .version(request((), &[("node", targets[last].as_str())]))
        .await
        .expect_err("dead node, one-to-one");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let e = c
        .version(request(
            (),
            &[("node", targets[1].as_str()), ("node", targets[2].as_str())],
        ))
        .await
        .expect_err("two nodes in node");
    assert_eq!(e.code(), Code::InvalidArgument);

    // RBAC applies before any forwarding: a reader cannot Read through other nodes.
    let v = c
        .read(request(
            pb::ReadRequest {
                path: "/etc/hostname".into(),
            },
            &[("nodes", targets[15].as_str())],
        ))
        .await;
    assert_eq!(v.expect_err("reader").code(), Code::PermissionDenied);

    // An admin reads through two nodes; each chunk tagged.
    let admin = connect(apids[0].addr, &pki.ca_pem(), &pki.client(&["os:admin"]))
        .await
        .expect("connect");
    let mut admin = MachineServiceClient::new(admin);
    let file = apids[0].pki_dir.join("ca.crt");
    let nodes = format!("{},{}", targets[2], targets[12]);
    let chunks = collect(
        admin
            .read(request(
                pb::ReadRequest {
                    path: file.to_string_lossy().into_owned(),
                },
                &[("nodes", nodes.as_str())],
            ))
            .await
            .expect("Read on 2 nodes")
            .into_inner(),
    )
    .await
    .expect("read stream");
    for t in [&targets[2], &targets[12]] {
        let bytes: Vec<u8> = chunks
            .iter()
            .filter(|d| &hostname(&d.metadata) == t)
            .flat_map(|d| d.bytes.clone())
            .collect();
        assert_eq!(bytes, pki.ca_pem(), "{t}");
    }

    // COSI is not fanned out.
    let mut raw = tonic::client::Grpc::new(
        connect(apids[0].addr, &pki.ca_pem(), &pki.client(&["os:reader"]))
            .await
            .expect("connect"),
    );
    raw.ready().await.expect("ready");
    let mut req = tonic::Request::new(());
    req.metadata_mut()
        .insert("nodes", targets[1].parse().expect("value"));
    let e = raw
        .unary::<(), (), _>(
            req,
            http::uri::PathAndQuery::from_static("/cosi.resource.State/Get"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("COSI one-to-many");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "one-2-many proxying is not supported for COSI methods"
    );

    // A target that is an unknown port is an error entry too.
    let dead = dead_target();
    let v = c
        .version(request((), &[("nodes", dead.as_str())]))
        .await
        .expect("dead only")
        .into_inner();
    assert_eq!(hostname(&v.messages[0].metadata), dead);
    assert!(!v.messages[0]
        .metadata
        .as_ref()
        .expect("md")
        .error
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_calls_are_served_locally() {
    let pki = TestPki::new();
    let container = start_machined("container");
    let metal = start_machined("metal");
    let a = start_apid(&pki, true, &container.socket, &[]);
    let b = start_apid(&pki, true, &metal.socket, &[]);

    // Another apid (impersonator) forwarding to b: b serves it locally even though the call
    // still names another node.
    let imp = connect(b.addr, &pki.ca_pem(), &pki.impersonator())
        .await
        .expect("connect");
    let mut imp = MachineServiceClient::new(imp);
    let a_target = a.target();
    for key in ["node", "nodes"] {
        let v = imp
            .version(request(
                (),
                &[
                    ("proxyfrom", "127.0.0.1:1"),
                    ("talos-role", "os:reader"),
                    (key, a_target.as_str()),
                ],
            ))
            .await
            .expect("forwarded call")
            .into_inner();
        assert_eq!(v.messages.len(), 1);
        assert_eq!(platform(&v.messages[0]), "metal", "{key}");
        assert!(v.messages[0].metadata.is_none());
    }

    // A client's call through a to b arrives at b marked as forwarded, with the caller's role.
    let c = connect(a.addr, &pki.ca_pem(), &pki.client(&["os:operator"]))
        .await
        .expect("connect");
    let mut c = MachineServiceClient::new(c);
    let b_target = b.target();
    let v = c
        .version(request((), &[("nodes", b_target.as_str())]))
        .await
        .expect("a → b")
        .into_inner();
    assert_eq!(platform(&v.messages[0]), "metal");
    assert_eq!(hostname(&v.messages[0].metadata), b_target);
    let logs = MachineServiceClient::new(
        connect(b.addr, &pki.ca_pem(), &pki.client(&["os:admin"]))
            .await
            .expect("connect"),
    )
    .logs(pb::LogsRequest {
        namespace: "system".into(),
        id: "machined".into(),
        tail_lines: -1,
        ..Default::default()
    })
    .await
    .expect("logs")
    .into_inner();
    let text: Vec<u8> = collect(logs)
        .await
        .expect("logs")
        .into_iter()
        .flat_map(|d| d.bytes)
        .collect();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("method=\"Version\" roles=\"os:operator\""),
        "{text}"
    );

    // A target naming the apid itself (its own address) is served locally, tagged.
    let a_self = a.target();
    let both = format!("{a_self},{b_target}");
    let v = c
        .version(request((), &[("nodes", both.as_str())]))
        .await
        .expect("self and b")
        .into_inner();
    let got: Vec<(String, &str)> = v
        .messages
        .iter()
        .map(|m| (hostname(&m.metadata), platform(m)))
        .collect();
    assert_eq!(
        got,
        [(a_self.clone(), "container"), (b_target.clone(), "metal")]
    );

    // Client streaming (EtcdRecover) one-to-many: every node gets the whole upload and answers
    // (machined here does not implement it: two error entries, no hang).
    let admin = connect(a.addr, &pki.ca_pem(), &pki.client(&["os:admin"]))
        .await
        .expect("connect");
    let mut admin = MachineServiceClient::new(admin);
    let chunks: Vec<talos::api::common::Data> = (0..3)
        .map(|i| talos::api::common::Data {
            metadata: None,
            bytes: vec![i; 1000],
        })
        .collect();
    let mut req = tonic::Request::new(tokio_stream::iter(chunks));
    req.metadata_mut()
        .insert("nodes", both.parse().expect("value"));
    let r = tokio::time::timeout(Duration::from_secs(10), admin.etcd_recover(req))
        .await
        .expect("no hang")
        .expect("merged reply")
        .into_inner();
    let got: Vec<(String, i32)> = r
        .messages
        .iter()
        .map(|m| {
            let md = m.metadata.as_ref().expect("metadata");
            (
                md.hostname.clone(),
                md.status.as_ref().map_or(0, |s| s.code),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (a_self, Code::Unimplemented as i32),
            (b_target, Code::Unimplemented as i32)
        ]
    );
}
