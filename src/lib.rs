//! The talos-rs machinery library: everything the applets share.
//!
//! No `main()` and no global state live here. Each module owns one concept:
//!
//! | module | what |
//! |---|---|
//! | **models** (node and workstation) | |
//! | [`config`] | machine config documents: types, validation (with the runtime [`config::Mode`]), patches, generation |
//! | [`secrets`] | secrets bundle and PKI (CAs, certificates, keys, CSRs) |
//! | [`resources`] | typed, versioned, watchable resources (COSI) and their controllers' runtime |
//! | [`api`] | the Talos 1.7 gRPC API (generated) |
//! | [`constants`] | node paths, sockets, ports, user ids (Talos's `pkg/machinery/constants`) |
//! | [`yaml`] | YAML output byte-identical to Talos's |
//! | [`errors`] | the one error-chain printer (stderr, kernel log, `tonic::Status`) and gRPC codes |
//! | [`version`] | build-time version facts |
//! | **node side** | |
//! | [`sys`] | thin syscall and kernel-interface wrappers; the only `unsafe` |
//! | [`platform`] | where a node runs (container, metal) and where its config comes from |
//! | [`net`] | networking mechanism for networkd (DHCP, resources); netlink only in [`net::rtnl`] |
//! | [`auth`] | TLS settings, roles and the RBAC table, the PKI directory layout, the TLS accept loop |
//! | [`proxy`] | apid's byte-level gRPC proxy |
//! | [`events`], [`logbuf`], [`log`] | the event bus, per-service log buffers, the one `tracing` set-up |
//! | [`rootfs`], [`fsutil`] | the node root skeleton; atomic file output |
//! | **workstation side** | |
//! | [`client`] | talosconfig, mTLS channels, node fan-out, the trustd client |
//! | [`provision`] | local clusters (`talosctl cluster`): namespace nodes |

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod constants;
pub mod duration;
pub mod errors;
pub mod events;
pub mod fsutil;
pub mod k8s;
pub mod log;
pub mod logbuf;
pub mod net;
pub mod platform;
pub mod provision;
pub mod proxy;
pub mod resources;
pub mod rootfs;
pub mod secrets;
// The one home of `unsafe` (Cargo.toml denies it everywhere else): thin syscall wrappers,
// each block with its `// SAFETY:` argument.
#[allow(unsafe_code)]
pub mod sys;
pub mod version;
pub mod yaml;
