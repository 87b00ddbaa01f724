//! Go yaml.v3's order of map keys, and serde helpers that write maps in it.

use std::cmp::Ordering;

use serde::Serialize;
use serde_yaml::Value;

/// The order Go yaml.v3 uses for map keys: a "natural" order where runs of digits compare as
/// numbers and non-letters sort before letters.
pub fn go_key_less(a: &str, b: &str) -> bool {
    go_key_cmp(a, b) == Ordering::Less
}

/// Total-order form of [`go_key_less`].
pub fn go_key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut digits = false;
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            digits = ar[i].is_numeric();
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            let a_first = if digits { al } else { bl };
            return if a_first {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        // Both non-letters: compare digit runs numerically.
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ar[j].is_ascii_digit() {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// Returns a copy of `value` where every mapping (recursively) has its keys in Go yaml.v3 order,
/// as Go writes `map[string]interface{}` values.
pub fn sort_maps(value: &Value) -> Value {
    match value {
        Value::Mapping(m) => {
            let mut entries: Vec<(&Value, &Value)> = m.iter().collect();
            entries.sort_by(|(a, _), (b, _)| value_key_cmp(a, b));
            let mut out = serde_yaml::Mapping::with_capacity(entries.len());
            for (k, v) in entries {
                out.insert(k.clone(), sort_maps(v));
            }
            Value::Mapping(out)
        }
        Value::Sequence(s) => Value::Sequence(s.iter().map(sort_maps).collect()),
        Value::Tagged(t) => Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: t.tag.clone(),
            value: sort_maps(&t.value),
        })),
        other => other.clone(),
    }
}

fn value_key_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(a), Value::String(b)) => go_key_cmp(a, b),
        (Value::Number(a), Value::Number(b)) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => kind_rank(a).cmp(&kind_rank(b)),
    }
}

fn kind_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Sequence(_) => 4,
        Value::Mapping(_) => 5,
        Value::Tagged(_) => 6,
    }
}

/// Serde helper: serializes a string-keyed map with its keys in Go yaml.v3 order.
pub fn serialize_sorted<S, V>(
    map: &indexmap::IndexMap<String, V>,
    serializer: S,
) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    V: Serialize,
{
    use serde::ser::SerializeMap;
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| go_key_cmp(a, b));
    let mut m = serializer.serialize_map(Some(keys.len()))?;
    for k in keys {
        if let Some(v) = map.get(k) {
            m.serialize_entry(k, v)?;
        }
    }
    m.end()
}

/// Serde helper: serializes a free-form value with all nested mapping keys in Go yaml.v3 order.
pub fn serialize_value_sorted<S>(value: &Value, serializer: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
{
    sort_maps(value).serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_key_order() {
        let mut keys = vec!["b", "a10", "a2", "A", "_x", "a", "audit-version", "audit"];
        keys.sort_by(|a, b| go_key_cmp(a, b));
        assert_eq!(
            keys,
            vec!["_x", "A", "a", "a2", "a10", "audit", "audit-version", "b"]
        );
    }
}
