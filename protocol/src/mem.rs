//! MEM signal enhancement over the socket: a base signal in, an enhanced one out, with
//! every input and weight that made its confidence.

use crate::recommend::ScorePoint;
use serde::{Deserialize, Serialize};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum SignalAction {
    #[serde(alias = "buy")]
    Buy,
    #[serde(alias = "sell")]
    Sell,
    #[serde(alias = "hold")]
    Hold,
}

/// A strategy's own signal, before enhancement (the seed's `{action, confidence, symbol}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseSignal {
    /// The strategy's name or id, for the reasoning and (later) its memory.
    pub strategy: String,
    pub symbol: String,
    pub action: SignalAction,
    /// 0 to 1.
    pub confidence: f64,
}

/// A learned pattern that matches now, as memory reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatternMatch {
    pub name: String,
    /// Its win rate, 0 to 1.
    pub win_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trades: Option<u64>,
}

/// `mem.enhance` params. ML and memory inputs are looked up when not given: the ML
/// prediction from the current model and the symbol's candles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnhanceParams {
    pub signal: BaseSignal,
    /// The model's reversal probability, if the caller has it (else the daemon asks the
    /// current model for the symbol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_confidence: Option<f64>,
    /// `bullish` or `bearish`, with `mlConfidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_direction: Option<String>,
    /// A matching learned pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<PatternMatch>,
    /// ATR as a percentage of the price (default: from the symbol's candles, else 1%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility_pct: Option<f64>,
    /// The discretised market state now (`BUY|trend=bullish|volatility=medium|rsi=neutral`),
    /// what learned patterns are matched on; computed from the symbol's candles when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The symbol's trend, with `adx`, for the regime rules (default: from the symbol's
    /// candles when `volatilityPct` is not given either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<crate::recommend::Trend>,
    /// ADX(14) of the symbol, with `trend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adx: Option<f64>,
}

/// The enhanced signal, in the seed's shape plus the breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct EnhancedSignal {
    pub action: SignalAction,
    pub symbol: String,
    /// The weighted confidence, rounded to 2 decimals.
    pub confidence: f64,
    /// Fraction of capital.
    pub position_size: f64,
    /// Percent, negative: `-1.5` is 1.5% below the entry.
    pub stop_loss: f64,
    /// Percent above the entry.
    pub take_profit: f64,
    pub reasoning: String,
    pub base_confidence: f64,
    pub ml_confidence: Option<f64>,
    pub memory_confidence: Option<f64>,
    pub learned_strategy: Option<String>,
    /// `Low`, `Medium`, `High`.
    pub risk: String,
    /// Each input's weighted contribution; they sum to the unrounded confidence.
    pub breakdown: Vec<ScorePoint>,
    /// Where the memory confidence came from (a pattern, or the last decisions' record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_basis: Option<String>,
    /// False when the confidence is below the strategy's threshold (set by the learning
    /// loop): the signal should not be acted on.
    #[serde(default = "yes")]
    pub actionable: bool,
    /// The regime rules that adapted the stops, size and targets (the seed's
    /// ParameterAdapter: `high_volatility`, `strong_uptrend`, `choppy`), each with its
    /// effect; empty when none applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regime_rules: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A decision as the memory keeps it (`decisions.jsonl`, snake_case like the seed's files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub struct Decision {
    pub id: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub strategy: String,
    pub symbol: String,
    pub action: SignalAction,
    pub price: f64,
    pub base_confidence: f64,
    pub confidence: f64,
    pub ml_confidence: Option<f64>,
    pub memory_confidence: Option<f64>,
    pub learned_pattern: Option<String>,
    pub position_size: f64,
    pub stop_loss: f64,
    pub take_profit: f64,
    pub reasoning: String,
    /// The discretised market state at entry (see [`EnhanceParams::signature`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The trend-reversal model version whose prediction went into `ml_confidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Not MEM's decision but one observed: a Freqtrade bot whose strategy does not
    /// consult MEM entered on its own, and its closed trade was recorded as a decision
    /// (at its entry) and an outcome, so the learning loop sees every bot. Its confidences
    /// and size are 0: MEM gave none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub observed: bool,
    /// Who asked for it, as memd names its callers: `bot <deployment id>` (a Freqtrade
    /// bot's memd mixin, or its observed trade), `tradingview webhook` (an alert), `http`
    /// (the HTTP API); absent for a socket client's `mem.decide` and native strategies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Filled in when the trade closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// How a decision's trade ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub struct Outcome {
    pub decision_id: String,
    pub closed_at: chrono::DateTime<chrono::Utc>,
    pub exit_price: f64,
    pub pnl: f64,
    pub pnl_pct: f64,
    pub win: bool,
    /// Why the trade closed, as its runner says (`stop_loss`, `roi`, `exit_signal`,
    /// `force_exit`, ...), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
    /// How long the trade was open, in seconds (from the decision when the runner does not
    /// say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<i64>,
}

/// `mem.decide` params: enhance a signal and log the decision taken at `price`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecideParams {
    #[serde(flatten)]
    pub enhance: EnhanceParams,
    pub price: f64,
    /// The decision's id, when the caller chooses it (a UUID not used before): a bot's
    /// memd mixin ties its trade to the decision without waiting for the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `mem.outcome` params: the trade of a logged decision closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutcomeParams {
    pub decision_id: String,
    pub exit_price: f64,
    pub pnl: f64,
    /// A fraction: 0.0077 is +0.77%.
    pub pnl_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the trade closed (`stop_loss`, `roi`, `force_exit`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
}

/// `mem.decisions` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// Default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `mem.decisions` result: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionList {
    pub decisions: Vec<Decision>,
    /// Lines of decisions.jsonl that could not be read (a torn last line after a crash).
    pub unreadable_lines: usize,
}

/// `mem.outcome` result: the outcome, and what the performance monitor changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeReport {
    pub outcome: Outcome,
    /// Parameter adjustments this outcome triggered (`parameter_updates.json`'s items).
    pub adjustments: Vec<serde_json::Value>,
    /// Why the monitor could not run, if it could not (a broken hand edit, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_error: Option<String>,
}

/// `mem.parameters` result: what the learning loop has set, per strategy, and the dated
/// history as `parameter_updates.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterState {
    /// Strategy -> `{position_size_multiplier, confidence_threshold, judged_at_closed}`.
    pub current: serde_json::Map<String, serde_json::Value>,
    /// The file's content: date -> `{timestamp, parameters, adjustments, performance_context}`.
    pub history: serde_json::Value,
}

/// Whether a learned strategy is still used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnedStatus {
    Active,
    Deprecated,
}

/// What made a pattern a learned strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternEvidence {
    /// Times the signature was seen at entry among the parent's last closed decisions.
    pub occurrences: u64,
    pub wins: u64,
    pub win_rate: f64,
    /// Closed decisions looked at.
    pub window: u64,
}

/// One entry of `mem_knowledge/learned_strategies.json` (snake_case, like the other
/// memory files): a market-state pattern of a strategy promoted to a strategy of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedStrategy {
    pub name: String,
    /// The registry strategy created for it (origin `learned`).
    #[serde(default)]
    pub strategy_id: Option<crate::strategy::StrategyId>,
    /// The strategy whose decisions it was found in (as decisions name it).
    pub parent: String,
    #[serde(default)]
    pub parent_id: Option<crate::strategy::StrategyId>,
    pub signature: String,
    pub discovered_at: chrono::DateTime<chrono::Utc>,
    pub evidence: PatternEvidence,
    /// Decisions taken since, on this pattern, that closed.
    #[serde(default)]
    pub trades: u64,
    #[serde(default)]
    pub wins: u64,
    pub status: LearnedStatus,
    #[serde(default)]
    pub deprecated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub deprecation_reason: Option<String>,
}

impl LearnedStrategy {
    /// The win rate enhancement uses: its own once it has traded enough, else the evidence's.
    pub fn current_win_rate(&self) -> f64 {
        if self.trades >= 5 {
            self.wins as f64 / self.trades as f64
        } else {
            self.evidence.win_rate
        }
    }
}

/// `mem.patterns` params: optionally one parent strategy's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatternsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// A signature's record among a strategy's recent closed decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternStat {
    pub strategy: String,
    pub signature: String,
    pub occurrences: u64,
    pub wins: u64,
    pub win_rate: f64,
}

/// `mem.patterns` result: the learned strategies, and the signatures being watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternList {
    pub learned: Vec<LearnedStrategy>,
    /// Each strategy's signatures over its last closed decisions (the discovery window).
    pub candidates: Vec<PatternStat>,
    /// Why learned_strategies.json is not in force, when a hand edit broke it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_error: Option<String>,
}

/// `memory.changed` data: a memory file changed (by memd or by hand) and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MemoryChanged {
    /// The file's name in `mem_knowledge/`.
    pub file: String,
    /// Whether its content is in force (false: a broken edit, ignored).
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// `mem.metrics` result: how MEM and the bots' polls are doing, measured in the daemon.
///
/// Latencies cover a sliding window (`windowSecs`, the last hour, at most the last 10,000
/// samples of each); `totalCount` and `totalMs` count every sample since memd started (what
/// a Prometheus summary's `_count` and `_sum` are). Decisions and outcomes are counted when
/// memd logs them, in one-minute buckets (a replay's decisions count when they are
/// replayed, not at their candles' times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MemMetrics {
    pub at: chrono::DateTime<chrono::Utc>,
    pub uptime_secs: u64,
    /// The latency window, in seconds.
    pub window_secs: u64,
    /// Decisions logged in the last hour.
    pub decisions_per_hour: u64,
    /// Decisions logged since memd started.
    pub decisions_total: u64,
    /// Outcomes recorded in the last 24 hours, and how many of them were wins.
    pub closed_24h: u64,
    pub wins_24h: u64,
    /// `wins24h / closed24h`; absent without a closed decision in the last 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub win_rate_24h: Option<f64>,
    /// Outcomes recorded since memd started.
    pub outcomes_total: u64,
    /// The trend-reversal model's prediction for an enhancement.
    pub prediction_latency_ms: LatencyStats,
    /// A whole enhancement: prediction, market state, memory, the enhanced signal.
    pub enhancement_time_ms: LatencyStats,
    /// Loading the memory at start, and each reload of a memory file (a hand edit); not
    /// windowed: the start's load stays in the figures.
    pub memory_load_ms: LatencyStats,
    pub learned_strategies: LearnedCounts,
    /// One entry per running Freqtrade bot, by deployment.
    pub bot_polls: Vec<BotPollMetrics>,
}

/// Figures of one latency, in milliseconds; the window's figures are absent without a
/// sample in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LatencyStats {
    /// Samples in the window.
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The latest sample (kept when the window has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<f64>,
    /// Samples since memd started, and their sum.
    pub total_count: u64,
    pub total_ms: f64,
}

/// Learned strategies by status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LearnedCounts {
    pub active: u64,
    pub deprecated: u64,
}

/// How long the supervisor's polls of one bot's REST API take (health, open trades, profit;
/// balance and state once a minute; new closed trades when there are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BotPollMetrics {
    pub deployment_id: crate::deploy::DeploymentId,
    pub strategy_id: crate::strategy::StrategyId,
    pub strategy_name: String,
    pub poll_latency_ms: LatencyStats,
    /// Polls its API did not answer, since memd started.
    pub failed_polls: u64,
}

/// `mem.key.rotate`: the memory's files re-encrypted with a new key, now in `keyFile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRotation {
    /// The key file that now holds the new key (the old key is gone from it; a backup
    /// made before keeps its own copy).
    pub key_file: String,
    /// Memory files re-encrypted (logs, archives, documents).
    pub files: u64,
    /// Records in them (log lines, documents).
    pub records: u64,
    /// How long the memory's writes waited.
    pub millis: u64,
}
