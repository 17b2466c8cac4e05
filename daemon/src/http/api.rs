//! The endpoints, their envelope and the OpenAPI document generated from them.
//!
//! Paths, bodies and messages are the seed's (docs/seed-notes.md §3). Items carry the
//! socket protocol's own types, whose fields include the seed's (`id`, `displayName`,
//! `isDeployed`, ... camelCase) and add a few.

use super::{HttpState, require_control};
use crate::registry::Caller;
use crate::router::{self, Asker};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{SecondsFormat, Utc};
use futures::Stream;
use mem_protocol::deploy::{DeployParams, DeployedParams, DeployedStrategy, StopParams};
use mem_protocol::methods::method;
use mem_protocol::methods::{Access, ListStrategiesParams};
use mem_protocol::recommend::{
    MarketConditions, QuickConditions, Recommendation, Trend, Volatility,
};
use mem_protocol::strategy::{StrategyId, StrategySummary};
use mem_protocol::{ErrorCode, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;
use utoipa::{OpenApi, ToSchema};

/// The seed's envelope (`ApiResponse<T>`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiResponse<T> {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// ISO-8601, UTC.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// Every error: `success: false`, what went wrong, no `data`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub success: bool,
    pub message: String,
    /// Set on 500 only (the internal error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// Deploy options (`DeploymentOptions`); the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentOptions {
    /// Default true: paper trading. Live needs `allow_live` in memd's config too.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Accepted as the seed does; strategy parameters live in the registry.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
}

/// The stop answer, as the seed's guide shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoppedStrategy {
    #[schema(value_type = String, format = Uuid)]
    pub strategy_id: StrategyId,
    /// Always `stopped`.
    pub status: String,
}

/// An error on its way out.
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl From<RpcError> for Failure {
    fn from(e: RpcError) -> Failure {
        let status = match e.code {
            ErrorCode::InvalidParams | ErrorCode::ParseError | ErrorCode::InvalidRequest => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure {
            status,
            message: e.message,
        }
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn bad_request(message: String) -> Failure {
    Failure {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

/// A success envelope.
pub(crate) fn success<T: Serialize>(data: T, message: Option<String>) -> Response {
    Json(ApiResponse {
        success: true,
        data: Some(data),
        message,
        timestamp: now(),
    })
    .into_response()
}

/// An error envelope.
pub fn failure(status: StatusCode, message: String) -> Response {
    let error = (status == StatusCode::INTERNAL_SERVER_ERROR).then(|| message.clone());
    (
        status,
        Json(ApiError {
            success: false,
            message,
            error,
            timestamp: now(),
        }),
    )
        .into_response()
}

pub async fn no_such_endpoint() -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "no such endpoint; the API is described at /api/mem/openapi.json".into(),
    )
}

pub async fn method_not_allowed() -> Response {
    failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method; see /api/mem/openapi.json".into(),
    )
}

fn strategy_id(text: &str) -> Result<StrategyId, Failure> {
    text.parse().map_err(|_| {
        bad_request(format!(
            "path parameter `id`: {text:?} is not a strategy id (a UUID)"
        ))
    })
}

/// A JSON body, or `None` when there is none.
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<Option<T>, Failure> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad_request("body: not UTF-8".into()))?;
    if text.trim().is_empty() || text.trim() == "null" {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        let place = if at == "." {
            "body".to_string()
        } else {
            format!("body field `{at}`")
        };
        bad_request(format!("{place}: {}", e.inner()))
    })?;
    de.end().map_err(|e| bad_request(format!("body: {e}")))?;
    Ok(Some(value))
}

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/mem/strategies", get(list_strategies))
        .route("/api/mem/strategies/deployed", get(deployed))
        .route("/api/mem/strategies/recommendations", post(recommend))
        .route(
            "/api/mem/strategies/recommendations/quick",
            get(recommend_quick),
        )
        .route("/api/mem/strategies/{id}", get(get_strategy))
        .route("/api/mem/strategies/{id}/deploy", post(deploy))
        .route("/api/mem/strategies/{id}/stop", post(stop))
        .route("/api/mem/events", get(events))
        .route("/api/mem/openapi.json", get(openapi_json))
        .route("/metrics", get(super::prometheus::metrics))
}

/// Every strategy in the registry.
#[utoipa::path(get, path = "/api/mem/strategies", tag = "strategies",
    responses(
        (status = 200, description = "`Found {n} strategies in registry`", body = ApiResponse<Vec<StrategySummary>>),
        (status = 401, description = "No or unknown token", body = ApiError),
    ))]
pub async fn list_strategies(
    State(state): State<HttpState>,
    Extension(access): Extension<Access>,
) -> Result<Response, Failure> {
    let params = ListStrategiesParams {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    let list = router::call::<method::StrategiesList>(&state.daemon, params, asker(access)).await?;
    let n = list.strategies.len();
    Ok(success(
        list.strategies,
        Some(format!("Found {n} strategies in registry")),
    ))
}

/// Who an HTTP request is, for the router (no uid: a token, not a peer).
fn asker(access: Access) -> Asker {
    Asker {
        access,
        caller: Caller {
            uid: None,
            client: Some("http".into()),
        },
    }
}

/// One strategy.
#[utoipa::path(get, path = "/api/mem/strategies/{id}", tag = "strategies",
    params(("id" = String, Path, format = Uuid, description = "The strategy's id (a UUID)")),
    responses(
        (status = 200, description = "The strategy", body = ApiResponse<StrategySummary>),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = "No or unknown token", body = ApiError),
        (status = 404, description = "`Strategy {id} not found`", body = ApiError),
    ))]
pub async fn get_strategy(
    State(state): State<HttpState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let id = strategy_id(&id)?;
    let params = mem_protocol::methods::GetStrategyParams { id };
    let detail = router::call::<method::StrategiesGet>(&state.daemon, params, asker(access))
        .await
        .map_err(|e| match e.code {
            ErrorCode::NotFound => Failure {
                status: StatusCode::NOT_FOUND,
                message: format!("Strategy {id} not found"),
            },
            _ => Failure::from(e),
        })?;
    Ok(success(detail.summary, None))
}

/// Deploys a strategy (dry-run unless the body says `dryRun: false` and the config allows live).
#[utoipa::path(post, path = "/api/mem/strategies/{id}/deploy", tag = "deployments",
    params(("id" = String, Path, format = Uuid, description = "The strategy's id (a UUID)")),
    request_body(content = Option<DeploymentOptions>, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "`Successfully deployed strategy {id}`", body = ApiResponse<DeployedStrategy>),
        (status = 400, description = "Bad id or body, or the strategy cannot be deployed", body = ApiError),
        (status = 401, description = "No or unknown token", body = ApiError),
        (status = 403, description = "A view-only token, or live trading (`dryRun: false`) not allowed by memd's config", body = ApiError),
        (status = 404, description = "No such strategy", body = ApiError),
        (status = 409, description = "Already deployed", body = ApiError),
        (status = 503, description = "Freqtrade is not installed", body = ApiError),
    ))]
pub async fn deploy(
    State(state): State<HttpState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Failure> {
    let id = strategy_id(&id)?;
    require_control(access, "deploying")?;
    let options: DeploymentOptions = body(&bytes)?.unwrap_or_default();
    let params = DeployParams {
        id,
        dry_run: options.dry_run.unwrap_or(true),
        port: None,
        parameters: options.parameters,
        native: None,
    };
    let deployed = router::call::<method::Deploy>(&state.daemon, params, asker(access)).await?;
    Ok(success(
        deployed,
        Some(format!("Successfully deployed strategy {id}")),
    ))
}

/// Stops a strategy's deployment.
#[utoipa::path(post, path = "/api/mem/strategies/{id}/stop", tag = "deployments",
    params(("id" = String, Path, format = Uuid, description = "The strategy's id (a UUID)")),
    responses(
        (status = 200, description = "`Successfully stopped strategy {id}`", body = ApiResponse<StoppedStrategy>),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = "No or unknown token", body = ApiError),
        (status = 403, description = "A view-only token", body = ApiError),
        (status = 404, description = "`strategy {id} is not deployed`", body = ApiError),
    ))]
pub async fn stop(
    State(state): State<HttpState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let id = strategy_id(&id)?;
    require_control(access, "stopping")?;
    let params = StopParams {
        id,
        mode: Default::default(),
        deadline_secs: None,
    };
    router::call::<method::Stop>(&state.daemon, params, asker(access)).await?;
    Ok(success(
        StoppedStrategy {
            strategy_id: id,
            status: "stopped".into(),
        },
        Some(format!("Successfully stopped strategy {id}")),
    ))
}

/// Deployments that hold or will hold a process.
#[utoipa::path(get, path = "/api/mem/strategies/deployed", tag = "deployments",
    responses(
        (status = 200, description = "`{n} strategies currently deployed`", body = ApiResponse<Vec<DeployedStrategy>>),
        (status = 401, description = "No or unknown token", body = ApiError),
    ))]
pub async fn deployed(
    State(state): State<HttpState>,
    Extension(access): Extension<Access>,
) -> Result<Response, Failure> {
    let params = DeployedParams { all: false };
    let list = router::call::<method::Deployed>(&state.daemon, params, asker(access))
        .await?
        .deployments;
    let n = list.len();
    Ok(success(
        list,
        Some(format!("{n} strategies currently deployed")),
    ))
}

/// Recommendations for the market conditions given.
#[utoipa::path(post, path = "/api/mem/strategies/recommendations", tag = "recommendations",
    request_body(content = MarketConditions, content_type = "application/json"),
    responses(
        (status = 200, description = "`MEM recommends {n} strategies`", body = ApiResponse<Vec<Recommendation>>),
        (status = 400, description = "No body, or a bad one (the field is named)", body = ApiError),
        (status = 401, description = "No or unknown token", body = ApiError),
    ))]
pub async fn recommend(
    State(state): State<HttpState>,
    Extension(access): Extension<Access>,
    bytes: Bytes,
) -> Result<Response, Failure> {
    let conditions: MarketConditions =
        body(&bytes)?.ok_or_else(|| bad_request("Market conditions are required".into()))?;
    let answer =
        router::call::<method::StrategiesRecommendations>(&state.daemon, conditions, asker(access))
            .await?;
    let list = answer.recommendations;
    let n = list.len();
    Ok(success(
        list,
        Some(format!("MEM recommends {n} strategies")),
    ))
}

/// Recommendations for a trend and a volatility.
#[utoipa::path(get, path = "/api/mem/strategies/recommendations/quick", tag = "recommendations",
    params(
        ("trend" = Option<Trend>, Query, description = "Default neutral"),
        ("volatility" = Option<Volatility>, Query, description = "Default medium"),
        ("limit" = Option<u32>, Query, description = "At most this many"),
    ),
    responses(
        (status = 200, description = "`MEM recommends {n} strategies for {trend} trend with {volatility} volatility`", body = ApiResponse<Vec<Recommendation>>),
        (status = 400, description = "A bad query parameter (named)", body = ApiError),
        (status = 401, description = "No or unknown token", body = ApiError),
    ))]
pub async fn recommend_quick(
    State(state): State<HttpState>,
    Extension(access): Extension<Access>,
    query: Result<Query<QuickConditions>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(quick) = query.map_err(|e| bad_request(format!("query: {}", e.body_text())))?;
    let (trend, volatility) = (
        quick.trend.unwrap_or(Trend::Neutral),
        quick.volatility.unwrap_or(Volatility::Medium),
    );
    let list =
        router::call::<method::StrategiesRecommendationsQuick>(&state.daemon, quick, asker(access))
            .await?
            .recommendations;
    let n = list.len();
    Ok(success(
        list,
        Some(format!(
            "MEM recommends {n} strategies for {trend} trend with {volatility} volatility"
        )),
    ))
}

/// The socket's events, as Server-Sent Events: `id` is the event's sequence number,
/// `event` its name, `data` the same JSON a socket subscriber gets.
#[utoipa::path(get, path = "/api/mem/events", tag = "events",
    responses(
        (status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or unknown token", body = ApiError),
    ))]
pub async fn events(
    State(state): State<HttpState>,
) -> Sse<impl Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let (mut rx, _) = state.daemon.bus.subscribe();
    let stop = state.stop.clone();
    let stream = async_stream(move |yielder| async move {
        loop {
            let published = tokio::select! {
                _ = stop.cancelled() => return,
                next = rx.recv() => next,
            };
            match published {
                Ok(published) => {
                    if let Some(event) = sse_event(&published) {
                        if !yielder.send(event).await {
                            return;
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    // As on the socket: a reader this far behind is dropped, told why.
                    let _ = yielder
                        .send(SseEvent::default().event("dropped").data(format!(
                            "this stream fell {missed} events behind and is closed; reconnect"
                        )))
                        .await;
                    return;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// One published event as SSE: the notification's method is the event's name, its
/// params (seq, at, data) the data.
fn sse_event(published: &crate::bus::Published) -> Option<SseEvent> {
    let line: Value = serde_json::from_slice(&published.line).ok()?;
    let name = line.get("method")?.as_str()?;
    let params = line.get("params")?;
    Some(
        SseEvent::default()
            .id(published.seq.to_string())
            .event(name)
            .data(params.to_string()),
    )
}

/// A stream fed by a producer task through a small channel (ends when the task does or
/// the client goes away).
fn async_stream<F, Fut>(
    producer: F,
) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>>
where
    F: FnOnce(Yielder) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(producer(Yielder(tx)));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    })
}

/// The producer's end of [`async_stream`].
struct Yielder(tokio::sync::mpsc::Sender<SseEvent>);

impl Yielder {
    /// False once the client is gone.
    async fn send(&self, event: SseEvent) -> bool {
        self.0.send(event).await.is_ok()
    }
}

/// This document.
#[utoipa::path(get, path = "/api/mem/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json", body = Object),
        (status = 401, description = "No or unknown token", body = ApiError),
    ))]
pub async fn openapi_json() -> Response {
    Json(openapi()).into_response()
}

/// The OpenAPI document, generated from the handlers and types above.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "memd HTTP API", description = "The seed's MEM strategy REST API, served by memd. Every request needs `Authorization: Bearer <token>` (`memctl http token`), but the TradingView webhook's, which carry the webhook's secret (`memctl http token --webhook`) in the body or the URL."),
    paths(list_strategies, get_strategy, deploy, stop, deployed, recommend, recommend_quick, events, openapi_json, super::prometheus::metrics, super::tradingview::tradingview),
    components(schemas(ApiError, DeploymentOptions, StoppedStrategy, super::tradingview::TradingViewAlert, super::tradingview::AlertOutcome, super::tradingview::Forwarded)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// Declares the bearer scheme every path is under.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
