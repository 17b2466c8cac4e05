//! The risk guard over every deployment (`[risk]`), with fake bots whose profits the test
//! drives (`fake_bot.profit_dir`: each bot's profit of all trades is read from a file
//! named by its API port): each limit crossed tells the affected bots `stopentry` (the
//! fake bot logs it), refuses deploys with the reason, publishes `risk.tripped`, stays
//! tripped across a daemon restart and clears only on `memctl risk reset`. The alert
//! (Telegram, to the local stand-in) goes out once.

use mem_e2e::alert_sink::AlertSink;
use mem_e2e::deployments::{dry_run_on_port, stop_now};
use mem_e2e::seed::{AGGRESSIVE_RSI, CONSERVATIVE_RSI, MACD_HUNTER, NATIVE_RSI, sid};
use mem_e2e::{Daemon, describe, free_port, wait_for};
use mem_protocol::deploy::DeployedStrategy;
use mem_protocol::methods::{NoParams, method};
use mem_protocol::risk::{RiskLimit, RiskStatus, RiskTrip};
use mem_protocol::{Client, ErrorCode, Event, EventStream, Topic};
use nix::sys::signal::Signal;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Sets the profit the fake bot on `port` reports (written whole: the bot reads it at
/// any moment).
fn set_profit(dir: &Path, port: u16, profit: f64) {
    let tmp = dir.join(format!(".{port}.tmp"));
    std::fs::write(&tmp, profit.to_string()).unwrap();
    std::fs::rename(tmp, dir.join(port.to_string())).unwrap();
}

async fn risk(client: &Client) -> RiskStatus {
    client
        .call::<method::RiskStatus>(NoParams {})
        .await
        .unwrap()
}

async fn deploy(client: &Client, id: &str, port: u16) -> DeployedStrategy {
    client
        .call::<method::Deploy>(dry_run_on_port(sid(id), port))
        .await
        .unwrap_or_else(|e| panic!("deploy {id}: {e}"))
}

/// Whether the fake bot of `d` was told `stopentry` (it logs each one).
fn stopped_entries(d: &DeployedStrategy) -> bool {
    let log = Path::new(d.config_file.as_deref().unwrap()).with_file_name("freqtrade.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("Entries stopped by the API")
}

/// The next `risk.tripped` event.
async fn next_trip(events: &mut EventStream) -> RiskTrip {
    let wait = async {
        loop {
            match events.next().await.expect("the event stream ended") {
                m if matches!(m.event, Event::RiskTripped(_)) => {
                    let Event::RiskTripped(trip) = m.event else {
                        unreachable!()
                    };
                    return *trip;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .expect("no risk.tripped in 15 s")
}

#[tokio::test]
async fn a_fleet_drawdown_pauses_every_bot_refuses_deploys_and_holds_until_reset() {
    let profits = tempfile::tempdir().unwrap();
    let sink = AlertSink::start().await;
    let mut daemon = Daemon::with_fake_freqtrade(
        json!({"profit_dir": profits.path()}),
        &format!(
            "[risk]\nmax_drawdown = 50\n[alerts]\ndaily_summary_at = \"\"\n[alerts.telegram]\nbot_token = \"1:risk-e2e\"\nchat_ids = [5]\ncommands = false\napi_base = {:?}\n",
            sink.api_base()
        ),
    );
    let config = daemon.root.path().join("memd.toml");
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Daemon]).await.unwrap();
    let (pa, pb) = (free_port(), free_port());
    set_profit(profits.path(), pa, 0.0);
    set_profit(profits.path(), pb, 0.0);
    let a = deploy(&client, AGGRESSIVE_RSI, pa).await;
    let b = deploy(&client, MACD_HUNTER, pb).await;

    // Up to a peak of 70, then down 40: within the limit.
    set_profit(profits.path(), pa, 40.0);
    set_profit(profits.path(), pb, 30.0);
    wait_for(
        "the fleet's peak of 70",
        Duration::from_secs(10),
        async || risk(&client).await.peak == 70.0,
    )
    .await;
    set_profit(profits.path(), pa, 10.0);
    set_profit(profits.path(), pb, 20.0);
    wait_for(
        "the fleet's equity of 30",
        Duration::from_secs(10),
        async || risk(&client).await.equity == 30.0,
    )
    .await;
    let status = risk(&client).await;
    assert!(!status.tripped && status.drawdown == 40.0, "{status:?}");
    assert!(!stopped_entries(&a) && !stopped_entries(&b));

    // Down 55 from the peak: tripped.
    set_profit(profits.path(), pb, 5.0);
    let trip = next_trip(&mut events).await;
    assert_eq!(trip.limit, RiskLimit::FleetDrawdown);
    assert_eq!((trip.figure, trip.threshold), (55.0, 50.0));
    let mut named: Vec<_> = trip.bots.iter().map(|b| b.deployment_id).collect();
    named.sort();
    let mut both = vec![a.deployment_id, b.deployment_id];
    both.sort();
    assert_eq!(named, both, "every bot is affected");
    wait_for(
        "stopentry on every bot",
        Duration::from_secs(10),
        async || stopped_entries(&a) && stopped_entries(&b),
    )
    .await;
    // The alert goes out, once.
    let tripped = |s: &[mem_e2e::alert_sink::Sent]| {
        s.iter()
            .filter(|m| m.text.contains("Risk guard tripped"))
            .count()
    };
    let sent = sink
        .wait_sent(Duration::from_secs(10), |s| tripped(s) >= 1)
        .await;
    assert_eq!(tripped(&sent), 1, "{sent:?}");
    assert!(
        sent.iter()
            .any(|m| m.text.contains("max_drawdown 50.00") && m.text.contains("55.00")),
        "{sent:?}"
    );
    let err = client
        .call::<method::Deploy>(dry_run_on_port(sid(CONSERVATIVE_RSI), free_port()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Conflict), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("risk guard is tripped") && text.contains("max_drawdown 50.00"),
        "{text}"
    );
    drop(events);
    drop(client);

    // A restart does not forget it.
    daemon.restart_with_config(Signal::SIGTERM, &config);
    let client = daemon.client().await;
    let status = risk(&client).await;
    assert!(status.tripped, "{status:?}");
    assert_eq!(status.peak, 70.0);
    let err = client
        .call::<method::Deploy>(dry_run_on_port(sid(CONSERVATIVE_RSI), free_port()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("risk guard is tripped"), "{err}");
    let out = daemon.memctl(&["risk"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && shown.contains("TRIPPED: max drawdown 55.00 >= 50.00"),
        "{}",
        describe(&out)
    );
    let status = client
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert!(status.risk.tripped, "daemon.status carries the guard");

    // Only a reset clears it.
    let out = daemon.memctl(&["risk", "reset", "--reason", "checked the bots"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 limit(s) cleared"),
        "{}",
        describe(&out)
    );
    let status = risk(&client).await;
    assert!(!status.tripped, "{status:?}");
    assert_eq!(
        status.last_reset.unwrap().reason.as_deref(),
        Some("checked the bots")
    );
    let c = deploy(&client, CONSERVATIVE_RSI, free_port()).await;
    for id in [AGGRESSIVE_RSI, MACD_HUNTER, CONSERVATIVE_RSI] {
        client
            .call::<method::Stop>(stop_now(sid(id)))
            .await
            .unwrap();
    }
    assert!(
        !stopped_entries(&c),
        "a bot deployed after the reset trades"
    );
}

#[tokio::test]
async fn a_bots_loss_pauses_that_bot_and_the_days_loss_pauses_the_rest() {
    let profits = tempfile::tempdir().unwrap();
    let daemon = Daemon::with_fake_freqtrade(
        json!({"profit_dir": profits.path()}),
        "[risk]\ndaily_loss = 20\nbot_loss = 15\n",
    );
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Daemon]).await.unwrap();
    let (pa, pb) = (free_port(), free_port());
    set_profit(profits.path(), pa, 0.0);
    set_profit(profits.path(), pb, 0.0);
    let a = deploy(&client, AGGRESSIVE_RSI, pa).await;
    let b = deploy(&client, MACD_HUNTER, pb).await;

    // One bot loses 16: that bot alone.
    set_profit(profits.path(), pa, -16.0);
    let trip = next_trip(&mut events).await;
    assert_eq!(trip.limit, RiskLimit::BotLoss);
    assert_eq!((trip.figure, trip.threshold), (16.0, 15.0));
    assert_eq!(trip.bots.len(), 1);
    assert_eq!(trip.bots[0].deployment_id, a.deployment_id);
    wait_for(
        "stopentry on the losing bot",
        Duration::from_secs(10),
        async || stopped_entries(&a),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!stopped_entries(&b), "the other bot goes on");
    client
        .call::<method::Stop>(stop_now(sid(AGGRESSIVE_RSI)))
        .await
        .unwrap();
    let err = client
        .call::<method::Deploy>(dry_run_on_port(sid(AGGRESSIVE_RSI), free_port()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bot_loss 15.00"), "{err}");

    // The fleet is down 26 today (the stopped bot keeps its -16): the rest stop entering.
    set_profit(profits.path(), pb, -10.0);
    let trip = next_trip(&mut events).await;
    assert_eq!(trip.limit, RiskLimit::DailyLoss);
    assert_eq!((trip.figure, trip.threshold), (26.0, 20.0));
    assert_eq!(
        trip.bots
            .iter()
            .map(|b| b.deployment_id)
            .collect::<Vec<_>>(),
        vec![b.deployment_id],
        "the bots that run"
    );
    wait_for(
        "stopentry on the other bot",
        Duration::from_secs(10),
        async || stopped_entries(&b),
    )
    .await;
    let err = client
        .call::<method::Deploy>(dry_run_on_port(sid(NATIVE_RSI), free_port()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("daily_loss 20.00"), "{err}");
    let status = risk(&client).await;
    assert_eq!(status.trips.len(), 2, "{status:?}");
    assert_eq!(status.day_loss, 26.0);

    let out = daemon.memctl(&["risk", "reset"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!risk(&client).await.tripped);
    client
        .call::<method::Stop>(stop_now(sid(MACD_HUNTER)))
        .await
        .unwrap();
}
