//! Command-line flags of Kubernetes components as Talos builds them: a sorted `--key=value`
//! set where each key has a merge policy for the user's `extraArgs` (overwrite, append to a
//! comma-separated list, or refuse).

use std::collections::BTreeMap;

/// How an extra argument merges with a fixed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergePolicy {
    /// The extra value replaces the fixed one (the default).
    Overwrite,
    /// The extra values are added to the fixed comma-separated list (no duplicates).
    Additive,
    /// The key cannot be set by the user.
    Denied,
}

/// An extra argument the user may not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extra arg {0:?} is not allowed")]
pub struct DenyListError(pub String);

/// A set of flags, written sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args(BTreeMap<String, String>);

impl Args {
    /// Flags from `(key, value)` pairs.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Args {
        Args(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Sets a flag.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_string(), value.into());
    }

    /// The value of a flag.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether a flag is set.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Merges the user's `extra` flags under `policies` (keys not listed overwrite). Keys are
    /// visited in sorted order, so the first denied key reported is the same on every run.
    pub fn merge<'a>(
        &mut self,
        extra: impl IntoIterator<Item = (&'a String, &'a String)>,
        policies: &[(&str, MergePolicy)],
    ) -> Result<(), DenyListError> {
        let mut extra: Vec<(&String, &String)> = extra.into_iter().collect();
        extra.sort();
        for (key, value) in extra {
            let policy = policies
                .iter()
                .find(|(k, _)| k == key)
                .map_or(MergePolicy::Overwrite, |(_, p)| *p);
            match policy {
                MergePolicy::Denied => return Err(DenyListError(key.clone())),
                MergePolicy::Overwrite => {
                    self.0.insert(key.clone(), value.clone());
                }
                MergePolicy::Additive => {
                    let current = self.0.get(key).cloned().unwrap_or_default();
                    let mut values: Vec<String> = current
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                        .collect();
                    let defined: Vec<String> =
                        current.split(',').map(|v| v.trim().to_string()).collect();
                    for v in value.split(',').map(str::trim) {
                        if !defined.iter().any(|d| d == v) {
                            values.push(v.to_string());
                        }
                    }
                    self.0.insert(key.clone(), values.join(","));
                }
            }
        }
        Ok(())
    }

    /// `--key=value` for every flag, sorted by key.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|(k, v)| format!("--{k}={v}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    fn extra(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn merges_by_policy_and_sorts() {
        let mut a = Args::new([("b", "1"), ("a", "x,y"), ("c", "3")]);
        let policies = [("a", MergePolicy::Additive), ("c", MergePolicy::Denied)];
        a.merge(&extra(&[("a", "y, z"), ("b", "2"), ("d", "4")]), &policies)
            .unwrap();
        assert_eq!(a.to_vec(), ["--a=x,y,z", "--b=2", "--c=3", "--d=4"]);
        let err = a
            .merge(&extra(&[("z", "1"), ("c", "9")]), &policies)
            .unwrap_err();
        assert_eq!(err.to_string(), "extra arg \"c\" is not allowed");
    }
}
