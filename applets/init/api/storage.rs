//! `storage.StorageService`: the disk inventory from `/sys/block`.

use std::sync::Arc;

use talos::api::storage::{self as pb, disk::DiskType, storage_service_server::StorageService};
use talos::sys::blockdev;
use tonic::{Request, Response, Status};

use super::{called, sys_status, Machined};

/// The StorageService implementation.
pub struct StorageApi {
    state: Arc<Machined>,
}

impl StorageApi {
    /// Handlers over `state`.
    pub fn new(state: Arc<Machined>) -> Self {
        StorageApi { state }
    }
}

fn disk(d: blockdev::Disk) -> pb::Disk {
    let kind = match d.kind {
        blockdev::DiskType::Unknown => DiskType::Unknown,
        blockdev::DiskType::Ssd => DiskType::Ssd,
        blockdev::DiskType::Hdd => DiskType::Hdd,
        blockdev::DiskType::Nvme => DiskType::Nvme,
        blockdev::DiskType::Sd => DiskType::Sd,
    };
    pb::Disk {
        size: d.size,
        model: d.model,
        device_name: d.device_name,
        name: d.name,
        serial: d.serial,
        modalias: d.modalias,
        uuid: d.uuid,
        wwid: d.wwid,
        r#type: kind as i32,
        bus_path: d.bus_path,
        // The install disk is known once the installer and STATE handling exist.
        system_disk: false,
        subsystem: d.subsystem,
        readonly: d.readonly,
    }
}

#[tonic::async_trait]
impl StorageService for StorageApi {
    async fn disks(&self, request: Request<()>) -> Result<Response<pb::DisksResponse>, Status> {
        called(&request, "Disks");
        let sys = self.state.sys_root.clone();
        let disks = super::blocking(move || blockdev::list_disks(&sys).map_err(sys_status)).await?;
        Ok(Response::new(pb::DisksResponse {
            messages: vec![pb::Disks {
                metadata: None,
                disks: disks.into_iter().map(disk).collect(),
            }],
        }))
    }
}
