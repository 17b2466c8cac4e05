//! The seed's REST API over HTTP, through the real daemon: each of the seed guide's
//! example requests (curl and the React snippet's `fetch`es) with the token added, the
//! envelope and fields they answer, every error status, the tokens and their two access
//! levels, the event stream, and the listener's address rules. The fake bot
//! (`fake_freqtrade`) stands in for Freqtrade behind the deploy endpoint.

use mem_e2e::free_port;
use mem_e2e::seed::{CONSERVATIVE_RSI, MACD_HUNTER, preferred_ports};
use mem_e2e::{Daemon, describe};
use mem_protocol::methods::method;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// A daemon with the HTTP API on a free loopback port.
struct Api {
    daemon: Daemon,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    /// `freqtrade`: the `[freqtrade]` table's extra keys; the fake bot unless `bin` is given.
    fn start(freqtrade_bin: Option<&str>) -> Api {
        let (daemon, base) = mem_e2e::start_with_http(|dir, http| match freqtrade_bin {
            None => mem_e2e::fake_freqtrade_config(
                dir,
                json!({"fake_bot": {}}),
                "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nport_range = [19300, 19399]",
                http,
            ),
            Some(bin) => {
                let path = dir.join("memd.toml");
                std::fs::write(&path, format!("[freqtrade]\nbin = {bin:?}\n{http}")).unwrap();
                path
            }
        });
        let token = mem_e2e::http_token(&daemon, &[]);
        Api {
            daemon,
            base,
            token,
            http: reqwest::Client::new(),
        }
    }

    /// A request with the control token (or `token`), and a JSON body when given;
    /// answers the status and the parsed body.
    async fn call_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call_as(Some(&self.token), reqwest::Method::GET, path, None)
            .await
    }

    async fn post(&self, path: &str, body: Option<&str>) -> (u16, Value) {
        self.call_as(Some(&self.token), reqwest::Method::POST, path, body)
            .await
    }
}

/// The seed's envelope: `success`, `message` as given, a UTC timestamp; `data` on success.
fn envelope(answer: &Value, success: bool, message: Option<&str>) {
    assert_eq!(answer["success"], json!(success), "{answer}");
    match message {
        Some(m) => assert_eq!(answer["message"], json!(m), "{answer}"),
        None => assert!(answer.get("message").is_none(), "{answer}"),
    }
    let stamp = answer["timestamp"].as_str().expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
    assert!(stamp.ends_with('Z'), "{stamp}");
    assert_eq!(answer.get("data").is_some(), success, "{answer}");
}

#[tokio::test]
async fn the_seed_guides_examples_work_with_the_token() {
    let _ports = preferred_ports().await;
    let api = Api::start(None);

    // curl http://localhost:5002/api/mem/strategies  (and the React snippet's first fetch)
    let (status, list) = api.get("/api/mem/strategies").await;
    assert_eq!(status, 200);
    envelope(&list, true, Some("Found 11 strategies in registry"));
    let strategies = list["data"].as_array().unwrap();
    assert_eq!(strategies.len(), 11);
    for s in strategies {
        for field in [
            "id",
            "name",
            "displayName",
            "description",
            "category",
            "status",
            "language",
            "memEnabled",
            "sharpeRatio",
            "winRate",
            "isDeployed",
        ] {
            assert!(s.get(field).is_some(), "{field} missing in {s}");
        }
    }
    let macd = strategies.iter().find(|s| s["id"] == MACD_HUNTER).unwrap();
    assert_eq!(macd["displayName"], "Freqtrade MACD Hunter");
    assert_eq!(macd["isDeployed"], false);
    // ... | jq '.data[] | select(.memEnabled == true)'
    assert!(strategies.iter().any(|s| s["memEnabled"] == true));

    // GET by id: the same item, no message.
    let (status, one) = api.get(&format!("/api/mem/strategies/{MACD_HUNTER}")).await;
    assert_eq!(status, 200);
    envelope(&one, true, None);
    assert_eq!(one["data"]["name"], "freqtrade_macd_hunter");

    // curl -X POST .../{MACD Hunter}/deploy -H "Content-Type: application/json" -d '{"dryRun": true}'
    let (status, deployed) = api
        .post(
            &format!("/api/mem/strategies/{MACD_HUNTER}/deploy"),
            Some(r#"{"dryRun": true}"#),
        )
        .await;
    assert_eq!(status, 200, "{deployed}\n{}", api.daemon.stderr());
    envelope(
        &deployed,
        true,
        Some(&format!("Successfully deployed strategy {MACD_HUNTER}")),
    );
    let d = &deployed["data"];
    assert_eq!(d["strategyId"], MACD_HUNTER);
    assert_eq!(d["strategyName"], "Freqtrade MACD Hunter");
    assert_eq!(d["deploymentType"], "freqtrade");
    assert_eq!(d["status"], "running");
    assert_eq!(d["dryRun"], true);
    assert!(d["processId"].as_u64().is_some_and(|p| p > 0), "{d}");
    assert!(d["port"].as_u64().is_some(), "{d}");
    assert!(d["configFile"].as_str().is_some(), "{d}");
    chrono::DateTime::parse_from_rfc3339(d["startedAt"].as_str().unwrap()).unwrap();

    // Deploying it again: 409.
    let (status, again) = api
        .post(&format!("/api/mem/strategies/{MACD_HUNTER}/deploy"), None)
        .await;
    assert_eq!(status, 409, "{again}");
    envelope(&again, false, again["message"].as_str());
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("already deployed"),
        "{again}"
    );

    // curl http://localhost:5002/api/mem/strategies/deployed
    let (status, running) = api.get("/api/mem/strategies/deployed").await;
    assert_eq!(status, 200);
    envelope(&running, true, Some("1 strategies currently deployed"));
    assert_eq!(running["data"][0]["strategyId"], MACD_HUNTER);
    let (_, list) = api.get("/api/mem/strategies").await;
    let macd = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == MACD_HUNTER)
        .unwrap()
        .clone();
    assert_eq!(macd["isDeployed"], true);

    // curl -X POST .../{MACD Hunter}/stop
    let (status, stopped) = api
        .post(&format!("/api/mem/strategies/{MACD_HUNTER}/stop"), None)
        .await;
    assert_eq!(status, 200, "{stopped}");
    envelope(
        &stopped,
        true,
        Some(&format!("Successfully stopped strategy {MACD_HUNTER}")),
    );
    assert_eq!(
        stopped["data"],
        json!({"strategyId": MACD_HUNTER, "status": "stopped"})
    );
    let (_, running) = api.get("/api/mem/strategies/deployed").await;
    envelope(&running, true, Some("0 strategies currently deployed"));
    // Stopping what is not deployed: 404.
    let (status, not) = api
        .post(&format!("/api/mem/strategies/{MACD_HUNTER}/stop"), None)
        .await;
    assert_eq!(status, 404, "{not}");

    // Example 2: curl -X POST .../recommendations -d '{"trend": "bullish", "volatility": "high"}'
    let (status, recs) = api
        .post(
            "/api/mem/strategies/recommendations",
            Some(r#"{"trend": "bullish", "volatility": "high"}"#),
        )
        .await;
    assert_eq!(status, 200, "{recs}");
    let n = recs["data"].as_array().unwrap().len();
    envelope(&recs, true, Some(&format!("MEM recommends {n} strategies")));
    let top = &recs["data"][0];
    assert_eq!(top["strategyId"], MACD_HUNTER, "{recs}");
    assert_eq!(top["strategyName"], "Freqtrade MACD Hunter");
    // The seed's Sharpe 1.45 and 58% are typed in, not measured: the category alone.
    assert!(
        (top["confidenceScore"].as_f64().unwrap() - 0.70).abs() < 1e-9,
        "{top}"
    );
    assert_eq!(top["metricsSource"], "unmeasured", "{top}");
    assert!(
        top["reason"]
            .as_str()
            .unwrap()
            .contains("momentum strategy suits bullish trend"),
        "{top}"
    );
    assert!(top["estimatedSharpe"].is_null(), "{top}");
    assert!(top["estimatedWinRate"].is_null(), "{top}");
    // The React snippet's request, with the guide's full MarketConditions body.
    let (status, recs) = api
        .post(
            "/api/mem/strategies/recommendations",
            Some(r#"{"trend": "bullish", "volatility": "medium", "vix": 18.5, "indicators": {"rsi": 65, "macd": 0.5}}"#),
        )
        .await;
    assert_eq!(status, 200, "{recs}");
    // Troubleshooting: curl -X POST .../recommendations -d '{"trend": "neutral", "volatility": "medium"}'
    let (status, neutral) = api
        .post(
            "/api/mem/strategies/recommendations",
            Some(r#"{"trend": "neutral", "volatility": "medium"}"#),
        )
        .await;
    assert_eq!(status, 200, "{neutral}");
    for r in neutral["data"].as_array().unwrap() {
        assert!(r["confidenceScore"].as_f64().unwrap() > 0.5, "{r}");
    }

    // GET .../recommendations/quick?trend=bullish&volatility=high
    let (status, quick) = api
        .get("/api/mem/strategies/recommendations/quick?trend=bullish&volatility=high")
        .await;
    assert_eq!(status, 200, "{quick}");
    let n = quick["data"].as_array().unwrap().len();
    envelope(
        &quick,
        true,
        Some(&format!(
            "MEM recommends {n} strategies for bullish trend with high volatility"
        )),
    );
    assert_eq!(quick["data"][0]["strategyId"], MACD_HUNTER);
    // Defaults: neutral, medium.
    let (_, quick) = api.get("/api/mem/strategies/recommendations/quick").await;
    assert!(
        quick["message"]
            .as_str()
            .unwrap()
            .ends_with("for neutral trend with medium volatility"),
        "{quick}"
    );
}

#[tokio::test]
async fn errors_have_the_envelope_and_the_right_status() {
    let api = Api::start(None);
    let cases: [(reqwest::Method, String, Option<&str>, u16, &str); 9] = [
        (
            reqwest::Method::GET,
            "/api/mem/strategies/not-a-uuid".into(),
            None,
            400,
            "path parameter `id`",
        ),
        (
            reqwest::Method::GET,
            "/api/mem/strategies/00000000-0000-4000-8000-000000000000".into(),
            None,
            404,
            "Strategy 00000000-0000-4000-8000-000000000000 not found",
        ),
        (
            reqwest::Method::POST,
            "/api/mem/strategies/00000000-0000-4000-8000-000000000000/deploy".into(),
            None,
            404,
            "00000000-0000-4000-8000-000000000000",
        ),
        (
            reqwest::Method::POST,
            format!("/api/mem/strategies/{MACD_HUNTER}/deploy"),
            Some(r#"{"dryRun": "yes"}"#),
            400,
            "body field `dryRun`",
        ),
        (
            reqwest::Method::POST,
            format!("/api/mem/strategies/{MACD_HUNTER}/deploy"),
            Some(r#"{"dryrun": false}"#),
            400,
            "unknown field `dryrun`",
        ),
        (
            reqwest::Method::POST,
            "/api/mem/strategies/recommendations".into(),
            None,
            400,
            "Market conditions are required",
        ),
        (
            reqwest::Method::POST,
            "/api/mem/strategies/recommendations".into(),
            Some(r#"{"trend": "sideways"}"#),
            400,
            "body field `trend`",
        ),
        (
            reqwest::Method::GET,
            "/api/mem/strategies/recommendations/quick?volatility=extreme".into(),
            None,
            400,
            "volatility",
        ),
        (
            reqwest::Method::GET,
            format!("/api/mem/strategies/{MACD_HUNTER}/deploy"),
            None,
            405,
            "does not take that method",
        ),
    ];
    for (method, path, body, want, says) in cases {
        let (status, answer) = api
            .call_as(Some(&api.token), method.clone(), &path, body)
            .await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        envelope(&answer, false, answer["message"].as_str());
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{method} {path}: {answer}"
        );
        assert!(answer.get("error").is_none(), "{answer}");
    }
    // Nothing was deployed by any of them.
    let (_, running) = api.get("/api/mem/strategies/deployed").await;
    assert_eq!(running["data"], json!([]));

    // Freqtrade missing: 503, naming what is missing.
    let missing = Api::start(Some("/nonexistent/freqtrade"));
    let (status, answer) = missing
        .post(
            &format!("/api/mem/strategies/{MACD_HUNTER}/deploy"),
            Some(r#"{"dryRun": true}"#),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    envelope(&answer, false, answer["message"].as_str());
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("[freqtrade] bin = /nonexistent/freqtrade does not exist"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_token_is_required_and_a_view_token_cannot_deploy() {
    let api = Api::start(None);
    assert_eq!(api.token.len(), 64, "{}", api.token);
    // Stored 0600 in a 0700 directory.
    let file = api.daemon.data_dir.join("http/tokens.json");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);

    for path in [
        "/api/mem/strategies",
        "/api/mem/openapi.json",
        "/api/mem/events",
        "/api/mem/strategies/deployed",
    ] {
        for token in [None, Some("0123"), Some(&api.token[..63])] {
            let (status, answer) = api.call_as(token, reqwest::Method::GET, path, None).await;
            assert_eq!(status, 401, "{path} with {token:?}: {answer}");
            envelope(&answer, false, answer["message"].as_str());
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .contains("memctl http token"),
                "{answer}"
            );
        }
    }
    let response = api
        .http
        .get(format!("{}/api/mem/strategies", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"memd\""
    );

    // A view-only token, issued for a dashboard: reads, never deploys or stops.
    let out = api.daemon.memctl(&["http", "token", "--view"]);
    assert!(out.status.success(), "{}", describe(&out));
    let view = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_ne!(view, api.token);
    assert!(String::from_utf8_lossy(&out.stderr).contains("view token for http://127.0.0.1:"));
    let (status, _) = api
        .call_as(
            Some(&view),
            reqwest::Method::GET,
            "/api/mem/strategies",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .call_as(
            Some(&view),
            reqwest::Method::POST,
            "/api/mem/strategies/recommendations",
            Some(r#"{"trend": "ranging"}"#),
        )
        .await;
    assert_eq!(status, 200);
    for action in ["deploy", "stop"] {
        let (status, answer) = api
            .call_as(
                Some(&view),
                reqwest::Method::POST,
                &format!("/api/mem/strategies/{CONSERVATIVE_RSI}/{action}"),
                Some(r#"{"dryRun": true}"#).filter(|_| action == "deploy"),
            )
            .await;
        assert_eq!(status, 403, "{action}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("view-only"),
            "{answer}"
        );
    }
    let (_, running) = api.get("/api/mem/strategies/deployed").await;
    assert_eq!(running["data"], json!([]));

    // The token survives a restart; it is never in memd's log.
    let log = api.daemon.stderr();
    assert!(!log.contains(&api.token), "the control token is in the log");
    assert!(!log.contains(&view), "the view token is in the log");
}

#[tokio::test]
async fn the_event_stream_carries_the_socket_events() {
    let api = Api::start(None);
    let mut stream = api
        .http
        .get(format!("{}/api/mem/events", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // The same change seen by a socket subscriber.
    let client = api.daemon.client().await;
    let (_, mut events) = client.subscribe(vec![]).await.unwrap();
    let out = api
        .daemon
        .memctl(&["strategies", "tag", CONSERVATIVE_RSI, "--add", "over-http"]);
    assert!(out.status.success(), "{}", describe(&out));
    let from_socket = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("a socket event")
        .expect("an event");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an SSE event in time")
            .unwrap()
            .expect("the stream goes on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert_eq!(field("event"), from_socket.event.name(), "{text}");
    assert_eq!(field("id"), from_socket.seq.to_string(), "{text}");
    // `data` is the socket notification's params: seq, at, data.
    let data: Value = serde_json::from_str(&field("data")).unwrap();
    let notification: Value =
        serde_json::from_slice(&from_socket.to_notification().to_line()).unwrap();
    assert_eq!(data, notification["params"], "{text}");
    assert!(
        data["data"].to_string().contains(CONSERVATIVE_RSI),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let api = Api::start(None);
    let (status, doc) = api.get("/api/mem/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for (path, verb) in [
        ("/api/mem/strategies", "get"),
        ("/api/mem/strategies/{id}", "get"),
        ("/api/mem/strategies/{id}/deploy", "post"),
        ("/api/mem/strategies/{id}/stop", "post"),
        ("/api/mem/strategies/deployed", "get"),
        ("/api/mem/strategies/recommendations", "post"),
        ("/api/mem/strategies/recommendations/quick", "get"),
        ("/api/mem/events", "get"),
        ("/api/mem/webhooks/tradingview", "post"),
    ] {
        assert!(
            doc["paths"][path][verb].is_object(),
            "{verb} {path} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn a_listener_beyond_loopback_needs_allow_remote() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("memd.toml");
    std::fs::write(&config, "[http]\nlisten = \"0.0.0.0:5002\"\n").unwrap();
    let out = std::process::Command::new(mem_e2e::bin("memd"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(root.path().join("data"))
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[http] listen") && err.contains("allow_remote"),
        "{err}"
    );

    let port = free_port();
    std::fs::write(
        &config,
        format!("[http]\nlisten = \"0.0.0.0:{port}\"\nallow_remote = true\n"),
    )
    .unwrap();
    let daemon = Daemon::with_config(root, &config);
    assert!(
        daemon.stderr().contains("listens beyond this machine"),
        "{}",
        daemon.stderr()
    );
    // Still token-protected (reached over loopback here).
    let response = reqwest::get(format!("http://127.0.0.1:{port}/api/mem/strategies"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

/// The names of the events an SSE stream delivers within `window` (its `event:` lines).
async fn sse_names(stream: &mut reqwest::Response, window: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + window;
    let mut text = String::new();
    while let Ok(chunk) = tokio::time::timeout_at(deadline, stream.chunk()).await {
        let chunk = chunk.unwrap().expect("the stream goes on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("event:"))
        .map(|name| name.trim().to_string())
        .collect()
}

/// The event stream sees every event published, and is no subscriber itself: through it,
/// the periodic events are seen published only while a socket client is subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_events_are_published_only_while_a_socket_client_is_subscribed() {
    let api = Api::start(None);
    let mut stream = api
        .http
        .get(format!("{}/api/mem/events", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let periodic = |names: &[String]| {
        names
            .iter()
            .filter(|n| ["daemon.pulse", "mem.metrics", "deployments.usage"].contains(&n.as_str()))
            .count()
    };
    // Nobody subscribed: nothing is sampled or published.
    let idle = sse_names(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(periodic(&idle), 0, "{idle:?}");

    // A subscriber, of any topic: every 2 s, a daemon.pulse and a mem.metrics (no bot runs:
    // no deployments.usage). A raw connection, so that dropping it closes it.
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let socket = tokio::net::UnixStream::connect(&api.daemon.socket)
        .await
        .unwrap();
    let (read, mut write) = socket.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    write
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":{\"protocolVersion\":1}}\n\
              {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\",\"params\":{\"topics\":[\"jobs\"]}}\n",
        )
        .await
        .unwrap();
    for id in [1, 2] {
        let line = lines.next_line().await.unwrap().unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["id"], id, "{answer}");
        assert!(answer.get("result").is_some(), "{answer}");
    }
    let busy = sse_names(&mut stream, Duration::from_millis(4600)).await;
    let pulses = busy.iter().filter(|n| *n == "daemon.pulse").count();
    let metrics = busy.iter().filter(|n| *n == "mem.metrics").count();
    assert!((1..=3).contains(&pulses) && pulses == metrics, "{busy:?}");
    assert!(!busy.iter().any(|n| n == "deployments.usage"), "{busy:?}");
    // Not on its topic: the subscriber got none of them.
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await
    {
        assert!(
            !line.contains("\"daemon.pulse\"") && !line.contains("\"mem.metrics\""),
            "{line}"
        );
    }

    // The last subscriber gone (its count drops as its connection ends): they stop.
    drop((lines, write));
    let _ = sse_names(&mut stream, Duration::from_secs(1)).await;
    let after = sse_names(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(periodic(&after), 0, "{after:?}");
}

/// The webhook's secret rotated with a grace period (issue 28): the new secret is taken at
/// once, the old one too until the grace has passed, then refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_webhook_secret_is_taken_for_its_grace_then_refused() {
    let api = Api::start(None);
    let old = mem_e2e::http_token(&api.daemon, &["--webhook"]);
    let new = mem_e2e::http_token(&api.daemon, &["rotate", "webhook", "--grace-secs", "8"]);
    assert_ne!(old, new);
    let alert = r#"{"strategy": "freqtrade_macd_hunter", "ticker": "BINANCE:ETHUSDT", "action": "buy", "price": 3646.17}"#;
    let post = |secret: String| {
        let api = &api;
        async move {
            api.call_as(
                None,
                reqwest::Method::POST,
                &format!("/api/mem/webhooks/tradingview?secret={secret}"),
                Some(alert),
            )
            .await
        }
    };
    let (status, answer) = post(new.clone()).await;
    assert_ne!(status, 401, "the new secret: {answer}");
    let (status, answer) = post(old.clone()).await;
    assert_ne!(status, 401, "the old secret inside its grace: {answer}");
    mem_e2e::wait_for("the grace to pass", Duration::from_secs(30), async || {
        post(old.clone()).await.0 == 401
    })
    .await;
    let (status, answer) = post(old.clone()).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not this webhook's"),
        "{answer}"
    );
    let (status, answer) = post(new).await;
    assert_ne!(status, 401, "the new secret after the grace: {answer}");
}

/// Credentials are rotated and revoked by name (issue 28): a revoked view token and a
/// rotated control token are refused by the API at once, the new ones work, and each
/// change is in the audit of actions; `list` shows names and scopes, never a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_or_rotated_token_is_refused_at_once() {
    let api = Api::start(None);
    let board = mem_e2e::http_token(&api.daemon, &["--view", "--name", "board"]);
    let status = |token: String| {
        let api = &api;
        async move {
            api.call_as(
                Some(&token),
                reqwest::Method::GET,
                "/api/mem/strategies",
                None,
            )
            .await
            .0
        }
    };
    assert_eq!(status(board.clone()).await, 200);

    let out = api.daemon.memctl(&["http", "token", "list"]);
    assert!(out.status.success(), "{}", describe(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("board") && listed.contains("view"),
        "{listed}"
    );
    assert!(
        !listed.contains(&board) && !listed.contains(&api.token),
        "{listed}"
    );

    let out = api.daemon.memctl(&["http", "token", "revoke", "board"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(status(board).await, 401);

    let rotated = mem_e2e::http_token(&api.daemon, &["rotate", "control"]);
    assert_ne!(rotated, api.token);
    assert_eq!(status(api.token.clone()).await, 401);
    assert_eq!(status(rotated.clone()).await, 200);
    assert_eq!(mem_e2e::http_token(&api.daemon, &[]), rotated);
    // A name that is not a token's: refused, naming it.
    let out = api.daemon.memctl(&["http", "token", "revoke", "nobody"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"nobody\""),
        "{}",
        describe(&out)
    );

    let log = api
        .daemon
        .client()
        .await
        .call::<method::AuditActions>(mem_protocol::audit::ActionsParams {
            action: Some("http.tokens.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = log
        .entries
        .iter()
        .map(|e| (e.action.as_str(), e.params["name"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("http.tokens.revoke", "board"),
            ("http.tokens.rotate", "control"),
            ("http.tokens.revoke", "nobody"),
        ]
    );
    let audit_file =
        std::fs::read_to_string(api.daemon.data_dir.join("audit/actions.jsonl")).unwrap();
    assert!(!audit_file.contains(&rotated), "a token value in the audit");
}
