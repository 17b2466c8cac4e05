//! The Freqtrade-specific parts: where the binary is, the per-deployment config, the
//! command line, and a client for a bot's REST API.
//!
//! The rendered config overrides only what the daemon must own: `dry_run`, `api_server`
//! (127.0.0.1, the deployment's port, freshly generated credentials), `bot_name`,
//! `db_url` (inside the deployment directory), and the pairs and timeframe of the
//! strategy's deployment section. Everything else comes from the strategy's base config,
//! deep-merged with the operator's overrides file (`[freqtrade] config_overrides`, where
//! exchange keys and a test exchange's URLs go). It is written 0600: it holds secrets.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Where `setup-freqtrade` puts its virtualenv.
pub fn venv_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("freqtrade-venv")
}

/// The Freqtrade version `setup-freqtrade` installs (the one the tests run against).
pub const PINNED_VERSION: &str = "2026.9";

/// Creates the virtualenv under the data directory and installs Freqtrade from PyPI into
/// it, showing pip's progress; returns the `freqtrade` binary. The dependency versions
/// known to work are constraints (`freqtrade/requirements-lock.txt`); if pip cannot
/// satisfy them with this Python, Freqtrade's own requirements are used.
pub fn setup(data_dir: &Path, version: &str) -> anyhow::Result<PathBuf> {
    use std::process::Command;
    let venv = venv_dir(data_dir);
    let python = ["python3.13", "python3.12", "python3.11", "python3"]
        .into_iter()
        .find(|py| {
            Command::new(py)
                .args(["-c", "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)"])
                .status()
                .is_ok_and(|s| s.success())
        })
        .context("Freqtrade needs Python 3.11 or newer; none was found (apt-get install python3 python3-venv)")?;
    eprintln!(
        "[1/3] creating the virtualenv {} with {python}",
        venv.display()
    );
    let status = Command::new(python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("cannot run python")?;
    if !status.success() {
        bail!(
            "`{python} -m venv {}` failed ({status}); on Debian, apt-get install python3-venv",
            venv.display()
        );
    }
    let pip = venv.join("bin/pip");
    eprintln!(
        "[2/3] installing freqtrade=={version} from PyPI (a few hundred MB; this takes minutes)"
    );
    let lock = data_dir.join("freqtrade/requirements-lock.txt");
    let spec = format!("freqtrade=={version}");
    let mut install = Command::new(&pip);
    install.args([
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        "on",
        &spec,
    ]);
    if lock.is_file() {
        install.arg("--constraint").arg(&lock);
    }
    let mut ok = install.status().context("cannot run pip")?.success();
    if !ok && lock.is_file() {
        eprintln!(
            "[2/3] the known-good versions do not fit this Python; trying Freqtrade's own requirements"
        );
        ok = Command::new(&pip)
            .args(["install", "--disable-pip-version-check", &spec])
            .status()
            .context("cannot run pip")?
            .success();
    }
    if !ok {
        bail!("pip could not install {spec} (see its output above)");
    }
    let bin = venv.join("bin/freqtrade");
    eprintln!("[3/3] checking {}", bin.display());
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
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    Ok(bin)
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
}

/// The config a deployment runs with.
pub fn render_config(
    base: &Value,
    overrides: Option<&Value>,
    owned: &Owned<'_>,
) -> anyhow::Result<Value> {
    if !base.is_object() {
        bail!("the base config is not a JSON object");
    }
    let mut config = base.clone();
    if let Some(overrides) = overrides {
        deep_merge(&mut config, overrides);
    }
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
}

/// `/api/v1/trades`.
#[derive(Debug, Clone, Deserialize)]
pub struct TradesPage {
    pub trades: Vec<ClosedTrade>,
    #[serde(default)]
    pub total_trades: u64,
}

impl BotClient {
    pub fn new(port: u16, credentials: &Credentials) -> BotClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("an HTTP client without TLS builds");
        BotClient {
            http,
            base: format!("http://127.0.0.1:{port}/api/v1"),
            username: credentials.username.clone(),
            password: credentials.password.clone(),
        }
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

    /// The bot's state (`running`, `paused`, `stopped`).
    pub async fn state(&self) -> anyhow::Result<String> {
        let config: Map<String, Value> = self.get("show_config").await?;
        Ok(config
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    /// No new entries from now on; exits are still managed.
    pub async fn stop_entries(&self) -> anyhow::Result<()> {
        self.post("stopentry").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        let c = render_config(&base, Some(&overrides), &owned).unwrap();
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
        assert!(has_exchange_keys(&c));
        assert!(!has_exchange_keys(&base));
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
