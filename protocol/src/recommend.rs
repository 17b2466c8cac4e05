//! Recommendations: which strategies suit the market now, and why, point by point.
//!
//! The request carries the seed's `MarketConditions` (trend, volatility, vix, indicators);
//! the result lists the recommended strategies best first, each with its score's
//! breakdown so that every point can be traced to a rule and an input.

use crate::strategy::StrategyId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The market's direction. Accepted words: `bullish`, `bearish`, `ranging`, `neutral`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Bullish,
    Bearish,
    Ranging,
    Neutral,
}

impl Trend {
    pub const ALL: [Trend; 4] = [
        Trend::Bullish,
        Trend::Bearish,
        Trend::Ranging,
        Trend::Neutral,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Bullish => "bullish",
            Trend::Bearish => "bearish",
            Trend::Ranging => "ranging",
            Trend::Neutral => "neutral",
        }
    }
}

impl fmt::Display for Trend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Trend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Trend::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown trend `{s}`; accepted: bullish, bearish, ranging, neutral")
            })
    }
}

/// The volatility regime. Accepted words: `low`, `medium`, `high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Volatility {
    Low,
    Medium,
    High,
}

impl Volatility {
    pub const ALL: [Volatility; 3] = [Volatility::Low, Volatility::Medium, Volatility::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Volatility::Low => "low",
            Volatility::Medium => "medium",
            Volatility::High => "high",
        }
    }
}

impl fmt::Display for Volatility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Volatility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Volatility::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown volatility `{s}`; accepted: low, medium, high"))
    }
}

/// `strategies.recommendations` params: the seed's `MarketConditions`. When neither
/// trend nor volatility is given, the daemon's computed market conditions are used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarketConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<Trend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<Volatility>,
    /// Informational: kept in the answer, not scored (as in the seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vix: Option<f64>,
    /// Informational: kept in the answer, not scored (as in the seed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub indicators: BTreeMap<String, f64>,
    /// At most this many recommendations (default 100; the message gives the full count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 18446744073709551615_u64))]
    pub limit: Option<usize>,
}

/// `strategies.recommendations.quick` params: the seed's query string, with its defaults
/// (`neutral`, `medium`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuickConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<Trend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<Volatility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 18446744073709551615_u64))]
    pub limit: Option<usize>,
}

/// Where the conditions a recommendation was scored against came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ConditionsSource {
    /// Given in the request (a missing word took the seed's default).
    Request,
    /// Computed by the daemon from market data.
    Computed,
}

/// The conditions the scores were computed against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AppliedConditions {
    pub trend: Trend,
    pub volatility: Volatility,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vix: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub indicators: BTreeMap<String, f64>,
    pub source: ConditionsSource,
    /// For computed conditions: the pair and why each label (absent when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed: Option<Box<ConditionsReport>>,
}

/// Which figures a strategy's Sharpe ratio and win rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MetricsSource {
    /// The performance log of live (or dry-run) trades: enough trades were recorded.
    Live,
    /// A backtest memd ran that passed validation (`performance.backtest.measured`).
    Backtest,
    /// Neither: the metadata's backtest figures were typed in, not measured; they earn no
    /// points (the breakdown says so).
    Unmeasured,
}

/// One rule's contribution to a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ScorePoint {
    /// The rule's short name: `base`, `trend`, `sharpe`, `winRate`, `volatility`.
    pub rule: String,
    /// Points added (0 when the rule did not apply).
    pub points: f64,
    /// Why, with the input values: `Sharpe ratio 1.45 > 1.0 (backtest)`.
    pub detail: String,
}

/// One recommended strategy: the seed's `StrategyRecommendation` plus its breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub strategy_id: StrategyId,
    pub strategy_name: String,
    pub category: String,
    /// 0.5 to 1.0, rounded to 2 decimals.
    pub confidence_score: f64,
    /// The seed's reason text: the matching phrases joined with ", ".
    pub reason: String,
    pub estimated_sharpe: Option<f64>,
    pub estimated_win_rate: Option<f64>,
    pub metrics_source: MetricsSource,
    /// Closed trades in the performance log.
    pub live_trades: u64,
    pub is_deployed: bool,
    /// Every rule, in order, with the points it gave; they sum to the score.
    pub breakdown: Vec<ScorePoint>,
}

/// `strategies.recommendations[.quick]` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Recommendations {
    pub conditions: AppliedConditions,
    /// Best first; only scores above 0.5.
    pub recommendations: Vec<Recommendation>,
    /// Active, MEM-enabled strategies that were scored.
    pub candidates: usize,
    /// The seed's message: `MEM recommends 3 strategies for bullish trend with medium
    /// volatility`, or why there are none.
    pub message: String,
    /// Closed trades from which live figures replace backtest ones.
    pub live_metrics_min_trades: u64,
}

/// `market.conditions` params: default the configured reference pair and timeframe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
}

/// `market.conditions` result: the labels, the values that decided them, the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConditionsReport {
    pub pair: String,
    pub timeframe: String,
    pub trend: Trend,
    pub volatility: Volatility,
    pub trend_reason: String,
    pub volatility_reason: String,
    pub indicators: BTreeMap<String, f64>,
    /// Open time of the last candle, epoch ms.
    pub candle_ts_ms: i64,
    pub candles: usize,
    /// How old the newest candle is: stale conditions describe another market than
    /// today's.
    #[serde(default)]
    pub freshness: crate::market::Freshness,
}
