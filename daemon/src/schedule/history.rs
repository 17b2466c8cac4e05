//! `jobs/history.jsonl`: one line per run (job, start, end, outcome, summary, error,
//! details), a [`crate::linelog`] appended and fsynced as each run ends, so a crash
//! loses at most the run that was going. Past [`MAX_BYTES`] the file becomes `history.1.jsonl` (the one before
//! is dropped): a per-minute sync job writes ~0.5 MB a day.
//!
//! `jobs/state.json` keeps what the scheduler must remember across restarts besides the
//! runs: when it first knew each job (so a job that never ran can still be found missed)
//! and the last market regime seen by the regime job.

use chrono::{DateTime, Utc};
use mem_protocol::jobs::JobRun;
use mem_protocol::recommend::{Trend, Volatility};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The history file is rolled over past this size.
pub const MAX_BYTES: u64 = 8 << 20;
/// What is read back at start: enough for the last runs of every job.
const TAIL_BYTES: u64 = 2 << 20;
/// Runs kept in memory for `jobs.history`.
const KEPT: usize = 2000;

/// The regime a job last saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regime {
    pub trend: Trend,
    pub volatility: Volatility,
}

impl std::fmt::Display for Regime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} trend, {} volatility", self.trend, self.volatility)
    }
}

/// `jobs/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SchedulerState {
    /// When this data directory's scheduler first knew each job.
    #[serde(default)]
    pub first_seen: BTreeMap<String, DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regime: Option<Regime>,
}

/// The history file and the newest runs in memory.
pub struct JobHistory {
    dir: PathBuf,
    runs: Mutex<VecDeque<JobRun>>,
    /// One writer at a time (appends and roll-overs).
    file: Mutex<()>,
}

impl JobHistory {
    /// Opens `dir` (created 0750), reading back the newest runs; torn or unreadable lines
    /// (a crash mid-append) are skipped.
    pub fn open(dir: &Path) -> std::io::Result<JobHistory> {
        crate::datadir::ensure_dir(dir, 0o750).map_err(std::io::Error::other)?;
        let tail = crate::linelog::read_tail(&dir.join("history.jsonl"), TAIL_BYTES)?;
        let mut runs: VecDeque<JobRun> = crate::linelog::lines(&tail)
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        while runs.len() > KEPT {
            runs.pop_front();
        }
        Ok(JobHistory {
            dir: dir.to_path_buf(),
            runs: Mutex::new(runs),
            file: Mutex::new(()),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("history.jsonl")
    }

    /// Appends a run (fsynced), then keeps it in memory.
    pub fn record(&self, run: &JobRun) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(run).map_err(std::io::Error::other)?;
        line.push(b'\n');
        {
            let _w = self.file.lock().expect("history file lock");
            let path = self.path();
            if std::fs::metadata(&path).is_ok_and(|m| m.len() + line.len() as u64 > MAX_BYTES) {
                std::fs::rename(&path, self.dir.join("history.1.jsonl"))?;
            }
            crate::linelog::append(&path, 0o640, &line, crate::linelog::Durability::Sync)?;
        }
        let mut runs = self.runs.lock().expect("history lock");
        runs.push_back(run.clone());
        if runs.len() > KEPT {
            runs.pop_front();
        }
        Ok(())
    }

    /// The newest runs first, of one job or of all.
    pub fn newest(&self, job: Option<&str>, limit: usize) -> Vec<JobRun> {
        self.runs
            .lock()
            .expect("history lock")
            .iter()
            .rev()
            .filter(|r| job.is_none_or(|j| r.job == j))
            .take(limit)
            .cloned()
            .collect()
    }

    /// A job's newest run.
    pub fn last(&self, job: &str) -> Option<JobRun> {
        self.newest(Some(job), 1).pop()
    }

    pub fn read_state(&self) -> SchedulerState {
        std::fs::read(self.dir.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn write_state(&self, state: &SchedulerState) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        crate::datadir::write_atomic(&self.dir.join("state.json"), &text, 0o640)
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::jobs::{JobOutcome, JobTrigger};

    fn run(job: &str, n: i64) -> JobRun {
        let at = DateTime::from_timestamp(1_700_000_000 + n, 0).unwrap();
        JobRun {
            id: format!("{job}-{n}"),
            job: job.into(),
            trigger: JobTrigger::Schedule,
            started_at: at,
            finished_at: at,
            outcome: JobOutcome::Succeeded,
            summary: format!("run {n}"),
            error: None,
            details: serde_json::Value::Null,
        }
    }

    #[test]
    fn runs_survive_a_reopen_and_a_torn_last_line_is_skipped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let h = JobHistory::open(dir.path()).unwrap();
        for n in 0..3 {
            h.record(&run("retrain", n)).unwrap();
            h.record(&run("performance_sync", n)).unwrap();
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("history.jsonl"))
            .unwrap();
        f.write_all(br#"{"id":"torn","job":"retr"#).unwrap();
        drop(f);
        let h = JobHistory::open(dir.path()).unwrap();
        assert_eq!(h.newest(None, 100).len(), 6);
        assert_eq!(h.last("retrain").unwrap().id, "retrain-2");
        let ids: Vec<_> = h
            .newest(Some("performance_sync"), 2)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["performance_sync-2", "performance_sync-1"]);
        // The next append starts on a line of its own even after the torn one.
        h.record(&run("retrain", 9)).unwrap();
        let h = JobHistory::open(dir.path()).unwrap();
        assert_eq!(h.last("retrain").unwrap().id, "retrain-9");
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let h = JobHistory::open(dir.path()).unwrap();
        assert!(h.read_state().regime.is_none());
        let mut s = SchedulerState {
            regime: Some(Regime {
                trend: Trend::Bearish,
                volatility: Volatility::High,
            }),
            ..Default::default()
        };
        s.first_seen.insert("retrain".into(), Utc::now());
        h.write_state(&s).unwrap();
        let back = h.read_state();
        assert_eq!(back.regime, s.regime);
        assert_eq!(
            back.regime.unwrap().to_string(),
            "bearish trend, high volatility"
        );
    }
}
