//! What a starting bot's log says about its start.
//!
//! Freqtrade does not always exit when it cannot start: with its default websocket
//! setting a bot whose exchange cannot be reached logs "Could not load markets, therefore
//! cannot start" and then hangs, and a bot whose API port is taken trades on without an
//! API. So while memd waits for a new bot's API it reads the lines the bot logs, and a
//! fatal start-up line ends the wait at once with its cause in one sentence a trader
//! understands, instead of a minute later with "did not answer".

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where the docs explain trading with no exchange (named in the unreachable-exchange
/// sentence).
pub const OFFLINE_DOCS: &str = "docs/operator-guide.md, \"Trading offline with the mock exchange\"";

/// Reads the lines a starting bot appends to its log files.
pub struct StartupWatch {
    files: Vec<Followed>,
    /// The exchange the bot's config names, for the sentence.
    exchange: String,
    /// The most telling line about a failed connection seen so far.
    connection_detail: Option<String>,
}

struct Followed {
    path: PathBuf,
    offset: u64,
    /// A line not yet ended by a newline.
    partial: String,
}

impl StartupWatch {
    /// Follows `files` from their current ends (a restarted bot's log keeps its past).
    pub fn new(files: &[PathBuf], exchange: &str) -> Self {
        let files = files
            .iter()
            .map(|path| Followed {
                offset: std::fs::metadata(path).map_or(0, |m| m.len()),
                path: path.clone(),
                partial: String::new(),
            })
            .collect();
        Self {
            files,
            exchange: exchange.to_string(),
            connection_detail: None,
        }
    }

    /// Reads what was logged since the last call; the cause of a failed start if a line
    /// says the bot cannot start.
    pub fn fatal(&mut self) -> Option<String> {
        let mut lines = Vec::new();
        for file in &mut self.files {
            file.read_new_lines(&mut lines);
        }
        lines.into_iter().find_map(|line| self.read_line(&line))
    }

    /// One line: remembered when it explains a connection failure, a sentence when fatal.
    fn read_line(&mut self, line: &str) -> Option<String> {
        // aiohttp's "Cannot connect to host" says more than ccxt's URL: kept once seen.
        let known = self
            .connection_detail
            .as_deref()
            .is_some_and(|d| d.starts_with("Cannot connect"));
        if let Some(detail) = connection_detail(line).filter(|_| !known) {
            self.connection_detail = Some(detail);
        }
        let fatal = classify(line)?;
        Some(fatal.sentence(&self.exchange, self.connection_detail.as_deref()))
    }
}

impl Followed {
    fn read_new_lines(&mut self, lines: &mut Vec<String>) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        let Ok(n) = file.read_to_end(&mut bytes) else {
            return;
        };
        self.offset += n as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        if let Some(end) = self.partial.rfind('\n') {
            lines.extend(self.partial[..end].lines().map(str::to_string));
            self.partial.drain(..=end);
        }
    }
}

/// A fatal start-up line's meaning.
#[derive(Debug, PartialEq)]
pub enum Fatal {
    /// The exchange's markets could not be loaded.
    ExchangeUnreachable,
    /// Freqtrade refused its configuration.
    Configuration(String),
    /// The strategy class cannot be loaded.
    StrategyNotLoaded(String),
    /// The API could not bind its port.
    PortInUse(String),
    /// Any other error Freqtrade gave up on.
    Other(String),
}

impl Fatal {
    fn sentence(&self, exchange: &str, detail: Option<&str>) -> String {
        match self {
            Fatal::ExchangeUnreachable => format!(
                "the exchange {exchange} could not be reached{}, so Freqtrade cannot load its markets and cannot start. No internet? Trade offline against the bundled mock exchange: see {OFFLINE_DOCS}",
                detail.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
            Fatal::Configuration(why) => {
                format!("Freqtrade refused the bot's configuration: {why}")
            }
            Fatal::StrategyNotLoaded(why) => format!(
                "Freqtrade could not load the strategy's class ({why}); check deployment.strategy_class and the file in freqtrade/strategies"
            ),
            Fatal::PortInUse(address) => format!(
                "the bot's API could not listen on {address}: another program took the port; deploy again (memd picks a free port) or free it"
            ),
            Fatal::Other(why) => format!("Freqtrade stopped while starting: {why}"),
        }
    }
}

/// A Freqtrade log line, `2026-12-05 04:21:57,541 - freqtrade - ERROR - message`, as
/// (logger, level, message).
fn fields(line: &str) -> Option<(&str, &str, &str)> {
    let mut parts = line.splitn(4, " - ");
    let _time = parts.next()?;
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// What a line means for the start, if it is fatal: errors of Freqtrade's top-level logger
/// (its `main` logs the exception it exits on there) and the API server's failed bind.
pub fn classify(line: &str) -> Option<Fatal> {
    let (logger, level, message) = fields(line)?;
    let message = message.trim();
    if logger == "uvicorn.error" && message.contains("address already in use") {
        let address = message
            .split_once("bind on address ")
            .map_or("its port", |(_, rest)| {
                rest.split(':').next().unwrap_or(rest)
            });
        return Some(Fatal::PortInUse(address.to_string()));
    }
    if logger != "freqtrade" || !matches!(level, "ERROR" | "CRITICAL") {
        return None;
    }
    Some(if message.starts_with("Could not load markets") {
        Fatal::ExchangeUnreachable
    } else if let Some(why) = message.strip_prefix("Configuration error: ") {
        Fatal::Configuration(why.trim().to_string())
    } else if message.starts_with("Impossible to load Strategy") {
        Fatal::StrategyNotLoaded(message.trim_end_matches('.').to_string())
    } else {
        Fatal::Other(message.to_string())
    })
}

/// The part of a line that says why a connection failed (aiohttp's "Cannot connect to
/// host ..." or ccxt's "binance GET url"), if it says so.
fn connection_detail(line: &str) -> Option<String> {
    if let Some(i) = line.find("Cannot connect to host ") {
        return Some(line[i..].trim().to_string());
    }
    line.split_once("ExchangeNotAvailable. Message: ")
        .map(|(_, rest)| rest.trim_end_matches(['"', '.', ' ']).to_string())
        .map(|m| m.split("\". ").next().unwrap_or(&m).to_string())
}

/// The exchange a rendered bot config names (`exchange.name`), for the sentence.
pub fn exchange_name(config: &Path) -> String {
    std::fs::read(config)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|c| c["exchange"]["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| "of the bot's config".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Lines as Freqtrade 2026.9 logged them here (exchange on a closed port, a taken API
    /// port, a missing class).
    const RETRY: &str = "2026-12-05 04:21:57,482 - freqtrade.exchange.common - WARNING - _load_async_markets() returned exception: \"Error in reload_markets due to ExchangeNotAvailable. Message: binance GET http://127.0.0.1:9/api/v3/exchangeInfo\". Giving up.";
    const REFUSED: &str = "aiohttp.client_exceptions.ClientConnectorError: Cannot connect to host 127.0.0.1:9 ssl:default [Connect call failed ('127.0.0.1', 9)]";
    const NO_MARKETS: &str = "2026-12-05 04:21:57,541 - freqtrade - ERROR - Could not load markets, therefore cannot start. Please investigate the above error for more details.";
    const PORT: &str = "2026-12-05 04:23:26,070 - uvicorn.error - ERROR - [Errno 98] error while attempting to bind on address ('127.0.0.1', 18999): address already in use";
    const CLASS: &str = "2026-12-05 04:23:07,094 - freqtrade - ERROR - Impossible to load Strategy 'MACDHunter'. This class does not exist or contains Python code errors.";
    const CONFIG: &str =
        "2026-12-05 04:23:07,094 - freqtrade - ERROR - Configuration error: 'abc' is too short";

    #[test]
    fn fatal_lines_are_recognised_and_others_are_not() {
        assert_eq!(classify(NO_MARKETS), Some(Fatal::ExchangeUnreachable));
        assert_eq!(
            classify(PORT),
            Some(Fatal::PortInUse("('127.0.0.1', 18999)".into()))
        );
        assert!(
            matches!(classify(CLASS), Some(Fatal::StrategyNotLoaded(w)) if w.contains("'MACDHunter'"))
        );
        assert_eq!(
            classify(CONFIG),
            Some(Fatal::Configuration("'abc' is too short".into()))
        );
        // The exchange module's own error comes before Freqtrade gives up: not fatal yet.
        assert_eq!(
            classify(
                "2026-12-05 04:21:57,485 - freqtrade.exchange.exchange - ERROR - Could not load markets."
            ),
            None
        );
        assert_eq!(classify(RETRY), None);
        assert_eq!(classify(REFUSED), None);
        assert_eq!(
            classify("2026-12-05 04:23:26,070 - freqtrade - INFO - Bot heartbeat."),
            None
        );
    }

    #[test]
    fn the_watch_reads_only_new_whole_lines_and_names_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("freqtrade.log");
        std::fs::write(&log, format!("{NO_MARKETS}\n")).unwrap(); // an earlier start's
        let mut watch = StartupWatch::new(std::slice::from_ref(&log), "binance");
        assert_eq!(watch.fatal(), None, "the past of the log is not read");
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        write!(file, "{RETRY}\n{REFUSED}\n{RETRY}\n{}", &NO_MARKETS[..30]).unwrap();
        assert_eq!(watch.fatal(), None, "half a line is not judged");
        writeln!(file, "{}", &NO_MARKETS[30..]).unwrap();
        let sentence = watch.fatal().expect("fatal");
        assert!(
            sentence.starts_with(
                "the exchange binance could not be reached (Cannot connect to host 127.0.0.1:9"
            ),
            "{sentence}"
        );
        assert!(sentence.contains("mock exchange"), "{sentence}");
    }

    #[test]
    fn the_exchange_is_read_from_the_rendered_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(&config, r#"{"exchange": {"name": "kraken"}}"#).unwrap();
        assert_eq!(exchange_name(&config), "kraken");
        assert_eq!(
            exchange_name(&dir.path().join("none")),
            "of the bot's config"
        );
    }
}
