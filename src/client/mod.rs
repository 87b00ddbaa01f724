//! Client side of the Talos API: talosconfig, channels, node fan-out.

pub mod talosconfig;
pub mod connect;
