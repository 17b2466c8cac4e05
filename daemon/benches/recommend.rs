//! Recommendations over 10,000 strategies (issue bar: under 5 ms), all of them active and
//! MEM-enabled so that every one is scored; most score above 0.50. The default answer
//! explains the best 100; asked for all, it explains about 9,000.
//! `cargo bench -p memd --bench recommend`.

use criterion::{Criterion, criterion_group, criterion_main};
use mem_protocol::backtest::BacktestEngine;
use mem_protocol::recommend::{AppliedConditions, ConditionsSource, Trend, Volatility};
use mem_protocol::strategy::MeasuredBacktest;
use mem_protocol::strategy::{StrategyDocument, StrategyId, StrategyStatus, StrategySummary};
use memd::recommend::{Unmeasured, recommend};
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
            // Measured by a backtest of memd's, so that the figures count.
            s.measured = Some(Box::new(MeasuredBacktest {
                job_id: format!("job-{i}"),
                version: "1.0.0".into(),
                engine: BacktestEngine::Native,
                pairs: vec!["ETH/USDT".into()],
                timeframe: "5m".into(),
                data_from: "2026-11-01T00:00:00Z".parse().unwrap(),
                data_to: "2026-12-01T00:00:00Z".parse().unwrap(),
                trades: 50,
                sharpe_ratio: s.sharpe_ratio,
                win_rate: s.win_rate.unwrap_or(0.0),
                max_drawdown: 0.1,
                total_return: 0.02,
                finished_at: "2026-12-01T01:00:00Z".parse().unwrap(),
            }));
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
    let full = recommend(
        &all,
        conditions.clone(),
        Some(usize::MAX),
        Unmeasured::Score,
    );
    println!(
        "[memd-bench] {} candidates, {} recommended",
        full.candidates,
        full.recommendations.len()
    );
    c.bench_function(
        "recommendations, 10k strategies, default limit (100 explained)",
        |b| {
            b.iter(|| {
                black_box(recommend(
                    black_box(&all),
                    conditions.clone(),
                    None,
                    Unmeasured::Score,
                ))
            })
        },
    );
    c.bench_function("recommendations, 10k strategies, all ~9k explained", |b| {
        b.iter(|| {
            black_box(recommend(
                black_box(&all),
                conditions.clone(),
                Some(usize::MAX),
                Unmeasured::Score,
            ))
        })
    });
    c.bench_function("recommendations, 10k strategies, best 10", |b| {
        b.iter(|| {
            black_box(recommend(
                black_box(&all),
                conditions.clone(),
                Some(10),
                Unmeasured::Score,
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
