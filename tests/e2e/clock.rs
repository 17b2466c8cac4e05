//! The wall clock jumping under a running memd (set by hand, a VM resumed, NTP stepping).
//! memd runs under libfaketime (Debian's `libfaketime`), its offset read from a file the
//! test rewrites; its monotonic clock stays real. memd clears the environment of the bots
//! it starts, so the (fake) bot keeps the real clock: its loop stamps stay off memd's
//! wall clock by the whole jump, the worst case of the seconds after a real jump. Without
//! libfaketime the test says so and skips, unless `MEMD_REQUIRE_FAKETIME` is set.

use mem_e2e::deployments::{active_deployments, dry_run};
use mem_e2e::seed::{AGGRESSIVE_RSI, preferred_ports, sid};
use mem_e2e::{Daemon, wait_for};
use mem_protocol::Client;
use mem_protocol::deploy::DeployedStrategy;
use mem_protocol::jobs::{JobHistoryParams, JobRun};
use mem_protocol::methods::method;
use mem_protocol::registry::TagsParams;
use nix::sys::signal::Signal;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn libfaketime() -> Option<PathBuf> {
    let path = PathBuf::from(LIBFAKETIME);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("MEMD_REQUIRE_FAKETIME").is_none(),
        "{LIBFAKETIME} is missing, and MEMD_REQUIRE_FAKETIME is set"
    );
    eprintln!("no libfaketime ({LIBFAKETIME}; Debian package libfaketime): skipping");
    None
}

/// Sets memd's wall clock to the real one plus `offset` (libfaketime's syntax: "+1d").
fn set_offset(file: &Path, offset: &str) {
    std::fs::write(file, offset).unwrap();
}

async fn runs(client: &Client, job: &str) -> Vec<JobRun> {
    client
        .call::<method::JobsHistory>(JobHistoryParams {
            name: Some(job.into()),
            limit: Some(10_000),
        })
        .await
        .unwrap()
        .runs
}

async fn the_bot(client: &Client) -> DeployedStrategy {
    let all = active_deployments(client).await;
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}

#[tokio::test]
async fn the_wall_clock_jumping_ahead_and_back_pauses_no_job_and_restarts_no_bot() {
    let _ports = preferred_ports().await;
    let Some(faketime) = libfaketime() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let offset = root.path().join("faketime.rc");
    set_offset(&offset, "+0");
    // A bot is idle when its loop stamp is 3 s old; performance sync every second.
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({"fake_bot": {}}),
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nidle_limit_secs = 3\nport_range = [19500, 19599]",
        "[schedule.performance_sync]\ncron = \"* * * * * *\"\n[schedule.learning]\nenabled = false\n[schedule.retrain]\nenabled = false\n",
    );
    let (socket, data) = (root.path().join("run/memd.sock"), root.path().join("data"));
    let mut daemon = Daemon::start_in(root, socket, data, |cmd| {
        cmd.arg("--config")
            .arg(&config)
            .env("LD_PRELOAD", &faketime)
            .env("FAKETIME_TIMESTAMP_FILE", &offset)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    });
    let client = daemon.client().await;
    let id = sid(AGGRESSIVE_RSI);
    client.call::<method::Deploy>(dry_run(id)).await.unwrap();
    let bot = the_bot(&client).await;
    wait_for(
        "two performance syncs",
        Duration::from_secs(10),
        async || runs(&client, "performance_sync").await.len() >= 2,
    )
    .await;

    // A day ahead: the job goes on at the new time, the bot is not taken for idle.
    set_offset(&offset, "+1d");
    let ahead = chrono::Utc::now() + chrono::Duration::hours(23);
    wait_for("a sync a day ahead", Duration::from_secs(10), async || {
        runs(&client, "performance_sync")
            .await
            .iter()
            .any(|r| r.started_at > ahead)
    })
    .await;
    // Longer than the idle limit, with the bot's stamps a day behind memd's clock.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_ahead = the_bot(&client).await;
    assert_eq!(
        (after_ahead.process_id, after_ahead.restarts),
        (bot.process_id, 0),
        "the bot was restarted after the clock jumped ahead:\n{}",
        daemon.stderr()
    );
    assert!(
        daemon.stderr().contains("the wall clock jumped ahead"),
        "{}",
        daemon.stderr()
    );

    // Two hours behind the real time (26 h back): the per-second job must not wait for
    // its old due times.
    set_offset(&offset, "-2h");
    let behind = chrono::Utc::now() - chrono::Duration::minutes(100);
    wait_for(
        "a sync two hours back",
        Duration::from_secs(10),
        async || {
            runs(&client, "performance_sync").await.iter().any(|r| {
                r.started_at < behind && r.started_at > behind - chrono::Duration::hours(1)
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_back = the_bot(&client).await;
    assert_eq!(
        (after_back.process_id, after_back.restarts),
        (bot.process_id, 0),
        "the bot was restarted after the clock went back:\n{}",
        daemon.stderr()
    );
    let log = daemon.stderr();
    assert!(log.contains("the wall clock went back"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    // Writes still land, and everything written across the jumps reads back.
    client
        .call::<method::StrategiesTags>(TagsParams {
            id,
            add: vec!["after-the-jumps".into()],
            remove: vec![],
        })
        .await
        .unwrap();
    drop(client);
    let status = daemon.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{status}\n{}", daemon.stderr());
    let history = std::fs::read_to_string(daemon.data_dir.join("jobs/history.jsonl")).unwrap();
    for line in history.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("jobs/history.jsonl: {e}: {line}"));
    }
    // Started again on the real clock.
    daemon.child = Daemon::spawn_raw(
        daemon.root.path(),
        &daemon.socket,
        &daemon.data_dir,
        |cmd| {
            cmd.arg("--config").arg(&config);
        },
    );
    daemon.wait_ready();
    let client = daemon.client().await;
    let strategy = client
        .call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams { id })
        .await
        .unwrap();
    let text = serde_json::to_string(&strategy).unwrap();
    assert!(text.contains("after-the-jumps"), "{text}");
}
