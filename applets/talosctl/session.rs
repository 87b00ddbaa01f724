//! Connecting API commands to the Talos API, as talosctl's global client helpers do:
//! the talosconfig context (or the global overrides) gives endpoints, credentials and nodes;
//! `--insecure` dials the nodes directly with the maintenance-mode TLS settings.

use anyhow::Context as _;
use talos::api::common::Metadata;
use talos::client::connect::{self, Client, Credentials};
use talos::client::talosconfig;

use super::Global;

/// Returned after the command already printed its per-node errors: exit 1, print nothing.
pub use crate::edge::AlreadyReported;

/// A connected client plus the nodes to target.
pub struct Session {
    /// The connection.
    pub client: Client,
    /// Nodes for the `nodes` metadata; empty in insecure mode.
    pub nodes: Vec<String>,
}

/// A current-thread tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

const NO_NODES: &str = "nodes are not set for the command: please use `--nodes` flag or configuration file to set the nodes to run the command against";

impl Session {
    /// Opens a session: insecure (maintenance) when `insecure` is given, with its certificate
    /// fingerprints, else mutual TLS from the talosconfig.
    pub async fn open(global: &Global, insecure: Option<&[String]>) -> anyhow::Result<Session> {
        match insecure {
            Some(fingerprints) => Session::open_insecure(global, fingerprints).await,
            None => Session::open_secure(global).await,
        }
    }

    /// Maintenance mode: the `-n` nodes are the endpoints; no node metadata.
    pub async fn open_insecure(
        global: &Global,
        fingerprints: &[String],
    ) -> anyhow::Result<Session> {
        if global.nodes.is_empty() {
            anyhow::bail!(
                "nodes are not set for the command: with --insecure, pass the node addresses with --nodes"
            );
        }
        let targets = connect::parse_endpoints(&global.nodes)?;
        let creds = Credentials::insecure(fingerprints)?;
        let client = Client::connect(targets, &creds).await?;
        Ok(Session {
            client,
            nodes: Vec::new(),
        })
    }

    async fn open_secure(global: &Global) -> anyhow::Result<Session> {
        let explicit = global.talosconfig.as_deref();
        let (config, location) = talosconfig::open(explicit).with_context(|| {
            format!(
                "failed to open config file {:?}",
                explicit
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        })?;
        let path = location.path.display();
        let name = global
            .context
            .clone()
            .unwrap_or_else(|| config.context.clone());
        if name.is_empty() {
            anyhow::bail!(
                "no context is set in talosconfig {path}: create one with `talosctl gen config` and pass it with --talosconfig, or select one with `talosctl config context <name>`"
            );
        }
        let context = config.contexts.get(&name).ok_or_else(|| {
            anyhow::anyhow!(
                "context {name:?} is not defined in talosconfig {path} (see `talosctl config contexts`)"
            )
        })?;
        let endpoints = if global.endpoints.is_empty() {
            &context.endpoints
        } else {
            &global.endpoints
        };
        if endpoints.is_empty() {
            anyhow::bail!(
                "no endpoints set for context {name:?} in talosconfig {path}: use the --endpoints flag, or `talosctl config endpoint <ip>...`"
            );
        }
        let targets = connect::parse_endpoints(endpoints)?;
        let nodes = if global.nodes.is_empty() {
            context.nodes.clone()
        } else {
            global.nodes.clone()
        };
        if nodes.is_empty() {
            anyhow::bail!(NO_NODES);
        }
        let creds = Credentials::from_context(context)
            .with_context(|| format!("context {name:?} of talosconfig {path}"))?;
        let client = Client::connect(targets, &creds).await?;
        Ok(Session { client, nodes })
    }

    /// A request carrying the `nodes` metadata.
    pub fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let req = tonic::Request::new(message);
        if self.nodes.is_empty() {
            return Ok(req);
        }
        Ok(connect::with_nodes(req, &self.nodes)?)
    }

    /// The node a reply came from: its metadata hostname, else the endpoint's address.
    pub fn node_of(&self, md: Option<&Metadata>) -> String {
        match md {
            Some(m) if !m.hostname.is_empty() => m.hostname.clone(),
            _ => self.client.peer_host(),
        }
    }

    /// Fails with a talosctl-like message when more than one node is targeted.
    pub fn single_node(&self, command: &str) -> anyhow::Result<()> {
        if self.nodes.len() > 1 {
            anyhow::bail!("command {command:?} is not supported with multiple nodes");
        }
        Ok(())
    }
}

/// Talos's rendering of a gRPC status (`rpc error: code = X desc = Y`).
pub fn status_text(s: &tonic::Status) -> String {
    format!("rpc error: code = {:?} desc = {}", s.code(), s.message())
}

/// Turns a failed call into `<what>: rpc error: ...`.
pub fn call_error(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", status_text(&s))
}

/// Collects per-node errors of a one-to-many reply and prints them to stderr.
#[derive(Debug, Default)]
pub struct NodeErrors {
    count: usize,
}

impl NodeErrors {
    /// Records an error when the metadata carries one; `true` when it did (skip the message).
    pub fn check(&mut self, session: &Session, md: Option<&Metadata>) -> bool {
        match md {
            Some(m) if !m.error.is_empty() => {
                self.report(&session.node_of(md), &m.error);
                true
            }
            _ => false,
        }
    }

    /// Prints `error: <node>: <message>` and counts it.
    pub fn report(&mut self, node: &str, message: &str) {
        eprintln!("error: {node}: {message}");
        self.count += 1;
    }

    /// `Err(AlreadyReported)` when any node failed.
    pub fn finish(self) -> anyhow::Result<()> {
        if self.count > 0 {
            return Err(AlreadyReported.into());
        }
        Ok(())
    }
}

/// Splits the messages of a unary reply into the good ones, reporting the failed ones.
pub fn partition<T>(
    session: &Session,
    errors: &mut NodeErrors,
    messages: Vec<T>,
    metadata: impl Fn(&T) -> Option<&Metadata>,
) -> Vec<T> {
    messages
        .into_iter()
        .filter(|m| !errors.check(session, metadata(m)))
        .collect()
}
