//! The real Freqtrade, in dry-run, against the mock Binance exchange of
//! `mem_e2e::mock_exchange`, with the seed bots' strategies and base configs of
//! `data/freqtrade/`.
//!
//! Needs a Freqtrade binary: set `MEMD_TEST_FREQTRADE` to its path (`.ci/install-freqtrade`
//! prints one). Without it every test here prints why it skips and passes.

use mem_e2e::free_port;
use mem_e2e::freqtrade;
use mem_e2e::mock_exchange::{self, MockExchange};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn strategy_path() -> PathBuf {
    repo_root().join("data/freqtrade/strategies")
}

fn base_config(name: &str) -> Value {
    let path = repo_root().join(format!("data/freqtrade/configs/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A random-enough token: no example passwords, even in tests.
fn token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    let mut file = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    std::io::Read::read_exact(&mut file, &mut bytes).expect("random bytes");
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// What a deployment renders from a base config, the way memd is meant to.
pub(crate) struct Rendered {
    path: PathBuf,
    pub(crate) api_port: u16,
    pub(crate) username: String,
    pub(crate) password: String,
}

fn render_config(
    base: &str,
    mock: &MockExchange,
    dir: &Path,
    bot_name: &str,
    force_entry: bool,
) -> Rendered {
    let mut config = base_config(base);
    // The exchange: the mock's fragment, trading the base config's pairs.
    let mut exchange = mock.ccxt_config();
    exchange["pair_whitelist"] = config["exchange"]["pair_whitelist"].clone();
    config["exchange"] = exchange;
    let api_port = free_port();
    let username = format!("memd-{}", token(8));
    let password = token(32);
    config["api_server"] = json!({
        "enabled": true,
        "listen_ip_address": "127.0.0.1",
        "listen_port": api_port,
        "verbosity": "error",
        "enable_openapi": false,
        "jwt_secret_key": token(48),
        "ws_token": token(32),
        "CORS_origins": [],
        "username": username,
        "password": password,
    });
    config["bot_name"] = json!(bot_name);
    config["db_url"] = json!(format!(
        "sqlite:///{}",
        dir.join("tradesv3.dryrun.sqlite").display()
    ));
    config["dry_run"] = json!(true);
    config["initial_state"] = json!("running");
    config["force_entry_enable"] = json!(force_entry);

    let path = dir.join("config.json");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("create config.json");
    file.write_all(serde_json::to_string_pretty(&config).unwrap().as_bytes())
        .expect("write config.json");
    drop(file);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    Rendered {
        path,
        api_port,
        username,
        password,
    }
}

/// A `freqtrade trade` process in its own process group; killed (group-wide) when dropped.
/// (The `attach` tests start theirs with it: a bot memd did not start.)
pub(crate) struct Bot {
    pub(crate) child: Child,
    dir: TempDir,
    log: PathBuf,
    pub(crate) config: Rendered,
    http: reqwest::Client,
    spawned: Instant,
}

impl Bot {
    pub(crate) fn spawn(
        freqtrade: &Path,
        base: &str,
        strategy: &str,
        mock: &MockExchange,
        force_entry: bool,
    ) -> Bot {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = render_config(base, mock, dir.path(), &format!("e2e-{base}"), force_entry);
        let user_data = dir.path().join("user_data");
        // Freqtrade creates the subdirectories itself, but only inside an existing userdir.
        std::fs::create_dir(&user_data).expect("user_data");
        let log = dir.path().join("freqtrade.log");
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(freqtrade);
        cmd.arg("trade")
            .arg("--config")
            .arg(&config.path)
            .arg("--strategy")
            .arg(strategy)
            .arg("--strategy-path")
            .arg(strategy_path())
            .arg("--userdir")
            .arg(&user_data)
            .arg("--dry-run")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        // The strategies are loaded from the checkout: no __pycache__ in it.
        cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        // ccxt (aiohttp) would honour these; the mock is on loopback.
        for var in [
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            cmd.env_remove(var);
        }
        let spawned = Instant::now();
        let child = cmd.spawn().expect("spawn freqtrade");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        Bot {
            child,
            dir,
            log,
            config,
            http,
            spawned,
        }
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/api/v1/{path}", self.config.api_port)
    }

    pub(crate) fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // The last 200 lines are enough to see why.
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(200)..].join("\n")
    }

    /// Panics with the log if the process is gone.
    pub(crate) fn assert_alive(&mut self, while_doing: &str) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "freqtrade exited ({status}) while {while_doing}:\n{}",
                self.output()
            );
        }
    }

    /// Waits for `GET /api/v1/ping`; returns the time since spawn.
    pub(crate) async fn wait_ping(&mut self, deadline: Duration) -> Duration {
        let until = self.spawned + deadline;
        loop {
            self.assert_alive("starting");
            if let Ok(resp) = self.http.get(self.url("ping")).send().await {
                if resp.status().is_success() {
                    let body: Value = resp.json().await.expect("ping JSON");
                    assert_eq!(body, json!({"status": "pong"}));
                    return self.spawned.elapsed();
                }
            }
            assert!(
                Instant::now() < until,
                "no /api/v1/ping within {deadline:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(self.url(path))
            .basic_auth(&self.config.username, Some(&self.config.password))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.output()));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(self.url(path))
            .basic_auth(&self.config.username, Some(&self.config.password))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.output()));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "POST {path} {body}: {status} {text}\n{}",
            self.output()
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }

    /// A POST whose failure is an answer too: (HTTP status, JSON body).
    pub(crate) async fn post_raw(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .basic_auth(&self.config.username, Some(&self.config.password))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.output()));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"));
        (status, value)
    }

    /// Polls `check` on `GET path` until it returns Some, at most `deadline`.
    async fn poll<T>(
        &mut self,
        path: &str,
        deadline: Duration,
        what: &str,
        mut check: impl FnMut(&Value) -> Option<T>,
    ) -> T {
        let until = Instant::now() + deadline;
        loop {
            self.assert_alive(what);
            let value = self.get(path).await;
            if let Some(found) = check(&value) {
                return found;
            }
            assert!(
                Instant::now() < until,
                "{what}: not within {deadline:?}; last GET {path}: {value}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The indicator columns of the newest analysed candle of `pair`.
    async fn last_candle(&mut self, pair: &str, timeframe: &str) -> serde_json::Map<String, Value> {
        let path = format!("pair_candles?pair={pair}&timeframe={timeframe}&limit=50");
        self.poll(
            &path,
            Duration::from_secs(30),
            "waiting for analysed candles",
            |v| {
                let columns = v["columns"].as_array()?;
                let row = v["data"].as_array()?.last()?.as_array()?;
                let map: serde_json::Map<String, Value> = columns
                    .iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .zip(row.iter().cloned())
                    .collect();
                Some(map)
            },
        )
        .await
    }

    /// SIGTERM to the group; waits (10 s at most) and returns the exit status.
    async fn terminate(&mut self) -> (ExitStatus, Duration) {
        let start = Instant::now();
        killpg(self.pgid(), Signal::SIGTERM).expect("SIGTERM the bot's group");
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "freqtrade did not exit within 10 s of SIGTERM:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Nothing of the group is left and the API port is closed.
    fn assert_gone(&self) {
        match killpg(self.pgid(), None) {
            Err(nix::errno::Errno::ESRCH) => {}
            other => panic!("the bot's process group is still there ({other:?})"),
        }
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.config.api_port)).is_err(),
            "the API port {} is still open",
            self.config.api_port
        );
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = killpg(self.pgid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("freqtrade's files are in {}", self.dir.path().display());
            // Keep them for a look.
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
        }
    }
}

fn health_ts(v: &Value) -> Option<i64> {
    v["last_process_ts"].as_i64()
}

/// MACD_Aggressive on ETH/USDT + BTC/USDT: starts, answers, loops, trades (forced, dry-run,
/// filled from the mock's book), and stops on SIGTERM with exit code 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macd_bot_runs_trades_and_stops_against_the_mock() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let mock = mock_exchange::start_filling_at_once().await;

    let mut bot = Bot::spawn(&freqtrade, "macd_hunter", "MACD_Aggressive", &mock, true);
    let to_ping = bot.wait_ping(Duration::from_secs(60)).await;
    eprintln!("freqtrade: spawn -> ping {:.2} s", to_ping.as_secs_f64());

    // Unauthenticated requests are refused.
    let resp = bot.http.get(bot.url("show_config")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let config = bot.get("show_config").await;
    assert_eq!(config["dry_run"], json!(true), "{config}");
    assert_eq!(config["strategy"], json!("MACD_Aggressive"), "{config}");
    assert_eq!(config["bot_name"], json!("e2e-macd_hunter"), "{config}");
    assert_eq!(config["exchange"], json!("binance"), "{config}");
    assert_eq!(config["timeframe"], json!("5m"), "{config}");
    assert_eq!(config["stake_amount"], json!("100"), "{config}");
    assert_eq!(config["max_open_trades"].as_f64(), Some(3.0), "{config}");
    assert_eq!(config["stoploss"].as_f64(), Some(-0.08), "{config}");
    assert_eq!(
        config["minimal_roi"],
        json!({"0": 0.15, "20": 0.08, "40": 0.03}),
        "{config}"
    );
    assert_eq!(config["force_entry_enable"], json!(true), "{config}");
    bot.poll(
        "show_config",
        Duration::from_secs(30),
        "waiting for state running",
        |v| (v["state"] == "running").then_some(()),
    )
    .await;
    let whitelist = bot.get("whitelist").await;
    assert_eq!(
        whitelist["whitelist"],
        json!(["ETH/USDT", "BTC/USDT"]),
        "{whitelist}"
    );

    // The trading loop runs: last_process advances (process_throttle_secs is 5).
    let first = bot
        .poll(
            "health",
            Duration::from_secs(30),
            "waiting for the first loop",
            health_ts,
        )
        .await;
    let started = Instant::now();
    let later = bot
        .poll(
            "health",
            Duration::from_secs(20),
            "waiting for last_process to advance",
            |v| health_ts(v).filter(|&ts| ts > first),
        )
        .await;
    eprintln!(
        "freqtrade: health.last_process_ts {first} -> {later} after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The strategy analysed the mock's candles.
    let candle = bot.last_candle("ETH/USDT", "5m").await;
    for column in ["macd", "macdsignal", "macdhist"] {
        assert!(
            candle.get(column).and_then(Value::as_f64).is_some(),
            "no {column} in the analysed candle: {candle:?}"
        );
    }

    // A forced trade: entry and exit are limit orders at the book's top, filled by the mock's
    // crossed book (instant_fills). The strategy trades by itself too (the mock's candles do
    // cross): when it already holds ETH/USDT, Freqtrade refuses a second position and that
    // trade, filled the same way, is the one to close.
    let (status, trade) = bot
        .post_raw("forceenter", json!({"pair": "ETH/USDT"}))
        .await;
    let trade_id = if status == 200 {
        assert_eq!(trade["pair"], json!("ETH/USDT"), "{trade}");
        assert_eq!(trade["enter_tag"], json!("force_entry"), "{trade}");
        trade["trade_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{trade}"))
    } else {
        let error = trade["error"].as_str().unwrap_or_default();
        let (_, id) = error
            .split_once("position for ETH/USDT already open - id: ")
            .unwrap_or_else(|| panic!("forceenter: {status} {trade}\n{}", bot.output()));
        eprintln!("freqtrade: the strategy holds ETH/USDT already: {error}");
        id.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|_| panic!("forceenter: {trade}"))
    };
    let amount = bot
        .poll(
            "status",
            Duration::from_secs(30),
            "waiting for the entry to fill",
            |v| {
                let t = v.as_array()?.iter().find(|t| t["trade_id"] == trade_id)?;
                let amount = t["amount"].as_f64()?;
                (amount > 0.0 && t["has_open_orders"] == false).then_some(amount)
            },
        )
        .await;
    eprintln!("freqtrade: trade {trade_id} entry filled, amount {amount}");
    let exit = bot
        .post("forceexit", json!({"tradeid": trade_id.to_string()}))
        .await;
    assert_eq!(
        exit["result"],
        json!(format!("Created exit order for trade {trade_id}.")),
        "{exit}"
    );
    let closed = bot
        .poll(
            "trades",
            Duration::from_secs(30),
            "waiting for the trade to close",
            |v| {
                let t = v["trades"]
                    .as_array()?
                    .iter()
                    .find(|t| t["trade_id"] == trade_id)?;
                (t["is_open"] == false).then(|| t.clone())
            },
        )
        .await;
    assert_eq!(closed["exit_reason"], json!("force_exit"), "{closed}");
    assert_eq!(closed["exit_order_status"], json!("closed"), "{closed}");
    assert!(closed["close_rate"].as_f64().is_some(), "{closed}");
    let open = bot.get("status").await;
    assert!(
        !open
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["trade_id"] == trade_id),
        "trade {trade_id} is still open: {open}"
    );
    eprintln!(
        "freqtrade: trade {trade_id} closed: open {} close {} profit {}",
        closed["open_rate"], closed["close_rate"], closed["profit_abs"]
    );

    // Every request Freqtrade made was one the mock serves.
    let counts = mock.request_counts();
    eprintln!("mock exchange requests: {counts:?}");
    assert!(
        mock.unknown_requests().is_empty(),
        "Freqtrade called endpoints the mock does not serve: {:?}",
        mock.unknown_requests()
    );
    for endpoint in [
        "GET /api/v3/exchangeInfo",
        "GET /api/v3/klines",
        "GET /api/v3/depth",
    ] {
        assert!(
            counts.contains_key(endpoint),
            "{endpoint} never called: {counts:?}"
        );
    }

    // SIGTERM: clean exit with 130, nothing left behind.
    let (status, took) = bot.terminate().await;
    eprintln!(
        "freqtrade: SIGTERM -> exit {status} in {:.2} s",
        took.as_secs_f64()
    );
    assert_eq!(
        status.code(),
        Some(130),
        "exit status {status}:\n{}",
        bot.output()
    );
    bot.assert_gone();
    assert!(
        bot.dir.path().join("tradesv3.dryrun.sqlite").is_file(),
        "no database at db_url"
    );
    mock.shutdown().await;
}

/// The two RSI bots start on their base configs and compute their RSI on the mock's candles;
/// `list-strategies` loads all three strategy files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_seed_strategies_load_and_analyse() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };

    // list-strategies: every file loads, none twice.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("user_data")).unwrap();
    let out = Command::new(&freqtrade)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("list-strategies")
        .arg("--strategy-path")
        .arg(strategy_path())
        .arg("--userdir")
        .arg(dir.path().join("user_data"))
        .arg("--config")
        .arg(repo_root().join("data/freqtrade/configs/conservative_rsi.json"))
        .output()
        .expect("run freqtrade list-strategies");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "list-strategies: {}\n{stdout}\n{stderr}",
        out.status
    );
    for name in ["RSI_Conservative", "MACD_Aggressive", "RSI_Aggressive"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{stdout}\n{stderr}"));
        assert!(line.contains("OK"), "{name}: {line}\n{stdout}");
    }

    let mock = mock_exchange::start(mock_exchange::DEFAULT_PAIRS).await;
    for (base, strategy, timeframe, pair, roi, stoploss) in [
        (
            "conservative_rsi",
            "RSI_Conservative",
            "5m",
            "BTC/USDT",
            json!({"0": 0.1, "30": 0.05, "60": 0.02}),
            -0.05,
        ),
        (
            "aggressive_rsi",
            "RSI_Aggressive",
            "1m",
            "BNB/USDT",
            json!({"0": 0.08, "15": 0.04, "30": 0.01}),
            -0.06,
        ),
    ] {
        let mut bot = Bot::spawn(&freqtrade, base, strategy, &mock, false);
        let to_ping = bot.wait_ping(Duration::from_secs(60)).await;
        eprintln!(
            "freqtrade {strategy}: spawn -> ping {:.2} s",
            to_ping.as_secs_f64()
        );
        let config = bot.get("show_config").await;
        assert_eq!(config["strategy"], json!(strategy), "{config}");
        assert_eq!(config["timeframe"], json!(timeframe), "{config}");
        assert_eq!(config["minimal_roi"], roi, "{config}");
        assert_eq!(config["stoploss"].as_f64(), Some(stoploss), "{config}");
        assert_eq!(config["dry_run"], json!(true), "{config}");
        let candle = bot.last_candle(pair, timeframe).await;
        let rsi = candle
            .get("rsi")
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{strategy}: no rsi in {candle:?}"));
        assert!((0.0..=100.0).contains(&rsi), "{strategy}: rsi {rsi}");
        eprintln!(
            "freqtrade {strategy}: {pair} {timeframe} candle {} close {} rsi {rsi:.2}",
            candle["date"], candle["close"]
        );
        let (status, _) = bot.terminate().await;
        assert_eq!(
            status.code(),
            Some(130),
            "{strategy}: {status}\n{}",
            bot.output()
        );
        bot.assert_gone();
    }
    assert!(
        mock.unknown_requests().is_empty(),
        "unknown endpoints: {:?}",
        mock.unknown_requests()
    );
    mock.shutdown().await;
}
