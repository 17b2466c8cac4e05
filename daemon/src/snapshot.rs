//! The snapshot a new subscriber starts from (`mem_protocol::methods::Snapshot`): for
//! each topic it asked for, the state that topic's events change, each member what its
//! method answers (`strategies.deployed {all: true}`, `mem.metrics`, `mem.decisions`,
//! `ml.status`, `ml.history`, `jobs.list`, `market.conditions`; the newest alerts as
//! `alert.changed` announces them).
//!
//! It is taken after the subscriber's bus receiver exists (the server subscribes first),
//! so an event can repeat what the snapshot already shows but none that changed it
//! afterwards is missed.

use crate::Daemon;
use mem_protocol::mem::DecisionsParams;
use mem_protocol::methods::Snapshot;
use mem_protocol::{Access, Topic};
use std::sync::Arc;
use tracing::warn;

/// The snapshot of `topics` for a subscriber with `access`.
pub async fn take(daemon: &Arc<Daemon>, topics: &[Topic], access: Access) -> Snapshot {
    let mut snapshot = Snapshot {
        daemon: topics
            .contains(&Topic::Daemon)
            .then(|| crate::handlers::status(daemon, access)),
        strategies: topics
            .contains(&Topic::Registry)
            .then(|| daemon.registry.list(&Default::default()).strategies),
        ..Snapshot::default()
    };
    if topics.contains(&Topic::Daemon) {
        snapshot.alerts = Some(daemon.alerts.recent());
    }
    if topics.contains(&Topic::Deployments) {
        let mut deployments = daemon.supervisor.deployed(true).deployments;
        // The figures `deployments.usage` announced last: its next one brings only those
        // that change from them.
        daemon.usage.overlay(&mut deployments);
        snapshot.deployments = Some(deployments);
    }
    if topics.contains(&Topic::Memory) {
        snapshot.mem_metrics = Some(crate::handlers::mem_metrics(daemon));
        snapshot.decisions = Some(daemon.memory.decisions(&DecisionsParams::default()));
    }
    if topics.contains(&Topic::Model) {
        // Both read the model directory: a blocking thread, as for `ml.status`.
        let ml = daemon.ml.clone();
        match tokio::task::spawn_blocking(move || (ml.status(), ml.history())).await {
            Ok((status, history)) => {
                snapshot.model = Some(status);
                snapshot.model_history = Some(history);
            }
            Err(err) => warn!(%err, "the model's part of a snapshot failed; it is left out"),
        }
    }
    if topics.contains(&Topic::Jobs) {
        snapshot.jobs = Some(daemon.scheduler.list().await);
    }
    if topics.contains(&Topic::Queue) {
        snapshot.queue = Some(daemon.queue.list(None));
    }
    if topics.contains(&Topic::Market) {
        // Reads candles (once per version of the file): a blocking thread.
        let ml = daemon.ml.clone();
        match tokio::task::spawn_blocking(move || ml.market_state()).await {
            Ok(state) => snapshot.market = Some(state),
            Err(err) => warn!(%err, "the market's part of a snapshot failed; it is left out"),
        }
    }
    snapshot
}
