//! MEM: the cognitive layer. Signal enhancement (the seed's step 5) and the decision
//! memory; the learning loop comes next.

pub mod enhance;
pub mod learning;
pub mod store;
