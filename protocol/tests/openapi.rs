//! The OpenAPI schemas generated from the protocol's types (the `openapi` feature) against
//! what serde actually writes and reads.
//!
//! For each type the HTTP API sends or reads, the components of a generated OpenAPI 3.1
//! document (with `#/components/schemas/{Type}` as the root `$ref`) are a JSON Schema
//! 2020-12, checked with `jsonschema` (formats asserted: `uuid`, `date-time`). Then:
//!
//! - a realistic instance, and one with every `Option` `None` and every skippable field
//!   skipped, serialized by serde_json, validate;
//! - the schema and serde agree on every instance made from those by one change to one
//!   member: removed (the schema's `required` is exactly what serde requires), `null`
//!   (nullable exactly where serde reads `null`), a wrong type, a negative or fractional
//!   number, a string that is not a variant, an id or a time that does not parse, an
//!   unknown extra member (`additionalProperties: false` exactly where serde denies
//!   unknown fields), and each member of the schema is a member serde writes (the names
//!   agree, `rename_all` included);
//! - every variant of the string enums validates, and every event's notification params
//!   validate as an `EventMessage`, its data as the schema named for it.
//!
//! Two tests list where serde and the schema knowingly differ (aliases and id spellings
//! serde reads; integers written as `1.0` or beyond u64 that the schema allows).
//!
//! Run: `cargo test -p mem-protocol --features openapi --test openapi`.
#![cfg(feature = "openapi")]

use mem_protocol::alerts::{AlertStatus, AlertTargetStatus, DeliveryResult};
use mem_protocol::deploy::{
    Attachment, BotLog, BotStats, DeployedList, DeployedStrategy, DeploymentChanged, DeploymentId,
    DeploymentStatus, DeploymentType, DeploymentUsage, DeploymentsUsage, StartedBy,
};
use mem_protocol::events::{
    DaemonPulse, DaemonStopping, RegistryChange, RegistryChanged, RegistryInvalid,
};
use mem_protocol::jobs::{JobOutcome, JobProgress, JobRun, JobTrigger};
use mem_protocol::market::{Freshness, MarketState};
use mem_protocol::mem::{
    BotPollMetrics, Decision, LatencyStats, LearnedCounts, MemMetrics, MemoryChanged, Outcome,
    SignalAction,
};
use mem_protocol::methods::{Counts, HostStatus, ProcessStatus};
use mem_protocol::ml::{ModelChanged, TrainProgress};
use mem_protocol::recommend::{
    AppliedConditions, ConditionsReport, ConditionsSource, MarketConditions, MetricsSource,
    QuickConditions, Recommendation, Recommendations, ScorePoint, Trend, Volatility,
};
use mem_protocol::risk::{
    RiskBot, RiskLimit, RiskLimits, RiskReset, RiskResetInfo, RiskStatus, RiskTrip,
};
use mem_protocol::strategy::{Origin, StrategyId, StrategyStatus, StrategySummary};
use mem_protocol::{Event, EventMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::OpenApi;

/// A document with every schema the HTTP API uses from this crate (and, through them,
/// every schema they refer to).
#[derive(OpenApi)]
#[openapi(components(schemas(
    StrategySummary,
    DeployedStrategy,
    DeployedList,
    Recommendation,
    Recommendations,
    MarketConditions,
    QuickConditions,
    Trend,
    Volatility,
    AppliedConditions,
    Event,
    EventMessage,
)))]
struct Doc;

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(Doc::openapi()).unwrap())
}

fn schema_of(name: &str) -> &'static Value {
    document()["components"]["schemas"]
        .get(name)
        .unwrap_or_else(|| panic!("no schema {name} in the document"))
}

/// A validator of `#/components/schemas/{name}`, the components in its root document.
fn validator(name: &str) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        "$ref": format!("#/components/schemas/{name}"),
    });
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema of {name} is not a valid JSON Schema: {e}"))
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// `value`, serialized, validates against the schema `name`.
fn assert_valid<T: Serialize>(name: &str, value: &T) -> Value {
    let json = serde_json::to_value(value).unwrap();
    let errors = errors(&validator(name), &json);
    assert!(
        errors.is_empty(),
        "{name}: {json:#} is not valid: {errors:#?}"
    );
    json
}

/// The schema `name` and serde's `T` agree on `instance` and on every instance one change
/// away from it; `instance` must hold every member the schema declares.
fn assert_agrees<T: DeserializeOwned>(name: &str, instance: &Value) {
    let validator = validator(name);
    let schema = schema_of(name);
    let properties = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} is not an object schema"));
    let object = instance.as_object().unwrap();
    let mut declared: Vec<&String> = properties.keys().collect();
    let mut written: Vec<&String> = object.keys().collect();
    declared.sort();
    written.sort();
    assert_eq!(
        declared, written,
        "{name}: the schema's members are not the ones serde writes"
    );

    let check = |what: &str, candidate: &Value| {
        let schema_says = errors(&validator, candidate);
        let serde_says = serde_json::from_value::<T>(candidate.clone()).err();
        assert_eq!(
            schema_says.is_empty(),
            serde_says.is_none(),
            "{name}, {what}: the schema says {schema_says:?}, serde says {serde_says:?} of {candidate:#}"
        );
    };
    check("as written", instance);
    let mut extra = object.clone();
    extra.insert("zzUnknownMember".into(), json!(1));
    check("an unknown member", &Value::Object(extra));
    for key in properties.keys() {
        let mut removed = object.clone();
        removed.remove(key);
        check(&format!("without `{key}`"), &Value::Object(removed));
        for wrong in [
            json!(null),
            json!(true),
            json!(-1),
            json!(1.5),
            json!("not-a-variant"),
            json!("2026-13-45T25:61:00Z"),
            json!("4ce3a79b-c22b-4b42-9d87-3a58052a9eeg"),
            json!([]),
            json!({}),
            json!([1]),
        ] {
            let mut changed = object.clone();
            changed.insert(key.clone(), wrong.clone());
            check(&format!("`{key}` = {wrong}"), &Value::Object(changed));
        }
    }
}

const ID: &str = "4ce3a79b-c22b-4b42-9d87-3a58052a9eec";

fn strategy_id() -> StrategyId {
    ID.parse().unwrap()
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

fn full_summary() -> StrategySummary {
    StrategySummary {
        id: strategy_id(),
        name: "freqtrade_macd_hunter".into(),
        display_name: "Freqtrade MACD Hunter".into(),
        description: "MACD momentum".into(),
        category: "momentum".into(),
        sub_category: "macd_momentum".into(),
        status: StrategyStatus::Active,
        language: "freqtrade".into(),
        origin: Origin::BuiltIn,
        version: "1.0.0".into(),
        tags: vec!["macd".into(), "trend".into()],
        mem_enabled: true,
        sharpe_ratio: Some(1.45),
        win_rate: Some(0.58),
        risk_level: Some("medium_high".into()),
        live_trades: 42,
        total_pnl: Some(-12.5),
        live_sharpe_ratio: Some(0.9),
        live_win_rate: Some(0.51),
        last_used_at: Some("2026-11-22T01:00:00+00:00".into()),
        is_deployed: true,
        measured: Some(Box::new(
            serde_json::from_value(serde_json::json!({
                "job_id": "5d1c", "version": "1.0.0", "engine": "freqtrade",
                "pairs": ["ETH/USDT"], "timeframe": "5m",
                "data_from": "2026-11-01T00:00:00Z", "data_to": "2026-12-01T00:00:00Z",
                "trades": 40, "sharpe_ratio": 1.2, "win_rate": 0.6, "max_drawdown": 0.1,
                "total_return": 0.05, "finished_at": "2026-12-01T01:00:00Z"
            }))
            .unwrap(),
        )),
    }
}

/// A queue job: a walk-forward that ended with every member of its result, or one
/// queued with nothing but what a queued job has.
fn queue_job(full: bool) -> mem_protocol::backtest::QueueJob {
    let figures = serde_json::json!({"trades": 4, "wins": 3, "losses": 1, "winRate": 0.75,
        "profitAbs": 12.0, "profitPct": 0.012, "sharpe": 1.5, "sortino": 2.0, "calmar": 3.0,
        "maxDrawdown": 0.01, "maxDrawdownAbs": 10.0, "profitFactor": 2.5,
        "startingBalance": 1000.0, "finalBalance": 1012.0});
    let params = serde_json::json!({"id": ID, "days": 30, "timerange": "20261101-",
        "walkForward": 2, "epochs": 3, "pairs": ["ETH/USDT"], "throughMem": true});
    let job = if full {
        serde_json::json!({"id": "5d1c", "kind": "walk_forward", "strategyId": ID,
            "strategy": "Freqtrade MACD Hunter", "params": params, "state": "succeeded",
            "queuedAt": "2026-12-01T00:00:00Z", "startedAt": "2026-12-01T00:00:01Z",
            "finishedAt": "2026-12-01T00:01:00Z",
            "progress": {"done": 1, "total": 4, "message": "fold 1 of 2"},
            "error": "none", "logFile": "/var/lib/memd/queue/5d1c/job.log",
            "result": {"measured": true, "jobId": "5d1c", "strategyId": ID, "version": "1.0.0",
                "engine": "freqtrade", "engineVersion": "2026.9", "pairs": ["ETH/USDT"],
                "timeframe": "5m", "dataFrom": "2026-11-01T00:00:00Z",
                "dataTo": "2026-12-01T00:00:00Z", "parameters": {"stoploss": -0.1},
                "configHash": "c0", "strategyHash": "5e", "figures": figures,
                "equity": [{"tsMs": 1, "equity": 1000.0}],
                "validation": {"status": "passed", "reasons": ["4 trades"]},
                "walkForward": {"folds": [{"index": 0,
                    "inSampleFrom": "2026-11-01T00:00:00Z", "inSampleTo": "2026-11-11T00:00:00Z",
                    "outOfSampleFrom": "2026-11-11T00:00:00Z", "outOfSampleTo": "2026-11-21T00:00:00Z",
                    "parameters": {"stoploss": -0.1}, "inSample": figures, "outOfSample": figures}],
                    "inSample": figures, "outOfSample": figures, "parameters": {"stoploss": -0.1}},
                "resultFile": "/var/lib/memd/queue/5d1c/freqtrade/results/r.zip",
                "finishedAt": "2026-12-01T00:01:00Z", "seconds": 59.0}})
    } else {
        serde_json::json!({"id": "5d1d", "kind": "backtest", "strategyId": ID,
            "strategy": "Freqtrade MACD Hunter", "params": {"id": ID}, "state": "queued",
            "queuedAt": "2026-12-01T00:00:00Z", "logFile": "/var/lib/memd/queue/5d1d/job.log"})
    };
    serde_json::from_value(job).unwrap()
}

fn minimal_summary() -> StrategySummary {
    StrategySummary {
        tags: Vec::new(),
        sharpe_ratio: None,
        win_rate: None,
        risk_level: None,
        live_trades: 0,
        total_pnl: None,
        live_sharpe_ratio: None,
        live_win_rate: None,
        last_used_at: None,
        is_deployed: false,
        origin: Origin::Imported,
        status: StrategyStatus::Experimental,
        ..full_summary()
    }
}

fn full_deployed() -> DeployedStrategy {
    DeployedStrategy {
        attached: Some(Attachment {
            name: "outside".into(),
            url: "http://127.0.0.1:8080".into(),
            username: "freqtrader".into(),
            allow_control: true,
        }),
        deployment_id: "0e0c8a4e-5b1f-4a53-9d39-2c1e0f7d6a11".parse().unwrap(),
        strategy_id: strategy_id(),
        strategy_name: "Freqtrade MACD Hunter".into(),
        deployment_type: DeploymentType::Freqtrade,
        process_id: Some(4242),
        port: Some(8083),
        started_at: at("2026-11-22T01:00:00.123456789Z"),
        running_since: Some(at("2026-11-22T01:02:00Z")),
        status: DeploymentStatus::Running,
        dry_run: true,
        config_file: Some("/var/lib/memd/deployments/x/config.json".into()),
        started_by: StartedBy::Rotation,
        restarts: 1,
        last_error: Some("exited with code 2".into()),
        stats: BotStats {
            open_trades: 2,
            closed_trades: 5,
            profit_closed: 1.5,
            profit_all: -2.0,
            balance: Some(999.0),
            stake_currency: Some("USDT".into()),
            bot_state: Some("running".into()),
            polled_at: Some(at("2026-11-22T01:05:00Z")),
        },
        warnings: 3,
        errors: 1,
        cpu_percent: Some(1.5),
        rss_bytes: Some(320 << 20),
        acknowledged: false,
    }
}

fn minimal_deployed() -> DeployedStrategy {
    DeployedStrategy {
        attached: None,
        deployment_type: DeploymentType::Native,
        process_id: None,
        port: None,
        running_since: None,
        status: DeploymentStatus::Failed,
        dry_run: false,
        config_file: None,
        started_by: StartedBy::Manual,
        restarts: 0,
        last_error: None,
        stats: BotStats::default(),
        warnings: 0,
        errors: 0,
        cpu_percent: None,
        rss_bytes: None,
        acknowledged: true,
        ..full_deployed()
    }
}

fn full_recommendation() -> Recommendation {
    Recommendation {
        strategy_id: strategy_id(),
        strategy_name: "Freqtrade MACD Hunter".into(),
        category: "momentum".into(),
        confidence_score: 0.95,
        reason: "momentum strategy suits bullish trend; figures from the backtest".into(),
        estimated_sharpe: Some(1.45),
        estimated_win_rate: Some(0.58),
        metrics_source: MetricsSource::Backtest,
        live_trades: 3,
        is_deployed: false,
        breakdown: vec![
            ScorePoint {
                rule: "base".into(),
                points: 0.5,
                detail: "base score".into(),
            },
            ScorePoint {
                rule: "cap".into(),
                points: -0.1,
                detail: "scores are capped at 1.00".into(),
            },
        ],
    }
}

fn minimal_recommendation() -> Recommendation {
    Recommendation {
        estimated_sharpe: None,
        estimated_win_rate: None,
        metrics_source: MetricsSource::Live,
        breakdown: Vec::new(),
        ..full_recommendation()
    }
}

fn indicators() -> BTreeMap<String, f64> {
    BTreeMap::from([("rsi".into(), 61.5), ("macdHist".into(), -0.0031)])
}

fn full_report() -> ConditionsReport {
    ConditionsReport {
        pair: "BTC/USDT".into(),
        timeframe: "1h".into(),
        trend: Trend::Bullish,
        volatility: Volatility::High,
        trend_reason: "ADX 31.0 >= 25".into(),
        volatility_reason: "ATR(14) is 1.2% of the close".into(),
        indicators: indicators(),
        candle_ts_ms: 1_795_000_000_000,
        candles: 500,
        freshness: Freshness {
            as_of: "2026-11-18T09:00:00Z".parse().unwrap(),
            age_secs: 1_800,
            stale: false,
            stale_after_secs: 10_800,
            demo: true,
        },
    }
}

fn full_applied() -> AppliedConditions {
    AppliedConditions {
        trend: Trend::Ranging,
        volatility: Volatility::Low,
        vix: Some(18.2),
        indicators: indicators(),
        source: ConditionsSource::Computed,
        computed: Some(Box::new(full_report())),
    }
}

fn minimal_applied() -> AppliedConditions {
    AppliedConditions {
        trend: Trend::Neutral,
        volatility: Volatility::Medium,
        vix: None,
        indicators: BTreeMap::new(),
        source: ConditionsSource::Request,
        computed: None,
    }
}

fn full_market() -> MarketConditions {
    MarketConditions {
        trend: Some(Trend::Bearish),
        volatility: Some(Volatility::High),
        vix: Some(31.0),
        indicators: indicators(),
        limit: Some(10),
    }
}

fn full_quick() -> QuickConditions {
    QuickConditions {
        trend: Some(Trend::Bullish),
        volatility: Some(Volatility::Low),
        limit: Some(3),
    }
}

fn full_decision() -> Decision {
    Decision {
        id: "d-1".into(),
        at: at("2026-11-22T01:00:00Z"),
        strategy: "freqtrade_macd_hunter".into(),
        symbol: "BTC/USDT".into(),
        action: SignalAction::Buy,
        price: 64_000.5,
        base_confidence: 0.7,
        confidence: 0.74,
        ml_confidence: Some(0.8),
        memory_confidence: Some(0.66),
        learned_pattern: Some("BUY|trend=bullish".into()),
        position_size: 0.1,
        stop_loss: -1.5,
        take_profit: 3.0,
        reasoning: "base 0.70, ML 0.80".into(),
        model_version: Some("20261122_010000".into()),
        signature: Some("BUY|trend=bullish|volatility=medium|rsi=neutral".into()),
        outcome: Some(Outcome {
            decision_id: "d-1".into(),
            closed_at: at("2026-11-22T03:00:00Z"),
            exit_price: 64_500.0,
            pnl: 50.0,
            pnl_pct: 0.0078,
            win: true,
            exit_reason: Some("roi".into()),
            duration_secs: Some(7200),
        }),
        observed: true,
        source: Some("bot 0b5e".into()),
    }
}

fn minimal_decision() -> Decision {
    Decision {
        action: SignalAction::Hold,
        ml_confidence: None,
        memory_confidence: None,
        learned_pattern: None,
        model_version: None,
        signature: None,
        outcome: None,
        observed: false,
        source: None,
        ..full_decision()
    }
}

fn full_job_run() -> JobRun {
    JobRun {
        id: "0b5e".into(),
        job: "rotation".into(),
        trigger: JobTrigger::CatchUp,
        started_at: at("2026-11-22T02:00:00Z"),
        finished_at: at("2026-11-22T02:00:09Z"),
        outcome: JobOutcome::Failed,
        summary: "drained A".into(),
        error: Some("deploy B: already deployed".into()),
        details: json!({"actions": [{"drain": ID}]}),
    }
}

fn minimal_job_run() -> JobRun {
    JobRun {
        trigger: JobTrigger::Schedule,
        outcome: JobOutcome::Skipped,
        error: None,
        details: Value::Null,
        ..full_job_run()
    }
}

fn full_pulse() -> DaemonPulse {
    DaemonPulse {
        uptime_secs: 9000,
        counts: Counts {
            strategies: 11,
            strategies_by_status: BTreeMap::from([("active".into(), 8), ("archived".into(), 3)]),
            registry_errors: 1,
            connections: 2,
            subscribers: 1,
        },
        host: HostStatus {
            hostname: Some("box".into()),
            cpu_count: 2,
            cpu_percent: 12.5,
            memory_total_bytes: 1 << 34,
            memory_used_bytes: 1 << 30,
            load_average: [0.5, 0.25, 0.125],
        },
        process: ProcessStatus {
            rss_bytes: 1 << 24,
            cpu_percent: 0.5,
        },
        risk: RiskStatus {
            limits: RiskLimits {
                max_drawdown: Some(150.0),
                daily_loss: Some(75.0),
                bot_loss: Some(40.0),
            },
            tripped: true,
            trips: vec![risk_trip()],
            equity: -30.0,
            peak: 12.0,
            drawdown: 42.0,
            day: Some("2026-11-22".parse().unwrap()),
            day_loss: 26.0,
            last_reset: Some(RiskResetInfo {
                at: at("2026-11-21T08:00:00Z"),
                reason: Some("new week".into()),
                by: Some("memctl".into()),
            }),
        },
    }
}

fn minimal_pulse() -> DaemonPulse {
    let mut pulse = full_pulse();
    pulse.host.hostname = None;
    pulse.counts.strategies_by_status.clear();
    pulse.risk = RiskStatus::default();
    pulse
}

fn full_latency() -> LatencyStats {
    LatencyStats {
        count: 42,
        avg: Some(0.18),
        p50: Some(0.15),
        p99: Some(1.42),
        max: Some(2.0),
        last: Some(0.2),
        total_count: 120,
        total_ms: 22.0,
    }
}

fn full_mem_metrics() -> MemMetrics {
    MemMetrics {
        at: at("2026-11-22T10:30:00Z"),
        uptime_secs: 9000,
        window_secs: 3600,
        decisions_per_hour: 42,
        decisions_total: 120,
        closed_24h: 40,
        wins_24h: 23,
        win_rate_24h: Some(0.575),
        outcomes_total: 118,
        prediction_latency_ms: full_latency(),
        enhancement_time_ms: full_latency(),
        memory_load_ms: full_latency(),
        learned_strategies: LearnedCounts {
            active: 2,
            deprecated: 1,
        },
        bot_polls: vec![BotPollMetrics {
            deployment_id: "0e0c8a4e-5b1f-4a53-9d39-2c1e0f7d6a11".parse().unwrap(),
            strategy_id: strategy_id(),
            strategy_name: "Freqtrade MACD Hunter".into(),
            poll_latency_ms: full_latency(),
            failed_polls: 1,
        }],
    }
}

fn minimal_mem_metrics() -> MemMetrics {
    MemMetrics {
        win_rate_24h: None,
        prediction_latency_ms: LatencyStats::default(),
        bot_polls: Vec::new(),
        ..full_mem_metrics()
    }
}

fn full_usage() -> DeploymentsUsage {
    DeploymentsUsage {
        deployments: vec![DeploymentUsage {
            deployment_id: "0e0c8a4e-5b1f-4a53-9d39-2c1e0f7d6a11".parse().unwrap(),
            cpu_percent: 3.5,
            rss_bytes: 320 << 20,
        }],
    }
}

/// Every event, each variant with every optional member set and with none.
fn events() -> Vec<Event> {
    vec![
        Event::DaemonStopping(DaemonStopping {
            reason: "SIGTERM".into(),
        }),
        Event::RegistryChanged(RegistryChanged {
            strategy_id: strategy_id(),
            change: RegistryChange::Added,
            strategy: Some(Box::new(full_summary())),
        }),
        Event::RegistryChanged(RegistryChanged {
            strategy_id: strategy_id(),
            change: RegistryChange::Removed,
            strategy: None,
        }),
        Event::RegistryInvalid(RegistryInvalid {
            path: "/x.json".into(),
            problem: "bad".into(),
            strategy_id: Some(strategy_id()),
        }),
        Event::RegistryInvalid(RegistryInvalid {
            path: "/x.json".into(),
            problem: "bad".into(),
            strategy_id: None,
        }),
        Event::DeploymentChanged(Box::new(DeploymentChanged {
            deployment: full_deployed(),
        })),
        Event::DeploymentChanged(Box::new(DeploymentChanged {
            deployment: minimal_deployed(),
        })),
        Event::BotLog(BotLog {
            deployment_id: DeploymentId::new_random(),
            strategy_id: strategy_id(),
            lines: vec!["2026-11-22 01:00:00 - freqtrade - INFO - Bot heartbeat".into()],
        }),
        Event::ModelProgress(TrainProgress {
            stage: "training".into(),
            done: 3,
            total: 10,
            message: "tree 3 of 10".into(),
        }),
        Event::ModelChanged(ModelChanged {
            action: "promoted".into(),
            version: "20261122_010000".into(),
            current: Some("20261122_010000".into()),
            reason: "accuracy +2.5 points".into(),
        }),
        Event::ModelChanged(ModelChanged {
            action: "rejected".into(),
            version: "20261122_010000".into(),
            current: None,
            reason: "no better".into(),
        }),
        Event::DecisionLogged(Box::new(full_decision())),
        Event::DecisionLogged(Box::new(minimal_decision())),
        Event::MemoryChanged(MemoryChanged {
            file: "learned_strategies.json".into(),
            applied: false,
            error: Some("learned[0].wins: 9 wins out of 3 trades".into()),
            summary: Some("2 learned strategies".into()),
        }),
        Event::MemoryChanged(MemoryChanged {
            file: "learned_strategies.json".into(),
            applied: true,
            error: None,
            summary: None,
        }),
        Event::JobFinished(Box::new(full_job_run())),
        Event::JobFinished(Box::new(minimal_job_run())),
        Event::JobProgress(JobProgress {
            run_id: "8f1c".into(),
            job: "data_refresh".into(),
            done: 2,
            total: 4,
            message: "ETH/USDT 1h".into(),
        }),
        Event::MarketChanged(Box::new(MarketState {
            conditions: Some(Box::new(full_report())),
            error: None,
        })),
        Event::MarketChanged(Box::new(MarketState {
            conditions: None,
            error: Some("no candles".into()),
        })),
        Event::QueueChanged(Box::new(queue_job(true))),
        Event::QueueChanged(Box::new(queue_job(false))),
        Event::RiskTripped(Box::new(risk_trip())),
        Event::RiskTripped(Box::new(RiskTrip {
            bots: Vec::new(),
            ..risk_trip()
        })),
        Event::RiskReset(Box::new(RiskReset {
            at: at("2026-11-22T03:00:00Z"),
            reason: Some("checked the bots".into()),
            by: Some("memctl".into()),
            cleared: vec![risk_trip()],
        })),
        Event::RiskReset(Box::new(RiskReset {
            at: at("2026-11-22T03:00:00Z"),
            reason: None,
            by: None,
            cleared: Vec::new(),
        })),
        Event::DaemonPulse(Box::new(full_pulse())),
        Event::DaemonPulse(Box::new(minimal_pulse())),
        Event::MemMetrics(Box::new(full_mem_metrics())),
        Event::MemMetrics(Box::new(minimal_mem_metrics())),
        Event::DeploymentsUsage(full_usage()),
        Event::DeploymentsUsage(DeploymentsUsage {
            deployments: Vec::new(),
        }),
        Event::AlertChanged(Box::new(alert_status())),
        Event::AlertChanged(Box::new(AlertStatus {
            targets: vec![AlertTargetStatus {
                target: "log".into(),
                result: None,
                attempts: 0,
                error: None,
            }],
            ..alert_status()
        })),
    ]
}

fn alert_status() -> AlertStatus {
    AlertStatus {
        id: "4792d8d4-75f8-46e1-8dca-a44544ef9181".into(),
        rule: "bot_failed".into(),
        severity: "critical".into(),
        title: "Bot Freqtrade MACD Hunter failed".into(),
        text: "gave up after 2 restarts: Fatal exception".into(),
        raised_at: at("2026-11-22T02:00:00Z"),
        targets: vec![
            AlertTargetStatus {
                target: "telegram/4242".into(),
                result: Some(DeliveryResult::Sent),
                attempts: 1,
                error: None,
            },
            AlertTargetStatus {
                target: "webhook".into(),
                result: Some(DeliveryResult::Failed),
                attempts: 3,
                error: Some("webhook answered 503 Service Unavailable".into()),
            },
        ],
    }
}

fn risk_trip() -> RiskTrip {
    RiskTrip {
        limit: RiskLimit::DailyLoss,
        figure: 26.0,
        threshold: 20.0,
        bots: vec![RiskBot {
            deployment_id: DeploymentId::new_random(),
            strategy_id: strategy_id(),
            strategy_name: "Freqtrade Aggressive RSI".into(),
        }],
        at: at("2026-11-22T02:00:00Z"),
        message: "the fleet lost 26.00 today, over [risk] daily_loss 20.00".into(),
    }
}

#[test]
fn the_document_is_openapi_3_1() {
    assert_eq!(document()["openapi"], "3.1.0");
}

#[test]
fn strategy_summary() {
    let full = assert_valid("StrategySummary", &full_summary());
    assert_valid("StrategySummary", &minimal_summary());
    assert_agrees::<StrategySummary>("StrategySummary", &full);
}

#[test]
fn deployed_strategy() {
    let full = assert_valid("DeployedStrategy", &full_deployed());
    assert_valid("DeployedStrategy", &minimal_deployed());
    assert_agrees::<DeployedStrategy>("DeployedStrategy", &full);
    assert_agrees::<BotStats>("BotStats", &full["stats"]);
    assert_agrees::<Attachment>("Attachment", &full["attached"]);
    assert_valid(
        "DeployedList",
        &DeployedList {
            notes: vec!["left running: an attached bot".into()],
            deployments: vec![full_deployed(), minimal_deployed()],
        },
    );
    // Out of the range of the integer types serde reads.
    let validator = validator("DeployedStrategy");
    for (key, value) in [
        ("port", json!(65536)),
        ("processId", json!(4_294_967_296_u64)),
        ("restarts", json!(4_294_967_296_u64)),
    ] {
        let mut changed = full.clone();
        changed[key] = value;
        assert!(!validator.is_valid(&changed), "{key}");
        assert!(serde_json::from_value::<DeployedStrategy>(changed).is_err());
    }
}

#[test]
fn recommendation() {
    let full = assert_valid("Recommendation", &full_recommendation());
    assert_valid("Recommendation", &minimal_recommendation());
    assert_agrees::<Recommendation>("Recommendation", &full);
    assert_agrees::<ScorePoint>("ScorePoint", &full["breakdown"][0]);
    let list = Recommendations {
        conditions: full_applied(),
        recommendations: vec![full_recommendation(), minimal_recommendation()],
        candidates: 7,
        message: "MEM recommends 2 strategies".into(),
        live_metrics_min_trades: 30,
    };
    let list = assert_valid("Recommendations", &list);
    assert_agrees::<Recommendations>("Recommendations", &list);
}

#[test]
fn market_conditions_and_quick_conditions() {
    let full = assert_valid("MarketConditions", &full_market());
    assert_eq!(
        assert_valid("MarketConditions", &MarketConditions::default()),
        json!({})
    );
    assert_agrees::<MarketConditions>("MarketConditions", &full);
    let full = assert_valid("QuickConditions", &full_quick());
    assert_eq!(
        assert_valid("QuickConditions", &QuickConditions::default()),
        json!({})
    );
    assert_agrees::<QuickConditions>("QuickConditions", &full);
    // `limit` is a usize: up to u64::MAX, not one more.
    for name in ["MarketConditions", "QuickConditions"] {
        let validator = validator(name);
        assert!(validator.is_valid(&json!({"limit": u64::MAX})));
        let over: Value = serde_json::from_str("{\"limit\": 18446744073709551616}").unwrap();
        assert!(!validator.is_valid(&over), "{name}");
        assert!(serde_json::from_value::<QuickConditions>(over).is_err());
    }
}

#[test]
fn trend_and_volatility() {
    for trend in Trend::ALL {
        assert_valid("Trend", &trend);
    }
    for volatility in Volatility::ALL {
        assert_valid("Volatility", &volatility);
    }
    assert!(!validator("Trend").is_valid(&json!("sideways")));
    assert!(!validator("Volatility").is_valid(&json!("High")));
}

#[test]
fn applied_conditions() {
    let full = assert_valid("AppliedConditions", &full_applied());
    assert_valid("AppliedConditions", &minimal_applied());
    assert_agrees::<AppliedConditions>("AppliedConditions", &full);
    assert_agrees::<ConditionsReport>("ConditionsReport", &full["computed"]);
}

#[test]
fn every_string_enum_variant_validates() {
    fn each<T: Serialize>(name: &str, variants: &[T]) {
        let values: Vec<Value> = variants.iter().map(|v| assert_valid(name, v)).collect();
        assert_eq!(
            schema_of(name)["enum"].as_array().unwrap(),
            &values,
            "{name}: the schema's variants are not the ones serde writes"
        );
    }
    each("StrategyStatus", &StrategyStatus::ALL);
    each(
        "DeliveryResult",
        &[
            DeliveryResult::Sent,
            DeliveryResult::Failed,
            DeliveryResult::GivenUp,
        ],
    );
    each(
        "Origin",
        &[
            Origin::BuiltIn,
            Origin::Imported,
            Origin::Research,
            Origin::Learned,
        ],
    );
    each(
        "DeploymentType",
        &[DeploymentType::Freqtrade, DeploymentType::Native],
    );
    each(
        "DeploymentStatus",
        &[
            DeploymentStatus::Starting,
            DeploymentStatus::Running,
            DeploymentStatus::Stopping,
            DeploymentStatus::Stopped,
            DeploymentStatus::Crashed,
            DeploymentStatus::Restarting,
            DeploymentStatus::Failed,
        ],
    );
    each(
        "StartedBy",
        &[StartedBy::Manual, StartedBy::Rotation, StartedBy::Regime],
    );
    each("Trend", &Trend::ALL);
    each("Volatility", &Volatility::ALL);
    each(
        "ConditionsSource",
        &[ConditionsSource::Request, ConditionsSource::Computed],
    );
    each(
        "MetricsSource",
        &[
            MetricsSource::Live,
            MetricsSource::Backtest,
            MetricsSource::Unmeasured,
        ],
    );
    each(
        "RegistryChange",
        &[
            RegistryChange::Added,
            RegistryChange::Updated,
            RegistryChange::Removed,
        ],
    );
    each(
        "SignalAction",
        &[SignalAction::Buy, SignalAction::Sell, SignalAction::Hold],
    );
    each(
        "JobTrigger",
        &[
            JobTrigger::Schedule,
            JobTrigger::Manual,
            JobTrigger::CatchUp,
        ],
    );
    each(
        "JobOutcome",
        &[
            JobOutcome::Succeeded,
            JobOutcome::Skipped,
            JobOutcome::Failed,
            JobOutcome::Missed,
        ],
    );
}

#[test]
fn every_event_validates_as_delivered() {
    let message = validator("EventMessage");
    let any_data = validator("Event");
    let mut seen = Vec::new();
    for (i, event) in events().into_iter().enumerate() {
        let name = event.name();
        let schema = event.data_schema();
        let params = EventMessage {
            seq: i as u64 + 1,
            at: at("2026-11-22T01:02:03.5Z"),
            event,
        }
        .to_notification()
        .params;
        let problems = errors(&message, &params);
        assert!(problems.is_empty(), "{name}: {params:#}: {problems:#?}");
        let data = &params["data"];
        let problems = errors(&validator(&schema), data);
        assert!(problems.is_empty(), "{name} as {schema}: {problems:#?}");
        assert!(
            Event::data_schemas().contains(&(name, schema.clone())),
            "{name} is listed with another schema than {schema}"
        );
        // The name, not the data, tells the payloads apart: `Event` is their `anyOf`.
        assert!(any_data.is_valid(data), "{name}");
        seen.push(name);
    }
    seen.dedup();
    let table: Vec<&str> = Event::data_schemas().into_iter().map(|(n, _)| n).collect();
    assert_eq!(seen, table, "the samples cover every event, in order");
}

#[test]
fn event_payloads_agree_with_serde() {
    let full = |event: Event| {
        let params = EventMessage {
            seq: 1,
            at: at("2026-11-22T01:02:03Z"),
            event,
        }
        .to_notification()
        .params;
        params["data"].clone()
    };
    assert_agrees::<DaemonStopping>(
        "DaemonStopping",
        &full(Event::DaemonStopping(DaemonStopping {
            reason: "SIGINT".into(),
        })),
    );
    assert_agrees::<RegistryChanged>("RegistryChanged", &full(events()[1].clone()));
    assert_agrees::<RegistryInvalid>("RegistryInvalid", &full(events()[3].clone()));
    assert_agrees::<DeploymentChanged>("DeploymentChanged", &full(events()[5].clone()));
    assert_agrees::<BotLog>("BotLog", &full(events()[7].clone()));
    assert_agrees::<TrainProgress>("TrainProgress", &full(events()[8].clone()));
    assert_agrees::<ModelChanged>("ModelChanged", &full(events()[9].clone()));
    let decision = full(events()[11].clone());
    assert_agrees::<Decision>("Decision", &decision);
    assert_agrees::<Outcome>("Outcome", &decision["outcome"]);
    assert_agrees::<MemoryChanged>("MemoryChanged", &full(events()[13].clone()));
    assert_agrees::<JobRun>("JobRun", &full(events()[15].clone()));
    assert_agrees::<JobProgress>("JobProgress", &full(events()[17].clone()));
    let market = full(events()[18].clone());
    let mut both = market.clone(); // every member, though one comes without the other
    both["error"] = json!("too few candles");
    assert_agrees::<MarketState>("MarketState", &both);
    assert_agrees::<Freshness>("Freshness", &market["conditions"]["freshness"]);
    let job = full(events()[20].clone());
    assert_agrees::<mem_protocol::backtest::QueueJob>("QueueJob", &job);
    let result = &job["result"];
    assert_agrees::<mem_protocol::backtest::BacktestResult>("BacktestResult", result);
    assert_agrees::<mem_protocol::backtest::BacktestFigures>("BacktestFigures", &result["figures"]);
    assert_agrees::<mem_protocol::backtest::WalkForward>("WalkForward", &result["walkForward"]);
    assert_agrees::<mem_protocol::backtest::Fold>("Fold", &result["walkForward"]["folds"][0]);
    assert_agrees::<mem_protocol::backtest::BacktestParams>("BacktestParams", &job["params"]);
    let trip = full(events()[22].clone());
    assert_agrees::<RiskTrip>("RiskTrip", &trip);
    assert_agrees::<RiskBot>("RiskBot", &trip["bots"][0]);
    let reset = full(events()[24].clone());
    assert_agrees::<RiskReset>("RiskReset", &reset);
    let pulse = full(events()[26].clone());
    assert_agrees::<DaemonPulse>("DaemonPulse", &pulse);
    assert_agrees::<Counts>("Counts", &pulse["counts"]);
    assert_agrees::<HostStatus>("HostStatus", &pulse["host"]);
    assert_agrees::<ProcessStatus>("ProcessStatus", &pulse["process"]);
    assert_agrees::<RiskStatus>("RiskStatus", &pulse["risk"]);
    assert_agrees::<RiskLimits>("RiskLimits", &pulse["risk"]["limits"]);
    assert_agrees::<RiskResetInfo>("RiskResetInfo", &pulse["risk"]["lastReset"]);
    let metrics = full(events()[28].clone());
    assert_agrees::<MemMetrics>("MemMetrics", &metrics);
    assert_agrees::<LatencyStats>("LatencyStats", &metrics["enhancementTimeMs"]);
    assert_agrees::<LearnedCounts>("LearnedCounts", &metrics["learnedStrategies"]);
    assert_agrees::<BotPollMetrics>("BotPollMetrics", &metrics["botPolls"][0]);
    let usage = full(events()[30].clone());
    assert_agrees::<DeploymentsUsage>("DeploymentsUsage", &usage);
    assert_agrees::<DeploymentUsage>("DeploymentUsage", &usage["deployments"][0]);
    let alert = full(events()[32].clone());
    assert_agrees::<AlertStatus>("AlertStatus", &alert);
    assert_agrees::<AlertTargetStatus>("AlertTargetStatus", &alert["targets"][1]);
    let message = EventMessage {
        seq: 7,
        at: at("2026-11-22T01:02:03Z"),
        event: events()[0].clone(),
    }
    .to_notification()
    .params;
    for key in ["seq", "at", "data"] {
        let mut without = message.clone();
        without.as_object_mut().unwrap().remove(key);
        assert!(!validator("EventMessage").is_valid(&without), "{key}");
    }
}

/// What serde reads beyond the schema (input only: serde never writes these). A schema
/// cannot say "accepted but never written" for an enum word or an id's spelling, so these
/// stay out of it; this test keeps the list true.
#[test]
fn serde_reads_more_than_the_schema_says() {
    let reads = |name: &str, value: Value, read: fn(Value) -> bool| {
        assert!(
            read(value.clone()),
            "serde no longer reads {value} as {name}"
        );
        assert!(
            !validator(name).is_valid(&value),
            "{name} now allows {value}"
        );
    };
    // `alias`es.
    reads("Origin", json!("builtin"), |v| {
        serde_json::from_value::<Origin>(v).is_ok()
    });
    for word in ["buy", "sell", "hold"] {
        reads("SignalAction", json!(word), |v| {
            serde_json::from_value::<SignalAction>(v).is_ok()
        });
    }
    // uuid's own Deserialize (DeploymentId derives it) reads the simple, braced and URN
    // forms; StrategyId's reads only the hyphenated one, as the schema's `uuid` format.
    for form in [
        "0e0c8a4e5b1f4a539d392c1e0f7d6a11",
        "{0e0c8a4e-5b1f-4a53-9d39-2c1e0f7d6a11}",
        "urn:uuid:0e0c8a4e-5b1f-4a53-9d39-2c1e0f7d6a11",
    ] {
        reads("DeploymentId", json!(form), |v| {
            serde_json::from_value::<DeploymentId>(v).is_ok()
        });
        assert!(serde_json::from_value::<StrategyId>(json!(form)).is_err());
    }
}

/// What the schema allows beyond serde: JSON Schema's `integer` is any number with no
/// fraction, serde_json's integers are written without one (`1.0` is a float to it);
/// and u64 members have no `maximum` (serde_json reads up to u64::MAX).
#[test]
fn the_schema_allows_more_than_serde_reads() {
    let mut summary = serde_json::to_value(full_summary()).unwrap();
    summary["liveTrades"] = json!(1.0);
    assert!(validator("StrategySummary").is_valid(&summary));
    assert!(serde_json::from_value::<StrategySummary>(summary.clone()).is_err());
    summary["liveTrades"] = serde_json::from_str("18446744073709551616").unwrap();
    assert!(validator("StrategySummary").is_valid(&summary));
    assert!(serde_json::from_value::<StrategySummary>(summary).is_err());
}
