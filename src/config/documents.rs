//! The machine config document kinds of Talos 1.7 other than v1alpha1. Each has
//! `apiVersion: v1alpha1` and a `kind`, written first.

use serde::{Deserialize, Serialize};

use super::types::PortRange;
use crate::duration::GoDuration;

fn api_version() -> String {
    "v1alpha1".to_string()
}

macro_rules! kind_fns {
    ($($name:ident => $kind:literal),* $(,)?) => {
        $(
            fn $name() -> String {
                $kind.to_string()
            }
        )*
    };
}

kind_fns!(
    kind_siderolink => "SideroLinkConfig",
    kind_extension_service => "ExtensionServiceConfig",
    kind_watchdog => "WatchdogTimerConfig",
    kind_kmsg_log => "KmsgLogConfig",
    kind_event_sink => "EventSinkConfig",
    kind_default_action => "NetworkDefaultActionConfig",
    kind_rule => "NetworkRuleConfig",
);

/// `SideroLinkConfig`: connection to an Omni/SideroLink endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SideroLinkConfig {
    #[serde(default = "api_version", skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default = "kind_siderolink")]
    pub kind: String,
    /// SideroLink API URL, including `?jointoken=`.
    #[serde(default)]
    pub api_url: String,
}

impl Default for SideroLinkConfig {
    fn default() -> Self {
        SideroLinkConfig {
            api_version: api_version(),
            kind: kind_siderolink(),
            api_url: String::new(),
        }
    }
}

/// `ExtensionServiceConfig`: files and environment for a system extension service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtensionServiceConfig {
    #[serde(default = "api_version", skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default = "kind_extension_service")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_files: Vec<ExtensionConfigFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<String>,
}

impl Default for ExtensionServiceConfig {
    fn default() -> Self {
        ExtensionServiceConfig {
            api_version: api_version(),
            kind: kind_extension_service(),
            name: String::new(),
            config_files: Vec::new(),
            environment: Vec::new(),
        }
    }
}

/// One file of an extension service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtensionConfigFile {
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub mount_path: String,
}

/// `WatchdogTimerConfig`: hardware watchdog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WatchdogTimerConfig {
    #[serde(default = "api_version", skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default = "kind_watchdog")]
    pub kind: String,
    /// Watchdog device path, e.g. `/dev/watchdog0`.
    #[serde(default)]
    pub device: String,
    /// Timeout (default 1m, minimum 10s).
    #[serde(default, skip_serializing_if = "GoDuration::is_zero")]
    pub timeout: GoDuration,
}

impl Default for WatchdogTimerConfig {
    fn default() -> Self {
        WatchdogTimerConfig {
            api_version: api_version(),
            kind: kind_watchdog(),
            device: String::new(),
            timeout: GoDuration::default(),
        }
    }
}

/// `KmsgLogConfig`: ship kernel logs to a TCP/UDP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KmsgLogConfig {
    #[serde(default = "api_version", skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default = "kind_kmsg_log")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    /// `tcp://host:port/` or `udp://host:port/`.
    #[serde(default)]
    pub url: String,
}

impl Default for KmsgLogConfig {
    fn default() -> Self {
        KmsgLogConfig {
            api_version: api_version(),
            kind: kind_kmsg_log(),
            name: String::new(),
            url: String::new(),
        }
    }
}

/// `EventSinkConfig`: stream machine events to a gRPC sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventSinkConfig {
    #[serde(default = "api_version", skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default = "kind_event_sink")]
    pub kind: String,
    /// `host:port`.
    #[serde(default)]
    pub endpoint: String,
}

impl Default for EventSinkConfig {
    fn default() -> Self {
        EventSinkConfig {
            api_version: api_version(),
            kind: kind_event_sink(),
            endpoint: String::new(),
        }
    }
}

/// `NetworkDefaultActionConfig`: default ingress firewall action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkDefaultActionConfig {
    #[serde(default = "api_version", skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default = "kind_default_action")]
    pub kind: String,
    /// `accept` or `block`.
    #[serde(default)]
    pub ingress: String,
}

impl Default for NetworkDefaultActionConfig {
    fn default() -> Self {
        NetworkDefaultActionConfig {
            api_version: api_version(),
            kind: kind_default_action(),
            ingress: String::new(),
        }
    }
}

/// `NetworkRuleConfig`: a named ingress firewall rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkRuleConfig {
    #[serde(default = "api_version", skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default = "kind_rule")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub port_selector: RulePortSelector,
    #[serde(default)]
    pub ingress: Vec<IngressRule>,
}

impl Default for NetworkRuleConfig {
    fn default() -> Self {
        NetworkRuleConfig {
            api_version: api_version(),
            kind: kind_rule(),
            name: String::new(),
            port_selector: RulePortSelector::default(),
            ingress: Vec::new(),
        }
    }
}

/// `portSelector` of a network rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePortSelector {
    #[serde(default)]
    pub ports: Vec<PortRange>,
    /// `tcp`, `udp`, `icmp` or `icmpv6`.
    #[serde(default)]
    pub protocol: String,
}

/// One `ingress` entry of a network rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressRule {
    #[serde(default)]
    pub subnet: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub except: String,
}
