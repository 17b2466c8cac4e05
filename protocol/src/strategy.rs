//! Strategies as they cross the socket, and the registry's metadata document.
//!
//! The metadata document is the seed design's nested shape
//! (`{"schema_version": "1.0.0", "strategy": {classification, implementation, parameters,
//! performance, mem_integration, requirements, risk_profile, metadata}}`, snake_case keys).
//! Every object keeps the members this version does not know in an `extra` map, so a file
//! written by another tool survives a rewrite unchanged. The list view is the seed API's
//! flat camelCase entry ([`StrategySummary`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A strategy id: a UUID and nothing else, so that it can never name a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
pub struct StrategyId(pub Uuid);

impl StrategyId {
    pub fn new_random() -> Self {
        StrategyId(Uuid::new_v4())
    }
}

impl fmt::Display for StrategyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for StrategyId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // Only the canonical hyphenated form: no braces, no urn: prefix, no simple form.
        if s.len() == 36 {
            if let Ok(uuid) = Uuid::parse_str(s) {
                return Ok(StrategyId(uuid));
            }
        }
        let shown: String = s.chars().take(80).collect();
        Err(format!(
            "strategy id must be a UUID like 4ce3a79b-c22b-4b42-9d87-3a58052a9eec, got {shown:?}"
        ))
    }
}

impl Serialize for StrategyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StrategyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl serde::de::Visitor<'_> for IdVisitor {
            type Value = StrategyId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a strategy id (a UUID)")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<StrategyId, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(IdVisitor)
    }
}

/// Where a strategy is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StrategyStatus {
    Active,
    Experimental,
    Deprecated,
    Archived,
}

impl StrategyStatus {
    pub const ALL: [StrategyStatus; 4] = [
        StrategyStatus::Active,
        StrategyStatus::Experimental,
        StrategyStatus::Deprecated,
        StrategyStatus::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyStatus::Active => "active",
            StrategyStatus::Experimental => "experimental",
            StrategyStatus::Deprecated => "deprecated",
            StrategyStatus::Archived => "archived",
        }
    }
}

impl fmt::Display for StrategyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StrategyStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        StrategyStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown status {s:?}; expected one of active, experimental, deprecated, archived"))
    }
}

/// Where a strategy came from: shipped with memd, imported, from research, or learned by MEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Shipped with memd (`built_in`, as in the seed design; `builtin` is read too).
    #[serde(rename = "built_in", alias = "builtin")]
    BuiltIn,
    Imported,
    Research,
    Learned,
}

/// One strategy in a list: the seed API's flat camelCase entry, plus a few fields a list
/// view needs (tags, version, risk level, origin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StrategySummary {
    pub id: StrategyId,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub category: String,
    pub sub_category: String,
    pub status: StrategyStatus,
    pub language: String,
    pub origin: Origin,
    pub version: String,
    pub tags: Vec<String>,
    pub mem_enabled: bool,
    pub sharpe_ratio: Option<f64>,
    pub win_rate: Option<f64>,
    pub risk_level: Option<String>,
    /// Closed trades in the performance log.
    pub live_trades: u64,
    /// Total P&L of those trades.
    pub total_pnl: Option<f64>,
    /// Sharpe ratio of those trades (as last summarised into the metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_sharpe_ratio: Option<f64>,
    /// Win rate of those trades (as last summarised into the metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_win_rate: Option<f64>,
    /// When the strategy last traded.
    pub last_used_at: Option<String>,
    /// Whether a deployment of this strategy is running. Always false until the
    /// supervisor exists.
    pub is_deployed: bool,
    /// The backtest memd measured (absent: the backtest figures are unmeasured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Box<MeasuredBacktest>>,
}

/// One strategy in full: its summary and its whole metadata document. Both are shared
/// (the daemon answers from its caches without copying either).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyDetail {
    #[serde(flatten)]
    pub summary: std::sync::Arc<StrategySummary>,
    /// The metadata file's content, in its own snake_case shape.
    pub metadata: std::sync::Arc<StrategyDocument>,
}

/// A metadata file: `{ "schema_version": ..., "strategy": {...} }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyDocument {
    pub schema_version: String,
    pub strategy: StrategyMeta,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `strategy` object of a metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyMeta {
    pub id: StrategyId,
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default = "default_status")]
    pub status: StrategyStatus,
    /// memd's addition to the seed schema; absent in seed files, read as `imported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    #[serde(default)]
    pub classification: Classification,
    #[serde(default)]
    pub implementation: Implementation,
    #[serde(default = "empty_object")]
    pub academic_foundation: Value,
    /// Either flat (`"rsi_period": 14`) or declared
    /// (`"rsi_period": {"value": 14, "type": "integer", "min": 2, "max": 50, ...}`).
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default)]
    pub performance: Performance,
    #[serde(default)]
    pub mem_integration: MemIntegration,
    #[serde(default = "empty_object")]
    pub requirements: Value,
    #[serde(default)]
    pub risk_profile: RiskProfile,
    #[serde(default)]
    pub metadata: Provenance,
    /// How memd runs it (see [`crate::deploy_spec`]); absent: decided by its language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<crate::deploy_spec::DeploymentSpec>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `strategy.classification`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub sub_category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub asset_classes: Vec<String>,
    /// Extra words for search.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `strategy.implementation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Implementation {
    /// `freqtrade`, `rust`, `python`, `csharp`, ...
    #[serde(default)]
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `strategy.performance`: backtest figures and the live summary kept up to date.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    #[serde(default)]
    pub backtest: Backtest,
    #[serde(default)]
    pub live_trading: LiveTrading,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `strategy.performance.backtest`: free-form in the seed; these members are the ones read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpe_ratio: Option<f64>,
    /// A fraction: 0.62 means 62%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub win_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_trades: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_return: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_drawdown: Option<f64>,
    /// Written by memd when one of its backtests passes validation; the only backtest
    /// figures a recommendation uses (hand-typed ones are unmeasured). Clients cannot
    /// write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<MeasuredBacktest>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A backtest memd ran that passed validation: its figures and what they were measured
/// on (the whole result is on the version: `strategies.versions.get`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeasuredBacktest {
    pub job_id: String,
    /// The registry version measured.
    pub version: String,
    pub engine: crate::backtest::BacktestEngine,
    pub pairs: Vec<String>,
    pub timeframe: String,
    pub data_from: chrono::DateTime<chrono::Utc>,
    pub data_to: chrono::DateTime<chrono::Utc>,
    pub trades: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpe_ratio: Option<f64>,
    /// A fraction.
    pub win_rate: f64,
    pub max_drawdown: f64,
    pub total_return: f64,
    pub finished_at: chrono::DateTime<chrono::Utc>,
}

impl MeasuredBacktest {
    /// `backtest of 1.0.0 (freqtrade) on ETH/USDT, BTC/USDT 5m, 2026-11-01 to 2026-12-01`.
    pub fn words(&self) -> String {
        format!(
            "backtest of {} ({}) on {} {}, {} to {}",
            self.version,
            match self.engine {
                crate::backtest::BacktestEngine::Freqtrade => "freqtrade",
                crate::backtest::BacktestEngine::Native => "native",
            },
            self.pairs.join(", "),
            self.timeframe,
            self.data_from.format("%Y-%m-%d"),
            self.data_to.format("%Y-%m-%d")
        )
    }
}

/// `strategy.performance.live_trading`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveTrading {
    #[serde(default)]
    pub total_trades: u64,
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub live_sharpe: Option<f64>,
    #[serde(default)]
    pub live_win_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_pnl: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `strategy.mem_integration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemIntegration {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhancement_type: Option<String>,
    #[serde(default)]
    pub learned_patterns_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_version: Option<String>,
    /// For a MEM-enhanced version: the strategy it enhances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_strategy_id: Option<StrategyId>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for MemIntegration {
    fn default() -> Self {
        MemIntegration {
            enabled: true,
            enhancement_type: None,
            learned_patterns_count: 0,
            mem_version: None,
            base_strategy_id: None,
            extra: Map::new(),
        }
    }
}

/// `strategy.risk_profile`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_level: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `strategy.metadata`: who made it and when, and its deprecation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub last_backtest: Option<String>,
    #[serde(default)]
    pub deprecation_date: Option<String>,
    #[serde(default)]
    pub replacement_strategy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_reason: Option<String>,
    /// When the strategy last traded (the newest exit in its performance log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_version() -> String {
    "1.0.0".into()
}

fn default_status() -> StrategyStatus {
    StrategyStatus::Experimental
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn yes() -> bool {
    true
}

impl StrategyDocument {
    /// The flat list entry for this document.
    pub fn summary(&self, is_deployed: bool) -> StrategySummary {
        let s = &self.strategy;
        StrategySummary {
            id: s.id,
            name: s.name.clone(),
            display_name: if s.display_name.is_empty() {
                s.name.clone()
            } else {
                s.display_name.clone()
            },
            description: s.description.clone(),
            category: s.classification.category.clone(),
            sub_category: s.classification.sub_category.clone(),
            status: s.status,
            language: s.implementation.language.clone(),
            origin: s.origin.unwrap_or(Origin::Imported),
            version: s.version.clone(),
            tags: s.classification.tags.clone(),
            mem_enabled: s.mem_integration.enabled,
            sharpe_ratio: s.performance.backtest.sharpe_ratio,
            win_rate: s.performance.backtest.win_rate,
            risk_level: s.risk_profile.risk_level.clone(),
            live_trades: s.performance.live_trading.total_trades,
            total_pnl: s.performance.live_trading.total_pnl,
            live_sharpe_ratio: s.performance.live_trading.live_sharpe,
            live_win_rate: s.performance.live_trading.live_win_rate,
            last_used_at: s.metadata.last_used_at.clone(),
            is_deployed,
            measured: s.performance.backtest.measured.clone().map(Box::new),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample_document() -> StrategyDocument {
        serde_json::from_value(json!({
            "schema_version": "1.0.0",
            "strategy": {
                "id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec",
                "name": "freqtrade_macd_hunter",
                "display_name": "Freqtrade MACD Hunter",
                "description": "MACD momentum",
                "status": "active",
                "classification": {"category": "momentum", "sub_category": "macd_momentum", "tags": ["macd"], "style": "x"},
                "implementation": {"language": "freqtrade", "class_name": "MACD_Aggressive"},
                "parameters": {"macd_fast": 12},
                "performance": {"backtest": {"sharpe_ratio": 1.45, "win_rate": 0.58, "best_pair": "ETH/USDT"}},
                "risk_profile": {"risk_level": "medium_high", "max_leverage": 2.0},
                "future_section": {"kept": true}
            },
            "top_level_extra": 1
        }))
        .unwrap()
    }

    pub(crate) fn sample_summary() -> StrategySummary {
        sample_document().summary(false)
    }

    pub(crate) fn sample_detail() -> StrategyDetail {
        StrategyDetail {
            summary: std::sync::Arc::new(sample_summary()),
            metadata: std::sync::Arc::new(sample_document()),
        }
    }

    #[test]
    fn unknown_members_survive_a_rewrite() {
        let doc = sample_document();
        let text = serde_json::to_value(&doc).unwrap();
        assert_eq!(text["strategy"]["future_section"], json!({"kept": true}));
        assert_eq!(text["strategy"]["classification"]["style"], json!("x"));
        assert_eq!(
            text["strategy"]["performance"]["backtest"]["best_pair"],
            json!("ETH/USDT")
        );
        assert_eq!(text["top_level_extra"], json!(1));
        let back: StrategyDocument = serde_json::from_value(text).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn summary_is_the_seed_flat_entry() {
        let v = serde_json::to_value(sample_summary()).unwrap();
        for key in [
            "id",
            "name",
            "displayName",
            "description",
            "category",
            "status",
            "language",
            "memEnabled",
            "sharpeRatio",
            "winRate",
            "isDeployed",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["sharpeRatio"], json!(1.45));
        assert_eq!(
            v["origin"],
            json!("imported"),
            "seed files without origin read as imported"
        );
    }

    #[test]
    fn ids_are_canonical_uuids_only() {
        assert!(
            "4ce3a79b-c22b-4b42-9d87-3a58052a9eec"
                .parse::<StrategyId>()
                .is_ok()
        );
        for bad in [
            "",
            "..",
            "../x",
            "4ce3a79bc22b4b429d873a58052a9eec",
            "{4ce3a79b-c22b-4b42-9d87-3a58052a9eec}",
            "4ce3a79b-c22b-4b42-9d87-3a58052a9eeg",
        ] {
            let err = bad.parse::<StrategyId>().unwrap_err();
            assert!(err.contains("UUID"), "{bad}: {err}");
        }
    }
}
