//! What every applet does at its edge: parse its command line with clap, set up logging to
//! stderr (a supervised service's stderr is its log buffer), and turn the outcome into an exit
//! code with the error's whole context chain on stderr.

use std::ffi::OsString;
use std::process::ExitCode;

use talos::errors::chain;

/// Exit code of a command-line usage error (clap's convention).
const EXIT_USAGE: u8 = 2;
/// Exit code of a failed run.
const EXIT_FAILURE: u8 = 1;

/// Parses `args`; on `--help`/`--version` or a usage error prints clap's message and returns
/// the exit code (0 or 2) to end with.
pub fn parse<C: clap::Parser>(args: Vec<OsString>) -> Result<C, ExitCode> {
    C::try_parse_from(args).map_err(|e| {
        let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
        let _ = e.print();
        ExitCode::from(code)
    })
}

/// Logging for a service applet: `RUST_LOG` or `info`, to stderr, with Talos's timestamps,
/// colour only on a terminal.
pub fn init_service_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_timer(talos::logbuf::TalosTime)
        .try_init();
}

/// Success, or the error (with its context chain) logged and printed as `applet: error`.
pub fn finish(applet: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", chain(e.as_ref()));
            eprintln!("{applet}: {}", chain(e.as_ref()));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[arg(long)]
        listen: String,
    }

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn parse_maps_help_and_usage_errors_to_exit_codes() {
        let cli: Cli = parse(args(&["x", "--listen", "0.0.0.0:1"])).expect("parses");
        assert_eq!(cli.listen, "0.0.0.0:1");
        let usage = parse::<Cli>(args(&["x", "--bogus"])).expect_err("usage error");
        assert_eq!(format!("{usage:?}"), format!("{:?}", ExitCode::from(2)));
        let help = parse::<Cli>(args(&["x", "--help"])).expect_err("help");
        assert_eq!(format!("{help:?}"), format!("{:?}", ExitCode::SUCCESS));
    }

    #[test]
    fn finish_maps_errors_to_one() {
        assert_eq!(
            format!("{:?}", finish("t", Ok(()))),
            format!("{:?}", ExitCode::SUCCESS)
        );
        let failed = finish("t", Err(anyhow::anyhow!("inner").context("outer")));
        assert_eq!(format!("{failed:?}"), format!("{:?}", ExitCode::from(1)));
    }
}
