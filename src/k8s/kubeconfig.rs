//! Kubeconfigs: the ones Talos generates (admin, controller manager, scheduler, the kubelet's
//! bootstrap kubeconfig) and merging a new one into an existing file the way `talosctl
//! kubeconfig` does (siderolabs/go-kubeconfig: clusters, users and contexts by name, conflicts
//! overwritten or renamed `<name>-1`, `-2`, …).

use base64::Engine as _;
use serde_yaml::{Mapping, Value};
use time::OffsetDateTime;

use crate::secrets::kubernetes::{issue, Subject, ALLOWED_TIME_SKEW};
use crate::secrets::{ExtKeyUsage, PkiError};

/// What a generated kubeconfig is made of.
#[derive(Debug, Clone)]
pub struct KubeconfigInput<'a> {
    /// Cluster name.
    pub cluster_name: &'a str,
    /// The issuing CA: certificate and key (PEM).
    pub ca_crt: &'a [u8],
    /// Its key.
    pub ca_key: &'a [u8],
    /// The CAs the client trusts for the server (PEM, concatenated).
    pub server_cas: &'a [u8],
    /// Validity of the client certificate.
    pub lifetime: std::time::Duration,
    /// Client certificate CommonName.
    pub common_name: &'a str,
    /// Client certificate Organization.
    pub organization: &'a str,
    /// Server URL.
    pub endpoint: &'a str,
    /// User name (the user entry is `<username>@<cluster>`).
    pub username: &'a str,
    /// Context name (the context is `<context>@<cluster>`).
    pub context_name: &'a str,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Generates a kubeconfig with a fresh client certificate (Talos's template, byte for byte).
pub fn generate(input: &KubeconfigInput<'_>, now: OffsetDateTime) -> Result<String, PkiError> {
    let client = issue(
        input.ca_crt,
        input.ca_key,
        &Subject {
            common_name: input.common_name,
            organization: input.organization,
            ..Subject::default()
        },
        ExtKeyUsage::ClientAuth,
        now - ALLOWED_TIME_SKEW,
        input.lifetime + std::time::Duration::from_secs(10),
    )?;
    let (cluster, user, context) = (input.cluster_name, input.username, input.context_name);
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: {user}@{cluster}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- context:\n    cluster: {cluster}\n    namespace: default\n    user: {user}@{cluster}\n  name: {context}@{cluster}\ncurrent-context: {context}@{cluster}\n",
        input.endpoint,
        b64(input.server_cas),
        b64(&client.crt),
        b64(&client.key),
    ))
}

/// The kubelet's bootstrap kubeconfig (bootstrap token credentials).
pub fn kubelet_bootstrap(
    server: &str,
    ca_pem: &[u8],
    token_id: &str,
    token_secret: &str,
) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: kubelet\n  user:\n    token: {token_id}.{token_secret}\ncontexts:\n- context:\n    cluster: local\n    user: kubelet\n",
        b64(ca_pem)
    )
}

/// Why a kubeconfig cannot be read or merged.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// Not YAML, or not a kubeconfig.
    #[error("invalid kubeconfig: {0}")]
    Invalid(String),
}

/// The three named lists of a kubeconfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `clusters`.
    Cluster,
    /// `users`.
    AuthInfo,
    /// `contexts`.
    Context,
}

impl Component {
    fn list_key(self) -> &'static str {
        match self {
            Component::Cluster => "clusters",
            Component::AuthInfo => "users",
            Component::Context => "contexts",
        }
    }

    fn body_key(self) -> &'static str {
        match self {
            Component::Cluster => "cluster",
            Component::AuthInfo => "user",
            Component::Context => "context",
        }
    }

    /// The word go-kubeconfig uses in prompts and messages.
    pub fn word(self) -> &'static str {
        match self {
            Component::Cluster => "cluster",
            Component::AuthInfo => "auth",
            Component::Context => "context",
        }
    }
}

/// What to do about a name that exists with other contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Replace the existing entry.
    Overwrite,
    /// Keep it; the new entry gets the next free `<name>-N`.
    Rename,
}

/// A kubeconfig held as named entries (unknown fields are kept).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kubeconfig {
    clusters: Vec<(String, Value)>,
    users: Vec<(String, Value)>,
    contexts: Vec<(String, Value)>,
    /// `current-context`.
    pub current_context: String,
    rest: Mapping,
}

fn entries(doc: &Mapping, component: Component) -> Result<Vec<(String, Value)>, KubeconfigError> {
    let Some(list) = doc.get(component.list_key()) else {
        return Ok(Vec::new());
    };
    let Some(items) = list.as_sequence() else {
        if list.is_null() {
            return Ok(Vec::new());
        }
        return Err(KubeconfigError::Invalid(format!(
            "{} is not a list",
            component.list_key()
        )));
    };
    let mut out: Vec<(String, Value)> = Vec::new();
    for item in items {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let body = item
            .get(component.body_key())
            .cloned()
            .unwrap_or(Value::Null);
        // A later entry of the same name wins, as clientcmd's map does.
        out.retain(|(n, _)| *n != name);
        out.push((name, body));
    }
    Ok(out)
}

impl Kubeconfig {
    /// Parses a kubeconfig (an empty file is an empty config).
    pub fn parse(text: &str) -> Result<Kubeconfig, KubeconfigError> {
        let value: Value =
            serde_yaml::from_str(text).map_err(|e| KubeconfigError::Invalid(e.to_string()))?;
        let doc = match value {
            Value::Null => Mapping::new(),
            Value::Mapping(m) => m,
            _ => return Err(KubeconfigError::Invalid("not a mapping".into())),
        };
        let mut rest = doc.clone();
        for key in ["clusters", "users", "contexts", "current-context"] {
            rest.remove(key);
        }
        Ok(Kubeconfig {
            clusters: entries(&doc, Component::Cluster)?,
            users: entries(&doc, Component::AuthInfo)?,
            contexts: entries(&doc, Component::Context)?,
            current_context: doc
                .get("current-context")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            rest,
        })
    }

    fn list(&self, component: Component) -> &Vec<(String, Value)> {
        match component {
            Component::Cluster => &self.clusters,
            Component::AuthInfo => &self.users,
            Component::Context => &self.contexts,
        }
    }

    fn list_mut(&mut self, component: Component) -> &mut Vec<(String, Value)> {
        match component {
            Component::Cluster => &mut self.clusters,
            Component::AuthInfo => &mut self.users,
            Component::Context => &mut self.contexts,
        }
    }

    /// The entry `name` of a list.
    pub fn get(&self, component: Component, name: &str) -> Option<&Value> {
        self.list(component)
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The names of a list.
    pub fn names(&self, component: Component) -> Vec<String> {
        self.list(component)
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn set(&mut self, component: Component, name: &str, body: Value) {
        let list = self.list_mut(component);
        match list.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = body,
            None => list.push((name.to_string(), body)),
        }
    }

    fn rename(&self, component: Component, name: &str) -> String {
        let mut candidate = name.to_string();
        let mut i = 0;
        while self.get(component, &candidate).is_some() {
            i += 1;
            candidate = format!("{name}-{i}");
        }
        candidate
    }

    /// Merges `new` in (go-kubeconfig's `Merge` with `ActivateContext`): `decide` is asked about
    /// every name that exists with other contents; returns the messages about renames
    /// (`renamed cluster "a" -> "a-1"`).
    pub fn merge<F>(
        &mut self,
        new: &Kubeconfig,
        force_context_name: &str,
        mut decide: F,
    ) -> Result<Vec<String>, KubeconfigError>
    where
        F: FnMut(Component, &str) -> Result<Conflict, KubeconfigError>,
    {
        let mut mapped_clusters = Vec::new();
        for (name, body) in &new.clusters {
            let mut merged = name.clone();
            if self
                .get(Component::Cluster, name)
                .is_some_and(|old| old != body)
                && decide(Component::Cluster, name)? == Conflict::Rename
            {
                merged = self.rename(Component::Cluster, name);
            }
            mapped_clusters.push((name.clone(), merged));
        }
        let mut mapped_users = Vec::new();
        for (name, body) in &new.users {
            let mut merged = name.clone();
            for (old, new_name) in &mapped_clusters {
                merged = merged.replace(old.as_str(), new_name);
            }
            if self
                .get(Component::AuthInfo, &merged)
                .is_some_and(|old| old != body)
                && decide(Component::AuthInfo, name)? == Conflict::Rename
            {
                merged = self.rename(Component::AuthInfo, &merged);
            }
            mapped_users.push((name.clone(), merged));
        }
        let mut mapped_contexts = Vec::new();
        for (name, body) in &new.contexts {
            let mut merged = name.clone();
            for (old, new_name) in &mapped_users {
                merged = merged.replace(old.as_str(), new_name);
            }
            if !force_context_name.is_empty() {
                merged = force_context_name.to_string();
            }
            // go-kubeconfig looks the context name up among the clusters.
            if self
                .get(Component::Cluster, &merged)
                .is_some_and(|old| old != body)
                && decide(Component::Cluster, name)? == Conflict::Rename
            {
                merged = self.rename(Component::Cluster, &merged);
            }
            mapped_contexts.push((name.clone(), merged));
        }
        let lookup = |map: &[(String, String)], name: &str| {
            map.iter()
                .find(|(n, _)| n == name)
                .map(|(_, m)| m.clone())
                .unwrap_or_default()
        };
        let mut messages = Vec::new();
        for (name, body) in &new.clusters {
            let merged = lookup(&mapped_clusters, name);
            if merged != *name {
                messages.push(format!("renamed cluster {name:?} -> {merged:?}"));
            }
            self.set(Component::Cluster, &merged, body.clone());
        }
        for (name, body) in &new.users {
            let merged = lookup(&mapped_users, name);
            if merged != *name {
                messages.push(format!("renamed auth info {name:?} -> {merged:?}"));
            }
            self.set(Component::AuthInfo, &merged, body.clone());
        }
        for (name, body) in &new.contexts {
            let merged = lookup(&mapped_contexts, name);
            if merged != *name {
                messages.push(format!("renamed context {name:?} -> {merged:?}"));
            }
            let mut body = body.clone();
            if let Value::Mapping(m) = &mut body {
                for (key, map) in [("user", &mapped_users), ("cluster", &mapped_clusters)] {
                    let old = m
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    m.insert(key.into(), Value::String(lookup(map, &old)));
                }
            }
            self.set(Component::Context, &merged, body);
            self.current_context = merged;
        }
        Ok(messages)
    }

    /// The kubeconfig as clientcmd writes it: keys sorted, lists sorted by name,
    /// `preferences: {}` when absent.
    pub fn to_yaml(&self) -> String {
        let mut doc = self.rest.clone();
        doc.entry("apiVersion".into()).or_insert("v1".into());
        doc.entry("kind".into()).or_insert("Config".into());
        doc.entry("preferences".into())
            .or_insert(Value::Mapping(Mapping::new()));
        for component in [Component::Cluster, Component::AuthInfo, Component::Context] {
            let mut list = self.list(component).clone();
            list.sort_by(|a, b| a.0.cmp(&b.0));
            let items: Vec<Value> = list
                .into_iter()
                .map(|(name, body)| {
                    let mut m = Mapping::new();
                    m.insert("name".into(), Value::String(name));
                    m.insert(component.body_key().into(), body);
                    Value::Mapping(m)
                })
                .collect();
            doc.insert(component.list_key().into(), Value::Sequence(items));
        }
        doc.insert(
            "current-context".into(),
            Value::String(self.current_context.clone()),
        );
        crate::yaml::emit_kubernetes(&crate::yaml::sort_maps(&Value::Mapping(doc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cluster: &str, ca: &str, key: &str) -> String {
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: https://1.2.3.4:6443\n    certificate-authority-data: {ca}\nusers:\n- name: admin@{cluster}\n  user:\n    client-certificate-data: a\n    client-key-data: {key}\ncontexts:\n- context:\n    cluster: {cluster}\n    namespace: default\n    user: admin@{cluster}\n  name: admin@{cluster}\ncurrent-context: admin@{cluster}\n")
    }

    #[test]
    fn merging_twice_renames_the_user_and_context() {
        let mut base = Kubeconfig::parse(&config("c", "CA", "k1")).unwrap();
        let second = Kubeconfig::parse(&config("c", "CA", "k2")).unwrap();
        let mut asked = Vec::new();
        let msgs = base
            .merge(&second, "", |c, n| {
                asked.push((c, n.to_string()));
                Ok(Conflict::Rename)
            })
            .unwrap();
        assert_eq!(asked, [(Component::AuthInfo, "admin@c".to_string())]);
        assert_eq!(
            msgs,
            [
                "renamed auth info \"admin@c\" -> \"admin@c-1\"",
                "renamed context \"admin@c\" -> \"admin@c-1\""
            ]
        );
        assert_eq!(base.current_context, "admin@c-1");
        assert_eq!(base.names(Component::AuthInfo), ["admin@c", "admin@c-1"]);
        let ctx = base.get(Component::Context, "admin@c-1").unwrap();
        assert_eq!(ctx["user"].as_str(), Some("admin@c-1"));
        assert_eq!(ctx["cluster"].as_str(), Some("c"));
        let text = base.to_yaml();
        assert!(
            text.starts_with("apiVersion: v1\nclusters:\n- cluster:\n"),
            "{text}"
        );
        assert!(
            text.contains("kind: Config\npreferences: {}\nusers:\n"),
            "{text}"
        );
        assert_eq!(
            Kubeconfig::parse(&text)
                .unwrap()
                .names(Component::Context)
                .len(),
            2
        );
    }

    #[test]
    fn force_overwrites_and_other_clusters_stay() {
        let mut base = Kubeconfig::parse(&config("other", "X", "k")).unwrap();
        base.merge(
            &Kubeconfig::parse(&config("c", "CA", "k1")).unwrap(),
            "",
            |_, _| Ok(Conflict::Rename),
        )
        .unwrap();
        let msgs = base
            .merge(
                &Kubeconfig::parse(&config("c", "CB", "k2")).unwrap(),
                "mine",
                |_, _| Ok(Conflict::Overwrite),
            )
            .unwrap();
        assert_eq!(msgs, ["renamed context \"admin@c\" -> \"mine\""]);
        assert_eq!(base.names(Component::Cluster), ["other", "c"]);
        assert_eq!(
            base.get(Component::Cluster, "c").unwrap()["certificate-authority-data"].as_str(),
            Some("CB")
        );
        assert_eq!(base.current_context, "mine");
    }
}
