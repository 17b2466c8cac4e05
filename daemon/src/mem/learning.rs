//! The learning loop's performance monitor (the seed's PerformanceMonitor), run on each
//! outcome: over a strategy's last [`WINDOW`] closed decisions,
//! - win rate below 45%: position size x0.7 and a confidence threshold of 0.70;
//! - win rate above 70%: position size x1.2;
//!
//! the multiplier kept within [`MIN_MULTIPLIER`, `MAX_MULTIPLIER`]. A strategy is judged
//! again only after [`WINDOW`] more closed decisions, so one bad window is not punished
//! twenty times. Adjustments go to `mem_knowledge/parameter_updates.json`, keyed by date
//! as in the seed: `{date: {timestamp, parameters, adjustments: [{strategy, parameter,
//! from, to, reason, triggered_by, impact}], performance_context}}`; the newest date's
//! `parameters` are the ones in force.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PARAMETERS_FILE: &str = "parameter_updates.json";

/// Closed decisions a judgement looks at.
pub const WINDOW: usize = 20;
pub const LOW_WIN_RATE: f64 = 0.45;
pub const HIGH_WIN_RATE: f64 = 0.70;
pub const SHRINK: f64 = 0.7;
pub const GROW: f64 = 1.2;
pub const CAUTIOUS_THRESHOLD: f64 = 0.70;
pub const MIN_MULTIPLIER: f64 = 0.25;
pub const MAX_MULTIPLIER: f64 = 2.0;

/// What the monitor has set for one strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyParams {
    pub position_size_multiplier: f64,
    /// Signals below this confidence are not to be acted on.
    #[serde(default)]
    pub confidence_threshold: Option<f64>,
    /// Closed decisions counted when it was last judged.
    #[serde(default)]
    pub judged_at_closed: usize,
}

impl Default for StrategyParams {
    fn default() -> Self {
        StrategyParams {
            position_size_multiplier: 1.0,
            confidence_threshold: None,
            judged_at_closed: 0,
        }
    }
}

/// One adjustment, as `parameter_updates.json` records it. `impact` is filled in once
/// [`WINDOW`] more trades of the strategy have closed after `made_at`: the win rate and
/// P&L of those trades (`after`) against the [`WINDOW`] before it (`before`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adjustment {
    pub strategy: String,
    pub parameter: String,
    pub from: Value,
    pub to: Value,
    pub reason: String,
    pub triggered_by: String,
    pub impact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<WindowFigures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<WindowFigures>,
}

/// A strategy's closed trades over a window: how many, the share won, the summed P&L %.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowFigures {
    pub trades: usize,
    pub win_rate: f64,
    pub pnl_pct: f64,
}

impl WindowFigures {
    /// The figures of closed trades given as (won, P&L %); `None` for none.
    pub fn of(trades: &[(bool, f64)]) -> Option<WindowFigures> {
        if trades.is_empty() {
            return None;
        }
        let wins = trades.iter().filter(|(w, _)| *w).count();
        Some(WindowFigures {
            trades: trades.len(),
            win_rate: wins as f64 / trades.len() as f64,
            pnl_pct: trades.iter().map(|(_, p)| p).sum(),
        })
    }
}

/// The seed's impact sentence ("win rate improved to 58% over next 20 trades"), with the
/// P&L and what it is compared with.
pub fn impact_text(before: Option<&WindowFigures>, after: &WindowFigures) -> String {
    let rate = |f: &WindowFigures| format!("{:.0}%", f.win_rate * 100.0);
    let pnl = |f: &WindowFigures| format!("{:+.2}%", f.pnl_pct);
    match before {
        Some(b) => format!(
            "Win rate {} to {} and P&L {} to {} over the next {} trades (against the {} before)",
            if after.win_rate > b.win_rate {
                format!("improved from {}", rate(b))
            } else if after.win_rate < b.win_rate {
                format!("fell from {}", rate(b))
            } else {
                format!("unchanged from {}", rate(b))
            },
            rate(after),
            pnl(b),
            pnl(after),
            after.trades,
            b.trades
        ),
        None => format!(
            "Win rate {} and P&L {} over the next {} trades (no trades before to compare)",
            rate(after),
            pnl(after),
            after.trades
        ),
    }
}

/// Judges a strategy that has `closed` decisions closed in all, `last` the results of the
/// latest of them (oldest first, up to [`WINDOW`]). Returns the new parameters and what
/// changed (empty when nothing did).
pub fn judge(
    strategy: &str,
    closed: usize,
    last: &[bool],
    current: &StrategyParams,
) -> (StrategyParams, Vec<Adjustment>) {
    let mut next = current.clone();
    if closed < WINDOW || last.len() < WINDOW || closed < current.judged_at_closed + WINDOW {
        return (next, vec![]);
    }
    next.judged_at_closed = closed;
    let window = &last[last.len() - WINDOW..];
    let rate = window.iter().filter(|w| **w).count() as f64 / WINDOW as f64;
    let mut changes = Vec::new();
    let mut set_size = |next: &mut StrategyParams, factor: f64, why: String| {
        let to = (next.position_size_multiplier * factor).clamp(MIN_MULTIPLIER, MAX_MULTIPLIER);
        if (to - next.position_size_multiplier).abs() > 1e-12 {
            changes.push(Adjustment {
                strategy: strategy.into(),
                parameter: "position_size_multiplier".into(),
                from: json!(next.position_size_multiplier),
                to: json!(to),
                reason: why,
                triggered_by: "performance_monitor".into(),
                impact: None,
                made_at: None,
                before: None,
                after: None,
            });
            next.position_size_multiplier = to;
        }
    };
    if rate < LOW_WIN_RATE {
        let why = format!(
            "Win rate {:.0}% over the last {WINDOW} trades is below {:.0}% - reducing risk",
            rate * 100.0,
            LOW_WIN_RATE * 100.0
        );
        set_size(&mut next, SHRINK, why.clone());
        if next.confidence_threshold != Some(CAUTIOUS_THRESHOLD) {
            changes.push(Adjustment {
                strategy: strategy.into(),
                parameter: "confidence_threshold".into(),
                from: json!(next.confidence_threshold),
                to: json!(CAUTIOUS_THRESHOLD),
                reason: why,
                triggered_by: "performance_monitor".into(),
                impact: None,
                made_at: None,
                before: None,
                after: None,
            });
            next.confidence_threshold = Some(CAUTIOUS_THRESHOLD);
        }
    } else if rate > HIGH_WIN_RATE {
        set_size(
            &mut next,
            GROW,
            format!(
                "Win rate {:.0}% over the last {WINDOW} trades is above {:.0}% - increasing position size",
                rate * 100.0,
                HIGH_WIN_RATE * 100.0
            ),
        );
    }
    (next, changes)
}

/// `mem_knowledge/parameter_updates.json` (encrypted at rest when the memory is).
pub struct ParameterUpdates {
    path: PathBuf,
    codec: super::crypt::Codec,
}

impl ParameterUpdates {
    /// The plain file in `dir`.
    pub fn new(dir: &Path) -> ParameterUpdates {
        Self::with_codec(dir, super::crypt::Codec::plain())
    }

    /// The file in `dir`, read and written with `codec`.
    pub fn with_codec(dir: &Path, codec: super::crypt::Codec) -> ParameterUpdates {
        ParameterUpdates {
            path: dir.join(PARAMETERS_FILE),
            codec,
        }
    }

    fn read(&self) -> Result<BTreeMap<String, Value>, String> {
        match self.codec.read_doc(&self.path, PARAMETERS_FILE)? {
            Some((bytes, _)) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", self.path.display()))
            }
            None => Ok(BTreeMap::new()),
        }
    }

    /// The whole file (empty when absent).
    pub fn history(&self) -> Result<Value, String> {
        Ok(json!(self.read()?))
    }

    /// The parameters in force: the newest date's.
    pub fn current(&self) -> Result<BTreeMap<String, StrategyParams>, String> {
        let all = self.read()?;
        let Some((_, latest)) = all.iter().next_back() else {
            return Ok(BTreeMap::new());
        };
        let params: BTreeMap<String, StrategyParams> = match latest.get("parameters") {
            Some(p) => serde_json::from_value(p.clone())
                .map_err(|e| format!("{}: `parameters`: {e}", self.path.display()))?,
            None => BTreeMap::new(),
        };
        // A hand edit must stay within what the monitor itself could set.
        for (strategy, p) in &params {
            let m = p.position_size_multiplier;
            if !(m.is_finite() && (MIN_MULTIPLIER..=MAX_MULTIPLIER).contains(&m)) {
                return Err(format!(
                    "{}: `parameters.{strategy}.position_size_multiplier`: {m} is outside {MIN_MULTIPLIER}..={MAX_MULTIPLIER}",
                    self.path.display()
                ));
            }
            if let Some(t) = p.confidence_threshold {
                if !(0.0..=1.0).contains(&t) {
                    return Err(format!(
                        "{}: `parameters.{strategy}.confidence_threshold`: {t} is outside 0..=1",
                        self.path.display()
                    ));
                }
            }
        }
        Ok(params)
    }

    /// The adjustments still waiting for their impact: (strategy, when made).
    pub fn pending(&self) -> Result<Vec<(String, DateTime<Utc>)>, String> {
        let all = self.read()?;
        Ok(all
            .values()
            .filter_map(|entry| entry.get("adjustments")?.as_array())
            .flatten()
            .filter_map(|a| serde_json::from_value::<Adjustment>(a.clone()).ok())
            .filter(|a| a.impact.is_none())
            .filter_map(|a| Some((a.strategy, a.made_at?)))
            .collect())
    }

    /// Fills in the impact of the adjustments of `strategy` made at `made_at`.
    pub fn fill_impact(
        &self,
        strategy: &str,
        made_at: DateTime<Utc>,
        after: &WindowFigures,
    ) -> Result<(), String> {
        let mut all = self.read()?;
        let mut changed = false;
        for entry in all.values_mut() {
            let Some(list) = entry.get_mut("adjustments").and_then(Value::as_array_mut) else {
                continue;
            };
            for item in list.iter_mut() {
                let Ok(mut a) = serde_json::from_value::<Adjustment>(item.clone()) else {
                    continue;
                };
                if a.strategy == strategy && a.made_at == Some(made_at) && a.impact.is_none() {
                    a.impact = Some(impact_text(a.before.as_ref(), after));
                    a.after = Some(after.clone());
                    *item = json!(a);
                    changed = true;
                }
            }
        }
        if !changed {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&all).expect("serializes");
        self.codec
            .write_doc(&self.path, PARAMETERS_FILE, &bytes)
            .map_err(|e| format!("{e:#}"))
    }

    /// Records a judgement: today's entry gets the parameters now in force, the
    /// adjustments appended, and the performance context.
    pub fn record(
        &self,
        now: DateTime<Utc>,
        parameters: &BTreeMap<String, StrategyParams>,
        adjustments: &[Adjustment],
        context: Value,
    ) -> Result<(), String> {
        let mut all = self.read()?;
        let date = now.date_naive().to_string();
        let mut entry = all
            .remove(&date)
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_else(Map::new);
        entry.insert("timestamp".into(), json!(now));
        entry.insert("parameters".into(), json!(parameters));
        let mut list = entry
            .remove("adjustments")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        list.extend(adjustments.iter().map(|a| json!(a)));
        entry.insert("adjustments".into(), Value::Array(list));
        entry.insert("performance_context".into(), context);
        all.insert(date, Value::Object(entry));
        let bytes = serde_json::to_vec_pretty(&all).expect("serializes");
        self.codec
            .write_doc(&self.path, PARAMETERS_FILE, &bytes)
            .map_err(|e| format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wins(n: usize, won: usize) -> Vec<bool> {
        (0..n).map(|i| i < won).rev().collect()
    }

    fn judge(s: &str, wins: &[bool], p: &StrategyParams) -> (StrategyParams, Vec<Adjustment>) {
        super::judge(s, wins.len(), &wins[wins.len().saturating_sub(WINDOW)..], p)
    }

    #[test]
    fn a_losing_window_shrinks_size_and_sets_the_threshold() {
        // 8 of 20 = 40% < 45%.
        let (p, changes) = judge("momentum", &wins(20, 8), &StrategyParams::default());
        assert_eq!(p.position_size_multiplier, 0.7);
        assert_eq!(p.confidence_threshold, Some(0.70));
        assert_eq!(changes.len(), 2);
        assert!(changes[0].reason.contains("40%"), "{}", changes[0].reason);
        assert_eq!(changes[0].triggered_by, "performance_monitor");
    }

    #[test]
    fn edges_45_and_70_percent_change_nothing() {
        assert!(
            judge("s", &wins(20, 9), &StrategyParams::default())
                .1
                .is_empty()
        ); // 45%
        assert!(
            judge("s", &wins(20, 14), &StrategyParams::default())
                .1
                .is_empty()
        ); // 70%
        let (p, c) = judge("s", &wins(20, 15), &StrategyParams::default()); // 75%
        assert_eq!(p.position_size_multiplier, 1.2);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn judged_once_per_window_and_within_bounds() {
        let (p, _) = judge("s", &wins(20, 2), &StrategyParams::default());
        // One more losing trade: not judged again until 20 more have closed.
        let mut w = wins(20, 2);
        w.push(false);
        assert!(judge("s", &w, &p).1.is_empty());
        let mut p = p;
        for _ in 0..10 {
            let more = wins(p.judged_at_closed + WINDOW, 0);
            p = judge("s", &more, &p).0;
        }
        assert_eq!(p.position_size_multiplier, MIN_MULTIPLIER);
        assert!(
            judge("s", &wins(19, 0), &StrategyParams::default())
                .1
                .is_empty(),
            "fewer than 20"
        );
    }

    #[test]
    fn updates_are_kept_by_date_and_the_newest_are_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let store = ParameterUpdates::new(dir.path());
        assert!(store.current().unwrap().is_empty());
        let (p, changes) = judge("momentum", &wins(20, 5), &StrategyParams::default());
        let params = BTreeMap::from([("momentum".to_string(), p.clone())]);
        let now: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
        store
            .record(
                now,
                &params,
                &changes,
                json!({"momentum": {"win_rate": 0.25}}),
            )
            .unwrap();
        assert_eq!(store.current().unwrap()["momentum"], p);
        let text: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("parameter_updates.json")).unwrap(),
        )
        .unwrap();
        let day = &text["2026-11-22"];
        assert_eq!(day["adjustments"].as_array().unwrap().len(), 2);
        assert_eq!(day["adjustments"][0]["from"], 1.0);
        assert_eq!(day["adjustments"][0]["to"], 0.7);
        std::fs::write(dir.path().join("parameter_updates.json"), b"{broken").unwrap();
        let err = store.current().unwrap_err();
        assert!(err.contains("parameter_updates.json"), "{err}");
    }

    #[test]
    fn an_impact_compares_the_next_trades_with_those_before() {
        let before = WindowFigures::of(&[(false, -1.0), (true, 0.5), (false, -0.5), (false, -1.0)]);
        let after =
            WindowFigures::of(&[(true, 1.0), (true, 0.5), (false, -0.25), (true, 0.75)]).unwrap();
        assert_eq!(before.as_ref().unwrap().win_rate, 0.25);
        assert_eq!(
            impact_text(before.as_ref(), &after),
            "Win rate improved from 25% to 75% and P&L -2.00% to +2.00% over the next 4 trades (against the 4 before)"
        );
        assert!(impact_text(None, &after).contains("no trades before"));
        assert_eq!(WindowFigures::of(&[]), None);
    }

    #[test]
    fn an_impact_is_filled_into_its_adjustment_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = ParameterUpdates::new(dir.path());
        let at = Utc::now();
        let adjustment = |strategy: &str, made_at| Adjustment {
            strategy: strategy.into(),
            parameter: "regime_adaptation".into(),
            from: json!([]),
            to: json!(["choppy"]),
            reason: "choppy".into(),
            triggered_by: "parameter_adapter".into(),
            impact: None,
            made_at: Some(made_at),
            before: None,
            after: None,
        };
        file.record(
            at,
            &BTreeMap::new(),
            &[adjustment("a", at), adjustment("b", at)],
            json!({}),
        )
        .unwrap();
        assert_eq!(file.pending().unwrap().len(), 2);
        let after = WindowFigures::of(&[(true, 1.0)]).unwrap();
        file.fill_impact("a", at, &after).unwrap();
        assert_eq!(file.pending().unwrap(), vec![("b".to_string(), at)]);
        let text = file.history().unwrap().to_string();
        assert!(
            text.contains("Win rate 100% and P&L +1.00% over the next 1 trades"),
            "{text}"
        );
    }
}
