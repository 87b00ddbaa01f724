//! The security layer of the Talos API, independent of the generated gRPC code.
//!
//! - [`role`]: Talos roles (`os:admin`, `os:reader`, ...) and role sets, as carried in the
//!   Organization of client certificates and in the `talos-role` gRPC metadata.
//! - [`rules`]: which roles may call which gRPC method (Talos 1.7's table), how roles are
//!   injected for a peer, and what the maintenance-mode API allows.
//! - [`pki_dir`]: the PKI directory machined writes for apid and trustd (which file holds what).
//! - [`tls`]: rustls configurations for apid (mTLS), trustd and maintenance (server-only TLS),
//!   talosctl (mTLS, or `--insecure` with optional SPKI fingerprint pinning), and the per-boot
//!   self-signed maintenance certificate.
//! - [`serve`]: the TLS accept loop of apid, trustd and maintenance mode, with the peer's
//!   address and certificate per connection.

pub mod pki_dir;
pub mod role;
pub mod rules;
pub mod serve;
pub mod tls;

pub use pki_dir::PkiDir;
pub use role::{Role, RoleSet};
pub use rules::{allowed, maintenance_allowed, Denied, MaintenanceDecision};
