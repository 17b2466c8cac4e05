//! Crash safety: SIGKILL the daemon at random moments while it writes metadata, registers
//! strategies and records trades; after every kill, every file must parse and no
//! acknowledged write may be missing.

use mem_e2e::Daemon;
use mem_e2e::deployments::{dry_run, stop_now, total_trades};
use mem_e2e::seed::{AGGRESSIVE_RSI, CONSERVATIVE_RSI, MACD_HUNTER, preferred_ports, sid};
use mem_e2e::trades::closed_trade;
use mem_protocol::methods::{GetStrategyParams, method};
use mem_protocol::registry::*;
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Kills per run: enough to hit every phase of a write many times, bounded for CI.
const KILLS: usize = 30;

/// What the daemon acknowledged before it was killed.
#[derive(Default)]
struct Acked {
    trades: HashSet<String>,
    registered: Vec<StrategyId>,
    /// The last display name acknowledged, and one sent but not answered.
    display_name: Option<String>,
    display_name_in_flight: Option<String>,
}

/// Every complete line of a JSON-lines file parses; a torn last line is allowed.
fn check_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read(path).unwrap_or_default();
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    text[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "{}: a complete line does not parse ({e}): {}",
                    path.display(),
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

fn check_files(data: &Path, acked: &Acked) {
    let registry = data.join("strategy_registry");
    for entry in std::fs::read_dir(registry.join("metadata")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // debris of an interrupted write: the daemon removes it at start
        }
        let bytes = std::fs::read(&path).unwrap();
        let doc: StrategyDocument = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not a whole document ({e})", path.display()));
        assert_eq!(format!("{}.json", doc.strategy.id), name);
    }
    for id in &acked.registered {
        assert!(
            registry.join(format!("metadata/{id}.json")).exists(),
            "acknowledged registration {id} lost"
        );
    }
    let on_disk: HashSet<String> =
        check_lines(&registry.join(format!("performance/{MACD_HUNTER}.jsonl")))
            .into_iter()
            .map(|v| v["trade_id"].as_str().unwrap().to_string())
            .collect();
    let lost: Vec<_> = acked.trades.difference(&on_disk).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged trades lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(3).collect::<Vec<_>>()
    );
    check_lines(&registry.join("audit.jsonl"));
    let doc: Value = serde_json::from_slice(
        &std::fs::read(registry.join(format!("metadata/{MACD_HUNTER}.json"))).unwrap(),
    )
    .unwrap();
    let name = doc["strategy"]["display_name"]
        .as_str()
        .unwrap()
        .to_string();
    if let Some(acked_name) = &acked.display_name {
        let allowed = [
            Some(acked_name.clone()),
            acked.display_name_in_flight.clone(),
        ];
        assert!(
            allowed.contains(&Some(name.clone())),
            "display name {name:?}: the last acknowledged was {acked_name:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("run/memd.sock");
    let data = root.path().join("data");
    let acked = Arc::new(Mutex::new(Acked::default()));
    let id = sid(MACD_HUNTER);
    // A small deterministic generator for the kill delays: 20 to 400 ms.
    let mut seed: u64 = 0x5eed;
    let mut next_delay = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        20 + (seed >> 33) % 380
    };
    for round in 0..KILLS {
        let root_copy = tempfile::tempdir().unwrap(); // the harness wants a root to own; data lives in `root`
        let daemon = Daemon::start_in(root_copy, socket.clone(), data.clone(), |_| {});
        let trades_client = daemon.client().await;
        let meta_client = daemon.client().await;
        let acked_trades = acked.clone();
        let trades_task = tokio::spawn(async move {
            for batch in 0.. {
                let trades: Vec<_> = (0..200)
                    .map(|i| closed_trade(format!("r{round}-b{batch}-t{i}")).build())
                    .collect();
                let ids: Vec<String> = trades.iter().map(|t| t.trade_id.clone()).collect();
                if trades_client
                    .call::<method::TradesRecord>(RecordTradesParams { id, trades })
                    .await
                    .is_err()
                {
                    return;
                }
                acked_trades.lock().unwrap().trades.extend(ids);
            }
        });
        let acked_meta = acked.clone();
        let meta_task = tokio::spawn(async move {
            for step in 0.. {
                let name = format!("MACD Hunter r{round} s{step}");
                acked_meta.lock().unwrap().display_name_in_flight = Some(name.clone());
                let patch = json!({"display_name": name});
                if meta_client
                    .call::<method::StrategiesUpdate>(UpdateParams {
                        id,
                        patch,
                        reason: None,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                acked_meta.lock().unwrap().display_name = Some(name);
                let doc = json!({"name": format!("crash_r{round}_s{step}"), "category": "momentum", "language": "python"});
                match meta_client
                    .call::<method::StrategiesRegister>(RegisterParams {
                        strategy: doc,
                        status: None,
                    })
                    .await
                {
                    Ok(detail) => acked_meta
                        .lock()
                        .unwrap()
                        .registered
                        .push(detail.summary.id),
                    Err(_) => return,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(next_delay())).await;
        let mut daemon = daemon;
        daemon.stop_with(Signal::SIGKILL);
        let _ = tokio::join!(trades_task, meta_task);
        check_files(&data, &acked.lock().unwrap());
    }
    // A last start: the daemon reads everything back and agrees with the files.
    let daemon = Daemon::start_in(tempfile::tempdir().unwrap(), socket, data.clone(), |_| {});
    let client = daemon.client().await;
    let recorded = total_trades(&client, id).await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        recorded as usize >= acked.trades.len(),
        "{recorded} < {}",
        acked.trades.len()
    );
    assert!(
        acked.trades.len() > 1000,
        "the test recorded too little to mean anything: {}",
        acked.trades.len()
    );
    for id in &acked.registered {
        client
            .call::<method::StrategiesGet>(GetStrategyParams { id: *id })
            .await
            .unwrap();
    }
    let status = client
        .call::<method::DaemonStatus>(mem_protocol::methods::NoParams {})
        .await
        .unwrap();
    assert_eq!(status.counts.registry_errors, 0);
    let debris: Vec<String> = std::fs::read_dir(data.join("strategy_registry/metadata"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        debris.is_empty(),
        "temporary files of interrupted writes are cleaned up at start: {debris:?}"
    );
    eprintln!(
        "{KILLS} kills; {} trades and {} registrations acknowledged, none lost",
        acked.trades.len(),
        acked.registered.len()
    );
}

/// Kills in the second run: with the first run's 30, over 200 in all.
const KILLS_MODELS_AND_BOTS: usize = 175;

/// Live fake bots started from this data directory, by pid, with the deployment
/// directory their command line names.
fn live_bots(data: &Path) -> Vec<(u32, String)> {
    let needle = data.join("deployments").display().to_string();
    let mut bots = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !text.contains("fake_freqtrade") || !text.contains(&needle) {
            continue;
        }
        // A zombie is no bot.
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            continue;
        }
        let dir = text
            .split_whitespace()
            .find(|w| w.starts_with(&needle))
            .and_then(|w| w[needle.len()..].trim_start_matches('/').split('/').next())
            .unwrap_or("")
            .to_string();
        bots.push((pid, dir));
    }
    bots
}

/// Every live bot is a deployment the state names with that pid, and no deployment has
/// two bots.
fn bots_agree_with_state(data: &Path) -> Result<(), String> {
    let state: Value = serde_json::from_slice(
        &std::fs::read(data.join("deployments/state.json")).unwrap_or_else(|_| b"{}".to_vec()),
    )
    .map_err(|e| format!("state.json does not parse: {e}"))?;
    let text = state.to_string();
    let bots = live_bots(data);
    let mut dirs = HashSet::new();
    for (pid, dir) in &bots {
        if !dirs.insert(dir.clone()) {
            return Err(format!("two bots for deployment {dir}: {bots:?}"));
        }
        if !text.contains(&format!("\"processId\":{pid}")) {
            return Err(format!("bot {pid} ({dir}) is not in state.json: an orphan"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_promotions_and_deployments_loses_and_duplicates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("run/memd.sock");
    let data = root.path().join("data");
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({"fake_bot": {}}),
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nport_range = [19800, 19899]",
        "[schedule.retrain]\nenabled = false\n",
    );
    let start = || {
        // A bot the killed daemon was spawning holds the data directory's lock (a flock
        // is shared across fork) until it runs its program, a moment on a busy machine:
        // the next daemon would find the lock held. Wait for that, 5 s at most (a process
        // that keeps it is named when the next daemon refuses to start).
        let lock = data.join("memd.lock");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !mem_e2e::holders_of(&lock).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let config = config.clone();
        Daemon::start_in(
            tempfile::tempdir().unwrap(),
            socket.clone(),
            data.clone(),
            move |cmd| {
                cmd.arg("--config").arg(&config);
            },
        )
    };
    // Two model versions to switch between.
    let daemon = start();
    let client = daemon.client().await;
    let versions = mem_e2e::model::two_versions(&client).await;
    drop(client);
    let mut daemon = daemon;
    daemon.stop_with(Signal::SIGTERM);
    // The bots deploy on their preferred ports from here on (training deploys nothing).
    let _ports = preferred_ports().await;
    let bots: Vec<StrategyId> = [AGGRESSIVE_RSI, CONSERVATIVE_RSI].map(sid).to_vec();

    let mut seed: u64 = 0xb075;
    let mut next_delay = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        5 + (seed >> 33) % 200
    };
    // The versions `current` may name: the last acknowledged promotion and every one sent
    // since (unanswered because of a kill, which may or may not have applied it, over
    // as many rounds as it takes to get the next one acknowledged).
    let may_be_current: Arc<Mutex<Vec<String>>> = Default::default();
    let mut deploys = 0usize;
    // A loaded machine acknowledges fewer deployments a round: go on past the rounds
    // planned until enough were (at most twice as many rounds).
    let mut rounds = 0;
    for round in 0..2 * KILLS_MODELS_AND_BOTS {
        if round >= KILLS_MODELS_AND_BOTS && deploys > 20 {
            break;
        }
        rounds += 1;
        let daemon = start();
        // After a restart the daemon itself must bring bots and state into agreement.
        let mut agreed = Err(String::new());
        for _ in 0..100 {
            agreed = bots_agree_with_state(&data);
            if agreed.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        agreed.unwrap_or_else(|e| panic!("round {round}: {e}"));
        let client = daemon.client().await;
        let status = client
            .call::<method::MlStatus>(mem_protocol::methods::NoParams {})
            .await
            .unwrap();
        assert!(
            status.load_error.is_none(),
            "round {round}: {:?}",
            status.load_error
        );
        let current = status.current.map(|c| c.version);
        {
            let allowed = may_be_current.lock().unwrap().clone();
            if !allowed.is_empty() {
                assert!(
                    current.as_ref().is_some_and(|c| allowed.contains(c)),
                    "round {round}: current {current:?}, acknowledged or in flight since: {allowed:?}"
                );
            }
        }
        let history = client
            .call::<method::MlHistory>(mem_protocol::methods::NoParams {})
            .await
            .unwrap();
        let marked: Vec<_> = history
            .versions
            .iter()
            .filter(|v| v.status == mem_protocol::ml::ModelStatus::Current)
            .map(|v| v.version.clone())
            .collect();
        assert_eq!(
            marked,
            current.clone().into_iter().collect::<Vec<_>>(),
            "round {round}: the version marked current is the one served"
        );

        let model_client = daemon.client().await;
        let possible = may_be_current.clone();
        let versions = versions.clone();
        let models = tokio::spawn(async move {
            for step in 0.. {
                let version = versions[(round + step) % 2].clone();
                possible.lock().unwrap().push(version.clone());
                let done = model_client
                    .call::<method::MlPromote>(mem_protocol::ml::PromoteParams {
                        version: version.clone(),
                        reason: format!("crash test r{round} s{step}"),
                    })
                    .await;
                if done.is_err() {
                    return;
                }
                *possible.lock().unwrap() = vec![version];
            }
        });
        let bot_client = daemon.client().await;
        let bots = bots.clone();
        let deployer = tokio::spawn(async move {
            let mut n = 0;
            for step in 0.. {
                let id = bots[(round + step) % 2];
                let deployed = bot_client.call::<method::Deploy>(dry_run(id)).await;
                match deployed {
                    Ok(_) => n += 1,
                    Err(mem_protocol::ClientError::Rpc(_)) => {}
                    Err(_) => return n,
                }
                let stopped = bot_client.call::<method::Stop>(stop_now(id)).await;
                if matches!(stopped, Err(ref e) if !matches!(e, mem_protocol::ClientError::Rpc(_)))
                {
                    return n;
                }
            }
            n
        });
        tokio::time::sleep(Duration::from_millis(next_delay())).await;
        let mut daemon = daemon;
        daemon.stop_with(Signal::SIGKILL);
        let _ = models.await;
        deploys += deployer.await.unwrap_or(0);
        // Files parse.
        let models_dir = data.join("models/trend_reversal");
        check_lines(&models_dir.join("pointer.jsonl"));
        if let Ok(name) = std::fs::read_to_string(models_dir.join("current")) {
            assert!(
                models_dir.join(name.trim()).is_dir(),
                "round {round}: current names {name:?}"
            );
        }
        serde_json::from_slice::<Value>(
            &std::fs::read(data.join("deployments/state.json")).unwrap_or_else(|_| b"{}".to_vec()),
        )
        .unwrap_or_else(|e| panic!("round {round}: state.json: {e}"));
        // The daemon is gone; its bots live on by design (the next daemon adopts them).
    }
    let daemon = start();
    let mut agreed = Err(String::new());
    for _ in 0..100 {
        agreed = bots_agree_with_state(&data);
        if agreed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agreed.unwrap();
    drop(daemon);
    mem_e2e::kill_processes_mentioning(&data.join("deployments"));
    assert!(
        deploys > 20,
        "the test deployed too little to mean anything: {deploys}"
    );
    eprintln!(
        "{rounds} kills during promotions and deployments; {deploys} deployments acknowledged"
    );
}
