//! Retention of ended deployments (issue 28): a deployment's directory (its rendered
//! config, its bot's SQLite database, its logs) is removed once the deployment has been
//! over for `[schedule.retention] deployments_days`, leaving `deployments/{id}.summary.json`:
//! its record as clients saw it last (status, end reason, final stats), when it ended
//! and its last [`SUMMARY_LINES`] log lines. Its trades stay in the registry (the trade
//! sync copied them while it ran), and its record stays in `state.json` until the table
//! forgets it ([`super::record::KEEP_ENDED`]). Summaries are kept, newest first, up to a
//! count.
//!
//! Invariants:
//! - an active deployment (running, starting, restarting, crashed, stopping) is never
//!   pruned, nor one whose stop or restart is under way (its `op` lock is held);
//! - the summary is on disk (fsynced, renamed) before the directory is removed; a prune
//!   cut short (a crash, a removal that failed) is finished by the next one, which keeps
//!   the summary already written rather than one made from what is left;
//! - a directory the table no longer knows (a deployment forgotten past `KEEP_ENDED`) is
//!   pruned by the same age rule, its summary saying so; a fresh directory is never
//!   touched (a deploy makes its directory a moment before its record).

use super::Supervisor;
use super::process::tail_lines;
use super::record::DeploymentRecord;
use chrono::{DateTime, Utc};
use mem_protocol::deploy::{DeployedStrategy, DeploymentId, DeploymentStatus};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tracing::{info, warn};

/// Log lines kept in a pruned deployment's summary.
pub const SUMMARY_LINES: usize = 50;

/// `deployments/{id}.summary.json`: what is left of a pruned deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSummary {
    pub deployment_id: DeploymentId,
    /// When its directory was last written to (its log's last line, its stop).
    pub ended_at: DateTime<Utc>,
    pub pruned_at: DateTime<Utc>,
    /// Why it ended, in words: stopped, failed and why, or unknown when the table had
    /// already forgotten it.
    pub end_reason: String,
    /// Its record as `strategies.deployed {all}` showed it last (final stats included);
    /// none when the table had already forgotten it.
    pub record: Option<DeployedStrategy>,
    /// The last lines of its log (Freqtrade's, the native runner's, or the console's).
    pub log_lines: Vec<String>,
    /// The bytes its directory held.
    pub bytes: u64,
}

/// What a prune did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentsPruned {
    /// Directories removed (each with its summary written).
    pub pruned: Vec<DeploymentId>,
    pub bytes_freed: u64,
    /// Ended deployments' directories kept, not yet old enough.
    pub kept: usize,
    /// Oldest summaries removed past the count kept.
    pub summaries_removed: usize,
    /// What could not be done (the next run tries again).
    pub problems: Vec<String>,
}

/// The summary's path beside the deployments' directories.
pub fn summary_path(root: &Path, id: DeploymentId) -> PathBuf {
    root.join(format!("{id}.summary.json"))
}

/// When a deployment's directory was last written to: the newest modification time of the
/// directory and the files directly in it (its logs, its database).
pub fn last_written(dir: &Path) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(dir).and_then(|m| m.modified()).ok()?;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
            newest = newest.max(t);
        }
    }
    Some(newest)
}

/// Whether something last written at `written` is older than `after` at `now`.
pub fn is_due(written: SystemTime, now: DateTime<Utc>, after: chrono::Duration) -> bool {
    DateTime::<Utc>::from(written) + after <= now
}

/// What a prune does with one deployment directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Active, or a stop or restart under way: not looked at.
    Active,
    /// Ended, not yet old enough.
    Keep,
    Prune,
}

/// The rule: a deployment whose record is active (`status`), or whose `op` is held, is
/// never pruned; an ended one (or one the table forgot: no status) once its directory
/// has been quiet for `after`.
pub fn verdict(
    status: Option<DeploymentStatus>,
    op_busy: bool,
    written: SystemTime,
    now: DateTime<Utc>,
    after: chrono::Duration,
) -> Verdict {
    if op_busy || status.is_some_and(|s| s.is_active()) {
        Verdict::Active
    } else if is_due(written, now, after) {
        Verdict::Prune
    } else {
        Verdict::Keep
    }
}

/// The end reason of a record, in words.
fn end_reason(record: Option<&DeployedStrategy>) -> String {
    let Some(r) = record else {
        return "unknown: the table had already forgotten this deployment".into();
    };
    match (&r.status, &r.last_error) {
        (DeploymentStatus::Failed, Some(e)) => format!("failed: {e}"),
        (DeploymentStatus::Failed, None) => "failed".into(),
        (_, Some(e)) => format!("stopped (last error: {e})"),
        _ => "stopped".into(),
    }
}

/// The last log lines of a deployment's directory: its own log, else the console's.
fn last_lines(dir: &Path, record: Option<&DeploymentRecord>) -> Vec<String> {
    let logs: Vec<PathBuf> = match record {
        Some(r) => vec![r.log_path(), dir.join("console.log")],
        None => ["freqtrade.log", "native.log", "console.log"]
            .iter()
            .map(|name| dir.join(name))
            .collect(),
    };
    logs.iter()
        .map(|path| tail_lines(path, SUMMARY_LINES))
        .find(|lines| !lines.is_empty())
        .unwrap_or_default()
}

/// Writes the summary (unless a prune cut short already did), then removes the directory.
/// Answers the bytes freed.
pub fn prune_dir(
    root: &Path,
    id: DeploymentId,
    record: Option<&DeploymentRecord>,
    written: SystemTime,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let dir = root.join(id.to_string());
    let bytes = crate::datadir::disk_bytes(&dir);
    let path = summary_path(root, id);
    if !path.exists() {
        let public = record.map(|r| r.public.clone());
        let summary = DeploymentSummary {
            deployment_id: id,
            ended_at: written.into(),
            pruned_at: now,
            end_reason: end_reason(public.as_ref()),
            log_lines: last_lines(&dir, record),
            record: public,
            bytes,
        };
        let text = serde_json::to_vec_pretty(&summary)?;
        crate::datadir::write_atomic(&path, &text, 0o640)?;
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", dir.display()))?;
    Ok(bytes)
}

/// Removes the oldest summaries (by modification time: when each was written) beyond
/// `keep`; answers how many.
pub fn prune_summaries(root: &Path, keep: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut summaries: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".summary.json"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if summaries.len() <= keep {
        return 0;
    }
    summaries.sort();
    let excess = summaries.len() - keep;
    summaries
        .into_iter()
        .take(excess)
        .filter(|(_, path)| std::fs::remove_file(path).is_ok())
        .count()
}

impl Supervisor {
    /// Prunes the directories of deployments over for at least `after` at `now` (see the
    /// module's comment), then the summaries beyond `keep_summaries`. Runs on a blocking
    /// thread (it reads logs and removes trees).
    pub fn prune_ended(
        &self,
        after: chrono::Duration,
        keep_summaries: usize,
        now: DateTime<Utc>,
    ) -> DeploymentsPruned {
        let root = self.table.root().to_path_buf();
        let mut report = DeploymentsPruned::default();
        let Ok(entries) = std::fs::read_dir(&root) else {
            return report;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(id) = name.parse::<DeploymentId>() else {
                continue; // state.json, summaries, temporary files
            };
            if !entry.path().is_dir() {
                continue;
            }
            let Some(written) = last_written(&entry.path()) else {
                continue;
            };
            let slot = self.table.slot(id);
            // A stop or restart under way holds `op`: left for the next run. Held here, so
            // none starts while the directory goes.
            let op = slot.as_ref().map(|s| s.op.try_lock());
            let op_busy = op.as_ref().is_some_and(|op| op.is_err());
            let record = slot
                .as_ref()
                .map(|s| s.record.lock().expect("slot lock").clone());
            let status = record.as_ref().map(|r| r.public.status);
            match verdict(status, op_busy, written, now, after) {
                Verdict::Active => continue,
                Verdict::Keep => {
                    report.kept += 1;
                    continue;
                }
                Verdict::Prune => {}
            }
            match prune_dir(&root, id, record.as_ref(), written, now) {
                Ok(bytes) => {
                    info!(deployment = %id, bytes, "pruned an ended deployment's directory; its summary is kept");
                    report.pruned.push(id);
                    report.bytes_freed += bytes;
                }
                Err(e) => {
                    warn!(deployment = %id, error = %e, "cannot prune an ended deployment's directory");
                    report.problems.push(format!("deployment {id}: {e}"));
                }
            }
            drop(op);
        }
        report.summaries_removed = prune_summaries(&root, keep_summaries);
        report
    }
}

/// The summary a pruning kept at `path` (from [`summary_path`]), if it did.
pub fn read_summary(path: &Path) -> Option<DeploymentSummary> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// A deployment directory under `root` with a log of `lines` lines, and its id.
    fn deployment_dir(root: &Path, lines: usize) -> DeploymentId {
        let id = DeploymentId::new_random();
        let dir = root.join(id.to_string());
        std::fs::create_dir_all(dir.join("user_data")).unwrap();
        let log: String = (0..lines).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.join("freqtrade.log"), log).unwrap();
        std::fs::write(dir.join("tradesv3.sqlite"), vec![0u8; 4096]).unwrap();
        id
    }

    #[test]
    fn a_directory_is_due_once_it_has_been_quiet_for_the_whole_period() {
        let written = SystemTime::from(at("2026-11-01T00:00:00Z"));
        let days = chrono::Duration::days(14);
        assert!(!is_due(written, at("2026-11-14T23:59:59Z"), days));
        assert!(is_due(written, at("2026-11-15T00:00:00Z"), days));
        assert!(is_due(written, at("2027-01-01T00:00:00Z"), days));
        // A clock that went back never prunes early.
        assert!(!is_due(written, at("2026-10-01T00:00:00Z"), days));
    }

    #[test]
    fn an_active_deployment_or_one_being_stopped_is_never_pruned() {
        use DeploymentStatus::*;
        let written = SystemTime::from(at("2026-01-01T00:00:00Z"));
        let (now, days) = (at("2026-12-01T00:00:00Z"), chrono::Duration::days(14));
        for active in [Starting, Running, Stopping, Crashed, Restarting] {
            assert_eq!(
                verdict(Some(active), false, written, now, days),
                Verdict::Active
            );
        }
        for ended in [Stopped, Failed] {
            assert_eq!(
                verdict(Some(ended), false, written, now, days),
                Verdict::Prune
            );
            assert_eq!(
                verdict(Some(ended), true, written, now, days),
                Verdict::Active
            );
            let fresh = SystemTime::from(now);
            assert_eq!(verdict(Some(ended), false, fresh, now, days), Verdict::Keep);
        }
        // Forgotten by the table: the age alone decides.
        assert_eq!(verdict(None, false, written, now, days), Verdict::Prune);
    }

    #[test]
    fn the_newest_write_in_the_directory_is_when_it_ended() {
        let root = tempfile::tempdir().unwrap();
        let id = deployment_dir(root.path(), 3);
        let dir = root.path().join(id.to_string());
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for name in ["freqtrade.log", "tradesv3.sqlite", "user_data"] {
            std::fs::File::open(dir.join(name))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        // The directory itself is fresh (files were made in it): it counts.
        assert!(last_written(&dir).unwrap() > old);
    }

    #[test]
    fn a_prune_writes_the_summary_then_removes_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let id = deployment_dir(root.path(), 80);
        let now = at("2026-12-01T00:00:00Z");
        let written = SystemTime::from(at("2026-11-01T00:00:00Z"));
        let bytes = prune_dir(root.path(), id, None, written, now).unwrap();
        assert!(bytes >= 4096, "{bytes}");
        assert!(!root.path().join(id.to_string()).exists());
        let summary: DeploymentSummary =
            serde_json::from_slice(&std::fs::read(summary_path(root.path(), id)).unwrap()).unwrap();
        assert_eq!(summary.deployment_id, id);
        assert_eq!(summary.log_lines.len(), SUMMARY_LINES);
        assert_eq!(summary.log_lines.last().unwrap(), "line 79");
        assert_eq!(summary.ended_at, at("2026-11-01T00:00:00Z"));
        assert!(summary.end_reason.starts_with("unknown"));
        assert_eq!(summary.bytes, bytes);
    }

    #[test]
    fn an_interrupted_prune_is_finished_with_the_summary_it_wrote() {
        let root = tempfile::tempdir().unwrap();
        let id = deployment_dir(root.path(), 10);
        let now = at("2026-12-01T00:00:00Z");
        let written = SystemTime::from(at("2026-11-01T00:00:00Z"));
        // The first prune wrote its summary, then died while removing: the log is gone.
        let summary = summary_path(root.path(), id);
        std::fs::write(&summary, br#"{"first": true}"#).unwrap();
        std::fs::remove_file(root.path().join(id.to_string()).join("freqtrade.log")).unwrap();
        prune_dir(root.path(), id, None, written, now).unwrap();
        assert!(!root.path().join(id.to_string()).exists());
        assert_eq!(std::fs::read(&summary).unwrap(), br#"{"first": true}"#);
    }

    #[test]
    fn only_the_newest_summaries_are_kept() {
        let root = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..5u64 {
            let path = summary_path(root.path(), DeploymentId::new_random());
            std::fs::write(&path, b"{}").unwrap();
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + i);
            std::fs::File::open(&path).unwrap().set_modified(t).unwrap();
            paths.push(path);
        }
        std::fs::write(root.path().join("state.json"), b"[]").unwrap();
        assert_eq!(prune_summaries(root.path(), 5), 0);
        assert_eq!(prune_summaries(root.path(), 3), 2);
        assert!(!paths[0].exists() && !paths[1].exists());
        assert!(paths[2..].iter().all(|p| p.exists()));
        assert!(root.path().join("state.json").exists());
    }
}
