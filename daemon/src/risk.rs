//! The risk guard over every deployment: limits on the fleet's drawdown from its equity
//! peak, on the fleet's loss in a UTC day, and on each bot's loss (`[risk]`; all off
//! unless set).
//!
//! The supervisor hands each Freqtrade bot's polled profit (all trades, open ones at the
//! current rate) to [`RiskGuard::observe`]; the guard keeps each deployment's last figure
//! (a bot that stopped keeps its figure: a stop is no loss), sums them into the fleet's
//! equity, and trips when a limit is crossed: a `risk.tripped` event, then every affected
//! bot is told `stopentry` by its own poll ([`RiskGuard::pauses`]), and deploys are
//! refused ([`RiskGuard::refusal`]) until an operator calls `risk.reset`.
//!
//! Invariants:
//! - A trip is saved (`risk/state.json`, whole-file atomic writes) before it is announced:
//!   the guard stays tripped across daemon restarts and crashes. The figures between trips
//!   are saved at most every [`SAVE_EVERY`].
//! - An unreadable state file is kept aside and the guard starts tripped
//!   ([`RiskLimit::StateUnreadable`]), never silently empty.
//! - A reset starts the figures again from the equity now (each bot's figure is measured
//!   from its profit at the reset), so a reset does not trip again at once.

use crate::bus::EventBus;
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use mem_protocol::Event;
use mem_protocol::deploy::DeploymentId;
use mem_protocol::risk::*;
use mem_protocol::strategy::StrategyId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// The figures between trips are saved at most this often.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

/// `[risk]` as written in the config file: amounts in the stake currency.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// The largest drawdown allowed across all bots together, from the fleet's peak.
    pub max_drawdown: Option<f64>,
    /// The largest loss allowed across all bots since 00:00 UTC.
    pub daily_loss: Option<f64>,
    /// The largest loss allowed for any one bot.
    pub bot_loss: Option<f64>,
}

impl RiskConfig {
    /// The limits, checked: each a positive amount.
    pub fn limits(&self) -> anyhow::Result<RiskLimits> {
        for (key, value) in [
            ("max_drawdown", self.max_drawdown),
            ("daily_loss", self.daily_loss),
            ("bot_loss", self.bot_loss),
        ] {
            if let Some(v) = value {
                anyhow::ensure!(
                    v.is_finite() && v > 0.0,
                    "[risk] {key}: must be an amount above 0 (in the bots' stake currency), got {v}"
                );
            }
        }
        Ok(RiskLimits {
            max_drawdown: self.max_drawdown,
            daily_loss: self.daily_loss,
            bot_loss: self.bot_loss,
        })
    }
}

/// One deployment's figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BotFigure {
    strategy_id: StrategyId,
    strategy_name: String,
    /// The profit last polled.
    profit: f64,
    /// Its profit at the last reset (0 before any): the guard counts from here.
    base: f64,
}

impl BotFigure {
    fn figure(&self) -> f64 {
        self.profit - self.base
    }
}

/// The guard's arithmetic and what it saves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ledger {
    bots: BTreeMap<DeploymentId, BotFigure>,
    peak: f64,
    day: Option<NaiveDate>,
    /// The equity when `day` began.
    day_start: f64,
    trips: Vec<RiskTrip>,
    last_reset: Option<RiskResetInfo>,
}

impl Ledger {
    fn equity(&self) -> f64 {
        self.bots.values().map(BotFigure::figure).sum()
    }

    /// A bot's profit polled at `now`: the figures moved on, and the limits newly crossed
    /// (a fleet limit names `active`, the bots that run).
    fn observe(
        &mut self,
        limits: &RiskLimits,
        bot: &RiskBot,
        profit: f64,
        now: DateTime<Utc>,
        active: impl FnOnce() -> Vec<RiskBot>,
    ) -> Vec<RiskTrip> {
        let today = now.date_naive();
        if self.day != Some(today) {
            // The equity as the day began: the last known before this poll.
            self.day = Some(today);
            self.day_start = self.equity();
        }
        let entry = self
            .bots
            .entry(bot.deployment_id)
            .or_insert_with(|| BotFigure {
                strategy_id: bot.strategy_id,
                strategy_name: bot.strategy_name.clone(),
                profit: 0.0,
                base: 0.0,
            });
        entry.profit = profit;
        let bot_figure = entry.figure();
        let equity = self.equity();
        self.peak = self.peak.max(equity);
        let mut crossed = Vec::new();
        let tripped = |trips: &[RiskTrip], limit: RiskLimit, bot: Option<DeploymentId>| {
            trips.iter().any(|t| {
                t.limit == limit
                    && (bot.is_none() || t.bots.first().map(|b| b.deployment_id) == bot)
            })
        };
        if let Some(max) = limits.max_drawdown {
            let drawdown = self.peak - equity;
            if drawdown > max && !tripped(&self.trips, RiskLimit::FleetDrawdown, None) {
                crossed.push((RiskLimit::FleetDrawdown, drawdown, max, format!(
                    "the fleet's drawdown {drawdown:.2} (equity {equity:.2}, peak {:.2}) crossed [risk] max_drawdown {max:.2}",
                    self.peak
                )));
            }
        }
        if let Some(max) = limits.daily_loss {
            let lost = self.day_start - equity;
            if lost > max && !tripped(&self.trips, RiskLimit::DailyLoss, None) {
                crossed.push((
                    RiskLimit::DailyLoss,
                    lost,
                    max,
                    format!(
                        "the fleet lost {lost:.2} since 00:00 UTC, over [risk] daily_loss {max:.2}"
                    ),
                ));
            }
        }
        let mut trips = Vec::new();
        if !crossed.is_empty() {
            let bots = active();
            for (limit, figure, threshold, what) in crossed {
                trips.push(trip(limit, figure, threshold, bots.clone(), now, &what));
            }
        }
        if let Some(max) = limits.bot_loss {
            let lost = -bot_figure;
            if lost > max && !tripped(&self.trips, RiskLimit::BotLoss, Some(bot.deployment_id)) {
                let what = format!(
                    "bot {} (deployment {}) lost {lost:.2}, over [risk] bot_loss {max:.2}",
                    bot.strategy_name, bot.deployment_id
                );
                trips.push(trip(
                    RiskLimit::BotLoss,
                    lost,
                    max,
                    vec![bot.clone()],
                    now,
                    &what,
                ));
            }
        }
        self.trips.extend(trips.iter().cloned());
        trips
    }

    /// Whether this deployment must enter nothing more.
    fn pauses(&self, deployment: DeploymentId) -> bool {
        self.trips.iter().any(|t| {
            t.limit.is_fleet_wide() || t.bots.iter().any(|b| b.deployment_id == deployment)
        })
    }

    /// Why a deploy of `strategy` is refused, if it is.
    fn refusal(&self, strategy: StrategyId) -> Option<String> {
        let trip = self.trips.iter().find(|t| {
            t.limit.is_fleet_wide() || t.bots.iter().any(|b| b.strategy_id == strategy)
        })?;
        Some(format!(
            "the risk guard is tripped since {}: {}; no new deploys until an operator resets it (memctl risk reset)",
            trip.at.format("%Y-%m-%d %H:%M:%S UTC"),
            trip.message
        ))
    }

    /// Clears the trips; the figures start again from the equity now.
    fn reset(&mut self, info: RiskResetInfo) -> Vec<RiskTrip> {
        for bot in self.bots.values_mut() {
            bot.base = bot.profit;
        }
        self.peak = 0.0;
        self.day = Some(info.at.date_naive());
        self.day_start = 0.0;
        self.last_reset = Some(info);
        std::mem::take(&mut self.trips)
    }

    fn status(&self, limits: &RiskLimits) -> RiskStatus {
        let equity = self.equity();
        RiskStatus {
            limits: limits.clone(),
            tripped: !self.trips.is_empty(),
            trips: self.trips.clone(),
            equity,
            peak: self.peak,
            drawdown: self.peak - equity,
            day: self.day,
            day_loss: self.day_start - equity,
            last_reset: self.last_reset.clone(),
        }
    }
}

fn trip(
    limit: RiskLimit,
    figure: f64,
    threshold: f64,
    bots: Vec<RiskBot>,
    at: DateTime<Utc>,
    what: &str,
) -> RiskTrip {
    let whom = match bots.len() {
        0 => "no bot was running".to_string(),
        1 => format!("{} told to stop entering", bots[0].strategy_name),
        n => format!("{n} bots told to stop entering"),
    };
    RiskTrip {
        limit,
        figure,
        threshold,
        bots,
        at,
        message: format!("{what}; {whom}"),
    }
}

struct Inner {
    ledger: Ledger,
    dirty: bool,
    saved_at: Instant,
}

/// The guard: its limits, its ledger (saved under the data directory), the bots already
/// told to stop entering.
pub struct RiskGuard {
    path: PathBuf,
    limits: RiskLimits,
    bus: Arc<EventBus>,
    inner: Mutex<Inner>,
    /// Bots told `stopentry` (with the start of the process told: a restarted bot runs
    /// again and is told again).
    paused: Mutex<HashSet<(DeploymentId, Option<DateTime<Utc>>)>>,
}

impl RiskGuard {
    /// Opens the guard's state in `data_dir/risk/state.json`.
    pub fn open(
        data_dir: &Path,
        limits: RiskLimits,
        bus: Arc<EventBus>,
    ) -> anyhow::Result<RiskGuard> {
        let dir = data_dir.join("risk");
        crate::datadir::ensure_dir(&dir, 0o750)?;
        let path = dir.join("state.json");
        let ledger = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Ledger>(&bytes) {
                Ok(ledger) => ledger,
                Err(e) => unreadable(&path, &e.to_string())?,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ledger::default(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        if !ledger.trips.is_empty() {
            warn!(trips = ledger.trips.len(), first = %ledger.trips[0].message, "the risk guard is tripped (memctl risk reset clears it)");
        }
        let guard = RiskGuard {
            path,
            limits,
            bus,
            inner: Mutex::new(Inner {
                dirty: false,
                saved_at: Instant::now(),
                ledger,
            }),
            paused: Mutex::new(HashSet::new()),
        };
        guard.save(&mut guard.inner.lock().expect("risk lock"));
        Ok(guard)
    }

    /// A bot's polled profit: the figures move on; a limit crossed trips the guard (saved,
    /// then announced). Answers whether this bot must enter nothing more.
    pub fn observe(
        &self,
        bot: &RiskBot,
        profit: f64,
        active: impl FnOnce() -> Vec<RiskBot>,
    ) -> bool {
        if !self.limits.any() {
            return self.pauses(bot.deployment_id);
        }
        let (trips, pauses) = {
            let mut inner = self.inner.lock().expect("risk lock");
            let trips = inner
                .ledger
                .observe(&self.limits, bot, profit, Utc::now(), active);
            inner.dirty = true;
            if !trips.is_empty() || inner.saved_at.elapsed() >= SAVE_EVERY {
                self.save(&mut inner);
            }
            (trips, inner.ledger.pauses(bot.deployment_id))
        };
        for trip in trips {
            warn!(
                limit = trip.limit.config_key(),
                figure = trip.figure,
                threshold = trip.threshold,
                bots = trip.bots.len(),
                "the risk guard tripped: {}",
                trip.message
            );
            self.bus.publish(Event::RiskTripped(Box::new(trip)));
        }
        pauses
    }

    /// Whether this deployment must enter nothing more.
    pub fn pauses(&self, deployment: DeploymentId) -> bool {
        self.inner
            .lock()
            .expect("risk lock")
            .ledger
            .pauses(deployment)
    }

    /// Whether the bot (this process of it) was already told to stop entering.
    pub fn told(&self, deployment: DeploymentId, since: Option<DateTime<Utc>>) -> bool {
        self.paused
            .lock()
            .expect("paused lock")
            .contains(&(deployment, since))
    }

    /// The bot (this process of it) took `stopentry`.
    pub fn mark_told(&self, deployment: DeploymentId, since: Option<DateTime<Utc>>) {
        self.paused
            .lock()
            .expect("paused lock")
            .insert((deployment, since));
    }

    /// Why a deploy of `strategy` is refused, if it is.
    pub fn refusal(&self, strategy: StrategyId) -> Option<String> {
        self.inner
            .lock()
            .expect("risk lock")
            .ledger
            .refusal(strategy)
    }

    /// `risk.status`.
    pub fn status(&self) -> RiskStatus {
        self.inner
            .lock()
            .expect("risk lock")
            .ledger
            .status(&self.limits)
    }

    /// `risk.reset`: the trips cleared (saved, then announced); the figures start again
    /// from now. The paused bots stay paused: a restart lets one enter again.
    pub fn reset(&self, reason: Option<String>, by: Option<String>) -> RiskStatus {
        let at = Utc::now();
        let info = RiskResetInfo {
            at,
            reason: reason.clone(),
            by: by.clone(),
        };
        let (cleared, status) = {
            let mut inner = self.inner.lock().expect("risk lock");
            let cleared = inner.ledger.reset(info);
            self.save(&mut inner);
            (cleared, inner.ledger.status(&self.limits))
        };
        info!(
            cleared = cleared.len(),
            reason = reason.as_deref().unwrap_or(""),
            by = by.as_deref().unwrap_or(""),
            "the risk guard was reset"
        );
        self.bus.publish(Event::RiskReset(Box::new(RiskReset {
            at,
            reason,
            by,
            cleared,
        })));
        status
    }

    /// Saves the figures not saved yet (the daemon is stopping).
    pub fn flush(&self) {
        let mut inner = self.inner.lock().expect("risk lock");
        if inner.dirty {
            self.save(&mut inner);
        }
    }

    fn save(&self, inner: &mut Inner) {
        let bytes = serde_json::to_vec_pretty(&inner.ledger).expect("the ledger serializes");
        match crate::datadir::write_atomic(&self.path, &bytes, 0o640) {
            Ok(()) => {
                inner.dirty = false;
                inner.saved_at = Instant::now();
            }
            Err(e) => {
                error!(path = %self.path.display(), error = %format!("{e:#}"), "cannot save the risk guard's state")
            }
        }
    }
}

/// An unreadable state file: kept aside, and the guard starts tripped.
fn unreadable(path: &Path, problem: &str) -> anyhow::Result<Ledger> {
    let aside = path.with_extension(format!("bad-{}", Utc::now().format("%Y%m%dT%H%M%S")));
    std::fs::rename(path, &aside)
        .with_context(|| format!("cannot move {} aside", path.display()))?;
    error!(path = %path.display(), kept = %aside.display(), %problem, "the risk guard's state is unreadable: it starts tripped");
    let now = Utc::now();
    Ok(Ledger {
        trips: vec![RiskTrip {
            limit: RiskLimit::StateUnreadable,
            figure: 0.0,
            threshold: 0.0,
            bots: Vec::new(),
            at: now,
            message: format!(
                "the guard's saved state was unreadable ({problem}; kept as {})",
                aside.display()
            ),
        }],
        day: Some(now.date_naive()),
        ..Ledger::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(n: u128) -> RiskBot {
        RiskBot {
            deployment_id: DeploymentId(uuid::Uuid::from_u128(n)),
            strategy_id: StrategyId(uuid::Uuid::from_u128(100 + n)),
            strategy_name: format!("bot {n}"),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn limits(max_drawdown: Option<f64>, daily: Option<f64>, per_bot: Option<f64>) -> RiskLimits {
        RiskLimits {
            max_drawdown,
            daily_loss: daily,
            bot_loss: per_bot,
        }
    }

    #[test]
    fn drawdown_counts_from_the_fleets_peak() {
        let l = limits(Some(50.0), None, None);
        let (a, b) = (bot(1), bot(2));
        let mut ledger = Ledger::default();
        let now = at("2026-11-22T10:00:00Z");
        let both = || vec![bot(1), bot(2)];
        assert!(ledger.observe(&l, &a, 40.0, now, both).is_empty());
        assert!(ledger.observe(&l, &b, 30.0, now, both).is_empty());
        assert_eq!((ledger.equity(), ledger.peak), (70.0, 70.0));
        assert!(ledger.observe(&l, &a, 10.0, now, both).is_empty());
        assert!(
            ledger.observe(&l, &b, 20.0, now, both).is_empty(),
            "40 down"
        );
        assert_eq!(ledger.status(&l).drawdown, 40.0);
        assert!(ledger.observe(&l, &a, 20.0, now, both).is_empty());
        assert_eq!(ledger.peak, 70.0, "the peak stays while below it");
        let trips = ledger.observe(&l, &b, 0.0, now, both);
        assert!(trips.is_empty(), "a drawdown of 50 is allowed: {trips:?}");
        assert_eq!(ledger.observe(&l, &b, -0.5, now, both).len(), 1);
        let t = &ledger.trips[0];
        assert_eq!(t.limit, RiskLimit::FleetDrawdown);
        assert_eq!((t.figure, t.threshold), (50.5, 50.0));
        assert_eq!(t.bots, both());
        assert!(
            t.message.contains("2 bots told to stop entering"),
            "{}",
            t.message
        );
        assert!(
            ledger.observe(&l, &b, -30.0, now, both).is_empty(),
            "tripped once"
        );
        assert!(ledger.pauses(a.deployment_id) && ledger.pauses(bot(9).deployment_id));
        let why = ledger.refusal(bot(9).strategy_id).unwrap();
        assert!(
            why.contains("max_drawdown 50.00") && why.contains("memctl risk reset"),
            "{why}"
        );
    }

    #[test]
    fn a_stopped_bot_keeps_its_figure() {
        let l = limits(Some(5.0), None, None);
        let mut ledger = Ledger::default();
        let now = at("2026-11-22T10:00:00Z");
        ledger.observe(&l, &bot(1), 30.0, now, Vec::new);
        // Bot 1 stopped: no more polls of it; bot 2 starts from nothing.
        assert!(ledger.observe(&l, &bot(2), 0.0, now, Vec::new).is_empty());
        assert_eq!(ledger.equity(), 30.0);
    }

    #[test]
    fn the_daily_loss_counts_from_midnight_utc() {
        let l = limits(None, Some(20.0), None);
        let mut ledger = Ledger::default();
        let a = bot(1);
        // Yesterday: up 100, then down to 60 (a loss of 40 that day; no daily limit hit
        // because the day started at 0 and ended at +60).
        ledger.observe(&l, &a, 100.0, at("2026-11-21T12:00:00Z"), Vec::new);
        assert!(
            ledger
                .observe(&l, &a, 85.0, at("2026-11-21T23:59:59Z"), Vec::new)
                .is_empty()
        );
        // After midnight the day starts from the last equity known: 85.
        assert!(
            ledger
                .observe(&l, &a, 70.0, at("2026-11-22T00:00:01Z"), Vec::new)
                .is_empty()
        );
        assert_eq!(ledger.day_start, 85.0);
        assert_eq!(ledger.status(&l).day_loss, 15.0);
        assert_eq!(ledger.status(&l).day, Some("2026-11-22".parse().unwrap()));
        let trips = ledger.observe(&l, &a, 64.0, at("2026-11-22T09:00:00Z"), || vec![bot(1)]);
        assert_eq!(trips.len(), 1);
        assert_eq!(trips[0].limit, RiskLimit::DailyLoss);
        assert_eq!((trips[0].figure, trips[0].threshold), (21.0, 20.0));
    }

    #[test]
    fn a_bots_loss_trips_that_bot_alone() {
        let l = limits(None, None, Some(15.0));
        let mut ledger = Ledger::default();
        let (a, b) = (bot(1), bot(2));
        let now = at("2026-11-22T10:00:00Z");
        ledger.observe(&l, &b, 100.0, now, Vec::new);
        assert!(ledger.observe(&l, &a, -15.0, now, Vec::new).is_empty());
        let trips = ledger.observe(&l, &a, -16.0, now, Vec::new);
        assert_eq!(trips.len(), 1);
        assert_eq!(trips[0].limit, RiskLimit::BotLoss);
        assert_eq!(trips[0].bots, vec![a.clone()]);
        assert!(ledger.observe(&l, &a, -20.0, now, Vec::new).is_empty());
        assert!(ledger.pauses(a.deployment_id));
        assert!(!ledger.pauses(b.deployment_id), "the others go on");
        assert!(ledger.refusal(a.strategy_id).is_some());
        assert!(ledger.refusal(b.strategy_id).is_none());
        // Another bot crossing it trips again, for itself.
        assert_eq!(ledger.observe(&l, &b, -16.0, now, Vec::new).len(), 1);
        assert!(ledger.pauses(b.deployment_id));
    }

    #[test]
    fn a_reset_starts_the_figures_again_from_now() {
        let l = limits(Some(10.0), Some(10.0), Some(10.0));
        let mut ledger = Ledger::default();
        let a = bot(1);
        let now = at("2026-11-22T10:00:00Z");
        ledger.observe(&l, &a, 20.0, now, || vec![bot(1)]);
        // The drawdown (21 from 20); then the day's loss and the bot's (11 each).
        assert_eq!(ledger.observe(&l, &a, -1.0, now, || vec![bot(1)]).len(), 1);
        assert_eq!(ledger.observe(&l, &a, -11.0, now, || vec![bot(1)]).len(), 2);
        let cleared = ledger.reset(RiskResetInfo {
            at: now,
            reason: Some("checked".into()),
            by: None,
        });
        assert_eq!(cleared.len(), 3);
        let status = ledger.status(&l);
        assert!(!status.tripped);
        assert_eq!(
            (status.equity, status.peak, status.day_loss),
            (0.0, 0.0, 0.0)
        );
        assert!(ledger.observe(&l, &a, -15.0, now, Vec::new).is_empty());
        assert_eq!(ledger.observe(&l, &a, -22.0, now, Vec::new).len(), 3);
    }

    #[test]
    fn the_guard_stays_tripped_across_a_restart_and_an_unreadable_state_trips_it() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Arc::new(EventBus::new(16));
        let l = limits(Some(5.0), None, None);
        let guard = RiskGuard::open(dir.path(), l.clone(), bus.clone()).unwrap();
        assert!(!guard.observe(&bot(1), 10.0, Vec::new));
        assert!(guard.observe(&bot(1), 4.0, || vec![bot(1)]));
        drop(guard);
        let again = RiskGuard::open(dir.path(), l.clone(), bus.clone()).unwrap();
        let status = again.status();
        assert!(status.tripped && status.peak == 10.0, "{status:?}");
        assert!(again.refusal(bot(3).strategy_id).is_some());
        again.reset(Some("ok".into()), Some("test".into()));
        drop(again);
        let cleared = RiskGuard::open(dir.path(), l.clone(), bus.clone()).unwrap();
        assert!(!cleared.status().tripped);
        assert_eq!(
            cleared.status().last_reset.unwrap().by.as_deref(),
            Some("test")
        );
        drop(cleared);
        std::fs::write(dir.path().join("risk/state.json"), "{ torn").unwrap();
        let lost = RiskGuard::open(dir.path(), l, bus).unwrap();
        assert_eq!(lost.status().trips[0].limit, RiskLimit::StateUnreadable);
        let kept = std::fs::read_dir(dir.path().join("risk"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("bad-")
            })
            .count();
        assert_eq!(kept, 1, "the unreadable file is kept aside");
    }

    #[test]
    fn limits_must_be_positive_amounts() {
        let bad = RiskConfig {
            daily_loss: Some(-5.0),
            ..Default::default()
        };
        assert!(bad.limits().unwrap_err().to_string().contains("daily_loss"));
        assert!(!RiskConfig::default().limits().unwrap().any());
    }
}
