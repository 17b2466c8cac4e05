//! Params and results of the registry's methods: registration and change, versions,
//! trades and performance, parameters, relationships, MEM marks, import, audit.
//!
//! Field names are camelCase on the wire. Documents (`strategy`, `patch`) are in the
//! metadata file's own snake_case shape, so what a person reads in a file is what they
//! send.

use crate::strategy::{StrategyDetail, StrategyId, StrategyStatus, StrategySummary};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `strategies.register`: a new strategy, in either seed shape (the nested metadata
/// document or the flat camelCase entry). It gets a new id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterParams {
    pub strategy: Value,
    /// Overrides the document's status; `experimental` when neither says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StrategyStatus>,
}

/// `strategies.update`: a JSON merge patch (RFC 7396) over the `strategy` object of the
/// metadata document. `id` and `status` cannot be patched (status has its own methods).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateParams {
    pub id: StrategyId,
    pub patch: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `strategies.deprecate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeprecateParams {
    pub id: StrategyId,
    pub reason: String,
    /// Defaults to today (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// The strategy that replaces it; linked with `replaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_id: Option<StrategyId>,
}

/// `strategies.status`: active, experimental, archived (deprecated goes through
/// `strategies.deprecate`, which needs a reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetStatusParams {
    pub id: StrategyId,
    pub status: StrategyStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `strategies.tags`: tags to add and to remove.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagsParams {
    pub id: StrategyId,
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Params naming one strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdParams {
    pub id: StrategyId,
}

/// How two strategies relate. `from` is the subject: `from derived_from to`,
/// `from replaces to`, `from mem_enhanced_version to` (from is the MEM-enhanced version of to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipType {
    DerivedFrom,
    MemEnhancedVersion,
    CombinedWith,
    AlternativeTo,
    Replaces,
    PortfolioComponent,
}

/// A link between two strategies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    pub from: StrategyId,
    pub to: StrategyId,
    pub relationship: RelationshipType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How alike the two strategies are, 0 to 1 (the seed's `similarity_score`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_score: Option<f64>,
    pub created_at: DateTime<Utc>,
}

/// `strategies.link` and `strategies.unlink`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkParams {
    pub from: StrategyId,
    pub to: StrategyId,
    pub relationship: RelationshipType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How alike they are, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_score: Option<f64>,
}

/// `strategies.unlink` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unlinked {
    pub removed: bool,
}

/// `strategies.related`: strategies reachable through relationships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelatedParams {
    pub id: StrategyId,
    /// Only these types; empty means all.
    #[serde(default)]
    pub types: Vec<RelationshipType>,
    /// How many links to follow (default 1, at most 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
}

/// Which way a relationship points, seen from the strategy asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The asked-about side is the subject (`from`).
    Outgoing,
    Incoming,
}

/// One strategy found by `strategies.related`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelatedStrategy {
    pub relationship: RelationshipType,
    pub direction: Direction,
    /// 1 for a direct link.
    pub depth: u32,
    /// The strategy this one was reached from.
    pub via: StrategyId,
    pub strategy: StrategySummary,
}

/// `strategies.related` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelatedList {
    pub strategy_id: StrategyId,
    pub related: Vec<RelatedStrategy>,
}

/// Which part of a semantic version to increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionBump {
    Major,
    Minor,
    Patch,
}

/// `strategies.versions.create`: either `bump` from the current version or an explicit
/// `version` (greater than every existing one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVersionParams {
    pub id: StrategyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bump: Option<VersionBump>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub changelog: String,
    /// The parameters of this version; the strategy's current ones when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtest: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_hash: Option<String>,
    /// What this version breaks for its users (the seed's `breaking_changes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaking_changes: Option<String>,
    /// How to move to this version (the seed's `migration_notes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_notes: Option<String>,
    /// The parameters' defaults in this version's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_parameters: Option<Map<String, Value>>,
    /// The share of the strategy's code its tests cover, in percent (0 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_coverage: Option<f64>,
    /// How much MEM improved this version over the one it enhances, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_improvement_pct: Option<f64>,
}

/// Where a version stands with its validation (the seed's `validation_status`): pending
/// until one of memd's backtests of it passes or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionValidation {
    Pending,
    Passed,
    Failed,
}

/// `strategies.versions.approve`: a person approves a version (the seed's
/// `approved_by`, `approved_at`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveVersionParams {
    pub id: StrategyId,
    pub version: String,
    /// Who approves (default: the connected user's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One version of a strategy, as kept in `versions/{id}/{version}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub strategy_id: StrategyId,
    pub version_number: String,
    /// major, minor or patch, relative to the version before it; absent for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_type: Option<VersionBump>,
    pub changelog: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default)]
    pub backtest_results: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit_hash: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaking_changes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub default_parameters: Map<String, Value>,
    /// Absent in a version written before memd kept it: read as pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_status: Option<VersionValidation>,
    /// Percent of the code covered by tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_coverage: Option<f64>,
    /// The measured figures of memd's newest backtest of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpe_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub win_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_drawdown: Option<f64>,
    /// The backtest's return, compounded to a year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cagr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_improvement_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<DateTime<Utc>>,
    /// Whether this is the version the strategy runs now (one at a time).
    #[serde(default)]
    pub is_active: bool,
    /// When a newer version replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl VersionRecord {
    /// A new version made now: pending validation, not yet active, nothing else known.
    pub fn new(
        strategy_id: StrategyId,
        version_number: String,
        changelog: String,
        parameters: Map<String, Value>,
        created_by: String,
    ) -> VersionRecord {
        VersionRecord {
            strategy_id,
            version_number,
            version_type: None,
            changelog,
            parameters,
            backtest_results: Map::new(),
            code_snapshot: None,
            git_commit_hash: None,
            created_by,
            created_at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
            breaking_changes: None,
            migration_notes: None,
            default_parameters: Map::new(),
            validation_status: Some(VersionValidation::Pending),
            test_coverage: None,
            sharpe_ratio: None,
            win_rate: None,
            max_drawdown: None,
            cagr: None,
            mem_improvement_pct: None,
            approved_by: None,
            approved_at: None,
            is_active: false,
            deprecated_at: None,
            extra: Map::new(),
        }
    }
}

/// `strategies.versions.get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetVersionParams {
    pub id: StrategyId,
    pub version: String,
}

/// `strategies.versions.list` result, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionList {
    pub strategy_id: StrategyId,
    pub current_version: String,
    pub versions: Vec<VersionRecord>,
}

/// What a signal said: buy, sell or hold (case-insensitive on input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TradeAction {
    #[default]
    #[serde(alias = "buy", alias = "Buy", alias = "long", alias = "LONG")]
    Buy,
    #[serde(alias = "sell", alias = "Sell", alias = "short", alias = "SHORT")]
    Sell,
    #[serde(alias = "hold", alias = "Hold")]
    Hold,
}

/// One closed trade: the seed's TradePerformance fields, and the extra columns of its
/// `strategy_performance` table. Read in memd's camelCase names or in the seed's own
/// (`signal_action`, `entry_timestamp`, `was_mem_enhanced`, ...; naive timestamps are
/// UTC), so a line of the seed's `performance/{id}_trades.jsonl` is a valid trade.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TradeRecord {
    /// Unique per strategy; a trade id seen before is not counted twice.
    #[serde(alias = "trade_id")]
    pub trade_id: String,
    pub symbol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
    #[serde(alias = "signal_action")]
    pub action: TradeAction,
    /// The signal's confidence, 0 to 1.
    #[serde(
        default,
        alias = "signal_confidence",
        skip_serializing_if = "Option::is_none"
    )]
    pub confidence: Option<f64>,
    #[serde(alias = "entry_price")]
    pub entry_price: f64,
    #[serde(alias = "exit_price")]
    pub exit_price: f64,
    #[serde(alias = "entry_timestamp", deserialize_with = "seed_time::deserialize")]
    pub entry_time: DateTime<Utc>,
    #[serde(alias = "exit_timestamp", deserialize_with = "seed_time::deserialize")]
    pub exit_time: DateTime<Utc>,
    pub pnl: f64,
    /// The trade's return as a fraction: 0.04 is +4%.
    #[serde(alias = "pnl_pct", alias = "pnl_percentage")]
    pub pnl_pct: f64,
    /// Defaults to `pnl > 0`.
    #[serde(default, alias = "is_win", skip_serializing_if = "Option::is_none")]
    pub is_win: Option<bool>,
    #[serde(default, alias = "was_mem_enhanced")]
    pub mem_enhanced: bool,
    #[serde(
        default,
        alias = "mem_confidence_boost",
        skip_serializing_if = "Option::is_none"
    )]
    pub mem_confidence_boost: Option<f64>,
    #[serde(
        default,
        alias = "learned_pattern_applied",
        skip_serializing_if = "Option::is_none"
    )]
    pub learned_pattern: Option<String>,
    #[serde(
        default,
        alias = "market_regime",
        skip_serializing_if = "Option::is_none"
    )]
    pub market_regime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slippage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission: Option<f64>,
    /// The strategy's version the trade ran (a version number of its history, `1.2.0`).
    #[serde(default, alias = "version_id", skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// From entry to exit; filled in from the times when absent.
    #[serde(
        default,
        alias = "duration_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_seconds: Option<i64>,
    /// The worst price move while the trade was open, as a fraction of the entry price
    /// in the trade's favour (-0.02: 2% against it at worst); before fees.
    #[serde(
        default,
        alias = "max_adverse_excursion",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_adverse_excursion: Option<f64>,
    /// The best price move while the trade was open, as a fraction in its favour.
    #[serde(
        default,
        alias = "max_favorable_excursion",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_favorable_excursion: Option<f64>,
    /// The stop-loss price the trade was placed with.
    #[serde(default, alias = "stop_loss", skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<f64>,
    /// The take-profit price the trade was placed with.
    #[serde(
        default,
        alias = "take_profit",
        skip_serializing_if = "Option::is_none"
    )]
    pub take_profit: Option<f64>,
    /// MEM's reasoning for the decision that opened the trade.
    #[serde(
        default,
        alias = "mem_reasoning",
        skip_serializing_if = "Option::is_none"
    )]
    pub mem_reasoning: Option<String>,
    /// The bar's volume over its average when the trade opened.
    #[serde(
        default,
        alias = "volume_ratio",
        skip_serializing_if = "Option::is_none"
    )]
    pub volume_ratio: Option<f64>,
    /// When it was recorded (the seed's column): written by memd, ignored on input.
    #[serde(default, alias = "recorded_at", skip_serializing)]
    pub recorded_at: Option<serde::de::IgnoredAny>,
}

/// Trade timestamps: RFC 3339, or the seed's naive ISO form (`2025-10-21T05:11:50.590225`,
/// written by Python's `isoformat()`), which is taken as UTC.
pub mod seed_time {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer};

    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                    .ok()
                    .map(|n| n.and_utc())
            })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "bad time {text:?}: use RFC 3339 (2025-10-21T05:11:50Z) or the seed's 2025-10-21T05:11:50.590225 (UTC)"
            ))
        })
    }
}

/// `strategies.trades.record`: closed trades of one strategy, appended in one batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordTradesParams {
    pub id: StrategyId,
    pub trades: Vec<TradeRecord>,
}

/// `strategies.trades.record` result. Every recorded trade is on disk (fsynced) when this
/// arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedTrades {
    pub recorded: usize,
    /// Trade ids already in the log (or repeated in the batch), skipped.
    pub duplicates: Vec<String>,
    pub total_trades: u64,
}

/// A time range; either end open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// `strategies.trades.list`: closed trades by exit time, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTradesParams {
    pub id: StrategyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

/// `strategies.trades.list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeList {
    pub trades: Vec<TradeRecord>,
    pub total: usize,
}

/// `strategies.performance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PerformanceParams {
    pub id: StrategyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// Performance metrics over a set of closed trades (see `convention` in the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Number of trades.
    pub total_trades: u64,
    /// Trades with `is_win`.
    pub wins: u64,
    /// Trades without `is_win`.
    pub losses: u64,
    /// `wins / total_trades` as a fraction; `None` with no trades.
    pub win_rate: Option<f64>,
    /// Sum of the trades' `pnl`.
    pub total_pnl: f64,
    /// Mean `pnl` per trade; `None` with no trades.
    pub average_pnl: Option<f64>,
    /// Compounded daily returns, `prod(1 + r) - 1`.
    pub total_return: f64,
    /// Gross profit / gross loss; `None` when there is no losing trade (gross loss 0).
    pub profit_factor: Option<f64>,
    /// Annualized Sharpe ratio of the daily returns.
    pub sharpe_ratio: Option<f64>,
    /// Annualized Sortino ratio of the daily returns.
    pub sortino_ratio: Option<f64>,
    /// Maximum drawdown of the daily equity curve, <= 0.
    pub max_drawdown: f64,
    /// Compound annual growth rate over the day count.
    pub cagr: Option<f64>,
    /// Annualized volatility of the daily returns.
    pub annual_volatility: Option<f64>,
    /// Mean `exit - entry` in seconds; `None` with no trades.
    pub average_duration_secs: Option<f64>,
    /// Largest `pnl`; `None` with no trades.
    pub best_trade_pnl: Option<f64>,
    /// Smallest `pnl`; `None` with no trades.
    pub worst_trade_pnl: Option<f64>,
    /// Earliest exit, epoch ms; `None` with no trades.
    pub first_exit_ms: Option<i64>,
    /// Latest exit, epoch ms; `None` with no trades.
    pub last_exit_ms: Option<i64>,
}

/// `strategies.performance` result: all trades in the range, and the MEM-enhanced ones
/// beside the others (the seed's before/after comparison).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerformanceReport {
    pub strategy_id: StrategyId,
    pub strategy_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// How the ratios are computed (periods, annualisation, risk-free rate).
    pub convention: String,
    pub all: Metrics,
    pub mem_enhanced: Metrics,
    pub not_mem_enhanced: Metrics,
}

/// `strategies.compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareParams {
    pub ids: Vec<StrategyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// `strategies.compare` result, in the order asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub reports: Vec<PerformanceReport>,
}

/// Who changed a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangedBy {
    Manual,
    MemLearning,
    #[serde(alias = "optimization", alias = "backtest_optimization")]
    Optimisation,
}

/// `strategies.parameters.update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateParameterParams {
    pub id: StrategyId,
    pub name: String,
    pub value: Value,
    pub reason: String,
    #[serde(default = "manual")]
    pub changed_by: ChangedBy,
    /// The change is one arm of an A/B test (the seed's `is_ab_test`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_ab_test: bool,
    /// Which arm: `A`, `B`, `C`... (up to 8 letters or digits); needed with `isAbTest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab_test_group: Option<String>,
}

fn manual() -> ChangedBy {
    ChangedBy::Manual
}

/// One parameter change, as kept in `parameters/{id}.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterChange {
    pub strategy_id: StrategyId,
    pub parameter_name: String,
    pub old_value: Value,
    pub new_value: Value,
    pub change_reason: String,
    pub changed_by: ChangedBy,
    /// The uid of the client that asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uid: Option<u32>,
    pub changed_at: DateTime<Utc>,
    /// The strategy's version when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// When the value took effect ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_from: Option<DateTime<Utc>>,
    /// ... and when the next change of the same parameter replaced it (none: in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_to: Option<DateTime<Utc>>,
    /// The measured effect, from the strategy's closed trades (memd computes these when
    /// the history is read; see `strategies.parameters.history`): the Sharpe of the 30
    /// days before `appliedFrom`, of the span the value was in force, and the change in
    /// percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_sharpe: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_sharpe: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub improvement_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_ab_test: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab_test_group: Option<String>,
}

impl ParameterChange {
    /// A change made now (it applies from now; memd adds the version and measures it).
    pub fn new(
        strategy_id: StrategyId,
        parameter_name: String,
        old_value: Value,
        new_value: Value,
        change_reason: String,
        changed_by: ChangedBy,
        client_uid: Option<u32>,
    ) -> ParameterChange {
        // To the microsecond, as a database keeps it: a registry copied reads the same.
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        ParameterChange {
            strategy_id,
            parameter_name,
            old_value,
            new_value,
            change_reason,
            changed_by,
            client_uid,
            changed_at: now,
            version_id: None,
            applied_from: Some(now),
            applied_to: None,
            before_sharpe: None,
            after_sharpe: None,
            improvement_pct: None,
            is_ab_test: false,
            ab_test_group: None,
        }
    }
}

/// `strategies.parameters.update` result: the change as recorded in the history, and
/// what it did beyond the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterUpdate {
    #[serde(flatten)]
    pub change: ParameterChange,
    /// One sentence per effect: a running Freqtrade bot given the new value and told to
    /// reload its config, a native deployment that uses it from its next candle, or why
    /// the change is only recorded.
    #[serde(default)]
    pub applied: Vec<String>,
}

/// Registry parameters of a Freqtrade strategy that are Freqtrade config keys of the same
/// name: the daemon writes them into the bot's rendered config (at deploy, and when one
/// changes, followed by `POST /api/v1/reload_config`). Any other parameter of a Freqtrade
/// strategy (`rsi_period`, ...) lives in the strategy's Python code: it is only recorded.
pub const FREQTRADE_CONFIG_PARAMETERS: &[&str] = &[
    "minimal_roi",
    "stoploss",
    "trailing_stop",
    "trailing_stop_positive",
    "trailing_stop_positive_offset",
    "trailing_only_offset_is_reached",
    "stake_amount",
    "max_open_trades",
    "tradable_balance_ratio",
    "dry_run_wallet",
];

/// `strategies.parameters.history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterHistoryParams {
    pub id: StrategyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `strategies.parameters.history` result, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterHistory {
    pub changes: Vec<ParameterChange>,
}

/// `strategies.mem.mark_enhanced`: `id` is the MEM-enhanced version of `baseId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkEnhancedParams {
    pub id: StrategyId,
    pub base_id: StrategyId,
}

/// `strategies.mem.learned_patterns`: set the learned-pattern count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearnedPatternsParams {
    pub id: StrategyId,
    pub count: u64,
}

/// One document to import, with where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportDocument {
    pub source: String,
    pub document: Value,
}

/// `strategies.import`: documents in either seed shape. Ids in them are kept (a new id
/// is given to a document without one); an id already registered is an error for that
/// document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportParams {
    pub documents: Vec<ImportDocument>,
}

/// What became of one imported document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<StrategyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `strategies.import` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub imported: usize,
    pub failed: usize,
    pub results: Vec<ImportResult>,
}

/// `strategies.audit`: the newest entries, optionally of one strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<StrategyId>,
    /// Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// One mutation of the registry, as kept in `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// The uid of the client that asked, or absent for the daemon itself (reload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_id: Option<StrategyId>,
    /// What changed: the patch, the old and new status, ...
    pub changes: Value,
    /// Which server's memd acted, in a registry several share (PostgreSQL); absent in a
    /// registry on files, which is one server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// `strategies.audit` result, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

/// Results that are one strategy in full.
pub type StrategyResult = StrategyDetail;

/// `registry.migrate` params: where to copy this daemon's registry. The target must be
/// empty (a database with no strategy, or a directory without a registry); the daemon's
/// own registry is not changed and stays the one it runs on.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "camelCase", deny_unknown_fields)]
pub enum MigrateParams {
    /// A PostgreSQL database: `url` without a password; the password (read by memctl from
    /// a file, never on a command line) apart.
    #[serde(rename = "postgres", rename_all = "camelCase")]
    Postgres {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// This server's name in the database's audit (default: its host name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<String>,
    },
    /// A directory on the daemon's machine, for a registry on files.
    #[serde(rename = "files")]
    Files { dir: String },
}

impl std::fmt::Debug for MigrateParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrateParams::Postgres { url, server, .. } => f
                .debug_struct("Postgres")
                .field("url", url)
                .field("password", &"<redacted>")
                .field("server", server)
                .finish(),
            MigrateParams::Files { dir } => f.debug_struct("Files").field("dir", dir).finish(),
        }
    }
}

/// `registry.migrate` result: what was copied, counted again in the target, and a
/// checksum of every document and trade on both sides (equal, or the migration failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrateReport {
    /// `host:port/database`, or the directory.
    pub target: String,
    pub strategies: usize,
    pub versions: usize,
    pub parameter_changes: usize,
    pub relationships: usize,
    pub audit_entries: usize,
    pub trades: usize,
    /// SHA-256 over every document and trade, in id order, as read back from the target.
    pub checksum: String,
    pub seconds: f64,
}
