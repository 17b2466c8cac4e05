//! Validation of metadata documents and trades. Every error names the field at fault
//! (`strategy.classification.category: ...`) so a person can fix the input.

use mem_protocol::registry::TradeRecord;
use mem_protocol::strategy::StrategyDocument;
use serde_json::Value;

/// Largest metadata document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Largest number of trades in one `strategies.trades.record` call.
pub const MAX_TRADES_PER_BATCH: usize = 100_000;

/// A field that is wrong, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// A string of at most `max` characters, no control characters, non-empty if `required`.
fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), FieldError> {
    if required && value.trim().is_empty() {
        return Err(err(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(err(
            field,
            format!("is {chars} characters long; the limit is {max}"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(err(field, "must not contain control characters"));
    }
    Ok(())
}

/// A short identifier-like word: lowercase letters, digits, `_`, `-`, `.`.
fn word(field: &str, value: &str, max: usize, required: bool) -> Result<(), FieldError> {
    text(field, value, max, required)?;
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(*c)))
    {
        return Err(err(
            field,
            format!("may hold only lowercase letters, digits, `_`, `-` and `.`; found {bad:?}"),
        ));
    }
    Ok(())
}

fn list(
    field: &str,
    values: &[String],
    max_items: usize,
    max_len: usize,
) -> Result<(), FieldError> {
    if values.len() > max_items {
        return Err(err(
            field,
            format!("has {} entries; the limit is {max_items}", values.len()),
        ));
    }
    for (i, v) in values.iter().enumerate() {
        text(&format!("{field}[{i}]"), v, max_len, true)?;
    }
    Ok(())
}

fn number_in(field: &str, value: Option<f64>, lo: f64, hi: f64) -> Result<(), FieldError> {
    match value {
        Some(v) if !v.is_finite() => Err(err(field, "must be a finite number")),
        Some(v) if v < lo || v > hi => Err(err(
            field,
            format!("is {v}; it must be between {lo} and {hi}"),
        )),
        _ => Ok(()),
    }
}

/// Checks a whole metadata document.
pub fn document(doc: &StrategyDocument) -> Result<(), FieldError> {
    text("schema_version", &doc.schema_version, 16, true)?;
    if !doc.schema_version.starts_with("1.") {
        return Err(err(
            "schema_version",
            format!(
                "{:?} is not supported; this memd reads 1.x",
                doc.schema_version
            ),
        ));
    }
    let s = &doc.strategy;
    text("strategy.name", &s.name, 128, true)?;
    if s.name.contains('/') {
        return Err(err("strategy.name", "must not contain `/`"));
    }
    text("strategy.display_name", &s.display_name, 200, false)?;
    text("strategy.description", &s.description, 10_000, false)?;
    semver::Version::parse(&s.version).map_err(|e| {
        err(
            "strategy.version",
            format!(
                "{:?} is not a semantic version (like 1.2.0): {e}",
                s.version
            ),
        )
    })?;
    let c = &s.classification;
    word("strategy.classification.category", &c.category, 64, true)?;
    word(
        "strategy.classification.sub_category",
        &c.sub_category,
        64,
        false,
    )?;
    if let Some(complexity) = &c.complexity {
        word("strategy.classification.complexity", complexity, 32, false)?;
    }
    list("strategy.classification.tags", &c.tags, 64, 64)?;
    list(
        "strategy.classification.asset_classes",
        &c.asset_classes,
        32,
        64,
    )?;
    list("strategy.classification.keywords", &c.keywords, 128, 64)?;
    let i = &s.implementation;
    text("strategy.implementation.language", &i.language, 32, true)?;
    for (name, value) in [
        ("file_path", &i.file_path),
        ("class_name", &i.class_name),
        ("entry_point", &i.entry_point),
    ] {
        if let Some(value) = value {
            text(
                &format!("strategy.implementation.{name}"),
                value,
                1024,
                false,
            )?;
        }
    }
    list(
        "strategy.implementation.dependencies",
        &i.dependencies,
        128,
        256,
    )?;
    if s.parameters.len() > 256 {
        return Err(err(
            "strategy.parameters",
            format!("has {} parameters; the limit is 256", s.parameters.len()),
        ));
    }
    for (name, value) in &s.parameters {
        parameter_declaration(name, value)?;
    }
    let b = &s.performance.backtest;
    // As wide as the live Sharpe's: Freqtrade annualises the Sharpe of a backtest, and a
    // day's backtest with a few winning trades measures well over 100.
    number_in(
        "strategy.performance.backtest.sharpe_ratio",
        b.sharpe_ratio,
        -1e6,
        1e6,
    )?;
    number_in(
        "strategy.performance.backtest.win_rate",
        b.win_rate,
        0.0,
        1.0,
    )?;
    number_in(
        "strategy.performance.backtest.total_return",
        b.total_return,
        -1.0,
        1e6,
    )?;
    number_in(
        "strategy.performance.backtest.max_drawdown",
        b.max_drawdown,
        -1.0,
        1.0,
    )?;
    let l = &s.performance.live_trading;
    number_in(
        "strategy.performance.live_trading.live_sharpe",
        l.live_sharpe,
        -1e6,
        1e6,
    )?;
    number_in(
        "strategy.performance.live_trading.live_win_rate",
        l.live_win_rate,
        0.0,
        1.0,
    )?;
    number_in(
        "strategy.performance.live_trading.total_pnl",
        l.total_pnl,
        -1e15,
        1e15,
    )?;
    if let Some(mem_protocol::deploy_spec::DeploymentSpec::Native(n)) = &s.deployment {
        // A native runner reads its candles through the candle reader's timeframes.
        if let Some(tf) = &n.timeframe {
            tf.parse::<crate::market::candles::Timeframe>()
                .map_err(|e| err("strategy.deployment.timeframe", e.to_string()))?;
        }
    }
    if let Some(risk) = &s.risk_profile.risk_level {
        word("strategy.risk_profile.risk_level", risk, 32, false)?;
    }
    if let Some(by) = &s.metadata.created_by {
        text("strategy.metadata.created_by", by, 128, false)?;
    }
    if let Some(reason) = &s.metadata.deprecation_reason {
        text("strategy.metadata.deprecation_reason", reason, 2_000, false)?;
    }
    Ok(())
}

/// The types a declared parameter may have.
pub const PARAMETER_TYPES: &[&str] = &[
    "integer", "float", "decimal", "number", "boolean", "string", "object", "array",
];

/// A parameter is a plain value, or a declaration `{value, type, min?, max?, ...}`.
pub fn parameter_declaration(name: &str, value: &Value) -> Result<(), FieldError> {
    let field = format!("strategy.parameters.{name}");
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(err(
            &field,
            "a parameter name is 1 to 128 letters, digits or `_`",
        ));
    }
    let Some(decl) = value
        .as_object()
        .filter(|o| o.contains_key("value") && o.contains_key("type"))
    else {
        return Ok(()); // a plain value: nothing declared to check against
    };
    let kind = decl["type"]
        .as_str()
        .ok_or_else(|| err(format!("{field}.type"), "must be a string"))?;
    if !PARAMETER_TYPES.contains(&kind) {
        return Err(err(
            format!("{field}.type"),
            format!("{kind:?} is not one of {}", PARAMETER_TYPES.join(", ")),
        ));
    }
    let bound = |key: &str| -> Result<Option<f64>, FieldError> {
        match decl.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| err(format!("{field}.{key}"), "must be a number")),
        }
    };
    let (min, max) = (bound("min")?, bound("max")?);
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(err(&field, format!("min {lo} is above max {hi}")));
        }
    }
    check_value(&format!("{field}.value"), kind, min, max, &decl["value"])
}

/// Checks `value` against a declared type and bounds.
pub fn check_value(
    field: &str,
    kind: &str,
    min: Option<f64>,
    max: Option<f64>,
    value: &Value,
) -> Result<(), FieldError> {
    let type_ok = match kind {
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "float" | "decimal" | "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => false,
    };
    if !type_ok {
        return Err(err(
            field,
            format!("{value} is not of the declared type `{kind}`"),
        ));
    }
    if let Some(v) = value.as_f64() {
        if min.is_some_and(|lo| v < lo) || max.is_some_and(|hi| v > hi) {
            let range = format!(
                "{} .. {}",
                min.map_or("-inf".into(), |m| m.to_string()),
                max.map_or("+inf".into(), |m| m.to_string())
            );
            let side = match (min, max) {
                (Some(lo), _) if v < lo => format!("below the minimum {lo}"),
                (_, Some(hi)) => format!("above the maximum {hi}"),
                _ => String::new(),
            };
            return Err(err(
                field,
                format!("{v} is outside the declared range {range}: {side}"),
            ));
        }
    }
    if let Some(s) = value.as_str() {
        text(field, s, 10_000, false)?;
    }
    Ok(())
}

/// Whether a string passes [`text`] (without building a message).
fn text_ok(value: &str, max: usize, required: bool) -> bool {
    !(required && value.trim().is_empty())
        && value.len() <= max // bytes >= chars: a quick upper bound, exact below when needed
        && !value.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

fn in_range(value: Option<f64>, lo: f64, hi: f64) -> bool {
    value.is_none_or(|v| v.is_finite() && v >= lo && v <= hi)
}

/// Checks one trade of a batch; `index` and the trade id locate it in messages. The
/// usual, valid trade is checked without building any message; a failing one is checked
/// again by [`trade_detailed`], which says what is wrong.
pub fn trade(index: usize, t: &TradeRecord) -> Result<(), FieldError> {
    let opt_text =
        |v: &Option<String>, max: usize| v.as_deref().is_none_or(|v| text_ok(v, max, false));
    let ok = text_ok(&t.trade_id, 128, true)
        && !t.trade_id.contains('\n')
        && text_ok(&t.symbol, 32, true)
        && t.timeframe.as_deref().is_none_or(|v| text_ok(v, 16, true))
        && t.entry_price.is_finite()
        && t.entry_price > 0.0
        && t.exit_price.is_finite()
        && t.exit_price > 0.0
        && t.exit_time >= t.entry_time
        && in_range(Some(t.pnl), -1e15, 1e15)
        && in_range(Some(t.pnl_pct), -1e3, 1e6)
        && in_range(t.confidence, 0.0, 1.0)
        && in_range(t.mem_confidence_boost, -1.0, 1.0)
        && in_range(t.volatility, 0.0, 1e6)
        && in_range(t.slippage, -1e9, 1e9)
        && in_range(t.commission, 0.0, 1e12)
        && opt_text(&t.learned_pattern, 128)
        && opt_text(&t.market_regime, 128)
        && opt_text(&t.broker, 128)
        && t.version_id.as_deref().is_none_or(|v| text_ok(v, 64, true))
        && opt_text(&t.mem_reasoning, 4096)
        && t.duration_seconds.is_none_or(|d| d >= 0)
        && in_range(t.max_adverse_excursion, -1e3, 1e6)
        && in_range(t.max_favorable_excursion, -1e3, 1e6)
        && excursions_ok(t)
        && t.stop_loss.is_none_or(|p| p.is_finite() && p > 0.0)
        && t.take_profit.is_none_or(|p| p.is_finite() && p > 0.0)
        && in_range(t.volume_ratio, 0.0, 1e9);
    if ok {
        return Ok(());
    }
    trade_detailed(index, t)
}

/// The worst move is not above the best. (The return itself may fall outside them: the
/// excursions are price moves, `pnlPct` is after fees.)
fn excursions_ok(t: &TradeRecord) -> bool {
    match (t.max_adverse_excursion, t.max_favorable_excursion) {
        (Some(low), Some(high)) => low <= high,
        _ => true,
    }
}

/// [`trade`], building the message that names the field at fault.
fn trade_detailed(index: usize, t: &TradeRecord) -> Result<(), FieldError> {
    let field = |name: &str| format!("trades[{index}].{name}");
    text(&field("tradeId"), &t.trade_id, 128, true)?;
    if t.trade_id.contains('\n') {
        return Err(err(field("tradeId"), "must not contain a newline"));
    }
    text(&field("symbol"), &t.symbol, 32, true)?;
    if let Some(tf) = &t.timeframe {
        text(&field("timeframe"), tf, 16, true)?;
    }
    for (name, value) in [("entryPrice", t.entry_price), ("exitPrice", t.exit_price)] {
        if !value.is_finite() || value <= 0.0 {
            return Err(err(
                field(name),
                format!("must be a finite price above 0, got {value}"),
            ));
        }
    }
    if t.exit_time < t.entry_time {
        return Err(err(
            field("exitTime"),
            format!(
                "trade {:?} exits ({}) before it enters ({})",
                t.trade_id,
                t.exit_time.to_rfc3339(),
                t.entry_time.to_rfc3339()
            ),
        ));
    }
    number_in(&field("pnl"), Some(t.pnl), -1e15, 1e15)?;
    number_in(&field("pnlPct"), Some(t.pnl_pct), -1e3, 1e6)?;
    number_in(&field("confidence"), t.confidence, 0.0, 1.0)?;
    number_in(
        &field("memConfidenceBoost"),
        t.mem_confidence_boost,
        -1.0,
        1.0,
    )?;
    number_in(&field("volatility"), t.volatility, 0.0, 1e6)?;
    number_in(&field("slippage"), t.slippage, -1e9, 1e9)?;
    number_in(&field("commission"), t.commission, 0.0, 1e12)?;
    for (name, value) in [
        ("learnedPattern", &t.learned_pattern),
        ("marketRegime", &t.market_regime),
        ("broker", &t.broker),
    ] {
        if let Some(value) = value {
            text(&field(name), value, 128, false)?;
        }
    }
    if let Some(v) = &t.version_id {
        text(&field("versionId"), v, 64, true)?;
    }
    if let Some(r) = &t.mem_reasoning {
        text(&field("memReasoning"), r, 4096, false)?;
    }
    if let Some(d) = t.duration_seconds.filter(|d| *d < 0) {
        return Err(err(
            field("durationSeconds"),
            format!("must be 0 or more, got {d}"),
        ));
    }
    number_in(
        &field("maxAdverseExcursion"),
        t.max_adverse_excursion,
        -1e3,
        1e6,
    )?;
    number_in(
        &field("maxFavorableExcursion"),
        t.max_favorable_excursion,
        -1e3,
        1e6,
    )?;
    if !excursions_ok(t) {
        return Err(err(
            field("maxAdverseExcursion"),
            format!(
                "the worst move ({}) is above the best ({})",
                t.max_adverse_excursion
                    .map_or("-".into(), |v| v.to_string()),
                t.max_favorable_excursion
                    .map_or("-".into(), |v| v.to_string()),
            ),
        ));
    }
    for (name, value) in [("stopLoss", t.stop_loss), ("takeProfit", t.take_profit)] {
        if let Some(v) = value.filter(|v| !v.is_finite() || *v <= 0.0) {
            return Err(err(
                field(name),
                format!("must be a finite price above 0, got {v}"),
            ));
        }
    }
    number_in(&field("volumeRatio"), t.volume_ratio, 0.0, 1e9)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_quick_trade_check_never_passes_what_the_detailed_one_refuses() {
        let good: TradeRecord = serde_json::from_value(json!({
            "tradeId": "t1", "symbol": "BTC/USDT", "action": "BUY", "entryPrice": 1.0, "exitPrice": 2.0,
            "entryTime": "2026-01-01T00:00:00Z", "exitTime": "2026-01-01T01:00:00Z", "pnl": 1.0, "pnlPct": 0.01
        }))
        .unwrap();
        assert!(trade(0, &good).is_ok());
        let mutations: Vec<fn(&mut TradeRecord)> = vec![
            |t| t.trade_id = String::new(),
            |t| t.trade_id = "a\nb".into(),
            |t| t.trade_id = "x".repeat(200),
            |t| t.symbol = "\u{7}".into(),
            |t| t.entry_price = 0.0,
            |t| t.exit_price = f64::INFINITY,
            |t| t.exit_time = t.entry_time - chrono::Duration::seconds(1),
            |t| t.pnl = f64::NAN,
            |t| t.confidence = Some(1.5),
            |t| t.commission = Some(-1.0),
            |t| t.broker = Some("b".repeat(300)),
            |t| t.duration_seconds = Some(-1),
            |t| {
                t.max_adverse_excursion = Some(0.1);
                t.max_favorable_excursion = Some(-0.1);
            },
            |t| t.max_favorable_excursion = Some(f64::INFINITY),
            |t| t.stop_loss = Some(0.0),
            |t| t.take_profit = Some(f64::NAN),
            |t| t.volume_ratio = Some(-1.0),
            |t| t.mem_reasoning = Some("r".repeat(5000)),
            |t| t.version_id = Some(String::new()),
        ];
        for (i, mutate) in mutations.iter().enumerate() {
            let mut bad = good.clone();
            mutate(&mut bad);
            assert!(
                trade_detailed(0, &bad).is_err(),
                "case {i} should be refused"
            );
            assert!(
                trade(0, &bad).is_err(),
                "case {i}: the quick check let it through"
            );
        }
    }

    /// A backtest's Sharpe is Freqtrade's, annualised: a day's backtest measured 119.9 (CI,
    /// 2026-12-05) and its result could not be recorded while the bound was 100.
    #[test]
    fn a_measured_backtest_sharpe_over_100_is_kept_and_a_nan_refused() {
        let with = |sharpe: f64| -> StrategyDocument {
            serde_json::from_value(json!({
                "schema_version": "1.0.0",
                "strategy": {
                    "id": "00000000-0000-4000-8000-000000000001",
                    "name": "s", "display_name": "s",
                    "classification": {"category": "momentum", "tags": ["t"]},
                    "implementation": {"language": "rust"},
                    "performance": {"backtest": {"sharpe_ratio": sharpe}}
                }
            }))
            .unwrap()
        };
        assert!(document(&with(119.91704967258045)).is_ok());
        assert!(document(&with(-250.0)).is_ok());
        let mut nan = with(1.0);
        nan.strategy.performance.backtest.sharpe_ratio = Some(f64::NAN);
        let refused = document(&nan).unwrap_err();
        assert_eq!(refused.field, "strategy.performance.backtest.sharpe_ratio");
    }

    /// A line of the seed's `performance/{id}_trades.jsonl`, as its registry wrote it, is
    /// a valid trade; so is one with the seed's SQL columns.
    #[test]
    fn trades_in_the_seeds_shape_are_read() {
        let seed: TradeRecord = serde_json::from_value(json!({
            "trade_id": "test-trade-001", "symbol": "BTC/USD", "signal_action": "BUY",
            "signal_confidence": 0.85, "entry_price": 50000.0, "exit_price": 52000.0,
            "entry_timestamp": "2025-10-21T05:11:50.590225", "exit_timestamp": "2025-10-21T05:11:50.590252",
            "pnl": 200.0, "pnl_pct": 0.04, "is_win": true, "was_mem_enhanced": false,
            "mem_confidence_boost": 0.0, "learned_pattern_applied": null
        }))
        .unwrap();
        assert_eq!(seed.trade_id, "test-trade-001");
        assert_eq!(seed.confidence, Some(0.85));
        assert_eq!(
            seed.entry_time.to_rfc3339(),
            "2025-10-21T05:11:50.590225+00:00"
        );
        assert!(trade(0, &seed).is_ok());
        let columns: TradeRecord = serde_json::from_value(json!({
            "trade_id": "t2", "symbol": "ETH/USDT", "signal_action": "sell", "entry_price": 2000.0,
            "exit_price": 1900.0, "entry_timestamp": "2026-01-01T00:00:00Z",
            "exit_timestamp": "2026-01-01T02:00:00Z", "pnl": 5.0, "pnl_percentage": 0.05,
            "version_id": "1.2.0", "duration_seconds": 7200, "max_adverse_excursion": -0.01,
            "max_favorable_excursion": 0.06, "stop_loss": 2100.0, "take_profit": 1800.0,
            "mem_reasoning": "RSI oversold", "volume_ratio": 1.4, "market_regime": "trending",
            "recorded_at": "2026-01-01T02:00:01Z"
        }))
        .unwrap();
        assert_eq!(columns.max_favorable_excursion, Some(0.06));
        assert_eq!(columns.version_id.as_deref(), Some("1.2.0"));
        assert!(trade(0, &columns).is_ok());
        let unknown = serde_json::from_value::<TradeRecord>(json!({
            "trade_id": "t3", "symbol": "X", "signal_action": "BUY", "entry_price": 1.0,
            "exit_price": 1.0, "entry_timestamp": "2026-01-01T00:00:00Z",
            "exit_timestamp": "2026-01-01T00:00:00Z", "pnl": 0.0, "pnl_pct": 0.0, "colour": "red"
        }))
        .unwrap_err();
        assert!(unknown.to_string().contains("colour"), "{unknown}");
    }

    #[test]
    fn parameter_declarations_are_checked() {
        let ok = json!({"value": 14, "type": "integer", "min": 2, "max": 50});
        assert!(parameter_declaration("rsi_period", &ok).is_ok());
        let e = parameter_declaration("rsi_period", &json!({"value": 1.5, "type": "integer"}))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("strategy.parameters.rsi_period.value")
                && e.message.contains("integer"),
            "{e}"
        );
        let e = parameter_declaration(
            "rsi_period",
            &json!({"value": 99, "type": "integer", "min": 2, "max": 50}),
        )
        .unwrap_err();
        assert!(
            e.message.contains("outside the declared range 2 .. 50"),
            "{e}"
        );
        let e = parameter_declaration("x", &json!({"value": 1, "type": "complex"})).unwrap_err();
        assert!(e.field.ends_with(".type"), "{e}");
        let e = parameter_declaration("../x", &json!(1)).unwrap_err();
        assert!(e.message.contains("letters"), "{e}");
        assert!(
            parameter_declaration("plain", &json!({"0": 0.1})).is_ok(),
            "a plain value is not a declaration"
        );
    }
}
