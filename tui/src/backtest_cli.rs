//! `memctl backtest` and `memctl queue`: measuring a strategy (a backtest or a
//! walk-forward, queued in the daemon), following it with a progress bar, and the queue.

use crate::cli::{print_json, progress_bar, table};
use crate::jobs_cli::JobFailed;
use mem_protocol::backtest::{
    BacktestFigures, BacktestParams, QueueCancelParams, QueueJob, QueueJobState, QueueListParams,
};
use mem_protocol::methods::method;
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Client, Event, Topic};
use std::io::{IsTerminal, Write};

/// `memctl backtest ID ...`: queues it, then (unless `no_wait`) follows it to its end and
/// prints its figures; exits 1 when it failed, was cancelled or interrupted.
pub async fn backtest(
    client: &Client,
    params: BacktestParams,
    no_wait: bool,
    json: bool,
) -> anyhow::Result<()> {
    let (_, mut events) = client.subscribe(vec![Topic::Queue]).await?;
    let job = client.call::<method::BacktestRun>(params).await?;
    if no_wait {
        if json {
            return print_json(&job);
        }
        println!(
            "queued {} of {}: job {} (memctl queue shows it; memctl queue cancel {} stops it)",
            kind_word(&job),
            job.strategy,
            job.id,
            job.id
        );
        return Ok(());
    }
    if !json {
        eprintln!(
            "queued job {} ({} of {})",
            job.id,
            kind_word(&job),
            job.strategy
        );
    }
    let terminal = !json && std::io::stderr().is_terminal();
    let mut last = job;
    while !last.state.is_finished() {
        let Some(message) = events.next().await else {
            anyhow::bail!("the daemon closed the connection while job {} ran", last.id);
        };
        let Event::QueueChanged(changed) = message.event else {
            continue;
        };
        if changed.id != last.id {
            continue;
        }
        if let Some(p) = &changed.progress {
            if terminal {
                eprint!("\r\x1b[2K{}", progress_bar(p.done, p.total, &p.message));
                let _ = std::io::stderr().flush();
            } else if !json {
                eprintln!("{}", progress_bar(p.done, p.total, &p.message));
            }
        }
        last = *changed;
    }
    if terminal {
        eprintln!();
    }
    if json {
        print_json(&last)?;
    } else {
        print_job(&last);
    }
    match last.state {
        QueueJobState::Succeeded => Ok(()),
        state => Err(JobFailed(format!(
            "job {} {}: {}",
            last.id,
            format!("{state:?}").to_lowercase(),
            last.error.as_deref().unwrap_or("no reason given")
        ))
        .into()),
    }
}

fn kind_word(job: &QueueJob) -> &'static str {
    match job.kind {
        mem_protocol::backtest::QueueJobKind::Backtest => "a backtest",
        mem_protocol::backtest::QueueJobKind::WalkForward => "a walk-forward",
    }
}

/// A finished job in words: its figures, the validation, where the whole result is.
fn print_job(job: &QueueJob) {
    let Some(result) = &job.result else {
        println!(
            "{} of {}: {}{}",
            kind_word(job),
            job.strategy,
            format!("{:?}", job.state).to_lowercase(),
            job.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        println!("log: {}", job.log_file);
        return;
    };
    println!(
        "{} of {} {} ({} {}) on {} {}, {} to {}",
        kind_word(job),
        job.strategy,
        result.version,
        format!("{:?}", result.engine).to_lowercase(),
        result.engine_version,
        result.pairs.join(", "),
        result.timeframe,
        result.data_from.format("%Y-%m-%d %H:%M"),
        result.data_to.format("%Y-%m-%d %H:%M"),
    );
    let mut t = table(&[
        "",
        "trades",
        "win rate",
        "profit",
        "Sharpe",
        "Sortino",
        "max drawdown",
        "profit factor",
    ]);
    let mut row = |name: &str, f: &BacktestFigures| {
        t.add_row(figures_row(name, f));
    };
    match &result.walk_forward {
        Some(wf) => {
            for fold in &wf.folds {
                row(
                    &format!("fold {} in-sample", fold.index + 1),
                    &fold.in_sample,
                );
                row(
                    &format!("fold {} out-of-sample", fold.index + 1),
                    &fold.out_of_sample,
                );
            }
            row("in-sample, all folds", &wf.in_sample);
            row("out-of-sample, all folds", &wf.out_of_sample);
        }
        None => row("whole range", &result.figures),
    }
    crate::cli::print_table(&t);
    println!(
        "validation: {} ({})",
        format!("{:?}", result.validation.status).to_lowercase(),
        result.validation.reasons.join("; ")
    );
    println!("log: {}", job.log_file);
}

fn figures_row(name: &str, f: &BacktestFigures) -> Vec<String> {
    let ratio = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    vec![
        name.to_string(),
        f.trades.to_string(),
        format!("{:.1}%", f.win_rate * 100.0),
        format!("{:+.2}%", f.profit_pct * 100.0),
        ratio(f.sharpe),
        ratio(f.sortino),
        format!("{:.2}%", f.max_drawdown * 100.0),
        ratio(f.profit_factor),
    ]
}

/// `memctl queue`.
pub async fn list(client: &Client, limit: Option<usize>, json: bool) -> anyhow::Result<()> {
    let list = client
        .call::<method::QueueList>(QueueListParams { limit })
        .await?;
    if json {
        return print_json(&list);
    }
    if list.jobs.is_empty() {
        println!("the queue is empty (memctl backtest ID queues a backtest)");
        return Ok(());
    }
    let mut t = table(&["job", "what", "strategy", "state", "progress / result"]);
    for job in &list.jobs {
        let detail = match (&job.progress, &job.result, &job.error) {
            (Some(p), _, _) => progress_bar(p.done, p.total, &p.message),
            (None, Some(r), _) => format!(
                "{} trades, {:+.2}%, {}",
                r.figures.trades,
                r.figures.profit_pct * 100.0,
                format!("{:?}", r.validation.status).to_lowercase()
            ),
            (None, None, Some(e)) => e.lines().next().unwrap_or_default().to_string(),
            _ => String::new(),
        };
        t.add_row(vec![
            job.id.clone(),
            kind_word(job).trim_start_matches("a ").to_string(),
            job.strategy.clone(),
            format!("{:?}", job.state).to_lowercase(),
            detail,
        ]);
    }
    crate::cli::print_table(&t);
    println!("{} at a time ([queue] parallel)", list.parallel);
    Ok(())
}

/// `memctl queue cancel JOB`.
pub async fn cancel(client: &Client, id: String, json: bool) -> anyhow::Result<()> {
    let job = client
        .call::<method::QueueCancel>(QueueCancelParams { id })
        .await?;
    if json {
        return print_json(&job);
    }
    match job.state {
        QueueJobState::Running => println!(
            "job {} is being stopped (its processes are ended; memctl queue shows when)",
            job.id
        ),
        _ => println!("job {} cancelled before it started", job.id),
    }
    Ok(())
}

/// `memctl queue save JOB`.
pub async fn save(
    client: &Client,
    job_id: String,
    changelog: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let version = client
        .call::<method::BacktestSave>(mem_protocol::backtest::BacktestSaveParams {
            job_id,
            changelog,
        })
        .await?;
    if json {
        return print_json(&version);
    }
    println!(
        "version {} of {}: {} (deploy or restart it to trade with these parameters)",
        version.version_number, version.strategy_id, version.changelog
    );
    Ok(())
}

/// The params of `memctl backtest` from its flags.
pub fn params(
    id: &str,
    days: Option<u32>,
    timerange: Option<String>,
    walk_forward: Option<u32>,
    epochs: Option<u32>,
    pairs: Vec<String>,
    through_mem: bool,
) -> anyhow::Result<BacktestParams> {
    let id: StrategyId = id.parse().map_err(anyhow::Error::msg)?;
    Ok(BacktestParams {
        id,
        days,
        timerange,
        walk_forward,
        epochs,
        pairs: (!pairs.is_empty()).then_some(pairs),
        through_mem,
    })
}
