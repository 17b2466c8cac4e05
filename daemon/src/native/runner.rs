//! Running a native deployment on a candle feed, on a thread of its own:
//! - `replay`: the file's candles in order, as fast as possible or at `speed` candles a
//!   second; at the end the open position is closed at the last close and the deployment
//!   finishes;
//! - `follow`: the file's history warms the indicators up without trading, then the file
//!   is checked every second and each appended candle is traded (Freqtrade's
//!   `download-data` appends to the same file).
//!
//! Every [`FLUSH_EVERY`] (or at the end, or on stop) closed trades go to the registry in
//! one batch, batched memory appends are synced, and the deployment's state (broker,
//! position, last candle) is handed to the supervisor, which saves it: after a daemon
//! restart the deployment resumes after its last saved candle. A daemon that stops
//! cleanly suspends its runners first (state saved, position kept open); after a crash
//! the decisions of the last half second before it may be logged again on resume.
//!
//! Parameters: before each traded candle the runner compares the registry's change count
//! ([`Registry::generation`], one atomic load) with the one it last saw; only when it
//! moved does it read the strategy's parameters, and when their values differ from the
//! ones in force it rebuilds the strategy with them (warmed on the candles already seen,
//! see [`Engine::replace_strategy`]) and logs the change. So a parameter edited through
//! `strategies.parameters.update` (or by hand in the metadata file) is used from the next
//! candle, and the new parameters are saved with the deployment's state.

use super::engine::{Engine, EngineSpec};
use super::paper::PaperBroker;
use super::strategies;
use crate::market::candles::{self, Candle};
use crate::mem::enhance::EnhanceSettings;
use crate::mem::service::Memory;
use crate::mem::store::Durability;
use crate::ml::service::ServingModel;
use crate::registry::{Caller, Registry};
pub use mem_protocol::deploy::FeedMode;
use mem_protocol::registry::RecordTradesParams;
use mem_protocol::strategy::StrategyId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often trades are recorded and the state reported.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How often a followed file is checked for new candles.
pub const FOLLOW_POLL: Duration = Duration::from_secs(1);
/// Paced replays at or under this speed announce each decision (`decision.logged`);
/// faster ones would flood subscribers, and report through the deployment's stats.
pub const ANNOUNCE_MAX_SPEED: f64 = 50.0;

/// What `state.json` keeps of a native deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeSaved {
    pub kind: String,
    pub parameters: Map<String, Value>,
    /// The name its decisions carry.
    pub strategy_key: String,
    pub symbol: String,
    pub timeframe: String,
    pub file: PathBuf,
    pub mode: FeedMode,
    /// Candles a second for a replay; `None`: as fast as possible.
    pub speed: Option<f64>,
    pub mem_enabled: bool,
    pub broker: PaperBroker,
    /// The last candle traded: a resumed deployment goes on after it.
    pub last_ts_ms: Option<i64>,
    /// Its close (what an open position is valued at).
    #[serde(default)]
    pub last_close: Option<f64>,
    /// Candles in the replay, and how many are done.
    #[serde(default)]
    pub total_candles: u64,
    #[serde(default)]
    pub done_candles: u64,
    #[serde(default)]
    pub decisions: u64,
}

/// What the runner needs from the daemon.
#[derive(Clone)]
pub struct RunContext {
    pub memory: Arc<Memory>,
    /// The served model, followed: a promotion applies from the next entry.
    pub model: ServingModel,
    pub settings: EnhanceSettings,
    pub registry: Arc<Registry>,
    pub strategy_id: StrategyId,
    pub deployment: String,
    pub log: PathBuf,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// The replay reached the end of its file.
    Finished,
    /// Stopped by the supervisor.
    Stopped,
    /// The daemon is shutting down: the state is saved with the position still open, and
    /// the next daemon resumes it.
    Suspended,
}

fn caller() -> Caller {
    Caller {
        uid: None,
        client: Some("memd native deployment".into()),
    }
}

struct Log(Option<std::fs::File>);

impl Log {
    fn line(&mut self, text: &str) {
        if let Some(f) = &mut self.0 {
            let _ = writeln!(
                f,
                "{} - memd.native - INFO - {text}",
                chrono::Utc::now().format("%Y-%m-%d %H:%M:%S,%3f")
            );
        }
    }
    fn warn(&mut self, text: &str) {
        if let Some(f) = &mut self.0 {
            let _ = writeln!(
                f,
                "{} - memd.native - WARNING - {text}",
                chrono::Utc::now().format("%Y-%m-%d %H:%M:%S,%3f")
            );
        }
    }
}

/// The parameter values of a `parameters` object, declared ones unwrapped.
fn values(parameters: &Map<String, Value>) -> std::collections::BTreeMap<&str, &Value> {
    parameters
        .iter()
        .map(|(name, raw)| {
            let value = match raw.as_object() {
                Some(decl) if decl.contains_key("value") => &decl["value"],
                _ => raw,
            };
            (name.as_str(), value)
        })
        .collect()
}

/// `oversold 30 -> 45, period 14 -> 21`.
fn describe_changes(before: &Map<String, Value>, after: &Map<String, Value>) -> String {
    let (old, new) = (values(before), values(after));
    let null = Value::Null;
    let mut names: Vec<&str> = old.keys().chain(new.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (
                old.get(name).copied().unwrap_or(&null),
                new.get(name).copied().unwrap_or(&null),
            );
            (a != b).then(|| format!("{name} {a} -> {b}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Follows the deployed strategy's parameters in the registry (see the module doc).
#[derive(Default)]
struct ParameterWatch {
    /// The registry's change count last looked at; `None` before the first candle, so a
    /// change made while the daemon was down is picked up on resume.
    seen: Option<u64>,
    /// Parameters the strategy refused, not to be tried (and logged) again.
    refused: Option<Map<String, Value>>,
}

impl ParameterWatch {
    fn check(
        &mut self,
        engine: &mut Engine,
        saved: &mut NativeSaved,
        ctx: &RunContext,
        log: &mut Log,
    ) {
        let generation = ctx.registry.generation();
        if self.seen == Some(generation) {
            return;
        }
        self.seen = Some(generation);
        let Ok(current) = ctx.registry.parameters(ctx.strategy_id) else {
            return; // removed from the registry meanwhile: trade on with what it has
        };
        if current == saved.parameters || self.refused.as_ref() == Some(&current) {
            return;
        }
        if values(&current) == values(&saved.parameters) {
            saved.parameters = current; // a description or a bound changed, no value
            return;
        }
        match strategies::build(&saved.kind, &current) {
            Ok(strategy) => {
                let changes = describe_changes(&saved.parameters, &current);
                let warmed = engine.replace_strategy(strategy);
                log.line(&format!(
                    "parameters changed in the registry: {changes}; the {} strategy trades with them from this candle (warmed on {warmed} candles)",
                    saved.kind
                ));
                saved.parameters = current;
                self.refused = None;
            }
            Err(e) => {
                log.warn(&format!(
                    "the registry's new parameters cannot run ({e}); still trading with the previous ones"
                ));
                self.refused = Some(current);
            }
        }
    }
}

fn read_candles(saved: &NativeSaved) -> Result<Vec<Candle>, String> {
    let raw = candles::read_file(&saved.file).map_err(|e| e.to_string())?;
    Ok(candles::clean(raw).0)
}

/// Checks a native deployment's spec before it starts: the strategy builds from its
/// parameters and the file reads. Answers the number of candles.
pub fn check(saved: &NativeSaved) -> Result<usize, String> {
    strategies::build(&saved.kind, &saved.parameters)?;
    let candles = read_candles(saved)?;
    if candles.is_empty() {
        return Err(format!("{} holds no usable candle", saved.file.display()));
    }
    Ok(candles.len())
}

/// Runs until the replay ends or `cancel` fires; `report` gets the state to save after
/// every flush. Blocking: call it on a thread of its own.
pub fn run(
    saved: NativeSaved,
    ctx: RunContext,
    cancel: CancellationToken,
    suspend: CancellationToken,
    report: impl FnMut(&NativeSaved, Option<&str>),
) -> Result<RunEnd, String> {
    let log = Log(std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ctx.log)
        .ok());
    let mut run = Run::start(saved, ctx, log, report)?;
    // Taken before the read: a follow sees anything appended from here on as new.
    let read_stamp = file_stamp(&run.saved.file);
    let candles = read_candles(&run.saved)?;
    run.log_start(candles.len());
    let next = run.warm(&candles);
    if let Some(end) = run.trade(&candles[next..], next, &cancel, &suspend) {
        return Ok(end);
    }
    run.saved.done_candles = candles.len() as u64;
    if run.saved.mode == FeedMode::Replay {
        run.engine.finish();
        run.flush(Some("finished"));
        let broker = run.engine.broker();
        let line = format!(
            "replay finished: {} candles in {:.2} s, {} trades, realised pnl {:+.4}, balance {:.4}",
            candles.len() - next,
            run.started.elapsed().as_secs_f64(),
            broker.closed_trades(),
            broker.realised_pnl(),
            broker.balance()
        );
        run.log.line(&line);
        return Ok(RunEnd::Finished);
    }
    run.flush(Some("following"));
    Ok(run.follow(read_stamp, &cancel, &suspend))
}

/// A native deployment at work: its engine, its state, where it reports.
struct Run<R> {
    engine: Engine,
    saved: NativeSaved,
    ctx: RunContext,
    log: Log,
    report: R,
    durability: Durability,
    /// Unlimited speed (a replay as fast as possible), else the pace to keep.
    unlimited: bool,
    decisions_before: u64,
    watch: ParameterWatch,
    started: Instant,
}

impl<R: FnMut(&NativeSaved, Option<&str>)> Run<R> {
    fn start(saved: NativeSaved, ctx: RunContext, log: Log, report: R) -> Result<Self, String> {
        let strategy = strategies::build(&saved.kind, &saved.parameters)?;
        let timeframe = saved
            .timeframe
            .parse::<candles::Timeframe>()
            .map_err(|e| e.to_string())?;
        let unlimited = saved.speed.is_none_or(|s| s <= 0.0);
        let (durability, announce) = match saved.mode {
            FeedMode::Follow => (Durability::Sync, true),
            FeedMode::Replay if unlimited => (Durability::Batched, false),
            FeedMode::Replay => (
                Durability::Batched,
                saved.speed.is_some_and(|s| s <= ANNOUNCE_MAX_SPEED),
            ),
        };
        let engine = Engine::new(
            EngineSpec {
                strategy_key: saved.strategy_key.clone(),
                symbol: saved.symbol.clone(),
                timeframe_ms: timeframe.millis(),
                mem_enabled: saved.mem_enabled,
                trade_prefix: ctx.deployment.clone(),
            },
            strategy,
            saved.broker.clone(),
            Some(ctx.memory.clone()),
            Some(ctx.model.clone()),
            ctx.settings.clone(),
            durability,
            announce,
        );
        Ok(Run {
            engine,
            decisions_before: saved.decisions,
            saved,
            ctx,
            log,
            report,
            durability,
            unlimited,
            watch: ParameterWatch::default(),
            started: Instant::now(),
        })
    }

    fn log_start(&mut self, candles: usize) {
        let s = &self.saved;
        let line = format!(
            "{} {} on {} ({candles} candles, {:?}{}), MEM {}",
            if s.last_ts_ms.is_some() {
                "resuming"
            } else {
                "starting"
            },
            s.kind,
            s.file.display(),
            s.mode,
            s.speed
                .filter(|s| *s > 0.0)
                .map(|s| format!(" at {s} candles/s"))
                .unwrap_or_default(),
            if s.mem_enabled { "on" } else { "off" }
        );
        self.log.line(&line);
    }

    /// Feeds the history without trading (what a resumed run already traded, and a
    /// follow's existing candles); answers where trading starts.
    fn warm(&mut self, candles: &[Candle]) -> usize {
        let resume_after = self.saved.last_ts_ms;
        let history = self.saved.mode == FeedMode::Follow && resume_after.is_none();
        let mut next = 0;
        for c in candles {
            let traded_before = resume_after.is_some_and(|t| c.ts_ms <= t);
            if !(traded_before || history) {
                break;
            }
            self.engine.warm(c);
            next += 1;
        }
        self.saved.total_candles = candles.len() as u64;
        next
    }

    /// Trades `candles` (the first is the `first`th of the file), paced for a paced
    /// replay; answers how it ended if it was stopped or suspended.
    fn trade(
        &mut self,
        candles: &[Candle],
        first: usize,
        cancel: &CancellationToken,
        suspend: &CancellationToken,
    ) -> Option<RunEnd> {
        self.started = Instant::now();
        let mut last_flush = Instant::now();
        for (i, c) in candles.iter().enumerate() {
            if let Some(end) = self.interrupted(cancel, suspend, None) {
                return Some(end);
            }
            if let (false, Some(speed)) = (self.unlimited, self.saved.speed) {
                let due = self.started + Duration::from_secs_f64((i as f64) / speed);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            self.watch
                .check(&mut self.engine, &mut self.saved, &self.ctx, &mut self.log);
            self.engine.step(c);
            self.saved.done_candles = (first + i + 1) as u64;
            if last_flush.elapsed() >= FLUSH_EVERY {
                self.flush(None);
                last_flush = Instant::now();
            }
        }
        None
    }

    /// Follows the file: trades the candles appended to it, until stopped or suspended.
    fn follow(
        &mut self,
        mut seen: Option<(u64, i64, i64)>,
        cancel: &CancellationToken,
        suspend: &CancellationToken,
    ) -> RunEnd {
        loop {
            let ticks = (FOLLOW_POLL.as_millis() / 50) as u32;
            for _ in 0..ticks {
                if let Some(end) = self.interrupted(cancel, suspend, Some("following")) {
                    return end;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let stamp = file_stamp(&self.saved.file);
            if stamp == seen {
                continue;
            }
            seen = stamp;
            let candles = match read_candles(&self.saved) {
                Ok(c) => c,
                Err(e) => {
                    self.log
                        .warn(&format!("cannot read the followed file: {e}"));
                    continue;
                }
            };
            let last = self.engine.stats().last_ts_ms.unwrap_or(i64::MIN);
            let fresh: Vec<&Candle> = candles.iter().filter(|c| c.ts_ms > last).collect();
            for c in &fresh {
                self.watch
                    .check(&mut self.engine, &mut self.saved, &self.ctx, &mut self.log);
                self.engine.step(c);
            }
            self.saved.total_candles = candles.len() as u64;
            self.saved.done_candles = candles.len() as u64;
            if !fresh.is_empty() {
                self.flush(Some("following"));
            }
        }
    }

    /// Whether the daemon is stopping (the state saved, the position kept) or the
    /// deployment was stopped (the position closed at the last close).
    fn interrupted(
        &mut self,
        cancel: &CancellationToken,
        suspend: &CancellationToken,
        status: Option<&str>,
    ) -> Option<RunEnd> {
        if suspend.is_cancelled() {
            self.flush(status);
            self.log
                .line("suspended: the daemon is stopping; the next one resumes here");
            return Some(RunEnd::Suspended);
        }
        if cancel.is_cancelled() {
            self.engine.finish();
            self.flush(Some("stopped"));
            self.log
                .line("stopped; the open position (if any) closed at the last close");
            return Some(RunEnd::Stopped);
        }
        None
    }

    /// Records the closed trades in the registry, syncs batched memory appends, and
    /// reports the state to save.
    fn flush(&mut self, status: Option<&str>) {
        let trades = self.engine.take_trades();
        for t in &trades {
            self.log.line(&format!(
                "closed trade {} {} entry {:.6} exit {:.6} pnl {:+.4} ({:+.2}%) {}",
                t.trade_id,
                t.symbol,
                t.entry_price,
                t.exit_price,
                t.pnl,
                t.pnl_pct * 100.0,
                t.broker.as_deref().unwrap_or("")
            ));
        }
        for chunk in trades.chunks(10_000) {
            if let Err(e) = self.ctx.registry.record_own_trades(
                RecordTradesParams {
                    id: self.ctx.strategy_id,
                    trades: chunk.to_vec(),
                },
                &caller(),
            ) {
                self.log.warn(&format!(
                    "cannot record {} trades in the registry: {}",
                    chunk.len(),
                    e.into_rpc("trades").message
                ));
            }
        }
        if self.durability == Durability::Batched {
            if let Err(e) = self.ctx.memory.sync() {
                self.log.warn(&format!("cannot sync the memory files: {e}"));
            }
        }
        for e in self.engine.take_errors() {
            self.log.warn(&e);
        }
        self.saved.broker = self.engine.broker().clone();
        self.saved.last_ts_ms = self.engine.stats().last_ts_ms;
        self.saved.last_close = self.engine.stats().last_close;
        self.saved.decisions = self.decisions_before + self.engine.stats().decisions;
        (self.report)(&self.saved, status);
    }
}

fn file_stamp(path: &std::path::Path) -> Option<(u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec()))
}

/// A new native deployment's state, before its first candle.
#[allow(clippy::too_many_arguments)] // the fields of a deployment request, each used once
pub fn new_saved(
    kind: &str,
    parameters: Map<String, Value>,
    strategy_key: String,
    symbol: String,
    timeframe: String,
    file: PathBuf,
    mode: FeedMode,
    speed: Option<f64>,
    mem_enabled: bool,
    broker: PaperBroker,
) -> NativeSaved {
    NativeSaved {
        kind: kind.to_string(),
        parameters,
        strategy_key,
        symbol,
        timeframe,
        file,
        mode,
        speed,
        mem_enabled,
        broker,
        last_ts_ms: None,
        last_close: None,
        total_candles: 0,
        done_candles: 0,
        decisions: 0,
    }
}
