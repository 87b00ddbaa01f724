//! The Talos 1.7 gRPC API, wire-compatible with Talos.
//!
//! The contract lives in our own `.proto` files under `src/api/proto/` (one folder per proto
//! package); `build.rs` compiles them with protox into prost messages plus tonic clients and
//! servers. Each proto package becomes a module here with the same name:
//!
//! | module | proto package | services |
//! |---|---|---|
//! | [`common`] | `common` | (shared types: `Metadata`, `Data`, `EmptyResponse`, ...) |
//! | [`machine`] | `machine` | `MachineService` (51 RPCs, machined) |
//! | [`storage`] | `storage` | `StorageService` |
//! | [`time`] | `time` | `TimeService` |
//! | [`cluster`] | `cluster` | `ClusterService` |
//! | [`inspect`] | `inspect` | `InspectService` |
//! | [`securityapi`] | `securityapi` | `SecurityService` (trustd) |
//! | [`cosi::resource`] | `cosi.resource` | `State` (resources: get, list, watch) |
//! | [`google::rpc`] | `google.rpc` | (`Status`, embedded in `common.Metadata`) |
//!
//! Clients are in `<service>_client` modules (e.g. `machine::machine_service_client`), servers
//! in `<service>_server` modules. Every server trait method has a default body that answers
//! `UNIMPLEMENTED`, so a server implements only the RPCs it supports; server-streaming methods
//! then return `tonic::codegen::BoxStream<T>` (a boxed stream).
//!
//! [`FILE_DESCRIPTOR_SET`] is the compiled descriptor set of all these files (with the Google
//! well-known types they import), for gRPC reflection and contract tests.
//!
//! Compatibility is checked twice: `tests/proto_compat.rs` compares the descriptor set with
//! `testdata/api/contract.txt` (extracted from Talos v1.7.0 and cosi-project/runtime v0.4.1 by
//! `ci/gen-api-contract`), and `ci/proto-compat` runs the shared proto-compat tool when
//! `../shared` is present.

/// Generated code may trip lints we keep for hand-written code; allow them only here.
macro_rules! generated_module {
    ($(#[$attr:meta])* $name:ident, $file:literal $(, $extra:item)*) => {
        $(#[$attr])*
        #[allow(
            clippy::all,
            clippy::pedantic,
            clippy::nursery,
            missing_docs,
            rustdoc::bare_urls,
            rustdoc::broken_intra_doc_links,
            rustdoc::invalid_html_tags
        )]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", $file));
            $($extra)*
        }
    };
}

generated_module!(
    /// Shared types: per-node reply metadata, data chunks, error codes, PEM and IP values.
    common,
    "common.rs"
);
generated_module!(
    /// `machine.MachineService`: node management (config, lifecycle, files, logs, etcd, stats).
    machine,
    "machine.rs"
);
generated_module!(
    /// `storage.StorageService`: disk inventory.
    storage,
    "storage.rs"
);
generated_module!(
    /// `time.TimeService`: node clock versus an NTP server.
    time,
    "time.rs"
);
generated_module!(
    /// `cluster.ClusterService`: server-side cluster health check.
    cluster,
    "cluster.rs"
);
generated_module!(
    /// `inspect.InspectService`: controller dependency graph.
    inspect,
    "inspect.rs"
);
generated_module!(
    /// `securityapi.SecurityService`: trustd's certificate signing.
    securityapi,
    "securityapi.rs"
);

/// COSI (the resource runtime Talos is built on).
pub mod cosi {
    generated_module!(
        /// `cosi.resource`: resources on the wire and the `State` service.
        resource,
        "cosi.resource.rs",
        generated_module!(
            /// `cosi.resource.meta`: specs of namespaces and resource definitions.
            meta,
            "cosi.resource.meta.rs"
        );
    );
}

/// Google types that are not well-known types (those come from `prost_types`).
pub mod google {
    generated_module!(
        /// `google.rpc`: the gRPC status message.
        rpc,
        "google.rpc.rs"
    );
}

/// The encoded `google.protobuf.FileDescriptorSet` of every API file (no source info).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/talos_api.descriptors"));

/// Fully qualified gRPC service names this module defines, as used in request paths
/// (`/<service>/<method>`).
pub const SERVICE_NAMES: &[&str] = &[
    "machine.MachineService",
    "storage.StorageService",
    "time.TimeService",
    "cluster.ClusterService",
    "inspect.InspectService",
    "securityapi.SecurityService",
    "cosi.resource.State",
];
