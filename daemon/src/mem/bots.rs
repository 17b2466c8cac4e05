//! Every Freqtrade bot's closed trades teach MEM.
//!
//! The supervisor's trade sync hands each newly closed trade of a bot here, with the
//! decision its strategy's memd mixin logged for it (the trade's custom data
//! `memd_decision_id`, read from the bot's API), before the trade goes to the registry:
//!
//! - a trade with its decision closes it ([`Memory::outcome`]: the profit, the duration and
//!   the exit reason), and the learning loop runs on it as on a native strategy's;
//! - a trade without one (a strategy that does not use the mixin, an entry made while
//!   memd did not answer) is recorded as an **observed** decision at its entry (no MEM
//!   input: confidences and size 0, the market state at entry from the pair's candles when
//!   they cover it) and its outcome, so the performance monitor and pattern discovery see
//!   every bot.
//!
//! An observed decision's id is derived from the deployment and the trade, so a trade
//! handed over twice (a sync retried after the registry refused its batch) is recorded
//! once; an outcome already recorded is not recorded again. The answer says what MEM had
//! to do with the trade, for the registry's trade line (`was_mem_enhanced`,
//! `mem_confidence_boost`, `learned_pattern_applied`).

use super::service::{Memory, NewDecision, NewOutcome};
use super::store::Durability;
use crate::market::candles::{self, Timeframe};
use chrono::{DateTime, Utc};
use mem_protocol::deploy::DeploymentId;
use mem_protocol::mem::{Decision, EnhancedSignal, SignalAction};
use sha2::{Digest, Sha256};
use std::path::Path;
use tracing::warn;

/// The trade's custom data key the mixin writes its decision's id under.
pub const DECISION_KEY: &str = "memd_decision_id";

/// A bot's closed trade, as MEM needs it.
#[derive(Debug, Clone)]
pub struct BotTrade {
    pub deployment_id: DeploymentId,
    /// Freqtrade's trade id (per bot).
    pub trade_id: i64,
    pub symbol: String,
    pub short: bool,
    pub open_rate: f64,
    pub close_rate: f64,
    pub opened_at: DateTime<Utc>,
    pub closed_at: DateTime<Utc>,
    pub pnl: f64,
    pub pnl_pct: f64,
    pub exit_reason: Option<String>,
    /// The decision the strategy's mixin logged for it, if any.
    pub decision_id: Option<String>,
}

/// What MEM had to do with a trade: its decision as it now stands (closed).
#[derive(Debug, Clone)]
pub struct Learned {
    pub decision: Decision,
}

impl Learned {
    /// Whether MEM took part in the entry (not an observed decision).
    pub fn enhanced(&self) -> bool {
        !self.decision.observed
    }

    /// What MEM added to the strategy's own confidence (none for an observed decision).
    pub fn confidence_boost(&self) -> Option<f64> {
        self.enhanced().then(|| {
            ((self.decision.confidence - self.decision.base_confidence) * 1e4).round() / 1e4
        })
    }
}

/// Where an observed decision's market state is read: the candles of the market data.
#[derive(Debug, Clone, Copy)]
pub struct Market<'a> {
    pub dir: &'a Path,
    pub timeframe: Timeframe,
}

/// Records what `trade` (of `strategy`, the registry name its decisions are kept under)
/// teaches: its decision closed, or an observed decision and its outcome. Blocking: it
/// writes the memory's files (synced) and may read the pair's candles.
pub fn learn(
    memory: &Memory,
    market: Market<'_>,
    strategy: &str,
    trade: &BotTrade,
) -> Result<Learned, String> {
    if let Some(id) = &trade.decision_id {
        match memory.decision(id) {
            Some(d) if d.strategy == strategy => return close(memory, d, trade),
            Some(d) => warn!(
                decision = %id, strategy, held_by = %d.strategy,
                "a bot's trade names another strategy's decision; it is recorded as observed"
            ),
            None => warn!(
                decision = %id, strategy, trade = trade.trade_id,
                "a bot's trade names a decision memd no longer holds; it is recorded as observed"
            ),
        }
    }
    let id = observed_id(trade.deployment_id, trade.trade_id);
    if let Some(d) = memory.decision(&id) {
        return close(memory, d, trade);
    }
    let action = if trade.short {
        SignalAction::Sell
    } else {
        SignalAction::Buy
    };
    let signature = signature_at(
        market,
        &trade.symbol,
        action,
        trade.opened_at,
        memory.settings().reference_volatility_pct,
    );
    let decision = memory
        .decide(
            NewDecision {
                strategy: strategy.to_string(),
                enhanced: observed_signal(action, &trade.symbol),
                price: trade.open_rate,
                at: trade.opened_at,
                signature,
                model_version: None,
                id: Some(id),
                observed: true,
                source: Some(format!("bot {}", trade.deployment_id)),
            },
            Durability::Sync,
            true,
        )
        .map_err(|e| format!("memory files: {e}"))?;
    close(memory, decision, trade)
}

/// The trade's outcome on its decision, unless it has one already.
fn close(memory: &Memory, decision: Decision, trade: &BotTrade) -> Result<Learned, String> {
    if decision.outcome.is_some() {
        return Ok(Learned { decision });
    }
    let id = decision.id.clone();
    let recorded = memory.outcome(
        NewOutcome {
            decision_id: id.clone(),
            exit_price: trade.close_rate,
            pnl: trade.pnl,
            pnl_pct: trade.pnl_pct,
            closed_at: trade.closed_at,
            exit_reason: trade.exit_reason.clone(),
            duration_secs: Some((trade.closed_at - trade.opened_at).num_seconds().max(0)),
        },
        Durability::Sync,
        true,
    );
    match recorded {
        Ok(_) => {}
        // Closed meanwhile (by a client's mem.outcome): what stands is recorded.
        Err(e) if e.code == mem_protocol::ErrorCode::Conflict => {}
        Err(e) => return Err(e.message),
    }
    memory
        .decision(&id)
        .map(|decision| Learned { decision })
        .ok_or_else(|| format!("decision {id} is gone from the memory"))
}

/// An observed decision's id: a UUID (version 8) derived from the deployment and the
/// bot's trade id, the same every time.
pub fn observed_id(deployment: DeploymentId, trade_id: i64) -> String {
    let digest = Sha256::digest(format!("memd observed trade {deployment}:{trade_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn observed_signal(action: SignalAction, symbol: &str) -> EnhancedSignal {
    EnhancedSignal {
        action,
        symbol: symbol.to_string(),
        confidence: 0.0,
        position_size: 0.0,
        stop_loss: 0.0,
        take_profit: 0.0,
        reasoning: "observed: the bot entered on its strategy's signal without consulting MEM (its strategy does not use the memd mixin, or memd did not answer); recorded from its closed trade".into(),
        base_confidence: 0.0,
        ml_confidence: None,
        memory_confidence: None,
        learned_strategy: None,
        risk: "unknown".into(),
        breakdown: vec![],
        memory_basis: None,
        actionable: true,
        regime_rules: vec![],
    }
}

/// The market-state signature of `symbol` when the trade opened: from the candles that
/// had closed by then, when the newest of them is at most three candles older than the
/// entry (memd's candles may not cover the bot's pair, or be old).
fn signature_at(
    market: Market<'_>,
    symbol: &str,
    action: SignalAction,
    at: DateTime<Utc>,
    reference_volatility_pct: f64,
) -> Option<String> {
    let raw = candles::read_pair(market.dir, symbol, market.timeframe).ok()?;
    let (clean, _) = candles::clean(raw);
    let step = market.timeframe.millis();
    let entry = at.timestamp_millis();
    let closed = clean.partition_point(|c| c.ts_ms + step <= entry);
    let newest = clean.get(closed.checked_sub(1)?)?;
    if entry - (newest.ts_ms + step) > 3 * step {
        return None;
    }
    let from = closed.saturating_sub(crate::ml::service::PREDICT_CANDLES);
    super::patterns::signature_of_candles(action, &clean[from..closed], reference_volatility_pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observed_id_is_a_uuid_the_same_for_the_same_trade() {
        let d = DeploymentId::new_random();
        let a = observed_id(d, 7);
        assert_eq!(a, observed_id(d, 7));
        assert_ne!(a, observed_id(d, 8));
        assert_ne!(a, observed_id(DeploymentId::new_random(), 7));
        assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
    }
}
