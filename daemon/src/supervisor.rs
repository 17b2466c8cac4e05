//! Deployments: Freqtrade bot processes started, watched, restarted and stopped.
//!
//! Invariants and choices:
//! - Each bot runs in its own process group (signals go to the group, so grandchildren
//!   die too), with an explicit environment, and writes its log to files in its
//!   deployment directory, never to a pipe of ours: a bot outlives a daemon restart.
//! - `deployments/state.json` (0600: it holds the bots' API credentials) records every
//!   deployment with its pid and process start time; after a daemon restart (or SIGKILL)
//!   a bot that is still alive, is the same process and answers its API is re-adopted,
//!   never started twice; a dead one goes through the restart policy.
//! - Readiness is the bot's `/api/v1/ping` answering, never its exit code (Freqtrade
//!   exits 0 on a configuration error).
//! - A bot that exits, stops answering, or stops looping (`/health` last process time too
//!   old) is restarted with exponential backoff up to a limit, then marked failed with
//!   the reason. Every change is a `deployment.changed` event.
//! - A registry parameter that is a Freqtrade config key (`stoploss`, `minimal_roi`, ...)
//!   is rendered into the bot's config; when it changes, the running bot's config is
//!   rewritten and the bot reloads it ([`Supervisor::parameter_changed`]).

use crate::bus::EventBus;
use crate::freqtrade::{self, BotClient, Credentials};
use crate::native::runner::{self, FeedMode, NativeSaved, RunEnd};
use crate::registry::{Caller, Registry};
use chrono::{DateTime, Utc};
use mem_protocol::deploy::*;
use mem_protocol::registry::{RecordTradesParams, TradeAction, TradeRecord};
use mem_protocol::strategy::{StrategyId, StrategyStatus};
use mem_protocol::{ErrorCode, Event, RpcError};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often a bot's log is read for new lines (what `memctl logs -f` shows).
const LOG_TAIL_INTERVAL: Duration = Duration::from_millis(500);

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
        }
    }
}

/// What `state.json` keeps of one deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    public: DeployedStrategy,
    credentials: Credentials,
    dir: PathBuf,
    strategy_class: String,
    /// Process start time (clock ticks after boot): a pid alone can be reused.
    pid_start_ticks: Option<u64>,
    /// The newest Freqtrade trade id already copied to the registry.
    last_synced_trade: i64,
    /// A native deployment's feed, paper broker and progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    native: Option<NativeSaved>,
}

impl Saved {
    /// The deployment's log: Freqtrade's, or the native runner's.
    fn log_path(&self) -> PathBuf {
        self.dir.join(if self.native.is_some() {
            "native.log"
        } else {
            "freqtrade.log"
        })
    }
}

/// What native deployments need from the rest of the daemon.
#[derive(Clone)]
pub struct NativeContext {
    pub memory: Arc<crate::mem::service::Memory>,
    pub ml: Arc<crate::ml::service::MlService>,
    pub market_dir: PathBuf,
    pub reference_pair: String,
    pub timeframe: String,
}

/// One deployment in memory.
struct Slot {
    saved: Mutex<Saved>,
    /// Stops the supervision task.
    cancel: Mutex<CancellationToken>,
    /// The supervision task; it hands back the child process (if it is ours) when it ends.
    task: Mutex<Option<tokio::task::JoinHandle<Option<Child>>>>,
    /// One stop or restart at a time.
    op: tokio::sync::Mutex<()>,
}

/// The supervisor of every deployment.
pub struct Supervisor {
    data_dir: PathBuf,
    root: PathBuf,
    settings: SupervisorSettings,
    registry: Arc<Registry>,
    bus: Arc<EventBus>,
    slots: Mutex<BTreeMap<DeploymentId, Arc<Slot>>>,
    save_lock: Mutex<()>,
    system: Mutex<sysinfo::System>,
    native: NativeContext,
    /// Fired when the daemon stops: native runners save their state and return.
    suspend_native: CancellationToken,
}

/// Ended deployments kept (in memory, `state.json` and `strategies.deployed {all}`); their
/// directories (logs, rendered config) stay on disk.
const KEEP_ENDED: usize = 200;

/// Drops the oldest ended deployments beyond [`KEEP_ENDED`].
fn forget_oldest_ended(slots: &mut BTreeMap<DeploymentId, Arc<Slot>>) {
    let ended: Vec<(DateTime<Utc>, DeploymentId)> = slots
        .iter()
        .filter_map(|(id, slot)| {
            let saved = slot.saved.lock().expect("slot lock");
            (!saved.public.status.is_active()).then_some((saved.public.started_at, *id))
        })
        .collect();
    for id in oldest_beyond(ended, KEEP_ENDED) {
        slots.remove(&id);
    }
}

/// The pairs a strategy's `deployment` section lists (`pairs`), none when absent.
pub(crate) fn deployment_pairs(section: &Value) -> Vec<String> {
    section
        .get("pairs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The slots' saved states as one JSON array, each serialized under its own lock: a
/// save (one per status change) copies none of them, where a copy of up to
/// [`KEEP_ENDED`] + active deployments was thousands of small allocations each time.
struct EachSaved<'a>(&'a [Arc<Slot>]);

impl Serialize for EachSaved<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for slot in self.0 {
            seq.serialize_element(&*slot.saved.lock().expect("slot lock"))?;
        }
        seq.end()
    }
}

/// The ids of all but the `keep` newest (by start time).
fn oldest_beyond(mut ended: Vec<(DateTime<Utc>, DeploymentId)>, keep: usize) -> Vec<DeploymentId> {
    if ended.len() <= keep {
        return Vec::new();
    }
    ended.sort();
    let drop = ended.len() - keep;
    ended.into_iter().take(drop).map(|(_, id)| id).collect()
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

/// A process's start time in clock ticks since boot, from `/proc/{pid}/stat`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that was started (and not a zombie).
fn same_process_alive(pid: u32, ticks: Option<u64>) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rfind(')').and_then(|i| stat[i + 2..].chars().next());
    if state == Some('Z') {
        return false;
    }
    ticks.is_none_or(|t| start_ticks(pid) == Some(t))
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The last `n` lines of a file.
fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

impl Supervisor {
    /// Opens the supervisor on `data_dir/deployments`, re-adopting the bots of a previous
    /// daemon that are still alive and restarting the others.
    pub async fn open(
        data_dir: &Path,
        settings: SupervisorSettings,
        registry: Arc<Registry>,
        bus: Arc<EventBus>,
        native: NativeContext,
    ) -> anyhow::Result<Arc<Supervisor>> {
        let root = data_dir.join("deployments");
        crate::datadir::ensure_dir(&root, 0o750)?;
        let supervisor = Arc::new(Supervisor {
            data_dir: data_dir.to_path_buf(),
            root,
            settings,
            registry,
            bus,
            slots: Mutex::new(BTreeMap::new()),
            save_lock: Mutex::new(()),
            system: Mutex::new(
                sysinfo::System::new()
                    .map_err(|e| anyhow::anyhow!("cannot read process information: {e}"))?,
            ),
            native,
            suspend_native: CancellationToken::new(),
        });
        let saved_state = supervisor.load_state();
        supervisor.reap_orphans(&saved_state).await;
        for saved in saved_state {
            let active = saved.public.status.is_active();
            let slot = supervisor.add_slot(saved);
            if active {
                supervisor.clone().adopt_or_restart(slot).await;
            }
        }
        supervisor.save_state();
        supervisor.clone().spawn_log_tailer();
        Ok(supervisor)
    }

    /// Stops bots of this data directory that `state.json` does not record (a daemon
    /// killed between spawning a bot and saving its pid): left alone, one would hold its
    /// port and trade unsupervised beside the copy the restart policy starts.
    async fn reap_orphans(&self, saved: &[Saved]) {
        let known: Vec<u32> = saved
            .iter()
            .filter(|s| s.public.status.is_active())
            .filter_map(|s| s.public.process_id)
            .collect();
        let needle = format!("{}/", self.root.display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == std::process::id() || known.contains(&pid) {
                continue;
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            // Bots are started with `--config <root>/<deployment>/config.json`.
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_ours = args.windows(2).any(|w| {
                w[0] == b"--config"
                    && w[1].starts_with(needle.as_bytes())
                    && w[1].ends_with(b"/config.json")
            });
            if !is_ours || !same_process_alive(pid, None) {
                continue;
            }
            // Only a group leader is a bot we started (each bot leads its own group).
            let leader = nix::unistd::getpgid(Some(Pid::from_raw(pid as i32)))
                .is_ok_and(|g| g.as_raw() == pid as i32);
            if !leader {
                continue;
            }
            warn!(
                pid,
                "a bot of this data directory is not in deployments/state.json (the daemon died while starting it); stopping it"
            );
            terminate_group(pid, &mut None, self.settings.stop_timeout).await;
        }
    }

    /// One task follows every bot's log (one wakeup for all of them, not one each):
    /// counts warnings and errors and publishes new lines for `memctl logs -f`.
    fn spawn_log_tailer(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        drop(self);
        tokio::spawn(async move {
            let mut offsets: std::collections::HashMap<DeploymentId, u64> =
                std::collections::HashMap::new();
            let mut tick = tokio::time::interval(LOG_TAIL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                let active: Vec<(DeploymentId, Arc<Slot>)> = this
                    .slots
                    .lock()
                    .expect("slots lock")
                    .iter()
                    .filter(|(_, s)| s.saved.lock().expect("slot lock").public.status.is_active())
                    .map(|(id, s)| (*id, s.clone()))
                    .collect();
                offsets.retain(|id, _| active.iter().any(|(a, _)| a == id));
                for (id, slot) in active {
                    this.count_log_levels(&slot, offsets.entry(id).or_insert(0));
                }
            }
        });
    }

    /// Registers a deployment (not yet saved or started).
    fn add_slot(&self, saved: Saved) -> Arc<Slot> {
        let id = saved.public.deployment_id;
        let slot = Arc::new(Slot {
            saved: Mutex::new(saved),
            cancel: Mutex::new(CancellationToken::new()),
            task: Mutex::new(None),
            op: tokio::sync::Mutex::new(()),
        });
        self.slots
            .lock()
            .expect("slots lock")
            .insert(id, slot.clone());
        slot
    }

    fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// Runs `f` while `state.json` is not rewritten: a save under way finishes first, the
    /// next waits until `f` returns (a backup copies the deployments meanwhile). Bots are
    /// other processes and go on writing their own logs and databases.
    pub fn with_saves_paused<T>(&self, f: impl FnOnce() -> T) -> T {
        let _paused = self.save_lock.lock().expect("save lock");
        f()
    }

    fn load_state(&self) -> Vec<Saved> {
        let path = self.state_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(_) => return Vec::new(),
        };
        match serde_json::from_slice::<Vec<Saved>>(&bytes) {
            Ok(saved) => saved,
            Err(e) => {
                let aside = self.root.join(format!(
                    "state.json.unreadable-{}",
                    Utc::now().format("%Y%m%dT%H%M%S")
                ));
                let _ = std::fs::rename(&path, &aside);
                warn!(error = %e, moved_to = %aside.display(), "deployments/state.json is unreadable; moved aside, starting with no deployments");
                Vec::new()
            }
        }
    }

    /// Writes `state.json` atomically (0600: it holds credentials), keeping only the
    /// newest [`KEEP_ENDED`] ended deployments (a daemon up for months deploys thousands).
    fn save_state(&self) {
        let _guard = self.save_lock.lock().expect("save lock");
        let mut slots = self.slots.lock().expect("slots lock");
        forget_oldest_ended(&mut slots);
        let all: Vec<Arc<Slot>> = slots.values().cloned().collect();
        drop(slots);
        let bytes = serde_json::to_vec_pretty(&EachSaved(&all)).expect("state serializes");
        if let Err(e) = crate::datadir::write_atomic(&self.state_path(), &bytes, 0o600) {
            warn!(error = %e, "cannot save deployments/state.json");
        }
    }

    fn announce(&self, slot: &Slot) {
        let deployment = slot.saved.lock().expect("slot lock").public.clone();
        self.registry
            .set_deployed(deployment.strategy_id, deployment.status.is_active());
        self.bus
            .publish(Event::DeploymentChanged(Box::new(DeploymentChanged {
                deployment,
            })));
    }

    /// Changes what is persisted (status, pid, ...): saved, then announced.
    fn update(&self, slot: &Slot, change: impl FnOnce(&mut Saved)) {
        change(&mut slot.saved.lock().expect("slot lock"));
        self.save_state();
        self.announce(slot);
    }

    /// Changes what is only observed (stats): announced, not saved.
    fn refresh(&self, slot: &Slot, change: impl FnOnce(&mut Saved)) {
        change(&mut slot.saved.lock().expect("slot lock"));
        self.announce(slot);
    }

    fn active_slot_of(&self, strategy: StrategyId) -> Option<Arc<Slot>> {
        self.slots
            .lock()
            .expect("slots lock")
            .values()
            .find(|s| {
                let saved = s.saved.lock().expect("slot lock");
                saved.public.strategy_id == strategy && saved.public.status.is_active()
            })
            .cloned()
    }

    /// The strategy's active Freqtrade deployment, as it stands, and a client of its API
    /// (what a TradingView alert is forwarded through); `None` when it has none.
    pub fn freqtrade_bot(&self, strategy: StrategyId) -> Option<(DeployedStrategy, BotClient)> {
        let slot = self.active_slot_of(strategy)?;
        let saved = slot.saved.lock().expect("slot lock");
        if saved.native.is_some() || saved.public.deployment_type != DeploymentType::Freqtrade {
            return None;
        }
        let port = saved.public.port?;
        Some((
            saved.public.clone(),
            BotClient::new(port, &saved.credentials),
        ))
    }

    /// The deployments that are active (running or on their way), without reading any
    /// process's CPU or memory.
    pub fn active_ids(&self) -> Vec<DeploymentId> {
        let slots = self.slots.lock().expect("slots lock");
        slots
            .iter()
            .filter(|(_, s)| s.saved.lock().expect("slot lock").public.status.is_active())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every deployment that holds or will hold a process (with `all`, also those that
    /// ended), with fresh CPU and memory.
    pub fn deployed(&self, all: bool) -> DeployedList {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .expect("slots lock")
            .values()
            .cloned()
            .collect();
        let mut system = self.system.lock().expect("system lock");
        let pids: Vec<sysinfo::Pid> = slots
            .iter()
            .filter_map(|s| {
                s.saved
                    .lock()
                    .expect("slot lock")
                    .public
                    .process_id
                    .map(sysinfo::Pid::from_u32)
            })
            .collect();
        system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&pids),
            true,
            sysinfo::ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu(),
        );
        let mut deployments = Vec::new();
        for slot in slots {
            let mut d = {
                let saved = slot.saved.lock().expect("slot lock");
                if !all && !saved.public.status.is_active() {
                    continue;
                }
                saved.public.clone()
            };
            if let Some(p) = d
                .process_id
                .and_then(|pid| system.process(sysinfo::Pid::from_u32(pid)))
            {
                d.cpu_percent = Some(p.cpu_usage());
                d.rss_bytes = Some(p.memory());
            }
            deployments.push(d);
        }
        deployments.sort_by_key(|d| d.started_at);
        DeployedList { deployments }
    }

    /// `strategies.deploy`.
    #[expect(
        clippy::too_many_lines,
        reason = "the supervisor split (issue 21) divides it"
    )]
    pub async fn deploy(
        self: &Arc<Self>,
        params: DeployParams,
        started_by: StartedBy,
    ) -> Result<DeployedStrategy, RpcError> {
        let detail = self
            .registry
            .get(params.id)
            .map_err(|e| e.into_rpc("strategies.deploy"))?;
        let strategy = &detail.metadata.strategy;
        if matches!(
            strategy.status,
            StrategyStatus::Deprecated | StrategyStatus::Archived
        ) {
            return Err(conflict(format!(
                "strategy {} ({}) is {}; it cannot be deployed",
                params.id, detail.summary.display_name, strategy.status
            )));
        }
        if let Some(existing) = self.active_slot_of(params.id) {
            let d = existing.saved.lock().expect("slot lock").public.clone();
            return Err(conflict(format!(
                "strategy {} is already deployed (deployment {}, {:?}, port {:?})",
                params.id, d.deployment_id, d.status, d.port
            )));
        }
        let section = strategy
            .extra
            .get("deployment")
            .cloned()
            .unwrap_or(Value::Null);
        let kind = section.get("type").and_then(Value::as_str).unwrap_or(
            if strategy.implementation.language == "freqtrade" {
                "freqtrade"
            } else {
                ""
            },
        );
        if kind == "native" || strategy.implementation.language == "rust" {
            return self
                .deploy_native(params, started_by, &detail, &section)
                .await;
        }
        if kind != "freqtrade" {
            return Err(RpcError::invalid_params(
                "strategies.deploy",
                format!(
                    "strategy {} has no deployment section (strategy.deployment with type \"freqtrade\"): it cannot be deployed",
                    params.id
                ),
            ));
        }
        let class = section
            .get("strategy_name")
            .and_then(Value::as_str)
            .or(strategy.implementation.class_name.as_deref())
            .ok_or_else(|| {
                RpcError::invalid_params(
                    "strategies.deploy",
                    "the deployment section names no strategy class (strategy_name)",
                )
            })?
            .to_string();
        if class.is_empty()
            || !class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || class.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(RpcError::invalid_params(
                "strategies.deploy",
                format!(
                    "the deployment section's strategy_name {class:?} is not a Python class name"
                ),
            ));
        }
        let base_path = section
            .get("config_file")
            .and_then(Value::as_str)
            .map(|p| crate::datadir::confined(&self.data_dir, p))
            .transpose()
            .map_err(|e| {
                RpcError::invalid_params(
                    "strategies.deploy",
                    format!("the deployment section's config_file: {e}"),
                )
            })?;
        let Some(base_path) = base_path.filter(|p| p.is_file()) else {
            return Err(unavailable(format!(
                "the base config of strategy {} (deployment.config_file) is missing in {}",
                params.id,
                self.data_dir.display()
            )));
        };
        let base: Value = serde_json::from_slice(&std::fs::read(&base_path).map_err(internal)?)
            .map_err(|e| {
                RpcError::invalid_params(
                    "strategies.deploy",
                    format!("{} is not valid JSON: {e}", base_path.display()),
                )
            })?;
        let overrides: Option<Value> = match &self.settings.config_overrides {
            Some(path) => Some(
                serde_json::from_slice(&std::fs::read(path).map_err(|e| {
                    unavailable(format!(
                        "cannot read [freqtrade] config_overrides {}: {e}",
                        path.display()
                    ))
                })?)
                .map_err(|e| {
                    unavailable(format!(
                        "[freqtrade] config_overrides {} is not valid JSON: {e}",
                        path.display()
                    ))
                })?,
            ),
            None => None,
        };
        if !params.dry_run {
            let allowed = section
                .get("allow_live")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !allowed {
                return Err(RpcError::permission_denied(format!(
                    "live trading refused: strategy {} does not allow it (deployment.allow_live is not true); deploy in dry-run",
                    params.id
                )));
            }
            let mut merged = base.clone();
            if let Some(o) = &overrides {
                freqtrade::deep_merge(&mut merged, o);
            }
            if !freqtrade::has_exchange_keys(&merged) {
                return Err(RpcError::permission_denied(
                    "live trading refused: no exchange key and secret are configured (set them in the [freqtrade] config_overrides file)",
                ));
            }
        }
        let bin = freqtrade::find_binary(self.settings.freqtrade_bin.as_deref(), &self.data_dir)
            .map_err(unavailable)?;
        let port = self.choose_port(
            params.port,
            section
                .get("port")
                .and_then(Value::as_u64)
                .map(|p| p as u16),
        )?;

        let deployment_id = DeploymentId::new_random();
        let dir = self.root.join(deployment_id.to_string());
        crate::datadir::ensure_dir(&dir.join("user_data"), 0o750).map_err(internal)?;
        let credentials = Credentials::generate();
        let pairs = deployment_pairs(&section);
        let owned = freqtrade::Owned {
            dry_run: params.dry_run,
            port,
            credentials: &credentials,
            bot_name: format!("memd-{}", detail.summary.name),
            db_path: dir.join("tradesv3.sqlite"),
            pairs,
            timeframe: section
                .get("timeframe")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let tuning = freqtrade::config_parameters(&strategy.parameters);
        let config = freqtrade::render_config(&base, overrides.as_ref(), &tuning, &owned)
            .map_err(internal)?;
        let config_path = dir.join("config.json");
        crate::datadir::write_atomic(
            &config_path,
            &serde_json::to_vec_pretty(&config).expect("configs serialize"),
            0o600,
        )
        .map_err(internal)?;

        let saved = Saved {
            public: DeployedStrategy {
                deployment_id,
                strategy_id: params.id,
                strategy_name: detail.summary.display_name.clone(),
                deployment_type: DeploymentType::Freqtrade,
                process_id: None,
                port: Some(port),
                started_at: Utc::now(),
                status: DeploymentStatus::Starting,
                dry_run: params.dry_run,
                config_file: Some(config_path.display().to_string()),
                started_by,
                restarts: 0,
                last_error: None,
                stats: BotStats::default(),
                warnings: 0,
                errors: 0,
                cpu_percent: None,
                rss_bytes: None,
            },
            credentials,
            dir,
            strategy_class: class,
            pid_start_ticks: None,
            last_synced_trade: 0,
            native: None,
        };
        let slot = self.add_slot(saved);
        info!(%deployment_id, strategy = %params.id, port, dry_run = params.dry_run, "deploying");
        match self.start_process(&slot, &bin).await {
            Ok(child) => {
                self.update(&slot, |s| s.public.status = DeploymentStatus::Running);
                self.supervise(slot.clone(), Some(child));
                Ok(slot.saved.lock().expect("slot lock").public.clone())
            }
            Err(reason) => {
                self.update(&slot, |s| {
                    s.public.status = DeploymentStatus::Failed;
                    s.public.last_error = Some(reason.clone());
                });
                Err(unavailable(format!("the bot did not start: {reason}")))
            }
        }
    }

    fn choose_port(&self, requested: Option<u16>, preferred: Option<u16>) -> Result<u16, RpcError> {
        let taken: Vec<u16> = self
            .slots
            .lock()
            .expect("slots lock")
            .values()
            .filter_map(|s| {
                let saved = s.saved.lock().expect("slot lock");
                saved
                    .public
                    .status
                    .is_active()
                    .then_some(saved.public.port)
                    .flatten()
            })
            .collect();
        if let Some(port) = requested.or(preferred) {
            if taken.contains(&port) || !port_is_free(port) {
                return Err(conflict(format!(
                    "port {port} is busy on 127.0.0.1; free it or deploy with another port"
                )));
            }
            return Ok(port);
        }
        let (lo, hi) = self.settings.port_range;
        (lo..=hi)
            .find(|p| !taken.contains(p) && port_is_free(*p))
            .ok_or_else(|| conflict(format!("no free port between {lo} and {hi}")))
    }

    /// Spawns the bot and waits for its API; on failure the process is gone and the error
    /// carries the last lines of its log.
    async fn start_process(&self, slot: &Slot, bin: &Path) -> Result<Child, String> {
        let saved = slot.saved.lock().expect("slot lock").clone();
        let console = saved.dir.join("console.log");
        if console.exists() {
            let _ = std::fs::rename(&console, saved.dir.join("console.log.1"));
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&console)
            .map_err(|e| format!("cannot open {}: {e}", console.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(bin);
        command
            .arg("trade")
            .arg("--config")
            .arg(saved.dir.join("config.json"))
            .arg("--strategy")
            .arg(&saved.strategy_class)
            .arg("--strategy-path")
            .arg(self.data_dir.join("freqtrade/strategies"))
            .arg("--userdir")
            .arg(saved.dir.join("user_data"))
            .arg("--logfile")
            .arg(saved.dir.join("freqtrade.log"))
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", &saved.dir)
            .env("LANG", "C.UTF-8")
            .env("TZ", "UTC")
            // No __pycache__ in the shared strategies directory.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(false);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let pid = child.id().ok_or("the bot exited at once")?;
        let ticks = start_ticks(pid);
        self.update(slot, |s| {
            s.public.process_id = Some(pid);
            s.pid_start_ticks = ticks;
        });
        let client = BotClient::new(
            saved
                .public
                .port
                .expect("freqtrade deployments have a port"),
            &saved.credentials,
        );
        let deadline = Instant::now() + self.settings.ready_timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut lines = tail_lines(&console, 10);
                lines.extend(tail_lines(&saved.dir.join("freqtrade.log"), 10));
                return Err(format!(
                    "it exited ({status}) before its API answered; last log lines: {}",
                    lines.join(" | ")
                ));
            }
            if client.ping().await {
                info!(deployment = %saved.public.deployment_id, pid, "bot is ready");
                return Ok(child);
            }
            if Instant::now() >= deadline {
                terminate_group(pid, &mut Some(child), self.settings.stop_timeout).await;
                let lines = tail_lines(&saved.dir.join("freqtrade.log"), 10);
                return Err(format!(
                    "its API did not answer within {} s; stopped it; last log lines: {}",
                    self.settings.ready_timeout.as_secs(),
                    lines.join(" | ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// After a daemon restart: adopt a bot that is alive, ours and answering; else restart it.
    async fn adopt_or_restart(self: Arc<Self>, slot: Arc<Slot>) {
        let saved = slot.saved.lock().expect("slot lock").clone();
        if saved.native.is_some() {
            info!(deployment = %saved.public.deployment_id, "resuming a native deployment after its last saved candle");
            self.start_native(slot);
            return;
        }
        let alive = saved
            .public
            .process_id
            .is_some_and(|pid| same_process_alive(pid, saved.pid_start_ticks));
        let answering = match saved.public.port {
            Some(port) if alive => BotClient::new(port, &saved.credentials).ping().await,
            _ => false,
        };
        if alive && answering {
            info!(deployment = %saved.public.deployment_id, pid = ?saved.public.process_id, "re-adopted a running bot");
            self.update(&slot, |s| s.public.status = DeploymentStatus::Running);
            self.supervise(slot, None);
            return;
        }
        if alive {
            // Ours but not answering: stop it rather than start a twin next to it.
            let pid = saved.public.process_id.expect("alive means a pid");
            terminate_group(pid, &mut None, self.settings.stop_timeout).await;
        }
        warn!(deployment = %saved.public.deployment_id, "a bot of the previous daemon is gone; restarting it");
        self.update(&slot, |s| {
            s.public.status = DeploymentStatus::Crashed;
            s.public.last_error = Some("not running after the daemon restarted".into());
        });
        self.supervise(slot, None);
    }

    /// Starts the supervision task of a deployment.
    fn supervise(self: &Arc<Self>, slot: Arc<Slot>, child: Option<Child>) {
        let cancel = CancellationToken::new();
        *slot.cancel.lock().expect("cancel lock") = cancel.clone();
        let this = self.clone();
        let task_slot = slot.clone();
        let handle =
            tokio::spawn(async move { this.supervision_loop(task_slot, child, cancel).await });
        *slot.task.lock().expect("task lock") = Some(handle);
    }

    /// Watches one bot until cancelled; returns its child process (if it is ours).
    async fn supervision_loop(
        self: Arc<Self>,
        slot: Arc<Slot>,
        mut child: Option<Child>,
        cancel: CancellationToken,
    ) -> Option<Child> {
        let mut unanswered_since: Option<Instant> = None;
        // The bot's last loop stamp and when (on our monotonic clock) we first saw it:
        // a bot is idle when that stamp stops moving, which a wall-clock jump cannot fake.
        let mut last_loop: Option<(i64, Instant)> = None;
        let mut polls = 0u64;
        loop {
            // A crashed deployment (from adoption or below) is restarted first.
            let status = slot.saved.lock().expect("slot lock").public.status;
            if status == DeploymentStatus::Crashed {
                match self.restart_after_crash(&slot, &cancel).await {
                    Some(new_child) => {
                        child = Some(new_child);
                        unanswered_since = None;
                        last_loop = None;
                    }
                    None => return child, // failed for good, or cancelled
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return child,
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
            let saved = slot.saved.lock().expect("slot lock").clone();
            let Some(pid) = saved.public.process_id else {
                continue;
            };
            let exited = match child.as_mut() {
                Some(c) => match c.try_wait() {
                    Ok(Some(status)) => Some(format!("exited ({status})")),
                    _ => None,
                },
                None => (!same_process_alive(pid, saved.pid_start_ticks))
                    .then(|| "the process is gone".to_string()),
            };
            if let Some(reason) = exited {
                self.crashed(&slot, &mut child, reason).await;
                continue;
            }
            let client = BotClient::new(saved.public.port.expect("a port"), &saved.credentials);
            // One poll, timed for `mem.metrics`: health, then the stats of `poll_stats`.
            let poll_started = Instant::now();
            let metrics = self.native.memory.metrics();
            let p = &saved.public;
            match client.health().await {
                Ok(health) => {
                    unanswered_since = None;
                    if let Some(stamp) = health.last_process_ts {
                        let seen_since = match last_loop {
                            Some((seen, since)) if seen == stamp => since,
                            _ => last_loop.insert((stamp, Instant::now())).1,
                        };
                        if seen_since.elapsed() > self.settings.idle_limit {
                            self.crashed(
                                &slot,
                                &mut child,
                                format!(
                                    "idle: its last loop has not moved for {} s",
                                    seen_since.elapsed().as_secs()
                                ),
                            )
                            .await;
                            continue;
                        }
                    }
                }
                Err(_) => {
                    metrics.bot_poll_failed(p.deployment_id, p.strategy_id, &p.strategy_name);
                    let since = *unanswered_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.settings.unresponsive_limit {
                        self.crashed(
                            &slot,
                            &mut child,
                            format!(
                                "its API has not answered for {} s",
                                since.elapsed().as_secs()
                            ),
                        )
                        .await;
                    }
                    continue;
                }
            }
            self.poll_stats(&slot, &client, polls).await;
            metrics.bot_poll(
                p.deployment_id,
                p.strategy_id,
                &p.strategy_name,
                poll_started.elapsed(),
            );
            polls += 1;
        }
    }

    /// Marks a deployment crashed and makes sure its process is gone.
    async fn crashed(&self, slot: &Slot, child: &mut Option<Child>, reason: String) {
        warn!(deployment = %slot.saved.lock().expect("slot lock").public.deployment_id, %reason, "bot crashed");
        let pid = slot.saved.lock().expect("slot lock").public.process_id;
        if let Some(pid) = pid {
            terminate_group(pid, child, self.settings.stop_timeout).await;
        }
        *child = None;
        self.update(slot, |s| {
            s.public.status = DeploymentStatus::Crashed;
            s.public.last_error = Some(reason);
            s.public.process_id = None;
        });
    }

    /// Waits the backoff, then starts the bot again; `None` when it gave up or was cancelled.
    async fn restart_after_crash(&self, slot: &Slot, cancel: &CancellationToken) -> Option<Child> {
        let restarts = slot.saved.lock().expect("slot lock").public.restarts;
        if restarts >= self.settings.max_restarts {
            let last = slot
                .saved
                .lock()
                .expect("slot lock")
                .public
                .last_error
                .clone()
                .unwrap_or_default();
            self.update(slot, |s| {
                s.public.status = DeploymentStatus::Failed;
                s.public.last_error =
                    Some(format!("gave up after {restarts} restarts; last: {last}"));
            });
            return None;
        }
        let backoff = Duration::from_secs(2u64.pow(restarts.min(6))).min(Duration::from_secs(60));
        self.update(slot, |s| {
            s.public.status = DeploymentStatus::Restarting;
            s.public.restarts += 1;
        });
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        let bin =
            match freqtrade::find_binary(self.settings.freqtrade_bin.as_deref(), &self.data_dir) {
                Ok(bin) => bin,
                Err(e) => {
                    self.update(slot, |s| {
                        s.public.status = DeploymentStatus::Crashed;
                        s.public.last_error = Some(e);
                    });
                    return None;
                }
            };
        match self.start_process(slot, &bin).await {
            Ok(child) => {
                self.update(slot, |s| s.public.status = DeploymentStatus::Running);
                Some(child)
            }
            Err(reason) => {
                self.update(slot, |s| {
                    s.public.status = DeploymentStatus::Crashed;
                    s.public.last_error = Some(reason);
                });
                Box::pin(self.restart_after_crash(slot, cancel)).await
            }
        }
    }

    /// Counts warning and error lines added to the bot's log since the last look, and
    /// publishes them for followers. Reads only the new bytes.
    fn count_log_levels(&self, slot: &Slot, offset: &mut u64) {
        use std::io::{Read, Seek, SeekFrom};
        let path = slot.saved.lock().expect("slot lock").log_path();
        let Ok(mut file) = std::fs::File::open(&path) else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < *offset {
            *offset = 0; // rotated
        }
        // At most 1 MiB a look: a bot that floods its log is not read whole.
        let start = (*offset).max(len.saturating_sub(1 << 20));
        let mut new = Vec::new();
        if file.seek(SeekFrom::Start(start)).is_err()
            || file.take(len - start).read_to_end(&mut new).is_err()
        {
            return;
        }
        // Only whole lines; a partial last line is read next time.
        let Some(end) = new.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        *offset = start + end as u64 + 1;
        let text = String::from_utf8_lossy(&new[..end]);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let warnings = lines.iter().filter(|l| l.contains(" - WARNING - ")).count() as u64;
        let errors = lines
            .iter()
            .filter(|l| l.contains(" - ERROR - ") || l.contains(" - CRITICAL - "))
            .count() as u64;
        let (deployment_id, strategy_id) = {
            let mut saved = slot.saved.lock().expect("slot lock");
            saved.public.warnings += warnings;
            saved.public.errors += errors;
            (saved.public.deployment_id, saved.public.strategy_id)
        };
        self.bus.publish(Event::BotLog(BotLog {
            deployment_id,
            strategy_id,
            lines,
        }));
    }

    /// Reads status, profit and balance from the bot, and its new closed trades when its
    /// closed-trade count has grown; the bot's state about once a minute.
    async fn poll_stats(&self, slot: &Slot, client: &BotClient, poll: u64) {
        let open = client.open_trade_count().await.ok();
        let profit = client.profit().await.ok();
        // What changes slowly is read about once a minute.
        let minute = (60.0 / self.settings.poll_interval.as_secs_f64())
            .ceil()
            .max(1.0) as u64;
        let balance = if poll % minute == 0 {
            client.balance().await.ok()
        } else {
            None
        };
        let state = if poll % minute == 0 {
            client.state().await.ok()
        } else {
            None
        };
        let (deployment_id, strategy_id, last_synced, known_closed) = {
            let s = slot.saved.lock().expect("slot lock");
            (
                s.public.deployment_id,
                s.public.strategy_id,
                s.last_synced_trade,
                s.public.stats.closed_trades,
            )
        };
        let closed_now = profit.as_ref().map(|p| p.closed_trade_count);
        if closed_now.is_some_and(|n| n > known_closed || (n > 0 && last_synced == 0)) {
            let wanted =
                (closed_now.unwrap_or(0).saturating_sub(known_closed) as usize + 10).min(500);
            if let Err(e) = self.copy_new_trades(slot, client, wanted).await {
                warn!(%deployment_id, %strategy_id, error = %e, "cannot copy the bot's closed trades");
            }
        }
        self.refresh(slot, |s| {
            let stats = &mut s.public.stats;
            if let Some(open) = open {
                stats.open_trades = open;
            }
            if let Some(p) = profit {
                stats.profit_closed = p.profit_closed_coin;
                stats.profit_all = p.profit_all_coin;
                stats.closed_trades = p.closed_trade_count;
            }
            if let Some(b) = balance {
                stats.balance = b.total;
                stats.stake_currency = b.stake;
            }
            if let Some(state) = state {
                stats.bot_state = Some(state);
            }
            stats.polled_at = Some(Utc::now());
        });
    }

    /// Copies the bot's closed trades newer than the last one copied (looking at its
    /// newest `wanted`) into the strategy's performance log; answers how many.
    async fn copy_new_trades(
        &self,
        slot: &Slot,
        client: &BotClient,
        wanted: usize,
    ) -> Result<usize, String> {
        let (deployment_id, strategy_id, last_synced) = {
            let s = slot.saved.lock().expect("slot lock");
            (
                s.public.deployment_id,
                s.public.strategy_id,
                s.last_synced_trade,
            )
        };
        let page = client
            .closed_trades(wanted, 0)
            .await
            .map_err(|e| format!("the bot's trades could not be read: {e}"))?;
        let new_trades: Vec<_> = page
            .trades
            .into_iter()
            .filter(|t| t.trade_id > last_synced)
            .collect();
        if new_trades.is_empty() {
            return Ok(0);
        }
        let n = new_trades.len();
        self.sync_trades(slot, deployment_id, strategy_id, last_synced, new_trades)
            .await
            .map(|()| n)
    }

    /// Copies a bot's newly closed trades into the strategy's performance log.
    async fn sync_trades(
        &self,
        slot: &Slot,
        deployment_id: DeploymentId,
        strategy_id: StrategyId,
        last_synced: i64,
        trades: Vec<freqtrade::ClosedTrade>,
    ) -> Result<(), String> {
        let newest = trades
            .iter()
            .map(|t| t.trade_id)
            .max()
            .unwrap_or(last_synced);
        let records: Vec<TradeRecord> = trades
            .iter()
            .filter_map(|t| to_trade_record(deployment_id, t))
            .collect();
        let registry = self.registry.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            registry.record_trades(
                RecordTradesParams {
                    id: strategy_id,
                    trades: records,
                },
                &Caller {
                    uid: None,
                    client: Some("memd supervisor".into()),
                },
            )
        })
        .await;
        match recorded {
            Ok(Ok(_)) => {
                slot.saved.lock().expect("slot lock").last_synced_trade = newest;
                Ok(())
            }
            Ok(Err(e)) => Err(format!("the registry refused the trades: {e}")),
            Err(e) => Err(format!("the registry refused the trades: {e}")),
        }
    }

    /// The scheduled performance sync: every running Freqtrade bot's closed trades not
    /// yet in the registry are copied (the poll does it when a bot's closed count grows;
    /// this catches what a missed poll or a restart left behind). Answers the bots
    /// synced, the trades copied, and a problem per bot that could not be read.
    pub async fn sync_performance(&self) -> (usize, usize, Vec<String>) {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .expect("slots lock")
            .values()
            .filter(|s| {
                let s = s.saved.lock().expect("slot lock");
                s.native.is_none() && s.public.status == DeploymentStatus::Running
            })
            .cloned()
            .collect();
        let (mut bots, mut trades, mut problems) = (0, 0, Vec::new());
        for slot in slots {
            let saved = slot.saved.lock().expect("slot lock").clone();
            let Some(port) = saved.public.port else {
                continue;
            };
            let client = BotClient::new(port, &saved.credentials);
            match self.copy_new_trades(&slot, &client, 500).await {
                Ok(n) => {
                    bots += 1;
                    trades += n;
                }
                Err(e) => problems.push(format!("{}: {e}", saved.public.strategy_name)),
            }
        }
        (bots, trades, problems)
    }

    /// After `strategies.parameters.update` changed the parameter `name` of a strategy
    /// (`detail`, as it is now): what the change does beyond the record, one sentence each
    /// (the answer's `applied`).
    ///
    /// - A native deployment reads the registry's parameters again at its next candle (the
    ///   runner watches [`Registry::generation`]): nothing to do here.
    /// - A running Freqtrade bot, when `name` is one of its config keys
    ///   ([`freqtrade::FREQTRADE_CONFIG_PARAMETERS`]): the key is set in its rendered
    ///   `config.json` (rewritten atomically, 0600), then the bot is told to
    ///   `reload_config`. A bot being stopped or restarted is left alone; a bot that does
    ///   not take the reload gets the new value when it next starts (restart, crash).
    /// - Any other parameter of a Freqtrade strategy is in its Python code: recorded only.
    pub async fn parameter_changed(
        &self,
        detail: &mem_protocol::strategy::StrategyDetail,
        name: &str,
    ) -> Vec<String> {
        let strategy = &detail.metadata.strategy;
        let section = strategy.extra.get("deployment");
        let kind = section.and_then(|s| s.get("type")).and_then(Value::as_str);
        let native = kind == Some("native") || strategy.implementation.language == "rust";
        let freqtrade = !native
            && (kind == Some("freqtrade") || strategy.implementation.language == "freqtrade");
        let config_key = freqtrade && freqtrade::FREQTRADE_CONFIG_PARAMETERS.contains(&name);
        if freqtrade && !config_key {
            return vec![format!(
                "recorded only: `{name}` is not a Freqtrade config key (the strategy's Python code has its own value)"
            )];
        }
        let Some(slot) = self.active_slot_of(detail.summary.id) else {
            return vec![if native || config_key {
                "recorded; no running deployment: the next deploy uses it".to_string()
            } else {
                "recorded".to_string()
            }];
        };
        let saved = slot.saved.lock().expect("slot lock").clone();
        let deployment = saved.public.deployment_id;
        if saved.native.is_some() {
            return vec![format!(
                "native deployment {deployment} uses it from its next candle"
            )];
        }
        if !config_key {
            return vec!["recorded".to_string()];
        }
        let Ok(_op) = slot.op.try_lock() else {
            return vec![format!(
                "deployment {deployment} is being stopped or restarted: its config was left as it was; the next deploy uses the new value"
            )];
        };
        let tuning = freqtrade::config_parameters(&strategy.parameters);
        let value = tuning.get(name).cloned().unwrap_or(Value::Null);
        let path = saved.dir.join("config.json");
        let rewritten = (|| -> anyhow::Result<bool> {
            let mut config: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
            if freqtrade::apply_config_parameters(&mut config, &tuning).is_empty() {
                return Ok(false);
            }
            crate::datadir::write_atomic(
                &path,
                &serde_json::to_vec_pretty(&config).expect("configs serialize"),
                0o600,
            )?;
            Ok(true)
        })();
        match rewritten {
            Err(e) => {
                warn!(%deployment, error = %e, "cannot rewrite a bot's config for a parameter change");
                return vec![format!(
                    "Freqtrade config key `{name}`: cannot rewrite {} ({e:#}); the bot keeps its old value",
                    path.display()
                )];
            }
            Ok(false) => {
                return vec![format!(
                    "Freqtrade config key `{name}`: deployment {deployment} already runs with {name} = {value}"
                )];
            }
            Ok(true) => {}
        }
        let Some(port) = saved.public.port else {
            return vec![format!(
                "Freqtrade config key `{name}`: deployment {deployment}'s config has {name} = {value}; the bot gets it when it starts"
            )];
        };
        match BotClient::new(port, &saved.credentials)
            .reload_config()
            .await
        {
            Ok(()) => {
                info!(%deployment, parameter = name, %value, "a parameter changed: the bot's config was rewritten and reloaded");
                vec![format!(
                    "Freqtrade config key `{name}`: deployment {deployment}'s config has {name} = {value} and the bot was told to reload it"
                )]
            }
            Err(e) => {
                warn!(%deployment, error = %e, "a bot did not take reload_config");
                vec![format!(
                    "Freqtrade config key `{name}`: deployment {deployment}'s config has {name} = {value}, but the bot did not take the reload ({e:#}); it applies at the bot's next start"
                )]
            }
        }
    }

    /// Why a strategy cannot be deployed now, if it cannot (what the scheduled jobs ask
    /// before choosing it): its status, and whether it says how it runs.
    pub fn check_deployable(&self, id: StrategyId) -> Result<(), String> {
        let detail = self.registry.get(id).map_err(|e| e.to_string())?;
        let strategy = &detail.metadata.strategy;
        if matches!(
            strategy.status,
            StrategyStatus::Deprecated | StrategyStatus::Archived
        ) {
            return Err(format!("it is {}", strategy.status));
        }
        let section = strategy.extra.get("deployment");
        let kind = section.and_then(|s| s.get("type")).and_then(Value::as_str);
        let native = kind == Some("native") || strategy.implementation.language == "rust";
        let freqtrade = kind == Some("freqtrade")
            || (kind.is_none()
                && strategy.implementation.language == "freqtrade"
                && section.is_some());
        if native || freqtrade {
            Ok(())
        } else {
            Err("it has no deployment section (strategy.deployment)".into())
        }
    }

    /// `strategies.stop`.
    pub async fn stop(self: &Arc<Self>, params: StopParams) -> Result<DeployedStrategy, RpcError> {
        let slot = self.active_slot_of(params.id).ok_or_else(|| {
            RpcError::not_found(format!("strategy {} is not deployed", params.id))
        })?;
        self.stop_slot(&slot, params.mode, params.deadline_secs)
            .await;
        Ok(slot.saved.lock().expect("slot lock").public.clone())
    }

    async fn stop_slot(&self, slot: &Slot, mode: StopMode, deadline_secs: Option<u64>) {
        let _op = slot.op.lock().await;
        slot.cancel.lock().expect("cancel lock").cancel();
        let task = slot.task.lock().expect("task lock").take();
        let mut child = match task {
            Some(task) => task.await.ok().flatten(),
            None => None,
        };
        self.update(slot, |s| s.public.status = DeploymentStatus::Stopping);
        let saved = slot.saved.lock().expect("slot lock").clone();
        if mode == StopMode::Drain {
            if let Some(port) = saved.public.port {
                let client = BotClient::new(port, &saved.credentials);
                let deadline = Instant::now() + Duration::from_secs(deadline_secs.unwrap_or(300));
                if client.stop_entries().await.is_ok() {
                    info!(deployment = %saved.public.deployment_id, "draining: no new entries; waiting for open trades to close");
                    while Instant::now() < deadline {
                        match client.open_trades().await {
                            Ok(open) if open.is_empty() => break,
                            _ => tokio::time::sleep(Duration::from_secs(1)).await,
                        }
                    }
                }
            }
        }
        if let Some(pid) = saved.public.process_id {
            terminate_group(pid, &mut child, self.settings.stop_timeout).await;
        }
        self.update(slot, |s| {
            s.public.status = DeploymentStatus::Stopped;
            s.public.process_id = None;
        });
        info!(deployment = %saved.public.deployment_id, "stopped");
    }

    /// `strategies.restart`: stop, then deploy again with the same settings.
    pub async fn restart(
        self: &Arc<Self>,
        params: StopParams,
    ) -> Result<DeployedStrategy, RpcError> {
        let slot = self.active_slot_of(params.id).ok_or_else(|| {
            RpcError::not_found(format!("strategy {} is not deployed", params.id))
        })?;
        let (dry_run, port, started_by) = {
            let s = slot.saved.lock().expect("slot lock");
            (s.public.dry_run, s.public.port, s.public.started_by)
        };
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

    /// `deployments.stop_all`.
    pub async fn stop_all(self: &Arc<Self>, params: StopAllParams) -> DeployedList {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .expect("slots lock")
            .values()
            .filter(|s| s.saved.lock().expect("slot lock").public.status.is_active())
            .cloned()
            .collect();
        let stops = slots
            .iter()
            .map(|slot| self.stop_slot(slot, params.mode, params.deadline_secs));
        futures::future::join_all(stops).await;
        DeployedList {
            deployments: slots
                .iter()
                .map(|s| s.saved.lock().expect("slot lock").public.clone())
                .collect(),
        }
    }

    /// `deployments.logs`: the last lines of the strategy's newest deployment.
    pub fn logs(&self, params: LogsParams) -> Result<LogTail, RpcError> {
        let slots = self.slots.lock().expect("slots lock");
        let newest = slots
            .values()
            .filter(|s| s.saved.lock().expect("slot lock").public.strategy_id == params.id)
            .max_by_key(|s| s.saved.lock().expect("slot lock").public.started_at)
            .ok_or_else(|| {
                RpcError::not_found(format!("strategy {} has never been deployed", params.id))
            })?;
        let saved = newest.saved.lock().expect("slot lock").clone();
        let n = params.lines.unwrap_or(100).min(10_000);
        let mut lines = tail_lines(&saved.log_path(), n);
        if lines.is_empty() {
            lines = tail_lines(&saved.dir.join("console.log"), n);
        }
        Ok(LogTail {
            deployment_id: saved.public.deployment_id,
            lines,
        })
    }
}

impl Supervisor {
    /// `strategies.deploy` of a native strategy: paper trading in the daemon on a candle
    /// feed (see [`crate::native::runner`]). Never live: there is no exchange behind it.
    async fn deploy_native(
        self: &Arc<Self>,
        params: DeployParams,
        started_by: StartedBy,
        detail: &mem_protocol::strategy::StrategyDetail,
        section: &Value,
    ) -> Result<DeployedStrategy, RpcError> {
        let method = "strategies.deploy";
        let strategy = &detail.metadata.strategy;
        if !params.dry_run {
            return Err(RpcError::permission_denied(format!(
                "strategy {} is native: it trades on paper only; deploy it in dry-run",
                params.id
            )));
        }
        let kind = section
            .get("strategy")
            .and_then(Value::as_str)
            .and_then(|k| crate::native::strategies::kind_of(k, None))
            .or_else(|| {
                crate::native::strategies::kind_of(
                    &strategy.name,
                    strategy.implementation.class_name.as_deref(),
                )
            })
            .ok_or_else(|| {
                RpcError::invalid_params(
                    method,
                    format!(
                        "strategy {} ({}) is not one of the native strategies ({})",
                        params.id,
                        strategy.name,
                        crate::native::strategies::KINDS.join(", ")
                    ),
                )
            })?;
        let opts = params.native.clone().unwrap_or_default();
        let text = |key: &str| section.get(key).and_then(Value::as_str).map(str::to_string);
        let ctx = &self.native;
        let pair = opts
            .pair
            .or_else(|| text("pair"))
            .unwrap_or_else(|| ctx.reference_pair.clone());
        let timeframe_text = opts
            .timeframe
            .or_else(|| text("timeframe"))
            .unwrap_or_else(|| ctx.timeframe.clone());
        let timeframe: crate::market::candles::Timeframe =
            timeframe_text
                .parse()
                .map_err(|e: crate::market::candles::ParseTimeframeError| {
                    RpcError::invalid_params(method, format!("field `native.timeframe`: {e}"))
                })?;
        let mode = opts
            .mode
            .or_else(|| {
                section
                    .get("mode")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
            })
            .unwrap_or(FeedMode::Follow);
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
        let file = match opts.file.or_else(|| text("file")) {
            Some(f) => crate::datadir::confined(&ctx.market_dir, &f).map_err(|e| {
                RpcError::invalid_params(method, format!("field `native.file`: {e}"))
            })?,
            None => crate::market::candles::find_pair_file(&ctx.market_dir, &pair, timeframe)
                .map_err(|e| unavailable(e.to_string()))?,
        };
        let mut paper = crate::native::engine::paper_settings(opts.starting_balance);
        paper.fee_rate = section
            .get("fee_rate")
            .and_then(Value::as_f64)
            .unwrap_or(paper.fee_rate);
        paper
            .validate()
            .map_err(|e| RpcError::invalid_params(method, format!("native: {e}")))?;
        let native = runner::new_saved(
            kind,
            strategy.parameters.clone(),
            strategy.name.clone(),
            pair.clone(),
            timeframe.to_string(),
            file.clone(),
            mode,
            opts.speed.filter(|s| *s > 0.0),
            strategy.mem_integration.enabled,
            crate::native::paper::PaperBroker::new(paper),
        );
        let checked = native.clone();
        let candles = tokio::task::spawn_blocking(move || runner::check(&checked))
            .await
            .map_err(internal)?
            .map_err(|e| {
                RpcError::invalid_params(method, format!("native strategy {kind}: {e}"))
            })?;
        let deployment_id = DeploymentId::new_random();
        let dir = self.root.join(deployment_id.to_string());
        crate::datadir::ensure_dir(&dir, 0o750).map_err(internal)?;
        let saved = Saved {
            public: DeployedStrategy {
                deployment_id,
                strategy_id: params.id,
                strategy_name: detail.summary.display_name.clone(),
                deployment_type: DeploymentType::Native,
                process_id: None,
                port: None,
                started_at: Utc::now(),
                status: DeploymentStatus::Starting,
                dry_run: true,
                config_file: Some(file.display().to_string()),
                started_by,
                restarts: 0,
                last_error: None,
                stats: BotStats::default(),
                warnings: 0,
                errors: 0,
                cpu_percent: None,
                rss_bytes: None,
            },
            credentials: Credentials::generate(),
            dir,
            strategy_class: kind.to_string(),
            pid_start_ticks: None,
            last_synced_trade: 0,
            native: Some(native),
        };
        let slot = self.add_slot(saved);
        info!(%deployment_id, strategy = %params.id, kind, %pair, candles, ?mode, file = %file.display(), "deploying a native strategy");
        self.start_native(slot.clone());
        Ok(slot.saved.lock().expect("slot lock").public.clone())
    }

    /// Runs (or resumes) a native deployment on a blocking thread; its end is recorded.
    fn start_native(self: &Arc<Self>, slot: Arc<Slot>) {
        let cancel = CancellationToken::new();
        *slot.cancel.lock().expect("cancel lock") = cancel.clone();
        let saved = slot.saved.lock().expect("slot lock").clone();
        let native = saved.native.clone().expect("a native deployment");
        let ctx = runner::RunContext {
            memory: self.native.memory.clone(),
            model: self.native.ml.serving_model().map(|(_, m)| m),
            settings: self.native.memory.settings().clone(),
            registry: self.registry.clone(),
            strategy_id: saved.public.strategy_id,
            deployment: saved.public.deployment_id.to_string(),
            log: saved.log_path(),
        };
        self.update(&slot, |s| {
            s.public.status = DeploymentStatus::Running;
            s.public.last_error = None;
        });
        let this = self.clone();
        let task_slot = slot.clone();
        let suspend = self.suspend_native.clone();
        let handle = tokio::spawn(async move {
            let progress_this = this.clone();
            let progress_slot = task_slot.clone();
            let result = tokio::task::spawn_blocking(move || {
                runner::run(native, ctx, cancel, suspend, |state, status| {
                    progress_this.native_progress(&progress_slot, state, status)
                })
            })
            .await;
            match result {
                Ok(Ok(RunEnd::Finished)) => {
                    info!(deployment = %task_slot.saved.lock().expect("slot lock").public.deployment_id, "native replay finished");
                    this.update(&task_slot, |s| s.public.status = DeploymentStatus::Stopped);
                }
                Ok(Ok(RunEnd::Stopped | RunEnd::Suspended)) => {}
                Ok(Err(e)) => {
                    warn!(error = %e, "a native deployment failed");
                    this.update(&task_slot, |s| {
                        s.public.status = DeploymentStatus::Failed;
                        s.public.last_error = Some(e);
                    });
                }
                Err(e) => this.update(&task_slot, |s| {
                    s.public.status = DeploymentStatus::Failed;
                    s.public.last_error = Some(format!("the native runner panicked: {e}"));
                }),
            }
            None
        });
        *slot.task.lock().expect("task lock") = Some(handle);
    }

    /// The daemon is stopping: native runners save their state (positions stay open) and
    /// return, so the next daemon resumes them where they were.
    pub async fn suspend_native(&self) {
        self.suspend_native.cancel();
        let tasks: Vec<_> = self
            .slots
            .lock()
            .expect("slots lock")
            .values()
            .filter(|s| s.saved.lock().expect("slot lock").native.is_some())
            .filter_map(|s| s.task.lock().expect("task lock").take())
            .collect();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
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
        self.update(slot, |s| {
            s.native = Some(state.clone());
            s.public.stats = BotStats {
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

/// A Freqtrade closed trade as a registry trade; its id is unique across deployments.
fn to_trade_record(deployment: DeploymentId, t: &freqtrade::ClosedTrade) -> Option<TradeRecord> {
    let exit = DateTime::from_timestamp_millis(t.close_timestamp?)?;
    let entry = DateTime::from_timestamp_millis(t.open_timestamp)?;
    let pnl = t.close_profit_abs.or(t.profit_abs)?;
    Some(TradeRecord {
        trade_id: format!("{deployment}:{}", t.trade_id),
        symbol: t.pair.clone(),
        timeframe: t
            .timeframe
            .as_ref()
            .map(|v| v.to_string().trim_matches('"').to_string()),
        action: if t.is_short {
            TradeAction::Sell
        } else {
            TradeAction::Buy
        },
        confidence: None,
        entry_price: t.open_rate,
        exit_price: t.close_rate?,
        entry_time: entry,
        exit_time: exit.max(entry),
        pnl,
        pnl_pct: t.close_profit.or(t.profit_ratio).unwrap_or(0.0),
        is_win: Some(pnl > 0.0),
        mem_enhanced: false,
        mem_confidence_boost: None,
        learned_pattern: None,
        market_regime: None,
        volatility: None,
        broker: Some("freqtrade".into()),
        slippage: None,
        commission: t
            .fee_open
            .zip(t.stake_amount)
            .map(|(fee, stake)| fee * stake * 2.0),
    })
}

/// SIGTERM to the process group, wait, then SIGKILL; reaps our own child.
async fn terminate_group(pid: u32, child: &mut Option<Child>, grace: Duration) {
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        let gone = match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => !same_process_alive(pid, None),
        };
        if gone {
            break;
        }
        if Instant::now() >= deadline {
            warn!(pid, "the bot ignored SIGTERM; killing its process group");
            let _ = killpg(group, Signal::SIGKILL);
            if let Some(c) = child.as_mut() {
                let _ = c.wait().await;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Whatever else is left in the group (grandchildren) goes too.
    let _ = killpg(group, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_ended_deployments_are_kept() {
        let start = Utc::now();
        let ended: Vec<(DateTime<Utc>, DeploymentId)> = (0..5)
            .map(|i| {
                (
                    start + chrono::Duration::seconds(i),
                    DeploymentId::new_random(),
                )
            })
            .collect();
        assert!(oldest_beyond(ended.clone(), 5).is_empty());
        let mut shuffled = ended.clone();
        shuffled.reverse();
        assert_eq!(oldest_beyond(shuffled, 3), vec![ended[0].1, ended[1].1]);
    }
}
