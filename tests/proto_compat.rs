//! Wire compatibility of our API protos with Talos v1.7.0, without protoc or ../shared.
//!
//! `testdata/api/contract.txt` lists every RPC signature, message, field (number, label, type)
//! and enum value of the packages src/api covers, as extracted once from Talos's descriptor set
//! and cosi-project/runtime v0.4.1 by `ci/gen-api-contract`. Here we render our compiled
//! descriptor set (`talos::api::FILE_DESCRIPTOR_SET`) in the same format and require both to
//! be the same set of facts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::collections::BTreeSet;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};

const CONTRACT: &str = include_str!("../testdata/api/contract.txt");

/// Packages whose facts the contract holds (the Google well-known types are not ours).
fn covered(package: &str) -> bool {
    !package.starts_with("google.protobuf")
}

fn enum_facts(out: &mut Vec<String>, full: &str, e: &EnumDescriptorProto) {
    out.push(format!("enum {full}"));
    for v in &e.value {
        out.push(format!("value {full}.{} = {}", v.name(), v.number()));
    }
}

fn field_type(f: &FieldDescriptorProto) -> String {
    let type_name = f.type_name().trim_start_matches('.');
    match f.r#type() {
        Type::Message => format!("message {type_name}"),
        Type::Enum => format!("enum {type_name}"),
        other => other
            .as_str_name()
            .trim_start_matches("TYPE_")
            .to_lowercase(),
    }
}

fn field_label(f: &FieldDescriptorProto) -> &'static str {
    if f.proto3_optional() {
        "proto3_optional"
    } else if f.label() == Label::Repeated {
        "repeated"
    } else {
        "optional"
    }
}

fn message_facts(out: &mut Vec<String>, full: &str, m: &DescriptorProto) {
    let map_entry = m.options.as_ref().is_some_and(|o| o.map_entry());
    out.push(format!(
        "message {full}{}",
        if map_entry { " map_entry" } else { "" }
    ));
    for f in &m.field {
        out.push(format!(
            "field {full}.{} = {} {} {}",
            f.name(),
            f.number(),
            field_label(f),
            field_type(f)
        ));
    }
    for e in &m.enum_type {
        enum_facts(out, &format!("{full}.{}", e.name()), e);
    }
    for n in &m.nested_type {
        message_facts(out, &format!("{full}.{}", n.name()), n);
    }
}

fn our_facts() -> Vec<String> {
    let fds = FileDescriptorSet::decode(talos::api::FILE_DESCRIPTOR_SET)
        .expect("FILE_DESCRIPTOR_SET decodes");
    let mut out = Vec::new();
    for file in fds.file.iter().filter(|f| covered(f.package())) {
        let pkg = file.package();
        for s in &file.service {
            for m in &s.method {
                let stream = |yes: bool| if yes { "stream " } else { "" };
                out.push(format!(
                    "rpc {pkg}.{}/{} {}{} -> {}{}",
                    s.name(),
                    m.name(),
                    stream(m.client_streaming()),
                    m.input_type().trim_start_matches('.'),
                    stream(m.server_streaming()),
                    m.output_type().trim_start_matches('.'),
                ));
            }
        }
        for e in &file.enum_type {
            enum_facts(&mut out, &format!("{pkg}.{}", e.name()), e);
        }
        for m in &file.message_type {
            message_facts(&mut out, &format!("{pkg}.{}", m.name()), m);
        }
    }
    out
}

fn contract_facts() -> Vec<String> {
    CONTRACT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn descriptor_set_matches_the_talos_contract() {
    let ours: BTreeSet<String> = our_facts().into_iter().collect();
    let theirs: BTreeSet<String> = contract_facts().into_iter().collect();
    let missing: Vec<_> = theirs.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&theirs).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "our protos differ from testdata/api/contract.txt\nmissing from ours:\n  {}\nnot in the contract:\n  {}",
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  "),
        extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  "),
    );
}

#[test]
fn no_duplicate_facts() {
    // A duplicate would hide a mistake in the set comparison above.
    for (name, facts) in [("ours", our_facts()), ("contract", contract_facts())] {
        let unique: BTreeSet<_> = facts.iter().collect();
        assert_eq!(unique.len(), facts.len(), "{name} has duplicate lines");
    }
}

#[test]
fn contract_covers_every_service() {
    let facts = contract_facts();
    let count = |prefix: &str| {
        facts
            .iter()
            .filter(|l| l.starts_with(&format!("rpc {prefix}/")))
            .count()
    };
    assert_eq!(count("machine.MachineService"), 51);
    assert_eq!(count("storage.StorageService"), 1);
    assert_eq!(count("time.TimeService"), 2);
    assert_eq!(count("cluster.ClusterService"), 1);
    assert_eq!(count("inspect.InspectService"), 1);
    assert_eq!(count("securityapi.SecurityService"), 1);
    assert_eq!(count("cosi.resource.State"), 6);
    for service in talos::api::SERVICE_NAMES {
        assert!(count(service) > 0, "{service} is not in the contract");
    }
}
