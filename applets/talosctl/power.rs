//! `reboot`, `shutdown` and `reset`: ask the nodes to run a power sequence, then (with
//! `--wait`, the default) follow each node until it is down (shutdown, reset without reboot)
//! or back up and running (reboot, reset with reboot).
//!
//! A node counts as "back" when its `MachineStatuses/machine` resource was created after the
//! request (machined starts with a fresh resource store on every boot) and reports stage
//! `running` and ready; a node counts as "down" when its API stops answering.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use talos::api::cosi::resource as cosi;
use talos::api::machine as pb;
use talos::client::connect;
use talos::resources::specs::{MachineStatusSpec, MACHINE_STATUS_ID};
use talos::resources::ResourceSpec as _;

use super::session::{self, NodeErrors, Session};
use super::Global;

/// Options shared by the three commands.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Wait for the operation to complete, tracking its progress.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    wait: bool,
    /// Time to wait for the operation to complete.
    #[arg(long, default_value = "30m", value_parser = talos::duration::parse_duration)]
    timeout: Duration,
    /// Debug operation from kernel logs (accepted for compatibility; progress is always shown).
    #[arg(long)]
    debug: bool,
}

/// Arguments of `reboot`.
#[derive(Debug, clap::Args)]
pub struct RebootArgs {
    /// Select the reboot mode: "default" or "powercycle" (skips kexec).
    #[arg(short = 'm', long, default_value = "default", value_parser = ["default", "powercycle"])]
    mode: String,
    #[command(flatten)]
    wait: WaitArgs,
}

/// Arguments of `shutdown`.
#[derive(Debug, clap::Args)]
pub struct ShutdownArgs {
    /// If true, force a node to shut down without a cordon/drain.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    wait: WaitArgs,
}

/// Arguments of `reset`.
#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// If true, attempt to cordon/drain node and leave etcd (if applicable).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    graceful: bool,
    /// If true, reboot the node after resetting instead of shutting down.
    #[arg(long)]
    reboot: bool,
    /// If true, reset the node in insecure (maintenance) mode (not supported by this build).
    #[arg(long)]
    insecure: bool,
    /// If set, just wipe the given system disk partitions by label (e.g. STATE, EPHEMERAL).
    #[arg(long = "system-labels-to-wipe", value_delimiter = ',')]
    system_labels_to_wipe: Vec<String>,
    /// If set, wipes defined devices in the list.
    #[arg(long = "user-disks-to-wipe", value_delimiter = ',')]
    user_disks_to_wipe: Vec<String>,
    /// Disk reset mode: all, system-disk or user-disks.
    #[arg(long = "wipe-mode", default_value = "all", value_parser = ["all", "system-disk", "user-disks"])]
    wipe_mode: String,
    #[command(flatten)]
    wait: WaitArgs,
}

/// What the node is expected to do after the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    ComeBack,
    GoDown,
}

/// Runs `reboot`.
pub fn reboot(args: RebootArgs, global: &Global) -> anyhow::Result<()> {
    let mode = if args.mode == "powercycle" {
        pb::reboot_request::Mode::Powercycle
    } else {
        pb::reboot_request::Mode::Default
    };
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let before = Before::take(&s).await;
        let mut req = pb::RebootRequest::default();
        req.set_mode(mode);
        let replies = s
            .client
            .machine()
            .reboot(s.request(req)?)
            .await
            .map_err(|e| session::call_error("error executing reboot", e))?
            .into_inner()
            .messages;
        check_replies(&s, replies, |m| m.metadata.as_ref())?;
        follow(&s, &before, Expect::ComeBack, &args.wait).await
    })
}

/// Runs `shutdown`.
pub fn shutdown(args: ShutdownArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let before = Before::take(&s).await;
        let replies = s
            .client
            .machine()
            .shutdown(s.request(pb::ShutdownRequest { force: args.force })?)
            .await
            .map_err(|e| session::call_error("error executing shutdown", e))?
            .into_inner()
            .messages;
        check_replies(&s, replies, |m| m.metadata.as_ref())?;
        follow(&s, &before, Expect::GoDown, &args.wait).await
    })
}

/// Runs `reset`.
pub fn reset(args: ResetArgs, global: &Global) -> anyhow::Result<()> {
    if args.insecure {
        anyhow::bail!("reset --insecure (maintenance mode) is not supported by this build");
    }
    let mode = match args.wipe_mode.as_str() {
        "system-disk" => pb::reset_request::WipeMode::SystemDisk,
        "user-disks" => pb::reset_request::WipeMode::UserDisks,
        _ => pb::reset_request::WipeMode::All,
    };
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let before = Before::take(&s).await;
        let mut req = pb::ResetRequest {
            graceful: args.graceful,
            reboot: args.reboot,
            system_partitions_to_wipe: args
                .system_labels_to_wipe
                .iter()
                .map(|label| pb::ResetPartitionSpec {
                    label: label.clone(),
                    wipe: true,
                })
                .collect(),
            user_disks_to_wipe: args.user_disks_to_wipe.clone(),
            ..Default::default()
        };
        req.set_mode(mode);
        let replies = s
            .client
            .machine()
            .reset(s.request(req)?)
            .await
            .map_err(|e| session::call_error("error executing reset", e))?
            .into_inner()
            .messages;
        check_replies(&s, replies, |m| m.metadata.as_ref())?;
        // A reset node that reboots comes back in maintenance mode (its config is wiped), so
        // its API changes identity: only its going down can be followed here.
        let expect = Expect::GoDown;
        follow(&s, &before, expect, &args.wait).await
    })
}

/// The nodes to follow: the `-n` nodes, or the endpoint itself when none are given.
fn targets(s: &Session) -> Vec<Option<String>> {
    if s.nodes.is_empty() {
        vec![None]
    } else {
        s.nodes.iter().cloned().map(Some).collect()
    }
}

fn label(node: &Option<String>, s: &Session) -> String {
    node.clone().unwrap_or_else(|| s.client.peer_host())
}

/// What the nodes looked like just before the request: the nodes to follow, when each one's
/// current `MachineStatus` was created (None: unreachable), and when the request was sent.
struct Before {
    targets: Vec<Option<String>>,
    created: BTreeMap<String, Option<SystemTime>>,
    at: SystemTime,
}

impl Before {
    async fn take(s: &Session) -> Before {
        let targets = targets(s);
        let mut created = BTreeMap::new();
        for node in &targets {
            let status = machine_status(s, node.as_deref()).await;
            created.insert(label(node, s), status.map(|st| st.created));
        }
        Before {
            targets,
            created,
            at: SystemTime::now(),
        }
    }
}

/// Fails when any node refused the request (each failure is reported by node).
fn check_replies<T>(
    s: &Session,
    replies: Vec<T>,
    metadata: impl Fn(&T) -> Option<&talos::api::common::Metadata>,
) -> anyhow::Result<()> {
    let mut errors = NodeErrors::default();
    let _ = session::partition(s, &mut errors, replies, metadata);
    errors.finish()
}

struct MachineStatus {
    created: SystemTime,
    stage: String,
    ready: bool,
}

async fn machine_status(s: &Session, node: Option<&str>) -> Option<MachineStatus> {
    let mut req = tonic::Request::new(cosi::GetRequest {
        namespace: MachineStatusSpec::NAMESPACE.into(),
        r#type: MachineStatusSpec::TYPE.into(),
        id: MACHINE_STATUS_ID.into(),
        options: None,
    });
    if let Some(n) = node {
        req = connect::with_node(req, n).ok()?;
    }
    req.set_timeout(Duration::from_secs(5));
    let r = s.client.cosi().get(req).await.ok()?.into_inner().resource?;
    let created = r.metadata?.created.map_or(SystemTime::UNIX_EPOCH, |t| {
        SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(t.seconds).unwrap_or(0),
                u32::try_from(t.nanos).unwrap_or(0),
            )
    });
    let spec = MachineStatusSpec::from_yaml(&r.spec?.yaml_spec).ok()?;
    Some(MachineStatus {
        created,
        stage: spec.stage,
        ready: spec.status.ready,
    })
}

/// Follows every node until it reaches the expected end, printing each change.
async fn follow(
    s: &Session,
    before: &Before,
    expect: Expect,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    if !wait.wait {
        return Ok(());
    }
    let deadline = Instant::now() + wait.timeout;
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<&Option<String>> = before.targets.iter().collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for node in pending {
            let name = label(node, s);
            let status = machine_status(s, node.as_deref()).await;
            let (text, done) = match (&status, expect) {
                (None, Expect::GoDown) => ("down".to_string(), true),
                (None, Expect::ComeBack) => {
                    ("waiting for the node to come back".to_string(), false)
                }
                (Some(st), Expect::GoDown) => (format!("stage {}", st.stage), false),
                (Some(st), Expect::ComeBack) => {
                    let fresh = st.created >= before.at
                        || before.created.get(&name).copied().flatten() != Some(st.created);
                    if fresh && st.stage == "running" && st.ready {
                        ("back up: running, ready".to_string(), true)
                    } else if fresh {
                        (format!("booting: stage {}", st.stage), false)
                    } else {
                        (format!("stage {}", st.stage), false)
                    }
                }
            };
            if last.get(&name) != Some(&text) {
                eprintln!("{name}: {text}");
                last.insert(name, text);
            }
            if !done {
                still.push(node);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let names: Vec<String> = pending.iter().map(|n| label(n, s)).collect();
            return Err(anyhow::anyhow!(
                "timed out after {:?} waiting for {}",
                wait.timeout,
                names.join(", ")
            ))
            .context("the operation was requested but did not complete");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if wait.debug {
        eprintln!("done");
    }
    Ok(())
}
