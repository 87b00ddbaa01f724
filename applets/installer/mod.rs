//! The `installer` applet. Not built yet: see the issue that delivers it.

use std::ffi::OsString;
use std::process::ExitCode;

use crate::edge::{self, Errors};

/// installer: installs the OS to a disk.
#[derive(Debug, clap::Parser)]
#[command(name = "installer", version = talos::version::TALOS_VERSION)]
struct Cli {}

/// Entry point of the `installer` applet.
pub fn main(args: Vec<OsString>) -> ExitCode {
    edge::main(
        args,
        Errors::Named("installer"),
        edge::no_logging,
        |_: Cli| -> anyhow::Result<()> { anyhow::bail!("not available in this build yet") },
    )
}
