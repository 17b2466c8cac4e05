//! Measured figures: strategies backtested (and walk-forwards optimised) from real candles.

pub mod freqtrade;
