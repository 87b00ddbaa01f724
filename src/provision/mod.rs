//! The container platform provisioner behind `talosctl cluster create|show|destroy`.
