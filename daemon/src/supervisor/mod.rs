//! Deployments: Freqtrade bots and native runners, started, watched, restarted and
//! stopped. The supervisor is the only part of memd that talks to bots.
//!
//! - [`record`]: the deployment record (one enum for what differs between a bot and a
//!   native runner) and the table of deployments, persisted in `deployments/state.json`.
//! - [`bot`]: the Freqtrade runner: prepare a config, spawn, wait for the API, adopt
//!   after a restart, poll, copy closed trades, reload the config, forward a signal.
//! - [`attach`]: bots memd did not start, watched through the same supervision and
//!   trade sync as its own, never started, stopped or restarted.
//! - [`native`]: the native runner: a paper-trading strategy on a candle feed, on a
//!   thread of its own.
//! - [`process`]: pids with start times, process groups, strays of a previous daemon.
//! - [`logs`]: one task following every deployment's log; the tail of one.
//! - [`retention`]: an ended deployment's directory pruned after a while, its summary kept.
//!
//! Invariants and choices:
//! - Whether and how a strategy runs is [`mem_protocol::deploy_spec::deployable`]'s
//!   answer, the same for a person's deploy and a scheduled job's.
//! - Each bot runs in its own process group (signals go to the group, so grandchildren
//!   die too), with an explicit environment, and writes its log to files in its
//!   deployment directory, never to a pipe of ours: a bot outlives a daemon restart.
//! - After a daemon restart (or SIGKILL) a bot that is still alive, is the same process
//!   and answers its API is re-adopted, never started twice; a dead one goes through the
//!   restart policy; a bot `state.json` does not record is stopped.
//! - Every change is a `deployment.changed` event.

pub mod attach;
pub mod bot;
pub mod logs;
pub mod native;
pub mod process;
pub mod record;
pub mod retention;

use crate::bus::EventBus;
use crate::metrics::Metrics;
use crate::registry::Registry;
use mem_protocol::deploy::*;
use mem_protocol::deploy_spec::{NotDeployable, RunPlan, deployable};
use mem_protocol::strategy::{StrategyDetail, StrategyId};
use mem_protocol::{ErrorCode, RpcError};
use record::{ActiveStrategies, Control, Deployments, RunnerRecord, Slot};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long a stop waits at most for a bot's last poll (its trades closed since the one
/// before).
const FINAL_SYNC: Duration = Duration::from_secs(5);

pub use bot::SignalForwarded;
pub use native::NativeContext;

/// How deployments behave; `[freqtrade]` in the config.
#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    pub freqtrade_bin: Option<PathBuf>,
    /// JSON merged into every rendered config (exchange keys, a test exchange's URLs).
    pub config_overrides: Option<PathBuf>,
    pub ready_timeout: Duration,
    pub stop_timeout: Duration,
    pub poll_interval: Duration,
    /// A bot whose last loop is older than this is restarted.
    pub idle_limit: Duration,
    /// A bot whose API does not answer for this long is restarted.
    pub unresponsive_limit: Duration,
    pub max_restarts: u32,
    /// Ports handed out when neither the request nor the strategy names one.
    pub port_range: (u16, u16),
    /// The daemon's socket, rendered into each bot's `memd` section for the memd mixin
    /// (none: no section, the mixin stays out of the way).
    pub mem_socket: Option<PathBuf>,
    /// How long the mixin waits for memd before trading as its strategy says.
    pub mem_timeout: Duration,
    /// The mixin refuses entries while memd does not answer.
    pub mem_fail_closed: bool,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        SupervisorSettings {
            freqtrade_bin: None,
            config_overrides: None,
            ready_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            idle_limit: Duration::from_secs(180),
            unresponsive_limit: Duration::from_secs(60),
            max_restarts: 5,
            port_range: (18080, 18999),
            mem_socket: None,
            mem_timeout: Duration::from_millis(500),
            mem_fail_closed: false,
        }
    }
}

/// The supervisor of every deployment.
pub struct Supervisor {
    data_dir: PathBuf,
    settings: SupervisorSettings,
    registry: Arc<Registry>,
    table: Deployments,
    metrics: Arc<Metrics>,
    system: Mutex<sysinfo::System>,
    native: NativeContext,
    /// Fired when the daemon stops: native runners save their state and return.
    suspend_native: CancellationToken,
    risk: Arc<crate::risk::RiskGuard>,
}

fn unavailable(message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::Unavailable, message)
}

fn conflict(message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::Conflict, message)
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::internal(e.to_string())
}

/// What the supervisor is given by the daemon.
pub struct SupervisorParts {
    pub settings: SupervisorSettings,
    pub registry: Arc<Registry>,
    pub bus: Arc<EventBus>,
    pub metrics: Arc<Metrics>,
    /// Which strategies have an active deployment: this supervisor keeps it.
    pub active: Arc<ActiveStrategies>,
    pub native: NativeContext,
    /// The risk guard: fed each bot's polled profit, asked before each deploy.
    pub risk: Arc<crate::risk::RiskGuard>,
}

impl Supervisor {
    /// Opens the supervisor on `data_dir/deployments`, re-adopting the bots of a previous
    /// daemon that are still alive and restarting the others.
    pub async fn open(data_dir: &Path, parts: SupervisorParts) -> anyhow::Result<Arc<Supervisor>> {
        let root = data_dir.join("deployments");
        crate::datadir::ensure_dir(&root, 0o750)?;
        let supervisor = Arc::new(Supervisor {
            data_dir: data_dir.to_path_buf(),
            settings: parts.settings,
            registry: parts.registry,
            table: Deployments::new(root, parts.bus, parts.active),
            metrics: parts.metrics,
            system: Mutex::new(
                sysinfo::System::new()
                    .map_err(|e| anyhow::anyhow!("cannot read process information: {e}"))?,
            ),
            native: parts.native,
            suspend_native: CancellationToken::new(),
            risk: parts.risk,
        });
        let records = supervisor.table.load();
        let known: Vec<u32> = records
            .iter()
            .filter(|r| r.public.status.is_active())
            .filter_map(|r| r.public.process_id)
            .collect();
        process::reap_orphans(
            supervisor.table.root(),
            &known,
            supervisor.settings.stop_timeout,
        )
        .await;
        for record in records {
            let active = record.public.status.is_active();
            let slot = supervisor.table.add(record);
            if active {
                supervisor.clone().resume(slot).await;
            }
        }
        supervisor.table.save();
        supervisor.table.derive_active();
        logs::spawn_tailer(Arc::downgrade(&supervisor));
        Ok(supervisor)
    }

    /// After a daemon restart: a native runner resumes; a bot is adopted or restarted; an
    /// attached bot is polled again.
    async fn resume(self: Arc<Self>, slot: Arc<Slot>) {
        let (native, attached) = {
            let r = slot.record.lock().expect("slot lock");
            (matches!(r.runner, RunnerRecord::Native(_)), r.is_attached())
        };
        if native {
            info!(deployment = %slot.public().deployment_id, "resuming a native deployment after its last saved candle");
            self.start_native(slot);
        } else if attached {
            self.resume_attached(slot).await;
        } else {
            self.adopt_or_restart(slot).await;
        }
    }

    /// Why `control` is refused for the deployment in `slot`, as an error (see
    /// [`record::DeploymentRecord::refusal`]).
    fn refused(slot: &Slot, control: Control) -> Result<(), RpcError> {
        match slot.record.lock().expect("slot lock").refusal(control) {
            Some(why) => Err(RpcError::permission_denied(why)),
            None => Ok(()),
        }
    }

    /// Runs `f` while `state.json` is not rewritten: a save under way finishes first, the
    /// next waits until `f` returns (a backup copies the deployments meanwhile). Bots are
    /// other processes and go on writing their own logs and databases.
    pub fn with_saves_paused<T>(&self, f: impl FnOnce() -> T) -> T {
        self.table.with_saves_paused(f)
    }

    /// The deployments that are active (running or on their way), without reading any
    /// process's CPU or memory.
    pub fn active_ids(&self) -> Vec<DeploymentId> {
        self.table
            .slots(true)
            .iter()
            .map(|s| s.record.lock().expect("slot lock").public.deployment_id)
            .collect()
    }

    /// Every deployment that holds or will hold a process (with `all`, also those that
    /// ended), with fresh CPU and memory.
    pub fn deployed(&self, all: bool) -> DeployedList {
        let slots = self.table.slots(!all);
        let mut deployments: Vec<DeployedStrategy> = slots.iter().map(|s| s.public()).collect();
        let mut system = self.system.lock().expect("system lock");
        let pids: Vec<sysinfo::Pid> = deployments
            .iter()
            .filter(|d| d.status.is_active())
            .filter_map(|d| d.process_id.map(sysinfo::Pid::from_u32))
            .collect();
        system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&pids),
            true,
            sysinfo::ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu(),
        );
        for d in &mut deployments {
            // An ended deployment has no process: its last pid may be another's by now.
            if !d.status.is_active() {
                d.cpu_percent = None;
                d.rss_bytes = None;
                continue;
            }
            if let Some(p) = d
                .process_id
                .and_then(|pid| system.process(sysinfo::Pid::from_u32(pid)))
            {
                d.cpu_percent = Some(p.cpu_usage());
                d.rss_bytes = Some(p.memory());
            }
        }
        deployments.sort_by_key(|d| d.started_at);
        DeployedList {
            notes: Vec::new(),
            deployments,
        }
    }

    /// `strategies.deploy`: what runs is [`deployable`]'s plan for the strategy.
    pub async fn deploy(
        self: &Arc<Self>,
        params: DeployParams,
        started_by: StartedBy,
    ) -> Result<DeployedStrategy, RpcError> {
        let method = "strategies.deploy";
        if let Some(why) = self.risk.refusal(params.id) {
            return Err(conflict(why));
        }
        let detail = self
            .registry
            .get(params.id)
            .map_err(|e| e.into_rpc(method))?;
        let plan = deployable(&detail.metadata.strategy).map_err(|why| match why {
            NotDeployable::Retired(status) => conflict(format!(
                "strategy {} ({}) is {status}; it cannot be deployed",
                params.id, detail.summary.display_name
            )),
            NotDeployable::NoRunner(why) => RpcError::invalid_params(
                method,
                format!("strategy {} cannot be deployed: {why}", params.id),
            ),
        })?;
        if let Some(existing) = self.table.active_of(params.id) {
            let d = existing.public();
            return Err(conflict(format!(
                "strategy {} is already deployed (deployment {}, {:?}, port {:?})",
                params.id, d.deployment_id, d.status, d.port
            )));
        }
        match plan {
            RunPlan::Native { kind, spec } => {
                self.deploy_native(params, started_by, &detail, kind, &spec)
                    .await
            }
            RunPlan::Freqtrade {
                class,
                config_file,
                spec,
            } => {
                let bot = bot::BotPlan {
                    class,
                    config_file,
                    spec,
                };
                self.deploy_bot(params, started_by, &detail, bot).await
            }
        }
    }

    /// Why a strategy cannot be deployed now, if it cannot (what the scheduled jobs ask
    /// before choosing it): the same rule, and words, as a deploy's.
    pub fn check_deployable(&self, id: StrategyId) -> Result<(), String> {
        let detail = self.registry.get(id).map_err(|e| e.to_string())?;
        deployable(&detail.metadata.strategy)
            .map(|_| ())
            .map_err(|why| why.to_string())
    }

    /// `strategies.stop`.
    pub async fn stop(self: &Arc<Self>, params: StopParams) -> Result<DeployedStrategy, RpcError> {
        let slot = self.table.active_of(params.id).ok_or_else(|| {
            RpcError::not_found(format!("strategy {} is not deployed", params.id))
        })?;
        Self::refused(&slot, Control::Stop)?;
        self.stop_slot(&slot, params.mode, params.deadline_secs)
            .await;
        Ok(slot.public())
    }

    async fn stop_slot(&self, slot: &Slot, mode: StopMode, deadline_secs: Option<u64>) {
        let _op = slot.op.lock().await;
        slot.cancel.lock().expect("cancel lock").cancel();
        let task = slot.task.lock().expect("task lock").take();
        let mut child = match task {
            Some(task) => task.await.ok().flatten(),
            None => None,
        };
        let was_running = slot.public().status == DeploymentStatus::Running;
        self.table
            .update(slot, |r| r.public.status = DeploymentStatus::Stopping);
        let record = slot.record.lock().expect("slot lock").clone();
        if mode == StopMode::Drain {
            if let Some(client) = record.bot_client() {
                let deadline = Duration::from_secs(deadline_secs.unwrap_or(300));
                bot::drain(&client, record.public.deployment_id, deadline).await;
            }
        }
        // The trades closed since the last poll are copied before the bot goes: nothing
        // polls it afterwards, and retention later removes its database.
        if let (true, Some(client)) = (was_running, record.bot_client()) {
            let last_poll = self.poll_stats(slot, &client, 1);
            if tokio::time::timeout(FINAL_SYNC, last_poll).await.is_err() {
                warn!(deployment = %record.public.deployment_id, "the bot did not answer its last poll in time: trades it closed since the one before are not in the registry");
            }
        }
        if let Some(pid) = record.public.process_id {
            process::terminate_group(pid, &mut child, self.settings.stop_timeout).await;
        }
        self.table.update(slot, |r| {
            r.public.status = DeploymentStatus::Stopped;
            r.public.process_id = None;
        });
        info!(deployment = %record.public.deployment_id, "stopped");
    }

    /// `strategies.restart`: stop, then deploy again with the same settings.
    pub async fn restart(
        self: &Arc<Self>,
        params: StopParams,
    ) -> Result<DeployedStrategy, RpcError> {
        let slot = self.table.active_of(params.id).ok_or_else(|| {
            RpcError::not_found(format!("strategy {} is not deployed", params.id))
        })?;
        Self::refused(&slot, Control::Restart)?;
        // Refused before the stop: a restart the guard refuses leaves the bot running.
        if let Some(why) = self.risk.refusal(params.id) {
            return Err(conflict(why));
        }
        let DeployedStrategy {
            dry_run,
            port,
            started_by,
            ..
        } = slot.public();
        self.stop_slot(&slot, params.mode, params.deadline_secs)
            .await;
        self.deploy(
            DeployParams {
                id: params.id,
                dry_run,
                port,
                parameters: None,
                native: None,
            },
            started_by,
        )
        .await
    }

    /// `deployments.acknowledge`: see [`Deployments::acknowledge`].
    pub fn acknowledge(&self, params: AcknowledgeParams) -> Result<DeployedStrategy, RpcError> {
        self.table.acknowledge(params.deployment_id)
    }

    /// `deployments.stop_all`: every active deployment memd started; the attached bots
    /// are left running, each named in the answer's notes.
    pub async fn stop_all(self: &Arc<Self>, params: StopAllParams) -> DeployedList {
        let (attached, slots): (Vec<_>, Vec<_>) = self
            .table
            .slots(true)
            .into_iter()
            .partition(|s| s.record.lock().expect("slot lock").is_attached());
        let stops = slots
            .iter()
            .map(|slot| self.stop_slot(slot, params.mode, params.deadline_secs));
        futures::future::join_all(stops).await;
        DeployedList {
            deployments: slots.iter().map(|s| s.public()).collect(),
            notes: attached
                .iter()
                .filter_map(|s| s.record.lock().expect("slot lock").refusal(Control::Stop))
                .map(|why| format!("left running: {why}"))
                .collect(),
        }
    }

    /// After `strategies.parameters.update` changed the parameter `name` of a strategy
    /// (`detail`, as it is now): what the change does beyond the record, one sentence each
    /// (the answer's `applied`).
    ///
    /// - A native deployment reads the registry's parameters again at its next candle (the
    ///   runner watches [`Registry::generation`]): nothing to do here.
    /// - A running Freqtrade bot, when `name` is one of its config keys: see
    ///   [`Supervisor::reload_bot_parameter`].
    /// - Any other parameter of a Freqtrade strategy is in its Python code: recorded only.
    pub async fn parameter_changed(&self, detail: &StrategyDetail, name: &str) -> Vec<String> {
        use mem_protocol::deploy_spec::{Runner, runner_of};
        let runner = runner_of(&detail.metadata.strategy);
        let config_key = matches!(runner, Runner::Freqtrade(_))
            && crate::freqtrade::FREQTRADE_CONFIG_PARAMETERS.contains(&name);
        if matches!(runner, Runner::Freqtrade(_)) && !config_key {
            return vec![format!(
                "recorded only: `{name}` is not a Freqtrade config key (the strategy's Python code has its own value)"
            )];
        }
        let Some(slot) = self.table.active_of(detail.summary.id) else {
            let runs = !matches!(runner, Runner::None);
            return vec![if runs {
                "recorded; no running deployment: the next deploy uses it".to_string()
            } else {
                "recorded".to_string()
            }];
        };
        let record = slot.record.lock().expect("slot lock").clone();
        let deployment = record.public.deployment_id;
        if matches!(record.runner, RunnerRecord::Native(_)) {
            return vec![format!(
                "native deployment {deployment} uses it from its next candle"
            )];
        }
        if record.is_attached() {
            return vec![format!(
                "recorded only: deployment {deployment} is a bot memd did not start; its config is its operator's"
            )];
        }
        if !config_key {
            return vec!["recorded".to_string()];
        }
        vec![self.reload_bot_parameter(&slot, detail, name).await]
    }

    /// The daemon is stopping: native runners save their state (positions stay open) and
    /// return, so the next daemon resumes them where they were.
    pub async fn suspend_native(&self) {
        self.suspend_native.cancel();
        let tasks: Vec<_> = self
            .table
            .slots(false)
            .iter()
            .filter(|s| {
                matches!(
                    s.record.lock().expect("slot lock").runner,
                    RunnerRecord::Native(_)
                )
            })
            .filter_map(|s| s.task.lock().expect("task lock").take())
            .collect();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}
