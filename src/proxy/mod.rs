//! apid's generic gRPC proxy: no per-method code.
//!
//! A call to any method path is authorized against the Talos rule table with the caller's
//! roles ([`crate::auth`]), then routed by its metadata ([`route`]): to this node's machined
//! over a unix socket, unchanged to one other node's apid (`node`), or to several nodes at once
//! (`nodes`), whose replies are merged with each node's hostname spliced into every element
//! ([`splice`]). Messages are never decoded ([`codec`]); only the method's streaming shape,
//! taken from the API descriptors ([`methods`]), decides how replies are merged.
//!
//! - [`server`]: the call handler ([`Proxy`]).
//! - [`listener`]: HTTP/2 serving of the TLS connections [`crate::auth::serve`] accepts, with
//!   per-connection peer identity.
//! - [`backend`]: channels to machined and to other nodes (mutual TLS).

pub mod backend;
pub mod codec;
pub mod listener;
pub mod methods;
pub mod route;
pub mod server;
pub mod splice;

pub use backend::Backends;
pub use listener::serve;
pub use route::{LocalAddresses, Route};
pub use server::{PeerInfo, Proxy, ProxyConfig, MAX_MESSAGE_SIZE};
