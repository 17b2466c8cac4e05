//! Market data that stays fresh, end to end: the real memd runs the real Freqtrade's
//! `download-data` against the mock exchange (`[market.refresh]`, `memctl market
//! refresh`, the `data_refresh` job), and what acts on market conditions refuses stale
//! ones.
//!
//! - two pairs at two timeframes are downloaded into the market directory in Freqtrade's
//!   layout, with progress; a second run adds only the new candles to the same files;
//! - a reader looping over a candle file (the kit's own reader, and memd's
//!   `market.conditions`) while a refresh replaces it never meets half a file;
//! - an exchange error fails the run with the pair and the exchange's words, leaves that
//!   pair's file as it was and refreshes the others; the run is in the job history;
//! - without Freqtrade the run says to run `memctl setup freqtrade`;
//! - on the shipped 2018 candles the conditions are stale demo data and the regime job,
//!   the rotation and retraining refuse, naming the pair, the candle and its age; after
//!   a refresh from the mock the conditions are fresh and the jobs act.
//!
//! Needs `MEMD_TEST_FREQTRADE` (but the test without Freqtrade); without it they say they
//! are skipped.

use mem_e2e::mock_exchange::{self, MockExchange};
use mem_e2e::{Daemon, describe, freqtrade, market};
use mem_protocol::jobs::{JobHistoryParams, JobOutcome, JobRun, RunJobParams};
use mem_protocol::market::{RefreshParams, RefreshReport, RefreshStatus};
use mem_protocol::methods::method;
use mem_protocol::recommend::ConditionsParams;
use mem_protocol::{Client, Event, Topic};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const PAIRS: [&str; 2] = ["ETH/USDT", "BTC/USDT"];
const FILES: [&str; 4] = [
    "ETH_USDT-5m.feather",
    "ETH_USDT-1h.feather",
    "BTC_USDT-5m.feather",
    "BTC_USDT-1h.feather",
];
/// A refresh starts Freqtrade (seconds) and downloads from the mock.
const REFRESH: Duration = Duration::from_secs(300);

/// memd with the real Freqtrade pointed at `mock` through the overrides file, as the
/// bots are, and `[market.refresh]` set to `refresh` (more of the file after it).
fn start(freqtrade: &Path, mock: &MockExchange, refresh: &str) -> Daemon {
    let root = tempfile::tempdir().unwrap();
    let config = freqtrade::memd_config(
        root.path(),
        freqtrade,
        mock,
        false,
        freqtrade::TEST_TIMINGS,
        &format!("[market.refresh]\n{refresh}"),
    );
    Daemon::with_config(root, &config)
}

async fn refresh(client: &Client, days: Option<u32>) -> JobRun {
    client
        .call_with_timeout::<method::MarketRefresh>(
            RefreshParams {
                days,
                wait: true,
                ..Default::default()
            },
            REFRESH,
        )
        .await
        .unwrap()
        .run
        .expect("a run waited for")
}

fn report(run: &JobRun) -> RefreshReport {
    serde_json::from_value(run.details.clone())
        .unwrap_or_else(|e| panic!("the run's details are no refresh report ({e}): {run:?}"))
}

async fn history(client: &Client, job: &str) -> Vec<JobRun> {
    client
        .call::<method::JobsHistory>(JobHistoryParams {
            name: Some(job.into()),
            limit: Some(100),
        })
        .await
        .unwrap()
        .runs
}

fn market_dir(daemon: &Daemon) -> PathBuf {
    daemon.data_dir.join("market")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pairs_at_two_timeframes_are_downloaded_then_only_the_new_candles_added() {
    let Some(ft) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start(&PAIRS).await;
    let daemon = start(
        &ft,
        &mock,
        "pairs = [\"ETH/USDT\", \"BTC/USDT\"]\ndays = 2\n",
    );
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Jobs]).await.unwrap();

    // `memctl market refresh`: progress on stderr, a line per pair and timeframe.
    let out = daemon.memctl(&["market", "refresh"]);
    let text = describe(&out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("downloaded anew").count(), 4, "{text}");
    for pair in PAIRS {
        assert_eq!(
            stdout.matches(pair).count(),
            2 + 2,
            "a row and an entry each: {text}"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("] 4/4 "),
        "the progress reaches the end: {text}"
    );
    assert!(stderr.contains("candles fetched"), "{text}");
    let mut progress = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), events.next()).await {
        if let Event::JobProgress(p) = m.event {
            progress.push((p.done, p.total));
        }
    }
    assert!(progress.contains(&(4, 4)), "{progress:?}");

    // Freqtrade's layout, in the market directory, beside the shipped files.
    let dir = market_dir(&daemon);
    for file in FILES {
        assert!(dir.join(file).is_file(), "{file} in {}", dir.display());
    }
    assert!(dir.join("ETH_BTC-5m.feather").is_file(), "the demo stays");
    assert!(!dir.join(".memd-refresh").exists(), "no staging left");

    let first = history(&client, "data_refresh").await.remove(0);
    assert_eq!(first.outcome, JobOutcome::Succeeded, "{first:?}");
    let first = report(&first);
    assert_eq!(first.results.len(), 4);
    let now = chrono::Utc::now();
    for r in &first.results {
        assert_eq!(r.status, RefreshStatus::Downloaded, "{r:?}");
        assert!(r.added > 0 && r.added == r.candles, "{r:?}");
        let newest = r.newest.expect("a newest candle");
        let tf = if r.timeframe == "5m" { 300 } else { 3600 };
        // The newest closed candle: opened one or two candles ago.
        assert!(
            (now - newest).num_seconds() <= 2 * tf + 60,
            "{r:?} is not the newest candle"
        );
    }
    let eth5 = market::read_feather(&dir.join("ETH_USDT-5m.feather"));
    assert_eq!(eth5.len() as u64, first.results[0].candles);

    // Again: the same files, each with only the candles closed since.
    let second = refresh(&client, None).await;
    assert_eq!(second.outcome, JobOutcome::Succeeded, "{second:?}");
    let second = report(&second);
    for (before, after) in first.results.iter().zip(&second.results) {
        assert_eq!(after.status, RefreshStatus::Updated, "{after:?}");
        assert_eq!(after.candles, before.candles + after.added, "{after:?}");
        assert!(after.added <= 2, "only what closed since: {after:?}");
    }
    let again = market::read_feather(&dir.join("ETH_USDT-5m.feather"));
    assert_eq!(again[0], eth5[0], "the history is kept");
    assert_eq!(again[..eth5.len()], eth5[..], "old candles unchanged");
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_during_a_refresh_never_meets_half_a_file() {
    let Some(ft) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start(&PAIRS).await;
    // Twenty days of 5-minute candles: files that take a while to write.
    let daemon = start(
        &ft,
        &mock,
        "pairs = [\"ETH/USDT\", \"BTC/USDT\"]\ndays = 20\n",
    );
    let client = daemon.client().await;
    assert_eq!(refresh(&client, None).await.outcome, JobOutcome::Succeeded);
    let file = market_dir(&daemon).join("ETH_USDT-5m.feather");
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let first_inode = inode(&file);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, file) = (stop.clone(), file.clone());
        std::thread::spawn(move || {
            let (mut reads, mut inodes) = (0u64, std::collections::BTreeSet::new());
            while !stop.load(Ordering::Relaxed) {
                if let Ok(m) = std::fs::metadata(&file) {
                    inodes.insert(std::os::unix::fs::MetadataExt::ino(&m));
                }
                let candles = market::try_read_feather(&file)
                    .unwrap_or_else(|e| panic!("after {reads} good reads: {e}"));
                assert!(candles.len() > 5_000, "a whole file: {}", candles.len());
                reads += 1;
            }
            (reads, inodes)
        })
    };
    // memd itself reads the pair's candles meanwhile (1h, its own file).
    let asking = {
        let socket = daemon.socket.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let client = Client::connect(&socket, Default::default()).await.unwrap();
            let mut answers = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let c = client
                    .call::<method::MarketConditionsNow>(ConditionsParams {
                        pair: Some("ETH/USDT".into()),
                        timeframe: Some("1h".into()),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("after {answers} answers: {e}"));
                assert!(c.candles >= 100);
                answers += 1;
            }
            answers
        })
    };
    let run = refresh(&client, None).await;
    stop.store(true, Ordering::Relaxed);
    let (reads, inodes) = reader.join().expect("the reader never failed");
    let answers = asking.await.expect("memd always answered");
    assert_eq!(run.outcome, JobOutcome::Succeeded, "{run:?}");
    assert!(
        reads > 10 && answers > 10,
        "{reads} reads, {answers} answers"
    );
    assert_ne!(inode(&file), first_inode, "the refresh replaced the file");
    assert!(inodes.len() >= 2, "the reader saw both files: {inodes:?}");
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_error_fails_the_run_naming_the_pair_and_leaves_its_file() {
    let Some(ft) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start(&PAIRS).await;
    let daemon = start(
        &ft,
        &mock,
        "pairs = [\"ETH/USDT\", \"BTC/USDT\"]\ndays = 2\n",
    );
    let client = daemon.client().await;
    assert_eq!(refresh(&client, None).await.outcome, JobOutcome::Succeeded);
    let eth = market_dir(&daemon).join("ETH_USDT-5m.feather");
    let before = std::fs::read(&eth).unwrap();

    mock.fail_klines(&["ETH/USDT"]);
    let out = daemon.memctl(&["market", "refresh"]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(1), "a failed run exits 1: {text}");
    assert!(
        text.contains("FAILED") && text.contains("mock: the klines of ETH/USDT fail on purpose"),
        "{text}"
    );
    let run = history(&client, "data_refresh").await.remove(0);
    assert_eq!(run.outcome, JobOutcome::Failed, "{run:?}");
    let error = run.error.clone().unwrap();
    assert!(
        error.contains("ETH/USDT 5m: binance")
            && error.contains("mock: the klines of ETH/USDT fail on purpose")
            && error.contains("ETH/USDT 1h"),
        "{error}"
    );
    let r = report(&run);
    for p in &r.results {
        match p.pair.as_str() {
            "ETH/USDT" => assert_eq!(p.status, RefreshStatus::Failed, "{p:?}"),
            _ => assert_eq!(p.status, RefreshStatus::Updated, "{p:?}"),
        }
    }
    assert_eq!(
        std::fs::read(&eth).unwrap(),
        before,
        "the pair's file as it was"
    );
    // The Jobs list and the history say so too.
    let jobs = client
        .call::<method::JobsList>(Default::default())
        .await
        .unwrap();
    let job = jobs.jobs.iter().find(|j| j.name == "data_refresh").unwrap();
    assert_eq!(
        job.last_run.as_ref().map(|r| r.outcome),
        Some(JobOutcome::Failed)
    );
    let out = daemon.memctl(&["jobs", "history", "data_refresh", "-n", "1"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("data_refresh FAILED"),
        "{}",
        describe(&out)
    );

    mock.fail_klines(&[]);
    assert_eq!(refresh(&client, None).await.outcome, JobOutcome::Succeeded);
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_freqtrade_the_refresh_says_to_set_it_up() {
    // No [freqtrade] bin, no virtualenv in the data directory, none on this PATH.
    let daemon = Daemon::start_with(|cmd| {
        cmd.env("PATH", "/usr/bin:/bin");
    });
    let out = daemon.memctl(&["market", "refresh", "--pair", "ETH/BTC"]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("memctl setup freqtrade"), "{text}");
    let client = daemon.client().await;
    let run = client
        .call::<method::JobsRun>(RunJobParams {
            name: "data_refresh".into(),
            wait: true,
        })
        .await
        .unwrap()
        .run
        .unwrap();
    assert_eq!(run.outcome, JobOutcome::Failed);
    assert!(
        run.error
            .as_deref()
            .unwrap_or("")
            .contains("memctl setup freqtrade"),
        "{run:?}"
    );
    // A pair that is no spot pair is refused before anything runs.
    let err = client
        .call::<method::MarketRefresh>(RefreshParams {
            pairs: vec!["XRP/USDT:USDT".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("field `pairs`"), "{err}");
}

/// A config for the stale-data test: the shipped ETH/BTC candles as the market, the mock
/// serving ETH/BTC, the jobs enabled but far from their times (run by hand here).
fn stale_setup(freqtrade: &Path, mock: &MockExchange) -> Daemon {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("market");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        market::shipped("ETH_BTC-5m.feather"),
        dir.join("ETH_BTC-5m.feather"),
    )
    .unwrap();
    let overrides = root.path().join("overrides.json");
    std::fs::write(&overrides, mock.memd_overrides().to_string()).unwrap();
    let config = root.path().join("memd.toml");
    std::fs::write(
        &config,
        format!(
            "seed_default_data = false\n\
             [freqtrade]\nbin = {:?}\nconfig_overrides = {:?}\n\
             [market]\ndata_dir = {:?}\nreference_pair = \"ETH/BTC\"\npairs = [\"ETH/BTC\"]\n\
             [market.refresh]\npairs = [\"ETH/BTC\"]\ndays = 10\n\
             [schedule.performance_sync]\nenabled = false\n[schedule.learning]\nenabled = false\n\
             [schedule.retrain]\nenabled = false\n\
             [schedule.rotation]\nenabled = true\ncron = \"0 0 0 1 1 *\"\nmin_confidence = 1.0\n\
             [schedule.regime_deploy]\nenabled = true\ncron = \"0 0 0 1 1 *\"\nmin_confidence = 1.0\n",
            freqtrade.display().to_string(),
            overrides.display().to_string(),
            dir.display().to_string()
        ),
    )
    .unwrap();
    Daemon::with_config(root, &config)
}

async fn run_job(client: &Client, name: &str) -> JobRun {
    client
        .call_with_timeout::<method::JobsRun>(
            RunJobParams {
                name: name.into(),
                wait: true,
            },
            REFRESH,
        )
        .await
        .unwrap()
        .run
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_demo_conditions_are_refused_and_after_a_refresh_the_jobs_act() {
    let Some(ft) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start(&["ETH/BTC"]).await;
    let daemon = stale_setup(&ft, &mock);
    let client = daemon.client().await;

    // The shipped candles: conditions computed, as of January 2018, stale demo data.
    let c = client
        .call::<method::MarketConditionsNow>(Default::default())
        .await
        .unwrap();
    assert_eq!((c.pair.as_str(), c.timeframe.as_str()), ("ETH/BTC", "1h"));
    let f = &c.freshness;
    assert!(f.stale && f.demo, "{f:?}");
    assert_eq!(f.as_of.format("%Y-%m").to_string(), "2018-01");
    assert!(f.age_secs > 8 * 365 * 86_400 - 86_400 * 60, "{f:?}");
    assert_eq!(f.stale_after_secs, 3 * 3600);
    let out = daemon.memctl(&["market"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("STALE")
            && text.contains("demo data")
            && text.contains("memctl market refresh"),
        "{text}"
    );

    // What acts on the conditions refuses, and says which pair, which candle, how old.
    for job in ["regime_deploy", "rotation"] {
        let run = run_job(&client, job).await;
        assert_eq!(run.outcome, JobOutcome::Failed, "{run:?}");
        let error = run.error.clone().unwrap();
        assert!(
            error.starts_with("refused: the market conditions are stale: the newest 1h candle of ETH/BTC closed 2018-01-")
                && error.contains(" years ago (stale after 3 h)")
                && error.contains("shipped 2018 demo candles"),
            "{job}: {error}"
        );
        assert_eq!(run.details["pair"], "ETH/BTC");
        assert_eq!(run.details["demo"], true);
        assert!(run.details["ageSecs"].as_i64().unwrap() > 86_400 * 365 * 8 - 86_400 * 60);
    }
    let retrain = run_job(&client, "retrain").await;
    assert_eq!(retrain.outcome, JobOutcome::Failed, "{retrain:?}");
    assert!(
        retrain.error.as_deref().unwrap_or("").contains(
            "refused: no pair has candles within the 30-day window (the newest 5m candle of ETH/BTC closed 2018-01-30"
        ),
        "{retrain:?}"
    );
    let deployed = client
        .call::<method::Deployed>(Default::default())
        .await
        .unwrap();
    assert!(deployed.deployments.is_empty());

    // A refresh from the mock: the demo file is replaced by ten days of today's candles.
    let run = refresh(&client, None).await;
    assert_eq!(run.outcome, JobOutcome::Succeeded, "{run:?}");
    let r = report(&run);
    assert!(
        r.results
            .iter()
            .all(|p| p.status == RefreshStatus::Downloaded),
        "{r:?}"
    );
    let c = client
        .call::<method::MarketConditionsNow>(Default::default())
        .await
        .unwrap();
    assert!(!c.freshness.stale && !c.freshness.demo, "{:?}", c.freshness);
    assert!(c.freshness.age_secs < 3600 + 300, "{:?}", c.freshness);

    // Now they act: the regime job takes its first look, the rotation recommends (no
    // recommendation reaches 1.0, so it deploys nothing, on fresh conditions).
    let regime = run_job(&client, "regime_deploy").await;
    assert_eq!(regime.outcome, JobOutcome::Succeeded, "{regime:?}");
    assert!(regime.summary.starts_with("first look: "), "{regime:?}");
    let rotation = run_job(&client, "rotation").await;
    assert_eq!(rotation.outcome, JobOutcome::Succeeded, "{rotation:?}");
    assert_eq!(
        rotation.details["conditions"]["freshness"]["stale"], false,
        "{rotation:?}"
    );
    assert_eq!(rotation.details["conditions"]["pair"], "ETH/BTC");
    let retrain = run_job(&client, "retrain").await;
    assert!(
        !retrain.summary.contains("refused") && !retrain.summary.contains("left out"),
        "fresh data are trained on (whatever the model makes of them): {retrain:?}"
    );
    mock.shutdown().await;
}
