//! A Freqtrade strategy measured by the real Freqtrade: `freqtrade backtesting` over the
//! market data, `freqtrade hyperopt` on a walk-forward's in-sample ranges, and their
//! figures read from Freqtrade's own result files.
//!
//! This module renders and reads; it spawns nothing. The job queue runs the commands it
//! builds ([`backtest_command`], [`hyperopt_command`]) in their own process group, their
//! output into the job's log, then reads the results ([`read_backtest_result`],
//! [`read_hyperopt_result`]) and, when a run failed, the log's last lines
//! ([`last_log_lines`]). A run lives in its job's work directory:
//!
//! ```text
//! <work>/config.json     the config Freqtrade runs with (0600), from [`render_config`]
//! <work>/strategy/       a copy of the strategy file and of the sibling modules it imports
//!                        (memd_mixin.py); the parameter file of chosen parameters
//! <work>/user_data/      Freqtrade's user directory; hyperopt writes its epochs under
//!                        hyperopt_results/ (`*.fthypt`, `.last_result.json`)
//! <work>/results/        backtesting's result: backtest-result-<time>.zip (the JSON of
//!                        its figures and trades, the config, the strategy), its
//!                        .meta.json, and .last_result.json naming the newest
//! ```
//!
//! Invariants:
//! - The live strategy directory is never written: Freqtrade runs on a copy, so neither
//!   a hyperopt's parameter file nor Python's bytecode lands beside the file a bot loads.
//! - The config is the bots' own (the base config, the operator's overrides, the
//!   registry's config-key parameters, merged as [`crate::freqtrade`] merges them for a
//!   bot) minus what a backtest must not have: no `api_server`, no `memd` section (so the
//!   memd mixin stays out of the way), no telegram, no exchange keys. `config_hash` is of
//!   what is written, so it excludes secrets by construction.
//! - A result is read from this run's files only: [`render_config`] empties the result
//!   directories first. Freqtrade exits 0 on some errors (a bad config), so the result
//!   file, not the exit code, says whether a run succeeded.
//! - Figures are Freqtrade's, as its result file reports them; only the equity curve
//!   (from its trades) is memd's.

use crate::freqtrade::{apply_config_parameters, config_parameters, deep_merge};
use crate::market::candles::{self, Timeframe};
use chrono::{DateTime, Utc};
use mem_protocol::backtest::{BacktestFigures, EquityPoint};
use mem_protocol::deploy_spec::FreqtradeSpec;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the strategy's copy goes, under the work directory (`--strategy-path`).
pub const STRATEGY_DIR: &str = "strategy";
/// Freqtrade's user directory, under the work directory (`--userdir`).
pub const USER_DIR: &str = "user_data";
/// Backtesting's results, under the work directory (`--backtest-directory`).
pub const RESULTS_DIR: &str = "results";
/// The config, under the work directory.
pub const CONFIG_FILE: &str = "config.json";
/// The file Freqtrade names its newest result in (backtesting's and hyperopt's).
pub const LAST_RESULT: &str = ".last_result.json";
/// Hyperopt's results, under the user directory.
pub const HYPEROPT_RESULTS: &str = "hyperopt_results";

/// Top-level sections a backtest never needs and that hold secrets or reach out: the
/// bot's API, the memd mixin's socket and credential, chat and webhook notifications, a
/// producer's websocket.
const LEFT_OUT: [&str; 8] = [
    "api_server",
    "memd",
    "telegram",
    "discord",
    "webhook",
    "external_message_consumer",
    "db_url",
    "coingecko",
];

/// The exchange keys Freqtrade itself treats as secrets (its `_SENSITIVE_KEYS`), removed
/// from the exchange section and its ccxt configs: backtesting calls only public
/// endpoints.
const EXCHANGE_SECRETS: [&str; 12] = [
    "key",
    "api_key",
    "apiKey",
    "secret",
    "password",
    "uid",
    "account_id",
    "accountId",
    "wallet_address",
    "walletAddress",
    "private_key",
    "privateKey",
];

/// What one Freqtrade run measures, and with what. [`FreqtradeSetup::for_strategy`]
/// fills it as the bots would run the strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct FreqtradeSetup {
    /// The `freqtrade` binary ([`crate::freqtrade::find_binary`]).
    pub bin: PathBuf,
    /// The job's own directory; nothing else writes into it.
    pub work_dir: PathBuf,
    /// The strategy's class (`--strategy`).
    pub strategy_class: String,
    /// The strategy's source, where the bots load it from ([`find_strategy_file`]).
    pub strategy_file: PathBuf,
    /// The candles, in Freqtrade's layout (`<data>/market`, `ETH_USDT-5m.feather`).
    pub market_dir: PathBuf,
    /// `5m`: the config's `timeframe`.
    pub timeframe: String,
    /// The config's static whitelist.
    pub pairs: Vec<String>,
    /// Freqtrade's form: `20261101-20261201` (either side may be empty), or epoch
    /// seconds; [`timerange`] makes a range that leaves out the candle at its end.
    pub timerange: String,
    /// The strategy's base config (its deployment section's `config_file`).
    pub base_config: Value,
    /// The operator's overrides ([`crate::freqtrade::read_overrides`]).
    pub overrides: Option<Value>,
    /// The registry version's parameters (declared or plain); those that are Freqtrade
    /// config keys go into the config, as for a bot.
    pub parameters: Map<String, Value>,
    /// Chosen parameters, as Freqtrade's parameter file (a hyperopt's
    /// [`HyperoptBest::parameter_file`]): written beside the strategy's copy, where
    /// Freqtrade loads them; its config keys (ROI, stoploss, trailing, max open trades)
    /// also override the registry's in the config, since Freqtrade lets a config key win
    /// over the parameter file. None: no parameter file.
    pub strategy_parameters: Option<Value>,
}

/// The parts of a strategy's registry document a setup needs.
#[derive(Debug, Clone, Copy)]
pub struct StrategyPlan<'a> {
    /// The class (`deploy_spec::deployable`'s `RunPlan::Freqtrade`).
    pub class: &'a str,
    /// The base config, relative to the data directory.
    pub config_file: &'a str,
    pub spec: &'a FreqtradeSpec,
    /// The registry version's parameters.
    pub parameters: &'a Map<String, Value>,
}

impl FreqtradeSetup {
    /// A setup that runs a strategy as its bots run it: the strategy file found in
    /// `<data>/freqtrade/strategies` (the bots' `--strategy-path`), the base config its
    /// deployment section names, the overrides the bots get; the pairs asked for, else
    /// the section's, else the base config's whitelist; the section's timeframe, else the
    /// base config's. Every error names what is missing.
    pub fn for_strategy(
        data_dir: &Path,
        market_dir: &Path,
        freqtrade: &crate::config::FreqtradeConfig,
        plan: StrategyPlan<'_>,
        pairs: Option<&[String]>,
        timerange: &str,
        work_dir: &Path,
    ) -> Result<FreqtradeSetup, String> {
        let bin = crate::freqtrade::find_binary(freqtrade.bin.as_deref(), data_dir)?;
        let strategy_file = find_strategy_file(&data_dir.join("freqtrade/strategies"), plan.class)?;
        let base_path = crate::datadir::confined(data_dir, plan.config_file)
            .map_err(|e| format!("the deployment section's config_file: {e}"))?;
        let bytes = std::fs::read(&base_path)
            .map_err(|e| format!("cannot read the base config {}: {e}", base_path.display()))?;
        let base_config: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not valid JSON: {e}", base_path.display()))?;
        let overrides =
            crate::freqtrade::read_overrides(freqtrade.config_overrides.as_deref(), data_dir)?;
        let pairs: Vec<String> = match pairs {
            Some(p) if !p.is_empty() => p.to_vec(),
            _ if !plan.spec.pairs.is_empty() => plan.spec.pairs.clone(),
            _ => base_config
                .pointer("/exchange/pair_whitelist")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect(),
        };
        let timeframe = plan
            .spec
            .timeframe
            .clone()
            .or_else(|| base_config["timeframe"].as_str().map(str::to_string))
            .ok_or_else(|| {
                format!(
                    "no timeframe: neither the deployment section nor {} names one",
                    base_path.display()
                )
            })?;
        let setup = FreqtradeSetup {
            bin,
            work_dir: work_dir.to_path_buf(),
            strategy_class: plan.class.to_string(),
            strategy_file,
            market_dir: market_dir.to_path_buf(),
            timeframe,
            pairs,
            timerange: timerange.to_string(),
            base_config,
            overrides,
            parameters: plan.parameters.clone(),
            strategy_parameters: None,
        };
        setup.check()?;
        Ok(setup)
    }

    /// What the types cannot say: the class, pairs, timeframe and timerange as
    /// Freqtrade reads them.
    pub fn check(&self) -> Result<(), String> {
        let class_ok = !self.strategy_class.is_empty()
            && self
                .strategy_class
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !self
                .strategy_class
                .starts_with(|c: char| c.is_ascii_digit());
        if !class_ok {
            return Err(format!(
                "{:?} is not a Python class name",
                self.strategy_class
            ));
        }
        if self.pairs.is_empty() {
            return Err("no pairs to backtest".into());
        }
        self.timeframe()?;
        check_timerange(&self.timerange)
    }

    pub fn timeframe(&self) -> Result<Timeframe, String> {
        self.timeframe
            .parse::<Timeframe>()
            .map_err(|e| format!("timeframe: {e}"))
    }

    /// The config Freqtrade runs with (written by [`render_config`]).
    pub fn config(&self) -> Result<Value, String> {
        if !self.base_config.is_object() {
            return Err("the base config is not a JSON object".into());
        }
        let mut config = self.base_config.clone();
        if let Some(overrides) = &self.overrides {
            deep_merge(&mut config, overrides);
        }
        let mut tuning = config_parameters(&self.parameters);
        if let Some(file) = &self.strategy_parameters {
            let chosen = file
                .get("params")
                .and_then(Value::as_object)
                .ok_or("the strategy's parameter file has no `params` object")?;
            tuning.extend(config_parameters(&registry_parameters(chosen)));
        }
        apply_config_parameters(&mut config, &tuning);
        let c = config.as_object_mut().expect("checked: an object");
        for key in LEFT_OUT {
            c.remove(key);
        }
        c.insert("dry_run".into(), json!(true));
        c.insert("timeframe".into(), json!(self.timeframe));
        c.insert("pairlists".into(), json!([{"method": "StaticPairList"}]));
        let exchange = c.entry("exchange").or_insert_with(|| json!({}));
        if !exchange.is_object() {
            *exchange = json!({});
        }
        let exchange = exchange.as_object_mut().expect("an object");
        for key in EXCHANGE_SECRETS {
            exchange.remove(key);
        }
        for ccxt in ["ccxt_config", "ccxt_async_config"] {
            if let Some(section) = exchange.get_mut(ccxt).and_then(Value::as_object_mut) {
                for key in EXCHANGE_SECRETS {
                    section.remove(key);
                }
            }
        }
        // Exactly the pairs asked for; no websockets (a backtest reads files, and an
        // unreachable exchange with them on hangs Freqtrade instead of failing it).
        exchange.insert("pair_whitelist".into(), json!(self.pairs));
        exchange.insert("pair_blacklist".into(), json!([]));
        exchange.insert("enable_ws".into(), json!(false));
        Ok(config)
    }
}

/// A Freqtrade timerange: `YYYYMMDD`, epoch seconds or milliseconds on either side of
/// one `-`, at least one side given.
fn check_timerange(timerange: &str) -> Result<(), String> {
    let side = |s: &str| {
        s.is_empty() || (s.chars().all(|c| c.is_ascii_digit()) && [8, 10, 13].contains(&s.len()))
    };
    match timerange.split_once('-') {
        Some((from, to)) if side(from) && side(to) && !(from.is_empty() && to.is_empty()) => Ok(()),
        _ => Err(format!(
            "timerange {timerange:?} is not Freqtrade's form, e.g. 20261101-20261201"
        )),
    }
}

/// The strategy's source in `dir`: `<class>.py` when it defines the class, else the
/// first `*.py` (by name) that does, as Freqtrade's `--strategy-path` search finds it.
pub fn find_strategy_file(dir: &Path, class: &str) -> Result<PathBuf, String> {
    let defines = |path: &Path| {
        std::fs::read_to_string(path).is_ok_and(|source| {
            source.lines().any(|line| {
                line.strip_prefix("class ")
                    .and_then(|rest| rest.strip_prefix(class))
                    .is_some_and(|rest| rest.starts_with(['(', ':']))
            })
        })
    };
    let named = dir.join(format!("{class}.py"));
    if defines(&named) {
        return Ok(named);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "cannot read the strategies directory {}: {e}",
                dir.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    files.into_iter().find(|p| defines(p)).ok_or_else(|| {
        format!(
            "no file in {} defines the strategy class {class}",
            dir.display()
        )
    })
}

/// What [`render_config`] wrote, and what the commands run on.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub config_file: PathBuf,
    /// SHA-256 (hex) of the config, keys sorted: the same config gives the same hash.
    pub config_hash: String,
    /// SHA-256 (hex) of the strategy's source file.
    pub strategy_hash: String,
    /// The strategy's copy (`--strategy-path`).
    pub strategy_dir: PathBuf,
    /// Freqtrade's user directory (`--userdir`).
    pub user_dir: PathBuf,
    /// Where backtesting writes its result (`--backtest-directory`).
    pub results_dir: PathBuf,
    /// The candles' format (`--data-format-ohlcv`): `feather`, `json` or `jsongz`.
    pub data_format: &'static str,
}

/// Prepares the work directory for a run: checks that every pair's candles are there in
/// one format Freqtrade reads, writes the config (0600), copies the strategy file (and
/// the sibling modules it imports) with the setup's parameter file or none, and empties
/// the result directories (so that a result read afterwards is this run's).
pub fn render_config(setup: &FreqtradeSetup) -> Result<Rendered, String> {
    setup.check()?;
    let data_format = data_format(&setup.market_dir, &setup.pairs, setup.timeframe()?)?;
    let work = &setup.work_dir;
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    let strategy_dir = work.join(STRATEGY_DIR);
    let user_dir = work.join(USER_DIR);
    let results_dir = work.join(RESULTS_DIR);
    for dir in [&strategy_dir, &user_dir] {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    for dir in [&results_dir, &user_dir.join(HYPEROPT_RESULTS)] {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(dir, e)),
            _ => {}
        }
    }
    // Freqtrade takes a --backtest-directory that does not exist for a file name prefix
    // and writes `results-<time>.zip` beside it.
    std::fs::create_dir_all(&results_dir).map_err(|e| io(&results_dir, e))?;

    let source = std::fs::read(&setup.strategy_file).map_err(|e| {
        format!(
            "cannot read the strategy {}: {e}",
            setup.strategy_file.display()
        )
    })?;
    let strategy_hash = sha256_hex(&source);
    let copy = copy_strategy(&setup.strategy_file, &strategy_dir)?;
    let parameter_file = copy.with_extension("json");
    match &setup.strategy_parameters {
        Some(file) => {
            if file["strategy_name"] != json!(setup.strategy_class) {
                return Err(format!(
                    "the parameter file is for strategy {}, not {} (Freqtrade refuses it)",
                    file["strategy_name"], setup.strategy_class
                ));
            }
            let text = serde_json::to_vec_pretty(file).expect("JSON serializes");
            std::fs::write(&parameter_file, text).map_err(|e| io(&parameter_file, e))?;
        }
        None => match std::fs::remove_file(&parameter_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(&parameter_file, e));
            }
            _ => {}
        },
    }

    let config = setup.config()?;
    let config_file = work.join(CONFIG_FILE);
    crate::datadir::write_atomic(
        &config_file,
        &serde_json::to_vec_pretty(&config).expect("JSON serializes"),
        0o600,
    )
    .map_err(|e| format!("{}: {e:#}", config_file.display()))?;
    let mut canonical = String::new();
    canonical_json(&config, &mut canonical);
    Ok(Rendered {
        config_file,
        config_hash: sha256_hex(canonical.as_bytes()),
        strategy_hash,
        strategy_dir,
        user_dir,
        results_dir,
        data_format,
    })
}

/// The one format of every pair's candles, in Freqtrade's name for it.
fn data_format(market_dir: &Path, pairs: &[String], tf: Timeframe) -> Result<&'static str, String> {
    let mut found: Option<(&'static str, PathBuf)> = None;
    for pair in pairs {
        let path = candles::find_pair_file(market_dir, pair, tf).map_err(|e| e.to_string())?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let format = if name.ends_with(".feather") {
            "feather"
        } else if name.ends_with(".json.gz") {
            "jsongz"
        } else if name.ends_with(".json") {
            "json"
        } else {
            return Err(format!(
                "{}: Freqtrade reads .feather, .json and .json.gz candles, not this file",
                path.display()
            ));
        };
        match &found {
            Some((first, first_path)) if *first != format => {
                return Err(format!(
                    "the candles are in two formats ({} and {}); Freqtrade reads one format a run",
                    first_path.display(),
                    path.display()
                ));
            }
            Some(_) => {}
            None => found = Some((format, path)),
        }
    }
    found
        .map(|(format, _)| format)
        .ok_or_else(|| "no pairs to backtest".into())
}

/// Copies a strategy file into `into`, with the modules beside it that it imports
/// (`from memd_mixin import MemdMixin`), and theirs; answers the copy's path.
fn copy_strategy(file: &Path, into: &Path) -> Result<PathBuf, String> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut pending = vec![file.to_path_buf()];
    let mut seen = BTreeSet::new();
    while let Some(path) = pending.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let source = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let target = into.join(path.file_name().unwrap_or_default());
        std::fs::write(&target, &source).map_err(|e| format!("{}: {e}", target.display()))?;
        for module in imported_modules(&source) {
            let sibling = dir.join(format!("{module}.py"));
            if sibling.is_file() {
                pending.push(sibling);
            }
        }
    }
    Ok(into.join(file.file_name().unwrap_or_default()))
}

/// The top-level names of the modules a Python source imports (`from a.b import c`,
/// `import a, b as c`); relative imports left out.
fn imported_modules(source: &str) -> Vec<String> {
    let first = |name: &str| {
        let name = name.split_whitespace().next().unwrap_or("");
        let top = name.split('.').next().unwrap_or("");
        (!top.is_empty() && top.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| top.to_string())
    };
    source
        .lines()
        .map(str::trim_start)
        .flat_map(|line| {
            if let Some(rest) = line.strip_prefix("from ") {
                first(rest).into_iter().collect::<Vec<_>>()
            } else if let Some(rest) = line.strip_prefix("import ") {
                rest.split(',').filter_map(first).collect()
            } else {
                Vec::new()
            }
        })
        .collect()
}

/// JSON with every object's keys sorted, compact: what the config hash is of.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The SHA-256 of `bytes`, in hex (a config's and a strategy's hash).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The command line every run shares: the work directory's files, the candles, the
/// timerange; Freqtrade in its own process group with an explicit environment.
fn freqtrade_command(setup: &FreqtradeSetup, rendered: &Rendered, subcommand: &str) -> Command {
    let mut command = Command::new(&setup.bin);
    command
        .arg(subcommand)
        .arg("--config")
        .arg(&rendered.config_file)
        .arg("--userdir")
        .arg(&rendered.user_dir)
        .arg("--strategy-path")
        .arg(&rendered.strategy_dir)
        .arg("--strategy")
        .arg(&setup.strategy_class)
        .arg("--datadir")
        .arg(&setup.market_dir)
        .arg("--data-format-ohlcv")
        .arg(rendered.data_format)
        .arg("--timerange")
        .arg(&setup.timerange)
        .current_dir(&setup.work_dir)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", &setup.work_dir)
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .process_group(0);
    command
}

/// `freqtrade backtesting` of the setup, not spawned: the result goes to
/// [`Rendered::results_dir`] ([`read_backtest_result`]); Freqtrade's version and log go
/// to its stderr, the job's log. `--cache none`: never a previous run's result.
pub fn backtest_command(setup: &FreqtradeSetup, rendered: &Rendered) -> Command {
    let mut command = freqtrade_command(setup, rendered, "backtesting");
    command
        .arg("--export")
        .arg("trades")
        .arg("--backtest-directory")
        .arg(&rendered.results_dir)
        .arg("--cache")
        .arg("none");
    command
}

/// How a hyperopt searches.
#[derive(Debug, Clone, PartialEq)]
pub struct HyperoptOptions {
    pub epochs: u32,
    /// Freqtrade's spaces: `roi`, `stoploss`, `trailing`, `buy`, `sell`, a strategy's
    /// own, `default`, `all`. A strategy without parameters of its own (the seed bots')
    /// has only `roi`, `stoploss`, `trailing` and `trades`.
    pub spaces: Vec<String>,
    /// A loss class: `SharpeHyperOptLoss`, `SortinoHyperOptLoss`, `CalmarHyperOptLoss`,
    /// `ProfitDrawDownHyperOptLoss`, ...
    pub loss: String,
    /// The same state, data and config give the same epochs.
    pub random_state: u64,
    /// Freqtrade's parallel workers (`-j`): 1 leaves the other core to the rest of memd
    /// and the queue's other job.
    pub jobs: u32,
}

impl HyperoptOptions {
    /// Every value as Freqtrade takes it; the error names the option.
    pub fn check(&self) -> Result<(), String> {
        let name =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if self.epochs == 0 {
            return Err("hyperopt epochs must be 1 or more".into());
        }
        if self.jobs == 0 {
            return Err("hyperopt jobs must be 1 or more".into());
        }
        if self.spaces.is_empty() || !self.spaces.iter().all(|s| name(s)) {
            return Err(format!(
                "hyperopt spaces {:?} are not names like roi, stoploss, buy",
                self.spaces
            ));
        }
        if !name(&self.loss) {
            return Err(format!("hyperopt loss {:?} is not a class name", self.loss));
        }
        Ok(())
    }
}

/// `freqtrade hyperopt` of the setup, not spawned: its epochs go to
/// `<user_dir>/hyperopt_results/` ([`read_hyperopt_result`]). Freqtrade's own parameter
/// export is off: the chosen parameters reach a backtest only through a setup's
/// [`FreqtradeSetup::strategy_parameters`], never by a file left behind.
pub fn hyperopt_command(
    setup: &FreqtradeSetup,
    rendered: &Rendered,
    options: &HyperoptOptions,
) -> Result<Command, String> {
    options.check()?;
    let mut command = freqtrade_command(setup, rendered, "hyperopt");
    command
        .arg("--epochs")
        .arg(options.epochs.to_string())
        .arg("--spaces")
        .args(&options.spaces)
        .arg("--hyperopt-loss")
        .arg(&options.loss)
        .arg("--random-state")
        .arg(options.random_state.to_string())
        .arg("-j")
        .arg(options.jobs.to_string())
        .arg("--disable-param-export");
    Ok(command)
}

/// A strategy's run as Freqtrade reported it: a backtest's whole range, or a hyperopt's
/// best epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub figures: BacktestFigures,
    /// The starting balance at the first candle, then the balance after each instant
    /// trades closed at (Freqtrade closes the trades still open at the last candle).
    pub equity: Vec<EquityPoint>,
    /// The first candle's open time.
    pub data_from: DateTime<Utc>,
    /// The last candle's close (Freqtrade's `backtest_end` is its open time).
    pub data_to: DateTime<Utc>,
    pub pairs: Vec<String>,
    pub timeframe: String,
}

/// A backtest's result.
#[derive(Debug, Clone, PartialEq)]
pub struct FreqtradeBacktest {
    pub measured: Measured,
    /// Freqtrade's result file (`backtest-result-<time>.zip`), to keep with the job.
    pub result_file: PathBuf,
}

/// Reads the newest backtest result in `results_dir` (`.last_result.json` names it:
/// Freqtrade 2026.9's zip, or an older version's plain JSON) and maps the strategy's
/// section to memd's figures. Freqtrade's version is not in it: [`freqtrade_version`]
/// reads it from the run's log. Errors name the file and what is missing.
pub fn read_backtest_result(
    results_dir: &Path,
    strategy_class: &str,
) -> Result<FreqtradeBacktest, String> {
    let last = results_dir.join(LAST_RESULT);
    let name = newest_result(&last, "latest_backtest")?;
    let file = results_dir.join(&name);
    let stats = if name.ends_with(".zip") {
        read_zipped_json(&file)?
    } else {
        read_json(&file)?
    };
    let section = stats
        .get("strategy")
        .and_then(|s| s.get(strategy_class))
        .ok_or_else(|| {
            let held: Vec<&String> = stats
                .get("strategy")
                .and_then(Value::as_object)
                .map(|s| s.keys().collect())
                .unwrap_or_default();
            format!(
                "{}: no result for strategy {strategy_class} (it holds {held:?})",
                file.display()
            )
        })?;
    let measured = measured(section, &format!("{} ({strategy_class})", file.display()))?;
    Ok(FreqtradeBacktest {
        measured,
        result_file: file,
    })
}

/// The file `.last_result.json` names under `key`; a missing one means Freqtrade wrote
/// no result (it failed: its log says why).
fn newest_result(last: &Path, key: &str) -> Result<String, String> {
    let pointer = match std::fs::read(last) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| format!("{}: not JSON: {e}", last.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{} is missing: Freqtrade wrote no result (its log says why)",
                last.display()
            ));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", last.display())),
    };
    let name = pointer[key]
        .as_str()
        .ok_or_else(|| format!("{}: no `{key}` in it", last.display()))?;
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(format!("{}: `{key}` is {name:?}", last.display()));
    }
    Ok(name.to_string())
}

fn read_json(file: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", file.display()))
}

/// The figures' JSON in Freqtrade's result zip: the member named as the zip
/// (`backtest-result-<time>.json`), beside the config, the strategy and feather files.
fn read_zipped_json(file: &Path) -> Result<Value, String> {
    let opened =
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut zip = zip::ZipArchive::new(opened)
        .map_err(|e| format!("{}: not a zip file: {e}", file.display()))?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let member = format!("{stem}.json");
    if zip.index_for_name(&member).is_none() {
        let held: Vec<&str> = zip.file_names().collect();
        return Err(format!(
            "{}: no {member} in it (it holds {held:?})",
            file.display()
        ));
    }
    let mut text = String::new();
    zip.by_name(&member)
        .map_err(|e| e.to_string())
        .and_then(|mut entry| entry.read_to_string(&mut text).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: cannot read {member}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {member}: not JSON: {e}", file.display()))
}

/// Freqtrade's strategy statistics (a backtest's strategy section, a hyperopt epoch's
/// `results_metrics`) as memd's figures: the numbers as reported, except that Sharpe,
/// Sortino and Calmar are absent without trades (Freqtrade says 0) and the profit factor
/// without a losing trade (Freqtrade says 0). Freqtrade writes NaN as null: absent.
/// Freqtrade's -100 for a ratio whose deviation is 0 is kept as it is.
fn measured(stats: &Value, what: &str) -> Result<Measured, String> {
    let missing = |key: &str, kind: &str| format!("{what}: `{key}` is missing or not {kind}");
    let number = |key: &str| {
        let value = stats.get(key);
        value
            .and_then(Value::as_f64)
            // The strategy comparison writes some amounts as text ("11.933").
            .or_else(|| value.and_then(Value::as_str).and_then(|s| s.parse().ok()))
            .ok_or_else(|| missing(key, "a number"))
    };
    let count = |key: &str| {
        stats
            .get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| missing(key, "a count"))
    };
    let instant = |key: &str| {
        stats
            .get(key)
            .and_then(Value::as_i64)
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| missing(key, "a time in milliseconds"))
    };
    let trades = count("total_trades")?;
    let wins = count("wins")?;
    let losses = count("losses")?;
    let ratio = |key: &str| {
        (trades > 0)
            .then(|| stats.get(key).and_then(Value::as_f64))
            .flatten()
    };
    let win_rate = match stats.get("winrate").and_then(Value::as_f64) {
        Some(rate) => rate,
        None if trades > 0 => wins as f64 / trades as f64,
        None => 0.0,
    };
    let starting_balance = number("starting_balance")?;
    let figures = BacktestFigures {
        trades,
        wins,
        losses,
        win_rate,
        profit_abs: number("profit_total_abs")?,
        profit_pct: number("profit_total")?,
        sharpe: ratio("sharpe"),
        sortino: ratio("sortino"),
        calmar: ratio("calmar"),
        max_drawdown: number("max_drawdown_account")?,
        max_drawdown_abs: number("max_drawdown_abs")?,
        profit_factor: if losses > 0 {
            stats.get("profit_factor").and_then(Value::as_f64)
        } else {
            None
        },
        starting_balance,
        final_balance: number("final_balance")?,
    };
    let timeframe = stats
        .get("timeframe")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("timeframe", "text"))?;
    let tf: Timeframe = timeframe
        .parse()
        .map_err(|e| format!("{what}: timeframe: {e}"))?;
    let data_from = instant("backtest_start_ts")?;
    let data_to = instant("backtest_end_ts")? + chrono::Duration::milliseconds(tf.millis());
    let pairs = stats
        .get("pairlist")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("pairlist", "a list"))?
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let trade_list = stats
        .get("trades")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("trades", "a list"))?;
    let equity = equity_curve(
        data_from.timestamp_millis(),
        starting_balance,
        trade_list,
        what,
    )?;
    Ok(Measured {
        figures,
        equity,
        data_from,
        data_to,
        pairs,
        timeframe: timeframe.to_string(),
    })
}

/// The balance at `start_ms`, then after each instant trades closed at.
fn equity_curve(
    start_ms: i64,
    starting_balance: f64,
    trades: &[Value],
    what: &str,
) -> Result<Vec<EquityPoint>, String> {
    let mut closes = Vec::with_capacity(trades.len());
    for (i, trade) in trades.iter().enumerate() {
        let ts = trade["close_timestamp"]
            .as_i64()
            .ok_or_else(|| format!("{what}: trade {i} has no `close_timestamp` in milliseconds"))?;
        let profit = trade["profit_abs"]
            .as_f64()
            .ok_or_else(|| format!("{what}: trade {i} has no `profit_abs`"))?;
        closes.push((ts, profit));
    }
    closes.sort_by_key(|(ts, _)| *ts);
    let mut equity = vec![EquityPoint {
        ts_ms: start_ms,
        equity: starting_balance,
    }];
    let mut balance = starting_balance;
    for (ts, profit) in closes {
        balance += profit;
        match equity.last_mut() {
            Some(last) if last.ts_ms == ts => last.equity = balance,
            _ => equity.push(EquityPoint {
                ts_ms: ts,
                equity: balance,
            }),
        }
    }
    Ok(equity)
}

/// A hyperopt's best epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct HyperoptBest {
    /// The optimised parameters under the registry's names: `minimal_roi` (the ROI
    /// table), `stoploss`, the trailing keys, `max_open_trades`, a strategy's own
    /// parameters by name. A fold's `parameters`.
    pub parameters: Map<String, Value>,
    /// Freqtrade's parameter file of the epoch (optimised and not, by space, as
    /// Freqtrade exports it, without its export time): what a backtest of these
    /// parameters loads ([`FreqtradeSetup::strategy_parameters`]).
    pub parameter_file: Value,
    /// The best epoch (1-based) and how many ran.
    pub epoch: u64,
    pub epochs: u64,
    /// The loss function's value (lower is better).
    pub loss: f64,
    /// The best epoch's own backtest: the in-sample figures.
    pub in_sample: Measured,
    /// Freqtrade's epochs file (`*.fthypt`).
    pub result_file: PathBuf,
}

/// Reads the newest hyperopt's epochs in `<user_dir>/hyperopt_results/`
/// (`.last_result.json` names the `.fthypt` file: one JSON line an epoch) and answers
/// its best: the epoch with the lowest loss among those Freqtrade marked best. None
/// marked (no epoch had trades) is an error.
pub fn read_hyperopt_result(user_dir: &Path, strategy_class: &str) -> Result<HyperoptBest, String> {
    let dir = user_dir.join(HYPEROPT_RESULTS);
    let name = newest_result(&dir.join(LAST_RESULT), "latest_hyperopt")?;
    let file = dir.join(&name);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut epochs = 0u64;
    let mut best: Option<(u64, f64, Value)> = None;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        epochs += 1;
        let epoch = parse_epoch(line)
            .map_err(|e| format!("{}: line {}: not JSON: {e}", file.display(), i + 1))?;
        if epoch["is_best"] != json!(true) {
            continue;
        }
        let loss = epoch["loss"]
            .as_f64()
            .ok_or_else(|| format!("{}: line {}: no `loss`", file.display(), i + 1))?;
        let number = epoch["current_epoch"].as_u64().unwrap_or(epochs);
        if best.as_ref().is_none_or(|(_, l, _)| loss < *l) {
            best = Some((number, loss, epoch));
        }
    }
    let Some((number, loss, epoch)) = best else {
        return Err(format!(
            "{}: none of its {epochs} epochs found a result (no trades, or every loss at Freqtrade's bound)",
            file.display()
        ));
    };
    let what = format!("{} (epoch {number})", file.display());
    let object = |key: &str| {
        epoch
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| format!("{what}: `{key}` is missing or not an object"))
    };
    let details = object("params_details")?;
    let mut all = Value::Object(object("params_not_optimized").unwrap_or_default());
    deep_merge(&mut all, &Value::Object(details.clone()));
    let in_sample = measured(
        epoch
            .get("results_metrics")
            .ok_or_else(|| format!("{what}: no `results_metrics`"))?,
        &what,
    )?;
    Ok(HyperoptBest {
        parameters: registry_parameters(&details),
        parameter_file: json!({
            "strategy_name": strategy_class,
            "params": all,
            "ft_stratparam_v": 1,
        }),
        epoch: number,
        epochs,
        loss,
        in_sample,
        result_file: file,
    })
}

/// One epoch line of a `.fthypt` file. Freqtrade writes them with python-rapidjson's
/// `NM_NAN`: a NaN figure (the p-value of a single trade) is the bare token `NaN`, and
/// infinities `Infinity`, which JSON does not have; they are read as null (absent).
fn parse_epoch(line: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(line).or_else(|first| {
        let mut clean = String::with_capacity(line.len());
        let (mut in_string, mut escaped) = (false, false);
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            if !in_string {
                if let Some(token) = ["-Infinity", "Infinity", "NaN"]
                    .into_iter()
                    .find(|t| rest.starts_with(t))
                {
                    clean.push_str("null");
                    rest = &rest[token.len()..];
                    continue;
                }
            }
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
            } else if c == '"' {
                in_string = true;
            }
            clean.push(c);
            rest = &rest[c.len_utf8()..];
        }
        serde_json::from_str(&clean).map_err(|_| first)
    })
}

/// How many epochs a running hyperopt has finished: the lines of its `.fthypt` file,
/// which Freqtrade appends to as each batch of epochs ends (`.last_result.json` comes
/// only at the end). 0 before the first batch.
pub fn hyperopt_epochs_done(user_dir: &Path) -> u64 {
    let dir = user_dir.join(HYPEROPT_RESULTS);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "fthypt"))
        .filter_map(|p| std::fs::read(p).ok())
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count() as u64)
        .max()
        .unwrap_or(0)
}

/// Freqtrade's timerange of the candles that open from `from` up to, not including,
/// `to`, in epoch seconds: Freqtrade keeps a candle that opens at the stop, so a
/// walk-forward whose in-sample range ended at its out-of-sample start would share that
/// candle between them.
pub fn timerange(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!("{}-{}", from.timestamp(), to.timestamp() - 1)
}

/// Freqtrade's parameters by space (`{"roi": {"0": 0.2}, "stoploss": {"stoploss":
/// -0.1}, "buy": {"buy_rsi": 30}}`) under the registry's names: the ROI table as
/// `minimal_roi`, every other space's members by their own names.
pub fn registry_parameters(spaces: &Map<String, Value>) -> Map<String, Value> {
    let mut flat = Map::new();
    for (space, members) in spaces {
        match (space.as_str(), members) {
            ("roi", table) => {
                flat.insert("minimal_roi".into(), table.clone());
            }
            (_, Value::Object(members)) => {
                flat.extend(members.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            (_, other) => {
                flat.insert(space.clone(), other.clone());
            }
        }
    }
    flat
}

/// The Freqtrade version a run's log names (`freqtrade - INFO - freqtrade 2026.9`, its
/// first line on stderr; the last run's when the log holds several).
pub fn freqtrade_version(log_file: &Path) -> Option<String> {
    const MARK: &str = " - freqtrade - INFO - freqtrade ";
    let text = std::fs::read(log_file).ok()?;
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| line.split_once(MARK).map(|(_, v)| v.trim().to_string()))
        .rfind(|v| !v.is_empty())
}

/// The message of the last error a run's log names (`freqtrade - ERROR - Could not load
/// markets, therefore cannot start. ...`): why a failed run failed, in Freqtrade's words.
pub fn freqtrade_error(log_file: &Path) -> Option<String> {
    let text = std::fs::read(log_file).ok()?;
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| {
            line.split_once(" - ERROR - ")
                .or_else(|| line.split_once(" - CRITICAL - "))
                .map(|(_, message)| message.trim().to_string())
        })
        .rfind(|m| !m.is_empty())
}

/// The last `n` lines of a Freqtrade run's log that say something (blank lines and the
/// borders of its tables left out): what a failed job reports.
pub fn last_log_lines(log_file: &Path, n: usize) -> Vec<String> {
    let mut lines: Vec<String> =
        crate::supervisor::process::tail_lines(log_file, n.saturating_mul(4).max(n + 20))
            .into_iter()
            .map(|l| l.trim_end().to_string())
            .filter(|l| l.chars().any(|c| c.is_alphanumeric()))
            .collect();
    let skip = lines.len().saturating_sub(n);
    lines.drain(..skip);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files of real Freqtrade 2026.9 runs (daemon/tests/fixtures/freqtrade/README.md).
    fn fixture(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/freqtrade")
            .join(path)
    }

    fn ms(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ts).unwrap()
    }

    #[test]
    fn a_backtest_reads_as_freqtrade_reported_it() {
        let result = read_backtest_result(&fixture("backtest/results"), "MACD_Aggressive").unwrap();
        assert_eq!(
            result.result_file,
            fixture("backtest/results/backtest-result-2026-12-05_08-18-57.zip")
        );
        let m = result.measured;
        assert_eq!(
            m.figures,
            BacktestFigures {
                trades: 21,
                wins: 9,
                losses: 12,
                win_rate: 0.42857142857142855,
                profit_abs: 2.66469513,
                profit_pct: 0.0026646951300000003,
                sharpe: Some(45.173743495980936),
                sortino: Some(156.71674818516908),
                calmar: Some(1202.4251901576515),
                max_drawdown: 0.00423385416354344,
                max_drawdown_abs: 4.25257815,
                profit_factor: Some(1.3273893133403953),
                starting_balance: 1000.0,
                final_balance: 1002.66469513,
            }
        );
        assert_eq!(m.pairs, ["ETH/USDT", "BTC/USDT"]);
        assert_eq!(m.timeframe, "5m");
        // backtest_start 2026-12-04 00:00; backtest_end 2026-12-05 00:00 is the last
        // candle's open time: the data reach its close, 5 minutes later.
        assert_eq!(m.data_from, ms(1_796_342_400_000));
        assert_eq!(m.data_to, ms(1_796_428_800_000 + 300_000));
        assert_eq!(m.equity.len(), 22, "the start, then 21 distinct closes");
        assert_eq!(
            m.equity[0],
            EquityPoint {
                ts_ms: 1_796_342_400_000,
                equity: 1000.0
            }
        );
        assert_eq!(m.equity[1].ts_ms, 1_796_347_800_000);
        assert!((m.equity[1].equity - 1000.06333552).abs() < 1e-9);
        assert!((m.equity[2].equity - 999.46782156).abs() < 1e-9);
        let last = m.equity.last().unwrap();
        assert_eq!(last.ts_ms, 1_796_428_800_000);
        assert!((last.equity - m.figures.final_balance).abs() < 1e-9);
    }

    #[test]
    fn a_hyperopt_gives_its_best_epoch_and_freqtrade_runs_it_out_of_sample() {
        let user_dir = fixture("hyperopt/user_data");
        let best = read_hyperopt_result(&user_dir, "MACD_Tunable").unwrap();
        assert_eq!((best.epoch, best.epochs), (2, 3));
        assert_eq!(best.loss, -33.21973405307465);
        assert_eq!(
            Value::Object(best.parameters.clone()),
            json!({"buy_trend": 50, "stoploss": -0.249,
                   "minimal_roi": {"0": 0.26, "27": 0.09, "71": 0.026, "108": 0}}),
            "the optimised spaces only, under the registry's names"
        );
        let i = &best.in_sample;
        assert_eq!(
            (i.figures.trades, i.figures.wins, i.figures.losses),
            (4, 2, 2)
        );
        assert_eq!(i.figures.profit_abs, 2.26448445);
        assert_eq!(i.figures.final_balance, 1002.26448445);
        assert_eq!(i.figures.sharpe, Some(33.21973405307465));
        assert_eq!(i.figures.profit_factor, Some(3.0280377404070764));
        assert_eq!(i.figures.max_drawdown, 0.0007599519300000566);
        assert_eq!(i.pairs, ["ETH/USDT"]);
        assert_eq!(i.data_from, ms(1_796_256_000_000));
        assert_eq!(i.equity.len(), 5);

        // The out-of-sample backtest ran with that parameter file beside the strategy's
        // copy: Freqtrade kept it in its result, and reports the ROI and stoploss it used.
        let oos = read_backtest_result(&fixture("out-of-sample/results"), "MACD_Tunable").unwrap();
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&oos.result_file).unwrap()).unwrap();
        let mut kept = String::new();
        zip.by_name("backtest-result-2026-12-05_08-19-11_MACD_Tunable.json")
            .unwrap()
            .read_to_string(&mut kept)
            .unwrap();
        let kept: Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(kept, best.parameter_file);
        assert_eq!(
            kept["params"]["sell"],
            json!({"sell_signal": true}),
            "not optimised, kept"
        );
        let stats = read_zipped_json(&oos.result_file).unwrap();
        let section = &stats["strategy"]["MACD_Tunable"];
        assert_eq!(section["stoploss"], best.parameters["stoploss"]);
        assert_eq!(section["minimal_roi"], best.parameters["minimal_roi"]);
        let f = &oos.measured.figures;
        assert_eq!((f.trades, f.wins, f.losses), (7, 2, 5));
        assert_eq!(f.profit_abs, 0.1659823199999999);
        assert_eq!(f.calmar, Some(157.88261605226867));
        assert_eq!(f.final_balance, 1000.16598232);
    }

    #[test]
    fn a_failed_run_says_why() {
        // The backtest of a config whose exchange does not answer (exit 2).
        let log = fixture("failed/job.log");
        assert_eq!(freqtrade_version(&log).as_deref(), Some("2026.9"));
        assert_eq!(
            freqtrade_error(&log).as_deref(),
            Some(
                "Could not load markets, therefore cannot start. Please investigate the above error for more details."
            )
        );
        let lines = last_log_lines(&log, 3);
        assert_eq!(lines.len(), 3);
        assert!(
            lines[2].ends_with("Please investigate the above error for more details."),
            "{lines:?}"
        );
        assert!(last_log_lines(&fixture("no-such.log"), 3).is_empty());
        assert_eq!(freqtrade_version(&fixture("no-such.log")), None);

        let empty = tempfile::tempdir().unwrap();
        let err = read_backtest_result(empty.path(), "MACD_Aggressive").unwrap_err();
        assert!(
            err.contains(".last_result.json is missing: Freqtrade wrote no result"),
            "{err}"
        );
        let err = read_hyperopt_result(empty.path(), "MACD_Tunable").unwrap_err();
        assert!(
            err.contains("hyperopt_results/.last_result.json is missing"),
            "{err}"
        );
    }

    #[test]
    fn reading_errors_name_the_file_and_what_is_missing() {
        let err =
            read_backtest_result(&fixture("backtest/results"), "RSI_Conservative").unwrap_err();
        assert!(
            err.contains("backtest-result-2026-12-05_08-18-57.zip: no result for strategy RSI_Conservative (it holds [\"MACD_Aggressive\"])"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let last = dir.path().join(LAST_RESULT);
        std::fs::write(&last, r#"{"latest_backtest": "backtest-result-x.zip"}"#).unwrap();
        let err = read_backtest_result(dir.path(), "S").unwrap_err();
        assert!(
            err.contains("backtest-result-x.zip") && err.contains("cannot read"),
            "{err}"
        );
        std::fs::write(&last, r#"{"latest_backtest": "../elsewhere.json"}"#).unwrap();
        assert!(
            read_backtest_result(dir.path(), "S")
                .unwrap_err()
                .contains("`latest_backtest` is")
        );

        // An older Freqtrade's plain JSON result, without its final balance.
        let mut stats = stats(&[(1_000, 1.0)]);
        stats.as_object_mut().unwrap().remove("final_balance");
        std::fs::write(&last, r#"{"latest_backtest": "backtest-result-old.json"}"#).unwrap();
        std::fs::write(
            dir.path().join("backtest-result-old.json"),
            json!({"strategy": {"S": stats}}).to_string(),
        )
        .unwrap();
        let err = read_backtest_result(dir.path(), "S").unwrap_err();
        assert!(
            err.contains(
                "backtest-result-old.json (S): `final_balance` is missing or not a number"
            ),
            "{err}"
        );
    }

    /// A strategy section with these (close time, profit) trades.
    fn stats(trades: &[(i64, f64)]) -> Value {
        let wins = trades.iter().filter(|t| t.1 > 0.0).count();
        let losses = trades.iter().filter(|t| t.1 < 0.0).count();
        let profit: f64 = trades.iter().map(|t| t.1).sum();
        json!({
            "total_trades": trades.len(), "wins": wins, "losses": losses,
            "profit_total_abs": profit, "profit_total": profit / 1000.0,
            "sharpe": 0, "sortino": null, "calmar": 0, "profit_factor": 0.0,
            "max_drawdown_account": 0.0, "max_drawdown_abs": "0.000",
            "starting_balance": 1000, "final_balance": 1000.0 + profit,
            "backtest_start_ts": 0, "backtest_end_ts": 86_400_000, "timeframe": "1h",
            "pairlist": ["BTC/USDT"],
            "trades": trades.iter().map(|(ts, p)| json!({"close_timestamp": ts, "profit_abs": p})).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn ratios_without_trades_and_a_profit_factor_without_losses_are_absent() {
        let none = measured(&stats(&[]), "none").unwrap();
        assert_eq!((none.figures.trades, none.figures.win_rate), (0, 0.0));
        assert_eq!((none.figures.sharpe, none.figures.calmar), (None, None));
        assert_eq!(none.figures.profit_factor, None);
        assert_eq!(
            none.equity,
            [EquityPoint {
                ts_ms: 0,
                equity: 1000.0
            }]
        );
        assert_eq!(none.data_to, ms(86_400_000 + 3_600_000));

        let winners = measured(
            &stats(&[(7_200_000, 2.0), (3_600_000, 1.0), (3_600_000, 0.5)]),
            "w",
        )
        .unwrap();
        assert_eq!(winners.figures.profit_factor, None, "no losing trade");
        assert_eq!(
            winners.figures.sharpe,
            Some(0.0),
            "as Freqtrade said, with trades"
        );
        assert_eq!(winners.figures.sortino, None, "Freqtrade's null (NaN)");
        assert_eq!(
            winners.figures.win_rate, 1.0,
            "computed when Freqtrade gives none"
        );
        assert_eq!(
            winners.equity,
            [
                EquityPoint {
                    ts_ms: 0,
                    equity: 1000.0
                },
                EquityPoint {
                    ts_ms: 3_600_000,
                    equity: 1001.5
                },
                EquityPoint {
                    ts_ms: 7_200_000,
                    equity: 1003.5
                },
            ],
            "sorted by close, one point an instant"
        );
        let mut bad = stats(&[(1, 1.0)]);
        bad["trades"][0]
            .as_object_mut()
            .unwrap()
            .remove("close_timestamp");
        assert!(
            measured(&bad, "x")
                .unwrap_err()
                .contains("trade 0 has no `close_timestamp`")
        );
    }

    #[test]
    fn hyperopt_epochs_with_nan_figures_read_and_count() {
        // The fixture's epochs, with the NaN a single trade's p-value is written as.
        let source = fixture("hyperopt/user_data/hyperopt_results");
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join(HYPEROPT_RESULTS);
        std::fs::create_dir_all(&results).unwrap();
        assert_eq!(hyperopt_epochs_done(dir.path()), 0);
        let name = "strategy_MACD_Tunable_2026-12-05_08-19-02.fthypt";
        let text = std::fs::read_to_string(source.join(name)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(results.join(name), format!("{}\n", lines[0])).unwrap();
        assert_eq!(hyperopt_epochs_done(dir.path()), 1, "a run's progress");
        let nan = text.replacen(
            "\"p_value\":",
            "\"odd\":\"NaN in a string\",\"p_value\":NaN,\"was\":",
            3,
        );
        std::fs::write(results.join(name), &nan).unwrap();
        std::fs::copy(source.join(LAST_RESULT), results.join(LAST_RESULT)).unwrap();
        assert_eq!(hyperopt_epochs_done(dir.path()), 3);
        let best = read_hyperopt_result(dir.path(), "MACD_Tunable").unwrap();
        assert_eq!((best.epoch, best.loss), (2, -33.21973405307465));
        let line =
            parse_epoch(r#"{"a": NaN, "b": -Infinity, "c": "Infinity", "d": [Infinity]}"#).unwrap();
        assert_eq!(
            line,
            json!({"a": null, "b": null, "c": "Infinity", "d": [null]})
        );
        assert!(parse_epoch("{\"a\": Nope}").is_err());
    }

    #[test]
    fn a_timerange_leaves_out_the_candle_at_its_end() {
        let from = ms(1_796_256_000_000);
        let to = ms(1_796_342_400_000);
        assert_eq!(timerange(from, to), "1796256000-1796342399");
        assert!(check_timerange(&timerange(from, to)).is_ok());
    }

    #[test]
    fn hyperopt_parameters_under_the_registrys_names() {
        let spaces = json!({"roi": {"0": 0.1, "30": 0}, "stoploss": {"stoploss": -0.05},
                            "trailing": {"trailing_stop": true, "trailing_stop_positive": 0.01},
                            "max_open_trades": {"max_open_trades": 2},
                            "buy": {"buy_rsi": 28}, "sell": {"sell_rsi": 71}});
        assert_eq!(
            Value::Object(registry_parameters(spaces.as_object().unwrap())),
            json!({"minimal_roi": {"0": 0.1, "30": 0}, "stoploss": -0.05,
                   "trailing_stop": true, "trailing_stop_positive": 0.01, "max_open_trades": 2,
                   "buy_rsi": 28, "sell_rsi": 71})
        );
    }

    /// A data directory with the seed's Freqtrade files and candle files (empty: only
    /// their names are read before Freqtrade runs).
    fn seeded(root: &Path) -> (PathBuf, PathBuf) {
        let data = root.join("data");
        crate::datadir::seed_freqtrade(&data).unwrap();
        let market = data.join("market");
        std::fs::create_dir_all(&market).unwrap();
        for name in [
            "ETH_USDT-5m.feather",
            "BTC_USDT-5m.feather",
            "BNB_USDT-5m.json",
            "XRP_USDT-5m.csv",
        ] {
            std::fs::write(market.join(name), "").unwrap();
        }
        (data, market)
    }

    fn seed_macd(data: &Path, market: &Path, work: &Path) -> FreqtradeSetup {
        let spec: FreqtradeSpec = serde_json::from_value(json!({
            "strategy_name": "MACD_Aggressive", "config_file": "freqtrade/configs/macd_hunter.json",
            "pairs": ["ETH/USDT", "BTC/USDT"], "timeframe": "5m"}))
        .unwrap();
        let parameters = json!({
            "macd_fast": {"value": 12, "type": "integer"},
            "stoploss": {"value": -0.08, "type": "float"},
            "minimal_roi": {"value": {"0": 0.15}, "type": "object"}});
        let settings = crate::config::FreqtradeConfig {
            bin: Some(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-python3"),
            ),
            ..Default::default()
        };
        std::fs::write(
            data.join(crate::freqtrade::DEFAULT_OVERRIDES),
            json!({"exchange": {"key": "live-key", "secret": "live-secret",
                                "ccxt_config": {"apiKey": "k", "urls": {"api": {"public": "http://127.0.0.1:1/api/v3"}}},
                                "enable_ws": true},
                   "api_server": {"password": "hunter2"}})
            .to_string(),
        )
        .unwrap();
        let plan = StrategyPlan {
            class: "MACD_Aggressive",
            config_file: "freqtrade/configs/macd_hunter.json",
            spec: &spec,
            parameters: parameters.as_object().unwrap(),
        };
        FreqtradeSetup::for_strategy(
            data,
            market,
            &settings,
            plan,
            None,
            "20261101-20261201",
            work,
        )
        .unwrap()
    }

    #[test]
    fn a_setup_renders_the_bots_config_without_what_a_backtest_must_not_have() {
        let root = tempfile::tempdir().unwrap();
        let (data, market) = seeded(root.path());
        let work = root.path().join("job");
        let mut setup = seed_macd(&data, &market, &work);
        assert_eq!(
            setup.pairs,
            ["ETH/USDT", "BTC/USDT"],
            "the deployment section's"
        );
        assert_eq!(
            setup.strategy_file,
            data.join("freqtrade/strategies/MACD_Aggressive.py")
        );
        // A previous run's leftovers.
        std::fs::create_dir_all(work.join("results")).unwrap();
        std::fs::write(work.join("results").join(LAST_RESULT), "{}").unwrap();
        std::fs::create_dir_all(work.join("user_data/hyperopt_results")).unwrap();
        std::fs::write(
            work.join("user_data/hyperopt_results").join(LAST_RESULT),
            "{}",
        )
        .unwrap();

        let rendered = render_config(&setup).unwrap();
        assert_eq!(rendered.data_format, "feather");
        assert!(
            std::fs::read_dir(&rendered.results_dir)
                .unwrap()
                .next()
                .is_none(),
            "emptied"
        );
        assert!(!rendered.user_dir.join("hyperopt_results").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&rendered.config_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let c: Value =
            serde_json::from_slice(&std::fs::read(&rendered.config_file).unwrap()).unwrap();
        for gone in ["api_server", "memd", "telegram", "db_url"] {
            assert!(c.get(gone).is_none(), "{gone} left out");
        }
        assert_eq!(c["dry_run"], json!(true));
        assert_eq!(c["timeframe"], "5m");
        assert_eq!(c["stake_amount"], json!(100), "the base config's stake");
        assert_eq!(c["dry_run_wallet"], json!(1000));
        assert_eq!(
            c["stoploss"],
            json!(-0.08),
            "the registry's config keys, as for a bot"
        );
        assert!(c.get("macd_fast").is_none());
        assert_eq!(c["pairlists"], json!([{"method": "StaticPairList"}]));
        let ex = &c["exchange"];
        assert_eq!(ex["pair_whitelist"], json!(["ETH/USDT", "BTC/USDT"]));
        assert_eq!(ex["enable_ws"], json!(false));
        assert_eq!(
            ex["ccxt_config"]["urls"]["api"]["public"], "http://127.0.0.1:1/api/v3",
            "the overrides'"
        );
        assert!(
            ex.get("key").is_none()
                && ex.get("secret").is_none()
                && ex["ccxt_config"].get("apiKey").is_none()
        );
        let text = std::fs::read_to_string(&rendered.config_file).unwrap();
        assert!(!text.contains("live-secret") && !text.contains("hunter2"));

        // The strategy's copy, with the mixin it imports and nothing else.
        let mut copied: Vec<String> = std::fs::read_dir(&rendered.strategy_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        copied.sort();
        assert_eq!(copied, ["MACD_Aggressive.py", "memd_mixin.py"]);
        let source = std::fs::read(&setup.strategy_file).unwrap();
        assert_eq!(rendered.strategy_hash, sha256_hex(&source));
        assert_eq!(rendered.strategy_hash.len(), 64);

        // The hash is of the config: another exchange key (left out) gives the same one,
        // another stoploss another.
        let again = render_config(&setup).unwrap();
        assert_eq!(again.config_hash, rendered.config_hash);
        setup.overrides.as_mut().unwrap()["exchange"]["secret"] = json!("rotated");
        assert_eq!(
            render_config(&setup).unwrap().config_hash,
            rendered.config_hash
        );

        // Chosen parameters: the file beside the copy, and its config keys over the
        // registry's (Freqtrade lets a config key win over the file).
        let chosen = json!({"strategy_name": "MACD_Aggressive", "ft_stratparam_v": 1,
                            "params": {"stoploss": {"stoploss": -0.2}, "roi": {"0": 0.3}, "buy": {"x": 1}}});
        setup.strategy_parameters = Some(chosen.clone());
        let tuned = render_config(&setup).unwrap();
        assert_ne!(tuned.config_hash, rendered.config_hash);
        let file: Value = serde_json::from_slice(
            &std::fs::read(tuned.strategy_dir.join("MACD_Aggressive.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(file, chosen);
        let c: Value = serde_json::from_slice(&std::fs::read(&tuned.config_file).unwrap()).unwrap();
        assert_eq!(
            (c["stoploss"].clone(), c["minimal_roi"].clone()),
            (json!(-0.2), json!({"0": 0.3}))
        );
        assert!(
            c.get("x").is_none(),
            "a strategy parameter is the file's, not the config's"
        );
        setup.strategy_parameters = None;
        render_config(&setup).unwrap();
        assert!(
            !tuned.strategy_dir.join("MACD_Aggressive.json").exists(),
            "no stale parameters"
        );
        setup.strategy_parameters = Some(json!({"strategy_name": "Other", "params": {}}));
        assert!(
            render_config(&setup)
                .unwrap_err()
                .contains("for strategy \"Other\", not MACD_Aggressive")
        );
    }

    #[test]
    fn what_freqtrade_cannot_run_is_refused_before_it_runs() {
        let root = tempfile::tempdir().unwrap();
        let (data, market) = seeded(root.path());
        let mut setup = seed_macd(&data, &market, &root.path().join("job"));
        setup.pairs = vec!["ETH/USDT".into(), "BNB/USDT".into()];
        let err = render_config(&setup).unwrap_err();
        assert!(
            err.contains("two formats") && err.contains("BNB_USDT-5m.json"),
            "{err}"
        );
        setup.pairs = vec!["XRP/USDT".into()];
        assert!(
            render_config(&setup)
                .unwrap_err()
                .contains("XRP_USDT-5m.csv: Freqtrade reads")
        );
        setup.pairs = vec!["SOL/USDT".into()];
        assert!(render_config(&setup).unwrap_err().contains("SOL/USDT"));
        setup.pairs = vec!["ETH/USDT".into()];
        for bad in ["2026-11", "-", "20261101", "2026110-", "x-y"] {
            setup.timerange = bad.into();
            assert!(
                render_config(&setup).unwrap_err().contains("timerange"),
                "{bad}"
            );
        }
        for good in [
            "20261101-",
            "-20261201",
            "20261101-20261201",
            "1796342400-1796428800",
        ] {
            assert!(check_timerange(good).is_ok(), "{good}");
        }
        setup.timerange = "20261101-".into();
        setup.strategy_class = "MACD; rm".into();
        assert!(
            render_config(&setup)
                .unwrap_err()
                .contains("not a Python class name")
        );
    }

    #[test]
    fn the_commands_run_freqtrade_on_the_work_directory() {
        let root = tempfile::tempdir().unwrap();
        let (data, market) = seeded(root.path());
        let work = root.path().join("job");
        let setup = seed_macd(&data, &market, &work);
        let rendered = render_config(&setup).unwrap();
        let args = |c: &Command| -> Vec<String> {
            c.get_args()
                .map(|a| a.to_string_lossy().to_string())
                .collect()
        };
        let w = |p: &str| work.join(p).display().to_string();
        let backtest = backtest_command(&setup, &rendered);
        assert_eq!(backtest.get_program(), setup.bin.as_os_str());
        assert_eq!(
            args(&backtest),
            [
                "backtesting",
                "--config",
                &w("config.json"),
                "--userdir",
                &w("user_data"),
                "--strategy-path",
                &w("strategy"),
                "--strategy",
                "MACD_Aggressive",
                "--datadir",
                &market.display().to_string(),
                "--data-format-ohlcv",
                "feather",
                "--timerange",
                "20261101-20261201",
                "--export",
                "trades",
                "--backtest-directory",
                &w("results"),
                "--cache",
                "none",
            ]
        );
        assert_eq!(backtest.get_current_dir(), Some(work.as_path()));
        let env: Vec<(String, String)> = backtest
            .get_envs()
            .filter_map(|(k, v)| {
                Some((
                    k.to_string_lossy().to_string(),
                    v?.to_string_lossy().to_string(),
                ))
            })
            .collect();
        assert!(env.contains(&("PYTHONDONTWRITEBYTECODE".into(), "1".into())));
        assert!(env.contains(&("HOME".into(), work.display().to_string())));

        let mut options = HyperoptOptions {
            epochs: 30,
            spaces: vec!["roi".into(), "stoploss".into()],
            loss: "SharpeHyperOptLoss".into(),
            random_state: 7,
            jobs: 1,
        };
        let hyperopt = hyperopt_command(&setup, &rendered, &options).unwrap();
        let a = args(&hyperopt);
        assert_eq!(a[0], "hyperopt");
        assert_eq!(
            a[15..],
            [
                "--epochs",
                "30",
                "--spaces",
                "roi",
                "stoploss",
                "--hyperopt-loss",
                "SharpeHyperOptLoss",
                "--random-state",
                "7",
                "-j",
                "1",
                "--disable-param-export"
            ]
        );
        options.spaces = vec!["roi stoploss".into()];
        assert!(
            hyperopt_command(&setup, &rendered, &options)
                .unwrap_err()
                .contains("spaces")
        );
        options.spaces = vec!["roi".into()];
        options.epochs = 0;
        assert!(
            hyperopt_command(&setup, &rendered, &options)
                .unwrap_err()
                .contains("epochs")
        );
    }

    #[test]
    fn a_strategy_file_is_found_as_freqtrade_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "class Other(IStrategy):\n").unwrap();
        std::fs::write(
            dir.path().join("b.py"),
            "import x\nclass Mine(Base, IStrategy):\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("Mine2.py"), "class Mine2:\n").unwrap();
        assert_eq!(
            find_strategy_file(dir.path(), "Mine").unwrap(),
            dir.path().join("b.py")
        );
        assert_eq!(
            find_strategy_file(dir.path(), "Mine2").unwrap(),
            dir.path().join("Mine2.py")
        );
        assert!(
            find_strategy_file(dir.path(), "Min")
                .unwrap_err()
                .contains("defines the strategy class Min")
        );
        assert_eq!(
            imported_modules(
                "from memd_mixin import MemdMixin\nimport numpy as np, pandas\n  from .rel import x\nfrom a.b import c\n"
            ),
            ["memd_mixin", "numpy", "pandas", "a"]
        );
    }
}

/// Runs of the real Freqtrade against the mock exchange (`MEMD_TEST_FREQTRADE`; skipped
/// without it): what the queue will do, end to end, and the benchmark of BENCHMARKS.md.
#[cfg(test)]
mod real {
    use super::*;
    use mem_e2e::mock_exchange::MockExchange;
    use mem_protocol::deploy_spec::{RunPlan, deployable};
    use mem_protocol::strategy::StrategyDocument;
    use std::time::{Duration, Instant};

    /// The seed's Freqtrade MACD Hunter, Conservative RSI and Aggressive RSI.
    const SEED_BOTS: [&str; 3] = [
        "4ce3a79b-c22b-4b42-9d87-3a58052a9eec",
        "186062cd-e0f7-45eb-b387-3067360efe34",
        "8a778f7f-37b5-4eae-9fca-e7cb383b048a",
    ];

    /// A data directory seeded as memd seeds one, its overrides pointing at `mock`.
    fn data_dir(root: &Path, mock: &MockExchange) -> PathBuf {
        let data = root.join("data");
        crate::datadir::seed_freqtrade(&data).unwrap();
        std::fs::write(
            data.join(crate::freqtrade::DEFAULT_OVERRIDES),
            serde_json::to_vec(&mock.memd_overrides()).unwrap(),
        )
        .unwrap();
        data
    }

    /// `freqtrade download-data` of `days` from the mock into `market`, as memd's refresh
    /// runs it.
    fn download(
        bin: &Path,
        mock: &MockExchange,
        market: &Path,
        pairs: &[&str],
        timeframes: &[&str],
        days: u32,
    ) {
        let staging = market.join(".download");
        std::fs::create_dir_all(staging.join("user_data")).unwrap();
        let mut exchange = mock.ccxt_config();
        exchange["pair_whitelist"] = json!([]);
        let config = json!({"exchange": exchange, "stake_currency": "USDT", "dry_run": true,
                            "trading_mode": "spot", "dataformat_ohlcv": "feather"});
        std::fs::write(staging.join("config.json"), config.to_string()).unwrap();
        let mut command = Command::new(bin);
        command
            .arg("download-data")
            .arg("--config")
            .arg(staging.join("config.json"))
            .arg("--userdir")
            .arg(staging.join("user_data"))
            .arg("--datadir")
            .arg(market)
            .args([
                "--data-format-ohlcv",
                "feather",
                "--days",
                &days.to_string(),
                "--pairs",
            ])
            .args(pairs)
            .arg("--timeframes")
            .args(timeframes)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let (ok, _) = run(command, &staging.join("download.log"));
        assert!(
            ok,
            "download-data failed: {:?}",
            last_log_lines(&staging.join("download.log"), 20)
        );
        std::fs::remove_dir_all(&staging).unwrap();
    }

    /// Runs a command as the queue does (output into a log file); answers whether it
    /// exited 0, and its wall time.
    fn run(mut command: Command, log: &Path) -> (bool, Duration) {
        let out = std::fs::File::create(log).unwrap();
        let started = Instant::now();
        let status = command
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        (status.success(), started.elapsed())
    }

    /// A seed bot's setup, as the queue makes it from the registry.
    fn seed_setup(
        data: &Path,
        id: &str,
        pairs: Option<&[String]>,
        timerange: &str,
        work: &Path,
    ) -> FreqtradeSetup {
        let path = format!(
            "{}/../data/strategy_registry/metadata/{id}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: StrategyDocument = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let Ok(RunPlan::Freqtrade {
            class,
            config_file,
            spec,
        }) = deployable(&doc.strategy)
        else {
            panic!("{id} is a Freqtrade bot");
        };
        let settings = crate::config::FreqtradeConfig {
            bin: mem_e2e::freqtrade::binary(),
            ..Default::default()
        };
        let plan = StrategyPlan {
            class: &class,
            config_file: &config_file,
            spec: &spec,
            parameters: &doc.strategy.parameters,
        };
        FreqtradeSetup::for_strategy(
            data,
            &data.join("market"),
            &settings,
            plan,
            pairs,
            timerange,
            work,
        )
        .unwrap()
    }

    fn midnight(days_ago: i64) -> DateTime<Utc> {
        let day = (Utc::now() - chrono::Duration::days(days_ago)).date_naive();
        day.and_hms_opt(0, 0, 0).unwrap().and_utc()
    }

    fn day(days_ago: i64) -> String {
        (Utc::now() - chrono::Duration::days(days_ago))
            .format("%Y%m%d")
            .to_string()
    }

    /// Keeps a run's work directory in `MEMD_KEEP_FREQTRADE_RUNS` (fixtures are made so).
    fn keep(work: &Path, name: &str) {
        if let Some(dir) = std::env::var_os("MEMD_KEEP_FREQTRADE_RUNS") {
            let target = PathBuf::from(dir).join(name);
            std::fs::create_dir_all(&target).unwrap();
            let status = Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", work.display()))
                .arg(&target)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    #[test]
    fn a_backtest_a_hyperopt_and_the_chosen_parameters_out_of_sample() {
        let Some(bin) = mem_e2e::freqtrade::binary() else {
            return;
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mock = runtime.block_on(mem_e2e::mock_exchange::start(&["ETH/USDT", "BTC/USDT"]));
        let root = tempfile::tempdir().unwrap();
        let data = data_dir(root.path(), &mock);
        download(
            &bin,
            &mock,
            &data.join("market"),
            &["ETH/USDT", "BTC/USDT"],
            &["5m"],
            3,
        );

        // The seed's MACD Hunter over one day, as its bot runs it.
        let work = root.path().join("job-backtest");
        let setup = seed_setup(
            &data,
            SEED_BOTS[0],
            None,
            &format!("{}-{}", day(1), day(0)),
            &work,
        );
        assert_eq!(setup.pairs, ["ETH/USDT", "BTC/USDT"]);
        let rendered = render_config(&setup).unwrap();
        let log = work.join("job.log");
        let (ok, took) = run(backtest_command(&setup, &rendered), &log);
        assert!(ok, "{:?}", last_log_lines(&log, 20));
        let result = read_backtest_result(&rendered.results_dir, "MACD_Aggressive").unwrap();
        eprintln!(
            "backtest: {:.1} s, {:?}",
            took.as_secs_f64(),
            result.measured.figures
        );
        assert_eq!(
            freqtrade_version(&log).as_deref(),
            Some(crate::freqtrade::PINNED_VERSION)
        );
        let m = &result.measured;
        assert_eq!(m.pairs, ["ETH/USDT", "BTC/USDT"]);
        assert!(
            m.figures.trades > 0,
            "MACD crosses in a day of the mock's prices"
        );
        let last = m.equity.last().unwrap().equity;
        assert!(
            (last - m.figures.final_balance).abs() < 1e-6,
            "{last} vs {}",
            m.figures.final_balance
        );
        assert!(!rendered.strategy_dir.join("__pycache__").exists());
        keep(&work, "backtest");

        // Hyperopt of a tunable MACD (its own parameters and ROI and stoploss) in-sample.
        let strategies = data.join("freqtrade/strategies");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/freqtrade/MACD_Tunable.py"
            ),
            strategies.join("MACD_Tunable.py"),
        )
        .unwrap();
        let work = root.path().join("job-walk-forward");
        let mut setup = seed_setup(
            &data,
            SEED_BOTS[0],
            Some(&["ETH/USDT".to_string()]),
            // In-sample up to the out-of-sample day, its first candle left out.
            &timerange(midnight(2), midnight(1)),
            &work,
        );
        setup.strategy_class = "MACD_Tunable".into();
        setup.strategy_file = find_strategy_file(&strategies, "MACD_Tunable").unwrap();
        let rendered = render_config(&setup).unwrap();
        for module in ["MACD_Tunable.py", "MACD_Aggressive.py", "memd_mixin.py"] {
            assert!(
                rendered.strategy_dir.join(module).is_file(),
                "{module} copied"
            );
        }
        let options = HyperoptOptions {
            epochs: 3,
            spaces: vec!["buy".into(), "roi".into(), "stoploss".into()],
            loss: "SharpeHyperOptLoss".into(),
            random_state: 24,
            jobs: 1,
        };
        let log = work.join("job.log");
        let (ok, took) = run(hyperopt_command(&setup, &rendered, &options).unwrap(), &log);
        assert!(ok, "{:?}", last_log_lines(&log, 20));
        let best = read_hyperopt_result(&rendered.user_dir, "MACD_Tunable").unwrap();
        eprintln!(
            "hyperopt: {:.1} s, epoch {} of {}: {:?}",
            took.as_secs_f64(),
            best.epoch,
            best.epochs,
            best.parameters
        );
        assert_eq!(best.epochs, 3);
        assert_eq!(best.in_sample.data_from, midnight(2));
        assert_eq!(
            best.in_sample.data_to,
            midnight(1),
            "the last candle closes at the end"
        );
        for key in ["buy_trend", "minimal_roi", "stoploss"] {
            assert!(
                best.parameters.contains_key(key),
                "{key} in {:?}",
                best.parameters
            );
        }
        assert!(
            !best.parameters.contains_key("sell_signal"),
            "not optimised"
        );
        assert!(
            !rendered.strategy_dir.join("MACD_Tunable.json").exists(),
            "no export"
        );
        keep(&work, "hyperopt");

        // The chosen parameters, out-of-sample: Freqtrade loads them from the parameter
        // file beside the copy; its report shows the ROI and stoploss it ran with.
        setup.timerange = format!("{}-{}", day(1), day(0));
        setup.strategy_parameters = Some(best.parameter_file.clone());
        let rendered = render_config(&setup).unwrap();
        let (ok, _) = run(backtest_command(&setup, &rendered), &log);
        assert!(ok, "{:?}", last_log_lines(&log, 20));
        let out = read_backtest_result(&rendered.results_dir, "MACD_Tunable").unwrap();
        let zip = read_zipped_json(&out.result_file).unwrap();
        let section = &zip["strategy"]["MACD_Tunable"];
        assert_eq!(section["stoploss"], best.parameters["stoploss"]);
        assert_eq!(section["minimal_roi"], best.parameters["minimal_roi"]);
        let loaded = std::fs::read_to_string(work.join("job.log")).unwrap();
        let trend = format!(
            "Strategy Parameter: buy_trend = {}",
            best.parameters["buy_trend"]
        );
        assert!(loaded.contains(&trend), "{trend} in the log");
        keep(&work, "out-of-sample");
        runtime.block_on(mock.shutdown());
    }

    /// BENCHMARKS.md's row: each seed bot's strategy backtested by the real Freqtrade on
    /// 30 days of two pairs from the mock, as memd renders it; wall time of `freqtrade
    /// backtesting`, median of 3.
    #[test]
    #[ignore = "timing: downloads 30 days of candles and runs 12 backtests (about 2 minutes)"]
    fn seed_strategies_backtest_times() {
        let Some(bin) = mem_e2e::freqtrade::binary() else {
            return;
        };
        let pairs = ["ETH/USDT".to_string(), "BTC/USDT".to_string()];
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mock = runtime.block_on(mem_e2e::mock_exchange::start(&["ETH/USDT", "BTC/USDT"]));
        let root = tempfile::tempdir().unwrap();
        let data = data_dir(root.path(), &mock);
        let started = Instant::now();
        download(
            &bin,
            &mock,
            &data.join("market"),
            &["ETH/USDT", "BTC/USDT"],
            &["5m", "1m"],
            30,
        );
        eprintln!(
            "download-data, 30 days, 2 pairs, 5m and 1m: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // Each seed bot over the 30 days, then the MACD Hunter over its last day alone:
        // Freqtrade's fixed cost (start-up, markets, strategy), for comparison.
        let runs = SEED_BOTS
            .iter()
            .map(|id| (*id, format!("{}-", day(30))))
            .chain([(SEED_BOTS[0], format!("{}-", day(1)))]);
        for (i, (id, range)) in runs.enumerate() {
            let work = root.path().join(format!("run-{i}"));
            let setup = seed_setup(&data, id, Some(&pairs), &range, &work);
            let mut times = Vec::new();
            let mut result = None;
            for _ in 0..3 {
                let rendered = render_config(&setup).unwrap();
                let log = work.join("job.log");
                let (ok, took) = run(backtest_command(&setup, &rendered), &log);
                assert!(ok, "{:?}", last_log_lines(&log, 20));
                result = Some(
                    read_backtest_result(&rendered.results_dir, &setup.strategy_class).unwrap(),
                );
                times.push(took.as_secs_f64());
            }
            let m = result.unwrap().measured;
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            eprintln!(
                "{} ({}, {}, {} to {}): median {:.2} s of {:?}, {} trades",
                setup.strategy_class,
                setup.timeframe,
                setup.pairs.join(" "),
                m.data_from.format("%Y-%m-%d %H:%M"),
                m.data_to.format("%Y-%m-%d %H:%M"),
                sorted[1],
                times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>(),
                m.figures.trades
            );
        }
        runtime.block_on(mock.shutdown());
    }
}
