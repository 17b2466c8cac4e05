//! One road for every request. The socket ([`crate::server`]), the HTTP API and the
//! TradingView webhook ([`crate::http`]) hand their requests to [`route`], which says in
//! one exhaustive `match` (no catch-all: a method nobody answers does not compile) which
//! function answers each.
//!
//! How a request is answered is part of its route ([`Work`]): from memory at once, on
//! the caller's task (a hop to another thread would cost more than the work); on a
//! blocking thread when it touches the disk or computes; or awaited when it waits on bots
//! or tasks. `hello` and `events.subscribe` belong to the connection.

use crate::registry::{Caller, RegistryError};
use crate::{Daemon, handlers};
use mem_protocol::deploy::StartedBy;
use mem_protocol::methods::{Method, Response as R};
use mem_protocol::{Access, Request, RpcError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Who asks: what they may do, and who to name in the audit log.
#[derive(Debug, Clone)]
pub struct Asker {
    pub access: Access,
    pub caller: Caller,
}

/// A request's answer, or the error that is its answer.
pub type Answer = Result<R, RpcError>;

/// How a request is answered.
pub enum Work {
    /// Already answered, from memory (boxed: a response is up to a few KB).
    Now(Box<Answer>),
    /// Reads files or computes: to run on a blocking thread.
    Blocking(Box<dyn FnOnce() -> Answer + Send>),
    /// Waits on bots, jobs or the disk through async code.
    Async(Pin<Box<dyn Future<Output = Answer> + Send>>),
    /// `hello` and `events.subscribe`: the connection's own.
    Connection(Box<Request>),
}

impl Work {
    /// Answers it here and now, wherever the work runs.
    pub async fn finish(self, method: &'static str) -> Answer {
        match self {
            Work::Now(answer) => *answer,
            Work::Blocking(work) => tokio::task::spawn_blocking(work)
                .await
                .unwrap_or_else(|e| Err(RpcError::internal(format!("`{method}` failed: {e}")))),
            Work::Async(work) => work.await,
            Work::Connection(request) => Err(RpcError::invalid_request(format!(
                "`{}` is answered on a socket connection only",
                request.method()
            ))),
        }
    }
}

/// Calls a method in-process (the HTTP API, the webhook): the same route as the socket's,
/// typed. The caller has checked that `asker` may call it.
pub async fn call<M: Method>(
    daemon: &Arc<Daemon>,
    params: M::Params,
    asker: Asker,
) -> Result<M::Result, RpcError> {
    let answer = route(daemon, M::request(params), asker)
        .finish(M::NAME)
        .await?;
    M::result(answer)
        .ok_or_else(|| RpcError::internal(format!("`{}` answered another method", M::NAME)))
}

fn now(answer: Answer) -> Work {
    Work::Now(Box::new(answer))
}

fn blocking(daemon: &Arc<Daemon>, work: impl FnOnce(&Daemon) -> Answer + Send + 'static) -> Work {
    let daemon = daemon.clone();
    Work::Blocking(Box::new(move || work(&daemon)))
}

fn awaited<F, Fut>(daemon: &Arc<Daemon>, work: F) -> Work
where
    F: FnOnce(Arc<Daemon>) -> Fut,
    Fut: Future<Output = Answer> + Send + 'static,
{
    Work::Async(Box::pin(work(daemon.clone())))
}

/// A registry error as the answer of `method`.
fn registry<T>(method: &'static str, result: Result<T, RegistryError>, wrap: fn(T) -> R) -> Answer {
    result.map(wrap).map_err(|e| e.into_rpc(method))
}

/// Which function answers `request`, and how; an action is recorded in the audit of
/// actions once it has ended.
pub fn route(d: &Arc<Daemon>, request: Request, asker: Asker) -> Work {
    match crate::audit::ActionAudit::begin(&request, &asker.caller) {
        None => answer(d, request, asker),
        Some(pending) => audited(d, pending, answer(d, request, asker)),
    }
}

/// `work`, recording its action once it has ended (however it runs).
fn audited(d: &Arc<Daemon>, pending: crate::audit::Pending, work: Work) -> Work {
    let actions = d.actions.clone();
    match work {
        Work::Now(answer) => {
            actions.end(pending, &*answer);
            Work::Now(answer)
        }
        Work::Blocking(work) => Work::Blocking(Box::new(move || {
            let answer = work();
            actions.end(pending, &answer);
            answer
        })),
        Work::Async(work) => Work::Async(Box::pin(async move {
            let answer = work.await;
            // The line is synced to disk: not on the runtime's thread.
            tokio::task::spawn_blocking(move || {
                actions.end(pending, &answer);
                answer
            })
            .await
            .unwrap_or_else(|e| {
                Err(RpcError::internal(format!(
                    "recording the action failed: {e}"
                )))
            })
        })),
        Work::Connection(request) => Work::Connection(request),
    }
}

/// Which function answers `request`, and how.
#[expect(
    clippy::too_many_lines,
    reason = "one flat arm per method of the protocol (60): split, it would hide which function answers which request"
)]
fn answer(d: &Arc<Daemon>, request: Request, asker: Asker) -> Work {
    let method = request.method();
    let Asker { access, caller } = asker;
    match request {
        Request::Hello(_) | Request::EventsSubscribe(_) => Work::Connection(Box::new(request)),
        // The daemon.
        Request::DaemonStatus(_) => now(Ok(R::DaemonStatus(handlers::status(d, access)))),
        Request::DaemonStop(_) => now(Ok(R::DaemonStop(handlers::stop(d, &caller)))),
        Request::MemMetrics(_) => now(Ok(R::MemMetrics(handlers::mem_metrics(d)))),
        Request::MemKeyRotate(_) => blocking(d, |d| d.memory.rotate_key().map(R::MemKeyRotate)),
        Request::HttpToken(p) => blocking(d, move |d| handlers::http_token(d, p).map(R::HttpToken)),
        Request::HttpTokensList(_) => now(Ok(R::HttpTokensList(handlers::http_tokens_list(d)))),
        Request::HttpTokensRotate(p) => blocking(d, move |d| {
            handlers::http_tokens_rotate(d, p).map(R::HttpTokensRotate)
        }),
        Request::HttpTokensRevoke(p) => blocking(d, move |d| {
            handlers::http_tokens_revoke(d, p).map(R::HttpTokensRevoke)
        }),
        Request::AlertsTest(p) => now(d.alerts.test(p).map(R::AlertsTest)),
        Request::AlertsHistory(p) => {
            blocking(d, move |d| d.alerts.history(p).map(R::AlertsHistory))
        }
        Request::AuditActions(p) => blocking(d, move |d| d.actions.list(&p).map(R::AuditActions)),
        Request::DaemonBackup(p) => blocking(d, move |d| {
            crate::backup::backup(&d.backup_sources(), p).map(R::DaemonBackup)
        }),
        // The registry: reads from memory answer at once; the rest reads or writes files.
        Request::StrategiesList(p) => now(handlers::strategies_list(d, &p)),
        Request::StrategiesGet(p) => match d.registry.get_cached(p.id) {
            Some(detail) => now(Ok(R::StrategiesGet(detail))),
            None => blocking(d, move |d| {
                registry(method, d.registry.get(p.id), R::StrategiesGet)
            }),
        },
        Request::StrategiesRecommendationsQuick(p) => now(Ok(R::StrategiesRecommendationsQuick(
            handlers::quick_recommendations(d, p),
        ))),
        Request::StrategiesRecommendations(p) => blocking(d, move |d| {
            handlers::recommendations(d, p).map(R::StrategiesRecommendations)
        }),
        Request::StrategiesRegister(p) => blocking(d, move |d| {
            registry(
                method,
                d.registry.register(p, &caller),
                R::StrategiesRegister,
            )
        }),
        Request::StrategiesUpdate(p) => blocking(d, move |d| {
            registry(method, d.registry.update(p, &caller), R::StrategiesUpdate)
        }),
        Request::StrategiesDeprecate(p) => blocking(d, move |d| {
            registry(
                method,
                d.registry.deprecate(p, &caller),
                R::StrategiesDeprecate,
            )
        }),
        Request::StrategiesSetStatus(p) => blocking(d, move |d| {
            registry(
                method,
                d.registry.set_status(p, &caller),
                R::StrategiesSetStatus,
            )
        }),
        Request::StrategiesTags(p) => blocking(d, move |d| {
            registry(method, d.registry.tags(p, &caller), R::StrategiesTags)
        }),
        Request::StrategiesRelated(p) => blocking(d, move |d| {
            registry(method, d.registry.related(p), R::StrategiesRelated)
        }),
        Request::StrategiesLink(p) => blocking(d, move |d| {
            registry(method, d.registry.link(p, &caller), R::StrategiesLink)
        }),
        Request::StrategiesUnlink(p) => blocking(d, move |d| {
            registry(method, d.registry.unlink(p, &caller), R::StrategiesUnlink)
        }),
        Request::VersionsCreate(p) => blocking(d, move |d| {
            registry(
                method,
                d.registry.create_version(p, &caller),
                R::VersionsCreate,
            )
        }),
        Request::VersionsList(p) => blocking(d, move |d| {
            registry(method, d.registry.versions(p.id), R::VersionsList)
        }),
        Request::VersionsGet(p) => blocking(d, move |d| {
            registry(method, d.registry.version(p), R::VersionsGet)
        }),
        Request::VersionsApprove(p) => blocking(d, move |d| {
            registry(
                method,
                d.registry.approve_version(p, &caller),
                R::VersionsApprove,
            )
        }),
        Request::RegistryMigrate(p) => blocking(d, move |d| {
            registry(method, d.registry.migrate(p), R::RegistryMigrate)
        }),
        Request::TradesRecord(p) => blocking(d, move |d| {
            registry(
                method,
                d.registry.record_trades(p, &caller),
                R::TradesRecord,
            )
        }),
        Request::TradesList(p) => blocking(d, move |d| {
            registry(method, d.registry.list_trades(p), R::TradesList)
        }),
        Request::Performance(p) => blocking(d, move |d| {
            registry(method, d.registry.performance(p), R::Performance)
        }),
        Request::Compare(p) => blocking(d, move |d| {
            registry(method, d.registry.compare(p), R::Compare)
        }),
        Request::ParametersHistory(p) => blocking(d, move |d| {
            registry(
                method,
                d.registry.parameter_history(p),
                R::ParametersHistory,
            )
        }),
        Request::MemMarkEnhanced(p) => blocking(d, move |d| {
            registry(
                method,
                d.registry.mark_enhanced(p, &caller),
                R::MemMarkEnhanced,
            )
        }),
        Request::MemLearnedPatterns(p) => blocking(d, move |d| {
            let done = d.registry.learned_patterns(p, &caller);
            registry(method, done, R::MemLearnedPatterns)
        }),
        Request::Import(p) => blocking(d, move |d| Ok(R::Import(d.registry.import(p, &caller)))),
        Request::Audit(p) => blocking(d, move |d| {
            registry(method, d.registry.audit_tail(p), R::Audit)
        }),
        Request::ParametersUpdate(p) => awaited(d, |d| async move {
            handlers::parameters_update(&d, p, caller)
                .await
                .map(R::ParametersUpdate)
        }),
        // Deployments: the supervisor.
        Request::Deployed(p) => now(Ok(R::Deployed(d.supervisor.deployed(p.all)))),
        Request::Logs(p) => awaited(
            d,
            |d| async move { d.supervisor.logs(p).await.map(R::Logs) },
        ),
        Request::Deploy(p) => awaited(d, |d| async move {
            d.supervisor
                .deploy(p, StartedBy::Manual)
                .await
                .map(R::Deploy)
        }),
        Request::Stop(p) => awaited(
            d,
            |d| async move { d.supervisor.stop(p).await.map(R::Stop) },
        ),
        Request::Restart(p) => awaited(d, |d| async move {
            d.supervisor.restart(p).await.map(R::Restart)
        }),
        Request::StopAll(p) => awaited(d, |d| async move {
            Ok(R::StopAll(d.supervisor.stop_all(p).await))
        }),
        Request::Acknowledge(p) => {
            blocking(d, move |d| d.supervisor.acknowledge(p).map(R::Acknowledge))
        }
        Request::Attach(p) => awaited(
            d,
            |d| async move { d.supervisor.attach(p).await.map(R::Attach) },
        ),
        Request::Detach(p) => awaited(
            d,
            |d| async move { d.supervisor.detach(p).await.map(R::Detach) },
        ),
        // MEM.
        Request::MemDecisions(p) => now(Ok(R::MemDecisions(d.memory.decisions(&p)))),
        // At once when the symbol's market inputs are kept (fifty bots at a candle close
        // ask for the same few symbols); else on a thread that reads the candles.
        Request::MemEnhance(p) => {
            match crate::mem::signals::enhance_if_ready(&d.ml, &d.memory, p) {
                Ok(done) => now(done.map(|e| R::MemEnhance(e.signal))),
                Err(p) => blocking(d, move |d| {
                    crate::mem::signals::enhance(&d.ml, &d.memory, *p)
                        .map(|e| R::MemEnhance(e.signal))
                }),
            }
        }
        Request::MemDecide(p) => blocking(d, move |d| {
            let source = caller.client.as_deref().map(str::to_string);
            crate::mem::signals::decide(&d.ml, &d.memory, p, source).map(R::MemDecide)
        }),
        Request::MemOutcome(p) => {
            blocking(d, move |d| handlers::mem_outcome(d, p).map(R::MemOutcome))
        }
        Request::MemParameters(_) => blocking(d, |d| d.memory.parameters().map(R::MemParameters)),
        Request::MemPatterns(p) => blocking(d, move |d| Ok(R::MemPatterns(d.memory.patterns(&p)))),
        // The model and the market: reading files, training computes for seconds.
        Request::MarketConditionsNow(p) => {
            blocking(d, move |d| d.ml.conditions(p).map(R::MarketConditionsNow))
        }
        Request::MarketFeed(p) => blocking(d, move |d| d.supervisor.feed(p).map(R::MarketFeed)),
        Request::MarketRefresh(p) => awaited(d, |d| async move {
            d.scheduler.refresh_now(p).await.map(R::MarketRefresh)
        }),
        Request::MlTrain(p) => blocking(d, move |d| d.ml.train(p).map(R::MlTrain)),
        Request::MlStatus(_) => blocking(d, |d| Ok(R::MlStatus(d.ml.status()))),
        Request::MlHistory(_) => blocking(d, |d| Ok(R::MlHistory(d.ml.history()))),
        Request::MlPromote(p) => blocking(d, move |d| d.ml.promote(p).map(R::MlPromote)),
        Request::MlRollback(p) => blocking(d, move |d| d.ml.rollback(p).map(R::MlRollback)),
        Request::MlPredict(p) => blocking(d, move |d| d.ml.predict(p).map(R::MlPredict)),
        // Scheduled jobs.
        Request::JobsList(_) => awaited(
            d,
            |d| async move { Ok(R::JobsList(d.scheduler.list().await)) },
        ),
        Request::JobsRun(p) => awaited(d, |d| async move {
            d.scheduler.run_now(p).await.map(R::JobsRun)
        }),
        Request::JobsHistory(p) => blocking(d, move |d| d.scheduler.history(p).map(R::JobsHistory)),
        // The queue of heavy work: queued here, run on its own threads and processes.
        Request::BacktestRun(p) => {
            blocking(d, move |d| handlers::backtest_run(d, p).map(R::BacktestRun))
        }
        Request::QueueList(p) => now(Ok(R::QueueList(d.queue.list(p.limit)))),
        Request::QueueCancel(p) => now(d.queue.cancel(&p.id).map(R::QueueCancel)),
        Request::BacktestSave(p) => blocking(d, move |d| {
            handlers::backtest_save(d, p, &caller).map(R::BacktestSave)
        }),
        // The risk guard: a reset writes its state file.
        Request::RiskStatus(_) => now(Ok(R::RiskStatus(d.risk.status()))),
        Request::RiskReset(p) => blocking(d, move |d| {
            let by = caller
                .client
                .as_deref()
                .map(str::to_string)
                .or_else(|| caller.uid.map(|uid| format!("uid {uid}")));
            Ok(R::RiskReset(d.risk.reset(p.reason, by)))
        }),
    }
}
