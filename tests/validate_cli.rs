//! `talosctl validate` through the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::path::Path;
use std::process::Command;

mod common;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/config")
        .join(name)
        .display()
        .to_string()
}

fn validate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["talosctl", "validate"])
        .args(args)
        .output()
        .expect("run talos");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The path of conformance file `name` as a string, or `None` (after the skip notice for `test`).
fn conformance(test: &str, name: &str) -> Option<String> {
    let [path] = common::conformance_files(test, [name])?;
    Some(path.display().to_string())
}

#[test]
fn valid_config_prints_like_talos() {
    let Some(f) = conformance(
        "valid_config_prints_like_talos",
        "stability-v1.7-base-controlplane.yaml",
    ) else {
        return;
    };
    let (ok, stdout, _) = validate(&["--config", &f, "--mode", "cloud"]);
    assert!(ok);
    assert_eq!(stdout, format!("{f} is valid for cloud mode\n"));
}

#[test]
fn own_config_is_valid_for_metal_strict() {
    let (ok, stdout, _) = validate(&[
        "-c",
        &fixture("v1alpha1-everything.yaml"),
        "-m",
        "metal",
        "--strict",
    ]);
    assert!(ok, "{stdout}");
}

#[test]
fn invalid_for_mode_exits_non_zero_with_key_path() {
    let Some(f) = conformance(
        "invalid_for_mode_exits_non_zero_with_key_path",
        "stability-v1.7-base-worker.yaml",
    ) else {
        return;
    };
    let (ok, stdout, stderr) = validate(&["--config", &f, "--mode", "metal"]);
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(stderr.contains("machine.install.disk"), "{stderr}");
    assert!(stderr.contains("not valid for metal mode"), "{stderr}");
    let (ok, _, stderr) = validate(&["--config", &f, "--mode", "container"]);
    assert!(!ok);
    assert!(
        stderr.contains("machine.features.hostDNS.forwardKubeDNSToHost"),
        "{stderr}"
    );
}

#[test]
fn strict_turns_warnings_into_errors() {
    let Some(f) = conformance(
        "strict_turns_warnings_into_errors",
        "stability-v1.7-base-worker.yaml",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(&f).expect("read");
    let path = dir.path().join("join.yaml");
    std::fs::write(&path, text.replace("type: worker", "type: join")).expect("write");
    let p = path.display().to_string();
    let (ok, stdout, stderr) = validate(&["-c", &p, "-m", "cloud"]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("WARNING: machine.type: use \"worker\" instead of \"join\""),
        "{stderr}"
    );
    assert!(stdout.contains("is valid for cloud mode"));
    let (ok, _, stderr) = validate(&["-c", &p, "-m", "cloud", "--strict"]);
    assert!(!ok);
    assert!(stderr.contains("warning: use \"worker\""), "{stderr}");
}

#[test]
fn decode_errors_and_bad_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "version: v1alpha1\nmachine:\n  typo: 1\n").expect("write");
    let p = path.display().to_string();
    let (ok, _, stderr) = validate(&["-c", &p, "-m", "metal"]);
    assert!(!ok);
    assert!(
        stderr.contains(&p) && stderr.contains("machine.typo"),
        "{stderr}"
    );
    let (ok, _, stderr) = validate(&["-c", &p, "-m", "moon"]);
    assert!(!ok);
    assert!(stderr.contains("unknown mode"), "{stderr}");
    let (ok, _, stderr) = validate(&["-c", "/nonexistent/x.yaml", "-m", "metal"]);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/x.yaml"), "{stderr}");
}
