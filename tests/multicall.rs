//! The multicall dispatch: by argv[0] basename, by first argument, `--list`, unknown names.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::process::Command;

fn talos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_talos"))
}

#[test]
fn list_names_every_applet() {
    let out = talos().arg("--list").output().expect("run talos");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "init",
        "apid",
        "trustd",
        "networkd",
        "installer",
        "talosctl",
    ] {
        assert!(text.lines().any(|l| l == name), "missing {name} in {text}");
    }
}

#[test]
fn unknown_applet_exits_2_with_a_message() {
    let out = talos().arg("nosuch").output().expect("run talos");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown applet \"nosuch\""), "{err}");
}

#[test]
fn no_arguments_is_a_usage_error() {
    let out = talos().output().expect("run talos");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn first_argument_dispatch() {
    let out = talos()
        .args(["talosctl", "version", "--client"])
        .output()
        .expect("run talos");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Client:"));
}

#[test]
fn argv0_dispatch_through_a_symlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("talosctl");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_talos"), &link).expect("symlink");
    let out = Command::new(&link)
        .args(["version", "--client"])
        .output()
        .expect("run talosctl");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Client:"));
}
