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
    // No module in the list failed to load (crc32c_intel answers ENODEV when the emulated CPU
    // lacks SSE4.2; the generic crc32c takes over).
    for line in log.lines().filter(|l| l.contains("[talos] loading module")) {
        assert!(line.contains("ENODEV"), "{line}\n{}", node.tail(80));
    }
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

/// The talos binary under test.
fn talos(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(args)
        .output()
        .expect("running talos")
}

fn out_text(o: &std::process::Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Retries `f` every second until it returns Some or `timeout` passes.
fn retry<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if std::time::Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// The real image, no config: maintenance mode with a DHCP address, `apply-config --insecure`
/// with a generated control-plane config, the mTLS API (version, services, addresses, dmesg),
/// then `shutdown` powers QEMU off.
#[test]
fn kernel_boots_to_maintenance_takes_a_config_and_shuts_down() {
    let Some(image) = Image::find("kernel_boots_to_maintenance_takes_a_config_and_shuts_down")
    else {
        return;
    };
    let mut node = NodeBuilder::kernel(&image)
        .api_port()
        .start()
        .expect("starting QEMU");
    let mut milestones: Vec<Milestone> = Vec::new();
    milestones.extend(STAGE1.iter().map(|ms| m(ms.name, ms.pattern)));
    milestones.push(m("machined", "machined starting"));
    milestones.push(m("maintenance API", "maintenance API listening"));
    milestones.push(m("fingerprint", "server certificate issued fingerprint="));
    follow(&mut node, "maintenance", &milestones);
    let port = node.api_port().expect("api port");
    let ep = format!("127.0.0.1:{port}");

    // Maintenance mode: the insecure API, with the DHCP lease networkd applied.
    let out = talos(&["talosctl", "-n", &ep, "disks", "--insecure"]);
    assert!(out.status.success(), "disks --insecure: {}", out_text(&out));
    let addresses = retry("DHCP address", Duration::from_secs(120), || {
        let out = talos(&[
            "talosctl",
            "-e",
            &ep,
            "-n",
            &ep,
            "get",
            "addresses",
            "--insecure",
        ]);
        let t = String::from_utf8_lossy(&out.stdout).to_string();
        if t.contains("eth0/10.0.2.15/24") {
            Ok(t)
        } else {
            Err(out_text(&out))
        }
    });
    eprintln!("{addresses}");

    // Apply a control-plane config (fixture secrets: no RSA key generation).
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/secrets/bundle.yaml");
    let d = dir.path().to_str().expect("utf-8 path");
    let out = talos(&[
        "talosctl",
        "gen",
        "config",
        "qemu",
        "https://10.0.2.15:6443",
        "--with-secrets",
        secrets,
        "-o",
        d,
    ]);
    assert!(out.status.success(), "gen config: {}", out_text(&out));
    let cp = dir.path().join("controlplane.yaml");
    let out = talos(&[
        "talosctl",
        "-n",
        &ep,
        "apply-config",
        "--insecure",
        "-f",
        cp.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "apply-config: {}", out_text(&out));

    // The node leaves maintenance mode and serves mutual TLS.
    let tc = dir.path().join("talosconfig");
    let tc = tc.to_str().expect("utf-8 path");
    let ctl = |args: &[&str]| {
        let mut all = vec![
            "talosctl",
            "--talosconfig",
            tc,
            "-e",
            &ep,
            "-n",
            "10.0.2.15",
        ];
        all.extend_from_slice(args);
        talos(&all)
    };
    retry("mTLS version", Duration::from_secs(180), || {
        let out = ctl(&["version"]);
        if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Server:") {
            Ok(())
        } else {
            Err(out_text(&out))
        }
    });
    let services = retry("services up", Duration::from_secs(120), || {
        let out = ctl(&["services"]);
        let t = String::from_utf8_lossy(&out.stdout).to_string();
        let up = |id: &str| t.lines().any(|l| l.contains(id) && l.contains("Running"));
        if ["apid", "trustd", "machined", "networkd"]
            .iter()
            .all(|id| up(id))
        {
            Ok(t)
        } else {
            Err(out_text(&out))
        }
    });
    eprintln!("{services}");
    let out = ctl(&["get", "addresses"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("10.0.2.15/24"),
        "{}",
        out_text(&out)
    );
    let out = ctl(&["dmesg"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Linux version"),
        "{}",
        out_text(&out)
    );
    let out = ctl(&["processes"]);
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));

    // shutdown: machined stops the services and powers off; QEMU exits (-no-reboot).
    let out = ctl(&["shutdown", "--timeout", "2m"]);
    assert!(out.status.success(), "shutdown: {}", out_text(&out));
    node.wait_exit(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("QEMU did not exit after shutdown: {e}\n{}", node.tail(40)));
    assert!(
        node.serial_log().contains("reboot: Power down"),
        "{}",
        node.tail(40)
    );
}
