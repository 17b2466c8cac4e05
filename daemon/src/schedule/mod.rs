//! Scheduled jobs: retraining, rotation, deployment on a regime change, performance
//! sync, the learning review, the market data's refresh ([`refresh`]), backups and the
//! data directory's retention ([`retention`]), fired by
//! tokio-cron-scheduler from the cron expressions of `[schedule]` (see [`config`]).
//!
//! Invariants:
//! - one run of a job at a time: a tick that finds the previous run still going is
//!   recorded as `skipped` (log line and `job.finished` event); `jobs.run` is refused;
//! - every run ends in the history file (fsynced) and as a `job.finished` event; a failed
//!   run changes nothing (the model is only replaced by a better one, rotation starts
//!   new bots before it drains old ones and drains nothing if a start fails);
//! - at start, scheduled times that passed while memd was down are recorded as one
//!   `missed` run, and the job is run once if its `catch_up` says so;
//! - nothing acts on stale data: the rotation and the regime job refuse stale market
//!   conditions, retraining leaves out (or refuses) pairs whose newest candle is older
//!   than its window, each naming the pair, the candle and its age.

mod backups;
pub mod config;
pub mod history;
pub mod refresh;
pub mod retention;
pub mod rotation;

use crate::bus::EventBus;
use crate::mem::service::Memory;
use crate::ml::service::MlService;
use crate::registry::Registry;
use crate::supervisor::Supervisor;
use chrono::{DateTime, Utc};
use config::{JobSpec, Schedule};
use history::{JobHistory, Regime};
use mem_protocol::deploy::StartedBy;
use mem_protocol::jobs::{
    JobHistoryParams, JobInfo, JobList, JobOutcome, JobRun, JobTrigger, RunJobParams, RunJobResult,
};
use mem_protocol::recommend::AppliedConditions;
use mem_protocol::{ErrorCode, Event, RpcError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info, warn};
use uuid::Uuid;

/// The times `cron` (read in `tz`) fell due after `since` and up to `now`, at most
/// 100,000 of them.
pub fn missed_between(
    cron: &croner::Cron,
    tz: chrono_tz::Tz,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    use chrono::Timelike;
    // croner's own iterator skips every other time of a per-second expression; one
    // exclusive search after another does not.
    let mut t = since.with_nanosecond(0).unwrap_or(since).with_timezone(&tz);
    let mut due = Vec::new();
    while due.len() < 100_000 {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) if next.with_timezone(&Utc) <= now => {
                due.push(next.with_timezone(&Utc));
                t = next;
            }
            _ => break,
        }
    }
    due
}

/// What the jobs work on.
pub struct JobContext {
    pub ml: Arc<MlService>,
    pub registry: Arc<Registry>,
    pub supervisor: Arc<Supervisor>,
    pub memory: Arc<Memory>,
    pub refresher: Arc<crate::market::refresh::Refresher>,
    /// `[recommend] unmeasured`, for the rotation's and the regime job's recommendations.
    pub unmeasured: crate::recommend::Unmeasured,
    /// What the backup job copies and pauses.
    pub backup: crate::backup::Sources,
    /// What the retention job prunes through.
    pub retention: retention::RetentionParts,
}

/// What a run was asked to do beyond its settings: `market.refresh`'s pairs and days.
enum JobArgs {
    None,
    Refresh(crate::market::refresh::Plan),
}

/// How a job's work ended: a summary and details, or an error (with what details there
/// are); `Skip` when it could not start (a training run by hand under way).
enum Done {
    Ok(String, Value),
    Skip(String),
    Fail(String, Value),
}

/// How far the wall clock may drift from the monotonic one between two looks before it
/// counts as a jump (NTP slews far more slowly than this).
const CLOCK_JUMP: Duration = Duration::from_secs(2);

/// Looks every second whether the wall clock jumped (set by hand, a VM resumed, NTP
/// stepping); says so in the log, and re-arms the schedule when it went back.
async fn watch_clock(scheduler: std::sync::Weak<Scheduler>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = (Utc::now(), Instant::now());
    loop {
        tick.tick().await;
        let Some(scheduler) = scheduler.upgrade() else {
            return;
        };
        let now = (Utc::now(), Instant::now());
        let wall = (now.0 - last.0).num_milliseconds() as f64 / 1000.0;
        let jump = wall - now.1.duration_since(last.1).as_secs_f64();
        last = now;
        if jump.abs() < CLOCK_JUMP.as_secs_f64() {
            continue;
        }
        if jump < 0.0 {
            warn!(
                jump_secs = jump.round(),
                "the wall clock went back; the schedule is re-armed from the new time"
            );
            scheduler.rearm().await;
        } else {
            warn!(
                jump_secs = jump.round(),
                "the wall clock jumped ahead; jobs due in the gap run once now"
            );
        }
    }
}

/// The scheduler and the record of every run.
pub struct Scheduler {
    schedule: Schedule,
    ctx: JobContext,
    history: JobHistory,
    bus: Arc<EventBus>,
    /// Jobs with a run going, and since when.
    running: Mutex<BTreeMap<&'static str, DateTime<Utc>>>,
    /// The cron scheduler and each enabled job's id in it.
    cron: tokio::sync::Mutex<Option<(JobScheduler, BTreeMap<&'static str, Uuid>)>>,
    /// `jobs/state.json`, held under this lock while it is changed.
    state: Mutex<history::SchedulerState>,
}

/// Marks a job as running for as long as it lives.
struct RunGuard {
    scheduler: Arc<Scheduler>,
    job: &'static str,
    started_at: DateTime<Utc>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.scheduler
            .running
            .lock()
            .expect("running lock")
            .remove(self.job);
    }
}

impl Scheduler {
    /// Opens `data_dir/jobs` (history and state).
    pub fn open(
        data_dir: &Path,
        schedule: Schedule,
        ctx: JobContext,
        bus: Arc<EventBus>,
    ) -> anyhow::Result<Arc<Scheduler>> {
        let history = JobHistory::open(&data_dir.join("jobs"))?;
        let state = history.read_state();
        Ok(Arc::new(Scheduler {
            schedule,
            ctx,
            history,
            bus,
            running: Mutex::new(BTreeMap::new()),
            cron: tokio::sync::Mutex::new(None),
            state: Mutex::new(state),
        }))
    }

    fn spec(&self, name: &str) -> Result<&JobSpec, RpcError> {
        self.schedule.job(name).ok_or_else(|| {
            RpcError::invalid_params(
                "jobs.run",
                format!(
                    "no job named {name:?}; the jobs are {}",
                    config::JOB_NAMES.join(", ")
                ),
            )
        })
    }

    /// Reports and catches up missed runs, then starts firing the enabled jobs.
    pub async fn start(self: &Arc<Self>) -> anyhow::Result<()> {
        self.catch_up();
        let (cron, ids) = self.arm().await?;
        let enabled: Vec<&str> = ids.keys().copied().collect();
        info!(jobs = ?enabled, timezone = %self.schedule.timezone, "scheduler started");
        *self.cron.lock().await = Some((cron, ids));
        tokio::spawn(watch_clock(Arc::downgrade(self)));
        Ok(())
    }

    /// A cron scheduler firing every enabled job, each due time counted from now.
    async fn arm(self: &Arc<Self>) -> anyhow::Result<(JobScheduler, BTreeMap<&'static str, Uuid>)> {
        let cron = JobScheduler::new().await?;
        let mut ids = BTreeMap::new();
        for spec in self.schedule.jobs.iter().filter(|j| j.enabled) {
            let me = Arc::downgrade(self);
            let name = spec.name;
            let job = Job::new_async_tz(
                spec.cron.as_str(),
                self.schedule.timezone,
                move |_id, _lock| {
                    let me = me.clone();
                    Box::pin(async move {
                        if let Some(me) = me.upgrade() {
                            me.fire(name, JobTrigger::Schedule);
                        }
                    })
                },
            )
            .map_err(|e| anyhow::anyhow!("[schedule.{name}] cron {:?}: {e}", spec.cron))?;
            ids.insert(name, cron.add(job).await?);
        }
        cron.start().await?;
        Ok((cron, ids))
    }

    /// After the wall clock went back, the cron scheduler would wait for its old due
    /// times (a minute's job could pause for hours): it is replaced by one armed from now.
    async fn rearm(self: &Arc<Self>) {
        let mut cron = self.cron.lock().await;
        let Some((old, _)) = cron.as_mut() else {
            return; // shut down
        };
        let _ = old.shutdown().await;
        match self.arm().await {
            Ok(armed) => *cron = Some(armed),
            Err(e) => {
                error!(error = %e, "the schedule could not be re-armed after the clock jump");
                *cron = None;
            }
        }
    }

    /// Stops firing (runs going are left to finish or die with the process).
    pub async fn shutdown(&self) {
        if let Some((mut cron, _)) = self.cron.lock().await.take() {
            let _ = cron.shutdown().await;
        }
    }

    /// Finds the scheduled times that passed since each enabled job last ran (or was
    /// first known) and records them as one `missed` run; runs the job once when its
    /// catch-up policy says so.
    fn catch_up(self: &Arc<Self>) {
        let now = Utc::now();
        let mut state = self.state.lock().expect("state lock");
        let mut changed = false;
        for spec in self.schedule.jobs.iter().filter(|j| j.enabled) {
            let last = self.history.last(spec.name).map(|r| r.started_at);
            let seen = state.first_seen.get(spec.name).copied();
            let Some(since) = last.into_iter().chain(seen).max() else {
                state.first_seen.insert(spec.name.to_string(), now);
                changed = true;
                continue;
            };
            let Ok((_, cron)) = config::parse_cron(&spec.cron) else {
                continue;
            };
            let missed = missed_between(&cron, self.schedule.timezone, since, now);
            let (Some(first), Some(latest)) = (missed.first(), missed.last()) else {
                continue;
            };
            let summary = format!(
                "{} scheduled run{} missed while memd was down (first {}, last {}); {}",
                missed.len(),
                if missed.len() == 1 { "" } else { "s" },
                first.format("%Y-%m-%d %H:%M:%S UTC"),
                latest.format("%Y-%m-%d %H:%M:%S UTC"),
                if spec.catch_up {
                    "catch_up is on: running it once now"
                } else {
                    "catch_up is off: not run until its next time"
                }
            );
            warn!(job = spec.name, "{summary}");
            self.finish(JobRun {
                id: Uuid::new_v4().to_string(),
                job: spec.name.to_string(),
                trigger: JobTrigger::Schedule,
                started_at: now,
                finished_at: now,
                outcome: JobOutcome::Missed,
                summary,
                error: None,
                details: json!({"missed": missed.len(), "first": first, "last": latest, "since": since}),
            });
            if spec.catch_up {
                self.fire(spec.name, JobTrigger::CatchUp);
            }
        }
        if changed {
            if let Err(e) = self.history.write_state(&state) {
                warn!(error = %e, "cannot write jobs/state.json");
            }
        }
    }

    /// A tick (or a catch-up): runs the job in the background, or records a skip when
    /// its previous run is still going.
    fn fire(self: &Arc<Self>, name: &'static str, trigger: JobTrigger) {
        let guard = match self.claim(name) {
            Ok(guard) => guard,
            Err(since) => {
                let now = Utc::now();
                let summary = format!(
                    "skipped: the previous run (started {}) is still going",
                    since.format("%H:%M:%S UTC")
                );
                warn!(job = name, "{summary}");
                self.finish(JobRun {
                    id: Uuid::new_v4().to_string(),
                    job: name.to_string(),
                    trigger,
                    started_at: now,
                    finished_at: now,
                    outcome: JobOutcome::Skipped,
                    summary,
                    error: None,
                    details: Value::Null,
                });
                return;
            }
        };
        let id = Uuid::new_v4().to_string();
        tokio::spawn(async move {
            let me = guard.scheduler.clone();
            me.run(guard, id, trigger, JobArgs::None).await;
        });
    }

    /// Marks `name` as running; when it already is, answers since when.
    fn claim(self: &Arc<Self>, name: &'static str) -> Result<RunGuard, DateTime<Utc>> {
        let mut running = self.running.lock().expect("running lock");
        if let Some(since) = running.get(name) {
            return Err(*since);
        }
        let started_at = Utc::now();
        running.insert(name, started_at);
        Ok(RunGuard {
            scheduler: self.clone(),
            job: name,
            started_at,
        })
    }

    /// Does a claimed job's work and records the run.
    async fn run(&self, guard: RunGuard, id: String, trigger: JobTrigger, args: JobArgs) -> JobRun {
        let name = guard.job;
        info!(job = name, ?trigger, "job started");
        let done = self.work(name, &id, args).await;
        let (outcome, summary, error, details) = match done {
            Done::Ok(summary, details) => (JobOutcome::Succeeded, summary, None, details),
            Done::Skip(summary) => (JobOutcome::Skipped, summary, None, Value::Null),
            Done::Fail(message, details) => (
                JobOutcome::Failed,
                format!("failed: {message}"),
                Some(message),
                details,
            ),
        };
        let run = JobRun {
            id,
            job: name.to_string(),
            trigger,
            started_at: guard.started_at,
            finished_at: Utc::now(),
            outcome,
            summary,
            error,
            details,
        };
        drop(guard);
        self.finish(run.clone());
        run
    }

    /// Records a run and announces it.
    fn finish(&self, run: JobRun) {
        match run.outcome {
            JobOutcome::Failed => {
                error!(job = %run.job, error = run.error.as_deref().unwrap_or(""), "job failed")
            }
            _ => {
                info!(job = %run.job, outcome = ?run.outcome, summary = %run.summary, "job finished")
            }
        }
        if let Err(e) = self.history.record(&run) {
            error!(error = %e, "cannot write the jobs history");
        }
        self.bus.publish(Event::JobFinished(Box::new(run)));
    }

    /// `jobs.run`.
    pub async fn run_now(self: &Arc<Self>, p: RunJobParams) -> Result<RunJobResult, RpcError> {
        let name = self.spec(&p.name)?.name;
        self.start_now(name, p.wait, JobArgs::None).await
    }

    /// Claims `name` and runs it now (waiting for it when `wait`).
    async fn start_now(
        self: &Arc<Self>,
        name: &'static str,
        wait: bool,
        args: JobArgs,
    ) -> Result<RunJobResult, RpcError> {
        let guard = self.claim(name).map_err(|since| {
            RpcError::new(
                ErrorCode::Conflict,
                format!(
                    "job {name} is already running (since {}); wait for its job.finished or see `memctl jobs`",
                    since.format("%H:%M:%S UTC")
                ),
            )
        })?;
        let id = Uuid::new_v4().to_string();
        let started_at = guard.started_at;
        let run = if wait {
            Some(self.run(guard, id.clone(), JobTrigger::Manual, args).await)
        } else {
            let me = self.clone();
            let run_id = id.clone();
            tokio::spawn(async move { me.run(guard, run_id, JobTrigger::Manual, args).await });
            None
        };
        Ok(RunJobResult {
            id,
            job: name.to_string(),
            started_at,
            run,
        })
    }

    /// `jobs.list`.
    pub async fn list(&self) -> JobList {
        let mut next: BTreeMap<&str, Option<DateTime<Utc>>> = BTreeMap::new();
        // Asked outside our lock: callers of jobs.list do not queue behind each other.
        let cron = self.cron.lock().await.clone();
        if let Some((mut cron, ids)) = cron {
            for (name, id) in ids {
                next.insert(name, cron.next_tick_for_job(id).await.ok().flatten());
            }
        }
        let running = self.running.lock().expect("running lock").clone();
        let jobs = self
            .schedule
            .jobs
            .iter()
            .map(|spec| JobInfo {
                name: spec.name.to_string(),
                description: spec.description.to_string(),
                schedule: spec.cron.clone(),
                schedule_text: spec.schedule_text.clone(),
                timezone: self.schedule.timezone.to_string(),
                enabled: spec.enabled,
                catch_up: spec.catch_up,
                running_since: running.get(spec.name).copied(),
                last_run: self.history.last(spec.name),
                next_run: next.get(spec.name).copied().flatten(),
            })
            .collect();
        JobList { jobs }
    }

    /// `jobs.history`.
    pub fn history(&self, p: JobHistoryParams) -> Result<mem_protocol::jobs::JobHistory, RpcError> {
        if let Some(name) = &p.name {
            if self.schedule.job(name).is_none() {
                return Err(RpcError::invalid_params(
                    "jobs.history",
                    format!(
                        "field `name`: no job named {name:?}; the jobs are {}",
                        config::JOB_NAMES.join(", ")
                    ),
                ));
            }
        }
        let limit = p.limit.unwrap_or(50).clamp(1, 1000);
        Ok(mem_protocol::jobs::JobHistory {
            runs: self.history.newest(p.name.as_deref(), limit),
        })
    }

    /// A job's work.
    async fn work(&self, name: &'static str, id: &str, args: JobArgs) -> Done {
        match name {
            config::DATA_REFRESH => {
                let plan = match args {
                    JobArgs::Refresh(plan) => Ok(plan),
                    JobArgs::None => self.default_refresh_plan(),
                };
                match plan {
                    Ok(plan) => self.data_refresh(id, plan).await,
                    Err(e) => Done::Fail(e, Value::Null),
                }
            }
            config::RETRAIN => self.retrain().await,
            config::ROTATION => self.rotate(StartedBy::Rotation, None).await,
            config::REGIME_DEPLOY => self.regime_deploy().await,
            config::PERFORMANCE_SYNC => self.performance_sync().await,
            config::LEARNING => {
                let memory = self.ctx.memory.clone();
                match tokio::task::spawn_blocking(move || memory.review()).await {
                    Ok(Ok(summary)) => Done::Ok(summary, Value::Null),
                    Ok(Err(e)) => Done::Fail(e, Value::Null),
                    Err(e) => Done::Fail(format!("the review panicked: {e}"), Value::Null),
                }
            }
            config::BACKUP => {
                let (sources, policy) = (self.ctx.backup.clone(), self.schedule.backup.clone());
                match tokio::task::spawn_blocking(move || backups::run(&sources, &policy)).await {
                    Ok(done) => done,
                    Err(e) => Done::Fail(format!("the backup panicked: {e}"), Value::Null),
                }
            }
            config::RETENTION => {
                let (parts, policy) = (self.ctx.retention.clone(), self.schedule.retention.clone());
                let pruned = tokio::task::spawn_blocking(move || {
                    retention::run(&parts, &policy, Utc::now())
                });
                match pruned.await {
                    Ok(done) => done,
                    Err(e) => Done::Fail(format!("the retention run panicked: {e}"), Value::Null),
                }
            }
            other => Done::Fail(format!("no work is defined for job {other}"), Value::Null),
        }
    }

    /// The seed's retraining pipeline: the last N days of the configured pairs, the
    /// 80/20 holdout, promotion only by the configured rule (+2 points by default). A
    /// pair whose newest candle is older than the N days is left out (all of them: the
    /// run fails), named with its candle and age.
    async fn retrain(&self) -> Done {
        let (pairs, refused) = match self.retrain_pairs().await {
            Ok(split) => split,
            Err(done) => return done,
        };
        let ml = self.ctx.ml.clone();
        let params = mem_protocol::ml::TrainParams {
            pairs,
            days: Some(self.schedule.retrain_days),
            ..Default::default()
        };
        let trained = tokio::task::spawn_blocking(move || ml.train(params)).await;
        match trained {
            Err(e) => Done::Fail(format!("training panicked: {e}"), Value::Null),
            Ok(Err(e)) if e.code == ErrorCode::Conflict => {
                Done::Skip(format!("skipped: {}", e.message))
            }
            Ok(Err(e)) => Done::Fail(
                format!("{} (the current model is unchanged)", e.message),
                Value::Null,
            ),
            Ok(Ok(report)) => {
                let m = &report.model;
                let mut summary = if report.promoted {
                    format!(
                        "promoted {}: accuracy {:.4}, ROC AUC {:.4} on {} holdout rows ({})",
                        m.version, m.metrics.accuracy, m.metrics.roc_auc, m.test_rows, m.reason
                    )
                } else {
                    format!(
                        "trained {} but kept {}: {}",
                        m.version,
                        report
                            .previous_version
                            .as_deref()
                            .unwrap_or("the current model"),
                        m.reason
                    )
                };
                let details = json!({
                    "version": m.version,
                    "promoted": report.promoted,
                    "metrics": m.metrics,
                    "currentOnSameHoldout": report.current_on_same_holdout,
                    "previousVersion": report.previous_version,
                    "pairs": m.pairs,
                    "days": self.schedule.retrain_days,
                    "trainRows": m.train_rows,
                    "testRows": m.test_rows,
                    "dataNotes": report.data_notes,
                    "refusedStale": refused,
                });
                if !refused.is_empty() {
                    summary.push_str(&format!(
                        "; left out, older than the {}-day window: {}",
                        self.schedule.retrain_days,
                        refused.join("; ")
                    ));
                }
                Done::Ok(summary, details)
            }
        }
    }

    /// The retrain job's pairs, split: those whose newest candle is within the window,
    /// and the others (each with its candle and age). None within it: the run fails.
    async fn retrain_pairs(&self) -> Result<(Vec<String>, Vec<String>), Done> {
        let ml = self.ctx.ml.clone();
        let configured = self.schedule.retrain_pairs.clone();
        let days = self.schedule.retrain_days;
        let judged = tokio::task::spawn_blocking(move || {
            let tf = ml.timeframe();
            let pairs = if configured.is_empty() {
                ml.default_pairs(tf)
            } else {
                configured
            };
            pairs
                .into_iter()
                .map(|pair| {
                    let fresh = ml.data_freshness(&pair, tf);
                    (pair, tf, fresh)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Done::Fail(format!("reading the candles panicked: {e}"), Value::Null))?;
        let window = i64::from(days) * 86_400;
        let (mut fresh, mut refused) = (Vec::new(), Vec::new());
        for (pair, tf, freshness) in judged {
            match freshness {
                // Too old for the window: refused, with its candle and age.
                Ok(f) if f.age_secs > window => refused.push(f.stale_reason(&pair, tf.as_str())),
                // Fresh enough, or unreadable: training says what is wrong with it.
                _ => fresh.push(pair),
            }
        }
        if fresh.is_empty() && !refused.is_empty() {
            let message = format!(
                "refused: no pair has candles within the {days}-day window ({}); the current model is unchanged; refresh the market data (memctl market refresh, or [schedule.data_refresh] enabled = true)",
                refused.join("; ")
            );
            return Err(Done::Fail(
                message,
                json!({"refusedStale": refused, "days": days}),
            ));
        }
        Ok((fresh, refused))
    }

    /// Market conditions now, as recommendations use them; stale ones are refused (the
    /// error names the pair, the candle and its age).
    async fn conditions(&self) -> Result<AppliedConditions, (String, Value)> {
        let ml = self.ctx.ml.clone();
        let report = tokio::task::spawn_blocking(move || ml.conditions(Default::default()))
            .await
            .map_err(|e| (e.to_string(), Value::Null))?
            .map_err(|e| {
                (
                    format!("cannot compute the market conditions: {}", e.message),
                    Value::Null,
                )
            })?;
        let f = &report.freshness;
        if f.stale {
            let message = format!(
                "refused: the market conditions are stale: {}; nothing was deployed or drained; refresh the market data (memctl market refresh, or [schedule.data_refresh] enabled = true)",
                f.stale_reason(&report.pair, &report.timeframe)
            );
            let details = json!({
                "refused": "stale market data",
                "pair": report.pair,
                "timeframe": report.timeframe,
                "candle": f.as_of,
                "ageSecs": f.age_secs,
                "staleAfterSecs": f.stale_after_secs,
                "demo": f.demo,
            });
            return Err((message, details));
        }
        Ok(crate::recommend::computed_conditions(report, None))
    }

    /// Rotation for `owner` (the rotation job, or the regime job on a change): plan from
    /// the recommendations for the conditions now, then start and drain. `why` prefixes
    /// the summary.
    async fn rotate(&self, owner: StartedBy, known: Option<(AppliedConditions, String)>) -> Done {
        let (conditions, why) = match known {
            Some(k) => k,
            None => match self.conditions().await {
                Ok(c) => {
                    let regime = Regime {
                        trend: c.trend,
                        volatility: c.volatility,
                    };
                    (c, regime.to_string())
                }
                Err((e, details)) => return Done::Fail(e, details),
            },
        };
        let policy = match owner {
            StartedBy::Regime => &self.schedule.regime,
            _ => &self.schedule.rotation,
        };
        let recommendations = crate::recommend::recommend(
            &self.ctx.registry.summaries(),
            conditions.clone(),
            Some(20),
            self.ctx.unmeasured,
        );
        let running: Vec<rotation::Running> = self
            .ctx
            .supervisor
            .deployed(false)
            .deployments
            .into_iter()
            .map(|d| rotation::Running {
                strategy_id: d.strategy_id,
                name: d.strategy_name,
                started_by: d.started_by,
            })
            .collect();
        let supervisor = &self.ctx.supervisor;
        let plan = rotation::plan(
            &recommendations.recommendations,
            &running,
            owner,
            policy,
            |id| supervisor.check_deployable(id),
        );
        let (actions, failure) = rotation::execute(supervisor, plan, owner, policy).await;
        let computed = conditions.computed.as_deref();
        let details = json!({
            "conditions": {
                "trend": conditions.trend,
                "volatility": conditions.volatility,
                "pair": computed.map(|c| c.pair.clone()),
                "trendReason": computed.map(|c| c.trend_reason.clone()),
                "volatilityReason": computed.map(|c| c.volatility_reason.clone()),
                "freshness": computed.map(|c| c.freshness.clone()),
            },
            "policy": {
                "minConfidence": policy.min_confidence,
                "keepCurrent": policy.keep_current,
                "maxConcurrent": policy.max_concurrent,
                "dryRun": !policy.allow_live,
            },
            "recommendations": recommendations.recommendations.iter().take(5).map(|r| json!({
                "strategyId": r.strategy_id,
                "strategyName": r.strategy_name,
                "confidence": r.confidence_score,
                "reason": r.reason,
            })).collect::<Vec<_>>(),
            "actions": actions,
        });
        let reasons: Vec<String> = actions
            .iter()
            .filter(|a| a.action != rotation::ActionKind::Keep)
            .map(|a| {
                format!(
                    "{} {}: {}",
                    match a.action {
                        rotation::ActionKind::Deploy => "deploy",
                        rotation::ActionKind::Drain => "drain",
                        rotation::ActionKind::Skip => "skip",
                        rotation::ActionKind::Keep => "keep",
                    },
                    a.strategy_name,
                    a.reason
                )
            })
            .collect();
        let summary = format!(
            "{why}: {}{}",
            rotation::summarize(&actions),
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join("; "))
            }
        );
        match failure {
            Some(e) => Done::Fail(format!("{e}; nothing was drained"), details),
            None => Done::Ok(summary, details),
        }
    }

    /// The seed's scenario 1: when the trend or volatility regime changes, move the
    /// regime job's bots to the top recommendation. The first look only remembers the
    /// regime; a failed move leaves the old regime recorded, so the next run tries again.
    async fn regime_deploy(&self) -> Done {
        let conditions = match self.conditions().await {
            Ok(c) => c,
            Err((e, details)) => return Done::Fail(e, details),
        };
        let now = Regime {
            trend: conditions.trend,
            volatility: conditions.volatility,
        };
        let before = self.state.lock().expect("state lock").regime;
        let save = |regime: Regime| {
            let mut state = self.state.lock().expect("state lock");
            state.regime = Some(regime);
            if let Err(e) = self.history.write_state(&state) {
                warn!(error = %e, "cannot write jobs/state.json");
            }
        };
        match before {
            None => {
                save(now);
                Done::Ok(
                    format!("first look: {now}; a deployment follows the next change"),
                    json!({"regime": now}),
                )
            }
            Some(b) if b == now => Done::Ok(format!("unchanged: {now}"), json!({"regime": now})),
            Some(b) => {
                let why = format!("regime changed from {b} to {now}");
                let done = self
                    .rotate(StartedBy::Regime, Some((conditions, why)))
                    .await;
                if matches!(done, Done::Ok(..)) {
                    save(now);
                }
                done
            }
        }
    }

    /// Copies running bots' new closed trades into the registry and brings the live
    /// figures in the metadata up to date.
    async fn performance_sync(&self) -> Done {
        let (bots, trades, problems) = self.ctx.supervisor.sync_performance().await;
        let registry = self.ctx.registry.clone();
        let _ = tokio::task::spawn_blocking(move || registry.flush_live_summaries()).await;
        let summary = format!(
            "{bots} running bot{} read, {trades} new closed trade{} recorded",
            if bots == 1 { "" } else { "s" },
            if trades == 1 { "" } else { "s" }
        );
        let details = json!({"bots": bots, "trades": trades, "problems": problems});
        if problems.is_empty() {
            Done::Ok(summary, details)
        } else {
            Done::Fail(format!("{summary}; {}", problems.join("; ")), details)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn missed_times_are_the_due_times_between_the_last_run_and_now() {
        let (_, every_second) = config::parse_cron("* * * * * *").unwrap();
        let missed = missed_between(
            &every_second,
            chrono_tz::UTC,
            at("2026-11-22T07:30:27.286Z"),
            at("2026-11-22T07:30:31.346Z"),
        );
        assert_eq!(
            missed,
            ["28", "29", "30", "31"].map(|s| at(&format!("2026-11-22T07:30:{s}Z")))
        );
        let (_, daily) = config::parse_cron("0 0 2 * * *").unwrap();
        // Down from 01:00 on the 20th to 12:00 on the 22nd: the 20th's and 21st's and the
        // 22nd's 02:00.
        let missed = missed_between(
            &daily,
            chrono_tz::UTC,
            at("2026-11-20T01:00:00Z"),
            at("2026-11-22T12:00:00Z"),
        );
        assert_eq!(missed.len(), 3);
        assert_eq!(missed[0], at("2026-11-20T02:00:00Z"));
        // Ran at 02:00:05 and back at 03:00: nothing missed.
        assert!(
            missed_between(
                &daily,
                chrono_tz::UTC,
                at("2026-11-22T02:00:05Z"),
                at("2026-11-23T01:59:59Z")
            )
            .is_empty()
        );
        // Read in a time zone: 02:00 in New York is 07:00 UTC in November.
        let missed = missed_between(
            &daily,
            chrono_tz::America::New_York,
            at("2026-11-22T06:00:00Z"),
            at("2026-11-22T08:00:00Z"),
        );
        assert_eq!(missed, [at("2026-11-22T07:00:00Z")]);
    }
}
