//! Market data that stays fresh: the real Freqtrade's `download-data` brings the market
//! directory's candle files up to date (the `data_refresh` job, `market.refresh`).
//!
//! - **Exchange**: the `exchange` section of the overrides the bots use (`[freqtrade]
//!   config_overrides`, else `<data>/freqtrade/overrides.json`), over `{"name":
//!   "binance"}` (the seed bots' exchange); `[market.refresh] exchange` names another.
//! - **Layout**: Freqtrade's own (`ETH_BTC-5m.feather`), as the shipped files.
//! - **Incremental**: a pair's feather file whose newest candle is within the history
//!   asked for (`days`) is handed to Freqtrade, which fetches only the candles after it;
//!   when every file is continued, Freqtrade is asked for the candles since the oldest
//!   file's newest (`--timerange`), not for `days` of them.
//!   A file older than that (the shipped 2018 candles) or in another format is
//!   downloaded anew (`days` of history) and replaced: continuing it would fetch years.
//! - **Never half a file**: Freqtrade writes into a staging directory inside the market
//!   directory (`.memd-refresh/`, same file system); each finished file is fsynced and
//!   renamed over the old one, so a reader sees the old file or the new one.
//! - **Every failure named**: Freqtrade's log is read as it runs (progress, pair by pair)
//!   and afterwards: a pair and timeframe that the exchange failed (its error), that
//!   Freqtrade left out (not a market of the exchange), or that got no candles is
//!   reported with the reason, and its file is left as it was.

use super::candles::{self, Candle, Timeframe};
use crate::freqtrade;
use chrono::{DateTime, Utc};
use mem_protocol::market::{RefreshReport, RefreshStatus, RefreshedPair};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Days of history a pair gets when it has no fresh candles, by default.
pub const DEFAULT_DAYS: u32 = 30;
/// How long a `download-data` run may take before it is stopped, by default.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;
/// The staging directory, inside the market directory.
pub const STAGING: &str = ".memd-refresh";

/// `[market.refresh]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshConfig {
    /// Default: the reference pair, the training pairs, every deployed bot's pairs.
    #[serde(default)]
    pub pairs: Vec<String>,
    /// Default: `[market] timeframe` and `conditions_timeframe`.
    #[serde(default)]
    pub timeframes: Vec<String>,
    /// History of a pair without fresh candles (default 30).
    pub days: Option<u32>,
    /// The exchange (default: the overrides' `exchange.name`, else `binance`).
    pub exchange: Option<String>,
    /// A run taking longer is stopped and fails (default 600).
    pub timeout_secs: Option<u64>,
}

impl RefreshConfig {
    /// Checks every value; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        for t in &self.timeframes {
            t.parse::<Timeframe>()
                .map_err(|e| format!("[market.refresh] timeframes: {e}"))?;
        }
        for p in &self.pairs {
            check_pair(p).map_err(|e| format!("[market.refresh] pairs: {e}"))?;
        }
        if self.days == Some(0) {
            return Err("[market.refresh] days must be 1 or more".into());
        }
        if self.timeout_secs == Some(0) {
            return Err("[market.refresh] timeout_secs must be 1 or more".into());
        }
        Ok(())
    }
}

/// A spot pair as Freqtrade names it: `BASE/QUOTE`.
pub fn check_pair(pair: &str) -> Result<(), String> {
    let ok = pair.split_once('/').is_some_and(|(b, q)| {
        !b.is_empty()
            && !q.is_empty()
            && !q.contains(['/', ':'])
            && pair.chars().all(|c| c.is_ascii_alphanumeric() || c == '/')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{pair:?} is not a spot pair like ETH/USDT (futures are not refreshed)"
        ))
    }
}

/// What one run refreshes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub pairs: Vec<String>,
    pub timeframes: Vec<Timeframe>,
    pub days: u32,
}

/// A run that could not refresh anything (no Freqtrade, a bad overrides file, Freqtrade
/// stopping on its own error), or one that failed for some pairs: the report says which.
#[derive(Debug)]
pub enum RefreshError {
    Setup(String),
    Pairs(Box<RefreshReport>),
}

/// Runs `download-data` for the market directory.
#[derive(Debug, Clone)]
pub struct Refresher {
    data_dir: PathBuf,
    market_dir: PathBuf,
    freqtrade_bin: Option<PathBuf>,
    overrides: Option<PathBuf>,
    pairs: Vec<String>,
    timeframes: Vec<Timeframe>,
    days: u32,
    exchange: Option<String>,
    timeout: Duration,
}

/// A file of the market directory before the run.
struct Before {
    candles: usize,
    newest: Option<i64>,
    /// Handed to Freqtrade to continue (else downloaded anew).
    continued: bool,
}

impl Refresher {
    /// `config` checked ([`RefreshConfig::check`]); `default_timeframes` when it names
    /// none.
    pub fn new(
        data_dir: &Path,
        market_dir: &Path,
        freqtrade: &crate::config::FreqtradeConfig,
        config: &RefreshConfig,
        default_timeframes: &[Timeframe],
    ) -> anyhow::Result<Refresher> {
        config.check().map_err(anyhow::Error::msg)?;
        let mut timeframes: Vec<Timeframe> = config
            .timeframes
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect();
        if timeframes.is_empty() {
            timeframes = default_timeframes.to_vec();
        }
        timeframes.sort();
        timeframes.dedup();
        Ok(Refresher {
            data_dir: data_dir.to_path_buf(),
            market_dir: market_dir.to_path_buf(),
            freqtrade_bin: freqtrade.bin.clone(),
            overrides: freqtrade.config_overrides.clone(),
            pairs: config.pairs.clone(),
            timeframes,
            days: config.days.unwrap_or(DEFAULT_DAYS),
            exchange: config.exchange.clone(),
            timeout: Duration::from_secs(config.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)),
        })
    }

    /// `[market.refresh] pairs` (empty: the defaults are the scheduler's to gather).
    pub fn configured_pairs(&self) -> &[String] {
        &self.pairs
    }

    pub fn timeframes(&self) -> &[Timeframe] {
        &self.timeframes
    }

    pub fn days(&self) -> u32 {
        self.days
    }

    pub fn market_dir(&self) -> &Path {
        &self.market_dir
    }

    /// The `exchange` section for Freqtrade: the overrides' over `{"name": "binance"}`.
    fn exchange_section(&self) -> Result<Value, String> {
        let mut section = json!({"name": "binance"});
        let overrides = freqtrade::read_overrides(self.overrides.as_deref(), &self.data_dir)?;
        if let Some(exchange) = overrides.as_ref().and_then(|o| o.get("exchange")) {
            freqtrade::deep_merge(&mut section, exchange);
        }
        if let Some(name) = &self.exchange {
            section["name"] = json!(name);
        }
        // Freqtrade's download takes its pairs from the command line.
        section["pair_whitelist"] = json!([]);
        section["pair_blacklist"] = json!([]);
        Ok(section)
    }

    /// Refreshes the plan's files (blocking: call it on a blocking thread). `progress`
    /// hears (done, total, what).
    pub fn run(
        &self,
        plan: &Plan,
        progress: &dyn Fn(u64, u64, String),
    ) -> Result<RefreshReport, RefreshError> {
        let started = Instant::now();
        let setup = RefreshError::Setup;
        let bin =
            freqtrade::find_binary(self.freqtrade_bin.as_deref(), &self.data_dir).map_err(setup)?;
        let exchange = self.exchange_section().map_err(setup)?;
        let staging = self.market_dir.join(STAGING);
        let result = self.run_in(&staging, &bin, &exchange, plan, progress, started);
        if let Err(e) = std::fs::remove_dir_all(&staging) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %staging.display(), error = %e, "cannot remove the refresh's staging directory");
            }
        }
        result
    }

    fn run_in(
        &self,
        staging: &Path,
        bin: &Path,
        exchange: &Value,
        plan: &Plan,
        progress: &dyn Fn(u64, u64, String),
        started: Instant,
    ) -> Result<RefreshReport, RefreshError> {
        let setup = |e: std::io::Error| {
            RefreshError::Setup(format!("staging directory {}: {e}", staging.display()))
        };
        let _ = std::fs::remove_dir_all(staging); // a crashed run's leftovers
        let data = staging.join("data");
        std::fs::create_dir_all(&data).map_err(setup)?;
        std::fs::create_dir_all(staging.join("user_data")).map_err(setup)?;
        let total = (plan.pairs.len() * plan.timeframes.len()) as u64;
        let mut before = BTreeMap::new();
        for pair in &plan.pairs {
            for &tf in &plan.timeframes {
                let b = self.stage(pair, tf, plan.days, &data).map_err(setup)?;
                before.insert((pair.clone(), tf), b);
            }
        }
        // Every file continued: only the candles since the oldest newest one are asked
        // for (Freqtrade's parallel pass would fetch `days` of each pair again).
        let window = match before
            .values()
            .map(|b| b.newest.filter(|_| b.continued))
            .collect::<Option<Vec<i64>>>()
        {
            Some(newest) if !newest.is_empty() => {
                let longest = plan
                    .timeframes
                    .iter()
                    .map(|t| t.millis())
                    .max()
                    .unwrap_or(0);
                Window::Since((newest.iter().min().copied().unwrap_or(0) - longest) / 1000)
            }
            _ => Window::Days(plan.days),
        };
        let config = json!({
            "exchange": exchange,
            "stake_currency": "USDT",
            "dry_run": true,
            "trading_mode": "spot",
            "dataformat_ohlcv": "feather",
        });
        let config_path = staging.join("config.json");
        crate::datadir::write_atomic(
            &config_path,
            &serde_json::to_vec_pretty(&config).expect("JSON serializes"),
            0o600,
        )
        .map_err(|e| RefreshError::Setup(e.to_string()))?;
        progress(0, total, format!("starting Freqtrade ({})", bin.display()));
        let ft_started = Instant::now();
        let log = run_freqtrade(
            bin,
            staging,
            plan,
            window,
            self.timeout,
            &|done, message| progress(done.min(total), total, message),
        )?;
        let freqtrade_seconds = ft_started.elapsed().as_secs_f64();
        let exchange_name = exchange["name"]
            .as_str()
            .unwrap_or("the exchange")
            .to_string();
        let mut results = Vec::new();
        for pair in &plan.pairs {
            for &tf in &plan.timeframes {
                let b = &before[&(pair.clone(), tf)];
                results.push(self.place(pair, tf, b, &data, &log, &exchange_name));
            }
        }
        if let Err(e) = sync_dir(&self.market_dir) {
            tracing::warn!(error = %e, "cannot sync the market directory");
        }
        let report = RefreshReport {
            exchange: exchange_name,
            market_dir: self.market_dir.display().to_string(),
            days: plan.days,
            pairs: plan.pairs.clone(),
            timeframes: plan.timeframes.iter().map(|t| t.to_string()).collect(),
            results,
            seconds: started.elapsed().as_secs_f64(),
            freqtrade_seconds,
            freqtrade_startup_seconds: log.startup_seconds,
        };
        progress(total, total, "done".into());
        if report
            .results
            .iter()
            .any(|r| r.status == RefreshStatus::Failed)
        {
            Err(RefreshError::Pairs(Box::new(report)))
        } else {
            Ok(report)
        }
    }

    /// Looks at a pair's file before the run; a feather file recent enough is copied
    /// into the staging directory for Freqtrade to continue.
    fn stage(&self, pair: &str, tf: Timeframe, days: u32, data: &Path) -> std::io::Result<Before> {
        let Ok(path) = candles::find_pair_file(&self.market_dir, pair, tf) else {
            return Ok(Before {
                candles: 0,
                newest: None,
                continued: false,
            });
        };
        let read: Vec<Candle> = candles::read_file(&path).unwrap_or_default();
        let newest = read.iter().map(|c| c.ts_ms).max();
        let window_start = Utc::now().timestamp_millis() - i64::from(days) * 86_400_000;
        let feather = path.extension().is_some_and(|e| e == "feather");
        let continued = feather && newest.is_some_and(|n| n >= window_start);
        if continued {
            std::fs::copy(&path, data.join(staged_name(pair, tf)))?;
        }
        Ok(Before {
            candles: read.len(),
            newest,
            continued,
        })
    }

    /// Judges one pair and timeframe after the run; puts a good file in place.
    fn place(
        &self,
        pair: &str,
        tf: Timeframe,
        before: &Before,
        data: &Path,
        log: &LogReading,
        exchange: &str,
    ) -> RefreshedPair {
        let name = staged_name(pair, tf);
        let mut result = RefreshedPair {
            pair: pair.to_string(),
            timeframe: tf.to_string(),
            status: RefreshStatus::Failed,
            added: 0,
            candles: before.candles as u64,
            newest: before.newest.and_then(DateTime::from_timestamp_millis),
            file: Some(self.market_dir.join(&name).display().to_string()),
            error: None,
        };
        let staged = data.join(&name);
        let read = candles::read_file(&staged);
        let failure = match (log.failure(pair, tf, exchange), &read) {
            (Some(why), _) => Some(why),
            (None, Err(candles::CandleError::Io { .. })) => Some(format!(
                "Freqtrade wrote no candles for it{}",
                log.last_error
                    .as_ref()
                    .map(|e| format!(" (its last error: {e})"))
                    .unwrap_or_default()
            )),
            (None, Err(e)) => Some(format!("the file Freqtrade wrote cannot be read: {e}")),
            (None, Ok(c)) if c.is_empty() => Some(format!("{exchange} returned no candles")),
            (None, Ok(_)) => None,
        };
        if let Some(why) = failure {
            result.error = Some(why);
            return result;
        }
        let after = read.unwrap_or_default();
        let target = self.market_dir.join(&name);
        if let Err(e) = sync_file(&staged).and_then(|()| std::fs::rename(&staged, &target)) {
            result.error = Some(format!("cannot move the new file into place: {e}"));
            return result;
        }
        let from = before.newest.unwrap_or(i64::MIN);
        result.status = if before.continued {
            RefreshStatus::Updated
        } else {
            RefreshStatus::Downloaded
        };
        result.added = after.iter().filter(|c| c.ts_ms > from).count() as u64;
        result.candles = after.len() as u64;
        result.newest = after
            .iter()
            .map(|c| c.ts_ms)
            .max()
            .and_then(DateTime::from_timestamp_millis);
        result
    }
}

/// Freqtrade's file name of a spot pair's candles.
fn staged_name(pair: &str, tf: Timeframe) -> String {
    format!("{}-{tf}.feather", candles::pair_to_filename(pair))
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// What Freqtrade is asked to download: `days` of history (a pair with no file gets
/// them), or the candles since a time (epoch seconds; every file is continued).
#[derive(Debug, Clone, Copy)]
enum Window {
    Days(u32),
    Since(i64),
}

/// Runs `freqtrade download-data` into `staging/data`, reading its log as it goes;
/// answers what the log said. Stops it (its process group) past `timeout`.
fn run_freqtrade(
    bin: &Path,
    staging: &Path,
    plan: &Plan,
    window: Window,
    timeout: Duration,
    progress: &dyn Fn(u64, String),
) -> Result<LogReading, RefreshError> {
    use std::os::unix::process::CommandExt;
    let log_path = staging.join("download.log");
    let console = std::fs::File::create(staging.join("console.log"))
        .map_err(|e| RefreshError::Setup(format!("{}: {e}", staging.display())))?;
    let mut command = Command::new(bin);
    command
        .arg("download-data")
        .arg("--config")
        .arg(staging.join("config.json"))
        .arg("--userdir")
        .arg(staging.join("user_data"))
        .arg("--datadir")
        .arg(staging.join("data"))
        .arg("--data-format-ohlcv")
        .arg("feather")
        .args(match window {
            Window::Days(days) => ["--days".to_string(), days.to_string()],
            Window::Since(secs) => ["--timerange".to_string(), format!("{secs}-")],
        })
        .arg("--logfile")
        .arg(&log_path)
        .arg("--pairs")
        .args(&plan.pairs)
        .arg("--timeframes")
        .args(plan.timeframes.iter().map(|t| t.as_str()))
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", staging)
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(
            console
                .try_clone()
                .map_err(|e| RefreshError::Setup(e.to_string()))?,
        )
        .stderr(console)
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| RefreshError::Setup(format!("cannot run {}: {e}", bin.display())))?;
    let started = Instant::now();
    let mut reading = LogReading::default();
    let mut log: Option<BufReader<std::fs::File>> = None;
    let mut line = String::new();
    let status = loop {
        let exited = child.try_wait().ok().flatten();
        if log.is_none() {
            log = std::fs::File::open(&log_path).ok().map(BufReader::new);
        }
        if let Some(reader) = log.as_mut() {
            // Whole lines only: a line still being written is read at the next look.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if !line.ends_with('\n') && exited.is_none() {
                    break;
                }
                if let Some(message) = reading.feed(line.trim_end()) {
                    progress(reading.done.len() as u64, message);
                }
                if reading.about.is_some() && reading.startup_seconds.is_none() {
                    reading.startup_seconds = Some(started.elapsed().as_secs_f64());
                }
                line.clear();
            }
        }
        if let Some(status) = exited {
            break status;
        }
        if started.elapsed() > timeout {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(RefreshError::Setup(format!(
                "freqtrade download-data took longer than {} s ([market.refresh] timeout_secs) and was stopped",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        let said = reading
            .last_error
            .clone()
            .or_else(|| last_line(&staging.join("console.log")))
            .unwrap_or_else(|| "no error in its log".into());
        return Err(RefreshError::Setup(format!(
            "freqtrade download-data failed ({status}): {said}"
        )));
    }
    Ok(reading)
}

/// The last non-empty line of a file.
fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
}

/// What Freqtrade's log said, line by line.
#[derive(Debug, Default)]
pub struct LogReading {
    /// The pairs Freqtrade kept (those of the exchange), once it said so.
    pub about: Option<Vec<String>>,
    /// (pair, timeframe) finished.
    pub done: BTreeSet<(String, String)>,
    /// (pair, timeframe) -> the exchange's error, since its download started.
    pub errors: BTreeMap<(String, String), String>,
    /// A pair Freqtrade gave up on as a whole, and why.
    pub pair_errors: BTreeMap<String, String>,
    /// The last ERROR line's message.
    pub last_error: Option<String>,
    /// Seconds from Freqtrade's spawn to its list of pairs to download (its start-up).
    pub startup_seconds: Option<f64>,
    in_problem_list: bool,
}

/// The text after Freqtrade's `date - logger - LEVEL - ` prefix, and the level.
fn message_of(line: &str) -> Option<(&str, &str)> {
    let mut parts = line.splitn(4, " - ");
    let (_date, _logger, level, message) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    matches!(level, "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL").then_some((level, message))
}

/// `Could not fetch historical candle (OHLCV) data for ETH/USDT, 5m, spot due to X.
/// Message: binance {...}` -> (pair, timeframe, the exchange's error).
fn ohlcv_error(text: &str) -> Option<(String, String, String)> {
    let rest = text
        .split_once("Could not fetch historical candle (OHLCV) data for ")?
        .1;
    let (pair, rest) = rest.split_once(", ")?;
    let (tf, rest) = rest.split_once(", ")?;
    let mut error = rest
        .split_once("Message: ")
        .map_or(rest, |(_, m)| m)
        .to_string();
    for end in ["\". Giving up.", "')", "\")"] {
        if let Some(cut) = error.rfind(end) {
            error.truncate(cut);
        }
    }
    Some((pair.to_string(), tf.to_string(), error))
}

impl LogReading {
    /// Reads one line; answers what to show as progress, if anything.
    pub fn feed(&mut self, line: &str) -> Option<String> {
        let Some((level, text)) = message_of(line) else {
            if self.in_problem_list {
                if let Some((pair, why)) = line.trim().split_once(": ") {
                    self.pair_errors.insert(pair.to_string(), why.to_string());
                }
            }
            return None;
        };
        self.in_problem_list = false;
        if matches!(level, "ERROR" | "CRITICAL") {
            self.last_error = Some(text.to_string());
        }
        if let Some(list) = text.strip_prefix("About to download pairs: [") {
            let list = list.split(']').next().unwrap_or("");
            self.about = Some(
                list.split(',')
                    .map(|p| p.trim().trim_matches(['\'', '"']).to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            );
            return Some("Freqtrade loaded the exchange's markets".into());
        }
        if let Some(rest) = text.strip_prefix("Download history data for \"") {
            let (pair, rest) = rest.split_once("\", ")?;
            let tf = rest.split(',').next()?.to_string();
            self.errors.remove(&(pair.to_string(), tf.clone()));
            return Some(format!("downloading {pair} {tf}"));
        }
        if let Some(rest) = text.strip_prefix("Downloaded data for ") {
            let mut parts = rest.splitn(3, ", ");
            let (pair, tf) = (parts.next()?.to_string(), parts.next()?.to_string());
            let length = rest
                .split("with length ")
                .nth(1)
                .map(|l| {
                    l.trim_end_matches(['.', ' '])
                        .split('.')
                        .next()
                        .unwrap_or("")
                })
                .unwrap_or("?");
            self.done.insert((pair.clone(), tf.clone()));
            return Some(format!("{pair} {tf}: {length} candles fetched"));
        }
        if text.contains("Could not fetch historical candle")
            && (text.contains("Giving up") || text.contains("Async code raised"))
        {
            let (pair, tf, error) = ohlcv_error(text)?;
            self.errors.insert((pair, tf), error);
            return None;
        }
        if let Some(rest) = text.strip_prefix("Failed to download history data for pair: \"") {
            let (pair, rest) = rest.split_once("\", timeframe: ")?;
            let tf = rest.trim_end_matches('.').to_string();
            self.errors
                .entry((pair.to_string(), tf))
                .or_insert_with(|| "Freqtrade could not download it".into());
            return None;
        }
        if text.starts_with("Encountered a problem downloading the following pairs") {
            self.in_problem_list = true;
        }
        None
    }

    /// Why `pair` at `tf` failed, if the log says it did.
    fn failure(&self, pair: &str, tf: Timeframe, exchange: &str) -> Option<String> {
        if let Some(e) = self.errors.get(&(pair.to_string(), tf.to_string())) {
            return Some(e.clone());
        }
        if let Some(e) = self.pair_errors.get(pair) {
            return Some(e.clone());
        }
        match &self.about {
            Some(kept) if !kept.iter().any(|p| p == pair) => Some(format!(
                "{pair} is not a market of {exchange} (Freqtrade left it out): check its spelling and quote currency"
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"2026-12-05 05:33:22,349 - freqtrade.data.history.history_utils - INFO - About to download pairs: ['ETH/USDT', 'BTC/USDT'], intervals: ['5m', '1h'] to /tmp/d
2026-12-05 05:33:22,600 - freqtrade.exchange.common - WARNING - _async_get_candle_history() returned exception: "Could not fetch historical candle (OHLCV) data for ETH/USDT, 5m, spot due to OperationFailed. Message: binance {"code":-1000,"msg":"mock: the klines of ETH/USDT fail on purpose"}". Retrying still for 4 times.
2026-12-05 05:33:22,726 - freqtrade.exchange.common - WARNING - _async_get_candle_history() returned exception: "Could not fetch historical candle (OHLCV) data for ETH/USDT, 5m, spot due to OperationFailed. Message: binance {"code":-1000,"msg":"mock: the klines of ETH/USDT fail on purpose"}". Giving up.
2026-12-05 05:33:22,730 - freqtrade.exchange.exchange - WARNING - Async code raised an exception: TemporaryError('Could not fetch historical candle (OHLCV) data for BTC/USDT, 5m, spot due to OperationFailed. Message: binance {"code":-1000,"msg":"a passing hiccup"}')
2026-12-05 05:33:22,785 - freqtrade.data.history.history_utils - INFO - Download history data for "BTC/USDT", 5m, spot and store in /tmp/d. From 2026-12-03T00:00:00 to now
2026-12-05 05:33:22,786 - freqtrade.data.history.history_utils - INFO - Downloaded data for BTC/USDT, 5m, spot with length 642.
2026-12-05 05:33:22,904 - freqtrade.data.history.history_utils - ERROR - Failed to download history data for pair: "ETH/USDT", timeframe: 1h.
Traceback (most recent call last):
  File "x.py", line 1, in y
2026-12-05 05:33:23,445 - freqtrade.data.history.history_utils - WARNING - Encountered a problem downloading the following pairs from Binance: 
XRP/USDT: Pair not available on exchange.
2026-12-05 05:33:23,446 - freqtrade - INFO - done"#;

    #[test]
    fn the_log_names_each_failure_and_forgets_a_retried_one() {
        let mut r = LogReading::default();
        let shown: Vec<String> = LOG.lines().filter_map(|l| r.feed(l)).collect();
        assert_eq!(
            shown,
            [
                "Freqtrade loaded the exchange's markets",
                "downloading BTC/USDT 5m",
                "BTC/USDT 5m: 642 candles fetched"
            ]
        );
        assert_eq!(
            r.failure("ETH/USDT", Timeframe::M5, "binance").as_deref(),
            Some(r#"binance {"code":-1000,"msg":"mock: the klines of ETH/USDT fail on purpose"}"#)
        );
        // The parallel pass failed BTC/USDT, its own download then succeeded.
        assert_eq!(r.failure("BTC/USDT", Timeframe::M5, "binance"), None);
        assert_eq!(
            r.failure("ETH/USDT", Timeframe::H1, "binance").as_deref(),
            Some("Freqtrade could not download it")
        );
        assert_eq!(
            r.failure("XRP/USDT", Timeframe::M5, "binance").as_deref(),
            Some("Pair not available on exchange.")
        );
        let left_out = r.failure("DOGE/USDT", Timeframe::M5, "binance").unwrap();
        assert!(left_out.contains("not a market of binance"), "{left_out}");
        assert_eq!(
            r.last_error.as_deref(),
            Some(r#"Failed to download history data for pair: "ETH/USDT", timeframe: 1h."#)
        );
        assert_eq!(r.done.len(), 1);
    }

    #[test]
    fn pairs_and_settings_are_checked() {
        assert!(check_pair("ETH/USDT").is_ok());
        for bad in ["ETHUSDT", "ETH/", "XRP/USDT:USDT", "../x/y", "A/B C"] {
            assert!(check_pair(bad).is_err(), "{bad}");
        }
        let c: RefreshConfig = toml::from_str("timeframes = [\"5x\"]").unwrap();
        assert!(
            c.check()
                .unwrap_err()
                .contains("[market.refresh] timeframes")
        );
        let c: RefreshConfig = toml::from_str("days = 0").unwrap();
        assert!(c.check().unwrap_err().contains("days"));
        assert!(toml::from_str::<RefreshConfig>("dayz = 3").is_err());
    }

    #[test]
    fn the_exchange_comes_from_the_bots_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let ft = crate::config::FreqtradeConfig::default();
        let r = Refresher::new(
            dir.path(),
            &dir.path().join("market"),
            &ft,
            &RefreshConfig::default(),
            &[Timeframe::M5, Timeframe::H1],
        )
        .unwrap();
        assert_eq!(r.exchange_section().unwrap()["name"], "binance");
        assert_eq!((r.days(), r.timeframes().len()), (30, 2));
        std::fs::create_dir_all(dir.path().join("freqtrade")).unwrap();
        std::fs::write(
            dir.path().join(freqtrade::DEFAULT_OVERRIDES),
            r#"{"exchange": {"ccxt_config": {"urls": {"api": {"public": "http://127.0.0.1:9/api/v3"}}}, "pair_whitelist": ["X/Y"]}}"#,
        )
        .unwrap();
        let section = r.exchange_section().unwrap();
        assert_eq!(section["name"], "binance");
        assert_eq!(
            section["ccxt_config"]["urls"]["api"]["public"],
            "http://127.0.0.1:9/api/v3"
        );
        assert_eq!(section["pair_whitelist"], json!([]));
    }
}
