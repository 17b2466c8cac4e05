//! The queue of heavy work (backtests, walk-forwards), on the pueue model: jobs wait in
//! order and run at most `[queue] parallel` at once (1 by default: a 2-core server also
//! runs the bots), each only when `[queue] min_free_mb` of memory is free; each has its own
//! directory and log, progress, a cancel that ends its whole process group, and a history.
//! Jobs run on blocking threads and in child processes: never inside a bot, never on the
//! daemon's tasks.
//!
//! Every change of a job's state is a whole line of `<data>/queue/jobs.jsonl` (the last
//! line of an id is its state); a job found running at start was cut short by a stop or a
//! crash and is marked interrupted, never left "running"; queued jobs stay queued.

use crate::bus::EventBus;
use crate::linelog::{self, Durability};
use chrono::Utc;
use mem_protocol::RpcError;
use mem_protocol::backtest::{
    BacktestParams, BacktestResult, QueueJob, QueueJobKind, QueueJobState, QueueList, QueueProgress,
};
use mem_protocol::events::Event;
use mem_protocol::strategy::StrategyId;
use serde::Deserialize;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{info, warn};

/// `[queue]` as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Jobs running at once (default 1).
    pub parallel: Option<usize>,
    /// A job starts only with this much memory available (default 512 MB).
    pub min_free_mb: Option<u64>,
    /// Finished jobs kept in the history (default 200; their directories too).
    pub keep: Option<usize>,
}

/// `[queue]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    pub parallel: usize,
    pub min_free_mb: u64,
    pub keep: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            parallel: 1,
            min_free_mb: 512,
            keep: 200,
        }
    }
}

impl QueueConfig {
    pub fn settings(&self) -> anyhow::Result<QueueSettings> {
        let d = QueueSettings::default();
        let s = QueueSettings {
            parallel: self.parallel.unwrap_or(d.parallel),
            min_free_mb: self.min_free_mb.unwrap_or(d.min_free_mb),
            keep: self.keep.unwrap_or(d.keep),
        };
        anyhow::ensure!(
            (1..=64).contains(&s.parallel),
            "[queue] parallel: must be 1 to 64, got {}",
            s.parallel
        );
        anyhow::ensure!(s.keep >= 1, "[queue] keep: must be at least 1");
        Ok(s)
    }
}

/// What runs a job: the backtest module's, set once the daemon is composed.
pub type Runner =
    Arc<dyn Fn(&QueueJob, &JobContext) -> Result<BacktestResult, String> + Send + Sync>;

/// What a running job is given: its directory and log, its cancel flag, a way to say how
/// far it is, and a way to run a child process the queue can cancel.
pub struct JobContext {
    pub id: String,
    /// The job's own directory (`<data>/queue/<id>/`).
    pub dir: PathBuf,
    pub log_file: PathBuf,
    cancel: Arc<AtomicBool>,
    progress: Box<dyn Fn(QueueProgress) + Send + Sync>,
}

/// Lines of a failed process's log that its error quotes.
const LAST_LINES: usize = 12;

impl JobContext {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The cancel flag, for loops that check it themselves (the native engine).
    pub fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }

    pub fn progress(&self, done: u64, total: u64, message: impl Into<String>) {
        (self.progress)(QueueProgress {
            done,
            total,
            message: message.into(),
        });
    }

    /// Appends a line of memd's own to the job's log.
    pub fn log(&self, line: &str) {
        let stamped = format!("{} memd: {line}\n", Utc::now().format("%Y-%m-%d %H:%M:%S"));
        if let Err(e) = linelog::append(
            &self.log_file,
            0o640,
            stamped.as_bytes(),
            Durability::Batched,
        ) {
            warn!(job = %self.id, error = %e, "cannot write the job's log");
        }
    }

    /// Runs `command` (`what` names it in errors) in a process group of its own, its
    /// output appended to the job's log; a cancel ends the whole group (SIGTERM, then
    /// SIGKILL after 5 s). A failure quotes the log's last lines.
    pub fn run(&self, mut command: Command, what: &str) -> Result<(), String> {
        self.log(&format!("running {what}: {command:?}"));
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_file)
                .map_err(|e| format!("cannot open {}: {e}", self.log_file.display()))
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(open()?)
            .stderr(open()?)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {what}: {e}"))?;
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let mut term_sent: Option<std::time::Instant> = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(format!("cannot wait for {what}: {e}")),
            }
            if self.cancelled() {
                match term_sent {
                    None => {
                        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
                        term_sent = Some(std::time::Instant::now());
                    }
                    Some(at) if at.elapsed() > Duration::from_secs(5) => {
                        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Whatever the group's leader left behind goes with it.
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        if self.cancelled() {
            return Err(CANCELLED.into());
        }
        if status.success() {
            self.log(&format!("{what} finished"));
            return Ok(());
        }
        let tail = crate::supervisor::process::tail_lines(&self.log_file, LAST_LINES);
        Err(format!(
            "{what} failed ({status}); the last lines of its log ({}):\n{}",
            self.log_file.display(),
            tail.join("\n")
        ))
    }
}

/// The error a cancelled job's work answers.
pub const CANCELLED: &str = "cancelled";

struct State {
    /// Every job kept: queued and running in order, then the finished ones.
    jobs: Vec<QueueJob>,
    /// The running jobs' cancel flags.
    cancels: HashMap<String, Arc<AtomicBool>>,
}

/// The queue (one per daemon).
pub struct Queue {
    dir: PathBuf,
    settings: QueueSettings,
    bus: Arc<EventBus>,
    state: Mutex<State>,
    wake: Notify,
    runner: OnceLock<Runner>,
    /// Held while the history file is appended to or rewritten.
    history: Mutex<()>,
    /// memd is stopping: a job cut short now is interrupted, not cancelled.
    stopping: AtomicBool,
}

impl Queue {
    /// Opens the queue's history under `dir`; jobs it says were running are interrupted.
    pub fn open(
        dir: &Path,
        settings: QueueSettings,
        bus: Arc<EventBus>,
    ) -> anyhow::Result<Arc<Queue>> {
        crate::datadir::ensure_dir(dir, 0o750)?;
        let records: Vec<QueueJob> = linelog::read_json(&dir.join("jobs.jsonl"))?;
        let mut latest: Vec<QueueJob> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        for job in records {
            match at.get(&job.id) {
                Some(&i) => latest[i] = job,
                None => {
                    at.insert(job.id.clone(), latest.len());
                    latest.push(job);
                }
            }
        }
        let queue = Arc::new(Queue {
            dir: dir.to_path_buf(),
            settings,
            bus,
            state: Mutex::new(State {
                jobs: Vec::new(),
                cancels: HashMap::new(),
            }),
            wake: Notify::new(),
            runner: OnceLock::new(),
            history: Mutex::new(()),
            stopping: AtomicBool::new(false),
        });
        for mut job in latest {
            if job.state == QueueJobState::Running {
                job.state = QueueJobState::Interrupted;
                job.finished_at = Some(Utc::now());
                job.progress = None;
                job.error = Some(
                    "memd stopped while the job ran (found at the next start); run it again".into(),
                );
                warn!(job = %job.id, strategy = %job.strategy, "a queue job was running when memd stopped: marked interrupted");
                queue.persist(&job);
            }
            queue.state.lock().expect("queue lock").jobs.push(job);
        }
        queue.compact();
        Ok(queue)
    }

    /// Sets what runs the jobs (once, when the daemon is composed).
    pub fn set_runner(&self, runner: Runner) {
        let _ = self.runner.set(runner);
        self.wake.notify_one();
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// Queues a job; it runs when its turn comes.
    pub fn submit(
        &self,
        kind: QueueJobKind,
        strategy_id: StrategyId,
        strategy: String,
        params: BacktestParams,
    ) -> QueueJob {
        let id = uuid::Uuid::new_v4().to_string();
        let job = QueueJob {
            log_file: self.dir.join(&id).join("job.log").display().to_string(),
            id,
            kind,
            strategy_id,
            strategy,
            params,
            state: QueueJobState::Queued,
            queued_at: Utc::now(),
            started_at: None,
            finished_at: None,
            progress: None,
            error: None,
            result: None,
        };
        self.persist(&job);
        {
            let mut state = self.state.lock().expect("queue lock");
            let first_finished = state
                .jobs
                .iter()
                .position(|j| j.state.is_finished())
                .unwrap_or(state.jobs.len());
            state.jobs.insert(first_finished, job.clone());
        }
        info!(job = %job.id, strategy = %job.strategy, kind = ?job.kind, "queued");
        self.announce(&job);
        self.wake.notify_one();
        job
    }

    /// Running and queued jobs, then up to `limit` finished ones (newest first).
    pub fn list(&self, limit: Option<usize>) -> QueueList {
        let limit = limit.unwrap_or(50).min(1_000);
        let state = self.state.lock().expect("queue lock");
        let mut jobs: Vec<QueueJob> = state
            .jobs
            .iter()
            .filter(|j| j.state == QueueJobState::Running)
            .cloned()
            .collect();
        jobs.extend(
            state
                .jobs
                .iter()
                .filter(|j| j.state == QueueJobState::Queued)
                .cloned(),
        );
        let mut finished: Vec<&QueueJob> = state
            .jobs
            .iter()
            .filter(|j| j.state.is_finished())
            .collect();
        finished.sort_by_key(|j| std::cmp::Reverse(j.finished_at));
        jobs.extend(finished.into_iter().take(limit).cloned());
        QueueList {
            jobs,
            parallel: self.settings.parallel,
        }
    }

    pub fn get(&self, id: &str) -> Option<QueueJob> {
        let state = self.state.lock().expect("queue lock");
        state.jobs.iter().find(|j| j.id == id).cloned()
    }

    /// Cancels a queued job at once, or asks a running one to stop (its process group is
    /// ended; the job is recorded cancelled when its work returns).
    pub fn cancel(&self, id: &str) -> Result<QueueJob, RpcError> {
        let mut state = self.state.lock().expect("queue lock");
        let Some(job) = state.jobs.iter_mut().find(|j| j.id == id) else {
            return Err(RpcError::not_found(format!("no queue job `{id}`")));
        };
        match job.state {
            QueueJobState::Queued => {
                job.state = QueueJobState::Cancelled;
                job.finished_at = Some(Utc::now());
                job.error = Some("cancelled before it started".into());
                let job = job.clone();
                drop(state);
                self.persist(&job);
                self.announce(&job);
                Ok(job)
            }
            QueueJobState::Running => {
                let job = job.clone();
                if let Some(flag) = state.cancels.get(id) {
                    flag.store(true, Ordering::SeqCst);
                }
                info!(job = %id, "cancel asked of a running job");
                Ok(job)
            }
            finished => Err(RpcError::new(
                mem_protocol::ErrorCode::Conflict,
                format!("queue job `{id}` has ended already ({finished:?})").to_lowercase(),
            )),
        }
    }

    /// Starts the queue's loop: queued jobs start while fewer than `parallel` run and
    /// memory allows (looked at again every 5 s while a job waits for memory).
    pub fn spawn(self: &Arc<Self>) {
        let queue = self.clone();
        tokio::spawn(async move {
            loop {
                if queue.stopping.load(Ordering::SeqCst) {
                    return;
                }
                queue.start_what_fits();
                tokio::select! {
                    _ = queue.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        });
    }

    /// memd is stopping: no job starts any more, running ones are stopped (their
    /// process groups ended) and recorded interrupted; waits up to `grace` for them.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        {
            let state = self.state.lock().expect("queue lock");
            for flag in state.cancels.values() {
                flag.store(true, Ordering::SeqCst);
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline && self.running() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn running(&self) -> usize {
        let state = self.state.lock().expect("queue lock");
        state.cancels.len()
    }

    fn start_what_fits(self: &Arc<Self>) {
        let Some(runner) = self.runner.get().cloned() else {
            return;
        };
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        loop {
            let job = {
                let mut state = self.state.lock().expect("queue lock");
                let running = state
                    .jobs
                    .iter()
                    .filter(|j| j.state == QueueJobState::Running)
                    .count();
                if running >= self.settings.parallel {
                    return;
                }
                let Some(job) = state
                    .jobs
                    .iter_mut()
                    .find(|j| j.state == QueueJobState::Queued)
                else {
                    return;
                };
                let free = free_memory_mb();
                if free < self.settings.min_free_mb {
                    let message = format!(
                        "waiting for memory: {free} MB free, {} MB needed ([queue] min_free_mb)",
                        self.settings.min_free_mb
                    );
                    if job.progress.as_ref().map(|p| &p.message) != Some(&message) {
                        job.progress = Some(QueueProgress {
                            done: 0,
                            total: 0,
                            message,
                        });
                        let job = job.clone();
                        drop(state);
                        self.announce(&job);
                    }
                    return;
                }
                job.state = QueueJobState::Running;
                job.started_at = Some(Utc::now());
                job.progress = None;
                let job = job.clone();
                state
                    .cancels
                    .insert(job.id.clone(), Arc::new(AtomicBool::new(false)));
                job
            };
            self.persist(&job);
            self.announce(&job);
            let queue = self.clone();
            let runner = runner.clone();
            tokio::task::spawn_blocking(move || queue.execute(&runner, job));
        }
    }

    /// Runs one job's work on this (blocking) thread and records how it ended.
    fn execute(self: &Arc<Self>, runner: &Runner, job: QueueJob) {
        let dir = self.dir.join(&job.id);
        let cancel = {
            let state = self.state.lock().expect("queue lock");
            state.cancels.get(&job.id).cloned().unwrap_or_default()
        };
        let queue = self.clone();
        let id = job.id.clone();
        let ctx = JobContext {
            id: job.id.clone(),
            log_file: PathBuf::from(&job.log_file),
            dir: dir.clone(),
            cancel,
            progress: Box::new(move |p| queue.set_progress(&id, p)),
        };
        let outcome = crate::datadir::ensure_dir(&dir, 0o750)
            .map_err(|e| format!("cannot make {}: {e}", dir.display()))
            .and_then(|()| {
                ctx.log(&format!("{:?} of {} started", job.kind, job.strategy));
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner(&job, &ctx)))
                    .unwrap_or_else(|_| {
                        Err("the job's work panicked (a bug in memd: see its log)".into())
                    })
            });
        let (state, error, result) = match outcome {
            Ok(result) => (QueueJobState::Succeeded, None, Some(Box::new(result))),
            Err(_) if ctx.cancelled() && self.stopping.load(Ordering::SeqCst) => (
                QueueJobState::Interrupted,
                Some("memd stopped while the job ran; run it again".to_string()),
                None,
            ),
            Err(_) if ctx.cancelled() => (
                QueueJobState::Cancelled,
                Some("cancelled while it ran".to_string()),
                None,
            ),
            Err(e) => (QueueJobState::Failed, Some(e), None),
        };
        ctx.log(&format!(
            "ended: {state:?}{}",
            error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
        let finished = {
            let mut s = self.state.lock().expect("queue lock");
            s.cancels.remove(&job.id);
            let Some(j) = s.jobs.iter_mut().find(|j| j.id == job.id) else {
                return;
            };
            j.state = state;
            j.finished_at = Some(Utc::now());
            j.progress = None;
            j.error = error;
            j.result = result;
            j.clone()
        };
        info!(job = %finished.id, strategy = %finished.strategy, state = ?finished.state, "queue job ended");
        self.persist(&finished);
        self.announce(&finished);
        self.compact();
        self.wake.notify_one();
    }

    fn set_progress(&self, id: &str, progress: QueueProgress) {
        let job = {
            let mut state = self.state.lock().expect("queue lock");
            let Some(job) = state.jobs.iter_mut().find(|j| j.id == id) else {
                return;
            };
            job.progress = Some(progress);
            job.clone()
        };
        self.announce(&job);
    }

    fn announce(&self, job: &QueueJob) {
        self.bus.publish(Event::QueueChanged(Box::new(job.clone())));
    }

    /// One line of the history per change of state (progress is not kept).
    fn persist(&self, job: &QueueJob) {
        let mut line = match serde_json::to_vec(job) {
            Ok(line) => line,
            Err(e) => {
                warn!(job = %job.id, error = %e, "cannot write a queue job's record");
                return;
            }
        };
        line.push(b'\n');
        let _file = self.history.lock().expect("queue history lock");
        if let Err(e) =
            linelog::append(&self.dir.join("jobs.jsonl"), 0o640, &line, Durability::Sync)
        {
            warn!(job = %job.id, error = %e, "cannot record a queue job's state");
        }
    }

    /// Forgets the oldest finished jobs beyond `[queue] keep` (their directories too),
    /// rewriting the history with the jobs kept.
    fn compact(&self) {
        // The history's lock first (the order everywhere): no record is appended between
        // the jobs read here and the rewrite.
        let _file = self.history.lock().expect("queue history lock");
        let (dropped, kept) = {
            let mut state = self.state.lock().expect("queue lock");
            let mut finished: Vec<(chrono::DateTime<Utc>, String)> = state
                .jobs
                .iter()
                .filter(|j| j.state.is_finished())
                .map(|j| (j.finished_at.unwrap_or(j.queued_at), j.id.clone()))
                .collect();
            if finished.len() <= self.settings.keep {
                (Vec::new(), Vec::new())
            } else {
                finished.sort();
                let excess = finished.len() - self.settings.keep;
                let dropped: Vec<String> = finished
                    .into_iter()
                    .take(excess)
                    .map(|(_, id)| id)
                    .collect();
                state.jobs.retain(|j| !dropped.contains(&j.id));
                (dropped, state.jobs.clone())
            }
        };
        if dropped.is_empty() {
            return;
        }
        for id in &dropped {
            let _ = std::fs::remove_dir_all(self.dir.join(id));
        }
        let mut text = Vec::new();
        for job in &kept {
            if let Ok(line) = serde_json::to_vec(job) {
                text.extend_from_slice(&line);
                text.push(b'\n');
            }
        }
        if let Err(e) = crate::datadir::write_atomic(&self.dir.join("jobs.jsonl"), &text, 0o640) {
            warn!(error = %e, "cannot rewrite the queue's history");
        }
    }
}

/// What [`Queue::prune_work`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuePruned {
    /// Finished jobs whose work was removed (their `job.log` and record kept).
    pub jobs: usize,
    pub bytes_freed: u64,
}

impl Queue {
    /// Removes the work of jobs finished at least `after` before `now`: everything in
    /// their directory but `job.log` (a Freqtrade backtest leaves its rendered config, a
    /// copy of the strategy, `user_data/` and its result files there). The result itself
    /// is in the job's record and on the strategy's version; the job and its log stay
    /// until `[queue] keep` forgets them. A queued or running job is never touched.
    pub fn prune_work(&self, after: chrono::Duration, now: chrono::DateTime<Utc>) -> QueuePruned {
        let finished: Vec<String> = self
            .state
            .lock()
            .expect("queue lock")
            .jobs
            .iter()
            .filter(|j| j.state.is_finished())
            .filter(|j| j.finished_at.is_some_and(|at| at + after <= now))
            .map(|j| j.id.clone())
            .collect();
        let mut report = QueuePruned::default();
        for id in finished {
            let Ok(entries) = std::fs::read_dir(self.dir.join(&id)) else {
                continue;
            };
            let mut pruned = false;
            for entry in entries.flatten() {
                if entry.file_name() == "job.log" {
                    continue;
                }
                let path = entry.path();
                let bytes = crate::datadir::disk_bytes(&path);
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match removed {
                    Ok(()) => {
                        report.bytes_freed += bytes;
                        pruned = true;
                    }
                    Err(e) => {
                        warn!(job = %id, path = %path.display(), error = %e, "cannot remove a finished job's work")
                    }
                }
            }
            report.jobs += usize::from(pruned);
        }
        report
    }
}

/// Memory available to start a job (the kernel's MemAvailable), in MB; unknown counts
/// as enough (a guard must not stop the queue on a system without /proc).
fn free_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kb| kb / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn params() -> BacktestParams {
        BacktestParams {
            id: StrategyId(uuid::Uuid::new_v4()),
            days: None,
            timerange: None,
            walk_forward: None,
            epochs: None,
            pairs: None,
            through_mem: false,
        }
    }

    fn queue(dir: &Path) -> Arc<Queue> {
        let settings = QueueSettings {
            min_free_mb: 0,
            ..QueueSettings::default()
        };
        Queue::open(dir, settings, Arc::new(EventBus::new(64))).unwrap()
    }

    fn submit(q: &Queue) -> QueueJob {
        q.submit(
            QueueJobKind::Backtest,
            StrategyId(uuid::Uuid::new_v4()),
            "s".into(),
            params(),
        )
    }

    async fn wait_for(q: &Queue, id: &str, state: QueueJobState) -> QueueJob {
        let started = Instant::now();
        loop {
            let job = q.get(id).unwrap();
            if job.state == state {
                return job;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{job:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn result_of(job: &QueueJob) -> BacktestResult {
        serde_json::from_value(serde_json::json!({
            "measured": true, "jobId": job.id, "strategyId": job.strategy_id, "version": "1.0.0",
            "engine": "native", "engineVersion": "test", "pairs": [], "timeframe": "5m",
            "dataFrom": "2026-01-01T00:00:00Z", "dataTo": "2026-01-02T00:00:00Z",
            "parameters": {}, "configHash": "", "strategyHash": "",
            "figures": {"trades": 0, "wins": 0, "losses": 0, "winRate": 0.0, "profitAbs": 0.0,
                "profitPct": 0.0, "maxDrawdown": 0.0, "maxDrawdownAbs": 0.0,
                "startingBalance": 1000.0, "finalBalance": 1000.0},
            "equity": [], "validation": {"status": "failed", "reasons": []},
            "finishedAt": "2026-01-02T00:00:00Z", "seconds": 0.0
        }))
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_cap_of_one_two_jobs_run_one_after_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path());
        let spans: Arc<Mutex<Vec<(String, Instant, Instant)>>> = Arc::default();
        let seen = spans.clone();
        q.set_runner(Arc::new(move |job, ctx| {
            let start = Instant::now();
            ctx.progress(1, 2, "half way");
            std::thread::sleep(Duration::from_millis(300));
            seen.lock()
                .unwrap()
                .push((job.id.clone(), start, Instant::now()));
            Ok(result_of(job))
        }));
        q.spawn();
        let (a, b) = (submit(&q), submit(&q));
        assert_eq!(q.list(None).jobs.len(), 2);
        wait_for(&q, &a.id, QueueJobState::Succeeded).await;
        let done = wait_for(&q, &b.id, QueueJobState::Succeeded).await;
        assert!(done.result.is_some() && done.started_at.is_some());
        let spans = spans.lock().unwrap();
        assert_eq!(spans[0].0, a.id, "in the order queued");
        assert!(
            spans[1].1 >= spans[0].2,
            "the second started after the first ended"
        );
        // Both are in the history, as they ended.
        let reopened = queue(dir.path());
        assert_eq!(reopened.get(&b.id).unwrap().state, QueueJobState::Succeeded);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_ends_the_running_process_group_and_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path());
        let pids = dir.path().join("pids");
        let file = pids.clone();
        q.set_runner(Arc::new(move |_job, ctx| {
            let mut c = Command::new("sh");
            // A child of the child: the group, not just the leader, must end.
            c.arg("-c").arg(format!(
                "sleep 60 & echo $! > {}; echo started; wait",
                file.display()
            ));
            ctx.run(c, "a long sleep")
                .map(|()| unreachable!("cancelled"))
        }));
        q.spawn();
        let job = submit(&q);
        wait_for(&q, &job.id, QueueJobState::Running).await;
        let started = Instant::now();
        while !pids.exists() || std::fs::read_to_string(&pids).unwrap().trim().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let grandchild: i32 = std::fs::read_to_string(&pids)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        q.cancel(&job.id).unwrap();
        let cancelled = wait_for(&q, &job.id, QueueJobState::Cancelled).await;
        assert_eq!(cancelled.error.as_deref(), Some("cancelled while it ran"));
        let gone = Instant::now();
        while std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
            .is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(
                gone.elapsed() < Duration::from_secs(10),
                "the group's sleep lives on"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            std::fs::read_to_string(&cancelled.log_file)
                .unwrap()
                .contains("started")
        );
        assert_eq!(
            queue(dir.path()).get(&job.id).unwrap().state,
            QueueJobState::Cancelled
        );
        // A queued job is cancelled at once; an ended one cannot be.
        assert!(q.cancel(&job.id).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_process_that_dies_fails_the_job_with_its_last_log_lines() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path());
        q.set_runner(Arc::new(|_job, ctx| {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg("echo loading; echo 'OperationalException: no data for ETH/USDT' >&2; exit 3");
            ctx.run(c, "freqtrade backtesting").map(|()| unreachable!())
        }));
        q.spawn();
        let job = submit(&q);
        let failed = wait_for(&q, &job.id, QueueJobState::Failed).await;
        let error = failed.error.unwrap();
        assert!(
            error.contains("freqtrade backtesting failed (exit status: 3)"),
            "{error}"
        );
        assert!(
            error.contains("OperationalException: no data for ETH/USDT"),
            "{error}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_finished_jobs_work_is_removed_after_its_time_and_its_log_kept() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path());
        q.set_runner(Arc::new(|_job, ctx| {
            let work = ctx.dir.join("freqtrade/user_data/backtest_results");
            std::fs::create_dir_all(&work).unwrap();
            std::fs::write(work.join("result.zip"), vec![0u8; 10_000]).unwrap();
            ctx.log("backtest done");
            Err("no trades".into())
        }));
        q.spawn();
        let job = submit(&q);
        let failed = wait_for(&q, &job.id, QueueJobState::Failed).await;
        let finished = failed.finished_at.unwrap();
        let job_dir = dir.path().join(&job.id);
        assert!(job_dir.join("freqtrade").exists());
        let week = chrono::Duration::days(7);
        // Not yet: finished less than a week before.
        let report = q.prune_work(week, finished + chrono::Duration::days(6));
        assert_eq!((report.jobs, report.bytes_freed), (0, 0));
        assert!(job_dir.join("freqtrade").exists());
        let report = q.prune_work(week, finished + week);
        assert_eq!(report.jobs, 1);
        assert!(report.bytes_freed >= 10_000, "{report:?}");
        assert!(!job_dir.join("freqtrade").exists());
        assert!(job_dir.join("job.log").exists(), "its log is kept");
        assert_eq!(
            q.get(&job.id).unwrap().state,
            QueueJobState::Failed,
            "and its record"
        );
        // A second run finds nothing more to do.
        assert_eq!(q.prune_work(week, finished + week).jobs, 0);
        // A queued job is never touched, however old (a queue that runs nothing).
        let idle_dir = tempfile::tempdir().unwrap();
        let idle = queue(idle_dir.path());
        let queued = submit(&idle);
        let work = idle_dir.path().join(&queued.id).join("freqtrade");
        std::fs::create_dir_all(&work).unwrap();
        assert_eq!(
            idle.prune_work(week, Utc::now() + chrono::Duration::days(365))
                .jobs,
            0
        );
        assert!(work.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_running_when_memd_stopped_is_interrupted_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path());
        q.set_runner(Arc::new(|job, _ctx| {
            std::thread::sleep(Duration::from_secs(2));
            Ok(result_of(job))
        }));
        q.spawn();
        let running = submit(&q);
        let waiting = submit(&q);
        wait_for(&q, &running.id, QueueJobState::Running).await;
        // Running in memory comes a moment before it is on disk (the record is written
        // outside the queue's lock): wait for the record, as a crash would find it.
        let history = dir.path().join("jobs.jsonl");
        let started = Instant::now();
        while !std::fs::read_to_string(&history)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(&running.id) && l.contains("\"state\":\"running\""))
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "never recorded running"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Another daemon opens the history while the first one's job runs: as after a crash.
        let after = queue(dir.path());
        let interrupted = after.get(&running.id).unwrap();
        assert_eq!(interrupted.state, QueueJobState::Interrupted);
        assert!(interrupted.error.unwrap().contains("memd stopped"));
        assert_eq!(after.get(&waiting.id).unwrap().state, QueueJobState::Queued);
    }
}
