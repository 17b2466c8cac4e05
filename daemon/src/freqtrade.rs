//! The Freqtrade-specific parts: where the binary is, the per-deployment config, the
//! command line, and a client for a bot's REST API.
//!
//! The rendered config overrides only what the daemon must own: `dry_run`, `api_server`
//! (127.0.0.1, the deployment's port, freshly generated credentials), `bot_name`,
//! `db_url` (inside the deployment directory), and the pairs and timeframe of the
//! strategy's deployment section. Everything else comes from the strategy's base config,
//! deep-merged with the operator's overrides file (`[freqtrade] config_overrides`, where
//! exchange keys and a test exchange's URLs go), and over both the strategy's registry
//! parameters that are Freqtrade config keys ([`FREQTRADE_CONFIG_PARAMETERS`]: `stoploss`,
//! `minimal_roi`, ...). It is written 0600: it holds secrets.

use anyhow::{Context, bail};
pub use mem_protocol::registry::FREQTRADE_CONFIG_PARAMETERS;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generated credentials of one bot's API. Never logged, never sent to clients.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub jwt_secret: String,
    pub ws_token: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <redacted>, jwt_secret: <redacted>, ws_token: <redacted> }}",
            self.username
        )
    }
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Credentials {
    /// Fresh random credentials (256-bit password and JWT secret).
    pub fn generate() -> Credentials {
        Credentials {
            username: format!("memd-{}", random_hex(4)),
            password: random_hex(32),
            jwt_secret: random_hex(32),
            ws_token: random_hex(16),
        }
    }
}

/// Finds the `freqtrade` binary: the configured one, else the virtualenv that
/// `memd setup-freqtrade` makes in the data directory, else `freqtrade` on PATH.
pub fn find_binary(configured: Option<&Path>, data_dir: &Path) -> Result<PathBuf, String> {
    if let Some(path) = configured {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!(
                "[freqtrade] bin = {} does not exist",
                path.display()
            ))
        };
    }
    let venv = venv_dir(data_dir).join("bin/freqtrade");
    if venv.is_file() {
        return Ok(venv);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("freqtrade");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err("Freqtrade is not installed: run `memctl setup freqtrade` (a virtualenv under the data directory), put `freqtrade` on PATH, or set [freqtrade] bin in memd.toml".into())
}

/// The overrides file memd reads when `[freqtrade] config_overrides` is not set (relative
/// to the data directory).
pub const DEFAULT_OVERRIDES: &str = "freqtrade/overrides.json";

/// The operator's overrides, as every Freqtrade run gets them (bots, `download-data`,
/// backtests): `[freqtrade] config_overrides`, else [`DEFAULT_OVERRIDES`] when it exists
/// (where `mock-exchange --write-overrides` puts a mock's exchange section). Read at each
/// use, so a change needs no restart; the error names the file.
pub fn read_overrides(configured: Option<&Path>, data_dir: &Path) -> Result<Option<Value>, String> {
    let path = match configured {
        Some(path) => path.to_path_buf(),
        None => {
            let default = data_dir.join(DEFAULT_OVERRIDES);
            if !default.exists() {
                return Ok(None);
            }
            default
        }
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read [freqtrade] config_overrides {}: {e}",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        format!(
            "[freqtrade] config_overrides {} is not valid JSON: {e}",
            path.display()
        )
    })
}

/// Where `setup-freqtrade` puts its virtualenv.
pub fn venv_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("freqtrade-venv")
}

/// The Freqtrade version `setup-freqtrade` installs (the one the tests run against).
pub const PINNED_VERSION: &str = "2026.9";

/// Where `setup-freqtrade` keeps the output of Python and pip (pip's is hundreds of lines).
pub fn setup_log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("freqtrade-setup.log")
}

/// The Python interpreters `setup-freqtrade` tries, in order.
const PYTHONS: [&str; 4] = ["python3.13", "python3.12", "python3.11", "python3"];

/// Creates the virtualenv under the data directory and installs Freqtrade from PyPI into
/// it, with its `hyperopt` extra (optuna, scikit-learn: walk-forwards run `freqtrade
/// hyperopt`; a virtualenv made before gets the extra), showing a line a step (a spinner, the elapsed time and what pip is at, on a
/// terminal); pip's own output goes to [`setup_log_path`], whose last lines are shown if it
/// fails. Returns the `freqtrade` binary. The dependency versions known to work are
/// constraints (`freqtrade/requirements-lock.txt`); if pip cannot satisfy them with this
/// Python, Freqtrade's own requirements are used.
pub fn setup(data_dir: &Path, version: &str) -> anyhow::Result<PathBuf> {
    setup_with(data_dir, version, &PYTHONS)
}

/// [`setup`] with the interpreters to try (the tests' is a fake).
pub fn setup_with(data_dir: &Path, version: &str, pythons: &[&str]) -> anyhow::Result<PathBuf> {
    let venv = venv_dir(data_dir);
    let python = pythons
        .iter()
        .find(|py| {
            Command::new(py)
                .args(["-c", "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .context("Freqtrade needs Python 3.11 or newer; none was found (apt-get install python3 python3-venv)")?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot make {}", data_dir.display()))?;
    let log_path = setup_log_path(data_dir);
    let log = SetupLog::create(&log_path)?;
    let mut progress = Progress::new();
    progress.step(&format!(
        "[1/3] creating the virtualenv {} with {python}",
        venv.display()
    ));
    let mut venv_cmd = Command::new(python);
    venv_cmd.args(["-m", "venv"]).arg(&venv);
    if !log.run(&mut venv_cmd, &mut progress)? {
        log.show_tail();
        bail!(
            "`{python} -m venv {}` failed; on Debian, apt-get install python3-venv (its output: {})",
            venv.display(),
            log_path.display()
        );
    }
    let pip = venv.join("bin/pip");
    let what = format!("[2/3] installing freqtrade[hyperopt]=={version} from PyPI");
    progress.step(&format!(
        "{what} (a few hundred MB; this takes minutes; pip's output goes to {})",
        log_path.display()
    ));
    let lock = data_dir.join("freqtrade/requirements-lock.txt");
    let spec = format!("freqtrade[hyperopt]=={version}");
    let mut install = Command::new(&pip);
    install.args([
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        &spec,
    ]);
    if lock.is_file() {
        install.arg("--constraint").arg(&lock);
    }
    let mut ok = log.run(&mut install, &mut progress)?;
    if !ok && lock.is_file() {
        progress.step(
            "[2/3] the known-good versions do not fit this Python; trying Freqtrade's own requirements",
        );
        let mut loose = Command::new(&pip);
        loose.args([
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            &spec,
        ]);
        ok = log.run(&mut loose, &mut progress)?;
    }
    if !ok {
        log.show_tail();
        bail!(
            "pip could not install {spec}; the last lines of its output are above, all of it in {}",
            log_path.display()
        );
    }
    progress.done();
    let bin = venv.join("bin/freqtrade");
    progress.step(&format!("[3/3] checking {}", bin.display()));
    let out = Command::new(&bin)
        .arg("--version")
        .output()
        .context("cannot run the installed freqtrade")?;
    if !out.status.success() {
        bail!(
            "the installed freqtrade does not run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The extra's packages are imported by hyperopt only: a missing one shows here rather
    // than at the first walk-forward.
    let imports = Command::new(venv.join("bin/python"))
        .args(["-c", HYPEROPT_IMPORTS])
        .output()
        .context("cannot run the virtualenv's python")?;
    if !imports.status.success() {
        bail!(
            "freqtrade installed, but its hyperopt extra does not import: {}",
            String::from_utf8_lossy(&imports.stderr).trim()
        );
    }
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    eprintln!("pip's output: {}", log_path.display());
    Ok(bin)
}

/// What `freqtrade hyperopt` imports beyond plain Freqtrade (its `hyperopt` extra).
const HYPEROPT_IMPORTS: &str = "import optuna, sklearn, filelock, cmaes";

/// The setup's log file: every command's output appended, each under its command line.
struct SetupLog {
    path: PathBuf,
}

/// Lines of the log shown when a step fails.
const TAIL_LINES: usize = 25;

impl SetupLog {
    fn create(path: &Path) -> anyhow::Result<SetupLog> {
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(SetupLog {
            path: path.to_path_buf(),
        })
    }

    /// Runs `cmd` with its output appended to the log, showing what it is at; answers
    /// whether it succeeded.
    fn run(&self, cmd: &mut Command, progress: &mut Progress) -> anyhow::Result<bool> {
        use std::io::{Read, Seek};
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        writeln!(file, "$ {cmd:?}")?;
        let start = file.stream_position()?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot run {}", cmd.get_program().to_string_lossy()))?;
        let mut reader = std::fs::File::open(&self.path)?;
        reader.seek(std::io::SeekFrom::Start(start))?;
        let mut pending = Vec::new();
        let mut pip = PipState::default();
        loop {
            let status = child.try_wait()?;
            reader.read_to_end(&mut pending)?;
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                pip.line(String::from_utf8_lossy(&pending[..end]).trim_end());
                pending.drain(..=end);
            }
            if let Some(status) = status {
                progress.clear();
                return Ok(status.success());
            }
            progress.tick(&pip.doing());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Prints the log's last lines to stderr.
    fn show_tail(&self) {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("the last lines of {}:", self.path.display());
        for line in &lines[lines.len().saturating_sub(TAIL_LINES)..] {
            eprintln!("  {line}");
        }
    }
}

/// What pip is at, read from its output.
#[derive(Debug, Default)]
struct PipState {
    /// `Collecting NAME` lines so far: the packages resolved.
    collected: usize,
    /// The package last collected.
    current: String,
    /// `Installing collected packages: a, b, c`: how many.
    installing: Option<usize>,
}

impl PipState {
    fn line(&mut self, line: &str) {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("Collecting ") {
            self.collected += 1;
            self.current = rest
                .split(|c: char| c.is_whitespace() || "<>=!~[;(".contains(c))
                .next()
                .unwrap_or("")
                .to_string();
        } else if let Some(rest) = line.strip_prefix("Installing collected packages:") {
            self.installing = Some(rest.split(',').filter(|p| !p.trim().is_empty()).count());
        }
    }

    /// `collecting ccxt (37 packages so far)`, `installing 112 packages`.
    fn doing(&self) -> String {
        match (self.installing, self.collected) {
            (Some(n), _) => format!("installing {n} packages"),
            (None, 0) => "starting".into(),
            (None, n) => format!("collecting {} ({n} packages so far)", self.current),
        }
    }
}

/// The setup's lines on stderr: one a step; on a terminal, a spinner line below with the
/// step's elapsed time and what it is at, redrawn in place.
struct Progress {
    terminal: bool,
    step_started: Instant,
    frame: usize,
    drawn: bool,
    /// What the last plain (not terminal) line said, so each change is said once.
    said: String,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            step_started: Instant::now(),
            frame: 0,
            drawn: false,
            said: String::new(),
        }
    }

    fn step(&mut self, line: &str) {
        self.clear();
        eprintln!("{line}");
        self.step_started = Instant::now();
    }

    fn tick(&mut self, doing: &str) {
        if !self.terminal {
            if doing != self.said && doing.starts_with("installing") {
                eprintln!("      {doing}");
            }
            self.said = doing.to_string();
            return;
        }
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        self.frame = (self.frame + 1) % FRAMES.len();
        let secs = self.step_started.elapsed().as_secs();
        let doing: String = doing.chars().take(60).collect();
        eprint!(
            "\r\x1b[2K      {} {doing}  {}:{:02}",
            FRAMES[self.frame],
            secs / 60,
            secs % 60
        );
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }

    /// Says how long the step took.
    fn done(&mut self) {
        self.clear();
        let secs = self.step_started.elapsed().as_secs();
        eprintln!("      done in {}:{:02}", secs / 60, secs % 60);
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.drawn = false;
        }
    }
}

/// Merges `overlay` into `base`: objects member by member, anything else replaced.
pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (key, value) in o {
                match b.get_mut(key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        b.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// What the daemon owns in a rendered config.
#[derive(Debug, Clone)]
pub struct Owned<'a> {
    pub dry_run: bool,
    pub port: u16,
    pub credentials: &'a Credentials,
    pub bot_name: String,
    pub db_path: PathBuf,
    pub pairs: Vec<String>,
    pub timeframe: Option<String>,
    /// The `memd` section the strategy's memd mixin reads (none: no section).
    pub mem: Option<MemSection>,
}

/// The `memd` section of a bot's config: how the memd mixin (`memd_mixin.py`, shipped in
/// `<data>/freqtrade/strategies/`) reaches MEM. Freqtrade keeps unknown top-level keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemSection {
    /// The daemon's socket (absolute).
    pub socket: PathBuf,
    /// The bot's credential: `hello {credential}` gives `Access::Bot`.
    pub credential: String,
    /// The registry name its decisions are kept under (as native strategies' are).
    pub strategy: String,
    pub strategy_id: String,
    pub deployment_id: String,
    /// `[mem.enhancement] base_size`: MEM's size for a neutral signal, which the
    /// configured stake stands for (the stake is scaled by `position_size / base_size`).
    pub base_size: f64,
    /// How long a callback waits for memd before trading as the strategy says.
    pub timeout_ms: u64,
    /// Refuse entries while memd does not answer (default: trade as the strategy says).
    pub fail_closed: bool,
    /// Entry tags of the entries memd opens itself after MEM decided (a forwarded
    /// TradingView alert): the mixin does not ask MEM about them again.
    pub decided_tags: Vec<String>,
}

/// The registry parameters of a strategy that are Freqtrade config keys
/// ([`FREQTRADE_CONFIG_PARAMETERS`]), as config values: a declared parameter
/// `{"value": -0.08, "type": "float", ..}` gives its `value`; a null value is left out.
pub fn config_parameters(parameters: &Map<String, Value>) -> Map<String, Value> {
    FREQTRADE_CONFIG_PARAMETERS
        .iter()
        .filter_map(|key| {
            let raw = parameters.get(*key)?;
            let value = match raw.as_object() {
                Some(decl) if decl.contains_key("value") && decl.contains_key("type") => {
                    &decl["value"]
                }
                _ => raw,
            };
            (!value.is_null()).then(|| (key.to_string(), value.clone()))
        })
        .collect()
}

/// Checks a value for one of [`FREQTRADE_CONFIG_PARAMETERS`] the way Freqtrade's config
/// schema would, so that a bad value is refused when it is set rather than when the bot
/// reloads (a bot with a bad config stops). Other names pass.
pub fn check_config_parameter(key: &str, value: &Value) -> Result<(), String> {
    let number = || {
        value
            .as_f64()
            .ok_or_else(|| format!("`{key}` must be a number, got {value}"))
    };
    let within = |lo: f64, hi: f64, what: &str| -> Result<(), String> {
        let v = number()?;
        if v.is_finite() && v >= lo && v <= hi {
            Ok(())
        } else {
            Err(format!("`{key}` must be {what}, got {v}"))
        }
    };
    match key {
        "minimal_roi" => {
            let Some(table) = value.as_object().filter(|t| !t.is_empty()) else {
                return Err(format!(
                    "`minimal_roi` must be an object of minutes -> ratio, e.g. {{\"0\": 0.1, \"30\": 0.05}}, got {value}"
                ));
            };
            for (minutes, ratio) in table {
                if minutes.is_empty() || !minutes.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!(
                        "`minimal_roi`: {minutes:?} is not a number of minutes"
                    ));
                }
                if !ratio.is_number() {
                    return Err(format!(
                        "`minimal_roi`: the ratio after {minutes} minutes must be a number, got {ratio}"
                    ));
                }
            }
            Ok(())
        }
        "stoploss" => {
            let v = number()?;
            if (-1.0..0.0).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "`stoploss` must be a negative ratio from -1 to below 0 (-0.05 is 5%), got {v}"
                ))
            }
        }
        "trailing_stop" | "trailing_only_offset_is_reached" => value
            .is_boolean()
            .then_some(())
            .ok_or_else(|| format!("`{key}` must be true or false, got {value}")),
        "trailing_stop_positive" | "trailing_stop_positive_offset" => {
            within(0.0, 1.0, "a ratio from 0 to 1")
        }
        "tradable_balance_ratio" => within(f64::MIN_POSITIVE, 1.0, "a ratio above 0, at most 1"),
        "dry_run_wallet" => within(f64::MIN_POSITIVE, f64::MAX, "above 0"),
        "stake_amount" => {
            if value.as_str() == Some("unlimited") {
                return Ok(());
            }
            within(f64::MIN_POSITIVE, f64::MAX, "above 0, or \"unlimited\"")
        }
        "max_open_trades" => match value.as_i64() {
            Some(n) if n >= -1 => Ok(()),
            _ => Err(format!(
                "`max_open_trades` must be a whole number, -1 for no limit, got {value}"
            )),
        },
        _ => Ok(()),
    }
}

/// Sets the `tuning` keys (from [`config_parameters`]) in a rendered config; answers
/// those whose value changed, as (key, old value or null, new value).
pub fn apply_config_parameters(
    config: &mut Value,
    tuning: &Map<String, Value>,
) -> Vec<(String, Value, Value)> {
    let Some(c) = config.as_object_mut() else {
        return vec![];
    };
    let mut changed = Vec::new();
    for (key, value) in tuning {
        let old = c.insert(key.clone(), value.clone()).unwrap_or(Value::Null);
        if old != *value {
            changed.push((key.clone(), old, value.clone()));
        }
    }
    changed
}

/// The config a deployment runs with: the base config, the operator's overrides, the
/// strategy's parameters that are config keys (`tuning`, from [`config_parameters`]),
/// then what the daemon owns.
pub fn render_config(
    base: &Value,
    overrides: Option<&Value>,
    tuning: &Map<String, Value>,
    owned: &Owned<'_>,
) -> anyhow::Result<Value> {
    if !base.is_object() {
        bail!("the base config is not a JSON object");
    }
    let mut config = base.clone();
    if let Some(overrides) = overrides {
        deep_merge(&mut config, overrides);
    }
    apply_config_parameters(&mut config, tuning);
    let c = config.as_object_mut().expect("checked");
    c.insert("dry_run".into(), json!(owned.dry_run));
    c.insert("bot_name".into(), json!(owned.bot_name));
    c.insert(
        "db_url".into(),
        json!(format!("sqlite:///{}", owned.db_path.display())),
    );
    let api = c.entry("api_server").or_insert_with(|| json!({}));
    if !api.is_object() {
        *api = json!({});
    }
    let api = api.as_object_mut().expect("an object");
    api.insert("enabled".into(), json!(true));
    api.insert("listen_ip_address".into(), json!("127.0.0.1"));
    api.insert("listen_port".into(), json!(owned.port));
    api.insert("username".into(), json!(owned.credentials.username));
    api.insert("password".into(), json!(owned.credentials.password));
    api.insert("jwt_secret_key".into(), json!(owned.credentials.jwt_secret));
    api.insert("ws_token".into(), json!(owned.credentials.ws_token));
    api.entry("CORS_origins").or_insert_with(|| json!([]));
    api.entry("verbosity").or_insert_with(|| json!("error"));
    if !owned.pairs.is_empty() {
        let exchange = c.entry("exchange").or_insert_with(|| json!({}));
        if let Some(exchange) = exchange.as_object_mut() {
            exchange.insert("pair_whitelist".into(), json!(owned.pairs));
        }
    }
    if let Some(tf) = &owned.timeframe {
        c.insert("timeframe".into(), json!(tf));
    }
    match &owned.mem {
        Some(mem) => c.insert("memd".into(), json!(mem)),
        None => c.remove("memd"),
    };
    Ok(config)
}

/// Whether a config carries exchange keys (needed for live trading).
pub fn has_exchange_keys(config: &Value) -> bool {
    let nonempty = |k: &str| {
        config
            .pointer(&format!("/exchange/{k}"))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    nonempty("key") && nonempty("secret")
}

/// A client of one bot's REST API (HTTP Basic auth, 127.0.0.1 only).
#[derive(Clone)]
pub struct BotClient {
    http: reqwest::Client,
    base: String,
    username: String,
    password: String,
}

/// A bot's API URL as an attach takes it: `http://` or `https://`, a host, maybe a port;
/// no user or password in it (they come from the attach's username and password file),
/// no query. A trailing `/` or `/api/v1` is dropped. Answers the URL to which `/api/v1`
/// is added.
pub fn api_url(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("{url:?} is not a URL ({e}); give one like http://127.0.0.1:8080"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{url:?}: a bot's API is reached over http:// or https://, not {}://",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{}: no credentials in the URL; give the user with --user and the password in --password-file",
            parsed.host_str().unwrap_or_default()
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url:?}: a bot's API URL has no query or fragment"));
    }
    let text = parsed.as_str().trim_end_matches('/');
    Ok(text.strip_suffix("/api/v1").unwrap_or(text).to_string())
}

/// `/api/v1/health`.
#[derive(Debug, Clone, Deserialize)]
pub struct Health {
    #[serde(default)]
    pub last_process_ts: Option<i64>,
}

/// The members of `/api/v1/profit` the daemon reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Profit {
    #[serde(default)]
    pub profit_closed_coin: f64,
    #[serde(default)]
    pub profit_all_coin: f64,
    #[serde(default)]
    pub closed_trade_count: u64,
}

/// The members of `/api/v1/balance` the daemon reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Balance {
    #[serde(default)]
    pub total: Option<f64>,
    #[serde(default)]
    pub stake: Option<String>,
}

/// One closed trade from `/api/v1/trades`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClosedTrade {
    pub trade_id: i64,
    pub pair: String,
    #[serde(default)]
    pub is_short: bool,
    pub open_rate: f64,
    #[serde(default)]
    pub close_rate: Option<f64>,
    pub open_timestamp: i64,
    #[serde(default)]
    pub close_timestamp: Option<i64>,
    #[serde(default)]
    pub profit_abs: Option<f64>,
    #[serde(default)]
    pub profit_ratio: Option<f64>,
    #[serde(default)]
    pub close_profit_abs: Option<f64>,
    #[serde(default)]
    pub close_profit: Option<f64>,
    #[serde(default)]
    pub fee_open: Option<f64>,
    #[serde(default)]
    pub stake_amount: Option<f64>,
    #[serde(default)]
    pub timeframe: Option<Value>,
    #[serde(default)]
    pub exit_reason: Option<String>,
    /// The highest and lowest prices while the trade was open (its excursions).
    #[serde(default)]
    pub max_rate: Option<f64>,
    #[serde(default)]
    pub min_rate: Option<f64>,
    #[serde(default)]
    pub stop_loss_abs: Option<f64>,
}

/// `/api/v1/trades`.
#[derive(Debug, Clone, Deserialize)]
pub struct TradesPage {
    pub trades: Vec<ClosedTrade>,
    #[serde(default)]
    pub total_trades: u64,
}

impl BotClient {
    /// The API of a bot memd started: on loopback, with its generated credentials.
    pub fn new(port: u16, credentials: &Credentials) -> BotClient {
        Self::with_base(
            format!("http://127.0.0.1:{port}/api/v1"),
            &credentials.username,
            &credentials.password,
        )
    }

    /// The API of a bot memd did not start, at `url` (`http(s)://host:port`, what
    /// [`api_url`] accepts).
    pub fn at(url: &str, username: &str, password: &str) -> Result<BotClient, String> {
        Ok(Self::with_base(
            format!("{}/api/v1", api_url(url)?),
            username,
            password,
        ))
    }

    fn with_base(base: String, username: &str, password: &str) -> BotClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("an HTTP client with the default TLS settings builds");
        BotClient {
            http,
            base,
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// Where the bot's API is (`http://127.0.0.1:8080/api/v1`), for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self
            .http
            .get(format!("{}/{path}", self.base))
            .basic_auth(&self.username, Some(&self.password))
            .send()
            .await
            .with_context(|| format!("GET /api/v1/{path}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET /api/v1/{path}: HTTP {status}");
        }
        response
            .json()
            .await
            .with_context(|| format!("GET /api/v1/{path}: unexpected answer"))
    }

    async fn post(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .basic_auth(&self.username, Some(&self.password))
            .send()
            .await
            .with_context(|| format!("POST /api/v1/{path}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("POST /api/v1/{path}: HTTP {status}");
        }
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    /// Whether the API answers (no auth needed).
    pub async fn ping(&self) -> bool {
        matches!(self.http.get(format!("{}/ping", self.base)).send().await, Ok(r) if r.status().is_success())
    }

    pub async fn health(&self) -> anyhow::Result<Health> {
        self.get("health").await
    }

    /// Open trades.
    pub async fn open_trades(&self) -> anyhow::Result<Vec<Value>> {
        self.get("status").await
    }

    /// How many trades are open (`/count`: smaller than `/status`).
    pub async fn open_trade_count(&self) -> anyhow::Result<u64> {
        let count: Map<String, Value> = self.get("count").await?;
        Ok(count.get("current").and_then(Value::as_u64).unwrap_or(0))
    }

    pub async fn profit(&self) -> anyhow::Result<Profit> {
        self.get("profit").await
    }

    pub async fn balance(&self) -> anyhow::Result<Balance> {
        self.get("balance").await
    }

    /// Closed trades, newest first.
    pub async fn closed_trades(&self, limit: usize, offset: usize) -> anyhow::Result<TradesPage> {
        self.get(&format!("trades?limit={limit}&offset={offset}"))
            .await
    }

    /// The MEM decision the strategy's memd mixin tied to a trade (its custom data
    /// `memd_decision_id`); `None` when the trade has none (Freqtrade answers 404).
    pub async fn decision_of(&self, trade_id: i64) -> anyhow::Result<Option<String>> {
        let key = crate::mem::bots::DECISION_KEY;
        let path = format!("trades/{trade_id}/custom-data?key={key}");
        let response = self
            .http
            .get(format!("{}/{path}", self.base))
            .basic_auth(&self.username, Some(&self.password))
            .send()
            .await
            .with_context(|| format!("GET /api/v1/{path}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            bail!("GET /api/v1/{path}: HTTP {status}");
        }
        let answer: Value = response
            .json()
            .await
            .with_context(|| format!("GET /api/v1/{path}: unexpected answer"))?;
        Ok(answer
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["custom_data"].as_array().into_iter().flatten())
            .find(|d| d["key"] == key)
            .and_then(|d| d["value"].as_str().map(str::to_string)))
    }

    /// The bot's state (`running`, `paused`, `stopped`).
    pub async fn state(&self) -> anyhow::Result<String> {
        let config: Map<String, Value> = self.get("show_config").await?;
        Ok(config
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    /// The newest `limit` lines of the bot's log (`/api/v1/logs`), oldest first, in
    /// Freqtrade's own line format (`date - logger - LEVEL - message`).
    pub async fn logs(&self, limit: usize) -> anyhow::Result<Vec<String>> {
        let answer: Map<String, Value> = self.get(&format!("logs?limit={limit}")).await?;
        Ok(answer
            .get("logs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let field = |i: usize| entry.get(i).and_then(Value::as_str);
                Some(format!(
                    "{} - {} - {} - {}",
                    field(0)?,
                    field(2)?,
                    field(3)?,
                    field(4)?
                ))
            })
            .collect())
    }

    /// Re-reads the config files: Freqtrade restarts its worker and API server (about
    /// 2.5 s, the API refusing connections for part of it) and answers at once.
    pub async fn reload_config(&self) -> anyhow::Result<()> {
        self.post("reload_config").await.map(|_| ())
    }

    /// No new entries from now on; exits are still managed.
    pub async fn stop_entries(&self) -> anyhow::Result<()> {
        self.post("stopentry").await.map(|_| ())
    }

    /// `/show_config`: what the bot runs with (`dry_run`, `force_entry_enable`, `state`...).
    pub async fn show_config(&self) -> anyhow::Result<Map<String, Value>> {
        self.get("show_config").await
    }

    /// `/whitelist`: the pairs the bot trades now.
    pub async fn whitelist(&self) -> anyhow::Result<Vec<String>> {
        let list: Map<String, Value> = self.get("whitelist").await?;
        Ok(list
            .get("whitelist")
            .and_then(Value::as_array)
            .map(|pairs| {
                pairs
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `/forceenter` (needs `force_entry_enable` in the bot's config): opens a trade on
    /// `pair` at the bot's own entry pricing and stake; answers the new trade's id.
    pub async fn force_enter(
        &self,
        pair: &str,
        side: &str,
        entry_tag: &str,
    ) -> anyhow::Result<i64> {
        let trade = self
            .post_json(
                "forceenter",
                &json!({"pair": pair, "side": side, "entry_tag": entry_tag}),
            )
            .await?;
        trade
            .get("trade_id")
            .and_then(Value::as_i64)
            .with_context(|| format!("POST /api/v1/forceenter: no trade_id in {trade}"))
    }

    /// `/forceexit` of one open trade, at market.
    pub async fn force_exit(&self, trade_id: i64) -> anyhow::Result<()> {
        self.post_json(
            "forceexit",
            &json!({"tradeid": trade_id.to_string(), "ordertype": "market"}),
        )
        .await
        .map(|_| ())
    }

    /// A POST with a JSON body; an error carries the bot's own message (`error`/`detail`).
    async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .basic_auth(&self.username, Some(&self.password))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST /api/v1/{path}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let said = answer
                .get("error")
                .or_else(|| answer.get("detail"))
                .map(|m| match m {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            bail!("POST /api/v1/{path}: HTTP {status} {said}");
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands in for Python: a venv whose pip prints about 250 lines (and fails when
    /// `fail-pip` exists beside the venv) and whose freqtrade answers `--version`.
    const FAKE_PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-python3");

    #[test]
    fn setup_keeps_pips_output_in_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let bin = setup_with(&data, PINNED_VERSION, &["no-such-python", FAKE_PYTHON]).unwrap();
        assert_eq!(bin, venv_dir(&data).join("bin/freqtrade"));
        let log = std::fs::read_to_string(setup_log_path(&data)).unwrap();
        assert!(log.lines().count() > 240, "{log}");
        assert!(log.contains("Collecting package119==1.0"), "{log}");
        assert!(log.contains("Successfully installed"), "{log}");
        assert!(
            log.contains("freqtrade[hyperopt]==2026.9"),
            "with the extra walk-forwards need: {log}"
        );

        // pip fails twice (the known-good versions, then Freqtrade's own): an error that
        // names the log, which holds both attempts.
        std::fs::create_dir_all(data.join("freqtrade")).unwrap();
        std::fs::write(data.join("freqtrade/requirements-lock.txt"), "").unwrap();
        std::fs::write(data.join("fail-pip"), "").unwrap();
        let err = setup_with(&data, PINNED_VERSION, &[FAKE_PYTHON]).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("pip could not install freqtrade[hyperopt]==2026.9")
                && message.contains(&setup_log_path(&data).display().to_string()),
            "{message}"
        );
        let log = std::fs::read_to_string(setup_log_path(&data)).unwrap();
        assert_eq!(
            log.matches("No matching distribution found").count(),
            2,
            "{log}"
        );
        assert!(
            !log.contains("Successfully installed"),
            "a new log each setup: {log}"
        );
    }

    #[test]
    fn pips_output_tells_what_it_is_at() {
        let mut pip = PipState::default();
        assert_eq!(pip.doing(), "starting");
        pip.line("Collecting freqtrade==2026.9");
        pip.line("  Downloading freqtrade-2026.9-py3-none-any.whl (1.2 MB)");
        pip.line("Collecting ccxt>=4.4 (from freqtrade==2026.9)");
        assert_eq!(pip.doing(), "collecting ccxt (2 packages so far)");
        pip.line("Installing collected packages: pytz, ccxt, freqtrade");
        assert_eq!(pip.doing(), "installing 3 packages");
    }

    #[test]
    fn rendering_overrides_only_what_the_daemon_owns() {
        let base = json!({
            "dry_run": false,
            "stake_currency": "USDT",
            "exchange": {"name": "binance", "pair_whitelist": ["X/USDT"], "ccxt_config": {"a": 1}},
            "api_server": {"enabled": false, "username": "memgpt", "password": "trading123"}
        });
        let overrides = json!({"exchange": {"ccxt_config": {"urls": {"api": "http://127.0.0.1:1"}}, "key": "k", "secret": "s"}});
        let creds = Credentials::generate();
        let owned = Owned {
            dry_run: true,
            port: 18123,
            credentials: &creds,
            bot_name: "memd-macd".into(),
            db_path: "/x/tradesv3.sqlite".into(),
            pairs: vec!["ETH/USDT".into()],
            timeframe: Some("5m".into()),
            mem: Some(MemSection {
                socket: "/run/memd/memd.sock".into(),
                credential: "c0ffee".into(),
                strategy: "freqtrade_macd_hunter".into(),
                strategy_id: "4ce3a79b-c22b-4b42-9d87-3a58052a9eec".into(),
                deployment_id: "d".into(),
                base_size: 0.1,
                timeout_ms: 500,
                fail_closed: false,
                decided_tags: vec!["tradingview".into()],
            }),
        };
        let tuning = config_parameters(
            json!({
                "stoploss": {"value": -0.05, "type": "float", "min": -0.5, "max": -0.005},
                "minimal_roi": {"value": {"0": 0.1}, "type": "object"},
                "rsi_period": {"value": 14, "type": "integer"},
                "max_open_trades": 2
            })
            .as_object()
            .unwrap(),
        );
        assert_eq!(
            Value::Object(tuning.clone()),
            json!({"stoploss": -0.05, "minimal_roi": {"0": 0.1}, "max_open_trades": 2}),
            "only config keys, declared values unwrapped"
        );
        let c = render_config(&base, Some(&overrides), &tuning, &owned).unwrap();
        assert_eq!(c["stoploss"], json!(-0.05));
        assert_eq!(c["max_open_trades"], json!(2));
        assert!(c.get("rsi_period").is_none(), "not a config key");
        assert_eq!(c["dry_run"], json!(true));
        assert_eq!(c["stake_currency"], "USDT", "the rest is kept");
        assert_eq!(
            c["exchange"]["ccxt_config"],
            json!({"a": 1, "urls": {"api": "http://127.0.0.1:1"}}),
            "deep merge"
        );
        assert_eq!(c["exchange"]["pair_whitelist"], json!(["ETH/USDT"]));
        assert_eq!(c["api_server"]["listen_ip_address"], "127.0.0.1");
        assert_eq!(c["api_server"]["listen_port"], 18123);
        assert_ne!(
            c["api_server"]["password"], "trading123",
            "never the seed's example password"
        );
        assert!(
            c["api_server"]["jwt_secret_key"].as_str().unwrap().len() >= 32,
            "Freqtrade wants 32 or more"
        );
        assert_eq!(c["db_url"], "sqlite:////x/tradesv3.sqlite");
        assert_eq!(
            c["memd"],
            json!({"socket": "/run/memd/memd.sock", "credential": "c0ffee",
                   "strategy": "freqtrade_macd_hunter",
                   "strategy_id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec",
                   "deployment_id": "d", "base_size": 0.1, "timeout_ms": 500,
                   "fail_closed": false, "decided_tags": ["tradingview"]}),
            "the mixin's section, the daemon's own"
        );
        assert!(has_exchange_keys(&c));
        assert!(!has_exchange_keys(&base));
    }

    #[test]
    fn config_parameters_are_checked_as_freqtrade_would() {
        for (key, good) in [
            ("minimal_roi", json!({"0": 0.1, "30": 0.02})),
            ("stoploss", json!(-0.05)),
            ("trailing_stop", json!(true)),
            ("trailing_stop_positive", json!(0.01)),
            ("stake_amount", json!("unlimited")),
            ("stake_amount", json!(100)),
            ("max_open_trades", json!(-1)),
            ("tradable_balance_ratio", json!(0.99)),
            ("dry_run_wallet", json!(1000)),
            ("rsi_period", json!("anything: not a config key")),
        ] {
            assert_eq!(check_config_parameter(key, &good), Ok(()), "{key} {good}");
        }
        for (key, bad, needle) in [
            ("minimal_roi", json!({"soon": 0.1}), "minutes"),
            ("minimal_roi", json!({}), "object"),
            ("minimal_roi", json!({"0": "high"}), "number"),
            ("stoploss", json!(0.05), "negative"),
            ("stoploss", json!(-1.5), "negative"),
            ("trailing_stop", json!(1), "true or false"),
            ("stake_amount", json!(0), "above 0"),
            ("max_open_trades", json!(2.5), "whole number"),
            ("tradable_balance_ratio", json!(1.5), "at most 1"),
        ] {
            let e = check_config_parameter(key, &bad).unwrap_err();
            assert!(e.contains(key) && e.contains(needle), "{key} {bad}: {e}");
        }
        let mut config = json!({"stoploss": -0.1, "stake_amount": 10});
        let tuning: Map<String, Value> = json!({"stoploss": -0.05, "stake_amount": 10})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            apply_config_parameters(&mut config, &tuning),
            vec![("stoploss".to_string(), json!(-0.1), json!(-0.05))],
            "only what changed"
        );
        assert!(apply_config_parameters(&mut config, &tuning).is_empty());
    }

    #[test]
    fn credentials_are_fresh_and_redacted() {
        let (a, b) = (Credentials::generate(), Credentials::generate());
        assert_ne!(a.password, b.password);
        let shown = format!("{a:?}");
        assert!(
            !shown.contains(&a.password) && !shown.contains(&a.jwt_secret),
            "{shown}"
        );
    }
}
