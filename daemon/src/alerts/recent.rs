//! The newest alerts as they stand (what the snapshot's `alerts` and the `alert.changed`
//! events carry): each raised alert with what became of it at each target. Rebuilt at
//! start from the history's tail and the outbox, so a restart keeps the list. Pure: the
//! caller publishes what each change answers.

use super::outbox::Pending;
use super::rules::Alert;
use mem_protocol::alerts::{AlertDelivery, AlertStatus, AlertTargetStatus};
use std::collections::VecDeque;

/// How many alerts are kept.
pub const KEPT: usize = 20;

/// The newest [`KEPT`] alerts, oldest first.
#[derive(Debug, Default)]
pub struct Recent {
    alerts: VecDeque<AlertStatus>,
}

impl Recent {
    /// The list as the history's lines (oldest first) and the outbox's pending deliveries
    /// leave it.
    pub fn rebuild<'a>(
        history: impl IntoIterator<Item = AlertDelivery>,
        pending: impl IntoIterator<Item = &'a Pending>,
    ) -> Recent {
        let mut recent = Recent::default();
        for line in history {
            if !recent.alerts.iter().any(|a| a.id == line.alert_id) {
                recent.insert(AlertStatus {
                    id: line.alert_id.clone(),
                    rule: line.rule.clone(),
                    severity: line.severity.clone(),
                    title: line.title.clone(),
                    text: line.text.clone(),
                    raised_at: line.raised_at,
                    targets: Vec::new(),
                });
            }
            recent.tried(&line);
        }
        for p in pending {
            if !recent.alerts.iter().any(|a| a.id == p.alert.id) {
                recent.insert(status_of(&p.alert, &[]));
            }
            if let Some(a) = recent.alerts.iter_mut().find(|a| a.id == p.alert.id) {
                if !a.targets.iter().any(|t| t.target == p.target) {
                    a.targets.push(untried(&p.target));
                }
            }
        }
        recent
    }

    /// An alert was queued for `targets`: answers it as it stands.
    pub fn raised(&mut self, alert: &Alert, targets: &[String]) -> AlertStatus {
        let status = status_of(alert, targets);
        self.insert(status.clone());
        status
    }

    /// A try at one target: answers the alert as it now stands, if it is still kept.
    pub fn tried(&mut self, line: &AlertDelivery) -> Option<AlertStatus> {
        let alert = self.alerts.iter_mut().find(|a| a.id == line.alert_id)?;
        let state = AlertTargetStatus {
            target: line.target.clone(),
            result: Some(line.result),
            attempts: line.attempt,
            error: line.error.clone(),
        };
        match alert.targets.iter_mut().find(|t| t.target == line.target) {
            Some(t) => *t = state,
            None => alert.targets.push(state),
        }
        Some(alert.clone())
    }

    /// Oldest first.
    pub fn list(&self) -> Vec<AlertStatus> {
        self.alerts.iter().cloned().collect()
    }

    /// In raise order (an alert from before a restart may come after a newer one in the
    /// history); the oldest dropped past [`KEPT`].
    fn insert(&mut self, status: AlertStatus) {
        let at = self
            .alerts
            .iter()
            .rposition(|a| a.raised_at <= status.raised_at)
            .map_or(0, |i| i + 1);
        self.alerts.insert(at, status);
        while self.alerts.len() > KEPT {
            self.alerts.pop_front();
        }
    }
}

fn status_of(alert: &Alert, targets: &[String]) -> AlertStatus {
    AlertStatus {
        id: alert.id.clone(),
        rule: alert.rule.name(),
        severity: alert.severity.name().to_string(),
        title: alert.title.clone(),
        text: alert.text.clone(),
        raised_at: alert.raised_at,
        targets: targets.iter().map(|t| untried(t)).collect(),
    }
}

fn untried(target: &str) -> AlertTargetStatus {
    AlertTargetStatus {
        target: target.to_string(),
        result: None,
        attempts: 0,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::{Rule, Severity};
    use mem_protocol::alerts::{AlertProgress, DeliveryResult};

    fn alert(id: &str, minute: u32) -> Alert {
        Alert {
            id: id.into(),
            rule: Rule::BotFailed,
            severity: Severity::Critical,
            key: format!("bot_failed:{id}"),
            title: format!("Bot {id} failed"),
            text: "gave up".into(),
            raised_at: format!("2026-12-05T12:{minute:02}:00Z").parse().unwrap(),
        }
    }

    fn line(a: &Alert, target: &str, result: DeliveryResult, attempt: u32) -> AlertDelivery {
        AlertDelivery {
            at: a.raised_at,
            alert_id: a.id.clone(),
            rule: a.rule.name(),
            severity: a.severity.name().into(),
            title: a.title.clone(),
            text: a.text.clone(),
            raised_at: a.raised_at,
            target: target.into(),
            result,
            attempt,
            error: (result == DeliveryResult::Failed).then(|| "503".to_string()),
        }
    }

    #[test]
    fn an_alert_moves_from_pending_to_failing_to_sent_as_its_targets_are_tried() {
        let mut r = Recent::default();
        let a = alert("a", 0);
        let targets = ["telegram/1".to_string(), "log".to_string()];
        let s = r.raised(&a, &targets);
        assert_eq!(
            (s.progress(), s.severity.as_str()),
            (AlertProgress::Pending, "critical")
        );
        let s = r.tried(&line(&a, "log", DeliveryResult::Sent, 1)).unwrap();
        assert_eq!(s.progress(), AlertProgress::Pending);
        let s = r
            .tried(&line(&a, "telegram/1", DeliveryResult::Failed, 1))
            .unwrap();
        assert_eq!(s.progress(), AlertProgress::Failing);
        assert_eq!(s.targets[0].error.as_deref(), Some("503"));
        let s = r
            .tried(&line(&a, "telegram/1", DeliveryResult::Sent, 2))
            .unwrap();
        assert_eq!(
            (s.progress(), s.targets[0].attempts),
            (AlertProgress::Sent, 2)
        );
        assert_eq!(r.list().len(), 1);
        assert!(
            r.tried(&line(&alert("gone", 1), "log", DeliveryResult::Sent, 1))
                .is_none()
        );
    }

    #[test]
    fn the_list_is_rebuilt_from_the_history_and_the_outbox_newest_kept() {
        let mut history = Vec::new();
        for i in 0..(KEPT as u32 + 5) {
            history.push(line(
                &alert(&format!("h{i}"), i),
                "log",
                DeliveryResult::Sent,
                1,
            ));
        }
        let failing = alert("f", 50);
        history.push(line(&failing, "webhook", DeliveryResult::Failed, 1));
        let queued = alert("q", 40);
        let pending = [
            Pending {
                alert: failing.clone(),
                target: "webhook".into(),
            },
            Pending {
                alert: queued.clone(),
                target: "log".into(),
            },
        ];
        let r = Recent::rebuild(history, pending.iter());
        let list = r.list();
        assert_eq!(list.len(), KEPT);
        let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids[KEPT - 1], "f", "newest last: {ids:?}");
        assert_eq!(ids[KEPT - 2], "q", "in raise order: {ids:?}");
        assert!(!ids.contains(&"h0"), "the oldest dropped");
        assert_eq!(list[KEPT - 1].progress(), AlertProgress::Failing);
        assert_eq!(list[KEPT - 2].progress(), AlertProgress::Pending);
    }
}
