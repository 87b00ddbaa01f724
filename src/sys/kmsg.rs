//! The kernel log, read record by record from `/dev/kmsg`.
//!
//! Each `read(2)` of `/dev/kmsg` returns one record,
//! `<syslog prefix>,<sequence>,<µs since boot>,<flags>[,...];<message>\n[ KEY=value\n...]`.
//! [`KmsgReader`] reads the records that exist (and, when following, waits for new ones)
//! without blocking a thread: the device is opened non-blocking and polled through tokio.
//! Reading needs `CAP_SYSLOG` (root) unless `kernel.dmesg_restrict` is 0.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{IoOp, SysError};

/// The kernel log device.
pub const KMSG_PATH: &str = "/dev/kmsg";

/// Syslog facility names, by number (as the Go kmsg library Talos uses names them).
const FACILITIES: [&str; 19] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Syslog priority names, by number.
const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// One kernel log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Syslog facility number (0 = kernel).
    pub facility: u32,
    /// Syslog priority (0 = emergency ... 7 = debug).
    pub priority: u32,
    /// Sequence number.
    pub sequence: u64,
    /// Microseconds since boot.
    pub usec: u64,
    /// The message text (first line, without the newline; continuation lines dropped).
    pub message: String,
}

impl Record {
    /// The facility's name (`kern`, `user`, ...), or `unknown`.
    pub fn facility_name(&self) -> &'static str {
        FACILITIES
            .get(self.facility as usize)
            .copied()
            .unwrap_or("unknown")
    }

    /// The priority's name (`err`, `info`, ...).
    pub fn priority_name(&self) -> &'static str {
        PRIORITIES
            .get(self.priority as usize)
            .copied()
            .unwrap_or("unknown")
    }

    /// The wall-clock time of the record, given the boot time.
    pub fn time(&self, boot_time: SystemTime) -> SystemTime {
        boot_time + Duration::from_micros(self.usec)
    }

    /// The line `talosctl dmesg` shows: `kern:    info: [2024-04-01T10:00:00.123456Z]: text\n`.
    pub fn format(&self, boot_time: SystemTime) -> String {
        format!(
            "{}: {:>7}: [{}]: {}\n",
            self.facility_name(),
            self.priority_name(),
            rfc3339_nano(self.time(boot_time)),
            self.message
        )
    }
}

/// Formats a time like Go's `time.RFC3339Nano` in UTC (fraction without trailing zeros).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let since = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let date =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        date.hour(),
        date.minute(),
        date.second()
    );
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses one `/dev/kmsg` record.
pub fn parse_record(raw: &[u8]) -> Result<Record, SysError> {
    let text = String::from_utf8_lossy(raw);
    let bad = |what: &str| SysError::parse(KMSG_PATH, what.to_string());
    let (prefix, message) = text
        .split_once(';')
        .ok_or_else(|| bad("record without ';' after its prefix"))?;
    let mut fields = prefix.split(',');
    let mut num = |name: &str| -> Result<u64, SysError> {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| bad(&format!("expected a number for the {name} in {prefix:?}")))
    };
    let syslog = num("priority")?;
    let sequence = num("sequence")?;
    let usec = num("timestamp")?;
    let message = message.split('\n').next().unwrap_or("").to_string();
    Ok(Record {
        facility: u32::try_from(syslog >> 3).unwrap_or(u32::MAX),
        priority: (syslog & 7) as u32,
        sequence,
        usec,
        message,
    })
}

/// The boot time: now minus the uptime in `<proc>/uptime`.
pub fn boot_time(proc: &Path) -> Result<SystemTime, SysError> {
    let up = super::procfs::read_uptime(proc)?;
    Ok(SystemTime::now() - Duration::from_secs_f64(up.max(0.0)))
}

/// Reads kernel log records.
pub struct KmsgReader {
    fd: AsyncFd<File>,
    follow: bool,
    buf: Vec<u8>,
}

impl KmsgReader {
    /// Opens `path` (normally [`KMSG_PATH`]). With `from_tail`, only records written after
    /// opening are returned; with `follow`, [`KmsgReader::next`] waits for new records instead
    /// of ending. Must be called within a tokio runtime.
    pub fn open(path: &Path, follow: bool, from_tail: bool) -> Result<Self, SysError> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
            .map_err(SysError::at(IoOp::Open, path))?;
        if from_tail {
            file.seek(SeekFrom::End(0))
                .map_err(SysError::at(IoOp::Seek, path))?;
        }
        // SAFETY: `file` owns its descriptor and is moved into the `AsyncFd`, which keeps it open
        // (and the same open file description) until the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) }
            .map_err(|e| SysError::io(IoOp::Poll, path, e.into_parts().1))?;
        Ok(KmsgReader {
            fd,
            follow,
            buf: vec![0; 8192],
        })
    }

    /// The next record; `None` at the end of the log when not following.
    pub async fn next(&mut self) -> Option<Result<Record, SysError>> {
        loop {
            let result = self.fd.get_ref().read(&mut self.buf);
            match result {
                Ok(0) => return None,
                Ok(n) => return Some(parse_record(&self.buf[..n])),
                // The reader fell behind and records were overwritten: go on with the oldest.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if !self.follow {
                        return None;
                    }
                    match self.fd.readable().await {
                        Ok(mut guard) => guard.clear_ready(),
                        Err(source) => {
                            return Some(Err(SysError::io(IoOp::Poll, KMSG_PATH, source)))
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Some(Err(SysError::io(IoOp::Read, KMSG_PATH, source))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        let r =
            parse_record(b"6,339,5140900,-;NET: Registered protocol family 10\n").expect("parse");
        assert_eq!(r.facility, 0);
        assert_eq!(r.priority, 6);
        assert_eq!(r.sequence, 339);
        assert_eq!(r.usec, 5_140_900);
        assert_eq!(r.message, "NET: Registered protocol family 10");

        let r = parse_record(b"12,1,2,-,caller=T1;hello\n SUBSYSTEM=usb\n").expect("parse");
        assert_eq!(r.facility_name(), "user");
        assert_eq!(r.priority_name(), "warning");
        assert_eq!(r.message, "hello");

        assert!(parse_record(b"no prefix").is_err());
        assert!(parse_record(b"x,1,2;msg").is_err());
    }

    #[test]
    fn formats_like_talos() {
        let boot = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let r = parse_record(b"3,1,1500000,-;disk error\n").expect("parse");
        assert_eq!(
            r.format(boot),
            "kern:     err: [2023-11-14T22:13:21.5Z]: disk error\n"
        );
        assert_eq!(rfc3339_nano(boot), "2023-11-14T22:13:20Z");
    }

    fn is_root() -> bool {
        nix::unistd::Uid::effective().is_root()
    }

    #[tokio::test]
    async fn reads_the_real_kernel_log_as_root() {
        if !is_root() {
            eprintln!("skipped: reading /dev/kmsg needs root");
            return;
        }
        let mut r = KmsgReader::open(Path::new(KMSG_PATH), false, false).expect("open");
        let first = r.next().await.expect("a record").expect("parsed");
        assert!(first.sequence < u64::MAX);
        // Not following: the reader ends.
        let mut count = 1;
        while let Some(rec) = r.next().await {
            rec.expect("parsed");
            count += 1;
        }
        assert!(count >= 1);

        // From the tail, following: nothing old, then a record we write.
        let mut r = KmsgReader::open(Path::new(KMSG_PATH), true, true).expect("open");
        std::fs::write(KMSG_PATH, "talos-rs kmsg follow test\n").expect("write kmsg");
        let rec = tokio::time::timeout(Duration::from_secs(5), r.next())
            .await
            .expect("in time")
            .expect("a record")
            .expect("parsed");
        assert!(rec.message.contains("talos-rs kmsg follow test"), "{rec:?}");
    }

    #[test]
    fn unreadable_device_is_a_clear_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let err = KmsgReader::open(Path::new("/nonexistent/kmsg"), false, false)
            .err()
            .expect("error");
        assert!(err.to_string().contains("/nonexistent/kmsg"), "{err}");
    }
}
