//! The event bus: one broadcast channel that every state change is announced on.
//!
//! Each event is numbered and serialized once, when published; subscribers receive the
//! ready-made notification line. Numbering and sending happen under one lock, so the
//! channel's order is the numbering's order.
//!
//! Periodic events (`daemon.pulse`, ...: [`Event::is_periodic`]) go through
//! [`EventBus::publish_periodic`], which drops them once `daemon.stopping` is out: the
//! shutdown's announcement stays the last news of the daemon's figures, and a subscriber
//! waiting for its connection to close gets nothing but what the shutdown itself changes.

use bytes::Bytes;
use chrono::Utc;
use mem_protocol::{Event, EventMessage, Topic};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// An event as it travels on the bus.
#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    pub topic: Topic,
    /// The JSON-RPC notification, newline included.
    pub line: Bytes,
}

/// The daemon's event bus.
pub struct EventBus {
    tx: broadcast::Sender<Arc<Published>>,
    numbering: Mutex<Numbering>,
}

/// What the bus's lock guards.
struct Numbering {
    last_seq: u64,
    /// `daemon.stopping` was published: periodic events are dropped from now on.
    stopping: bool,
}

impl EventBus {
    /// A bus that holds up to `capacity` events for a subscriber that is behind.
    pub fn new(capacity: usize) -> Self {
        EventBus {
            tx: broadcast::channel(capacity).0,
            numbering: Mutex::new(Numbering {
                last_seq: 0,
                stopping: false,
            }),
        }
    }

    /// Announces an event; returns its sequence number.
    pub fn publish(&self, event: Event) -> u64 {
        let mut numbering = self.numbering.lock().expect("bus lock");
        numbering.stopping |= matches!(event, Event::DaemonStopping(_));
        self.send(&mut numbering, event)
    }

    /// Announces a periodic event, unless the daemon is stopping (then None).
    pub fn publish_periodic(&self, event: Event) -> Option<u64> {
        debug_assert!(event.is_periodic(), "{} is not periodic", event.name());
        let mut numbering = self.numbering.lock().expect("bus lock");
        (!numbering.stopping).then(|| self.send(&mut numbering, event))
    }

    fn send(&self, numbering: &mut Numbering, event: Event) -> u64 {
        numbering.last_seq += 1;
        let seq = numbering.last_seq;
        let message = EventMessage {
            seq,
            at: Utc::now(),
            event,
        };
        let published = Published {
            seq,
            topic: message.event.topic(),
            line: Bytes::from(message.to_notification().to_line()),
        };
        let _ = self.tx.send(Arc::new(published)); // no subscriber is fine
        seq
    }

    /// A receiver of every event published from now on, and the number of the last one
    /// published before it.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Published>>, u64) {
        let numbering = self.numbering.lock().expect("bus lock");
        (self.tx.subscribe(), numbering.last_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::deploy::DeploymentsUsage;
    use mem_protocol::events::DaemonStopping;

    fn usage() -> Event {
        Event::DeploymentsUsage(DeploymentsUsage {
            deployments: vec![],
        })
    }

    #[test]
    fn periodic_events_are_numbered_like_the_others_until_the_daemon_stops() {
        let bus = EventBus::new(16);
        let (mut rx, last) = bus.subscribe();
        assert_eq!(last, 0);
        assert_eq!(bus.publish_periodic(usage()), Some(1));
        let stopping = Event::DaemonStopping(DaemonStopping {
            reason: "SIGTERM".into(),
        });
        assert_eq!(bus.publish(stopping), 2);
        assert_eq!(bus.publish_periodic(usage()), None, "none after stopping");
        let seqs: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok().map(|p| p.seq)).collect();
        assert_eq!(seqs, [1, 2]);
        assert_eq!(bus.subscribe().1, 2, "a dropped event takes no number");
    }
}
