//! Loop devices: a file attached read-only to a free `/dev/loopN`.
//!
//! A free device number comes from `/dev/loop-control` (`LOOP_CTL_GET_FREE`); the file is bound
//! with `LOOP_CONFIGURE` (Linux 5.8+) or, on older kernels, `LOOP_SET_FD` + `LOOP_SET_STATUS64`.
//! The device is set to clear itself automatically: it detaches when the last user (the
//! [`LoopDevice`] handle, or a mount of it) goes away, so a mounted image needs no clean-up and a
//! failed mount leaves nothing behind.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{IoOp, SysError};

const LOOP_SET_FD: u64 = 0x4C00;
const LOOP_SET_STATUS64: u64 = 0x4C04;
const LOOP_CONFIGURE: u64 = 0x4C0A;
const LOOP_CTL_GET_FREE: u64 = 0x4C82;

const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;

/// `struct loop_info64` of `<linux/loop.h>`.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

/// `struct loop_config` of `<linux/loop.h>`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// How many times a device another process grabbed first is given up for the next free one.
const ATTEMPTS: usize = 16;

/// A loop device bound to a file. Dropping the handle closes the device; if nothing else holds
/// it (a mount), the kernel detaches it.
#[derive(Debug)]
pub struct LoopDevice {
    device: File,
    path: PathBuf,
    number: u32,
}

impl LoopDevice {
    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// N.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The open device (read-only).
    pub fn file(&self) -> &File {
        &self.device
    }
}

fn syscall(call: String) -> impl FnOnce(Errno) -> SysError {
    move |source| SysError::Syscall { call, source }
}

fn ioctl(fd: &impl AsRawFd, request: u64, arg: usize) -> Result<i32, Errno> {
    // SAFETY: the requests used here take either an integer or a pointer to a live, correctly
    // laid out #[repr(C)] struct (checked by the callers), as the kernel ABI defines.
    let r = unsafe { nix::libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    Errno::result(r)
}

fn file_info(file: &Path) -> LoopInfo64 {
    let mut info = LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
        lo_file_name: [0; LO_NAME_SIZE],
        lo_crypt_name: [0; LO_NAME_SIZE],
        lo_encrypt_key: [0; LO_KEY_SIZE],
        lo_init: [0; 2],
    };
    // The name is informational (losetup shows it): truncated, always NUL-terminated.
    let name = file.as_os_str().as_encoded_bytes();
    let n = name.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..n].copy_from_slice(&name[..n]);
    info
}

/// Attaches `file` read-only to a free loop device (`dev` is the device directory, `/dev`).
pub fn attach_read_only(dev: &Path, file: &Path) -> Result<LoopDevice, SysError> {
    let backing = File::open(file).map_err(SysError::at(IoOp::Open, file.to_path_buf()))?;
    let control_path = dev.join("loop-control");
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&control_path)
        .map_err(SysError::at(IoOp::Open, control_path.clone()))?;
    let mut last = Errno::EBUSY;
    for _ in 0..ATTEMPTS {
        let number = ioctl(&control, LOOP_CTL_GET_FREE, 0).map_err(syscall(format!(
            "LOOP_CTL_GET_FREE {}",
            control_path.display()
        )))?;
        let number = u32::try_from(number).map_err(|_| SysError::Syscall {
            call: "LOOP_CTL_GET_FREE".into(),
            source: Errno::ERANGE,
        })?;
        let path = dev.join(format!("loop{number}"));
        let device = File::open(&path).map_err(SysError::at(IoOp::Open, path.clone()))?;
        match configure(&device, &backing, file) {
            Ok(()) => {
                return Ok(LoopDevice {
                    device,
                    path,
                    number,
                })
            }
            // Somebody else took this device between GET_FREE and us: take the next one.
            Err(Errno::EBUSY) => last = Errno::EBUSY,
            Err(source) => {
                return Err(SysError::Syscall {
                    call: format!("attaching {} to {}", file.display(), path.display()),
                    source,
                })
            }
        }
    }
    Err(SysError::Syscall {
        call: format!("attaching {} to a free loop device", file.display()),
        source: last,
    })
}

fn configure(device: &File, backing: &File, name: &Path) -> Result<(), Errno> {
    let fd = u32::try_from(backing.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    let config = LoopConfig {
        fd,
        block_size: 0,
        info: file_info(name),
        reserved: [0; 8],
    };
    match ioctl(
        device,
        LOOP_CONFIGURE,
        &config as *const LoopConfig as usize,
    ) {
        Ok(_) => Ok(()),
        // Kernels before 5.8 do not know LOOP_CONFIGURE.
        Err(Errno::EINVAL) | Err(Errno::ENOTTY) => {
            ioctl(device, LOOP_SET_FD, backing.as_raw_fd() as usize)?;
            let info = file_info(name);
            ioctl(
                device,
                LOOP_SET_STATUS64,
                &info as *const LoopInfo64 as usize,
            )?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layout_matches_the_kernel() {
        // sizeof(struct loop_info64) = 232, sizeof(struct loop_config) = 304 on every arch.
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }

    #[test]
    fn long_names_are_truncated_and_terminated() {
        let long = "/x".repeat(100);
        let info = file_info(Path::new(&long));
        assert_eq!(info.lo_file_name[LO_NAME_SIZE - 1], 0);
        assert_eq!(&info.lo_file_name[..4], b"/x/x");
        assert_eq!(info.lo_flags, LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR);
    }

    #[test]
    fn missing_file_or_control_is_an_error() {
        let e = attach_read_only(Path::new("/dev"), Path::new("/nonexistent/img")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/img"), "{e}");
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = attach_read_only(Path::new("/nonexistent-dev"), f.path()).unwrap_err();
        assert!(e.to_string().contains("loop-control"), "{e}");
    }

    #[test]
    fn attaches_read_only_and_detaches_on_drop() {
        if !nix::unistd::geteuid().is_root() || !Path::new("/dev/loop-control").exists() {
            eprintln!("SKIPPED (needs root and /dev/loop-control): attaches_read_only_and_detaches_on_drop");
            return;
        }
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &[7u8; 64 * 1024]).unwrap();
        let dev = attach_read_only(Path::new("/dev"), f.path()).unwrap();
        let sys = PathBuf::from(format!("/sys/block/loop{}", dev.number()));
        let backing = std::fs::read_to_string(sys.join("loop/backing_file")).unwrap();
        assert_eq!(backing.trim(), f.path().to_str().unwrap());
        assert_eq!(std::fs::read_to_string(sys.join("ro")).unwrap().trim(), "1");
        let mut data = vec![0u8; 4096];
        std::io::Read::read_exact(&mut File::open(dev.path()).unwrap(), &mut data).unwrap();
        assert!(data.iter().all(|&b| b == 7));
        drop(dev);
        // Autoclear: the kernel detaches the device once the last handle is gone.
        let detached = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::read_to_string(sys.join("loop/backing_file")).is_err()
        });
        assert!(detached, "{} still attached", sys.display());
    }
}
