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
        .map_err(|e| batch_error(e, id, trades))?;
    Ok(answer(&rows, trades))
}

/// Which of the batch were inserted (as `RETURNING trade_id, performance_id` says) and
/// which were duplicates.
fn answer(rows: &[PgRow], trades: &[TradeRecord]) -> Inserted {
    let mut rows_of: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for row in rows {
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
    out
}

/// A failed batch's error, naming the bad trade when it can.
fn batch_error(e: sqlx::Error, id: StrategyId, trades: &[TradeRecord]) -> RowError {
    match code_of(&e) {
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
    }
}

/// The columns a batch fills, in the order [`insert_trades_copy`] writes them.
const COPY_COLUMNS: &str = "strategy_id, recorded_at, recorded_by, version_id, trade_id, symbol, \
     timeframe, signal_action, signal_confidence, entry_price, exit_price, entry_timestamp, exit_timestamp, \
     duration_seconds, pnl, pnl_percentage, is_win, max_adverse_excursion, max_favorable_excursion, \
     stop_loss, take_profit, was_mem_enhanced, mem_confidence_boost, learned_pattern_applied, mem_reasoning, \
     market_regime, volatility, volume_ratio, broker, slippage, commission";

static COPY_STAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS memd_trades_in ON COMMIT DELETE ROWS AS \
         SELECT {COPY_COLUMNS} FROM strategy_performance WITH NO DATA"
    )
});
static COPY_IN: LazyLock<String> =
    LazyLock::new(|| format!("COPY memd_trades_in ({COPY_COLUMNS}) FROM STDIN"));
static COPY_MOVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO strategy_performance ({COPY_COLUMNS}) SELECT {COPY_COLUMNS} FROM memd_trades_in \
         ON CONFLICT (strategy_id, trade_id) DO NOTHING RETURNING trade_id, performance_id"
    )
});

/// COPY's text format: `\N` for NULL, backslash escapes for the separators.
fn copy_text(out: &mut String, value: Option<&str>) {
    match value {
        None => out.push_str("\\N"),
        Some(s) => {
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

/// [`insert_trades`] through `COPY` into a temporary table, then one `INSERT .. SELECT ..
/// ON CONFLICT DO NOTHING`: the same answer, for comparing their speed.
pub async fn insert_trades_copy(
    tx: &mut Tx<'_>,
    id: StrategyId,
    server: &str,
    trades: &[TradeRecord],
    now: DateTime<Utc>,
) -> Result<Inserted, RowError> {
    use std::fmt::Write;
    if trades.is_empty() {
        return Ok(Inserted::default());
    }
    let doing = || format!("recording {} trades of strategy {id}", trades.len());
    sqlx::query(&COPY_STAGE)
        .execute(&mut **tx)
        .await
        .map_err(db(doing()))?;
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let num = |x: Option<f64>| x.map(|x| x.to_string());
    let mut text = String::with_capacity(trades.len() * 400);
    let (id_text, now_text) = (id.to_string(), time(now));
    for t in trades {
        let fields: [Option<String>; 31] = [
            Some(id_text.clone()),
            Some(now_text.clone()),
            Some(server.to_string()),
            t.version_id.clone(),
            Some(t.trade_id.clone()),
            Some(t.symbol.clone()),
            t.timeframe.clone(),
            Some(action_text(t.action).to_string()),
            num(t.confidence),
            num(Some(t.entry_price)),
            num(Some(t.exit_price)),
            Some(time(t.entry_time)),
            Some(time(t.exit_time)),
            Some(
                t.duration_seconds
                    .unwrap_or_else(|| (t.exit_time - t.entry_time).num_seconds())
                    .to_string(),
            ),
            num(Some(t.pnl)),
            num(Some(t.pnl_pct)),
            Some(t.is_win.unwrap_or(t.pnl > 0.0).to_string()),
            num(t.max_adverse_excursion),
            num(t.max_favorable_excursion),
            num(t.stop_loss),
            num(t.take_profit),
            Some(t.mem_enhanced.to_string()),
            num(t.mem_confidence_boost),
            t.learned_pattern.clone(),
            t.mem_reasoning.clone(),
            t.market_regime.clone(),
            num(t.volatility),
            num(t.volume_ratio),
            t.broker.clone(),
            num(t.slippage),
            num(t.commission),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                text.push('\t');
            }
            copy_text(&mut text, field.as_deref());
        }
        let _ = writeln!(text);
    }
    let mut copy = tx
        .copy_in_raw(&COPY_IN)
        .await
        .map_err(|e| batch_error(e, id, trades))?;
    if let Err(e) = copy.send(text.into_bytes()).await {
        let _ = copy.abort("memd could not send the batch").await;
        return Err(batch_error(e, id, trades));
    }
    copy.finish()
        .await
        .map_err(|e| batch_error(e, id, trades))?;
    let rows = sqlx::query(&COPY_MOVE)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| batch_error(e, id, trades))?;
    // Two batches in one transaction: the second must not see the first.
    sqlx::query("TRUNCATE memd_trades_in")
        .execute(&mut **tx)
        .await
        .map_err(db(doing()))?;
    Ok(answer(&rows, trades))
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
