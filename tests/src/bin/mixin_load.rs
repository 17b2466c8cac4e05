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
//! decision: sent, not waited for). Every process enters at the same instants (a candle
//! close every `--interval-ms`), `--rounds` times; each callback's time is measured around
//! the call, in the process, and so is the time to memd's answer that the decision is on
//! disk (read after the callback). A run's figures are over all its callbacks; `--runs`
//! runs, and the median of their p99s.
//!
//! ```sh
//! cargo build --release -p memd --bin memd -p mem-e2e --bin fake_freqtrade --bin mixin_load
//! target/release/mixin_load --bots 50 --rounds 20 --runs 5
//! ```
//!
//! `--python PATH` runs the bots with another interpreter (the Freqtrade virtualenv's, say;
//! the module needs Python's standard library only), `--no-train` without a model,
//! `--threads` all the bots in one Python process, a thread each (the bots' own Python
//! work then shares one core, not both with memd), `--baseline` the same bots against a
//! server that answers at once what memd answered once (the bots' own cost: the floor).

use mem_e2e::measure::{median, percentile};
use mem_protocol::deploy::StopAllParams;
use mem_protocol::methods::method;
use mem_protocol::{Client, ClientOptions};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bots: the real mixin, driven as Freqtrade drives it at an entry. One process runs the
/// bots its spec file lists (`[[config, pair], ...]`), each bot on a thread of its own.
const BOT: &str = r#"
import json, logging, sys, threading, time, types
logging.basicConfig(level=logging.CRITICAL)
module_dir, spec_path, start, rounds, interval = sys.argv[1:6]
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
        self.answers = []

    def _memd_decided_answer(self, pair, decision_id, result, error):
        self.answers.append((time.perf_counter(), error))
        super()._memd_decided_answer(pair, decision_id, result, error)

def run(config_path, symbol, out):
    bot = Bot(json.load(open(config_path)))
    # A running bot's connection is open before the candle closes: warm it up.
    bot._memd()
    bot._memd_call(bot._memd_settings, "mem.enhance", bot._memd_signal(bot._memd_settings, symbol, "long", None))
    r = out.setdefault(symbol + config_path, {"stake": [], "confirm": [], "durable": [], "failures": 0, "refused": 0, "cpu_ms": 0.0})
    for k in range(int(rounds)):
        at = float(start) + k * float(interval)
        left = at - time.time()
        if left > 0:
            time.sleep(left)
        c0 = time.thread_time()
        t0 = time.perf_counter()
        bot.custom_stake_amount(symbol, None, 1.0, 100.0, 1.0, 1000.0, 1.0, None, "long")
        t1 = time.perf_counter()
        up = bot._memd_state == "up"
        entered = bot.confirm_trade_entry(symbol, "limit", 1.0, 0.05, "GTC", None, None, "long")
        t2 = time.perf_counter()
        r["cpu_ms"] += (time.thread_time() - c0) * 1000
        # The decision's answer (memd logged it and synced it): not waited for by the
        # callback; read here to time it.
        bot._memd_client.drain(wait_secs=2.0)
        if bot.answers and bot.answers[-1][1] is None:
            r["durable"].append((bot.answers[-1][0] - t1) * 1000)
        else:
            r["failures"] += 1
        bot.answers.clear()
        if not (up and bot._memd_state == "up"):
            r["failures"] += 1
        if not entered:
            r["refused"] += 1
        r["stake"].append((t1 - t0) * 1000)
        r["confirm"].append((t2 - t1) * 1000)

out = {}
threads = [threading.Thread(target=run, args=(c, p, out)) for c, p in json.load(open(spec_path))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(list(out.values())))
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

/// Registers and deploys `bots` bot strategies, bot i on `pairs[i % len]`; answers each
/// bot's rendered config and pair.
async fn deploy_bots(client: &Client, bots: usize, pairs: &[String]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for i in 0..bots {
        let pair = pairs[i % pairs.len()].clone();
        let mut doc = mem_e2e::measure::load_bot_strategy(&format!("mixin_bot_{i}"));
        doc["strategy"]["deployment"]["pairs"] = json!([pair]);
        let d = mem_e2e::deployments::register_and_deploy(client, doc).await;
        out.push((PathBuf::from(d.config_file.unwrap()), pair));
    }
    out
}

/// One run's figures: each callback's time (ms, sorted), the decisions' durable answers.
#[derive(Default)]
struct Run {
    stake: Vec<f64>,
    confirm: Vec<f64>,
    /// From `confirm_trade_entry`'s call to memd's answer that the decision is on disk.
    durable: Vec<f64>,
    failures: u64,
    refused: u64,
    bot_cpu_ms: f64,
}

/// One run: every bot enters `rounds` times at the same instants.
fn run_once(
    python: &str,
    script: &Path,
    module_dir: &Path,
    bots: &[(PathBuf, String)],
    rounds: usize,
    interval: f64,
    threads: bool,
) -> Run {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    // Time for every interpreter to start, import and connect.
    let start = now.as_secs_f64() + 3.0 + bots.len() as f64 * 0.05;
    // One process per bot, or one process with a thread per bot.
    let groups: Vec<Vec<&(PathBuf, String)>> = if threads {
        vec![bots.iter().collect()]
    } else {
        bots.iter().map(|b| vec![b]).collect()
    };
    let children: Vec<_> = groups
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let spec = script.with_extension(format!("{i}.json"));
            let list: Vec<(String, String)> = group
                .iter()
                .map(|(config, pair)| (config.display().to_string(), pair.clone()))
                .collect();
            std::fs::write(&spec, serde_json::to_vec(&list).unwrap()).unwrap();
            Command::new(python)
                .arg(script)
                .arg(module_dir)
                .arg(&spec)
                .arg(format!("{start:.6}"))
                .arg(rounds.to_string())
                .arg(format!("{interval}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {python}: {e}"))
        })
        .collect();
    let mut run = Run::default();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a bot failed: {}", out.status);
        let reports: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        for report in reports {
            let samples = |key: &str| -> Vec<f64> {
                report[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            };
            run.stake.extend(samples("stake"));
            run.confirm.extend(samples("confirm"));
            run.durable.extend(samples("durable"));
            run.failures += report["failures"].as_u64().unwrap();
            run.refused += report["refused"].as_u64().unwrap();
            run.bot_cpu_ms += report["cpu_ms"].as_f64().unwrap() / (bots.len() * rounds) as f64;
        }
    }
    for samples in [&mut run.stake, &mut run.confirm, &mut run.durable] {
        samples.sort_by(f64::total_cmp);
    }
    run
}

/// `--baseline`: a server that answers the bots at once with what memd answered them
/// once (hello, an enhancement, a decision), reading and computing nothing: what the same
/// bots measure when memd costs nothing. Answers the bots' configs pointed at it.
async fn baseline(
    root: &Path,
    bots: &[(PathBuf, String)],
    enhanced: Value,
) -> Vec<(PathBuf, String)> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let socket = root.join("baseline.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let enhanced = std::sync::Arc::new(enhanced);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let enhanced = enhanced.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let request: Value = serde_json::from_str(&line).unwrap();
                    let result = match request["method"].as_str() {
                        Some("hello") => json!({"protocolVersion": 1, "access": "bot"}),
                        Some("mem.enhance") => (*enhanced).clone(),
                        _ => json!({"id": request["params"]["id"]}),
                    };
                    let mut answer =
                        json!({"jsonrpc": "2.0", "id": request["id"], "result": result})
                            .to_string();
                    answer.push('\n');
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    bots.iter()
        .enumerate()
        .map(|(i, (config, pair))| {
            let mut c: Value = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
            c["memd"]["socket"] = json!(socket);
            let path = root.join(format!("baseline-{i}.json"));
            std::fs::write(&path, c.to_string()).unwrap();
            (path, pair.clone())
        })
        .collect()
}

/// What memd answers the first bot's `mem.enhance` (the baseline answers it to every bot).
async fn one_enhancement(socket: &Path, bot: &(PathBuf, String)) -> Value {
    let config: Value = serde_json::from_slice(&std::fs::read(&bot.0).unwrap()).unwrap();
    let client = Client::connect(
        socket,
        ClientOptions {
            credential: config["memd"]["credential"].as_str().map(str::to_string),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    client
        .call_value(
            "mem.enhance",
            json!({"signal": {"strategy": config["memd"]["strategy"], "symbol": bot.1, "action": "BUY", "confidence": 0.65}}),
        )
        .await
        .unwrap()
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
    let (mut daemon, socket) = mem_e2e::measure::spawn_memd_with_fake_bots(
        root.path(),
        json!({}),
        (21000, 21999),
        "\n[schedule.retrain]\nenabled = false\n",
    );
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
    let deployed = if flag("--baseline") {
        let enhanced = one_enhancement(&socket, &deployed[0]).await;
        println!("baseline: the bots talk to a server that answers at once, not to memd");
        baseline(root.path(), &deployed, enhanced).await
    } else {
        deployed
    };
    let script = root.path().join("bot.py");
    std::fs::write(&script, BOT).unwrap();
    let module_dir = data.join("freqtrade/strategies");
    let mut p99s = Vec::new();
    let mut all_ok = true;
    for run in 1..=runs {
        let cpu0 = mem_e2e::measure::cpu_seconds(&pid);
        let t0 = Instant::now();
        let r = run_once(
            &python,
            &script,
            &module_dir,
            &deployed,
            rounds,
            interval,
            flag("--threads"),
        );
        let cpu = mem_e2e::measure::cpu_seconds(&pid) - cpu0;
        let mut both: Vec<f64> = r.stake.iter().chain(&r.confirm).copied().collect();
        both.sort_by(f64::total_cmp);
        let p99 = percentile(&both, 99.0);
        p99s.push(p99);
        all_ok &= r.failures == 0;
        println!(
            "run {run}: {bots} bots x {rounds} entries: every callback {}\n  custom_stake_amount (mem.enhance, waited for) {}\n  confirm_trade_entry (mem.decide sent) {}\n  the decision's answer, on disk (not waited for by the callback) {}\n  {} without an answer, {} refused; the bots' CPU {:.3} ms per entry; memd CPU {cpu:.2} s over {:.1} s",
            figures(&both),
            figures(&r.stake),
            figures(&r.confirm),
            figures(&r.durable),
            r.failures,
            r.refused,
            r.bot_cpu_ms,
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
