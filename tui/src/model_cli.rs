//! memctl commands for the trend-reversal model.

use crate::cli::{print_json, table};
use comfy_table::{Cell, CellAlignment};
use mem_protocol::methods::{NoParams, method};
use mem_protocol::ml::*;
use mem_protocol::{Client, Event, Topic};
use memctl::text;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Training reads, computes and fits for a while; the daemon answers when it is done.
const TRAIN_TIMEOUT: Duration = Duration::from_secs(3600);

fn metric_row(name: &str, m: &ModelMetrics) -> Vec<Cell> {
    let f = |v: f64| Cell::new(format!("{v:.4}")).set_alignment(CellAlignment::Right);
    vec![
        Cell::new(name),
        f(m.accuracy),
        f(m.baseline_accuracy),
        f(m.precision),
        f(m.recall),
        f(m.f1_score),
        f(m.roc_auc),
        f(m.log_loss),
        f(m.base_rate),
    ]
}

const METRIC_HEADERS: [&str; 9] = [
    "",
    "ACCURACY",
    "BASELINE",
    "PRECISION",
    "RECALL",
    "F1",
    "ROC-AUC",
    "LOG-LOSS",
    "BASE RATE",
];

fn describe(v: &ModelVersion) {
    println!(
        "version {} ({}) trained {} on {} ({}), {} train rows, {} holdout rows from {}",
        v.version,
        text::model_status(v.status),
        v.trained_at.format("%Y-%m-%d %H:%M:%S UTC"),
        v.pairs.join(", "),
        v.timeframe,
        v.train_rows,
        v.test_rows,
        v.split_at.format("%Y-%m-%d %H:%M UTC"),
    );
    println!("reason: {}", v.reason);
}

/// `memctl model train`: shows the daemon's progress events while it trains.
pub async fn train(client: &Client, params: TrainParams, json: bool) -> anyhow::Result<()> {
    let (_, mut events) = client.subscribe(vec![Topic::Model]).await?;
    let show = !json && std::io::stderr().is_terminal();
    let progress = tokio::spawn(async move {
        while let Some(message) = events.next().await {
            if let Event::ModelProgress(p) = message.event {
                if show {
                    let width = 30usize;
                    let filled = if p.total > 0 {
                        (p.done as usize * width / p.total as usize).min(width)
                    } else {
                        0
                    };
                    eprint!(
                        "\r\x1b[2K[{}{}] {:<10} {}",
                        "#".repeat(filled),
                        " ".repeat(width - filled),
                        p.stage,
                        p.message
                    );
                    let _ = std::io::stderr().flush();
                } else if !json {
                    eprintln!("{}: {}", p.stage, p.message);
                }
            }
        }
    });
    let result = client
        .call_with_timeout::<method::MlTrain>(params, TRAIN_TIMEOUT)
        .await;
    progress.abort();
    if show {
        eprintln!();
    }
    let report = result?;
    if json {
        return print_json(&report);
    }
    describe(&report.model);
    let mut t = table(&METRIC_HEADERS);
    t.add_row(metric_row("new model", &report.model.metrics));
    if let Some(current) = &report.current_on_same_holdout {
        t.add_row(metric_row(
            &format!(
                "current ({})",
                report.previous_version.as_deref().unwrap_or("?")
            ),
            current,
        ));
    }
    crate::cli::print_table(&t);
    println!(
        "{}",
        if report.promoted {
            format!(
                "promoted: {} is now the current model",
                report.model.version
            )
        } else {
            format!(
                "kept the current model{}; {} is stored as a rejected candidate",
                report
                    .previous_version
                    .as_deref()
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default(),
                report.model.version
            )
        }
    );
    for note in &report.data_notes {
        println!("note: {note}");
    }
    Ok(())
}

pub async fn status(client: &Client, json: bool) -> anyhow::Result<()> {
    let s = client.call::<method::MlStatus>(NoParams {}).await?;
    if json {
        return print_json(&s);
    }
    match &s.current {
        Some(v) => {
            describe(v);
            let mut t = table(&METRIC_HEADERS);
            t.add_row(metric_row("holdout", &v.metrics));
            crate::cli::print_table(&t);
            println!("feature importances:");
            for (name, importance) in &v.feature_importances {
                println!("  {name:<15} {importance:.3}");
            }
        }
        None => println!("no current model: train one with `memctl model train`"),
    }
    println!(
        "{} versions stored; promotion: {} at least {} {}; candles from {} ({} {}){}",
        s.versions,
        text::promotion_metric(s.promotion_metric),
        s.promotion_margin,
        text::promotion_direction(s.promotion_metric),
        s.market_data_dir,
        if s.pairs.is_empty() {
            "no pairs found".to_string()
        } else {
            s.pairs.join(", ")
        },
        s.timeframe,
        if s.training { "; training now" } else { "" }
    );
    if let Some(e) = &s.load_error {
        println!("warning: {e}");
    }
    Ok(())
}

pub async fn history(client: &Client, json: bool) -> anyhow::Result<()> {
    let h = client.call::<method::MlHistory>(NoParams {}).await?;
    if json {
        return print_json(&h);
    }
    let mut t = table(&[
        "VERSION", "STATUS", "ACCURACY", "BASELINE", "ROC-AUC", "ROWS", "REASON",
    ]);
    for v in &h.versions {
        t.add_row(vec![
            Cell::new(&v.version),
            Cell::new(text::model_status(v.status)),
            Cell::new(format!("{:.4}", v.metrics.accuracy)),
            Cell::new(format!("{:.4}", v.metrics.baseline_accuracy)),
            Cell::new(format!("{:.4}", v.metrics.roc_auc)),
            Cell::new(v.train_rows + v.test_rows),
            Cell::new(&v.reason),
        ]);
    }
    crate::cli::print_table(&t);
    Ok(())
}

pub async fn promote(
    client: &Client,
    version: String,
    reason: String,
    json: bool,
) -> anyhow::Result<()> {
    let v = client
        .call::<method::MlPromote>(PromoteParams { version, reason })
        .await?;
    if json {
        return print_json(&v);
    }
    println!("{} is now the current model", v.version);
    Ok(())
}

pub async fn rollback(
    client: &Client,
    version: Option<String>,
    reason: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let v = client
        .call::<method::MlRollback>(RollbackParams { version, reason })
        .await?;
    if json {
        return print_json(&v);
    }
    println!("rolled back: {} is now the current model", v.version);
    Ok(())
}

pub async fn predict(
    client: &Client,
    symbol: String,
    timeframe: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let p = client
        .call::<method::MlPredict>(PredictParams {
            symbol: Some(symbol),
            timeframe: timeframe.clone(),
            candles: vec![],
        })
        .await?;
    if json {
        return print_json(&p);
    }
    println!(
        "{}: {} (confidence {:.3}, {}), model {}, candle {}",
        p.symbol.as_deref().unwrap_or("candles"),
        if p.is_reversal {
            "reversal ahead"
        } else {
            "no reversal"
        },
        p.confidence,
        p.direction,
        p.model_version,
        chrono::DateTime::from_timestamp_millis(p.candle_ts_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    );
    if let Some(f) = &p.freshness {
        let what = match (&p.symbol, &timeframe) {
            (Some(s), Some(t)) => format!("{s} {t}"),
            (Some(s), None) => s.clone(),
            (None, _) => "given".into(),
        };
        println!("  {}", crate::cli::freshness_line(f, &what));
    }
    for (name, value) in &p.features {
        println!("  {name:<15} {}", text::significant(*value));
    }
    Ok(())
}
