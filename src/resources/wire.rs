//! Conversion between stored resources and the `cosi.resource` protobuf messages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::meta::{Metadata, Phase, Resource, Spec};
use super::state::{Event, EventKind, StateError};
use crate::api::cosi::resource as pb;

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => prost_types::Timestamp {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        },
        Err(_) => prost_types::Timestamp::default(),
    }
}

fn system_time(ts: Option<&prost_types::Timestamp>) -> SystemTime {
    match ts {
        Some(ts) if ts.seconds >= 0 => {
            UNIX_EPOCH
                + Duration::new(
                    u64::try_from(ts.seconds).unwrap_or(0),
                    u32::try_from(ts.nanos).unwrap_or(0),
                )
        }
        _ => SystemTime::now(),
    }
}

/// The wire form of metadata.
pub fn metadata_to_proto(md: &Metadata) -> pb::Metadata {
    pb::Metadata {
        namespace: md.namespace.clone(),
        r#type: md.resource_type.clone(),
        id: md.id.clone(),
        version: md.version_string(),
        owner: md.owner.clone(),
        phase: md.phase.as_str().to_string(),
        created: Some(timestamp(md.created)),
        updated: Some(timestamp(md.updated)),
        finalizers: md.finalizers.clone(),
        annotations: md
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        labels: md
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The wire form of a resource (both spec forms; a typed spec is serialized here, once).
pub fn to_proto(r: &Resource) -> Result<pb::Resource, StateError> {
    Ok(pb::Resource {
        metadata: Some(metadata_to_proto(&r.metadata)),
        spec: Some(pb::Spec {
            proto_spec: r.spec.proto()?.to_vec(),
            yaml_spec: r.spec.yaml()?.to_string(),
        }),
    })
}

/// A resource from the wire (what a client sends to Create/Update). The version is the one
/// the client read (`undefined`/empty: 0).
pub fn from_proto(r: &pb::Resource) -> Result<Resource, StateError> {
    let md = r
        .metadata
        .as_ref()
        .ok_or_else(|| StateError::Spec("resource without metadata".to_string()))?;
    let version = match md.version.as_str() {
        "" | "undefined" => 0,
        v => v
            .parse::<u64>()
            .map_err(|_| StateError::Spec(format!("invalid resource version {v:?}")))?,
    };
    let phase = Phase::parse(&md.phase)
        .ok_or_else(|| StateError::Spec(format!("invalid resource phase {:?}", md.phase)))?;
    let spec = r.spec.clone().unwrap_or_default();
    Ok(Resource {
        metadata: Metadata {
            namespace: md.namespace.clone(),
            resource_type: md.r#type.clone(),
            id: md.id.clone(),
            version,
            owner: md.owner.clone(),
            phase,
            created: system_time(md.created.as_ref()),
            updated: system_time(md.updated.as_ref()),
            labels: md
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            annotations: md
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            finalizers: md.finalizers.clone(),
        },
        spec: Spec::new(spec.yaml_spec, spec.proto_spec),
    })
}

/// The wire event type.
pub fn event_type(kind: EventKind) -> pb::EventType {
    match kind {
        EventKind::Created => pb::EventType::Created,
        EventKind::Updated => pb::EventType::Updated,
        EventKind::Destroyed => pb::EventType::Destroyed,
        EventKind::Bootstrapped => pb::EventType::Bootstrapped,
        EventKind::Errored => pb::EventType::Errored,
    }
}

/// The wire form of a watch event.
pub fn event_to_proto(e: &Event) -> Result<pb::Event, StateError> {
    Ok(pb::Event {
        resource: e.resource.as_deref().map(to_proto).transpose()?,
        old: e.old.as_deref().map(to_proto).transpose()?,
        error: e.error.clone(),
        event_type: event_type(e.kind) as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut md = Metadata::new("network", "HostnameStatuses.net.talos.dev", "hostname");
        md.version = 7;
        md.owner = "network.HostnameStatusController".into();
        md.phase = Phase::TearingDown;
        md.labels.insert("a".into(), "b".into());
        md.finalizers.push("f".into());
        md.created = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        md.updated = md.created;
        let r = Resource {
            metadata: md,
            spec: Spec::new("hostname: x\n", vec![1, 2]),
        };
        let wire = to_proto(&r).unwrap();
        let m = wire.metadata.as_ref().unwrap();
        assert_eq!(m.version, "7");
        assert_eq!(m.phase, "tearingDown");
        assert_eq!(m.created.as_ref().unwrap().seconds, 1_700_000_000);
        assert_eq!(from_proto(&wire).unwrap(), r);
        let mut bad = wire.clone();
        bad.metadata.as_mut().unwrap().version = "x".into();
        assert!(from_proto(&bad).is_err());
        let mut fresh = wire;
        fresh.metadata.as_mut().unwrap().version = "undefined".into();
        assert_eq!(from_proto(&fresh).unwrap().metadata.version, 0);
    }
}
