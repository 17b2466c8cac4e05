//! How often: one alert per condition per window (dedup), at most so many messages a
//! minute per channel and a short gap between two while they follow each other (rate
//! limit), and the wait between tries of a channel that is down (backoff). Pure: every function takes the time it is asked at.
//!
//! The dedup window outlives the process: [`Dedup`] keeps wall-clock times (an `Instant`
//! means nothing after a restart) and is saved whole to `<data>/alerts/dedup.json` each
//! time it lets an alert through ([`Dedup::save`], atomic), and read back at start
//! ([`Dedup::load`]), so a restart does not send again what its window already sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

/// Lets one alert per key through per window.
#[derive(Debug)]
pub struct Dedup {
    window: chrono::Duration,
    seen: HashMap<String, DateTime<Utc>>,
}

/// `dedup.json`: when each key's window started.
#[derive(Serialize, Deserialize)]
struct Saved {
    seen: BTreeMap<String, DateTime<Utc>>,
}

impl Dedup {
    pub fn new(window: Duration) -> Dedup {
        Dedup {
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            seen: HashMap::new(),
        }
    }

    /// Whether an alert with `key` raised at `now` goes out (and, if so, its window
    /// starts). A window that starts more than a window ahead of `now` (the clock was set
    /// back) is not believed.
    pub fn admit(&mut self, key: &str, now: DateTime<Utc>) -> bool {
        self.forget_before(now);
        match self.seen.get(key) {
            Some(at) if self.holds(*at, now) => false,
            _ => {
                self.seen.insert(key.to_string(), now);
                true
            }
        }
    }

    fn holds(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let since = now - at;
        since < self.window && -since < self.window
    }

    /// Drops the windows that are over at `now`.
    fn forget_before(&mut self, now: DateTime<Utc>) {
        let window = self.window;
        self.seen.retain(|_, at| {
            let since = now - *at;
            since < window && -since < window
        });
    }

    /// The windows saved at `path` that still hold at `now`; none when the file is
    /// missing, and none (with a warning) when it cannot be read: a restart may then
    /// send a condition again, which is better than never.
    pub fn load(path: &Path, window: Duration, now: DateTime<Utc>) -> Dedup {
        let mut dedup = Dedup::new(window);
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Saved>(&bytes) {
                Ok(saved) => dedup.seen.extend(saved.seen),
                Err(e) => tracing::warn!(
                    file = %path.display(), error = %e,
                    "the alerts' dedup file cannot be read; conditions raised before this start may alert again"
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the alerts' dedup file")
            }
        }
        dedup.forget_before(now);
        dedup
    }

    /// Writes the windows that hold to `path` (whole, atomically, 0600).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let saved = Saved {
            seen: self.seen.iter().map(|(k, at)| (k.clone(), *at)).collect(),
        };
        let text = serde_json::to_vec(&saved)?;
        crate::datadir::write_atomic(path, &text, 0o600)
    }
}

/// At most `per_minute` sends in any minute, and at least `gap` between two.
#[derive(Debug)]
pub struct RateLimit {
    per_minute: usize,
    gap: Duration,
    sent: VecDeque<Instant>,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute: per_minute.max(1) as usize,
            gap: Duration::ZERO,
            sent: VecDeque::new(),
        }
    }

    /// With at least `gap` from one send to the next: while alerts keep coming, what is
    /// raised meanwhile waits that long and goes out together (a lone alert goes at once).
    pub fn with_gap(mut self, gap: Duration) -> RateLimit {
        self.gap = gap;
        self
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
        let paced = self.sent.back().map_or(Duration::ZERO, |last| {
            self.gap.saturating_sub(now.duration_since(*last))
        });
        if self.sent.len() < self.per_minute {
            return paced;
        }
        (MINUTE - now.duration_since(self.sent[0])).max(paced)
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
        let t0: DateTime<Utc> = "2026-12-05T12:00:00Z".parse().unwrap();
        let s = |n: i64| t0 + chrono::Duration::seconds(n);
        let mut d = Dedup::new(Duration::from_secs(60));
        assert!(d.admit("bot_failed:a", t0));
        assert!(!d.admit("bot_failed:a", s(30)));
        assert!(d.admit("bot_failed:b", s(30)), "another key");
        assert!(d.admit("bot_failed:a", s(61)), "the window is over");
        assert!(!d.admit("bot_failed:a", s(62)));
        assert!(
            d.admit("bot_failed:a", s(-100)),
            "a window far ahead of the clock (set back) is not believed"
        );
    }

    #[test]
    fn the_dedup_window_survives_a_restart_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dedup.json");
        let t0: DateTime<Utc> = "2026-12-05T12:00:00Z".parse().unwrap();
        let s = |n: i64| t0 + chrono::Duration::seconds(n);
        let window = Duration::from_secs(600);
        let mut d = Dedup::load(&path, window, t0);
        assert!(d.admit("job_failed:data_refresh", t0));
        assert!(d.admit("data_stale", s(500)));
        d.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(d);

        // A new process, inside the first window: both held.
        let mut d = Dedup::load(&path, window, s(300));
        assert!(!d.admit("job_failed:data_refresh", s(300)));
        assert!(!d.admit("data_stale", s(300)));
        assert!(d.admit("bot_failed:x", s(300)));
        // After the first window, before the second's end: only the second held; the file
        // keeps only windows that hold.
        let mut d = Dedup::load(&path, window, s(700));
        assert!(d.admit("job_failed:data_refresh", s(700)));
        assert!(!d.admit("data_stale", s(700)));
        d.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("data_stale") && text.contains("job_failed"),
            "{text}"
        );
        let d = Dedup::load(&path, window, s(2000));
        assert!(d.seen.is_empty(), "all over by then");

        // A torn or foreign file: nothing held, nothing refused.
        std::fs::write(&path, b"{\"seen\": {\"data_st").unwrap();
        let mut d = Dedup::load(&path, window, s(300));
        assert!(d.admit("data_stale", s(300)));
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
    fn the_gap_holds_the_next_send_only_while_sends_follow_each_other() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = RateLimit::new(20).with_gap(ms(300));
        assert_eq!(r.wait(t0), Duration::ZERO, "the first goes at once");
        r.record(t0);
        assert_eq!(r.wait(t0 + ms(100)), ms(200));
        assert_eq!(r.wait(t0 + ms(300)), Duration::ZERO);
        assert_eq!(r.wait(t0 + ms(5000)), Duration::ZERO, "a lone alert later");
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let max = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}
