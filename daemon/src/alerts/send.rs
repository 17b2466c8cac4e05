//! Sending one alert to one target: Telegram's `sendMessage`, a webhook POST (JSON,
//! Discord's or Slack's body), or memd's log.
//!
//! Invariant: an error names what failed and never carries the request's URL (the bot
//! token is in Telegram's path, a webhook's key in its URL): `reqwest` errors are
//! stripped of it ([`reqwest::Error::without_url`]), their causes kept ([`request_error`]).

use super::config::{Secret, TelegramSettings, WebhookConfig, WebhookFormat};
use super::rules::{Alert, Severity};
use super::throttle::RateLimit;
use serde_json::{Value, json};
use std::time::Duration;

/// Where one delivery goes.
#[derive(Debug, Clone)]
pub enum Target {
    Telegram {
        api_base: String,
        token: Secret,
        chat: i64,
    },
    Webhook(WebhookConfig),
    Log,
}

impl Target {
    /// The name history and the CLI show: `telegram/<chat>`, `webhook`, `log`.
    pub fn name(&self) -> String {
        match self {
            Target::Telegram { chat, .. } => format!("telegram/{chat}"),
            Target::Webhook(_) => "webhook".into(),
            Target::Log => "log".into(),
        }
    }

    /// The channel: `telegram`, `webhook`, `log`.
    pub fn channel(&self) -> &'static str {
        match self {
            Target::Telegram { .. } => "telegram",
            Target::Webhook(_) => "webhook",
            Target::Log => "log",
        }
    }

    /// The longest text one message may carry, for the channels whose messages are text
    /// (Telegram; Discord's and Slack's webhook bodies): alerts that wait together for
    /// such a target go out as one message ([`compose`]). `None`: one alert a delivery
    /// (the JSON webhook, whose body is one alert; the log).
    pub fn message_limit(&self) -> Option<usize> {
        match self {
            // Telegram: 4,096 characters a message; Discord: 2,000 a `content`.
            Target::Telegram { .. } => Some(4000),
            Target::Webhook(w) => match w.format {
                WebhookFormat::Json => None,
                WebhookFormat::Discord => Some(1900),
                WebhookFormat::Slack => Some(3900),
            },
            Target::Log => None,
        }
    }

    /// How it is throttled: a text channel at most `per_minute` messages a minute and
    /// [`PACE`] apart while alerts keep coming (they gather in the next message); the
    /// JSON webhook `per_minute`; the log not at all (it is memd's own file: no service
    /// to spare).
    pub fn rate_limit(&self, per_minute: u32) -> RateLimit {
        match self {
            Target::Log => RateLimit::new(u32::MAX),
            _ if self.message_limit().is_some() => RateLimit::new(per_minute).with_gap(PACE),
            _ => RateLimit::new(per_minute),
        }
    }

    /// Every target of the configured channels.
    pub fn all(
        telegram: Option<&TelegramSettings>,
        webhook: Option<&WebhookConfig>,
        log: bool,
    ) -> Vec<Target> {
        let mut out: Vec<Target> = telegram
            .into_iter()
            .flat_map(|t| {
                t.chat_ids.iter().map(|chat| Target::Telegram {
                    api_base: t.api_base.clone(),
                    token: t.token.clone(),
                    chat: *chat,
                })
            })
            .collect();
        out.extend(webhook.cloned().map(Target::Webhook));
        if log {
            out.push(Target::Log);
        }
        out
    }
}

/// The HTTP client alerts are sent with: a timeout, no redirects followed, HTTPS checked
/// against the system's roots.
pub fn client() -> reqwest::Client {
    builder()
        .build()
        .expect("an HTTP client with the default TLS settings builds")
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
}

/// Telegram's method URL (holds the token: never printed).
pub fn telegram_url(api_base: &str, token: &Secret, method: &str) -> String {
    format!("{api_base}/bot{}/{method}", token.expose())
}

/// A request's error for the log and the history: what failed and why (its causes, such
/// as `Connection refused`), without the URL, which holds the token or the webhook's key.
pub fn request_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// The least time between two messages to one chat or text webhook while alerts keep
/// coming: a burst (fifty bots failing within a poll) becomes a few messages a second,
/// each alert waiting at most this long, instead of one message each (Telegram asks for
/// about one a second a chat, Discord allows five per two seconds a webhook).
pub const PACE: Duration = Duration::from_millis(250);

/// Characters an alert takes at most in a message of several.
const ALERT_CHARS_IN_BATCH: usize = 600;

/// The text of one message for `alerts` (oldest first), at most `limit` characters, and
/// how many of them it holds (at least one): one alert is its own message; several are
/// a count (with the worst severity's icon), then each alert's message, cut to fit.
pub fn compose(alerts: &[Alert], limit: usize) -> (String, usize) {
    const HEADER: usize = 40;
    let mut blocks: Vec<String> = Vec::new();
    let mut length = HEADER;
    for alert in alerts {
        let block = cut(&alert.message(), ALERT_CHARS_IN_BATCH);
        let adds = block.chars().count() + 2;
        if !blocks.is_empty() && length + adds > limit {
            break;
        }
        length += adds;
        blocks.push(block);
    }
    if blocks.len() <= 1 {
        return match alerts.first() {
            Some(one) => (cut(&one.message(), limit), 1),
            None => (String::new(), 0),
        };
    }
    let n = blocks.len();
    let worst = alerts[..n]
        .iter()
        .map(|a| a.severity)
        .max()
        .unwrap_or(Severity::Info);
    (
        format!("{} {n} alerts\n\n{}", worst.icon(), blocks.join("\n\n")),
        n,
    )
}

/// `text` in at most `max` characters (an ellipsis where it was cut).
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Sends `batch` (oldest first) to `target` as one delivery: one message of them all
/// for a target with a [`Target::message_limit`] (the caller keeps the batch to what
/// [`compose`] fits), else the one alert a batch holds (the JSON webhook; the log takes
/// each).
pub async fn send(http: &reqwest::Client, target: &Target, batch: &[Alert]) -> Result<(), String> {
    let text = || compose(batch, target.message_limit().unwrap_or(usize::MAX)).0;
    match target {
        Target::Log => {
            for alert in batch {
                match alert.severity {
                    Severity::Info => {
                        tracing::info!(rule = %alert.rule.name(), id = %alert.id, "alert: {}: {}", alert.title, alert.text)
                    }
                    _ => {
                        tracing::warn!(rule = %alert.rule.name(), severity = ?alert.severity, id = %alert.id, "alert: {}: {}", alert.title, alert.text)
                    }
                }
            }
            Ok(())
        }
        Target::Telegram {
            api_base,
            token,
            chat,
        } => telegram_message(http, api_base, token, *chat, &text()).await,
        Target::Webhook(w) => {
            let body = match (w.format, batch) {
                (WebhookFormat::Json, [one]) => webhook_body(w.format, one),
                (WebhookFormat::Json, _) => {
                    return Err("a JSON webhook takes one alert a request".into());
                }
                (WebhookFormat::Discord, _) => json!({ "content": text() }),
                (WebhookFormat::Slack, _) => json!({ "text": text() }),
            };
            let response = http
                .post(w.url.expose())
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("webhook: {}", request_error(e)))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("webhook answered {status}"))
            }
        }
    }
}

/// Telegram's `sendMessage` to `chat`.
pub async fn telegram_message(
    http: &reqwest::Client,
    api_base: &str,
    token: &Secret,
    chat: i64,
    text: &str,
) -> Result<(), String> {
    let response = http
        .post(telegram_url(api_base, token, "sendMessage"))
        .json(&json!({"chat_id": chat, "text": text, "disable_web_page_preview": true}))
        .send()
        .await
        .map_err(|e| format!("telegram: {}", request_error(e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let description = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| {
            v.get("description")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    Err(format!("telegram answered {status} {description}")
        .trim_end()
        .to_string())
}

/// The webhook's body in its format.
pub fn webhook_body(format: WebhookFormat, alert: &Alert) -> Value {
    match format {
        WebhookFormat::Json => json!({
            "id": alert.id, "rule": alert.rule, "severity": alert.severity,
            "title": alert.title, "text": alert.text, "raisedAt": alert.raised_at,
        }),
        WebhookFormat::Discord => json!({ "content": alert.message() }),
        WebhookFormat::Slack => json!({ "text": alert.message() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::Rule;
    use std::sync::Arc;

    fn alert(n: usize, severity: Severity, text: &str) -> Alert {
        Alert {
            id: format!("a{n}"),
            rule: Rule::BotFailed,
            severity,
            key: format!("bot_failed:{n}"),
            title: format!("Bot load bot {n} failed"),
            text: text.into(),
            raised_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn alerts_waiting_together_make_one_message_within_the_channels_limit() {
        let one = [alert(0, Severity::Warning, "gave up")];
        assert_eq!(compose(&one, 4000), (one[0].message(), 1));
        // Fifty bots failing at once: a few messages, each under Telegram's limit.
        let fifty: Vec<Alert> = (0..50)
            .map(|n| {
                let severity = if n == 7 {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                alert(
                    n,
                    severity,
                    &"gave up after 0 restarts; last: exited (signal: 9) ".repeat(2),
                )
            })
            .collect();
        let mut rest = &fifty[..];
        let mut messages = Vec::new();
        while !rest.is_empty() {
            let (text, n) = compose(rest, 4000);
            assert!(text.chars().count() <= 4000, "{}", text.len());
            messages.push((text, n));
            rest = &rest[n..];
        }
        assert!(messages.len() <= 3, "{} messages", messages.len());
        let (first, n) = &messages[0];
        assert!(first.starts_with(&format!("🚨 {n} alerts\n\n")), "{first}");
        assert!(first.contains("Bot load bot 0 failed") && first.contains("Bot load bot 7 failed"));
        let all: String = messages.iter().map(|m| m.0.as_str()).collect();
        for n in 0..50 {
            assert_eq!(
                all.matches(&format!("Bot load bot {n} failed\n")).count(),
                1
            );
        }
        // One alert longer than a message is cut, not refused by Telegram.
        let long = [alert(1, Severity::Info, &"x".repeat(10_000))];
        let (text, n) = compose(&long, 1900);
        assert_eq!((text.chars().count(), n), (1900, 1));
        assert!(text.ends_with('…'));
    }

    #[test]
    fn only_text_channels_batch() {
        let hook = |format| {
            Target::Webhook(WebhookConfig {
                url: Secret::new("https://example.com/hook"),
                format,
            })
        };
        assert_eq!(hook(WebhookFormat::Json).message_limit(), None);
        assert_eq!(hook(WebhookFormat::Discord).message_limit(), Some(1900));
        assert_eq!(Target::Log.message_limit(), None);
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A request refused (nothing listens): the error says so, and not the URL (whose
    /// path holds the token).
    #[tokio::test]
    async fn a_refused_request_says_why_without_its_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = super::client()
            .post(format!("http://127.0.0.1:{port}/bot123:SECRET/sendMessage"))
            .send()
            .await
            .unwrap_err();
        let text = super::request_error(e);
        assert!(!text.contains("SECRET") && !text.contains("/bot"), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }

    /// Telegram and most webhooks are HTTPS: the alert client completes a TLS handshake
    /// and a POST against a local HTTPS server whose certificate it is told to trust.
    #[tokio::test]
    async fn the_alert_client_posts_over_https() {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_der = key.cert.der().clone();
        let server_config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert_der.clone()],
                tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
                    key.signing_key.serialize_der().into(),
                ),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut request = vec![0u8; 4096];
            let n = tls.read(&mut request).await.unwrap();
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            tls.shutdown().await.ok();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let client = super::builder()
            .tls_certs_only([reqwest::Certificate::from_der(&cert_der).unwrap()])
            .build()
            .unwrap();
        let response = client
            .post(format!("https://localhost:{port}/hook"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(server.await.unwrap().starts_with("POST /hook "));
    }
}
