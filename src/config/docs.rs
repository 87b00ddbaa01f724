//! Field documentation for the machine configuration, used for the YAML comments that
//! `talosctl gen config --with-docs --with-examples` writes.
//!
//! Every key of the v1alpha1 document and of the other 1.7 document kinds has one entry: a
//! one-line description and, for many fields, example values. Examples are YAML snippets for the
//! field's value only (not the key); a generator writes them commented out under the key when the
//! field is absent from the generated config.
//!
//! Key paths are dotted (`machine.install.disk`), with `[]` for list items
//! (`machine.network.interfaces[].dhcp`) and `{}` for map values
//! (`machine.registries.mirrors{}.endpoints`). Keys of other document kinds are rooted at the kind
//! (`SideroLinkConfig.apiUrl`); the document itself is its bare kind (`SideroLinkConfig`).
//!
//! The table is in the order the fields appear in the config types (v1alpha1 first, then the other
//! kinds); [`all`] returns it in that order.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Documentation of one config field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDoc {
    /// Key path: dotted, `[]` for list items, `{}` for map values, e.g.
    /// "machine.network.interfaces[].dhcp", "machine.registries.mirrors{}.endpoints"; other document
    /// kinds are rooted at their kind, e.g. "SideroLinkConfig.apiUrl", and the document itself as
    /// "SideroLinkConfig".
    pub path: &'static str,
    /// One-line description, ending with a period.
    pub description: &'static str,
    /// Example values as YAML snippets for the field's value (may be multi-line). Empty when none.
    pub examples: &'static [&'static str],
}

/// Returns the documentation of the field at `path` (see [`FieldDoc::path`] for the syntax).
pub fn lookup(path: &str) -> Option<&'static FieldDoc> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        DOCS.iter()
            .enumerate()
            .map(|(i, doc)| (doc.path, i))
            .collect()
    });
    index.get(path).map(|&i| &DOCS[i])
}

/// Returns every documented field, in config order.
pub fn all() -> &'static [FieldDoc] {
    DOCS
}

const fn doc(
    path: &'static str,
    description: &'static str,
    examples: &'static [&'static str],
) -> FieldDoc {
    FieldDoc {
        path,
        description,
        examples,
    }
}

// Example values shared by several fields.
const EX_CERT_AND_KEY: &str =
    "crt: LS0tIEVYQU1QTEUgQ0VSVElGSUNBVEUgLS0t\nkey: LS0tIEVYQU1QTEUgS0VZIC0tLQ==";
const EX_RESOURCES: &str =
    "requests:\n    cpu: 1\n    memory: 1Gi\nlimits:\n    cpu: 2\n    memory: 2500Mi";
const EX_RES_REQUESTS: &str = "cpu: 1\nmemory: 1Gi";
const EX_RES_LIMITS: &str = "cpu: 2\nmemory: 2500Mi";
const EX_HOST_PATH: &str = "/var/lib/auth";
const EX_MOUNT_PATH: &str = "/etc/kubernetes/auth";
const EX_SELECTOR_BUS: &str = "busPath: 00:*";
const EX_SELECTOR_MAC: &str = "hardwareAddr: '*:f0:ab'\ndriver: virtio";
const EX_ROUTES: &str = "- network: 0.0.0.0/0
  gateway: 10.5.0.1
- network: 10.2.0.0/16
  gateway: 10.2.0.1";
const EX_VIP: &str = "ip: 172.16.199.55";
const EX_DHCP_OPTIONS: &str = "routeMetric: 1024";
const EX_KMS: &str = "endpoint: https://192.168.88.21:4443";
const EX_LUKS_OPTIONS: &str = "- no_read_workqueue\n- no_write_workqueue";

const EX_MACHINE: &str = "type: controlplane
install:
    disk: /dev/sda
    extraKernelArgs:
        - console=ttyS1
        - panic=10
    image: ghcr.io/siderolabs/installer:latest
    wipe: false";

const EX_KUBELET: &str = "image: ghcr.io/siderolabs/kubelet:v1.30.0
extraArgs:
    feature-gates: ServerSideApply=true";

const EX_EXTRA_MOUNTS: &str = "- destination: /var/lib/example
  type: bind
  source: /var/lib/example
  options:
    - bind
    - rshared
    - rw";

const EX_CREDENTIAL_PROVIDER: &str = "apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
    - apiVersion: credentialprovider.kubelet.k8s.io/v1
      defaultCacheDuration: 12h
      matchImages:
        - '*.dkr.ecr.*.amazonaws.com'
        - '*.dkr.ecr.*.amazonaws.com.cn'
        - '*.dkr.ecr-fips.*.amazonaws.com'
        - '*.dkr.ecr.us-iso-east-1.c2s.ic.gov'
        - '*.dkr.ecr.us-isob-east-1.sc2s.sgov.gov'
      name: ecr-credential-provider";

const EX_NODE_IP: &str = "validSubnets:
    - 10.0.0.0/8
    - '!10.0.0.3/32'
    - fdc7::/16";

const EX_PODS: &str = "- apiVersion: v1
  kind: pod
  metadata:
    name: nginx
  spec:
    containers:
        - image: nginx
          name: nginx";

const EX_INTERFACES: &str = "- interface: enp0s1
  addresses:
    - 192.168.2.0/24
  routes:
    - network: 0.0.0.0/0
      gateway: 192.168.2.1
      metric: 1024
  mtu: 1500";

const EX_NETWORK: &str = "hostname: worker-1
interfaces:
    - interface: enp0s1
      addresses:
        - 192.168.2.0/24
      routes:
        - network: 0.0.0.0/0
          gateway: 192.168.2.1
          metric: 1024
      mtu: 1500
nameservers:
    - 9.8.7.6
    - 8.7.6.5";

const EX_BOND: &str = "interfaces:
    - enp2s0
    - enp2s1
mode: 802.3ad
lacpRate: fast";

const EX_BOND_SELECTORS: &str = "- busPath: 00:*
- hardwareAddr: '*:f0:ab'
  driver: virtio";

const EX_BRIDGE: &str = "interfaces:
    - enxda4042ca9a51
    - enxae2a6774c259
stp:
    enabled: true";

const EX_WIREGUARD_SERVER: &str = "privateKey: ABCDEF...
listenPort: 51111
peers:
    - publicKey: ABCDEF...
      endpoint: 192.168.1.3
      allowedIPs:
        - 192.168.1.0/24";

const EX_WIREGUARD_PEER: &str = "privateKey: ABCDEF...
peers:
    - publicKey: ABCDEF...
      endpoint: 192.168.1.2:51822
      persistentKeepaliveInterval: 10s
      allowedIPs:
        - 192.168.1.0/24";

const EX_EXTRA_HOSTS: &str = "- ip: 192.168.1.100
  aliases:
    - example
    - example.domain.tld";

const EX_DISKS: &str = "- device: /dev/sdb
  partitions:
    - mountpoint: /var/mnt/extra";

const EX_INSTALL: &str = "disk: /dev/sda
extraKernelArgs:
    - console=ttyS1
    - panic=10
image: ghcr.io/siderolabs/installer:latest
wipe: false";

const EX_FILES: &str = "- content: '...'
  permissions: 0o666
  path: /tmp/file.txt
  op: append";

const EX_ENV_1: &str = "GRPC_GO_LOG_SEVERITY_LEVEL: info
GRPC_GO_LOG_VERBOSITY_LEVEL: \"99\"
https_proxy: http://SERVER:PORT/";
const EX_ENV_2: &str = "GRPC_GO_LOG_SEVERITY_LEVEL: error
https_proxy: https://USERNAME:PASSWORD@SERVER:PORT/";
const EX_ENV_3: &str = "https_proxy: http://DOMAIN\\USERNAME:PASSWORD@SERVER:PORT/";

const EX_TIME: &str = "disabled: false
servers:
    - time.cloudflare.com
bootTimeout: 2m0s";

const EX_SYSCTLS: &str = "kernel.domainname: talos.dev
net.ipv4.ip_forward: \"0\"
net/ipv6/conf/eth0.100/disable_ipv6: \"1\"";

const EX_REGISTRIES: &str = "mirrors:
    docker.io:
        endpoints:
            - https://registry.local
config:
    registry.local:
        tls:
            clientIdentity:
                crt: LS0tIEVYQU1QTEUgQ0VSVElGSUNBVEUgLS0t
                key: LS0tIEVYQU1QTEUgS0VZIC0tLQ==
        auth:
            username: username
            password: password";

const EX_MIRRORS: &str = "ghcr.io:
    endpoints:
        - https://registry.insecure
        - https://ghcr.io/v2/";

const EX_REGISTRY_CONFIG: &str = "registry.insecure:
    tls:
        insecureSkipVerify: true";

const EX_REGISTRY_TLS_IDENTITY: &str = "clientIdentity:
    crt: LS0tIEVYQU1QTEUgQ0VSVElGSUNBVEUgLS0t
    key: LS0tIEVYQU1QTEUgS0VZIC0tLQ==";

const EX_DISK_ENCRYPTION: &str = "ephemeral:
    provider: luks2
    keys:
        - nodeID: {}
          slot: 0";

const EX_TALOS_API_ACCESS: &str = "enabled: true
allowedRoles:
    - os:reader
allowedKubernetesNamespaces:
    - kube-system";

const EX_UDEV: &str = "rules:
    - SUBSYSTEM==\"drm\", KERNEL==\"renderD*\", GROUP=\"44\", MODE=\"0660\"";

const EX_LOGGING: &str = "destinations:
    - endpoint: tcp://1.2.3.4:12345
      format: json_lines";

const EX_KERNEL: &str = "modules:
    - name: brtfs";

const EX_SECCOMP: &str = "- name: audit.json
  value:
    defaultAction: SCMP_ACT_LOG";

const EX_CLUSTER: &str = "controlPlane:
    endpoint: https://1.2.3.4
    localAPIServerPort: 443
clusterName: talos.local
network:
    cni:
        name: flannel
    dnsDomain: cluster.local
    podSubnets:
        - 10.244.0.0/16
    serviceSubnets:
        - 10.96.0.0/12";

const EX_CLUSTER_NETWORK: &str = "cni:
    name: flannel
dnsDomain: cluster.local
podSubnets:
    - 10.244.0.0/16
serviceSubnets:
    - 10.96.0.0/12";

const EX_CUSTOM_CNI: &str = "name: custom
urls:
    - https://docs.projectcalico.org/archive/v3.20/manifests/canal.yaml";

const EX_API_SERVER: &str = "image: registry.k8s.io/kube-apiserver:v1.30.0
extraArgs:
    feature-gates: ServerSideApply=true
    http2-max-streams-per-connection: \"32\"
certSANs:
    - 1.2.3.4
    - 4.5.6.7";

const EX_ADMISSION_CONTROL: &str = "- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1alpha1
    defaults:
        audit: restricted
        audit-version: latest
        enforce: baseline
        enforce-version: latest
        warn: restricted
        warn-version: latest
    exemptions:
        namespaces:
            - kube-system
        runtimeClasses: []
        usernames: []
    kind: PodSecurityConfiguration";

const EX_AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
rules:
    - level: Metadata";

const EX_CONTROLLER_MANAGER: &str = "image: registry.k8s.io/kube-controller-manager:v1.30.0
extraArgs:
    feature-gates: ServerSideApply=true";

const EX_PROXY: &str = "image: registry.k8s.io/kube-proxy:v1.30.0
mode: ipvs
extraArgs:
    proxy-mode: iptables";

const EX_SCHEDULER: &str = "image: registry.k8s.io/kube-scheduler:v1.30.0
extraArgs:
    feature-gates: AllBeta=true";

const EX_DISCOVERY: &str = "enabled: true
registries:
    kubernetes: {}
    service:
        endpoint: https://discovery.talos.dev/";

const EX_ETCD: &str = "image: gcr.io/etcd-development/etcd:v3.5.13
ca:
    crt: LS0tIEVYQU1QTEUgQ0VSVElGSUNBVEUgLS0t
    key: LS0tIEVYQU1QTEUgS0VZIC0tLQ==
extraArgs:
    election-timeout: \"5000\"";

const EX_CLOUD_PROVIDER_MANIFESTS: &str = "- https://raw.githubusercontent.com/kubernetes/cloud-provider-aws/v1.20.0-alpha.0/manifests/rbac.yaml
- https://raw.githubusercontent.com/kubernetes/cloud-provider-aws/v1.20.0-alpha.0/manifests/aws-cloud-controller-manager-daemonset.yaml";

const EX_EXTERNAL_CLOUD_PROVIDER: &str = "enabled: true
manifests:
    - https://raw.githubusercontent.com/kubernetes/cloud-provider-aws/v1.20.0-alpha.0/manifests/rbac.yaml
    - https://raw.githubusercontent.com/kubernetes/cloud-provider-aws/v1.20.0-alpha.0/manifests/aws-cloud-controller-manager-daemonset.yaml";

const EX_INLINE_MANIFESTS: &str = "- name: namespace-ci
  contents: |-
    apiVersion: v1
    kind: Namespace
    metadata:
        name: ci";

const EX_INLINE_MANIFEST_CONTENTS: &str = "|-
    apiVersion: v1
    kind: Namespace
    metadata:
        name: ci";

const EX_SIDEROLINK: &str = "apiVersion: v1alpha1
kind: SideroLinkConfig
apiUrl: https://siderolink.api/join?token=secret";

const EX_EXTENSION_SERVICE: &str = "apiVersion: v1alpha1
kind: ExtensionServiceConfig
name: nut-client
configFiles:
    - content: MONITOR ${upsmonHost} 1 remote username password
      mountPath: /usr/local/etc/nut/upsmon.conf
environment:
    - NUT_UPS=upsname";

const EX_WATCHDOG: &str = "apiVersion: v1alpha1
kind: WatchdogTimerConfig
device: /dev/watchdog0
timeout: 2m0s";

const EX_KMSG_LOG: &str = "apiVersion: v1alpha1
kind: KmsgLogConfig
name: remote-log
url: tcp://192.168.3.7:3478/";

const EX_EVENT_SINK: &str = "apiVersion: v1alpha1
kind: EventSinkConfig
endpoint: 192.168.10.3:3247";

const EX_DEFAULT_ACTION: &str = "apiVersion: v1alpha1
kind: NetworkDefaultActionConfig
ingress: accept";

const EX_RULE: &str = "apiVersion: v1alpha1
kind: NetworkRuleConfig
name: ingress-apid
portSelector:
    ports:
        - 50000
    protocol: tcp
ingress:
    - subnet: 192.168.0.0/16";

// Descriptions shared by repeated sub-structures.
const D_SEL_BUS: &str = "PCI or USB bus path prefix of the device; wildcards are allowed.";
const D_SEL_MAC: &str = "MAC address of the device; wildcards are allowed.";
const D_SEL_PCI: &str = "PCI vendor and product ID of the device; wildcards are allowed.";
const D_SEL_DRIVER: &str = "Kernel driver bound to the device; wildcards are allowed.";
const D_SEL_PHYSICAL: &str = "Match only physical devices, skipping virtual ones.";
const D_ROUTE_NETWORK: &str = "Destination prefix of the route.";
const D_ROUTE_GATEWAY: &str = "Next-hop address; when empty the route is link-scoped.";
const D_ROUTE_SOURCE: &str = "Preferred source address for traffic using this route (optional).";
const D_ROUTE_METRIC: &str = "Metric (priority) of the route (optional).";
const D_ROUTE_MTU: &str = "MTU used for this route (optional).";
const D_VIP: &str = "Shared virtual IP that moves between control plane nodes over this link.";
const D_VIP_IP: &str = "The shared IP address.";
const D_VIP_EQUINIX: &str = "Move the shared IP with the Equinix Metal API.";
const D_VIP_EQUINIX_TOKEN: &str = "API token for Equinix Metal.";
const D_VIP_HCLOUD: &str = "Move the shared IP with the Hetzner Cloud API.";
const D_VIP_HCLOUD_TOKEN: &str = "API token for Hetzner Cloud.";
const D_DHCP_OPTIONS: &str = "DHCP client options; used only when dhcp is true.";
const D_DHCP_METRIC: &str = "Metric given to every route learned over DHCP.";
const D_DHCP_V4: &str = "Run DHCPv4 on the link (on by default).";
const D_DHCP_V6: &str = "Run DHCPv6 on the link (off by default).";
const D_DHCP_DUID: &str = "DHCPv6 client DUID, as a hex string.";
const D_ENC_PROVIDER: &str = "Encryption provider; luks2 is the supported one.";
const D_ENC_KEYS: &str = "Keys able to unlock the partition, each in its own key slot.";
const D_ENC_STATIC: &str = "Key given as a fixed passphrase in this config.";
const D_ENC_PASSPHRASE: &str = "The passphrase itself.";
const D_ENC_NODE_ID: &str = "Key derived from the node UUID and the partition label.";
const D_ENC_KMS: &str = "Key sealed and unsealed by a KMS server.";
const D_ENC_KMS_ENDPOINT: &str = "URL of the KMS server that seals and unseals the key.";
const D_ENC_SLOT: &str = "LUKS2 key slot this key occupies.";
const D_ENC_TPM: &str = "Key sealed by the node's TPM.";
const D_ENC_CIPHER: &str =
    "Cipher for the encryption, e.g. aes-xts-plain64; depends on the provider.";
const D_ENC_KEY_SIZE: &str = "Length of the encryption key, in bits.";
const D_ENC_BLOCK_SIZE: &str = "Sector size of the encrypted device, in bytes.";
const D_ENC_OPTIONS: &str =
    "Extra LUKS2 --perf flags: no_read_workqueue, no_write_workqueue, same_cpu_crypt.";
const D_RES_REQUESTS: &str =
    "CPU and memory reserved for the container (Kubernetes resource requests).";
const D_RES_LIMITS: &str =
    "Most CPU and memory the container may use (Kubernetes resource limits).";
const D_VOL_HOST: &str = "Directory on the host to mount.";
const D_VOL_MOUNT: &str = "Where the directory appears inside the container.";
const D_VOL_RO: &str = "Make the mount read-only inside the container.";
const D_CA_CRT: &str = "Base64-encoded PEM certificate of the CA.";
const D_CA_KEY: &str = "Base64-encoded PEM private key of the CA.";
const D_ACCEPTED_CRT: &str = "Base64-encoded PEM certificate of an extra trusted CA.";
const D_ID_MAP_CONTAINER: &str = "First ID of the range as seen inside the container.";
const D_ID_MAP_HOST: &str = "First ID of the range on the host, mapped to containerID.";
const D_ID_MAP_SIZE: &str = "How many consecutive IDs the mapping covers.";
const D_API_VERSION: &str = "Version of the document schema; v1alpha1.";
const D_KIND: &str = "Kind of the document.";

static DOCS: &[FieldDoc] = &[
    // ---- v1alpha1 ----
    doc("version", "Schema version of this document; always v1alpha1.", &[]),
    doc(
        "debug",
        "Copy the logs of all system containers to the console; only for consoles that keep up.",
        &[],
    ),
    doc(
        "persist",
        "Deprecated and ignored; still accepted so that older configs load.",
        &[],
    ),
    doc("machine", "Settings that apply to this machine only.", &[EX_MACHINE]),
    doc(
        "machine.type",
        "Node role: controlplane (runs etcd and the Kubernetes control plane) or worker.",
        &[],
    ),
    doc(
        "machine.token",
        "Token the node presents to trustd to get its certificates from the machine PKI.",
        &["328hom.uqjzh6jnn2eie9oi"],
    ),
    doc(
        "machine.ca",
        "Root CA of the Talos API, as base64-encoded PEM crt and key.",
        &[EX_CERT_AND_KEY],
    ),
    doc("machine.ca.crt", D_CA_CRT, &[]),
    doc(
        "machine.ca.key",
        "Base64-encoded PEM private key of the CA (left empty on workers).",
        &[],
    ),
    doc(
        "machine.acceptedCAs",
        "Further CA certificates whose client certificates are trusted next to ca.",
        &[],
    ),
    doc("machine.acceptedCAs[].crt", D_ACCEPTED_CRT, &[]),
    doc(
        "machine.certSANs",
        "Extra subject alternative names for the node's API certificate; node IPs are added anyway.",
        &["- 10.0.0.10\n- 172.16.0.10\n- 192.168.0.10"],
    ),
    doc(
        "machine.controlPlane",
        "Per-node switches for control plane components.",
        &["controllerManager:\n    disabled: false\nscheduler:\n    disabled: true"],
    ),
    doc(
        "machine.controlPlane.controllerManager",
        "kube-controller-manager settings for this node.",
        &[],
    ),
    doc(
        "machine.controlPlane.controllerManager.disabled",
        "Skip the kube-controller-manager static pod on this node.",
        &[],
    ),
    doc(
        "machine.controlPlane.scheduler",
        "kube-scheduler settings for this node.",
        &[],
    ),
    doc(
        "machine.controlPlane.scheduler.disabled",
        "Skip the kube-scheduler static pod on this node.",
        &[],
    ),
    doc("machine.kubelet", "Options for the kubelet on this node.", &[EX_KUBELET]),
    doc(
        "machine.kubelet.image",
        "Kubelet container image to run instead of the default one.",
        &["ghcr.io/siderolabs/kubelet:v1.30.0"],
    ),
    doc(
        "machine.kubelet.clusterDNS",
        "DNS server IPs the kubelet gives to pods, replacing the computed ones.",
        &["- 10.96.0.10\n- 169.254.2.53"],
    ),
    doc(
        "machine.kubelet.extraArgs",
        "Additional kubelet command-line flags, as flag name to value.",
        &["feature-gates: ServerSideApply=true"],
    ),
    doc(
        "machine.kubelet.extraMounts",
        "Additional mounts for the kubelet container; options must contain bind or rbind.",
        &[EX_EXTRA_MOUNTS],
    ),
    doc(
        "machine.kubelet.extraMounts[].destination",
        "Absolute path inside the kubelet container where the mount appears.",
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].type",
        "Mount type, e.g. bind.",
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].source",
        "Host path (or device) that is mounted.",
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].options",
        "Mount options, written as in fstab.",
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].uidMappings",
        "User ID mappings that change file owners on the mount without chown (filesystem must support it).",
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].uidMappings[].containerID",
        D_ID_MAP_CONTAINER,
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].uidMappings[].hostID",
        D_ID_MAP_HOST,
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].uidMappings[].size",
        D_ID_MAP_SIZE,
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].gidMappings",
        "Group ID mappings for the mount, the group counterpart of uidMappings.",
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].gidMappings[].containerID",
        D_ID_MAP_CONTAINER,
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].gidMappings[].hostID",
        D_ID_MAP_HOST,
        &[],
    ),
    doc(
        "machine.kubelet.extraMounts[].gidMappings[].size",
        D_ID_MAP_SIZE,
        &[],
    ),
    doc(
        "machine.kubelet.extraConfig",
        "Overrides merged into the KubeletConfiguration; auth, cgroup and port settings stay fixed.",
        &["serverTLSBootstrap: true"],
    ),
    doc(
        "machine.kubelet.credentialProviderConfig",
        "CredentialProviderConfig telling the kubelet which image credential plugins to run.",
        &[EX_CREDENTIAL_PROVIDER],
    ),
    doc(
        "machine.kubelet.defaultRuntimeSeccompProfileEnabled",
        "Apply the container runtime's default seccomp profile to every container.",
        &[],
    ),
    doc(
        "machine.kubelet.registerWithFQDN",
        "Register the node under its fully qualified domain name (AWS needs this).",
        &[],
    ),
    doc(
        "machine.kubelet.nodeIP",
        "How the kubelet chooses its --node-ip when the node has several addresses.",
        &[EX_NODE_IP],
    ),
    doc(
        "machine.kubelet.nodeIP.validSubnets",
        "Subnets to take the node IP from, one per IP family; !subnet entries, listed last, exclude.",
        &[],
    ),
    doc(
        "machine.kubelet.skipNodeRegistration",
        "Run the kubelet standalone without registering the node; only static pods run.",
        &[],
    ),
    doc(
        "machine.kubelet.disableManifestsDirectory",
        "Stop the kubelet loading static pods from /etc/kubernetes/manifests (use machine.pods).",
        &[],
    ),
    doc(
        "machine.pods",
        "Static pods started by the kubelet without the API server; Talos does not check them.",
        &[EX_PODS],
    ),
    doc("machine.network", "Network settings of this machine.", &[EX_NETWORK]),
    doc(
        "machine.network.hostname",
        "Hostname to set statically.",
        &["worker-1"],
    ),
    doc(
        "machine.network.interfaces",
        "Per-link network settings; links not listed here try DHCP by default.",
        &[EX_INTERFACES],
    ),
    doc(
        "machine.network.interfaces[].interface",
        "Link name, e.g. eth0; cannot be combined with deviceSelector.",
        &["enp0s3"],
    ),
    doc(
        "machine.network.interfaces[].deviceSelector",
        "Pick the link by hardware attributes (wildcards allowed) instead of by name.",
        &[EX_SELECTOR_BUS, EX_SELECTOR_MAC],
    ),
    doc(
        "machine.network.interfaces[].deviceSelector.busPath",
        D_SEL_BUS,
        &[],
    ),
    doc(
        "machine.network.interfaces[].deviceSelector.hardwareAddr",
        D_SEL_MAC,
        &[],
    ),
    doc(
        "machine.network.interfaces[].deviceSelector.pciID",
        D_SEL_PCI,
        &[],
    ),
    doc(
        "machine.network.interfaces[].deviceSelector.driver",
        D_SEL_DRIVER,
        &[],
    ),
    doc(
        "machine.network.interfaces[].deviceSelector.physical",
        D_SEL_PHYSICAL,
        &[],
    ),
    doc(
        "machine.network.interfaces[].addresses",
        "Static addresses in CIDR form; a bare IP gets a full-length prefix.",
        &["- 10.5.0.0/16\n- 192.168.3.7"],
    ),
    doc(
        "machine.network.interfaces[].cidr",
        "Deprecated: use addresses instead.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].routes",
        "Static routes on this link, added to any routes learned over DHCP.",
        &[EX_ROUTES],
    ),
    doc(
        "machine.network.interfaces[].routes[].network",
        D_ROUTE_NETWORK,
        &[],
    ),
    doc(
        "machine.network.interfaces[].routes[].gateway",
        D_ROUTE_GATEWAY,
        &[],
    ),
    doc(
        "machine.network.interfaces[].routes[].source",
        D_ROUTE_SOURCE,
        &[],
    ),
    doc(
        "machine.network.interfaces[].routes[].metric",
        D_ROUTE_METRIC,
        &[],
    ),
    doc("machine.network.interfaces[].routes[].mtu", D_ROUTE_MTU, &[]),
    doc(
        "machine.network.interfaces[].bond",
        "Turn this link into a bond and set its bonding options.",
        &[EX_BOND],
    ),
    doc(
        "machine.network.interfaces[].bond.interfaces",
        "Names of the links that join the bond.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.deviceSelectors",
        "Pick the bond members by hardware attributes instead of by name (not with interfaces).",
        &[EX_BOND_SELECTORS],
    ),
    doc(
        "machine.network.interfaces[].bond.deviceSelectors[].busPath",
        D_SEL_BUS,
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.deviceSelectors[].hardwareAddr",
        D_SEL_MAC,
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.deviceSelectors[].pciID",
        D_SEL_PCI,
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.deviceSelectors[].driver",
        D_SEL_DRIVER,
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.deviceSelectors[].physical",
        D_SEL_PHYSICAL,
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.arpIPTarget",
        "Kernel bonding arp_ip_target: addresses probed by ARP link monitoring.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.mode",
        "Kernel bonding mode, e.g. balance-rr, active-backup or 802.3ad.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.xmitHashPolicy",
        "Kernel bonding xmit_hash_policy: how flows are spread over members, e.g. layer3+4.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.lacpRate",
        "Kernel bonding lacp_rate for 802.3ad: slow or fast.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.adActorSystem",
        "Kernel bonding ad_actor_system: MAC address sent in 802.3ad LACPDUs.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.arpValidate",
        "Kernel bonding arp_validate: whether and how ARP probes and replies are checked.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.arpAllTargets",
        "Kernel bonding arp_all_targets: a member is up if any or all ARP targets answer.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.primary",
        "Kernel bonding primary: the member preferred as the active one.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.primaryReselect",
        "Kernel bonding primary_reselect: when the primary takes over again (always, better, failure).",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.failOverMac",
        "Kernel bonding fail_over_mac: how MAC addresses are handled on active-backup failover.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.adSelect",
        "Kernel bonding ad_select: 802.3ad aggregator selection (stable, bandwidth or count).",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.miimon",
        "Kernel bonding miimon: MII link check interval in milliseconds.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.updelay",
        "Kernel bonding updelay: milliseconds before a member whose link came up is used.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.downdelay",
        "Kernel bonding downdelay: milliseconds before a member whose link went down is dropped.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.arpInterval",
        "Kernel bonding arp_interval: ARP link check interval in milliseconds.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.resendIgmp",
        "Kernel bonding resend_igmp: IGMP membership reports sent after a failover.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.minLinks",
        "Kernel bonding min_links: members that must be up for the bond to have carrier.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.lpInterval",
        "Kernel bonding lp_interval: seconds between learning packets sent to the peer switch.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.packetsPerSlave",
        "Kernel bonding packets_per_slave: packets sent on one member before the next (balance-rr).",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.numPeerNotif",
        "Kernel bonding num_grat_arp: peer notifications sent after a failover.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.tlbDynamicLb",
        "Kernel bonding tlb_dynamic_lb: dynamic flow rebalancing in balance-tlb mode (0 or 1).",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.allSlavesActive",
        "Kernel bonding all_slaves_active: also deliver frames received on inactive members (0 or 1).",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.useCarrier",
        "Kernel bonding use_carrier: let miimon trust the driver's carrier state.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.adActorSysPrio",
        "Kernel bonding ad_actor_sys_prio: system priority sent in 802.3ad LACPDUs.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.adUserPortKey",
        "Kernel bonding ad_user_port_key: user-defined bits of the 802.3ad port key.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bond.peerNotifyDelay",
        "Kernel bonding peer_notif_delay: milliseconds between peer notifications after a failover.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bridge",
        "Turn this link into a bridge over other links.",
        &[EX_BRIDGE],
    ),
    doc(
        "machine.network.interfaces[].bridge.interfaces",
        "Names of the links attached to the bridge.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bridge.stp",
        "Spanning Tree Protocol settings of the bridge.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].bridge.stp.enabled",
        "Run the Spanning Tree Protocol on the bridge.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans",
        "VLAN links created on top of this link.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].addresses",
        "Static addresses of the VLAN link, in CIDR form or as bare IPs.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].cidr",
        "Deprecated: use addresses instead.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].routes",
        "Static routes on the VLAN link.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].routes[].network",
        D_ROUTE_NETWORK,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].routes[].gateway",
        D_ROUTE_GATEWAY,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].routes[].source",
        D_ROUTE_SOURCE,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].routes[].metric",
        D_ROUTE_METRIC,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].routes[].mtu",
        D_ROUTE_MTU,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].dhcp",
        "Configure the VLAN link over DHCP.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].vlanId",
        "VLAN ID (1 to 4094).",
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].mtu",
        "MTU of the VLAN link.",
        &[],
    ),
    doc("machine.network.interfaces[].vlans[].vip", D_VIP, &[]),
    doc("machine.network.interfaces[].vlans[].vip.ip", D_VIP_IP, &[]),
    doc(
        "machine.network.interfaces[].vlans[].vip.equinixMetal",
        D_VIP_EQUINIX,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].vip.equinixMetal.apiToken",
        D_VIP_EQUINIX_TOKEN,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].vip.hcloud",
        D_VIP_HCLOUD,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].vip.hcloud.apiToken",
        D_VIP_HCLOUD_TOKEN,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].dhcpOptions",
        D_DHCP_OPTIONS,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].dhcpOptions.routeMetric",
        D_DHCP_METRIC,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].dhcpOptions.ipv4",
        D_DHCP_V4,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].dhcpOptions.ipv6",
        D_DHCP_V6,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vlans[].dhcpOptions.duidv6",
        D_DHCP_DUID,
        &[],
    ),
    doc(
        "machine.network.interfaces[].mtu",
        "MTU of the link; takes precedence over an MTU received from DHCP.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].dhcp",
        "Configure the link over DHCP, taking routes, DNS servers, search domains and hostname from it.",
        &["true"],
    ),
    doc(
        "machine.network.interfaces[].ignore",
        "Leave this link alone: Talos does not configure it.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].dummy",
        "Create this link as a virtual dummy interface.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].dhcpOptions",
        D_DHCP_OPTIONS,
        &[EX_DHCP_OPTIONS],
    ),
    doc(
        "machine.network.interfaces[].dhcpOptions.routeMetric",
        D_DHCP_METRIC,
        &[],
    ),
    doc(
        "machine.network.interfaces[].dhcpOptions.ipv4",
        D_DHCP_V4,
        &[],
    ),
    doc(
        "machine.network.interfaces[].dhcpOptions.ipv6",
        D_DHCP_V6,
        &[],
    ),
    doc(
        "machine.network.interfaces[].dhcpOptions.duidv6",
        D_DHCP_DUID,
        &[],
    ),
    doc(
        "machine.network.interfaces[].wireguard",
        "Make this a WireGuard link: private key, listen port and peers.",
        &[EX_WIREGUARD_SERVER, EX_WIREGUARD_PEER],
    ),
    doc(
        "machine.network.interfaces[].wireguard.privateKey",
        "Base64 WireGuard private key of this link, as printed by wg genkey.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].wireguard.listenPort",
        "UDP port WireGuard listens on.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].wireguard.firewallMark",
        "Firewall mark (fwmark) put on packets the link sends.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].wireguard.peers",
        "WireGuard peers of this link.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].wireguard.peers[].publicKey",
        "Base64 public key of the peer (wg pubkey derives it from the private key).",
        &[],
    ),
    doc(
        "machine.network.interfaces[].wireguard.peers[].endpoint",
        "Address (host:port) where the peer is reached.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].wireguard.peers[].persistentKeepaliveInterval",
        "How often a keepalive is sent to the peer, as a Go duration such as 25s.",
        &[],
    ),
    doc(
        "machine.network.interfaces[].wireguard.peers[].allowedIPs",
        "Prefixes (CIDR) routed to this peer and accepted from it.",
        &[],
    ),
    doc("machine.network.interfaces[].vip", D_VIP, &[EX_VIP]),
    doc("machine.network.interfaces[].vip.ip", D_VIP_IP, &[]),
    doc(
        "machine.network.interfaces[].vip.equinixMetal",
        D_VIP_EQUINIX,
        &[],
    ),
    doc(
        "machine.network.interfaces[].vip.equinixMetal.apiToken",
        D_VIP_EQUINIX_TOKEN,
        &[],
    ),
    doc("machine.network.interfaces[].vip.hcloud", D_VIP_HCLOUD, &[]),
    doc(
        "machine.network.interfaces[].vip.hcloud.apiToken",
        D_VIP_HCLOUD_TOKEN,
        &[],
    ),
    doc(
        "machine.network.nameservers",
        "DNS servers to use instead of the defaults 1.1.1.1 and 8.8.8.8.",
        &["- 8.8.8.8\n- 1.1.1.1"],
    ),
    doc(
        "machine.network.extraHostEntries",
        "Additional entries for /etc/hosts.",
        &[EX_EXTRA_HOSTS],
    ),
    doc(
        "machine.network.extraHostEntries[].ip",
        "IP address of the entry.",
        &[],
    ),
    doc(
        "machine.network.extraHostEntries[].aliases",
        "Host names that resolve to this IP.",
        &[],
    ),
    doc(
        "machine.network.kubespan",
        "KubeSpan: a WireGuard mesh between the nodes of the cluster.",
        &["enabled: true"],
    ),
    doc(
        "machine.network.kubespan.enabled",
        "Turn KubeSpan on; cluster discovery (cluster.discovery.enabled) must be on too.",
        &[],
    ),
    doc(
        "machine.network.kubespan.advertiseKubernetesNetworks",
        "Also carry pod traffic over KubeSpan by announcing the node's pod CIDRs, instead of the CNI.",
        &[],
    ),
    doc(
        "machine.network.kubespan.allowDownPeerBypass",
        "Send traffic to a peer directly while its KubeSpan tunnel is down, instead of dropping it.",
        &[],
    ),
    doc(
        "machine.network.kubespan.harvestExtraEndpoints",
        "Collect and share extra peer endpoints seen by WireGuard; avoid with more than about 50 peers.",
        &[],
    ),
    doc(
        "machine.network.kubespan.mtu",
        "MTU of the KubeSpan link (1420 by default).",
        &[],
    ),
    doc(
        "machine.network.kubespan.filters",
        "Optional filters, local to this node, on what KubeSpan advertises.",
        &[],
    ),
    doc(
        "machine.network.kubespan.filters.endpoints",
        "Which node addresses are offered as KubeSpan endpoints; !prefix excludes (default: all).",
        &["- 0.0.0.0/0\n- '!192.168.0.0/16'\n- ::/0"],
    ),
    doc(
        "machine.network.disableSearchDomain",
        "Do not put a search domain derived from the hostname into /etc/resolv.conf.",
        &[],
    ),
    doc(
        "machine.disks",
        "Extra disks to partition, format with XFS and mount under /var (done once, if no XFS is found).",
        &[EX_DISKS],
    ),
    doc("machine.disks[].device", "Block device to use.", &[]),
    doc(
        "machine.disks[].partitions",
        "Partitions to make on the disk, in order.",
        &[],
    ),
    doc(
        "machine.disks[].partitions[].size",
        "Partition size, in bytes or human units like 100 MB; omitted means the rest of the disk.",
        &["100 MB", "1073741824"],
    ),
    doc(
        "machine.disks[].partitions[].mountpoint",
        "Where the partition is mounted; must be under /var.",
        &[],
    ),
    doc(
        "machine.install",
        "Installation settings; used only when installing from ISO or PXE, not by pre-installed images.",
        &[EX_INSTALL],
    ),
    doc(
        "machine.install.disk",
        "Disk to install Talos on.",
        &["/dev/sda", "/dev/nvme0"],
    ),
    doc(
        "machine.install.diskSelector",
        "Choose the install disk by attributes such as model, size or serial; wins over disk.",
        &["size: '>= 1TB'\nmodel: WDC*"],
    ),
    doc(
        "machine.install.diskSelector.size",
        "Disk size to match, optionally with a comparison operator (>=, <=, >, <, ==).",
        &["4GB", "'> 1TB'", "<= 2TB"],
    ),
    doc(
        "machine.install.diskSelector.name",
        "Disk name to match, from /sys/block/<dev>/device/name.",
        &[],
    ),
    doc(
        "machine.install.diskSelector.model",
        "Disk model to match, from /sys/block/<dev>/device/model.",
        &[],
    ),
    doc(
        "machine.install.diskSelector.serial",
        "Serial number to match, from /sys/block/<dev>/serial.",
        &[],
    ),
    doc(
        "machine.install.diskSelector.modalias",
        "Module alias to match, from /sys/block/<dev>/device/modalias.",
        &[],
    ),
    doc(
        "machine.install.diskSelector.uuid",
        "Disk UUID to match, from /sys/block/<dev>/uuid.",
        &[],
    ),
    doc(
        "machine.install.diskSelector.wwid",
        "World wide identifier to match, from /sys/block/<dev>/wwid.",
        &[],
    ),
    doc(
        "machine.install.diskSelector.type",
        "Disk type to match: ssd, hdd, nvme or sd.",
        &[],
    ),
    doc(
        "machine.install.diskSelector.busPath",
        "Bus path of the disk to match; wildcards are allowed.",
        &[
            "/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0",
            "/pci0000:00/*",
        ],
    ),
    doc(
        "machine.install.extraKernelArgs",
        "Additional kernel arguments; a leading - removes a default one (-console or -console=tty0).",
        &["- talos.platform=metal\n- reboot=k"],
    ),
    doc(
        "machine.install.image",
        "Installer image used to install Talos (see the Talos releases for references).",
        &["ghcr.io/siderolabs/installer:latest"],
    ),
    doc(
        "machine.install.extensions",
        "System extension images installed on top of the base Talos image.",
        &["- image: ghcr.io/siderolabs/gvisor:20220117.0-v1.0.0"],
    ),
    doc(
        "machine.install.extensions[].image",
        "Image reference of the system extension.",
        &[],
    ),
    doc(
        "machine.install.bootloader",
        "Deprecated and ignored; it never had an effect.",
        &[],
    ),
    doc(
        "machine.install.wipe",
        "Wipe the whole install disk before installing.",
        &[],
    ),
    doc(
        "machine.install.legacyBIOSSupport",
        "Mark the MBR partition bootable, for legacy BIOS machines that cannot boot from GPT.",
        &[],
    ),
    doc(
        "machine.files",
        "Files written on the node; op create, overwrite or append; content is plain text.",
        &[EX_FILES],
    ),
    doc("machine.files[].content", "Text written to the file.", &[]),
    doc(
        "machine.files[].permissions",
        "Permission bits of the file, in octal.",
        &[],
    ),
    doc("machine.files[].path", "Absolute path of the file.", &[]),
    doc(
        "machine.files[].op",
        "Write mode: create (path must not exist), overwrite or append (path must exist).",
        &[],
    ),
    doc(
        "machine.env",
        "Environment variables set for PID 1 and every service, e.g. https_proxy or no_proxy.",
        &[EX_ENV_1, EX_ENV_2, EX_ENV_3],
    ),
    doc("machine.time", "Time synchronization settings.", &[EX_TIME]),
    doc(
        "machine.time.disabled",
        "Turn the time sync service off (it runs by default).",
        &[],
    ),
    doc(
        "machine.time.servers",
        "NTP servers to sync with (time.cloudflare.com by default); PTP devices like /dev/ptp0 work too.",
        &[],
    ),
    doc(
        "machine.time.bootTimeout",
        "How long boot waits for the first time sync before going on (default: wait forever).",
        &[],
    ),
    doc(
        "machine.sysctls",
        "Kernel parameters to set, keyed by sysctl name.",
        &[EX_SYSCTLS],
    ),
    doc(
        "machine.sysfs",
        "Values to write under /sys, keyed by the dotted path below /sys.",
        &["devices.system.cpu.cpu0.cpufreq.scaling_governor: performance"],
    ),
    doc(
        "machine.registries",
        "Image registry mirrors plus per-registry TLS and credentials, applied to containerd.",
        &[EX_REGISTRIES],
    ),
    doc(
        "machine.registries.mirrors",
        "Mirrors per registry host (docker.io is the default registry, * is the fallback).",
        &[EX_MIRRORS],
    ),
    doc(
        "machine.registries.mirrors{}.endpoints",
        "Mirror URLs, tried in order; the path defaults to /v2 unless overridePath is set.",
        &[],
    ),
    doc(
        "machine.registries.mirrors{}.overridePath",
        "Use each endpoint path as given, without appending /v2/ (handy for several mirrors on one host).",
        &[],
    ),
    doc(
        "machine.registries.config",
        "TLS and authentication per registry, keyed by host[:port] (no * fallback here).",
        &[EX_REGISTRY_CONFIG],
    ),
    doc(
        "machine.registries.config{}.tls",
        "TLS settings for connecting to the registry.",
        &[EX_REGISTRY_TLS_IDENTITY, "insecureSkipVerify: true"],
    ),
    doc(
        "machine.registries.config{}.tls.clientIdentity",
        "Client certificate and key (base64 PEM) for mutual TLS with the registry.",
        &[EX_CERT_AND_KEY],
    ),
    doc(
        "machine.registries.config{}.tls.clientIdentity.crt",
        "Base64-encoded PEM client certificate.",
        &[],
    ),
    doc(
        "machine.registries.config{}.tls.clientIdentity.key",
        "Base64-encoded PEM client private key.",
        &[],
    ),
    doc(
        "machine.registries.config{}.tls.ca",
        "Base64-encoded PEM CA certificate to trust for this registry.",
        &[],
    ),
    doc(
        "machine.registries.config{}.tls.insecureSkipVerify",
        "Do not verify the registry's TLS certificate (unsafe).",
        &[],
    ),
    doc(
        "machine.registries.config{}.auth",
        "Registry credentials, same fields as in .docker/config.json; changes need a reboot.",
        &["username: username\npassword: password"],
    ),
    doc(
        "machine.registries.config{}.auth.username",
        "User name for the registry.",
        &[],
    ),
    doc(
        "machine.registries.config{}.auth.password",
        "Password for the registry.",
        &[],
    ),
    doc(
        "machine.registries.config{}.auth.auth",
        "Base64 of user:password, as in .docker/config.json.",
        &[],
    ),
    doc(
        "machine.registries.config{}.auth.identityToken",
        "Identity (refresh) token for the registry.",
        &[],
    ),
    doc(
        "machine.systemDiskEncryption",
        "Encryption of the system partitions, set per partition.",
        &[EX_DISK_ENCRYPTION],
    ),
    doc(
        "machine.systemDiskEncryption.state",
        "Encryption of the STATE partition.",
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.state.provider",
        D_ENC_PROVIDER,
        &["luks2"],
    ),
    doc("machine.systemDiskEncryption.state.keys", D_ENC_KEYS, &[]),
    doc(
        "machine.systemDiskEncryption.state.keys[].static",
        D_ENC_STATIC,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.state.keys[].static.passphrase",
        D_ENC_PASSPHRASE,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.state.keys[].nodeID",
        D_ENC_NODE_ID,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.state.keys[].kms",
        D_ENC_KMS,
        &[EX_KMS],
    ),
    doc(
        "machine.systemDiskEncryption.state.keys[].kms.endpoint",
        D_ENC_KMS_ENDPOINT,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.state.keys[].slot",
        D_ENC_SLOT,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.state.keys[].tpm",
        D_ENC_TPM,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.state.cipher",
        D_ENC_CIPHER,
        &["aes-xts-plain64"],
    ),
    doc(
        "machine.systemDiskEncryption.state.keySize",
        D_ENC_KEY_SIZE,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.state.blockSize",
        D_ENC_BLOCK_SIZE,
        &["4096"],
    ),
    doc(
        "machine.systemDiskEncryption.state.options",
        D_ENC_OPTIONS,
        &[EX_LUKS_OPTIONS],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral",
        "Encryption of the EPHEMERAL partition.",
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.provider",
        D_ENC_PROVIDER,
        &["luks2"],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keys",
        D_ENC_KEYS,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keys[].static",
        D_ENC_STATIC,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keys[].static.passphrase",
        D_ENC_PASSPHRASE,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keys[].nodeID",
        D_ENC_NODE_ID,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keys[].kms",
        D_ENC_KMS,
        &[EX_KMS],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keys[].kms.endpoint",
        D_ENC_KMS_ENDPOINT,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keys[].slot",
        D_ENC_SLOT,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keys[].tpm",
        D_ENC_TPM,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.cipher",
        D_ENC_CIPHER,
        &["aes-xts-plain64"],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.keySize",
        D_ENC_KEY_SIZE,
        &[],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.blockSize",
        D_ENC_BLOCK_SIZE,
        &["4096"],
    ),
    doc(
        "machine.systemDiskEncryption.ephemeral.options",
        D_ENC_OPTIONS,
        &[EX_LUKS_OPTIONS],
    ),
    doc(
        "machine.features",
        "Optional Talos features that can be turned on or off.",
        &["rbac: true"],
    ),
    doc(
        "machine.features.rbac",
        "Enforce role-based access control on the Talos API.",
        &[],
    ),
    doc(
        "machine.features.stableHostname",
        "Give the node a stable default hostname derived from its identity.",
        &[],
    ),
    doc(
        "machine.features.kubernetesTalosAPIAccess",
        "Let pods in Kubernetes reach the Talos API (off unless configured here).",
        &[EX_TALOS_API_ACCESS],
    ),
    doc(
        "machine.features.kubernetesTalosAPIAccess.enabled",
        "Turn on Talos API access from pods.",
        &[],
    ),
    doc(
        "machine.features.kubernetesTalosAPIAccess.allowedRoles",
        "Talos API roles that pods may be granted; an empty list grants none.",
        &[],
    ),
    doc(
        "machine.features.kubernetesTalosAPIAccess.allowedKubernetesNamespaces",
        "Namespaces whose pods may access the Talos API.",
        &[],
    ),
    doc(
        "machine.features.apidCheckExtKeyUsage",
        "Make apid reject client certificates whose extended key usage does not allow client auth.",
        &[],
    ),
    doc(
        "machine.features.diskQuotaSupport",
        "Turn on XFS project quotas for EPHEMERAL and user disks so the kubelet can track usage.",
        &[],
    ),
    doc(
        "machine.features.kubePrism",
        "KubePrism: a load balancer on the node that spreads requests over all API servers.",
        &[],
    ),
    doc(
        "machine.features.kubePrism.enabled",
        "Run the KubePrism load balancer.",
        &[],
    ),
    doc(
        "machine.features.kubePrism.port",
        "Local port KubePrism listens on.",
        &[],
    ),
    doc(
        "machine.features.hostDNS",
        "Caching DNS resolver running on the host.",
        &[],
    ),
    doc(
        "machine.features.hostDNS.enabled",
        "Start the caching DNS resolver on the host.",
        &[],
    ),
    doc(
        "machine.features.hostDNS.forwardKubeDNSToHost",
        "Make CoreDNS forward to the host resolver rather than straight to the upstream servers.",
        &[],
    ),
    doc(
        "machine.features.hostDNS.resolveMemberNames",
        "Resolve cluster member and node names with the host resolver (needs discovery).",
        &[],
    ),
    doc("machine.udev", "udev settings.", &[EX_UDEV]),
    doc("machine.udev.rules", "Extra udev rules to install.", &[]),
    doc(
        "machine.logging",
        "Where Talos sends the logs of its services.",
        &[EX_LOGGING],
    ),
    doc(
        "machine.logging.destinations",
        "Log receivers that get a copy of the service logs.",
        &[],
    ),
    doc(
        "machine.logging.destinations[].endpoint",
        "URL of the log receiver, with scheme tcp:// or udp://.",
        &["udp://127.0.0.1:12345", "tcp://1.2.3.4:12345"],
    ),
    doc(
        "machine.logging.destinations[].format",
        "Encoding of the sent messages; json_lines is the only one.",
        &[],
    ),
    doc(
        "machine.logging.destinations[].extraTags",
        "Key/value tags added to every message sent.",
        &[],
    ),
    doc("machine.kernel", "Kernel settings.", &[EX_KERNEL]),
    doc(
        "machine.kernel.modules",
        "Kernel modules loaded at boot, with optional parameters.",
        &[],
    ),
    doc(
        "machine.kernel.modules[].name",
        "Name of the kernel module.",
        &[],
    ),
    doc(
        "machine.kernel.modules[].parameters",
        "Module parameters as name=value; changes take effect after a reboot.",
        &[],
    ),
    doc(
        "machine.seccompProfiles",
        "Seccomp profiles stored on the node for pods to reference.",
        &[EX_SECCOMP],
    ),
    doc(
        "machine.seccompProfiles[].name",
        "File name the profile is stored under.",
        &[],
    ),
    doc(
        "machine.seccompProfiles[].value",
        "The seccomp profile itself.",
        &[],
    ),
    doc(
        "machine.nodeLabels",
        "Labels put on this Kubernetes node; NodeRestriction limits which ones workers may set.",
        &["exampleLabel: exampleLabelValue"],
    ),
    doc(
        "machine.nodeTaints",
        "Taints put on this node as key: value[:effect]; NodeRestriction may forbid them on workers.",
        &["exampleTaint: exampleTaintValue:NoSchedule"],
    ),
    // ---- cluster ----
    doc("cluster", "Settings shared by the whole cluster.", &[EX_CLUSTER]),
    doc(
        "cluster.id",
        "Unique cluster identifier: 32 random bytes, base64-encoded.",
        &[],
    ),
    doc(
        "cluster.secret",
        "Secret shared by the cluster members (32 random bytes, base64); never sent over the network.",
        &[],
    ),
    doc(
        "cluster.controlPlane",
        "How the cluster's control plane is reached.",
        &["endpoint: https://1.2.3.4\nlocalAPIServerPort: 443"],
    ),
    doc(
        "cluster.controlPlane.endpoint",
        "Canonical Kubernetes API URL: https with an IP address or DNS name and optional port.",
        &["https://1.2.3.4:6443", "https://cluster1.internal:6443"],
    ),
    doc(
        "cluster.controlPlane.localAPIServerPort",
        "Port the API server listens on locally, which may differ from the endpoint's (default 6443).",
        &[],
    ),
    doc("cluster.clusterName", "Name of the cluster.", &[]),
    doc(
        "cluster.network",
        "Kubernetes networking: CNI, DNS domain, pod and service subnets.",
        &[EX_CLUSTER_NETWORK],
    ),
    doc(
        "cluster.network.cni",
        "CNI to install: flannel (default, managed by Talos), custom (from urls) or none.",
        &[EX_CUSTOM_CNI],
    ),
    doc(
        "cluster.network.cni.name",
        "Which CNI: flannel, custom or none.",
        &[],
    ),
    doc(
        "cluster.network.cni.urls",
        "Manifest URLs of a custom CNI; must be empty for flannel and none.",
        &[],
    ),
    doc(
        "cluster.network.cni.flannel",
        "Options of the built-in Flannel CNI.",
        &[],
    ),
    doc(
        "cluster.network.cni.flannel.extraArgs",
        "Additional flanneld command-line arguments.",
        &["- --iface-can-reach=192.168.1.1"],
    ),
    doc(
        "cluster.network.dnsDomain",
        "DNS domain of cluster services (cluster.local by default).",
        &["cluster.local"],
    ),
    doc(
        "cluster.network.podSubnets",
        "CIDRs that pod IPs are allocated from.",
        &["- 10.244.0.0/16"],
    ),
    doc(
        "cluster.network.serviceSubnets",
        "CIDRs that service cluster IPs are allocated from.",
        &["- 10.96.0.0/12"],
    ),
    doc(
        "cluster.token",
        "Kubernetes bootstrap token used when nodes join.",
        &["wlzjyw.bei2zfylhs2by0wd"],
    ),
    doc(
        "cluster.aescbcEncryptionSecret",
        "Key for encrypting Kubernetes secrets at rest with AES-CBC.",
        &["z01mye6j16bspJYtTB/5SFX8j7Ph4JXxM2Xuu4vsBPM="],
    ),
    doc(
        "cluster.secretboxEncryptionSecret",
        "Key for encrypting Kubernetes secrets at rest with secretbox (preferred over AES-CBC).",
        &["z01mye6j16bspJYtTB/5SFX8j7Ph4JXxM2Xuu4vsBPM="],
    ),
    doc(
        "cluster.ca",
        "Kubernetes root CA, as base64-encoded PEM crt and key.",
        &[EX_CERT_AND_KEY],
    ),
    doc("cluster.ca.crt", D_CA_CRT, &[]),
    doc(
        "cluster.ca.key",
        "Base64-encoded PEM private key of the CA (left empty on workers).",
        &[],
    ),
    doc(
        "cluster.acceptedCAs",
        "Further Kubernetes CA certificates trusted next to ca.",
        &[],
    ),
    doc("cluster.acceptedCAs[].crt", D_ACCEPTED_CRT, &[]),
    doc(
        "cluster.aggregatorCA",
        "CA for the front-proxy certificates of the API aggregation layer; may be self-signed.",
        &[EX_CERT_AND_KEY],
    ),
    doc("cluster.aggregatorCA.crt", D_CA_CRT, &[]),
    doc("cluster.aggregatorCA.key", D_CA_KEY, &[]),
    doc(
        "cluster.serviceAccount",
        "Private key that signs service account tokens.",
        &["key: LS0tIEVYQU1QTEUgS0VZIC0tLQ=="],
    ),
    doc(
        "cluster.serviceAccount.key",
        "Base64-encoded PEM private key.",
        &[],
    ),
    doc(
        "cluster.apiServer",
        "kube-apiserver settings.",
        &[EX_API_SERVER],
    ),
    doc(
        "cluster.apiServer.image",
        "kube-apiserver container image.",
        &["registry.k8s.io/kube-apiserver:v1.30.0"],
    ),
    doc(
        "cluster.apiServer.extraArgs",
        "Additional kube-apiserver flags, as flag name to value.",
        &["feature-gates: ServerSideApply=true\nhttp2-max-streams-per-connection: \"32\""],
    ),
    doc(
        "cluster.apiServer.extraVolumes",
        "Host directories mounted into the kube-apiserver static pod.",
        &[],
    ),
    doc(
        "cluster.apiServer.extraVolumes[].hostPath",
        D_VOL_HOST,
        &[EX_HOST_PATH],
    ),
    doc(
        "cluster.apiServer.extraVolumes[].mountPath",
        D_VOL_MOUNT,
        &[EX_MOUNT_PATH],
    ),
    doc(
        "cluster.apiServer.extraVolumes[].readonly",
        D_VOL_RO,
        &["true"],
    ),
    doc(
        "cluster.apiServer.env",
        "Environment variables for the kube-apiserver container.",
        &[],
    ),
    doc(
        "cluster.apiServer.certSANs",
        "Additional DNS names and IPs put into the kube-apiserver serving certificate.",
        &["- 1.2.3.4\n- 4.5.6.7"],
    ),
    doc(
        "cluster.apiServer.disablePodSecurityPolicy",
        "Turn off the PodSecurityPolicy admission plugin and its default manifests.",
        &[],
    ),
    doc(
        "cluster.apiServer.admissionControl",
        "Per-plugin settings of the API server's admission controllers.",
        &[EX_ADMISSION_CONTROL],
    ),
    doc(
        "cluster.apiServer.admissionControl[].name",
        "Registered name of the admission plugin.",
        &[],
    ),
    doc(
        "cluster.apiServer.admissionControl[].configuration",
        "Configuration object handed to the plugin as is.",
        &[],
    ),
    doc(
        "cluster.apiServer.auditPolicy",
        "Audit policy of the API server (an audit.k8s.io Policy).",
        &[EX_AUDIT_POLICY],
    ),
    doc(
        "cluster.apiServer.resources",
        "CPU and memory requests and limits of the kube-apiserver container.",
        &[EX_RESOURCES],
    ),
    doc(
        "cluster.apiServer.resources.requests",
        D_RES_REQUESTS,
        &[EX_RES_REQUESTS],
    ),
    doc(
        "cluster.apiServer.resources.limits",
        D_RES_LIMITS,
        &[EX_RES_LIMITS],
    ),
    doc(
        "cluster.controllerManager",
        "kube-controller-manager settings.",
        &[EX_CONTROLLER_MANAGER],
    ),
    doc(
        "cluster.controllerManager.image",
        "kube-controller-manager container image.",
        &["registry.k8s.io/kube-controller-manager:v1.30.0"],
    ),
    doc(
        "cluster.controllerManager.extraArgs",
        "Additional kube-controller-manager flags, as flag name to value.",
        &["feature-gates: ServerSideApply=true"],
    ),
    doc(
        "cluster.controllerManager.extraVolumes",
        "Host directories mounted into the kube-controller-manager static pod.",
        &[],
    ),
    doc(
        "cluster.controllerManager.extraVolumes[].hostPath",
        D_VOL_HOST,
        &[EX_HOST_PATH],
    ),
    doc(
        "cluster.controllerManager.extraVolumes[].mountPath",
        D_VOL_MOUNT,
        &[EX_MOUNT_PATH],
    ),
    doc(
        "cluster.controllerManager.extraVolumes[].readonly",
        D_VOL_RO,
        &["true"],
    ),
    doc(
        "cluster.controllerManager.env",
        "Environment variables for the kube-controller-manager container.",
        &[],
    ),
    doc(
        "cluster.controllerManager.resources",
        "CPU and memory requests and limits of the kube-controller-manager container.",
        &[EX_RESOURCES],
    ),
    doc(
        "cluster.controllerManager.resources.requests",
        D_RES_REQUESTS,
        &[EX_RES_REQUESTS],
    ),
    doc(
        "cluster.controllerManager.resources.limits",
        D_RES_LIMITS,
        &[EX_RES_LIMITS],
    ),
    doc("cluster.proxy", "kube-proxy settings.", &[EX_PROXY]),
    doc(
        "cluster.proxy.disabled",
        "Do not deploy kube-proxy when the cluster is bootstrapped.",
        &["false"],
    ),
    doc(
        "cluster.proxy.image",
        "kube-proxy container image.",
        &["registry.k8s.io/kube-proxy:v1.30.0"],
    ),
    doc(
        "cluster.proxy.mode",
        "Proxy mode of kube-proxy, e.g. iptables (the default) or ipvs.",
        &[],
    ),
    doc(
        "cluster.proxy.extraArgs",
        "Additional kube-proxy flags, as flag name to value.",
        &["proxy-mode: iptables"],
    ),
    doc("cluster.scheduler", "kube-scheduler settings.", &[EX_SCHEDULER]),
    doc(
        "cluster.scheduler.image",
        "kube-scheduler container image.",
        &["registry.k8s.io/kube-scheduler:v1.30.0"],
    ),
    doc(
        "cluster.scheduler.extraArgs",
        "Additional kube-scheduler flags, as flag name to value.",
        &["feature-gates: AllBeta=true"],
    ),
    doc(
        "cluster.scheduler.extraVolumes",
        "Host directories mounted into the kube-scheduler static pod.",
        &[],
    ),
    doc(
        "cluster.scheduler.extraVolumes[].hostPath",
        D_VOL_HOST,
        &[EX_HOST_PATH],
    ),
    doc(
        "cluster.scheduler.extraVolumes[].mountPath",
        D_VOL_MOUNT,
        &[EX_MOUNT_PATH],
    ),
    doc(
        "cluster.scheduler.extraVolumes[].readonly",
        D_VOL_RO,
        &["true"],
    ),
    doc(
        "cluster.scheduler.env",
        "Environment variables for the kube-scheduler container.",
        &[],
    ),
    doc(
        "cluster.scheduler.resources",
        "CPU and memory requests and limits of the kube-scheduler container.",
        &[EX_RESOURCES],
    ),
    doc(
        "cluster.scheduler.resources.requests",
        D_RES_REQUESTS,
        &[EX_RES_REQUESTS],
    ),
    doc(
        "cluster.scheduler.resources.limits",
        D_RES_LIMITS,
        &[EX_RES_LIMITS],
    ),
    doc(
        "cluster.scheduler.config",
        "Custom KubeSchedulerConfiguration for kube-scheduler.",
        &[],
    ),
    doc(
        "cluster.discovery",
        "Discovery of cluster members, which KubeSpan and others build on.",
        &[EX_DISCOVERY],
    ),
    doc(
        "cluster.discovery.enabled",
        "Turn on member discovery through the registries below.",
        &[],
    ),
    doc(
        "cluster.discovery.registries",
        "Registries through which members publish and find each other.",
        &[],
    ),
    doc(
        "cluster.discovery.registries.kubernetes",
        "Registry that keeps member data in annotations on the Kubernetes Node objects.",
        &[],
    ),
    doc(
        "cluster.discovery.registries.kubernetes.disabled",
        "Turn the Kubernetes registry off.",
        &[],
    ),
    doc(
        "cluster.discovery.registries.service",
        "Registry backed by an external discovery service.",
        &[],
    ),
    doc(
        "cluster.discovery.registries.service.disabled",
        "Turn the discovery service registry off.",
        &[],
    ),
    doc(
        "cluster.discovery.registries.service.endpoint",
        "URL of the discovery service.",
        &["https://discovery.talos.dev/"],
    ),
    doc("cluster.etcd", "etcd settings.", &[EX_ETCD]),
    doc(
        "cluster.etcd.image",
        "Container image the etcd service runs.",
        &["gcr.io/etcd-development/etcd:v3.5.13"],
    ),
    doc(
        "cluster.etcd.ca",
        "etcd root CA, as base64-encoded PEM crt and key.",
        &[EX_CERT_AND_KEY],
    ),
    doc("cluster.etcd.ca.crt", D_CA_CRT, &[]),
    doc("cluster.etcd.ca.key", D_CA_KEY, &[]),
    doc(
        "cluster.etcd.extraArgs",
        "Additional etcd flags; flags Talos sets itself (name, data-dir, URLs, TLS files) are refused.",
        &["election-timeout: \"5000\""],
    ),
    doc(
        "cluster.etcd.subnet",
        "Old single-subnet form of advertisedSubnets; deprecated.",
        &[],
    ),
    doc(
        "cluster.etcd.advertisedSubnets",
        "Subnets to pick the advertised etcd address from; !subnet excludes (default: first routable IP).",
        &["- 10.0.0.0/8"],
    ),
    doc(
        "cluster.etcd.listenSubnets",
        "Subnets etcd listens on for peers and clients (default: advertisedSubnets, else every address).",
        &[],
    ),
    doc(
        "cluster.coreDNS",
        "CoreDNS deployment settings.",
        &["image: registry.k8s.io/coredns/coredns:v1.11.1"],
    ),
    doc(
        "cluster.coreDNS.disabled",
        "Do not deploy CoreDNS when the cluster is bootstrapped.",
        &[],
    ),
    doc("cluster.coreDNS.image", "CoreDNS container image.", &[]),
    doc(
        "cluster.externalCloudProvider",
        "Run Kubernetes with an external cloud provider (cloud-controller-manager).",
        &[EX_EXTERNAL_CLOUD_PROVIDER],
    ),
    doc(
        "cluster.externalCloudProvider.enabled",
        "Turn on the external cloud provider mode.",
        &[],
    ),
    doc(
        "cluster.externalCloudProvider.manifests",
        "URLs of the cloud provider manifests, applied at bootstrap.",
        &[EX_CLOUD_PROVIDER_MANIFESTS],
    ),
    doc(
        "cluster.extraManifests",
        "URLs of further manifests applied at bootstrap.",
        &["- https://www.example.com/manifest1.yaml\n- https://www.example.com/manifest2.yaml"],
    ),
    doc(
        "cluster.extraManifestHeaders",
        "HTTP headers sent when downloading extraManifests.",
        &["Token: \"1234567\"\nX-ExtraInfo: info"],
    ),
    doc(
        "cluster.inlineManifests",
        "Kubernetes manifests written inline, applied at bootstrap.",
        &[EX_INLINE_MANIFESTS],
    ),
    doc(
        "cluster.inlineManifests[].name",
        "Name of the manifest; must be unique.",
        &["csi"],
    ),
    doc(
        "cluster.inlineManifests[].contents",
        "The manifest YAML, as a string.",
        &[EX_INLINE_MANIFEST_CONTENTS],
    ),
    doc(
        "cluster.adminKubeconfig",
        "Options for the admin kubeconfig handed out by talosctl kubeconfig.",
        &["certLifetime: 1h0m0s"],
    ),
    doc(
        "cluster.adminKubeconfig.certLifetime",
        "Validity of the admin kubeconfig certificate as a Go duration like 1h or 10m (default 1 year).",
        &[],
    ),
    doc(
        "cluster.allowSchedulingOnMasters",
        "Old name of allowSchedulingOnControlPlanes; deprecated.",
        &[],
    ),
    doc(
        "cluster.allowSchedulingOnControlPlanes",
        "Let ordinary workloads be scheduled on control plane nodes.",
        &["true"],
    ),
    // ---- SideroLinkConfig ----
    doc(
        "SideroLinkConfig",
        "Connects the machine to a SideroLink API (e.g. Omni) over a WireGuard tunnel.",
        &[EX_SIDEROLINK],
    ),
    doc("SideroLinkConfig.apiVersion", D_API_VERSION, &[]),
    doc("SideroLinkConfig.kind", D_KIND, &[]),
    doc(
        "SideroLinkConfig.apiUrl",
        "SideroLink API URL to join, with scheme https:// or grpc://.",
        &["https://siderolink.api/join?token=secret"],
    ),
    // ---- ExtensionServiceConfig ----
    doc(
        "ExtensionServiceConfig",
        "Configuration files and environment for one extension service.",
        &[EX_EXTENSION_SERVICE],
    ),
    doc("ExtensionServiceConfig.apiVersion", D_API_VERSION, &[]),
    doc("ExtensionServiceConfig.kind", D_KIND, &[]),
    doc(
        "ExtensionServiceConfig.name",
        "Name of the extension service being configured.",
        &[],
    ),
    doc(
        "ExtensionServiceConfig.configFiles",
        "Files made available to the service.",
        &[],
    ),
    doc(
        "ExtensionServiceConfig.configFiles[].content",
        "Text of the config file.",
        &[],
    ),
    doc(
        "ExtensionServiceConfig.configFiles[].mountPath",
        "Path where the file is mounted into the service.",
        &[],
    ),
    doc(
        "ExtensionServiceConfig.environment",
        "Environment variables for the service, as NAME=value.",
        &[],
    ),
    // ---- WatchdogTimerConfig ----
    doc(
        "WatchdogTimerConfig",
        "Hardware watchdog that resets the machine when Talos stops responding.",
        &[EX_WATCHDOG],
    ),
    doc("WatchdogTimerConfig.apiVersion", D_API_VERSION, &[]),
    doc("WatchdogTimerConfig.kind", D_KIND, &[]),
    doc(
        "WatchdogTimerConfig.device",
        "Device node of the hardware watchdog.",
        &["/dev/watchdog0"],
    ),
    doc(
        "WatchdogTimerConfig.timeout",
        "Reset the machine after Talos is unresponsive this long (default 1m, at least 10s).",
        &[],
    ),
    // ---- KmsgLogConfig ----
    doc(
        "KmsgLogConfig",
        "Sends kernel log (kmsg) messages to a remote receiver.",
        &[EX_KMSG_LOG],
    ),
    doc("KmsgLogConfig.apiVersion", D_API_VERSION, &[]),
    doc("KmsgLogConfig.kind", D_KIND, &[]),
    doc(
        "KmsgLogConfig.name",
        "Name of this document, unique among KmsgLogConfig documents.",
        &[],
    ),
    doc(
        "KmsgLogConfig.url",
        "Receiver URL: scheme tcp:// or udp://, a port, and no path.",
        &["udp://10.3.7.3:2810"],
    ),
    // ---- EventSinkConfig ----
    doc(
        "EventSinkConfig",
        "Streams Talos runtime events to a remote receiver.",
        &[EX_EVENT_SINK],
    ),
    doc("EventSinkConfig.apiVersion", D_API_VERSION, &[]),
    doc("EventSinkConfig.kind", D_KIND, &[]),
    doc(
        "EventSinkConfig.endpoint",
        "Receiver address as host:port.",
        &["10.3.7.3:2810"],
    ),
    // ---- NetworkDefaultActionConfig ----
    doc(
        "NetworkDefaultActionConfig",
        "Default verdict of the ingress firewall.",
        &[EX_DEFAULT_ACTION],
    ),
    doc("NetworkDefaultActionConfig.apiVersion", D_API_VERSION, &[]),
    doc("NetworkDefaultActionConfig.kind", D_KIND, &[]),
    doc(
        "NetworkDefaultActionConfig.ingress",
        "What happens to ingress traffic that no rule matches: accept or block.",
        &[],
    ),
    // ---- NetworkRuleConfig ----
    doc(
        "NetworkRuleConfig",
        "Ingress firewall rule letting source subnets reach selected host ports.",
        &[EX_RULE],
    ),
    doc("NetworkRuleConfig.apiVersion", D_API_VERSION, &[]),
    doc("NetworkRuleConfig.kind", D_KIND, &[]),
    doc("NetworkRuleConfig.name", "Name of the rule.", &[]),
    doc(
        "NetworkRuleConfig.portSelector",
        "Host ports and protocol the rule covers.",
        &[],
    ),
    doc(
        "NetworkRuleConfig.portSelector.ports",
        "Single ports or inclusive ranges like 1200-1299; ranges must not overlap.",
        &["- 80\n- 443", "- 1200-1299\n- 8080"],
    ),
    doc(
        "NetworkRuleConfig.portSelector.protocol",
        "Protocol matched: tcp, udp, icmp or icmpv6.",
        &[],
    ),
    doc(
        "NetworkRuleConfig.ingress",
        "Source subnets allowed to reach the selected ports.",
        &[],
    ),
    doc(
        "NetworkRuleConfig.ingress[].subnet",
        "Allowed source subnet, in CIDR form.",
        &["10.3.4.0/24", "2001:db8::/32", "1.3.4.5/32"],
    ),
    doc(
        "NetworkRuleConfig.ingress[].except",
        "Part of subnet that is not allowed, in CIDR form.",
        &[],
    ),
];
