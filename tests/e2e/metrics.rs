//! MEM metrics through the real daemon: `mem.metrics` on the socket, `memctl metrics` and
//! the Prometheus text at `/metrics` on the HTTP listener, all at rest after the start and
//! moving after a native MEM strategy replays the shipped ETH/BTC candles with a trained
//! model (decisions per hour, prediction and enhancement latency, the win rate over 24 h),
//! after a `mem.enhance` over the socket, and after a memory file is reloaded; with a
//! (fake) Freqtrade bot deployed, its poll latency appears, labelled, and goes with it.

use mem_e2e::deployments::{dry_run, newest_deployment, stop_now};
use mem_e2e::seed::{MACD_HUNTER, NATIVE_RSI, preferred_ports, sid};
use mem_e2e::{Daemon, describe, wait_for};
use mem_protocol::Client;
use mem_protocol::deploy::*;
use mem_protocol::mem::MemMetrics;
use mem_protocol::methods::{NoParams, method};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A daemon with the HTTP API on a free loopback port, the fake bot as its Freqtrade.
struct Api {
    daemon: Daemon,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn start() -> Api {
        let (daemon, base) = mem_e2e::start_with_http(|dir, http| {
            mem_e2e::fake_freqtrade_config(
                dir,
                json!({"fake_bot": {}}),
                "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nport_range = [19500, 19599]",
                http,
            )
        });
        let token = mem_e2e::http_token(&daemon, &["--view"]);
        Api {
            daemon,
            base,
            token,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// `GET /metrics` with the (view-only) token: the content type and the text.
    async fn scrape(&self) -> (String, String) {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (content_type, response.text().await.unwrap())
    }

    /// The scrape, checked line by line, as series -> value.
    async fn samples(&self) -> Samples {
        let (content_type, text) = self.scrape().await;
        assert_eq!(content_type, CONTENT_TYPE);
        parse_exposition(&text)
    }
}

/// Series (`name{k="v",...}` as written) -> value.
type Samples = BTreeMap<String, f64>;

/// Reads the text exposition format 0.0.4 strictly: every line is `# HELP name text`,
/// `# TYPE name kind` (once per family, before its samples) or `name{labels} value`, names
/// and label names are valid, label values quoted with `\\`, `\"` and `\n` escapes only,
/// values Go floats; the text ends with a line feed.
fn parse_exposition(text: &str) -> Samples {
    fn valid_name(name: &str, colon: bool) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    assert!(text.ends_with('\n'), "no final line feed: {text}");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_samples_of: Vec<String> = Vec::new();
    let mut samples = Samples::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(valid_name(name, true), "{line}");
            assert!(!help.is_empty(), "an empty HELP: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "a second TYPE: {line}"
            );
            assert!(
                !seen_samples_of.contains(&name.to_string()),
                "TYPE after samples: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        // name, then optional {labels}, then a space and the value.
        let name_end = line.find(['{', ' ']).expect(line);
        let name = &line[..name_end];
        assert!(valid_name(name, true), "{line}");
        let mut rest = &line[name_end..];
        let mut series = name.to_string();
        if rest.starts_with('{') {
            let bytes = rest.as_bytes();
            let mut labels = Vec::new();
            let mut i = 1;
            while bytes[i] != b'}' {
                let eq = i + rest[i..].find('=').expect(line);
                let label = &rest[i..eq];
                assert!(valid_name(label, false), "label {label:?}: {line}");
                assert_eq!(bytes[eq + 1], b'"', "{line}");
                let mut value = String::new();
                let mut j = eq + 2;
                loop {
                    match bytes[j] {
                        b'\\' => {
                            match bytes[j + 1] {
                                b'\\' => value.push('\\'),
                                b'"' => value.push('"'),
                                b'n' => value.push('\n'),
                                other => panic!("bad escape \\{}: {line}", other as char),
                            }
                            j += 2;
                        }
                        b'"' => break,
                        _ => {
                            let c = rest[j..].chars().next().unwrap();
                            value.push(c);
                            j += c.len_utf8();
                        }
                    }
                }
                labels.push(format!("{label}={value:?}"));
                j += 1; // the closing quote
                if bytes[j] == b',' {
                    j += 1;
                }
                i = j;
            }
            series.push('{');
            series.push_str(&labels.join(","));
            series.push('}');
            rest = &rest[i + 1..];
        }
        let value = rest.strip_prefix(' ').expect(line);
        let value: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("value {v:?} ({e}): {line}")),
        };
        let family = ["_sum", "_count", "_bucket"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s).filter(|f| {
                    types
                        .get(*f)
                        .is_some_and(|k| k == "summary" || k == "histogram")
                })
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE for {line}");
        seen_samples_of.push(family.to_string());
        assert!(
            samples.insert(series.clone(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

fn get(samples: &Samples, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

/// Milliseconds of `mem.metrics` against seconds of `/metrics`.
fn same_ms(ms: Option<f64>, seconds: f64) {
    let ms = ms.expect("a figure");
    assert!(
        (ms - seconds * 1000.0).abs() <= 1e-9 * ms.abs().max(1.0),
        "{ms} ms vs {seconds} s"
    );
}

async fn metrics(client: &Client) -> MemMetrics {
    client
        .call::<method::MemMetrics>(NoParams {})
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_move_after_a_native_replay_on_the_socket_memctl_and_prometheus() {
    let started = Instant::now();
    let api = Api::start();
    let daemon = &api.daemon;
    let client = daemon.client().await;

    // At rest: nothing decided, enhanced or predicted; the memory's load at start counted.
    let m = metrics(&client).await;
    assert_eq!(
        (m.decisions_per_hour, m.decisions_total, m.outcomes_total),
        (0, 0, 0)
    );
    assert_eq!((m.closed_24h, m.wins_24h, m.win_rate_24h), (0, 0, None));
    for l in [&m.prediction_latency_ms, &m.enhancement_time_ms] {
        assert_eq!((l.count, l.total_count, l.avg, l.p99), (0, 0, None, None));
    }
    assert_eq!(m.memory_load_ms.total_count, 1, "{m:?}");
    assert!(m.memory_load_ms.last.unwrap() > 0.0, "{m:?}");
    assert_eq!(
        (m.learned_strategies.active, m.learned_strategies.deprecated),
        (0, 0)
    );
    assert!(m.bot_polls.is_empty() && m.window_secs == 3600, "{m:?}");
    let s = api.samples().await;
    assert_eq!(get(&s, "memd_up"), 1.0);
    assert_eq!(get(&s, "memd_decisions_last_hour"), 0.0);
    assert_eq!(get(&s, "memd_enhancement_seconds_count"), 0.0);
    assert!(get(&s, "memd_enhancement_seconds{quantile=\"0.99\"}").is_nan());
    assert!(!s.contains_key("memd_win_rate_24h"), "no outcome yet");
    assert_eq!(get(&s, "memd_memory_load_seconds_count"), 1.0);
    assert!(get(&s, "memd_strategies") >= 11.0);
    // Without a token, as every endpoint: 401.
    let response = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // A model, so that enhancement predicts; then a native MEM strategy replays 20 days.
    mem_e2e::model::train_on_eth_btc(&client, 6).await;
    let trained = Instant::now();
    let out = daemon.memctl(&[
        "deploy",
        NATIVE_RSI,
        "--replay",
        "ETH_BTC-5m.feather",
        "--pair",
        "ETH/BTC",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let mut done = None;
    wait_for(
        "the replay to finish",
        Duration::from_secs(60),
        async || {
            done = newest_deployment(&client, sid(NATIVE_RSI))
                .await
                .filter(|d| d.status == DeploymentStatus::Stopped);
            done.is_some()
        },
    )
    .await;
    let replayed = Instant::now();
    let trades = done.unwrap().stats.closed_trades;
    assert!(trades >= 10, "{trades}");

    // Moving: one decision and one outcome per trade, in the last hour and the last day.
    let m = metrics(&client).await;
    assert_eq!(
        (m.decisions_per_hour, m.decisions_total, m.outcomes_total),
        (trades, trades, trades),
        "{m:#?}"
    );
    assert_eq!(m.closed_24h, trades);
    let rate = m.win_rate_24h.expect("a win rate");
    assert!((rate - m.wins_24h as f64 / trades as f64).abs() < 1e-12);
    // Every entry was enhanced (those under the learned threshold too), with a prediction
    // once the model's features are warm.
    let (e, p) = (&m.enhancement_time_ms, &m.prediction_latency_ms);
    assert!(e.count >= trades && e.count == e.total_count, "{e:?}");
    assert!(p.count > 0 && p.count <= e.count, "{p:?} {e:?}");
    for l in [e, p] {
        let (avg, p50, p99, max) = (
            l.avg.unwrap(),
            l.p50.unwrap(),
            l.p99.unwrap(),
            l.max.unwrap(),
        );
        assert!(avg > 0.0 && p50 > 0.0 && p50 <= p99 && p99 <= max, "{l:?}");
        assert!(max < 1000.0, "an enhancement of a second? {l:?}");
        assert!((l.total_ms / l.total_count as f64 - avg).abs() < 1e-9 * avg.max(1.0));
    }
    eprintln!(
        "after the replay ({trades} trades): {}",
        serde_json::to_string_pretty(&m).unwrap()
    );

    // `mem.enhance` over the socket predicts from the symbol's candles and enhances.
    client
        .call_value(
            "mem.enhance",
            json!({"signal": {"strategy": "native_rsi", "symbol": "ETH/BTC", "action": "BUY", "confidence": 0.7}}),
        )
        .await
        .unwrap();
    let m = metrics(&client).await;
    assert_eq!(m.enhancement_time_ms.total_count, e.total_count + 1);
    assert_eq!(m.prediction_latency_ms.total_count, p.total_count + 1);

    // memctl metrics --json is the same answer; the table names the figures.
    let out = daemon.memctl(&["metrics", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let cli: MemMetrics = serde_json::from_slice(&out.stdout).unwrap();
    let strip = |m: &MemMetrics| {
        let mut v = serde_json::to_value(m).unwrap();
        v.as_object_mut().unwrap().remove("at");
        v.as_object_mut().unwrap().remove("uptimeSecs");
        v
    };
    assert_eq!(strip(&cli), strip(&m));
    let out = daemon.memctl(&["metrics"]);
    assert!(out.status.success(), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    for needle in [
        format!("decisions     {trades} in the last hour"),
        "ML prediction".to_string(),
        "enhancement".to_string(),
        "memory load".to_string(),
        format!(
            "{:.1}% ({} won of {} closed)",
            rate * 100.0,
            m.wins_24h,
            trades
        ),
        "no Freqtrade bot running".to_string(),
    ] {
        assert!(table.contains(&needle), "{needle:?} in:\n{table}");
    }

    // /metrics: the same figures, seconds for milliseconds. memd reloads the memory files
    // it wrote after the replay (the watcher, a moment later: a `memory load` sample), so
    // the two are compared at a moment when mem.metrics did not move during the scrape.
    let (m, s) = {
        let mut tries = 0;
        loop {
            let before = metrics(&client).await;
            let s = api.samples().await;
            let after = metrics(&client).await;
            let moved = |l: fn(&MemMetrics) -> u64| l(&before) != l(&after);
            if !(moved(|m| m.memory_load_ms.total_count)
                || moved(|m| m.enhancement_time_ms.total_count)
                || moved(|m| m.prediction_latency_ms.total_count))
            {
                break (after, s);
            }
            tries += 1;
            assert!(
                tries < 50,
                "mem.metrics keeps moving: {before:#?} then {after:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(
        get(&s, "memd_decisions_last_hour"),
        m.decisions_per_hour as f64
    );
    assert_eq!(get(&s, "memd_decisions_total"), m.decisions_total as f64);
    assert_eq!(get(&s, "memd_outcomes_total"), m.outcomes_total as f64);
    assert_eq!(get(&s, "memd_closed_decisions_24h"), m.closed_24h as f64);
    assert_eq!(get(&s, "memd_won_decisions_24h"), m.wins_24h as f64);
    assert_eq!(get(&s, "memd_win_rate_24h"), rate);
    for (family, l) in [
        ("memd_enhancement_seconds", &m.enhancement_time_ms),
        ("memd_prediction_seconds", &m.prediction_latency_ms),
        ("memd_memory_load_seconds", &m.memory_load_ms),
    ] {
        same_ms(l.p99, get(&s, &format!("{family}{{quantile=\"0.99\"}}")));
        same_ms(l.p50, get(&s, &format!("{family}{{quantile=\"0.5\"}}")));
        same_ms(Some(l.total_ms), get(&s, &format!("{family}_sum")));
        assert_eq!(
            get(&s, &format!("{family}_count")),
            l.total_count as f64,
            "{family}"
        );
    }
    for (status, n) in [
        ("active", m.learned_strategies.active),
        ("deprecated", m.learned_strategies.deprecated),
    ] {
        assert_eq!(
            get(
                &s,
                &format!("memd_learned_strategies{{status=\"{status}\"}}")
            ),
            n as f64
        );
    }
    assert_eq!(get(&s, "memd_deployments_active"), 0.0);

    // A memory file rewritten (as a hand edit would) is reloaded, and the reload counted.
    let loads = m.memory_load_ms.total_count;
    let path = daemon.data_dir.join("mem_knowledge/parameter_updates.json");
    let content = std::fs::read(&path).unwrap_or_else(|_| b"{}".to_vec());
    std::fs::write(&path, content).unwrap();
    wait_for(
        "the reload to be counted",
        Duration::from_secs(10),
        async || metrics(&client).await.memory_load_ms.total_count > loads,
    )
    .await;
    let m = metrics(&client).await;
    assert!(m.memory_load_ms.last.unwrap() > 0.0 && m.memory_load_ms.count > loads);
    eprintln!(
        "timings: start + training {:.1} s, replay {:.1} s, the rest {:.1} s",
        (trained - started).as_secs_f64(),
        (replayed - trained).as_secs_f64(),
        replayed.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freqtrade_bots_poll_latency_appears_labelled_and_goes_with_the_bot() {
    let _ports = preferred_ports().await;
    let api = Api::start();
    let client = api.daemon.client().await;
    let deployed = client
        .call::<method::Deploy>(dry_run(sid(MACD_HUNTER)))
        .await
        .unwrap();
    assert_eq!(deployed.status, DeploymentStatus::Running);

    // A poll every 0.3 s: a few are timed.
    let mut m = None;
    wait_for("polls of the bot", Duration::from_secs(15), async || {
        let now = metrics(&client).await;
        let enough = now.bot_polls.iter().any(|b| b.poll_latency_ms.count >= 3);
        m = Some(now);
        enough
    })
    .await;
    let m = m.unwrap();
    assert_eq!(m.bot_polls.len(), 1, "{m:?}");
    let b = &m.bot_polls[0];
    assert_eq!(b.deployment_id, deployed.deployment_id);
    assert_eq!(b.strategy_id, sid(MACD_HUNTER));
    assert_eq!(b.strategy_name, deployed.strategy_name);
    let l = &b.poll_latency_ms;
    let (avg, p99) = (l.avg.unwrap(), l.p99.unwrap());
    assert!(avg > 0.0 && p99 >= avg * 0.5 && p99 < 5000.0, "{l:?}");
    assert_eq!(b.failed_polls, 0, "{b:?}");
    eprintln!("bot polls: {}", serde_json::to_string(b).unwrap());

    let s = api.samples().await;
    let labels = format!(
        "{{deployment={:?},strategy={:?}",
        deployed.deployment_id.to_string(),
        deployed.strategy_name
    );
    assert!(get(&s, &format!("memd_bot_poll_seconds_count{labels}}}")) >= 3.0);
    assert!(
        get(
            &s,
            &format!("memd_bot_poll_seconds{labels},quantile=\"0.99\"}}")
        ) > 0.0
    );
    assert_eq!(
        get(&s, &format!("memd_bot_poll_failures_total{labels}}}")),
        0.0
    );
    assert_eq!(get(&s, "memd_deployments_active"), 1.0);
    let out = api.daemon.memctl(&["metrics"]);
    assert!(out.status.success(), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.contains(&deployed.strategy_name), "{table}");

    // Stopped: its figures go (no series left behind for a bot that is not there).
    client
        .call::<method::Stop>(stop_now(sid(MACD_HUNTER)))
        .await
        .unwrap();
    assert!(metrics(&client).await.bot_polls.is_empty());
    let s = api.samples().await;
    assert!(!s.keys().any(|k| k.starts_with("memd_bot_poll")), "{s:#?}");
}
