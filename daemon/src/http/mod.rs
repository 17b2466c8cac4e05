//! The seed's REST API (`/api/mem/strategies...`) over HTTP, for dashboards and scripts.
//!
//! A thin face: every endpoint calls the same registry, supervisor and recommendation
//! code as the socket's methods, and wraps the answer in the seed's envelope
//! `{success, data, message, timestamp}`. Off unless `[http] listen` is set. Every request
//! needs `Authorization: Bearer <token>` (see [`tokens`]); a view-only token reads but
//! cannot deploy or stop. The OpenAPI document is generated from the types (utoipa) and
//! served at `/api/mem/openapi.json`; `/api/mem/events` streams the socket's events as
//! Server-Sent Events. The TradingView webhook ([`tradingview`]) is the one route outside
//! the bearer check: TradingView cannot send headers, so it has a secret of its own. The
//! dashboard's pages ([`dashboard`]) sign a browser in with a token kept in a cookie.

pub mod api;
pub mod dashboard;
pub mod prometheus;
pub mod tokens;
pub mod tradingview;

use crate::Daemon;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mem_protocol::methods::Access;
use std::net::SocketAddr;
use std::sync::Arc;
use tokens::Tokens;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What every handler gets.
#[derive(Clone)]
pub struct HttpState {
    pub daemon: Arc<Daemon>,
    pub tokens: Arc<Tokens>,
    /// Cancelled when memd stops: ends the event streams so shutdown does not wait on them.
    pub stop: CancellationToken,
    /// The TradingView webhook's rate limits.
    pub webhook: Arc<tradingview::Limits>,
}

impl HttpState {
    /// The state of a daemon's HTTP API, its streams ended by `stop`.
    pub fn new(daemon: &Arc<Daemon>, stop: &CancellationToken) -> HttpState {
        HttpState {
            daemon: daemon.clone(),
            tokens: daemon.http_tokens.clone(),
            stop: stop.clone(),
            webhook: Arc::new(tradingview::Limits::new(
                daemon.settings.tradingview.rate_limit_per_minute,
            )),
        }
    }
}

/// Binds the listener (so a taken port fails memd's start, named) and serves on a task
/// until `stop` is cancelled.
pub async fn start(
    address: SocketAddr,
    state: HttpState,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("[http] listen: cannot listen on {address}: {e}"))?;
    if !address.ip().is_loopback() {
        warn!(%address, "the HTTP API listens beyond this machine (allow_remote = true); it speaks plain HTTP: put TLS in front");
    }
    info!(url = %format!("http://{address}/api/mem/strategies"), "HTTP API listening");
    let stop = state.stop.clone();
    let app = router(state);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            warn!(error = %e, "the HTTP API stopped");
        }
    }))
}

/// Every route, behind the token check, but the webhook (its own secret).
pub fn router(state: HttpState) -> Router {
    api::routes()
        .fallback(api::no_such_endpoint)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .merge(tradingview::routes())
        .merge(dashboard::routes())
        .with_state(state)
}

/// Checks the bearer token (or, for a `GET` of the dashboard's page, its session cookie:
/// view level) and hands the access level to the handlers (an extension).
async fn authenticate(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let access = match presented {
        Some(token) => state.tokens.access_of(token),
        None => dashboard::cookie_access(&state, request.method(), request.headers()),
    };
    let Some(access) = access else {
        let message = if presented.is_some() {
            "the bearer token is not one of this daemon's (memctl http token shows it)"
        } else {
            "an Authorization: Bearer <token> header is required (memctl http token shows the token)"
        };
        let mut response = api::failure(StatusCode::UNAUTHORIZED, message.into());
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"memd\""),
        );
        return response;
    };
    request.extensions_mut().insert(access);
    next.run(request).await
}

/// Refuses a view-only token on an endpoint that changes things.
pub(crate) fn require_control(access: Access, what: &str) -> Result<(), api::Failure> {
    if access >= Access::Control {
        return Ok(());
    }
    Err(api::Failure {
        status: StatusCode::FORBIDDEN,
        message: format!("{what} needs a control token; this one is view-only"),
    })
}

impl IntoResponse for api::Failure {
    fn into_response(self) -> Response {
        api::failure(self.status, self.message)
    }
}
