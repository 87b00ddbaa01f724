//! `HostnameStatuses` (`hostname`) and `Nodenames` (`nodename`).
//!
//! The hostname comes from `machine.network.hostname` when the config sets it, else from the
//! kernel (`/proc/sys/kernel/hostname` and `domainname`; on the container platform the
//! provisioner has set it). A dotted name is split into hostname and domain name. The node name
//! is the hostname (lower-cased), or the FQDN with `machine.kubelet.registerWithFQDN`.

use std::time::Duration;

use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    HostnameStatusSpec, MachineConfigSpec, NodenameSpec, HOSTNAME_ID, MACHINE_CONFIG_ID,
    NODENAME_ID,
};
use talos::resources::ResourceSpec;

use super::{current_config, Env};

/// How often the kernel hostname is read again.
const RESCAN: Duration = Duration::from_secs(30);

/// Publishes the hostname status.
pub struct HostnameStatusController {
    env: Env,
}

impl HostnameStatusController {
    /// A controller reading `env`.
    pub fn new(env: Env) -> Self {
        HostnameStatusController { env }
    }

    fn kernel_value(&self, name: &str) -> String {
        let v = std::fs::read_to_string(self.env.proc_root.join("sys/kernel").join(name))
            .unwrap_or_default();
        let v = v.trim();
        if v == "(none)" {
            String::new()
        } else {
            v.to_string()
        }
    }
}

impl Controller for HostnameStatusController {
    fn name(&self) -> &'static str {
        "network.HostnameStatusController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::one::<MachineConfigSpec>(MACHINE_CONFIG_ID)]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![HostnameStatusSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let configured = current_config(ctx.state())
            .and_then(|c| {
                c.v1alpha1()
                    .and_then(|v| v.machine.as_ref())
                    .and_then(|m| m.network.as_ref())
                    .map(|n| n.hostname.clone())
            })
            .filter(|h| !h.is_empty());
        let status = match configured {
            Some(name) => HostnameStatusSpec::from_fqdn(&name),
            None => {
                let mut status = HostnameStatusSpec::from_fqdn(&self.kernel_value("hostname"));
                if status.domainname.is_empty() {
                    status.domainname = self.kernel_value("domainname");
                }
                status
            }
        };
        if status.hostname.is_empty() {
            // Nothing known yet; look again later.
            return Ok(Action::Requeue(RESCAN));
        }
        ctx.put_typed(HOSTNAME_ID, &status)?;
        Ok(Action::Requeue(RESCAN))
    }
}

/// Publishes the Kubernetes node name.
pub struct NodenameController;

impl Controller for NodenameController {
    fn name(&self) -> &'static str {
        "k8s.NodenameController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<HostnameStatusSpec>(HOSTNAME_ID),
            Input::one::<MachineConfigSpec>(MACHINE_CONFIG_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![NodenameSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let Ok(host) = ctx.state().get(
            HostnameStatusSpec::NAMESPACE,
            HostnameStatusSpec::TYPE,
            HOSTNAME_ID,
        ) else {
            return Ok(Action::AwaitChange);
        };
        let status: HostnameStatusSpec = host.typed()?;
        let kubelet = current_config(ctx.state()).and_then(|c| {
            c.v1alpha1()
                .and_then(|v| v.machine.as_ref())
                .and_then(|m| m.kubelet.clone())
        });
        let fqdn = kubelet
            .as_ref()
            .and_then(|k| k.register_with_fqdn)
            .unwrap_or(false);
        let skip = kubelet
            .as_ref()
            .and_then(|k| k.skip_node_registration)
            .unwrap_or(false);
        let name = if fqdn {
            status.fqdn()
        } else {
            status.hostname.clone()
        };
        ctx.put_typed(
            NODENAME_ID,
            &NodenameSpec {
                nodename: name.to_lowercase(),
                hostname_version: host.metadata.version.to_string(),
                skip_node_registration: skip,
            },
        )?;
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eventually, machine_config, write};
    use super::*;
    use talos::resources::controller::Runtime;
    use talos::resources::State;

    #[tokio::test]
    async fn hostname_from_kernel_then_config_and_nodename_follows() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/kernel/hostname", "Talos-CP-1\n");
        write(dir.path(), "sys/kernel/domainname", "(none)\n");
        let env = Env {
            proc_root: dir.path().to_path_buf(),
            mode: talos::config::Mode::Container,
        };
        let st = State::new();
        let mut rt = Runtime::new(st.clone());
        rt.spawn(HostnameStatusController::new(env));
        rt.spawn(NodenameController);
        eventually(|| {
            st.get_typed::<NodenameSpec>(NODENAME_ID)
                .map(|n| n.nodename == "talos-cp-1")
                .unwrap_or(false)
        })
        .await;
        let h: HostnameStatusSpec = st.get_typed(HOSTNAME_ID).unwrap();
        assert_eq!(h.hostname, "Talos-CP-1");
        assert_eq!(h.domainname, "");
        let cfg = "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    hostname: node-a.example.org\n  kubelet:\n    registerWithFQDN: true\n";
        st.put(
            talos::resources::Resource::from_typed(MACHINE_CONFIG_ID, &machine_config(cfg)),
            "",
        )
        .unwrap();
        eventually(|| {
            st.get_typed::<NodenameSpec>(NODENAME_ID)
                .map(|n| n.nodename == "node-a.example.org")
                .unwrap_or(false)
        })
        .await;
        let h: HostnameStatusSpec = st.get_typed(HOSTNAME_ID).unwrap();
        assert_eq!(
            (h.hostname.as_str(), h.domainname.as_str()),
            ("node-a", "example.org")
        );
        let n: NodenameSpec = st.get_typed(NODENAME_ID).unwrap();
        assert_eq!(n.hostname_version, "2");
        rt.stop().await;
    }
}
