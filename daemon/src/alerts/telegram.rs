//! Telegram as the fleet's one bot: memd long-polls `getUpdates` and answers commands
//! from the configured chats: `/status`, `/bots`, `/profit [day|week]`, `/decisions`,
//! `/stopentry <bot|all>`, `/stop <bot>`, `/help`.
//!
//! Invariants:
//! - a message from a chat not in `chat_ids` is ignored (logged once per chat);
//! - `/stopentry` and `/stop` are obeyed only from `control_chat_ids`, and only after the
//!   same chat answers `/confirm` within [`CONFIRM_WITHIN`]; bots are reached through the
//!   supervisor, which alone talks to them;
//! - the token is in the request's URL only; errors are logged without it.

use super::Alerts;
use super::config::TelegramSettings;
use super::send::{request_error, telegram_message, telegram_url};
use crate::Daemon;
use mem_protocol::deploy::{DeployedStrategy, StopMode, StopParams};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long a control command waits for its `/confirm`.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(60);

/// A control command waiting for its confirmation.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    StopEntry(Option<String>),
    Stop(String),
}

/// What to do with a message, before acting.
#[derive(Debug, PartialEq)]
pub enum Command {
    Status,
    Bots,
    Profit { week: bool },
    Decisions,
    Control(Control),
    Confirm,
    Help,
    Unknown(String),
}

/// Reads a command line (`/profit week`, `/stopentry@memdbot all`).
pub fn parse(text: &str) -> Command {
    let mut words = text.split_whitespace();
    let head = words.next().unwrap_or("");
    let head = head.split('@').next().unwrap_or(head).to_lowercase();
    let arg = words.next().map(str::to_string);
    match (head.as_str(), arg) {
        ("/status" | "/start", _) => Command::Status,
        ("/bots", _) => Command::Bots,
        ("/profit", a) => Command::Profit {
            week: a.as_deref() == Some("week"),
        },
        ("/decisions", _) => Command::Decisions,
        ("/stopentry", Some(a)) if a == "all" => Command::Control(Control::StopEntry(None)),
        ("/stopentry", Some(a)) => Command::Control(Control::StopEntry(Some(a))),
        ("/stop", Some(a)) => Command::Control(Control::Stop(a)),
        ("/confirm" | "/yes", _) => Command::Confirm,
        ("/help", _) => Command::Help,
        _ => Command::Unknown(head),
    }
}

const HELP: &str = "/status, /bots, /profit [day|week], /decisions; control chats: /stopentry <bot|all>, /stop <bot> (then /confirm)";

/// The poller's state: where it is in the updates, what waits for confirmation, which
/// unknown chats were logged.
struct Poller {
    settings: TelegramSettings,
    offset: i64,
    waiting: HashMap<i64, (Control, Instant)>,
    unknown_logged: HashSet<i64>,
}

/// Starts the poller when Telegram is configured with commands on.
pub fn spawn(alerts: Arc<Alerts>, daemon: Weak<Daemon>) {
    let Some(settings) = alerts.settings.telegram.clone().filter(|t| t.commands) else {
        return;
    };
    let mut poller = Poller {
        settings,
        offset: 0,
        waiting: HashMap::new(),
        unknown_logged: HashSet::new(),
    };
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            match poller.poll(alerts.http()).await {
                Ok(updates) => {
                    failures = 0;
                    for u in updates {
                        let Some(d) = daemon.upgrade() else { return };
                        poller.handle(&alerts, &d, &u).await;
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        warn!(error = %e, "Telegram getUpdates failed; retrying with backoff");
                    }
                    let wait = super::throttle::backoff(failures, Duration::from_secs(60));
                    tokio::time::sleep(wait).await;
                }
            }
            if daemon.strong_count() == 0 {
                return;
            }
        }
    });
}

impl Poller {
    async fn poll(&mut self, http: &reqwest::Client) -> Result<Vec<Value>, String> {
        let url = telegram_url(&self.settings.api_base, &self.settings.token, "getUpdates");
        let body = json!({"offset": self.offset, "timeout": 25, "allowed_updates": ["message"]});
        let response = http
            .post(url)
            .timeout(Duration::from_secs(40))
            .json(&body)
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        let v: Value = response.json().await.map_err(request_error)?;
        if !status.is_success() || v["ok"] != json!(true) {
            return Err(format!(
                "getUpdates answered {status}: {}",
                v["description"]
            ));
        }
        let updates = v["result"].as_array().cloned().unwrap_or_default();
        if let Some(last) = updates.iter().filter_map(|u| u["update_id"].as_i64()).max() {
            self.offset = last + 1;
        }
        Ok(updates)
    }

    async fn handle(&mut self, alerts: &Alerts, d: &Arc<Daemon>, update: &Value) {
        let message = &update["message"];
        let (Some(chat), Some(text)) = (message["chat"]["id"].as_i64(), message["text"].as_str())
        else {
            return;
        };
        if !self.settings.chat_ids.contains(&chat) {
            if self.unknown_logged.insert(chat) {
                warn!(
                    chat,
                    "a Telegram message from a chat not in [alerts.telegram] chat_ids: ignored (logged once)"
                );
            }
            return;
        }
        let reply = self.answer(d, chat, parse(text)).await;
        if let Err(e) = telegram_message(
            alerts.http(),
            &self.settings.api_base,
            &self.settings.token,
            chat,
            &reply,
        )
        .await
        {
            warn!(chat, error = %e, "cannot answer a Telegram command");
        }
    }

    async fn answer(&mut self, d: &Arc<Daemon>, chat: i64, command: Command) -> String {
        let blocking = |f: fn(&Daemon) -> String| {
            let d = d.clone();
            async move {
                tokio::task::spawn_blocking(move || f(&d))
                    .await
                    .unwrap_or_default()
            }
        };
        match command {
            Command::Status => blocking(super::summary::status_text).await,
            Command::Bots => blocking(super::summary::bots_text).await,
            Command::Profit { week: false } => {
                blocking(|d| super::summary::profit_text(d, false)).await
            }
            Command::Profit { week: true } => {
                blocking(|d| super::summary::profit_text(d, true)).await
            }
            Command::Decisions => blocking(|d| super::summary::decisions_text(d, 10)).await,
            Command::Help => HELP.into(),
            Command::Unknown(c) => format!("Unknown command {c}. {HELP}"),
            Command::Control(control) => {
                if !self.settings.control_chat_ids.contains(&chat) {
                    return "This chat may not control bots ([alerts.telegram] control_chat_ids)."
                        .into();
                }
                let bots = match targets(d, &control) {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let names: Vec<&str> = bots.iter().map(|b| b.strategy_name.as_str()).collect();
                let what = match &control {
                    Control::StopEntry(_) => "stop new entries on",
                    Control::Stop(_) => "stop",
                };
                self.waiting.insert(chat, (control, Instant::now()));
                format!(
                    "Reply /confirm within {} s to {what} {} bot(s): {}",
                    CONFIRM_WITHIN.as_secs(),
                    bots.len(),
                    names.join(", ")
                )
            }
            Command::Confirm => match self.waiting.remove(&chat) {
                Some((control, at)) if at.elapsed() <= CONFIRM_WITHIN => {
                    info!(chat, ?control, "a Telegram control command confirmed");
                    act(d, &control, chat).await
                }
                Some(_) => "Too late: send the command again.".into(),
                None => "Nothing waits for a confirmation.".into(),
            },
        }
    }
}

/// The active deployments a control command names: `all`, a strategy's name, or the
/// start of a deployment id.
fn targets(d: &Daemon, control: &Control) -> Result<Vec<DeployedStrategy>, String> {
    let active = d.supervisor.deployed(false).deployments;
    let name = match control {
        Control::StopEntry(None) => {
            return Ok(active).and_then(|a| non_empty(a, "no bot is active"));
        }
        Control::StopEntry(Some(n)) | Control::Stop(n) => n.to_lowercase(),
    };
    let found: Vec<_> = active
        .into_iter()
        .filter(|b| {
            b.strategy_name.to_lowercase() == name || b.deployment_id.to_string().starts_with(&name)
        })
        .collect();
    non_empty(found, &format!("no active bot is named {name} (see /bots)"))
}

fn non_empty(list: Vec<DeployedStrategy>, why: &str) -> Result<Vec<DeployedStrategy>, String> {
    if list.is_empty() {
        Err(why.to_string())
    } else {
        Ok(list)
    }
}

/// Carries out a confirmed control command on each bot it names, each recorded in the
/// audit of actions as the chat's.
async fn act(d: &Arc<Daemon>, control: &Control, chat: i64) -> String {
    let bots = match targets(d, control) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let mut lines = Vec::new();
    for b in bots {
        let result = match control {
            Control::StopEntry(_) => d.supervisor.stop_entries(b.deployment_id).await,
            Control::Stop(_) => d
                .supervisor
                .stop(StopParams {
                    id: b.strategy_id,
                    mode: StopMode::default(),
                    deadline_secs: None,
                })
                .await
                .map(drop)
                .map_err(|e| e.message),
        };
        let caller = crate::registry::Caller {
            uid: None,
            client: Some(format!("telegram chat {chat}").into()),
        };
        let (action, mode) = match control {
            Control::StopEntry(_) => ("strategies.stopentry", "stopentry"),
            Control::Stop(_) => ("strategies.stop", "now"),
        };
        let mut params = serde_json::Map::new();
        params.insert("id".into(), b.strategy_id.to_string().into());
        params.insert("mode".into(), mode.into());
        // The line is synced to disk: not on the runtime's thread.
        let (actions, outcome) = (d.actions.clone(), result.clone());
        let _ =
            tokio::task::spawn_blocking(move || actions.record(action, &caller, params, &outcome))
                .await;
        lines.push(match result {
            Ok(()) => format!("{}: done", b.strategy_name),
            Err(e) => format!("{}: {e}", b.strategy_name),
        });
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_with_their_argument_and_bot_suffix() {
        assert_eq!(
            parse("/stopentry@memd_bot all"),
            Command::Control(Control::StopEntry(None))
        );
        assert_eq!(
            parse("/stopentry MACD"),
            Command::Control(Control::StopEntry(Some("MACD".into())))
        );
        assert_eq!(parse("/profit week"), Command::Profit { week: true });
        assert_eq!(parse("/profit"), Command::Profit { week: false });
        assert_eq!(
            parse("/stop"),
            Command::Unknown("/stop".into()),
            "a bot is needed"
        );
        assert_eq!(parse("/confirm"), Command::Confirm);
    }
}
