//! The generated API code: messages encode to Talos's wire bytes and round-trip, and the
//! MachineService server and client cover all 51 RPCs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use prost::Message as _;
use talos::api::{common, machine};

fn sample_version() -> machine::VersionResponse {
    machine::VersionResponse {
        messages: vec![machine::Version {
            metadata: Some(common::Metadata {
                hostname: "10.5.0.2".into(),
                ..Default::default()
            }),
            version: Some(machine::VersionInfo {
                tag: "v1.7.0".into(),
                sha: "abcdef12".into(),
                built: "2024-04-19T00:00:00Z".into(),
                go_version: "rustc".into(),
                os: "linux".into(),
                arch: "amd64".into(),
            }),
            platform: Some(machine::PlatformInfo {
                name: "container".into(),
                mode: "container".into(),
            }),
            features: Some(machine::FeaturesInfo { rbac: true }),
        }],
    }
}

#[test]
fn version_response_round_trips() {
    let original = sample_version();
    let bytes = original.encode_to_vec();
    let decoded = machine::VersionResponse::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded, original);
    let info = decoded.messages[0].version.as_ref().expect("version");
    assert_eq!(info.tag, "v1.7.0");
}

#[test]
fn data_encodes_to_the_talos_wire_bytes() {
    // common.Data{metadata(1){hostname(1): "a"}, bytes(2): "x"}, encoded by hand.
    let data = common::Data {
        metadata: Some(common::Metadata {
            hostname: "a".into(),
            ..Default::default()
        }),
        bytes: b"x".to_vec(),
    };
    assert_eq!(
        data.encode_to_vec(),
        [0x0a, 0x03, 0x0a, 0x01, b'a', 0x12, 0x01, b'x']
    );
}

#[test]
fn apid_metadata_splice_decodes_as_a_reply() {
    // apid appends a `messages[].metadata` to node replies by concatenating bytes; the last
    // occurrence of a singular message field merges into the earlier one.
    let mut bytes = sample_version().messages[0].encode_to_vec();
    let extra = machine::Version {
        metadata: Some(common::Metadata {
            hostname: "node-b".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    bytes.extend(extra.encode_to_vec());
    let merged = machine::Version::decode(bytes.as_slice()).expect("decodes");
    let meta = merged.metadata.expect("metadata");
    assert_eq!(meta.hostname, "node-b");
    assert_eq!(merged.version.expect("version").tag, "v1.7.0");
}

#[test]
fn enums_keep_talos_numbers() {
    assert_eq!(machine::ApplyConfigurationRequest::default().mode, 0);
    assert_eq!(machine::apply_configuration_request::Mode::Try as i32, 4);
    assert_eq!(machine::service_state_event::Action::Starting as i32, 8);
    assert_eq!(
        machine::apply_configuration_request::Mode::from_str_name("NO_REBOOT"),
        Some(machine::apply_configuration_request::Mode::NoReboot)
    );
}

#[test]
fn machine_service_has_51_methods_in_the_descriptor_set() {
    let fds = prost_types::FileDescriptorSet::decode(talos::api::FILE_DESCRIPTOR_SET)
        .expect("descriptor set decodes");
    let service = fds
        .file
        .iter()
        .filter(|f| f.package() == "machine")
        .flat_map(|f| &f.service)
        .find(|s| s.name() == "MachineService")
        .expect("machine.MachineService");
    assert_eq!(service.method.len(), 51);
}

#[test]
fn machine_service_server_trait_has_51_methods() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/machine.rs"));
    let start = generated
        .find("pub trait MachineService")
        .expect("server trait generated");
    // The trait is followed by the server struct in the same module.
    let end = start
        + generated[start..]
            .find("pub struct MachineServiceServer")
            .expect("server struct generated");
    assert_eq!(generated[start..end].matches("async fn ").count(), 51);
}

/// A server that implements nothing: the generated default bodies answer UNIMPLEMENTED.
struct Nothing;

impl machine::machine_service_server::MachineService for Nothing {}

/// Polls a future that must finish without waiting (the default stubs never wait).
fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("future did not complete at once"),
    }
}

#[test]
fn unimplemented_rpcs_answer_unimplemented() {
    use machine::machine_service_server::MachineService as _;
    let status = now(Nothing.version(tonic::Request::new(()))).expect_err("no implementation");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let status = match now(Nothing.logs(tonic::Request::new(machine::LogsRequest::default()))) {
        Ok(_) => panic!("streaming default stub must fail"),
        Err(status) => status,
    };
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    // The server wrapper builds for a stub implementation.
    let _server = machine::machine_service_server::MachineServiceServer::new(Nothing);
}

#[test]
fn every_service_has_client_and_server() {
    // Compile-time check: the client and server types exist for every service.
    use tonic::transport::Channel;
    fn _types(
        _: machine::machine_service_client::MachineServiceClient<Channel>,
        _: talos::api::storage::storage_service_client::StorageServiceClient<Channel>,
        _: talos::api::time::time_service_client::TimeServiceClient<Channel>,
        _: talos::api::cluster::cluster_service_client::ClusterServiceClient<Channel>,
        _: talos::api::inspect::inspect_service_client::InspectServiceClient<Channel>,
        _: talos::api::securityapi::security_service_client::SecurityServiceClient<Channel>,
        _: talos::api::cosi::resource::state_client::StateClient<Channel>,
    ) {
    }
    struct S;
    impl talos::api::storage::storage_service_server::StorageService for S {}
    impl talos::api::time::time_service_server::TimeService for S {}
    impl talos::api::cluster::cluster_service_server::ClusterService for S {}
    impl talos::api::inspect::inspect_service_server::InspectService for S {}
    impl talos::api::securityapi::security_service_server::SecurityService for S {}
    impl talos::api::cosi::resource::state_server::State for S {}
    let _ = talos::api::cosi::resource::state_server::StateServer::new(S);
    let _ = talos::api::cosi::resource::meta::NamespaceSpec::default();
}
