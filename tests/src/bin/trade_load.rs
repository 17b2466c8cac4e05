//! `trade-load`: sustained trade recording through the socket of a real memd, and a check
//! that no acknowledged trade is lost.
//!
//! It starts memd on a temporary data directory, registers a strategy, and records trades
//! with `strategies.trades.record` from several connections at once, in batches as large
//! as the 1 MiB request frame allows, for a bounded time. Then it prints the rate (overall
//! and the median of the per-second rates), the batch latencies, the CPU time of memd and
//! of this tool, and verifies that:
//!
//! 1. `strategies.performance` reports exactly the acknowledged number of trades;
//! 2. after memd is killed with SIGKILL, every acknowledged trade id is in the strategy's
//!    log file `performance/{id}.jsonl` (and the file holds no other lines);
//! 3. a memd restarted on the same data reports the same total again.
//!
//! `--postgres` puts the registry in a PostgreSQL cluster of its own (the test kit's:
//! Debian's `postgresql` on loopback, with PostgreSQL's own durability settings, every
//! commit synced) and checks the database's rows instead of the log file.
//!
//! Build and run (release; memd is looked up next to this executable):
//!
//! ```text
//! cargo build --release -p memd --bin memd
//! cargo build --release -p mem-e2e --bin trade-load
//! target/release/trade-load --seconds 20 --connections 4
//! ```
//!
//! Options: `--seconds S` (20), `--connections N` (4), `--batch N` (the largest that fits
//! the frame limit, about 3,000), `--memd PATH` (or `MEMD_BIN`; default: `memd` next to this
//! executable, then one directory up), `--keep` (keep the data directory and print it),
//! `--raw` (see below). Exit status 1 when a check fails.
//!
//! By default every batch goes through `mem_protocol::Client::call` (params turned into a
//! `serde_json::Value`, then into a line), as a client of the crate would send it. On a
//! machine with few cores that client's CPU competes with memd's; `--raw` writes the same
//! requests to the socket serialized straight from the typed params (and reads the answers
//! as plain lines), so the figure shows more of what memd itself can take.

use mem_e2e::measure::{cpu_seconds, median, percentile, status_mb};
use mem_e2e::trades::RandomTrades;
use mem_e2e::{Daemon, find_memd, start_memd_with};
use mem_protocol::methods::method;
use mem_protocol::registry::{PerformanceParams, RecordTradesParams, RegisterParams, TradeRecord};
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Client, ClientOptions, MAX_FRAME_BYTES};
use serde_json::json;
use std::collections::HashSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

struct Options {
    seconds: f64,
    connections: usize,
    batch: Option<usize>,
    memd: Option<PathBuf>,
    keep: bool,
    raw: bool,
    postgres: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: trade-load [--seconds S] [--connections N] [--batch N] [--memd PATH] [--keep] [--raw] [--postgres]"
    );
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut options = Options {
        seconds: 20.0,
        connections: 4,
        batch: None,
        memd: std::env::var_os("MEMD_BIN").map(PathBuf::from),
        keep: false,
        raw: false,
        postgres: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--seconds" => options.seconds = value().parse().unwrap_or_else(|_| usage()),
            "--connections" => options.connections = value().parse().unwrap_or_else(|_| usage()),
            "--batch" => options.batch = Some(value().parse().unwrap_or_else(|_| usage())),
            "--memd" => options.memd = Some(PathBuf::from(value())),
            "--keep" => options.keep = true,
            "--raw" => options.raw = true,
            "--postgres" => options.postgres = true,
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if options.connections == 0 || options.seconds <= 0.0 || options.batch == Some(0) {
        usage();
    }
    options
}

async fn connect(daemon: &Daemon) -> Client {
    Client::connect(
        &daemon.socket,
        ClientOptions {
            client_name: "trade-load".into(),
            call_timeout: Duration::from_secs(60),
            ..ClientOptions::default()
        },
    )
    .await
    .expect("connect to memd")
}

/// A load connection: the protocol crate's client, or a raw line writer (`--raw`).
enum Conn {
    Client(Box<Client>),
    Raw {
        reader: BufReader<OwnedReadHalf>,
        writer: OwnedWriteHalf,
        buf: Vec<u8>,
        line: String,
        next_id: u64,
    },
}

impl Conn {
    async fn open(daemon: &Daemon, raw: bool) -> Conn {
        if !raw {
            return Conn::Client(Box::new(connect(daemon).await));
        }
        let stream = UnixStream::connect(&daemon.socket)
            .await
            .expect("connect to memd");
        let (reader, writer) = stream.into_split();
        let mut conn = Conn::Raw {
            reader: BufReader::new(reader),
            writer,
            buf: Vec::with_capacity(MAX_FRAME_BYTES),
            line: String::new(),
            next_id: 1,
        };
        let hello = json!({"protocolVersion": mem_protocol::PROTOCOL_VERSION, "client": "trade-load --raw"});
        conn.raw_call("hello", &hello).await.expect("hello");
        conn
    }

    /// Sends one request as a line serialized straight from `params`; the `result` member
    /// of the answer.
    async fn raw_call<P: serde::Serialize>(
        &mut self,
        method: &str,
        params: &P,
    ) -> Result<serde_json::Value, String> {
        let Conn::Raw {
            reader,
            writer,
            buf,
            line,
            next_id,
        } = self
        else {
            unreachable!("raw_call on a client connection")
        };
        let id = *next_id;
        *next_id += 1;
        buf.clear();
        write!(
            buf,
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":"#
        )
        .expect("write to a vec");
        serde_json::to_writer(&mut *buf, params).map_err(|e| e.to_string())?;
        buf.extend_from_slice(b"}\n");
        if buf.len() > MAX_FRAME_BYTES {
            return Err(format!(
                "request of {} bytes exceeds the frame limit",
                buf.len()
            ));
        }
        writer.write_all(buf).await.map_err(|e| e.to_string())?;
        line.clear();
        if reader.read_line(line).await.map_err(|e| e.to_string())? == 0 {
            return Err("memd closed the connection".into());
        }
        let mut answer: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("bad answer: {e}"))?;
        if answer["id"] != json!(id) {
            return Err(format!("answer to another request: {line}"));
        }
        match answer.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(format!("error: {}", answer["error"])),
        }
    }

    /// Records one batch; the number recorded.
    async fn record(&mut self, params: RecordTradesParams) -> Result<u64, String> {
        let recorded = match self {
            Conn::Client(client) => client
                .call::<method::TradesRecord>(params)
                .await
                .map_err(|e| e.to_string())?,
            Conn::Raw { .. } => {
                serde_json::from_value(self.raw_call("strategies.trades.record", &params).await?)
                    .map_err(|e| format!("bad result: {e}"))?
            }
        };
        assert!(
            recorded.duplicates.is_empty(),
            "fresh ids reported as duplicates"
        );
        Ok(recorded.recorded as u64)
    }
}

fn trade_id(connection: usize, seq: u64) -> String {
    format!("load-c{connection}-{seq:010}")
}

/// The largest batch whose request stays under the frame limit, with a margin: measured
/// on the longest of a few thousand sample trades.
fn max_batch(id: StrategyId) -> usize {
    let mut trades = RandomTrades::new(7);
    let longest = (0..5_000u64)
        .map(|n| {
            let t = trades.trade(trade_id(99, 9_999_999_999), n + 99_999_999);
            serde_json::to_vec(&t).expect("serialize").len()
        })
        .max()
        .expect("samples");
    let envelope = serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": i64::MAX, "method": "strategies.trades.record",
        "params": RecordTradesParams { id, trades: vec![] },
    }))
    .expect("serialize")
    .len();
    // Each trade adds its JSON and a comma; keep 2% spare.
    (MAX_FRAME_BYTES * 98 / 100 - envelope) / (longest + 1)
}

/// One answered (or failed) batch.
struct BatchResult {
    connection: usize,
    first_seq: u64,
    len: usize,
    /// When the answer came, since the start.
    done_at: Duration,
    latency: Duration,
    outcome: Result<u64, String>,
}

#[tokio::main]
async fn main() {
    let options = parse_args();
    let memd = find_memd(options.memd.clone());
    let work = tempfile::Builder::new()
        .prefix("trade-load-")
        .tempdir()
        .expect("temp dir");
    let data_dir = work.path().join("data");
    println!("memd:        {}", memd.display());
    println!("data dir:    {}", data_dir.display());
    // The registry in a database of its own, syncing every commit (PostgreSQL's defaults).
    let pg = options.postgres.then(|| {
        mem_e2e::postgres::registry_cluster()
            .expect("PostgreSQL is not installed")
            .durable()
    });
    let config = pg
        .as_ref()
        .map(|pg| pg.memd_config(work.path(), "trade-load"));
    println!(
        "registry:    {}",
        pg.as_ref().map_or("files".to_string(), |pg| format!(
            "PostgreSQL {}",
            pg.url_without_password("registry")
        ))
    );
    let start_memd = || {
        start_memd_with(&memd, work.path(), &data_dir, |cmd| {
            if let Some(config) = &config {
                cmd.arg("--config").arg(config);
            }
        })
    };

    let (daemon, ready_after) = start_memd();
    let memd_pid = daemon.pid().to_string();
    println!(
        "memd ready:  {:.0} ms after spawn (pid {memd_pid})",
        ready_after.as_secs_f64() * 1e3
    );

    let admin = connect(&daemon).await;
    let id = admin
        .call::<method::StrategiesRegister>(RegisterParams {
            strategy: json!({
                "schema_version": "1.0.0",
                "strategy": {
                    "name": "trade_load_target",
                    "display_name": "Trade load target",
                    "description": "Receives the trades of the trade-load tool.",
                    "version": "1.0.0",
                    "classification": {"category": "momentum", "tags": ["load"]},
                    "implementation": {"language": "rust"}
                }
            }),
            status: None,
        })
        .await
        .expect("register the target strategy")
        .summary
        .id;
    let batch = options.batch.unwrap_or_else(|| max_batch(id));
    println!("strategy:    {id}");
    println!(
        "load:        {} connections ({}), {batch} trades per batch, {} s",
        options.connections,
        if options.raw {
            "raw lines serialized from the typed params"
        } else {
            "mem_protocol::Client"
        },
        options.seconds
    );

    let cpu_memd_before = cpu_seconds(&memd_pid);
    let cpu_self_before = cpu_seconds("self");
    let clients: Vec<Conn> = {
        let mut v = Vec::new();
        for _ in 0..options.connections {
            v.push(Conn::open(&daemon, options.raw).await);
        }
        v
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(options.seconds);
    let time_axis = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (connection, mut conn) in clients.into_iter().enumerate() {
        let time_axis = time_axis.clone();
        tasks.push(tokio::spawn(async move {
            let mut random = RandomTrades::new(connection as u64 + 1);
            let mut seq = 0u64;
            let mut results = Vec::new();
            while Instant::now() < deadline {
                let n0 = time_axis.fetch_add(batch as u64, Ordering::Relaxed);
                let trades: Vec<TradeRecord> = (0..batch as u64)
                    .map(|k| random.trade(trade_id(connection, seq + k), n0 + k))
                    .collect();
                let sent = Instant::now();
                let outcome = conn.record(RecordTradesParams { id, trades }).await;
                let now = Instant::now();
                results.push(BatchResult {
                    connection,
                    first_seq: seq,
                    len: batch,
                    done_at: now - start,
                    latency: now - sent,
                    outcome,
                });
                seq += batch as u64;
            }
            results
        }));
    }
    let mut results: Vec<BatchResult> = Vec::new();
    for task in tasks {
        results.extend(task.await.expect("load task"));
    }
    let elapsed = start.elapsed();
    let cpu_memd = cpu_seconds(&memd_pid) - cpu_memd_before;
    let cpu_self = cpu_seconds("self") - cpu_self_before;

    // --- rates and latencies
    let acked: u64 = results.iter().filter_map(|r| r.outcome.as_ref().ok()).sum();
    let failed: Vec<&BatchResult> = results.iter().filter(|r| r.outcome.is_err()).collect();
    let last_ack = results
        .iter()
        .filter(|r| r.outcome.is_ok())
        .map(|r| r.done_at)
        .max()
        .unwrap_or(elapsed);
    let full_seconds = last_ack.as_secs() as usize;
    let mut per_second = vec![0u64; full_seconds.max(1)];
    for r in &results {
        if let Ok(n) = r.outcome {
            let s = r.done_at.as_secs() as usize;
            if s < full_seconds {
                per_second[s] += n;
            }
        }
    }
    let mut rates: Vec<f64> = per_second.iter().map(|&n| n as f64).collect();
    rates.sort_by(f64::total_cmp);
    let mut latencies: Vec<f64> = results
        .iter()
        .filter(|r| r.outcome.is_ok())
        .map(|r| r.latency.as_secs_f64() * 1e3)
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!();
    println!(
        "acknowledged {acked} trades in {} batches over {:.2} s; {} batches failed",
        results.len() - failed.len(),
        last_ack.as_secs_f64(),
        failed.len()
    );
    for f in failed.iter().take(5) {
        println!(
            "  failed: connection {} from seq {}: {}",
            f.connection,
            f.first_seq,
            f.outcome.as_ref().err().unwrap()
        );
    }
    println!(
        "throughput:  overall {:.0} trades/s; per-second median {:.0} (min {:.0}, max {:.0}) over {} full seconds",
        acked as f64 / last_ack.as_secs_f64(),
        median(&rates),
        rates.first().copied().unwrap_or(f64::NAN),
        rates.last().copied().unwrap_or(f64::NAN),
        rates.len()
    );
    println!(
        "per second:  {}",
        per_second
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "batch latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} batches of {batch})",
        median(&latencies),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len()
    );
    println!(
        "cpu:         memd {cpu_memd:.1} s, trade-load {cpu_self:.1} s in {:.1} s wall ({} cores); memd rss {:.0} MB",
        elapsed.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        status_mb(&memd_pid, "VmRSS:")
    );

    // --- verification
    let mut ok = true;
    let report = admin
        .call::<method::Performance>(PerformanceParams {
            id,
            from: None,
            to: None,
        })
        .await
        .expect("strategies.performance");
    let check = |ok: &mut bool, pass: bool, what: String| {
        println!("{} {what}", if pass { "PASS" } else { "FAIL" });
        *ok &= pass;
    };
    check(
        &mut ok,
        report.all.total_trades == acked,
        format!(
            "strategies.performance reports {} trades; {acked} were acknowledged",
            report.all.total_trades
        ),
    );
    drop(admin);

    // Kill without warning: nothing the daemon holds in memory may be needed.
    let registry_dir = data_dir.join("strategy_registry");
    let log_path = registry_dir.join(format!("performance/{id}.jsonl"));
    let root = {
        let mut daemon = daemon;
        daemon.child.kill().expect("SIGKILL memd");
        daemon.child.wait().expect("reap memd");
        std::mem::replace(&mut daemon.root, tempfile::tempdir().expect("temp dir"))
    };
    // The trade ids stored: the log's lines, or the database's rows.
    let (stored, unreadable, where_) = match &pg {
        None => {
            let text = std::fs::read_to_string(&log_path).expect("read the trade log");
            let mut ids = Vec::new();
            let mut unreadable = 0usize;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<serde_json::Value>(line) {
                    Ok(v) => match v.get("trade_id").and_then(|t| t.as_str()) {
                        Some(tid) => ids.push(tid.to_string()),
                        None => unreadable += 1,
                    },
                    Err(_) => unreadable += 1,
                }
            }
            (ids, unreadable, log_path.display().to_string())
        }
        Some(pg) => {
            let rows = pg.psql(
                "registry",
                &format!("SELECT trade_id FROM strategy_performance WHERE strategy_id = '{id}'"),
            );
            let ids = rows.lines().map(str::to_string).collect();
            (ids, 0, "the database".to_string())
        }
    };
    let lines = stored.len();
    let in_file: HashSet<&str> = stored.iter().map(String::as_str).collect();
    let repeated = lines - in_file.len();
    let mut missing = 0u64;
    let mut first_missing = None;
    for r in results.iter().filter(|r| r.outcome.is_ok()) {
        for seq in r.first_seq..r.first_seq + r.len as u64 {
            let tid = trade_id(r.connection, seq);
            if !in_file.contains(tid.as_str()) {
                missing += 1;
                first_missing.get_or_insert(tid);
            }
        }
    }
    check(
        &mut ok,
        missing == 0,
        format!(
            "after SIGKILL, every acknowledged trade is in {}: {missing} missing{}",
            where_,
            first_missing.map_or(String::new(), |t| format!(" (first: {t})"))
        ),
    );
    let unacked_attempted: u64 = failed.iter().map(|r| r.len as u64).sum();
    check(
        &mut ok,
        unreadable == 0 && repeated == 0 && lines as u64 <= acked + unacked_attempted,
        format!(
            "{where_} has {lines} trades ({unreadable} unreadable, {repeated} repeated ids) for {acked} acknowledged"
        ),
    );
    drop(root);

    let (daemon, ready_after) = start_memd();
    let client = connect(&daemon).await;
    let load_started = Instant::now();
    let report = client
        .call::<method::Performance>(PerformanceParams {
            id,
            from: None,
            to: None,
        })
        .await
        .expect("strategies.performance after restart");
    check(
        &mut ok,
        report.all.total_trades == acked,
        format!(
            "after a restart (ready in {:.0} ms) strategies.performance reports {} trades (first call, loading the log: {:.0} ms)",
            ready_after.as_secs_f64() * 1e3,
            report.all.total_trades,
            load_started.elapsed().as_secs_f64() * 1e3
        ),
    );
    drop(client);
    drop(daemon);

    if options.keep {
        let kept = work.keep();
        println!("kept:        {}", kept.display());
    }
    if !ok {
        std::process::exit(1);
    }
}
