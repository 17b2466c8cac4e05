//! The rules: which condition raises which alert, read from the daemon's events.
//!
//! [`Watcher::on_event`] is pure over its own state (each deployment's last status): the
//! same events always raise the same alerts, so the tests feed it events directly. Each
//! alert carries a dedup `key` naming its condition (`bot_failed:<deployment>`); the
//! [`Throttle`](super::throttle::Throttle) lets one alert a key through per window.

use chrono::{DateTime, Utc};
use mem_protocol::Event;
use mem_protocol::backtest::QueueJobState;
use mem_protocol::deploy::{DeployedStrategy, DeploymentId, DeploymentStatus};
use mem_protocol::jobs::JobOutcome;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What an alert is about: each rule can be switched off (`[alerts.rules.<rule>]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A bot gave up: restarts exhausted, or it never became ready.
    BotFailed,
    /// A bot restarted `restarts_threshold` times or more.
    BotRestarting,
    /// A bot's API stopped answering (it is restarted).
    BotUnresponsive,
    /// A scheduled job (retraining, refresh, backup...) or a backtest failed.
    JobFailed,
    /// The market data are stale.
    DataStale,
    /// A bot that trades for real started.
    LiveDeploy,
    /// A bot that traded for real stopped.
    LiveStop,
    /// A model was promoted.
    ModelPromoted,
    /// A trained model was rejected.
    ModelRejected,
    /// The performance monitor cut a strategy's position size.
    RiskCut,
    /// A learned strategy was deprecated.
    LearnedDeprecated,
    /// The risk guard tripped (the `risk.tripped` event).
    RiskTripped,
    DaemonStarted,
    DaemonStopping,
    /// Each day's summary: per bot P&L, open trades, the day's decisions.
    DailySummary,
    /// `alerts.test`.
    Test,
}

impl Rule {
    pub const ALL: [Rule; 16] = [
        Rule::BotFailed,
        Rule::BotRestarting,
        Rule::BotUnresponsive,
        Rule::JobFailed,
        Rule::DataStale,
        Rule::LiveDeploy,
        Rule::LiveStop,
        Rule::ModelPromoted,
        Rule::ModelRejected,
        Rule::RiskCut,
        Rule::LearnedDeprecated,
        Rule::RiskTripped,
        Rule::DaemonStarted,
        Rule::DaemonStopping,
        Rule::DailySummary,
        Rule::Test,
    ];

    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Whether the same key alerts once per dedup window. Not for the daemon's own
    /// starts and stops (each one is news, restarts included) nor `alerts.test`.
    pub fn deduplicated(self) -> bool {
        !matches!(
            self,
            Rule::Test | Rule::DaemonStarted | Rule::DaemonStopping
        )
    }

    /// The severity a rule has unless the config says otherwise.
    pub fn default_severity(self) -> Severity {
        match self {
            Rule::BotFailed | Rule::RiskTripped => Severity::Critical,
            Rule::BotRestarting
            | Rule::BotUnresponsive
            | Rule::JobFailed
            | Rule::DataStale
            | Rule::ModelRejected
            | Rule::RiskCut
            | Rule::LiveDeploy
            | Rule::LiveStop
            | Rule::DaemonStopping => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// `info`, `warning`, `critical`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn icon(self) -> &'static str {
        match self {
            Severity::Info => "ℹ️",
            Severity::Warning => "⚠️",
            Severity::Critical => "🚨",
        }
    }
}

/// A condition to tell someone about, before the config's severity and the throttle.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub rule: Rule,
    /// Names the condition: the same key inside the dedup window alerts once.
    pub key: String,
    pub title: String,
    pub text: String,
}

impl Raised {
    pub fn new(
        rule: Rule,
        key: impl Into<String>,
        title: impl Into<String>,
        text: impl Into<String>,
    ) -> Raised {
        Raised {
            rule,
            key: key.into(),
            title: title.into(),
            text: text.into(),
        }
    }
}

/// An alert as queued and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: String,
    pub rule: Rule,
    pub severity: Severity,
    pub key: String,
    pub title: String,
    pub text: String,
    pub raised_at: DateTime<Utc>,
}

impl Alert {
    /// One message: the icon, the title, the text.
    pub fn message(&self) -> String {
        format!("{} {}\n{}", self.severity.icon(), self.title, self.text)
    }
}

/// Reads events into alerts; remembers what it needs to see a change (each deployment's
/// last status).
#[derive(Debug)]
pub struct Watcher {
    restarts_threshold: u32,
    last: HashMap<DeploymentId, DeploymentStatus>,
}

impl Watcher {
    pub fn new(restarts_threshold: u32) -> Watcher {
        Watcher {
            restarts_threshold,
            last: HashMap::new(),
        }
    }

    /// Starts from the deployments as they are, so only later changes raise alerts.
    pub fn know(&mut self, deployments: &[DeployedStrategy]) {
        for d in deployments {
            self.last.insert(d.deployment_id, d.status);
        }
    }

    /// The alerts an event raises.
    pub fn on_event(&mut self, event: &Event) -> Vec<Raised> {
        match event {
            Event::DeploymentChanged(c) => self.deployment(&c.deployment),
            Event::JobFinished(run) if run.outcome == JobOutcome::Failed => vec![Raised::new(
                Rule::JobFailed,
                format!("job_failed:{}", run.job),
                format!("Job {} failed", run.job),
                run.error.clone().unwrap_or_else(|| run.summary.clone()),
            )],
            Event::QueueChanged(job) if job.state == QueueJobState::Failed => vec![Raised::new(
                Rule::JobFailed,
                format!("job_failed:queue:{}", job.id),
                format!("Backtest of {} failed", job.strategy),
                first_line(job.error.as_deref().unwrap_or("no reason given")),
            )],
            Event::MarketChanged(state) => {
                let Some(c) = &state.conditions else {
                    return vec![];
                };
                let f = &c.freshness;
                if !f.stale || f.demo {
                    return vec![];
                }
                vec![Raised::new(
                    Rule::DataStale,
                    "data_stale",
                    "Market data are stale",
                    format!(
                        "the newest candle closed at {} ({} old; stale after {})",
                        f.as_of.format("%Y-%m-%d %H:%M UTC"),
                        duration_text(f.age_secs),
                        duration_text(f.stale_after_secs)
                    ),
                )]
            }
            Event::ModelChanged(m) => {
                let rule = match m.action.as_str() {
                    "promoted" => Rule::ModelPromoted,
                    "rejected" => Rule::ModelRejected,
                    _ => return vec![],
                };
                vec![Raised::new(
                    rule,
                    format!("{}:{}", rule.name(), m.version),
                    format!("Model {} {}", m.version, m.action),
                    m.reason.clone(),
                )]
            }
            // The risk guard's own event: one alert per limit (per bot for `bot_loss`).
            Event::RiskTripped(trip) => {
                let mut key = format!("risk_tripped:{}", trip.limit.config_key());
                if !trip.limit.is_fleet_wide() {
                    for b in &trip.bots {
                        key.push_str(&format!(":{}", b.deployment_id));
                    }
                }
                vec![Raised::new(
                    Rule::RiskTripped,
                    key,
                    "Risk guard tripped: no new entries",
                    trip.message.clone(),
                )]
            }
            Event::DaemonStopping(s) => vec![Raised::new(
                Rule::DaemonStopping,
                "daemon_stopping",
                "memd is stopping",
                format!("reason: {}", s.reason),
            )],
            _ => vec![],
        }
    }

    fn deployment(&mut self, d: &DeployedStrategy) -> Vec<Raised> {
        use DeploymentStatus as S;
        let before = self.last.insert(d.deployment_id, d.status);
        if before == Some(d.status) {
            return vec![];
        }
        let id = d.deployment_id;
        let name = &d.strategy_name;
        let error = d.last_error.as_deref().map(first_line).unwrap_or_default();
        let mut out = Vec::new();
        match d.status {
            S::Failed => out.push(Raised::new(
                Rule::BotFailed,
                format!("bot_failed:{id}"),
                format!("Bot {name} failed"),
                format!("gave up after {} restarts: {error}", d.restarts),
            )),
            S::Crashed if error.contains("has not answered") => out.push(Raised::new(
                Rule::BotUnresponsive,
                format!("bot_unresponsive:{id}"),
                format!("Bot {name} is unresponsive"),
                error.clone(),
            )),
            S::Restarting | S::Crashed if d.restarts >= self.restarts_threshold => {
                out.push(Raised::new(
                    Rule::BotRestarting,
                    format!("bot_restarting:{id}"),
                    format!("Bot {name} keeps restarting"),
                    format!("{} restarts; last: {error}", d.restarts),
                ))
            }
            S::Running if !d.dry_run && matches!(before, None | Some(S::Starting)) => {
                out.push(Raised::new(
                    Rule::LiveDeploy,
                    format!("live_deploy:{id}"),
                    format!("Live bot {name} started"),
                    format!("deployment {id} trades for real"),
                ))
            }
            S::Stopped if !d.dry_run => out.push(Raised::new(
                Rule::LiveStop,
                format!("live_stop:{id}"),
                format!("Live bot {name} stopped"),
                format!(
                    "deployment {id}; profit {:.2} {}, {} open trades",
                    d.stats.profit_all,
                    d.stats.stake_currency.as_deref().unwrap_or(""),
                    d.stats.open_trades
                ),
            )),
            _ => {}
        }
        out
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    line.chars().take(300).collect()
}

/// `3h 5m`, `45 s`.
pub fn duration_text(secs: i64) -> String {
    match secs {
        i64::MAX => "forever".into(),
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::deploy::DeploymentChanged;

    fn changed(d: &DeployedStrategy) -> Event {
        Event::DeploymentChanged(Box::new(DeploymentChanged {
            deployment: d.clone(),
        }))
    }

    fn deployed() -> DeployedStrategy {
        serde_json::from_value(serde_json::json!({
            "deploymentId": DeploymentId::new_random(), "strategyId": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec",
            "strategyName": "MACD", "deploymentType": "freqtrade", "startedAt": "2026-11-22T01:00:00Z",
            "status": "starting", "dryRun": true, "startedBy": "manual", "restarts": 0,
            "stats": {"openTrades": 0, "closedTrades": 0, "profitClosed": 0.0, "profitAll": 0.0}
        }))
        .unwrap()
    }

    #[test]
    fn a_bot_crashing_past_its_restarts_raises_restarting_then_failed_once_each() {
        let mut w = Watcher::new(2);
        let mut d = deployed();
        let mut rules = Vec::new();
        for (status, restarts) in [
            (DeploymentStatus::Running, 0),
            (DeploymentStatus::Crashed, 0),
            (DeploymentStatus::Restarting, 1),
            (DeploymentStatus::Crashed, 1),
            (DeploymentStatus::Restarting, 2),
            (DeploymentStatus::Restarting, 2),
            (DeploymentStatus::Failed, 2),
        ] {
            d.status = status;
            d.restarts = restarts;
            rules.extend(w.on_event(&changed(&d)).into_iter().map(|r| r.rule));
        }
        assert_eq!(rules, [Rule::BotRestarting, Rule::BotFailed]);
    }

    #[test]
    fn live_bots_starting_and_stopping_raise_dry_runs_do_not() {
        let mut w = Watcher::new(2);
        let mut d = deployed();
        d.status = DeploymentStatus::Running;
        assert!(w.on_event(&changed(&d)).is_empty(), "dry run");
        let mut live = deployed();
        live.dry_run = false;
        w.know(std::slice::from_ref(&live));
        live.status = DeploymentStatus::Running;
        assert_eq!(w.on_event(&changed(&live))[0].rule, Rule::LiveDeploy);
        live.status = DeploymentStatus::Stopped;
        assert_eq!(w.on_event(&changed(&live))[0].rule, Rule::LiveStop);
    }

    #[test]
    fn the_risk_guard_tripping_raises_one_alert_per_limit() {
        let mut w = Watcher::new(2);
        let trip: mem_protocol::risk::RiskTrip = serde_json::from_value(serde_json::json!({
            "limit": "fleet_drawdown", "figure": 12.0, "threshold": 10.0, "bots": [],
            "at": "2026-11-22T02:00:00Z",
            "message": "the fleet's drawdown 12.00 crossed [risk] max_drawdown 10.00"
        }))
        .unwrap();
        let r = w.on_event(&Event::RiskTripped(Box::new(trip)));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].rule, Rule::RiskTripped);
        assert_eq!(r[0].key, "risk_tripped:max_drawdown");
        assert!(r[0].text.contains("12.00"), "{}", r[0].text);
    }
}
