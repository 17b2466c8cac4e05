//! The Freqtrade runner: a deployment that is a `freqtrade trade` process.
//!
//! - Prepare and spawn (here): the strategy's base config, the operator's overrides and
//!   the strategy's config-key parameters rendered into `deployments/{id}/config.json`
//!   (0600) with fresh API credentials and a free port
//!   ([`crate::freqtrade::render_config`]); the bot in its own process group, with an
//!   explicit environment, logging to files; ready when `/api/v1/ping` answers, never
//!   judged by its exit code (Freqtrade exits 0 on a configuration error).
//! - [`watch`]: adoption after a daemon restart, the health of a running bot, restarts
//!   with backoff.
//! - [`sync`]: the stats polled, and closed trades copied to the registry.
//! - [`control`]: a parameter reloaded into a running bot, draining, a signal forwarded.

mod control;
mod startup;
mod sync;
mod watch;

pub use control::SignalForwarded;
pub(super) use control::drain;

use super::process::{start_ticks, tail_lines, terminate_group};
use super::record::{BotRecord, DeploymentRecord, RunnerRecord, Slot};
use super::{Supervisor, conflict, internal, unavailable};
use crate::freqtrade::{self, Credentials};
use chrono::Utc;
use mem_protocol::RpcError;
use mem_protocol::deploy::*;
use mem_protocol::deploy_spec::FreqtradeSpec;
use mem_protocol::strategy::StrategyDetail;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tracing::{info, warn};

/// What [`mem_protocol::deploy_spec::deployable`] said a bot runs.
pub struct BotPlan {
    pub class: String,
    pub config_file: String,
    pub spec: FreqtradeSpec,
}

impl Supervisor {
    /// `strategies.deploy` of a Freqtrade strategy.
    pub(super) async fn deploy_bot(
        self: &Arc<Self>,
        params: DeployParams,
        started_by: StartedBy,
        detail: &StrategyDetail,
        plan: BotPlan,
    ) -> Result<DeployedStrategy, RpcError> {
        let (record, bin) = self.prepare_bot(&params, started_by, detail, plan)?;
        let deployment_id = record.public.deployment_id;
        let port = record.public.port;
        let slot = self.table.add(record);
        info!(%deployment_id, strategy = %params.id, ?port, dry_run = params.dry_run, "deploying");
        match self.start_process(&slot, &bin).await {
            Ok(child) => {
                self.table
                    .update(&slot, |r| r.public.status = DeploymentStatus::Running);
                self.supervise(slot.clone(), Some(child));
                Ok(slot.public())
            }
            Err(reason) => {
                warn!(%deployment_id, strategy = %params.id, %reason, "the bot did not start");
                self.table.update(&slot, |r| {
                    r.public.status = DeploymentStatus::Failed;
                    r.public.last_error = Some(reason.clone());
                });
                Err(unavailable(format!("the bot did not start: {reason}")))
            }
        }
    }

    /// Checks what a bot needs (its base config, live trading's conditions, the
    /// binary, a port) and writes its rendered config: the record of a bot not started.
    fn prepare_bot(
        &self,
        params: &DeployParams,
        started_by: StartedBy,
        detail: &StrategyDetail,
        plan: BotPlan,
    ) -> Result<(DeploymentRecord, PathBuf), RpcError> {
        let method = "strategies.deploy";
        let base_path =
            crate::datadir::confined(&self.data_dir, &plan.config_file).map_err(|e| {
                RpcError::invalid_params(
                    method,
                    format!("the deployment section's config_file: {e}"),
                )
            })?;
        if !base_path.is_file() {
            return Err(unavailable(format!(
                "the base config of strategy {} (deployment.config_file) is missing in {}",
                params.id,
                self.data_dir.display()
            )));
        }
        let base: Value = serde_json::from_slice(&std::fs::read(&base_path).map_err(internal)?)
            .map_err(|e| {
                RpcError::invalid_params(
                    method,
                    format!("{} is not valid JSON: {e}", base_path.display()),
                )
            })?;
        let overrides = self.config_overrides()?;
        if !params.dry_run {
            check_live(params, &plan.spec, &base, overrides.as_ref())?;
        }
        let bin = freqtrade::find_binary(self.settings.freqtrade_bin.as_deref(), &self.data_dir)
            .map_err(unavailable)?;
        let port = self.choose_port(params.port, plan.spec.port)?;
        let deployment_id = DeploymentId::new_random();
        let dir = self.table.root().join(deployment_id.to_string());
        crate::datadir::ensure_dir(&dir.join("user_data"), 0o750).map_err(internal)?;
        let credentials = Credentials::generate();
        let mem_credential = freqtrade::random_hex(32);
        let mem = self
            .settings
            .mem_socket
            .as_ref()
            .map(|socket| freqtrade::MemSection {
                socket: socket.clone(),
                credential: mem_credential.clone(),
                strategy: detail.summary.name.clone(),
                strategy_id: params.id.to_string(),
                deployment_id: deployment_id.to_string(),
                base_size: self.native.memory.settings().base_size,
                timeout_ms: self.settings.mem_timeout.as_millis() as u64,
                fail_closed: self.settings.mem_fail_closed,
                decided_tags: vec![control::FORWARDED_TAG.to_string()],
            });
        let owned = freqtrade::Owned {
            dry_run: params.dry_run,
            port,
            credentials: &credentials,
            bot_name: format!("memd-{}", detail.summary.name),
            db_path: dir.join("tradesv3.sqlite"),
            pairs: plan.spec.pairs.clone(),
            timeframe: plan.spec.timeframe.clone(),
            mem,
        };
        let tuning = freqtrade::config_parameters(&detail.metadata.strategy.parameters);
        let config = freqtrade::render_config(&base, overrides.as_ref(), &tuning, &owned)
            .map_err(internal)?;
        let config_path = dir.join("config.json");
        crate::datadir::write_atomic(
            &config_path,
            &serde_json::to_vec_pretty(&config).expect("configs serialize"),
            0o600,
        )
        .map_err(internal)?;
        let record = DeploymentRecord {
            public: new_public(
                deployment_id,
                params,
                detail,
                started_by,
                DeploymentType::Freqtrade,
                Some(port),
                config_path.display().to_string(),
            ),
            dir,
            runner: RunnerRecord::Freqtrade(BotRecord {
                credentials,
                strategy_class: plan.class,
                pid_start_ticks: None,
                last_synced_trade: 0,
                mem_credential: self.settings.mem_socket.is_some().then_some(mem_credential),
                forwarded: Default::default(),
            }),
        };
        Ok((record, bin))
    }

    /// The operator's overrides, read now (it may have changed: no restart needed):
    /// [`freqtrade::read_overrides`].
    fn config_overrides(&self) -> Result<Option<Value>, RpcError> {
        freqtrade::read_overrides(self.settings.config_overrides.as_deref(), &self.data_dir)
            .map_err(unavailable)
    }

    fn choose_port(&self, requested: Option<u16>, preferred: Option<u16>) -> Result<u16, RpcError> {
        let taken = self.table.taken_ports();
        if let Some(port) = requested.or(preferred) {
            if taken.contains(&port) || !super::process::port_is_free(port) {
                return Err(conflict(format!(
                    "port {port} is busy on 127.0.0.1; free it, or deploy on another port (`memctl deploy ID --port N`)"
                )));
            }
            return Ok(port);
        }
        let (lo, hi) = self.settings.port_range;
        (lo..=hi)
            .find(|p| !taken.contains(p) && super::process::port_is_free(*p))
            .ok_or_else(|| conflict(format!("no free port between {lo} and {hi}")))
    }

    /// Spawns the bot and waits for its API; on failure the process is gone and the error
    /// carries the last lines of its log.
    pub(in crate::supervisor) async fn start_process(
        &self,
        slot: &Slot,
        bin: &Path,
    ) -> Result<Child, String> {
        let record = slot.record.lock().expect("slot lock").clone();
        let RunnerRecord::Freqtrade(bot) = &record.runner else {
            return Err("not a Freqtrade deployment".into());
        };
        let console = record.dir.join("console.log");
        let mut child = self
            .spawn_bot(bin, &record.dir, &bot.strategy_class, &console)
            .map_err(|e| e.to_string())?;
        let pid = child.id().ok_or("the bot exited at once")?;
        let ticks = start_ticks(pid);
        self.table.update(slot, |r| {
            r.public.process_id = Some(pid);
            if let RunnerRecord::Freqtrade(bot) = &mut r.runner {
                bot.pid_start_ticks = ticks;
            }
        });
        let client = record.bot_client().ok_or("a bot deployment has a port")?;
        let deadline = Instant::now() + self.settings.ready_timeout;
        let mut log = startup::StartupWatch::new(
            &[record.log_path(), console.clone()],
            &startup::exchange_name(&record.dir.join("config.json")),
        );
        loop {
            if let Some(cause) = log.fatal() {
                terminate_group(pid, &mut Some(child), self.settings.stop_timeout).await;
                return Err(cause);
            }
            if let Ok(Some(status)) = child.try_wait() {
                if let Some(cause) = log.fatal() {
                    return Err(cause);
                }
                let mut lines = tail_lines(&console, 10);
                lines.extend(tail_lines(&record.log_path(), 10));
                return Err(format!(
                    "it exited ({status}) before its API answered; last log lines: {}",
                    lines.join(" | ")
                ));
            }
            if client.ping().await {
                info!(deployment = %record.public.deployment_id, pid, "bot is ready");
                return Ok(child);
            }
            if Instant::now() >= deadline {
                terminate_group(pid, &mut Some(child), self.settings.stop_timeout).await;
                let lines = tail_lines(&record.log_path(), 10);
                return Err(format!(
                    "its API did not answer within {} s; stopped it; last log lines: {}",
                    self.settings.ready_timeout.as_secs(),
                    lines.join(" | ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `freqtrade trade` in its own process group, its output in `console` (the previous
    /// one kept as `console.log.1`).
    fn spawn_bot(
        &self,
        bin: &Path,
        dir: &Path,
        class: &str,
        console: &Path,
    ) -> std::io::Result<Child> {
        if console.exists() {
            let _ = std::fs::rename(console, dir.join("console.log.1"));
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(console)?;
        let err = out.try_clone()?;
        Command::new(bin)
            .arg("trade")
            .arg("--config")
            .arg(dir.join("config.json"))
            .arg("--strategy")
            .arg(class)
            .arg("--strategy-path")
            .arg(self.data_dir.join("freqtrade/strategies"))
            .arg("--userdir")
            .arg(dir.join("user_data"))
            .arg("--logfile")
            .arg(dir.join("freqtrade.log"))
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", dir)
            .env("LANG", "C.UTF-8")
            .env("TZ", "UTC")
            // No __pycache__ in the shared strategies directory.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot run {}: {e}", bin.display()))
            })
    }
}

impl Supervisor {
    /// The scope of a bot's credential (`hello {credential}`): the active Freqtrade
    /// deployment it was rendered for, and its strategy as the registry names it now.
    /// `None` for a credential no active deployment holds (a stopped bot's, a guess).
    pub fn bot_scope(&self, credential: &str) -> Option<crate::access::BotScope> {
        use subtle::ConstantTimeEq;
        if credential.is_empty() {
            return None;
        }
        let (deployment_id, strategy_id) = self.table.slots(true).iter().find_map(|slot| {
            let r = slot.record.lock().expect("slot lock");
            let held = r.bot()?.mem_credential.as_deref()?;
            (r.public.status.is_active()
                && bool::from(held.as_bytes().ct_eq(credential.as_bytes())))
            .then_some((r.public.deployment_id, r.public.strategy_id))
        })?;
        let summary = self.registry.summary(strategy_id)?;
        Some(crate::access::BotScope {
            deployment_id,
            strategy_id,
            strategy: summary.name,
        })
    }
}

/// A deployment's public record before it starts.
pub(super) fn new_public(
    deployment_id: DeploymentId,
    params: &DeployParams,
    detail: &StrategyDetail,
    started_by: StartedBy,
    deployment_type: DeploymentType,
    port: Option<u16>,
    config_file: String,
) -> DeployedStrategy {
    DeployedStrategy {
        port,
        config_file: Some(config_file),
        ..starting(
            deployment_id,
            params.id,
            detail.summary.display_name.clone(),
            deployment_type,
            params.dry_run,
            started_by,
        )
    }
}

/// A new deployment's public record, starting: no process, port or config yet, no
/// figures (memd's bots and native runners: [`new_public`]; an attached bot's too).
pub(super) fn starting(
    deployment_id: DeploymentId,
    strategy_id: mem_protocol::strategy::StrategyId,
    strategy_name: String,
    deployment_type: DeploymentType,
    dry_run: bool,
    started_by: StartedBy,
) -> DeployedStrategy {
    DeployedStrategy {
        attached: None,
        deployment_id,
        strategy_id,
        strategy_name,
        deployment_type,
        process_id: None,
        port: None,
        started_at: Utc::now(),
        running_since: None,
        status: DeploymentStatus::Starting,
        dry_run,
        config_file: None,
        started_by,
        restarts: 0,
        last_error: None,
        stats: BotStats::default(),
        warnings: 0,
        errors: 0,
        cpu_percent: None,
        rss_bytes: None,
        acknowledged: false,
    }
}

/// A live deploy needs the strategy's permission and exchange keys.
fn check_live(
    params: &DeployParams,
    spec: &FreqtradeSpec,
    base: &Value,
    overrides: Option<&Value>,
) -> Result<(), RpcError> {
    if !spec.allow_live {
        return Err(RpcError::permission_denied(format!(
            "live trading refused: strategy {} does not allow it (deployment.allow_live is not true); deploy in dry-run",
            params.id
        )));
    }
    let mut merged = base.clone();
    if let Some(o) = overrides {
        freqtrade::deep_merge(&mut merged, o);
    }
    if !freqtrade::has_exchange_keys(&merged) {
        return Err(RpcError::permission_denied(
            "live trading refused: no exchange key and secret are configured (set them in the [freqtrade] config_overrides file)",
        ));
    }
    Ok(())
}
