//! The `data_refresh` job and `market.refresh`: what to refresh (the pairs and
//! timeframes asked for, else `[market.refresh]`'s, else the reference pair, the
//! training pairs and every deployed bot's pairs at the training and conditions
//! timeframes), the run ([`crate::market::refresh`]) with its progress as `job.progress`
//! events, its record, and the market's new conditions as `market.changed`.

use super::{Done, JobArgs, Scheduler, config};
use crate::market::candles::Timeframe;
use crate::market::refresh::{Plan, RefreshError, check_pair};
use mem_protocol::deploy_spec::{Runner, runner_of};
use mem_protocol::jobs::{JobProgress, RunJobResult};
use mem_protocol::market::{RefreshParams, RefreshReport, RefreshStatus};
use mem_protocol::{Event, RpcError};
use serde_json::{Value, json};
use std::sync::Arc;

/// Entries of a run's summary line; the details hold them all.
const SUMMARY_ENTRIES: usize = 6;

/// Adds `pair` once.
fn push_unique(pairs: &mut Vec<String>, pair: String) {
    if !pairs.contains(&pair) {
        pairs.push(pair);
    }
}

impl Scheduler {
    /// `market.refresh`: the `data_refresh` job now, with the pairs, timeframes and days
    /// asked for (checked first: a bad pair is an error, not a failed run).
    pub async fn refresh_now(self: &Arc<Self>, p: RefreshParams) -> Result<RunJobResult, RpcError> {
        let method = "market.refresh";
        for pair in &p.pairs {
            check_pair(pair)
                .map_err(|e| RpcError::invalid_params(method, format!("field `pairs`: {e}")))?;
        }
        let mut timeframes = Vec::new();
        for t in &p.timeframes {
            let tf: Timeframe = t.parse().map_err(|e| {
                RpcError::invalid_params(method, format!("field `timeframes`: {e}"))
            })?;
            timeframes.push(tf);
        }
        if p.days == Some(0) {
            return Err(RpcError::invalid_params(
                method,
                "field `days`: must be 1 or more",
            ));
        }
        let mut plan = if p.pairs.is_empty() {
            self.default_refresh_plan()
                .map_err(|e| RpcError::new(mem_protocol::ErrorCode::Unavailable, e))?
        } else {
            Plan {
                pairs: Vec::new(),
                timeframes: self.ctx.refresher.timeframes().to_vec(),
                days: self.ctx.refresher.days(),
            }
        };
        for pair in p.pairs {
            push_unique(&mut plan.pairs, pair);
        }
        if !timeframes.is_empty() {
            timeframes.sort();
            timeframes.dedup();
            plan.timeframes = timeframes;
        }
        if let Some(days) = p.days {
            plan.days = days;
        }
        self.start_now(config::DATA_REFRESH, p.wait, JobArgs::Refresh(plan))
            .await
    }

    /// What a scheduled refresh does: `[market.refresh] pairs`, else the reference pair,
    /// the training pairs and every deployed bot's pairs.
    pub(super) fn default_refresh_plan(&self) -> Result<Plan, String> {
        let refresher = &self.ctx.refresher;
        let mut pairs: Vec<String> = Vec::new();
        if refresher.configured_pairs().is_empty() {
            let ml = &self.ctx.ml;
            if let Some(reference) = ml.reference_pair() {
                push_unique(&mut pairs, reference);
            }
            let training = if self.schedule.retrain_pairs.is_empty() {
                ml.default_pairs(ml.timeframe())
            } else {
                self.schedule.retrain_pairs.clone()
            };
            for pair in training.into_iter().chain(self.deployed_pairs()) {
                push_unique(&mut pairs, pair);
            }
        } else {
            pairs = refresher.configured_pairs().to_vec();
        }
        // Futures and odd names cannot be refreshed as spot pairs: left out here, and
        // named when given in [market.refresh] (checked at start).
        pairs.retain(|p| check_pair(p).is_ok());
        if pairs.is_empty() {
            return Err(format!(
                "no pairs to refresh: set [market.refresh] pairs (no reference pair, training pair or deployed bot's pair was found, and {} has no candles)",
                refresher.market_dir().display()
            ));
        }
        Ok(Plan {
            pairs,
            timeframes: refresher.timeframes().to_vec(),
            days: refresher.days(),
        })
    }

    /// The pairs of every active deployment's strategy (its deployment section's).
    fn deployed_pairs(&self) -> Vec<String> {
        let mut pairs = Vec::new();
        for d in self.ctx.supervisor.deployed(false).deployments {
            if !d.status.is_active() {
                continue;
            }
            let Ok(detail) = self.ctx.registry.get(d.strategy_id) else {
                continue;
            };
            match runner_of(&detail.metadata.strategy) {
                Runner::Freqtrade(spec) => pairs.extend(spec.pairs),
                Runner::Native { spec, .. } => pairs.extend(spec.pair),
                Runner::None => {}
            }
        }
        pairs
    }

    /// Runs a refresh, announcing its progress, then the market's conditions.
    pub(super) async fn data_refresh(&self, run_id: &str, plan: Plan) -> Done {
        let refresher = self.ctx.refresher.clone();
        let bus = self.bus.clone();
        let id = run_id.to_string();
        let asked = plan.clone();
        let ran = tokio::task::spawn_blocking(move || {
            refresher.run(&asked, &|done, total, message| {
                bus.publish(Event::JobProgress(JobProgress {
                    run_id: id.clone(),
                    job: config::DATA_REFRESH.to_string(),
                    done,
                    total,
                    message,
                }));
            })
        })
        .await;
        let done = match ran {
            Err(e) => Done::Fail(format!("the refresh panicked: {e}"), Value::Null),
            Ok(Ok(report)) => Done::Ok(summary(&report), to_details(&report)),
            Ok(Err(RefreshError::Pairs(report))) => {
                Done::Fail(failures(&report), to_details(&report))
            }
            Ok(Err(RefreshError::Setup(message))) => Done::Fail(
                message,
                json!({
                    "pairs": plan.pairs,
                    "timeframes": plan.timeframes.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                    "days": plan.days,
                }),
            ),
        };
        self.announce_market().await;
        done
    }

    /// `market.changed`: the conditions now (after the candles changed).
    async fn announce_market(&self) {
        let ml = self.ctx.ml.clone();
        if let Ok(state) = tokio::task::spawn_blocking(move || ml.market_state()).await {
            self.bus.publish(Event::MarketChanged(Box::new(state)));
        }
    }
}

fn to_details(report: &RefreshReport) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

/// `ETH/USDT 5m +3 (newest 12:05 UTC)`.
fn entry(r: &mem_protocol::market::RefreshedPair) -> String {
    format!(
        "{} {} +{}{}{}",
        r.pair,
        r.timeframe,
        r.added,
        r.newest
            .map(|t| format!(" (newest {})", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default(),
        if r.status == RefreshStatus::Downloaded {
            ", downloaded anew"
        } else {
            ""
        }
    )
}

fn entries<'a>(items: impl Iterator<Item = &'a mem_protocol::market::RefreshedPair>) -> String {
    let all: Vec<String> = items.map(entry).collect();
    let shown = all.len().min(SUMMARY_ENTRIES);
    let mut text = all[..shown].join(", ");
    if all.len() > shown {
        text.push_str(&format!(" and {} more", all.len() - shown));
    }
    text
}

/// A successful run in one line.
fn summary(report: &RefreshReport) -> String {
    let added: u64 = report.results.iter().map(|r| r.added).sum();
    format!(
        "{} file{} up to date from {}, {added} candle{} added, in {:.1} s (Freqtrade {:.1} s{}): {}",
        report.results.len(),
        if report.results.len() == 1 { "" } else { "s" },
        report.exchange,
        if added == 1 { "" } else { "s" },
        report.seconds,
        report.freqtrade_seconds,
        report
            .freqtrade_startup_seconds
            .map(|s| format!(", its start-up {s:.1} s"))
            .unwrap_or_default(),
        entries(report.results.iter())
    )
}

/// A run with failures: each failed pair and timeframe with the exchange's error, then
/// what did succeed.
fn failures(report: &RefreshReport) -> String {
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.status == RefreshStatus::Failed)
        .map(|r| {
            format!(
                "{} {}: {}",
                r.pair,
                r.timeframe,
                r.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    let mut text = format!(
        "{} of {} files not refreshed from {} (left as they were): {}",
        failed.len(),
        report.results.len(),
        report.exchange,
        failed.join("; ")
    );
    let good = report
        .results
        .iter()
        .filter(|r| r.status != RefreshStatus::Failed);
    if good.clone().next().is_some() {
        text.push_str(&format!("; up to date: {}", entries(good)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::market::RefreshedPair;

    fn result(pair: &str, status: RefreshStatus, added: u64, error: Option<&str>) -> RefreshedPair {
        RefreshedPair {
            pair: pair.into(),
            timeframe: "5m".into(),
            status,
            added,
            candles: 100,
            newest: Some("2026-12-05T12:05:00Z".parse().unwrap()),
            file: None,
            error: error.map(str::to_string),
        }
    }

    fn report(results: Vec<RefreshedPair>) -> RefreshReport {
        RefreshReport {
            exchange: "binance".into(),
            market_dir: "/m".into(),
            days: 30,
            pairs: vec![],
            timeframes: vec!["5m".into()],
            results,
            seconds: 3.2,
            freqtrade_seconds: 3.0,
            freqtrade_startup_seconds: Some(2.6),
        }
    }

    #[test]
    fn the_record_says_what_each_file_got_and_names_each_failure() {
        let ok = report(vec![
            result("ETH/USDT", RefreshStatus::Updated, 3, None),
            result("BTC/USDT", RefreshStatus::Downloaded, 8640, None),
        ]);
        assert_eq!(
            summary(&ok),
            "2 files up to date from binance, 8643 candles added, in 3.2 s (Freqtrade 3.0 s, its start-up 2.6 s): ETH/USDT 5m +3 (newest 2026-12-05 12:05 UTC), BTC/USDT 5m +8640 (newest 2026-12-05 12:05 UTC), downloaded anew"
        );
        let bad = report(vec![
            result(
                "ETH/USDT",
                RefreshStatus::Failed,
                0,
                Some("binance {\"code\":-1000}"),
            ),
            result("BTC/USDT", RefreshStatus::Updated, 1, None),
        ]);
        let text = failures(&bad);
        assert!(
            text.starts_with("1 of 2 files not refreshed from binance (left as they were): ETH/USDT 5m: binance {\"code\":-1000}; up to date: BTC/USDT 5m +1"),
            "{text}"
        );
    }
}
