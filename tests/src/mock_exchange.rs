//! A mock Binance spot exchange on 127.0.0.1, good enough for `freqtrade trade --dry-run`.
//!
//! It serves the public REST endpoints ccxt calls while Freqtrade starts and trades in dry-run
//! (`/api/v3/exchangeInfo`, `time`, `ping`, `klines`, `uiKlines`, `ticker/24hr`,
//! `ticker/bookTicker`, `ticker/price`, `avgPrice`, `depth`, `aggTrades`, `trades`,
//! `historicalTrades`). Any other path is answered with a Binance-style JSON error and logged
//! on stderr, so a missing endpoint is visible.
//!
//! Prices are a deterministic function of (seed, pair, time): a sum of slow sine waves with
//! per-pair phases plus a moving sum of hashed per-minute noise, which looks like a random walk
//! locally and stays bounded around the pair's base price. Every endpoint reads the same
//! function, so klines, tickers and the order book agree, and the newest candle follows the wall
//! clock: it is open at `now` and a new one starts every timeframe, so a bot sees new candles.
//!
//! ```no_run
//! # async fn demo() {
//! let mock = mem_e2e::mock_exchange::start(&["BTC/USDT", "ETH/USDT"]).await;
//! let exchange_section = mock.ccxt_config(); // the "exchange" object of a Freqtrade config
//! println!("{}", mock.url());
//! mock.shutdown().await;
//! # }
//! ```

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The pairs a mock serves when none are given.
pub const DEFAULT_PAIRS: &[&str] = &["BTC/USDT", "ETH/USDT", "BNB/USDT"];

/// Binance's URL keys in ccxt (`exchange.urls["api"]`) and the path each one has on the real
/// exchange. [`MockExchange::ccxt_config`] points every one of them at the mock, so no request
/// can leave the machine; only `public` (`/api/v3`) is served, the rest is logged as unknown.
const CCXT_API_URLS: &[(&str, &str)] = &[
    ("public", "/api/v3"),
    ("private", "/api/v3"),
    ("v1", "/api/v1"),
    ("sapi", "/sapi/v1"),
    ("sapiV2", "/sapi/v2"),
    ("sapiV3", "/sapi/v3"),
    ("sapiV4", "/sapi/v4"),
    ("dapiPublic", "/dapi/v1"),
    ("dapiPrivate", "/dapi/v1"),
    ("dapiPrivateV2", "/dapi/v2"),
    ("dapiData", "/futures/data"),
    ("fapiPublic", "/fapi/v1"),
    ("fapiPublicV2", "/fapi/v2"),
    ("fapiPublicV3", "/fapi/v3"),
    ("fapiPrivate", "/fapi/v1"),
    ("fapiPrivateV2", "/fapi/v2"),
    ("fapiPrivateV3", "/fapi/v3"),
    ("fapiData", "/futures/data"),
    ("eapiPublic", "/eapi/v1"),
    ("eapiPrivate", "/eapi/v1"),
    ("papi", "/papi/v1"),
    ("papiV2", "/papi/v2"),
];

/// How a mock behaves. `MockOptions::default()` serves [`DEFAULT_PAIRS`] on an ephemeral port.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Pairs in ccxt's form, `BASE/QUOTE`.
    pub pairs: Vec<String>,
    /// Where to listen; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Changes every price series.
    pub seed: u64,
    /// Distance between the best bid and the best ask, in basis points of the price.
    pub spread_bps: f64,
    /// Makes Freqtrade's dry-run limit orders fill at once: the book is served crossed (best bid
    /// `instant_fill_bps` above the last price, best ask as far below it). Freqtrade fills a
    /// dry-run buy when its limit is >= the best ask and a sell when its limit is <= the best
    /// bid, so entries at the bid and exits at the ask (`price_side: same`) and at the other
    /// side all fill on the next check. Market orders fill at once in either mode.
    pub instant_fills: bool,
    /// How far the crossed book of `instant_fills` is from the last price, in basis points. It
    /// must exceed how much the price moves between Freqtrade's price query and its fill check
    /// (a few milliseconds to one loop), and stay under 100 (1%), past which Freqtrade turns the
    /// limit order into a market order.
    pub instant_fill_bps: f64,
    /// Prints every request on stderr (unknown paths are always printed).
    pub log_requests: bool,
    /// Pairs (`BASE/QUOTE`) whose candles (`klines`) answer an exchange error instead:
    /// HTTP 500, `{"code": -1000, "msg": "mock: the klines of ETH/USDT fail on purpose"}`.
    /// [`MockExchange::fail_klines`] changes them while the mock runs.
    pub failing_klines: Vec<String>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            pairs: DEFAULT_PAIRS.iter().map(|p| p.to_string()).collect(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 0x6d65_6d64, // "memd"
            spread_bps: 2.0,
            instant_fills: false,
            instant_fill_bps: 10.0,
            log_requests: false,
            failing_klines: Vec::new(),
        }
    }
}

/// A running mock exchange. Dropping it stops the server (without waiting);
/// [`MockExchange::shutdown`] stops it and waits until the port is closed.
pub struct MockExchange {
    addr: SocketAddr,
    state: Arc<MockState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts a mock serving `pairs` (or [`DEFAULT_PAIRS`] when empty) on 127.0.0.1 with a free port.
///
/// Panics when the pairs are malformed or the socket cannot be bound; use [`start_with`] to get
/// the error instead.
pub async fn start(pairs: &[&str]) -> MockExchange {
    let mut options = MockOptions::default();
    if !pairs.is_empty() {
        options.pairs = pairs.iter().map(|p| p.to_string()).collect();
    }
    start_with(options).await.expect("start the mock exchange")
}

/// Starts a mock serving [`DEFAULT_PAIRS`] whose book makes Freqtrade's dry-run orders fill
/// at once ([`MockOptions::instant_fills`]), as the tests that trade through a bot want.
pub async fn start_filling_at_once() -> MockExchange {
    start_with(MockOptions {
        instant_fills: true,
        ..MockOptions::default()
    })
    .await
    .expect("start the mock exchange")
}

/// Starts a mock with explicit options.
pub async fn start_with(options: MockOptions) -> std::io::Result<MockExchange> {
    let markets = options
        .pairs
        .iter()
        .map(|p| Market::new(p, options.seed))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let by_symbol = markets
        .iter()
        .enumerate()
        .map(|(i, m)| (m.symbol.clone(), i))
        .collect();
    let state = Arc::new(MockState {
        markets,
        by_symbol,
        options: options.clone(),
        counts: Mutex::new(BTreeMap::new()),
        unknown: Mutex::new(Vec::new()),
        failing_klines: Mutex::new(options.failing_klines.clone()),
    });

    let app = Router::new()
        .route("/api/v3/ping", get(ping))
        .route("/api/v3/time", get(time))
        .route("/api/v3/exchangeInfo", get(exchange_info))
        .route("/api/v3/klines", get(klines))
        .route("/api/v3/uiKlines", get(klines))
        .route("/api/v3/ticker/24hr", get(ticker_24hr))
        .route("/api/v3/ticker/bookTicker", get(book_ticker))
        .route("/api/v3/ticker/price", get(ticker_price))
        .route("/api/v3/avgPrice", get(avg_price))
        .route("/api/v3/depth", get(depth))
        .route("/api/v3/aggTrades", get(agg_trades))
        .route("/api/v3/trades", get(trades))
        .route("/api/v3/historicalTrades", get(trades))
        .fallback(unknown)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state.clone());

    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            eprintln!("mock exchange: server error: {e}");
        }
    });
    Ok(MockExchange {
        addr,
        state,
        stop: Some(stop),
        task: Some(task),
    })
}

impl MockExchange {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pairs served, in ccxt's form.
    pub fn pairs(&self) -> Vec<String> {
        self.state.markets.iter().map(|m| m.pair.clone()).collect()
    }

    /// The `exchange` section of a Freqtrade config that trades these pairs on this mock:
    /// binance, every ccxt API url pointed at the mock, spot markets only, no websockets, no
    /// downloads from outside ccxt.
    pub fn ccxt_config(&self) -> Value {
        let base = self.url();
        let api: serde_json::Map<String, Value> = CCXT_API_URLS
            .iter()
            .map(|(key, path)| (key.to_string(), Value::String(format!("{base}{path}"))))
            .collect();
        json!({
            "name": "binance",
            "key": "",
            "secret": "",
            "ccxt_config": {
                "urls": {"api": api},
                "options": {
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": false,
                    "fetchMargins": false,
                    "adjustForTimeDifference": false,
                },
            },
            "ccxt_async_config": {},
            "enable_ws": false,
            "only_from_ccxt": true,
            "pair_whitelist": self.pairs(),
            "pair_blacklist": [],
        })
    }

    /// The overrides that point memd's bots at the mock: `{"exchange": ...}` without the
    /// pair whitelist (memd sets each bot's pairs).
    pub fn memd_overrides(&self) -> Value {
        let mut exchange = self.ccxt_config();
        if let Some(section) = exchange.as_object_mut() {
            section.remove("pair_whitelist");
        }
        json!({ "exchange": exchange })
    }

    /// From now on the candles of `pairs` (and of no other pair) answer an exchange error
    /// (see [`MockOptions::failing_klines`]); an empty list heals them all.
    pub fn fail_klines(&self, pairs: &[&str]) {
        *self.state.failing_klines.lock().unwrap() = pairs.iter().map(|p| p.to_string()).collect();
    }

    /// Requests served so far, by `METHOD /path`.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.state.counts.lock().unwrap().clone()
    }

    /// Requests to paths the mock does not serve (`METHOD /path?query`), oldest first.
    pub fn unknown_requests(&self) -> Vec<String> {
        self.state.unknown.lock().unwrap().clone()
    }

    /// The mock's last price for `pair` now (unrounded), or None for a pair it does not serve.
    pub fn last_price(&self, pair: &str) -> Option<f64> {
        let market = self.state.markets.iter().find(|m| m.pair == pair)?;
        Some(market.price_at(now_ms() as f64 / 1000.0))
    }

    /// Stops the server and waits until it has closed its socket.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Graceful shutdown waits for open connections: ccxt keeps them alive, so bound it.
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Runs until the server stops (it only stops through [`MockExchange::shutdown`] or a drop
    /// elsewhere, so in practice: forever). For the `mock-exchange` binary.
    pub async fn serve_forever(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockExchange {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Price model

/// One served pair.
#[derive(Debug)]
struct Market {
    /// `BTC/USDT`
    pair: String,
    /// `BTCUSDT`
    symbol: String,
    base: String,
    quote: String,
    /// The level prices wander around.
    base_price: f64,
    /// Price tick and amount step, Binance-like for the price's magnitude.
    tick: f64,
    step: f64,
    /// Per-pair seed for phases and noise.
    seed: u64,
    /// Sine components: (period in seconds, amplitude in log-price, phase).
    waves: Vec<(f64, f64, f64)>,
}

/// Seconds per minute, as f64.
const MINUTE: f64 = 60.0;
/// How many minutes of hashed noise are summed: the price's random-walk-like part.
const NOISE_WINDOW: i64 = 16;
/// Amplitude in log-price of one minute's noise.
const NOISE_STEP: f64 = 0.0007;
/// Largest candle wick beyond open/close, as a fraction of the price (1-minute candles).
const WICK: f64 = 0.0004;
/// Quote-currency volume traded per minute, on average, per pair.
const QUOTE_VOLUME_PER_MINUTE: f64 = 25_000.0;
/// Quote-currency value resting at each order-book level, on average.
const QUOTE_PER_LEVEL: f64 = 5_000.0;

impl Market {
    fn new(pair: &str, seed: u64) -> Result<Market, String> {
        let (base, quote) = pair
            .split_once('/')
            .filter(|(b, q)| {
                let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
                ok(b) && ok(q)
            })
            .ok_or_else(|| format!("pair {pair:?} is not of the form BASE/QUOTE"))?;
        let base = base.to_ascii_uppercase();
        let quote = quote.to_ascii_uppercase();
        let base_price = usd_price(&base) / usd_price(&quote);
        let seed = mix(seed ^ hash_str(&format!("{base}/{quote}")));
        // Periods in minutes (primes, so the sum does not repeat soon) and log amplitudes:
        // fast ripples for RSI/MACD crossings on 1m/5m, slow swells for trends.
        let waves = [
            (23.0, 0.0015),
            (71.0, 0.003),
            (199.0, 0.006),
            (601.0, 0.012),
            (2003.0, 0.025),
            (10007.0, 0.05),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(minutes, amp))| {
            let phase = unit(mix(seed ^ (i as u64 + 1))) * std::f64::consts::TAU;
            (minutes * MINUTE, amp, phase)
        })
        .collect();
        Ok(Market {
            pair: format!("{base}/{quote}"),
            symbol: format!("{base}{quote}"),
            tick: tick_for(base_price),
            step: step_for(base_price),
            base,
            quote,
            base_price,
            seed,
            waves,
        })
    }

    /// Hashed noise of minute `m`, uniform in [-1, 1).
    fn noise(&self, m: i64) -> f64 {
        unit(mix(self.seed
            ^ 0x9e37_79b9
            ^ (m as u64).wrapping_mul(0xff51_afd7_ed55_8ccd)))
            * 2.0
            - 1.0
    }

    /// A hashed value in [0, 1) for minute `m` and purpose `k`.
    fn hashed(&self, m: i64, k: u64) -> f64 {
        unit(mix(self.seed
            ^ k.wrapping_mul(0xc4ce_b9fe_1a85_ec53)
            ^ (m as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)))
    }

    /// Moving sum of the noise of the `NOISE_WINDOW` minutes up to minute `m`.
    fn walk(&self, m: i64) -> f64 {
        (0..NOISE_WINDOW).map(|j| self.noise(m - j)).sum::<f64>() * NOISE_STEP
    }

    /// The price at `t` (Unix seconds). Continuous in `t`.
    fn price_at(&self, t: f64) -> f64 {
        let waves: f64 = self
            .waves
            .iter()
            .map(|&(period, amp, phase)| amp * (std::f64::consts::TAU * t / period + phase).sin())
            .sum();
        let m = (t / MINUTE).floor();
        let frac = t / MINUTE - m;
        let m = m as i64;
        let walk = self.walk(m) * (1.0 - frac) + self.walk(m + 1) * frac;
        self.base_price * (waves + walk).exp()
    }

    /// The candle of `[start, start + len)` seconds as seen at `now`, built from sub-candles of
    /// `sub` seconds (each with its own hashed wicks and volume). None if it starts after `now`.
    fn candle(&self, start: i64, len: i64, sub: i64, now: f64) -> Option<Candle> {
        if start as f64 > now {
            return None;
        }
        let mut candle: Option<Candle> = None;
        let mut s = start;
        while s < start + len && (s as f64) <= now {
            let end = ((s + sub) as f64).min(now);
            let fraction = (end - s as f64) / sub as f64;
            let open = self.price_at(s as f64);
            let close = self.price_at(end);
            let key = s.div_euclid(60);
            let wick = WICK * ((sub / 60).max(1) as f64).sqrt() * fraction;
            let high = open.max(close) * (1.0 + wick * self.hashed(key, 1));
            let low = open.min(close) * (1.0 - wick * self.hashed(key, 2));
            let mid = (open + close) / 2.0;
            let quote_volume = QUOTE_VOLUME_PER_MINUTE
                * (sub as f64 / 60.0)
                * fraction
                * (0.5 + self.hashed(key, 3));
            let volume = quote_volume / mid;
            let trades = (quote_volume / 500.0).round() as u64 + 1;
            candle = Some(match candle {
                None => Candle {
                    open,
                    high,
                    low,
                    close,
                    volume,
                    quote_volume,
                    trades,
                },
                Some(c) => Candle {
                    open: c.open,
                    high: c.high.max(high),
                    low: c.low.min(low),
                    close,
                    volume: c.volume + volume,
                    quote_volume: c.quote_volume + quote_volume,
                    trades: c.trades + trades,
                },
            });
            s += sub;
        }
        candle
    }

    /// Best bid and ask at `t`.
    fn book_top(&self, t: f64, options: &MockOptions) -> (f64, f64) {
        let last = self.price_at(t);
        let (bid, ask) = if options.instant_fills {
            let d = options.instant_fill_bps / 10_000.0;
            (last * (1.0 + d), last * (1.0 - d))
        } else {
            let half = options.spread_bps / 20_000.0;
            (last * (1.0 - half), last * (1.0 + half))
        };
        // Keep at least one tick between them in the normal case.
        let bid = self.round_down(bid);
        let mut ask = self.round_up(ask);
        if !options.instant_fills && ask <= bid {
            ask = bid + self.tick;
        }
        (bid, ask)
    }

    fn round_down(&self, price: f64) -> f64 {
        ((price / self.tick) + 1e-9).floor() * self.tick
    }

    fn round_up(&self, price: f64) -> f64 {
        ((price / self.tick) - 1e-9).ceil() * self.tick
    }

    fn round_price(&self, price: f64) -> f64 {
        (price / self.tick).round() * self.tick
    }

    fn round_amount(&self, amount: f64) -> f64 {
        ((amount / self.step).round() * self.step).max(self.step)
    }

    fn price_str(&self, price: f64) -> String {
        format!("{:.8}", self.round_price(price))
    }

    fn amount_str(&self, amount: f64) -> String {
        format!("{:.8}", self.round_amount(amount))
    }
}

#[derive(Clone, Copy, Debug)]
struct Candle {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    quote_volume: f64,
    trades: u64,
}

/// Rough USD levels so that pairs look familiar; unknown assets get a hashed level.
fn usd_price(asset: &str) -> f64 {
    match asset {
        "USDT" | "USDC" | "BUSD" | "FDUSD" | "TUSD" | "DAI" | "USD" => 1.0,
        "BTC" => 65_000.0,
        "ETH" => 3_500.0,
        "BNB" => 600.0,
        "SOL" => 150.0,
        "XRP" => 0.6,
        "ADA" => 0.45,
        "DOGE" => 0.15,
        "DOT" => 7.0,
        "LTC" => 80.0,
        "LINK" => 15.0,
        "AVAX" => 35.0,
        "TRX" => 0.12,
        _ => 1.0 + (hash_str(asset) % 20_000) as f64 / 100.0,
    }
}

/// Binance-like price tick: 0.01 for prices from 1 up, 6 significant digits below.
fn tick_for(price: f64) -> f64 {
    if price >= 1.0 {
        0.01
    } else {
        10f64.powi(price.log10().floor() as i32 - 5).max(1e-8)
    }
}

/// Binance-like amount step: about 1/1000 of a dollar's worth at most, between 1e-5 and 1.
fn step_for(price: f64) -> f64 {
    10f64
        .powi(-(price.log10().floor() as i32 + 1))
        .clamp(1e-5, 1.0)
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash in [0, 1).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a: stable across runs and platforms (std's hasher is randomised).
fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct MockState {
    markets: Vec<Market>,
    by_symbol: HashMap<String, usize>,
    options: MockOptions,
    counts: Mutex<BTreeMap<String, u64>>,
    unknown: Mutex<Vec<String>>,
    /// See [`MockOptions::failing_klines`].
    failing_klines: Mutex<Vec<String>>,
}

type Shared = State<Arc<MockState>>;
type Params = Query<HashMap<String, String>>;

/// A Binance-style error: `{"code": -1121, "msg": "Invalid symbol."}`.
struct ApiError {
    status: StatusCode,
    code: i64,
    msg: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"code": self.code, "msg": self.msg})),
        )
            .into_response()
    }
}

type ApiResult<T = Response> = Result<T, ApiError>;

fn error(status: StatusCode, code: i64, msg: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        msg: msg.into(),
    }
}

fn ok(value: Value) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

async fn count_requests(State(state): Shared, request: Request, next: Next) -> Response {
    let key = format!("{} {}", request.method(), request.uri().path());
    if state.options.log_requests {
        eprintln!("mock exchange: {} {}", request.method(), request.uri());
    }
    *state.counts.lock().unwrap().entry(key).or_default() += 1;
    next.run(request).await
}

async fn unknown(State(state): Shared, method: axum::http::Method, uri: Uri) -> Response {
    let what = format!("{method} {uri}");
    eprintln!("mock exchange: unknown endpoint {what}");
    state.unknown.lock().unwrap().push(what.clone());
    error(
        StatusCode::NOT_FOUND,
        -1000,
        format!("mock exchange does not serve {what}"),
    )
    .into_response()
}

async fn ping() -> ApiResult {
    ok(json!({}))
}

async fn time() -> ApiResult {
    ok(json!({"serverTime": now_ms()}))
}

impl MockState {
    fn market(&self, symbol: &str) -> ApiResult<&Market> {
        self.by_symbol
            .get(symbol)
            .map(|&i| &self.markets[i])
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol."))
    }

    /// The markets a ticker request names: `symbol=X`, `symbols=["X","Y"]`, or all of them.
    /// The second value tells whether the answer is a single object (`symbol=`).
    fn selected(&self, params: &HashMap<String, String>) -> ApiResult<(Vec<&Market>, bool)> {
        if let Some(symbol) = params.get("symbol") {
            return Ok((vec![self.market(symbol)?], true));
        }
        if let Some(symbols) = params.get("symbols") {
            let list: Vec<String> = serde_json::from_str(symbols).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    -1100,
                    "Illegal characters found in parameter 'symbols'.",
                )
            })?;
            let markets = list
                .iter()
                .map(|s| self.market(s))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok((markets, false));
        }
        Ok((self.markets.iter().collect(), false))
    }
}

fn one_or_list(values: Vec<Value>, single: bool) -> ApiResult {
    if single {
        ok(values.into_iter().next().unwrap_or(Value::Null))
    } else {
        ok(Value::Array(values))
    }
}

fn int_param(params: &HashMap<String, String>, name: &str) -> ApiResult<Option<i64>> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                -1100,
                format!("Illegal characters found in parameter '{name}'."),
            )
        }),
    }
}

fn required<'a>(params: &'a HashMap<String, String>, name: &str) -> ApiResult<&'a str> {
    params.get(name).map(String::as_str).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            -1102,
            format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
        )
    })
}

async fn exchange_info(State(state): Shared) -> ApiResult {
    let symbols: Vec<Value> = state
        .markets
        .iter()
        .map(|m| {
            json!({
                "symbol": m.symbol,
                "status": "TRADING",
                "baseAsset": m.base,
                "baseAssetPrecision": 8,
                "quoteAsset": m.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                               "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": true,
                "ocoAllowed": true,
                "otoAllowed": true,
                "quoteOrderQtyMarketAllowed": true,
                "allowTrailingStop": true,
                "cancelReplaceAllowed": true,
                "isSpotTradingAllowed": true,
                "isMarginTradingAllowed": false,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": format!("{:.8}", m.tick),
                     "maxPrice": "1000000.00000000", "tickSize": format!("{:.8}", m.tick)},
                    {"filterType": "LOT_SIZE", "minQty": format!("{:.8}", m.step),
                     "maxQty": "9000000.00000000", "stepSize": format!("{:.8}", m.step)},
                    {"filterType": "ICEBERG_PARTS", "limit": 10},
                    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000",
                     "maxQty": "1000000.00000000", "stepSize": "0.00000000"},
                    {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
                     "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
                     "maxTrailingBelowDelta": 2000},
                    {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5",
                     "bidMultiplierDown": "0.2", "askMultiplierUp": "5",
                     "askMultiplierDown": "0.2", "avgPriceMins": 5},
                    {"filterType": "NOTIONAL", "minNotional": "5.00000000",
                     "applyMinToMarket": true, "maxNotional": "9000000.00000000",
                     "applyMaxToMarket": false, "avgPriceMins": 5},
                    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })
        })
        .collect();
    ok(json!({
        "timezone": "UTC",
        "serverTime": now_ms(),
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": symbols,
    }))
}

/// A Binance interval: its length and the offset of its grid from the epoch, in ms.
fn interval_ms(interval: &str) -> Option<(i64, i64)> {
    const M: i64 = 60_000;
    const H: i64 = 60 * M;
    const D: i64 = 24 * H;
    Some(match interval {
        "1m" => (M, 0),
        "3m" => (3 * M, 0),
        "5m" => (5 * M, 0),
        "15m" => (15 * M, 0),
        "30m" => (30 * M, 0),
        "1h" => (H, 0),
        "2h" => (2 * H, 0),
        "4h" => (4 * H, 0),
        "6h" => (6 * H, 0),
        "8h" => (8 * H, 0),
        "12h" => (12 * H, 0),
        "1d" => (D, 0),
        "3d" => (3 * D, 0),
        // Weeks start on Monday; 1970-01-01 was a Thursday, the first Monday 4 days later.
        "1w" => (7 * D, 4 * D),
        _ => return None,
    })
}

/// Sub-candle length (seconds) used to build a candle of `len_ms`: exact 1-minute aggregation
/// up to 4h candles, at most 240 sub-candles per candle beyond.
fn sub_secs(len_ms: i64) -> i64 {
    let minutes = len_ms / 60_000;
    (minutes / 240).max(1) * 60
}

async fn klines(State(state): Shared, Query(params): Params) -> ApiResult {
    let market = state.market(required(&params, "symbol")?)?;
    if state.failing_klines.lock().unwrap().contains(&market.pair) {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            -1000,
            format!("mock: the klines of {} fail on purpose", market.pair),
        ));
    }
    let interval = required(&params, "interval")?;
    let (len, offset) = interval_ms(interval)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, -1120, "Invalid interval."))?;
    let limit = int_param(&params, "limit")?.unwrap_or(500).clamp(1, 1000);
    let start = int_param(&params, "startTime")?;
    let end = int_param(&params, "endTime")?;
    let now = now_ms();
    let align = |t: i64| (t - offset).div_euclid(len) * len + offset;
    let current = align(now);
    let last_allowed = end.map_or(current, |e| align(e).min(current));
    let first = match start {
        // Binance: candles whose open time is >= startTime.
        Some(s) => align(s + len - 1),
        None => last_allowed - (limit - 1) * len,
    };
    let now_s = now as f64 / 1000.0;
    let sub = sub_secs(len);
    let mut rows = Vec::new();
    let mut open = first;
    while open <= last_allowed && (rows.len() as i64) < limit {
        if let Some(c) = market.candle(open / 1000, len / 1000, sub, now_s) {
            let taker = 0.5 + 0.2 * (market.hashed(open / 60_000, 4) - 0.5);
            rows.push(json!([
                open,
                market.price_str(c.open),
                market.price_str(c.high),
                market.price_str(c.low),
                market.price_str(c.close),
                market.amount_str(c.volume),
                open + len - 1,
                format!("{:.8}", c.quote_volume),
                c.trades,
                market.amount_str(c.volume * taker),
                format!("{:.8}", c.quote_volume * taker),
                "0",
            ]));
        }
        open += len;
    }
    ok(Value::Array(rows))
}

async fn ticker_24hr(State(state): Shared, Query(params): Params) -> ApiResult {
    let (markets, single) = state.selected(&params)?;
    let now = now_ms();
    let now_s = now as f64 / 1000.0;
    let open_time = now - 86_400_000;
    let mini = params.get("type").is_some_and(|t| t == "MINI");
    let values = markets
        .iter()
        .map(|m| {
            // 240 six-minute sub-candles over the rolling day.
            let day = m
                .candle(open_time / 1000, 86_400, 360, now_s)
                .expect("the window starts in the past");
            let (bid, ask) = m.book_top(now_s, &state.options);
            let last = m.price_at(now_s);
            let change = m.round_price(last) - m.round_price(day.open);
            let weighted = day.quote_volume / day.volume;
            let first_id = open_time / 1000;
            let last_id = now / 1000;
            let mut v = json!({
                "symbol": m.symbol,
                "openPrice": m.price_str(day.open),
                "highPrice": m.price_str(day.high.max(last)),
                "lowPrice": m.price_str(day.low.min(last)),
                "lastPrice": m.price_str(last),
                "volume": m.amount_str(day.volume),
                "quoteVolume": format!("{:.8}", day.quote_volume),
                "openTime": open_time,
                "closeTime": now,
                "firstId": first_id,
                "lastId": last_id,
                "count": last_id - first_id + 1,
            });
            if !mini {
                let obj = v.as_object_mut().unwrap();
                obj.insert("priceChange".into(), json!(format!("{change:.8}")));
                obj.insert(
                    "priceChangePercent".into(),
                    json!(format!("{:.3}", change / day.open * 100.0)),
                );
                obj.insert("weightedAvgPrice".into(), json!(m.price_str(weighted)));
                obj.insert("prevClosePrice".into(), json!(m.price_str(day.open)));
                obj.insert(
                    "lastQty".into(),
                    json!(m.amount_str(100.0 / last * (0.5 + m.hashed(now / 1000, 5)))),
                );
                obj.insert("bidPrice".into(), json!(m.price_str(bid)));
                obj.insert("bidQty".into(), json!(m.amount_str(QUOTE_PER_LEVEL / bid)));
                obj.insert("askPrice".into(), json!(m.price_str(ask)));
                obj.insert("askQty".into(), json!(m.amount_str(QUOTE_PER_LEVEL / ask)));
            }
            v
        })
        .collect();
    one_or_list(values, single)
}

async fn book_ticker(State(state): Shared, Query(params): Params) -> ApiResult {
    let (markets, single) = state.selected(&params)?;
    let now_s = now_ms() as f64 / 1000.0;
    let values = markets
        .iter()
        .map(|m| {
            let (bid, ask) = m.book_top(now_s, &state.options);
            json!({
                "symbol": m.symbol,
                "bidPrice": m.price_str(bid),
                "bidQty": m.amount_str(QUOTE_PER_LEVEL / bid),
                "askPrice": m.price_str(ask),
                "askQty": m.amount_str(QUOTE_PER_LEVEL / ask),
            })
        })
        .collect();
    one_or_list(values, single)
}

async fn ticker_price(State(state): Shared, Query(params): Params) -> ApiResult {
    let (markets, single) = state.selected(&params)?;
    let now_s = now_ms() as f64 / 1000.0;
    let values = markets
        .iter()
        .map(|m| json!({"symbol": m.symbol, "price": m.price_str(m.price_at(now_s))}))
        .collect();
    one_or_list(values, single)
}

async fn avg_price(State(state): Shared, Query(params): Params) -> ApiResult {
    let market = state.market(required(&params, "symbol")?)?;
    let now = now_ms();
    let c = market
        .candle(now / 1000 - 300, 300, 60, now as f64 / 1000.0)
        .expect("the window starts in the past");
    ok(json!({
        "mins": 5,
        "price": market.price_str(c.quote_volume / c.volume),
        "closeTime": now,
    }))
}

async fn depth(State(state): Shared, Query(params): Params) -> ApiResult {
    let market = state.market(required(&params, "symbol")?)?;
    let limit = int_param(&params, "limit")?.unwrap_or(100).clamp(1, 5000) as usize;
    let now = now_ms();
    let now_s = now as f64 / 1000.0;
    let (bid, ask) = market.book_top(now_s, &state.options);
    // Levels half a basis point apart (at least one tick), each worth about QUOTE_PER_LEVEL.
    let gap = market.round_price(bid * 0.00005).max(market.tick);
    let second = now / 1000;
    let level = |side: u64, i: usize, price: f64| -> Value {
        let size =
            (1.0 + 0.3 * i as f64) * (0.6 + 0.8 * market.hashed(second * 64 + i as i64, 10 + side));
        json!([
            market.price_str(price),
            market.amount_str(QUOTE_PER_LEVEL * size / price)
        ])
    };
    let bids: Vec<Value> = (0..limit)
        .map(|i| (i, bid - gap * i as f64))
        .take_while(|&(_, p)| p > 0.0)
        .map(|(i, p)| level(0, i, p))
        .collect();
    let asks: Vec<Value> = (0..limit)
        .map(|i| level(1, i, ask + gap * i as f64))
        .collect();
    ok(json!({"lastUpdateId": now, "bids": bids, "asks": asks}))
}

/// One synthetic trade.
struct Trade {
    id: i64,
    ms: i64,
    price: f64,
    qty: f64,
    buyer_maker: bool,
}

/// Synthetic trades, one per second (its id is the Unix second), for aggTrades and trades.
fn synthetic_trades<'a>(
    state: &'a MockState,
    params: &HashMap<String, String>,
) -> ApiResult<(Vec<Trade>, &'a Market)> {
    let market = state.market(required(params, "symbol")?)?;
    let limit = int_param(params, "limit")?.unwrap_or(500).clamp(1, 1000);
    let now = now_ms();
    let now_sec = now / 1000;
    let from_id = int_param(params, "fromId")?;
    let start = int_param(params, "startTime")?;
    let end = int_param(params, "endTime")?;
    let (first, last) = match (from_id, start, end) {
        (Some(id), _, _) => (id, (id + limit - 1).min(now_sec)),
        (None, Some(s), e) => {
            let last = e.map_or(now_sec, |e| (e / 1000).min(now_sec));
            (s.div_euclid(1000), last.min(s.div_euclid(1000) + limit - 1))
        }
        (None, None, Some(e)) => {
            let last = (e / 1000).min(now_sec);
            (last - limit + 1, last)
        }
        (None, None, None) => (now_sec - limit + 1, now_sec),
    };
    let trades = (first..=last)
        .map(|id| {
            let ms = id * 1000 + (market.hashed(id, 6) * 999.0) as i64;
            let price = market.price_at(ms as f64 / 1000.0);
            let qty = 200.0 / price * (0.2 + 1.6 * market.hashed(id, 7));
            let buyer_maker = market.hashed(id, 8) < 0.5;
            Trade {
                id,
                ms,
                price,
                qty,
                buyer_maker,
            }
        })
        .collect();
    Ok((trades, market))
}

async fn agg_trades(State(state): Shared, Query(params): Params) -> ApiResult {
    let (trades, m) = synthetic_trades(&state, &params)?;
    ok(Value::Array(
        trades
            .into_iter()
            .map(|t| {
                json!({"a": t.id, "p": m.price_str(t.price), "q": m.amount_str(t.qty),
                       "f": t.id, "l": t.id, "T": t.ms, "m": t.buyer_maker, "M": true})
            })
            .collect(),
    ))
}

async fn trades(State(state): Shared, Query(params): Params) -> ApiResult {
    let (trades, m) = synthetic_trades(&state, &params)?;
    ok(Value::Array(
        trades
            .into_iter()
            .map(|t| {
                json!({"id": t.id, "price": m.price_str(t.price), "qty": m.amount_str(t.qty),
                       "quoteQty": format!("{:.8}", m.round_price(t.price) * m.round_amount(t.qty)),
                       "time": t.ms, "isBuyerMaker": t.buyer_maker, "isBestMatch": true})
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_deterministic_continuous_and_near_the_base() {
        let a = Market::new("BTC/USDT", 1).unwrap();
        let b = Market::new("BTC/USDT", 1).unwrap();
        let t = 1_795_307_416.0;
        assert_eq!(a.price_at(t), b.price_at(t));
        let p = a.price_at(t);
        assert!((p / 65_000.0 - 1.0).abs() < 0.25, "{p}");
        // Continuous: one second moves the price by far less than the instant-fill cross.
        let step = (a.price_at(t + 1.0) / p - 1.0).abs();
        assert!(step < 0.0005, "{step}");
        // Other pairs differ.
        let eth = Market::new("ETH/USDT", 1).unwrap();
        assert!((eth.price_at(t) / 3_500.0 - 1.0).abs() < 0.25);
    }

    #[test]
    fn candles_aggregate_consistently() {
        let m = Market::new("ETH/USDT", 7).unwrap();
        let now = 1_795_307_416.5;
        let start = 1_795_306_800; // 5m aligned, in the past
        let five = m.candle(start, 300, 60, now).unwrap();
        let ones: Vec<Candle> = (0..5)
            .map(|i| m.candle(start + 60 * i, 60, 60, now).unwrap())
            .collect();
        assert_eq!(five.open, ones[0].open);
        assert_eq!(five.close, ones[4].close);
        let high = ones.iter().map(|c| c.high).fold(f64::MIN, f64::max);
        let low = ones.iter().map(|c| c.low).fold(f64::MAX, f64::min);
        assert_eq!(five.high, high);
        assert_eq!(five.low, low);
        for c in &ones {
            assert!(c.low <= c.open.min(c.close) && c.high >= c.open.max(c.close));
        }
        // The candle that contains `now` closes at the price of `now`.
        let current = m.candle(1_795_307_400, 60, 60, now).unwrap();
        assert_eq!(current.close, m.price_at(now));
        assert!(m.candle(1_795_307_460, 60, 60, now).is_none());
    }

    #[test]
    fn precision_follows_the_price() {
        assert_eq!(tick_for(65_000.0), 0.01);
        assert_eq!(step_for(65_000.0), 1e-5);
        assert_eq!(step_for(3_500.0), 1e-4);
        assert_eq!(step_for(600.0), 1e-3);
        assert_eq!(step_for(0.15), 1.0);
        assert!((tick_for(0.15) - 1e-6).abs() < 1e-12);
    }

    #[test]
    fn books_are_normal_or_crossed() {
        let m = Market::new("BTC/USDT", 3).unwrap();
        let t = 1_795_307_416.0;
        let normal = MockOptions::default();
        let (bid, ask) = m.book_top(t, &normal);
        assert!(bid < ask);
        let crossed = MockOptions {
            instant_fills: true,
            ..MockOptions::default()
        };
        let (bid, ask) = m.book_top(t, &crossed);
        assert!(bid > ask);
    }
}
