//! How memctl words things for people, in the CLI and the terminal UI alike: prices and
//! indicators with the digits their size calls for ([`significant`], the daemon's own
//! texts use it too), and the names of the protocol's enums (never their Rust `Debug`
//! names).

use mem_protocol::backtest::{BacktestEngine, QueueJobKind, QueueJobState, ValidationStatus};
use mem_protocol::deploy::{DeployedStrategy, DeploymentStatus};
use mem_protocol::mem::SignalAction;
use mem_protocol::ml::{ModelStatus, PromotionMetric};
use mem_protocol::recommend::MetricsSource;
use mem_protocol::registry::{TradeAction, VersionBump};

pub use mem_protocol::numbers::significant;

/// `running`, `stopped`, ...
pub fn deployment_status(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::Starting => "starting",
        DeploymentStatus::Running => "running",
        DeploymentStatus::Stopping => "stopping",
        DeploymentStatus::Stopped => "stopped",
        DeploymentStatus::Crashed => "crashed",
        DeploymentStatus::Restarting => "restarting",
        DeploymentStatus::Failed => "failed",
    }
}

/// A deployment as lists name it: its strategy, and for a bot memd did not start the
/// name it was attached as (`MACD Hunter (attached: outside)`).
pub fn deployment_name(d: &DeployedStrategy) -> String {
    match d.attached_name() {
        Some(attached) => format!("{} (attached: {attached})", d.strategy_name),
        None => d.strategy_name.clone(),
    }
}

/// `current`, `retired`, `rejected`.
pub fn model_status(status: ModelStatus) -> &'static str {
    match status {
        ModelStatus::Current => "current",
        ModelStatus::Retired => "retired",
        ModelStatus::Rejected => "rejected",
    }
}

/// The figure a new model must beat the current one on, as `memctl model train --metric`
/// spells it: `accuracy`, `ROC-AUC`, `log-loss`.
pub fn promotion_metric(metric: PromotionMetric) -> &'static str {
    match metric {
        PromotionMetric::Accuracy => "accuracy",
        PromotionMetric::RocAuc => "ROC-AUC",
        PromotionMetric::LogLoss => "log-loss",
    }
}

/// Whether the promotion metric must rise or fall to count as better.
pub fn promotion_direction(metric: PromotionMetric) -> &'static str {
    match metric {
        PromotionMetric::Accuracy | PromotionMetric::RocAuc => "higher",
        PromotionMetric::LogLoss => "lower",
    }
}

/// Where a recommendation's figures come from: `live` trades, a `backtest` memd ran, or
/// nowhere (`unmeasured`: typed-in figures, not used).
pub fn metrics_source(source: MetricsSource) -> &'static str {
    match source {
        MetricsSource::Live => "live",
        MetricsSource::Backtest => "backtest",
        MetricsSource::Unmeasured => "unmeasured",
    }
}

/// `BUY`, `SELL`, `HOLD`, as signals are written everywhere else.
pub fn signal_action(action: SignalAction) -> &'static str {
    match action {
        SignalAction::Buy => "BUY",
        SignalAction::Sell => "SELL",
        SignalAction::Hold => "HOLD",
    }
}

/// A recorded trade's side, as signals are written.
pub fn trade_action(action: TradeAction) -> &'static str {
    match action {
        TradeAction::Buy => "BUY",
        TradeAction::Sell => "SELL",
        TradeAction::Hold => "HOLD",
    }
}

/// `major`, `minor`, `patch`.
pub fn version_bump(bump: VersionBump) -> &'static str {
    match bump {
        VersionBump::Major => "major",
        VersionBump::Minor => "minor",
        VersionBump::Patch => "patch",
    }
}

/// `queued`, `running`, `succeeded`, `failed`, `cancelled`, `interrupted`.
pub fn queue_state(state: QueueJobState) -> &'static str {
    match state {
        QueueJobState::Queued => "queued",
        QueueJobState::Running => "running",
        QueueJobState::Succeeded => "succeeded",
        QueueJobState::Failed => "failed",
        QueueJobState::Cancelled => "cancelled",
        QueueJobState::Interrupted => "interrupted",
    }
}

/// `backtest`, `walk-forward`.
pub fn queue_kind(kind: QueueJobKind) -> &'static str {
    match kind {
        QueueJobKind::Backtest => "backtest",
        QueueJobKind::WalkForward => "walk-forward",
    }
}

/// `freqtrade`, `native`.
pub fn backtest_engine(engine: BacktestEngine) -> &'static str {
    match engine {
        BacktestEngine::Freqtrade => "freqtrade",
        BacktestEngine::Native => "native",
    }
}

/// `passed`, `failed`.
pub fn validation_status(status: ValidationStatus) -> &'static str {
    match status {
        ValidationStatus::Passed => "passed",
        ValidationStatus::Failed => "failed",
    }
}

/// A version's validation, in words.
pub fn version_validation(v: mem_protocol::registry::VersionValidation) -> &'static str {
    use mem_protocol::registry::VersionValidation as V;
    match v {
        V::Pending => "pending",
        V::Passed => "passed",
        V::Failed => "failed",
    }
}
