//! Closed trades in `strategy_performance`: a batch is one statement (arrays through
//! `UNNEST`), and the database decides duplicates (`UNIQUE (strategy_id, trade_id)`), so a
//! trade two daemons record is counted once.

use super::super::metrics::TradePoint;
use super::rows::{RowError, Tx, code_of, db};
use chrono::{DateTime, Utc};
use mem_protocol::registry::{TradeAction, TradeRecord};
use mem_protocol::strategy::StrategyId;
use sqlx::Row;
use sqlx::postgres::{PgExecutor, PgRow};
use std::collections::HashMap;
use std::sync::LazyLock;

/// What a batch did: the trades it inserted (with their `performance_id`, in the batch's
/// order) and the ids already there (or twice in the batch), in the batch's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inserted {
    pub inserted: Vec<(String, i64)>,
    pub duplicates: Vec<String>,
}

/// A stored trade and its row id (the order trades were recorded in).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrade {
    pub performance_id: i64,
    pub trade: TradeRecord,
}

fn action_text(a: TradeAction) -> &'static str {
    match a {
        TradeAction::Buy => "BUY",
        TradeAction::Sell => "SELL",
        TradeAction::Hold => "HOLD",
    }
}

const INSERT_TRADES: &str = "INSERT INTO strategy_performance (strategy_id, recorded_at, recorded_by, \
     version_id, trade_id, symbol, timeframe, signal_action, signal_confidence, entry_price, exit_price, \
     entry_timestamp, exit_timestamp, duration_seconds, pnl, pnl_percentage, is_win, max_adverse_excursion, \
     max_favorable_excursion, stop_loss, take_profit, was_mem_enhanced, mem_confidence_boost, \
     learned_pattern_applied, mem_reasoning, market_regime, volatility, volume_ratio, broker, slippage, commission) \
     SELECT $1, $2, $3, t.* FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
     $9::float8[], $10::float8[], $11::float8[], $12::timestamptz[], $13::timestamptz[], $14::int8[], \
     $15::float8[], $16::float8[], $17::bool[], $18::float8[], $19::float8[], $20::float8[], $21::float8[], \
     $22::bool[], $23::float8[], $24::text[], $25::text[], $26::text[], $27::float8[], $28::float8[], \
     $29::text[], $30::float8[], $31::float8[]) AS t \
     ON CONFLICT (strategy_id, trade_id) DO NOTHING RETURNING trade_id, performance_id";

/// Inserts a batch of one strategy's trades in one statement. As the file log does, a
/// trade without `is_win` is a win when `pnl > 0`, and one without a duration gets its
/// exit minus entry. `server` is recorded as `recorded_by`.
pub async fn insert_trades(
    tx: &mut Tx<'_>,
    id: StrategyId,
    server: &str,
    trades: &[TradeRecord],
    now: DateTime<Utc>,
) -> Result<Inserted, RowError> {
    if trades.is_empty() {
        return Ok(Inserted::default());
    }
    macro_rules! column {
        ($f:expr) => {
            trades.iter().map($f).collect::<Vec<_>>()
        };
    }
    let rows = sqlx::query(INSERT_TRADES)
        .bind(id.0)
        .bind(now)
        .bind(server)
        .bind(column!(|t| t.version_id.clone()))
        .bind(column!(|t| t.trade_id.clone()))
        .bind(column!(|t| t.symbol.clone()))
        .bind(column!(|t| t.timeframe.clone()))
        .bind(column!(|t| action_text(t.action)))
        .bind(column!(|t| t.confidence))
        .bind(column!(|t| t.entry_price))
        .bind(column!(|t| t.exit_price))
        .bind(column!(|t| t.entry_time))
        .bind(column!(|t| t.exit_time))
        .bind(column!(|t| {
            t.duration_seconds
                .unwrap_or_else(|| (t.exit_time - t.entry_time).num_seconds())
        }))
        .bind(column!(|t| t.pnl))
        .bind(column!(|t| t.pnl_pct))
        .bind(column!(|t| t.is_win.unwrap_or(t.pnl > 0.0)))
        .bind(column!(|t| t.max_adverse_excursion))
        .bind(column!(|t| t.max_favorable_excursion))
        .bind(column!(|t| t.stop_loss))
        .bind(column!(|t| t.take_profit))
        .bind(column!(|t| t.mem_enhanced))
        .bind(column!(|t| t.mem_confidence_boost))
        .bind(column!(|t| t.learned_pattern.clone()))
        .bind(column!(|t| t.mem_reasoning.clone()))
        .bind(column!(|t| t.market_regime.clone()))
        .bind(column!(|t| t.volatility))
        .bind(column!(|t| t.volume_ratio))
        .bind(column!(|t| t.broker.clone()))
        .bind(column!(|t| t.slippage))
        .bind(column!(|t| t.commission))
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| match code_of(&e) {
            Some((code, _)) if code == "23503" => RowError::NotFound(id),
            Some((code, _)) if code == "23514" => {
                let bad = trades.iter().find(|t| t.exit_time < t.entry_time);
                RowError::Invalid(match bad {
                    Some(t) => format!(
                        "trade {:?} of strategy {id} exits ({}) before it enters ({})",
                        t.trade_id, t.exit_time, t.entry_time
                    ),
                    None => format!("a trade of strategy {id} breaks a check: {e}"),
                })
            }
            Some((code, _)) if code == "22P05" || code == "22021" => RowError::Invalid(format!(
                "a trade of strategy {id} holds text PostgreSQL cannot store (a NUL character): {e}"
            )),
            _ => db(format!(
                "recording {} trades of strategy {id}",
                trades.len()
            ))(e),
        })?;
    let mut rows_of: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for row in &rows {
        rows_of.insert(row.get(0), row.get(1));
    }
    let mut out = Inserted {
        inserted: Vec::with_capacity(rows.len()),
        duplicates: Vec::new(),
    };
    for t in trades {
        // The first of the batch with an inserted id took the row; the rest are duplicates.
        match rows_of.remove(&t.trade_id) {
            Some(row) => out.inserted.push((t.trade_id.clone(), row)),
            None => out.duplicates.push(t.trade_id.clone()),
        }
    }
    Ok(out)
}

const TRADE_COLUMNS: &str = "performance_id, version_id, trade_id, symbol, timeframe, signal_action, \
     signal_confidence, entry_price, exit_price, entry_timestamp, exit_timestamp, duration_seconds, pnl, \
     pnl_percentage, is_win, max_adverse_excursion, max_favorable_excursion, stop_loss, take_profit, \
     was_mem_enhanced, mem_confidence_boost, learned_pattern_applied, mem_reasoning, market_regime, \
     volatility, volume_ratio, broker, slippage, commission";

static AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TRADE_COLUMNS} FROM strategy_performance WHERE strategy_id = $1 AND performance_id > $2 \
         ORDER BY performance_id"
    )
});
static BY_ROWS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TRADE_COLUMNS} FROM strategy_performance WHERE strategy_id = $1 AND performance_id = ANY($2)"
    )
});

/// A strategy's trades recorded after row `after` (0: all), in the order recorded.
pub async fn read_trades<'e>(
    ex: impl PgExecutor<'e>,
    id: StrategyId,
    after: i64,
) -> Result<Vec<StoredTrade>, RowError> {
    let rows = sqlx::query(&AFTER)
        .bind(id.0)
        .bind(after)
        .fetch_all(ex)
        .await
        .map_err(db(format!("reading strategy {id}'s trades")))?;
    rows.iter().map(|row| stored_trade(row, id)).collect()
}

/// The trades at rows `wanted` (a page, located by the in-memory log), in that order;
/// a row that is not there (or not this strategy's) is left out.
pub async fn read_trades_at<'e>(
    ex: impl PgExecutor<'e>,
    id: StrategyId,
    wanted: &[i64],
) -> Result<Vec<StoredTrade>, RowError> {
    let rows = sqlx::query(&BY_ROWS)
        .bind(id.0)
        .bind(wanted)
        .fetch_all(ex)
        .await
        .map_err(db(format!("reading a page of strategy {id}'s trades")))?;
    let mut found: HashMap<i64, StoredTrade> = rows
        .iter()
        .map(|row| stored_trade(row, id).map(|t| (t.performance_id, t)))
        .collect::<Result<_, _>>()?;
    Ok(wanted.iter().filter_map(|r| found.remove(r)).collect())
}

/// A stored trade reduced to what metrics and the duplicate check need: what a log loads
/// on first use, without the other 25 columns.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRow {
    pub performance_id: i64,
    pub trade_id: String,
    pub point: TradePoint,
}

/// A strategy's trades after row `after` (0: all) as [`PointRow`]s, in the order recorded.
pub async fn read_trade_points<'e>(
    ex: impl PgExecutor<'e>,
    id: StrategyId,
    after: i64,
) -> Result<Vec<PointRow>, RowError> {
    let rows = sqlx::query(
        "SELECT performance_id, trade_id, entry_timestamp, exit_timestamp, pnl, pnl_percentage, is_win, \
         was_mem_enhanced FROM strategy_performance WHERE strategy_id = $1 AND performance_id > $2 \
         ORDER BY performance_id",
    )
    .bind(id.0)
    .bind(after)
    .fetch_all(ex)
    .await
    .map_err(db(format!("loading strategy {id}'s trades")))?;
    rows.iter()
        .map(|row| {
            let performance_id: i64 = row
                .try_get("performance_id")
                .map_err(|e| RowError::Corrupt(format!("a trade of strategy {id}: {e}")))?;
            let bad = |e: sqlx::Error| {
                RowError::Corrupt(format!("trade row {performance_id} of strategy {id}: {e}"))
            };
            let entry: DateTime<Utc> = row.try_get("entry_timestamp").map_err(bad)?;
            let exit: DateTime<Utc> = row.try_get("exit_timestamp").map_err(bad)?;
            Ok(PointRow {
                performance_id,
                trade_id: row.try_get("trade_id").map_err(bad)?,
                point: TradePoint {
                    entry_ms: entry.timestamp_millis(),
                    exit_ms: exit.timestamp_millis(),
                    pnl: row.try_get("pnl").map_err(bad)?,
                    pnl_pct: row.try_get("pnl_percentage").map_err(bad)?,
                    is_win: row.try_get("is_win").map_err(bad)?,
                    mem_enhanced: row.try_get("was_mem_enhanced").map_err(bad)?,
                },
            })
        })
        .collect()
}

fn stored_trade(row: &PgRow, id: StrategyId) -> Result<StoredTrade, RowError> {
    let performance_id: i64 = row
        .try_get("performance_id")
        .map_err(|e| RowError::Corrupt(format!("a trade of strategy {id}: {e}")))?;
    let bad = |e: sqlx::Error| {
        RowError::Corrupt(format!("trade row {performance_id} of strategy {id}: {e}"))
    };
    let action: String = row.try_get("signal_action").map_err(bad)?;
    let action = match action.as_str() {
        "BUY" => TradeAction::Buy,
        "SELL" => TradeAction::Sell,
        "HOLD" => TradeAction::Hold,
        other => {
            return Err(RowError::Corrupt(format!(
                "trade row {performance_id} of strategy {id}: signal_action {other:?}"
            )));
        }
    };
    Ok(StoredTrade {
        performance_id,
        trade: TradeRecord {
            trade_id: row.try_get("trade_id").map_err(bad)?,
            symbol: row.try_get("symbol").map_err(bad)?,
            timeframe: row.try_get("timeframe").map_err(bad)?,
            action,
            confidence: row.try_get("signal_confidence").map_err(bad)?,
            entry_price: row.try_get("entry_price").map_err(bad)?,
            exit_price: row.try_get("exit_price").map_err(bad)?,
            entry_time: row.try_get("entry_timestamp").map_err(bad)?,
            exit_time: row.try_get("exit_timestamp").map_err(bad)?,
            pnl: row.try_get("pnl").map_err(bad)?,
            pnl_pct: row.try_get("pnl_percentage").map_err(bad)?,
            is_win: Some(row.try_get("is_win").map_err(bad)?),
            mem_enhanced: row.try_get("was_mem_enhanced").map_err(bad)?,
            mem_confidence_boost: row.try_get("mem_confidence_boost").map_err(bad)?,
            learned_pattern: row.try_get("learned_pattern_applied").map_err(bad)?,
            market_regime: row.try_get("market_regime").map_err(bad)?,
            volatility: row.try_get("volatility").map_err(bad)?,
            broker: row.try_get("broker").map_err(bad)?,
            slippage: row.try_get("slippage").map_err(bad)?,
            commission: row.try_get("commission").map_err(bad)?,
            version_id: row.try_get("version_id").map_err(bad)?,
            duration_seconds: row.try_get("duration_seconds").map_err(bad)?,
            max_adverse_excursion: row.try_get("max_adverse_excursion").map_err(bad)?,
            max_favorable_excursion: row.try_get("max_favorable_excursion").map_err(bad)?,
            stop_loss: row.try_get("stop_loss").map_err(bad)?,
            take_profit: row.try_get("take_profit").map_err(bad)?,
            mem_reasoning: row.try_get("mem_reasoning").map_err(bad)?,
            volume_ratio: row.try_get("volume_ratio").map_err(bad)?,
            recorded_at: None,
        },
    })
}
