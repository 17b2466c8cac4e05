//! Candles for the tests: the shipped January 2018 files (data/market) read, and the
//! same market moved in time so that it ends now, for the tests of what acts only on
//! fresh data (the rotation, the regime job, retraining): the same prices, so the same
//! conditions, features and models, only recent.

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use std::path::{Path, PathBuf};

/// One candle: open time (epoch ms) and its prices and volume.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    pub ts_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

const HOUR_MS: i64 = 3_600_000;

/// A file of the repository's `data/market` (the shipped candles).
pub fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/market")
        .join(name)
}

/// The candles of a feather file as Freqtrade writes it (`date` a UTC timestamp).
pub fn read_feather(path: &Path) -> Vec<Candle> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_feather(path, bytes)
}

fn parse_feather(path: &Path, bytes: Vec<u8>) -> Vec<Candle> {
    let reader = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let mut candles = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap_or_else(|| panic!("{}: no {name} column", path.display()))
                .clone()
        };
        let date = column("date");
        let ms: Vec<i64> = match date.data_type() {
            arrow_schema::DataType::Timestamp(unit, _) => match unit {
                arrow_schema::TimeUnit::Second => date
                    .as_primitive::<TimestampSecondType>()
                    .values()
                    .iter()
                    .map(|v| v * 1000)
                    .collect(),
                arrow_schema::TimeUnit::Millisecond => date
                    .as_primitive::<TimestampMillisecondType>()
                    .values()
                    .to_vec(),
                arrow_schema::TimeUnit::Microsecond => date
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
                    .iter()
                    .map(|v| v / 1000)
                    .collect(),
                arrow_schema::TimeUnit::Nanosecond => date
                    .as_primitive::<TimestampNanosecondType>()
                    .values()
                    .iter()
                    .map(|v| v / 1_000_000)
                    .collect(),
            },
            other => panic!("{}: date is {other}, not a timestamp", path.display()),
        };
        let [o, h, l, c, v] = ["open", "high", "low", "close", "volume"].map(column);
        let f = |a: &std::sync::Arc<dyn Array>, i: usize| a.as_primitive::<Float64Type>().value(i);
        for (i, ts_ms) in ms.into_iter().enumerate() {
            candles.push(Candle {
                ts_ms,
                open: f(&o, i),
                high: f(&h, i),
                low: f(&l, i),
                close: f(&c, i),
                volume: f(&v, i),
            });
        }
    }
    candles
}

/// [`read_feather`], telling a file that cannot be read (missing, half written,
/// damaged) by an error instead of a panic: what a reader racing a writer must check.
pub fn try_read_feather(path: &Path) -> Result<Vec<Candle>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = bytes.len();
    std::panic::catch_unwind(|| parse_feather(path, bytes)).map_err(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("{} ({size} bytes) cannot be read: {why}", path.display())
    })
}

/// The same candles moved by whole hours (hourly buckets, and so resampled candles, stay
/// the same) so that the last one, `timeframe_ms` long, closes within the last hour.
pub fn ending_now(candles: &[Candle], timeframe_ms: i64) -> Vec<Candle> {
    let last_close = candles.last().map_or(0, |c| c.ts_ms + timeframe_ms);
    let now = chrono::Utc::now().timestamp_millis();
    let shift = (now - last_close).div_euclid(HOUR_MS) * HOUR_MS;
    candles
        .iter()
        .map(|c| Candle {
            ts_ms: c.ts_ms + shift,
            ..*c
        })
        .collect()
}

/// Writes candles as a CSV file memd reads (`date` in epoch ms), whole: aside, then
/// renamed, as a data feed would.
pub fn write_csv(path: &Path, candles: &[Candle]) {
    let mut text = String::from("date,open,high,low,close,volume\n");
    for c in candles {
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            c.ts_ms, c.open, c.high, c.low, c.close, c.volume
        ));
    }
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A shipped 5-minute file (`ETH_BTC-5m.feather`) as a fresh CSV in `market`
/// (`ETH_BTC-5m.csv`): the 2018 market, ending now. Answers the file.
pub fn fresh_copy(market: &Path, shipped_name: &str) -> PathBuf {
    let candles = read_feather(&shipped(shipped_name));
    let stem = shipped_name
        .strip_suffix(".feather")
        .expect("a shipped feather file");
    let path = market.join(format!("{stem}.csv"));
    write_csv(&path, &ending_now(&candles, 5 * 60_000));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_market_moved_to_now_keeps_its_prices_and_hours() {
        let old = read_feather(&shipped("ETH_BTC-5m.feather"));
        assert!(old.len() > 5_000, "{}", old.len());
        assert_eq!(old[0].ts_ms, 1_515_560_100_000, "2018-01-10 04:55 UTC");
        let new = ending_now(&old, 300_000);
        let age = chrono::Utc::now().timestamp_millis() - (new.last().unwrap().ts_ms + 300_000);
        assert!((0..HOUR_MS).contains(&age), "{age}");
        assert_eq!((new[0].ts_ms - old[0].ts_ms) % HOUR_MS, 0);
        assert_eq!(new[10].close, old[10].close);
    }
}
