//! Freqtrade bots consult MEM and teach it (issue 23, items 3 and 4): a bot whose strategy
//! uses the memd mixin asks MEM before it enters (the decision is logged before the trade
//! opens, the stake follows MEM's size, MEM refuses once the performance monitor has
//! raised the strategy's threshold), trades on when memd is gone (and says so once), and
//! its closed trades close their decisions; a bot without the mixin has its closed trades
//! recorded as observed decisions and outcomes. The credential memd renders into a bot's
//! config allows nothing but MEM's calls for that bot's strategy.
//!
//! The real-Freqtrade tests need `MEMD_TEST_FREQTRADE` (see `freqtrade_bots`); the
//! credential's test runs on the fake Freqtrade.

use mem_e2e::deployments::{active_deployment, dry_run_on_port, stop_now};
use mem_e2e::freqtrade::{self, BotApi, TEST_TIMINGS};
use mem_e2e::mock_exchange;
use mem_e2e::seed::{MACD_HUNTER, NATIVE_RSI, sid};
use mem_e2e::{Daemon, free_port, wait_for};
use mem_protocol::deploy::*;
use mem_protocol::mem::{Decision, DecisionsParams};
use mem_protocol::methods::method;
use mem_protocol::{Access, Client, ClientOptions, ErrorCode};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn start_daemon(root: &Path, config: &Path) -> Daemon {
    let keep = tempfile::tempdir().unwrap();
    Daemon::start_in(keep, root.join("run/memd.sock"), root.join("data"), |cmd| {
        cmd.arg("--config").arg(config);
    })
}

/// The `memd` section memd rendered into a deployment's config.
fn memd_section(d: &DeployedStrategy) -> Value {
    let config: Value =
        serde_json::from_slice(&std::fs::read(d.config_file.as_deref().unwrap()).unwrap()).unwrap();
    config["memd"].clone()
}

async fn decisions(client: &Client, strategy: &str) -> Vec<Decision> {
    client
        .call::<method::MemDecisions>(DecisionsParams {
            strategy: Some(strategy.into()),
            symbol: None,
            limit: Some(500),
        })
        .await
        .unwrap()
        .decisions
}

/// A bot's log, as Freqtrade wrote it.
fn bot_log(d: &DeployedStrategy) -> String {
    let dir = Path::new(d.config_file.as_deref().unwrap())
        .parent()
        .unwrap();
    std::fs::read_to_string(dir.join("freqtrade.log")).unwrap_or_default()
}

/// Forces an entry on `pair` until the bot takes it (a bot accepts forced entries once it
/// has processed its first candles); answers the trade.
async fn enter(api: &BotApi, pair: &str) -> Value {
    let mut trade = Value::Null;
    wait_for(
        &format!("the bot to enter {pair}"),
        Duration::from_secs(90),
        async || {
            let entered = api.post("forceenter", json!({"pair": pair})).await;
            if entered["trade_id"].as_i64().is_some() {
                trade = entered;
                return true;
            }
            let open = api.get("status").await;
            if let Some(t) = open
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["pair"] == pair))
            {
                trade = t.clone();
                return true;
            }
            false
        },
    )
    .await;
    trade
}

/// Forces the trade out at market and waits until the bot counts it closed.
async fn exit(api: &BotApi, trade_id: i64) {
    wait_for(
        &format!("trade {trade_id} to close"),
        Duration::from_secs(60),
        async || {
            api.post(
                "forceexit",
                json!({"tradeid": trade_id.to_string(), "ordertype": "market"}),
            )
            .await;
            let trade = api.get(&format!("trade/{trade_id}")).await;
            trade["is_open"] == false
        },
    )
    .await;
}

/// Runs one losing round trip on each pair (forced in, forced straight out: the fees
/// lose) and answers the trades' ids.
async fn lose_once(api: &BotApi, pairs: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for pair in pairs {
        let t = enter(api, pair).await;
        ids.push(t["trade_id"].as_i64().unwrap());
    }
    for id in &ids {
        exit(api, *id).await;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixin_bot_asks_mem_before_it_enters_and_its_trades_teach_mem() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start_filling_at_once().await;
    let root = tempfile::tempdir().unwrap();
    let config = freqtrade::memd_config(root.path(), &freqtrade, &mock, true, TEST_TIMINGS, "");
    let mut daemon = start_daemon(root.path(), &config);
    let client = daemon.client().await;
    let d = client
        .call_with_timeout::<method::Deploy>(
            dry_run_on_port(sid(MACD_HUNTER), free_port()),
            Duration::from_secs(150),
        )
        .await
        .unwrap();
    let section = memd_section(&d);
    assert_eq!(section["strategy"], "freqtrade_macd_hunter", "{section}");
    assert_eq!(section["strategy_id"], MACD_HUNTER);
    assert_eq!(
        Path::new(section["socket"].as_str().unwrap()),
        daemon.socket.as_path()
    );
    assert_eq!(section["base_size"], json!(0.1));
    assert_eq!(section["fail_closed"], json!(false));
    assert!(section["credential"].as_str().unwrap().len() >= 32);
    let api = BotApi::of(&d);

    // An entry: MEM's decision is logged under the strategy before the trade opens, and
    // the stake is the configured 100 USDT scaled by MEM's size over its neutral 0.10.
    let trade = enter(&api, "ETH/USDT").await;
    let trade_id = trade["trade_id"].as_i64().unwrap();
    let logged = decisions(&client, MACD_HUNTER).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    let decision = &logged[0];
    assert_eq!(
        (decision.strategy.as_str(), decision.symbol.as_str()),
        ("freqtrade_macd_hunter", "ETH/USDT")
    );
    assert!(!decision.observed);
    assert_eq!(
        decision.source.as_deref(),
        Some(format!("bot {}", d.deployment_id).as_str())
    );
    assert_eq!(decision.base_confidence, 0.65, "the mixin's default");
    assert!(
        decision.at.timestamp_millis() <= trade["open_timestamp"].as_i64().unwrap(),
        "decided at {}, opened at {}",
        decision.at,
        trade["open_timestamp"]
    );
    let stake = trade["stake_amount"].as_f64().unwrap();
    let expected = 100.0 * decision.position_size / 0.1;
    assert!(
        (stake - expected).abs() <= expected * 0.02 && (stake - 100.0).abs() > 1.0,
        "stake {stake}, MEM's size {} makes {expected}",
        decision.position_size
    );

    // The trade closes: its decision gets the outcome (profit, duration, exit reason), the
    // registry's line says MEM enhanced it, and the monitor counts it.
    exit(&api, trade_id).await;
    // The real Freqtrade fills the exit on its next loop, then memd's next poll syncs it:
    // seconds alone, but a minute was once not enough with the whole suite running on 2 cores.
    wait_for(
        "the decision to be closed by the trade sync",
        Duration::from_secs(150),
        async || decisions(&client, MACD_HUNTER).await[0].outcome.is_some(),
    )
    .await;
    let closed = decisions(&client, MACD_HUNTER).await.remove(0);
    let outcome = closed.outcome.clone().unwrap();
    // As the bot closed it: forced out, unless its own exit signal came first.
    let bot_trade = api.get(&format!("trade/{trade_id}")).await;
    assert_eq!(
        outcome.exit_reason.as_deref(),
        bot_trade["exit_reason"].as_str(),
        "{bot_trade}"
    );
    assert!(outcome.duration_secs.is_some_and(|s| s >= 0));
    assert_eq!(
        outcome.pnl,
        bot_trade["close_profit_abs"].as_f64().unwrap(),
        "{bot_trade}"
    );
    assert_eq!(outcome.win, outcome.pnl > 0.0);
    let line = trade_line(&daemon, &format!("{}:{trade_id}", d.deployment_id));
    assert_eq!(line["was_mem_enhanced"], true, "{line}");
    let boost = line["mem_confidence_boost"].as_f64().unwrap();
    assert!(
        (boost - (closed.confidence - closed.base_confidence)).abs() < 1e-3,
        "{line}"
    );
    assert!(line["learned_pattern_applied"].is_null(), "{line}");
    let metrics = client
        .call::<method::MemMetrics>(Default::default())
        .await
        .unwrap();
    assert!(metrics.outcomes_total >= 1);

    // Nineteen more losses: the performance monitor judges the window of 20, cuts the size
    // and raises the strategy's confidence threshold; MEM then refuses, and no trade opens.
    let mut closed_trades = 1;
    while closed_trades < 20 {
        let pairs: &[&str] = if closed_trades == 19 {
            &["BTC/USDT"]
        } else {
            &["ETH/USDT", "BTC/USDT"]
        };
        closed_trades += lose_once(&api, pairs).await.len();
    }
    wait_for(
        "the monitor to raise the threshold",
        Duration::from_secs(90),
        async || {
            let params = client
                .call::<method::MemParameters>(Default::default())
                .await
                .unwrap();
            params
                .current
                .get("freqtrade_macd_hunter")
                .is_some_and(|p| p["confidence_threshold"] == json!(0.7))
        },
    )
    .await;
    let refused = api.post("forceenter", json!({"pair": "ETH/USDT"})).await;
    assert!(refused["trade_id"].is_null(), "{refused}");
    assert!(
        api.get("status").await.as_array().unwrap().is_empty(),
        "no trade opened"
    );
    assert!(
        bot_log(&d).contains("MEM refused the entry on ETH/USDT"),
        "{}",
        bot_log(&d)
    );
    let before_stop = decisions(&client, MACD_HUNTER).await.len();
    assert_eq!(before_stop, 20, "a refused entry is not a decision");

    // memd stops: the bot trades on its strategy's word (fail-open), and says so once.
    drop(client);
    daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    let mut offline = Vec::new();
    for pair in ["ETH/USDT", "BTC/USDT"] {
        offline.push(enter(&api, pair).await["trade_id"].as_i64().unwrap());
    }
    for id in &offline {
        exit(&api, *id).await;
    }
    let log = bot_log(&d);
    assert_eq!(
        log.matches("memd did not answer").count(),
        1,
        "said once: {log}"
    );
    assert!(
        log.contains("trading as the strategy says (fail-open)"),
        "{log}"
    );

    // memd back: it adopts the bot, whose trades made meanwhile become observed decisions
    // and outcomes.
    let daemon = start_daemon(root.path(), &config);
    let client = daemon.client().await;
    wait_for(
        "the trades made without memd to be observed",
        Duration::from_secs(60),
        async || {
            decisions(&client, MACD_HUNTER)
                .await
                .iter()
                .filter(|d| d.observed && d.outcome.is_some())
                .count()
                == 2
        },
    )
    .await;
    for id in offline {
        let line = trade_line(&daemon, &format!("{}:{id}", d.deployment_id));
        assert_eq!(line["was_mem_enhanced"], false, "{line}");
        assert!(line["mem_confidence_boost"].is_null(), "{line}");
    }
    // The bot asks MEM again, with the same credential (once 5 s have passed since memd
    // last failed it), and MEM still refuses.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let refused = api.post("forceenter", json!({"pair": "BTC/USDT"})).await;
    assert!(refused["trade_id"].is_null(), "{refused}");
    let log = bot_log(&d);
    assert!(log.contains("memd answers again"), "{log}");
    assert!(log.contains("MEM refused the entry on BTC/USDT"), "{log}");
    client
        .call_with_timeout::<method::Stop>(stop_now(sid(MACD_HUNTER)), Duration::from_secs(60))
        .await
        .unwrap();
}

/// A trade's line in the registry's performance log, as the file has it (the seed's names).
fn trade_line(daemon: &Daemon, trade_id: &str) -> Value {
    let path = daemon
        .data_dir
        .join(format!("strategy_registry/performance/{MACD_HUNTER}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["trade_id"] == trade_id)
        .unwrap_or_else(|| {
            panic!(
                "no line for trade {trade_id} in {}:\n{text}",
                path.display()
            )
        })
}

/// A copy of MACD Hunter's Python without the mixin.
const PLAIN_STRATEGY: &str = r#"
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class PlainMACD(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.15}
    stoploss = -0.08
    startup_candle_count = 30

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_without_the_mixin_has_its_closed_trades_observed() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start_filling_at_once().await;
    let root = tempfile::tempdir().unwrap();
    let config = freqtrade::memd_config(root.path(), &freqtrade, &mock, true, TEST_TIMINGS, "");
    let daemon = start_daemon(root.path(), &config);
    std::fs::write(
        daemon.data_dir.join("freqtrade/strategies/PlainMACD.py"),
        PLAIN_STRATEGY,
    )
    .unwrap();
    let client = daemon.client().await;
    let registered = client
        .call_value(
            "strategies.register",
            json!({"strategy": {
                "name": "plain_macd", "display_name": "Plain MACD",
                "description": "MACD Hunter's bot without the memd mixin",
                "classification": {"category": "momentum"},
                "implementation": {"language": "freqtrade", "class_name": "PlainMACD"},
                "deployment": {"type": "freqtrade", "strategy_name": "PlainMACD",
                               "config_file": "freqtrade/configs/macd_hunter.json",
                               "pairs": ["ETH/USDT"], "timeframe": "5m"}
            }, "status": "active"}),
        )
        .await
        .unwrap();
    let id = registered["id"].as_str().unwrap().to_string();
    let d = client
        .call_with_timeout::<method::Deploy>(
            dry_run_on_port(sid(&id), free_port()),
            Duration::from_secs(150),
        )
        .await
        .unwrap();
    let api = BotApi::of(&d);
    let trade = enter(&api, "ETH/USDT").await;
    let trade_id = trade["trade_id"].as_i64().unwrap();
    assert!(decisions(&client, &id).await.is_empty(), "no MEM at entry");
    assert_eq!(
        trade["stake_amount"].as_f64().unwrap().round(),
        100.0,
        "the configured stake"
    );
    exit(&api, trade_id).await;
    wait_for(
        "the closed trade to be observed",
        Duration::from_secs(60),
        async || {
            decisions(&client, &id)
                .await
                .first()
                .is_some_and(|d| d.outcome.is_some())
        },
    )
    .await;
    let observed = decisions(&client, &id).await.remove(0);
    assert!(observed.observed, "{observed:?}");
    assert_eq!(
        observed.source.as_deref(),
        Some(format!("bot {}", d.deployment_id).as_str())
    );
    assert_eq!(observed.strategy, "plain_macd");
    assert_eq!(observed.symbol, "ETH/USDT");
    assert_eq!(observed.price, trade["open_rate"].as_f64().unwrap());
    assert_eq!(
        observed.at.timestamp_millis(),
        trade["open_timestamp"].as_i64().unwrap()
    );
    let outcome = observed.outcome.unwrap();
    assert_eq!(outcome.exit_reason.as_deref(), Some("force_exit"));
    let trades = client
        .call_value("strategies.trades.list", json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(trades["trades"][0]["memEnhanced"], false, "{trades}");
    // A second sync of the same trades records nothing twice (the scheduled one, every
    // minute, may be running: then this one runs after it).
    let mut sync_run = None;
    wait_for(
        "a sync run of our own",
        Duration::from_secs(60),
        async || {
            match client
                .call_value(
                    "jobs.run",
                    json!({"name": "performance_sync", "wait": true}),
                )
                .await
            {
                Ok(run) => sync_run = Some(run),
                Err(e) => assert!(e.to_string().contains("already running"), "{e}"),
            }
            sync_run.is_some()
        },
    )
    .await;
    assert_eq!(decisions(&client, &id).await.len(), 1);
    client
        .call_with_timeout::<method::Stop>(stop_now(sid(&id)), Duration::from_secs(60))
        .await
        .unwrap();
}

async fn bot_client(
    daemon: &Daemon,
    credential: &str,
) -> Result<Client, mem_protocol::ClientError> {
    Client::connect(
        &daemon.socket,
        ClientOptions {
            client_name: "a bot".into(),
            credential: Some(credential.into()),
            ..ClientOptions::default()
        },
    )
    .await
}

#[tokio::test]
async fn a_bot_credential_allows_mem_calls_for_its_own_strategy_and_nothing_else() {
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    let d = client
        .call::<method::Deploy>(dry_run_on_port(sid(MACD_HUNTER), free_port()))
        .await
        .unwrap();
    let credential = memd_section(&d)["credential"].as_str().unwrap().to_string();
    let bot = bot_client(&daemon, &credential).await.unwrap();
    assert_eq!(bot.hello().access, Access::Bot);

    // Its own strategy: enhance, decide (by name or by id), report the outcome.
    let signal = |strategy: &str| json!({"signal": {"strategy": strategy, "symbol": "ETH/USDT", "action": "BUY", "confidence": 0.65}});
    bot.call_value("mem.enhance", signal("freqtrade_macd_hunter"))
        .await
        .unwrap();
    let mut decide = signal(MACD_HUNTER);
    decide["price"] = json!(3000.0);
    let decided = bot.call_value("mem.decide", decide).await.unwrap();
    assert_eq!(
        decided["strategy"], "freqtrade_macd_hunter",
        "kept under the name"
    );
    bot.call_value(
        "mem.outcome",
        json!({"decisionId": decided["id"], "exitPrice": 3010.0, "pnl": 1.0, "pnlPct": 0.0033}),
    )
    .await
    .unwrap();

    // Another strategy's decision, and its outcome: refused.
    let mut other = signal("native_rsi");
    other["price"] = json!(3000.0);
    let err = bot
        .call_value("mem.decide", other.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied), "{err}");
    let theirs = client.call_value("mem.decide", other).await.unwrap();
    let err = bot
        .call_value(
            "mem.outcome",
            json!({"decisionId": theirs["id"], "exitPrice": 1.0, "pnl": 1.0, "pnlPct": 0.01}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied), "{err}");

    // Anything else: refused, whatever the peer's uid would allow.
    for (method, params) in [
        ("strategies.deploy", json!({"id": NATIVE_RSI})),
        ("strategies.stop", json!({"id": MACD_HUNTER})),
        ("strategies.list", json!({})),
        ("mem.decisions", json!({})),
        ("daemon.status", json!({})),
        ("events.subscribe", json!({})),
        ("http.token", json!({})),
    ] {
        let err = bot.call_value(method, params).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(ErrorCode::PermissionDenied),
            "{method}: {err}"
        );
    }
    assert!(active_deployment(&client, sid(NATIVE_RSI)).await.is_none());

    // A wrong credential, or one with read-only, gets no connection.
    let err = bot_client(&daemon, "0123456789abcdef").await.err().unwrap();
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied), "{err}");
    let err = Client::connect(
        &daemon.socket,
        ClientOptions {
            read_only: true,
            credential: Some(credential.clone()),
            ..ClientOptions::default()
        },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), Some(ErrorCode::InvalidParams), "{err}");

    // The bot stopped: its credential stops working, on the open connection too.
    client
        .call::<method::Stop>(stop_now(sid(MACD_HUNTER)))
        .await
        .unwrap();
    let err = bot
        .call_value("mem.enhance", signal("freqtrade_macd_hunter"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied), "{err}");
    assert!(bot_client(&daemon, &credential).await.is_err());
    // Deployed again: a new credential.
    let again = client
        .call::<method::Deploy>(dry_run_on_port(sid(MACD_HUNTER), free_port()))
        .await
        .unwrap();
    assert_ne!(memd_section(&again)["credential"], json!(credential));
    assert!(bot_client(&daemon, &credential).await.is_err());
}

/// The mixin's own tests (tests/python/test_memd_mixin.py: the real module against a fake
/// memd on a real socket): fail-open said once, fail-closed, a silent memd costs one
/// deadline, a restarted memd reached again, refusals, the stake's bounds, backtests and
/// configs without a memd section left alone.
#[test]
fn the_mixin_passes_its_own_tests() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let out = std::process::Command::new("python3")
        .args(["-W", "ignore", "-m", "unittest", "-v", "test_memd_mixin"])
        .current_dir(&tests)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
