//! Authorization: which roles may call which gRPC method.
//!
//! The table is Talos 1.7's (machined's rules): each full method path maps to the roles that may
//! call it; a caller needs at least one of them. Methods missing from the table are for
//! `os:admin` only. Writes through the COSI resource API are refused for everyone, as Talos's
//! resource access filter does. The maintenance-mode API has its own, smaller policy
//! ([`maintenance_allowed`]).

use std::net::IpAddr;

use super::role::{Role, RoleSet};

/// The reason a call is refused. The `Display` text is the gRPC status message Talos sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The caller has none of the roles the method needs (gRPC `PermissionDenied`).
    #[error("not authorized")]
    NotAuthorized {
        /// Full gRPC method path.
        method: String,
        /// Roles that would have been accepted.
        required: RoleSet,
        /// Roles the caller has.
        have: RoleSet,
    },
    /// Create/Update/Destroy through the resource API (gRPC `PermissionDenied`).
    #[error("write access is not allowed")]
    WriteNotAllowed,
    /// A method the maintenance-mode API does not serve to this caller (gRPC `Unimplemented`).
    #[error("{0}")]
    Unimplemented(String),
    /// trustd: the `token` metadata is missing or wrong (gRPC `Unauthenticated`; Talos sends
    /// the same text with code `Unknown`).
    #[error("Unauthenticated")]
    BadToken,
}

impl Denied {
    /// The gRPC status code to answer with: 7 (`PermissionDenied`) or 12 (`Unimplemented`).
    pub fn grpc_code(&self) -> i32 {
        match self {
            Denied::NotAuthorized { .. } | Denied::WriteNotAllowed => 7,
            Denied::Unimplemented(_) => 12,
            Denied::BadToken => 16,
        }
    }
}

const A: &[Role] = &[Role::Admin];
const AO: &[Role] = &[Role::Admin, Role::Operator];
const AOR: &[Role] = &[Role::Admin, Role::Operator, Role::Reader];
const AOE: &[Role] = &[Role::Admin, Role::Operator, Role::EtcdBackup];

/// Talos 1.7's rule table, sorted by method path.
const RULES: &[(&str, &[Role])] = &[
    ("/cluster.ClusterService/HealthCheck", AOR),
    ("/cosi.resource.State/Create", A),
    ("/cosi.resource.State/Destroy", A),
    ("/cosi.resource.State/Get", AOR),
    ("/cosi.resource.State/List", AOR),
    ("/cosi.resource.State/Update", A),
    ("/cosi.resource.State/Watch", AOR),
    ("/inspect.InspectService/ControllerRuntimeDependencies", AOR),
    ("/machine.MachineService/ApplyConfiguration", A),
    ("/machine.MachineService/Bootstrap", A),
    ("/machine.MachineService/CPUInfo", AOR),
    ("/machine.MachineService/Containers", AOR),
    ("/machine.MachineService/Copy", A),
    ("/machine.MachineService/DiskStats", AOR),
    ("/machine.MachineService/DiskUsage", AOR),
    ("/machine.MachineService/Dmesg", AOR),
    ("/machine.MachineService/EtcdAlarmDisarm", AO),
    ("/machine.MachineService/EtcdAlarmList", AO),
    ("/machine.MachineService/EtcdDefragment", AO),
    ("/machine.MachineService/EtcdForfeitLeadership", A),
    ("/machine.MachineService/EtcdLeaveCluster", A),
    ("/machine.MachineService/EtcdMemberList", AOR),
    ("/machine.MachineService/EtcdRecover", A),
    ("/machine.MachineService/EtcdRemoveMemberByID", A),
    ("/machine.MachineService/EtcdSnapshot", AOE),
    ("/machine.MachineService/EtcdStatus", AO),
    ("/machine.MachineService/Events", AOR),
    ("/machine.MachineService/GenerateClientConfiguration", A),
    ("/machine.MachineService/GenerateConfiguration", A),
    ("/machine.MachineService/Hostname", AOR),
    ("/machine.MachineService/ImageList", AOR),
    ("/machine.MachineService/ImagePull", AO),
    ("/machine.MachineService/Kubeconfig", A),
    ("/machine.MachineService/List", AOR),
    ("/machine.MachineService/LoadAvg", AOR),
    ("/machine.MachineService/Logs", AOR),
    ("/machine.MachineService/LogsContainers", AOR),
    ("/machine.MachineService/Memory", AOR),
    ("/machine.MachineService/MetaDelete", A),
    ("/machine.MachineService/MetaWrite", A),
    ("/machine.MachineService/Mounts", AOR),
    ("/machine.MachineService/Netstat", AOR),
    ("/machine.MachineService/NetworkDeviceStats", AOR),
    ("/machine.MachineService/PacketCapture", AO),
    ("/machine.MachineService/Processes", AOR),
    ("/machine.MachineService/Read", A),
    ("/machine.MachineService/Reboot", AO),
    ("/machine.MachineService/Reset", A),
    ("/machine.MachineService/Restart", AO),
    ("/machine.MachineService/Rollback", A),
    ("/machine.MachineService/ServiceList", AOR),
    ("/machine.MachineService/ServiceRestart", AO),
    ("/machine.MachineService/ServiceStart", AO),
    ("/machine.MachineService/ServiceStop", AO),
    ("/machine.MachineService/Shutdown", AO),
    ("/machine.MachineService/Stats", AOR),
    ("/machine.MachineService/SystemStat", AOR),
    ("/machine.MachineService/Upgrade", A),
    ("/machine.MachineService/Version", AOR),
    ("/storage.StorageService/Disks", AOR),
    ("/time.TimeService/Time", AOR),
    ("/time.TimeService/TimeCheck", AOR),
];

/// COSI methods that modify resources; the resource API refuses them for everyone.
const COSI_WRITES: [&str; 3] = [
    "/cosi.resource.State/Create",
    "/cosi.resource.State/Update",
    "/cosi.resource.State/Destroy",
];

/// The roles that may call `method`: its table entry, or `os:admin` alone if it has none.
pub fn required_roles(method: &str) -> RoleSet {
    let roles = RULES
        .binary_search_by(|(m, _)| m.cmp(&method))
        .map_or(A, |i| RULES[i].1);
    roles.iter().cloned().collect()
}

/// Checks that a caller with `roles` may call the full gRPC method path `method`
/// (e.g. `/machine.MachineService/Reboot`).
///
/// COSI writes pass the role check for admins (like Talos's authorizer) and are then refused by
/// the resource access rule, so an admin gets "write access is not allowed" and anyone else
/// "not authorized": the two messages Talos sends.
pub fn allowed(method: &str, roles: &RoleSet) -> Result<(), Denied> {
    let required = required_roles(method);
    if !required.includes_any(roles) {
        return Err(Denied::NotAuthorized {
            method: method.to_owned(),
            required,
            have: roles.clone(),
        });
    }
    if COSI_WRITES.contains(&method) {
        return Err(Denied::WriteNotAllowed);
    }
    Ok(())
}

/// Checks read access to one resource type through the COSI API: resources whose definition is
/// marked sensitive (secrets) need `os:admin`; the rest are readable by anyone who passed
/// [`allowed`].
pub fn resource_read_allowed(sensitive: bool, roles: &RoleSet) -> Result<(), Denied> {
    if sensitive && !roles.includes(&Role::Admin) {
        return Err(Denied::NotAuthorized {
            method: "/cosi.resource.State (sensitive resource)".to_owned(),
            required: RoleSet::from([Role::Admin]),
            have: roles.clone(),
        });
    }
    Ok(())
}

/// The gRPC metadata key carrying the trustd token (`machine.token`).
pub const TRUSTD_TOKEN_KEY: &str = "token";

/// trustd's check: the first `token` metadata value must equal the machine token
/// (compared in constant time).
pub fn check_trustd_token(metadata_tokens: &[&str], expected: &str) -> Result<(), Denied> {
    match metadata_tokens.first() {
        Some(given) if !expected.is_empty() && constant_time_eq(given, expected) => Ok(()),
        _ => Err(Denied::BadToken),
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where a request's roles come from (Talos's role injector modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectMode {
    /// RBAC disabled in the machine config (`machine.features.rbac: false`): every role.
    Disabled,
    /// Every peer is a reader.
    ReadOnly,
    /// Maintenance mode: readers, except SideroLink peers who are admins.
    ReadOnlyWithAdminOnSideroLink,
    /// Trust only the `talos-role` metadata (machined, the apid unix socket).
    MetadataOnly,
    /// apid's network listener: the client certificate's Organizations; an `os:impersonator`
    /// certificate (another apid) may pass the real roles in the `talos-role` metadata.
    Enabled,
}

/// What is known about a request, for [`inject_roles`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer<'a> {
    /// Organizations of the verified client certificate (empty without one).
    pub cert_organizations: &'a [String],
    /// Values of the `talos-role` metadata key (empty if absent).
    pub metadata_roles: &'a [String],
    /// Remote address of the connection, if it is an IP connection.
    pub addr: Option<IpAddr>,
}

/// The roles a request gets, following Talos's injector.
pub fn inject_roles(mode: InjectMode, peer: &Peer<'_>) -> RoleSet {
    match mode {
        InjectMode::Disabled => RoleSet::all(),
        InjectMode::ReadOnly => RoleSet::from([Role::Reader]),
        InjectMode::ReadOnlyWithAdminOnSideroLink => match peer.addr {
            Some(addr) if is_siderolink_addr(addr) => RoleSet::from([Role::Admin]),
            _ => RoleSet::from([Role::Reader]),
        },
        InjectMode::MetadataOnly => RoleSet::parse(peer.metadata_roles),
        InjectMode::Enabled => {
            let roles = RoleSet::parse(peer.cert_organizations);
            if roles.includes(&Role::Impersonator) && !peer.metadata_roles.is_empty() {
                RoleSet::parse(peer.metadata_roles)
            } else {
                roles
            }
        }
    }
}

/// True for addresses in Talos's SideroLink ULA space: `fdXX:XXXX:XXXX:XX03::/64`
/// (first byte 0xfd, eighth byte the SideroLink purpose 0x03).
pub fn is_siderolink_addr(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V6(v6) => {
            let octets = v6.octets();
            octets[0] == 0xfd && octets[7] == 0x03
        }
        IpAddr::V4(_) => false,
    }
}

/// What the maintenance-mode API does with a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceDecision {
    /// Served to every peer with no role check (ApplyConfiguration, GenerateConfiguration,
    /// Disks, COSI reads; resource sensitivity still applies to the reads).
    Allow,
    /// Served to admins (SideroLink peers) only; others get `Unimplemented` "API is not
    /// implemented in maintenance mode" (Version, Upgrade, Reset, MetaWrite, MetaDelete).
    AdminOnly,
    /// Refused for everyone with `PermissionDenied` "write access is not allowed" (COSI writes).
    WriteDenied,
    /// Not served: `Unimplemented` with this message.
    Unimplemented(String),
}

impl MaintenanceDecision {
    /// Applies the decision to a caller with `roles`.
    pub fn check(&self, roles: &RoleSet) -> Result<(), Denied> {
        match self {
            MaintenanceDecision::Allow => Ok(()),
            MaintenanceDecision::AdminOnly if roles.includes(&Role::Admin) => Ok(()),
            MaintenanceDecision::AdminOnly => Err(Denied::Unimplemented(
                "API is not implemented in maintenance mode".to_owned(),
            )),
            MaintenanceDecision::WriteDenied => Err(Denied::WriteNotAllowed),
            MaintenanceDecision::Unimplemented(msg) => Err(Denied::Unimplemented(msg.clone())),
        }
    }
}

/// The maintenance-mode policy for a full gRPC method path (Talos 1.7's maintenance server:
/// MachineService subset, StorageService, read-only COSI State; no role table).
pub fn maintenance_allowed(method: &str) -> MaintenanceDecision {
    let (service, name) = method
        .strip_prefix('/')
        .and_then(|m| m.split_once('/'))
        .unwrap_or(("", method));
    match (service, name) {
        ("machine.MachineService", "ApplyConfiguration" | "GenerateConfiguration") => {
            MaintenanceDecision::Allow
        }
        (
            "machine.MachineService",
            "Version" | "Upgrade" | "Reset" | "MetaWrite" | "MetaDelete",
        ) => MaintenanceDecision::AdminOnly,
        ("machine.MachineService", "GenerateClientConfiguration") => {
            MaintenanceDecision::Unimplemented(
                "client configuration (talosconfig) can't be generated in the maintenance mode"
                    .to_owned(),
            )
        }
        ("machine.MachineService", other) => {
            MaintenanceDecision::Unimplemented(format!("method {other} not implemented"))
        }
        ("storage.StorageService", "Disks") => MaintenanceDecision::Allow,
        ("cosi.resource.State", "Get" | "List" | "Watch") => MaintenanceDecision::Allow,
        ("cosi.resource.State", "Create" | "Update" | "Destroy") => {
            MaintenanceDecision::WriteDenied
        }
        ("storage.StorageService" | "cosi.resource.State", other) => {
            MaintenanceDecision::Unimplemented(format!(
                "unknown method {other} for service {service}"
            ))
        }
        _ => MaintenanceDecision::Unimplemented(format!("unknown service {service}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(roles: &[Role]) -> RoleSet {
        roles.iter().cloned().collect()
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in RULES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} >= {}", pair[0].0, pair[1].0);
        }
        assert_eq!(RULES.len(), 62);
    }

    #[test]
    fn reader() {
        let reader = set(&[Role::Reader]);
        for m in [
            "ApplyConfiguration",
            "Reboot",
            "Read",
            "Kubeconfig",
            "EtcdSnapshot",
        ] {
            let method = format!("/machine.MachineService/{m}");
            let err = allowed(&method, &reader).unwrap_err();
            assert_eq!(err.to_string(), "not authorized");
            assert_eq!(err.grpc_code(), 7);
        }
        for m in [
            "/machine.MachineService/Version",
            "/machine.MachineService/Logs",
            "/cosi.resource.State/Get",
            "/cosi.resource.State/Watch",
            "/storage.StorageService/Disks",
            "/time.TimeService/Time",
            "/cluster.ClusterService/HealthCheck",
            "/inspect.InspectService/ControllerRuntimeDependencies",
        ] {
            assert_eq!(allowed(m, &reader), Ok(()), "{m}");
        }
    }

    #[test]
    fn operator() {
        let op = set(&[Role::Operator]);
        assert_eq!(allowed("/machine.MachineService/Reboot", &op), Ok(()));
        assert_eq!(allowed("/machine.MachineService/EtcdSnapshot", &op), Ok(()));
        assert_eq!(
            allowed("/machine.MachineService/ServiceRestart", &op),
            Ok(())
        );
        assert!(allowed("/machine.MachineService/Read", &op).is_err());
        assert!(allowed("/machine.MachineService/Upgrade", &op).is_err());
    }

    #[test]
    fn etcd_backup_only_snapshot() {
        let backup = set(&[Role::EtcdBackup]);
        for (method, _) in RULES {
            let ok = allowed(method, &backup).is_ok();
            assert_eq!(
                ok,
                *method == "/machine.MachineService/EtcdSnapshot",
                "{method}"
            );
        }
    }

    #[test]
    fn unknown_method_is_admin_only() {
        let m = "/machine.MachineService/SomethingNew";
        assert_eq!(required_roles(m), set(&[Role::Admin]));
        assert_eq!(allowed(m, &set(&[Role::Admin])), Ok(()));
        for r in [
            Role::Operator,
            Role::Reader,
            Role::EtcdBackup,
            Role::Impersonator,
        ] {
            assert!(allowed(m, &set(&[r])).is_err());
        }
        assert!(allowed("/foo.Bar/Baz", &RoleSet::parse(["os:admin2"])).is_err());
    }

    #[test]
    fn admin_everything_but_cosi_writes() {
        let admin = set(&[Role::Admin]);
        for (method, _) in RULES {
            let res = allowed(method, &admin);
            if COSI_WRITES.contains(method) {
                assert_eq!(res, Err(Denied::WriteNotAllowed));
                assert_eq!(res.unwrap_err().to_string(), "write access is not allowed");
            } else {
                assert_eq!(res, Ok(()), "{method}");
            }
        }
    }

    #[test]
    fn cosi_writes_refused_for_everyone() {
        for method in COSI_WRITES {
            assert!(allowed(method, &RoleSet::all()).is_err());
            for r in Role::BUILTIN {
                assert!(allowed(method, &set(&[r])).is_err(), "{method}");
            }
            assert!(maintenance_allowed(method)
                .check(&set(&[Role::Admin]))
                .is_err());
        }
    }

    #[test]
    fn empty_roles_get_nothing() {
        for (method, _) in RULES {
            assert!(allowed(method, &RoleSet::empty()).is_err());
        }
    }

    #[test]
    fn sensitive_resources() {
        assert!(resource_read_allowed(true, &set(&[Role::Reader])).is_err());
        assert!(resource_read_allowed(true, &set(&[Role::Operator])).is_err());
        assert_eq!(resource_read_allowed(true, &set(&[Role::Admin])), Ok(()));
        assert_eq!(resource_read_allowed(false, &set(&[Role::Reader])), Ok(()));
    }

    #[test]
    fn trustd_token() {
        assert_eq!(check_trustd_token(&["abc.def"], "abc.def"), Ok(()));
        assert_eq!(check_trustd_token(&["abc.def", "x"], "abc.def"), Ok(()));
        assert_eq!(
            check_trustd_token(&["x", "abc.def"], "abc.def"),
            Err(Denied::BadToken)
        );
        assert_eq!(
            check_trustd_token(&["abc.deg"], "abc.def"),
            Err(Denied::BadToken)
        );
        assert_eq!(
            check_trustd_token(&["abc.de"], "abc.def"),
            Err(Denied::BadToken)
        );
        assert_eq!(check_trustd_token(&[], "abc.def"), Err(Denied::BadToken));
        assert_eq!(check_trustd_token(&[""], ""), Err(Denied::BadToken));
        assert_eq!(Denied::BadToken.to_string(), "Unauthenticated");
    }

    #[test]
    fn injection() {
        let orgs = vec!["os:reader".to_owned()];
        let md = vec!["os:admin".to_owned()];
        let peer = Peer {
            cert_organizations: &orgs,
            metadata_roles: &md,
            addr: None,
        };
        // A plain certificate's roles win over metadata.
        assert_eq!(
            inject_roles(InjectMode::Enabled, &peer),
            set(&[Role::Reader])
        );
        // RBAC disabled: every role.
        assert_eq!(inject_roles(InjectMode::Disabled, &peer), RoleSet::all());
        assert_eq!(
            inject_roles(InjectMode::MetadataOnly, &peer),
            set(&[Role::Admin])
        );

        // An impersonator passes the metadata roles, or keeps its own without metadata.
        let imp = vec!["os:impersonator".to_owned()];
        let peer = Peer {
            cert_organizations: &imp,
            metadata_roles: &md,
            addr: None,
        };
        assert_eq!(
            inject_roles(InjectMode::Enabled, &peer),
            set(&[Role::Admin])
        );
        let peer = Peer {
            cert_organizations: &imp,
            ..Peer::default()
        };
        assert_eq!(
            inject_roles(InjectMode::Enabled, &peer),
            set(&[Role::Impersonator])
        );
        assert!(inject_roles(InjectMode::MetadataOnly, &peer).is_empty());
    }

    #[test]
    fn maintenance_roles_by_address() {
        let mode = InjectMode::ReadOnlyWithAdminOnSideroLink;
        let at = |a: &str| Peer {
            addr: Some(a.parse().unwrap()),
            ..Peer::default()
        };
        assert_eq!(inject_roles(mode, &at("192.168.1.5")), set(&[Role::Reader]));
        assert_eq!(inject_roles(mode, &at("fd00::1")), set(&[Role::Reader]));
        assert_eq!(
            inject_roles(mode, &at("fdae:41e4:649b:9303::1")),
            set(&[Role::Admin])
        );
        assert_eq!(inject_roles(mode, &Peer::default()), set(&[Role::Reader]));
    }

    #[test]
    fn maintenance_policy() {
        let reader = set(&[Role::Reader]);
        let admin = set(&[Role::Admin]);
        let m = |name: &str| maintenance_allowed(&format!("/machine.MachineService/{name}"));

        assert_eq!(m("ApplyConfiguration"), MaintenanceDecision::Allow);
        assert_eq!(m("ApplyConfiguration").check(&RoleSet::empty()), Ok(()));
        assert_eq!(m("GenerateConfiguration").check(&reader), Ok(()));
        for name in ["Version", "Upgrade", "Reset", "MetaWrite", "MetaDelete"] {
            let err = m(name).check(&reader).unwrap_err();
            assert_eq!(
                err.to_string(),
                "API is not implemented in maintenance mode"
            );
            assert_eq!(err.grpc_code(), 12);
            assert_eq!(m(name).check(&admin), Ok(()));
        }
        assert!(m("GenerateClientConfiguration").check(&admin).is_err());
        assert_eq!(
            m("Reboot").check(&admin).unwrap_err().to_string(),
            "method Reboot not implemented"
        );
        let disks = maintenance_allowed("/storage.StorageService/Disks");
        assert_eq!(disks.check(&reader), Ok(()));
        assert_eq!(
            maintenance_allowed("/cosi.resource.State/List").check(&reader),
            Ok(())
        );
        assert_eq!(
            maintenance_allowed("/time.TimeService/Time")
                .check(&admin)
                .unwrap_err()
                .to_string(),
            "unknown service time.TimeService"
        );
    }
}
