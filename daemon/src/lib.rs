//! memd: the daemon of the memd system, as a library with a thin `main`, so that tests
//! can run it in-process as well as spawn the binary.
//!
//! One module per subsystem (see DESIGN.md); the [`server`] only translates protocol
//! requests into calls on them. State changes are announced on the [`bus`].
#![forbid(unsafe_code)]

pub mod access;
pub mod bus;
pub mod config;
pub mod datadir;
pub mod health;
pub mod logging;
pub mod registry;
pub mod server;
pub mod systemd;

use crate::access::AccessPolicy;
use crate::bus::EventBus;
use crate::config::Settings;
use crate::health::HealthMonitor;
use crate::registry::Registry;
use chrono::{DateTime, Utc};
use mem_protocol::events::DaemonStopping;
use mem_protocol::methods::{Counts, Snapshot, StatusReport};
use mem_protocol::{Access, Event, Request, RpcError, Topic};
use serde_json::Value;
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Events kept for a subscriber that is momentarily behind.
const BUS_CAPACITY: usize = 4096;

/// The daemon's shared state: what every request handler can reach.
pub struct Daemon {
    pub settings: Settings,
    pub registry: RwLock<Registry>,
    pub bus: EventBus,
    pub health: HealthMonitor,
    pub access: AccessPolicy,
    pub started_at: DateTime<Utc>,
    started: Instant,
    pub connections: AtomicUsize,
    pub subscribers: AtomicUsize,
}

impl Daemon {
    /// Answers a request that does not need the connection (everything but `hello` and
    /// `events.subscribe`, which the server handles).
    pub async fn handle(&self, request: Request, access: Access) -> Result<Value, RpcError> {
        let value = match request {
            Request::DaemonStatus(_) => serde_json::to_value(self.status(access)),
            Request::StrategiesList(params) => {
                if params.min_sharpe.is_some_and(|v| !v.is_finite()) {
                    return Err(RpcError::invalid_params(
                        "strategies.list",
                        "field `minSharpe`: must be a finite number",
                    ));
                }
                serde_json::to_value(self.registry.read().expect("registry lock").list(&params))
            }
            Request::StrategiesGet(params) => {
                let detail = self.registry.read().expect("registry lock").get(params.id);
                match detail {
                    Some(detail) => serde_json::to_value(detail),
                    None => {
                        return Err(RpcError::not_found(format!(
                            "strategy {} not found in registry",
                            params.id
                        ))
                        .with_data(serde_json::json!({ "id": params.id })));
                    }
                }
            }
            Request::Hello(_) | Request::EventsSubscribe(_) => {
                return Err(RpcError::internal(format!(
                    "`{}` is answered by the connection, not here",
                    request.method()
                )));
            }
        };
        value.map_err(|e| RpcError::internal(format!("cannot encode the result: {e}")))
    }

    /// `daemon.status` for a caller with `access`.
    pub fn status(&self, access: Access) -> StatusReport {
        let (host, process) = self.health.latest();
        let registry = self.registry.read().expect("registry lock");
        let s = &self.settings;
        StatusReport {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            started_at: self.started_at,
            uptime_secs: self.started.elapsed().as_secs(),
            data_dir: s.data_dir.display().to_string(),
            registry_dir: s.registry_dir.display().to_string(),
            socket: s.socket.display().to_string(),
            log_dir: s.log_dir.display().to_string(),
            config_file: s.config_file.as_ref().map(|p| p.display().to_string()),
            mode: s.mode.as_str().into(),
            counts: Counts {
                strategies: registry.len(),
                strategies_by_status: registry.count_by_status(),
                registry_errors: registry.issues().len(),
                connections: self.connections.load(std::sync::atomic::Ordering::Relaxed),
                subscribers: self.subscribers.load(std::sync::atomic::Ordering::Relaxed),
            },
            host,
            process,
            access,
        }
    }

    /// The state a new subscriber starts from, for the topics it asked for.
    pub fn snapshot(&self, topics: &[Topic], access: Access) -> Snapshot {
        Snapshot {
            daemon: topics.contains(&Topic::Daemon).then(|| self.status(access)),
            strategies: topics
                .contains(&Topic::Registry)
                .then(|| self.registry.read().expect("registry lock").summaries()),
        }
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
    // Claim the socket before touching any data: a second daemon must change nothing.
    // Clients that connect before the registry is loaded wait in the listen backlog.
    let socket = server::bind(&settings.socket)?;
    if settings.seed_default_data {
        let written = datadir::seed_registry(&settings.registry_dir)?;
        if written > 0 {
            info!(files = written, dir = %settings.registry_dir.display(), "new registry: copied the built-in strategies");
        }
    }
    let registry = Registry::load(&settings.registry_dir)?;
    for issue in registry.issues() {
        warn!(file = %issue.path.display(), problem = %issue.problem, "skipped a metadata file");
    }
    info!(strategies = registry.len(), skipped = registry.issues().len(), dir = %settings.registry_dir.display(), "registry loaded");

    let daemon = Arc::new(Daemon {
        settings,
        registry: RwLock::new(registry),
        bus: EventBus::new(BUS_CAPACITY),
        health: HealthMonitor::start(),
        access,
        started_at: Utc::now(),
        started: Instant::now(),
        connections: AtomicUsize::new(0),
        subscribers: AtomicUsize::new(0),
    });
    let watched = daemon.clone();
    systemd::spawn_watchdog(Arc::new(move || watched.registry.read().is_ok()));

    info!(socket = %socket.path.display(), pid = std::process::id(), version = env!("CARGO_PKG_VERSION"), "memd is ready");
    systemd::notify_ready(&format!(
        "serving {} strategies on {}",
        daemon.registry.read().expect("registry lock").len(),
        socket.path.display()
    ));

    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let accepting = server::accept_loop(daemon.clone(), &socket, stop.clone(), tracker.clone());
    let reason = tokio::select! {
        reason = shutdown => reason,
        _ = accepting => "the listener stopped".to_string(),
    };

    info!(%reason, "shutting down");
    systemd::notify_stopping();
    daemon
        .bus
        .publish(Event::DaemonStopping(DaemonStopping { reason }));
    drop(socket); // no new clients: the socket file is removed now
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(3), tracker.wait())
        .await
        .is_err()
    {
        warn!("some connections did not close in time");
    }
    info!("stopped");
    Ok(())
}

/// Resolves when SIGTERM or SIGINT arrives, with the signal's name.
pub async fn shutdown_signal() -> String {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("can listen for SIGTERM");
    let mut int = signal(SignalKind::interrupt()).expect("can listen for SIGINT");
    tokio::select! {
        _ = term.recv() => "SIGTERM".into(),
        _ = int.recv() => "SIGINT".into(),
    }
}
