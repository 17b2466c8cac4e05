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

use mem_e2e::{Daemon, find_memd, isolated_command};
use mem_protocol::methods::{NoParams, method};
use mem_protocol::{Client, ClientOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!("usage: startup-load --registry DIR [--runs N] [--memd PATH]");
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
}

async fn run_once(memd: &Path, registry: &Path) -> Run {
    let root = tempfile::Builder::new()
        .prefix("startup-load-")
        .tempdir()
        .expect("temp dir");
    let socket = root.path().join("run/memd.sock");
    let data_dir = root.path().join("data");
    let stderr = std::fs::File::create(root.path().join("memd.stderr")).expect("stderr file");
    let started = Instant::now();
    let child = isolated_command(memd, root.path())
        .env("STRATEGY_REGISTRY_PATH", registry)
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn memd");
    let pid = child.id();
    // Returns once the socket accepts (memd binds it before loading).
    let mut daemon = Daemon::adopt(child, root, socket, data_dir);
    let client = loop {
        match Client::connect(
            &daemon.socket,
            ClientOptions {
                client_name: "startup-load".into(),
                call_timeout: Duration::from_secs(120),
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
    let ready_ms = started.elapsed().as_secs_f64() * 1e3;
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
    };
    drop(client);
    daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    run
}

#[tokio::main]
async fn main() {
    let mut registry = None;
    let mut runs = 3usize;
    let mut memd = std::env::var_os("MEMD_BIN").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--registry" => registry = Some(PathBuf::from(value())),
            "--runs" => runs = value().parse().unwrap_or_else(|_| usage()),
            "--memd" => memd = Some(PathBuf::from(value())),
            _ => usage(),
        }
    }
    let Some(registry) = registry else { usage() };
    assert!(
        registry.join("metadata").is_dir(),
        "{} has no metadata directory",
        registry.display()
    );
    let memd = find_memd(memd);
    println!("memd:     {}", memd.display());
    println!("registry: {}", registry.display());
    let mut all = Vec::new();
    for i in 1..=runs.max(1) {
        let run = run_once(&memd, &registry).await;
        println!(
            "run {i}: {} strategies; first hello answered {:.0} ms after spawn (memd logged the load as {} ms); \
             VmRSS {:.1} MB (daemon.status says {:.1} MB), VmHWM {:.1} MB",
            run.strategies,
            run.ready_ms,
            run.logged_ms.map_or("?".to_string(), |m| format!("{m:.0}")),
            run.rss_mb,
            run.reported_rss_mb,
            run.hwm_mb
        );
        all.push(run);
    }
    println!(
        "median of {} runs: ready {:.0} ms (range {:.0} .. {:.0}), logged load {} ms, VmRSS {:.1} MB, VmHWM {:.1} MB",
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
