//! Market data: candles from Freqtrade's data directory or CSV, indicators (batch and
//! incremental), the model's features and labels.

pub mod candles;
pub mod conditions;
pub mod features;
pub mod freshness;
pub mod indicators;
pub mod labels;
pub mod refresh;
