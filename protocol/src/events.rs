//! Events the daemon pushes to subscribers, as JSON-RPC notifications.
//!
//! The notification's `method` is the event name (`registry.changed`); its `params` are
//! `{"seq": n, "at": time, "data": {...}}`. `seq` grows by one for every event the daemon
//! publishes, so a subscriber can check it received every event of its topics in order.
//!
//! Most events announce a change. Three are periodic instead ([`Event::is_periodic`]):
//! the figures that move by themselves, which no change announces, sampled every
//! [`PERIODIC_INTERVAL`] while at least one client is subscribed on the socket (whatever
//! its topics; the HTTP API's event stream, which is no subscriber, sees them only then),
//! and not after `daemon.stopping`:
//!
//! | event | topic | data |
//! |---|---|---|
//! | `daemon.pulse` | `daemon` | [`DaemonPulse`]: `daemon.status`'s uptime, counts, host and process figures |
//! | `mem.metrics` | `memory` | [`MemMetrics`](crate::mem::MemMetrics): what `mem.metrics` answers |
//! | `deployments.usage` | `deployments` | [`DeploymentsUsage`](crate::deploy::DeploymentsUsage): the running bots whose CPU or memory changed (as shown: 0.1 %, 0.1 of the unit) since the last; not sent when none did |
//!
//! With the subscription's snapshot ([`Snapshot`](crate::methods::Snapshot)), they let a
//! client show the daemon's state without ever polling it. Each is serialized once for all
//! subscribers, like any event.

use crate::jsonrpc::NotificationFrame;
use crate::methods::{Counts, HostStatus, ProcessStatus};
use crate::strategy::{StrategyId, StrategySummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// How often the periodic events are published (while someone is subscribed): the
/// daemon samples its host and process figures this often too.
pub const PERIODIC_INTERVAL: Duration = Duration::from_secs(2);

/// A family of events a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// The daemon itself (shutting down, its figures every 2 s, the risk guard tripping
    /// and being reset, the alerts it raises and sends).
    Daemon,
    /// Strategies added, changed or removed.
    Registry,
    /// Deployments started, changed, stopped; the bots' CPU and memory every 2 s.
    Deployments,
    /// New lines of bots' logs (for following them).
    Logs,
    /// The trend-reversal model: training progress, promotions, rollbacks.
    Model,
    /// MEM's memory: decisions logged, outcomes, parameter adjustments; MEM's figures
    /// every 2 s.
    Memory,
    /// Scheduled jobs: a run finished (or was skipped), a run's progress.
    Jobs,
    /// Market data: the conditions after the candles changed (a refresh).
    Market,
    /// The queue of heavy work: backtests and walk-forwards queued, started, moving on,
    /// ended.
    Queue,
}

impl Topic {
    pub const ALL: [Topic; 9] = [
        Topic::Daemon,
        Topic::Registry,
        Topic::Deployments,
        Topic::Logs,
        Topic::Model,
        Topic::Memory,
        Topic::Jobs,
        Topic::Market,
        Topic::Queue,
    ];
}

/// Something that happened in the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The daemon is shutting down; the connection will close.
    DaemonStopping(DaemonStopping),
    /// A strategy's metadata changed.
    RegistryChanged(RegistryChanged),
    /// A metadata file edited outside the daemon could not be read; the last good
    /// version is kept.
    RegistryInvalid(RegistryInvalid),
    /// A deployment changed status or stats (not for a poll that only moved `polledAt`).
    DeploymentChanged(Box<crate::deploy::DeploymentChanged>),
    /// New lines in a bot's log.
    BotLog(crate::deploy::BotLog),
    /// A training run moved on.
    ModelProgress(crate::ml::TrainProgress),
    /// A model was trained, promoted, rejected or rolled back.
    ModelChanged(crate::ml::ModelChanged),
    /// A decision was logged, or its outcome (with the decision as it now stands).
    DecisionLogged(Box<crate::mem::Decision>),
    /// A memory file changed, by memd or by hand.
    MemoryChanged(crate::mem::MemoryChanged),
    /// A job's run ended (or was skipped, or was found missed at start).
    JobFinished(Box<crate::jobs::JobRun>),
    /// A running job moved on (a data refresh, pair by pair).
    JobProgress(crate::jobs::JobProgress),
    /// The market data changed (a refresh): the conditions now, or why there are none.
    MarketChanged(Box<crate::market::MarketState>),
    /// A queue job was queued, started, moved on or ended (the job as it now stands).
    QueueChanged(Box<crate::backtest::QueueJob>),
    /// The risk guard tripped: a limit was crossed, the affected bots enter nothing more,
    /// deploys are refused until an operator resets it.
    RiskTripped(Box<crate::risk::RiskTrip>),
    /// An operator reset the risk guard.
    RiskReset(Box<crate::risk::RiskReset>),
    /// Periodic: the daemon's figures that change by themselves.
    DaemonPulse(Box<DaemonPulse>),
    /// Periodic: MEM's figures, as `mem.metrics` answers them.
    MemMetrics(Box<crate::mem::MemMetrics>),
    /// Periodic: the CPU and memory of the bots that run.
    DeploymentsUsage(crate::deploy::DeploymentsUsage),
    /// An alert was raised, or tried at one of its targets (the alert as it now stands).
    AlertChanged(Box<crate::alerts::AlertStatus>),
}

/// `daemon.pulse` data: the members of `daemon.status` that change without an event. The
/// rest (version, pid, start time, paths, mode) is fixed while the daemon runs, and
/// `access` belongs to each caller, so neither is repeated here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DaemonPulse {
    pub uptime_secs: u64,
    pub counts: Counts,
    pub host: HostStatus,
    pub process: ProcessStatus,
    /// The risk guard's figures (they move with every poll of a bot; a trip and a reset
    /// are events of their own).
    #[serde(default)]
    pub risk: crate::risk::RiskStatus,
}

/// `registry.invalid` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RegistryInvalid {
    pub path: String,
    pub problem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_id: Option<StrategyId>,
}

/// `daemon.stopping` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DaemonStopping {
    /// Why: `SIGTERM`, `SIGINT`, ...
    pub reason: String,
}

/// `registry.changed` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RegistryChanged {
    pub strategy_id: StrategyId,
    pub change: RegistryChange,
    /// The strategy as it is now; absent when it was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Box<StrategySummary>>,
}

/// What happened to a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RegistryChange {
    Added,
    Updated,
    Removed,
}

impl Event {
    /// The notification method name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::DaemonStopping(_) => "daemon.stopping",
            Event::RegistryChanged(_) => "registry.changed",
            Event::RegistryInvalid(_) => "registry.invalid",
            Event::DeploymentChanged(_) => "deployment.changed",
            Event::BotLog(_) => "bot.log",
            Event::ModelProgress(_) => "model.progress",
            Event::ModelChanged(_) => "model.changed",
            Event::DecisionLogged(_) => "decision.logged",
            Event::MemoryChanged(_) => "memory.changed",
            Event::JobFinished(_) => "job.finished",
            Event::JobProgress(_) => "job.progress",
            Event::MarketChanged(_) => "market.changed",
            Event::QueueChanged(_) => "queue.changed",
            Event::RiskTripped(_) => "risk.tripped",
            Event::RiskReset(_) => "risk.reset",
            Event::DaemonPulse(_) => "daemon.pulse",
            Event::MemMetrics(_) => "mem.metrics",
            Event::DeploymentsUsage(_) => "deployments.usage",
            Event::AlertChanged(_) => "alert.changed",
        }
    }

    /// Whether the event is one of the periodic samples rather than news of a change.
    pub fn is_periodic(&self) -> bool {
        matches!(
            self,
            Event::DaemonPulse(_) | Event::MemMetrics(_) | Event::DeploymentsUsage(_)
        )
    }

    pub fn topic(&self) -> Topic {
        match self {
            Event::DaemonStopping(_)
            | Event::DaemonPulse(_)
            | Event::RiskTripped(_)
            | Event::RiskReset(_)
            | Event::AlertChanged(_) => Topic::Daemon,
            Event::RegistryChanged(_) | Event::RegistryInvalid(_) => Topic::Registry,
            Event::DeploymentChanged(_) | Event::DeploymentsUsage(_) => Topic::Deployments,
            Event::BotLog(_) => Topic::Logs,
            Event::ModelProgress(_) | Event::ModelChanged(_) => Topic::Model,
            Event::DecisionLogged(_) | Event::MemoryChanged(_) | Event::MemMetrics(_) => {
                Topic::Memory
            }
            Event::JobFinished(_) | Event::JobProgress(_) => Topic::Jobs,
            Event::MarketChanged(_) => Topic::Market,
            Event::QueueChanged(_) => Topic::Queue,
        }
    }

    fn data(&self) -> Value {
        match self {
            Event::DaemonStopping(d) => serde_json::to_value(d),
            Event::RegistryChanged(d) => serde_json::to_value(d),
            Event::RegistryInvalid(d) => serde_json::to_value(d),
            Event::DeploymentChanged(d) => serde_json::to_value(d),
            Event::BotLog(d) => serde_json::to_value(d),
            Event::ModelProgress(d) => serde_json::to_value(d),
            Event::ModelChanged(d) => serde_json::to_value(d),
            Event::DecisionLogged(d) => serde_json::to_value(d),
            Event::MemoryChanged(d) => serde_json::to_value(d),
            Event::JobFinished(d) => serde_json::to_value(d),
            Event::JobProgress(d) => serde_json::to_value(d),
            Event::MarketChanged(d) => serde_json::to_value(d),
            Event::QueueChanged(d) => serde_json::to_value(d),
            Event::RiskTripped(d) => serde_json::to_value(d),
            Event::RiskReset(d) => serde_json::to_value(d),
            Event::DaemonPulse(d) => serde_json::to_value(d),
            Event::MemMetrics(d) => serde_json::to_value(d),
            Event::DeploymentsUsage(d) => serde_json::to_value(d),
            Event::AlertChanged(d) => serde_json::to_value(d),
        }
        .expect("event data always serializes")
    }

    /// Reads an event from its name and data.
    pub fn from_parts(name: &str, data: Value) -> Result<Event, String> {
        let bad = |e: serde_json::Error| format!("malformed `{name}` event: {e}");
        match name {
            "daemon.stopping" => serde_json::from_value(data)
                .map(Event::DaemonStopping)
                .map_err(bad),
            "registry.changed" => serde_json::from_value(data)
                .map(Event::RegistryChanged)
                .map_err(bad),
            "registry.invalid" => serde_json::from_value(data)
                .map(Event::RegistryInvalid)
                .map_err(bad),
            "deployment.changed" => serde_json::from_value(data)
                .map(|d| Event::DeploymentChanged(Box::new(d)))
                .map_err(bad),
            "bot.log" => serde_json::from_value(data).map(Event::BotLog).map_err(bad),
            "model.progress" => serde_json::from_value(data)
                .map(Event::ModelProgress)
                .map_err(bad),
            "model.changed" => serde_json::from_value(data)
                .map(Event::ModelChanged)
                .map_err(bad),
            "decision.logged" => serde_json::from_value(data)
                .map(|d| Event::DecisionLogged(Box::new(d)))
                .map_err(bad),
            "memory.changed" => serde_json::from_value(data)
                .map(Event::MemoryChanged)
                .map_err(bad),
            "job.finished" => serde_json::from_value(data)
                .map(|d| Event::JobFinished(Box::new(d)))
                .map_err(bad),
            "job.progress" => serde_json::from_value(data)
                .map(Event::JobProgress)
                .map_err(bad),
            "market.changed" => serde_json::from_value(data)
                .map(|d| Event::MarketChanged(Box::new(d)))
                .map_err(bad),
            "queue.changed" => serde_json::from_value(data)
                .map(|d| Event::QueueChanged(Box::new(d)))
                .map_err(bad),
            "risk.tripped" => serde_json::from_value(data)
                .map(|d| Event::RiskTripped(Box::new(d)))
                .map_err(bad),
            "risk.reset" => serde_json::from_value(data)
                .map(|d| Event::RiskReset(Box::new(d)))
                .map_err(bad),
            "daemon.pulse" => serde_json::from_value(data)
                .map(|d| Event::DaemonPulse(Box::new(d)))
                .map_err(bad),
            "mem.metrics" => serde_json::from_value(data)
                .map(|d| Event::MemMetrics(Box::new(d)))
                .map_err(bad),
            "deployments.usage" => serde_json::from_value(data)
                .map(Event::DeploymentsUsage)
                .map_err(bad),
            "alert.changed" => serde_json::from_value(data)
                .map(|d| Event::AlertChanged(Box::new(d)))
                .map_err(bad),
            other => Err(format!("unknown event `{other}`")),
        }
    }
}

/// An event as delivered: its place on the bus, its time, and the event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMessage {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub event: Event,
}

impl EventMessage {
    pub fn to_notification(&self) -> NotificationFrame {
        NotificationFrame::new(
            self.event.name(),
            json!({ "seq": self.seq, "at": self.at, "data": self.event.data() }),
        )
    }

    pub fn from_notification(n: &NotificationFrame) -> Result<EventMessage, String> {
        #[derive(Deserialize)]
        struct Params {
            seq: u64,
            at: DateTime<Utc>,
            data: Value,
        }
        let p: Params = serde_json::from_value(n.params.clone())
            .map_err(|e| format!("malformed `{}` notification: {e}", n.method))?;
        Ok(EventMessage {
            seq: p.seq,
            at: p.at,
            event: Event::from_parts(&n.method, p.data)?,
        })
    }
}

/// OpenAPI schemas of events (the `openapi` feature).
///
/// [`Event`] has no serde form of its own: on the wire it is a name (the notification's
/// `method`, the SSE `event`) and its data. Its schema is its data's, one of the payload
/// schemas ([`Event::data_schemas`] says which name has which); [`EventMessage`]'s is the
/// notification's `params` (the SSE `data`), `{"seq": n, "at": time, "data": {...}}`.
#[cfg(feature = "openapi")]
mod openapi {
    use super::{Event, EventMessage};
    use crate::{alerts, backtest, deploy, events, jobs, market, mem, ml, risk};
    use chrono::{DateTime, Utc};
    use std::borrow::Cow;
    use utoipa::openapi::schema::{AnyOfBuilder, Schema};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    type Schemas = Vec<(String, RefOr<Schema>)>;

    macro_rules! payloads {
        ($($variant:ident = $name:literal => $ty:ty,)*) => {
            impl Event {
                /// Each event's name with the name of its data's schema (in
                /// `#/components/schemas`).
                pub fn data_schemas() -> Vec<(&'static str, Cow<'static, str>)> {
                    vec![$(($name, <$ty as ToSchema>::name()),)*]
                }

                /// The name of this event's data schema.
                pub fn data_schema(&self) -> Cow<'static, str> {
                    // Exhaustive, and typed: a variant missing from `payloads!`, or given
                    // another type than its data's, does not compile.
                    match self {
                        $(Event::$variant(data) => {
                            let _: &$ty = std::borrow::Borrow::borrow(data);
                            <$ty as ToSchema>::name()
                        })*
                    }
                }
            }

            /// Pushes every payload's schema, and the schemas they refer to.
            fn collect(schemas: &mut Schemas) {
                $(
                    schemas.push((<$ty as ToSchema>::name().into_owned(), <$ty as PartialSchema>::schema()));
                    <$ty as ToSchema>::schemas(schemas);
                )*
            }
        };
    }

    // One line per event: its variant, its name (as `Event::name` gives it; the tests
    // check), and the type of its data.
    payloads! {
        DaemonStopping = "daemon.stopping" => events::DaemonStopping,
        RegistryChanged = "registry.changed" => events::RegistryChanged,
        RegistryInvalid = "registry.invalid" => events::RegistryInvalid,
        DeploymentChanged = "deployment.changed" => deploy::DeploymentChanged,
        BotLog = "bot.log" => deploy::BotLog,
        ModelProgress = "model.progress" => ml::TrainProgress,
        ModelChanged = "model.changed" => ml::ModelChanged,
        DecisionLogged = "decision.logged" => mem::Decision,
        MemoryChanged = "memory.changed" => mem::MemoryChanged,
        JobFinished = "job.finished" => jobs::JobRun,
        JobProgress = "job.progress" => jobs::JobProgress,
        MarketChanged = "market.changed" => market::MarketState,
        QueueChanged = "queue.changed" => backtest::QueueJob,
        RiskTripped = "risk.tripped" => risk::RiskTrip,
        RiskReset = "risk.reset" => risk::RiskReset,
        DaemonPulse = "daemon.pulse" => events::DaemonPulse,
        MemMetrics = "mem.metrics" => mem::MemMetrics,
        DeploymentsUsage = "deployments.usage" => deploy::DeploymentsUsage,
        AlertChanged = "alert.changed" => alerts::AlertStatus,
    }

    /// An event's data: one of the payloads, which one the event's name says. `anyOf`, not
    /// `oneOf`: the payloads do not exclude each other (`model.changed`'s data has the
    /// `reason` that is all of `daemon.stopping`'s).
    impl PartialSchema for Event {
        fn schema() -> RefOr<Schema> {
            // The event's name is the notification's `method`, the SSE message's `event`.
            let mut description = String::from("An event's data; which payload, its name says:");
            let mut any_of = AnyOfBuilder::new();
            for (event, schema) in Event::data_schemas() {
                description.push_str(&format!(" `{event}`: {schema};"));
                any_of = any_of.item(Ref::from_schema_name(schema));
            }
            description.pop();
            any_of.description(Some(description)).into()
        }
    }

    impl ToSchema for Event {
        fn schemas(schemas: &mut Schemas) {
            collect(schemas);
        }
    }

    /// An event as delivered: a socket notification's `params`, an SSE message's `data`
    /// (the event's name is the notification's `method`, the SSE message's `event`).
    #[derive(ToSchema)]
    #[allow(dead_code)] // only its schema is used: it is what `to_notification` writes
    struct Params {
        /// Grows by one for every event the daemon publishes.
        seq: u64,
        /// When the event was published.
        at: DateTime<Utc>,
        data: Event,
    }

    /// [`EventMessage::to_notification`]'s `params`.
    impl PartialSchema for EventMessage {
        fn schema() -> RefOr<Schema> {
            Params::schema()
        }
    }

    impl ToSchema for EventMessage {
        fn schemas(schemas: &mut Schemas) {
            <Params as ToSchema>::schemas(schemas);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::ServerMessage;

    #[test]
    fn every_event_round_trips_through_a_notification_line() {
        let summary = crate::strategy::tests::sample_summary();
        let events = [
            Event::DaemonStopping(DaemonStopping {
                reason: "SIGTERM".into(),
            }),
            Event::RegistryChanged(RegistryChanged {
                strategy_id: summary.id,
                change: RegistryChange::Updated,
                strategy: Some(Box::new(summary.clone())),
            }),
            Event::RegistryChanged(RegistryChanged {
                strategy_id: summary.id,
                change: RegistryChange::Removed,
                strategy: None,
            }),
            Event::RegistryInvalid(RegistryInvalid {
                path: "/x.json".into(),
                problem: "bad".into(),
                strategy_id: Some(summary.id),
            }),
            Event::DeploymentChanged(Box::new(crate::deploy::DeploymentChanged {
                deployment: crate::deploy::tests::sample_deployed(),
            })),
            Event::BotLog(crate::deploy::BotLog {
                deployment_id: crate::deploy::DeploymentId::new_random(),
                strategy_id: summary.id,
                lines: vec!["2026-11-22 01:00:00 - freqtrade - INFO - Bot heartbeat".into()],
            }),
            Event::MemoryChanged(crate::mem::MemoryChanged {
                file: "learned_strategies.json".into(),
                applied: false,
                error: Some("learned[0].wins: 9 wins out of 3 trades".into()),
                summary: None,
            }),
            Event::JobFinished(Box::new(crate::jobs::JobRun {
                id: "0b5e".into(),
                job: "retrain".into(),
                trigger: crate::jobs::JobTrigger::Schedule,
                started_at: "2026-11-22T02:00:00Z".parse().unwrap(),
                finished_at: "2026-11-22T02:00:09Z".parse().unwrap(),
                outcome: crate::jobs::JobOutcome::Skipped,
                summary: "the previous run is still going".into(),
                error: None,
                details: Value::Null,
            })),
            Event::JobProgress(crate::jobs::JobProgress {
                run_id: "0b5f".into(),
                job: "data_refresh".into(),
                done: 1,
                total: 4,
                message: "ETH/USDT 5m".into(),
            }),
            Event::MarketChanged(Box::new(crate::market::MarketState {
                conditions: None,
                error: Some("no candles".into()),
            })),
            Event::RiskTripped(Box::new(crate::risk::tests::sample_trip())),
            Event::RiskReset(Box::new(crate::risk::RiskReset {
                at: "2026-11-22T03:00:00Z".parse().unwrap(),
                reason: Some("checked the bots".into()),
                by: Some("memctl".into()),
                cleared: vec![crate::risk::tests::sample_trip()],
            })),
            Event::DaemonPulse(Box::new(sample_pulse())),
            Event::MemMetrics(Box::new(sample_mem_metrics())),
            Event::DeploymentsUsage(crate::deploy::DeploymentsUsage {
                deployments: vec![crate::deploy::DeploymentUsage {
                    deployment_id: crate::deploy::DeploymentId::new_random(),
                    cpu_percent: 3.5,
                    rss_bytes: 300 << 20,
                }],
            }),
            Event::AlertChanged(Box::new(crate::alerts::AlertStatus {
                id: "4792d8d4".into(),
                rule: "bot_failed".into(),
                severity: "critical".into(),
                title: "Bot Freqtrade MACD Hunter failed".into(),
                text: "gave up after 2 restarts".into(),
                raised_at: "2026-11-22T03:00:00Z".parse().unwrap(),
                targets: vec![crate::alerts::AlertTargetStatus {
                    target: "telegram/4242".into(),
                    result: Some(crate::alerts::DeliveryResult::Failed),
                    attempts: 2,
                    error: Some("telegram answered 503".into()),
                }],
            })),
        ];
        for (i, event) in events.into_iter().enumerate() {
            let msg = EventMessage {
                seq: i as u64 + 1,
                at: "2026-11-22T01:02:03Z".parse().unwrap(),
                event,
            };
            let line = msg.to_notification().to_line();
            let ServerMessage::Notification(n) = ServerMessage::parse(&line).unwrap() else {
                panic!("not a notification")
            };
            assert_eq!(EventMessage::from_notification(&n).unwrap(), msg);
        }
    }

    fn sample_pulse() -> DaemonPulse {
        let status = crate::methods::tests::sample_status();
        DaemonPulse {
            uptime_secs: status.uptime_secs,
            counts: status.counts,
            host: status.host,
            process: status.process,
            risk: status.risk,
        }
    }

    fn sample_mem_metrics() -> crate::mem::MemMetrics {
        let latency = json!({"count": 2, "avg": 0.5, "p50": 0.4, "p99": 0.9, "max": 0.9,
            "last": 0.4, "totalCount": 7, "totalMs": 3.5});
        serde_json::from_value(json!({
            "at": "2026-11-22T01:02:03Z", "uptimeSecs": 60, "windowSecs": 3600,
            "decisionsPerHour": 2, "decisionsTotal": 7, "closed24h": 1, "wins24h": 1,
            "winRate24h": 1.0, "outcomesTotal": 1, "predictionLatencyMs": latency,
            "enhancementTimeMs": latency, "memoryLoadMs": latency,
            "learnedStrategies": {"active": 1, "deprecated": 0}, "botPolls": []
        }))
        .unwrap()
    }

    #[test]
    fn periodic_events_are_the_three_samples_on_their_topics() {
        let periodic: Vec<(&str, Topic)> = [
            Event::DaemonPulse(Box::new(sample_pulse())),
            Event::MemMetrics(Box::new(sample_mem_metrics())),
            Event::DeploymentsUsage(crate::deploy::DeploymentsUsage {
                deployments: vec![],
            }),
        ]
        .iter()
        .inspect(|e| assert!(e.is_periodic(), "{}", e.name()))
        .map(|e| (e.name(), e.topic()))
        .collect();
        assert_eq!(
            periodic,
            [
                ("daemon.pulse", Topic::Daemon),
                ("mem.metrics", Topic::Memory),
                ("deployments.usage", Topic::Deployments)
            ]
        );
        let change = Event::DaemonStopping(DaemonStopping {
            reason: "SIGTERM".into(),
        });
        assert!(!change.is_periodic());
    }

    #[test]
    fn unknown_topic_lists_the_accepted_ones() {
        let err = serde_json::from_value::<Topic>(json!("weather"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("daemon") && err.contains("registry"), "{err}");
    }
}
