//! The file RPCs: List, Read, Copy (tar.gz) and DiskUsage.
//!
//! All of them walk the filesystem like Talos's walker: `lstat` (symlinks are reported, not
//! followed, except a symlinked root), entries of a directory in lexical order, depth-first,
//! a directory before its entries. The walking runs on a blocking thread and feeds a bounded
//! channel, so a slow or vanished client stops the walk instead of buffering it.

use std::fs::Metadata;
use std::io::{Read as _, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use talos::api::common;
use talos::api::machine::{self as pb, list_request::Type as ListType};
use talos::sys::fs::go_file_mode;
use tokio::sync::mpsc;
use tonic::codegen::BoxStream;
use tonic::{Response, Status};

use super::{io_status, stream_channel, Machined};

/// Size of one data chunk in Read and Copy streams.
pub const CHUNK: usize = 64 * 1024;

/// A walked path.
#[derive(Debug)]
pub struct WalkItem {
    /// Full path.
    pub full_path: String,
    /// Path relative to the walk root (`.` for a directory root, the base name for a file root).
    pub rel_path: String,
    /// `lstat` of the path, when it could be read.
    pub meta: Option<Metadata>,
    /// Symlink target.
    pub link: String,
    /// What went wrong with this path.
    pub error: Option<String>,
}

/// Walk settings.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// How many levels below the root to descend; negative: no limit. The root's own entries
    /// are always listed.
    pub max_depth: i32,
    /// Only these kinds (empty: all).
    pub types: Vec<ListType>,
    /// Leave the root directory itself out.
    pub skip_root: bool,
}

fn matches_type(meta: &Metadata, types: &[ListType]) -> bool {
    types.is_empty()
        || types.iter().any(|t| match t {
            ListType::Regular => meta.file_type().is_file(),
            ListType::Directory => meta.is_dir(),
            ListType::Symlink => meta.file_type().is_symlink(),
        })
}

/// Normalises an API path like Talos: absolute, no trailing slash, `/` for empty.
pub fn normalize_root(root: &str) -> String {
    let mut root = if root.starts_with('/') {
        root.to_string()
    } else {
        format!("/{root}")
    };
    while root.len() > 1 && root.ends_with('/') {
        root.pop();
    }
    root
}

/// Walks `root`, calling `visit` for each item until it returns false. Fails only when the
/// root itself cannot be examined.
pub fn walk(
    root: &str,
    options: &WalkOptions,
    visit: &mut dyn FnMut(WalkItem) -> bool,
) -> std::io::Result<()> {
    let mut root = PathBuf::from(root);
    let mut meta = std::fs::symlink_metadata(&root)?;
    if meta.file_type().is_symlink() {
        root = std::fs::canonicalize(&root)?;
        meta = std::fs::symlink_metadata(&root)?;
    }
    let rel = if meta.is_dir() {
        ".".to_string()
    } else {
        root.file_name()
            .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned())
    };
    walk_path(&root, rel, meta, 0, true, options, visit);
    Ok(())
}

/// Returns false when the walk must stop.
fn walk_path(
    path: &Path,
    rel: String,
    meta: Metadata,
    depth: i32,
    is_root: bool,
    options: &WalkOptions,
    visit: &mut dyn FnMut(WalkItem) -> bool,
) -> bool {
    let full_path = path.to_string_lossy().into_owned();
    let is_dir = meta.is_dir();
    let show = matches_type(&meta, &options.types) && !(is_root && options.skip_root && is_dir);
    if show {
        let mut item = WalkItem {
            full_path: full_path.clone(),
            rel_path: rel.clone(),
            meta: None,
            link: String::new(),
            error: None,
        };
        if meta.file_type().is_symlink() {
            match std::fs::read_link(path) {
                Ok(target) => item.link = target.to_string_lossy().into_owned(),
                Err(e) => item.error = Some(e.to_string()),
            }
        }
        if item.error.is_none() {
            item.meta = Some(meta);
        }
        if !visit(item) {
            return false;
        }
    }
    let descend = is_dir && (is_root || options.max_depth < 0 || depth < options.max_depth);
    if !descend {
        return true;
    }
    let mut names = match std::fs::read_dir(path) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect::<Vec<_>>(),
        Err(e) => {
            return visit(WalkItem {
                full_path,
                rel_path: rel,
                meta: None,
                link: String::new(),
                error: Some(e.to_string()),
            })
        }
    };
    names.sort();
    for name in names {
        let child = path.join(&name);
        let child_rel = if is_root && rel == "." {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let keep_going = match std::fs::symlink_metadata(&child) {
            Ok(m) => walk_path(&child, child_rel, m, depth + 1, false, options, visit),
            Err(e) => visit(WalkItem {
                full_path: child.to_string_lossy().into_owned(),
                rel_path: child_rel,
                meta: None,
                link: String::new(),
                error: Some(e.to_string()),
            }),
        };
        if !keep_going {
            return false;
        }
    }
    true
}

fn walk_error(root: &str, e: &std::io::Error) -> Status {
    io_status(e.kind(), format!("{root}: {e}"))
}

/// `List`.
pub async fn list(
    req: pb::ListRequest,
    _state: &Machined,
) -> Result<Response<BoxStream<pb::FileInfo>>, Status> {
    let root = normalize_root(&req.root);
    let max_depth = match (req.recurse, req.recursion_depth) {
        (false, _) => 0,
        (true, 0) => -1,
        (true, d) => d,
    };
    let types = req
        .types
        .iter()
        .filter_map(|t| ListType::try_from(*t).ok())
        .collect();
    let options = WalkOptions {
        max_depth,
        types,
        skip_root: false,
    };
    std::fs::symlink_metadata(&root).map_err(|e| walk_error(&root, &e))?;
    let (tx, stream) = stream_channel();
    tokio::task::spawn_blocking(move || {
        let result = walk(&root, &options, &mut |item| {
            tx.blocking_send(Ok(file_info(item))).is_ok()
        });
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(walk_error(&root, &e)));
        }
    });
    Ok(Response::new(stream))
}

fn file_info(item: WalkItem) -> pb::FileInfo {
    let mut info = pb::FileInfo {
        name: item.full_path,
        relative_name: item.rel_path,
        link: item.link,
        ..Default::default()
    };
    match (item.meta, item.error) {
        (Some(meta), None) => {
            info.size = i64::try_from(meta.len()).unwrap_or(i64::MAX);
            info.mode = go_file_mode(meta.mode());
            info.modified = meta.mtime();
            info.is_dir = meta.is_dir();
            info.uid = meta.uid();
            info.gid = meta.gid();
        }
        (_, error) => info.error = error.unwrap_or_else(|| "unknown error".into()),
    }
    info
}

/// `Read`: the contents of a regular file.
pub async fn read(req: pb::ReadRequest) -> Result<Response<BoxStream<common::Data>>, Status> {
    let path = req.path;
    let meta = std::fs::metadata(&path).map_err(|e| walk_error(&path, &e))?;
    if !meta.is_file() {
        return Err(Status::invalid_argument(format!(
            "{path}: path must be a regular file"
        )));
    }
    let mut file = std::fs::File::open(&path).map_err(|e| walk_error(&path, &e))?;
    let (tx, stream) = stream_channel();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let data = common::Data {
                        metadata: None,
                        bytes: buf[..n].to_vec(),
                    };
                    if tx.blocking_send(Ok(data)).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(walk_error(&path, &e)));
                    break;
                }
            }
        }
    });
    Ok(Response::new(stream))
}

/// Writes into a response stream in [`CHUNK`]-sized `Data` messages.
struct ChunkWriter {
    tx: mpsc::Sender<Result<common::Data, Status>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = common::Data {
            metadata: None,
            bytes: std::mem::take(&mut self.buf),
        };
        self.tx
            .blocking_send(Ok(data))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Adds one walked item to the archive.
fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    item: &WalkItem,
    meta: &Metadata,
) -> std::io::Result<()> {
    let ft = meta.file_type();
    let mut header = tar::Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header.set_size(0);
    let name = &item.rel_path;
    if ft.is_dir() {
        header.set_entry_type(tar::EntryType::Directory);
        return builder.append_data(&mut header, format!("{name}/"), std::io::empty());
    }
    if ft.is_symlink() {
        header.set_entry_type(tar::EntryType::Symlink);
        return builder.append_link(&mut header, name, &item.link);
    }
    use std::os::unix::fs::FileTypeExt as _;
    if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
        header.set_entry_type(if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        });
        let rdev = meta.rdev();
        header.set_device_major(nix::sys::stat::major(rdev) as u32)?;
        header.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
        return builder.append_data(&mut header, name, std::io::empty());
    }
    if ft.is_socket() {
        return Err(std::io::Error::other("sockets cannot be archived"));
    }
    header.set_entry_type(tar::EntryType::Regular);
    let mut file = std::fs::File::open(&item.full_path)?;
    if meta.len() == 0 {
        // /proc and /sys files report size 0 yet have contents: take them if they are small.
        let mut small = vec![0u8; 4096];
        let n = match file.read(&mut small) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => 0,
            Err(e) => return Err(e),
        };
        let body = if n < small.len() {
            &small[..n]
        } else {
            &[][..]
        };
        header.set_size(body.len() as u64);
        return builder.append_data(&mut header, name, body);
    }
    header.set_size(meta.len());
    builder.append_data(&mut header, name, file.take(meta.len()))
}

/// `Copy`: a gzipped tar of a path (a directory's contents, or one file), streamed in chunks.
/// Paths that cannot be archived are skipped and reported in a final message's metadata error.
pub async fn copy(req: pb::CopyRequest) -> Result<Response<BoxStream<common::Data>>, Status> {
    let root = req.root_path;
    if !root.starts_with('/') {
        return Err(Status::invalid_argument(format!(
            "path is not absolute {root}"
        )));
    }
    let root = normalize_root(&root);
    std::fs::symlink_metadata(&root).map_err(|e| walk_error(&root, &e))?;
    let (tx, stream) = stream_channel();
    tokio::task::spawn_blocking(move || {
        let writer = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
        let mut builder = tar::Builder::new(gz);
        let mut problems: Vec<String> = Vec::new();
        let mut broken = false;
        let options = WalkOptions {
            max_depth: -1,
            types: Vec::new(),
            skip_root: true,
        };
        let walked = walk(&root, &options, &mut |item| {
            if tx.is_closed() {
                broken = true;
                return false;
            }
            let result = match (&item.meta, &item.error) {
                (Some(meta), None) => append_entry(&mut builder, &item, meta),
                (_, error) => Err(std::io::Error::other(
                    error.clone().unwrap_or_else(|| "unknown error".into()),
                )),
            };
            match result {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    broken = true;
                    false
                }
                Err(e) => {
                    problems.push(format!("skipping {:?}: {e}", item.full_path));
                    true
                }
            }
        });
        if broken {
            return;
        }
        if let Err(e) = walked {
            problems.push(format!("{root}: {e}"));
        }
        let finished = builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .and_then(|mut w| w.flush());
        if let Err(e) = finished {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return;
            }
            problems.push(format!("finishing the archive: {e}"));
        }
        if !problems.is_empty() {
            let data = common::Data {
                metadata: Some(common::Metadata {
                    error: problems.join("; "),
                    ..Default::default()
                }),
                bytes: Vec::new(),
            };
            let _ = tx.blocking_send(Ok(data));
        }
    });
    Ok(Response::new(stream))
}

/// DiskUsage filters.
struct UsageFilter {
    depth: i32,
    all: bool,
    threshold: i64,
}

impl UsageFilter {
    fn shows(&self, depth: i32, size: i64, is_dir: bool) -> bool {
        !((self.depth > 0 && depth >= self.depth)
            || (!is_dir && !self.all)
            || (self.threshold > 0 && size < self.threshold)
            || (self.threshold < 0 && size > -self.threshold))
    }
}

/// Sums sizes below `path`, sending entries (files as met, a directory after its contents).
/// Returns the size, or `None` when the client went away.
fn usage(
    path: &Path,
    rel: &str,
    meta: &Metadata,
    depth: i32,
    filter: &UsageFilter,
    send: &mut dyn FnMut(pb::DiskUsageInfo) -> bool,
) -> Option<i64> {
    let full = path.to_string_lossy().into_owned();
    let own = if full == "/proc/kcore" {
        0
    } else {
        i64::try_from(meta.len()).unwrap_or(i64::MAX)
    };
    let info = |size: i64| pb::DiskUsageInfo {
        metadata: None,
        name: full.clone(),
        size,
        error: String::new(),
        relative_name: rel.to_string(),
    };
    if !meta.is_dir() {
        if filter.shows(depth, own, false) && !send(info(own)) {
            return None;
        }
        return Some(own);
    }
    let mut total = own;
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut names: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            for name in names {
                let child = path.join(&name);
                let child_rel = if rel == "." {
                    name.to_string_lossy().into_owned()
                } else {
                    format!("{rel}/{}", name.to_string_lossy())
                };
                match std::fs::symlink_metadata(&child) {
                    Ok(m) => total += usage(&child, &child_rel, &m, depth + 1, filter, send)?,
                    Err(e) => {
                        let item = pb::DiskUsageInfo {
                            metadata: None,
                            name: child.to_string_lossy().into_owned(),
                            size: 0,
                            error: e.to_string(),
                            relative_name: child_rel,
                        };
                        if !send(item) {
                            return None;
                        }
                    }
                }
            }
        }
        Err(e) => {
            let mut item = info(0);
            item.error = e.to_string();
            if !send(item) {
                return None;
            }
        }
    }
    if filter.shows(depth, total, true) && !send(info(total)) {
        return None;
    }
    Some(total)
}

/// `DiskUsage`.
pub async fn disk_usage(
    req: pb::DiskUsageRequest,
) -> Result<Response<BoxStream<pb::DiskUsageInfo>>, Status> {
    let (tx, stream) = stream_channel();
    tokio::task::spawn_blocking(move || {
        let filter = UsageFilter {
            depth: req.recursion_depth,
            all: req.all,
            threshold: req.threshold,
        };
        let mut send = |info: pb::DiskUsageInfo| tx.blocking_send(Ok(info)).is_ok();
        for path in &req.paths {
            let path = normalize_root(path);
            let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| PathBuf::from(&path));
            let meta = match std::fs::symlink_metadata(&resolved) {
                Ok(m) => m,
                Err(e) => {
                    let item = pb::DiskUsageInfo {
                        metadata: None,
                        name: path.clone(),
                        size: 0,
                        error: e.to_string(),
                        relative_name: path.clone(),
                    };
                    if !send(item) {
                        return;
                    }
                    continue;
                }
            };
            let rel = if meta.is_dir() {
                ".".to_string()
            } else {
                resolved
                    .file_name()
                    .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned())
            };
            if usage(&resolved, &rel, &meta, 0, &filter, &mut send).is_none() {
                return;
            }
        }
    });
    Ok(Response::new(stream))
}
