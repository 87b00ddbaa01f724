//! Build script: compiles the Talos API `.proto` files in `src/api/proto` into Rust.
//!
//! Hermetic: the protos are parsed by `protox` (a protobuf compiler written in Rust, which also
//! ships the Google well-known types), so no system `protoc` is needed. `tonic-prost-build` then
//! writes one prost/tonic module per proto package into `OUT_DIR` (`machine.rs`, `common.rs`,
//! `cosi.resource.rs`, ...), which `src/api/mod.rs` includes. We also write the compiled
//! descriptor set (`talos_api.descriptors`, without comments) for gRPC reflection and the
//! contract test.

use std::error::Error;
use std::path::{Path, PathBuf};

use protox::prost::Message as _;

/// Where the `.proto` files live, relative to the crate root; also the import root.
const PROTO_ROOT: &str = "src/api/proto";

/// Every file to compile, relative to `PROTO_ROOT`.
const PROTOS: &[&str] = &[
    "google/rpc/status.proto",
    "common/common.proto",
    "machine/machine.proto",
    "storage/storage.proto",
    "time/time.proto",
    "cluster/cluster.proto",
    "inspect/inspect.proto",
    "security/security.proto",
    "cosi/resource.proto",
    "cosi/state.proto",
    "cosi/meta.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    // A directory path makes cargo rerun us when any file below it changes.
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed=build.rs");

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    // Source info carries our proto comments into rustdoc; imports let reflection resolve
    // the google.protobuf types.
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(PROTOS)?;
    let fds = compiler.file_descriptor_set();

    write_descriptor_set(&out_dir.join("talos_api.descriptors"), fds.clone())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Servers implement only what they support; the rest answers UNIMPLEMENTED.
        .generate_default_stubs(true)
        .emit_rerun_if_changed(false)
        .out_dir(&out_dir)
        .compile_fds(fds)?;
    Ok(())
}

/// Writes `fds` without source info (comments and spans are not needed at run time).
fn write_descriptor_set(
    path: &Path,
    mut fds: protox::prost_reflect::prost_types::FileDescriptorSet,
) -> Result<(), Box<dyn Error>> {
    for file in &mut fds.file {
        file.source_code_info = None;
    }
    std::fs::write(path, fds.encode_to_vec())?;
    Ok(())
}
