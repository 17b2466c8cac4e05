//! memd: the daemon of the memd system, as a library with a thin `main`, so that tests
//! can run it in-process as well as spawn the binary.
//!
//! One module per subsystem (see DESIGN.md); the [`server`] only translates protocol
//! requests into calls on them. State changes are announced on the [`bus`].
#![forbid(unsafe_code)]

pub mod access;
pub mod backup;
pub mod bus;
pub mod config;
pub mod datadir;
pub mod freqtrade;
pub mod health;
pub mod http;
pub mod logging;
pub mod market;
pub mod mem;
pub mod metrics;
pub mod ml;
pub mod native;
pub mod pulse;
pub mod recommend;
pub mod registry;
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
use crate::registry::{Caller, Registry};
use chrono::{DateTime, Utc};
use mem_protocol::events::DaemonStopping;
use mem_protocol::methods::{Counts, Snapshot, StatusReport};
use mem_protocol::recommend::{AppliedConditions, ConditionsSource, Trend, Volatility};
use mem_protocol::{Access, Event, Request, RpcError, Topic};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Events kept for a subscriber that is momentarily behind.
const BUS_CAPACITY: usize = 4096;

/// The daemon's shared state: what every request handler can reach.
pub struct Daemon {
    pub settings: Settings,
    pub registry: Arc<Registry>,
    pub supervisor: Arc<supervisor::Supervisor>,
    pub ml: Arc<ml::service::MlService>,
    pub memory: Arc<mem::service::Memory>,
    pub scheduler: Arc<schedule::Scheduler>,
    pub bus: Arc<EventBus>,
    pub health: HealthMonitor,
    pub access: AccessPolicy,
    /// The HTTP API's bearer tokens (made on first start, whether the API is on or not).
    pub http_tokens: Arc<http::tokens::Tokens>,
    pub started_at: DateTime<Utc>,
    started: Instant,
    pub connections: AtomicUsize,
    pub subscribers: AtomicUsize,
}

impl Daemon {
    /// Answers at once, without waiting or touching the disk, the reads that memory
    /// holds (the index, cached documents, the decision memory, the supervisor's table):
    /// a task or a hop to the blocking pool would cost more than the work (socket-load).
    /// Any other request is handed back.
    pub fn answer_now(&self, request: Request, access: Access) -> Now {
        Now::Answered(match request {
            Request::DaemonStatus(_) => encode(self.status(access)),
            Request::Deployed(p) => encode(self.supervisor.deployed(p.all)),
            // Reads: no caller to audit.
            Request::StrategiesList(_) | Request::StrategiesRecommendationsQuick(_) => {
                dispatch_registry(&self.registry, request, &Caller::default())
            }
            Request::StrategiesGet(ref p) => match self.registry.get_cached(p.id) {
                Some(detail) => encode(detail),
                None => return Now::Later(request),
            },
            Request::MemDecisions(p) => encode(self.memory.decisions(&p)),
            Request::MemMetrics(_) => encode(self.mem_metrics()),
            request => return Now::Later(request),
        })
    }

    /// Answers a request that does not need the connection (everything but `hello` and
    /// `events.subscribe`, which the server handles). Registry work touches the disk, so it
    /// runs on a blocking thread.
    pub async fn handle(
        self: &Arc<Self>,
        request: Request,
        access: Access,
        caller: Caller,
    ) -> Result<Answer, RpcError> {
        let request = match self.answer_now(request, access) {
            Now::Answered(answer) => return answer,
            Now::Later(request) => request,
        };
        let method = request.method();
        match request {
            Request::Deploy(p) => {
                return encode(
                    self.supervisor
                        .deploy(p, mem_protocol::deploy::StartedBy::Manual)
                        .await?,
                );
            }
            Request::Stop(p) => return encode(self.supervisor.stop(p).await?),
            Request::Restart(p) => return encode(self.supervisor.restart(p).await?),
            Request::Logs(p) => return encode(self.supervisor.logs(p)?),
            Request::ParametersUpdate(p) => {
                // Recorded first (a blocking write), then applied to what runs.
                let registry = self.registry.clone();
                let id = p.id;
                let (change, detail) = tokio::task::spawn_blocking(move || {
                    let fail = |e: registry::RegistryError| e.into_rpc(method);
                    let change = registry.update_parameter(p, &caller).map_err(fail)?;
                    let detail = registry.get(id).map_err(fail)?;
                    Ok::<_, RpcError>((change, detail))
                })
                .await
                .unwrap_or_else(|e| Err(RpcError::internal(format!("`{method}` failed: {e}"))))?;
                let applied = self
                    .supervisor
                    .parameter_changed(&detail, &change.parameter_name)
                    .await;
                return encode(mem_protocol::registry::ParameterUpdate { change, applied });
            }
            Request::StopAll(p) => return encode(self.supervisor.stop_all(p).await),
            Request::JobsList(_) => return encode(self.scheduler.list().await),
            Request::JobsRun(p) => return encode(self.scheduler.run_now(p).await?),
            Request::JobsHistory(p) => return encode(self.scheduler.history(p)?),
            Request::HttpToken(p) => return encode(self.http_token(p)?),
            Request::DaemonBackup(p) => {
                let daemon = self.clone();
                return tokio::task::spawn_blocking(move || {
                    backup::backup(&daemon, p).and_then(encode)
                })
                .await
                .unwrap_or_else(|e| Err(RpcError::internal(format!("`{method}` failed: {e}"))));
            }
            Request::StrategiesRecommendations(p) => {
                let (ml, registry) = (self.ml.clone(), self.registry.clone());
                return tokio::task::spawn_blocking(move || {
                    recommendations(&ml, &registry, p).and_then(encode)
                })
                .await
                .unwrap_or_else(|e| Err(RpcError::internal(format!("`{method}` failed: {e}"))));
            }
            Request::MemEnhance(_)
            | Request::MemDecide(_)
            | Request::MemOutcome(_)
            | Request::MemParameters(_)
            | Request::MemPatterns(_) => {
                let daemon = self.clone();
                return tokio::task::spawn_blocking(move || dispatch_mem(&daemon, request))
                    .await
                    .unwrap_or_else(|e| {
                        Err(RpcError::internal(format!("`{method}` failed: {e}")))
                    });
            }
            Request::MarketConditionsNow(_)
            | Request::MlTrain(_)
            | Request::MlStatus(_)
            | Request::MlHistory(_)
            | Request::MlPromote(_)
            | Request::MlRollback(_)
            | Request::MlPredict(_) => {
                // Training computes for seconds and the rest reads files: a blocking thread.
                let ml = self.ml.clone();
                return tokio::task::spawn_blocking(move || dispatch_ml(&ml, request))
                    .await
                    .unwrap_or_else(|e| {
                        Err(RpcError::internal(format!("`{method}` failed: {e}")))
                    });
            }
            _ => {}
        }
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || dispatch_registry(&registry, request, &caller))
            .await
            .unwrap_or_else(|e| Err(RpcError::internal(format!("`{method}` failed: {e}"))))
    }

    /// `http.token`: the control token, a new view-only one, or the webhook's secret.
    fn http_token(
        &self,
        p: mem_protocol::http::HttpTokenParams,
    ) -> Result<mem_protocol::http::HttpToken, RpcError> {
        if p.webhook {
            if p.view {
                return Err(RpcError::invalid_params(
                    "http.token",
                    "`view` and `webhook` do not go together: the webhook's secret is not a bearer token",
                ));
            }
            return Ok(mem_protocol::http::HttpToken {
                token: self.http_tokens.webhook_secret(),
                access: "webhook".into(),
                url: self
                    .settings
                    .http_listen
                    .filter(|_| self.settings.tradingview.enabled)
                    .map(|a| format!("http://{a}{}", http::tradingview::PATH)),
            });
        }
        let (token, access) = if p.view {
            let token = self
                .http_tokens
                .issue_view()
                .map_err(|e| RpcError::internal(format!("cannot save the new token: {e:#}")))?;
            (token, "view")
        } else {
            (self.http_tokens.control(), "control")
        };
        Ok(mem_protocol::http::HttpToken {
            token,
            access: access.into(),
            url: self
                .settings
                .http_listen
                .map(|a| format!("http://{a}/api/mem/strategies")),
        })
    }

    /// `daemon.status` for a caller with `access`.
    pub fn status(&self, access: Access) -> StatusReport {
        let (host, process) = self.health.latest();
        let registry = &self.registry;
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

    /// `mem.metrics`: the figures of [`metrics`], the learned strategies, the running bots'
    /// polls.
    pub fn mem_metrics(&self) -> mem_protocol::mem::MemMetrics {
        let active = self.supervisor.active_ids();
        let mut m = self
            .memory
            .metrics()
            .snapshot(self.memory.learned_counts(), &active);
        m.uptime_secs = self.started.elapsed().as_secs();
        m
    }

    /// `/metrics`: [`Daemon::mem_metrics`] and a few daemon figures as Prometheus text.
    pub fn prometheus_metrics(&self) -> String {
        let m = self.mem_metrics();
        metrics::prometheus_text(
            &m,
            &metrics::DaemonFigures {
                version: env!("CARGO_PKG_VERSION").into(),
                strategies: self.registry.len(),
                deployments_active: self.supervisor.active_ids().len(),
            },
        )
    }

    /// The part of a new subscriber's snapshot that memory holds; [`snapshot::take`] adds
    /// the rest.
    pub fn snapshot(&self, topics: &[Topic], access: Access) -> Snapshot {
        Snapshot {
            daemon: topics.contains(&Topic::Daemon).then(|| self.status(access)),
            strategies: topics
                .contains(&Topic::Registry)
                .then(|| self.registry.list(&Default::default()).strategies),
            ..Snapshot::default()
        }
    }
}

/// Runs the daemon until `shutdown` resolves (with the reason, e.g. "SIGTERM").
#[expect(
    clippy::too_many_lines,
    reason = "the composition root (issue 21) divides it"
)]
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
    settings.mem.validate().map_err(anyhow::Error::msg)?;
    // Claim the socket before touching any data: a second daemon must change nothing.
    // Clients that connect before the registry is loaded wait in the listen backlog.
    let socket = server::bind(&settings.socket)?;
    if settings.seed_default_data {
        datadir::seed_freqtrade(&settings.data_dir)?;
        datadir::seed_market(&settings.data_dir)?;
        let written = datadir::seed_registry(&settings.registry_dir)?;
        if written > 0 {
            info!(files = written, dir = %settings.registry_dir.display(), "new registry: copied the built-in strategies");
        }
    }
    let bus = Arc::new(EventBus::new(BUS_CAPACITY));
    let started = Instant::now();
    let registry = Arc::new(Registry::open(&settings.registry_dir, bus.clone())?);
    info!(
        strategies = registry.len(),
        skipped = registry.issues().len(),
        dir = %settings.registry_dir.display(),
        millis = started.elapsed().as_millis() as u64,
        "registry loaded"
    );
    let _watcher = match watch::watch_registry(registry.clone()) {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            warn!(%err, "cannot watch the registry's metadata directory; hand edits need a restart");
            None
        }
    };
    spawn_live_summary_flusher(registry.clone());
    // Start-up read only what the index needs; check every file in full now, in the
    // background, and drop what fails.
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

    let ml = Arc::new(ml::service::MlService::open(
        &settings.data_dir,
        &settings.market,
        &settings.model,
        bus.clone(),
    )?);
    let memory = Arc::new(mem::service::Memory::open_at_rest(
        &settings.data_dir,
        settings.mem.clone(),
        &settings.memory,
        registry.clone(),
        bus.clone(),
    )?);
    let _memory_watcher = match watch::watch_memory(memory.clone()) {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            warn!(%err, "cannot watch mem_knowledge/; hand edits need a restart");
            None
        }
    };
    let native = supervisor::NativeContext {
        memory: memory.clone(),
        ml: ml.clone(),
        market_dir: ml.market_dir().to_path_buf(),
        reference_pair: ml.reference_pair().unwrap_or_else(|| "BTC/USDT".into()),
        timeframe: ml.timeframe().to_string(),
    };
    let supervisor = supervisor::Supervisor::open(
        &settings.data_dir,
        settings.freqtrade.supervisor_settings(),
        registry.clone(),
        bus.clone(),
        native,
    )
    .await?;
    let scheduler = schedule::Scheduler::open(
        &settings.data_dir,
        settings.schedule.clone(),
        schedule::JobContext {
            ml: ml.clone(),
            registry: registry.clone(),
            supervisor: supervisor.clone(),
            memory: memory.clone(),
        },
        bus.clone(),
    )?;
    scheduler.start().await?;
    let http_tokens = Arc::new(http::tokens::Tokens::open(&settings.data_dir)?);
    let daemon = Arc::new(Daemon {
        settings,
        registry,
        supervisor,
        ml,
        memory,
        scheduler,
        bus,
        health: HealthMonitor::start(),
        access,
        http_tokens,
        started_at: Utc::now(),
        started: Instant::now(),
        connections: AtomicUsize::new(0),
        subscribers: AtomicUsize::new(0),
    });
    #[cfg(debug_assertions)]
    if let Some(secs) = std::env::var("MEMD_DEBUG_HANG_AFTER_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        // Debug builds only: hang the registry after a while (the watchdog test).
        let registry = daemon.registry.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(secs));
            warn!("MEMD_DEBUG_HANG_AFTER_SECS: hanging the registry now");
            registry.debug_hang_forever()
        });
    }
    let watched = daemon.clone();
    systemd::spawn_watchdog(Arc::new(move || {
        let _ = watched.registry.len(); // takes the index lock: a hung writer shows here
        true
    }));

    pulse::spawn(Arc::downgrade(&daemon));
    let stop = CancellationToken::new();
    let http = match daemon.settings.http_listen {
        Some(address) => Some(
            http::start(
                address,
                http::HttpState {
                    daemon: daemon.clone(),
                    tokens: daemon.http_tokens.clone(),
                    stop: stop.clone(),
                    webhook: Arc::new(http::tradingview::Limits::new(
                        daemon.settings.tradingview.rate_limit_per_minute,
                    )),
                },
            )
            .await?,
        ),
        None => None,
    };
    info!(socket = %socket.path.display(), pid = std::process::id(), version = env!("CARGO_PKG_VERSION"), "memd is ready");
    systemd::notify_ready(&format!(
        "serving {} strategies on {}",
        daemon.registry.len(),
        socket.path.display()
    ));

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
    daemon.scheduler.shutdown().await;
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
    let registry = daemon.registry.clone();
    let _ = tokio::task::spawn_blocking(move || registry.flush_live_summaries()).await;
    info!("stopped");
    Ok(())
}

/// How often the live-trading summaries in the metadata catch up with the trade logs.
const LIVE_SUMMARY_INTERVAL: Duration = Duration::from_secs(2);

fn spawn_live_summary_flusher(registry: Arc<Registry>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LIVE_SUMMARY_INTERVAL);
        loop {
            tick.tick().await;
            let registry = registry.clone();
            let _ = tokio::task::spawn_blocking(move || registry.flush_live_summaries()).await;
        }
    });
}

/// What [`Daemon::answer_now`] could do with a request.
pub enum Now {
    Answered(Result<Answer, RpcError>),
    /// It needs the disk, a lock that may wait, or another task: answer it with
    /// [`Daemon::handle`].
    Later(Request),
}

/// A request's result, serialized once: the answer's line embeds it as it is.
pub type Answer = Box<serde_json::value::RawValue>;

/// Serializes a result straight to JSON text (building a `Value` tree first, then
/// serializing and dropping it, was a tenth of memd's CPU under socket-load).
fn encode<T: serde::Serialize>(value: T) -> Result<Answer, RpcError> {
    serde_json::value::to_raw_value(&value)
        .map_err(|e| RpcError::internal(format!("cannot encode the result: {e}")))
}

/// `strategies.recommendations`: the conditions given, else the computed ones.
pub(crate) fn recommendations(
    ml: &ml::service::MlService,
    registry: &Registry,
    p: mem_protocol::recommend::MarketConditions,
) -> Result<mem_protocol::recommend::Recommendations, RpcError> {
    let conditions = if p.trend.is_none() && p.volatility.is_none() {
        let report = ml.conditions(Default::default()).map_err(|e| {
            RpcError::new(
                mem_protocol::ErrorCode::Unavailable,
                format!(
                    "cannot compute the market conditions ({}); pass `trend` (bullish, bearish, ranging, neutral) and `volatility` (low, medium, high)",
                    e.message
                ),
            )
        })?;
        recommend::computed_conditions(report, p.vix)
    } else {
        AppliedConditions {
            trend: p.trend.unwrap_or(Trend::Neutral),
            volatility: p.volatility.unwrap_or(Volatility::Medium),
            vix: p.vix,
            indicators: p.indicators,
            source: ConditionsSource::Request,
            computed: None,
        }
    };
    Ok(recommend::recommend(
        &registry.summaries(),
        conditions,
        p.limit,
    ))
}

/// `strategies.recommendations.quick`: a trend and a volatility, nothing computed.
pub(crate) fn quick_recommendations(
    registry: &Registry,
    p: mem_protocol::recommend::QuickConditions,
) -> mem_protocol::recommend::Recommendations {
    let conditions = AppliedConditions {
        trend: p.trend.unwrap_or(Trend::Neutral),
        volatility: p.volatility.unwrap_or(Volatility::Medium),
        vix: None,
        indicators: Default::default(),
        source: ConditionsSource::Request,
        computed: None,
    };
    recommend::recommend(&registry.summaries(), conditions, p.limit)
}

/// Runs one memory request.
fn dispatch_mem(daemon: &Daemon, request: Request) -> Result<Answer, RpcError> {
    match request {
        Request::MemEnhance(p) => encode(enhance_signal(daemon, p)?.0),
        Request::MemDecide(p) => encode(decide_signal(daemon, p)?.0),
        Request::MemOutcome(p) => {
            for (field, v) in [
                ("exitPrice", p.exit_price),
                ("pnl", p.pnl),
                ("pnlPct", p.pnl_pct),
            ] {
                if !v.is_finite() {
                    return Err(RpcError::invalid_params(
                        "mem.outcome",
                        format!("field `{field}`: must be a finite number"),
                    ));
                }
            }
            encode(daemon.memory.outcome(
                mem::service::NewOutcome {
                    decision_id: p.decision_id,
                    exit_price: p.exit_price,
                    pnl: p.pnl,
                    pnl_pct: p.pnl_pct,
                    closed_at: p.closed_at.unwrap_or_else(Utc::now),
                },
                mem::store::Durability::Sync,
                true,
            )?)
        }
        Request::MemParameters(_) => encode(daemon.memory.parameters()?),
        Request::MemPatterns(p) => encode(daemon.memory.patterns(&p)),
        other => Err(RpcError::internal(format!(
            "`{}` is answered elsewhere",
            other.method()
        ))),
    }
}

/// `mem.decide`, and a TradingView alert (`http::tradingview`): the signal enhanced (see
/// [`enhance_signal`]), then logged at `price` in both decision logs and announced
/// (`decision.logged`). Answers the decision and the enhanced signal it was made from.
pub(crate) fn decide_signal(
    daemon: &Daemon,
    p: mem_protocol::mem::DecideParams,
) -> Result<
    (
        mem_protocol::mem::Decision,
        mem_protocol::mem::EnhancedSignal,
    ),
    RpcError,
> {
    if !(p.price.is_finite() && p.price > 0.0) {
        return Err(RpcError::invalid_params(
            "mem.decide",
            format!("field `price`: must be above 0, got {}", p.price),
        ));
    }
    let (enhanced, signature) = enhance_signal(daemon, p.enhance.clone())?;
    let d = daemon
        .memory
        .decide(
            mem::service::NewDecision {
                strategy: p.enhance.signal.strategy.clone(),
                enhanced: enhanced.clone(),
                price: p.price,
                at: Utc::now(),
                signature,
            },
            mem::store::Durability::Sync,
            true,
        )
        .map_err(|e| RpcError::internal(format!("memory files: {e}")))?;
    Ok((d, enhanced))
}

/// `mem.enhance`: the ML prediction, the volatility and the market-state signature come
/// from the symbol's candles when the caller does not give them. Answers the enhanced
/// signal and the signature it was matched on.
fn enhance_signal(
    daemon: &Daemon,
    p: mem_protocol::mem::EnhanceParams,
) -> Result<(mem_protocol::mem::EnhancedSignal, Option<String>), RpcError> {
    let started = Instant::now();
    let (ml, settings) = (&daemon.ml, daemon.memory.settings());
    let metrics = daemon.memory.metrics();
    let method = "mem.enhance";
    let s = &p.signal;
    if !(0.0..=1.0).contains(&s.confidence) {
        return Err(RpcError::invalid_params(
            method,
            format!(
                "field `signal.confidence`: must be within 0 and 1, got {}",
                s.confidence
            ),
        ));
    }
    let ml_input = match (p.ml_confidence, p.ml_direction.clone()) {
        (Some(c), Some(d)) if (0.0..=1.0).contains(&c) && (d == "bullish" || d == "bearish") => {
            Some((c, d))
        }
        (Some(_), _) => {
            return Err(RpcError::invalid_params(
                method,
                "fields `mlConfidence` (0 to 1) and `mlDirection` (bullish or bearish) go together",
            ));
        }
        (None, _) => {
            let asked = Instant::now();
            let prediction = ml
                .predict(mem_protocol::ml::PredictParams {
                    symbol: Some(s.symbol.clone()),
                    ..Default::default()
                })
                .ok();
            // Only predictions a model made count (none without a model or candles).
            if prediction.is_some() {
                metrics.prediction.record(asked.elapsed());
            }
            prediction.map(|pr| (pr.confidence, pr.direction))
        }
    };
    if let Some(pattern) = &p.pattern {
        if !(0.0..=1.0).contains(&pattern.win_rate) {
            return Err(RpcError::invalid_params(
                method,
                "field `pattern.winRate`: must be within 0 and 1",
            ));
        }
    }
    let volatility_pct = match p.volatility_pct {
        Some(v) if v.is_finite() && v > 0.0 => v,
        Some(v) => {
            return Err(RpcError::invalid_params(
                method,
                format!("field `volatilityPct`: must be above 0, got {v}"),
            ));
        }
        None => ml
            .conditions(mem_protocol::recommend::ConditionsParams {
                pair: Some(s.symbol.clone()),
                timeframe: None,
            })
            .ok()
            .and_then(|c| c.indicators.get("atrPct").copied())
            .unwrap_or(settings.reference_volatility_pct),
    };
    let signature = match p.signature.clone() {
        Some(sig) if sig.trim().is_empty() => {
            return Err(RpcError::invalid_params(
                method,
                "field `signature`: must not be empty",
            ));
        }
        Some(sig) => Some(sig),
        None => ml.recent_candles(&s.symbol).and_then(|candles| {
            mem::patterns::signature_of_candles(
                s.action,
                &candles,
                settings.reference_volatility_pct,
            )
        }),
    };
    let enhanced = daemon.memory.enhance(&mem::service::EnhanceRequest {
        signal: s.clone(),
        ml: ml_input,
        pattern: p.pattern.clone(),
        volatility_pct,
        signature: signature.clone(),
    });
    metrics.enhancement.record(started.elapsed());
    Ok((enhanced, signature))
}

/// Runs one model request.
fn dispatch_ml(ml: &ml::service::MlService, request: Request) -> Result<Answer, RpcError> {
    match request {
        Request::MarketConditionsNow(p) => encode(ml.conditions(p)?),
        Request::MlTrain(p) => encode(ml.train(p)?),
        Request::MlStatus(_) => encode(ml.status()),
        Request::MlHistory(_) => encode(ml.history()),
        Request::MlPromote(p) => encode(ml.promote(p)?),
        Request::MlRollback(p) => encode(ml.rollback(p)?),
        Request::MlPredict(p) => encode(ml.predict(p)?),
        other => Err(RpcError::internal(format!(
            "`{}` is answered elsewhere",
            other.method()
        ))),
    }
}

/// Runs one registry request.
fn dispatch_registry(
    registry: &Registry,
    request: Request,
    caller: &Caller,
) -> Result<Answer, RpcError> {
    let method = request.method();
    let fail = |e: registry::RegistryError| e.into_rpc(method);
    match request {
        Request::StrategiesList(params) => {
            for (field, value) in [
                ("minSharpe", params.min_sharpe),
                ("minWinRate", params.min_win_rate),
            ] {
                if value.is_some_and(|v| !v.is_finite()) {
                    return Err(RpcError::invalid_params(
                        method,
                        format!("field `{field}`: must be a finite number"),
                    ));
                }
            }
            encode(registry.list(&params))
        }
        Request::StrategiesGet(p) => encode(registry.get(p.id).map_err(fail)?),
        Request::StrategiesRegister(p) => encode(registry.register(p, caller).map_err(fail)?),
        Request::StrategiesUpdate(p) => encode(registry.update(p, caller).map_err(fail)?),
        Request::StrategiesDeprecate(p) => encode(registry.deprecate(p, caller).map_err(fail)?),
        Request::StrategiesSetStatus(p) => encode(registry.set_status(p, caller).map_err(fail)?),
        Request::StrategiesTags(p) => encode(registry.tags(p, caller).map_err(fail)?),
        Request::StrategiesRelated(p) => encode(registry.related(p).map_err(fail)?),
        Request::StrategiesLink(p) => encode(registry.link(p, caller).map_err(fail)?),
        Request::StrategiesUnlink(p) => encode(registry.unlink(p, caller).map_err(fail)?),
        Request::VersionsCreate(p) => encode(registry.create_version(p, caller).map_err(fail)?),
        Request::VersionsList(p) => encode(registry.versions(p.id).map_err(fail)?),
        Request::VersionsGet(p) => encode(registry.version(p).map_err(fail)?),
        Request::TradesRecord(p) => encode(registry.record_trades(p, caller).map_err(fail)?),
        Request::TradesList(p) => encode(registry.list_trades(p).map_err(fail)?),
        Request::Performance(p) => encode(registry.performance(p).map_err(fail)?),
        Request::Compare(p) => encode(registry.compare(p).map_err(fail)?),
        Request::ParametersHistory(p) => encode(registry.parameter_history(p).map_err(fail)?),
        Request::MemMarkEnhanced(p) => encode(registry.mark_enhanced(p, caller).map_err(fail)?),
        Request::MemLearnedPatterns(p) => {
            encode(registry.learned_patterns(p, caller).map_err(fail)?)
        }
        Request::Import(p) => encode(registry.import(p, caller)),
        Request::Audit(p) => encode(registry.audit_tail(p).map_err(fail)?),
        Request::StrategiesRecommendationsQuick(p) => encode(quick_recommendations(registry, p)),
        // Everything else is routed in `Daemon::handle` before it gets here.
        _ => Err(RpcError::internal(format!(
            "`{method}` is answered elsewhere"
        ))),
    }
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
