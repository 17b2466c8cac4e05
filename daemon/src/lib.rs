//! memd: the daemon of the memd system, as a library with a thin `main`, so that tests
//! can run it in-process as well as spawn the binary.
//!
//! This file is the composition root: it opens each subsystem, hands each what it needs,
//! and runs the listeners until shutdown. One module per subsystem (ARCHITECTURE.md
//! lists them and who owns what); requests reach them through the [`router`]. State
//! changes are announced on the [`bus`].
#![forbid(unsafe_code)]

pub mod access;
pub mod alerts;
pub mod audit;
pub mod backtest;
pub mod backup;
pub mod bus;
pub mod config;
pub mod datadir;
pub mod freqtrade;
pub mod handlers;
pub mod health;
pub mod http;
pub mod linelog;
pub mod logging;
pub mod market;
pub mod mem;
pub mod metrics;
pub mod ml;
pub mod native;
pub mod pulse;
pub mod queue;
pub mod recommend;
pub mod registry;
pub mod risk;
pub mod router;
pub mod schedule;
pub mod server;
pub mod snapshot;
pub mod supervisor;
pub mod systemd;
pub mod watch;

use crate::access::AccessPolicy;
use crate::bus::EventBus;
use crate::config::Settings;
use crate::health::HealthMonitor;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::supervisor::record::ActiveStrategies;
use chrono::{DateTime, Utc};
use mem_protocol::Event;
use mem_protocol::events::DaemonStopping;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Events kept for a subscriber that is momentarily behind.
const BUS_CAPACITY: usize = 4096;

/// The daemon's subsystems: what every request handler can reach. Each owns its state;
/// this struct only holds them together.
pub struct Daemon {
    pub settings: Settings,
    pub registry: Arc<Registry>,
    pub supervisor: Arc<supervisor::Supervisor>,
    pub ml: Arc<ml::service::MlService>,
    pub memory: Arc<mem::service::Memory>,
    pub scheduler: Arc<schedule::Scheduler>,
    /// The queue of heavy work: backtests and walk-forwards.
    pub queue: Arc<queue::Queue>,
    /// The risk guard over every deployment (`[risk]`): the supervisor feeds it the bots'
    /// profits and asks it before a deploy.
    pub risk: Arc<risk::RiskGuard>,
    /// The daemon's figures (`mem.metrics`, `/metrics`): each subsystem records its own.
    pub metrics: Arc<Metrics>,
    pub bus: Arc<EventBus>,
    pub health: HealthMonitor,
    pub access: AccessPolicy,
    /// Alerts: the rules, the outbox, the channels (Telegram, a webhook, the log).
    pub alerts: Arc<alerts::Alerts>,
    /// The HTTP API's bearer tokens (made on first start, whether the API is on or not).
    pub http_tokens: Arc<http::tokens::Tokens>,
    /// The audit of actions (deploys, stops, jobs, tokens, backups, ...): the router records.
    pub actions: Arc<audit::ActionAudit>,
    pub started_at: DateTime<Utc>,
    pub(crate) started: Instant,
    pub connections: AtomicUsize,
    pub subscribers: AtomicUsize,
    /// The bots' CPU and memory as `deployments.usage` last published them.
    pub usage: pulse::UsageLedger,
    /// A stop asked over the socket (`daemon.stop`).
    pub stop_request: StopRequest,
    /// The file watchers of the registry and the memory (watching stops when dropped).
    _watchers: Vec<watch::Watcher>,
}

impl Daemon {
    /// What a backup copies and pauses (`daemon.backup`, the `backup` job).
    pub fn backup_sources(&self) -> backup::Sources {
        backup::Sources {
            data_dir: self.settings.data_dir.clone(),
            log_dir: self.settings.log_dir.clone(),
            ml: self.ml.clone(),
            supervisor: self.supervisor.clone(),
            memory: self.memory.clone(),
            registry: self.registry.clone(),
        }
    }
}

/// A stop asked of the daemon by a client, with its reason; [`run`] waits on it beside the
/// signals.
#[derive(Default)]
pub struct StopRequest {
    reason: std::sync::Mutex<Option<String>>,
    asked: tokio::sync::Notify,
}

impl StopRequest {
    pub fn ask(&self, reason: String) {
        *self.reason.lock().expect("stop reason lock") = Some(reason);
        self.asked.notify_one();
    }

    async fn wait(&self) -> String {
        self.asked.notified().await;
        self.reason
            .lock()
            .expect("stop reason lock")
            .take()
            .unwrap_or_default()
    }
}

/// Runs the daemon until `shutdown` resolves (with the reason, e.g. "SIGTERM").
pub async fn run(settings: Settings, shutdown: impl Future<Output = String>) -> anyhow::Result<()> {
    datadir::ensure_dir(&settings.data_dir, 0o750)?;
    let _data_lock = datadir::LockFile::acquire(&settings.data_dir.join("memd.lock")).map_err(|err| match err {
        datadir::LockError::Held { pid, .. } => anyhow::anyhow!(
            "another memd (pid {pid}) is already using the data directory {}; stop it first or give this one another --data-dir",
            settings.data_dir.display()
        ),
        other => other.into(),
    })?;
    let access = AccessPolicy::from_config(&settings.access)?;
    settings
        .enhancement
        .validate()
        .map_err(anyhow::Error::msg)?;
    // Claim the socket before touching any data: a second daemon must change nothing.
    // Clients that connect before the registry is loaded wait in the listen backlog.
    let socket = server::bind(&settings.socket)?;
    if settings.seed_default_data {
        seed(&settings)?;
    }
    let daemon = Arc::new(open(settings, access).await?);
    debug_hang(&daemon);
    pulse::spawn(Arc::downgrade(&daemon));
    daemon.alerts.spawn(Arc::downgrade(&daemon));

    let stop = CancellationToken::new();
    let http = match daemon.settings.http_listen {
        Some(address) => Some(http::start(address, http::HttpState::new(&daemon, &stop)).await?),
        None => None,
    };
    info!(socket = %socket.path.display(), pid = std::process::id(), version = env!("CARGO_PKG_VERSION"), "memd is ready");
    record_lifecycle(&daemon, "daemon.start", config_params(&daemon.settings));
    systemd::notify_ready(&format!(
        "serving {} strategies on {}",
        daemon.registry.len(),
        socket.path.display()
    ));
    // Pings begin once systemd has READY (before it, a busy start could ping first).
    let watched = daemon.clone();
    systemd::spawn_watchdog(Arc::new(move || {
        let _ = watched.registry.len(); // takes the index lock: a hung writer shows here
        true
    }));

    let tracker = TaskTracker::new();
    let accepting = server::accept_loop(daemon.clone(), &socket, stop.clone(), tracker.clone());
    let reason = tokio::select! {
        reason = shutdown => reason,
        reason = daemon.stop_request.wait() => reason,
        _ = accepting => "the listener stopped".to_string(),
    };
    info!(%reason, "shutting down");
    let mut why = serde_json::Map::new();
    why.insert("reason".into(), reason.clone().into());
    record_lifecycle(&daemon, "daemon.shutdown", why);
    systemd::notify_stopping();
    daemon
        .bus
        .publish(Event::DaemonStopping(DaemonStopping { reason }));
    drop(socket); // no new clients: the socket file is removed now
    shut_down(&daemon, stop, http, tracker).await;
    info!("stopped");
    Ok(())
}

/// Copies the default data where it is missing: the Freqtrade configs and strategies,
/// the market candles, the built-in strategies.
fn seed(settings: &Settings) -> anyhow::Result<()> {
    datadir::seed_freqtrade(&settings.data_dir)?;
    match datadir::refresh_mixin(&settings.data_dir) {
        Ok(true) => info!(
            file = datadir::MIXIN,
            "wrote this memd's mixin for Freqtrade strategies"
        ),
        Ok(false) => {}
        Err(e) => warn!(file = datadir::MIXIN, error = %e, "cannot write the memd mixin"),
    }
    datadir::seed_market(&settings.data_dir)?;
    // A registry in a database is seeded when it is opened (if it is empty).
    if settings.registry == registry::config::Backend::Files {
        let written = datadir::seed_registry(&settings.registry_dir)?;
        if written > 0 {
            info!(files = written, dir = %settings.registry_dir.display(), "new registry: copied the built-in strategies");
        }
    }
    Ok(())
}

/// Opens every subsystem, each handed what it needs, in dependency order.
async fn open(settings: Settings, access: AccessPolicy) -> anyhow::Result<Daemon> {
    let bus = Arc::new(EventBus::new(BUS_CAPACITY));
    let metrics = Arc::new(Metrics::new());
    // Kept by the supervisor, read by the registry for `isDeployed`.
    let active = Arc::new(ActiveStrategies::default());
    let mut watchers = Vec::new();
    let registry = open_registry(&settings, &bus, active.clone(), &mut watchers)?;
    let ml = Arc::new(ml::service::MlService::open(
        &settings.data_dir,
        &settings.market,
        &settings.model,
        bus.clone(),
    )?);
    let memory = Arc::new(mem::service::Memory::open_at_rest(
        &settings.data_dir,
        settings.enhancement.clone(),
        &settings.at_rest,
        registry.clone(),
        bus.clone(),
        metrics.clone(),
    )?);
    match watch::watch_memory(memory.clone()) {
        Ok(watcher) => watchers.push(watcher),
        Err(err) => warn!(%err, "cannot watch mem_knowledge/; hand edits need a restart"),
    }
    let native = supervisor::NativeContext {
        memory: memory.clone(),
        model: ml.serving_handle(),
        market_dir: ml.market_dir().to_path_buf(),
        reference_pair: ml.reference_pair().unwrap_or_else(|| "BTC/USDT".into()),
        timeframe: ml.timeframe().to_string(),
    };
    let risk = Arc::new(risk::RiskGuard::open(
        &settings.data_dir,
        settings.risk.clone(),
        bus.clone(),
    )?);
    let mut bots = settings.freqtrade.supervisor_settings();
    // The bots' memd mixin connects here (the bot may run in another directory).
    bots.mem_socket = Some(std::path::absolute(&settings.socket)?);
    let supervisor = supervisor::Supervisor::open(
        &settings.data_dir,
        supervisor::SupervisorParts {
            settings: bots,
            registry: registry.clone(),
            bus: bus.clone(),
            metrics: metrics.clone(),
            active,
            native,
            risk: risk.clone(),
        },
    )
    .await?;
    let refresher = Arc::new(market::refresh::Refresher::new(
        &settings.data_dir,
        ml.market_dir(),
        &settings.freqtrade,
        &settings.market.refresh,
        &[ml.timeframe(), ml.conditions_timeframe()],
    )?);
    let queue = queue::Queue::open(
        &settings.data_dir.join("queue"),
        settings.queue.clone(),
        bus.clone(),
    )?;
    queue.set_runner(backtest::job::runner(Arc::new(backtest::job::JobDeps {
        registry: registry.clone(),
        ml: ml.clone(),
        data_dir: settings.data_dir.clone(),
        freqtrade: settings.freqtrade.clone(),
        enhance: settings.enhancement.clone(),
        settings: settings.backtest.clone(),
    })));
    queue.spawn();
    let http_tokens = Arc::new(http::tokens::Tokens::open(&settings.data_dir)?);
    let actions = Arc::new(audit::ActionAudit::open(&settings.data_dir)?);
    let alerts = Arc::new(alerts::Alerts::open(
        &settings.data_dir,
        settings.alerts.clone(),
        bus.clone(),
    )?);
    let scheduler = schedule::Scheduler::open(
        &settings.data_dir,
        settings.schedule.clone(),
        schedule::JobContext {
            ml: ml.clone(),
            registry: registry.clone(),
            supervisor: supervisor.clone(),
            memory: memory.clone(),
            refresher,
            unmeasured: settings.unmeasured,
            backup: backup::Sources {
                data_dir: settings.data_dir.clone(),
                log_dir: settings.log_dir.clone(),
                ml: ml.clone(),
                supervisor: supervisor.clone(),
                memory: memory.clone(),
                registry: registry.clone(),
            },
            retention: schedule::retention::RetentionParts {
                supervisor: supervisor.clone(),
                ml: ml.clone(),
                queue: queue.clone(),
                actions: actions.clone(),
                alerts: alerts.clone(),
            },
        },
        bus.clone(),
    )?;
    scheduler.start().await?;
    let hook = alerts.clone();
    memory.set_alert_hook(Arc::new(move |raised| {
        hook.raise(raised);
    }));
    Ok(Daemon {
        settings,
        registry,
        supervisor,
        ml,
        memory,
        scheduler,
        queue,
        risk,
        metrics,
        bus,
        health: HealthMonitor::start(),
        access,
        http_tokens,
        actions,
        alerts,
        started_at: Utc::now(),
        started: Instant::now(),
        stop_request: StopRequest::default(),
        connections: AtomicUsize::new(0),
        subscribers: AtomicUsize::new(0),
        usage: pulse::UsageLedger::default(),
        _watchers: watchers,
    })
}

/// The registry on the backend the config names, its live summaries flushed and memd's
/// own trades it could not take recorded again every 2 s.
fn open_registry(
    settings: &Settings,
    bus: &Arc<EventBus>,
    active: Arc<ActiveStrategies>,
    watchers: &mut Vec<watch::Watcher>,
) -> anyhow::Result<Arc<Registry>> {
    let registry = match &settings.registry {
        registry::config::Backend::Postgres(pg) => {
            open_postgres_registry(settings, pg, bus, active)?
        }
        registry::config::Backend::Files => open_file_registry(settings, bus, active, watchers)?,
    };
    registry.keep_own_trades_in(&settings.data_dir.join("trade-outbox.jsonl"))?;
    spawn_live_summary_flusher(registry.clone());
    Ok(registry)
}

/// The registry on files, watched for hand edits, its files checked in full in the
/// background (start-up reads only what the index needs).
fn open_file_registry(
    settings: &Settings,
    bus: &Arc<EventBus>,
    active: Arc<ActiveStrategies>,
    watchers: &mut Vec<watch::Watcher>,
) -> anyhow::Result<Arc<Registry>> {
    let started = Instant::now();
    let registry = Arc::new(Registry::open_with(
        &settings.registry_dir,
        bus.clone(),
        active,
    )?);
    info!(
        strategies = registry.len(),
        skipped = registry.issues().len(),
        dir = %settings.registry_dir.display(),
        millis = started.elapsed().as_millis() as u64,
        "registry loaded"
    );
    match watch::watch_registry(registry.clone()) {
        Ok(watcher) => watchers.push(watcher),
        Err(err) => {
            warn!(%err, "cannot watch the registry's metadata directory; hand edits need a restart")
        }
    }
    let checked = registry.clone();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let (files, failed) = checked.validate_all();
        info!(
            files,
            failed,
            millis = started.elapsed().as_millis() as u64,
            "metadata files checked in full"
        );
    });
    Ok(registry)
}

/// The registry in PostgreSQL, shared with other servers' daemons: seeded if the database
/// has no strategy yet, following the others' changes. No file watcher and no background
/// check of files (there are none).
fn open_postgres_registry(
    settings: &Settings,
    pg: &registry::config::PostgresSettings,
    bus: &Arc<EventBus>,
    active: Arc<ActiveStrategies>,
) -> anyhow::Result<Arc<Registry>> {
    let started = Instant::now();
    let password = pg.password.as_ref().map(|p| p.expose());
    let store = registry::postgres::PgStore::connect(&pg.url, password, &pg.server)
        .map_err(|e| anyhow::anyhow!("[registry] {e}"))?;
    if settings.seed_default_data && store.is_empty()? {
        let seeded = store.seed(datadir::builtin_strategies()?)?;
        info!(
            strategies = seeded,
            "new registry database: inserted the built-in strategies"
        );
    }
    let registry = Arc::new(Registry::open_postgres(store, bus.clone(), active)?);
    registry.follow_remote();
    info!(
        strategies = registry.len(),
        skipped = registry.issues().len(),
        database = %registry::postgres::target_of(&pg.url),
        server = %pg.server,
        millis = started.elapsed().as_millis() as u64,
        "registry loaded from PostgreSQL"
    );
    Ok(registry)
}

/// A start or a stop in the audit of actions, as memd's own (its uid: who runs it).
fn record_lifecycle(
    daemon: &Daemon,
    action: &str,
    params: serde_json::Map<String, serde_json::Value>,
) {
    let memd = registry::Caller {
        uid: Some(nix::unistd::getuid().as_raw()),
        client: Some("memd".into()),
    };
    daemon.actions.record(action, &memd, params, &Ok(()));
}

/// What a start records of its configuration: memd reads its config file only at start,
/// so each start is where a changed config takes effect, and its SHA-256 says whether
/// it changed since the start before.
fn config_params(settings: &Settings) -> serde_json::Map<String, serde_json::Value> {
    use sha2::Digest;
    let mut params = serde_json::Map::new();
    params.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    params.insert("pid".into(), std::process::id().into());
    if let Some(path) = &settings.config_file {
        params.insert("configFile".into(), path.display().to_string().into());
        if let Ok(bytes) = std::fs::read(path) {
            let digest = sha2::Sha256::digest(&bytes);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            params.insert("configSha256".into(), hex.into());
        }
    }
    params
}

/// Stops what runs, in order: the scheduler, the listeners and their connections, the
/// native runners (their state saved), then the registry's live summaries.
async fn shut_down(
    daemon: &Arc<Daemon>,
    stop: CancellationToken,
    http: Option<tokio::task::JoinHandle<()>>,
    tracker: TaskTracker,
) {
    daemon.scheduler.shutdown().await;
    // A backtest's processes end with memd; the job is recorded interrupted.
    daemon.queue.shutdown(Duration::from_secs(8)).await;
    stop.cancel();
    if let Some(http) = http {
        let _ = tokio::time::timeout(Duration::from_secs(3), http).await;
    }
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(3), tracker.wait())
        .await
        .is_err()
    {
        warn!("some connections did not close in time");
    }
    daemon.supervisor.suspend_native().await;
    // `daemon_stopping` (and anything queued) gets a moment to go out; the rest is sent
    // after the next start.
    daemon.alerts.drain(Duration::from_secs(3)).await;
    daemon.risk.flush();
    let registry = daemon.registry.clone();
    let _ = tokio::task::spawn_blocking(move || registry.flush_live_summaries()).await;
}

/// Debug builds only: `MEMD_DEBUG_HANG_AFTER_SECS` hangs the registry after a while (the
/// watchdog test).
fn debug_hang(daemon: &Arc<Daemon>) {
    #[cfg(debug_assertions)]
    if let Some(secs) = std::env::var("MEMD_DEBUG_HANG_AFTER_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        let registry = daemon.registry.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(secs));
            warn!("MEMD_DEBUG_HANG_AFTER_SECS: hanging the registry now");
            registry.debug_hang_forever()
        });
    }
    #[cfg(not(debug_assertions))]
    let _ = daemon;
}

/// How often the live-trading summaries in the metadata catch up with the trade logs.
const LIVE_SUMMARY_INTERVAL: Duration = Duration::from_secs(2);

fn spawn_live_summary_flusher(registry: Arc<Registry>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LIVE_SUMMARY_INTERVAL);
        loop {
            tick.tick().await;
            let registry = registry.clone();
            let _ = tokio::task::spawn_blocking(move || {
                registry.flush_live_summaries();
                registry.retry_own_trades();
            })
            .await;
        }
    });
}

/// Resolves when SIGTERM or SIGINT arrives, with the signal's name.
///
/// The handlers are installed when this is called, not when the future is first polled:
/// memd calls it before it binds its socket, so a SIGTERM sent as soon as a client is
/// answered can never meet the default action (death by signal, nothing saved).
/// Call it inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("can listen for SIGTERM");
    let mut int = signal(SignalKind::interrupt()).expect("can listen for SIGINT");
    async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM".into(),
            _ = int.recv() => "SIGINT".into(),
        }
    }
}
