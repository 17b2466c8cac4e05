//! Data the benchmarks share: the shipped candles, and a million of them.

use memd::market::candles::{self, Candle};
use std::path::Path;

/// The shipped market data (`data/market`, real 5-minute candles).
pub fn market() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/market"))
}

/// The shipped ETH/BTC 5-minute file repeated to 1,000,000 candles (price jumps at the
/// seams; fine for timing).
pub fn million_candles() -> Vec<Candle> {
    let base = candles::read_file(&market().join("ETH_BTC-5m.feather")).unwrap();
    let step = base[1].ts_ms - base[0].ts_ms;
    (0..1_000_000)
        .map(|i| {
            let mut c = base[i % base.len()];
            c.ts_ms = i as i64 * step;
            c
        })
        .collect()
}
