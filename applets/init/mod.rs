//! The `init` applet. Not built yet: see the issue that delivers it.

use std::ffi::OsString;
use std::process::ExitCode;

/// Entry point of the `init` applet.
pub fn main(_args: Vec<OsString>) -> ExitCode {
    eprintln!("init: not available in this build yet");
    ExitCode::from(1)
}
