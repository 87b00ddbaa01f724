//! The process table, read from `/proc/<pid>/{stat,comm,cmdline,exe}`.
//!
//! Like Talos, a process is listed only when all four files can be read: kernel threads (which
//! have no executable) and processes that exit while being read are left out.

use std::path::Path;

use super::procfs::USER_HZ;
use super::{read_text, IoOp, SysError};

/// One process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Process {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// State letter (`R`, `S`, `D`, `Z`, ...).
    pub state: String,
    /// Number of threads.
    pub threads: i32,
    /// User plus system CPU time, in seconds.
    pub cpu_time: f64,
    /// Virtual memory size, bytes.
    pub virtual_memory: u64,
    /// Resident set size, bytes.
    pub resident_memory: u64,
    /// Command name (`comm`).
    pub command: String,
    /// Path of the executable (`exe` link target).
    pub executable: String,
    /// Command line, arguments joined by spaces.
    pub args: String,
}

/// The fields of `/proc/<pid>/stat` the process table needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PidStat {
    /// State letter.
    pub state: String,
    /// Parent process id.
    pub ppid: i32,
    /// Number of threads.
    pub threads: i32,
    /// User time, clock ticks.
    pub utime: u64,
    /// System time, clock ticks.
    pub stime: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
    /// Resident set size, pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat` text. The command name in parentheses may contain spaces and
/// parentheses itself, so fields are counted from the last `)`.
pub fn parse_pid_stat(text: &str) -> Result<PidStat, SysError> {
    let bad = |what: &str| SysError::parse("pid stat", what.to_string());
    let close = text
        .rfind(')')
        .ok_or_else(|| bad("no ')' after the command name"))?;
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    if fields.len() < 22 {
        return Err(bad(&format!(
            "expected at least 22 fields after the command name, got {}",
            fields.len()
        )));
    }
    let num = |i: usize| -> Result<u64, SysError> {
        fields[i]
            .parse::<u64>()
            .map_err(|_| bad(&format!("field {}: expected an integer", i + 3)))
    };
    let int = |i: usize| -> Result<i32, SysError> {
        fields[i]
            .parse::<i32>()
            .map_err(|_| bad(&format!("field {}: expected an integer", i + 3)))
    };
    Ok(PidStat {
        state: fields[0].to_string(),
        ppid: int(1)?,
        utime: num(11)?,
        stime: num(12)?,
        threads: int(17)?,
        vsize: num(20)?,
        rss_pages: num(21)?,
    })
}

/// Turns `/proc/<pid>/cmdline` bytes (NUL-separated) into a space-separated string.
pub fn cmdline_to_args(raw: &[u8]) -> String {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let joined: Vec<u8> = raw[..end]
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    String::from_utf8_lossy(&joined).into_owned()
}

/// The memory page size, for converting resident pages to bytes.
pub fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(size)) if size > 0 => size as u64,
        _ => 4096,
    }
}

/// Reads one process under `proc` (`proc/<pid>/...`).
pub fn read_process(proc: &Path, pid: i32, page_size: u64) -> Result<Process, SysError> {
    let dir = proc.join(pid.to_string());
    let exe_path = dir.join("exe");
    let executable = std::fs::read_link(&exe_path)
        .map_err(SysError::at(IoOp::ReadLink, exe_path))?
        .to_string_lossy()
        .into_owned();
    let command = read_text(&dir.join("comm"))?.trim().to_string();
    let cmdline_path = dir.join("cmdline");
    let cmdline = std::fs::read(&cmdline_path).map_err(SysError::at(IoOp::Read, cmdline_path))?;
    let stat = parse_pid_stat(&read_text(&dir.join("stat"))?)?;
    Ok(Process {
        pid,
        ppid: stat.ppid,
        state: stat.state,
        threads: stat.threads,
        cpu_time: (stat.utime + stat.stime) as f64 / USER_HZ,
        virtual_memory: stat.vsize,
        resident_memory: stat.rss_pages * page_size,
        command,
        executable,
        args: cmdline_to_args(&cmdline),
    })
}

/// Reads every process under `proc`, sorted by pid. Processes that cannot be read (gone, kernel
/// threads, not permitted) are skipped; only failing to list `proc` itself is an error.
pub fn read_processes(proc: &Path) -> Result<Vec<Process>, SysError> {
    let entries = std::fs::read_dir(proc).map_err(SysError::at(IoOp::List, proc.to_path_buf()))?;
    let page_size = page_size();
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids
        .into_iter()
        .filter_map(|pid| read_process(proc, pid, page_size).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 150 0 0 20 0 3 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn pid_stat_fields_are_counted_after_the_last_paren() {
        let s = parse_pid_stat(STAT).expect("parse");
        assert_eq!(s.state, "S");
        assert_eq!(s.ppid, 1);
        assert_eq!(s.utime, 250);
        assert_eq!(s.stime, 150);
        assert_eq!(s.threads, 3);
        assert_eq!(s.vsize, 104_857_600);
        assert_eq!(s.rss_pages, 2560);
    }

    #[test]
    fn truncated_pid_stat_is_an_error() {
        assert!(parse_pid_stat("1 (init) S 0 1").is_err());
        assert!(parse_pid_stat("no paren").is_err());
    }

    #[test]
    fn cmdline_joins_arguments_with_spaces() {
        assert_eq!(
            cmdline_to_args(b"/bin/sh\0-c\0echo hi\0"),
            "/bin/sh -c echo hi"
        );
        assert_eq!(cmdline_to_args(b""), "");
        assert_eq!(cmdline_to_args(b"\0\0"), "");
    }

    #[test]
    fn reads_a_fixture_process_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("4242");
        std::fs::create_dir(&p).expect("mkdir");
        std::fs::write(p.join("stat"), STAT).expect("stat");
        std::fs::write(p.join("comm"), "my (odd) cmd\n").expect("comm");
        std::fs::write(p.join("cmdline"), b"/usr/bin/odd\0--flag\0").expect("cmdline");
        std::os::unix::fs::symlink("/usr/bin/odd", p.join("exe")).expect("exe");
        // A kernel-thread-like entry without exe is skipped; non-numeric entries are ignored.
        let k = dir.path().join("2");
        std::fs::create_dir(&k).expect("mkdir");
        std::fs::write(k.join("stat"), STAT).expect("stat");
        std::fs::create_dir(dir.path().join("self")).expect("mkdir");

        let procs = read_processes(dir.path()).expect("read");
        assert_eq!(procs.len(), 1);
        let p = &procs[0];
        assert_eq!(p.pid, 4242);
        assert_eq!(p.command, "my (odd) cmd");
        assert_eq!(p.executable, "/usr/bin/odd");
        assert_eq!(p.args, "/usr/bin/odd --flag");
        assert!((p.cpu_time - 4.0).abs() < 1e-9);
        assert_eq!(p.resident_memory, 2560 * page_size());
    }

    #[test]
    fn reads_this_process_from_real_proc() {
        let me = std::process::id() as i32;
        let procs = read_processes(Path::new("/proc")).expect("read /proc");
        let p = procs
            .iter()
            .find(|p| p.pid == me)
            .expect("own process listed");
        assert!(p.threads >= 1);
        assert!(p.resident_memory > 0);
        assert!(!p.executable.is_empty());
    }
}
