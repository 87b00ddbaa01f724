//! How an error is shown to a person: one printer for the whole `source()` chain.
//!
//! Errors in talos-rs are chains. Each level says what failed at its level (which file, node,
//! key) and holds the cause as its `source()`; its own message never repeats that cause
//! (STYLE.md §3). So printing only the top level loses the cause, and every edge that shows an
//! error to a person — an applet's stderr, PID 1's kernel log, a `tonic::Status` message —
//! walks the chain with [`chain`]: `outer: cause: root cause`, each message once.
//!
//! The gRPC code a typed error maps to comes from [`GrpcCode`], next to the printer, so an API
//! handler turns a typed error into a status with [`status`].

use std::error::Error;
use std::fmt;

/// An error and its `source()` chain, displayed as `outer: cause: root cause`.
///
/// Made by [`chain`]; use it wherever the error meets a person:
/// `eprintln!("talosctl: {}", chain(&e))`, `tracing::warn!(error = %chain(&e), …)`.
#[derive(Clone, Copy)]
pub struct Chain<'a>(&'a dyn Error);

/// The printer for `err`: its message and its sources' messages, outermost first, joined with
/// `": "`. For an `anyhow::Error`, pass `e.as_ref()` (its contexts are its chain).
pub fn chain(err: &dyn Error) -> Chain<'_> {
    Chain(err)
}

/// The messages of `err` and of every error below it, outermost first.
///
/// A message that the text above it already ends with is left out: a few third-party errors
/// still print their cause *and* return it from `source()`, and the cause is shown once.
pub fn messages(err: &dyn Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut text = out[0].clone();
    let mut next = err.source();
    while let Some(cause) = next {
        let message = cause.to_string();
        if !message.is_empty() && !ends_with_message(&text, &message) {
            text.push_str(": ");
            text.push_str(&message);
            out.push(message);
        }
        next = cause.source();
    }
    out
}

/// Whether `text` already ends with `message` as a whole message (not as the tail of a word:
/// `unexpected EOF` does not contain the message `EOF`).
fn ends_with_message(text: &str, message: &str) -> bool {
    let Some(head) = text.strip_suffix(message) else {
        return false;
    };
    head.is_empty() || head.ends_with(": ") || head.ends_with('(') || head.ends_with("; ")
}

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&messages(self.0).join(": "))
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The gRPC status code a typed error stands for at the API edge (`NOT_FOUND` for a missing
/// file, `INVALID_ARGUMENT` for a refused request, …).
pub trait GrpcCode {
    /// The code; the message is the error's [`chain`].
    fn code(&self) -> tonic::Code;
}

/// A `tonic::Status` for a typed error: its [`GrpcCode`] and its whole chain as the message.
pub fn status<E: Error + GrpcCode>(err: &E) -> tonic::Status {
    tonic::Status::new(err.code(), chain(err).to_string())
}

/// The gRPC code of an I/O failure of this kind (missing → `NOT_FOUND`, refused →
/// `PERMISSION_DENIED`, bad input → `INVALID_ARGUMENT`, anything else `INTERNAL`).
pub fn io_code(kind: std::io::ErrorKind) -> tonic::Code {
    match kind {
        std::io::ErrorKind::NotFound => tonic::Code::NotFound,
        std::io::ErrorKind::PermissionDenied => tonic::Code::PermissionDenied,
        std::io::ErrorKind::InvalidInput => tonic::Code::InvalidArgument,
        _ => tonic::Code::Internal,
    }
}

impl GrpcCode for std::io::Error {
    fn code(&self) -> tonic::Code {
        io_code(self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("reading {path}")]
        Read {
            path: String,
            source: std::io::Error,
        },
        #[error("loading the config")]
        Load(#[source] Middle),
        #[error("nothing below")]
        Leaf,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("decoding {what}")]
    struct Middle {
        what: &'static str,
        source: std::io::Error,
    }

    /// A third-party style error that prints its cause and also returns it.
    #[derive(Debug, thiserror::Error)]
    #[error("transport error: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    fn io(msg: &str) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, msg.to_string())
    }

    #[test]
    fn a_chain_is_joined_with_colons_outermost_first() {
        let e = Outer::Load(Middle {
            what: "machine.yaml",
            source: io("unexpected EOF"),
        });
        assert_eq!(
            messages(&e),
            [
                "loading the config",
                "decoding machine.yaml",
                "unexpected EOF"
            ]
        );
        assert_eq!(
            chain(&e).to_string(),
            "loading the config: decoding machine.yaml: unexpected EOF"
        );
        assert_eq!(format!("{:?}", chain(&e)), chain(&e).to_string());
    }

    #[test]
    fn an_error_without_sources_is_its_message() {
        assert_eq!(chain(&Outer::Leaf).to_string(), "nothing below");
    }

    #[test]
    fn named_source_fields_are_walked() {
        let e = Outer::Read {
            path: "/proc/cmdline".into(),
            source: io("No such file or directory (os error 2)"),
        };
        assert_eq!(
            chain(&e).to_string(),
            "reading /proc/cmdline: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn a_cause_the_message_already_prints_is_shown_once() {
        let e = Repeats {
            source: io("connection refused"),
        };
        assert_eq!(chain(&e).to_string(), "transport error: connection refused");
        // Only a whole message counts: a cause that merely ends the same word is shown.
        let e = Middle {
            what: "the stream: unexpected EOF",
            source: io("EOF"),
        };
        assert_eq!(messages(&e).len(), 2, "{}", chain(&e));
        let e = Middle {
            what: "x",
            source: io("unexpected EOF"),
        };
        assert_eq!(chain(&e).to_string(), "decoding x: unexpected EOF");
    }

    #[test]
    fn anyhow_contexts_are_a_chain() {
        let e = anyhow::Error::new(io("permission denied"))
            .context("writing /system/state/config.yaml")
            .context("applying the configuration");
        assert_eq!(
            chain(e.as_ref()).to_string(),
            "applying the configuration: writing /system/state/config.yaml: permission denied"
        );
        // The same text anyhow's alternate form gives.
        assert_eq!(chain(e.as_ref()).to_string(), format!("{e:#}"));
    }

    impl GrpcCode for Middle {
        fn code(&self) -> tonic::Code {
            self.source.code()
        }
    }

    #[test]
    fn a_status_carries_the_code_and_the_whole_chain() {
        let e = Middle {
            what: "the certificate",
            source: io("gone"),
        };
        let s = status(&e);
        assert_eq!(s.code(), tonic::Code::NotFound);
        assert_eq!(s.message(), "decoding the certificate: gone");
        assert_eq!(
            io_code(std::io::ErrorKind::PermissionDenied),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            io_code(std::io::ErrorKind::InvalidInput),
            tonic::Code::InvalidArgument
        );
        assert_eq!(io_code(std::io::ErrorKind::Other), tonic::Code::Internal);
    }
}
