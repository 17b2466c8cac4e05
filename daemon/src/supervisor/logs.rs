//! Deployments' logs: one task follows every active deployment's log (one wakeup for all
//! of them, not one each), counts its warnings and errors and publishes new lines
//! (`bot.log`, what `memctl logs -f` shows); `deployments.logs` answers the last lines
//! (an attached bot's from its API: its log file is its operator's).

use super::Supervisor;
use super::process::tail_lines;
use super::record::Slot;
use mem_protocol::deploy::{BotLog, DeploymentId, LogTail, LogsParams};
use mem_protocol::{Event, RpcError};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

/// How often a deployment's log is read for new lines.
const LOG_TAIL_INTERVAL: Duration = Duration::from_millis(500);

/// Follows the logs until the supervisor is gone.
pub(super) fn spawn_tailer(supervisor: Weak<Supervisor>) {
    tokio::spawn(async move {
        let mut offsets: HashMap<DeploymentId, u64> = HashMap::new();
        let mut tick = tokio::time::interval(LOG_TAIL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let Some(this) = supervisor.upgrade() else {
                return;
            };
            let active: Vec<(DeploymentId, std::sync::Arc<Slot>)> = this
                .table
                .slots(true)
                .into_iter()
                .map(|s| {
                    let id = s.record.lock().expect("slot lock").public.deployment_id;
                    (id, s)
                })
                .collect();
            offsets.retain(|id, _| active.iter().any(|(a, _)| a == id));
            for (id, slot) in active {
                this.count_log_levels(&slot, offsets.entry(id).or_insert(0));
            }
        }
    });
}

impl Supervisor {
    /// Counts warning and error lines added to the deployment's log since the last look,
    /// and publishes them for followers. Reads only the new bytes.
    fn count_log_levels(&self, slot: &Slot, offset: &mut u64) {
        use std::io::{Read, Seek, SeekFrom};
        let path = slot.record.lock().expect("slot lock").log_path();
        let Ok(mut file) = std::fs::File::open(&path) else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < *offset {
            *offset = 0; // rotated
        }
        // At most 1 MiB a look: a bot that floods its log is not read whole.
        let start = (*offset).max(len.saturating_sub(1 << 20));
        let mut new = Vec::new();
        if file.seek(SeekFrom::Start(start)).is_err()
            || file.take(len - start).read_to_end(&mut new).is_err()
        {
            return;
        }
        // Only whole lines; a partial last line is read next time.
        let Some(end) = new.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        *offset = start + end as u64 + 1;
        let text = String::from_utf8_lossy(&new[..end]);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let warnings = lines.iter().filter(|l| l.contains(" - WARNING - ")).count() as u64;
        let errors = lines
            .iter()
            .filter(|l| l.contains(" - ERROR - ") || l.contains(" - CRITICAL - "))
            .count() as u64;
        let (deployment_id, strategy_id) = {
            let mut r = slot.record.lock().expect("slot lock");
            r.public.warnings += warnings;
            r.public.errors += errors;
            (r.public.deployment_id, r.public.strategy_id)
        };
        self.table.publish(Event::BotLog(BotLog {
            deployment_id,
            strategy_id,
            lines,
        }));
    }

    /// `deployments.logs`: the last lines of the strategy's newest deployment: its log
    /// file, or for a bot memd did not start (whose log is its operator's) what its API's
    /// `/api/v1/logs` keeps.
    pub async fn logs(&self, params: LogsParams) -> Result<LogTail, RpcError> {
        let newest = self.table.newest_of(params.id).ok_or_else(|| {
            RpcError::not_found(format!("strategy {} has never been deployed", params.id))
        })?;
        let record = newest.record.lock().expect("slot lock").clone();
        let n = params.lines.unwrap_or(100).min(10_000);
        if record.is_attached() {
            let client = record
                .bot_client()
                .ok_or_else(|| RpcError::internal("an attached bot has a client"))?;
            let lines = client.logs(n).await.map_err(|e| {
                RpcError::new(
                    mem_protocol::ErrorCode::Unavailable,
                    format!("the attached bot's log could not be read from its API: {e:#}"),
                )
            })?;
            return Ok(LogTail {
                deployment_id: record.public.deployment_id,
                lines,
            });
        }
        let summary =
            super::retention::summary_path(self.table.root(), record.public.deployment_id);
        tokio::task::spawn_blocking(move || file_tail(&record, &summary, n))
            .await
            .map_err(|e| RpcError::internal(e.to_string()))
    }
}

/// The last `n` lines of a deployment's log file (else of its console output; else, once
/// its directory was pruned, of the summary the pruning kept at `summary`).
fn file_tail(record: &super::record::DeploymentRecord, summary: &Path, n: usize) -> LogTail {
    let mut lines = tail_lines(&record.log_path(), n);
    if lines.is_empty() {
        lines = tail_lines(&record.dir.join("console.log"), n);
    }
    if lines.is_empty() && !record.dir.exists() {
        if let Some(summary) = super::retention::read_summary(summary) {
            let from = summary.log_lines.len().saturating_sub(n);
            lines = summary.log_lines[from..].to_vec();
        }
    }
    LogTail {
        deployment_id: record.public.deployment_id,
        lines,
    }
}
