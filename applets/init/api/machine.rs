//! `machine.MachineService`: node facts from `/proc` and `/sys`, files, logs, kernel log,
//! events and the service table. File RPCs (List, Read, Copy, DiskUsage) live in
//! [`super::files`].

use std::sync::Arc;

use prost::Message as _;
use talos::api::common;
use talos::api::machine::{self as pb, machine_service_server::MachineService};
use talos::errors::chain;
use talos::events::{runtime_type_url, Tail, WatchOptions};
use talos::sys::{fs as sysfs, kmsg, process, procfs};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::{called, files, shutting_down, stream_channel, sys_status, Machined};
use crate::init::runtime::{ApplyRequest, PowerControl, PowerRequest, ServiceControl};

/// The gRPC service name, for messages.
const SERVICE: &str = "machine.MachineService";

/// The MachineService implementation.
pub struct MachineApi {
    state: Arc<Machined>,
}

impl MachineApi {
    /// Handlers over `state`.
    pub fn new(state: Arc<Machined>) -> Self {
        MachineApi { state }
    }

    fn service_control(&self) -> Result<&Arc<dyn ServiceControl>, Status> {
        self.state.service_control.as_ref().ok_or_else(|| {
            Status::unimplemented("services cannot be started or stopped: machined runs without a supervisor (--api-only)")
        })
    }

    fn power(&self) -> Result<&Arc<dyn PowerControl>, Status> {
        self.state.power.as_ref().ok_or_else(|| {
            Status::unimplemented(
                "machine.MachineService/Reboot, Shutdown and Reset are not available: machined runs without a sequencer (--api-only)",
            )
        })
    }
}

/// `GOARCH` naming of the architecture, as Talos reports it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

/// The version facts of this build.
pub fn version_info() -> pb::VersionInfo {
    pb::VersionInfo {
        tag: talos::version::TALOS_VERSION.into(),
        sha: option_env!("TALOS_GIT_SHA").unwrap_or_default().into(),
        built: String::new(),
        go_version: format!("talos-rs {}", talos::version::PKG_VERSION),
        os: std::env::consts::OS.into(),
        arch: go_arch().into(),
    }
}

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

fn cpu_info(c: &procfs::CpuInfo) -> pb::CpuInfo {
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

/// Largest chunk of log text sent in one message.
const LOG_CHUNK: usize = 64 * 1024;

/// `Events` options from the request, with Talos's rule that `tail_seconds` excludes the others.
pub fn watch_options(req: &pb::EventsRequest) -> Result<WatchOptions, Status> {
    if req.tail_seconds != 0 && (req.tail_events != 0 || !req.tail_id.is_empty()) {
        return Err(Status::invalid_argument(
            "tail_seconds can't be combined with tail_events or tail_id",
        ));
    }
    let tail = if req.tail_events != 0 {
        Tail::Count(req.tail_events)
    } else if !req.tail_id.is_empty() {
        let id = req
            .tail_id
            .parse()
            .map_err(|e| Status::invalid_argument(format!("error parsing tail_id: {e}")))?;
        Tail::Since(id)
    } else if req.tail_seconds > 0 {
        Tail::Duration(std::time::Duration::from_secs(req.tail_seconds as u64))
    } else {
        Tail::None
    };
    Ok(WatchOptions {
        tail,
        actor_id: Some(req.with_actor_id.clone()).filter(|a| !a.is_empty()),
    })
}

/// Publishes the ServiceStateEvent Talos emits when a service reaches a state.
pub fn publish_service_state(
    events: &talos::events::EventBus,
    service: &str,
    action: pb::service_state_event::Action,
    message: &str,
    healthy: bool,
) {
    let event = pb::ServiceStateEvent {
        service: service.into(),
        action: action as i32,
        message: message.into(),
        health: Some(pb::ServiceHealth {
            unknown: false,
            healthy,
            last_message: String::new(),
            last_change: Some(crate::init::services::timestamp(
                std::time::SystemTime::now(),
            )),
        }),
    };
    events.publish(
        &runtime_type_url("machine.ServiceStateEvent"),
        event.encode_to_vec(),
        "",
    );
}

/// Declares the MachineService impl: the hand-written RPCs, then one UNIMPLEMENTED override
/// per remaining RPC, each naming its method (the generated default does not).
macro_rules! machine_service {
    (
        { $($implemented:tt)* }
        unimplemented { $( $name:ident = $rpc:literal ( $req:ty ) -> $resp:ty ; )* }
    ) => {
        #[tonic::async_trait]
        impl MachineService for MachineApi {
            $($implemented)*

            $(
                async fn $name(
                    &self,
                    _request: Request<$req>,
                ) -> Result<Response<$resp>, Status> {
                    Err(super::unimplemented(SERVICE, $rpc))
                }
            )*
        }
    };
}

machine_service! {
    {
        async fn version(&self, request: Request<()>) -> Result<Response<pb::VersionResponse>, Status> {
            called(&request, "Version");
            Ok(Response::new(pb::VersionResponse {
                messages: vec![pb::Version {
                    metadata: None,
                    version: Some(version_info()),
                    platform: Some(pb::PlatformInfo {
                        name: self.state.platform.name.clone(),
                        mode: self.state.platform.mode.clone(),
                    }),
                    features: None,
                }],
            }))
        }

        async fn hostname(&self, request: Request<()>) -> Result<Response<pb::HostnameResponse>, Status> {
            called(&request, "Hostname");
            let hostname = sysfs::hostname().map_err(sys_status)?;
            Ok(Response::new(pb::HostnameResponse {
                messages: vec![pb::Hostname { metadata: None, hostname }],
            }))
        }

        async fn memory(&self, request: Request<()>) -> Result<Response<pb::MemoryResponse>, Status> {
            called(&request, "Memory");
            let m = procfs::read_meminfo(&self.state.proc_root).map_err(sys_status)?;
            Ok(Response::new(pb::MemoryResponse {
                messages: vec![pb::Memory { metadata: None, meminfo: Some(mem_info(&m)) }],
            }))
        }

        async fn load_avg(&self, request: Request<()>) -> Result<Response<pb::LoadAvgResponse>, Status> {
            called(&request, "LoadAvg");
            let l = procfs::read_loadavg(&self.state.proc_root).map_err(sys_status)?;
            Ok(Response::new(pb::LoadAvgResponse {
                messages: vec![pb::LoadAvg {
                    metadata: None,
                    load1: l.load1,
                    load5: l.load5,
                    load15: l.load15,
                }],
            }))
        }

        async fn cpu_info(&self, request: Request<()>) -> Result<Response<pb::CpuInfoResponse>, Status> {
            called(&request, "CPUInfo");
            let cpus = procfs::read_cpuinfo(&self.state.proc_root).map_err(sys_status)?;
            Ok(Response::new(pb::CpuInfoResponse {
                messages: vec![pb::CpUsInfo {
                    metadata: None,
                    cpu_info: cpus.iter().map(cpu_info).collect(),
                }],
            }))
        }

        async fn system_stat(&self, request: Request<()>) -> Result<Response<pb::SystemStatResponse>, Status> {
            called(&request, "SystemStat");
            let s = procfs::read_stat(&self.state.proc_root).map_err(sys_status)?;
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

        async fn network_device_stats(&self, request: Request<()>) -> Result<Response<pb::NetworkDeviceStatsResponse>, Status> {
            called(&request, "NetworkDeviceStats");
            let devs = procfs::read_net_dev(&self.state.proc_root).map_err(sys_status)?;
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

        async fn disk_stats(&self, request: Request<()>) -> Result<Response<pb::DiskStatsResponse>, Status> {
            called(&request, "DiskStats");
            let disks = procfs::read_diskstats(&self.state.proc_root).map_err(sys_status)?;
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
                    devices: disks.into_iter().map(|d| disk_stat(d.name, &d.values)).collect(),
                }],
            }))
        }

        async fn mounts(&self, request: Request<()>) -> Result<Response<pb::MountsResponse>, Status> {
            called(&request, "Mounts");
            let proc = self.state.proc_root.clone();
            let stats = super::blocking(move || {
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
                messages: vec![pb::Mounts { metadata: None, stats }],
            }))
        }

        async fn processes(&self, request: Request<()>) -> Result<Response<pb::ProcessesResponse>, Status> {
            called(&request, "Processes");
            let proc = self.state.proc_root.clone();
            let processes = super::blocking(move || {
                process::read_processes(&proc).map_err(sys_status)
            })
            .await?;
            Ok(Response::new(pb::ProcessesResponse {
                messages: vec![pb::Process {
                    metadata: None,
                    processes: processes.into_iter().map(process_info).collect(),
                }],
            }))
        }

        async fn list(&self, request: Request<pb::ListRequest>) -> Result<Response<BoxStream<pb::FileInfo>>, Status> {
            called(&request, "List");
            files::list(request.into_inner(), &self.state).await
        }

        async fn read(&self, request: Request<pb::ReadRequest>) -> Result<Response<BoxStream<common::Data>>, Status> {
            called(&request, "Read");
            files::read(request.into_inner()).await
        }

        async fn copy(&self, request: Request<pb::CopyRequest>) -> Result<Response<BoxStream<common::Data>>, Status> {
            called(&request, "Copy");
            files::copy(request.into_inner()).await
        }

        async fn disk_usage(&self, request: Request<pb::DiskUsageRequest>) -> Result<Response<BoxStream<pb::DiskUsageInfo>>, Status> {
            called(&request, "DiskUsage");
            files::disk_usage(request.into_inner()).await
        }

        async fn dmesg(&self, request: Request<pb::DmesgRequest>) -> Result<Response<BoxStream<common::Data>>, Status> {
            called(&request, "Dmesg");
            let req = request.into_inner();
            let boot = kmsg::boot_time(&self.state.proc_root).map_err(sys_status)?;
            let mut reader = kmsg::KmsgReader::open(&self.state.kmsg_path, req.follow, req.tail)
                .map_err(|e| {
                    let hint = " (reading the kernel log needs root or CAP_SYSLOG)";
                    let status = sys_status(e);
                    Status::new(status.code(), format!("{}{hint}", status.message()))
                })?;
            let (tx, stream) = stream_channel();
            let shutdown = self.state.shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let record = tokio::select! {
                        r = reader.next() => r,
                        () = tx.closed() => break,
                        () = shutting_down(shutdown.clone()) => break,
                    };
                    let data = match record {
                        None => break,
                        Some(Ok(r)) => common::Data { metadata: None, bytes: r.format(boot).into_bytes() },
                        Some(Err(e)) => common::Data {
                            metadata: Some(common::Metadata { error: chain(&e).to_string(), ..Default::default() }),
                            bytes: Vec::new(),
                        },
                    };
                    if tx.send(Ok(data)).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Response::new(stream))
        }

        async fn logs(&self, request: Request<pb::LogsRequest>) -> Result<Response<BoxStream<common::Data>>, Status> {
            called(&request, "Logs");
            let req = request.into_inner();
            if req.namespace == "k8s.io" || req.driver == common::ContainerDriver::Cri as i32 {
                return Err(super::unimplemented(SERVICE, "Logs (Kubernetes containers)"));
            }
            let buffer = self.state.logs.get(&req.id).ok_or_else(|| {
                Status::not_found(format!("log {:?} was not registered", req.id))
            })?;
            let tail = usize::try_from(req.tail_lines).ok();
            let (tx, stream) = stream_channel();
            if !req.follow {
                let lines = buffer.tail(tail);
                tokio::spawn(async move {
                    let mut chunk = Vec::new();
                    for line in lines {
                        if chunk.len() + line.len() > LOG_CHUNK && !chunk.is_empty() {
                            let data = common::Data { metadata: None, bytes: std::mem::take(&mut chunk) };
                            if tx.send(Ok(data)).await.is_err() {
                                return;
                            }
                        }
                        chunk.extend_from_slice(&line);
                    }
                    if !chunk.is_empty() {
                        let _ = tx.send(Ok(common::Data { metadata: None, bytes: chunk })).await;
                    }
                });
                return Ok(Response::new(stream));
            }
            let mut follower = buffer.follow(tail);
            let shutdown = self.state.shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let mut bytes = tokio::select! {
                        line = follower.next() => line,
                        () = tx.closed() => break,
                        () = shutting_down(shutdown.clone()) => break,
                    };
                    // Batch whatever else is already there.
                    while bytes.len() < LOG_CHUNK {
                        match follower.try_next() {
                            Some(line) => bytes.extend_from_slice(&line),
                            None => break,
                        }
                    }
                    if tx.send(Ok(common::Data { metadata: None, bytes })).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Response::new(stream))
        }

        async fn logs_containers(&self, request: Request<()>) -> Result<Response<pb::LogsContainersResponse>, Status> {
            called(&request, "LogsContainers");
            Ok(Response::new(pb::LogsContainersResponse {
                messages: vec![pb::LogsContainer { metadata: None, ids: self.state.logs.ids() }],
            }))
        }

        async fn events(&self, request: Request<pb::EventsRequest>) -> Result<Response<BoxStream<pb::Event>>, Status> {
            called(&request, "Events");
            let req = request.into_inner();
            let options = watch_options(&req)?;
            let mut subscription = self.state.events.subscribe(options);
            let hello = pb::Event {
                metadata: None,
                data: Some(prost_types::Any { type_url: String::new(), value: Vec::new() }),
                id: self.state.events.new_id().to_string(),
                actor_id: req.with_actor_id.clone(),
            };
            let (tx, stream) = stream_channel();
            let shutdown = self.state.shutdown.clone();
            tokio::spawn(async move {
                // Tells the client the stream is established before any event exists.
                if tx.send(Ok(hello)).await.is_err() {
                    return;
                }
                loop {
                    let event = tokio::select! {
                        e = subscription.next() => e,
                        () = tx.closed() => break,
                        () = shutting_down(shutdown.clone()) => break,
                    };
                    let Some(event) = event else { break };
                    let msg = pb::Event {
                        metadata: None,
                        data: Some(prost_types::Any { type_url: event.type_url, value: event.payload }),
                        id: event.id.to_string(),
                        actor_id: event.actor_id,
                    };
                    if tx.send(Ok(msg)).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Response::new(stream))
        }

        async fn service_start(&self, request: Request<pb::ServiceStartRequest>) -> Result<Response<pb::ServiceStartResponse>, Status> {
            called(&request, "ServiceStart");
            let id = request.into_inner().id;
            let resp = self.service_control()?.start(&id).await?;
            Ok(Response::new(pb::ServiceStartResponse { messages: vec![pb::ServiceStart { metadata: None, resp }] }))
        }

        async fn service_stop(&self, request: Request<pb::ServiceStopRequest>) -> Result<Response<pb::ServiceStopResponse>, Status> {
            called(&request, "ServiceStop");
            let id = request.into_inner().id;
            let resp = self.service_control()?.stop(&id).await?;
            Ok(Response::new(pb::ServiceStopResponse { messages: vec![pb::ServiceStop { metadata: None, resp }] }))
        }

        async fn service_restart(&self, request: Request<pb::ServiceRestartRequest>) -> Result<Response<pb::ServiceRestartResponse>, Status> {
            called(&request, "ServiceRestart");
            let id = request.into_inner().id;
            let resp = self.service_control()?.restart(&id).await?;
            Ok(Response::new(pb::ServiceRestartResponse { messages: vec![pb::ServiceRestart { metadata: None, resp }] }))
        }

        async fn reboot(&self, request: Request<pb::RebootRequest>) -> Result<Response<pb::RebootResponse>, Status> {
            called(&request, "Reboot");
            let powercycle = request.into_inner().mode() == pb::reboot_request::Mode::Powercycle;
            let actor_id = self.power()?.request(PowerRequest::Reboot { powercycle })?;
            Ok(Response::new(pb::RebootResponse { messages: vec![pb::Reboot { metadata: None, actor_id }] }))
        }

        async fn shutdown(&self, request: Request<pb::ShutdownRequest>) -> Result<Response<pb::ShutdownResponse>, Status> {
            called(&request, "Shutdown");
            let force = request.into_inner().force;
            let actor_id = self.power()?.request(PowerRequest::Shutdown { force })?;
            Ok(Response::new(pb::ShutdownResponse { messages: vec![pb::Shutdown { metadata: None, actor_id }] }))
        }

        async fn reset(&self, request: Request<pb::ResetRequest>) -> Result<Response<pb::ResetResponse>, Status> {
            called(&request, "Reset");
            let req = request.into_inner();
            let system_labels = req.system_partitions_to_wipe.iter().map(|p| p.label.clone()).collect();
            let actor_id = self.power()?.request(PowerRequest::Reset { graceful: req.graceful, reboot: req.reboot, system_labels })?;
            Ok(Response::new(pb::ResetResponse { messages: vec![pb::Reset { metadata: None, actor_id }] }))
        }

        async fn apply_configuration(&self, request: Request<pb::ApplyConfigurationRequest>) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
            called(&request, "ApplyConfiguration");
            let req = request.into_inner();
            let mode = req.mode();
            let control = self.state.config_control.as_ref().ok_or_else(|| Status::unimplemented("ApplyConfiguration is not available: machined runs without a sequencer (--api-only)"))?;
            let outcome = control.apply(ApplyRequest { data: req.data, mode, dry_run: req.dry_run }).await?;
            Ok(Response::new(pb::ApplyConfigurationResponse {
                messages: vec![pb::ApplyConfiguration { metadata: None, warnings: outcome.warnings, mode: outcome.mode as i32, mode_details: outcome.mode_details }],
            }))
        }

        async fn service_list(&self, request: Request<()>) -> Result<Response<pb::ServiceListResponse>, Status> {
            called(&request, "ServiceList");
            Ok(Response::new(pb::ServiceListResponse {
                messages: vec![pb::ServiceList { metadata: None, services: self.state.services.list() }],
            }))
        }
    }
    unimplemented {
        bootstrap = "Bootstrap" (pb::BootstrapRequest) -> pb::BootstrapResponse;
        containers = "Containers" (pb::ContainersRequest) -> pb::ContainersResponse;
        etcd_member_list = "EtcdMemberList" (pb::EtcdMemberListRequest) -> pb::EtcdMemberListResponse;
        etcd_remove_member_by_id = "EtcdRemoveMemberByID" (pb::EtcdRemoveMemberByIdRequest) -> pb::EtcdRemoveMemberByIdResponse;
        etcd_leave_cluster = "EtcdLeaveCluster" (pb::EtcdLeaveClusterRequest) -> pb::EtcdLeaveClusterResponse;
        etcd_forfeit_leadership = "EtcdForfeitLeadership" (pb::EtcdForfeitLeadershipRequest) -> pb::EtcdForfeitLeadershipResponse;
        etcd_recover = "EtcdRecover" (Streaming<common::Data>) -> pb::EtcdRecoverResponse;
        etcd_snapshot = "EtcdSnapshot" (pb::EtcdSnapshotRequest) -> BoxStream<common::Data>;
        etcd_alarm_list = "EtcdAlarmList" (()) -> pb::EtcdAlarmListResponse;
        etcd_alarm_disarm = "EtcdAlarmDisarm" (()) -> pb::EtcdAlarmDisarmResponse;
        etcd_defragment = "EtcdDefragment" (()) -> pb::EtcdDefragmentResponse;
        etcd_status = "EtcdStatus" (()) -> pb::EtcdStatusResponse;
        generate_configuration = "GenerateConfiguration" (pb::GenerateConfigurationRequest) -> pb::GenerateConfigurationResponse;
        kubeconfig = "Kubeconfig" (()) -> BoxStream<common::Data>;
        restart = "Restart" (pb::RestartRequest) -> pb::RestartResponse;
        rollback = "Rollback" (pb::RollbackRequest) -> pb::RollbackResponse;
        stats = "Stats" (pb::StatsRequest) -> pb::StatsResponse;
        upgrade = "Upgrade" (pb::UpgradeRequest) -> pb::UpgradeResponse;
        generate_client_configuration = "GenerateClientConfiguration" (pb::GenerateClientConfigurationRequest) -> pb::GenerateClientConfigurationResponse;
        packet_capture = "PacketCapture" (pb::PacketCaptureRequest) -> BoxStream<common::Data>;
        netstat = "Netstat" (pb::NetstatRequest) -> pb::NetstatResponse;
        meta_write = "MetaWrite" (pb::MetaWriteRequest) -> pb::MetaWriteResponse;
        meta_delete = "MetaDelete" (pb::MetaDeleteRequest) -> pb::MetaDeleteResponse;
        image_list = "ImageList" (pb::ImageListRequest) -> BoxStream<pb::ImageListResponse>;
        image_pull = "ImagePull" (pb::ImagePullRequest) -> pb::ImagePullResponse;
    }
}
