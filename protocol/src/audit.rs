//! `audit.actions`: what was done to the daemon (deploys, stops, jobs, tokens, backups,
//! ...), by whom, and how it ended. The registry's own changes have their audit
//! (`strategies.audit`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionOutcome {
    Ok,
    Failed,
}

/// One action, as `audit/actions.jsonl` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionEntry {
    pub at: DateTime<Utc>,
    /// The method called (`strategies.deploy`, `jobs.run`, ...).
    pub action: String,
    /// The caller's uid (a socket peer); absent for the HTTP API and the webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The client's name (`memctl`, `http`, `tradingview webhook`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The request's plain params (ids, names, flags); secrets are never kept
    /// (`"<redacted>"`), nor nested objects.
    pub params: Map<String, Value>,
    pub outcome: ActionOutcome,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `audit.actions` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionsParams {
    /// Only actions at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Only actions whose method starts with this (`strategies.deploy`, `jobs.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The newest this many (default 100, at most 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `audit.actions` result: oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionLog {
    pub entries: Vec<ActionEntry>,
}
