//! `refresh-load`: how long an incremental refresh of the market data takes (issue 23's
//! bar: 10 pairs x 2 timeframes under 15 s, nearly all of it Freqtrade's start-up).
//!
//! ```text
//! cargo build -p memd -p mem-e2e      # or --release; the time is Freqtrade's either way
//! target/debug/refresh-load --freqtrade "$(.ci/install-freqtrade | tail -n1)" --runs 5
//! ```
//!
//! It starts the mock exchange (in-process, on 127.0.0.1) serving `--pairs` (10) USDT
//! pairs and the real memd (the one beside this tool, or `--memd`) on a temporary data
//! directory whose `[market.refresh]` names those pairs, `5m` and `1h`, `--days` (30) of
//! history, with the real Freqtrade (`--freqtrade`, else `MEMD_TEST_FREQTRADE`). A first
//! refresh downloads everything (timed, not part of the bar); then `--runs` incremental
//! ones (`market.refresh`, waited for, 5 s apart) are timed from the client: the whole
//! round trip, memd's record of the run, Freqtrade's part of it and Freqtrade's start-up
//! (spawn to its list of pairs: Python, its configuration, the exchange's markets). Then
//! as many incremental refreshes of a single file (the first pair, `5m`): what any run
//! costs whatever it refreshes, Freqtrade's fixed cost. Prints each run and the medians.

use mem_e2e::{Daemon, find_memd, measure, mock_exchange};
use mem_protocol::Client;
use mem_protocol::jobs::JobOutcome;
use mem_protocol::market::{RefreshParams, RefreshReport};
use mem_protocol::methods::method;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PAIRS: [&str; 12] = [
    "BTC/USDT",
    "ETH/USDT",
    "BNB/USDT",
    "SOL/USDT",
    "XRP/USDT",
    "ADA/USDT",
    "DOGE/USDT",
    "DOT/USDT",
    "LTC/USDT",
    "LINK/USDT",
    "AVAX/USDT",
    "TRX/USDT",
];

struct Options {
    freqtrade: PathBuf,
    memd: Option<PathBuf>,
    pairs: usize,
    runs: usize,
    days: u32,
}

fn usage() -> ! {
    eprintln!(
        "usage: refresh-load [--freqtrade PATH] [--memd PATH] [--pairs N (<= 12)] [--runs N] [--days N]"
    );
    std::process::exit(2)
}

fn parse() -> Options {
    let mut o = Options {
        freqtrade: std::env::var_os("MEMD_TEST_FREQTRADE")
            .map(PathBuf::from)
            .unwrap_or_default(),
        memd: None,
        pairs: 10,
        runs: 5,
        days: 30,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--freqtrade" => o.freqtrade = PathBuf::from(value()),
            "--memd" => o.memd = Some(PathBuf::from(value())),
            "--pairs" => o.pairs = value().parse().unwrap_or_else(|_| usage()),
            "--runs" => o.runs = value().parse().unwrap_or_else(|_| usage()),
            "--days" => o.days = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if !o.freqtrade.is_file() || o.pairs == 0 || o.pairs > PAIRS.len() || o.runs == 0 {
        usage();
    }
    o
}

/// One refresh, waited for: (round trip seconds, memd's report).
async fn refresh(client: &Client, params: RefreshParams) -> (f64, RefreshReport) {
    let started = Instant::now();
    let result = client
        .call_with_timeout::<method::MarketRefresh>(
            RefreshParams {
                wait: true,
                ..params
            },
            Duration::from_secs(900),
        )
        .await
        .expect("market.refresh answers");
    let seconds = started.elapsed().as_secs_f64();
    let run = result.run.expect("a run waited for");
    assert_eq!(run.outcome, JobOutcome::Succeeded, "{run:?}");
    (
        seconds,
        serde_json::from_value(run.details).expect("a refresh report"),
    )
}

fn sorted(mut xs: Vec<f64>) -> Vec<f64> {
    xs.sort_by(f64::total_cmp);
    xs
}

#[tokio::main]
async fn main() {
    let o = parse();
    let pairs: Vec<&str> = PAIRS[..o.pairs].to_vec();
    let mock = mock_exchange::start(&pairs).await;
    let root = tempfile::Builder::new()
        .prefix("refresh-load-")
        .tempdir()
        .expect("temp dir");
    let overrides = root.path().join("overrides.json");
    std::fs::write(&overrides, mock.memd_overrides().to_string()).unwrap();
    let config = root.path().join("memd.toml");
    let list = pairs
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &config,
        format!(
            "seed_default_data = false\n[freqtrade]\nbin = {:?}\nconfig_overrides = {:?}\n\
             [market.refresh]\npairs = [{list}]\ntimeframes = [\"5m\", \"1h\"]\ndays = {}\n",
            o.freqtrade.display().to_string(),
            overrides.display().to_string(),
            o.days
        ),
    )
    .unwrap();
    let memd = find_memd(o.memd.clone());
    let (socket, data) = (root.path().join("run/memd.sock"), root.path().join("data"));
    let child = Daemon::spawn_raw(root.path(), &socket, &data, |cmd| {
        cmd.arg("--config").arg(&config);
    });
    let daemon = Daemon::adopt(child, root, socket, data);
    let client = daemon.client().await;
    println!(
        "memd {}, Freqtrade {}, {} pairs x 2 timeframes (5m, 1h), {} days of history",
        memd.display(),
        o.freqtrade.display(),
        o.pairs,
        o.days
    );
    let (first, report) = refresh(&client, RefreshParams::default()).await;
    let candles: u64 = report.results.iter().map(|r| r.candles).sum();
    println!(
        "first refresh (everything downloaded): {first:.2} s, {candles} candles in {} files",
        report.results.len()
    );
    let (mut total, mut recorded, mut freqtrade, mut startup) = (vec![], vec![], vec![], vec![]);
    for i in 1..=o.runs {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (seconds, r) = refresh(&client, RefreshParams::default()).await;
        let added: u64 = r.results.iter().map(|p| p.added).sum();
        let up = r.freqtrade_startup_seconds.unwrap_or(f64::NAN);
        println!(
            "run {i}: {seconds:.2} s round trip; memd's record {:.2} s, Freqtrade {:.2} s (start-up {up:.1} s, {:.0}% of the run), memd's own part {:.2} s; {added} candles added",
            r.seconds,
            r.freqtrade_seconds,
            up / seconds * 100.0,
            r.seconds - r.freqtrade_seconds
        );
        total.push(seconds);
        recorded.push(r.seconds);
        freqtrade.push(r.freqtrade_seconds);
        startup.push(up);
    }
    let (total, recorded, freqtrade, startup) = (
        sorted(total),
        sorted(recorded),
        sorted(freqtrade),
        sorted(startup),
    );
    let m = measure::median;
    println!(
        "median of {}: {:.2} s round trip (min {:.2}, max {:.2}); memd's record {:.2} s; Freqtrade {:.2} s, its start-up {:.1} s ({:.0}% of the round trip); bar < 15 s: {}",
        o.runs,
        m(&total),
        total[0],
        total[total.len() - 1],
        m(&recorded),
        m(&freqtrade),
        m(&startup),
        m(&startup) / m(&total) * 100.0,
        if m(&total) < 15.0 { "PASS" } else { "MISS" }
    );
    let mut single = Vec::new();
    for _ in 0..o.runs {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let one = RefreshParams {
            pairs: vec![pairs[0].to_string()],
            timeframes: vec!["5m".into()],
            ..Default::default()
        };
        single.push(refresh(&client, one).await.0);
    }
    let single = sorted(single);
    println!(
        "one file ({} 5m), incremental, median of {}: {:.2} s (min {:.2}, max {:.2}): Freqtrade's fixed cost, {:.0}% of the {}-pair round trip",
        pairs[0],
        o.runs,
        m(&single),
        single[0],
        single[single.len() - 1],
        m(&single) / m(&total) * 100.0,
        o.pairs
    );
    drop(daemon);
    mock.shutdown().await;
}
