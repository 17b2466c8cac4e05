//! The real memctl binary against the real daemon.

use mem_e2e::seed::{MACD_HUNTER, sid};
use mem_e2e::{Daemon, bin, describe, isolated_command};
use serde_json::Value;
use std::process::Stdio;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn strategies_list_shows_the_eleven_in_an_aligned_table() {
    let daemon = Daemon::start();
    let out = daemon.memctl(&["strategies", "list"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12, "a header and 11 rows:\n{text}");
    assert!(
        lines[0].contains("ID") && lines[0].contains("NAME") && lines[0].contains("SHARPE"),
        "{text}"
    );
    // Columns line up: every row has its STATUS column where the header has it.
    let status_col = lines[0].find("STATUS").unwrap();
    for line in &lines[1..] {
        let cell = &line[status_col..];
        assert!(
            cell.starts_with("active") || cell.starts_with("experimental"),
            "misaligned row {line:?}"
        );
    }
    assert!(
        text.contains("Freqtrade MACD Hunter") && text.contains("1.45") && text.contains("58.0%"),
        "{text}"
    );
}

#[test]
fn list_filters_and_json() {
    let daemon = Daemon::start();
    let out = daemon.memctl(&["strategies", "list", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["total"], 11);
    assert_eq!(json["strategies"].as_array().unwrap().len(), 11);

    let names = |args: &[&str]| {
        let mut full = vec!["strategies", "list", "--json"];
        full.extend_from_slice(args);
        let out = daemon.memctl(&full);
        assert!(out.status.success(), "{}", describe(&out));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["displayName"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&["--category", "momentum", "--status", "active"]),
        ["Freqtrade MACD Hunter"]
    );
    assert_eq!(
        names(&["--tag", "freqtrade", "--min-sharpe", "1.2"]),
        ["Freqtrade Aggressive RSI", "Freqtrade MACD Hunter"]
    );
    assert_eq!(names(&["--query", "carry"]), ["Currency Carry Trade"]);
    assert_eq!(names(&["--status", "deprecated"]), Vec::<String>::new());

    let out = daemon.memctl(&["strategies", "list", "--status", "deprecated"]);
    assert!(
        stdout(&out).contains("No strategy matches"),
        "{}",
        describe(&out)
    );
    let out = daemon.memctl(&["strategies", "list", "--status", "live"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("experimental"),
        "lists the accepted values: {}",
        describe(&out)
    );
}

#[test]
fn show_one_strategy() {
    let daemon = Daemon::start();
    let out = daemon.memctl(&["strategies", "show", MACD_HUNTER]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    for needle in [
        "Freqtrade MACD Hunter",
        MACD_HUNTER,
        "momentum / macd_momentum",
        "Sharpe 1.45",
        "win rate 58.0%",
        "macd_fast",
        "2 .. 50",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    let out = daemon.memctl(&["strategies", "show", MACD_HUNTER, "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["metadata"]["strategy"]["implementation"]["class_name"],
        "MACD_Aggressive"
    );

    let out = daemon.memctl(&["strategies", "show", "00000000-0000-4000-8000-000000000000"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        describe(&out)
    );
    let out = daemon.memctl(&["strategies", "show", "../etc/passwd"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UUID"),
        "{}",
        describe(&out)
    );
}

#[test]
fn status_human_and_json() {
    let daemon = Daemon::start();
    let out = daemon.memctl(&["status"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("pid {}", daemon.pid()))
            && text.contains("11 (3 active, 8 experimental)"),
        "{text}"
    );
    let out = daemon.memctl(&["status", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["counts"]["strategies"], 11);
    assert_eq!(json["socket"], daemon.socket.display().to_string());
    let out = daemon.memctl(&["--read-only", "status", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["access"], "view");
}

#[test]
fn no_daemon_is_one_clear_line_and_a_nonzero_exit() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("nobody-here.sock");
    let out = isolated_command(&bin("memctl"), root.path())
        .env("MEMD_SOCKET", &socket)
        .args(["strategies", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&socket.display().to_string()) && stderr.contains("memctl --spawn"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn spawn_brings_a_user_daemon_up_on_the_default_paths() {
    let root = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        isolated_command(&bin("memctl"), root.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["--spawn", "strategies", "list", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["total"], 11);
    // The daemon uses XDG paths (isolated to the temp root) and is still there afterwards.
    let out = run(&["status", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["dataDir"],
        root.path().join("xdg-data/memd").display().to_string()
    );
    assert_eq!(
        status["socket"],
        root.path()
            .join("xdg-runtime/memd/memd.sock")
            .display()
            .to_string()
    );
    assert_eq!(status["mode"], "user");
    // A second --spawn reuses it.
    let out = run(&["--spawn", "status", "--json"]);
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["pid"], status["pid"]);
    let pid = status["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while root.path().join("xdg-runtime/memd/memd.sock").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the spawned daemon did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn bare_memctl_without_a_terminal_says_what_to_do() {
    let daemon = Daemon::start();
    let out = daemon.memctl(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a terminal"),
        "{}",
        describe(&out)
    );
}

#[test]
fn recommend_gives_the_seed_worked_example_with_its_breakdown() {
    let daemon = Daemon::start();
    let recommend = || {
        let out = daemon.memctl(&[
            "recommend",
            "--trend",
            "bullish",
            "--volatility",
            "medium",
            "--json",
        ]);
        assert!(out.status.success(), "{}", describe(&out));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()
    };
    let points = |best: &Value| -> Vec<(String, f64)> {
        best["breakdown"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["rule"].as_str().unwrap().to_string(),
                    p["points"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    // Out of the box the seed's figures (Sharpe 1.45, 58%) are typed in: unmeasured, they
    // earn nothing; the category alone gives MACD Hunter 0.70.
    let v = recommend();
    assert_eq!(v["candidates"], 3, "the three active MEM-enabled bots");
    let best = &v["recommendations"][0];
    assert_eq!(best["strategyId"], MACD_HUNTER);
    assert_eq!(best["confidenceScore"], 0.70, "{best}");
    assert_eq!(best["metricsSource"], "unmeasured");
    let unmeasured = best["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["rule"] == "measured")
        .unwrap_or_else(|| panic!("no `measured` point: {best}"));
    assert!(
        unmeasured["detail"]
            .as_str()
            .unwrap()
            .contains("(Sharpe 1.45, win rate 58%) were typed in"),
        "{unmeasured}"
    );
    // The two mean-reversion bots score 0.50 on their category: not recommended.
    assert_eq!(v["recommendations"].as_array().unwrap().len(), 1, "{v}");

    // With figures of its own (30 trades, 60% won, a Sharpe ratio above 1) the seed's
    // worked example holds: 0.50 + 0.20 + 0.15 + 0.10 = 0.95.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = daemon.client().await;
        mem_e2e::trades::record_live_figures(&client, sid(MACD_HUNTER), 18, 12).await;
    });
    let v = recommend();
    let best = &v["recommendations"][0];
    assert_eq!(best["strategyId"], MACD_HUNTER);
    assert_eq!(best["confidenceScore"], 0.95, "{best}");
    assert_eq!(best["metricsSource"], "live");
    let points = points(best);
    let sum: f64 = points.iter().map(|(_, p)| p).sum();
    assert!((sum - 0.95).abs() < 1e-9, "{points:?}");

    // A word that is not a trend: exit 2 with the accepted words.
    let out = daemon.memctl(&["recommend", "--trend", "sideways"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bullish, bearish, ranging, neutral"), "{err}");

    // Without conditions: computed from the shipped candles, with the reasons.
    let out = daemon.memctl(&["recommend", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["conditions"]["source"], "computed", "{v}");
    let computed = &v["conditions"]["computed"];
    assert_eq!(
        computed["pair"], "ADA/BTC",
        "the first pair found: {computed}"
    );
    assert_eq!(computed["timeframe"], "1h");
    assert!(
        computed["trendReason"].as_str().unwrap().contains("ADX"),
        "{computed}"
    );
    assert_eq!(v["conditions"]["trend"], computed["trend"]);
    let out = daemon.memctl(&["market"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("ADA/BTC"), "{}", describe(&out));
    // BTC-quoted prices (ADA/BTC is about 0.000005) and tiny indicators keep their
    // digits: each written as the one formatter writes it, never "0.000000" or
    // "-0.000000".
    let json: Value = serde_json::from_slice(&daemon.memctl(&["market", "--json"]).stdout).unwrap();
    let indicators = json["indicators"].as_object().unwrap();
    assert!(indicators["close"].as_f64().unwrap() < 0.001, "{json}");
    for (name, value) in indicators {
        let shown = mem_protocol::numbers::significant(value.as_f64().unwrap());
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [name.as_str(), &shown]),
            "{name} {value} not shown as {shown}:\n{text}"
        );
    }
    assert!(!text.contains("0.000000"), "{text}");
}

#[test]
fn setup_freqtrade_shows_its_steps_and_keeps_pips_output_in_a_log() {
    let daemon = Daemon::start();
    // Python and pip stand-ins: pip prints about 250 lines, as the real one does.
    let fake = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../daemon/tests/fixtures/fake-python3");
    let fake_bin = daemon.root.path().join("fake-bin");
    std::fs::create_dir_all(&fake_bin).unwrap();
    for name in ["python3.13", "python3.12", "python3.11", "python3"] {
        std::os::unix::fs::symlink(&fake, fake_bin.join(name)).unwrap();
    }
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let setup = || {
        isolated_command(&bin("memctl"), daemon.root.path())
            .env("MEMD_SOCKET", &daemon.socket)
            .env("PATH", &path)
            .args(["setup", "freqtrade"])
            .stdin(Stdio::null())
            .output()
            .expect("run memctl")
    };
    let log = daemon.data_dir.join("freqtrade-setup.log");
    let out = setup();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{}\n",
            daemon
                .data_dir
                .join("freqtrade-venv/bin/freqtrade")
                .display()
        )
    );
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    for step in [
        "[1/3] creating the virtualenv",
        "[2/3] installing freqtrade[hyperopt]==",
        "[3/3] checking",
    ] {
        assert!(said.contains(step), "{step} missing:\n{said}");
    }
    assert!(said.contains(&log.display().to_string()), "{said}");
    assert!(
        !said.contains("Collecting"),
        "pip's output is in the log:\n{said}"
    );
    assert!(said.lines().count() < 12, "{said}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.lines().count() > 240, "{logged}");

    // When pip fails: its last lines and where the rest is.
    std::fs::write(daemon.data_dir.join("fail-pip"), "").unwrap();
    let out = setup();
    assert!(!out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        said.contains("No matching distribution found for package120==1.0")
            && said.contains("pip could not install")
            && said.contains(&log.display().to_string()),
        "{said}"
    );
    assert!(said.lines().count() < 60, "{said}");
}
