//! The native runner: a strategy of [`crate::native`] paper-trading inside memd on a
//! candle feed (see [`crate::native::runner`]), on a blocking thread of its own. Never
//! live: there is no exchange behind it.
//!
//! Its feed comes from the deploy request's `native` options, else the strategy's
//! deployment section, else `[market]`. Its progress (broker, position, last candle) is
//! saved with the deployment, so a restarted daemon resumes it after its last saved
//! candle. It reads the served model through a handle: a promotion reaches it at its
//! next entry.

use super::bot::new_public;
use super::record::{DeploymentRecord, RunnerRecord, Slot};
use super::{Supervisor, internal, unavailable};
use crate::market::candles::{self, ParseTimeframeError, Timeframe};
use crate::mem::service::Memory;
use crate::ml::service::ServingModel;
use crate::native::runner::{self, FeedMode, NativeSaved, RunEnd};
use chrono::Utc;
use mem_protocol::RpcError;
use mem_protocol::deploy::*;
use mem_protocol::deploy_spec::NativeSpec;
use mem_protocol::strategy::StrategyDetail;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A native feed, resolved.
struct Feed {
    pair: String,
    timeframe: Timeframe,
    mode: FeedMode,
    file: PathBuf,
}

/// What native deployments need from the rest of the daemon.
#[derive(Clone)]
pub struct NativeContext {
    pub memory: Arc<Memory>,
    /// The served trend-reversal model, followed (not copied).
    pub model: ServingModel,
    pub market_dir: PathBuf,
    pub reference_pair: String,
    pub timeframe: String,
}

impl Supervisor {
    /// `strategies.deploy` of a native strategy of `kind`.
    pub(super) async fn deploy_native(
        self: &Arc<Self>,
        params: DeployParams,
        started_by: StartedBy,
        detail: &StrategyDetail,
        kind: &'static str,
        spec: &NativeSpec,
    ) -> Result<DeployedStrategy, RpcError> {
        if !params.dry_run {
            return Err(RpcError::permission_denied(format!(
                "strategy {} is native: it trades on paper only; deploy it in dry-run",
                params.id
            )));
        }
        let native = self.native_feed(&params, detail, kind, spec)?;
        let checked = native.clone();
        let candles = tokio::task::spawn_blocking(move || runner::check(&checked))
            .await
            .map_err(internal)?
            .map_err(|e| {
                RpcError::invalid_params(
                    "strategies.deploy",
                    format!("native strategy {kind}: {e}"),
                )
            })?;
        let deployment_id = DeploymentId::new_random();
        let dir = self.table.root().join(deployment_id.to_string());
        crate::datadir::ensure_dir(&dir, 0o750).map_err(internal)?;
        let (pair, mode, file) = (
            native.symbol.clone(),
            native.mode,
            native.file.display().to_string(),
        );
        let slot = self.table.add(DeploymentRecord {
            public: new_public(
                deployment_id,
                &params,
                detail,
                started_by,
                DeploymentType::Native,
                None,
                file.clone(),
            ),
            dir,
            runner: RunnerRecord::Native(Box::new(native)),
        });
        info!(%deployment_id, strategy = %params.id, kind, %pair, candles, ?mode, %file, "deploying a native strategy");
        self.start_native(slot.clone());
        Ok(slot.public())
    }

    /// A new native deployment's feed and paper broker: the request's options, else the
    /// section's, else `[market]`'s.
    fn native_feed(
        &self,
        params: &DeployParams,
        detail: &StrategyDetail,
        kind: &'static str,
        spec: &NativeSpec,
    ) -> Result<NativeSaved, RpcError> {
        let method = "strategies.deploy";
        let strategy = &detail.metadata.strategy;
        let opts = params.native.clone().unwrap_or_default();
        if let Some(speed) = opts.speed {
            if !(speed.is_finite() && speed >= 0.0) {
                return Err(RpcError::invalid_params(
                    method,
                    format!(
                        "field `native.speed`: must be 0 (as fast as possible) or more, got {speed}"
                    ),
                ));
            }
        }
        let feed = self.resolve_feed(method, "native.", &opts, spec)?;
        let mut paper = crate::native::engine::paper_settings(opts.starting_balance);
        paper.fee_rate = spec.fee_rate.unwrap_or(paper.fee_rate);
        paper
            .validate()
            .map_err(|e| RpcError::invalid_params(method, format!("native: {e}")))?;
        Ok(runner::new_saved(
            kind,
            strategy.parameters.clone(),
            strategy.name.clone(),
            feed.pair,
            feed.timeframe.to_string(),
            feed.file,
            feed.mode,
            opts.speed.filter(|s| *s > 0.0),
            strategy.mem_integration.enabled,
            crate::native::paper::PaperBroker::new(paper),
        ))
    }

    /// Which pair, timeframe, mode and file a native feed reads: the options', else the
    /// section's, else `[market]`'s (the pair's file in the market data directory). A
    /// pair other than the section's leaves the section's file out: that file holds the
    /// section's pair. `prefix` is how the method names the options' fields.
    fn resolve_feed(
        &self,
        method: &str,
        prefix: &str,
        opts: &NativeOptions,
        spec: &NativeSpec,
    ) -> Result<Feed, RpcError> {
        let ctx = &self.native;
        let other_pair = opts.pair.is_some() && opts.pair != spec.pair;
        let pair = opts
            .pair
            .clone()
            .or_else(|| spec.pair.clone())
            .unwrap_or_else(|| ctx.reference_pair.clone());
        let timeframe: Timeframe = opts
            .timeframe
            .clone()
            .or_else(|| spec.timeframe.clone())
            .unwrap_or_else(|| ctx.timeframe.clone())
            .parse()
            .map_err(|e: ParseTimeframeError| {
                RpcError::invalid_params(method, format!("field `{prefix}timeframe`: {e}"))
            })?;
        let mode = opts.mode.or(spec.mode).unwrap_or(FeedMode::Follow);
        let section_file = spec.file.clone().filter(|_| !other_pair);
        let file = match opts.file.clone().or(section_file) {
            Some(f) => crate::datadir::confined(&ctx.market_dir, &f).map_err(|e| {
                RpcError::invalid_params(method, format!("field `{prefix}file`: {e}"))
            })?,
            None => candles::find_pair_file(&ctx.market_dir, &pair, timeframe)
                .map_err(|e| unavailable(e.to_string()))?,
        };
        Ok(Feed {
            pair,
            timeframe,
            mode,
            file,
        })
    }

    /// `market.feed`: what a native deployment of strategy `id` (or of any native
    /// strategy, without one) would read with these options, as a deploy resolves them,
    /// and how old the file's newest candle is.
    pub fn feed(&self, p: FeedParams) -> Result<FeedInfo, RpcError> {
        use mem_protocol::deploy_spec::{Runner, runner_of};
        let method = "market.feed";
        let spec = match p.id {
            None => NativeSpec::default(),
            Some(id) => {
                let detail = self.registry.get(id).map_err(|e| e.into_rpc(method))?;
                match runner_of(&detail.metadata.strategy) {
                    Runner::Native { spec, .. } => spec,
                    _ => {
                        return Err(RpcError::invalid_params(
                            method,
                            format!(
                                "strategy {id} ({}) is not a native strategy: it reads no candle feed",
                                detail.summary.display_name
                            ),
                        ));
                    }
                }
            }
        };
        let opts = NativeOptions {
            pair: p.pair,
            timeframe: p.timeframe,
            file: p.file,
            ..Default::default()
        };
        let feed = self.resolve_feed(method, "", &opts, &spec)?;
        let read = candles::read_file(&feed.file)
            .map_err(|e| unavailable(format!("{}: {e}", feed.file.display())))?;
        let (clean, _) = candles::clean(read);
        let at = |c: Option<&candles::Candle>| {
            c.and_then(|c| chrono::DateTime::from_timestamp_millis(c.ts_ms))
        };
        let modified_at = std::fs::metadata(&feed.file)
            .and_then(|m| m.modified())
            .ok()
            .map(chrono::DateTime::<Utc>::from);
        let market = &self.native.market_dir;
        Ok(FeedInfo {
            file: feed
                .file
                .strip_prefix(market)
                .unwrap_or(&feed.file)
                .display()
                .to_string(),
            path: feed.file.display().to_string(),
            pair: feed.pair,
            timeframe: feed.timeframe.to_string(),
            mode: feed.mode,
            candles: clean.len(),
            first_candle: at(clean.first()),
            newest_candle: at(clean.last()),
            modified_at,
            pairs: candles::list_pairs(market, feed.timeframe),
        })
    }

    /// Runs (or resumes) a native deployment on a blocking thread; its end is recorded.
    pub(super) fn start_native(self: &Arc<Self>, slot: Arc<Slot>) {
        let cancel = CancellationToken::new();
        *slot.cancel.lock().expect("cancel lock") = cancel.clone();
        let record = slot.record.lock().expect("slot lock").clone();
        let RunnerRecord::Native(native) = record.runner.clone() else {
            return;
        };
        let ctx = runner::RunContext {
            memory: self.native.memory.clone(),
            model: self.native.model.clone(),
            settings: self.native.memory.settings().clone(),
            registry: self.registry.clone(),
            strategy_id: record.public.strategy_id,
            deployment: record.public.deployment_id.to_string(),
            log: record.log_path(),
        };
        self.table.update(&slot, |r| {
            r.public.status = DeploymentStatus::Running;
            // Started now, also when it was running before memd stopped: uptime counts
            // the time it ran, not the time memd was down.
            r.public.running_since = Some(Utc::now());
            r.public.last_error = None;
        });
        let this = self.clone();
        let task_slot = slot.clone();
        let suspend = self.suspend_native.clone();
        let handle = tokio::spawn(async move {
            let progress_this = this.clone();
            let progress_slot = task_slot.clone();
            let result = tokio::task::spawn_blocking(move || {
                runner::run(*native, ctx, cancel, suspend, |state, status| {
                    progress_this.native_progress(&progress_slot, state, status)
                })
            })
            .await;
            let ended = |status: DeploymentStatus, error: Option<String>| {
                this.table.update(&task_slot, |r| {
                    r.public.status = status;
                    if error.is_some() {
                        r.public.last_error = error;
                    }
                });
            };
            match result {
                Ok(Ok(RunEnd::Finished)) => {
                    info!(deployment = %record.public.deployment_id, "native replay finished");
                    ended(DeploymentStatus::Stopped, None);
                }
                Ok(Ok(RunEnd::Stopped | RunEnd::Suspended)) => {}
                Ok(Err(e)) => {
                    warn!(error = %e, "a native deployment failed");
                    ended(DeploymentStatus::Failed, Some(e));
                }
                Err(e) => ended(
                    DeploymentStatus::Failed,
                    Some(format!("the native runner panicked: {e}")),
                ),
            }
            None
        });
        *slot.task.lock().expect("task lock") = Some(handle);
    }

    /// A native deployment's flush: its state saved (so a restart resumes there) and its
    /// stats announced.
    fn native_progress(&self, slot: &Slot, state: &NativeSaved, status: Option<&str>) {
        let broker = &state.broker;
        let mark =
            |p: &crate::native::paper::OpenPosition| state.last_close.unwrap_or(p.entry_price);
        let open_value = broker.position().map_or(0.0, |p| p.quantity * mark(p));
        let open_cost = broker.position().map_or(0.0, |p| p.stake);
        let bot_state = match status {
            Some(s) => s.to_string(),
            None if state.mode == FeedMode::Replay && state.total_candles > 0 => format!(
                "replaying {:.0}% ({} of {} candles)",
                state.done_candles as f64 * 100.0 / state.total_candles as f64,
                state.done_candles,
                state.total_candles
            ),
            None => "following".into(),
        };
        self.table.update(slot, |r| {
            r.runner = RunnerRecord::Native(Box::new(state.clone()));
            r.public.stats = BotStats {
                open_trades: broker.position().is_some() as u64,
                closed_trades: broker.closed_trades(),
                profit_closed: broker.realised_pnl(),
                profit_all: broker.realised_pnl() + open_value - open_cost,
                balance: Some(broker.balance() + open_value),
                stake_currency: state
                    .symbol
                    .split('/')
                    .nth(1)
                    .map(|q| q.split(':').next().unwrap_or(q).to_string()),
                bot_state: Some(bot_state),
                polled_at: Some(Utc::now()),
            };
        });
    }
}
