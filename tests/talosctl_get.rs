//! `talosctl get` against an in-test fake COSI State server (mutual TLS): resource definition
//! resolution (ids and aliases), per-node `node` metadata, table/yaml/json/jsonpath output,
//! errors of one node, and watch.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod talosctl_common;

use talos::api::cosi::resource as cosi;
use talos::api::cosi::resource::state_server::{State, StateServer};
use talosctl_common::*;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct FakeState {
    rec: Recorder,
}

fn resource(ns: &str, ty: &str, id: &str, version: &str, yaml: &str) -> cosi::Resource {
    cosi::Resource {
        metadata: Some(cosi::Metadata {
            namespace: ns.into(),
            r#type: ty.into(),
            id: id.into(),
            version: version.into(),
            owner: "test.Controller".into(),
            phase: "running".into(),
            created: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            updated: Some(prost_types::Timestamp {
                seconds: 1_700_000_100,
                nanos: 0,
            }),
            ..Default::default()
        }),
        spec: Some(cosi::Spec {
            proto_spec: vec![],
            yaml_spec: yaml.into(),
        }),
    }
}

const RD: &str = "ResourceDefinitions.meta.cosi.dev";
const HOSTNAME: &str = "HostnameStatuses.net.talos.dev";

fn definitions() -> Vec<cosi::Resource> {
    vec![
        resource(
            "meta",
            RD,
            "resourcedefinitions.meta.cosi.dev",
            "1",
            "type: ResourceDefinitions.meta.cosi.dev\ndisplayType: ResourceDefinition\ndefaultNamespace: meta\naliases:\n  - api-resources\nallAliases:\n  - api-resources\n  - rd\n  - rds\nprintColumns:\n  - name: Aliases\n    jsonPath: '{.aliases[:]}'\n",
        ),
        resource(
            "meta",
            RD,
            "hostnamestatuses.net.talos.dev",
            "1",
            "type: HostnameStatuses.net.talos.dev\ndisplayType: HostnameStatus\ndefaultNamespace: network\naliases:\n  - hostname\nallAliases:\n  - hostname\n  - hostnamestatus\nprintColumns:\n  - name: Hostname\n    jsonPath: '{.hostname}'\n  - name: Domainname\n    jsonPath: '{.domainname}'\n",
        ),
    ]
}

fn hostname(node: &str) -> cosi::Resource {
    resource(
        "network",
        HOSTNAME,
        "hostname",
        "2",
        &format!("hostname: {node}-host\ndomainname: example.org\n"),
    )
}

fn items(req_ns: &str, req_type: &str) -> Vec<cosi::Resource> {
    match (req_ns, req_type) {
        ("meta", RD) => definitions(),
        ("network", HOSTNAME) => vec![],
        _ => vec![],
    }
}

#[tonic::async_trait]
impl State for FakeState {
    async fn get(
        &self,
        req: Request<cosi::GetRequest>,
    ) -> Result<Response<cosi::GetResponse>, Status> {
        let rec = self.rec.record("Get", &req);
        let node = rec.node.clone().unwrap_or_default();
        if node.starts_with("bad") {
            return Err(Status::unavailable("connection refused"));
        }
        let r = req.into_inner();
        if r.r#type == HOSTNAME && r.namespace == "network" && r.id == "hostname" {
            return Ok(Response::new(cosi::GetResponse {
                resource: Some(hostname(&node)),
            }));
        }
        Err(Status::not_found(format!(
            "resource {} doesn't exist",
            r.id
        )))
    }

    async fn list(
        &self,
        req: Request<cosi::ListRequest>,
    ) -> Result<Response<BoxStream<cosi::ListResponse>>, Status> {
        let rec = self.rec.record("List", &req);
        let node = rec.node.clone().unwrap_or_default();
        if node.starts_with("bad") {
            return Err(Status::unavailable("connection refused"));
        }
        let r = req.into_inner();
        let mut list = items(&r.namespace, &r.r#type);
        if r.r#type == HOSTNAME && r.namespace == "network" {
            list.push(hostname(&node));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(
            list.into_iter()
                .map(|r| Ok(cosi::ListResponse { resource: Some(r) })),
        ))))
    }

    async fn watch(
        &self,
        req: Request<cosi::WatchRequest>,
    ) -> Result<Response<BoxStream<cosi::WatchResponse>>, Status> {
        let rec = self.rec.record("Watch", &req);
        let node = rec.node.clone().unwrap_or_default();
        let ev = |r: Option<cosi::Resource>, t: cosi::EventType| cosi::Event {
            resource: r,
            old: None,
            error: None,
            event_type: t as i32,
        };
        let mut updated = hostname(&node);
        if let Some(md) = updated.metadata.as_mut() {
            md.version = "3".into();
        }
        let responses = vec![
            cosi::WatchResponse {
                event: vec![ev(Some(hostname(&node)), cosi::EventType::Created)],
            },
            cosi::WatchResponse {
                event: vec![ev(None, cosi::EventType::Bootstrapped)],
            },
            cosi::WatchResponse {
                event: vec![ev(Some(updated), cosi::EventType::Updated)],
            },
        ];
        // The stream ends after these events (a real server would keep it open).
        Ok(Response::new(Box::pin(tokio_stream::iter(
            responses.into_iter().map(Ok),
        ))))
    }
}

struct Setup {
    _server: TestServer,
    rec: Recorder,
    ws: Workspace,
}

fn setup(nodes: &[&str]) -> Setup {
    let pki = Pki::new(&["os:reader"]);
    let rec = Recorder::default();
    let state = FakeState { rec: rec.clone() };
    let server = TestServer::start(pki.server_config(), move || {
        tonic::transport::Server::builder().add_service(StateServer::new(state))
    });
    let ws = Workspace::new(&pki, &[server.endpoint()], nodes);
    Setup {
        _server: server,
        rec,
        ws,
    }
}

#[test]
fn get_list_table_per_node() {
    let s = setup(&["n1", "n2"]);
    let run = s.ws.talosctl(&["get", "hostname"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "NODE   NAMESPACE   TYPE             ID         VERSION   HOSTNAME   DOMAINNAME\n\
         n1     network     HostnameStatus   hostname   2         n1-host    example.org\n\
         n2     network     HostnameStatus   hostname   2         n2-host    example.org\n"
    );
    // COSI goes one-to-one: `node`, never `nodes`.
    let calls = s.rec.all();
    assert!(calls.iter().all(|c| c.nodes.is_empty()), "{calls:?}");
    let lists: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "List")
        .map(|c| c.node.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        lists,
        ["n1", "n1", "n2"],
        "definitions from the first node, then each node"
    );
}

#[test]
fn get_rd_and_aliases() {
    let s = setup(&["n1"]);
    let run = s.ws.talosctl(&["get", "rd"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "NODE   NAMESPACE   TYPE                 ID                                  VERSION   ALIASES");
    assert_eq!(lines[1], "n1     meta        ResourceDefinition   resourcedefinitions.meta.cosi.dev   1         api-resources");
    assert_eq!(lines[2], "n1     meta        ResourceDefinition   hostnamestatuses.net.talos.dev      1         hostname");

    let run = s.ws.talosctl(&[
        "g",
        "HostnameStatuses.net.talos.dev",
        "hostname",
        "-o",
        "jsonpath={.spec.hostname}",
    ]);
    run.ok();
    assert_eq!(run.stdout, "n1-host\n");

    let run = s.ws.talosctl(&["get", "nosuchthing"]);
    run.failed();
    assert!(
        run.stderr
            .contains("resource \"nosuchthing\" is not registered"),
        "{}",
        run.stderr
    );

    let run = s.ws.talosctl(&["get", "hostname", "-o", "xml"]);
    run.failed();
    assert!(run
        .stderr
        .contains("output format \"xml\" is not supported"));
}

#[test]
fn get_one_yaml_and_json() {
    let s = setup(&["n1"]);
    let run =
        s.ws.talosctl(&["get", "hostname", "hostname", "-o", "yaml"]);
    run.ok();
    assert!(
        run.stdout.starts_with("node: n1\nmetadata:\n"),
        "{}",
        run.stdout
    );
    for needle in [
        "namespace: network",
        "type: HostnameStatuses.net.talos.dev",
        "id: hostname",
        "version: 2",
        "owner: test.Controller",
        "phase: running",
        "2023-11-14T22:13:20Z",
        "hostname: n1-host",
        "spec:",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle} missing in\n{}",
            run.stdout
        );
    }
    let rec = s.rec.all().pop().unwrap();
    assert_eq!(rec.method, "Get");
    assert_eq!(rec.node.as_deref(), Some("n1"));

    let run = s.ws.talosctl(&["get", "hostname", "-o", "json"]);
    run.ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["node"], "n1");
    assert_eq!(v["metadata"]["version"], 2);
    assert_eq!(v["spec"]["domainname"], "example.org");
    assert!(
        run.stdout
            .starts_with("{\n    \"metadata\": {\n        \"created\""),
        "sorted keys, 4 spaces: {}",
        run.stdout
    );

    let run = s.ws.talosctl(&["get", "hostname", "missing"]);
    run.failed();
    assert!(
        run.stderr.contains("error: n1: rpc error: code = NotFound"),
        "{}",
        run.stderr
    );
}

#[test]
fn get_node_failure_is_reported() {
    let s = setup(&["n1", "bad2"]);
    let run = s.ws.talosctl(&["get", "hostname"]);
    run.failed();
    assert!(run.stdout.contains("n1     network"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("error: bad2: rpc error: code = Unavailable desc = connection refused"),
        "{}",
        run.stderr
    );
}

#[test]
fn get_watch_table() {
    let s = setup(&["n1"]);
    let run = s.ws.talosctl(&["get", "hostname", "-w"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "NODE   *   NAMESPACE   TYPE             ID         VERSION   HOSTNAME   DOMAINNAME\n\
         n1     +   network     HostnameStatus   hostname   2         n1-host    example.org\n\
         n1       network   HostnameStatus   hostname   3   n1-host   example.org\n"
    );
    // (After the bootstrap, each event is flushed, and aligned, on its own, like talosctl.)
    let watch = s
        .rec
        .all()
        .into_iter()
        .find(|c| c.method == "Watch")
        .unwrap();
    assert_eq!(watch.node.as_deref(), Some("n1"));

    let run = s.ws.talosctl(&["get", "hostname", "-w", "-o", "yaml"]);
    run.ok();
    assert!(
        run.stdout.starts_with("node: n1\nevent: created\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("---\nnode: n1\nevent: updated\n"),
        "{}",
        run.stdout
    );
}
