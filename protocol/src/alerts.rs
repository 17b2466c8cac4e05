//! `alerts.test` and `alerts.history`: the alerts memd sends (Telegram, a webhook, its
//! log) and what became of them. No field ever holds a bot token or a webhook URL: a
//! channel is named by its kind (`telegram/<chat id>`, `webhook`, `log`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `alerts.test` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertsTestParams {
    /// `telegram`, `webhook` or `log` (default: every configured channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// `alerts.test` result: the test alert is queued; `alerts.history` says how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertsTestResult {
    pub alert_id: String,
    /// Where it is queued: `telegram/<chat id>`, `webhook`, `log`.
    pub targets: Vec<String>,
}

/// `alerts.history` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertsHistoryParams {
    /// Newest entries answered (default 50, at most 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// What became of one alert at one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryResult {
    Sent,
    /// One try failed; it is retried.
    Failed,
    /// Not delivered in `[alerts] give_up_after_hours`: dropped.
    GivenUp,
}

/// One line of `alerts/history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertDelivery {
    pub at: DateTime<Utc>,
    pub alert_id: String,
    /// The rule that raised it (`bot_failed`, `job_failed`, `test`, ...).
    pub rule: String,
    /// `info`, `warning`, `critical`.
    pub severity: String,
    pub title: String,
    pub text: String,
    pub raised_at: DateTime<Utc>,
    /// `telegram/<chat id>`, `webhook`, `log`.
    pub target: String,
    pub result: DeliveryResult,
    /// The try's number (1 for the first).
    pub attempt: u32,
    /// Why a try failed (never with the channel's URL or token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `alerts.history` result: oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertsHistory {
    pub deliveries: Vec<AlertDelivery>,
    /// Deliveries waiting in the outbox now.
    pub pending: usize,
}
