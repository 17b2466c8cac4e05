//! The prediction layer against the bars (release, this machine):
//! - the 12 features over 1,000,000 candles (bar: faster than pandas + TA-Lib side by side,
//!   aim 25 ms), batch (indicator columns on two threads) and incremental (one thread);
//! - training on 45,000 rows x 12 with the seed's hyper-parameters (bar: under 1 s);
//! - one prediction: one new candle into the incremental features, then the model (bar:
//!   under 20 µs), and a batch of 10,000 rows (bar: under 10 ms).
//!
//! The candles are the shipped ETH/BTC 5-minute file, repeated to 1,000,000 rows; the
//! training rows are the daemon's own dataset over the ten shipped pairs.
//! `cargo bench -p memd --bench ml`.

mod common;

use common::{market, million_candles};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use memd::market::candles::{self, Timeframe};
use memd::market::features::{self, FeatureRow, FeatureState};
use memd::ml::model::{Hyper, Model};
use memd::ml::train;
use std::hint::black_box;
use std::time::Duration;

fn dataset() -> (Vec<FeatureRow>, Vec<u8>) {
    let pairs = candles::list_pairs(market(), Timeframe::M5);
    let data = train::load(market(), &pairs, Timeframe::M5, &mut |_, _, _| {}).unwrap();
    // The size: 45,000 of the 54,664 labelled rows of the ten pairs.
    let n = 45_000.min(data.rows.len());
    (data.rows[..n].to_vec(), data.labels[..n].to_vec())
}

fn bench(c: &mut Criterion) {
    let candles = million_candles();
    let mut g = c.benchmark_group("features");
    g.sample_size(20);
    g.bench_function("12 features, 1M candles, batch", |b| {
        b.iter(|| black_box(features::batch(black_box(&candles))))
    });
    g.bench_function("12 features, 1M candles, incremental", |b| {
        b.iter(|| {
            let mut state = FeatureState::new();
            let mut last = None;
            for c in &candles {
                last = state.update(c);
            }
            black_box(last)
        })
    });
    g.bench_function("12 features, 1M candles, columns (two threads)", |b| {
        b.iter(|| black_box(features::batch_columns(black_box(&candles))))
    });
    g.finish();

    let (x, y) = dataset();
    println!("[memd-bench] training rows: {} x 12", x.len());
    let mut g = c.benchmark_group("model");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.bench_function(format!("train, {} rows, 200 trees depth 5", x.len()), |b| {
        b.iter(|| black_box(Model::train(&x, &y, &Hyper::default()).unwrap()))
    });
    g.finish();

    let model = Model::train(&x, &y, &Hyper::default()).unwrap();
    let mut g = c.benchmark_group("predict");
    // A warm incremental state; each iteration feeds one more candle and predicts.
    let mut state = FeatureState::new();
    for c in &candles[..1000] {
        state.update(c);
    }
    let mut next = 1000usize;
    g.bench_function("one candle: incremental features + model", |b| {
        b.iter_batched(
            || {
                next = if next + 1 >= candles.len() {
                    1000
                } else {
                    next + 1
                };
                candles[next]
            },
            |c| {
                let row = state.update(&c).unwrap();
                black_box(model.predict_proba(&row))
            },
            BatchSize::SmallInput,
        )
    });
    let rows: Vec<FeatureRow> = x[..10_000].to_vec();
    g.bench_function("batch of 10,000 rows", |b| {
        b.iter(|| black_box(model.predict_proba_batch(black_box(&rows))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
