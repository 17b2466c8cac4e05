//! Technical indicators with TA-Lib's conventions and TA-Lib's numbers.
//!
//! Every indicator comes in two forms that give the same values, bit for bit:
//!
//! - **incremental**: a struct with `new(..)` and `update(..)`, O(1) per candle (a
//!   fixed-size ring buffer at most; [`Bbands`] and [`Vwap`] re-add their ring now and
//!   then, O(1) amortized), answering `None` during the warm-up;
//! - **batch**: a function over whole slices, e.g. `sma(&close, 20)`, whose output has the
//!   input's length with `f64::NAN` during the warm-up. Each batch function only runs the
//!   incremental struct over the slice, so the two cannot disagree.
//!
//! The warm-up is TA-Lib's *lookback*: the first value is at index `lookback`, exactly
//! where TA-Lib's first non-NaN output is. The numbers follow TA-Lib's C code operation by
//! operation (C library 0.8.1, bundled with the `TA-Lib` 0.8.2 Python wheel, the one
//! Freqtrade 2026.9 uses), and are tested against it on real candles
//! (`tests/fixtures/talib/`, made by `tools/talib_fixture.py`).
//!
//! | indicator | formula | lookback |
//! |---|---|---|
//! | [`sma`] SMA(n) | mean of the last n values (running sum: add the new value, subtract the one leaving) | n-1 |
//! | [`ema`] EMA(n) | k = 2/(n+1); seed = SMA of the first n values; then ema += (x - ema)·k | n-1 |
//! | [`rsi`] RSI(n) | Wilder: first avg gain/loss = mean of the first n changes; then avg = (avg·(n-1) + today)/n; RSI = 100·gain/(gain+loss), 0 when both are 0 | n |
//! | [`macd`] MACD(f,s,g) | EMA(f) - EMA(s), both seeded on the bar s-1 (the fast seed is the mean of bars s-f..s-1); signal = EMA(g) of the MACD line seeded with its first g values; hist = macd - signal | s-1 + g-1 (33 for 12/26/9) |
//! | [`bbands`] Bollinger(n, up, dn) | middle = SMA(n); upper/lower = middle ± k·σ, σ the population standard deviation of the last n values | n-1 |
//! | [`atr`] ATR(n) | TR = max(h-l, \|h-c₋₁\|, \|l-c₋₁\|) from bar 1; first ATR = mean of the first n TR; then Wilder: atr = atr·(n-1)/n + tr/n | n |
//! | [`adx`] ADX(n) | +DM/-DM and TR summed over n-1 bars, then Wilder-smoothed sums; DX = 100·\|+DI - -DI\|/(+DI + -DI); first ADX = mean of the first n DX; then Wilder | 2n-1 (27 for 14) |
//! | [`mfi`] MFI(n) | typical price tp = (h+l+c)/3; money flow tp·v is positive when tp rose, negative when it fell, none when it did not move; MFI = 100·pos/(pos+neg) over the last n bars, 0 when both are 0 | n |
//! | [`vwap`] VWAP(n) | rolling: Σ tp·v / Σ v over the last n candles, tp = (h+l+c)/3; the latest tp when the window has no volume | n-1 |
//! | [`volume_sma`] volume SMA(n) | SMA(n) of the volume | n-1 |
//!
//! VWAP is not in TA-Lib. Here it is *rolling* over `n` candles (a market that trades
//! around the clock has no session to anchor a cumulative VWAP to), and it is tested by
//! hand, not against TA-Lib.
//!
//! TA-Lib 0.8 computes some steps with a fused multiply-add (one rounding instead of two):
//! the EMA step (so EMA and MACD), ATR's Wilder step and Bollinger's upper band when the
//! two multipliers differ. This module does the same with [`f64::mul_add`], which is
//! correctly rounded on every platform; that is what makes the values bit-identical.
//!
//! Conventions matched on purpose, each checked against TA-Lib:
//! - RSI with no gain and no loss since the seed (flat prices) is 0, not 50.
//! - MFI counts a bar whose typical price moved by less than 1e-14 of its size as "no
//!   movement"; a window with no money flow at all (flat prices, or no volume) gives 0.
//! - Bollinger's σ uses TA-Lib's shifted-data variance, re-centred now and then; flat
//!   prices give σ = 0 exactly.
//! - ADX leaves the previous ADX unchanged on a bar whose +DI and -DI are both ~0.
//!
//! Inputs are not checked for NaN: a NaN in the input poisons the values after it, as
//! in TA-Lib.

/// TA-Lib's `TA_EPSILON`: how close to zero a dimensionless ratio counts as zero.
const TA_EPSILON: f64 = 1e-14;

/// TA-Lib's `TA_IS_ZERO`.
fn ta_is_zero(v: f64) -> bool {
    -TA_EPSILON < v && v < TA_EPSILON
}

/// TA-Lib's `TA_IS_ZERO_SCALED`: `v` is zero within 1e-14 of `scale`.
fn ta_is_zero_scaled(v: f64, scale: f64) -> bool {
    v.abs() <= TA_EPSILON * scale
}

/// The true range of a bar, with TA-Lib's order of comparisons.
fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    let mut greatest = high - low;
    let up = (prev_close - high).abs();
    if up > greatest {
        greatest = up;
    }
    let down = (prev_close - low).abs();
    if down > greatest {
        greatest = down;
    }
    greatest
}

/// One EMA step, `ema + (x - ema)·k`, as TA-Lib 0.8 computes it: with one rounding,
/// `fma(x - ema, k, ema)`.
fn ema_step(x: f64, ema: f64, k: f64) -> f64 {
    (x - ema).mul_add(k, ema)
}

/// A fixed-size ring buffer of the last `capacity` values.
#[derive(Debug, Clone)]
struct Ring<T> {
    buf: Vec<T>,
    next: usize,
    full: bool,
}

impl<T: Copy + Default> Ring<T> {
    fn new(capacity: usize) -> Self {
        Ring {
            buf: vec![T::default(); capacity],
            next: 0,
            full: false,
        }
    }

    /// Appends `value`; once the ring is full, returns the value it replaced (the oldest).
    fn push(&mut self, value: T) -> Option<T> {
        let old = std::mem::replace(&mut self.buf[self.next], value);
        let evicted = self.full.then_some(old);
        self.next += 1;
        if self.next == self.buf.len() {
            self.next = 0;
            self.full = true;
        }
        evicted
    }

    fn is_full(&self) -> bool {
        self.full
    }

    /// The oldest value held (when full).
    fn oldest(&self) -> T {
        self.buf[self.next]
    }

    /// The values held, oldest first (when full).
    fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let (newer, older) = self.buf.split_at(self.next);
        older.iter().chain(newer).copied()
    }
}

/// Runs a one-output incremental indicator over `n` candles: NaN where it answers `None`.
fn series(n: usize, mut step: impl FnMut(usize) -> Option<f64>) -> Vec<f64> {
    (0..n).map(|i| step(i).unwrap_or(f64::NAN)).collect()
}

fn same_len(name: &str, lens: &[usize]) {
    assert!(
        lens.windows(2).all(|w| w[0] == w[1]),
        "{name}: the input slices differ in length: {lens:?}"
    );
}

// ---------------------------------------------------------------------------------------
// SMA

/// Simple moving average, incremental. Lookback `period - 1`.
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    window: Ring<f64>,
    total: f64,
}

impl Sma {
    /// Panics if `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period >= 1, "SMA period must be at least 1");
        Sma {
            period,
            window: Ring::new(period),
            total: 0.0,
        }
    }

    /// Index of the first value: `period - 1`.
    pub fn lookback(&self) -> usize {
        self.period - 1
    }

    /// Adds a value; the mean of the last `period` values once there are that many.
    pub fn update(&mut self, value: f64) -> Option<f64> {
        self.total += value;
        self.window.push(value);
        if !self.window.is_full() {
            return None;
        }
        let mean = self.total / self.period as f64;
        // TA-Lib subtracts the oldest value of the window *after* taking the mean.
        self.total -= self.window.oldest();
        Some(mean)
    }
}

/// TA-Lib's `SMA(values, period)`: NaN for the first `period - 1` values.
pub fn sma(values: &[f64], period: usize) -> Vec<f64> {
    let mut sma = Sma::new(period);
    series(values.len(), |i| sma.update(values[i]))
}

/// The SMA of the volume (TA-Lib's `SMA(volume, period)`).
pub fn volume_sma(volume: &[f64], period: usize) -> Vec<f64> {
    sma(volume, period)
}

// ---------------------------------------------------------------------------------------
// EMA

/// Exponential moving average, incremental, seeded like TA-Lib (default compatibility):
/// the first value is the SMA of the first `period` values. Lookback `period - 1`.
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    k: f64,
    seen: usize,
    sum: f64,
    ema: f64,
}

impl Ema {
    /// Panics if `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period >= 1, "EMA period must be at least 1");
        Ema {
            period,
            k: 2.0 / (period + 1) as f64,
            seen: 0,
            sum: 0.0,
            ema: 0.0,
        }
    }

    /// Index of the first value: `period - 1`.
    pub fn lookback(&self) -> usize {
        self.period - 1
    }

    /// Adds a value; the EMA once `period` values have been seen.
    pub fn update(&mut self, value: f64) -> Option<f64> {
        if self.period == 1 {
            return Some(value); // TA-Lib copies the input at period 1
        }
        if self.seen < self.period {
            self.sum += value;
            self.seen += 1;
            if self.seen < self.period {
                return None;
            }
            self.ema = self.sum / self.period as f64;
            return Some(self.ema);
        }
        self.ema = ema_step(value, self.ema, self.k);
        Some(self.ema)
    }
}

/// TA-Lib's `EMA(values, period)`: NaN for the first `period - 1` values.
pub fn ema(values: &[f64], period: usize) -> Vec<f64> {
    let mut ema = Ema::new(period);
    series(values.len(), |i| ema.update(values[i]))
}

// ---------------------------------------------------------------------------------------
// RSI

/// Relative strength index with Wilder's smoothing, incremental. Lookback `period`.
///
/// With no gain and no loss since the seed (flat prices) it answers 0, as TA-Lib does.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    inv_period: f64,
    seen: usize,
    prev: f64,
    gain: f64,
    loss: f64,
}

impl Rsi {
    /// Panics if `period` is below 2.
    pub fn new(period: usize) -> Self {
        assert!(period >= 2, "RSI period must be at least 2");
        Rsi {
            period,
            inv_period: 1.0 / period as f64,
            seen: 0,
            prev: 0.0,
            gain: 0.0,
            loss: 0.0,
        }
    }

    /// Index of the first value: `period`.
    pub fn lookback(&self) -> usize {
        self.period
    }

    /// Adds a close; the RSI once `period` changes have been seen.
    pub fn update(&mut self, value: f64) -> Option<f64> {
        if self.seen == 0 {
            self.prev = value;
            self.seen = 1;
            return None;
        }
        let change = value - self.prev;
        self.prev = value;
        let gain = if change > 0.0 { change } else { 0.0 };
        if self.seen <= self.period {
            // The seed: plain sums of the first `period` changes, then their mean.
            self.gain += gain;
            self.loss += gain - change; // the loss: -change when the price fell, else 0
            self.seen += 1;
            if self.seen <= self.period {
                return None;
            }
        } else {
            let keep = (self.period - 1) as f64;
            self.gain *= keep;
            self.loss *= keep;
            self.gain += gain;
            self.loss += gain - change;
        }
        self.gain *= self.inv_period;
        self.loss *= self.inv_period;
        let total = self.gain + self.loss;
        Some(if total > 0.0 {
            100.0 * (self.gain / total)
        } else {
            0.0
        })
    }
}

/// TA-Lib's `RSI(values, period)`: NaN for the first `period` values.
pub fn rsi(values: &[f64], period: usize) -> Vec<f64> {
    let mut rsi = Rsi::new(period);
    series(values.len(), |i| rsi.update(values[i]))
}

// ---------------------------------------------------------------------------------------
// MACD

/// One MACD output: the MACD line, its signal line and the histogram (macd - signal).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdValue {
    pub macd: f64,
    pub signal: f64,
    pub hist: f64,
}

/// MACD, incremental, exactly as TA-Lib's `MACD`: both EMAs start on bar `slow - 1` (the
/// fast one seeded with the mean of the `fast` values ending there), the signal EMA is
/// seeded with the mean of the first `signal` MACD values. Lookback
/// `slow - 1 + signal - 1` (33 for 12/26/9).
#[derive(Debug, Clone)]
pub struct Macd {
    fast: usize,
    slow: usize,
    signal: usize,
    fast_k: f64,
    slow_k: f64,
    signal_k: f64,
    seen: usize,
    fast_ema: f64,
    slow_ema: f64,
    signal_ema: f64,
}

impl Macd {
    /// The usual MACD is `Macd::new(12, 26, 9)`. If `slow < fast` they are swapped, as in
    /// TA-Lib. Panics if `fast` or `slow` is below 2 or `signal` is 0.
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        assert!(
            fast >= 2 && slow >= 2,
            "MACD fast and slow periods must be at least 2"
        );
        assert!(signal >= 1, "MACD signal period must be at least 1");
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Macd {
            fast,
            slow,
            signal,
            fast_k: 2.0 / (fast + 1) as f64,
            slow_k: 2.0 / (slow + 1) as f64,
            signal_k: 2.0 / (signal + 1) as f64,
            seen: 0,
            fast_ema: 0.0,
            slow_ema: 0.0,
            signal_ema: 0.0,
        }
    }

    /// Index of the first value: `slow - 1 + signal - 1`.
    pub fn lookback(&self) -> usize {
        self.slow - 1 + self.signal - 1
    }

    /// Adds a close; the MACD once [`Macd::lookback`] values precede it.
    pub fn update(&mut self, value: f64) -> Option<MacdValue> {
        let bar = self.seen;
        self.seen += 1;
        let seed_bar = self.slow - 1; // the first bar of the MACD line
        if bar < seed_bar {
            // Both seeds are plain sums; the fast one covers the last `fast` bars only.
            self.slow_ema += value;
            if bar >= self.slow - self.fast {
                self.fast_ema += value;
            }
            return None;
        }
        if bar == seed_bar {
            self.slow_ema += value;
            self.fast_ema += value;
            self.slow_ema /= self.slow as f64;
            self.fast_ema /= self.fast as f64;
        } else {
            self.fast_ema = ema_step(value, self.fast_ema, self.fast_k);
            self.slow_ema = ema_step(value, self.slow_ema, self.slow_k);
        }
        let macd = self.fast_ema - self.slow_ema;
        let first = self.lookback();
        if bar < first {
            self.signal_ema += macd; // the signal's seed: a plain sum
            return None;
        }
        if bar == first {
            self.signal_ema += macd;
            self.signal_ema /= self.signal as f64;
        } else {
            self.signal_ema = ema_step(macd, self.signal_ema, self.signal_k);
        }
        Some(MacdValue {
            macd,
            signal: self.signal_ema,
            hist: macd - self.signal_ema,
        })
    }
}

/// The three MACD series, each the input's length, NaN during the warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct MacdSeries {
    pub macd: Vec<f64>,
    pub signal: Vec<f64>,
    pub hist: Vec<f64>,
}

/// TA-Lib's `MACD(values, fast, slow, signal)`: NaN for the first `slow - 1 + signal - 1`
/// values.
pub fn macd(values: &[f64], fast: usize, slow: usize, signal: usize) -> MacdSeries {
    let mut state = Macd::new(fast, slow, signal);
    let mut out = MacdSeries {
        macd: Vec::with_capacity(values.len()),
        signal: Vec::with_capacity(values.len()),
        hist: Vec::with_capacity(values.len()),
    };
    for &value in values {
        let v = state.update(value).unwrap_or(MacdValue {
            macd: f64::NAN,
            signal: f64::NAN,
            hist: f64::NAN,
        });
        out.macd.push(v.macd);
        out.signal.push(v.signal);
        out.hist.push(v.hist);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Bollinger Bands

/// One Bollinger output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BbandsValue {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
}

/// Bollinger Bands with an SMA middle band, incremental, as TA-Lib's
/// `BBANDS(period, nbdevup, nbdevdn, matype=SMA)`. Lookback `period - 1`.
///
/// σ is the population standard deviation, computed like TA-Lib: running sums of the
/// values' deviations from a *shift* (a recent mean), re-centred on the window's mean
/// when cancellation threatens or every `32·period` bars. A re-centring re-reads the
/// `period` values of the ring buffer; on ordinary data it happens once every
/// `32·period` bars.
#[derive(Debug, Clone)]
pub struct Bbands {
    period: usize,
    nb_dev_up: f64,
    nb_dev_dn: f64,
    inv_period: f64,
    window: Ring<f64>,
    seen: usize,
    ma_total: f64,
    shift: f64,
    dev_total: f64,
    dev2_total: f64,
    bars_since_reseed: usize,
}

impl Bbands {
    /// The usual bands are `Bbands::new(20, 2.0, 2.0)`. Panics if `period` is below 2.
    pub fn new(period: usize, nb_dev_up: f64, nb_dev_dn: f64) -> Self {
        assert!(period >= 2, "Bollinger period must be at least 2");
        Bbands {
            period,
            nb_dev_up,
            nb_dev_dn,
            inv_period: 1.0 / period as f64,
            window: Ring::new(period),
            seen: 0,
            ma_total: 0.0,
            shift: 0.0,
            dev_total: 0.0,
            dev2_total: 0.0,
            bars_since_reseed: 32 * period,
        }
    }

    /// Index of the first value: `period - 1`.
    pub fn lookback(&self) -> usize {
        self.period - 1
    }

    /// Adds a close; the bands once `period` values have been seen.
    pub fn update(&mut self, value: f64) -> Option<BbandsValue> {
        if self.seen == 0 {
            self.shift = value;
        }
        self.seen += 1;
        self.ma_total += value;
        let dev = value - self.shift;
        self.dev_total += dev;
        self.dev2_total += dev * dev;
        self.window.push(value);
        if !self.window.is_full() {
            return None;
        }

        let inv = self.inv_period;
        let mean_dev = self.dev_total * inv;
        let mut variance = self.dev2_total * inv - mean_dev * mean_dev;
        let middle = self.ma_total / self.period as f64;

        // Take the oldest value out of the sums, ready for the next bar.
        let oldest = self.window.oldest();
        self.ma_total -= oldest;
        let dev = oldest - self.shift;
        self.dev_total -= dev;
        let dev2 = dev * dev;
        self.dev2_total -= dev2;

        self.bars_since_reseed -= 1;
        if variance < 0.000001 * (self.dev2_total * inv)
            || dev2 > 1000000.0 * self.dev2_total
            || self.bars_since_reseed == 0
        {
            variance = self.reseed();
        }

        let sd = if variance != 0.0 {
            variance.sqrt()
        } else {
            0.0
        };
        if self.nb_dev_up == self.nb_dev_dn {
            let width = sd * self.nb_dev_up;
            return Some(BbandsValue {
                upper: middle + width,
                middle,
                lower: middle - width,
            });
        }
        // With distinct multipliers TA-Lib 0.8 fuses the upper band, not the lower one.
        Some(BbandsValue {
            upper: sd.mul_add(self.nb_dev_up, middle),
            middle,
            lower: middle - sd * self.nb_dev_dn,
        })
    }

    /// Re-centres the deviation sums on the window's mean; returns the window's variance.
    fn reseed(&mut self) -> f64 {
        let inv = self.inv_period;
        self.bars_since_reseed = 32 * self.period;
        self.shift = self.window.iter().fold(0.0, |sum, v| sum + v) * inv;
        self.dev_total = 0.0;
        self.dev2_total = 0.0;
        for v in self.window.iter() {
            let dev = v - self.shift;
            self.dev_total += dev;
            self.dev2_total += dev * dev;
        }
        let mean_dev = self.dev_total * inv;
        let mut variance = self.dev2_total * inv - mean_dev * mean_dev;
        if variance < 0.000000000001 * (self.dev2_total * inv) {
            variance = 0.0;
        }
        let dev = self.window.oldest() - self.shift;
        self.dev_total -= dev;
        self.dev2_total -= dev * dev;
        variance
    }
}

/// The three Bollinger series, each the input's length, NaN during the warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct BbandsSeries {
    pub upper: Vec<f64>,
    pub middle: Vec<f64>,
    pub lower: Vec<f64>,
}

/// TA-Lib's `BBANDS(values, period, nb_dev_up, nb_dev_dn, matype=0)`: NaN for the first
/// `period - 1` values.
pub fn bbands(values: &[f64], period: usize, nb_dev_up: f64, nb_dev_dn: f64) -> BbandsSeries {
    let mut state = Bbands::new(period, nb_dev_up, nb_dev_dn);
    let mut out = BbandsSeries {
        upper: Vec::with_capacity(values.len()),
        middle: Vec::with_capacity(values.len()),
        lower: Vec::with_capacity(values.len()),
    };
    for &value in values {
        let v = state.update(value).unwrap_or(BbandsValue {
            upper: f64::NAN,
            middle: f64::NAN,
            lower: f64::NAN,
        });
        out.upper.push(v.upper);
        out.middle.push(v.middle);
        out.lower.push(v.lower);
    }
    out
}

// ---------------------------------------------------------------------------------------
// ATR

/// Average true range with Wilder's smoothing, incremental. Lookback `period`: the first
/// true range needs the previous close, and the first ATR is the mean of `period` of them.
#[derive(Debug, Clone)]
pub struct Atr {
    period: usize,
    alpha: f64,
    beta: f64,
    seen: usize,
    prev_close: f64,
    atr: f64,
}

impl Atr {
    /// Panics if `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period >= 1, "ATR period must be at least 1");
        // TA-Lib derives alpha from beta so that alpha + beta is exactly 1.
        let beta = (period - 1) as f64 / period as f64;
        Atr {
            period,
            alpha: 1.0 - beta,
            beta,
            seen: 0,
            prev_close: 0.0,
            atr: 0.0,
        }
    }

    /// Index of the first value: `period`.
    pub fn lookback(&self) -> usize {
        self.period
    }

    /// Adds a candle; the ATR once `period` true ranges have been seen.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        if self.seen == 0 {
            self.prev_close = close;
            self.seen = 1;
            return None;
        }
        let tr = true_range(high, low, self.prev_close);
        self.prev_close = close;
        if self.seen <= self.period {
            self.atr += tr; // the seed: a plain sum, then the mean
            self.seen += 1;
            if self.seen <= self.period {
                return None;
            }
            self.atr /= self.period as f64;
            return Some(self.atr);
        }
        // TA-Lib 0.8: fma(beta, atr, alpha·tr).
        self.atr = self.beta.mul_add(self.atr, self.alpha * tr);
        Some(self.atr)
    }
}

/// TA-Lib's `ATR(high, low, close, period)`: NaN for the first `period` values.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    same_len("atr", &[high.len(), low.len(), close.len()]);
    let mut atr = Atr::new(period);
    series(close.len(), |i| atr.update(high[i], low[i], close[i]))
}

// ---------------------------------------------------------------------------------------
// ADX

/// Average directional index, incremental, as TA-Lib's `ADX`. Lookback `2·period - 1`.
#[derive(Debug, Clone)]
pub struct Adx {
    period: usize,
    seen: usize,
    prev_high: f64,
    prev_low: f64,
    prev_close: f64,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    sum_dx: f64,
    adx: f64,
}

impl Adx {
    /// Panics if `period` is below 2.
    pub fn new(period: usize) -> Self {
        assert!(period >= 2, "ADX period must be at least 2");
        Adx {
            period,
            seen: 0,
            prev_high: 0.0,
            prev_low: 0.0,
            prev_close: 0.0,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            sum_dx: 0.0,
            adx: 0.0,
        }
    }

    /// Index of the first value: `2·period - 1`.
    pub fn lookback(&self) -> usize {
        2 * self.period - 1
    }

    /// Adds a candle; the ADX once [`Adx::lookback`] candles precede it.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        if self.seen == 0 {
            self.prev_high = high;
            self.prev_low = low;
            self.prev_close = close;
            self.seen = 1;
            return None;
        }
        let up = high - self.prev_high;
        let down = self.prev_low - low;
        self.prev_high = high;
        self.prev_low = low;
        // +DM1 is the up move when it is positive and beats the down move; -DM1 likewise.
        let plus_dm1 = if up > 0.0 && up - down > 0.0 { up } else { 0.0 };
        let minus_dm1 = if down > 0.0 && down - up > 0.0 {
            down
        } else {
            0.0
        };
        let tr = true_range(high, low, self.prev_close);
        self.prev_close = close;

        if self.seen < self.period {
            // Bars 1..period-1: plain sums.
            self.minus_dm += minus_dm1;
            self.plus_dm += plus_dm1;
            self.tr += tr;
            self.seen += 1;
            return None;
        }
        // Wilder's smoothing of the sums: sum - sum/period + today.
        let n = self.period as f64;
        self.minus_dm -= self.minus_dm / n;
        self.plus_dm -= self.plus_dm / n;
        self.minus_dm += minus_dm1;
        self.plus_dm += plus_dm1;
        self.tr = self.tr - self.tr / n + tr;

        let mut dx = None;
        if self.tr > 0.0 {
            let minus_di = 100.0 * (self.minus_dm / self.tr);
            let plus_di = 100.0 * (self.plus_dm / self.tr);
            let sum = minus_di + plus_di;
            if !ta_is_zero(sum) {
                dx = Some(100.0 * ((minus_di - plus_di).abs() / sum));
            }
        }

        if self.seen < 2 * self.period {
            // Bars period..2·period-1: the first ADX is the mean of these DX.
            if let Some(dx) = dx {
                self.sum_dx += dx;
            }
            self.seen += 1;
            if self.seen < 2 * self.period {
                return None;
            }
            self.adx = self.sum_dx / n;
            return Some(self.adx);
        }
        if let Some(dx) = dx {
            self.adx = (self.adx * (n - 1.0) + dx) / n;
        }
        Some(self.adx)
    }
}

/// TA-Lib's `ADX(high, low, close, period)`: NaN for the first `2·period - 1` values.
pub fn adx(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    same_len("adx", &[high.len(), low.len(), close.len()]);
    let mut adx = Adx::new(period);
    series(close.len(), |i| adx.update(high[i], low[i], close[i]))
}

// ---------------------------------------------------------------------------------------
// MFI

/// Money flow index, incremental, as TA-Lib's `MFI`. Lookback `period`.
///
/// A bar whose typical price did not move (within 1e-14 of its size) or that has no
/// volume adds no money flow; a window without any money flow answers 0.
#[derive(Debug, Clone)]
pub struct Mfi {
    period: usize,
    seen: usize,
    prev_tp: f64,
    /// (positive, negative) money flow of the last `period` bars.
    flows: Ring<(f64, f64)>,
    pos_sum: f64,
    neg_sum: f64,
    /// Consecutive bars without money flow.
    null_run: usize,
}

impl Mfi {
    /// Panics if `period` is below 2.
    pub fn new(period: usize) -> Self {
        assert!(period >= 2, "MFI period must be at least 2");
        Mfi {
            period,
            seen: 0,
            prev_tp: 0.0,
            flows: Ring::new(period),
            pos_sum: 0.0,
            neg_sum: 0.0,
            null_run: 0,
        }
    }

    /// Index of the first value: `period`.
    pub fn lookback(&self) -> usize {
        self.period
    }

    /// Adds a candle; the MFI once `period` money flows have been seen.
    pub fn update(&mut self, high: f64, low: f64, close: f64, volume: f64) -> Option<f64> {
        let tp = (high + low + close) / 3.0;
        if self.seen == 0 {
            self.prev_tp = tp;
            self.seen = 1;
            return None;
        }
        let change = tp - self.prev_tp;
        let scale = tp.abs() + self.prev_tp.abs();
        self.prev_tp = tp;
        let flow = if ta_is_zero_scaled(change, scale) {
            0.0
        } else {
            tp * volume
        };
        let (pos, neg) = if change < 0.0 {
            (0.0, flow)
        } else {
            (flow, 0.0)
        };
        if let Some((old_pos, old_neg)) = self.flows.push((pos, neg)) {
            self.pos_sum -= old_pos;
            self.neg_sum -= old_neg;
        }
        self.pos_sum += pos;
        self.neg_sum += neg;
        // A whole window without money flow: the sums are exactly 0, whatever rounding
        // residue the add-then-subtract left in them.
        self.null_run = if flow == 0.0 { self.null_run + 1 } else { 0 };
        if self.null_run >= self.period {
            self.null_run = self.period;
            self.pos_sum = 0.0;
            self.neg_sum = 0.0;
        }
        if !self.flows.is_full() {
            return None;
        }
        let total = self.pos_sum + self.neg_sum;
        // The sums drift by a few ulp as the window slides: keep pos within [0, total].
        let pos = if self.pos_sum < 0.0 {
            0.0
        } else if self.pos_sum > total {
            total
        } else {
            self.pos_sum
        };
        Some(if total <= 0.0 {
            0.0
        } else {
            100.0 * (pos / total)
        })
    }
}

/// TA-Lib's `MFI(high, low, close, volume, period)`: NaN for the first `period` values.
pub fn mfi(high: &[f64], low: &[f64], close: &[f64], volume: &[f64], period: usize) -> Vec<f64> {
    same_len("mfi", &[high.len(), low.len(), close.len(), volume.len()]);
    let mut mfi = Mfi::new(period);
    series(close.len(), |i| {
        mfi.update(high[i], low[i], close[i], volume[i])
    })
}

// ---------------------------------------------------------------------------------------
// VWAP (not in TA-Lib)

/// Rolling volume-weighted average price over the last `period` candles, incremental:
/// Σ tp·v / Σ v with the typical price tp = (h+l+c)/3. Lookback `period - 1`.
///
/// When the window has no volume at all it answers the latest typical price. The running
/// sums are re-added from the ring buffer every `period` candles, so rounding does not
/// accumulate over a long run.
#[derive(Debug, Clone)]
pub struct Vwap {
    period: usize,
    /// (tp·v, v) of the last `period` candles.
    window: Ring<(f64, f64)>,
    pv_sum: f64,
    v_sum: f64,
    /// Consecutive candles without volume.
    zero_run: usize,
}

impl Vwap {
    /// Panics if `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period >= 1, "VWAP period must be at least 1");
        Vwap {
            period,
            window: Ring::new(period),
            pv_sum: 0.0,
            v_sum: 0.0,
            zero_run: 0,
        }
    }

    /// Index of the first value: `period - 1`.
    pub fn lookback(&self) -> usize {
        self.period - 1
    }

    /// Adds a candle; the VWAP once `period` candles have been seen.
    pub fn update(&mut self, high: f64, low: f64, close: f64, volume: f64) -> Option<f64> {
        let tp = (high + low + close) / 3.0;
        let pv = tp * volume;
        if let Some((old_pv, old_v)) = self.window.push((pv, volume)) {
            self.pv_sum -= old_pv;
            self.v_sum -= old_v;
        }
        self.pv_sum += pv;
        self.v_sum += volume;
        if self.window.is_full() && self.window.next == 0 {
            // Once per `period` candles: exact sums again.
            (self.pv_sum, self.v_sum) = self
                .window
                .iter()
                .fold((0.0, 0.0), |(pv, v), (p, w)| (pv + p, v + w));
        }
        self.zero_run = if volume == 0.0 { self.zero_run + 1 } else { 0 };
        if !self.window.is_full() {
            return None;
        }
        if self.zero_run >= self.period || self.v_sum <= 0.0 {
            return Some(tp);
        }
        Some(self.pv_sum / self.v_sum)
    }
}

/// Rolling VWAP over `period` candles (see [`Vwap`]): NaN for the first `period - 1`.
pub fn vwap(high: &[f64], low: &[f64], close: &[f64], volume: &[f64], period: usize) -> Vec<f64> {
    same_len("vwap", &[high.len(), low.len(), close.len(), volume.len()]);
    let mut vwap = Vwap::new(period);
    series(close.len(), |i| {
        vwap.update(high[i], low[i], close[i], volume[i])
    })
}

// ---------------------------------------------------------------------------------------
// The bundle the model's features use

/// The incremental indicators the model's features need, fed one candle at a time:
/// SMA 5/20/50 of the close, RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14, ADX 14, MFI 14,
/// rolling VWAP over [`IndicatorState::VWAP_PERIOD`] candles and the SMA 20 of the volume.
///
/// Each getter answers the value after the latest [`IndicatorState::update`], `None` while
/// that indicator warms up; all are `Some` from the [`IndicatorState::WARM_UP`]-th candle.
#[derive(Debug, Clone)]
pub struct IndicatorState {
    candles: usize,
    sma5: Sma,
    sma20: Sma,
    sma50: Sma,
    rsi14: Rsi,
    macd: Macd,
    bbands: Bbands,
    atr14: Atr,
    adx14: Adx,
    mfi14: Mfi,
    vwap: Vwap,
    volume_sma20: Sma,
    last: Values,
}

#[derive(Debug, Clone, Copy, Default)]
struct Values {
    sma5: Option<f64>,
    sma20: Option<f64>,
    sma50: Option<f64>,
    rsi14: Option<f64>,
    macd: Option<MacdValue>,
    bbands: Option<BbandsValue>,
    atr14: Option<f64>,
    adx14: Option<f64>,
    mfi14: Option<f64>,
    vwap: Option<f64>,
    volume_sma20: Option<f64>,
}

impl Default for IndicatorState {
    fn default() -> Self {
        Self::new()
    }
}

impl IndicatorState {
    /// The window of the rolling VWAP, in candles.
    pub const VWAP_PERIOD: usize = 20;
    /// Candles needed before every indicator has a value (the SMA 50's).
    pub const WARM_UP: usize = 50;

    /// A state that has seen no candle.
    pub fn new() -> Self {
        IndicatorState {
            candles: 0,
            sma5: Sma::new(5),
            sma20: Sma::new(20),
            sma50: Sma::new(50),
            rsi14: Rsi::new(14),
            macd: Macd::new(12, 26, 9),
            bbands: Bbands::new(20, 2.0, 2.0),
            atr14: Atr::new(14),
            adx14: Adx::new(14),
            mfi14: Mfi::new(14),
            vwap: Vwap::new(Self::VWAP_PERIOD),
            volume_sma20: Sma::new(20),
            last: Values::default(),
        }
    }

    /// Adds the next candle. `open` is taken for a uniform candle signature; none of these
    /// indicators uses it.
    pub fn update(&mut self, open: f64, high: f64, low: f64, close: f64, volume: f64) {
        let _ = open;
        self.candles += 1;
        self.last = Values {
            sma5: self.sma5.update(close),
            sma20: self.sma20.update(close),
            sma50: self.sma50.update(close),
            rsi14: self.rsi14.update(close),
            macd: self.macd.update(close),
            bbands: self.bbands.update(close),
            atr14: self.atr14.update(high, low, close),
            adx14: self.adx14.update(high, low, close),
            mfi14: self.mfi14.update(high, low, close, volume),
            vwap: self.vwap.update(high, low, close, volume),
            volume_sma20: self.volume_sma20.update(volume),
        };
    }

    /// Candles seen so far.
    pub fn candles(&self) -> usize {
        self.candles
    }

    /// Whether every indicator has a value.
    pub fn is_ready(&self) -> bool {
        self.candles >= Self::WARM_UP
    }

    /// SMA 5 of the close.
    pub fn sma5(&self) -> Option<f64> {
        self.last.sma5
    }

    /// SMA 20 of the close.
    pub fn sma20(&self) -> Option<f64> {
        self.last.sma20
    }

    /// SMA 50 of the close.
    pub fn sma50(&self) -> Option<f64> {
        self.last.sma50
    }

    /// RSI 14.
    pub fn rsi14(&self) -> Option<f64> {
        self.last.rsi14
    }

    /// MACD 12/26/9.
    pub fn macd(&self) -> Option<MacdValue> {
        self.last.macd
    }

    /// Bollinger Bands 20, ±2σ.
    pub fn bbands(&self) -> Option<BbandsValue> {
        self.last.bbands
    }

    /// ATR 14.
    pub fn atr14(&self) -> Option<f64> {
        self.last.atr14
    }

    /// ADX 14.
    pub fn adx14(&self) -> Option<f64> {
        self.last.adx14
    }

    /// MFI 14.
    pub fn mfi14(&self) -> Option<f64> {
        self.last.mfi14
    }

    /// Rolling VWAP over [`IndicatorState::VWAP_PERIOD`] candles.
    pub fn vwap(&self) -> Option<f64> {
        self.last.vwap
    }

    /// SMA 20 of the volume.
    pub fn volume_sma20(&self) -> Option<f64> {
        self.last.volume_sma20
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A fixture CSV from `tools/talib_fixture.py`: columns by name.
    struct Fixture {
        name: &'static str,
        columns: HashMap<String, Vec<f64>>,
    }

    impl Fixture {
        fn load(name: &'static str) -> Fixture {
            let path = format!(
                "{}/../tests/fixtures/talib/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
            let mut lines = text.lines();
            let header: Vec<String> = lines
                .next()
                .expect("a header")
                .split(',')
                .map(str::to_string)
                .collect();
            let mut data = vec![Vec::new(); header.len()];
            for (row, line) in lines.enumerate() {
                let fields: Vec<&str> = line.split(',').collect();
                assert_eq!(fields.len(), header.len(), "{name}: row {row}");
                for (column, field) in data.iter_mut().zip(fields) {
                    column.push(if field == "nan" {
                        f64::NAN
                    } else {
                        field
                            .parse()
                            .unwrap_or_else(|e| panic!("{name}: {field}: {e}"))
                    });
                }
            }
            Fixture {
                name,
                columns: header.into_iter().zip(data).collect(),
            }
        }

        fn col(&self, column: &str) -> &[f64] {
            &self.columns[column]
        }

        fn len(&self) -> usize {
            self.col("close").len()
        }
    }

    /// The largest relative error of `ours` against TA-Lib's column, after checking NaN
    /// exactly where TA-Lib has NaN and |ours - talib| <= 1e-9·max(|talib|, floor)
    /// elsewhere. Also counts the values that are not bit-identical.
    fn check(fx: &Fixture, column: &str, ours: &[f64], floor: f64) -> (f64, usize) {
        let talib = fx.col(column);
        assert_eq!(ours.len(), talib.len(), "{}: {column}: length", fx.name);
        let (mut worst, mut inexact) = (0.0f64, 0);
        for (i, (&o, &t)) in ours.iter().zip(talib).enumerate() {
            if t.is_nan() {
                assert!(
                    o.is_nan(),
                    "{}: {column}[{i}]: TA-Lib NaN, ours {o}",
                    fx.name
                );
                continue;
            }
            assert!(
                o.is_finite(),
                "{}: {column}[{i}]: ours {o}, TA-Lib {t}",
                fx.name
            );
            let scale = t.abs().max(floor);
            let err = (o - t).abs() / scale;
            assert!(
                err <= 1e-9,
                "{}: {column}[{i}]: ours {o:e}, TA-Lib {t:e}, relative error {err:e}",
                fx.name
            );
            worst = worst.max(err);
            inexact += usize::from(o.to_bits() != t.to_bits());
        }
        println!(
            "{:>20} {column:>13}: max relative error {worst:.3e}, {inexact} of {} not bit-identical",
            fx.name,
            ours.len()
        );
        (worst, inexact)
    }

    /// Values never below this are compared relative to themselves.
    const TINY: f64 = f64::MIN_POSITIVE;
    /// MACD values hover around 0 (a difference of two averages of the price): an absolute
    /// floor of 1e-9 · 1e-6 = 1e-15 on the error, about 100 ulp of a price near 0.1.
    const MACD_FLOOR: f64 = 1e-6;

    fn check_fixture(name: &'static str) {
        let fx = Fixture::load(name);
        let (h, l, c, v) = (
            fx.col("high"),
            fx.col("low"),
            fx.col("close"),
            fx.col("volume"),
        );
        assert!(fx.len() > 100, "{name}: too short");
        check(&fx, "sma5", &sma(c, 5), TINY);
        check(&fx, "sma20", &sma(c, 20), TINY);
        check(&fx, "sma50", &sma(c, 50), TINY);
        check(&fx, "ema12", &ema(c, 12), TINY);
        check(&fx, "ema26", &ema(c, 26), TINY);
        check(&fx, "rsi14", &rsi(c, 14), TINY);
        let m = macd(c, 12, 26, 9);
        check(&fx, "macd", &m.macd, MACD_FLOOR);
        check(&fx, "macd_signal", &m.signal, MACD_FLOOR);
        check(&fx, "macd_hist", &m.hist, MACD_FLOOR);
        let b = bbands(c, 20, 2.0, 2.0);
        check(&fx, "bb_upper", &b.upper, TINY);
        check(&fx, "bb_middle", &b.middle, TINY);
        check(&fx, "bb_lower", &b.lower, TINY);
        check(&fx, "atr14", &atr(h, l, c, 14), TINY);
        check(&fx, "adx14", &adx(h, l, c, 14), TINY);
        check(&fx, "mfi14", &mfi(h, l, c, v, 14), TINY);
        check(&fx, "volume_sma20", &volume_sma(v, 20), TINY);
    }

    #[test]
    fn matches_talib_on_real_candles() {
        check_fixture("ETH_BTC-5m.csv");
    }

    #[test]
    fn matches_talib_on_edge_cases() {
        // Flat prices, zero volume, a strictly rising run, a pair quoted around 3e-8.
        check_fixture("edge_cases.csv");
    }

    fn same_bits(what: &str, a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{what}: length");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "{what}[{i}]: {x} vs {y}");
        }
    }

    fn nan_or<T>(v: Option<T>, f: impl Fn(T) -> f64) -> f64 {
        v.map_or(f64::NAN, f)
    }

    /// The batch functions, the incremental structs fed by hand and [`IndicatorState`]
    /// give the same bits on the whole file.
    #[test]
    fn batch_equals_incremental() {
        for name in ["ETH_BTC-5m.csv", "edge_cases.csv"] {
            let fx = Fixture::load(name);
            let (o, h, l, c, v) = (
                fx.col("open"),
                fx.col("high"),
                fx.col("low"),
                fx.col("close"),
                fx.col("volume"),
            );
            let n = fx.len();
            let mut by_hand: HashMap<&str, Vec<f64>> = HashMap::new();
            let mut push = |k: &'static str, x: f64| by_hand.entry(k).or_default().push(x);
            let (mut s5, mut s20, mut s50) = (Sma::new(5), Sma::new(20), Sma::new(50));
            let (mut e12, mut r14, mut m) = (Ema::new(12), Rsi::new(14), Macd::new(12, 26, 9));
            let (mut bb, mut at, mut ad) = (Bbands::new(20, 2.0, 2.0), Atr::new(14), Adx::new(14));
            let (mut mf, mut vw, mut vs) = (Mfi::new(14), Vwap::new(20), Sma::new(20));
            let mut state = IndicatorState::new();
            let mut from_state: HashMap<&str, Vec<f64>> = HashMap::new();
            for i in 0..n {
                push("sma5", nan_or(s5.update(c[i]), |x| x));
                push("sma20", nan_or(s20.update(c[i]), |x| x));
                push("sma50", nan_or(s50.update(c[i]), |x| x));
                push("ema12", nan_or(e12.update(c[i]), |x| x));
                push("rsi14", nan_or(r14.update(c[i]), |x| x));
                let mv = m.update(c[i]);
                push("macd", nan_or(mv, |x| x.macd));
                push("macd_signal", nan_or(mv, |x| x.signal));
                push("macd_hist", nan_or(mv, |x| x.hist));
                let bv = bb.update(c[i]);
                push("bb_upper", nan_or(bv, |x| x.upper));
                push("bb_middle", nan_or(bv, |x| x.middle));
                push("bb_lower", nan_or(bv, |x| x.lower));
                push("atr14", nan_or(at.update(h[i], l[i], c[i]), |x| x));
                push("adx14", nan_or(ad.update(h[i], l[i], c[i]), |x| x));
                push("mfi14", nan_or(mf.update(h[i], l[i], c[i], v[i]), |x| x));
                push("vwap20", nan_or(vw.update(h[i], l[i], c[i], v[i]), |x| x));
                push("volume_sma20", nan_or(vs.update(v[i]), |x| x));

                state.update(o[i], h[i], l[i], c[i], v[i]);
                let mut put = |k: &'static str, x: f64| from_state.entry(k).or_default().push(x);
                put("sma5", nan_or(state.sma5(), |x| x));
                put("sma20", nan_or(state.sma20(), |x| x));
                put("sma50", nan_or(state.sma50(), |x| x));
                put("rsi14", nan_or(state.rsi14(), |x| x));
                put("macd", nan_or(state.macd(), |x| x.macd));
                put("macd_signal", nan_or(state.macd(), |x| x.signal));
                put("macd_hist", nan_or(state.macd(), |x| x.hist));
                put("bb_upper", nan_or(state.bbands(), |x| x.upper));
                put("bb_middle", nan_or(state.bbands(), |x| x.middle));
                put("bb_lower", nan_or(state.bbands(), |x| x.lower));
                put("atr14", nan_or(state.atr14(), |x| x));
                put("adx14", nan_or(state.adx14(), |x| x));
                put("mfi14", nan_or(state.mfi14(), |x| x));
                put("vwap20", nan_or(state.vwap(), |x| x));
                put("volume_sma20", nan_or(state.volume_sma20(), |x| x));
                assert_eq!(state.is_ready(), i + 1 >= IndicatorState::WARM_UP);
                if state.is_ready() {
                    assert!(from_state.values().all(|s| !s[i].is_nan()), "{name}[{i}]");
                }
            }
            let m = macd(c, 12, 26, 9);
            let b = bbands(c, 20, 2.0, 2.0);
            let batch: HashMap<&str, Vec<f64>> = HashMap::from([
                ("sma5", sma(c, 5)),
                ("sma20", sma(c, 20)),
                ("sma50", sma(c, 50)),
                ("ema12", ema(c, 12)),
                ("rsi14", rsi(c, 14)),
                ("macd", m.macd),
                ("macd_signal", m.signal),
                ("macd_hist", m.hist),
                ("bb_upper", b.upper),
                ("bb_middle", b.middle),
                ("bb_lower", b.lower),
                ("atr14", atr(h, l, c, 14)),
                ("adx14", adx(h, l, c, 14)),
                ("mfi14", mfi(h, l, c, v, 14)),
                ("vwap20", vwap(h, l, c, v, 20)),
                ("volume_sma20", volume_sma(v, 20)),
            ]);
            assert_eq!(by_hand.len(), batch.len());
            for (k, series) in &batch {
                same_bits(&format!("{name}: {k} incremental"), series, &by_hand[k]);
                if let Some(s) = from_state.get(k) {
                    same_bits(&format!("{name}: {k} IndicatorState"), series, s);
                }
            }
        }
    }

    /// The first valid index of each output is TA-Lib's lookback.
    #[test]
    fn warm_up_is_talibs_lookback() {
        let close: Vec<f64> = (0..120)
            .map(|i| 1.0 + (i as f64 / 5.0).sin() / 10.0)
            .collect();
        let first = |s: &[f64]| s.iter().position(|x| !x.is_nan()).unwrap();
        let (h, l): (Vec<f64>, Vec<f64>) = close.iter().map(|c| (c + 0.01, c - 0.01)).unzip();
        let v = vec![10.0; close.len()];
        assert_eq!(first(&sma(&close, 20)), Sma::new(20).lookback());
        assert_eq!(first(&sma(&close, 20)), 19);
        assert_eq!(first(&ema(&close, 26)), 25);
        assert_eq!(first(&rsi(&close, 14)), 14);
        let m = macd(&close, 12, 26, 9);
        assert_eq!(Macd::new(12, 26, 9).lookback(), 33);
        assert_eq!(
            [first(&m.macd), first(&m.signal), first(&m.hist)],
            [33, 33, 33]
        );
        assert_eq!(first(&bbands(&close, 20, 2.0, 2.0).lower), 19);
        assert_eq!(first(&atr(&h, &l, &close, 14)), 14);
        assert_eq!(first(&adx(&h, &l, &close, 14)), 27);
        assert_eq!(Adx::new(14).lookback(), 27);
        assert_eq!(first(&mfi(&h, &l, &close, &v, 14)), 14);
        assert_eq!(first(&vwap(&h, &l, &close, &v, 20)), 19);
        // MACD swaps fast and slow like TA-Lib.
        same_bits("macd swapped", &macd(&close, 26, 12, 9).macd, &m.macd);
    }

    #[test]
    fn sma_and_ema_by_hand() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let s = sma(&x, 3);
        assert!(s[0].is_nan() && s[1].is_nan());
        assert_eq!(&s[2..], &[2.0, 3.0, 4.0]);
        assert_eq!(sma(&x, 1), x.to_vec());
        // k = 2/(3+1) = 0.5; seed = mean(1, 2, 3) = 2; then 2 + (4-2)/2 = 3, 3 + (5-3)/2 = 4.
        let e = ema(&x, 3);
        assert!(e[0].is_nan() && e[1].is_nan());
        assert_eq!(&e[2..], &[2.0, 3.0, 4.0]);
        let e = ema(&[10.0, 20.0, 30.0, 0.0], 2); // k = 2/3, seed 15
        assert_eq!(e[1], 15.0);
        assert!((e[2] - (15.0 + (30.0 - 15.0) * 2.0 / 3.0)).abs() < 1e-12);
        assert!((e[3] - (e[2] - e[2] * 2.0 / 3.0)).abs() < 1e-12);
        assert_eq!(ema(&x, 1), x.to_vec()); // TA-Lib copies the input at period 1
    }

    #[test]
    fn rsi_of_a_strictly_rising_series_is_100() {
        let up: Vec<f64> = (0..40).map(|i| 100.0 + i as f64 * 0.5).collect();
        let r = rsi(&up, 14);
        assert!(r[..14].iter().all(|x| x.is_nan()));
        assert!(r[14..].iter().all(|&x| x == 100.0), "{r:?}");
        let down: Vec<f64> = up.iter().rev().copied().collect();
        assert!(rsi(&down, 14)[14..].iter().all(|&x| x == 0.0));
        // Gain 1 then loss 1 alternating: seed gain = loss = 7/14, RSI 50 at the seed.
        let zigzag: Vec<f64> = (0..15).map(|i| (i % 2) as f64).collect();
        assert_eq!(rsi(&zigzag, 14)[14], 50.0);
    }

    #[test]
    fn vwap_by_hand() {
        // Typical prices (h+l+c)/3: 2, 4, 7, 10 (all exact); volumes 1, 2, 1, 0.
        let h = [3.0, 5.0, 8.0, 11.0];
        let l = [1.0, 3.0, 6.0, 9.0];
        let c = [2.0, 4.0, 7.0, 10.0];
        let v = [1.0, 2.0, 1.0, 0.0];
        let w = vwap(&h, &l, &c, &v, 3);
        assert!(w[0].is_nan() && w[1].is_nan());
        assert_eq!(w[2], (2.0 * 1.0 + 4.0 * 2.0 + 7.0 * 1.0) / 4.0); // 17/4 = 4.25
        assert_eq!(w[3], (4.0 * 2.0 + 7.0 * 1.0 + 10.0 * 0.0) / 3.0); // 15/3 = 5
        // A window without volume answers the latest typical price.
        let w = vwap(&h, &l, &c, &[0.0; 4], 3);
        assert_eq!(&w[2..], &[7.0, 10.0]);
        // Period 1: the typical price itself.
        assert_eq!(vwap(&h, &l, &c, &v, 1), vec![2.0, 4.0, 7.0, 10.0]);
        // A long run: the periodic re-summing keeps it equal to a fresh sum.
        let n = 10_000;
        let hh: Vec<f64> = (0..n)
            .map(|i| 1.0 + (i as f64 / 17.0).sin() / 3.0)
            .collect();
        let vv: Vec<f64> = (0..n)
            .map(|i| if i % 7 == 0 { 1e6 } else { 1e-3 })
            .collect();
        let w = vwap(&hh, &hh, &hh, &vv, 10);
        for i in [n - 1, n - 3, n / 2] {
            let window = i + 1 - 10..=i;
            let pv: f64 = window.clone().map(|j| hh[j] * vv[j]).sum();
            let vol: f64 = window.map(|j| vv[j]).sum();
            assert!((w[i] - pv / vol).abs() <= 1e-12 * w[i], "{i}");
        }
    }

    /// Flat prices (open = high = low = close for every candle): what TA-Lib 0.8.x gives,
    /// checked with it: RSI 0 (no gain and no loss since the seed), Bollinger width 0
    /// (σ = 0 exactly), ATR 0, ADX 0, MFI 0 (no money flow), MACD ≈ 0 (-4.2e-17 for 0.1:
    /// the fast and slow seeds are means of 12 and 26 copies of 0.1, which round
    /// differently). Nothing is NaN or infinite after the warm-up.
    #[test]
    fn constant_prices() {
        let n = 200;
        let p = vec![0.1; n];
        let v = vec![1000.0; n];
        let b = bbands(&p, 20, 2.0, 2.0);
        for i in 19..n {
            assert_eq!(b.upper[i], b.middle[i]);
            assert_eq!(b.lower[i], b.middle[i]);
            assert!((b.middle[i] - 0.1).abs() < 1e-15);
        }
        let r = rsi(&p, 14);
        assert!(r[14..].iter().all(|&x| x == 0.0));
        assert!(atr(&p, &p, &p, 14)[14..].iter().all(|&x| x == 0.0));
        assert!(adx(&p, &p, &p, 14)[27..].iter().all(|&x| x == 0.0));
        assert!(mfi(&p, &p, &p, &v, 14)[14..].iter().all(|&x| x == 0.0));
        let m = macd(&p, 12, 26, 9);
        for s in [&m.macd, &m.signal, &m.hist] {
            assert!(s[33..].iter().all(|x| x.abs() < 1e-15));
        }
        assert_eq!(vwap(&p, &p, &p, &v, 20)[19..], vec![0.1; n - 19][..]);
        let mut state = IndicatorState::new();
        for _ in 0..n {
            state.update(0.1, 0.1, 0.1, 0.1, 1000.0);
        }
        let m = state.macd().unwrap();
        let b = state.bbands().unwrap();
        let all = [
            state.sma5(),
            state.sma20(),
            state.sma50(),
            state.rsi14(),
            Some(m.macd),
            Some(m.signal),
            Some(m.hist),
            Some(b.upper),
            Some(b.middle),
            Some(b.lower),
            state.atr14(),
            state.adx14(),
            state.mfi14(),
            state.vwap(),
            state.volume_sma20(),
        ];
        assert!(all.iter().all(|x| x.is_some_and(f64::is_finite)), "{all:?}");
    }

    /// No volume at all while prices move: MFI is 0 (TA-Lib: no money flow), never NaN;
    /// VWAP falls back to the typical price.
    #[test]
    fn zero_volume() {
        let n = 60;
        let c: Vec<f64> = (0..n)
            .map(|i| 1.0 + (i as f64 / 3.0).sin() / 10.0)
            .collect();
        let (h, l): (Vec<f64>, Vec<f64>) = c.iter().map(|c| (c + 0.01, c - 0.01)).unzip();
        let zero = vec![0.0; n];
        let m = mfi(&h, &l, &c, &zero, 14);
        assert!(m[14..].iter().all(|&x| x == 0.0), "{m:?}");
        let w = vwap(&h, &l, &c, &zero, 20);
        assert!(w[19..].iter().all(|x| x.is_finite()));
        // Volume that stops: once a whole window has none, MFI is exactly 0 again.
        let mut vol = vec![50.0; n];
        vol[30..].fill(0.0);
        let m = mfi(&h, &l, &c, &vol, 14);
        assert!(
            m[14..]
                .iter()
                .all(|x| x.is_finite() && (0.0..=100.0).contains(x))
        );
        assert!(m[44..].iter().all(|&x| x == 0.0), "{m:?}");
        assert_eq!(volume_sma(&zero, 20)[19..], vec![0.0; n - 19][..]);
    }
}
