//! The subset of Kubernetes JSONPath templates talosctl uses: `{.a.b}`, `{.a[0]}`, `{.a[*]}`,
//! `{.a[:]}`, `{.a[1:3]}`, `{.a['key']}`, `{.*}`, `{@}`, with literal text between expressions.
//! Missing keys yield nothing (like `AllowMissingKeys(true)`).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    AnyField,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Path(Vec<Step>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

fn parse_int(s: &str, template: &str) -> anyhow::Result<Option<i64>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| anyhow::anyhow!("invalid array index {s:?} in jsonpath {template:?}"))
}

fn parse_path(expr: &str, template: &str) -> anyhow::Result<Vec<Step>> {
    let bad = |why: &str| anyhow::anyhow!("error parsing jsonpath {template:?}: {why}");
    let mut steps = Vec::new();
    let mut rest = expr.trim();
    // `$` is the root, `@` the current object (the same here: `{@}` is the whole spec, as
    // Talos's MachineTypes column uses it).
    rest = rest
        .strip_prefix('$')
        .or_else(|| rest.strip_prefix('@'))
        .unwrap_or(rest);
    if rest.starts_with("range") || rest == "end" {
        return Err(bad("range/end blocks are not supported"));
    }
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            match name {
                "" => return Err(bad("empty field name")),
                "*" => steps.push(Step::AnyField),
                _ => steps.push(Step::Field(name.to_string())),
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unterminated ["))?;
            let inner = r[..end].trim();
            rest = &r[end + 1..];
            if inner == "*" {
                steps.push(Step::AnyField);
            } else if let Some(key) = inner
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
            {
                steps.push(Step::Field(key.to_string()));
            } else if let Some((a, b)) = inner.split_once(':') {
                let b = b.split(':').next().unwrap_or_default();
                steps.push(Step::Slice(
                    parse_int(a, template)?,
                    parse_int(b, template)?,
                ));
            } else {
                let i = parse_int(inner, template)?.ok_or_else(|| bad("empty index"))?;
                steps.push(Step::Index(i));
            }
        } else {
            return Err(bad(&format!("unexpected {rest:?}")));
        }
    }
    Ok(steps)
}

impl JsonPath {
    /// Parses a template such as `{.spec.addresses[*]}` or `name={.metadata.id}`.
    pub fn parse(template: &str) -> anyhow::Result<JsonPath> {
        let mut segments = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 1..];
            let end = after.find('}').ok_or_else(|| {
                anyhow::anyhow!("error parsing jsonpath {template:?}: unclosed {{")
            })?;
            segments.push(Segment::Path(parse_path(&after[..end], template)?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(JsonPath { segments })
    }

    /// The values each expression selects, one group per expression (text segments skipped).
    pub fn find(&self, root: &Value) -> Vec<Vec<Value>> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Path(steps) => Some(eval(steps, root)),
                Segment::Text(_) => None,
            })
            .collect()
    }

    /// Renders the template like `jsonpath.Execute`: text as is, results space separated,
    /// strings bare, other values as compact JSON.
    pub fn render(&self, root: &Value) -> String {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Path(steps) => {
                    let values: Vec<String> = eval(steps, root).iter().map(text).collect();
                    out.push_str(&values.join(" "));
                }
            }
        }
        out
    }
}

/// A value as text: strings bare, everything else as Go-style compact JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => go_json(other, false),
    }
}

fn eval(steps: &[Step], root: &Value) -> Vec<Value> {
    let mut current = vec![root.clone()];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match (step, v) {
                (Step::Field(name), Value::Object(map)) => {
                    if let Some(x) = map.get(name) {
                        next.push(x.clone());
                    }
                }
                (Step::AnyField, Value::Object(map)) => next.extend(map.values().cloned()),
                (Step::AnyField, Value::Array(items)) => next.extend(items),
                (Step::Index(i), Value::Array(items)) => {
                    let len = items.len() as i64;
                    let idx = if *i < 0 { len + i } else { *i };
                    if (0..len).contains(&idx) {
                        next.push(items[idx as usize].clone());
                    }
                }
                (Step::Slice(a, b), Value::Array(items)) => {
                    let len = items.len() as i64;
                    let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                    let from = norm(a.unwrap_or(0));
                    let to = norm(b.unwrap_or(len));
                    if from < to {
                        next.extend(items[from as usize..to as usize].iter().cloned());
                    }
                }
                _ => {}
            }
        }
        current = next;
    }
    current
}

/// Go `encoding/json` output: object keys sorted, `<`, `>`, `&` escaped; with `indent`,
/// 4-space indentation like `json.MarshalIndent(v, "", "    ")`.
pub fn go_json(v: &Value, indent: bool) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&map[k]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let v = sorted(v);
    let text = if indent {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        match serde::Serialize::serialize(&v, &mut ser) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(_) => v.to_string(),
        }
    } else {
        v.to_string()
    };
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let v = json!({"a": {"b": [1, 2, 3], "c": "x"}, "aliases": ["rd", "rds"]});
        assert_eq!(JsonPath::parse("{.a.c}").unwrap().render(&v), "x");
        assert_eq!(JsonPath::parse("{.a.b[1]}").unwrap().render(&v), "2");
        assert_eq!(JsonPath::parse("{.a.b[-1]}").unwrap().render(&v), "3");
        assert_eq!(JsonPath::parse("{.a.b[*]}").unwrap().render(&v), "1 2 3");
        assert_eq!(
            JsonPath::parse("{.aliases[:]}").unwrap().render(&v),
            "rd rds"
        );
        assert_eq!(JsonPath::parse("{.a.b[0:2]}").unwrap().render(&v), "1 2");
        assert_eq!(JsonPath::parse("{.a['c']}").unwrap().render(&v), "x");
        assert_eq!(
            JsonPath::parse("{@}").unwrap().render(&json!("worker")),
            "worker"
        );
        assert_eq!(JsonPath::parse("id={.a.c}!").unwrap().render(&v), "id=x!");
        assert_eq!(JsonPath::parse("{.missing.x}").unwrap().render(&v), "");
        assert_eq!(
            JsonPath::parse("{.a}").unwrap().render(&v),
            r#"{"b":[1,2,3],"c":"x"}"#
        );
        assert!(JsonPath::parse("{.a").is_err());
        assert!(JsonPath::parse("{range .a}").is_err());
        assert_eq!(
            JsonPath::parse("{.a.b}").unwrap().find(&v),
            vec![vec![json!([1, 2, 3])]]
        );
    }

    #[test]
    fn go_json_style() {
        let v = json!({"z": 1, "a": {"y": "<&>", "b": [true]}});
        assert_eq!(
            go_json(&v, true),
            "{\n    \"a\": {\n        \"b\": [\n            true\n        ],\n        \"y\": \"\\u003c\\u0026\\u003e\"\n    },\n    \"z\": 1\n}"
        );
    }
}
