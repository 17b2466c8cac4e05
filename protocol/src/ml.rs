//! The trend-reversal model over the socket: training, versions, promotion, prediction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The 12 features, in the seed's order.
pub const FEATURE_NAMES: [&str; 12] = [
    "sma_5",
    "sma_20",
    "sma_50",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_position",
    "volume_ratio",
    "hl_range",
    "close_position",
    "oc_range",
];

/// Hyper-parameters of the gradient-boosted trees (the seed's by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HyperParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_trees: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples_split: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// The metric a new model must beat the current one on, on the same holdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionMetric {
    /// The seed's rule: accuracy at least 2 points higher.
    Accuracy,
    /// ROC-AUC at least the margin higher.
    RocAuc,
    /// Log-loss at least the margin lower.
    LogLoss,
}

/// `ml.train` params: everything optional, the daemon's config fills the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainParams {
    /// Pairs as Freqtrade names them (`ETH/BTC`); default: the configured ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<String>,
    /// `5m`, `1h`, ...; default: the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyper: Option<HyperParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_metric: Option<PromotionMetric>,
    /// Only each pair's last N days of candles (counted back from its newest candle);
    /// default: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

/// Holdout figures of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ModelMetrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1_score: f64,
    pub roc_auc: f64,
    pub log_loss: f64,
    /// Share of reversals in the holdout.
    pub base_rate: f64,
    /// Accuracy of always answering the majority class.
    pub baseline_accuracy: f64,
}

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Serving predictions.
    Current,
    /// Was current once, replaced since.
    Retired,
    /// Trained but not promoted (the reason says why).
    Rejected,
}

/// One model version: `models/trend_reversal/{version}/model_metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ModelVersion {
    /// `YYYYMMDD_HHMMSS`, the directory name.
    pub version: String,
    pub trained_at: DateTime<Utc>,
    pub status: ModelStatus,
    /// Why it was promoted or rejected.
    pub reason: String,
    /// The seed's `accuracy`, `precision`, `recall`, `f1_score`, plus AUC and baselines,
    /// at the top level of the file as in the seed.
    #[serde(flatten)]
    pub metrics: ModelMetrics,
    pub pairs: Vec<String>,
    pub timeframe: String,
    pub train_rows: usize,
    pub test_rows: usize,
    pub data_from: DateTime<Utc>,
    pub data_to: DateTime<Utc>,
    /// Where the holdout starts.
    pub split_at: DateTime<Utc>,
    pub training_seconds: f64,
    /// Feature name -> importance (sums to 1).
    pub feature_importances: Vec<(String, f64)>,
    pub hyper: Value,
}

/// `ml.train` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainReport {
    pub model: ModelVersion,
    pub promoted: bool,
    /// The current model's figures on the same holdout, when there was one.
    pub current_on_same_holdout: Option<ModelMetrics>,
    pub previous_version: Option<String>,
    /// Rows dropped per pair and why (gaps, invalid rows, warm-up, label horizon).
    pub data_notes: Vec<String>,
}

/// `ml.status` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatusReport {
    pub current: Option<ModelVersion>,
    pub versions: usize,
    /// A training run under way.
    pub training: bool,
    pub promotion_metric: PromotionMetric,
    pub promotion_margin: f64,
    /// Where candles are read from, and the pairs and timeframe trained on by default.
    pub market_data_dir: String,
    pub pairs: Vec<String>,
    pub timeframe: String,
    /// A problem loading the current model (it keeps serving the last good one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
}

/// `ml.history` result: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelHistory {
    pub versions: Vec<ModelVersion>,
}

/// `ml.promote` params: make a version current by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoteParams {
    pub version: String,
    pub reason: String,
}

/// `ml.rollback` params: back to an earlier version (default: the one before the
/// current).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One candle given to `ml.predict`: `[ts_ms, open, high, low, close, volume]`.
pub type CandleRow = [f64; 6];

/// `ml.predict` params: a pair (from its latest candles) or candles given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PredictParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
    /// Oldest first; at least 50 (the longest indicator's warm-up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candles: Vec<CandleRow>,
}

/// `ml.predict` result: the seed's `{is_reversal, confidence, direction}` and more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Prediction {
    pub is_reversal: bool,
    /// The model's probability of a reversal within the label horizon.
    pub confidence: f64,
    /// `bullish` (a trough ahead: price is below its 20-candle mean) or `bearish`.
    pub direction: String,
    pub model_version: String,
    /// The 12 features of the last candle, by name.
    pub features: Vec<(String, f64)>,
    /// Open time of the candle predicted from.
    pub candle_ts_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// Answered from the cache (same model, same last candle).
    pub cached: bool,
    /// How old the candle predicted from is: a prediction on stale candles is about
    /// another market than today's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<crate::market::Freshness>,
}

/// `model.progress` event data: a training run's stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TrainProgress {
    /// `reading`, `features`, `training`, `evaluating`, `saving`, `done`, `failed`.
    pub stage: String,
    pub done: u64,
    pub total: u64,
    pub message: String,
}

/// `model.changed` event data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ModelChanged {
    /// `trained`, `promoted`, `rejected`, `rolled_back`.
    pub action: String,
    pub version: String,
    pub current: Option<String>,
    pub reason: String,
}
