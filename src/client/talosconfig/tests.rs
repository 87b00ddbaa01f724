use super::*;

const SAMPLE: &str = "context: prod
contexts:
  prod:
    endpoints:
      - 10.0.0.1
      - 10.0.0.2:50000
    nodes:
      - 10.0.0.5
    ca: Q0E=
    crt: Q1JU
    key: S0VZ
    auth:
      basic:
        username: u
        password: p
      siderov1:
        identity: me@example.com
    cluster: c1
  dev:
    endpoints: []
";

#[test]
fn round_trip() {
    let cfg = TalosConfig::from_yaml(SAMPLE).unwrap();
    assert_eq!(cfg.context, "prod");
    let prod = &cfg.contexts["prod"];
    assert_eq!(prod.endpoints, ["10.0.0.1", "10.0.0.2:50000"]);
    assert_eq!(prod.auth.basic.as_ref().unwrap().username, "u");
    assert_eq!(
        prod.auth.siderov1.as_ref().unwrap().identity,
        "me@example.com"
    );
    assert_eq!(prod.cluster, "c1");
    let text = cfg.to_yaml().unwrap();
    assert_eq!(TalosConfig::from_yaml(&text).unwrap(), cfg);
}

#[test]
fn omits_empty_fields_but_keeps_endpoints() {
    let cfg = TalosConfig::new("x", Context::default());
    let v: serde_yaml::Value = serde_yaml::from_str(&cfg.to_yaml().unwrap()).unwrap();
    let ctx = v["contexts"]["x"].as_mapping().unwrap();
    assert_eq!(ctx.len(), 1, "{ctx:?}");
    assert_eq!(
        v["contexts"]["x"]["endpoints"],
        serde_yaml::Value::Sequence(vec![])
    );
    // Contexts come out sorted by name.
    let mut cfg = TalosConfig::default();
    cfg.contexts.insert("b".into(), Context::default());
    cfg.contexts.insert("a".into(), Context::default());
    let text = cfg.to_yaml().unwrap();
    assert!(text.find("a:").unwrap() < text.find("b:").unwrap());
}

#[test]
fn target_is_upgraded_to_endpoints() {
    let cfg = TalosConfig::from_yaml(
        "context: a\ncontexts:\n  a:\n    target: 1.2.3.4\n    endpoints: [5.6.7.8]\n",
    )
    .unwrap();
    assert_eq!(cfg.contexts["a"].endpoints, ["5.6.7.8", "1.2.3.4"]);
    assert!(cfg.contexts["a"].deprecated_target.is_empty());
    assert!(!cfg.to_yaml().unwrap().contains("target"));
}

#[test]
fn tolerates_nulls_and_empty() {
    assert_eq!(TalosConfig::from_yaml("").unwrap(), TalosConfig::default());
    let cfg =
        TalosConfig::from_yaml("context: a\ncontexts:\n  a:\n  b:\n    endpoints:\n").unwrap();
    assert_eq!(cfg.contexts.len(), 2);
}

#[test]
fn merge_renames_clashes() {
    let mut cfg = TalosConfig::from_yaml(
        "context: a\ncontexts:\n  a: {endpoints: [1]}\n  a-1: {endpoints: [2]}\n",
    )
    .unwrap();
    let other = TalosConfig::from_yaml(
        "context: a\ncontexts:\n  a: {endpoints: [3]}\n  b: {endpoints: [4]}\n",
    )
    .unwrap();
    let renames = cfg.merge(other);
    assert_eq!(
        renames,
        vec![Rename {
            from: "a".into(),
            to: "a-2".into()
        }]
    );
    assert_eq!(renames[0].to_string(), "\"a\" -> \"a-2\"");
    assert_eq!(cfg.context, "a-2");
    assert_eq!(cfg.contexts["a-2"].endpoints, ["3"]);
    assert_eq!(cfg.contexts["b"].endpoints, ["4"]);
    assert_eq!(cfg.contexts["a"].endpoints, ["1"]);
    // No current context in the other config: ours stays.
    let mut cfg2 = cfg.clone();
    cfg2.merge(TalosConfig::from_yaml("contexts:\n  z: {}\n").unwrap());
    assert_eq!(cfg2.context, "a-2");
}

#[test]
fn lookup_order() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let env_path = dir.path().join("env-config");
    let explicit = dir.path().join("flag/config");

    // Nothing exists: $TALOSCONFIG is created.
    let loc = locate(None, Some(env_path.as_os_str()), Some(&home)).unwrap();
    assert_eq!(loc.path, env_path);
    assert!(env_path.exists());

    // Without $TALOSCONFIG: ~/.talos/config is created (0600).
    let loc = locate(None, None, Some(&home)).unwrap();
    assert_eq!(loc.path, home.join(".talos/config"));
    assert!(loc.write_allowed);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&loc.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // $TALOSCONFIG pointing at a missing file falls through to the existing ~/.talos/config.
    let missing = dir.path().join("missing");
    let loc = locate(None, Some(missing.as_os_str()), Some(&home)).unwrap();
    assert_eq!(loc.path, home.join(".talos/config"));
    assert!(!missing.exists());

    // An explicit path wins and is created.
    let loc = locate(Some(&explicit), Some(env_path.as_os_str()), Some(&home)).unwrap();
    assert_eq!(loc.path, explicit);
    assert_eq!(
        TalosConfig::read(&explicit).unwrap(),
        TalosConfig::default()
    );

    assert!(matches!(
        locate(None, None, None),
        Err(TalosConfigError::NoHome)
    ));
}

#[test]
fn read_only_location_is_not_written() {
    let loc = ConfigPath {
        path: "/nonexistent/x".into(),
        write_allowed: false,
    };
    let err = TalosConfig::default().save_to(&loc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not allowed to write to config: /nonexistent/x"
    );
}

#[test]
fn context_checks() {
    let cfg = TalosConfig::from_yaml(SAMPLE).unwrap();
    cfg.require_context("").unwrap();
    cfg.require_context("dev").unwrap();
    assert_eq!(
        cfg.require_context("nope").unwrap_err().to_string(),
        "context \"nope\" is not defined"
    );
    assert!(matches!(
        TalosConfig::default().require_context(""),
        Err(TalosConfigError::NoContext)
    ));
    assert_eq!(cfg.context_data(Some("dev")).unwrap().endpoints.len(), 0);
    assert_eq!(cfg.context_data(None).unwrap().nodes, ["10.0.0.5"]);
}
