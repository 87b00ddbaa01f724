//! The `networkd` applet. Not built yet: see the issue that delivers it.

use std::ffi::OsString;
use std::process::ExitCode;

/// Entry point of the `networkd` applet.
pub fn main(_args: Vec<OsString>) -> ExitCode {
    eprintln!("networkd: not available in this build yet");
    ExitCode::from(1)
}
