//! The trend-reversal model through the real daemon and the real memctl: train on the
//! shipped candles, keep the current model when a new one is no better, promote and roll
//! back, survive a corrupt model file, and refuse bad data with clear errors.

use mem_e2e::{Daemon, describe};
use mem_protocol::ErrorCode;
use mem_protocol::methods::{NoParams, method};
use mem_protocol::ml::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const TRAIN: Duration = Duration::from_secs(300);

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", describe(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_keep_promote_rollback_and_survive_a_corrupt_model() {
    let daemon = Daemon::start();
    let client = daemon.client().await;

    // First model: promoted, stored with its files and honest figures.
    let first = json(&daemon.memctl(&["model", "train", "--json"]));
    assert_eq!(first["promoted"], true, "{first}");
    let v1 = first["model"]["version"].as_str().unwrap().to_string();
    let dir = daemon.data_dir.join("models/trend_reversal").join(&v1);
    for file in [
        "model.json",
        "scaler.json",
        "config.json",
        "model_metrics.json",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}",
            dir.display()
        );
    }
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(dir.join("model_metrics.json")).unwrap()).unwrap();
    for field in [
        "accuracy",
        "precision",
        "recall",
        "f1_score",
        "roc_auc",
        "log_loss",
        "base_rate",
        "baseline_accuracy",
        "train_rows",
        "test_rows",
        "data_from",
        "data_to",
        "training_seconds",
    ] {
        assert!(
            !metrics[field].is_null(),
            "model_metrics.json lacks {field}: {metrics}"
        );
    }
    assert_eq!(metrics["status"], "current");
    let auc = metrics["roc_auc"].as_f64().unwrap();
    assert!(
        auc > 0.55,
        "the model should rank better than chance: {auc}"
    );
    assert_eq!(metrics["pairs"].as_array().unwrap().len(), 10);
    assert_eq!(
        std::fs::read_to_string(daemon.data_dir.join("models/trend_reversal/current"))
            .unwrap()
            .trim(),
        v1
    );

    // Same data, same seed: the same model, which is not 2 points better: kept, and why.
    let second = json(&daemon.memctl(&["model", "train", "--json"]));
    assert_eq!(second["promoted"], false, "{second}");
    let v2 = second["model"]["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    let reason = second["model"]["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("{v1} stays current")), "{reason}");
    assert_eq!(second["model"]["status"], "rejected");
    let dir2 = daemon.data_dir.join("models/trend_reversal").join(&v2);
    assert_eq!(
        std::fs::read(dir.join("model.json")).unwrap(),
        std::fs::read(dir2.join("model.json")).unwrap(),
        "determinism: same data and seed give the same model"
    );
    let out = daemon.memctl(&["model", "train"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kept the current model"),
        "{}",
        describe(&out)
    );
    // People's words, not the enums' Rust names.
    let out = daemon.memctl(&["model", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("version {v1} (current)"))
            && text.contains("promotion: accuracy at least ")
            && text.contains(" higher; candles from "),
        "{}",
        describe(&out)
    );
    assert!(
        !text.contains("Accuracy") && !text.contains("Current"),
        "{}",
        describe(&out)
    );
    let out = daemon.memctl(&["model", "history"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("current") && text.contains("rejected") && !text.contains("Rejected"),
        "{}",
        describe(&out)
    );

    let status = client.call::<method::MlStatus>(NoParams {}).await.unwrap();
    assert_eq!(status.current.as_ref().unwrap().version, v1);
    let history = client.call::<method::MlHistory>(NoParams {}).await.unwrap();
    assert_eq!(history.versions.len(), 3);
    assert_eq!(history.versions[2].version, v1, "newest first");

    // A prediction, then the same one from the cache.
    let predict = || {
        client.call::<method::MlPredict>(PredictParams {
            symbol: Some("ETH/BTC".into()),
            ..Default::default()
        })
    };
    let p = predict().await.unwrap();
    assert_eq!(p.model_version, v1);
    assert_eq!(p.features.len(), 12);
    assert!((0.0..=1.0).contains(&p.confidence));
    assert!(!p.cached);
    assert!(predict().await.unwrap().cached);

    // Signal enhancement: the seed's worked example with the inputs given...
    let enhance = |params: serde_json::Value| client.call_value("mem.enhance", params);
    let e = enhance(serde_json::json!({
        "signal": {"strategy": "momentum", "symbol": "BTCUSDT", "action": "BUY", "confidence": 0.65},
        "mlConfidence": 0.78, "mlDirection": "bullish",
        "pattern": {"name": "LearnedMomentumRSICombo", "winRate": 0.80},
        "volatilityPct": 1.0
    }))
    .await
    .unwrap();
    assert_eq!(e["confidence"], 0.73, "{e}");
    assert_eq!(e["stop_loss"], -1.5);
    assert_eq!(e["take_profit"], 2.0);
    // ...and with the model and the candles of a shipped pair looked up by the daemon.
    let e = enhance(serde_json::json!({
        "signal": {"strategy": "rsi", "symbol": "ETH/BTC", "action": "SELL", "confidence": 0.6}
    }))
    .await
    .unwrap();
    assert!(e["ml_confidence"].is_number(), "{e}");
    assert!(
        e["reasoning"].as_str().unwrap().contains("ML reversal"),
        "{e}"
    );
    // The shipped candles are of 2018: the reasoning says the prediction is on stale data.
    assert!(
        e["reasoning"]
            .as_str()
            .unwrap()
            .contains("Stale data: the newest candle of ETH/BTC read closed 2018-"),
        "{e}"
    );
    // The worked example gave every market input: nothing was read, nothing said stale.
    let worked = enhance(serde_json::json!({
        "signal": {"strategy": "momentum", "symbol": "BTCUSDT", "action": "BUY", "confidence": 0.65},
        "mlConfidence": 0.78, "mlDirection": "bullish", "volatilityPct": 1.0, "signature": "BUY|x"
    }))
    .await
    .unwrap();
    assert!(
        !worked["reasoning"].as_str().unwrap().contains("Stale"),
        "{worked}"
    );
    let err = enhance(serde_json::json!({
        "signal": {"strategy": "x", "symbol": "ETH/BTC", "action": "JUMP", "confidence": 0.6}
    }))
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidParams), "{err}");
    assert!(err.to_string().contains("signal.action"), "{err}");

    // Promote the candidate by hand, then roll back to the first.
    let promoted = client
        .call::<method::MlPromote>(PromoteParams {
            version: v2.clone(),
            reason: "operator check".into(),
        })
        .await
        .unwrap();
    assert_eq!(promoted.status, ModelStatus::Current);
    assert_eq!(predict().await.unwrap().model_version, v2);
    let back = client
        .call::<method::MlRollback>(RollbackParams::default())
        .await
        .unwrap();
    assert_eq!(back.version, v1);
    let old = client.call::<method::MlHistory>(NoParams {}).await.unwrap();
    let status_of = |v: &str| old.versions.iter().find(|x| x.version == v).unwrap().status;
    assert_eq!(status_of(&v1), ModelStatus::Current);
    assert_eq!(status_of(&v2), ModelStatus::Retired);

    // A corrupt model file: promoting it fails with a clear error, v1 keeps serving.
    std::fs::write(dir2.join("model.json"), b"{\"trees\": [truncated").unwrap();
    let err = client
        .call::<method::MlPromote>(PromoteParams {
            version: v2.clone(),
            reason: "try the broken one".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unavailable), "{err}");
    assert!(err.to_string().contains("model.json"), "{err}");
    assert!(err.to_string().contains("the current model stays"), "{err}");
    assert_eq!(predict().await.unwrap().model_version, v1);

    // Unknown and malformed versions.
    let err = client
        .call::<method::MlRollback>(RollbackParams {
            version: Some("20990101_000000".into()),
            reason: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    let err = client
        .call::<method::MlRollback>(RollbackParams {
            version: Some("../../etc".into()),
            reason: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidParams), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_current_model_at_start_is_reported_and_the_daemon_serves_on() {
    let root = tempfile::tempdir().unwrap();
    let (socket, data) = (root.path().join("run/memd.sock"), root.path().join("data"));
    {
        let daemon = Daemon::start_in(
            tempfile::tempdir_in(root.path()).unwrap(),
            socket.clone(),
            data.clone(),
            |_| {},
        );
        json(&daemon.memctl(&["model", "train", "--json"]));
    }
    let current = std::fs::read_to_string(data.join("models/trend_reversal/current")).unwrap();
    let model = data
        .join("models/trend_reversal")
        .join(current.trim())
        .join("model.json");
    std::fs::write(&model, b"\x00\x01garbage").unwrap();
    let daemon = Daemon::start_in(
        tempfile::tempdir_in(root.path()).unwrap(),
        socket,
        data,
        |_| {},
    );
    let client = daemon.client().await;
    let status = client.call::<method::MlStatus>(NoParams {}).await.unwrap();
    let error = status.load_error.expect("a load error is reported");
    assert!(error.contains("model.json"), "{error}");
    let err = client
        .call::<method::MlPredict>(PredictParams {
            symbol: Some("ETH/BTC".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no current model"), "{err}");
    // The rest of the daemon is fine.
    assert!(
        client
            .call::<method::DaemonStatus>(NoParams {})
            .await
            .is_ok()
    );
}

/// Writes `n` 5-minute candles of a zigzagging price as a CSV in Freqtrade's naming.
fn write_csv(dir: &Path, pair_file: &str, n: usize, edit: impl Fn(usize, &mut [f64; 5])) {
    let mut text = String::from("date,open,high,low,close,volume\n");
    for i in 0..n {
        let x = i as f64;
        let close = 100.0 * (1.0 + 0.04 * (x * 0.15).sin() + 0.01 * (x * 0.9).sin());
        let mut v = [
            close * 0.999,
            close * 1.003,
            close * 0.996,
            close,
            10.0 + (i % 7) as f64,
        ];
        edit(i, &mut v);
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            1_600_000_000_000i64 + i as i64 * 300_000,
            v[0],
            v[1],
            v[2],
            v[3],
            v[4]
        ));
    }
    std::fs::write(dir.join(pair_file), text).unwrap();
}

fn daemon_on_market(market: &Path) -> Daemon {
    let config = market.parent().unwrap().join("memd.toml");
    std::fs::write(
        &config,
        format!("[market]\ndata_dir = {:?}\n", market.display().to_string()),
    )
    .unwrap();
    Daemon::start_with(|cmd| {
        cmd.arg("--config").arg(&config);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_is_refused_or_reported_by_name() {
    let root = tempfile::tempdir().unwrap();
    let market = root.path().join("market");
    std::fs::create_dir(&market).unwrap();
    // Too short: 40 candles do not even warm the indicators.
    write_csv(&market, "SHORT_BTC-5m.csv", 40, |_, _| {});
    let daemon = daemon_on_market(&market);
    let client = daemon.client().await;
    let train = |pairs: &[&str]| {
        client.call_with_timeout::<method::MlTrain>(
            TrainParams {
                pairs: pairs.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            },
            TRAIN,
        )
    };
    let err = train(&["SHORT/BTC"]).await.unwrap_err();
    assert!(err.to_string().contains("too little data"), "{err}");

    // An empty file is named.
    std::fs::write(market.join("EMPTY_BTC-5m.csv"), "").unwrap();
    let err = train(&["EMPTY/BTC"]).await.unwrap_err();
    assert!(err.to_string().contains("EMPTY_BTC-5m.csv"), "{err}");

    // A pair with no file: every path tried is named.
    let err = train(&["NOPE/BTC"]).await.unwrap_err();
    assert!(err.to_string().contains("NOPE_BTC-5m.feather"), "{err}");

    // NaN prices and zero volume: the bad rows are dropped and reported, the rest trains.
    write_csv(&market, "NANS_BTC-5m.csv", 3000, |i, v| {
        if i % 500 == 7 {
            v[3] = f64::NAN;
        }
        if i % 50 == 0 {
            v[4] = 0.0;
        }
    });
    let report = train(&["NANS/BTC"]).await.unwrap();
    let notes = report.data_notes.join("\n");
    assert!(notes.contains("6 invalid candles"), "{notes}");
    assert!(report.model.metrics.roc_auc.is_finite());

    // No 15m file: the 5m candles are resampled, and the notes say so.
    // Calm stretches (no 2% move) between the swings, so both labels occur.
    write_csv(&market, "LONG_BTC-5m.csv", 9000, |i, v| {
        if i % 900 < 450 {
            *v = [100.0, 100.1, 99.9, 100.0, v[4]];
        }
    });
    let report = client
        .call_with_timeout::<method::MlTrain>(
            TrainParams {
                pairs: vec!["LONG/BTC".into()],
                timeframe: Some("15m".into()),
                ..Default::default()
            },
            TRAIN,
        )
        .await
        .unwrap();
    let notes = report.data_notes.join("\n");
    // 3001: the first candle (1,600,000,000,000 ms) is not on a 15-minute boundary, so
    // the first and last buckets are partial.
    assert!(
        notes.contains("9000 5m candles resampled to 3001 15m candles"),
        "{notes}"
    );
    assert_eq!(report.model.timeframe, "15m");

    // A bad timeframe word.
    let err = client
        .call::<method::MlTrain>(TrainParams {
            timeframe: Some("7m".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidParams), "{err}");
    assert!(err.to_string().contains("1m, 3m, 5m"), "{err}");

    // Predictions from given candles: too few, a NaN, out of order.
    let candles: Vec<CandleRow> = (0..60)
        .map(|i| {
            let c = 1.0 + 0.01 * (i as f64 * 0.3).sin();
            [i as f64 * 300_000.0, c, c * 1.01, c * 0.99, c, 5.0]
        })
        .collect();
    let predict = |candles: Vec<CandleRow>| {
        client.call::<method::MlPredict>(PredictParams {
            candles,
            ..Default::default()
        })
    };
    let ok = predict(candles.clone()).await.unwrap();
    assert_eq!(ok.features.len(), 12);
    let err = predict(candles[..30].to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("at least 50"), "{err}");
    let mut nan = candles.clone();
    nan[10][4] = f64::NAN;
    // JSON has no NaN: the client sends null, which the daemon refuses as a bad field.
    assert!(predict(nan).await.is_err());
    let mut unordered = candles.clone();
    unordered.swap(3, 4);
    let err = predict(unordered).await.unwrap_err();
    assert!(err.to_string().contains("ascending"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_logged_in_both_files_and_their_outcomes_become_memory() {
    use std::os::unix::fs::PermissionsExt;
    let mut daemon = Daemon::start();
    let client = daemon.client().await;
    let decide = |confidence: f64| {
        client.call_value(
            "mem.decide",
            serde_json::json!({
                "signal": {"strategy": "momentum", "symbol": "BTCUSDT", "action": "BUY", "confidence": confidence},
                "volatilityPct": 1.0,
                "price": 65000.0
            }),
        )
    };
    // Four closed decisions (3 won): too little history to count as memory.
    let mut ids = Vec::new();
    for i in 0..5 {
        let d = decide(0.65).await.unwrap();
        if i == 0 {
            assert!(
                d["reasoning"]
                    .as_str()
                    .unwrap()
                    .contains("too little history"),
                "{d}"
            );
            assert_eq!(d["ml_confidence"], Value::Null, "no model trained: {d}");
        }
        ids.push(d["id"].as_str().unwrap().to_string());
    }
    for (i, id) in ids.iter().enumerate() {
        let won = i != 2;
        client
            .call_value(
                "mem.outcome",
                serde_json::json!({
                    "decisionId": id, "exitPrice": if won { 66200.0 } else { 64500.0 },
                    "pnl": if won { 500.0 } else { -200.0 }, "pnlPct": if won { 0.0077 } else { -0.003 }
                }),
            )
            .await
            .unwrap();
    }
    // Five closed, four won: memory now counts (0.4 x 0.65 + 0.6 x ... renormalised).
    let d = decide(0.65).await.unwrap();
    assert_eq!(d["memory_confidence"], 0.8, "{d}");
    assert!(
        d["reasoning"]
            .as_str()
            .unwrap()
            .contains("4 of the last 5 closed decisions won"),
        "{d}"
    );

    // The same outcome twice, and an unknown decision.
    let again = client
        .call_value(
            "mem.outcome",
            serde_json::json!({"decisionId": ids[0], "exitPrice": 1.0, "pnl": 1.0, "pnlPct": 0.1}),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::Conflict), "{again}");
    let unknown = client
        .call_value(
            "mem.outcome",
            serde_json::json!({"decisionId": "nope", "exitPrice": 1.0, "pnl": 1.0, "pnlPct": 0.1}),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some(ErrorCode::NotFound), "{unknown}");

    // Newest first, with outcomes; both files 0600, the text log in the seed's format.
    let list = client
        .call_value("mem.decisions", serde_json::json!({"limit": 3}))
        .await
        .unwrap();
    let decisions = list["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 3);
    assert!(
        decisions[0]["outcome"].is_null(),
        "the newest is still open"
    );
    assert_eq!(decisions[1]["id"], ids[4].as_str());
    assert_eq!(decisions[1]["outcome"]["win"], true);
    let dir = daemon.data_dir.join("mem_knowledge");
    for file in ["core_memory_updates.txt", "decisions.jsonl"] {
        let mode = std::fs::metadata(dir.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let log = std::fs::read_to_string(dir.join("core_memory_updates.txt")).unwrap();
    let first = log.lines().next().unwrap();
    assert!(
        first.starts_with('[')
            && first.contains(
                "] Strategy: momentum - Decision: BUY BTCUSDT @ 65000 - Confidence: 0.65"
            ),
        "{first}"
    );
    assert!(
        log.contains("CLOSED - Exit: 66200 - P&L: +500 (+0.77%)"),
        "{log}"
    );

    // A torn last line (a crash mid-write) is never read, not fatal, and cut before the
    // next append (the line log's one policy, as for the registry's logs).
    let torn = b"{\"kind\":\"decision\",\"id\":\"tor";
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("decisions.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut f, torn).unwrap();
    drop(client);
    daemon.crash_and_restart();
    let client = daemon.client().await;
    let decide = |confidence: f64| {
        client.call_value(
            "mem.decide",
            serde_json::json!({
                "signal": {"strategy": "momentum", "symbol": "BTCUSDT", "action": "BUY", "confidence": confidence},
                "volatilityPct": 1.0,
                "price": 65000.0
            }),
        )
    };
    let list = client
        .call_value("mem.decisions", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(list["unreadableLines"], 0, "a torn tail is not a bad line");
    assert_eq!(list["decisions"].as_array().unwrap().len(), 6);
    // The next decision is whole, and the torn bytes are gone.
    decide(0.7).await.unwrap();
    let list = client
        .call_value("mem.decisions", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(list["unreadableLines"], 0);
    assert_eq!(list["decisions"].as_array().unwrap().len(), 7);
    let bytes = std::fs::read(dir.join("decisions.jsonl")).unwrap();
    assert!(
        !bytes.windows(torn.len()).any(|w| w == torn),
        "the torn line was cut"
    );
    assert!(bytes.ends_with(b"\n"));
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<Value>(line).expect("every line whole");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_performance_monitor_cuts_risk_after_a_losing_window() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let signal = serde_json::json!({"strategy": "rsi", "symbol": "ETH/BTC", "action": "BUY", "confidence": 0.65});
    let mut last = Value::Null;
    // 20 closed decisions, 6 won: 30% < 45%.
    for i in 0..20 {
        let d = client
            .call_value(
                "mem.decide",
                serde_json::json!({"signal": signal, "volatilityPct": 1.0, "price": 0.09}),
            )
            .await
            .unwrap();
        let won = i % 10 < 3;
        last = client
            .call_value(
                "mem.outcome",
                serde_json::json!({"decisionId": d["id"], "exitPrice": 0.091,
                    "pnl": if won { 1.0 } else { -1.0 }, "pnlPct": if won { 0.01 } else { -0.01 }}),
            )
            .await
            .unwrap();
        if i < 19 {
            assert_eq!(
                last["adjustments"].as_array().unwrap().len(),
                0,
                "trade {i}: {last}"
            );
        }
    }
    let adjustments = last["adjustments"].as_array().unwrap();
    assert_eq!(adjustments.len(), 2, "{last}");
    assert_eq!(adjustments[0]["parameter"], "position_size_multiplier");
    assert_eq!(adjustments[0]["to"], 0.7);
    assert_eq!(adjustments[1]["parameter"], "confidence_threshold");
    assert!(
        adjustments[0]["reason"].as_str().unwrap().contains("30%"),
        "{last}"
    );

    let file = daemon.data_dir.join("mem_knowledge/parameter_updates.json");
    let updates: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let (_, today) = updates.as_object().unwrap().iter().next_back().unwrap();
    assert_eq!(today["parameters"]["rsi"]["position_size_multiplier"], 0.7);
    assert_eq!(
        today["adjustments"][0]["triggered_by"],
        "performance_monitor"
    );

    // The next signal of this strategy is smaller and, at 0.65 < 0.70, not to be acted on.
    let e = client
        .call_value(
            "mem.enhance",
            serde_json::json!({"signal": signal, "volatilityPct": 1.0, "mlConfidence": 0.5, "mlDirection": "bullish"}),
        )
        .await
        .unwrap();
    assert_eq!(e["actionable"], false, "{e}");
    assert!(
        e["reasoning"].as_str().unwrap().contains("Size x0.70"),
        "{e}"
    );

    // The same through memctl.
    let params = json(&daemon.memctl(&["memory", "parameters", "--json"]));
    assert_eq!(
        params["current"]["rsi"]["position_size_multiplier"], 0.7,
        "{params}"
    );
    let out = daemon.memctl(&["memory", "decisions", "--strategy", "rsi", "--limit", "3"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 4, "a header and 3 rows:\n{text}");
    assert!(text.contains("ETH/BTC") && text.contains("BUY"), "{text}");

    // A broken hand edit: the outcome is still recorded, the monitor says why it skipped,
    // and enhancement goes on with the defaults.
    let (_, mut events) = client
        .subscribe(vec![mem_protocol::Topic::Memory])
        .await
        .unwrap();
    std::fs::write(&file, b"{\"2026-11-22\": [oops").unwrap();
    // The watcher reads the edit after its debounce and says it is ignored.
    let changed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.next().await.expect("events").event {
                mem_protocol::Event::MemoryChanged(c) if c.file == "parameter_updates.json" => {
                    return c;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a memory.changed event for the broken edit");
    assert!(!changed.applied, "{changed:?}");
    assert!(
        changed
            .error
            .as_deref()
            .unwrap()
            .contains("parameter_updates.json"),
        "{changed:?}"
    );
    let out = daemon.memctl(&["memory", "parameters"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("parameter_updates.json"),
        "{}",
        describe(&out)
    );
    let d = client
        .call_value(
            "mem.decide",
            serde_json::json!({"signal": signal, "volatilityPct": 1.0, "price": 0.09}),
        )
        .await
        .unwrap();
    let report = client
        .call_value(
            "mem.outcome",
            serde_json::json!({"decisionId": d["id"], "exitPrice": 0.091, "pnl": 1.0, "pnlPct": 0.01}),
        )
        .await
        .unwrap();
    assert_eq!(report["outcome"]["win"], true);
    assert!(
        report["monitorError"]
            .as_str()
            .unwrap_or_else(|| panic!("{report}"))
            .contains("parameter_updates.json"),
        "{report}"
    );
}
