//! Configuration: the TOML file, environment overrides, command-line flags, defaults.
//!
//! Precedence, highest first: command-line flag, environment variable, config file,
//! default. Unknown keys in the file are an error naming the key, so a typo never turns
//! into a silently ignored setting.
//!
//! | setting | flag | environment | file key | default (system / user) |
//! |---|---|---|---|---|
//! | config file | `--config` | `MEMD_CONFIG` | | `/etc/memd/memd.toml` / `$XDG_CONFIG_HOME/memd/memd.toml`, if present |
//! | data directory | `--data-dir` | `MEMD_DATA_DIR` | `data_dir` | `$STATE_DIRECTORY` or `/var/lib/memd` / `$XDG_DATA_HOME/memd` |
//! | registry directory | | `STRATEGY_REGISTRY_PATH` | `registry_dir` | `{data_dir}/strategy_registry` |
//! | socket | `--socket` | `MEMD_SOCKET` | `socket` | `$RUNTIME_DIRECTORY/memd.sock` or `/run/memd/memd.sock` / `$XDG_RUNTIME_DIR/memd/memd.sock` |
//! | log directory | | `MEMD_LOG_DIR` | `log.dir` | `$LOGS_DIRECTORY` or `/var/log/memd` / `{data_dir}/logs` |
//! | log level | | `MEMD_LOG` (an `EnvFilter`) | `log.level` | `info` |
//! | memory at rest | | | `mem.encryption.encrypt`, `mem.encryption.key_file` | plain; key `$CREDENTIALS_DIRECTORY/memd-memory-key` or `{data_dir}/memory.key` |
//!
//! Renamed keys are still read under their old names, each with a warning naming the new
//! key ([`RENAMED`]): `[mem] base_weight` (now `[mem.enhancement] base_weight`, and so
//! for every enhancement setting), `[memory] encrypt` and `key_file` (now
//! `[mem.encryption]`).

use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config file as written by the operator; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub data_dir: Option<PathBuf>,
    pub registry_dir: Option<PathBuf>,
    /// `[registry]`: files (under `registry_dir`) or a PostgreSQL database.
    #[serde(default)]
    pub registry: crate::registry::config::RegistryConfig,
    pub socket: Option<PathBuf>,
    /// Copy the built-in strategies into a new data directory (default true).
    pub seed_default_data: Option<bool>,
    #[serde(default)]
    pub access: AccessConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub freqtrade: FreqtradeConfig,
    #[serde(default)]
    pub market: MarketConfig,
    #[serde(default)]
    pub model: ModelConfig,
    /// `[mem]`: MEM's settings: enhancement, encryption at rest, the decision log.
    #[serde(default)]
    pub mem: MemConfig,
    /// `[schedule]`: the scheduled jobs.
    #[serde(default)]
    pub schedule: crate::schedule::config::ScheduleConfig,
    /// `[http]`: the optional HTTP API (the seed's REST endpoints).
    #[serde(default)]
    pub http: HttpConfig,
    /// `[recommend]`: how recommendations treat strategies nobody measured.
    #[serde(default)]
    pub recommend: RecommendConfig,
    /// `[queue]`: the queue of heavy work (backtests, walk-forwards).
    #[serde(default)]
    pub queue: crate::queue::QueueConfig,
    /// `[backtest]`: what a backtest measures by default, and what passes.
    #[serde(default)]
    pub backtest: crate::backtest::job::BacktestConfig,
    /// `[alerts]`: Telegram, a webhook, the log; the rules and how often.
    #[serde(default)]
    pub alerts: crate::alerts::config::AlertsConfig,
    /// `[risk]`: the risk guard's limits over every deployment (all off unless set).
    #[serde(default)]
    pub risk: crate::risk::RiskConfig,
}

/// `[recommend]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendConfig {
    /// `score` (default: on their category alone, their typed-in figures earn nothing) or
    /// `exclude` (never recommended) for strategies no backtest of memd's has measured.
    #[serde(default)]
    pub unmeasured: crate::recommend::Unmeasured,
}

/// `[mem]`: everything MEM reads from the config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemConfig {
    /// `[mem.enhancement]`: signal enhancement weights and sizing.
    #[serde(default)]
    pub enhancement: crate::mem::enhance::EnhanceSettings,
    /// `[mem.encryption]`: the memory files (`mem_knowledge/`) at rest.
    #[serde(default)]
    pub encryption: EncryptionConfig,
    /// `[mem.adaptation]`: the regime rules of the enhancement.
    #[serde(default)]
    pub adaptation: crate::mem::enhance::AdaptationSettings,
    /// The human decision log is archived past this size.
    pub text_log_max_bytes: Option<u64>,
    /// `decisions.jsonl` is archived past this size.
    pub decision_log_max_bytes: Option<u64>,
    /// Either log is archived once its first record is this old (0: by size only).
    pub log_max_age_days: Option<f64>,
    /// Archives older than this are deleted (0: kept for ever).
    pub archive_keep_days: Option<f64>,
}

impl MemConfig {
    /// `[mem]`'s log keys, defaults filled in; a negative or absurd age is refused.
    fn log_limits(&self) -> anyhow::Result<crate::mem::archive::Limits> {
        let defaults = crate::mem::archive::Limits::default();
        let days = |name: &str, value: Option<f64>, default: Option<chrono::Duration>| match value {
            None => Ok(default),
            Some(0.0) => Ok(None),
            Some(d) if d.is_finite() && d > 0.0 && d <= 100.0 * 365.0 => Ok(Some(
                chrono::Duration::milliseconds((d * 86_400_000.0).round() as i64),
            )),
            Some(d) => Err(anyhow::anyhow!(
                "[mem] {name} must be 0 (never) or a number of days up to 36500, got {d}"
            )),
        };
        Ok(crate::mem::archive::Limits {
            text_max_bytes: self.text_log_max_bytes.unwrap_or(defaults.text_max_bytes),
            decisions_max_bytes: self
                .decision_log_max_bytes
                .unwrap_or(defaults.decisions_max_bytes),
            max_age: days("log_max_age_days", self.log_max_age_days, defaults.max_age)?,
            keep: days("archive_keep_days", self.archive_keep_days, defaults.keep)?,
        })
    }
}

/// `[mem.encryption]`: encryption at rest of `mem_knowledge/` (see `mem::crypt`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Encrypt the decision logs, parameter updates and learned strategies (default false).
    #[serde(default)]
    pub encrypt: bool,
    /// The key: 64 hex digits, mode 0600 or 0400 (default `{data_dir}/memory.key`,
    /// created when encryption is first turned on). The systemd credential
    /// `memd-memory-key` takes precedence when present.
    pub key_file: Option<PathBuf>,
}

/// `[http]`: off unless `listen` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `host:port` to listen on, e.g. `127.0.0.1:5002`.
    pub listen: Option<String>,
    /// Needed to listen on anything but loopback (the API can deploy bots).
    #[serde(default)]
    pub allow_remote: bool,
    /// `[http.tradingview]`: the TradingView alert webhook.
    #[serde(default)]
    pub tradingview: TradingViewConfig,
}

/// `[http.tradingview]`: `POST /api/mem/webhooks/tradingview` (see `http::tradingview`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TradingViewConfig {
    /// Serve the webhook when the HTTP API is on (default true).
    pub enabled: bool,
    /// The base signal's confidence when the alert gives none (default 0.7).
    pub base_confidence: f64,
    /// The threshold the enhanced confidence must reach to be forwarded to a bot, for a
    /// strategy the learning loop has set none for (default 0.6).
    pub confidence_threshold: f64,
    /// Alerts accepted per minute (default 60); more answer 429. Requests with a bad
    /// secret have a budget of their own, the same size.
    pub rate_limit_per_minute: u32,
    /// Forward to bots that trade for real (dry_run false) too (default false: dry-run
    /// bots only).
    pub forward_live: bool,
}

impl Default for TradingViewConfig {
    fn default() -> Self {
        TradingViewConfig {
            enabled: true,
            base_confidence: 0.7,
            confidence_threshold: 0.6,
            rate_limit_per_minute: 60,
            forward_live: false,
        }
    }
}

impl TradingViewConfig {
    /// Checks the ranges; the error names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (key, v) in [
            ("base_confidence", self.base_confidence),
            ("confidence_threshold", self.confidence_threshold),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                bail!("[http.tradingview] {key} must be within 0 and 1, got {v}");
            }
        }
        if self.rate_limit_per_minute == 0 {
            bail!("[http.tradingview] rate_limit_per_minute must be at least 1");
        }
        Ok(())
    }
}

impl HttpConfig {
    /// The address to listen on, checked: loopback unless `allow_remote`.
    pub fn address(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        let Some(text) = &self.listen else {
            return Ok(None);
        };
        let address: std::net::SocketAddr = text.parse().map_err(|e| {
            anyhow::anyhow!(
                "[http] listen: {text:?} is not an address like \"127.0.0.1:5002\": {e}"
            )
        })?;
        if !address.ip().is_loopback() && !self.allow_remote {
            bail!(
                "[http] listen: {address} is reachable from other machines; set allow_remote = true to mean it (and put TLS in front)"
            );
        }
        Ok(Some(address))
    }
}

/// `[market]`: where candles are read from, and which ones the model trains on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    /// A directory in Freqtrade's data layout (default: `{data_dir}/market`, seeded with
    /// the shipped candles).
    pub data_dir: Option<PathBuf>,
    /// Pairs to train on, as Freqtrade names them (`ETH/BTC`); default: every pair found
    /// for the timeframe.
    #[serde(default)]
    pub pairs: Vec<String>,
    /// Default `5m`.
    pub timeframe: Option<String>,
    /// The pair whose candles give the market conditions (default: BTC/USDT when there
    /// are candles for it, else the first pair found).
    pub reference_pair: Option<String>,
    /// The timeframe conditions are read on (default `1h`, resampled from finer candles).
    pub conditions_timeframe: Option<String>,
    /// Candles of their timeframe after which data are stale (default 3): stale
    /// conditions stop the regime job and the rotation.
    pub stale_after_candles: Option<u32>,
    /// `[market.refresh]`: the `data_refresh` job's exchange, pairs, timeframes, history.
    #[serde(default)]
    pub refresh: crate::market::refresh::RefreshConfig,
}

/// `[model]`: the trend-reversal model's hyper-parameters and promotion rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub n_trees: Option<usize>,
    pub max_depth: Option<usize>,
    pub learning_rate: Option<f64>,
    pub min_samples_split: Option<usize>,
    pub seed: Option<u64>,
    /// `accuracy` (the seed's), `roc_auc` or `log_loss`.
    pub promotion_metric: Option<mem_protocol::ml::PromotionMetric>,
    /// How much better a new model must be (default 0.02: the seed's 2 points).
    pub promotion_margin: Option<f64>,
}

/// `[freqtrade]`: where Freqtrade is, and how bots are supervised.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreqtradeConfig {
    /// The `freqtrade` binary (default: the data dir's virtualenv, else PATH).
    pub bin: Option<PathBuf>,
    /// A JSON file merged into every bot's config: exchange keys, a test exchange's URLs
    /// (default: `<data>/freqtrade/overrides.json` when it exists). Read at each deploy.
    pub config_overrides: Option<PathBuf>,
    pub ready_timeout_secs: Option<u64>,
    pub stop_timeout_secs: Option<u64>,
    pub poll_interval_secs: Option<f64>,
    pub idle_limit_secs: Option<u64>,
    pub unresponsive_limit_secs: Option<u64>,
    pub max_restarts: Option<u32>,
    /// `[first, last]` ports handed out when a strategy names none.
    pub port_range: Option<[u16; 2]>,
    /// How long a bot's memd mixin waits for MEM's answer before it trades as its
    /// strategy says (default 500 ms).
    pub mem_timeout_ms: Option<u64>,
    /// A bot's memd mixin refuses entries while memd does not answer (default false).
    pub mem_fail_closed: Option<bool>,
}

impl FreqtradeConfig {
    /// The supervisor's settings: these values over the defaults.
    pub fn supervisor_settings(&self) -> crate::supervisor::SupervisorSettings {
        use std::time::Duration;
        let d = crate::supervisor::SupervisorSettings::default();
        crate::supervisor::SupervisorSettings {
            freqtrade_bin: self.bin.clone(),
            config_overrides: self.config_overrides.clone(),
            ready_timeout: self
                .ready_timeout_secs
                .map_or(d.ready_timeout, Duration::from_secs),
            stop_timeout: self
                .stop_timeout_secs
                .map_or(d.stop_timeout, Duration::from_secs),
            poll_interval: self
                .poll_interval_secs
                .map_or(d.poll_interval, Duration::from_secs_f64),
            idle_limit: self
                .idle_limit_secs
                .map_or(d.idle_limit, Duration::from_secs),
            unresponsive_limit: self
                .unresponsive_limit_secs
                .map_or(d.unresponsive_limit, Duration::from_secs),
            max_restarts: self.max_restarts.unwrap_or(d.max_restarts),
            port_range: self.port_range.map_or(d.port_range, |[a, b]| (a, b)),
            mem_socket: None,
            mem_timeout: self
                .mem_timeout_ms
                .map_or(d.mem_timeout, Duration::from_millis),
            mem_fail_closed: self.mem_fail_closed.unwrap_or(d.mem_fail_closed),
        }
    }
}

/// Who may connect, beyond the daemon's own user and root (who always have control).
/// Entries are user or group names, or numeric ids.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    #[serde(default)]
    pub control_users: Vec<String>,
    #[serde(default)]
    pub control_groups: Vec<String>,
    #[serde(default)]
    pub view_users: Vec<String>,
    #[serde(default)]
    pub view_groups: Vec<String>,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: Option<String>,
    pub dir: Option<PathBuf>,
    /// Daily log files kept (default 14).
    pub keep_files: Option<usize>,
}

/// What the command line says (filled by `main` from clap).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    /// Run as the system service: system paths and systemd's directories.
    pub system: bool,
    pub no_seed: bool,
}

/// Whether the daemon is the system service or a user's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    System,
    User,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::System => "system",
            Mode::User => "user",
        }
    }
}

/// Everything resolved: the daemon runs on this.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub registry_dir: PathBuf,
    /// `[registry]`, checked (the password read from its file).
    pub registry: crate::registry::config::Backend,
    pub socket: PathBuf,
    pub log_dir: PathBuf,
    pub log_level: String,
    pub log_keep_files: usize,
    pub seed_default_data: bool,
    pub access: AccessConfig,
    pub freqtrade: FreqtradeConfig,
    pub market: MarketConfig,
    pub model: ModelConfig,
    /// `[mem.enhancement]` and `[mem] text_log_max_bytes`, checked.
    pub enhancement: crate::mem::enhance::EnhanceSettings,
    pub schedule: crate::schedule::config::Schedule,
    /// The HTTP API's address, if on (checked by [`HttpConfig::address`]).
    pub http_listen: Option<std::net::SocketAddr>,
    /// `[http.tradingview]`, checked.
    pub tradingview: TradingViewConfig,
    /// `[mem.encryption]`, resolved.
    pub at_rest: crate::mem::crypt::AtRestSettings,
    /// `[recommend] unmeasured`.
    pub unmeasured: crate::recommend::Unmeasured,
    /// `[queue]`, checked.
    pub queue: crate::queue::QueueSettings,
    /// `[backtest]`, checked.
    pub backtest: crate::backtest::job::BacktestSettings,
    /// `[alerts]`, checked (the token read from its file).
    pub alerts: crate::alerts::config::AlertsSettings,
    /// `[risk]`, checked.
    pub risk: mem_protocol::risk::RiskLimits,
    /// Renamed keys read under their old names, one sentence each (logged at start,
    /// printed by `--check-config`).
    pub warnings: Vec<String>,
}

/// Reads an environment variable, treating empty as unset.
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// systemd's `*_DIRECTORY` variables may hold several colon-separated paths; the first is ours.
fn systemd_dir(name: &str) -> Option<PathBuf> {
    let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
    value.split(':').next().map(PathBuf::from)
}

impl Settings {
    /// Resolves the settings from flags, environment, the config file and defaults.
    pub fn resolve(overrides: &Overrides) -> anyhow::Result<Settings> {
        let mode = if overrides.system {
            Mode::System
        } else {
            Mode::User
        };
        let explicit_config = overrides.config.clone().or_else(|| env_path("MEMD_CONFIG"));
        let config_file = match explicit_config {
            Some(path) => {
                if !path.is_file() {
                    bail!("config file {} does not exist", path.display());
                }
                Some(path)
            }
            None => {
                let default = match mode {
                    Mode::System => Some(PathBuf::from("/etc/memd/memd.toml")),
                    Mode::User => dirs::config_dir().map(|d| d.join("memd/memd.toml")),
                };
                default.filter(|p| p.is_file())
            }
        };
        let (file, warnings) = match &config_file {
            Some(path) => load_file(path)?,
            None => (ConfigFile::default(), Vec::new()),
        };

        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env_path("MEMD_DATA_DIR"))
            .or_else(|| file.data_dir.clone())
            .or_else(|| match mode {
                Mode::System => Some(systemd_dir("STATE_DIRECTORY").unwrap_or_else(|| PathBuf::from("/var/lib/memd"))),
                Mode::User => dirs::data_dir().map(|d| d.join("memd")),
            })
            .context("no data directory: set --data-dir or MEMD_DATA_DIR (no XDG data directory was found)")?;
        let data_dir = absolute(&data_dir)?;
        let registry_dir = env_path("STRATEGY_REGISTRY_PATH")
            .or_else(|| file.registry_dir.clone())
            .map(|p| absolute(&p))
            .transpose()?
            .unwrap_or_else(|| data_dir.join("strategy_registry"));
        let socket = overrides
            .socket
            .clone()
            .or_else(|| env_path("MEMD_SOCKET"))
            .or_else(|| file.socket.clone())
            .unwrap_or_else(|| match mode {
                Mode::System => systemd_dir("RUNTIME_DIRECTORY")
                    .map(|d| d.join("memd.sock"))
                    .unwrap_or_else(mem_protocol::paths::system_socket_path),
                Mode::User => mem_protocol::paths::user_socket_path(),
            });
        let socket = absolute(&socket)?;
        let log_dir = env_path("MEMD_LOG_DIR")
            .or_else(|| file.log.dir.clone())
            .unwrap_or_else(|| match mode {
                Mode::System => {
                    systemd_dir("LOGS_DIRECTORY").unwrap_or_else(|| PathBuf::from("/var/log/memd"))
                }
                Mode::User => data_dir.join("logs"),
            });
        let log_dir = absolute(&log_dir)?;
        // Settings of the later subsystems are checked now, so `--check-config` and a
        // start fail before anything is written, naming the key.
        for (key, value) in [
            ("timeframe", &file.market.timeframe),
            ("conditions_timeframe", &file.market.conditions_timeframe),
        ] {
            if let Some(v) = value {
                v.parse::<crate::market::candles::Timeframe>()
                    .map_err(|e| anyhow::anyhow!("[market] {key}: {e}"))?;
            }
        }
        file.market.refresh.check().map_err(anyhow::Error::msg)?;
        if file.market.stale_after_candles == Some(0) {
            bail!("[market] stale_after_candles must be 1 or more");
        }
        let mut mem = file.mem.enhancement.clone();
        mem.logs = file.mem.log_limits()?;
        mem.adaptation = file.mem.adaptation.clone();
        mem.validate().map_err(anyhow::Error::msg)?;
        let schedule = file.schedule.resolve().map_err(anyhow::Error::msg)?;
        let http_listen = file.http.address()?;
        file.http.tradingview.validate()?;
        let encryption = &file.mem.encryption;
        let at_rest = crate::mem::crypt::AtRestSettings {
            encrypt: encryption.encrypt,
            key_file: match &encryption.key_file {
                Some(path) => absolute(path)?,
                None => data_dir.join(crate::mem::crypt::DEFAULT_KEY_FILE),
            },
        };
        if let Some(m) = file.model.promotion_margin {
            if !(m.is_finite() && m >= 0.0) {
                bail!("[model] promotion_margin must be a number >= 0, got {m}");
            }
        }
        Ok(Settings {
            mode,
            config_file,
            data_dir,
            registry_dir,
            registry: file
                .registry
                .backend(env_path("CREDENTIALS_DIRECTORY").as_deref())?,
            socket,
            log_dir,
            log_level: file.log.level.clone().unwrap_or_else(|| "info".into()),
            log_keep_files: file.log.keep_files.unwrap_or(14),
            seed_default_data: !overrides.no_seed && file.seed_default_data.unwrap_or(true),
            access: file.access,
            freqtrade: file.freqtrade,
            market: file.market,
            model: file.model,
            enhancement: mem,
            schedule,
            http_listen,
            tradingview: file.http.tradingview,
            at_rest,
            unmeasured: file.recommend.unmeasured,
            queue: file.queue.settings()?,
            backtest: file.backtest.settings()?,
            alerts: file.alerts.settings()?,
            risk: file.risk.limits()?,
            warnings,
        })
    }
}

/// Reads and checks the TOML config file; answers it and a warning per renamed key read
/// under its old name.
pub fn load_file(path: &Path) -> anyhow::Result<(ConfigFile, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse(&text).with_context(|| format!("config file {} is invalid", path.display()))
}

/// Keys that moved: (old table, new table, keys; empty: every key of the old table).
pub const RENAMED: &[(&str, &str, &[&str])] = &[
    (
        "mem",
        "mem.enhancement",
        &[
            "base_weight",
            "ml_weight",
            "memory_weight",
            "base_size",
            "min_size",
            "max_size",
            "neutral_confidence",
            "reference_volatility_pct",
            "stop_atr",
            "target_atr",
        ],
    ),
    ("memory", "mem.encryption", &[]),
];

/// Parses a config file's text, moving renamed keys to their new place first.
pub fn parse(text: &str) -> anyhow::Result<(ConfigFile, Vec<String>)> {
    let mut table: toml::Table = toml::from_str(text)?;
    let mut warnings = Vec::new();
    for (old, new, keys) in RENAMED {
        let Some(toml::Value::Table(from)) = table.get_mut(*old) else {
            continue;
        };
        let moved: Vec<(String, toml::Value)> = match keys {
            [] => std::mem::take(from).into_iter().collect(),
            keys => keys
                .iter()
                .filter_map(|k| from.remove(*k).map(|v| (k.to_string(), v)))
                .collect(),
        };
        if from.is_empty() && keys.is_empty() {
            table.remove(*old);
        }
        for (key, value) in moved {
            let target = sub_table(&mut table, new)?;
            if target.contains_key(&key) {
                bail!(
                    "[{new}] {key} and its old name [{old}] {key} are both set; keep [{new}] {key}"
                );
            }
            warnings.push(format!(
                "[{old}] {key} is read as [{new}] {key}, its new name: rename it in the config file"
            ));
            target.insert(key, value);
        }
    }
    Ok((table.try_into()?, warnings))
}

/// The table at a dotted path (`mem.enhancement`), created where missing.
fn sub_table<'a>(table: &'a mut toml::Table, path: &str) -> anyhow::Result<&'a mut toml::Table> {
    let mut at = table;
    for part in path.split('.') {
        let entry = at
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match entry {
            toml::Value::Table(t) => t,
            _ => bail!("[{path}]: `{part}` must be a table"),
        };
    }
    Ok(at)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<ConfigFile>("data_dri = \"/x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("data_dri"), "{err}");
        let err = toml::from_str::<ConfigFile>("[access]\ncontrol_group = []")
            .unwrap_err()
            .to_string();
        assert!(err.contains("control_group"), "{err}");
    }

    #[test]
    fn full_file_parses() {
        let file: ConfigFile = toml::from_str(
            r#"
            data_dir = "/srv/memd"
            registry_dir = "/srv/registry"
            socket = "/run/memd/memd.sock"
            seed_default_data = false
            [access]
            control_groups = ["memd", "1001"]
            view_users = ["grafana"]
            [log]
            level = "debug"
            dir = "/var/log/memd"
            keep_files = 7
            [mem.encryption]
            encrypt = true
            key_file = "/etc/memd/memory.key"
            [http]
            listen = "127.0.0.1:5002"
            [http.tradingview]
            base_confidence = 0.8
            rate_limit_per_minute = 10
            forward_live = true
            "#,
        )
        .unwrap();
        let tv = &file.http.tradingview;
        assert_eq!(
            (tv.enabled, tv.base_confidence, tv.confidence_threshold),
            (true, 0.8, 0.6),
            "unset keys keep their defaults"
        );
        assert!(tv.forward_live && tv.rate_limit_per_minute == 10);
        tv.validate().unwrap();
        let err = toml::from_str::<ConfigFile>("[http.tradingview]\nsecret = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret"), "{err}");
        let bad: ConfigFile = toml::from_str("[http.tradingview]\nbase_confidence = 1.5").unwrap();
        let err = bad.http.tradingview.validate().unwrap_err().to_string();
        assert!(err.contains("base_confidence"), "{err}");
        assert_eq!(file.access.control_groups, ["memd", "1001"]);
        assert_eq!(file.log.keep_files, Some(7));
        assert!(file.mem.encryption.encrypt);
        let err = toml::from_str::<ConfigFile>("[mem.encryption]\nencrypted = true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("encrypted"), "{err}");
    }

    #[test]
    fn the_memory_logs_limits_take_fractions_of_days_and_zero_for_never() {
        let (file, _) = parse(
            "[mem]\ndecision_log_max_bytes = 8192\nlog_max_age_days = 0.5\narchive_keep_days = 0\n",
        )
        .unwrap();
        let limits = file.mem.log_limits().unwrap();
        assert_eq!(limits.decisions_max_bytes, 8192);
        assert_eq!(limits.text_max_bytes, 64 << 20);
        assert_eq!(limits.max_age, Some(chrono::Duration::hours(12)));
        assert_eq!(limits.keep, None);
        let (file, _) = parse("[mem]\nlog_max_age_days = -1\n").unwrap();
        let err = file.mem.log_limits().unwrap_err().to_string();
        assert!(
            err.contains("[mem] log_max_age_days") && err.contains("-1"),
            "{err}"
        );
    }

    #[test]
    fn old_names_are_read_with_a_warning_naming_the_new_key() {
        let (file, warnings) = parse(
            "[mem]\nbase_weight = 0.5\ntext_log_max_bytes = 8192\n[memory]\nencrypt = true\n",
        )
        .unwrap();
        assert_eq!(file.mem.enhancement.base_weight, 0.5);
        assert_eq!(file.mem.text_log_max_bytes, Some(8192));
        assert!(file.mem.encryption.encrypt);
        assert_eq!(
            warnings,
            [
                "[mem] base_weight is read as [mem.enhancement] base_weight, its new name: rename it in the config file",
                "[memory] encrypt is read as [mem.encryption] encrypt, its new name: rename it in the config file",
            ]
        );
        let (_, none) = parse("[mem.enhancement]\nbase_weight = 0.5\n").unwrap();
        assert!(none.is_empty());
        // Both names at once: which one wins would be a guess.
        let err = parse("[mem]\nml_weight = 0.2\n[mem.enhancement]\nml_weight = 0.3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[mem.enhancement] ml_weight and its old name [mem] ml_weight"),
            "{err}"
        );
        // A typo under an old name is still named.
        let err = parse("[memory]\nencrypted = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("encrypted"), "{err}");
    }
}
