//! The container platform provisioner behind `talosctl cluster create|show|destroy`.
//!
//! A cluster is: a state directory (`~/.talos/clusters/NAME`, see [`state`]), a private network
//! namespace with a bridge holding the gateway address ([`net`]), and one node per process tree,
//! each started as PID 1 of fresh pid/mount/uts/ipc/net/cgroup namespaces on a read-only copy of
//! the node root ([`node`]). A detached launcher process ([`launcher`]) owns the nodes, restarts
//! them as their exit codes ask, and publishes the control planes' API ports on 127.0.0.1.
//! [`destroy`] tears everything down from the state file alone, so it works after any crash.

pub mod cgroup;
pub mod launcher;
pub mod net;
pub mod node;
pub mod plan;
pub mod state;

use std::path::PathBuf;

use crate::errors::chain;

pub use plan::{plan_nodes, Cidr};
pub use state::{ClusterState, NetworkState, NodeState, NodeType};

/// Errors of the provisioner; each says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A request value is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The state file could not be read or written.
    #[error("cluster state {path}: {what}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// A file-system operation failed.
    #[error("{what}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A netlink request failed (the error says which).
    #[error(transparent)]
    Netlink(#[from] crate::net::rtnl::NetlinkError),
    /// A link the network set-up needs is missing.
    #[error("no link named {0}")]
    NoSuchLink(String),
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    /// The node root could not be written.
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
}

impl ProvisionError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProvisionError {
        let what = what.into();
        move |source| ProvisionError::Io { what, source }
    }
}

/// Every step of a teardown that failed; the rest were still attempted.
#[derive(Debug, Default)]
pub struct DestroyReport {
    /// One line per failed step.
    pub errors: Vec<String>,
}

/// Stops everything the cluster in `state` runs and removes its network, cgroups and its state
/// directory (kept when a step failed, unless `force`). Idempotent: missing pieces are skipped. Works without the
/// launcher: nodes are killed by recorded pid and by cgroup. Progress lines go to `log`.
pub fn destroy(state: &ClusterState, force: bool, log: &mut dyn FnMut(&str)) -> DestroyReport {
    let mut report = DestroyReport::default();
    // 1. The launcher stops its nodes gracefully on SIGTERM (its own grace period is 30 s).
    if let Some(pid) = state.launcher_pid {
        if launcher::is_launcher(pid, &state.state_dir) {
            launcher::terminate(pid, std::time::Duration::from_secs(45));
        }
    }
    // 2. Whatever is left (launcher crashed or hung): kill by cgroup and recorded pid.
    for n in &state.nodes {
        log(&format!("destroying node {}", n.name));
        if let Err(e) = node::kill_node(n) {
            report
                .errors
                .push(format!("node {}: {}", n.name, chain(&e)));
        }
    }
    // 3. The network: veths, bridge, namespace.
    log(&format!("destroying network {}", state.network.name));
    let veths: Vec<String> = state.nodes.iter().map(|n| n.veth.clone()).collect();
    if let Err(e) = net::destroy_network(&state.network, &veths) {
        report
            .errors
            .push(format!("network {}: {}", state.network.name, chain(&e)));
    }
    // 4. cgroups (now empty).
    for n in &state.nodes {
        for dir in &n.cgroups {
            if let Err(e) = cgroup::remove_tree(dir) {
                report
                    .errors
                    .push(format!("cgroup {}: {}", dir.display(), chain(&e)));
            }
        }
    }
    if let Some(parent) = cgroup::cluster_parents(state) {
        for dir in parent {
            let _ = std::fs::remove_dir(dir);
        }
    }
    // 5. The state directory.
    if report.errors.is_empty() || force {
        match std::fs::remove_dir_all(&state.state_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => report
                .errors
                .push(format!("removing {}: {e}", state.state_dir.display())),
        }
    }
    report
}
