//! Pattern discovery and learned strategies (the seed's learning loop, last steps).
//!
//! - A decision's *signature* is the market state at entry, discretised: the action, the
//!   trend (ADX 14 >= 25 with SMA 20 above/below SMA 50: bullish/bearish, else ranging), the
//!   volatility (ATR 14 as % of the close against the `[mem.enhancement]` reference: under half is
//!   low, over twice high, else medium: the same cut as enhancement's risk) and the RSI 14
//!   zone (under 30 oversold, over 70 overbought, else neutral), e.g.
//!   `BUY|trend=bullish|volatility=medium|rsi=neutral`.
//! - Discovery runs every [`DISCOVERY_EVERY`] closed decisions of a strategy, over its
//!   last [`DISCOVERY_WINDOW`]: a signature seen at least [`MIN_OCCURRENCES`] times with at
//!   least [`MIN_WIN_RATE`] wins becomes a learned strategy (once per parent and signature).
//! - A learned strategy with more than [`DEPRECATE_AFTER`] trades and under
//!   [`DEPRECATE_BELOW`] wins is deprecated, with the reason.
//!
//! `learned_strategies.json` is `{"schema_version": 1, "learned": [...]}`; a hand edit is
//! checked by [`parse_learned`] before it is used.

use crate::market::indicators::IndicatorState;
use mem_protocol::mem::{LearnedStatus, LearnedStrategy, PatternStat, SignalAction};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

pub const DISCOVERY_EVERY: usize = 10;
pub const DISCOVERY_WINDOW: usize = 100;
pub const MIN_OCCURRENCES: u64 = 5;
pub const MIN_WIN_RATE: f64 = 0.70;
pub const DEPRECATE_AFTER: u64 = 100;
pub const DEPRECATE_BELOW: f64 = 0.50;
/// ADX from which a market trends.
pub const TRENDING_ADX: f64 = 25.0;

pub const LEARNED_FILE: &str = "learned_strategies.json";

/// The trend word of the signature.
pub fn trend_label(adx: f64, sma20: f64, sma50: f64) -> &'static str {
    if adx >= TRENDING_ADX && sma20 > sma50 {
        "bullish"
    } else if adx >= TRENDING_ADX && sma20 < sma50 {
        "bearish"
    } else {
        "ranging"
    }
}

/// The volatility word: ATR % against the reference, as enhancement's risk.
pub fn volatility_label(atr_pct: f64, reference_pct: f64) -> &'static str {
    if atr_pct < reference_pct / 2.0 {
        "low"
    } else if atr_pct > reference_pct * 2.0 {
        "high"
    } else {
        "medium"
    }
}

pub fn rsi_label(rsi: f64) -> &'static str {
    if rsi < 30.0 {
        "oversold"
    } else if rsi > 70.0 {
        "overbought"
    } else {
        "neutral"
    }
}

fn action_word(action: SignalAction) -> &'static str {
    match action {
        SignalAction::Buy => "BUY",
        SignalAction::Sell => "SELL",
        SignalAction::Hold => "HOLD",
    }
}

/// The signature of `action` in the market the indicators describe; `None` while they warm up.
pub fn signature(
    action: SignalAction,
    indicators: &IndicatorState,
    close: f64,
    reference_volatility_pct: f64,
) -> Option<String> {
    let (adx, sma20, sma50, atr, rsi) = (
        indicators.adx14()?,
        indicators.sma20()?,
        indicators.sma50()?,
        indicators.atr14()?,
        indicators.rsi14()?,
    );
    Some(format!(
        "{}|trend={}|volatility={}|rsi={}",
        action_word(action),
        trend_label(adx, sma20, sma50),
        volatility_label(atr / close * 100.0, reference_volatility_pct),
        rsi_label(rsi)
    ))
}

/// The signature from the latest of `candles` (at least the 50 the indicators warm up on).
pub fn signature_of_candles(
    action: SignalAction,
    candles: &[crate::market::candles::Candle],
    reference_volatility_pct: f64,
) -> Option<String> {
    let mut state = IndicatorState::new();
    for c in candles {
        state.update(c.open, c.high, c.low, c.close, c.volume);
    }
    signature(
        action,
        &state,
        candles.last()?.close,
        reference_volatility_pct,
    )
}

/// Each signature's occurrences and wins among `closed` (signature, won), best first.
pub fn tally<'a>(
    strategy: &str,
    closed: impl Iterator<Item = (&'a str, bool)>,
) -> Vec<PatternStat> {
    let mut counts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (sig, win) in closed {
        let c = counts.entry(sig).or_default();
        c.0 += 1;
        c.1 += win as u64;
    }
    let mut stats: Vec<PatternStat> = counts
        .into_iter()
        .map(|(signature, (occurrences, wins))| PatternStat {
            strategy: strategy.to_string(),
            signature: signature.to_string(),
            occurrences,
            wins,
            win_rate: wins as f64 / occurrences as f64,
        })
        .collect();
    stats.sort_by(|a, b| {
        b.win_rate
            .total_cmp(&a.win_rate)
            .then(b.occurrences.cmp(&a.occurrences))
    });
    stats
}

/// The signatures of `stats` that qualify and are not learned yet for this parent.
pub fn qualifying<'a>(
    stats: &'a [PatternStat],
    existing: &[LearnedStrategy],
) -> Vec<&'a PatternStat> {
    let known: HashSet<(&str, &str)> = existing
        .iter()
        .map(|l| (l.parent.as_str(), l.signature.as_str()))
        .collect();
    stats
        .iter()
        .filter(|s| s.occurrences >= MIN_OCCURRENCES && s.win_rate >= MIN_WIN_RATE)
        .filter(|s| !known.contains(&(s.strategy.as_str(), s.signature.as_str())))
        .collect()
}

/// Why a learned strategy is to be deprecated now, if it is.
pub fn deprecation_reason(l: &LearnedStrategy) -> Option<String> {
    if l.status != LearnedStatus::Active || l.trades <= DEPRECATE_AFTER {
        return None;
    }
    let rate = l.wins as f64 / l.trades as f64;
    (rate < DEPRECATE_BELOW).then(|| {
        format!(
            "learned pattern {} won {} of {} trades ({:.1}%), under {:.0}% after more than {DEPRECATE_AFTER} trades",
            l.signature,
            l.wins,
            l.trades,
            rate * 100.0,
            DEPRECATE_BELOW * 100.0
        )
    })
}

/// `learned_strategies.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedFile {
    pub schema_version: u32,
    pub learned: Vec<LearnedStrategy>,
}

/// Reads and checks `learned_strategies.json`; the error names the entry and the field.
pub fn parse_learned(bytes: &[u8]) -> Result<Vec<LearnedStrategy>, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let file: LearnedFile =
        serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    if file.schema_version != 1 {
        return Err(format!(
            "schema_version: {} is not supported (1 is)",
            file.schema_version
        ));
    }
    let mut names = HashSet::new();
    for (i, l) in file.learned.iter().enumerate() {
        let at = |field: &str| format!("learned[{i}].{field}");
        if l.name.trim().is_empty() {
            return Err(format!("{}: must not be empty", at("name")));
        }
        if !names.insert(l.name.as_str()) {
            return Err(format!("{}: {:?} appears twice", at("name"), l.name));
        }
        if l.signature.trim().is_empty() {
            return Err(format!("{}: must not be empty", at("signature")));
        }
        if l.wins > l.trades {
            return Err(format!(
                "{}: {} wins out of {} trades",
                at("wins"),
                l.wins,
                l.trades
            ));
        }
        let e = &l.evidence;
        if !(0.0..=1.0).contains(&e.win_rate) || e.wins > e.occurrences {
            return Err(format!(
                "{}: win_rate must be within 0 and 1 and wins at most occurrences",
                at("evidence")
            ));
        }
    }
    Ok(file.learned)
}

pub fn render_learned(learned: &[LearnedStrategy]) -> Vec<u8> {
    serde_json::to_vec_pretty(&LearnedFile {
        schema_version: 1,
        learned: learned.to_vec(),
    })
    .expect("serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::mem::PatternEvidence;

    fn learned(trades: u64, wins: u64) -> LearnedStrategy {
        LearnedStrategy {
            name: "rsi_learned_1".into(),
            strategy_id: None,
            parent: "native_rsi".into(),
            parent_id: None,
            signature: "BUY|trend=ranging|volatility=low|rsi=oversold".into(),
            discovered_at: "2026-11-22T00:00:00Z".parse().unwrap(),
            evidence: PatternEvidence {
                occurrences: 5,
                wins: 4,
                win_rate: 0.8,
                window: 10,
            },
            trades,
            wins,
            status: LearnedStatus::Active,
            deprecated_at: None,
            deprecation_reason: None,
        }
    }

    #[test]
    fn labels_cut_at_their_edges() {
        assert_eq!(trend_label(25.0, 2.0, 1.0), "bullish");
        assert_eq!(trend_label(24.99, 2.0, 1.0), "ranging");
        assert_eq!(trend_label(30.0, 1.0, 2.0), "bearish");
        assert_eq!(trend_label(30.0, 1.0, 1.0), "ranging");
        assert_eq!(volatility_label(0.5, 1.0), "medium");
        assert_eq!(volatility_label(0.49, 1.0), "low");
        assert_eq!(volatility_label(2.0, 1.0), "medium");
        assert_eq!(volatility_label(2.01, 1.0), "high");
        assert_eq!(rsi_label(30.0), "neutral");
        assert_eq!(rsi_label(29.9), "oversold");
        assert_eq!(rsi_label(70.0), "neutral");
        assert_eq!(rsi_label(70.1), "overbought");
    }

    #[test]
    fn five_times_at_70_percent_qualifies_four_or_69_does_not() {
        let a = "BUY|a";
        let b = "BUY|b";
        let c = "BUY|c";
        // a: 5 seen, 4 won (80%); b: 4 seen, 4 won; c: 10 seen, 7 won (70%).
        let mut closed = vec![(a, true), (a, true), (a, true), (a, true), (a, false)];
        closed.extend([(b, true); 4]);
        closed.extend((0..10).map(|i| (c, i < 7)));
        let stats = tally("s", closed.into_iter());
        let q: Vec<&str> = qualifying(&stats, &[])
            .iter()
            .map(|s| s.signature.as_str())
            .collect();
        assert_eq!(q, vec![a, c]);
        // 69%: 9 of 13.
        let stats = tally("s", (0..13).map(|i| (c, i < 9)));
        assert!(qualifying(&stats, &[]).is_empty());
        // Already learned for this parent: not again.
        let mut l = learned(0, 0);
        l.parent = "s".into();
        l.signature = a.into();
        let stats = tally("s", [(a, true); 5].into_iter());
        assert!(qualifying(&stats, &[l]).is_empty());
    }

    #[test]
    fn deprecated_only_after_more_than_100_trades_under_half() {
        assert!(
            deprecation_reason(&learned(100, 10)).is_none(),
            "100 is not over 100"
        );
        assert!(deprecation_reason(&learned(101, 51)).is_none(), "50.5%");
        let why = deprecation_reason(&learned(101, 50)).unwrap();
        assert!(why.contains("50 of 101"), "{why}");
        let mut gone = learned(200, 0);
        gone.status = LearnedStatus::Deprecated;
        assert!(deprecation_reason(&gone).is_none());
    }

    #[test]
    fn a_broken_hand_edit_names_the_entry_and_field() {
        let good = render_learned(&[learned(3, 2)]);
        assert_eq!(parse_learned(&good).unwrap().len(), 1);
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        v["learned"][0]["wins"] = serde_json::json!(9);
        let err = parse_learned(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.contains("learned[0].wins"), "{err}");
        v["learned"][0]["wins"] = serde_json::json!("many");
        let err = parse_learned(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.contains("learned[0].wins"), "{err}");
        let err = parse_learned(b"{\"schema_version\": 1, \"learned\": [").unwrap_err();
        assert!(!err.is_empty());
    }
}
