//! `machine.install` and `machine.disks` checks.

use std::collections::HashSet;

use super::{Mode, Report};
use crate::config::v1alpha1::MachineConfig;

/// Modes that install Talos need install instructions with a disk or a disk selector.
pub(super) fn check_required(m: &MachineConfig, mode: Mode, r: &mut Report) {
    if !mode.requires_install() {
        return;
    }
    match &m.install {
        None => r.err(
            "machine.install",
            format!(
                "install instructions are required in {mode:?} mode",
                mode = mode.to_string()
            ),
        ),
        Some(i) => {
            if i.disk.is_empty()
                && i.disk_selector
                    .as_ref()
                    .is_none_or(|s| *s == Default::default())
            {
                r.err(
                    "machine.install.disk",
                    "either install disk or diskSelector should be defined",
                );
            }
        }
    }
}

/// `machine.disks`: only the last partition of a disk may take the rest of it.
pub(super) fn check_disks(m: &MachineConfig, r: &mut Report) {
    for (di, disk) in m.disks.iter().enumerate() {
        let n = disk.partitions.len();
        for (pi, p) in disk.partitions.iter().enumerate() {
            if p.size.is_zero() && pi + 1 != n {
                r.err(
                    format!("machine.disks[{di}].partitions[{pi}].size"),
                    format!("partition for disk {:?} is set to occupy full disk, but it's not the last partition in the list", disk.device),
                );
            }
        }
    }
}

/// `machine.install.extensions`: no duplicates, and a deprecation warning.
pub(super) fn check_extensions(m: &MachineConfig, r: &mut Report) {
    let Some(i) = &m.install else { return };
    let mut seen = HashSet::new();
    for (n, ext) in i.extensions.iter().enumerate() {
        if !seen.insert(ext.image.as_str()) {
            r.err(
                format!("machine.install.extensions[{n}].image"),
                format!("duplicate system extension {:?}", ext.image),
            );
        }
    }
    if !i.extensions.is_empty() {
        r.warn("machine.install.extensions", "machine.install.extensions is deprecated, please see https://www.talos.dev/latest/talos-guides/install/boot-assets/");
    }
}
