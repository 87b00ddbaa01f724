//! Boots the OS image under QEMU (TCG) and follows the serial console through the boot path:
//! kernel → initramfs `/init` (stage 1: modules, squashfs root + extensions, switch_root) →
//! `/sbin/init` → machined → maintenance mode or a configured node, driven with our talosctl
//! through a forwarded API port. Run with `TALOS_IMAGE_TESTS=1` and `--test-threads=1` (one VM
//! at a time); skipped (with a SKIPPED line) without it, or when QEMU or the built image
//! (`ci/build-image`, `_out/` or `$TALOS_IMAGE_DIR`) is missing.
//!
//! Scenarios:
//! - stage 1 only (kernel + initramfs, ISO with BIOS and UEFI);
//! - maintenance mode → `apply-config --insecure` → mTLS API → `shutdown` (kernel, ISO);
//! - `talos.config=http://10.0.2.2:PORT/…` served by a test HTTP server → configured without
//!   any apply → `reboot` (the VM resets and downloads the config again) → `shutdown`;
//! - a `talos.config=` URL that is unreachable, or answers 404: retries with growing delays
//!   while the maintenance API answers, then the server serves the config and the node comes up;
//! - `boot_timeline` (`TALOS_BOOT_RUNS=5`): the median boot timeline to the maintenance API.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod common_qemu;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common_qemu::http::HttpServer;
use common_qemu::{Image, Node, NodeBuilder};

/// How long one milestone may take under TCG (the first includes firmware and decompression).
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

/// The node's address from QEMU's user-networking DHCP server.
const NODE_IP: &str = "10.0.2.15";

/// A line the serial console must show, with a name for the timeline.
#[derive(Debug, Clone, Copy)]
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

/// `/sbin/init` runs machined.
const MACHINED: Milestone = m("machined starting", "machined starting");
/// Maintenance mode serves the insecure API.
const MAINTENANCE_API: Milestone = m("maintenance API", "maintenance API listening");

/// Stage 1, then machined.
fn to_machined() -> Vec<Milestone> {
    let mut v = STAGE1.to_vec();
    v.push(MACHINED);
    v
}

/// Stage 1, machined, then the maintenance API (a node without a config).
fn to_maintenance() -> Vec<Milestone> {
    let mut v = to_machined();
    v.push(MAINTENANCE_API);
    v
}

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

/// The median of `v` (the upper one for an even count).
fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

/// `TALOS_BOOT_RUNS=5 cargo test --test boot boot_timeline -- --nocapture`: boots N times (no
/// config) to the maintenance API and prints the median guest time of each milestone (the
/// figure the issue asks for: kernel start → /init → switch_root → machined → maintenance API).
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
    let milestones = to_maintenance();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); milestones.len()];
    let mut wall = Vec::new();
    for run in 1..=runs {
        let mut node = NodeBuilder::kernel(&image).start().expect("starting QEMU");
        follow(&mut node, &format!("run {run}/{runs}"), &milestones);
        wall.push(node.uptime().as_secs_f64());
        for (i, ms) in milestones.iter().enumerate() {
            if let Some(t) = node.kernel_time(ms.pattern) {
                samples[i].push(t);
            }
        }
    }
    eprintln!("median of {runs} boots (guest seconds since kernel start):");
    for (i, ms) in milestones.iter().enumerate() {
        if let Some(t) = median(&mut samples[i]) {
            eprintln!("  {:<20} {t:8.3}s", ms.name);
        }
    }
    if let Some(t) = median(&mut wall) {
        eprintln!("  wall, QEMU start to maintenance API listening: {t:.1}s");
    }
}

/// The talos binary under test.
fn talos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(args)
        .output()
        .expect("running talos")
}

fn out_text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Retries `f` every second until it returns `Ok` or `timeout` passes.
fn retry<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// A control-plane config for the cluster `qemu` (fixture secrets: no RSA key generation)
/// and its talosconfig, in a temporary directory.
struct Generated {
    _dir: tempfile::TempDir,
    controlplane: PathBuf,
    talosconfig: String,
}

fn gen_config() -> Generated {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/secrets/bundle.yaml");
    let d = dir.path().to_str().expect("utf-8 path");
    let out = talos(&[
        "talosctl",
        "gen",
        "config",
        "qemu",
        &format!("https://{NODE_IP}:6443"),
        "--with-secrets",
        secrets,
        "-o",
        d,
    ]);
    assert!(out.status.success(), "gen config: {}", out_text(&out));
    let talosconfig = dir
        .path()
        .join("talosconfig")
        .to_str()
        .expect("utf-8 path")
        .to_string();
    Generated {
        controlplane: dir.path().join("controlplane.yaml"),
        talosconfig,
        _dir: dir,
    }
}

/// talosctl against the node's forwarded API port.
struct Ctl {
    endpoint: String,
    talosconfig: String,
}

impl Ctl {
    fn new(node: &Node, generated: &Generated) -> Ctl {
        Ctl {
            endpoint: node.api_endpoint().expect("the node forwards its API port"),
            talosconfig: generated.talosconfig.clone(),
        }
    }

    /// With the talosconfig (mutual TLS).
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "talosctl",
            "--talosconfig",
            &self.talosconfig,
            "-e",
            &self.endpoint,
            "-n",
            NODE_IP,
        ];
        all.extend_from_slice(args);
        talos(&all)
    }

    /// Without credentials, against the maintenance API (`--insecure` is appended).
    fn insecure(&self, args: &[&str]) -> Output {
        let mut all = vec!["talosctl", "-e", &self.endpoint, "-n", &self.endpoint];
        all.extend_from_slice(args);
        all.push("--insecure");
        talos(&all)
    }
}

/// The state column of `service` in `talosctl services` output.
fn service_state<'a>(services: &'a str, service: &str) -> Option<&'a str> {
    services.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.len() >= 3 && cols[1] == service).then_some(cols[2])
    })
}

/// A configured control plane's services: apid, trustd, machined, networkd and containerd (from
/// the extension layer) Running; etcd Preparing (waiting for `talosctl bootstrap`).
fn check_control_plane_services(services: &str) -> Result<(), String> {
    let expected = [
        ("apid", "Running"),
        ("trustd", "Running"),
        ("machined", "Running"),
        ("networkd", "Running"),
        ("containerd", "Running"),
        ("etcd", "Preparing"),
    ];
    for (service, want) in expected {
        match service_state(services, service) {
            Some(state) if state == want => {}
            Some(state) => return Err(format!("{service} is {state}, expected {want}")),
            None => return Err(format!("{service} is not listed")),
        }
    }
    Ok(())
}

#[test]
fn service_checks() {
    let out = "NODE        SERVICE    STATE     HEALTH   LAST CHANGE   LAST EVENT\n\
               10.0.2.15   apid       Running   ?        1s ago        Started\n\
               10.0.2.15   machined   Running   OK       8s ago        Health check successful\n\
               10.0.2.15   networkd   Running   ?        9s ago        Started\n\
               10.0.2.15   trustd     Running   ?        1s ago        Started\n";
    assert_eq!(service_state(out, "machined"), Some("Running"));
    assert_eq!(service_state(out, "etcd"), None);
    assert!(
        check_control_plane_services(out).is_err(),
        "containerd and etcd are required"
    );
    let with_etcd = format!(
        "{out}10.0.2.15   containerd Running   OK       5s ago        Health check successful\n\
         10.0.2.15   etcd       Preparing ?        5s ago        Running pre state\n"
    );
    assert_eq!(check_control_plane_services(&with_etcd), Ok(()));
    let etcd_running = with_etcd.replace("Preparing", "Running  ");
    assert!(check_control_plane_services(&etcd_running).is_err());
    let trustd_down = out.replace("trustd     Running", "trustd     Waiting");
    assert!(check_control_plane_services(&trustd_down).is_err());
}

/// Waits for the mutual-TLS API of a configured control plane and checks it: `version`,
/// `services`, `get machinestatus` (stage running) and `get machineconfig` (our config).
fn check_configured(ctl: &Ctl, scenario: &str) {
    retry(
        &format!("{scenario}: mTLS version"),
        Duration::from_secs(180),
        || {
            let out = ctl.run(&["version"]);
            if out.status.success() && stdout(&out).contains("Server:") {
                Ok(())
            } else {
                Err(out_text(&out))
            }
        },
    );
    let services = retry(
        &format!("{scenario}: services up"),
        Duration::from_secs(120),
        || {
            let out = ctl.run(&["services"]);
            let t = stdout(&out);
            check_control_plane_services(&t)
                .map(|()| t.clone())
                .map_err(|e| format!("{e}\n{}", out_text(&out)))
        },
    );
    eprintln!("{scenario}:\n{services}");
    // containerd really runs (its own log, through the service log buffer), and etcd says
    // what it waits for.
    let out = ctl.run(&["logs", "containerd"]);
    assert!(
        stdout(&out).contains("containerd successfully booted"),
        "{scenario}: logs containerd: {}",
        out_text(&out)
    );
    let out = ctl.run(&["service", "etcd"]);
    assert!(
        stdout(&out).contains("Running pre state"),
        "{scenario}: service etcd: {}",
        out_text(&out)
    );
    retry(
        &format!("{scenario}: machinestatus running"),
        Duration::from_secs(60),
        || {
            let out = ctl.run(&["get", "machinestatus", "-o", "yaml"]);
            if stdout(&out).contains("stage: running") {
                Ok(())
            } else {
                Err(out_text(&out))
            }
        },
    );
    let out = ctl.run(&["get", "machineconfig", "-o", "yaml"]);
    let t = stdout(&out);
    assert!(
        out.status.success() && t.contains("type: controlplane") && t.contains("clusterName: qemu"),
        "{scenario}: machineconfig: {}",
        out_text(&out)
    );
}

/// The maintenance API answers without credentials: `disks`, and `get addresses` with the
/// DHCP lease networkd applied.
fn check_maintenance_api(ctl: &Ctl, scenario: &str) {
    let out = ctl.insecure(&["disks"]);
    assert!(
        out.status.success(),
        "{scenario}: disks --insecure: {}",
        out_text(&out)
    );
    let addresses = retry(
        &format!("{scenario}: DHCP address"),
        Duration::from_secs(120),
        || {
            let out = ctl.insecure(&["get", "addresses"]);
            let t = stdout(&out);
            if t.contains("eth0/10.0.2.15/24") {
                Ok(t)
            } else {
                Err(out_text(&out))
            }
        },
    );
    eprintln!("{scenario}:\n{addresses}");
}

/// `talosctl shutdown`: machined stops the services and powers off; QEMU exits.
fn shutdown(node: &mut Node, ctl: &Ctl, scenario: &str) {
    let out = ctl.run(&["shutdown", "--timeout", "2m"]);
    assert!(
        out.status.success(),
        "{scenario}: shutdown: {}",
        out_text(&out)
    );
    node.wait_exit(Duration::from_secs(120))
        .unwrap_or_else(|e| {
            panic!(
                "{scenario}: QEMU did not exit after shutdown: {e}\n{}",
                node.tail(40)
            )
        });
    assert!(
        node.serial_log().contains("reboot: Power down"),
        "{}",
        node.tail(40)
    );
}

/// No config: maintenance mode with a DHCP address, `apply-config --insecure` with a generated
/// control-plane config, the mTLS API (version, services, addresses, dmesg), then `shutdown`
/// powers QEMU off. `builder` says how the node boots (it must forward the API port).
fn maintenance_apply_shutdown(builder: NodeBuilder, scenario: &str) {
    let started = Instant::now();
    let mut node = builder.start().expect("starting QEMU");
    let mut milestones = to_maintenance();
    milestones.push(m("fingerprint", "server certificate issued fingerprint="));
    follow(&mut node, scenario, &milestones);
    let generated = gen_config();
    let ctl = Ctl::new(&node, &generated);

    check_maintenance_api(&ctl, scenario);
    let out = ctl.insecure(&[
        "apply-config",
        "-f",
        generated.controlplane.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "apply-config: {}", out_text(&out));

    // The node leaves maintenance mode and serves mutual TLS.
    check_configured(&ctl, scenario);
    let out = ctl.run(&["get", "addresses"]);
    assert!(stdout(&out).contains("10.0.2.15/24"), "{}", out_text(&out));
    let out = ctl.run(&["dmesg"]);
    assert!(
        out.status.success() && stdout(&out).contains("Linux version"),
        "{}",
        out_text(&out)
    );
    let out = ctl.run(&["processes"]);
    let processes = stdout(&out);
    eprintln!("{processes}");
    // containerd runs as root without CAP_SYS_BOOT (22) and CAP_SYS_MODULE (16), as Talos's.
    let pid = processes
        .lines()
        .find(|l| l.contains("/usr/bin/containerd "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("{scenario}: containerd not in processes:\n{processes}"));
    let out = ctl.run(&["read", &format!("/proc/{pid}/status")]);
    let status = stdout(&out);
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("{scenario}: no CapBnd in {}", out_text(&out)));
    assert_eq!(
        bounding & ((1 << 22) | (1 << 16)),
        0,
        "{scenario}: CapBnd {bounding:x}"
    );
    assert_ne!(
        bounding & (1 << 21),
        0,
        "{scenario}: CAP_SYS_ADMIN kept: {bounding:x}"
    );

    shutdown(&mut node, &ctl, scenario);
    eprintln!("{scenario}: {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn kernel_boots_to_maintenance_takes_a_config_and_shuts_down() {
    let Some(image) = Image::find("kernel_boots_to_maintenance_takes_a_config_and_shuts_down")
    else {
        return;
    };
    maintenance_apply_shutdown(
        NodeBuilder::kernel(&image).api_port(),
        "kernel, maintenance",
    );
}

#[test]
fn iso_boots_to_maintenance_takes_a_config_and_shuts_down() {
    let name = "iso_boots_to_maintenance_takes_a_config_and_shuts_down";
    let Some(image) = Image::find_with(name, &["metal-amd64.iso"]) else {
        return;
    };
    maintenance_apply_shutdown(
        NodeBuilder::iso(&image).api_port(),
        "ISO (BIOS), maintenance",
    );
}

/// `talos.config=` pointing at a test server: the node downloads its config and comes up
/// configured without any apply; `reboot` resets the VM, which downloads the config again
/// (nothing is installed to disk) and comes back configured; `shutdown` ends QEMU.
/// `machine.kernel.modules` for the served config: `dummy` with `numdummies=2`.
const KERNEL_MODULES_PATCH: &str = "\nmachine:\n    kernel:\n        modules:\n            - name: dummy\n              parameters:\n                - numdummies=2\n";

/// The configured module is loaded with its parameter: the kernel lists it, and it made two
/// links (`numdummies` is not in sysfs; the default is one link).
fn check_kernel_modules(ctl: &Ctl, scenario: &str) {
    let dev = retry(
        &format!("{scenario}: dummy module loaded with numdummies=2"),
        Duration::from_secs(60),
        || {
            let out = ctl.run(&["read", "/proc/net/dev"]);
            let t = stdout(&out);
            if t.contains("dummy0:") && t.contains("dummy1:") {
                Ok(t)
            } else {
                let logs = stdout(&ctl.run(&["logs", "machined"]));
                let about: Vec<&str> = logs.lines().filter(|l| l.contains("odule")).collect();
                Err(format!(
                    "{}\nmachined on modules:\n{}",
                    out_text(&out),
                    about.join("\n")
                ))
            }
        },
    );
    assert!(!dev.contains("dummy2:"), "{scenario}: {dev}");
    let out = ctl.run(&["read", "/proc/modules"]);
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("dummy ")),
        "{scenario}: /proc/modules: {}",
        out_text(&out)
    );
}

#[test]
fn kernel_boots_with_talos_config_url_survives_reboot_and_shuts_down() {
    let scenario = "talos.config URL";
    let Some(image) =
        Image::find("kernel_boots_with_talos_config_url_survives_reboot_and_shuts_down")
    else {
        return;
    };
    let started = Instant::now();
    let generated = gen_config();
    let config = std::fs::read_to_string(&generated.controlplane).expect("controlplane.yaml");
    // machine.kernel.modules: the dummy driver (in rootfs.sqsh, not loaded at boot) with a
    // parameter.
    let config = config.replacen("\nmachine:\n", KERNEL_MODULES_PATCH, 1);
    assert!(config.contains("numdummies=2"), "the patch applies");
    let server = HttpServer::serving("/config.yaml", config.into_bytes()).expect("HTTP server");
    let mut node = NodeBuilder::kernel(&image)
        .api_port()
        .allow_reboot()
        .cmdline_arg(&format!(
            "talos.config={}",
            server.guest_url("/config.yaml")
        ))
        .start()
        .expect("starting QEMU");
    follow(&mut node, scenario, &to_machined());
    server
        .wait_hits("/config.yaml", 1, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\n{}", node.tail(40)));
    let ctl = Ctl::new(&node, &generated);
    check_configured(&ctl, scenario);
    check_kernel_modules(&ctl, scenario);
    assert_eq!(node.count("Linux version"), 1, "{}", node.tail(40));

    // Reboot: the VM resets and boots the same kernel and command line again.
    let reboot_at = Instant::now();
    let out = ctl.run(&["reboot", "--timeout", "3m"]);
    assert!(
        out.status.success(),
        "reboot: {}\n{}",
        out_text(&out),
        node.tail(60)
    );
    eprintln!(
        "reboot --wait returned after {:.1}s",
        reboot_at.elapsed().as_secs_f64()
    );
    node.wait_until_nth("Linux version", 2, STEP_TIMEOUT)
        .expect("second kernel boot");
    node.wait_until_nth(MACHINED.pattern, 2, STEP_TIMEOUT)
        .expect("machined on the second boot");
    server
        .wait_hits("/config.yaml", 2, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\n{}", node.tail(40)));
    check_configured(&ctl, &format!("{scenario}, after reboot"));
    check_kernel_modules(&ctl, &format!("{scenario}, after reboot"));
    assert!(
        !node.serial_log().contains("applied in maintenance mode"),
        "{}",
        node.tail(60)
    );
    eprintln!(
        "{scenario}: back after reboot in {:.1}s; requests: {:?}",
        reboot_at.elapsed().as_secs_f64(),
        server.requests()
    );

    shutdown(&mut node, &ctl, scenario);
    assert_eq!(node.count("Linux version"), 2, "{}", node.tail(40));
    eprintln!("{scenario}: {:.1}s", started.elapsed().as_secs_f64());
}

/// A failed download on the serial console: `(attempt, delay before the next one in seconds)`.
fn failed_attempts(log: &str, url: &str) -> Vec<(u32, f64)> {
    let prefix = format!("failed to download config from {url:?} (attempt ");
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(&prefix)? + prefix.len()..];
            let (n, rest) = rest.split_once(')')?;
            let delay = rest.rsplit_once("; retrying in ")?.1.trim();
            Some((n.parse().ok()?, parse_delay(delay)?))
        })
        .collect()
}

/// A Rust `Duration` in debug form (`1s`, `1.5s`, `500ms`) in seconds.
fn parse_delay(s: &str) -> Option<f64> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse::<f64>().ok().map(|v| v / 1000.0);
    }
    s.strip_suffix('s')?.parse().ok()
}

#[test]
fn parses_failed_attempts() {
    let url = "http://10.0.2.2:4000/config.yaml";
    let log = format!(
        "[   12.5] [talos]  WARN failed to download config from \"{url}\" (attempt 1): \
         connecting to 10.0.2.2:4000: Connection refused (os error 111); retrying in 1s\n\
         [   13.6] [talos]  INFO fetching machine config from: \"{url}\"\n\
         [   13.7] [talos]  WARN failed to download config from \"{url}\" (attempt 2): \
         status code 404, body \"404 page not found\\n\"; retrying in 2s\n\
         [   13.7] [talos]  WARN failed to download config from \"http://other\" (attempt 9): \
         x; retrying in 30s\n\
         [   15.7] [talos]  WARN failed to download config from \"{url}\" (attempt 3): x; \
         retrying in 500ms\n"
    );
    assert_eq!(
        failed_attempts(&log, url),
        vec![(1, 1.0), (2, 2.0), (3, 0.5)]
    );
}

/// How the config URL fails at first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failing {
    /// Nothing listens on the port.
    Unreachable,
    /// A server answers 404.
    NotFound,
}

/// A `talos.config=` URL that fails: the console shows the failed attempts with growing delays,
/// the maintenance API answers while the retries go on, then the server serves the config and
/// the node comes up configured from the download (no apply); `shutdown` ends QEMU.
fn failing_config_url_retries_in_maintenance(test: &str, failing: Failing) {
    let scenario = format!("talos.config {failing:?}");
    let Some(image) = Image::find(test) else {
        return;
    };
    let started = Instant::now();
    let generated = gen_config();
    let config = std::fs::read(&generated.controlplane).expect("controlplane.yaml");
    // Unreachable: a port chosen now, served only later.
    let (mut server, port) = match failing {
        Failing::Unreachable => (None, common_qemu::free_port()),
        Failing::NotFound => {
            let s = HttpServer::start().expect("HTTP server");
            let p = s.port();
            (Some(s), p)
        }
    };
    let url = format!("http://10.0.2.2:{port}/config.yaml");
    let mut node = NodeBuilder::kernel(&image)
        .api_port()
        .cmdline_arg(&format!("talos.config={url}"))
        .start()
        .expect("starting QEMU");
    follow(&mut node, &scenario, &to_machined());
    let attempt = |n: u32| format!("failed to download config from {url:?} (attempt {n})");
    node.wait_until(&attempt(1), STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{scenario}: first failed attempt: {e}"));
    node.wait_until(&attempt(3), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{scenario}: third failed attempt: {e}"));
    let log = node.serial_log();
    if failing == Failing::NotFound {
        assert!(log.contains("status code 404"), "{}", node.tail(40));
    }
    // Growing delays between attempts.
    let attempts = failed_attempts(&log, &url);
    eprintln!("{scenario}: failed attempts (attempt, retry delay s): {attempts:?}");
    assert!(attempts.len() >= 3, "{attempts:?}\n{}", node.tail(40));
    assert!(
        attempts.windows(2).all(|w| w[1].1 >= w[0].1) && attempts[2].1 > attempts[0].1,
        "retry delays do not grow: {attempts:?}"
    );

    // Maintenance mode opens while the download is still being retried.
    node.wait_until(MAINTENANCE_API.pattern, Duration::from_secs(120))
        .unwrap_or_else(|e| {
            panic!("{scenario}: no maintenance API while the config URL fails: {e}")
        });
    let ctl = Ctl::new(&node, &generated);
    check_maintenance_api(&ctl, &scenario);
    let failed_before = failed_attempts(&node.serial_log(), &url).len();
    eprintln!(
        "{scenario}: maintenance API answered at {:.1}s after {failed_before} failed attempts",
        started.elapsed().as_secs_f64()
    );

    // The server comes up with the config: the next attempt downloads it.
    let server = match server.take() {
        Some(s) => s,
        None => HttpServer::start_on(port).expect("HTTP server on the chosen port"),
    };
    server.route("/config.yaml", config);
    let served = Instant::now();
    retry(
        &format!("{scenario}: config downloaded"),
        Duration::from_secs(90),
        || {
            let ok = server.requests().iter().any(|r| r.status == 200);
            if ok {
                Ok(())
            } else {
                Err(format!("{:?}\n{}", server.requests(), node.tail(20)))
            }
        },
    );
    eprintln!(
        "{scenario}: config downloaded {:.1}s after the server served it",
        served.elapsed().as_secs_f64()
    );
    check_configured(&ctl, &scenario);
    assert!(
        !node.serial_log().contains("applied in maintenance mode"),
        "{}",
        node.tail(60)
    );
    shutdown(&mut node, &ctl, &scenario);
    eprintln!("{scenario}: {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn unreachable_talos_config_url_retries_and_stays_in_maintenance() {
    failing_config_url_retries_in_maintenance(
        "unreachable_talos_config_url_retries_and_stays_in_maintenance",
        Failing::Unreachable,
    );
}

#[test]
fn talos_config_url_answering_404_retries_and_stays_in_maintenance() {
    failing_config_url_retries_in_maintenance(
        "talos_config_url_answering_404_retries_and_stays_in_maintenance",
        Failing::NotFound,
    );
}
