//! The texts memd sends about the fleet: the daily summary (per bot P&L, open trades, the
//! day's decisions) and the answers of the Telegram commands `/status`, `/bots`,
//! `/profit`, `/decisions`. Each reads the owners' APIs (supervisor, memory), never
//! their files.

use super::Alerts;
use super::rules::{Raised, Rule};
use crate::Daemon;
use chrono::{DateTime, Duration as Span, Timelike, Utc};
use mem_protocol::Access;
use mem_protocol::deploy::DeploymentStatus;
use mem_protocol::mem::{Decision, DecisionsParams};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Weak};

/// `/status`: the daemon, its bots, its data.
pub fn status_text(d: &Daemon) -> String {
    let s = crate::handlers::status(d, Access::View);
    let bots = d.supervisor.deployed(false).deployments;
    let running = bots
        .iter()
        .filter(|b| b.status == DeploymentStatus::Running)
        .count();
    format!(
        "memd {} up {}\n{} strategies; {} bots active ({} running)\nhost: cpu {:.0}%, load {:.2}",
        s.version,
        super::rules::duration_text(s.uptime_secs as i64),
        s.counts.strategies,
        bots.len(),
        running,
        s.host.cpu_percent,
        s.host.load_average[0],
    )
}

/// `/bots`: each active bot's status, open trades and profit.
pub fn bots_text(d: &Daemon) -> String {
    let bots = d.supervisor.deployed(false).deployments;
    if bots.is_empty() {
        return "No bot is deployed.".into();
    }
    let mut out = String::new();
    for b in bots {
        let _ = writeln!(
            out,
            "{} [{}{}] {:?}: {} open, profit {:.2} {}",
            b.strategy_name,
            &b.deployment_id.to_string()[..8],
            if b.dry_run { ", dry run" } else { ", LIVE" },
            b.status,
            b.stats.open_trades,
            b.stats.profit_all,
            b.stats.stake_currency.as_deref().unwrap_or(""),
        );
    }
    out.trim_end().to_string()
}

fn decisions_since(d: &Daemon, since: DateTime<Utc>) -> Vec<Decision> {
    d.memory
        .decisions(&DecisionsParams {
            limit: Some(1000),
            ..Default::default()
        })
        .decisions
        .into_iter()
        .filter(|x| x.at >= since || x.outcome.as_ref().is_some_and(|o| o.closed_at >= since))
        .collect()
}

/// `/profit [day|week]`: closed trades' P&L per strategy over the period, and each bot's
/// profit now.
pub fn profit_text(d: &Daemon, week: bool) -> String {
    let since = Utc::now() - if week { Span::days(7) } else { Span::days(1) };
    let mut per: BTreeMap<String, (usize, usize, f64)> = BTreeMap::new();
    for x in decisions_since(d, since) {
        if let Some(o) = x.outcome.as_ref().filter(|o| o.closed_at >= since) {
            let e = per.entry(x.strategy.clone()).or_default();
            e.0 += 1;
            e.1 += o.win as usize;
            e.2 += o.pnl;
        }
    }
    let mut out = format!(
        "Closed trades, last {}:\n",
        if week { "7 days" } else { "24 h" }
    );
    if per.is_empty() {
        out.push_str("none\n");
    }
    for (strategy, (n, wins, pnl)) in &per {
        let _ = writeln!(out, "{strategy}: {n} trades, {wins} won, P&L {pnl:+.2}");
    }
    out.push_str("Bots now:\n");
    out.push_str(&bots_text(d));
    out
}

/// `/decisions`: the newest decisions.
pub fn decisions_text(d: &Daemon, n: usize) -> String {
    let list = d
        .memory
        .decisions(&DecisionsParams {
            limit: Some(n),
            ..Default::default()
        })
        .decisions;
    if list.is_empty() {
        return "No decision logged yet.".into();
    }
    let mut out = String::new();
    for x in list {
        let outcome = x
            .outcome
            .as_ref()
            .map(|o| format!(" -> {:+.2}%", o.pnl_pct * 100.0))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} {:?} {} @ {} conf {:.2}{outcome}",
            x.at.format("%m-%d %H:%M"),
            x.strategy,
            x.action,
            x.symbol,
            mem_protocol::numbers::significant(x.price),
            x.confidence
        );
    }
    out.trim_end().to_string()
}

/// The daily summary's text.
pub fn daily_text(d: &Daemon) -> String {
    let since = Utc::now() - Span::days(1);
    let decisions = decisions_since(d, since);
    let made = decisions.iter().filter(|x| x.at >= since).count();
    let closed: Vec<_> = decisions
        .iter()
        .filter_map(|x| x.outcome.as_ref().filter(|o| o.closed_at >= since))
        .collect();
    let pnl: f64 = closed.iter().map(|o| o.pnl).sum();
    format!(
        "Bots:\n{}\nDecisions in 24 h: {made}; trades closed: {} (P&L {pnl:+.2})",
        bots_text(d),
        closed.len()
    )
}

/// Raises the daily summary at `[alerts] daily_summary_at` (UTC) each day.
pub fn spawn(alerts: Arc<Alerts>, daemon: Weak<Daemon>) {
    let Some(at) = alerts.settings.daily_summary_at else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let now = Utc::now();
            let minute = now.hour() * 60 + now.minute();
            let mut wait = (at as i64 - minute as i64).rem_euclid(1440) * 60 - now.second() as i64;
            if wait <= 0 {
                wait += 86_400;
            }
            tokio::time::sleep(std::time::Duration::from_secs(wait as u64)).await;
            let Some(d) = daemon.upgrade() else { return };
            let Ok(text) = tokio::task::spawn_blocking(move || daily_text(&d)).await else {
                continue;
            };
            alerts.raise(Raised::new(
                Rule::DailySummary,
                format!("daily_summary:{}", Utc::now().date_naive()),
                format!("Daily summary, {}", Utc::now().format("%Y-%m-%d")),
                text,
            ));
        }
    });
}
