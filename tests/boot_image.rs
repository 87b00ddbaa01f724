//! The image build's own checks: the shell scripts parse (and pass shellcheck when it is
//! installed), the kernel fragment and the buildroot external tree are well formed, and — with
//! `TALOS_IMAGE_TESTS=1` (ci/boot-test), after `ci/build-image` filled the package cache — two
//! builds give byte-identical initramfs and squashfs images.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const SCRIPTS: &[&str] = &[
    "ci/build-image",
    "ci/boot-test",
    "boot/image-lib.sh",
    "boot/kernel/build.sh",
    "buildroot-overlay/board/talos/post-build.sh",
    "buildroot-overlay/board/talos/post-image.sh",
];

#[test]
fn scripts_parse_and_pass_shellcheck() {
    for s in SCRIPTS {
        let out = Command::new("bash")
            .arg("-n")
            .arg(repo().join(s))
            .output()
            .expect("running bash -n");
        assert!(
            out.status.success(),
            "bash -n {s}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    match Command::new("shellcheck")
        .arg("-x")
        .args(SCRIPTS)
        .current_dir(repo())
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => eprintln!("SKIPPED (shellcheck not installed): shellcheck part"),
    }
}

#[test]
fn kernel_fragment_is_well_formed() {
    let text = std::fs::read_to_string(repo().join("boot/kernel/talos.config")).unwrap();
    let mut options = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("talos.config:{}: expected CONFIG_X=value", n + 1));
        assert!(
            key.starts_with("CONFIG_")
                && key[7..]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "talos.config:{}: bad option name {key}",
            n + 1
        );
        assert!(
            matches!(value, "y" | "n" | "m")
                || value.parse::<i64>().is_ok()
                || (value.starts_with('"') && value.ends_with('"')),
            "talos.config:{}: bad value {value}",
            n + 1
        );
        options += 1;
    }
    // What stage 1 relies on when nothing is a module.
    for needed in [
        "CONFIG_SQUASHFS=y",
        "CONFIG_OVERLAY_FS=y",
        "CONFIG_BLK_DEV_LOOP=y",
        "CONFIG_DEVTMPFS=y",
        "CONFIG_VIRTIO_NET=y",
        "CONFIG_RD_XZ=y",
    ] {
        assert!(text.lines().any(|l| l.trim() == needed), "missing {needed}");
    }
    assert!(options > 50);
}

#[test]
fn buildroot_external_tree_is_consistent() {
    let br = repo().join("buildroot-overlay");
    let desc = std::fs::read_to_string(br.join("external.desc")).unwrap();
    assert!(desc.lines().any(|l| l == "name: TALOS_RS"), "{desc}");
    let defconfig = std::fs::read_to_string(br.join("configs/talos_defconfig")).unwrap();
    // Every $(BR2_EXTERNAL_TALOS_RS_PATH)/... path the defconfig names exists.
    let mut referenced = 0;
    for line in defconfig.lines().filter(|l| !l.starts_with('#')) {
        if let Some(i) = line.find("$(BR2_EXTERNAL_TALOS_RS_PATH)/") {
            let rest = &line[i + "$(BR2_EXTERNAL_TALOS_RS_PATH)/".len()..];
            let path = rest.trim_end_matches('"');
            let full = br.join(path);
            assert!(full.exists(), "{line}: {} does not exist", full.display());
            referenced += 1;
        }
    }
    assert_eq!(
        referenced, 3,
        "post-build, post-image and the kernel fragment"
    );
    for hook in ["board/talos/post-build.sh", "board/talos/post-image.sh"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(br.join(hook)).unwrap().permissions(),
        );
        assert!(mode & 0o111 != 0, "{hook} is not executable");
    }
    let config_in = std::fs::read_to_string(br.join("Config.in")).unwrap();
    for line in config_in.lines() {
        if let Some(p) = line
            .trim()
            .strip_prefix("source \"$BR2_EXTERNAL_TALOS_RS_PATH/")
        {
            assert!(br.join(p.trim_end_matches('"')).exists(), "{line}");
        }
    }
    assert!(br.join("package/talos-rs/talos-rs.mk").exists());
    assert!(defconfig.contains("BR2_PACKAGE_TALOS_RS=y"));
}

fn build(out: &Path, bin: &Path, cache: &Path) {
    let status = Command::new(repo().join("ci/build-image"))
        .arg("--bin")
        .arg(bin)
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .arg("--no-iso")
        .status()
        .expect("running ci/build-image");
    assert!(status.success(), "ci/build-image --out {}", out.display());
}

#[test]
fn image_build_is_reproducible() {
    let name = "image_build_is_reproducible";
    if std::env::var_os("TALOS_IMAGE_TESTS").is_none() {
        eprintln!("SKIPPED (set TALOS_IMAGE_TESTS=1, as ci/boot-test does): {name}");
        return;
    }
    let cache = repo().join("_out/cache");
    if !cache.join("debs").is_dir() {
        eprintln!("SKIPPED (no package cache: run ci/build-image first): {name}");
        return;
    }
    // The binary is an input like any other: the built static one if present.
    let bin = [repo().join("_out/talos")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_talos")));
    let tmp = tempfile::Builder::new()
        .prefix(".repro")
        .tempdir_in(repo().join("_out"))
        .unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    build(&a, &bin, &cache);
    build(&b, &bin, &cache);
    for f in ["initramfs.xz", "rootfs.sqsh", "extensions.sqsh", "vmlinuz"] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(
            x == y,
            "{f} differs between two builds ({} vs {} bytes)",
            x.len(),
            y.len()
        );
    }
}
