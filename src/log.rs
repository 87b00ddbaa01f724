//! The one `tracing` set-up of every applet: stderr always (a supervised service's stderr is
//! its log buffer in machined), and on request machined's own log buffer and the kernel log.
//!
//! Lines carry Talos's timestamps ([`TalosTime`]) and no target; the level filter is
//! `RUST_LOG`, else the default of [`LogOptions`] (`info`).

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

use crate::logbuf::{LogBuffer, TalosTime};

/// Where log lines go besides stderr, and how they look there.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Colour on stderr when it is a terminal (`false`: never, as on PID 1's console).
    pub ansi_on_terminal: bool,
    /// Also into this buffer (machined's `Logs` of service `machined`).
    pub buffer: Option<Arc<LogBuffer>>,
    /// Also to the kernel log, one `/dev/kmsg` record per line (PID 1 off the container
    /// platform). Skipped when `/dev/kmsg` cannot be opened.
    pub kmsg: bool,
    /// The filter when `RUST_LOG` is not set.
    pub default_filter: &'static str,
    /// Also the lines of the controller runtime (target [`CONTROLLER_RUNTIME`]) into this
    /// buffer (`talosctl logs controller-runtime`).
    pub controller_runtime: Option<Arc<LogBuffer>>,
}

/// The `tracing` target of the controller runtime's lines.
pub const CONTROLLER_RUNTIME: &str = "controller-runtime";

impl Default for LogOptions {
    /// stderr only, coloured on a terminal, `info`.
    fn default() -> Self {
        LogOptions {
            ansi_on_terminal: true,
            buffer: None,
            kmsg: false,
            default_filter: "info",
            controller_runtime: None,
        }
    }
}

impl LogOptions {
    /// Also into `buffer`.
    pub fn buffer(mut self, buffer: Arc<LogBuffer>) -> Self {
        self.buffer = Some(buffer);
        self
    }

    /// Also to the kernel log when `on`.
    pub fn kmsg(mut self, on: bool) -> Self {
        self.kmsg = on;
        self
    }

    /// Also the controller runtime's lines into `buffer`.
    pub fn controller_runtime(mut self, buffer: Arc<LogBuffer>) -> Self {
        self.controller_runtime = Some(buffer);
        self
    }

    /// Never colour stderr.
    pub fn plain(mut self) -> Self {
        self.ansi_on_terminal = false;
        self
    }
}

/// The subscriber `options` describe (for [`init`], or for a scope in tests).
pub fn subscriber(options: &LogOptions) -> impl tracing::Subscriber + Send + Sync {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(options.default_filter));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(options.ansi_on_terminal && std::io::stderr().is_terminal())
        .with_target(false)
        .with_timer(TalosTime);
    let kmsg = options.kmsg.then(Kmsg::open).flatten().map(|writer| {
        tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(false)
            .without_time()
    });
    let buffer = options.buffer.as_ref().map(crate::logbuf::fmt_layer);
    let controller_runtime = options.controller_runtime.as_ref().map(|b| {
        use tracing_subscriber::Layer as _;
        crate::logbuf::fmt_layer(b).with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target() == CONTROLLER_RUNTIME
        }))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(kmsg)
        .with(buffer)
        .with(controller_runtime)
}

/// Installs the process-wide subscriber. A second call keeps the first subscriber.
pub fn init(options: &LogOptions) {
    let _ = subscriber(options).try_init();
}

/// Writes each log line as one `/dev/kmsg` record, tagged `[talos]`.
#[derive(Clone)]
struct Kmsg(Arc<Mutex<std::fs::File>>);

impl Kmsg {
    /// Longest record body written (the kernel's limit is about 1 KiB).
    const MAX_LINE: usize = 900;

    fn open() -> Option<Kmsg> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(crate::sys::kmsg::KMSG_PATH)
            .ok()
            .map(|file| Kmsg(Arc::new(Mutex::new(file))))
    }
}

impl std::io::Write for Kmsg {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut line = b"<6>[talos] ".to_vec();
        line.extend_from_slice(&buf[..buf.len().min(Self::MAX_LINE)]);
        if let Ok(mut file) = self.0.lock() {
            // The kernel log is best effort: a lost line must not stop PID 1.
            let _ = file.write(&line);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_buffer_plain_with_talos_timestamps() {
        let buffer = Arc::new(LogBuffer::new(4096));
        let options = LogOptions::default().plain().buffer(Arc::clone(&buffer));
        tracing::subscriber::with_default(subscriber(&options), || {
            tracing::info!(service = "apid", "started");
        });
        let lines: Vec<String> = buffer
            .tail(None)
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        // `2024/04/20 10:11:12.123456  INFO started service="apid"`
        let stamp = line.get(..26).expect("timestamp");
        assert_eq!(stamp.matches('/').count(), 2, "{line}");
        assert!(
            !line.contains('\u{1b}'),
            "no colour in the buffer: {line:?}"
        );
        assert!(line.contains("INFO started service=\"apid\""), "{line}");
    }

    #[test]
    fn controller_runtime_lines_get_their_own_buffer() {
        let machined = Arc::new(LogBuffer::new(4096));
        let cr = Arc::new(LogBuffer::new(4096));
        let options = LogOptions::default()
            .plain()
            .buffer(Arc::clone(&machined))
            .controller_runtime(Arc::clone(&cr));
        tracing::subscriber::with_default(subscriber(&options), || {
            tracing::info!(target: CONTROLLER_RUNTIME, id = "kube-apiserver", "rendered new static pod");
            tracing::info!("other");
        });
        let lines = |b: &LogBuffer| -> Vec<String> {
            b.tail(None)
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect()
        };
        assert_eq!(lines(&machined).len(), 2);
        let cr_lines = lines(&cr);
        assert_eq!(cr_lines.len(), 1, "{cr_lines:?}");
        assert!(
            cr_lines[0].contains("rendered new static pod id=\"kube-apiserver\""),
            "{cr_lines:?}"
        );
    }

    #[test]
    fn defaults_are_stderr_only_at_info() {
        let options = LogOptions::default();
        assert!(options.buffer.is_none() && !options.kmsg && options.ansi_on_terminal);
        assert_eq!(options.default_filter, "info");
        let pid1 = LogOptions::default().plain().kmsg(true);
        assert!(pid1.kmsg && !pid1.ansi_on_terminal);
    }
}
