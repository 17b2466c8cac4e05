//! The connection task: keeps a session with memd, forwards its events to the UI as
//! [`Update`]s, runs the UI's [`Command`]s, and reconnects with a backoff when the daemon
//! goes away. The UI never waits on the socket: it only reads a channel.

use super::app::{Command, Failure, StrategyData, Update};
use mem_protocol::deploy::DeployedParams;
use mem_protocol::methods::{GetStrategyParams, NoParams, method};
use mem_protocol::registry::{
    IdParams, ListTradesParams, ParameterHistoryParams, PerformanceParams,
};
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Client, ClientError, ClientOptions, Topic};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the daemon's status (uptime, CPU, memory) and MEM's figures are asked for.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);
/// How often CPU and memory of the bots are asked for (events carry the rest).
const DEPLOYED_INTERVAL: Duration = Duration::from_secs(5);
/// Deploying waits for the bot's API to answer.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(3600);
/// Trades drawn in the P&L sparkline.
const EQUITY_TRADES: usize = 500;
/// Reconnection backoff: doubles from the first to the last.
const BACKOFF: [u64; 5] = [500, 1000, 2000, 4000, 5000];

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub socket: PathBuf,
    pub read_only: bool,
}

fn failure(e: ClientError) -> Failure {
    Failure {
        code: e.code(),
        message: match &e {
            ClientError::Rpc(rpc) => rpc.message.clone(),
            other => other.to_string(),
        },
    }
}

/// Runs until the UI drops its receiver. `first` is the session memctl opened at start.
pub async fn run(
    target: Target,
    first: Client,
    updates: mpsc::UnboundedSender<Update>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut client = Some(first);
    let mut attempt = 0usize;
    loop {
        let session = match client.take() {
            Some(c) => Ok(c),
            None => {
                let options = ClientOptions {
                    read_only: target.read_only,
                    ..ClientOptions::default()
                };
                Client::connect(&target.socket, options).await
            }
        };
        let reason = match session {
            Ok(c) => {
                attempt = 0;
                serve(Arc::new(c), &updates, &mut commands).await
            }
            Err(e) => e.to_string(),
        };
        if updates.is_closed() {
            return;
        }
        let wait = Duration::from_millis(BACKOFF[attempt.min(BACKOFF.len() - 1)]);
        attempt += 1;
        let _ = updates.send(Update::Disconnected {
            reason,
            retry_in: wait,
        });
        // Commands sent while disconnected fail at once, so nothing waits silently.
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                command = commands.recv() => match command {
                    Some(_) => {
                        let _ = updates.send(Update::Done(Err("not connected to memd".into())));
                    }
                    None => return,
                },
            }
        }
    }
}

/// One session: subscribe, send the snapshot, then forward events and run commands until
/// the connection ends. Returns why it ended.
async fn serve(
    client: Arc<Client>,
    updates: &mpsc::UnboundedSender<Update>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> String {
    let subscribed = client
        .subscribe(vec![
            Topic::Daemon,
            Topic::Registry,
            Topic::Deployments,
            Topic::Logs,
            Topic::Model,
            Topic::Memory,
            Topic::Jobs,
        ])
        .await;
    let (subscribed, mut events) = match subscribed {
        Ok(s) => s,
        Err(e) => return format!("cannot subscribe: {e}"),
    };
    let deployed = match client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
    {
        Ok(d) => d,
        Err(e) => return format!("cannot list deployments: {e}"),
    };
    let Some(status) = subscribed.snapshot.daemon else {
        return "the daemon sent no status".into();
    };
    let _ = updates.send(Update::Connected {
        access: client.hello().access,
        status: Box::new(status),
        strategies: subscribed.snapshot.strategies.unwrap_or_default(),
        deployed,
    });
    let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deployed_tick = tokio::time::interval(DEPLOYED_INTERVAL);
    deployed_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(message) => {
                    let _ = updates.send(Update::Event(Box::new(message.event)));
                }
                None => return "the daemon closed the connection".into(),
            },
            command = commands.recv() => match command {
                Some(command) => {
                    let (client, updates) = (client.clone(), updates.clone());
                    tokio::spawn(async move {
                        if let Some(update) = execute(&client, command).await {
                            let _ = updates.send(update);
                        }
                    });
                }
                None => return "the UI ended".into(),
            },
            _ = status_tick.tick() => {
                match client.call::<method::DaemonStatus>(NoParams {}).await {
                    Ok(status) => { let _ = updates.send(Update::Status(Box::new(status))); }
                    Err(e) if client.is_closed() => return e.to_string(),
                    Err(_) => {}
                }
                // The Dashboard's MEM figures, as often (a memd without them answers an error).
                if let Ok(metrics) = client.call::<method::MemMetrics>(NoParams {}).await {
                    let _ = updates.send(Update::Metrics(Box::new(metrics)));
                }
            }
            _ = deployed_tick.tick() => {
                if let Ok(list) = client.call::<method::Deployed>(DeployedParams { all: false }).await {
                    let _ = updates.send(Update::Deployed(list));
                }
            }
        }
    }
}

/// A strategy's detail view: its document, versions, performance and equity curve.
async fn load_detail(client: &Client, id: StrategyId) -> Result<Box<StrategyData>, String> {
    let detail = client
        .call::<method::StrategiesGet>(GetStrategyParams { id })
        .await
        .map_err(|e| failure(e).message)?;
    let versions = client
        .call::<method::VersionsList>(IdParams { id })
        .await
        .ok();
    let performance = client
        .call::<method::Performance>(PerformanceParams {
            id,
            from: None,
            to: None,
        })
        .await
        .ok();
    let trades = client
        .call::<method::TradesList>(ListTradesParams {
            id,
            from: None,
            to: None,
            limit: Some(EQUITY_TRADES),
            offset: None,
        })
        .await
        .map(|t| t.trades)
        .unwrap_or_default();
    // Newest first from the daemon: accumulate oldest first.
    let mut total = 0.0;
    let equity = trades
        .iter()
        .rev()
        .map(|t| {
            total += t.pnl;
            total
        })
        .collect();
    Ok(Box::new(StrategyData {
        detail,
        versions,
        performance,
        equity,
    }))
}

/// Runs one command; the answer becomes an update.
async fn execute(client: &Client, command: Command) -> Option<Update> {
    Some(match command {
        Command::Deploy(params) => Update::Done(
            client
                .call_with_timeout::<method::Deploy>(params, DEPLOY_TIMEOUT)
                .await
                .map(|d| {
                    format!(
                        "deployed {} ({}, pid {}, port {})",
                        d.strategy_name,
                        if d.dry_run { "dry-run" } else { "LIVE" },
                        d.process_id.map_or("-".into(), |p| p.to_string()),
                        d.port.map_or("-".into(), |p| p.to_string())
                    )
                })
                .map_err(|e| format!("deploy failed: {}", failure(e).message)),
        ),
        Command::Stop(params) => Update::Done(
            client
                .call_with_timeout::<method::Stop>(params, STOP_TIMEOUT)
                .await
                .map(|d| format!("stopped {}", d.strategy_name))
                .map_err(|e| format!("stop failed: {}", failure(e).message)),
        ),
        Command::Restart(params) => Update::Done(
            client
                .call_with_timeout::<method::Restart>(params, DEPLOY_TIMEOUT)
                .await
                .map(|d| format!("restarted {}", d.strategy_name))
                .map_err(|e| format!("restart failed: {}", failure(e).message)),
        ),
        Command::LoadDetail(id) => Update::Detail(id, load_detail(client, id).await),
        Command::LoadLogs(id) => Update::Logs(
            id,
            client
                .call::<method::Logs>(mem_protocol::deploy::LogsParams {
                    id,
                    lines: Some(super::app::LOG_LINES_KEPT),
                })
                .await
                .map_err(|e| failure(e).message),
        ),
        Command::Recommend(conditions) => Update::Recommendations(
            conditions.clone(),
            client
                .call::<method::StrategiesRecommendations>(conditions)
                .await
                .map_err(failure),
        ),
        Command::RefreshDeployed => Update::Deployed(
            client
                .call::<method::Deployed>(DeployedParams { all: false })
                .await
                .ok()?,
        ),
        Command::LoadTodayPnl(ids) => {
            let midnight = chrono::Utc::now()
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc());
            let mut total = 0.0;
            for id in ids {
                if let Ok(report) = client
                    .call::<method::Performance>(PerformanceParams {
                        id,
                        from: midnight,
                        to: None,
                    })
                    .await
                {
                    total += report.all.total_pnl;
                }
            }
            Update::TodayPnl(total)
        }
        Command::LoadPanel(view) => {
            let method = view.panel_method()?;
            Update::Panel(
                view,
                client
                    .call_value(method, serde_json::json!({}))
                    .await
                    .map_err(failure),
            )
        }
        Command::LoadParameterHistory(id) => Update::ParameterHistory(
            id,
            client
                .call::<method::ParametersHistory>(ParameterHistoryParams { id, name: None })
                .await
                .map_err(|e| failure(e).message),
        ),
        Command::UpdateParameter(params) => {
            let id = params.id;
            Update::ParameterUpdated(
                id,
                client
                    .call::<method::ParametersUpdate>(params)
                    .await
                    .map_err(failure),
            )
        }
        Command::RunJob(name) => Update::Done(
            client
                .call_value("jobs.run", serde_json::json!({ "name": name }))
                .await
                .map(|_| format!("job {name} started"))
                .map_err(|e| format!("job {name}: {}", failure(e).message)),
        ),
    })
}
