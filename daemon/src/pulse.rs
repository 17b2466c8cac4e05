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
use mem_protocol::deploy::{DeployedList, DeploymentUsage, DeploymentsUsage};
use mem_protocol::events::{DaemonPulse, PERIODIC_INTERVAL};
use mem_protocol::{Access, Event};
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
    let usage = usage(daemon.supervisor.deployed(false));
    if !usage.deployments.is_empty() {
        bus.publish_periodic(Event::DeploymentsUsage(usage));
    }
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
