//! The periodic events: `daemon.pulse`, `mem.metrics` and `deployments.usage` (see
//! `mem_protocol::events`), the figures that change with no event to announce it (the
//! host's and the daemon's CPU and memory, MEM's latencies and rates, the bots' CPU and
//! memory). With them and the subscription's snapshot a client shows the daemon's state
//! without polling it.
//!
//! Invariants:
//! - nothing is sampled or published while no client is subscribed
//!   ([`Daemon::subscribers`] is 0): the task only looks at that count every
//!   [`IDLE_CHECK`];
//! - the first pulse comes one [`PERIODIC_INTERVAL`] after a subscriber arrives to find
//!   none before it (its snapshot is fresh), then one every interval while any remains;
//! - each event is built once and serialized once by the bus for every subscriber; none
//!   after `daemon.stopping` ([`EventBus::publish_periodic`](crate::bus::EventBus));
//! - the task holds the daemon weakly and ends when it is gone.

use crate::Daemon;
use mem_protocol::deploy::{
    DeployedList, DeployedStrategy, DeploymentId, DeploymentUsage, DeploymentsUsage,
};
use mem_protocol::events::{DaemonPulse, PERIODIC_INTERVAL};
use mem_protocol::{Access, Event};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// How often an idle daemon looks for a first subscriber: the first pulse is at most this
/// much later than one interval after it subscribed.
pub const IDLE_CHECK: Duration = Duration::from_millis(250);

/// Starts publishing the periodic events of `daemon` whenever a client is subscribed.
pub fn spawn(daemon: Weak<Daemon>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            // Idle: wait for a subscriber.
            loop {
                let Some(d) = daemon.upgrade() else { return };
                if d.subscribers.load(Ordering::Relaxed) > 0 {
                    break;
                }
                drop(d);
                tokio::time::sleep(IDLE_CHECK).await;
            }
            // Subscribed: one pulse an interval until the last subscriber leaves.
            let mut tick =
                tokio::time::interval_at(Instant::now() + PERIODIC_INTERVAL, PERIODIC_INTERVAL);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(d) = daemon.upgrade() else { return };
                if d.subscribers.load(Ordering::Relaxed) == 0 {
                    break;
                }
                publish(&d);
            }
        }
    })
}

/// Samples and publishes the three periodic events once.
pub fn publish(daemon: &Arc<Daemon>) {
    // `access` is each caller's own: the pulse leaves it out (and whatever is passed).
    let status = crate::handlers::status(daemon, Access::View);
    let pulse = DaemonPulse {
        uptime_secs: status.uptime_secs,
        counts: status.counts,
        host: status.host,
        process: status.process,
        risk: status.risk,
    };
    let bus = &daemon.bus;
    bus.publish_periodic(Event::DaemonPulse(Box::new(pulse)));
    bus.publish_periodic(Event::MemMetrics(Box::new(crate::handlers::mem_metrics(
        daemon,
    ))));
    let usage = daemon
        .usage
        .changes(usage(daemon.supervisor.deployed(false)));
    if !usage.deployments.is_empty() {
        bus.publish_periodic(Event::DeploymentsUsage(usage));
    }
}

/// The bots' CPU and memory as `deployments.usage` last published them: each event
/// carries only the bots whose figures changed as shown (CPU to 0.1 %, memory to 0.1 of
/// its unit, as memctl shows them), and a subscription's snapshot shows these figures,
/// so that the next event's changes are changes from what every subscriber has. Idle
/// bots then cost nothing: 50 of them were 2.4 KB/s of a fleet's SSH session.
#[derive(Debug, Default)]
pub struct UsageLedger(Mutex<HashMap<DeploymentId, DeploymentUsage>>);

impl UsageLedger {
    /// The figures of `sampled` that differ, as shown, from those last published; they
    /// become the published ones. Bots no longer sampled are forgotten.
    pub fn changes(&self, sampled: DeploymentsUsage) -> DeploymentsUsage {
        let mut published = self.0.lock().expect("usage lock");
        published.retain(|id, _| sampled.deployments.iter().any(|u| u.deployment_id == *id));
        let mut deployments = Vec::new();
        for u in sampled.deployments {
            let last = published.get(&u.deployment_id);
            if last.is_none_or(|last| shown(last) != shown(&u)) {
                published.insert(u.deployment_id, u.clone());
                deployments.push(u);
            }
        }
        DeploymentsUsage { deployments }
    }

    /// Puts the last published figures into `deployments` (a snapshot's).
    pub fn overlay(&self, deployments: &mut [DeployedStrategy]) {
        let published = self.0.lock().expect("usage lock");
        for d in deployments {
            if let Some(u) = published.get(&d.deployment_id) {
                d.cpu_percent = Some(u.cpu_percent);
                d.rss_bytes = Some(u.rss_bytes);
            }
        }
    }
}

/// A bot's figures as memctl shows them: CPU in tenths of a percent, memory in tenths of
/// its unit (B, KiB, MiB, GiB).
fn shown(u: &DeploymentUsage) -> (i64, u64, u32) {
    let mut unit = 0;
    while unit < 4 && u.rss_bytes >= 1024u64.pow(unit + 1) {
        unit += 1;
    }
    let tenths = u.rss_bytes * 10 / 1024u64.pow(unit);
    ((u.cpu_percent * 10.0).round() as i64, tenths, unit)
}

/// The CPU and memory of each deployment whose process was found.
fn usage(list: DeployedList) -> DeploymentsUsage {
    DeploymentsUsage {
        deployments: list
            .deployments
            .into_iter()
            .filter_map(|d| {
                Some(DeploymentUsage {
                    deployment_id: d.deployment_id,
                    cpu_percent: d.cpu_percent?,
                    rss_bytes: d.rss_bytes?,
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(id: DeploymentId, cpu_percent: f32, rss_bytes: u64) -> DeploymentUsage {
        DeploymentUsage {
            deployment_id: id,
            cpu_percent,
            rss_bytes,
        }
    }

    fn sampled(all: &[DeploymentUsage]) -> DeploymentsUsage {
        DeploymentsUsage {
            deployments: all.to_vec(),
        }
    }

    #[test]
    fn usage_events_carry_only_the_figures_that_changed_as_shown() {
        let ledger = UsageLedger::default();
        let (a, b) = (DeploymentId::new_random(), DeploymentId::new_random());
        const MIB: u64 = 1 << 20;
        let first = [usage(a, 0.0, 300 * MIB), usage(b, 1.2, 40 * MIB)];
        assert_eq!(
            ledger.changes(sampled(&first)).deployments,
            first,
            "all new"
        );
        // The same as shown (0.04 % more CPU, 50 KiB more of 300 MiB): nothing.
        let same = [
            usage(a, 0.04, 300 * MIB + 50 * 1024),
            usage(b, 1.2, 40 * MIB),
        ];
        assert!(ledger.changes(sampled(&same)).deployments.is_empty());
        // b's CPU moved: b alone.
        let moved = [usage(a, 0.0, 300 * MIB), usage(b, 2.5, 40 * MIB)];
        assert_eq!(
            ledger.changes(sampled(&moved)).deployments,
            [moved[1].clone()]
        );
        // b gone is forgotten; back, it is new.
        assert!(ledger.changes(sampled(&moved[..1])).deployments.is_empty());
        assert_eq!(
            ledger.changes(sampled(&moved)).deployments,
            [moved[1].clone()]
        );
    }
}
