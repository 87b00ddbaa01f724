use serde_yaml::Value;

use super::*;

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

fn docs(text: &str) -> Vec<Value> {
    parse_documents(text).unwrap()
}

fn patched(config: &str, patches: &[&str]) -> Result<Vec<Value>, PatchError> {
    let patches = load_patches(patches)?;
    apply(docs(config), &patches)
}

#[test]
fn detects_strategic_merge() {
    let p = load_patch("machine:\n  network:\n    hostname: foo\n").unwrap();
    assert!(matches!(p, Patch::StrategicMerge(ref d) if d.len() == 1));
    let p =
        load_patch("apiVersion: v1alpha1\nkind: SideroLinkConfig\napiUrl: https://x\n").unwrap();
    assert!(matches!(p, Patch::StrategicMerge(_)));
}

#[test]
fn detects_json_patch_in_json_and_yaml() {
    let p = load_patch(r#"[{"op": "add", "path": "/machine/type", "value": "worker"}]"#).unwrap();
    assert!(matches!(p, Patch::Json6902(ref ops) if ops.len() == 1));
    let p = load_patch("- op: remove\n  path: /machine/x\n- op: add\n  path: /a\n  value: 1\n")
        .unwrap();
    assert!(matches!(p, Patch::Json6902(ref ops) if ops.len() == 2));
    // An empty patch is an empty JSON patch, as in Talos.
    assert_eq!(load_patch("").unwrap(), Patch::Json6902(vec![]));
}

#[test]
fn load_errors() {
    // Looks like JSON: the JSON error is reported.
    assert!(matches!(
        load_patch("[{"),
        Err(PatchError::JsonPatchDecode(_))
    ));
    // Otherwise the config decoder's error.
    let err = load_patch("foo: bar\n").unwrap_err();
    assert!(
        matches!(
            err,
            PatchError::Strategic(DocumentError::MissingKind { .. })
        ),
        "{err:?}"
    );
    let err = load_patch("apiVersion: v1alpha1\nkind: Nope\n").unwrap_err();
    assert!(
        err.source_string()
            .contains("\"Nope\" \"v1alpha1\": not registered"),
        "{err:?}"
    );
}

trait SourceString {
    fn source_string(&self) -> String;
}

impl SourceString for PatchError {
    fn source_string(&self) -> String {
        crate::errors::chain(self).to_string()
    }
}

#[test]
fn dollar_patch_is_an_unknown_key() {
    let err = load_patch(
        "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        $patch: delete\n",
    )
    .unwrap_err();
    let msg = err.source_string();
    assert!(msg.contains("unknown keys found during decoding"), "{msg}");
    assert!(msg.contains("$patch"), "{msg}");
    // Free-form maps accept any key.
    load_patch("machine:\n  nodeLabels:\n    $patch: x\n").unwrap();
    // Small kinds are checked key by key.
    let err =
        load_patch("apiVersion: v1alpha1\nkind: SideroLinkConfig\napiUrl: https://x\nfoo: 1\n")
            .unwrap_err();
    assert!(
        err.source_string().contains("foo: 1"),
        "{}",
        err.source_string()
    );
}

#[test]
fn consecutive_json_patches_merge() {
    let ps = load_patches(&[
        r#"[{"op":"add","path":"/a","value":1}]"#,
        "- op: add\n  path: /b\n  value: 2\n",
        "machine:\n  type: worker\n",
        r#"[{"op":"add","path":"/c","value":3}]"#,
    ])
    .unwrap();
    assert_eq!(ps.len(), 3);
    assert!(matches!(&ps[0], Patch::Json6902(ops) if ops.len() == 2));
}

#[test]
fn missing_patch_file_names_the_file() {
    let err = load_patches(&["@/nonexistent/patch.yaml"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read patch file /nonexistent/patch.yaml"
    );
}

#[test]
fn scalars_maps_and_lists() {
    let out = patched(
        "version: v1alpha1\nmachine:\n  type: controlplane\n  certSANs: [a]\n  install:\n    disk: /dev/sda\n    wipe: true\n",
        &["machine:\n  type: \"\"\n  certSANs: [b]\n  install:\n    image: img\n    wipe: false\n"],
    )
    .unwrap();
    assert_eq!(
        out[0],
        yaml("version: v1alpha1\nmachine:\n  type: controlplane\n  certSANs: [a, b]\n  install:\n    disk: /dev/sda\n    wipe: false\n    image: img\n")
    );
}

#[test]
fn replace_lists() {
    let out = patched(
        "version: v1alpha1\ncluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n    serviceSubnets: [10.96.0.0/12]\n  apiServer:\n    auditPolicy:\n      rules: [{level: Metadata}]\n",
        &["cluster:\n  network:\n    podSubnets: [10.0.0.0/8]\n  apiServer:\n    auditPolicy:\n      kind: Policy\n"],
    )
    .unwrap();
    assert_eq!(
        out[0],
        yaml("version: v1alpha1\ncluster:\n  network:\n    podSubnets: [10.0.0.0/8]\n    serviceSubnets: [10.96.0.0/12]\n  apiServer:\n    auditPolicy:\n      kind: Policy\n")
    );
}

#[test]
fn network_rule_lists_replace() {
    let config = "version: v1alpha1\nmachine: {}\n---\napiVersion: v1alpha1\nkind: NetworkRuleConfig\nname: r\nportSelector:\n  ports: [80, 443]\n  protocol: tcp\ningress:\n  - subnet: 10.0.0.0/8\n";
    let out = patched(
        config,
        &["apiVersion: v1alpha1\nkind: NetworkRuleConfig\nname: r\nportSelector:\n  ports: [22]\ningress:\n  - subnet: 192.168.0.0/16\n"],
    )
    .unwrap();
    assert_eq!(
        out[1],
        yaml("apiVersion: v1alpha1\nkind: NetworkRuleConfig\nname: r\nportSelector:\n  ports: [22]\n  protocol: tcp\ningress:\n  - subnet: 192.168.0.0/16\n")
    );
    // Another name is another document.
    let out = patched(
        config,
        &["apiVersion: v1alpha1\nkind: NetworkRuleConfig\nname: other\n"],
    )
    .unwrap();
    assert_eq!(out.len(), 3);
}

#[test]
fn keyed_lists() {
    let out = patched(
        "version: v1alpha1\nmachine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [1.1.1.1/24]\n        vlans:\n          - vlanId: 5\n            mtu: 1500\n      - deviceSelector: {busPath: '0*'}\n        dhcp: true\n",
        &["machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [2.2.2.2/24]\n        vlans:\n          - vlanId: 5\n            mtu: 9000\n          - vlanId: 6\n      - deviceSelector: {busPath: '0*'}\n        dhcp: false\n      - interface: eth1\n"],
    )
    .unwrap();
    assert_eq!(
        out[0],
        yaml("version: v1alpha1\nmachine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [1.1.1.1/24, 2.2.2.2/24]\n        vlans:\n          - vlanId: 5\n            mtu: 9000\n          - vlanId: 6\n      - deviceSelector: {busPath: '0*'}\n        dhcp: false\n      - interface: eth1\n")
    );
}

#[test]
fn selector_with_physical_never_matches() {
    let out = patched(
        "version: v1alpha1\nmachine:\n  network:\n    interfaces:\n      - deviceSelector: {physical: true}\n        dhcp: true\n",
        &["machine:\n  network:\n    interfaces:\n      - deviceSelector: {physical: true}\n        dhcp: false\n"],
    )
    .unwrap();
    assert_eq!(
        out[0]["machine"]["network"]["interfaces"]
            .as_sequence()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn admission_control_keyed_by_name() {
    let out = patched(
        "version: v1alpha1\ncluster:\n  apiServer:\n    admissionControl:\n      - name: PodSecurity\n        configuration: {a: 1}\n",
        &["cluster:\n  apiServer:\n    admissionControl:\n      - name: PodSecurity\n        configuration: {b: 2}\n"],
    )
    .unwrap();
    assert_eq!(
        out[0]["cluster"]["apiServer"]["admissionControl"],
        yaml("- name: PodSecurity\n  configuration: {a: 1, b: 2}\n")
    );
}

#[test]
fn url_merges_part_by_part() {
    let out = patched(
        "version: v1alpha1\ncluster:\n  controlPlane:\n    endpoint: https://old:6443/p?q=1\n",
        &["cluster:\n  controlPlane:\n    endpoint: https://new:6443\n"],
    )
    .unwrap();
    assert_eq!(
        out[0]["cluster"]["controlPlane"]["endpoint"],
        yaml("https://new:6443/p?q=1")
    );
}

#[test]
fn type_mismatch_is_an_error() {
    let err = patched(
        "version: v1alpha1\nmachine:\n  kubelet:\n    extraConfig:\n      a: {b: 1}\n",
        &["machine:\n  kubelet:\n    extraConfig:\n      a: [1]\n"],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "merge type mismatch at machine.kubelet.extraConfig.a: left is a mapping, right is a list"
    );
}

#[test]
fn unmatched_documents_are_appended_and_v1alpha1_goes_first() {
    let out = patched(
        "apiVersion: v1alpha1\nkind: SideroLinkConfig\napiUrl: https://x\n",
        &["machine:\n  type: worker\n"],
    )
    .unwrap();
    assert_eq!(out[0], yaml("machine:\n  type: worker\n"));
    assert_eq!(out.len(), 2);
}

#[test]
fn json6902_single_and_multi_doc() {
    let out = patched(
        "version: v1alpha1\nmachine:\n  type: worker\n",
        &[r#"[{"op":"replace","path":"/machine/type","value":"controlplane"}]"#],
    )
    .unwrap();
    assert_eq!(out[0]["machine"]["type"], yaml("controlplane"));
    let err = patched(
        "version: v1alpha1\n---\napiVersion: v1alpha1\nkind: SideroLinkConfig\napiUrl: https://x\n",
        &[r#"[{"op":"add","path":"/a","value":1}]"#],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "JSON6902 patches are not supported for multi-document machine configuration"
    );
    let err = patched(
        "version: v1alpha1\n",
        &[r#"[{"op":"remove","path":"/nope"}]"#],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failure applying rfc6902 patches"),
        "{err}"
    );
    let err = patched(
        "version: v1alpha1\n",
        &[r#"[{"op":"frobnicate","path":"/"}]"#],
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::Json6902Operation(_)), "{err:?}");
}

#[test]
fn no_patches_returns_input_verbatim() {
    let text = "# comment\nversion: v1alpha1\n";
    assert_eq!(apply_to_text(text, &[]).unwrap(), text);
}

#[test]
fn empty_config_is_refused() {
    let err = patched("", &["machine:\n  type: worker\n"]).unwrap_err();
    assert_eq!(
        err.source_string(),
        "machine config is invalid: config not found"
    );
    let err = patched("", &["[]"]).unwrap_err();
    assert!(matches!(err, PatchError::Json6902MultiDoc));
}
