//! Measuring strategies instead of trusting hand-typed figures: the figures of a list of
//! closed trades by Freqtrade's definitions (`figures`), a walk-forward's folds (`folds`),
//! the native engine's backtests, optimisations and walk-forwards (`native`), the real
//! Freqtrade's backtesting and hyperopt (`freqtrade`), and a queue job that runs either
//! and records the result on the strategy's version (`job`).

pub mod figures;
pub mod folds;
pub mod freqtrade;
pub mod job;
pub mod native;

pub use job::{parse_timerange, plan_of};
