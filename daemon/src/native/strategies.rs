//! The native strategies: the seed's five C# strategies (Momentum, RSI, MACD, MFI, VWAP)
//! and the research strategy volatility-managed momentum, as pure state machines fed one
//! closed candle at a time.
//!
//! Each answers a *base* signal (Buy or Sell with a confidence in 0..=1 and a reason);
//! MEM enhancement and position handling are the caller's. Long-only callers open on Buy
//! when flat and close on Sell, so the level-based strategies (Momentum, RSI, MFI, VWAP)
//! repeat their signal on every candle past the threshold, while the crossing strategies
//! (MACD, volatility-managed momentum) signal once per crossing.
//!
//! Parameters come from the registry's `parameters` object, see [`build`]. Defaults are the
//! seed's (docs/seed-notes.md, "(g) Native C# strategies") and the ranges are the ones the
//! registry declares for `native_*` and `volatility_managed_momentum`. Periods and
//! lookbacks are counted in candles of whatever timeframe the caller feeds.

use crate::market::candles::Candle;
use crate::market::indicators::{Macd, Mfi, Rsi, Sma, Vwap};
use mem_protocol::mem::SignalAction;
use serde_json::{Map, Value};
use std::collections::VecDeque;

/// A base signal from a native strategy (before MEM enhancement).
#[derive(Debug, Clone, PartialEq)]
pub struct StrategySignal {
    /// Buy or Sell (never Hold: no signal is `None`).
    pub action: SignalAction,
    /// 0..=1, never NaN.
    pub confidence: f64,
    /// Why, with the numbers, e.g. "RSI 24.3 below 30".
    pub reason: String,
}

/// A trading rule fed closed candles in time order.
pub trait NativeStrategy: Send {
    /// The registry-independent kind: one of [`KINDS`].
    fn kind(&self) -> &'static str;
    /// How many candles it must see before the first one that can signal: the history a
    /// caller replays before trading live.
    fn warm_up(&self) -> usize;
    /// Feeds the next closed candle (time order); answers a signal or None.
    fn on_candle(&mut self, c: &Candle) -> Option<StrategySignal>;
}

/// Every kind [`build`] knows (the protocol names them: a deployment section refers to
/// them).
pub use mem_protocol::deploy_spec::NATIVE_KINDS as KINDS;

/// Builds a strategy from its kind and the registry's `parameters` object.
///
/// A parameter is either the registry's declared form `{"value": 14, "type": "integer",
/// ..}` (only `value` is read) or a plain value `14`. A missing parameter, or a `null`
/// value, takes the seed default. Integers may be written as floats without a fraction
/// (`14.0`). An unknown parameter name, a wrong type or an out-of-range value is an error
/// naming the parameter; an unknown kind is an error listing [`KINDS`].
pub fn build(
    kind: &str,
    parameters: &Map<String, Value>,
) -> Result<Box<dyn NativeStrategy>, String> {
    let Some(&kind) = KINDS.iter().find(|k| **k == kind) else {
        return Err(format!(
            "unknown native strategy kind `{kind}`; the kinds are: {}",
            KINDS.join(", ")
        ));
    };
    let mut p = Params::new(kind, parameters);
    let strategy: Box<dyn NativeStrategy> = match kind {
        "momentum" => Box::new(Momentum::from_params(&mut p)?),
        "rsi" => Box::new(RsiStrategy::from_params(&mut p)?),
        "macd" => Box::new(MacdStrategy::from_params(&mut p)?),
        "mfi" => Box::new(MfiStrategy::from_params(&mut p)?),
        "vwap" => Box::new(VwapStrategy::from_params(&mut p)?),
        _ => Box::new(VolatilityManagedMomentum::from_params(&mut p)?),
    };
    p.finish()?;
    Ok(strategy)
}

/// The kind a strategy's name or class names.
pub use mem_protocol::deploy_spec::native_kind_of as kind_of;

// ---------------------------------------------------------------------------------------
// Parameters

/// Reads one strategy's parameters, remembering which names it asked for so that
/// [`Params::finish`] can reject the rest (a typo must not silently run the default).
struct Params<'a> {
    kind: &'static str,
    map: &'a Map<String, Value>,
    known: Vec<&'static str>,
}

impl<'a> Params<'a> {
    fn new(kind: &'static str, map: &'a Map<String, Value>) -> Self {
        Params {
            kind,
            map,
            known: Vec::new(),
        }
    }

    /// The value given for `name`, unwrapping the declared form; None when absent or null.
    fn raw(&mut self, name: &'static str) -> Result<Option<&'a Value>, String> {
        self.known.push(name);
        let value = match self.map.get(name) {
            None => return Ok(None),
            Some(Value::Object(declared)) => declared.get("value").ok_or_else(|| {
                format!("parameter `{name}`: a declared parameter needs a `value`")
            })?,
            Some(value) => value,
        };
        Ok((!value.is_null()).then_some(value))
    }

    fn float(
        &mut self,
        name: &'static str,
        default: f64,
        min: f64,
        max: f64,
    ) -> Result<f64, String> {
        let Some(value) = self.raw(name)? else {
            return Ok(default);
        };
        match value.as_f64() {
            Some(v) if (min..=max).contains(&v) => Ok(v),
            Some(v) => Err(format!(
                "parameter `{name}`: must be from {min} to {max}, got {v}"
            )),
            None => Err(format!("parameter `{name}`: must be a number, got {value}")),
        }
    }

    fn int(
        &mut self,
        name: &'static str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, String> {
        let Some(value) = self.raw(name)? else {
            return Ok(default);
        };
        let whole = value
            .as_f64()
            .filter(|v| v.fract() == 0.0)
            .ok_or_else(|| format!("parameter `{name}`: must be a whole number, got {value}"))?;
        if whole < min as f64 || whole > max as f64 {
            return Err(format!(
                "parameter `{name}`: must be from {min} to {max}, got {value}"
            ));
        }
        Ok(whole as usize)
    }

    fn bool(&mut self, name: &'static str, default: bool) -> Result<bool, String> {
        match self.raw(name)? {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!(
                "parameter `{name}`: must be true or false, got {other}"
            )),
        }
    }

    /// Every name given must have been asked for.
    fn finish(self) -> Result<(), String> {
        let unknown: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !self.known.contains(k))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(format!(
            "unknown parameter{} {} for the `{}` strategy; it takes: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            self.kind,
            self.known.join(", ")
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers

/// A signal, its confidence clamped to 0..=1; None rather than a NaN confidence.
fn signal(action: SignalAction, confidence: f64, reason: String) -> Option<StrategySignal> {
    if confidence.is_nan() {
        return None;
    }
    Some(StrategySignal {
        action,
        confidence: confidence.clamp(0.0, 1.0),
        reason,
    })
}

/// How far `value` is past `threshold`, as a fraction of the threshold, capped at 1: 0 at
/// the threshold, 1 at twice it. Both are on the same side of 0.
fn excess(value: f64, threshold: f64) -> f64 {
    ((value.abs() - threshold.abs()) / threshold.abs()).clamp(0.0, 1.0)
}

/// The oscillator confidence shared by RSI and MFI: 0.4 at the threshold, growing linearly
/// to 1.0 at the scale's end (0 for oversold, 100 for overbought).
fn oscillator_signal(
    name: &str,
    value: f64,
    oversold: f64,
    overbought: f64,
) -> Option<(SignalAction, f64, String)> {
    if value < oversold {
        let confidence = 0.4 + 0.6 * (oversold - value) / oversold;
        Some((
            SignalAction::Buy,
            confidence,
            format!("{name} {value:.1} below {oversold}"),
        ))
    } else if value > overbought {
        let confidence = 0.4 + 0.6 * (value - overbought) / (100.0 - overbought);
        Some((
            SignalAction::Sell,
            confidence,
            format!("{name} {value:.1} above {overbought}"),
        ))
    } else {
        None
    }
}

/// Population standard deviation of the simple returns between consecutive `closes`.
fn return_stdev<'c>(closes: impl Iterator<Item = &'c f64> + Clone) -> f64 {
    let returns = closes.clone().zip(closes.skip(1)).map(|(a, b)| b / a - 1.0);
    let n = returns.clone().count() as f64;
    let mean = returns.clone().sum::<f64>() / n;
    (returns.map(|r| (r - mean) * (r - mean)).sum::<f64>() / n).sqrt()
}

/// Appends `value` and keeps the last `len` values.
fn push_window(window: &mut VecDeque<f64>, value: f64, len: usize) {
    window.push_back(value);
    while window.len() > len {
        window.pop_front();
    }
}

// ---------------------------------------------------------------------------------------
// Momentum

/// Price momentum (the seed's `MomentumStrategy`).
///
/// - change % = 100·(close − close `lookback` candles ago) / that close;
/// - change ≥ `buy_threshold_pct` (seed 2.0) → Buy; change ≤ `sell_threshold_pct` (seed
///   −2.0) → Sell; at the threshold counts;
/// - no signal while the population standard deviation of the `lookback` simple returns
///   exceeds `volatility_filter` (seed 0.15, a fraction: 15% per candle), a market too
///   wild for the rule;
/// - confidence = 0.3 (the seed's base) + 0.7·min(1, (|change| − |threshold|)/|threshold|):
///   0.3 at the threshold, 1.0 at twice it; ×0.7 (the seed's) when the candle's volume is
///   below `min_volume` (seed 100 000).
///
/// `lookback` is not among the seed's settings; it defaults to 20 candles.
pub struct Momentum {
    lookback: usize,
    buy_threshold_pct: f64,
    sell_threshold_pct: f64,
    volatility_filter: f64,
    min_volume: f64,
    closes: VecDeque<f64>,
}

impl Momentum {
    fn from_params(p: &mut Params) -> Result<Self, String> {
        Ok(Momentum {
            lookback: p.int("lookback", 20, 2, 500)?,
            buy_threshold_pct: p.float("buy_threshold_pct", 2.0, 0.1, 20.0)?,
            sell_threshold_pct: p.float("sell_threshold_pct", -2.0, -20.0, -0.1)?,
            volatility_filter: p.float("volatility_filter", 0.15, 0.01, 1.0)?,
            min_volume: p.float("min_volume", 100_000.0, 0.0, 1e12)?,
            closes: VecDeque::new(),
        })
    }
}

impl NativeStrategy for Momentum {
    fn kind(&self) -> &'static str {
        "momentum"
    }

    fn warm_up(&self) -> usize {
        self.lookback
    }

    fn on_candle(&mut self, c: &Candle) -> Option<StrategySignal> {
        push_window(&mut self.closes, c.close, self.lookback + 1);
        if self.closes.len() <= self.lookback {
            return None;
        }
        let past = self.closes[0];
        // Written so that 100 → 102 is exactly 2.0 (no 1.02 − 1 rounding).
        let change = (c.close - past) * 100.0 / past;
        let (action, threshold) = if change >= self.buy_threshold_pct {
            (SignalAction::Buy, self.buy_threshold_pct)
        } else if change <= self.sell_threshold_pct {
            (SignalAction::Sell, self.sell_threshold_pct)
        } else {
            return None;
        };
        let volatility = return_stdev(self.closes.iter());
        if volatility.is_nan() || volatility > self.volatility_filter {
            return None;
        }
        let mut confidence = 0.3 + 0.7 * excess(change, threshold);
        let mut reason = format!(
            "momentum {change:+.2}% over {} candles (threshold {threshold:+}%)",
            self.lookback
        );
        if c.volume < self.min_volume {
            confidence *= 0.7;
            reason.push_str("; low volume");
        }
        signal(action, confidence, reason)
    }
}

// ---------------------------------------------------------------------------------------
// RSI

/// RSI reversal (the seed's `RSIStrategy`): Wilder's RSI over `period` (seed 14).
///
/// - RSI < `oversold` (seed 30) → Buy, confidence 0.4 + 0.6·(oversold − RSI)/oversold;
/// - RSI > `overbought` (seed 70) → Sell, confidence 0.4 + 0.6·(RSI − overbought)/(100 −
///   overbought);
/// - exactly at a threshold: no signal. Repeats on every candle past the threshold.
///
/// The seed's 0.4 base and (30 − rsi)/30 ramp, made one formula that starts at 0.4 and
/// reaches 1.0 at RSI 0 (or 100). The seed's ML averaging is MEM's job, not done here.
pub struct RsiStrategy {
    period: usize,
    oversold: f64,
    overbought: f64,
    rsi: Rsi,
}

impl RsiStrategy {
    fn from_params(p: &mut Params) -> Result<Self, String> {
        let period = p.int("period", 14, 2, 100)?;
        let oversold = p.float("oversold", 30.0, 1.0, 50.0)?;
        let overbought = p.float("overbought", 70.0, 50.0, 99.0)?;
        if oversold >= overbought {
            return Err(format!(
                "parameter `oversold` ({oversold}) must be below `overbought` ({overbought})"
            ));
        }
        Ok(RsiStrategy {
            period,
            oversold,
            overbought,
            rsi: Rsi::new(period),
        })
    }
}

impl NativeStrategy for RsiStrategy {
    fn kind(&self) -> &'static str {
        "rsi"
    }

    fn warm_up(&self) -> usize {
        self.period
    }

    fn on_candle(&mut self, c: &Candle) -> Option<StrategySignal> {
        let rsi = self.rsi.update(c.close)?;
        let (action, confidence, reason) =
            oscillator_signal("RSI", rsi, self.oversold, self.overbought)?;
        signal(action, confidence, reason)
    }
}

// ---------------------------------------------------------------------------------------
// MACD

/// MACD histogram crossover (the seed's `MACDStrategy`): MACD(`fast_period` 12,
/// `slow_period` 26, `signal_period` 9), histogram = MACD − signal.
///
/// - Buy when the histogram rises above `buy_threshold` (seed 0.0001) after having been
///   at or below 0 since the last Buy: a cross up, signalled once, even when the cross
///   takes several candles to clear the threshold;
/// - Sell on the mirror: below `sell_threshold` (seed −0.0001) after having been at or
///   above 0;
/// - the thresholds are in price units, as in the seed;
/// - confidence = 0.5 + min(0.5, 100·|hist|/close) (+0.01 per 0.01% of the price), ×0.7
///   (the seed's) when the volume is below `min_volume` (seed 100 000).
pub struct MacdStrategy {
    warm_up: usize,
    buy_threshold: f64,
    sell_threshold: f64,
    min_volume: f64,
    macd: Macd,
    /// The histogram was at or below 0 since the last Buy.
    buy_armed: bool,
    /// The histogram was at or above 0 since the last Sell.
    sell_armed: bool,
}

impl MacdStrategy {
    fn from_params(p: &mut Params) -> Result<Self, String> {
        let fast = p.int("fast_period", 12, 2, 50)?;
        let slow = p.int("slow_period", 26, 5, 100)?;
        let signal_period = p.int("signal_period", 9, 2, 50)?;
        if fast >= slow {
            return Err(format!(
                "parameter `fast_period` ({fast}) must be below `slow_period` ({slow})"
            ));
        }
        let macd = Macd::new(fast, slow, signal_period);
        Ok(MacdStrategy {
            // The first histogram value only arms; the next can cross.
            warm_up: macd.lookback() + 1,
            buy_threshold: p.float("buy_threshold", 0.0001, 0.0, 1.0)?,
            sell_threshold: p.float("sell_threshold", -0.0001, -1.0, 0.0)?,
            min_volume: p.float("min_volume", 100_000.0, 0.0, 1e12)?,
            macd,
            buy_armed: false,
            sell_armed: false,
        })
    }
}

impl NativeStrategy for MacdStrategy {
    fn kind(&self) -> &'static str {
        "macd"
    }

    fn warm_up(&self) -> usize {
        self.warm_up
    }

    fn on_candle(&mut self, c: &Candle) -> Option<StrategySignal> {
        let hist = self.macd.update(c.close)?.hist;
        if hist.is_nan() {
            return None;
        }
        let action = if self.buy_armed && hist > self.buy_threshold {
            self.buy_armed = false;
            SignalAction::Buy
        } else if self.sell_armed && hist < self.sell_threshold {
            self.sell_armed = false;
            SignalAction::Sell
        } else {
            self.buy_armed |= hist <= 0.0;
            self.sell_armed |= hist >= 0.0;
            return None;
        };
        let mut confidence = 0.5 + (100.0 * hist.abs() / c.close).min(0.5);
        let direction = if action == SignalAction::Buy {
            "above"
        } else {
            "below"
        };
        let mut reason = format!("MACD histogram {hist:.6} crossed {direction} 0");
        if c.volume < self.min_volume {
            confidence *= 0.7;
            reason.push_str("; low volume");
        }
        signal(action, confidence, reason)
    }
}

// ---------------------------------------------------------------------------------------
// MFI

/// Money flow reversal (the seed's `MFIStrategy`): MFI over `period` (seed 14).
///
/// - MFI < `oversold` (seed 20) → Buy, MFI > `overbought` (seed 80) → Sell; exactly at a
///   threshold: no signal;
/// - confidence as for RSI: 0.4 + 0.6·(oversold − MFI)/oversold, or 0.4 + 0.6·(MFI −
///   overbought)/(100 − overbought); ×0.8 (the seed's) when the volume is below
///   `min_volume` (seed 50 000).
pub struct MfiStrategy {
    period: usize,
    oversold: f64,
    overbought: f64,
    min_volume: f64,
    mfi: Mfi,
}

impl MfiStrategy {
    fn from_params(p: &mut Params) -> Result<Self, String> {
        let period = p.int("period", 14, 2, 100)?;
        let oversold = p.float("oversold", 20.0, 1.0, 50.0)?;
        let overbought = p.float("overbought", 80.0, 50.0, 99.0)?;
        if oversold >= overbought {
            return Err(format!(
                "parameter `oversold` ({oversold}) must be below `overbought` ({overbought})"
            ));
        }
        Ok(MfiStrategy {
            period,
            oversold,
            overbought,
            min_volume: p.float("min_volume", 50_000.0, 0.0, 1e12)?,
            mfi: Mfi::new(period),
        })
    }
}

impl NativeStrategy for MfiStrategy {
    fn kind(&self) -> &'static str {
        "mfi"
    }

    fn warm_up(&self) -> usize {
        self.period
    }

    fn on_candle(&mut self, c: &Candle) -> Option<StrategySignal> {
        let mfi = self.mfi.update(c.high, c.low, c.close, c.volume)?;
        let (action, mut confidence, mut reason) =
            oscillator_signal("MFI", mfi, self.oversold, self.overbought)?;
        if c.volume < self.min_volume {
            confidence *= 0.8;
            reason.push_str("; low volume");
        }
        signal(action, confidence, reason)
    }
}

// ---------------------------------------------------------------------------------------
// VWAP

/// Candles in the volume average that confirms a VWAP signal.
const VOLUME_SMA_PERIOD: usize = 20;

/// VWAP reversion (the seed's `VWAPStrategy`): rolling VWAP over `period` (seed 20).
///
/// - deviation % = 100·(close − VWAP)/VWAP;
/// - deviation ≤ `buy_deviation_pct` (seed −2.0) → Buy, ≥ `sell_deviation_pct` (seed 2.0)
///   → Sell; at the threshold counts;
/// - confidence = 0.4 + 0.6·min(1, (|deviation| − |threshold|)/|threshold|): 0.4 at the
///   threshold, 1.0 at twice it;
/// - with `use_volume_confirmation` (seed true), ×0.8 (the seed's) when the volume is
///   below its 20-candle SMA (this candle included); no reduction until 20 candles exist.
pub struct VwapStrategy {
    period: usize,
    buy_deviation_pct: f64,
    sell_deviation_pct: f64,
    use_volume_confirmation: bool,
    vwap: Vwap,
    volume_sma: Sma,
}

impl VwapStrategy {
    fn from_params(p: &mut Params) -> Result<Self, String> {
        let period = p.int("period", 20, 2, 500)?;
        Ok(VwapStrategy {
            period,
            buy_deviation_pct: p.float("buy_deviation_pct", -2.0, -20.0, -0.1)?,
            sell_deviation_pct: p.float("sell_deviation_pct", 2.0, 0.1, 20.0)?,
            use_volume_confirmation: p.bool("use_volume_confirmation", true)?,
            vwap: Vwap::new(period),
            volume_sma: Sma::new(VOLUME_SMA_PERIOD),
        })
    }
}

impl NativeStrategy for VwapStrategy {
    fn kind(&self) -> &'static str {
        "vwap"
    }

    fn warm_up(&self) -> usize {
        self.period - 1
    }

    fn on_candle(&mut self, c: &Candle) -> Option<StrategySignal> {
        let volume_avg = self.volume_sma.update(c.volume);
        let vwap = self.vwap.update(c.high, c.low, c.close, c.volume)?;
        let deviation = (c.close - vwap) * 100.0 / vwap;
        let (action, threshold) = if deviation <= self.buy_deviation_pct {
            (SignalAction::Buy, self.buy_deviation_pct)
        } else if deviation >= self.sell_deviation_pct {
            (SignalAction::Sell, self.sell_deviation_pct)
        } else {
            return None;
        };
        let mut confidence = 0.4 + 0.6 * excess(deviation, threshold);
        let mut reason =
            format!("close {deviation:+.2}% from VWAP {vwap:.6} (threshold {threshold:+}%)");
        if self.use_volume_confirmation && volume_avg.is_some_and(|avg| c.volume < avg) {
            confidence *= 0.8;
            reason.push_str("; volume below its average");
        }
        signal(action, confidence, reason)
    }
}

// ---------------------------------------------------------------------------------------
// Volatility-managed momentum

/// Volatility-managed momentum (Barroso & Santa-Clara 2015, "Momentum Has Its Moments"),
/// on one instrument's own time series.
///
/// - momentum = close[t − `skip_period`] / close[t − `momentum_lookback`] − 1 (registry
///   252 and 21 candles: the paper's 12-1 month momentum on daily candles);
/// - Buy when the momentum turns positive (previous ≤ 0, now > 0), Sell when it turns
///   negative (previous ≥ 0, now < 0); the first value only sets the state;
/// - realised volatility σ = population standard deviation of the last
///   `volatility_lookback` (126) simple returns, annualised as σ·√`momentum_lookback`:
///   the lookback is taken to be one "year", as 252 daily candles are in the paper;
/// - scale = `target_volatility` (0.12) / annualised σ, the paper's exposure weight;
///   confidence = min(1, 0.5·scale): 0.5 when the market runs at the target volatility,
///   1.0 at half of it or calmer, lower as it gets wilder (the crash protection). A flat
///   market (σ = 0) has full confidence.
pub struct VolatilityManagedMomentum {
    momentum_lookback: usize,
    skip_period: usize,
    volatility_lookback: usize,
    target_volatility: f64,
    closes: VecDeque<f64>,
    previous: Option<f64>,
}

impl VolatilityManagedMomentum {
    fn from_params(p: &mut Params) -> Result<Self, String> {
        let momentum_lookback = p.int("momentum_lookback", 252, 21, 504)?;
        let skip_period = p.int("skip_period", 21, 0, 63)?;
        let volatility_lookback = p.int("volatility_lookback", 126, 21, 252)?;
        let target_volatility = p.float("target_volatility", 0.12, 0.05, 0.3)?;
        if skip_period >= momentum_lookback {
            return Err(format!(
                "parameter `skip_period` ({skip_period}) must be below `momentum_lookback` ({momentum_lookback})"
            ));
        }
        Ok(VolatilityManagedMomentum {
            momentum_lookback,
            skip_period,
            volatility_lookback,
            target_volatility,
            closes: VecDeque::new(),
            previous: None,
        })
    }

    /// Closes kept: enough for both lookbacks.
    fn window(&self) -> usize {
        self.momentum_lookback.max(self.volatility_lookback) + 1
    }
}

impl NativeStrategy for VolatilityManagedMomentum {
    fn kind(&self) -> &'static str {
        "volatility_managed_momentum"
    }

    fn warm_up(&self) -> usize {
        self.window()
    }

    fn on_candle(&mut self, c: &Candle) -> Option<StrategySignal> {
        let window = self.window();
        push_window(&mut self.closes, c.close, window);
        if self.closes.len() < window {
            return None;
        }
        let last = window - 1;
        let start = self.closes[last - self.momentum_lookback];
        let end = self.closes[last - self.skip_period];
        let momentum = end / start - 1.0;
        if momentum.is_nan() {
            return None;
        }
        let previous = self.previous.replace(momentum)?;
        let action = if previous <= 0.0 && momentum > 0.0 {
            SignalAction::Buy
        } else if previous >= 0.0 && momentum < 0.0 {
            SignalAction::Sell
        } else {
            return None;
        };
        let sigma = return_stdev(self.closes.range(window - 1 - self.volatility_lookback..));
        let annualised = sigma * (self.momentum_lookback as f64).sqrt();
        let confidence = if annualised > 0.0 {
            (0.5 * self.target_volatility / annualised).min(1.0)
        } else {
            1.0
        };
        let turned = if action == SignalAction::Buy {
            "positive"
        } else {
            "negative"
        };
        let reason = format!(
            "{}-{} momentum turned {turned} ({:+.2}%); volatility {:.1}% vs target {:.1}%",
            self.momentum_lookback,
            self.skip_period,
            momentum * 100.0,
            annualised * 100.0,
            self.target_volatility * 100.0
        );
        signal(action, confidence, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    /// A candle at `close` with the given range and volume.
    fn bar(i: usize, high: f64, low: f64, close: f64, volume: f64) -> Candle {
        Candle {
            ts_ms: i as i64 * 60_000,
            open: close,
            high,
            low,
            close,
            volume,
        }
    }

    /// A candle whose open, high, low and close are all `close`.
    fn flat(i: usize, close: f64, volume: f64) -> Candle {
        bar(i, close, close, close, volume)
    }

    /// Feeds the closes with one volume; the signal on the last candle.
    fn last_signal(
        s: &mut dyn NativeStrategy,
        closes: &[f64],
        volume: f64,
    ) -> Option<StrategySignal> {
        let mut last = None;
        for (i, close) in closes.iter().enumerate() {
            last = s.on_candle(&flat(i, *close, volume));
        }
        last
    }

    fn strategy(kind: &str, p: Value) -> Box<dyn NativeStrategy> {
        build(kind, &params(p)).unwrap_or_else(|e| panic!("{kind}: {e}"))
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-9,
            "{actual} is not {expected}"
        );
    }

    // --- momentum -----------------------------------------------------------------------

    #[test]
    fn momentum_buys_at_the_threshold_and_grows_with_it() {
        let p = json!({"lookback": 2});
        let mut s = strategy("momentum", p.clone());
        let sig = last_signal(s.as_mut(), &[100.0, 100.0, 102.0], 1e6).expect("+2% buys");
        assert_eq!(sig.action, SignalAction::Buy);
        assert_close(sig.confidence, 0.3);
        let mut s = strategy("momentum", p.clone());
        assert_eq!(last_signal(s.as_mut(), &[100.0, 100.0, 101.9], 1e6), None);
        // +3% is half a threshold past it: 0.3 + 0.7·0.5.
        let mut s = strategy("momentum", p.clone());
        let sig = last_signal(s.as_mut(), &[100.0, 100.0, 103.0], 1e6).unwrap();
        assert_close(sig.confidence, 0.65);
        // Capped at twice the threshold.
        let mut s = strategy("momentum", p);
        let sig = last_signal(s.as_mut(), &[100.0, 100.0, 110.0], 1e6).unwrap();
        assert_close(sig.confidence, 1.0);
    }

    #[test]
    fn momentum_sells_at_the_threshold() {
        let p = json!({"lookback": 2});
        let mut s = strategy("momentum", p.clone());
        let sig = last_signal(s.as_mut(), &[100.0, 100.0, 98.0], 1e6).expect("-2% sells");
        assert_eq!(sig.action, SignalAction::Sell);
        assert_close(sig.confidence, 0.3);
        let mut s = strategy("momentum", p);
        assert_eq!(last_signal(s.as_mut(), &[100.0, 100.0, 98.1], 1e6), None);
    }

    #[test]
    fn momentum_low_volume_and_volatility_filter() {
        let mut s = strategy("momentum", json!({"lookback": 2, "min_volume": 1000}));
        let sig = last_signal(s.as_mut(), &[100.0, 100.0, 103.0], 999.0).unwrap();
        assert_close(sig.confidence, 0.65 * 0.7);
        let mut s = strategy("momentum", json!({"lookback": 2, "min_volume": 1000}));
        let sig = last_signal(s.as_mut(), &[100.0, 100.0, 103.0], 1000.0).unwrap();
        assert_close(sig.confidence, 0.65);
        // Returns +50% and -32%: σ = 0.41 > 0.15, no signal despite +2%.
        let mut s = strategy("momentum", json!({"lookback": 2}));
        assert_eq!(last_signal(s.as_mut(), &[100.0, 150.0, 102.0], 1e6), None);
        // The same with a filter above 0.41 signals.
        let mut s = strategy("momentum", json!({"lookback": 2, "volatility_filter": 0.5}));
        assert!(last_signal(s.as_mut(), &[100.0, 150.0, 102.0], 1e6).is_some());
    }

    #[test]
    fn momentum_waits_for_its_lookback() {
        let mut s = strategy("momentum", json!({"lookback": 3}));
        assert_eq!(s.warm_up(), 3);
        assert_eq!(last_signal(s.as_mut(), &[100.0, 100.0, 110.0], 1e6), None);
        assert!(s.on_candle(&flat(3, 110.0, 1e6)).is_some());
    }

    // --- RSI ----------------------------------------------------------------------------

    #[test]
    fn rsi_buys_below_oversold_only() {
        // Changes +3, -7: avg gain 1.5, avg loss 3.5, RSI = 100·1.5/5 = 30 exactly.
        let mut rsi = Rsi::new(2);
        let values: Vec<_> = [100.0, 103.0, 96.0]
            .iter()
            .filter_map(|c| rsi.update(*c))
            .collect();
        assert_eq!(values, [30.0]);
        let p = json!({"period": 2});
        let mut s = strategy("rsi", p.clone());
        assert_eq!(last_signal(s.as_mut(), &[100.0, 103.0, 96.0], 1.0), None);
        // -7.1: RSI = 100·1.5/5.05 = 29.7030 → 0.4 + 0.6·0.2970/30.
        let mut s = strategy("rsi", p);
        let sig = last_signal(s.as_mut(), &[100.0, 103.0, 95.9], 1.0).expect("buys");
        assert_eq!(sig.action, SignalAction::Buy);
        let rsi = 100.0 * 1.5 / 5.05;
        assert_close(sig.confidence, 0.4 + 0.6 * (30.0 - rsi) / 30.0);
        assert!(sig.reason.contains("RSI 29.7 below 30"), "{}", sig.reason);
    }

    #[test]
    fn rsi_sells_above_overbought_only() {
        // Changes -3, +7: RSI = 70 exactly.
        let p = json!({"period": {"value": 2.0, "type": "integer"}});
        let mut s = strategy("rsi", p.clone());
        assert_eq!(last_signal(s.as_mut(), &[100.0, 97.0, 104.0], 1.0), None);
        let mut s = strategy("rsi", p);
        let sig = last_signal(s.as_mut(), &[100.0, 97.0, 104.1], 1.0).expect("sells");
        assert_eq!(sig.action, SignalAction::Sell);
        let rsi = 100.0 * 3.55 / 5.05;
        assert_close(sig.confidence, 0.4 + 0.6 * (rsi - 70.0) / 30.0);
        // All the way to 100 (only gains) is full confidence.
        let mut s = strategy("rsi", json!({"period": 2}));
        let sig = last_signal(s.as_mut(), &[100.0, 101.0, 102.0], 1.0).unwrap();
        assert_close(sig.confidence, 1.0);
    }

    // --- MACD ---------------------------------------------------------------------------

    const MACD_PARAMS: &str =
        r#"{"fast_period": 2, "slow_period": 5, "signal_period": 2, "min_volume": 1000}"#;

    /// Flat at 100 long enough for the histogram to be exactly 0, then `last`.
    fn macd_series(last: f64) -> Vec<f64> {
        let mut closes = vec![100.0; 8];
        closes.push(last);
        closes
    }

    /// The histogram the indicator gives on the series' last candle.
    fn macd_hist(closes: &[f64]) -> f64 {
        let mut macd = Macd::new(2, 5, 2);
        closes
            .iter()
            .filter_map(|c| macd.update(*c))
            .last()
            .unwrap()
            .hist
    }

    fn macd_with(extra: Value) -> Box<dyn NativeStrategy> {
        let mut p: Map<String, Value> = serde_json::from_str(MACD_PARAMS).unwrap();
        p.extend(params(extra));
        build("macd", &p).unwrap()
    }

    #[test]
    fn macd_buys_when_the_histogram_crosses_past_the_threshold() {
        let closes = macd_series(101.0);
        let hist = macd_hist(&closes);
        assert!(hist > 0.1 && hist < 0.2, "{hist}");
        let mut s = macd_with(json!({"buy_threshold": hist}));
        assert_eq!(last_signal(s.as_mut(), &closes, 1e6), None);
        let mut s = macd_with(json!({"buy_threshold": hist - 1e-9}));
        let sig = last_signal(s.as_mut(), &closes, 1e6).expect("crosses");
        assert_eq!(sig.action, SignalAction::Buy);
        assert_close(sig.confidence, 0.5 + 100.0 * hist / 101.0);
        // Still above: no second Buy.
        assert_eq!(s.on_candle(&flat(9, 102.0, 1e6)), None);
    }

    #[test]
    fn macd_sells_on_the_mirror_cross_and_cuts_low_volume() {
        let closes = macd_series(99.0);
        let hist = macd_hist(&closes);
        assert!(hist < -0.1, "{hist}");
        let mut s = macd_with(json!({"sell_threshold": hist}));
        assert_eq!(last_signal(s.as_mut(), &closes, 1e6), None);
        let mut s = macd_with(json!({"sell_threshold": hist + 1e-9}));
        let sig = last_signal(s.as_mut(), &closes, 999.0).expect("crosses down");
        assert_eq!(sig.action, SignalAction::Sell);
        assert_close(sig.confidence, (0.5 + 100.0 * -hist / 99.0) * 0.7);
    }

    #[test]
    fn macd_does_not_buy_without_a_cross() {
        // The rise starts inside the warm-up: the histogram is positive from its first
        // value, so nothing was armed and no Buy comes.
        let closes = [100.0, 100.0, 100.0, 100.0, 100.0, 110.0, 120.0, 130.0];
        let mut macd = Macd::new(2, 5, 2);
        let hists: Vec<f64> = closes
            .iter()
            .filter_map(|c| macd.update(*c))
            .map(|v| v.hist)
            .collect();
        assert!(
            !hists.is_empty() && hists.iter().all(|h| *h > 0.0001),
            "{hists:?}"
        );
        let mut s = macd_with(json!({}));
        for (i, c) in closes.iter().enumerate() {
            assert_eq!(s.on_candle(&flat(i, *c, 1e6)), None, "candle {i}");
        }
    }

    // --- MFI ----------------------------------------------------------------------------

    #[test]
    fn mfi_buys_below_oversold_only() {
        // Typical prices 100, 101 (flow +10 100), 100 (flow −100·v): MFI 20 at v = 404.
        let p = json!({"period": 2, "min_volume": 0});
        let feed = |s: &mut dyn NativeStrategy, v: f64| {
            s.on_candle(&flat(0, 100.0, 1.0));
            s.on_candle(&flat(1, 101.0, 100.0));
            s.on_candle(&flat(2, 100.0, v))
        };
        let mut mfi = Mfi::new(2);
        mfi.update(100.0, 100.0, 100.0, 1.0);
        mfi.update(101.0, 101.0, 101.0, 100.0);
        assert_eq!(mfi.update(100.0, 100.0, 100.0, 404.0), Some(20.0));
        assert_eq!(feed(strategy("mfi", p.clone()).as_mut(), 404.0), None);
        let sig = feed(strategy("mfi", p).as_mut(), 405.0).expect("buys");
        assert_eq!(sig.action, SignalAction::Buy);
        let mfi = 100.0 * 10_100.0 / 50_600.0;
        assert_close(sig.confidence, 0.4 + 0.6 * (20.0 - mfi) / 20.0);
        // Below min_volume: ×0.8.
        let low = feed(
            strategy("mfi", json!({"period": 2, "min_volume": 406})).as_mut(),
            405.0,
        );
        assert_close(low.unwrap().confidence, sig.confidence * 0.8);
    }

    #[test]
    fn mfi_sells_above_overbought_only() {
        // Typical prices 100, 99 (flow −9 900), 100 (flow +100·v): MFI 80 at v = 396.
        let p = json!({"period": 2, "min_volume": 0});
        let feed = |s: &mut dyn NativeStrategy, v: f64| {
            s.on_candle(&flat(0, 100.0, 1.0));
            s.on_candle(&flat(1, 99.0, 100.0));
            s.on_candle(&flat(2, 100.0, v))
        };
        assert_eq!(feed(strategy("mfi", p.clone()).as_mut(), 396.0), None);
        let sig = feed(strategy("mfi", p).as_mut(), 397.0).expect("sells");
        assert_eq!(sig.action, SignalAction::Sell);
        let mfi = 100.0 * 39_700.0 / 49_600.0;
        assert_close(sig.confidence, 0.4 + 0.6 * (mfi - 80.0) / 20.0);
    }

    // --- VWAP ---------------------------------------------------------------------------

    /// A flat candle at 100, then one whose typical price is also 100 (so VWAP is exactly
    /// 100 for any volumes) closing at `close`.
    fn vwap_pair(s: &mut dyn NativeStrategy, close: f64, other: f64) -> Option<StrategySignal> {
        s.on_candle(&flat(0, 100.0, 10.0));
        let (high, low) = if close < 100.0 {
            (other, close)
        } else {
            (close, other)
        };
        s.on_candle(&bar(1, high, low, close, 10.0))
    }

    #[test]
    fn vwap_buys_at_the_deviation_threshold() {
        let p = json!({"period": 2});
        // close 98, high 104, low 98: tp 100, deviation exactly −2%.
        let sig = vwap_pair(strategy("vwap", p.clone()).as_mut(), 98.0, 104.0).expect("buys");
        assert_eq!(sig.action, SignalAction::Buy);
        assert_close(sig.confidence, 0.4);
        // −1.99%: none.
        assert_eq!(
            vwap_pair(strategy("vwap", p.clone()).as_mut(), 98.01, 103.98),
            None
        );
        // −3%: half a threshold past, 0.4 + 0.6·0.5.
        let sig = vwap_pair(strategy("vwap", p).as_mut(), 97.0, 106.0).unwrap();
        assert_close(sig.confidence, 0.7);
    }

    #[test]
    fn vwap_sells_at_the_deviation_threshold() {
        let p = json!({"period": 2});
        let sig = vwap_pair(strategy("vwap", p.clone()).as_mut(), 102.0, 96.0).expect("sells");
        assert_eq!(sig.action, SignalAction::Sell);
        assert_close(sig.confidence, 0.4);
        assert_eq!(vwap_pair(strategy("vwap", p).as_mut(), 101.99, 96.02), None);
    }

    #[test]
    fn vwap_volume_confirmation() {
        // 19 flat candles at volume 1000, then a −3% close at `volume`.
        let run = |confirm: bool, volume: f64| {
            let mut s = strategy(
                "vwap",
                json!({"period": 2, "use_volume_confirmation": confirm}),
            );
            for i in 0..19 {
                s.on_candle(&flat(i, 100.0, 1000.0));
            }
            s.on_candle(&bar(19, 106.0, 97.0, 97.0, volume)).unwrap()
        };
        // VWAP over (100, 1000) and (tp 100, v): 100 whatever v.
        assert_close(run(true, 1000.0).confidence, 0.7);
        assert_close(run(true, 10.0).confidence, 0.7 * 0.8);
        assert_close(run(false, 10.0).confidence, 0.7);
    }

    // --- volatility-managed momentum ----------------------------------------------------

    fn vmm() -> Box<dyn NativeStrategy> {
        strategy(
            "volatility_managed_momentum",
            json!({"momentum_lookback": 21, "skip_period": 0, "volatility_lookback": 21}),
        )
    }

    #[test]
    fn vmm_buys_when_momentum_turns_positive() {
        let mut s = vmm();
        assert_eq!(s.warm_up(), 22);
        // The first momentum (0) only sets the state; the next 0 is no change.
        assert_eq!(last_signal(s.as_mut(), &[100.0; 23], 1.0), None);
        let sig = s.on_candle(&flat(23, 130.0, 1.0)).expect("turns positive");
        assert_eq!(sig.action, SignalAction::Buy);
        // One +30% return among 21: σ = 0.3·√20/21, annualised ·√21; 0.5·0.12/that.
        let annualised = 0.3 * 20f64.sqrt() / 21.0 * 21f64.sqrt();
        assert_close(sig.confidence, 0.5 * 0.12 / annualised);
        assert!(
            sig.confidence > 0.2 && sig.confidence < 0.21,
            "{}",
            sig.confidence
        );
        // Still positive: no repeat.
        assert_eq!(s.on_candle(&flat(24, 131.0, 1.0)), None);
    }

    #[test]
    fn vmm_sells_when_momentum_turns_negative_not_at_zero() {
        let mut s = vmm();
        let mut closes = vec![100.0; 22];
        closes.push(101.0); // momentum +1%: the Buy
        assert_eq!(
            last_signal(s.as_mut(), &closes, 1.0).unwrap().action,
            SignalAction::Buy
        );
        // Flat at 101 until the window starts at 101: momentum falls to exactly 0, no Sell.
        for i in 23..44 {
            assert_eq!(s.on_candle(&flat(i, 101.0, 1.0)), None, "candle {i}");
        }
        let sig = s.on_candle(&flat(44, 100.9, 1.0)).expect("turns negative");
        assert_eq!(sig.action, SignalAction::Sell);
    }

    #[test]
    fn vmm_skips_the_latest_candles() {
        let mut s = strategy(
            "volatility_managed_momentum",
            json!({"momentum_lookback": 21, "skip_period": 2, "volatility_lookback": 21}),
        );
        let closes = vec![100.0; 22];
        assert_eq!(last_signal(s.as_mut(), &closes, 1.0), None);
        // The rise is among the skipped candles: the momentum is still 0.
        assert_eq!(s.on_candle(&flat(22, 105.0, 1.0)), None);
        assert_eq!(s.on_candle(&flat(23, 105.0, 1.0)), None);
        // Two candles later it is t − 2: momentum +5%.
        let sig = s.on_candle(&flat(24, 105.0, 1.0)).expect("now it counts");
        assert_eq!(sig.action, SignalAction::Buy);
    }

    // --- parameters, kinds --------------------------------------------------------------

    #[test]
    fn defaults_build_every_kind() {
        for kind in KINDS {
            let s = build(kind, &Map::new()).unwrap();
            assert_eq!(s.kind(), *kind);
        }
    }

    #[test]
    fn the_registry_parameters_are_accepted() {
        let files = [
            (
                "momentum",
                include_str!(
                    "../../../data/strategy_registry/metadata/0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d61.json"
                ),
            ),
            (
                "rsi",
                include_str!(
                    "../../../data/strategy_registry/metadata/0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d62.json"
                ),
            ),
            (
                "macd",
                include_str!(
                    "../../../data/strategy_registry/metadata/0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d63.json"
                ),
            ),
            (
                "mfi",
                include_str!(
                    "../../../data/strategy_registry/metadata/0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d64.json"
                ),
            ),
            (
                "vwap",
                include_str!(
                    "../../../data/strategy_registry/metadata/0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d65.json"
                ),
            ),
            (
                "volatility_managed_momentum",
                include_str!(
                    "../../../data/strategy_registry/metadata/4fdcbb3a-abea-4662-badd-a6f6886825b0.json"
                ),
            ),
        ];
        for (kind, text) in files {
            let doc: Value = serde_json::from_str(text).unwrap();
            let s = &doc["strategy"];
            let class = s["implementation"]["class_name"].as_str();
            assert_eq!(kind_of(s["name"].as_str().unwrap(), class), Some(kind));
            let p = s["parameters"].as_object().unwrap();
            build(kind, p).unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
    }

    fn error(kind: &str, p: Value) -> String {
        match build(kind, &params(p)) {
            Ok(_) => panic!("{kind} built"),
            Err(e) => e,
        }
    }

    #[test]
    fn parameter_errors_name_the_parameter() {
        let e = error("rsi", json!({"period": 1}));
        assert!(e.contains("`period`") && e.contains("from 2 to 100"), "{e}");
        let e = error("rsi", json!({"period": 14.5}));
        assert!(e.contains("`period`") && e.contains("whole number"), "{e}");
        let e = error("rsi", json!({"period": "14"}));
        assert!(e.contains("`period`"), "{e}");
        let e = error("rsi", json!({"oversold": {"value": 60, "type": "float"}}));
        assert!(e.contains("`oversold`"), "{e}");
        let e = error("rsi", json!({"oversold": {"type": "float"}}));
        assert!(e.contains("`oversold`") && e.contains("`value`"), "{e}");
        let e = error("rsi", json!({"periodd": 14}));
        assert!(
            e.contains("`periodd`") && e.contains("period, oversold, overbought"),
            "{e}"
        );
        let e = error("momentum", json!({"buy_threshold_pct": 25.0}));
        assert!(e.contains("`buy_threshold_pct`"), "{e}");
        let e = error("macd", json!({"fast_period": 30, "slow_period": 20}));
        assert!(
            e.contains("`fast_period`") && e.contains("`slow_period`"),
            "{e}"
        );
        let e = error("vwap", json!({"use_volume_confirmation": 1}));
        assert!(e.contains("`use_volume_confirmation`"), "{e}");
        let e = error(
            "volatility_managed_momentum",
            json!({"skip_period": 30, "momentum_lookback": 21}),
        );
        assert!(e.contains("`skip_period`"), "{e}");
        let e = error("momentum", json!({"lookback": -3}));
        assert!(e.contains("`lookback`"), "{e}");
        // Integers as floats without a fraction, and nulls as defaults, are fine.
        build("rsi", &params(json!({"period": 14.0, "oversold": null}))).unwrap();
    }

    #[test]
    fn unknown_kind_lists_the_kinds() {
        let e = error("bollinger", json!({}));
        assert!(e.contains("`bollinger`"), "{e}");
        for kind in KINDS {
            assert!(e.contains(kind), "{e}");
        }
    }

    #[test]
    fn kind_of_maps_names_and_classes() {
        assert_eq!(kind_of("native_rsi", None), Some("rsi"));
        assert_eq!(kind_of("anything", Some("RSIStrategy")), Some("rsi"));
        assert_eq!(
            kind_of("native_momentum", Some("MomentumStrategy")),
            Some("momentum")
        );
        assert_eq!(kind_of("x", Some("MACDStrategy")), Some("macd"));
        assert_eq!(kind_of("x", Some("MFIStrategy")), Some("mfi"));
        assert_eq!(kind_of("Native_VWAP", None), Some("vwap"));
        assert_eq!(
            kind_of("volatility_managed_momentum", None),
            Some("volatility_managed_momentum")
        );
        assert_eq!(
            kind_of("vmm_copy", Some("VolatilityManagedMomentum")),
            Some("volatility_managed_momentum")
        );
        assert_eq!(
            kind_of("freqtrade_conservative_rsi", Some("RSI_Conservative")),
            None
        );
        assert_eq!(
            kind_of("currency_carry_trade", Some("CurrencyCarryTrade")),
            None
        );
        assert_eq!(kind_of("native_bollinger", None), None);
    }

    #[test]
    fn confidence_is_never_nan() {
        // Zero volume everywhere, flat prices, a spike: every kind, every candle.
        for kind in KINDS {
            let mut s = strategy(
                kind,
                match *kind {
                    "volatility_managed_momentum" => {
                        json!({"momentum_lookback": 21, "volatility_lookback": 21, "skip_period": 0})
                    }
                    "macd" => json!({"fast_period": 2, "slow_period": 5, "signal_period": 2}),
                    "momentum" => json!({"lookback": 2}),
                    _ => json!({"period": 2}),
                },
            );
            for i in 0..80 {
                let close = if i % 17 == 0 {
                    150.0
                } else {
                    100.0 - (i % 5) as f64
                };
                if let Some(sig) = s.on_candle(&flat(i, close, 0.0)) {
                    assert!((0.0..=1.0).contains(&sig.confidence), "{kind}: {sig:?}");
                    assert_ne!(sig.action, SignalAction::Hold);
                }
            }
        }
    }
}
