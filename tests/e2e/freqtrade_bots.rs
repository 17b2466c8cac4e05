//! Real Freqtrade bots through the real daemon, trading on the mock exchange: two bots
//! deployed at once, their status and profit read back, a bot killed and restarted, the
//! daemon killed and its bots re-adopted, everything stopped with nothing left behind.
//!
//! Needs `MEMD_TEST_FREQTRADE` (the path of a `freqtrade` binary; `.ci/run` installs one
//! with `.ci/install-freqtrade`); without it the test says it is skipped.

use mem_e2e::deployments::{
    active_deployment, active_deployments, dry_run_on_port, stop_now, total_trades,
};
use mem_e2e::free_port;
use mem_e2e::freqtrade::{self, BotApi, TEST_TIMINGS};
use mem_e2e::mock_exchange::{self, MockOptions};
use mem_e2e::seed::{CONSERVATIVE_RSI, MACD_HUNTER, sid};
use mem_e2e::{Daemon, alive, processes_mentioning, wait_for};
use mem_protocol::deploy::*;
use mem_protocol::methods::method;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn start_daemon(root: &Path, config: &Path) -> Daemon {
    let keep = tempfile::tempdir().unwrap();
    Daemon::start_in(keep, root.join("run/memd.sock"), root.join("data"), |cmd| {
        cmd.arg("--config").arg(config);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_real_bots_deploy_trade_restart_get_adopted_and_stop() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start_filling_at_once().await;
    let root = tempfile::tempdir().unwrap();
    let config = freqtrade::memd_config(
        root.path(),
        &freqtrade,
        &mock,
        true,
        &format!("{TEST_TIMINGS}\nmax_restarts = 3"),
        "",
    );
    let mut daemon = start_daemon(root.path(), &config);
    let client = daemon.client().await;

    // Two bots at once.
    let (macd, rsi) = tokio::join!(
        client.call_with_timeout::<method::Deploy>(
            dry_run_on_port(sid(MACD_HUNTER), free_port()),
            Duration::from_secs(150)
        ),
        client.call_with_timeout::<method::Deploy>(
            dry_run_on_port(sid(CONSERVATIVE_RSI), free_port()),
            Duration::from_secs(150)
        ),
    );
    let (macd, rsi) = (macd.unwrap(), rsi.unwrap());
    for d in [&macd, &rsi] {
        assert_eq!(d.status, DeploymentStatus::Running);
        assert!(d.dry_run);
        let ping = reqwest::get(format!("http://127.0.0.1:{}/api/v1/ping", d.port.unwrap()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(ping.contains("pong"), "{ping}");
        let shown = BotApi::of(d).get("show_config").await;
        assert_eq!(shown["dry_run"], true);
    }

    // Status and profit come back through the daemon; a closed trade reaches the registry.
    wait_for(
        "the first poll of both bots",
        Duration::from_secs(30),
        async || {
            let all = active_deployments(&client).await;
            all.len() == 2
                && all
                    .iter()
                    .all(|d| d.stats.polled_at.is_some() && d.stats.balance.is_some())
        },
    )
    .await;
    // The bot takes a forced entry once it has processed its first candles; on a busy
    // machine that can take a while, so ask until it accepts.
    let macd_api = BotApi::of(&macd);
    let mut trade_id = 0;
    wait_for(
        "the bot to accept a forced entry",
        Duration::from_secs(90),
        async || {
            let entered = macd_api
                .post("forceenter", json!({"pair": "ETH/USDT"}))
                .await;
            trade_id = entered["trade_id"].as_i64().unwrap_or(0);
            if trade_id == 0 {
                // An open trade from an earlier attempt counts too.
                let open = macd_api.get("status").await;
                trade_id = open
                    .as_array()
                    .and_then(|t| t.first())
                    .and_then(|t| t["trade_id"].as_i64())
                    .unwrap_or(0);
            }
            trade_id > 0
        },
    )
    .await;
    wait_for(
        "the forced entry to fill",
        Duration::from_secs(60),
        async || {
            let open = macd_api.get("status").await;
            open.as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t["trade_id"] == trade_id && t["amount"].as_f64().unwrap_or(0.0) > 0.0)
            })
        },
    )
    .await;
    macd_api
        .post(
            "forceexit",
            json!({"tradeid": trade_id.to_string(), "ordertype": "market"}),
        )
        .await;
    // The trade reaches the registry by the poll or by the performance-sync job, which
    // may come first; the deployment's stats follow at the next poll.
    wait_for(
        "a closed trade in the registry and in the bot's stats",
        Duration::from_secs(90),
        async || {
            total_trades(&client, sid(MACD_HUNTER)).await >= 1
                && active_deployment(&client, sid(MACD_HUNTER))
                    .await
                    .is_some_and(|d| d.stats.closed_trades >= 1)
        },
    )
    .await;
    let polled = active_deployment(&client, sid(MACD_HUNTER)).await.unwrap();
    assert!(polled.stats.closed_trades >= 1, "{:?}", polled.stats);
    assert!(
        polled.rss_bytes.is_some_and(|b| b > 50 << 20),
        "a real bot's memory: {:?}",
        polled.rss_bytes
    );

    // A bot killed by someone is restarted.
    let rsi_pid = rsi.process_id.unwrap();
    kill(Pid::from_raw(rsi_pid as i32), Signal::SIGKILL).unwrap();
    wait_for(
        "the killed bot to be restarted",
        Duration::from_secs(120),
        async || {
            active_deployment(&client, sid(CONSERVATIVE_RSI))
                .await
                .is_some_and(|d| {
                    d.status == DeploymentStatus::Running
                        && d.restarts == 1
                        && d.process_id != Some(rsi_pid)
                })
        },
    )
    .await;

    // The daemon killed: its bots keep running and are re-adopted, not duplicated.
    let macd_pid = macd.process_id.unwrap();
    let rsi_now = active_deployment(&client, sid(CONSERVATIVE_RSI))
        .await
        .unwrap();
    drop(client);
    daemon.stop_with(Signal::SIGKILL);
    assert!(alive(macd_pid));
    let daemon = start_daemon(root.path(), &config);
    let client = daemon.client().await;
    let adopted = active_deployment(&client, sid(MACD_HUNTER)).await.unwrap();
    assert_eq!(
        (adopted.process_id, adopted.status),
        (Some(macd_pid), DeploymentStatus::Running),
        "same process, no twin"
    );
    assert_eq!(processes_mentioning(&macd.deployment_id.to_string()), 1);
    assert_eq!(
        active_deployment(&client, sid(CONSERVATIVE_RSI))
            .await
            .unwrap()
            .process_id,
        rsi_now.process_id
    );

    // Stop both: nothing of theirs is left.
    for id in [MACD_HUNTER, CONSERVATIVE_RSI] {
        let stopped = client
            .call_with_timeout::<method::Stop>(stop_now(sid(id)), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(stopped.status, DeploymentStatus::Stopped);
    }
    assert!(!alive(macd_pid) && !alive(rsi_now.process_id.unwrap()));
    assert_eq!(
        processes_mentioning(&macd.deployment_id.to_string())
            + processes_mentioning(&rsi.deployment_id.to_string()),
        0
    );
    assert!(active_deployments(&client).await.is_empty());
}

/// A real bot deployed with the registry's `stoploss` and `minimal_roi` in its config;
/// `stoploss` changed in the registry reaches it through `reload_config` (Freqtrade
/// restarts its worker and API server), and supervision rides out the gap: no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_bot_reloads_a_stoploss_changed_in_the_registry() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start_with(MockOptions::default())
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let config = freqtrade::memd_config(
        root.path(),
        &freqtrade,
        &mock,
        false,
        &format!("{TEST_TIMINGS}\nunresponsive_limit_secs = 30"),
        "",
    );
    let daemon = start_daemon(root.path(), &config);
    let client = daemon.client().await;
    let d = client
        .call_with_timeout::<method::Deploy>(
            dry_run_on_port(sid(MACD_HUNTER), free_port()),
            Duration::from_secs(150),
        )
        .await
        .unwrap();
    let api = BotApi::of(&d);
    let shown = api.get("show_config").await;
    assert_eq!(shown["stoploss"], json!(-0.08), "the registry's, at deploy");
    assert_eq!(
        shown["minimal_roi"],
        json!({"0": 0.15, "20": 0.08, "40": 0.03})
    );

    let update = client
        .call_value(
            "strategies.parameters.update",
            json!({"id": MACD_HUNTER, "name": "stoploss", "value": -0.05, "reason": "tighter"}),
        )
        .await
        .unwrap();
    assert!(
        update["applied"][0]
            .as_str()
            .unwrap()
            .contains("told to reload it"),
        "{update}"
    );
    // The API goes away for a moment while the bot reloads: ask until it shows the value.
    wait_for(
        "the bot running with the new stoploss",
        Duration::from_secs(60),
        async || {
            let Some(shown) = api.answer("show_config").await else {
                return false;
            };
            shown["stoploss"] == json!(-0.05) && shown["state"] == "running"
        },
    )
    .await;
    // Supervision saw a bot that answers again: same process, no restart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = active_deployment(&client, sid(MACD_HUNTER)).await.unwrap();
    assert_eq!(
        (now.status, now.restarts, now.process_id),
        (DeploymentStatus::Running, 0, d.process_id),
        "{now:?}"
    );
    client
        .call_with_timeout::<method::Stop>(stop_now(sid(MACD_HUNTER)), Duration::from_secs(60))
        .await
        .unwrap();
}
