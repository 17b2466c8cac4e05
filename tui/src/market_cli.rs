//! `memctl market refresh`: the market data brought up to date now, with a progress bar.

use crate::cli::{print_json, table};
use crate::jobs_cli::{JobFailed, outcome_word};
use comfy_table::{Cell, CellAlignment};
use mem_protocol::jobs::JobOutcome;
use mem_protocol::market::{RefreshParams, RefreshReport, RefreshStatus};
use mem_protocol::methods::method;
use mem_protocol::{Client, Event, Topic};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// A refresh downloads for as long as the exchange takes (the daemon stops Freqtrade at
/// `[market.refresh] timeout_secs`).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(3600);

/// `memctl market refresh [--pair P] [--timeframe T] [--days N]`.
pub async fn refresh(
    client: &Client,
    pairs: Vec<String>,
    timeframes: Vec<String>,
    days: Option<u32>,
    json: bool,
) -> anyhow::Result<()> {
    let (_, mut events) = client.subscribe(vec![Topic::Jobs]).await?;
    let terminal = !json && std::io::stderr().is_terminal();
    let progress = tokio::spawn(async move {
        while let Some(message) = events.next().await {
            let Event::JobProgress(p) = message.event else {
                continue;
            };
            if p.job != "data_refresh" {
                continue;
            }
            if terminal {
                eprint!(
                    "\r\x1b[2K{}",
                    crate::cli::progress_bar(p.done, p.total, &p.message)
                );
                let _ = std::io::stderr().flush();
            } else if !json {
                eprintln!("{}", crate::cli::progress_bar(p.done, p.total, &p.message));
            }
        }
    });
    let result = client
        .call_with_timeout::<method::MarketRefresh>(
            RefreshParams {
                pairs,
                timeframes,
                days,
                wait: true,
            },
            REFRESH_TIMEOUT,
        )
        .await;
    progress.abort();
    if terminal {
        eprintln!();
    }
    let result = result?;
    if json {
        print_json(&result)?;
    }
    let Some(run) = result.run else {
        return Ok(());
    };
    if !json {
        let report: Option<RefreshReport> = serde_json::from_value(run.details.clone()).ok();
        if let Some(report) = &report {
            print_report(report);
        }
        println!("{}: {}", outcome_word(run.outcome), run.summary);
    }
    match run.outcome {
        JobOutcome::Failed => Err(JobFailed("data_refresh".into()).into()),
        _ => Ok(()),
    }
}

fn print_report(r: &RefreshReport) {
    let mut t = table(&[
        "PAIR",
        "TF",
        "RESULT",
        "ADDED",
        "CANDLES",
        "NEWEST (UTC)",
        "ERROR",
    ]);
    for p in &r.results {
        let right = |v: u64| Cell::new(v).set_alignment(CellAlignment::Right);
        t.add_row(vec![
            Cell::new(&p.pair),
            Cell::new(&p.timeframe),
            Cell::new(match p.status {
                RefreshStatus::Updated => "updated",
                RefreshStatus::Downloaded => "downloaded",
                RefreshStatus::Failed => "FAILED",
            }),
            right(p.added),
            right(p.candles),
            Cell::new(
                p.newest
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(p.error.as_deref().unwrap_or("")),
        ]);
    }
    crate::cli::print_table(&t);
    println!(
        "from {} into {} in {:.1} s ({:.1} s of it Freqtrade's{})",
        r.exchange,
        r.market_dir,
        r.seconds,
        r.freqtrade_seconds,
        r.freqtrade_startup_seconds
            .map(|s| format!(", {s:.1} s its start-up"))
            .unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bar_fills_with_the_work_done() {
        assert_eq!(
            crate::cli::progress_bar(2, 4, "ETH/USDT 5m"),
            format!("[{}{}] 2/4 ETH/USDT 5m", "#".repeat(15), " ".repeat(15))
        );
        assert!(crate::cli::progress_bar(0, 0, "starting").starts_with("[    "));
    }
}
