//! Scheduled jobs: what runs on its own (retraining, rotation, deployment on a regime
//! change, performance sync, the learning review), when it last ran and how it ended,
//! and when it runs next.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JobOutcome {
    /// Did its work (which may be "nothing to do": the summary says).
    Succeeded,
    /// Did not start: the previous run was still going, or a training run started by
    /// hand was.
    Skipped,
    /// Started and failed; the error says why. Bots and the model were left as they were.
    Failed,
    /// Scheduled while memd was down (reported at start).
    Missed,
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobTrigger {
    /// Its cron expression fired.
    Schedule,
    /// `jobs.run` (memctl jobs run, the TUI's `x`).
    Manual,
    /// Run once at start for runs missed while memd was down (the job's catch-up policy).
    CatchUp,
}

/// One run of a job, as the history file keeps it and `job.finished` announces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobRun {
    /// Unique per run (a UUID).
    pub id: String,
    pub job: String,
    pub trigger: JobTrigger,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: JobOutcome,
    /// One line: what the run did, or why it did nothing.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run's own record: for a rotation, the conditions, the recommendations looked
    /// at and each action with its reason; for a retrain, the version and metrics.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

/// `job.progress` data: how far a running job is (a data refresh, pair by pair).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    /// The run's id (its `JobRun` has the same).
    pub run_id: String,
    pub job: String,
    pub done: u64,
    pub total: u64,
    /// What it is doing now.
    pub message: String,
}

/// One job, as `jobs.list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    pub name: String,
    /// What the job does, in a sentence.
    pub description: String,
    /// The cron expression, with seconds (`0 0 2 * * *`).
    pub schedule: String,
    /// The expression in words (`At 02:00`).
    pub schedule_text: String,
    /// The time zone the expression is read in.
    pub timezone: String,
    pub enabled: bool,
    /// Whether a run missed while memd was down is run once at start.
    pub catch_up: bool,
    /// A run is going now (since then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<JobRun>,
    /// Absent when the job is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<DateTime<Utc>>,
}

/// `jobs.list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobList {
    pub jobs: Vec<JobInfo>,
}

/// `jobs.run` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunJobParams {
    pub name: String,
    /// Answer when the run has finished, with its record (default: answer at once; the
    /// record comes as `job.finished`).
    #[serde(default)]
    pub wait: bool,
}

/// `jobs.run` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunJobResult {
    pub id: String,
    pub job: String,
    pub started_at: DateTime<Utc>,
    /// The finished run, when `wait` was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<JobRun>,
}

/// `jobs.history` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobHistoryParams {
    /// One job's runs (default: every job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Default 50, at most 1,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `jobs.history` result: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobHistory {
    pub runs: Vec<JobRun>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_round_trips_and_reads_in_camel_case() {
        let run = JobRun {
            id: "7d3c".into(),
            job: "rotation".into(),
            trigger: JobTrigger::CatchUp,
            started_at: "2026-11-22T02:00:00Z".parse().unwrap(),
            finished_at: "2026-11-22T02:00:03Z".parse().unwrap(),
            outcome: JobOutcome::Succeeded,
            summary: "drained A, deployed B".into(),
            error: None,
            details: serde_json::json!({"actions": []}),
        };
        let json = serde_json::to_value(&run).unwrap();
        assert_eq!(json["trigger"], "catch_up");
        assert_eq!(json["startedAt"], "2026-11-22T02:00:00Z");
        assert_eq!(serde_json::from_value::<JobRun>(json).unwrap(), run);
        let p: RunJobParams =
            serde_json::from_value(serde_json::json!({"name": "retrain"})).unwrap();
        assert!(!p.wait);
        assert!(
            serde_json::from_value::<RunJobParams>(serde_json::json!({"name": "x", "wiat": true}))
                .is_err()
        );
    }
}
