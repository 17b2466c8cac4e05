//! Alerts (issue 25) through the real memd: a local Telegram Bot API stand-in and a
//! webhook receiver on 127.0.0.1 ([`mem_e2e::alert_sink`]) in place of Telegram and
//! Discord. A bot crashing past its restarts alerts once per condition; a failed job
//! (the data refresh, a backtest) and the stale market data a failed refresh leaves
//! alert once each, however often they recur inside the dedup window, a restart
//! included; a live bot
//! starting and stopping alerts once each, a dry run not at all; a channel that
//! is down gets the alert once it is back; an alert raised just before memd is SIGKILLed
//! is delivered after the restart; Telegram commands from an unknown chat do nothing,
//! and `/stopentry all` from a control chat, confirmed, reaches every bot. The bot token
//! appears in no log or memctl output.

use mem_e2e::alert_sink::AlertSink;
use mem_e2e::deployments::{active_deployments, dry_run_on_port};
use mem_e2e::seed::{AGGRESSIVE_RSI, MACD_HUNTER, sid};
use mem_e2e::{Daemon, free_port, wait_for};
use mem_protocol::alerts::AlertProgress;
use mem_protocol::deploy::DeploymentStatus;
use mem_protocol::methods::method;
use mem_protocol::{Event, Topic};
use nix::sys::signal::Signal;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "7461:AAH-e2e-TOKEN-5b1f9c3d";
const CHAT: i64 = 4242;
const CONTROL_CHAT: i64 = 777;
const STRANGER: i64 = 13;

fn alerts_section(sink: &AlertSink) -> String {
    format!(
        "[alerts]\ndedup_window_secs = 600\nretry_max_secs = 1\ndaily_summary_at = \"\"\n\
         [alerts.telegram]\nbot_token = {TOKEN:?}\nchat_ids = [{CHAT}, {CONTROL_CHAT}]\n\
         control_chat_ids = [{CONTROL_CHAT}]\napi_base = {:?}\n\
         [alerts.webhook]\nurl = {:?}\nformat = \"discord\"\n",
        sink.api_base(),
        sink.hook_url()
    )
}

fn daemon_with(sink: &AlertSink, fake_bot: serde_json::Value) -> (Daemon, std::path::PathBuf) {
    daemon_with_overrides(sink, json!({ "fake_bot": fake_bot }), |_| String::new())
}

/// memd on the fake bot with these `[freqtrade] config_overrides`, the alerts sent to
/// `sink`, and `more(root)` (more of the config file, written before memd starts).
fn daemon_with_overrides(
    sink: &AlertSink,
    overrides: serde_json::Value,
    more: impl FnOnce(&Path) -> String,
) -> (Daemon, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let extra = format!("{}{}", more(root.path()), alerts_section(sink));
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        overrides,
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nunresponsive_limit_secs = 3\nmax_restarts = 2\nport_range = [19800, 19899]",
        &extra,
    );
    (Daemon::with_config(root, &config), config)
}

fn count(sent: &[mem_e2e::alert_sink::Sent], chat: i64, needle: &str) -> usize {
    sent.iter()
        .filter(|s| s.chat_id == chat && s.text.contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_crashing_past_its_restarts_alerts_once_per_condition_on_every_channel() {
    let sink = AlertSink::start().await;
    let (daemon, _) = daemon_with(&sink, json!({"crash_after_secs": 0.5}));
    let started = sink
        .wait_sent(Duration::from_secs(10), |s| {
            count(s, CHAT, "memd started") == 1
        })
        .await;
    assert_eq!(count(&started, CHAT, "memd started"), 1, "{started:?}");
    let client = daemon.client().await;
    client
        .call::<method::Deploy>(dry_run_on_port(sid(MACD_HUNTER), free_port()))
        .await
        .unwrap();
    let sent = sink
        .wait_sent(Duration::from_secs(40), |s| count(s, CHAT, "failed") >= 1)
        .await;
    assert_eq!(
        count(&sent, CHAT, "Bot Freqtrade MACD Hunter failed"),
        1,
        "{sent:?}"
    );
    assert_eq!(
        count(&sent, CONTROL_CHAT, "Bot Freqtrade MACD Hunter failed"),
        1
    );
    // Restarting is one condition however many restarts: once inside the window.
    assert_eq!(count(&sent, CHAT, "keeps restarting"), 1, "{sent:?}");
    assert!(sent.iter().all(|s| s.token == TOKEN));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hooks = sink.hooks();
    let failed_hooks = hooks
        .iter()
        .filter(|h| {
            h["content"]
                .as_str()
                .unwrap_or("")
                .contains("MACD Hunter failed")
        })
        .count();
    assert_eq!(failed_hooks, 1, "discord-shaped body once: {hooks:?}");

    // memctl: the history, the counters; no token anywhere a person sees.
    let history = daemon.memctl(&["alerts", "history", "--limit", "200"]);
    let text = String::from_utf8_lossy(&history.stdout).to_string();
    assert!(history.status.success(), "{history:?}");
    assert!(
        text.contains("bot_failed") && text.contains("telegram/4242"),
        "{text}"
    );
    let json_history = daemon.memctl(&["--json", "alerts", "history"]);
    let metrics = daemon.memctl(&["--json", "metrics"]);
    for out in [
        &text,
        &String::from_utf8_lossy(&json_history.stdout).to_string(),
        &daemon.stderr(),
        &String::from_utf8_lossy(&metrics.stdout).to_string(),
    ] {
        assert!(
            !out.contains(TOKEN) && !out.contains("AAH-e2e"),
            "the token leaked: {out}"
        );
    }
    let files = ["alerts/history.jsonl", "alerts/outbox.jsonl"];
    for f in files {
        let body = std::fs::read_to_string(daemon.data_dir.join(f)).unwrap_or_default();
        assert!(!body.contains(TOKEN), "{f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_down_is_retried_and_an_alert_survives_a_sigkill() {
    let sink = AlertSink::start().await;
    let (mut daemon, config) = daemon_with(&sink, json!({}));
    sink.wait_sent(Duration::from_secs(10), |s| {
        count(s, CHAT, "memd started") == 1
    })
    .await;
    sink.set_down(true);
    let out = daemon.memctl(&["alerts", "test", "telegram"]);
    assert!(out.status.success(), "{out:?}");
    // Tried and failed while down: in the history, still in the outbox.
    let client = daemon.client().await;
    wait_for("a failed try", Duration::from_secs(10), async || {
        let h = client
            .call::<method::AlertsHistory>(Default::default())
            .await
            .unwrap();
        h.deliveries
            .iter()
            .any(|d| d.rule == "test" && d.error.is_some())
            && h.pending >= 1
    })
    .await;
    drop(client);
    // Raised, not delivered, then memd dies without a word.
    daemon.restart_with_config(Signal::SIGKILL, &config);
    // The Dashboard's road: the snapshot has the alert as it stands (not sent, rebuilt
    // from the history and the outbox), then `alert.changed` says when it is.
    let client = daemon.client().await;
    let (subscribed, mut events) = client.subscribe(vec![Topic::Daemon]).await.unwrap();
    let recent = subscribed.snapshot.alerts.unwrap_or_default();
    let test_alert = recent
        .iter()
        .find(|a| a.title == "memd test alert")
        .unwrap_or_else(|| panic!("the test alert is in the snapshot: {recent:?}"));
    assert_ne!(test_alert.progress(), AlertProgress::Sent, "{test_alert:?}");
    assert!(
        test_alert
            .targets
            .iter()
            .any(|t| t.target == "telegram/4242"),
        "{test_alert:?}"
    );
    sink.set_down(false);
    let id = test_alert.id.clone();
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let m = events.next().await.expect("the event stream ended");
            if let Event::AlertChanged(a) = m.event {
                if a.id == id && a.progress() == AlertProgress::Sent {
                    return;
                }
            }
        }
    })
    .await
    .expect("alert.changed says the test alert was sent");
    drop(events);
    drop(client);
    let sent = sink
        .wait_sent(Duration::from_secs(15), |s| {
            count(s, CHAT, "memd test alert") >= 1 && count(s, CONTROL_CHAT, "memd test alert") >= 1
        })
        .await;
    assert_eq!(count(&sent, CHAT, "memd test alert"), 1, "{sent:?}");
    assert_eq!(count(&sent, CONTROL_CHAT, "memd test alert"), 1, "{sent:?}");

    // The channel down while memd runs: retried with backoff, delivered once it is back;
    // the alerts that waited together go out as one message.
    sink.set_down(true);
    for _ in 0..3 {
        assert!(
            daemon
                .memctl(&["alerts", "test", "webhook"])
                .status
                .success()
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tests = |sink: &AlertSink| {
        let hooks = sink.hooks();
        let text = |h: &serde_json::Value| h["content"].as_str().unwrap_or("").to_string();
        hooks
            .iter()
            .filter(|h| text(h).contains("memd test alert"))
            .count()
    };
    assert_eq!(tests(&sink), 0);
    sink.set_down(false);
    wait_for(
        "the webhook delivered after it came back",
        Duration::from_secs(10),
        async || tests(&sink) == 1,
    )
    .await;
    let hooks = sink.hooks();
    let batch = hooks
        .iter()
        .filter_map(|h| h["content"].as_str())
        .find(|t| t.contains("memd test alert"))
        .unwrap();
    // (memd's start after the restart may still have been waiting for the webhook too.)
    assert!(batch.contains(" alerts\n\n"), "{batch}");
    assert_eq!(batch.matches("memd test alert").count(), 3, "{batch}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_commands_only_from_known_chats_and_stopentry_all_reaches_every_bot() {
    let sink = AlertSink::start().await;
    let (daemon, _) = daemon_with(&sink, json!({}));
    let client = daemon.client().await;
    for id in [MACD_HUNTER, AGGRESSIVE_RSI] {
        client
            .call::<method::Deploy>(dry_run_on_port(sid(id), free_port()))
            .await
            .unwrap();
    }
    sink.wait_sent(Duration::from_secs(10), |s| {
        count(s, CHAT, "memd started") == 1
    })
    .await;
    // A stranger: nothing answered, nothing done.
    sink.push_message(STRANGER, "/stopentry all");
    sink.push_message(STRANGER, "/confirm");
    // A chat without control: refused.
    sink.push_message(CHAT, "/stopentry all");
    sink.push_message(CHAT, "/bots");
    let sent = sink
        .wait_sent(Duration::from_secs(10), |s| {
            count(s, CHAT, "Aggressive RSI") >= 1
        })
        .await;
    assert_eq!(count(&sent, STRANGER, ""), 0);
    assert_eq!(count(&sent, CHAT, "may not control"), 1, "{sent:?}");
    for d in active_deployments(&client).await {
        assert_ne!(d.stats.bot_state.as_deref(), Some("paused"));
    }
    assert!(
        daemon
            .stderr()
            .matches("not in [alerts.telegram] chat_ids")
            .count()
            == 1
    );

    sink.push_message(CONTROL_CHAT, "/stopentry all");
    let sent = sink
        .wait_sent(Duration::from_secs(10), |s| {
            count(s, CONTROL_CHAT, "/confirm") >= 1
        })
        .await;
    assert_eq!(count(&sent, CONTROL_CHAT, "2 bot(s)"), 1, "{sent:?}");
    sink.push_message(CONTROL_CHAT, "/confirm");
    let sent = sink
        .wait_sent(Duration::from_secs(10), |s| {
            count(s, CONTROL_CHAT, ": done") >= 1
        })
        .await;
    let reply = sent
        .iter()
        .rev()
        .find(|s| s.chat_id == CONTROL_CHAT)
        .unwrap();
    assert_eq!(reply.text.matches(": done").count(), 2, "{}", reply.text);
    wait_for("both bots paused", Duration::from_secs(10), async || {
        let all = active_deployments(&client).await;
        all.len() == 2
            && all
                .iter()
                .all(|d| d.stats.bot_state.as_deref() == Some("paused"))
    })
    .await;
    // Each bot's pause is in the audit of actions, as the control chat's.
    let log = client
        .call::<mem_protocol::methods::method::AuditActions>(mem_protocol::audit::ActionsParams {
            action: Some("strategies.stopentry".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(log.entries.len(), 2, "{log:?}");
    for entry in &log.entries {
        assert_eq!(
            entry.client.as_deref(),
            Some(format!("telegram chat {CONTROL_CHAT}").as_str())
        );
        assert_eq!(entry.outcome, mem_protocol::audit::ActionOutcome::Ok);
    }
}

/// 300 hourly candles of `TST/USDT` whose newest closed two days ago: market data, not
/// the shipped demo, and stale (3 candles of an hour).
fn write_stale_reference(market: &Path) {
    let mut text = String::from("date,open,high,low,close,volume\n");
    let hour = 3_600_000i64;
    let last = chrono::Utc::now().timestamp_millis().div_euclid(hour) * hour - 48 * hour;
    let mut close: f64 = 100.0;
    for i in 0..300i64 {
        let open = close;
        close *= 1.0 + 0.004 * ((i as f64) * 0.7).sin();
        let (high, low) = (open.max(close) * 1.002, open.min(close) * 0.998);
        text.push_str(&format!(
            "{},{open},{high},{low},{close},{}\n",
            last - (299 - i) * hour,
            1000 + i % 13
        ));
    }
    std::fs::write(market.join("TST_USDT-1h.csv"), text).unwrap();
}

/// `[market]` on a directory of stale market data (see [`write_stale_reference`]).
fn stale_market(root: &Path) -> String {
    let market = root.join("market");
    std::fs::create_dir_all(&market).unwrap();
    write_stale_reference(&market);
    format!(
        "[market]\ndata_dir = {:?}\nreference_pair = \"TST/USDT\"\n[market.refresh]\npairs = [\"TST/USDT\"]\n",
        market.display().to_string()
    )
}

/// Runs `data_refresh` now and waits for it: it fails (the fake bot is no Freqtrade).
async fn failing_refresh(client: &mem_protocol::Client) {
    let run = client
        .call::<method::JobsRun>(mem_protocol::jobs::RunJobParams {
            name: "data_refresh".into(),
            wait: true,
        })
        .await
        .unwrap()
        .run
        .unwrap();
    assert_eq!(
        run.outcome,
        mem_protocol::jobs::JobOutcome::Failed,
        "{run:?}"
    );
}

/// A backtest that cannot run (the fake bot is no Freqtrade): a failed queue job.
fn failing_backtest(daemon: &Daemon) {
    let out = daemon.memctl(&["backtest", MACD_HUNTER, "--days", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", mem_e2e::describe(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_and_stale_data_alert_once_each_however_often_inside_the_window() {
    let sink = AlertSink::start().await;
    let (mut daemon, config) = daemon_with_overrides(&sink, json!({"fake_bot": {}}), stale_market);
    let client = daemon.client().await;

    // The refresh fails: its failure, and the market data it left stale.
    failing_refresh(&client).await;
    let sent = sink
        .wait_sent(Duration::from_secs(15), |s| {
            count(s, CHAT, "Job data_refresh failed") >= 1
                && count(s, CHAT, "Market data are stale") >= 1
        })
        .await;
    assert_eq!(count(&sent, CHAT, "Job data_refresh failed"), 1, "{sent:?}");
    let stale: Vec<_> = sent
        .iter()
        .filter(|s| s.chat_id == CHAT && s.text.contains("Market data are stale"))
        .collect();
    assert_eq!(stale.len(), 1, "{sent:?}");
    assert!(
        stale[0].text.contains("(47h "),
        "the newest candle's age is said: {}",
        stale[0].text
    );

    // The same conditions again inside the window: no new message. A failed backtest,
    // raised after them on the same bus, marks when they would have been sent.
    failing_refresh(&client).await;
    failing_backtest(&daemon);
    let sent = sink
        .wait_sent(Duration::from_secs(15), |s| {
            count(s, CHAT, "Backtest of") >= 1
        })
        .await;
    assert_eq!(count(&sent, CHAT, "Backtest of"), 1, "{sent:?}");
    assert_eq!(count(&sent, CHAT, "Job data_refresh failed"), 1, "{sent:?}");
    assert_eq!(count(&sent, CHAT, "Market data are stale"), 1, "{sent:?}");
    assert_eq!(
        count(&sent, CONTROL_CHAT, "Job data_refresh failed"),
        1,
        "every chat once"
    );
    // The webhook's task runs beside Telegram's: it may be a moment behind.
    wait_for(
        "the webhook's copies",
        Duration::from_secs(10),
        async || {
            sink.hooks()
                .iter()
                .any(|h| h["content"].as_str().unwrap_or("").contains("Backtest of"))
        },
    )
    .await;
    let hooks = sink.hooks();
    for needle in [
        "Job data_refresh failed",
        "Market data are stale",
        "Backtest of",
    ] {
        let n = hooks
            .iter()
            .filter(|h| h["content"].as_str().unwrap_or("").contains(needle))
            .count();
        assert_eq!(n, 1, "{needle}: {hooks:?}");
    }

    // A restart inside the window (the windows are in alerts/dedup.json): the same
    // failures again send nothing; the daemon's start is news each time.
    drop(client);
    daemon.restart_with_config(Signal::SIGTERM, &config);
    let client = daemon.client().await;
    failing_refresh(&client).await;
    failing_backtest(&daemon);
    let sent = sink
        .wait_sent(Duration::from_secs(15), |s| {
            count(s, CHAT, "Backtest of") >= 2
        })
        .await;
    assert_eq!(count(&sent, CHAT, "Backtest of"), 2, "{sent:?}");
    assert_eq!(count(&sent, CHAT, "Job data_refresh failed"), 1, "{sent:?}");
    assert_eq!(count(&sent, CHAT, "Market data are stale"), 1, "{sent:?}");
    assert_eq!(count(&sent, CHAT, "memd started"), 2, "{sent:?}");
    assert_eq!(count(&sent, CHAT, "memd is stopping"), 1, "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_bot_starting_and_stopping_alerts_once_each() {
    let sink = AlertSink::start().await;
    let (daemon, _) = daemon_with_overrides(
        &sink,
        json!({"fake_bot": {}, "exchange": {"key": "e2e-key-live", "secret": "e2e-secret-live"}}),
        |_| String::new(),
    );
    let client = daemon.client().await;
    // A dry run starting and stopping says nothing (its events are on the bus before the
    // live bot's: when the live bot's alert is in, they were read).
    let dry = client
        .call::<method::Deploy>(dry_run_on_port(sid(AGGRESSIVE_RSI), free_port()))
        .await
        .unwrap();
    wait_for("the dry run to run", Duration::from_secs(15), async || {
        active_deployments(&client)
            .await
            .iter()
            .any(|d| d.deployment_id == dry.deployment_id && d.status == DeploymentStatus::Running)
    })
    .await;
    client
        .call::<method::Stop>(mem_e2e::deployments::stop_now(sid(AGGRESSIVE_RSI)))
        .await
        .unwrap();
    // Live needs the strategy's permission (and the exchange keys above).
    client
        .call::<method::StrategiesUpdate>(mem_protocol::registry::UpdateParams {
            id: sid(MACD_HUNTER),
            patch: json!({"deployment": {"allow_live": true}}),
            reason: Some("the alerts test trades live on a fake bot".into()),
        })
        .await
        .unwrap();
    let live = client
        .call::<method::Deploy>(mem_protocol::deploy::DeployParams {
            dry_run: false,
            ..dry_run_on_port(sid(MACD_HUNTER), free_port())
        })
        .await
        .unwrap();
    assert!(!live.dry_run);
    let sent = sink
        .wait_sent(Duration::from_secs(15), |s| {
            count(s, CHAT, "Live bot Freqtrade MACD Hunter started") >= 1
        })
        .await;
    let started: Vec<_> = sent
        .iter()
        .filter(|s| s.chat_id == CHAT && s.text.contains("Live bot"))
        .collect();
    assert_eq!(started.len(), 1, "{sent:?}");
    assert!(
        started[0].text.contains(&live.deployment_id.to_string()),
        "{}",
        started[0].text
    );
    client
        .call::<method::Stop>(mem_e2e::deployments::stop_now(sid(MACD_HUNTER)))
        .await
        .unwrap();
    let sent = sink
        .wait_sent(Duration::from_secs(15), |s| {
            count(s, CHAT, "Live bot Freqtrade MACD Hunter stopped") >= 1
        })
        .await;
    assert_eq!(
        count(&sent, CHAT, "Live bot Freqtrade MACD Hunter stopped"),
        1,
        "{sent:?}"
    );
    assert_eq!(count(&sent, CHAT, "Live bot"), 2, "{sent:?}");
    assert_eq!(
        count(&sent, CHAT, "Aggressive RSI"),
        0,
        "a dry run starting and stopping says nothing: {sent:?}"
    );
}
