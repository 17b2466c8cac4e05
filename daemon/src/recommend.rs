//! Recommendations: the seed's scoring of strategies against market conditions.
//!
//! Rules (points in hundredths, so sums are exact):
//! - base 0.50;
//! - +0.20 when the category suits the trend: bullish -> `momentum`, ranging ->
//!   `mean_reversion`, bearish -> `carry` (the seed's code gave carry +0.10; its guide and
//!   our issue say +0.20, which is what we do);
//! - +0.15 when the Sharpe ratio is > 1.0;
//! - +0.10 when the win rate is > 0.55;
//! - +0.15 when the volatility suits the strategy: high -> `volatility`.
//!
//! Only active, MEM-enabled strategies are candidates, only scores strictly above 0.50 are
//! recommended, best first (ties by name). The Sharpe ratio and win rate come from the
//! performance log once a strategy has [`LIVE_METRICS_MIN_TRADES`] closed trades, else
//! from the latest backtest memd ran that passed validation; figures typed into the
//! metadata are unmeasured and earn nothing (`[recommend] unmeasured = "exclude"` leaves
//! such strategies out). The reason and the breakdown say which.

use mem_protocol::recommend::{
    AppliedConditions, MetricsSource, Recommendation, Recommendations, ScorePoint, Trend,
    Volatility,
};
use mem_protocol::strategy::{StrategyStatus, StrategySummary};
use std::sync::Arc;

/// Closed trades from which a strategy's live Sharpe ratio and win rate replace its
/// backtest figures: fewer trades say too little (a 3-trade win rate is noise).
pub const LIVE_METRICS_MIN_TRADES: u64 = 30;

const BASE: u32 = 50;
const TREND_MATCH: u32 = 20;
const SHARPE_BONUS: u32 = 15;
const WIN_RATE_BONUS: u32 = 10;
const VOLATILITY_MATCH: u32 = 15;
/// Recommended only above this (strictly).
const THRESHOLD: u32 = 50;
/// Recommendations explained when the request sets no limit: a registry of thousands
/// would otherwise answer with thousands (the message gives the full count).
pub const DEFAULT_LIMIT: usize = 100;

/// The category that suits a trend, and the seed's phrase for the match.
fn trend_match(trend: Trend) -> Option<(&'static str, &'static str)> {
    match trend {
        Trend::Bullish => Some(("momentum", "momentum strategy suits bullish trend")),
        Trend::Ranging => Some((
            "mean_reversion",
            "mean reversion works well in ranging markets",
        )),
        Trend::Bearish => Some(("carry", "carry strategy suits bearish trend")),
        Trend::Neutral => None,
    }
}

/// The category that suits a volatility regime.
fn volatility_match(volatility: Volatility) -> Option<(&'static str, &'static str)> {
    match volatility {
        Volatility::High => Some(("volatility", "volatility strategy suits high volatility")),
        Volatility::Low | Volatility::Medium => None,
    }
}

/// The conditions recommendations use when they are computed from the market (the
/// socket's `strategies.recommendations` without a trend, and the scheduled jobs).
pub fn computed_conditions(
    report: mem_protocol::recommend::ConditionsReport,
    vix: Option<f64>,
) -> AppliedConditions {
    AppliedConditions {
        trend: report.trend,
        volatility: report.volatility,
        vix,
        indicators: report.indicators.clone(),
        source: mem_protocol::recommend::ConditionsSource::Computed,
        computed: Some(Box::new(report)),
    }
}

/// What is done with a strategy whose only figures are typed in (`[recommend] unmeasured`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmeasured {
    /// Scored on its category alone (its figures earn nothing; the breakdown says why).
    #[default]
    Score,
    /// Not a candidate at all.
    Exclude,
}

/// The figures a strategy is scored on.
struct Figures {
    sharpe: Option<f64>,
    win_rate: Option<f64>,
    source: MetricsSource,
}

fn figures(s: &StrategySummary) -> Figures {
    if s.live_trades >= LIVE_METRICS_MIN_TRADES
        && (s.live_sharpe_ratio.is_some() || s.live_win_rate.is_some())
    {
        Figures {
            sharpe: s.live_sharpe_ratio,
            win_rate: s.live_win_rate,
            source: MetricsSource::Live,
        }
    } else if let Some(m) = &s.measured {
        Figures {
            sharpe: m.sharpe_ratio,
            win_rate: Some(m.win_rate),
            source: MetricsSource::Backtest,
        }
    } else {
        Figures {
            sharpe: None,
            win_rate: None,
            source: MetricsSource::Unmeasured,
        }
    }
}

fn is_candidate(s: &StrategySummary, unmeasured: Unmeasured) -> bool {
    s.status == StrategyStatus::Active
        && s.mem_enabled
        && (unmeasured == Unmeasured::Score || figures(s).source != MetricsSource::Unmeasured)
}

/// The score in hundredths, without building any text (the fast pass over every
/// candidate).
fn points(s: &StrategySummary, trend: Trend, volatility: Volatility) -> u32 {
    let f = figures(s);
    let category = s.category.as_str();
    let mut total = BASE;
    if trend_match(trend).is_some_and(|(c, _)| c.eq_ignore_ascii_case(category)) {
        total += TREND_MATCH;
    }
    if f.sharpe.is_some_and(|v| v > 1.0) {
        total += SHARPE_BONUS;
    }
    if f.win_rate.is_some_and(|v| v > 0.55) {
        total += WIN_RATE_BONUS;
    }
    if volatility_match(volatility).is_some_and(|(c, _)| c.eq_ignore_ascii_case(category)) {
        total += VOLATILITY_MATCH;
    }
    total.min(100)
}

/// One strategy's score with every rule's contribution and the seed's reason text.
pub fn explain(s: &StrategySummary, trend: Trend, volatility: Volatility) -> Recommendation {
    let f = figures(s);
    let category = s.category.to_ascii_lowercase();
    let source = match f.source {
        MetricsSource::Live => "live",
        MetricsSource::Backtest => "measured backtest",
        MetricsSource::Unmeasured => "unmeasured",
    };
    let mut breakdown = vec![ScorePoint {
        rule: "base".into(),
        points: 0.50,
        detail: "base score".into(),
    }];
    let mut phrases: Vec<String> = Vec::new();
    let mut total = BASE;
    let mut add = |rule: &str, hundredths: u32, detail: String| {
        total += hundredths;
        breakdown.push(ScorePoint {
            rule: rule.into(),
            points: f64::from(hundredths) / 100.0,
            detail,
        });
    };

    match trend_match(trend) {
        Some((wanted, phrase)) if wanted == category => {
            phrases.push(phrase.into());
            add("trend", TREND_MATCH, phrase.into());
        }
        Some((wanted, _)) => add(
            "trend",
            0,
            format!("{trend} trend favours {wanted}, not {}", s.category),
        ),
        None => add(
            "trend",
            0,
            format!("no category is favoured in a {trend} market"),
        ),
    }
    match f.sharpe {
        Some(v) if v > 1.0 => {
            phrases.push(format!("strong Sharpe ratio ({v:.2})"));
            add(
                "sharpe",
                SHARPE_BONUS,
                format!("Sharpe ratio {v:.2} > 1.0 ({source})"),
            );
        }
        Some(v) => add(
            "sharpe",
            0,
            format!("Sharpe ratio {v:.2} is not > 1.0 ({source})"),
        ),
        None => add("sharpe", 0, format!("no Sharpe ratio ({source})")),
    }
    match f.win_rate {
        Some(v) if v > 0.55 => {
            phrases.push(format!("high win rate ({:.0}%)", v * 100.0));
            add(
                "winRate",
                WIN_RATE_BONUS,
                format!("win rate {:.1}% > 55% ({source})", v * 100.0),
            );
        }
        Some(v) => add(
            "winRate",
            0,
            format!("win rate {:.1}% is not > 55% ({source})", v * 100.0),
        ),
        None => add("winRate", 0, format!("no win rate ({source})")),
    }
    match volatility_match(volatility) {
        Some((wanted, phrase)) if wanted == category => {
            phrases.push(phrase.into());
            add("volatility", VOLATILITY_MATCH, phrase.into());
        }
        Some((wanted, _)) => add(
            "volatility",
            0,
            format!(
                "{volatility} volatility favours {wanted}, not {}",
                s.category
            ),
        ),
        None => add(
            "volatility",
            0,
            format!("no category is favoured at {volatility} volatility"),
        ),
    }
    if f.source == MetricsSource::Unmeasured {
        let typed = match (s.sharpe_ratio, s.win_rate) {
            (None, None) => "no figures".to_string(),
            (sharpe, win) => format!(
                "Sharpe {}, win rate {}",
                sharpe.map_or("none".into(), |v| format!("{v:.2}")),
                win.map_or("none".into(), |v| format!("{:.0}%", v * 100.0))
            ),
        };
        add(
            "measured",
            0,
            format!(
                "unmeasured: the metadata's backtest figures ({typed}) were typed in, and no backtest memd ran has passed (memctl backtest {}); they earn no points",
                s.id
            ),
        );
    }
    if total > 100 {
        let over = total - 100;
        breakdown.push(ScorePoint {
            rule: "cap".into(),
            points: -(f64::from(over) / 100.0),
            detail: "scores are capped at 1.00".into(),
        });
        total = 100;
    }

    let mut reason = if phrases.is_empty() {
        "general market conditions favorable".to_string()
    } else {
        phrases.join(", ")
    };
    match f.source {
        MetricsSource::Live => {
            reason.push_str(&format!("; figures from {} live trades", s.live_trades))
        }
        MetricsSource::Backtest => match &s.measured {
            Some(m) => reason.push_str(&format!("; figures from the {}", m.words())),
            None => reason.push_str("; figures from the backtest"),
        },
        MetricsSource::Unmeasured => reason.push_str("; unmeasured: no backtest memd ran"),
    }
    Recommendation {
        strategy_id: s.id,
        strategy_name: s.display_name.clone(),
        category: s.category.clone(),
        confidence_score: f64::from(total) / 100.0,
        reason,
        estimated_sharpe: f.sharpe,
        estimated_win_rate: f.win_rate,
        metrics_source: f.source,
        live_trades: s.live_trades,
        is_deployed: s.is_deployed,
        breakdown,
    }
}

/// Scores every candidate and explains the best `limit` of those above the threshold.
pub fn recommend<'a>(
    strategies: impl IntoIterator<Item = &'a Arc<StrategySummary>>,
    conditions: AppliedConditions,
    limit: Option<usize>,
    unmeasured: Unmeasured,
) -> Recommendations {
    let (trend, volatility) = (conditions.trend, conditions.volatility);
    let mut candidates = 0;
    let mut scored: Vec<(u32, &StrategySummary)> = Vec::new();
    for s in strategies {
        if !is_candidate(s, unmeasured) {
            continue;
        }
        candidates += 1;
        let p = points(s, trend, volatility);
        if p > THRESHOLD {
            scored.push((p, s));
        }
    }
    scored.sort_unstable_by(|(pa, a), (pb, b)| {
        pb.cmp(pa)
            .then_with(|| a.display_name.cmp(&b.display_name))
            .then_with(|| a.id.cmp(&b.id))
    });
    let total = scored.len();
    scored.truncate(limit.unwrap_or(DEFAULT_LIMIT));
    let recommendations: Vec<Recommendation> = scored
        .into_iter()
        .map(|(_, s)| explain(s, trend, volatility))
        .collect();
    let message = if candidates == 0 {
        "no strategy can be recommended: the registry has no active, MEM-enabled strategy \
         (check the registry path and each strategy's status and mem_integration.enabled)"
            .to_string()
    } else if total == 0 {
        format!(
            "MEM recommends no strategy for {trend} trend with {volatility} volatility: \
             none of {candidates} candidates scores above 0.50"
        )
    } else if recommendations.len() < total {
        format!(
            "MEM recommends {total} strategies for {trend} trend with {volatility} volatility \
             (best {} shown)",
            recommendations.len()
        )
    } else {
        format!("MEM recommends {total} strategies for {trend} trend with {volatility} volatility")
    };
    Recommendations {
        conditions,
        recommendations,
        candidates,
        message,
        live_metrics_min_trades: LIVE_METRICS_MIN_TRADES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::recommend::ConditionsSource;
    use mem_protocol::strategy::{Origin, StrategyId};

    /// A strategy whose figures a backtest of memd's measured (none given: none measured).
    fn strategy(
        name: &str,
        category: &str,
        sharpe: Option<f64>,
        win: Option<f64>,
    ) -> StrategySummary {
        let mut s = typed(name, category, sharpe, win);
        if sharpe.is_some() || win.is_some() {
            s.measured = Some(Box::new(mem_protocol::strategy::MeasuredBacktest {
                job_id: "j1".into(),
                version: "1.0.0".into(),
                engine: mem_protocol::backtest::BacktestEngine::Freqtrade,
                pairs: vec!["ETH/USDT".into(), "BTC/USDT".into()],
                timeframe: "5m".into(),
                data_from: "2026-11-01T00:00:00Z".parse().unwrap(),
                data_to: "2026-12-01T00:00:00Z".parse().unwrap(),
                trades: 40,
                sharpe_ratio: sharpe,
                win_rate: win.unwrap_or(0.0),
                max_drawdown: 0.1,
                total_return: 0.05,
                finished_at: "2026-12-01T01:00:00Z".parse().unwrap(),
            }));
        }
        s
    }

    /// A strategy whose figures were typed into its metadata.
    fn typed(name: &str, category: &str, sharpe: Option<f64>, win: Option<f64>) -> StrategySummary {
        StrategySummary {
            id: StrategyId::new_random(),
            name: name.to_lowercase(),
            display_name: name.into(),
            description: String::new(),
            category: category.into(),
            sub_category: String::new(),
            status: StrategyStatus::Active,
            language: "freqtrade".into(),
            origin: Origin::BuiltIn,
            version: "1.0.0".into(),
            tags: vec![],
            mem_enabled: true,
            sharpe_ratio: sharpe,
            win_rate: win,
            risk_level: None,
            live_trades: 0,
            total_pnl: None,
            live_sharpe_ratio: None,
            live_win_rate: None,
            last_used_at: None,
            is_deployed: false,
            measured: None,
        }
    }

    fn conditions(trend: Trend, volatility: Volatility) -> AppliedConditions {
        AppliedConditions {
            trend,
            volatility,
            vix: None,
            indicators: Default::default(),
            source: ConditionsSource::Request,
            computed: None,
        }
    }

    fn sum(r: &Recommendation) -> f64 {
        r.breakdown.iter().map(|p| p.points).sum()
    }

    #[test]
    fn the_seed_worked_example_scores_095_with_its_breakdown() {
        let macd = strategy("Freqtrade MACD Hunter", "momentum", Some(1.45), Some(0.58));
        let r = explain(&macd, Trend::Bullish, Volatility::Medium);
        assert_eq!(r.confidence_score, 0.95);
        let applied: Vec<(&str, f64)> = r
            .breakdown
            .iter()
            .filter(|p| p.points != 0.0)
            .map(|p| (p.rule.as_str(), p.points))
            .collect();
        assert_eq!(
            applied,
            [
                ("base", 0.5),
                ("trend", 0.2),
                ("sharpe", 0.15),
                ("winRate", 0.1)
            ]
        );
        assert!((sum(&r) - 0.95).abs() < 1e-12);
        assert_eq!(
            r.reason,
            "momentum strategy suits bullish trend, strong Sharpe ratio (1.45), high win rate (58%); figures from the backtest of 1.0.0 (freqtrade) on ETH/USDT, BTC/USDT 5m, 2026-11-01 to 2026-12-01"
        );
        assert_eq!(r.metrics_source, MetricsSource::Backtest);
    }

    #[test]
    fn typed_in_figures_are_unmeasured_earn_nothing_and_can_be_excluded() {
        let macd = typed("Freqtrade MACD Hunter", "momentum", Some(1.45), Some(0.58));
        let r = explain(&macd, Trend::Bullish, Volatility::Medium);
        assert_eq!(r.confidence_score, 0.70);
        assert_eq!(r.metrics_source, MetricsSource::Unmeasured);
        assert_eq!((r.estimated_sharpe, r.estimated_win_rate), (None, None));
        let why = r.breakdown.iter().find(|p| p.rule == "measured").unwrap();
        assert_eq!(why.points, 0.0);
        assert!(
            why.detail
                .contains("(Sharpe 1.45, win rate 58%) were typed in"),
            "{}",
            why.detail
        );
        assert!(
            r.reason.ends_with("unmeasured: no backtest memd ran"),
            "{}",
            r.reason
        );
        let list = [
            Arc::new(macd),
            Arc::new(strategy("Measured", "momentum", Some(1.2), None)),
        ];
        let scored = recommend(
            &list,
            conditions(Trend::Bullish, Volatility::Medium),
            None,
            Unmeasured::Score,
        );
        assert_eq!(scored.recommendations.len(), 2);
        let excluded = recommend(
            &list,
            conditions(Trend::Bullish, Volatility::Medium),
            None,
            Unmeasured::Exclude,
        );
        assert_eq!(excluded.candidates, 1);
        assert_eq!(excluded.recommendations[0].strategy_name, "Measured");
    }

    #[test]
    fn threshold_edges_are_strict() {
        // Exactly 1.0 and exactly 55% earn nothing; just above earns the points.
        let at = strategy("At", "momentum", Some(1.0), Some(0.55));
        assert_eq!(points(&at, Trend::Neutral, Volatility::Medium), 50);
        let above = strategy("Above", "momentum", Some(1.0001), Some(0.5501));
        assert_eq!(points(&above, Trend::Neutral, Volatility::Medium), 75);
        // A score of exactly 0.50 is not recommended.
        let list = [Arc::new(at), Arc::new(above)];
        let r = recommend(
            &list,
            conditions(Trend::Neutral, Volatility::Medium),
            None,
            Unmeasured::Score,
        );
        assert_eq!(r.candidates, 2);
        assert_eq!(r.recommendations.len(), 1);
        assert_eq!(r.recommendations[0].strategy_name, "Above");
    }

    #[test]
    fn each_trend_and_volatility_rule() {
        let cases = [
            ("momentum", Trend::Bullish, Volatility::Low, 70),
            ("momentum", Trend::Bearish, Volatility::Low, 50),
            ("mean_reversion", Trend::Ranging, Volatility::Low, 70),
            ("mean_reversion", Trend::Bullish, Volatility::Low, 50),
            ("carry", Trend::Bearish, Volatility::Low, 70),
            ("volatility", Trend::Neutral, Volatility::High, 65),
            ("volatility", Trend::Neutral, Volatility::Medium, 50),
            ("momentum", Trend::Neutral, Volatility::High, 50),
        ];
        for (category, trend, vol, want) in cases {
            let s = strategy("S", category, None, None);
            assert_eq!(points(&s, trend, vol), want, "{category} {trend} {vol}");
            let r = explain(&s, trend, vol);
            assert_eq!((sum(&r) * 100.0).round() as u32, want);
            assert_eq!(r.confidence_score, f64::from(want) / 100.0);
        }
    }

    #[test]
    fn live_figures_replace_backtest_ones_from_the_threshold() {
        let mut s = strategy("Live", "momentum", Some(1.5), Some(0.6));
        s.live_sharpe_ratio = Some(0.4);
        s.live_win_rate = Some(0.40);
        s.live_trades = LIVE_METRICS_MIN_TRADES - 1;
        let r = explain(&s, Trend::Bullish, Volatility::Low);
        assert_eq!(r.metrics_source, MetricsSource::Backtest);
        assert_eq!(r.confidence_score, 0.95);
        s.live_trades = LIVE_METRICS_MIN_TRADES;
        let r = explain(&s, Trend::Bullish, Volatility::Low);
        assert_eq!(r.metrics_source, MetricsSource::Live);
        assert_eq!(r.confidence_score, 0.70);
        assert!(
            r.reason.ends_with("figures from 30 live trades"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn only_active_mem_enabled_strategies_best_first() {
        let mut off = strategy("Off", "momentum", Some(2.0), Some(0.9));
        off.mem_enabled = false;
        let mut experimental = strategy("Exp", "momentum", Some(2.0), Some(0.9));
        experimental.status = StrategyStatus::Experimental;
        let good = strategy("Good", "momentum", Some(2.0), Some(0.9));
        let ok = strategy("Ok", "momentum", None, None);
        let list = [off, experimental, ok, good].map(Arc::new);
        let r = recommend(
            &list,
            conditions(Trend::Bullish, Volatility::Medium),
            None,
            Unmeasured::Score,
        );
        assert_eq!(r.candidates, 2);
        let names: Vec<_> = r
            .recommendations
            .iter()
            .map(|r| r.strategy_name.as_str())
            .collect();
        assert_eq!(names, ["Good", "Ok"]);
        let limited = recommend(
            &list,
            conditions(Trend::Bullish, Volatility::Medium),
            Some(1),
            Unmeasured::Score,
        );
        assert_eq!(limited.recommendations.len(), 1);
        assert!(
            limited.message.contains("best 1 shown"),
            "{}",
            limited.message
        );
    }

    #[test]
    fn an_empty_registry_gives_an_empty_list_and_says_why() {
        let r = recommend(
            std::iter::empty(),
            conditions(Trend::Neutral, Volatility::Medium),
            None,
            Unmeasured::Score,
        );
        assert!(r.recommendations.is_empty());
        assert!(
            r.message.contains("no active, MEM-enabled strategy"),
            "{}",
            r.message
        );
    }
}
