//! `alert_load`: how long an alert takes to reach Telegram when 50 bots change state at
//! once (issue 25's bar: from the event to the request reaching the local Telegram
//! stand-in, p99 under 500 ms with 50 bots).
//!
//! Starts the real memd with the fake Freqtrade as its bots (`max_restarts = 0`: a bot
//! that dies is failed at once, one `bot_failed` alert each) and `[alerts.telegram]`
//! pointed at the local Bot API stand-in ([`mem_e2e::alert_sink`]); deploys N bots, waits
//! until each is polled, then SIGKILLs every bot process in one go. For each bot it takes
//! the time of memd's `deployment.changed` event that marks it failed (the event's `at`),
//! the moment the tool killed the bots, and the moment the stand-in received the
//! `sendMessage` that names it (several alerts may share a message: memd batches what
//! waits for a chat). Each run deploys the bots anew; the figures are over every run.
//!
//! ```sh
//! cargo build --release -p memd --bin memd -p mem-e2e --bin fake_freqtrade --bin alert_load
//! target/release/alert_load --bots 50 --runs 3
//! ```
//!
//! Options: `--bots N` (50), `--runs N` (3), `--poll-ms N` (the supervisor's poll, 500:
//! how soon a dead bot is seen; it is not part of the event-to-request figure),
//! `--rate-per-minute N` (`[alerts] rate_limit_per_minute`, the default 20), `--gap S`
//! (the wait before each run after the first, 61: the rate limit counts messages over a
//! minute, so back-to-back runs would measure its wait, not the burst), `--timeout S` (a
//! run's wait for every alert, 300).

use chrono::{DateTime, Utc};
use mem_e2e::alert_sink::AlertSink;
use mem_e2e::measure::{median, percentile};
use mem_protocol::alerts::AlertDelivery;
use mem_protocol::deploy::{DeploymentStatus, StopAllParams};
use mem_protocol::methods::method;
use mem_protocol::{Client, ClientOptions, Event, Topic};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TOKEN: &str = "1000:alert-load";
const CHAT: i64 = 4242;
const BAR_MS: f64 = 500.0;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

fn summary(name: &str, samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let (p50, p99) = (median(samples), percentile(samples, 99.0));
    println!(
        "{name}: n {}, median {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        samples.len(),
        samples.last().copied().unwrap_or(f64::NAN)
    );
    (p50, p99)
}

#[tokio::main]
async fn main() {
    let bots = arg("--bots", 50) as usize;
    let runs = arg("--runs", 3) as usize;
    let poll_ms = arg("--poll-ms", 500);
    let rate = arg("--rate-per-minute", 20);
    let timeout = Duration::from_secs(arg("--timeout", 300));
    let gap = Duration::from_secs(arg("--gap", 61));
    let sink = AlertSink::start().await;
    let root = tempfile::tempdir().unwrap();
    let extra = format!(
        "poll_interval_secs = {}\nmax_restarts = 0\nready_timeout_secs = 60\n\
         [alerts]\nrate_limit_per_minute = {rate}\ndaily_summary_at = \"\"\n\
         [alerts.telegram]\nbot_token = {TOKEN:?}\nchat_ids = [{CHAT}]\ncommands = false\napi_base = {:?}\n",
        poll_ms as f64 / 1000.0,
        sink.api_base()
    );
    let (mut daemon, socket) =
        mem_e2e::measure::spawn_memd_with_fake_bots(root.path(), json!({}), (21000, 21999), &extra);
    let client = loop {
        if let Ok(c) = Client::connect(&socket, ClientOptions::default()).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, mut events) = client.subscribe(vec![Topic::Deployments]).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..bots {
        let doc = mem_e2e::measure::load_bot_strategy(&format!("load_bot_{i}"));
        let detail = client
            .call::<method::StrategiesRegister>(mem_protocol::registry::RegisterParams {
                strategy: doc,
                status: None,
            })
            .await
            .expect("register a load bot");
        ids.push(detail.summary.id);
    }
    println!(
        "memd with {bots} fake bots per run, {runs} run(s) {} s apart; poll {poll_ms} ms; Telegram rate limit {rate}/min",
        gap.as_secs()
    );
    let (mut from_event, mut from_kill) = (Vec::new(), Vec::new());
    // The two halves of event -> stand-in: memd's rules to the outbox (the alert's
    // `raisedAt` in the history), and the outbox to the stand-in.
    let (mut to_raise, mut to_send) = (Vec::new(), Vec::new());
    let mut messages = Vec::new();
    for run in 1..=runs {
        if run > 1 && gap > Duration::ZERO {
            // The last run's messages leave the rate limit's minute first: each run is a
            // burst of its own, as fifty bots failing at once would be.
            tokio::time::sleep(gap).await;
        }
        for id in &ids {
            client
                .call::<method::Deploy>(mem_e2e::deployments::dry_run(*id))
                .await
                .expect("deploy a load bot");
        }
        // Every bot running and polled once: alive, watched.
        let settle = Instant::now();
        let pids = loop {
            let deployed = client
                .call::<method::Deployed>(Default::default())
                .await
                .unwrap()
                .deployments;
            let ready: Vec<u32> = deployed
                .iter()
                .filter(|d| d.status == DeploymentStatus::Running && d.stats.polled_at.is_some())
                .filter_map(|d| d.process_id)
                .collect();
            if ready.len() == bots {
                break ready;
            }
            assert!(
                settle.elapsed() < Duration::from_secs(120),
                "only {} of {bots} bots ran in 2 minutes",
                ready.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // Quiet: no alert still on its way.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let base = sink.sent().len();
        let killed_at = Utc::now();
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // memd's event for each bot's failure; the stand-in's message naming it.
        let mut failed_at: HashMap<String, DateTime<Utc>> = HashMap::new();
        let mut received: HashMap<String, DateTime<Utc>> = HashMap::new();
        let until = Instant::now() + timeout;
        while (failed_at.len() < bots || received.len() < bots) && Instant::now() < until {
            // Every event that is in, then a short wait for more.
            let mut wait = Duration::from_millis(20);
            while let Ok(Some(m)) = tokio::time::timeout(wait, events.next()).await {
                wait = Duration::ZERO;
                if let Event::DeploymentChanged(c) = &m.event {
                    let d = &c.deployment;
                    if d.status == DeploymentStatus::Failed {
                        failed_at.entry(d.strategy_name.clone()).or_insert(m.at);
                    }
                }
            }
            for sent in &sink.sent()[base..] {
                for i in 0..bots {
                    let name = format!("load bot {i}");
                    if sent.text.contains(&format!("Bot {name} failed")) {
                        received.entry(name).or_insert(sent.received);
                    }
                }
            }
        }
        let raised_at: HashMap<String, DateTime<Utc>> =
            std::fs::read_to_string(root.path().join("data/alerts/history.jsonl"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<AlertDelivery>(l).ok())
                .filter(|d| d.raised_at >= killed_at && d.target.starts_with("telegram"))
                .filter_map(|d| {
                    let name = d.title.strip_prefix("Bot ")?.strip_suffix(" failed")?;
                    Some((name.to_string(), d.raised_at))
                })
                .collect();
        for (name, got) in &received {
            if let (Some(event), Some(raised)) = (failed_at.get(name), raised_at.get(name)) {
                to_raise.push(ms(*raised - *event));
                to_send.push(ms(*got - *raised));
            }
        }
        let sent_now = sink.sent().len() - base;
        messages.push(sent_now);
        let mut run_event = Vec::new();
        for (name, got) in &received {
            if let Some(at) = failed_at.get(name) {
                run_event.push(ms(*got - *at));
            }
            from_kill.push(ms(*got - killed_at));
        }
        println!(
            "run {run}: {} failures seen, {} alerts received in {sent_now} message(s); last alert {:.0} ms after the kill",
            failed_at.len(),
            received.len(),
            received
                .values()
                .map(|t| ms(*t - killed_at))
                .fold(0.0, f64::max)
        );
        from_event.extend(run_event);
    }
    println!();
    let (_, p99) = summary(
        "event -> Telegram stand-in (memd's deployment.changed `at` to the request)",
        &mut from_event,
    );
    summary(
        "  of it: event -> raised (rules, dedup, outbox)",
        &mut to_raise,
    );
    summary(
        "  of it: raised -> Telegram stand-in (delivery)",
        &mut to_send,
    );
    summary(
        "kill -> Telegram stand-in (includes noticing the death: up to one poll)",
        &mut from_kill,
    );
    println!(
        "messages per run: {messages:?}; bar p99 < {BAR_MS} ms from the event: {}",
        if p99 < BAR_MS { "PASS" } else { "MISS" }
    );
    let _ = client
        .call_with_timeout::<method::StopAll>(StopAllParams::default(), Duration::from_secs(120))
        .await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
}
