//! How often: one alert per condition per window (dedup), at most so many messages a
//! minute per channel (rate limit), and the wait between tries of a channel that is down
//! (backoff). Pure: every function takes the time it is asked at.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Lets one alert per key through per window.
#[derive(Debug)]
pub struct Dedup {
    window: Duration,
    seen: HashMap<String, Instant>,
}

impl Dedup {
    pub fn new(window: Duration) -> Dedup {
        Dedup {
            window,
            seen: HashMap::new(),
        }
    }

    /// Whether an alert with `key` raised at `now` goes out (and, if so, its window starts).
    pub fn admit(&mut self, key: &str, now: Instant) -> bool {
        if self.seen.len() > 10_000 {
            let window = self.window;
            self.seen.retain(|_, at| now.duration_since(*at) < window);
        }
        match self.seen.get(key) {
            Some(at) if now.duration_since(*at) < self.window => false,
            _ => {
                self.seen.insert(key.to_string(), now);
                true
            }
        }
    }
}

/// At most `per_minute` sends in any minute.
#[derive(Debug)]
pub struct RateLimit {
    per_minute: usize,
    sent: VecDeque<Instant>,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute: per_minute.max(1) as usize,
            sent: VecDeque::new(),
        }
    }

    /// How long to wait before the next send may go at `now` (zero: now).
    pub fn wait(&mut self, now: Instant) -> Duration {
        const MINUTE: Duration = Duration::from_secs(60);
        while self
            .sent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= MINUTE)
        {
            self.sent.pop_front();
        }
        if self.sent.len() < self.per_minute {
            return Duration::ZERO;
        }
        MINUTE - now.duration_since(self.sent[0])
    }

    /// A send went at `now`.
    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }
}

/// The wait after the `failures`th failure in a row: 1 s, 2 s, 4 s... up to `max`.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(20);
    Duration::from_secs(secs).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_lets_one_alert_a_key_through_per_window() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(60));
        assert!(d.admit("bot_failed:a", t0));
        assert!(!d.admit("bot_failed:a", t0 + Duration::from_secs(30)));
        assert!(
            d.admit("bot_failed:b", t0 + Duration::from_secs(30)),
            "another key"
        );
        assert!(
            d.admit("bot_failed:a", t0 + Duration::from_secs(61)),
            "the window is over"
        );
        assert!(!d.admit("bot_failed:a", t0 + Duration::from_secs(62)));
    }

    #[test]
    fn the_rate_limit_holds_the_next_send_until_the_oldest_is_a_minute_old() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(2);
        assert_eq!(r.wait(t0), Duration::ZERO);
        r.record(t0);
        r.record(t0 + Duration::from_secs(10));
        assert_eq!(
            r.wait(t0 + Duration::from_secs(20)),
            Duration::from_secs(40)
        );
        assert_eq!(r.wait(t0 + Duration::from_secs(60)), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let max = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}
