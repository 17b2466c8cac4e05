//! Bots memd did not start (issue 28): a real Freqtrade bot the test starts itself, as its
//! operator would, is attached (`memctl attach`), listed as attached with its status, its
//! closed trades (those before the attach too) reach the registry as the bot itself lists
//! them, across a memd restart without a duplicate; memd refuses to stop it, stop-all
//! leaves it running, and `memctl detach` forgets it while the bot runs on. Its password
//! is in none of memd's files.
//!
//! Needs `MEMD_TEST_FREQTRADE` (see `freqtrade_mock`, whose bot process this reuses).

use super::freqtrade_mock::Bot;
use mem_e2e::freqtrade::{self, TEST_TIMINGS};
use mem_e2e::seed::{MACD_HUNTER, sid};
use mem_e2e::{Daemon, describe, mock_exchange, wait_for};
use mem_protocol::audit::{ActionOutcome, ActionsParams};
use mem_protocol::deploy::{DeployedParams, DeployedStrategy, DeploymentStatus};
use mem_protocol::mem::DecisionsParams;
use mem_protocol::methods::method;
use mem_protocol::registry::TradeRecord;
use mem_protocol::{Client, ErrorCode};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// One trade forced in on `pair` and straight out at market (the strategy may hold the
/// pair already: then that trade is the one closed); answers its id once the bot counts it
/// closed.
async fn round_trip(bot: &Bot, pair: &str) -> i64 {
    let mut trade_id = None;
    wait_for(
        &format!("the bot to enter {pair}"),
        Duration::from_secs(90),
        async || {
            let (status, trade) = bot.post_raw("forceenter", json!({"pair": pair})).await;
            if status == 200 {
                trade_id = trade["trade_id"].as_i64();
            } else {
                let open = bot.get("status").await;
                trade_id = open
                    .as_array()
                    .and_then(|ts| ts.iter().find(|t| t["pair"] == pair))
                    .and_then(|t| t["trade_id"].as_i64());
            }
            trade_id.is_some()
        },
    )
    .await;
    let id = trade_id.unwrap();
    wait_for(
        &format!("trade {id} to close"),
        Duration::from_secs(60),
        async || {
            bot.post_raw(
                "forceexit",
                json!({"tradeid": id.to_string(), "ordertype": "market"}),
            )
            .await;
            bot.get(&format!("trade/{id}")).await["is_open"] == false
        },
    )
    .await;
    id
}

/// The bot's closed trades, by its trade id.
async fn bot_closed_trades(bot: &Bot) -> BTreeMap<i64, Value> {
    let page = bot.get("trades?limit=500").await;
    page["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["trade_id"].as_i64().unwrap(), t.clone()))
        .collect()
}

async fn registry_trades(client: &Client) -> Vec<TradeRecord> {
    mem_e2e::deployments::all_trades(client, sid(MACD_HUNTER)).await
}

/// Waits until the registry holds exactly the bot's closed trades, each once, with the
/// bot's pair, prices and profit; answers how many.
async fn synced(client: &Client, bot: &Bot, deployment: &DeployedStrategy) -> usize {
    let prefix = format!("{}:", deployment.deployment_id);
    let mut last = String::new();
    let mut count = 0;
    wait_for(
        "the bot's closed trades in the registry",
        Duration::from_secs(120),
        async || {
            let bot_trades = bot_closed_trades(bot).await;
            let recorded = registry_trades(client).await;
            let ids: Vec<i64> = recorded
                .iter()
                .map(|t| t.trade_id.strip_prefix(&prefix).unwrap().parse().unwrap())
                .collect();
            last = format!("bot {:?}, registry {ids:?}", bot_trades.keys());
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), ids.len(), "a trade recorded twice: {last}");
            if !unique.iter().eq(bot_trades.keys()) || bot_trades.is_empty() {
                return false;
            }
            for (t, id) in recorded.iter().zip(&ids) {
                let b = &bot_trades[id];
                assert_eq!(t.symbol, b["pair"].as_str().unwrap(), "{b}");
                assert_eq!(t.entry_price, b["open_rate"].as_f64().unwrap(), "{b}");
                assert_eq!(Some(t.exit_price), b["close_rate"].as_f64(), "{b}");
                let pnl = b["close_profit_abs"].as_f64().unwrap();
                assert!((t.pnl - pnl).abs() < 1e-9, "{} vs {b}", t.pnl);
            }
            count = ids.len();
            true
        },
    )
    .await;
    eprintln!("synced: {last}");
    count
}

async fn attached(client: &Client, name: &str) -> Option<DeployedStrategy> {
    client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
        .unwrap()
        .deployments
        .into_iter()
        .find(|d| d.attached_name() == Some(name))
}

/// Every file under `dir` that holds `secret`.
fn files_holding(dir: &Path, secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, secret));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_memd_did_not_start_is_attached_synced_refused_a_stop_and_detached_running() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start_filling_at_once().await;
    // The bot: started here, outside memd, with its own API user and password.
    let mut bot = Bot::spawn(&freqtrade, "macd_hunter", "MACD_Aggressive", &mock, true);
    bot.wait_ping(Duration::from_secs(120)).await;
    let before_attach = round_trip(&bot, "ETH/USDT").await;

    let root = tempfile::tempdir().unwrap();
    let config = freqtrade::memd_config(root.path(), &freqtrade, &mock, false, TEST_TIMINGS, "");
    let mut daemon = Daemon::with_config(root, &config);
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("outside.password");
    std::fs::write(&password_file, format!("{}\n", bot.config.password)).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = format!("http://127.0.0.1:{}", bot.config.api_port);
    let password_arg = password_file.display().to_string();
    let attach = |name: &str, user: &str| {
        daemon.memctl(&[
            "attach",
            name,
            "--url",
            &url,
            "--user",
            user,
            "--password-file",
            &password_arg,
            "--json",
        ])
    };

    // Credentials the bot refuses: refused, naming the URL, and nothing is recorded.
    let refused = attach("wrong", "nobody");
    assert!(!refused.status.success(), "{}", describe(&refused));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains(&url) && said.contains("401"), "{said}");

    // The attach: its strategy found by the bot's class (MACD_Aggressive: MACD Hunter's).
    let out = attach("outside", &bot.config.username);
    assert!(out.status.success(), "{}", describe(&out));
    let d: DeployedStrategy = serde_json::from_slice(&out.stdout).unwrap();
    let a = d.attached.clone().expect("shown as attached");
    assert_eq!((a.name.as_str(), a.url.as_str()), ("outside", url.as_str()));
    assert_eq!(a.username, bot.config.username);
    assert!(!a.allow_control);
    assert_eq!(d.strategy_id, sid(MACD_HUNTER));
    assert_eq!(d.status, DeploymentStatus::Running);
    assert!(d.dry_run && d.process_id.is_none(), "{d:?}");
    // One deployment a bot: the same URL under another name is refused.
    let twice = attach("twice", &bot.config.username);
    assert!(!twice.status.success(), "{}", describe(&twice));
    let said = String::from_utf8_lossy(&twice.stderr);
    assert!(said.contains("already watches"), "{said}");
    let client = daemon.client().await;
    wait_for(
        "the attached bot's first poll",
        Duration::from_secs(30),
        async || {
            attached(&client, "outside")
                .await
                .is_some_and(|d| d.stats.bot_state.as_deref() == Some("running"))
        },
    )
    .await;
    let listed = daemon.memctl(&["deployed"]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(table.contains("(attached: outside)"), "{table}");

    // Its log, from its API (the file is its operator's).
    let log = daemon.memctl(&["logs", "outside", "-n", "20"]);
    assert!(log.status.success(), "{}", describe(&log));
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(
        text.contains(" - INFO - ") || text.contains(" - WARNING - "),
        "{text}"
    );

    // Its closed trades, before and after the attach, reach the registry as the bot has them.
    let after_attach = round_trip(&bot, "BTC/USDT").await;
    assert_ne!(before_attach, after_attach);
    let first = synced(&client, &bot, &d).await;
    assert!(first >= 2, "{first}");
    wait_for(
        "its closed trades counted",
        Duration::from_secs(30),
        async || {
            attached(&client, "outside")
                .await
                .is_some_and(|d| d.stats.closed_trades as usize >= first)
        },
    )
    .await;

    // memd did not start it: it does not stop or restart it; stop-all leaves it running.
    let stop = daemon.memctl(&["stop", "outside"]);
    assert!(!stop.status.success(), "{}", describe(&stop));
    let said = String::from_utf8_lossy(&stop.stderr);
    assert!(
        said.contains("memd did not start this bot") && said.contains("memctl detach outside"),
        "{said}"
    );
    let restart = client
        .call::<method::Restart>(mem_e2e::deployments::stop_now(sid(MACD_HUNTER)))
        .await
        .unwrap_err();
    assert_eq!(
        restart.code(),
        Some(ErrorCode::PermissionDenied),
        "{restart:?}"
    );
    let all = daemon.memctl(&["stop-all"]);
    assert!(all.status.success(), "{}", describe(&all));
    let said = String::from_utf8_lossy(&all.stdout);
    assert!(
        said.contains("left running") && said.contains("outside"),
        "{said}"
    );
    bot.assert_alive("memd was asked to stop it");
    assert_eq!(
        attached(&client, "outside").await.unwrap().status,
        DeploymentStatus::Running
    );

    // A memd restart: the attachment is read back and polled again, never spawned; the
    // trades closed meanwhile are synced, none twice.
    drop(client);
    daemon.restart_with_config(Signal::SIGTERM, &config);
    let client = daemon.client().await;
    let again = attached(&client, "outside").await.expect("still attached");
    assert_eq!(again.deployment_id, d.deployment_id);
    assert_eq!(again.status, DeploymentStatus::Running, "{again:?}");
    round_trip(&bot, "ETH/USDT").await;
    let second = synced(&client, &bot, &d).await;
    assert!(second > first, "{first} then {second}");
    // MEM has each as an observed decision and its outcome, as a deployed bot's, once.
    let decisions = client
        .call::<method::MemDecisions>(DecisionsParams {
            strategy: Some(MACD_HUNTER.into()),
            symbol: None,
            limit: Some(500),
        })
        .await
        .unwrap()
        .decisions;
    let source = format!("bot {}", d.deployment_id);
    let observed: Vec<_> = decisions
        .iter()
        .filter(|x| x.observed && x.outcome.is_some() && x.source.as_deref() == Some(&source))
        .collect();
    assert_eq!(observed.len(), second, "{decisions:?}");

    // Detach: forgotten, and the bot runs on.
    let out = daemon.memctl(&["detach", "outside"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(attached(&client, "outside").await.is_none());
    let stderr = daemon.stderr();
    assert!(stderr.contains("detached"), "{stderr}");
    bot.assert_alive("detached");
    assert_eq!(bot.get("ping").await, json!({"status": "pong"}));
    let actions = client
        .call::<method::AuditActions>(ActionsParams {
            since: None,
            action: Some("deployments.".into()),
            limit: None,
        })
        .await
        .unwrap()
        .entries;
    let ended: Vec<(&str, ActionOutcome)> = actions
        .iter()
        .map(|a| (a.action.as_str(), a.outcome))
        .collect();
    for done in [
        ("deployments.attach", ActionOutcome::Failed),
        ("deployments.attach", ActionOutcome::Ok),
        ("deployments.detach", ActionOutcome::Ok),
    ] {
        assert!(ended.contains(&done), "{done:?} in {ended:?}");
    }

    // The password is in none of memd's files: state, logs, audit, registry.
    let holding = files_holding(daemon.root.path(), &bot.config.password);
    assert!(holding.is_empty(), "the password is in {holding:?}");
    drop(daemon);
    drop(bot);
}

/// A `fake_freqtrade` started by the test on `port`, as the bot's operator would start it
/// (its own process group; killed with it when dropped).
struct FakeBot(std::process::Child);

impl FakeBot {
    async fn start(dir: &Path, port: u16, password: &str, closed_trades: u32) -> FakeBot {
        use std::os::unix::process::CommandExt;
        let config = dir.join("fake.json");
        let body = json!({
            "api_server": {"listen_port": port, "username": "outside", "password": password},
            "dry_run": true,
            "fake_bot": {"closed_trades": closed_trades},
        });
        std::fs::write(&config, body.to_string()).unwrap();
        let child = std::process::Command::new(mem_e2e::bin("fake_freqtrade"))
            .arg("trade")
            .arg("--config")
            .arg(&config)
            .arg("--strategy")
            .arg("MACD_Aggressive")
            .arg("--logfile")
            .arg(dir.join("fake.log"))
            .process_group(0)
            .spawn()
            .unwrap();
        let ping = format!("http://127.0.0.1:{port}/api/v1/ping");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        wait_for("the fake bot's API", Duration::from_secs(20), async || {
            http.get(&ping).send().await.is_ok()
        })
        .await;
        FakeBot(child)
    }
}

impl Drop for FakeBot {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// An attached bot's history longer than a page of its API reaches the registry whole,
/// each trade once. An attached bot that stops answering is shown crashed, with why, and
/// never restarted (memd did not start it); it runs again once it answers. After a daemon restart its
/// password file is read again: one every user can read is refused, the deployment shown
/// crashed with why, and it can still be detached. On the fake Freqtrade (no
/// `MEMD_TEST_FREQTRADE` needed).
#[tokio::test]
async fn an_attached_bot_that_stops_answering_is_crashed_until_it_answers_never_restarted() {
    let mut daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let dir = tempfile::tempdir().unwrap();
    let port = mem_e2e::free_port();
    let password = format!("pw-{}", std::process::id());
    let password_file = dir.path().join("outside.password");
    std::fs::write(&password_file, &password).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A history longer than a page of `/api/v1/trades` (500).
    let history = 700;
    let bot = FakeBot::start(dir.path(), port, &password, history).await;
    let client = daemon.client().await;
    let d = client
        .call::<method::Attach>(mem_protocol::deploy::AttachParams {
            name: "outside".into(),
            url: format!("http://127.0.0.1:{port}/"),
            username: "outside".into(),
            password_file: password_file.display().to_string(),
            strategy: None,
            allow_control: false,
        })
        .await
        .unwrap();
    assert_eq!(d.strategy_id, sid(MACD_HUNTER), "by the bot's class");
    assert_eq!(
        d.attached.as_ref().unwrap().url,
        format!("http://127.0.0.1:{port}")
    );

    // Its whole history reaches the registry, page after page, each trade once.
    wait_for(
        "the bot's history in the registry",
        Duration::from_secs(120),
        async || registry_trades(&client).await.len() >= history as usize,
    )
    .await;
    let recorded = registry_trades(&client).await;
    let mut ids: Vec<&str> = recorded.iter().map(|t| t.trade_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((recorded.len(), ids.len()), (700, 700));

    // Gone: crashed with why, not restarted.
    drop(bot);
    wait_for(
        "the attached bot shown crashed",
        Duration::from_secs(20),
        async || {
            attached(&client, "outside")
                .await
                .is_some_and(|d| d.status == DeploymentStatus::Crashed)
        },
    )
    .await;
    let crashed = attached(&client, "outside").await.unwrap();
    let why = crashed.last_error.clone().unwrap_or_default();
    assert!(why.contains("does not restart it"), "{why}");
    assert_eq!(crashed.restarts, 0);
    // Back (its operator started it again): running again.
    let bot = FakeBot::start(dir.path(), port, &password, history).await;
    wait_for(
        "the attached bot running again",
        Duration::from_secs(20),
        async || {
            attached(&client, "outside")
                .await
                .is_some_and(|d| d.status == DeploymentStatus::Running)
        },
    )
    .await;

    // A password file every user can read, found at the next start: refused, said, kept.
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(client);
    let config = daemon.root.path().join("memd.toml");
    daemon.restart_with_config(Signal::SIGTERM, &config);
    let client = daemon.client().await;
    let kept = attached(&client, "outside").await.expect("still attached");
    assert_eq!(kept.status, DeploymentStatus::Crashed);
    let why = kept.last_error.unwrap_or_default();
    assert!(why.contains("readable by every user"), "{why}");
    assert!(!why.contains(&password) && !daemon.stderr().contains(&password));
    let detached = client
        .call::<method::Detach>(mem_protocol::deploy::DetachParams {
            name: kept.deployment_id.to_string(),
        })
        .await
        .unwrap();
    assert_eq!(detached.deployment_id, d.deployment_id);
    assert!(attached(&client, "outside").await.is_none());
    drop(bot);
}
