//! Market conditions: trend and volatility of a reference pair, with the values that
//! decided each label, so a person can check them.
//!
//! On the pair's candles (oldest first), at the last candle:
//! - **trend**: ADX(14) measures trend strength, SMA(20) against SMA(50) and the slope
//!   of SMA(20) over the last [`SLOPE_CANDLES`] candles give its direction.
//!   `ADX < 20`: **ranging** (no trend to speak of). `ADX >= 20` with close > SMA(50),
//!   SMA(20) > SMA(50) and a rising SMA(20): **bullish**; the mirror image: **bearish**;
//!   a strong but mixed picture: **neutral**.
//! - **volatility**: ATR(14) as a share of the close, ranked against its own values over
//!   the last [`HISTORY`] candles: below the 33rd percentile **low**, above the 67th
//!   **high**, else **medium**.
//! - the indicator snapshot: RSI(14), MACD(12/26/9) line, signal and histogram, Bollinger
//!   position, ADX, ATR %, SMA(20), SMA(50), close.

use super::candles::Candle;
use super::indicators::{Adx, Atr, Bbands, Macd, Rsi, Sma};
use mem_protocol::numbers::significant;
use mem_protocol::recommend::{Trend, Volatility};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// ADX at or above this is a trend.
pub const ADX_TREND: f64 = 20.0;
/// Candles over which the slope of SMA(20) is taken.
pub const SLOPE_CANDLES: usize = 5;
/// Candles of ATR % history the current value is ranked against.
pub const HISTORY: usize = 500;
/// Candles needed before conditions can be computed (SMA 50 plus the slope, and some
/// ATR history).
pub const MIN_CANDLES: usize = 100;

/// What was computed, with the reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    pub trend: Trend,
    pub volatility: Volatility,
    /// The rule and values behind the trend label.
    pub trend_reason: String,
    /// The rule and values behind the volatility label.
    pub volatility_reason: String,
    /// The indicator snapshot at the last candle.
    pub indicators: BTreeMap<String, f64>,
    pub candle_ts_ms: i64,
    pub candles: usize,
}

/// Conditions at the last candle; `None` with fewer than [`MIN_CANDLES`].
pub fn compute(candles: &[Candle]) -> Option<Conditions> {
    if candles.len() < MIN_CANDLES {
        return None;
    }
    let (mut sma20, mut sma50) = (Sma::new(20), Sma::new(50));
    let (mut rsi, mut macd, mut bb) = (
        Rsi::new(14),
        Macd::new(12, 26, 9),
        Bbands::new(20, 2.0, 2.0),
    );
    let (mut adx, mut atr) = (Adx::new(14), Atr::new(14));
    let mut sma20_history: Vec<f64> = Vec::with_capacity(SLOPE_CANDLES + 1);
    let mut atr_pct: Vec<f64> = Vec::with_capacity(HISTORY);
    let (mut s20, mut s50, mut r, mut m, mut b, mut a) = (None, None, None, None, None, None);
    for c in candles {
        s20 = sma20.update(c.close);
        s50 = sma50.update(c.close);
        r = rsi.update(c.close);
        m = macd.update(c.close);
        b = bb.update(c.close);
        a = adx.update(c.high, c.low, c.close);
        let t = atr.update(c.high, c.low, c.close);
        if let Some(v) = s20 {
            if sma20_history.len() > SLOPE_CANDLES {
                sma20_history.remove(0);
            }
            sma20_history.push(v);
        }
        if let Some(v) = t {
            if atr_pct.len() == HISTORY {
                atr_pct.remove(0);
            }
            atr_pct.push(v / c.close);
        }
    }
    let last = candles[candles.len() - 1];
    let (s20, s50, r, m, b, a) = (s20?, s50?, r?, m?, b?, a?);
    let atr_now = *atr_pct.last()?;
    let slope = (s20 / sma20_history.first()? - 1.0) * 100.0; // % over SLOPE_CANDLES

    let up = last.close > s50 && s20 > s50 && slope > 0.0;
    let down = last.close < s50 && s20 < s50 && slope < 0.0;
    let (trend, why) = if a < ADX_TREND {
        (
            Trend::Ranging,
            format!("ADX {a:.1} < {ADX_TREND}: no trend"),
        )
    } else if up {
        (
            Trend::Bullish,
            format!(
                "ADX {a:.1} >= {ADX_TREND}; close {} > SMA50 {}; SMA20 {} > SMA50; SMA20 rising {slope:+.3}% over {SLOPE_CANDLES} candles",
                significant(last.close),
                significant(s50),
                significant(s20)
            ),
        )
    } else if down {
        (
            Trend::Bearish,
            format!(
                "ADX {a:.1} >= {ADX_TREND}; close {} < SMA50 {}; SMA20 {} < SMA50; SMA20 falling {slope:+.3}% over {SLOPE_CANDLES} candles",
                significant(last.close),
                significant(s50),
                significant(s20)
            ),
        )
    } else {
        (
            Trend::Neutral,
            format!(
                "ADX {a:.1} >= {ADX_TREND} but mixed: close vs SMA50 {:+.3}%, SMA20 vs SMA50 {:+.3}%, SMA20 slope {slope:+.3}%",
                (last.close / s50 - 1.0) * 100.0,
                (s20 / s50 - 1.0) * 100.0
            ),
        )
    };

    let below = atr_pct.iter().filter(|&&v| v < atr_now).count();
    let rank = below as f64 / atr_pct.len() as f64 * 100.0;
    let volatility = if rank < 33.0 {
        Volatility::Low
    } else if rank > 67.0 {
        Volatility::High
    } else {
        Volatility::Medium
    };
    let volatility_reason = format!(
        "ATR(14) is {:.3}% of the close, above {rank:.0}% of its last {} values ({})",
        atr_now * 100.0,
        atr_pct.len(),
        match volatility {
            Volatility::Low => "low: under the 33rd percentile",
            Volatility::Medium => "medium: between the 33rd and 67th percentiles",
            Volatility::High => "high: over the 67th percentile",
        }
    );
    let width = b.upper - b.lower;
    let indicators = BTreeMap::from([
        ("close".to_string(), last.close),
        ("sma20".into(), s20),
        ("sma50".into(), s50),
        ("sma20SlopePct".into(), slope),
        ("rsi".into(), r),
        ("macd".into(), m.macd),
        ("macdSignal".into(), m.signal),
        ("macdHist".into(), m.hist),
        (
            "bbPosition".into(),
            if width > 0.0 {
                (last.close - b.lower) / width
            } else {
                0.5
            },
        ),
        ("adx".into(), a),
        ("atrPct".into(), atr_now * 100.0),
        ("atrPercentile".into(), rank),
    ]);
    Some(Conditions {
        trend,
        volatility,
        trend_reason: why,
        volatility_reason,
        indicators,
        candle_ts_ms: last.ts_ms,
        candles: candles.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(
        n: usize,
        price: impl Fn(usize) -> f64,
        spread: impl Fn(usize) -> f64,
    ) -> Vec<Candle> {
        (0..n)
            .map(|i| {
                let p = price(i);
                let s = spread(i);
                Candle {
                    ts_ms: i as i64 * 3_600_000,
                    open: p,
                    high: p * (1.0 + s),
                    low: p * (1.0 - s),
                    close: p,
                    volume: 1.0,
                }
            })
            .collect()
    }

    #[test]
    fn a_steady_rise_is_bullish_and_a_fall_bearish() {
        let up = compute(&series(300, |i| 100.0 * 1.003f64.powi(i as i32), |_| 0.002)).unwrap();
        assert_eq!(up.trend, Trend::Bullish, "{}", up.trend_reason);
        let down = compute(&series(300, |i| 100.0 * 0.997f64.powi(i as i32), |_| 0.002)).unwrap();
        assert_eq!(down.trend, Trend::Bearish, "{}", down.trend_reason);
    }

    #[test]
    fn a_flat_wiggle_is_ranging() {
        let c = compute(&series(
            300,
            |i| 100.0 + ((i as f64) * 0.8).sin() * 0.2,
            |_| 0.002,
        ))
        .unwrap();
        assert_eq!(c.trend, Trend::Ranging, "{}", c.trend_reason);
    }

    #[test]
    fn volatility_ranks_against_its_own_history() {
        let calm_then_wild = series(
            400,
            |i| 100.0 + ((i as f64) * 0.5).sin(),
            |i| if i < 380 { 0.001 } else { 0.05 },
        );
        assert_eq!(
            compute(&calm_then_wild).unwrap().volatility,
            Volatility::High
        );
        let wild_then_calm = series(
            400,
            |i| 100.0 + ((i as f64) * 0.5).sin(),
            |i| if i < 380 { 0.05 } else { 0.0005 },
        );
        assert_eq!(
            compute(&wild_then_calm).unwrap().volatility,
            Volatility::Low
        );
    }

    #[test]
    fn too_few_candles_give_nothing() {
        assert!(compute(&series(MIN_CANDLES - 1, |_| 1.0, |_| 0.01)).is_none());
    }

    #[test]
    fn every_reason_names_its_values() {
        let c = compute(&series(300, |i| 100.0 * 1.003f64.powi(i as i32), |_| 0.002)).unwrap();
        assert!(c.trend_reason.contains("ADX"), "{}", c.trend_reason);
        assert!(
            c.volatility_reason.contains("ATR(14)"),
            "{}",
            c.volatility_reason
        );
        for key in [
            "rsi",
            "macd",
            "adx",
            "atrPct",
            "bbPosition",
            "sma20",
            "sma50",
        ] {
            assert!(c.indicators.contains_key(key), "{key}");
        }
    }
}
