//! Runs the mock Binance spot exchange in the foreground, for trying memd (or Freqtrade) with
//! no exchange and no internet.
//!
//! ```text
//! mock-exchange [--port N] [--pairs BTC/USDT,ETH/USDT] [--seed N] [--instant-fills] [--verbose]
//!               [--write-overrides PATH] [--failing-klines ETH/USDT,...]
//! ```
//!
//! It prints its URL, then the `exchange` section to paste into a Freqtrade config, and serves
//! until Ctrl-C / SIGTERM. `--write-overrides PATH` also writes that section, as memd's
//! Freqtrade overrides (`{"exchange": ...}`), into PATH (other keys of an existing file are
//! kept; a file holding exchange keys is refused rather than overwritten): with
//! `<data>/freqtrade/overrides.json`, memd's next deploy trades against the mock, no
//! restart needed.

use mem_e2e::mock_exchange::{self, MockOptions};
use serde_json::Value;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: mock-exchange [--port N] [--pairs BTC/USDT,ETH/USDT,...] [--seed N] \
                     [--instant-fills] [--verbose] [--write-overrides PATH] \
                     [--failing-klines PAIR,...]";

fn parse() -> Result<(MockOptions, Option<PathBuf>), String> {
    let mut options = MockOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 18300)),
        ..MockOptions::default()
    };
    let mut overrides = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                let port = value("--port")?;
                let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
                options.bind.set_port(port);
            }
            "--pairs" => {
                options.pairs = value("--pairs")?
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect();
            }
            "--seed" => {
                let seed = value("--seed")?;
                options.seed = seed.parse().map_err(|_| format!("bad seed {seed:?}"))?;
            }
            "--instant-fills" => options.instant_fills = true,
            "--failing-klines" => {
                options.failing_klines = value("--failing-klines")?
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect();
            }
            "--write-overrides" => overrides = Some(PathBuf::from(value("--write-overrides")?)),
            "--verbose" | "-v" => options.log_requests = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.pairs.is_empty() {
        return Err("--pairs is empty".into());
    }
    Ok((options, overrides))
}

/// Puts `overrides`' keys into the JSON object at `path` (created 0600 if missing),
/// atomically; refuses a file whose exchange section holds keys.
fn write_overrides(path: &Path, overrides: &Value) -> Result<(), String> {
    let mut file: Value = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let Some(object) = file.as_object_mut() else {
        return Err(format!("{} is not a JSON object", path.display()));
    };
    let holds_keys = ["key", "secret"].iter().any(|k| {
        object
            .get("exchange")
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    });
    if holds_keys {
        return Err(format!(
            "{} holds exchange keys: not overwriting it; write the mock's overrides to another file",
            path.display()
        ));
    }
    for (key, value) in overrides.as_object().into_iter().flatten() {
        object.insert(key.clone(), value.clone());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let temp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(&file).expect("JSON serializes");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &text))
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (options, overrides_path) = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mock-exchange: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mock = match mock_exchange::start_with(options).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mock-exchange: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", mock.url());
    if overrides_path.is_none() {
        eprintln!(
            "mock-exchange: serving {} on {}; Freqtrade config \"exchange\" section:\n{}",
            mock.pairs().join(", "),
            mock.url(),
            serde_json::to_string_pretty(&mock.ccxt_config()).unwrap_or_default()
        );
    }
    if let Some(path) = &overrides_path {
        if let Err(e) = write_overrides(path, &mock.memd_overrides()) {
            eprintln!("mock-exchange: {e}");
            mock.shutdown().await;
            return ExitCode::FAILURE;
        }
        eprintln!(
            "mock-exchange: serving {} on {}; wrote its exchange section into {}: memd reads it at each deploy (no restart needed) when it is <data>/freqtrade/overrides.json or [freqtrade] config_overrides",
            mock.pairs().join(", "),
            mock.url(),
            path.display()
        );
    }
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mock-exchange: cannot handle SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    mock.shutdown().await;
    ExitCode::SUCCESS
}
