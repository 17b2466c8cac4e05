//! Deployments through the real daemon, with the fake bot (`fake_freqtrade`) standing in
//! for Freqtrade where a fault must be injected: crash at start, crash later, hang on
//! stop, re-adoption after the daemon is killed. The same paths against the real
//! Freqtrade are in `freqtrade_bots.rs`.

use mem_e2e::deployments::{
    active_deployment, active_deployments, dry_run, dry_run_on_port, stop_now, total_trades,
};
use mem_e2e::seed::{
    AGGRESSIVE_RSI, CONSERVATIVE_RSI, MACD_HUNTER, NATIVE_RSI, preferred_ports, sid,
};
use mem_e2e::{Daemon, alive, describe, free_port, processes_mentioning, wait_for};
use mem_protocol::deploy::*;
use mem_protocol::methods::{ListStrategiesParams, method};
use mem_protocol::{Client, ErrorCode};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Deploys on a free port of its own (tests run in parallel; the seed bots' preferred
/// ports would collide).
async fn deploy(client: &Client, id: &str) -> Result<DeployedStrategy, mem_protocol::ClientError> {
    client
        .call::<method::Deploy>(dry_run_on_port(sid(id), free_port()))
        .await
}

/// Deploys on the strategy's preferred port.
async fn deploy_preferred(
    client: &Client,
    id: &str,
) -> Result<DeployedStrategy, mem_protocol::ClientError> {
    client.call::<method::Deploy>(dry_run(sid(id))).await
}

#[tokio::test]
async fn deploy_watch_and_stop_a_bot() {
    let _ports = preferred_ports().await;
    let daemon = Daemon::with_fake_freqtrade(json!({"closed_trades": 3}), "");
    let client = daemon.client().await;
    let d = deploy_preferred(&client, AGGRESSIVE_RSI).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Running);
    assert!(d.dry_run, "dry-run unless asked");
    assert_eq!(d.port, Some(8084), "the strategy's preferred port");
    assert_eq!(d.strategy_name, "Freqtrade Aggressive RSI");
    let pid = d.process_id.unwrap();
    assert!(alive(pid));
    let config = Path::new(d.config_file.as_deref().unwrap());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(config).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o600, "the rendered config holds secrets");
    let rendered: Value = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    assert_eq!(rendered["api_server"]["listen_ip_address"], "127.0.0.1");
    assert_eq!(rendered["dry_run"], true);
    let password = rendered["api_server"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(password, "trading123");

    // Polled: stats, and the bot's closed trades land in the registry (the poll copies
    // the trades, then refreshes the deployment's figures: wait for both).
    wait_for(
        "the closed trades to be synced",
        Duration::from_secs(10),
        async || {
            total_trades(&client, sid(AGGRESSIVE_RSI)).await == 3
                && active_deployment(&client, sid(AGGRESSIVE_RSI))
                    .await
                    .is_some_and(|d| d.stats.closed_trades == 3)
        },
    )
    .await;
    let polled = active_deployment(&client, sid(AGGRESSIVE_RSI))
        .await
        .unwrap();
    assert_eq!(polled.stats.closed_trades, 3);
    assert_eq!(polled.stats.balance, Some(1000.0));
    assert!(polled.warnings >= 1, "warnings counted from the log");
    assert!(polled.rss_bytes.is_some_and(|b| b > 0));
    let listed = client
        .call::<method::StrategiesList>(ListStrategiesParams {
            query: Some("aggressive rsi".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(listed.strategies[0].is_deployed);

    // Deploying it again: a clear error, nothing started.
    let err = deploy(&client, AGGRESSIVE_RSI).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Conflict), "{err}");
    assert!(err.to_string().contains("already deployed"), "{err}");

    let logs = client
        .call::<method::Logs>(LogsParams {
            id: sid(AGGRESSIVE_RSI),
            lines: Some(5),
        })
        .await
        .unwrap();
    assert!(
        logs.lines.iter().any(|l| l.contains("Bot heartbeat")),
        "{:?}",
        logs.lines
    );

    let out = daemon.memctl(&["deployed"]);
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("Freqtrade Aggressive RSI"),
        "{}",
        describe(&out)
    );
    let out = daemon.memctl(&["deployed", "--json"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&password),
        "no credential in CLI output"
    );

    let stopped = client
        .call::<method::Stop>(stop_now(sid(AGGRESSIVE_RSI)))
        .await
        .unwrap();
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    wait_for("the bot to be gone", Duration::from_secs(5), async || {
        !alive(pid)
    })
    .await;
    assert!(
        active_deployment(&client, sid(AGGRESSIVE_RSI))
            .await
            .is_none()
    );
    let listed = client
        .call::<method::StrategiesList>(ListStrategiesParams {
            query: Some("aggressive rsi".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!listed.strategies[0].is_deployed);
    assert!(
        !daemon.stderr().contains(&password),
        "no credential in the daemon's log"
    );
}

#[tokio::test]
async fn refusals_are_clear_and_start_nothing() {
    let _ports = preferred_ports().await;
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    let err = deploy(&client, "00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    // A native strategy trades on paper only (tests/e2e/native.rs deploys them).
    let err = client
        .call::<method::Deploy>(DeployParams {
            dry_run: false,
            ..dry_run(sid(NATIVE_RSI))
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied), "{err}");
    assert!(err.to_string().contains("paper"), "{err}");
    let err = client
        .call::<method::Deploy>(DeployParams {
            dry_run: false,
            ..dry_run(sid(MACD_HUNTER))
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied), "{err}");
    assert!(err.to_string().contains("allow_live"), "{err}");
    let busy = std::net::TcpListener::bind(("127.0.0.1", 8082)).unwrap();
    let err = deploy_preferred(&client, CONSERVATIVE_RSI)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Conflict), "{err}");
    assert!(err.to_string().contains("port 8082 is busy"), "{err}");
    drop(busy);
    client
        .call::<method::StrategiesDeprecate>(mem_protocol::registry::DeprecateParams {
            id: sid(CONSERVATIVE_RSI),
            reason: "old".into(),
            date: None,
            replacement_id: None,
        })
        .await
        .unwrap();
    let err = deploy(&client, CONSERVATIVE_RSI).await.unwrap_err();
    assert!(err.to_string().contains("deprecated"), "{err}");
    assert!(active_deployments(&client).await.is_empty());

    // A daemon told to use a Freqtrade that is not there.
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("memd.toml");
    std::fs::write(&config, "[freqtrade]\nbin = \"/nonexistent/freqtrade\"\n").unwrap();
    let no_freqtrade = Daemon::with_config(root, &config);
    let err = deploy(&no_freqtrade.client().await, MACD_HUNTER)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unavailable), "{err}");
    assert!(err.to_string().contains("/nonexistent/freqtrade"), "{err}");
}

#[tokio::test]
async fn a_bot_that_fails_at_start_is_reported_with_its_log() {
    let daemon = Daemon::with_fake_freqtrade(json!({"exit_at_start": 0}), "");
    let client = daemon.client().await;
    let err = deploy(&client, MACD_HUNTER).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unavailable), "{err}");
    assert!(
        err.to_string().contains("Configuration error"),
        "the log lines are in the error: {err}"
    );
    assert!(
        active_deployment(&client, sid(MACD_HUNTER)).await.is_none(),
        "failed deployments are not listed as running"
    );
}

#[tokio::test]
async fn a_killed_bot_is_restarted_and_one_that_keeps_dying_is_marked_failed() {
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    let first = deploy(&client, MACD_HUNTER).await.unwrap();
    let pid = first.process_id.unwrap();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    wait_for("a restart", Duration::from_secs(15), async || {
        active_deployment(&client, sid(MACD_HUNTER))
            .await
            .is_some_and(|d| {
                d.status == DeploymentStatus::Running
                    && d.restarts == 1
                    && d.process_id != Some(pid)
            })
    })
    .await;

    let flaky = Daemon::with_fake_freqtrade(json!({"crash_after_secs": 0.5}), "");
    let client = flaky.client().await;
    deploy(&client, MACD_HUNTER).await.unwrap();
    wait_for(
        "the deployment to be marked failed",
        Duration::from_secs(30),
        async || {
            let all = active_deployments(&client).await;
            all.iter().all(|d| d.strategy_id != sid(MACD_HUNTER))
        },
    )
    .await;
    let events_log = flaky.stderr();
    assert!(events_log.contains("bot crashed"), "{events_log}");
}

#[tokio::test]
async fn a_bot_that_stops_looping_is_restarted() {
    let daemon = Daemon::with_fake_freqtrade(json!({"idle": true}), "");
    let client = daemon.client().await;
    let first = deploy(&client, MACD_HUNTER).await.unwrap();
    wait_for("an idle restart", Duration::from_secs(15), async || {
        active_deployment(&client, sid(MACD_HUNTER))
            .await
            .is_some_and(|d| d.restarts >= 1 && d.process_id != first.process_id)
    })
    .await;
    assert!(daemon.stderr().contains("idle"), "{}", daemon.stderr());
}

#[tokio::test]
async fn a_bot_that_ignores_sigterm_is_killed_after_the_grace() {
    let daemon = Daemon::with_fake_freqtrade(json!({"ignore_sigterm": true}), "");
    let client = daemon.client().await;
    let d = deploy(&client, MACD_HUNTER).await.unwrap();
    let started = Instant::now();
    client
        .call::<method::Stop>(stop_now(sid(MACD_HUNTER)))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "SIGTERM first, then the grace period"
    );
    assert!(!alive(d.process_id.unwrap()));
}

#[tokio::test]
async fn drain_waits_for_open_trades_then_stops() {
    let daemon = Daemon::with_fake_freqtrade(json!({"open_trade_secs_after_stopentry": 1.5}), "");
    let client = daemon.client().await;
    let d = deploy(&client, MACD_HUNTER).await.unwrap();
    let started = Instant::now();
    let stopped = client
        .call::<method::Stop>(StopParams {
            id: sid(MACD_HUNTER),
            mode: StopMode::Drain,
            deadline_secs: Some(20),
        })
        .await
        .unwrap();
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "it waited for the open trade: {:?}",
        started.elapsed()
    );
    assert!(!alive(d.process_id.unwrap()));
    let log = std::fs::read_to_string(
        Path::new(d.config_file.as_deref().unwrap()).with_file_name("freqtrade.log"),
    )
    .unwrap();
    assert!(
        log.contains("Entries stopped by the API"),
        "drain called stopentry first"
    );
}

/// A stop polls the bot once more: trades it closed since the last poll reach the
/// registry (with a minute between polls, the stop comes before any).
#[tokio::test]
async fn a_stop_copies_the_trades_closed_since_the_last_poll() {
    let root = tempfile::tempdir().unwrap();
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({"fake_bot": {"closed_trades": 3}}),
        "poll_interval_secs = 60\nready_timeout_secs = 10\nstop_timeout_secs = 3",
        "",
    );
    let daemon = Daemon::with_config(root, &config);
    let client = daemon.client().await;
    deploy(&client, AGGRESSIVE_RSI).await.unwrap();
    assert_eq!(
        total_trades(&client, sid(AGGRESSIVE_RSI)).await,
        0,
        "no poll yet"
    );
    let stopped = client
        .call::<method::Stop>(stop_now(sid(AGGRESSIVE_RSI)))
        .await
        .unwrap();
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    assert_eq!(stopped.stats.closed_trades, 3, "{stopped:?}");
    assert_eq!(total_trades(&client, sid(AGGRESSIVE_RSI)).await, 3);
}

#[tokio::test]
async fn after_a_daemon_crash_running_bots_are_adopted_not_duplicated() {
    let mut daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let d = {
        let client = daemon.client().await;
        deploy(&client, MACD_HUNTER).await.unwrap()
    };
    let pid = d.process_id.unwrap();
    daemon.stop_with(Signal::SIGKILL);
    assert!(alive(pid), "the bot outlives its daemon");
    let root = std::mem::replace(&mut daemon.root, tempfile::tempdir().unwrap());
    let config = root.path().join("memd.toml");
    // The same socket and data directory, under the same root.
    let restarted = Daemon::with_config(root, &config);
    let client = restarted.client().await;
    let adopted = active_deployment(&client, sid(MACD_HUNTER)).await.unwrap();
    assert_eq!(adopted.process_id, Some(pid), "the same process");
    assert_eq!(adopted.status, DeploymentStatus::Running);
    assert_eq!(adopted.restarts, 0);
    assert!(
        restarted.stderr().contains("re-adopted"),
        "{}",
        restarted.stderr()
    );
    // No twin: exactly one fake bot runs with this deployment's config.
    assert_eq!(processes_mentioning(&d.deployment_id.to_string()), 1);
    client
        .call::<method::Stop>(stop_now(sid(MACD_HUNTER)))
        .await
        .unwrap();
    assert!(!alive(pid));
}

#[tokio::test]
async fn restart_gives_a_new_process_and_logs_can_be_followed() {
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    let first = deploy(&client, MACD_HUNTER).await.unwrap();
    // Kept: a dropped client closes its connection.
    let follower = daemon.client().await;
    let (_, mut events) = follower
        .subscribe(vec![mem_protocol::Topic::Logs])
        .await
        .unwrap();
    let line = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("log lines within 5 s")
        .unwrap();
    assert!(
        matches!(line.event, mem_protocol::Event::BotLog(ref l) if l.strategy_id == sid(MACD_HUNTER) && !l.lines.is_empty())
    );
    let again = client
        .call::<method::Restart>(stop_now(sid(MACD_HUNTER)))
        .await
        .unwrap();
    assert_eq!(again.status, DeploymentStatus::Running);
    assert_eq!(again.port, first.port, "same port");
    assert_ne!(again.deployment_id, first.deployment_id);
    assert!(!alive(first.process_id.unwrap()));
    assert!(alive(again.process_id.unwrap()));
    let all = active_deployments(&client).await;
    assert_eq!(all.len(), 1, "no twin after a restart");
}

#[tokio::test]
async fn stop_all_stops_every_bot() {
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    let a = deploy(&client, MACD_HUNTER).await.unwrap();
    let b = deploy(&client, AGGRESSIVE_RSI).await.unwrap();
    let stopped = client
        .call::<method::StopAll>(StopAllParams::default())
        .await
        .unwrap();
    assert_eq!(stopped.deployments.len(), 2);
    assert!(
        stopped
            .deployments
            .iter()
            .all(|d| d.status == DeploymentStatus::Stopped)
    );
    for pid in [a.process_id.unwrap(), b.process_id.unwrap()] {
        wait_for("the bots to be gone", Duration::from_secs(5), async || {
            !alive(pid)
        })
        .await;
    }
    assert!(active_deployments(&client).await.is_empty());
}

#[tokio::test]
async fn a_bot_whose_api_never_answers_is_stopped_and_reported() {
    let daemon = Daemon::with_fake_freqtrade(json!({"never_ready": true}), "");
    let client = daemon.client().await;
    let port = free_port();
    let err = client
        .call_with_timeout::<method::Deploy>(
            dry_run_on_port(sid(MACD_HUNTER), port),
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unavailable), "{err}");
    assert!(
        err.to_string().contains("did not answer within 10 s"),
        "{err}"
    );
    let leftovers =
        processes_mentioning(&daemon.data_dir.join("deployments").display().to_string());
    assert_eq!(leftovers, 0, "the bot that never became ready was stopped");
}

/// Paths and names from clients stay inside the data directory and never reach a shell:
/// a native feed file, a registered strategy's base config file and class name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_paths_cannot_escape_the_data_directory() {
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    for (file, needle) in [
        ("../../../../../../etc/passwd", "may not contain `..`"),
        ("/etc/passwd", "is outside"),
        ("futures/../../../etc/hostname", "may not contain `..`"),
    ] {
        let err = client
            .call::<method::Deploy>(DeployParams {
                native: Some(NativeOptions {
                    file: Some(file.into()),
                    mode: Some(FeedMode::Replay),
                    ..Default::default()
                }),
                ..dry_run(sid(NATIVE_RSI))
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidParams), "{file}: {err}");
        assert!(
            err.to_string().contains("native.file") && err.to_string().contains(needle),
            "{file}: {err}"
        );
    }
    // A strategy registered with a base config that climbs out of the data directory,
    // or a class name that is not one, is refused at registration, the field named; one
    // with an absolute base config outside the data directory, at deploy.
    let register = async |config_file: &str, class: &str| {
        client
            .call::<method::StrategiesRegister>(mem_protocol::registry::RegisterParams {
                strategy: json!({"strategy": {
                    "name": format!("escape_{}", config_file.len() + class.len()),
                    "display_name": "Escape",
                    "description": "tries to leave the data directory",
                    "classification": {"category": "momentum"},
                    "implementation": {"language": "freqtrade", "class_name": class},
                    "deployment": {"type": "freqtrade", "strategy_name": class, "config_file": config_file}
                }}),
                status: None,
            })
            .await
    };
    for (config_file, class, field, needle) in [
        (
            "../../../../etc/passwd",
            "Escape",
            "config_file",
            "may not contain `..`",
        ),
        (
            "freqtrade/configs/config_macd.json",
            "x; rm -rf /",
            "strategy_name",
            "not a Python class name",
        ),
        (
            "freqtrade/configs/config_macd.json",
            "../Escape",
            "strategy_name",
            "not a Python class name",
        ),
    ] {
        let err = register(config_file, class).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(ErrorCode::InvalidParams),
            "{config_file}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("strategy.deployment: field `{field}`"))
                && message.contains(needle),
            "{config_file} {class}: {err}"
        );
    }
    let id = register("/etc/passwd", "Escape").await.unwrap().summary.id;
    let err = deploy(&client, &id.to_string()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidParams), "{err}");
    assert!(err.to_string().contains("is outside"), "{err}");
    let deployed = client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
        .unwrap();
    assert!(deployed.deployments.is_empty(), "nothing started");
}

/// A daemon killed between spawning a bot and saving its pid leaves a bot that
/// `state.json` does not know: the next daemon stops it rather than letting it trade
/// unsupervised (found by the crash test's orphan check; reproduced here exactly).
#[tokio::test]
async fn a_bot_the_state_does_not_record_is_stopped_at_start() {
    let mut daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let d = {
        let client = daemon.client().await;
        deploy(&client, MACD_HUNTER).await.unwrap()
    };
    let recorded = d.process_id.unwrap();
    daemon.stop_with(Signal::SIGKILL);
    // The unrecorded bot: a deployment directory of its own, started as memd starts bots.
    let known = Path::new(d.config_file.as_deref().unwrap())
        .parent()
        .unwrap();
    let stray = known.with_file_name(uuid_like());
    std::fs::create_dir_all(stray.join("user_data")).unwrap();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(known.join("config.json")).unwrap()).unwrap();
    let port = free_port();
    config["api_server"]["listen_port"] = json!(port);
    std::fs::write(stray.join("config.json"), config.to_string()).unwrap();
    let mut orphan = std::process::Command::new(mem_e2e::bin("fake_freqtrade"))
        .arg("trade")
        .arg("--config")
        .arg(stray.join("config.json"))
        .arg("--logfile")
        .arg(stray.join("freqtrade.log"))
        .process_group(0)
        .spawn()
        .unwrap();
    let root = std::mem::replace(&mut daemon.root, tempfile::tempdir().unwrap());
    let config_file = root.path().join("memd.toml");
    // The same socket and data directory, under the same root.
    let restarted = Daemon::with_config(root, &config_file);
    // Ready means the start-up check has run.
    let status = orphan.try_wait().unwrap();
    assert!(
        status.is_some(),
        "the unrecorded bot was stopped:\n{}",
        restarted.stderr()
    );
    assert!(
        restarted.stderr().contains("not in deployments/state.json"),
        "{}",
        restarted.stderr()
    );
    assert!(alive(recorded), "the recorded bot is adopted, not stopped");
    let client = restarted.client().await;
    let adopted = active_deployment(&client, sid(MACD_HUNTER)).await.unwrap();
    assert_eq!(adopted.process_id, Some(recorded));
}

fn uuid_like() -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        0xdead_beef_u64
    )
}

/// The registry's `stoploss` and `minimal_roi` of a Freqtrade strategy are in the bot's
/// rendered config from the deploy on; changing one rewrites the config (still 0600, the
/// credentials kept) and tells the bot to reload it; a parameter that is no config key is
/// only recorded, and a refused value changes nothing.
#[tokio::test]
async fn a_config_key_parameter_reaches_the_running_bot_through_reload_config() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    let d = deploy(&client, MACD_HUNTER).await.unwrap();
    let config_path = std::path::PathBuf::from(d.config_file.clone().unwrap());
    let log_path = config_path.with_file_name("freqtrade.log");
    let read =
        || -> Value { serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap() };
    let before = read();
    assert_eq!(
        before["stoploss"],
        json!(-0.08),
        "the registry's value at deploy"
    );
    assert_eq!(
        before["minimal_roi"],
        json!({"0": 0.15, "20": 0.08, "40": 0.03})
    );
    let reloads = || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("reload_config: re-read the config"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(reloads().is_empty());

    let out = daemon.memctl(&[
        "strategies",
        "params",
        "set",
        MACD_HUNTER,
        "stoploss",
        "-0.05",
        "--reason",
        "tighter stop in a quiet market",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stoploss: -0.08 -> -0.05"), "{text}");
    assert!(
        text.contains("Freqtrade config key `stoploss`")
            && text.contains("told to reload it")
            && text.contains(&d.deployment_id.to_string()),
        "{text}"
    );
    let after = read();
    assert_eq!(after["stoploss"], json!(-0.05));
    assert_eq!(
        after["api_server"], before["api_server"],
        "the credentials and port are kept"
    );
    assert_eq!(
        std::fs::metadata(&config_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    wait_for(
        "the bot to reload its config",
        Duration::from_secs(10),
        async || reloads().len() == 1,
    )
    .await;
    assert!(reloads()[0].contains("stoploss=-0.05"), "{:?}", reloads());

    // minimal_roi is a config key too; an object goes through as JSON.
    let update = client
        .call_value(
            "strategies.parameters.update",
            json!({"id": MACD_HUNTER, "name": "minimal_roi", "value": {"0": 0.1, "30": 0.02}, "reason": "take profit sooner"}),
        )
        .await
        .unwrap();
    assert_eq!(
        update["new_value"],
        json!({"0": 0.1, "30": 0.02}),
        "{update}"
    );
    assert!(
        update["applied"][0]
            .as_str()
            .unwrap()
            .contains("told to reload it"),
        "{update}"
    );
    wait_for("the second reload", Duration::from_secs(10), async || {
        reloads().len() == 2
    })
    .await;
    assert!(
        reloads()[1].contains(r#"minimal_roi={"0":0.1,"30":0.02}"#),
        "{:?}",
        reloads()
    );

    // A strategy parameter of the Python code: recorded only, the config untouched.
    let update = client
        .call_value(
            "strategies.parameters.update",
            json!({"id": MACD_HUNTER, "name": "macd_fast", "value": 10, "reason": "faster"}),
        )
        .await
        .unwrap();
    assert!(
        update["applied"][0]
            .as_str()
            .unwrap()
            .starts_with("recorded only: `macd_fast` is not a Freqtrade config key"),
        "{update}"
    );
    // Refused values change nothing: out of the declared range, or not what Freqtrade takes.
    for (name, value, needle) in [
        (
            "stoploss",
            json!(-0.9),
            "-0.9 is outside the declared range -0.5 .. -0.005: below the minimum -0.5",
        ),
        (
            "minimal_roi",
            json!({"soon": 0.1}),
            "not a number of minutes",
        ),
    ] {
        let err = client
            .call_value(
                "strategies.parameters.update",
                json!({"id": MACD_HUNTER, "name": name, "value": value, "reason": "x"}),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{name}: {err}");
    }
    let last = read();
    assert_eq!(last["stoploss"], json!(-0.05));
    assert!(last.get("macd_fast").is_none());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(reloads().len(), 2, "no reload for what is not a config key");
    let history = client
        .call_value("strategies.parameters.history", json!({"id": MACD_HUNTER}))
        .await
        .unwrap();
    let names: Vec<&str> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["parameter_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["stoploss", "minimal_roi", "macd_fast"]);
    let d = active_deployment(&client, sid(MACD_HUNTER)).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Running, "{d:?}");
    assert_eq!(d.restarts, 0, "a reload is not a restart");
}

/// Issue 22: a bot that failed is listed by default (`memctl deployed`, and the TUI's
/// default filter, from `acknowledged`) until a person acknowledges it; an active
/// deployment cannot be acknowledged; the acknowledgement survives a daemon restart.
#[tokio::test]
async fn a_failure_is_listed_until_acknowledged_even_across_a_restart() {
    let mut daemon = Daemon::with_fake_freqtrade(json!({"exit_at_start": 0}), "");
    let client = daemon.client().await;
    deploy(&client, MACD_HUNTER).await.unwrap_err();
    let all = |list: DeployedList| list.deployments;
    let failed = all(client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
        .unwrap())
    .into_iter()
    .find(|d| d.strategy_id == sid(MACD_HUNTER))
    .expect("the failed deployment is remembered");
    assert_eq!(failed.status, DeploymentStatus::Failed);
    assert!(failed.needs_acknowledgement(), "{failed:?}");
    assert!(
        failed.cpu_percent.is_none() && failed.rss_bytes.is_none(),
        "no figures for a process that is gone: {failed:?}"
    );
    let id = failed.deployment_id.to_string();

    // `memctl deployed` lists it, its error and the command that acknowledges it.
    let out = daemon.memctl(&["deployed"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Freqtrade MACD Hunter") && text.contains("failed"),
        "{text}"
    );
    assert!(text.contains(&format!("memctl ack {id}")), "{text}");
    assert!(text.contains("Configuration error"), "its error: {text}");

    // A running deployment (a native one following its file) cannot be acknowledged.
    let native = client
        .call::<method::Deploy>(DeployParams {
            native: Some(NativeOptions {
                pair: Some("ETH/BTC".into()),
                mode: Some(FeedMode::Follow),
                ..Default::default()
            }),
            ..dry_run(sid(NATIVE_RSI))
        })
        .await
        .unwrap();
    let err = client
        .call::<method::Acknowledge>(AcknowledgeParams {
            deployment_id: native.deployment_id,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Conflict), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&native.deployment_id.to_string()) && message.contains("RSI"),
        "{message}"
    );

    // `memctl ack STRATEGY_ID`: each of its unacknowledged failures; announced.
    let (_, mut events) = client
        .subscribe(vec![mem_protocol::Topic::Deployments])
        .await
        .unwrap();
    let out = daemon.memctl(&["ack", MACD_HUNTER]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("acknowledged Freqtrade MACD Hunter") && text.contains(&id),
        "{text}"
    );
    let announced = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = events.next().await {
            if let mem_protocol::Event::DeploymentChanged(c) = m.event {
                if c.deployment.deployment_id == failed.deployment_id {
                    return Some(c.deployment);
                }
            }
        }
        None
    })
    .await
    .expect("a deployment.changed within 10 s")
    .expect("the event");
    assert!(announced.acknowledged);
    let out = daemon.memctl(&["deployed"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("Freqtrade MACD Hunter"), "{text}");
    let out = daemon.memctl(&["deployed", "--all"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Freqtrade MACD Hunter"), "--all: {text}");

    // A new daemon on the same data: still acknowledged.
    drop(events);
    drop(client);
    daemon.restart_after(Signal::SIGTERM);
    let client = daemon.client().await;
    let again = all(client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
        .unwrap())
    .into_iter()
    .find(|d| d.deployment_id == failed.deployment_id)
    .unwrap();
    assert!(again.acknowledged && !again.shown_by_default(), "{again:?}");
    let out = daemon.memctl(&["deployed", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["deploymentId"] != id.as_str()),
        "{json}"
    );
    // Unknown ids are the daemon's to refuse.
    let out = daemon.memctl(&["ack", "00000000-0000-4000-8000-000000000000"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no deployment"),
        "{}",
        describe(&out)
    );
}
