//! Talos roles and role sets.
//!
//! A role is a plain string such as `os:admin`. It travels as one Organization (O) attribute of
//! a client certificate's subject, as a value of the `talos-role` gRPC metadata key, and as the
//! argument of `talosctl config new --roles`. Roles this version does not know are kept (a newer
//! node or client may know them) but grant nothing, because no rule mentions them.

use std::collections::BTreeSet;
use std::fmt;

/// The prefix shared by all built-in roles.
pub const PREFIX: &str = "os:";

/// The gRPC metadata key that carries roles from one apid to the next (and to machined).
pub const METADATA_KEY: &str = "talos-role";

/// One Talos role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// `os:admin`: every API.
    Admin,
    /// `os:operator`: the reader APIs plus management that does not expose secrets (reboot, ...).
    Operator,
    /// `os:reader`: read-only APIs that do not expose secrets.
    Reader,
    /// `os:etcd:backup`: taking etcd snapshots.
    EtcdBackup,
    /// `os:impersonator`: may pass other roles in the `talos-role` metadata (apid to apid).
    Impersonator,
    /// Any other non-empty string; parsed and kept, but it grants nothing.
    Unknown(String),
}

impl Role {
    /// Every built-in role, in Talos's declaration order.
    pub const BUILTIN: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::Reader,
        Role::EtcdBackup,
        Role::Impersonator,
    ];

    /// Parses one role string (surrounding white space is ignored). Never fails: strings that
    /// are not built-in roles become [`Role::Unknown`]. Returns `None` for an empty string.
    pub fn parse(s: &str) -> Option<Role> {
        let s = s.trim();
        let role = match s {
            "" => return None,
            "os:admin" => Role::Admin,
            "os:operator" => Role::Operator,
            "os:reader" => Role::Reader,
            "os:etcd:backup" => Role::EtcdBackup,
            "os:impersonator" => Role::Impersonator,
            other => Role::Unknown(other.to_owned()),
        };
        Some(role)
    }

    /// The string form, e.g. `os:admin`.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Admin => "os:admin",
            Role::Operator => "os:operator",
            Role::Reader => "os:reader",
            Role::EtcdBackup => "os:etcd:backup",
            Role::Impersonator => "os:impersonator",
            Role::Unknown(s) => s,
        }
    }

    /// True for the built-in roles, false for [`Role::Unknown`].
    pub fn is_known(&self) -> bool {
        !matches!(self, Role::Unknown(_))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Ordered by the string form, so that a set lists its roles sorted like Talos does.
impl Ord for Role {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Role {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A set of roles, sorted by their string form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSet(BTreeSet<Role>);

impl RoleSet {
    /// The empty set: grants nothing.
    pub fn empty() -> RoleSet {
        RoleSet::default()
    }

    /// All built-in roles (what a peer gets when RBAC is disabled).
    pub fn all() -> RoleSet {
        Role::BUILTIN.iter().cloned().collect()
    }

    /// Parses role strings, e.g. the Organizations of a certificate or `talos-role` metadata
    /// values. Empty strings are skipped (certificates made by old Talos versions carry one
    /// empty Organization); unknown strings are kept as [`Role::Unknown`].
    pub fn parse<I, S>(strings: I) -> RoleSet
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        strings
            .into_iter()
            .filter_map(|s| Role::parse(s.as_ref()))
            .collect()
    }

    /// Parses a comma-separated list such as the `--roles` flag value (`os:admin,os:reader`).
    pub fn parse_list(list: &str) -> RoleSet {
        RoleSet::parse(list.split(','))
    }

    /// True if `role` is in the set.
    pub fn includes(&self, role: &Role) -> bool {
        self.0.contains(role)
    }

    /// True if the two sets share at least one role (false when either is empty).
    pub fn includes_any(&self, other: &RoleSet) -> bool {
        self.0.iter().any(|r| other.0.contains(r))
    }

    /// The roles this version does not know, as strings.
    pub fn unknown(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter(|r| !r.is_known())
            .map(Role::as_str)
            .collect()
    }

    /// The roles as sorted strings (the `talos-role` metadata values, one per role).
    pub fn strings(&self) -> Vec<String> {
        self.0.iter().map(|r| r.as_str().to_owned()).collect()
    }

    /// Iterates over the roles in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &Role> {
        self.0.iter()
    }

    /// True if the set has no role.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of roles in the set.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<T: IntoIterator<Item = Role>>(iter: T) -> Self {
        RoleSet(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[Role; N]> for RoleSet {
    fn from(roles: [Role; N]) -> Self {
        roles.into_iter().collect()
    }
}

/// Comma-separated, sorted: `os:admin,os:reader` (the form `--roles` accepts back).
impl fmt::Display for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, role) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(role.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_builtin_and_unknown() {
        let set = RoleSet::parse(["os:admin", " os:reader ", "", "os:future", "  "]);
        assert_eq!(set.len(), 3);
        assert!(set.includes(&Role::Admin));
        assert!(set.includes(&Role::Reader));
        assert!(set.includes(&Role::Unknown("os:future".into())));
        assert_eq!(set.unknown(), vec!["os:future"]);
        assert_eq!(set.strings(), vec!["os:admin", "os:future", "os:reader"]);
    }

    #[test]
    fn all_string_forms_round_trip() {
        for role in Role::BUILTIN {
            assert!(role.as_str().starts_with(PREFIX));
            assert_eq!(Role::parse(role.as_str()), Some(role.clone()));
            assert_eq!(role.to_string(), role.as_str());
        }
        assert_eq!(Role::parse("os:etcd:backup"), Some(Role::EtcdBackup));
        // Role strings are case-sensitive, like Talos's.
        assert_eq!(
            Role::parse("OS:ADMIN"),
            Some(Role::Unknown("OS:ADMIN".into()))
        );
        assert_eq!(Role::parse(""), None);
    }

    #[test]
    fn includes_any() {
        let admin = RoleSet::from([Role::Admin]);
        let reader_or_admin = RoleSet::from([Role::Reader, Role::Admin]);
        assert!(admin.includes_any(&reader_or_admin));
        assert!(!admin.includes_any(&RoleSet::from([Role::Reader])));
        assert!(!admin.includes_any(&RoleSet::empty()));
        assert!(!RoleSet::empty().includes_any(&admin));
        let unknown = RoleSet::parse(["os:admin2"]);
        assert!(!unknown.includes_any(&RoleSet::all()));
    }

    #[test]
    fn display_and_list() {
        let set = RoleSet::parse_list("os:reader,os:admin,,os:etcd:backup");
        assert_eq!(set.to_string(), "os:admin,os:etcd:backup,os:reader");
        assert_eq!(RoleSet::parse_list(&set.to_string()), set);
        assert_eq!(RoleSet::all().len(), 5);
        assert_eq!(RoleSet::empty().to_string(), "");
    }
}
