//! Backup and restore through the real memd and memctl: a backup taken while a client
//! records trades and a native strategy replays candles holds only whole lines, every
//! trade acknowledged before it and as many trades as its manifest says; restored into
//! a fresh directory, a second memd serves the same strategies, trades, versions, model
//! and decisions, with the running deployment recorded as stopped and moved to the new
//! directory. Restore refuses a non-empty target and a damaged backup (a file missing,
//! truncated or changed, no manifest), naming the file, and restores nothing then.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use mem_e2e::deployments::dry_run;
use mem_e2e::seed::{CONSERVATIVE_RSI, NATIVE_RSI, sid};
use mem_e2e::trades::closed_trade;
use mem_e2e::{Daemon, describe, wait_for};
use mem_protocol::backup::Manifest;
use mem_protocol::deploy::*;
use mem_protocol::methods::method;
use mem_protocol::registry::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn trade(id: String, exit: DateTime<Utc>, pnl_pct: f64) -> TradeRecord {
    closed_trade(id).closed_at(exit).returning(pnl_pct).build()
}

/// Damages a copy of a backup.
type Damage<'a> = Box<dyn Fn(&Path) + 'a>;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", describe(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `cp -a` of a backup, to damage the copy.
fn copy_of(backup: &Path, to: &Path) {
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(backup)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

fn expect_refused(out: &std::process::Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}

async fn list(client: &mem_protocol::Client) -> BTreeMap<String, Value> {
    let list = client
        .call_value("strategies.list", json!({"limit": 10_000}))
        .await
        .unwrap();
    list["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

async fn trade_total(client: &mem_protocol::Client, id: &str) -> u64 {
    client
        .call_value("strategies.trades.list", json!({"id": id, "limit": 1}))
        .await
        .unwrap()["total"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_into_a_daemon_with_the_same_data() {
    let a = Daemon::start();
    let client = a.client().await;

    // Something in every store: a new strategy with a version, a parameter change and
    // trades; trades on a seed strategy; two model versions; a decision.
    let subject = client
        .call::<method::StrategiesRegister>(RegisterParams {
            strategy: json!({
                "schema_version": "1.0.0",
                "strategy": {
                    "name": "backup_subject",
                    "display_name": "Backup subject",
                    "description": "Recorded to while a backup is taken",
                    "classification": {"category": "momentum", "sub_category": "breakout", "tags": ["test"], "asset_classes": ["crypto"]},
                    "implementation": {"language": "python", "class_name": "BackupSubject"},
                    "parameters": {"lookback": {"value": 20, "type": "integer", "min": 5, "max": 200}}
                }
            }),
            status: None,
        })
        .await
        .unwrap()
        .summary
        .id
        .to_string();
    client
        .call_value(
            "strategies.versions.create",
            json!({"id": subject, "bump": "minor", "changelog": "longer lookback"}),
        )
        .await
        .unwrap();
    client
        .call_value(
            "strategies.parameters.update",
            json!({"id": subject, "name": "lookback", "value": 30, "reason": "test", "changedBy": "manual"}),
        )
        .await
        .unwrap();
    let base: DateTime<Utc> = "2026-10-01T00:00:00Z".parse().unwrap();
    client
        .call::<method::TradesRecord>(RecordTradesParams {
            id: sid(CONSERVATIVE_RSI),
            trades: (0..12)
                .map(|i| {
                    trade(
                        format!("c{i}"),
                        base + ChronoDuration::hours(i),
                        0.01 - 0.002 * (i % 3) as f64,
                    )
                })
                .collect(),
        })
        .await
        .unwrap();
    let models = mem_e2e::model::two_versions(&client).await;
    let decision = client
        .call_value(
            "mem.decide",
            json!({
                "signal": {"strategy": "backup_subject", "symbol": "BTCUSDT", "action": "BUY", "confidence": 0.7},
                "volatilityPct": 1.0,
                "price": 65000.0
            }),
        )
        .await
        .unwrap();
    let decision_id = decision["id"].as_str().unwrap().to_string();

    // Writers while the backup is taken: a client recording a trade per call, and a
    // native strategy replaying candles (decisions, trades, its state saved).
    client
        .call::<method::Deploy>(DeployParams {
            native: Some(NativeOptions {
                pair: Some("ETH/BTC".into()),
                file: Some("ETH_BTC-5m.feather".into()),
                mode: Some(FeedMode::Replay),
                speed: Some(300.0),
                ..Default::default()
            }),
            ..dry_run(sid(NATIVE_RSI))
        })
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, acked, subject) = (stop.clone(), acked.clone(), subject.clone());
        let client = a.client().await;
        tokio::spawn(async move {
            let mut i = 0i64;
            while !stop.load(Ordering::Acquire) {
                let result = client
                    .call::<method::TradesRecord>(RecordTradesParams {
                        id: sid(&subject),
                        trades: vec![trade(
                            format!("w{i}"),
                            base + ChronoDuration::minutes(i),
                            0.004,
                        )],
                    })
                    .await
                    .unwrap();
                assert_eq!(result.recorded, 1);
                acked.fetch_add(1, Ordering::AcqRel);
                i += 1;
            }
        })
    };
    // Past 64 KiB, so that memd copies the log's beginning before pausing the writers
    // and only the rest in the pause.
    wait_for(
        "the writer's log to pass 64 KiB",
        Duration::from_secs(60),
        async || acked.load(Ordering::Acquire) >= 300,
    )
    .await;

    // A view-only client may not take a backup.
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("b1");
    let dir_text = dir.display().to_string();
    let out = a.memctl(&["--read-only", "backup", &dir_text]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(!dir.exists());

    let acked_before = acked.load(Ordering::Acquire);
    let out = a.memctl(&["backup", &dir_text, "--json"]);
    let report = json_of(&out);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Release);
    writer.await.unwrap();
    let acked_total = acked.load(Ordering::Acquire);
    let token = String::from_utf8(a.memctl(&["http", "token"]).stdout).unwrap();
    assert!(!token.trim().is_empty());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(token.trim()),
        "a backup's report shows no token"
    );

    // The backup: a manifest, modes kept, whole lines only, counts that match the files.
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("backup.json")).unwrap()).unwrap();
    assert_eq!(
        report["files"].as_u64().unwrap() as usize,
        manifest.files.len()
    );
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("backup.json")), 0o600);
    for secret in [
        "http/tokens.json",
        "deployments/state.json",
        "mem_knowledge/decisions.jsonl",
    ] {
        assert_eq!(mode(&dir.join(secret)), 0o600, "{secret}");
    }
    assert!(!dir.join("memd.lock").exists());
    assert!(
        !dir.join("market").exists(),
        "candles are left out by default"
    );
    let counts = &manifest.counts;
    assert_eq!(counts.strategies, 12, "{counts:?}");
    assert_eq!(counts.model_versions, 2);
    assert!(models.contains(counts.current_model.as_ref().unwrap()));
    assert_eq!(counts.deployments, 1);
    assert_eq!(counts.active_deployments, 1, "the replay was running");
    assert!(counts.decision_log_lines >= 1);
    assert_eq!(counts.trades_by_strategy[CONSERVATIVE_RSI], 12);
    let in_backup = counts.trades_by_strategy[&subject];
    assert!(
        in_backup >= acked_before && in_backup <= acked_total,
        "the backup has {in_backup} of the writer's trades: {acked_before} were acknowledged before it, {acked_total} in all"
    );
    assert!(
        acked_total > in_backup,
        "the writer went on after the backup"
    );
    let log = std::fs::read_to_string(
        dir.join("strategy_registry/performance")
            .join(format!("{subject}.jsonl")),
    )
    .unwrap();
    assert!(log.ends_with('\n'));
    let ids: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("a whole line")["trade_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(log.len() > 64 * 1024, "{} bytes", log.len());
    assert_eq!(ids.len() as u64, in_backup);
    let expected: Vec<String> = (0..in_backup).map(|i| format!("w{i}")).collect();
    assert_eq!(ids, expected, "a prefix of what was recorded, in order");
    for path in [
        "mem_knowledge/decisions.jsonl",
        "mem_knowledge/core_memory_updates.txt",
    ] {
        let text = std::fs::read(dir.join(path)).unwrap();
        assert!(
            text.is_empty() || text.ends_with(b"\n"),
            "{path} ends with a whole line"
        );
    }

    // Checked whole, then restored into a new directory.
    let out = a.memctl(&["restore", &dir_text, "--check"]);
    assert!(out.status.success(), "{}", describe(&out));
    let b_root = tempfile::tempdir().unwrap();
    let restored = b_root.path().join("data");
    let restored_text = restored.display().to_string();
    let r = json_of(&a.memctl(&["restore", &dir_text, "--data-dir", &restored_text, "--json"]));
    assert_eq!(r["deploymentsStopped"].as_array().unwrap().len(), 1, "{r}");
    assert!(r["pathsRewritten"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(mode(&restored), 0o750);
    for secret in [
        "http/tokens.json",
        "deployments/state.json",
        "mem_knowledge/decisions.jsonl",
    ] {
        assert_eq!(mode(&restored.join(secret)), 0o600, "{secret}");
    }
    let state = std::fs::read_to_string(restored.join("deployments/state.json")).unwrap();
    assert!(
        !state.contains(&a.data_dir.display().to_string()),
        "every path of the deployment records moved to the new directory: {state}"
    );
    assert!(state.contains(&restored_text));

    // Into a directory that is not empty: refused, nothing touched.
    let out = a.memctl(&["restore", &dir_text, "--data-dir", &restored_text]);
    expect_refused(&out, &["is not empty"]);

    // A second daemon on the restored directory: the same data.
    let b = Daemon::start_in(
        b_root,
        backups.path().join("run-b/memd.sock"),
        restored.clone(),
        |_| {},
    );
    let b_client = b.client().await;
    // The restore is in the restored directory's audit of actions, then B's start.
    let audit = json_of(&b.memctl(&["audit", "--action", "daemon.", "--json"]));
    let entries = audit["entries"].as_array().unwrap();
    let at = entries
        .iter()
        .position(|e| e["action"] == "daemon.restore")
        .unwrap_or_else(|| panic!("no restore in {audit}"));
    let restore = &entries[at];
    assert_eq!(restore["outcome"], "ok", "{restore}");
    assert!(
        restore["client"].as_str().unwrap().starts_with("memctl "),
        "{restore}"
    );
    assert!(restore["uid"].is_u64(), "{restore}");
    assert_eq!(restore["params"]["backup"], dir_text, "{restore}");
    assert_eq!(restore["params"]["deploymentsStopped"], 1, "{restore}");
    let start = &entries[at + 1];
    assert_eq!(start["action"], "daemon.start", "{audit}");
    assert_eq!(start["client"], "memd", "{start}");
    assert_eq!(
        start["params"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{start}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await; // A's live summaries flushed
    let (a_list, b_list) = (list(&client).await, list(&b_client).await);
    assert_eq!(
        a_list.keys().collect::<Vec<_>>(),
        b_list.keys().collect::<Vec<_>>()
    );
    for (id, a_summary) in &a_list {
        let b_summary = &b_list[id];
        if *id == subject || id == NATIVE_RSI {
            // Written after the backup in A: the restored one is as the backup has it.
            assert_eq!(a_summary["name"], b_summary["name"]);
            assert_eq!(a_summary["status"], b_summary["status"]);
            continue;
        }
        assert_eq!(a_summary, b_summary, "strategy {id}");
    }
    assert_eq!(b_list[&subject]["version"], "1.1.0");
    assert_eq!(
        b_list[&subject]["liveTrades"].as_u64(),
        Some(in_backup),
        "the metadata's live summary agrees with the trade log: {}",
        b_list[&subject]
    );
    for (id, n) in &counts.trades_by_strategy {
        assert_eq!(trade_total(&b_client, id).await, *n, "trades of {id}");
    }
    for method in ["strategies.versions.list", "strategies.parameters.history"] {
        let params = json!({"id": subject});
        assert_eq!(
            client.call_value(method, params.clone()).await.unwrap(),
            b_client.call_value(method, params).await.unwrap(),
            "{method}"
        );
    }
    let (a_history, b_history) = (
        client.call_value("ml.history", json!({})).await.unwrap(),
        b_client.call_value("ml.history", json!({})).await.unwrap(),
    );
    assert_eq!(a_history, b_history);
    let b_status = b_client.call_value("ml.status", json!({})).await.unwrap();
    assert_eq!(
        b_status["current"]["version"].as_str(),
        counts.current_model.as_deref()
    );
    let prediction = b_client
        .call_value("ml.predict", json!({"symbol": "ETH/BTC"}))
        .await
        .unwrap();
    assert_eq!(
        prediction["model_version"].as_str(),
        counts.current_model.as_deref()
    );
    let decisions = b_client
        .call_value("mem.decisions", json!({"limit": 100_000}))
        .await
        .unwrap();
    assert!(
        decisions["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == decision_id.as_str()),
        "the decision made before the backup is in the restored memory"
    );
    assert_eq!(decisions["unreadableLines"], 0);
    assert_eq!(
        String::from_utf8(b.memctl(&["http", "token"]).stdout).unwrap(),
        token,
        "the same HTTP token"
    );
    // The replay that was running is recorded as stopped, and stays stopped.
    let deployed = b_client
        .call_value("strategies.deployed", json!({"all": true}))
        .await
        .unwrap();
    let deployments = deployed["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1, "{deployed}");
    assert_eq!(deployments[0]["status"], "stopped");
    assert!(
        deployments[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("restored from a backup"),
        "{deployed}"
    );
    let native_trades = trade_total(&b_client, NATIVE_RSI).await;
    assert_eq!(
        native_trades,
        counts
            .trades_by_strategy
            .get(NATIVE_RSI)
            .copied()
            .unwrap_or(0)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        trade_total(&b_client, NATIVE_RSI).await,
        native_trades,
        "not resumed"
    );

    // Damaged backups restore nothing and name the file at fault.
    let subject_log = format!("strategy_registry/performance/{subject}.jsonl");
    let metadata = format!("strategy_registry/metadata/{subject}.json");
    let cases: [(&str, Damage<'_>, Vec<String>); 4] = [
        (
            "missing",
            Box::new(|d: &Path| std::fs::remove_file(d.join(&metadata)).unwrap()),
            vec![metadata.clone(), "missing".into()],
        ),
        (
            "truncated",
            Box::new(|d: &Path| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join(&subject_log))
                    .unwrap();
                f.set_len(f.metadata().unwrap().len() - 7).unwrap();
            }),
            vec![subject_log.clone(), "truncated".into()],
        ),
        (
            "changed",
            Box::new(|d: &Path| {
                let path = d.join(&subject_log);
                let mut bytes = std::fs::read(&path).unwrap();
                let at = bytes.len() / 2;
                bytes[at] ^= 0x01;
                std::fs::write(&path, bytes).unwrap();
            }),
            vec![subject_log.clone(), "checksum".into()],
        ),
        (
            "no manifest",
            Box::new(|d: &Path| std::fs::remove_file(d.join("backup.json")).unwrap()),
            vec!["not a complete backup".into()],
        ),
    ];
    for (what, damage, needles) in cases {
        let damaged = backups
            .path()
            .join(format!("damaged-{}", what.replace(' ', "-")));
        copy_of(&dir, &damaged);
        damage(&damaged);
        let target = backups
            .path()
            .join(format!("restored-{}", what.replace(' ', "-")));
        let out = a.memctl(&[
            "restore",
            &damaged.display().to_string(),
            "--data-dir",
            &target.display().to_string(),
        ]);
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        expect_refused(&out, &needles);
        assert!(!target.exists(), "{what}: nothing restored");
        let leftovers: Vec<_> = std::fs::read_dir(backups.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("restoring"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{what}: the staging directory is removed"
        );
    }

    // memd refuses a target that is not empty, relative, or inside its data directory.
    for (dir, needle) in [
        (dir_text.clone(), "not empty"),
        ("relative/b2".to_string(), "absolute"),
        (
            a.data_dir.join("b3").display().to_string(),
            "inside the data directory",
        ),
    ] {
        let err = client
            .call_value("daemon.backup", json!({"dir": dir}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
}

/// A memd whose `[schedule.backup]` is `schedule` (its `dir` a directory of the test's).
fn with_backup_job(schedule: &str) -> (Daemon, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let backups = root.path().join("backups");
    let config = root.path().join("memd.toml");
    std::fs::write(
        &config,
        format!(
            "[schedule.backup]\nenabled = true\ndir = {:?}\n{schedule}\n",
            backups.display().to_string()
        ),
    )
    .unwrap();
    (Daemon::with_config(root, &config), backups)
}

/// The job's backups in `dir` that are complete (a manifest), by name.
fn complete_backups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join(mem_protocol::backup::MANIFEST).is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn run_backup_job(client: &mem_protocol::Client) -> mem_protocol::jobs::JobRun {
    client
        .call::<method::JobsRun>(mem_protocol::jobs::RunJobParams {
            name: "backup".into(),
            wait: true,
        })
        .await
        .unwrap()
        .run
        .expect("the finished run")
}

/// The backup job keeps the newest `keep` of its backups, each verified, restorable by
/// memctl; one it cannot write is a failed run naming the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_job_keeps_the_newest_verified_backups() {
    use mem_protocol::jobs::JobOutcome;
    // Its cron far away: the runs are the test's.
    let (daemon, dir) = with_backup_job("cron = \"0 0 0 1 1 *\"\nkeep = 2");
    let client = daemon.client().await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let run = run_backup_job(&client).await;
        assert_eq!(run.outcome, JobOutcome::Succeeded, "{run:?}");
        assert!(
            run.summary.contains("verified against its manifest"),
            "{}",
            run.summary
        );
        let written = run.details["dir"].as_str().unwrap().to_string();
        made.push(
            Path::new(&written)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert_eq!(complete_backups(&dir), made[1..].to_vec());
    assert_eq!(mode(&dir.join(&made[2])), 0o700);
    // memctl finds the newest whole and restorable.
    let out = daemon.memctl(&["restore", dir.join(&made[2]).to_str().unwrap(), "--check"]);
    assert!(out.status.success(), "{}", describe(&out));

    // A directory it cannot make: a failed run that says why, and nothing removed.
    let (broken, blocked) = with_backup_job("cron = \"0 0 0 1 1 *\"");
    std::fs::write(&blocked, "a file where the directory should be").unwrap();
    let run = run_backup_job(&broken.client().await).await;
    assert_eq!(run.outcome, JobOutcome::Failed, "{run:?}");
    let error = run.error.unwrap_or_default();
    assert!(error.contains(&blocked.display().to_string()), "{error}");
}

/// On its schedule (every second here), the job runs by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_job_runs_on_its_schedule() {
    let (daemon, dir) = with_backup_job("cron = \"* * * * * *\"\nkeep = 1");
    let client = daemon.client().await;
    wait_for(
        "two scheduled backups",
        Duration::from_secs(30),
        async || {
            client
                .call::<method::JobsHistory>(mem_protocol::jobs::JobHistoryParams {
                    name: Some("backup".into()),
                    limit: Some(100),
                })
                .await
                .unwrap()
                .runs
                .iter()
                .filter(|r| {
                    r.trigger == mem_protocol::jobs::JobTrigger::Schedule
                        && r.outcome == mem_protocol::jobs::JobOutcome::Succeeded
                })
                .count()
                >= 2
        },
    )
    .await;
    // One kept (and at most one more, being written by a run under way).
    assert!(
        (1..=2).contains(&complete_backups(&dir).len()),
        "{:?}",
        complete_backups(&dir)
    );
}
