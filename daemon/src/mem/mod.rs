//! MEM: the cognitive layer. For now, signal enhancement (the seed's step 5); the memory
//! stores and the learning loop come next.

pub mod enhance;
