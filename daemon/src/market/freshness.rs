//! How old candles are: every answer computed from candles carries a
//! [`Freshness`] (the newest candle's close time, its age, stale or not, demo or not),
//! so nothing acts on old data without saying so.
//!
//! Stale: older than `[market] stale_after_candles` (default [`STALE_AFTER_CANDLES`])
//! times the timeframe. Demo: the file is byte for byte one of the shipped candle files
//! (`data/market`, built into memd and copied into the data directory on the first
//! start): the ten BTC pairs of January 2018.

use super::candles::Timeframe;
use chrono::{DateTime, Utc};
pub use mem_protocol::market::Freshness;
use std::path::Path;

/// Candles of its timeframe after which data are stale, by default.
pub const STALE_AFTER_CANDLES: u32 = 3;

/// The freshness at `now` of a file of `file_timeframe` candles whose newest opened at
/// `newest_open_ms`, read at `timeframe` (the same, or coarser when resampled): stale
/// past `stale_after_candles` candles of `timeframe`.
pub fn freshness(
    newest_open_ms: i64,
    file_timeframe: Timeframe,
    timeframe: Timeframe,
    stale_after_candles: u32,
    now: DateTime<Utc>,
) -> Freshness {
    let close = DateTime::from_timestamp_millis(newest_open_ms + file_timeframe.millis())
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let stale_after = i64::from(stale_after_candles) * timeframe.minutes() * 60;
    Freshness::new(close, stale_after, now)
}

/// Whether `path` is one of the shipped demo candle files, unchanged (same name, same
/// bytes): a `stat` for any other file, a read only when the size matches.
pub fn is_demo_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some(shipped) = crate::datadir::DEFAULT_DATA.get_file(format!("market/{name}")) else {
        return false;
    };
    let same_size =
        std::fs::metadata(path).is_ok_and(|m| m.len() == shipped.contents().len() as u64);
    same_size && std::fs::read(path).is_ok_and(|bytes| bytes == shipped.contents())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_after_three_candles_of_its_timeframe() {
        let now: DateTime<Utc> = "2026-12-05T12:00:00Z".parse().unwrap();
        let open = |t: &str| t.parse::<DateTime<Utc>>().unwrap().timestamp_millis();
        let f = freshness(
            open("2026-12-05T11:00:00Z"),
            Timeframe::H1,
            Timeframe::H1,
            3,
            now,
        );
        assert_eq!(f.as_of, now, "a candle's data are as of its close");
        assert!(!f.stale && f.age_secs == 0 && f.stale_after_secs == 10_800);
        let f = freshness(
            open("2026-12-05T11:40:00Z"),
            Timeframe::M5,
            Timeframe::M5,
            3,
            now,
        );
        assert_eq!((f.age_secs, f.stale), (900, false));
        let f = freshness(
            open("2026-12-05T11:39:00Z"),
            Timeframe::M5,
            Timeframe::M5,
            3,
            now,
        );
        assert!(f.stale, "16 minutes after a 5m candle closed");
        // 5m candles read as 1h: as of the last 5m close, stale after 3 hours.
        let f = freshness(
            open("2026-12-05T09:30:00Z"),
            Timeframe::M5,
            Timeframe::H1,
            3,
            now,
        );
        assert_eq!((f.age_secs, f.stale), (8_700, false));
    }

    #[test]
    fn the_shipped_candles_are_demo_data_and_a_copy_changed_is_not() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market");
        assert!(is_demo_file(&shipped.join("ETH_BTC-5m.feather")));
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("ETH_BTC-5m.feather");
        std::fs::copy(shipped.join("ETH_BTC-5m.feather"), &copy).unwrap();
        assert!(is_demo_file(&copy), "a copy is still the demo");
        let mut bytes = std::fs::read(&copy).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&copy, bytes).unwrap();
        assert!(!is_demo_file(&copy));
        let other = dir.path().join("ETH_USDT-5m.feather");
        std::fs::copy(shipped.join("ETH_BTC-5m.feather"), &other).unwrap();
        assert!(!is_demo_file(&other), "another name is not a shipped file");
    }
}
