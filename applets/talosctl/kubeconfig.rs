//! `talosctl kubeconfig [local-path]`: downloads the admin kubeconfig from a control plane and
//! merges it into `~/.kube/config` (or `$KUBECONFIG`, or the given path), renaming clashing
//! entries (`<name>-1`) unless `--force`; `--merge=false` writes the file as is (into the
//! current directory by default). A directory path means `<dir>/kubeconfig`. Files are 0600.

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use talos::k8s::kubeconfig::{Component, Conflict, Kubeconfig, KubeconfigError};

use super::files::drain_data;
use super::session::{self, Session};
use super::Global;

/// `talosctl kubeconfig` flags.
#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    /// Where to write or merge the kubeconfig.
    pub local_path: Option<String>,
    /// Force overwrite of kubeconfig if already present, force overwrite on kubeconfig merge
    #[arg(short, long)]
    pub force: bool,
    /// Force context name for kubeconfig merge
    #[arg(long, default_value = "")]
    pub force_context_name: String,
    /// Merge with existing kubeconfig
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub merge: bool,
}

/// `$KUBECONFIG` when it names one file, else `~/.kube/config`.
pub fn default_path() -> anyhow::Result<PathBuf> {
    let env = std::env::var_os("KUBECONFIG").unwrap_or_default();
    let paths: Vec<PathBuf> = std::env::split_paths(&env)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    match paths.len() {
        0 => {
            let home = std::env::var_os("HOME").context("HOME is not set")?;
            Ok(PathBuf::from(home).join(".kube/config"))
        }
        1 => Ok(paths[0].clone()),
        _ => anyhow::bail!("multiple kubeconfig files defined"),
    }
}

/// The file `kubeconfig` from a tar.gz.
pub fn extract(archive: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in tar.entries().context("error reading the archive")? {
        let mut entry = entry.context("error reading the archive")?;
        if entry.path().is_ok_and(|p| p == Path::new("kubeconfig")) {
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .context("error reading kubeconfig from the archive")?;
            return Ok(data);
        }
    }
    anyhow::bail!("kubeconfig not found in the archive")
}

fn write_0600(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    talos::fsutil::write_atomic(
        path,
        data,
        talos::fsutil::WriteOptions {
            mode: 0o600,
            overwrite: true,
        },
    )
    .with_context(|| format!("error writing {}", path.display()))
}

fn ask(component: Component, name: &str) -> Result<Conflict, KubeconfigError> {
    let stdin = std::io::stdin();
    loop {
        print!(
            "{} {name:?} already exists [(r)ename/(o)verwrite]: ",
            component.word()
        );
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            return Err(KubeconfigError::Invalid("no answer on stdin".into()));
        }
        match line.trim().to_lowercase().as_str() {
            "overwrite" | "o" => return Ok(Conflict::Overwrite),
            "rename" | "r" => return Ok(Conflict::Rename),
            _ => {}
        }
    }
}

/// Merges `data` into the kubeconfig at `path`, printing renames.
pub fn merge_into(
    path: &Path,
    data: &[u8],
    force: bool,
    force_context_name: &str,
) -> anyhow::Result<()> {
    let new = Kubeconfig::parse(&String::from_utf8_lossy(data))
        .context("error loading the new kubeconfig")?;
    let existing = std::fs::read_to_string(path)
        .with_context(|| format!("error reading {}", path.display()))?;
    let mut merged = Kubeconfig::parse(&existing)
        .with_context(|| format!("error loading {}", path.display()))?;
    let interactive = std::io::stdout().is_terminal();
    let messages = merged.merge(&new, force_context_name, |component, name| {
        if force {
            Ok(Conflict::Overwrite)
        } else if !interactive {
            Ok(Conflict::Rename)
        } else {
            ask(component, name)
        }
    })?;
    for m in messages {
        println!("{m}");
    }
    write_0600(path, merged.to_yaml().as_bytes())
}

/// Where the kubeconfig goes, and whether to merge (Talos's rules).
fn target(args: &KubeconfigArgs) -> anyhow::Result<(PathBuf, bool)> {
    let raw = match &args.local_path {
        Some(p) => PathBuf::from(p),
        None if args.merge => default_path()?,
        None => std::env::current_dir().context("error getting current working directory")?,
    };
    let mut path: PathBuf = raw.components().collect();
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => path = path.join("kubeconfig"),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("error checking path {:?}", path.display().to_string()))
        }
    }
    let mut merge = args.merge;
    match std::fs::metadata(&path) {
        Ok(_) if !(args.force || args.merge) => anyhow::bail!(
            "kubeconfig file already exists, use --force to overwrite: {:?}",
            path.display().to_string()
        ),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => merge = false,
        Err(e) => {
            return Err(e)
                .with_context(|| format!("error checking path {:?}", path.display().to_string()))
        }
    }
    Ok((path, merge))
}

/// Runs `kubeconfig`.
pub fn run(args: KubeconfigArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        s.single_node("kubeconfig")?;
        let (path, merge) = target(&args)?;
        let stream = s
            .client
            .machine()
            .kubeconfig(s.request(())?)
            .await
            .map_err(|e| session::call_error("error copying", e))?
            .into_inner();
        let mut archive = Vec::new();
        drain_data(&s, stream, "error copying", |b| {
            archive.extend_from_slice(b);
            Ok(())
        })
        .await?;
        let data = extract(&archive)?;
        if merge {
            merge_into(&path, &data, args.force, &args.force_context_name)
        } else {
            write_0600(&path, &data)
        }
    })
}
