//! `daemon.backup`: a consistent copy of the data directory, with a manifest.
//!
//! Choices:
//! - The files are copied, not hard-linked. A hard link shares the inode, so the next
//!   trade appended to a performance log would also change the backup; only files that
//!   memd replaces by rename could be linked, and those are small. Copying costs the size
//!   of the data (a few MB for a busy registry) and works across file systems.
//! - The copy is made while the writers are paused: the model store's (`ml`), the
//!   deployments' `state.json` saves (`supervisor`), the memory's, and every change to
//!   the registry's files (`registry`), held together. No writer waits on another's lock
//!   while it holds its own (the learning loop changes the registry after releasing the
//!   memory's; each log has one writer), so the order they are taken in does not matter.
//!   What waits meanwhile (a trade being recorded, a promotion) goes on once the copy is
//!   done; reads never wait. Before the copy the registry writes the live-trading
//!   summaries that were behind their trade logs, so the metadata copied agrees with the
//!   trades copied.
//! - The pause is kept short for large registries: the registry's logs only ever grow by
//!   whole lines, so their whole lines are copied first, writers running, and only what
//!   was appended since is copied in the pause (the same SHA-256 carried on).
//! - Files appended without one of those locks (the jobs' history, the audit of actions,
//!   the trade outbox, the bots' and the daemon's logs) are copied up to their last whole
//!   line, so no half-written line reaches a backup; the files rewritten by rename are
//!   read whole. Bots are other
//!   processes: a running bot's database is copied as it stands (its closed trades are
//!   in the registry).
//! - Left out: `memd.lock`, earlier backups (`backups/`), the Freqtrade virtualenv (made
//!   again by `memctl setup freqtrade`), temporary files of interrupted writes, and
//!   unless asked, the market candles (seeded again on the first start; large) and the
//!   daemon's logs. Symbolic links and sockets are not copied; they are listed.
//! - Modes are kept (the files holding credentials and tokens stay 0600); the backup's
//!   directory is 0700. `backup.json` is written last, fsynced, after every file is: a
//!   backup without it is incomplete, and `memctl restore` refuses it.

use crate::mem::service::Memory;
use crate::ml::service::MlService;
use crate::registry::Registry;
use crate::supervisor::Supervisor;
use chrono::Utc;
use mem_protocol::backup::*;
use mem_protocol::deploy::DeploymentStatus;
use mem_protocol::{ErrorCode, RpcError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tracing::info;

const METHOD: &str = "daemon.backup";

/// What a backup copies and whose writes it pauses: the daemon's data directory and its
/// writers (the request handler's and the scheduled job's road to the same backup).
#[derive(Clone)]
pub struct Sources {
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    pub ml: Arc<MlService>,
    pub supervisor: Arc<Supervisor>,
    pub memory: Arc<Memory>,
    pub registry: Arc<Registry>,
}

/// One backup at a time.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// A directory tree copied into the backup under `prefix`.
struct Source {
    root: PathBuf,
    prefix: &'static str,
    /// Copied while the writers are paused.
    paused: bool,
}

/// What was copied.
#[derive(Default)]
struct Copy {
    files: Vec<ManifestFile>,
    dirs: Vec<ManifestDir>,
    skipped: Vec<String>,
    bytes: u64,
    /// Logs whose beginning was copied before the pause, by their place in the backup.
    started: HashMap<String, Started>,
}

/// The beginning of an append-only log, copied before the pause.
struct Started {
    /// The file it came from: one replaced meanwhile (a new inode) is copied again.
    inode: (u64, u64),
    copied: u64,
    hasher: Sha256,
}

/// Logs smaller than this are copied in the pause in one go.
const PRECOPY_MIN_BYTES: u64 = 64 * 1024;

fn io_error(what: &str, path: &Path, e: std::io::Error) -> RpcError {
    RpcError::internal(format!("backup: cannot {what} {}: {e}", path.display()))
}

/// `daemon.backup`; runs on a blocking thread (it copies files).
pub fn backup(daemon: &Sources, params: BackupParams) -> Result<BackupReport, RpcError> {
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            RUNNING.store(false, Ordering::Release);
        }
    }
    if RUNNING.swap(true, Ordering::AcqRel) {
        return Err(RpcError::new(
            ErrorCode::Conflict,
            "a backup is already under way; wait for it",
        ));
    }
    let _running = Running;
    run(daemon, params)
}

/// The registry's directory, when it is on files.
fn registry_root(daemon: &Sources) -> Option<&std::path::Path> {
    daemon.registry.files().map(|f| f.paths().root.as_path())
}

/// The registry of a database copied into a registry on files in a temporary directory
/// (`registry.migrate`'s copy, read back and compared).
fn export_registry(daemon: &Sources) -> Result<tempfile::TempDir, RpcError> {
    let dir = tempfile::tempdir().map_err(|e| {
        RpcError::internal(format!("backup: cannot make a temporary directory: {e}"))
    })?;
    let report = daemon
        .registry
        .migrate(mem_protocol::registry::MigrateParams::Files {
            dir: dir.path().join("registry").display().to_string(),
        })
        .map_err(|e| RpcError::internal(format!("backup: cannot export the registry: {e}")))?;
    tracing::info!(
        strategies = report.strategies,
        trades = report.trades,
        checksum = %report.checksum,
        "backup: exported the registry from its database"
    );
    Ok(dir)
}

fn run(daemon: &Sources, params: BackupParams) -> Result<BackupReport, RpcError> {
    let started = Instant::now();
    let s = daemon;
    let data_dir = s.data_dir.clone();
    let others: Vec<&Path> = registry_root(daemon)
        .into_iter()
        .chain([daemon.ml.market_dir(), s.log_dir.as_path()])
        .collect();
    let target = check_target(&params.dir, &data_dir, &others)?;
    let created = !target.exists();
    if created {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&target)
            .map_err(|e| io_error("create", &target, e))?;
    }
    fs::set_permissions(&target, fs::Permissions::from_mode(0o700))
        .map_err(|e| io_error("set the mode of", &target, e))?;
    let result = write_backup(daemon, &params, &data_dir, &target, started);
    if result.is_err() {
        // Nothing half-made stays behind (it would have no manifest anyway).
        if created {
            let _ = fs::remove_dir_all(&target);
        } else if let Ok(entries) = fs::read_dir(&target) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
    result
}

fn write_backup(
    daemon: &Sources,
    params: &BackupParams,
    data_dir: &Path,
    target: &Path,
    started: Instant,
) -> Result<BackupReport, RpcError> {
    let s = daemon;
    let market_dir = daemon.ml.market_dir().to_path_buf();
    // A registry in a database is exported as a registry on files (the restore's), before
    // the pause: the database is shared, and other servers write on meanwhile anyway.
    let export = match registry_root(daemon) {
        Some(_) => None,
        None => Some(export_registry(daemon)?),
    };
    let registry_dir = match (&export, registry_root(daemon)) {
        (Some(dir), _) => dir.path().join("registry"),
        (None, Some(root)) => root.to_path_buf(),
        (None, None) => unreachable!("exported above"),
    };
    // Skipped in the walk of the data directory: runtime files, what is rebuilt, and the
    // trees copied under their own names below.
    let mut skip = vec![
        data_dir.join("memd.lock"),
        data_dir.join("backups"),
        data_dir.join("freqtrade-venv"),
        data_dir.join("market"),
        data_dir.join("logs"),
        data_dir.join("strategy_registry"),
        market_dir.clone(),
        s.log_dir.clone(),
        registry_dir.clone(),
        target.to_path_buf(),
    ];
    if let Ok(real) = target.canonicalize() {
        skip.push(real);
    }
    let mut excluded = vec![
        "memd.lock (the running daemon's lock)".to_string(),
        "backups/ (earlier backups)".into(),
        "freqtrade-venv/ (`memctl setup freqtrade` makes it again)".into(),
    ];
    let mut sources = vec![
        Source {
            root: registry_dir,
            prefix: "strategy_registry",
            paused: export.is_none(),
        },
        Source {
            root: data_dir.to_path_buf(),
            prefix: "",
            paused: true,
        },
    ];
    if params.with_market {
        sources.push(Source {
            root: market_dir,
            prefix: "market",
            paused: false,
        });
    } else {
        excluded.push(
            "market/ (candles: seeded again on the first start; --with-market copies them)".into(),
        );
    }
    if params.with_logs {
        sources.push(Source {
            root: s.log_dir.clone(),
            prefix: "logs",
            paused: false,
        });
    } else {
        excluded.push("logs/ (the daemon's logs; --with-logs copies them)".into());
    }

    let mut copy = Copy::default();
    let mut buf = vec![0u8; 256 * 1024];
    // Static data first, outside the pause, and the registry logs' whole lines so far.
    for source in sources.iter().filter(|s| !s.paused) {
        copy_tree(source, &source.root, target, &skip, &mut copy, &mut buf)?;
    }
    if sources[0].paused {
        precopy_logs(&sources[0], &sources[0].root, target, &mut copy, &mut buf)?;
    }
    // The writers, held together (in any order: none waits on another's lock while
    // holding its own).
    let paused = daemon.ml.with_writes_paused(|| {
        let paused = Instant::now();
        daemon.supervisor.with_saves_paused(|| {
            daemon.memory.with_writes_paused(|| {
                daemon.registry.with_writes_paused(|| {
                    for source in sources.iter().filter(|s| s.paused) {
                        copy_tree(source, &source.root, target, &skip, &mut copy, &mut buf)?;
                    }
                    Ok::<_, RpcError>(())
                })
            })
        })?;
        Ok::<_, RpcError>(paused.elapsed())
    })?;
    // A log begun before the pause and removed meanwhile is not part of the backup.
    for (rel, _) in copy.started.drain() {
        let _ = fs::remove_file(target.join(rel));
    }
    let paused_millis = paused.as_millis() as u64;

    // Durable before the manifest says the backup is complete.
    for file in &copy.files {
        let path = target.join(&file.path);
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error("sync", &path, e))?;
    }
    for dir in copy
        .dirs
        .iter()
        .map(|d| target.join(&d.path))
        .chain([target.to_path_buf()])
    {
        File::open(&dir)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error("sync", &dir, e))?;
    }

    copy.files.sort_by(|a, b| a.path.cmp(&b.path));
    copy.dirs.sort_by(|a, b| a.path.cmp(&b.path));
    let counts = count(target);
    let created_at = Utc::now();
    let manifest = Manifest {
        format: FORMAT,
        memd_version: env!("CARGO_PKG_VERSION").into(),
        created_at,
        source_data_dir: data_dir.display().to_string(),
        excluded: excluded.clone(),
        counts: counts.clone(),
        paused_millis,
        total_bytes: copy.bytes,
        dirs: copy.dirs,
        files: copy.files,
    };
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| RpcError::internal(format!("backup: cannot encode the manifest: {e}")))?;
    crate::datadir::write_atomic(&target.join(MANIFEST), &bytes, 0o600)
        .map_err(|e| RpcError::internal(format!("backup: {e:#}")))?;
    let took_millis = started.elapsed().as_millis() as u64;
    info!(
        dir = %target.display(),
        files = manifest.files.len(),
        bytes = manifest.total_bytes,
        paused_millis,
        took_millis,
        "backup written"
    );
    Ok(BackupReport {
        dir: target.display().to_string(),
        created_at,
        counts,
        files: manifest.files.len(),
        bytes: manifest.total_bytes,
        paused_millis,
        took_millis,
        excluded,
        skipped: copy.skipped,
    })
}

/// Checks the target: absolute, plain (no `.` or `..`), its parent an existing directory,
/// itself absent or an empty directory (not a link), outside the data directory but for
/// `{data_dir}/backups/`, and outside the `others` trees copied (a registry, market or
/// log directory configured elsewhere). Answers it with its parent resolved.
fn check_target(dir: &str, data_dir: &Path, others: &[&Path]) -> Result<PathBuf, RpcError> {
    let bad = |why: String| RpcError::invalid_params(METHOD, format!("field `dir`: {why}"));
    let path = Path::new(dir);
    if !path.is_absolute() {
        return Err(bad(format!("{dir:?} is not an absolute path")));
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
    {
        return Err(bad(format!("{dir:?} has `.` or `..` in it")));
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(bad(format!("{dir:?} names no directory")));
    };
    let parent = parent.canonicalize().map_err(|e| {
        bad(format!(
            "its parent {} cannot be used: {e}",
            parent.display()
        ))
    })?;
    if !parent.is_dir() {
        return Err(bad(format!("{} is not a directory", parent.display())));
    }
    let target = parent.join(name);
    match fs::symlink_metadata(&target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bad(format!("{}: {e}", target.display()))),
        Ok(meta) if !meta.is_dir() => {
            return Err(bad(format!(
                "{} exists and is not a directory",
                target.display()
            )));
        }
        Ok(_) => {
            let mut entries =
                fs::read_dir(&target).map_err(|e| bad(format!("{}: {e}", target.display())))?;
            if entries.next().is_some() {
                return Err(bad(format!(
                    "{} is not empty; give a new or empty directory",
                    target.display()
                )));
            }
        }
    }
    let data = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    if target.starts_with(&data) && !target.starts_with(data.join("backups")) {
        return Err(bad(format!(
            "{} is inside the data directory {}; use {}/backups/ or another place",
            target.display(),
            data.display(),
            data.display()
        )));
    }
    for tree in others {
        let tree = tree.canonicalize().unwrap_or_else(|_| tree.to_path_buf());
        if target.starts_with(&tree) {
            return Err(bad(format!(
                "{} is inside {}, which the backup copies",
                target.display(),
                tree.display()
            )));
        }
    }
    Ok(target)
}

/// Copies `dir` (inside `source.root`) into the backup, recursively.
fn copy_tree(
    source: &Source,
    dir: &Path,
    target: &Path,
    skip: &[PathBuf],
    copy: &mut Copy,
    buf: &mut [u8],
) -> Result<(), RpcError> {
    let mut entries: Vec<fs::DirEntry> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<_, _>>()
            .map_err(|e| io_error("list", dir, e))?,
        // A tree that does not exist yet (no logs, no market data) is simply empty.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == source.root => {
            return Ok(());
        }
        Err(e) => return Err(io_error("list", dir, e)),
    };
    entries.sort_by_key(|e| e.file_name());
    let relative_dir = relative(source, dir);
    if !relative_dir.is_empty() {
        let mode = fs::symlink_metadata(dir)
            .map_err(|e| io_error("read", dir, e))?
            .permissions()
            .mode()
            & 0o7777;
        let dest = target.join(&relative_dir);
        if !dest.is_dir() {
            fs::DirBuilder::new()
                .mode(mode | 0o700)
                .create(&dest)
                .map_err(|e| io_error("create", &dest, e))?;
        }
        copy.dirs.push(ManifestDir {
            path: relative_dir,
            mode,
        });
    }
    for entry in entries {
        let path = entry.path();
        if skip.contains(&path) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            continue; // a write cut short by a crash: debris, not data
        }
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // just removed
            Err(e) => return Err(io_error("read", &path, e)),
        };
        let rel = relative(source, &path);
        if meta.is_dir() {
            copy_tree(source, &path, target, skip, copy, buf)?;
        } else if meta.is_file() {
            let mode = meta.permissions().mode() & 0o7777;
            let started = copy.started.remove(&rel);
            let whole_lines = whole_lines_only(&rel);
            let (size, hasher) =
                match copy_file(&path, &target.join(&rel), mode, whole_lines, started, buf) {
                    Ok(done) => done,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // just removed
                    Err(e) => return Err(io_error("copy", &path, e)),
                };
            let sha256 = format!("{:x}", hasher.finalize());
            copy.bytes += size;
            copy.files.push(ManifestFile {
                path: rel,
                size,
                mode,
                sha256,
            });
        } else {
            copy.skipped.push(rel);
        }
    }
    Ok(())
}

/// Copies the whole lines of the registry's larger logs (`*.jsonl`, append-only), the
/// writers running; the pause then copies only what was appended since.
fn precopy_logs(
    source: &Source,
    dir: &Path,
    target: &Path,
    copy: &mut Copy,
    buf: &mut [u8],
) -> Result<(), RpcError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(()); // the pause walks it again and reports what is wrong
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let rel = relative(source, &path);
        if meta.is_dir() {
            precopy_logs(source, &path, target, copy, buf)?;
        } else if meta.is_file() && rel.ends_with(".jsonl") && meta.len() >= PRECOPY_MIN_BYTES {
            let mode = meta.permissions().mode() & 0o7777;
            match copy_file(&path, &target.join(&rel), mode, true, None, buf) {
                Ok((copied, hasher)) => {
                    let inode = (meta.dev(), meta.ino());
                    copy.started.insert(
                        rel,
                        Started {
                            inode,
                            copied,
                            hasher,
                        },
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("copy", &path, e)),
            }
        }
    }
    Ok(())
}

/// `path`'s place in the backup: `source.prefix` joined with its path under the root.
fn relative(source: &Source, path: &Path) -> String {
    let inner = path
        .strip_prefix(&source.root)
        .expect("walked from the root")
        .to_string_lossy()
        .into_owned();
    match (source.prefix, inner.is_empty()) {
        ("", _) => inner,
        (prefix, true) => prefix.to_string(),
        (prefix, false) => format!("{prefix}/{inner}"),
    }
}

/// Files appended without a lock the backup holds: copied up to their last whole line.
fn whole_lines_only(rel: &str) -> bool {
    (rel.starts_with("mem_knowledge/") && (rel.ends_with(".jsonl") || rel.ends_with(".txt")))
        || (rel.starts_with("jobs/") && rel.ends_with(".jsonl"))
        || (rel.starts_with("audit/") && rel.ends_with(".jsonl"))
        || rel == "trade-outbox.jsonl"
        || (rel.starts_with("deployments/") && rel.ends_with(".log"))
        || rel.starts_with("logs/")
}

/// Copies one file (the bytes it has now, or up to its last newline), with `mode`, into
/// `dest`: a new file, or, after `started`, the rest of a log begun before. Answers the
/// bytes `dest` holds and their SHA-256 so far.
fn copy_file(
    src: &Path,
    dest: &Path,
    mode: u32,
    whole_lines: bool,
    started: Option<Started>,
    buf: &mut [u8],
) -> std::io::Result<(u64, Sha256)> {
    let mut input = File::open(src)?;
    let meta = input.metadata()?;
    let len = meta.len();
    let keep = if whole_lines {
        crate::linelog::whole_len(&mut input, len)?
    } else {
        len
    };
    let (mut output, mut hasher, from) = match started {
        // Appended to since: only the new bytes are read.
        Some(s) if s.copied <= keep && s.inode == (meta.dev(), meta.ino()) => (
            OpenOptions::new().append(true).open(dest)?,
            s.hasher,
            s.copied,
        ),
        started => {
            if started.is_some() {
                fs::remove_file(dest)?; // replaced or cut meanwhile: copied again in full
            }
            if let Some(parent) = dest.parent() {
                if !parent.is_dir() {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)?;
                }
            }
            let output = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(dest)?;
            // The umask may have cut bits.
            output.set_permissions(fs::Permissions::from_mode(mode))?;
            (output, Sha256::new(), 0)
        }
    };
    input.seek(SeekFrom::Start(from))?;
    let mut remaining = keep - from;
    while remaining > 0 {
        let want = remaining.min(buf.len() as u64) as usize;
        let n = input.read(&mut buf[..want])?;
        if n == 0 {
            break; // cut short meanwhile: what was read is what the backup holds
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n])?;
        remaining -= n as u64;
    }
    Ok((keep - remaining, hasher))
}

/// Reads a backup back against its manifest: every file it lists is there with its size
/// and SHA-256. Answers how many files were checked, or what is wrong (the first few).
pub fn verify(backup: &Path) -> Result<usize, String> {
    let path = backup.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))?;
    let mut problems = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    for file in &manifest.files {
        let sum = File::open(backup.join(&file.path)).and_then(|mut f| {
            let (mut hasher, mut len) = (Sha256::new(), 0u64);
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                len += n as u64;
            }
            let hex: String = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Ok((len, hex))
        });
        match sum {
            Err(e) => problems.push(format!("{}: {e}", file.path)),
            Ok((len, _)) if len != file.size => problems.push(format!(
                "{}: {len} bytes, the manifest says {}",
                file.path, file.size
            )),
            Ok((_, hex)) if hex != file.sha256 => problems.push(format!(
                "{}: its SHA-256 differs from the manifest's",
                file.path
            )),
            Ok(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(manifest.files.len())
    } else {
        let more = problems.len().saturating_sub(5);
        problems.truncate(5);
        Err(format!(
            "{} does not match its manifest: {}{}",
            backup.display(),
            problems.join("; "),
            if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            }
        ))
    }
}

/// Whole, non-empty lines of a file.
fn lines_of(path: &Path) -> u64 {
    crate::linelog::read_whole(path).map_or(0, |bytes| crate::linelog::lines(&bytes).count() as u64)
}

/// Counts what the backup at `target` holds, from its files.
fn count(target: &Path) -> BackupCounts {
    let mut counts = BackupCounts::default();
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    };
    let registry = target.join("strategy_registry");
    counts.strategies = names(&registry.join("metadata"))
        .iter()
        .filter(|n| n.ends_with(".json"))
        .count();
    let performance = registry.join("performance");
    for name in names(&performance) {
        let Some(stem) = name.strip_suffix(".jsonl") else {
            continue;
        };
        let id = stem.strip_suffix("_trades").unwrap_or(stem);
        let lines = lines_of(&performance.join(&name));
        counts.trades += lines;
        *counts.trades_by_strategy.entry(id.to_string()).or_default() += lines;
    }
    let models = target.join("models/trend_reversal");
    counts.model_versions = names(&models)
        .iter()
        .filter(|n| crate::ml::store::valid_version_name(n) && models.join(n).is_dir())
        .count();
    counts.current_model = fs::read_to_string(models.join("current"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if let Ok(bytes) = fs::read(target.join("deployments/state.json")) {
        if let Ok(saved) = serde_json::from_slice::<Vec<serde_json::Value>>(&bytes) {
            counts.deployments = saved.len();
            counts.active_deployments = saved
                .iter()
                .filter(|d| {
                    serde_json::from_value::<DeploymentStatus>(d["public"]["status"].clone())
                        .is_ok_and(|s| s.is_active())
                })
                .count();
        }
    }
    counts.decision_log_lines = lines_of(&target.join("mem_knowledge/decisions.jsonl"));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("log.jsonl");
        fs::write(&src, b"{\"a\":1}\n{\"a\":2}\n{\"a\"").unwrap();
        let mut buf = vec![0u8; 4]; // smaller than the file: the search goes back in steps
        let (size, sha) =
            copy_file(&src, &dir.path().join("copy"), 0o600, true, None, &mut buf).unwrap();
        let sha = format!("{:x}", sha.finalize());
        assert_eq!(size, 16);
        assert_eq!(
            fs::read(dir.path().join("copy")).unwrap(),
            b"{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(
            sha,
            format!("{:x}", Sha256::digest(b"{\"a\":1}\n{\"a\":2}\n"))
        );
        let mode = fs::metadata(dir.path().join("copy"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(lines_of(&src), 2);
        // Not a log: copied whole.
        let (size, _) = copy_file(
            &src,
            &dir.path().join("whole"),
            0o640,
            false,
            None,
            &mut buf,
        )
        .unwrap();
        assert_eq!(size, 20);
    }

    #[test]
    fn a_log_begun_before_the_pause_is_finished_with_what_was_appended() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("log.jsonl"), dir.path().join("copy"));
        fs::write(&src, b"one\ntwo\nthr").unwrap();
        let mut buf = vec![0u8; 3];
        let (copied, hasher) = copy_file(&src, &dest, 0o640, true, None, &mut buf).unwrap();
        assert_eq!(copied, 8);
        let inode = {
            let m = fs::metadata(&src).unwrap();
            (m.dev(), m.ino())
        };
        let started = Started {
            inode,
            copied,
            hasher,
        };
        let mut f = OpenOptions::new().append(true).open(&src).unwrap();
        f.write_all(b"ee\nfour\n").unwrap();
        let (size, hasher) = copy_file(&src, &dest, 0o640, false, Some(started), &mut buf).unwrap();
        assert_eq!(size, 19);
        assert_eq!(fs::read(&dest).unwrap(), b"one\ntwo\nthree\nfour\n");
        assert_eq!(
            format!("{:x}", hasher.finalize()),
            format!("{:x}", Sha256::digest(b"one\ntwo\nthree\nfour\n"))
        );
        // Replaced meanwhile (another inode): copied again from the start.
        let (copied, hasher) =
            copy_file(&src, &dir.path().join("c2"), 0o640, true, None, &mut buf).unwrap();
        let started = Started {
            inode,
            copied,
            hasher,
        };
        fs::write(dir.path().join("new"), b"other\n").unwrap();
        fs::rename(dir.path().join("new"), &src).unwrap();
        let (size, hasher) = copy_file(
            &src,
            &dir.path().join("c2"),
            0o640,
            false,
            Some(started),
            &mut buf,
        )
        .unwrap();
        assert_eq!(size, 6);
        assert_eq!(fs::read(dir.path().join("c2")).unwrap(), b"other\n");
        assert_eq!(
            format!("{:x}", hasher.finalize()),
            format!("{:x}", Sha256::digest(b"other\n"))
        );
    }

    #[test]
    fn the_target_must_be_new_or_empty_absolute_and_outside_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("backups")).unwrap();
        let logs = dir.path().join("logs");
        fs::create_dir(&logs).unwrap();
        let check = |d: &str| check_target(d, &data, &[logs.as_path()]);
        let err = |d: &str| check(d).unwrap_err().message;
        assert!(err(&format!("{}/b", logs.display())).contains("which the backup copies"));
        assert!(err("relative/x").contains("not an absolute path"));
        let dotted = format!("{}/../x", dir.path().display());
        assert!(err(&dotted).contains("`..`"));
        let inside = format!("{}/x", data.display());
        assert!(err(&inside).contains("inside the data directory"));
        let orphan = format!("{}/no/such/x", dir.path().display());
        assert!(err(&orphan).contains("parent"));
        fs::create_dir(dir.path().join("full")).unwrap();
        fs::write(dir.path().join("full/f"), b"x").unwrap();
        let full = format!("{}/full", dir.path().display());
        assert!(err(&full).contains("not empty"));
        assert!(check(&format!("{}/backups/b1", data.display())).is_ok());
        fs::create_dir(dir.path().join("empty")).unwrap();
        assert!(check(&format!("{}/empty", dir.path().display())).is_ok());
    }
}
