//! The TradingView alert webhook (`POST /api/mem/webhooks/tradingview`) through the real
//! daemon: the secret from `memctl http token --webhook`, in the URL or in the body;
//! every kind of bad alert refused with its status, a message naming the problem, a log
//! line, and nothing logged or forwarded; accepted alerts enhanced, written to both
//! decision logs and announced to a socket subscriber; the reasons an alert is not
//! forwarded (no bot, below the threshold, a bot whose config does not allow forced
//! entries); the rate limit.
//!
//! The first test runs everywhere (the fake bot stands in for Freqtrade). The second
//! forwards alerts to a real Freqtrade dry-run bot on the mock exchange: a buy opens a
//! trade (`/api/v1/forceenter`), a sell closes it (`/api/v1/forceexit`). It needs
//! `MEMD_TEST_FREQTRADE` (the path of a `freqtrade` binary; `.ci/run` installs one with
//! `.ci/install-freqtrade`); without it the test says it is skipped.

use mem_e2e::deployments::{dry_run, dry_run_on_port, stop_now};
use mem_e2e::free_port;
use mem_e2e::freqtrade::{self, BotApi, TEST_TIMINGS};
use mem_e2e::mock_exchange;
use mem_e2e::seed::{MACD_HUNTER, preferred_ports, sid};
use mem_e2e::{Daemon, describe, wait_for};
use mem_protocol::deploy::DeploymentStatus;
use mem_protocol::mem::DecisionsParams;
use mem_protocol::methods::method;
use mem_protocol::{Client, Event, EventStream, Topic};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const WEBHOOK: &str = "/api/mem/webhooks/tradingview";

/// A daemon with the HTTP API on, and the webhook's secret.
struct Hook {
    daemon: Daemon,
    base: String,
    secret: String,
    http: reqwest::Client,
}

impl Hook {
    fn start(daemon: Daemon, port: u16) -> Hook {
        let out = daemon.memctl(&["http", "token", "--webhook"]);
        assert!(out.status.success(), "{}", describe(&out));
        let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert_eq!(secret.len(), 64, "{secret:?}");
        assert!(secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret:?}");
        let told = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            told.contains(&format!("http://127.0.0.1:{port}{WEBHOOK}")),
            "memctl names the webhook's URL: {told}"
        );
        let control = daemon.memctl(&["http", "token"]);
        assert_ne!(
            String::from_utf8_lossy(&control.stdout).trim(),
            secret,
            "the secret is not the bearer token"
        );
        let both = daemon.memctl(&["http", "token", "--webhook", "--view"]);
        assert!(!both.status.success(), "{}", describe(&both));
        Hook {
            daemon,
            base: format!("http://127.0.0.1:{port}"),
            secret,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// Posts `body` (as TradingView does: text/plain unless it is JSON) with `?secret=`
    /// when given; answers the status, the Retry-After header and the parsed answer.
    async fn post_raw(
        &self,
        secret_in_url: Option<&str>,
        body: &str,
    ) -> (u16, Option<String>, Value) {
        let url = match secret_in_url {
            Some(s) => format!("{}{WEBHOOK}?secret={s}", self.base),
            None => format!("{}{WEBHOOK}", self.base),
        };
        let content_type = if serde_json::from_str::<Value>(body).is_ok() {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        let response = self
            .http
            .post(url)
            .header("Content-Type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, retry, value)
    }

    /// An alert with the secret in the URL.
    async fn alert(&self, alert: Value) -> (u16, Value) {
        let (status, _, answer) = self.post_raw(Some(&self.secret), &alert.to_string()).await;
        (status, answer)
    }

    /// An alert with the secret in the body.
    async fn alert_with_secret_in_body(&self, mut alert: Value) -> (u16, Value) {
        alert["secret"] = json!(self.secret);
        let (status, _, answer) = self.post_raw(None, &alert.to_string()).await;
        (status, answer)
    }

    /// The decisions alerts made, newest first (not those of the bot's own entries, which
    /// its memd mixin asks MEM about).
    async fn decisions(&self, client: &Client) -> Vec<Value> {
        let list = client
            .call::<method::MemDecisions>(DecisionsParams::default())
            .await
            .unwrap();
        list.decisions
            .iter()
            .filter(|d| !from_bot(d))
            .map(|d| serde_json::to_value(d).unwrap())
            .collect()
    }
}

/// A refused answer: the status, the envelope, the message naming the problem.
fn refused(what: &str, (status, answer): (u16, Value), want: u16, names: &[&str]) {
    assert_eq!(status, want, "{what}: {answer}");
    assert_eq!(answer["success"], false, "{what}: {answer}");
    assert!(answer.get("data").is_none(), "{what}: {answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    for n in names {
        assert!(message.contains(n), "{what}: {message:?} names {n:?}");
    }
}

/// Each kind of bad alert, with the secret right where the kind is not about the secret.
/// Answers how many were refused.
async fn every_kind_of_bad_alert_is_refused(hook: &Hook) -> usize {
    let good = json!({"strategy": "freqtrade_macd_hunter", "ticker": "BINANCE:ETHUSDT", "action": "buy", "price": 3646.17});
    let with = |key: &str, value: Value| {
        let mut a = good.clone();
        a[key] = value;
        a
    };
    let without = |key: &str| {
        let mut a = good.clone();
        a.as_object_mut().unwrap().remove(key);
        a
    };
    let mut n = 0;
    // The secret: none, a wrong one in the URL, a wrong one in the body.
    let (s, _, a) = hook.post_raw(None, &good.to_string()).await;
    refused(
        "no secret",
        (s, a),
        401,
        &["no secret", "memctl http token --webhook"],
    );
    let wrong = "0".repeat(64);
    let (s, _, a) = hook.post_raw(Some(&wrong), &good.to_string()).await;
    refused(
        "a wrong secret in the URL",
        (s, a),
        401,
        &["not this webhook's"],
    );
    let (s, _, a) = hook
        .post_raw(None, &with("secret", json!(wrong)).to_string())
        .await;
    refused(
        "a wrong secret in the body",
        (s, a),
        401,
        &["not this webhook's"],
    );
    let (s, _, a) = hook
        .post_raw(Some(&hook.secret[..63]), &good.to_string())
        .await;
    refused(
        "a secret one character short",
        (s, a),
        401,
        &["not this webhook's"],
    );
    n += 4;
    // An unknown strategy, by name and by id.
    refused(
        "an unknown strategy",
        hook.alert(with("strategy", json!("freqtrade_macd_hunted")))
            .await,
        404,
        &["unknown strategy", "freqtrade_macd_hunted"],
    );
    refused(
        "an unknown strategy id",
        hook.alert(with(
            "strategy",
            json!("00000000-0000-4000-8000-000000000000"),
        ))
        .await,
        404,
        &["unknown strategy", "00000000-0000-4000-8000-000000000000"],
    );
    n += 2;
    // Malformed bodies.
    let (s, _, a) = hook
        .post_raw(Some(&hook.secret), "BUY ETHUSDT at {{close}}")
        .await;
    refused("a body that is not JSON", (s, a), 400, &["not JSON"]);
    refused(
        "no action",
        hook.alert(without("action")).await,
        400,
        &["`action` is required"],
    );
    refused(
        "a hold",
        hook.alert(with("action", json!("hold"))).await,
        400,
        &["`action`", "\"hold\" is not \"buy\" or \"sell\""],
    );
    refused(
        "a price that is not a number",
        hook.alert(with("price", json!("{{close}}"))).await,
        400,
        &["`price` must be a number", "{{close}}"],
    );
    refused(
        "no ticker",
        hook.alert(without("ticker")).await,
        400,
        &["`ticker` is required"],
    );
    refused(
        "a confidence above 1",
        hook.alert(with("confidence", json!(1.5))).await,
        400,
        &["`confidence`"],
    );
    n += 6;
    // An unknown symbol: the known pairs are named.
    refused(
        "an unknown symbol",
        hook.alert(with("ticker", json!("BINANCE:DOGEUSDT"))).await,
        400,
        &["unknown symbol", "DOGEUSDT", "ETH/USDT", "BTC/USDT"],
    );
    n += 1;
    n
}

/// A decision the bot's memd mixin asked for (its own strategy's entry), or its observed
/// trade: not an alert's.
fn from_bot(d: &mem_protocol::mem::Decision) -> bool {
    d.source.as_deref().is_some_and(|s| s.starts_with("bot "))
}

/// The next `decision.logged` event of an alert, within a few seconds.
async fn next_decision(events: &mut EventStream) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, events.next())
            .await
            .expect("a decision.logged event in time")
            .expect("the event stream is open");
        if let Event::DecisionLogged(d) = message.event {
            if !from_bot(&d) {
                return serde_json::to_value(*d).unwrap();
            }
        }
    }
}

/// No `decision.logged` event of an alert is waiting.
async fn no_decision_event(events: &mut EventStream) {
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), events.next()).await {
        assert!(
            !matches!(&m.event, Event::DecisionLogged(d) if !from_bot(d)),
            "a refused alert was logged: {:?}",
            m.event
        );
    }
}

/// An accepted alert's answer: the envelope, its decision, and the answer's data.
fn accepted(what: &str, (status, answer): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{what}: {answer}");
    assert_eq!(answer["success"], true, "{what}: {answer}");
    let data = answer["data"].clone();
    let d = &data["decision"];
    assert!(
        d["id"].as_str().is_some_and(|id| id.len() == 36),
        "{what}: {answer}"
    );
    assert!(d["confidence"].as_f64().is_some(), "{what}: {answer}");
    assert!(
        d["reasoning"]
            .as_str()
            .is_some_and(|r| r.contains("freqtrade_macd_hunter")),
        "{what}: {answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains(d["id"].as_str().unwrap()),
        "{what}: {answer}"
    );
    data
}

/// The same decision (floats compared as numbers, not as texts).
fn same_decision(a: &Value, b: &Value) {
    for key in ["id", "strategy", "symbol", "action", "reasoning", "at"] {
        assert_eq!(a[key], b[key], "{key}: {a} vs {b}");
    }
    for key in ["price", "confidence", "base_confidence"] {
        let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            "{key}: {a} vs {b}"
        );
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_alerts_are_refused_and_good_ones_logged_with_the_reason_they_are_not_forwarded() {
    let _ports = preferred_ports().await;
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let limit = 30;
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({"fake_bot": {}}),
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nport_range = [19500, 19599]",
        &format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[http.tradingview]\nrate_limit_per_minute = {limit}\n"
        ),
    );
    let daemon = Daemon::with_config(root, &config);
    let hook = Hook::start(daemon, port);
    let client = hook.daemon.client().await;
    let watcher = hook.daemon.client().await;
    let (_, mut events) = watcher.subscribe(vec![Topic::Memory]).await.unwrap();

    // Every kind of bad alert: refused, each logged as a refusal, nothing decided.
    let started = Instant::now();
    let mut counted = every_kind_of_bad_alert_is_refused(&hook).await;
    eprintln!("{counted} refusals in {:?}", started.elapsed());
    // Not a POST; a body over 16 KiB.
    let (status, get) = {
        let r = hook
            .http
            .get(format!("{}{WEBHOOK}?secret={}", hook.base, hook.secret))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    refused("a GET", (status, get), 405, &["method"]);
    let big = json!({"strategy": "freqtrade_macd_hunter", "ticker": "ETHUSDT", "action": "buy", "price": 1, "comment": "x".repeat(20_000)});
    let (s, _, a) = hook.post_raw(Some(&hook.secret), &big.to_string()).await;
    refused("a body over 16 KiB", (s, a), 413, &["16 KiB"]);
    counted += 1;
    assert!(
        hook.decisions(&client).await.is_empty(),
        "nothing was decided"
    );
    no_decision_event(&mut events).await;
    let log = hook.daemon.stderr();
    assert!(
        log.matches("TradingView alert refused").count() >= counted,
        "each refusal is logged:\n{log}"
    );
    assert!(
        log.contains("unknown symbol"),
        "the reason is logged:\n{log}"
    );

    // A good alert, no bot: enhanced, logged in both files, announced; not forwarded.
    let mem = hook.daemon.data_dir.join("mem_knowledge");
    let data = accepted(
        "an alert with no bot",
        hook.alert(json!({"strategy": "freqtrade_macd_hunter", "ticker": "BINANCE:ETHUSDT", "action": "BUY", "price": 3646.17}))
            .await,
    );
    let d = &data["decision"];
    assert_eq!(data["symbol"], "ETH/USDT", "{data}");
    assert_eq!(data["ticker"], "BINANCE:ETHUSDT");
    assert_eq!(data["strategy"], "freqtrade_macd_hunter");
    assert_eq!(data["strategyId"], MACD_HUNTER);
    assert_eq!(d["strategy"], "freqtrade_macd_hunter");
    assert_eq!(d["action"], "BUY");
    assert_eq!(d["price"], 3646.17);
    assert_eq!(
        d["base_confidence"], 0.7,
        "[http.tradingview] base_confidence's default"
    );
    assert_eq!(
        d["confidence"], 0.7,
        "no model, no memory on ETH/USDT: the base alone"
    );
    assert_eq!(
        (data["threshold"].as_f64(), data["thresholdSource"].as_str()),
        (Some(0.6), Some("config"))
    );
    assert_eq!(data["forwarded"], Value::Null, "{data}");
    assert!(
        data["notForwardedBecause"]
            .as_str()
            .unwrap()
            .contains("no running Freqtrade bot"),
        "{data}"
    );
    let event = next_decision(&mut events).await;
    same_decision(&event, d);
    let listed = hook.decisions(&client).await;
    assert_eq!(listed.len(), 1);
    same_decision(&listed[0], d);
    let id = d["id"].as_str().unwrap();
    assert!(read(&mem.join("decisions.jsonl")).contains(id));
    let text = read(&mem.join("core_memory_updates.txt"));
    assert!(
        text.contains(
            "Strategy: freqtrade_macd_hunter - Decision: BUY ETH/USDT @ 3646.17 - Confidence: 0.70"
        ),
        "{text}"
    );

    // Below the threshold (a low confidence of its own), by id, secret in the body.
    let data = accepted(
        "an alert below the threshold",
        hook.alert_with_secret_in_body(json!({"strategy": MACD_HUNTER, "ticker": "ETHUSDT", "action": "sell", "price": "3650.5", "confidence": 0.2}))
            .await,
    );
    assert_eq!(data["decision"]["confidence"], 0.2);
    assert_eq!(data["decision"]["action"], "SELL");
    assert_eq!(data["decision"]["price"], 3650.5);
    assert_eq!(data["forwarded"], Value::Null);
    let why = data["notForwardedBecause"].as_str().unwrap();
    assert!(
        why.contains("0.20 is below the strategy's threshold 0.60 (config)"),
        "{why}"
    );
    same_decision(&next_decision(&mut events).await, &data["decision"]);

    // A running bot (the fake one) whose config does not allow forced entries.
    let deployed = client
        .call_with_timeout::<method::Deploy>(dry_run(sid(MACD_HUNTER)), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(deployed.status, DeploymentStatus::Running);
    let data = accepted(
        "an alert to a bot without forced entries",
        hook.alert(json!({"strategy": "freqtrade_macd_hunter", "ticker": "BTCUSDT", "action": "buy", "price": 64576.77}))
            .await,
    );
    assert_eq!(data["symbol"], "BTC/USDT");
    assert_eq!(data["forwarded"], Value::Null);
    assert!(
        data["notForwardedBecause"]
            .as_str()
            .unwrap()
            .contains("does not allow forced entries (force_entry_enable"),
        "{data}"
    );
    next_decision(&mut events).await;
    counted += 3;
    let decided = hook.decisions(&client).await.len();
    assert_eq!(decided, 3);

    // The rate limit: alerts with the right secret (refused ones count too) up to the
    // limit per minute, then 429 with Retry-After; bad secrets have a budget of their own.
    let mut sent = counted - 4 - 1; // the four bad secrets are not alerts; the GET neither
    let mut limited = None;
    for _ in 0..limit + 1 {
        let (s, retry, a) = hook.post_raw(Some(&hook.secret), "{}").await;
        if s == 429 {
            limited = Some((retry, a));
            break;
        }
        assert_eq!(s, 400, "{a}");
        sent += 1;
    }
    let (retry, answer) = limited.expect("429 within the limit");
    assert!(sent <= limit as usize + 1, "{sent} alerts before the limit");
    refused(
        "over the rate limit",
        (429, answer),
        429,
        &[
            "rate_limit_per_minute",
            &format!("more than {limit} alerts"),
        ],
    );
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (s, _, a) = hook
        .post_raw(Some(&hook.secret), &json!({"strategy": "freqtrade_macd_hunter", "ticker": "ETHUSDT", "action": "buy", "price": 1}).to_string())
        .await;
    refused("a good alert over the limit", (s, a), 429, &["retry in"]);
    let (s, _, a) = hook.post_raw(Some(&"1".repeat(64)), "{}").await;
    refused(
        "a bad secret while alerts are limited",
        (s, a),
        401,
        &["not this webhook's"],
    );
    assert_eq!(
        hook.decisions(&client).await.len(),
        decided,
        "nothing more decided"
    );
    // Wrong secrets up to their own budget (5 + 1 used: four wrong secrets, the body over
    // 16 KiB, the one above), then 429 too, logged once.
    let mut wrong = 0;
    let limited = loop {
        let (s, retry, a) = hook.post_raw(Some(&"2".repeat(64)), "{}").await;
        if s == 429 {
            break (retry, a);
        }
        assert_eq!(s, 401, "{a}");
        wrong += 1;
        assert!(wrong <= limit, "no 429 after {wrong} wrong secrets");
    };
    assert_eq!(wrong, limit - 6, "the budget of refused requests");
    assert!(limited.0.is_some(), "Retry-After");
    refused(
        "too many wrong secrets",
        (429, limited.1),
        429,
        &["refused requests"],
    );
    let (s, _, _) = hook.post_raw(Some(&"3".repeat(64)), "{}").await;
    assert_eq!(s, 429);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hook.daemon.stderr().matches("refused requests").count(),
        1,
        "logged once a window"
    );

    // The secret is never logged, the URL it came in neither.
    let log = hook.daemon.stderr();
    assert!(
        !log.contains(&hook.secret),
        "the secret leaked into the log"
    );
    let logs = hook.daemon.data_dir.join("logs");
    for entry in std::fs::read_dir(&logs).unwrap().flatten() {
        assert!(
            !read(&entry.path()).contains(&hook.secret),
            "the secret leaked into {}",
            entry.path().display()
        );
    }
}

/// The bot's open trades that a forwarded alert made (entry tag `tradingview`): the bot's
/// own strategy may open trades of its own on the mock exchange's candles.
async fn forced_open_trades(bot: &BotApi) -> Vec<Value> {
    bot.get("status")
        .await
        .as_array()
        .map(|t| {
            t.iter()
                .filter(|t| t["enter_tag"] == "tradingview")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Exits, through the bot's own API, the trades its strategy opened on `pair` by itself
/// (not those a TradingView alert opened).
async fn exit_own_trades(bot_api: &BotApi, pair: &str) {
    let open = bot_api.get("status").await;
    for t in open.as_array().into_iter().flatten() {
        if t["pair"] == pair && t["enter_tag"] != "tradingview" {
            let id = t["trade_id"].clone();
            let answer = bot_api.post("forceexit", json!({"tradeid": id})).await;
            eprintln!("exited the bot's own trade {id} on {pair}: {answer}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_open_and_close_a_trade_of_a_real_dry_run_bot() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let started = Instant::now();
    let mock = mock_exchange::start_filling_at_once().await;
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    // The operator allows forced entries in the overrides (the seed's base configs do not).
    let config = freqtrade::memd_config(
        root.path(),
        &freqtrade,
        &mock,
        true,
        TEST_TIMINGS,
        &format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[http.tradingview]\nrate_limit_per_minute = 600\n"
        ),
    );
    let daemon = Daemon::with_config(root, &config);
    let hook = Hook::start(daemon, port);
    let client = hook.daemon.client().await;
    let watcher = hook.daemon.client().await;
    let (_, mut events) = watcher.subscribe(vec![Topic::Memory]).await.unwrap();

    let bot = client
        .call_with_timeout::<method::Deploy>(
            dry_run_on_port(sid(MACD_HUNTER), free_port()),
            Duration::from_secs(150),
        )
        .await
        .unwrap();
    assert_eq!(bot.status, DeploymentStatus::Running);
    let bot_api = BotApi::of(&bot);
    let shown = bot_api.get("show_config").await;
    assert_eq!(
        (
            shown["dry_run"].as_bool(),
            shown["force_entry_enable"].as_bool()
        ),
        (Some(true), Some(true)),
        "{shown}"
    );
    wait_for(
        "the bot's first trading loop",
        Duration::from_secs(60),
        async || {
            bot_api.get("health").await["last_process_ts"]
                .as_i64()
                .is_some()
        },
    )
    .await;
    eprintln!("bot ready after {:?}", started.elapsed());

    // Bad alerts: refused, and the bot was sent nothing.
    every_kind_of_bad_alert_is_refused(&hook).await;
    no_decision_event(&mut events).await;
    assert!(hook.decisions(&client).await.is_empty());
    assert_eq!(
        forced_open_trades(&bot_api).await,
        Vec::<Value>::new(),
        "no trade opened"
    );

    // Below the threshold: logged, not forwarded.
    let price = mock.last_price("ETH/USDT").unwrap();
    let data = accepted(
        "an alert below the threshold",
        hook.alert(json!({"strategy": "freqtrade_macd_hunter", "ticker": "BINANCE:ETHUSDT", "action": "buy", "price": price, "confidence": 0.3}))
            .await,
    );
    assert_eq!(data["forwarded"], Value::Null);
    assert!(
        data["notForwardedBecause"]
            .as_str()
            .unwrap()
            .contains("below the strategy's threshold"),
        "{data}"
    );
    next_decision(&mut events).await;
    assert_eq!(
        forced_open_trades(&bot_api).await,
        Vec::<Value>::new(),
        "no trade opened"
    );

    // A buy, secret in the URL: forwarded as a forced entry. A bot that has just started
    // may refuse its first one (no candles yet): the alert is then logged, not forwarded,
    // with the bot's reason; it is sent again. The bot's own strategy may have opened
    // ETH/USDT by itself on the mock's candles (at some times of day it does): Freqtrade
    // then refuses a second position there, so that trade of its own is exited first.
    let mut entry = Value::Null;
    let mut attempts = 0;
    wait_for("a buy alert forwarded to the bot", Duration::from_secs(90), async || {
        attempts += 1;
        let data = accepted(
            "a buy",
            hook.alert(json!({"strategy": "freqtrade_macd_hunter", "ticker": "BINANCE:ETHUSDT", "action": "buy", "price": price}))
                .await,
        );
        if data["forwarded"].is_null() {
            let why = data["notForwardedBecause"].as_str().unwrap_or_default();
            assert!(
                why.contains("the bot refused the forced entry") || why.contains("cannot ask the bot"),
                "{data}"
            );
            eprintln!("not forwarded yet: {why}");
            if why.contains("position for ETH/USDT already open") {
                exit_own_trades(&bot_api, "ETH/USDT").await;
            }
            // The bot needs its first candles; ask again a second later.
            tokio::time::sleep(Duration::from_secs(1)).await;
            return false;
        }
        entry = data;
        true
    })
    .await;
    let forwarded = &entry["forwarded"];
    assert_eq!(
        forwarded["deploymentId"],
        json!(bot.deployment_id),
        "{entry}"
    );
    assert_eq!(forwarded["endpoint"], "/api/v1/forceenter");
    assert_eq!(forwarded["pair"], "ETH/USDT");
    assert_eq!(forwarded["dryRun"], true);
    let trade_id = forwarded["tradeIds"][0].as_i64().unwrap();
    assert!(trade_id > 0, "{entry}");
    let d = &entry["decision"];
    assert_eq!(d["confidence"], 0.7, "{entry}");
    assert!(d["confidence"].as_f64().unwrap() >= entry["threshold"].as_f64().unwrap());
    // The decision: announced, listed, in both logs.
    let mut seen = next_decision(&mut events).await;
    for _ in 1..attempts {
        seen = next_decision(&mut events).await; // the refused attempts' decisions came first
    }
    same_decision(&seen, d);
    same_decision(&hook.decisions(&client).await[0], d);
    let mem = hook.daemon.data_dir.join("mem_knowledge");
    assert!(read(&mem.join("decisions.jsonl")).contains(d["id"].as_str().unwrap()));
    // The human log's line at the decision's price, compared as a number: the price went
    // through JSON twice (serde_json's default float parsing may be off by the last bit),
    // so its text may differ in the last digit. (The bot's own entries, which its memd
    // mixin asks MEM about, may have lines of their own there.)
    let log = read(&mem.join("core_memory_updates.txt"));
    let decided_price = d["price"].as_f64().unwrap();
    let logged: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split_once("Strategy: freqtrade_macd_hunter - Decision: BUY ETH/USDT @ "))
        .filter_map(|(_, rest)| rest.split(' ').next()?.parse::<f64>().ok())
        .collect();
    assert!(
        logged
            .iter()
            .any(|p| (p - decided_price).abs() <= 1e-9 * decided_price),
        "logged at {logged:?}, decided at {decided_price}:\n{log}"
    );
    // The bot's trade.
    wait_for(
        "the forced entry to fill",
        Duration::from_secs(60),
        async || {
            bot_api.get("status").await.as_array().is_some_and(|t| {
                t.iter().any(|t| {
                    t["trade_id"] == trade_id
                        && t["pair"] == "ETH/USDT"
                        && t["enter_tag"] == "tradingview"
                        && t["amount"].as_f64().unwrap_or(0.0) > 0.0
                })
            })
        },
    )
    .await;
    eprintln!("trade {trade_id} open after {:?}", started.elapsed());

    // A sell, secret in the body, the ticker without the exchange: the trade is exited.
    let exit = accepted(
        "a sell",
        hook.alert_with_secret_in_body(json!({"strategy": "freqtrade_macd_hunter", "ticker": "ETHUSDT", "action": "sell", "price": mock.last_price("ETH/USDT").unwrap()}))
            .await,
    );
    assert_eq!(exit["forwarded"]["endpoint"], "/api/v1/forceexit", "{exit}");
    // Every open long on the pair is exited: ours, and any the bot opened there itself.
    assert!(
        exit["forwarded"]["tradeIds"]
            .as_array()
            .is_some_and(|ids| ids.contains(&json!(trade_id))),
        "{exit}"
    );
    assert_eq!(exit["decision"]["action"], "SELL");
    same_decision(&next_decision(&mut events).await, &exit["decision"]);
    wait_for("the trade to close", Duration::from_secs(60), async || {
        let closed = bot_api.get("trades").await;
        closed["trades"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["trade_id"] == trade_id && t["exit_reason"] == "force_exit")
        })
    })
    .await;
    assert_eq!(forced_open_trades(&bot_api).await, Vec::<Value>::new());
    // A sell with nothing open: logged, not forwarded.
    let again = accepted(
        "a sell with nothing open",
        hook.alert(json!({"strategy": "freqtrade_macd_hunter", "ticker": "ETHUSDT", "action": "sell", "price": price}))
            .await,
    );
    assert!(
        again["notForwardedBecause"]
            .as_str()
            .unwrap()
            .contains("no open trade on ETH/USDT"),
        "{again}"
    );
    eprintln!("trade {trade_id} closed after {:?}", started.elapsed());
    // The forwarded entry was not asked about again by the bot's memd mixin, and its
    // closed trade closes the alert's decision.
    let buy_id = d["id"].clone();
    wait_for(
        "the alert's decision closed by the trade sync",
        Duration::from_secs(60),
        async || {
            hook.decisions(&client)
                .await
                .iter()
                .any(|x| x["id"] == buy_id && x["outcome"]["exit_reason"] == "force_exit")
        },
    )
    .await;
    let log_path = Path::new(bot.config_file.as_deref().unwrap())
        .parent()
        .unwrap()
        .join("freqtrade.log");
    let log = read(&log_path);
    assert!(
        log.contains("the entry on ETH/USDT was decided by memd already (tag tradingview)"),
        "{log}"
    );

    let stopped = client
        .call_with_timeout::<method::Stop>(stop_now(sid(MACD_HUNTER)), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    assert!(!hook.daemon.stderr().contains(&hook.secret));
}
