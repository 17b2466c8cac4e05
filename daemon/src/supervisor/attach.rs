//! Bots memd did not start (`deployments.attach`, `deployments.detach`): a Freqtrade bot
//! someone runs on their own is watched like one memd deployed (the same supervision
//! loop, poll and trade sync: [`super::bot`]), and never started, stopped or restarted.
//!
//! Choices:
//! - The password never crosses the socket and never reaches `state.json` or a log: the
//!   attach names a file the daemon reads (0600 or tighter for others: a file every user
//!   can read is refused), at the attach and at each daemon start.
//! - One deployment a bot: a URL memd already watches (an attached bot's, or the port of
//!   a bot memd started, on loopback) is refused, as its trades would be recorded twice.
//! - An attach is checked before it is recorded: the URL is `http(s)`, the API answers
//!   `/api/v1/ping`, and the credentials open `/api/v1/show_config`; each failure names
//!   the URL (never the password).
//! - Its closed trades are recorded under the strategy the attach names, else under the
//!   one registry strategy whose Freqtrade class is the bot's (`/show_config`'s
//!   `strategy`); none or several: refused, asking for `--strategy`. One active
//!   deployment per strategy holds for attached bots too.
//! - After a daemon restart the bot is polled again (never spawned); one that does not
//!   answer is shown crashed with why, and polled until it answers: memd does not
//!   restart what it did not start.
//! - Detach forgets the record (a `stopped` is announced first, so every list drops it);
//!   the bot runs on. The trades already synced stay in the registry; an attach again
//!   is a new deployment and copies the bot's closed trades anew.

use super::record::{AttachedRecord, DeploymentRecord, RunnerRecord, Slot};
use super::{Supervisor, conflict, internal, unavailable};
use crate::freqtrade::{self, BotClient};
use mem_protocol::RpcError;
use mem_protocol::deploy::*;
use mem_protocol::deploy_spec::{Runner, runner_of};
use mem_protocol::strategy::StrategyId;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{info, warn};

const METHOD: &str = "deployments.attach";

impl Supervisor {
    /// `deployments.attach`: checks the bot answers with these credentials, resolves its
    /// strategy, records it (saved, announced) and starts polling it.
    pub async fn attach(
        self: &Arc<Self>,
        params: AttachParams,
    ) -> Result<DeployedStrategy, RpcError> {
        let name = check_name(&params.name)?;
        if let Some(taken) = self.attached_named(&name) {
            return Err(conflict(format!(
                "a bot is already attached as {name} (deployment {}); detach it first or choose another name",
                taken.public().deployment_id
            )));
        }
        let url = freqtrade::api_url(&params.url)
            .map_err(|e| RpcError::invalid_params(METHOD, format!("field `url`: {e}")))?;
        if let Some(watched) = self.watching(&url) {
            return Err(conflict(format!(
                "memd already watches the bot at {url}: deployment {} ({}); one deployment a bot, or its trades would be recorded twice",
                watched.deployment_id, watched.strategy_name
            )));
        }
        let password_file = PathBuf::from(&params.password_file);
        let password = read_password(&password_file)
            .map_err(|e| RpcError::invalid_params(METHOD, format!("field `passwordFile`: {e}")))?;
        let client = BotClient::at(&url, &params.username, &password)
            .map_err(|e| RpcError::invalid_params(METHOD, e))?;
        let config = check_bot(&client, &url, &params.username).await?;
        let strategy = match params.strategy {
            Some(id) => id,
            None => self.strategy_of_class(&config, &url).await?,
        };
        let summary = self.registry.summary(strategy).ok_or_else(|| {
            RpcError::not_found(format!("no strategy {strategy} in the registry"))
        })?;
        if let Some(existing) = self.table.active_of(strategy) {
            let d = existing.public();
            return Err(conflict(format!(
                "strategy {strategy} ({}) already has an active deployment ({}, {:?}); one deployment per strategy: stop or detach it first, or attach under another strategy (--strategy)",
                summary.display_name, d.deployment_id, d.status
            )));
        }
        let deployment_id = DeploymentId::new_random();
        let port = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.port_or_known_default());
        let record = DeploymentRecord {
            public: DeployedStrategy {
                port,
                attached: Some(Attachment {
                    name: name.clone(),
                    url: url.clone(),
                    username: params.username.clone(),
                    allow_control: params.allow_control,
                }),
                ..super::bot::starting(
                    deployment_id,
                    strategy,
                    summary.display_name.clone(),
                    DeploymentType::Freqtrade,
                    config
                        .get("dry_run")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    StartedBy::Manual,
                )
            },
            // Named as every deployment's, never created: the bot's files are its own.
            dir: self.table.root().join(deployment_id.to_string()),
            runner: RunnerRecord::Attached(AttachedRecord {
                password_file,
                password,
                last_synced_trade: 0,
            }),
        };
        let slot = self.table.add(record);
        self.table
            .update(&slot, |r| r.public.status = DeploymentStatus::Running);
        info!(%deployment_id, %name, %url, %strategy, allow_control = params.allow_control, "attached a bot memd did not start");
        self.supervise(slot.clone(), None);
        Ok(slot.public())
    }

    /// `deployments.detach`: stops polling the attached bot and forgets its record; the
    /// bot runs on.
    pub async fn detach(&self, params: DetachParams) -> Result<DeployedStrategy, RpcError> {
        let slot = self
            .attached_named(&params.name)
            .or_else(|| {
                let id = params.name.parse().ok()?;
                self.table
                    .slot(id)
                    .filter(|s| s.record.lock().expect("slot lock").is_attached())
            })
            .ok_or_else(|| {
                RpcError::not_found(format!(
                    "no bot is attached as {:?} (`memctl deployed` lists them)",
                    params.name
                ))
            })?;
        let _op = slot.op.lock().await;
        slot.cancel.lock().expect("cancel lock").cancel();
        let task = slot.task.lock().expect("task lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        // Announced as stopped (what every list drops), then forgotten.
        self.table.update(&slot, |r| {
            r.public.status = DeploymentStatus::Stopped;
        });
        let detached = slot.public();
        self.table.remove(detached.deployment_id);
        info!(deployment = %detached.deployment_id, name = %params.name, "detached: no longer watched; the bot runs on");
        Ok(detached)
    }

    /// The active deployment whose bot answers at `url`: an attached bot's URL, or a bot
    /// memd started (on 127.0.0.1 or localhost, at its port).
    fn watching(&self, url: &str) -> Option<DeployedStrategy> {
        let parsed = reqwest::Url::parse(url).ok()?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        self.table.slots(true).into_iter().find_map(|s| {
            let d = s.public();
            let same = match &d.attached {
                Some(a) => a.url == url,
                None => loopback && d.port.is_some() && d.port == parsed.port_or_known_default(),
            };
            same.then_some(d)
        })
    }

    /// The active attached bot called `name`.
    fn attached_named(&self, name: &str) -> Option<Arc<Slot>> {
        self.table
            .slots(true)
            .into_iter()
            .find(|s| s.record.lock().expect("slot lock").public.attached_name() == Some(name))
    }

    /// After a daemon restart: the attached bot's password read again, then polled (never
    /// spawned); one that does not answer is shown crashed until it does.
    pub(super) async fn resume_attached(self: Arc<Self>, slot: Arc<Slot>) {
        let path = match &slot.record.lock().expect("slot lock").runner {
            RunnerRecord::Attached(a) => a.password_file.clone(),
            _ => return,
        };
        let problem = match read_password(&path) {
            Ok(password) => {
                self.table.save_quietly(&slot, |r| {
                    if let RunnerRecord::Attached(a) = &mut r.runner {
                        a.password = password;
                    }
                });
                let client = slot.record.lock().expect("slot lock").bot_client();
                match client {
                    Some(client) if client.ping().await => None,
                    _ => Some("its API did not answer after the daemon restarted; polled until it does (memd did not start it and does not restart it)".to_string()),
                }
            }
            Err(e) => Some(format!("its password file: {e}")),
        };
        let id = slot.public().deployment_id;
        match problem {
            None => {
                info!(deployment = %id, "watching an attached bot again");
                self.table
                    .update(&slot, |r| r.public.status = DeploymentStatus::Running);
            }
            Some(why) => {
                warn!(deployment = %id, problem = %why, "an attached bot is not reachable");
                self.table.update(&slot, |r| {
                    r.public.status = DeploymentStatus::Crashed;
                    r.public.last_error = Some(why);
                });
            }
        }
        self.supervise(slot, None);
    }

    /// The registry strategy whose Freqtrade class is the bot's strategy, when exactly one
    /// is; else the refusal that asks for `--strategy`.
    async fn strategy_of_class(
        &self,
        config: &Map<String, Value>,
        url: &str,
    ) -> Result<StrategyId, RpcError> {
        let Some(class) = config.get("strategy").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params(
                METHOD,
                format!(
                    "the bot at {url} names no strategy in /api/v1/show_config; give the registry strategy with --strategy ID"
                ),
            ));
        };
        let registry = self.registry.clone();
        let wanted = class.to_string();
        let matches = tokio::task::spawn_blocking(move || {
            registry
                .summaries()
                .iter()
                .filter(|s| {
                    registry.get(s.id).is_ok_and(|d| {
                        class_of(&d.metadata.strategy).as_deref() == Some(wanted.as_str())
                    })
                })
                .map(|s| (s.id, s.display_name.clone()))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(internal)?;
        match matches.as_slice() {
            [(id, _)] => Ok(*id),
            [] => Err(RpcError::invalid_params(
                METHOD,
                format!(
                    "the bot at {url} runs the Freqtrade strategy {class}, which no registry strategy runs; register it, or give the strategy its trades go under with --strategy ID"
                ),
            )),
            several => Err(RpcError::invalid_params(
                METHOD,
                format!(
                    "the bot at {url} runs {class}, as several registry strategies do ({}); choose one with --strategy ID",
                    several
                        .iter()
                        .map(|(id, name)| format!("{name} {id}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

/// The Freqtrade class a registry strategy runs, if it runs as a Freqtrade bot.
fn class_of(strategy: &mem_protocol::strategy::StrategyMeta) -> Option<String> {
    match runner_of(strategy) {
        Runner::Freqtrade(spec) => spec
            .strategy_name
            .or_else(|| strategy.implementation.class_name.clone()),
        _ => None,
    }
}

/// An attachment's name: what `memctl detach` takes; printable, no spaces, not a UUID
/// (which `detach` reads as a deployment id).
fn check_name(name: &str) -> Result<String, RpcError> {
    let bad = |why: &str| RpcError::invalid_params(METHOD, format!("field `name`: {why}"));
    if name.is_empty() || name.len() > 64 {
        return Err(bad("1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(bad("letters, digits, `-`, `_` and `.` only"));
    }
    if name.parse::<DeploymentId>().is_ok() {
        return Err(bad("a name, not a UUID"));
    }
    Ok(name.to_string())
}

/// The password in `path`: its first line. The path must be absolute; a file any user
/// may read is refused (it would not stay a secret).
pub(super) fn read_password(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(format!(
            "{} is readable by every user; make it 0600 (chmod 600)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let password = text.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(password)
}

/// The bot answers at `url` and takes the credentials: `/ping`, then `/show_config`
/// (answered: what the attach reads of the bot).
async fn check_bot(
    client: &BotClient,
    url: &str,
    username: &str,
) -> Result<Map<String, Value>, RpcError> {
    if !client.ping().await {
        return Err(unavailable(format!(
            "no Freqtrade API answers at {url} (GET {}/ping): is the bot running with its api_server enabled there?",
            client.base()
        )));
    }
    client.show_config().await.map_err(|e| {
        let e = format!("{e:#}");
        if e.contains("401") {
            RpcError::permission_denied(format!(
                "the bot at {url} refused user {username} with the password file's password (HTTP 401)"
            ))
        } else {
            unavailable(format!("the bot at {url} did not answer /api/v1/show_config: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_password_files_are_checked() {
        assert_eq!(check_name("outside-1").unwrap(), "outside-1");
        let long = "x".repeat(65);
        for bad in ["", "two words", "a/b", long.as_str()] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_name(&DeploymentId::new_random().to_string())
                .unwrap_err()
                .message
                .contains("not a UUID")
        );

        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-value\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password(&file).unwrap(), "s3cret-value");
        assert!(
            read_password(Path::new("pw"))
                .unwrap_err()
                .contains("not an absolute path")
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = read_password(&file).unwrap_err();
        assert!(refused.contains("readable by every user"), "{refused}");
        assert!(!refused.contains("s3cret"), "{refused}");
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_password(&file).unwrap_err().contains("is empty"));
    }

    #[test]
    fn only_http_urls_without_credentials_are_taken() {
        assert_eq!(
            freqtrade::api_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            freqtrade::api_url("https://bots.example:8443/api/v1").unwrap(),
            "https://bots.example:8443"
        );
        for (bad, why) in [
            ("ftp://127.0.0.1:8080", "not ftp://"),
            ("127.0.0.1:8080", "http"),
            ("http://u:pw@127.0.0.1:8080", "no credentials in the URL"),
            ("http://127.0.0.1:8080/?a=b", "no query"),
        ] {
            let e = freqtrade::api_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }
}
