//! No secret leaks, and files that hold secrets are 0600: after a full run through the
//! real memd (a bot deployed with exchange keys in the config overrides, trades synced,
//! decisions logged, jobs run, the bot stopped), every bot API password, JWT secret, WS
//! token and exchange key/secret is looked for in everything a person or a script sees:
//! the daemon's stderr and log files, every event, every memctl command's output (tables
//! and `--json`), and memd's own files other than the 0600 ones that must hold them.
//! The HTTP API's bearer tokens (control and view) and the TradingView webhook's secret
//! are secrets too: the API is on and used during the run (the webhook's secret in a URL).
//! The alerts' secrets too: the Telegram bot token (in every Bot API URL) and the
//! webhook's URL (Discord's and Slack's carry their key): alerts go out through both
//! (the webhook refused at first, the Telegram stand-in down for a while, so failed tries
//! are logged and recorded), Telegram commands are answered, and `memctl alerts` is used.
//! The fake Freqtrade bot stands in for Freqtrade (it does not log its config).

use mem_e2e::alert_sink::AlertSink;
use mem_e2e::deployments::total_trades;
use mem_e2e::seed::{AGGRESSIVE_RSI, preferred_ports, sid};
use mem_e2e::{Daemon, describe, free_port};
use mem_protocol::Topic;
use mem_protocol::methods::method;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const EXCHANGE_KEY: &str = "KEY-7f3a9c1e5b2d4e6f8a0b";
const EXCHANGE_SECRET: &str = "SECRET-2b4d6f8a0c1e3a5c7e9f";
const BOT_TOKEN: &str = "8123456:AAF-tg-secret-0d9e8f7a6b5c";
const HOOK_KEY: &str = "hookkey-4e1f0a9b7c2d6e5f";
const CHAT: i64 = 31337;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_an_event_or_memctl_and_secret_files_are_0600() {
    let _ports = preferred_ports().await;
    let root = tempfile::tempdir().unwrap();
    let http_port = free_port();
    // Telegram's stand-in runs; the webhook's receiver starts later (refused at first).
    let telegram = AlertSink::start().await;
    let hook_port = free_port();
    let alerts = format!(
        "[alerts]\nretry_max_secs = 1\ndaily_summary_at = \"\"\n\
         [alerts.telegram]\nbot_token = {BOT_TOKEN:?}\nchat_ids = [{CHAT}]\ncontrol_chat_ids = [{CHAT}]\napi_base = {:?}\n\
         [alerts.webhook]\nurl = \"http://127.0.0.1:{hook_port}/hook/{HOOK_KEY}\"\nformat = \"slack\"\n",
        telegram.api_base()
    );
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({
            "fake_bot": {"closed_trades": 3, "open_trades": 1},
            "exchange": {"key": EXCHANGE_KEY, "secret": EXCHANGE_SECRET}
        }),
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nport_range = [19700, 19799]",
        &format!("[log]\nlevel = \"debug\"\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n{alerts}"),
    );
    let daemon = Daemon::with_config(root, &config);
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(Topic::ALL.to_vec()).await.unwrap();
    let id = sid(AGGRESSIVE_RSI);

    // A full run: deploy, poll, trades synced, a decision and its outcome, jobs, stop.
    let mut seen = Vec::<String>::new();
    let mut memctl = |args: &[&str]| {
        let out = daemon.memctl(args);
        seen.push(format!("memctl {}:\n{}", args.join(" "), describe(&out)));
        out
    };
    let out = memctl(&["deploy", AGGRESSIVE_RSI, "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    mem_e2e::wait_for(
        "the trades to be synced",
        Duration::from_secs(15),
        async || total_trades(&client, id).await == 3,
    )
    .await;
    let decided = client
        .call::<method::MemDecide>(
            serde_json::from_value(json!({
                "signal": {"strategy": "aggressive_rsi", "symbol": "ETH/BTC", "action": "BUY", "confidence": 0.7},
                "price": 0.05
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    client
        .call::<method::MemOutcome>(
            serde_json::from_value(
                json!({"decisionId": decided.id, "exitPrice": 0.051, "pnl": 1.0, "pnlPct": 0.02}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["deployed"],
        vec!["deployed", "--json"],
        vec!["logs", AGGRESSIVE_RSI, "-n", "1000"],
        vec!["strategies", "show", AGGRESSIVE_RSI],
        vec!["strategies", "show", AGGRESSIVE_RSI, "--json"],
        vec!["strategies", "trades", "list", AGGRESSIVE_RSI, "--json"],
        vec!["strategies", "audit", "--json"],
        vec!["jobs", "run", "performance_sync"],
        vec!["jobs", "history", "--json"],
        vec!["jobs", "--json"],
        vec!["memory", "decisions", "--json"],
        vec!["stop", AGGRESSIVE_RSI, "--json"],
        vec!["deployed", "--json"],
    ] {
        let out = memctl(&args);
        assert!(out.status.success(), "{}", describe(&out));
    }
    // Alerts: the webhook refused (a connection error, retried), then up; Telegram down
    // for a test alert, then up; commands answered, one from a stranger ignored.
    let history = async || {
        client
            .call::<method::AlertsHistory>(Default::default())
            .await
            .unwrap()
    };
    mem_e2e::wait_for(
        "a refused webhook try",
        Duration::from_secs(15),
        async || {
            history()
                .await
                .deliveries
                .iter()
                .any(|d| d.target == "webhook" && d.error.is_some())
        },
    )
    .await;
    let hook = AlertSink::start_on(hook_port).await;
    mem_e2e::wait_for(
        "the webhook delivered",
        Duration::from_secs(15),
        async || {
            hook.hooks()
                .iter()
                .any(|h| h["text"].as_str().unwrap_or("").contains("memd started"))
        },
    )
    .await;
    telegram.set_down(true);
    let out = memctl(&["alerts", "test", "telegram"]);
    assert!(out.status.success(), "{}", describe(&out));
    mem_e2e::wait_for(
        "a failed Telegram try",
        Duration::from_secs(15),
        async || {
            history()
                .await
                .deliveries
                .iter()
                .any(|d| d.target.starts_with("telegram") && d.error.is_some())
        },
    )
    .await;
    telegram.set_down(false);
    for text in [
        "/status",
        "/bots",
        "/profit week",
        "/decisions",
        "/stopentry all",
        "/confirm",
    ] {
        telegram.push_message(CHAT, text);
    }
    telegram.push_message(7, "/bots");
    // The bot was stopped above: `/stopentry all` finds none, `/confirm` nothing to do.
    let answered = |s: &[mem_e2e::alert_sink::Sent]| {
        s.iter().any(|m| m.text.contains("memd test alert"))
            && s.iter()
                .any(|m| m.text.contains("Nothing waits for a confirmation"))
    };
    let sent = telegram
        .wait_sent(Duration::from_secs(15), |s| answered(s))
        .await;
    assert!(answered(&sent), "{sent:?}");
    assert!(sent.iter().all(|m| m.chat_id == CHAT), "{sent:?}");
    for args in [
        vec!["alerts", "test"],
        vec!["alerts", "test", "webhook", "--json"],
        vec!["alerts", "history"],
        vec!["alerts", "history", "--json"],
        vec!["--json", "alerts", "history", "--limit", "500"],
        vec!["metrics"],
        vec!["--json", "metrics"],
    ] {
        let out = memctl(&args);
        assert!(out.status.success(), "{}", describe(&out));
    }
    mem_e2e::wait_for(
        "the test alerts sent",
        Duration::from_secs(15),
        async || history().await.pending == 0,
    )
    .await;
    let sent = telegram.sent();
    assert!(
        sent.iter().all(|m| m.token == BOT_TOKEN) && sent.len() >= 4,
        "the search works: memd did send with the token: {sent:?}"
    );

    // The HTTP API, used with its tokens (asked over the socket: `memctl http token`
    // prints them by design, so its output is not a place they leak to).
    let mut tokens = Vec::new();
    for view in [false, true] {
        let token = client
            .call::<method::HttpToken>(mem_protocol::http::HttpTokenParams {
                view,
                webhook: false,
                name: None,
            })
            .await
            .unwrap()
            .token;
        let answer = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{http_port}/api/mem/strategies"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        tokens.push(token);
    }
    let refused = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{http_port}/api/mem/strategies/{AGGRESSIVE_RSI}/deploy"
        ))
        .bearer_auth(&tokens[1])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    // `/metrics` counts the alerts (per channel, never per URL).
    let metrics = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{http_port}/metrics"))
        .bearer_auth(&tokens[1])
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("memd_alerts_sent_total{channel=\"webhook\"}"),
        "{metrics}"
    );
    // The TradingView webhook's secret, used in the URL (where a careless server would log
    // it) by an alert that is refused (and so logged).
    let webhook = client
        .call::<method::HttpToken>(mem_protocol::http::HttpTokenParams {
            view: false,
            webhook: true,
            name: None,
        })
        .await
        .unwrap()
        .token;
    let alert = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{http_port}/api/mem/webhooks/tradingview?secret={webhook}"
        ))
        .body(r#"{"strategy": "no_such_strategy", "ticker": "ETHBTC", "action": "buy", "price": 0.05}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(alert.status().as_u16(), 404);
    tokens.push(webhook);
    // The secrets, from the one place they must be: the 0600 deployment state.
    let state_path = daemon.data_dir.join("deployments/state.json");
    assert_eq!(
        mode(&state_path),
        0o600,
        "deployments/state.json holds bot credentials"
    );
    let state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let text = state.to_string();
    let mut secrets: Vec<String> = vec![
        EXCHANGE_KEY.into(),
        EXCHANGE_SECRET.into(),
        BOT_TOKEN.into(),
        // The token's secret half alone, and the webhook's key.
        BOT_TOKEN.split(':').nth(1).unwrap().into(),
        HOOK_KEY.into(),
    ];
    let credentials_from = secrets.len();
    for key in ["password", "jwt_secret", "ws_token"] {
        // Every value stored under these keys, wherever the state nests them.
        let needle = format!("\"{key}\":\"");
        let mut rest = text.as_str();
        while let Some(at) = rest.find(&needle) {
            let value = &rest[at + needle.len()..];
            let value = &value[..value.find('"').unwrap()];
            assert!(value.len() >= 16, "{key} looks weak: {value:?}");
            secrets.push(value.to_string());
            rest = &rest[at + needle.len()..];
        }
    }
    assert!(
        secrets.len() >= credentials_from + 2,
        "the bot's credentials are in state.json: {text}"
    );
    secrets.extend(tokens);

    // Events seen during the run.
    let mut all_events = String::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), events.next()).await {
        all_events.push_str(&m.to_notification().params.to_string());
        all_events.push('\n');
    }
    assert!(
        all_events.contains("deploymentId"),
        "deployment events were seen"
    );

    // Files memd wrote, other than those that must hold secrets (0600, checked).
    let must_hold = |p: &Path| {
        p.ends_with("deployments/state.json")
            || p.ends_with("http/tokens.json")
            || (p.file_name().is_some_and(|n| n == "config.json")
                && p.to_string_lossy().contains("/deployments/"))
    };
    let mut held = 0;
    let mut files = Vec::new();
    files_under(&daemon.data_dir, &mut files);
    let mut haystacks: Vec<(String, String)> = vec![
        ("memd stderr".into(), daemon.stderr()),
        ("events".into(), all_events),
        ("memctl".into(), seen.join("\n")),
    ];
    for f in &files {
        if must_hold(f) {
            assert_eq!(mode(f), 0o600, "{} holds secrets", f.display());
            held += 1;
            if f.ends_with("config.json") {
                // The search works: the rendered bot config does hold them.
                let text = std::fs::read_to_string(f).unwrap();
                assert!(
                    text.contains(EXCHANGE_KEY) && text.contains(&secrets[credentials_from]),
                    "{text}"
                );
            }
            continue;
        }
        let name = f.to_string_lossy();
        if name.contains("/mem_knowledge/") {
            assert_eq!(
                mode(f),
                0o600,
                "{}: the memory stores are private",
                f.display()
            );
        }
        // The bot's own sqlite and logs are Freqtrade's; the fake bot writes none of ours.
        if name.ends_with(".sqlite") || name.ends_with(".feather") || name.ends_with(".lock") {
            continue;
        }
        let bytes = std::fs::read(f).unwrap_or_default();
        haystacks.push((
            name.into_owned(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    assert_eq!(
        held, 3,
        "state.json, the bot's config.json and the HTTP tokens"
    );
    let mut leaks = Vec::new();
    for (place, text) in &haystacks {
        for s in &secrets {
            if text.contains(s.as_str()) {
                leaks.push(format!("{s} in {place}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    // The log file was written (at debug) and looked at.
    assert!(
        haystacks
            .iter()
            .any(|(p, t)| p.contains("/logs/memd.") && t.contains("memd is ready")),
        "the daemon's log file was read"
    );
}
