//! Acting on a running bot: a registry parameter that is a Freqtrade config key written
//! into its config and reloaded; draining before a stop; a TradingView alert's forced
//! entry or exit, after checking the bot takes it.

use super::super::Supervisor;
use super::super::record::{Control, RunnerRecord, Slot};
use crate::freqtrade::{self, BotClient};
use mem_protocol::deploy::*;
use mem_protocol::mem::SignalAction;
use mem_protocol::strategy::StrategyDetail;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// A signal sent to a bot (a TradingView alert's forced entry or exit).
#[derive(Debug, Clone)]
pub struct SignalForwarded {
    pub deployment_id: DeploymentId,
    /// The bot's endpoint called: `/api/v1/forceenter` or `/api/v1/forceexit`.
    pub endpoint: String,
    pub pair: String,
    pub trade_ids: Vec<i64>,
    pub dry_run: bool,
}

impl Supervisor {
    /// The risk guard's part of a poll: the bot's profit (when read) handed to the guard;
    /// a bot the guard pauses is told `stopentry` (once per process of it: a restarted bot
    /// is told again; after a daemon restart, each is told again).
    pub(in crate::supervisor) async fn guard_risk(
        &self,
        slot: &Slot,
        client: &BotClient,
        profit_all: Option<f64>,
    ) {
        let (bot, since) = {
            let r = slot.record.lock().expect("slot lock");
            let p = &r.public;
            let bot = mem_protocol::risk::RiskBot {
                deployment_id: p.deployment_id,
                strategy_id: p.strategy_id,
                strategy_name: p.strategy_name.clone(),
            };
            (bot, p.running_since)
        };
        let pauses = match profit_all {
            Some(profit) => self.risk.observe(&bot, profit, || self.risk_bots()),
            None => self.risk.pauses(bot.deployment_id),
        };
        if !pauses || self.risk.told(bot.deployment_id, since) {
            return;
        }
        let deployment = bot.deployment_id;
        // An attached bot is paused only when its operator allowed it; else said once (as
        // if told: it is not asked again until it runs anew).
        let refusal = slot
            .record
            .lock()
            .expect("slot lock")
            .refusal(Control::StopEntry);
        if let Some(why) = refusal {
            warn!(%deployment, strategy = %bot.strategy_name, %why, "risk guard: the bot would be paused, but memd may not tell it stopentry");
            self.risk.mark_told(deployment, since);
            return;
        }
        match client.stop_entries().await {
            Ok(()) => {
                self.risk.mark_told(deployment, since);
                warn!(%deployment, strategy = %bot.strategy_name, "risk guard: the bot was told to stop entering (stopentry); open trades run their exits");
            }
            Err(e) => {
                warn!(%deployment, error = %format!("{e:#}"), "risk guard: the bot did not take stopentry; asked again at its next poll")
            }
        }
    }

    /// The Freqtrade bots that are active, attached ones too: those a fleet-wide trip
    /// names.
    fn risk_bots(&self) -> Vec<mem_protocol::risk::RiskBot> {
        self.table
            .slots(true)
            .iter()
            .filter_map(|s| {
                let r = s.record.lock().expect("slot lock");
                matches!(
                    r.runner,
                    RunnerRecord::Freqtrade(_) | RunnerRecord::Attached(_)
                )
                .then(|| mem_protocol::risk::RiskBot {
                    deployment_id: r.public.deployment_id,
                    strategy_id: r.public.strategy_id,
                    strategy_name: r.public.strategy_name.clone(),
                })
            })
            .collect()
    }

    /// A running bot's config key `name` changed in the registry: the key is set in its
    /// rendered `config.json` (rewritten atomically, 0600), then the bot is told to
    /// `reload_config`. A bot being stopped or restarted is left alone; a bot that does
    /// not take the reload gets the new value when it next starts (restart, crash).
    pub(in crate::supervisor) async fn reload_bot_parameter(
        &self,
        slot: &Slot,
        detail: &StrategyDetail,
        name: &str,
    ) -> String {
        let record = slot.record.lock().expect("slot lock").clone();
        let deployment = record.public.deployment_id;
        let Ok(_op) = slot.op.try_lock() else {
            return format!(
                "deployment {deployment} is being stopped or restarted: its config was left as it was; the next deploy uses the new value"
            );
        };
        let tuning = freqtrade::config_parameters(&detail.metadata.strategy.parameters);
        let value = tuning.get(name).cloned().unwrap_or(Value::Null);
        let path = record.dir.join("config.json");
        match rewrite_config(&path, &tuning) {
            Err(e) => {
                warn!(%deployment, error = %e, "cannot rewrite a bot's config for a parameter change");
                return format!(
                    "Freqtrade config key `{name}`: cannot rewrite {} ({e:#}); the bot keeps its old value",
                    path.display()
                );
            }
            Ok(false) => {
                return format!(
                    "Freqtrade config key `{name}`: deployment {deployment} already runs with {name} = {value}"
                );
            }
            Ok(true) => {}
        }
        let Some(client) = record.bot_client() else {
            return format!(
                "Freqtrade config key `{name}`: deployment {deployment}'s config has {name} = {value}; the bot gets it when it starts"
            );
        };
        match client.reload_config().await {
            Ok(()) => {
                info!(%deployment, parameter = name, %value, "a parameter changed: the bot's config was rewritten and reloaded");
                format!(
                    "Freqtrade config key `{name}`: deployment {deployment}'s config has {name} = {value} and the bot was told to reload it"
                )
            }
            Err(e) => {
                warn!(%deployment, error = %e, "a bot did not take reload_config");
                format!(
                    "Freqtrade config key `{name}`: deployment {deployment}'s config has {name} = {value}, but the bot did not take the reload ({e:#}); it applies at the bot's next start"
                )
            }
        }
    }

    /// No new entries on a running Freqtrade bot (Freqtrade's `/stopentry`): its open
    /// trades still run their exits. Native runners have no such switch.
    pub async fn stop_entries(&self, id: DeploymentId) -> Result<(), String> {
        let client = self.table.slot(id).map(|slot| {
            let r = slot.record.lock().expect("slot lock");
            match r.refusal(Control::StopEntry) {
                Some(why) => Err(why),
                None => Ok(r
                    .public
                    .status
                    .is_active()
                    .then(|| r.bot_client())
                    .flatten()),
            }
        });
        let Some(client) = client.transpose()?.flatten() else {
            return Err(format!("deployment {id} is no running Freqtrade bot"));
        };
        client
            .stop_entries()
            .await
            .map_err(|e| format!("the bot (deployment {id}) refused stopentry: {e:#}"))?;
        info!(deployment = %id, "no new entries: stopentry sent");
        Ok(())
    }

    /// Sends a signal to the strategy's running Freqtrade bot: a buy as a forced long
    /// entry on `pair` (tagged `tradingview`, which the bot's memd mixin does not ask MEM
    /// about again: `decision` is MEM's decision on it, closed by the trade sync when the
    /// trade closes), a sell as forced exits of its open long trades on `pair`. Answers
    /// what was done, or why nothing was (a bot that trades live is refused unless
    /// `forward_live`).
    pub async fn forward_signal(
        &self,
        strategy: mem_protocol::strategy::StrategyId,
        strategy_name: &str,
        action: SignalAction,
        decision: &str,
        pair: &str,
        forward_live: bool,
    ) -> Result<SignalForwarded, String> {
        let found = self.table.active_of(strategy).map(|slot| {
            let r = slot.record.lock().expect("slot lock");
            match r.refusal(Control::Signal) {
                Some(why) => Err(why),
                None => Ok(r.bot_client().map(|c| (r.public.clone(), c, slot.clone()))),
            }
        });
        let Some((deployment, client, slot)) = found.transpose()?.flatten() else {
            return Err(format!(
                "strategy {strategy_name} has no running Freqtrade bot (memctl deploy {strategy} starts one)"
            ));
        };
        let facts = bot_facts(&deployment, &client).await?;
        let id = deployment.deployment_id;
        if let Some(reason) = refusal_of_bot(&facts, &id, action, forward_live) {
            return Err(reason);
        }
        let whitelist = client
            .whitelist()
            .await
            .map_err(|e| format!("cannot ask the bot (deployment {id}) for its pairs: {e:#}"))?;
        if let Some(reason) = refusal_of_pair(pair, &whitelist) {
            return Err(reason);
        }
        let forwarded = |endpoint: &str, trade_ids: Vec<i64>| SignalForwarded {
            deployment_id: id,
            endpoint: endpoint.into(),
            pair: pair.to_string(),
            trade_ids,
            dry_run: facts.dry_run,
        };
        match action {
            SignalAction::Buy => match client.force_enter(pair, "long", FORWARDED_TAG).await {
                Ok(trade) => {
                    self.table.save_quietly(&slot, |r| {
                        if let RunnerRecord::Freqtrade(bot) = &mut r.runner {
                            bot.forwarded.insert(trade, decision.to_string());
                        }
                    });
                    Ok(forwarded("/api/v1/forceenter", vec![trade]))
                }
                Err(e) => Err(format!("the bot refused the forced entry: {e:#}")),
            },
            SignalAction::Sell => force_exits(&client, id, pair)
                .await
                .map(|closed| forwarded("/api/v1/forceexit", closed)),
            SignalAction::Hold => Err("a hold is not forwarded".into()),
        }
    }
}

/// The entry tag of a forced entry memd forwards (a TradingView alert MEM decided on); the
/// bots' `memd` section names it (`decided_tags`) so that the mixin does not ask again.
pub const FORWARDED_TAG: &str = "tradingview";

/// Sets the config keys of `tuning` in a rendered config; answers whether it changed.
fn rewrite_config(path: &Path, tuning: &serde_json::Map<String, Value>) -> anyhow::Result<bool> {
    let mut config: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    if freqtrade::apply_config_parameters(&mut config, tuning).is_empty() {
        return Ok(false);
    }
    crate::datadir::write_atomic(
        path,
        &serde_json::to_vec_pretty(&config).expect("configs serialize"),
        0o600,
    )?;
    Ok(true)
}

/// Draining: no new entries, then waits (up to `deadline`) for the open trades to close.
pub(in crate::supervisor) async fn drain(
    client: &BotClient,
    deployment: DeploymentId,
    deadline: Duration,
) {
    let deadline = Instant::now() + deadline;
    if client.stop_entries().await.is_ok() {
        info!(%deployment, "draining: no new entries; waiting for open trades to close");
        while Instant::now() < deadline {
            match client.open_trades().await {
                Ok(open) if open.is_empty() => break,
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }
}

/// Forced exits of the bot's open long trades on `pair`; answers those it took.
async fn force_exits(client: &BotClient, id: DeploymentId, pair: &str) -> Result<Vec<i64>, String> {
    let open = client
        .open_trades()
        .await
        .map_err(|e| format!("cannot read the bot's open trades: {e:#}"))?;
    let ids: Vec<i64> = open
        .iter()
        .filter(|t| {
            t.get("pair").and_then(Value::as_str) == Some(pair)
                && !t.get("is_short").and_then(Value::as_bool).unwrap_or(false)
        })
        .filter_map(|t| t.get("trade_id").and_then(Value::as_i64))
        .collect();
    if ids.is_empty() {
        return Err(format!("the bot has no open trade on {pair} to exit"));
    }
    let mut closed = Vec::new();
    let mut errors = Vec::new();
    for trade in ids {
        match client.force_exit(trade).await {
            Ok(()) => closed.push(trade),
            Err(e) => errors.push(format!("trade {trade}: {e:#}")),
        }
    }
    if closed.is_empty() {
        return Err(format!(
            "the bot refused the forced exit: {}",
            errors.join("; ")
        ));
    }
    if !errors.is_empty() {
        warn!(deployment = %id, errors = %errors.join("; "), "some forced exits of a TradingView alert failed");
    }
    Ok(closed)
}

/// What decides whether a bot takes a forced entry or exit.
#[derive(Debug, Clone)]
struct BotFacts {
    status: DeploymentStatus,
    dry_run: bool,
    force_entry_enable: bool,
    /// `running`, `paused`, `stopped`...
    state: String,
}

async fn bot_facts(deployment: &DeployedStrategy, client: &BotClient) -> Result<BotFacts, String> {
    if deployment.status != DeploymentStatus::Running {
        return Ok(BotFacts {
            status: deployment.status,
            dry_run: deployment.dry_run,
            force_entry_enable: false,
            state: String::new(),
        });
    }
    let config = client.show_config().await.map_err(|e| {
        format!(
            "cannot ask the bot (deployment {}): {e:#}",
            deployment.deployment_id
        )
    })?;
    Ok(BotFacts {
        status: deployment.status,
        // Live if either the deployment or the bot says so.
        dry_run: deployment.dry_run
            && config
                .get("dry_run")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        force_entry_enable: config
            .get("force_entry_enable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        state: config
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    })
}

/// Why a signal is not sent to this bot, if it is not.
fn refusal_of_bot(
    facts: &BotFacts,
    deployment: &DeploymentId,
    action: SignalAction,
    forward_live: bool,
) -> Option<String> {
    if facts.status != DeploymentStatus::Running {
        return Some(format!(
            "the bot (deployment {deployment}) is {}, not running",
            format!("{:?}", facts.status).to_lowercase()
        ));
    }
    if !facts.dry_run && !forward_live {
        return Some(format!(
            "the bot (deployment {deployment}) trades live (dry_run false) and [http.tradingview] forward_live is off"
        ));
    }
    if !facts.force_entry_enable {
        return Some(
            "the bot's config does not allow forced entries (force_entry_enable is not true; set it in the strategy's base config or in [freqtrade] config_overrides, then redeploy)"
                .into(),
        );
    }
    let state_ok = match action {
        SignalAction::Buy => facts.state == "running",
        _ => facts.state != "stopped",
    };
    if !state_ok {
        return Some(format!(
            "the bot (deployment {deployment}) is {:?}, it takes no {}",
            facts.state,
            if action == SignalAction::Buy {
                "entries"
            } else {
                "exits"
            }
        ));
    }
    None
}

/// Why a pair is not sent to a bot with this whitelist, if it is not.
fn refusal_of_pair(pair: &str, whitelist: &[String]) -> Option<String> {
    (!whitelist.iter().any(|p| p == pair)).then(|| {
        format!(
            "{pair} is not among the bot's pairs ({})",
            whitelist.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_not_to_forward_is_told() {
        let id = DeploymentId::new_random();
        let ok = BotFacts {
            status: DeploymentStatus::Running,
            dry_run: true,
            force_entry_enable: true,
            state: "running".into(),
        };
        assert_eq!(refusal_of_bot(&ok, &id, SignalAction::Buy, false), None);
        let why = |facts: BotFacts, action, live| {
            refusal_of_bot(&facts, &id, action, live).unwrap_or_default()
        };
        assert!(
            why(
                BotFacts {
                    status: DeploymentStatus::Restarting,
                    ..ok.clone()
                },
                SignalAction::Buy,
                false
            )
            .contains("restarting, not running")
        );
        let live = BotFacts {
            dry_run: false,
            ..ok.clone()
        };
        assert!(why(live.clone(), SignalAction::Buy, false).contains("forward_live is off"));
        assert_eq!(refusal_of_bot(&live, &id, SignalAction::Buy, true), None);
        assert!(
            why(
                BotFacts {
                    force_entry_enable: false,
                    ..ok.clone()
                },
                SignalAction::Sell,
                false
            )
            .contains("force_entry_enable")
        );
        let paused = BotFacts {
            state: "paused".into(),
            ..ok.clone()
        };
        assert!(why(paused.clone(), SignalAction::Buy, false).contains("no entries"));
        assert_eq!(
            refusal_of_bot(&paused, &id, SignalAction::Sell, false),
            None,
            "a paused bot still exits"
        );
        let whitelist = vec!["ETH/USDT".to_string()];
        assert_eq!(refusal_of_pair("ETH/USDT", &whitelist), None);
        assert!(
            refusal_of_pair("BTC/USDT", &whitelist)
                .unwrap()
                .contains("not among the bot's pairs (ETH/USDT)")
        );
    }
}
