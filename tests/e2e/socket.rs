//! The socket protocol through the real daemon: handshake, methods, malformed input,
//! events.

use mem_e2e::Daemon;
use mem_e2e::seed::MACD_HUNTER;
use mem_protocol::methods::{GetStrategyParams, ListStrategiesParams, NoParams, method};
use mem_protocol::strategy::{StrategyId, StrategyStatus};
use mem_protocol::{Access, Client, ClientError, ErrorCode, Event, Topic};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A connection speaking raw bytes, to send what a well-behaved client never would.
struct Raw {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Raw {
    fn connect(daemon: &Daemon) -> Raw {
        let stream = UnixStream::connect(&daemon.socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Value {
        self.writer.write_all(bytes).unwrap();
        self.writer.write_all(b"\n").unwrap();
        self.read()
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("an answer within 10 s");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("daemon sent invalid JSON {line:?}: {e}"))
    }

    fn hello(&mut self) {
        let answer = self
            .send(br#"{"jsonrpc":"2.0","id":0,"method":"hello","params":{"protocolVersion":1}}"#);
        assert_eq!(answer["result"]["server"], "memd", "{answer}");
    }

    fn list_count(&mut self) -> usize {
        let answer = self.send(br#"{"jsonrpc":"2.0","id":99,"method":"strategies.list"}"#);
        assert_eq!(answer["id"], 99, "{answer}");
        answer["result"]["strategies"]
            .as_array()
            .unwrap_or_else(|| panic!("no list in {answer}"))
            .len()
    }
}

fn error_of(answer: &Value) -> (i64, String) {
    let error = answer
        .get("error")
        .unwrap_or_else(|| panic!("expected an error, got {answer}"));
    (
        error["code"].as_i64().unwrap(),
        error["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn hello_status_list_and_show() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    assert_eq!(client.hello().access, Access::Control);
    assert_eq!(client.hello().pid as i32, daemon.pid());

    let status = client
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert_eq!(status.counts.strategies, 11);
    assert_eq!(status.counts.registry_errors, 0);
    assert_eq!(status.counts.strategies_by_status.get("active"), Some(&3));
    assert_eq!(status.data_dir, daemon.data_dir.display().to_string());
    assert_eq!(status.socket, daemon.socket.display().to_string());
    assert_eq!(status.pid as i32, daemon.pid());
    assert!(
        status.host.cpu_count >= 1 && status.host.memory_total_bytes > 0,
        "{:?}",
        status.host
    );
    assert!(status.process.rss_bytes > 0);

    let all = client
        .call::<method::StrategiesList>(ListStrategiesParams::default())
        .await
        .unwrap();
    assert_eq!(all.total, 11);
    let names: Vec<_> = all
        .strategies
        .iter()
        .map(|s| s.display_name.as_str())
        .collect();
    for expected in [
        "Freqtrade Conservative RSI",
        "Freqtrade MACD Hunter",
        "Freqtrade Aggressive RSI",
        "Momentum",
        "RSI",
        "MACD",
        "MFI",
        "VWAP",
        "Volatility-Managed Momentum",
        "Statistical Arbitrage Pairs Trading",
        "Currency Carry Trade",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    let filtered = |params: ListStrategiesParams| {
        let client = &client;
        async move {
            let list = client.call::<method::StrategiesList>(params).await.unwrap();
            list.strategies
                .into_iter()
                .map(|s| s.display_name.clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        filtered(ListStrategiesParams {
            category: Some("momentum".into()),
            status: Some(StrategyStatus::Active),
            ..Default::default()
        })
        .await,
        ["Freqtrade MACD Hunter"]
    );
    assert_eq!(
        filtered(ListStrategiesParams {
            tag: Some("rsi".into()),
            min_sharpe: Some(1.2),
            ..Default::default()
        })
        .await,
        ["Freqtrade Aggressive RSI"]
    );
    assert_eq!(
        filtered(ListStrategiesParams {
            query: Some("Barroso".into()),
            ..Default::default()
        })
        .await,
        ["Volatility-Managed Momentum"]
    );
    assert!(
        filtered(ListStrategiesParams {
            min_sharpe: Some(5.0),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    let id: StrategyId = MACD_HUNTER.parse().unwrap();
    let detail = client
        .call::<method::StrategiesGet>(GetStrategyParams { id })
        .await
        .unwrap();
    assert_eq!(detail.summary.display_name, "Freqtrade MACD Hunter");
    assert_eq!(detail.summary.sharpe_ratio, Some(1.45));
    assert_eq!(detail.summary.win_rate, Some(0.58));
    assert_eq!(detail.metadata.strategy.classification.category, "momentum");
    assert_eq!(
        detail.metadata.strategy.parameters["macd_fast"]["value"],
        json!(12)
    );

    let missing: StrategyId = "00000000-0000-4000-8000-000000000000".parse().unwrap();
    let err = client
        .call::<method::StrategiesGet>(GetStrategyParams { id: missing })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    assert!(
        err.to_string()
            .contains("00000000-0000-4000-8000-000000000000"),
        "{err}"
    );
}

#[tokio::test]
async fn every_malformed_frame_gets_a_clear_error_and_the_connection_survives() {
    let daemon = Daemon::start();
    let mut raw = Raw::connect(&daemon);

    // Before the handshake.
    let (code, message) =
        error_of(&raw.send(br#"{"jsonrpc":"2.0","id":1,"method":"strategies.list"}"#));
    assert_eq!(code, -32002);
    assert!(message.contains("hello"), "{message}");
    raw.hello();

    let oversized = {
        let mut frame =
            br#"{"jsonrpc":"2.0","id":2,"method":"strategies.list","params":{"query":""#.to_vec();
        frame.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
        frame.extend_from_slice(br#""}}"#);
        frame
    };
    let cases: Vec<(&str, Vec<u8>, i64, &str)> = vec![
        ("over 1 MiB", oversized, -32000, "1048576 bytes"),
        ("invalid UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"\xc3\x28\"}".to_vec(), -32700, "UTF-8"),
        ("invalid JSON", br#"{"jsonrpc":"2.0","id":4,"method":"#.to_vec(), -32700, "not valid JSON"),
        ("not an object", b"42".to_vec(), -32600, "JSON object"),
        ("batch", br#"[{"jsonrpc":"2.0","id":5,"method":"hello"}]"#.to_vec(), -32600, "batch"),
        ("no method", br#"{"jsonrpc":"2.0","id":6}"#.to_vec(), -32600, "missing `method`"),
        ("wrong version", br#"{"jsonrpc":"1.0","id":7,"method":"daemon.status"}"#.to_vec(), -32600, "\"2.0\""),
        ("unknown method", br#"{"jsonrpc":"2.0","id":8,"method":"strategies.explode"}"#.to_vec(), -32601, "strategies.explode"),
        ("wrong param type", br#"{"jsonrpc":"2.0","id":9,"method":"strategies.list","params":{"minSharpe":"high"}}"#.to_vec(), -32602, "minSharpe"),
        ("unknown param", br#"{"jsonrpc":"2.0","id":10,"method":"strategies.list","params":{"catgory":"x"}}"#.to_vec(), -32602, "catgory"),
        ("bad enum", br#"{"jsonrpc":"2.0","id":11,"method":"strategies.list","params":{"status":"live"}}"#.to_vec(), -32602, "active"),
        ("path as id", br#"{"jsonrpc":"2.0","id":12,"method":"strategies.get","params":{"id":"../../etc/passwd"}}"#.to_vec(), -32602, "UUID"),
        ("missing param", br#"{"jsonrpc":"2.0","id":13,"method":"strategies.get","params":{}}"#.to_vec(), -32602, "missing field `id`"),
        ("positional params", br#"{"jsonrpc":"2.0","id":14,"method":"strategies.get","params":["x"]}"#.to_vec(), -32602, "positional"),
        ("unknown job", br#"{"jsonrpc":"2.0","id":15,"method":"jobs.run","params":{"name":"retrian"}}"#.to_vec(), -32602, "retrian"),
    ];
    let mut other = daemon.client().await;
    for (what, frame, expected_code, needle) in cases {
        let answer = raw.send(&frame);
        let (code, message) = error_of(&answer);
        assert_eq!(code, expected_code, "{what}: {answer}");
        assert!(
            message.contains(needle),
            "{what}: {message:?} should contain {needle:?}"
        );
        // The same connection still works, and so does every other client.
        assert_eq!(raw.list_count(), 11, "after {what}");
        let status = other.call::<method::DaemonStatus>(NoParams {}).await;
        assert!(status.is_ok(), "another client after {what}: {status:?}");
        if what == "over 1 MiB" {
            other = daemon.client().await; // and new clients can connect
        }
    }
    // The id comes back when it could be read.
    let answer = raw.send(br#"{"jsonrpc":"2.0","id":"abc","method":"nope"}"#);
    assert_eq!(answer["id"], "abc", "{answer}");
    // A notification (no id) gets no answer, even when wrong: the next answer is for id 16.
    raw.writer
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n")
        .unwrap();
    let answer = raw.send(br#"{"jsonrpc":"2.0","id":16,"method":"daemon.status"}"#);
    assert_eq!(answer["id"], 16, "{answer}");
    assert!(
        daemon.stderr().find("panicked").is_none(),
        "{}",
        daemon.stderr()
    );
}

#[tokio::test]
async fn incompatible_protocol_version_is_refused_clearly() {
    let daemon = Daemon::start();
    let mut raw = Raw::connect(&daemon);
    let (code, message) = error_of(
        &raw.send(br#"{"jsonrpc":"2.0","id":1,"method":"hello","params":{"protocolVersion":99}}"#),
    );
    assert_eq!(code, -32003);
    assert!(
        message.contains("protocol version 1") && message.contains("99"),
        "{message}"
    );
    // Still not handshaken: other methods are refused until a good hello.
    let (code, _) = error_of(&raw.send(br#"{"jsonrpc":"2.0","id":2,"method":"daemon.status"}"#));
    assert_eq!(code, -32002);
    raw.hello();
    assert_eq!(raw.list_count(), 11);
}

#[tokio::test]
async fn read_only_clients_get_view_access() {
    let daemon = Daemon::start();
    let client = daemon.view_client().await;
    assert_eq!(client.hello().access, Access::View);
    let status = client
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert_eq!(status.access, Access::View);
}

#[tokio::test]
async fn subscribers_get_a_snapshot_then_the_shutdown_event() {
    let mut daemon = Daemon::start();
    let client = daemon.client().await;
    let (subscribed, mut events) = client.subscribe(vec![]).await.unwrap();
    assert_eq!(
        subscribed.topics,
        [
            Topic::Daemon,
            Topic::Registry,
            Topic::Deployments,
            Topic::Logs,
            Topic::Model,
            Topic::Memory,
            Topic::Jobs,
            Topic::Market,
            Topic::Queue
        ]
    );
    assert_eq!(
        subscribed.snapshot.strategies.as_ref().map(Vec::len),
        Some(11)
    );
    // The queue's state is in the snapshot too: empty on a new data directory.
    let queue = subscribed
        .snapshot
        .queue
        .as_ref()
        .expect("the queue's snapshot");
    assert!(queue.jobs.is_empty() && queue.parallel == 1, "{queue:?}");
    assert_eq!(
        subscribed
            .snapshot
            .daemon
            .as_ref()
            .map(|d| d.counts.subscribers),
        Some(0),
        "counted after the snapshot"
    );
    let second = daemon.client().await;
    let (_, mut registry_only) = second.subscribe(vec![Topic::Registry]).await.unwrap();
    let again = client.subscribe(vec![]).await;
    assert!(
        matches!(again, Err(ClientError::AlreadySubscribed)),
        "a second subscribe on one connection is refused"
    );

    let status = daemon.stop_with(Signal::SIGTERM);
    assert!(
        status.success(),
        "SIGTERM is a clean exit: {status}\n{}",
        daemon.stderr()
    );
    // Every event until the stream ends. Beside the shutdown, the only news is the
    // daemon's own alerts (`alert.changed`): its start (raised as it became ready, maybe
    // after this subscription) and its stop (raised by the shutdown).
    let mut news = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event, or the end of the stream, in time");
        let Some(event) = event else { break };
        assert!(event.seq > subscribed.last_seq);
        match event.event {
            Event::AlertChanged(a) => assert!(
                ["daemon_started", "daemon_stopping"].contains(&a.rule.as_str()),
                "{a:?}"
            ),
            other => news.push(other),
        }
    }
    match news.as_slice() {
        [Event::DaemonStopping(stopping)] => assert_eq!(stopping.reason, "SIGTERM"),
        other => panic!("expected daemon.stopping, then the end of the stream: {other:?}"),
    }
    // A registry-only subscriber does not get daemon events.
    assert!(
        tokio::time::timeout(Duration::from_secs(5), registry_only.next())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !daemon.socket.exists(),
        "the socket file is removed on shutdown"
    );
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_does_not_stall_the_others() {
    let daemon = Daemon::start();
    // Subscribe on a raw connection and never read again.
    let mut stalled = Raw::connect(&daemon);
    stalled.hello();
    let answer =
        stalled.send(br#"{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{}}"#);
    assert!(
        answer["result"]["snapshot"]["strategies"].is_array(),
        "{answer}"
    );
    // Fill its socket with answers it never reads; the daemon must keep serving others.
    stalled
        .writer
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let big_request = br#"{"jsonrpc":"2.0","id":2,"method":"strategies.list"}"#;
    for _ in 0..2000 {
        if stalled
            .writer
            .write_all(big_request)
            .and_then(|_| stalled.writer.write_all(b"\n"))
            .is_err()
        {
            break;
        }
    }
    let client = daemon.client().await;
    for _ in 0..20 {
        let status = tokio::time::timeout(
            Duration::from_secs(2),
            client.call::<method::DaemonStatus>(NoParams {}),
        )
        .await;
        assert!(matches!(status, Ok(Ok(_))), "{status:?}");
    }
}

/// A client that sends requests but never reads the answers is disconnected once its
/// outbox has been full for 10 s, instead of holding its answers (megabytes with a large
/// registry) for as long as it stays connected (found by `socket-load`'s review); the
/// other clients are served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_disconnected() {
    let daemon = Daemon::start();
    let mut stalled = UnixStream::connect(&daemon.socket).unwrap();
    stalled
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let hello = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"hello\",\"params\":{{\"protocolVersion\":{}}}}}\n",
        mem_protocol::PROTOCOL_VERSION
    );
    stalled.write_all(hello.as_bytes()).unwrap();
    let mut sent = 0;
    for i in 1..=3000 {
        let line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"strategies.list\"}}\n");
        if stalled.write_all(line.as_bytes()).is_err() {
            break; // the daemon stopped reading: its in-flight and outbox limits hold
        }
        sent += 1;
    }
    assert!(sent > 1000, "requests sent before back-pressure: {sent}");
    let other = daemon.client().await;
    let started = std::time::Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(25) {
        assert!(
            other
                .call::<method::DaemonStatus>(NoParams {})
                .await
                .is_ok(),
            "others are served meanwhile"
        );
        if daemon.stderr().contains("has not read its answers") {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        closed,
        "the stalled client was not disconnected:\n{}",
        daemon.stderr()
    );
    // Its connection ends (EOF, or a reset: it left requests unread).
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stalled);
    let mut line = String::new();
    let mut lines = 0;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => lines += 1,
            // Closing with our unread requests in its buffer resets the connection.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection should end after {lines} lines: {e}"),
        }
    }
    assert!(
        lines < sent + 1,
        "not every answer was kept for it: {lines} of {sent}"
    );
    let status = other
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert_eq!(
        status.counts.connections, 1,
        "only the healthy client remains"
    );
}

/// Deploys Freqtrade Conservative RSI (the fake bot) dry-run on a free port.
async fn deploy_a_bot(client: &Client) -> mem_protocol::deploy::DeployedStrategy {
    client
        .call_with_timeout::<method::Deploy>(
            mem_protocol::deploy::DeployParams {
                id: CONSERVATIVE_RSI.parse().unwrap(),
                dry_run: true,
                port: Some(mem_e2e::free_port()),
                parameters: None,
                native: None,
            },
            Duration::from_secs(30),
        )
        .await
        .unwrap()
}

const CONSERVATIVE_RSI: &str = "186062cd-e0f7-45eb-b387-3067360efe34";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_carries_the_state_of_every_topic_asked_for() {
    use mem_protocol::deploy::DeployedParams;
    use mem_protocol::methods::Snapshot;
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    let bot = deploy_a_bot(&client).await;

    let (all, _events) = client.subscribe(vec![]).await.unwrap();
    let s = all.snapshot;
    // Each member is what its method answers.
    let deployed = client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
        .unwrap();
    let deployments = s.deployments.expect("deployments");
    let ids = |list: &[mem_protocol::deploy::DeployedStrategy]| {
        list.iter().map(|d| d.deployment_id).collect::<Vec<_>>()
    };
    assert_eq!(ids(&deployments), ids(&deployed.deployments));
    let d = deployments
        .iter()
        .find(|d| d.deployment_id == bot.deployment_id)
        .expect("the bot");
    assert!(d.rss_bytes.is_some_and(|b| b > 0), "{d:?}");
    assert!(d.cpu_percent.is_some(), "its CPU, read for the snapshot");
    let decisions = client
        .call::<method::MemDecisions>(Default::default())
        .await
        .unwrap();
    assert_eq!(s.decisions, Some(decisions));
    let metrics = s.mem_metrics.expect("MEM's figures");
    let asked = client
        .call::<method::MemMetrics>(NoParams {})
        .await
        .unwrap();
    assert_eq!(
        (metrics.decisions_total, metrics.learned_strategies),
        (asked.decisions_total, asked.learned_strategies)
    );
    let model = client.call::<method::MlStatus>(NoParams {}).await.unwrap();
    assert_eq!(s.model, Some(model));
    let history = client.call::<method::MlHistory>(NoParams {}).await.unwrap();
    assert_eq!(s.model_history, Some(history));
    let jobs = client.call::<method::JobsList>(NoParams {}).await.unwrap();
    let names = |list: &mem_protocol::jobs::JobList| {
        list.jobs
            .iter()
            .map(|j| (j.name.clone(), j.schedule.clone(), j.enabled))
            .collect::<Vec<_>>()
    };
    assert_eq!(s.jobs.as_ref().map(names), Some(names(&jobs)));
    assert_eq!(s.strategies.map(|l| l.len()), Some(11));
    assert!(s.daemon.is_some());

    // A subscriber gets the members of its topics only.
    for (topic, member) in [
        (Topic::Registry, "strategies"),
        (Topic::Deployments, "deployments"),
        (Topic::Jobs, "jobs"),
    ] {
        let other = daemon.client().await;
        let (one, _) = other.subscribe(vec![topic]).await.unwrap();
        let json = serde_json::to_value(&one.snapshot).unwrap();
        let members: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(members, [member], "{topic:?}");
    }
    let other = daemon.client().await;
    let (logs, _) = other.subscribe(vec![Topic::Logs]).await.unwrap();
    assert_eq!(logs.snapshot, Snapshot::default(), "`logs` has no state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_events_bring_the_figures_no_change_announces() {
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let client = daemon.client().await;
    let bot = deploy_a_bot(&client).await;

    let (_, mut events) = client
        .subscribe(vec![Topic::Daemon, Topic::Memory, Topic::Deployments])
        .await
        .unwrap();
    let subscribed = std::time::Instant::now();
    let (mut pulses, mut metrics, mut usage) = (Vec::new(), None, None);
    let mut first = None;
    tokio::time::timeout(Duration::from_secs(15), async {
        while pulses.len() < 2 || metrics.is_none() || usage.is_none() {
            let m = events.next().await.expect("events");
            if m.event.is_periodic() {
                first.get_or_insert(subscribed.elapsed());
            }
            match m.event {
                Event::DaemonPulse(p) => pulses.push((m.at, *p)),
                Event::MemMetrics(m) => metrics = Some(*m),
                Event::DeploymentsUsage(u) => usage = Some(u),
                _ => {}
            }
        }
    })
    .await
    .expect("two daemon.pulse, a mem.metrics and a deployments.usage within 15 s");
    // The snapshot was fresh: the first comes an interval (2 s) after it.
    let first = first.unwrap();
    assert!(
        first >= Duration::from_millis(1500),
        "first after {first:?}"
    );
    // Every 2 s.
    let gap = (pulses[1].0 - pulses[0].0).to_std().unwrap();
    assert!(
        (Duration::from_millis(1500)..Duration::from_millis(3500)).contains(&gap),
        "{gap:?}"
    );
    let pulse = &pulses[0].1;
    assert!(pulse.counts.subscribers >= 1 && pulse.counts.connections >= 1);
    assert_eq!(pulse.counts.strategies, 11);
    assert!(pulse.host.cpu_count > 0 && pulse.host.memory_total_bytes > 0);
    assert!(pulse.process.rss_bytes > 0, "memd's own memory");
    assert!(metrics.unwrap().window_secs > 0);
    let usage = usage.unwrap();
    let of_bot = usage
        .deployments
        .iter()
        .find(|u| u.deployment_id == bot.deployment_id)
        .expect("the bot's figures");
    assert!(of_bot.rss_bytes > 0, "{of_bot:?}");
}
