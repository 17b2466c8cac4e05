//! A queue job that measures a strategy: the plan (which engine, which candles), the run
//! (the real Freqtrade in the job's directory, or the native engine on a blocking
//! thread), the validation rule, and the result recorded on the strategy's registry
//! version (`Registry::record_backtest`).

use super::freqtrade::{self as ft, FreqtradeSetup, HyperoptOptions, StrategyPlan};
use super::native::{self, BacktestError, NativeSetup, PairCandles, Search};
use crate::market::candles::{self, Candle, Timeframe};
use crate::native::engine::time;
use crate::queue::{CANCELLED, JobContext, Runner};
use crate::registry::Registry;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use mem_protocol::backtest::{
    BacktestEngine, BacktestFigures, BacktestResult, Fold, QueueJob, Validation, ValidationStatus,
    WalkForward,
};
use mem_protocol::deploy_spec::{self, RunPlan};
use mem_protocol::strategy::StrategyDetail;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// `[backtest]` as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestConfig {
    /// Days of candles measured when a request names none (default 30).
    pub days: Option<u32>,
    /// A walk-forward's folds when a request says 0 (default 4).
    pub folds: Option<u32>,
    /// Optimisation trials per fold (default 30).
    pub epochs: Option<u32>,
    /// A result passes with at least this many trades (default 10) ...
    pub min_trades: Option<u64>,
    /// ... and a profit above this fraction of the balance (default 0: any profit); a
    /// walk-forward is judged on its out-of-sample folds.
    pub min_profit_pct: Option<f64>,
}

/// `[backtest]`, with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestSettings {
    pub days: u32,
    pub folds: u32,
    pub epochs: u32,
    pub min_trades: u64,
    pub min_profit_pct: f64,
}

impl BacktestConfig {
    pub fn settings(&self) -> anyhow::Result<BacktestSettings> {
        let s = BacktestSettings {
            days: self.days.unwrap_or(30),
            folds: self.folds.unwrap_or(4),
            epochs: self.epochs.unwrap_or(30),
            min_trades: self.min_trades.unwrap_or(10),
            min_profit_pct: self.min_profit_pct.unwrap_or(0.0),
        };
        anyhow::ensure!(s.days >= 1, "[backtest] days: at least 1");
        anyhow::ensure!((2..=20).contains(&s.folds), "[backtest] folds: 2 to 20");
        anyhow::ensure!(
            (1..=10_000).contains(&s.epochs),
            "[backtest] epochs: 1 to 10,000"
        );
        anyhow::ensure!(
            s.min_profit_pct.is_finite(),
            "[backtest] min_profit_pct: a number"
        );
        Ok(s)
    }
}

/// What a job reads: the registry, the market data, Freqtrade's settings, MEM's sizing.
pub struct JobDeps {
    pub registry: Arc<Registry>,
    pub ml: Arc<crate::ml::service::MlService>,
    pub data_dir: PathBuf,
    pub freqtrade: crate::config::FreqtradeConfig,
    pub enhance: crate::mem::enhance::EnhanceSettings,
    pub settings: BacktestSettings,
}

/// The queue's runner for backtests and walk-forwards.
pub fn runner(deps: Arc<JobDeps>) -> Runner {
    Arc::new(move |job, ctx| run(&deps, job, ctx))
}

/// Which engine measures a strategy: how it is deployed (`deploy_spec::deployable`).
pub fn plan_of(detail: &StrategyDetail) -> Result<RunPlan, String> {
    deploy_spec::deployable(&detail.metadata.strategy).map_err(|e| e.to_string())
}

/// A range's start and end, either open.
pub type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Freqtrade's `--timerange` form: `20261101-20261201`, either side may be empty.
pub fn parse_timerange(text: &str) -> Result<Range, String> {
    let Some((from, to)) = text.split_once('-') else {
        return Err(format!(
            "{text:?} is not FROM-TO (20261101-20261201; a side may be empty)"
        ));
    };
    let day = |s: &str| -> Result<Option<DateTime<Utc>>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(s, "%Y%m%d")
            .map(|d| Some(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()))
            .map_err(|_| format!("{s:?} is not a day as YYYYMMDD"))
    };
    let (from, to) = (day(from)?, day(to)?);
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(format!("{text:?} ends before it starts"));
        }
    }
    if from.is_none() && to.is_none() {
        return Err("an empty timerange: give a start, an end or both".into());
    }
    Ok((from, to))
}

/// The measured range: the request's timerange, else the last `days` before the newest
/// candle (not before now: stale data are measured where they end).
fn range_of(
    job: &QueueJob,
    settings: &BacktestSettings,
    newest_close: DateTime<Utc>,
) -> Result<(Option<DateTime<Utc>>, DateTime<Utc>), String> {
    match &job.params.timerange {
        Some(text) => {
            let (from, to) = parse_timerange(text)?;
            Ok((from, to.unwrap_or(newest_close).min(newest_close)))
        }
        None => {
            let days = job.params.days.unwrap_or(settings.days);
            Ok((
                Some(newest_close - Duration::days(i64::from(days))),
                newest_close,
            ))
        }
    }
}

fn run(deps: &JobDeps, job: &QueueJob, ctx: &JobContext) -> Result<BacktestResult, String> {
    let started = Instant::now();
    let detail = deps
        .registry
        .get(job.strategy_id)
        .map_err(|e| format!("strategy {}: {e}", job.strategy_id))?;
    let plan =
        plan_of(&detail).map_err(|why| format!("strategy {}: {why}", detail.summary.name))?;
    let parameters = detail.metadata.strategy.parameters.clone();
    let mut result = match plan {
        RunPlan::Native { kind, spec } => {
            native_run(deps, job, ctx, &detail, kind, &spec, &parameters)?
        }
        RunPlan::Freqtrade {
            class,
            config_file,
            spec,
        } => {
            let plan = StrategyPlan {
                class: &class,
                config_file: &config_file,
                spec: &spec,
                parameters: &parameters,
            };
            freqtrade_run(deps, job, ctx, &detail, plan)?
        }
    };
    result.validation = validate(&deps.settings, &result);
    result.seconds = started.elapsed().as_secs_f64();
    result.finished_at = Utc::now();
    ctx.log(&format!(
        "{} trades, profit {:+.2}%, validation {:?}: {}",
        result.figures.trades,
        result.figures.profit_pct * 100.0,
        result.validation.status,
        result.validation.reasons.join("; ")
    ));
    deps.registry
        .record_backtest(&result)
        .map_err(|e| format!("cannot record the result on the registry: {e}"))?;
    Ok(result)
}

/// The rule a result must meet to stand for the strategy (`[backtest]`): enough trades
/// and a profit, out-of-sample for a walk-forward.
fn validate(settings: &BacktestSettings, result: &BacktestResult) -> Validation {
    let f = &result.figures;
    let side = if result.walk_forward.is_some() {
        " out-of-sample"
    } else {
        ""
    };
    let trades_ok = f.trades >= settings.min_trades;
    let profit_ok = f.profit_pct > settings.min_profit_pct;
    Validation {
        status: if trades_ok && profit_ok {
            ValidationStatus::Passed
        } else {
            ValidationStatus::Failed
        },
        reasons: vec![
            format!(
                "{} trades{side}, at least {} needed: {}",
                f.trades,
                settings.min_trades,
                if trades_ok { "met" } else { "not met" }
            ),
            format!(
                "profit{side} {:+.2}%, above {:+.2}% needed: {}",
                f.profit_pct * 100.0,
                settings.min_profit_pct * 100.0,
                if profit_ok { "met" } else { "not met" }
            ),
        ],
    }
}

fn base_result(job: &QueueJob, detail: &StrategyDetail, engine: BacktestEngine) -> BacktestResult {
    BacktestResult {
        measured: true,
        job_id: job.id.clone(),
        strategy_id: job.strategy_id,
        version: detail.summary.version.clone(),
        engine,
        engine_version: env!("CARGO_PKG_VERSION").into(),
        pairs: Vec::new(),
        timeframe: String::new(),
        data_from: DateTime::UNIX_EPOCH,
        data_to: DateTime::UNIX_EPOCH,
        parameters: detail.metadata.strategy.parameters.clone(),
        config_hash: String::new(),
        strategy_hash: String::new(),
        figures: BacktestFigures::default(),
        equity: Vec::new(),
        validation: Validation {
            status: ValidationStatus::Failed,
            reasons: Vec::new(),
        },
        walk_forward: None,
        result_file: None,
        finished_at: Utc::now(),
        seconds: 0.0,
    }
}

fn native_error(e: BacktestError) -> String {
    match e {
        BacktestError::Cancelled => CANCELLED.into(),
        BacktestError::Invalid(why) => why,
    }
}

/// A native strategy over the market data's candles of its pairs, on this thread.
fn native_run(
    deps: &JobDeps,
    job: &QueueJob,
    ctx: &JobContext,
    detail: &StrategyDetail,
    kind: &str,
    spec: &mem_protocol::deploy_spec::NativeSpec,
    parameters: &Map<String, Value>,
) -> Result<BacktestResult, String> {
    let market = deps.ml.market_dir().to_path_buf();
    let timeframe = match &spec.timeframe {
        Some(t) => t
            .parse::<Timeframe>()
            .map_err(|e| format!("the deployment's timeframe: {e}"))?,
        None => deps.ml.timeframe(),
    };
    let pairs: Vec<String> = match (&job.params.pairs, &spec.pair, deps.ml.reference_pair()) {
        (Some(p), _, _) if !p.is_empty() => p.clone(),
        (_, Some(p), _) => vec![p.clone()],
        (_, None, Some(p)) => vec![p],
        _ => return Err("no pair to backtest: name one (--pair)".into()),
    };
    ctx.progress(0, 1, format!("reading the candles of {}", pairs.join(", ")));
    let mut loaded: Vec<(String, Vec<Candle>)> = Vec::new();
    for pair in &pairs {
        let file = candles::find_pair_file(&market, pair, timeframe).map_err(|e| e.to_string())?;
        let read = candles::read_file(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let (clean, _) = candles::clean(read);
        if clean.is_empty() {
            return Err(format!("{}: no candles", file.display()));
        }
        loaded.push((pair.clone(), clean));
    }
    let tf_ms = timeframe.millis();
    let newest = loaded
        .iter()
        .map(|(_, c)| c[c.len() - 1].ts_ms + tf_ms)
        .min()
        .expect("pairs");
    let (from, to) = range_of(job, &deps.settings, time(newest))?;
    let from_ms = from.map_or(i64::MIN, |f| f.timestamp_millis());
    let windows: Vec<PairCandles<'_>> = loaded
        .iter()
        .map(|(pair, all)| PairCandles::window(pair, all, from_ms, to.timestamp_millis()))
        .collect();
    if let Some(empty) = windows.iter().find(|w| w.candles.is_empty()) {
        return Err(format!(
            "no {} candle of {} in the range measured ({} to {})",
            timeframe.as_str(),
            empty.pair,
            from.map_or("the start".into(), |f| f.to_rfc3339()),
            to.to_rfc3339()
        ));
    }
    let mut paper = crate::native::engine::paper_settings(None);
    paper.fee_rate = spec.fee_rate.unwrap_or(paper.fee_rate);
    let setup = NativeSetup {
        kind: kind.to_string(),
        strategy_key: detail.summary.name.clone(),
        timeframe_ms: tf_ms,
        paper,
        enhance: deps.enhance.clone(),
        through_mem: job.params.through_mem,
        model: job.params.through_mem.then(|| deps.ml.serving_handle()),
    };
    let mut progress = |done: u64, total: u64, message: &str| ctx.progress(done, total, message);
    let mut result = base_result(job, detail, BacktestEngine::Native);
    result.pairs = pairs;
    result.timeframe = timeframe.as_str().to_string();
    result.config_hash = ft::sha256_hex(
        &serde_json::to_vec(&(&setup.paper.fee_rate, &job.params.through_mem)).unwrap_or_default(),
    );
    result.strategy_hash =
        ft::sha256_hex(format!("{kind} {}", Value::Object(parameters.clone())).as_bytes());
    match job.params.walk_forward {
        None => {
            let measured = native::backtest_pairs(
                &setup,
                parameters,
                &windows,
                ctx.cancel_flag(),
                &mut progress,
            )
            .map_err(native_error)?;
            result.data_from = measured.data_from;
            result.data_to = measured.data_to;
            result.figures = measured.figures;
            result.equity = measured.equity;
        }
        Some(n) => {
            let n = if n == 0 { deps.settings.folds } else { n };
            let search = Search {
                epochs: job.params.epochs.unwrap_or(deps.settings.epochs),
                seed: 1,
            };
            let wf = native::walk_forward(
                &setup,
                parameters,
                &windows,
                n,
                search,
                ctx.cancel_flag(),
                &mut progress,
            )
            .map_err(native_error)?;
            result.data_from = wf
                .folds
                .first()
                .map_or(time(from_ms.max(0)), |f| f.in_sample_from);
            result.data_to = wf.folds.last().map_or(to, |f| f.out_of_sample_to);
            result.figures = wf.out_of_sample.clone();
            result.walk_forward = Some(wf);
        }
    }
    Ok(result)
}

/// A Freqtrade strategy measured by the real `freqtrade backtesting` (and `hyperopt` for
/// a walk-forward's in-sample parts) in the job's directory.
fn freqtrade_run(
    deps: &JobDeps,
    job: &QueueJob,
    ctx: &JobContext,
    detail: &StrategyDetail,
    plan: StrategyPlan<'_>,
) -> Result<BacktestResult, String> {
    let market = deps.ml.market_dir().to_path_buf();
    let work = ctx.dir.join("freqtrade");
    let mut setup = FreqtradeSetup::for_strategy(
        &deps.data_dir,
        &market,
        &deps.freqtrade,
        plan,
        job.params.pairs.as_deref(),
        "20000101-",
        &work,
    )?;
    let timeframe = setup.timeframe()?;
    let mut newest = i64::MAX;
    for pair in &setup.pairs {
        let candles = candles::read_pair(&market, pair, timeframe).map_err(|e| {
            format!("{e} (memctl market refresh --pair {pair} downloads its candles)")
        })?;
        let last = candles
            .last()
            .ok_or_else(|| format!("no {} candle of {pair}", timeframe.as_str()))?;
        newest = newest.min(last.ts_ms + timeframe.millis());
    }
    let (from, to) = range_of(job, &deps.settings, time(newest))?;
    let from = from.unwrap_or(DateTime::UNIX_EPOCH);
    let mut result = base_result(job, detail, BacktestEngine::Freqtrade);
    match job.params.walk_forward {
        None => {
            setup.timerange = ft::timerange(from, to);
            let measured = freqtrade_backtest(ctx, &setup, "freqtrade backtesting", &mut result)?;
            result.data_from = measured.data_from;
            result.data_to = measured.data_to;
            result.pairs = measured.pairs;
            result.timeframe = measured.timeframe;
            result.figures = measured.figures;
            result.equity = measured.equity;
        }
        Some(n) => {
            let n = if n == 0 { deps.settings.folds } else { n };
            let wf = freqtrade_walk_forward(deps, job, ctx, &mut setup, from, to, n, &mut result)?;
            result.pairs = setup.pairs.clone();
            result.timeframe = setup.timeframe.clone();
            result.data_from = wf.folds.first().map_or(from, |f| f.in_sample_from);
            result.data_to = wf.folds.last().map_or(to, |f| f.out_of_sample_to);
            result.figures = wf.out_of_sample.clone();
            result.walk_forward = Some(wf);
        }
    }
    Ok(result)
}

/// One `freqtrade backtesting` run of `setup`: rendered, run, its result read (a result
/// file, not the exit code, says it succeeded).
fn freqtrade_backtest(
    ctx: &JobContext,
    setup: &FreqtradeSetup,
    what: &str,
    result: &mut BacktestResult,
) -> Result<ft::Measured, String> {
    let rendered = ft::render_config(setup)?;
    result.config_hash = rendered.config_hash.clone();
    result.strategy_hash = rendered.strategy_hash.clone();
    ctx.progress(
        0,
        1,
        format!("{what} {} on {}", setup.timerange, setup.pairs.join(", ")),
    );
    let ran = ctx.run(ft::backtest_command(setup, &rendered), what);
    if ctx.cancelled() {
        return Err(CANCELLED.into());
    }
    let read = ft::read_backtest_result(&rendered.results_dir, &setup.strategy_class);
    if let Some(version) = ft::freqtrade_version(&ctx.log_file) {
        result.engine_version = version;
    }
    match (ran, read) {
        (_, Ok(found)) => {
            result.result_file = Some(found.result_file.display().to_string());
            Ok(found.measured)
        }
        (Err(e), Err(_)) => Err(e),
        (Ok(()), Err(e)) => Err(format!(
            "{what} wrote no result ({e}){}; the last lines of its log ({}):\n{}",
            ft::freqtrade_error(&ctx.log_file)
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
            ctx.log_file.display(),
            ft::last_log_lines(&ctx.log_file, 12).join("\n")
        )),
    }
}

/// Each fold: hyperopt on its in-sample part, then the best epoch's parameters
/// backtested on its out-of-sample part.
#[allow(clippy::too_many_arguments)]
fn freqtrade_walk_forward(
    deps: &JobDeps,
    job: &QueueJob,
    ctx: &JobContext,
    setup: &mut FreqtradeSetup,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    n: u32,
    result: &mut BacktestResult,
) -> Result<WalkForward, String> {
    let ranges = super::folds::folds(from, to, n)?;
    let epochs = job.params.epochs.unwrap_or(deps.settings.epochs);
    let options = HyperoptOptions {
        epochs,
        spaces: vec!["roi".into(), "stoploss".into(), "trailing".into()],
        loss: "SharpeHyperOptLoss".into(),
        random_state: 1,
        jobs: 1,
    };
    let mut folds = Vec::new();
    let (mut ins, mut outs) = (Vec::new(), Vec::new());
    for range in &ranges {
        let label = format!("fold {} of {n}", range.index + 1);
        setup.strategy_parameters = None;
        setup.timerange = ft::timerange(range.in_sample_from, range.in_sample_to);
        let rendered = ft::render_config(setup)?;
        ctx.progress(
            u64::from(range.index) * 2,
            u64::from(n) * 2,
            format!("{label}: hyperopt, {epochs} epochs in-sample"),
        );
        ctx.run(
            ft::hyperopt_command(setup, &rendered, &options)?,
            "freqtrade hyperopt",
        )?;
        let best = ft::read_hyperopt_result(&rendered.user_dir, &setup.strategy_class)?;
        ctx.log(&format!(
            "{label}: best epoch {} of {}, loss {:.4}",
            best.epoch, best.epochs, best.loss
        ));
        setup.strategy_parameters = Some(best.parameter_file.clone());
        setup.timerange = ft::timerange(range.out_of_sample_from, range.out_of_sample_to);
        ctx.progress(
            u64::from(range.index) * 2 + 1,
            u64::from(n) * 2,
            format!("{label}: backtest out-of-sample"),
        );
        let out = freqtrade_backtest(ctx, setup, "freqtrade backtesting (out-of-sample)", result)?;
        ins.push(best.in_sample.figures.clone());
        outs.push(out.figures.clone());
        folds.push(Fold {
            index: range.index,
            in_sample_from: range.in_sample_from,
            in_sample_to: range.in_sample_to,
            out_of_sample_from: range.out_of_sample_from,
            out_of_sample_to: range.out_of_sample_to,
            parameters: best.parameters.clone(),
            in_sample: best.in_sample.figures,
            out_of_sample: out.figures,
        });
    }
    setup.strategy_parameters = None;
    let parameters = folds
        .last()
        .map(|f| f.parameters.clone())
        .unwrap_or_default();
    Ok(WalkForward {
        in_sample: super::figures::combine(&ins),
        out_of_sample: super::figures::combine(&outs),
        folds,
        parameters,
    })
}
