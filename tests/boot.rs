//! Boots the OS image under QEMU (TCG) and follows the serial console through the boot path:
//! kernel → initramfs `/init` (stage 1: modules, squashfs root + extensions, switch_root) →
//! `/sbin/init`. Skipped (with a SKIPPED line) when QEMU or the built image (`ci/build-image`,
//! `_out/`) is missing.
//!
//! Each scenario is a list of [`Milestone`]s checked in order, so later stages (machined ready,
//! maintenance API, talosctl against the forwarded port) extend the lists.

mod common_qemu;

use std::time::Duration;

use common_qemu::{Image, Node, NodeBuilder};

/// How long one milestone may take under TCG (the first includes firmware and decompression).
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

/// A line the serial console must show, with a name for the timeline.
struct Milestone {
    name: &'static str,
    pattern: &'static str,
}

const fn m(name: &'static str, pattern: &'static str) -> Milestone {
    Milestone { name, pattern }
}

/// kernel start → /init → stage 1 → switch_root → exec of /sbin/init.
const STAGE1: &[Milestone] = &[
    m("kernel start", "Linux version"),
    m("/init", "Run /init as init process"),
    m("stage 1", "[talos] stage 1:"),
    m("modules", "[talos] loaded "),
    m("rootfs mounted", "[talos] mounted /rootfs.sqsh"),
    m("extensions mounted", "[talos] mounted /extensions.sqsh"),
    m("root overlay", "[talos] root: read-only overlay"),
    m("switch_root", "[talos] switch_root done"),
    m("exec /sbin/init", "[talos] exec /sbin/init"),
];

/// Waits for every milestone in order and prints a timeline: kernel timestamp (guest) and
/// wall time since QEMU started.
fn follow(node: &mut Node, scenario: &str, milestones: &[Milestone]) {
    eprintln!("timeline ({scenario}):");
    for ms in milestones {
        let wall = node
            .wait_until(ms.pattern, STEP_TIMEOUT)
            .unwrap_or_else(|e| panic!("{scenario}: waiting for {}: {e}", ms.name));
        let guest = node
            .kernel_time(ms.pattern)
            .map(|t| format!("{t:8.3}s"))
            .unwrap_or_else(|| "       -".into());
        eprintln!(
            "  {:<20} guest {guest}   wall {:7.3}s",
            ms.name,
            wall.as_secs_f64()
        );
    }
    let log = node.serial_log();
    assert!(
        !log.contains("stage 1 failed"),
        "{scenario}: stage 1 reported an error\n{}",
        node.tail(80)
    );
    assert!(
        !log.contains("Kernel panic") || log.contains("[talos] exec /sbin/init"),
        "{}",
        node.tail(80)
    );
}

#[test]
fn kernel_and_initramfs_boot_to_sbin_init() {
    let Some(image) = Image::find("kernel_and_initramfs_boot_to_sbin_init") else {
        return;
    };
    let mut node = NodeBuilder::kernel(&image)
        .api_port()
        .start()
        .expect("starting QEMU");
    follow(&mut node, "kernel + initramfs", STAGE1);
    let log = node.serial_log();
    // The kernel command line of the image reached stage 1.
    assert!(
        log.contains("[talos] kernel command line: talos.platform=metal"),
        "{}",
        node.tail(80)
    );
    // No module in the list failed to load.
    assert!(!log.contains("[talos] loading module"), "{}", node.tail(80));
}

#[test]
fn iso_boots_to_sbin_init() {
    let Some(image) = Image::find_with("iso_boots_to_sbin_init", &["metal-amd64.iso"]) else {
        return;
    };
    let mut node = NodeBuilder::iso(&image).start().expect("starting QEMU");
    follow(&mut node, "ISO (BIOS, GRUB)", STAGE1);
    assert!(
        node.serial_log()
            .contains("[talos] kernel command line: BOOT_IMAGE=/boot/vmlinuz talos.platform=metal"),
        "{}",
        node.tail(80)
    );
}

#[test]
fn iso_boots_with_uefi_to_sbin_init() {
    let name = "iso_boots_with_uefi_to_sbin_init";
    let Some(image) = Image::find_with(name, &["metal-amd64.iso"]) else {
        return;
    };
    let Some(ovmf) = common_qemu::ovmf() else {
        eprintln!("SKIPPED (OVMF not installed: package ovmf): {name}");
        return;
    };
    let mut node = NodeBuilder::iso(&image)
        .firmware(&ovmf)
        .start()
        .expect("starting QEMU");
    follow(&mut node, "ISO (UEFI, GRUB)", STAGE1);
}

/// `TALOS_BOOT_RUNS=5 cargo test --test boot boot_timeline -- --nocapture`: boots N times and
/// prints the median guest time of each milestone (the figure the issue asks for).
#[test]
fn boot_timeline() {
    let name = "boot_timeline";
    let runs: usize = match std::env::var("TALOS_BOOT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) if n > 0 => n,
        _ => {
            eprintln!("SKIPPED (set TALOS_BOOT_RUNS=N to measure): {name}");
            return;
        }
    };
    let Some(image) = Image::find(name) else {
        return;
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); STAGE1.len()];
    let mut wall = Vec::new();
    for run in 1..=runs {
        let mut node = NodeBuilder::kernel(&image).start().expect("starting QEMU");
        follow(&mut node, &format!("run {run}/{runs}"), STAGE1);
        wall.push(node.uptime().as_secs_f64());
        for (i, ms) in STAGE1.iter().enumerate() {
            if let Some(t) = node.kernel_time(ms.pattern) {
                samples[i].push(t);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied()
    };
    eprintln!("median of {runs} boots (guest seconds since kernel start):");
    for (i, ms) in STAGE1.iter().enumerate() {
        if let Some(t) = median(&mut samples[i]) {
            eprintln!("  {:<20} {t:8.3}s", ms.name);
        }
    }
    if let Some(t) = median(&mut wall) {
        eprintln!("  wall, QEMU start to exec /sbin/init: {t:.1}s");
    }
}
