//! MEM enhancement and the native replay against issue 7's bars (release, this machine):
//! - the whole enhancement of one signal: one new candle into the incremental indicators
//!   and features, the model's prediction, the market-state signature, the memory lookup
//!   and the scoring (bar: under 100 µs, at least 10,000 signals/s on one core). A second
//!   function adds logging the decision (`Memory::decide`, batched appends), which is not
//!   part of the bar, to show what it costs;
//! - a native RSI strategy (the seed's default parameters) replaying 1,000,000 candles
//!   through `Engine::step` with MEM on (bar: under 10 s), and the same with MEM off side
//!   by side. The timed part is the engine (indicators, features, paper broker, strategy,
//!   enhancement, decision and outcome logs with the learning loop, batched) and one
//!   `Memory::sync` at the end; writing the closed trades to the registry is the runner's
//!   job (`native::runner`), not the engine's, and is not timed. Each iteration starts on
//!   a fresh data directory with an empty memory (set up untimed).
//!
//! Every memory sits beside a copy of the shipped registry (`data/strategy_registry`), as
//! in the daemon: the learning loop's registry writes (registering a learned strategy,
//! recording each trade that follows one, the parameter history) happen and are timed.
//! Batched durability leaves the decision log's appends unsynced until `Memory::sync`, but
//! `learned_strategies.json`, `parameter_updates.json` and the registry files are written
//! the way the daemon writes them (atomically, synced), on this machine's disk.
//!
//! The candles are the shipped ETH/BTC 5-minute file repeated to 1,000,000 rows: the price
//! jumps where one copy ends and the next begins, which is fine for timing. The model is
//! trained once, as in `benches/ml.rs`, on the daemon's dataset over the shipped pairs. The
//! memory of the first benchmark is pre-filled with 5,000 closed decisions over three
//! strategies and five shipped pairs (their real signatures and outcomes), so lookups run
//! on a populated memory with the learning loop's parameters and learned strategies.
//! `cargo bench -p memd --bench mem`.

mod common;

use common::{market, million_candles};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use mem_protocol::mem::{BaseSignal, LearnedStatus, PatternsParams, SignalAction};
use memd::bus::EventBus;
use memd::market::candles::{self, Candle, Timeframe};
use memd::market::features::{FeatureRow, FeatureState};
use memd::market::indicators::IndicatorState;
use memd::mem::enhance::EnhanceSettings;
use memd::mem::patterns;
use memd::mem::service::{EnhanceRequest, Memory, NewDecision, NewOutcome};
use memd::mem::store::Durability;
use memd::ml::model::{Hyper, Model};
use memd::ml::service::ServingModel;
use memd::ml::train;
use memd::native::engine::{Engine, EngineSpec};
use memd::native::paper::{PaperBroker, PaperSettings};
use memd::native::strategies;
use memd::registry::Registry;
use serde_json::Map;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const STEP_MS: i64 = 5 * 60 * 1000;
const PREFILL: usize = 5_000;
/// Candles a pre-filled decision's trade is held for.
const HOLD: usize = 12;

fn model() -> Model {
    let pairs = candles::list_pairs(market(), Timeframe::M5);
    let data = train::load(market(), &pairs, Timeframe::M5, &mut |_, _, _| {}).unwrap();
    let n = 45_000.min(data.rows.len());
    Model::train(&data.rows[..n], &data.labels[..n], &Hyper::default()).unwrap()
}

/// A memory on a fresh data directory, as the daemon opens it, beside a copy of the shipped
/// registry (`data/strategy_registry`: `native_rsi`, `native_macd`, `native_momentum`, ...),
/// so the learning loop does its registry writes: a learned strategy is registered and
/// linked to its parent, and each trade that follows it goes to its trade history.
fn fresh_memory() -> (TempDir, Arc<Memory>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("strategy_registry");
    std::fs::create_dir_all(root.join("metadata")).unwrap();
    let shipped = market().join("../strategy_registry/metadata");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, root.join("metadata").join(path.file_name().unwrap())).unwrap();
    }
    let bus = Arc::new(EventBus::new(1024));
    let registry = Arc::new(Registry::open(&root, bus.clone()).unwrap());
    let memory = Memory::open(dir.path(), EnhanceSettings::default(), registry, bus).unwrap();
    (dir, Arc::new(memory))
}

/// The model's prediction as the engine asks it: probability and direction.
fn ml(model: &Model, row: &FeatureRow) -> (f64, String) {
    let p = model.predict_proba(row);
    let direction = if row[1] > 0.0 { "bullish" } else { "bearish" };
    (p, direction.to_string())
}

fn volatility_pct(indicators: &IndicatorState, close: f64, reference: f64) -> f64 {
    indicators
        .atr14()
        .map(|atr| atr / close * 100.0)
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(reference)
}

/// The enhancement request for `strategy` on `symbol` at candle `c`, as `Engine::enter`
/// builds it.
#[allow(clippy::too_many_arguments)]
fn request(
    strategy: &str,
    symbol: &str,
    action: SignalAction,
    confidence: f64,
    c: &Candle,
    row: Option<&FeatureRow>,
    indicators: &IndicatorState,
    model: &Model,
    reference: f64,
) -> EnhanceRequest {
    EnhanceRequest {
        signal: BaseSignal {
            strategy: strategy.to_string(),
            symbol: symbol.to_string(),
            action,
            confidence,
        },
        ml: row.map(|r| ml(model, r)),
        pattern: None,
        volatility_pct: volatility_pct(indicators, c.close, reference),
        signature: patterns::signature(action, indicators, c.close, reference),
        // As a native runner asks: the volatility rule only.
        regime: None,
    }
}

/// 5,000 decisions with their outcomes: three strategies over five shipped pairs, a
/// decision every few candles (BUY under RSI 50, else SELL), closed `HOLD` candles later.
fn prefill(memory: &Memory, model: &Model) {
    let strategies = ["native_rsi", "native_macd", "native_momentum"];
    let pairs = ["ETH/BTC", "LTC/BTC", "XMR/BTC", "DASH/BTC", "ZEC/BTC"];
    let reference = memory.settings().reference_volatility_pct;
    let per_pair = PREFILL / pairs.len();
    let mut n = 0usize;
    for pair in pairs {
        let file = market().join(format!("{}-5m.feather", pair.replace('/', "_")));
        let cs = candles::read_file(&file).unwrap();
        let every = (cs.len() - 100 - HOLD) / per_pair;
        let mut indicators = IndicatorState::new();
        let mut features = FeatureState::new();
        let mut made = 0usize;
        for (i, c) in cs.iter().enumerate() {
            if made == per_pair {
                break;
            }
            indicators.update(c.open, c.high, c.low, c.close, c.volume);
            let row = features.update(c);
            if i < 100 || (i - 100) % every != 0 || i + HOLD >= cs.len() {
                continue;
            }
            let action = if indicators.rsi14().unwrap() < 50.0 {
                SignalAction::Buy
            } else {
                SignalAction::Sell
            };
            let strategy = strategies[n % strategies.len()];
            let r = request(
                strategy,
                pair,
                action,
                0.65,
                c,
                row.as_ref(),
                &indicators,
                model,
                reference,
            );
            let signature = r.signature.clone();
            let enhanced = memory.enhance(&r);
            let at = chrono::DateTime::from_timestamp_millis(c.ts_ms).unwrap();
            let d = memory
                .decide(
                    NewDecision {
                        strategy: strategy.to_string(),
                        enhanced,
                        price: c.close,
                        at,
                        signature,
                        model_version: None,
                        id: None,
                        observed: false,
                        source: None,
                    },
                    Durability::Batched,
                    false,
                )
                .unwrap();
            let exit = cs[i + HOLD];
            let sign = if action == SignalAction::Buy {
                1.0
            } else {
                -1.0
            };
            let pnl_pct = sign * (exit.close - c.close) / c.close;
            memory
                .outcome(
                    NewOutcome {
                        decision_id: d.id,
                        exit_price: exit.close,
                        pnl: pnl_pct * 100.0,
                        pnl_pct,
                        closed_at: chrono::DateTime::from_timestamp_millis(exit.ts_ms).unwrap(),
                        exit_reason: None,
                        duration_secs: None,
                    },
                    Durability::Batched,
                    false,
                )
                .unwrap();
            n += 1;
            made += 1;
        }
    }
    memory.sync().unwrap();
    let learned = memory
        .patterns(&PatternsParams { strategy: None })
        .learned
        .len();
    let params = memory
        .parameters()
        .map(|p| p.current.len())
        .unwrap_or_default();
    println!(
        "[memd-bench] memory pre-filled: {n} closed decisions, {learned} learned strategies, \
         parameters adjusted for {params} strategies"
    );
}

fn enhance_bench(c: &mut Criterion, candles: &[Candle], model: &Model) {
    let (_dir, memory) = fresh_memory();
    let started = Instant::now();
    prefill(&memory, model);
    println!(
        "[memd-bench] pre-fill took {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let reference = memory.settings().reference_volatility_pct;

    // Warm incremental state; each iteration feeds one more candle and enhances a BUY of
    // `native_rsi` on ETH/BTC, a strategy and pair the memory holds 50+ closed decisions of.
    // The second function's decisions stay open: the pair's window of 50 fills with them,
    // which the lookup walks all the same.
    let mut indicators = IndicatorState::new();
    let mut features = FeatureState::new();
    for c in &candles[..1000] {
        indicators.update(c.open, c.high, c.low, c.close, c.volume);
        features.update(c);
    }
    let mut next = 1000usize;
    let mut candle = || {
        next = if next + 1 >= candles.len() {
            1000
        } else {
            next + 1
        };
        candles[next]
    };

    let mut g = c.benchmark_group("mem");
    g.bench_function(
        "enhance one signal: features + indicators + model + signature + memory + scoring",
        |b| {
            b.iter_batched(
                &mut candle,
                |c| {
                    indicators.update(c.open, c.high, c.low, c.close, c.volume);
                    let row = features.update(&c);
                    let r = request(
                        "native_rsi",
                        "ETH/BTC",
                        SignalAction::Buy,
                        0.65,
                        &c,
                        row.as_ref(),
                        &indicators,
                        model,
                        reference,
                    );
                    black_box(memory.enhance(&r))
                },
                BatchSize::SmallInput,
            )
        },
    );
    g.bench_function(
        "enhance one signal + log the decision (batched; not part of the bar)",
        |b| {
            b.iter_batched(
                &mut candle,
                |c| {
                    indicators.update(c.open, c.high, c.low, c.close, c.volume);
                    let row = features.update(&c);
                    let r = request(
                        "native_rsi",
                        "ETH/BTC",
                        SignalAction::Buy,
                        0.65,
                        &c,
                        row.as_ref(),
                        &indicators,
                        model,
                        reference,
                    );
                    let signature = r.signature.clone();
                    let enhanced = memory.enhance(&r);
                    black_box(
                        memory
                            .decide(
                                NewDecision {
                                    strategy: "native_rsi".into(),
                                    enhanced,
                                    price: c.close,
                                    at: chrono::DateTime::from_timestamp_millis(c.ts_ms).unwrap(),
                                    signature,
                                    model_version: None,
                                    id: None,
                                    observed: false,
                                    source: None,
                                },
                                Durability::Batched,
                                false,
                            )
                            .unwrap(),
                    )
                },
                BatchSize::SmallInput,
            )
        },
    );
    g.finish();
}

/// An RSI engine (the seed's defaults) on ETH/BTC 5m; MEM on with a fresh memory, or off.
fn engine(mem: bool, model: &Arc<Model>) -> (Option<TempDir>, Option<Arc<Memory>>, Engine) {
    let (dir, memory) = if mem {
        let (dir, memory) = fresh_memory();
        (Some(dir), Some(memory))
    } else {
        (None, None)
    };
    let engine = Engine::new(
        EngineSpec {
            strategy_key: "native_rsi".into(),
            symbol: "ETH/BTC".into(),
            timeframe_ms: STEP_MS,
            mem_enabled: mem,
            trade_prefix: "bench".into(),
        },
        strategies::build("rsi", &Map::new()).unwrap(),
        PaperBroker::new(PaperSettings::default()),
        memory.clone(),
        mem.then(|| ServingModel::fixed("bench", model.clone())),
        EnhanceSettings::default(),
        Durability::Batched,
        false,
    );
    (dir, memory, engine)
}

/// The replay the runner does, without the registry write: every candle, then the end.
fn replay(
    (dir, memory, mut engine): (Option<TempDir>, Option<Arc<Memory>>, Engine),
    candles: &[Candle],
) -> (Option<TempDir>, Engine) {
    for c in candles {
        engine.step(c);
    }
    engine.finish();
    if let Some(memory) = &memory {
        memory.sync().unwrap();
    }
    (dir, engine)
}

fn replay_bench(c: &mut Criterion, candles: &[Candle], model: &Arc<Model>) {
    // One untimed run of each, for the counts.
    for mem in [true, false] {
        let started = Instant::now();
        let parts = engine(mem, model);
        let memory = parts.1.clone();
        let (_dir, mut engine) = replay(parts, candles);
        let elapsed = started.elapsed().as_secs_f64();
        let s = engine.stats().clone();
        let trades = engine.take_trades();
        assert!(engine.take_errors().is_empty());
        println!(
            "[memd-bench] replay, MEM {}: {} candles, {} signals, {} decisions, {} skipped, \
             {} trades ({} MEM-enhanced, {} following a learned strategy), \
             realised pnl {:+.4}, in {elapsed:.2} s",
            if mem { "on" } else { "off" },
            s.candles,
            s.signals,
            s.decisions,
            s.skipped,
            trades.len(),
            trades.iter().filter(|t| t.mem_enhanced).count(),
            trades
                .iter()
                .filter(|t| t.learned_pattern.is_some())
                .count(),
            engine.broker().realised_pnl(),
        );
        if let Some(memory) = memory {
            let learned = memory.patterns(&PatternsParams { strategy: None }).learned;
            let adjustments: usize = memory
                .parameters()
                .map(|p| {
                    p.history
                        .as_object()
                        .map(|dates| {
                            dates
                                .values()
                                .filter_map(|d| d["adjustments"].as_array().map(Vec::len))
                                .sum()
                        })
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            println!(
                "[memd-bench] replay, MEM on: the learning loop made {} learned strategies \
                 ({} in the registry, {} deprecated) and {adjustments} parameter adjustments",
                learned.len(),
                learned.iter().filter(|l| l.strategy_id.is_some()).count(),
                learned
                    .iter()
                    .filter(|l| l.status == LearnedStatus::Deprecated)
                    .count(),
            );
        }
    }

    let mut g = c.benchmark_group("native");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(30));
    for mem in [true, false] {
        let name = format!(
            "replay 1M candles, RSI, MEM {}",
            if mem { "on" } else { "off" }
        );
        g.bench_function(name, |b| {
            b.iter_batched(
                || engine(mem, model),
                |e| replay(e, candles),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let candles = million_candles();
    let started = Instant::now();
    let model = Arc::new(model());
    println!(
        "[memd-bench] model trained in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    enhance_bench(c, &candles, &model);
    replay_bench(c, &candles, &model);
}

criterion_group!(benches, bench);
criterion_main!(benches);
