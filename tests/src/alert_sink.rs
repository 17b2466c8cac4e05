//! A local Telegram Bot API stand-in and a webhook receiver on 127.0.0.1, for memd's
//! alerts (`[alerts.telegram] api_base`, `[alerts.webhook] url`).
//!
//! - `POST /bot<token>/sendMessage` records `(token, chat_id, text)`;
//! - `POST /bot<token>/getUpdates` answers the updates the test pushed
//!   ([`AlertSink::push_message`]) past the request's `offset`, waiting up to 1 s for one;
//! - `POST /hook` (or `/hook/<key>`, a URL that carries its secret) records the JSON body.
//!
//! [`AlertSink::set_down`] makes every endpoint answer 503 (a channel that is down).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A message memd sent to Telegram.
#[derive(Debug, Clone)]
pub struct Sent {
    pub token: String,
    pub chat_id: i64,
    pub text: String,
    pub at: Instant,
    /// When it arrived, by the wall clock (to compare with memd's event times).
    pub received: chrono::DateTime<chrono::Utc>,
}

#[derive(Default)]
struct Inner {
    sent: Mutex<Vec<Sent>>,
    hooks: Mutex<Vec<(Value, Instant)>>,
    updates: Mutex<Vec<Value>>,
    down: AtomicBool,
    polls: Mutex<u64>,
}

/// The running stand-in.
#[derive(Clone)]
pub struct AlertSink {
    inner: Arc<Inner>,
    pub port: u16,
}

impl AlertSink {
    /// Starts it on a free port of 127.0.0.1.
    pub async fn start() -> AlertSink {
        Self::start_on(0).await
    }

    /// Starts it on `port` of 127.0.0.1 (0: a free one).
    pub async fn start_on(port: u16) -> AlertSink {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/hook", post(hook))
            .route("/hook/{key}", post(keyed_hook))
            .route("/{bot}/{method}", post(telegram))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AlertSink { inner, port }
    }

    /// `[alerts.telegram] api_base`.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `[alerts.webhook] url`.
    pub fn hook_url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Telegram messages received so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.inner.sent.lock().unwrap().clone()
    }

    /// Webhook bodies received so far.
    pub fn hooks(&self) -> Vec<Value> {
        self.inner
            .hooks
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.0.clone())
            .collect()
    }

    /// How many `getUpdates` calls were answered.
    pub fn polls(&self) -> u64 {
        *self.inner.polls.lock().unwrap()
    }

    /// A chat's text message, for memd's next `getUpdates`.
    pub fn push_message(&self, chat_id: i64, text: &str) {
        let mut updates = self.inner.updates.lock().unwrap();
        let id = updates.len() as i64 + 1;
        updates.push(json!({
            "update_id": id,
            "message": {"message_id": id, "date": 0, "chat": {"id": chat_id, "type": "private"}, "text": text}
        }));
    }

    /// Waits until `pred` holds for the messages sent (at most `timeout`).
    pub async fn wait_sent(&self, timeout: Duration, pred: impl Fn(&[Sent]) -> bool) -> Vec<Sent> {
        let until = Instant::now() + timeout;
        loop {
            let sent = self.sent();
            if pred(&sent) || Instant::now() > until {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn hook(State(s): State<Arc<Inner>>, Json(body): Json<Value>) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    s.hooks.lock().unwrap().push((body, Instant::now()));
    StatusCode::NO_CONTENT.into_response()
}

/// A webhook whose URL carries its key, as Discord's and Slack's do.
async fn keyed_hook(
    State(s): State<Arc<Inner>>,
    Path(_key): Path<String>,
    body: Json<Value>,
) -> Response {
    hook(State(s), body).await
}

async fn telegram(
    State(s): State<Arc<Inner>>,
    Path((bot, method)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ok": false, "description": "down"})),
        )
            .into_response();
    }
    let Some(token) = bot.strip_prefix("bot") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match method.as_str() {
        "sendMessage" => {
            s.sent.lock().unwrap().push(Sent {
                token: token.to_string(),
                chat_id: body["chat_id"].as_i64().unwrap_or_default(),
                text: body["text"].as_str().unwrap_or_default().to_string(),
                at: Instant::now(),
                received: chrono::Utc::now(),
            });
            Json(json!({"ok": true, "result": {"message_id": 1}})).into_response()
        }
        "getUpdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let until = Instant::now() + Duration::from_secs(1);
            let result = loop {
                let fresh: Vec<Value> = s
                    .updates
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                    .cloned()
                    .collect();
                if !fresh.is_empty() || Instant::now() > until {
                    break fresh;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            *s.polls.lock().unwrap() += 1;
            Json(json!({"ok": true, "result": result})).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
