//! Retention (issue 28) under an accelerated clock: the real memd with `[schedule.retention]`
//! running every second and ages of about three seconds, driven through deploy/stop
//! cycles of the fake bot, each deployment leaving a heavy file in its directory (a bot's
//! SQLite database grows so). After warm-up the data directory's size stays flat; every
//! pruned deployment left its summary, its trades stay in the registry, and the audit of
//! actions is archived past its size with only the newest archives kept.

use mem_e2e::deployments::{active_deployment, dry_run_on_port, stop_now, total_trades};
use mem_e2e::seed::{AGGRESSIVE_RSI, sid};
use mem_e2e::{Daemon, fake_freqtrade_config, free_port, wait_for};
use mem_protocol::deploy::{DeploymentId, DeploymentStatus, LogsParams};
use mem_protocol::methods::method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// What a bot's database grows to in each cycle.
const HEAVY: usize = 1 << 20;
const CYCLES: usize = 8;
/// Cycles before the size is expected to be flat.
const WARM_UP: usize = 2;

/// The bytes under `path`.
fn disk_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| disk_bytes(&e.path())).sum())
        .unwrap_or(0)
}

/// Each entry of `dir` with its bytes: what grew, when the size is not flat.
fn breakdown(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.file_name().to_string_lossy(),
                        disk_bytes(&e.path())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The names in `dir` ending in `suffix`.
fn named(dir: &Path, suffix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_data_directory_stays_flat_under_an_accelerated_clock() {
    let root = tempfile::tempdir().unwrap();
    // 0.00003 days: 2.6 s.
    let config = fake_freqtrade_config(
        root.path(),
        json!({"fake_bot": {"closed_trades": 3}}),
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3",
        "[schedule.retention]\ncron = \"* * * * * *\"\ndeployments_days = 0.00003\ndeployment_summaries = 3\nqueue_days = 0.00003\naudit_max_bytes = 1024\nalerts_history_max_bytes = 1024\narchives = 2\n[mem]\ndecision_log_max_bytes = 4096\ntext_log_max_bytes = 4096\narchive_keep_days = 0.00003\n",
    );
    let daemon = Daemon::with_config(root, &config);
    let client = daemon.client().await;
    let data = daemon.data_dir.clone();
    let deployments = data.join("deployments");
    let started = Instant::now();
    let mut sizes = Vec::new();
    let mut ids: Vec<DeploymentId> = Vec::new();
    for cycle in 0..CYCLES {
        let d = client
            .call::<method::Deploy>(dry_run_on_port(sid(AGGRESSIVE_RSI), free_port()))
            .await
            .unwrap();
        assert_eq!(d.status, DeploymentStatus::Running);
        let dir = deployments.join(d.deployment_id.to_string());
        std::fs::write(dir.join("tradesv3.sqlite-heavy"), vec![7u8; HEAVY]).unwrap();
        // MEM's decisions: both memory logs archived past 4 KiB, archives gone after 2.6 s.
        for i in 0..20 {
            client
                .call_value(
                    "mem.decide",
                    json!({
                        "signal": {"strategy": "soak", "symbol": "BTC/USDT", "action": "BUY", "confidence": 0.7},
                        "volatilityPct": 1.0,
                        "price": 100.0 + i as f64
                    }),
                )
                .await
                .unwrap();
        }
        wait_for(
            "the bot's trades synced",
            Duration::from_secs(10),
            async || {
                total_trades(&client, sid(AGGRESSIVE_RSI)).await >= 3
                    && active_deployment(&client, sid(AGGRESSIVE_RSI))
                        .await
                        .is_some_and(|d| d.stats.closed_trades == 3)
            },
        )
        .await;
        client
            .call::<method::Stop>(stop_now(sid(AGGRESSIVE_RSI)))
            .await
            .unwrap();
        // The previous cycle's deployment is pruned by the job, its summary left.
        if let Some(previous) = ids.last() {
            let summary = deployments.join(format!("{previous}.summary.json"));
            let gone = deployments.join(previous.to_string());
            wait_for(
                "the previous deployment to be pruned",
                Duration::from_secs(10),
                async || summary.exists() && !gone.exists(),
            )
            .await;
        }
        ids.push(d.deployment_id);
        sizes.push(disk_bytes(&data));
        eprintln!(
            "cycle {cycle}: {} bytes at {:.1}s",
            sizes[cycle],
            started.elapsed().as_secs_f64()
        );
    }

    // Flat after warm-up: 8 MiB written, the size of the last cycles within 256 KiB of
    // the first ones after warm-up (the jobs' history grows by a line a second).
    let early = sizes[WARM_UP..WARM_UP + 3].iter().max().unwrap();
    let late = sizes[CYCLES - 3..].iter().max().unwrap();
    assert!(
        *late <= early + (256 << 10),
        "the data directory grew: {sizes:?}; now {}",
        breakdown(&data)
    );

    // The last deployment ages out too; summaries beyond 3 are removed, the newest kept.
    let last = *ids.last().unwrap();
    wait_for(
        "the last deployment to be pruned",
        Duration::from_secs(10),
        async || {
            deployments.join(format!("{last}.summary.json")).exists()
                && !deployments.join(last.to_string()).exists()
        },
    )
    .await;
    let summaries = named(&deployments, ".summary.json");
    assert_eq!(summaries.len(), 3, "{summaries:?}");
    for id in &ids[CYCLES - 3..] {
        assert!(
            summaries.contains(&format!("{id}.summary.json")),
            "{summaries:?}"
        );
    }
    let summary: Value = serde_json::from_slice(
        &std::fs::read(deployments.join(format!("{last}.summary.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["endReason"], "stopped", "{summary}");
    assert_eq!(summary["record"]["status"], "stopped", "{summary}");
    assert_eq!(summary["record"]["stats"]["closedTrades"], 3, "{summary}");
    let lines = summary["logLines"].as_array().unwrap();
    assert!(!lines.is_empty() && lines.len() <= 50, "{summary}");
    assert!(
        summary["bytes"].as_u64().unwrap() >= HEAVY as u64,
        "{summary}"
    );
    // The pruned deployment's log is still answered, from its summary.
    let logs = client
        .call::<method::Logs>(LogsParams {
            id: sid(AGGRESSIVE_RSI),
            lines: Some(2),
        })
        .await
        .unwrap();
    assert_eq!(logs.deployment_id, last);
    let kept: Vec<&str> = lines.iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(logs.lines, kept[kept.len() - 2..], "{summary}");
    // Its trades stay in the registry, and its record in the table.
    assert!(total_trades(&client, sid(AGGRESSIVE_RSI)).await >= 3);
    let all = client
        .call::<method::Deployed>(mem_protocol::deploy::DeployedParams { all: true })
        .await
        .unwrap();
    assert_eq!(all.deployments.len(), CYCLES, "the records stay");

    // The memory's logs: archived and compressed, the old archives deleted.
    let memory = data.join("mem_knowledge");
    assert!(
        !named(&memory, ".jsonl.gz").is_empty(),
        "{}",
        breakdown(&memory)
    );
    assert!(
        named(&memory, ".jsonl").len() <= 2,
        "{}",
        breakdown(&memory)
    );
    assert!(disk_bytes(&memory) < 64 << 10, "{}", breakdown(&memory));

    // The audit of actions (a deploy and a stop a cycle) was archived past 1 KiB; two
    // archives kept.
    let archives = named(&data.join("audit"), ".jsonl.gz");
    assert_eq!(archives.len(), 2, "{archives:?}");
    assert!(
        std::fs::metadata(data.join("audit/actions.jsonl"))
            .unwrap()
            .len()
            < 4096,
        "the live audit was rolled over"
    );

    // Operators see it run.
    let history = client
        .call::<method::JobsHistory>(mem_protocol::jobs::JobHistoryParams {
            name: Some("retention".into()),
            limit: Some(1000),
        })
        .await
        .unwrap();
    let pruning = history
        .runs
        .iter()
        .filter(|r| r.summary.contains("ended deployment") && !r.summary.starts_with("0 "))
        .count();
    assert!(pruning >= CYCLES - 1, "{:?}", history.runs.first());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the soak took {:?}",
        started.elapsed()
    );
}
