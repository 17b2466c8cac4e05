//! `[alerts]`: the channels alerts go to, the rules that raise them, how often.
//!
//! Invariants: the Telegram bot token and the webhook URL are secrets: they are read here
//! (the token from the file or from `bot_token_file`) and never printed: [`Secret`]'s
//! `Debug` and `Display` redact, and an HTTP error is logged without its URL.

use super::rules::{Rule, Severity};
use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A string that must not be printed: `Debug` and `Display` say `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (a request's URL or body).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `[alerts]` as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Alerts on (default true when a channel is configured; the log channel always is).
    pub enabled: Option<bool>,
    /// The same condition alerts once per this many seconds (default 600).
    pub dedup_window_secs: Option<u64>,
    /// Messages a channel is sent per minute at most (default 20; the log is not limited);
    /// the rest wait, and go out together on the text channels.
    pub rate_limit_per_minute: Option<u32>,
    /// The longest wait between two tries of a channel that is down (default 300 s).
    pub retry_max_secs: Option<u64>,
    /// An alert not delivered after this many hours is given up (default 24).
    pub give_up_after_hours: Option<u64>,
    /// Bots that restarted this many times raise `bot_restarting` (default 2).
    pub restarts_threshold: Option<u32>,
    /// The daily summary's time of day, `HH:MM` in UTC (default `20:00`); `""` turns it off.
    pub daily_summary_at: Option<String>,
    #[serde(default)]
    pub telegram: Option<TelegramConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    #[serde(default)]
    pub log: Option<LogChannelConfig>,
    /// `[alerts.rules.<rule>]`: each rule's `enabled` and `severity`.
    #[serde(default)]
    pub rules: BTreeMap<Rule, RuleConfig>,
}

/// `[alerts.telegram]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// The bot's token from @BotFather (or `bot_token_file`).
    pub bot_token: Option<Secret>,
    /// A file holding the token (mode 0600 or 0400).
    pub bot_token_file: Option<PathBuf>,
    /// Chats alerts are sent to, and whose commands are answered.
    #[serde(default)]
    pub chat_ids: Vec<i64>,
    /// Chats whose `/stopentry` and `/stop` are obeyed (after a confirmation); each must
    /// be in `chat_ids` too.
    #[serde(default)]
    pub control_chat_ids: Vec<i64>,
    /// Answer commands (long-poll `getUpdates`; default true).
    pub commands: Option<bool>,
    /// The Bot API's base URL (default `https://api.telegram.org`).
    pub api_base: Option<String>,
}

/// `[alerts.webhook]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where alerts are POSTed (a secret: Discord's and Slack's URLs carry their key).
    pub url: Secret,
    /// The body's shape: `json` (default), `discord`, `slack`.
    #[serde(default)]
    pub format: WebhookFormat,
}

/// A webhook body's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The alert as JSON: `{rule, severity, title, text, raisedAt, id}`.
    #[default]
    Json,
    /// `{"content": "..."}`.
    Discord,
    /// `{"text": "..."}`.
    Slack,
}

/// `[alerts.log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogChannelConfig {
    /// Alerts written to memd's log too (default true).
    pub enabled: bool,
}

/// `[alerts.rules.<rule>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub enabled: Option<bool>,
    pub severity: Option<Severity>,
}

/// `[alerts.telegram]`, checked.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub token: Secret,
    pub chat_ids: Vec<i64>,
    pub control_chat_ids: Vec<i64>,
    pub commands: bool,
    pub api_base: String,
}

/// `[alerts]`, checked.
#[derive(Debug, Clone)]
pub struct AlertsSettings {
    pub enabled: bool,
    pub dedup_window: Duration,
    pub rate_limit_per_minute: u32,
    pub retry_max: Duration,
    pub give_up_after: Duration,
    pub restarts_threshold: u32,
    /// Minutes after midnight UTC, if the daily summary is on.
    pub daily_summary_at: Option<u32>,
    pub telegram: Option<TelegramSettings>,
    pub webhook: Option<WebhookConfig>,
    pub log: bool,
    pub rules: BTreeMap<Rule, RuleConfig>,
}

impl Default for AlertsSettings {
    fn default() -> Self {
        AlertsConfig::default()
            .settings()
            .expect("the default [alerts] is valid")
    }
}

impl AlertsSettings {
    /// Whether `rule` raises alerts.
    pub fn rule_enabled(&self, rule: Rule) -> bool {
        self.enabled
            && self
                .rules
                .get(&rule)
                .and_then(|r| r.enabled)
                .unwrap_or(true)
    }

    /// `rule`'s severity: the config's, or the rule's own.
    pub fn severity(&self, rule: Rule) -> Severity {
        self.rules
            .get(&rule)
            .and_then(|r| r.severity)
            .unwrap_or_else(|| rule.default_severity())
    }
}

impl AlertsConfig {
    /// Checks the section and reads the token file.
    pub fn settings(&self) -> anyhow::Result<AlertsSettings> {
        let rate = self.rate_limit_per_minute.unwrap_or(20);
        if rate == 0 {
            bail!("[alerts] rate_limit_per_minute must be at least 1");
        }
        let telegram = self.telegram.as_ref().map(telegram_settings).transpose()?;
        if let Some(w) = &self.webhook {
            let url = w.url.expose();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("[alerts.webhook] url must start with http:// or https://");
            }
        }
        Ok(AlertsSettings {
            enabled: self.enabled.unwrap_or(true),
            dedup_window: Duration::from_secs(self.dedup_window_secs.unwrap_or(600)),
            rate_limit_per_minute: rate,
            retry_max: Duration::from_secs(self.retry_max_secs.unwrap_or(300).max(1)),
            give_up_after: Duration::from_secs(self.give_up_after_hours.unwrap_or(24) * 3600),
            restarts_threshold: self.restarts_threshold.unwrap_or(2).max(1),
            daily_summary_at: daily_at(self.daily_summary_at.as_deref().unwrap_or("20:00"))?,
            telegram,
            webhook: self.webhook.clone(),
            log: self.log.as_ref().is_none_or(|l| l.enabled),
            rules: self.rules.clone(),
        })
    }
}

fn daily_at(text: &str) -> anyhow::Result<Option<u32>> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad =
        || anyhow::anyhow!("[alerts] daily_summary_at {text:?}: expected HH:MM (UTC) or \"\"");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(Some(h * 60 + m))
}

fn telegram_settings(t: &TelegramConfig) -> anyhow::Result<TelegramSettings> {
    let token = match (&t.bot_token, &t.bot_token_file) {
        (Some(token), None) => token.clone(),
        (None, Some(file)) => read_token_file(file)?,
        (Some(_), Some(_)) => bail!("[alerts.telegram] give bot_token or bot_token_file, not both"),
        (None, None) => bail!("[alerts.telegram] needs bot_token or bot_token_file"),
    };
    if token.expose().is_empty() || token.expose().contains(char::is_whitespace) {
        bail!("[alerts.telegram] the bot token is empty or has spaces");
    }
    if t.chat_ids.is_empty() {
        bail!("[alerts.telegram] chat_ids is empty: alerts would reach nobody");
    }
    if let Some(c) = t.control_chat_ids.iter().find(|c| !t.chat_ids.contains(c)) {
        bail!("[alerts.telegram] control chat {c} is not in chat_ids");
    }
    let api_base = t
        .api_base
        .clone()
        .unwrap_or_else(|| "https://api.telegram.org".into())
        .trim_end_matches('/')
        .to_string();
    Ok(TelegramSettings {
        token,
        chat_ids: t.chat_ids.clone(),
        control_chat_ids: t.control_chat_ids.clone(),
        commands: t.commands.unwrap_or(true),
        api_base,
    })
}

fn read_token_file(file: &Path) -> anyhow::Result<Secret> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file)
        .with_context(|| format!("[alerts.telegram] bot_token_file {}", file.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "[alerts.telegram] bot_token_file {} is readable by others: chmod 600 it",
            file.display()
        );
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("[alerts.telegram] bot_token_file {}", file.display()))?;
    Ok(Secret::new(text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_never_printed_and_rules_are_switched_off_by_name() {
        let file: AlertsConfig = toml::from_str(
            "[telegram]\nbot_token = \"123:SECRET\"\nchat_ids = [42]\n[rules.data_stale]\nenabled = false\nseverity = \"critical\"",
        )
        .unwrap();
        let s = file.settings().unwrap();
        let printed = format!("{s:?} {file:?}");
        assert!(!printed.contains("SECRET"), "{printed}");
        assert!(!s.rule_enabled(Rule::DataStale));
        assert!(s.rule_enabled(Rule::BotFailed));
        assert_eq!(s.severity(Rule::DataStale), Severity::Critical);
        assert_eq!(s.telegram.unwrap().api_base, "https://api.telegram.org");
    }

    #[test]
    fn bad_sections_are_refused_with_the_key_named() {
        let err = |t: &str| {
            toml::from_str::<AlertsConfig>(t)
                .map_err(|e| e.to_string())
                .and_then(|c| c.settings().map(drop).map_err(|e| e.to_string()))
                .unwrap_err()
        };
        assert!(err("[telegram]\nchat_ids = [1]").contains("bot_token"));
        assert!(err("[rules.nonsense]\nenabled = false").contains("nonsense"));
        assert!(err("daily_summary_at = \"25:00\"").contains("daily_summary_at"));
        assert!(
            err("[telegram]\nbot_token = \"a\"\nchat_ids = [1]\ncontrol_chat_ids = [2]")
                .contains("control chat 2")
        );
    }
}
