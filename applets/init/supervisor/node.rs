//! Talos's system services as [`ServiceSpec`]s: machined, apid, trustd, and the specs of
//! networkd, containerd, etcd and kubelet that later issues fill in.
//!
//! containerd and etcd come from the extension layer (`/usr/bin`), so they are registered only
//! where it is mounted (metal images).
//!
//! Facts from Talos 1.7 (`internal/app/machined/pkg/system/services`,
//! `pkg/machinery/constants`): apid runs as uid/gid 50 and trustd as 51, with every
//! capability dropped and `no_new_privs`, `oom_score_adj` -998, restarted forever, health =
//! a TCP dial of 127.0.0.1:50000 / :50001 with the default timing; trustd has a 512 MB memory
//! limit; system services live in cgroup `/system/<id>`. apid and trustd are containerd tasks
//! in Talos, so their events use the task wording.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use talos::auth::PkiDir;
use talos::constants::{
    APID_LISTEN_ADDRESS, APID_SECRETS_PATH, APID_USER_ID, ETCD_USER_ID, MACHINE_SOCKET_PATH,
    SYSTEM_CONTAINERD_ADDRESS, SYSTEM_CONTAINERD_ROOT_PATH, SYSTEM_CONTAINERD_STATE_PATH,
    TRUSTD_LISTEN_ADDRESS, TRUSTD_SECRETS_PATH, TRUSTD_USER_ID,
};
use talos::errors::chain;
use talos::sys::cgroup;
use talos::sys::spawn::{self, Namespaces, SpawnOptions};

use super::spec::{
    ApiPolicy, CgroupSpec, Condition, HealthCheck, Probe, ProcessSpec, RestartPolicy, Runner,
    ServiceSpec, Style,
};

/// `oom_score_adj` of apid and trustd.
pub const SYSTEM_OOM_SCORE_ADJ: i32 = -998;
/// containerd in the extension layer (mounted over the root at boot).
pub const CONTAINERD_BIN: &str = "/usr/bin/containerd";
/// etcd in the extension layer.
pub const ETCD_BIN: &str = "/usr/bin/etcd";
/// `PATH` of extension-layer services (containerd finds its shim and runc there).
pub const EXTENSION_PATH: &str = "/usr/bin:/usr/sbin:/bin:/sbin";
/// Limit of one containerd health call (the check's own timeout applies too).
const CONTAINERD_HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// `oom_score_adj` of containerd (Talos: -999).
pub const CONTAINERD_OOM_SCORE_ADJ: i32 = -999;

/// What the service specs depend on (paths are parameters so tests can run them anywhere).
#[derive(Debug, Clone)]
pub struct NodeParams {
    /// machined's own executable (services are started from it with argv[0] = applet).
    pub exe: PathBuf,
    /// machined's API socket.
    pub machined_socket: PathBuf,
    /// apid's PKI directory.
    pub apid_pki_dir: PathBuf,
    /// trustd's PKI directory.
    pub trustd_pki_dir: PathBuf,
    /// apid's listen address (0.0.0.0:50000 on a node).
    pub apid_listen: SocketAddr,
    /// trustd's listen address (0.0.0.0:50001 on a node).
    pub trustd_listen: SocketAddr,
    /// Extra apid flags (`--rbac=false`, `--local-address`, ...).
    pub apid_args: Vec<String>,
    /// Drop apid/trustd to their Talos uids with no capabilities (needs root). The PKI
    /// directories are handed to those users and machined's socket is opened to apid's
    /// group in the pre step.
    pub unprivileged: bool,
    /// Give apid and trustd private mount, IPC and PID namespaces (needs root), as Talos's
    /// containers have.
    pub namespaces: bool,
    /// Put services in `/system/<id>` cgroups (the supervisor needs a cgroup root too).
    pub cgroups: bool,
    /// Where a kubelet executable provided by an extension is looked for, in order.
    pub kubelet_paths: Vec<PathBuf>,
}

impl NodeParams {
    /// Talos's node paths with `exe` as the executable; no privilege drop, namespaces or
    /// cgroups (the caller turns them on when running as root).
    pub fn new(exe: impl Into<PathBuf>) -> Self {
        NodeParams {
            exe: exe.into(),
            machined_socket: PathBuf::from(MACHINE_SOCKET_PATH),
            apid_pki_dir: PathBuf::from(APID_SECRETS_PATH),
            trustd_pki_dir: PathBuf::from(TRUSTD_SECRETS_PATH),
            apid_listen: APID_LISTEN_ADDRESS,
            trustd_listen: TRUSTD_LISTEN_ADDRESS,
            apid_args: Vec::new(),
            unprivileged: false,
            namespaces: false,
            cgroups: false,
            kubelet_paths: super::kubelet::KUBELET_PATHS
                .iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}

/// The address a health check dials for a listen address (loopback for 0.0.0.0).
fn loopback(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, listen.port()))
    } else {
        listen
    }
}

/// machined itself: always Running while machined runs; healthy when its socket accepts.
pub fn machined(params: &NodeParams) -> ServiceSpec {
    let mut spec = ServiceSpec::new("machined", Runner::Internal);
    spec.health = Some(HealthCheck::new(Probe::Unix(
        params.machined_socket.clone(),
    )));
    spec.api = ApiPolicy::default();
    spec
}

fn system_spawn(params: &NodeParams, uid: u32) -> SpawnOptions {
    SpawnOptions {
        setsid: true,
        namespaces: Namespaces {
            mount: params.namespaces,
            ipc: params.namespaces,
            uts: false,
            pid: params.namespaces,
        },
        cgroup: None,
        uid: params.unprivileged.then_some(uid),
        gid: params.unprivileged.then_some(uid),
        capabilities: params.unprivileged.then(Vec::new),
        no_new_privs: true,
        parent_death_signal: Some(libc::SIGKILL),
        oom_score_adj: Some(SYSTEM_OOM_SCORE_ADJ),
        bind_mounts: Vec::new(),
    }
}

/// Hands `dir` and its files to `uid:uid` (so a service dropped to that user can read it).
fn chown_tree(dir: &Path, uid: u32) -> Result<(), String> {
    let owner = Some(nix::unistd::Uid::from_raw(uid));
    let group = Some(nix::unistd::Gid::from_raw(uid));
    nix::unistd::chown(dir, owner, group).map_err(|e| format!("chown {}: {e}", dir.display()))?;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        nix::unistd::chown(&path, owner, group)
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

/// apid: `<exe>` with argv[0] `apid`, waiting for its PKI, healthy when :50000 accepts.
pub fn apid(params: &NodeParams) -> ServiceSpec {
    let mut args = vec![
        "--listen".to_string(),
        params.apid_listen.to_string(),
        "--pki-dir".to_string(),
        params.apid_pki_dir.display().to_string(),
        "--machined-socket".to_string(),
        params.machined_socket.display().to_string(),
    ];
    args.extend(params.apid_args.iter().cloned());
    let mut process = ProcessSpec::new(&params.exe, &[]);
    process.argv0 = Some("apid".into());
    process.args = args;
    process.spawn = system_spawn(params, APID_USER_ID);
    process.style = Style::Container;
    if params.cgroups {
        process.cgroup = Some(CgroupSpec {
            name: cgroup::service_path("apid"),
            memory_max: None,
            cpu_weight: None,
        });
    }
    let mut spec = ServiceSpec::new("apid", Runner::Process(process));
    spec.conditions = vec![Condition::FileExists(
        PkiDir::new(&params.apid_pki_dir).ca_crt(),
    )];
    spec.health = Some(HealthCheck::tcp(loopback(params.apid_listen)));
    spec.restart = RestartPolicy::Forever;
    spec.api = ApiPolicy::default();
    if params.unprivileged {
        let dir = params.apid_pki_dir.clone();
        let socket = params.machined_socket.clone();
        spec.pre = Some(Arc::new(move || {
            let dir = dir.clone();
            let socket = socket.clone();
            Box::pin(async move {
                chown_tree(&dir, APID_USER_ID)?;
                open_socket_to_group(&socket, APID_USER_ID)
            })
        }));
    }
    spec
}

/// Lets group `gid` use machined's socket (and reach it through its directory).
fn open_socket_to_group(socket: &Path, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let group = Some(nix::unistd::Gid::from_raw(gid));
    if let Some(dir) = socket.parent() {
        let mode = std::fs::metadata(dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .permissions()
            .mode();
        // Searchable by others (Talos makes the socket directory 0751).
        std::fs::set_permissions(
            dir,
            std::fs::Permissions::from_mode((mode & 0o7777) | 0o001),
        )
        .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    }
    nix::unistd::chown(socket, None, group)
        .map_err(|e| format!("chown {}: {e}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", socket.display()))
}

/// trustd (control planes): `<exe>` with argv[0] `trustd`, healthy when :50001 accepts.
pub fn trustd(params: &NodeParams) -> ServiceSpec {
    let dir = &params.trustd_pki_dir;
    let pki = PkiDir::new(dir);
    let mut process = ProcessSpec::new(&params.exe, &[]);
    process.argv0 = Some("trustd".into());
    process.args = vec![
        "--listen".to_string(),
        params.trustd_listen.to_string(),
        "--pki-dir".to_string(),
        dir.display().to_string(),
        "--token-file".to_string(),
        pki.token().display().to_string(),
    ];
    process.spawn = system_spawn(params, TRUSTD_USER_ID);
    process.style = Style::Container;
    if params.cgroups {
        process.cgroup = Some(CgroupSpec {
            name: cgroup::service_path("trustd"),
            memory_max: Some(cgroup::TRUSTD_MEMORY_MAX),
            cpu_weight: None,
        });
    }
    let mut spec = ServiceSpec::new("trustd", Runner::Process(process));
    spec.conditions = vec![
        Condition::FileExists(pki.ca_crt()),
        Condition::FileExists(pki.server_crt()),
    ];
    spec.health = Some(HealthCheck::tcp(loopback(params.trustd_listen)));
    spec.restart = RestartPolicy::Forever;
    spec.api = ApiPolicy::default();
    if params.unprivileged {
        let dir = dir.clone();
        spec.pre = Some(Arc::new(move || {
            let dir = dir.clone();
            Box::pin(async move { chown_tree(&dir, TRUSTD_USER_ID) })
        }));
    }
    spec
}

/// networkd (metal nodes; its first piece comes with the image issue).
pub fn networkd(params: &NodeParams) -> ServiceSpec {
    let mut process = ProcessSpec::new(&params.exe, &[]);
    process.argv0 = Some("networkd".into());
    process.spawn.setsid = true;
    if params.cgroups {
        process.cgroup = Some(CgroupSpec {
            name: cgroup::service_path("networkd"),
            memory_max: None,
            cpu_weight: None,
        });
    }
    let mut spec = ServiceSpec::new("networkd", Runner::Process(process));
    spec.api = ApiPolicy::default();
    spec
}

/// The system containerd (Talos's arguments; the binary comes from the extension layer),
/// in `/system/runtime`, restarted forever, healthy when it answers the gRPC health check.
pub fn containerd(params: &NodeParams) -> ServiceSpec {
    let mut process = ProcessSpec::new(
        CONTAINERD_BIN,
        &[
            "--address",
            SYSTEM_CONTAINERD_ADDRESS,
            "--state",
            SYSTEM_CONTAINERD_STATE_PATH,
            "--root",
            SYSTEM_CONTAINERD_ROOT_PATH,
        ],
    );
    process.env = vec![("PATH".into(), EXTENSION_PATH.into())];
    process.spawn.setsid = true;
    process.spawn.oom_score_adj = Some(CONTAINERD_OOM_SCORE_ADJ);
    // Talos's containerd runs as root without CAP_SYS_BOOT and CAP_SYS_MODULE.
    process.spawn.capabilities = Some(spawn::all_capabilities_except(&[
        spawn::cap::SYS_BOOT,
        spawn::cap::SYS_MODULE,
    ]));
    process.spawn.parent_death_signal = Some(libc::SIGKILL);
    if params.cgroups {
        process.cgroup = Some(CgroupSpec {
            name: cgroup::SYSTEM_RUNTIME.into(),
            memory_max: None,
            cpu_weight: None,
        });
    }
    let mut spec = ServiceSpec::new("containerd", Runner::Process(process));
    // Healthy when containerd answers the standard gRPC health check with SERVING.
    let health = HealthCheck::new(Probe::Custom(Arc::new(|| {
        Box::pin(async {
            talos::client::health::check_unix(
                Path::new(SYSTEM_CONTAINERD_ADDRESS),
                CONTAINERD_HEALTH_TIMEOUT,
            )
            .await
            .map_err(|e| chain(&e).to_string())
        })
    })));
    spec.health = Some(health);
    spec.api = ApiPolicy::default();
    spec
}

/// What etcd's pre step shows while it waits for `talosctl bootstrap`: the node's
/// addresses, to bootstrap against.
pub type AddressesFn = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// How often the "waiting to join" message is repeated (Talos: every 30 s).
pub const ETCD_NAG_PERIOD: std::time::Duration = std::time::Duration::from_secs(30);

/// etcd on control planes (binary from the extension layer, data in `/var/lib/etcd`, its
/// own uid). Until the cluster is bootstrapped its pre step waits, as Talos's does ("Preparing:
/// Running pre state"), repeating on machined's log that it waits for `talosctl bootstrap`
/// and where to send it. The bootstrap itself comes with the etcd issue: until then the
/// wait does not end, and a stop ends it.
pub fn etcd(params: &NodeParams, addresses: AddressesFn) -> ServiceSpec {
    let mut process = ProcessSpec::new(ETCD_BIN, &[]);
    process.env = vec![("PATH".into(), EXTENSION_PATH.into())];
    process.spawn.setsid = true;
    process.spawn.uid = params.unprivileged.then_some(ETCD_USER_ID);
    process.spawn.gid = params.unprivileged.then_some(ETCD_USER_ID);
    process.spawn.parent_death_signal = Some(libc::SIGKILL);
    if params.cgroups {
        process.cgroup = Some(CgroupSpec {
            name: cgroup::service_path("etcd"),
            memory_max: None,
            cpu_weight: None,
        });
    }
    let mut spec = ServiceSpec::new("etcd", Runner::Process(process));
    // Talos's etcd depends on "cri" (the Kubernetes-facing containerd, which pulls its image);
    // this etcd is a process from the extension layer and the system containerd is the one
    // containerd there is.
    spec.depends_on = vec!["containerd".into()];
    spec.pre = Some(Arc::new(move || {
        let addresses = Arc::clone(&addresses);
        Box::pin(async move {
            loop {
                let ips = addresses();
                tracing::info!(
                    "etcd is waiting to join the cluster; if this node is the first node of \
                     the cluster, run `talosctl bootstrap` against one of these addresses:"
                );
                tracing::info!("{ips:?}");
                tokio::time::sleep(ETCD_NAG_PERIOD).await;
            }
        })
    }));
    spec.restart = RestartPolicy::Forever;
    spec.api = ApiPolicy::default();
    spec
}

/// The services of a node: machined, apid, and trustd on control planes.
pub fn node_services(params: &NodeParams, control_plane: bool) -> Vec<ServiceSpec> {
    let mut specs = vec![machined(params), apid(params)];
    if control_plane {
        specs.push(trustd(params));
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apid_spec_matches_talos() {
        let mut params = NodeParams::new("/sbin/init");
        params.unprivileged = true;
        params.cgroups = true;
        let spec = apid(&params);
        let Runner::Process(p) = &spec.runner else {
            panic!("apid is a process")
        };
        assert_eq!(
            p.argv()[..5],
            [
                "apid",
                "--listen",
                "0.0.0.0:50000",
                "--pki-dir",
                "/system/secrets/apid"
            ]
        );
        assert_eq!(p.spawn.uid, Some(50));
        assert_eq!(p.spawn.gid, Some(50));
        assert_eq!(p.spawn.capabilities, Some(vec![]));
        assert!(p.spawn.no_new_privs);
        assert_eq!(
            p.cgroup.as_ref().map(|c| c.name.as_str()),
            Some("/system/apid")
        );
        assert!(matches!(
            spec.health.as_ref().map(|h| &h.probe),
            Some(Probe::Tcp(a)) if a.to_string() == "127.0.0.1:50000"
        ));
        assert_eq!(spec.restart, RestartPolicy::Forever);

        let t = trustd(&params);
        let Runner::Process(p) = &t.runner else {
            panic!("trustd is a process")
        };
        assert_eq!(p.spawn.uid, Some(51));
        assert_eq!(
            p.cgroup.as_ref().and_then(|c| c.memory_max),
            Some(512_000_000)
        );
        assert_eq!(
            node_services(&params, false)
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["machined", "apid"]
        );
        assert_eq!(node_services(&params, true).len(), 3);
        let Runner::Process(c) = &containerd(&params).runner else {
            panic!("containerd is a process")
        };
        let caps = c.spawn.capabilities.clone().unwrap_or_default();
        assert!(!caps.contains(&spawn::cap::SYS_BOOT) && !caps.contains(&spawn::cap::SYS_MODULE));
        assert!(caps.contains(&spawn::cap::SYS_ADMIN));
        assert_eq!(c.spawn.oom_score_adj, Some(-999));
        for hook in [
            networkd(&params),
            containerd(&params),
            etcd(&params, Arc::new(Vec::new)),
        ] {
            assert!(matches!(hook.runner, Runner::Process(_)), "{}", hook.id);
        }
    }
}
