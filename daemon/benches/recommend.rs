//! Recommendations over 10,000 strategies (issue bar: under 5 ms), all of them active and
//! MEM-enabled so that every one is scored; most score above 0.50. The default answer
//! explains the best 100; asked for all, it explains about 9,000.
//! `cargo bench -p memd --bench recommend`.

use criterion::{Criterion, criterion_group, criterion_main};
use mem_protocol::recommend::{AppliedConditions, ConditionsSource, Trend, Volatility};
use mem_protocol::strategy::{StrategyDocument, StrategyId, StrategyStatus, StrategySummary};
use memd::recommend::recommend;
use std::hint::black_box;
use std::sync::Arc;

const CATEGORIES: [&str; 5] = [
    "momentum",
    "mean_reversion",
    "carry",
    "volatility",
    "arbitrage",
];

fn strategies(n: usize) -> Vec<Arc<StrategySummary>> {
    let doc: StrategyDocument = serde_json::from_str(include_str!(
        "../../data/strategy_registry/metadata/4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json"
    ))
    .unwrap();
    let template = doc.summary(false);
    (0..n)
        .map(|i| {
            let mut s = template.clone();
            s.id = StrategyId::new_random();
            s.display_name = format!("Strategy {i:05}");
            s.category = CATEGORIES[i % 5].into();
            s.status = StrategyStatus::Active;
            s.mem_enabled = true;
            s.sharpe_ratio = Some((i % 300) as f64 / 100.0);
            s.win_rate = Some((i % 70) as f64 / 100.0 + 0.3);
            s.live_trades = (i % 60) as u64;
            s.live_sharpe_ratio = Some((i % 250) as f64 / 100.0);
            s.live_win_rate = Some((i % 50) as f64 / 100.0 + 0.3);
            Arc::new(s)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let all = strategies(10_000);
    let conditions = AppliedConditions {
        trend: Trend::Bullish,
        volatility: Volatility::High,
        vix: None,
        indicators: Default::default(),
        source: ConditionsSource::Request,
        computed: None,
    };
    let full = recommend(&all, conditions.clone(), Some(usize::MAX));
    println!(
        "[memd-bench] {} candidates, {} recommended",
        full.candidates,
        full.recommendations.len()
    );
    c.bench_function(
        "recommendations, 10k strategies, default limit (100 explained)",
        |b| b.iter(|| black_box(recommend(black_box(&all), conditions.clone(), None))),
    );
    c.bench_function("recommendations, 10k strategies, all ~9k explained", |b| {
        b.iter(|| {
            black_box(recommend(
                black_box(&all),
                conditions.clone(),
                Some(usize::MAX),
            ))
        })
    });
    c.bench_function("recommendations, 10k strategies, best 10", |b| {
        b.iter(|| black_box(recommend(black_box(&all), conditions.clone(), Some(10))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
