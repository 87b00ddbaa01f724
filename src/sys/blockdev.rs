//! Disk inventory from `/sys/block`, with the facts `talosctl disks` shows.

use std::path::{Path, PathBuf};

use super::{IoOp, SysError};

/// Kind of disk, as Talos classifies it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskType {
    /// Not known.
    #[default]
    Unknown,
    /// Non-rotational (SATA/SAS/virtio) disk.
    Ssd,
    /// Rotational disk.
    Hdd,
    /// NVMe namespace.
    Nvme,
    /// SD/MMC card.
    Sd,
}

/// One disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name (`sda`).
    pub kernel_name: String,
    /// Device node (`/dev/sda`).
    pub device_name: String,
    /// Size in bytes.
    pub size: u64,
    /// `device/model`.
    pub model: String,
    /// `device/name` (MMC cards).
    pub name: String,
    /// `serial` or `device/serial`.
    pub serial: String,
    /// `device/modalias`.
    pub modalias: String,
    /// `uuid` or `device/uuid`.
    pub uuid: String,
    /// `wwid` or `device/wwid`.
    pub wwid: String,
    /// Kind of disk.
    pub kind: DiskType,
    /// Path of the parent device below `/sys/devices` (`/pci0000:00/0000:00:04.0/virtio1`).
    pub bus_path: String,
    /// The parent device's subsystem (`/sys/bus/virtio`, `/sys/class/nvme`).
    pub subsystem: String,
    /// Read-only (`ro` is 1).
    pub readonly: bool,
}

/// Name prefixes that are not disks (SCSI generic, optical, loop, RAID, device mapper, RAM).
const SKIPPED_PREFIXES: [&str; 6] = ["sg", "sr", "loop", "md", "dm-", "ram"];

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn first_of(dir: &Path, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| read_trimmed(&dir.join(n)))
        .find(|v| !v.is_empty())
        .unwrap_or_default()
}

/// Reads one block device `<sys>/block/<name>`.
pub fn read_disk(sys: &Path, name: &str) -> Disk {
    let dir = sys.join("block").join(name);
    let block_size: u64 = read_trimmed(&dir.join("queue/logical_block_size"))
        .parse()
        .unwrap_or(512);
    let sectors: u64 = read_trimmed(&dir.join("size")).parse().unwrap_or(0);
    let rotational = read_trimmed(&dir.join("queue/rotational"));
    let kind = if name.contains("nvme") {
        DiskType::Nvme
    } else if name.contains("mmc") {
        DiskType::Sd
    } else if rotational == "1" {
        DiskType::Hdd
    } else if rotational == "0" {
        DiskType::Ssd
    } else {
        DiskType::Unknown
    };
    let devices =
        std::fs::canonicalize(sys.join("devices")).unwrap_or_else(|_| sys.join("devices"));
    let bus_path = std::fs::canonicalize(dir.join("device"))
        .ok()
        .and_then(|p| {
            p.strip_prefix(&devices)
                .ok()
                .map(|rel| format!("/{}", rel.display()))
        })
        .unwrap_or_default();
    let subsystem = std::fs::canonicalize(dir.join("device/subsystem"))
        .ok()
        .map(|p| display_under(sys, &p))
        .unwrap_or_default();
    Disk {
        kernel_name: name.to_string(),
        device_name: format!("/dev/{name}"),
        size: sectors.saturating_mul(block_size),
        model: read_trimmed(&dir.join("device/model")),
        name: read_trimmed(&dir.join("device/name")),
        serial: first_of(&dir, &["serial", "device/serial"]),
        modalias: read_trimmed(&dir.join("device/modalias")),
        uuid: first_of(&dir, &["uuid", "device/uuid"]),
        wwid: first_of(&dir, &["wwid", "device/wwid"]),
        kind,
        bus_path,
        subsystem,
        readonly: read_trimmed(&dir.join("ro")) == "1",
    }
}

/// Shows `path` (inside the sysfs root `sys`) as it would appear under `/sys`.
fn display_under(sys: &Path, path: &Path) -> String {
    let root = std::fs::canonicalize(sys).unwrap_or_else(|_| sys.to_path_buf());
    match path.strip_prefix(&root) {
        Ok(rel) => PathBuf::from("/sys").join(rel).display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Lists the disks under `<sys>/block` (normally `/sys`), sorted by name. Partitions are not
/// listed (they are not in `/sys/block`); loop, RAM, optical, RAID and device-mapper devices
/// and zero-sized devices are left out, as Talos does.
pub fn list_disks(sys: &Path) -> Result<Vec<Disk>, SysError> {
    let block = sys.join("block");
    let entries = std::fs::read_dir(&block).map_err(SysError::at(IoOp::List, block.clone()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !SKIPPED_PREFIXES.iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    Ok(names
        .iter()
        .map(|n| read_disk(sys, n))
        .filter(|d| d.size > 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    /// Builds a small sysfs: a virtio disk, an NVMe disk, a loop device and an empty drive.
    fn fixture() -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        let s = t.path();
        std::fs::create_dir_all(s.join("block")).expect("mkdir");
        std::fs::create_dir_all(s.join("bus/virtio")).expect("mkdir");
        std::fs::create_dir_all(s.join("class/nvme")).expect("mkdir");

        let virtio = s.join("devices/pci0000:00/0000:00:04.0/virtio1");
        let vda = virtio.join("block/vda");
        write(&vda.join("size"), "2097152\n");
        write(&vda.join("ro"), "0\n");
        write(&vda.join("queue/rotational"), "1\n");
        write(&vda.join("serial"), "VIRT-123\n");
        write(&virtio.join("modalias"), "virtio:d00000002v00001AF4\n");
        symlink("../..", vda.join("device")).expect("device link");
        symlink("../../../../bus/virtio", virtio.join("subsystem")).expect("subsystem");
        symlink(
            "../devices/pci0000:00/0000:00:04.0/virtio1/block/vda",
            s.join("block/vda"),
        )
        .expect("block link");

        let nvme = s.join("devices/pci0000:00/0000:00:05.0/nvme/nvme0");
        let ns = nvme.join("nvme0n1");
        write(&ns.join("size"), "1000\n");
        write(&ns.join("ro"), "1\n");
        write(&ns.join("queue/logical_block_size"), "4096\n");
        write(&ns.join("queue/rotational"), "0\n");
        write(&ns.join("wwid"), "eui.0025388\n");
        write(&nvme.join("model"), "Samsung SSD 980\n");
        write(&nvme.join("serial"), "S1234\n");
        symlink("..", ns.join("device")).expect("device link");
        symlink("../../../../../class/nvme", nvme.join("subsystem")).expect("subsystem");
        symlink(
            "../devices/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0n1",
            s.join("block/nvme0n1"),
        )
        .expect("block link");

        write(&s.join("block/loop0/size"), "100\n");
        write(&s.join("block/sdz/size"), "0\n");
        t
    }

    #[test]
    fn lists_disks_from_a_fixture_sysfs() {
        let t = fixture();
        let disks = list_disks(t.path()).expect("list");
        assert_eq!(disks.len(), 2, "{disks:#?}");

        let nvme = &disks[0];
        assert_eq!(nvme.device_name, "/dev/nvme0n1");
        assert_eq!(nvme.kind, DiskType::Nvme);
        assert_eq!(nvme.size, 4_096_000);
        assert_eq!(nvme.model, "Samsung SSD 980");
        assert_eq!(nvme.serial, "S1234");
        assert_eq!(nvme.wwid, "eui.0025388");
        assert!(nvme.readonly);
        assert_eq!(nvme.bus_path, "/pci0000:00/0000:00:05.0/nvme/nvme0");
        assert_eq!(nvme.subsystem, "/sys/class/nvme");

        let vda = &disks[1];
        assert_eq!(vda.kernel_name, "vda");
        assert_eq!(vda.kind, DiskType::Hdd);
        assert_eq!(vda.size, 2_097_152 * 512);
        assert_eq!(vda.serial, "VIRT-123");
        assert_eq!(vda.modalias, "virtio:d00000002v00001AF4");
        assert!(!vda.readonly);
        assert_eq!(vda.bus_path, "/pci0000:00/0000:00:04.0/virtio1");
        assert_eq!(vda.subsystem, "/sys/bus/virtio");
    }

    #[test]
    fn missing_sysfs_is_an_error() {
        assert!(list_disks(Path::new("/nonexistent")).is_err());
    }

    #[test]
    fn real_sysfs_lists() {
        list_disks(Path::new("/sys")).expect("list /sys/block");
    }
}
