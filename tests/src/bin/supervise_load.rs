//! `supervise_load`: what supervising 50 bots costs the daemon. Starts the real memd with
//! the fake bot as its `freqtrade`, registers and deploys N bot strategies, lets it settle,
//! then measures memd's CPU (utime + stime from /proc) and resident memory over a window,
//! at the default poll interval (each bot: health, status, profit, balance, state and
//! closed trades every 5 s).
//!
//! ```sh
//! cargo build --release -p memd --bin memd -p mem-e2e --bin fake_freqtrade --bin supervise_load
//! target/release/supervise_load --bots 50 --seconds 60
//! ```

use mem_protocol::deploy::StopAllParams;
use mem_protocol::methods::method;
use mem_protocol::{Client, ClientOptions};
use serde_json::json;
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let bots = arg("--bots", 50) as usize;
    let seconds = arg("--seconds", 60);
    let settle = arg("--settle", 20);
    let root = tempfile::tempdir().unwrap();
    let (mut daemon, socket) = mem_e2e::measure::spawn_memd_with_fake_bots(
        root.path(),
        json!({"closed_trades": 5}),
        (20000, 20999),
        "",
    );
    let pid = daemon.id();
    let client = loop {
        if let Ok(c) = Client::connect(&socket, ClientOptions::default()).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let started = Instant::now();
    for i in 0..bots {
        let doc = mem_e2e::measure::load_bot_strategy(&format!("load_bot_{i}"));
        mem_e2e::deployments::register_and_deploy(&client, doc).await;
    }
    let deployed = client
        .call::<method::Deployed>(Default::default())
        .await
        .unwrap()
        .deployments
        .len();
    println!(
        "deployed {deployed} fake bots in {:.1} s; settling {settle} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let (cpu0, t0) = (
        mem_e2e::measure::cpu_seconds(&pid.to_string()),
        Instant::now(),
    );
    let mut rss_samples = Vec::new();
    while t0.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_samples.push(status_kb(pid, "VmRSS:"));
    }
    let cpu = (mem_e2e::measure::cpu_seconds(&pid.to_string()) - cpu0) / t0.elapsed().as_secs_f64()
        * 100.0;
    rss_samples.sort();
    let rss_median = rss_samples[rss_samples.len() / 2] as f64 / 1024.0;
    let hwm = status_kb(pid, "VmHWM:") as f64 / 1024.0;
    let running = client
        .call::<method::Deployed>(Default::default())
        .await
        .unwrap()
        .deployments
        .iter()
        .filter(|d| d.stats.polled_at.is_some())
        .count();
    println!(
        "supervising {deployed} bots ({running} polled) over {seconds} s: memd CPU {cpu:.2}% of one core; VmRSS median {rss_median:.1} MB (peak {hwm:.1} MB)"
    );
    client
        .call_with_timeout::<method::StopAll>(StopAllParams::default(), Duration::from_secs(300))
        .await
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
}
