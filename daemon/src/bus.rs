//! The event bus: one broadcast channel that every state change is announced on.
//!
//! Each event is numbered and serialized once, when published; subscribers receive the
//! ready-made notification line. Numbering and sending happen under one lock, so the
//! channel's order is the numbering's order.

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
    last_seq: Mutex<u64>,
}

impl EventBus {
    /// A bus that holds up to `capacity` events for a subscriber that is behind.
    pub fn new(capacity: usize) -> Self {
        EventBus {
            tx: broadcast::channel(capacity).0,
            last_seq: Mutex::new(0),
        }
    }

    /// Announces an event; returns its sequence number.
    pub fn publish(&self, event: Event) -> u64 {
        let mut last = self.last_seq.lock().expect("bus lock");
        *last += 1;
        let message = EventMessage {
            seq: *last,
            at: Utc::now(),
            event,
        };
        let published = Published {
            seq: *last,
            topic: message.event.topic(),
            line: Bytes::from(message.to_notification().to_line()),
        };
        let _ = self.tx.send(Arc::new(published)); // no subscriber is fine
        *last
    }

    /// A receiver of every event published from now on, and the number of the last one
    /// published before it.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Published>>, u64) {
        let last = self.last_seq.lock().expect("bus lock");
        (self.tx.subscribe(), *last)
    }
}
