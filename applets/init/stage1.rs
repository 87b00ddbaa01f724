//! Stage 1: the `talos` binary as the initramfs's `/init`.
//!
//! The kernel unpacks `initramfs.xz` into a ramfs and runs `/init` as PID 1. Stage 1 then:
//!
//! 1. mounts `/dev` (devtmpfs), `/proc`, `/sys` and points stdio at `/dev/console`;
//! 2. loads the kernel modules named in `/lib/modules/<release>/modules.load` (dependencies first,
//!    from `modules.dep`; a module already loaded or built in is fine, a failure is a warning);
//! 3. attaches `/rootfs.sqsh` and `/extensions.sqsh` to loop devices (read-only) and mounts them
//!    under `/lower/`;
//! 4. mounts the new root at `/root`: a read-only overlay with the extensions over the rootfs
//!    (just the rootfs if there are no extensions), then a tmpfs on each writable directory
//!    Talos keeps in memory — `/run`, `/system`, `/tmp` and `/var` (until an install gives
//!    `/var` a disk);
//! 5. `switch_root`s into `/root` (moving `/dev`, `/proc`, `/sys`) and execs `/sbin/init`.
//!
//! Why a read-only root with tmpfs mounts rather than an overlay with a writable upper layer:
//! that is Talos's model (an immutable root; only the listed directories are writable) and it
//! gives init on metal the same starting point the container provisioner gives it (read-only
//! root, tmpfs on `/run`, `/system`, `/tmp`, writable `/var`), so init has one code path.
//!
//! Every step is logged to `/dev/kmsg` with a `[talos] ` prefix, so the console shows a
//! timeline with the kernel's timestamps. Stage 1 is PID 1: it never panics and never exits;
//! on an error it logs it and tries again after a pause.

use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::mount::{mount, MsFlags};
use talos::errors::chain;
use talos::sys::{kmod, loopdev, switch_root};

/// The root file system image in the initramfs.
pub const ROOTFS_IMAGE: &str = "/rootfs.sqsh";
/// The system extensions image in the initramfs (optional).
pub const EXTENSIONS_IMAGE: &str = "/extensions.sqsh";
/// Where the new root is assembled.
const NEW_ROOT: &str = "/root";
/// Where the squashfs images are mounted (the overlay's lower layers).
const LOWER: &str = "/lower";
/// The real init, in the new root.
const INIT: &str = "/sbin/init";
/// The tmpfs mounts of the new root: directory, mode, extra flags.
const WRITABLE: [(&str, &str, MsFlags); 4] = [
    ("run", "0755", MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV)),
    (
        "system",
        "0755",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
    ),
    ("tmp", "1777", MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV)),
    ("var", "0755", MsFlags::empty()),
];
/// Pause between attempts after a failure.
const RETRY: Duration = Duration::from_secs(5);

/// Whether this process is stage 1: PID 1, started as `/init` or with the root image present.
pub fn is_stage1(args: &[OsString]) -> bool {
    std::process::id() == 1
        && (args.first().is_some_and(|a| a == "/init") || Path::new(ROOTFS_IMAGE).exists())
}

/// Log lines to the kernel log (the console shows them), or stderr before `/dev` exists.
struct Log {
    kmsg: Option<File>,
}

impl Log {
    fn new() -> Self {
        let mut log = Log { kmsg: None };
        log.reopen();
        log
    }

    fn reopen(&mut self) {
        self.kmsg = OpenOptions::new().write(true).open("/dev/kmsg").ok();
    }

    fn write(&mut self, level: u8, msg: &str) {
        for line in msg.lines() {
            let record = format!("<{level}>[talos] {line}\n");
            let written = self
                .kmsg
                .as_mut()
                .is_some_and(|k| k.write_all(record.as_bytes()).is_ok());
            if !written {
                eprintln!("[talos] {line}");
            }
        }
    }

    fn info(&mut self, msg: &str) {
        self.write(6, msg);
    }

    fn warn(&mut self, msg: &str) {
        self.write(4, msg);
    }

    fn error(&mut self, msg: &str) {
        self.write(3, msg);
    }
}

/// Entry point: never returns while it is PID 1.
pub fn main() -> std::process::ExitCode {
    let mut log = Log::new();
    let mut state = State::default();
    let started = Instant::now();
    let mut attempt = 1u32;
    loop {
        match state.run(&mut log, started) {
            Ok(never) => match never {},
            Err(e) => {
                log.error(&format!(
                    "stage 1 failed (attempt {attempt}): {}",
                    chain(e.as_ref())
                ));
                log.error(&format!("retrying in {}s", RETRY.as_secs()));
                std::thread::sleep(RETRY);
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

/// Progress kept across retries (steps that cannot be repeated).
#[derive(Default)]
struct State {
    modules_loaded: bool,
    switched: bool,
}

fn mkdir(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))
}

/// Mounts `fstype` on `target` unless something is mounted there already.
fn mount_once(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> anyhow::Result<bool> {
    mkdir(target)?;
    if switch_root::is_mount_point(target)? {
        return Ok(false);
    }
    mount(Some(source), target, Some(fstype), flags, data)
        .with_context(|| format!("mounting {fstype} on {}", target.display()))?;
    Ok(true)
}

fn elapsed(started: Instant) -> String {
    format!("{}ms", started.elapsed().as_millis())
}

impl State {
    fn run(&mut self, log: &mut Log, started: Instant) -> anyhow::Result<Infallible> {
        if !self.switched {
            self.prepare(log, started)?;
            let failures = switch_root::switch_root(Path::new(NEW_ROOT))
                .context("switching to the new root")?;
            self.switched = true;
            log.info(&format!(
                "switch_root done ({}; {failures} initramfs entries kept: mount points)",
                elapsed(started)
            ));
        }
        log.info(&format!("exec {INIT} ({})", elapsed(started)));
        let init = CString::new(INIT).context("init path")?;
        let err = nix::unistd::execv(&init, &[&init]).unwrap_err();
        Err(anyhow::anyhow!("exec {INIT}: {err}"))
    }

    fn prepare(&mut self, log: &mut Log, started: Instant) -> anyhow::Result<()> {
        let nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
        if mount_once(
            "devtmpfs",
            Path::new("/dev"),
            "devtmpfs",
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
        )? {
            // /dev/kmsg exists only now: this is the first line the console shows.
            log.reopen();
            attach_console(log);
            log.info(&format!(
                "stage 1: talos {} initramfs /init starting",
                talos::version::TALOS_VERSION
            ));
        }
        mount_once("proc", Path::new("/proc"), "proc", nosuid_noexec, None)?;
        mount_once("sysfs", Path::new("/sys"), "sysfs", nosuid_noexec, None)?;
        log.info(&format!("mounted /dev, /proc, /sys ({})", elapsed(started)));
        if let Ok(cmdline) = std::fs::read_to_string("/proc/cmdline") {
            log.info(&format!("kernel command line: {}", cmdline.trim()));
        }

        if !self.modules_loaded {
            load_modules(log, started);
            self.modules_loaded = true;
        }

        let rootfs = Path::new(LOWER).join("rootfs");
        mount_image(log, Path::new(ROOTFS_IMAGE), &rootfs)?;
        let extensions = Path::new(LOWER).join("extensions");
        let have_extensions = Path::new(EXTENSIONS_IMAGE).exists();
        if have_extensions {
            mount_image(log, Path::new(EXTENSIONS_IMAGE), &extensions)?;
        } else {
            log.warn(&format!(
                "{EXTENSIONS_IMAGE} not found: booting without extensions"
            ));
        }

        let new_root = Path::new(NEW_ROOT);
        mkdir(new_root)?;
        if !switch_root::is_mount_point(new_root)? {
            if have_extensions {
                let data = format!("lowerdir={}:{}", extensions.display(), rootfs.display());
                mount(
                    Some("overlay"),
                    new_root,
                    Some("overlay"),
                    MsFlags::MS_RDONLY,
                    Some(data.as_str()),
                )
                .with_context(|| format!("mounting the root overlay ({data}) on {NEW_ROOT}"))?;
                log.info(&format!(
                    "root: read-only overlay of extensions over rootfs on {NEW_ROOT} ({})",
                    elapsed(started)
                ));
            } else {
                mount(
                    Some(&rootfs),
                    new_root,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .with_context(|| format!("binding {} on {NEW_ROOT}", rootfs.display()))?;
                log.info(&format!(
                    "root: rootfs on {NEW_ROOT} ({})",
                    elapsed(started)
                ));
            }
        }
        for (dir, mode, flags) in WRITABLE {
            let target = new_root.join(dir);
            if !target.is_dir() {
                log.warn(&format!("/{dir} missing in the root image: not mounted"));
                continue;
            }
            let data = format!("mode={mode}");
            mount_once("tmpfs", &target, "tmpfs", flags, Some(&data))?;
        }
        log.info("tmpfs on /run, /system, /tmp, /var");
        if !new_root.join(INIT.trim_start_matches('/')).exists() {
            anyhow::bail!("{INIT} not found in the root image");
        }
        Ok(())
    }
}

/// Points stdin/stdout/stderr at `/dev/console` (the kernel could not open it: the initramfs
/// has no device nodes before devtmpfs is mounted).
fn attach_console(log: &mut Log) {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        Ok(console) => {
            let r = nix::unistd::dup2_stdin(&console)
                .and_then(|()| nix::unistd::dup2_stdout(&console))
                .and_then(|()| nix::unistd::dup2_stderr(&console));
            if let Err(e) = r {
                log.warn(&format!("attaching /dev/console: {e}"));
            }
        }
        Err(e) => log.warn(&format!("opening /dev/console: {e}")),
    }
}

/// The module tree of the running kernel in the initramfs.
fn load_modules(log: &mut Log, started: Instant) {
    let Some(dir) = kmod::running_release_dir(Path::new(talos::constants::KERNEL_MODULES_PATH))
    else {
        log.info(
            "loaded 0 kernel modules: no /lib/modules for this kernel, its drivers are built in",
        );
        return;
    };
    let tree = match kmod::ModuleTree::open(&dir) {
        Ok(tree) => tree,
        Err(e) => {
            log.warn(&format!("kernel modules: {}", chain(&e)));
            return;
        }
    };
    let list = match std::fs::read_to_string(dir.join("modules.load")) {
        Ok(text) => kmod::parse_list(&text),
        Err(e) => {
            log.warn(&format!("{}: {e}", dir.join("modules.load").display()));
            return;
        }
    };
    let report = tree.load_all(&list);
    for (name, e) in &report.failed {
        log.warn(&format!("loading module {name}: {}", chain(e)));
    }
    log.info(&format!(
        "loaded {} kernel modules ({} already present, {} failed) for {} requested ({})",
        report.loaded.len(),
        report.present.len(),
        report.failed.len(),
        list.len(),
        elapsed(started)
    ));
}

/// Attaches a squashfs image to a loop device and mounts it read-only on `target`.
fn mount_image(log: &mut Log, image: &Path, target: &Path) -> anyhow::Result<()> {
    mkdir(target)?;
    if switch_root::is_mount_point(target)? {
        return Ok(());
    }
    let device = loopdev::attach_read_only(Path::new("/dev"), image)
        .with_context(|| format!("attaching {} to a loop device", image.display()))?;
    mount(
        Some(device.path()),
        target,
        Some("squashfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "mounting {} ({}) on {}",
            image.display(),
            device.path().display(),
            target.display()
        )
    })?;
    log.info(&format!(
        "mounted {} via {} on {}",
        image.display(),
        device.path().display(),
        target.display()
    ));
    // The mount holds the device now; the handle can go (autoclear detaches on unmount).
    drop(device);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_process_is_not_stage1() {
        assert!(!is_stage1(&["/init".into()]));
    }
}
