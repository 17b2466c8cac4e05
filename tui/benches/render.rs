//! Drawing the Strategies view with 10,000 strategies (the bar: under 2 ms a frame), and
//! what typing a search costs on the same list. `cargo bench -p memctl --bench render`.

use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use mem_protocol::Access;
use mem_protocol::deploy::DeployedList;
use mem_protocol::strategy::{StrategyDocument, StrategyId, StrategySummary};
use memctl::ui::app::{App, Update};
use memctl::ui::view::{self, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;

const CATEGORIES: [&str; 5] = [
    "momentum",
    "mean_reversion",
    "carry",
    "volatility",
    "arbitrage",
];

fn app_with(n: usize) -> App {
    let doc: StrategyDocument = serde_json::from_str(include_str!(
        "../../data/strategy_registry/metadata/4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json"
    ))
    .unwrap();
    let template = doc.summary(false);
    let mut strategies: Vec<Arc<StrategySummary>> = (0..n)
        .map(|i| {
            let mut s = template.clone();
            s.id = StrategyId::new_random();
            s.name = format!("strategy_{i:05}");
            s.display_name = format!("Strategy {i:05} {}", CATEGORIES[i % 5]);
            s.category = CATEGORIES[i % 5].into();
            s.sharpe_ratio = Some((i % 300) as f64 / 100.0);
            s.win_rate = Some((i % 70) as f64 / 100.0 + 0.3);
            s.live_trades = (i % 500) as u64;
            s.total_pnl = Some((i as f64 * 7.3) % 1000.0 - 500.0);
            Arc::new(s)
        })
        .collect();
    strategies.sort_by_key(|s| s.display_name.to_lowercase());
    let status = serde_json::from_value(json!({
        "version": "0.1.0", "pid": 1, "startedAt": "2026-11-22T08:00:00Z", "uptimeSecs": 1,
        "dataDir": "/d", "registryDir": "/d/r", "socket": "/s", "logDir": "/l", "mode": "user",
        "counts": {"strategies": n, "strategiesByStatus": {}, "registryErrors": 0, "connections": 1, "subscribers": 1},
        "host": {"cpuCount": 2, "cpuPercent": 1.0, "memoryTotalBytes": 1, "memoryUsedBytes": 1, "loadAverage": [0.0, 0.0, 0.0]},
        "process": {"rssBytes": 1, "cpuPercent": 0.0}, "access": "control"
    }))
    .unwrap();
    let mut app = App::new("2026-11-22T10:00:00Z".parse().unwrap());
    app.on_update(Update::Connected {
        access: Access::Control,
        status: Box::new(status),
        strategies,
        deployed: DeployedList {
            notes: Vec::new(),
            deployments: vec![],
        },
        metrics: None,
        panels: vec![],
        queue: None,
    });
    app.on_key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE));
    app
}

fn bench(c: &mut Criterion) {
    let mut app = app_with(10_000);
    let theme = Theme { color: true };
    for (w, h) in [(100u16, 30u16), (200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        // Each frame moves the selection, so every frame has something new to draw.
        c.bench_function(
            &format!("strategies view, 10k rows, {w}x{h}, one frame"),
            |b| {
                let mut down = true;
                b.iter(|| {
                    let code = if down { KeyCode::Down } else { KeyCode::Up };
                    down = !down;
                    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
                    terminal
                        .draw(|f| view::draw(f, black_box(&app), theme))
                        .unwrap();
                })
            },
        );
    }
    app.on_key(KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE));
    app.on_key(KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE));
    c.bench_function("strategies view, 10k rows, one search keystroke", |b| {
        let mut add = true;
        b.iter(|| {
            let key = if add {
                KeyEvent::new(KeyCode::Char('7'), KeyModifiers::NONE)
            } else {
                KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE)
            };
            add = !add;
            black_box(app.on_key(key));
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
