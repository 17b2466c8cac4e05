//! The MEM use-cases a client calls: `mem.enhance` (a base signal, the model and the
//! memory make an enhanced one) and `mem.decide` (the same, then logged as a decision).
//! A TradingView alert is a `mem.decide`.
//!
//! What the caller leaves out is filled from the market data: the model's prediction on
//! the symbol's latest candles, its volatility (ATR %), its market-state signature.

use super::enhance::Regime;
use super::market_inputs::MarketInputs;
use super::service::{EnhanceRequest, Memory, NewDecision};
use super::store::Durability;
use crate::ml::service::MlService;
use chrono::Utc;
use mem_protocol::RpcError;
use mem_protocol::mem::{DecideParams, Decision, EnhanceParams, EnhancedSignal};
use std::sync::Arc;
use std::time::Instant;

/// A signal enhanced, with what it was matched on.
pub struct Enhanced {
    pub signal: EnhancedSignal,
    /// The market-state signature the memory matched.
    pub signature: Option<String>,
    /// The model version whose prediction was used, when the daemon asked the model.
    pub model_version: Option<String>,
}

/// `mem.decide`: the signal enhanced (see [`enhance`]), then logged at `price` in both
/// decision logs and announced (`decision.logged`); `source` is who asked.
pub fn decide(
    ml: &MlService,
    memory: &Memory,
    p: DecideParams,
    source: Option<String>,
) -> Result<Decision, RpcError> {
    if !(p.price.is_finite() && p.price > 0.0) {
        return Err(RpcError::invalid_params(
            "mem.decide",
            format!("field `price`: must be above 0, got {}", p.price),
        ));
    }
    if let Some(id) = &p.id {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(RpcError::invalid_params(
                "mem.decide",
                format!("field `id`: a decision's id is a UUID, got {id:?}"),
            ));
        }
        if memory.decision(id).is_some() {
            return Err(RpcError::new(
                mem_protocol::ErrorCode::Conflict,
                format!("decision `{id}` exists already"),
            ));
        }
    }
    let strategy = p.enhance.signal.strategy.clone();
    let enhanced = enhance(ml, memory, p.enhance)?;
    memory
        .decide(
            NewDecision {
                strategy,
                enhanced: enhanced.signal,
                price: p.price,
                at: Utc::now(),
                signature: enhanced.signature,
                model_version: enhanced.model_version,
                id: p.id,
                observed: false,
                source,
            },
            Durability::Sync,
            true,
        )
        .map_err(|e| RpcError::internal(format!("memory files: {e}")))
}

/// `mem.enhance`: the ML prediction, the volatility and the market-state signature come
/// from the symbol's candles when the caller does not give them (read once per candle
/// file: [`super::market_inputs`]).
pub fn enhance(ml: &MlService, memory: &Memory, p: EnhanceParams) -> Result<Enhanced, RpcError> {
    let reference = memory.settings().reference_volatility_pct;
    enhance_with(memory, p, |symbol| {
        memory
            .market_inputs()
            .get(ml, symbol, reference, memory.metrics())
    })
}

/// [`enhance`] when it can be answered from memory at once: the caller gives every market
/// figure, or the symbol's inputs are kept and current. Otherwise the params come back,
/// for [`enhance`] on a thread that may read the candles.
pub fn enhance_if_ready(
    ml: &MlService,
    memory: &Memory,
    p: EnhanceParams,
) -> Result<Result<Enhanced, RpcError>, Box<EnhanceParams>> {
    let kept = if needs_market(&p) {
        match memory.market_inputs().fresh(ml, &p.signal.symbol) {
            Some(kept) => Some(kept),
            None => return Err(Box::new(p)),
        }
    } else {
        None
    };
    Ok(enhance_with(memory, p, |_| {
        kept.expect("kept inputs when they are needed")
    }))
}

/// Whether an enhancement reads anything from the symbol's candles.
fn needs_market(p: &EnhanceParams) -> bool {
    p.ml_confidence.is_none() || p.volatility_pct.is_none() || p.signature.is_none()
}

/// The enhancement, `market` giving the symbol's inputs when the caller left any out.
fn enhance_with(
    memory: &Memory,
    p: EnhanceParams,
    market: impl FnOnce(&str) -> Arc<MarketInputs>,
) -> Result<Enhanced, RpcError> {
    let started = Instant::now();
    let settings = memory.settings();
    let metrics = memory.metrics();
    let method = "mem.enhance";
    let s = &p.signal;
    if !(0.0..=1.0).contains(&s.confidence) {
        return Err(RpcError::invalid_params(
            method,
            format!(
                "field `signal.confidence`: must be within 0 and 1, got {}",
                s.confidence
            ),
        ));
    }
    // What the caller leaves out is read from the symbol's candles, once per candle file.
    let market = needs_market(&p).then(|| market(&s.symbol));
    let (ml_input, model_version) = match (p.ml_confidence, p.ml_direction.clone()) {
        (Some(c), Some(d)) if (0.0..=1.0).contains(&c) && (d == "bullish" || d == "bearish") => {
            (Some((c, d)), None)
        }
        (Some(_), _) => {
            return Err(RpcError::invalid_params(
                method,
                "fields `mlConfidence` (0 to 1) and `mlDirection` (bullish or bearish) go together",
            ));
        }
        (None, _) => match market.as_ref().and_then(|m| m.prediction.as_ref()) {
            Some(pr) => (
                Some((pr.confidence, pr.direction.clone())),
                Some(pr.model_version.clone()),
            ),
            None => (None, None),
        },
    };
    if let Some(pattern) = &p.pattern {
        if !(0.0..=1.0).contains(&pattern.win_rate) {
            return Err(RpcError::invalid_params(
                method,
                "field `pattern.winRate`: must be within 0 and 1",
            ));
        }
    }
    // The market around the signal, read from the symbol's candles when the caller gives
    // no volatility: its ATR % and its trend.
    let conditions = match p.volatility_pct {
        None => market.as_ref().and_then(|m| m.conditions.as_ref()),
        Some(_) => None,
    };
    let volatility_pct = match p.volatility_pct {
        Some(v) if v.is_finite() && v > 0.0 => v,
        Some(v) => {
            return Err(RpcError::invalid_params(
                method,
                format!("field `volatilityPct`: must be above 0, got {v}"),
            ));
        }
        None => conditions
            .and_then(|c| c.indicators.get("atrPct").copied())
            .unwrap_or(settings.reference_volatility_pct),
    };
    let regime = match (p.trend, p.adx) {
        (Some(trend), Some(adx)) if adx.is_finite() && adx >= 0.0 => Some(Regime { trend, adx }),
        (None, None) => conditions.as_ref().and_then(|c| {
            let adx = c.indicators.get("adx").copied()?;
            Some(Regime {
                trend: c.trend,
                adx,
            })
        }),
        _ => {
            return Err(RpcError::invalid_params(
                method,
                "fields `trend` and `adx` (0 or more) go together",
            ));
        }
    };
    let signature = match p.signature.clone() {
        Some(sig) if sig.trim().is_empty() => {
            return Err(RpcError::invalid_params(
                method,
                "field `signature`: must not be empty",
            ));
        }
        Some(sig) => Some(sig),
        None => market.as_ref().and_then(|m| m.signature(s.action)),
    };
    let signal = memory.enhance(&EnhanceRequest {
        signal: s.clone(),
        ml: ml_input,
        pattern: p.pattern.clone(),
        volatility_pct,
        signature: signature.clone(),
        regime,
    });
    let mut signal = signal;
    if let Some(note) = market
        .as_deref()
        .and_then(|m| stale_note(m, &s.symbol, Utc::now()))
    {
        signal.reasoning.push_str(&note);
    }
    metrics.enhancement.record(started.elapsed());
    Ok(Enhanced {
        signal,
        signature,
        model_version,
    })
}

/// What the reasoning says when the candles read for the enhancement are stale: the model's
/// prediction and the market state then describe another market than today's.
fn stale_note(market: &MarketInputs, symbol: &str, now: chrono::DateTime<Utc>) -> Option<String> {
    let freshness = market
        .prediction
        .as_ref()
        .and_then(|p| p.freshness.as_ref())
        .or(market.conditions.as_ref().map(|c| &c.freshness))?
        .at(now);
    freshness.stale.then(|| {
        format!(
            " Stale data: the newest candle of {symbol} read closed {}, {}; the prediction and the market state are not today's market.",
            freshness.as_of.format("%Y-%m-%d %H:%M UTC"),
            freshness.words()
        )
    })
}
