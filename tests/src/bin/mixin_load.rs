//! `mixin_load`: a Freqtrade callback's round trip to memd through the real memd mixin
//! (`data/freqtrade/strategies/memd_mixin.py`, the module the bots import) and the real
//! socket, with N bots entering at the same candle close.
//!
//! Starts the real memd with the fake bot as its `freqtrade`, registers and deploys N bot
//! strategies (each trades one of the shipped pairs, whose candles memd reads for the
//! model's prediction, the volatility and the market state), trains the model, then runs N
//! Python processes, each a bot: the mixin class with the config memd rendered for that
//! deployment (its credential), called as Freqtrade calls it at an entry:
//! `custom_stake_amount` (MEM enhances the entry) then `confirm_trade_entry` (MEM logs the
//! decision). Every process enters at the same instants (a candle close every
//! `--interval-ms`), `--rounds` times; each callback's time is measured around the call,
//! in the process. A run's figures are over all its callbacks; `--runs` runs, and the
//! median of their p99s.
//!
//! ```sh
//! cargo build --release -p memd --bin memd -p mem-e2e --bin fake_freqtrade --bin mixin_load
//! target/release/mixin_load --bots 50 --rounds 20 --runs 5
//! ```
//!
//! `--python PATH` runs the bots with another interpreter (the Freqtrade virtualenv's, say;
//! the module needs Python's standard library only), `--no-train` without a model.

use mem_e2e::measure::{median, percentile};
use mem_protocol::deploy::{DeployParams, StopAllParams};
use mem_protocol::methods::method;
use mem_protocol::registry::RegisterParams;
use mem_protocol::{Client, ClientOptions};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One bot: the real mixin, driven as Freqtrade drives it at an entry.
const BOT: &str = r#"
import json, logging, sys, time, types
logging.basicConfig(level=logging.CRITICAL)
module_dir, config_path, symbol, start, rounds, interval = sys.argv[1:7]
sys.path.insert(0, module_dir)
import memd_mixin

class Bot(memd_mixin.MemdMixin):
    timeframe = "5m"
    def __init__(self, config):
        self.config = config
        self.dp = types.SimpleNamespace(
            runmode=types.SimpleNamespace(value="dry_run"),
            get_analyzed_dataframe=lambda pair, timeframe: (None, None),
        )

bot = Bot(json.load(open(config_path)))
# A running bot's connection is open before the candle closes: warm it up.
bot._memd()
bot._memd_call(bot._memd_settings, "mem.enhance", bot._memd_signal(bot._memd_settings, symbol, "long", None))
stake_ms, confirm_ms, failures, refused = [], [], 0, 0
for k in range(int(rounds)):
    at = float(start) + k * float(interval)
    left = at - time.time()
    if left > 0:
        time.sleep(left)
    t0 = time.perf_counter()
    stake = bot.custom_stake_amount(symbol, None, 1.0, 100.0, 1.0, 1000.0, 1.0, None, "long")
    t1 = time.perf_counter()
    up = bot._memd_state == "up"
    entered = bot.confirm_trade_entry(symbol, "limit", 1.0, 0.05, "GTC", None, None, "long")
    t2 = time.perf_counter()
    if not (up and bot._memd_state == "up"):
        failures += 1
    if not entered:
        refused += 1
    stake_ms.append((t1 - t0) * 1000)
    confirm_ms.append((t2 - t1) * 1000)
print(json.dumps({"stake": stake_ms, "confirm": confirm_ms, "failures": failures, "refused": refused}))
"#;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn next_to_me(name: &str) -> PathBuf {
    let path = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it in the same profile",
        path.display()
    );
    path
}

/// Starts memd on a temporary directory with the fake bot as `freqtrade`.
fn start_memd(root: &Path) -> (std::process::Child, PathBuf) {
    let overrides = root.join("overrides.json");
    std::fs::write(&overrides, json!({"fake_bot": {}}).to_string()).unwrap();
    let config = root.join("memd.toml");
    std::fs::write(
        &config,
        format!(
            "[freqtrade]\nbin = {:?}\nconfig_overrides = {:?}\nport_range = [21000, 21999]\n\n[schedule.retrain]\nenabled = false\n",
            next_to_me("fake_freqtrade").display().to_string(),
            overrides.display().to_string()
        ),
    )
    .unwrap();
    let socket = root.join("memd.sock");
    let daemon = Command::new(next_to_me("memd"))
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(root.join("data"))
        .env("MEMD_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (daemon, socket)
}

/// Registers and deploys `bots` bot strategies, bot i on `pairs[i % len]`; answers each
/// bot's rendered config and pair.
async fn deploy_bots(client: &Client, bots: usize, pairs: &[String]) -> Vec<(PathBuf, String)> {
    let template: Value = serde_json::from_str(include_str!(
        "../../../data/strategy_registry/metadata/4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json"
    ))
    .unwrap();
    let mut out = Vec::new();
    for i in 0..bots {
        let pair = pairs[i % pairs.len()].clone();
        let mut doc = template.clone();
        doc["strategy"]["id"] = Value::Null;
        doc["strategy"]["name"] = json!(format!("mixin_bot_{i}"));
        doc["strategy"]["display_name"] = json!(format!("Mixin bot {i}"));
        doc["strategy"]["deployment"]["port"] = Value::Null;
        doc["strategy"]["deployment"]["pairs"] = json!([pair]);
        let detail = client
            .call::<method::StrategiesRegister>(RegisterParams {
                strategy: doc,
                status: None,
            })
            .await
            .unwrap();
        let d = client
            .call::<method::Deploy>(DeployParams {
                id: detail.summary.id,
                dry_run: true,
                port: None,
                parameters: None,
                native: None,
            })
            .await
            .unwrap();
        out.push((PathBuf::from(d.config_file.unwrap()), pair));
    }
    out
}

/// One run: every bot enters `rounds` times at the same instants; answers the stake and
/// confirm callbacks' times (ms), the failures and the refusals.
fn run_once(
    python: &str,
    script: &Path,
    module_dir: &Path,
    bots: &[(PathBuf, String)],
    rounds: usize,
    interval: f64,
) -> (Vec<f64>, Vec<f64>, u64, u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    // Time for every interpreter to start, import and connect.
    let start = now.as_secs_f64() + 3.0 + bots.len() as f64 * 0.05;
    let children: Vec<_> = bots
        .iter()
        .map(|(config, pair)| {
            Command::new(python)
                .arg(script)
                .arg(module_dir)
                .arg(config)
                .arg(pair)
                .arg(format!("{start:.6}"))
                .arg(rounds.to_string())
                .arg(format!("{interval}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {python}: {e}"))
        })
        .collect();
    let (mut stake, mut confirm, mut failures, mut refused) = (Vec::new(), Vec::new(), 0, 0);
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a bot failed: {}", out.status);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let samples = |key: &str| -> Vec<f64> {
            report[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        stake.extend(samples("stake"));
        confirm.extend(samples("confirm"));
        failures += report["failures"].as_u64().unwrap();
        refused += report["refused"].as_u64().unwrap();
    }
    stake.sort_by(f64::total_cmp);
    confirm.sort_by(f64::total_cmp);
    (stake, confirm, failures, refused)
}

fn figures(sorted: &[f64]) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
        percentile(sorted, 50.0),
        percentile(sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN),
        sorted.len()
    )
}

#[tokio::main]
async fn main() {
    let bots: usize = arg("--bots", "50").parse().unwrap();
    let rounds: usize = arg("--rounds", "20").parse().unwrap();
    let runs: usize = arg("--runs", "5").parse().unwrap();
    let interval = arg("--interval-ms", "1000").parse::<f64>().unwrap() / 1000.0;
    let python = arg("--python", "python3");
    let root = tempfile::tempdir().unwrap();
    let (mut daemon, socket) = start_memd(root.path());
    let pid = daemon.id().to_string();
    let client = loop {
        if let Ok(c) = Client::connect(&socket, ClientOptions::default()).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let data = root.path().join("data");
    let pairs = {
        let mut p: Vec<String> = std::fs::read_dir(data.join("market"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| {
                n.strip_suffix("-5m.feather")
                    .map(|s| s.replacen('_', "/", 1))
            })
            .collect();
        p.sort();
        p
    };
    if !flag("--no-train") {
        let started = Instant::now();
        let trained = client
            .call_with_timeout::<method::MlTrain>(Default::default(), Duration::from_secs(600))
            .await
            .unwrap();
        println!(
            "trained model {} in {:.1} s",
            trained.model.version,
            started.elapsed().as_secs_f64()
        );
    }
    let started = Instant::now();
    let deployed = deploy_bots(&client, bots, &pairs).await;
    println!(
        "deployed {} fake bots over {} pairs ({}) in {:.1} s",
        deployed.len(),
        pairs.len(),
        pairs.join(", "),
        started.elapsed().as_secs_f64()
    );
    let script = root.path().join("bot.py");
    std::fs::write(&script, BOT).unwrap();
    let module_dir = data.join("freqtrade/strategies");
    let mut p99s = Vec::new();
    let mut all_ok = true;
    for run in 1..=runs {
        let cpu0 = mem_e2e::measure::cpu_seconds(&pid);
        let t0 = Instant::now();
        let (stake, confirm, failures, refused) =
            run_once(&python, &script, &module_dir, &deployed, rounds, interval);
        let cpu = mem_e2e::measure::cpu_seconds(&pid) - cpu0;
        let mut both: Vec<f64> = stake.iter().chain(&confirm).copied().collect();
        both.sort_by(f64::total_cmp);
        let p99 = percentile(&both, 99.0);
        p99s.push(p99);
        all_ok &= failures == 0;
        println!(
            "run {run}: {bots} bots x {rounds} entries: every callback {}; custom_stake_amount (mem.enhance) {}; confirm_trade_entry (mem.decide) {}; {failures} without an answer, {refused} refused; memd CPU {cpu:.2} s over {:.1} s",
            figures(&both),
            figures(&stake),
            figures(&confirm),
            t0.elapsed().as_secs_f64()
        );
    }
    p99s.sort_by(f64::total_cmp);
    let verdict = median(&p99s);
    println!(
        "median of {runs} runs' p99: {verdict:.2} ms (bar: under 5 ms): {}",
        if verdict < 5.0 && all_ok {
            "PASS"
        } else {
            "MISS"
        }
    );
    client
        .call_with_timeout::<method::StopAll>(StopAllParams::default(), Duration::from_secs(300))
        .await
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
}
