//! Every method of the protocol: its name, the access level it needs, its params and result.
//!
//! Params structs deny unknown fields, so a typo (`minsharpe`) is an error naming the field
//! rather than a filter silently ignored. Methods that later subsystems will provide are
//! listed in [`PLANNED`]: calling one gets [`ErrorCode::NotImplemented`](crate::ErrorCode),
//! not "method not found", so a script can tell "not yet" from "never".

use crate::deploy::*;
use crate::error::RpcError;
use crate::events::Topic;
use crate::ml::*;
use crate::recommend::*;
use crate::registry::*;
use crate::strategy::{Origin, StrategyDetail, StrategyId, StrategyStatus, StrategySummary};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a peer may do: look, or also change things (deploy, stop, register, train, ...).
///
/// `Bot` is a Freqtrade bot's connection, opened with the credential memd rendered into
/// its config: below `View` (it passes no level's check), it may call only MEM's
/// `mem.enhance`, `mem.decide` and `mem.outcome`, for its own strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Bot,
    View,
    Control,
}

/// A method of the protocol, as a type: `client.call::<method::StrategiesGet>(params)`.
pub trait Method {
    const NAME: &'static str;
    /// The least access a peer needs to call it.
    const ACCESS: Access;
    type Params: Serialize + DeserializeOwned + Send + 'static;
    type Result: Serialize + DeserializeOwned + Send + 'static;
    /// The request these params make.
    fn request(params: Self::Params) -> Request;
    /// This method's result out of a response (`None`: the response of another method).
    fn result(response: Response) -> Option<Self::Result>;
}

macro_rules! methods {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $access:ident, $params:ty => $result:ty; )*) => {
        /// One marker type per method, for [`Client::call`](crate::Client::call).
        pub mod method {
            use super::*;
            $(
                $(#[$doc])*
                #[derive(Debug, Clone, Copy)]
                pub struct $variant;
                impl Method for $variant {
                    const NAME: &'static str = $name;
                    const ACCESS: Access = Access::$access;
                    type Params = $params;
                    type Result = $result;
                    fn request(params: $params) -> Request {
                        Request::$variant(params)
                    }
                    fn result(response: Response) -> Option<$result> {
                        match response {
                            Response::$variant(result) => Some(result),
                            _ => None,
                        }
                    }
                }
            )*
        }

        /// The daemon's answer to a request, one variant per method (the same as the
        /// request's). It serializes as the result alone: what the wire carries.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)] // lives for one request; the daemon boxes it where it waits
        pub enum Response {
            $( $(#[$doc])* $variant($result), )*
        }

        impl Response {
            /// The method's wire name.
            pub fn method(&self) -> &'static str {
                match self { $( Response::$variant(_) => $name, )* }
            }
        }

        impl Serialize for Response {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $( Response::$variant(result) => result.serialize(s), )* }
            }
        }

        /// A request the daemon has parsed and checked, one variant per method.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $( $(#[$doc])* $variant($params), )*
        }

        impl Request {
            /// Reads a method name and its params; unknown and not-yet-built methods are errors.
            pub fn parse(method: &str, params: Option<Value>) -> Result<Request, RpcError> {
                match method {
                    $( $name => Ok(Request::$variant(parse_params($name, params)?)), )*
                    other => Err(match planned_in(other) {
                        Some(area) => RpcError::not_implemented(other, area),
                        None => RpcError::method_not_found(other),
                    }),
                }
            }

            /// Like [`Request::parse`], from params still in their raw bytes (the fast path).
            pub fn parse_raw(method: &str, params: Option<&serde_json::value::RawValue>) -> Result<Request, RpcError> {
                match method {
                    $( $name => Ok(Request::$variant(parse_params_raw($name, params)?)), )*
                    other => Request::parse(other, None),
                }
            }

            /// The method's wire name.
            pub fn method(&self) -> &'static str {
                match self { $( Request::$variant(_) => $name, )* }
            }

            /// Its params as JSON (for the audit of actions).
            pub fn params_json(&self) -> Value {
                match self { $( Request::$variant(p) => serde_json::to_value(p).unwrap_or(Value::Null), )* }
            }

            /// The least access needed to call it.
            pub fn access(&self) -> Access {
                match self { $( Request::$variant(_) => Access::$access, )* }
            }
        }

        /// The names of every method the daemon answers today.
        pub const METHODS: &[&str] = &[$($name),*];
    };
}

methods! {
    /// The handshake: must be the first request on a connection.
    Hello = "hello", View, HelloParams => HelloResult;
    /// Daemon and host health: version, uptime, paths, counts, CPU, memory, load.
    DaemonStatus = "daemon.status", View, NoParams => StatusReport;
    /// Stop the daemon as SIGTERM would (bots keep running and are adopted at its next start).
    DaemonStop = "daemon.stop", Control, NoParams => crate::events::DaemonStopping;
    /// Start receiving events; the result carries a snapshot of the topics asked for.
    EventsSubscribe = "events.subscribe", View, SubscribeParams => SubscribeResult;
    /// Strategies of the registry, filtered.
    StrategiesList = "strategies.list", View, ListStrategiesParams => StrategyList;
    /// One strategy, with its whole metadata document.
    StrategiesGet = "strategies.get", View, GetStrategyParams => StrategyDetail;
    /// A new strategy (either seed shape); it gets a new id.
    StrategiesRegister = "strategies.register", Control, RegisterParams => StrategyDetail;
    /// A merge patch over a strategy's metadata.
    StrategiesUpdate = "strategies.update", Control, UpdateParams => StrategyDetail;
    /// Deprecate, with a reason, a date and maybe a replacement.
    StrategiesDeprecate = "strategies.deprecate", Control, DeprecateParams => StrategyDetail;
    /// Change the status (active, experimental, archived).
    StrategiesSetStatus = "strategies.status", Control, SetStatusParams => StrategyDetail;
    /// Add and remove tags.
    StrategiesTags = "strategies.tags", Control, TagsParams => StrategyDetail;
    /// Strategies reachable through relationships.
    StrategiesRelated = "strategies.related", View, RelatedParams => RelatedList;
    /// Link two strategies.
    StrategiesLink = "strategies.link", Control, LinkParams => Relationship;
    /// Remove a link.
    StrategiesUnlink = "strategies.unlink", Control, LinkParams => Unlinked;
    /// A new version (semver bump or explicit), with changelog and parameters.
    VersionsCreate = "strategies.versions.create", Control, CreateVersionParams => VersionRecord;
    /// Every version of a strategy, oldest first.
    VersionsList = "strategies.versions.list", View, IdParams => VersionList;
    /// One version.
    VersionsGet = "strategies.versions.get", View, GetVersionParams => VersionRecord;
    /// A person approves a version (`approvedBy`, `approvedAt`).
    VersionsApprove = "strategies.versions.approve", Control, ApproveVersionParams => VersionRecord;
    RegistryMigrate = "registry.migrate", Control, crate::registry::MigrateParams => crate::registry::MigrateReport;
    /// Append closed trades to a strategy's performance log.
    TradesRecord = "strategies.trades.record", Control, RecordTradesParams => RecordedTrades;
    /// Closed trades, newest first.
    TradesList = "strategies.trades.list", View, ListTradesParams => TradeList;
    /// Metrics over a time range, with MEM-enhanced and other trades apart.
    Performance = "strategies.performance", View, PerformanceParams => PerformanceReport;
    /// Several strategies' metrics side by side.
    Compare = "strategies.compare", View, CompareParams => Comparison;
    /// Change one parameter, type-checked against its declaration.
    ParametersUpdate = "strategies.parameters.update", Control, UpdateParameterParams => ParameterUpdate;
    /// Parameter changes, oldest first.
    ParametersHistory = "strategies.parameters.history", View, ParameterHistoryParams => ParameterHistory;
    /// Mark a strategy as the MEM-enhanced version of another.
    MemMarkEnhanced = "strategies.mem.mark_enhanced", Control, MarkEnhancedParams => StrategyDetail;
    /// Set a strategy's learned-pattern count.
    MemLearnedPatterns = "strategies.mem.learned_patterns", Control, LearnedPatternsParams => StrategyDetail;
    /// Validate and register documents in either seed shape, keeping their ids.
    Import = "strategies.import", Control, ImportParams => ImportReport;
    /// The newest registry mutations.
    Audit = "strategies.audit", View, AuditParams => AuditLog;
    /// Run a strategy as a bot (dry-run unless asked, allowed and possible).
    Deploy = "strategies.deploy", Control, DeployParams => DeployedStrategy;
    /// Stop a strategy's bot, now or after draining its open trades.
    Stop = "strategies.stop", Control, StopParams => DeployedStrategy;
    /// Stop and start a strategy's bot again.
    Restart = "strategies.restart", Control, StopParams => DeployedStrategy;
    /// Every deployment that holds or will hold a process (`all`: also the ended ones).
    Deployed = "strategies.deployed", View, DeployedParams => DeployedList;
    /// The last lines of a strategy's bot log.
    Logs = "deployments.logs", View, LogsParams => LogTail;
    /// Stop every deployment (an emergency brake).
    StopAll = "deployments.stop_all", Control, StopAllParams => DeployedList;
    /// A person has seen that a deployment ended (failed): it leaves the default lists.
    Acknowledge = "deployments.acknowledge", Control, AcknowledgeParams => DeployedStrategy;
    /// Watch a Freqtrade bot memd did not start: its status, profit and closed trades are
    /// synced like a deployed bot's; memd never stops or restarts it.
    Attach = "deployments.attach", Control, AttachParams => DeployedStrategy;
    /// Stop watching an attached bot (it runs on); its record is forgotten.
    Detach = "deployments.detach", Control, DetachParams => DeployedStrategy;
    /// Strategies that suit the given (or computed) market conditions, best first, each
    /// with its score broken down point by point.
    StrategiesRecommendations = "strategies.recommendations", View, MarketConditions => Recommendations;
    /// The same, from a trend and a volatility word (defaults: neutral, medium).
    StrategiesRecommendationsQuick = "strategies.recommendations.quick", View, QuickConditions => Recommendations;
    /// Trend and volatility of the reference pair, with the values that decided them.
    MarketConditionsNow = "market.conditions", View, ConditionsParams => ConditionsReport;
    /// The candle file a native deployment would read, its newest candle and the pairs
    /// with candles (what the deploy dialog shows before a native deploy).
    MarketFeed = "market.feed", View, FeedParams => FeedInfo;
    /// Bring the market data up to date from the exchange now (the `data_refresh` job,
    /// with these pairs and days): Freqtrade's `download-data` into the market directory.
    MarketRefresh = "market.refresh", Control, crate::market::RefreshParams => crate::jobs::RunJobResult;
    /// A base signal enhanced with the model and memory: confidence, size, stop, target, why.
    MemEnhance = "mem.enhance", View, crate::mem::EnhanceParams => crate::mem::EnhancedSignal;
    /// Enhance a signal and log the decision (both memory files).
    MemDecide = "mem.decide", Control, crate::mem::DecideParams => crate::mem::Decision;
    /// Record how a logged decision's trade ended.
    MemOutcome = "mem.outcome", Control, crate::mem::OutcomeParams => crate::mem::OutcomeReport;
    /// The latest decisions, newest first, with their outcomes.
    MemDecisions = "mem.decisions", View, crate::mem::DecisionsParams => crate::mem::DecisionList;
    /// What the learning loop has adjusted, per strategy, and its dated history.
    MemParameters = "mem.parameters", View, NoParams => crate::mem::ParameterState;
    /// Learned strategies (patterns promoted by the learning loop) and the signatures watched.
    MemPatterns = "mem.patterns", View, crate::mem::PatternsParams => crate::mem::PatternList;
    /// MEM's figures: decisions per hour, prediction, enhancement and memory-load latency
    /// (average, p99), the win rate over 24 h, learned strategies, each bot's poll latency.
    MemMetrics = "mem.metrics", View, NoParams => crate::mem::MemMetrics;
    /// Re-encrypt the memory at rest with a new key, which replaces the key file (crash-safe:
    /// a rotation cut short is finished at the next start).
    MemKeyRotate = "mem.key.rotate", Control, NoParams => crate::mem::KeyRotation;
    /// Train a new trend-reversal model; it becomes current only if it beats the current one.
    MlTrain = "ml.train", Control, TrainParams => TrainReport;
    /// The current model, and where training reads its data.
    MlStatus = "ml.status", View, NoParams => ModelStatusReport;
    /// Every model version, newest first.
    MlHistory = "ml.history", View, NoParams => ModelHistory;
    /// Make a version current by hand.
    MlPromote = "ml.promote", Control, PromoteParams => ModelVersion;
    /// Back to an earlier version.
    MlRollback = "ml.rollback", Control, RollbackParams => ModelVersion;
    /// A reversal prediction for a pair's latest candles or for candles given.
    MlPredict = "ml.predict", View, PredictParams => Prediction;
    /// Every scheduled job: its schedule, last run and next run.
    JobsList = "jobs.list", View, NoParams => crate::jobs::JobList;
    /// Run a job now (it is skipped, with an error, while a run of it is going).
    JobsRun = "jobs.run", Control, crate::jobs::RunJobParams => crate::jobs::RunJobResult;
    /// Recorded runs, newest first.
    JobsHistory = "jobs.history", View, crate::jobs::JobHistoryParams => crate::jobs::JobHistory;
    /// Queue a backtest (or a walk-forward) of a strategy: measured by the real Freqtrade
    /// or the native engine, stored on its registry version.
    BacktestRun = "backtest.run", Control, crate::backtest::BacktestParams => crate::backtest::QueueJob;
    /// The queue of heavy work: running, queued, then finished jobs.
    QueueList = "queue.list", View, crate::backtest::QueueListParams => crate::backtest::QueueList;
    /// Cancel a queued or running job (a running one's processes are ended).
    QueueCancel = "queue.cancel", Control, crate::backtest::QueueCancelParams => crate::backtest::QueueJob;
    /// A walk-forward's parameters as a new registry version (never applied to a running
    /// bot: deploy or restart it to use them).
    BacktestSave = "backtest.save", Control, crate::backtest::BacktestSaveParams => VersionRecord;
    /// The HTTP API's control token, or a new view-only one.
    HttpToken = "http.token", Control, crate::http::HttpTokenParams => crate::http::HttpToken;
    /// Copy the data directory, writers paused, into a new directory with a manifest.
    DaemonBackup = "daemon.backup", Control, crate::backup::BackupParams => crate::backup::BackupReport;
    /// Send a test alert to one channel (`telegram`, `webhook`, `log`) or to all.
    AlertsTest = "alerts.test", Control, crate::alerts::AlertsTestParams => crate::alerts::AlertsTestResult;
    /// The alerts sent, failed or given up (`alerts/history.jsonl`), oldest first.
    AlertsHistory = "alerts.history", View, crate::alerts::AlertsHistoryParams => crate::alerts::AlertsHistory;
    /// The risk guard: its limits, the fleet's equity, peak, drawdown and day's loss, the
    /// limits crossed since the last reset.
    RiskStatus = "risk.status", View, NoParams => crate::risk::RiskStatus;
    /// Clear a tripped risk guard (the peak and the day start again from the equity now;
    /// the paused bots stay paused until restarted).
    RiskReset = "risk.reset", Control, crate::risk::RiskResetParams => crate::risk::RiskStatus;
    /// What was done to the daemon (deploys, stops, jobs, tokens, backups, ...), by whom,
    /// and how it ended (`audit/actions.jsonl`), oldest first.
    AuditActions = "audit.actions", View, crate::audit::ActionsParams => crate::audit::ActionLog;
    /// The HTTP API's credentials by name and scope (never their values).
    HttpTokensList = "http.tokens.list", View, NoParams => crate::http::TokenList;
    /// A new value for a credential (`control`, `webhook`, a view token's name); the old
    /// one refused at once, but the webhook's, accepted for its grace period.
    HttpTokensRotate = "http.tokens.rotate", Control, crate::http::RotateTokenParams => crate::http::HttpToken;
    /// Removes a view token: refused from then on.
    HttpTokensRevoke = "http.tokens.revoke", Control, crate::http::RevokeTokenParams => crate::http::TokenList;
}

/// Methods of the protocol whose subsystems are not built yet, with where they are planned.
/// (Empty since the scheduled jobs landed; kept for the next subsystem.)
pub const PLANNED: &[(&str, &str)] = &[];

fn planned_in(method: &str) -> Option<&'static str> {
    PLANNED
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, area)| *area)
}

/// Reads params straight from their bytes; on failure, reads them again the slow way to
/// name the field at fault.
fn parse_params_raw<T: DeserializeOwned>(
    method: &str,
    params: Option<&serde_json::value::RawValue>,
) -> Result<T, RpcError> {
    let text = params.map_or("{}", |p| p.get());
    if !text.starts_with('[') {
        if let Ok(value) = serde_json::from_str(text) {
            return Ok(value);
        }
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| RpcError::invalid_params(method, e))?;
    parse_params(method, Some(value))
}

/// Reads params into the method's type; the error names the field at fault.
fn parse_params<T: DeserializeOwned>(method: &str, params: Option<Value>) -> Result<T, RpcError> {
    let value = match params {
        None => Value::Object(Map::new()),
        Some(Value::Array(items)) if items.is_empty() => Value::Object(Map::new()),
        Some(Value::Array(_)) => {
            return Err(RpcError::invalid_params(
                method,
                "positional params are not supported; pass an object of named fields",
            ));
        }
        Some(value) => value,
    };
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            RpcError::invalid_params(method, inner)
        } else {
            RpcError::invalid_params(method, format!("field `{path}`: {inner}"))
        }
    })
}

/// Params of a method that takes none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// `hello` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelloParams {
    pub protocol_version: u32,
    /// Who is calling, for the daemon's log (`memctl 0.1.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Ask for view-only access even when the peer would be granted control.
    #[serde(default)]
    pub read_only: bool,
    /// A bot's credential (the `memd.credential` memd renders into a Freqtrade bot's
    /// config): the connection gets `bot` access, MEM's decision and outcome calls for
    /// that bot's strategy only. Accepted only from a peer that would have control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `hello` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloResult {
    pub protocol_version: u32,
    /// Always `memd`.
    pub server: String,
    pub server_version: String,
    pub pid: u32,
    /// What this connection may do.
    pub access: Access,
}

/// `daemon.status` result: the daemon and host at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub version: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub uptime_secs: u64,
    pub data_dir: String,
    pub registry_dir: String,
    pub socket: String,
    pub log_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<String>,
    /// `system` under systemd (or `--system`), `user` otherwise.
    pub mode: String,
    pub counts: Counts,
    pub host: HostStatus,
    pub process: ProcessStatus,
    /// The caller's access level.
    pub access: Access,
    /// The risk guard, as `risk.status` answers it.
    #[serde(default)]
    pub risk: crate::risk::RiskStatus,
    /// The registry's database, when it is in one (`[registry] backend = "postgres"`;
    /// absent: files under `registryDir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_database: Option<RegistryDatabase>,
}

/// A registry in a database shared by several servers' daemons, as this one sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryDatabase {
    /// `host:port/database`.
    pub database: String,
    /// This server's name in it.
    pub server: String,
    /// False while it cannot be reached: reads are answered from memory, changes refused.
    pub reachable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// How many of each thing the daemon holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub strategies: usize,
    pub strategies_by_status: BTreeMap<String, usize>,
    /// Metadata files that could not be read at the last load.
    pub registry_errors: usize,
    pub connections: usize,
    pub subscribers: usize,
}

/// The host the daemon runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub cpu_count: usize,
    /// Average over all CPUs, 0-100, over the last sampling interval.
    pub cpu_percent: f32,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    /// 1, 5 and 15 minute load averages.
    #[cfg_attr(feature = "openapi", schema(min_items = 3, max_items = 3))]
    pub load_average: [f64; 3],
}

/// The daemon's own process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProcessStatus {
    pub rss_bytes: u64,
    /// Percent of one core, over the last sampling interval.
    pub cpu_percent: f32,
}

/// `events.subscribe` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeParams {
    /// Topics to receive; empty means all.
    #[serde(default)]
    pub topics: Vec<Topic>,
}

/// `events.subscribe` result: what is now subscribed, and the state to apply deltas to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeResult {
    pub topics: Vec<Topic>,
    pub snapshot: Snapshot,
    /// Sequence number of the last event published before the snapshot was taken; the
    /// first event this subscriber receives has a larger one.
    pub last_seq: u64,
}

/// State at the moment of subscription: for each topic asked for, the state its events
/// change, each member exactly what the method named beside it answers. `logs` has none
/// (a bot's log tail is `deployments.logs`). Members are absent for the topics not asked
/// for (and from a daemon older than the member).
///
/// With the periodic events (`daemon.pulse`, `mem.metrics`, `deployments.usage`, see
/// [`Event`](crate::Event)) a subscriber keeps all of this current without asking again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// `daemon`: `daemon.status` (its `access` is the subscriber's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<StatusReport>,
    /// `registry`: `strategies.list` with no filter, its `strategies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategies: Option<Vec<std::sync::Arc<StrategySummary>>>,
    /// `deployments`: `strategies.deployed {"all": true}`, its `deployments`: the ended ones
    /// still remembered too, each with its process's CPU and memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<DeployedStrategy>>,
    /// `memory`: `mem.metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_metrics: Option<crate::mem::MemMetrics>,
    /// `memory`: `mem.decisions` with no filter (the newest decisions, with their outcomes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<crate::mem::DecisionList>,
    /// `model`: `ml.status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelStatusReport>,
    /// `model`: `ml.history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_history: Option<ModelHistory>,
    /// `jobs`: `jobs.list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<crate::jobs::JobList>,
    /// `market`: `market.conditions` without params, or why there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<crate::market::MarketState>,
    /// `queue`: `queue.list` without params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::backtest::QueueList>,
    /// `daemon`: the newest alerts as they stand (oldest first; `alert.changed` events
    /// keep them current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<crate::alerts::AlertStatus>>,
}

/// `strategies.list` params: every filter is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListStrategiesParams {
    /// Exact category, case-insensitive (`momentum`, `mean_reversion`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_category: Option<String>,
    /// `freqtrade`, `rust`, `python`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StrategyStatus>,
    /// A tag the strategy must carry, case-insensitive (same as a one-element `tags`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Tags the strategy must all carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Tags of which the strategy must carry at least one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_any: Vec<String>,
    /// Sharpe ratio at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sharpe: Option<f64>,
    /// Win rate (a fraction) at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_win_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_enabled: Option<bool>,
    /// An asset class the strategy supports (`crypto`, `equities`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_class: Option<String>,
    /// Words that must all occur in the name, display name, tags, category, sub-category,
    /// description or keywords; ranked by [`crate::search`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Default: `name`, or with a `query`, best matches first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<SortKey>,
    /// Default: ascending for `name`, descending for the others (and best matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<SortOrder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

/// What `strategies.list` sorts by. Strategies without the value sort last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SortKey {
    Name,
    Sharpe,
    WinRate,
    TotalPnl,
    LastUsed,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}

/// `strategies.list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyList {
    /// Shared with the daemon's index: a page of a list costs a few pointer copies.
    pub strategies: Vec<std::sync::Arc<StrategySummary>>,
    /// How many matched before `offset`/`limit` were applied.
    pub total: usize,
}

/// `strategies.get` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetStrategyParams {
    pub id: StrategyId,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn wrong_params_name_the_field() {
        let err =
            Request::parse("strategies.list", Some(json!({"minSharpe": "high"}))).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParams);
        assert!(err.message.contains("minSharpe"), "{}", err.message);

        let err = Request::parse("strategies.list", Some(json!({"minsharpe": 1.0}))).unwrap_err();
        assert!(
            err.message.contains("unknown field `minsharpe`"),
            "{}",
            err.message
        );

        let err = Request::parse("strategies.list", Some(json!({"status": "live"}))).unwrap_err();
        assert!(
            err.message.contains("status") && err.message.contains("experimental"),
            "{}",
            err.message
        );

        let err = Request::parse("strategies.get", Some(json!({}))).unwrap_err();
        assert!(
            err.message.contains("missing field `id`"),
            "{}",
            err.message
        );

        let err =
            Request::parse("strategies.get", Some(json!({"id": "../../etc/passwd"}))).unwrap_err();
        assert!(
            err.message.contains("UUID") && err.message.contains("../../etc/passwd"),
            "{}",
            err.message
        );

        let err = Request::parse("hello", Some(json!([1]))).unwrap_err();
        assert!(err.message.contains("positional"), "{}", err.message);
    }

    #[test]
    fn the_fast_path_reads_what_the_slow_path_reads() {
        let frames: &[&[u8]] = &[
            br#"{"jsonrpc":"2.0","id":1,"method":"strategies.list","params":{"minSharpe":1.5,"tags":["a"]}}"#,
            br#"{"jsonrpc":"2.0","id":"x","method":"daemon.status"}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":"strategies.list","params":{"minSharpe":"high"}}"#,
            br#"{"jsonrpc":"2.0","id":3,"method":"strategies.get","params":[]}"#,
            br#"{"jsonrpc":"2.0","id":4,"method":"nope"}"#,
            br#"{"jsonrpc":"2.0","id":5,"method":"ml.train"}"#,
        ];
        for frame in frames {
            let fast = crate::jsonrpc::FastFrame::parse(frame).expect("well-formed");
            let slow = crate::jsonrpc::RequestFrame::parse(frame).unwrap();
            assert_eq!(Some(fast.id.clone()), slow.id);
            let a = Request::parse_raw(fast.method, fast.params);
            let b = Request::parse(&slow.method, slow.params.clone());
            assert_eq!(a, b, "{}", String::from_utf8_lossy(frame));
        }
        for odd in [
            &br#"{"jsonrpc":"2.0","method":"x"}"#[..],
            br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x","extra":1}"#,
        ] {
            assert!(
                crate::jsonrpc::FastFrame::parse(odd).is_none(),
                "{}",
                String::from_utf8_lossy(odd)
            );
        }
    }

    #[test]
    fn unknown_and_planned_methods_differ() {
        assert_eq!(
            Request::parse("nope", None).unwrap_err().code,
            ErrorCode::MethodNotFound
        );
        for (name, _) in PLANNED {
            let err = Request::parse(name, None).unwrap_err();
            assert_eq!(err.code, ErrorCode::NotImplemented);
            assert!(
                err.message.contains("not implemented yet"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn absent_params_mean_empty() {
        assert_eq!(
            Request::parse("daemon.status", None).unwrap(),
            Request::DaemonStatus(NoParams {})
        );
        assert_eq!(
            Request::parse("strategies.list", Some(json!([]))).unwrap(),
            Request::StrategiesList(ListStrategiesParams::default())
        );
    }

    #[test]
    fn no_method_is_both_built_and_planned() {
        for name in METHODS {
            assert!(planned_in(name).is_none(), "{name}");
        }
    }

    /// Serializes a value, reads it back, and checks it is unchanged.
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
        let json = serde_json::to_value(&value).unwrap();
        let back: T = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, value, "{json}");
    }

    pub(crate) fn sample_status() -> StatusReport {
        StatusReport {
            version: "0.1.0".into(),
            pid: 42,
            started_at: "2026-11-22T01:00:00Z".parse().unwrap(),
            uptime_secs: 5,
            data_dir: "/var/lib/memd".into(),
            registry_dir: "/var/lib/memd/strategy_registry".into(),
            socket: "/run/memd/memd.sock".into(),
            log_dir: "/var/log/memd".into(),
            config_file: Some("/etc/memd/memd.toml".into()),
            mode: "system".into(),
            counts: Counts {
                strategies: 11,
                strategies_by_status: BTreeMap::from([("active".into(), 8)]),
                registry_errors: 0,
                connections: 1,
                subscribers: 0,
            },
            host: HostStatus {
                hostname: Some("box".into()),
                cpu_count: 2,
                cpu_percent: 12.5,
                memory_total_bytes: 1 << 34,
                memory_used_bytes: 1 << 30,
                load_average: [0.5, 0.25, 0.125],
            },
            process: ProcessStatus {
                rss_bytes: 1 << 24,
                cpu_percent: 0.5,
            },
            access: Access::Control,
            risk: crate::risk::RiskStatus {
                limits: crate::risk::RiskLimits {
                    max_drawdown: Some(50.0),
                    ..Default::default()
                },
                tripped: true,
                trips: vec![crate::risk::tests::sample_trip()],
                equity: 15.0,
                peak: 70.0,
                drawdown: 55.0,
                day: Some("2026-11-22".parse().unwrap()),
                day_loss: 12.5,
                last_reset: None,
            },
            registry_database: Some(RegistryDatabase {
                database: "db.internal:5432/memd_registry".into(),
                server: "trader-01".into(),
                reachable: false,
                down_since: Some("2026-11-22T10:00:00Z".parse().unwrap()),
                problem: Some("the connection to the database was lost".into()),
            }),
        }
    }

    /// A snapshot of every topic: each member present, named as the README says.
    #[test]
    fn a_snapshot_of_every_topic_round_trips() {
        let latency = json!({"count": 0, "totalCount": 0, "totalMs": 0.0});
        let snapshot = Snapshot {
            daemon: Some(sample_status()),
            strategies: Some(vec![std::sync::Arc::new(
                crate::strategy::tests::sample_summary(),
            )]),
            deployments: Some(vec![crate::deploy::tests::sample_deployed()]),
            mem_metrics: Some(
                serde_json::from_value(json!({
                    "at": "2026-11-22T01:02:03Z", "uptimeSecs": 60, "windowSecs": 3600,
                    "decisionsPerHour": 0, "decisionsTotal": 0, "closed24h": 0, "wins24h": 0,
                    "outcomesTotal": 0, "predictionLatencyMs": latency,
                    "enhancementTimeMs": latency, "memoryLoadMs": latency,
                    "learnedStrategies": {"active": 0, "deprecated": 0}, "botPolls": []
                }))
                .unwrap(),
            ),
            decisions: Some(crate::mem::DecisionList {
                decisions: vec![],
                unreadable_lines: 0,
            }),
            model: Some(
                serde_json::from_value(json!({
                    "current": null, "versions": 0, "training": false,
                    "promotionMetric": "accuracy", "promotionMargin": 0.0,
                    "marketDataDir": "/var/lib/memd/market", "pairs": ["BTC/USDT"],
                    "timeframe": "1h"
                }))
                .unwrap(),
            ),
            model_history: Some(ModelHistory { versions: vec![] }),
            jobs: Some(crate::jobs::JobList { jobs: vec![] }),
            market: Some(crate::market::MarketState {
                conditions: None,
                error: Some("no candles".into()),
            }),
            queue: Some(crate::backtest::QueueList {
                jobs: vec![],
                parallel: 1,
            }),
            alerts: Some(vec![]),
        };
        let json = serde_json::to_value(&snapshot).unwrap();
        let mut members: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        members.sort();
        assert_eq!(
            members,
            [
                "alerts",
                "daemon",
                "decisions",
                "deployments",
                "jobs",
                "market",
                "memMetrics",
                "model",
                "modelHistory",
                "queue",
                "strategies"
            ]
        );
        round_trip(snapshot);
        assert_eq!(
            serde_json::to_value(Snapshot::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn every_params_and_result_type_round_trips() {
        round_trip(NoParams {});
        round_trip(HelloParams {
            protocol_version: 1,
            client: Some("memctl".into()),
            read_only: true,
            credential: None,
        });
        round_trip(HelloParams {
            protocol_version: 1,
            client: Some("memd mixin".into()),
            read_only: false,
            credential: Some("ab12".into()),
        });
        round_trip(HelloResult {
            protocol_version: 1,
            server: "memd".into(),
            server_version: "0.1.0".into(),
            pid: 1,
            access: Access::View,
        });
        round_trip(sample_status());
        round_trip(SubscribeParams {
            topics: vec![Topic::Daemon, Topic::Registry],
        });
        round_trip(SubscribeResult {
            topics: vec![Topic::Daemon],
            snapshot: Snapshot {
                daemon: Some(sample_status()),
                strategies: Some(vec![]),
                ..Snapshot::default()
            },
            last_seq: 3,
        });
        round_trip(ListStrategiesParams {
            category: Some("momentum".into()),
            sub_category: Some("macd".into()),
            language: Some("freqtrade".into()),
            origin: Some(Origin::BuiltIn),
            status: Some(StrategyStatus::Active),
            tag: Some("freqtrade".into()),
            tags: vec!["a".into()],
            tags_any: vec!["b".into(), "c".into()],
            min_sharpe: Some(1.2),
            min_win_rate: Some(0.5),
            mem_enabled: Some(true),
            asset_class: Some("crypto".into()),
            query: Some("rsi".into()),
            sort: Some(SortKey::WinRate),
            order: Some(SortOrder::Asc),
            limit: Some(10),
            offset: Some(2),
        });
        round_trip(StrategyList {
            strategies: vec![std::sync::Arc::new(crate::strategy::tests::sample_summary())],
            total: 1,
        });
        round_trip(GetStrategyParams {
            id: crate::strategy::tests::sample_summary().id,
        });
        round_trip(crate::strategy::tests::sample_detail());
    }
}
