//! `tui_load`: what the terminal UI costs and how fast it shows news, measured on the real
//! memctl in a real terminal (tmux) against the real memd, with the fake bot as Freqtrade.
//!
//! - `idle`: per view, memctl's CPU (utime + stime from /proc) and the bytes it writes to
//!   the terminal (tmux `pipe-pane`), over a window in which nothing changes but clocks.
//! - `latency`: from a bot's status change in the daemon (the event's timestamp) to the
//!   new status on the screen (`capture-pane` polled every 2 ms), over N deploy/stop rounds.
//!
//! ```sh
//! cargo build --release --workspace
//! target/release/tui_load idle --seconds 60
//! target/release/tui_load latency --rounds 30
//! ```

use mem_e2e::Daemon;
use mem_e2e::seed;
use mem_e2e::tmux::Tmux;
use mem_protocol::deploy::{DeployParams, DeploymentStatus, StopMode, StopParams};
use mem_protocol::methods::method;
use mem_protocol::{Event, Topic};
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

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12) // utime, stime (fields 14 and 15 of stat)
}

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64
}

fn start(daemon: &Daemon, width: u16, height: u16) -> Tmux {
    let command = format!(
        "{} --socket {}",
        mem_e2e::bin("memctl").display(),
        daemon.socket.display()
    );
    let home = daemon.root.path().display().to_string();
    let t = Tmux::start(
        daemon.root.path(),
        &command,
        width,
        height,
        &[("HOME", &home), ("TERM", "xterm-256color")],
    );
    t.wait_for("connected", Duration::from_secs(10));
    t
}

fn idle(seconds: u64) {
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let t = start(&daemon, 120, 40);
    let pid = t.program_pid();
    let output = daemon.root.path().join("terminal-output");
    t.record_output(&output);
    let size = || std::fs::metadata(&output).map_or(0, |m| m.len());
    println!("memctl idle, 120x40, {seconds} s per view (pid {pid})");
    println!("{:<14}{:>10}{:>14}", "view", "CPU %", "bytes/s");
    for (key, name) in [
        ("1", "Dashboard"),
        ("2", "Strategies"),
        ("3", "Deployed"),
        ("4", "Recommend"),
    ] {
        t.keys(&[key]);
        std::thread::sleep(Duration::from_secs(3)); // let the view's data arrive
        let (ticks, bytes, started) = (cpu_ticks(pid), size(), Instant::now());
        std::thread::sleep(Duration::from_secs(seconds));
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = (cpu_ticks(pid) - ticks) as f64 / ticks_per_second() / elapsed * 100.0;
        let rate = (size() - bytes) as f64 / elapsed;
        println!("{name:<14}{cpu:>10.2}{rate:>14.0}");
    }
}

async fn latency(rounds: u64) {
    let daemon = Daemon::with_fake_freqtrade(json!({}), "");
    let t = start(&daemon, 120, 40);
    t.keys(&["3"]);
    t.wait_for("deployed 0", Duration::from_secs(10));
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Deployments]).await.unwrap();
    let id = seed::sid(seed::CONSERVATIVE_RSI);
    let row = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains("Freqtrade Conservative RSI"))
            .map(str::to_string)
    };
    let mut to_running = Vec::new();
    let mut to_gone = Vec::new();
    for _ in 0..rounds {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        client
            .call::<method::Deploy>(DeployParams {
                id,
                dry_run: true,
                port: Some(port),
                parameters: None,
                native: None,
            })
            .await
            .unwrap();
        let at = loop {
            let m = events.next().await.unwrap();
            if let Event::DeploymentChanged(c) = &m.event {
                if c.deployment.status == DeploymentStatus::Running {
                    break m.at;
                }
            }
        };
        loop {
            if row(&t.screen()).is_some_and(|r| r.contains("running")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        to_running.push((chrono::Utc::now() - at).num_microseconds().unwrap() as f64 / 1000.0);

        client
            .call::<method::Stop>(StopParams {
                id,
                mode: StopMode::Now,
                deadline_secs: None,
            })
            .await
            .unwrap();
        let at = loop {
            let m = events.next().await.unwrap();
            if let Event::DeploymentChanged(c) = &m.event {
                if c.deployment.status == DeploymentStatus::Stopped {
                    break m.at;
                }
            }
        };
        // The Deployed view lists active bots: the stopped one leaves the table.
        while row(&t.screen()).is_some_and(|r| !r.contains("stopped")) {
            std::thread::sleep(Duration::from_millis(2));
        }
        to_gone.push((chrono::Utc::now() - at).num_microseconds().unwrap() as f64 / 1000.0);
    }
    let report = |name: &str, v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "{name:<34} median {:>6.1} ms  p95 {:>6.1} ms  max {:>6.1} ms  (n={})",
            pct(0.5),
            pct(0.95),
            v[v.len() - 1],
            v.len()
        );
    };
    println!("daemon event -> screen (capture-pane polled every 2 ms, which adds its own cost)");
    report("starting -> running shown", &mut to_running);
    report("running -> stopped (row gone)", &mut to_gone);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("idle") => idle(arg("--seconds", 60)),
        Some("latency") => latency(arg("--rounds", 30)).await,
        _ => {
            eprintln!("usage: tui_load idle [--seconds N] | latency [--rounds N]");
            std::process::exit(2);
        }
    }
}
