//! The model's 12 features, in the seed's order, for the candle at `t` from candles
//! `0..=t` only (nothing later is ever read: the incremental form cannot, and the batch
//! form is checked against it).
//!
//! | # | name | formula |
//! |---|---|---|
//! | 0 | `sma_5` | SMA(close, 5) / close - 1 |
//! | 1 | `sma_20` | SMA(close, 20) / close - 1 |
//! | 2 | `sma_50` | SMA(close, 50) / close - 1 |
//! | 3 | `rsi` | RSI(close, 14), Wilder, 0-100 |
//! | 4 | `macd` | MACD(12, 26, 9) line / close |
//! | 5 | `macd_signal` | MACD signal line / close |
//! | 6 | `macd_hist` | MACD histogram / close |
//! | 7 | `bb_position` | (close - lower) / (upper - lower), Bollinger(20, 2); 0.5 when the bands touch |
//! | 8 | `volume_ratio` | volume / SMA(volume, 20); 1 when that SMA is 0 |
//! | 9 | `hl_range` | (high - low) / close |
//! | 10 | `close_position` | (close - low) / (high - low); 0.5 when high = low |
//! | 11 | `oc_range` | (close - open) / open |
//!
//! The seed names the features but keeps the SMAs and MACD in price units. Here they are
//! relative to the close: the model trains on several pairs at once whose prices differ
//! by orders of magnitude (ETH/BTC near 0.09, NXT/BTC near 0.00003), and a price level
//! says nothing about a reversal while its distance to the close does. Indicators are
//! TA-Lib's (see `indicators`); the first complete row is candle 49 (SMA 50's warm-up).
//! Prices must be positive (`candles::clean` drops other rows).

use super::candles::Candle;
use super::indicators::{Bbands, Macd, Rsi, Sma};

/// Features per row.
pub const N_FEATURES: usize = 12;

/// One candle's features, in [`mem_protocol::ml::FEATURE_NAMES`] order.
pub type FeatureRow = [f64; N_FEATURES];

/// Candles before the first complete row.
pub const WARM_UP: usize = 49;

/// The incremental form: one candle in, that candle's features out, O(1).
#[derive(Debug, Clone)]
pub struct FeatureState {
    sma5: Sma,
    sma20: Sma,
    sma50: Sma,
    rsi: Rsi,
    macd: Macd,
    bbands: Bbands,
    volume_sma: Sma,
}

impl Default for FeatureState {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureState {
    pub fn new() -> FeatureState {
        FeatureState {
            sma5: Sma::new(5),
            sma20: Sma::new(20),
            sma50: Sma::new(50),
            rsi: Rsi::new(14),
            macd: Macd::new(12, 26, 9),
            bbands: Bbands::new(20, 2.0, 2.0),
            volume_sma: Sma::new(20),
        }
    }

    /// Takes the next candle; its features once every indicator is warm.
    pub fn update(&mut self, c: &Candle) -> Option<FeatureRow> {
        // Every indicator sees every candle, warm or not.
        let sma5 = self.sma5.update(c.close);
        let sma20 = self.sma20.update(c.close);
        let sma50 = self.sma50.update(c.close);
        let rsi = self.rsi.update(c.close);
        let macd = self.macd.update(c.close);
        let bb = self.bbands.update(c.close);
        let vsma = self.volume_sma.update(c.volume);
        let (Some(sma5), Some(sma20), Some(sma50), Some(rsi), Some(macd), Some(bb), Some(vsma)) =
            (sma5, sma20, sma50, rsi, macd, bb, vsma)
        else {
            return None;
        };
        Some(row(
            c,
            [
                sma5,
                sma20,
                sma50,
                rsi,
                macd.macd,
                macd.signal,
                macd.hist,
                bb.upper,
                bb.lower,
                vsma,
            ],
        ))
    }
}

/// The 12 features from a candle and its indicators `[sma5, sma20, sma50, rsi, macd,
/// signal, hist, bb_upper, bb_lower, volume_sma]`.
#[inline]
fn row(c: &Candle, i: [f64; 10]) -> FeatureRow {
    let [
        sma5,
        sma20,
        sma50,
        rsi,
        macd,
        signal,
        hist,
        upper,
        lower,
        vsma,
    ] = i;
    let close = c.close;
    let width = upper - lower;
    let range = c.high - c.low;
    [
        sma5 / close - 1.0,
        sma20 / close - 1.0,
        sma50 / close - 1.0,
        rsi,
        macd / close,
        signal / close,
        hist / close,
        if width > 0.0 {
            (close - lower) / width
        } else {
            0.5
        },
        if vsma > 0.0 { c.volume / vsma } else { 1.0 },
        range / close,
        if range > 0.0 {
            (close - c.low) / range
        } else {
            0.5
        },
        (close - c.open) / c.open,
    ]
}

/// The batch form: every candle's features (None during the warm-up), equal bit for bit
/// to feeding [`FeatureState`] one candle at a time: the same incremental indicators run
/// over the series, the averages on one thread and RSI, MACD and Bollinger on another,
/// then the rows are put together.
pub fn batch(candles: &[Candle]) -> Vec<Option<FeatureRow>> {
    const NAN: f64 = f64::NAN;
    let n = candles.len();
    let mut averages = vec![[NAN; 4]; n]; // sma5, sma20, sma50, volume sma
    let mut oscillators = vec![[NAN; 6]; n]; // rsi, macd, signal, hist, upper, lower
    rayon::join(
        || {
            let (mut s5, mut s20, mut s50, mut vs) =
                (Sma::new(5), Sma::new(20), Sma::new(50), Sma::new(20));
            for (out, c) in averages.iter_mut().zip(candles) {
                *out = [
                    s5.update(c.close).unwrap_or(NAN),
                    s20.update(c.close).unwrap_or(NAN),
                    s50.update(c.close).unwrap_or(NAN),
                    vs.update(c.volume).unwrap_or(NAN),
                ];
            }
        },
        || {
            let (mut rsi, mut macd, mut bb) = (
                Rsi::new(14),
                Macd::new(12, 26, 9),
                Bbands::new(20, 2.0, 2.0),
            );
            for (out, c) in oscillators.iter_mut().zip(candles) {
                let r = rsi.update(c.close).unwrap_or(NAN);
                let m = macd.update(c.close);
                let b = bb.update(c.close);
                *out = [
                    r,
                    m.map_or(NAN, |m| m.macd),
                    m.map_or(NAN, |m| m.signal),
                    m.map_or(NAN, |m| m.hist),
                    b.map_or(NAN, |b| b.upper),
                    b.map_or(NAN, |b| b.lower),
                ];
            }
        },
    );
    candles
        .iter()
        .zip(averages.iter().zip(&oscillators))
        .map(|(c, (a, o))| {
            let i = [a[0], a[1], a[2], o[0], o[1], o[2], o[3], o[4], o[5], a[3]];
            (!i.iter().any(|v| v.is_nan())).then(|| row(c, i))
        })
        .collect()
}

/// The 12 features as columns (what pandas would hold): `columns[k][t]` is feature `k` of
/// candle `t`, NaN during the warm-up (before `first_complete`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureColumns {
    pub first_complete: usize,
    pub columns: [Vec<f64>; N_FEATURES],
}

/// The batch form in columns, for long series: the averages and the candle-shape
/// features on one thread, RSI, MACD and Bollinger on the other, each writing its own
/// columns. Values equal [`batch`]'s (and so [`FeatureState`]'s) bit for bit.
pub fn batch_columns(candles: &[Candle]) -> FeatureColumns {
    let n = candles.len();
    // Zeroed memory costs no pass over it (fresh pages); every value is written once below.
    let column = || vec![0.0f64; n];
    let mut columns: [Vec<f64>; N_FEATURES] = std::array::from_fn(|_| column());
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11] = &mut columns;
    rayon::join(
        || {
            let (mut s5, mut s20, mut s50, mut vs) =
                (Sma::new(5), Sma::new(20), Sma::new(50), Sma::new(20));
            for (t, c) in candles.iter().enumerate() {
                let close = c.close;
                if let Some(v) = s5.update(close) {
                    c0[t] = v / close - 1.0;
                }
                if let Some(v) = s20.update(close) {
                    c1[t] = v / close - 1.0;
                }
                if let Some(v) = s50.update(close) {
                    c2[t] = v / close - 1.0;
                }
                if let Some(v) = vs.update(c.volume) {
                    c8[t] = if v > 0.0 { c.volume / v } else { 1.0 };
                }
                let range = c.high - c.low;
                c9[t] = range / close;
                c10[t] = if range > 0.0 {
                    (close - c.low) / range
                } else {
                    0.5
                };
                c11[t] = (close - c.open) / c.open;
            }
        },
        || {
            let (mut rsi, mut macd, mut bb) = (
                Rsi::new(14),
                Macd::new(12, 26, 9),
                Bbands::new(20, 2.0, 2.0),
            );
            for (t, c) in candles.iter().enumerate() {
                let close = c.close;
                if let Some(v) = rsi.update(close) {
                    c3[t] = v;
                }
                if let Some(m) = macd.update(close) {
                    c4[t] = m.macd / close;
                    c5[t] = m.signal / close;
                    c6[t] = m.hist / close;
                }
                if let Some(b) = bb.update(close) {
                    let width = b.upper - b.lower;
                    c7[t] = if width > 0.0 {
                        (close - b.lower) / width
                    } else {
                        0.5
                    };
                }
            }
        },
    );
    // A row is complete once every indicator is warm (SMA 50 is the last): before that,
    // every column is NaN, as in the rows of `batch`.
    let first_complete = WARM_UP.min(n);
    for col in &mut columns {
        for v in &mut col[..first_complete] {
            *v = f64::NAN;
        }
    }
    FeatureColumns {
        first_complete,
        columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candles(n: usize) -> Vec<Candle> {
        (0..n)
            .map(|i| {
                let x = i as f64;
                let close = 100.0 * (1.0 + 0.03 * (x * 0.21).sin() + 0.0004 * x);
                Candle {
                    ts_ms: i as i64 * 300_000,
                    open: close * (1.0 - 0.002 * (x * 0.7).cos()),
                    high: close * 1.004,
                    low: close * 0.995,
                    close,
                    volume: 10.0 + 5.0 * (x * 0.13).sin().abs(),
                }
            })
            .collect()
    }

    #[test]
    fn batch_and_incremental_agree_bit_for_bit() {
        let cs = candles(2_000);
        let batch = batch(&cs);
        let mut state = FeatureState::new();
        for (t, c) in cs.iter().enumerate() {
            let one = state.update(c);
            assert_eq!(
                one.map(|r| r.map(f64::to_bits)),
                batch[t].map(|r| r.map(f64::to_bits)),
                "t={t}"
            );
        }
        assert!(batch[..WARM_UP].iter().all(Option::is_none));
        assert!(batch[WARM_UP..].iter().all(Option::is_some));
    }

    #[test]
    fn columns_equal_rows_bit_for_bit() {
        let cs = candles(1_500);
        let rows = batch(&cs);
        let cols = batch_columns(&cs);
        assert_eq!(cols.first_complete, WARM_UP);
        for (t, r) in rows.iter().enumerate() {
            for k in 0..N_FEATURES {
                let col = cols.columns[k][t];
                match r {
                    Some(r) => assert_eq!(col.to_bits(), r[k].to_bits(), "t={t} k={k}"),
                    None => assert!(col.is_nan(), "t={t} k={k}"),
                }
            }
        }
    }

    #[test]
    fn no_future_candle_changes_a_feature() {
        let cs = candles(600);
        let full = batch(&cs);
        let mut changed = cs.clone();
        for c in &mut changed[300..] {
            c.close *= 3.0;
            c.high *= 3.0;
            c.volume *= 7.0;
        }
        let other = batch(&changed);
        assert_eq!(full[..300], other[..300]);
        assert_ne!(full[300], other[300]);
    }

    #[test]
    fn formulas_on_one_candle() {
        let c = Candle {
            ts_ms: 0,
            open: 100.0,
            high: 110.0,
            low: 90.0,
            close: 105.0,
            volume: 30.0,
        };
        let r = row(
            &c,
            [105.0, 100.0, 84.0, 60.0, 2.1, 1.05, 1.05, 115.0, 95.0, 20.0],
        );
        assert_eq!(r[0], 0.0);
        assert!((r[1] - (100.0 / 105.0 - 1.0)).abs() < 1e-15);
        assert!((r[2] - (84.0 / 105.0 - 1.0)).abs() < 1e-15);
        assert_eq!(r[3], 60.0);
        assert!((r[4] - 0.02).abs() < 1e-15);
        assert_eq!(r[7], 0.5); // (105 - 95) / (115 - 95)
        assert_eq!(r[8], 1.5);
        assert!((r[9] - 20.0 / 105.0).abs() < 1e-15);
        assert_eq!(r[10], 0.75);
        assert_eq!(r[11], 0.05);
    }

    #[test]
    fn flat_candles_and_zero_volume_give_finite_features() {
        let cs: Vec<Candle> = (0..120)
            .map(|i| Candle {
                ts_ms: i * 60_000,
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 0.0,
            })
            .collect();
        for r in batch(&cs).into_iter().flatten() {
            assert!(r.iter().all(|v| v.is_finite()), "{r:?}");
            assert_eq!(r[7], 0.5);
            assert_eq!(r[8], 1.0);
            assert_eq!(r[10], 0.5);
        }
    }
}
