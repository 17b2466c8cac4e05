//! The `retention` job (issue 28): keeps the data directory flat over months. Each part is
//! pruned by its owner, through its API; the job only calls them with the policy of
//! `[schedule.retention]` and a `now`, and reports what each did:
//!
//! - the supervisor: ended deployments' directories past `deployments_days` (a summary
//!   kept), then the summaries past `deployment_summaries`;
//! - the queue: finished jobs' work directories past `queue_days` (their log and record
//!   kept; `[queue] keep` bounds how many jobs are remembered);
//! - the audit of actions and the alerts' history: archived (gzip) past their size, the
//!   newest `archives` kept;
//! - the alerts' outbox: rewritten with what is still pending;
//! - the model: versions beyond the newest `model_versions` (never the current one nor the
//!   rollback target).
//!
//! Bounded elsewhere, and not touched here: the jobs' history (rolled past 8 MB), the
//! daemon's text logs (`[log] keep_files`), the table of deployments (the newest 200 ended
//! ones), backups (the backup job's `keep`), the memory's logs (`mem`).

use super::Done;
use super::config::RetentionPolicy;
use crate::alerts::Alerts;
use crate::audit::ActionAudit;
use crate::queue::Queue;
use crate::supervisor::Supervisor;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;

/// What the retention job prunes through.
#[derive(Clone)]
pub struct RetentionParts {
    pub supervisor: Arc<Supervisor>,
    pub ml: Arc<crate::ml::service::MlService>,
    pub queue: Arc<Queue>,
    pub actions: Arc<ActionAudit>,
    pub alerts: Arc<Alerts>,
}

/// One run, on a blocking thread.
pub(super) fn run(parts: &RetentionParts, policy: &RetentionPolicy, now: DateTime<Utc>) -> Done {
    let deployments =
        parts
            .supervisor
            .prune_ended(policy.deployments_after, policy.deployment_summaries, now);
    let queue = parts.queue.prune_work(policy.queue_after, now);
    let mut problems = deployments.problems.clone();
    let mut archived = Vec::new();
    match parts
        .actions
        .roll_over(policy.audit_max_bytes, policy.archives, now)
    {
        Ok(archive) => archived.extend(archive),
        Err(e) => problems.push(format!("the audit of actions: {e:#}")),
    }
    match parts
        .alerts
        .roll_history(policy.alerts_history_max_bytes, policy.archives, now)
    {
        Ok(archive) => archived.extend(archive),
        Err(e) => problems.push(format!("the alerts' history: {e:#}")),
    }
    if let Err(e) = parts.alerts.compact_outbox() {
        problems.push(format!("the alerts' outbox: {e}"));
    }
    let models = parts
        .ml
        .prune_versions(policy.model_versions)
        .unwrap_or_else(|e| {
            problems.push(format!("the model versions: {e}"));
            Vec::new()
        });
    let freed = deployments.bytes_freed + queue.bytes_freed;
    let summary = format!(
        "{} ended deployment{} pruned ({} kept, not yet {}), {} backtest work director{} removed, {} log{} archived, {} model version{} removed; {} freed",
        deployments.pruned.len(),
        if deployments.pruned.len() == 1 {
            ""
        } else {
            "s"
        },
        deployments.kept,
        age_text(policy.deployments_after),
        queue.jobs,
        if queue.jobs == 1 { "y" } else { "ies" },
        archived.len(),
        if archived.len() == 1 { "" } else { "s" },
        models.len(),
        if models.len() == 1 { "" } else { "s" },
        bytes_text(freed),
    );
    let details = json!({
        "deployments": deployments,
        "queue": queue,
        "archived": archived,
        "modelVersions": models,
        "bytesFreed": freed,
        "problems": problems,
    });
    if problems.is_empty() {
        Done::Ok(summary, details)
    } else {
        Done::Fail(format!("{summary}; {}", problems.join("; ")), details)
    }
}

/// An age in the largest whole unit: "14 days", "36 hours", "90 seconds".
fn age_text(age: chrono::Duration) -> String {
    let secs = age.num_seconds();
    let (n, unit) = if secs >= 86_400 && secs % 86_400 == 0 {
        (secs / 86_400, "day")
    } else if secs >= 3600 && secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Bytes for people: "512 B", "3.2 MiB".
fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_as_words() {
        assert_eq!(age_text(chrono::Duration::days(14)), "14 days");
        assert_eq!(age_text(chrono::Duration::hours(36)), "36 hours");
        assert_eq!(age_text(chrono::Duration::seconds(2)), "2 seconds");
        assert_eq!(bytes_text(512), "512 B");
        assert_eq!(bytes_text(3 << 20), "3.0 MiB");
    }
}
