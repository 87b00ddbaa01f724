//! The edge every applet goes through ([`main`]): parse the command line with clap, set up
//! logging ([`talos::log`]), run, and turn the outcome into the exit code.
//!
//! | outcome | exit code | stderr |
//! |---|---|---|
//! | success | 0, or the code the applet returns ([`Outcome`]) | — |
//! | `--help`, `--version` | 0 | (clap prints them on stdout) |
//! | a usage error clap finds, or a [`UsageError`] in the error chain | 2 (clap's convention) | clap's message / the error |
//! | any other error | 1 | the error with its whole chain, as [`Errors`] says |
//! | an [`AlreadyReported`] error | 1 | nothing more (the applet printed it already) |

use std::ffi::OsString;
use std::process::ExitCode;

use talos::errors::chain;
use talos::log::LogOptions;

/// Exit code of a command-line usage error (clap's convention).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a failed run.
pub const EXIT_FAILURE: u8 = 1;

/// How an applet prints a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errors {
    /// `<applet>: <error>` on stderr, and logged (services, machined, the installer).
    Named(&'static str),
    /// `error: <error>` on stderr, as talosctl prints it.
    Cli,
}

/// A usage problem only the applet can see (a combination of flags, the wrong process):
/// exits with [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The failure was already printed (e.g. talosctl's per-node errors): exit 1, print nothing.
#[derive(Debug, thiserror::Error)]
#[error("one or more nodes failed")]
pub struct AlreadyReported;

/// What a successful run ends with.
pub trait Outcome {
    /// The process exit code.
    fn exit_code(self) -> ExitCode;
}

impl Outcome for () {
    fn exit_code(self) -> ExitCode {
        ExitCode::SUCCESS
    }
}

impl Outcome for ExitCode {
    fn exit_code(self) -> ExitCode {
        self
    }
}

/// Logging of a service applet: stderr (its log buffer in machined).
pub fn stderr_logging<C>(_: &C) -> Option<LogOptions> {
    Some(LogOptions::default())
}

/// No log output (talosctl writes only its own output and errors).
pub fn no_logging<C>(_: &C) -> Option<LogOptions> {
    None
}

/// Runs an applet: parses `args` into `C`, installs the logging `logging` asks for (`None`:
/// the applet sets it up itself, or has none), runs `run`, and maps the outcome to the exit
/// code (see the module table).
pub fn main<C, O>(
    args: Vec<OsString>,
    errors: Errors,
    logging: impl FnOnce(&C) -> Option<LogOptions>,
    run: impl FnOnce(C) -> anyhow::Result<O>,
) -> ExitCode
where
    C: clap::Parser,
    O: Outcome,
{
    let cli = match parse::<C>(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if let Some(options) = logging(&cli) {
        talos::log::init(&options);
    }
    finish(errors, run(cli))
}

/// Parses `args`; on `--help`/`--version` or a usage error prints clap's message and returns
/// the exit code (0 or 2) to end with.
fn parse<C: clap::Parser>(args: Vec<OsString>) -> Result<C, ExitCode> {
    C::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 })
    })
}

/// The exit code of a failed run: [`EXIT_USAGE`] for a usage error anywhere in the chain,
/// else [`EXIT_FAILURE`].
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let usage = error.chain().any(|e| {
        e.is::<UsageError>()
            || e.downcast_ref::<clap::Error>()
                .is_some_and(|c| c.use_stderr())
    });
    if usage {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// Success, or the error printed as `errors` says and its exit code.
fn finish<O: Outcome>(errors: Errors, result: anyhow::Result<O>) -> ExitCode {
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            if !e.is::<AlreadyReported>() {
                report(errors, &e);
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Prints a failed run's error with its whole chain: the one place an applet's error reaches
/// stderr.
fn report(errors: Errors, error: &anyhow::Error) {
    let chain = chain(error.as_ref());
    match errors {
        Errors::Named(applet) => {
            tracing::error!("{chain}");
            eprintln!("{applet}: {chain}");
        }
        Errors::Cli => eprintln!("error: {chain}"),
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

    fn code(c: ExitCode) -> String {
        format!("{c:?}")
    }

    fn run_with(a: &[&str], result: impl FnOnce() -> anyhow::Result<()>) -> String {
        code(main::<Cli, ()>(
            args(a),
            Errors::Named("t"),
            no_logging,
            |_| result(),
        ))
    }

    #[test]
    fn parse_maps_help_and_usage_errors_to_exit_codes() {
        let cli: Cli = parse(args(&["x", "--listen", "0.0.0.0:1"])).expect("parses");
        assert_eq!(cli.listen, "0.0.0.0:1");
        let usage = parse::<Cli>(args(&["x", "--bogus"])).expect_err("usage error");
        assert_eq!(code(usage), code(ExitCode::from(2)));
        let help = parse::<Cli>(args(&["x", "--help"])).expect_err("help");
        assert_eq!(code(help), code(ExitCode::SUCCESS));
    }

    #[test]
    fn usage_errors_exit_2_and_runtime_errors_exit_1() {
        let ok = &["x", "--listen", "a"];
        assert_eq!(run_with(ok, || Ok(())), code(ExitCode::SUCCESS));
        // clap's usage errors: the body does not run.
        assert_eq!(
            run_with(&["x"], || panic!("must not run")),
            code(ExitCode::from(2))
        );
        // A usage error the applet finds, also below a context.
        assert_eq!(
            run_with(ok, || Err(UsageError("use --api-only".into()).into())),
            code(ExitCode::from(2))
        );
        assert_eq!(
            run_with(ok, || Err(
                anyhow::Error::new(UsageError("x".into())).context("outer")
            )),
            code(ExitCode::from(2))
        );
        // Everything else is a failed run.
        assert_eq!(
            run_with(ok, || Err(anyhow::anyhow!("inner").context("outer"))),
            code(ExitCode::from(1))
        );
        assert_eq!(
            run_with(ok, || Err(AlreadyReported.into())),
            code(ExitCode::from(1))
        );
    }

    #[test]
    fn the_applet_may_choose_its_exit_code() {
        let got = main::<Cli, ExitCode>(
            args(&["x", "--listen", "a"]),
            Errors::Cli,
            no_logging,
            |_| Ok(ExitCode::from(10)),
        );
        assert_eq!(code(got), code(ExitCode::from(10)));
    }

    #[test]
    fn logging_is_asked_with_the_parsed_command_line() {
        let mut seen = None;
        let got = main::<Cli, ()>(
            args(&["x", "--listen", "l"]),
            Errors::Cli,
            |cli| {
                seen = Some(cli.listen.clone());
                None
            },
            |_| Ok(()),
        );
        assert_eq!(code(got), code(ExitCode::SUCCESS));
        assert_eq!(seen.as_deref(), Some("l"));
    }
}
