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
    /// Freqtrade's form: `20261101-20261201` (either side may be empty).
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
        let strategy_file =
            find_strategy_file(&data_dir.join("freqtrade/strategies"), plan.class)?;
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
            && !self.strategy_class.starts_with(|c: char| c.is_ascii_digit());
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

    fn timeframe(&self) -> Result<Timeframe, String> {
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
    let side = |s: &str| s.is_empty() || (s.chars().all(|c| c.is_ascii_digit()) && [8, 10, 13].contains(&s.len()));
    match timerange.split_once('-') {
        Some((from, to)) if side(from) && side(to) && !(from.is_empty() && to.is_empty()) => {
            Ok(())
        }
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
        .map_err(|e| format!("cannot read the strategies directory {}: {e}", dir.display()))?
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

fn sha256_hex(bytes: &[u8]) -> String {
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
        let name = |s: &str| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
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
            return Err(format!(
                "hyperopt loss {:?} is not a class name",
                self.loss
            ));
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
        let ts = trade["close_timestamp"].as_i64().ok_or_else(|| {
            format!("{what}: trade {i} has no `close_timestamp` in milliseconds")
        })?;
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
    let text =
        std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut epochs = 0u64;
    let mut best: Option<(u64, f64, Value)> = None;
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        epochs += 1;
        let epoch: Value = serde_json::from_str(line)
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
