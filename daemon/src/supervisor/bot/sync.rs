//! What a running bot has done (one memd started, or one attached: the same road): its
//! stats polled (status, profit, balance) and its newly closed trades copied to the
//! strategy's performance log, the sync cursor saved with the deployment. Each trade
//! first teaches MEM ([`crate::mem::bots`]): it closes the decision the strategy's memd
//! mixin logged for it, or is recorded as an observed decision and outcome; its registry
//! line says what MEM had to do with it.

use super::super::Supervisor;
use super::super::record::Slot;
use crate::freqtrade::{self, BotClient};
use crate::registry::Caller;
use chrono::{DateTime, Utc};
use mem_protocol::deploy::*;
use mem_protocol::registry::{RecordTradesParams, TradeAction, TradeRecord};
use tracing::warn;

impl Supervisor {
    /// Reads status, profit and balance from the bot, and its new closed trades when its
    /// closed-trade count has grown; the bot's state about once a minute.
    pub(in crate::supervisor) async fn poll_stats(
        &self,
        slot: &Slot,
        client: &BotClient,
        poll: u64,
    ) {
        let open = client.open_trade_count().await.ok();
        let profit = client.profit().await.ok();
        let profit_all = profit.as_ref().map(|p| p.profit_all_coin);
        // What changes slowly is read about once a minute.
        let minute = (60.0 / self.settings.poll_interval.as_secs_f64())
            .ceil()
            .max(1.0) as u64;
        let (balance, state) = if poll % minute == 0 {
            (client.balance().await.ok(), client.state().await.ok())
        } else {
            (None, None)
        };
        let (public, last_synced) = {
            let r = slot.record.lock().expect("slot lock");
            (r.public.clone(), r.last_synced_trade())
        };
        let known_closed = public.stats.closed_trades;
        let closed_now = profit.as_ref().map(|p| p.closed_trade_count);
        if closed_now.is_some_and(|n| n > known_closed || (n > 0 && last_synced == 0)) {
            let wanted =
                (closed_now.unwrap_or(0).saturating_sub(known_closed) as usize + 10).min(500);
            if let Err(e) = self.copy_new_trades(slot, client, wanted).await {
                warn!(deployment_id = %public.deployment_id, strategy_id = %public.strategy_id, error = %e, "cannot copy the bot's closed trades");
            }
        }
        self.table.refresh(slot, |r| {
            let stats = &mut r.public.stats;
            if let Some(open) = open {
                stats.open_trades = open;
            }
            if let Some(p) = profit {
                stats.profit_closed = p.profit_closed_coin;
                stats.profit_all = p.profit_all_coin;
                stats.closed_trades = p.closed_trade_count;
            }
            if let Some(b) = balance {
                stats.balance = b.total;
                stats.stake_currency = b.stake;
            }
            if let Some(state) = state {
                stats.bot_state = Some(state);
            }
            stats.polled_at = Some(Utc::now());
        });
        self.guard_risk(slot, client, profit_all).await;
    }

    /// Copies the bot's closed trades newer than the last one copied (read `wanted` at a
    /// time, newest first) into the strategy's performance log, then saves the new
    /// cursor; answers how many.
    async fn copy_new_trades(
        &self,
        slot: &Slot,
        client: &BotClient,
        wanted: usize,
    ) -> Result<usize, String> {
        let (deployment_id, strategy_id, last_synced, forwarded) = {
            let r = slot.record.lock().expect("slot lock");
            (
                r.public.deployment_id,
                r.public.strategy_id,
                r.last_synced_trade(),
                r.bot().map(|b| b.forwarded.clone()).unwrap_or_default(),
            )
        };
        // Newest first, page after page until one reaches the cursor (or the bot's first
        // trade): one page as a rule; more for a bot attached with a history. A page that
        // brings no older trade ends it too (an API that ignores the offset).
        let mut new_trades: Vec<freqtrade::ClosedTrade> = Vec::new();
        let mut offset = 0;
        loop {
            let page = client
                .closed_trades(wanted, offset)
                .await
                .map_err(|e| format!("the bot's trades could not be read: {e}"))?;
            let read = page.trades.len();
            let oldest_before = new_trades.iter().map(|t| t.trade_id).min();
            let reached = page.trades.iter().any(|t| t.trade_id <= last_synced);
            let older: Vec<_> = page
                .trades
                .into_iter()
                .filter(|t| t.trade_id > last_synced)
                .filter(|t| oldest_before.is_none_or(|o| t.trade_id < o))
                .collect();
            let progressed = !older.is_empty();
            new_trades.extend(older);
            if reached || !progressed || read < wanted {
                break;
            }
            offset += read;
        }
        let Some(newest) = new_trades.iter().map(|t| t.trade_id).max() else {
            return Ok(0);
        };
        // Oldest first: the learning loop sees the trades in the order they closed.
        new_trades.sort_by_key(|t| t.trade_id);
        let mut decisions = Vec::with_capacity(new_trades.len());
        for t in &new_trades {
            // The mixin's decision (the trade's custom data), else that of the alert memd
            // forwarded to open it.
            let tied = client.decision_of(t.trade_id).await.map_err(|e| {
                format!(
                    "the MEM decision of trade {} could not be read: {e}",
                    t.trade_id
                )
            })?;
            decisions.push(tied.or_else(|| forwarded.get(&t.trade_id).cloned()));
        }
        let count = new_trades.len();
        let registry = self.registry.clone();
        let memory = self.native.memory.clone();
        let market_dir = self.native.market_dir.clone();
        let timeframe = self.native.timeframe.parse().ok();
        let strategy = self.registry.summary(strategy_id).map(|s| s.name);
        tokio::task::spawn_blocking(move || {
            let market = timeframe.map(|timeframe| crate::mem::bots::Market {
                dir: &market_dir,
                timeframe,
            });
            let records: Vec<TradeRecord> = new_trades
                .iter()
                .zip(decisions)
                .filter_map(|(t, decision_id)| {
                    let mut record = to_trade_record(deployment_id, t)?;
                    if let (Some(strategy), Some(market)) = (&strategy, market) {
                        let trade = bot_trade(deployment_id, &record, t, decision_id);
                        teach_mem(&memory, market, strategy, &mut record, &trade);
                    }
                    Some(record)
                })
                .collect();
            registry.record_trades(
                RecordTradesParams {
                    id: strategy_id,
                    trades: records,
                },
                &Caller {
                    uid: None,
                    client: Some("memd supervisor".into()),
                },
            )
        })
        .await
        .map_err(|e| format!("the registry refused the trades: {e}"))?
        .map_err(|e| format!("the registry refused the trades: {e}"))?;
        self.table
            .save_quietly(slot, |r| r.set_last_synced_trade(newest));
        Ok(count)
    }

    /// The scheduled performance sync: every running Freqtrade bot's closed trades (an
    /// attached bot's too) not yet in the registry are copied (the poll does it when a
    /// bot's closed count grows; this catches what a missed poll or a restart left
    /// behind). Answers the bots synced, the trades copied, and a problem per bot that
    /// could not be read.
    pub async fn sync_performance(&self) -> (usize, usize, Vec<String>) {
        let (mut bots, mut trades, mut problems) = (0, 0, Vec::new());
        for slot in self.table.slots(true) {
            let record = slot.record.lock().expect("slot lock").clone();
            if record.public.status != DeploymentStatus::Running {
                continue;
            }
            let Some(client) = record.bot_client() else {
                continue;
            };
            match self.copy_new_trades(&slot, &client, 500).await {
                Ok(n) => {
                    bots += 1;
                    trades += n;
                }
                Err(e) => problems.push(format!("{}: {e}", record.public.strategy_name)),
            }
        }
        (bots, trades, problems)
    }
}

/// Hands a closed trade to MEM ([`crate::mem::bots::learn`]) and writes what MEM had to do
/// with it into its registry line; a failure is logged and the trade recorded without MEM.
fn teach_mem(
    memory: &crate::mem::service::Memory,
    market: crate::mem::bots::Market<'_>,
    strategy: &str,
    record: &mut TradeRecord,
    trade: &crate::mem::bots::BotTrade,
) {
    match crate::mem::bots::learn(memory, market, strategy, trade) {
        Ok(learned) => {
            let d = &learned.decision;
            record.mem_enhanced = learned.enhanced();
            record.mem_confidence_boost = learned.confidence_boost();
            record.learned_pattern = d.learned_pattern.clone();
            record.market_regime = d.signature.clone();
            if learned.enhanced() {
                record.confidence = Some(d.confidence);
            }
        }
        Err(e) => {
            warn!(strategy, trade = trade.trade_id, error = %e, "a bot's closed trade could not teach MEM")
        }
    }
}

/// A closed trade as MEM takes it, from its registry line and the bot's own fields.
fn bot_trade(
    deployment_id: DeploymentId,
    record: &TradeRecord,
    t: &freqtrade::ClosedTrade,
    decision_id: Option<String>,
) -> crate::mem::bots::BotTrade {
    crate::mem::bots::BotTrade {
        deployment_id,
        trade_id: t.trade_id,
        symbol: record.symbol.clone(),
        short: t.is_short,
        open_rate: record.entry_price,
        close_rate: record.exit_price,
        opened_at: record.entry_time,
        closed_at: record.exit_time,
        pnl: record.pnl,
        pnl_pct: record.pnl_pct,
        exit_reason: t.exit_reason.clone(),
        decision_id,
    }
}

/// A Freqtrade closed trade as a registry trade; its id is unique across deployments.
fn to_trade_record(deployment: DeploymentId, t: &freqtrade::ClosedTrade) -> Option<TradeRecord> {
    let exit = DateTime::from_timestamp_millis(t.close_timestamp?)?;
    let entry = DateTime::from_timestamp_millis(t.open_timestamp)?;
    let pnl = t.close_profit_abs.or(t.profit_abs)?;
    Some(TradeRecord {
        trade_id: format!("{deployment}:{}", t.trade_id),
        symbol: t.pair.clone(),
        timeframe: t
            .timeframe
            .as_ref()
            .map(|v| v.to_string().trim_matches('"').to_string()),
        action: if t.is_short {
            TradeAction::Sell
        } else {
            TradeAction::Buy
        },
        confidence: None,
        entry_price: t.open_rate,
        exit_price: t.close_rate?,
        entry_time: entry,
        exit_time: exit.max(entry),
        pnl,
        pnl_pct: t.close_profit.or(t.profit_ratio).unwrap_or(0.0),
        is_win: Some(pnl > 0.0),
        mem_enhanced: false,
        mem_confidence_boost: None,
        learned_pattern: None,
        market_regime: None,
        volatility: None,
        broker: Some("freqtrade".into()),
        slippage: None,
        commission: t
            .fee_open
            .zip(t.stake_amount)
            .map(|(fee, stake)| fee * stake * 2.0),
        duration_seconds: Some((exit.max(entry) - entry).num_seconds()),
        max_adverse_excursion: excursion(t, false),
        max_favorable_excursion: excursion(t, true),
        stop_loss: t.stop_loss_abs.filter(|p| p.is_finite() && *p > 0.0),
        ..TradeRecord::default()
    })
}

/// A trade's best (`favourable`) or worst price move, from Freqtrade's highest and
/// lowest rates while it was open, as a fraction of the entry in the trade's favour.
fn excursion(t: &freqtrade::ClosedTrade, favourable: bool) -> Option<f64> {
    let (high, low) = (t.max_rate?, t.min_rate?);
    if t.open_rate <= 0.0 || !high.is_finite() || !low.is_finite() || high < low {
        return None;
    }
    let up = high / t.open_rate - 1.0;
    let down = low / t.open_rate - 1.0;
    Some(match (t.is_short, favourable) {
        (false, true) => up,
        (false, false) => down,
        (true, true) => -down,
        (true, false) => -up,
    })
}
