//! Client side of the Talos API: talosconfig, channels, node fan-out.

pub mod connect;
pub mod health;
pub mod resources;
pub mod talosconfig;
pub mod trustd;
