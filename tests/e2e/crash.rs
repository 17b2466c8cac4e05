//! Crash safety: SIGKILL the daemon at random moments while it writes metadata, registers
//! strategies and records trades; after every kill, every file must parse and no
//! acknowledged write may be missing.

use chrono::{Duration as ChronoDuration, Utc};
use mem_e2e::Daemon;
use mem_protocol::methods::{GetStrategyParams, method};
use mem_protocol::registry::*;
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Kills per run: enough to hit every phase of a write many times, bounded for CI.
const KILLS: usize = 30;
const STRATEGY: &str = "4ce3a79b-c22b-4b42-9d87-3a58052a9eec";

/// What the daemon acknowledged before it was killed.
#[derive(Default)]
struct Acked {
    trades: HashSet<String>,
    registered: Vec<StrategyId>,
    /// The last display name acknowledged, and one sent but not answered.
    display_name: Option<String>,
    display_name_in_flight: Option<String>,
}

fn trade(id: String) -> TradeRecord {
    let exit = Utc::now();
    TradeRecord {
        trade_id: id,
        symbol: "ETH/USDT".into(),
        timeframe: None,
        action: TradeAction::Sell,
        confidence: None,
        entry_price: 3000.0,
        exit_price: 3010.0,
        entry_time: exit - ChronoDuration::minutes(5),
        exit_time: exit,
        pnl: 1.0,
        pnl_pct: 0.0033,
        is_win: None,
        mem_enhanced: false,
        mem_confidence_boost: None,
        learned_pattern: None,
        market_regime: None,
        volatility: None,
        broker: None,
        slippage: None,
        commission: None,
    }
}

/// Every complete line of a JSON-lines file parses; a torn last line is allowed.
fn check_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read(path).unwrap_or_default();
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    text[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "{}: a complete line does not parse ({e}): {}",
                    path.display(),
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

fn check_files(data: &Path, acked: &Acked) {
    let registry = data.join("strategy_registry");
    for entry in std::fs::read_dir(registry.join("metadata")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // debris of an interrupted write: the daemon removes it at start
        }
        let bytes = std::fs::read(&path).unwrap();
        let doc: StrategyDocument = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not a whole document ({e})", path.display()));
        assert_eq!(format!("{}.json", doc.strategy.id), name);
    }
    for id in &acked.registered {
        assert!(
            registry.join(format!("metadata/{id}.json")).exists(),
            "acknowledged registration {id} lost"
        );
    }
    let on_disk: HashSet<String> =
        check_lines(&registry.join(format!("performance/{STRATEGY}.jsonl")))
            .into_iter()
            .map(|v| v["trade_id"].as_str().unwrap().to_string())
            .collect();
    let lost: Vec<_> = acked.trades.difference(&on_disk).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged trades lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(3).collect::<Vec<_>>()
    );
    check_lines(&registry.join("audit.jsonl"));
    let doc: Value = serde_json::from_slice(
        &std::fs::read(registry.join(format!("metadata/{STRATEGY}.json"))).unwrap(),
    )
    .unwrap();
    let name = doc["strategy"]["display_name"]
        .as_str()
        .unwrap()
        .to_string();
    if let Some(acked_name) = &acked.display_name {
        let allowed = [
            Some(acked_name.clone()),
            acked.display_name_in_flight.clone(),
        ];
        assert!(
            allowed.contains(&Some(name.clone())),
            "display name {name:?}: the last acknowledged was {acked_name:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("run/memd.sock");
    let data = root.path().join("data");
    let acked = Arc::new(Mutex::new(Acked::default()));
    let id: StrategyId = STRATEGY.parse().unwrap();
    // A small deterministic generator for the kill delays: 20 to 400 ms.
    let mut seed: u64 = 0x5eed;
    let mut next_delay = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        20 + (seed >> 33) % 380
    };
    for round in 0..KILLS {
        let root_copy = tempfile::tempdir().unwrap(); // the harness wants a root to own; data lives in `root`
        let daemon = Daemon::start_in(root_copy, socket.clone(), data.clone(), |_| {});
        let trades_client = daemon.client().await;
        let meta_client = daemon.client().await;
        let acked_trades = acked.clone();
        let trades_task = tokio::spawn(async move {
            for batch in 0.. {
                let trades: Vec<_> = (0..200)
                    .map(|i| trade(format!("r{round}-b{batch}-t{i}")))
                    .collect();
                let ids: Vec<String> = trades.iter().map(|t| t.trade_id.clone()).collect();
                if trades_client
                    .call::<method::TradesRecord>(RecordTradesParams { id, trades })
                    .await
                    .is_err()
                {
                    return;
                }
                acked_trades.lock().unwrap().trades.extend(ids);
            }
        });
        let acked_meta = acked.clone();
        let meta_task = tokio::spawn(async move {
            for step in 0.. {
                let name = format!("MACD Hunter r{round} s{step}");
                acked_meta.lock().unwrap().display_name_in_flight = Some(name.clone());
                let patch = json!({"display_name": name});
                if meta_client
                    .call::<method::StrategiesUpdate>(UpdateParams {
                        id,
                        patch,
                        reason: None,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                acked_meta.lock().unwrap().display_name = Some(name);
                let doc = json!({"name": format!("crash_r{round}_s{step}"), "category": "momentum", "language": "python"});
                match meta_client
                    .call::<method::StrategiesRegister>(RegisterParams {
                        strategy: doc,
                        status: None,
                    })
                    .await
                {
                    Ok(detail) => acked_meta
                        .lock()
                        .unwrap()
                        .registered
                        .push(detail.summary.id),
                    Err(_) => return,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(next_delay())).await;
        let mut daemon = daemon;
        daemon.stop_with(Signal::SIGKILL);
        let _ = tokio::join!(trades_task, meta_task);
        check_files(&data, &acked.lock().unwrap());
    }
    // A last start: the daemon reads everything back and agrees with the files.
    let daemon = Daemon::start_in(tempfile::tempdir().unwrap(), socket, data.clone(), |_| {});
    let client = daemon.client().await;
    let report = client
        .call::<method::Performance>(PerformanceParams {
            id,
            from: None,
            to: None,
        })
        .await
        .unwrap();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        report.all.total_trades as usize >= acked.trades.len(),
        "{} < {}",
        report.all.total_trades,
        acked.trades.len()
    );
    assert!(
        acked.trades.len() > 1000,
        "the test recorded too little to mean anything: {}",
        acked.trades.len()
    );
    for id in &acked.registered {
        client
            .call::<method::StrategiesGet>(GetStrategyParams { id: *id })
            .await
            .unwrap();
    }
    let status = client
        .call::<method::DaemonStatus>(mem_protocol::methods::NoParams {})
        .await
        .unwrap();
    assert_eq!(status.counts.registry_errors, 0);
    let debris: Vec<String> = std::fs::read_dir(data.join("strategy_registry/metadata"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        debris.is_empty(),
        "temporary files of interrupted writes are cleaned up at start: {debris:?}"
    );
    eprintln!(
        "{KILLS} kills; {} trades and {} registrations acknowledged, none lost",
        acked.trades.len(),
        acked.registered.len()
    );
}
