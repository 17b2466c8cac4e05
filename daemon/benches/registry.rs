//! Benchmarks of the strategy registry against the issue's performance bars:
//!
//! 1. start-up load of 100,000 strategies (< 1 s) and the resident memory they take
//!    (< 300 MB);
//! 2. a filtered, sorted list over 100,000 strategies (< 5 ms) and a full-text search
//!    (< 20 ms);
//! 3. metrics over 1,000,000 trades of one strategy (< 100 ms), and the in-process cost of
//!    recording trades (the socket figure comes from `tests/src/bin/trade_load.rs`).
//!
//! Run with `cargo bench -p memd --bench registry` (a name filter after `--` selects
//! benches; fixtures are only built for the benches that run). Besides criterion's
//! timings, it prints lines starting with `[memd-bench]`: fixture sizes, hit counts,
//! resident memory (measured in a fresh child process), and the one-off cold loads.
//!
//! The 100k fixture is 100,000 metadata files made from the 11 seed documents of
//! `data/strategy_registry/metadata` with new ids, unique names and varied display names,
//! descriptions, tags, categories, asset classes, statuses, Sharpe ratios and win rates
//! (a deterministic generator), written the way the daemon writes them. It lives in a
//! temporary directory for the life of the process, or, with
//! `MEMD_BENCH_REGISTRY_DIR=/some/dir`, in that directory, kept (and reused by later runs)
//! so that a real memd can be started on it (`tests/src/bin/startup_load.rs`).

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use mem_e2e::random::Lcg;
use mem_e2e::trades::RandomTrades;
use mem_protocol::Request;
use mem_protocol::jsonrpc::{Id, RequestFrame};
use mem_protocol::methods::{ListStrategiesParams, SortKey};
use mem_protocol::registry::{PerformanceParams, RecordTradesParams, TradeRecord};
use mem_protocol::strategy::{StrategyDocument, StrategyId, StrategyStatus};
use memd::bus::EventBus;
use memd::registry::index::Record;
use memd::registry::{Caller, Registry, shapes, store, validate};
use rayon::prelude::*;
use std::borrow::Cow;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Strategies in the large registry.
const N_STRATEGIES: usize = 100_000;
/// Trades in the large trade log.
const N_TRADES: usize = 1_000_000;
/// Trades per `record_trades` call while building the large trade log.
const FIXTURE_BATCH: usize = 10_000;
/// The seed strategy whose trade logs the trade benches use (native_momentum).
const TRADE_STRATEGY: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d61";
/// Set in the child process that measures resident memory: the registry root to open.
const RSS_CHILD_ENV: &str = "MEMD_BENCH_RSS_CHILD";

macro_rules! note {
    ($($arg:tt)*) => { println!("[memd-bench] {}", format!($($arg)*)) };
}

fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Words no seed document contains; each generated strategy gets a few of them in its
/// description, tags and keywords, so a search has a realistic, known selectivity.
const FLAVOURS: &[&str] = &[
    "ichimoku",
    "donchian",
    "keltner",
    "supertrend",
    "kalman",
    "hurst",
    "fractal",
    "orderflow",
    "funding",
    "seasonal",
    "overnight",
    "renko",
    "fibonacci",
    "pivot",
    "stochastic",
    "williams",
    "heikin",
    "zscore",
    "ornstein",
    "garch",
];

const ADJECTIVES: &[&str] = &[
    "Adaptive", "Fast", "Slow", "Robust", "Lean", "Hedged", "Dynamic", "Smoothed", "Tactical",
    "Layered", "Classic", "Hybrid",
];

const EXTRA_CATEGORIES: &[&str] = &[
    "momentum",
    "mean_reversion",
    "trend_following",
    "arbitrage",
    "carry",
    "volatility",
    "market_making",
    "breakout",
];

const ASSET_CLASSES: &[&str] = &["crypto", "equities", "fx", "futures", "options"];
const RISK_LEVELS: &[&str] = &["low", "medium", "high"];
const REGIMES: &[&str] = &["trending", "ranging", "volatile", "quiet"];

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/strategy_registry/metadata")
}

/// The 11 seed documents, in file-name order.
fn seed_documents() -> Vec<StrategyDocument> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(seed_dir())
        .expect("data/strategy_registry/metadata")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            serde_json::from_slice(&std::fs::read(p).expect("seed file"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

/// A v4-shaped UUID, unique per `i`.
fn strategy_id(rng: &mut Lcg, i: usize) -> StrategyId {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:04x}{:08x}",
        (a >> 16) as u32,
        a & 0xffff,
        b & 0xfff,
        0x8000 | ((b >> 12) & 0x3fff),
        (b >> 26) & 0xffff,
        i as u32
    )
    .parse()
    .expect("a valid uuid")
}

/// The `i`-th generated document, from `seed`.
fn generate_document(seed: &StrategyDocument, i: usize) -> StrategyDocument {
    let mut rng = Lcg::new(i as u64);
    let mut doc = seed.clone();
    let s = &mut doc.strategy;
    s.id = strategy_id(&mut rng, i);
    s.name = format!("{}_{i}", seed.strategy.name);
    let base_display = if seed.strategy.display_name.is_empty() {
        seed.strategy.name.clone()
    } else {
        seed.strategy.display_name.clone()
    };
    s.display_name = format!("{} {base_display} {i}", rng.pick(ADJECTIVES));
    let f1 = *rng.pick(FLAVOURS);
    let mut f2 = *rng.pick(FLAVOURS);
    while f2 == f1 {
        f2 = *rng.pick(FLAVOURS);
    }
    let asset = *rng.pick(ASSET_CLASSES);
    s.description = format!(
        "{} This variant confirms entries with a {f1} filter and sizes positions by {f2} \
         signals; tuned on {asset} data in {} markets (generation {}).",
        seed.strategy.description,
        rng.pick(REGIMES),
        i % 97
    );
    let c = &mut s.classification;
    if rng.chance(0.4) {
        c.category = rng.pick(EXTRA_CATEGORIES).to_string();
    }
    if c.tags.len() > 2 && rng.chance(0.3) {
        let drop = rng.below(c.tags.len());
        c.tags.remove(drop);
    }
    c.tags.push(f1.to_string());
    if rng.chance(0.3) {
        c.tags.push(format!("cohort_{}", i % 50));
    }
    c.keywords = vec![f2.to_string(), asset.to_string()];
    c.asset_classes = vec![asset.to_string()];
    if rng.chance(0.3) {
        let second = *rng.pick(ASSET_CLASSES);
        if second != asset {
            c.asset_classes.push(second.to_string());
        }
    }
    s.status = match rng.below(20) {
        0..=9 => StrategyStatus::Active,
        10..=16 => StrategyStatus::Experimental,
        17..=18 => StrategyStatus::Archived,
        _ => StrategyStatus::Deprecated,
    };
    let b = &mut s.performance.backtest;
    b.sharpe_ratio = rng
        .chance(0.9)
        .then(|| round_to(-0.5 + 3.0 * rng.unit(), 3));
    b.win_rate = rng
        .chance(0.9)
        .then(|| round_to(0.30 + 0.45 * rng.unit(), 3));
    b.num_trades = Some(50 + rng.below(5_000) as u64);
    b.total_return = Some(round_to(-0.3 + 2.0 * rng.unit(), 4));
    b.max_drawdown = Some(round_to(-0.6 * rng.unit(), 4));
    s.mem_integration.enabled = rng.chance(0.5);
    s.risk_profile.risk_level = Some(rng.pick(RISK_LEVELS).to_string());
    let created = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
        + ChronoDuration::seconds(rng.below(3 * 365 * 86_400) as i64);
    let created = created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    s.metadata.created_at = Some(created.clone());
    s.metadata.last_updated = Some(created);
    doc
}

/// A registry root with `n` generated strategies; prints how long it took and the size.
fn generate_registry(root: &Path, n: usize) {
    let started = Instant::now();
    let seeds = seed_documents();
    assert_eq!(seeds.len(), 11, "the seed has 11 strategies");
    let metadata = root.join("metadata");
    std::fs::create_dir_all(&metadata).expect("metadata dir");
    let bytes: u64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let doc = generate_document(&seeds[i % seeds.len()], i);
            let bytes = store::document_bytes(&doc);
            std::fs::write(metadata.join(format!("{}.json", doc.strategy.id)), &bytes)
                .expect("write metadata file");
            bytes.len() as u64
        })
        .sum();
    note!(
        "generated {n} metadata files in {} ({:.1} s): {:.0} MB, {:.0} bytes each on average",
        root.display(),
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );
}

/// Drops the page cache of every file under `dir` (after flushing dirty pages), so the
/// next read comes from the disk. Only our own files are affected.
fn evict_from_page_cache(dir: &Path) {
    nix::unistd::sync();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(file) = std::fs::File::open(&path) {
                let _ = nix::fcntl::posix_fadvise(
                    &file,
                    0,
                    0,
                    nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
                );
            }
        }
    }
}

/// The directory every fixture of this process lives in; `main` removes it at the end.
static WORK_DIR: OnceLock<PathBuf> = OnceLock::new();

fn fixture_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(WORK_DIR.get().expect("work dir set in main"))
        .expect("temp dir")
}

fn bus() -> Arc<EventBus> {
    Arc::new(EventBus::new(1024))
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

fn fmt_runs(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------
// Fixtures (built on first use, kept for the life of the process)
// ---------------------------------------------------------------------------------------

struct Strategies100k {
    dir: PathBuf,
    registry: Registry,
}

/// Set to a directory to build the 100k registry there and keep it after the run (a later
/// run reuses it when it holds the 100k files), e.g. for starting a real memd on it.
const KEEP_REGISTRY_ENV: &str = "MEMD_BENCH_REGISTRY_DIR";

fn count_json_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .count()
    })
}

fn strategies_100k() -> &'static Strategies100k {
    static FIXTURE: OnceLock<Strategies100k> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = match std::env::var_os(KEEP_REGISTRY_ENV) {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                let existing = count_json_files(&dir.join("metadata"));
                if existing == N_STRATEGIES {
                    note!("reusing the {existing} metadata files in {}", dir.display());
                } else {
                    assert_eq!(
                        existing,
                        0,
                        "{} holds {existing} metadata files, not {N_STRATEGIES}: give an empty or new directory",
                        dir.display()
                    );
                    generate_registry(&dir, N_STRATEGIES);
                }
                dir
            }
            None => {
                let dir = fixture_dir("100k-").keep();
                generate_registry(&dir, N_STRATEGIES);
                dir
            }
        };
        let started = Instant::now();
        let registry = Registry::open(&dir, bus()).expect("open the 100k registry");
        note!(
            "opened the 100k registry for the list benches in {:.0} ms ({} strategies, {} issues)",
            started.elapsed().as_secs_f64() * 1e3,
            registry.len(),
            registry.issues().len()
        );
        assert_eq!(registry.len(), N_STRATEGIES, "{:?}", registry.issues().first());
        Strategies100k { dir, registry }
    })
}

/// `count` realistic closed trades from the `from`th on (mem_e2e's random trades, whose
/// exits are one every 90 s from 2023-01-01: a million span about 2.9 years).
fn trades(prefix: &str, from: u64, count: usize) -> Vec<TradeRecord> {
    let mut random = RandomTrades::new(from ^ 0x5eed);
    (from..from + count as u64)
        .map(|n| random.trade(format!("{prefix}-{n:09}"), n))
        .collect()
}

fn trade_strategy() -> StrategyId {
    TRADE_STRATEGY.parse().expect("uuid")
}

/// A seeded registry root (the 11 built-in strategies).
fn seeded_root(prefix: &str) -> tempfile::TempDir {
    let dir = fixture_dir(prefix);
    memd::datadir::seed_registry(dir.path()).expect("seed the registry");
    dir
}

struct Trades1m {
    dir: tempfile::TempDir,
    registry: Registry,
}

fn trades_1m() -> &'static Trades1m {
    static FIXTURE: OnceLock<Trades1m> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = seeded_root("1m-");
        let registry = Registry::open(dir.path(), bus()).expect("open");
        let id = trade_strategy();
        let caller = Caller::default();
        let started = Instant::now();
        let mut in_calls = Duration::ZERO;
        for batch in 0..N_TRADES / FIXTURE_BATCH {
            let params = RecordTradesParams {
                id,
                trades: trades("bt", (batch * FIXTURE_BATCH) as u64, FIXTURE_BATCH),
            };
            let call = Instant::now();
            let recorded = registry.record_trades(params, &caller).expect("record");
            in_calls += call.elapsed();
            assert_eq!(recorded.recorded, FIXTURE_BATCH);
        }
        let file = registry.files().unwrap().paths().trades_file(id);
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        note!(
            "recorded {N_TRADES} trades in-process in batches of {FIXTURE_BATCH}: {:.1} s total, \
             {:.1} s inside record_trades ({:.0} trades/s); log file {:.0} MB ({:.0} bytes/trade)",
            started.elapsed().as_secs_f64(),
            in_calls.as_secs_f64(),
            N_TRADES as f64 / in_calls.as_secs_f64(),
            size as f64 / 1e6,
            size as f64 / N_TRADES as f64
        );
        Trades1m { dir, registry }
    })
}

// ---------------------------------------------------------------------------------------
// Resident memory, in a fresh child process
// ---------------------------------------------------------------------------------------

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs in the child: opens the registry at `root` and prints resident memory before,
/// after, and the peak. The output is read by [`measure_rss`].
fn rss_child(root: &str) {
    rayon::ThreadPoolBuilder::new()
        .build_global()
        .expect("rayon pool");
    rayon::broadcast(|_| ()); // start the workers before the baseline
    let before = status_kb("VmRSS:");
    let started = Instant::now();
    let registry = Registry::open(Path::new(root), bus()).expect("open");
    let elapsed = started.elapsed();
    let after = status_kb("VmRSS:");
    let peak = status_kb("VmHWM:");
    black_box(registry.len());
    println!(
        "rss_kb_before={before} rss_kb_after={after} hwm_kb={peak} strategies={} open_ms={:.0}",
        registry.len(),
        elapsed.as_secs_f64() * 1e3
    );
}

fn measure_rss(root: &Path) {
    let out = std::process::Command::new(std::env::current_exe().expect("bench exe"))
        .env(RSS_CHILD_ENV, root)
        .output()
        .expect("run the rss child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("rss_kb_before="))
        .unwrap_or_else(|| panic!("rss child failed: {}", String::from_utf8_lossy(&out.stderr)));
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let (before, after, peak) = (
        field("rss_kb_before="),
        field("rss_kb_after="),
        field("hwm_kb="),
    );
    note!(
        "resident memory (fresh process, Registry::open of {} strategies): {:.1} MB before, \
         {:.1} MB after, +{:.1} MB for the registry; peak {:.1} MB; open took {} ms",
        field("strategies=") as u64,
        before / 1024.0,
        after / 1024.0,
        (after - before) / 1024.0,
        peak / 1024.0,
        field("open_ms=")
    );
}

// ---------------------------------------------------------------------------------------
// Benches
// ---------------------------------------------------------------------------------------

fn bench_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load_100k");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("open_page_cache_warm", |b| {
        let root = strategies_100k().dir.as_path();
        static RSS: std::sync::Once = std::sync::Once::new();
        RSS.call_once(|| measure_rss(root));
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let registry = Registry::open(root, bus()).expect("open");
                total += started.elapsed();
                assert_eq!(registry.len(), N_STRATEGIES);
                drop(registry); // not timed
            }
            total
        })
    });
    group.bench_function("open_page_cache_cold", |b| {
        let root = strategies_100k().dir.as_path();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                evict_from_page_cache(&root.join("metadata")); // not timed
                let started = Instant::now();
                let registry = Registry::open(root, bus()).expect("open");
                total += started.elapsed();
                assert_eq!(registry.len(), N_STRATEGIES);
                drop(registry);
            }
            total
        })
    });
    group.finish();
}

/// The index fields of a metadata document, borrowed where possible; every other member is
/// skipped without being built. Used only to show what a lean index parse would cost.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct IndexOnly<'a> {
    #[serde(borrow)]
    strategy: IndexOnlyStrategy<'a>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct IndexOnlyStrategy<'a> {
    id: StrategyId,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    display_name: Cow<'a, str>,
    #[serde(borrow, default)]
    description: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    status: StrategyStatus,
    #[serde(borrow)]
    classification: IndexOnlyClassification<'a>,
    #[serde(default)]
    performance: IndexOnlyPerformance,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct IndexOnlyClassification<'a> {
    #[serde(borrow)]
    category: Cow<'a, str>,
    #[serde(borrow, default)]
    sub_category: Cow<'a, str>,
    #[serde(borrow, default)]
    tags: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    asset_classes: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    keywords: Vec<Cow<'a, str>>,
}

#[derive(serde::Deserialize, Default)]
#[allow(dead_code)]
struct IndexOnlyPerformance {
    #[serde(default)]
    backtest: IndexOnlyBacktest,
}

#[derive(serde::Deserialize, Default)]
#[allow(dead_code)]
struct IndexOnlyBacktest {
    sharpe_ratio: Option<f64>,
    win_rate: Option<f64>,
}

/// Where the time of `Registry::open` goes: each step of loading one metadata file, on
/// 1,000 files (every 100th of the 100k fixture) held in memory, one thread. Criterion
/// reports the time per 1,000 files; multiply by 100 for the whole registry, single
/// threaded. The directory listing and the reads of all 100k files are timed once.
fn bench_load_phases(c: &mut Criterion) {
    struct Sample {
        paths: Vec<PathBuf>,
        bytes: Vec<Vec<u8>>,
        docs: Vec<StrategyDocument>,
    }
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    let sample = || {
        SAMPLE.get_or_init(|| {
            let metadata = strategies_100k().dir.as_path().join("metadata");
            let started = Instant::now();
            let mut all: Vec<PathBuf> = std::fs::read_dir(&metadata)
                .expect("list")
                .map(|e| e.expect("entry").path())
                .collect();
            let listed = started.elapsed();
            let started = Instant::now();
            let total: usize = all
                .iter()
                .map(|p| std::fs::read(p).expect("read").len())
                .sum();
            let read = started.elapsed();
            note!(
                "load phases, whole 100k directory, one thread, page cache warm: listing {:.0} ms, \
                 reading every file {:.0} ms ({:.0} MB)",
                listed.as_secs_f64() * 1e3,
                read.as_secs_f64() * 1e3,
                total as f64 / 1e6
            );
            all.sort();
            let paths: Vec<PathBuf> = all.into_iter().step_by(100).collect();
            let bytes: Vec<Vec<u8>> = paths
                .iter()
                .map(|p| std::fs::read(p).expect("read"))
                .collect();
            let docs = bytes
                .iter()
                .map(|b| shapes::parse_bytes(b).expect("parse"))
                .collect();
            Sample { paths, bytes, docs }
        })
    };
    let mut group = c.benchmark_group("load_phases_per_1000_files");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("read_file", |b| {
        let s = sample();
        b.iter(|| {
            for p in &s.paths {
                black_box(std::fs::read(p).expect("read"));
            }
        })
    });
    group.bench_function("parse_typed_with_path_to_error", |b| {
        let s = sample();
        b.iter(|| {
            for bytes in &s.bytes {
                black_box(shapes::parse_bytes(bytes).expect("parse"));
            }
        })
    });
    group.bench_function("parse_typed_plain_serde_json", |b| {
        let s = sample();
        b.iter(|| {
            for bytes in &s.bytes {
                black_box(serde_json::from_slice::<StrategyDocument>(bytes).expect("parse"));
            }
        })
    });
    group.bench_function("parse_index_fields_only", |b| {
        let s = sample();
        b.iter(|| {
            for bytes in &s.bytes {
                black_box(serde_json::from_slice::<IndexOnly>(bytes).expect("parse"));
            }
        })
    });
    group.bench_function("validate_document", |b| {
        let s = sample();
        b.iter(|| {
            for doc in &s.docs {
                black_box(validate::document(doc)).expect("valid");
            }
        })
    });
    group.bench_function("content_hash", |b| {
        let s = sample();
        b.iter(|| {
            for bytes in &s.bytes {
                black_box(store::content_hash(bytes));
            }
        })
    });
    group.bench_function("record_from_doc", |b| {
        let s = sample();
        b.iter(|| {
            for doc in &s.docs {
                black_box(Record::from_doc(doc, 0));
            }
        })
    });
    group.bench_function("drop_document", |b| {
        let s = sample();
        b.iter_batched(
            || s.docs.clone(),
            |docs| drop(black_box(docs)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_list(c: &mut Criterion) {
    let cases: Vec<(&str, ListStrategiesParams)> = vec![
        (
            "momentum_minsharpe1_by_sharpe_limit50",
            ListStrategiesParams {
                category: Some("momentum".into()),
                min_sharpe: Some(1.0),
                sort: Some(SortKey::Sharpe),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "all_by_win_rate_limit50",
            ListStrategiesParams {
                sort: Some(SortKey::WinRate),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "all_by_name_limit50",
            ListStrategiesParams {
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "active_crypto_tag_rsi_by_sharpe_limit50",
            ListStrategiesParams {
                status: Some(StrategyStatus::Active),
                asset_class: Some("crypto".into()),
                tag: Some("rsi".into()),
                sort: Some(SortKey::Sharpe),
                limit: Some(50),
                ..Default::default()
            },
        ),
        ("all_by_name_unpaged", ListStrategiesParams::default()),
    ];
    let searches: Vec<(&str, ListStrategiesParams)> = vec![
        (
            "two_words_limit50",
            ListStrategiesParams {
                query: Some("rsi kalman".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "two_words_unpaged",
            ListStrategiesParams {
                query: Some("rsi kalman".into()),
                ..Default::default()
            },
        ),
        (
            "one_word_limit50",
            ListStrategiesParams {
                query: Some("donchian".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "no_hit",
            ListStrategiesParams {
                query: Some("quaternion wavelet".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
    ];
    for (group_name, cases) in [("list_100k", cases), ("search_100k", searches)] {
        let mut group = c.benchmark_group(group_name);
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for (name, params) in cases {
            group.bench_with_input(BenchmarkId::from_parameter(name), &params, |b, params| {
                let registry = &strategies_100k().registry;
                static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
                let key = format!("{group_name}/{name}");
                let mut seen = SEEN.lock().unwrap();
                if !seen.contains(&key) {
                    let list = registry.list(params);
                    note!(
                        "{key}: {} of {} strategies match ({:.2}%), {} returned",
                        list.total,
                        registry.len(),
                        100.0 * list.total as f64 / registry.len() as f64,
                        list.strategies.len()
                    );
                    seen.push(key);
                }
                drop(seen);
                b.iter(|| black_box(registry.list(black_box(params))))
            });
        }
        group.finish();
    }
}

fn bench_metrics(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_1m_trades");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("performance_warm", |b| {
        let fixture = trades_1m();
        let id = trade_strategy();
        static COLD: std::sync::Once = std::sync::Once::new();
        COLD.call_once(|| cold_trade_loads(fixture.dir.path(), id));
        let params = PerformanceParams {
            id,
            from: None,
            to: None,
        };
        let report = fixture
            .registry
            .performance(params.clone())
            .expect("report");
        assert_eq!(report.all.total_trades, N_TRADES as u64);
        b.iter(|| black_box(fixture.registry.performance(black_box(params.clone()))))
    });
    group.bench_function("performance_warm_last_30_days", |b| {
        let fixture = trades_1m();
        let id = trade_strategy();
        let last = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap()
            + ChronoDuration::seconds(90 * N_TRADES as i64);
        let params = PerformanceParams {
            id,
            from: Some(last - ChronoDuration::days(30)),
            to: None,
        };
        b.iter(|| black_box(fixture.registry.performance(black_box(params.clone()))))
    });
    group.finish();
}

/// The first `strategies.performance` after a start: `Registry::open` plus the first
/// call, which loads the 1M-line log. Plain timings, three runs each, page cache warm and
/// evicted.
fn cold_trade_loads(root: &Path, id: StrategyId) {
    let params = PerformanceParams {
        id,
        from: None,
        to: None,
    };
    for (label, evict) in [("page cache warm", false), ("page cache evicted", true)] {
        let mut runs = Vec::new();
        let mut first_call = Vec::new();
        for _ in 0..3 {
            if evict {
                evict_from_page_cache(&root.join("performance"));
            }
            let started = Instant::now();
            let registry = Registry::open(root, bus()).expect("open");
            let opened = started.elapsed();
            let report = registry.performance(params.clone()).expect("report");
            let total = started.elapsed();
            assert_eq!(report.all.total_trades, N_TRADES as u64);
            runs.push(total.as_secs_f64() * 1e3);
            first_call.push((total - opened).as_secs_f64() * 1e3);
            drop(registry);
        }
        note!(
            "cold first performance over {N_TRADES} trades ({label}): open + first call median {:.0} ms \
             (runs {}), of which the first call (log load + metrics) median {:.0} ms",
            median(runs.clone()),
            fmt_runs(&runs),
            median(first_call.clone())
        );
    }
}

fn bench_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_trades_in_process");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    struct Fixture {
        _dir: tempfile::TempDir,
        registry: Registry,
        next: std::sync::atomic::AtomicU64,
    }
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    for batch in [1_000usize, 4_000] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("batch", batch), &batch, |b, &batch| {
            let fixture = FIXTURE.get_or_init(|| {
                let dir = seeded_root("record-");
                let registry = Registry::open(dir.path(), bus()).expect("open");
                Fixture {
                    _dir: dir,
                    registry,
                    next: 0.into(),
                }
            });
            let id = trade_strategy();
            let caller = Caller::default();
            b.iter_batched(
                || {
                    let from = fixture
                        .next
                        .fetch_add(batch as u64, std::sync::atomic::Ordering::Relaxed);
                    RecordTradesParams {
                        id,
                        trades: trades("rec", from, batch),
                    }
                },
                |params| {
                    let done = fixture
                        .registry
                        .record_trades(params, &caller)
                        .expect("record");
                    assert_eq!(done.recorded, batch);
                    done
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// The daemon's cost per `strategies.trades.record` request, step by step, for one
/// request of 2,000 trades (the request is built as a client sends it): parsing the frame
/// into a `Value` and then into the typed params (what the server does today), parsing the
/// same bytes straight into the typed params (with and without path tracking), and
/// validating the trades.
fn bench_trade_request(c: &mut Criterion) {
    const BATCH: usize = 2_000;
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct DirectFrame {
        jsonrpc: String,
        id: serde_json::Value,
        method: String,
        params: RecordTradesParams,
    }
    let params = RecordTradesParams {
        id: trade_strategy(),
        trades: trades("req", 0, BATCH),
    };
    let frame = RequestFrame {
        id: Some(Id::Number(7)),
        method: "strategies.trades.record".into(),
        params: Some(serde_json::to_value(&params).expect("params")),
    }
    .to_line();
    let mut group = c.benchmark_group("trade_request_2000");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("parse_frame_value_then_params_today", |b| {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| note!("trade request of {BATCH} trades: {} bytes", frame.len()));
        b.iter(|| {
            let f = RequestFrame::parse(black_box(&frame[..frame.len() - 1])).expect("frame");
            black_box(Request::parse(&f.method, f.params).expect("params"))
        })
    });
    group.bench_function("parse_frame_direct_typed_path_to_error", |b| {
        b.iter(|| {
            let mut de = serde_json::Deserializer::from_slice(black_box(&frame[..frame.len() - 1]));
            let f: DirectFrame = serde_path_to_error::deserialize(&mut de).expect("frame");
            black_box(f)
        })
    });
    group.bench_function("parse_frame_direct_typed_plain", |b| {
        b.iter(|| {
            let f: DirectFrame =
                serde_json::from_slice(black_box(&frame[..frame.len() - 1])).expect("frame");
            black_box(f)
        })
    });
    group.bench_function("validate_trades", |b| {
        b.iter(|| {
            for (i, t) in params.trades.iter().enumerate() {
                validate::trade(i, black_box(t)).expect("valid");
            }
        })
    });
    group.bench_function("drop_params", |b| {
        b.iter_batched(
            || params.clone(),
            |p| drop(black_box(p)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn main() {
    if let Ok(root) = std::env::var(RSS_CHILD_ENV) {
        rss_child(&root);
        return;
    }
    // Fixtures are kept in statics, which are never dropped: they all live under one
    // directory that is removed when `main` returns.
    let work = tempfile::Builder::new()
        .prefix("memd-bench-")
        .tempdir()
        .expect("temp dir");
    WORK_DIR.set(work.path().to_path_buf()).expect("set once");
    let mut c = Criterion::default().configure_from_args();
    bench_load(&mut c);
    bench_load_phases(&mut c);
    bench_list(&mut c);
    bench_metrics(&mut c);
    bench_record(&mut c);
    bench_trade_request(&mut c);
    c.final_summary();
    drop(work);
}
