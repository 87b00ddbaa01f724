//! `Members` (cluster namespace): this node's own entry — node id, addresses of its
//! interfaces, hostname, machine type, OS and, on control planes, the API server port.
//! (Members of other nodes come with cluster discovery, later.)

use std::net::IpAddr;
use std::time::Duration;

use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    ControlPlane, HostnameStatusSpec, MachineConfigSpec, MachineTypeSpec, MemberSpec, HOSTNAME_ID,
    MACHINE_CONFIG_ID, MACHINE_TYPE_ID,
};
use talos::resources::ResourceSpec;

use super::current_config;

/// How often the addresses are read again.
const RESCAN: Duration = Duration::from_secs(15);

/// The default kube-apiserver port.
const DEFAULT_API_SERVER_PORT: i64 = 6443;

/// What Talos reports as `operatingSystem`.
pub fn operating_system() -> String {
    format!("Talos ({})", talos::version::TALOS_VERSION)
}

/// Addresses worth advertising: not loopback, not link-local.
pub fn node_addresses() -> Vec<String> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = Vec::new();
    for a in addrs {
        let Some(sa) = a.address else { continue };
        let ip = if let Some(v4) = sa.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if ip.is_loopback() || link_local || ip.is_unspecified() || out.contains(&ip) {
            continue;
        }
        out.push(ip);
    }
    out.into_iter().map(|ip| ip.to_string()).collect()
}

/// Publishes the local member.
pub struct MemberController {
    node_id: String,
}

impl MemberController {
    /// The member for node `node_id`.
    pub fn new(node_id: &str) -> Self {
        MemberController {
            node_id: node_id.to_string(),
        }
    }
}

impl Controller for MemberController {
    fn name(&self) -> &'static str {
        "cluster.LocalAffiliateController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<HostnameStatusSpec>(HOSTNAME_ID),
            Input::one::<MachineTypeSpec>(MACHINE_TYPE_ID),
            Input::one::<MachineConfigSpec>(MACHINE_CONFIG_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![MemberSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let Ok(host) = ctx.state().get_typed::<HostnameStatusSpec>(HOSTNAME_ID) else {
            return Ok(Action::AwaitChange);
        };
        let machine_type = ctx
            .state()
            .get_typed::<MachineTypeSpec>(MACHINE_TYPE_ID)
            .map(|t| t.0)
            .unwrap_or_else(|_| "unknown".to_string());
        let control_plane = if machine_type == "controlplane" || machine_type == "init" {
            let port = current_config(ctx.state())
                .and_then(|c| {
                    c.v1alpha1()
                        .and_then(|v| v.cluster.as_ref())
                        .and_then(|cl| cl.control_plane.as_ref())
                        .map(|cp| cp.local_api_server_port)
                })
                .filter(|p| *p > 0)
                .unwrap_or(DEFAULT_API_SERVER_PORT);
            Some(ControlPlane { port })
        } else {
            None
        };
        ctx.put_typed(
            &self.node_id,
            &MemberSpec {
                node_id: self.node_id.clone(),
                addresses: node_addresses(),
                hostname: host.fqdn(),
                machine_type,
                operating_system: operating_system(),
                control_plane,
            },
        )?;
        Ok(Action::Requeue(RESCAN))
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 of a big-endian number (how Talos prints node identities).
pub fn base62(bytes: &[u8]) -> String {
    let mut num: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !num.is_empty() {
        let mut rem: u32 = 0;
        let mut next = Vec::with_capacity(num.len());
        for b in &num {
            let acc = rem * 256 + u32::from(*b);
            let q = acc / 62;
            rem = acc % 62;
            if !(next.is_empty() && q == 0) {
                next.push(u8::try_from(q).unwrap_or(0));
            }
        }
        digits.push(BASE62[rem as usize]);
        num = next;
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// A new random node id (32 random bytes, base62).
pub fn new_node_id() -> String {
    let bytes: [u8; 32] = rand::random();
    base62(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use talos::resources::State;

    #[test]
    fn base62_encodes_numbers() {
        assert_eq!(base62(&[0]), "0");
        assert_eq!(base62(&[61]), "z");
        assert_eq!(base62(&[62]), "10");
        assert_eq!(base62(&[1, 0]), "48");
        let id = new_node_id();
        assert!(id.len() >= 40 && id.len() <= 43, "{id}");
    }

    #[tokio::test]
    async fn local_member() {
        let st = State::new();
        st.put(
            talos::resources::Resource::from_typed(
                HOSTNAME_ID,
                &HostnameStatusSpec {
                    hostname: "cp-1".into(),
                    domainname: String::new(),
                },
            ),
            "net",
        )
        .unwrap();
        st.put(
            talos::resources::Resource::from_typed(
                MACHINE_TYPE_ID,
                &MachineTypeSpec("controlplane".into()),
            ),
            "cfg",
        )
        .unwrap();
        let ctx = Context::new(
            st.clone(),
            "cluster.LocalAffiliateController",
            vec![MemberSpec::TYPE],
        );
        let mut c = MemberController::new("node1");
        c.reconcile(&ctx).await.unwrap();
        let m: MemberSpec = st.get_typed("node1").unwrap();
        assert_eq!(m.hostname, "cp-1");
        assert_eq!(m.machine_type, "controlplane");
        assert_eq!(m.operating_system, "Talos (v1.7.0)");
        assert_eq!(m.control_plane, Some(ControlPlane { port: 6443 }));
        assert!(m.addresses.iter().all(|a| a != "127.0.0.1"));
    }
}
