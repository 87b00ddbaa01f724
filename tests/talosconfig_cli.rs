//! `talosctl config ...` through the real binary, on temp files and a temp HOME.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use talos::client::talosconfig::TalosConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/talosconfig")
        .join(name)
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_talos"));
        c.arg("talosctl")
            .args(args)
            .env("HOME", self.home())
            .env_remove("TALOSCONFIG")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn fail(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "{args:?} unexpectedly succeeded");
        String::from_utf8(o.stderr).unwrap()
    }
}

fn read(path: &Path) -> TalosConfig {
    TalosConfig::read(path).unwrap()
}

#[test]
fn add_select_set_and_list() {
    let env = Env::new();
    let tc = env.path("tc/talosconfig");
    let tcs = tc.to_str().unwrap();
    let ca = fixture("ca.crt");
    let crt = fixture("admin.crt");
    let key = fixture("admin.key");

    env.ok(&[
        "config",
        "add",
        "one",
        "--talosconfig",
        tcs,
        "--ca",
        ca.to_str().unwrap(),
        "--crt",
        crt.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    env.ok(&["--talosconfig", tcs, "config", "add", "two"]);
    let cfg = read(&tc);
    assert_eq!(cfg.context, "");
    assert!(cfg.contexts["one"].crt.len() > 100);
    assert!(cfg.contexts["two"].crt.is_empty());

    // No current context yet.
    assert!(env
        .fail(&["--talosconfig", tcs, "config", "endpoint", "1.2.3.4"])
        .contains("no context is set"));
    assert!(env
        .fail(&["--talosconfig", tcs, "config", "context", "nope"])
        .contains("context \"nope\" is not defined"));

    env.ok(&["--talosconfig", tcs, "config", "use-context", "one"]);
    env.ok(&[
        "--talosconfig",
        tcs,
        "config",
        "endpoints",
        " 10.0.0.1 ",
        "10.0.0.2:50000",
    ]);
    env.ok(&[
        "--talosconfig",
        tcs,
        "config",
        "node",
        "n1",
        "n2",
        "n3",
        "n4",
    ]);
    env.ok(&[
        "--talosconfig",
        tcs,
        "--context",
        "two",
        "config",
        "nodes",
        "m1",
    ]);
    let cfg = read(&tc);
    assert_eq!(cfg.context, "one");
    assert_eq!(
        cfg.contexts["one"].endpoints,
        ["10.0.0.1", "10.0.0.2:50000"]
    );
    assert_eq!(cfg.contexts["one"].nodes, ["n1", "n2", "n3", "n4"]);
    assert_eq!(cfg.contexts["two"].nodes, ["m1"]);

    let table = env.ok(&["--talosconfig", tcs, "config", "contexts"]);
    let expected = format!(
        "{:<10}{:<7}{:<26}NODES\n{:<10}{:<7}{:<26}n1,n2,n3...\n{:<10}{:<7}{:<26}m1\n",
        "CURRENT", "NAME", "ENDPOINTS", "*", "one", "10.0.0.1,10.0.0.2:50000", "", "two", ""
    );
    assert_eq!(table, expected);
    assert_eq!(
        env.ok(&["--talosconfig", tcs, "config", "get-contexts"]),
        table
    );

    // Clearing nodes.
    env.ok(&["--talosconfig", tcs, "config", "node"]);
    assert!(read(&tc).contexts["one"].nodes.is_empty());

    // Both or neither of --crt/--key.
    let err = env.fail(&[
        "--talosconfig",
        tcs,
        "config",
        "add",
        "x",
        "--crt",
        crt.to_str().unwrap(),
    ]);
    assert!(
        err.contains("if either the 'crt' or 'key' flag is specified, both are required"),
        "{err}"
    );
    assert!(!read(&tc).contexts.contains_key("x"));
}

#[test]
fn info_formats() {
    let env = Env::new();
    let tc = env.path("talosconfig");
    let tcs = tc.to_str().unwrap();
    let crt = fixture("admin.crt");
    let key = fixture("admin.key");
    env.ok(&[
        "--talosconfig",
        tcs,
        "config",
        "add",
        "c",
        "--crt",
        crt.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    env.ok(&["--talosconfig", tcs, "config", "add", "bare"]);
    env.ok(&["--talosconfig", tcs, "config", "context", "c"]);
    env.ok(&["--talosconfig", tcs, "config", "endpoint", "1.1.1.1"]);

    let text = env.ok(&["--talosconfig", tcs, "config", "info"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Current context:     c");
    assert_eq!(lines[1], "Nodes:               not defined");
    assert_eq!(lines[2], "Endpoints:           1.1.1.1");
    assert_eq!(lines[3], "Roles:               os:admin, os:reader");
    assert!(
        lines[4].starts_with("Certificate expires: ")
            && lines[4].ends_with(" from now (2036-11-21)"),
        "{}",
        lines[4]
    );
    assert_eq!(lines.len(), 5);

    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["--talosconfig", tcs, "config", "info", "-o", "json"]))
            .unwrap();
    assert_eq!(json["context"], "c");
    assert_eq!(json["nodes"], serde_json::Value::Null);
    assert_eq!(json["endpoints"][0], "1.1.1.1");
    assert_eq!(json["roles"], serde_json::json!(["os:admin", "os:reader"]));
    assert_eq!(json["certNotAfter"], "2036-11-21");

    let yaml: serde_yaml::Value = serde_yaml::from_str(&env.ok(&[
        "--talosconfig",
        tcs,
        "config",
        "info",
        "--output",
        "yaml",
    ]))
    .unwrap();
    assert_eq!(yaml["nodes"], serde_yaml::Value::Sequence(vec![]));
    assert_eq!(yaml["certNotAfter"], serde_yaml::Value::from("2036-11-21"));

    // --context picks the context's data, the "current context" line stays the current one.
    let text = env.ok(&["--talosconfig", tcs, "--context", "bare", "config", "info"]);
    assert_eq!(text, "Current context:     c\nNodes:               not defined\nEndpoints:           not defined\n");

    assert!(env
        .fail(&["--talosconfig", tcs, "config", "info", "-o", "xml"])
        .contains("unknown output format: \"xml\""));
}

#[test]
fn lookup_order() {
    let env = Env::new();
    // Nothing anywhere: ~/.talos/config is created.
    env.ok(&["config", "add", "home"]);
    let home_cfg = env.home().join(".talos/config");
    assert!(read(&home_cfg).contexts.contains_key("home"));

    // $TALOSCONFIG naming a missing file: the existing ~/.talos/config is used.
    let envcfg = env.path("env-config");
    let o = env
        .cmd(&["config", "add", "viaenv"])
        .env("TALOSCONFIG", &envcfg)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(read(&home_cfg).contexts.contains_key("viaenv"));
    assert!(!envcfg.exists());

    // $TALOSCONFIG naming an existing file wins over ~/.talos/config.
    TalosConfig::default().save(&envcfg).unwrap();
    let o = env
        .cmd(&["config", "add", "inenv"])
        .env("TALOSCONFIG", &envcfg)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(read(&envcfg).contexts.contains_key("inenv"));
    assert!(!read(&home_cfg).contexts.contains_key("inenv"));

    // The flag wins over $TALOSCONFIG, and a missing flag file is created.
    let flagcfg = env.path("flag/config");
    let o = env
        .cmd(&[
            "--talosconfig",
            flagcfg.to_str().unwrap(),
            "config",
            "add",
            "inflag",
        ])
        .env("TALOSCONFIG", &envcfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(read(&flagcfg).contexts.contains_key("inflag"));
    assert!(!read(&envcfg).contexts.contains_key("inflag"));
}

#[test]
fn merge_renames() {
    let env = Env::new();
    let a = env.path("a");
    let b = env.path("b");
    std::fs::write(
        &a,
        "context: x\ncontexts:\n  x:\n    endpoints: [1.1.1.1]\n  x-1:\n    endpoints: [2.2.2.2]\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "context: x\ncontexts:\n  x:\n    target: 3.3.3.3\n  y:\n    endpoints: [4.4.4.4]\n",
    )
    .unwrap();
    let o = env.run(&[
        "--talosconfig",
        a.to_str().unwrap(),
        "config",
        "merge",
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "renamed talosconfig context \"x\" -> \"x-2\"\n"
    );
    let cfg = read(&a);
    assert_eq!(cfg.context, "x-2");
    assert_eq!(cfg.contexts["x-2"].endpoints, ["3.3.3.3"]);
    assert_eq!(cfg.contexts["x"].endpoints, ["1.1.1.1"]);
    assert_eq!(cfg.contexts["y"].endpoints, ["4.4.4.4"]);
    assert!(!std::fs::read_to_string(&a).unwrap().contains("target"));

    // Bad input: the error names the file and nothing is written.
    let bad = env.path("bad");
    std::fs::write(&bad, "contexts: [1, 2\n").unwrap();
    let before = std::fs::read(&a).unwrap();
    let err = env.fail(&[
        "--talosconfig",
        a.to_str().unwrap(),
        "config",
        "merge",
        bad.to_str().unwrap(),
    ]);
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    assert_eq!(std::fs::read(&a).unwrap(), before);
}

#[test]
fn remove_contexts() {
    let env = Env::new();
    let tc = env.path("tc");
    let tcs = tc.to_str().unwrap();
    std::fs::write(&tc, "context: prod-1\ncontexts:\n  prod-1: {endpoints: []}\n  prod-2: {endpoints: []}\n  prod-3: {endpoints: []}\n  dev: {endpoints: []}\n").unwrap();

    // Dry run changes nothing.
    let o = env.run(&[
        "--talosconfig",
        tcs,
        "config",
        "remove",
        "prod-*",
        "-y",
        "--dry-run",
    ]);
    assert!(o.status.success());
    assert_eq!(read(&tc).contexts.len(), 4);

    // The current context is kept.
    let o = env.run(&[
        "--talosconfig",
        tcs,
        "config",
        "remove",
        "prod-*",
        "--noconfirm",
    ]);
    assert!(o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("skipping removal of current context \"prod-1\""),
        "{stderr}"
    );
    assert!(stderr.contains("removing context \"prod-2\""), "{stderr}");
    let cfg = read(&tc);
    assert_eq!(cfg.contexts.keys().collect::<Vec<_>>(), ["dev", "prod-1"]);

    // Confirmation read from stdin.
    let mut child = env
        .cmd(&["--talosconfig", tcs, "config", "remove", "dev"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "remove context \"dev\"? (y/N): "
    );
    assert!(read(&tc).contexts.contains_key("dev"));

    let mut child = env
        .cmd(&["--talosconfig", tcs, "config", "remove", "dev"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(!read(&tc).contexts.contains_key("dev"));

    assert!(env
        .fail(&["--talosconfig", tcs, "config", "remove", "zzz*"])
        .contains("no contexts matched \"zzz*\""));
}
