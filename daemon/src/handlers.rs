//! The answers that are more than one subsystem's call: they check a request's fields,
//! combine subsystems, or read the daemon's own state. [`crate::router`] says which
//! request each answers; the HTTP API reaches them through it.

use crate::Daemon;
use crate::registry::Caller;
use chrono::Utc;
use mem_protocol::events::DaemonStopping;
use mem_protocol::http::{HttpToken, HttpTokenParams};
use mem_protocol::mem::{MemMetrics, OutcomeParams, OutcomeReport};
use mem_protocol::methods::{Counts, ListStrategiesParams, Response, StatusReport};
use mem_protocol::recommend::{
    AppliedConditions, ConditionsSource, MarketConditions, QuickConditions, Recommendations, Trend,
    Volatility,
};
use mem_protocol::registry::{ParameterUpdate, UpdateParameterParams};
use mem_protocol::{Access, ErrorCode, RpcError};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// `daemon.stop`: the daemon stops as on SIGTERM once this answer is on its way.
pub fn stop(d: &Daemon, caller: &Caller) -> DaemonStopping {
    let who = match (&caller.client, caller.uid) {
        (Some(client), Some(uid)) => format!("{client} (uid {uid})"),
        (Some(client), None) => client.to_string(),
        (None, Some(uid)) => format!("a client with uid {uid}"),
        (None, None) => "a client".to_string(),
    };
    let reason = format!("daemon.stop asked by {who}");
    tracing::info!(%reason, "stop asked");
    d.stop_request.ask(reason.clone());
    DaemonStopping { reason }
}

/// `daemon.status` for a caller with `access`.
pub fn status(d: &Daemon, access: Access) -> StatusReport {
    let (host, process) = d.health.latest();
    let registry = &d.registry;
    let s = &d.settings;
    StatusReport {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        started_at: d.started_at,
        uptime_secs: d.started.elapsed().as_secs(),
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
            connections: d.connections.load(Ordering::Relaxed),
            subscribers: d.subscribers.load(Ordering::Relaxed),
        },
        host,
        process,
        access,
        risk: d.risk.status(),
        registry_database: registry_database(d),
    }
}

/// The registry's database as this daemon sees it, when it is in one.
fn registry_database(d: &Daemon) -> Option<mem_protocol::methods::RegistryDatabase> {
    let crate::registry::config::Backend::Postgres(pg) = &d.settings.registry else {
        return None;
    };
    let (reachable, down_since, problem) = match d.registry.health() {
        crate::registry::backend::Health::Up => (true, None, None),
        crate::registry::backend::Health::Down { since, why } => (false, Some(since), Some(why)),
    };
    Some(mem_protocol::methods::RegistryDatabase {
        database: crate::registry::postgres::target_of(&pg.url),
        server: pg.server.clone(),
        reachable,
        down_since,
        problem,
    })
}

/// `mem.metrics`: the daemon's figures ([`crate::metrics`]), the learned strategies, the
/// running bots' polls.
pub fn mem_metrics(d: &Daemon) -> MemMetrics {
    let active = d.supervisor.active_ids();
    let mut m = d.metrics.snapshot(d.memory.learned_counts(), &active);
    m.uptime_secs = d.started.elapsed().as_secs();
    m
}

/// `/metrics`: [`mem_metrics`] and a few daemon figures as Prometheus text.
pub fn prometheus_metrics(d: &Daemon) -> String {
    let m = mem_metrics(d);
    let mut text = crate::metrics::prometheus_text(
        &m,
        &crate::metrics::DaemonFigures {
            version: env!("CARGO_PKG_VERSION").into(),
            strategies: d.registry.len(),
            deployments_active: d.supervisor.active_ids().len(),
        },
    );
    text.push_str(&d.alerts.prometheus());
    text
}

/// `http.tokens.list`: every credential's name and scope.
pub fn http_tokens_list(d: &Daemon) -> mem_protocol::http::TokenList {
    mem_protocol::http::TokenList {
        tokens: d
            .http_tokens
            .list()
            .into_iter()
            .map(|t| mem_protocol::http::TokenInfo {
                name: t.name,
                scope: t.scope.into(),
                issued_at: t.issued_at,
                previous_accepted_until: t.previous_until,
            })
            .collect(),
    }
}

/// `http.tokens.rotate`: a new value for one credential (the webhook's old secret accepted
/// for its grace period).
pub fn http_tokens_rotate(
    d: &Daemon,
    p: mem_protocol::http::RotateTokenParams,
) -> Result<HttpToken, RpcError> {
    const METHOD: &str = "http.tokens.rotate";
    let grace = match (p.name.as_str(), p.grace_secs) {
        ("webhook", secs) => {
            chrono::Duration::seconds(secs.unwrap_or(3_600).min(30 * 86_400) as i64)
        }
        (_, Some(_)) => {
            return Err(RpcError::invalid_params(
                METHOD,
                "field `graceSecs`: only the webhook's secret has a grace period; a bearer token is refused as soon as it is rotated",
            ));
        }
        (_, None) => chrono::Duration::zero(),
    };
    let (token, scope) = d
        .http_tokens
        .rotate(&p.name, grace)
        .map_err(|e| RpcError::invalid_params(METHOD, format!("field `name`: {e:#}")))?;
    Ok(HttpToken {
        token,
        access: scope.into(),
        url: None,
    })
}

/// `http.tokens.revoke`: a view token removed; answers the credentials left.
pub fn http_tokens_revoke(
    d: &Daemon,
    p: mem_protocol::http::RevokeTokenParams,
) -> Result<mem_protocol::http::TokenList, RpcError> {
    d.http_tokens.revoke(&p.name).map_err(|e| {
        RpcError::invalid_params("http.tokens.revoke", format!("field `name`: {e:#}"))
    })?;
    Ok(http_tokens_list(d))
}

/// `http.token`: the control token, a new view-only one, or the webhook's secret.
pub fn http_token(d: &Daemon, p: HttpTokenParams) -> Result<HttpToken, RpcError> {
    if p.name.is_some() && !p.view {
        return Err(RpcError::invalid_params(
            "http.token",
            "field `name`: it names a new view token: give `view` too",
        ));
    }
    if p.webhook {
        if p.view {
            return Err(RpcError::invalid_params(
                "http.token",
                "`view` and `webhook` do not go together: the webhook's secret is not a bearer token",
            ));
        }
        return Ok(HttpToken {
            token: d.http_tokens.webhook_secret(),
            access: "webhook".into(),
            url: d
                .settings
                .http_listen
                .filter(|_| d.settings.tradingview.enabled)
                .map(|a| format!("http://{a}{}", crate::http::tradingview::PATH)),
        });
    }
    let (token, access) = if p.view {
        let token = d
            .http_tokens
            .issue_view(p.name.as_deref())
            .map_err(|e| RpcError::internal(format!("cannot save the new token: {e:#}")))?;
        (token, "view")
    } else {
        (d.http_tokens.control(), "control")
    };
    Ok(HttpToken {
        token,
        access: access.into(),
        url: d
            .settings
            .http_listen
            .map(|a| format!("http://{a}/api/mem/strategies")),
    })
}

/// `strategies.list`, its numbers checked.
pub fn strategies_list(d: &Daemon, p: &ListStrategiesParams) -> Result<Response, RpcError> {
    for (field, value) in [("minSharpe", p.min_sharpe), ("minWinRate", p.min_win_rate)] {
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(RpcError::invalid_params(
                "strategies.list",
                format!("field `{field}`: must be a finite number"),
            ));
        }
    }
    Ok(Response::StrategiesList(d.registry.list(p)))
}

/// `strategies.recommendations`: the conditions given, else the computed ones.
pub fn recommendations(d: &Daemon, p: MarketConditions) -> Result<Recommendations, RpcError> {
    let conditions = if p.trend.is_none() && p.volatility.is_none() {
        let report = d.ml.conditions(Default::default()).map_err(|e| {
            RpcError::new(
                ErrorCode::Unavailable,
                format!(
                    "cannot compute the market conditions ({}); pass `trend` (bullish, bearish, ranging, neutral) and `volatility` (low, medium, high)",
                    e.message
                ),
            )
        })?;
        crate::recommend::computed_conditions(report, p.vix)
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
    Ok(crate::recommend::recommend(
        &d.registry.summaries(),
        conditions,
        p.limit,
        d.settings.unmeasured,
    ))
}

/// `strategies.recommendations.quick`: a trend and a volatility, nothing computed.
pub fn quick_recommendations(d: &Daemon, p: QuickConditions) -> Recommendations {
    let conditions = AppliedConditions {
        trend: p.trend.unwrap_or(Trend::Neutral),
        volatility: p.volatility.unwrap_or(Volatility::Medium),
        vix: None,
        indicators: Default::default(),
        source: ConditionsSource::Request,
        computed: None,
    };
    crate::recommend::recommend(
        &d.registry.summaries(),
        conditions,
        p.limit,
        d.settings.unmeasured,
    )
}

/// `strategies.parameters.update`: recorded in the registry first (a blocking write),
/// then applied to what runs (the supervisor).
pub async fn parameters_update(
    d: &Arc<Daemon>,
    p: UpdateParameterParams,
    caller: Caller,
) -> Result<ParameterUpdate, RpcError> {
    let method = "strategies.parameters.update";
    let registry = d.registry.clone();
    let id = p.id;
    let (change, detail) = tokio::task::spawn_blocking(move || {
        let fail = |e: crate::registry::RegistryError| e.into_rpc(method);
        let change = registry.update_parameter(p, &caller).map_err(fail)?;
        let detail = registry.get(id).map_err(fail)?;
        Ok::<_, RpcError>((change, detail))
    })
    .await
    .unwrap_or_else(|e| Err(RpcError::internal(format!("`{method}` failed: {e}"))))?;
    let applied = d
        .supervisor
        .parameter_changed(&detail, &change.parameter_name)
        .await;
    Ok(ParameterUpdate { change, applied })
}

/// `mem.outcome`, its numbers checked.
pub fn mem_outcome(d: &Daemon, p: OutcomeParams) -> Result<OutcomeReport, RpcError> {
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
    d.memory.outcome(
        crate::mem::service::NewOutcome {
            decision_id: p.decision_id,
            exit_price: p.exit_price,
            pnl: p.pnl,
            pnl_pct: p.pnl_pct,
            closed_at: p.closed_at.unwrap_or_else(Utc::now),
            exit_reason: p.exit_reason,
            duration_secs: None,
        },
        crate::mem::store::Durability::Sync,
        true,
    )
}

/// `backtest.run`: checks what to measure, then queues it (the queue runs it when its
/// turn comes; `queue.changed` events follow it).
pub fn backtest_run(
    d: &Daemon,
    p: mem_protocol::backtest::BacktestParams,
) -> Result<mem_protocol::backtest::QueueJob, RpcError> {
    use mem_protocol::backtest::QueueJobKind;
    let method = "backtest.run";
    if p.days.is_some() && p.timerange.is_some() {
        return Err(RpcError::invalid_params(
            method,
            "fields `days` and `timerange`: give one or the other",
        ));
    }
    if p.days == Some(0) {
        return Err(RpcError::invalid_params(
            method,
            "field `days`: must be at least 1",
        ));
    }
    if let Some(range) = &p.timerange {
        crate::backtest::parse_timerange(range)
            .map_err(|e| RpcError::invalid_params(method, format!("field `timerange`: {e}")))?;
    }
    if matches!(p.walk_forward, Some(1)) || p.walk_forward.is_some_and(|n| n > 20) {
        return Err(RpcError::invalid_params(
            method,
            "field `walkForward`: 2 to 20 folds (0 for the configured number)",
        ));
    }
    if p.epochs.is_some_and(|e| !(1..=10_000).contains(&e)) {
        return Err(RpcError::invalid_params(
            method,
            "field `epochs`: 1 to 10,000",
        ));
    }
    let detail = d.registry.get(p.id).map_err(|e| e.into_rpc(method))?;
    crate::backtest::plan_of(&detail).map_err(|why| {
        RpcError::invalid_params(method, format!("strategy {}: {why}", detail.summary.name))
    })?;
    let kind = if p.walk_forward.is_some() {
        QueueJobKind::WalkForward
    } else {
        QueueJobKind::Backtest
    };
    Ok(d.queue
        .submit(kind, p.id, detail.summary.display_name.clone(), p))
}

/// `backtest.save`: the parameters a walk-forward chose, as a new minor version of its
/// strategy (each declared parameter's `value` replaced, others set as found), its result
/// kept on that version. Nothing running changes.
pub fn backtest_save(
    d: &Daemon,
    p: mem_protocol::backtest::BacktestSaveParams,
    caller: &Caller,
) -> Result<mem_protocol::registry::VersionRecord, RpcError> {
    use mem_protocol::backtest::QueueJobState;
    let method = "backtest.save";
    let job = d
        .queue
        .get(&p.job_id)
        .ok_or_else(|| RpcError::not_found(format!("no queue job `{}`", p.job_id)))?;
    let (QueueJobState::Succeeded, Some(result)) = (job.state, job.result.as_ref()) else {
        return Err(RpcError::invalid_params(
            method,
            format!(
                "field `jobId`: job {} did not succeed ({:?})",
                job.id, job.state
            )
            .to_lowercase(),
        ));
    };
    let Some(wf) = &result.walk_forward else {
        return Err(RpcError::invalid_params(
            method,
            format!(
                "field `jobId`: job {} is a backtest: only a walk-forward chooses parameters",
                job.id
            ),
        ));
    };
    let detail = d
        .registry
        .get(job.strategy_id)
        .map_err(|e| e.into_rpc(method))?;
    let mut parameters = detail.metadata.strategy.parameters.clone();
    for (name, found) in &wf.parameters {
        let value = found.get("value").cloned().unwrap_or_else(|| found.clone());
        match parameters.get_mut(name) {
            Some(serde_json::Value::Object(declared)) if declared.contains_key("value") => {
                declared.insert("value".into(), value);
            }
            _ => {
                parameters.insert(name.clone(), value);
            }
        }
    }
    let backtest = match serde_json::to_value(result) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    };
    let changelog = p.changelog.unwrap_or_else(|| {
        format!(
            "parameters of walk-forward job {} ({} folds; out-of-sample {} trades, profit {:+.2}%)",
            job.id,
            wf.folds.len(),
            wf.out_of_sample.trades,
            wf.out_of_sample.profit_pct * 100.0
        )
    });
    d.registry
        .create_version(
            mem_protocol::registry::CreateVersionParams {
                id: job.strategy_id,
                bump: Some(mem_protocol::registry::VersionBump::Minor),
                version: None,
                changelog,
                parameters: Some(parameters),
                backtest,
                code_snapshot: None,
                git_hash: None,
                breaking_changes: None,
                migration_notes: None,
                default_parameters: None,
                test_coverage: None,
                mem_improvement_pct: None,
            },
            caller,
        )
        .map_err(|e| e.into_rpc(method))
}
