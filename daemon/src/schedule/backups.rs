//! The `backup` job: a backup (`daemon.backup`'s) into a directory of its own under
//! `[schedule.backup] dir`, read back against its manifest, then the job's oldest backups
//! beyond `keep` removed. A failure is a failed run (and the `job_failed` alert); the
//! backup it could not verify is left for a look, and nothing older is removed.

use super::Done;
use super::config::BackupPolicy;
use crate::backup::{self, Sources};
use chrono::Utc;
use mem_protocol::backup::{BackupParams, MANIFEST};
use serde_json::json;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The job's backups are the directories named so (and only they are ever removed).
const PREFIX: &str = "memd-backup-";

/// One run of the job, on a blocking thread.
pub(super) fn run(sources: &Sources, policy: &BackupPolicy) -> Done {
    match back_up(sources, policy) {
        Ok(done) => done,
        Err(e) => Done::Fail(e, serde_json::Value::Null),
    }
}

fn back_up(sources: &Sources, policy: &BackupPolicy) -> Result<Done, String> {
    let dir = policy
        .dir
        .clone()
        .unwrap_or_else(|| sources.data_dir.join("backups"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot make the backup directory {}: {e}", dir.display()))?;
    // Milliseconds: names sort by time, and two runs in a second do not collide.
    let name = format!("{PREFIX}{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    let target = dir.join(&name);
    let report = backup::backup(
        sources,
        BackupParams {
            dir: target.display().to_string(),
            with_market: policy.with_market,
            with_logs: false,
        },
    )
    .map_err(|e| e.message)?;
    let files = backup::verify(&target)
        .map_err(|e| format!("{e}; the backup is left as it is, no older one was removed"))?;
    let removed = prune(&dir, policy.keep, &name)?;
    Ok(Done::Ok(
        format!(
            "{name}: {files} files, {} bytes, verified against its manifest; {} older removed, {} kept",
            report.bytes,
            removed.len(),
            policy.keep
        ),
        json!({
            "dir": target,
            "files": files,
            "bytes": report.bytes,
            "pausedMillis": report.paused_millis,
            "removed": removed,
        }),
    ))
}

/// Removes the job's backups in `dir` but the newest `keep` complete ones (`newest`, just
/// written, among them), and the incomplete ones (no manifest: a run that was killed);
/// anything else in `dir` is left alone. Answers the names removed.
fn prune(dir: &Path, keep: usize, newest: &str) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list the backup directory {}: {e}", dir.display()))?;
    let mut complete = Vec::new();
    let mut incomplete = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PREFIX) || !entry.path().is_dir() || name.as_str() > newest {
            continue;
        }
        if entry.path().join(MANIFEST).is_file() {
            complete.push(name);
        } else {
            incomplete.push(name);
        }
    }
    complete.sort();
    let old = complete.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for name in complete.drain(..old).chain(incomplete) {
        let path: PathBuf = dir.join(&name);
        std::fs::remove_dir_all(&path)
            .map_err(|e| format!("cannot remove the old backup {}: {e}", path.display()))?;
        removed.push(name);
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_jobs_oldest_complete_backups_and_its_broken_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, complete: bool| {
            let path = dir.path().join(name);
            std::fs::create_dir(&path).unwrap();
            if complete {
                std::fs::write(path.join(MANIFEST), "{}").unwrap();
            }
        };
        make("memd-backup-20261201T000000.000Z", true);
        make("memd-backup-20261202T000000.000Z", true);
        make("memd-backup-20261203T000000.000Z", false); // killed mid-run
        make("memd-backup-20261204T000000.000Z", true);
        make("memd-backup-20261205T000000.000Z", true); // just written
        make("memd-backup-20261206T000000.000Z", false); // another run, under way
        make("by-hand", true); // not the job's
        std::fs::write(dir.path().join("memd-backup-notes.txt"), "mine").unwrap();
        let removed = prune(dir.path(), 2, "memd-backup-20261205T000000.000Z").unwrap();
        assert_eq!(
            removed,
            vec![
                "memd-backup-20261201T000000.000Z",
                "memd-backup-20261202T000000.000Z",
                "memd-backup-20261203T000000.000Z",
            ]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                "by-hand",
                "memd-backup-20261204T000000.000Z",
                "memd-backup-20261205T000000.000Z",
                "memd-backup-20261206T000000.000Z",
                "memd-backup-notes.txt",
            ]
        );
    }
}
