//! The audit of actions: every request that changes what the daemon runs or holds
//! (deploy, stop, restart, stop-all, acknowledge, parameter changes, jobs run, backtests
//! and their cancelling, model training and promotion, tokens, backups, migrations, the
//! risk guard's reset, a daemon stop) is recorded with its time, its caller (uid or
//! client) and how it ended, in `{data_dir}/audit/actions.jsonl`. Every such request goes
//! through [`crate::router::route`], which records it: one road, whether it came over the
//! socket, the HTTP API or the webhook.
//!
//! Not recorded here: the registry's own changes (the registry's audit has them, with the
//! change itself) and the bots' stream of data (trades, MEM's decisions and outcomes).
//! Params are kept without secrets: only plain values, and none under a name that could
//! hold one.

use crate::linelog::{self, Durability, LineLog};
use crate::registry::Caller;
use chrono::Utc;
use mem_protocol::audit::{ActionEntry, ActionLog, ActionOutcome, ActionsParams};
use mem_protocol::{Access, Request, RpcError};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Control methods that are not actions of this audit (see the module's comment).
const NOT_ACTIONS: &[&str] = &[
    "strategies.register",
    "strategies.update",
    "strategies.deprecate",
    "strategies.status",
    "strategies.tags",
    "strategies.link",
    "strategies.unlink",
    "strategies.versions.create",
    "strategies.versions.approve",
    "strategies.import",
    "strategies.mem.mark_enhanced",
    "strategies.mem.learned_patterns",
    "strategies.trades.record",
    "mem.decide",
    "mem.outcome",
];

/// Param names never kept, whatever their value.
const SECRET_WORDS: &[&str] = &["password", "secret", "token", "key", "credential"];

/// The log of actions.
pub struct ActionAudit {
    path: PathBuf,
    log: Mutex<LineLog>,
}

/// An action under way: what is recorded once it has ended.
pub struct Pending {
    entry: ActionEntry,
}

impl ActionAudit {
    /// Opens (or makes) `{data_dir}/audit/actions.jsonl`.
    pub fn open(data_dir: &Path) -> anyhow::Result<ActionAudit> {
        let dir = data_dir.join("audit");
        crate::datadir::ensure_dir(&dir, 0o750)?;
        let path = dir.join("actions.jsonl");
        let log = LineLog::open(&path, 0o640)?;
        Ok(ActionAudit {
            path,
            log: Mutex::new(log),
        })
    }

    /// The entry of `request` if it is an action, to record when it has ended.
    pub fn begin(request: &Request, caller: &Caller) -> Option<Pending> {
        let method = request.method();
        if request.access() != Access::Control || NOT_ACTIONS.contains(&method) {
            return None;
        }
        Some(Pending {
            entry: ActionEntry {
                at: Utc::now(),
                action: method.to_string(),
                uid: caller.uid,
                client: caller.client.as_deref().map(str::to_string),
                params: plain_params(request.params_json()),
                outcome: ActionOutcome::Ok,
                error: None,
            },
        })
    }

    /// Records an action that ended with `result` (on disk before the caller is
    /// answered). A failure to write is logged: the action itself has happened.
    pub fn end<T>(&self, pending: Pending, result: &Result<T, RpcError>) {
        let mut entry = pending.entry;
        if let Err(e) = result {
            entry.outcome = ActionOutcome::Failed;
            entry.error = Some(e.message.clone());
        }
        let written = serde_json::to_vec(&entry)
            .map_err(std::io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                self.log
                    .lock()
                    .expect("action audit lock")
                    .append(&line, Durability::Sync)
            });
        if let Err(e) = written {
            tracing::warn!(action = %entry.action, error = %e, "cannot write the audit of actions");
        }
    }

    /// Records an action that did not come through the router (a Telegram control
    /// command), already ended.
    pub fn record(
        &self,
        action: &str,
        caller: &Caller,
        params: Map<String, Value>,
        result: &Result<(), String>,
    ) {
        let pending = Pending {
            entry: ActionEntry {
                at: Utc::now(),
                action: action.to_string(),
                uid: caller.uid,
                client: caller.client.as_deref().map(str::to_string),
                params: plain_params(Value::Object(params)),
                outcome: ActionOutcome::Ok,
                error: None,
            },
        };
        self.end(
            pending,
            &result.as_ref().map_err(|e| RpcError::internal(e.clone())),
        );
    }

    /// Archives the log when it is past `max_bytes` (gzip, beside it; the newest `keep`
    /// archives kept): `audit.actions` then reads the entries since. Answers the archive
    /// written. The rename happens under the writer's lock, the compression after it.
    pub fn roll_over(
        &self,
        max_bytes: u64,
        keep: usize,
        now: chrono::DateTime<Utc>,
    ) -> anyhow::Result<Option<PathBuf>> {
        // One set aside by a roll cut short is archived first.
        let earlier = linelog::archive_rolled(&self.path, keep, now)?;
        {
            let mut log = self.log.lock().expect("action audit lock");
            if linelog::roll_aside(&self.path, max_bytes)? {
                match LineLog::open(&self.path, 0o640) {
                    Ok(fresh) => *log = fresh,
                    Err(e) => {
                        // Appends would go on into the file set aside: it is put back.
                        let _ = std::fs::rename(linelog::rolled_path(&self.path), &self.path);
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(linelog::archive_rolled(&self.path, keep, now)?.or(earlier))
    }

    /// `audit.actions`.
    pub fn list(&self, params: &ActionsParams) -> Result<ActionLog, RpcError> {
        let all: Vec<ActionEntry> = linelog::read_json(&self.path)
            .map_err(|e| RpcError::internal(format!("cannot read {}: {e}", self.path.display())))?;
        let limit = params.limit.unwrap_or(100).clamp(1, 10_000);
        let mut entries: Vec<ActionEntry> = all
            .into_iter()
            .filter(|e| params.since.is_none_or(|since| e.at >= since))
            .filter(|e| {
                params
                    .action
                    .as_deref()
                    .is_none_or(|prefix| e.action.starts_with(prefix))
            })
            .collect();
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
        Ok(ActionLog { entries })
    }
}

/// The params' plain values (strings, numbers, booleans, lists of strings), none whose
/// name could hold a secret.
fn plain_params(params: Value) -> Map<String, Value> {
    let Value::Object(map) = params else {
        return Map::new();
    };
    map.into_iter()
        .filter_map(|(name, value)| {
            let lower = name.to_lowercase();
            if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
                return Some((name, Value::String("<redacted>".into())));
            }
            let plain = match &value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
                Value::Array(items) => items.iter().all(Value::is_string),
                _ => false,
            };
            plain.then_some((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::registry::MigrateParams;

    fn memctl() -> Caller {
        Caller {
            uid: Some(1000),
            client: Some("memctl".into()),
        }
    }

    #[test]
    fn actions_are_kept_with_their_caller_and_outcome_and_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let audit = ActionAudit::open(dir.path()).unwrap();
        let migrate = Request::RegistryMigrate(MigrateParams::Postgres {
            url: "postgres://memd@db/registry".into(),
            password: Some("hunter2".into()),
            server: Some("east".into()),
        });
        let pending = ActionAudit::begin(&migrate, &memctl()).expect("an action");
        audit.end(
            pending,
            &Err::<(), _>(RpcError::internal("the database is down")),
        );
        // Not actions: the registry's changes, the bots' data, reads.
        let record = Request::TradesRecord(mem_protocol::registry::RecordTradesParams {
            id: mem_protocol::strategy::StrategyId::new_random(),
            trades: vec![],
        });
        assert!(ActionAudit::begin(&record, &memctl()).is_none());
        assert!(
            ActionAudit::begin(
                &Request::DaemonStatus(mem_protocol::methods::NoParams {}),
                &memctl()
            )
            .is_none()
        );

        let text = std::fs::read_to_string(dir.path().join("audit/actions.jsonl")).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let log = audit.list(&ActionsParams::default()).unwrap();
        let [entry] = &log.entries[..] else {
            panic!("{log:?}")
        };
        assert_eq!(entry.action, "registry.migrate");
        assert_eq!(
            (entry.uid, entry.client.as_deref()),
            (Some(1000), Some("memctl"))
        );
        assert_eq!(entry.outcome, ActionOutcome::Failed);
        assert_eq!(entry.error.as_deref(), Some("the database is down"));
        assert_eq!(entry.params["password"], "<redacted>");
        assert_eq!(entry.params["url"], "postgres://memd@db/registry");
        assert_eq!(entry.params["backend"], "postgres");

        // Filters: by the method's start, and by time.
        let filtered = |action: &str, since| {
            audit
                .list(&ActionsParams {
                    action: Some(action.into()),
                    since,
                    limit: None,
                })
                .unwrap()
                .entries
                .len()
        };
        assert_eq!(filtered("registry.", None), 1);
        assert_eq!(filtered("strategies.deploy", None), 0);
        assert_eq!(
            filtered("registry.", Some(Utc::now() + chrono::Duration::seconds(5))),
            0
        );
    }

    #[test]
    fn past_its_size_the_audit_is_archived_and_goes_on_in_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let audit = ActionAudit::open(dir.path()).unwrap();
        let now = "2026-12-01T00:00:00Z".parse().unwrap();
        for _ in 0..20 {
            audit.record("telegram.stop", &memctl(), Map::new(), &Ok(()));
        }
        assert_eq!(
            audit.roll_over(1 << 20, 2, now).unwrap(),
            None,
            "within its size"
        );
        let archive = audit.roll_over(1024, 2, now).unwrap().expect("archived");
        assert!(archive.to_string_lossy().ends_with(".jsonl.gz"));
        let params = ActionsParams::default();
        assert!(audit.list(&params).unwrap().entries.is_empty());
        audit.record("telegram.stopentry", &memctl(), Map::new(), &Ok(()));
        let entries = audit.list(&params).unwrap().entries;
        assert_eq!(entries.len(), 1, "the new file takes the appends");
        assert_eq!(entries[0].action, "telegram.stopentry");
    }
}
