//! Measuring strategies instead of trusting hand-typed figures: the figures of a list of
//! closed trades by Freqtrade's definitions (`figures`), a walk-forward's folds (`folds`),
//! and the native engine's backtests, optimisations and walk-forwards (`native`).

pub mod figures;
pub mod folds;
pub mod native;
