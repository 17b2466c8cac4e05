//! `startup-load`: how long the real memd takes to start on a large registry, and how much
//! resident memory it holds once it has loaded it.
//!
//! Give it a registry directory (with `metadata/*.json`), such as the 100,000-strategy
//! registry the `registry` bench builds and keeps with `MEMD_BENCH_REGISTRY_DIR`:
//!
//! ```text
//! MEMD_BENCH_REGISTRY_DIR=/var/tmp/memd-100k cargo bench -p memd --bench registry -- list_100k/all_by_name_limit50
//! cargo build --release -p memd --bin memd
//! cargo build --release -p mem-e2e --bin startup-load
//! target/release/startup-load --registry /var/tmp/memd-100k --runs 5
//! ```
//!
//! Each run starts memd (`STRATEGY_REGISTRY_PATH` set to the directory; memd writes its
//! audit log there) and measures the time from spawn until a client's `hello` is answered
//! (memd binds its socket first and accepts only once the registry is loaded, so this is
//! the start-up including the load), reads the `registry loaded` time memd logs, checks
//! the strategy count with `daemon.status`, and reads memd's VmRSS and VmHWM from /proc.
//! Then it stops memd with SIGTERM. Prints each run and the medians.
//!
//! `--trades N` first copies the registry into a temporary directory and records N random
//! closed trades through memd into it (1,000 a strategy, on the first strategies by name);
//! the runs start on the copy. `--postgres` also copies that registry into a PostgreSQL
//! cluster of its own (the test kit's: Debian's `postgresql`, on loopback, run as the
//! `postgres` user when run as root) with `registry.migrate`, and each run then starts
//! memd on files and memd on the database (`[registry] backend = "postgres"`) side by
//! side (the one on the database logs `registry loaded from PostgreSQL`):
//!
//! ```text
//! target/release/startup-load --registry /var/tmp/memd-100k --trades 1000000 --postgres --runs 5
//! ```

use mem_e2e::postgres::{self, PASSWORD, Postgres};
use mem_e2e::trades::RandomTrades;
use mem_e2e::{Daemon, find_memd, isolated_command};
use mem_protocol::methods::{ListStrategiesParams, NoParams, SortKey, StrategyList, method};
use mem_protocol::registry::{MigrateParams, RecordTradesParams};
use mem_protocol::{Client, ClientOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!(
        "usage: startup-load --registry DIR [--runs N] [--trades N] [--postgres] [--memd PATH]"
    );
    std::process::exit(2)
}

fn proc_status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The `millis` of memd's `registry loaded` log line, if it logged one.
fn logged_load_millis(stderr: &str) -> Option<f64> {
    let line = stderr.lines().find(|l| l.contains("registry loaded"))?;
    let rest = &line[line.find("millis=")? + "millis=".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

struct Run {
    ready_ms: f64,
    logged_ms: Option<f64>,
    rss_mb: f64,
    hwm_mb: f64,
    reported_rss_mb: f64,
    strategies: usize,
    /// What [`lists`] answered, to compare the backends.
    lists: Vec<StrategyList>,
}

/// Filtered, sorted lists a trader asks for (the in-memory index answers them on either
/// backend, so both must give the same).
async fn lists(client: &Client) -> Vec<StrategyList> {
    let queries = [
        ListStrategiesParams {
            sort: Some(SortKey::Sharpe),
            min_win_rate: Some(0.5),
            limit: Some(50),
            ..ListStrategiesParams::default()
        },
        ListStrategiesParams {
            category: Some("momentum".into()),
            sort: Some(SortKey::TotalPnl),
            limit: Some(50),
            ..ListStrategiesParams::default()
        },
        ListStrategiesParams {
            query: Some("trend".into()),
            limit: Some(50),
            ..ListStrategiesParams::default()
        },
    ];
    let mut out = Vec::new();
    for q in queries {
        out.push(
            client
                .call::<method::StrategiesList>(q)
                .await
                .expect("strategies.list"),
        );
    }
    out
}

/// Where a run's memd keeps its registry.
#[derive(Clone, Copy)]
enum Backend<'a> {
    Files(&'a Path),
    Postgres(&'a Postgres),
}

/// A started memd, its client (connected once the registry is loaded) and the time from
/// spawn to that connection.
async fn start(memd: &Path, backend: Backend<'_>, call_timeout: Duration) -> (Daemon, Client, f64) {
    let root = tempfile::Builder::new()
        .prefix("startup-load-")
        .tempdir()
        .expect("temp dir");
    let socket = root.path().join("run/memd.sock");
    let data_dir = root.path().join("data");
    let stderr = std::fs::File::create(root.path().join("memd.stderr")).expect("stderr file");
    let mut command = isolated_command(memd, root.path());
    match backend {
        Backend::Files(registry) => {
            command.env("STRATEGY_REGISTRY_PATH", registry);
        }
        Backend::Postgres(pg) => {
            command
                .arg("--config")
                .arg(pg.memd_config(root.path(), "startup-load"));
        }
    }
    let started = Instant::now();
    let child = command
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn memd");
    // Returns once the socket accepts (memd binds it before loading).
    let daemon = Daemon::adopt(child, root, socket, data_dir);
    let client = loop {
        match Client::connect(
            &daemon.socket,
            ClientOptions {
                client_name: "startup-load".into(),
                call_timeout,
                connect_timeout: Duration::from_secs(120),
                ..ClientOptions::default()
            },
        )
        .await
        {
            Ok(client) => break client,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "memd did not answer: {e}\n{}",
                    daemon.stderr()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    (daemon, client, started.elapsed().as_secs_f64() * 1e3)
}

async fn run_once(memd: &Path, backend: Backend<'_>) -> Run {
    let (mut daemon, client, ready_ms) = start(memd, backend, Duration::from_secs(120)).await;
    let pid = daemon.pid() as u32;
    let status = client
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .expect("daemon.status");
    let run = Run {
        ready_ms,
        logged_ms: logged_load_millis(&daemon.stderr()),
        rss_mb: proc_status_mb(pid, "VmRSS:"),
        hwm_mb: proc_status_mb(pid, "VmHWM:"),
        reported_rss_mb: status.process.rss_bytes as f64 / (1024.0 * 1024.0),
        strategies: status.counts.strategies,
        lists: lists(&client).await,
    };
    drop(client);
    daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    run
}

/// Records `trades` random closed trades through memd into the registry at `registry`,
/// 1,000 a strategy on the first strategies by name.
async fn record_trades(memd: &Path, registry: &Path, trades: usize) {
    let (mut daemon, client, _) =
        start(memd, Backend::Files(registry), Duration::from_secs(600)).await;
    let strategies = trades.div_ceil(1_000);
    let list = client
        .call::<method::StrategiesList>(ListStrategiesParams {
            limit: Some(strategies),
            ..ListStrategiesParams::default()
        })
        .await
        .expect("strategies.list");
    assert_eq!(
        list.strategies.len(),
        strategies,
        "the registry has too few strategies"
    );
    let started = Instant::now();
    let mut random = RandomTrades::new(27);
    let mut recorded = 0;
    for (k, strategy) in list.strategies.iter().enumerate() {
        let batch: Vec<_> = (0..(trades - recorded).min(1_000) as u64)
            .map(|n| random.trade(format!("load-{k}-{n}"), n))
            .collect();
        recorded += batch.len();
        client
            .call::<method::TradesRecord>(RecordTradesParams {
                id: strategy.id,
                trades: batch,
            })
            .await
            .expect("strategies.trades.record");
    }
    println!(
        "recorded {recorded} trades on {strategies} strategies in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(client);
    daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
}

/// Copies the registry at `registry` into a new database of its own with
/// `registry.migrate` (the copy read back and compared by memd).
async fn migrate(memd: &Path, registry: &Path) -> Postgres {
    let pg = postgres::registry_cluster().expect("PostgreSQL is not installed");
    let (mut daemon, client, _) =
        start(memd, Backend::Files(registry), Duration::from_secs(3_600)).await;
    let report = client
        .call::<method::RegistryMigrate>(MigrateParams::Postgres {
            url: pg.url_without_password("registry"),
            password: Some(PASSWORD.into()),
            server: Some("startup-load".into()),
        })
        .await
        .expect("registry.migrate");
    println!(
        "migrated into PostgreSQL in {:.1} s: {} strategies, {} trades",
        report.seconds, report.strategies, report.trades
    );
    drop(client);
    daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    pg
}

fn print_run(label: &str, i: usize, run: &Run) {
    println!(
        "{label} run {i}: {} strategies; first hello answered {:.0} ms after spawn (memd logged the load as {} ms); \
         VmRSS {:.1} MB (daemon.status says {:.1} MB), VmHWM {:.1} MB",
        run.strategies,
        run.ready_ms,
        run.logged_ms.map_or("?".to_string(), |m| format!("{m:.0}")),
        run.rss_mb,
        run.reported_rss_mb,
        run.hwm_mb
    );
}

fn print_medians(label: &str, all: &[Run]) {
    println!(
        "{label}: median of {} runs: ready {:.0} ms (range {:.0} .. {:.0}), logged load {} ms, VmRSS {:.1} MB, VmHWM {:.1} MB",
        all.len(),
        median(all.iter().map(|r| r.ready_ms).collect()),
        all.iter().map(|r| r.ready_ms).fold(f64::INFINITY, f64::min),
        all.iter().map(|r| r.ready_ms).fold(0.0, f64::max),
        all.iter()
            .map(|r| r.logged_ms)
            .collect::<Option<Vec<_>>>()
            .map_or("?".to_string(), |v| format!("{:.0}", median(v))),
        median(all.iter().map(|r| r.rss_mb).collect()),
        median(all.iter().map(|r| r.hwm_mb).collect()),
    );
}

#[tokio::main]
async fn main() {
    let mut registry = None;
    let mut runs = 3usize;
    let mut trades = 0usize;
    let mut on_postgres = false;
    let mut memd = std::env::var_os("MEMD_BIN").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--registry" => registry = Some(PathBuf::from(value())),
            "--runs" => runs = value().parse().unwrap_or_else(|_| usage()),
            "--trades" => trades = value().parse().unwrap_or_else(|_| usage()),
            "--postgres" => on_postgres = true,
            "--memd" => memd = Some(PathBuf::from(value())),
            _ => usage(),
        }
    }
    let Some(mut registry) = registry else {
        usage()
    };
    assert!(
        registry.join("metadata").is_dir(),
        "{} has no metadata directory",
        registry.display()
    );
    let memd = find_memd(memd);
    println!("memd:     {}", memd.display());
    println!("registry: {}", registry.display());
    // Trades go into a copy: the registry given stays as it was.
    let copy = tempfile::Builder::new()
        .prefix("startup-load-registry-")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    if trades > 0 {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(registry.join("."))
            .arg(copy.path())
            .status()
            .expect("cp");
        assert!(status.success(), "copying the registry failed");
        registry = copy.path().to_path_buf();
        record_trades(&memd, &registry, trades).await;
    }
    let pg = if on_postgres {
        Some(migrate(&memd, &registry).await)
    } else {
        None
    };
    let (mut on_files, mut on_db) = (Vec::new(), Vec::new());
    for i in 1..=runs.max(1) {
        let run = run_once(&memd, Backend::Files(&registry)).await;
        print_run("files", i, &run);
        on_files.push(run);
        if let Some(pg) = &pg {
            let run = run_once(&memd, Backend::Postgres(pg)).await;
            print_run("postgres", i, &run);
            on_db.push(run);
        }
    }
    print_medians("files", &on_files);
    if !on_db.is_empty() {
        print_medians("postgres", &on_db);
        for (files, db) in on_files.iter().zip(&on_db) {
            assert_eq!(
                files.strategies, db.strategies,
                "the backends hold different counts"
            );
            assert!(
                files.lists == db.lists,
                "a filtered, sorted list differs between the backends"
            );
        }
        println!(
            "filtered, sorted lists ({} queries): the same on both backends in every run",
            on_db[0].lists.len()
        );
    }
}
