//! Node statistics: `memory`, `processes`, `mounts`, `disks`, `time`.

use talos::api::machine as pb;

use super::format::{humanize_bytes, TabWriter};
use super::session::{self, NodeErrors, Session};
use super::Global;

/// Flags of `memory`.
#[derive(Debug, clap::Args)]
pub struct MemoryArgs {
    /// Display extended memory statistics.
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Flags of `processes`.
#[derive(Debug, clap::Args)]
pub struct ProcessesArgs {
    /// Column to sort output by. [rss|cpu]
    #[arg(short = 's', long, default_value = "rss")]
    sort: String,
}

/// Flags of `disks`.
#[derive(Debug, clap::Args)]
pub struct DisksArgs {
    /// Get disks using the insecure (encrypted with no auth) maintenance service.
    #[arg(short = 'i', long)]
    insecure: bool,
}

/// Flags of `time`.
#[derive(Debug, clap::Args)]
pub struct TimeArgs {
    /// Checks server time against specified ntp server.
    #[arg(short = 'c', long)]
    check: Option<String>,
}

/// Runs `memory`.
pub fn memory(args: MemoryArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let resp = s
            .client
            .machine()
            .memory(s.request(())?)
            .await
            .map_err(|e| session::call_error("error getting memory stats", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let messages = session::partition(&s, &mut errors, resp.messages, |m| m.metadata.as_ref());
        if args.verbose {
            for msg in &messages {
                print!(
                    "{}",
                    verbose_memory(&s.node_of(msg.metadata.as_ref()), msg.meminfo.as_ref())
                );
            }
        } else {
            let mut w = TabWriter::new();
            w.line("NODE\tTOTAL\tUSED\tFREE\tSHARED\tBUFFERS\tCACHE\tAVAILABLE");
            for msg in &messages {
                let m = msg.meminfo.unwrap_or_default();
                let used = m
                    .memtotal
                    .wrapping_sub(m.memfree)
                    .wrapping_sub(m.cached)
                    .wrapping_sub(m.buffers);
                w.line(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.node_of(msg.metadata.as_ref()),
                    m.memtotal / 1024,
                    used / 1024,
                    m.memfree / 1024,
                    m.shmem / 1024,
                    m.buffers / 1024,
                    m.cached / 1024,
                    m.memavailable / 1024
                ));
            }
            w.print();
        }
        errors.finish()
    })
}

fn verbose_memory(node: &str, m: Option<&pb::MemInfo>) -> String {
    let m = m.cloned().unwrap_or_default();
    let kb: [(&str, u64); 40] = [
        ("MemTotal", m.memtotal),
        ("MemFree", m.memfree),
        ("MemAvailable", m.memavailable),
        ("Buffers", m.buffers),
        ("Cached", m.cached),
        ("SwapCached", m.swapcached),
        ("Active", m.active),
        ("Inactive", m.inactive),
        ("ActiveAnon", m.activeanon),
        ("InactiveAnon", m.inactiveanon),
        ("ActiveFile", m.activefile),
        ("InactiveFile", m.inactivefile),
        ("Unevictable", m.unevictable),
        ("Mlocked", m.mlocked),
        ("SwapTotal", m.swaptotal),
        ("SwapFree", m.swapfree),
        ("Dirty", m.dirty),
        ("Writeback", m.writeback),
        ("AnonPages", m.anonpages),
        ("Mapped", m.mapped),
        ("Shmem", m.shmem),
        ("Slab", m.slab),
        ("SReclaimable", m.sreclaimable),
        ("SUnreclaim", m.sunreclaim),
        ("KernelStack", m.kernelstack),
        ("PageTables", m.pagetables),
        ("NFSUnstable", m.nfsunstable),
        ("Bounce", m.bounce),
        ("WritebackTmp", m.writebacktmp),
        ("CommitLimit", m.commitlimit),
        ("CommittedAS", m.committedas),
        ("VmallocTotal", m.vmalloctotal),
        ("VmallocUsed", m.vmallocused),
        ("VmallocChunk", m.vmallocchunk),
        ("HardwareCorrupted", m.hardwarecorrupted),
        ("AnonHugePages", m.anonhugepages),
        ("ShmemHugePages", m.shmemhugepages),
        ("ShmemPmdMapped", m.shmempmdmapped),
        ("CmaTotal", m.cmatotal),
        ("CmaFree", m.cmafree),
    ];
    let mut out = format!("NODE: {node}\n");
    for (k, v) in kb {
        out.push_str(&format!("{k}: {v} kB\n"));
    }
    for (k, v) in [
        ("HugePagesTotal", m.hugepagestotal),
        ("HugePagesFree", m.hugepagesfree),
        ("HugePagesRsvd", m.hugepagesrsvd),
        ("HugePagesSurp", m.hugepagessurp),
    ] {
        out.push_str(&format!("{k}: {v}\n"));
    }
    for (k, v) in [
        ("Hugepagesize", m.hugepagesize),
        ("DirectMap4k", m.directmap4k),
        ("DirectMap2M", m.directmap2m),
        ("DirectMap1G", m.directmap1g),
    ] {
        out.push_str(&format!("{k}: {v} kB\n"));
    }
    out
}

/// The command line talosctl shows for a process.
fn process_command(p: &pb::ProcessInfo) -> String {
    if p.executable.is_empty() {
        return p.command.clone();
    }
    let first_arg = p.args.split_whitespace().next();
    let exe = p.executable.split_whitespace().next().unwrap_or_default();
    let exe_base = exe.rsplit('/').next().unwrap_or_default();
    match first_arg {
        Some(first) if first == exe_base => p.args.replacen(first, &p.executable, 1),
        _ => p.args.clone(),
    }
}

/// Aligns `|`-separated lines like Go's columnize (cells trimmed, two-space glue).
fn columnize(lines: &[String]) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            if i >= widths.len() {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push(line);
    }
    out.join("\n")
}

/// Runs `processes`.
pub fn processes(args: ProcessesArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let resp = s
            .client
            .machine()
            .processes(s.request(())?)
            .await
            .map_err(|e| session::call_error("error getting processes", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let messages = session::partition(&s, &mut errors, resp.messages, |m| m.metadata.as_ref());
        let mut lines = vec![
            "NODE | PID | STATE | THREADS | CPU-TIME | VIRTMEM | RESMEM | COMMAND".to_string(),
        ];
        for msg in messages {
            let node = s.node_of(msg.metadata.as_ref());
            let mut procs = msg.processes;
            if args.sort == "cpu" {
                procs.sort_by(|a, b| b.cpu_time.total_cmp(&a.cpu_time));
            } else {
                procs.sort_by_key(|p| std::cmp::Reverse(p.resident_memory));
            }
            for p in &procs {
                lines.push(format!(
                    "{node:>12} | {:>6} | {:>1} | {:>4} | {:>8.2} | {:>7} | {:>7} | {}",
                    p.pid,
                    p.state,
                    p.threads,
                    p.cpu_time,
                    humanize_bytes(p.virtual_memory),
                    humanize_bytes(p.resident_memory),
                    process_command(p)
                ));
            }
        }
        println!("{}", columnize(&lines));
        errors.finish()
    })
}

/// Runs `mounts`.
pub fn mounts(global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let resp = s
            .client
            .machine()
            .mounts(s.request(())?)
            .await
            .map_err(|e| session::call_error("error getting mount information", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let messages = session::partition(&s, &mut errors, resp.messages, |m| m.metadata.as_ref());
        let mut w = TabWriter::new();
        w.line("NODE\tFILESYSTEM\tSIZE(GB)\tUSED(GB)\tAVAILABLE(GB)\tPERCENT USED\tMOUNTED ON");
        for msg in &messages {
            let node = s.node_of(msg.metadata.as_ref());
            for r in &msg.stats {
                let used_pct = 100.0 - 100.0 * (r.available as f64 / r.size as f64);
                if used_pct.is_nan() {
                    continue;
                }
                w.line(&format!(
                    "{node}\t{}\t{:.2}\t{:.2}\t{:.2}\t{:.2}%\t{}",
                    r.filesystem,
                    r.size as f64 * 1e-9,
                    r.size.saturating_sub(r.available) as f64 * 1e-9,
                    r.available as f64 * 1e-9,
                    used_pct,
                    r.mounted_on
                ));
            }
        }
        w.print();
        errors.finish()
    })
}

fn dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Runs `disks`.
pub fn disks(args: DisksArgs, global: &Global) -> anyhow::Result<()> {
    let insecure: Option<&[String]> = if args.insecure { Some(&[]) } else { None };
    session::runtime()?.block_on(async {
        let s = Session::open(global, insecure).await?;
        let resp = s
            .client
            .storage()
            .disks(s.request(())?)
            .await
            .map_err(|e| session::call_error("error getting disks", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let messages = session::partition(&s, &mut errors, resp.messages, |m| m.metadata.as_ref());
        let labels = "DEV\tMODEL\tSERIAL\tTYPE\tUUID\tWWID\tMODALIAS\tNAME\tSIZE\tBUS_PATH\tSUBSYSTEM\tREAD_ONLY\tSYSTEM_DISK";
        let mut w = TabWriter::new();
        let mut node = String::new();
        let mut header = false;
        for msg in &messages {
            if let Some(md) = msg.metadata.as_ref().filter(|m| !m.hostname.is_empty()) {
                node.clone_from(&md.hostname);
            }
            for disk in &msg.disks {
                if !header {
                    if node.is_empty() {
                        w.line(labels);
                    } else {
                        w.line(&format!("NODE\t{labels}"));
                    }
                    header = true;
                }
                let mut cells: Vec<String> = Vec::new();
                if !node.is_empty() {
                    cells.push(node.clone());
                }
                let kind = talos::api::storage::disk::DiskType::try_from(disk.r#type)
                    .map(|t| t.as_str_name().to_string())
                    .unwrap_or_else(|_| disk.r#type.to_string());
                cells.extend(
                    [
                        dash(&disk.device_name),
                        dash(&disk.model),
                        dash(&disk.serial),
                        &kind,
                        dash(&disk.uuid),
                        dash(&disk.wwid),
                        dash(&disk.modalias),
                        dash(&disk.name),
                        &humanize_bytes(disk.size),
                        dash(&disk.bus_path),
                        dash(&disk.subsystem),
                        if disk.readonly { "*" } else { "" },
                        if disk.system_disk { "*" } else { "" },
                    ]
                    .map(str::to_string),
                );
                w.row(&cells);
            }
        }
        w.print();
        errors.finish()
    })
}

/// Go's `time.Time.String()` of a UTC instant: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string(ts: &prost_types::Timestamp) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ts.seconds) else {
        return format!("{}s", ts.seconds);
    };
    let mut frac = String::new();
    if ts.nanos > 0 {
        frac = format!(".{:09}", ts.nanos);
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Runs `time`.
pub fn time_cmd(args: TimeArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let mut client = s.client.time();
        let resp = match &args.check {
            None => client.time(s.request(())?).await,
            Some(server) => {
                client
                    .time_check(s.request(talos::api::time::TimeRequest {
                        server: server.clone(),
                    })?)
                    .await
            }
        }
        .map_err(|e| session::call_error("error fetching time", e))?
        .into_inner();
        let mut errors = NodeErrors::default();
        let messages = session::partition(&s, &mut errors, resp.messages, |m| m.metadata.as_ref());
        let mut w = TabWriter::new();
        w.line("NODE\tNTP-SERVER\tNODE-TIME\tNTP-SERVER-TIME");
        for msg in &messages {
            let Some(local) = &msg.localtime else {
                anyhow::bail!(
                    "error parsing local time in the reply of {}",
                    s.node_of(msg.metadata.as_ref())
                );
            };
            // A node without a time server gives no remote time: leave the cell empty.
            let remote = msg
                .remotetime
                .as_ref()
                .map(go_time_string)
                .unwrap_or_default();
            w.line(&format!(
                "{}\t{}\t{}\t{remote}",
                s.node_of(msg.metadata.as_ref()),
                msg.server,
                go_time_string(local),
            ));
        }
        w.print();
        errors.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_command_like_talosctl() {
        let p = |command: &str, exe: &str, args: &str| pb::ProcessInfo {
            command: command.into(),
            executable: exe.into(),
            args: args.into(),
            ..Default::default()
        };
        assert_eq!(process_command(&p("kthreadd", "", "")), "kthreadd");
        assert_eq!(
            process_command(&p("apid", "/sbin/apid", "apid --x")),
            "/sbin/apid --x"
        );
        assert_eq!(process_command(&p("sh", "/bin/bash", "sh -c x")), "sh -c x");
    }

    #[test]
    fn columnize_like_go() {
        let lines = vec!["A | BB | C".to_string(), "  xxx | y | zzzz".to_string()];
        assert_eq!(columnize(&lines), "A    BB  C\nxxx  y   zzzz");
    }

    #[test]
    fn time_strings() {
        let ts = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 120_000_000,
        };
        assert_eq!(go_time_string(&ts), "2023-11-14 22:13:20.12 +0000 UTC");
        let ts = prost_types::Timestamp {
            seconds: 0,
            nanos: 0,
        };
        assert_eq!(go_time_string(&ts), "1970-01-01 00:00:00 +0000 UTC");
    }
}
