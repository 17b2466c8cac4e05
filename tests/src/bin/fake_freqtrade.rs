//! `fake_freqtrade`: a stand-in for `freqtrade trade`, for the supervisor's fault tests
//! (crash at start, crash later, hang on stop, stop looping, never answer). The
//! deploy-and-stop path is tested against the real Freqtrade; this fake answers the
//! same REST endpoints the daemon reads, with HTTP Basic auth, on the port and
//! credentials of the rendered config, and logs in Freqtrade's line format.
//!
//! What it does is set by a `fake_bot` object in the config (the daemon's tests merge it
//! in through `[freqtrade] config_overrides`): `exit_at_start` (exit code), `never_ready`,
//! `ignore_sigterm`, `idle` (health never advances), `crash_after_secs`,
//! `closed_trades` (how many closed trades to report), `open_trade_secs_after_stopentry`,
//! `profit_dir` (the profit of all trades `/profit` reports is read, at each request, from
//! the file `{profit_dir}/{api port}` when it exists: a test drives each bot's profit).
//! `POST /api/v1/stopentry` is recorded in the log (`Entries stopped by the API`) and in
//! `show_config`'s `state` (`paused`); `POST /api/v1/start` makes it `running` again.
//! `POST /api/v1/reload_config` re-reads the config and logs the values of the config
//! keys memd may change (`reload_config: re-read the config: stoploss=-0.05 ...`).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

struct Bot {
    user: String,
    password: String,
    started: i64,
    last_loop: AtomicI64,
    entries_stopped_at: Mutex<Option<Instant>>,
    closed_trades: i64,
    open_secs_after_stopentry: f64,
    log: Mutex<std::fs::File>,
    strategy: String,
    /// The `--config` file, read again on `reload_config`.
    config_path: String,
    /// Where `/profit`'s profit of all trades comes from, if set.
    profit_file: Option<std::path::PathBuf>,
}

impl Bot {
    fn log(&self, level: &str, message: &str) {
        let mut f = self.log.lock().unwrap();
        let _ = writeln!(
            f,
            "{} - freqtrade.worker - {level} - {message}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S,%3f")
        );
    }

    fn open_trades(&self) -> Vec<Value> {
        let stopped = *self.entries_stopped_at.lock().unwrap();
        let open = match stopped {
            None => self.open_secs_after_stopentry > 0.0,
            Some(at) => at.elapsed().as_secs_f64() < self.open_secs_after_stopentry,
        };
        if open {
            vec![json!({"trade_id": 1000, "pair": "ETH/USDT", "is_open": true})]
        } else {
            vec![]
        }
    }

    /// `/api/v1/trades?limit=&offset=`: newest first, a page of them, as Freqtrade answers.
    fn closed(&self, query: &str) -> Value {
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse::<usize>().ok())
        };
        let (limit, offset) = (param("limit").unwrap_or(500), param("offset").unwrap_or(0));
        let trades: Vec<Value> = (1..=self.closed_trades)
            .rev()
            .skip(offset)
            .take(limit)
            .map(|i| {
                let open = (self.started - 3600 + i * 60) * 1000;
                json!({"trade_id": i, "pair": "ETH/USDT", "is_short": false, "open_rate": 3000.0, "close_rate": 3003.0,
                       "open_timestamp": open, "close_timestamp": open + 30_000, "close_profit_abs": 0.1 * i as f64,
                       "close_profit": 0.001, "fee_open": 0.001, "stake_amount": 100.0, "timeframe": 5, "exit_reason": "roi"})
            })
            .collect();
        json!({"trades": trades, "trades_count": self.closed_trades, "offset": offset, "total_trades": self.closed_trades})
    }

    fn answer(&self, method: &str, path: &str, authorized: bool) -> (u16, Value) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        if path == "/api/v1/ping" {
            return (200, json!({"status": "pong"}));
        }
        if !authorized {
            return (401, json!({"detail": "Unauthorized"}));
        }
        match (method, path) {
            ("GET", "/api/v1/health") => (
                200,
                json!({"last_process_ts": self.last_loop.load(Ordering::Relaxed), "bot_start_ts": self.started}),
            ),
            ("GET", "/api/v1/status") => (200, Value::Array(self.open_trades())),
            ("GET", "/api/v1/count") => (
                200,
                json!({"current": self.open_trades().len(), "max": 3, "total_stake": 0.0}),
            ),
            ("GET", "/api/v1/profit") => {
                let closed: f64 = (1..=self.closed_trades).map(|i| 0.1 * i as f64).sum();
                let all = self
                    .profit_file
                    .as_ref()
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .unwrap_or(closed);
                (
                    200,
                    json!({"profit_closed_coin": closed, "profit_all_coin": all, "closed_trade_count": self.closed_trades, "trade_count": self.closed_trades}),
                )
            }
            ("GET", "/api/v1/balance") => (
                200,
                json!({"total": 1000.0, "stake": "USDT", "currencies": []}),
            ),
            ("GET", "/api/v1/trades") => (200, self.closed(query)),
            ("GET", "/api/v1/show_config") => {
                let state = if self.entries_stopped_at.lock().unwrap().is_some() {
                    "paused"
                } else {
                    "running"
                };
                (
                    200,
                    json!({"state": state, "dry_run": true, "strategy": self.strategy}),
                )
            }
            ("POST", "/api/v1/reload_config") => {
                // Freqtrade re-reads its config files; the fake logs what it read, so that
                // tests see which values a bot would now run with.
                let config: Value = std::fs::read(&self.config_path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                let keys = ["stoploss", "minimal_roi", "stake_amount", "max_open_trades"];
                let read: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k}={}", config.get(*k).unwrap_or(&Value::Null)))
                    .collect();
                self.log(
                    "INFO",
                    &format!("reload_config: re-read the config: {}", read.join(" ")),
                );
                (200, json!({"status": "Reloading config ..."}))
            }
            ("POST", "/api/v1/stopentry") | ("POST", "/api/v1/stopbuy") => {
                *self.entries_stopped_at.lock().unwrap() = Some(Instant::now());
                self.log("INFO", "Entries stopped by the API");
                (
                    200,
                    json!({"status": "paused, no more entries will occur from now. Run /start to enable entries."}),
                )
            }
            ("POST", "/api/v1/start") => {
                let was = self.entries_stopped_at.lock().unwrap().take();
                self.log("INFO", "Entries started by the API");
                let status = if was.is_some() {
                    "starting trader ..."
                } else {
                    "already running"
                };
                (200, json!({ "status": status }))
            }
            _ => (404, json!({"detail": "Not Found"})),
        }
    }
}

/// Answers requests on one connection until the client closes it (keep-alive, as
/// Freqtrade's uvicorn does).
fn serve(bot: Arc<Bot>, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut authorized = false;
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("authorization: basic ") {
                let expected = base64(&format!("{}:{}", bot.user, bot.password));
                authorized = header["authorization: basic ".len()..].trim() == expected;
            }
        }
        let mut body = vec![0u8; content_length];
        if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
            return;
        }
        let (status, value) = bot.answer(&method, &path, authorized);
        let body = value.to_string();
        if write!(stream, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).is_err() {
            return;
        }
    }
}

fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | (c as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let config_path = arg(&args, "--config").expect("--config");
    let config: Value =
        serde_json::from_slice(&std::fs::read(&config_path).expect("read the config"))
            .expect("a JSON config");
    let fake = config.get("fake_bot").cloned().unwrap_or(json!({}));
    let logfile = arg(&args, "--logfile").unwrap_or_else(|| "/dev/null".into());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&logfile)
        .expect("open the log file");
    let api = &config["api_server"];
    let bot = Arc::new(Bot {
        user: api["username"].as_str().unwrap_or("").into(),
        password: api["password"].as_str().unwrap_or("").into(),
        started: now_secs(),
        last_loop: AtomicI64::new(now_secs()),
        entries_stopped_at: Mutex::new(None),
        closed_trades: fake["closed_trades"].as_i64().unwrap_or(0),
        open_secs_after_stopentry: fake["open_trade_secs_after_stopentry"]
            .as_f64()
            .unwrap_or(0.0),
        log: Mutex::new(log),
        strategy: arg(&args, "--strategy").unwrap_or_default(),
        config_path: config_path.clone(),
        profit_file: fake["profit_dir"].as_str().map(|dir| {
            std::path::Path::new(dir).join(api["listen_port"].as_u64().unwrap_or(0).to_string())
        }),
    });
    bot.log("INFO", &format!("Starting the fake bot with {config_path}"));
    eprintln!("fake_freqtrade starting (pid {})", std::process::id());
    if let Some(code) = fake["exit_at_start"].as_i64() {
        bot.log(
            "ERROR",
            "Configuration error: the fake was told to fail at start",
        );
        std::process::exit(code as i32);
    }
    if fake["ignore_sigterm"].as_bool() == Some(true) {
        ignore_sigterm();
    }
    if fake["never_ready"].as_bool() != Some(true) {
        let port = api["listen_port"].as_u64().expect("api_server.listen_port") as u16;
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the API port");
        let server_bot = bot.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let bot = server_bot.clone();
                std::thread::spawn(move || serve(bot, stream));
            }
        });
    }
    let idle = fake["idle"].as_bool() == Some(true);
    let crash_after = fake["crash_after_secs"].as_f64();
    let started = Instant::now();
    let warned = AtomicBool::new(false);
    let mut ticks = 0u64;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if !idle {
            bot.last_loop.store(now_secs(), Ordering::Relaxed);
        }
        if !warned.swap(true, Ordering::Relaxed) {
            bot.log("WARNING", "The fake exchange has no real order book");
        }
        // Freqtrade logs little while it trades; a heartbeat every 5 s is generous.
        if ticks % 25 == 0 {
            bot.log("INFO", "Bot heartbeat");
        }
        ticks += 1;
        if crash_after.is_some_and(|s| started.elapsed().as_secs_f64() > s) {
            bot.log("ERROR", "Fatal exception: the fake was told to crash");
            std::process::exit(1);
        }
    }
}

/// SIGTERM ignored (SIG_IGN: no handler code runs).
fn ignore_sigterm() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SIG_IGN installs no handler code, so this is sound.
    #[allow(unsafe_code)]
    unsafe {
        signal(Signal::SIGTERM, SigHandler::SigIgn).expect("ignore SIGTERM");
    }
}
