//! MEM end to end through the real daemon and memctl: a native MEM-enabled strategy
//! replays a real candle file (the shipped ETH/BTC 5-minute candles, see
//! data/market/README.md) into both decision logs and the registry; the learning loop
//! adjusts a strategy, learns a pattern as a strategy of its own and deprecates it by the
//! rules, on a series built so that each rule must fire; memory files edited by hand are
//! applied or refused.

use mem_e2e::deployments::{dry_run, newest_deployment, stop_now};
use mem_e2e::seed::{NATIVE_MACD, NATIVE_RSI, sid};
use mem_e2e::{Daemon, describe, wait_for};
use mem_protocol::deploy::*;
use mem_protocol::methods::method;
use mem_protocol::strategy::StrategyId;
use mem_protocol::{ErrorCode, Event, Topic};
use serde_json::{Value, json};
use std::time::Duration;

fn replay(id: &str, speed: Option<f64>) -> DeployParams {
    DeployParams {
        native: Some(NativeOptions {
            pair: Some("ETH/BTC".into()),
            file: Some("ETH_BTC-5m.feather".into()),
            mode: Some(FeedMode::Replay),
            speed,
            ..Default::default()
        }),
        ..dry_run(sid(id))
    }
}

/// Waits (up to 60 s) until the strategy's newest deployment has stopped by itself.
async fn ended(client: &mem_protocol::Client, id: &str, what: &str) -> DeployedStrategy {
    let mut done = None;
    wait_for(what, Duration::from_secs(60), async || {
        done = newest_deployment(client, sid(id))
            .await
            .filter(|d| d.status == DeploymentStatus::Stopped);
        done.is_some()
    })
    .await;
    done.unwrap()
}

/// Stops the strategy's deployment now; answers it stopped.
async fn stop(client: &mem_protocol::Client, id: &str) -> DeployedStrategy {
    client
        .call::<method::Stop>(stop_now(sid(id)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_mem_strategy_replays_a_real_file_into_both_logs_and_the_registry() {
    let daemon = Daemon::start();
    let client = daemon.client().await;

    // Live is refused: a native strategy has no exchange behind it.
    let mut live = replay(NATIVE_RSI, None);
    live.dry_run = false;
    let err = client.call::<method::Deploy>(live).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied), "{err}");
    // A file that is not there is named.
    let mut missing = replay(NATIVE_RSI, None);
    missing.native.as_mut().unwrap().file = Some("NOPE_BTC-5m.feather".into());
    let err = client.call::<method::Deploy>(missing).await.unwrap_err();
    assert!(err.to_string().contains("NOPE_BTC-5m.feather"), "{err}");

    let out = daemon.memctl(&[
        "deploy",
        NATIVE_RSI,
        "--replay",
        "ETH_BTC-5m.feather",
        "--pair",
        "ETH/BTC",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dry-run") && text.contains("ETH_BTC-5m.feather"),
        "{text}"
    );

    let d = ended(&client, NATIVE_RSI, "the replay to finish").await;
    assert_eq!(d.deployment_type, DeploymentType::Native);
    assert!(
        d.dry_run && d.process_id.is_none() && d.last_error.is_none(),
        "{d:?}"
    );
    assert_eq!(d.stats.bot_state.as_deref(), Some("finished"), "{d:?}");
    assert_eq!(
        d.stats.open_trades, 0,
        "the last position closes at the end"
    );
    let trades = d.stats.closed_trades as usize;
    assert!(
        trades >= 10,
        "a 20-day 5-minute file gives RSI entries: {d:?}"
    );

    // The registry has every trade, each from a MEM decision.
    let list = client
        .call_value(
            "strategies.trades.list",
            json!({"id": NATIVE_RSI, "limit": 10_000}),
        )
        .await
        .unwrap();
    assert_eq!(list["total"], trades, "{list}");
    let registry_trades = list["trades"].as_array().unwrap();
    assert!(
        registry_trades
            .iter()
            .all(|t| t["memEnhanced"] == true && t["symbol"] == "ETH/BTC"),
        "{list}"
    );
    let registry_pnl: f64 = registry_trades
        .iter()
        .map(|t| t["pnl"].as_f64().unwrap())
        .sum();
    assert!(
        (registry_pnl - d.stats.profit_closed).abs() < 1e-6,
        "{registry_pnl} vs {}",
        d.stats.profit_closed
    );

    // The same decisions in the structured log, each closed, P&L matching the registry.
    let decisions = client
        .call_value(
            "mem.decisions",
            json!({"strategy": "native_rsi", "limit": 10_000}),
        )
        .await
        .unwrap();
    let decisions = decisions["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), trades);
    assert!(decisions.iter().all(|x| x["outcome"].is_object()));
    // The market state at entry, once the indicators are warm (50 candles).
    let signed: Vec<&str> = decisions
        .iter()
        .filter_map(|x| x["signature"].as_str())
        .collect();
    assert!(signed.len() + 2 >= trades, "{signed:?}");
    assert!(
        signed.iter().all(|s| s.starts_with("BUY|trend=")),
        "{signed:?}"
    );
    let memory_pnl: f64 = decisions
        .iter()
        .map(|x| x["outcome"]["pnl"].as_f64().unwrap())
        .sum();
    assert!((memory_pnl - registry_pnl).abs() < 1e-6);
    let dir = daemon.data_dir.join("mem_knowledge");
    let jsonl = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap();
    assert_eq!(
        jsonl.lines().count(),
        2 * trades,
        "a decision and an outcome line each"
    );
    // And in the human log, in the seed's format, at the candles' own times (2018).
    let log = std::fs::read_to_string(dir.join("core_memory_updates.txt")).unwrap();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("] Strategy: native_rsi - Decision: BUY ETH/BTC @ "))
            .count(),
        trades,
        "{log}"
    );
    assert_eq!(log.matches(" CLOSED - Exit: ").count(), trades);
    assert!(log.starts_with("[2018-"), "{}", &log[..80]);

    // The deployment's log says what happened.
    let out = daemon.memctl(&["logs", NATIVE_RSI]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("replay finished: 5760 candles"),
        "{}",
        describe(&out)
    );

    // A paced replay stops on request; its open position (if any) is closed and recorded.
    let started = client
        .call::<method::Deploy>(replay(NATIVE_RSI, Some(400.0)))
        .await
        .unwrap();
    assert_eq!(started.status, DeploymentStatus::Running);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped = stop(&client, NATIVE_RSI).await;
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    assert_eq!(stopped.stats.open_trades, 0, "{stopped:?}");
    assert_eq!(stopped.stats.bot_state.as_deref(), Some("stopped"));
    let list = client
        .call_value(
            "strategies.trades.list",
            json!({"id": NATIVE_RSI, "limit": 1}),
        )
        .await
        .unwrap();
    assert_eq!(
        list["total"].as_u64().unwrap(),
        trades as u64 + stopped.stats.closed_trades
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restart_resumes_a_native_replay_where_it_was() {
    let mut daemon = Daemon::start();
    let client = daemon.client().await;
    // 5,760 candles at 1,000 a second: about 6 s.
    client
        .call::<method::Deploy>(replay(NATIVE_RSI, Some(1000.0)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(client);
    daemon.restart_after(nix::sys::signal::Signal::SIGTERM);
    let client = daemon.client().await;
    let d = ended(&client, NATIVE_RSI, "the resumed replay to finish").await;
    assert_eq!(d.stats.bot_state.as_deref(), Some("finished"), "{d:?}");
    let log = String::from_utf8_lossy(&daemon.memctl(&["logs", NATIVE_RSI]).stdout).to_string();
    assert!(log.contains("suspended: the daemon is stopping"), "{log}");
    assert!(log.contains("resuming rsi"), "{log}");
    // Nothing twice, nothing lost: one decision per trade, one trade per decision.
    let trades = client
        .call_value(
            "strategies.trades.list",
            json!({"id": NATIVE_RSI, "limit": 10_000}),
        )
        .await
        .unwrap();
    let decisions = client
        .call_value(
            "mem.decisions",
            json!({"strategy": "native_rsi", "limit": 10_000}),
        )
        .await
        .unwrap();
    let decisions = decisions["decisions"].as_array().unwrap();
    assert_eq!(trades["total"].as_u64().unwrap(), d.stats.closed_trades);
    assert_eq!(
        decisions.len() as u64,
        d.stats.closed_trades,
        "{decisions:?}"
    );
    assert!(decisions.iter().all(|x| x["outcome"].is_object()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_deployments_uptime_does_not_count_the_time_the_daemon_was_down() {
    let mut daemon = Daemon::start();
    let client = daemon.client().await;
    // Following the shipped file: it warms up on the history, then waits for candles.
    let mut params = replay(NATIVE_MACD, None);
    params.native.as_mut().unwrap().mode = Some(FeedMode::Follow);
    let deployed = client.call::<method::Deploy>(params).await.unwrap();
    let mut first = None;
    wait_for("it runs", Duration::from_secs(20), async || {
        first = newest_deployment(&client, sid(NATIVE_MACD))
            .await
            .filter(|d| d.status == DeploymentStatus::Running)
            .and_then(|d| d.running_since);
        first.is_some()
    })
    .await;
    assert!(first.unwrap() >= deployed.started_at);
    drop(client);

    // memd is down for 4 s; the runner resumes when it is back.
    daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    let down_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    daemon.child = Daemon::spawn_raw(daemon.root.path(), &daemon.socket, &daemon.data_dir, |_| {});
    daemon.wait_ready();
    let client = daemon.client().await;
    let mut resumed = None;
    wait_for("it runs again", Duration::from_secs(20), async || {
        resumed = newest_deployment(&client, sid(NATIVE_MACD))
            .await
            .filter(|d| d.status == DeploymentStatus::Running);
        resumed.is_some()
    })
    .await;
    let resumed = resumed.unwrap();
    assert_eq!(resumed.deployment_id, deployed.deployment_id);
    assert_eq!(
        resumed.started_at, deployed.started_at,
        "still the same deployment"
    );
    let since = resumed.running_since.expect("runningSince");
    assert!(
        since >= down_at + chrono::Duration::seconds(4),
        "running since {since}, memd went down at {down_at}"
    );

    // memctl's UP column counts from there: seconds, fewer than memd was down.
    let out = daemon.memctl(&["deployed"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", describe(&out));
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("MACD "))
        .unwrap_or_else(|| panic!("no MACD row:\n{text}"))
        .split_whitespace()
        .collect();
    // MACD running dry-run PID PORT UP ...
    let up = row[5];
    let secs: u64 = up
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("UP {up:?} is not a few seconds:\n{text}"));
    assert!(secs < 4, "UP {up} counts the time memd was down:\n{text}");

    // `memctl stop` says it once.
    let out = daemon.memctl(&["stop", NATIVE_MACD]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("stopped MACD ({NATIVE_MACD})\n")
    );
    let stopped = newest_deployment(&client, sid(NATIVE_MACD)).await.unwrap();
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    assert_eq!(
        stopped.running_since, None,
        "a stopped deployment has no uptime"
    );
}

/// `date,open,high,low,close,volume` rows `from..to` of a wave of about 42 candles.
fn wave_rows(from: usize, to: usize) -> String {
    let mut text = String::new();
    for i in from..to {
        let x = i as f64;
        let close = 100.0 * (1.0 + 0.04 * (x * 0.15).sin() + 0.01 * (x * 0.9).sin());
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            1_600_000_000_000i64 + i as i64 * 300_000,
            close * 0.999,
            close * 1.003,
            close * 0.996,
            close,
            200_000.0 + (i % 7) as f64
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_csv_is_traded_as_candles_are_appended() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    // A feed file lies in the market data directory (paths from clients are confined).
    let file = daemon.data_dir.join("market/feed-5m.csv");
    std::fs::write(
        &file,
        format!("date,open,high,low,close,volume\n{}", wave_rows(0, 100)),
    )
    .unwrap();
    let mut params = replay(NATIVE_RSI, None);
    let native = params.native.as_mut().unwrap();
    native.file = Some(file.display().to_string());
    native.mode = Some(FeedMode::Follow);
    native.pair = Some("WAVE/USDT".into());
    let d = client.call::<method::Deploy>(params).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Running);
    // The history only warms up: nothing is traded on it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let decisions = client
        .call_value("mem.decisions", json!({"strategy": "native_rsi"}))
        .await
        .unwrap();
    assert_eq!(decisions["decisions"], json!([]), "{decisions}");
    let d = newest_deployment(&client, sid(NATIVE_RSI)).await.unwrap();
    assert_eq!(d.stats.bot_state.as_deref(), Some("following"), "{d:?}");

    // Appended candles are traded: entries logged, exits in the registry.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, wave_rows(100, 400).as_bytes()).unwrap();
    drop(f);
    let mut last = None;
    wait_for(
        "trades on the appended candles",
        Duration::from_secs(20),
        async || {
            last = newest_deployment(&client, sid(NATIVE_RSI)).await;
            last.as_ref().is_some_and(|d| d.stats.closed_trades >= 2)
        },
    )
    .await;
    let decisions = client
        .call_value(
            "mem.decisions",
            json!({"strategy": "native_rsi", "limit": 1000}),
        )
        .await
        .unwrap();
    let decisions = decisions["decisions"].as_array().unwrap();
    assert!(decisions.len() >= 2, "{decisions:?}");
    assert!(decisions.iter().all(|x| x["symbol"] == "WAVE/USDT"));
    wait_for(
        "the trades in the registry",
        Duration::from_secs(10),
        async || {
            let list = client
                .call_value(
                    "strategies.trades.list",
                    json!({"id": NATIVE_RSI, "limit": 1}),
                )
                .await
                .unwrap();
            list["total"].as_u64().unwrap() >= 2
        },
    )
    .await;
    let stopped = stop(&client, NATIVE_RSI).await;
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    assert_eq!(stopped.stats.open_trades, 0);
}

/// One decision of `strategy` in the market state `signature`, closed as a win or a loss.
async fn trade(
    client: &mem_protocol::Client,
    strategy: &str,
    signature: &str,
    win: bool,
) -> (Value, Value) {
    let d = client
        .call_value(
            "mem.decide",
            json!({
                "signal": {"strategy": strategy, "symbol": "BTC/USDT", "action": "BUY", "confidence": 0.8},
                "volatilityPct": 1.0, "mlConfidence": 0.6, "mlDirection": "bullish",
                "signature": signature, "price": 100.0
            }),
        )
        .await
        .unwrap();
    let o = client
        .call_value(
            "mem.outcome",
            json!({"decisionId": d["id"], "exitPrice": if win { 102.0 } else { 98.5 },
                   "pnl": if win { 2.0 } else { -1.5 }, "pnlPct": if win { 0.02 } else { -0.015 }}),
        )
        .await
        .unwrap();
    (d, o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_learning_loop_adjusts_learns_and_deprecates_by_its_rules() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Memory]).await.unwrap();
    let good = "BUY|trend=bullish|volatility=medium|rsi=neutral";
    let other = "BUY|trend=ranging|volatility=low|rsi=oversold";

    // Nine closed decisions: 4 of 4 on `good`, 5 on `other` (2 won). No discovery yet
    // (every 10), nothing learned.
    for i in 0..4 {
        trade(&client, "native_macd", good, true).await;
        let _ = i;
    }
    for i in 0..5 {
        trade(&client, "native_macd", other, i < 2).await;
    }
    let patterns = client.call_value("mem.patterns", json!({})).await.unwrap();
    assert_eq!(patterns["learned"], json!([]), "{patterns}");
    // The 10th: `good` seen 5 times, 5 won: 100% >= 70% and 5 >= 5 -> learned.
    trade(&client, "native_macd", good, true).await;
    let patterns = client
        .call_value("mem.patterns", json!({"strategy": "native_macd"}))
        .await
        .unwrap();
    let learned = &patterns["learned"][0];
    assert_eq!(learned["signature"], good, "{patterns}");
    assert_eq!(learned["parent"], "native_macd");
    assert_eq!(learned["parent_id"], NATIVE_MACD);
    assert_eq!(learned["evidence"]["occurrences"], 5);
    assert_eq!(learned["status"], "active");
    assert_eq!(
        patterns["learned"].as_array().unwrap().len(),
        1,
        "`other` (40%) is not"
    );
    let name = learned["name"].as_str().unwrap().to_string();
    let learned_id: StrategyId = learned["strategy_id"].as_str().unwrap().parse().unwrap();
    // In the registry: origin learned, derived from its parent, experimental.
    let detail = client
        .call_value("strategies.get", json!({"id": learned_id}))
        .await
        .unwrap();
    let text = detail.to_string();
    assert!(text.contains("\"origin\":\"learned\""), "{text}");
    assert!(text.contains(good), "{text}");
    let related = client
        .call_value(
            "strategies.related",
            json!({"id": learned_id, "types": ["derived_from"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        related["related"][0]["strategy"]["id"], NATIVE_MACD,
        "{related}"
    );
    let log_path = daemon
        .data_dir
        .join("mem_knowledge/core_memory_updates.txt");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains(&format!("LEARNED: new learned strategy {name}")),
        "{log}"
    );

    // From now on a decision in the `good` state follows the learned pattern, and loses.
    // After 10 more losses the monitor sees 7 wins in the last 20 (35% < 45%) and cuts
    // risk, in parameter_updates.json and in the registry's parameter history.
    let mut adjusted = None;
    for i in 0..10 {
        let (d, o) = trade(&client, "native_macd", good, false).await;
        assert_eq!(d["learned_pattern"], name.as_str(), "{d}");
        assert!(d["reasoning"].as_str().unwrap().contains(&name), "{d}");
        if i < 9 {
            assert_eq!(o["adjustments"], json!([]), "trade {i}: {o}");
        } else {
            adjusted = Some(o);
        }
    }
    let adjusted = adjusted.unwrap();
    assert_eq!(
        adjusted["adjustments"][0]["parameter"],
        "position_size_multiplier"
    );
    assert_eq!(adjusted["adjustments"][0]["to"], 0.7);
    assert_eq!(
        adjusted["adjustments"][1]["to"], 0.7,
        "confidence threshold 0.70"
    );
    let history = client
        .call_value("strategies.parameters.history", json!({"id": NATIVE_MACD}))
        .await
        .unwrap();
    let changes = history["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["parameter_name"] == "mem.position_size_multiplier"
                && c["new_value"] == 0.7
                && c["changed_by"] == "mem_learning"
                && c["change_reason"].as_str().unwrap().contains("35%")),
        "{history}"
    );

    // The learned strategy: 91 more losses make 101 trades with none won: over 100 and
    // under 50% -> deprecated, in both places, with the reason; not matched any more.
    for _ in 0..90 {
        trade(&client, "native_macd", good, false).await;
    }
    let patterns = client.call_value("mem.patterns", json!({})).await.unwrap();
    assert_eq!(patterns["learned"][0]["trades"], 100);
    assert_eq!(
        patterns["learned"][0]["status"], "active",
        "100 is not over 100"
    );
    let (d, _) = trade(&client, "native_macd", good, false).await;
    assert_eq!(d["learned_pattern"], name.as_str());
    let patterns = client.call_value("mem.patterns", json!({})).await.unwrap();
    let learned = &patterns["learned"][0];
    assert_eq!(learned["trades"], 101);
    assert_eq!(learned["status"], "deprecated", "{patterns}");
    assert!(
        learned["deprecation_reason"]
            .as_str()
            .unwrap()
            .contains("0 of 101"),
        "{patterns}"
    );
    let summary = client
        .call_value("strategies.get", json!({"id": learned_id}))
        .await
        .unwrap();
    assert!(
        summary.to_string().contains("\"status\":\"deprecated\""),
        "{summary}"
    );
    let trades = client
        .call_value(
            "strategies.trades.list",
            json!({"id": learned_id, "limit": 1}),
        )
        .await
        .unwrap();
    assert_eq!(
        trades["total"], 101,
        "the learned strategy's own performance log"
    );
    let (d, _) = trade(&client, "native_macd", good, false).await;
    assert!(
        d["learned_pattern"].is_null(),
        "a deprecated pattern is not used: {d}"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains(&format!("LEARNED: deprecated {name}")),
        "{log}"
    );

    // Every write of the learned file was announced.
    let mut saw_learned = false;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1500), events.next()).await {
        if let Event::MemoryChanged(c) = m.event {
            saw_learned |= c.file == "learned_strategies.json" && c.applied;
        }
    }
    assert!(saw_learned, "memory.changed for learned_strategies.json");

    // memctl shows them; under the subcommand's old name too, with a warning.
    let out = daemon.memctl(&["memory", "learned"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&name) && text.contains("deprecated"),
        "{text}"
    );
    let old = daemon.memctl(&["memory", "patterns"]);
    assert!(old.status.success(), "{}", describe(&old));
    assert_eq!(old.stdout, out.stdout, "{}", describe(&old));
    assert!(
        String::from_utf8_lossy(&old.stderr).contains("is now `memctl memory learned`"),
        "{}",
        describe(&old)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_of_learned_strategies_are_checked_then_applied_or_refused() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Memory]).await.unwrap();
    let file = daemon
        .data_dir
        .join("mem_knowledge/learned_strategies.json");
    let mut next_change = async || loop {
        let m = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("a memory.changed event within 10 s")
            .expect("events");
        if let Event::MemoryChanged(c) = m.event {
            if c.file == "learned_strategies.json" {
                return c;
            }
        }
    };

    // A well-formed edit by hand (a pattern a person wants MEM to use) is applied.
    let entry = json!({
        "name": "hand_made", "strategy_id": null, "parent": "momentum", "parent_id": null,
        "signature": "BUY|trend=bullish|volatility=low|rsi=neutral",
        "discovered_at": "2026-11-22T00:00:00Z",
        "evidence": {"occurrences": 12, "wins": 10, "win_rate": 0.8333, "window": 100},
        "trades": 0, "wins": 0, "status": "active",
        "deprecated_at": null, "deprecation_reason": null
    });
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&json!({"schema_version": 1, "learned": [entry]})).unwrap(),
    )
    .unwrap();
    let c = next_change().await;
    assert!(c.applied, "{c:?}");
    let e = client
        .call_value(
            "mem.enhance",
            json!({"signal": {"strategy": "momentum", "symbol": "BTC/USDT", "action": "BUY", "confidence": 0.65},
                   "volatilityPct": 1.0, "signature": "BUY|trend=bullish|volatility=low|rsi=neutral"}),
        )
        .await
        .unwrap();
    assert_eq!(e["learned_strategy"], "hand_made", "{e}");
    assert_eq!(e["memory_confidence"], 0.8333);

    // A malformed edit: refused with the entry and field named; the previous stays in force.
    let mut broken = json!({"schema_version": 1, "learned": [entry]});
    broken["learned"][0]["wins"] = json!(3);
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let c = next_change().await;
    assert!(!c.applied, "{c:?}");
    assert!(
        c.error.as_deref().unwrap().contains("learned[0].wins"),
        "{c:?}"
    );
    let patterns = client.call_value("mem.patterns", json!({})).await.unwrap();
    assert!(
        patterns["fileError"]
            .as_str()
            .unwrap()
            .contains("learned[0].wins"),
        "{patterns}"
    );
    assert_eq!(patterns["learned"][0]["name"], "hand_made");
    let out = daemon.memctl(&["memory", "learned"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("learned[0].wins")
            || String::from_utf8_lossy(&out.stdout).contains("learned[0].wins"),
        "{}",
        describe(&out)
    );
}

/// `date,open,high,low,close,volume` rows `from..to` of closes that go down 0.3, up 0.2,
/// ...: RSI(14) settles near 40, between the seed's 30 and 70.
fn drift_rows(from: usize, to: usize) -> String {
    let mut close = 100.0;
    let mut text = String::new();
    for i in 0..to {
        close += if i % 2 == 0 { -0.3 } else { 0.2 };
        if i >= from {
            text.push_str(&format!(
                "{},{close},{},{},{close},200000\n",
                1_600_000_000_000i64 + i as i64 * 300_000,
                close * 1.001,
                close * 0.999,
            ));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_changed_while_following_is_traded_from_the_next_candle() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let file = daemon.data_dir.join("market/drift-5m.csv");
    std::fs::write(
        &file,
        format!("date,open,high,low,close,volume\n{}", drift_rows(0, 100)),
    )
    .unwrap();
    let append = |from: usize, to: usize| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        std::io::Write::write_all(&mut f, drift_rows(from, to).as_bytes()).unwrap();
    };
    let mut params = replay(NATIVE_RSI, None);
    let native = params.native.as_mut().unwrap();
    native.file = Some(file.display().to_string());
    native.mode = Some(FeedMode::Follow);
    native.pair = Some("DRIFT/USDT".into());
    let d = client.call::<method::Deploy>(params).await.unwrap();
    let log = daemon
        .data_dir
        .join(format!("deployments/{}/native.log", d.deployment_id));
    let decisions = async || {
        client
            .call_value("mem.decisions", json!({"strategy": "native_rsi"}))
            .await
            .unwrap()["decisions"]
            .as_array()
            .unwrap()
            .len()
    };

    // With the seed's oversold 30, RSI near 40 never buys: appended candles are traded
    // (the deployment reports each batch) without a decision.
    let mut polled = None;
    wait_for(
        "the history warmed up",
        Duration::from_secs(10),
        async || {
            let d = newest_deployment(&client, sid(NATIVE_RSI)).await.unwrap();
            polled = d.stats.polled_at;
            d.stats.bot_state.as_deref() == Some("following") && polled.is_some()
        },
    )
    .await;
    append(100, 130);
    wait_for(
        "the appended candles traded",
        Duration::from_secs(10),
        async || {
            newest_deployment(&client, sid(NATIVE_RSI))
                .await
                .unwrap()
                .stats
                .polled_at
                != polled
        },
    )
    .await;
    assert_eq!(decisions().await, 0);

    // Oversold 45 through the registry: the answer says when it applies...
    let update = client
        .call_value(
            "strategies.parameters.update",
            json!({"id": NATIVE_RSI, "name": "oversold", "value": 45, "reason": "buy earlier in a drift"}),
        )
        .await
        .unwrap();
    assert_eq!(
        update["applied"][0],
        json!(format!(
            "native deployment {} uses it from its next candle",
            d.deployment_id
        )),
        "{update}"
    );
    // ...and the next candle buys: RSI near 40 is below 45.
    append(130, 131);
    wait_for(
        "an entry with the new oversold",
        Duration::from_secs(10),
        async || decisions().await == 1,
    )
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("parameters changed in the registry: oversold 30 -> 45; the rsi strategy trades with them from this candle (warmed on 130 candles)"),
        "{text}"
    );
    let d = newest_deployment(&client, sid(NATIVE_RSI)).await.unwrap();
    assert_eq!(d.stats.open_trades, 1, "{d:?}");
    // The parameters in force are saved with the deployment (a restart resumes with them).
    // memd writes state.json just after the in-memory state the calls above read (on a
    // busy machine, a moment after): the file is read until it has them, for 10 s at most.
    let saved_oversold = || {
        let state: Value = serde_json::from_slice(
            &std::fs::read(daemon.data_dir.join("deployments/state.json")).unwrap(),
        )
        .unwrap();
        let saved = state
            .as_array()
            .or_else(|| state["deployments"].as_array())
            .and_then(|all| {
                all.iter()
                    .find(|s| s["public"]["deploymentId"] == json!(d.deployment_id))
            })
            .cloned()
            .unwrap_or(Value::Null);
        (
            saved["native"]["parameters"]["oversold"]["value"].clone(),
            state,
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut oversold, mut state) = saved_oversold();
    while oversold != json!(45) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        (oversold, state) = saved_oversold();
    }
    assert_eq!(oversold, json!(45), "{state}");
    stop(&client, NATIVE_RSI).await;
}

/// A native deployment follows the served model: promoted while a replay runs, the new
/// version is what its next decisions are made with (before, a running native strategy
/// kept the model it started with until it was redeployed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_promoted_during_a_replay_makes_its_next_decisions() {
    use mem_protocol::mem::DecisionsParams;
    use mem_protocol::ml::PromoteParams;
    let daemon = Daemon::start();
    let client = daemon.client().await;
    // Two model versions; the first serves when the replay starts.
    let versions = mem_e2e::model::two_versions(&client).await;
    let (v1, v2) = (versions[0].clone(), versions[1].clone());
    let promote = async |version: &str| {
        client
            .call::<method::MlPromote>(PromoteParams {
                version: version.to_string(),
                reason: "the promotion-during-a-replay test".into(),
            })
            .await
            .unwrap()
    };
    promote(&v1).await;

    // A paced replay (about 15 s for the file's 5,760 candles), MEM on: every entry is a
    // decision enhanced with the served model's prediction.
    client
        .call::<method::Deploy>(replay(NATIVE_RSI, Some(400.0)))
        .await
        .unwrap();
    let versions = async || -> Vec<Option<String>> {
        let list = client
            .call::<method::MemDecisions>(DecisionsParams {
                strategy: Some("native_rsi".into()),
                symbol: None,
                limit: Some(10_000),
            })
            .await
            .unwrap();
        // Oldest first.
        list.decisions
            .into_iter()
            .rev()
            .map(|d| d.model_version)
            .collect()
    };
    wait_for(
        "a decision made with the first model",
        Duration::from_secs(30),
        async || versions().await.contains(&Some(v1.clone())),
    )
    .await;
    promote(&v2).await;
    let d = ended(&client, NATIVE_RSI, "the replay to finish").await;
    assert!(d.last_error.is_none(), "{d:?}");
    let seen = versions().await;
    let first_v2 = seen
        .iter()
        .position(|v| v.as_deref() == Some(v2.as_str()))
        .unwrap_or_else(|| panic!("no decision was made with {v2} after its promotion: {seen:?}"));
    // Before: the first model (or none, while the features still warm up).
    assert!(
        seen[..first_v2]
            .iter()
            .all(|v| v.is_none() || v.as_deref() == Some(v1.as_str())),
        "before the promotion, the first model: {seen:?}"
    );
    assert!(
        seen[first_v2..]
            .iter()
            .all(|v| v.as_deref() == Some(v2.as_str())),
        "from the promotion on, the new one only: {seen:?}"
    );
}

/// Issue 22: `market.feed` says which candle file a native deploy would read, as the
/// deploy resolves it, with its newest candle (the TUI's dialog warns from it); a deploy
/// with those options reads that file.
#[tokio::test]
async fn market_feed_names_the_file_a_native_deploy_reads_and_its_newest_candle() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let asked = |id: &str, pair: Option<&str>| FeedParams {
        id: Some(sid(id)),
        pair: pair.map(str::to_string),
        ..Default::default()
    };
    let feed = client
        .call::<method::MarketFeed>(asked(NATIVE_RSI, Some("ETH/BTC")))
        .await
        .unwrap();
    assert_eq!(feed.pair, "ETH/BTC");
    assert_eq!(feed.timeframe, "5m");
    assert_eq!(feed.file, "ETH_BTC-5m.feather");
    assert!(
        feed.path.ends_with("/market/ETH_BTC-5m.feather"),
        "{feed:?}"
    );
    assert_eq!(feed.mode, FeedMode::Follow, "the default without a section");
    assert!(feed.candles > 1000, "{feed:?}");
    let newest = feed.newest_candle.expect("a newest candle");
    assert_eq!(
        newest.format("%Y").to_string(),
        "2018",
        "the shipped candles"
    );
    assert!(feed.first_candle.unwrap() < newest);
    assert_eq!(feed.pairs.len(), 10, "{:?}", feed.pairs);
    assert!(feed.pairs.contains(&"ETH/BTC".to_string()));
    // Without a pair: the reference pair's file, a pair of the list.
    let default = client
        .call::<method::MarketFeed>(asked(NATIVE_RSI, None))
        .await
        .unwrap();
    assert!(default.pairs.contains(&default.pair), "{default:?}");

    // A deploy with the options the dialog sends reads that very file.
    let d = client
        .call::<method::Deploy>(DeployParams {
            native: Some(NativeOptions {
                pair: Some(feed.pair.clone()),
                timeframe: Some(feed.timeframe.clone()),
                file: Some(feed.file.clone()),
                mode: Some(FeedMode::Replay),
                ..Default::default()
            }),
            ..dry_run(sid(NATIVE_RSI))
        })
        .await
        .unwrap();
    assert_eq!(d.config_file.as_deref(), Some(feed.path.as_str()));

    // A Freqtrade strategy reads no feed; a pair without candles is named.
    let err = client
        .call::<method::MarketFeed>(asked(mem_e2e::seed::MACD_HUNTER, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidParams), "{err}");
    assert!(err.to_string().contains("not a native strategy"), "{err}");
    let err = client
        .call::<method::MarketFeed>(asked(NATIVE_RSI, Some("DOGE/USDT")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unavailable), "{err}");
    assert!(err.to_string().contains("DOGE/USDT"), "{err}");
    let err = client
        .call::<method::MarketFeed>(FeedParams {
            file: Some("../../etc/passwd".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidParams), "{err}");
    assert!(err.to_string().contains("field `file`"), "{err}");
}
