//! The two shapes a strategy arrives in: the seed's nested metadata document
//! (`{"schema_version", "strategy": {...}}`, snake_case) and the flat camelCase entry of
//! the seed API's examples (`{"id", "name", "displayName", "category", "sharpeRatio", ...}`).
//! Both become a [`StrategyDocument`]; members neither shape defines are kept.

use super::validate::FieldError;
use mem_protocol::strategy::StrategyDocument;
use serde_json::{Map, Value, json};

/// Reads a document in either shape. `id` may be absent (the caller assigns one).
pub fn to_document(input: &Value) -> Result<(StrategyDocument, bool), FieldError> {
    let Some(obj) = input.as_object() else {
        return Err(FieldError {
            field: "strategy".into(),
            message: "must be a JSON object".into(),
        });
    };
    let mut nested = if obj.get("strategy").is_some_and(Value::is_object) {
        input.clone()
    } else {
        flat_to_nested(obj)?
    };
    let root = nested.as_object_mut().expect("an object");
    root.entry("schema_version")
        .or_insert_with(|| json!("1.0.0"));
    let strategy = root
        .get_mut("strategy")
        .and_then(Value::as_object_mut)
        .expect("a strategy object");
    let had_id = strategy.get("id").is_some_and(|v| !v.is_null());
    if !had_id {
        // A placeholder, replaced by the caller; it keeps the typed parse simple.
        strategy.insert("id".into(), json!("00000000-0000-4000-8000-000000000000"));
    }
    let doc = parse(nested)?;
    Ok((doc, had_id))
}

/// Parses a nested document; the error names the path of the bad member.
pub fn parse(value: Value) -> Result<StrategyDocument, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        FieldError {
            field: if path == "." { "document".into() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// Parses a document from a file's bytes.
pub fn parse_bytes(bytes: &[u8]) -> Result<StrategyDocument, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        FieldError {
            field: if path == "." { "document".into() } else { path },
            message: e.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|e| FieldError {
        field: "document".into(),
        message: format!("trailing data: {e}"),
    })?;
    Ok(doc)
}

/// Where each flat camelCase member goes in the nested document.
const FLAT_FIELDS: &[(&str, &[&str])] = &[
    ("id", &["id"]),
    ("name", &["name"]),
    ("displayName", &["display_name"]),
    ("description", &["description"]),
    ("version", &["version"]),
    ("status", &["status"]),
    ("origin", &["origin"]),
    ("category", &["classification", "category"]),
    ("subCategory", &["classification", "sub_category"]),
    ("complexity", &["classification", "complexity"]),
    ("tags", &["classification", "tags"]),
    ("assetClasses", &["classification", "asset_classes"]),
    ("keywords", &["classification", "keywords"]),
    ("language", &["implementation", "language"]),
    ("filePath", &["implementation", "file_path"]),
    ("className", &["implementation", "class_name"]),
    ("entryPoint", &["implementation", "entry_point"]),
    ("parameters", &["parameters"]),
    ("memEnabled", &["mem_integration", "enabled"]),
    ("sharpeRatio", &["performance", "backtest", "sharpe_ratio"]),
    ("winRate", &["performance", "backtest", "win_rate"]),
    ("numTrades", &["performance", "backtest", "num_trades"]),
    ("totalReturn", &["performance", "backtest", "total_return"]),
    ("maxDrawdown", &["performance", "backtest", "max_drawdown"]),
    ("riskLevel", &["risk_profile", "risk_level"]),
    ("createdBy", &["metadata", "created_by"]),
];

/// Members of the flat entry that are runtime state, not metadata.
const FLAT_RUNTIME: &[&str] = &["isDeployed"];

/// Nests a flat entry. Members neither shape defines are kept as they came; then each flat
/// member goes to its place, into an object of that name if one was given (a flat member
/// wins over the same member given nested). A member given where an object must hold a
/// flat one (`"classification": 5` beside `"tags"`) is an error naming it.
fn flat_to_nested(flat: &Map<String, Value>) -> Result<Value, FieldError> {
    let mut strategy = Map::new();
    let mut placed = Vec::new();
    for (key, value) in flat {
        if FLAT_RUNTIME.contains(&key.as_str()) {
            continue;
        }
        match FLAT_FIELDS.iter().find(|(k, _)| k == key) {
            Some((_, path)) => placed.push((key, *path, value)),
            None => {
                strategy.insert(key.clone(), value.clone()); // kept as it came
            }
        }
    }
    for (key, path, value) in placed {
        let mut node = &mut strategy;
        let mut at = String::from("strategy");
        for part in &path[..path.len() - 1] {
            at.push('.');
            at.push_str(part);
            node = node
                .entry(*part)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or_else(|| FieldError {
                    field: at.clone(),
                    message: format!("must be an object: the flat member `{key}` goes into it"),
                })?;
        }
        node.insert(path[path.len() - 1].to_string(), value.clone());
    }
    Ok(json!({ "schema_version": "1.0.0", "strategy": strategy }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_flat_entry_becomes_a_document() {
        let flat = json!({
            "id": "186062cd-e0f7-45eb-b387-3067360efe34",
            "name": "freqtrade_conservative_rsi",
            "displayName": "Freqtrade Conservative RSI",
            "description": "Conservative RSI-based trading strategy via Freqtrade...",
            "category": "mean_reversion",
            "status": "active",
            "language": "freqtrade",
            "memEnabled": true,
            "sharpeRatio": 1.15,
            "winRate": 0.62,
            "isDeployed": false,
            "customField": {"kept": 1}
        });
        let (doc, had_id) = to_document(&flat).unwrap();
        assert!(had_id);
        let s = &doc.strategy;
        assert_eq!(s.display_name, "Freqtrade Conservative RSI");
        assert_eq!(s.classification.category, "mean_reversion");
        assert_eq!(s.implementation.language, "freqtrade");
        assert_eq!(s.performance.backtest.sharpe_ratio, Some(1.15));
        assert_eq!(s.performance.backtest.win_rate, Some(0.62));
        assert_eq!(s.extra.get("customField"), Some(&json!({"kept": 1})));
        assert!(!s.extra.contains_key("isDeployed"));
    }

    /// Found by `daemon/tests/fuzz.rs`: a flat entry with a member kept as it came where a
    /// flat member must go (`"classification": null` beside `"tags"`, or `"implementation"`
    /// beside `"language"`) panicked ("intermediate objects"); `strategies.register` and
    /// `strategies.import` read client documents with this. Which one won also depended on
    /// the members' alphabetical order.
    #[test]
    fn a_flat_member_cannot_go_into_a_non_object() {
        for (flat, field) in [
            (
                json!({"classification": null, "tags": []}),
                "strategy.classification",
            ),
            (
                json!({"implementation": 1, "language": "rust"}),
                "strategy.implementation",
            ),
            (
                json!({"performance": {"backtest": 2}, "sharpeRatio": 1.0}),
                "strategy.performance.backtest",
            ),
        ] {
            let e = to_document(&flat).unwrap_err();
            assert_eq!(e.field, field, "{flat}: {e}");
            assert!(e.message.contains("must be an object"), "{e}");
        }
        // An object given nested is filled, whatever the members' order.
        let flat = json!({
            "name": "x",
            "classification": {"sub_category": "s", "category": "nested"},
            "category": "c",
            "performance": {"live_trading": {"total_trades": 3}},
            "winRate": 0.5,
        });
        let (doc, _) = to_document(&flat).unwrap();
        let c = &doc.strategy.classification;
        assert_eq!((c.category.as_str(), c.sub_category.as_str()), ("c", "s"));
        assert_eq!(doc.strategy.performance.backtest.win_rate, Some(0.5));
        assert_eq!(doc.strategy.performance.live_trading.total_trades, 3);
    }

    #[test]
    fn errors_name_the_path() {
        let bad = json!({"strategy": {"name": "x", "classification": {"category": "c"}, "performance": {"backtest": {"num_trades": -3}}}});
        let e = to_document(&bad).unwrap_err();
        assert_eq!(e.field, "strategy.performance.backtest.num_trades", "{e}");
    }
}

/// Only the members the index needs, borrowed from a file's bytes; everything else is
/// skipped without being built. Start-up reads 100,000 files with this, and leaves the
/// full check to a background pass.
pub mod view {
    use super::super::index::IndexFields;
    use mem_protocol::strategy::{MeasuredBacktest, Origin, StrategyId, StrategyStatus};
    use serde::{Deserialize, Serialize};
    use std::borrow::Cow;

    #[derive(Deserialize, Serialize)]
    struct Doc<'a> {
        #[serde(borrow)]
        strategy: Strategy<'a>,
    }

    fn default_version() -> Cow<'static, str> {
        Cow::Borrowed("1.0.0")
    }

    fn yes() -> bool {
        true
    }

    #[derive(Deserialize, Serialize)]
    struct Strategy<'a> {
        id: StrategyId,
        #[serde(borrow)]
        name: Cow<'a, str>,
        #[serde(default, borrow)]
        display_name: Cow<'a, str>,
        #[serde(default, borrow)]
        description: Cow<'a, str>,
        #[serde(default = "default_version", borrow)]
        version: Cow<'a, str>,
        #[serde(default)]
        status: Option<StrategyStatus>,
        #[serde(default)]
        origin: Option<Origin>,
        #[serde(default, borrow)]
        classification: Classification<'a>,
        #[serde(default, borrow)]
        implementation: Implementation<'a>,
        #[serde(default)]
        performance: Performance,
        #[serde(default)]
        mem_integration: Mem,
        #[serde(default, borrow)]
        risk_profile: Risk<'a>,
        #[serde(default, borrow)]
        metadata: Meta<'a>,
    }

    #[derive(Deserialize, Serialize, Default)]
    struct Classification<'a> {
        #[serde(default, borrow)]
        category: Cow<'a, str>,
        #[serde(default, borrow)]
        sub_category: Cow<'a, str>,
        #[serde(default, borrow)]
        tags: Vec<Cow<'a, str>>,
        #[serde(default, borrow)]
        asset_classes: Vec<Cow<'a, str>>,
        #[serde(default, borrow)]
        keywords: Vec<Cow<'a, str>>,
    }

    #[derive(Deserialize, Serialize, Default)]
    struct Implementation<'a> {
        #[serde(default, borrow)]
        language: Cow<'a, str>,
    }

    #[derive(Deserialize, Serialize, Default)]
    struct Performance {
        #[serde(default)]
        backtest: Backtest,
        #[serde(default)]
        live_trading: Live,
    }

    #[derive(Deserialize, Serialize, Default)]
    struct Backtest {
        #[serde(default)]
        sharpe_ratio: Option<f64>,
        #[serde(default)]
        win_rate: Option<f64>,
        #[serde(default)]
        measured: Option<MeasuredBacktest>,
    }

    #[derive(Deserialize, Serialize, Default)]
    struct Live {
        #[serde(default)]
        total_trades: u64,
        #[serde(default)]
        total_pnl: Option<f64>,
        #[serde(default)]
        live_sharpe: Option<f64>,
        #[serde(default)]
        live_win_rate: Option<f64>,
    }

    #[derive(Deserialize, Serialize)]
    struct Mem {
        #[serde(default = "yes")]
        enabled: bool,
    }

    impl Default for Mem {
        fn default() -> Self {
            Mem { enabled: true }
        }
    }

    #[derive(Deserialize, Serialize, Default)]
    struct Risk<'a> {
        #[serde(default, borrow)]
        risk_level: Option<Cow<'a, str>>,
    }

    #[derive(Deserialize, Serialize, Default)]
    struct Meta<'a> {
        #[serde(default, borrow)]
        last_used_at: Option<Cow<'a, str>>,
    }

    /// The index fields of `doc` as a document of their own, which [`index_fields`] reads
    /// back the same: a shared store keeps it beside the document so a start reads this
    /// (a tenth of the bytes) instead of every document.
    pub fn entry(f: &IndexFields<'_>) -> String {
        fn c(v: &str) -> Cow<'_, str> {
            Cow::Borrowed(v)
        }
        fn all<'b>(v: &'b [Cow<'_, str>]) -> Vec<Cow<'b, str>> {
            v.iter().map(|v| c(v)).collect()
        }
        let doc = Doc {
            strategy: Strategy {
                id: f.id,
                name: c(&f.name),
                display_name: c(&f.display_name),
                description: c(&f.description),
                version: c(&f.version),
                status: Some(f.status),
                origin: f.origin,
                classification: Classification {
                    category: c(&f.category),
                    sub_category: c(&f.sub_category),
                    tags: all(&f.tags),
                    asset_classes: all(&f.asset_classes),
                    keywords: all(&f.keywords),
                },
                implementation: Implementation {
                    language: c(&f.language),
                },
                performance: Performance {
                    backtest: Backtest {
                        sharpe_ratio: f.sharpe,
                        win_rate: f.win_rate,
                        measured: f.measured.clone(),
                    },
                    live_trading: Live {
                        total_trades: f.live_trades,
                        total_pnl: f.total_pnl,
                        live_sharpe: f.live_sharpe,
                        live_win_rate: f.live_win_rate,
                    },
                },
                mem_integration: Mem {
                    enabled: f.mem_enabled,
                },
                risk_profile: Risk {
                    risk_level: f.risk_level.as_deref().map(c),
                },
                metadata: Meta {
                    last_used_at: f.last_used_at.as_deref().map(c),
                },
            },
        };
        serde_json::to_string(&doc).expect("an index entry serializes")
    }

    /// The index fields of a metadata file's bytes.
    pub fn index_fields(bytes: &[u8]) -> Result<IndexFields<'_>, serde_json::Error> {
        let doc: Doc<'_> = serde_json::from_slice(bytes)?;
        let s = doc.strategy;
        let c = s.classification;
        Ok(IndexFields {
            id: s.id,
            name: s.name,
            display_name: s.display_name,
            description: s.description,
            version: s.version,
            status: s.status.unwrap_or(StrategyStatus::Experimental),
            origin: s.origin,
            category: c.category,
            sub_category: c.sub_category,
            tags: c.tags,
            asset_classes: c.asset_classes,
            keywords: c.keywords,
            language: s.implementation.language,
            mem_enabled: s.mem_integration.enabled,
            sharpe: s.performance.backtest.sharpe_ratio,
            win_rate: s.performance.backtest.win_rate,
            measured: s.performance.backtest.measured,
            risk_level: s.risk_profile.risk_level,
            live_trades: s.performance.live_trading.total_trades,
            total_pnl: s.performance.live_trading.total_pnl,
            live_sharpe: s.performance.live_trading.live_sharpe,
            live_win_rate: s.performance.live_trading.live_win_rate,
            last_used_at: s.metadata.last_used_at,
        })
    }
}

#[cfg(test)]
mod view_tests {
    use super::super::index::{IndexFields, Record};

    #[test]
    fn the_quick_view_indexes_like_the_full_parse() {
        for entry in crate::datadir::DEFAULT_DATA
            .get_dir("strategy_registry/metadata")
            .unwrap()
            .files()
        {
            let bytes = entry.contents();
            let full = super::parse_bytes(bytes).unwrap();
            let quick = Record::new(super::view::index_fields(bytes).unwrap(), 1);
            let slow = Record::new(IndexFields::of(&full), 1);
            assert_eq!(quick.summary, slow.summary, "{}", entry.path().display());
        }
    }

    #[test]
    fn an_index_entry_reads_back_as_the_document_it_was_made_of() {
        for entry in crate::datadir::DEFAULT_DATA
            .get_dir("strategy_registry/metadata")
            .unwrap()
            .files()
        {
            let mut full = super::parse_bytes(entry.contents()).unwrap();
            let from_doc = Record::new(IndexFields::of(&full), 1);
            let text = super::view::entry(&IndexFields::of(&full));
            let from_entry = Record::new(super::view::index_fields(text.as_bytes()).unwrap(), 1);
            assert_eq!(
                from_entry.summary,
                from_doc.summary,
                "{}",
                entry.path().display()
            );
            assert_eq!(
                from_entry.search_words(),
                from_doc.search_words(),
                "{}",
                entry.path().display()
            );
            // Every optional field set, text that needs escaping, a measured backtest.
            let s = &mut full.strategy;
            s.description = "a \"quoted\" line\nand a second".into();
            s.risk_profile.risk_level = Some("high".into());
            s.metadata.last_used_at = Some("2026-12-05T10:00:00Z".into());
            s.performance.live_trading.total_pnl = Some(-12.5);
            s.performance.live_trading.live_sharpe = Some(1.25);
            s.classification.asset_classes = vec!["crypto".into()];
            s.performance.backtest.measured = Some(
                serde_json::from_value(serde_json::json!({
                    "job_id": "j1", "version": "1.0.0", "engine": "freqtrade",
                    "pairs": ["ETH/USDT"], "timeframe": "5m",
                    "data_from": "2026-11-01T00:00:00Z", "data_to": "2026-12-01T00:00:00Z",
                    "trades": 12, "sharpe_ratio": 0.8, "win_rate": 0.5,
                    "max_drawdown": 0.1, "total_return": 0.05,
                    "finished_at": "2026-12-01T01:00:00Z"
                }))
                .unwrap(),
            );
            let from_doc = Record::new(IndexFields::of(&full), 1);
            let text = super::view::entry(&IndexFields::of(&full));
            let from_entry = Record::new(super::view::index_fields(text.as_bytes()).unwrap(), 1);
            assert_eq!(from_entry.summary, from_doc.summary);
            assert_eq!(from_entry.search_words(), from_doc.search_words());
        }
    }
}
