//! Alerts (issue 25) through the real memd: a local Telegram Bot API stand-in and a
//! webhook receiver on 127.0.0.1 ([`mem_e2e::alert_sink`]) in place of Telegram and
//! Discord. A bot crashing past its restarts alerts once per condition; a channel that
//! is down gets the alert once it is back; an alert raised just before memd is SIGKILLed
//! is delivered after the restart; Telegram commands from an unknown chat do nothing,
//! and `/stopentry all` from a control chat, confirmed, reaches every bot. The bot token
//! appears in no log or memctl output.

use mem_e2e::alert_sink::AlertSink;
use mem_e2e::deployments::{active_deployments, dry_run_on_port};
use mem_e2e::seed::{AGGRESSIVE_RSI, MACD_HUNTER, sid};
use mem_e2e::{Daemon, free_port, wait_for};
use mem_protocol::methods::method;
use nix::sys::signal::Signal;
use serde_json::json;
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
    let root = tempfile::tempdir().unwrap();
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({ "fake_bot": fake_bot }),
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nunresponsive_limit_secs = 3\nmax_restarts = 2\nport_range = [19800, 19899]",
        &alerts_section(sink),
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
    sink.set_down(false);
    let sent = sink
        .wait_sent(Duration::from_secs(15), |s| {
            count(s, CHAT, "memd test alert") >= 1 && count(s, CONTROL_CHAT, "memd test alert") >= 1
        })
        .await;
    assert_eq!(count(&sent, CHAT, "memd test alert"), 1, "{sent:?}");
    assert_eq!(count(&sent, CONTROL_CHAT, "memd test alert"), 1, "{sent:?}");

    // The channel down while memd runs: retried with backoff, delivered once it is back.
    sink.set_down(true);
    assert!(
        daemon
            .memctl(&["alerts", "test", "webhook"])
            .status
            .success()
    );
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
}
