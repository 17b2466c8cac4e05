//! Native backtests (issue 24): (a) one native strategy over a year of 5-minute candles
//! (bar: under 50 ms); (b) the six native strategies over ten pairs of a year each, one
//! account per strategy, run in parallel on every core (bar: under 2 s on two cores).
//!
//! A year of a pair: its shipped month of 5-minute candles (January 2018) stitched end to
//! end until 105,120 candles (365 days), each copy's prices scaled so that it opens where
//! the previous copy closed, and the times renumbered every 5 minutes: deterministic, no
//! seam jumps, each pair's own moves. The strategies: the shipped registry's six native
//! strategies with their parameters; MEM off, the paper broker's default fees and slippage.
//! `cargo bench -p memd --bench backtest`.

use criterion::{Criterion, criterion_group, criterion_main};
use memd::backtest::native::{self, NativeBacktest, NativeSetup, PairCandles};
use memd::market::candles::{self, Candle, Timeframe};
use memd::mem::enhance::EnhanceSettings;
use memd::native::engine::paper_settings;
use memd::native::strategies;
use serde_json::{Map, Value};
use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const STEP_MS: i64 = 300_000;
/// 365 days of 5-minute candles.
const YEAR: usize = 365 * 288;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A pair's shipped month stitched into a year (see the module doc).
fn year_of(file: &Path) -> Vec<Candle> {
    let month = candles::clean(candles::read_file(file).unwrap()).0;
    let start = month[0].ts_ms;
    let copy_change = month[month.len() - 1].close / month[0].open;
    let mut year = Vec::with_capacity(YEAR);
    let mut scale = 1.0;
    while year.len() < YEAR {
        for c in month.iter().take(YEAR - year.len()) {
            year.push(Candle {
                ts_ms: start + year.len() as i64 * STEP_MS,
                open: c.open * scale,
                high: c.high * scale,
                low: c.low * scale,
                close: c.close * scale,
                volume: c.volume,
            });
        }
        scale *= copy_change;
    }
    year
}

/// The shipped registry's native strategies: setup and parameters, by name.
fn shipped() -> Vec<(NativeSetup, Map<String, Value>)> {
    let dir = repo("data/strategy_registry/metadata");
    let mut found: Vec<(NativeSetup, Map<String, Value>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let doc: Value =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            let s = &doc["strategy"];
            let name = s["name"].as_str()?;
            let kind = strategies::kind_of(name, s["implementation"]["class_name"].as_str())?;
            let setup = NativeSetup {
                kind: kind.into(),
                strategy_key: name.into(),
                timeframe_ms: STEP_MS,
                paper: paper_settings(None),
                enhance: EnhanceSettings::default(),
                through_mem: false,
                model: None,
            };
            Some((setup, s["parameters"].as_object().unwrap().clone()))
        })
        .collect();
    found.sort_by(|a, b| a.0.strategy_key.cmp(&b.0.strategy_key));
    assert_eq!(found.len(), 6);
    found
}

fn one(
    setup: &NativeSetup,
    parameters: &Map<String, Value>,
    pair: &str,
    year: &[Candle],
) -> NativeBacktest {
    native::backtest(
        setup,
        parameters,
        PairCandles::new(pair, year),
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// Every strategy over every pair, one account per strategy: the strategies shared out
/// between `available_parallelism` threads, each taking the next one left.
fn all_strategies(
    strategies: &[(NativeSetup, Map<String, Value>)],
    pairs: &[PairCandles<'_>],
) -> Vec<NativeBacktest> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; strategies.len()]);
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(strategies.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((setup, parameters)) = strategies.get(i) else {
                        break;
                    };
                    let run = native::backtest_pairs(
                        setup,
                        parameters,
                        pairs,
                        &cancel,
                        &mut |_, _, _| {},
                    )
                    .unwrap();
                    results.lock().unwrap()[i] = Some(run);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

fn bench(c: &mut Criterion) {
    let names = candles::list_pairs(&repo("data/market"), Timeframe::M5);
    assert_eq!(names.len(), 10, "the ten shipped pairs");
    let years: Vec<Vec<Candle>> = names
        .iter()
        .map(|pair| {
            year_of(&candles::find_pair_file(&repo("data/market"), pair, Timeframe::M5).unwrap())
        })
        .collect();
    let strategies = shipped();
    let eth = names.iter().position(|p| p == "ETH/BTC").unwrap();
    println!(
        "[memd-bench] a year of {}: {} candles, its last close {:.6} (first open {:.6})",
        names[eth],
        years[eth].len(),
        years[eth][YEAR - 1].close,
        years[eth][0].open
    );
    for (setup, parameters) in &strategies {
        let started = Instant::now();
        let run = one(setup, parameters, &names[eth], &years[eth]);
        println!(
            "[memd-bench] {} over a year of {}: {} trades, profit {:+.2}%, in {:.1} ms",
            setup.strategy_key,
            names[eth],
            run.figures.trades,
            run.figures.profit_pct * 100.0,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    let (rsi, rsi_parameters) = strategies.iter().find(|s| s.0.kind == "rsi").unwrap();
    c.bench_function(
        "backtest: native RSI, a year of 5m candles (105,120)",
        |b| {
            b.iter(|| {
                black_box(one(
                    rsi,
                    rsi_parameters,
                    &names[eth],
                    black_box(&years[eth]),
                ))
            })
        },
    );

    let pairs: Vec<PairCandles<'_>> = names
        .iter()
        .zip(&years)
        .map(|(pair, year)| PairCandles::new(pair, year))
        .collect();
    let started = Instant::now();
    let runs = all_strategies(&strategies, &pairs);
    println!(
        "[memd-bench] six strategies x ten pairs x a year ({} candles) on {} threads in {:.2} s",
        runs.iter().map(|r| r.candles).sum::<u64>(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        started.elapsed().as_secs_f64()
    );
    for ((setup, _), run) in strategies.iter().zip(&runs) {
        println!(
            "[memd-bench]   {}: {} trades, profit {:+.2}%, sharpe {:?}",
            setup.strategy_key,
            run.figures.trades,
            run.figures.profit_pct * 100.0,
            run.figures.sharpe.map(|s| (s * 100.0).round() / 100.0)
        );
    }
    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(20));
    g.bench_function(
        "six native strategies x ten pairs x a year, every core",
        |b| b.iter(|| black_box(all_strategies(&strategies, black_box(&pairs)))),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
