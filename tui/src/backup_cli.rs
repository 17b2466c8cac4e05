//! `memctl backup [DIR]` (memd copies its data, writers paused) and `memctl restore
//! BACKUP --data-dir DIR` (offline: no daemon involved).
//!
//! Restore checks the whole backup against its manifest first (every file present with
//! its size), then copies it into a staging directory beside (or inside) the target,
//! checking each file's SHA-256 on the way, and moves it into place only when all is
//! well: a damaged backup restores nothing, and names the file at fault. The target must
//! be new or empty. Deployment records are moved to the new directory (their paths
//! rewritten), and the deployments that were running are recorded as stopped unless
//! `--resume-deployments`: a restored daemon must not start twins of the bots the
//! original daemon may still run. Nothing secret is printed: the backup holds the bots'
//! credentials and the HTTP tokens, in files that stay 0600.

use crate::cli::print_json;
use anyhow::{Context, bail};
use mem_protocol::Client;
use mem_protocol::backup::*;
use mem_protocol::deploy::DeploymentStatus;
use mem_protocol::methods::{NoParams, method};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long memctl waits for memd to write a backup.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);

/// The mode of a restored data directory (memd makes its data directory 0750).
const DATA_DIR_MODE: u32 = 0o750;

fn size_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn counts_text(c: &BackupCounts) -> String {
    let model = match (&c.current_model, c.model_versions) {
        (_, 0) => "no model".to_string(),
        (Some(current), n) => format!("{n} model versions (current {current})"),
        (None, n) => format!("{n} model versions (none current)"),
    };
    format!(
        "{} strategies, {} trades, {model}, {} deployments ({} active), {} decision-log lines",
        c.strategies, c.trades, c.deployments, c.active_deployments, c.decision_log_lines
    )
}

/// An absolute path for `dir` (relative to the working directory), its parent resolved.
fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the working directory")?
            .join(dir)
    };
    let name = dir
        .file_name()
        .with_context(|| format!("{} names no directory", dir.display()))?;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let parent = parent
        .canonicalize()
        .with_context(|| format!("{} cannot be used", parent.display()))?;
    Ok(parent.join(name))
}

/// `memctl backup [DIR]`: the default DIR is `./memd-backup-YYYYmmddTHHMMSS`, or under
/// the data directory's `backups/` for a system daemon (its sandbox writes nowhere else).
pub async fn backup(
    client: &Client,
    dir: Option<PathBuf>,
    with_market: bool,
    with_logs: bool,
    json: bool,
) -> anyhow::Result<()> {
    let dir = match dir {
        Some(dir) => absolute(&dir)?,
        None => {
            let name = format!(
                "memd-backup-{}",
                chrono::Local::now().format("%Y%m%dT%H%M%S")
            );
            let status = client.call::<method::DaemonStatus>(NoParams {}).await?;
            if status.mode == "system" {
                let backups = Path::new(&status.data_dir).join("backups");
                if !backups.is_dir() {
                    bail!(
                        "give a directory: the system daemon can only write under its data directory, and {} does not exist (create it, owned by memd, mode 0700)",
                        backups.display()
                    );
                }
                backups.join(name)
            } else {
                absolute(Path::new(&name))?
            }
        }
    };
    let report = client
        .call_with_timeout::<method::DaemonBackup>(
            BackupParams {
                dir: dir.display().to_string(),
                with_market,
                with_logs,
            },
            BACKUP_TIMEOUT,
        )
        .await?;
    if json {
        return print_json(&report);
    }
    println!("backup written to {}", report.dir);
    println!("  {}", counts_text(&report.counts));
    println!(
        "  {} files, {}; writers paused {} ms, {} ms in all",
        report.files,
        size_text(report.bytes),
        report.paused_millis,
        report.took_millis
    );
    for left_out in &report.excluded {
        println!("  left out: {left_out}");
    }
    for skipped in &report.skipped {
        println!("  not copied (not a regular file): {skipped}");
    }
    println!(
        "  it holds the bots' credentials and the HTTP tokens: keep it private (the directory is 0700)"
    );
    println!(
        "restore with: memctl restore {} --data-dir NEW_DIR",
        report.dir
    );
    Ok(())
}

/// What `memctl restore` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    pub backup: String,
    /// `None` for `--check`.
    pub data_dir: Option<String>,
    pub backup_created_at: chrono::DateTime<chrono::Utc>,
    pub memd_version: String,
    pub counts: BackupCounts,
    pub files: usize,
    pub bytes: u64,
    /// Deployments that were running when the backup was made, now recorded as stopped.
    pub deployments_stopped: Vec<String>,
    /// Paths in deployment records moved from the old data directory to the new one.
    pub paths_rewritten: usize,
}

/// A path of the manifest as a relative path that stays inside the backup.
fn inside(path: &str) -> anyhow::Result<PathBuf> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !ok {
        bail!("the manifest names {path:?}, which is not a plain relative path: refused");
    }
    Ok(PathBuf::from(path))
}

/// Reads and checks the manifest, and that every file it lists is there with its size.
fn checked_manifest(backup: &Path) -> anyhow::Result<Manifest> {
    let path = backup.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !backup.is_dir() {
                bail!("{} is not a directory", backup.display());
            }
            bail!(
                "{} is not a complete backup: it has no {MANIFEST} (memd writes it last, so the backup was interrupted, or this is not a memd backup); nothing was restored",
                backup.display()
            );
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a valid manifest", path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} has format {}; this memctl reads format {FORMAT}",
            path.display(),
            manifest.format
        );
    }
    let mut problems = Vec::new();
    for dir in &manifest.dirs {
        inside(&dir.path)?;
    }
    for file in &manifest.files {
        let rel = inside(&file.path)?;
        match fs::symlink_metadata(backup.join(&rel)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!("{}: missing", file.path));
            }
            Err(e) => problems.push(format!("{}: {e}", file.path)),
            Ok(meta) if !meta.is_file() => {
                problems.push(format!("{}: not a regular file", file.path));
            }
            Ok(meta) if meta.len() != file.size => problems.push(format!(
                "{}: {} bytes, the manifest says {} (truncated or changed)",
                file.path,
                meta.len(),
                file.size
            )),
            Ok(_) => {}
        }
    }
    if !problems.is_empty() {
        let shown = problems.len().min(20);
        let more = match problems.len() - shown {
            0 => String::new(),
            n => format!("\n  and {n} more"),
        };
        bail!(
            "the backup {} is damaged; nothing was restored:\n  {}{more}",
            backup.display(),
            problems[..shown].join("\n  ")
        );
    }
    Ok(manifest)
}

/// Copies `src` to a new file `dest` with `mode` (or only reads it, without `dest`),
/// checking its SHA-256 against `expected`.
fn copy_checked(
    src: &Path,
    dest: Option<&Path>,
    mode: u32,
    expected: &str,
    shown: &str,
) -> anyhow::Result<()> {
    let mut input = File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut output = match dest {
        Some(dest) => {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(dest)
                .with_context(|| format!("cannot create {}", dest.display()))?;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            Some(file)
        }
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", src.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(out) = output.as_mut() {
            out.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", dest.unwrap().display()))?;
        }
    }
    if format!("{:x}", hasher.finalize()) != expected {
        bail!(
            "{shown}: its contents differ from the manifest's checksum (the backup is damaged); nothing was restored"
        );
    }
    if let Some(out) = output {
        out.sync_all()?;
    }
    Ok(())
}

/// Replaces `old` (the backed-up data directory) by `new` in every string of `value`.
fn rewrite_paths(value: &mut Value, old: &str, new: &str) -> usize {
    match value {
        Value::String(s) => {
            let prefix = format!("{old}/");
            if s == old {
                *s = new.to_string();
                1
            } else if s.contains(&prefix) {
                *s = s.replace(&prefix, &format!("{new}/"));
                1
            } else {
                0
            }
        }
        Value::Array(items) => items.iter_mut().map(|v| rewrite_paths(v, old, new)).sum(),
        Value::Object(map) => map.values_mut().map(|v| rewrite_paths(v, old, new)).sum(),
        _ => 0,
    }
}

/// Rewrites a JSON file in place (same mode), crash-safely.
fn rewrite_json(path: &Path, change: impl FnOnce(&mut Value)) -> anyhow::Result<()> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(()); // not JSON: left as it is
    };
    change(&mut value);
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    let tmp = path.with_extension("json.restore-tmp");
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(&serde_json::to_vec_pretty(&value)?)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// Moves the deployment records to `new_data_dir` and marks the running ones stopped
/// (unless `resume`). Answers the deployments stopped and the paths rewritten.
fn adapt_deployments(
    staging: &Path,
    manifest: &Manifest,
    new_data_dir: &Path,
    resume: bool,
) -> anyhow::Result<(Vec<String>, usize)> {
    let root = staging.join("deployments");
    let (old, new) = (
        manifest.source_data_dir.trim_end_matches('/').to_string(),
        new_data_dir.display().to_string(),
    );
    let mut rewritten = 0;
    let mut stopped = Vec::new();
    let state = root.join("state.json");
    if state.is_file() {
        let note = format!(
            "restored from a backup of {}: not restarted (deploy it again)",
            manifest.created_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        rewrite_json(&state, |value| {
            if old != new {
                rewritten += rewrite_paths(value, &old, &new);
            }
            let Some(deployments) = value.as_array_mut() else {
                return;
            };
            for d in deployments {
                let public = &mut d["public"];
                let active = serde_json::from_value::<DeploymentStatus>(public["status"].clone())
                    .is_ok_and(|s| s.is_active());
                if active && !resume {
                    public["status"] = Value::from("stopped");
                    public["lastError"] = Value::from(note.clone());
                    stopped.push(format!(
                        "{} ({})",
                        public["strategyName"].as_str().unwrap_or("?"),
                        public["deploymentId"].as_str().unwrap_or("?")
                    ));
                }
            }
        })?;
    }
    if old != new {
        for entry in fs::read_dir(&root).into_iter().flatten().flatten() {
            let config = entry.path().join("config.json");
            if config.is_file() {
                rewrite_json(&config, |value| {
                    rewritten += rewrite_paths(value, &old, &new);
                })?;
            }
        }
    }
    Ok((stopped, rewritten))
}

/// Where the restore is assembled, and how it is put in place.
enum Staging {
    /// Beside a target that does not exist yet: renamed to it at the end.
    Beside(PathBuf),
    /// Inside an existing empty target (it may be a mount point): its entries are moved
    /// up at the end.
    Inside(PathBuf),
}

impl Staging {
    fn dir(&self) -> &Path {
        match self {
            Staging::Beside(p) | Staging::Inside(p) => p,
        }
    }
}

/// The restore in the restored directory's audit of actions (`audit/actions.jsonl`, as
/// memd writes it): its newest line says where the data came from, when, and who restored
/// it. Written before the directory is moved into place, synced.
fn record_restore(staging: &Path, backup: &Path, stopped: &[String]) -> anyhow::Result<()> {
    let dir = staging.join("audit");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut params = serde_json::Map::new();
    params.insert("backup".into(), backup.display().to_string().into());
    params.insert("deploymentsStopped".into(), stopped.len().into());
    let entry = mem_protocol::audit::ActionEntry {
        at: chrono::Utc::now(),
        action: "daemon.restore".into(),
        uid: Some(nix::unistd::getuid().as_raw()),
        client: Some(concat!("memctl ", env!("CARGO_PKG_VERSION")).into()),
        params,
        outcome: mem_protocol::audit::ActionOutcome::Ok,
        error: None,
    };
    let mut line = serde_json::to_vec(&entry)?;
    line.push(b'\n');
    let path = dir.join("actions.jsonl");
    let written = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&path)?;
        file.write_all(&line)?;
        file.sync_all()
    })();
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// `memctl restore BACKUP --data-dir DIR` (or `--check`: verify only).
pub fn restore(
    backup: &Path,
    data_dir: Option<&Path>,
    check: bool,
    resume_deployments: bool,
    json: bool,
) -> anyhow::Result<()> {
    let manifest = checked_manifest(backup)?;
    let mut report = RestoreReport {
        backup: backup.display().to_string(),
        data_dir: None,
        backup_created_at: manifest.created_at,
        memd_version: manifest.memd_version.clone(),
        counts: manifest.counts.clone(),
        files: manifest.files.len(),
        bytes: manifest.total_bytes,
        deployments_stopped: vec![],
        paths_rewritten: 0,
    };
    if check {
        for file in &manifest.files {
            copy_checked(&backup.join(&file.path), None, 0, &file.sha256, &file.path)?;
        }
        if json {
            return print_json(&report);
        }
        println!(
            "{}: a complete backup of {} (memd {}), every file as its manifest says",
            backup.display(),
            manifest.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            manifest.memd_version
        );
        println!("  {}", counts_text(&manifest.counts));
        println!(
            "  {} files, {}",
            manifest.files.len(),
            size_text(manifest.total_bytes)
        );
        return Ok(());
    }
    let Some(data_dir) = data_dir else {
        bail!("give the data directory to restore into: --data-dir DIR (new or empty)");
    };
    let target = absolute(data_dir)?;
    let staging = match fs::symlink_metadata(&target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = target.file_name().expect("absolute() keeps a name");
            Staging::Beside(target.with_file_name(format!(
                ".{}.restoring-{}",
                name.to_string_lossy(),
                std::process::id()
            )))
        }
        Err(e) => return Err(e).with_context(|| format!("cannot use {}", target.display())),
        Ok(meta) if !meta.is_dir() => bail!(
            "{} exists and is not a directory; restore into a new or empty directory",
            target.display()
        ),
        Ok(_) => {
            let entries: Vec<String> = fs::read_dir(&target)
                .with_context(|| format!("cannot list {}", target.display()))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            if !entries.is_empty() {
                bail!(
                    "{} is not empty ({} entries, such as {}); restore only into a new or empty directory, so that no data is mixed or overwritten",
                    target.display(),
                    entries.len(),
                    entries[0]
                );
            }
            Staging::Inside(target.join(format!(".memd-restore-{}", std::process::id())))
        }
    };
    let result = assemble(backup, &manifest, &staging, &target, resume_deployments);
    let (stopped, rewritten) = match result
        .and_then(|done| record_restore(staging.dir(), backup, &done.0).map(|()| done))
    {
        Ok(done) => done,
        Err(e) => {
            let _ = fs::remove_dir_all(staging.dir());
            return Err(e);
        }
    };
    match &staging {
        Staging::Beside(dir) => {
            fs::rename(dir, &target).with_context(|| {
                format!("cannot move {} to {}", dir.display(), target.display())
            })?;
        }
        Staging::Inside(dir) => {
            for entry in fs::read_dir(dir)?.flatten() {
                fs::rename(entry.path(), target.join(entry.file_name())).with_context(|| {
                    format!(
                        "cannot move {} into {}",
                        entry.path().display(),
                        target.display()
                    )
                })?;
            }
            fs::remove_dir(dir)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(DATA_DIR_MODE))?;
        }
    }
    if let Some(parent) = target.parent() {
        File::open(parent)?.sync_all()?;
    }
    File::open(&target)?.sync_all()?;
    report.data_dir = Some(target.display().to_string());
    report.deployments_stopped = stopped;
    report.paths_rewritten = rewritten;
    if json {
        return print_json(&report);
    }
    println!(
        "restored the backup of {} (memd {}) into {}",
        manifest.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        manifest.memd_version,
        target.display()
    );
    println!("  {}", counts_text(&manifest.counts));
    println!(
        "  {} files, {}",
        manifest.files.len(),
        size_text(manifest.total_bytes)
    );
    for d in &report.deployments_stopped {
        println!("  recorded as stopped (it was running; deploy it again): {d}");
    }
    if !manifest.excluded.is_empty() {
        println!(
            "  not in the backup: {}",
            manifest
                .excluded
                .iter()
                .map(|e| e.split(' ').next().unwrap_or(e))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "start memd on it with: memd --data-dir {}",
        target.display()
    );
    Ok(())
}

/// Copies the backup into the staging directory and adapts it; answers what
/// [`adapt_deployments`] did.
fn assemble(
    backup: &Path,
    manifest: &Manifest,
    staging: &Staging,
    target: &Path,
    resume: bool,
) -> anyhow::Result<(Vec<String>, usize)> {
    let root = staging.dir();
    fs::DirBuilder::new()
        .mode(0o700)
        .create(root)
        .with_context(|| format!("cannot create {}", root.display()))?;
    let mut dirs = manifest.dirs.clone();
    dirs.sort_by(|a, b| a.path.cmp(&b.path)); // parents first
    for dir in &dirs {
        let path = root.join(&dir.path);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
    }
    for file in &manifest.files {
        let dest = root.join(&file.path);
        if let Some(parent) = dest.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        copy_checked(
            &backup.join(&file.path),
            Some(&dest),
            file.mode,
            &file.sha256,
            &file.path,
        )?;
    }
    let done = adapt_deployments(root, manifest, target, resume)?;
    // The directories' own modes, deepest first (a parent's may forbid writing into it).
    for dir in dirs.iter().rev() {
        let path = root.join(&dir.path);
        fs::set_permissions(&path, fs::Permissions::from_mode(dir.mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        File::open(&path)?.sync_all()?;
    }
    if matches!(staging, Staging::Beside(_)) {
        fs::set_permissions(root, fs::Permissions::from_mode(DATA_DIR_MODE))?;
    }
    File::open(root)?.sync_all()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_of_the_old_data_directory_move_and_nothing_else() {
        let mut v = json!({
            "dir": "/srv/old/deployments/x",
            "db": "sqlite:////srv/old/deployments/x/t.sqlite",
            "same": "/srv/old",
            "other": "/srv/older/file",
            "list": ["/srv/old/a", 3],
        });
        assert_eq!(rewrite_paths(&mut v, "/srv/old", "/srv/new"), 4);
        assert_eq!(
            v,
            json!({
                "dir": "/srv/new/deployments/x",
                "db": "sqlite:////srv/new/deployments/x/t.sqlite",
                "same": "/srv/new",
                "other": "/srv/older/file",
                "list": ["/srv/new/a", 3],
            })
        );
    }

    #[test]
    fn manifest_paths_stay_inside() {
        for bad in ["", "/etc/passwd", "a/../../x", "./a", "a//b", ".."] {
            assert!(inside(bad).is_err(), "{bad:?}");
        }
        assert!(inside("strategy_registry/metadata/x.json").is_ok());
    }
}
