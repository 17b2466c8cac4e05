//! The connection task: keeps a session with memd, forwards its events to the UI as
//! [`Update`]s, runs the UI's [`Command`]s, and reconnects with a backoff when the daemon
//! goes away. The UI never waits on the socket: it only reads a channel.
//!
//! Nothing is polled: a session starts from the subscription's snapshot of every topic,
//! and the daemon's events, the periodic ones included (`daemon.pulse`, `mem.metrics`,
//! `deployments.usage`, every 2 s), keep what the UI shows current. Requests are sent only
//! for what the operator asks for (a view's data as it comes on screen, a deploy, ...).

use super::app::{Command, Failure, StrategyData, Update, View};
use mem_protocol::backtest::{QueueCancelParams, QueueListParams};
use mem_protocol::deploy::{DeployedList, DeployedParams};
use mem_protocol::methods::{GetStrategyParams, Snapshot, method};
use mem_protocol::registry::{
    IdParams, ListTradesParams, ParameterHistoryParams, PerformanceParams,
};
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Client, ClientError, ClientOptions, Endpoint, Topic};

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

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
    pub endpoint: Endpoint,
    pub read_only: bool,
    /// The topics to subscribe to, if they change with what the screen shows (a fleet's
    /// servers not on screen leave out bots' logs and MEM's figures); a change opens a new
    /// session with them. None: every topic, always.
    pub topics: Option<watch::Receiver<Vec<Topic>>>,
}

impl Target {
    /// Every topic, always: one server's screen.
    pub fn new(endpoint: Endpoint, read_only: bool) -> Target {
        Target {
            endpoint,
            read_only,
            topics: None,
        }
    }

    fn topics(&mut self) -> Vec<Topic> {
        match &mut self.topics {
            Some(topics) => topics.borrow_and_update().clone(),
            None => Topic::ALL.to_vec(),
        }
    }

    /// Returns when the topics wanted change (never, if they cannot).
    async fn topics_changed(&mut self) {
        let changed = match &mut self.topics {
            Some(topics) => topics.changed().await.is_ok(),
            None => false,
        };
        if !changed {
            std::future::pending::<()>().await;
        }
    }
}

/// Why a session ended.
enum Ended {
    /// The connection was lost or refused, for this reason.
    Lost(String),
    /// Other topics are wanted: a new session at once, the UI keeping what it shows.
    Topics,
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

/// Runs until the UI drops its receiver. `first` is the session memctl opened at start
/// (none: the task connects itself, as the fleet's do).
pub async fn run(
    mut target: Target,
    first: Option<Client>,
    updates: mpsc::UnboundedSender<Update>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut client = first;
    let mut attempt = 0usize;
    loop {
        let session = match client.take() {
            Some(c) => Ok(c),
            None => {
                let options = ClientOptions {
                    read_only: target.read_only,
                    ..ClientOptions::default()
                };
                Client::connect_to(&target.endpoint, options).await
            }
        };
        let reason = match session {
            Ok(c) => {
                attempt = 0;
                match serve(Arc::new(c), &mut target, &updates, &mut commands).await {
                    Ended::Lost(reason) => reason,
                    Ended::Topics => continue,
                }
            }
            Err(e) => crate::fleet::connection_state(&e),
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
///
/// The snapshot has what every view shows; a memd from before its deployments were in it
/// is asked for them.
async fn serve(
    client: Arc<Client>,
    target: &mut Target,
    updates: &mpsc::UnboundedSender<Update>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Ended {
    let subscribed = client.subscribe(target.topics()).await;
    let (subscribed, mut events) = match subscribed {
        Ok(s) => s,
        Err(e) => return Ended::Lost(format!("cannot subscribe: {e}")),
    };
    let mut snapshot = subscribed.snapshot;
    let deployed = match snapshot.deployments.take() {
        Some(deployments) => DeployedList {
            notes: Vec::new(),
            deployments,
        },
        None => match client
            .call::<method::Deployed>(DeployedParams { all: true })
            .await
        {
            Ok(d) => d,
            Err(e) => return Ended::Lost(format!("cannot list deployments: {e}")),
        },
    };
    let Some(status) = snapshot.daemon.take() else {
        return Ended::Lost("the daemon sent no status".into());
    };
    let market = snapshot.market.take();
    let queue = snapshot.queue.take();
    let alerts = snapshot.alerts.take();
    let _ = updates.send(Update::Connected {
        access: client.hello().access,
        status: Box::new(status),
        strategies: snapshot.strategies.take().unwrap_or_default(),
        deployed,
        metrics: snapshot.mem_metrics.take().map(Box::new),
        panels: panels_of(snapshot),
        queue,
    });
    if let Some(market) = market {
        let _ = updates.send(Update::Market(Box::new(market)));
    }
    if let Some(alerts) = alerts {
        let _ = updates.send(Update::Alerts(alerts));
    }
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(message) => {
                    let _ = updates.send(Update::Event(Box::new(message.event)));
                }
                None => return Ended::Lost("the daemon closed the connection".into()),
            },
            _ = target.topics_changed() => return Ended::Topics,
            command = commands.recv() => match command {
                Some(command) => {
                    let (client, updates) = (client.clone(), updates.clone());
                    tokio::spawn(async move {
                        if let Some(update) = execute(&client, command).await {
                            let _ = updates.send(update);
                        }
                    });
                }
                None => return Ended::Lost("the UI ended".into()),
            },
        }
    }
}

/// The data panels' answers in a snapshot: the Memory view's `mem.decisions`, the Model
/// view's `ml.history` and the Jobs view's `jobs.list`.
fn panels_of(snapshot: Snapshot) -> Vec<(View, serde_json::Value)> {
    [
        (View::Memory, snapshot.decisions.map(serde_json::to_value)),
        (
            View::Model,
            snapshot.model_history.map(serde_json::to_value),
        ),
        (View::Jobs, snapshot.jobs.map(serde_json::to_value)),
    ]
    .into_iter()
    .filter_map(|(view, data)| Some((view, data?.ok()?)))
    .collect()
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
    let backtest = versions
        .as_ref()
        .and_then(super::app::measured_result)
        .map(Box::new);
    Ok(Box::new(StrategyData {
        detail,
        versions,
        performance,
        equity,
        backtest,
    }))
}

/// The Backtests view's commands: the queue, a backtest queued, a job cancelled.
async fn execute_queue(client: &Client, command: Command) -> Update {
    match command {
        Command::LoadQueue => Update::Queue(
            client
                .call::<method::QueueList>(QueueListParams::default())
                .await
                .map_err(failure),
        ),
        Command::Backtest(params) => Update::Done(
            client
                .call::<method::BacktestRun>(params)
                .await
                .map(|job| {
                    format!(
                        "queued a {} of {} (job {})",
                        crate::text::queue_kind(job.kind),
                        job.strategy,
                        job.id
                    )
                })
                .map_err(|e| format!("backtest refused: {}", failure(e).message)),
        ),
        Command::CancelQueueJob(id) => Update::Done(
            client
                .call::<method::QueueCancel>(QueueCancelParams { id: id.clone() })
                .await
                .map(|job| match job.state {
                    mem_protocol::backtest::QueueJobState::Running => format!(
                        "the {} of {} is being stopped (its processes are ended)",
                        crate::text::queue_kind(job.kind),
                        job.strategy
                    ),
                    _ => format!(
                        "cancelled the {} of {} before it started",
                        crate::text::queue_kind(job.kind),
                        job.strategy
                    ),
                })
                .map_err(|e| format!("cancel of job {id} failed: {}", failure(e).message)),
        ),
        other => Update::Done(Err(format!("not a queue command: {other:?}"))),
    }
}

/// Runs one command; the answer becomes an update.
async fn execute(client: &Client, command: Command) -> Option<Update> {
    Some(match command {
        Command::Deploy(params) => Update::Done(
            client
                .call_with_timeout::<method::Deploy>(params, DEPLOY_TIMEOUT)
                .await
                .map(|d| match d.deployment_type {
                    mem_protocol::deploy::DeploymentType::Native => format!(
                        "deployed {} natively, on paper, reading {}",
                        d.strategy_name,
                        d.config_file.as_deref().unwrap_or("its candle file")
                    ),
                    mem_protocol::deploy::DeploymentType::Freqtrade => format!(
                        "deployed {} ({}, pid {}, port {})",
                        d.strategy_name,
                        if d.dry_run { "dry-run" } else { "LIVE" },
                        d.process_id.map_or("-".into(), |p| p.to_string()),
                        d.port.map_or("-".into(), |p| p.to_string())
                    ),
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
            let mut each = Vec::new();
            for id in ids {
                if let Ok(report) = client
                    .call::<method::Performance>(PerformanceParams {
                        id,
                        from: midnight,
                        to: None,
                    })
                    .await
                {
                    each.push((id, report.all.total_pnl));
                }
            }
            Update::TodayPnl(each)
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
        Command::LoadFeed(params) => Update::Feed(
            params.clone(),
            client
                .call::<method::MarketFeed>(params)
                .await
                .map_err(|e| failure(e).message),
        ),
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
        Command::Acknowledge(deployment_id) => Update::Done(
            client
                .call::<method::Acknowledge>(mem_protocol::deploy::AcknowledgeParams {
                    deployment_id,
                })
                .await
                .map(|d| {
                    format!(
                        "acknowledged: {} {}",
                        d.strategy_name,
                        crate::text::deployment_status(d.status)
                    )
                })
                .map_err(|e| format!("acknowledge failed: {}", failure(e).message)),
        ),
        Command::LoadQueue | Command::Backtest(_) | Command::CancelQueueJob(_) => {
            return Some(execute_queue(client, command).await);
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

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::deploy::{DeploymentUsage, DeploymentsUsage};
    use mem_protocol::{Event, EventMessage, PROTOCOL_VERSION};
    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    const DEPLOYMENT: &str = "0e0c8a4e-5b1f-4a53-9d39-2c1e0f7d6a11";

    /// A snapshot of every topic, as memd sends it.
    fn snapshot() -> Value {
        let latency = json!({"count": 0, "totalCount": 0, "totalMs": 0.0});
        json!({
            "daemon": {
                "version": "0.1.0", "pid": 7, "startedAt": "2026-11-22T08:00:00Z",
                "uptimeSecs": 60, "dataDir": "/d", "registryDir": "/d/r", "socket": "/s",
                "logDir": "/l", "mode": "user",
                "counts": {"strategies": 0, "strategiesByStatus": {}, "registryErrors": 0,
                           "connections": 1, "subscribers": 1},
                "host": {"cpuCount": 2, "cpuPercent": 1.0, "memoryTotalBytes": 1,
                         "memoryUsedBytes": 1, "loadAverage": [0.0, 0.0, 0.0]},
                "process": {"rssBytes": 1, "cpuPercent": 0.0}, "access": "control"
            },
            "strategies": [],
            "deployments": [{
                "deploymentId": DEPLOYMENT, "strategyId": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec",
                "strategyName": "Freqtrade MACD Hunter", "deploymentType": "freqtrade",
                "processId": 31337, "port": 8083, "startedAt": "2026-11-22T10:00:00Z",
                "status": "running", "dryRun": true, "configFile": null, "startedBy": "manual",
                "cpuPercent": 1.5, "rssBytes": 1048576
            }],
            "memMetrics": {
                "at": "2026-11-22T10:30:00Z", "uptimeSecs": 60, "windowSecs": 3600,
                "decisionsPerHour": 0, "decisionsTotal": 0, "closed24h": 0, "wins24h": 0,
                "outcomesTotal": 0, "predictionLatencyMs": latency, "enhancementTimeMs": latency,
                "memoryLoadMs": latency, "learnedStrategies": {"active": 0, "deprecated": 0},
                "botPolls": []
            },
            "decisions": {"decisions": [], "unreadableLines": 0},
            "modelHistory": {"versions": []},
            "jobs": {"jobs": []},
            "queue": {"jobs": [], "parallel": 1}
        })
    }

    /// A memd stand-in for one session after another: answers `hello` and
    /// `events.subscribe` (with [`snapshot`]), then pushes `pushed`; reports every method
    /// it is asked for (a subscription with its topics, `events.subscribe daemon,...`),
    /// and answers any other with an error.
    async fn fake_memd(
        listener: UnixListener,
        pushed: Vec<Event>,
        asked: mpsc::UnboundedSender<String>,
    ) {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            fake_session(stream, &pushed, &asked).await;
        }
    }

    async fn fake_session(
        stream: tokio::net::UnixStream,
        pushed: &[Event],
        asked: &mpsc::UnboundedSender<String>,
    ) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let request: Value = serde_json::from_str(&line).unwrap();
            let method = request["method"].as_str().unwrap().to_string();
            let answer = match method.as_str() {
                "hello" => json!({"result": {"protocolVersion": PROTOCOL_VERSION,
                    "server": "memd", "serverVersion": "0.1.0", "pid": 7, "access": "control"}}),
                "events.subscribe" => json!({"result": {"topics": Topic::ALL,
                    "snapshot": snapshot(), "lastSeq": 0}}),
                _ => json!({"error": {"code": -32601, "message": "not in this test"}}),
            };
            let mut answer = answer.as_object().unwrap().clone();
            answer.insert("jsonrpc".into(), json!("2.0"));
            answer.insert("id".into(), request["id"].clone());
            let mut text = serde_json::to_vec(&answer).unwrap();
            text.push(b'\n');
            write.write_all(&text).await.unwrap();
            if method == "events.subscribe" {
                for (i, event) in pushed.iter().enumerate() {
                    let message = EventMessage {
                        seq: i as u64 + 1,
                        at: chrono::Utc::now(),
                        event: event.clone(),
                    };
                    write
                        .write_all(&message.to_notification().to_line())
                        .await
                        .unwrap();
                }
            }
            let _ = asked.send(match method.as_str() {
                "events.subscribe" => {
                    let topics: Vec<String> =
                        serde_json::from_value(request["params"]["topics"].clone()).unwrap();
                    format!("{method} {}", topics.join(","))
                }
                _ => method,
            });
        }
    }

    /// The session asks for nothing after subscribing: the snapshot fills the UI, and the
    /// periodic events reach it as they come. (Before, the status and MEM's figures were
    /// asked for at once and every 2 s, the deployments every 5 s.)
    #[tokio::test]
    async fn a_session_subscribes_then_only_listens() {
        let dir = std::env::temp_dir().join(format!("memctl-conn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("memd.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let usage = Event::DeploymentsUsage(DeploymentsUsage {
            deployments: vec![DeploymentUsage {
                deployment_id: DEPLOYMENT.parse().unwrap(),
                cpu_percent: 12.5,
                rss_bytes: 2 << 20,
            }],
        });
        let (asked_tx, mut asked) = mpsc::unbounded_channel();
        let memd = tokio::spawn(fake_memd(listener, vec![usage.clone()], asked_tx));
        let client = Client::connect(&socket, ClientOptions::default())
            .await
            .unwrap();
        let (updates_tx, mut updates) = mpsc::unbounded_channel();
        let (_commands, commands_rx) = mpsc::unbounded_channel();
        let target = Target::new(Endpoint::Socket(socket.clone()), false);
        let session = tokio::spawn(run(target, Some(client), updates_tx, commands_rx));

        let Some(Update::Connected {
            deployed,
            metrics,
            panels,
            queue,
            ..
        }) = updates.recv().await
        else {
            panic!("the first update is the snapshot")
        };
        assert_eq!(deployed.deployments[0].cpu_percent, Some(1.5));
        assert!(metrics.is_some());
        let views: Vec<View> = panels.iter().map(|(v, _)| *v).collect();
        assert_eq!(views, [View::Memory, View::Model, View::Jobs]);
        assert_eq!(
            queue.map(|q| q.parallel),
            Some(1),
            "the Backtests view's queue"
        );
        match updates.recv().await {
            Some(Update::Event(event)) => assert_eq!(*event, usage),
            other => panic!("expected the pushed event, got {other:?}"),
        }
        // Longer than the old polls' first round (at once) and second (2 s).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let mut methods = Vec::new();
        while let Ok(m) = asked.try_recv() {
            methods.push(m);
        }
        assert_eq!(
            methods,
            [
                "hello",
                "events.subscribe daemon,registry,deployments,logs,model,memory,jobs,market,queue"
            ]
        );
        assert!(updates.try_recv().is_err(), "no other update");
        session.abort();
        memd.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Other topics wanted (a fleet's server leaving the screen, or coming on it): a new
    /// session at once, subscribed to them, its snapshot the next update; the UI is never
    /// told the daemon went away.
    #[tokio::test]
    async fn other_topics_open_a_new_session_with_them() {
        let dir = std::env::temp_dir().join(format!("memctl-topics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("memd.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let (asked_tx, mut asked) = mpsc::unbounded_channel();
        let memd = tokio::spawn(fake_memd(listener, vec![], asked_tx));
        let (updates_tx, mut updates) = mpsc::unbounded_channel();
        let (_commands, commands_rx) = mpsc::unbounded_channel();
        let (topics_tx, topics) = watch::channel(vec![Topic::Daemon, Topic::Deployments]);
        let target = Target {
            topics: Some(topics),
            ..Target::new(Endpoint::Socket(socket.clone()), false)
        };
        let session = tokio::spawn(run(target, None, updates_tx, commands_rx));
        let mut next_asked = async || {
            tokio::time::timeout(Duration::from_secs(10), asked.recv())
                .await
                .unwrap()
                .unwrap()
        };
        assert_eq!(next_asked().await, "hello");
        assert_eq!(next_asked().await, "events.subscribe daemon,deployments");
        assert!(matches!(
            updates.recv().await,
            Some(Update::Connected { .. })
        ));

        topics_tx.send(Topic::ALL.to_vec()).unwrap();
        assert_eq!(next_asked().await, "hello");
        assert_eq!(
            next_asked().await,
            "events.subscribe daemon,registry,deployments,logs,model,memory,jobs,market,queue"
        );
        match updates.recv().await {
            Some(Update::Connected { .. }) => {}
            other => panic!("expected the new session's snapshot, got {other:?}"),
        }
        session.abort();
        memd.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
