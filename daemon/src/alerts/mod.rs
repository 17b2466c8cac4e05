//! Alerts: telling the trader what happened without anyone looking (issue 25).
//!
//! Rules ([`rules`]) read the daemon's events; an alert that passes its rule's switch
//! and the dedup window ([`throttle`]) is written to the outbox ([`outbox`]) before
//! anything else, then each target's own task delivers it ([`send`]): Telegram chats, a
//! webhook, memd's log. The daily summary and the Telegram commands are in [`summary`]
//! and [`telegram`].
//!
//! Invariants:
//! - raising never waits on a channel: a delivery task per target, woken by a `Notify`;
//!   a target that is down is retried with backoff ([`throttle::backoff`]) while the
//!   others go on;
//! - alerts waiting together for a text channel (a Telegram chat, a Discord or Slack
//!   webhook) go out as one message, as many as fit its length ([`send::compose`]): fifty
//!   bots failing at once are a few messages, not fifty held back by the rate limit and
//!   Telegram's (about one message a second a chat); each alert has its own history line;
//! - an alert is in `<data>/alerts/outbox.jsonl` before it is sent, and leaves it when
//!   sent or given up (`[alerts] give_up_after_hours`): a crash loses none;
//! - each try is a line of `<data>/alerts/history.jsonl` (sent, failed, given up);
//! - a condition alerts once per `dedup_window_secs`, restarts included: the windows are
//!   saved in `<data>/alerts/dedup.json` before the alert is queued ([`throttle::Dedup`]);
//! - each alert as it stands (raised, then tried at each target) is announced on the bus
//!   (`alert.changed`) and kept among the newest few ([`recent`]) for the snapshot; the
//!   `recent` lock is held from the outbox write to the announcement, so a target's try
//!   is never announced before its alert;
//! - the bot token and the webhook URL reach no log, event, history or answer.

pub mod config;
pub mod outbox;
pub mod recent;
pub mod rules;
pub mod send;
pub mod summary;
pub mod telegram;
pub mod throttle;

use crate::bus::EventBus;
use crate::linelog::{self, Durability};
use chrono::Utc;
use config::AlertsSettings;
use mem_protocol::Event;
use mem_protocol::RpcError;
use mem_protocol::alerts::{
    AlertDelivery, AlertStatus, AlertsHistory, AlertsHistoryParams, AlertsTestParams,
    AlertsTestResult, DeliveryResult,
};
use outbox::Outbox;
use recent::Recent;
use rules::{Alert, Raised, Rule};
use send::Target;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use throttle::Dedup;
use tokio::sync::Notify;
use tracing::warn;

/// `<data>/alerts/dedup.json`: when each condition's dedup window started.
const DEDUP_FILE: &str = "dedup.json";

/// The alerts subsystem: the outbox, the targets, the counters.
pub struct Alerts {
    settings: AlertsSettings,
    dir: PathBuf,
    outbox: Mutex<Outbox>,
    dedup: Mutex<Dedup>,
    /// The newest alerts as they stand; taken before `outbox` when both are.
    recent: Mutex<Recent>,
    bus: Arc<EventBus>,
    targets: Vec<Target>,
    wake: HashMap<String, Arc<Notify>>,
    http: reqwest::Client,
    history_lock: Mutex<()>,
    /// Per channel (`telegram`, `webhook`, `log`): deliveries sent, tries failed.
    counters: HashMap<&'static str, (AtomicU64, AtomicU64)>,
}

impl Alerts {
    /// Opens `<data>/alerts/` (the outbox as a crash left it); alerts as they stand are
    /// announced on `bus`.
    pub fn open(
        data_dir: &Path,
        settings: AlertsSettings,
        bus: Arc<EventBus>,
    ) -> anyhow::Result<Alerts> {
        let dir = data_dir.join("alerts");
        crate::datadir::ensure_dir(&dir, 0o700)?;
        let outbox = Outbox::open(&dir.join("outbox.jsonl"))?;
        let recent = Recent::rebuild(read_history(&dir.join(HISTORY_FILE))?, outbox.pending());
        let targets = Target::all(
            settings.telegram.as_ref(),
            settings.webhook.as_ref(),
            settings.log,
        );
        let wake = targets
            .iter()
            .map(|t| (t.name(), Arc::new(Notify::new())))
            .collect();
        let counters = ["telegram", "webhook", "log"]
            .into_iter()
            .map(|c| (c, (AtomicU64::new(0), AtomicU64::new(0))))
            .collect();
        let dedup = Dedup::load(&dir.join(DEDUP_FILE), settings.dedup_window, Utc::now());
        Ok(Alerts {
            dedup: Mutex::new(dedup),
            recent: Mutex::new(recent),
            bus,
            settings,
            dir,
            outbox: Mutex::new(outbox),
            targets,
            wake,
            http: send::client(),
            history_lock: Mutex::new(()),
            counters,
        })
    }

    pub fn settings(&self) -> &AlertsSettings {
        &self.settings
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Raises an alert: checked against its rule's switch and the dedup window, queued on
    /// disk for every target, the targets woken. Answers the alert, if it goes out.
    pub fn raise(&self, raised: Raised) -> Option<Alert> {
        self.raise_all(vec![raised]).pop()
    }

    /// Raises alerts together (the conditions of the events read at once): one dedup
    /// save, one outbox write for them all, so fifty bots failing at once cost one disk
    /// sync, not fifty, and reach their targets together. Answers those that go out.
    pub fn raise_all(&self, raised: Vec<Raised>) -> Vec<Alert> {
        if self.targets.is_empty() {
            return Vec::new();
        }
        let mut admitted: Vec<Raised> = raised
            .into_iter()
            .filter(|r| self.settings.rule_enabled(r.rule))
            .collect();
        if admitted.iter().any(|r| r.rule.deduplicated()) {
            let mut dedup = self.dedup.lock().expect("dedup lock");
            let now = Utc::now();
            admitted.retain(|r| !r.rule.deduplicated() || dedup.admit(&r.key, now));
            if admitted.iter().any(|r| r.rule.deduplicated()) {
                if let Err(e) = dedup.save(&self.dir.join(DEDUP_FILE)) {
                    warn!(error = %e, "cannot save the alerts' dedup windows; a restart may send these conditions again");
                }
            }
        }
        let targets: Vec<String> = self.targets.iter().map(Target::name).collect();
        self.queue(admitted.into_iter().map(|r| (r, targets.clone())).collect())
    }

    /// Queues each alert for its targets (on disk, one sync), announces each, wakes the
    /// targets.
    fn queue(&self, raised: Vec<(Raised, Vec<String>)>) -> Vec<Alert> {
        if raised.is_empty() {
            return Vec::new();
        }
        let now = Utc::now();
        let queued: Vec<(Alert, Vec<String>)> = raised
            .into_iter()
            .map(|(r, targets)| {
                let alert = Alert {
                    id: uuid::Uuid::new_v4().to_string(),
                    severity: self.settings.severity(r.rule),
                    rule: r.rule,
                    key: r.key,
                    title: r.title,
                    text: r.text,
                    raised_at: now,
                };
                (alert, targets)
            })
            .collect();
        {
            let mut recent = self.recent.lock().expect("recent lock");
            if let Err(e) = self.outbox.lock().expect("outbox lock").raise_all(&queued) {
                for (alert, _) in &queued {
                    warn!(error = %e, rule = %alert.rule.name(), "cannot queue an alert: {}", alert.title);
                }
                return Vec::new();
            }
            for (alert, targets) in &queued {
                let status = recent.raised(alert, targets);
                self.bus.publish(Event::AlertChanged(Box::new(status)));
            }
        }
        let mut woken: Vec<&str> = Vec::new();
        for (_, targets) in &queued {
            for t in targets {
                if !woken.contains(&t.as_str()) {
                    woken.push(t);
                    if let Some(wake) = self.wake.get(t) {
                        wake.notify_one();
                    }
                }
            }
        }
        queued.into_iter().map(|(alert, _)| alert).collect()
    }

    /// `alerts.test`: a test alert to one channel or all.
    pub fn test(&self, p: AlertsTestParams) -> Result<AlertsTestResult, RpcError> {
        let targets: Vec<String> = self
            .targets
            .iter()
            .filter(|t| {
                p.channel
                    .as_deref()
                    .is_none_or(|c| c == t.channel() || c == t.name())
            })
            .map(Target::name)
            .collect();
        if targets.is_empty() {
            let configured: Vec<&str> = self.targets.iter().map(Target::channel).collect();
            return Err(RpcError::invalid_params(
                "alerts.test",
                format!(
                    "no channel {} is configured (configured: {})",
                    p.channel.as_deref().unwrap_or("at all"),
                    if configured.is_empty() {
                        "none".into()
                    } else {
                        configured.join(", ")
                    }
                ),
            ));
        }
        let raised = Raised::new(
            Rule::Test,
            "test",
            "memd test alert",
            format!(
                "memd {} on {} can reach you.",
                env!("CARGO_PKG_VERSION"),
                hostname()
            ),
        );
        let alert = self
            .queue(vec![(raised, targets.clone())])
            .pop()
            .ok_or_else(|| {
                RpcError::internal("cannot write the alerts' outbox (see memd's log)")
            })?;
        Ok(AlertsTestResult {
            alert_id: alert.id,
            targets,
        })
    }

    /// `alerts.history`: the newest deliveries, oldest first.
    pub fn history(&self, p: AlertsHistoryParams) -> Result<AlertsHistory, RpcError> {
        let limit = p.limit.unwrap_or(50).clamp(1, 1000);
        let mut deliveries = read_history(&self.history_path())
            .map_err(|e| RpcError::internal(format!("alerts history: {e}")))?;
        let skip = deliveries.len().saturating_sub(limit);
        deliveries.drain(..skip);
        Ok(AlertsHistory {
            deliveries,
            pending: self.outbox.lock().expect("outbox lock").len(),
        })
    }

    /// Prometheus lines: alerts sent and tries failed, per channel.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        for (name, help, pick) in [
            (
                "memd_alerts_sent_total",
                "Alerts delivered, per channel.",
                0,
            ),
            (
                "memd_alerts_failed_total",
                "Alert deliveries that failed (each try), per channel.",
                1,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for channel in ["telegram", "webhook", "log"] {
                let (sent, failed) = &self.counters[channel];
                let n = if pick == 0 { sent } else { failed }.load(Ordering::Relaxed);
                out.push_str(&format!("{name}{{channel=\"{channel}\"}} {n}\n"));
            }
        }
        out
    }

    /// The newest alerts as they stand, oldest first (the snapshot's `alerts`).
    pub fn recent(&self) -> Vec<AlertStatus> {
        self.recent.lock().expect("recent lock").list()
    }

    /// Archives the history of tries when it is past `max_bytes` (gzip, beside it; the
    /// newest `keep` archives kept); `alerts.history` then reads the tries since. Answers
    /// the archive written.
    pub fn roll_history(
        &self,
        max_bytes: u64,
        keep: usize,
        now: chrono::DateTime<Utc>,
    ) -> anyhow::Result<Option<PathBuf>> {
        let path = self.history_path();
        let earlier = linelog::archive_rolled(&path, keep, now)?;
        {
            let _guard = self.history_lock.lock().expect("history lock");
            linelog::roll_aside(&path, max_bytes)?;
        }
        Ok(linelog::archive_rolled(&path, keep, now)?.or(earlier))
    }

    /// Rewrites the outbox with what is pending (see [`Outbox::compact`]): the retention
    /// job's. Answers the bytes it holds now.
    pub fn compact_outbox(&self) -> std::io::Result<u64> {
        self.outbox.lock().expect("outbox lock").compact()
    }

    fn history_path(&self) -> PathBuf {
        self.dir.join(HISTORY_FILE)
    }

    /// The tries of a delivery: a history line each (one write), the counters, each
    /// alert as it now stands announced.
    fn record(&self, target: &Target, tries: &[(&Alert, DeliveryResult, u32, Option<String>)]) {
        let (sent, failed) = &self.counters[target.channel()];
        let now = Utc::now();
        let mut text = Vec::new();
        let mut lines = Vec::with_capacity(tries.len());
        for (alert, result, attempt, error) in tries {
            match result {
                DeliveryResult::Sent => sent.fetch_add(1, Ordering::Relaxed),
                _ => failed.fetch_add(1, Ordering::Relaxed),
            };
            let line = AlertDelivery {
                at: now,
                alert_id: alert.id.clone(),
                rule: alert.rule.name(),
                severity: alert.severity.name().to_string(),
                title: alert.title.clone(),
                text: alert.text.clone(),
                raised_at: alert.raised_at,
                target: target.name(),
                result: *result,
                attempt: *attempt,
                error: error.clone(),
            };
            if serde_json::to_writer(&mut text, &line).is_ok() {
                text.push(b'\n');
            }
            lines.push(line);
        }
        {
            let _guard = self.history_lock.lock().expect("history lock");
            if let Err(e) = linelog::append(&self.history_path(), 0o600, &text, Durability::Batched)
            {
                warn!(error = %e, "cannot write the alerts' history");
            }
        }
        let mut recent = self.recent.lock().expect("recent lock");
        for line in &lines {
            if let Some(status) = recent.tried(line) {
                self.bus.publish(Event::AlertChanged(Box::new(status)));
            }
        }
    }

    /// Waits (at most `timeout`) for the outbox to empty: at shutdown, so that
    /// `daemon_stopping` goes out; what is left is sent after the next start.
    pub async fn drain(&self, timeout: std::time::Duration) {
        let until = Instant::now() + timeout;
        // The bus task raises `daemon_stopping` a moment after the event is published.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        while Instant::now() < until && !self.outbox.lock().expect("outbox lock").is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Starts a delivery task per target, and the task that reads the bus.
    pub fn spawn(self: &Arc<Self>, daemon: std::sync::Weak<crate::Daemon>) {
        for target in &self.targets {
            tokio::spawn(deliver(self.clone(), target.clone()));
        }
        tokio::spawn(watch_bus(self.clone(), daemon.clone()));
        summary::spawn(self.clone(), daemon.clone());
        telegram::spawn(self.clone(), daemon);
    }
}

/// `<data>/alerts/history.jsonl`: a line per try.
const HISTORY_FILE: &str = "history.jsonl";

/// The history's newest lines (its last 512 KiB), oldest first.
fn read_history(path: &Path) -> std::io::Result<Vec<AlertDelivery>> {
    let bytes = linelog::read_tail(path, 512 * 1024)?;
    Ok(linelog::lines(&bytes)
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

/// Alerts a message of several holds at most (what fits decides first).
const MAX_BATCH: usize = 100;

/// One target's delivery loop: the rate limit, then what waits for the target, oldest
/// first (for a text channel, as many as fit one message: alerts raised together go out
/// together), a try; on failure the backoff, then the same alerts again.
async fn deliver(alerts: Arc<Alerts>, target: Target) {
    let name = target.name();
    let wake = alerts.wake[&name].clone();
    let mut limit = target.rate_limit(alerts.settings.rate_limit_per_minute);
    let mut failures = 0u32;
    // Tries so far of the alerts still pending here.
    let mut tries: HashMap<String, u32> = HashMap::new();
    let take = if target.message_limit().is_some() {
        MAX_BATCH
    } else {
        1
    };
    loop {
        if alerts
            .outbox
            .lock()
            .expect("outbox lock")
            .next_for(&name)
            .is_none()
        {
            wake.notified().await;
            continue;
        }
        // Waiting for the rate limit lets what is raised meanwhile join the message.
        let wait = limit.wait(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let waiting: Vec<Alert> = alerts
            .outbox
            .lock()
            .expect("outbox lock")
            .waiting_for(&name, take)
            .into_iter()
            .map(|p| p.alert)
            .collect();
        let (old, mut batch): (Vec<Alert>, Vec<Alert>) = waiting.into_iter().partition(|a| {
            (Utc::now() - a.raised_at).to_std().unwrap_or_default() > alerts.settings.give_up_after
        });
        if !old.is_empty() {
            let given_up: Vec<_> = old
                .iter()
                .map(|a| {
                    let attempt = tries.remove(&a.id).unwrap_or(0) + 1;
                    (a, DeliveryResult::GivenUp, attempt, None)
                })
                .collect();
            alerts.record(&target, &given_up);
            finish(&alerts, &old, &name);
        }
        if batch.is_empty() {
            continue;
        }
        if let Some(chars) = target.message_limit() {
            let fits = send::compose(&batch, chars).1;
            batch.truncate(fits.max(1));
        }
        limit.record(Instant::now());
        match send::send(&alerts.http, &target, &batch).await {
            Ok(()) => {
                let sent: Vec<_> = batch
                    .iter()
                    .map(|a| {
                        let attempt = tries.remove(&a.id).unwrap_or(0) + 1;
                        (a, DeliveryResult::Sent, attempt, None)
                    })
                    .collect();
                alerts.record(&target, &sent);
                finish(&alerts, &batch, &name);
                failures = 0;
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    warn!(target = %name, %error, "an alert could not be sent; retrying with backoff");
                }
                let failed: Vec<_> = batch
                    .iter()
                    .map(|a| {
                        let attempt = tries.entry(a.id.clone()).or_insert(0);
                        *attempt += 1;
                        (a, DeliveryResult::Failed, *attempt, Some(error.clone()))
                    })
                    .collect();
                alerts.record(&target, &failed);
                tokio::time::sleep(throttle::backoff(failures, alerts.settings.retry_max)).await;
            }
        }
    }
}

/// `done` are done at `target` (sent, or given up): one line each, one sync.
fn finish(alerts: &Alerts, done: &[Alert], target: &str) {
    if done.is_empty() {
        return;
    }
    let ids: Vec<&str> = done.iter().map(|a| a.id.as_str()).collect();
    if let Err(e) = alerts
        .outbox
        .lock()
        .expect("outbox lock")
        .done(&ids, target)
    {
        warn!(error = %e, "cannot mark alerts done in the outbox; they may be sent again after a restart");
    }
}

/// Reads the bus: each event through the rules. Periodic events and bots' log lines are
/// skipped unread.
async fn watch_bus(alerts: Arc<Alerts>, daemon: std::sync::Weak<crate::Daemon>) {
    use mem_protocol::Topic;
    use mem_protocol::jsonrpc::ServerMessage;
    let Some(d) = daemon.upgrade() else { return };
    let (mut rx, _) = d.bus.subscribe();
    let mut watcher = rules::Watcher::new(alerts.settings.restarts_threshold);
    watcher.know(&d.supervisor.deployed(true).deployments);
    drop(d);
    alerts.raise(Raised::new(
        Rule::DaemonStarted,
        "daemon_started",
        "memd started",
        format!("memd {} on {}", env!("CARGO_PKG_VERSION"), hostname()),
    ));
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let lagged = |n: u64| {
        warn!(
            missed = n,
            "the alerts fell behind the event bus; some events were not read"
        );
    };
    loop {
        // The next event, then every one already there: their alerts are raised together.
        let mut events = match rx.recv().await {
            Ok(p) => vec![p],
            Err(RecvError::Lagged(n)) => {
                lagged(n);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        while events.len() < 1024 {
            match rx.try_recv() {
                Ok(p) => events.push(p),
                Err(TryRecvError::Lagged(n)) => lagged(n),
                Err(_) => break,
            }
        }
        let mut raised = Vec::new();
        for published in events {
            if published.topic == Topic::Logs {
                continue;
            }
            let Ok(ServerMessage::Notification(n)) = ServerMessage::parse(&published.line) else {
                continue;
            };
            match mem_protocol::EventMessage::from_notification(&n) {
                Ok(m) if m.event.is_periodic() => {}
                Ok(m) => raised.extend(watcher.on_event(&m.event)),
                Err(_) => {}
            }
        }
        alerts.raise_all(raised);
    }
}
