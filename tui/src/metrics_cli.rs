//! `memctl metrics`: MEM's figures (`mem.metrics`) as tables, or `--json`.

use crate::cli::{print_json, table};
use comfy_table::{Cell, CellAlignment};
use mem_protocol::Client;
use mem_protocol::mem::{LatencyStats, MemMetrics};
use mem_protocol::methods::{NoParams, method};

/// Milliseconds, with the digits that matter: `0.042 ms`, `3.20 ms`, `120 ms`.
pub fn ms(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v < 1.0 => format!("{v:.3} ms"),
        Some(v) if v < 100.0 => format!("{v:.2} ms"),
        Some(v) => format!("{v:.0} ms"),
    }
}

fn right(text: impl ToString) -> Cell {
    Cell::new(text.to_string()).set_alignment(CellAlignment::Right)
}

fn latency_row(name: &str, l: &LatencyStats) -> Vec<Cell> {
    vec![
        Cell::new(name),
        right(l.count),
        right(ms(l.avg)),
        right(ms(l.p50)),
        right(ms(l.p99)),
        right(ms(l.max)),
        right(ms(l.last)),
        right(l.total_count),
    ]
}

/// Prints the figures for people.
pub fn print(m: &MemMetrics) {
    println!(
        "MEM metrics (memd up {}s; latencies over the last {} min, decisions over the last hour)",
        m.uptime_secs,
        m.window_secs / 60
    );
    println!(
        "decisions     {} in the last hour, {} since memd started",
        m.decisions_per_hour, m.decisions_total
    );
    println!(
        "win rate 24h  {}",
        match m.win_rate_24h {
            Some(rate) => format!(
                "{:.1}% ({} won of {} closed)",
                rate * 100.0,
                m.wins_24h,
                m.closed_24h
            ),
            None => "- (no decision closed in the last 24 h)".into(),
        }
    );
    println!(
        "learned       {} active, {} deprecated",
        m.learned_strategies.active, m.learned_strategies.deprecated
    );
    println!();
    let mut t = table(&[
        "LATENCY",
        "COUNT",
        "AVG",
        "P50",
        "P99",
        "MAX",
        "LAST",
        "SINCE START",
    ]);
    t.add_row(latency_row("ML prediction", &m.prediction_latency_ms));
    t.add_row(latency_row("enhancement", &m.enhancement_time_ms));
    t.add_row(latency_row("memory load", &m.memory_load_ms));
    crate::cli::print_table(&t);
    println!();
    if m.bot_polls.is_empty() {
        println!("no Freqtrade bot running: no poll latency");
        return;
    }
    let mut t = table(&["BOT", "DEPLOYMENT", "POLLS", "AVG", "P99", "MAX", "FAILED"]);
    for b in &m.bot_polls {
        let l = &b.poll_latency_ms;
        let id = b.deployment_id.to_string();
        t.add_row(vec![
            Cell::new(&b.strategy_name),
            Cell::new(&id[..8.min(id.len())]),
            right(l.count),
            right(ms(l.avg)),
            right(ms(l.p99)),
            right(ms(l.max)),
            right(b.failed_polls),
        ]);
    }
    crate::cli::print_table(&t);
}

/// `memctl metrics`.
pub async fn metrics(client: &Client, json: bool) -> anyhow::Result<()> {
    let m = client.call::<method::MemMetrics>(NoParams {}).await?;
    if json {
        return print_json(&m);
    }
    print(&m);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ms;

    #[test]
    fn milliseconds_keep_their_significant_digits() {
        assert_eq!(ms(None), "-");
        assert_eq!(ms(Some(0.0421)), "0.042 ms");
        assert_eq!(ms(Some(3.2)), "3.20 ms");
        assert_eq!(ms(Some(120.4)), "120 ms");
    }
}
