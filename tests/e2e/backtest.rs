//! Measured figures, end to end: `memctl backtest` queues a job in the real memd, which
//! runs the real Freqtrade's backtesting (and hyperopt, for a walk-forward) on candles
//! downloaded from the mock exchange, or the native engine on the shipped candles, and
//! records the result on the strategy's version.
//!
//! - a Freqtrade backtest of MACD Hunter stores exactly the trade count, profit and
//!   drawdown of Freqtrade's own result file; a walk-forward of two folds with a few
//!   hyperopt epochs stores both folds; the recommendation then scores the measured
//!   figures and says which backtest they come from;
//! - a native backtest's trades are those of a paper replay of the same candles;
//! - the queue: a cancel ends a running Freqtrade backtest's process group and is
//!   recorded; a job whose Freqtrade dies (the exchange gone) fails with its last log
//!   lines; a job running when memd is killed is interrupted at the next start; two jobs
//!   with a cap of one run one after the other.
//!
//! The Freqtrade tests need `MEMD_TEST_FREQTRADE`; without it they say they are skipped.

use mem_e2e::mock_exchange::{self, MockExchange};
use mem_e2e::seed::{MACD_HUNTER, sid};
use mem_e2e::{Daemon, describe, freqtrade, wait_for};
use mem_protocol::Client;
use mem_protocol::backtest::{QueueJob, QueueJobState, QueueListParams};
use mem_protocol::market::RefreshParams;
use mem_protocol::methods::method;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PAIRS: [&str; 2] = ["ETH/USDT", "BTC/USDT"];
/// A backtest starts Freqtrade (seconds) and reads the markets from the mock.
const JOB: Duration = Duration::from_secs(300);

/// memd with the real Freqtrade pointed at `mock` (as the bots are), `extra` appended to
/// its config, and two days of candles of the two pairs downloaded from the mock.
async fn start(ft: &Path, mock: &MockExchange, extra: &str) -> (Daemon, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let config =
        freqtrade::memd_config(root.path(), ft, mock, false, freqtrade::TEST_TIMINGS, extra);
    let daemon = Daemon::with_config(root, &config);
    let client = daemon.client().await;
    let run = client
        .call_with_timeout::<method::MarketRefresh>(
            RefreshParams {
                pairs: PAIRS.iter().map(|p| p.to_string()).collect(),
                timeframes: vec!["5m".into()],
                days: Some(2),
                wait: true,
            },
            JOB,
        )
        .await
        .unwrap()
        .run
        .expect("the refresh's run");
    assert_eq!(
        run.outcome,
        mem_protocol::jobs::JobOutcome::Succeeded,
        "{run:?}"
    );
    (daemon, config)
}

fn job_of(out: &std::process::Output) -> QueueJob {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not a queue job ({e}): {}", describe(out)))
}

/// The strategy section of Freqtrade's own result file (the zip's JSON).
fn freqtrade_stats(zip_path: &str, class: &str) -> Value {
    let file = std::fs::File::open(zip_path).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let name = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_string())
        .find(|n| n.ends_with(".json") && !n.ends_with("_config.json") && !n.contains(class))
        .expect("the result's JSON in the zip");
    let mut text = String::new();
    zip.by_name(&name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["strategy"][class].clone()
}

async fn queue(client: &Client) -> Vec<QueueJob> {
    client
        .call::<method::QueueList>(QueueListParams { limit: Some(100) })
        .await
        .unwrap()
        .jobs
}

async fn wait_state(
    client: &Client,
    id: &str,
    what: &str,
    pick: impl Fn(QueueJobState) -> bool,
) -> QueueJob {
    let mut found = None;
    wait_for(what, JOB, async || {
        found = queue(client)
            .await
            .into_iter()
            .find(|j| j.id == id && pick(j.state));
        found.is_some()
    })
    .await;
    found.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freqtrade_backtest_stores_freqtrades_own_figures_and_recommendations_score_them() {
    let Some(ft) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start(&PAIRS).await;
    // Any result stands for the strategy here: the test is about what is stored.
    let (daemon, _) = start(
        &ft,
        &mock,
        "[backtest]\nmin_trades = 1\nmin_profit_pct = -1.0\n",
    )
    .await;
    let hunter = MACD_HUNTER;

    // `memctl backtest`: queued, followed with progress, its figures printed.
    let out = daemon.memctl(&["backtest", hunter, "--days", "1", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let job = job_of(&out);
    assert_eq!(job.state, QueueJobState::Succeeded, "{job:?}");
    let result = job.result.clone().expect("a result");
    assert_eq!(result.pairs, ["ETH/USDT", "BTC/USDT"]);
    assert_eq!(result.timeframe, "5m");
    assert!(result.engine_version.starts_with("2026."), "{result:?}");
    assert!(!result.config_hash.is_empty() && !result.strategy_hash.is_empty());
    // Exactly what Freqtrade's own result file says.
    let stats = freqtrade_stats(
        result.result_file.as_deref().expect("the result file"),
        "MACD_Aggressive",
    );
    let f = &result.figures;
    assert_eq!(f.trades, stats["total_trades"].as_u64().unwrap(), "{stats}");
    assert!(f.trades > 0, "{result:?}");
    assert_eq!(f.profit_abs, stats["profit_total_abs"].as_f64().unwrap());
    assert_eq!(f.profit_pct, stats["profit_total"].as_f64().unwrap());
    assert_eq!(
        f.max_drawdown,
        stats["max_drawdown_account"].as_f64().unwrap()
    );
    assert_eq!(
        f.max_drawdown_abs,
        stats["max_drawdown_abs"].as_f64().unwrap()
    );
    assert!(result.equity.len() >= 2, "{:?}", result.equity);

    // On the strategy's version, with what makes it reproducible.
    let client = daemon.client().await;
    let version = client
        .call::<method::VersionsGet>(mem_protocol::registry::GetVersionParams {
            id: sid(hunter),
            version: "1.0.0".into(),
        })
        .await
        .unwrap();
    assert_eq!(version.backtest_results["jobId"], json!(job.id));
    assert_eq!(
        version.backtest_results["figures"]["trades"],
        json!(f.trades)
    );
    assert_eq!(
        version.validation_status,
        Some(mem_protocol::registry::VersionValidation::Passed)
    );

    // The recommendation scores the measured figures and says where they come from.
    let out = daemon.memctl(&[
        "recommend",
        "--trend",
        "bullish",
        "--volatility",
        "medium",
        "--json",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rec = v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["strategyId"] == hunter)
        .unwrap_or_else(|| panic!("MACD Hunter not recommended: {v}"))
        .clone();
    assert_eq!(rec["metricsSource"], "backtest", "{rec}");
    assert_eq!(
        rec["estimatedWinRate"].as_f64().unwrap(),
        f.win_rate,
        "{rec}"
    );
    assert!(
        rec["reason"]
            .as_str()
            .unwrap()
            .contains("figures from the backtest of 1.0.0 (freqtrade) on ETH/USDT, BTC/USDT 5m"),
        "{rec}"
    );

    // A walk-forward of two folds, three hyperopt epochs each: both folds stored.
    let out = daemon.memctl(&[
        "backtest",
        hunter,
        "--days",
        "2",
        "--walk-forward",
        "2",
        "--epochs",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let wf_job = job_of(&out);
    let wf = wf_job
        .result
        .clone()
        .unwrap()
        .walk_forward
        .expect("the folds");
    assert_eq!(wf.folds.len(), 2, "{wf:?}");
    for fold in &wf.folds {
        assert!(fold.in_sample_to <= fold.out_of_sample_from, "{fold:?}");
        assert!(!fold.parameters.is_empty(), "{fold:?}");
    }
    assert_eq!(
        wf.out_of_sample.trades,
        wf.folds.iter().map(|f| f.out_of_sample.trades).sum::<u64>()
    );
    let version = client
        .call::<method::VersionsGet>(mem_protocol::registry::GetVersionParams {
            id: sid(hunter),
            version: "1.0.0".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        version.backtest_results["walkForward"]["folds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_cancels_a_running_backtest_fails_a_dead_one_and_interrupts_one_cut_short() {
    let Some(ft) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start(&PAIRS).await;
    let (mut daemon, config) = start(&ft, &mock, "").await;
    let client = daemon.client().await;

    // Two jobs with the default cap of one: one after the other. The first is cancelled
    // while Freqtrade runs: its whole process group ends.
    let first = job_of(&daemon.memctl(&[
        "backtest",
        MACD_HUNTER,
        "--days",
        "2",
        "--no-wait",
        "--json",
    ]));
    let second = job_of(&daemon.memctl(&[
        "backtest",
        MACD_HUNTER,
        "--days",
        "1",
        "--no-wait",
        "--json",
    ]));
    wait_state(&client, &first.id, "the first job to run", |s| {
        s == QueueJobState::Running
    })
    .await;
    let work = daemon.data_dir.join("queue").join(&first.id);
    wait_for("Freqtrade to start", JOB, async || {
        mem_e2e::processes_mentioning(&work.display().to_string()) > 0
    })
    .await;
    assert_eq!(
        queue(&client)
            .await
            .iter()
            .find(|j| j.id == second.id)
            .unwrap()
            .state,
        QueueJobState::Queued,
        "the cap is one"
    );
    let out = daemon.memctl(&["queue", "cancel", &first.id]);
    assert!(out.status.success(), "{}", describe(&out));
    let cancelled = wait_state(&client, &first.id, "the cancel", |s| s.is_finished()).await;
    assert_eq!(cancelled.state, QueueJobState::Cancelled, "{cancelled:?}");
    assert_eq!(
        mem_e2e::processes_mentioning(&work.display().to_string()),
        0,
        "Freqtrade left behind"
    );
    let done = wait_state(&client, &second.id, "the second job", |s| s.is_finished()).await;
    assert_eq!(done.state, QueueJobState::Succeeded, "{done:?}");
    assert!(done.started_at.unwrap() >= cancelled.finished_at.unwrap());
    // `memctl queue` shows both, as they ended.
    let out = daemon.memctl(&["queue"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cancelled") && text.contains("succeeded"),
        "{text}"
    );

    // Killed memd while a job runs: at the next start the job is interrupted.
    let cut = job_of(&daemon.memctl(&[
        "backtest",
        MACD_HUNTER,
        "--days",
        "2",
        "--no-wait",
        "--json",
    ]));
    wait_state(&client, &cut.id, "the job to run", |s| {
        s == QueueJobState::Running
    })
    .await;
    drop(client);
    daemon.restart_with_config(nix::sys::signal::Signal::SIGKILL, &config);
    let client = daemon.client().await;
    let interrupted = queue(&client)
        .await
        .into_iter()
        .find(|j| j.id == cut.id)
        .unwrap();
    assert_eq!(
        interrupted.state,
        QueueJobState::Interrupted,
        "{interrupted:?}"
    );
    assert!(interrupted.error.unwrap().contains("memd stopped"));

    // The exchange gone: Freqtrade cannot load its markets and dies; the job fails with
    // its last log lines.
    mock.shutdown().await;
    let out = daemon.memctl(&["backtest", MACD_HUNTER, "--days", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let failed = job_of(&out);
    assert_eq!(failed.state, QueueJobState::Failed, "{failed:?}");
    let error = failed.error.unwrap();
    assert!(error.contains("the last lines of its log"), "{error}");
    assert!(
        error.to_lowercase().contains("exchange") || error.contains("binance"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_backtest_makes_the_trades_of_a_paper_replay_of_the_same_candles() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    // The seed's native RSI with MEM off (a replay through MEM sizes entries by MEM).
    let detail = client
        .call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams {
            id: sid(mem_e2e::seed::NATIVE_RSI),
        })
        .await
        .unwrap();
    let mut doc = serde_json::to_value(&*detail.metadata).unwrap();
    doc["strategy"]["id"] = Value::Null;
    doc["strategy"]["name"] = json!("rsi_without_mem");
    doc["strategy"]["mem_integration"]["enabled"] = json!(false);
    doc["strategy"]["deployment"] = json!({"type": "native", "strategy": "rsi", "pair": "ETH/BTC"});
    let id = client
        .call::<method::StrategiesRegister>(mem_protocol::registry::RegisterParams {
            strategy: doc,
            status: None,
        })
        .await
        .unwrap()
        .summary
        .id
        .to_string();

    // The paper replay of the whole shipped file.
    let out = daemon.memctl(&[
        "deploy",
        &id,
        "--replay",
        "ETH_BTC-5m.feather",
        "--pair",
        "ETH/BTC",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let sid_ = id.parse().unwrap();
    wait_for(
        "the replay to finish",
        Duration::from_secs(120),
        async || {
            mem_e2e::deployments::newest_deployment(&client, sid_)
                .await
                .is_some_and(|d| d.status == mem_protocol::deploy::DeploymentStatus::Stopped)
        },
    )
    .await;
    let mut trades = mem_e2e::deployments::all_trades(&client, sid_).await;
    trades.reverse(); // oldest first
    assert!(trades.len() >= 5, "{}", trades.len());

    // The backtest over the same candles: the same trades, closed at the same times, for
    // the same profits.
    let out = daemon.memctl(&["backtest", &id, "--timerange", "20180101-", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let job = job_of(&out);
    let first_job = job.id.clone();
    let result = job.result.expect("a result");
    assert_eq!(result.figures.trades, trades.len() as u64, "{result:?}");
    assert_eq!(
        result.equity.len(),
        trades.len() + 1,
        "the start, then each trade"
    );
    for (point, trade) in result.equity[1..].iter().zip(&trades) {
        assert_eq!(point.ts_ms, trade.exit_time.timestamp_millis(), "{trade:?}");
    }
    let replayed: f64 = trades.iter().map(|t| t.pnl).sum();
    assert!(
        (result.figures.profit_abs - replayed).abs() < 1e-6,
        "{} vs {replayed}",
        result.figures.profit_abs
    );
    let wins = trades.iter().filter(|t| t.pnl > 0.0).count() as u64;
    assert_eq!(result.figures.wins, wins);

    // A walk-forward of two folds: each fold's parameters inside their declared bounds;
    // saved as a new version (nothing running changes).
    let out = daemon.memctl(&[
        "backtest",
        &id,
        "--timerange",
        "20180101-",
        "--walk-forward",
        "2",
        "--epochs",
        "6",
        "--json",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let job = job_of(&out);
    let wf = job.result.clone().unwrap().walk_forward.expect("folds");
    assert_eq!(wf.folds.len(), 2);
    let declared = &detail.metadata.strategy.parameters;
    for fold in &wf.folds {
        for (name, p) in &fold.parameters {
            let (Some(d), Some(v)) = (declared.get(name), p["value"].as_f64()) else {
                continue;
            };
            if d["optimizable"] == true {
                let (lo, hi) = (d["min"].as_f64().unwrap(), d["max"].as_f64().unwrap());
                assert!((lo..=hi).contains(&v), "{name} = {v} outside {lo}..{hi}");
            }
        }
    }
    let out = daemon.memctl(&["queue", "save", &job.id, "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let version: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(version["version_number"], "1.1.0", "{version}");
    for (name, p) in &wf.parameters {
        assert_eq!(version["parameters"][name]["value"], p["value"], "{name}");
    }
    // A backtest is not a walk-forward: nothing to save.
    let out = daemon.memctl(&["queue", "save", &first_job]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only a walk-forward"),
        "{}",
        describe(&out)
    );
}
