//! The memory in memory: what enhancement and the learning loop read on every signal,
//! kept in the daemon so a signal costs microseconds, not file reads.
//!
//! Loaded at start from `mem_knowledge/` (the tail of `decisions.jsonl`, the parameters in
//! force, the learned strategies); every decision and outcome is written to the files
//! first and then applied here. A hand edit of `parameter_updates.json` or
//! `learned_strategies.json` reaches [`Memory::reload`] through the watcher: checked, then
//! applied, or reported and ignored (the previous content stays in force).
//!
//! One lock guards the state and the learning loop's file writes, so a reload never
//! interleaves with a write.

use super::enhance::{self, EnhanceSettings, Inputs};
use super::learning::{self, ParameterUpdates, StrategyParams};
use super::patterns;
use super::store::{Durability, MemoryStore};
use crate::bus::EventBus;
use crate::metrics::Metrics;
use crate::registry::{Caller, Registry};
use chrono::{DateTime, Utc};
use mem_protocol::mem::*;
use mem_protocol::registry::{
    ChangedBy, DeprecateParams, LearnedPatternsParams, LinkParams, ParameterChange,
    RecordTradesParams, RegisterParams, RelationshipType, TradeAction, TradeRecord,
};
use mem_protocol::strategy::{StrategyId, StrategyStatus};
use mem_protocol::{ErrorCode, Event, RpcError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

/// Decisions kept for `mem.decisions` and the TUI.
const RECENT: usize = 10_000;
/// Decisions kept waiting for their outcome. A client that never sends one (a bot that
/// died, a script that forgot) would otherwise grow memory for as long as memd runs; past
/// this, the oldest open decision is forgotten (it stays in `decisions.jsonl`).
const OPEN_MAX: usize = 10_000;

/// What enhancement is given besides the memory.
#[derive(Debug, Clone)]
pub struct EnhanceRequest {
    pub signal: BaseSignal,
    /// The model's reversal probability and direction.
    pub ml: Option<(f64, String)>,
    /// A pattern named by the caller; else a learned one matching `signature`.
    pub pattern: Option<PatternMatch>,
    pub volatility_pct: f64,
    pub signature: Option<String>,
    /// The symbol's trend, for the regime rules.
    pub regime: Option<enhance::Regime>,
}

/// A decision to log.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub strategy: String,
    pub enhanced: EnhancedSignal,
    pub price: f64,
    pub at: DateTime<Utc>,
    pub signature: Option<String>,
    /// The model version whose prediction the enhancement used.
    pub model_version: Option<String>,
    /// The decision's id when the caller has one (an observed bot trade's, derived from
    /// the trade so that recording it twice is seen); else a new one.
    pub id: Option<String>,
    /// A bot's entry MEM did not take part in ([`Decision::observed`]).
    pub observed: bool,
    /// Who asked ([`Decision::source`]).
    pub source: Option<String>,
}

/// How a decision's trade ended.
#[derive(Debug, Clone)]
pub struct NewOutcome {
    pub decision_id: String,
    pub exit_price: f64,
    pub pnl: f64,
    pub pnl_pct: f64,
    pub closed_at: DateTime<Utc>,
    /// Why the trade closed, when its runner says.
    pub exit_reason: Option<String>,
    /// How long it was open, when its runner says (else from the decision's time).
    pub duration_secs: Option<i64>,
}

#[derive(Debug, Default)]
struct StrategyRecord {
    /// Closed decisions in all (since the tail the daemon loaded).
    closed: usize,
    /// The latest closed ones: (signature at entry, won), oldest first.
    last: VecDeque<(Option<String>, bool)>,
}

/// A strategy's last decisions on one symbol: (decision id, won once closed).
type PairRecord = VecDeque<(String, Option<bool>)>;

#[derive(Default)]
struct State {
    recent: VecDeque<Decision>,
    unreadable_lines: usize,
    /// Decisions without an outcome yet, at most [`OPEN_MAX`].
    open: HashMap<String, Decision>,
    /// Ids of `open` oldest first (closed ones are skipped lazily, and swept out when
    /// they outnumber the open ones).
    open_order: VecDeque<String>,
    /// Open decisions forgotten because of [`OPEN_MAX`].
    open_forgotten: u64,
    /// Per strategy and symbol, its last [`enhance::LOOKBACK`] decisions: (id, won).
    pairs: HashMap<(String, String), PairRecord>,
    strategies: HashMap<String, StrategyRecord>,
    params: BTreeMap<String, StrategyParams>,
    params_error: Option<String>,
    learned: Vec<LearnedStrategy>,
    learned_error: Option<String>,
    /// The regime rules each strategy's last decision was adapted by (a change is an
    /// adjustment of `parameter_updates.json`).
    regime_rules: HashMap<String, Vec<String>>,
    /// Adjustments whose impact is not known yet: (strategy, when made).
    pending_impacts: Vec<(String, DateTime<Utc>)>,
    /// Per strategy, its last [`CLOSED_KEPT`] closed decisions by closing time: (closed
    /// at, won, P&L %). What an adjustment's before and after are read from, at each
    /// outcome, without a scan of every decision.
    closed: HashMap<String, VecDeque<(DateTime<Utc>, bool, f64)>>,
}

/// Closed decisions kept per strategy for the adjustments' windows.
const CLOSED_KEPT: usize = 1_000;

impl State {
    /// A strategy's closed decisions among the recent ones as (won, P&L %), by closing
    /// time: the last `n` closed at or before `at` (`before`), or the first `n` after it.
    fn closed_around(
        &self,
        strategy: &str,
        at: DateTime<Utc>,
        before: bool,
        n: usize,
    ) -> Vec<(bool, f64)> {
        let Some(closed) = self.closed.get(strategy) else {
            return Vec::new();
        };
        let split = closed.partition_point(|(t, _, _)| *t <= at);
        let range = if before {
            split.saturating_sub(n)..split
        } else {
            split..(split + n).min(closed.len())
        };
        closed.range(range).map(|(_, w, p)| (*w, *p)).collect()
    }

    fn add_decision(&mut self, d: Decision) {
        let pair = self
            .pairs
            .entry((d.strategy.clone(), d.symbol.clone()))
            .or_default();
        pair.push_back((d.id.clone(), None));
        if pair.len() > enhance::LOOKBACK {
            pair.pop_front();
        }
        self.open.insert(d.id.clone(), d.clone());
        self.open_order.push_back(d.id.clone());
        self.recent.push_back(d);
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        self.bound_open();
    }

    /// Keeps at most [`OPEN_MAX`] open decisions, forgetting the oldest.
    fn bound_open(&mut self) {
        while self.open.len() > OPEN_MAX {
            let Some(id) = self.open_order.pop_front() else {
                break;
            };
            if let Some(d) = self.open.remove(&id) {
                self.open_forgotten += 1;
                if self.open_forgotten == 1 || self.open_forgotten % 1000 == 0 {
                    warn!(
                        decision = %d.id,
                        strategy = %d.strategy,
                        opened_at = %d.at,
                        forgotten = self.open_forgotten,
                        "more than {OPEN_MAX} decisions wait for an outcome; the oldest is forgotten (an outcome for it will be refused)"
                    );
                }
            }
        }
        if self.open_order.len() > 2 * self.open.len() + 64 {
            let open = &self.open;
            self.open_order.retain(|id| open.contains_key(id));
        }
    }

    /// Applies an outcome; answers the decision as it now stands.
    fn close(&mut self, o: &Outcome) -> Option<Decision> {
        let mut d = self.open.remove(&o.decision_id)?;
        d.outcome = Some(o.clone());
        if let Some(r) = self.recent.iter_mut().rev().find(|r| r.id == d.id) {
            r.outcome = Some(o.clone());
        }
        if let Some(pair) = self.pairs.get_mut(&(d.strategy.clone(), d.symbol.clone())) {
            if let Some(slot) = pair.iter_mut().find(|(id, _)| *id == d.id) {
                slot.1 = Some(o.win);
            }
        }
        let closed = self.closed.entry(d.strategy.clone()).or_default();
        let at = closed.partition_point(|(t, _, _)| *t <= o.closed_at);
        closed.insert(at, (o.closed_at, o.win, o.pnl_pct));
        if closed.len() > CLOSED_KEPT {
            closed.pop_front();
        }
        let record = self.strategies.entry(d.strategy.clone()).or_default();
        record.closed += 1;
        record.last.push_back((d.signature.clone(), o.win));
        if record.last.len() > patterns::DISCOVERY_WINDOW {
            record.last.pop_front();
        }
        Some(d)
    }
}

/// A change the learning loop makes to the registry, once the memory's lock is released.
enum RegistryEffect {
    /// A performance-monitor adjustment, into the strategy's parameter history.
    Adjustment(Box<learning::Adjustment>),
    /// A closed trade of a learned strategy (its decision and outcome).
    LearnedTrade(StrategyId, Box<(Decision, Outcome)>),
    /// A learned strategy deprecated, with the reason.
    Deprecate(StrategyId, String),
    /// A new learned strategy to register under its parent.
    Register(Box<LearnedStrategy>),
}

/// The decision memory and the learning loop.
pub struct Memory {
    store: MemoryStore,
    settings: EnhanceSettings,
    registry: Arc<Registry>,
    bus: Arc<EventBus>,
    state: Mutex<State>,
    /// The daemon's figures (`mem.metrics`, owned by the daemon): the memory records its
    /// loads, decisions and outcomes; a native runner's enhancement its timings.
    metrics: Arc<Metrics>,
    /// What `mem.enhance` reads from a symbol's candles, kept per candle file.
    market_inputs: super::market_inputs::InputsCache,
    /// Where the learning loop's news goes (the performance monitor cutting a
    /// strategy's size, a learned strategy deprecated): the alerts, once set.
    alert_hook: std::sync::OnceLock<AlertHook>,
}

/// Receives the learning loop's alerts (see [`Memory::set_alert_hook`]).
pub type AlertHook = Arc<dyn Fn(crate::alerts::rules::Raised) + Send + Sync>;

fn daemon_caller() -> Caller {
    Caller {
        uid: None,
        client: Some("memd learning loop".into()),
    }
}

impl Memory {
    /// Runs `f` while the memory changes nothing on disk: no decision or outcome logged,
    /// no learning-loop document rewritten (a backup's copy). The memory's changes to the
    /// registry are made with this lock released, so the two pause in any order.
    pub fn with_writes_paused<T>(&self, f: impl FnOnce() -> T) -> T {
        let _state = self.state.lock().expect("memory state lock");
        self.store.with_appends_paused(f)
    }

    /// `mem.key.rotate`: every memory file re-encrypted with a new key, with the memory's
    /// writes paused (decisions wait; nothing is refused).
    pub fn rotate_key(&self) -> Result<mem_protocol::mem::KeyRotation, RpcError> {
        let started = std::time::Instant::now();
        let rotated = {
            let _state = self.state.lock().expect("memory state lock");
            self.store.rotate_key()
        }
        .map_err(|e| RpcError::new(mem_protocol::ErrorCode::Conflict, e))?;
        let millis = started.elapsed().as_millis() as u64;
        info!(
            key_file = %rotated.key_file.display(),
            files = rotated.files,
            records = rotated.records,
            millis,
            "the memory's key was rotated: every file is re-encrypted with the new key"
        );
        Ok(mem_protocol::mem::KeyRotation {
            key_file: rotated.key_file.display().to_string(),
            files: rotated.files as u64,
            records: rotated.records as u64,
            millis,
        })
    }

    /// Opens `data_dir/mem_knowledge` (plain files) and loads what the memory needs.
    pub fn open(
        data_dir: &Path,
        settings: EnhanceSettings,
        registry: Arc<Registry>,
        bus: Arc<EventBus>,
    ) -> std::io::Result<Memory> {
        let at_rest = super::crypt::AtRestSettings::plain(data_dir);
        let metrics = Arc::new(Metrics::new());
        Self::open_at_rest(data_dir, settings, &at_rest, registry, bus, metrics)
    }

    /// Opens `data_dir/mem_knowledge`, encrypted at rest or not as `[mem.encryption]` says (a
    /// missing or wrong key is an error), and loads what the memory needs.
    pub fn open_at_rest(
        data_dir: &Path,
        settings: EnhanceSettings,
        at_rest: &super::crypt::AtRestSettings,
        registry: Arc<Registry>,
        bus: Arc<EventBus>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Memory> {
        let load_started = std::time::Instant::now();
        let store = MemoryStore::open_at_rest(data_dir, settings.logs.clone(), at_rest)?;
        let (decisions, unreadable_lines) = store.tail()?;
        let mut state = State {
            unreadable_lines,
            ..State::default()
        };
        for d in decisions {
            let outcome = d.outcome.clone();
            let mut open = d;
            open.outcome = None;
            state.add_decision(open);
            if let Some(o) = outcome {
                state.close(&o);
            }
        }
        let memory = Memory {
            store,
            settings,
            registry,
            bus,
            state: Mutex::new(state),
            metrics,
            market_inputs: Default::default(),
            alert_hook: Default::default(),
        };
        for file in [patterns::LEARNED_FILE, learning::PARAMETERS_FILE] {
            if let Err(e) = memory.load(&mut memory.state.lock().expect("memory lock"), file) {
                warn!(file, error = %e, "a memory file is unreadable; it is ignored until fixed");
            }
        }
        // The whole load: the decision log's tail, the documents, the state rebuilt.
        memory.metrics.memory_load.record(load_started.elapsed());
        Ok(memory)
    }

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    pub fn settings(&self) -> &EnhanceSettings {
        &self.settings
    }

    /// The daemon's figures it records into (see [`crate::metrics`]).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The market inputs of enhancements, kept per symbol's candle file.
    pub fn market_inputs(&self) -> &super::market_inputs::InputsCache {
        &self.market_inputs
    }

    /// Learned strategies by status.
    pub fn learned_counts(&self) -> LearnedCounts {
        let state = self.state.lock().expect("memory lock");
        let active = state
            .learned
            .iter()
            .filter(|l| l.status == LearnedStatus::Active)
            .count() as u64;
        LearnedCounts {
            active,
            deprecated: state.learned.len() as u64 - active,
        }
    }

    /// `parameter_updates.json`, read and written as the store's files are.
    fn parameter_updates(&self) -> ParameterUpdates {
        ParameterUpdates::with_codec(self.dir(), self.store.codec())
    }

    /// Reads one of the files that hold state into `state`; an error leaves it as it was.
    fn load(&self, state: &mut State, file: &str) -> Result<String, String> {
        match file {
            learning::PARAMETERS_FILE => match self.parameter_updates().current() {
                Ok(params) => {
                    let summary = format!("parameters of {} strategies in force", params.len());
                    state.params = params;
                    state.params_error = None;
                    state.pending_impacts = self.parameter_updates().pending().unwrap_or_default();
                    Ok(summary)
                }
                Err(e) => {
                    state.params_error = Some(e.clone());
                    Err(e)
                }
            },
            patterns::LEARNED_FILE => {
                let path = self.dir().join(file);
                let parsed = match self.store.read_doc(file) {
                    Ok(Some(bytes)) => patterns::parse_learned(&bytes)
                        .map_err(|e| format!("{}: {e}", path.display())),
                    Ok(None) => Ok(vec![]),
                    Err(e) => Err(e),
                };
                match parsed {
                    Ok(learned) => {
                        let summary = format!("{} learned strategies", learned.len());
                        state.learned = learned;
                        state.learned_error = None;
                        Ok(summary)
                    }
                    Err(e) => {
                        state.learned_error = Some(e.clone());
                        Err(e)
                    }
                }
            }
            other => Ok(format!("{other} changed")),
        }
    }

    /// A file in `mem_knowledge/` changed (by memd or by hand): re-read it if it holds
    /// state, and announce it.
    ///
    /// With the memory encrypted, memd's own writes decrypt and reload like plain ones;
    /// a document written in plain text by hand is applied like any hand edit, then
    /// encrypted at once.
    pub fn reload(&self, file: &str) {
        let mut state = self.state.lock().expect("memory lock");
        let load_started = std::time::Instant::now();
        let result = self.load(&mut state, file);
        if [learning::PARAMETERS_FILE, patterns::LEARNED_FILE].contains(&file) {
            self.metrics.memory_load.record(load_started.elapsed());
        }
        if result.is_ok() && [learning::PARAMETERS_FILE, patterns::LEARNED_FILE].contains(&file) {
            match self.store.seal_plain_doc(file) {
                Ok(true) => info!(
                    file,
                    "a plain hand edit of an encrypted memory was applied and encrypted"
                ),
                Ok(false) => {}
                Err(e) => warn!(file, error = %e, "cannot encrypt a hand-edited memory file"),
            }
        }
        drop(state);
        let changed = match result {
            Ok(summary) => MemoryChanged {
                file: file.to_string(),
                applied: true,
                error: None,
                summary: Some(summary),
            },
            Err(e) => {
                warn!(file, error = %e, "a hand edit of a memory file is broken: ignored, the previous content stays in force");
                MemoryChanged {
                    file: file.to_string(),
                    applied: false,
                    error: Some(e),
                    summary: None,
                }
            }
        };
        self.bus.publish(Event::MemoryChanged(changed));
    }

    /// Enhances a signal with what memory holds for its strategy and symbol.
    pub fn enhance(&self, r: &EnhanceRequest) -> EnhancedSignal {
        let state = self.state.lock().expect("memory lock");
        let s = &r.signal;
        let record = state
            .pairs
            .get(&(s.strategy.clone(), s.symbol.clone()))
            .map(|pair| {
                let closed: Vec<bool> = pair.iter().filter_map(|(_, w)| *w).collect();
                (closed.iter().filter(|w| **w).count(), closed.len())
            });
        let pattern = r.pattern.clone().or_else(|| {
            let sig = r.signature.as_deref()?;
            state
                .learned
                .iter()
                .find(|l| {
                    l.status == LearnedStatus::Active
                        && l.parent == s.strategy
                        && l.signature == sig
                })
                .map(|l| PatternMatch {
                    name: l.name.clone(),
                    win_rate: l.current_win_rate(),
                    trades: Some(if l.trades > 0 {
                        l.trades
                    } else {
                        l.evidence.occurrences
                    }),
                })
        });
        let inputs = Inputs {
            strategy: s.strategy.clone(),
            symbol: s.symbol.clone(),
            action: s.action,
            base_confidence: s.confidence,
            ml: r.ml.clone(),
            pattern,
            record,
            learned: state.params.get(&s.strategy).cloned().unwrap_or_default(),
            volatility_pct: r.volatility_pct,
            regime: r.regime.clone(),
        };
        drop(state);
        enhance::enhance(&inputs, &self.settings)
    }

    /// The confidence threshold the learning loop has set for a strategy, if any (what
    /// [`EnhancedSignal::actionable`] is judged against).
    pub fn learned_threshold(&self, strategy: &str) -> Option<f64> {
        let state = self.state.lock().expect("memory lock");
        state
            .params
            .get(strategy)
            .and_then(|p| p.confidence_threshold)
    }

    /// Logs a decision in both files, then in memory; `announce` publishes it.
    pub fn decide(
        &self,
        n: NewDecision,
        durability: Durability,
        announce: bool,
    ) -> std::io::Result<Decision> {
        let e = n.enhanced;
        let regime_rules = e.regime_rules.clone();
        let d = Decision {
            id: n.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            at: n.at,
            strategy: n.strategy,
            symbol: e.symbol,
            action: e.action,
            price: n.price,
            base_confidence: e.base_confidence,
            confidence: e.confidence,
            ml_confidence: e.ml_confidence,
            memory_confidence: e.memory_confidence,
            learned_pattern: e.learned_strategy,
            position_size: e.position_size,
            stop_loss: e.stop_loss,
            take_profit: e.take_profit,
            reasoning: e.reasoning,
            signature: n.signature,
            model_version: n.model_version,
            observed: n.observed,
            source: n.source,
            outcome: None,
        };
        // Written under the files' own lock (an append can wait behind a sync): the
        // memory's lock, which every enhancement takes, is held only to apply it.
        self.store.append_decision(&d)?;
        {
            let mut state = self.state.lock().expect("memory lock");
            state.add_decision(d.clone());
            self.note_regime(&mut state, &d.strategy, regime_rules, n.at);
        }
        // Synced with the memory's lock released: decisions made at the same moment share
        // the sync (the caller is answered once its lines are on disk).
        if durability == Durability::Sync {
            self.store.sync_appended()?;
        }
        self.metrics.decision();
        if announce {
            self.bus.publish(Event::DecisionLogged(Box::new(d.clone())));
        }
        Ok(d)
    }

    /// The regime rules a strategy's decision was adapted by: when they differ from its
    /// last decision's, an adjustment of `parameter_updates.json` (the seed's
    /// ParameterAdapter), whose impact is filled in later like the monitor's.
    fn note_regime(
        &self,
        state: &mut State,
        strategy: &str,
        rules: Vec<String>,
        at: DateTime<Utc>,
    ) {
        let last = state
            .regime_rules
            .get(strategy)
            .cloned()
            .unwrap_or_default();
        if last == rules || state.params_error.is_some() {
            return;
        }
        let before =
            learning::WindowFigures::of(&state.closed_around(strategy, at, true, learning::WINDOW));
        let reason = if rules.is_empty() {
            "no regime rule applies any more".to_string()
        } else {
            rules.join("; ")
        };
        let adjustment = learning::Adjustment {
            strategy: strategy.to_string(),
            parameter: "regime_adaptation".into(),
            from: json!(last),
            to: json!(rules),
            reason,
            triggered_by: "parameter_adapter".into(),
            impact: None,
            made_at: Some(at),
            before: before.clone(),
            after: None,
        };
        let context = json!({ strategy: before });
        match self
            .parameter_updates()
            .record(at, &state.params, &[adjustment], context)
        {
            Ok(()) => state.pending_impacts.push((strategy.to_string(), at)),
            Err(e) => warn!(error = %e, "cannot write parameter_updates.json"),
        }
        state.regime_rules.insert(strategy.to_string(), rules);
    }

    /// Fills in the impact of `strategy`'s adjustments that now have [`learning::WINDOW`]
    /// trades closed after them.
    fn fill_impacts(&self, state: &mut State, strategy: &str) {
        let due: Vec<(DateTime<Utc>, learning::WindowFigures)> = state
            .pending_impacts
            .iter()
            .filter(|(s, _)| s == strategy)
            .filter_map(|(_, at)| {
                let after = state.closed_around(strategy, *at, false, learning::WINDOW);
                (after.len() >= learning::WINDOW)
                    .then(|| Some((*at, learning::WindowFigures::of(&after)?)))
                    .flatten()
            })
            .collect();
        for (at, after) in due {
            if let Err(e) = self.parameter_updates().fill_impact(strategy, at, &after) {
                warn!(error = %e, "cannot write an impact into parameter_updates.json");
                continue;
            }
            state
                .pending_impacts
                .retain(|(s, t)| !(s == strategy && *t == at));
        }
    }

    /// Flushes batched appends.
    pub fn sync(&self) -> std::io::Result<()> {
        self.store.sync()
    }

    /// Records how a decision's trade ended and runs the learning loop on it: the
    /// performance monitor, the learned strategy's record (and its deprecation), and
    /// pattern discovery every [`patterns::DISCOVERY_EVERY`] closed decisions.
    pub fn outcome(
        &self,
        n: NewOutcome,
        durability: Durability,
        announce: bool,
    ) -> Result<OutcomeReport, RpcError> {
        let mut o = Outcome {
            decision_id: n.decision_id.clone(),
            closed_at: n.closed_at,
            exit_price: n.exit_price,
            pnl: n.pnl,
            pnl_pct: n.pnl_pct,
            win: n.pnl > 0.0,
            exit_reason: n.exit_reason,
            duration_secs: n.duration_secs,
        };
        let mut state = self.state.lock().expect("memory lock");
        if !state.open.contains_key(&n.decision_id) {
            return Err(if state.recent.iter().any(|d| d.id == n.decision_id) {
                RpcError::new(
                    ErrorCode::Conflict,
                    format!("decision `{}` already has an outcome", n.decision_id),
                )
            } else {
                RpcError::not_found(format!(
                    "no open decision `{}` in the memory (see mem.decisions; memd keeps the newest {OPEN_MAX} decisions that wait for an outcome)",
                    n.decision_id
                ))
            });
        }
        if o.duration_secs.is_none() {
            let opened = state.open[&n.decision_id].at;
            o.duration_secs = Some((o.closed_at - opened).num_seconds().max(0));
        }
        let decision = state.close(&o).expect("checked open");
        let strategy = decision.strategy.clone();
        let mut lessons = Vec::new();
        let mut effects = Vec::new();

        // The performance monitor.
        let (adjustments, monitor_error) = match &state.params_error {
            Some(e) => {
                warn!(error = %e, "the performance monitor skipped: parameter_updates.json is broken");
                (vec![], Some(e.clone()))
            }
            None => {
                let record = &state.strategies[&strategy];
                let last: Vec<bool> = record
                    .last
                    .iter()
                    .rev()
                    .take(learning::WINDOW)
                    .rev()
                    .map(|(_, w)| *w)
                    .collect();
                let current = state.params.get(&strategy).cloned().unwrap_or_default();
                let (next, mut changes) =
                    learning::judge(&strategy, record.closed, &last, &current);
                if next != current {
                    let now = Utc::now();
                    let before = learning::WindowFigures::of(&state.closed_around(
                        &strategy,
                        now,
                        true,
                        learning::WINDOW,
                    ));
                    for a in &mut changes {
                        a.made_at = Some(now);
                        a.before = before.clone();
                    }
                    state.pending_impacts.push((strategy.clone(), now));
                    let rate = last.iter().filter(|w| **w).count() as f64 / last.len() as f64;
                    state.params.insert(strategy.clone(), next);
                    let context =
                        json!({ strategy.clone(): {"win_rate": rate, "trades": last.len()} });
                    if let Err(e) =
                        self.parameter_updates()
                            .record(now, &state.params, &changes, context)
                    {
                        warn!(error = %e, "cannot write parameter_updates.json");
                    }
                    for a in &changes {
                        lessons.push(format!(
                            "{} {} {} -> {} ({})",
                            a.strategy, a.parameter, a.from, a.to, a.reason
                        ));
                        effects.push(RegistryEffect::Adjustment(Box::new(a.clone())));
                    }
                }
                (changes, None)
            }
        };

        if state.params_error.is_none() {
            self.fill_impacts(&mut state, &strategy);
        }

        // The learned strategy this decision followed, if any.
        let mut learned_dirty = false;
        if let Some(name) = &decision.learned_pattern {
            if let Some(l) = state.learned.iter_mut().find(|l| &l.name == name) {
                l.trades += 1;
                l.wins += o.win as u64;
                learned_dirty = true;
                if let Some(id) = l.strategy_id {
                    effects.push(RegistryEffect::LearnedTrade(
                        id,
                        Box::new((decision.clone(), o.clone())),
                    ));
                }
                if let Some(reason) = patterns::deprecation_reason(l) {
                    l.status = LearnedStatus::Deprecated;
                    l.deprecated_at = Some(Utc::now());
                    l.deprecation_reason = Some(reason.clone());
                    lessons.push(format!("deprecated {}: {reason}", l.name));
                    info!(learned = %l.name, %reason, "learned strategy deprecated");
                    if let Some(id) = l.strategy_id {
                        effects.push(RegistryEffect::Deprecate(id, reason));
                    }
                }
            }
        }

        // Pattern discovery.
        if state.strategies[&strategy].closed % patterns::DISCOVERY_EVERY == 0 {
            learned_dirty |= self.discover(&mut state, &strategy, &mut lessons, &mut effects);
        }
        if learned_dirty {
            self.save_learned(&state);
        }
        let recorded = self.store.record_outcome(&o, &lessons, durability);
        drop(state);
        self.apply(effects);
        recorded.map_err(|e| RpcError::internal(format!("memory files: {e}")))?;
        self.metrics.outcome(o.win);
        if announce {
            self.bus.publish(Event::DecisionLogged(Box::new(decision)));
        }
        Ok(OutcomeReport {
            outcome: o,
            adjustments: adjustments
                .iter()
                .map(|a| serde_json::to_value(a).unwrap_or_default())
                .collect(),
            monitor_error,
        })
    }

    /// Pattern discovery over a strategy's last closed decisions: each qualifying
    /// signature becomes a learned strategy (with a lesson line). Answers whether any did.
    fn discover(
        &self,
        state: &mut State,
        strategy: &str,
        lessons: &mut Vec<String>,
        effects: &mut Vec<RegistryEffect>,
    ) -> bool {
        if state.learned_error.is_some() {
            return false;
        }
        let Some(record) = state.strategies.get(strategy) else {
            return false;
        };
        let stats = patterns::tally(
            strategy,
            record
                .last
                .iter()
                .filter_map(|(s, w)| s.as_deref().map(|s| (s, *w))),
        );
        let window = record.last.len() as u64;
        let found: Vec<PatternStat> = patterns::qualifying(&stats, &state.learned)
            .into_iter()
            .cloned()
            .collect();
        let any = !found.is_empty();
        for stat in found {
            let learned = self.learn(&state.learned, &stat, window);
            if learned.parent_id.is_some() {
                effects.push(RegistryEffect::Register(Box::new(learned.clone())));
            }
            lessons.push(format!(
                "new learned strategy {} from {}: {} won {} of {} ({:.0}%)",
                learned.name,
                stat.strategy,
                stat.signature,
                stat.wins,
                stat.occurrences,
                stat.win_rate * 100.0
            ));
            state.learned.push(learned);
        }
        any
    }

    /// Writes `learned_strategies.json` (unless the file on disk is broken: a hand edit
    /// waiting to be fixed is never overwritten).
    fn save_learned(&self, state: &State) {
        if let Some(e) = &state.learned_error {
            warn!(error = %e, "learned_strategies.json is broken; learned statistics are not saved until it is fixed");
        } else if let Err(e) = self.store.write_doc(
            patterns::LEARNED_FILE,
            &patterns::render_learned(&state.learned),
        ) {
            warn!(error = %e, "cannot write learned_strategies.json");
        }
    }

    /// The learning loop's periodic review (the `learning` job): makes batched decision
    /// appends durable and runs pattern discovery over every strategy's recent closed
    /// decisions, so a pattern is found even when its strategy stopped trading before
    /// its next [`patterns::DISCOVERY_EVERY`]th close. Answers a summary line.
    pub fn review(&self) -> Result<String, String> {
        self.sync()
            .map_err(|e| format!("cannot flush the decision log: {e}"))?;
        let mut state = self.state.lock().expect("memory lock");
        if let Some(e) = &state.learned_error {
            return Err(format!(
                "learned_strategies.json is broken ({e}); fix it to resume pattern discovery"
            ));
        }
        let names: Vec<String> = state.strategies.keys().cloned().collect();
        let mut lessons = Vec::new();
        let mut effects = Vec::new();
        let mut dirty = false;
        for name in &names {
            dirty |= self.discover(&mut state, name, &mut lessons, &mut effects);
        }
        let recorded = if dirty {
            self.save_learned(&state);
            self.store.record_lessons(&lessons)
        } else {
            Ok(())
        };
        let active = state
            .learned
            .iter()
            .filter(|l| l.status == LearnedStatus::Active)
            .count();
        drop(state);
        self.apply(effects);
        recorded.map_err(|e| format!("cannot write the lessons: {e}"))?;
        Ok(format!(
            "reviewed {} strategies: {} new learned strategies{}; {} learned strategies active",
            names.len(),
            lessons.len(),
            if lessons.is_empty() {
                String::new()
            } else {
                format!(" ({})", lessons.join("; "))
            },
            active
        ))
    }

    /// The registry strategy a decision's strategy name stands for: its id, its `name` or
    /// its display name.
    pub fn registry_id(&self, key: &str) -> Option<StrategyId> {
        if let Ok(id) = key.parse::<StrategyId>() {
            return self.registry.summary(id).map(|s| s.id);
        }
        let all = self.registry.summaries();
        all.iter()
            .find(|s| s.name == key)
            .or_else(|| all.iter().find(|s| s.display_name == key))
            .map(|s| s.id)
    }

    /// A monitor adjustment also goes to the registry's parameter history of the strategy.
    fn record_in_registry(&self, a: &learning::Adjustment) {
        let Some(id) = self.registry_id(&a.strategy) else {
            return;
        };
        let change = ParameterChange::new(
            id,
            format!("mem.{}", a.parameter),
            a.from.clone(),
            a.to.clone(),
            a.reason.clone(),
            ChangedBy::MemLearning,
            None,
        );
        if let Err(e) = self
            .registry
            .record_parameter_change(change, &daemon_caller())
        {
            warn!(error = %e.into_rpc("parameters").message, "cannot record the adjustment in the registry");
        }
    }

    fn record_learned_trade(&self, id: StrategyId, d: &Decision, o: &Outcome) {
        let trade = TradeRecord {
            trade_id: d.id.clone(),
            symbol: d.symbol.clone(),
            timeframe: None,
            action: match d.action {
                SignalAction::Sell => TradeAction::Sell,
                _ => TradeAction::Buy,
            },
            confidence: Some(d.confidence),
            entry_price: d.price,
            exit_price: o.exit_price,
            entry_time: d.at,
            exit_time: o.closed_at.max(d.at),
            pnl: o.pnl,
            pnl_pct: o.pnl_pct,
            is_win: Some(o.win),
            mem_enhanced: true,
            mem_confidence_boost: Some(d.confidence - d.base_confidence),
            learned_pattern: d.learned_pattern.clone(),
            market_regime: d.signature.clone(),
            volatility: None,
            broker: Some("memd paper".into()),
            // The registry keeps at most 4096 characters of it.
            mem_reasoning: Some(d.reasoning.chars().take(4096).collect::<String>())
                .filter(|r| !r.is_empty()),
            ..TradeRecord::default()
        };
        if let Err(e) = self.registry.record_own_trades(
            RecordTradesParams {
                id,
                trades: vec![trade],
            },
            &daemon_caller(),
        ) {
            warn!(error = %e.into_rpc("trades").message, "cannot record the learned strategy's trade");
        }
    }

    /// Makes a learned strategy of a qualifying pattern: an entry for
    /// `learned_strategies.json` and, when its parent is in the registry, a registry
    /// strategy (origin `learned`, `derived_from` the parent, experimental).
    fn learn(
        &self,
        existing: &[LearnedStrategy],
        stat: &PatternStat,
        window: u64,
    ) -> LearnedStrategy {
        let parent_id = self.registry_id(&stat.strategy);
        let n = existing
            .iter()
            .filter(|l| l.parent == stat.strategy)
            .count()
            + 1;
        let mut learned = LearnedStrategy {
            name: format!("{}_learned_{n}", stat.strategy),
            strategy_id: None,
            parent: stat.strategy.clone(),
            parent_id,
            signature: stat.signature.clone(),
            discovered_at: Utc::now(),
            evidence: PatternEvidence {
                occurrences: stat.occurrences,
                wins: stat.wins,
                win_rate: stat.win_rate,
                window,
            },
            trades: 0,
            wins: 0,
            status: LearnedStatus::Active,
            deprecated_at: None,
            deprecation_reason: None,
        };
        while existing.iter().any(|l| l.name == learned.name) {
            learned.name.push('_');
        }
        info!(learned = %learned.name, signature = %learned.signature, "pattern discovered");
        learned
    }

    /// Hands the learning loop's news to the alerts (set once, by the composition root).
    pub fn set_alert_hook(&self, hook: AlertHook) {
        let _ = self.alert_hook.set(hook);
    }

    fn alert(&self, effect: &RegistryEffect) {
        use crate::alerts::rules::{Raised, Rule};
        let Some(hook) = self.alert_hook.get() else {
            return;
        };
        match effect {
            RegistryEffect::Adjustment(a) if a.parameter == "position_size_multiplier" => {
                let (from, to) = (a.from.as_f64().unwrap_or(1.0), a.to.as_f64().unwrap_or(1.0));
                if to < from {
                    hook(Raised::new(
                        Rule::RiskCut,
                        format!("risk_cut:{}:{to}", a.strategy),
                        format!("Risk cut for {}", a.strategy),
                        format!("position size x{from} -> x{to}: {}", a.reason),
                    ));
                }
            }
            RegistryEffect::Deprecate(id, reason) => hook(Raised::new(
                Rule::LearnedDeprecated,
                format!("learned_deprecated:{id}"),
                "A learned strategy was deprecated",
                format!("strategy {id}: {reason}"),
            )),
            _ => {}
        }
    }

    /// Makes the learning loop's changes to the registry, through its API, with the
    /// memory's lock released: the memory never waits on the registry while it holds
    /// its own lock (so a backup may pause the two in any order).
    fn apply(&self, effects: Vec<RegistryEffect>) {
        for effect in effects {
            self.alert(&effect);
            match effect {
                RegistryEffect::Adjustment(a) => self.record_in_registry(&a),
                RegistryEffect::LearnedTrade(id, done) => {
                    self.record_learned_trade(id, &done.0, &done.1)
                }
                RegistryEffect::Deprecate(id, reason) => {
                    let deprecated = self.registry.deprecate(
                        DeprecateParams {
                            id,
                            reason,
                            date: None,
                            replacement_id: None,
                        },
                        &daemon_caller(),
                    );
                    if let Err(e) = deprecated {
                        warn!(error = %e.into_rpc("deprecate").message, "cannot deprecate the learned strategy in the registry");
                    }
                }
                RegistryEffect::Register(learned) => self.register(&learned),
            }
        }
    }

    /// Registers a learned strategy under its parent, then notes its registry id in
    /// `learned_strategies.json`.
    fn register(&self, learned: &LearnedStrategy) {
        let Some(parent_id) = learned.parent_id else {
            return;
        };
        match self.register_learned(parent_id, learned) {
            Ok(id) => {
                let mut state = self.state.lock().expect("memory lock");
                if let Some(l) = state.learned.iter_mut().find(|l| l.name == learned.name) {
                    l.strategy_id = Some(id);
                }
                self.save_learned(&state);
            }
            Err(e) => {
                warn!(error = %e, learned = %learned.name, "cannot register the learned strategy")
            }
        }
    }

    fn register_learned(
        &self,
        parent_id: StrategyId,
        l: &LearnedStrategy,
    ) -> Result<StrategyId, String> {
        let caller = daemon_caller();
        let rpc = |e: crate::registry::RegistryError| e.into_rpc("register").message;
        let parent = self.registry.get(parent_id).map_err(rpc)?;
        let mut doc = serde_json::to_value(&parent.metadata).map_err(|e| e.to_string())?;
        let strategy = doc
            .get_mut("strategy")
            .and_then(Value::as_object_mut)
            .ok_or("the parent's metadata has no strategy object")?;
        strategy.remove("id");
        strategy.insert("name".into(), json!(l.name));
        strategy.insert(
            "display_name".into(),
            json!(format!(
                "{} (learned: {})",
                parent.summary.display_name, l.signature
            )),
        );
        strategy.insert(
            "description".into(),
            json!(format!(
                "Learned by MEM from {}: enter only when the market state is {}; seen {} times with {:.0}% wins among its last {} closed decisions.",
                parent.summary.display_name,
                l.signature,
                l.evidence.occurrences,
                l.evidence.win_rate * 100.0,
                l.evidence.window
            )),
        );
        strategy.insert("origin".into(), json!("learned"));
        strategy.insert("version".into(), json!("1.0.0"));
        strategy.insert(
            "learned_pattern".into(),
            json!({"signature": l.signature, "parent": l.parent, "evidence": l.evidence}),
        );
        strategy.insert(
            "performance".into(),
            json!({"backtest": {}, "live_trading": {}}),
        );
        let detail = self
            .registry
            .register(
                RegisterParams {
                    strategy: doc,
                    status: Some(StrategyStatus::Experimental),
                },
                &caller,
            )
            .map_err(rpc)?;
        let id = detail.summary.id;
        if let Err(e) = self.registry.link(
            LinkParams {
                from: id,
                to: parent_id,
                relationship: RelationshipType::DerivedFrom,
                note: Some(format!("learned pattern {}", l.signature)),
                similarity_score: None,
            },
            &caller,
        ) {
            warn!(error = %rpc(e), "cannot link the learned strategy to its parent");
        }
        let count = parent
            .metadata
            .strategy
            .mem_integration
            .learned_patterns_count
            .saturating_add(1);
        let _ = self.registry.learned_patterns(
            LearnedPatternsParams {
                id: parent_id,
                count,
            },
            &caller,
        );
        Ok(id)
    }

    /// `mem.decisions`: newest first.
    pub fn decisions(&self, p: &DecisionsParams) -> DecisionList {
        // A strategy named by its registry id also matches the name its decisions are kept
        // under (native strategies', bots' and alerts' decisions name the registry name).
        let by_id = p
            .strategy
            .as_deref()
            .and_then(|s| s.parse::<StrategyId>().ok())
            .and_then(|id| self.registry.summary(id))
            .map(|s| s.name);
        let state = self.state.lock().expect("memory lock");
        DecisionList {
            decisions: state
                .recent
                .iter()
                .rev()
                .filter(|d| {
                    p.strategy.as_ref().is_none_or(|s| &d.strategy == s)
                        || by_id.as_ref().is_some_and(|name| &d.strategy == name)
                })
                .filter(|d| p.symbol.as_ref().is_none_or(|s| &d.symbol == s))
                .take(p.limit.unwrap_or(enhance::LOOKBACK))
                .cloned()
                .collect(),
            unreadable_lines: state.unreadable_lines,
        }
    }

    /// A decision memd holds (open, or among the newest [`RECENT`]), as it now stands.
    pub fn decision(&self, id: &str) -> Option<Decision> {
        let state = self.state.lock().expect("memory lock");
        state
            .open
            .get(id)
            .or_else(|| state.recent.iter().rev().find(|d| d.id == id))
            .cloned()
    }

    /// The strategy of a decision memd holds (what a bot's credential is checked against).
    pub fn decision_strategy(&self, id: &str) -> Option<String> {
        let state = self.state.lock().expect("memory lock");
        match state.open.get(id) {
            Some(d) => Some(d.strategy.clone()),
            None => state
                .recent
                .iter()
                .rev()
                .find(|d| d.id == id)
                .map(|d| d.strategy.clone()),
        }
    }

    /// `mem.parameters`: an error when the file is broken (the monitor skips meanwhile).
    pub fn parameters(&self) -> Result<ParameterState, RpcError> {
        let state = self.state.lock().expect("memory lock");
        if let Some(e) = &state.params_error {
            return Err(RpcError::new(
                ErrorCode::Unavailable,
                format!("{e}; fix or move the file (the monitor skips it meanwhile)"),
            ));
        }
        let history = self
            .parameter_updates()
            .history()
            .map_err(|e| RpcError::new(ErrorCode::Unavailable, e))?;
        Ok(ParameterState {
            current: state
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect(),
            history,
        })
    }

    /// `mem.patterns`.
    pub fn patterns(&self, p: &PatternsParams) -> PatternList {
        let state = self.state.lock().expect("memory lock");
        let wanted = |s: &str| p.strategy.as_deref().is_none_or(|w| w == s);
        let mut candidates: Vec<PatternStat> = Vec::new();
        let mut names: Vec<&String> = state.strategies.keys().filter(|s| wanted(s)).collect();
        names.sort();
        for name in names {
            candidates.extend(patterns::tally(
                name,
                state.strategies[name]
                    .last
                    .iter()
                    .filter_map(|(s, w)| s.as_deref().map(|s| (s, *w))),
            ));
        }
        PatternList {
            learned: state
                .learned
                .iter()
                .filter(|l| wanted(&l.parent))
                .cloned()
                .collect(),
            candidates,
            file_error: state.learned_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(i: usize) -> Decision {
        Decision {
            id: format!("d{i}"),
            at: chrono::Utc::now(),
            strategy: "s".into(),
            symbol: "X/USDT".into(),
            action: mem_protocol::mem::SignalAction::Buy,
            price: 1.0,
            base_confidence: 0.7,
            confidence: 0.7,
            ml_confidence: None,
            memory_confidence: None,
            learned_pattern: None,
            position_size: 0.1,
            stop_loss: 0.9,
            take_profit: 1.1,
            reasoning: String::new(),
            signature: None,
            model_version: None,
            observed: false,
            source: None,
            outcome: None,
        }
    }

    fn outcome(i: usize) -> Outcome {
        Outcome {
            decision_id: format!("d{i}"),
            closed_at: chrono::Utc::now(),
            exit_price: 1.0,
            pnl: 1.0,
            pnl_pct: 1.0,
            win: true,
            exit_reason: None,
            duration_secs: None,
        }
    }

    #[test]
    fn open_decisions_are_bounded_and_the_oldest_forgotten_first() {
        let mut state = State::default();
        for i in 0..OPEN_MAX + 5 {
            state.add_decision(decision(i));
        }
        assert_eq!(state.open.len(), OPEN_MAX);
        assert_eq!(state.open_forgotten, 5);
        assert!(
            state.close(&outcome(4)).is_none(),
            "the 5th oldest was forgotten"
        );
        assert!(state.close(&outcome(5)).is_some(), "the 6th is still open");
        assert!(state.open_order.len() <= 2 * state.open.len() + 64);
    }

    #[test]
    fn closed_decisions_do_not_pile_up_in_the_open_order() {
        let mut state = State::default();
        for i in 0..100_000 {
            state.add_decision(decision(i));
            state.close(&outcome(i)).expect("open");
        }
        assert!(state.open.is_empty());
        assert!(
            state.open_order.len() <= 64 + 1,
            "{}",
            state.open_order.len()
        );
        assert_eq!(state.open_forgotten, 0);
    }
}
