//! Native strategies: trading rules that run inside the daemon on closed candles and trade
//! on paper, instead of in a Freqtrade bot. `strategies` are the rules, `paper` the
//! simulated broker (fees, slippage, stops), `engine` one deployment's candle-by-candle
//! loop through MEM, `runner` the feed (replay or follow) around it.

pub mod engine;
pub mod paper;
pub mod runner;
pub mod strategies;
