//! Scheduled jobs end to end, through the real memd and memctl: cron expressions that
//! fire every second or two stand in for the clock (no fake time).
//!
//! - rotation, enabled in a test config, moves its bot to the new top recommendation
//!   when the market turns (the reference pair's candle file is rewritten), leaves a
//!   hand-deployed bot alone, and the history says why; a rotation whose new bot cannot
//!   start (Freqtrade missing) fails and stops nothing;
//! - the regime job deploys only on a change of regime;
//! - retraining promotes, then keeps the current model by the +2 point rule, fails on
//!   missing candles without touching the model, and overlapping runs are skipped;
//! - runs missed while memd was down are reported at start and caught up by policy.
//!
//! Candles: the shipped ETH/BTC 5-minute file (data/market, see its README), moved in
//! time to end now (the jobs act on fresh data only), feeds the native bots; the
//! reference pair is a generated hourly series that trends up or down, ending now.

use mem_e2e::deployments::{active_deployments, dry_run, total_trades};
use mem_e2e::seed::{AGGRESSIVE_RSI, preferred_ports, sid};
use mem_e2e::{Daemon, describe, wait_for};
use mem_protocol::deploy::*;
use mem_protocol::jobs::*;
use mem_protocol::methods::{NoParams, method};
use mem_protocol::registry::RegisterParams;
use mem_protocol::strategy::{StrategyId, StrategyStatus};
use mem_protocol::{Client, ErrorCode, Event, Topic};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Writes 300 hourly candles of `TST/USDT` rising (or falling) about 0.5% an hour with
/// small swings: a trend no reading can miss. The last one closed at the start of this
/// hour: fresh data (the jobs refuse stale conditions).
fn write_reference(market: &Path, rising: bool) {
    let mut text = String::from("date,open,high,low,close,volume\n");
    let mut close: f64 = 100.0;
    let hour = 3_600_000i64;
    let first = chrono::Utc::now().timestamp_millis().div_euclid(hour) * hour - 300 * hour;
    for i in 0..300i64 {
        let step = if rising { 1.005 } else { 0.995 };
        let open = close;
        close *= step * (1.0 + 0.002 * ((i as f64) * 0.7).sin());
        let (high, low) = (open.max(close) * 1.002, open.min(close) * 0.998);
        text.push_str(&format!(
            "{},{open},{high},{low},{close},{}\n",
            first + i * hour,
            1000 + i % 13
        ));
    }
    // Written aside and renamed, as a data feed would: never read half written.
    let tmp = market.join("TST_USDT-1h.csv.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, market.join("TST_USDT-1h.csv")).unwrap();
}

/// A native strategy document: `kind` is the native strategy it runs on ETH/BTC. Its
/// figures come from its live trades ([`register`]).
fn native_strategy(name: &str, category: &str, kind: &str) -> Value {
    json!({
        "schema_version": "1.0.0",
        "strategy": {
            "name": name,
            "display_name": name.replace('_', " "),
            "description": "A native strategy made by the jobs end-to-end test",
            "classification": {"category": category, "tags": ["test"], "asset_classes": ["crypto"]},
            "implementation": {"language": "rust"},
            "parameters": {},
            "mem_integration": {"enabled": true},
            "deployment": {"type": "native", "strategy": kind, "pair": "ETH/BTC", "mode": "follow"}
        }
    })
}

/// A root with a market directory (the shipped ETH/BTC candles, moved to end now, and a
/// rising reference pair) and `xdg-config/memd/memd.toml`, which the daemon reads by
/// default, so a restart keeps the config.
fn setup(schedule: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let market = root.path().join("market");
    std::fs::create_dir_all(&market).unwrap();
    mem_e2e::market::fresh_copy(&market, "ETH_BTC-5m.feather");
    write_reference(&market, true);
    let config_dir = root.path().join("xdg-config/memd");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("memd.toml"),
        format!(
            "seed_default_data = false\n{extra}\n[market]\ndata_dir = {:?}\nreference_pair = \"TST/USDT\"\ntimeframe = \"5m\"\n\n{schedule}",
            market.display().to_string()
        ),
    )
    .unwrap();
    (root, market)
}

fn start(root: tempfile::TempDir) -> Daemon {
    let (socket, data) = (root.path().join("run/memd.sock"), root.path().join("data"));
    Daemon::start_in(root, socket, data, |_| {})
}

/// Registers an active strategy whose live trades won `wins` of 30: a Sharpe ratio above
/// 1, and a win rate of 50% (15: no win-rate points) or 60% (18: the points).
async fn register(client: &Client, doc: Value, wins: usize) -> StrategyId {
    let id = client
        .call::<method::StrategiesRegister>(RegisterParams {
            strategy: doc,
            status: Some(StrategyStatus::Active),
        })
        .await
        .unwrap()
        .summary
        .id;
    mem_e2e::trades::record_live_figures(client, id, wins, 30 - wins).await;
    id
}

async fn history(client: &Client, job: &str) -> Vec<JobRun> {
    client
        .call::<method::JobsHistory>(JobHistoryParams {
            name: Some(job.into()),
            limit: Some(1000),
        })
        .await
        .unwrap()
        .runs
}

/// Waits (up to `secs`) for a run of `job` that `pick` accepts; answers it.
async fn wait_run(
    client: &Client,
    job: &str,
    secs: u64,
    what: &str,
    pick: impl Fn(&JobRun) -> bool,
) -> JobRun {
    let mut found = None;
    wait_for(what, Duration::from_secs(secs), async || {
        found = history(client, job).await.into_iter().find(|r| pick(r));
        found.is_some()
    })
    .await;
    found.unwrap()
}

fn actions(run: &JobRun) -> Vec<(String, String)> {
    run.details["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    (
                        a["action"].as_str().unwrap_or("").to_string(),
                        a["strategyName"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const ROTATION_EVERY_2S: &str = "[schedule.retrain]\nenabled = false\n[schedule.performance_sync]\nenabled = false\n[schedule.learning]\nenabled = false\n[schedule.rotation]\nenabled = true\ncron = \"*/2 * * * * *\"\ndrain_deadline_secs = 5\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_moves_its_bot_to_the_new_top_recommendation_when_the_market_turns() {
    let (root, market) = setup(ROTATION_EVERY_2S, "");
    let daemon = start(root);
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Jobs]).await.unwrap();

    // Bullish: the momentum strategy scores 0.85; the carry ones 0.65.
    let rider = register(
        &client,
        native_strategy("trend_rider", "momentum", "momentum"),
        15,
    )
    .await;
    let carry = register(&client, native_strategy("bear_carry", "carry", "rsi"), 15).await;
    let hand = register(&client, native_strategy("hand_picked", "carry", "macd"), 18).await;
    let out = daemon.memctl(&["deploy", &hand.to_string(), "--json"]);
    assert!(out.status.success(), "{}", describe(&out));

    let first = wait_run(
        &client,
        "rotation",
        30,
        "rotation to deploy trend_rider",
        |r| actions(r).contains(&("deploy".into(), "trend rider".into())),
    )
    .await;
    assert_eq!(first.outcome, JobOutcome::Succeeded, "{first:?}");
    assert!(
        first.summary.starts_with("bullish trend"),
        "{}",
        first.summary
    );
    let bots = active_deployments(&client).await;
    let rider_bot = bots
        .iter()
        .find(|d| d.strategy_id == rider)
        .expect("trend rider runs");
    assert_eq!(rider_bot.started_by, StartedBy::Rotation);
    assert!(rider_bot.dry_run);
    let hand_bot = bots.iter().find(|d| d.strategy_id == hand).unwrap().clone();
    assert_eq!(hand_bot.started_by, StartedBy::Manual);
    // While the market stays, the rotated bot is kept.
    let kept = wait_run(
        &client,
        "rotation",
        20,
        "a rotation that keeps trend_rider",
        |r| r.started_at > first.finished_at,
    )
    .await;
    assert_eq!(
        actions(&kept),
        [("keep".to_string(), "trend rider".to_string())],
        "{kept:?}"
    );

    // The market turns.
    write_reference(&market, false);
    let turned = wait_run(
        &client,
        "rotation",
        30,
        "rotation to move to bear_carry",
        |r| actions(r).contains(&("deploy".into(), "bear carry".into())),
    )
    .await;
    assert_eq!(turned.outcome, JobOutcome::Succeeded, "{turned:?}");
    // The history explains: the conditions, the drained bot's score against the
    // minimum, the new one's, and the hand-deployed one left alone.
    assert!(
        turned.summary.starts_with("bearish trend"),
        "{}",
        turned.summary
    );
    assert!(
        turned
            .summary
            .contains("drain trend rider: no longer recommended enough: 0.65 < 0.80"),
        "{}",
        turned.summary
    );
    assert!(
        turned
            .summary
            .contains("deploy bear carry: recommended at 0.85"),
        "{}",
        turned.summary
    );
    assert!(
        turned
            .summary
            .contains("carry strategy suits bearish trend"),
        "{}",
        turned.summary
    );
    assert!(
        turned
            .summary
            .contains("skip hand picked: recommended at 0.95 but already running, started by hand"),
        "{}",
        turned.summary
    );
    assert_eq!(
        turned.details["conditions"]["trend"], "bearish",
        "{}",
        turned.details
    );
    assert_eq!(turned.details["conditions"]["pair"], "TST/USDT");
    let drained = turned.details["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "drain")
        .unwrap();
    assert!(
        drained["result"].as_str().unwrap().starts_with("stopped"),
        "{drained}"
    );

    let bots = active_deployments(&client).await;
    assert!(
        bots.iter().all(|d| d.strategy_id != rider),
        "trend rider stopped: {bots:?}"
    );
    let carry_bot = bots
        .iter()
        .find(|d| d.strategy_id == carry)
        .expect("bear carry runs");
    assert_eq!(carry_bot.started_by, StartedBy::Rotation);
    let hand_now = bots
        .iter()
        .find(|d| d.strategy_id == hand)
        .expect("the hand-deployed bot runs");
    assert_eq!(
        hand_now.deployment_id, hand_bot.deployment_id,
        "never restarted"
    );
    assert_eq!(hand_now.status, DeploymentStatus::Running);

    // Every run was announced as job.finished.
    let mut seen = false;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), events.next()).await {
        if let Event::JobFinished(run) = m.event {
            seen |= run.id == turned.id;
        }
    }
    assert!(seen, "job.finished for the turning run");
    // memctl tells the same story.
    let out = daemon.memctl(&["jobs", "history", "rotation", "-n", "50"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("drain   trend rider") && text.contains("0.65 < 0.80"),
        "{text}"
    );
    let out = daemon.memctl(&["jobs"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rotation") && text.contains("*/2 * * * * *"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_that_cannot_start_its_new_bot_fails_and_stops_nothing() {
    let (root, market) = setup(
        ROTATION_EVERY_2S,
        "[freqtrade]\nbin = \"/nonexistent/freqtrade\"\n",
    );
    let data = root.path().join("data");
    std::fs::create_dir_all(data.join("freqtrade/configs")).unwrap();
    std::fs::write(data.join("freqtrade/configs/carry.json"), "{}").unwrap();
    let daemon = start(root);
    let client = daemon.client().await;
    let rider = register(
        &client,
        native_strategy("trend_rider", "momentum", "momentum"),
        15,
    )
    .await;
    // The bearish top is a Freqtrade bot, and Freqtrade is missing.
    let mut doc = native_strategy("carry_bot", "carry", "rsi");
    doc["strategy"]["implementation"] = json!({"language": "python", "class_name": "CarryBot"});
    doc["strategy"]["deployment"] = json!({"type": "freqtrade", "strategy_name": "CarryBot", "config_file": "freqtrade/configs/carry.json"});
    register(&client, doc, 18).await;
    wait_run(&client, "rotation", 30, "trend_rider deployed", |r| {
        actions(r).contains(&("deploy".into(), "trend rider".into()))
    })
    .await;
    let before = active_deployments(&client).await;

    write_reference(&market, false);
    let failed = wait_run(&client, "rotation", 30, "the failing rotation", |r| {
        r.outcome == JobOutcome::Failed
    })
    .await;
    let error = failed.error.clone().unwrap();
    assert!(
        error.contains("deploying carry bot failed")
            && error.contains("/nonexistent/freqtrade")
            && error.contains("nothing was drained"),
        "{error}"
    );
    let after = active_deployments(&client).await;
    assert_eq!(
        after
            .iter()
            .map(|d| (d.deployment_id, d.status))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|d| (d.deployment_id, d.status))
            .collect::<Vec<_>>(),
        "every bot as it was"
    );
    assert!(after.iter().any(|d| d.strategy_id == rider));
    // The next run tries again (and fails again, the same way).
    wait_run(&client, "rotation", 20, "a second attempt", |r| {
        r.outcome == JobOutcome::Failed && r.id != failed.id
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regime_job_deploys_only_when_the_regime_changes() {
    let (root, market) = setup(
        "[schedule.retrain]\nenabled = false\n[schedule.performance_sync]\nenabled = false\n[schedule.learning]\nenabled = false\n[schedule.regime_deploy]\nenabled = true\ncron = \"*/1 * * * * *\"\n",
        "",
    );
    let daemon = start(root);
    let client = daemon.client().await;
    let rider = register(
        &client,
        native_strategy("trend_rider", "momentum", "momentum"),
        15,
    )
    .await;
    let carry = register(&client, native_strategy("bear_carry", "carry", "rsi"), 15).await;
    let first = wait_run(&client, "regime_deploy", 20, "the first look", |_| true).await;
    // Several looks at an unchanged market deploy nothing.
    wait_run(&client, "regime_deploy", 20, "an unchanged look", |r| {
        r.summary.starts_with("unchanged")
    })
    .await;
    assert!(
        history(&client, "regime_deploy")
            .await
            .iter()
            .any(|r| r.summary.starts_with("first look: bullish trend")),
        "{first:?}"
    );
    assert!(
        active_deployments(&client).await.is_empty(),
        "no change, no deployment"
    );
    write_reference(&market, false);
    let changed = wait_run(&client, "regime_deploy", 20, "the change", |r| {
        r.summary.starts_with("regime changed")
    })
    .await;
    assert!(
        changed
            .summary
            .starts_with("regime changed from bullish trend")
            && changed.summary.contains("to bearish trend"),
        "{}",
        changed.summary
    );
    let bots = active_deployments(&client).await;
    assert_eq!(bots.len(), 1, "{bots:?}");
    assert_eq!(
        (bots[0].strategy_id, bots[0].started_by),
        (carry, StartedBy::Regime)
    );
    assert!(bots.iter().all(|d| d.strategy_id != rider));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraining_promotes_keeps_fails_cleanly_and_never_overlaps() {
    let (root, market) = setup(
        "[schedule.performance_sync]\nenabled = false\n[schedule.learning]\nenabled = false\n[schedule.retrain]\ncron = \"0 0 2 * * *\"\npairs = [\"ETH/BTC\"]\ndays = 15\n",
        "",
    );
    let daemon = start(root);
    let client = daemon.client().await;
    let run = |args: &[&str]| {
        let out = daemon.memctl(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            describe(&out),
        )
    };

    // First: nothing to compare with, promoted.
    let (code, text, all) = run(&["jobs", "run", "retrain", "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let first: RunJobResult = serde_json::from_str(&text).unwrap();
    let first = first.run.unwrap();
    assert_eq!(first.outcome, JobOutcome::Succeeded, "{first:?}");
    assert_eq!(first.trigger, JobTrigger::Manual);
    assert!(first.summary.starts_with("promoted"), "{}", first.summary);
    assert_eq!(first.details["promoted"], true);
    assert_eq!(first.details["days"], 15);
    assert!(
        first.details["dataNotes"]
            .to_string()
            .contains("ETH/BTC: the last 15 days"),
        "{}",
        first.details
    );
    let v1 = first.details["version"].as_str().unwrap().to_string();
    let current = |s: mem_protocol::ml::ModelStatusReport| s.current.map(|c| c.version);
    assert_eq!(
        current(client.call::<method::MlStatus>(NoParams {}).await.unwrap()),
        Some(v1.clone())
    );

    // Same data: the new model is no 2 points better; the current one stays.
    let (code, text, all) = run(&["jobs", "run", "retrain"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        text.contains(&format!("but kept {v1}")) && text.contains("not 0.02 higher"),
        "{text}"
    );
    assert_eq!(
        current(client.call::<method::MlStatus>(NoParams {}).await.unwrap()),
        Some(v1.clone())
    );

    // No candles: failed, named, and the model untouched.
    let file = market.join("ETH_BTC-5m.csv");
    std::fs::rename(&file, market.join("aside.csv")).unwrap();
    let (code, text, all) = run(&["jobs", "run", "retrain"]);
    assert_eq!(code, Some(1), "a failed run exits 1: {all}");
    assert!(
        text.contains("FAILED")
            && text.contains("ETH/BTC")
            && text.contains("current model is unchanged"),
        "{text}"
    );
    assert_eq!(
        current(client.call::<method::MlStatus>(NoParams {}).await.unwrap()),
        Some(v1.clone())
    );
    std::fs::rename(market.join("aside.csv"), &file).unwrap();

    // One run at a time: a second `jobs.run` while one goes is refused; a training by
    // hand makes the job skip.
    let started = client
        .call::<method::JobsRun>(RunJobParams {
            name: "retrain".into(),
            wait: false,
        })
        .await
        .unwrap();
    let err = client
        .call::<method::JobsRun>(RunJobParams {
            name: "retrain".into(),
            wait: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Conflict), "{err}");
    assert!(err.to_string().contains("already running"), "{err}");
    let done = wait_run(&client, "retrain", 60, "the background run", |r| {
        r.id == started.id
    })
    .await;
    assert_eq!(done.outcome, JobOutcome::Succeeded, "{done:?}");

    for pair in ["LTC_BTC", "XMR_BTC", "ZEC_BTC", "ADA_BTC"] {
        std::fs::copy(
            repo_file(&format!("data/market/{pair}-5m.feather")),
            market.join(format!("{pair}-5m.feather")),
        )
        .unwrap();
    }
    // Every pair, every candle: long enough to be caught running.
    let trainer = daemon.memctl_child(&["model", "train", "--json"]);
    wait_for(
        "the hand training to start",
        Duration::from_secs(10),
        async || {
            client
                .call::<method::MlStatus>(NoParams {})
                .await
                .unwrap()
                .training
        },
    )
    .await;
    let skipped = client
        .call::<method::JobsRun>(RunJobParams {
            name: "retrain".into(),
            wait: true,
        })
        .await
        .unwrap()
        .run
        .unwrap();
    assert_eq!(skipped.outcome, JobOutcome::Skipped, "{skipped:?}");
    assert!(
        skipped.summary.contains("already under way"),
        "{}",
        skipped.summary
    );
    let out = trainer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));

    // An unknown job is named.
    let (code, _, all) = run(&["jobs", "run", "retrian"]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("retrian") && all.contains("retrain, rotation"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_tick_while_the_last_run_goes_is_skipped_and_announced() {
    // Every second, a retraining on every shipped pair takes several: ticks are skipped.
    let (root, _) = setup(
        "[schedule.performance_sync]\nenabled = false\n[schedule.learning]\nenabled = false\n[schedule.retrain]\ncron = \"* * * * * *\"\n",
        "",
    );
    let market = root.path().join("market");
    // Fresh, or the job would leave them out (older than its window) and be quick.
    for pair in ["LTC_BTC", "XMR_BTC", "ZEC_BTC", "ADA_BTC"] {
        mem_e2e::market::fresh_copy(&market, &format!("{pair}-5m.feather"));
    }
    let daemon = start(root);
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Jobs]).await.unwrap();
    let mut skipped = None;
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(m) = events.next().await {
            if let Event::JobFinished(run) = m.event {
                if run.outcome == JobOutcome::Skipped {
                    skipped = Some(run);
                    break;
                }
            }
        }
    })
    .await
    .expect("a skipped tick within 60 s");
    let skipped = skipped.unwrap();
    assert!(
        skipped.summary.contains("the previous run") && skipped.summary.contains("still going"),
        "{}",
        skipped.summary
    );
    assert_eq!(skipped.trigger, JobTrigger::Schedule);
    // Never two runs at once: succeeded runs do not overlap in time.
    let finished = wait_run(&client, "retrain", 60, "a finished scheduled run", |r| {
        r.outcome == JobOutcome::Succeeded
    })
    .await;
    let runs = history(&client, "retrain").await;
    let done: Vec<&JobRun> = runs
        .iter()
        .filter(|r| r.outcome == JobOutcome::Succeeded)
        .collect();
    for pair in done.windows(2) {
        assert!(
            pair[1].finished_at <= pair[0].started_at,
            "overlap: {pair:?}"
        );
    }
    assert!(done.iter().any(|r| r.id == finished.id));
    assert!(
        daemon.stderr().contains("still going"),
        "a log line for the skip"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_missed_while_memd_was_down_are_reported_and_caught_up_by_policy() {
    let (root, _) = setup(
        "[schedule.retrain]\nenabled = false\n[schedule.performance_sync]\ncron = \"*/1 * * * * *\"\ncatch_up = true\n[schedule.learning]\ncron = \"*/1 * * * * *\"\ncatch_up = false\n",
        "",
    );
    let mut daemon = start(root);
    let client = daemon.client().await;
    wait_run(&client, "learning", 20, "a learning run", |_| true).await;
    wait_run(&client, "performance_sync", 20, "a sync run", |_| true).await;
    drop(client);
    daemon.stop_with(Signal::SIGTERM);
    std::thread::sleep(Duration::from_secs(4));
    let child = Daemon::spawn_raw(daemon.root.path(), &daemon.socket, &daemon.data_dir, |_| {});
    daemon.child = child;
    daemon.wait_ready();
    let client = daemon.client().await;

    let missed = wait_run(&client, "performance_sync", 20, "the missed report", |r| {
        r.outcome == JobOutcome::Missed
    })
    .await;
    let n = missed.details["missed"].as_u64().unwrap();
    assert!(
        (3..=7).contains(&n),
        "about 4 s of a per-second job: {n}: {missed:?}\n{:?}",
        history(&client, "performance_sync")
            .await
            .iter()
            .take(8)
            .map(|r| (r.started_at, r.outcome, r.trigger))
            .collect::<Vec<_>>()
    );
    assert!(
        missed.summary.contains("missed while memd was down")
            && missed.summary.contains("running it once now"),
        "{}",
        missed.summary
    );
    let caught = wait_run(&client, "performance_sync", 20, "the catch-up run", |r| {
        r.trigger == JobTrigger::CatchUp
    })
    .await;
    assert_eq!(caught.outcome, JobOutcome::Succeeded, "{caught:?}");
    let runs = history(&client, "performance_sync").await;
    assert_eq!(
        runs.iter()
            .filter(|r| r.trigger == JobTrigger::CatchUp)
            .count(),
        1,
        "caught up once"
    );

    let missed = wait_run(&client, "learning", 20, "the missed report", |r| {
        r.outcome == JobOutcome::Missed
    })
    .await;
    assert!(
        missed.summary.contains("catch_up is off"),
        "{}",
        missed.summary
    );
    // Scheduled runs go on; the learning job was not caught up.
    wait_run(
        &client,
        "learning",
        20,
        "a scheduled learning run after the restart",
        |r| r.started_at > missed.started_at && r.outcome == JobOutcome::Succeeded,
    )
    .await;
    assert!(
        history(&client, "learning")
            .await
            .iter()
            .all(|r| r.trigger != JobTrigger::CatchUp)
    );
    // The next and last runs are listed.
    let list = client.call::<method::JobsList>(NoParams {}).await.unwrap();
    let sync = list
        .jobs
        .iter()
        .find(|j| j.name == "performance_sync")
        .unwrap();
    assert!(
        sync.enabled && sync.catch_up && sync.next_run.is_some() && sync.last_run.is_some(),
        "{sync:?}"
    );
    let rotation = list.jobs.iter().find(|j| j.name == "rotation").unwrap();
    assert!(
        !rotation.enabled && rotation.next_run.is_none(),
        "{rotation:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performance_sync_copies_what_running_bots_closed_into_the_registry() {
    let _ports = preferred_ports().await;
    // The fake Freqtrade bot (tests/src/bin/fake_freqtrade.rs) with 3 closed trades; the
    // supervisor's own poll is an hour away, so only the job can copy them.
    let root = tempfile::tempdir().unwrap();
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({"fake_bot": {"closed_trades": 3}}),
        "poll_interval_secs = 3600\nready_timeout_secs = 10\nstop_timeout_secs = 3\nport_range = [19600, 19699]",
        "[schedule.performance_sync]\ncron = \"0 0 0 1 1 *\"\n[schedule.learning]\nenabled = false\n[schedule.retrain]\nenabled = false\n",
    );
    let daemon = Daemon::with_config(root, &config);
    let client = daemon.client().await;
    // The seed's Aggressive RSI, a Freqtrade strategy.
    let id = sid(AGGRESSIVE_RSI);
    client.call::<method::Deploy>(dry_run(id)).await.unwrap();
    let trades = async || total_trades(&client, id).await;
    assert_eq!(trades().await, 0);
    let out = daemon.memctl(&["jobs", "run", "performance_sync"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 running bot read, 3 new closed trades recorded"),
        "{text}"
    );
    assert_eq!(trades().await, 3);
    // Nothing is copied twice.
    let out = daemon.memctl(&["jobs", "run", "performance_sync"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 running bot read, 0 new closed trades recorded"),
        "{text}"
    );
    assert_eq!(trades().await, 3);
}
