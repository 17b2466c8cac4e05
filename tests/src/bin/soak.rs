//! `soak`: a long run of a real memd under a steady, realistic load, and a check that it
//! holds still: resident memory and open file descriptors flat after a warm-up, no leaked
//! processes, no failed request.
//!
//! Not part of `.ci/run` (it takes half an hour). Build and run (release; `memd` and
//! `fake_freqtrade` are looked up next to this executable):
//!
//! ```text
//! cargo build --release -p memd --bin memd -p mem-e2e --bin soak --bin fake_freqtrade
//! target/release/soak                                   # 30 minutes, the fake bot
//! target/release/soak --freqtrade /path/to/venv/bin/freqtrade   # real Freqtrade bots
//! ```
//!
//! Options: `--minutes N` (30), `--warmup-minutes W` (5), `--sample-secs S` (10),
//! `--cycle-secs C` (60 with the fake bot, 75 with the real Freqtrade), `--memd PATH` (or
//! `MEMD_BIN`; default: `memd` next to this executable, then one directory up),
//! `--freqtrade PATH`, `--json` (a machine-readable summary, with every sample, printed
//! last), `--keep` (keep the temporary directory and print it). Exit status 1 when a
//! verdict is MISS, 2 on bad arguments. `--history-decisions N` (12,000) and
//! `--history-deployments N` (200): the history memd starts with (see "RSS flat" below).
//!
//! # What runs
//!
//! memd starts on a fresh temporary data directory (seeded with the shipped registry and
//! candles) with a config whose `[freqtrade] bin` is either the real Freqtrade given by
//! `--freqtrade` (dry-run bots against the mock Binance exchange of
//! `mem_e2e::mock_exchange`, started inside this tool, with instant fills) or, without
//! it, the stand-in `fake_freqtrade` (which reports 3 closed trades per bot; the report
//! says which). Bots are polled every 2 s. Then, until the time is up:
//!
//! - **bots deploying and stopping**, in cycles of `--cycle-secs`: at the start of a
//!   cycle one of the three seeded Freqtrade strategies (in turn) is deployed (dry-run, on
//!   a free port); 5 s after it is running the previous cycle's bot is stopped, with
//!   `now` and `drain` (10 s deadline) in turn, so at most 2 bots run at once and 1 between
//!   stops. With the real Freqtrade each bot also gets a forced entry on BTC/USDT (15 s
//!   after it is up, retried while the bot is not ready for it) and a forced exit 20 s
//!   later, through the bot's own API, so closed trades flow from the bot into the
//!   registry (a bot API refusal is counted, not an error: it is Freqtrade's business);
//! - **memory files growing**: in each cycle, at 30% of it, a native MEM strategy
//!   (`native_rsi`, `native_vwap` in turn) replays the shipped `ETH_BTC-5m.feather` (5,760
//!   candles) as fast as it can and finishes by itself; at 60%, the other one replays it
//!   paced (300 candles/s) and is stopped after 5 s. Their decisions and outcomes go to
//!   `mem_knowledge/decisions.jsonl` and `core_memory_updates.txt`, their trades to the
//!   registry. Besides, one `mem.decide` and its `mem.outcome` every second (strategy
//!   `soak_mem`, three market signatures, each winning every other time, so that no rule
//!   of the learning loop fires and nothing is learned from this noise);
//! - **trades recording**: one `strategies.trades.record` of one trade every 250 ms (4 a
//!   second) on a strategy registered for it (`soak_trades`);
//! - **reads**: one every 250 ms, in turn `daemon.status`, `strategies.list`,
//!   `strategies.deployed` (with the ended deployments) and `mem.decisions` (20);
//! - **a subscriber** on every topic reads every event all along and checks that their
//!   `seq` has no gap (one counter numbers all events, so an all-topics subscriber sees
//!   them all); a deployment turning `crashed` or `failed` is an error.
//!
//! Each load has its own connection. Every request that fails (error answer, no answer in
//! 30 s, 180 s for a deploy, closed connection) is printed when it happens and counted.
//!
//! # What is measured
//!
//! Every `--sample-secs`, and at each cycle's checkpoint (5 s before the next cycle,
//! when exactly one bot runs and no native replay does), one line:
//!
//! - `rss`: memd's `VmRSS` from `/proc/{pid}/status`, MB; `anon`: its `RssAnon` (the
//!   heap and stacks, without the mapped binary), for reading a change of `rss`;
//! - `fds`: entries of `/proc/{pid}/fd`;
//! - `thr`: `Threads` of `/proc/{pid}/status`;
//! - `cpu%`: memd's utime+stime (`/proc/{pid}/stat`) since the previous periodic line
//!   over the wall time, % of one core (`-` when under a second passed);
//! - `kids`: memd's descendants (the transitive children, by the `ppid` of every
//!   `/proc/*/stat`), of them `zomb` zombies;
//! - `dirp`: processes anywhere whose command line mentions the data directory, memd
//!   itself excepted (every bot's command line names its config under
//!   `deployments/{id}/`);
//! - `mem_kn`, `registry`: bytes of the files under `mem_knowledge/` and
//!   `strategy_registry/`; `deps`: deployment directories;
//! - `req`, `err`: requests done and failed so far; `events`: events received;
//! - `slowest`: the slowest answer since the previous line (deploys and stops, which wait
//!   for processes, left out).
//!
//! # Verdicts
//!
//! Over the samples taken after the warm-up only (memd's allocator, caches and the
//! thread pools settle in the first minutes):
//!
//! - **RSS flat**: with `first` and `last` the RSS at the first and the last checkpoint
//!   after the warm-up, `last - first <= max(2 MB, 5% of first)`, and the least-squares
//!   line through every post-warm-up sample rises by no more than that bound over the
//!   window (its slope is printed in MB/hour). Data that grows by design stays well under
//!   it: the trade log keeps about 70 bytes a trade in memory (7,200 trades in 30 min).
//!   memd's window of recent decisions (the newest 10,000, about 1 KB each) would fill
//!   during the run and read as a rise of some 4 MB an hour until full; so the tool first
//!   writes `--history-decisions` (12,000) closed past decisions of an unused strategy
//!   into `mem_knowledge/decisions.jsonl`, as a server that has run for months has, and
//!   memd starts with the window full (its steady state). In the same way memd keeps
//!   the newest 200 ended deployments, and the reads ask for them all: before the run the
//!   tool deploys `--history-deployments` (200) native replays at full speed and waits
//!   for their end, so that store is full too (filling it through the cycles takes 70-85
//!   minutes, and read as a rise of RSS all along).
//! - **fds flat**: a starting or stopping bot holds pipes and HTTP connections for a
//!   while, so samples at random points of a cycle differ by design. The verdict compares
//!   the checkpoints, all taken at the same point of the cycle with the same processes
//!   running: `max - min <= 4`. The range over all samples is printed too, and what
//!   changed between the first and the last checkpoint, by kind of fd (`socket`, `pipe`,
//!   or the file, with ids as `{id}`: `<data>/strategy_registry/performance/{id}.jsonl`).
//! - **processes**: at every checkpoint (warm-up included) the processes mentioning the
//!   data directory are as many as the Freqtrade deployments memd lists as active, and
//!   memd has no zombie child; at the end, after every bot was stopped through memd and
//!   3 s have passed, there is no process mentioning the data directory but memd, and
//!   memd has no descendant.
//! - **errors**: no failed request, no gap in the events, no crashed or failed
//!   deployment, the subscription alive to the end.
//! - **trades**: `strategies.performance` of `soak_trades` counts exactly the trades
//!   acknowledged.
//! - **load**: the load really happened: at least 2 bots deployed and stopped, native
//!   replays run, and the memory files grew after the warm-up.
//! - **shutdown**: SIGTERM makes memd exit with status 0 within 30 s.
//!
//! Threads are printed (checkpoint and overall ranges) without a verdict: tokio's
//! blocking pool starts and retires threads by itself. WARN and ERROR lines of memd's
//! stderr are counted and the first ones printed.

use chrono::{Duration as ChronoDuration, Utc};
use mem_e2e::measure::{cpu_seconds, status_mb};
use mem_e2e::mock_exchange::{self, MockExchange};
use mem_e2e::seed;
use mem_e2e::trades::closed_trade;
use mem_e2e::{fake_freqtrade_config, find_memd, start_memd_with};
use mem_protocol::deploy::{
    DeployParams, DeployedParams, DeployedStrategy, DeploymentId, DeploymentStatus, DeploymentType,
    FeedMode, NativeOptions, StopMode, StopParams,
};
use mem_protocol::mem::{
    BaseSignal, DecideParams, Decision, DecisionsParams, EnhanceParams, Outcome, OutcomeParams,
    SignalAction,
};
use mem_protocol::methods::{ListStrategiesParams, NoParams, method};
use mem_protocol::registry::{PerformanceParams, RecordTradesParams, RegisterParams, TradeRecord};
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Client, ClientOptions, Event, Method};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};

/// The seeded Freqtrade strategies, deployed in turn.
const BOTS: [(&str, &str); 3] = [
    (seed::MACD_HUNTER, "freqtrade_macd_hunter"),
    (seed::CONSERVATIVE_RSI, "freqtrade_conservative_rsi"),
    (seed::AGGRESSIVE_RSI, "freqtrade_aggressive_rsi"),
];
/// The seeded native MEM strategies, replayed in turn: the two that win on the shipped
/// candles. The others lose there, and after their first replay the learning loop raises
/// their confidence threshold to 0.70, which their signals on ETH/BTC never reach: they
/// would replay without a decision.
const NATIVES: [(&str, &str); 2] = [
    (seed::NATIVE_RSI, "native_rsi"),
    (seed::NATIVE_VWAP, "native_vwap"),
];
/// The shipped candles the natives replay (data/market).
const CANDLES: &str = "ETH_BTC-5m.feather";
const CANDLES_PAIR: &str = "ETH/BTC";
/// The pair of the forced trades (in every seeded bot's whitelist).
const FORCED_PAIR: &str = "BTC/USDT";
const SIGNATURES: [&str; 3] = [
    "BUY|trend=bullish|volatility=medium|rsi=neutral",
    "BUY|trend=ranging|volatility=low|rsi=oversold",
    "BUY|trend=bearish|volatility=high|rsi=oversold",
];

/// RSS: allowed rise, the larger of this and [`RSS_BOUND_FRACTION`] of the first value.
const RSS_BOUND_MB: f64 = 2.0;
const RSS_BOUND_FRACTION: f64 = 0.05;
/// fds: allowed spread between checkpoints.
const FD_BOUND: usize = 4;

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

struct Options {
    minutes: f64,
    warmup_minutes: f64,
    sample_secs: f64,
    cycle_secs: Option<f64>,
    memd: Option<PathBuf>,
    freqtrade: Option<PathBuf>,
    json: bool,
    keep: bool,
    history_decisions: usize,
    history_deployments: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: soak [--minutes N] [--warmup-minutes W] [--sample-secs S] [--cycle-secs C] \
         [--memd PATH] [--freqtrade PATH] [--json] [--keep] [--history-decisions N] \
         [--history-deployments N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut options = Options {
        minutes: 30.0,
        warmup_minutes: 5.0,
        sample_secs: 10.0,
        cycle_secs: None,
        memd: std::env::var_os("MEMD_BIN").map(PathBuf::from),
        freqtrade: None,
        json: false,
        keep: false,
        history_decisions: 12_000,
        history_deployments: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--minutes" => options.minutes = value().parse().unwrap_or_else(|_| usage()),
            "--warmup-minutes" => {
                options.warmup_minutes = value().parse().unwrap_or_else(|_| usage())
            }
            "--sample-secs" => options.sample_secs = value().parse().unwrap_or_else(|_| usage()),
            "--cycle-secs" => {
                options.cycle_secs = Some(value().parse().unwrap_or_else(|_| usage()))
            }
            "--memd" => options.memd = Some(PathBuf::from(value())),
            "--freqtrade" => options.freqtrade = Some(PathBuf::from(value())),
            "--json" => options.json = true,
            "--keep" => options.keep = true,
            "--history-decisions" => {
                options.history_decisions = value().parse().unwrap_or_else(|_| usage())
            }
            "--history-deployments" => {
                options.history_deployments = value().parse().unwrap_or_else(|_| usage())
            }
            _ => usage(),
        }
    }
    let cycle_ok = options.cycle_secs.is_none_or(|c| c >= 30.0);
    if options.minutes <= 0.0
        || options.warmup_minutes < 0.0
        || options.warmup_minutes >= options.minutes
        || options.sample_secs < 1.0
        || !cycle_ok
    {
        usage();
    }
    if let Some(path) = &options.freqtrade {
        if !path.is_file() {
            eprintln!("soak: {} is not a file", path.display());
            std::process::exit(2);
        }
    }
    options
}

fn sid(s: &str) -> StrategyId {
    s.parse().expect("a seeded strategy id")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

// ---------------------------------------------------------------------------------------
// /proc and the data directory

/// One process of `/proc`.
struct Proc {
    pid: i32,
    ppid: i32,
    zombie: bool,
    cmdline: String,
}

fn processes() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // After the command name (in parentheses): state, then ppid.
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let zombie = rest.next()? == "Z";
            let ppid = rest.next()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            Some(Proc {
                pid,
                ppid,
                zombie,
                cmdline,
            })
        })
        .collect()
}

/// The transitive children of `root`.
fn descendants(root: i32, all: &[Proc]) -> Vec<&Proc> {
    let mut found: Vec<&Proc> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            frontier.push(p.pid);
            found.push(p);
        }
    }
    found
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A path component with a UUID (a strategy's or a deployment's) as `{id}`.
fn mask_id(component: &str) -> String {
    let b = component.as_bytes();
    let is_uuid = b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if is_uuid {
        format!("{{id}}{}", &component[36..])
    } else {
        component.to_string()
    }
}

/// memd's open fds by what they point at: `socket`, `pipe`, `anon_inode:[eventpoll]`, ...,
/// or a path, with the data directory as `<data>` and ids as `{id}`.
fn fd_kinds(pid: i32, data_dir: &Path) -> BTreeMap<String, usize> {
    let data = data_dir.display().to_string();
    let mut kinds = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return kinds;
    };
    for entry in entries.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.display().to_string();
        let kind = match target.split_once(":[") {
            Some((k @ ("socket" | "pipe"), _)) => k.to_string(),
            _ => target
                .replace(&data, "<data>")
                .split('/')
                .map(mask_id)
                .collect::<Vec<_>>()
                .join("/"),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

fn threads(pid: i32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn subdirs(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .count()
    })
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

// ---------------------------------------------------------------------------------------
// Samples

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// Every `--sample-secs`.
    Periodic,
    /// At the same point of every cycle.
    Checkpoint,
    /// After every bot was stopped, at the end.
    Final,
}

#[derive(Debug, Clone, Serialize)]
struct Sample {
    t_secs: f64,
    kind: Kind,
    rss_mb: f64,
    /// `RssAnon`: the heap and stacks, without the mapped binary and libraries.
    rss_anon_mb: f64,
    fds: usize,
    threads: usize,
    cpu_percent: f64,
    descendants: usize,
    zombies: usize,
    dir_processes: usize,
    /// At a checkpoint: the Freqtrade deployments memd lists as active.
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_bots: Option<usize>,
    memory_bytes: u64,
    registry_bytes: u64,
    deployment_dirs: usize,
    requests: u64,
    errors: u64,
    events: u64,
    slowest_ms: f64,
}

struct Sampler {
    last_cpu: f64,
    last_at: Instant,
    samples: Vec<Sample>,
    /// memd's fds by kind at each checkpoint and at the end: (time, kinds).
    fd_kinds: Vec<(f64, BTreeMap<String, usize>)>,
}

/// A client of memd named `name` (in memd's log), with the soak's timeouts.
async fn connect(socket: &Path, name: &str) -> Client {
    Client::connect(
        socket,
        ClientOptions {
            client_name: name.into(),
            call_timeout: CALL_TIMEOUT,
            connect_timeout: Duration::from_secs(30),
            ..ClientOptions::default()
        },
    )
    .await
    .expect("connect to memd")
}

// ---------------------------------------------------------------------------------------
// The shared state of the run

struct Soak {
    socket: PathBuf,
    data_dir: PathBuf,
    memd_pid: i32,
    start: Instant,
    real_freqtrade: bool,
    stop: watch::Receiver<bool>,
    /// Set just before SIGTERM: the subscription may end from then on.
    shutting_down: AtomicBool,
    requests: AtomicU64,
    errors: AtomicU64,
    error_log: Mutex<Vec<String>>,
    slowest_us: AtomicU64,
    trades_acked: AtomicU64,
    decisions: AtomicU64,
    events: AtomicU64,
    bots_deployed: AtomicU64,
    bots_stopped: AtomicU64,
    natives_run: AtomicU64,
    forced_trades: AtomicU64,
    bot_api_refusals: AtomicU64,
    sampler: Mutex<Sampler>,
}

impl Soak {
    fn t(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Counts and prints a failure.
    fn error(&self, what: impl Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let line = format!("[{:>5.0}s] ERROR {what}", self.t());
        println!("{line}");
        let mut log = self.error_log.lock().expect("error log");
        if log.len() < 200 {
            log.push(line);
        }
    }

    fn note(&self, what: impl Display) {
        println!("[{:>5.0}s] {what}", self.t());
    }

    async fn connect(&self, name: &str) -> Client {
        connect(&self.socket, name).await
    }

    /// One request, counted, timed; a failure is printed and counted.
    async fn call<M: Method>(
        &self,
        client: &Client,
        params: M::Params,
        timeout: Duration,
    ) -> Option<M::Result> {
        let sent = Instant::now();
        let outcome = client.call_with_timeout::<M>(params, timeout).await;
        // Deploy and stop wait for processes by design: not in the `slowest` column.
        if !matches!(M::NAME, "strategies.deploy" | "strategies.stop") {
            self.slowest_us
                .fetch_max(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(result) => Some(result),
            Err(e) => {
                self.error(format_args!("{}: {e}", M::NAME));
                None
            }
        }
    }

    /// Sleeps until `at`; false when the run is being stopped.
    async fn pause_until(&self, at: Instant) -> bool {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => !self.stopped(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// The next tick of a load's interval; false when the run is being stopped.
    async fn tick(&self, interval: &mut Interval) -> bool {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            _ = interval.tick() => !self.stopped(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Takes, prints and keeps one sample.
    fn sample(&self, kind: Kind, expected_bots: Option<usize>) -> Sample {
        let pid = self.memd_pid;
        let procs = processes();
        let kids = descendants(pid, &procs);
        let needle = self.data_dir.display().to_string();
        let dir_processes = procs
            .iter()
            .filter(|p| p.pid != pid && p.cmdline.contains(&needle))
            .count();
        let mut sampler = self.sampler.lock().expect("sampler");
        let cpu = cpu_seconds(&pid.to_string());
        let now = Instant::now();
        // Since the previous periodic sample; a checkpoint right after one has no figure.
        let wall = now.duration_since(sampler.last_at).as_secs_f64();
        let cpu_percent = if wall >= 1.0 {
            (cpu - sampler.last_cpu) / wall * 100.0
        } else {
            f64::NAN
        };
        if kind == Kind::Periodic {
            sampler.last_cpu = cpu;
            sampler.last_at = now;
        }
        let s = Sample {
            t_secs: self.t(),
            kind,
            rss_mb: status_mb(&pid.to_string(), "VmRSS:"),
            rss_anon_mb: status_mb(&pid.to_string(), "RssAnon:"),
            fds: fd_count(pid),
            threads: threads(pid),
            cpu_percent,
            descendants: kids.len(),
            zombies: kids.iter().filter(|p| p.zombie).count(),
            dir_processes,
            expected_bots,
            memory_bytes: dir_bytes(&self.data_dir.join("mem_knowledge")),
            registry_bytes: dir_bytes(&self.data_dir.join("strategy_registry")),
            deployment_dirs: subdirs(&self.data_dir.join("deployments")),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            slowest_ms: self.slowest_us.swap(0, Ordering::Relaxed) as f64 / 1e3,
        };
        if kind != Kind::Periodic {
            sampler
                .fd_kinds
                .push((s.t_secs, fd_kinds(pid, &self.data_dir)));
        }
        if sampler.samples.len() % 20 == 0 {
            println!("{}", header());
        }
        println!("{}", row(&s));
        sampler.samples.push(s.clone());
        s
    }
}

fn header() -> String {
    format!(
        "{:>6} {:>7} {:>6} {:>4} {:>4} {:>6} {:>4} {:>4} {:>4} {:>9} {:>9} {:>4} {:>8} {:>4} {:>7} {:>8}",
        "t",
        "rss MB",
        "anon",
        "fds",
        "thr",
        "cpu%",
        "kids",
        "zomb",
        "dirp",
        "mem_kn MB",
        "regis MB",
        "deps",
        "req",
        "err",
        "events",
        "slowest"
    )
}

fn row(s: &Sample) -> String {
    let mark = match s.kind {
        Kind::Periodic => String::new(),
        Kind::Checkpoint => format!(
            "  <- checkpoint ({} bot(s) active)",
            s.expected_bots.unwrap_or(0)
        ),
        Kind::Final => "  <- end, every bot stopped".into(),
    };
    let cpu = if s.cpu_percent.is_nan() {
        "-".to_string()
    } else {
        format!("{:.1}", s.cpu_percent)
    };
    format!(
        "{:>5.0}s {:>7.1} {:>6.1} {:>4} {:>4} {:>6} {:>4} {:>4} {:>4} {:>9.2} {:>9.2} {:>4} {:>8} {:>4} {:>7} {:>6.0}ms{mark}",
        s.t_secs,
        s.rss_mb,
        s.rss_anon_mb,
        s.fds,
        s.threads,
        cpu,
        s.descendants,
        s.zombies,
        s.dir_processes,
        mb(s.memory_bytes),
        mb(s.registry_bytes),
        s.deployment_dirs,
        s.requests,
        s.errors,
        s.events,
        s.slowest_ms
    )
}

// ---------------------------------------------------------------------------------------
// The loads

/// One closed trade of the trickle, closing now: three in five won.
fn soak_trade(n: u64) -> TradeRecord {
    let won = n % 5 < 3;
    let pnl_pct = if won { 0.004 } else { -0.003 };
    TradeRecord {
        is_win: Some(won),
        mem_enhanced: n % 3 == 0,
        market_regime: Some("trending".into()),
        volatility: Some(0.02),
        broker: Some("soak".into()),
        commission: Some(0.1),
        ..closed_trade(format!("soak-{n:09}"))
            .entry_price(40_000.0 + (n % 500) as f64)
            .returning(pnl_pct)
            .pnl(100.0 * pnl_pct)
            .held(ChronoDuration::minutes(30 + (n % 90) as i64))
            .closed_at(Utc::now())
            .build()
    }
}

async fn record_trades(soak: Arc<Soak>, id: StrategyId) {
    let client = soak.connect("soak trades").await;
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut n = 0u64;
    while soak.tick(&mut interval).await {
        let params = RecordTradesParams {
            id,
            trades: vec![soak_trade(n)],
        };
        if let Some(r) = soak
            .call::<method::TradesRecord>(&client, params, CALL_TIMEOUT)
            .await
        {
            soak.trades_acked
                .fetch_add(r.recorded as u64, Ordering::Relaxed);
            if !r.duplicates.is_empty() {
                soak.error(format_args!(
                    "a fresh trade id reported as a duplicate: {:?}",
                    r.duplicates
                ));
            }
        }
        n += 1;
    }
}

async fn decide_and_close(soak: Arc<Soak>) {
    let client = soak.connect("soak memory").await;
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut n = 0usize;
    while soak.tick(&mut interval).await {
        let params = DecideParams {
            enhance: EnhanceParams {
                signal: BaseSignal {
                    strategy: "soak_mem".into(),
                    symbol: "BTC/USDT".into(),
                    action: SignalAction::Buy,
                    confidence: 0.7,
                },
                ml_confidence: Some(0.6),
                ml_direction: Some("bullish".into()),
                pattern: None,
                volatility_pct: Some(1.0),
                signature: Some(SIGNATURES[n % SIGNATURES.len()].into()),
                trend: None,
                adx: None,
            },
            price: 100.0,
            id: None,
        };
        if let Some(d) = soak
            .call::<method::MemDecide>(&client, params, CALL_TIMEOUT)
            .await
        {
            // Each signature wins every other time: 50% in every window of its outcomes
            // (at most 60% in one of 5), under the 70% that would make it a learned
            // pattern, and 50% over all, above the 45% that would cut its risk.
            let won = (n / SIGNATURES.len()) % 2 == 0;
            let outcome = OutcomeParams {
                decision_id: d.id,
                exit_price: if won { 101.5 } else { 99.0 },
                pnl: if won { 1.5 } else { -1.0 },
                pnl_pct: if won { 0.015 } else { -0.01 },
                closed_at: None,
                exit_reason: None,
            };
            if soak
                .call::<method::MemOutcome>(&client, outcome, CALL_TIMEOUT)
                .await
                .is_some()
            {
                soak.decisions.fetch_add(1, Ordering::Relaxed);
            }
        }
        n += 1;
    }
}

async fn read_along(soak: Arc<Soak>) {
    let client = soak.connect("soak reads").await;
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut n = 0usize;
    while soak.tick(&mut interval).await {
        match n % 4 {
            0 => {
                soak.call::<method::DaemonStatus>(&client, NoParams {}, CALL_TIMEOUT)
                    .await;
            }
            1 => {
                soak.call::<method::StrategiesList>(
                    &client,
                    ListStrategiesParams::default(),
                    CALL_TIMEOUT,
                )
                .await;
            }
            2 => {
                soak.call::<method::Deployed>(&client, DeployedParams { all: true }, CALL_TIMEOUT)
                    .await;
            }
            _ => {
                let params = DecisionsParams {
                    limit: Some(20),
                    ..DecisionsParams::default()
                };
                soak.call::<method::MemDecisions>(&client, params, CALL_TIMEOUT)
                    .await;
            }
        }
        n += 1;
    }
}

/// What the subscriber saw.
struct Subscription {
    events_by_name: HashMap<&'static str, u64>,
    saw_stopping: bool,
}

async fn subscribe(soak: Arc<Soak>) -> Subscription {
    let client = soak.connect("soak events").await;
    let mut seen = Subscription {
        events_by_name: HashMap::new(),
        saw_stopping: false,
    };
    let (result, mut events) = match client.subscribe(vec![]).await {
        Ok(s) => s,
        Err(e) => {
            soak.error(format_args!("events.subscribe: {e}"));
            return seen;
        }
    };
    let mut last_seq = result.last_seq;
    let mut statuses: HashMap<DeploymentId, DeploymentStatus> = HashMap::new();
    while let Some(message) = events.next().await {
        soak.events.fetch_add(1, Ordering::Relaxed);
        if message.seq != last_seq + 1 {
            soak.error(format_args!(
                "event seq {} after {last_seq}: {} event(s) missing",
                message.seq,
                message.seq.saturating_sub(last_seq + 1)
            ));
        }
        last_seq = message.seq;
        *seen.events_by_name.entry(message.event.name()).or_default() += 1;
        match &message.event {
            Event::DeploymentChanged(change) => {
                let d = &change.deployment;
                let before = statuses.insert(d.deployment_id, d.status);
                let bad = matches!(
                    d.status,
                    DeploymentStatus::Crashed | DeploymentStatus::Failed
                );
                if bad && before != Some(d.status) {
                    soak.error(format_args!(
                        "deployment {} of {} is {:?}: {}",
                        d.deployment_id,
                        d.strategy_name,
                        d.status,
                        d.last_error.as_deref().unwrap_or("(no error given)")
                    ));
                }
                if !d.status.is_active() {
                    statuses.remove(&d.deployment_id);
                }
            }
            Event::DaemonStopping(_) => seen.saw_stopping = true,
            _ => {}
        }
    }
    if !soak.shutting_down.load(Ordering::Relaxed) {
        soak.error("the event subscription ended while memd was running");
    }
    seen
}

// ---------------------------------------------------------------------------------------
// Bots and native replays

/// A forced entry, then a forced exit, through a real bot's own API (credentials from its
/// rendered config). Refusals are counted, not errors: the bot's readiness is Freqtrade's.
async fn force_trade(soak: Arc<Soak>, d: DeployedStrategy) {
    let refused = |what: String| {
        soak.bot_api_refusals.fetch_add(1, Ordering::Relaxed);
        soak.note(format_args!(
            "bot API of {} (not a memd error): {what}",
            d.strategy_name
        ));
    };
    let (Some(port), Some(config)) = (d.port, d.config_file.as_deref()) else {
        return refused("no port or config file".into());
    };
    let Some((user, password)) = std::fs::read(config)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|c| {
            let api = &c["api_server"];
            Some((
                api["username"].as_str()?.to_string(),
                api["password"].as_str()?.to_string(),
            ))
        })
    else {
        return refused(format!("no API credentials in {config}"));
    };
    let http = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(h) => h,
        Err(e) => return refused(e.to_string()),
    };
    let post = async |path: &str, body: Value| -> Result<Value, String> {
        let response = http
            .post(format!("http://127.0.0.1:{port}/api/v1/{path}"))
            .basic_auth(&user, Some(&password))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        response.json::<Value>().await.map_err(|e| e.to_string())
    };
    if !soak
        .pause_until(Instant::now() + Duration::from_secs(15))
        .await
    {
        return;
    }
    let mut trade_id = None;
    let mut last = String::new();
    for _ in 0..6 {
        match post("forceenter", json!({"pair": FORCED_PAIR})).await {
            Ok(v) => match v["trade_id"].as_i64() {
                Some(id) => {
                    trade_id = Some(id);
                    break;
                }
                None => last = v.to_string(),
            },
            Err(e) => last = e,
        }
        if !soak
            .pause_until(Instant::now() + Duration::from_secs(10))
            .await
        {
            return;
        }
    }
    let Some(trade_id) = trade_id else {
        return refused(format!("forceenter: {last}"));
    };
    if !soak
        .pause_until(Instant::now() + Duration::from_secs(20))
        .await
    {
        return;
    }
    match post(
        "forceexit",
        json!({"tradeid": trade_id.to_string(), "ordertype": "market"}),
    )
    .await
    {
        Ok(_) => {
            soak.forced_trades.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => refused(format!("forceexit: {e}")),
    }
}

/// The newest deployment of a strategy, ended ones included.
async fn deployment(soak: &Soak, client: &Client, id: DeploymentId) -> Option<DeployedStrategy> {
    soak.call::<method::Deployed>(client, DeployedParams { all: true }, CALL_TIMEOUT)
        .await?
        .deployments
        .into_iter()
        .find(|d| d.deployment_id == id)
}

fn native_replay(id: &str, speed: Option<f64>) -> DeployParams {
    DeployParams {
        id: sid(id),
        dry_run: true,
        port: None,
        parameters: None,
        native: Some(NativeOptions {
            pair: Some(CANDLES_PAIR.into()),
            file: Some(CANDLES.into()),
            mode: Some(FeedMode::Replay),
            speed,
            ..NativeOptions::default()
        }),
    }
}

async fn stop(soak: &Soak, client: &Client, id: StrategyId, name: &str, mode: StopMode) -> bool {
    let params = StopParams {
        id,
        mode,
        deadline_secs: (mode == StopMode::Drain).then_some(10),
    };
    match soak
        .call::<method::Stop>(client, params, STOP_TIMEOUT)
        .await
    {
        Some(d) if d.status == DeploymentStatus::Stopped => true,
        Some(d) => {
            soak.error(format_args!(
                "{name} after strategies.stop is {:?}: {:?}",
                d.status, d.last_error
            ));
            false
        }
        None => false,
    }
}

/// The cycles of bots and native replays, each ending with a checkpoint sample.
async fn cycles(soak: Arc<Soak>, cycle: Duration, deadline: Instant) {
    let client = soak.connect("soak deployments").await;
    let mut previous: Option<(StrategyId, &str)> = None;
    let mut forced: Vec<JoinHandle<()>> = Vec::new();
    let mut k = 0usize;
    // A cycle starts only if its checkpoint (5 s before its end) comes before the deadline.
    while !soak.stopped() && Instant::now() + cycle <= deadline + Duration::from_secs(4) {
        let cycle_start = Instant::now();
        let at = |fraction: f64| cycle_start + cycle.mul_f64(fraction);

        // A bot deploys; 5 s after it runs, the previous one stops.
        let (bot, name) = BOTS[k % BOTS.len()];
        let params = DeployParams {
            id: sid(bot),
            dry_run: true,
            port: Some(free_port()),
            parameters: None,
            native: None,
        };
        let asked = Instant::now();
        let mut current = None;
        match soak
            .call::<method::Deploy>(&client, params, DEPLOY_TIMEOUT)
            .await
        {
            Some(d) if d.status == DeploymentStatus::Running => {
                soak.bots_deployed.fetch_add(1, Ordering::Relaxed);
                soak.note(format_args!(
                    "{name} running (pid {}, port {}) after {:.1} s",
                    d.process_id.unwrap_or(0),
                    d.port.unwrap_or(0),
                    asked.elapsed().as_secs_f64()
                ));
                current = Some((sid(bot), name));
                if soak.real_freqtrade {
                    forced.push(tokio::spawn(force_trade(soak.clone(), d)));
                }
            }
            Some(d) => {
                soak.error(format_args!(
                    "{name} deployed as {:?}: {:?}",
                    d.status, d.last_error
                ));
                current = Some((sid(bot), name));
            }
            None => {}
        }
        if !soak
            .pause_until(Instant::now() + Duration::from_secs(5))
            .await
        {
            break;
        }
        if let Some((id, prev_name)) = previous.take() {
            let mode = if k % 2 == 0 {
                StopMode::Now
            } else {
                StopMode::Drain
            };
            let asked = Instant::now();
            if stop(&soak, &client, id, prev_name, mode).await {
                soak.bots_stopped.fetch_add(1, Ordering::Relaxed);
                soak.note(format_args!(
                    "{prev_name} stopped ({mode:?}) in {:.1} s",
                    asked.elapsed().as_secs_f64()
                ));
            }
        }
        previous = current;

        // A native replay that runs to its end.
        if !soak.pause_until(at(0.3)).await {
            break;
        }
        let (native, native_name) = NATIVES[k % NATIVES.len()];
        if let Some(d) = soak
            .call::<method::Deploy>(&client, native_replay(native, None), DEPLOY_TIMEOUT)
            .await
        {
            let ends_by = at(0.55);
            let mut ended = None;
            while Instant::now() < ends_by {
                if !soak
                    .pause_until(Instant::now() + Duration::from_millis(500))
                    .await
                {
                    break;
                }
                if let Some(now) = deployment(&soak, &client, d.deployment_id).await {
                    if !now.status.is_active() {
                        ended = Some(now);
                        break;
                    }
                }
            }
            match ended {
                Some(e) => {
                    soak.natives_run.fetch_add(1, Ordering::Relaxed);
                    soak.note(format_args!(
                        "{native_name} replay {}: {} trades",
                        e.stats.bot_state.as_deref().unwrap_or("ended"),
                        e.stats.closed_trades
                    ));
                }
                None if soak.stopped() => break,
                None => {
                    soak.note(format_args!(
                        "{native_name} replay still running at 55% of the cycle; stopping it"
                    ));
                    stop(&soak, &client, sid(native), native_name, StopMode::Now).await;
                }
            }
        }

        // A paced native replay, stopped after 5 s.
        if !soak.pause_until(at(0.6)).await {
            break;
        }
        let (native, native_name) = NATIVES[(k + 1) % NATIVES.len()];
        if soak
            .call::<method::Deploy>(&client, native_replay(native, Some(300.0)), DEPLOY_TIMEOUT)
            .await
            .is_some()
        {
            let _ = soak
                .pause_until(Instant::now() + Duration::from_secs(5))
                .await;
            if stop(&soak, &client, sid(native), native_name, StopMode::Now).await {
                soak.natives_run.fetch_add(1, Ordering::Relaxed);
            }
        }

        // The checkpoint: one bot, no replay.
        if !soak
            .pause_until(cycle_start + cycle - Duration::from_secs(5))
            .await
        {
            break;
        }
        let active = soak
            .call::<method::Deployed>(&client, DeployedParams { all: false }, CALL_TIMEOUT)
            .await
            .map(|l| {
                l.deployments
                    .iter()
                    .filter(|d| d.deployment_type == DeploymentType::Freqtrade)
                    .count()
            });
        soak.sample(Kind::Checkpoint, active);
        if !soak.pause_until(cycle_start + cycle).await {
            break;
        }
        k += 1;
    }
    for task in forced {
        task.abort();
    }
}

async fn sample_along(soak: Arc<Soak>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval.tick().await;
    while soak.tick(&mut interval).await {
        soak.sample(Kind::Periodic, None);
    }
}

// ---------------------------------------------------------------------------------------
// Verdicts

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

struct Verdict {
    name: &'static str,
    pass: bool,
    text: String,
    figures: Value,
}

fn verdict(name: &'static str, pass: bool, text: String, figures: Value) -> Verdict {
    println!("{} {name}: {text}", if pass { "PASS" } else { "MISS" });
    Verdict {
        name,
        pass,
        text,
        figures,
    }
}

fn range<T: Copy + Ord + Default>(values: impl Iterator<Item = T>) -> (T, T) {
    let v: Vec<T> = values.collect();
    (
        v.iter().copied().min().unwrap_or_default(),
        v.iter().copied().max().unwrap_or_default(),
    )
}

/// Writes memd's config, whose `[freqtrade]` runs the real Freqtrade (`--freqtrade`)
/// against a mock exchange started here, or the fake bot; answers its path and the mock.
async fn bots_config(options: &Options, dir: &Path) -> (PathBuf, Option<MockExchange>) {
    let Some(freqtrade) = &options.freqtrade else {
        let config = fake_freqtrade_config(
            dir,
            json!({"fake_bot": {"closed_trades": 3}}),
            "poll_interval_secs = 2\nready_timeout_secs = 30\nstop_timeout_secs = 10\nmax_restarts = 3",
            "",
        );
        println!(
            "bots:        the FAKE bot (fake_freqtrade, a stand-in for Freqtrade; pass --freqtrade PATH for real bots)"
        );
        return (config, None);
    };
    let exchange = mock_exchange::start_filling_at_once().await;
    let config = mem_e2e::freqtrade::memd_config(
        dir,
        freqtrade,
        &exchange,
        true,
        "poll_interval_secs = 2\nready_timeout_secs = 150\nstop_timeout_secs = 20\nmax_restarts = 3",
        "",
    );
    println!(
        "bots:        real Freqtrade {} (dry-run) on the mock exchange {}",
        freqtrade.display(),
        exchange.url()
    );
    (config, Some(exchange))
}

/// Registers the strategy the trade trickle records on.
async fn register_trade_target(soak: &Soak, client: &Client) -> StrategyId {
    let params = RegisterParams {
        strategy: json!({
            "schema_version": "1.0.0",
            "strategy": {
                "name": "soak_trades",
                "display_name": "Soak trades",
                "description": "Receives the trade trickle of the soak tool.",
                "version": "1.0.0",
                "classification": {"category": "momentum", "tags": ["soak"]},
                "implementation": {"language": "rust"}
            }
        }),
        status: None,
    };
    soak.call::<method::StrategiesRegister>(client, params, CALL_TIMEOUT)
        .await
        .expect("register the trade target")
        .summary
        .id
}

/// What the end of the run found.
struct Ending {
    interrupted: bool,
    load_secs: f64,
    /// Deployments stopped by the end phase.
    stopped_at_end: usize,
    /// Deployments memd still listed as active after that (`None`: no answer).
    still_active: Option<usize>,
    /// The sample 3 s after every bot was stopped.
    end: Sample,
    /// Processes mentioning the data directory, memd excepted, at that time.
    leftovers: Vec<String>,
    /// `strategies.performance` of the trickle's strategy.
    counted_trades: Option<u64>,
    /// Trades the seeded bots' deployments brought into the registry.
    bot_trades: u64,
    exit: Option<ExitStatus>,
    exit_secs: f64,
    subscription: Option<Subscription>,
    /// WARN and ERROR lines of memd's stderr.
    complaints: Vec<String>,
    cpu_self: f64,
}

/// Stops every deployment through memd, waits 3 s, and looks at what is left; then the
/// trade counts.
async fn stop_everything(
    soak: &Soak,
    client: &Client,
    target: StrategyId,
) -> (usize, Option<usize>, Sample, Vec<String>, Option<u64>, u64) {
    let mut stopped = 0;
    let active = DeployedParams { all: false };
    if let Some(list) = soak
        .call::<method::Deployed>(client, active.clone(), CALL_TIMEOUT)
        .await
    {
        for d in list.deployments {
            if stop(soak, client, d.strategy_id, &d.strategy_name, StopMode::Now).await {
                stopped += 1;
                if d.deployment_type == DeploymentType::Freqtrade {
                    soak.bots_stopped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let still_active = soak
        .call::<method::Deployed>(client, active, CALL_TIMEOUT)
        .await
        .map(|l| l.deployments.len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end = soak.sample(Kind::Final, Some(0));
    let needle = soak.data_dir.display().to_string();
    let leftovers = processes()
        .iter()
        .filter(|p| p.pid != soak.memd_pid && p.cmdline.contains(&needle))
        .map(|p| format!("pid {} (ppid {}): {}", p.pid, p.ppid, p.cmdline.trim()))
        .collect();
    let performance = async |id: StrategyId| {
        let params = PerformanceParams {
            id,
            from: None,
            to: None,
        };
        soak.call::<method::Performance>(client, params, CALL_TIMEOUT)
            .await
            .map(|r| r.all.total_trades)
    };
    let counted = performance(target).await;
    let mut bot_trades = 0;
    for (bot, _) in BOTS {
        bot_trades += performance(sid(bot)).await.unwrap_or(0);
    }
    (stopped, still_active, end, leftovers, counted, bot_trades)
}

/// Fills memd's store of ended deployments before the run, as on a server that has run
/// for a while: `n` native replays at full speed, both natives at once, each waited for to
/// its end. memd keeps the newest 200 ended deployments, and `strategies.deployed` with
/// the ended ones (a read of this soak) answers with all of them; without this, the first
/// 70-85 minutes of the soak read as a rise of memd's memory while that store fills
/// (docs/benchmarks/history.md, "Soak: two allocation fixes ...").
async fn seed_ended_deployments(socket: &Path, n: usize) {
    if n == 0 {
        return;
    }
    let started = Instant::now();
    let client = connect(socket, "soak history").await;
    let mut done = 0;
    while done < n {
        let mut running = Vec::new();
        for (native, name) in NATIVES.iter().take(n - done) {
            let d = client
                .call_with_timeout::<method::Deploy>(native_replay(native, None), DEPLOY_TIMEOUT)
                .await
                .unwrap_or_else(|e| panic!("history: deploying a {name} replay: {e}"));
            running.push(d.deployment_id);
        }
        let ends_by = Instant::now() + DEPLOY_TIMEOUT;
        loop {
            let active = client
                .call::<method::Deployed>(DeployedParams { all: false })
                .await
                .unwrap_or_else(|e| panic!("history: strategies.deployed: {e}"));
            if !active
                .deployments
                .iter()
                .any(|d| running.contains(&d.deployment_id))
            {
                break;
            }
            assert!(
                Instant::now() < ends_by,
                "history: a native replay still runs after {} s",
                DEPLOY_TIMEOUT.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        done += running.len();
        if done % 50 == 0 || done == n {
            println!(
                "history:     {done}/{n} native replays ended ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let all = client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
        .unwrap_or_else(|e| panic!("history: strategies.deployed: {e}"));
    let mut statuses = BTreeMap::new();
    for d in &all.deployments {
        *statuses.entry(format!("{:?}", d.status)).or_insert(0usize) += 1;
    }
    println!(
        "history:     memd keeps {} deployments before the run: {statuses:?}",
        all.deployments.len()
    );
}

/// Writes `n` closed decisions of a strategy that is not otherwise used (`soak_history`),
/// a minute apart and ending an hour ago, as a server that has run for months has them.
/// memd loads the newest of them into its window of recent decisions (10,000), so the
/// window is full from the start, as in a steady state, instead of filling during the run.
fn seed_decision_history(data_dir: &Path, n: usize) {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = data_dir.join("mem_knowledge");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .expect("create mem_knowledge/");
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(dir.join("decisions.jsonl"))
        .expect("create decisions.jsonl");
    let mut out = std::io::BufWriter::new(file);
    let end = Utc::now() - ChronoDuration::hours(1);
    let signatures = [
        "BUY|trend=bullish|volatility=medium|rsi=neutral",
        "BUY|trend=bearish|volatility=high|rsi=oversold",
        "BUY|trend=ranging|volatility=low|rsi=neutral",
    ];
    for i in 0..n {
        let at = end - ChronoDuration::minutes((n - i) as i64);
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let price = 100.0 + (i % 50) as f64;
        let win = i % 2 == 0;
        let decision = Decision {
            id: id.clone(),
            at,
            strategy: "soak_history".into(),
            symbol: "HIST/USDT".into(),
            action: SignalAction::Buy,
            price,
            base_confidence: 0.7,
            confidence: 0.72,
            ml_confidence: Some(0.61),
            memory_confidence: Some(0.5),
            learned_pattern: None,
            position_size: 0.1,
            stop_loss: price * 0.98,
            take_profit: price * 1.04,
            reasoning: "base 0.70 (RSI signal); ML 0.61 agrees; memory 0.50 over the last 50 on HIST/USDT; confidence 0.72".into(),
            signature: Some(signatures[i % signatures.len()].into()),
            model_version: None,
            observed: false,
            source: None,
            outcome: None,
        };
        let outcome = Outcome {
            decision_id: id,
            closed_at: at + ChronoDuration::seconds(30),
            exit_price: if win { price * 1.01 } else { price * 0.99 },
            pnl: if win { 1.0 } else { -1.0 },
            pnl_pct: if win { 1.0 } else { -1.0 },
            win,
            exit_reason: None,
            duration_secs: None,
        };
        let mut line = serde_json::to_value(&decision).expect("decision serializes");
        line["kind"] = json!("decision");
        let mut closed = serde_json::to_value(&outcome).expect("outcome serializes");
        closed["kind"] = json!("outcome");
        writeln!(out, "{line}\n{closed}").expect("write decisions.jsonl");
    }
    out.flush().expect("write decisions.jsonl");
}

#[tokio::main]
async fn main() {
    let options = parse_args();
    let memd = find_memd(options.memd.clone());
    let work = tempfile::Builder::new()
        .prefix("soak-")
        .tempdir()
        .expect("temp dir");
    let data_dir = work.path().join("data");
    let real_freqtrade = options.freqtrade.is_some();
    let cycle = Duration::from_secs_f64(options.cycle_secs.unwrap_or(if real_freqtrade {
        75.0
    } else {
        60.0
    }));

    let (config, mock) = bots_config(&options, work.path()).await;
    println!("memd:        {}", memd.display());
    println!("data dir:    {}", data_dir.display());
    seed_decision_history(&data_dir, options.history_decisions);
    println!(
        "history:     {} past decisions with their outcomes in mem_knowledge/decisions.jsonl",
        options.history_decisions
    );
    // memd in a process group of its own, as under systemd: a Ctrl-C at the terminal
    // reaches this tool, which then stops everything in order.
    let (mut daemon, ready_after) = start_memd_with(&memd, work.path(), &data_dir, |cmd| {
        cmd.arg("--config").arg(&config).process_group(0);
    });
    let memd_pid = daemon.pid();
    println!(
        "memd ready:  {:.0} ms after spawn (pid {memd_pid})",
        ready_after.as_secs_f64() * 1e3
    );
    seed_ended_deployments(&daemon.socket, options.history_deployments).await;
    println!(
        "run:         {} min, warm-up {} min, a sample every {} s, a bot cycle every {} s",
        options.minutes,
        options.warmup_minutes,
        options.sample_secs,
        cycle.as_secs_f64()
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let soak = Arc::new(Soak {
        socket: daemon.socket.clone(),
        data_dir: data_dir.clone(),
        memd_pid,
        start: Instant::now(),
        real_freqtrade,
        stop: stop_rx,
        shutting_down: AtomicBool::new(false),
        requests: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        error_log: Mutex::new(Vec::new()),
        slowest_us: AtomicU64::new(0),
        trades_acked: AtomicU64::new(0),
        decisions: AtomicU64::new(0),
        events: AtomicU64::new(0),
        bots_deployed: AtomicU64::new(0),
        bots_stopped: AtomicU64::new(0),
        natives_run: AtomicU64::new(0),
        forced_trades: AtomicU64::new(0),
        bot_api_refusals: AtomicU64::new(0),
        sampler: Mutex::new(Sampler {
            last_cpu: cpu_seconds(&memd_pid.to_string()),
            last_at: Instant::now(),
            samples: Vec::new(),
            fd_kinds: Vec::new(),
        }),
    });
    let cpu_self_before = cpu_seconds("self");
    let admin = soak.connect("soak").await;
    let target = register_trade_target(&soak, &admin).await;

    // The run.
    let subscriber = tokio::spawn(subscribe(soak.clone()));
    let deadline = soak.start + Duration::from_secs_f64(options.minutes * 60.0);
    let loads = vec![
        tokio::spawn(cycles(soak.clone(), cycle, deadline)),
        tokio::spawn(record_trades(soak.clone(), target)),
        tokio::spawn(decide_and_close(soak.clone())),
        tokio::spawn(read_along(soak.clone())),
        tokio::spawn(sample_along(
            soak.clone(),
            Duration::from_secs_f64(options.sample_secs),
        )),
    ];
    let interrupted = tokio::select! {
        _ = tokio::time::sleep_until(deadline.into()) => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        soak.note("interrupted: stopping the loads and every bot, then memd");
    }
    let _ = stop_tx.send(true);
    for load in loads {
        if let Err(e) = load.await {
            soak.error(format_args!("a load task failed: {e}"));
        }
    }
    let load_secs = soak.t();

    // The end: every bot stopped through memd, nothing left behind; memd stopped by
    // SIGTERM.
    let (stopped_at_end, still_active, end, leftovers, counted_trades, bot_trades) =
        stop_everything(&soak, &admin, target).await;
    drop(admin);
    soak.shutting_down.store(true, Ordering::Relaxed);
    let asked = Instant::now();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(memd_pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    let exit = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(30)));
    let exit_secs = asked.elapsed().as_secs_f64();
    let subscription = match tokio::time::timeout(Duration::from_secs(10), subscriber).await {
        Ok(Ok(s)) => Some(s),
        _ => None,
    };
    if let Some(exchange) = mock {
        exchange.shutdown().await;
    }
    let ending = Ending {
        interrupted,
        load_secs,
        stopped_at_end,
        still_active,
        end,
        leftovers,
        counted_trades,
        bot_trades,
        exit,
        exit_secs,
        subscription,
        complaints: daemon
            .stderr()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked"))
            .map(str::to_string)
            .collect(),
        cpu_self: cpu_seconds("self") - cpu_self_before,
    };

    print_totals(&soak, &ending);
    let (verdicts, samples) = judge(&soak, &options, &ending);
    let all_pass = verdicts.iter().all(|v| v.pass);
    println!("{}", if all_pass { "soak: PASS" } else { "soak: MISS" });
    if options.json {
        let summary = json!({
            "pass": all_pass,
            "interrupted": interrupted,
            "minutes": options.minutes,
            "warmup_minutes": options.warmup_minutes,
            "cycle_secs": cycle.as_secs_f64(),
            "bots": if real_freqtrade { "freqtrade" } else { "fake" },
            "freqtrade": options.freqtrade.as_ref().map(|p| p.display().to_string()),
            "memd": memd.display().to_string(),
            "requests": soak.requests.load(Ordering::Relaxed),
            "errors": soak.errors.load(Ordering::Relaxed),
            "trades_acknowledged": soak.trades_acked.load(Ordering::Relaxed),
            "decisions": soak.decisions.load(Ordering::Relaxed),
            "events": soak.events.load(Ordering::Relaxed),
            "bot_trades": ending.bot_trades,
            "memd_warn_error_lines": ending.complaints.len(),
            "verdicts": verdicts.iter().map(|v| json!({"name": v.name, "pass": v.pass, "text": v.text, "figures": v.figures})).collect::<Vec<_>>(),
            "samples": samples,
        });
        println!("{}", serde_json::to_string_pretty(&summary).expect("json"));
    }
    if options.keep {
        let _ = std::fs::copy(&daemon.stderr_path, work.path().join("memd.stderr"));
        drop(daemon);
        println!("kept:        {}", work.keep().display());
    } else {
        drop(daemon);
        drop(work);
    }
    if !all_pass {
        std::process::exit(1);
    }
}

/// The totals of the run, memd's complaints.
fn print_totals(soak: &Soak, ending: &Ending) {
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!();
    println!(
        "load:        {:.0} s{}; {} requests ({} failed); {} trades acknowledged; {} decisions closed; {} events",
        ending.load_secs,
        if ending.interrupted {
            " (interrupted)"
        } else {
            ""
        },
        count(&soak.requests),
        count(&soak.errors),
        count(&soak.trades_acked),
        count(&soak.decisions),
        count(&soak.events),
    );
    println!(
        "bots:        {} deployed, {} stopped ({} deployments stopped at the end); {} native replays; {} trades synced from the bots{}",
        count(&soak.bots_deployed),
        count(&soak.bots_stopped),
        ending.stopped_at_end,
        count(&soak.natives_run),
        ending.bot_trades,
        if soak.real_freqtrade {
            format!(
                "; {} forced trades closed, {} bot API refusals",
                count(&soak.forced_trades),
                count(&soak.bot_api_refusals)
            )
        } else {
            " (the fake bot reports 3 per deployment)".into()
        }
    );
    if let Some(s) = &ending.subscription {
        let mut names: Vec<_> = s.events_by_name.iter().collect();
        names.sort();
        println!(
            "events:      {}; daemon.stopping received: {}",
            names
                .iter()
                .map(|(n, c)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", "),
            s.saw_stopping
        );
    }
    println!(
        "cpu:         soak tool {:.1} s over {:.0} s ({} cores)",
        ending.cpu_self,
        ending.load_secs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "memd stderr: {} WARN/ERROR lines{}",
        ending.complaints.len(),
        if ending.complaints.is_empty() {
            ""
        } else {
            ", the first:"
        }
    );
    for line in ending.complaints.iter().take(12) {
        println!("  {line}");
    }
}

/// The verdicts (printed as they are reached), and every sample.
fn judge(soak: &Soak, options: &Options, ending: &Ending) -> (Vec<Verdict>, Vec<Sample>) {
    let (samples, kinds) = {
        let sampler = soak.sampler.lock().expect("sampler");
        (sampler.samples.clone(), sampler.fd_kinds.clone())
    };
    let warmup = options.warmup_minutes * 60.0;
    let post: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.kind != Kind::Final && s.t_secs >= warmup)
        .collect();
    let checkpoints: Vec<&Sample> = post
        .iter()
        .copied()
        .filter(|s| s.kind == Kind::Checkpoint)
        .collect();
    let all_checkpoints: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.kind == Kind::Checkpoint)
        .collect();
    let enough = checkpoints.len() >= 2;
    let too_few = if enough {
        ""
    } else {
        " (fewer than 2 checkpoints after the warm-up: run longer)"
    };
    let end = &ending.end;
    println!();
    println!(
        "verdicts over the {} samples after the {} min warm-up ({} checkpoints):",
        post.len(),
        options.warmup_minutes,
        checkpoints.len()
    );
    let mut verdicts = Vec::new();

    // RSS.
    {
        let first = checkpoints.first().map_or(f64::NAN, |s| s.rss_mb);
        let last = checkpoints.last().map_or(f64::NAN, |s| s.rss_mb);
        let max = post.iter().map(|s| s.rss_mb).fold(f64::NAN, f64::max);
        let points: Vec<(f64, f64)> = post.iter().map(|s| (s.t_secs / 3600.0, s.rss_mb)).collect();
        let per_hour = slope(&points);
        let window_h = match (points.first(), points.last()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => 0.0,
        };
        let fitted_rise = per_hour * window_h;
        let bound = RSS_BOUND_MB.max(RSS_BOUND_FRACTION * first);
        let pass = enough && last - first <= bound && fitted_rise <= bound;
        verdicts.push(verdict(
            "RSS flat",
            pass,
            format!(
                "first {first:.1} MB, max {max:.1} MB, last {last:.1} MB ({:+.1}); slope {per_hour:+.2} MB/h, fitted rise {fitted_rise:+.2} MB over {:.0} min{too_few}; rule: last - first and fitted rise <= max({RSS_BOUND_MB} MB, {:.0}% of first) = {bound:.1} MB",
                last - first,
                window_h * 60.0,
                RSS_BOUND_FRACTION * 100.0
            ),
            json!({"first_mb": first, "max_mb": max, "last_mb": last, "slope_mb_per_hour": per_hour,
                   "fitted_rise_mb": fitted_rise, "bound_mb": bound}),
        ));
    }

    // fds.
    {
        let (min, max) = range(checkpoints.iter().map(|s| s.fds));
        let (all_min, all_max) = range(post.iter().map(|s| s.fds));
        let last = checkpoints.last().map_or(0, |s| s.fds);
        let pass = enough && max - min <= FD_BOUND;
        verdicts.push(verdict(
            "fds flat",
            pass,
            format!(
                "at the checkpoints min {min}, max {max}, last {last} (spread {} <= {FD_BOUND}?){too_few}; all samples {all_min}..{all_max} (bots starting and stopping); at the end {}",
                max - min,
                end.fds
            ),
            json!({"checkpoint_min": min, "checkpoint_max": max, "checkpoint_last": last,
                   "all_min": all_min, "all_max": all_max, "end": end.fds, "bound": FD_BOUND,
                   "kinds_at_checkpoints_and_end": kinds.iter().map(|(t, k)| json!({"t_secs": t, "kinds": k})).collect::<Vec<_>>()}),
        ));
        // What changed between the first and the last checkpoint after the warm-up.
        let at = |t: Option<f64>| t.and_then(|t| kinds.iter().find(|(kt, _)| *kt == t));
        if let (Some((t0, first)), Some((t1, last))) = (
            at(checkpoints.first().map(|s| s.t_secs)),
            at(checkpoints.last().map(|s| s.t_secs)),
        ) {
            let mut changed: Vec<String> = first
                .keys()
                .chain(last.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter_map(|k| {
                    let (a, b) = (
                        first.get(k).copied().unwrap_or(0),
                        last.get(k).copied().unwrap_or(0),
                    );
                    (a != b).then(|| format!("{k} {a} -> {b}"))
                })
                .collect();
            if changed.is_empty() {
                changed.push("nothing".into());
            }
            println!(
                "     memd's fds by kind, checkpoint at {t0:.0} s -> at {t1:.0} s: {}",
                changed.join(", ")
            );
        }
    }

    // Threads, for information.
    {
        let (min, max) = range(checkpoints.iter().map(|s| s.threads));
        let (all_min, all_max) = range(post.iter().map(|s| s.threads));
        println!(
            "INFO threads: at the checkpoints {min}..{max}, all samples {all_min}..{all_max}, at the end {}",
            end.threads
        );
    }

    // Processes.
    {
        let mismatched: Vec<String> = all_checkpoints
            .iter()
            .filter(|s| Some(s.dir_processes) != s.expected_bots || s.zombies > 0)
            .map(|s| {
                format!(
                    "at {:.0} s: {} process(es) for {:?} active bot(s), {} zombie(s)",
                    s.t_secs, s.dir_processes, s.expected_bots, s.zombies
                )
            })
            .collect();
        let listed = |v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.join("; "))
            }
        };
        let pass = mismatched.is_empty()
            && ending.leftovers.is_empty()
            && end.descendants == 0
            && ending.still_active == Some(0);
        verdicts.push(verdict(
            "no leaked processes",
            pass,
            format!(
                "{} checkpoint(s), {} with processes != active bots or a zombie{}; at the end {} deployment(s) still active, {} process(es) mentioning the data dir besides memd{}, {} descendant(s) of memd",
                all_checkpoints.len(),
                mismatched.len(),
                listed(&mismatched),
                ending.still_active.map_or("?".into(), |n| n.to_string()),
                ending.leftovers.len(),
                listed(&ending.leftovers),
                end.descendants
            ),
            json!({"checkpoints": all_checkpoints.len(), "mismatched": mismatched,
                   "leftovers": ending.leftovers, "end_descendants": end.descendants}),
        ));
    }

    // Errors.
    {
        let errors = soak.errors.load(Ordering::Relaxed);
        let requests = soak.requests.load(Ordering::Relaxed);
        let subscribed = ending.subscription.is_some();
        verdicts.push(verdict(
            "no errors",
            errors == 0 && subscribed,
            format!(
                "{errors} failed request(s), event gap(s) or bot crash(es) in {requests} requests{}",
                if subscribed {
                    ""
                } else {
                    "; the subscriber did not end cleanly"
                }
            ),
            json!({"errors": errors, "requests": requests,
                   "first_errors": soak.error_log.lock().expect("error log").clone()}),
        ));
    }

    // Trades.
    {
        let acked = soak.trades_acked.load(Ordering::Relaxed);
        verdicts.push(verdict(
            "trades kept",
            ending.counted_trades == Some(acked) && acked > 0,
            format!(
                "strategies.performance of soak_trades counts {} trades; {acked} acknowledged",
                ending.counted_trades.map_or("?".into(), |n| n.to_string())
            ),
            json!({"acknowledged": acked, "counted": ending.counted_trades}),
        ));
    }

    // The load itself.
    {
        let growth = |f: fn(&Sample) -> u64| match (post.first(), post.last()) {
            (Some(a), Some(b)) => f(b) as i64 - f(a) as i64,
            _ => 0,
        };
        let grew = growth(|s| s.memory_bytes);
        let registry_grew = growth(|s| s.registry_bytes);
        let deployed = soak.bots_deployed.load(Ordering::Relaxed);
        let stopped = soak.bots_stopped.load(Ordering::Relaxed);
        let natives = soak.natives_run.load(Ordering::Relaxed);
        verdicts.push(verdict(
            "load ran",
            deployed >= 2 && stopped >= 2 && natives >= 2 && grew > 0,
            format!(
                "{deployed} bots deployed, {stopped} stopped, {natives} native replays; after the warm-up mem_knowledge/ grew by {:.2} MB (to {:.2} MB), strategy_registry/ by {:.2} MB (to {:.2} MB); {} deployment directories",
                grew as f64 / (1 << 20) as f64,
                mb(end.memory_bytes),
                registry_grew as f64 / (1 << 20) as f64,
                mb(end.registry_bytes),
                end.deployment_dirs
            ),
            json!({"bots_deployed": deployed, "bots_stopped": stopped, "native_replays": natives,
                   "memory_growth_bytes": grew, "registry_growth_bytes": registry_grew,
                   "memory_bytes": end.memory_bytes, "registry_bytes": end.registry_bytes,
                   "deployment_dirs": end.deployment_dirs}),
        ));
    }

    // Shutdown.
    verdicts.push(verdict(
        "clean shutdown",
        ending.exit.is_some_and(|s| s.success()),
        match ending.exit {
            Some(status) => format!("SIGTERM -> {status} after {:.1} s", ending.exit_secs),
            None => format!("memd still running {:.0} s after SIGTERM", ending.exit_secs),
        },
        json!({"exit_code": ending.exit.and_then(|s| s.code()), "seconds": ending.exit_secs}),
    ));
    (verdicts, samples)
}
