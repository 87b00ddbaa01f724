//! In-memory, per-service log buffers (what `talosctl logs <service>` reads).
//!
//! [`LogBuffers`] keys one [`LogBuffer`] by service id. A buffer is created on first use and is
//! never dropped, so a restarted service appends to the same history and followers keep
//! reading across the restart. Each buffer is a ring of complete lines bounded in bytes
//! (default 1 MiB, like Talos's per-service maximum): appending evicts the oldest lines.
//!
//! Writers never wait for readers. A [`Follower`] remembers the sequence number of the next
//! line it wants; if it falls so far behind that the line has been evicted, it skips ahead to
//! the oldest retained line and counts what it missed ([`Follower::skipped`]).
//!
//! [`LogBuffer::make_writer`] and [`fmt_layer`] connect `tracing` to a buffer, so machined's
//! own log lines land in the buffer of service `machined`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// Default byte bound of one service's buffer.
pub const DEFAULT_MAX_BYTES: usize = 1 << 20;

/// A partial line (no newline yet) longer than this is committed as a line of its own.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The buffers of every service, by service id.
#[derive(Debug)]
pub struct LogBuffers {
    max_bytes: usize,
    buffers: Mutex<BTreeMap<String, Arc<LogBuffer>>>,
}

impl Default for LogBuffers {
    fn default() -> Self {
        LogBuffers::new(DEFAULT_MAX_BYTES)
    }
}

impl LogBuffers {
    /// Buffers that each keep at most `max_bytes_per_service` bytes of lines.
    pub fn new(max_bytes_per_service: usize) -> Self {
        LogBuffers {
            max_bytes: max_bytes_per_service.max(1),
            buffers: Mutex::new(BTreeMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<LogBuffer>>> {
        // A panic while holding the lock cannot leave the map inconsistent; keep going.
        self.buffers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The buffer of service `id`, created (registered) if it does not exist yet.
    pub fn buffer(&self, id: &str) -> Arc<LogBuffer> {
        self.map()
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(LogBuffer::new(self.max_bytes)))
            .clone()
    }

    /// The buffer of service `id`, if it was ever registered.
    pub fn get(&self, id: &str) -> Option<Arc<LogBuffer>> {
        self.map().get(id).cloned()
    }

    /// Registered service ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }
}

#[derive(Debug, Default)]
struct Ring {
    /// Complete lines, each ending in `\n`.
    lines: VecDeque<Vec<u8>>,
    /// Sequence number of `lines[0]`.
    first_seq: u64,
    /// Sum of the lengths of `lines`.
    bytes: usize,
    /// Bytes after the last newline, waiting for the rest of their line.
    partial: Vec<u8>,
}

impl Ring {
    fn end_seq(&self) -> u64 {
        self.first_seq + self.lines.len() as u64
    }

    fn push_line(&mut self, mut line: Vec<u8>, max_bytes: usize) {
        if line.len() > max_bytes {
            line.truncate(max_bytes.saturating_sub(1));
            line.push(b'\n');
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.bytes > max_bytes {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.len();
                    self.first_seq += 1;
                }
                None => break,
            }
        }
    }
}

/// One service's log: a byte-bounded ring of lines.
#[derive(Debug)]
pub struct LogBuffer {
    max_bytes: usize,
    ring: Mutex<Ring>,
    /// Carries the sequence number after the newest line; followers wait on it.
    end: watch::Sender<u64>,
}

impl LogBuffer {
    /// An empty buffer that keeps at most `max_bytes` bytes of lines.
    pub fn new(max_bytes: usize) -> Self {
        LogBuffer {
            max_bytes: max_bytes.max(1),
            ring: Mutex::new(Ring::default()),
            end: watch::Sender::new(0),
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends output. Complete lines become visible at once; bytes after the last newline wait
    /// for the rest of their line (or are committed when they exceed [`MAX_LINE_BYTES`]).
    pub fn append(&self, data: &[u8]) {
        let end = {
            let mut ring = self.ring();
            let mut rest = data;
            while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
                let mut line = std::mem::take(&mut ring.partial);
                line.extend_from_slice(&rest[..=pos]);
                ring.push_line(line, self.max_bytes);
                rest = &rest[pos + 1..];
            }
            ring.partial.extend_from_slice(rest);
            if ring.partial.len() > MAX_LINE_BYTES {
                let mut line = std::mem::take(&mut ring.partial);
                line.push(b'\n');
                ring.push_line(line, self.max_bytes);
            }
            ring.end_seq()
        };
        self.end.send_replace(end);
    }

    /// The last `n` complete lines (all retained lines for `None`), oldest first, each ending
    /// in `\n`.
    pub fn tail(&self, n: Option<usize>) -> Vec<Vec<u8>> {
        let ring = self.ring();
        let skip = n.map_or(0, |n| ring.lines.len().saturating_sub(n));
        ring.lines.iter().skip(skip).cloned().collect()
    }

    /// Number of retained lines.
    pub fn line_count(&self) -> usize {
        self.ring().lines.len()
    }

    /// Bytes held by retained lines.
    pub fn byte_count(&self) -> usize {
        self.ring().bytes
    }

    /// A reader that first yields the last `tail` lines (all for `None`), then every new line.
    pub fn follow(self: &Arc<Self>, tail: Option<usize>) -> Follower {
        let rx = self.end.subscribe();
        let next = {
            let ring = self.ring();
            let end = ring.end_seq();
            match tail {
                None => ring.first_seq,
                Some(n) => end.saturating_sub(n as u64).max(ring.first_seq),
            }
        };
        Follower {
            buffer: Arc::clone(self),
            next,
            rx,
            skipped: 0,
        }
    }

    /// An `io::Write` handle appending to this buffer.
    pub fn writer(self: &Arc<Self>) -> LogWriter {
        LogWriter(Arc::clone(self))
    }

    /// A `tracing_subscriber` writer factory appending to this buffer.
    pub fn make_writer(self: &Arc<Self>) -> MakeLogWriter {
        MakeLogWriter(Arc::clone(self))
    }
}

/// Reads a buffer's lines in order and then waits for new ones.
#[derive(Debug)]
pub struct Follower {
    buffer: Arc<LogBuffer>,
    next: u64,
    rx: watch::Receiver<u64>,
    skipped: u64,
}

impl Follower {
    /// The next line if one is available now.
    pub fn try_next(&mut self) -> Option<Vec<u8>> {
        let ring = self.buffer.ring();
        if self.next < ring.first_seq {
            self.skipped += ring.first_seq - self.next;
            self.next = ring.first_seq;
        }
        let index = usize::try_from(self.next - ring.first_seq).ok()?;
        let line = ring.lines.get(index)?.clone();
        self.next += 1;
        Some(line)
    }

    /// The next line, waiting for one to be appended. Cancel-safe: dropping the future loses
    /// nothing.
    pub async fn next(&mut self) -> Vec<u8> {
        loop {
            self.rx.borrow_and_update();
            if let Some(line) = self.try_next() {
                return line;
            }
            if self.rx.changed().await.is_err() {
                // The sender lives in the buffer we hold, so this cannot happen; never spin.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Lines this follower missed because it fell behind and they were evicted.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// `io::Write` into a [`LogBuffer`].
#[derive(Debug, Clone)]
pub struct LogWriter(Arc<LogBuffer>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hands out [`LogWriter`]s to `tracing_subscriber::fmt`.
#[derive(Debug, Clone)]
pub struct MakeLogWriter(Arc<LogBuffer>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeLogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(Arc::clone(&self.0))
    }
}

/// Timestamps in machined's log style, `2024/04/20 10:11:12.123456` (UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct TalosTime;

impl tracing_subscriber::fmt::time::FormatTime for TalosTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = time::OffsetDateTime::now_utc();
        write!(
            w,
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02}.{:06}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.microsecond()
        )
    }
}

/// A `tracing` layer writing plain (no colour) lines with [`TalosTime`] stamps into `buffer`.
pub fn fmt_layer<S>(buffer: &Arc<LogBuffer>) -> impl tracing_subscriber::Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_timer(TalosTime)
        .with_writer(buffer.make_writer())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(lines: &[Vec<u8>]) -> String {
        lines.iter().map(|l| String::from_utf8_lossy(l)).collect()
    }

    #[test]
    fn lines_are_committed_at_newlines() {
        let b = LogBuffer::new(1024);
        b.append(b"one\ntw");
        assert_eq!(text(&b.tail(None)), "one\n");
        b.append(b"o\nthree\n");
        assert_eq!(text(&b.tail(None)), "one\ntwo\nthree\n");
        assert_eq!(text(&b.tail(Some(2))), "two\nthree\n");
        assert_eq!(text(&b.tail(Some(0))), "");
        assert_eq!(text(&b.tail(Some(10))), "one\ntwo\nthree\n");
    }

    #[test]
    fn oldest_lines_are_evicted_at_the_byte_bound() {
        let b = LogBuffer::new(10);
        b.append(b"aaaa\nbbbb\ncccc\n");
        assert_eq!(text(&b.tail(None)), "bbbb\ncccc\n");
        assert_eq!(b.byte_count(), 10);
        // A single line larger than the bound is cut to fit.
        b.append(&[b'x'; 30]);
        b.append(b"\n");
        assert_eq!(b.line_count(), 1);
        assert_eq!(b.byte_count(), 10);
    }

    #[test]
    fn endless_partial_lines_are_committed() {
        let b = LogBuffer::new(DEFAULT_MAX_BYTES);
        b.append(&vec![b'y'; MAX_LINE_BYTES + 1]);
        assert_eq!(b.line_count(), 1);
    }

    #[test]
    fn buffers_are_keyed_and_survive() {
        let all = LogBuffers::new(1024);
        assert!(all.get("etcd").is_none());
        all.buffer("etcd").append(b"first run\n");
        // A restarted service gets the same buffer back.
        all.buffer("etcd").append(b"second run\n");
        assert_eq!(
            text(&all.get("etcd").expect("registered").tail(None)),
            "first run\nsecond run\n"
        );
        all.buffer("apid");
        assert_eq!(all.ids(), ["apid", "etcd"]);
    }

    #[tokio::test]
    async fn follower_gets_tail_then_new_lines() {
        let b = Arc::new(LogBuffer::new(1024));
        b.append(b"1\n2\n3\n");
        let mut f = b.follow(Some(1));
        assert_eq!(f.next().await, b"3\n");
        assert!(f.try_next().is_none());
        let writer = Arc::clone(&b);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.append(b"4\n");
        });
        let line = tokio::time::timeout(Duration::from_secs(5), f.next())
            .await
            .expect("new line in time");
        assert_eq!(line, b"4\n");

        let mut from_start = b.follow(None);
        assert_eq!(from_start.next().await, b"1\n");
        let mut none = b.follow(Some(0));
        assert!(none.try_next().is_none());
    }

    #[test]
    fn slow_followers_skip_and_never_block_writers() {
        let b = Arc::new(LogBuffer::new(8));
        let mut f = b.follow(None);
        for i in 0..100 {
            b.append(format!("{}\n", i % 10).as_bytes());
        }
        // Only the last four 2-byte lines are retained; the follower skips ahead.
        assert_eq!(f.try_next().expect("line"), b"6\n");
        assert_eq!(f.skipped(), 96);
    }

    #[test]
    fn tracing_lines_land_in_the_buffer() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let b = Arc::new(LogBuffer::new(4096));
        let subscriber = tracing_subscriber::registry().with(fmt_layer(&b));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(socket = "/x.sock", "listening");
        });
        let lines = text(&b.tail(None));
        assert!(
            lines.contains("INFO listening socket=\"/x.sock\""),
            "{lines}"
        );
        // 2024/04/20 10:11:12.123456
        let stamp = lines.split(' ').next().expect("date");
        assert_eq!(stamp.len(), 10);
        assert_eq!(&stamp[4..5], "/");
    }
}
