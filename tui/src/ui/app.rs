//! The UI's state and what keys and daemon updates do to it. No terminal here: a key goes
//! in, the state changes, and [`Command`]s for the connection task come out, so all of
//! it is tested with plain values (see the tests at the end, and `view`'s snapshots).

use super::keys::{self, Action, Context, Key, Keymap};
use super::native_deploy::DeployRunner;
use chrono::{DateTime, Utc};
use mem_protocol::alerts::AlertStatus;
use mem_protocol::backtest::{BacktestParams, BacktestResult, QueueJob, QueueJobState, QueueList};
use mem_protocol::deploy::{
    DeployParams, DeployedList, DeployedStrategy, DeploymentId, DeploymentStatus, DeploymentsUsage,
    LogTail, StopMode, StopParams,
};
use mem_protocol::events::{Event, RegistryChange};
use mem_protocol::methods::{SortKey, StatusReport};
use mem_protocol::recommend::{
    AppliedConditions, ConditionsSource, MarketConditions, Recommendations, Trend, Volatility,
};
use mem_protocol::registry::{
    ParameterHistory, ParameterUpdate, PerformanceReport, UpdateParameterParams, VersionList,
};
use mem_protocol::search;
use mem_protocol::strategy::{StrategyDetail, StrategyId, StrategyStatus, StrategySummary};
use mem_protocol::{Access, ErrorCode};
use serde_json::Value;
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Log lines kept per deployment.
pub const LOG_LINES_KEPT: usize = 500;

/// The views, in tab order; the number keys 1-8 pick them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Dashboard,
    Strategies,
    Deployed,
    Recommendations,
    Memory,
    Model,
    Jobs,
    Backtests,
}

impl View {
    pub const ALL: [View; 8] = [
        View::Dashboard,
        View::Strategies,
        View::Deployed,
        View::Recommendations,
        View::Memory,
        View::Model,
        View::Jobs,
        View::Backtests,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Dashboard => "Dashboard",
            View::Strategies => "Strategies",
            View::Deployed => "Deployed",
            View::Recommendations => "Recommend",
            View::Memory => "Memory",
            View::Model => "Model",
            View::Jobs => "Jobs",
            View::Backtests => "Backtests",
        }
    }

    /// The tab's title where the full ones do not fit in one line (80 columns).
    pub fn short_title(self) -> &'static str {
        match self {
            View::Dashboard => "Dash",
            View::Strategies => "Strats",
            View::Recommendations => "Recom",
            other => other.title(),
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    /// The daemon method a data panel (Memory, Model, Jobs) reads.
    pub fn panel_method(self) -> Option<&'static str> {
        match self {
            View::Memory => Some("mem.decisions"),
            View::Model => Some("ml.history"),
            View::Jobs => Some("jobs.list"),
            _ => None,
        }
    }
}

/// What the connection task is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Deploy(DeployParams),
    Stop(StopParams),
    Restart(StopParams),
    /// Metadata, versions, live metrics and the P&L curve of one strategy.
    LoadDetail(StrategyId),
    /// The last lines of a strategy's bot log.
    LoadLogs(StrategyId),
    Recommend(MarketConditions),
    /// Fresh CPU and memory of the deployments.
    RefreshDeployed,
    /// Today's P&L of the strategies that trade.
    LoadTodayPnl(Vec<StrategyId>),
    /// A data panel's method (Memory, Model, Jobs).
    LoadPanel(View),
    RunJob(String),
    /// A person has seen that a deployment failed (`deployments.acknowledge`).
    Acknowledge(DeploymentId),
    /// The candle file a native deployment would read (the deploy dialog).
    LoadFeed(mem_protocol::deploy::FeedParams),
    /// A strategy's parameter changes (the parameter editor).
    LoadParameterHistory(StrategyId),
    /// Change one parameter (the parameter editor's submit).
    UpdateParameter(UpdateParameterParams),
    /// `queue.list`: the Backtests view's queue (a memd whose snapshot had none, `u`).
    LoadQueue,
    /// `backtest.run`: queue a backtest (`b`).
    Backtest(BacktestParams),
    /// `queue.cancel`: cancel a queued or running job (`c`, confirmed).
    CancelQueueJob(String),
}

/// The connection task's news.
#[derive(Debug, Clone)]
pub enum Update {
    /// A session began: the subscription's snapshot. Events keep all of it current from
    /// here on (the periodic ones, `daemon.pulse`, `mem.metrics` and `deployments.usage`,
    /// the figures no change announces), so nothing is polled.
    Connected {
        access: Access,
        status: Box<StatusReport>,
        strategies: Vec<Arc<StrategySummary>>,
        /// Every deployment, ended ones included, with CPU and memory.
        deployed: DeployedList,
        /// MEM's figures, if the snapshot had them.
        metrics: Option<Box<mem_protocol::mem::MemMetrics>>,
        /// The data panels the snapshot filled (`mem.decisions`, `ml.history`, `jobs.list`
        /// answers); the others are loaded as their view comes on screen.
        panels: Vec<(View, Value)>,
        /// The queue (`queue.list`), if the snapshot had it; `queue.changed` events keep
        /// it current.
        queue: Option<QueueList>,
    },
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    Event(Box<Event>),
    /// The snapshot's market conditions (after `Connected`; later ones come as
    /// `market.changed` events).
    Market(Box<mem_protocol::market::MarketState>),
    /// The snapshot's newest alerts as they stand (after `Connected`; `alert.changed`
    /// events keep them current).
    Alerts(Vec<AlertStatus>),
    /// `strategies.deployed`: fresh CPU and memory (a view's data on entering it).
    Deployed(DeployedList),
    Detail(StrategyId, Result<Box<StrategyData>, String>),
    Logs(StrategyId, Result<LogTail, String>),
    /// The answer to the conditions asked for (answers can arrive out of order).
    Recommendations(MarketConditions, Result<Recommendations, Failure>),
    /// Today's closed P&L of each strategy asked for (in its own stake currency).
    TodayPnl(Vec<(StrategyId, f64)>),
    Panel(View, Result<Value, Failure>),
    /// The outcome of a deploy, stop, restart or job run.
    Done(Result<String, String>),
    /// `market.feed`'s answer to what was asked (the native deploy dialog).
    Feed(
        mem_protocol::deploy::FeedParams,
        Result<mem_protocol::deploy::FeedInfo, String>,
    ),
    /// A strategy's parameter changes, for the parameter editor.
    ParameterHistory(StrategyId, Result<ParameterHistory, String>),
    /// The answer to the parameter editor's submit.
    ParameterUpdated(StrategyId, Result<ParameterUpdate, Failure>),
    /// `queue.list`'s answer (the Backtests view).
    Queue(Result<QueueList, Failure>),
}

/// A daemon error, with its code when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: Option<ErrorCode>,
    pub message: String,
}

/// What the Strategies detail pane shows of one strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyData {
    pub detail: StrategyDetail,
    pub versions: Option<VersionList>,
    pub performance: Option<PerformanceReport>,
    /// Cumulative P&L after each closed trade, oldest first (the sparkline).
    pub equity: Vec<f64>,
    /// The latest backtest memd measured, from the versions ([`measured_result`]).
    pub backtest: Option<Box<BacktestResult>>,
}

/// The backtest memd measured of a strategy, as its versions keep it
/// (`backtest_results`): the current version's, else the newest version's that has one.
/// Hand-typed results (no `measured` member, another shape) are not measured ones.
pub fn measured_result(versions: &VersionList) -> Option<BacktestResult> {
    let measured = |v: &mem_protocol::registry::VersionRecord| {
        if v.backtest_results.get("measured") != Some(&Value::Bool(true)) {
            return None;
        }
        serde_json::from_value::<BacktestResult>(Value::Object(v.backtest_results.clone())).ok()
    };
    let current = versions
        .versions
        .iter()
        .find(|v| v.version_number == versions.current_version)
        .and_then(measured);
    current.or_else(|| versions.versions.iter().rev().find_map(measured))
}

/// The connection as the header shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Connecting,
    Connected,
    Disconnected {
        reason: String,
        retry_at: DateTime<Utc>,
    },
}

/// Severity of the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Success,
    Error,
}

/// The last action's outcome, at the bottom of the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    pub text: String,
    pub tone: Tone,
    pub at: DateTime<Utc>,
}

/// Something drawn over the view that takes the keys first.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help,
    Confirm(Confirm),
    /// The recent messages in full, newest first, from the `scroll`th.
    Messages {
        scroll: usize,
    },
}

/// Messages kept for the messages overlay.
pub const MESSAGES_KEPT: usize = 200;

/// Alerts kept for the Dashboard (memd's snapshot has its newest 20).
pub const ALERTS_KEPT: usize = 20;

/// How long an error stays in the status line (the messages overlay keeps it).
pub const ERROR_SHOWN_SECS: i64 = 10;

/// A confirmation dialog.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    Deploy {
        id: StrategyId,
        display_name: String,
        /// What the operator must type to deploy live: the strategy's name.
        name: String,
        live: bool,
        typed: String,
        /// A bot's dialog (dry-run or live, a port), or a native strategy's (its feed).
        runner: DeployRunner,
    },
    Stop {
        id: StrategyId,
        display_name: String,
        drain: bool,
    },
    Restart {
        id: StrategyId,
        display_name: String,
    },
    /// Cancel a queue job (a running one's processes are ended).
    CancelJob {
        id: String,
        /// `backtest of Freqtrade MACD Hunter`.
        what: String,
        running: bool,
    },
}

/// Which strategies the Strategies table lists (`f` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyFilter {
    All,
    Active,
    MemEnabled,
    Deployed,
    Experimental,
    Deprecated,
    Archived,
}

impl StrategyFilter {
    const CYCLE: [StrategyFilter; 7] = [
        StrategyFilter::All,
        StrategyFilter::Active,
        StrategyFilter::MemEnabled,
        StrategyFilter::Deployed,
        StrategyFilter::Experimental,
        StrategyFilter::Deprecated,
        StrategyFilter::Archived,
    ];

    pub fn label(self) -> &'static str {
        match self {
            StrategyFilter::All => "all",
            StrategyFilter::Active => "active",
            StrategyFilter::MemEnabled => "MEM-enabled",
            StrategyFilter::Deployed => "deployed",
            StrategyFilter::Experimental => "experimental",
            StrategyFilter::Deprecated => "deprecated",
            StrategyFilter::Archived => "archived",
        }
    }

    fn keeps(self, s: &StrategySummary) -> bool {
        match self {
            StrategyFilter::All => true,
            StrategyFilter::Active => s.status == StrategyStatus::Active,
            StrategyFilter::MemEnabled => s.mem_enabled,
            StrategyFilter::Deployed => s.is_deployed,
            StrategyFilter::Experimental => s.status == StrategyStatus::Experimental,
            StrategyFilter::Deprecated => s.status == StrategyStatus::Deprecated,
            StrategyFilter::Archived => s.status == StrategyStatus::Archived,
        }
    }
}

/// Which deployments the Deployed table lists (`f` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployFilter {
    /// Everything running or about to run, and the failures not yet acknowledged (so are
    /// the dry-run and live filters, each of its kind).
    Active,
    DryRun,
    Live,
    Failed,
    /// Also the stopped ones.
    All,
}

impl DeployFilter {
    const CYCLE: [DeployFilter; 5] = [
        DeployFilter::Active,
        DeployFilter::DryRun,
        DeployFilter::Live,
        DeployFilter::Failed,
        DeployFilter::All,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DeployFilter::Active => "active",
            DeployFilter::DryRun => "dry-run",
            DeployFilter::Live => "live",
            DeployFilter::Failed => "failed",
            DeployFilter::All => "all",
        }
    }

    fn keeps(self, d: &DeployedStrategy) -> bool {
        let failed = matches!(
            d.status,
            DeploymentStatus::Failed | DeploymentStatus::Crashed
        );
        match self {
            // Failures stay in sight until a person acknowledges them.
            DeployFilter::Active => d.shown_by_default(),
            DeployFilter::DryRun => d.shown_by_default() && d.dry_run,
            DeployFilter::Live => d.shown_by_default() && !d.dry_run,
            DeployFilter::Failed => failed || d.last_error.is_some() && !d.status.is_active(),
            DeployFilter::All => true,
        }
    }
}

/// The sort orders `o` cycles through in the Strategies table.
pub const SORTS: [SortKey; 5] = [
    SortKey::Name,
    SortKey::Sharpe,
    SortKey::WinRate,
    SortKey::TotalPnl,
    SortKey::LastUsed,
];

pub fn sort_label(key: SortKey) -> &'static str {
    match key {
        SortKey::Name => "name",
        SortKey::Sharpe => "Sharpe",
        SortKey::WinRate => "win rate",
        SortKey::TotalPnl => "P&L",
        SortKey::LastUsed => "last used",
    }
}

/// A scrolling list's cursor. The offset is kept between frames (a `Cell`, since drawing
/// only reads the state) so the selection moves within the page before the page moves.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cursor {
    pub selected: usize,
    pub offset: Cell<usize>,
}

impl Cursor {
    /// Applies a movement to a list of `len` rows; `page` is the last drawn height.
    /// Returns false (and moves nothing) for any other action.
    pub(crate) fn on_action(&mut self, action: Option<Action>, len: usize, page: usize) -> bool {
        let last = len.saturating_sub(1);
        let page = page.max(1);
        self.selected = match action {
            Some(Action::Down) => (self.selected + 1).min(last),
            Some(Action::Up) => self.selected.saturating_sub(1),
            Some(Action::PageDown) => (self.selected + page).min(last),
            Some(Action::PageUp) => self.selected.saturating_sub(page),
            Some(Action::Top) => 0,
            Some(Action::Bottom) => last,
            _ => return false,
        };
        true
    }

    fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    /// The first row to draw so that the selection is visible in `height` rows.
    pub fn window(&self, len: usize, height: usize) -> usize {
        let height = height.max(1);
        let mut offset = self.offset.get().min(len.saturating_sub(height));
        if self.selected < offset {
            offset = self.selected;
        } else if self.selected >= offset + height {
            offset = self.selected + 1 - height;
        }
        self.offset.set(offset);
        offset
    }
}

/// The Strategies view.
#[derive(Debug, Default)]
pub struct StrategiesView {
    /// The registry, in name order, as the daemon announced it.
    pub all: Vec<Arc<StrategySummary>>,
    /// The lowercase search text of each of `all` (same order), so that a keystroke in
    /// the search scans prepared text instead of formatting 10,000 strings.
    haystack: Vec<Box<str>>,
    /// Indices into `all` that pass the filter and search, in the chosen order.
    pub rows: Vec<usize>,
    pub cursor: Cursor,
    pub search: String,
    /// Typing a search: keys go into `search`.
    pub searching: bool,
    pub filter: Option<StrategyFilter>,
    pub sort: Option<SortKey>,
    /// The detail of the selected strategy, when loaded.
    pub detail: Option<(StrategyId, Result<Box<StrategyData>, String>)>,
    /// Enter: the detail takes the whole body (narrow terminals).
    pub detail_open: bool,
    /// Lines the open detail is scrolled down.
    pub detail_scroll: u16,
    /// `p`: the parameter editor of the selected strategy takes the view and the keys.
    pub editor: Option<super::params::ParamEditor>,
}

impl StrategiesView {
    pub fn filter(&self) -> StrategyFilter {
        self.filter.unwrap_or(StrategyFilter::All)
    }

    pub fn sort(&self) -> SortKey {
        self.sort.unwrap_or(SortKey::Name)
    }

    pub fn selected(&self) -> Option<&Arc<StrategySummary>> {
        self.rows.get(self.cursor.selected).map(|&i| &self.all[i])
    }

    /// Replaces the whole list (a new session's snapshot).
    pub fn replace_all(&mut self, all: Vec<Arc<StrategySummary>>) {
        self.haystack = all.iter().map(|s| search::search_text(s)).collect();
        self.all = all;
        self.refresh_rows();
    }

    /// Removes a strategy and, unless it was removed for good, puts its new entry in name
    /// order.
    fn replace_one(&mut self, id: StrategyId, new: Option<Arc<StrategySummary>>) {
        if let Some(i) = self.all.iter().position(|s| s.id == id) {
            self.all.remove(i);
            self.haystack.remove(i);
        }
        if let Some(s) = new {
            let key = s.display_name.to_lowercase();
            let at = self
                .all
                .partition_point(|x| x.display_name.to_lowercase() < key);
            self.haystack.insert(at, search::search_text(&s));
            self.all.insert(at, s);
        }
        self.refresh_rows();
    }

    /// Whether the rows are in search order (best match first): a search with no sort
    /// chosen.
    pub fn by_relevance(&self) -> bool {
        self.sort.is_none() && !search::query_words(&self.search).is_empty()
    }

    /// Recomputes the rows after a change of data, filter, search or sort, keeping the
    /// selected strategy selected when it is still listed.
    pub fn refresh_rows(&mut self) {
        let keep = self.selected().map(|s| s.id);
        let words = search::query_words(&self.search);
        let filter = self.filter();
        let mut scores = Vec::new();
        self.rows = (0..self.all.len())
            .filter(|&i| {
                if !filter.keeps(&self.all[i]) {
                    return false;
                }
                if words.is_empty() {
                    return true;
                }
                let score = search::score(&self.haystack[i], &words);
                scores.extend(score);
                score.is_some()
            })
            .collect();
        if self.by_relevance() {
            // Best first; a stable sort keeps name order among equals.
            let mut ranked: Vec<(u32, usize)> =
                scores.into_iter().zip(self.rows.drain(..)).collect();
            ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
            self.rows = ranked.into_iter().map(|(_, i)| i).collect();
        }
        let all = &self.all;
        let sort = self.sort();
        let key = |i: &usize| -> f64 {
            let s = &all[*i];
            match sort {
                SortKey::Sharpe => s.sharpe_ratio.unwrap_or(f64::NEG_INFINITY),
                SortKey::WinRate => s.win_rate.unwrap_or(f64::NEG_INFINITY),
                SortKey::TotalPnl => s.total_pnl.unwrap_or(f64::NEG_INFINITY),
                SortKey::LastUsed => s
                    .last_used_at
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map_or(f64::NEG_INFINITY, |t| t.timestamp_millis() as f64),
                SortKey::Name => 0.0,
            }
        };
        if sort != SortKey::Name {
            // Best first; a stable sort keeps name order among equals.
            self.rows.sort_by(|a, b| key(b).total_cmp(&key(a)));
        }
        self.cursor.selected = keep
            .and_then(|id| self.rows.iter().position(|&i| self.all[i].id == id))
            .unwrap_or(self.cursor.selected);
        self.cursor.clamp(self.rows.len());
    }
}

/// The Deployed view.
#[derive(Debug, Default)]
pub struct DeployedView {
    /// Every deployment the daemon told of, ended ones included.
    pub all: Vec<DeployedStrategy>,
    pub filter: Option<DeployFilter>,
    pub cursor: Cursor,
    pub logs: HashMap<DeploymentId, VecDeque<String>>,
    /// Log lines scrolled back from the newest (0: follow the tail).
    pub log_scroll: usize,
    /// `l`: the log pane takes the movement keys.
    pub log_focus: bool,
}

impl DeployedView {
    pub fn filter(&self) -> DeployFilter {
        self.filter.unwrap_or(DeployFilter::Active)
    }

    pub fn rows(&self) -> Vec<&DeployedStrategy> {
        let filter = self.filter();
        self.all.iter().filter(|d| filter.keeps(d)).collect()
    }

    pub fn selected(&self) -> Option<&DeployedStrategy> {
        self.rows().get(self.cursor.selected).copied()
    }

    fn upsert(&mut self, d: DeployedStrategy) {
        match self
            .all
            .iter_mut()
            .find(|x| x.deployment_id == d.deployment_id)
        {
            Some(x) => {
                // `deployment.changed` carries no CPU or memory figures: keep the last ones
                // (`deployments.usage`, the snapshot, `strategies.deployed`) while the
                // process lives; an ended deployment has none.
                let (cpu, rss) = (x.cpu_percent, x.rss_bytes);
                *x = d;
                if x.status.is_active() {
                    x.cpu_percent = x.cpu_percent.or(cpu);
                    x.rss_bytes = x.rss_bytes.or(rss);
                } else {
                    x.cpu_percent = None;
                    x.rss_bytes = None;
                }
            }
            None => self.all.push(d),
        }
        self.all.sort_by_key(|d| d.started_at);
    }

    /// `deployments.usage`: the CPU and memory of the bots that run.
    fn apply_usage(&mut self, usage: DeploymentsUsage) {
        for u in usage.deployments {
            if let Some(d) = self
                .all
                .iter_mut()
                .find(|d| d.deployment_id == u.deployment_id)
            {
                d.cpu_percent = Some(u.cpu_percent);
                d.rss_bytes = Some(u.rss_bytes);
            }
        }
    }

    fn push_logs(&mut self, deployment: DeploymentId, lines: impl IntoIterator<Item = String>) {
        let log = self.logs.entry(deployment).or_default();
        log.extend(lines);
        while log.len() > LOG_LINES_KEPT {
            log.pop_front();
        }
    }
}

/// The Recommendations view.
#[derive(Debug, Default)]
pub struct RecommendView {
    /// None: the daemon's computed conditions.
    pub trend: Option<Trend>,
    pub volatility: Option<Volatility>,
    pub result: Option<Result<Recommendations, Failure>>,
    pub cursor: Cursor,
    /// A request is under way.
    pub loading: bool,
}

impl RecommendView {
    pub fn conditions(&self) -> MarketConditions {
        MarketConditions {
            trend: self.trend,
            volatility: self.volatility,
            ..Default::default()
        }
    }

    pub fn rows(&self) -> &[mem_protocol::recommend::Recommendation] {
        match &self.result {
            Some(Ok(r)) => &r.recommendations,
            _ => &[],
        }
    }
}

/// Finished jobs kept in the Backtests view (as many as `queue.list` answers by default).
pub const QUEUE_FINISHED_KEPT: usize = 50;

/// The Backtests view: the queue, kept current by `queue.changed` events.
#[derive(Debug, Default)]
pub struct BacktestsView {
    /// `queue.list` (running, then queued in order, then finished newest first), or why
    /// there is none; None until the snapshot or an answer brings it.
    pub queue: Option<Result<QueueList, Failure>>,
    pub cursor: Cursor,
    /// Enter: the selected job's result takes the whole body.
    pub detail_open: bool,
    /// Lines the open result is scrolled down.
    pub detail_scroll: u16,
}

impl BacktestsView {
    /// The jobs, in the order they are listed.
    pub fn jobs(&self) -> &[QueueJob] {
        match &self.queue {
            Some(Ok(list)) => &list.jobs,
            _ => &[],
        }
    }

    pub fn selected(&self) -> Option<&QueueJob> {
        self.jobs().get(self.cursor.selected)
    }

    /// A new list (the snapshot, an answer), keeping the selected job selected.
    fn replace(&mut self, queue: Result<QueueList, Failure>) {
        let keep = self.selected().map(|j| j.id.clone());
        self.queue = Some(queue);
        self.reselect(keep);
    }

    /// A job as it now stands (`queue.changed`): in its place by state (running, queued
    /// in the order they were queued, finished newest first), the selection kept.
    fn upsert(&mut self, job: QueueJob) {
        let keep = self.selected().map(|j| j.id.clone());
        let Some(Ok(list)) = &mut self.queue else {
            // No list yet: the snapshot or the view's load brings the job with the rest.
            return;
        };
        list.jobs.retain(|j| j.id != job.id);
        list.jobs.push(job);
        list.jobs.sort_by_key(queue_order);
        let mut finished = 0;
        list.jobs.retain(|j| {
            finished += usize::from(j.state.is_finished());
            finished <= QUEUE_FINISHED_KEPT || !j.state.is_finished()
        });
        self.reselect(keep);
    }

    fn reselect(&mut self, keep: Option<String>) {
        if let Some(i) = keep.and_then(|id| self.jobs().iter().position(|j| j.id == id)) {
            self.cursor.selected = i;
        }
        self.cursor.clamp(self.jobs().len());
    }
}

/// The queue's order: running, then queued (first queued first), then finished (newest
/// first), as `queue.list` answers.
fn queue_order(job: &QueueJob) -> (u8, i64) {
    let ms = |t: Option<DateTime<Utc>>| t.unwrap_or(job.queued_at).timestamp_millis();
    match job.state {
        QueueJobState::Running => (0, ms(job.started_at)),
        QueueJobState::Queued => (1, job.queued_at.timestamp_millis()),
        _ => (2, -ms(job.finished_at)),
    }
}

/// A view whose data is one daemon method's answer (Memory, Model, Jobs).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Panel {
    pub data: Option<Result<Value, Failure>>,
    pub cursor: Cursor,
}

/// Everything the screen shows, and the UI's own state.
#[derive(Debug)]
pub struct App {
    pub view: View,
    pub connection: Connection,
    /// What the daemon granted; controls are hidden unless `Control`.
    pub access: Access,
    /// The clock the screen shows (set on each tick, fixed in tests).
    pub now: DateTime<Utc>,
    /// `daemon.status` from the snapshot, its figures kept current by `daemon.pulse`.
    pub status: Option<StatusReport>,
    /// MEM's figures, for the Dashboard: the snapshot's, then each `mem.metrics` event's.
    pub metrics: Option<mem_protocol::mem::MemMetrics>,
    /// The market conditions and how old their candles are: the snapshot's, then each
    /// `market.changed` event's (the age grows with [`App::now`]).
    pub market: Option<mem_protocol::market::MarketState>,
    /// The newest alerts as they stand, oldest first (at most [`ALERTS_KEPT`]): the
    /// snapshot's, then each `alert.changed` event's, for the Dashboard.
    pub alerts: VecDeque<AlertStatus>,
    pub strategies: StrategiesView,
    pub deployed: DeployedView,
    pub recommend: RecommendView,
    pub panels: HashMap<View, Panel>,
    pub backtests: BacktestsView,
    /// Today's closed P&L per strategy, each in its stake currency.
    pub today_pnl: Option<Vec<(StrategyId, f64)>>,
    /// The UTC day every strategy's P&L was last asked for: a new day asks again.
    pnl_day: Option<chrono::NaiveDate>,
    pub overlay: Option<Overlay>,
    pub status_line: Option<StatusLine>,
    /// Every message the status line showed, oldest first (at most [`MESSAGES_KEPT`]).
    pub messages: VecDeque<StatusLine>,
    /// Rows of the last drawn list, for PgUp/PgDn.
    pub page: Cell<usize>,
    pub quit: bool,
    /// What the keys do (the defaults, or with `keys.toml`'s replacements).
    pub keys: Keymap,
}

impl App {
    pub fn new(now: DateTime<Utc>) -> App {
        App {
            view: View::Dashboard,
            connection: Connection::Connecting,
            access: Access::View,
            now,
            status: None,
            metrics: None,
            market: None,
            alerts: VecDeque::new(),
            strategies: StrategiesView::default(),
            deployed: DeployedView::default(),
            recommend: RecommendView::default(),
            panels: HashMap::new(),
            backtests: BacktestsView::default(),
            today_pnl: None,
            pnl_day: None,
            overlay: None,
            status_line: None,
            messages: VecDeque::new(),
            page: Cell::new(10),
            quit: false,
            keys: Keymap::default(),
        }
    }

    /// Today's P&L per stake currency (a strategy's: its newest deployment's), in the
    /// order the currencies first appear; amounts in different currencies are never added.
    pub fn today_pnl_by_currency(&self) -> Option<Vec<(Option<String>, f64)>> {
        let pnl = self.today_pnl.as_ref()?;
        let mut out: Vec<(Option<String>, f64)> = Vec::new();
        for (id, amount) in pnl {
            let currency = self
                .deployed
                .all
                .iter()
                .rev()
                .filter(|d| d.strategy_id == *id)
                .find_map(|d| d.stats.stake_currency.clone());
            match out.iter_mut().find(|(c, _)| *c == currency) {
                Some((_, total)) => *total += amount,
                None => out.push((currency, *amount)),
            }
        }
        Some(out)
    }

    pub fn is_connected(&self) -> bool {
        self.connection == Connection::Connected
    }

    pub(crate) fn say(&mut self, tone: Tone, text: impl Into<String>) {
        let line = StatusLine {
            text: text.into(),
            tone,
            at: self.now,
        };
        if self.messages.len() == MESSAGES_KEPT {
            self.messages.pop_front();
        }
        self.messages.push_back(line.clone());
        self.status_line = Some(line);
    }

    /// What the status line shows now: the last message, but an error only for
    /// [`ERROR_SHOWN_SECS`] (the messages overlay keeps it).
    pub fn visible_status(&self) -> Option<&StatusLine> {
        self.status_line
            .as_ref()
            .filter(|s| s.tone != Tone::Error || (self.now - s.at).num_seconds() < ERROR_SHOWN_SECS)
    }

    /// Applies one update from the connection task; returns follow-up commands.
    pub fn on_update(&mut self, update: Update) -> Vec<Command> {
        let mut commands = Vec::new();
        match update {
            Update::Connected {
                access,
                status,
                strategies,
                deployed,
                metrics,
                panels,
                queue,
            } => {
                let was_down = matches!(self.connection, Connection::Disconnected { .. });
                self.connection = Connection::Connected;
                self.access = access;
                self.status = Some(*status);
                self.strategies.replace_all(strategies);
                self.deployed.all = deployed.deployments;
                self.deployed.cursor.clamp(self.deployed.rows().len());
                if let Some(metrics) = metrics {
                    self.metrics = Some(*metrics);
                }
                let filled: Vec<View> = panels.iter().map(|(view, _)| *view).collect();
                for (view, value) in panels {
                    self.panels.entry(view).or_default().data = Some(Ok(value));
                }
                let had_queue = queue.is_some();
                if let Some(queue) = queue {
                    self.backtests.replace(Ok(queue));
                }
                if was_down {
                    self.say(Tone::Success, "reconnected to memd");
                }
                // The view's data, but what the snapshot just brought: the deployments
                // (with fresh CPU and memory) and the panels it filled.
                commands.extend(self.on_enter_view().into_iter().filter(|c| match c {
                    Command::RefreshDeployed => false,
                    Command::LoadPanel(view) => !filled.contains(view),
                    Command::LoadQueue => !had_queue,
                    _ => true,
                }));
                commands.push(self.load_today_pnl());
            }
            Update::Disconnected { reason, retry_in } => {
                self.connection = Connection::Disconnected {
                    reason,
                    retry_at: self.now + chrono::Duration::from_std(retry_in).unwrap_or_default(),
                };
                // A dialog cannot be confirmed without a daemon.
                if matches!(self.overlay, Some(Overlay::Confirm(_))) {
                    self.overlay = None;
                }
                self.param_editor_disconnected();
            }
            Update::Event(event) => commands.extend(self.on_event(*event)),
            Update::Deployed(list) => {
                for fresh in list.deployments {
                    if let Some(d) = self
                        .deployed
                        .all
                        .iter_mut()
                        .find(|d| d.deployment_id == fresh.deployment_id)
                    {
                        *d = fresh;
                    } else {
                        self.deployed.all.push(fresh);
                    }
                }
                self.deployed.all.sort_by_key(|d| d.started_at);
            }
            Update::Detail(id, result) => {
                self.strategies.detail = Some((id, result));
                commands.extend(self.deploy_dialog_detail(id));
            }
            Update::Feed(asked, result) => self.on_feed(asked, result),
            Update::Logs(id, result) => match result {
                Ok(tail) => {
                    let log = self.deployed.logs.entry(tail.deployment_id).or_default();
                    log.clear();
                    self.deployed.push_logs(tail.deployment_id, tail.lines);
                }
                Err(e) => self.say(Tone::Error, format!("logs of {id}: {e}")),
            },
            Update::Recommendations(asked, _) if asked != self.recommend.conditions() => {
                // An answer to conditions the operator has since changed.
            }
            Update::Recommendations(asked, result) => {
                self.recommend.loading = false;
                match &result {
                    Err(f) => self.say(Tone::Error, format!("recommendations: {}", f.message)),
                    Ok(r) => {
                        // In full in the messages overlay: the conditions and their reasons.
                        let why = r.conditions.computed.as_ref().map_or(String::new(), |c| {
                            format!(
                                " (trend: {}; volatility: {})",
                                c.trend_reason, c.volatility_reason
                            )
                        });
                        let text = format!(
                            "{}; scored with {}{why}",
                            r.message,
                            scored_with(&asked, &r.conditions)
                        );
                        self.say(Tone::Info, text);
                    }
                }
                self.recommend.result = Some(result);
                self.recommend.cursor.clamp(self.recommend.rows().len());
            }
            Update::TodayPnl(pnl) => {
                // The strategies asked about (all of them on connecting, one whose bot
                // closed a trade after): the others keep their figure.
                let today = self.today_pnl.get_or_insert_with(Vec::new);
                for (id, value) in pnl {
                    match today.iter_mut().find(|(known, _)| *known == id) {
                        Some(entry) => entry.1 = value,
                        None => today.push((id, value)),
                    }
                }
            }
            Update::Market(state) => self.market = Some(*state),
            Update::Alerts(alerts) => {
                self.alerts.clear();
                for alert in alerts {
                    self.on_alert(alert);
                }
            }
            Update::Panel(view, result) => {
                self.panels.entry(view).or_default().data = Some(result);
            }
            Update::Done(Ok(text)) => self.say(Tone::Success, text),
            Update::Done(Err(text)) => self.say(Tone::Error, text),
            Update::ParameterHistory(id, result) => self.on_parameter_history(id, result),
            Update::ParameterUpdated(id, result) => {
                commands.extend(self.on_parameter_updated(id, result));
            }
            Update::Queue(result) => self.backtests.replace(result),
        }
        commands
    }

    /// A queue job as it now stands: in the Backtests view; one that ended is also said
    /// on the status line (the error's first line; `m` and the view have it whole).
    fn on_queue_job(&mut self, job: QueueJob) {
        if job.state.is_finished() {
            let tone = match job.state {
                QueueJobState::Succeeded => Tone::Success,
                _ => Tone::Error,
            };
            let how = match (&job.result, &job.error) {
                (Some(r), _) => format!(
                    ": {} trades, profit {:+.2}%, validation {}",
                    r.figures.trades,
                    r.figures.profit_pct * 100.0,
                    crate::text::validation_status(r.validation.status)
                ),
                (None, Some(e)) => format!(": {}", e.lines().next().unwrap_or_default()),
                (None, None) => String::new(),
            };
            self.say(
                tone,
                format!(
                    "{} of {} {}{how}",
                    crate::text::queue_kind(job.kind),
                    job.strategy,
                    crate::text::queue_state(job.state)
                ),
            );
        }
        self.backtests.upsert(job);
    }

    /// An alert as it now stands: replaced where it is, or added in raise order; the
    /// oldest dropped past [`ALERTS_KEPT`].
    fn on_alert(&mut self, alert: AlertStatus) {
        if let Some(known) = self.alerts.iter_mut().find(|a| a.id == alert.id) {
            *known = alert;
            return;
        }
        let at = self
            .alerts
            .iter()
            .rposition(|a| a.raised_at <= alert.raised_at)
            .map_or(0, |i| i + 1);
        self.alerts.insert(at, alert);
        while self.alerts.len() > ALERTS_KEPT {
            self.alerts.pop_front();
        }
    }

    /// `daemon.pulse`, every 2 s: the daemon's and the host's figures; after midnight UTC,
    /// yesterday's P&L no longer counts.
    fn on_pulse(&mut self, pulse: mem_protocol::events::DaemonPulse) -> Option<Command> {
        if let Some(status) = self.status.as_mut() {
            status.uptime_secs = pulse.uptime_secs;
            status.counts = pulse.counts;
            status.host = pulse.host;
            status.process = pulse.process;
            status.risk = pulse.risk;
        }
        self.pnl_day
            .is_some_and(|day| day != self.now.date_naive())
            .then(|| self.load_today_pnl())
    }

    /// Asks for every deployed strategy's P&L today (on connecting, and on a new UTC day,
    /// when yesterday's figures no longer count).
    fn load_today_pnl(&mut self) -> Command {
        self.pnl_day = Some(self.now.date_naive());
        Command::LoadTodayPnl(self.trading_strategies())
    }

    fn trading_strategies(&self) -> Vec<StrategyId> {
        let mut ids: Vec<StrategyId> = self.deployed.all.iter().map(|d| d.strategy_id).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The risk guard tripped or was reset: the header's and the Dashboard's risk line
    /// follow, and the status line says it.
    fn on_risk_event(&mut self, event: Event) {
        match event {
            Event::RiskTripped(trip) => {
                self.say(Tone::Error, format!("risk guard tripped: {}", trip.message));
                if let Some(status) = self.status.as_mut() {
                    status.risk.tripped = true;
                    status.risk.trips.push(*trip);
                }
            }
            Event::RiskReset(reset) => {
                let why = reset.reason.map(|r| format!(": {r}")).unwrap_or_default();
                self.say(Tone::Info, format!("risk guard reset{why}"));
                if let Some(status) = self.status.as_mut() {
                    status.risk.tripped = false;
                    status.risk.trips.clear();
                }
            }
            _ => {}
        }
    }

    fn on_event(&mut self, event: Event) -> Vec<Command> {
        let mut commands = Vec::new();
        match event {
            Event::DaemonStopping(stopping) => {
                self.say(
                    Tone::Error,
                    format!("memd is stopping ({})", stopping.reason),
                );
            }
            Event::RegistryChanged(changed) => {
                let new = match changed.change {
                    RegistryChange::Removed => None,
                    _ => changed.strategy.map(|s| Arc::new(*s)),
                };
                self.strategies.replace_one(changed.strategy_id, new);
                let selected = self.strategies.selected().map(|s| s.id);
                if selected == Some(changed.strategy_id) && self.view == View::Strategies {
                    commands.push(Command::LoadDetail(changed.strategy_id));
                }
                // The editor shows every change, whoever made it.
                if self
                    .strategies
                    .editor
                    .as_ref()
                    .is_some_and(|e| e.strategy == changed.strategy_id)
                {
                    commands.push(Command::LoadParameterHistory(changed.strategy_id));
                }
            }
            Event::RegistryInvalid(invalid) => {
                self.say(
                    Tone::Error,
                    format!("registry: {} ({})", invalid.problem, invalid.path),
                );
            }
            Event::DeploymentChanged(changed) => {
                let d = changed.deployment;
                let closed_before = self
                    .deployed
                    .all
                    .iter()
                    .find(|x| x.deployment_id == d.deployment_id)
                    .map(|x| x.stats.closed_trades);
                if closed_before.is_some_and(|n| n != d.stats.closed_trades) {
                    commands.push(Command::LoadTodayPnl(vec![d.strategy_id]));
                }
                if let Some(s) = self
                    .strategies
                    .all
                    .iter_mut()
                    .find(|s| s.id == d.strategy_id)
                {
                    if s.is_deployed != d.status.is_active() {
                        Arc::make_mut(s).is_deployed = d.status.is_active();
                    }
                }
                self.deployed.upsert(d);
                self.deployed.cursor.clamp(self.deployed.rows().len());
            }
            Event::BotLog(log) => self.deployed.push_logs(log.deployment_id, log.lines),
            Event::ModelProgress(p) => {
                self.say(
                    Tone::Info,
                    format!("model training: {} {}", p.stage, p.message),
                );
            }
            Event::DecisionLogged(d) => {
                // Newest first; an outcome replaces its decision.
                let panel = self.panels.entry(View::Memory).or_default();
                if let Some(Ok(value)) = &mut panel.data {
                    if let Some(list) = value.get_mut("decisions").and_then(|v| v.as_array_mut()) {
                        let d = serde_json::to_value(&*d).unwrap_or_default();
                        match list.iter().position(|x| x["id"] == d["id"]) {
                            Some(i) => list[i] = d,
                            None => {
                                list.insert(0, d);
                                list.truncate(200);
                            }
                        }
                    }
                }
            }
            Event::ModelChanged(c) => {
                self.say(
                    Tone::Info,
                    format!(
                        "model {} {}: {}",
                        c.version,
                        c.action.replace('_', " "),
                        c.reason
                    ),
                );
                if self.view == View::Model {
                    commands.push(Command::LoadPanel(View::Model));
                }
            }
            // Appends to the decision logs arrive as decision.logged; only the files that
            // hold state (parameters, learned strategies) are worth a line.
            Event::MemoryChanged(c) if c.file.ends_with(".json") => {
                let what = memory_file_words(&c.file);
                match c.error {
                    Some(e) => self.say(
                        Tone::Error,
                        format!("{what}: a change was refused, the previous content is kept: {e}"),
                    ),
                    None => self.say(
                        Tone::Info,
                        match c.summary {
                            Some(summary) => format!("{what} updated: {summary}"),
                            None => format!("{what} updated"),
                        },
                    ),
                }
            }
            Event::MemoryChanged(_) => {}
            Event::DaemonPulse(pulse) => commands.extend(self.on_pulse(*pulse)),
            Event::RiskTripped(_) | Event::RiskReset(_) => self.on_risk_event(event),
            Event::MemMetrics(metrics) => self.metrics = Some(*metrics),
            Event::MarketChanged(state) => self.market = Some(*state),
            Event::AlertChanged(alert) => self.on_alert(*alert),
            Event::QueueChanged(job) => self.on_queue_job(*job),
            Event::JobProgress(p) => {
                self.say(
                    Tone::Info,
                    format!("job {}: {}/{} {}", p.job, p.done, p.total, p.message),
                );
            }
            Event::DeploymentsUsage(usage) => self.deployed.apply_usage(usage),
            Event::JobFinished(run) => {
                // The per-minute sync would fill the status line: only its failures show.
                let routine = run.job == "performance_sync"
                    && run.outcome == mem_protocol::jobs::JobOutcome::Succeeded;
                if !routine {
                    let tone = match run.outcome {
                        mem_protocol::jobs::JobOutcome::Failed => Tone::Error,
                        _ => Tone::Info,
                    };
                    self.say(tone, format!("job {}: {}", run.job, run.summary));
                }
                if matches!(self.view, View::Jobs | View::Dashboard | View::Model) {
                    commands.push(Command::LoadPanel(View::Jobs));
                }
            }
        }
        commands
    }

    /// Data a view needs when it comes on screen.
    fn on_enter_view(&mut self) -> Vec<Command> {
        match self.view {
            View::Strategies => self
                .strategies
                .selected()
                .map(|s| vec![Command::LoadDetail(s.id)])
                .unwrap_or_default(),
            View::Deployed => {
                let mut c = vec![Command::RefreshDeployed];
                c.extend(self.logs_for_selection());
                c
            }
            View::Recommendations => {
                self.recommend.loading = true;
                vec![Command::Recommend(self.recommend.conditions())]
            }
            View::Model => vec![
                Command::LoadPanel(View::Model),
                Command::LoadPanel(View::Jobs),
            ],
            View::Memory | View::Jobs => vec![Command::LoadPanel(self.view)],
            // `queue.changed` keeps a loaded queue current.
            View::Backtests => match &self.backtests.queue {
                Some(Ok(_)) => vec![],
                _ => vec![Command::LoadQueue],
            },
            View::Dashboard => vec![
                Command::RefreshDeployed,
                Command::LoadPanel(View::Memory),
                Command::LoadPanel(View::Jobs),
            ],
        }
    }

    fn logs_for_selection(&self) -> Vec<Command> {
        match self.deployed.selected() {
            Some(d) if !self.deployed.logs.contains_key(&d.deployment_id) => {
                vec![Command::LoadLogs(d.strategy_id)]
            }
            _ => vec![],
        }
    }

    fn switch_to(&mut self, view: View) -> Vec<Command> {
        if self.view == view {
            return vec![];
        }
        self.view = view;
        self.strategies.searching = false;
        if self.is_connected() {
            self.on_enter_view()
        } else {
            vec![]
        }
    }

    /// Where the keys go now: a dialog, the parameter editor, the search, or the view.
    pub fn key_context(&self) -> Context {
        let strategies = self.view == View::Strategies;
        match (&self.overlay, &self.strategies.editor) {
            (Some(Overlay::Confirm(_)), _) => Context::Dialog,
            (_, Some(editor)) if strategies && editor.edit.is_some() => Context::Edit,
            (_, Some(_)) if strategies => Context::Editor,
            _ if strategies && self.strategies.searching => Context::Search,
            _ => Context::of_view(self.view),
        }
    }

    /// A text field has the keys: a plain character is text there, whatever it is bound
    /// to elsewhere.
    fn typing(&self) -> bool {
        let live_deploy = matches!(
            &self.overlay,
            Some(Overlay::Confirm(Confirm::Deploy { live: true, .. }))
        );
        live_deploy || matches!(self.key_context(), Context::Edit | Context::Search)
    }

    /// What a key does now, by the keymap.
    fn action_of(&self, key: &Key) -> Option<Action> {
        if self.typing() && keys::typed_char(key).is_some() {
            return None;
        }
        self.keys.action(self.key_context(), key)
    }

    /// Applies one key press; returns commands for the connection task.
    pub fn on_key(&mut self, key: Key) -> Vec<Command> {
        let action = self.action_of(&key);
        if action == Some(Action::Quit) {
            self.quit = true;
            return vec![];
        }
        if let Some(overlay) = self.overlay.take() {
            return self.on_overlay_key(overlay, key, action);
        }
        if self.view == View::Strategies && !self.param_editor_lets_through(action) {
            return self.on_param_editor_key(key, action);
        }
        if self.view == View::Strategies && self.strategies.searching {
            return self.on_search_key(key, action);
        }
        match action {
            Some(Action::Help) => {
                self.overlay = Some(Overlay::Help);
                return vec![];
            }
            Some(Action::Messages) => {
                self.overlay = Some(Overlay::Messages { scroll: 0 });
                return vec![];
            }
            Some(Action::Back) => {
                // Back out of a pane first; quit from the top.
                if self.view == View::Strategies && self.strategies.detail_open {
                    self.strategies.detail_open = false;
                } else if self.view == View::Deployed && self.deployed.log_focus {
                    self.deployed.log_focus = false;
                } else if self.view == View::Backtests && self.backtests.detail_open {
                    self.backtests.detail_open = false;
                } else if self.view == View::Strategies && !self.strategies.search.is_empty() {
                    self.strategies.search.clear();
                    self.strategies.refresh_rows();
                } else {
                    self.quit = true;
                }
                return vec![];
            }
            Some(Action::NextView) => {
                return self.switch_to(View::ALL[(self.view.index() + 1) % View::ALL.len()]);
            }
            Some(Action::PrevView) => {
                return self.switch_to(
                    View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()],
                );
            }
            Some(other) if other.view().is_some() => {
                return other.view().map(|v| self.switch_to(v)).unwrap_or_default();
            }
            _ => {}
        }
        match self.view {
            View::Dashboard => self.on_dashboard_key(action),
            View::Strategies => self.on_strategies_key(action),
            View::Deployed => self.on_deployed_key(action),
            View::Recommendations => self.on_recommend_key(action),
            View::Memory | View::Model | View::Jobs => self.on_panel_key(action),
            View::Backtests => self.on_backtests_key(action),
        }
    }

    /// A control key in a session that may not control: say so instead of acting.
    fn refuse_control(&mut self, what: &str) -> bool {
        if self.access != Access::Control {
            self.say(
                Tone::Error,
                format!("read-only session: {what} is not available"),
            );
            return true;
        }
        if !self.is_connected() {
            self.say(Tone::Error, format!("not connected to memd: cannot {what}"));
            return true;
        }
        false
    }

    fn confirm_deploy(&mut self, s: &StrategySummary) -> Vec<Command> {
        if self.refuse_control("deploy") {
            return vec![];
        }
        if s.is_deployed {
            self.say(
                Tone::Info,
                format!(
                    "{} is already deployed (see Deployed, key {})",
                    s.display_name,
                    self.keys.label(Action::ViewDeployed)
                ),
            );
            return vec![];
        }
        self.open_deploy_dialog(s)
    }

    fn confirm_stop(&mut self, id: StrategyId, display_name: String, restart: bool) {
        let what = if restart { "restart" } else { "stop" };
        if self.refuse_control(what) {
            return;
        }
        self.overlay = Some(Overlay::Confirm(if restart {
            Confirm::Restart { id, display_name }
        } else {
            Confirm::Stop {
                id,
                display_name,
                drain: false,
            }
        }));
    }

    fn on_overlay_key(
        &mut self,
        overlay: Overlay,
        key: Key,
        action: Option<Action>,
    ) -> Vec<Command> {
        match overlay {
            Overlay::Help => {
                // Any key closes the help; it does nothing else.
                vec![]
            }
            Overlay::Messages { scroll } => {
                // The movement keys scroll a message at a time; any other key closes.
                let last = self.messages.len().saturating_sub(1);
                let scroll = match action {
                    Some(Action::Down) => Some(scroll + 1),
                    Some(Action::Up) => Some(scroll.saturating_sub(1)),
                    Some(Action::PageDown) => Some(scroll + 10),
                    Some(Action::PageUp) => Some(scroll.saturating_sub(10)),
                    Some(Action::Top) => Some(0),
                    Some(Action::Bottom) => Some(last),
                    _ => None,
                };
                if let Some(scroll) = scroll {
                    self.overlay = Some(Overlay::Messages {
                        scroll: scroll.min(last),
                    });
                }
                vec![]
            }
            Overlay::Confirm(confirm) => self.on_confirm_key(confirm, key, action),
        }
    }

    fn on_confirm_key(
        &mut self,
        mut confirm: Confirm,
        key: Key,
        action: Option<Action>,
    ) -> Vec<Command> {
        let confirmed = matches!(action, Some(Action::Confirm | Action::Yes));
        if action == Some(Action::Cancel) {
            let text = match &confirm {
                Confirm::CancelJob { what, .. } => format!("the {what} goes on"),
                _ => "cancelled".to_string(),
            };
            self.say(Tone::Info, text);
            return vec![];
        }
        match &mut confirm {
            Confirm::Deploy {
                runner: super::native_deploy::DeployRunner::Native(choice),
                id,
                display_name,
                ..
            } => {
                let mut commands = Vec::new();
                let (id, name) = (*id, display_name.clone());
                self.on_native_dialog_key(id, &name, choice, action, &mut commands);
                if commands.iter().any(|c| matches!(c, Command::Deploy(_))) {
                    return commands;
                }
                self.overlay = Some(Overlay::Confirm(confirm));
                return commands;
            }
            Confirm::Deploy {
                id,
                display_name,
                name,
                live,
                typed,
                ..
            } => {
                if action == Some(Action::Toggle) {
                    *live = !*live;
                    typed.clear();
                } else if action == Some(Action::Confirm) {
                    if *live && typed != name {
                        self.say(
                            Tone::Error,
                            format!("type the strategy's name `{name}` to deploy it live"),
                        );
                    } else {
                        self.say(
                            Tone::Info,
                            format!(
                                "deploying {display_name} ({})...",
                                if *live { "LIVE" } else { "dry-run" }
                            ),
                        );
                        return vec![Command::Deploy(DeployParams {
                            id: *id,
                            dry_run: !*live,
                            port: None,
                            parameters: None,
                            native: None,
                        })];
                    }
                } else if *live {
                    if let Some(c) = keys::typed_char(&key) {
                        typed.push(c);
                    } else if keys::is_backspace(&key) {
                        typed.pop();
                    }
                }
            }
            Confirm::Stop {
                id,
                display_name,
                drain,
            } => {
                if action == Some(Action::Toggle) {
                    *drain = !*drain;
                } else if confirmed {
                    self.say(
                        Tone::Info,
                        format!(
                            "stopping {display_name}{}...",
                            if *drain { " after its open trades" } else { "" }
                        ),
                    );
                    return vec![Command::Stop(StopParams {
                        id: *id,
                        mode: if *drain {
                            StopMode::Drain
                        } else {
                            StopMode::Now
                        },
                        deadline_secs: None,
                    })];
                }
            }
            Confirm::Restart { id, display_name } => {
                if confirmed {
                    self.say(Tone::Info, format!("restarting {display_name}..."));
                    return vec![Command::Restart(StopParams {
                        id: *id,
                        mode: StopMode::Now,
                        deadline_secs: None,
                    })];
                }
            }
            Confirm::CancelJob { id, what, .. } => {
                if confirmed {
                    self.say(Tone::Info, format!("cancelling the {what}..."));
                    return vec![Command::CancelQueueJob(id.clone())];
                }
            }
        }
        self.overlay = Some(Overlay::Confirm(confirm));
        vec![]
    }

    fn on_search_key(&mut self, key: Key, action: Option<Action>) -> Vec<Command> {
        let s = &mut self.strategies;
        if action == Some(Action::Cancel) {
            s.searching = false;
            s.search.clear();
        } else if action == Some(Action::Confirm) {
            s.searching = false;
        } else if keys::is_backspace(&key) {
            s.search.pop();
        } else if let Some(c) = keys::typed_char(&key) {
            s.search.push(c);
        } else if matches!(action, Some(Action::Down | Action::Up)) {
            s.searching = false;
            return self.on_strategies_key(action);
        } else {
            return vec![];
        }
        s.cursor.selected = 0;
        s.refresh_rows();
        s.cursor.selected = 0;
        self.detail_for_selection()
    }

    fn detail_for_selection(&self) -> Vec<Command> {
        match self.strategies.selected() {
            Some(s)
                if self
                    .strategies
                    .detail
                    .as_ref()
                    .is_none_or(|(id, _)| *id != s.id) =>
            {
                vec![Command::LoadDetail(s.id)]
            }
            _ => vec![],
        }
    }

    fn on_dashboard_key(&mut self, action: Option<Action>) -> Vec<Command> {
        let rows = self.deployed.rows().len();
        if self
            .deployed
            .cursor
            .on_action(action, rows, self.page.get())
        {
            return vec![];
        }
        if matches!(action, Some(Action::Open | Action::Logs)) {
            let mut c = self.switch_to(View::Deployed);
            if action == Some(Action::Logs) {
                self.deployed.log_focus = true;
            }
            c.extend(self.logs_for_selection());
            return c;
        }
        vec![]
    }

    fn on_strategies_key(&mut self, action: Option<Action>) -> Vec<Command> {
        if self.strategies.detail_open {
            // The open detail scrolls; Enter or Esc closes it.
            let v = &mut self.strategies;
            let page = self.page.get().max(1) as u16;
            let scroll = match action {
                Some(Action::Down) => Some(v.detail_scroll.saturating_add(1)),
                Some(Action::Up) => Some(v.detail_scroll.saturating_sub(1)),
                Some(Action::PageDown) => Some(v.detail_scroll.saturating_add(page)),
                Some(Action::PageUp) => Some(v.detail_scroll.saturating_sub(page)),
                Some(Action::Top) => Some(0),
                _ => None,
            };
            if let Some(scroll) = scroll {
                v.detail_scroll = scroll;
                return vec![];
            }
        }
        let len = self.strategies.rows.len();
        if self
            .strategies
            .cursor
            .on_action(action, len, self.page.get())
        {
            return self.detail_for_selection();
        }
        match action {
            Some(Action::Search) => {
                self.strategies.searching = true;
                return vec![];
            }
            Some(Action::Open) => {
                self.strategies.detail_open = !self.strategies.detail_open;
                self.strategies.detail_scroll = 0;
                return self.detail_for_selection();
            }
            _ => {}
        }
        if action == Some(Action::Filter) {
            let f = self.strategies.filter();
            let i = StrategyFilter::CYCLE
                .iter()
                .position(|x| *x == f)
                .unwrap_or(0);
            self.strategies.filter =
                Some(StrategyFilter::CYCLE[(i + 1) % StrategyFilter::CYCLE.len()]);
            self.strategies.refresh_rows();
            return self.detail_for_selection();
        }
        if action == Some(Action::Sort) {
            let s = self.strategies.sort();
            let i = SORTS.iter().position(|x| *x == s).unwrap_or(0);
            // Back to the first, the default: name order, or best match first in a search.
            let next = SORTS[(i + 1) % SORTS.len()];
            self.strategies.sort = (next != SortKey::Name).then_some(next);
            self.strategies.refresh_rows();
            return self.detail_for_selection();
        }
        let Some(s) = self.strategies.selected().cloned() else {
            return vec![];
        };
        match action {
            Some(Action::Deploy) => return self.confirm_deploy(&s),
            Some(Action::Params) => return self.open_param_editor(&s),
            Some(Action::Backtest) => return self.queue_backtest(s.id, &s.display_name),
            _ => {}
        }
        if matches!(action, Some(Action::Stop | Action::Restart | Action::Logs)) {
            let active = self
                .deployed
                .all
                .iter()
                .find(|d| d.strategy_id == s.id && d.status.is_active())
                .map(|d| d.deployment_id);
            let Some(deployment) = active else {
                self.say(Tone::Info, format!("{} is not deployed", s.display_name));
                return vec![];
            };
            if action == Some(Action::Logs) {
                return self.show_logs_of(deployment);
            }
            self.confirm_stop(
                s.id,
                s.display_name.clone(),
                action == Some(Action::Restart),
            );
        }
        vec![]
    }

    /// Jumps to the Deployed view with this deployment's log in focus.
    fn show_logs_of(&mut self, deployment: DeploymentId) -> Vec<Command> {
        let mut commands = self.switch_to(View::Deployed);
        self.deployed.filter = Some(DeployFilter::All);
        if let Some(i) = self
            .deployed
            .rows()
            .iter()
            .position(|d| d.deployment_id == deployment)
        {
            self.deployed.cursor.selected = i;
        }
        self.deployed.log_focus = true;
        self.deployed.log_scroll = 0;
        commands.extend(self.logs_for_selection());
        commands
    }

    /// Selects deployment `id` in the Deployed view (the fleet's all-servers view hands
    /// a row's action to its server's App this way).
    pub fn select_deployment(&mut self, id: DeploymentId) {
        if let Some(i) = self
            .deployed
            .rows()
            .iter()
            .position(|d| d.deployment_id == id)
        {
            self.deployed.cursor.selected = i;
        }
    }

    /// The Deployed view's `action` on the selected deployment (stop, restart, ...).
    pub fn on_deployed_action(&mut self, action: Option<Action>) -> Vec<Command> {
        self.on_deployed_key(action)
    }

    /// The deploy dialog for the selected deployment's strategy (deployed again).
    pub fn deploy_selected_again(&mut self) -> Vec<Command> {
        let Some(id) = self.deployed.selected().map(|d| d.strategy_id) else {
            return vec![];
        };
        match self.strategies.all.iter().find(|s| s.id == id).cloned() {
            Some(summary) => self.confirm_deploy(&summary),
            None => {
                self.say(
                    Tone::Error,
                    "that strategy is not in this server's registry",
                );
                vec![]
            }
        }
    }

    fn on_deployed_key(&mut self, action: Option<Action>) -> Vec<Command> {
        let log_key = matches!(action, Some(Action::Logs | Action::Open));
        if self.deployed.log_focus {
            let lines = self
                .deployed
                .selected()
                .and_then(|d| self.deployed.logs.get(&d.deployment_id))
                .map_or(0, |l| l.len());
            let page = self.page.get().max(1);
            let v = &mut self.deployed;
            // Lines back from the newest: up scrolls back, down towards the tail.
            let newest = lines.saturating_sub(1);
            let scroll = match action {
                Some(Action::Up) => Some((v.log_scroll + 1).min(newest)),
                Some(Action::Down) => Some(v.log_scroll.saturating_sub(1)),
                Some(Action::PageUp) => Some((v.log_scroll + page).min(newest)),
                Some(Action::PageDown) => Some(v.log_scroll.saturating_sub(page)),
                Some(Action::Top) => Some(newest),
                Some(Action::Bottom) => Some(0),
                _ => None,
            };
            if let Some(scroll) = scroll {
                v.log_scroll = scroll;
                return vec![];
            }
            if log_key {
                v.log_focus = false;
                return vec![];
            }
        } else {
            let len = self.deployed.rows().len();
            if self.deployed.cursor.on_action(action, len, self.page.get()) {
                self.deployed.log_scroll = 0;
                return self.logs_for_selection();
            }
            if log_key {
                self.deployed.log_focus = true;
                return self.logs_for_selection();
            }
        }
        if action == Some(Action::Filter) {
            let f = self.deployed.filter();
            let i = DeployFilter::CYCLE
                .iter()
                .position(|x| *x == f)
                .unwrap_or(0);
            self.deployed.filter = Some(DeployFilter::CYCLE[(i + 1) % DeployFilter::CYCLE.len()]);
            self.deployed.cursor.selected = 0;
            return self.logs_for_selection();
        }
        let Some(d) = self.deployed.selected().cloned() else {
            return vec![];
        };
        if action == Some(Action::Acknowledge) {
            return self.acknowledge(&d);
        }
        if matches!(action, Some(Action::Stop | Action::Restart)) {
            if !d.status.is_active() {
                self.say(
                    Tone::Info,
                    format!(
                        "{} is {}",
                        d.strategy_name,
                        crate::text::deployment_status(d.status)
                    ),
                );
                return vec![];
            }
            self.confirm_stop(
                d.strategy_id,
                d.strategy_name.clone(),
                action == Some(Action::Restart),
            );
        } else if action == Some(Action::Deploy) {
            if let Some(s) = self
                .strategies
                .all
                .iter()
                .find(|s| s.id == d.strategy_id)
                .cloned()
            {
                return self.confirm_deploy(&s);
            }
        }
        vec![]
    }

    /// `a` in Deployed: the selected deployment's failure has been read.
    fn acknowledge(&mut self, d: &DeployedStrategy) -> Vec<Command> {
        if d.status.is_active() {
            self.say(
                Tone::Info,
                format!(
                    "{} is {}: only a deployment that ended can be acknowledged",
                    d.strategy_name,
                    crate::text::deployment_status(d.status)
                ),
            );
            return vec![];
        }
        if d.acknowledged {
            self.say(
                Tone::Info,
                format!("{} was already acknowledged", d.strategy_name),
            );
            return vec![];
        }
        if self.refuse_control("acknowledging a failure") {
            return vec![];
        }
        vec![Command::Acknowledge(d.deployment_id)]
    }

    fn on_recommend_key(&mut self, action: Option<Action>) -> Vec<Command> {
        let len = self.recommend.rows().len();
        if self
            .recommend
            .cursor
            .on_action(action, len, self.page.get())
        {
            return vec![];
        }
        let r = &mut self.recommend;
        let changed = match action {
            Some(Action::Trend) => {
                r.trend = cycle(r.trend, &Trend::ALL);
                true
            }
            Some(Action::Volatility) => {
                r.volatility = cycle(r.volatility, &Volatility::ALL);
                true
            }
            Some(Action::Computed) => {
                r.trend = None;
                r.volatility = None;
                true
            }
            _ => false,
        };
        if changed {
            if !self.is_connected() {
                return vec![];
            }
            self.recommend.loading = true;
            self.recommend.cursor.selected = 0;
            return vec![Command::Recommend(self.recommend.conditions())];
        }
        if matches!(action, Some(Action::Deploy | Action::Open)) {
            let Some(rec) = self.recommend.rows().get(self.recommend.cursor.selected) else {
                return vec![];
            };
            let id = rec.strategy_id;
            if let Some(s) = self.strategies.all.iter().find(|s| s.id == id).cloned() {
                return self.confirm_deploy(&s);
            }
        }
        vec![]
    }

    fn on_panel_key(&mut self, action: Option<Action>) -> Vec<Command> {
        let view = self.view;
        let page = self.page.get();
        let len = match self.panels.get(&view).and_then(|p| p.data.as_ref()) {
            Some(Ok(value)) => panel_items(value).len(),
            _ => 0,
        };
        let panel = self.panels.entry(view).or_default();
        if panel.cursor.on_action(action, len, page) {
            return vec![];
        }
        if action == Some(Action::Reload) {
            return vec![Command::LoadPanel(view)];
        }
        if view == View::Jobs && action == Some(Action::RunJob) {
            if self.refuse_control("running a job") {
                return vec![];
            }
            let selected = self.panels[&view].cursor.selected;
            let name = match self.panels[&view].data.as_ref() {
                Some(Ok(value)) => panel_items(value)
                    .get(selected)
                    .and_then(|j| j.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            };
            match name {
                Some(name) => {
                    self.say(Tone::Info, format!("running job {name}..."));
                    return vec![Command::RunJob(name)];
                }
                None => self.say(Tone::Error, "no job selected"),
            }
        }
        vec![]
    }

    fn on_backtests_key(&mut self, action: Option<Action>) -> Vec<Command> {
        let page = self.page.get().max(1);
        let v = &mut self.backtests;
        if v.detail_open {
            // The open result scrolls; Enter or Esc closes it.
            let scroll = match action {
                Some(Action::Down) => Some(v.detail_scroll.saturating_add(1)),
                Some(Action::Up) => Some(v.detail_scroll.saturating_sub(1)),
                Some(Action::PageDown) => Some(v.detail_scroll.saturating_add(page as u16)),
                Some(Action::PageUp) => Some(v.detail_scroll.saturating_sub(page as u16)),
                Some(Action::Top) => Some(0),
                _ => None,
            };
            if let Some(scroll) = scroll {
                v.detail_scroll = scroll;
                return vec![];
            }
        }
        let len = v.jobs().len();
        if v.cursor.on_action(action, len, page) {
            v.detail_scroll = 0;
            return vec![];
        }
        match action {
            Some(Action::Open) => {
                v.detail_open = !v.detail_open;
                v.detail_scroll = 0;
                return vec![];
            }
            Some(Action::Reload) => return vec![Command::LoadQueue],
            _ => {}
        }
        let Some(job) = v.selected().cloned() else {
            if matches!(action, Some(Action::CancelJob | Action::Backtest)) {
                self.say(Tone::Info, "no job selected");
            }
            return vec![];
        };
        match action {
            Some(Action::CancelJob) => self.confirm_cancel_job(&job),
            Some(Action::Backtest) => self.queue_backtest(job.strategy_id, &job.strategy),
            _ => vec![],
        }
    }

    /// `c` in Backtests: a queued or running job, after a confirmation.
    fn confirm_cancel_job(&mut self, job: &QueueJob) -> Vec<Command> {
        let what = format!("{} of {}", crate::text::queue_kind(job.kind), job.strategy);
        if job.state.is_finished() {
            self.say(
                Tone::Info,
                format!(
                    "the {what} has already ended ({})",
                    crate::text::queue_state(job.state)
                ),
            );
            return vec![];
        }
        if self.refuse_control("cancelling a job") {
            return vec![];
        }
        self.overlay = Some(Overlay::Confirm(Confirm::CancelJob {
            id: job.id.clone(),
            what,
            running: job.state == QueueJobState::Running,
        }));
        vec![]
    }

    /// `b`: a backtest of the strategy with the daemon's defaults (`[backtest] days`, the
    /// strategy's pairs), queued at once (nothing runs that `c` cannot cancel).
    fn queue_backtest(&mut self, id: StrategyId, name: &str) -> Vec<Command> {
        if self.refuse_control("queueing a backtest") {
            return vec![];
        }
        self.say(Tone::Info, format!("queueing a backtest of {name}..."));
        vec![Command::Backtest(BacktestParams {
            id,
            days: None,
            timerange: None,
            walk_forward: None,
            epochs: None,
            pairs: None,
            through_mem: false,
        })]
    }

    /// The tick: advances the clock; returns true when something on screen depends on it.
    pub fn on_tick(&mut self, now: DateTime<Utc>) -> bool {
        let second_changed = now.timestamp() != self.now.timestamp();
        self.now = now;
        second_changed
    }
}

/// The rows of a data panel's answer: its first array member, or the answer if it is one.
pub fn panel_items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map
            .values()
            .find_map(|v| v.as_array())
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        _ => vec![],
    }
}

/// A memory file as people call it (the file name stays in `--json` and the docs).
pub fn memory_file_words(file: &str) -> String {
    match file {
        "parameter_updates.json" => "MEM's parameter adjustments".into(),
        "learned_strategies.json" => "MEM's learned strategies".into(),
        other => format!("MEM's memory ({other})"),
    }
}

/// The conditions the scores were computed with, each with where it came from: computed
/// by the daemon, chosen, or the default for one not chosen (the daemon computes
/// conditions only when neither is chosen).
pub fn scored_with(asked: &MarketConditions, applied: &AppliedConditions) -> String {
    let (trend, volatility) = (applied.trend, applied.volatility);
    match (&applied.source, &applied.computed) {
        (ConditionsSource::Computed, Some(c)) => format!(
            "trend {trend}, volatility {volatility}, computed from the {} {} candles",
            c.pair, c.timeframe
        ),
        (ConditionsSource::Computed, None) => {
            format!("trend {trend}, volatility {volatility}, computed from market data")
        }
        (ConditionsSource::Request, _) => {
            let how = |chosen: bool, what: &str| {
                if chosen {
                    "chosen".to_string()
                } else {
                    format!("the default: no {what} chosen")
                }
            };
            format!(
                "trend {trend} ({}), volatility {volatility} ({})",
                how(asked.trend.is_some(), "trend"),
                how(asked.volatility.is_some(), "volatility")
            )
        }
    }
}

/// None -> first -> ... -> last -> None.
fn cycle<T: Copy + PartialEq>(current: Option<T>, all: &[T]) -> Option<T> {
    match current {
        None => all.first().copied(),
        Some(c) => all
            .iter()
            .position(|x| *x == c)
            .and_then(|i| all.get(i + 1))
            .copied(),
    }
}
