//! Node facts read from `/proc` and `/sys`: `Version`, `Hostname`, `Memory`, `LoadAvg`,
//! `CPUInfo`, `SystemStat`, `NetworkDeviceStats`, `DiskStats`, `Mounts`, `Processes`.

use talos::api::machine as pb;
use talos::sys::{fs as sysfs, process, procfs};
use tonic::{Request, Response, Status};

use crate::init::api::{blocking, called, sys_status, Machined};

fn mem_info(m: &procfs::MemInfo) -> pb::MemInfo {
    pb::MemInfo {
        memtotal: m.get("MemTotal"),
        memfree: m.get("MemFree"),
        memavailable: m.get("MemAvailable"),
        buffers: m.get("Buffers"),
        cached: m.get("Cached"),
        swapcached: m.get("SwapCached"),
        active: m.get("Active"),
        inactive: m.get("Inactive"),
        activeanon: m.get("Active(anon)"),
        inactiveanon: m.get("Inactive(anon)"),
        activefile: m.get("Active(file)"),
        inactivefile: m.get("Inactive(file)"),
        unevictable: m.get("Unevictable"),
        mlocked: m.get("Mlocked"),
        swaptotal: m.get("SwapTotal"),
        swapfree: m.get("SwapFree"),
        dirty: m.get("Dirty"),
        writeback: m.get("Writeback"),
        anonpages: m.get("AnonPages"),
        mapped: m.get("Mapped"),
        shmem: m.get("Shmem"),
        slab: m.get("Slab"),
        sreclaimable: m.get("SReclaimable"),
        sunreclaim: m.get("SUnreclaim"),
        kernelstack: m.get("KernelStack"),
        pagetables: m.get("PageTables"),
        nfsunstable: m.get("NFS_Unstable"),
        bounce: m.get("Bounce"),
        writebacktmp: m.get("WritebackTmp"),
        commitlimit: m.get("CommitLimit"),
        committedas: m.get("Committed_AS"),
        vmalloctotal: m.get("VmallocTotal"),
        vmallocused: m.get("VmallocUsed"),
        vmallocchunk: m.get("VmallocChunk"),
        hardwarecorrupted: m.get("HardwareCorrupted"),
        anonhugepages: m.get("AnonHugePages"),
        shmemhugepages: m.get("ShmemHugePages"),
        shmempmdmapped: m.get("ShmemPmdMapped"),
        cmatotal: m.get("CmaTotal"),
        cmafree: m.get("CmaFree"),
        hugepagestotal: m.get("HugePages_Total"),
        hugepagesfree: m.get("HugePages_Free"),
        hugepagesrsvd: m.get("HugePages_Rsvd"),
        hugepagessurp: m.get("HugePages_Surp"),
        hugepagesize: m.get("Hugepagesize"),
        directmap4k: m.get("DirectMap4k"),
        directmap2m: m.get("DirectMap2M"),
        directmap1g: m.get("DirectMap1G"),
    }
}

fn cpu_stat(c: &procfs::CpuTimes) -> pb::CpuStat {
    pb::CpuStat {
        user: c.user,
        nice: c.nice,
        system: c.system,
        idle: c.idle,
        iowait: c.iowait,
        irq: c.irq,
        soft_irq: c.softirq,
        steal: c.steal,
        guest: c.guest,
        guest_nice: c.guest_nice,
    }
}

fn cpu_info_message(c: &procfs::CpuInfo) -> pb::CpuInfo {
    pb::CpuInfo {
        processor: c.number("processor"),
        vendor_id: c.get("vendor_id").into(),
        cpu_family: c.get("cpu family").into(),
        model: c.get("model").into(),
        model_name: c.get("model name").into(),
        stepping: c.get("stepping").into(),
        microcode: c.get("microcode").into(),
        cpu_mhz: c.number("cpu MHz"),
        cache_size: c.get("cache size").into(),
        physical_id: c.get("physical id").into(),
        siblings: c.number("siblings"),
        core_id: c.get("core id").into(),
        cpu_cores: c.number("cpu cores"),
        apic_id: c.get("apicid").into(),
        initial_apic_id: c.get("initial apicid").into(),
        fpu: c.get("fpu").into(),
        fpu_exception: c.get("fpu_exception").into(),
        cpu_id_level: c.number("cpuid level"),
        wp: c.get("wp").into(),
        flags: c.words("flags"),
        bugs: c.words("bugs"),
        bogo_mips: c.number("bogomips"),
        cl_flush_size: c.number("clflush size"),
        cache_alignment: c.number("cache_alignment"),
        address_sizes: c.get("address sizes").into(),
        power_management: c.get("power management").into(),
    }
}

fn net_dev(d: &procfs::NetDev) -> pb::NetDev {
    pb::NetDev {
        name: d.name.clone(),
        rx_bytes: d.rx[0],
        rx_packets: d.rx[1],
        rx_errors: d.rx[2],
        rx_dropped: d.rx[3],
        rx_fifo: d.rx[4],
        rx_frame: d.rx[5],
        rx_compressed: d.rx[6],
        rx_multicast: d.rx[7],
        tx_bytes: d.tx[0],
        tx_packets: d.tx[1],
        tx_errors: d.tx[2],
        tx_dropped: d.tx[3],
        tx_fifo: d.tx[4],
        tx_collisions: d.tx[5],
        tx_carrier: d.tx[6],
        tx_compressed: d.tx[7],
    }
}

fn disk_stat(name: String, v: &[u64; 15]) -> pb::DiskStat {
    pb::DiskStat {
        name,
        read_completed: v[0],
        read_merged: v[1],
        read_sectors: v[2],
        read_time_ms: v[3],
        write_completed: v[4],
        write_merged: v[5],
        write_sectors: v[6],
        write_time_ms: v[7],
        io_in_progress: v[8],
        io_time_ms: v[9],
        io_time_weighted_ms: v[10],
        discard_completed: v[11],
        discard_merged: v[12],
        discard_sectors: v[13],
        discard_time_ms: v[14],
    }
}

fn process_info(p: process::Process) -> pb::ProcessInfo {
    pb::ProcessInfo {
        pid: p.pid,
        ppid: p.ppid,
        state: p.state,
        threads: p.threads,
        cpu_time: p.cpu_time,
        virtual_memory: p.virtual_memory,
        resident_memory: p.resident_memory,
        command: p.command,
        executable: p.executable,
        args: p.args,
    }
}

/// `Version`.
pub async fn version(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::VersionResponse>, Status> {
    called(&request, "Version");
    Ok(Response::new(pb::VersionResponse {
        messages: vec![pb::Version {
            metadata: None,
            version: Some(talos::version::version_info()),
            platform: Some(pb::PlatformInfo {
                name: state.platform.name.clone(),
                mode: state.platform.mode.clone(),
            }),
            features: None,
        }],
    }))
}

/// `Hostname`.
pub async fn hostname(request: Request<()>) -> Result<Response<pb::HostnameResponse>, Status> {
    called(&request, "Hostname");
    let hostname = sysfs::hostname().map_err(sys_status)?;
    Ok(Response::new(pb::HostnameResponse {
        messages: vec![pb::Hostname {
            metadata: None,
            hostname,
        }],
    }))
}

/// `Memory`.
pub async fn memory(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::MemoryResponse>, Status> {
    called(&request, "Memory");
    let m = procfs::read_meminfo(&state.proc_root).map_err(sys_status)?;
    Ok(Response::new(pb::MemoryResponse {
        messages: vec![pb::Memory {
            metadata: None,
            meminfo: Some(mem_info(&m)),
        }],
    }))
}

/// `LoadAvg`.
pub async fn load_avg(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::LoadAvgResponse>, Status> {
    called(&request, "LoadAvg");
    let l = procfs::read_loadavg(&state.proc_root).map_err(sys_status)?;
    Ok(Response::new(pb::LoadAvgResponse {
        messages: vec![pb::LoadAvg {
            metadata: None,
            load1: l.load1,
            load5: l.load5,
            load15: l.load15,
        }],
    }))
}

/// `CPUInfo`.
pub async fn cpu_info(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::CpuInfoResponse>, Status> {
    called(&request, "CPUInfo");
    let cpus = procfs::read_cpuinfo(&state.proc_root).map_err(sys_status)?;
    Ok(Response::new(pb::CpuInfoResponse {
        messages: vec![pb::CpUsInfo {
            metadata: None,
            cpu_info: cpus.iter().map(cpu_info_message).collect(),
        }],
    }))
}

/// `SystemStat`.
pub async fn system_stat(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::SystemStatResponse>, Status> {
    called(&request, "SystemStat");
    let s = procfs::read_stat(&state.proc_root).map_err(sys_status)?;
    let si = s.softirq;
    Ok(Response::new(pb::SystemStatResponse {
        messages: vec![pb::SystemStat {
            metadata: None,
            boot_time: s.boot_time,
            cpu_total: Some(cpu_stat(&s.cpu_total)),
            cpu: s.cpu.iter().map(cpu_stat).collect(),
            irq_total: s.irq_total,
            irq: s.irq,
            context_switches: s.context_switches,
            process_created: s.processes_created,
            process_running: s.processes_running,
            process_blocked: s.processes_blocked,
            soft_irq_total: s.softirq_total,
            soft_irq: Some(pb::SoftIrqStat {
                hi: si.hi,
                timer: si.timer,
                net_tx: si.net_tx,
                net_rx: si.net_rx,
                block: si.block,
                block_io_poll: si.block_io_poll,
                tasklet: si.tasklet,
                sched: si.sched,
                hrtimer: si.hrtimer,
                rcu: si.rcu,
            }),
        }],
    }))
}

/// `NetworkDeviceStats`.
pub async fn network_device_stats(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::NetworkDeviceStatsResponse>, Status> {
    called(&request, "NetworkDeviceStats");
    let devs = procfs::read_net_dev(&state.proc_root).map_err(sys_status)?;
    let mut total = procfs::NetDev::default();
    for d in &devs {
        for i in 0..8 {
            total.rx[i] += d.rx[i];
            total.tx[i] += d.tx[i];
        }
    }
    Ok(Response::new(pb::NetworkDeviceStatsResponse {
        messages: vec![pb::NetworkDeviceStats {
            metadata: None,
            total: Some(net_dev(&total)),
            devices: devs.iter().map(net_dev).collect(),
        }],
    }))
}

/// `DiskStats`.
pub async fn disk_stats(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::DiskStatsResponse>, Status> {
    called(&request, "DiskStats");
    let disks = procfs::read_diskstats(&state.proc_root).map_err(sys_status)?;
    let mut total = [0u64; 15];
    for d in &disks {
        for (t, v) in total.iter_mut().zip(d.values) {
            *t += v;
        }
    }
    Ok(Response::new(pb::DiskStatsResponse {
        messages: vec![pb::DiskStats {
            metadata: None,
            total: Some(disk_stat(String::new(), &total)),
            devices: disks
                .into_iter()
                .map(|d| disk_stat(d.name, &d.values))
                .collect(),
        }],
    }))
}

/// `Mounts`.
pub async fn mounts(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::MountsResponse>, Status> {
    called(&request, "Mounts");
    let proc = state.proc_root.clone();
    let stats = blocking(move || {
        let mounts = procfs::read_mounts(&proc).map_err(sys_status)?;
        Ok(mounts
            .into_iter()
            .map(|m| {
                let target = std::path::Path::new(&m.target);
                // Like Talos: sizes only for directories, zero when statfs fails.
                let size = if target.is_dir() {
                    sysfs::statfs(target).unwrap_or_default()
                } else {
                    sysfs::FsSize::default()
                };
                pb::MountStat {
                    filesystem: m.source,
                    size: size.size,
                    available: size.available,
                    mounted_on: m.target,
                }
            })
            .collect())
    })
    .await?;
    Ok(Response::new(pb::MountsResponse {
        messages: vec![pb::Mounts {
            metadata: None,
            stats,
        }],
    }))
}

/// `Processes`.
pub async fn processes(
    state: &Machined,
    request: Request<()>,
) -> Result<Response<pb::ProcessesResponse>, Status> {
    called(&request, "Processes");
    let proc = state.proc_root.clone();
    let processes = blocking(move || process::read_processes(&proc).map_err(sys_status)).await?;
    Ok(Response::new(pb::ProcessesResponse {
        messages: vec![pb::Process {
            metadata: None,
            processes: processes.into_iter().map(process_info).collect(),
        }],
    }))
}
