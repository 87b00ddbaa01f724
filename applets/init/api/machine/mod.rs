//! `machine.MachineService`, one module per area:
//!
//! | module | RPCs |
//! |---|---|
//! | [`system`] | `Version`, `Hostname`, `Memory`, `LoadAvg`, `CPUInfo`, `SystemStat`, `NetworkDeviceStats`, `DiskStats`, `Mounts`, `Processes` |
//! | [`super::files`] | `List`, `Read`, `Copy`, `DiskUsage` |
//! | [`logs`] | `Dmesg`, `Logs`, `LogsContainers` |
//! | [`events`] | `Events` |
//! | [`services`] | `ServiceList`, `ServiceStart`, `ServiceStop`, `ServiceRestart` |
//! | [`power`] | `Reboot`, `Shutdown`, `Reset` |
//! | [`config`] | `ApplyConfiguration` |
//! | [`kubeconfig`] | `Kubeconfig` |
//!
//! The trait impl below only dispatches; every other RPC answers `UNIMPLEMENTED` naming its
//! method.

mod config;
mod events;
mod kubeconfig;
mod logs;
mod power;
mod services;
mod system;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use talos::api::common;
use talos::api::machine::{self as pb, machine_service_server::MachineService};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::{called, files, Machined};

pub use events::publish_service_state;

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
}

/// One `UNIMPLEMENTED` override per RPC this build does not answer, naming its method (the
/// generated default does not). Each is written as `#[tonic::async_trait]` expands an
/// `async fn`, because the attribute cannot see into a macro.
macro_rules! unimplemented_rpcs {
    ($( $name:ident = $rpc:literal ( $req:ty ) -> $resp:ty ; )*) => {
        $(
            fn $name<'life0, 'async_trait>(
                &'life0 self,
                _request: Request<$req>,
            ) -> Pin<Box<dyn Future<Output = Result<Response<$resp>, Status>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async move { Err(super::unimplemented(SERVICE, $rpc)) })
            }
        )*
    };
}

#[tonic::async_trait]
impl MachineService for MachineApi {
    async fn version(&self, request: Request<()>) -> Result<Response<pb::VersionResponse>, Status> {
        system::version(&self.state, request).await
    }

    async fn hostname(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::HostnameResponse>, Status> {
        system::hostname(request).await
    }

    async fn memory(&self, request: Request<()>) -> Result<Response<pb::MemoryResponse>, Status> {
        system::memory(&self.state, request).await
    }

    async fn load_avg(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::LoadAvgResponse>, Status> {
        system::load_avg(&self.state, request).await
    }

    async fn cpu_info(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::CpuInfoResponse>, Status> {
        system::cpu_info(&self.state, request).await
    }

    async fn system_stat(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::SystemStatResponse>, Status> {
        system::system_stat(&self.state, request).await
    }

    async fn network_device_stats(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::NetworkDeviceStatsResponse>, Status> {
        system::network_device_stats(&self.state, request).await
    }

    async fn disk_stats(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::DiskStatsResponse>, Status> {
        system::disk_stats(&self.state, request).await
    }

    async fn mounts(&self, request: Request<()>) -> Result<Response<pb::MountsResponse>, Status> {
        system::mounts(&self.state, request).await
    }

    async fn processes(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::ProcessesResponse>, Status> {
        system::processes(&self.state, request).await
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<BoxStream<pb::FileInfo>>, Status> {
        called(&request, "List");
        files::list(request.into_inner(), &self.state).await
    }

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        called(&request, "Read");
        files::read(request.into_inner()).await
    }

    async fn copy(
        &self,
        request: Request<pb::CopyRequest>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        called(&request, "Copy");
        files::copy(request.into_inner()).await
    }

    async fn disk_usage(
        &self,
        request: Request<pb::DiskUsageRequest>,
    ) -> Result<Response<BoxStream<pb::DiskUsageInfo>>, Status> {
        called(&request, "DiskUsage");
        files::disk_usage(request.into_inner()).await
    }

    async fn dmesg(
        &self,
        request: Request<pb::DmesgRequest>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        logs::dmesg(&self.state, request).await
    }

    async fn logs(
        &self,
        request: Request<pb::LogsRequest>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        logs::logs(&self.state, request).await
    }

    async fn logs_containers(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::LogsContainersResponse>, Status> {
        logs::logs_containers(&self.state, request).await
    }

    async fn events(
        &self,
        request: Request<pb::EventsRequest>,
    ) -> Result<Response<BoxStream<pb::Event>>, Status> {
        events::events(&self.state, request).await
    }

    async fn service_list(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::ServiceListResponse>, Status> {
        services::service_list(&self.state, request).await
    }

    async fn service_start(
        &self,
        request: Request<pb::ServiceStartRequest>,
    ) -> Result<Response<pb::ServiceStartResponse>, Status> {
        services::service_start(&self.state, request).await
    }

    async fn service_stop(
        &self,
        request: Request<pb::ServiceStopRequest>,
    ) -> Result<Response<pb::ServiceStopResponse>, Status> {
        services::service_stop(&self.state, request).await
    }

    async fn service_restart(
        &self,
        request: Request<pb::ServiceRestartRequest>,
    ) -> Result<Response<pb::ServiceRestartResponse>, Status> {
        services::service_restart(&self.state, request).await
    }

    async fn reboot(
        &self,
        request: Request<pb::RebootRequest>,
    ) -> Result<Response<pb::RebootResponse>, Status> {
        power::reboot(&self.state, request).await
    }

    async fn shutdown(
        &self,
        request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        power::shutdown(&self.state, request).await
    }

    async fn reset(
        &self,
        request: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::ResetResponse>, Status> {
        power::reset(&self.state, request).await
    }

    async fn apply_configuration(
        &self,
        request: Request<pb::ApplyConfigurationRequest>,
    ) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
        config::apply_configuration(&self.state, request).await
    }

    async fn kubeconfig(
        &self,
        request: Request<()>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        kubeconfig::kubeconfig(&self.state, request).await
    }

    unimplemented_rpcs! {
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
