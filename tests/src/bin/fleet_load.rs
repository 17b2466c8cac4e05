//! `fleet_load`: the fleet TUI (issue 26) against three real daemons with 50 bots each,
//! measured on the real memctl in a real terminal (tmux), the remote daemons reached
//! through a real OpenSSH server on loopback (`mem_e2e::sshd`) with `ssh -T ALIAS memctl
//! bridge`, exactly as `memctl --server all` reaches them for a trader.
//!
//! Set-up (each subcommand makes its own): sshd on a loopback port with a key per login;
//! three memd (release build, beside this tool) with the fake bot as Freqtrade at the
//! default poll interval (5 s) and 5 closed trades a bot; on each, `--bots` (50) copies of
//! the seed's MACD Hunter registered under names of their own (`east bot 07`) and
//! deployed in dry-run, each on a free port; then a wait until every bot was polled and
//! its trades copied, and `--settle` (15) seconds more; a fleet file written by `memctl
//! server add` in a temporary `XDG_CONFIG_HOME`. By default all three servers (`east`,
//! `west`, `north`) are reached over SSH; `--one-local` makes the first one `here`,
//! reached through its local socket, as in the e2e test. As root, SSH logs in as the
//! kit's second Unix user (`memd-e2e-view`, shell `/bin/sh`, no start-up file), given
//! control of the daemons (`[access] control_users`): the figures are then SSH's and
//! memd's, not the login shell's; `--as-me` logs in as the user running the tool instead
//! (on the machine of BENCHMARKS.md, root's `~/.bashrc` runs `pyenv init`, about 0.3 s
//! a login). The set-up prints what one `ssh ALIAS true` costs, for comparison.
//!
//! - `paint`: from starting `memctl --server all` in tmux (160x50) to the all-servers
//!   Dashboard showing every server `connected` with its bots and the `fleet` totals row
//!   with all of them (150), the screen read with `capture-pane` every `--poll-ms` (10)
//!   ms; a fresh memctl (and fresh SSH sessions) each of `--rounds` rounds.
//! - `latency`: a bot on the last server (over SSH) stopped and deployed again through
//!   that daemon's own socket; from the daemon's event (`deployment.changed`, its `at`) to
//!   the new status on screen in the all-servers Deployed view (the terminal is made tall
//!   enough for every row: 160 x bots*3+20; `capture-pane` every 2 ms), `--rounds`
//!   stop/deploy rounds.
//! - `idle`: per all-servers view (Dashboard, Deployed), over `--seconds`: memctl's CPU
//!   (utime + stime, /proc) and the bytes it writes to the terminal (tmux `pipe-pane`);
//!   per SSH server, the bytes of its session: what the remote `memctl bridge` process
//!   wrote (`/proc/PID/io` `wchar`: memd's bytes to memctl plus memctl's to memd, the
//!   protocol's plain text, once each) and what the local `ssh` client's TCP socket sent
//!   and received (`ss -ti` `bytes_sent` + `bytes_received`: the encrypted stream, SSH's
//!   framing, MACs and keep-alives included, TCP/IP headers not); the CPU of the SSH
//!   plumbing (the ssh clients and the bridges) for information; and which events the
//!   bytes are (a subscriber of the all-servers view's topics on each daemon's socket, each event
//!   counted as the line the daemon writes). `--memctl PATH` runs another memctl in the
//!   terminal (an older build, side by side).
//! - `all`: the three, on one set-up; `hold`: the set-up only, until interrupted, for
//!   looking by hand.
//!
//! ```sh
//! cargo build --release -p memd --bin memd -p memctl --bin memctl -p mem-e2e --bin fake_freqtrade --bin fleet_load
//! target/release/fleet_load paint --rounds 5
//! target/release/fleet_load latency --rounds 20
//! target/release/fleet_load idle --seconds 30
//! ```

use mem_e2e::deployments::{dry_run_on_port, stop_now};
use mem_e2e::measure::{cpu_seconds, median};
use mem_e2e::sshd::{self, Sshd};
use mem_e2e::tmux::Tmux;
use mem_e2e::{Daemon, bin, describe, free_port, isolated_command};
use mem_protocol::deploy::DeploymentStatus;
use mem_protocol::methods::method;
use mem_protocol::registry::RegisterParams;
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Event, Topic};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bars of issue 26.
const PAINT_BAR_MS: f64 = 1000.0;
const LATENCY_BAR_MS: f64 = 200.0;
const CPU_BAR_PERCENT: f64 = 1.0;
/// 1 KB/s, counted as 1,000 bytes.
const BYTES_BAR: f64 = 1000.0;
/// How often `paint` reads the screen by default (`--poll-ms`): a `capture-pane` costs
/// about 2 ms of CPU, so reading every 2 ms (as `latency` does) takes half a core from
/// the connections being measured on a 2-core machine; this adds at most 10 ms to a paint.
const PAINT_POLL_MS: u64 = 10;

/// The topics memctl's TUI subscribes to (`ui::conn::serve`).
/// What the all-servers view subscribes each server to (memctl's `FleetApp::topics_of`
/// for a server not on screen): every topic but bots' logs and MEM's memory.
const ALL_SERVERS_TOPICS: [Topic; 7] = [
    Topic::Daemon,
    Topic::Registry,
    Topic::Deployments,
    Topic::Model,
    Topic::Jobs,
    Topic::Market,
    Topic::Queue,
];

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The machine's load averages (1, 5, 15 min), as `/proc/loadavg` says.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// One server of the fleet: its daemon, how memctl reaches it, its bots.
struct Server {
    name: String,
    daemon: Daemon,
    /// Its `Host` alias, when reached over SSH.
    alias: Option<String>,
    /// `(strategy name as the screen shows it, strategy id)`.
    bots: Vec<(String, StrategyId)>,
}

struct Fleet {
    _sshd: Sshd,
    servers: Vec<Server>,
    /// memctl's HOME; its `xdg-config/memctl/fleet.toml` is the fleet.
    home: tempfile::TempDir,
    bots: usize,
    /// The memctl run in the terminal (`--memctl`, default the one beside this tool); the
    /// bridges on the servers run the one beside this tool.
    tui_memctl: std::path::PathBuf,
}

/// A daemon with the fake bot as Freqtrade; `extra` is more of its config.
fn fake_daemon(extra: &str) -> Daemon {
    let root = tempfile::tempdir().unwrap();
    // memd's defaults (a poll every 5 s); each bot reports 5 closed trades.
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({ "fake_bot": { "closed_trades": 5 } }),
        "",
        extra,
    );
    Daemon::with_config(root, &config)
}

/// Registers `n` copies of the seed's MACD Hunter named `{server}_bot_NN` and deploys
/// each in dry-run on a free port.
async fn deploy_bots(daemon: &Daemon, server: &str, n: usize) -> Vec<(String, StrategyId)> {
    let client = daemon.client().await;
    let mut bots = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{server}_bot_{i:02}");
        let detail = client
            .call::<method::StrategiesRegister>(RegisterParams {
                strategy: mem_e2e::measure::load_bot_strategy(&name),
                status: None,
            })
            .await
            .expect("register a bot's strategy");
        client
            .call_with_timeout::<method::Deploy>(
                dry_run_on_port(detail.summary.id, free_port()),
                Duration::from_secs(120),
            )
            .await
            .expect("deploy a bot");
        bots.push((name.replace('_', " "), detail.summary.id));
    }
    bots
}

fn memctl(home: &Path, args: &[String]) {
    let out = isolated_command(&bin("memctl"), home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run memctl");
    assert!(out.status.success(), "memctl {args:?}: {}", describe(&out));
}

/// Who logs in over SSH: the kit's second Unix user, whose shell (`/bin/sh`) reads no
/// start-up file, given control of the daemons; or (`--as-me`, or when not root) the
/// user running this tool, whose shell may read its own (`~/.bashrc`: on the machine of
/// BENCHMARKS.md, root's runs `pyenv init`, about 0.3 s a login).
fn login_user(as_me: bool) -> Option<String> {
    (!as_me && nix::unistd::getuid().is_root()).then(Sshd::viewer)
}

async fn set_up(bots: usize, settle: u64, one_local: bool, as_me: bool) -> Fleet {
    assert!(
        mem_e2e::tmux::available(),
        "tmux is not installed (apt-get install tmux)"
    );
    let started = Instant::now();
    let user = login_user(as_me);
    let sshd = Sshd::start();
    let names = if one_local {
        ["here", "east", "west"]
    } else {
        ["east", "west", "north"]
    };
    let access = user
        .as_ref()
        .map(|u| format!("[access]\ncontrol_users = [{u:?}]\n"))
        .unwrap_or_default();
    let daemons: Vec<Daemon> = names.iter().map(|_| fake_daemon(&access)).collect();
    let (a, b, c) = tokio::join!(
        deploy_bots(&daemons[0], names[0], bots),
        deploy_bots(&daemons[1], names[1], bots),
        deploy_bots(&daemons[2], names[2], bots),
    );
    // Settled: every bot polled and its closed trades copied (each copy announces its
    // strategy's new figures), then `--settle` seconds more.
    let deadline = Instant::now() + Duration::from_secs(120);
    for daemon in &daemons {
        let client = daemon.client().await;
        loop {
            let list = mem_e2e::deployments::active_deployments(&client).await;
            if list.len() == bots
                && list
                    .iter()
                    .all(|d| d.stats.polled_at.is_some() && d.stats.closed_trades >= 5)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the bots did not settle in 120 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let home = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for ((name, daemon), bots) in names.iter().zip(daemons).zip([a, b, c]) {
        let local = one_local && servers.is_empty();
        let mut args: Vec<String> = vec!["server".into(), "add".into(), name.to_string()];
        let alias = if local {
            None
        } else {
            let alias = sshd.login(&format!("memd-{name}"), user.as_deref(), true);
            // The memctl the bridge runs, where the login user can run it; with the
            // socket's directory open to the kit's socket group.
            let remote_memctl = match &user {
                Some(_) => sshd::share_socket(daemon.root.path(), &daemon.socket),
                None => sshd::public_memctl(sshd.dir.path()),
            };
            args.push(alias.clone());
            args.extend(["--memctl".into(), remote_memctl.display().to_string()]);
            args.extend(
                sshd.ssh_options()
                    .into_iter()
                    .map(|o| format!("--ssh-option={o}")),
            );
            Some(alias)
        };
        args.extend(["--socket".into(), daemon.socket.display().to_string()]);
        memctl(home.path(), &args);
        servers.push(Server {
            name: name.to_string(),
            daemon,
            alias,
            bots,
        });
    }
    println!(
        "set up in {:.1} s (the bots settled, then {settle} s): sshd on 127.0.0.1:{}, logging in as {}; {} daemons with {bots} fake bots each (dry-run, poll every 5 s); {}",
        started.elapsed().as_secs_f64(),
        sshd.port,
        user.clone().unwrap_or_else(|| format!(
            "{} (this user, its own shell start-up)",
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map_or("?".into(), |u| u.name)
        )),
        servers.len(),
        servers
            .iter()
            .map(|s| format!(
                "{} {}",
                s.name,
                if s.alias.is_some() {
                    "over SSH"
                } else {
                    "by its local socket"
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // What one SSH command costs here (handshake, login, the remote shell), without memd.
    if let Some(alias) = servers.iter().find_map(|s| s.alias.clone()) {
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let out = std::process::Command::new("ssh")
                    .args(sshd.ssh_options())
                    .args(["-T", &alias, "true"])
                    .stdin(Stdio::null())
                    .output()
                    .expect("run ssh");
                assert!(out.status.success(), "ssh {alias} true: {}", describe(&out));
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let (median, max) = summary(&mut times);
        println!(
            "`ssh {alias} true` (SSH alone: handshake, login, the remote shell): median {median:.0} ms, max {max:.0} ms (n=5)"
        );
    }
    Fleet {
        _sshd: sshd,
        servers,
        home,
        bots,
        tui_memctl: std::env::args()
            .skip_while(|a| a != "--memctl")
            .nth(1)
            .map_or_else(|| bin("memctl"), std::path::PathBuf::from),
    }
}

impl Fleet {
    fn names(&self) -> Vec<&str> {
        self.servers.iter().map(|s| s.name.as_str()).collect()
    }

    /// `memctl --server all` in a new tmux of `width` x `height`.
    fn start_tui(&self, width: u16, height: u16) -> Tmux {
        let home = self.home.path();
        let config = home.join("xdg-config").display().to_string();
        let home_text = home.display().to_string();
        Tmux::start(
            home,
            &format!("{} --server all", self.tui_memctl.display()),
            width,
            height,
            &[
                ("HOME", &home_text),
                ("XDG_CONFIG_HOME", &config),
                ("TERM", "xterm-256color"),
            ],
        )
    }

    /// Whether the Dashboard's row of server `name` shows it connected with its bots.
    fn server_painted(&self, rows: &[Vec<String>], name: &str) -> bool {
        let bots = self.bots.to_string();
        rows.iter().any(|r| {
            r.first().is_some_and(|c| c == name)
                && r.get(1).is_some_and(|c| c == "connected")
                && r.get(3) == Some(&bots)
        })
    }

    /// The all-servers Dashboard as wanted: every server connected with its bots, and
    /// the fleet's row with all of them.
    fn fully_painted(&self, screen: &str) -> bool {
        let n = self.servers.len();
        if !screen.contains(&format!("{n} of {n} connected")) {
            return false;
        }
        let rows = cells(screen);
        let total = (self.bots * n).to_string();
        self.names()
            .iter()
            .all(|name| self.server_painted(&rows, name))
            && rows
                .iter()
                .any(|r| r.first().is_some_and(|c| c == "fleet") && r.get(1) == Some(&total))
    }

    /// Waits for the full Dashboard, reading the screen every `poll`; answers when it
    /// came, and when each server's row was first complete.
    fn wait_painted(
        &self,
        t: &Tmux,
        started: Instant,
        poll: Duration,
    ) -> (Duration, Vec<Duration>) {
        let mut each: Vec<Option<Duration>> = vec![None; self.servers.len()];
        loop {
            let screen = t.screen();
            let rows = cells(&screen);
            for (i, name) in self.names().iter().enumerate() {
                if each[i].is_none() && self.server_painted(&rows, name) {
                    each[i] = Some(started.elapsed());
                }
            }
            if self.fully_painted(&screen) {
                let now = started.elapsed();
                return (now, each.into_iter().map(|e| e.unwrap_or(now)).collect());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the all-servers Dashboard was not complete after 60 s:\n{screen}"
            );
            std::thread::sleep(poll);
        }
    }

    /// Waits until no bridge to these daemons runs any more (a finished round's SSH
    /// sessions have closed).
    fn wait_sessions_closed(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .servers
            .iter()
            .any(|s| !bridges_of(&s.daemon.socket).is_empty())
        {
            if Instant::now() > deadline {
                eprintln!("warning: a bridge still runs 10 s after its memctl ended");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A screen's lines as cells: the table's borders trimmed, split at whitespace.
fn cells(screen: &str) -> Vec<Vec<String>> {
    screen
        .lines()
        .map(|l| {
            l.trim_matches(|c: char| c == '│' || c.is_whitespace())
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .collect()
}

fn summary(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (median(v), v.last().copied().unwrap_or(f64::NAN))
}

fn verdict(median: f64, max: f64, bar: f64) -> String {
    match (median < bar, max < bar) {
        (true, true) => "PASS".into(),
        (true, false) => "PASS by the median (max over the bar)".into(),
        _ => "MISS".into(),
    }
}

fn paint(fleet: &Fleet, rounds: u64, poll: Duration) {
    println!(
        "\npaint: `memctl --server all` started in tmux (160x50) -> every server connected with its {} bots and the fleet row {} (capture-pane every {} ms)",
        fleet.bots,
        fleet.bots * fleet.servers.len(),
        poll.as_millis()
    );
    let mut full = Vec::new();
    let mut first = Vec::new();
    for round in 1..=rounds {
        let started = Instant::now();
        let t = fleet.start_tui(160, 50);
        // The first frame of the all-servers screen (its tab line), then the full one.
        let first_frame = loop {
            let screen = t.screen();
            if screen.contains("all servers:") {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "memctl drew nothing in 30 s:\n{screen}"
            );
            std::thread::sleep(poll);
        };
        let (painted, each) = fleet.wait_painted(&t, started, poll);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  round {round}: first frame {:>6.1} ms, full Dashboard {:>6.1} ms (each server's row: {})",
            ms(first_frame),
            ms(painted),
            fleet
                .names()
                .iter()
                .zip(&each)
                .map(|(n, d)| format!("{n} {:.0}", ms(*d)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        first.push(ms(first_frame));
        full.push(ms(painted));
        drop(t);
        fleet.wait_sessions_closed();
    }
    println!("  load average after: {}", load());
    let (first_median, first_max) = summary(&mut first);
    let (median, max) = summary(&mut full);
    println!(
        "  first frame (nothing connected yet): median {first_median:.1} ms, max {first_max:.1} ms"
    );
    println!(
        "  full all-servers Dashboard: median {median:.1} ms, max {max:.1} ms (n={})  bar < {PAINT_BAR_MS:.0} ms: {}",
        full.len(),
        verdict(median, max, PAINT_BAR_MS)
    );
}

async fn latency(fleet: &Fleet, rounds: u64) {
    let server = fleet.servers.last().expect("a server");
    assert!(
        server.alias.is_some(),
        "the last server is reached over SSH"
    );
    let (bot, id) = server.bots[server.bots.len() / 2].clone();
    // Every row on screen: the view's 150 rows and its frame.
    let height = (fleet.bots * fleet.servers.len() + 20).min(1000) as u16;
    println!(
        "\nlatency: `{bot}` on {} (over SSH) stopped, then deployed again, through that daemon's socket; its event's time -> the new status in the all-servers Deployed view (160x{height}, every row on screen; capture-pane every 2 ms)",
        server.name
    );
    let t = fleet.start_tui(160, height);
    fleet.wait_painted(&t, Instant::now(), Duration::from_millis(20));
    t.keys(&["3"]);
    let row = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains(&bot))
            .map(str::to_string)
    };
    t.wait_until("the bot's row, running", Duration::from_secs(20), |s| {
        row(s).is_some_and(|r| r.contains("running"))
    });
    let client = server.daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Deployments]).await.unwrap();
    let mut status_event = async |wanted: DeploymentStatus| loop {
        let m = events.next().await.expect("the daemon's events");
        if let Event::DeploymentChanged(c) = &m.event
            && c.deployment.strategy_id == id
            && c.deployment.status == wanted
        {
            break m.at;
        }
    };
    let since = |at: chrono::DateTime<chrono::Utc>| {
        (chrono::Utc::now() - at).num_microseconds().unwrap() as f64 / 1000.0
    };
    let mut to_gone = Vec::new();
    let mut to_running = Vec::new();
    for _ in 0..rounds {
        client
            .call::<method::Stop>(stop_now(id))
            .await
            .expect("stop the bot");
        let at = status_event(DeploymentStatus::Stopped).await;
        // The Deployed view lists active bots: the stopped one leaves the table.
        let deadline = Instant::now() + Duration::from_secs(10);
        while row(&t.screen()).is_some_and(|r| !r.contains("stopped")) {
            assert!(Instant::now() < deadline, "the stopped bot's row stayed");
            std::thread::sleep(Duration::from_millis(2));
        }
        to_gone.push(since(at));

        client
            .call_with_timeout::<method::Deploy>(
                dry_run_on_port(id, free_port()),
                Duration::from_secs(120),
            )
            .await
            .expect("deploy the bot again");
        let at = status_event(DeploymentStatus::Running).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !row(&t.screen()).is_some_and(|r| r.contains("running")) {
            assert!(
                Instant::now() < deadline,
                "the bot's row did not show running"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        to_running.push(since(at));
    }
    println!(
        "  daemon event -> screen, over SSH (capture-pane's own cost included); load average after: {}",
        load()
    );
    for (name, v) in [
        ("running -> stopped (row gone)", &mut to_gone),
        ("starting -> running shown", &mut to_running),
    ] {
        let (median, max) = summary(v);
        println!(
            "  {name:<32} median {median:>6.1} ms  max {max:>6.1} ms  (n={})  bar < {LATENCY_BAR_MS:.0} ms: {}",
            v.len(),
            verdict(median, max, LATENCY_BAR_MS)
        );
    }
}

/// Processes of this machine: `(pid, parent pid, comm, command line)`.
fn processes() -> Vec<(u32, u32, String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        out.push((pid, ppid, comm.trim().to_string(), cmdline));
    }
    out
}

/// The `memctl bridge` processes serving `socket`.
fn bridges_of(socket: &Path) -> Vec<u32> {
    let socket = socket.display().to_string();
    processes()
        .into_iter()
        .filter(|(_, _, comm, cmd)| {
            comm == "memctl" && cmd.contains(" bridge ") && cmd.contains(&socket)
        })
        .map(|(pid, ..)| pid)
        .collect()
}

/// A counter of `/proc/PID/io` (`rchar`, `wchar`).
fn io(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes sent plus received by each ssh client's TCP socket to sshd's port, by pid
/// (`ss -tinp`: the kernel's tcp_info).
fn ssh_wire_bytes(port: u16) -> BTreeMap<u32, u64> {
    let out = std::process::Command::new("ss")
        .args([
            "-tinpH",
            "state",
            "established",
            "dport",
            "=",
            &format!(":{port}"),
        ])
        .output();
    let mut bytes = BTreeMap::new();
    let Ok(out) = out else { return bytes };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut pid = None;
    for line in text.lines() {
        if let Some(at) = line.find("pid=") {
            pid = line[at + 4..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse::<u32>().ok());
        }
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let (Some(p), Some(sent)) = (pid, field("bytes_sent:")) {
            *bytes.entry(p).or_insert(0) += sent + field("bytes_received:").unwrap_or(0);
        }
    }
    bytes
}

/// Per event name: how many, and their bytes as the daemon writes them.
type Tally = Arc<Mutex<BTreeMap<&'static str, (u64, u64)>>>;

async fn idle(fleet: &Fleet, seconds: u64) {
    let (width, height) = (160u16, 50u16);
    println!(
        "\nidle: {} --server all in tmux ({width}x{height}), {seconds} s per view, nothing changing but the bots' polls (every 5 s each) and memd's periodic events (every 2 s)",
        fleet.tui_memctl.display()
    );
    let started = Instant::now();
    let t = fleet.start_tui(width, height);
    fleet.wait_painted(&t, started, Duration::from_millis(20));
    let memctl_pid = t.program_pid();
    let output = fleet.home.path().join("terminal-output");
    t.record_output(&output);
    let terminal_bytes = || std::fs::metadata(&output).map_or(0, |m| m.len());

    // Each SSH server's processes: the ssh client (memctl's child naming its alias) and
    // the bridge on the "server".
    let procs = processes();
    struct Plumbing {
        name: String,
        ssh: u32,
        bridge: u32,
    }
    let mut plumbing = Vec::new();
    for s in &fleet.servers {
        let Some(alias) = &s.alias else { continue };
        let ssh = procs
            .iter()
            .find(|(_, ppid, comm, cmd)| {
                *ppid == memctl_pid && comm == "ssh" && cmd.contains(&format!(" {alias} "))
            })
            .map(|(pid, ..)| *pid);
        let bridge = bridges_of(&s.daemon.socket).first().copied();
        match (ssh, bridge) {
            (Some(ssh), Some(bridge)) => plumbing.push(Plumbing {
                name: s.name.clone(),
                ssh,
                bridge,
            }),
            _ => panic!(
                "{}: ssh client {ssh:?}, bridge {bridge:?} not found (memctl pid {memctl_pid})",
                s.name
            ),
        }
    }
    let sshd_port = fleet._sshd.port;

    // Which events the bytes are: a subscriber of the all-servers view's topics on each
    // daemon.
    let mut tallies: Vec<Tally> = Vec::new();
    let mut listeners = Vec::new();
    for s in &fleet.servers {
        let client = s.daemon.client().await;
        let tally: Tally = Arc::default();
        let (_, mut events) = client.subscribe(ALL_SERVERS_TOPICS.to_vec()).await.unwrap();
        let counted = tally.clone();
        listeners.push(tokio::spawn(async move {
            let _client = client;
            while let Some(m) = events.next().await {
                let len = m.to_notification().to_line().len() as u64;
                let mut t = counted.lock().unwrap();
                let e = t.entry(m.event.name()).or_insert((0, 0));
                e.0 += 1;
                e.1 += len;
            }
        }));
        tallies.push(tally);
    }

    println!(
        "{:<11}{:>9}{:>16}   per SSH server: protocol B/s (bridge wchar) / wire B/s (ssh's TCP socket, both ways)   SSH plumbing CPU %",
        "view", "CPU %", "terminal B/s"
    );
    let mut worst = (0.0f64, 0.0f64, 0.0f64, 0.0f64); // cpu, terminal, protocol, wire
    let mut breakdown: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let mut measured_secs = 0.0;
    for (key, view) in [("1", "Dashboard"), ("3", "Deployed")] {
        t.keys(&[key]);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cpu0 = cpu_seconds(&memctl_pid.to_string());
        let plumbing_cpu = |p: &[Plumbing]| -> f64 {
            p.iter()
                .map(|p| cpu_seconds(&p.ssh.to_string()) + cpu_seconds(&p.bridge.to_string()))
                .sum()
        };
        let pcpu0 = plumbing_cpu(&plumbing);
        let term0 = terminal_bytes();
        let proto0: Vec<u64> = plumbing.iter().map(|p| io(p.bridge, "wchar")).collect();
        let wire0 = ssh_wire_bytes(sshd_port);
        let tally0: Vec<BTreeMap<_, _>> =
            tallies.iter().map(|t| t.lock().unwrap().clone()).collect();
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu = (cpu_seconds(&memctl_pid.to_string()) - cpu0) / elapsed * 100.0;
        let pcpu = (plumbing_cpu(&plumbing) - pcpu0) / elapsed * 100.0;
        let term = (terminal_bytes() - term0) as f64 / elapsed;
        let wire1 = ssh_wire_bytes(sshd_port);
        let mut per_server = Vec::new();
        for (p, before) in plumbing.iter().zip(&proto0) {
            let proto = (io(p.bridge, "wchar") - before) as f64 / elapsed;
            let wire = match (wire0.get(&p.ssh), wire1.get(&p.ssh)) {
                (Some(a), Some(b)) => (b - a) as f64 / elapsed,
                _ => f64::NAN,
            };
            worst.2 = worst.2.max(proto);
            worst.3 = worst.3.max(wire);
            per_server.push(format!("{} {proto:.0} / {wire:.0}", p.name));
        }
        for (tally, before) in tallies.iter().zip(&tally0) {
            for (name, (n, bytes)) in tally.lock().unwrap().iter() {
                let (n0, b0) = before.get(name).copied().unwrap_or((0, 0));
                let e = breakdown.entry(name).or_insert((0, 0));
                e.0 += n - n0;
                e.1 += bytes - b0;
            }
        }
        measured_secs += elapsed;
        worst.0 = worst.0.max(cpu);
        worst.1 = worst.1.max(term);
        println!(
            "{view:<11}{cpu:>9.2}{term:>16.0}   {}   {pcpu:.2}",
            per_server.join(", ")
        );
    }
    for l in listeners {
        l.abort();
    }
    println!("  load average after: {}", load());
    let servers = fleet.servers.len() as f64;
    println!(
        "  what memd sends a subscriber of the all-servers topics, average per server and second over both views (each event as the daemon's line):"
    );
    let mut total = 0.0;
    let mut rows: Vec<_> = breakdown.into_iter().collect();
    rows.sort_by_key(|(_, (_, bytes))| std::cmp::Reverse(*bytes));
    for (name, (n, bytes)) in rows.into_iter().filter(|(_, (n, _))| *n > 0) {
        let rate = bytes as f64 / servers / measured_secs;
        total += rate;
        println!(
            "    {name:<22}{:>7.2} events/s {rate:>9.0} B/s  ({:.0} B each)",
            n as f64 / servers / measured_secs,
            bytes as f64 / n.max(1) as f64
        );
    }
    println!("    {:<22}{:>16} {total:>9.0} B/s", "all", "");
    println!(
        "  memctl CPU, worst view: {:.2}%  bar < {CPU_BAR_PERCENT}%: {}",
        worst.0,
        if worst.0 < CPU_BAR_PERCENT {
            "PASS"
        } else {
            "MISS"
        }
    );
    println!(
        "  terminal output, worst view: {:.0} B/s  bar < {BYTES_BAR:.0} B/s: {}",
        worst.1,
        if worst.1 < BYTES_BAR { "PASS" } else { "MISS" }
    );
    println!(
        "  per SSH server, worst: protocol {:.0} B/s, wire {:.0} B/s  bar < {BYTES_BAR:.0} B/s per server: {}",
        worst.2,
        worst.3,
        if worst.2.max(worst.3) < BYTES_BAR {
            "PASS"
        } else {
            "MISS"
        }
    );
}

fn usage() -> ! {
    eprintln!(
        "usage: fleet_load paint [--rounds N] [--poll-ms N (10)] | latency [--rounds N] | idle [--seconds N] | all [--rounds N] [--seconds N] | hold\n\
         \x20      [--bots N (50)] [--settle SECONDS (15)] [--one-local (the first server by its local socket)] [--as-me (log in as this user)] [--memctl PATH (the TUI's)]"
    );
    std::process::exit(2);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let command = std::env::args().nth(1).unwrap_or_default();
    if !["paint", "latency", "idle", "all", "hold"].contains(&command.as_str()) {
        usage();
    }
    println!(
        "fleet_load {command}: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    let fleet = set_up(
        arg("--bots", 50) as usize,
        arg("--settle", 15),
        flag("--one-local"),
        flag("--as-me"),
    )
    .await;
    let poll = Duration::from_millis(arg("--poll-ms", PAINT_POLL_MS));
    match command.as_str() {
        "paint" => paint(&fleet, arg("--rounds", 5), poll),
        "latency" => latency(&fleet, arg("--rounds", 20)).await,
        "idle" => idle(&fleet, arg("--seconds", 30)).await,
        "hold" => {
            // For looking by hand: the fleet stays up until this tool is interrupted.
            println!(
                "holding; memctl's fleet: HOME={0} XDG_CONFIG_HOME={0}/xdg-config {1} --server all",
                fleet.home.path().display(),
                bin("memctl").display()
            );
            for s in &fleet.servers {
                println!("  {}: socket {}", s.name, s.daemon.socket.display());
            }
            tokio::signal::ctrl_c().await.ok();
        }
        _ => {
            paint(&fleet, arg("--rounds", 5), poll);
            latency(&fleet, arg("--rounds", 20)).await;
            idle(&fleet, arg("--seconds", 30)).await;
        }
    }
    // The daemons (and their bots) are stopped as the fleet is dropped.
    drop(fleet);
}
