//! Validation of a machine config for a platform mode, following Talos 1.7's rules (as run by
//! `talosctl validate`, i.e. without probing local disks). All problems are collected; each names
//! the key path it is about. With `strict`, warnings are reported as errors.
//!
//! The checks are split by config section (`machine`, `cluster`, `network`, `install`, and the
//! typed `documents`); [`Config::validate`] runs them in one fixed order, which is the order of
//! the error list.

mod cluster;
mod documents;
mod install;
mod machine;
mod network;
pub(crate) mod syntax;

use std::fmt;

use super::v1alpha1::V1Alpha1Config;
use super::{Config, Mode};

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Key path the problem is about (`machine.install.disk`), or empty for the whole config.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A non-fatal finding (same shape as an error).
pub type Warning = ValidationError;

/// All errors found, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} {} occurred:",
            if n == 1 { "error" } else { "errors" }
        )?;
        for e in &self.0 {
            writeln!(f, "\t* {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

#[derive(Default)]
struct Report {
    errors: Vec<ValidationError>,
    warnings: Vec<Warning>,
}

impl Report {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Validates the config for `mode`. Returns the warnings, or every error found.
    pub fn validate(&self, mode: Mode, strict: bool) -> Result<Vec<Warning>, ValidationErrors> {
        let mut r = Report::default();
        match self.v1alpha1() {
            Some(v) => validate_v1alpha1(v, mode, &mut r),
            None => r.err(
                "",
                "the config has no v1alpha1 document (machine instructions are required)",
            ),
        }
        for (i, doc) in self.documents().iter().enumerate() {
            documents::validate_document(doc, i + 1, &mut r);
        }
        if strict {
            for w in r.warnings.drain(..) {
                r.errors.push(ValidationError {
                    path: w.path,
                    message: format!("warning: {}", w.message),
                });
            }
        }
        if r.errors.is_empty() {
            Ok(r.warnings)
        } else {
            Err(ValidationErrors(r.errors))
        }
    }
}

/// The v1alpha1 document, section by section.
fn validate_v1alpha1(c: &V1Alpha1Config, mode: Mode, r: &mut Report) {
    if c.version != "v1alpha1" {
        r.err(
            "version",
            format!(
                "invalid config version {:?} (expected \"v1alpha1\")",
                c.version
            ),
        );
    }
    let Some(m) = &c.machine else {
        r.err("machine", "machine instructions are required");
        return;
    };
    let machine_type = machine::machine_type(m, r);
    let is_cp = machine_type == Some(true);

    cluster::validate_cluster(c.cluster.as_ref(), is_cp, r);
    install::check_required(m, mode, r);
    machine::check_container_features(m, mode, r);
    match machine_type {
        Some(true) => cluster::validate_cni(c.cluster.as_ref(), r),
        Some(false) => {
            network::check_no_vips(m, r);
            machine::check_no_ca_key(m, r);
        }
        None => machine::unknown_type(m, r),
    }
    machine::validate_machine_secrets(m, is_cp, r);
    network::validate_network(m, r);
    install::check_disks(m, r);
    machine::check_kubelet(m, r);
    machine::check_disk_encryption(m, r);
    network::check_kubespan(m, c.cluster.as_ref(), r);
    machine::check_logging(m, r);
    install::check_extensions(m, r);
    machine::check_node_labels(m, r);
    machine::check_node_taints(m, r);
    machine::check_talos_api_access(m, is_cp, r);
    if c.persist == Some(false) {
        r.err("persist", "persist should be enabled");
    }
    machine::check_files(m, r);
}
