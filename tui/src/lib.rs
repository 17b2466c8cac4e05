//! memctl as a library: the terminal UI's state, drawing and connection, so that the
//! benchmarks (and the binary) share them.
#![forbid(unsafe_code)]

pub mod text;
pub mod ui;
