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
        flat_to_nested(obj)
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

fn flat_to_nested(flat: &Map<String, Value>) -> Value {
    let mut strategy = Map::new();
    for (key, value) in flat {
        if FLAT_RUNTIME.contains(&key.as_str()) {
            continue;
        }
        match FLAT_FIELDS.iter().find(|(k, _)| k == key) {
            Some((_, path)) => {
                let mut node = &mut strategy;
                for part in &path[..path.len() - 1] {
                    node = node
                        .entry(*part)
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .expect("intermediate objects");
                }
                node.insert(path[path.len() - 1].to_string(), value.clone());
            }
            None => {
                strategy.insert(key.clone(), value.clone()); // kept as it came
            }
        }
    }
    json!({ "schema_version": "1.0.0", "strategy": strategy })
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

    #[test]
    fn errors_name_the_path() {
        let bad = json!({"strategy": {"name": "x", "classification": {"category": "c"}, "performance": {"backtest": {"num_trades": -3}}}});
        let e = to_document(&bad).unwrap_err();
        assert_eq!(e.field, "strategy.performance.backtest.num_trades", "{e}");
    }
}
