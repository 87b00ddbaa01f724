//! `MountStatuses`: Talos's system volumes as they are mounted now, from
//! `/proc/self/mountinfo`. Ids are the partition labels Talos uses (`STATE` on
//! `/system/state`, `EPHEMERAL` on `/var`, `BOOT` on `/boot`, `EFI` on `/boot/EFI`); a volume
//! that is not a mount point has no resource.

use std::collections::BTreeSet;
use std::time::Duration;

use talos::constants;
use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::MountStatusSpec;
use talos::resources::ResourceSpec;

use super::Env;

/// How often mountinfo is read again.
const RESCAN: Duration = Duration::from_secs(10);

/// (id, mount point) of the volumes reported.
pub const SYSTEM_MOUNTS: &[(&str, &str)] = &[
    ("STATE", constants::STATE_MOUNT_POINT),
    ("EPHEMERAL", constants::EPHEMERAL_MOUNT_POINT),
    ("BOOT", "/boot"),
    ("EFI", "/boot/EFI"),
];

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Mount point.
    pub target: String,
    /// Per-mount options.
    pub options: Vec<String>,
    /// File system type.
    pub fstype: String,
    /// Source device.
    pub source: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo` (malformed lines are skipped).
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(MountInfo {
                target: unescape(pre.get(4)?),
                options: pre.get(5)?.split(',').map(str::to_string).collect(),
                fstype: post.first()?.to_string(),
                source: unescape(post.get(1)?),
            })
        })
        .collect()
}

/// Publishes mount statuses.
pub struct MountStatusController {
    env: Env,
}

impl MountStatusController {
    /// A controller reading `env`.
    pub fn new(env: Env) -> Self {
        MountStatusController { env }
    }
}

impl Controller for MountStatusController {
    fn name(&self) -> &'static str {
        "runtime.MountStatusController"
    }

    fn inputs(&self) -> Vec<Input> {
        Vec::new()
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![MountStatusSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let path = self.env.proc_root.join("self/mountinfo");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ControllerError::Other(format!("reading {}: {e}", path.display())))?;
        let mounts = parse_mountinfo(&text);
        let mut ids = BTreeSet::new();
        for (id, target) in SYSTEM_MOUNTS {
            // The last mount on a point is the visible one.
            if let Some(m) = mounts.iter().rev().find(|m| m.target == *target) {
                ctx.put_typed(
                    id,
                    &MountStatusSpec {
                        source: m.source.clone(),
                        target: m.target.clone(),
                        filesystem_type: m.fstype.clone(),
                        options: m.options.clone(),
                        encrypted: false,
                        encryption_providers: Vec::new(),
                    },
                )?;
                ids.insert(*id);
            }
        }
        ctx.retain(MountStatusSpec::NAMESPACE, MountStatusSpec::TYPE, |id| {
            ids.contains(id)
        })?;
        Ok(Action::Requeue(RESCAN))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::write;
    use super::*;
    use talos::resources::State;

    const MOUNTINFO: &str = "\
22 1 0:21 / / ro,relatime - squashfs /dev/loop0 ro
30 22 8:3 / /system/state rw,nosuid,nodev,relatime shared:5 - xfs /dev/sda3 rw,attr2
31 22 0:40 /node\\040a/var /var rw,relatime - tmpfs tmpfs rw
bogus line
";

    #[test]
    fn parses_mountinfo() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].target, "/system/state");
        assert_eq!(m[1].options, ["rw", "nosuid", "nodev", "relatime"]);
        assert_eq!(
            (m[1].fstype.as_str(), m[1].source.as_str()),
            ("xfs", "/dev/sda3")
        );
        assert_eq!(unescape("a\\040b"), "a b");
        assert_eq!(unescape("a\\04"), "a\\04");
    }

    #[tokio::test]
    async fn publishes_system_mounts() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "self/mountinfo", MOUNTINFO);
        let st = State::new();
        let ctx = Context::new(
            st.clone(),
            "runtime.MountStatusController",
            vec![MountStatusSpec::TYPE],
        );
        let mut c = MountStatusController::new(Env {
            proc_root: dir.path().to_path_buf(),
            mode: talos::config::Mode::Container,
        });
        c.reconcile(&ctx).await.unwrap();
        let ids: Vec<String> = st
            .list("runtime", MountStatusSpec::TYPE)
            .iter()
            .map(|r| r.metadata.id.clone())
            .collect();
        assert_eq!(ids, ["EPHEMERAL", "STATE"]);
        let state: MountStatusSpec = st.get_typed("STATE").unwrap();
        assert_eq!(state.filesystem_type, "xfs");
        write(
            dir.path(),
            "self/mountinfo",
            "22 1 0:21 / / ro - squashfs /dev/loop0 ro\n",
        );
        c.reconcile(&ctx).await.unwrap();
        assert!(st.list("runtime", MountStatusSpec::TYPE).is_empty());
    }
}
