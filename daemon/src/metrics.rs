//! MEM metrics (the seed's "Monitoring & Debugging"): what the daemon measures of itself
//! where the work happens, and reports through `mem.metrics`, `memctl metrics`, the TUI's
//! Dashboard and the Prometheus text at `/metrics` on the HTTP listener.
//!
//! - Latencies (model prediction, whole enhancement, memory load, each bot's poll) go to a
//!   [`LatencyRecorder`]: a bounded ring of the last [`LATENCY_SAMPLES`] samples with the
//!   (monotonic) time of each, plus a count and a sum since start. Average, p50, p99 and
//!   max are computed when read, exactly (nearest rank), over the samples of the window
//!   (the last hour). A ring rather than a histogram crate (hdrhistogram): it needs no
//!   dependency, gives exact quantiles, and a sliding window falls out of the timestamps;
//!   recording is a mutex-guarded push (tens of nanoseconds uncontended), reading sorts at
//!   most 10,000 numbers (well under a millisecond), which only a metrics request pays.
//! - Decisions and outcomes are counted in one-minute buckets ([`MinuteCounts`]) kept for
//!   the hour (decisions) and the day (outcomes, and how many won), so "per hour" and "over
//!   24 h" are sliding to the minute, whatever the rate.
//!
//! Time is memd's monotonic clock: a wall-clock jump neither empties nor stretches a window.
//! A replay's decisions count when memd logs them, not at their candles' (past) times.

use chrono::Utc;
use mem_protocol::deploy::DeploymentId;
use mem_protocol::mem::{BotPollMetrics, LatencyStats, LearnedCounts, MemMetrics};
use mem_protocol::strategy::StrategyId;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Samples kept per latency.
pub const LATENCY_SAMPLES: usize = 10_000;
/// The window of the latency figures and of "decisions per hour".
pub const WINDOW: Duration = Duration::from_secs(3600);
/// The window of the win rate.
pub const DAY: Duration = Duration::from_secs(24 * 3600);
/// Samples kept per bot (a poll every 5 s is 720 an hour).
const BOT_SAMPLES: usize = 1_000;
/// Memory loads kept (one at start, one per hand edit).
const LOAD_SAMPLES: usize = 1_000;

/// A latency's samples: the last `capacity` within `window` (all of them without one).
pub struct LatencyRecorder {
    window: Option<Duration>,
    capacity: usize,
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    /// (when, seconds), oldest first.
    samples: VecDeque<(Instant, f64)>,
    total_count: u64,
    total_sum: f64,
    last: Option<f64>,
}

/// A latency's figures, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub last: Option<f64>,
    pub total_count: u64,
    pub total_sum: f64,
}

impl Summary {
    /// In milliseconds, for `mem.metrics`.
    pub fn to_ms(&self) -> LatencyStats {
        let ms = |v: Option<f64>| v.map(|s| s * 1000.0);
        LatencyStats {
            count: self.count,
            avg: ms(self.avg),
            p50: ms(self.p50),
            p99: ms(self.p99),
            max: ms(self.max),
            last: ms(self.last),
            total_count: self.total_count,
            total_ms: self.total_sum * 1000.0,
        }
    }
}

/// The nearest-rank quantile `q` of `values` (reordered); `None` when empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    let (_, v, _) = values.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Some(*v)
}

impl LatencyRecorder {
    /// The ring is allocated at its full size here, once: grown by doubling as samples
    /// came, it reached its size only after hours (10,000 decisions), each step a larger
    /// buffer and a freed one, read in the soak as memd's memory rising.
    pub fn new(capacity: usize, window: Option<Duration>) -> LatencyRecorder {
        let capacity = capacity.max(1);
        LatencyRecorder {
            window,
            capacity,
            ring: Mutex::new(Ring {
                samples: VecDeque::with_capacity(capacity),
                ..Ring::default()
            }),
        }
    }

    /// Records one duration, now.
    pub fn record(&self, took: Duration) {
        let mut ring = self.ring.lock().expect("metrics lock");
        // The time is read under the lock, so the ring stays in time order.
        Self::push(&mut ring, self.capacity, Instant::now(), took.as_secs_f64());
    }

    /// Records `seconds` as taken at `at` (tests; `at` no earlier than the last sample's).
    pub fn record_at(&self, at: Instant, seconds: f64) {
        let mut ring = self.ring.lock().expect("metrics lock");
        Self::push(&mut ring, self.capacity, at, seconds);
    }

    fn push(ring: &mut Ring, capacity: usize, at: Instant, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        if ring.samples.len() >= capacity {
            ring.samples.pop_front();
        }
        ring.samples.push_back((at, seconds));
        ring.total_count += 1;
        ring.total_sum += seconds;
        ring.last = Some(seconds);
    }

    /// Times `f` and records how long it took.
    pub fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.record(started.elapsed());
        out
    }

    pub fn summary(&self) -> Summary {
        self.summary_at(Instant::now())
    }

    /// The figures as of `now`: samples older than the window are dropped first.
    pub fn summary_at(&self, now: Instant) -> Summary {
        // Copy under the lock; sort outside it.
        let (mut values, mut summary) = {
            let mut ring = self.ring.lock().expect("metrics lock");
            if let Some(window) = self.window {
                while ring
                    .samples
                    .front()
                    .is_some_and(|(at, _)| now.saturating_duration_since(*at) > window)
                {
                    ring.samples.pop_front();
                }
            }
            let values: Vec<f64> = ring.samples.iter().map(|(_, v)| *v).collect();
            let summary = Summary {
                count: values.len() as u64,
                last: ring.last,
                total_count: ring.total_count,
                total_sum: ring.total_sum,
                ..Summary::default()
            };
            (values, summary)
        };
        if !values.is_empty() {
            summary.avg = Some(values.iter().sum::<f64>() / values.len() as f64);
            summary.max = values.iter().copied().reduce(f64::max);
            summary.p50 = quantile(&mut values, 0.5);
            summary.p99 = quantile(&mut values, 0.99);
        }
        summary
    }
}

/// Counts in one-minute buckets over a sliding `span`: (minute, a, b), oldest first.
pub struct MinuteCounts {
    origin: Instant,
    span_minutes: u64,
    buckets: Mutex<VecDeque<(u64, u64, u64)>>,
    total_a: AtomicU64,
    total_b: AtomicU64,
}

impl MinuteCounts {
    pub fn new(origin: Instant, span: Duration) -> MinuteCounts {
        MinuteCounts {
            origin,
            span_minutes: (span.as_secs() / 60).max(1),
            buckets: Mutex::new(VecDeque::new()),
            total_a: AtomicU64::new(0),
            total_b: AtomicU64::new(0),
        }
    }

    fn minute(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_secs() / 60
    }

    /// Adds `a` and `b` to the bucket of `at`.
    pub fn add_at(&self, at: Instant, a: u64, b: u64) {
        let minute = self.minute(at);
        self.total_a.fetch_add(a, Ordering::Relaxed);
        self.total_b.fetch_add(b, Ordering::Relaxed);
        let mut buckets = self.buckets.lock().expect("metrics lock");
        match buckets.back_mut() {
            Some(last) if last.0 == minute => {
                last.1 += a;
                last.2 += b;
            }
            // A late writer (it read the clock before a newer one took the lock) counts in
            // the newest bucket: at most a minute off.
            Some(last) if last.0 > minute => {
                last.1 += a;
                last.2 += b;
            }
            _ => buckets.push_back((minute, a, b)),
        }
        while buckets.len() as u64 > self.span_minutes + 1 {
            buckets.pop_front();
        }
    }

    pub fn add(&self, a: u64, b: u64) {
        self.add_at(Instant::now(), a, b)
    }

    /// The sums over the span ending at `now` (its current minute and the whole minutes
    /// before it).
    pub fn sums_at(&self, now: Instant) -> (u64, u64) {
        let current = self.minute(now);
        let first = (current + 1).saturating_sub(self.span_minutes);
        let mut buckets = self.buckets.lock().expect("metrics lock");
        while buckets.front().is_some_and(|b| b.0 < first) {
            buckets.pop_front();
        }
        buckets
            .iter()
            .filter(|b| b.0 <= current)
            .fold((0, 0), |(a, b), x| (a + x.1, b + x.2))
    }

    /// Since creation.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.total_a.load(Ordering::Relaxed),
            self.total_b.load(Ordering::Relaxed),
        )
    }
}

/// One bot's polls.
struct BotPolls {
    strategy_id: StrategyId,
    strategy_name: String,
    latency: LatencyRecorder,
    failed: AtomicU64,
}

/// Every figure the daemon keeps; one per daemon, shared by the memory, the native engines,
/// the enhancement of `mem.enhance`/`mem.decide` and the supervisor.
pub struct Metrics {
    started: Instant,
    pub prediction: LatencyRecorder,
    pub enhancement: LatencyRecorder,
    pub memory_load: LatencyRecorder,
    /// a = decisions.
    decisions: MinuteCounts,
    /// a = closed, b = won.
    outcomes: MinuteCounts,
    bots: Mutex<BTreeMap<DeploymentId, Arc<BotPolls>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Self::new_at(Instant::now())
    }

    pub fn new_at(started: Instant) -> Metrics {
        Metrics {
            started,
            prediction: LatencyRecorder::new(LATENCY_SAMPLES, Some(WINDOW)),
            enhancement: LatencyRecorder::new(LATENCY_SAMPLES, Some(WINDOW)),
            memory_load: LatencyRecorder::new(LOAD_SAMPLES, None),
            decisions: MinuteCounts::new(started, WINDOW),
            outcomes: MinuteCounts::new(started, DAY),
            bots: Mutex::new(BTreeMap::new()),
        }
    }

    /// A decision was logged.
    pub fn decision(&self) {
        self.decisions.add(1, 0);
    }

    pub fn decision_at(&self, at: Instant) {
        self.decisions.add_at(at, 1, 0);
    }

    /// A decision's outcome was recorded.
    pub fn outcome(&self, win: bool) {
        self.outcomes.add(1, win as u64);
    }

    pub fn outcome_at(&self, at: Instant, win: bool) {
        self.outcomes.add_at(at, 1, win as u64);
    }

    fn bot(&self, deployment: DeploymentId, strategy: StrategyId, name: &str) -> Arc<BotPolls> {
        let mut bots = self.bots.lock().expect("metrics lock");
        let entry = bots.entry(deployment).or_insert_with(|| {
            Arc::new(BotPolls {
                strategy_id: strategy,
                strategy_name: name.to_string(),
                latency: LatencyRecorder::new(BOT_SAMPLES, Some(WINDOW)),
                failed: AtomicU64::new(0),
            })
        });
        entry.clone()
    }

    /// One poll of a bot's API took `took`.
    pub fn bot_poll(
        &self,
        deployment: DeploymentId,
        strategy: StrategyId,
        name: &str,
        took: Duration,
    ) {
        self.bot(deployment, strategy, name).latency.record(took);
    }

    /// A poll of a bot's API got no answer.
    pub fn bot_poll_failed(&self, deployment: DeploymentId, strategy: StrategyId, name: &str) {
        self.bot(deployment, strategy, name)
            .failed
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, as of now; bots not in `active` are forgotten (they stopped).
    pub fn snapshot(&self, learned: LearnedCounts, active: &[DeploymentId]) -> MemMetrics {
        self.snapshot_at(Instant::now(), learned, active)
    }

    pub fn snapshot_at(
        &self,
        now: Instant,
        learned: LearnedCounts,
        active: &[DeploymentId],
    ) -> MemMetrics {
        let (decisions_per_hour, _) = self.decisions.sums_at(now);
        let (closed_24h, wins_24h) = self.outcomes.sums_at(now);
        let bots: Vec<(DeploymentId, Arc<BotPolls>)> = {
            let mut bots = self.bots.lock().expect("metrics lock");
            bots.retain(|id, _| active.contains(id));
            bots.iter().map(|(id, b)| (*id, b.clone())).collect()
        };
        MemMetrics {
            at: Utc::now(),
            uptime_secs: now.saturating_duration_since(self.started).as_secs(),
            window_secs: WINDOW.as_secs(),
            decisions_per_hour,
            decisions_total: self.decisions.totals().0,
            closed_24h,
            wins_24h,
            win_rate_24h: (closed_24h > 0).then(|| wins_24h as f64 / closed_24h as f64),
            outcomes_total: self.outcomes.totals().0,
            prediction_latency_ms: self.prediction.summary_at(now).to_ms(),
            enhancement_time_ms: self.enhancement.summary_at(now).to_ms(),
            memory_load_ms: self.memory_load.summary_at(now).to_ms(),
            learned_strategies: learned,
            bot_polls: bots
                .into_iter()
                .map(|(id, b)| BotPollMetrics {
                    deployment_id: id,
                    strategy_id: b.strategy_id,
                    strategy_name: b.strategy_name.clone(),
                    poll_latency_ms: b.latency.summary_at(now).to_ms(),
                    failed_polls: b.failed.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }
}

/// What `/metrics` adds to [`MemMetrics`].
#[derive(Debug, Clone, Default)]
pub struct DaemonFigures {
    pub version: String,
    pub strategies: usize,
    pub deployments_active: usize,
}

/// The Prometheus content type of [`prometheus_text`] (text exposition format 0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and line feeds escaped, as the text format wants.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: Go's float syntax (`NaN`, `+Inf`), else Rust's shortest round-trip form.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", value(v));
    }

    /// A summary's samples in seconds from figures in milliseconds: quantiles of the window
    /// (NaN without a sample, as Prometheus' own clients do), sum and count since start.
    fn summary(&mut self, name: &str, labels: &[(&str, &str)], l: &LatencyStats) {
        for (q, v) in [("0.5", l.p50), ("0.99", l.p99)] {
            let mut with_q = labels.to_vec();
            with_q.push(("quantile", q));
            self.sample(name, &with_q, v.map_or(f64::NAN, |ms| ms / 1000.0));
        }
        self.sample(&format!("{name}_sum"), labels, l.total_ms / 1000.0);
        self.sample(&format!("{name}_count"), labels, l.total_count as f64);
    }
}

/// `/metrics`: the figures of `mem.metrics` in Prometheus' text exposition format 0.0.4,
/// seconds as the base unit.
pub fn prometheus_text(m: &MemMetrics, d: &DaemonFigures) -> String {
    let mut e = Exposition(String::with_capacity(4096));
    e.single("memd_up", "gauge", "1 while memd answers.", 1.0);
    e.family(
        "memd_info",
        "gauge",
        "memd's version, as a label; always 1.",
    );
    e.sample("memd_info", &[("version", &d.version)], 1.0);
    e.single(
        "memd_uptime_seconds",
        "gauge",
        "Seconds since memd started.",
        m.uptime_secs as f64,
    );
    e.single(
        "memd_strategies",
        "gauge",
        "Strategies in the registry.",
        d.strategies as f64,
    );
    e.single(
        "memd_deployments_active",
        "gauge",
        "Deployments running or on their way (Freqtrade bots and native strategies).",
        d.deployments_active as f64,
    );

    e.single(
        "memd_decisions_last_hour",
        "gauge",
        "MEM decisions logged in the last hour.",
        m.decisions_per_hour as f64,
    );
    e.single(
        "memd_decisions_total",
        "counter",
        "MEM decisions logged since memd started.",
        m.decisions_total as f64,
    );
    e.single(
        "memd_outcomes_total",
        "counter",
        "Decision outcomes recorded since memd started.",
        m.outcomes_total as f64,
    );
    e.single(
        "memd_closed_decisions_24h",
        "gauge",
        "Decision outcomes recorded in the last 24 hours.",
        m.closed_24h as f64,
    );
    e.single(
        "memd_won_decisions_24h",
        "gauge",
        "Decision outcomes recorded in the last 24 hours that were wins.",
        m.wins_24h as f64,
    );
    e.family(
        "memd_win_rate_24h",
        "gauge",
        "Wins over closed decisions in the last 24 hours (absent without one).",
    );
    if let Some(rate) = m.win_rate_24h {
        e.sample("memd_win_rate_24h", &[], rate);
    }

    for (name, help, l) in [
        (
            "memd_prediction_seconds",
            "The trend-reversal model's prediction for an enhancement; quantiles over the last hour.",
            &m.prediction_latency_ms,
        ),
        (
            "memd_enhancement_seconds",
            "A whole MEM enhancement (prediction, market state, memory, enhanced signal); quantiles over the last hour.",
            &m.enhancement_time_ms,
        ),
        (
            "memd_memory_load_seconds",
            "Loading the memory at start and reloading a memory file; quantiles over every load.",
            &m.memory_load_ms,
        ),
    ] {
        e.family(name, "summary", help);
        e.summary(name, &[], l);
    }
    e.family(
        "memd_memory_load_last_seconds",
        "gauge",
        "The latest memory load (at start, or a reload of a hand-edited file).",
    );
    if let Some(last) = m.memory_load_ms.last {
        e.sample("memd_memory_load_last_seconds", &[], last / 1000.0);
    }

    e.family(
        "memd_learned_strategies",
        "gauge",
        "Learned strategies (patterns promoted by the learning loop), by status.",
    );
    e.sample(
        "memd_learned_strategies",
        &[("status", "active")],
        m.learned_strategies.active as f64,
    );
    e.sample(
        "memd_learned_strategies",
        &[("status", "deprecated")],
        m.learned_strategies.deprecated as f64,
    );

    e.family(
        "memd_bot_poll_seconds",
        "summary",
        "One poll of a Freqtrade bot's REST API by the supervisor; quantiles over the last hour.",
    );
    for b in &m.bot_polls {
        let id = b.deployment_id.to_string();
        let labels = [
            ("deployment", id.as_str()),
            ("strategy", b.strategy_name.as_str()),
        ];
        e.summary("memd_bot_poll_seconds", &labels, &b.poll_latency_ms);
    }
    e.family(
        "memd_bot_poll_failures_total",
        "counter",
        "Polls of a Freqtrade bot's REST API that got no answer.",
    );
    for b in &m.bot_polls {
        let id = b.deployment_id.to_string();
        let labels = [
            ("deployment", id.as_str()),
            ("strategy", b.strategy_name.as_str()),
        ];
        e.sample(
            "memd_bot_poll_failures_total",
            &labels,
            b.failed_polls as f64,
        );
    }
    e.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.99), Some(99.0));
        assert_eq!(quantile(&mut v, 0.5), Some(50.0));
        let mut v: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.99), Some(990.0));
        assert_eq!(quantile(&mut [7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&mut [], 0.99), None);
    }

    #[test]
    fn a_recorder_reports_avg_p99_max_and_totals() {
        let t0 = Instant::now();
        let r = LatencyRecorder::new(10_000, Some(WINDOW));
        assert_eq!(r.summary_at(t0), Summary::default());
        // 990 fast samples and 10 slow ones: p99 is a fast one's, max a slow one's.
        for i in 0..1000 {
            r.record_at(t0, if i % 100 == 99 { 0.5 } else { 0.001 });
        }
        let s = r.summary_at(t0);
        assert_eq!(s.count, 1000);
        assert_eq!(s.p99, Some(0.001));
        assert_eq!(s.max, Some(0.5));
        assert!((s.avg.unwrap() - (990.0 * 0.001 + 10.0 * 0.5) / 1000.0).abs() < 1e-12);
        assert_eq!((s.total_count, s.last), (1000, Some(0.5)));
        // One more slow sample in each hundred tips the p99.
        for _ in 0..20 {
            r.record_at(t0, 0.5);
        }
        assert_eq!(r.summary_at(t0).p99, Some(0.5));
        let ms = r.summary_at(t0).to_ms();
        assert_eq!(ms.p99, Some(500.0));
        assert_eq!(ms.total_count, 1020);
    }

    #[test]
    fn the_window_forgets_old_samples_but_not_the_totals() {
        let t0 = Instant::now();
        let r = LatencyRecorder::new(10_000, Some(WINDOW));
        r.record_at(t0, 2.0);
        r.record_at(t0 + secs(1800), 0.010);
        let s = r.summary_at(t0 + secs(3000));
        assert_eq!((s.count, s.max), (2, Some(2.0)));
        let s = r.summary_at(t0 + secs(3601));
        assert_eq!((s.count, s.p99, s.max), (1, Some(0.010), Some(0.010)));
        assert_eq!(s.total_count, 2);
        assert!((s.total_sum - 2.010).abs() < 1e-12);
        let s = r.summary_at(t0 + secs(1800 + 3601));
        assert_eq!((s.count, s.avg, s.p99), (0, None, None));
        assert_eq!(s.last, Some(0.010), "the latest sample is kept");
        assert_eq!(s.total_count, 2);
    }

    #[test]
    fn the_ring_keeps_the_last_samples_only() {
        let t0 = Instant::now();
        let r = LatencyRecorder::new(100, None);
        for i in 0..250 {
            r.record_at(t0, i as f64);
        }
        let s = r.summary_at(t0 + secs(100_000));
        assert_eq!((s.count, s.total_count), (100, 250));
        assert_eq!(s.max, Some(249.0));
        assert_eq!(s.p99, Some(248.0));
        // No window: nothing expires.
        assert_eq!(r.summary_at(t0 + secs(10_000_000)).count, 100);
    }

    #[test]
    fn the_ring_is_allocated_once() {
        let t0 = Instant::now();
        let r = LatencyRecorder::new(LATENCY_SAMPLES, Some(WINDOW));
        let allocated = r.ring.lock().unwrap().samples.capacity();
        assert!(allocated >= LATENCY_SAMPLES);
        for i in 0..3 * LATENCY_SAMPLES {
            r.record_at(t0 + secs(i as u64), 0.001);
            assert_eq!(r.ring.lock().unwrap().samples.capacity(), allocated);
        }
        assert_eq!(
            r.summary_at(t0 + secs(3 * LATENCY_SAMPLES as u64)).count,
            3600
        );
    }

    #[test]
    fn bad_samples_are_ignored() {
        let r = LatencyRecorder::new(10, None);
        r.record_at(Instant::now(), f64::NAN);
        r.record_at(Instant::now(), -1.0);
        assert_eq!(r.summary().total_count, 0);
    }

    #[test]
    fn decisions_per_hour_and_win_rate_slide_by_the_minute() {
        let t0 = Instant::now();
        let m = Metrics::new_at(t0);
        for _ in 0..5 {
            m.decision_at(t0);
        }
        m.decision_at(t0 + secs(1800));
        m.outcome_at(t0, true);
        m.outcome_at(t0 + secs(3600 * 12), false);
        m.outcome_at(t0 + secs(3600 * 12), true);
        m.outcome_at(t0 + secs(3600 * 12), true);
        let none = LearnedCounts::default();
        let at = |s: u64| m.snapshot_at(t0 + secs(s), none.clone(), &[]);
        let s = at(1800);
        assert_eq!((s.decisions_per_hour, s.decisions_total), (6, 6));
        assert_eq!((s.closed_24h, s.wins_24h), (1, 1));
        // The first five fall out when their minute leaves the hour.
        assert_eq!(at(3599).decisions_per_hour, 6);
        assert_eq!(at(3600).decisions_per_hour, 1);
        assert_eq!(at(1800 + 3600).decisions_per_hour, 0);
        assert_eq!(at(1800 + 3600).decisions_total, 6);
        let s = at(3600 * 12);
        assert_eq!((s.closed_24h, s.wins_24h), (4, 3));
        assert_eq!(s.win_rate_24h, Some(0.75));
        let s = at(3600 * 24 + 60);
        assert_eq!((s.closed_24h, s.wins_24h), (3, 2));
        let s = at(3600 * 37);
        assert_eq!((s.closed_24h, s.win_rate_24h), (0, None));
        assert_eq!(s.outcomes_total, 4);
    }

    #[test]
    fn a_late_writer_counts_in_the_newest_minute() {
        let t0 = Instant::now();
        let c = MinuteCounts::new(t0, WINDOW);
        c.add_at(t0 + secs(120), 1, 0);
        c.add_at(t0 + secs(59), 1, 0);
        assert_eq!(c.sums_at(t0 + secs(120)), (2, 0));
    }

    #[test]
    fn bots_that_stopped_are_forgotten() {
        let m = Metrics::new();
        let (a, b) = (DeploymentId::new_random(), DeploymentId::new_random());
        let s = StrategyId::new_random();
        m.bot_poll(a, s, "A", Duration::from_millis(4));
        m.bot_poll(b, s, "B", Duration::from_millis(6));
        m.bot_poll_failed(b, s, "B");
        let snap = m.snapshot(LearnedCounts::default(), &[a, b]);
        assert_eq!(snap.bot_polls.len(), 2);
        let bb = snap
            .bot_polls
            .iter()
            .find(|p| p.deployment_id == b)
            .unwrap();
        assert_eq!((bb.poll_latency_ms.count, bb.failed_polls), (1, 1));
        assert!((bb.poll_latency_ms.p99.unwrap() - 6.0).abs() < 1e-9);
        let snap = m.snapshot(LearnedCounts::default(), &[b]);
        assert_eq!(snap.bot_polls.len(), 1);
        assert_eq!(snap.bot_polls[0].strategy_name, "B");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("two\nlines"), "two\\nlines");
    }

    /// Every line of the text is a HELP, a TYPE or a sample `name{labels} value`, each
    /// family's TYPE before its samples.
    #[test]
    fn the_text_is_valid_exposition_format() {
        let m = Metrics::new();
        m.decision();
        m.outcome(true);
        m.enhancement.record(Duration::from_micros(250));
        m.prediction.record(Duration::from_micros(40));
        m.memory_load.record(Duration::from_millis(3));
        let d = DeploymentId::new_random();
        m.bot_poll(
            d,
            StrategyId::new_random(),
            "Quote\"and\\slash",
            Duration::from_millis(5),
        );
        let snap = m.snapshot(
            LearnedCounts {
                active: 2,
                deprecated: 1,
            },
            &[d],
        );
        let text = prometheus_text(
            &snap,
            &DaemonFigures {
                version: "0.1.0".into(),
                strategies: 11,
                deployments_active: 1,
            },
        );
        let mut typed = std::collections::BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["gauge", "counter", "summary"].contains(&kind), "{line}");
                typed.insert(name.to_string());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, v) = line.rsplit_once(' ').unwrap();
            assert!(v == "NaN" || v.parse::<f64>().is_ok(), "{line}");
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{line}"
            );
            let family = ["_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                .unwrap_or(name);
            assert!(typed.contains(family), "no TYPE before {line}");
        }
        assert!(text.contains("memd_up 1\n"), "{text}");
        assert!(text.contains("memd_decisions_last_hour 1\n"), "{text}");
        assert!(text.contains("memd_win_rate_24h 1\n"), "{text}");
        assert!(
            text.contains("memd_learned_strategies{status=\"active\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("memd_enhancement_seconds{quantile=\"0.99\"} 0.00025\n"));
        assert!(text.contains("memd_enhancement_seconds_count 1\n"));
        assert!(text.contains(&format!(
            "memd_bot_poll_seconds{{deployment=\"{d}\",strategy=\"Quote\\\"and\\\\slash\",quantile=\"0.99\"}} 0.005\n"
        )), "{text}");
    }
}
