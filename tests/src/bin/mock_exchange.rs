//! Runs the mock Binance spot exchange in the foreground, for trying memd (or Freqtrade) with
//! no exchange and no internet.
//!
//! ```text
//! mock-exchange [--port N] [--pairs BTC/USDT,ETH/USDT] [--seed N] [--instant-fills] [--verbose]
//! ```
//!
//! It prints its URL, then the `exchange` section to paste into a Freqtrade config, and serves
//! until Ctrl-C / SIGTERM.

use mem_e2e::mock_exchange::{self, MockOptions};
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: mock-exchange [--port N] [--pairs BTC/USDT,ETH/USDT,...] [--seed N] \
                     [--instant-fills] [--verbose]";

fn parse() -> Result<MockOptions, String> {
    let mut options = MockOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 18300)),
        ..MockOptions::default()
    };
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
    Ok(options)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match parse() {
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
    eprintln!(
        "mock-exchange: serving {} on {}; Freqtrade config \"exchange\" section:\n{}",
        mock.pairs().join(", "),
        mock.url(),
        serde_json::to_string_pretty(&mock.ccxt_config()).unwrap_or_default()
    );
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
