//! Every resource type machined registers, as data: the definitions `talosctl get rd` lists
//! (type, default namespace, sensitivity, explicit aliases, print columns), and Talos's
//! namespaces. A type with a Rust spec is declared by its [`ResourceSpec`] impl and appears here
//! as that spec's [`ResourceSpec::DEFINITION`]; the others are written out below. The derived
//! aliases and display types are computed by [`super::registry::Definition::new`].
//!
//! Gathered from the resource definitions of Talos v1.7.0 (`pkg/machinery/resources`), sorted
//! by lower-cased type, which is also the order of their ids.

use super::registry::{Definition, NamespaceSpec};
use super::specs::{
    AddressStatusSpec, AdmissionControlConfigSpec, ApiServerConfigSpec, AuditPolicyConfigSpec,
    BootstrapManifestsConfigSpec, CertSanSpec, ConfigStatusSpec, ControllerManagerConfigSpec,
    EtcdRootSpec, ExtraManifestsConfigSpec, HostnameStatusSpec, KernelParamStatusSpec,
    KubeletConfigSpec, KubeletSecretsSpec, KubeletSpecSpec, KubernetesCertsSpec,
    KubernetesDynamicCertsSpec, KubernetesRootSpec, LinkStatusSpec, MachineConfigSpec,
    MachineStatusSpec, MachineTypeSpec, ManifestSpec, ManifestStatusSpec, MemberSpec,
    MountStatusSpec, NodeIpConfigSpec, NodeIpSpec, NodenameSpec, ResolverStatusSpec,
    RouteStatusSpec, SchedulerConfigSpec, SecretsStatusSpec, ServiceSpec,
    StaticPodServerStatusSpec, StaticPodSpec, StaticPodStatusSpec, TimeStatusSpec,
};
use super::ResourceSpec;

/// An extra column of `talosctl get` tables: a header and a JSONPath template over the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column header.
    pub name: &'static str,
    /// JSONPath template, e.g. `{.status.ready}`.
    pub json_path: &'static str,
}

/// A column (for the tables below and the spec impls).
pub const fn col(name: &'static str, json_path: &'static str) -> Column {
    Column { name, json_path }
}

/// The definition of one resource type, as declared (the registry derives display type and
/// aliases from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// Full type, e.g. `LinkStatuses.net.talos.dev`.
    pub type_name: &'static str,
    /// Default namespace.
    pub namespace: &'static str,
    /// Readable only with `os:admin`.
    pub sensitive: bool,
    /// Aliases besides the derived ones.
    pub aliases: &'static [&'static str],
    /// Extra table columns.
    pub columns: &'static [Column],
}

impl ResourceDef {
    /// A definition without aliases or columns, not sensitive.
    pub const fn new(type_name: &'static str, namespace: &'static str) -> ResourceDef {
        ResourceDef {
            type_name,
            namespace,
            sensitive: false,
            aliases: &[],
            columns: &[],
        }
    }

    /// The same definition, sensitive.
    pub const fn sensitive(self) -> ResourceDef {
        ResourceDef {
            sensitive: true,
            ..self
        }
    }

    /// The same definition with `aliases`.
    pub const fn aliases(self, aliases: &'static [&'static str]) -> ResourceDef {
        ResourceDef { aliases, ..self }
    }

    /// The same definition with `columns`.
    pub const fn columns(self, columns: &'static [Column]) -> ResourceDef {
        ResourceDef { columns, ..self }
    }
}

/// The two COSI meta types: namespaces and resource definitions.
pub const META_TYPES: &[ResourceDef] = &[NamespaceSpec::DEFINITION, Definition::DEFINITION];

/// Every Talos 1.7 machined resource type.
pub const TALOS_TYPES: &[ResourceDef] = &[
    ResourceDef::new("AcquireConfigSpecs.v1alpha1.talos.dev", "runtime"),
    ResourceDef::new("AcquireConfigStatuses.v1alpha1.talos.dev", "runtime"),
    ResourceDef::new("AddressSpecs.net.talos.dev", "network"),
    AddressStatusSpec::DEFINITION,
    ResourceDef::new("AdjtimeStatuses.v1alpha1.talos.dev", "runtime").columns(&[
        col("Offset", "{.offset}"),
        col("EstError", "{.estError}"),
        col("MaxError", "{.maxError}"),
        col("Status", "{.status}"),
        col("Sync", "{.syncStatus}"),
    ]),
    AdmissionControlConfigSpec::DEFINITION,
    ResourceDef::new("Affiliates.cluster.talos.dev", "cluster").columns(&[
        col("Hostname", "{.hostname}"),
        col("Machine Type", "{.machineType}"),
        col("Addresses", "{.addresses}"),
    ]),
    ResourceDef::new("ApiCertificates.secrets.talos.dev", "secrets").sensitive(),
    ApiServerConfigSpec::DEFINITION,
    AuditPolicyConfigSpec::DEFINITION,
    ResourceDef::new("BlockDevices.block.talos.dev", "runtime").columns(&[
        col("Type", "{.type}"),
        col("PartitionName", "{.partitionName}"),
        col("Generation", "{.generation}"),
    ]),
    BootstrapManifestsConfigSpec::DEFINITION,
    CertSanSpec::DEFINITION,
    ConfigStatusSpec::DEFINITION,
    ControllerManagerConfigSpec::DEFINITION,
    ResourceDef::new("CPUStats.perf.talos.dev", "perf").columns(&[
        col("User", "{.cpuTotal.user}"),
        col("System", "{.cpuTotal.system}"),
    ]),
    ResourceDef::new("DeviceConfigSpecs.net.talos.dev", "network").sensitive(),
    ResourceDef::new("DevicesStatuses.runtime.talos.dev", "runtime")
        .columns(&[col("Ready", "{.ready}")]),
    ResourceDef::new("DiscoveredVolumes.block.talos.dev", "runtime").columns(&[
        col("Type", "{.type}"),
        col("Size", "{.size}"),
        col("Discovered", "{.name}"),
        col("Label", "{.label}"),
        col("PartitionLabel", "{.partitionLabel}"),
    ]),
    ResourceDef::new("DiscoveryConfigs.cluster.talos.dev", "config").sensitive(),
    ResourceDef::new("DNSResolveCaches.net.talos.dev", "network")
        .columns(&[col("Status", "{.status}")]),
    ResourceDef::new("DNSUpstreams.net.talos.dev", "network")
        .columns(&[col("Healthy", "{.healthy}"), col("Address", "{.addr}")]),
    ResourceDef::new("Endpoints.kubernetes.talos.dev", "controlplane")
        .columns(&[col("Addresses", "{.addresses}")]),
    ResourceDef::new("EtcdConfigs.etcd.talos.dev", "etcd").columns(&[col("Image", "{.image}")]),
    ResourceDef::new("EtcdMembers.etcd.talos.dev", "etcd")
        .columns(&[col("Member ID", "{.memberID}")]),
    EtcdRootSpec::DEFINITION,
    ResourceDef::new("EtcdSecrets.secrets.talos.dev", "secrets").sensitive(),
    ResourceDef::new("EtcdSpecs.etcd.talos.dev", "etcd").columns(&[
        col("Name", "{.name}"),
        col("AdvertisedAddresses", "{.advertisedAddresses}"),
        col("ListenPeerAddresses", "{.listenPeerAddresses}"),
        col("ListenClientAddresses", "{.listenClientAddresses}"),
    ]),
    ResourceDef::new("EtcFileSpecs.files.talos.dev", "files"),
    ResourceDef::new("EtcFileStatuses.files.talos.dev", "files"),
    ResourceDef::new("EventSinkConfigs.runtime.talos.dev", "runtime"),
    ResourceDef::new("ExtensionServiceConfigs.runtime.talos.dev", "runtime"),
    ResourceDef::new(
        "ExtensionServiceConfigStatuses.runtime.talos.dev",
        "runtime",
    ),
    ResourceDef::new("ExtensionStatuses.runtime.talos.dev", "runtime")
        .aliases(&["extensions"])
        .columns(&[
            col("Name", "{.metadata.name}"),
            col("Version", "{.metadata.version}"),
        ]),
    ExtraManifestsConfigSpec::DEFINITION,
    ResourceDef::new("HardwareAddresses.net.talos.dev", "network"),
    ResourceDef::new("HostDNSConfigs.net.talos.dev", "network")
        .columns(&[col("Enabled", "{.enabled}")]),
    ResourceDef::new("HostnameSpecs.net.talos.dev", "network"),
    HostnameStatusSpec::DEFINITION,
    ResourceDef::new("Identities.cluster.talos.dev", "cluster").columns(&[col("ID", "{.nodeId}")]),
    ResourceDef::new("Infos.cluster.talos.dev", "cluster").columns(&[
        col("Cluster ID", "{.clusterId}"),
        col("Cluster Name", "{.clusterName}"),
    ]),
    ResourceDef::new("KernelModuleSpecs.runtime.talos.dev", "runtime").aliases(&["modules"]),
    ResourceDef::new("KernelParamDefaultSpecs.runtime.talos.dev", "runtime"),
    ResourceDef::new("KernelParamSpecs.runtime.talos.dev", "runtime"),
    KernelParamStatusSpec::DEFINITION,
    ResourceDef::new("KmsgLogConfigs.runtime.talos.dev", "runtime"),
    KubeletConfigSpec::DEFINITION,
    ResourceDef::new("KubeletLifecycles.kubernetes.talos.dev", "k8s"),
    KubeletSecretsSpec::DEFINITION,
    KubeletSpecSpec::DEFINITION,
    ResourceDef::new("KubePrismConfigs.kubernetes.talos.dev", "k8s").columns(&[
        col("Host", "{.host}"),
        col("Port", "{.port}"),
        col("Endpoints", "{.endpoints}"),
    ]),
    ResourceDef::new("KubePrismEndpoints.kubernetes.talos.dev", "k8s").columns(&[
        col("Hosts", "{.endpoints[*].host}"),
        col("Ports", "{.endpoints[*].port}"),
    ]),
    ResourceDef::new("KubePrismStatuses.kubernetes.talos.dev", "k8s")
        .columns(&[col("HOST", "{.host}"), col("HEALTHY", "{.healthy}")]),
    ResourceDef::new("KubernetesAccessConfigs.cluster.talos.dev", "config"),
    KubernetesDynamicCertsSpec::DEFINITION,
    KubernetesRootSpec::DEFINITION,
    KubernetesCertsSpec::DEFINITION,
    ResourceDef::new("KubeSpanConfigs.kubespan.talos.dev", "config").sensitive(),
    ResourceDef::new("KubeSpanEndpoints.kubespan.talos.dev", "kubespan").columns(&[
        col("Endpoint", "{.endpoint}"),
        col("Affiliate ID", "{.affiliateID}"),
    ]),
    ResourceDef::new("KubeSpanIdentities.kubespan.talos.dev", "kubespan")
        .sensitive()
        .columns(&[
            col("Address", "{.address}"),
            col("PublicKey", "{.publicKey}"),
        ]),
    ResourceDef::new("KubeSpanPeerSpecs.kubespan.talos.dev", "kubespan")
        .columns(&[col("Label", "{.label}"), col("Endpoints", "{.endpoints}")]),
    ResourceDef::new("KubeSpanPeerStatuses.kubespan.talos.dev", "kubespan").columns(&[
        col("Label", "{.label}"),
        col("Endpoint", "{.endpoint}"),
        col("State", "{.state}"),
        col("Rx", "{.receiveBytes}"),
        col("Tx", "{.transmitBytes}"),
    ]),
    ResourceDef::new("LinkRefreshes.net.talos.dev", "network"),
    ResourceDef::new("LinkSpecs.net.talos.dev", "network").sensitive(),
    LinkStatusSpec::DEFINITION,
    MachineConfigSpec::DEFINITION,
    ResourceDef::new("MachineResetSignals.runtime.talos.dev", "runtime"),
    MachineStatusSpec::DEFINITION,
    MachineTypeSpec::DEFINITION,
    ResourceDef::new("MaintenanceRootSecrets.secrets.talos.dev", "secrets").sensitive(),
    ResourceDef::new(
        "MaintenanceServiceCertificates.secrets.talos.dev",
        "secrets",
    )
    .sensitive(),
    ResourceDef::new("MaintenanceServiceConfigs.runtime.talos.dev", "runtime"),
    ResourceDef::new("MaintenanceServiceRequests.runtime.talos.dev", "runtime"),
    ManifestSpec::DEFINITION,
    ManifestStatusSpec::DEFINITION,
    MemberSpec::DEFINITION,
    ResourceDef::new("MemoryModules.hardware.talos.dev", "hardware")
        .aliases(&["memorymodules", "ram"])
        .columns(&[
            col("Manufacturer", "{.manufacturer}"),
            col("Model", "{.productName}"),
            col("SizeMiB", "{.sizeMiB}"),
        ]),
    ResourceDef::new("MemoryStats.perf.talos.dev", "perf")
        .columns(&[col("Used", "{.used}"), col("Total", "{.total}")]),
    ResourceDef::new("MetaKeys.runtime.talos.dev", "runtime")
        .aliases(&["meta"])
        .columns(&[col("Value", "{.value}")]),
    ResourceDef::new("MetaLoads.runtime.talos.dev", "runtime").columns(&[col("Done", "{.done}")]),
    MountStatusSpec::DEFINITION,
    ResourceDef::new("NetworkStatuses.net.talos.dev", "network")
        .aliases(&["netstatus", "netstatuses"])
        .columns(&[
            col("Address", "{.addressReady}"),
            col("Connectivity", "{.connectivityReady}"),
            col("Hostname", "{.hostnameReady}"),
            col("Etc", "{.etcFilesReady}"),
        ]),
    ResourceDef::new("NfTablesChains.net.talos.dev", "network")
        .aliases(&["chain", "chains"])
        .columns(&[
            col("Type", "{.type}"),
            col("Hook", "{.hook}"),
            col("Priority", "{.priority}"),
            col("Policy", "{.policy}"),
        ]),
    ResourceDef::new("NodeAddresses.net.talos.dev", "network")
        .columns(&[col("Addresses", "{.addresses}")]),
    ResourceDef::new("NodeAddressFilters.net.talos.dev", "network").columns(&[
        col("Include Subnets", "{.includeSubnets}"),
        col("Exclude Subnets", "{.excludeSubnets}"),
    ]),
    ResourceDef::new("NodeCordonedSpecs.k8s.talos.dev", "k8s").sensitive(),
    NodeIpConfigSpec::DEFINITION,
    NodeIpSpec::DEFINITION,
    ResourceDef::new("NodeLabelSpecs.k8s.talos.dev", "k8s")
        .sensitive()
        .columns(&[col("Value", "{.value}")]),
    NodenameSpec::DEFINITION,
    ResourceDef::new("NodeStatuses.kubernetes.talos.dev", "k8s").columns(&[
        col("Ready", "{.nodeReady}"),
        col("Unschedulable", "{.unschedulable}"),
    ]),
    ResourceDef::new("NodeTaintSpecs.k8s.talos.dev", "k8s")
        .sensitive()
        .columns(&[col("Effect", "{.effect}"), col("Value", "{.value}")]),
    ResourceDef::new("OperatorSpecs.net.talos.dev", "network").sensitive(),
    ResourceDef::new("OSRootSecrets.secrets.talos.dev", "secrets").sensitive(),
    ResourceDef::new("PKIStatuses.etcd.talos.dev", "etcd").columns(&[
        col("Ready", "{.ready}"),
        col("Secrets Version", "{.version}"),
    ]),
    ResourceDef::new("PlatformMetadatas.talos.dev", "runtime").columns(&[
        col("Platform", "{.platform}"),
        col("Type", "{.instanceType}"),
        col("Region", "{.region}"),
        col("Zone", "{.zone}"),
    ]),
    ResourceDef::new("ProbeSpecs.net.talos.dev", "network"),
    ResourceDef::new("ProbeStatuses.net.talos.dev", "network")
        .aliases(&["probe", "probes"])
        .columns(&[col("Success", "{.success}")]),
    ResourceDef::new("Processors.hardware.talos.dev", "hardware")
        .aliases(&["cpus", "cpu"])
        .columns(&[
            col("Manufacturer", "{.manufacturer}"),
            col("Model", "{.productName}"),
            col("Cores", "{.coreCount}"),
            col("Threads", "{.threadCount}"),
        ]),
    ResourceDef::new("ResolverSpecs.net.talos.dev", "network"),
    ResolverStatusSpec::DEFINITION,
    ResourceDef::new("RouteSpecs.net.talos.dev", "network"),
    RouteStatusSpec::DEFINITION,
    SchedulerConfigSpec::DEFINITION,
    ResourceDef::new("SeccompProfiles.cri.talos.dev", "cri"),
    SecretsStatusSpec::DEFINITION,
    ResourceDef::new("SecurityStates.talos.dev", "runtime").columns(&[
        col("SecureBoot", "{.secureBoot}"),
        col("UKISigningKeyFingerprint", "{.ukiSigningKeyFingerprint}"),
        col("PCRSigningKeyFingerprint", "{.pcrSigningKeyFingerprint}"),
    ]),
    ServiceSpec::DEFINITION,
    ResourceDef::new("SiderolinkConfigs.siderolink.talos.dev", "config")
        .sensitive()
        .columns(&[
            col("API Endpoint", "{.apiEndpoint}"),
            col("Tunnel", "{.tunnel}"),
        ]),
    ResourceDef::new("SiderolinkTunnels.siderolink.talos.dev", "config")
        .sensitive()
        .columns(&[
            col("API Endpoint", "{.apiEndpoint}"),
            col("Interface name", "{.ifaceName}"),
            col("MTU", "{.mtu}"),
            col("Node address", "{.nodeAddress}"),
        ]),
    StaticPodSpec::DEFINITION,
    StaticPodServerStatusSpec::DEFINITION,
    StaticPodStatusSpec::DEFINITION,
    ResourceDef::new("SystemInformations.hardware.talos.dev", "hardware")
        .aliases(&["systeminformation"])
        .columns(&[
            col("Manufacturer", "{.manufacturer}"),
            col("ProductName", "{.productName}"),
            col("Version", "{.version}"),
            col("SerialNumber", "{.serialnumber}"),
            col("UUID", "{.uuid}"),
            col("WakeUpType", "{.wakeUpType}"),
            col("SKUNumber", "{.skuNumber}"),
        ]),
    ResourceDef::new("TimeServerSpecs.net.talos.dev", "network"),
    ResourceDef::new("TimeServerStatuses.net.talos.dev", "network")
        .aliases(&["timeserver", "timeservers"])
        .columns(&[col("Timeservers", "{.timeServers}")]),
    TimeStatusSpec::DEFINITION,
    ResourceDef::new("TrustdCertificates.secrets.talos.dev", "secrets").sensitive(),
    ResourceDef::new("UniqueMachineTokens.runtime.talos.dev", "runtime")
        .columns(&[col("Token", "{.token}")]),
    ResourceDef::new("WatchdogTimerConfigs.runtime.talos.dev", "runtime")
        .columns(&[col("Device", "{.device}"), col("Timeout", "{.timeout}")]),
    ResourceDef::new("WatchdogTimerStatuses.runtime.talos.dev", "runtime")
        .columns(&[col("Device", "{.device}"), col("Timeout", "{.timeout}")]),
];

/// A namespace and what `talosctl get ns` says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceDef {
    /// Name, e.g. `network`.
    pub name: &'static str,
    /// Description.
    pub description: &'static str,
}

/// The COSI `meta` namespace (namespaces and resource definitions).
pub const META_NAMESPACE_DEF: NamespaceDef = NamespaceDef {
    name: "meta",
    description: "Metadata namespace which contains resource and namespace definitions.",
};

/// Talos's namespaces besides `meta`, with the descriptions `talosctl get ns` shows.
pub const TALOS_NAMESPACES: &[NamespaceDef] = &[
    NamespaceDef {
        name: "runtime",
        description: "Talos v1alpha1 subsystems glue resources.",
    },
    NamespaceDef {
        name: "cluster",
        description: "Cluster configuration and discovery resources.",
    },
    NamespaceDef {
        name: "cluster-raw",
        description: "Cluster unmerged raw resources.",
    },
    NamespaceDef {
        name: "config",
        description: "Talos node configuration.",
    },
    NamespaceDef {
        name: "etcd",
        description: "etcd resources.",
    },
    NamespaceDef {
        name: "files",
        description: "Files and file-like resources.",
    },
    NamespaceDef {
        name: "hardware",
        description: "Hardware resources.",
    },
    NamespaceDef {
        name: "k8s",
        description: "Kubernetes all node types resources.",
    },
    NamespaceDef {
        name: "controlplane",
        description: "Kubernetes control plane resources.",
    },
    NamespaceDef {
        name: "kubespan",
        description: "KubeSpan resources.",
    },
    NamespaceDef {
        name: "network",
        description: "Networking resources.",
    },
    NamespaceDef {
        name: "network-config",
        description: "Networking configuration resources.",
    },
    NamespaceDef {
        name: "cri",
        description: "CRI Seccomp resources.",
    },
    NamespaceDef {
        name: "secrets",
        description: "Resources with secret material.",
    },
    NamespaceDef {
        name: "perf",
        description: "Stats resources.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The definitions that come from a Rust spec.
    const FROM_SPECS: &[ResourceDef] = &[
        MachineConfigSpec::DEFINITION,
        MachineTypeSpec::DEFINITION,
        MachineStatusSpec::DEFINITION,
        ServiceSpec::DEFINITION,
        KernelParamStatusSpec::DEFINITION,
        MountStatusSpec::DEFINITION,
        TimeStatusSpec::DEFINITION,
        NodenameSpec::DEFINITION,
        MemberSpec::DEFINITION,
        LinkStatusSpec::DEFINITION,
        AddressStatusSpec::DEFINITION,
        RouteStatusSpec::DEFINITION,
        ResolverStatusSpec::DEFINITION,
        HostnameStatusSpec::DEFINITION,
        AdmissionControlConfigSpec::DEFINITION,
        ApiServerConfigSpec::DEFINITION,
        AuditPolicyConfigSpec::DEFINITION,
        BootstrapManifestsConfigSpec::DEFINITION,
        CertSanSpec::DEFINITION,
        ConfigStatusSpec::DEFINITION,
        ControllerManagerConfigSpec::DEFINITION,
        EtcdRootSpec::DEFINITION,
        ExtraManifestsConfigSpec::DEFINITION,
        KubeletConfigSpec::DEFINITION,
        KubeletSecretsSpec::DEFINITION,
        KubeletSpecSpec::DEFINITION,
        KubernetesCertsSpec::DEFINITION,
        KubernetesDynamicCertsSpec::DEFINITION,
        KubernetesRootSpec::DEFINITION,
        ManifestSpec::DEFINITION,
        ManifestStatusSpec::DEFINITION,
        NodeIpConfigSpec::DEFINITION,
        NodeIpSpec::DEFINITION,
        SchedulerConfigSpec::DEFINITION,
        SecretsStatusSpec::DEFINITION,
        StaticPodServerStatusSpec::DEFINITION,
        StaticPodSpec::DEFINITION,
        StaticPodStatusSpec::DEFINITION,
    ];

    #[test]
    fn sorted_by_lower_cased_type_and_unique() {
        let names: Vec<String> = TALOS_TYPES
            .iter()
            .map(|d| d.type_name.to_lowercase())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn every_spec_is_registered_once_as_it_declares_itself() {
        for def in FROM_SPECS {
            let found: Vec<&ResourceDef> = TALOS_TYPES
                .iter()
                .filter(|d| d.type_name == def.type_name)
                .collect();
            assert_eq!(found, [def], "{}", def.type_name);
        }
        assert_eq!(META_TYPES[0].type_name, "Namespaces.meta.cosi.dev");
        assert_eq!(META_TYPES[1].type_name, "ResourceDefinitions.meta.cosi.dev");
    }

    #[test]
    fn spec_definitions_carry_aliases_sensitivity_and_columns() {
        let link = LinkStatusSpec::DEFINITION;
        assert_eq!(
            (link.type_name, link.namespace, link.sensitive),
            ("LinkStatuses.net.talos.dev", "network", false)
        );
        assert_eq!(link.aliases, ["link", "links"]);
        assert_eq!(link.columns[2], col("Hw Addr", "{.hardwareAddr}"));
        const { assert!(MachineConfigSpec::DEFINITION.sensitive) };
        const BUILT: ResourceDef = ResourceDef::new("Things.test.dev", "test")
            .sensitive()
            .aliases(&["t"])
            .columns(&[col("A", "{.a}")]);
        assert_eq!(
            BUILT,
            ResourceDef {
                type_name: "Things.test.dev",
                namespace: "test",
                sensitive: true,
                aliases: &["t"],
                columns: &[Column {
                    name: "A",
                    json_path: "{.a}"
                }],
            }
        );
    }
}
