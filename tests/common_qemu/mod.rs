//! QEMU nodes for the boot tests: a [`NodeBuilder`] that starts `qemu-system-x86_64` (software
//! emulation, `-accel tcg`) on the image under `_out/` (kernel + initramfs, or the ISO), with the
//! serial console captured to a file and, optionally, QEMU user networking forwarding a
//! 127.0.0.1 port to the node's API port 50000. The node is killed when the [`Node`] is dropped.
//!
//! ```ignore
//! let img = Image::find("my_test")?;                 // None (and a SKIPPED line) when not built
//! let node = NodeBuilder::kernel(&img).api_port().start()?;
//! node.wait_until("[talos] exec /sbin/init", Duration::from_secs(120))?;
//! ```

#![allow(
    dead_code,
    reason = "shared by several integration test crates, each of which uses only some helpers"
)]

pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";
/// The node's API port (apid / maintenance API).
pub const API_PORT: u16 = 50000;

/// The built image: `$TALOS_IMAGE_DIR` or `_out/` beside the crate.
#[derive(Debug, Clone)]
pub struct Image {
    pub dir: PathBuf,
}

impl Image {
    fn dir() -> PathBuf {
        match std::env::var_os("TALOS_IMAGE_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("_out"),
        }
    }

    /// The image, when `TALOS_IMAGE_TESTS=1` (as `ci/test` and `ci/boot-test` set it, so a
    /// plain `cargo test` does not start VMs in parallel), QEMU is installed and `files` were
    /// built; otherwise prints `SKIPPED (...): test` and returns `None`.
    pub fn find_with(test: &str, files: &[&str]) -> Option<Image> {
        if std::env::var_os("TALOS_IMAGE_TESTS").is_none_or(|v| v.is_empty() || v == "0") {
            eprintln!("SKIPPED (set TALOS_IMAGE_TESTS=1, as ci/boot-test does): {test}");
            return None;
        }
        if !qemu_available() {
            eprintln!("SKIPPED ({QEMU} not installed): {test}");
            return None;
        }
        let dir = Self::dir();
        for f in files {
            if !dir.join(f).is_file() {
                eprintln!(
                    "SKIPPED ({} not built: run ci/build-image): {test}",
                    dir.join(f).display()
                );
                return None;
            }
        }
        Some(Image { dir })
    }

    /// [`find_with`](Self::find_with) for a kernel + initramfs boot.
    pub fn find(test: &str) -> Option<Image> {
        Self::find_with(test, &["vmlinuz", "initramfs.xz", "cmdline"])
    }

    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }

    pub fn initramfs(&self) -> PathBuf {
        self.dir.join("initramfs.xz")
    }

    pub fn iso(&self) -> PathBuf {
        self.dir.join("metal-amd64.iso")
    }

    /// The image's kernel command line (`_out/cmdline`).
    pub fn cmdline(&self) -> String {
        std::fs::read_to_string(self.dir.join("cmdline"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
}

fn qemu_available() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A free TCP port on 127.0.0.1 (free when asked; QEMU binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// How the node boots.
#[derive(Debug, Clone)]
enum Boot {
    /// `-kernel` + `-initrd` + `-append`.
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        cmdline: String,
    },
    /// `-cdrom` (GRUB picks the kernel arguments).
    Iso(PathBuf),
}

/// Builds a QEMU node.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    boot: Boot,
    memory_mib: u32,
    cpus: u32,
    api_port: Option<u16>,
    extra_cmdline: Vec<String>,
    extra_args: Vec<String>,
    firmware: Option<PathBuf>,
    allow_reboot: bool,
}

/// Debian's OVMF (UEFI firmware for QEMU), if installed.
pub fn ovmf() -> Option<PathBuf> {
    ["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

impl NodeBuilder {
    /// Boots the image's kernel and initramfs directly with its command line.
    pub fn kernel(image: &Image) -> Self {
        Self::new(Boot::Kernel {
            kernel: image.kernel(),
            initrd: image.initramfs(),
            cmdline: image.cmdline(),
        })
    }

    /// Boots the image's ISO (BIOS, GRUB).
    pub fn iso(image: &Image) -> Self {
        Self::new(Boot::Iso(image.iso()))
    }

    fn new(boot: Boot) -> Self {
        NodeBuilder {
            boot,
            memory_mib: 2048,
            cpus: 2,
            api_port: None,
            extra_cmdline: Vec::new(),
            extra_args: Vec::new(),
            firmware: None,
            allow_reboot: false,
        }
    }

    /// Lets the guest reboot: a reboot resets the VM, which boots the same kernel, initramfs
    /// and command line (or ISO) again; a power-off still ends QEMU. Without it QEMU runs with
    /// `-no-reboot`, so a guest reboot ends QEMU too. Count boots with
    /// [`Node::count`]`("Linux version")` or wait for one with [`Node::wait_until_nth`].
    pub fn allow_reboot(mut self) -> Self {
        self.allow_reboot = true;
        self
    }

    /// Boots with this firmware (`-bios`, e.g. [`ovmf`] for UEFI) instead of SeaBIOS.
    pub fn firmware(mut self, path: &Path) -> Self {
        self.firmware = Some(path.to_path_buf());
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    pub fn cpus(mut self, n: u32) -> Self {
        self.cpus = n;
        self
    }

    /// Forwards a free 127.0.0.1 port to the node's port 50000 (see [`Node::api_port`]).
    pub fn api_port(mut self) -> Self {
        self.api_port = Some(free_port());
        self
    }

    /// Appends a kernel argument (kernel boots only), e.g. `talos.config=http://10.0.2.2:8080/c`.
    pub fn cmdline_arg(mut self, arg: &str) -> Self {
        self.extra_cmdline.push(arg.to_string());
        self
    }

    /// Appends raw QEMU arguments (disks, more NICs).
    pub fn qemu_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The full QEMU argument list for a serial log at `serial`.
    pub fn args(&self, serial: &Path) -> Vec<String> {
        let mut a: Vec<String> = [
            "-accel", "tcg", "-machine", "q35", "-cpu", "max", "-display", "none", "-monitor",
            "none",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !self.allow_reboot {
            a.push("-no-reboot".into());
        }
        a.extend([
            "-m".into(),
            self.memory_mib.to_string(),
            "-smp".into(),
            self.cpus.to_string(),
            "-serial".into(),
            format!("file:{}", serial.display()),
        ]);
        let mut nic = "user,model=virtio-net-pci".to_string();
        if let Some(port) = self.api_port {
            nic.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-:{API_PORT}"));
        }
        a.extend(["-nic".into(), nic]);
        match &self.boot {
            Boot::Kernel {
                kernel,
                initrd,
                cmdline,
            } => {
                let mut line = cmdline.clone();
                for extra in &self.extra_cmdline {
                    line.push(' ');
                    line.push_str(extra);
                }
                a.extend([
                    "-kernel".into(),
                    kernel.display().to_string(),
                    "-initrd".into(),
                    initrd.display().to_string(),
                    "-append".into(),
                    line,
                ]);
            }
            Boot::Iso(iso) => {
                a.extend(["-cdrom".into(), iso.display().to_string()]);
                a.extend(["-boot".into(), "d".into()]);
            }
        }
        if let Some(fw) = &self.firmware {
            a.extend(["-bios".into(), fw.display().to_string()]);
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// Starts QEMU.
    pub fn start(self) -> Result<Node, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let serial = dir.path().join("serial.log");
        std::fs::write(&serial, "").map_err(|e| format!("{}: {e}", serial.display()))?;
        let args = self.args(&serial);
        let stderr = std::fs::File::create(dir.path().join("qemu.stderr"))
            .map_err(|e| format!("qemu.stderr: {e}"))?;
        let child = Command::new(QEMU)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {QEMU}: {e}"))?;
        Ok(Node {
            child,
            serial,
            dir,
            api_port: self.api_port,
            started: Instant::now(),
        })
    }
}

/// A running QEMU node; killed on drop.
pub struct Node {
    child: Child,
    serial: PathBuf,
    dir: tempfile::TempDir,
    api_port: Option<u16>,
    started: Instant,
}

impl Node {
    /// The serial console so far.
    pub fn serial_log(&self) -> String {
        std::fs::read(&self.serial)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The 127.0.0.1 port forwarded to the node's port 50000.
    pub fn api_port(&self) -> Option<u16> {
        self.api_port
    }

    /// `127.0.0.1:PORT` of the forwarded API port. Note: QEMU's user networking accepts TCP
    /// connections on the host side before the guest listens (and then drops them), so a TCP
    /// connect proves nothing: wait for a serial-log milestone or retry a real API call.
    pub fn api_endpoint(&self) -> Option<String> {
        self.api_port.map(|p| format!("127.0.0.1:{p}"))
    }

    /// Wall time since QEMU started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether QEMU has exited (e.g. after a shutdown), with its status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// How many times `pattern` occurs in the serial log so far (e.g. `"Linux version"`: the
    /// number of kernel boots).
    pub fn count(&self, pattern: &str) -> usize {
        count(&self.serial_log(), pattern)
    }

    /// Waits until the serial log contains `pattern`; returns the wall time since start.
    /// The error carries the end of the serial log (and QEMU's stderr if it died).
    pub fn wait_until(&mut self, pattern: &str, timeout: Duration) -> Result<Duration, String> {
        self.wait_until_nth(pattern, 1, timeout)
    }

    /// Waits until `pattern` occurs `n` times in the serial log (the `n`th boot's line);
    /// returns the wall time since start.
    pub fn wait_until_nth(
        &mut self,
        pattern: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Duration, String> {
        let deadline = Instant::now() + timeout;
        let what = if n == 1 {
            format!("{pattern:?}")
        } else {
            format!("{pattern:?} (occurrence {n})")
        };
        loop {
            if self.count(pattern) >= n {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.exited() {
                let stderr = std::fs::read_to_string(self.dir.path().join("qemu.stderr"))
                    .unwrap_or_default();
                return Err(format!(
                    "QEMU exited ({status}) before {what} appeared\nqemu stderr: {stderr}\n{}",
                    self.tail(60)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what} not on the serial console after {timeout:?}\n{}",
                    self.tail(60)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for QEMU to exit by itself (shutdown).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "QEMU still running after {timeout:?}\n{}",
                    self.tail(40)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last `n` lines of the serial log.
    pub fn tail(&self, n: usize) -> String {
        let log = self.serial_log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(n);
        format!(
            "--- serial log (last {} lines) ---\n{}",
            lines.len() - start,
            lines[start..].join("\n")
        )
    }

    /// The kernel timestamp (seconds since boot) of the first console line containing `pattern`.
    pub fn kernel_time(&self, pattern: &str) -> Option<f64> {
        kernel_time(&self.serial_log(), pattern)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("TALOS_KEEP_SERIAL").is_some() {
            static KEPT: AtomicUsize = AtomicUsize::new(0);
            let n = KEPT.fetch_add(1, Ordering::SeqCst);
            let keep =
                std::env::temp_dir().join(format!("talos-serial-{}-{n}.log", std::process::id()));
            let _ = std::fs::copy(&self.serial, &keep);
            eprintln!("serial log kept at {}", keep.display());
        }
    }
}

/// How many times `pattern` occurs in `log` (non-overlapping).
pub fn count(log: &str, pattern: &str) -> usize {
    if pattern.is_empty() {
        return 0;
    }
    log.matches(pattern).count()
}

/// The timestamp of a kernel console line `[    1.234567] text` containing `pattern`.
pub fn kernel_time(log: &str, pattern: &str) -> Option<f64> {
    log.lines().find(|l| l.contains(pattern)).and_then(|l| {
        let l = l.trim_start();
        let rest = l.strip_prefix('[')?;
        let (ts, _) = rest.split_once(']')?;
        ts.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_timestamps() {
        let log =
            "GRUB\n[    0.000000] Linux version 6.1\n[    1.250000] Run /init as init process\n";
        assert_eq!(kernel_time(log, "Run /init"), Some(1.25));
        assert_eq!(kernel_time(log, "Linux version"), Some(0.0));
        assert_eq!(kernel_time(log, "GRUB"), None);
        assert_eq!(kernel_time(log, "absent"), None);
    }

    #[test]
    fn counts_boots() {
        let log = "[ 0.0] Linux version 6.1\nx\n[ 0.0] Linux version 6.1\n";
        assert_eq!(count(log, "Linux version"), 2);
        assert_eq!(count(log, "absent"), 0);
        assert_eq!(count(log, ""), 0);
    }

    #[test]
    fn no_reboot_unless_allowed() {
        let image = Image {
            dir: PathBuf::from("/nonexistent"),
        };
        let serial = Path::new("/tmp/serial.log");
        let args = NodeBuilder::kernel(&image).args(serial);
        assert!(args.iter().any(|a| a == "-no-reboot"), "{args:?}");
        let args = NodeBuilder::kernel(&image).allow_reboot().args(serial);
        assert!(!args.iter().any(|a| a == "-no-reboot"), "{args:?}");
        let args = NodeBuilder::kernel(&image)
            .cmdline_arg("talos.config=http://10.0.2.2:1/c")
            .args(serial);
        let append = args
            .iter()
            .position(|a| a == "-append")
            .map(|i| args[i + 1].clone())
            .unwrap_or_default();
        assert!(
            append.ends_with(" talos.config=http://10.0.2.2:1/c"),
            "{append}"
        );
    }
}
