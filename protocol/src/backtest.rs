//! Measured figures: backtests, walk-forwards and optimisations, run as queued jobs
//! (`backtest.run`, `queue.list`, `queue.cancel`), and their results as stored on a
//! strategy's registry version.
//!
//! A Freqtrade strategy is measured by the real `freqtrade backtesting` (and `hyperopt`
//! in a walk-forward), its figures read from Freqtrade's own result file; a native
//! strategy by memd's native engine over the same candles, with fees and slippage.

use crate::strategy::StrategyId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What measured a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BacktestEngine {
    /// `freqtrade backtesting` (and `hyperopt`), on the market data.
    Freqtrade,
    /// memd's native engine (the paper broker's fees and slippage).
    Native,
}

/// `backtest.run` params: what to measure and over which candles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BacktestParams {
    pub id: StrategyId,
    /// The last N days of the market data (default 30). Not with `timerange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Freqtrade's form, `20260101-20260201` (either side may be empty). Not with `days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timerange: Option<String>,
    /// A walk-forward of N folds (2 or more; `[backtest] folds`, 4, when 0 is given):
    /// each fold optimised in-sample, then tested out-of-sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk_forward: Option<u32>,
    /// Optimisation trials per fold (Freqtrade's hyperopt epochs; the native search's
    /// candidates). Default `[backtest] epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    /// The pairs (default: the strategy's deployment pairs; a native strategy's: its
    /// `native.pair`, else every pair of the market data at its timeframe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Vec<String>>,
    /// A native strategy's entries go through MEM, with a throwaway memory (the live
    /// memory is never touched). Default: the strategy's signals alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub through_mem: bool,
}

/// The figures of one backtest (or one fold's side). Ratios are fractions: 0.58 is 58%.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BacktestFigures {
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
    /// wins / trades (0 without trades).
    pub win_rate: f64,
    /// Profit in the stake currency.
    pub profit_abs: f64,
    /// Profit over the starting balance.
    pub profit_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpe: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sortino: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calmar: Option<f64>,
    /// The deepest fall of the equity from a peak, as a fraction of that peak.
    pub max_drawdown: f64,
    pub max_drawdown_abs: f64,
    /// Gross profit / gross loss (absent without a losing trade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profit_factor: Option<f64>,
    pub starting_balance: f64,
    pub final_balance: f64,
}

/// One point of an equity curve: the balance after the trades closed by `tsMs`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EquityPoint {
    pub ts_ms: i64,
    pub equity: f64,
}

/// Whether a result may stand for the strategy (`[backtest.validation]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ValidationStatus {
    Passed,
    Failed,
}

/// The validation rule's verdict, with each reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    pub status: ValidationStatus,
    /// Why: each rule checked, met or not (`12 trades, at least 10 needed`).
    pub reasons: Vec<String>,
}

/// One fold of a walk-forward: optimised on `inSample`, tested on `outOfSample`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Fold {
    pub index: u32,
    pub in_sample_from: DateTime<Utc>,
    pub in_sample_to: DateTime<Utc>,
    pub out_of_sample_from: DateTime<Utc>,
    pub out_of_sample_to: DateTime<Utc>,
    /// The parameters the in-sample optimisation chose.
    pub parameters: Map<String, Value>,
    pub in_sample: BacktestFigures,
    pub out_of_sample: BacktestFigures,
}

/// A walk-forward's folds and its totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WalkForward {
    pub folds: Vec<Fold>,
    /// Every fold's in-sample figures together, and their out-of-sample ones.
    pub in_sample: BacktestFigures,
    pub out_of_sample: BacktestFigures,
    /// The last fold's parameters: what `backtest.save` makes a new version of.
    pub parameters: Map<String, Value>,
}

/// A measurement, as stored on the strategy's registry version (`backtest_results`) and
/// answered by the job that made it: the figures and what makes them reproducible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BacktestResult {
    /// Marks a result memd measured (hand-typed figures have no such member).
    pub measured: bool,
    /// The queue job that made it.
    pub job_id: String,
    pub strategy_id: StrategyId,
    /// The registry version measured.
    pub version: String,
    pub engine: BacktestEngine,
    /// Freqtrade's version (`2026.9`), or memd's for the native engine.
    pub engine_version: String,
    pub pairs: Vec<String>,
    pub timeframe: String,
    /// The candles' range: the first candle's open time, the last one's close.
    pub data_from: DateTime<Utc>,
    pub data_to: DateTime<Utc>,
    /// The parameters the strategy ran with.
    pub parameters: Map<String, Value>,
    /// SHA-256 of the configuration the engine ran with (secrets excluded).
    pub config_hash: String,
    /// SHA-256 of the strategy's source file (a Freqtrade strategy), or of memd's native
    /// strategy's name and parameters.
    pub strategy_hash: String,
    /// The whole range (a plain backtest), or the out-of-sample folds (a walk-forward).
    pub figures: BacktestFigures,
    pub equity: Vec<EquityPoint>,
    pub validation: Validation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk_forward: Option<WalkForward>,
    /// Freqtrade's result file, kept under the job's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_file: Option<String>,
    pub finished_at: DateTime<Utc>,
    /// Wall time of the engine's work.
    pub seconds: f64,
}

/// What a queue job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QueueJobKind {
    Backtest,
    WalkForward,
}

/// Where a queue job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum QueueJobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// memd stopped while it ran (found at the next start).
    Interrupted,
}

impl QueueJobState {
    pub fn is_finished(self) -> bool {
        !matches!(self, QueueJobState::Queued | QueueJobState::Running)
    }
}

/// How far a running job is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QueueProgress {
    pub done: u64,
    pub total: u64,
    pub message: String,
}

/// One job of the queue (`queue.list`, the `queue.changed` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QueueJob {
    pub id: String,
    pub kind: QueueJobKind,
    pub strategy_id: StrategyId,
    pub strategy: String,
    pub params: BacktestParams,
    pub state: QueueJobState,
    pub queued_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<QueueProgress>,
    /// Why it failed (with the engine's last log lines), was cancelled or interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The job's own log (the engine's output).
    pub log_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<BacktestResult>>,
}

/// `queue.list` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueListParams {
    /// Finished jobs answered, newest first (default 50, at most 1,000); queued and
    /// running ones always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `queue.list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QueueList {
    /// Running, then queued (in order), then finished (newest first).
    pub jobs: Vec<QueueJob>,
    /// Jobs that may run at once (`[queue] parallel`).
    pub parallel: usize,
}

/// `queue.cancel` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueCancelParams {
    pub id: String,
}

/// `backtest.save` params: a walk-forward's parameters as a new registry version (never
/// applied to a running bot: deploy or reload it to use them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BacktestSaveParams {
    /// The walk-forward's queue job.
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_refuse_unknown_fields_and_read_camel_case() {
        let p: BacktestParams = serde_json::from_value(serde_json::json!({
            "id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec", "walkForward": 2, "throughMem": true
        }))
        .unwrap();
        assert_eq!(p.walk_forward, Some(2));
        assert!(p.through_mem);
        assert!(
            serde_json::from_value::<BacktestParams>(serde_json::json!({
                "id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec", "walkforward": 2
            }))
            .is_err()
        );
        assert!(QueueJobState::Interrupted.is_finished());
        assert!(!QueueJobState::Running.is_finished());
    }
}
