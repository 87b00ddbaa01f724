//! Writing a config with documentation comments (`gen config --with-docs --with-examples`).
//!
//! The layout follows Talos's commented output: a short description on the line of each scalar
//! field (`type: worker # ...`), a head comment above each block field, and, for documented fields
//! that the config leaves out, their example values commented out so a user can uncomment them.
//! Comments never change the data: parsing the commented text gives the same documents as
//! [`Config::to_yaml`].

use serde_yaml::{Mapping, Value};

use super::docs::{self, FieldDoc};
use super::{Config, ConfigError};

/// Which comments to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommentOptions {
    /// A description for each documented field.
    pub docs: bool,
    /// Commented-out examples for documented fields that are absent.
    pub examples: bool,
}

impl CommentOptions {
    /// True when no comment at all is written.
    pub fn is_none(self) -> bool {
        !self.docs && !self.examples
    }
}

/// Width of one indentation level in Talos's YAML.
const INDENT: usize = 4;

/// Serializes `config` with the comments selected by `opts`.
pub fn to_yaml_with_comments(config: &Config, opts: CommentOptions) -> Result<String, ConfigError> {
    if opts.is_none() {
        return config.to_yaml();
    }
    let mut parts = Vec::new();
    for doc in config.documents() {
        let value = doc.to_value()?;
        let root = match doc.kind() {
            "v1alpha1" => String::new(),
            kind => kind.to_string(),
        };
        let mut out = String::new();
        if opts.docs && !root.is_empty() {
            if let Some(d) = docs::lookup(&root) {
                out.push_str(&format!("# {}\n", d.description));
            }
        }
        match &value {
            Value::Mapping(m) => write_mapping(&mut out, m, &root, 0, opts),
            other => out.push_str(&crate::yaml::emit(other)),
        }
        parts.push(out);
    }
    Ok(parts.join("---\n"))
}

/// The doc path of a field `key` under `parent`.
fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// True when some documented field lives below `path`.
fn documented_below(path: &str) -> bool {
    let dot = format!("{path}.");
    let map = format!("{path}{{}}");
    docs::all()
        .iter()
        .any(|d| d.path.starts_with(&dot) || d.path.starts_with(&map))
}

/// Indents every non-empty line of `text` by `n` spaces.
fn indent_lines(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut out = String::with_capacity(text.len() + n * 8);
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(line);
        } else {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// Emits `key: value` as a one-entry mapping at column 0.
fn emit_entry(key: &Value, value: &Value) -> String {
    let mut m = Mapping::new();
    m.insert(key.clone(), value.clone());
    crate::yaml::emit(&Value::Mapping(m))
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Mapping(m) => !m.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Tagged(t) => is_block(&t.value),
        _ => false,
    }
}

fn write_mapping(out: &mut String, map: &Mapping, path: &str, level: usize, opts: CommentOptions) {
    let col = level * INDENT;
    // A map whose entries are user-chosen names documents its values under `path{}`.
    let keyed = docs::lookup(&format!("{path}{{}}")).is_some()
        || docs::all()
            .iter()
            .any(|d| d.path.starts_with(&format!("{path}{{}}.")));
    for (key, value) in map {
        let name = key.as_str().unwrap_or_default();
        let field_path = if keyed {
            format!("{path}{{}}")
        } else {
            child_path(path, name)
        };
        let doc = if keyed {
            None
        } else {
            docs::lookup(&field_path)
        };
        let description = doc.filter(|_| opts.docs).map(|d| d.description);

        if let (Value::Mapping(inner), true) = (value, documented_below(&field_path)) {
            if inner.is_empty() {
                write_scalar_entry(out, key, value, col, description);
            } else {
                if let Some(text) = description {
                    out.push_str(&format!("{}# {text}\n", " ".repeat(col)));
                }
                out.push_str(
                    &indent_lines(&emit_entry(key, &Value::Null), col).replace(" null\n", "\n"),
                );
                write_mapping(out, inner, &field_path, level + 1, opts);
            }
        } else if is_block(value) {
            if let Some(text) = description {
                out.push_str(&format!("{}# {text}\n", " ".repeat(col)));
            }
            out.push_str(&indent_lines(&emit_entry(key, value), col));
        } else {
            write_scalar_entry(out, key, value, col, description);
        }
    }
    if opts.examples && !keyed {
        write_absent_examples(out, map, path, col, opts);
    }
}

/// `key: value # description` when the value fits on one line, else a head comment.
fn write_scalar_entry(
    out: &mut String,
    key: &Value,
    value: &Value,
    col: usize,
    description: Option<&str>,
) {
    let text = emit_entry(key, value);
    let single = text.matches('\n').count() == 1;
    match description {
        Some(d) if single => {
            let line = text.trim_end_matches('\n');
            out.push_str(&format!("{}{line} # {d}\n", " ".repeat(col)));
        }
        Some(d) => {
            out.push_str(&format!("{}# {d}\n", " ".repeat(col)));
            out.push_str(&indent_lines(&text, col));
        }
        None => out.push_str(&indent_lines(&text, col)),
    }
}

/// Commented-out examples for the documented direct children of `path` missing from `map`.
fn write_absent_examples(
    out: &mut String,
    map: &Mapping,
    path: &str,
    col: usize,
    opts: CommentOptions,
) {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    };
    let children = docs::all().iter().filter(|d: &&FieldDoc| {
        d.path
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(['.', '[', '{']))
    });
    let pad = " ".repeat(col);
    for d in children {
        let Some(name) = d.path.strip_prefix(prefix.as_str()) else {
            continue;
        };
        if d.examples.is_empty() || map.contains_key(name) {
            continue;
        }
        let Some(example) = d.examples.first() else {
            continue;
        };
        let Ok(value) = serde_yaml::from_str::<Value>(example) else {
            continue;
        };
        out.push('\n');
        if opts.docs {
            out.push_str(&format!("{pad}# # {}\n", d.description));
        }
        let text = emit_entry(&Value::String(name.to_string()), &value);
        for line in text.lines() {
            out.push_str(&format!("{pad}# {line}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "version: v1alpha1\ndebug: false\npersist: true\nmachine:\n    type: worker\n    token: abc.def\n    certSANs: []\n    kubelet:\n        image: ghcr.io/siderolabs/kubelet:v1.30.0\n        extraArgs:\n            v: \"2\"\n    network: {}\n    install:\n        disk: /dev/sda\n        wipe: false\n    registries:\n        mirrors:\n            docker.io:\n                endpoints:\n                    - http://10.5.0.1:5000\ncluster:\n    controlPlane:\n        endpoint: https://a:6443\n    network:\n        dnsDomain: cluster.local\n        podSubnets:\n            - 10.244.0.0/16\n        serviceSubnets:\n            - 10.96.0.0/12\n---\napiVersion: v1alpha1\nkind: SideroLinkConfig\napiUrl: https://siderolink.api/join?jointoken=secret\n";

    fn parse_all(text: &str) -> Vec<Value> {
        use serde::Deserialize;
        serde_yaml::Deserializer::from_str(text)
            .map(|d| Value::deserialize(d).expect("valid yaml"))
            .collect()
    }

    #[test]
    fn comments_do_not_change_the_data() {
        let cfg = Config::from_yaml(SAMPLE.as_bytes(), "sample").expect("loads");
        let plain = cfg.to_yaml().expect("plain");
        for opts in [
            CommentOptions {
                docs: true,
                examples: false,
            },
            CommentOptions {
                docs: false,
                examples: true,
            },
            CommentOptions {
                docs: true,
                examples: true,
            },
        ] {
            let text = to_yaml_with_comments(&cfg, opts).expect("commented");
            assert_eq!(parse_all(&text), parse_all(&plain), "{opts:?}\n{text}");
            let again = Config::from_yaml(text.as_bytes(), "commented").expect("reloads");
            assert_eq!(again, cfg);
        }
    }

    #[test]
    fn docs_and_examples_are_written() {
        let cfg = Config::from_yaml(SAMPLE.as_bytes(), "sample").expect("loads");
        let text = to_yaml_with_comments(
            &cfg,
            CommentOptions {
                docs: true,
                examples: true,
            },
        )
        .expect("commented");
        let type_line = text
            .lines()
            .find(|l| l.trim_start().starts_with("type: worker"))
            .expect("type line");
        assert!(type_line.contains(" # "), "{type_line}");
        // A head comment above the machine block.
        let idx = text.find("\nmachine:\n").expect("machine key");
        assert!(text[..idx].lines().last().unwrap_or("").starts_with("# "));
        // An absent documented field (machine.disks) appears as a commented example.
        assert!(text.contains("# disks:"), "{text}");
        // Free-form maps are written as they are.
        assert!(text.contains("            v: \"2\"\n"), "{text}");
        // Other documents get their kind's description.
        assert!(text.contains("---\n# "), "{text}");
    }

    #[test]
    fn no_comments_is_plain_output() {
        let cfg = Config::from_yaml(SAMPLE.as_bytes(), "sample").expect("loads");
        assert_eq!(
            to_yaml_with_comments(&cfg, CommentOptions::default()).expect("plain"),
            cfg.to_yaml().expect("plain")
        );
    }
}
