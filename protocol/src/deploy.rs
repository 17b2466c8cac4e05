//! Params and results of deployment: running a registry strategy as a Freqtrade bot,
//! watching it, and stopping it. Field names follow the seed API's deploy response
//! (`strategyId`, `strategyName`, `deploymentType`, `processId`, `port`, `startedAt`,
//! `status`, `dryRun`, `configFile`); bot API credentials never appear here.

use crate::strategy::StrategyId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A deployment's id: a UUID, like a strategy's, so it can name its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
pub struct DeploymentId(pub Uuid);

impl DeploymentId {
    pub fn new_random() -> Self {
        DeploymentId(Uuid::new_v4())
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for DeploymentId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Uuid::parse_str(s)
            .map(DeploymentId)
            .map_err(|_| format!("deployment id must be a UUID, got {s:?}"))
    }
}

/// How a strategy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeploymentType {
    Freqtrade,
    Native,
}

/// Where a deployment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// Spawned, waiting for its API to answer.
    Starting,
    Running,
    /// Being stopped (draining or terminating).
    Stopping,
    Stopped,
    /// Exited or stopped answering; a restart is scheduled.
    Crashed,
    Restarting,
    /// Gave up: restarts exhausted, or it never became ready.
    Failed,
}

impl DeploymentStatus {
    /// Whether the deployment holds (or will hold again) a process.
    pub fn is_active(self) -> bool {
        !matches!(self, DeploymentStatus::Stopped | DeploymentStatus::Failed)
    }
}

/// Who started a deployment: a scheduled job only ever stops what it started itself,
/// never what a person started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StartedBy {
    Manual,
    /// The rotation job.
    Rotation,
    /// The job that deploys on a change of market regime.
    Regime,
}

/// What the daemon read from a running bot at its last poll.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BotStats {
    pub open_trades: u64,
    pub closed_trades: u64,
    /// Realised profit in the stake currency.
    pub profit_closed: f64,
    /// Profit of all trades, open ones at the current rate.
    pub profit_all: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake_currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polled_at: Option<DateTime<Utc>>,
}

/// One deployment, as `strategies.deployed` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeployedStrategy {
    pub deployment_id: DeploymentId,
    pub strategy_id: StrategyId,
    pub strategy_name: String,
    pub deployment_type: DeploymentType,
    #[cfg_attr(feature = "openapi", schema(maximum = 4294967295_u32))]
    pub process_id: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(maximum = 65535))]
    pub port: Option<u16>,
    pub started_at: DateTime<Utc>,
    /// When its process (a bot) or its runner (a native strategy) last started running:
    /// set anew by a restart of the bot, or of memd for a native runner (a bot memd
    /// re-adopts runs on and keeps it); none while it does not run. Uptime counts from
    /// here, not from `startedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<DateTime<Utc>>,
    pub status: DeploymentStatus,
    pub dry_run: bool,
    pub config_file: Option<String>,
    pub started_by: StartedBy,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(maximum = 4294967295_u32))]
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default)]
    pub stats: BotStats,
    /// Warning and error lines in the bot's log since it started.
    #[serde(default)]
    pub warnings: u64,
    #[serde(default)]
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// A person has seen that it ended (`deployments.acknowledge`): a failed deployment
    /// is shown by default until then. Kept with the deployment in `state.json`.
    #[serde(default)]
    pub acknowledged: bool,
    /// A bot memd did not start and only watches (`deployments.attach`): absent for the
    /// deployments memd runs itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached: Option<Attachment>,
}

/// What says a deployment is a Freqtrade bot memd did not start (`memctl attach`): memd
/// reads its status, profit and trades, and never starts, stops or restarts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The operator's name for it (`memctl attach NAME`), unique among attached bots.
    pub name: String,
    /// Its REST API's base URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// The API user memd signs in as (the password stays in the daemon's file).
    pub username: String,
    /// The operator allowed `stopentry` and a config reload (the risk guard's pause, a
    /// Telegram `/stopentry`, a forwarded TradingView alert); never a stop or restart.
    pub allow_control: bool,
}

impl DeployedStrategy {
    /// The attached bot's name, when memd did not start it.
    pub fn attached_name(&self) -> Option<&str> {
        self.attached.as_ref().map(|a| a.name.as_str())
    }

    /// It ended in failure (restarts exhausted, never became ready, a native runner's
    /// error): no process, and nothing will restart it.
    pub fn ended_in_failure(&self) -> bool {
        self.status == DeploymentStatus::Failed
    }

    /// It ended in failure and nobody has acknowledged it yet: the lists people read
    /// show it by default beside the active deployments.
    pub fn needs_acknowledgement(&self) -> bool {
        self.ended_in_failure() && !self.acknowledged
    }

    /// What a person's default list shows: every active deployment and the failed ones
    /// not yet acknowledged.
    pub fn shown_by_default(&self) -> bool {
        self.status.is_active() || self.needs_acknowledgement()
    }
}

impl DeployedStrategy {
    /// When its uptime counts from: `runningSince`, else (a record an earlier memd wrote)
    /// `startedAt` while it runs; `None` when it does not run.
    pub fn up_since(&self) -> Option<DateTime<Utc>> {
        match self.status {
            DeploymentStatus::Running | DeploymentStatus::Stopping => {
                Some(self.running_since.unwrap_or(self.started_at))
            }
            _ => self.running_since,
        }
    }
}

/// `strategies.deploy`: the seed's `{dryRun, parameters}` plus a port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployParams {
    pub id: StrategyId,
    /// Default true: live trading only when asked, allowed by the strategy, and the
    /// daemon has exchange keys.
    #[serde(default = "yes")]
    pub dry_run: bool,
    /// The bot API's port; default the strategy's preferred one, else a free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Accepted for the seed API's sake; strategy parameters live in the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// For a native strategy: its candle feed (defaults from the strategy's deployment
    /// section, then from `[market]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeOptions>,
}

/// How a native deployment reads its candles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedMode {
    /// The file's candles, start to end, then the deployment finishes.
    Replay,
    /// The file's history warms up; candles appended to it are traded.
    Follow,
}

/// A native deployment's feed; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NativeOptions {
    /// The pair traded, e.g. `BTC/USDT` (default: the deployment section's, else
    /// `[market] reference_pair`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
    /// A candle file (Freqtrade feather/json/json.gz or CSV) inside the market data
    /// directory: relative to it, or absolute; `..` and anything outside are refused.
    /// Default: the pair's file there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Default `follow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FeedMode>,
    /// Replay speed in candles a second; absent or 0: as fast as possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Paper money to start with (default 1000 in the quote currency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_balance: Option<f64>,
}

/// `market.feed`: the candle file a native deployment would read, with these options
/// and the strategy's deployment section (`id`), as a deploy would resolve them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedParams {
    /// A native strategy whose deployment section gives the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<StrategyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// `market.feed` result: what a native deployment would read, and how old its newest
/// candle is (a follow waits for candles appended after it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedInfo {
    pub pair: String,
    pub timeframe: String,
    /// The file as a deploy's `native.file` takes it: relative to the market data
    /// directory.
    pub file: String,
    /// Its absolute path.
    pub path: String,
    /// The mode a deploy without one would use (the section's, else follow).
    pub mode: FeedMode,
    /// Usable candles in the file.
    pub candles: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_candle: Option<DateTime<Utc>>,
    /// The open time of its newest candle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_candle: Option<DateTime<Utc>>,
    /// When the file was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<DateTime<Utc>>,
    /// The pairs with candles at this timeframe in the market data directory.
    #[serde(default)]
    pub pairs: Vec<String>,
}

fn yes() -> bool {
    true
}

/// How to stop: `now` (terminate) or `drain` (no new entries, wait for open trades to
/// close or the deadline, then terminate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopMode {
    #[default]
    Now,
    Drain,
}

/// `strategies.stop` and `strategies.restart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopParams {
    pub id: StrategyId,
    #[serde(default)]
    pub mode: StopMode,
    /// For `drain`: how long to wait for open trades (default 300 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_secs: Option<u64>,
}

/// `deployments.stop_all`.
/// `strategies.deployed` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployedParams {
    /// Also list deployments that ended (stopped or failed) and are still remembered.
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopAllParams {
    #[serde(default)]
    pub mode: StopMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_secs: Option<u64>,
}

/// `deployments.acknowledge`: a person has seen that a deployment ended (it failed); it
/// leaves the default lists. Refused for a deployment that is still active.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcknowledgeParams {
    pub deployment_id: DeploymentId,
}

/// `strategies.deployed` result (and `deployments.stop_all`'s: the deployments stopped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeployedList {
    pub deployments: Vec<DeployedStrategy>,
    /// What was left alone and why, one sentence each (`deployments.stop_all`: the
    /// attached bots, which memd does not stop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// `deployments.attach`: watch a Freqtrade bot memd did not start. The password is never
/// sent: the daemon reads it from `passwordFile`, a file its user can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachParams {
    /// A name for it, unique among attached bots (what `memctl detach` takes).
    pub name: String,
    /// Its REST API: `http://` or `https://`, host and port (`/api/v1` is added).
    pub url: String,
    /// Its `api_server.username`.
    pub username: String,
    /// An absolute path to a file holding its `api_server.password` (0600; a trailing
    /// newline is ignored).
    pub password_file: String,
    /// The registry strategy its closed trades are recorded under; default: the one
    /// whose Freqtrade class is the bot's strategy (`/show_config`), when exactly one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategyId>,
    /// Allow `stopentry` and a config reload (never a stop or restart). Default false.
    #[serde(default)]
    pub allow_control: bool,
}

/// `deployments.detach`: stop watching an attached bot; the bot runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetachParams {
    /// The attached bot's name, or its deployment id.
    pub name: String,
}

/// `deployments.usage` data: the CPU and memory of the active deployments' processes whose
/// figures changed as shown since the last event, the figures `strategies.deployed`
/// computes when asked and no other event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeploymentsUsage {
    /// One entry per changed active deployment with a live process (none without one).
    pub deployments: Vec<DeploymentUsage>,
}

/// One process's figures in [`DeploymentsUsage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeploymentUsage {
    pub deployment_id: DeploymentId,
    /// Percent of one core since the previous sample, as `strategies.deployed`'s
    /// `cpuPercent`.
    pub cpu_percent: f32,
    pub rss_bytes: u64,
}

/// `deployments.logs`: the last lines of a deployment's log (of a strategy's current
/// deployment, or of a given deployment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsParams {
    pub id: StrategyId,
    /// Default 100, at most 10,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<usize>,
}

/// `deployments.logs` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogTail {
    pub deployment_id: DeploymentId,
    pub lines: Vec<String>,
}

/// `deployment.changed` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeploymentChanged {
    pub deployment: DeployedStrategy,
}

/// `bot.log` data: new lines of a bot's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BotLog {
    pub deployment_id: DeploymentId,
    pub strategy_id: StrategyId,
    pub lines: Vec<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    pub(crate) fn sample_deployed() -> DeployedStrategy {
        DeployedStrategy {
            deployment_id: DeploymentId::new_random(),
            strategy_id: "4ce3a79b-c22b-4b42-9d87-3a58052a9eec".parse().unwrap(),
            strategy_name: "Freqtrade MACD Hunter".into(),
            deployment_type: DeploymentType::Freqtrade,
            process_id: Some(4242),
            port: Some(8083),
            started_at: "2026-11-22T01:00:00Z".parse().unwrap(),
            running_since: Some("2026-11-22T03:00:00Z".parse().unwrap()),
            status: DeploymentStatus::Running,
            dry_run: true,
            config_file: Some("/var/lib/memd/deployments/x/config.json".into()),
            started_by: StartedBy::Manual,
            restarts: 1,
            last_error: Some("exited with code 2".into()),
            stats: BotStats {
                open_trades: 2,
                closed_trades: 5,
                profit_closed: 1.5,
                profit_all: 2.0,
                balance: Some(999.0),
                stake_currency: Some("USDT".into()),
                bot_state: Some("running".into()),
                polled_at: None,
            },
            warnings: 3,
            errors: 0,
            cpu_percent: Some(1.5),
            rss_bytes: Some(320 << 20),
            acknowledged: false,
            attached: None,
        }
    }

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
        let json = serde_json::to_value(&value).unwrap();
        assert_eq!(
            serde_json::from_value::<T>(json.clone()).unwrap(),
            value,
            "{json}"
        );
    }

    #[test]
    fn every_deployment_message_round_trips() {
        let d = sample_deployed();
        round_trip(d.clone());
        round_trip(DeployParams {
            id: d.strategy_id,
            dry_run: false,
            port: Some(8083),
            parameters: Some(Map::new()),
            native: None,
        });
        round_trip(StopParams {
            id: d.strategy_id,
            mode: StopMode::Drain,
            deadline_secs: Some(60),
        });
        round_trip(StopAllParams {
            mode: StopMode::Now,
            deadline_secs: None,
        });
        round_trip(DeployedList {
            deployments: vec![d.clone()],
            notes: vec!["left alone".into()],
        });
        round_trip(DeployedStrategy {
            attached: Some(Attachment {
                name: "outside".into(),
                url: "http://127.0.0.1:8080".into(),
                username: "freqtrader".into(),
                allow_control: false,
            }),
            ..d.clone()
        });
        round_trip(AttachParams {
            name: "outside".into(),
            url: "http://127.0.0.1:8080".into(),
            username: "freqtrader".into(),
            password_file: "/etc/memd/outside.password".into(),
            strategy: Some(d.strategy_id),
            allow_control: true,
        });
        round_trip(DetachParams {
            name: "outside".into(),
        });
        round_trip(DeploymentsUsage {
            deployments: vec![DeploymentUsage {
                deployment_id: d.deployment_id,
                cpu_percent: 12.5,
                rss_bytes: 320 << 20,
            }],
        });
        round_trip(LogsParams {
            id: d.strategy_id,
            lines: Some(10),
        });
        round_trip(LogTail {
            deployment_id: d.deployment_id,
            lines: vec!["a".into()],
        });
        round_trip(AcknowledgeParams {
            deployment_id: d.deployment_id,
        });
        round_trip(FeedParams {
            id: Some(d.strategy_id),
            pair: Some("ETH/BTC".into()),
            timeframe: None,
            file: None,
        });
        round_trip(FeedInfo {
            pair: "ETH/BTC".into(),
            timeframe: "5m".into(),
            file: "ETH_BTC-5m.feather".into(),
            path: "/var/lib/memd/market/ETH_BTC-5m.feather".into(),
            mode: FeedMode::Follow,
            candles: 12,
            first_candle: Some("2018-01-01T00:00:00Z".parse().unwrap()),
            newest_candle: Some("2018-01-01T00:55:00Z".parse().unwrap()),
            modified_at: None,
            pairs: vec!["ETH/BTC".into()],
        });
        let json = serde_json::to_value(&d).unwrap();
        for key in [
            "strategyId",
            "strategyName",
            "deploymentType",
            "processId",
            "port",
            "startedAt",
            "status",
            "dryRun",
            "configFile",
        ] {
            assert!(json.get(key).is_some(), "the seed's field {key} is missing");
        }
    }

    #[test]
    fn a_record_without_acknowledged_reads_as_not_acknowledged() {
        let mut json = serde_json::to_value(sample_deployed()).unwrap();
        json.as_object_mut().unwrap().remove("acknowledged");
        let mut d: DeployedStrategy = serde_json::from_value(json).unwrap();
        assert!(!d.acknowledged, "state.json of earlier versions");
        assert!(
            d.shown_by_default() && !d.needs_acknowledgement(),
            "running"
        );
        d.status = DeploymentStatus::Failed;
        assert!(d.needs_acknowledgement() && d.shown_by_default());
        d.acknowledged = true;
        assert!(!d.shown_by_default() && d.ended_in_failure());
        d.status = DeploymentStatus::Stopped;
        d.acknowledged = false;
        assert!(!d.shown_by_default(), "a stop is no failure");
    }

    #[test]
    fn uptime_counts_from_running_since_and_only_while_it_runs() {
        let mut d = sample_deployed();
        assert_eq!(d.up_since(), d.running_since);
        // A record an earlier memd wrote: from its start.
        d.running_since = None;
        assert_eq!(d.up_since(), Some(d.started_at));
        d.status = DeploymentStatus::Stopped;
        assert_eq!(d.up_since(), None);
        d.status = DeploymentStatus::Starting;
        assert_eq!(d.up_since(), None);
        // Absent from the JSON when none, read as none when absent.
        let json = serde_json::to_value(&d).unwrap();
        assert!(json.get("runningSince").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<DeployedStrategy>(json).unwrap(), d);
    }

    #[test]
    fn seed_deploy_body_is_accepted() {
        let p: DeployParams = serde_json::from_value(serde_json::json!({"id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec", "dryRun": true, "parameters": {"customParam": "value"}})).unwrap();
        assert!(p.dry_run);
        let p: DeployParams = serde_json::from_value(
            serde_json::json!({"id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec"}),
        )
        .unwrap();
        assert!(p.dry_run, "dry-run unless asked");
    }
}
