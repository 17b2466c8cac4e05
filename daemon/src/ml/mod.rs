//! The trend-reversal model: training, evaluation, the versioned store, prediction.

pub mod metrics;
pub mod model;
pub mod service;
pub mod store;
pub mod train;
