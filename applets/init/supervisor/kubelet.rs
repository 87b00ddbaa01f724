//! The `kubelet` service. Its command is decided at each start (Talos builds the kubelet's
//! runner the same way): the flags and mounts of the `KubeletSpecs` resource, run by the kubelet
//! executable an extension provides. Talos runs `machine.kubelet.image` through the CRI
//! containerd; talos-rs has no image runner, so without a kubelet executable the service fails
//! at "Creating service runner" with a message that names what is missing and says that
//! Kubernetes does not run on this node. Nothing else stands in for the kubelet.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use talos::constants::{CRI_CONTAINERD_ADDRESS, KUBELET_HEALTHZ_ADDRESS};
use talos::resources::specs::{KubeletSpecSpec, Mount, KUBELET_ID};
use talos::resources::State;
use talos::sys::cgroup;
use talos::sys::spawn::BindMount;

use super::node::{NodeParams, EXTENSION_PATH};
use super::spec::{CgroupSpec, HealthCheck, Probe, ProcessSpec, Runner, ServiceSpec};

/// Where an extension puts the kubelet.
pub const KUBELET_PATHS: &[&str] = &["/usr/local/bin/kubelet", "/usr/bin/kubelet"];

fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why no kubelet can run: the image cannot be run here and no extension provides one.
pub fn unavailable_message(image: &str, paths: &[PathBuf], root: &Path) -> String {
    let cri = talos::constants::below(root, CRI_CONTAINERD_ADDRESS);
    let image_reason = if cri.exists() {
        "talos-rs has no runner for kubelet images".to_string()
    } else {
        format!("no CRI containerd at {CRI_CONTAINERD_ADDRESS}")
    };
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!(
        "no kubelet is available on this node: image {image:?} cannot be run ({image_reason}) \
         and no extension provides {}; Kubernetes does not run on this node",
        list.join(" or ")
    )
}

/// The bind mounts of `machine.kubelet.extraMounts` (`bind`/`rbind`, `ro` honoured).
pub fn bind_mounts(mounts: &[Mount]) -> Vec<BindMount> {
    mounts
        .iter()
        .filter(|m| {
            m.mount_type.is_empty()
                || m.mount_type == "bind"
                || m.options.iter().any(|o| o == "bind" || o == "rbind")
        })
        .map(|m| BindMount {
            source: PathBuf::from(&m.source),
            target: PathBuf::from(&m.destination),
            read_only: m.options.iter().any(|o| o == "ro"),
        })
        .collect()
}

/// The kubelet's process for the current spec, or why there is none.
pub fn runner(params: &NodeParams, resources: &State) -> Result<ProcessSpec, String> {
    let spec = resources
        .get_typed::<KubeletSpecSpec>(KUBELET_ID)
        .map_err(|_| "the kubelet spec is not rendered yet".to_string())?;
    let Some(exe) = params.kubelet_paths.iter().find(|p| executable(p)) else {
        return Err(unavailable_message(
            &spec.image,
            &params.kubelet_paths,
            Path::new("/"),
        ));
    };
    let args: Vec<&str> = spec.args.iter().map(String::as_str).collect();
    let mut process = ProcessSpec::new(exe, &args);
    process.env = vec![("PATH".into(), EXTENSION_PATH.into())];
    process.spawn.setsid = true;
    process.spawn.parent_death_signal = Some(libc::SIGKILL);
    let binds = bind_mounts(&spec.extra_mounts);
    if !binds.is_empty() {
        for b in &binds {
            std::fs::create_dir_all(&b.target)
                .map_err(|e| format!("creating mount point {}: {e}", b.target.display()))?;
        }
        process.spawn.namespaces.mount = true;
        process.spawn.bind_mounts = binds;
    }
    if params.cgroups {
        process.cgroup = Some(CgroupSpec {
            name: cgroup::KUBELET.into(),
            memory_max: None,
            cpu_weight: None,
        });
    }
    Ok(process)
}

/// The kubelet service: registered on every node; started by the kubelet controller once its
/// files are written; healthy when `127.0.0.1:10248/healthz` answers.
pub fn kubelet(params: &NodeParams, resources: State, depends_on_containerd: bool) -> ServiceSpec {
    let params_for_runner = params.clone();
    let build: super::spec::RunnerFn = Arc::new(move || {
        let result = runner(&params_for_runner, &resources);
        Box::pin(async move { result })
    });
    let mut spec = ServiceSpec::new("kubelet", Runner::Dynamic(build));
    if depends_on_containerd {
        spec.depends_on = vec!["containerd".into()];
    }
    let url = format!("http://{KUBELET_HEALTHZ_ADDRESS}/healthz");
    let mut health = HealthCheck::new(Probe::Custom(Arc::new(move || {
        let url = url.clone();
        Box::pin(async move {
            talos::platform::http::get(&url, Duration::from_secs(5))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    })));
    health.timeout = Duration::from_secs(5);
    spec.health = Some(health);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_kubelet_the_runner_says_what_is_missing() {
        let st = State::new();
        let mut params = NodeParams::new("/sbin/init");
        params.kubelet_paths = vec![PathBuf::from("/nonexistent/kubelet")];
        assert_eq!(
            runner(&params, &st).unwrap_err(),
            "the kubelet spec is not rendered yet"
        );
        st.put(
            talos::resources::Resource::from_typed(
                KUBELET_ID,
                &KubeletSpecSpec {
                    image: "ghcr.io/siderolabs/kubelet:v1.30.0".into(),
                    ..KubeletSpecSpec::default()
                },
            ),
            "test",
        )
        .unwrap();
        let err = runner(&params, &st).unwrap_err();
        assert!(err.starts_with("no kubelet is available on this node: image \"ghcr.io/siderolabs/kubelet:v1.30.0\" cannot be run"), "{err}");
        assert!(
            err.ends_with(
                "no extension provides /nonexistent/kubelet; Kubernetes does not run on this node"
            ),
            "{err}"
        );
    }

    #[test]
    fn extra_mounts_become_bind_mounts() {
        let mounts = [
            Mount {
                destination: "/var/mnt".into(),
                mount_type: "bind".into(),
                source: "/var/mnt".into(),
                options: vec!["bind".into(), "rshared".into(), "ro".into()],
            },
            Mount {
                destination: "/x".into(),
                mount_type: "tmpfs".into(),
                source: "tmpfs".into(),
                options: vec![],
            },
        ];
        assert_eq!(
            bind_mounts(&mounts),
            [BindMount {
                source: "/var/mnt".into(),
                target: "/var/mnt".into(),
                read_only: true
            }]
        );
    }
}
