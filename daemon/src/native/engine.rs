//! One native deployment's trading loop, one candle at a time, without I/O of its own:
//! indicators and the model's features (incremental), the broker's stops and targets,
//! the strategy's signal, MEM enhancement and the decision log for an entry, the outcome
//! and the learning loop for an exit. Closed trades wait in [`Engine::take_trades`] for
//! the caller to record them in the registry in batches.
//!
//! Order per candle: the broker checks the open position against the candle (a stop or a
//! target hit inside it), then the strategy sees the candle, then an entry or exit
//! happens at its close. Long only: BUY opens when flat, SELL closes when long.

use super::paper::{ClosedTrade, ExitReason, PaperBroker, PaperSettings};
use super::strategies::{NativeStrategy, StrategySignal};
use crate::market::candles::Candle;
use crate::market::features::FeatureState;
use crate::market::indicators::{Atr, IndicatorState};
use crate::mem::enhance::EnhanceSettings;
use crate::mem::patterns;
use crate::mem::service::{EnhanceRequest, Memory, NewDecision, NewOutcome};
use crate::mem::store::Durability;
use crate::ml::service::ServingModel;
use chrono::{DateTime, Utc};
use mem_protocol::mem::{BaseSignal, SignalAction};
use mem_protocol::registry::{TradeAction, TradeRecord};
use std::collections::VecDeque;
use std::sync::Arc;

/// Candles an engine keeps to warm a strategy rebuilt with new parameters: enough for the
/// longest lookback a native strategy accepts (volatility-managed momentum's 504 + 63)
/// and for Wilder's smoothing (RSI, MFI) to settle at the longest period (100).
pub const RECENT_CANDLES: usize = 2_000;

/// What an engine trades and how.
#[derive(Debug, Clone)]
pub struct EngineSpec {
    /// The name decisions carry (the registry strategy's `name`).
    pub strategy_key: String,
    pub symbol: String,
    pub timeframe_ms: i64,
    /// Enhance entries with the model and memory, and log them.
    pub mem_enabled: bool,
    /// Prefix of the trade ids in the registry (the deployment id).
    pub trade_prefix: String,
}

/// Counters for the deployment's stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStats {
    pub candles: u64,
    pub signals: u64,
    pub decisions: u64,
    /// Entries MEM said not to act on (below the strategy's learned confidence threshold).
    pub skipped: u64,
    pub last_ts_ms: Option<i64>,
    pub last_close: Option<f64>,
}

/// One native deployment's state.
pub struct Engine {
    spec: EngineSpec,
    strategy: Box<dyn NativeStrategy>,
    indicators: Indicators,
    /// The model's features, kept only when an entry can ask the model (MEM on, with a
    /// memory and a model): they are about half of a candle's cost, and nothing else reads
    /// them.
    features: Option<FeatureState>,
    broker: PaperBroker,
    memory: Option<Arc<Memory>>,
    /// The served model, asked at each entry: a promotion applies from the next one.
    model: Option<ServingModel>,
    settings: EnhanceSettings,
    durability: Durability,
    announce: bool,
    trades: Vec<TradeRecord>,
    stats: EngineStats,
    errors: Vec<String>,
    /// The last [`RECENT_CANDLES`] candles seen, oldest first.
    recent: VecDeque<Candle>,
}

/// The indicators an engine keeps: every one when entries go through MEM (the pattern
/// signature reads them), else only ATR 14 with its last value, the one an entry without
/// MEM reads (its stop and target): the others are most of a candle's cost.
enum Indicators {
    All(Box<IndicatorState>),
    Atr(Atr, Option<f64>),
}

impl Indicators {
    fn update(&mut self, c: &Candle) {
        match self {
            Indicators::All(all) => all.update(c.open, c.high, c.low, c.close, c.volume),
            Indicators::Atr(atr, last) => *last = atr.update(c.high, c.low, c.close),
        }
    }

    fn atr14(&self) -> Option<f64> {
        match self {
            Indicators::All(all) => all.atr14(),
            Indicators::Atr(_, last) => *last,
        }
    }
}

/// A candle's time from its epoch milliseconds (the epoch for one out of range).
pub(crate) fn time(ts_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ts_ms).unwrap_or_default()
}

impl Engine {
    /// `memory` and `model` are what MEM enhancement uses; without memory the strategy
    /// trades its base signals with the `[mem.enhancement]` default size, stop and target.
    #[allow(clippy::too_many_arguments)] // the parts of a deployment, each needed once
    pub fn new(
        spec: EngineSpec,
        strategy: Box<dyn NativeStrategy>,
        broker: PaperBroker,
        memory: Option<Arc<Memory>>,
        model: Option<ServingModel>,
        settings: EnhanceSettings,
        durability: Durability,
        announce: bool,
    ) -> Engine {
        let through_mem = spec.mem_enabled && memory.is_some();
        let asks_model = through_mem && model.is_some();
        Engine {
            spec,
            strategy,
            indicators: if through_mem {
                Indicators::All(Box::default())
            } else {
                Indicators::Atr(Atr::new(14), None)
            },
            features: asks_model.then(FeatureState::new),
            broker,
            memory,
            model,
            settings,
            durability,
            announce,
            trades: Vec::new(),
            stats: EngineStats::default(),
            errors: Vec::new(),
            recent: VecDeque::new(),
        }
    }

    /// Puts a strategy built with new parameters in place of the running one. It is first
    /// fed the candles seen so far (the last [`RECENT_CANDLES`]) without trading, so that
    /// from the next candle it signals as if it had run with these parameters all along;
    /// the broker, an open position, the indicators and the features are kept. Answers
    /// how many candles warmed it.
    pub fn replace_strategy(&mut self, mut strategy: Box<dyn NativeStrategy>) -> usize {
        for c in &self.recent {
            let _ = strategy.on_candle(c);
        }
        self.strategy = strategy;
        self.recent.len()
    }

    fn remember(&mut self, c: &Candle) {
        if self.recent.len() == RECENT_CANDLES {
            self.recent.pop_front();
        }
        self.recent.push_back(*c);
    }

    pub fn broker(&self) -> &PaperBroker {
        &self.broker
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Closed trades not yet handed to the registry.
    pub fn take_trades(&mut self) -> Vec<TradeRecord> {
        std::mem::take(&mut self.trades)
    }

    /// Problems met since the last call (a memory file that could not be written, ...):
    /// the engine goes on, the caller logs them.
    pub fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    /// Feeds a candle of history: indicators and the strategy warm up, nothing trades.
    pub fn warm(&mut self, c: &Candle) {
        self.indicators.update(c);
        if let Some(features) = &mut self.features {
            features.update(c);
        }
        let _ = self.strategy.on_candle(c);
        self.remember(c);
        self.stats.last_ts_ms = Some(c.ts_ms);
        self.stats.last_close = Some(c.close);
    }

    /// Trades one candle.
    pub fn step(&mut self, c: &Candle) {
        self.indicators.update(c);
        let row = self.features.as_mut().and_then(|f| f.update(c));
        self.remember(c);
        self.stats.candles += 1;
        self.stats.last_ts_ms = Some(c.ts_ms);
        self.stats.last_close = Some(c.close);
        if let Some(closed) = self.broker.on_candle(c) {
            self.closed(closed);
        }
        let Some(signal) = self.strategy.on_candle(c) else {
            return;
        };
        self.stats.signals += 1;
        let decided_at = c.ts_ms + self.spec.timeframe_ms;
        match signal.action {
            SignalAction::Buy if self.broker.position().is_none() => {
                self.enter(c, decided_at, &signal, row.as_ref())
            }
            SignalAction::Sell if self.broker.position().is_some() => {
                if let Some(closed) = self.broker.close(decided_at, c.close, ExitReason::Signal) {
                    self.closed(closed);
                }
            }
            _ => {}
        }
    }

    /// Closes an open position at the last close (the end of a replay, a stop).
    pub fn finish(&mut self) {
        let (Some(ts), Some(close)) = (self.stats.last_ts_ms, self.stats.last_close) else {
            return;
        };
        if let Some(closed) = self
            .broker
            .close(ts + self.spec.timeframe_ms, close, ExitReason::End)
        {
            self.closed(closed);
        }
    }

    fn enter(
        &mut self,
        c: &Candle,
        at_ms: i64,
        signal: &StrategySignal,
        row: Option<&crate::market::features::FeatureRow>,
    ) {
        let reference = self.settings.reference_volatility_pct;
        let volatility_pct = self
            .indicators
            .atr14()
            .map(|atr| atr / c.close * 100.0)
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(reference);
        let memory = self.memory.clone().filter(|_| self.spec.mem_enabled);
        let (Some(memory), Indicators::All(indicators)) = (memory, &self.indicators) else {
            self.broker.open(
                at_ms,
                c.close,
                self.settings.base_size,
                Some(self.settings.stop_atr * volatility_pct),
                Some(self.settings.target_atr * volatility_pct),
                signal.confidence,
                None,
                None,
                None,
            );
            return;
        };
        // Timed for `mem.metrics`: the model's prediction, and the whole enhancement.
        let metrics = memory.metrics().clone();
        let started = std::time::Instant::now();
        let served = self.model.as_ref().and_then(ServingModel::current);
        let (ml, model_version) = match (served, row) {
            (Some((version, model)), Some(row)) => {
                let p = model.predict_proba(row);
                metrics.prediction.record(started.elapsed());
                // As ml.predict: the close under its SMA 20 makes a trough the reversal.
                let direction = if row[1] > 0.0 { "bullish" } else { "bearish" };
                (Some((p, direction.to_string())), Some(version))
            }
            _ => (None, None),
        };
        let signature = patterns::signature(signal.action, indicators, c.close, reference);
        let enhanced = memory.enhance(&EnhanceRequest {
            signal: BaseSignal {
                strategy: self.spec.strategy_key.clone(),
                symbol: self.spec.symbol.clone(),
                action: signal.action,
                confidence: signal.confidence,
            },
            ml,
            pattern: None,
            volatility_pct,
            signature: signature.clone(),
            // The runner keeps no trend indicators (ADX, SMA 50): the volatility rule only.
            regime: None,
        });
        metrics.enhancement.record(started.elapsed());
        if !enhanced.actionable {
            self.stats.skipped += 1;
            return;
        }
        let (size, stop, target, confidence, learned) = (
            enhanced.position_size,
            -enhanced.stop_loss,
            enhanced.take_profit,
            enhanced.confidence,
            enhanced.learned_strategy.clone(),
        );
        let decision = match memory.decide(
            NewDecision {
                strategy: self.spec.strategy_key.clone(),
                enhanced,
                price: c.close,
                at: time(at_ms),
                signature: signature.clone(),
                model_version,
                id: None,
                observed: false,
                source: None,
            },
            self.durability,
            self.announce,
        ) {
            Ok(d) => d,
            Err(e) => {
                // Not logged, not traded: every paper trade of a MEM strategy has its decision.
                self.errors.push(format!("cannot log a decision: {e}"));
                return;
            }
        };
        self.stats.decisions += 1;
        self.broker.open(
            at_ms,
            c.close,
            size,
            Some(stop),
            Some(target),
            confidence,
            Some(decision.id),
            learned,
            signature,
        );
    }

    fn closed(&mut self, t: ClosedTrade) {
        let p = &t.position;
        if let (Some(memory), Some(id)) = (&self.memory, &p.decision_id) {
            if let Err(e) = memory.outcome(
                NewOutcome {
                    decision_id: id.clone(),
                    exit_price: t.exit_price,
                    pnl: t.pnl,
                    pnl_pct: t.pnl_pct,
                    closed_at: time(t.exit_ts_ms),
                    exit_reason: Some(t.reason.to_string()),
                    duration_secs: Some((t.exit_ts_ms - p.entry_ts_ms) / 1000),
                },
                self.durability,
                self.announce,
            ) {
                self.errors
                    .push(format!("cannot record an outcome: {}", e.message));
            }
        }
        let slippage = self.broker.settings().slippage_pct / 100.0;
        self.trades.push(TradeRecord {
            trade_id: format!("{}:{}", self.spec.trade_prefix, p.trade_id),
            symbol: self.spec.symbol.clone(),
            timeframe: None,
            action: TradeAction::Buy,
            confidence: Some(p.confidence),
            entry_price: p.entry_price,
            exit_price: t.exit_price,
            entry_time: time(p.entry_ts_ms),
            exit_time: time(t.exit_ts_ms.max(p.entry_ts_ms)),
            pnl: t.pnl,
            pnl_pct: t.pnl_pct,
            is_win: Some(t.is_win()),
            mem_enhanced: p.decision_id.is_some(),
            mem_confidence_boost: None,
            learned_pattern: p.learned_pattern.clone(),
            market_regime: p.signature.clone(),
            volatility: None,
            broker: Some(format!("memd paper ({})", t.reason)),
            slippage: Some(slippage),
            commission: Some(t.fees),
            duration_seconds: Some((t.exit_ts_ms.max(p.entry_ts_ms) - p.entry_ts_ms) / 1000),
            ..TradeRecord::default()
        });
    }
}

/// The paper settings a deployment starts with.
pub fn paper_settings(starting_balance: Option<f64>) -> PaperSettings {
    let mut s = PaperSettings::default();
    if let Some(b) = starting_balance {
        s.starting_balance = b;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::strategies;
    use serde_json::json;

    /// Closes that go down 0.3, up 0.2, ...: RSI(14) settles near 40.
    fn drifting(n: usize) -> Vec<Candle> {
        let mut close = 100.0;
        (0..n)
            .map(|i| {
                close += if i % 2 == 0 { -0.3 } else { 0.2 };
                Candle {
                    ts_ms: 1_600_000_000_000 + i as i64 * 300_000,
                    open: close,
                    high: close * 1.001,
                    low: close * 0.999,
                    close,
                    volume: 1_000_000.0,
                }
            })
            .collect()
    }

    fn rsi(oversold: f64) -> Box<dyn NativeStrategy> {
        let p = json!({"period": 14, "oversold": oversold, "overbought": 70});
        strategies::build("rsi", p.as_object().unwrap()).unwrap()
    }

    /// A paper RSI (oversold 30) without MEM or a model.
    fn rsi_engine() -> Engine {
        Engine::new(
            EngineSpec {
                strategy_key: "native_rsi".into(),
                symbol: "X/USDT".into(),
                timeframe_ms: 300_000,
                mem_enabled: false,
                trade_prefix: "t".into(),
            },
            rsi(30.0),
            PaperBroker::new(PaperSettings::default()),
            None,
            None,
            EnhanceSettings::default(),
            Durability::Batched,
            false,
        )
    }

    #[test]
    fn a_replaced_strategy_is_warmed_and_trades_from_the_next_candle() {
        let mut engine = rsi_engine();
        let candles = drifting(200);
        for c in &candles[..100] {
            engine.warm(c);
        }
        for c in &candles[100..150] {
            engine.step(c);
        }
        assert!(
            engine.broker().position().is_none(),
            "RSI near 40 is not below 30"
        );
        assert_eq!(engine.stats().signals, 0);
        // Oversold 45: the rebuilt strategy has seen every candle, so the next one buys.
        assert_eq!(engine.replace_strategy(rsi(45.0)), 150);
        engine.step(&candles[150]);
        assert_eq!(engine.stats().signals, 1);
        assert!(engine.broker().position().is_some(), "bought at once");
    }

    #[test]
    fn at_most_the_last_recent_candles_are_kept() {
        let mut engine = rsi_engine();
        for c in &drifting(RECENT_CANDLES + 10) {
            engine.warm(c);
        }
        assert_eq!(engine.replace_strategy(rsi(30.0)), RECENT_CANDLES);
    }
}
