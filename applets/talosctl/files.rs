//! Files on the node: `list`, `read`, `copy`, `usage`.

use std::io::{Read, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;

use anyhow::Context as _;
use talos::api::common::Metadata;
use talos::api::machine as pb;
use tokio_stream::StreamExt as _;

use super::format::{go_file_mode, humanize_bytes, humanize_time, TabWriter};
use super::session::{self, NodeErrors, Session};
use super::Global;

/// Flags of `list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The directory to list (default `/`).
    path: Option<String>,
    /// Display additional file details.
    #[arg(short = 'l', long)]
    long: bool,
    /// Recurse into subdirectories.
    #[arg(short = 'r', long)]
    recurse: bool,
    /// Humanize size and time in the output.
    #[arg(short = 'H', long)]
    humanize: bool,
    /// Maximum recursion depth.
    #[arg(short = 'd', long, default_value_t = 1)]
    depth: i32,
    /// Filter by specified types: f (regular file), d (directory), l, L (symbolic link).
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    types: Vec<String>,
}

/// Arguments of `read`.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// The file to read.
    path: String,
}

/// Arguments of `copy`.
#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The path on the node.
    src: String,
    /// `-` for a .tar.gz on stdout, else a local directory to extract into.
    dest: String,
}

/// Flags of `usage`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// Paths to measure (default `/`).
    paths: Vec<String>,
    /// Humanize size and time in the output.
    #[arg(short = 'H', long)]
    humanize: bool,
    /// Write counts for all files, not just directories.
    #[arg(short = 'a', long)]
    all: bool,
    /// Threshold: exclude entries smaller than SIZE if positive, or entries greater than SIZE if negative.
    #[arg(short = 't', long, default_value_t = 0, allow_negative_numbers = true)]
    threshold: i64,
    /// Maximum recursion depth.
    #[arg(short = 'd', long, default_value_t = 0)]
    depth: i32,
}

fn stream_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("error streaming results: {}", session::status_text(&s))
}

/// Talos's node naming in streams: the metadata hostname marks a multi-node reply.
fn stream_node(s: &Session, md: Option<&Metadata>) -> (String, bool) {
    match md {
        Some(m) if !m.hostname.is_empty() => (m.hostname.clone(), true),
        _ => (s.client.peer_host(), false),
    }
}

fn list_types(types: &[String]) -> anyhow::Result<Vec<i32>> {
    let mut out = Vec::new();
    for t in types {
        for c in t.chars() {
            let ty = match c {
                'f' => pb::list_request::Type::Regular,
                'd' => pb::list_request::Type::Directory,
                'l' | 'L' => pb::list_request::Type::Symlink,
                other => anyhow::bail!("invalid file type: {other}"),
            };
            out.push(ty as i32);
        }
    }
    Ok(out)
}

fn format_modified(modified: i64, humanize: bool) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if humanize {
        return humanize_time(now - modified);
    }
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(modified) else {
        return modified.to_string();
    };
    let month = &format!("{:?}", t.month())[..3];
    const SIX_MONTHS: i64 = 6 * 30 * 24 * 3600;
    if now - modified < SIX_MONTHS {
        format!(
            "{month} {:>2} {:02}:{:02}:{:02}",
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    } else {
        format!(
            "{month} {:>2} {} {:02}:{:02}",
            t.day(),
            t.year(),
            t.hour(),
            t.minute()
        )
    }
}

/// Runs `list`.
pub fn list(args: ListArgs, global: &Global) -> anyhow::Result<()> {
    if args.recurse && args.depth != 1 {
        anyhow::bail!("only one of flags --recurse and --depth can be specified at the same time");
    }
    let types = list_types(&args.types)?;
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let depth = if args.recurse { -1 } else { args.depth };
        let req = pb::ListRequest {
            root: args.path.clone().unwrap_or_else(|| "/".to_string()),
            recurse: depth > 1 || args.recurse,
            recursion_depth: depth,
            types,
        };
        let mut stream = s
            .client
            .machine()
            .list(s.request(req)?)
            .await
            .map_err(|e| session::call_error("error listing files", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let mut w = TabWriter::new();
        if args.long {
            w.line("NODE\tMODE\tUID\tGID\tSIZE(B)\tLASTMOD\tNAME");
        } else {
            w.line("NODE\tNAME");
        }
        let mut plain = Vec::new();
        let mut rows = 0usize;
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(e) if e.code() == tonic::Code::Cancelled => break,
                Err(e) => {
                    print!("{}", w.finish());
                    return Err(stream_error(e));
                }
            };
            if errors.check(&s, info.metadata.as_ref()) {
                continue;
            }
            let (node, multiple) = stream_node(&s, info.metadata.as_ref());
            if !info.error.is_empty() {
                errors.report(
                    &node,
                    &format!("error reading file {}: {}", info.name, info.error),
                );
                continue;
            }
            if !args.long {
                if multiple {
                    rows += 1;
                    w.row(&[node.as_str(), info.relative_name.as_str()]);
                } else {
                    plain.push(info.relative_name);
                }
                continue;
            }
            let mut display = info.relative_name.clone();
            if !info.link.is_empty() {
                display = format!("{display} -> {}", info.link);
            }
            let size = if args.humanize {
                humanize_bytes(u64::try_from(info.size).unwrap_or_default())
            } else {
                info.size.to_string()
            };
            rows += 1;
            w.row(&[
                node,
                go_file_mode(info.mode),
                info.uid.to_string(),
                info.gid.to_string(),
                size,
                format_modified(info.modified, args.humanize),
                display,
            ]);
        }
        // Without -l, names of a reply without node metadata (a direct connection) are
        // printed bare, as talosctl does; the table is then left out.
        if plain.is_empty() || rows > 0 {
            w.print();
        }
        for name in plain {
            println!("{name}");
        }
        errors.finish()
    })
}

/// Reads a data stream (Read, Copy) and hands each chunk to `sink`; metadata errors fail.
pub(crate) async fn drain_data(
    s: &Session,
    mut stream: tonic::Streaming<talos::api::common::Data>,
    what: &str,
    mut sink: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    while let Some(item) = stream.next().await {
        let data = match item {
            Ok(d) => d,
            Err(e) if e.code() == tonic::Code::Cancelled => break,
            Err(e) => return Err(anyhow::anyhow!("{what}: {}", session::status_text(&e))),
        };
        if let Some(md) = data.metadata.as_ref().filter(|m| !m.error.is_empty()) {
            anyhow::bail!("{what}: {}: {}", s.node_of(Some(md)), md.error);
        }
        sink(&data.bytes)?;
    }
    Ok(())
}

/// Runs `read`.
pub fn read(args: ReadArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        s.single_node("read")?;
        let stream = s
            .client
            .machine()
            .read(s.request(pb::ReadRequest { path: args.path })?)
            .await
            .map_err(|e| session::call_error("error reading file", e))?
            .into_inner();
        let mut out = std::io::stdout().lock();
        drain_data(&s, stream, "error reading", |b| {
            out.write_all(b).context("error writing to stdout")
        })
        .await?;
        out.flush().context("error writing to stdout")
    })
}

/// A blocking reader over chunks arriving on a channel.
struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Cleans an archive path: no root, no `..`; `None` when nothing is left.
fn clean_entry_path(name: &Path) -> anyhow::Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                anyhow::bail!("archive entry {:?} leaves the target directory", name)
            }
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

/// Refuses to write through a symlink that the archive (or anyone) placed under `root`.
fn check_no_symlink_parent(root: &Path, rel: &Path) -> anyhow::Result<()> {
    let mut cur = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            cur.push(c);
            if let Ok(meta) = std::fs::symlink_metadata(&cur) {
                if meta.file_type().is_symlink() {
                    anyhow::bail!(
                        "refusing to extract {}: {} is a symbolic link",
                        rel.display(),
                        cur.display()
                    );
                }
            }
        }
    }
    Ok(())
}

/// Extracts a .tar.gz into `root` like talosctl: directories get owner rwx added, files and
/// symlinks are created (never overwriting), ownership is not restored.
pub fn extract_tar_gz(root: &Path, reader: impl Read) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;

    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let entries = archive.entries().context("error reading tar archive")?;
    for entry in entries {
        let mut entry = entry.context("error reading tar header")?;
        let name = entry
            .path()
            .context("error reading tar header")?
            .into_owned();
        let Some(rel) = clean_entry_path(&name)? else {
            continue;
        };
        check_no_symlink_parent(root, &rel)?;
        let path = root.join(&rel);
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        match header.entry_type() {
            tar::EntryType::Directory => {
                let mode = mode | 0o700;
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {}
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("error creating directory {}", path.display())
                        })
                    }
                }
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .with_context(|| format!("error updating mode for {}", path.display()))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .context("error reading tar header")?
                    .unwrap_or_default()
                    .into_owned();
                std::os::unix::fs::symlink(&target, &path).with_context(|| {
                    format!(
                        "error creating symlink {} -> {}",
                        path.display(),
                        target.display()
                    )
                })?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .with_context(|| format!("error creating file {}", path.display()))?;
                std::io::copy(&mut entry, &mut file)
                    .with_context(|| format!("error copying data to {}", path.display()))?;
                file.set_permissions(std::fs::Permissions::from_mode(mode))
                    .with_context(|| format!("error updating mode for {}", path.display()))?;
            }
            // Hard links, devices, FIFOs: not extracted (talosctl writes them as files;
            // creating device nodes locally makes no sense).
            _ => {}
        }
    }
    Ok(())
}

/// Runs `copy`.
pub fn copy(args: CopyArgs, global: &Global) -> anyhow::Result<()> {
    let local = if args.dest == "-" {
        None
    } else {
        let path = PathBuf::from(&args.dest);
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_dir() => {
                anyhow::bail!("local path {:?} should be a directory", args.dest)
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&path)
                    .with_context(|| format!("error creating local path {:?}", args.dest))?;
            }
            Err(e) => return Err(e).context("failed to stat local path"),
        }
        Some(path)
    };
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        s.single_node("copy")?;
        let stream = s
            .client
            .machine()
            .copy(s.request(pb::CopyRequest {
                root_path: args.src,
            })?)
            .await
            .map_err(|e| session::call_error("error copying", e))?
            .into_inner();
        match local {
            None => {
                let mut out = std::io::stdout().lock();
                drain_data(&s, stream, "error copying", |b| {
                    out.write_all(b).context("error writing to stdout")
                })
                .await?;
                out.flush().context("error writing to stdout")
            }
            Some(root) => {
                let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
                let extractor = std::thread::spawn(move || {
                    extract_tar_gz(
                        &root,
                        ChunkReader {
                            rx,
                            buf: Vec::new(),
                            pos: 0,
                        },
                    )
                });
                let streamed = drain_data(&s, stream, "error copying", |b| {
                    // A closed channel means the extractor stopped; its error is reported below.
                    let _ = tx.send(b.to_vec());
                    Ok(())
                })
                .await;
                drop(tx);
                let extracted = extractor
                    .join()
                    .map_err(|_| anyhow::anyhow!("archive extraction panicked"))?;
                streamed?;
                extracted
            }
        }
    })
}

/// Runs `usage`.
pub fn usage(args: UsageArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let paths = if args.paths.is_empty() {
            vec!["/".to_string()]
        } else {
            args.paths.clone()
        };
        let req = pb::DiskUsageRequest {
            recursion_depth: args.depth + 1,
            all: args.all,
            threshold: args.threshold,
            paths,
        };
        let mut stream = s
            .client
            .machine()
            .disk_usage(s.request(req)?)
            .await
            .map_err(|e| session::call_error("error fetching disk usage", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let mut w = TabWriter::new();
        let mut header = false;
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(e) if e.code() == tonic::Code::Cancelled => break,
                Err(e) => {
                    print!("{}", w.finish());
                    return Err(stream_error(e));
                }
            };
            if errors.check(&s, info.metadata.as_ref()) {
                continue;
            }
            let (node, multiple) = stream_node(&s, info.metadata.as_ref());
            if !info.error.is_empty() {
                errors.report(&node, &info.error);
                continue;
            }
            let size = if args.humanize {
                humanize_bytes(u64::try_from(info.size).unwrap_or_default())
            } else {
                info.size.to_string()
            };
            if !header {
                w.line(if multiple {
                    "NODE\tSIZE\tNAME"
                } else {
                    "SIZE\tNAME"
                });
                header = true;
            }
            if multiple {
                w.row(&[node, size, info.relative_name]);
            } else {
                w.row(&[size, info.relative_name]);
            }
        }
        w.print();
        errors.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_confined() {
        assert_eq!(
            clean_entry_path(Path::new("/etc/hosts")).unwrap(),
            Some(PathBuf::from("etc/hosts"))
        );
        assert_eq!(clean_entry_path(Path::new("./")).unwrap(), None);
        assert!(clean_entry_path(Path::new("a/../../x")).is_err());
    }

    #[test]
    fn list_type_letters() {
        assert_eq!(
            list_types(&["fd".into(), "L".into()]).unwrap(),
            vec![0, 1, 2]
        );
        assert!(list_types(&["x".into()]).is_err());
    }

    #[test]
    fn extract_refuses_symlink_escape() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        builder.append_link(&mut h, "evil", "/tmp").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        builder.append_data(&mut h, "evil/x", &b"x"[..]).unwrap();
        let gz = builder.into_inner().unwrap().finish().unwrap();
        let err = extract_tar_gz(dir.path(), &gz[..]).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
