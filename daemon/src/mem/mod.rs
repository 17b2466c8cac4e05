//! MEM: the cognitive layer. Signal enhancement (the seed's step 5), the decision
//! memory, and the learning loop (performance monitor, pattern discovery, learned
//! strategies); [`service::Memory`] holds them together in the daemon.

pub mod archive;
pub mod bots;
pub mod crypt;
pub mod enhance;
pub mod learning;
pub mod market_inputs;
pub mod patterns;
pub mod service;
pub mod signals;
pub mod store;
