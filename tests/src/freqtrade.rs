//! The real Freqtrade, for the tests and tools that run it: the binary
//! (`MEMD_TEST_FREQTRADE`), memd's config for bots that trade in dry-run on the mock
//! exchange (`crate::mock_exchange`), and a deployed bot's own REST API.

use crate::mock_exchange::MockExchange;
use mem_protocol::deploy::DeployedStrategy;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The `[freqtrade]` timings of the tests' real bots: polled every second, 120 s to answer
/// after a start (Freqtrade's first start loads markets and candles, slowly on a busy
/// machine), 20 s to stop.
pub const TEST_TIMINGS: &str =
    "poll_interval_secs = 1\nready_timeout_secs = 120\nstop_timeout_secs = 20";

/// The Freqtrade binary of `MEMD_TEST_FREQTRADE`; `None` when it is not set, after a line
/// that says the running test is skipped (`.ci/run` sets it: there the tests run).
pub fn binary() -> Option<PathBuf> {
    match std::env::var_os("MEMD_TEST_FREQTRADE").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "MEMD_TEST_FREQTRADE={} is not a file",
                path.display()
            );
            Some(path)
        }
        None => {
            // The test harness names each test's thread after the test.
            let test = std::thread::current().name().unwrap_or("test").to_string();
            eprintln!(
                "SKIPPED {test}: MEMD_TEST_FREQTRADE is not set (point it at a freqtrade binary, \
                 e.g. `MEMD_TEST_FREQTRADE=$(.ci/install-freqtrade | tail -n1)`)"
            );
            None
        }
    }
}

/// Writes memd's config for bots of the real Freqtrade `freqtrade` on `mock`, in `dir`:
/// `overrides.json` holds the mock's exchange section without its pair whitelist (memd
/// sets each bot's pairs) and `force_entry_enable` as given (the seed's base configs leave
/// forced entries off; `/forceenter` and forwarded alerts need them); `memd.toml` runs
/// `freqtrade` with these overrides, `settings` (more keys of `[freqtrade]`, such as
/// [`TEST_TIMINGS`]) and then `extra` (the rest of the file). Answers the config's path.
pub fn memd_config(
    dir: &Path,
    freqtrade: &Path,
    mock: &MockExchange,
    force_entry: bool,
    settings: &str,
    extra: &str,
) -> PathBuf {
    let mut overrides = mock.memd_overrides();
    if force_entry {
        overrides["force_entry_enable"] = json!(true);
    }
    crate::freqtrade_config(dir, freqtrade, overrides, settings, extra)
}

/// A deployed bot's own REST API (`/api/v1/...`), with the credentials of the config memd
/// rendered for it (read as the daemon's user may).
pub struct BotApi {
    base: String,
    username: String,
    password: Option<String>,
    http: reqwest::Client,
}

impl BotApi {
    pub fn of(deployment: &DeployedStrategy) -> BotApi {
        let path = deployment
            .config_file
            .as_deref()
            .expect("a Freqtrade deployment has a config file");
        let config: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let api = &config["api_server"];
        BotApi {
            base: format!(
                "http://127.0.0.1:{}/api/v1",
                deployment.port.expect("a Freqtrade deployment has a port")
            ),
            username: api["username"].as_str().unwrap().to_string(),
            password: api["password"].as_str().map(str::to_string),
            // The bot is on loopback: no proxy may stand in between.
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// `GET path`: the answer's JSON (`Null` when it is not JSON).
    pub async fn get(&self, path: &str) -> Value {
        self.answer(path)
            .await
            .unwrap_or_else(|| panic!("the bot's API does not answer GET {path}"))
    }

    /// `GET path`, or `None` while the API does not answer (a bot that is reloading).
    pub async fn answer(&self, path: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}/{path}", self.base))
            .basic_auth(&self.username, self.password.as_deref())
            .send()
            .await
            .ok()?;
        Some(response.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body: the answer's JSON (`Null` when it is not JSON).
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .basic_auth(&self.username, self.password.as_deref())
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the bot's API does not answer POST {path}: {e}"));
        response.json().await.unwrap_or(Value::Null)
    }
}
