//! Parsers and readers for the system-wide files under `/proc`.
//!
//! Each `parse_*` function takes the file's text; each `read_*` function reads the file under a
//! given proc root (normally `/proc`) and parses it. Units are kept as the kernel reports them,
//! except CPU times, which are converted from clock ticks to seconds like Talos does.

use std::collections::BTreeMap;
use std::path::Path;

use super::{read_text, SysError};

/// Clock ticks per second assumed for `/proc/stat` and `/proc/<pid>/stat` (`USER_HZ`; Talos
/// assumes 100 too, which is what every Linux architecture it supports reports).
pub const USER_HZ: f64 = 100.0;

/// `/proc/meminfo`: every `Key: value [kB]` line, with values as printed (kB for sizes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemInfo {
    entries: BTreeMap<String, u64>,
}

impl MemInfo {
    /// The value of `key` (e.g. `MemTotal`, `HugePages_Total`), or 0 when the kernel does not
    /// report it.
    pub fn get(&self, key: &str) -> u64 {
        self.entries.get(key).copied().unwrap_or(0)
    }

    /// Whether the kernel reported `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }
}

/// Parses `/proc/meminfo` text. Lines that are not `Key: number [unit]` are skipped.
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut entries = BTreeMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(value) = rest.split_whitespace().next() else {
            continue;
        };
        if let Ok(value) = value.parse::<u64>() {
            entries.insert(key.trim().to_string(), value);
        }
    }
    MemInfo { entries }
}

/// Reads `<proc>/meminfo`.
pub fn read_meminfo(proc: &Path) -> Result<MemInfo, SysError> {
    Ok(parse_meminfo(&read_text(&proc.join("meminfo"))?))
}

/// `/proc/loadavg`: the 1, 5 and 15 minute load averages.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadAvg {
    /// Over one minute.
    pub load1: f64,
    /// Over five minutes.
    pub load5: f64,
    /// Over fifteen minutes.
    pub load15: f64,
}

/// Parses `/proc/loadavg` text (`0.50 0.40 0.30 1/123 4567`).
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, SysError> {
    let mut fields = text.split_whitespace();
    let mut next = |name: &str| -> Result<f64, SysError> {
        fields
            .next()
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| SysError::parse("loadavg", format!("expected a number for {name}")))
    };
    Ok(LoadAvg {
        load1: next("load1")?,
        load5: next("load5")?,
        load15: next("load15")?,
    })
}

/// Reads `<proc>/loadavg`.
pub fn read_loadavg(proc: &Path) -> Result<LoadAvg, SysError> {
    parse_loadavg(&read_text(&proc.join("loadavg"))?)
}

/// One processor block of `/proc/cpuinfo`: its `key : value` pairs, keys as printed
/// (`processor`, `vendor_id`, `model name`, `flags`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    fields: BTreeMap<String, String>,
}

impl CpuInfo {
    /// The value of `key`, or `""`.
    pub fn get(&self, key: &str) -> &str {
        self.fields.get(key).map(String::as_str).unwrap_or("")
    }

    /// The value of `key` as a number, or 0 when absent or not a number.
    pub fn number<T: std::str::FromStr + Default>(&self, key: &str) -> T {
        self.get(key).parse().unwrap_or_default()
    }

    /// The value of `key` split on whitespace (for `flags`, `bugs`).
    pub fn words(&self, key: &str) -> Vec<String> {
        self.get(key)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// Parses `/proc/cpuinfo` text into one [`CpuInfo`] per processor (blocks separated by blank
/// lines; each block starts with `processor`).
pub fn parse_cpuinfo(text: &str) -> Vec<CpuInfo> {
    let mut cpus = Vec::new();
    let mut current = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                cpus.push(CpuInfo {
                    fields: std::mem::take(&mut current),
                });
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    if !current.is_empty() {
        cpus.push(CpuInfo { fields: current });
    }
    // Some architectures print a trailer block without `processor` (e.g. arm64 `Hardware`).
    cpus.retain(|c| c.fields.contains_key("processor"));
    cpus
}

/// Reads `<proc>/cpuinfo`.
pub fn read_cpuinfo(proc: &Path) -> Result<Vec<CpuInfo>, SysError> {
    Ok(parse_cpuinfo(&read_text(&proc.join("cpuinfo"))?))
}

/// Time a CPU spent in each state, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// Normal user mode.
    pub user: f64,
    /// Niced user mode.
    pub nice: f64,
    /// Kernel mode.
    pub system: f64,
    /// Idle.
    pub idle: f64,
    /// Waiting for I/O.
    pub iowait: f64,
    /// Servicing interrupts.
    pub irq: f64,
    /// Servicing soft interrupts.
    pub softirq: f64,
    /// Stolen by the hypervisor.
    pub steal: f64,
    /// Running a guest.
    pub guest: f64,
    /// Running a niced guest.
    pub guest_nice: f64,
}

/// Soft interrupt counters, in `/proc/stat` order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoftIrqs {
    /// HI.
    pub hi: u64,
    /// TIMER.
    pub timer: u64,
    /// NET_TX.
    pub net_tx: u64,
    /// NET_RX.
    pub net_rx: u64,
    /// BLOCK.
    pub block: u64,
    /// IRQ_POLL (block I/O poll).
    pub block_io_poll: u64,
    /// TASKLET.
    pub tasklet: u64,
    /// SCHED.
    pub sched: u64,
    /// HRTIMER.
    pub hrtimer: u64,
    /// RCU.
    pub rcu: u64,
}

/// `/proc/stat`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    /// Boot time, seconds since the Unix epoch.
    pub boot_time: u64,
    /// All CPUs together.
    pub cpu_total: CpuTimes,
    /// Per CPU, indexed by CPU number (offline CPUs in between are zero).
    pub cpu: Vec<CpuTimes>,
    /// Interrupts serviced since boot.
    pub irq_total: u64,
    /// Per interrupt number.
    pub irq: Vec<u64>,
    /// Context switches since boot.
    pub context_switches: u64,
    /// Processes (and threads) created since boot.
    pub processes_created: u64,
    /// Runnable now.
    pub processes_running: u64,
    /// Blocked on I/O now.
    pub processes_blocked: u64,
    /// Soft interrupts since boot.
    pub softirq_total: u64,
    /// Per soft interrupt kind.
    pub softirq: SoftIrqs,
}

fn parse_u64(field: &str, what: &str) -> Result<u64, SysError> {
    field.parse().map_err(|_| {
        SysError::parse(
            "stat",
            format!("{what}: expected an integer, got {field:?}"),
        )
    })
}

fn parse_cpu_times(fields: &[&str], what: &str) -> Result<CpuTimes, SysError> {
    let mut v = [0f64; 10];
    for (slot, field) in v.iter_mut().zip(fields) {
        *slot = parse_u64(field, what)? as f64 / USER_HZ;
    }
    Ok(CpuTimes {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
        guest: v[8],
        guest_nice: v[9],
    })
}

/// Parses `/proc/stat` text. Unknown lines are skipped.
pub fn parse_stat(text: &str) -> Result<Stat, SysError> {
    let mut stat = Stat::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some((&key, rest)) = fields.split_first() else {
            continue;
        };
        let first = || rest.first().copied().unwrap_or("");
        match key {
            "cpu" => stat.cpu_total = parse_cpu_times(rest, key)?,
            "intr" => {
                stat.irq_total = parse_u64(first(), key)?;
                stat.irq = rest[1..]
                    .iter()
                    .map(|f| parse_u64(f, key))
                    .collect::<Result<_, _>>()?;
            }
            "ctxt" => stat.context_switches = parse_u64(first(), key)?,
            "btime" => stat.boot_time = parse_u64(first(), key)?,
            "processes" => stat.processes_created = parse_u64(first(), key)?,
            "procs_running" => stat.processes_running = parse_u64(first(), key)?,
            "procs_blocked" => stat.processes_blocked = parse_u64(first(), key)?,
            "softirq" => {
                let v: Vec<u64> = rest
                    .iter()
                    .map(|f| parse_u64(f, key))
                    .collect::<Result<_, _>>()?;
                let at = |i: usize| v.get(i).copied().unwrap_or(0);
                stat.softirq_total = at(0);
                stat.softirq = SoftIrqs {
                    hi: at(1),
                    timer: at(2),
                    net_tx: at(3),
                    net_rx: at(4),
                    block: at(5),
                    block_io_poll: at(6),
                    tasklet: at(7),
                    sched: at(8),
                    hrtimer: at(9),
                    rcu: at(10),
                };
            }
            cpu if cpu.starts_with("cpu") => {
                let index: usize = cpu[3..]
                    .parse()
                    .map_err(|_| SysError::parse("stat", format!("unexpected CPU line {cpu:?}")))?;
                if stat.cpu.len() <= index {
                    stat.cpu.resize(index + 1, CpuTimes::default());
                }
                stat.cpu[index] = parse_cpu_times(rest, cpu)?;
            }
            _ => {}
        }
    }
    Ok(stat)
}

/// Reads `<proc>/stat`.
pub fn read_stat(proc: &Path) -> Result<Stat, SysError> {
    parse_stat(&read_text(&proc.join("stat"))?)
}

/// One line of `/proc/diskstats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStat {
    /// Device name (`sda`, `nvme0n1p1`).
    pub name: String,
    /// The 15 counters after the name, in kernel order: reads completed, reads merged, sectors
    /// read, ms reading, writes completed, writes merged, sectors written, ms writing, I/Os in
    /// progress, ms doing I/O, weighted ms doing I/O, discards completed, discards merged,
    /// sectors discarded, ms discarding.
    pub values: [u64; 15],
}

/// Parses `/proc/diskstats` text. Lines with fewer than 18 fields (kernels before 4.18, which
/// lack the discard counters) are skipped, as Talos does.
pub fn parse_diskstats(text: &str) -> Result<Vec<DiskStat>, SysError> {
    let mut disks = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 18 {
            continue;
        }
        let mut values = [0u64; 15];
        for (slot, field) in values.iter_mut().zip(&fields[3..18]) {
            *slot = field.parse().map_err(|_| {
                SysError::parse(
                    "diskstats",
                    format!("device {}: expected an integer, got {field:?}", fields[2]),
                )
            })?;
        }
        disks.push(DiskStat {
            name: fields[2].to_string(),
            values,
        });
    }
    Ok(disks)
}

/// Reads `<proc>/diskstats`.
pub fn read_diskstats(proc: &Path) -> Result<Vec<DiskStat>, SysError> {
    parse_diskstats(&read_text(&proc.join("diskstats"))?)
}

/// One interface of `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    /// Interface name.
    pub name: String,
    /// Receive counters: bytes, packets, errs, drop, fifo, frame, compressed, multicast.
    pub rx: [u64; 8],
    /// Transmit counters: bytes, packets, errs, drop, fifo, colls, carrier, compressed.
    pub tx: [u64; 8],
}

/// Parses `/proc/net/dev` text (two header lines, then `name: 16 counters`).
pub fn parse_net_dev(text: &str) -> Result<Vec<NetDev>, SysError> {
    let mut devs = Vec::new();
    for line in text.lines() {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.contains('|') || name.is_empty() {
            continue;
        }
        let values: Vec<u64> = counters
            .split_whitespace()
            .map(|f| {
                f.parse().map_err(|_| {
                    SysError::parse(
                        "net/dev",
                        format!("interface {name}: expected an integer, got {f:?}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        if values.len() < 16 {
            return Err(SysError::parse(
                "net/dev",
                format!(
                    "interface {name}: expected 16 counters, got {}",
                    values.len()
                ),
            ));
        }
        let mut dev = NetDev {
            name: name.to_string(),
            ..NetDev::default()
        };
        dev.rx.copy_from_slice(&values[..8]);
        dev.tx.copy_from_slice(&values[8..16]);
        devs.push(dev);
    }
    Ok(devs)
}

/// Reads `<proc>/net/dev`.
pub fn read_net_dev(proc: &Path) -> Result<Vec<NetDev>, SysError> {
    parse_net_dev(&read_text(&proc.join("net/dev"))?)
}

/// One line of `/proc/mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountEntry {
    /// The mounted filesystem (device or pseudo name).
    pub source: String,
    /// Where it is mounted.
    pub target: String,
    /// Filesystem type.
    pub fstype: String,
}

/// Undoes the kernel's octal escapes (`\040` for a space) in mount table fields.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(b) = u8::try_from(value) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/mounts` (or `/proc/self/mounts`) text.
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let source = fields.next()?;
            let target = fields.next()?;
            let fstype = fields.next().unwrap_or("");
            Some(MountEntry {
                source: unescape_octal(source),
                target: unescape_octal(target),
                fstype: fstype.to_string(),
            })
        })
        .collect()
}

/// Reads `<proc>/mounts`.
pub fn read_mounts(proc: &Path) -> Result<Vec<MountEntry>, SysError> {
    Ok(parse_mounts(&read_text(&proc.join("mounts"))?))
}

/// Seconds since boot, from `<proc>/uptime`.
pub fn read_uptime(proc: &Path) -> Result<f64, SysError> {
    let path = proc.join("uptime");
    let text = read_text(&path)?;
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| SysError::parse(path, "expected seconds since boot"))
}

#[cfg(test)]
mod tests;
