//! Backtests of the native strategies with the native engine itself ([`Engine`]: the
//! strategy, the paper broker's fees, slippage, stops and targets, optionally MEM), so a
//! backtest's trades are the ones a paper replay of the same candles records: the same
//! engine, fed the same way (each candle [`Engine::step`]ped, then [`Engine::finish`]).
//!
//! Pure functions over candles the caller loaded: no I/O, except a throwaway memory in a
//! temporary directory for a backtest through MEM (the live memory is never touched). Long
//! loops check a cancel flag and report progress, so a queue can run them on a blocking
//! thread.
//!
//! Several pairs are one account: the starting balance is shared evenly between the pairs,
//! each traded by its own engine (with its own throwaway memory through MEM, so no pair
//! learns from another's future; every backtest, a fold's test too, starts with an empty
//! memory), and the figures are those of all their trades together.

use super::figures::{self, Trade};
use super::folds::{self, FoldRange};
use crate::bus::EventBus;
use crate::market::candles::Candle;
use crate::mem::enhance::EnhanceSettings;
use crate::mem::service::Memory;
use crate::mem::store::Durability;
use crate::ml::service::ServingModel;
use crate::native::engine::{Engine, EngineSpec, RECENT_CANDLES, time};
use crate::native::paper::{PaperBroker, PaperSettings};
use crate::native::strategies;
use crate::registry::Registry;
use chrono::{DateTime, Utc};
use mem_protocol::backtest::{BacktestFigures, EquityPoint, Fold, WalkForward};
use mem_protocol::registry::TradeRecord;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Candles between two looks at the cancel flag.
const CANCEL_EVERY: usize = 4096;
/// Draws for a candidate the strategy accepts (a MACD's fast period must stay under its
/// slow one, ...) before the epoch is given up.
const DRAWS_PER_CANDIDATE: u32 = 100;

/// How a native strategy is backtested: what a paper deployment of it would run with.
#[derive(Clone)]
pub struct NativeSetup {
    /// The native kind (`rsi`, `macd`, ...; see [`strategies::KINDS`]).
    pub kind: String,
    /// The registry strategy's `name`, which MEM's decisions carry.
    pub strategy_key: String,
    pub timeframe_ms: i64,
    /// Fees, slippage and the account's starting balance
    /// ([`crate::native::engine::paper_settings`] for a deployment's).
    pub paper: PaperSettings,
    /// `[mem.enhancement]`: through MEM, the enhancement; without, an entry's size, stop and
    /// target all the same.
    pub enhance: EnhanceSettings,
    /// Entries go through MEM, with a throwaway memory (and `model`, when given).
    pub through_mem: bool,
    pub model: Option<ServingModel>,
}

/// One pair's candles for a backtest: `warm` (the candles just before, maybe none) warms
/// the indicators and the strategy without trading; `candles` are traded.
#[derive(Debug, Clone, Copy)]
pub struct PairCandles<'a> {
    pub pair: &'a str,
    pub warm: &'a [Candle],
    pub candles: &'a [Candle],
}

impl<'a> PairCandles<'a> {
    /// All of `candles` traded, from a cold start (as a replay).
    pub fn new(pair: &'a str, candles: &'a [Candle]) -> Self {
        PairCandles {
            pair,
            warm: &[],
            candles,
        }
    }

    /// The candles opening in `[from_ms, to_ms)` of `all` (in time order), warmed by up to
    /// [`RECENT_CANDLES`] before them: a fold starts as if the strategy had been running.
    pub fn window(pair: &'a str, all: &'a [Candle], from_ms: i64, to_ms: i64) -> Self {
        let start = all.partition_point(|c| c.ts_ms < from_ms);
        let end = start + all[start..].partition_point(|c| c.ts_ms < to_ms);
        PairCandles {
            pair,
            warm: &all[start.saturating_sub(RECENT_CANDLES)..start],
            candles: &all[start..end],
        }
    }
}

/// A backtest's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeBacktest {
    /// Every closed trade, in closing order, as a paper replay records them (ids
    /// `backtest:{pair}:{n}`).
    pub trades: Vec<TradeRecord>,
    pub figures: BacktestFigures,
    pub equity: Vec<EquityPoint>,
    /// The first traded candle's open, the last one's close.
    pub data_from: DateTime<Utc>,
    pub data_to: DateTime<Utc>,
    /// Candles traded, signals, MEM decisions.
    pub candles: u64,
    pub signals: u64,
    pub decisions: u64,
    /// What the engine could not do and went on without (a throwaway memory's write).
    pub problems: Vec<String>,
}

/// Why a backtest gave no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BacktestError {
    #[error("cancelled")]
    Cancelled,
    /// A bad input, named: parameters the strategy refuses, no candle, a bad bound.
    #[error("{0}")]
    Invalid(String),
}

/// `done`, `total`, what is being done.
pub type Progress<'p> = &'p mut dyn FnMut(u64, u64, &str);

/// One pair's backtest.
pub fn backtest(
    setup: &NativeSetup,
    parameters: &Map<String, Value>,
    pair: PairCandles<'_>,
    cancel: &AtomicBool,
) -> Result<NativeBacktest, BacktestError> {
    backtest_pairs(setup, parameters, &[pair], cancel, &mut |_, _, _| {})
}

/// Several pairs as one account (see the module doc); progress counts pairs.
pub fn backtest_pairs(
    setup: &NativeSetup,
    parameters: &Map<String, Value>,
    pairs: &[PairCandles<'_>],
    cancel: &AtomicBool,
    progress: Progress<'_>,
) -> Result<NativeBacktest, BacktestError> {
    setup.paper.validate().map_err(BacktestError::Invalid)?;
    if pairs.is_empty() {
        return Err(BacktestError::Invalid("no pair to backtest".into()));
    }
    let share = setup.paper.starting_balance / pairs.len() as f64;
    let mut runs = Vec::with_capacity(pairs.len());
    for (i, pair) in pairs.iter().enumerate() {
        let run = run_pair(setup, parameters, pair, share, cancel)?;
        progress(
            i as u64 + 1,
            pairs.len() as u64,
            &format!("{}: {} trades", pair.pair, run.trades.len()),
        );
        runs.push(run);
    }
    let traded = pairs.iter().filter(|p| !p.candles.is_empty());
    let from_ms = traded.clone().map(|p| p.candles[0].ts_ms).min();
    let to_ms = traded
        .map(|p| p.candles[p.candles.len() - 1].ts_ms + setup.timeframe_ms)
        .max();
    let (Some(from_ms), Some(to_ms)) = (from_ms, to_ms) else {
        let names: Vec<&str> = pairs.iter().map(|p| p.pair).collect();
        return Err(BacktestError::Invalid(format!(
            "no candle to backtest for {}",
            names.join(", ")
        )));
    };
    let mut result = NativeBacktest {
        trades: Vec::new(),
        figures: BacktestFigures::default(),
        equity: Vec::new(),
        data_from: time(from_ms),
        data_to: time(to_ms),
        candles: 0,
        signals: 0,
        decisions: 0,
        problems: Vec::new(),
    };
    for run in runs {
        result.trades.extend(run.trades);
        result.candles += run.candles;
        result.signals += run.signals;
        result.decisions += run.decisions;
        result.problems.extend(run.problems);
    }
    result.trades.sort_by_key(|t| t.exit_time); // stable: a pair's own order kept
    let trades: Vec<Trade> = result.trades.iter().map(figure_trade).collect();
    let balance = setup.paper.starting_balance;
    result.figures = figures::figures(&trades, balance, from_ms, to_ms);
    result.equity = figures::equity(&trades, balance, from_ms);
    Ok(result)
}

/// A closed trade as the figures read it.
pub fn figure_trade(t: &TradeRecord) -> Trade {
    Trade {
        entry_ms: t.entry_time.timestamp_millis(),
        exit_ms: t.exit_time.timestamp_millis(),
        profit_abs: t.pnl,
        profit_ratio: t.pnl_pct,
    }
}

/// One pair's engine run.
struct PairRun {
    trades: Vec<TradeRecord>,
    candles: u64,
    signals: u64,
    decisions: u64,
    problems: Vec<String>,
}

/// Trades one pair on a paper broker holding `balance`, as a replay does: warm-up candles,
/// each candle stepped, the open position closed at the end.
fn run_pair(
    setup: &NativeSetup,
    parameters: &Map<String, Value>,
    pair: &PairCandles<'_>,
    balance: f64,
    cancel: &AtomicBool,
) -> Result<PairRun, BacktestError> {
    let strategy = strategies::build(&setup.kind, parameters).map_err(BacktestError::Invalid)?;
    let memory = if setup.through_mem {
        Some(ThrowawayMemory::open(&setup.enhance)?)
    } else {
        None
    };
    let mut paper = setup.paper.clone();
    paper.starting_balance = balance;
    let mut engine = Engine::new(
        EngineSpec {
            strategy_key: setup.strategy_key.clone(),
            symbol: pair.pair.to_string(),
            timeframe_ms: setup.timeframe_ms,
            mem_enabled: setup.through_mem,
            trade_prefix: format!("backtest:{}", pair.pair),
        },
        strategy,
        PaperBroker::new(paper),
        memory.as_ref().map(|m| m.memory.clone()),
        setup.model.clone().filter(|_| setup.through_mem),
        setup.enhance.clone(),
        Durability::Batched,
        false,
    );
    for c in pair.warm {
        engine.warm(c);
    }
    for (i, c) in pair.candles.iter().enumerate() {
        if i % CANCEL_EVERY == 0 && cancel.load(Ordering::Relaxed) {
            return Err(BacktestError::Cancelled);
        }
        engine.step(c);
    }
    engine.finish();
    let stats = engine.stats().clone();
    Ok(PairRun {
        trades: engine.take_trades(),
        candles: stats.candles,
        signals: stats.signals,
        decisions: stats.decisions,
        problems: engine.take_errors(),
    })
}

/// A memory of its own for one backtest, in a temporary directory removed when dropped,
/// beside an empty registry (the learning loop finds no strategy there to change).
struct ThrowawayMemory {
    memory: Arc<Memory>,
    _dir: tempfile::TempDir,
}

impl ThrowawayMemory {
    fn open(settings: &EnhanceSettings) -> Result<Self, BacktestError> {
        let fail = |e: String| BacktestError::Invalid(format!("a throwaway memory: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("memd-backtest-")
            .tempdir()
            .map_err(|e| fail(e.to_string()))?;
        let bus = Arc::new(EventBus::new(16));
        let registry = Registry::open(&dir.path().join("strategy_registry"), bus.clone())
            .map_err(|e| fail(format!("{e:#}")))?;
        let memory = Memory::open(dir.path(), settings.clone(), Arc::new(registry), bus)
            .map_err(|e| fail(e.to_string()))?;
        Ok(ThrowawayMemory {
            memory: Arc::new(memory),
            _dir: dir,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Optimisation

/// A search's size and its seed: the same seed draws the same candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Search {
    /// Candidates tried, the starting parameters first (at least 1).
    pub epochs: u32,
    pub seed: u64,
}

/// One candidate tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub parameters: Map<String, Value>,
    pub figures: BacktestFigures,
    pub objective: f64,
}

/// A search's best candidate, and every one tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimised {
    /// The best parameters, in the registry's form (each declared `value` replaced).
    pub parameters: Map<String, Value>,
    pub objective: f64,
    /// Their backtest.
    pub best: NativeBacktest,
    /// In the order tried; the first is the starting parameters.
    pub trials: Vec<Trial>,
    /// Candidates drawn that the strategy refused (redrawn, not tried).
    pub refused: u32,
}

/// What a search maximises: the Sharpe ratio, or the profit over the starting balance when
/// there is no Sharpe (no trade, or no spread of returns).
pub fn objective(figures: &BacktestFigures) -> f64 {
    figures.sharpe.unwrap_or(figures.profit_pct)
}

/// A random search over the parameters declared `optimizable`, each within its `min` and
/// `max` (integers stay integers, booleans flip): the starting parameters first, then
/// `epochs - 1` draws; each candidate backtested on `pairs`. A tie keeps the earlier
/// candidate, so the starting parameters are kept unless beaten.
pub fn optimise(
    setup: &NativeSetup,
    parameters: &Map<String, Value>,
    pairs: &[PairCandles<'_>],
    search: Search,
    cancel: &AtomicBool,
    progress: Progress<'_>,
) -> Result<Optimised, BacktestError> {
    let space = space(parameters).map_err(BacktestError::Invalid)?;
    let mut rng = SplitMix64(search.seed);
    let epochs = search.epochs.max(1);
    let mut best: Option<(f64, Map<String, Value>, NativeBacktest)> = None;
    let mut trials = Vec::with_capacity(epochs as usize);
    let mut refused = 0;
    for epoch in 0..epochs {
        let candidate = if epoch == 0 {
            Some(parameters.clone())
        } else if space.is_empty() {
            None // nothing to vary: the starting parameters are the only candidate
        } else {
            draw(setup, parameters, &space, &mut rng, &mut refused)
        };
        if let Some(candidate) = candidate {
            let run = backtest_pairs(setup, &candidate, pairs, cancel, &mut |_, _, _| {})?;
            let score = objective(&run.figures);
            trials.push(Trial {
                parameters: candidate.clone(),
                figures: run.figures.clone(),
                objective: score,
            });
            if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                best = Some((score, candidate, run));
            }
        }
        let (b, ..) = best.as_ref().expect("the first epoch sets it");
        progress(
            u64::from(epoch) + 1,
            u64::from(epochs),
            &format!("epoch {} of {epochs}: best objective {b:.4}", epoch + 1),
        );
    }
    let (objective, parameters, best) = best.expect("at least one epoch");
    Ok(Optimised {
        parameters,
        objective,
        best,
        trials,
        refused,
    })
}

/// One parameter's range.
#[derive(Debug, Clone, PartialEq)]
enum Dimension {
    Int { name: String, min: i64, max: i64 },
    Float { name: String, min: f64, max: f64 },
    Bool { name: String },
}

/// The parameters marked `optimizable`, with their bounds; an optimizable parameter
/// without usable bounds is an error naming it.
fn space(parameters: &Map<String, Value>) -> Result<Vec<Dimension>, String> {
    let mut dims = Vec::new();
    for (name, decl) in parameters {
        let Some(decl) = decl.as_object() else {
            continue; // a plain value declares nothing
        };
        if decl.get("optimizable").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let kind = decl.get("type").and_then(Value::as_str).unwrap_or("float");
        if matches!(kind, "boolean" | "bool") {
            dims.push(Dimension::Bool { name: name.clone() });
            continue;
        }
        let bound = |key: &str| decl.get(key).and_then(Value::as_f64);
        let (Some(min), Some(max)) = (bound("min"), bound("max")) else {
            return Err(format!(
                "parameter `{name}` is optimizable but declares no numeric `min` and `max`"
            ));
        };
        let dim = match kind {
            "integer" | "int" => Dimension::Int {
                name: name.clone(),
                min: min.ceil() as i64,
                max: max.floor() as i64,
            },
            "float" | "number" | "decimal" => Dimension::Float {
                name: name.clone(),
                min,
                max,
            },
            other => {
                return Err(format!(
                    "parameter `{name}` is optimizable but of type `{other}`, which a search cannot draw"
                ));
            }
        };
        let empty = match &dim {
            Dimension::Int { min, max, .. } => min > max,
            Dimension::Float { min, max, .. } => min > max,
            Dimension::Bool { .. } => false,
        };
        if empty {
            return Err(format!(
                "parameter `{name}`: `min` {min} is above `max` {max}"
            ));
        }
        dims.push(dim);
    }
    Ok(dims)
}

/// A candidate the strategy accepts, drawn from `space` (None after
/// [`DRAWS_PER_CANDIDATE`] refusals); refusals are counted.
fn draw(
    setup: &NativeSetup,
    parameters: &Map<String, Value>,
    space: &[Dimension],
    rng: &mut SplitMix64,
    refused: &mut u32,
) -> Option<Map<String, Value>> {
    for _ in 0..DRAWS_PER_CANDIDATE {
        let candidate = sample(parameters, space, rng);
        if strategies::build(&setup.kind, &candidate).is_ok() {
            return Some(candidate);
        }
        *refused += 1;
    }
    None
}

/// `parameters` with a value drawn for each dimension of `space`.
fn sample(
    parameters: &Map<String, Value>,
    space: &[Dimension],
    rng: &mut SplitMix64,
) -> Map<String, Value> {
    let mut candidate = parameters.clone();
    for dim in space {
        let (name, value) = match dim {
            Dimension::Int { name, min, max } => {
                let span = (max - min) as u64 + 1;
                (name, Value::from(min + (rng.next() % span) as i64))
            }
            Dimension::Float { name, min, max } => {
                let v = (min + rng.unit() * (max - min)).clamp(*min, *max);
                (name, Value::from(v))
            }
            Dimension::Bool { name } => (name, Value::from(rng.next() & 1 == 1)),
        };
        set_value(&mut candidate, name, value);
    }
    candidate
}

/// Sets a parameter's value, in its declared form when it has one.
fn set_value(parameters: &mut Map<String, Value>, name: &str, value: Value) {
    match parameters.get_mut(name) {
        Some(Value::Object(decl)) => {
            decl.insert("value".into(), value);
        }
        _ => {
            parameters.insert(name.to_string(), value);
        }
    }
}

/// Sebastiano Vigna's SplitMix64: small, seedable, good enough to draw candidates.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------
// Walk-forward

/// A rolling walk-forward of `n` folds over the pairs' whole range ([`folds::folds`]):
/// each fold optimised on its in-sample part, then its best parameters tested on the
/// out-of-sample part (warmed on the candles before it). Progress counts epochs and tests.
pub fn walk_forward(
    setup: &NativeSetup,
    parameters: &Map<String, Value>,
    pairs: &[PairCandles<'_>],
    n: u32,
    search: Search,
    cancel: &AtomicBool,
    progress: Progress<'_>,
) -> Result<WalkForward, BacktestError> {
    let traded = pairs.iter().filter(|p| !p.candles.is_empty());
    let from = traded.clone().map(|p| p.candles[0].ts_ms).min();
    let to = traded
        .map(|p| p.candles[p.candles.len() - 1].ts_ms + setup.timeframe_ms)
        .max();
    let (Some(from), Some(to)) = (from, to) else {
        return Err(BacktestError::Invalid(
            "no candle for the walk-forward".into(),
        ));
    };
    let ranges = folds::folds(time(from), time(to), n).map_err(BacktestError::Invalid)?;
    let per_fold = u64::from(search.epochs.max(1)) + 1;
    let total = per_fold * u64::from(n);
    let mut folds = Vec::with_capacity(ranges.len());
    let (mut in_sample, mut out_of_sample) = (Vec::new(), Vec::new());
    for range in &ranges {
        let done = per_fold * u64::from(range.index);
        let label = format!("fold {} of {n}", range.index + 1);
        let window = |from: DateTime<Utc>, to: DateTime<Utc>| -> Vec<PairCandles<'_>> {
            pairs
                .iter()
                .map(|p| {
                    PairCandles::window(
                        p.pair,
                        p.candles,
                        from.timestamp_millis(),
                        to.timestamp_millis(),
                    )
                })
                .collect()
        };
        let chosen = optimise(
            setup,
            parameters,
            &window(range.in_sample_from, range.in_sample_to),
            search,
            cancel,
            &mut |d, _, message| progress(done + d, total, &format!("{label}: {message}")),
        )?;
        let test = backtest_pairs(
            setup,
            &chosen.parameters,
            &window(range.out_of_sample_from, range.out_of_sample_to),
            cancel,
            &mut |_, _, _| {},
        )?;
        progress(
            done + per_fold,
            total,
            &format!("{label}: out-of-sample {} trades", test.figures.trades),
        );
        folds.push(fold(range, &chosen, &test));
        in_sample.push(chosen.best);
        out_of_sample.push(test);
    }
    let balance = setup.paper.starting_balance;
    Ok(WalkForward {
        parameters: folds
            .last()
            .map(|f| f.parameters.clone())
            .unwrap_or_default(),
        folds,
        in_sample: together(&in_sample, balance),
        out_of_sample: together(&out_of_sample, balance),
    })
}

fn fold(range: &FoldRange, chosen: &Optimised, test: &NativeBacktest) -> Fold {
    Fold {
        index: range.index,
        in_sample_from: range.in_sample_from,
        in_sample_to: range.in_sample_to,
        out_of_sample_from: range.out_of_sample_from,
        out_of_sample_to: range.out_of_sample_to,
        parameters: chosen.parameters.clone(),
        in_sample: chosen.best.figures.clone(),
        out_of_sample: test.figures.clone(),
    }
}

/// The figures of several backtests' trades as one account, over their ranges together.
fn together(runs: &[NativeBacktest], starting_balance: f64) -> BacktestFigures {
    let mut trades: Vec<Trade> = runs
        .iter()
        .flat_map(|r| r.trades.iter().map(figure_trade))
        .collect();
    trades.sort_by_key(|t| t.exit_ms);
    let from = runs.iter().map(|r| r.data_from.timestamp_millis()).min();
    let to = runs.iter().map(|r| r.data_to.timestamp_millis()).max();
    figures::figures(
        &trades,
        starting_balance,
        from.unwrap_or_default(),
        to.unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MarketConfig, ModelConfig};
    use crate::market::candles;
    use crate::ml::service::MlService;
    use crate::native::engine::paper_settings;
    use crate::native::runner::{self, FeedMode, RunContext, RunEnd};
    use mem_protocol::registry::ListTradesParams;
    use mem_protocol::strategy::StrategyId;
    use std::path::{Path, PathBuf};
    use tokio_util::sync::CancellationToken;

    /// A shipped native strategy: its registry file, name, kind and parameters.
    struct Shipped {
        file: PathBuf,
        id: StrategyId,
        name: String,
        kind: &'static str,
        parameters: Map<String, Value>,
    }

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }

    /// Every native strategy of the shipped registry (the five seed ones and
    /// volatility-managed momentum).
    fn shipped() -> Vec<Shipped> {
        let dir = repo("data/strategy_registry/metadata");
        let mut found: Vec<Shipped> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|entry| {
                let file = entry.unwrap().path();
                let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
                let s = &doc["strategy"];
                let name = s["name"].as_str()?.to_string();
                let class = s["implementation"]["class_name"].as_str();
                let kind = strategies::kind_of(&name, class)?;
                Some(Shipped {
                    id: s["id"].as_str().unwrap().parse().unwrap(),
                    parameters: s["parameters"].as_object().unwrap().clone(),
                    file,
                    name,
                    kind,
                })
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            found.len(),
            6,
            "five seed strategies and one research strategy"
        );
        found
    }

    fn market_file(pair: &str) -> PathBuf {
        repo(&format!(
            "data/market/{}-5m.feather",
            pair.replace('/', "_")
        ))
    }

    /// A pair's shipped candles, read and cleaned as the runner reads them.
    fn shipped_candles(pair: &str) -> Vec<Candle> {
        candles::clean(candles::read_file(&market_file(pair)).unwrap()).0
    }

    fn setup(s: &Shipped, through_mem: bool) -> NativeSetup {
        NativeSetup {
            kind: s.kind.into(),
            strategy_key: s.name.clone(),
            timeframe_ms: 300_000,
            paper: paper_settings(None),
            enhance: EnhanceSettings::default(),
            through_mem,
            model: None,
        }
    }

    /// A replay by the runner itself, as the supervisor starts one (without the
    /// supervisor): the strategy in a registry of its own, a fresh memory, no model served;
    /// answers the trades it recorded in the registry.
    fn runner_replay(s: &Shipped, pair: &str, mem: bool) -> Vec<TradeRecord> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("strategy_registry");
        std::fs::create_dir_all(root.join("metadata")).unwrap();
        std::fs::copy(
            &s.file,
            root.join("metadata").join(s.file.file_name().unwrap()),
        )
        .unwrap();
        let bus = Arc::new(EventBus::new(64));
        let registry = Arc::new(Registry::open(&root, bus.clone()).unwrap());
        let memory = Memory::open(
            dir.path(),
            EnhanceSettings::default(),
            registry.clone(),
            bus.clone(),
        )
        .unwrap();
        let ml = MlService::open(
            dir.path(),
            &MarketConfig::default(),
            &ModelConfig::default(),
            bus,
        )
        .unwrap();
        let saved = runner::new_saved(
            s.kind,
            s.parameters.clone(),
            s.name.clone(),
            pair.into(),
            "5m".into(),
            market_file(pair),
            FeedMode::Replay,
            None,
            mem,
            PaperBroker::new(paper_settings(None)),
        );
        let ctx = RunContext {
            settings: memory.settings().clone(),
            memory: Arc::new(memory),
            model: ml.serving_handle(),
            registry: registry.clone(),
            strategy_id: s.id,
            deployment: "replay".into(),
            log: dir.path().join("replay.log"),
        };
        let (cancel, suspend) = (CancellationToken::new(), CancellationToken::new());
        let end = runner::run(saved, ctx, cancel, suspend, |_, _| {}).unwrap();
        assert_eq!(end, RunEnd::Finished);
        let list = registry
            .list_trades(ListTradesParams {
                id: s.id,
                from: None,
                to: None,
                limit: Some(100_000),
                offset: None,
            })
            .unwrap();
        assert_eq!(list.trades.len(), list.total);
        list.trades
    }

    /// Trades keyed by the broker's number (the id's last part), without their prefixes.
    fn numbered(trades: &[TradeRecord]) -> Vec<(u64, TradeRecord)> {
        let mut out: Vec<(u64, TradeRecord)> = trades
            .iter()
            .map(|t| {
                let n = t.trade_id.rsplit(':').next().unwrap().parse().unwrap();
                let mut t = t.clone();
                t.trade_id = String::new();
                (n, t)
            })
            .collect();
        out.sort_by_key(|(n, _)| *n);
        out
    }

    fn no_cancel() -> AtomicBool {
        AtomicBool::new(false)
    }

    #[test]
    fn a_backtest_records_the_trades_a_paper_replay_records() {
        let pair = "ETH/BTC";
        let candles = shipped_candles(pair);
        for s in shipped() {
            let replayed = runner_replay(&s, pair, false);
            let run = backtest(
                &setup(&s, false),
                &s.parameters,
                PairCandles::new(pair, &candles),
                &no_cancel(),
            )
            .unwrap();
            assert_eq!(
                numbered(&run.trades),
                numbered(&replayed),
                "{}: the backtest's trades are the replay's",
                s.name
            );
            assert_eq!(run.figures.trades, replayed.len() as u64);
            assert_eq!(run.candles, candles.len() as u64);
            assert!(run.problems.is_empty());
            // The account: the replay's realised pnl, over the data's range.
            let pnl: f64 = replayed.iter().map(|t| t.pnl).sum();
            assert!((run.figures.profit_abs - pnl).abs() < 1e-9);
            assert_eq!(run.data_from.timestamp_millis(), candles[0].ts_ms);
            assert_eq!(
                run.data_to.timestamp_millis(),
                candles.last().unwrap().ts_ms + 300_000
            );
            assert_eq!(run.equity.len(), replayed.len() + 1);
            assert!(!replayed.is_empty(), "{} trades on {pair}", s.name);
        }
    }

    #[test]
    fn through_mem_a_backtest_trades_as_a_replay_on_a_fresh_memory() {
        let pair = "LTC/BTC";
        let candles = shipped_candles(pair);
        let s = shipped().into_iter().find(|s| s.kind == "rsi").unwrap();
        let replayed = runner_replay(&s, pair, true);
        let run = backtest(
            &setup(&s, true),
            &s.parameters,
            PairCandles::new(pair, &candles),
            &no_cancel(),
        )
        .unwrap();
        assert!(run.decisions > 0, "entries went through MEM");
        assert!(replayed.iter().all(|t| t.mem_enhanced));
        assert!(run.trades.iter().all(|t| t.mem_enhanced));
        // The same entries, sizes, stops, targets and learned patterns: only the ids differ.
        assert_eq!(numbered(&run.trades), numbered(&replayed));
    }

    fn rsi() -> Shipped {
        shipped().into_iter().find(|s| s.kind == "rsi").unwrap()
    }

    /// Every optimizable parameter of `candidate` within its declared bounds, integers
    /// whole.
    fn assert_inside(declared: &Map<String, Value>, candidate: &Map<String, Value>) {
        for (name, decl) in declared {
            let decl = decl.as_object().unwrap();
            if decl.get("optimizable") != Some(&Value::Bool(true)) {
                assert_eq!(
                    candidate[name],
                    Value::Object(decl.clone()),
                    "{name} unchanged"
                );
                continue;
            }
            let value = &candidate[name]["value"];
            let v = value.as_f64().unwrap();
            let (min, max) = (decl["min"].as_f64().unwrap(), decl["max"].as_f64().unwrap());
            assert!((min..=max).contains(&v), "{name} {v} outside {min}..={max}");
            if decl["type"] == "integer" {
                assert!(
                    value.is_i64() || value.is_u64(),
                    "{name} {value} is an integer"
                );
            }
            // Only the value is drawn: the declaration is kept.
            let mut rest = candidate[name].as_object().unwrap().clone();
            rest.insert("value".into(), decl["value"].clone());
            assert_eq!(&rest, decl);
        }
    }

    #[test]
    fn a_search_stays_inside_the_bounds_and_never_loses_to_the_start() {
        let candles = shipped_candles("ETH/BTC");
        let pairs = [PairCandles::new("ETH/BTC", &candles[..3000])];
        let search = Search {
            epochs: 12,
            seed: 7,
        };
        for s in shipped() {
            let setup = setup(&s, false);
            let mut seen = Vec::new();
            let found = optimise(
                &setup,
                &s.parameters,
                &pairs,
                search,
                &no_cancel(),
                &mut |d, t, _| seen.push((d, t)),
            )
            .unwrap();
            assert_eq!(
                found.trials.len(),
                12,
                "{}: every epoch tried a candidate",
                s.name
            );
            assert_eq!(found.trials[0].parameters, s.parameters, "the start first");
            for trial in &found.trials {
                assert_inside(&s.parameters, &trial.parameters);
                assert_eq!(trial.objective, objective(&trial.figures));
            }
            let start = backtest(&setup, &s.parameters, pairs[0], &no_cancel()).unwrap();
            assert!(found.objective >= objective(&start.figures), "{}", s.name);
            let best = found
                .trials
                .iter()
                .map(|t| t.objective)
                .fold(f64::MIN, f64::max);
            assert_eq!(found.objective, best);
            assert_eq!(objective(&found.best.figures), found.objective);
            assert_eq!(seen.last(), Some(&(12, 12)));
            // The chosen parameters run, and give the figures reported.
            let again = backtest(&setup, &found.parameters, pairs[0], &no_cancel()).unwrap();
            assert_eq!(again.figures, found.best.figures);
        }
    }

    #[test]
    fn a_search_is_seeded() {
        let candles = shipped_candles("ETH/BTC");
        let pairs = [PairCandles::new("ETH/BTC", &candles[..2000])];
        // MACD: a draw with the fast period at or above the slow one is refused and redrawn.
        let s = shipped().into_iter().find(|s| s.kind == "macd").unwrap();
        let run = |seed| {
            let search = Search { epochs: 30, seed };
            optimise(
                &setup(&s, false),
                &s.parameters,
                &pairs,
                search,
                &no_cancel(),
                &mut |_, _, _| {},
            )
            .unwrap()
        };
        let (a, b, c) = (run(1), run(1), run(2));
        assert_eq!(a, b);
        assert_ne!(a.trials, c.trials);
        assert!(a.refused > 0, "some MACD draws are refused");
        for trial in &a.trials {
            assert_inside(&s.parameters, &trial.parameters);
            let (fast, slow) = (
                &trial.parameters["fast_period"]["value"],
                &trial.parameters["slow_period"]["value"],
            );
            assert!(fast.as_i64() < slow.as_i64());
        }
    }

    #[test]
    fn nothing_optimizable_tries_the_start_alone() {
        let candles = shipped_candles("ETH/BTC");
        let s = rsi();
        let plain: Map<String, Value> = s
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v["value"].clone()))
            .collect();
        let pairs = [PairCandles::new("ETH/BTC", &candles[..1500])];
        let search = Search { epochs: 5, seed: 1 };
        let found = optimise(
            &setup(&s, false),
            &plain,
            &pairs,
            search,
            &no_cancel(),
            &mut |_, _, _| {},
        )
        .unwrap();
        assert_eq!(found.trials.len(), 1);
        assert_eq!(found.parameters, plain);
        // An optimizable parameter without bounds is named.
        let mut unbounded = s.parameters.clone();
        unbounded["period"].as_object_mut().unwrap().remove("max");
        let e = optimise(
            &setup(&s, false),
            &unbounded,
            &pairs,
            search,
            &no_cancel(),
            &mut |_, _, _| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("`period`"), "{e}");
    }

    #[test]
    fn pairs_share_one_account() {
        let (eth, ltc) = (shipped_candles("ETH/BTC"), shipped_candles("LTC/BTC"));
        let s = rsi();
        let both = [
            PairCandles::new("ETH/BTC", &eth),
            PairCandles::new("LTC/BTC", &ltc),
        ];
        let mut seen = Vec::new();
        let together = backtest_pairs(
            &setup(&s, false),
            &s.parameters,
            &both,
            &no_cancel(),
            &mut |d, t, m| seen.push((d, t, m.to_string())),
        )
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].2.starts_with("LTC/BTC: "));
        // Each pair alone on half the balance trades the same trades.
        let mut half = setup(&s, false);
        half.paper.starting_balance = 500.0;
        let alone: Vec<NativeBacktest> = both
            .iter()
            .map(|p| backtest(&half, &s.parameters, *p, &no_cancel()).unwrap())
            .collect();
        let mut expected: Vec<TradeRecord> = alone.iter().flat_map(|r| r.trades.clone()).collect();
        expected.sort_by_key(|t| t.exit_time);
        assert_eq!(together.trades, expected);
        assert!(
            together
                .trades
                .iter()
                .any(|t| t.trade_id.starts_with("backtest:LTC/BTC:"))
        );
        let f = &together.figures;
        assert_eq!(f.trades, alone[0].figures.trades + alone[1].figures.trades);
        assert_eq!(f.starting_balance, 1000.0);
        let pnl = alone[0].figures.profit_abs + alone[1].figures.profit_abs;
        assert!((f.profit_abs - pnl).abs() < 1e-9);
        assert!((f.final_balance - 1000.0 - pnl).abs() < 1e-9);
        let first = eth[0].ts_ms.min(ltc[0].ts_ms);
        assert_eq!(together.data_from.timestamp_millis(), first);
        assert_eq!(
            together.equity[0],
            EquityPoint {
                ts_ms: first,
                equity: 1000.0
            }
        );
        assert_eq!(together.equity.len() as u64, f.trades + 1);
    }

    #[test]
    fn a_walk_forward_optimises_in_sample_and_tests_out_of_sample() {
        let (eth, ltc) = (shipped_candles("ETH/BTC"), shipped_candles("LTC/BTC"));
        let s = rsi();
        let setup = setup(&s, false);
        let pairs = [
            PairCandles::new("ETH/BTC", &eth),
            PairCandles::new("LTC/BTC", &ltc),
        ];
        let search = Search { epochs: 4, seed: 3 };
        let mut seen = Vec::new();
        let wf = walk_forward(
            &setup,
            &s.parameters,
            &pairs,
            3,
            search,
            &no_cancel(),
            &mut |d, t, m| seen.push((d, t, m.to_string())),
        )
        .unwrap();
        assert_eq!(wf.folds.len(), 3);
        assert_eq!(wf.parameters, wf.folds[2].parameters);
        let from = eth[0].ts_ms.min(ltc[0].ts_ms);
        let to = eth.last().unwrap().ts_ms.max(ltc.last().unwrap().ts_ms) + 300_000;
        let ranges = folds::folds(time(from), time(to), 3).unwrap();
        for (fold, range) in wf.folds.iter().zip(&ranges) {
            assert_eq!(fold.index, range.index);
            assert_eq!(
                (fold.in_sample_from, fold.in_sample_to),
                (range.in_sample_from, range.in_sample_to)
            );
            assert_eq!(
                (fold.out_of_sample_from, fold.out_of_sample_to),
                (range.out_of_sample_from, range.out_of_sample_to)
            );
            assert_inside(&s.parameters, &fold.parameters);
            // Each side is the backtest of its window with the fold's parameters.
            let window = |a: DateTime<Utc>, b: DateTime<Utc>| -> Vec<PairCandles<'_>> {
                pairs
                    .iter()
                    .map(|p| {
                        PairCandles::window(
                            p.pair,
                            p.candles,
                            a.timestamp_millis(),
                            b.timestamp_millis(),
                        )
                    })
                    .collect()
            };
            let test = |a, b| {
                backtest_pairs(
                    &setup,
                    &fold.parameters,
                    &window(a, b),
                    &no_cancel(),
                    &mut |_, _, _| {},
                )
                .unwrap()
                .figures
            };
            assert_eq!(fold.in_sample, test(fold.in_sample_from, fold.in_sample_to));
            assert_eq!(
                fold.out_of_sample,
                test(fold.out_of_sample_from, fold.out_of_sample_to)
            );
        }
        let sum = |side: fn(&Fold) -> &BacktestFigures| {
            wf.folds.iter().map(|f| side(f).trades).sum::<u64>()
        };
        assert_eq!(wf.in_sample.trades, sum(|f| &f.in_sample));
        assert_eq!(wf.out_of_sample.trades, sum(|f| &f.out_of_sample));
        let pnl: f64 = wf.folds.iter().map(|f| f.out_of_sample.profit_abs).sum();
        assert!((wf.out_of_sample.profit_abs - pnl).abs() < 1e-9);
        assert!(wf.out_of_sample.trades > 0);
        // Progress: every epoch and every test, to the end.
        assert_eq!(seen.len(), 3 * 5);
        assert_eq!(seen.last().map(|(d, t, _)| (*d, *t)), Some((15, 15)));
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            seen[0].2.starts_with("fold 1 of 3: epoch 1 of 4"),
            "{}",
            seen[0].2
        );
        // Too few folds is named.
        let e = walk_forward(
            &setup,
            &s.parameters,
            &pairs,
            1,
            search,
            &no_cancel(),
            &mut |_, _, _| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least 2 folds"), "{e}");
    }

    #[test]
    fn a_window_warms_on_the_candles_before_it() {
        let candles = shipped_candles("ETH/BTC");
        let (a, b) = (candles[3000].ts_ms, candles[4000].ts_ms);
        let w = PairCandles::window("ETH/BTC", &candles, a, b);
        assert_eq!(w.candles, &candles[3000..4000]);
        assert_eq!(w.warm, &candles[3000 - RECENT_CANDLES..3000]);
        let w = PairCandles::window("ETH/BTC", &candles, a - 1, a + 1);
        assert_eq!(w.candles, &candles[3000..3001]);
        let w = PairCandles::window("ETH/BTC", &candles, 0, candles[10].ts_ms);
        assert_eq!((w.warm.len(), w.candles.len()), (0, 10));
        let w = PairCandles::window("ETH/BTC", &candles, i64::MAX - 1, i64::MAX);
        assert!(w.candles.is_empty());
        // Warmed, a window's strategy signals from its first candle; cold, RSI 14 cannot.
        let s = rsi();
        let oversold = |p: PairCandles<'_>| {
            let mut params = s.parameters.clone();
            params["oversold"]["value"] = Value::from(50);
            params["overbought"]["value"] = Value::from(50.5);
            backtest(
                &setup(&s, false),
                &params,
                PairCandles {
                    candles: &p.candles[..5],
                    ..p
                },
                &no_cancel(),
            )
            .unwrap()
            .signals
        };
        let warm = PairCandles::window("ETH/BTC", &candles, a, b);
        assert_eq!(oversold(warm), 5);
        assert_eq!(oversold(PairCandles::new("ETH/BTC", warm.candles)), 0);
    }

    #[test]
    fn cancelled_and_invalid_backtests_say_so() {
        let candles = shipped_candles("ETH/BTC");
        let s = rsi();
        let pair = PairCandles::new("ETH/BTC", &candles);
        let cancelled = AtomicBool::new(true);
        let e = backtest(&setup(&s, false), &s.parameters, pair, &cancelled).unwrap_err();
        assert_eq!(e, BacktestError::Cancelled);
        let search = Search { epochs: 3, seed: 0 };
        let e = optimise(
            &setup(&s, false),
            &s.parameters,
            &[pair],
            search,
            &cancelled,
            &mut |_, _, _| {},
        )
        .unwrap_err();
        assert_eq!(e, BacktestError::Cancelled);
        let mut typo = s.parameters.clone();
        typo.insert("perod".into(), Value::from(3));
        let e = backtest(&setup(&s, false), &typo, pair, &no_cancel()).unwrap_err();
        assert!(e.to_string().contains("`perod`"), "{e}");
        let e = backtest(
            &setup(&s, false),
            &s.parameters,
            PairCandles::new("ETH/BTC", &[]),
            &no_cancel(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("no candle to backtest for ETH/BTC"),
            "{e}"
        );
        let mut broke = setup(&s, false);
        broke.paper.fee_rate = 2.0;
        let e = backtest(&broke, &s.parameters, pair, &no_cancel()).unwrap_err();
        assert!(e.to_string().contains("`fee_rate`"), "{e}");
    }

    #[test]
    fn the_space_is_the_optimizable_parameters_within_their_bounds() {
        let declared = |v: Value| v.as_object().unwrap().clone();
        let p = declared(serde_json::json!({
            "period": {"value": 3, "type": "integer", "min": 1.5, "max": 4.2, "optimizable": true},
            "level": {"value": 0.5, "type": "float", "min": -1, "max": 1, "optimizable": true},
            "confirm": {"value": true, "type": "boolean", "optimizable": true},
            "fixed": {"value": 9, "type": "integer", "min": 0, "max": 10, "optimizable": false},
            "plain": 4
        }));
        let dims = space(&p).unwrap();
        assert_eq!(
            dims,
            [
                Dimension::Bool {
                    name: "confirm".into()
                },
                Dimension::Float {
                    name: "level".into(),
                    min: -1.0,
                    max: 1.0
                },
                Dimension::Int {
                    name: "period".into(),
                    min: 2,
                    max: 4
                },
            ]
        );
        // Every draw within, integers whole, both booleans drawn; the rest untouched.
        let mut rng = SplitMix64(5);
        let mut flags = std::collections::BTreeSet::new();
        let mut periods = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let c = sample(&p, &dims, &mut rng);
            let level = c["level"]["value"].as_f64().unwrap();
            assert!((-1.0..=1.0).contains(&level));
            periods.insert(c["period"]["value"].as_i64().unwrap());
            flags.insert(c["confirm"]["value"].as_bool().unwrap());
            assert_eq!((&c["fixed"], &c["plain"]), (&p["fixed"], &p["plain"]));
        }
        assert_eq!(periods.into_iter().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(flags.len(), 2);
        // What a search cannot draw is named.
        let bad = |v: Value| space(&declared(v)).unwrap_err();
        let e = bad(
            serde_json::json!({"x": {"value": 1, "type": "integer", "min": 5, "max": 2, "optimizable": true}}),
        );
        assert!(e.contains("`x`") && e.contains("above"), "{e}");
        let e = bad(
            serde_json::json!({"x": {"value": "a", "type": "string", "min": 0, "max": 1, "optimizable": true}}),
        );
        assert!(e.contains("`x`") && e.contains("`string`"), "{e}");
        let e = bad(serde_json::json!({"x": {"value": 1.0, "type": "float", "optimizable": true}}));
        assert!(e.contains("`x`") && e.contains("`min` and `max`"), "{e}");
    }
}
