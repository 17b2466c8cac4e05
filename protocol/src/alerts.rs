//! `alerts.test` and `alerts.history`: the alerts memd sends (Telegram, a webhook, its
//! log) and what became of them; the `alert.changed` event and the snapshot's `alerts`
//! ([`AlertStatus`]: each recent alert as it stands). No field ever holds a bot token or
//! a webhook URL: a channel is named by its kind (`telegram/<chat id>`, `webhook`, `log`).

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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// An alert as it stands: what was raised, and what became of it at each target so far.
/// `alert.changed`'s data (when it is raised, and after each try at a target); the
/// snapshot's `alerts` (topic `daemon`) has the newest few, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AlertStatus {
    pub id: String,
    /// The rule that raised it (`bot_failed`, `job_failed`, `test`, ...).
    pub rule: String,
    /// `info`, `warning`, `critical`.
    pub severity: String,
    pub title: String,
    pub text: String,
    pub raised_at: DateTime<Utc>,
    /// Each target it is queued for, in the order they were configured.
    pub targets: Vec<AlertTargetStatus>,
}

/// One alert at one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AlertTargetStatus {
    /// `telegram/<chat id>`, `webhook`, `log`.
    pub target: String,
    /// The last try's; absent before the first try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<DeliveryResult>,
    /// Tries so far.
    pub attempts: u32,
    /// Why the last try failed (never with the channel's URL or token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where an alert is, over all its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertProgress {
    /// Not every target was tried yet, and none failed.
    Pending,
    /// Sent to every target.
    Sent,
    /// A target's last try failed: it is retried with backoff.
    Failing,
    /// A target gave up (`give_up_after_hours`); the others were sent.
    GivenUp,
}

impl AlertStatus {
    /// Where it is: a failure first, then what is not done, else sent.
    pub fn progress(&self) -> AlertProgress {
        let results = || self.targets.iter().map(|t| t.result);
        if results().any(|r| r == Some(DeliveryResult::Failed)) {
            AlertProgress::Failing
        } else if results().any(|r| r.is_none()) {
            AlertProgress::Pending
        } else if results().any(|r| r == Some(DeliveryResult::GivenUp)) {
            AlertProgress::GivenUp
        } else {
            AlertProgress::Sent
        }
    }

    /// The targets sent to, and how many there are.
    pub fn sent_of(&self) -> (usize, usize) {
        let sent = self
            .targets
            .iter()
            .filter(|t| t.result == Some(DeliveryResult::Sent))
            .count();
        (sent, self.targets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_failing_while_a_target_fails_pending_until_all_are_tried() {
        let target = |result, attempts| AlertTargetStatus {
            target: "webhook".into(),
            result,
            attempts,
            error: None,
        };
        let mut a = AlertStatus {
            id: "a".into(),
            rule: "bot_failed".into(),
            severity: "critical".into(),
            title: "Bot X failed".into(),
            text: "gave up".into(),
            raised_at: "2026-12-05T12:00:00Z".parse().unwrap(),
            targets: vec![target(None, 0), target(None, 0)],
        };
        assert_eq!(a.progress(), AlertProgress::Pending);
        a.targets[0] = target(Some(DeliveryResult::Sent), 1);
        assert_eq!(a.progress(), AlertProgress::Pending);
        a.targets[1] = target(Some(DeliveryResult::Failed), 1);
        assert_eq!(a.progress(), AlertProgress::Failing);
        a.targets[1] = target(Some(DeliveryResult::Sent), 2);
        assert_eq!((a.progress(), a.sent_of()), (AlertProgress::Sent, (2, 2)));
        a.targets[1] = target(Some(DeliveryResult::GivenUp), 9);
        assert_eq!(
            (a.progress(), a.sent_of()),
            (AlertProgress::GivenUp, (1, 2))
        );
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["targets"][1]["result"], "given_up");
        assert!(json["targets"][0].get("error").is_none());
    }
}
