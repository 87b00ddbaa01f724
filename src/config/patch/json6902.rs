//! RFC 6902 JSON patches on a single-document machine config (Talos converts the YAML document
//! to JSON, applies the operations and converts back).

use serde_yaml::Value;

use super::PatchError;

/// Applies the raw operations to the only document of `docs`.
pub(crate) fn apply(docs: Vec<Value>, ops: &[serde_json::Value]) -> Result<Vec<Value>, PatchError> {
    let [doc] = <[Value; 1]>::try_from(docs).map_err(|_| PatchError::Json6902MultiDoc)?;

    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops.to_vec()))
        .map_err(|e| PatchError::Json6902Operation(e.to_string()))?;

    let mut json = yaml_to_json(&doc).map_err(|reason| PatchError::JsonConversion {
        direction: "to json",
        reason,
    })?;
    json_patch::patch(&mut json, &patch.0).map_err(|e| PatchError::Json6902Apply(e.to_string()))?;
    let yaml = serde_yaml::to_value(&json).map_err(|e| PatchError::JsonConversion {
        direction: "from json",
        reason: e.to_string(),
    })?;
    Ok(vec![yaml])
}

/// Converts a YAML value to JSON: mapping keys become strings, tags are dropped, and
/// non-finite floats are refused (JSON has none).
pub(crate) fn yaml_to_json(value: &Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| format!("number {n} has no JSON representation"))?
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(items) => serde_json::Value::Array(
            items
                .iter()
                .map(yaml_to_json)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Mapping(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => "null".to_string(),
                    _ => return Err("a mapping key is not a scalar".to_string()),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            serde_json::Value::Object(out)
        }
        Value::Tagged(tagged) => yaml_to_json(&tagged.value)?,
    })
}
