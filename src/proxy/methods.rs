//! Which gRPC methods stream, read from the API's compiled descriptors.
//!
//! The proxy never decodes requests or replies, but it must know the shape of a call to merge
//! the replies of several nodes: a unary reply is one `XResponse` whose elements are
//! concatenated, a streamed reply is a sequence of messages that are interleaved. The flags come
//! from [`crate::api::FILE_DESCRIPTOR_SET`], so a method added to the protos needs no code here.
//! Methods the descriptors do not know follow Talos's convention: a name ending in `Stream`
//! streams.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message as _;

/// The streaming shape of one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MethodKind {
    /// The client sends a stream of messages (e.g. `EtcdRecover`).
    pub client_streaming: bool,
    /// The server answers with a stream of messages (e.g. `Logs`).
    pub server_streaming: bool,
}

fn table() -> &'static HashMap<String, MethodKind> {
    static TABLE: OnceLock<HashMap<String, MethodKind>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = HashMap::new();
        // The descriptor set is compiled into the binary by build.rs; if it could not be decoded
        // every method falls back to the naming rule (and the unit tests fail).
        let Ok(set) = prost_types::FileDescriptorSet::decode(crate::api::FILE_DESCRIPTOR_SET)
        else {
            return map;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let service_name = service.name.unwrap_or_default();
                let full_service = if package.is_empty() {
                    service_name
                } else {
                    format!("{package}.{service_name}")
                };
                for method in service.method {
                    let path = format!("/{full_service}/{}", method.name.unwrap_or_default());
                    map.insert(
                        path,
                        MethodKind {
                            client_streaming: method.client_streaming.unwrap_or(false),
                            server_streaming: method.server_streaming.unwrap_or(false),
                        },
                    );
                }
            }
        }
        map
    })
}

/// The shape of the method at full path `path` (`/machine.MachineService/Logs`), or `None` if
/// the API descriptors do not have it.
pub fn known(path: &str) -> Option<MethodKind> {
    table().get(path).copied()
}

/// The shape of `path`: from the descriptors, else server-streaming when the method name ends
/// in `Stream` (Talos's rule for methods it does not list), else unary.
pub fn kind(path: &str) -> MethodKind {
    known(path).unwrap_or_else(|| MethodKind {
        client_streaming: false,
        server_streaming: path.ends_with("Stream"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talos_streamed_methods_are_server_streaming() {
        for m in [
            "Copy",
            "DiskUsage",
            "Dmesg",
            "EtcdSnapshot",
            "Events",
            "ImageList",
            "Kubeconfig",
            "List",
            "Logs",
            "PacketCapture",
            "Read",
        ] {
            let path = format!("/machine.MachineService/{m}");
            let k = known(&path).unwrap_or_else(|| panic!("{path} missing"));
            assert!(k.server_streaming, "{path}");
            assert!(!k.client_streaming, "{path}");
        }
        assert!(kind("/cluster.ClusterService/HealthCheck").server_streaming);
        assert!(kind("/cosi.resource.State/Watch").server_streaming);
        assert!(kind("/cosi.resource.State/List").server_streaming);
    }

    #[test]
    fn unary_and_client_streaming() {
        for m in [
            "Version",
            "Hostname",
            "Memory",
            "Reboot",
            "ApplyConfiguration",
        ] {
            let path = format!("/machine.MachineService/{m}");
            assert_eq!(known(&path), Some(MethodKind::default()), "{path}");
        }
        assert_eq!(
            known("/machine.MachineService/EtcdRecover"),
            Some(MethodKind {
                client_streaming: true,
                server_streaming: false
            })
        );
        assert_eq!(kind("/time.TimeService/Time"), MethodKind::default());
        assert!(known("/securityapi.SecurityService/Certificate").is_some());
    }

    #[test]
    fn unknown_methods_follow_the_naming_rule() {
        assert_eq!(known("/machine.MachineService/FutureStream"), None);
        assert!(kind("/machine.MachineService/FutureStream").server_streaming);
        assert_eq!(kind("/foo.Bar/Baz"), MethodKind::default());
    }
}
