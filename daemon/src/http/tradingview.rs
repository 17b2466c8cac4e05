//! The TradingView alert webhook: `POST /api/mem/webhooks/tradingview`.
//!
//! TradingView posts an alert's message, as typed in the alert, to a webhook URL; it
//! cannot add headers, so this endpoint sits outside the bearer-token check and is
//! authenticated by the webhook's own secret (`memctl http token --webhook`, kept in
//! `http/tokens.json`), in the alert's `secret` field or the URL's `?secret=`, compared in
//! constant time and never logged. The message must be JSON:
//!
//! ```json
//! {"secret": "...", "strategy": "freqtrade_macd_hunter", "ticker": "{{exchange}}:{{ticker}}",
//!  "action": "{{strategy.order.action}}", "price": {{close}}}
//! ```
//!
//! An accepted alert is a base signal (`confidence` from the alert, else
//! `[http.tradingview] base_confidence`) that goes through the same path as `mem.decide`
//! ([`crate::decide_signal`]): enhanced for the named strategy (the model on the pair's
//! candles, the strategy's memory on the pair, a learned pattern), logged in both decision
//! logs and announced as `decision.logged`. It is then forwarded to the strategy's
//! Freqtrade bot (`/api/v1/forceenter` for a buy, `/api/v1/forceexit` of the pair's open
//! trades for a sell) when all of these hold, else the answer says which did not:
//!
//! - the enhanced confidence reaches the strategy's threshold: the one the learning loop
//!   set (`parameter_updates.json`, what `actionable` is judged on), else the strategy's
//!   `mem_integration.confidence_threshold`, else `[http.tradingview] confidence_threshold`;
//! - the strategy has a running Freqtrade deployment whose config allows forced entries
//!   (`force_entry_enable: true`, from the strategy's base config or the operator's
//!   `[freqtrade] config_overrides`; asked of the bot itself, `/show_config`);
//! - the bot is in dry-run, or `[http.tradingview] forward_live = true`;
//! - the pair is on the bot's whitelist.
//!
//! Symbols: TradingView's `BINANCE:BTCUSDT` (or `BTCUSDT`, `BTCUSDT.P`, or a Freqtrade pair
//! `BTC/USDT`) is matched, exchange prefix dropped, against the pairs memd knows for the
//! strategy: its deployment section's pairs, then the pairs with candles in the market
//! data directory. Anything else is refused, naming the pairs known.
//!
//! Refusals (a 4xx with the envelope and a log line; nothing is logged as a decision or
//! forwarded): 401 no or a bad secret, 400 a body that is not a JSON object or a missing or
//! bad field, 404 an unknown strategy, 400 an unknown symbol, 413 a body over 16 KiB,
//! 429 over `[http.tradingview] rate_limit_per_minute` (alerts with the right secret
//! count; requests refused before or at the secret's check (a bad secret, a body too big)
//! have a budget of their own, so a flood of them cannot starve real alerts; past either
//! budget one refusal is logged, the rest of the window's are not).

use super::HttpState;
use super::api::{ApiError, ApiResponse, Failure, failure, success};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use mem_protocol::deploy::DeploymentId;
use mem_protocol::mem::{BaseSignal, DecideParams, Decision, EnhanceParams, SignalAction};
use mem_protocol::strategy::{StrategyId, StrategySummary};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use utoipa::ToSchema;

/// Where the webhook is served.
pub const PATH: &str = "/api/mem/webhooks/tradingview";

/// An alert's message is small; anything bigger is refused before it is parsed.
pub const MAX_BODY: usize = 16 * 1024;

/// The rate limit's window.
const WINDOW: Duration = Duration::from_secs(60);

/// Echoed values are cut to this many characters.
const ECHO: usize = 64;

/// The rate limits: alerts with the right secret, and requests with a bad one.
pub struct Limits {
    alerts: Window,
    refused: Window,
}

impl Limits {
    /// `per_minute` of each.
    pub fn new(per_minute: u32) -> Limits {
        Limits {
            alerts: Window::new(per_minute),
            refused: Window::new(per_minute),
        }
    }
}

/// A sliding one-minute window of at most `limit` requests.
struct Window {
    limit: usize,
    /// When the requests in the window came, oldest first; and whether a refusal was
    /// already logged in this window.
    state: Mutex<(VecDeque<Instant>, bool)>,
}

impl Window {
    fn new(limit: u32) -> Window {
        Window {
            limit: limit.max(1) as usize,
            state: Mutex::new((VecDeque::new(), false)),
        }
    }

    /// Counts one request, or answers how many seconds until one fits and whether this is
    /// the first refusal of the window (the one logged).
    fn take(&self, now: Instant) -> Result<(), (u64, bool)> {
        let mut state = self.state.lock().expect("rate limit lock");
        let (times, warned) = &mut *state;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() < self.limit {
            times.push_back(now);
            *warned = false;
            return Ok(());
        }
        let oldest = *times.front().expect("a full window");
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        let first = !*warned;
        *warned = true;
        Err((wait.as_secs_f64().ceil().max(1.0) as u64, first))
    }
}

/// The alert's message, as TradingView sends it (documentation of what is read: the body
/// is parsed field by field so that each problem is named). Other fields are ignored.
#[derive(ToSchema)]
#[schema(example = json!({
    "secret": "<memctl http token --webhook>",
    "strategy": "freqtrade_macd_hunter",
    "ticker": "BINANCE:ETHUSDT",
    "action": "buy",
    "price": 3646.17
}))]
#[allow(dead_code)] // a schema only
pub struct TradingViewAlert {
    /// The webhook's secret (`memctl http token --webhook`), unless the URL carries it as
    /// `?secret=`.
    secret: Option<String>,
    /// The strategy: its id (a UUID) or its name, e.g. `freqtrade_macd_hunter` (also read
    /// from `strategy_id`).
    strategy: String,
    /// TradingView's `{{ticker}}` or `{{exchange}}:{{ticker}}` (`BINANCE:BTCUSDT`), or a
    /// Freqtrade pair (`BTC/USDT`); also read from `symbol`.
    ticker: String,
    /// `buy` or `sell`, any case (TradingView's `{{strategy.order.action}}`).
    action: AlertAction,
    /// The price the alert fired at (TradingView's `{{close}}`): a number above 0, or a
    /// string holding one.
    #[schema(exclusive_minimum = 0.0)]
    price: f64,
    /// The base signal's confidence, 0 to 1 (default `[http.tradingview] base_confidence`).
    #[schema(minimum = 0.0, maximum = 1.0)]
    confidence: Option<f64>,
}

/// What an alert asks for.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // a schema only
enum AlertAction {
    Buy,
    Sell,
}

/// `forwarded`: what was sent to the bot.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Forwarded {
    #[schema(value_type = String, format = Uuid)]
    pub deployment_id: DeploymentId,
    /// `/api/v1/forceenter` or `/api/v1/forceexit`.
    pub endpoint: String,
    pub pair: String,
    /// The trade opened, or the trades closed.
    pub trade_ids: Vec<i64>,
    pub dry_run: bool,
}

/// The answer to an accepted alert: the decision logged, and whether it was forwarded.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertOutcome {
    /// As `decisions.jsonl` holds it (snake_case): its `id`, the enhanced `confidence`
    /// and the `reasoning`.
    pub decision: Decision,
    #[schema(value_type = String, format = Uuid)]
    pub strategy_id: StrategyId,
    /// The strategy's name (what decisions are keyed by).
    pub strategy: String,
    /// The ticker as the alert gave it.
    pub ticker: String,
    /// The pair it was matched to.
    pub symbol: String,
    /// The confidence a forwarded alert needs.
    pub threshold: f64,
    /// Where the threshold comes from: `learned` (the learning loop), `strategy` (its
    /// `mem_integration.confidence_threshold`) or `config` (`[http.tradingview]`).
    pub threshold_source: String,
    /// What was sent to the strategy's bot; null when nothing was.
    pub forwarded: Option<Forwarded>,
    /// Why nothing was forwarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_forwarded_because: Option<String>,
}

/// `?secret=`; other query parameters are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct WebhookQuery {
    #[serde(default)]
    secret: Option<String>,
}

pub fn routes() -> Router<HttpState> {
    Router::new().route(
        PATH,
        post(tradingview).fallback(super::api::method_not_allowed),
    )
}

/// A refusal: the status and message answered, a log line unless `quiet`.
struct Refusal {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    quiet: bool,
}

impl From<Failure> for Refusal {
    fn from(f: Failure) -> Refusal {
        Refusal {
            status: f.status,
            message: f.message,
            retry_after: None,
            quiet: false,
        }
    }
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
        retry_after: None,
        quiet: false,
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, message)
}

/// A JSON value from the request as an error message shows it: a string as itself.
fn shown_value(v: &Value) -> String {
    match v {
        Value::String(s) => shown(s),
        other => shown(&other.to_string()),
    }
}

/// A value from the request, cut for an error message or a log line.
fn shown(text: &str) -> String {
    let mut cut: String = text.chars().take(ECHO).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Receives a TradingView alert: the MEM pipeline for the named strategy, both decision
/// logs and a `decision.logged` event, then the strategy's Freqtrade bot when its config
/// allows forced entries and the enhanced confidence reaches the strategy's threshold.
#[utoipa::path(post, path = "/api/mem/webhooks/tradingview", tag = "webhooks",
    params(("secret" = Option<String>, Query, description = "The webhook's secret (`memctl http token --webhook`), when the alert's body does not carry it")),
    request_body(content = TradingViewAlert, description = "The alert's message. TradingView sends it as typed in the alert, as `application/json` when it is JSON (any content type is read)", content_type = "application/json"),
    security(()),
    responses(
        (status = 200, description = "Logged as a decision; `forwarded` says what the bot was sent, or `notForwardedBecause` why nothing was", body = ApiResponse<AlertOutcome>),
        (status = 400, description = "The body is not a JSON object, a field is missing or bad (named), or the symbol is unknown (the known pairs are named)", body = ApiError),
        (status = 401, description = "No secret, or not this webhook's", body = ApiError),
        (status = 404, description = "No such strategy, or the webhook is off (`[http.tradingview] enabled = false`)", body = ApiError),
        (status = 405, description = "Not a POST", body = ApiError),
        (status = 413, description = "A body over 16 KiB", body = ApiError),
        (status = 429, description = "Over `[http.tradingview] rate_limit_per_minute`", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds until an alert fits in the window again"))),
    ))]
pub async fn tradingview(
    State(state): State<HttpState>,
    query: Result<Query<WebhookQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    match receive(&state, query, &headers, body).await {
        Ok(outcome) => {
            let d = &outcome.decision;
            let message = match (&outcome.forwarded, &outcome.not_forwarded_because) {
                (Some(f), _) => format!(
                    "Alert logged as decision {}; forwarded to deployment {} ({}, trades {:?})",
                    d.id, f.deployment_id, f.endpoint, f.trade_ids
                ),
                (None, reason) => format!(
                    "Alert logged as decision {}; not forwarded: {}",
                    d.id,
                    reason.as_deref().unwrap_or("")
                ),
            };
            success(outcome, Some(message))
        }
        Err(refusal) => {
            if !refusal.quiet {
                warn!(
                    status = refusal.status.as_u16(),
                    reason = %refusal.message,
                    "TradingView alert refused; nothing logged or forwarded"
                );
            }
            let mut response = failure(refusal.status, refusal.message);
            if let Some(secs) = refusal.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

async fn receive(
    state: &HttpState,
    query: WebhookQuery,
    headers: &HeaderMap,
    body: Body,
) -> Result<AlertOutcome, Refusal> {
    let daemon = &state.daemon;
    let settings = daemon.settings.tradingview.clone();
    if !settings.enabled {
        return Err(unauthenticated(
            state,
            refuse(
                StatusCode::NOT_FOUND,
                "the TradingView webhook is off ([http.tradingview] enabled = false)",
            ),
        ));
    }
    let bytes = read_body(headers, body)
        .await
        .map_err(|r| unauthenticated(state, r))?;
    let parsed: Result<Value, serde_json::Error> = serde_json::from_slice(&bytes);
    authenticate(state, &query, parsed.as_ref().ok())?;
    if let Err((secs, first)) = state.webhook.alerts.take(Instant::now()) {
        return Err(Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "more than {} alerts in the last minute ([http.tradingview] rate_limit_per_minute); retry in {secs} s",
                state.webhook.alerts.limit
            ),
            retry_after: Some(secs),
            quiet: !first,
        });
    }
    let alert = parse_alert(parsed, settings.base_confidence).map_err(bad)?;

    let worker = daemon.clone();
    let (alert, resolved) = tokio::task::spawn_blocking(move || {
        let resolved = resolve(&worker, &alert, &settings);
        (alert, resolved)
    })
    .await
    .map_err(|e| {
        Refusal::from(Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the alert failed: {e}"),
        })
    })?;
    let accepted = decide(daemon, alert, resolved?).await?;
    let forwarding = forward(daemon, &accepted, daemon.settings.tradingview.forward_live).await;
    let Accepted {
        decision,
        strategy,
        ticker,
        symbol,
        threshold,
        threshold_source,
        ..
    } = accepted;
    let (forwarded, not_forwarded_because) = match forwarding {
        Ok(f) => (Some(f), None),
        Err(reason) => (None, Some(reason)),
    };
    info!(
        decision = %decision.id,
        strategy = %strategy.name,
        symbol = %symbol,
        action = ?decision.action,
        price = decision.price,
        confidence = decision.confidence,
        threshold,
        forwarded = ?forwarded.as_ref().map(|f| (f.deployment_id.to_string(), f.endpoint.clone(), f.trade_ids.clone())),
        not_forwarded_because = not_forwarded_because.as_deref().unwrap_or(""),
        "TradingView alert"
    );
    Ok(AlertOutcome {
        decision,
        strategy_id: strategy.id,
        strategy: strategy.name.clone(),
        ticker,
        symbol,
        threshold,
        threshold_source: threshold_source.into(),
        forwarded,
        not_forwarded_because,
    })
}

/// The body, at most [`MAX_BODY`] bytes.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let too_big = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is over {} KiB; an alert's message is a small JSON object",
                MAX_BODY / 1024
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_big());
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| too_big())
}

/// The secret, from the URL or the body, compared in constant time.
fn authenticate(
    state: &HttpState,
    query: &WebhookQuery,
    body: Option<&Value>,
) -> Result<(), Refusal> {
    let from_body = body.and_then(|b| b.get("secret")).and_then(Value::as_str);
    let presented: Vec<&str> = [query.secret.as_deref(), from_body]
        .into_iter()
        .flatten()
        .collect();
    // Every presented secret is compared (no early exit on the first).
    let matches = presented
        .iter()
        .fold(false, |ok, s| state.tokens.is_webhook_secret(s) | ok);
    if matches {
        return Ok(());
    }
    let message = if presented.is_empty() {
        "no secret: put the webhook's secret in the alert's `secret` field or in the URL as ?secret= (memctl http token --webhook shows it)"
    } else {
        "the secret is not this webhook's (memctl http token --webhook shows it)"
    };
    Err(unauthenticated(
        state,
        refuse(StatusCode::UNAUTHORIZED, message),
    ))
}

/// A refusal before the secret was checked, or because of it: counted in the budget of
/// such requests, past which it is a 429, logged once a window (a flood of them neither
/// fills the log nor takes the alerts' budget).
fn unauthenticated(state: &HttpState, refusal: Refusal) -> Refusal {
    match state.webhook.refused.take(Instant::now()) {
        Ok(()) => refusal,
        Err((secs, first)) => Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "more than {} refused requests (a bad secret, a body too big) in the last minute; retry in {secs} s",
                state.webhook.refused.limit
            ),
            retry_after: Some(secs),
            quiet: !first,
        },
    }
}

/// An alert, read.
#[derive(Debug, Clone, PartialEq)]
struct Alert {
    strategy: String,
    ticker: String,
    action: SignalAction,
    price: f64,
    confidence: f64,
}

/// The first of `names` present in `o`, with the name it was found under.
fn field<'a>(
    o: &'a Map<String, Value>,
    names: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    names.iter().find_map(|n| o.get(*n).map(|v| (*n, v)))
}

/// A number, or a string holding one (TradingView users often quote `{{close}}`).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|x| x.is_finite())
}

fn text<'a>(
    o: &'a Map<String, Value>,
    names: &[&'static str],
    what: &str,
) -> Result<&'a str, String> {
    match field(o, names) {
        None => Err(format!("field `{}` is required: {what}", names[0])),
        Some((_, Value::String(s))) if !s.trim().is_empty() => Ok(s.trim()),
        Some((name, Value::String(_))) => Err(format!("field `{name}` is empty: {what}")),
        Some((name, other)) => Err(format!(
            "field `{name}` must be a string ({what}), got {}",
            shown_value(other)
        )),
    }
}

/// Reads an alert's fields, naming the first one that is missing or bad.
fn parse_alert(
    parsed: Result<Value, serde_json::Error>,
    base_confidence: f64,
) -> Result<Alert, String> {
    const TEMPLATE: &str = r#"{"secret": "...", "strategy": "freqtrade_macd_hunter", "ticker": "{{ticker}}", "action": "{{strategy.order.action}}", "price": {{close}}}"#;
    let value = parsed.map_err(|e| {
        format!("the body is not JSON ({e}); make the alert's message JSON like {TEMPLATE}")
    })?;
    let Value::Object(o) = value else {
        return Err(format!(
            "the body must be a JSON object like {TEMPLATE}, got {}",
            shown(&value.to_string())
        ));
    };
    let strategy = text(
        &o,
        &["strategy", "strategy_id", "strategyId"],
        "the strategy's id or name, e.g. \"freqtrade_macd_hunter\"",
    )?;
    let ticker = text(
        &o,
        &["ticker", "symbol"],
        "TradingView's {{ticker}}, e.g. \"BINANCE:BTCUSDT\"",
    )?;
    let action_text = text(
        &o,
        &["action"],
        "\"buy\" or \"sell\" (TradingView's {{strategy.order.action}})",
    )?;
    let action = match action_text.to_ascii_lowercase().as_str() {
        "buy" => SignalAction::Buy,
        "sell" => SignalAction::Sell,
        _ => {
            return Err(format!(
                "field `action`: {} is not \"buy\" or \"sell\" (TradingView's {{{{strategy.order.action}}}})",
                shown(action_text)
            ));
        }
    };
    let price = match o.get("price") {
        None => {
            return Err(
                "field `price` is required: the price the alert fired at (TradingView's {{close}})"
                    .into(),
            );
        }
        Some(v) => match number(v) {
            Some(p) if p > 0.0 => p,
            _ => {
                return Err(format!(
                    "field `price` must be a number above 0 (TradingView's {{{{close}}}}), got {}",
                    shown_value(v)
                ));
            }
        },
    };
    let confidence = match o.get("confidence") {
        None | Some(Value::Null) => base_confidence,
        Some(v) => match number(v) {
            Some(c) if (0.0..=1.0).contains(&c) => c,
            _ => {
                return Err(format!(
                    "field `confidence` must be a number within 0 and 1, got {}",
                    shown_value(v)
                ));
            }
        },
    };
    Ok(Alert {
        strategy: strategy.to_string(),
        ticker: ticker.to_string(),
        action,
        price,
        confidence,
    })
}

/// An alert that was logged as a decision.
struct Accepted {
    decision: Decision,
    strategy: StrategySummary,
    ticker: String,
    symbol: String,
    threshold: f64,
    threshold_source: &'static str,
}

/// What an alert names, found: its strategy, its symbol, the threshold to forward at.
struct Resolved {
    strategy: StrategySummary,
    symbol: String,
    threshold: f64,
    threshold_source: &'static str,
}

/// Finds the strategy, maps the symbol and says the threshold (blocking: it lists the
/// market data).
fn resolve(
    daemon: &crate::Daemon,
    alert: &Alert,
    settings: &crate::config::TradingViewConfig,
) -> Result<Resolved, Refusal> {
    let strategy = find_strategy(&daemon.registry, &alert.strategy)?;
    let detail = daemon
        .registry
        .get(strategy.id)
        .map_err(|e| Refusal::from(Failure::from(e.into_rpc("webhooks.tradingview"))))?;
    let meta = &detail.metadata.strategy;
    let mut known = meta
        .deployment
        .as_ref()
        .map(|d| d.pairs())
        .unwrap_or_default();
    for pair in crate::market::candles::list_pairs(daemon.ml.market_dir(), daemon.ml.timeframe()) {
        if !known.contains(&pair) {
            known.push(pair);
        }
    }
    let Some(symbol) = map_ticker(&alert.ticker, &known) else {
        let few: Vec<&str> = known.iter().take(8).map(String::as_str).collect();
        let more = known.len().saturating_sub(few.len());
        return Err(bad(format!(
            "unknown symbol: ticker {} is none of the pairs known for strategy {} ({}{}: its deployment's pairs and those with candles in the market data)",
            shown(&alert.ticker),
            strategy.name,
            if few.is_empty() {
                "none".to_string()
            } else {
                few.join(", ")
            },
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )));
    };
    let (threshold, threshold_source) = match daemon.memory.learned_threshold(&strategy.name) {
        Some(t) => (t, "learned"),
        None => match meta
            .mem_integration
            .extra
            .get("confidence_threshold")
            .and_then(Value::as_f64)
            .filter(|t| (0.0..=1.0).contains(t))
        {
            Some(t) => (t, "strategy"),
            None => (settings.confidence_threshold, "config"),
        },
    };
    Ok(Resolved {
        strategy,
        symbol,
        threshold,
        threshold_source,
    })
}

/// The alert as `mem.decide` takes it, through the router.
async fn decide(
    daemon: &std::sync::Arc<crate::Daemon>,
    alert: Alert,
    resolved: Resolved,
) -> Result<Accepted, Refusal> {
    let params = DecideParams {
        enhance: EnhanceParams {
            signal: BaseSignal {
                strategy: resolved.strategy.name.clone(),
                symbol: resolved.symbol.clone(),
                action: alert.action,
                confidence: alert.confidence,
            },
            ml_confidence: None,
            ml_direction: None,
            pattern: None,
            volatility_pct: None,
            signature: None,
            trend: None,
            adx: None,
        },
        price: alert.price,
        id: None,
    };
    let asker = crate::router::Asker {
        access: mem_protocol::Access::Control,
        caller: crate::registry::Caller {
            uid: None,
            client: Some("tradingview webhook".into()),
        },
    };
    let decision =
        crate::router::call::<mem_protocol::methods::method::MemDecide>(daemon, params, asker)
            .await
            .map_err(|e| Refusal::from(Failure::from(e)))?;
    Ok(Accepted {
        decision,
        strategy: resolved.strategy,
        ticker: alert.ticker,
        symbol: resolved.symbol,
        threshold: resolved.threshold,
        threshold_source: resolved.threshold_source,
    })
}

/// A strategy by id, by name, or by name in any case; a name shared by several is refused.
fn find_strategy(
    registry: &crate::registry::Registry,
    given: &str,
) -> Result<StrategySummary, Refusal> {
    if let Ok(id) = given.parse::<StrategyId>() {
        return registry.summary(id).ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                format!("unknown strategy: no strategy with id {id} in the registry"),
            )
        });
    }
    let all = registry.summaries();
    let exact: Vec<_> = all.iter().filter(|s| s.name == given).collect();
    let found = if exact.is_empty() {
        all.iter()
            .filter(|s| s.name.eq_ignore_ascii_case(given))
            .collect()
    } else {
        exact
    };
    match found.as_slice() {
        [one] => Ok((***one).clone()),
        [] => Err(refuse(
            StatusCode::NOT_FOUND,
            format!(
                "unknown strategy: none is named {} in the registry (give its name, e.g. freqtrade_macd_hunter, or its id; memctl strategies list shows them)",
                shown(given)
            ),
        )),
        several => Err(bad(format!(
            "strategy name {} is shared by {} strategies ({}); give the id",
            shown(given),
            several.len(),
            several
                .iter()
                .map(|s| s.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Base and quote of a pair, upper case, without separators (`BTC/USDT:USDT` -> `BTCUSDT`),
/// and whether it is a futures pair.
fn pair_key(pair: &str) -> (String, bool) {
    let (spot, futures) = match pair.split_once(':') {
        Some((spot, _settle)) => (spot, true),
        None => (pair, false),
    };
    (
        spot.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        futures,
    )
}

/// The known pair a TradingView ticker names: `BINANCE:BTCUSDT`, `BTCUSDT`, `btcusdt`,
/// `BTCUSDT.P` (a perpetual: the futures pair first), or a Freqtrade pair as it is.
pub fn map_ticker(ticker: &str, known: &[String]) -> Option<String> {
    let ticker = ticker.trim();
    if ticker.contains('/') {
        return known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(ticker))
            .cloned();
    }
    let bare = match ticker.split_once(':') {
        Some((_exchange, rest)) => rest,
        None => ticker,
    };
    let (bare, perpetual) = match bare.strip_suffix(".P").or_else(|| bare.strip_suffix(".p")) {
        Some(b) => (b, true),
        None => (bare, false),
    };
    let (key, _) = pair_key(bare);
    if key.is_empty() {
        return None;
    }
    let matching: Vec<&String> = known.iter().filter(|k| pair_key(k).0 == key).collect();
    matching
        .iter()
        .find(|k| pair_key(k).1 == perpetual)
        .or_else(|| matching.first())
        .map(|k| (*k).clone())
}

/// Sends a logged alert to the strategy's bot (through the supervisor), or says why not.
async fn forward(
    daemon: &crate::Daemon,
    accepted: &Accepted,
    forward_live: bool,
) -> Result<Forwarded, String> {
    let d = &accepted.decision;
    if d.confidence < accepted.threshold {
        return Err(format!(
            "the enhanced confidence {:.2} is below the strategy's threshold {:.2} ({})",
            d.confidence, accepted.threshold, accepted.threshold_source
        ));
    }
    let sent = daemon
        .supervisor
        .forward_signal(
            accepted.strategy.id,
            &accepted.strategy.name,
            d.action,
            &d.id,
            &accepted.symbol,
            forward_live,
        )
        .await?;
    Ok(Forwarded {
        deployment_id: sent.deployment_id,
        endpoint: sent.endpoint,
        pair: sent.pair,
        trade_ids: sent.trade_ids,
        dry_run: sent.dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tickers_map_to_known_pairs() {
        let known = pairs(&["ETH/USDT", "BTC/USDT", "ETH/BTC", "BTC/USDT:USDT"]);
        for (ticker, pair) in [
            ("BINANCE:ETHUSDT", Some("ETH/USDT")),
            ("ETHUSDT", Some("ETH/USDT")),
            ("ethbtc", Some("ETH/BTC")),
            ("ETH/BTC", Some("ETH/BTC")),
            ("eth/usdt", Some("ETH/USDT")),
            ("BINANCE:BTCUSDT.P", Some("BTC/USDT:USDT")),
            ("BTCUSDT", Some("BTC/USDT")),
            ("BINANCE:DOGEUSDT", None),
            ("DOGE/USDT", None),
            (":", None),
            ("", None),
        ] {
            assert_eq!(map_ticker(ticker, &known).as_deref(), pair, "{ticker}");
        }
        assert_eq!(
            map_ticker("ETHUSDT.P", &known).as_deref(),
            Some("ETH/USDT"),
            "no futures pair known: the spot one"
        );
    }

    fn parse(body: &str) -> Result<Alert, String> {
        parse_alert(serde_json::from_str(body), 0.7)
    }

    #[test]
    fn alerts_are_read_and_each_bad_field_named() {
        let a = parse(
            r#"{"secret": "s", "strategy": "freqtrade_macd_hunter", "ticker": "BINANCE:ETHUSDT", "action": "BUY", "price": 3646.17, "time": "x"}"#,
        )
        .unwrap();
        assert_eq!(
            a,
            Alert {
                strategy: "freqtrade_macd_hunter".into(),
                ticker: "BINANCE:ETHUSDT".into(),
                action: SignalAction::Buy,
                price: 3646.17,
                confidence: 0.7,
            }
        );
        let a = parse(
            r#"{"strategy_id": "x", "symbol": "ETHUSDT", "action": "sell", "price": " 12.5 ", "confidence": 0.3}"#,
        )
        .unwrap();
        assert_eq!(
            (a.strategy.as_str(), a.action, a.price, a.confidence),
            ("x", SignalAction::Sell, 12.5, 0.3)
        );
        for (body, named) in [
            ("not json", "not JSON"),
            ("[1, 2]", "JSON object"),
            (
                r#"{"ticker": "X", "action": "buy", "price": 1}"#,
                "`strategy` is required",
            ),
            (
                r#"{"strategy": "s", "action": "buy", "price": 1}"#,
                "`ticker` is required",
            ),
            (
                r#"{"strategy": "s", "ticker": "X", "price": 1}"#,
                "`action` is required",
            ),
            (
                r#"{"strategy": "s", "ticker": "X", "action": "hold", "price": 1}"#,
                "\"hold\" is not \"buy\" or \"sell\"",
            ),
            (
                r#"{"strategy": "s", "ticker": "X", "action": 1, "price": 1}"#,
                "`action` must be a string",
            ),
            (
                r#"{"strategy": "s", "ticker": "X", "action": "buy"}"#,
                "`price` is required",
            ),
            (
                r#"{"strategy": "s", "ticker": "X", "action": "buy", "price": "abc"}"#,
                "`price` must be a number above 0",
            ),
            (
                r#"{"strategy": "s", "ticker": "X", "action": "buy", "price": -3}"#,
                "`price` must be a number above 0",
            ),
            (
                r#"{"strategy": "s", "ticker": "X", "action": "buy", "price": 1, "confidence": 2}"#,
                "`confidence` must be",
            ),
            (
                r#"{"strategy": " ", "ticker": "X", "action": "buy", "price": 1}"#,
                "`strategy` is empty",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains(named), "{body}: {err}");
        }
        let long = format!(
            r#"{{"strategy": "s", "ticker": "X", "action": "{}", "price": 1}}"#,
            "x".repeat(500)
        );
        assert!(parse(&long).unwrap_err().len() < 300, "echoes are cut");
    }

    #[test]
    fn the_window_limits_and_reopens() {
        let w = Window::new(2);
        let t0 = Instant::now();
        assert!(w.take(t0).is_ok() && w.take(t0).is_ok());
        assert_eq!(w.take(t0), Err((60, true)));
        assert_eq!(
            w.take(t0 + Duration::from_secs(30)),
            Err((30, false)),
            "logged once"
        );
        assert!(w.take(t0 + WINDOW).is_ok());
    }

    #[test]
    fn the_schema_is_in_the_document() {
        let doc = serde_json::to_value(super::super::api::openapi()).unwrap();
        let op = &doc["paths"][PATH]["post"];
        assert_eq!(op["security"], json!([{}]), "no bearer token: {op}");
        for status in ["200", "400", "401", "404", "413", "429"] {
            assert!(op["responses"][status].is_object(), "{status}: {op}");
        }
        assert!(op["responses"]["429"]["headers"]["Retry-After"].is_object());
    }
}
