//! `KernelParamStatuses`: the sysctls machined cares about, read from `/proc/sys`.
//!
//! The keys are Talos's defaults (ids `proc.sys.<key>`, the same list Talos applies: forwarding,
//! keep-alive, panic, pid_max, overcommit, inotify/aio limits, IPv6 forwarding and RA when IPv6
//! exists; off the container platform also the bridge netfilter and KSPP hardening keys) plus
//! `machine.sysctls` from the config. `current` is the value now, `default` the first value
//! seen (before anything changed it), `unsupported` when the kernel has no such parameter.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{KernelParamStatusSpec, MachineConfigSpec, MACHINE_CONFIG_ID};
use talos::resources::ResourceSpec;

use super::{current_config, Env};

/// How often values are read again.
const RESCAN: Duration = Duration::from_secs(30);

/// The prefix of sysctl ids.
pub const SYSCTL_PREFIX: &str = "proc.sys.";

/// Defaults Talos applies on every platform.
const COMMON: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "kernel.panic",
    "kernel.pid_max",
    "vm.overcommit_memory",
    "fs.inotify.max_user_instances",
    "fs.aio-max-nr",
];

/// Applied when the kernel has IPv6.
const IPV6: &[&str] = &[
    "net.ipv6.conf.default.forwarding",
    "net.ipv6.conf.default.accept_ra",
];

/// Applied off the container platform (the host owns these there).
const HOST_ONLY: &[&str] = &[
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "kernel.kptr_restrict",
    "kernel.dmesg_restrict",
    "kernel.perf_event_paranoid",
    "kernel.yama.ptrace_scope",
    "user.max_user_namespaces",
    "kernel.unprivileged_bpf_disabled",
    "net.core.bpf_jit_harden",
];

/// Publishes kernel parameter statuses.
pub struct KernelParamStatusController {
    env: Env,
    defaults: BTreeMap<String, String>,
}

impl KernelParamStatusController {
    /// A controller reading `env`.
    pub fn new(env: Env) -> Self {
        KernelParamStatusController {
            env,
            defaults: BTreeMap::new(),
        }
    }

    /// The sysctl keys (without `proc.sys.`) to report.
    fn keys(&self, ctx: &Context) -> BTreeSet<String> {
        let mut keys: BTreeSet<String> = COMMON.iter().map(|k| k.to_string()).collect();
        if self
            .env
            .proc_root
            .join("sys/net/ipv6/conf/default/accept_ra")
            .exists()
        {
            keys.extend(IPV6.iter().map(|k| k.to_string()));
        }
        if !self.env.is_container() {
            keys.extend(HOST_ONLY.iter().map(|k| k.to_string()));
        }
        if let Some(cfg) = current_config(ctx.state()) {
            if let Some(m) = cfg.v1alpha1().and_then(|v| v.machine.as_ref()) {
                keys.extend(m.sysctls.keys().cloned());
            }
        }
        keys
    }

    /// Reads one sysctl (`net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`).
    fn read(&self, key: &str) -> Option<String> {
        let rel = key.replace('.', "/");
        std::fs::read_to_string(self.env.proc_root.join("sys").join(rel))
            .ok()
            .map(|v| v.trim().to_string())
    }
}

impl Controller for KernelParamStatusController {
    fn name(&self) -> &'static str {
        "runtime.KernelParamStatusController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::one::<MachineConfigSpec>(MACHINE_CONFIG_ID)]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![KernelParamStatusSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let keys = self.keys(ctx);
        let mut ids = BTreeSet::new();
        for key in &keys {
            let id = format!("{SYSCTL_PREFIX}{key}");
            let spec = match self.read(key) {
                Some(current) => {
                    let default = self
                        .defaults
                        .entry(key.clone())
                        .or_insert_with(|| current.clone())
                        .clone();
                    KernelParamStatusSpec {
                        current,
                        default,
                        unsupported: false,
                    }
                }
                None => KernelParamStatusSpec {
                    unsupported: true,
                    ..Default::default()
                },
            };
            ctx.put_typed(&id, &spec)?;
            ids.insert(id);
        }
        ctx.retain(
            KernelParamStatusSpec::NAMESPACE,
            KernelParamStatusSpec::TYPE,
            |id| ids.contains(id),
        )?;
        Ok(Action::Requeue(RESCAN))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{machine_config, write};
    use super::*;
    use talos::resources::State;

    #[tokio::test]
    async fn reports_defaults_config_keys_and_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/net/ipv4/ip_forward", "0\n");
        write(dir.path(), "sys/kernel/pid_max", "4194304\n");
        write(dir.path(), "sys/fs/file-max", "100\n");
        let env = Env {
            proc_root: dir.path().to_path_buf(),
            mode: talos::config::Mode::Container,
        };
        let st = State::new();
        st.put(
            talos::resources::Resource::from_typed(
                MACHINE_CONFIG_ID,
                &machine_config(
                    "version: v1alpha1\nmachine:\n  type: worker\n  sysctls:\n    fs.file-max: \"200\"\n",
                ),
            ),
            "",
        )
        .unwrap();
        let ctx = Context::new(
            st.clone(),
            "runtime.KernelParamStatusController",
            vec![KernelParamStatusSpec::TYPE],
        );
        let mut c = KernelParamStatusController::new(env);
        c.reconcile(&ctx).await.unwrap();
        let fwd: KernelParamStatusSpec = st.get_typed("proc.sys.net.ipv4.ip_forward").unwrap();
        assert_eq!((fwd.current.as_str(), fwd.default.as_str()), ("0", "0"));
        let fm: KernelParamStatusSpec = st.get_typed("proc.sys.fs.file-max").unwrap();
        assert_eq!(fm.current, "100");
        let panic: KernelParamStatusSpec = st.get_typed("proc.sys.kernel.panic").unwrap();
        assert!(panic.unsupported);
        assert!(st
            .get_typed::<KernelParamStatusSpec>("proc.sys.kernel.kptr_restrict")
            .is_err());
        // Someone changes the value: current follows, default stays.
        write(dir.path(), "sys/net/ipv4/ip_forward", "1\n");
        c.reconcile(&ctx).await.unwrap();
        let fwd: KernelParamStatusSpec = st.get_typed("proc.sys.net.ipv4.ip_forward").unwrap();
        assert_eq!((fwd.current.as_str(), fwd.default.as_str()), ("1", "0"));
        assert_eq!(
            st.list("runtime", KernelParamStatusSpec::TYPE).len(),
            COMMON.len() + 1
        );
    }
}
