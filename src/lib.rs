//! The talos-rs machinery library: everything the applets share.
//!
//! No `main()` and no global state live here. Each module owns one concept:
//! machine config (`config`), PKI and the secrets bundle (`secrets`), the
//! client side of the API (`client`), atomic file output (`fsutil`), and thin
//! syscall wrappers (`sys`).

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod constants;
pub mod duration;
pub mod errors;
pub mod events;
pub mod fsutil;
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
