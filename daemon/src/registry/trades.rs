//! Closed trades: one JSON line per trade in `performance/{id}.jsonl` (the seed's
//! TradePerformance field names), appended durably, deduplicated by trade id.
//!
//! A strategy's log is loaded on first use into compact columns ([`TradePoint`] plus the
//! byte span of each line), so metrics over a million trades never re-read the file, and
//! `strategies.trades.list` reads only the lines it returns.

use super::metrics::TradePoint;
use super::postgres::PgStore;
use super::store::Paths;
use crate::linelog::{Durability, LineLog};
use anyhow::Context;
use chrono::{DateTime, Utc};
use mem_protocol::registry::{TradeAction, TradeRecord};
use mem_protocol::strategy::StrategyId;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing::warn;

/// One line of the performance log (the seed's names, snake_case).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TradeLine {
    trade_id: String,
    symbol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeframe: Option<String>,
    signal_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signal_confidence: Option<f64>,
    entry_price: f64,
    exit_price: f64,
    entry_timestamp: String,
    exit_timestamp: String,
    pnl: f64,
    pnl_pct: f64,
    is_win: bool,
    #[serde(default)]
    was_mem_enhanced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mem_confidence_boost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    learned_pattern_applied: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    market_regime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    volatility: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    broker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slippage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    commission: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recorded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_adverse_excursion: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_favorable_excursion: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    take_profit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mem_reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    volume_ratio: Option<f64>,
}

/// Reads a timestamp as RFC 3339, or as the seed's naive ISO form (taken as UTC).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    mem_protocol::registry::seed_time::parse(s)
}

impl TradeLine {
    fn from_record(t: &TradeRecord, now: DateTime<Utc>) -> TradeLine {
        TradeLine {
            trade_id: t.trade_id.clone(),
            symbol: t.symbol.clone(),
            timeframe: t.timeframe.clone(),
            signal_action: match t.action {
                TradeAction::Buy => "BUY",
                TradeAction::Sell => "SELL",
                TradeAction::Hold => "HOLD",
            }
            .to_string(),
            signal_confidence: t.confidence,
            entry_price: t.entry_price,
            exit_price: t.exit_price,
            entry_timestamp: t
                .entry_time
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            exit_timestamp: t
                .exit_time
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            pnl: t.pnl,
            pnl_pct: t.pnl_pct,
            is_win: t.is_win.unwrap_or(t.pnl > 0.0),
            was_mem_enhanced: t.mem_enhanced,
            mem_confidence_boost: t.mem_confidence_boost,
            learned_pattern_applied: t.learned_pattern.clone(),
            market_regime: t.market_regime.clone(),
            volatility: t.volatility,
            broker: t.broker.clone(),
            slippage: t.slippage,
            commission: t.commission,
            recorded_at: Some(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            version_id: t.version_id.clone(),
            duration_seconds: Some(
                t.duration_seconds
                    .unwrap_or_else(|| (t.exit_time - t.entry_time).num_seconds()),
            ),
            max_adverse_excursion: t.max_adverse_excursion,
            max_favorable_excursion: t.max_favorable_excursion,
            stop_loss: t.stop_loss,
            take_profit: t.take_profit,
            mem_reasoning: t.mem_reasoning.clone(),
            volume_ratio: t.volume_ratio,
        }
    }

    fn to_record(&self) -> Option<TradeRecord> {
        let action: TradeAction =
            serde_json::from_value(serde_json::Value::from(self.signal_action.as_str())).ok()?;
        Some(TradeRecord {
            trade_id: self.trade_id.clone(),
            symbol: self.symbol.clone(),
            timeframe: self.timeframe.clone(),
            action,
            confidence: self.signal_confidence,
            entry_price: self.entry_price,
            exit_price: self.exit_price,
            entry_time: parse_time(&self.entry_timestamp)?,
            exit_time: parse_time(&self.exit_timestamp)?,
            pnl: self.pnl,
            pnl_pct: self.pnl_pct,
            is_win: Some(self.is_win),
            mem_enhanced: self.was_mem_enhanced,
            mem_confidence_boost: self.mem_confidence_boost,
            learned_pattern: self.learned_pattern_applied.clone(),
            market_regime: self.market_regime.clone(),
            volatility: self.volatility,
            broker: self.broker.clone(),
            slippage: self.slippage,
            commission: self.commission,
            version_id: self.version_id.clone(),
            duration_seconds: self.duration_seconds,
            max_adverse_excursion: self.max_adverse_excursion,
            max_favorable_excursion: self.max_favorable_excursion,
            stop_loss: self.stop_loss,
            take_profit: self.take_profit,
            mem_reasoning: self.mem_reasoning.clone(),
            volume_ratio: self.volume_ratio,
            recorded_at: None,
        })
    }
}

/// A trade id's 128-bit fingerprint: two independent 64-bit SipHashes. A set of these
/// costs 16 bytes a trade and no allocation; two distinct ids collide with a probability
/// around 2^-128 per pair, far below any disk's error rate.
fn fingerprint(trade_id: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let mut a = std::hash::DefaultHasher::new();
    (0u8, trade_id).hash(&mut a);
    let mut b = std::hash::DefaultHasher::new();
    (1u8, trade_id).hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Hashes a fingerprint by taking its low bits: it is already a hash.
#[derive(Default)]
struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type IdSet = HashSet<u128, std::hash::BuildHasherDefault<FingerprintHasher>>;

/// The members of a trade line that loading needs, borrowed from the file's bytes.
#[derive(Deserialize)]
struct LineView<'a> {
    #[serde(borrow)]
    trade_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    entry_timestamp: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    exit_timestamp: std::borrow::Cow<'a, str>,
    pnl: f64,
    pnl_pct: f64,
    is_win: bool,
    #[serde(default)]
    was_mem_enhanced: bool,
}

impl LineView<'_> {
    fn point(&self) -> Option<TradePoint> {
        Some(TradePoint {
            entry_ms: parse_time(&self.entry_timestamp)?.timestamp_millis(),
            exit_ms: parse_time(&self.exit_timestamp)?.timestamp_millis(),
            pnl: self.pnl,
            pnl_pct: self.pnl_pct,
            is_win: self.is_win,
            mem_enhanced: self.was_mem_enhanced,
        })
    }
}

/// Where a trade is: its line in a log file, or its row in the database.
#[derive(Debug, Clone, Copy)]
enum Locator {
    Line { legacy: bool, offset: u64, len: u32 },
    Row(i64),
}

/// Where a strategy's trades are kept.
enum LogBacking {
    /// `{id}.jsonl`, opened (and created) by the first append: reading a strategy's
    /// trades neither creates its file nor holds a descriptor.
    File {
        file: Option<LineLog>,
        path: PathBuf,
        legacy_path: PathBuf,
    },
    /// Rows of the registry's PostgreSQL database (shared by several servers).
    Rows { store: Arc<PgStore>, id: StrategyId },
}

/// One strategy's trades in memory.
pub struct TradeLog {
    pub points: Vec<TradePoint>,
    locators: Vec<Locator>,
    ids: IdSet,
    backing: LogBacking,
    pub total_pnl: f64,
    pub last_exit_ms: Option<i64>,
    pub first_exit_ms: Option<i64>,
    /// To be read again before its next use (not read yet, or another server recorded
    /// trades since): see [`TradeStore::log`].
    stale: bool,
    /// It holds what was read once (else it is the empty stand-in of a log not read yet).
    read: bool,
}

/// Running totals a strategy's index record shows.
#[derive(Debug, Clone, Copy)]
pub struct LiveTotals {
    pub trades: u64,
    pub total_pnl: f64,
    pub first_exit_ms: Option<i64>,
    pub last_exit_ms: Option<i64>,
}

impl TradeLog {
    fn load(paths: &Paths, id: StrategyId) -> anyhow::Result<TradeLog> {
        let legacy_path = paths.legacy_trades_file(id);
        let main_path = paths.trades_file(id);
        let mut log = TradeLog::empty(LogBacking::File {
            file: None,
            path: main_path.clone(),
            legacy_path: legacy_path.clone(),
        });
        if legacy_path.exists() {
            log.ingest(
                &std::fs::read(&legacy_path)
                    .with_context(|| format!("cannot read {}", legacy_path.display()))?,
                true,
                &legacy_path,
            );
        }
        // A torn last line (a crash mid-append) is not read (only whole lines are), and
        // the first append cuts it before writing.
        match std::fs::read(&main_path) {
            Ok(bytes) => log.ingest(&bytes, false, &main_path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", main_path.display()));
            }
        }
        Ok(log)
    }

    fn empty(backing: LogBacking) -> TradeLog {
        TradeLog {
            points: Vec::new(),
            locators: Vec::new(),
            ids: IdSet::default(),
            backing,
            total_pnl: 0.0,
            last_exit_ms: None,
            first_exit_ms: None,
            stale: false,
            read: true,
        }
    }

    /// A strategy's trades from the database's rows.
    fn load_rows(store: Arc<PgStore>, id: StrategyId) -> anyhow::Result<TradeLog> {
        let rows = store.trade_points(id)?;
        let mut log = TradeLog::empty(LogBacking::Rows { store, id });
        log.ids.reserve(rows.len());
        for row in rows {
            if log.ids.insert(fingerprint(&row.trade_id)) {
                log.push(row.point, Locator::Row(row.performance_id));
            }
        }
        Ok(log)
    }

    /// Reads the lines of one file into the columns (in parallel: a log can be large).
    fn ingest(&mut self, bytes: &[u8], legacy: bool, path: &std::path::Path) {
        let mut lines = Vec::new();
        let mut start = 0usize;
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' {
                if i > start {
                    lines.push((start, i));
                }
                start = i + 1;
            }
        }
        let parsed: Vec<Option<(u128, TradePoint)>> = lines
            .par_iter()
            .map(|&(s, e)| {
                let line: LineView<'_> = serde_json::from_slice(&bytes[s..e]).ok()?;
                Some((fingerprint(&line.trade_id), line.point()?))
            })
            .collect();
        self.ids.reserve(parsed.len());
        self.points.reserve(parsed.len());
        self.locators.reserve(parsed.len());
        let mut bad = 0usize;
        for ((s, e), line) in lines.into_iter().zip(parsed) {
            let Some((id, point)) = line else {
                bad += 1;
                continue;
            };
            if !self.ids.insert(id) {
                continue; // the same trade in the legacy and the current log
            }
            self.push(
                point,
                Locator::Line {
                    legacy,
                    offset: s as u64,
                    len: (e - s) as u32,
                },
            );
        }
        if bad > 0 {
            warn!(file = %path.display(), lines = bad, "skipped unreadable trade lines");
        }
    }

    fn push(&mut self, point: TradePoint, at: Locator) {
        self.total_pnl += point.pnl;
        self.last_exit_ms = Some(
            self.last_exit_ms
                .map_or(point.exit_ms, |m| m.max(point.exit_ms)),
        );
        self.first_exit_ms = Some(
            self.first_exit_ms
                .map_or(point.exit_ms, |m| m.min(point.exit_ms)),
        );
        self.points.push(point);
        self.locators.push(at);
    }

    pub fn totals(&self) -> LiveTotals {
        LiveTotals {
            trades: self.points.len() as u64,
            total_pnl: self.total_pnl,
            first_exit_ms: self.first_exit_ms,
            last_exit_ms: self.last_exit_ms,
        }
    }

    /// Appends the trades not seen before; returns the ids skipped as duplicates.
    /// Every appended line is on disk when this returns.
    pub fn append(
        &mut self,
        trades: &[TradeRecord],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<String>> {
        let mut duplicates = Vec::new();
        let mut batch_ids = IdSet::default();
        let mut buf = Vec::with_capacity(trades.len() * 320);
        let mut pending = Vec::with_capacity(trades.len());
        // Where each trade of `pending` is in the batch (those the database is sent).
        let mut fresh_at = Vec::with_capacity(trades.len());
        for (at, t) in trades.iter().enumerate() {
            let id = fingerprint(&t.trade_id);
            if self.ids.contains(&id) || !batch_ids.insert(id) {
                duplicates.push(t.trade_id.clone());
                continue;
            }
            let point = TradePoint {
                entry_ms: t.entry_time.timestamp_millis(),
                exit_ms: t.exit_time.timestamp_millis(),
                pnl: t.pnl,
                pnl_pct: t.pnl_pct,
                is_win: t.is_win.unwrap_or(t.pnl > 0.0),
                mem_enhanced: t.mem_enhanced,
            };
            let start = buf.len();
            serde_json::to_writer(&mut buf, &TradeLine::from_record(t, now))
                .expect("trade lines serialize");
            let len = buf.len() - start;
            buf.push(b'\n');
            pending.push((id, point, start, len));
            fresh_at.push(at);
        }
        if pending.is_empty() {
            return Ok(duplicates);
        }
        let (file, path) = match &mut self.backing {
            LogBacking::File { file, path, .. } => (file, path),
            LogBacking::Rows { store, id } => {
                let (store, id) = (store.clone(), *id);
                // The trades of `pending`, in its order. (Not "those whose id is not in
                // `duplicates`": that left out the first of an id the batch repeats too, so
                // it was reported recorded but never stored, and put the trades after it
                // beside the wrong points of `pending`.)
                let fresh: Vec<TradeRecord> =
                    fresh_at.iter().map(|&at| trades[at].clone()).collect();
                return self.append_rows(&store, id, &fresh, pending, duplicates, now);
            }
        };
        let file = match file {
            Some(file) => file,
            None => file.insert(LineLog::open(path, 0o640)?),
        };
        let base = file.append(&buf, Durability::Sync)?;
        // Grow ahead of need, so that the rehash of a large set is rare.
        if self.ids.capacity() - self.ids.len() < pending.len() {
            self.ids.reserve(self.ids.len().max(pending.len()));
        }
        for (id, point, start, len) in pending {
            self.ids.insert(id);
            self.push(
                point,
                Locator::Line {
                    legacy: false,
                    offset: base + start as u64,
                    len: len as u32,
                },
            );
        }
        Ok(duplicates)
    }

    /// [`TradeLog::append`] to the database: one statement; a trade another server
    /// recorded first is a duplicate too (the database decides).
    fn append_rows(
        &mut self,
        store: &PgStore,
        id: StrategyId,
        fresh: &[TradeRecord],
        pending: Vec<(u128, TradePoint, usize, usize)>,
        mut duplicates: Vec<String>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<String>> {
        let inserted = store.insert_trades(id, fresh, now)?;
        let rows: HashMap<&str, i64> = inserted
            .inserted
            .iter()
            .map(|(trade, row)| (trade.as_str(), *row))
            .collect();
        for (t, (key, point, ..)) in fresh.iter().zip(pending) {
            match rows.get(t.trade_id.as_str()) {
                Some(row) => {
                    self.ids.insert(key);
                    self.push(point, Locator::Row(*row));
                }
                None => duplicates.push(t.trade_id.clone()),
            }
        }
        Ok(duplicates)
    }

    /// Trades with an exit in `[from, to]`, newest exit first, paged; and how many matched.
    pub fn list(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        offset: usize,
        limit: usize,
    ) -> anyhow::Result<(Vec<TradeRecord>, usize)> {
        let mut matching: Vec<usize> = (0..self.points.len())
            .filter(|&i| in_range(self.points[i].exit_ms, from_ms, to_ms))
            .collect();
        let total = matching.len();
        matching.sort_unstable_by_key(|&i| std::cmp::Reverse((self.points[i].exit_ms, i)));
        let page: Vec<Locator> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&i| self.locators[i])
            .collect();
        let (path, legacy_path) = match &self.backing {
            LogBacking::File {
                path, legacy_path, ..
            } => (path, legacy_path),
            LogBacking::Rows { store, id } => {
                let rows: Vec<i64> = page
                    .iter()
                    .filter_map(|l| match l {
                        Locator::Row(row) => Some(*row),
                        Locator::Line { .. } => None,
                    })
                    .collect();
                return Ok((store.trades_at(*id, &rows)?, total));
            }
        };
        let main = if path.exists() {
            Some(File::open(path)?)
        } else {
            None
        };
        let legacy = if legacy_path.exists() {
            Some(File::open(legacy_path)?)
        } else {
            None
        };
        let mut out = Vec::new();
        for at in page {
            let Locator::Line {
                legacy: in_legacy,
                offset,
                len,
            } = at
            else {
                continue;
            };
            let mut buf = vec![0u8; len as usize];
            let file = if in_legacy {
                legacy.as_ref().context("legacy trade log vanished")?
            } else {
                main.as_ref().context("trade log vanished")?
            };
            file.read_exact_at(&mut buf, offset)?;
            let line: TradeLine =
                serde_json::from_slice(&buf).context("a trade line changed on disk")?;
            out.extend(line.to_record());
        }
        Ok((out, total))
    }

    /// The points with an exit in `[from, to]`.
    pub fn points_in(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> Vec<TradePoint> {
        if from_ms.is_none() && to_ms.is_none() {
            return self.points.clone();
        }
        self.points
            .iter()
            .copied()
            .filter(|p| in_range(p.exit_ms, from_ms, to_ms))
            .collect()
    }
}

fn in_range(t: i64, from: Option<i64>, to: Option<i64>) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t <= e)
}

/// Every strategy's trade log, loaded on first use.
pub struct TradeStore {
    kept: Kept,
    logs: Mutex<HashMap<StrategyId, Arc<Mutex<TradeLog>>>>,
}

/// Where the trade logs are kept.
enum Kept {
    Files(Paths),
    /// Rows of the registry's PostgreSQL database.
    Rows(Arc<PgStore>),
}

impl TradeStore {
    pub fn new(paths: Paths) -> TradeStore {
        TradeStore {
            kept: Kept::Files(paths),
            logs: Mutex::new(HashMap::new()),
        }
    }

    /// The trades as rows of the registry's PostgreSQL database.
    pub fn on_rows(store: Arc<PgStore>) -> TradeStore {
        TradeStore {
            kept: Kept::Rows(store),
            logs: Mutex::new(HashMap::new()),
        }
    }

    /// The log of `id`, read if needed (the first use, or once it went stale).
    ///
    /// A strategy has one log object from its first use on, never dropped: a log to read
    /// again is marked stale (under its lock) and read again in place, under its lock, by
    /// its next use. So a batch being recorded (which holds the lock while it is written)
    /// is either in the rows read or appended after them, and a log being read when
    /// another server's trades are announced is read again. (Dropping the log instead, a
    /// batch in flight landed in the dropped log while the next use loaded one without it,
    /// and a load begun before the announcement could be kept: the log in memory lacked
    /// acknowledged trades until the strategy's next notification.) A log read once that
    /// cannot be read again (the database away) is answered as it is, still stale.
    pub fn log(&self, id: StrategyId) -> anyhow::Result<Arc<Mutex<TradeLog>>> {
        let log = self
            .logs
            .lock()
            .expect("trade store lock")
            .entry(id)
            .or_insert_with(|| Arc::new(Mutex::new(self.unread(id))))
            .clone();
        {
            // Outside the map lock, so other strategies are not held up.
            let mut held = log.lock().expect("trade log lock");
            if held.stale {
                let fresh = match &self.kept {
                    Kept::Rows(store) => TradeLog::load_rows(store.clone(), id),
                    Kept::Files(paths) => TradeLog::load(paths, id),
                };
                match fresh {
                    Ok(fresh) => *held = fresh,
                    Err(e) if held.read => {
                        warn!(%id, error = %e, "cannot read the strategy's trades again; answering from memory")
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(log)
    }

    /// The stand-in of a log not read yet.
    fn unread(&self, id: StrategyId) -> TradeLog {
        let backing = match &self.kept {
            Kept::Rows(store) => LogBacking::Rows {
                store: store.clone(),
                id,
            },
            Kept::Files(paths) => LogBacking::File {
                file: None,
                path: paths.trades_file(id),
                legacy_path: paths.legacy_trades_file(id),
            },
        };
        TradeLog {
            stale: true,
            read: false,
            ..TradeLog::empty(backing)
        }
    }

    /// Another server recorded trades: the log is read again at its next use (see
    /// [`TradeStore::log`]).
    pub fn forget(&self, id: StrategyId) {
        let log = self
            .logs
            .lock()
            .expect("trade store lock")
            .get(&id)
            .cloned();
        if let Some(log) = log {
            log.lock().expect("trade log lock").stale = true;
        }
    }

    /// Every log is read again at its next use (notifications of other servers' trades
    /// may have been missed).
    pub fn forget_all(&self) {
        let logs: Vec<Arc<Mutex<TradeLog>>> = self
            .logs
            .lock()
            .expect("trade store lock")
            .values()
            .cloned()
            .collect();
        for log in logs {
            log.lock().expect("trade log lock").stale = true;
        }
    }

    /// Whether the strategy may have trades (without loading them): on files, whether it
    /// has a log; the database's rows are always worth a look.
    pub fn may_have_trades(&self, id: StrategyId) -> bool {
        match &self.kept {
            Kept::Rows(_) => true,
            Kept::Files(paths) => {
                paths.trades_file(id).exists() || paths.legacy_trades_file(id).exists()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lines_with_naive_timestamps_are_read() {
        let line = r#"{"trade_id": "test-trade-001", "symbol": "BTC/USD", "signal_action": "BUY", "signal_confidence": 0.85, "entry_price": 50000.0, "exit_price": 52000.0, "entry_timestamp": "2025-10-21T05:11:50.590225", "exit_timestamp": "2025-10-21T05:11:50.590252", "pnl": 200.0, "pnl_pct": 0.04, "is_win": true, "was_mem_enhanced": false, "mem_confidence_boost": 0.0, "learned_pattern_applied": null}"#;
        let view: LineView<'_> = serde_json::from_str(line).unwrap();
        let point = view.point().unwrap();
        assert_eq!(point.pnl, 200.0);
        assert_eq!(point.exit_ms - point.entry_ms, 0, "microseconds apart");
        let parsed: TradeLine = serde_json::from_str(line).unwrap();
        let record = parsed.to_record().unwrap();
        assert_eq!(record.action, TradeAction::Buy);
        assert_eq!(
            record.entry_time.to_rfc3339(),
            "2025-10-21T05:11:50.590225+00:00"
        );
    }
}
